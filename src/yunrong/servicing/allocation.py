"""Where a repayment goes, and how it is shared among the note holders: pure, exact to the fen.

**Allocation.** What the enterprise owes is a list of *buckets* filled in order until the money
runs out; whatever is left is *held* (an overpayment). The order is configurable per product
(:data:`PRODUCT_RULES`); the default is fees → penalty → interest → principal, oldest instalment
first. Fees and penalty are owed by the loan as a whole (one bucket each); interest and principal
are owed per instalment. ``by_instalment=True`` (the default) settles the oldest instalment fully
(its interest, then its principal) before the next; ``False`` pays every instalment's interest
before any principal. So with the default order a partial payment clears fees, then penalty, then
instalment 1's interest and principal, then instalment 2's, and so on.

**Distribution.** Each part (principal, interest, penalty) is split among the notes pro rata to
their outstanding principal by largest remainder (`yunrong.kit.money.allocate_minor`), so the parts
sum exactly to the whole. The platform's disclosed service fee is a share of the *interest*
(``fee_bp`` basis points, rounded half up to the fen), split among the notes in proportion to
their interest, again by largest remainder; each holder receives its principal, interest and
penalty less its part of the fee.

**Early repayment** (:func:`plan_repayment`) also pays the current period's interest *to the value
date* (the principal from that period on × the contract rate × the day count's year fraction from
the period's start, rounded half to even like the schedule itself); no prepayment penalty. In full
it settles everything. In part it reduces the principal and the schedule is written again as a new
version: the paid rows, one paid row for the early repayment itself (due on the value date), then a
new schedule from the value date whose first instalment keeps the old due date (later ones keep its
day of month), either with as many instalments as were left (``smaller_instalment``) or with the
fewest whose level payment (equal principal: principal per period) is not above today's
(``shorter_term``). The plan is computed without writing anything, so a preview is exactly what is
later written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from typing import Any

from yunrong.kit.money import allocate_minor
from yunrong.servicing.daycount import DayCount, year_fraction
from yunrong.servicing.schedules import PERIOD_MONTHS, Frequency, build_schedule, level_payment


class Component(StrEnum):
    FEES = "fees"
    PENALTY = "penalty"
    INTEREST = "interest"
    PRINCIPAL = "principal"


#: Owed by the loan as a whole, not per instalment.
LOAN_LEVEL = frozenset({Component.FEES, Component.PENALTY})
DEFAULT_ORDER = (Component.FEES, Component.PENALTY, Component.INTEREST, Component.PRINCIPAL)


@dataclass(frozen=True)
class AllocationRule:
    order: tuple[Component, ...] = DEFAULT_ORDER
    by_instalment: bool = True

    def __post_init__(self) -> None:
        if sorted(self.order) != sorted(Component) or len(self.order) != len(Component):
            raise ValueError("an allocation order names each of fees, penalty, interest, principal once")


DEFAULT_RULE = AllocationRule()

#: Per product (``Loan.product``): products not named here use :data:`DEFAULT_RULE`.
PRODUCT_RULES: dict[str, AllocationRule] = {}


def rule_for(product: str) -> AllocationRule:
    return PRODUCT_RULES.get(product, DEFAULT_RULE)


@dataclass(frozen=True)
class InstalmentOwed:
    number: int
    interest: int
    principal: int


@dataclass(frozen=True)
class Owed:
    """What is owed now; ``instalments`` oldest first."""

    fees: int = 0
    penalty: int = 0
    instalments: tuple[InstalmentOwed, ...] = ()

    def __post_init__(self) -> None:
        amounts = [self.fees, self.penalty]
        for i in self.instalments:
            amounts += [i.interest, i.principal]
        if any(a < 0 for a in amounts):
            raise ValueError("owed amounts are never negative")

    @property
    def total(self) -> int:
        return self.fees + self.penalty + sum(i.interest + i.principal for i in self.instalments)


@dataclass(frozen=True)
class InstalmentPaid:
    number: int
    interest: int
    principal: int


@dataclass(frozen=True)
class Allocation:
    fees: int
    penalty: int
    interest: int
    principal: int
    held: int
    instalments: tuple[InstalmentPaid, ...] = field(default=())

    @property
    def allocated(self) -> int:
        return self.fees + self.penalty + self.interest + self.principal

    def paid_for(self, number: int) -> InstalmentPaid:
        for paid in self.instalments:
            if paid.number == number:
                return paid
        return InstalmentPaid(number, 0, 0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "fees": self.fees,
            "penalty": self.penalty,
            "interest": self.interest,
            "principal": self.principal,
            "held": self.held,
            "instalments": [
                {"number": i.number, "interest": i.interest, "principal": i.principal}
                for i in self.instalments
            ],
        }


def _buckets(owed: Owed, rule: AllocationRule) -> list[tuple[Component, int | None, int]]:
    loan_level = {Component.FEES: owed.fees, Component.PENALTY: owed.penalty}
    out: list[tuple[Component, int | None, int]] = []
    order = rule.order
    k = 0
    while k < len(order):
        component = order[k]
        if component in LOAN_LEVEL:
            out.append((component, None, loan_level[component]))
            k += 1
            continue
        group = [component]
        if rule.by_instalment:  # consecutive per-instalment components go instalment by instalment
            while k + len(group) < len(order) and order[k + len(group)] not in LOAN_LEVEL:
                group.append(order[k + len(group)])
        for inst in owed.instalments:
            for c in group:
                out.append((c, inst.number, inst.interest if c is Component.INTEREST else inst.principal))
        k += len(group)
    return out


def allocate(amount: int, owed: Owed, rule: AllocationRule = DEFAULT_RULE) -> Allocation:
    """Fill what is owed in the rule's order with ``amount``; the rest is held."""
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
        raise ValueError("the amount to allocate is a non-negative whole number of minor units")
    left = amount
    totals = dict.fromkeys(Component, 0)
    per: dict[int, list[int]] = {i.number: [0, 0] for i in owed.instalments}
    for component, number, due in _buckets(owed, rule):
        part = min(left, due)
        if part <= 0:
            continue
        left -= part
        totals[component] += part
        if number is not None:
            per[number][0 if component is Component.INTEREST else 1] += part
    return Allocation(
        fees=totals[Component.FEES],
        penalty=totals[Component.PENALTY],
        interest=totals[Component.INTEREST],
        principal=totals[Component.PRINCIPAL],
        held=left,
        instalments=tuple(
            InstalmentPaid(i.number, per[i.number][0], per[i.number][1])
            for i in owed.instalments
            if per[i.number] != [0, 0]
        ),
    )


