"""Auto-invest allocation: how a new listing's remaining amount is shared among investors' rules.

Pure: it sees plain views of the rules, the investors' positions and the listing, and returns whole
minor units per rule. The service loads the views, calls one of the two allocators and places one
commitment per positive amount; nothing here reads a database or a clock.

How much one rule may take (:func:`cap_for`)
    A rule qualifies when the listing's grade and product are among the rule's (an empty set means
    "any", as in matching's preferences) and the listing's transparency is at least the rule's
    minimum. Its cap is then the smallest of: the amount per loan; its share of the loan
    (``max_share_of_loan_bp`` of the listing's target, rounded down); what is left of its
    per-enterprise limit; the largest ticket that keeps the investor's industry, region and grade each
    within their share of the portfolio *after* the ticket (``(held + x)·10000 ≤ bp·(portfolio + x)``,
    solved exactly in integers); the investor's available balance; the round's maximum ticket; and
    the listing's remaining amount. A cap below the round's minimum ticket is 0, unless it is exactly
    the remaining amount (the last ticket may be smaller than the minimum when it completes the round,
    as :func:`yunrong.investing.model.ticket_problem` allows). A consequence of the exact portfolio
    rule: an investor with nothing yet invested can only start with a rule whose three concentration
    limits are all 100 %.

The fairness rule (:func:`allocate_fair`), in words
    Everyone who qualifies gets an equal share, and no one gets more than an equal share unless others
    cannot use theirs. Concretely:

    1. One rule per investor: when an investor has several qualifying rules, only the one with the
       highest cap takes part (ties: the smallest rule id), so that holding several rules never buys a
       bigger slice, and the investor's balance and limits are never counted twice.
    2. The listing is filled like water poured into glasses of different heights: each rule's glass is
       its cap, the level rises equally in all of them, a glass that is full stops, and the rest keeps
       rising in the others until the remaining amount is used up or every glass is full. So a rule takes
       more than ``ceil(remaining / n)`` only when others are capped below that share.
    3. Every ticket must be at least the round's minimum. When there are more rules than minimum tickets
       in the remaining amount (``n > remaining // min_ticket``), only ``remaining // min_ticket`` of them
       take part this time. Who takes part is drawn by a lottery that is fixed by the listing and the rule
       (SHA-256 of both ids), so it is reproducible and yet differs from listing to listing: no investor
       is always first or always last. Should the drawn rules' caps be too small to fill the listing, the
       drawn rules with the smallest caps give their places to the undrawn rules with the largest caps,
       one by one, until the caps can fill it (or no swap adds room). Nobody ever gets a ticket below the
       minimum: tiny shares are never made, so there is nothing tiny to merge.
    4. Whole minor units: the level is a whole number and the few units left over after it go one each
       to the rules with room, in lottery order.
    5. What the pool cannot take (every participant is at its cap) stays open for manual commitments.

    So with two or more investors qualifying and at least two minimum tickets remaining, no single rule
    takes the whole listing.

The return-maximising variant (:func:`allocate_optimal`)
    Same candidates and caps, plus a fairness ceiling on every rule: the water level of the fair
    allocation (its largest ticket), which is ``ceil(remaining / n)`` when nobody's own limits bind.
    Within that, it maximises ``Σ xᵢ·expected_returnᵢ`` with each ``xᵢ`` either 0 or at least the
    minimum ticket, as a mixed-integer programme (scipy's ``milp``, i.e. HiGHS, one binary per rule),
    then rounds down to whole units and places what rounding freed deterministically within the caps.
    It never puts money where the expected return is negative, and it uses neutral (zero-return) room
    to fill the listing. The fair allocation satisfies every constraint of the programme, so the
    optimum is never worse; should the solver fail or stop early with something worse, the fair
    allocation is returned.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_array

BP = 10_000  # basis points in a whole


def _whole(name: str, value: object, *, minimum: int = 0) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be a whole number ≥ {minimum}, not {value!r}")


@dataclass(frozen=True)
class RuleView:
    """One active auto-invest rule and its investor's position, in minor units of the listing's
    currency. The ``held_in_*`` amounts are the investor's holdings (outstanding + pending) in the
    listing's enterprise, industry, region and grade; ``portfolio_total`` is all of them."""

    rule_id: str
    investor_id: str
    amount_per_loan: int
    max_share_of_loan_bp: int
    max_per_enterprise: int
    max_industry_bp: int
    max_region_bp: int
    max_grade_bp: int
    grades: frozenset[str]
    products: frozenset[str]
    min_transparency: int
    available: int
    portfolio_total: int
    held_in_enterprise: int
    held_in_industry: int
    held_in_region: int
    held_in_grade: int
    expected_return: float  # of this listing for this investor, net of expected loss (a rate)

    def __post_init__(self) -> None:
        _whole("amount_per_loan", self.amount_per_loan, minimum=1)
        for name in ("max_share_of_loan_bp", "max_industry_bp", "max_region_bp", "max_grade_bp"):
            value = getattr(self, name)
            _whole(name, value, minimum=1)
            if value > BP:
                raise ValueError(f"{name} must be at most {BP}, not {value}")
        for name in (
            "max_per_enterprise",
            "min_transparency",
            "available",
            "portfolio_total",
            "held_in_enterprise",
            "held_in_industry",
            "held_in_region",
            "held_in_grade",
        ):
            _whole(name, getattr(self, name))
        if not math.isfinite(self.expected_return):
            raise ValueError("expected_return must be a finite number")


