"""Stratified cross-validation of every model on any checked table, and its metrics.

For each of ``folds`` stratified folds (shuffled with ``seed``) every model is fitted on the other
folds and predicts the held-out fold; the metrics are computed on the pooled out-of-fold
predictions (one prediction per row, from a model that never saw it):

- **auc**: area under the ROC curve (0.5 = random, 1 = perfect ranking);
- **ks**: Kolmogorov–Smirnov statistic, the largest gap between the cumulative score
  distributions of bads and goods (max |TPR − FPR|);
- **gini**: ``2 · auc − 1``;
- **brier**: mean squared error of the calibrated PD against the 0/1 outcome (lower is better).

Models: ``scorecard`` (champion), ``gbm`` (challenger), ``ensemble`` (mean of their calibrated PDs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from yunrong.credit.model import MODELS, fit_model
from yunrong.credit.tabular import Dataset


def auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p))


def ks(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(y, p)
    return float(np.max(np.abs(tpr - fpr)))


def brier(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean((np.asarray(p, dtype=float) - np.asarray(y, dtype=float)) ** 2))


def metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    a = auc(y, p)
    return {
        "auc": round(a, 4),
        "ks": round(ks(y, p), 4),
        "gini": round(2 * a - 1, 4),
        "brier": round(brier(y, p), 4),
    }


@dataclass
class Evaluation:
    rows: int
    bad_rate: float
    folds: int
    seed: int
    y: np.ndarray
    oof: dict[str, np.ndarray]  # model -> out-of-fold calibrated PD
    scores: np.ndarray  # out-of-fold scorecard points
    fold_metrics: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    source: str = ""
    sha256: str = ""

    @property
    def models(self) -> dict[str, dict[str, float]]:
        return {name: metrics(self.y, p) for name, p in self.oof.items()}

    @property
    def best(self) -> str:
        found = self.models
        return max(found, key=lambda m: found[m]["auc"])

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "bad_rate": round(self.bad_rate, 4),
            "folds": self.folds,
            "seed": self.seed,
            "models": self.models,
            "best": self.best,
        }


def cross_validate(data: Dataset, *, folds: int = 5, seed: int = 0) -> Evaluation:
    from sklearn.model_selection import StratifiedKFold

    y = data.y.astype(int)
    oof = {m: np.zeros(len(y)) for m in MODELS}
    scores = np.zeros(len(y))
    per_fold: dict[str, list[dict[str, float]]] = {m: [] for m in MODELS}
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(np.zeros(len(y)), y):
        model = fit_model(
            data.X.iloc[train], y[train], numeric=data.numeric, categorical=data.categorical, seed=seed
        )
        held_out = data.X.iloc[test]
        predicted = model.predict(held_out)
        for m in MODELS:
            oof[m][test] = predicted[m]
            if len(np.unique(y[test])) == 2:
                per_fold[m].append(metrics(y[test], predicted[m]))
        scores[test] = model.scorecard.score(held_out)
    return Evaluation(
        rows=data.rows,
        bad_rate=data.bad_rate,
        folds=folds,
        seed=seed,
        y=y,
        oof=oof,
        scores=scores,
        fold_metrics=per_fold,
        source=data.source,
        sha256=data.sha256,
    )