# --- distribution -----------------------------------------------------------------------------------


def service_fee(interest: int, fee_bp: int) -> int:
    """The platform's disclosed service fee on ``interest``: basis points, rounded half up."""
    if interest < 0 or fee_bp < 0 or fee_bp > 10_000:
        raise ValueError("the fee is a share (0..10 000 bp) of non-negative interest")
    return (interest * fee_bp + 5_000) // 10_000


@dataclass(frozen=True)
class Share:
    principal: int
    interest: int
    penalty: int
    service_fee: int

    @property
    def net(self) -> int:
        return self.principal + self.interest + self.penalty - self.service_fee


def distribute(principal: int, interest: int, penalty: int, weights: list[int], fee_bp: int) -> list[Share]:
    """Each note's share (``weights``: its outstanding principal), the fee on interest deducted."""
    principals = allocate_minor(principal, weights)
    interests = allocate_minor(interest, weights)
    penalties = allocate_minor(penalty, weights)
    fee = service_fee(interest, fee_bp)
    fees = allocate_minor(fee, interests) if fee else [0] * len(weights)
    return [Share(p, i, n, f) for p, i, n, f in zip(principals, interests, penalties, fees, strict=True)]


# --- early repayment and the schedule after ----------------------------------------------------


class Kind(StrEnum):
    SCHEDULED = "scheduled"
    EARLY_FULL = "early_full"
    EARLY_PARTIAL = "early_partial"