@dataclass(frozen=True)
class ListingView:
    """A listing open for commitments: its target ``amount``, what is still ``remaining`` and the
    round's ticket limits, in minor units. ``expected_return`` is the listing's headline net expected
    return; the service copies it into each :class:`RuleView` unless it knows an investor's own."""

    listing_id: str
    amount: int
    remaining: int
    min_ticket: int
    max_ticket: int
    grade: str
    product: str
    industry: str
    region: str
    transparency: int
    expected_return: float

    def __post_init__(self) -> None:
        _whole("amount", self.amount, minimum=1)
        _whole("remaining", self.remaining)
        _whole("min_ticket", self.min_ticket, minimum=1)
        _whole("max_ticket", self.max_ticket, minimum=self.min_ticket)
        _whole("transparency", self.transparency)
        if self.remaining > self.amount:
            raise ValueError("remaining cannot exceed the listing's amount")


def concentration_room(held: int, portfolio_total: int, bp: int) -> int | None:
    """The largest ``x ≥ 0`` with ``(held + x)·10000 ≤ bp·(portfolio_total + x)`` (None: no limit;
    0 also when the position is already over the limit)."""
    if bp >= BP:
        return None if held <= portfolio_total else 0
    slack = bp * portfolio_total - BP * held
    return slack // (BP - bp) if slack > 0 else 0


def qualifies(rule: RuleView, listing: ListingView) -> bool:
    """Does the listing meet the rule's grade, product and transparency criteria?"""
    return (
        (not rule.grades or listing.grade in rule.grades)
        and (not rule.products or listing.product in rule.products)
        and listing.transparency >= rule.min_transparency
    )


def cap_for(rule: RuleView, listing: ListingView) -> int:
    """The most ``rule`` may put into ``listing`` under every limit (0: it may put nothing)."""
    if listing.remaining <= 0 or not qualifies(rule, listing):
        return 0
    limits = [
        rule.amount_per_loan,
        rule.max_share_of_loan_bp * listing.amount // BP,
        max(0, rule.max_per_enterprise - rule.held_in_enterprise),
        rule.available,
        listing.max_ticket,
        listing.remaining,
    ]
    for held, bp in (
        (rule.held_in_industry, rule.max_industry_bp),
        (rule.held_in_region, rule.max_region_bp),
        (rule.held_in_grade, rule.max_grade_bp),
    ):
        room = concentration_room(held, rule.portfolio_total, bp)
        if room is not None:
            limits.append(room)
    cap = min(limits)
    if cap < listing.min_ticket and cap != listing.remaining:
        return 0
    return cap


# --- the fair allocation ----------------------------------------------------------------------------


def lottery_key(listing_id: str, rule_id: str) -> tuple[bytes, str]:
    """A rule's place in this listing's draw: reproducible, different for every listing."""
    digest = hashlib.sha256(f"{listing_id}\x1f{rule_id}".encode()).digest()
    return digest, rule_id


