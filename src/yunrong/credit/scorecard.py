"""The champion: a weight-of-evidence (WoE) scorecard on optbinning.

Fitting:

1. ``optbinning.BinningProcess`` bins every feature by optimal binning against the target. Numeric
   features get **monotonic** bins (``monotonic_trend="auto_asc_desc"``: the bad rate only rises or
   only falls across a feature's bins, so that a better ratio never costs points); categorical
   features are grouped by bad rate. Missing values form their own bin with their *empirical* WoE
   (a missing balance sheet is information, not neutral).
2. A logistic regression (scikit-learn, default L2, ``C=1``) on the WoE values gives the PD:
   ``logit(pd) = b0 + Σ_j β_j · WoE_j(x_j)``. WoE is ``ln(%good / %bad)`` in the bin, so a higher
   WoE is safer.
   *Integer codes* — numeric columns whose training values are integers with at most
   ``MAX_CODES`` (10) distinct values, such as an education level or a marital-status code — are
   binned as categories (grouped by bad rate), because such codes are usually nominal.
3. **Points** (PDO/odds scaling): ``score = offset + factor · ln(odds_good)``, with
   ``factor = PDO / ln 2`` and ``offset = BASE_POINTS − factor · ln(BASE_ODDS)``. Defaults:
   **600 points at good:bad odds of 50:1, 20 points to double the odds** (``PDO = 20``). The
   score is the sum of one number of points per feature,
   ``points_j(bin) = −factor · β_j · WoE_j(bin) + (offset − factor · b0) / n_features``, so the
   table of points per bin *is* the model. Higher score = lower risk.

Scoring does not call optbinning: the fitted bins are compiled into arrays (splits, per-bin WoE and
points) and scored with ``numpy.searchsorted``, which is exact (tested against optbinning's own
``transform``) and fast. Categories not seen in training get WoE 0 (neutral).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

#: Points at the base odds.
BASE_POINTS = 600.0
#: Good:bad odds that score BASE_POINTS.
BASE_ODDS = 50.0
#: Points to double the odds.
PDO = 20.0
#: Integer columns with at most this many distinct values are binned as nominal codes.
MAX_CODES = 10


def _code(value: object) -> object:
    """The category key of a numeric code (1.0 -> "1"); missing stays missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return np.nan
    return format(float(value), "g")  # type: ignore[arg-type]


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def is_code(series: pd.Series) -> bool:
    x = pd.to_numeric(series, errors="coerce").dropna()
    return bool(len(x)) and bool(np.all(np.floor(x) == x)) and int(x.nunique()) <= MAX_CODES


@dataclass(frozen=True)
class ScoreVariable:
    """One feature of the scorecard. Bin ``i`` for ``i < n_bins``; then ``special``, ``missing``."""

    name: str
    kind: str  # "numeric" | "categorical" | "coded" (a numeric code binned as categories)
    splits: np.ndarray  # numeric: ascending cut points; categorical: unused (empty)
    categories: dict[str, int]  # categorical: category -> bin
    labels: list[str]  # human label per bin (+ "Special", "Missing")
    woe: np.ndarray  # per bin, + special, + missing
    coefficient: float
    points: np.ndarray  # per bin, + special, + missing

    @property
    def n_bins(self) -> int:
        return len(self.labels) - 2

    @property
    def missing_bin(self) -> int:
        return self.n_bins + 1

    def bins(self, values: Any) -> np.ndarray:
        """Bin index of each value (missing -> the missing bin; unseen category -> the missing bin
        index is *not* used: unseen categories get bin -1, scored neutral)."""
        if self.kind == "numeric":
            arr = np.asarray(values)
            if arr.dtype.kind in "fiub":
                x = arr.astype(float, copy=False)
            else:
                x = np.asarray(pd.to_numeric(pd.Series(values), errors="coerce"), dtype=float)
            out = np.searchsorted(self.splits, x, side="right").astype(np.int64)
            out[np.isnan(x)] = self.missing_bin
            return out
        if len(values) <= 16:  # one decision: plain Python beats building a Series
            keys = [_code(v) if self.kind == "coded" else v for v in values]
            return np.array(
                [self.missing_bin if _missing(k) else self.categories.get(str(k), -1) for k in keys],
                dtype=np.int64,
            )
        if self.kind == "coded":
            x = np.asarray(pd.to_numeric(pd.Series(values), errors="coerce"), dtype=float)
            floats = np.array(sorted(float(k) for k in self.categories))
            slots = np.clip(np.searchsorted(floats, x), 0, len(floats) - 1)
            code_bins = np.array([self.categories[str(_code(k))] for k in floats], dtype=np.int64)
            out = np.where(floats[slots] == x, code_bins[slots], -1).astype(np.int64)
            out[np.isnan(x)] = self.missing_bin
            return out
        series = pd.Series(values, dtype=object)
        missing = series.isna().to_numpy()
        codes = series.map(self.categories).to_numpy(dtype=float, na_value=np.nan)
        out = np.where(np.isnan(codes), -1, codes).astype(np.int64)
        out[missing] = self.missing_bin
        return out


