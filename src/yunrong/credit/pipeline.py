"""Scoring: features → PD → grade → price → reasons, for one row or a batch. Pure over a fitted model.

`score_batch` is vectorised end to end (the benchmark's figure); `decide` handles one row and
returns the full explanation (reasons in both languages and the price or the decline).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pandas as pd

from yunrong.credit.grades import GRADES, grade_rank
from yunrong.credit.model import CreditModel
from yunrong.credit.pricing import Decline, Price, price, price_batch
from yunrong.credit.reasons import Reason, as_frame, reasons, top_reasons_batch


@dataclass(frozen=True)
class Terms:
    """Pricing inputs (annual fractions). ``cap`` None = no cap."""

    lgd: Decimal = Decimal("0.45")
    term_months: int = 12
    funding_cost: Decimal = Decimal("0.035")
    operating_cost: Decimal = Decimal("0.015")
    margin: Decimal = Decimal("0.02")
    fees: Decimal = Decimal("0.005")
    cap: Decimal | None = Decimal("0.124")  # 4 × a one-year LPR of 3.10 %


@dataclass(frozen=True)
class Decision:
    pd: float
    grade: str
    score: float
    price: Price | Decline
    reasons: list[Reason]


def score_batch(model: CreditModel, X: pd.DataFrame, terms: Terms = Terms()) -> dict[str, np.ndarray]:
    """PD, grade rank, score, rate, APR, declined and the top-3 reason feature indices per row."""
    card = model.scorecard
    bins = card.bin_matrix(X)
    points = card.points_matrix(X, bins)
    if model.decision == "scorecard":
        pd_ = card.predict_pd(X, bins)
    elif model.decision == "gbm":
        pd_ = model.gbm.predict_pd(X)
    else:
        pd_ = (card.predict_pd(X, bins) + model.gbm.predict_pd(X)) / 2
    rate, apr, declined = price_batch(
        pd_,
        float(terms.lgd),
        terms.term_months,
        float(terms.funding_cost),
        float(terms.operating_cost),
        float(terms.margin),
        float(terms.fees),
        None if terms.cap is None else float(terms.cap),
    )
    return {
        "pd": pd_,
        "grade": grade_rank(pd_),
        "score": points.sum(axis=1),
        "rate": rate,
        "apr": apr,
        "declined": declined,
        "reasons": top_reasons_batch(points, card.max_points),
    }


def decide(
    model: CreditModel, row: Mapping[str, object] | pd.Series | pd.DataFrame, terms: Terms = Terms()
) -> Decision:
    frame = as_frame(row)
    card = model.scorecard
    bins = card.bin_matrix(frame)
    if model.decision == "scorecard":
        pd_ = float(card.predict_pd(frame, bins)[0])
    elif model.decision == "gbm":
        pd_ = float(model.gbm.predict_pd(frame)[0])
    else:
        pd_ = float((card.predict_pd(frame, bins)[0] + model.gbm.predict_pd(frame)[0]) / 2)
    grade = GRADES[int(grade_rank(np.array([pd_]))[0])]
    quoted = price(
        Decimal(repr(round(pd_, 6))),
        terms.lgd,
        terms.term_months,
        terms.funding_cost,
        terms.operating_cost,
        terms.margin,
        terms.fees,
        terms.cap,
    )
    return Decision(
        pd=pd_,
        grade=grade.code,
        score=float(card.score(frame, bins)[0]),
        price=quoted,
        reasons=reasons(card, frame, bins=bins),
    )