@dataclass(frozen=True)
class _Candidate:
    rule: RuleView
    cap: int
    draw: int  # place in the listing's lottery order, 0 first


def _candidates(rules: Iterable[RuleView], listing: ListingView) -> list[_Candidate]:
    """One qualifying rule per investor (the highest cap, then the smallest rule id), in lottery
    order."""
    seen: set[str] = set()
    best: dict[str, tuple[RuleView, int]] = {}
    for rule in rules:
        if rule.rule_id in seen:
            raise ValueError(f"rule {rule.rule_id!r} appears twice")
        seen.add(rule.rule_id)
        cap = cap_for(rule, listing)
        if cap <= 0:
            continue
        held = best.get(rule.investor_id)
        if held is None or (cap, held[0].rule_id) > (held[1], rule.rule_id):
            best[rule.investor_id] = (rule, cap)
    chosen = sorted(best.values(), key=lambda rc: lottery_key(listing.listing_id, rc[0].rule_id))
    return [_Candidate(rule, cap, i) for i, (rule, cap) in enumerate(chosen)]


def water_fill(caps: Sequence[int], total: int) -> list[int]:
    """Integer max-min fair split of ``total`` under ``caps``: a common level ``L``, each part
    ``min(cap, L)``, and the units left below ``L + 1`` given one each to the first parts (in the
    given order) that still have room. Sums to ``min(total, sum(caps))``."""
    if total < 0 or any(c < 0 for c in caps):
        raise ValueError("caps and total must not be negative")
    if sum(caps) <= total:
        return list(caps)
    left, count = total, len(caps)
    level = 0
    for cap in sorted(caps):
        if cap * count <= left:
            left -= cap
            count -= 1
        else:
            level = left // count
            break
    parts = [min(cap, level) for cap in caps]
    spare = total - sum(parts)
    for i, cap in enumerate(caps):
        if spare == 0:
            break
        if cap > level:
            parts[i] += 1
            spare -= 1
    return parts


def _participants(cands: list[_Candidate], remaining: int, lowest: int) -> list[_Candidate]:
    """At most ``remaining // lowest`` candidates, drawn in lottery order; the drawn with the smallest
    caps swap places with the undrawn with the largest caps while the drawn caps cannot fill."""
    seats = remaining // lowest
    if len(cands) <= seats:
        return cands
    drawn, undrawn = cands[:seats], cands[seats:]
    room = sum(c.cap for c in drawn)
    if room < remaining:
        leaving = sorted(drawn, key=lambda c: (c.cap, -c.draw))  # smallest cap, latest draw first
        coming = sorted(undrawn, key=lambda c: (-c.cap, c.draw))  # largest cap, earliest draw first
        swapped = 0
        while swapped < min(len(leaving), len(coming)) and room < remaining:
            out, inn = leaving[swapped], coming[swapped]
            if inn.cap <= out.cap:
                break
            room += inn.cap - out.cap
            swapped += 1
        drawn = sorted([*leaving[swapped:], *coming[:swapped]], key=lambda c: c.draw)
    return drawn


def _fair(cands: list[_Candidate], listing: ListingView) -> dict[str, int]:
    remaining = listing.remaining
    if not cands or remaining <= 0:
        return {}
    lowest = min(listing.min_ticket, remaining)
    seated = _participants(cands, remaining, lowest)
    parts = water_fill([c.cap for c in seated], remaining)
    return {c.rule.rule_id: x for c, x in zip(seated, parts, strict=True) if x > 0}


def allocate_fair(rules: Iterable[RuleView], listing: ListingView) -> dict[str, int]:
    """Share ``listing.remaining`` among the qualifying rules by the fairness rule of this module.

    Returns only positive amounts, by rule id; they never exceed the rule's :func:`cap_for`, sum to at
    most the remaining amount, and each is at least the minimum ticket or is the whole remaining amount.
    """
    return _fair(_candidates(rules, listing), listing)


# --- the return-maximising allocation ---------------------------------------------------------------


def objective(allocation: Mapping[str, int], rules: Iterable[RuleView]) -> float:
    """Total expected return of an allocation: ``Σ amount × expected_return`` (minor units)."""
    rate = {r.rule_id: r.expected_return for r in rules}
    return math.fsum(amount * rate[rule_id] for rule_id, amount in allocation.items())


