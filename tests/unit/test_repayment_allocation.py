"""Repayment allocation and distribution (pure): parts sum to the amount, nothing is negative, the
order is respected, the pro-rata shares sum exactly; early repayment plans keep the principal whole."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yunrong.servicing.allocation import (
    DEFAULT_RULE,
    AllocationRule,
    Component,
    EarlyOption,
    InstalmentOwed,
    Kind,
    Owed,
    Row,
    Terms,
    allocate,
    distribute,
    plan_repayment,
    service_fee,
)
from yunrong.servicing.daycount import DayCount
from yunrong.servicing.schedules import Frequency, build_schedule

amounts = st.integers(min_value=0, max_value=10**9)
owed_items = st.lists(st.tuples(st.integers(0, 10**7), st.integers(0, 10**8)), min_size=0, max_size=8).map(
    lambda xs: tuple(InstalmentOwed(k + 1, i, p) for k, (i, p) in enumerate(xs))
)
owed_st = st.builds(Owed, fees=st.integers(0, 10**5), penalty=st.integers(0, 10**6), instalments=owed_items)
orders = st.permutations(list(Component)).map(tuple)
rules = st.builds(AllocationRule, order=orders, by_instalment=st.booleans())


@given(amount=amounts, owed=owed_st, rule=rules)
def test_parts_sum_to_the_amount_and_never_exceed_what_is_owed(
    amount: int, owed: Owed, rule: AllocationRule
) -> None:
    a = allocate(amount, owed, rule)
    assert a.allocated + a.held == amount
    assert min(a.fees, a.penalty, a.interest, a.principal, a.held) >= 0
    assert a.allocated == min(amount, owed.total)
    assert a.held == max(0, amount - owed.total)
    assert a.fees <= owed.fees
    assert a.penalty <= owed.penalty
    assert a.interest == sum(p.interest for p in a.instalments)
    assert a.principal == sum(p.principal for p in a.instalments)
    for inst in owed.instalments:
        paid = a.paid_for(inst.number)
        assert 0 <= paid.interest <= inst.interest
        assert 0 <= paid.principal <= inst.principal


def _filled_in_order(a_paid: list[tuple[int, int]]) -> bool:
    """(paid, owed) buckets in allocation order: once one is short, all later ones are empty."""
    short = False
    for paid, owed in a_paid:
        if short and paid:
            return False
        if paid < owed:
            short = True
    return True


@given(amount=amounts, owed=owed_st)
def test_the_default_order_is_fees_penalty_then_each_instalment_interest_before_principal(
    amount: int, owed: Owed
) -> None:
    a = allocate(amount, owed, DEFAULT_RULE)
    buckets = [(a.fees, owed.fees), (a.penalty, owed.penalty)]
    for inst in owed.instalments:
        paid = a.paid_for(inst.number)
        buckets += [(paid.interest, inst.interest), (paid.principal, inst.principal)]
    assert _filled_in_order(buckets)


@given(amount=amounts, owed=owed_st)
def test_by_component_pays_every_interest_before_any_principal(amount: int, owed: Owed) -> None:
    rule = AllocationRule(order=DEFAULT_RULE.order, by_instalment=False)
    a = allocate(amount, owed, rule)
    buckets = [(a.fees, owed.fees), (a.penalty, owed.penalty)]
    buckets += [(a.paid_for(i.number).interest, i.interest) for i in owed.instalments]
    buckets += [(a.paid_for(i.number).principal, i.principal) for i in owed.instalments]
    assert _filled_in_order(buckets)


def test_a_worked_partial_payment() -> None:
    owed = Owed(
        fees=0,
        penalty=1_500,
        instalments=(InstalmentOwed(1, 20_000, 100_000), InstalmentOwed(2, 19_000, 101_000)),
    )
    a = allocate(150_000, owed)
    assert (a.penalty, a.interest, a.principal, a.held) == (1_500, 39_000, 109_500, 0)
    assert a.paid_for(1).principal == 100_000
    assert a.paid_for(1).interest == 20_000
    assert a.paid_for(2).interest == 19_000
    assert a.paid_for(2).principal == 9_500
    assert allocate(300_000, owed).held == 300_000 - owed.total


def test_an_order_must_name_every_component_once() -> None:
    with pytest.raises(ValueError, match="once"):
        AllocationRule(order=(Component.INTEREST, Component.PRINCIPAL))


weights_st = st.lists(st.integers(0, 10**9), min_size=1, max_size=12).filter(lambda w: sum(w) > 0)


@given(
    principal=st.integers(0, 10**10),
    interest=st.integers(0, 10**9),
    penalty=st.integers(0, 10**7),
    weights=weights_st,
    fee_bp=st.integers(0, 10_000),
)
def test_pro_rata_distribution_sums_exactly(
    principal: int, interest: int, penalty: int, weights: list[int], fee_bp: int
) -> None:
    shares = distribute(principal, interest, penalty, weights, fee_bp)
    assert sum(s.principal for s in shares) == principal
    assert sum(s.interest for s in shares) == interest
    assert sum(s.penalty for s in shares) == penalty
    assert sum(s.service_fee for s in shares) == service_fee(interest, fee_bp)
    assert sum(s.net for s in shares) == principal + interest + penalty - service_fee(interest, fee_bp)
    total = sum(weights)
    for s, w in zip(shares, weights, strict=True):
        assert 0 <= s.service_fee <= s.interest
        assert s.net >= 0
        assert abs(s.principal * total - principal * w) < total  # within one fen of the exact share
        if w == 0:
            assert s.principal == s.interest == s.penalty == 0


def test_the_service_fee_is_a_share_of_interest_rounded_half_up() -> None:
    assert service_fee(12_345, 1_000) == 1_235  # 1 234.5 → 1 235
    assert service_fee(0, 1_000) == 0
    shares = distribute(30_000, 2_001, 0, [1, 1], 1_000)
    assert [s.interest for s in shares] == [1_001, 1_000]
    assert [s.service_fee for s in shares] == [100, 100]


# --- early repayment plans -------------------------------------------------------------------------


def _terms(method: str, principal: int, rate: Decimal, dc: DayCount) -> Terms:
    return Terms(rate, dc, Frequency.MONTHLY, method, 0, principal)


def _rows(method: str, principal: int, rate: Decimal, months: int, dc: DayCount, start: date) -> list[Row]:
    s = build_schedule(
        principal=principal,
        annual_rate=rate,
        term_months=months,
        method=method,
        start_date=start,
        day_count=dc,
    )
    return [Row(i.number, i.period_start, i.due_date, i.principal, i.interest) for i in s.instalments]


@settings(max_examples=60, deadline=None)
@given(
    principal=st.integers(1_000_000, 10**9),
    rate_bp=st.integers(100, 2_400),
    months=st.integers(3, 36),
    method=st.sampled_from(["equal_instalment", "equal_principal", "interest_only_balloon", "bullet"]),
    dc=st.sampled_from(list(DayCount)),
    day=st.integers(1, 80),
    share=st.integers(1, 90),
    option=st.sampled_from(list(EarlyOption)),
)
def test_an_early_partial_plan_keeps_the_principal_whole(
    principal: int,
    rate_bp: int,
    months: int,
    method: str,
    dc: DayCount,
    day: int,
    share: int,
    option: EarlyOption,
) -> None:
    rate = Decimal(rate_bp) / 10_000
    start = date(2026, 1, 15)
    rows = _rows(method, principal, rate, months, dc, start)
    on = date.fromordinal(start.toordinal() + day)
    if method not in ("equal_instalment", "equal_principal"):
        option = EarlyOption.SMALLER_INSTALMENT
    terms = _terms(method, principal, rate, dc)
    full = plan_repayment(terms, rows, money=10**12, kind=Kind.EARLY_FULL, option=None, value_date=on)
    assert full.closes
    assert full.principal_after == 0
    assert sum(r.principal_due for r in full.rows) == principal
    money = (full.payoff - principal) + principal * share // 100
    plan = plan_repayment(terms, rows, money=money, kind=Kind.EARLY_PARTIAL, option=option, value_date=on)
    assert plan.allocation.held == 0
    if plan.kind is Kind.EARLY_PARTIAL:
        new = [r for r in plan.rows if r.status == "scheduled"]
        assert sum(r.principal_due for r in new) == plan.principal_after
        assert sum(r.principal_due for r in plan.rows) == principal
        assert all(r.principal_due >= 0 and r.interest_due >= 0 for r in plan.rows)
        assert new[0].due_date == next(r.due_date for r in rows if r.due_date > on)
        assert len(new) <= sum(1 for r in rows if r.due_date > on)
        if option is EarlyOption.SMALLER_INSTALMENT:
            assert len(new) == sum(1 for r in rows if r.due_date > on)
            assert new[-1].due_date == rows[-1].due_date
