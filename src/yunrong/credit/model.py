"""The fitted credit model: champion scorecard, challenger GBM and their ensemble, as one object.

``CreditModel.predict`` returns the calibrated PD of every model; ``decision`` names the one whose
PD is used for grades and prices (default ``ensemble``: the simple average of the two calibrated
PDs). Reason codes and counterfactuals come from the scorecard, whose points per feature are
additive and explainable (see `yunrong.credit.reasons`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from yunrong.credit.gbm import GbmModel, fit_gbm
from yunrong.credit.scorecard import Scorecard, fit_scorecard

MODELS = ("scorecard", "gbm", "ensemble")


@dataclass
class CreditModel:
    scorecard: Scorecard
    gbm: GbmModel
    numeric: list[str]
    categorical: list[str]
    decision: str = "ensemble"
    labels: dict[str, str] = field(default_factory=dict)  # optional plain-word names per feature

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    def predict(self, X: pd.DataFrame) -> dict[str, np.ndarray]:
        """Calibrated PDs of every model."""
        sc = self.scorecard.predict_pd(X)
        gb = self.gbm.predict_pd(X)
        return {"scorecard": sc, "gbm": gb, "ensemble": (sc + gb) / 2.0}

    def predict_pd(self, X: pd.DataFrame) -> np.ndarray:
        return self.predict(X)[self.decision]

    def check_columns(self, X: pd.DataFrame) -> list[str]:
        """Feature columns the model needs that ``X`` lacks."""
        return [c for c in self.features if c not in X.columns]


def fit_model(
    X: pd.DataFrame,
    y: np.ndarray,
    *,
    numeric: list[str],
    categorical: list[str],
    seed: int = 0,
    decision: str = "ensemble",
) -> CreditModel:
    if decision not in MODELS:
        raise ValueError(f"decision model must be one of {', '.join(MODELS)}")
    scorecard = fit_scorecard(X, y, numeric=numeric, categorical=categorical)
    gbm = fit_gbm(X, y, numeric=numeric, categorical=categorical, seed=seed)
    return CreditModel(
        scorecard=scorecard,
        gbm=gbm,
        numeric=list(numeric),
        categorical=list(categorical),
        decision=decision,
    )