def _solve(
    cands: list[_Candidate], listing: ListingView, ceiling: int, time_limit: float
) -> dict[str, int] | None:
    """The MILP's allocation in whole units (None: the solver found no solution)."""
    remaining = listing.remaining
    lowest = min(listing.min_ticket, remaining)
    n = len(cands)
    upper = [min(c.cap, ceiling) for c in cands]
    rates = np.array([c.rule.expected_return for c in cands], dtype=float)
    scale = float(remaining)  # amounts as fractions of the remaining amount: well-scaled for HiGHS
    # variables: x_0..x_{n-1} (amount / remaining), then y_0..y_{n-1} (takes part: 0 or 1)
    cost = np.concatenate([-rates, np.zeros(n)])
    integrality = np.concatenate([np.zeros(n), np.ones(n)])
    bounds = Bounds(np.zeros(2 * n), np.concatenate([np.array(upper) / scale, np.ones(n)]))
    idx = np.arange(n)
    rows = np.concatenate([idx, idx, n + idx, n + idx, np.full(n, 2 * n)])
    cols = np.concatenate([idx, n + idx, idx, n + idx, idx])
    vals = np.concatenate(
        [np.ones(n), -np.array(upper) / scale, np.ones(n), -np.full(n, lowest / scale), np.ones(n)]
    )
    matrix = coo_array((vals, (rows, cols)), shape=(2 * n + 1, 2 * n)).tocsr()
    lower_b = np.concatenate([np.full(n, -np.inf), np.zeros(n), [-np.inf]])
    upper_b = np.concatenate([np.zeros(n), np.full(n, np.inf), [1.0]])
    result = milp(
        cost,
        integrality=integrality,
        bounds=bounds,
        constraints=LinearConstraint(matrix, lower_b, upper_b),
        options={"time_limit": time_limit, "mip_rel_gap": 0.0, "presolve": True},
    )
    if result.x is None:
        return None
    xs, ys = result.x[:n], result.x[n:]

    # whole units within [lowest, upper] for the rules that take part
    parts = [0] * n
    for i in range(n):
        if ys[i] > 0.5 and rates[i] >= 0:
            parts[i] = min(upper[i], max(lowest, math.floor(xs[i] * scale + 1e-6)))
    # over the remaining (solver tolerance): trim the lowest returns first, dropping them if need be
    by_worst = sorted(range(n), key=lambda i: (rates[i], -cands[i].draw))
    excess = sum(parts) - remaining
    for i in by_worst:
        if excess <= 0:
            break
        if parts[i] > 0:
            cut = min(excess, parts[i] - lowest)
            parts[i] -= cut
            excess -= cut
    for i in by_worst:
        if excess <= 0:
            break
        if parts[i] > 0:
            excess -= parts[i]
            parts[i] = 0
    # what rounding freed: top up the best returns (never negative ones), then seat new rules
    by_best = sorted(range(n), key=lambda i: (-rates[i], cands[i].draw))
    left = remaining - sum(parts)
    for i in by_best:
        if left <= 0 or rates[i] < 0:
            break
        if parts[i] > 0:
            add = min(left, upper[i] - parts[i])
            parts[i] += add
            left -= add
    for i in by_best:
        if left < lowest or rates[i] < 0:
            break
        if parts[i] == 0:
            parts[i] = min(upper[i], left)
            left -= parts[i]
    return {c.rule.rule_id: x for c, x in zip(cands, parts, strict=True) if x > 0}


def allocate_optimal(
    rules: Iterable[RuleView], listing: ListingView, *, time_limit: float = 10.0
) -> dict[str, int]:
    """Share ``listing.remaining`` to maximise the pool's total expected return, within every cap of
    :func:`cap_for`, the minimum ticket, one rule per investor and the fair water level (see the
    module's docstring). Returns only positive amounts, by rule id."""
    rules = list(rules)
    cands = _candidates(rules, listing)
    fair = _fair(cands, listing)
    if not fair:
        return {}
    best = _solve(cands, listing, max(fair.values()), time_limit)
    if best is None or objective(best, rules) < objective(fair, rules):
        return fair
    return best
