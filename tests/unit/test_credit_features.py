"""Features are point-in-time: future rows never change a feature as of an earlier date."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from yunrong.credit.features import FEATURES, INPUT_FEATURES, MONTHLY_FEATURES, compute_features


def history(months: int, start: str = "2020-01-01", seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rev = rng.uniform(80, 120, months)
    return pd.DataFrame(
        {
            "enterprise_id": "E1",
            "month": pd.date_range(start, periods=months, freq="MS").strftime("%Y-%m-%d"),
            "revenue": rev,
            "costs": rev * 0.9,
            "profit": rev * 0.1,
            "total_assets": 1000.0,
            "total_debt": rng.uniform(100, 900, months),
            "current_assets": 500.0,
            "current_liabilities": 250.0,
            "cash": 180.0,
            "tax_on_time": rng.integers(0, 2, months).astype(float),
            "utility_on_time": 1.0,
            "supplier_days_late": rng.uniform(0, 30, months),
        }
    )


def test_every_feature_documented() -> None:
    for name in MONTHLY_FEATURES + INPUT_FEATURES:
        spec = FEATURES[name]
        assert spec.definition
        assert spec.label_en
        assert spec.label_zh
        assert spec.direction in (-1, 1)


def test_future_rows_never_change_earlier_features() -> None:
    past = history(30)
    full = pd.concat([past, history(40, seed=9).iloc[30:].assign(revenue=1e9, total_debt=1e9)])
    requests = pd.DataFrame(
        {"enterprise_id": ["E1"] * 3, "as_of": ["2021-06-15", "2022-01-01", "2022-07-01"]}
    )
    before = compute_features(past, requests)
    after = compute_features(full, requests)
    pd.testing.assert_frame_equal(before, after)
    # ... and a later date does see the new rows
    later = compute_features(full, pd.DataFrame({"enterprise_id": ["E1"], "as_of": ["2023-03-01"]}))
    assert later["debt_to_assets"].iloc[0] == pytest.approx(1e6)


def test_month_of_as_of_is_not_yet_known() -> None:
    frame = history(13)
    f = compute_features(frame, pd.DataFrame({"enterprise_id": ["E1"], "as_of": ["2020-12-31"]}))
    assert f["months_of_history"].iloc[0] == 11  # Jan..Nov 2020; December ends after the date
    last = frame.iloc[10]
    assert f["debt_to_assets"].iloc[0] == pytest.approx(last["total_debt"] / 1000)
    assert f["net_margin_12m"].iloc[0] == pytest.approx(0.1)
    assert np.isnan(f["revenue_yoy"].iloc[0])  # needs 24 months
    assert np.isnan(f["attestation_coverage"].iloc[0])


def test_yoy_and_unknown_enterprise() -> None:
    frame = history(24)
    frame.loc[12:, "revenue"] = frame.loc[:11, "revenue"].to_numpy() * 1.5
    f = compute_features(
        frame, pd.DataFrame({"enterprise_id": ["E1", "nobody"], "as_of": ["2022-01-01", "2022-01-01"]})
    )
    assert f["revenue_yoy"].iloc[0] == pytest.approx(0.5)
    assert f["months_of_history"].iloc[1] == 0
    assert np.isnan(f["current_ratio"].iloc[1])
