"""Probability calibration.

A model's raw probabilities are mapped to calibrated PDs by **Platt scaling on the logit**:
``pd = σ(a · logit(p_raw) + b)``, fitted by logistic regression of the outcome on ``logit(p_raw)``
over **out-of-fold** predictions (the model never calibrates on rows it was trained on). The map
is monotone, so it changes no ranking metric (AUC, KS); it fixes the level and spread of the PDs,
which is what grades and prices use.

The scorecard's logistic regression is calibrated by construction (it is fitted by maximum
likelihood on the WoE values), so it uses the identity map.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EPS = 1e-6


def logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(np.asarray(p, dtype=float), EPS, 1 - EPS)
    return np.asarray(np.log(q / (1 - q)))


def sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-np.asarray(z, dtype=float))))


@dataclass(frozen=True)
class Platt:
    """``pd = σ(slope · logit(p) + intercept)``; the identity is ``Platt(1, 0)``."""

    slope: float = 1.0
    intercept: float = 0.0

    def __call__(self, p: np.ndarray) -> np.ndarray:
        if self.slope == 1.0 and self.intercept == 0.0:
            return np.asarray(p, dtype=float)
        return sigmoid(self.slope * logit(p) + self.intercept)


def fit_platt(p_raw: np.ndarray, y: np.ndarray) -> Platt:
    """Fit the Platt map on out-of-fold raw probabilities and outcomes (1 = bad)."""
    from sklearn.linear_model import LogisticRegression

    z = logit(p_raw).reshape(-1, 1)
    model = LogisticRegression(C=1e6, max_iter=1000)
    model.fit(z, np.asarray(y))
    slope = float(model.coef_[0][0])
    if slope <= 0:  # a model worse than random out of fold: do not invert its ranking
        return Platt(0.0, float(logit(np.array([np.mean(y)]))[0]))
    return Platt(slope, float(model.intercept_[0]))