class EarlyOption(StrEnum):
    SHORTER_TERM = "shorter_term"  # keep the instalment, finish sooner
    SMALLER_INSTALMENT = "smaller_instalment"  # keep the term, pay less each period


#: Methods whose instalment can be kept while the term shortens.
SHORTER_TERM_METHODS = frozenset({"equal_instalment", "equal_principal"})


# --- the plan: what a sum of money does to a loan (pure) ------------------------------------------


@dataclass(frozen=True)
class Row:
    """One instalment of a schedule version, with what was paid on it."""

    number: int
    period_start: date
    due_date: date
    principal_due: int
    interest_due: int
    principal_paid: int = 0
    interest_paid: int = 0
    penalty_paid: int = 0
    status: str = "scheduled"
    paid_on: date | None = None

    @property
    def unpaid_principal(self) -> int:
        return self.principal_due - self.principal_paid

    @property
    def unpaid_interest(self) -> int:
        return self.interest_due - self.interest_paid

    @property
    def open(self) -> bool:
        return self.status in ("scheduled", "due")


@dataclass(frozen=True)
class Terms:
    """What the plan needs of a loan and its servicing row (plain values)."""

    annual_rate: Decimal
    day_count: DayCount
    frequency: Frequency
    method: str
    penalty_accrued: int
    principal_outstanding: int
    product: str = ""


@dataclass(frozen=True)
class Plan:
    kind: Kind  # what was done: an early repayment that fell short is applied as a scheduled one
    value_date: date
    money: int  # the new money plus the overpayment held
    allocation: Allocation
    rows: tuple[Row, ...]  # the schedule after: the same version updated, or the new version
    new_version: bool
    closes: bool
    interest_to_date: int
    payoff: int  # what would have closed the loan on the value date
    principal_after: int

    @property
    def held(self) -> int:
        return self.allocation.held


def interest_to_date(terms: Terms, current: Row, balance: int, value_date: date) -> int:
    """The current period's interest from its start to the value date, on ``balance``."""
    if value_date <= current.period_start:
        return 0
    exact = (
        balance
        * Fraction(terms.annual_rate)
        * year_fraction(current.period_start, value_date, terms.day_count)
    )
    return min(round(exact), current.unpaid_interest)


def _split(rows: Sequence[Row], value_date: date) -> tuple[list[Row], Row | None, int]:
    """The rows fallen due and unpaid, the current (first not yet due) row, the principal from it on."""
    due = [r for r in rows if r.open and r.due_date <= value_date]
    later = [r for r in rows if r.open and r.due_date > value_date]
    return due, (later[0] if later else None), sum(r.unpaid_principal for r in later)


def _owed(terms: Terms, due: Sequence[Row], extra: InstalmentOwed | None) -> Owed:
    items = [InstalmentOwed(r.number, r.unpaid_interest, r.unpaid_principal) for r in due]
    if extra is not None:
        items.append(extra)
    return Owed(fees=0, penalty=terms.penalty_accrued, instalments=tuple(items))


def _pay(row: Row, allocation: Allocation, value_date: date, penalty: int) -> Row:
    paid = allocation.paid_for(row.number)
    updated = replace(
        row,
        principal_paid=row.principal_paid + paid.principal,
        interest_paid=row.interest_paid + paid.interest,
        penalty_paid=row.penalty_paid + penalty,
    )
    if updated.unpaid_principal == 0 and updated.unpaid_interest == 0 and updated.open:
        updated = replace(updated, status="paid", paid_on=value_date)
    return updated


def _penalty_row(due: Sequence[Row], current: Row | None) -> int | None:
    """Which instalment records the penalty paid: the oldest one fallen due."""
    if due:
        return due[0].number
    return current.number if current else None


