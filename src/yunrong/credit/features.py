"""Credit features of an enterprise **as of a date**, from its monthly history. Pure (numpy/pandas).

Point in time: the figures of a calendar month are known from the first day of the next month, so
a feature as of date ``d`` uses only months that ended before the month of ``d`` began
(``month + 1 month <= first day of d's month``). Rows for later months, if present, are ignored:
adding future rows never changes a feature as of an earlier date (tested).

Monthly history columns (one row per enterprise and month, as `yunrong.credit.world` writes them):
``enterprise_id, month (YYYY-MM-01), revenue, costs, profit, total_assets, total_debt,
current_assets, current_liabilities, cash, tax_on_time (1/0, empty when nothing was due),
utility_on_time (1/0), supplier_days_late``. Amounts in yuan.

Every feature, its definition and its direction (``+1``: higher is safer; ``−1``: higher is
riskier) is in `FEATURES`; the table below is the same data.

| feature | definition | direction |
|---|---|---|
| debt_to_assets | total debt / total assets, latest known month | −1 |
| current_ratio | current assets / current liabilities, latest known month | +1 |
| net_margin_12m | Σ profit / Σ revenue over the last 12 known months | +1 |
| revenue_yoy | Σ revenue last 12 months / Σ revenue the 12 months before − 1 (needs 24 months) | +1 |
| revenue_cv_12m | std / mean of monthly revenue, last 12 months (needs 6) | −1 |
| cash_months | cash, latest month / mean monthly costs of the last 3 months | +1 |
| tax_on_time_12m | share of tax payments due in the last 12 months paid on time | +1 |
| utility_on_time_12m | share of utility bills of the last 12 months paid on time | +1 |
| supplier_days_late_6m | mean days late paying suppliers, last 6 months | −1 |
| months_of_history | months of history known (up to 24 counted) | +1 |
| attestation_coverage | share of the declared figures attested by a service agency (input, 0–1) | +1 |
| attestation_age_days | days since the newest attestation (input) | −1 |

The attestation features are inputs (placeholders until the verification part supplies them):
passed in with the request, or missing. Missing values stay missing (the models bin them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    name: str
    definition: str
    direction: int  # +1 higher is safer, -1 higher is riskier, 0 categorical
    label_en: str
    label_zh: str
    actionable: bool = True


FEATURES: dict[str, FeatureSpec] = {
    f.name: f
    for f in [
        FeatureSpec(
            "debt_to_assets",
            "total debt / total assets, latest known month",
            -1,
            "debt-to-assets ratio",
            "资产负债率",
        ),
        FeatureSpec(
            "current_ratio",
            "current assets / current liabilities, latest known month",
            1,
            "current ratio",
            "流动比率",
        ),
        FeatureSpec(
            "net_margin_12m",
            "profit / revenue over the last 12 known months",
            1,
            "net margin (12 months)",
            "近12个月净利率",
        ),
        FeatureSpec(
            "revenue_yoy",
            "revenue last 12 months / revenue the 12 before - 1",
            1,
            "revenue growth (year on year)",
            "营业收入同比增长",
        ),
        FeatureSpec(
            "revenue_cv_12m",
            "std / mean of monthly revenue, last 12 months",
            -1,
            "revenue volatility",
            "营业收入波动率",
        ),
        FeatureSpec(
            "cash_months",
            "cash / mean monthly costs of the last 3 months",
            1,
            "cash runway (months of costs)",
            "现金可支撑月数",
        ),
        FeatureSpec(
            "tax_on_time_12m",
            "share of tax payments paid on time, last 12 months",
            1,
            "taxes paid on time",
            "按时纳税比例",
        ),
        FeatureSpec(
            "utility_on_time_12m",
            "share of utility bills paid on time, last 12 months",
            1,
            "utility bills paid on time",
            "水电费按时缴纳比例",
        ),
        FeatureSpec(
            "supplier_days_late_6m",
            "mean days late paying suppliers, last 6 months",
            -1,
            "days late paying suppliers",
            "供应商付款平均逾期天数",
        ),
        FeatureSpec(
            "months_of_history",
            "months of history known (up to 24)",
            1,
            "length of history",
            "经营记录月数",
            actionable=False,
        ),
        FeatureSpec(
            "attestation_coverage",
            "share of declared figures attested by an agency (input)",
            1,
            "share of figures attested",
            "经机构核验的信息比例",
        ),
        FeatureSpec(
            "attestation_age_days",
            "days since the newest attestation (input)",
            -1,
            "age of the newest attestation",
            "最近一次核验距今天数",
        ),
        FeatureSpec("industry", "industry of the enterprise", 0, "industry", "行业", actionable=False),
        FeatureSpec("region", "region of the enterprise", 0, "region", "地区", actionable=False),
        FeatureSpec(
            "size", "size class (micro, small, medium)", 0, "size class", "企业规模", actionable=False
        ),
        FeatureSpec("amount", "amount requested, yuan", -1, "amount requested", "申请金额", actionable=False),
        FeatureSpec(
            "term_months", "term requested, months", -1, "term requested", "申请期限", actionable=False
        ),
    ]
}

MONTHLY_FEATURES = [
    "debt_to_assets",
    "current_ratio",
    "net_margin_12m",
    "revenue_yoy",
    "revenue_cv_12m",
    "cash_months",
    "tax_on_time_12m",
    "utility_on_time_12m",
    "supplier_days_late_6m",
    "months_of_history",
]
INPUT_FEATURES = ["attestation_coverage", "attestation_age_days"]


def month_index(dates: pd.Series) -> np.ndarray:
    d = pd.to_datetime(dates)
    return np.asarray(d.dt.year * 12 + d.dt.month - 1, dtype=np.int64)


def _ratio(num: pd.Series, den: pd.Series) -> pd.Series:
    return (num / den.where(den != 0)).astype(float)


def compute_features(monthly: pd.DataFrame, requests: pd.DataFrame) -> pd.DataFrame:
    """Features for each request (columns ``enterprise_id``, ``as_of``; optionally the input
    features), in the requests' order and index. Uses only months known at ``as_of``."""
    req = pd.DataFrame(
        {"enterprise_id": requests["enterprise_id"].to_numpy(), "cutoff": month_index(requests["as_of"]) - 1}
    )
    req["req"] = np.arange(len(req))
    m = monthly.copy()
    m["m"] = month_index(m["month"])
    joined = req.merge(m, on="enterprise_id", how="inner")
    joined["lag"] = joined["cutoff"] - joined["m"]
    joined = joined[(joined["lag"] >= 0) & (joined["lag"] < 24)]
    g = joined.groupby("req", sort=False)
    out = pd.DataFrame(index=pd.RangeIndex(len(req)))
    latest = joined.loc[g["lag"].idxmin()].set_index("req")
    out["debt_to_assets"] = _ratio(latest["total_debt"], latest["total_assets"])
    out["current_ratio"] = _ratio(latest["current_assets"], latest["current_liabilities"])
    last12 = joined[joined["lag"] < 12]
    prior12 = joined[joined["lag"] >= 12]
    g12 = last12.groupby("req")
    sums12 = g12[["profit", "revenue"]].sum()
    out["net_margin_12m"] = _ratio(sums12["profit"], sums12["revenue"])
    rev_prior = prior12.groupby("req")["revenue"].agg(["sum", "count"])
    rev_last = g12["revenue"].agg(["sum", "count", "mean", "std"])
    full = (rev_prior["count"] == 12).reindex(out.index, fill_value=False) & (
        rev_last["count"] == 12
    ).reindex(out.index, fill_value=False)
    yoy = _ratio(rev_last["sum"], rev_prior["sum"]).reindex(out.index) - 1
    out["revenue_yoy"] = yoy.where(full)
    cv = _ratio(rev_last["std"], rev_last["mean"]).reindex(out.index)
    out["revenue_cv_12m"] = cv.where(rev_last["count"].reindex(out.index) >= 6)
    costs3 = joined[joined["lag"] < 3].groupby("req")["costs"].mean()
    out["cash_months"] = _ratio(latest["cash"], costs3.reindex(latest.index))
    out["tax_on_time_12m"] = g12["tax_on_time"].mean()
    out["utility_on_time_12m"] = g12["utility_on_time"].mean()
    out["supplier_days_late_6m"] = joined[joined["lag"] < 6].groupby("req")["supplier_days_late"].mean()
    out["months_of_history"] = g["lag"].count()
    out = out.reindex(pd.RangeIndex(len(req)))
    out["months_of_history"] = out["months_of_history"].fillna(0)
    for name in INPUT_FEATURES:
        out[name] = pd.to_numeric(requests[name], errors="coerce").to_numpy() if name in requests else np.nan
    out = out[MONTHLY_FEATURES + INPUT_FEATURES].astype(float)
    out.index = requests.index
    return out
