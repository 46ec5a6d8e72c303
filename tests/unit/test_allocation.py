"""Auto-invest allocation: the caps of one rule, the fair water-filling and the return-maximising MILP.

Properties are checked on random pools of rules (Hypothesis); worked examples pin the figures."""

from __future__ import annotations

import math
import random
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yunrong.investing import allocation as al
from yunrong.investing.allocation import (
    ListingView,
    RuleView,
    allocate_fair,
    allocate_optimal,
    cap_for,
    concentration_room,
    objective,
    water_fill,
)
from yunrong.investing.model import Ticket, ticket_problem

GRADES = ["AA", "A", "BBB", "BB"]
PRODUCTS = ["p2p_loan", "supply_chain"]


def rule(rule_id: str, investor_id: str | None = None, **kw: object) -> RuleView:
    base = RuleView(
        rule_id=rule_id,
        investor_id=investor_id or f"inv-{rule_id}",
        amount_per_loan=1_000_000_00,
        max_share_of_loan_bp=10_000,
        max_per_enterprise=1_000_000_00,
        max_industry_bp=10_000,
        max_region_bp=10_000,
        max_grade_bp=10_000,
        grades=frozenset(),
        products=frozenset(),
        min_transparency=0,
        available=1_000_000_00,
        portfolio_total=0,
        held_in_enterprise=0,
        held_in_industry=0,
        held_in_region=0,
        held_in_grade=0,
        expected_return=0.06,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def listing(**kw: object) -> ListingView:
    base = ListingView(
        listing_id="L-1",
        amount=1_000_000,
        remaining=1_000_000,
        min_ticket=5_000,
        max_ticket=500_000,
        grade="BBB",
        product="p2p_loan",
        industry="C1392",
        region="320100",
        transparency=70,
        expected_return=0.06,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


# --- strategies ----------------------------------------------------------------------------------

bps = st.one_of(st.just(10_000), st.integers(1, 10_000))
money = st.integers(0, 2_000_000)


@st.composite
def listings(draw: st.DrawFn) -> ListingView:
    amount = draw(st.integers(1, 2_000_000))
    remaining = draw(st.one_of(st.just(amount), st.integers(0, amount)))
    min_ticket = draw(st.integers(1, max(1, amount // draw(st.sampled_from([1, 2, 5, 20, 100])))))
    max_ticket = draw(st.one_of(st.just(amount), st.integers(min_ticket, max(min_ticket, amount))))
    return ListingView(
        listing_id=draw(st.sampled_from(["L-1", "L-2", "L-3"])),
        amount=amount,
        remaining=remaining,
        min_ticket=min_ticket,
        max_ticket=max_ticket,
        grade=draw(st.sampled_from(GRADES)),
        product=draw(st.sampled_from(PRODUCTS)),
        industry="C1392",
        region="320100",
        transparency=draw(st.integers(0, 100)),
        expected_return=0.06,
    )


def _often(draw: st.DrawFn, loose: st.SearchStrategy[int], tight: st.SearchStrategy[int]) -> int:
    """Three times in four a limit that lets the rule in, else any value in range."""
    return draw(tight if draw(st.integers(0, 3)) == 0 else loose)


@st.composite
def rule_views(draw: st.DrawFn, rule_id: str, investors: int, lst: ListingView) -> RuleView:
    """Rules that often qualify (roomy limits, matching criteria) and often do not (any value)."""
    portfolio = draw(st.integers(0, 40_000_000))
    held = st.one_of(st.just(0), st.integers(0, portfolio // 8), st.integers(0, portfolio))
    roomy = st.integers(lst.min_ticket, 4_000_000)
    roomy_bp = st.one_of(st.just(10_000), st.integers(2_000, 10_000))
    grades = st.lists(st.sampled_from(GRADES), max_size=3)
    products = st.lists(st.sampled_from(PRODUCTS), max_size=1)
    return RuleView(
        rule_id=rule_id,
        investor_id=f"inv-{draw(st.integers(0, investors - 1))}",
        amount_per_loan=_often(draw, roomy, st.integers(1, 2_000_000)),
        max_share_of_loan_bp=_often(draw, roomy_bp, bps),
        max_per_enterprise=_often(draw, st.integers(4_000_000, 8_000_000), money),
        max_industry_bp=_often(draw, roomy_bp, bps),
        max_region_bp=_often(draw, roomy_bp, bps),
        max_grade_bp=_often(draw, roomy_bp, bps),
        grades=frozenset(draw(st.one_of(st.just([]), grades.map(lambda g: [*g, lst.grade]), grades))),
        products=frozenset(draw(st.one_of(st.just([]), st.just([lst.product]), products))),
        min_transparency=_often(draw, st.integers(0, lst.transparency), st.integers(0, 60)),
        available=_often(draw, roomy, money),
        portfolio_total=portfolio,
        held_in_enterprise=_often(draw, st.integers(0, 1_000_000), st.integers(0, portfolio)),
        held_in_industry=draw(held),
        held_in_region=draw(held),
        held_in_grade=draw(held),
        expected_return=draw(st.sampled_from([0.06, 0.06, 0.0, -0.02, 0.03, 0.11])),
    )


@st.composite
def pools(draw: st.DrawFn) -> tuple[list[RuleView], ListingView]:
    lst = draw(listings())
    investors = draw(st.integers(1, 8))
    n = draw(st.integers(0, 10))
    return [draw(rule_views(f"r{i:02d}", investors, lst)) for i in range(n)], lst


ALLOCATORS = [allocate_fair, allocate_optimal]


def _qualifying_investors(rules: list[RuleView], lst: ListingView) -> int:
    return len({r.investor_id for r in rules if cap_for(r, lst) > 0})


# --- properties ----------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(pools())
def test_allocations_respect_remaining_caps_and_tickets(pool: tuple[list[RuleView], ListingView]) -> None:
    rules, lst = pool
    by_id = {r.rule_id: r for r in rules}
    for allocate in ALLOCATORS:
        out = allocate(rules, lst)
        assert sum(out.values()) <= lst.remaining
        investors = [by_id[rule_id].investor_id for rule_id in out]
        assert len(investors) == len(set(investors)), "one rule per investor"
        for rule_id, x in out.items():
            r = by_id[rule_id]
            assert isinstance(x, int)
            assert 0 < x <= cap_for(r, lst)
            assert x >= lst.min_ticket or x == lst.remaining
            assert x <= r.amount_per_loan
            assert x <= r.available
            assert x <= lst.max_ticket
            assert x * 10_000 <= r.max_share_of_loan_bp * lst.amount
            assert r.held_in_enterprise + x <= r.max_per_enterprise
            for held, bp in (
                (r.held_in_industry, r.max_industry_bp),
                (r.held_in_region, r.max_region_bp),
                (r.held_in_grade, r.max_grade_bp),
            ):
                assert (held + x) * 10_000 <= bp * (r.portfolio_total + x), "concentration after ticket"


@settings(max_examples=150, deadline=None)
@given(pools())
def test_tickets_pass_the_rounds_ticket_check_when_placed_one_by_one(
    pool: tuple[list[RuleView], ListingView],
) -> None:
    rules, lst = pool
    by_id = {r.rule_id: r for r in rules}
    for allocate in ALLOCATORS:
        left = lst.remaining
        for rule_id, x in sorted(allocate(rules, lst).items()):
            t = Ticket(lst.min_ticket, lst.max_ticket, left, by_id[rule_id].available)
            assert ticket_problem(x, t) is None
            left -= x


@settings(max_examples=150, deadline=None)
@given(pools())
def test_no_rule_takes_the_whole_listing_when_others_qualify(
    pool: tuple[list[RuleView], ListingView],
) -> None:
    rules, lst = pool
    if _qualifying_investors(rules, lst) < 2 or lst.remaining < 2 * lst.min_ticket:
        return
    for allocate in ALLOCATORS:
        out = allocate(rules, lst)
        assert all(x < lst.remaining for x in out.values())
    assert len(allocate_fair(rules, lst)) >= 2


@settings(max_examples=150, deadline=None)
@given(pools())
def test_fair_is_water_filling(pool: tuple[list[RuleView], ListingView]) -> None:
    rules, lst = pool
    by_id = {r.rule_id: r for r in rules}
    out = allocate_fair(rules, lst)
    caps = {i: cap_for(by_id[i], lst) for i in out}
    cands = al._candidates(rules, lst)
    n = len(cands)
    lowest = min(lst.min_ticket, lst.remaining) if lst.remaining else 1
    seats = lst.remaining // lowest
    # everyone gets an equal share unless capped: two tickets differ by more than one unit only when
    # the smaller is at its cap
    for i in out:
        for j in out:
            if out[i] > out[j] + 1:
                assert out[j] == caps[j]
    # nobody takes more than ceil(R / n) unless someone else is capped below the share
    if 0 < n <= seats:
        assert len(out) == n
        share = math.ceil(lst.remaining / n)
        for i, x in out.items():
            if x > share:
                assert any(c.cap * n < lst.remaining for c in cands if c.rule.rule_id != i)
    else:
        assert len(out) == min(n, seats)
    # what is left unallocated could not have been placed: participants at their caps, and the
    # seats either all taken by the largest caps or every candidate seated
    if sum(out.values()) < lst.remaining:
        assert all(out[i] == caps[i] for i in out)
        top = sorted((c.cap for c in cands), reverse=True)[: len(out)]
        assert sum(out.values()) == sum(top)


@settings(max_examples=150, deadline=None)
@given(pools())
def test_optimal_is_never_worse_than_fair(pool: tuple[list[RuleView], ListingView]) -> None:
    rules, lst = pool
    fair, best = allocate_fair(rules, lst), allocate_optimal(rules, lst)
    assert objective(best, rules) >= objective(fair, rules)
    if fair:
        assert max(best.values(), default=0) <= max(fair.values()), "fair water level as ceiling"
        # the solver's own answer (before the fall-back to fair) already reaches fair's objective
        raw = al._solve(al._candidates(rules, lst), lst, max(fair.values()), 10.0)
        assert raw is not None
        assert objective(raw, rules) >= objective(fair, rules) - 1e-9 * max(1.0, lst.remaining)


@settings(max_examples=100, deadline=None)
@given(pools(), st.randoms(use_true_random=False))
def test_deterministic_and_independent_of_input_order(
    pool: tuple[list[RuleView], ListingView], rnd: random.Random
) -> None:
    rules, lst = pool
    shuffled = list(rules)
    rnd.shuffle(shuffled)
    for allocate in ALLOCATORS:
        first = allocate(rules, lst)
        assert allocate(rules, lst) == first
        assert allocate(shuffled, lst) == first


@given(
    st.lists(st.integers(0, 1_000), max_size=12),
    st.integers(0, 5_000),
)
def test_water_fill_is_max_min_fair(caps: list[int], total: int) -> None:
    parts = water_fill(caps, total)
    assert sum(parts) == min(total, sum(caps))
    assert all(0 <= p <= c for p, c in zip(parts, caps, strict=True))
    assert all(p >= q - 1 or p == c for p, c in zip(parts, caps, strict=True) for q in parts)


@given(money, money, bps)
def test_concentration_room_is_the_exact_integer_bound(held: int, extra: int, bp: int) -> None:
    portfolio = held + extra
    room = concentration_room(held, portfolio, bp)
    if room is None:
        assert bp == 10_000
        return

    def fits(x: int) -> bool:
        return (held + x) * 10_000 <= bp * (portfolio + x)

    assert not fits(room + 1)
    if fits(0):
        assert fits(room)
    else:
        assert room == 0  # already over the limit: no ticket at all


# --- worked examples -----------------------------------------------------------------------------


def test_concentration_limit_worked_example() -> None:
    # 9,000 yuan portfolio, 2,000 in this industry, at most 30 %: (2,000 + x) ≤ 0.3·(9,000 + x) → x ≤ 1,000
    r = rule("a", portfolio_total=900_000, held_in_industry=200_000, max_industry_bp=3_000)
    assert concentration_room(200_000, 900_000, 3_000) == 100_000
    assert concentration_room(200_000, 900_000, 10_000) is None  # 100 %: no limit
    assert concentration_room(900_001, 900_000, 10_000) == 0  # inconsistent position: refuse
    assert cap_for(r, listing()) == 100_000
    # an empty portfolio under a 30 % limit cannot start: the ticket would be 100 % of it
    assert cap_for(rule("b", max_region_bp=3_000), listing()) == 0


def test_cap_takes_the_smallest_limit() -> None:
    lst = listing()  # 10,000 yuan, tickets 50..5,000 yuan
    assert cap_for(rule("a"), lst) == 500_000  # the round's maximum ticket
    assert cap_for(rule("a", amount_per_loan=120_000), lst) == 120_000
    assert cap_for(rule("a", max_share_of_loan_bp=1_000), lst) == 100_000  # 10 % of the loan
    assert cap_for(rule("a", max_per_enterprise=300_000, held_in_enterprise=250_000), lst) == 50_000
    assert cap_for(rule("a", available=7_000), lst) == 7_000
    assert cap_for(rule("a", available=4_999), lst) == 0  # below the minimum ticket
    assert cap_for(rule("a", grades=frozenset({"AA"})), lst) == 0
    assert cap_for(rule("a", grades=frozenset({"BBB"}), products=frozenset({"p2p_loan"})), lst) > 0
    assert cap_for(rule("a", min_transparency=71), lst) == 0
    # the last ticket may be below the minimum when it exactly completes the round
    assert cap_for(rule("a"), listing(remaining=3_000)) == 3_000
    assert cap_for(rule("a", available=2_999), listing(remaining=3_000)) == 0


def test_fair_worked_example_with_a_capped_rule() -> None:
    # 10,000 yuan among A (cap 6,000), B (cap 1,000) and C (cap 8,000): equal share would be 3,333.34;
    # B can only take 1,000, so A and C share the other 9,000 equally.
    rules = [
        rule("A", amount_per_loan=600_000, available=600_000),
        rule("B", amount_per_loan=100_000),
        rule("C", amount_per_loan=800_000),
    ]
    lst = listing(max_ticket=1_000_000)
    assert allocate_fair(rules, lst) == {"A": 450_000, "B": 100_000, "C": 450_000}


def test_fair_splits_equally_and_gives_odd_units_by_lottery() -> None:
    rules = [rule(x) for x in "ABC"]
    out = allocate_fair(rules, listing(remaining=100_000))
    assert sorted(out.values()) == [33_333, 33_333, 33_334]
    assert sum(out.values()) == 100_000


def test_fair_seats_as_many_minimum_tickets_as_fit() -> None:
    # 200 yuan left, 50 yuan minimum: only four of six investors can take part; the lottery draws them
    rules = [rule(x, amount_per_loan=10_000) for x in "ABCDEF"]
    out = allocate_fair(rules, listing(remaining=20_000))
    assert sorted(out.values()) == [5_000] * 4
    order = sorted("ABCDEF", key=lambda x: al.lottery_key("L-1", x))
    assert set(out) == set(order[:4])
    # another listing draws another order
    other = allocate_fair(rules, listing(listing_id="L-2", remaining=20_000))
    assert set(other) == set(sorted("ABCDEF", key=lambda x: al.lottery_key("L-2", x))[:4])


def test_fair_swaps_in_larger_caps_when_the_drawn_cannot_fill() -> None:
    # 149 yuan left, 50 minimum: two seats. Caps 50, 50 and 149: were the two 50s seated, 49 yuan would
    # stay unplaced below the minimum ticket; one of them gives its seat to the 149, which fills it.
    rules = [rule("A", amount_per_loan=5_000), rule("B", amount_per_loan=5_000), rule("C")]
    for listing_id in ("L-1", "L-2", "L-3", "L-4"):
        out = allocate_fair(rules, listing(listing_id=listing_id, remaining=14_900))
        assert sum(out.values()) == 14_900
        assert out["C"] == 9_900
        assert len(out) == 2


def test_remaining_below_minimum_goes_whole_to_one_rule() -> None:
    rules = [rule(x) for x in "ABC"]
    out = allocate_fair(rules, listing(remaining=3_000))
    assert list(out.values()) == [3_000]


def test_one_rule_per_investor_the_one_with_the_highest_cap() -> None:
    rules = [
        rule("small", investor_id="X", amount_per_loan=100_000),
        rule("big", investor_id="X", amount_per_loan=300_000),
        rule("other", investor_id="Y"),
    ]
    out = allocate_fair(rules, listing())
    assert set(out) == {"big", "other"}
    assert out == {"big": 300_000, "other": 500_000}


def test_optimal_seats_the_best_returns() -> None:
    # 300 yuan left, 100 minimum: three seats among four investors with different returns
    rates = {"A": 0.10, "B": 0.08, "C": 0.12, "D": 0.05}
    rules = [rule(x, expected_return=r, amount_per_loan=30_000) for x, r in rates.items()]
    lst = listing(remaining=30_000, min_ticket=10_000)
    assert allocate_optimal(rules, lst) == {"A": 10_000, "B": 10_000, "C": 10_000}
    assert objective(allocate_optimal(rules, lst), rules) == pytest.approx(3_000.0)
    assert objective(allocate_optimal(rules, lst), rules) >= objective(allocate_fair(rules, lst), rules)


def test_optimal_puts_nothing_where_the_return_is_negative_and_keeps_the_fair_ceiling() -> None:
    rules = [rule("A", expected_return=-0.01), rule("B", expected_return=0.05)]
    lst = listing(remaining=20_000, min_ticket=1_000)
    assert allocate_fair(rules, lst) == {"A": 10_000, "B": 10_000}
    assert allocate_optimal(rules, lst) == {"B": 10_000}


def test_optimal_with_equal_returns_fills_like_fair() -> None:
    rules = [
        rule("A", amount_per_loan=600_000, available=600_000),
        rule("B", amount_per_loan=100_000),
        rule("C", amount_per_loan=800_000),
    ]
    lst = listing(max_ticket=1_000_000)
    out = allocate_optimal(rules, lst)
    assert sum(out.values()) == 1_000_000
    assert max(out.values()) <= 450_000


def test_optimal_handles_a_large_pool() -> None:
    rng = random.Random(7)
    rules = [
        rule(
            f"r{i:04d}",
            amount_per_loan=rng.randrange(5_000, 200_000),
            expected_return=rng.choice([0.04, 0.05, 0.06, 0.07]),
        )
        for i in range(400)
    ]
    lst = listing(amount=5_000_000, remaining=5_000_000)
    fair, best = allocate_fair(rules, lst), allocate_optimal(rules, lst)
    assert sum(best.values()) <= lst.remaining
    assert sum(fair.values()) <= lst.remaining
    assert objective(best, rules) >= objective(fair, rules)


def test_views_refuse_impossible_values() -> None:
    with pytest.raises(ValueError, match="max_industry_bp"):
        rule("a", max_industry_bp=10_001)
    with pytest.raises(ValueError, match="available"):
        rule("a", available=-1)
    with pytest.raises(ValueError, match="remaining"):
        listing(remaining=2_000_000)
    with pytest.raises(ValueError, match="max_ticket"):
        listing(max_ticket=1)
    with pytest.raises(ValueError, match="twice"):
        allocate_fair([rule("a"), rule("a")], listing())


def test_nothing_to_allocate() -> None:
    assert allocate_fair([], listing()) == {}
    assert allocate_optimal([], listing()) == {}
    assert allocate_fair([rule("a")], listing(remaining=0)) == {}
    assert allocate_optimal([rule("a")], listing(remaining=0)) == {}