@dataclass
class Scorecard:
    """A fitted, compiled WoE scorecard."""

    variables: list[ScoreVariable]
    intercept: float
    factor: float
    offset: float
    pdo: float = PDO
    base_points: float = BASE_POINTS
    base_odds: float = BASE_ODDS
    binning_process: Any = field(default=None, repr=False)  # the optbinning object, for reports

    @property
    def names(self) -> list[str]:
        return [v.name for v in self.variables]

    def bin_matrix(self, X: pd.DataFrame) -> np.ndarray:
        """(rows × features) bin indices (−1 = unseen category)."""
        return np.column_stack([v.bins(X[v.name].to_numpy()) for v in self.variables])

    def _lookup(self, bins: np.ndarray, attr: str, neutral: np.ndarray) -> np.ndarray:
        out = np.empty(bins.shape, dtype=float)
        for j, v in enumerate(self.variables):
            table = getattr(v, attr)
            col = bins[:, j]
            out[:, j] = np.where(col >= 0, table[np.clip(col, 0, None)], neutral[j])
        return out

    def woe_matrix(self, X: pd.DataFrame, bins: np.ndarray | None = None) -> np.ndarray:
        b = self.bin_matrix(X) if bins is None else bins
        return self._lookup(b, "woe", np.zeros(len(self.variables)))

    def points_matrix(self, X: pd.DataFrame, bins: np.ndarray | None = None) -> np.ndarray:
        """(rows × features) points; their row sums are the scores."""
        b = self.bin_matrix(X) if bins is None else bins
        return self._lookup(b, "points", self.neutral_points)

    @property
    def neutral_points(self) -> np.ndarray:
        """Points of a WoE-0 (unseen) value per feature."""
        share = (self.offset - self.factor * self.intercept) / max(len(self.variables), 1)
        return np.full(len(self.variables), share)

    @property
    def max_points(self) -> np.ndarray:
        """Best points each feature can give (the reference for reason codes)."""
        return np.array([float(np.max(v.points[: v.n_bins + 2])) for v in self.variables])

    def logit(self, X: pd.DataFrame, bins: np.ndarray | None = None) -> np.ndarray:
        w = self.woe_matrix(X, bins)
        beta = np.array([v.coefficient for v in self.variables])
        return np.asarray(self.intercept + w @ beta)

    def predict_pd(self, X: pd.DataFrame, bins: np.ndarray | None = None) -> np.ndarray:
        return np.asarray(1.0 / (1.0 + np.exp(-self.logit(X, bins))))

    def score(self, X: pd.DataFrame, bins: np.ndarray | None = None) -> np.ndarray:
        return np.asarray(self.points_matrix(X, bins).sum(axis=1))

    def score_to_pd(self, score: float) -> float:
        """Inverse of the scaling: the PD at a score."""
        ln_odds_good = (score - self.offset) / self.factor
        return 1.0 / (1.0 + math.exp(ln_odds_good))

    def pd_to_score(self, pd_: float) -> float:
        pd_ = min(max(pd_, 1e-12), 1 - 1e-12)
        return self.offset + self.factor * math.log((1 - pd_) / pd_)

    def table(self) -> pd.DataFrame:
        """The points table: one row per feature and bin."""
        rows = []
        for v in self.variables:
            for i, label in enumerate(v.labels):
                rows.append(
                    {
                        "feature": v.name,
                        "bin": label,
                        "woe": float(v.woe[i]),
                        "points": round(float(v.points[i]), 2),
                    }
                )
        return pd.DataFrame(rows)