def _new_schedule_rows(
    terms: Terms,
    current: Row,
    remaining: int,
    balance_before: int,
    balance_after: int,
    value_date: date,
    option: EarlyOption,
) -> list[Row]:
    months = PERIOD_MONTHS[terms.frequency]
    periods = remaining
    if option is EarlyOption.SHORTER_TERM:
        if terms.method == "equal_instalment":
            r = Fraction(terms.annual_rate) * Fraction(months, 12)
            today = level_payment(balance_before, r, remaining)
            periods = next(
                (m for m in range(1, remaining + 1) if level_payment(balance_after, r, m) <= today), remaining
            )
        else:  # equal principal: keep the principal per period
            per = max(1, -(-balance_before // remaining))
            periods = min(remaining, max(1, -(-balance_after // per)))
    schedule = build_schedule(
        principal=balance_after,
        annual_rate=terms.annual_rate,
        term_months=periods * months,
        method=terms.method,
        start_date=value_date,
        frequency=terms.frequency,
        day_count=terms.day_count,
        first_due_date=current.due_date,
    )
    return [
        Row(current.number + i.number, i.period_start, i.due_date, i.principal, i.interest)
        for i in schedule.instalments
    ]


def plan_repayment(
    terms: Terms,
    rows: Sequence[Row],
    *,
    money: int,
    kind: Kind,
    option: EarlyOption | None,
    value_date: date,
) -> Plan:
    """What ``money`` (new money plus the overpayment held) does to the loan on ``value_date``."""
    rule = rule_for(terms.product)
    due, current, later_principal = _split(rows, value_date)
    to_date = 0 if current is None else interest_to_date(terms, current, later_principal, value_date)
    extra = None if current is None else InstalmentOwed(current.number, to_date, later_principal)
    early_owed = _owed(terms, due, extra)
    payoff = early_owed.total
    if kind is not Kind.SCHEDULED and current is not None:
        allocation = allocate(money, early_owed, rule)
        paid_now = allocation.paid_for(current.number)
        full = allocation.allocated == payoff
        partial_ok = (
            kind is Kind.EARLY_PARTIAL
            and option is not None
            and allocation.allocated - paid_now.principal == payoff - later_principal
            and paid_now.principal > 0
        )
        if full or partial_ok:
            return _early_plan(
                terms,
                rows,
                due,
                current,
                later_principal,
                allocation,
                money,
                kind,
                option,
                value_date,
                to_date,
                payoff,
                full,
            )
    # A scheduled repayment (or an early one that no longer covers what it was for): pay what is due.
    allocation = allocate(money, _owed(terms, due, None), rule)
    penalty_at = _penalty_row(due, current)
    after = tuple(
        _pay(r, allocation, value_date, allocation.penalty if r.number == penalty_at else 0)
        if r.open and r.due_date <= value_date
        else r
        for r in rows
    )
    principal_after = terms.principal_outstanding - allocation.principal
    closes = all(not r.open for r in after)
    return Plan(
        Kind.SCHEDULED, value_date, money, allocation, after, False, closes, to_date, payoff, principal_after
    )


def _early_plan(
    terms: Terms,
    rows: Sequence[Row],
    due: Sequence[Row],
    current: Row,
    later_principal: int,
    allocation: Allocation,
    money: int,
    kind: Kind,
    option: EarlyOption | None,
    value_date: date,
    to_date: int,
    payoff: int,
    full: bool,
) -> Plan:
    penalty_at = _penalty_row(due, current)
    kept = [
        _pay(r, allocation, value_date, allocation.penalty if r.number == penalty_at else 0) if r.open else r
        for r in rows
        if r.number < current.number
    ]
    paid_now = allocation.paid_for(current.number)
    early_row = Row(
        current.number,
        current.period_start,
        value_date,
        paid_now.principal,
        paid_now.interest,
        paid_now.principal,
        paid_now.interest,
        allocation.penalty if penalty_at == current.number else 0,
        "paid",
        value_date,
    )
    new: list[Row] = []
    principal_after = later_principal - paid_now.principal
    if not full:
        assert option is not None
        remaining = sum(1 for r in rows if r.open and r.due_date > value_date)
        new = _new_schedule_rows(
            terms, current, remaining, later_principal, principal_after, value_date, option
        )
    return Plan(
        Kind.EARLY_FULL if full else kind,
        value_date,
        money,
        allocation,
        (*kept, early_row, *new),
        True,
        full,
        to_date,
        payoff,
        principal_after + sum(r.unpaid_principal for r in kept),
    )
