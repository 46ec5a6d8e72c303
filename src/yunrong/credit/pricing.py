"""Risk-based pricing under a cap. Pure: numbers in, a price or a reasoned decline out.

All rates are **annual fractions** as ``Decimal`` (``Decimal("0.0345")`` = 3.45 %).

    annual rate = funding cost + expected loss + operating cost + margin
    expected loss = PD × LGD                         (12-month PD, loss given default)
    fee rate = fees / (term in years)                (fees: one-off, as a fraction of principal)
    all-in APR = annual rate + fee rate + penalty    (penalty: any surcharge on overdue amounts)

The fee is spread over the term as if the principal were outstanding to maturity; for an
amortising loan the true APR of the same fee is higher, so ``fee rate`` is conservatively
doubled for amortising schedules (``amortising=True``, the platform's equal-instalment loans),
which bounds it from above (the average balance of an equal-instalment loan is just over half the
principal). The annual rate is rounded **up** to a whole basis point (risk is never under-priced
by rounding); the APR is checked after rounding.

**Cap** (``cap``; ``None`` = no cap): under ``cn-2016`` it is 4 × the one-year LPR at the contract
date (`yunrong.supervision.policy.interest_cap`, which gives percent — divide by 100). When the
fair all-in APR exceeds the cap, the demand is **declined** with that reason; it is never priced
below its risk. Hence, by construction, every ``Price`` has ``apr <= cap`` (property-tested).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

import numpy as np

BP = Decimal("0.0001")


@dataclass(frozen=True, slots=True)
class Price:
    annual_rate: Decimal  # the contract's nominal annual interest rate
    apr: Decimal  # all-in: rate + fees + penalty, annualised
    expected_loss: Decimal
    funding_cost: Decimal
    operating_cost: Decimal
    margin: Decimal
    fee_rate: Decimal
    penalty: Decimal
    cap: Decimal | None


@dataclass(frozen=True, slots=True)
class Decline:
    reason: str  # machine code
    message_en: str
    message_zh: str
    fair_apr: Decimal | None = None
    cap: Decimal | None = None


def _dec(value: Decimal | float | int | str) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _pct(value: Decimal) -> str:
    return f"{(value * 100).quantize(Decimal('0.01'))}%"


def price(
    pd: Decimal | float,
    lgd: Decimal | float,
    term_months: int,
    funding_cost: Decimal,
    operating_cost: Decimal,
    margin: Decimal,
    fees: Decimal,
    cap: Decimal | None,
    *,
    penalty: Decimal = Decimal(0),
    amortising: bool = True,
) -> Price | Decline:
    """The risk-based price of a loan, or a ``Decline`` naming why there is none."""
    p, loss = _dec(pd), _dec(lgd)
    if not Decimal(0) <= p <= Decimal(1):
        raise ValueError(f"PD must be in [0, 1], got {p}")
    if not Decimal(0) <= loss <= Decimal(1):
        raise ValueError(f"LGD must be in [0, 1], got {loss}")
    if term_months <= 0:
        raise ValueError("term must be at least one month")
    for name, value in (
        ("funding cost", funding_cost),
        ("operating cost", operating_cost),
        ("margin", margin),
        ("fees", fees),
        ("penalty", penalty),
    ):
        if _dec(value) < 0:
            raise ValueError(f"{name} must not be negative")
    if p >= 1:
        return Decline("certain-default", "PD is 100%: no price covers the risk", "违约概率为100%，无法定价")
    expected_loss = p * loss
    rate = (_dec(funding_cost) + expected_loss + _dec(operating_cost) + _dec(margin)).quantize(
        BP, rounding=ROUND_CEILING
    )
    # fees × 12 / months: one division, so an exact quotient is not pushed over a basis point by the
    # rounding of 13/12 and the like before the ceiling.
    fee_rate = (_dec(fees) * 12 * (2 if amortising else 1) / Decimal(term_months)).quantize(
        BP, rounding=ROUND_CEILING
    )
    apr = rate + fee_rate + _dec(penalty)
    if cap is not None and apr > cap:
        return Decline(
            "above-rate-cap",
            f"the fair all-in rate {_pct(apr)} exceeds the cap of {_pct(cap)}",
            f"风险定价的综合年化利率 {_pct(apr)} 超过上限 {_pct(cap)}",
            fair_apr=apr,
            cap=cap,
        )
    return Price(
        annual_rate=rate,
        apr=apr,
        expected_loss=expected_loss,
        funding_cost=_dec(funding_cost),
        operating_cost=_dec(operating_cost),
        margin=_dec(margin),
        fee_rate=fee_rate,
        penalty=_dec(penalty),
        cap=cap,
    )


def price_batch(
    pd: np.ndarray,
    lgd: float,
    term_months: int,
    funding_cost: float,
    operating_cost: float,
    margin: float,
    fees: float,
    cap: float | None,
    *,
    penalty: float = 0.0,
    amortising: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised `price` for batch scoring: (annual rate, APR, declined) arrays, in float.

    Same formula and rounding (up to a basis point); a row is declined where its APR exceeds the
    cap (rate and APR are NaN there). Tested to agree with `price`."""
    p = np.asarray(pd, dtype=float)
    rate = np.ceil(np.round((funding_cost + p * lgd + operating_cost + margin) * 1e4, 6)) / 1e4
    fee_rate = np.ceil(round(fees / (term_months / 12) * (2 if amortising else 1) * 1e4, 6)) / 1e4
    apr = np.round(rate + fee_rate + penalty, 10)
    declined = (p >= 1) | (apr > cap + 1e-12 if cap is not None else np.zeros(len(p), dtype=bool))
    return np.where(declined, np.nan, rate), np.where(declined, np.nan, apr), declined