def _numeric_label(splits: np.ndarray, i: int) -> str:
    lo = "-inf" if i == 0 else f"{splits[i - 1]:g}"
    hi = "inf" if i == len(splits) else f"{splits[i]:g}"
    return f"[{lo}, {hi})"


def fit_scorecard(
    X: pd.DataFrame,
    y: np.ndarray,
    *,
    numeric: list[str],
    categorical: list[str],
    pdo: float = PDO,
    base_points: float = BASE_POINTS,
    base_odds: float = BASE_ODDS,
) -> Scorecard:
    """Bin, regress and scale (see the module docstring)."""
    from optbinning import BinningProcess
    from sklearn.linear_model import LogisticRegression

    names = [c for c in X.columns if c in set(numeric) | set(categorical)]
    frame = X[names].copy()
    coded = [c for c in names if c in numeric and is_code(frame[c])]
    nominal = [c for c in names if c in categorical or c in coded]
    for c in nominal:
        frame[c] = (frame[c].map(_code) if c in coded else frame[c]).astype(object)
    process = BinningProcess(
        names,
        categorical_variables=nominal,
        binning_fit_params={c: {"monotonic_trend": "auto_asc_desc"} for c in names if c not in nominal},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        process.fit(frame, y)
    woe_columns: list[np.ndarray] = []
    raw_vars: list[tuple[str, str, np.ndarray, dict[str, int], list[str], np.ndarray]] = []
    for name in names:
        ob = process.get_binned_variable(name)
        table = ob.binning_table.build()
        woe = table["WoE"].to_numpy()[:-1].astype(float)  # drop the Totals row
        if name in nominal:
            mapping: dict[str, int] = {}
            labels: list[str] = []
            for i, group in enumerate(ob.splits):
                members = [str(g) for g in list(group)]
                for member in members:
                    mapping[member] = i
                labels.append(", ".join(members))
            splits = np.zeros(0)
            kind = "coded" if name in coded else "categorical"
        else:
            splits = np.asarray(ob.splits, dtype=float)
            mapping = {}
            labels = [_numeric_label(splits, i) for i in range(len(splits) + 1)]
            kind = "numeric"
        labels += ["Special", "Missing"]
        assert len(woe) == len(labels), (name, len(woe), len(labels))
        raw_vars.append((name, kind, splits, mapping, labels, woe))
    variables_tmp = [
        ScoreVariable(n, k, s, m, lab, w, 0.0, np.zeros(len(w))) for (n, k, s, m, lab, w) in raw_vars
    ]
    probe = Scorecard(variables_tmp, 0.0, 1.0, 0.0)
    W = probe.woe_matrix(X[names])
    woe_columns.append(W)
    regression = LogisticRegression(max_iter=1000)
    regression.fit(W, y)
    beta = regression.coef_[0]
    intercept = float(regression.intercept_[0])
    factor = pdo / math.log(2)
    offset = base_points - factor * math.log(base_odds)
    share = (offset - factor * intercept) / len(names)
    variables = [
        ScoreVariable(n, k, s, m, lab, w, float(b), -factor * float(b) * w + share)
        for (n, k, s, m, lab, w), b in zip(raw_vars, beta, strict=True)
    ]
    return Scorecard(
        variables=variables,
        intercept=intercept,
        factor=factor,
        offset=offset,
        pdo=pdo,
        base_points=base_points,
        base_odds=base_odds,
        binning_process=process,
    )
