"""Scorecard, GBM, reasons and counterfactual on a small toy problem; data checks; artifacts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from yunrong.credit.artifact import load_artifact, make_card, save_artifact
from yunrong.credit.grades import grade_of
from yunrong.credit.model import CreditModel, fit_model
from yunrong.credit.pipeline import decide, score_batch
from yunrong.credit.reasons import counterfactual, reasons
from yunrong.credit.tabular import CreditDataError, check_table


def toy(n: int = 800, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ratio = rng.uniform(0, 3, n)
    debt = rng.uniform(0, 1, n)
    noise = rng.normal(0, 1, n)
    sector = rng.choice(["shop", "factory", "farm"], n)
    z = -1.0 - 1.5 * ratio + 2.5 * debt + 0.6 * (sector == "farm") + 0.1 * noise
    bad = rng.uniform(0, 1, n) < 1 / (1 + np.exp(-z))
    frame = pd.DataFrame({"current_ratio": ratio, "debt_to_assets": debt, "noise": noise, "sector": sector})
    frame.loc[rng.choice(n, 20, replace=False), "current_ratio"] = np.nan
    frame["status"] = np.where(bad, "bad", "good")
    return frame


@pytest.fixture(scope="module")
def model() -> CreditModel:
    data = check_table(toy().astype(str).replace({"nan": None}), target="status", bad="bad")
    return fit_model(data.X, data.y, numeric=data.numeric, categorical=data.categorical)


def test_scorecard_compiled_matches_optbinning(model: CreditModel) -> None:
    X = toy(200, seed=1).drop(columns="status")
    card = model.scorecard
    ours = card.woe_matrix(X)
    theirs = card.binning_process.transform(
        X[card.names], metric="woe", metric_missing="empirical"
    ).to_numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-9)
    # points are the scaled log-odds: score ↔ PD round trip
    s = card.score(X)
    p = card.predict_pd(X)
    np.testing.assert_allclose([card.score_to_pd(v) for v in s], p, rtol=1e-6)
    assert card.pd_to_score(1 / 51) == pytest.approx(600.0)  # 600 points at good:bad odds 50:1


def test_monotone_bins_and_higher_ratio_is_safer(model: CreditModel) -> None:
    var = next(v for v in model.scorecard.variables if v.name == "current_ratio")
    pts = var.points[: var.n_bins]
    assert np.all(np.diff(pts) >= -1e-9)  # monotone: more current ratio never costs points
    rows = pd.DataFrame({"current_ratio": [0.1, 2.9], "debt_to_assets": 0.5, "noise": 0.0, "sector": "shop"})
    low, high = model.predict_pd(rows)
    assert high < low


def test_reasons_name_the_weak_factors(model: CreditModel) -> None:
    row = {"current_ratio": 0.05, "debt_to_assets": 0.97, "noise": 0.0, "sector": "shop"}
    found = reasons(model.scorecard, row)
    assert {r.feature for r in found[:2]} == {"current_ratio", "debt_to_assets"}
    assert all(r.points_lost > 0 and r.text_en and r.text_zh for r in found)
    assert "current ratio" in " ".join(r.text_en for r in found)
    assert "流动比率" in " ".join(r.text_zh for r in found)
    best = {"current_ratio": 2.99, "debt_to_assets": 0.01, "noise": 0.0, "sector": "factory"}
    assert all(r.feature not in {"current_ratio", "debt_to_assets"} for r in reasons(model.scorecard, best))


def test_counterfactual_moves_up_one_grade(model: CreditModel) -> None:
    row = {"current_ratio": 0.4, "debt_to_assets": 0.8, "noise": 0.0, "sector": "shop"}
    cf = counterfactual(model, row)
    assert cf.achievable
    assert cf.changes
    assert cf.new_pd is not None
    assert (
        cf.new_pd < grade_of(cf.current_pd).pd_from or grade_of(cf.new_pd).rank < grade_of(cf.current_pd).rank
    )
    assert grade_of(cf.new_pd).rank <= grade_of(cf.current_pd).rank - 1
    moved = pd.DataFrame([row])
    for change in cf.changes:
        assert change.feature in {"current_ratio", "debt_to_assets", "noise"}
        moved.loc[0, change.feature] = change.target
        assert change.text_en
        assert change.text_zh
    assert float(model.predict_pd(moved)[0]) == pytest.approx(cf.new_pd)


def test_pipeline_batch_agrees_with_single(model: CreditModel) -> None:
    X = toy(50, seed=2).drop(columns="status")
    batch = score_batch(model, X)
    for i in (0, 7, 31):
        one = decide(model, X.iloc[[i]])
        assert one.pd == pytest.approx(batch["pd"][i])
        assert one.score == pytest.approx(batch["score"][i])
        assert (one.price.__class__.__name__ == "Decline") == bool(batch["declined"][i])


def test_artifact_round_trip(model: CreditModel, tmp_path: Path) -> None:
    data = check_table(toy().astype(str).replace({"nan": None}), target="status", bad="bad", sha256="abc")
    card = save_artifact(model, tmp_path / "m.joblib", make_card(model, data, name="toy"))
    loaded = load_artifact(tmp_path / "m.joblib")
    X = toy(20, seed=3).drop(columns="status")
    np.testing.assert_allclose(loaded.model.predict_pd(X), model.predict_pd(X))
    assert loaded.card["training_data"]["sha256"] == "abc"
    assert (tmp_path / "m.json").exists()
    assert len(card["artifact_sha256"]) == 64


def test_bad_table_lists_every_problem() -> None:
    raw = pd.DataFrame(
        {
            "id": ["1", "2", "2", "4", "5", "6"],
            "income": ["10", "12", "x?", "15", "11", "13"],
            "sector": ["a", "b", "a", "b", "a", "b"],
            "y": ["good", "good", None, "good", "good", "good"],
        }
    )
    with pytest.raises(CreditDataError) as caught:
        check_table(raw, target="y", bad="bad")
    messages = " | ".join(p.msg for p in caught.value.problems)
    assert "target missing in 1 rows" in messages
    assert "single class" in messages
    assert "'x?'" in messages
    assert "income" in messages
    assert "duplicate ids" in messages
    assert "'2'" not in messages
    assert "2" in messages
