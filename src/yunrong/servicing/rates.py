"""Annual percentage rates and internal rates of return of dated cash flows.

The APR we disclose is the **annual effective rate** that makes the net present value of the
borrower's cash flows zero, with time in years of ACT/365 from the first flow (the XIRR
convention). PBoC Announcement [2021] No. 3 asks lenders to annualise all borrowing costs against
the principal actually used and allows compound or simple annualisation: this is the compound form,
fees included through the flows; `periodic_apr` gives the simple (nominal) one.

    Σ amountᵢ · (1 + apr) ^ −(daysᵢ / 365) = 0

It is solved for ``u = ln(1 + apr)`` (so the rate stays above −100 %) with Newton's method from
10 % and, when Newton diverges or does not converge, by bisection on the sign change nearest 0 %
found by scanning rates from −99.99 % up to e^700. Roots are found to about 1e-14 (relative, in
``u``) and returned as a ``Decimal`` rounded half-even to 10 decimal places (0.000 000 01 %).
`periodic_apr` is the nominal form (per-period IRR × periods per year) for equally spaced flows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from decimal import ROUND_HALF_EVEN, Context, Decimal
from itertools import pairwise

from yunrong.kit.errors import InvalidInput
from yunrong.servicing.schedules import Schedule

_PLACES = Decimal("1E-10")
#: Where the bisection looks for a sign change, in u = ln(1 + rate): rates from −99.99 % up to
#: e^700 − 1 (beyond any loan, but a root is a root).
_SCAN = (
    math.log(1e-4),
    math.log(0.01),
    math.log(0.1),
    math.log(0.5),
    math.log(0.8),
    0.0,
    math.log1p(0.05),
    math.log1p(0.1),
    math.log1p(0.2),
    math.log1p(0.5),
    math.log(2.0),
    math.log(3.0),
    math.log(6.0),
    math.log(11.0),
    math.log(101.0),
    10.0,
    20.0,
    50.0,
    100.0,
    200.0,
    400.0,
    700.0,
)


class RateError(InvalidInput):
    """Cash flows without a rate of return (one sign only, too few flows, or no root)."""

    code = "no-rate-of-return"
    title = "No rate of return"


def _npv(times: Sequence[float], amounts: Sequence[float], u: float) -> tuple[float, float]:
    """NPV at the rate ``e^u − 1`` and its derivative in ``u``; ``inf`` when a discount overflows."""
    value = slope = 0.0
    try:
        for t, amount in zip(times, amounts, strict=True):
            discounted = amount * math.exp(-t * u)
            value += discounted
            slope -= t * discounted
    except OverflowError:
        return math.inf, math.nan
    return value, slope


def _solve(times: Sequence[float], amounts: Sequence[float]) -> float | None:
    """The rate r with NPV(r) = 0, solved for u = ln(1 + r) (so r > −100 % always holds)."""
    if len(amounts) < 2 or not (any(a > 0 for a in amounts) and any(a < 0 for a in amounts)):
        return None
    scale = max(abs(a) for a in amounts)
    amounts = [a / scale for a in amounts]
    u = math.log1p(0.1)
    for _ in range(60):  # Newton
        value, slope = _npv(times, amounts, u)
        if not (math.isfinite(value) and math.isfinite(slope)) or slope == 0.0:
            break
        following = u - value / slope
        if not -50.0 < following < 700.0:
            break
        if abs(following - u) <= 1e-14 * max(1.0, abs(u)):
            return math.expm1(following)
        u = following
    found = _bisect(times, amounts)
    return None if found is None else math.expm1(found)


def _bisect(times: Sequence[float], amounts: Sequence[float]) -> float | None:
    points = [(u, _npv(times, amounts, u)[0]) for u in _SCAN]
    brackets = [
        (lo, flo, hi)
        for (lo, flo), (hi, fhi) in pairwise(points)
        if math.isfinite(flo) and math.isfinite(fhi) and (flo == 0.0 or flo * fhi < 0.0)
    ]
    if not brackets:
        return None
    lo, flo, hi = min(brackets, key=lambda b: abs(b[0] + b[2]))  # the bracket nearest 0 %
    if flo == 0.0:
        return lo
    for _ in range(200):
        mid = (lo + hi) / 2
        fmid = _npv(times, amounts, mid)[0]
        if fmid == 0.0 or hi - lo <= 1e-15 * max(1.0, abs(mid)):
            return mid
        if (fmid < 0.0) == (flo < 0.0):
            lo, flo = mid, fmid
        else:
            hi = mid
    return (lo + hi) / 2


def _dated(cash_flows: Sequence[tuple[date, int | float]]) -> tuple[list[float], list[float]]:
    """Times in years from the first flow and amounts, netted per date (zero nets dropped)."""
    netted: dict[date, int | float] = {}
    for when, amount in cash_flows:
        netted[when] = netted.get(when, 0) + amount
    first = min(netted)
    dates = sorted(when for when, amount in netted.items() if amount != 0)
    return [(when - first).days / 365.0 for when in dates], [float(netted[when]) for when in dates]


def xirr(cash_flows: Sequence[tuple[date, int | float]]) -> float | None:
    """Annual effective IRR (ACT/365) of dated flows, or ``None`` when there is none."""
    if len(cash_flows) < 2:
        return None
    return _solve(*_dated(cash_flows))


def _decimal(rate: float | None) -> Decimal:
    if rate is None or not math.isfinite(rate):
        raise RateError("these cash flows have no rate of return / 该现金流不存在内部收益率")
    # enough digits for any finite float, so that absurd (but real) rates quantize too
    return Decimal(rate).quantize(_PLACES, rounding=ROUND_HALF_EVEN, context=Context(prec=400))


def apr(cash_flows: Sequence[tuple[date, int]]) -> Decimal:
    """Annual effective rate (ACT/365, XIRR convention) solving NPV = 0, as a fraction.

    Flows on the same date are netted; flows that net to nothing on every date (money lent and
    repaid the same day, no fee) have an APR of 0.
    """
    if len(cash_flows) < 2:
        raise RateError("an APR needs at least two cash flows / 计算年化利率至少需要两笔现金流")
    times, amounts = _dated(cash_flows)
    if not amounts:
        return Decimal(0).quantize(_PLACES)
    return _decimal(_solve(times, amounts))


def periodic_apr(amounts: Sequence[int], periods_per_year: int = 12) -> Decimal:
    """Nominal annual rate of equally spaced flows: the per-period IRR × ``periods_per_year``."""
    rate = _solve([float(k) for k in range(len(amounts))], [float(a) for a in amounts])
    return _decimal(None if rate is None else rate * periods_per_year)


def loan_flows(schedule: Schedule, fee_minor: int = 0) -> list[tuple[date, int]]:
    """The borrower's cash flows: the money lent less the fee in, the instalments out."""
    if (
        isinstance(fee_minor, bool)
        or not isinstance(fee_minor, int)
        or not 0 <= fee_minor < schedule.principal
    ):
        raise RateError("the fee must be at least 0 and below the principal / 费用须不小于 0 且小于本金")
    draws = schedule.draws or ((schedule.start_date, schedule.principal),)
    flows = [(schedule.start_date, -fee_minor)] if fee_minor else []
    flows += list(draws)
    flows += [(i.due_date, -i.payment) for i in schedule.instalments]
    return flows


def loan_apr(schedule: Schedule, fee_minor: int = 0) -> Decimal:
    """The borrower's APR: receives the principal less ``fee_minor`` at the start, pays the instalments."""
    return apr(loan_flows(schedule, fee_minor))


def nominal_apr(schedule: Schedule, fee_minor: int = 0) -> Decimal:
    """The APR as a nominal annual rate: the IRR per period of the borrower's flows (fee included)
    times the periods in a year — the convention of China's all-in cost rule and of US Regulation Z,
    and the figure checked against the policy cap. (:func:`loan_apr` gives the effective rate.)"""
    periods = 12 if schedule.frequency.value == "monthly" else 4
    effective = loan_apr(schedule, fee_minor)
    per_period = (1 + float(effective)) ** (1 / periods) - 1
    return _decimal(per_period * periods)
