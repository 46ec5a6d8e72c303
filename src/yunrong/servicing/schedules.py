"""Repayment schedules, computed exactly: every figure is integer fen, every fraction a ``Fraction``.

One rounding rule, applied once per figure: **round half to even, to the fen** (banker's rounding,
`yunrong.kit.money.Rounding.HALF_EVEN`). It is applied to

- each period's interest: ``balance × annual_rate × year_fraction(period)`` computed exactly, then
  rounded once. For ``act/365f`` and ``act/360`` the year fraction counts the period's actual days;
  for ``30/360`` a regular period is by definition exactly 1/12 (monthly) or 1/4 (quarterly) of a
  year, and a first-period stub counts its 30/360 days;
- the level payment of an annuity (``equal_instalment``) or lease rent, computed exactly from the
  periodic rate ``r = annual_rate / 12`` (or ``/ 4``): ``P·r / (1 − (1+r)^−n)``, with a residual
  value ``RV``: ``(P − RV·(1+r)^−n)·r / (1 − (1+r)^−n)``, divided by ``1 + r`` when paid in advance.

Each instalment's principal is its payment less its interest (never below zero, never above the
balance); the **last instalment absorbs the rounding remainder**: its principal is the whole
remaining balance, so the principal parts always sum exactly to the principal and no balance is
ever negative. Equal-principal loans split the principal with largest-remainder allocation
(`yunrong.kit.money.allocate_minor`; the extra fen go to the earliest instalments).

Due dates fall on the start date's day of month (end-of-month clamped), one period apart, unless a
``first_due_date`` is given; then later due dates keep *its* day of month and the first period is a
stub whose interest is charged by the day count over its actual days.

`annuity_batch` generates many 30/360 monthly annuities at once with NumPy, in int64 where rounding
matters, and returns exactly what `build_schedule` returns for the same loans.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction

import numpy as np
import numpy.typing as npt

from yunrong.demands.model import RepaymentMethod
from yunrong.kit.errors import InvalidInput
from yunrong.kit.money import allocate_minor
from yunrong.servicing.daycount import DayCount, add_months, year_fraction


class Frequency(StrEnum):
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"


PERIOD_MONTHS: dict[Frequency, int] = {Frequency.MONTHLY: 1, Frequency.QUARTERLY: 3}

#: Largest principal `annuity_batch` accepts (10¹³ fen = 100 billion yuan): ``balance × rate_bp``
#: must stay inside int64.
BATCH_MAX_PRINCIPAL = 10**13
BATCH_MAX_RATE_BP = 100_000


class ScheduleError(InvalidInput):
    """A schedule was asked for with terms that cannot make one."""

    code = "invalid-schedule"
    title = "Invalid schedule terms"


@dataclass(frozen=True)
class Instalment:
    number: int
    due_date: date
    period_start: date
    principal: int
    interest: int
    payment: int
    balance_after: int


@dataclass(frozen=True)
class Schedule:
    """A schedule; ``principal`` is what was lent (for a revolving line: the total drawn)."""

    principal: int
    annual_rate: Decimal
    method: str
    frequency: Frequency
    day_count: DayCount
    start_date: date
    instalments: tuple[Instalment, ...]
    #: The level payment (annuity, lease rent) before the last instalment's remainder; 0 otherwise.
    level_payment: int = 0
    residual_minor: int = 0
    in_advance: bool = False
    #: Money lent and when: ``((start_date, principal),)`` except for a revolving line's draws.
    draws: tuple[tuple[date, int], ...] = ()

    @property
    def total_interest(self) -> int:
        return sum(i.interest for i in self.instalments)

    @property
    def total_payment(self) -> int:
        return sum(i.payment for i in self.instalments)

    @property
    def maturity_date(self) -> date:
        return self.instalments[-1].due_date


def level_payment(
    principal: int, periodic_rate: Fraction, periods: int, *, residual: int = 0, in_advance: bool = False
) -> int:
    """The exact level payment of an annuity, rounded half-even to the fen (see the module docstring)."""
    if periodic_rate == 0:
        return round(Fraction(principal - residual, periods))
    growth = (1 + periodic_rate) ** periods
    value = (principal * growth - residual) * periodic_rate / (growth - 1)
    if in_advance:
        value /= 1 + periodic_rate
    return round(value)  # Fraction.__round__ rounds half to even


def _instalment(
    number: int, due: date, start: date, principal: int, interest: int, balance: int
) -> Instalment:
    return Instalment(number, due, start, principal, interest, principal + interest, balance)


def build_schedule(
    *,
    principal: int,
    annual_rate: Decimal,
    term_months: int,
    method: str,
    start_date: date,
    frequency: Frequency = Frequency.MONTHLY,
    day_count: DayCount = DayCount.ACT_365F,
    first_due_date: date | None = None,
    residual_minor: int = 0,
    in_advance: bool = False,
    drawn: list[tuple[date, int]] | None = None,
) -> Schedule:
    """The repayment schedule of a loan or lease (see the module docstring for the rules).

    ``residual_minor`` and ``in_advance`` apply to ``lease_rent`` only (in advance: the first rent
    is due on the start date, and a residual value is paid with the last period's interest one
    period after the last rent). ``drawn`` applies to ``revolving`` only: the draws
    ``(date, amount)`` on a line of ``principal``; interest runs on the drawn balance from each
    draw's date and all principal is due at the end (default: the whole line drawn at the start).
    """
    try:
        kind = RepaymentMethod(method)
        frequency = Frequency(frequency)
        day_count = DayCount(day_count)
    except ValueError as exc:
        raise ScheduleError(f"{exc} / 不支持的还款方式、频率或计息基准") from None
    _check_terms(principal, annual_rate, term_months, frequency, start_date, first_due_date)
    if kind is not RepaymentMethod.LEASE_RENT and (residual_minor or in_advance):
        raise ScheduleError("residual value and rent in advance are for leases / 残值与先付租金仅适用于租赁")
    if kind is not RepaymentMethod.REVOLVING and drawn is not None:
        raise ScheduleError("draws are for revolving lines / 提款记录仅适用于循环额度")
    if not 0 <= residual_minor < principal:
        raise ScheduleError(
            "the residual value must be at least 0 and below the principal / 残值须不小于 0 且小于本金"
        )

    months = PERIOD_MONTHS[frequency]
    periods = term_months // months
    rate = Fraction(annual_rate)
    if first_due_date is None:
        dues = [add_months(start_date, k * months) for k in range(1, periods + 1)]
    else:
        dues = [add_months(first_due_date, k * months) for k in range(periods)]
    stub = dues[0] != add_months(start_date, months)
    starts = [start_date, *dues[:-1]]
    regular = Fraction(months, 12)

    def fraction(k: int) -> Fraction:
        """Year fraction of period k (0-based)."""
        if day_count is DayCount.THIRTY_360 and not (k == 0 and stub):
            return regular
        return year_fraction(starts[k], dues[k], day_count)

    def interest(balance: int, k: int) -> int:
        return round(balance * rate * fraction(k))

    rows: list[Instalment] = []
    pay = 0
    draws: tuple[tuple[date, int], ...] = ((start_date, principal),)
    lent = principal
    if kind is RepaymentMethod.LEASE_RENT and in_advance:
        pay = level_payment(principal, rate * regular, periods, residual=residual_minor, in_advance=True)
        first = principal if periods == 1 and residual_minor == 0 else min(pay, principal)
        balance = principal - first
        rows.append(_instalment(1, start_date, start_date, first, 0, balance))
        for k in range(periods - 1):
            due_interest = interest(balance, k)
            if k == periods - 2 and residual_minor == 0:
                part = balance
            else:
                part = min(balance, max(0, pay - due_interest))
            balance -= part
            rows.append(_instalment(k + 2, dues[k], starts[k], part, due_interest, balance))
        if balance:
            due_interest = interest(balance, periods - 1)
            rows.append(_instalment(periods + 1, dues[-1], starts[-1], balance, due_interest, 0))
    elif kind in (RepaymentMethod.EQUAL_INSTALMENT, RepaymentMethod.LEASE_RENT):
        pay = level_payment(principal, rate * regular, periods, residual=residual_minor)
        balance = principal
        for k in range(periods):
            due_interest = interest(balance, k)
            part = balance if k == periods - 1 else min(balance, max(0, pay - due_interest))
            balance -= part
            rows.append(_instalment(k + 1, dues[k], starts[k], part, due_interest, balance))
    elif kind is RepaymentMethod.EQUAL_PRINCIPAL:
        balance = principal
        for k, part in enumerate(allocate_minor(principal, [1] * periods)):
            due_interest = interest(balance, k)
            balance -= part
            rows.append(_instalment(k + 1, dues[k], starts[k], part, due_interest, balance))
    elif kind is RepaymentMethod.INTEREST_ONLY_BALLOON:
        for k in range(periods):
            part = principal if k == periods - 1 else 0
            rows.append(
                _instalment(k + 1, dues[k], starts[k], part, interest(principal, k), principal - part)
            )
    elif kind is RepaymentMethod.BULLET:
        total = round(principal * rate * sum((fraction(k) for k in range(periods)), Fraction(0)))
        rows.append(_instalment(1, dues[-1], start_date, principal, total, 0))
    else:  # revolving
        draws = _check_draws(drawn, principal, start_date, dues[-1])
        lent = sum(amount for _, amount in draws)
        for k in range(periods):
            weighted = Fraction(0)
            for when, amount in draws:
                if when <= starts[k]:
                    weighted += amount * fraction(k)
                elif when < dues[k]:
                    weighted += amount * year_fraction(when, dues[k], day_count)
            outstanding = sum(amount for when, amount in draws if when <= dues[k])
            part = lent if k == periods - 1 else 0
            rows.append(
                _instalment(k + 1, dues[k], starts[k], part, round(rate * weighted), outstanding - part)
            )
    return Schedule(
        principal=lent,
        annual_rate=annual_rate,
        method=str(kind),
        frequency=frequency,
        day_count=day_count,
        start_date=start_date,
        instalments=tuple(rows),
        level_payment=pay,
        residual_minor=residual_minor,
        in_advance=in_advance,
        draws=draws,
    )


def _check_terms(
    principal: int,
    annual_rate: Decimal,
    term_months: int,
    frequency: Frequency,
    start_date: date,
    first_due_date: date | None,
) -> None:
    if isinstance(principal, bool) or not isinstance(principal, int) or principal <= 0:
        raise ScheduleError("the principal must be a positive whole number of fen / 本金须为正整数（分）")
    if not isinstance(annual_rate, Decimal) or not annual_rate.is_finite() or annual_rate < 0:
        raise ScheduleError("the annual rate must be a non-negative Decimal / 年利率须为非负 Decimal")
    if isinstance(term_months, bool) or not isinstance(term_months, int) or term_months < 1:
        raise ScheduleError("the term must be at least one month / 期限至少为 1 个月")
    if term_months % PERIOD_MONTHS[frequency]:
        raise ScheduleError(
            f"a {term_months}-month term is not a whole number of {frequency} periods"
            f" / {term_months} 个月的期限不是整数个还款周期"
        )
    if first_due_date is not None and first_due_date <= start_date:
        raise ScheduleError("the first due date must be after the start date / 首个还款日须晚于起息日")


def _check_draws(
    drawn: list[tuple[date, int]] | None, limit: int, start: date, maturity: date
) -> tuple[tuple[date, int], ...]:
    if drawn is None:
        return ((start, limit),)
    draws = tuple(sorted(drawn))
    if not draws:
        raise ScheduleError("a revolving schedule needs at least one draw / 循环额度至少需要一笔提款")
    for when, amount in draws:
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise ScheduleError("each draw must be a positive whole number of fen / 每笔提款须为正整数（分）")
        if not start <= when < maturity:
            raise ScheduleError(
                f"a draw on {when} falls outside the line's term / {when} 的提款不在额度期限内"
            )
    if sum(amount for _, amount in draws) > limit:
        raise ScheduleError("the draws exceed the credit line / 提款总额超过授信额度")
    return draws


# --- many annuities at once ------------------------------------------------------------------------

_MONTHLY_DEN = 120_000  # rate in basis points / 10 000 / 12
_BLOCK = 16_384  # rows per pass: the working set stays in the CPU cache
Int64Array = npt.NDArray[np.int64]


def _int64(values: npt.ArrayLike, name: str) -> Int64Array:
    array = np.asarray(values)
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise ScheduleError(f"{name} must be a one-dimensional integer array / {name} 须为一维整数数组")
    return array.astype(np.int64, copy=False)


def _half_even_div(numerator: Int64Array, denominator: int) -> Int64Array:
    """``numerator / denominator`` rounded half to even, exactly, for non-negative int64."""
    shifted = numerator + denominator // 2
    quotient = shifted // denominator
    if denominator % 2 == 0:
        tie = (quotient * denominator) == shifted
        quotient -= tie & quotient  # a tie rounded up to an odd number goes back down to even
    return quotient


def batch_level_payments(principals: Int64Array, rates_bp: Int64Array, term_months: int) -> Int64Array:
    """`level_payment` for many monthly annuities: exactly the same integers.

    A float64 estimate (``expm1``/``log1p``, relative error well below 1e-14) decides the rounding
    except where it lies within a relative 1e-12 of a half-fen; those few are recomputed exactly.
    """
    zero = rates_bp == 0
    rate = np.where(zero, 1.0, rates_bp / float(_MONTHLY_DEN))  # zero rates are handled below
    estimate = principals * rate / -np.expm1(-term_months * np.log1p(rate))
    payments: Int64Array = np.floor(estimate + 0.5).astype(np.int64)
    near = np.abs(estimate - np.floor(estimate) - 0.5) <= estimate * 1e-12 + 1e-6
    for i in np.flatnonzero(near & (rates_bp > 0)):
        payments[i] = level_payment(int(principals[i]), Fraction(int(rates_bp[i]), _MONTHLY_DEN), term_months)
    if zero.any():
        payments[zero] = _half_even_div(principals[zero], term_months)
    return payments


def annuity_batch(
    principals: npt.ArrayLike,
    annual_rates_bp: npt.ArrayLike,
    term_months: int,
    *,
    out: tuple[Int64Array, Int64Array] | None = None,
) -> tuple[Int64Array, Int64Array]:
    """Principal and interest parts, ``int64[n, term_months]``, of n monthly 30/360 annuities.

    Identical to ``build_schedule(method="equal_instalment", day_count=THIRTY_360,
    frequency=MONTHLY, annual_rate=Decimal(bp) / 10000)`` for any start date on day 1..28 (every
    period is then a regular 1/12 year). Rates are whole basis points (0..100 000); principals
    1..10¹³ fen. The arrays returned are transposed views of ``[term, n]`` buffers: pass two
    C-contiguous int64 ``[term, n]`` arrays as ``out`` to reuse buffers (they are overwritten).
    """
    p = _int64(principals, "principals")
    bp = _int64(annual_rates_bp, "annual_rates_bp")
    if p.shape != bp.shape:
        raise ScheduleError("principals and rates differ in length / 本金与利率数组长度不一致")
    if isinstance(term_months, bool) or not isinstance(term_months, int) or term_months < 1:
        raise ScheduleError("the term must be at least one month / 期限至少为 1 个月")
    if p.size and (p.min() <= 0 or p.max() > BATCH_MAX_PRINCIPAL):
        raise ScheduleError("principals must be 1..10^13 fen / 本金须在 1 至 10^13 分之间")
    if bp.size and (bp.min() < 0 or bp.max() > BATCH_MAX_RATE_BP):
        raise ScheduleError("rates must be 0..100000 basis points / 利率须在 0 至 100000 个基点之间")
    n, last = p.size, term_months - 1
    payments = batch_level_payments(p, bp, term_months)
    if out is None:
        principal_out = np.empty((term_months, n), dtype=np.int64)
        interest_out = np.empty((term_months, n), dtype=np.int64)
    else:
        principal_out, interest_out = out
        for buffer in out:
            if buffer.shape != (term_months, n) or buffer.dtype != np.int64 or not buffer.flags.c_contiguous:
                raise ScheduleError(
                    "out must be two C-contiguous int64 [term, n] arrays"
                    " / out 须为两个 C 连续的 int64 [期数, n] 数组"
                )
    half = _MONTHLY_DEN // 2
    scratch = np.empty((2, min(n, _BLOCK)), dtype=np.int64)
    ties = np.empty(min(n, _BLOCK), dtype=np.bool_)
    for lo in range(0, n, _BLOCK):
        hi = min(lo + _BLOCK, n)
        balance = p[lo:hi].copy()
        rate, pay = bp[lo:hi], payments[lo:hi]
        shifted, check = scratch[:, : hi - lo]
        tie = ties[: hi - lo]
        for k in range(term_months):
            # interest = balance × bp / 120 000 rounded half to even (as _half_even_div): round
            # half up, then a tie that went up to an odd number comes back down (ties are rare)
            np.multiply(balance, rate, out=shifted)
            shifted += half
            interest = np.floor_divide(shifted, _MONTHLY_DEN, out=interest_out[k, lo:hi])
            np.multiply(interest, _MONTHLY_DEN, out=check)
            np.equal(check, shifted, out=tie)
            if tie.any():
                interest -= tie & (interest & 1)
            if k == last:
                principal_out[k, lo:hi] = balance
            else:
                balance -= np.subtract(pay, interest, out=principal_out[k, lo:hi])
        # The clamps of the scalar rule (principal within [0, balance]) bind only for tiny or
        # extreme loans; redo those rows one by one. Principal parts are all >= 0 and the balance
        # before the last instalment is >= 0 exactly when no clamp was needed.
        bad = (principal_out[:last, lo:hi].min(axis=0, initial=0) < 0) | (principal_out[last, lo:hi] < 0)
        for j in np.flatnonzero(bad):
            i = lo + int(j)
            _scalar_annuity(
                int(p[i]), int(bp[i]), int(payments[i]), term_months, principal_out, interest_out, i
            )
    return principal_out.T, interest_out.T


def _scalar_annuity(
    principal: int,
    rate_bp: int,
    pay: int,
    term: int,
    principal_out: Int64Array,
    interest_out: Int64Array,
    i: int,
) -> None:
    balance = principal
    for k in range(term):
        interest = round(Fraction(balance * rate_bp, _MONTHLY_DEN))
        part = balance if k == term - 1 else min(balance, max(0, pay - interest))
        balance -= part
        principal_out[k, i], interest_out[k, i] = part, interest
