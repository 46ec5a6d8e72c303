"""Loan schedules, day counts and APRs: published worked examples and properties over random loans.

The APR is checked against an independent root finder (`scipy.optimize.brentq` on an NPV written
here with NumPy), never against our own solver.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from fractions import Fraction
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq

from yunrong.kit.errors import InvalidInput
from yunrong.servicing import (
    DayCount,
    Frequency,
    RateError,
    Schedule,
    ScheduleError,
    add_months,
    annuity_batch,
    apr,
    build_schedule,
    level_payment,
    loan_apr,
    loan_flows,
    periodic_apr,
    xirr,
    year_fraction,
)
from yunrong.servicing.schedules import batch_level_payments

METHODS = [
    "equal_instalment",
    "equal_principal",
    "interest_only_balloon",
    "bullet",
    "lease_rent",
    "revolving",
]


def _half_even(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def _independent_irr(flows: list[tuple[date, int]]) -> float:
    """Annual effective IRR (ACT/365) by brentq on an NPV written independently of rates.py."""
    by_date: dict[date, int] = {}
    for d, v in flows:
        by_date[d] = by_date.get(d, 0) + v
    if not any(by_date.values()):
        return 0.0  # lent and repaid on one day: nothing to discount
    first = min(by_date)
    t = np.array([(d - first).days / 365.0 for d in by_date])
    a = np.array([float(v) for v in by_date.values()])
    a /= np.abs(a).max()
    # brentq on u = ln(1 + x), so that absurd rates of one-day loans with fees are bracketed too
    u = brentq(lambda u: float(np.sum(a * np.exp(-t * u))), np.log(0.01), 700.0, xtol=1e-15, rtol=1e-15)
    return float(np.expm1(u))


# --- golden schedules ------------------------------------------------------------------------------


def test_textbook_annuity_100000_at_12_percent_for_12_months() -> None:
    # r = 12 % / 12 = 1 %; 1.01^12 = 1.126825030131970; payment = 100 000 × 0.01 × 1.12682503 /
    # 0.12682503 = 8 884.8788 → 8 884.88 (Excel: =PMT(1%, 12, -100000) = 8,884.88).
    # Month 1: interest 100 000 × 1 % = 1 000.00, principal 7 884.88, balance 92 115.12;
    # month 2: interest 921.1512 → 921.15, principal 7 963.73, balance 84 151.39.
    s = build_schedule(
        principal=10_000_000,
        annual_rate=Decimal("0.12"),
        term_months=12,
        method="equal_instalment",
        start_date=date(2024, 1, 15),
        day_count=DayCount.THIRTY_360,
    )
    assert s.level_payment == 888_488
    first, second = s.instalments[:2]
    assert (first.interest, first.principal, first.balance_after) == (100_000, 788_488, 9_211_512)
    assert (second.interest, second.principal, second.balance_after) == (92_115, 796_373, 8_415_139)
    assert [i.payment for i in s.instalments[:-1]] == [888_488] * 11
    # the last instalment absorbs the rounding remainder: 879 688 principal + 87.97 interest
    assert (s.instalments[-1].principal, s.instalments[-1].interest, s.instalments[-1].payment) == (
        879_688,
        8_797,
        888_485,
    )
    assert sum(i.principal for i in s.instalments) == 10_000_000
    assert s.total_interest == 661_853
    assert [i.due_date for i in s.instalments[:2]] == [date(2024, 2, 15), date(2024, 3, 15)]


def test_microsoft_pmt_examples_in_arrears_and_in_advance() -> None:
    # Microsoft's PMT documentation: 8 % a year, 10 months, 10 000 → =PMT(A2/12,A3,A4) = (1,037.03);
    # payments due at the beginning of the period =PMT(A2/12,A3,A4,0,1) = (1,030.16).
    rate = Fraction(8, 100 * 12)
    assert level_payment(1_000_000, rate, 10) == 103_703
    assert level_payment(1_000_000, rate, 10, in_advance=True) == 103_016
    lease = build_schedule(
        principal=1_000_000,
        annual_rate=Decimal("0.08"),
        term_months=10,
        method="lease_rent",
        start_date=date(2024, 3, 1),
        day_count=DayCount.THIRTY_360,
        in_advance=True,
    )
    assert lease.instalments[0].due_date == date(2024, 3, 1)
    assert (lease.instalments[0].principal, lease.instalments[0].interest) == (103_016, 0)
    assert [i.payment for i in lease.instalments[:-1]] == [103_016] * 9
    assert len(lease.instalments) == 10
    assert abs(lease.instalments[-1].payment - 103_016) <= 5
    assert lease.instalments[-1].due_date == date(2024, 12, 1)


def test_chinese_mortgage_examples_equal_instalment_and_equal_principal() -> None:
    # The figures every Chinese bank calculator publishes for 1 000 000 yuan, 30 years, 4.9 %:
    # 等额本息 monthly payment 5 307.27 yuan; 等额本金 first month 6 861.11 yuan
    # (2 777.78 principal + 4 083.33 interest), falling by 11.34 yuan a month,
    # total interest P × r × (n + 1) / 2 = 1 000 000 × 0.049/12 × 361/2 = 737 041.67 yuan.
    common = {
        "principal": 100_000_000,
        "annual_rate": Decimal("0.049"),
        "term_months": 360,
        "start_date": date(2024, 1, 15),
        "day_count": DayCount.THIRTY_360,
    }
    annuity = build_schedule(method="equal_instalment", **common)  # type: ignore[arg-type]
    assert annuity.level_payment == 530_727
    assert sum(i.principal for i in annuity.instalments) == 100_000_000
    ep = build_schedule(method="equal_principal", **common)  # type: ignore[arg-type]
    first, second = ep.instalments[:2]
    assert (first.principal, first.interest, first.payment) == (277_778, 408_333, 686_111)
    assert first.payment - second.payment == 1_134
    # our total: each month's interest rounded half-even (worked here independently in Decimal);
    # within half a fen a month of the closed form
    balance, expected = 100_000_000, 0
    for inst in ep.instalments:
        expected += _half_even(Decimal(balance) * Decimal("0.049") / 12)
        balance -= inst.principal
    assert ep.total_interest == expected
    assert abs(ep.total_interest - 73_704_166.67) <= 360 * 0.5 + 1
    assert {i.principal for i in ep.instalments} == {277_778, 277_777}


def test_first_period_stub_is_charged_by_its_actual_days() -> None:
    # 31 Jan → 20 Feb 2024 is 20 days: 1 000 000 fen × 8 % × 20 / 365 = 4 383.56 → 4 384 fen;
    # the next period 20 Feb → 20 Mar is 29 days (leap year): × 29 / 365 = 6 356.16 → 6 356.
    s = build_schedule(
        principal=1_000_000,
        annual_rate=Decimal("0.08"),
        term_months=6,
        method="interest_only_balloon",
        start_date=date(2024, 1, 31),
        first_due_date=date(2024, 2, 20),
    )
    assert [i.interest for i in s.instalments[:2]] == [4_384, 6_356]
    assert [i.due_date for i in s.instalments] == [date(2024, m, 20) for m in range(2, 8)]
    assert s.instalments[-1].principal == 1_000_000
    bullet = build_schedule(
        principal=1_000_000,
        annual_rate=Decimal("0.08"),
        term_months=6,
        method="bullet",
        start_date=date(2024, 1, 31),
        first_due_date=date(2024, 2, 20),
    )
    # 31 Jan → 20 Jul 2024 = 171 days: 1 000 000 × 8 % × 171 / 365 = 37 479.45 → 37 479
    assert [(i.due_date, i.principal, i.interest) for i in bullet.instalments] == [
        (date(2024, 7, 20), 1_000_000, 37_479)
    ]


def test_revolving_interest_runs_on_the_drawn_balance() -> None:
    s = build_schedule(
        principal=1_000_000,
        annual_rate=Decimal("0.08"),
        term_months=3,
        method="revolving",
        start_date=date(2024, 1, 31),
        drawn=[(date(2024, 1, 31), 300_000), (date(2024, 3, 10), 200_000)],
    )
    # 300 000 × 8 % × 29/365 = 1 906.85 → 1 907; then 300 000 × 31/365 + 200 000 × 21/365
    # (10 → 31 Mar) at 8 % = 2 038.36 + 920.55 = 2 958.90 → 2 959; then 500 000 × 30/365 × 8 % = 3 287.67.
    assert [i.interest for i in s.instalments] == [1_907, 2_959, 3_288]
    assert [i.balance_after for i in s.instalments] == [300_000, 500_000, 0]
    assert s.principal == 500_000
    assert [i.principal for i in s.instalments] == [0, 0, 500_000]


def test_lease_with_residual_value_in_arrears() -> None:
    # PMT with a future value: (P − RV·(1+r)^−n)·r / (1 − (1+r)^−n), r = 6 %/12, n = 12,
    # P = 120 000.00, RV = 20 000.00: 1.005^−12 = 0.94190534, so
    # (120 000 − 20 000 × 0.94190534) × 0.005 / 0.05809466 = 8 706.64 (Excel =PMT(0.5%,12,-120000,20000)).
    s = build_schedule(
        principal=12_000_000,
        annual_rate=Decimal("0.06"),
        term_months=12,
        method="lease_rent",
        start_date=date(2024, 5, 10),
        day_count=DayCount.THIRTY_360,
        residual_minor=2_000_000,
    )
    assert s.level_payment == 870_664
    assert len(s.instalments) == 12
    assert abs(s.instalments[-1].payment - (870_664 + 2_000_000)) <= 12


# --- day counts, dates, rates ----------------------------------------------------------------------


def test_day_counts_and_month_arithmetic() -> None:
    assert year_fraction(date(2024, 1, 1), date(2025, 1, 1), DayCount.ACT_365F) == Fraction(366, 365)
    assert year_fraction(date(2024, 1, 1), date(2024, 3, 1), DayCount.ACT_360) == Fraction(60, 360)
    # ISDA 30/360: 31 Jan → 31 Mar = 60 days; 28 Feb → 31 Mar = 33 days; 30 Jan → 31 Mar = 60 days
    assert year_fraction(date(2024, 1, 31), date(2024, 3, 31), DayCount.THIRTY_360) == Fraction(60, 360)
    assert year_fraction(date(2023, 2, 28), date(2023, 3, 31), DayCount.THIRTY_360) == Fraction(33, 360)
    assert year_fraction(date(2024, 1, 30), date(2024, 3, 31), DayCount.THIRTY_360) == Fraction(60, 360)
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert add_months(date(2023, 1, 31), 1) == date(2023, 2, 28)
    assert add_months(date(2024, 1, 31), 2) == date(2024, 3, 31)
    assert add_months(date(2024, 11, 15), 3) == date(2025, 2, 15)
    with pytest.raises(InvalidInput):
        year_fraction(date(2024, 2, 1), date(2024, 1, 1), DayCount.ACT_365F)


def test_xirr_matches_microsofts_published_example() -> None:
    # Microsoft's XIRR documentation: −10 000 on 1 Jan 2008, 2 750 on 1 Mar 2008, 4 250 on
    # 30 Oct 2008, 3 250 on 15 Feb 2009, 2 750 on 1 Apr 2009 → 0.373362535 (37.34 %).
    flows = [
        (date(2008, 1, 1), -10_000),
        (date(2008, 3, 1), 2_750),
        (date(2008, 10, 30), 4_250),
        (date(2009, 2, 15), 3_250),
        (date(2009, 4, 1), 2_750),
    ]
    result = xirr(flows)
    assert result is not None
    # Excel iterates only until its result is accurate to 0.000001 % (its documentation says so)
    assert abs(result - 0.373362535) < 1e-8
    assert abs(result - _independent_irr(flows)) < 1e-12
    assert abs(apr(flows) - Decimal("0.373362535")) < Decimal("1e-8")
    assert xirr([(date(2024, 1, 1), 100), (date(2024, 6, 1), 50)]) is None
    assert xirr([(date(2024, 1, 1), -100)]) is None
    with pytest.raises(RateError):
        apr([(date(2024, 1, 1), -100), (date(2024, 2, 1), -5)])


def test_periodic_apr_of_a_fee_free_annuity_is_its_nominal_rate() -> None:
    s = build_schedule(
        principal=1_000_000_000,
        annual_rate=Decimal("0.085"),
        term_months=36,
        method="equal_instalment",
        start_date=date(2024, 1, 10),
        day_count=DayCount.THIRTY_360,
    )
    nominal = periodic_apr([s.principal] + [-i.payment for i in s.instalments])
    assert abs(nominal - Decimal("0.085")) < Decimal("1e-6")
    # a 2 % fee raises the APR; the effective rate exceeds the nominal one
    assert loan_apr(s, 20_000_000) > loan_apr(s) > Decimal("0.085")


def test_bad_terms_are_refused_with_both_languages() -> None:
    base = {
        "principal": 100_000,
        "annual_rate": Decimal("0.1"),
        "term_months": 12,
        "method": "equal_instalment",
        "start_date": date(2024, 1, 1),
    }
    bad: list[dict[str, object]] = [
        {"method": "weekly_magic"},
        {"frequency": Frequency.QUARTERLY, "term_months": 10},
        {"first_due_date": date(2023, 12, 31)},
        {"residual_minor": 10},
        {"principal": 0},
        {"annual_rate": 0.1},
        {"term_months": 0},
        {"method": "revolving", "drawn": [(date(2024, 2, 1), 100_001)]},
        {"method": "revolving", "drawn": [(date(2025, 1, 1), 1)]},
        {"method": "lease_rent", "residual_minor": 100_000},
    ]
    for change in bad:
        with pytest.raises(ScheduleError) as caught:
            build_schedule(**{**base, **change})  # type: ignore[arg-type]
        assert " / " in caught.value.detail
    s = build_schedule(**base)  # type: ignore[arg-type]
    with pytest.raises(RateError):
        loan_apr(s, 100_000)


# --- properties ------------------------------------------------------------------------------------


@st.composite
def loans(draw: st.DrawFn, methods: list[str] = METHODS) -> dict[str, object]:
    frequency = draw(st.sampled_from(list(Frequency)))
    months = 3 if frequency is Frequency.QUARTERLY else 1
    method = draw(st.sampled_from(methods))
    start = draw(st.dates(min_value=date(2000, 1, 1), max_value=date(2040, 12, 31)))
    terms: dict[str, object] = {
        "principal": draw(st.integers(min_value=1, max_value=10**11)),
        "annual_rate": Decimal(draw(st.integers(min_value=0, max_value=360_000))) / 1_000_000,
        "term_months": months * draw(st.integers(min_value=1, max_value=60 // months)),
        "method": method,
        "start_date": start,
        "frequency": frequency,
        "day_count": draw(st.sampled_from(list(DayCount))),
    }
    if draw(st.booleans()):
        terms["first_due_date"] = start + timedelta(days=draw(st.integers(1, 62 * months)))
    if method == "lease_rent":
        principal = terms["principal"]
        assert isinstance(principal, int)
        terms["residual_minor"] = draw(st.integers(0, principal * 3 // 10))
        terms["in_advance"] = draw(st.booleans())
    if method == "revolving":
        principal = terms["principal"]
        assert isinstance(principal, int)
        assert isinstance(terms["term_months"], int)
        first_due = terms.get("first_due_date")
        if isinstance(first_due, date):
            maturity = add_months(first_due, terms["term_months"] - months)
        else:
            maturity = add_months(start, terms["term_months"])
        days = (maturity - start).days
        offsets = draw(st.lists(st.integers(0, days - 1), min_size=1, max_size=4))
        shares = allocate_all(draw(st.integers(1, principal)), len(offsets))
        terms["drawn"] = [
            (start + timedelta(days=o), a) for o, a in zip(offsets, shares, strict=True) if a > 0
        ]
        if not terms["drawn"]:
            terms["drawn"] = [(start, 1)]
    return terms


def allocate_all(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if k < total % parts else 0) for k in range(parts)]


def _check_invariants(s: Schedule) -> None:
    rows = s.instalments
    assert sum(i.principal for i in rows) == s.principal
    assert all(i.balance_after >= 0 and i.principal >= 0 and i.interest >= 0 for i in rows)
    assert all(i.payment == i.principal + i.interest for i in rows)
    assert rows[-1].balance_after == 0
    assert [i.number for i in rows] == list(range(1, len(rows) + 1))
    assert all(a.due_date < b.due_date for a, b in pairwise(rows))
    assert rows[0].due_date > s.start_date or (s.in_advance and rows[0].due_date == s.start_date)
    if s.method != "revolving":
        balance = s.principal
        for i in rows:
            balance -= i.principal
            assert i.balance_after == balance


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(loans())
def test_principal_parts_sum_exactly_and_balances_never_go_negative(terms: dict[str, object]) -> None:
    s = build_schedule(**terms)  # type: ignore[arg-type]
    _check_invariants(s)
    rate = terms["annual_rate"]
    assert isinstance(rate, Decimal)
    first = s.instalments[0]
    if s.method in ("equal_instalment", "equal_principal", "interest_only_balloon") or (
        s.method == "lease_rent" and not s.in_advance
    ):
        # the first period's interest, worked independently in Decimal
        months = 3 if s.frequency is Frequency.QUARTERLY else 1
        regular = add_months(s.start_date, months) == first.due_date
        days = (first.due_date - s.start_date).days
        if s.day_count is DayCount.THIRTY_360:
            fraction = Decimal(months) / 12 if regular else None
        else:
            fraction = Decimal(days) / (365 if s.day_count is DayCount.ACT_365F else 360)
        if fraction is not None:
            with localcontext() as ctx:
                ctx.prec = 60
                assert first.interest == _half_even(Decimal(s.principal) * rate * fraction)
    if s.method == "equal_principal":
        assert max(i.principal for i in s.instalments) - min(i.principal for i in s.instalments) <= 1


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=1, max_value=10**11),
    st.integers(min_value=0, max_value=400_000),
    st.integers(min_value=1, max_value=120),
    st.integers(min_value=0, max_value=5 * 10**10),
    st.booleans(),
)
def test_level_payment_matches_the_closed_form_in_decimal(
    principal: int, rate_ppm: int, periods: int, residual: int, in_advance: bool
) -> None:
    residual = min(residual, principal - 1)
    r = Fraction(rate_ppm, 12_000_000)
    with localcontext() as ctx:
        ctx.prec = 80
        rd = Decimal(rate_ppm) / 12_000_000
        if rate_ppm == 0:
            expected = Decimal(principal - residual) / periods
        else:
            v = (1 + rd) ** -periods
            expected = (principal - residual * v) * rd / (1 - v)
            if in_advance:
                expected /= 1 + rd
        assert level_payment(principal, r, periods, residual=residual, in_advance=in_advance) == _half_even(
            expected
        )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(loans(), st.integers(min_value=0, max_value=500))
def test_apr_matches_an_independent_irr_within_a_hundredth_of_a_point(
    terms: dict[str, object], fee_bp: int
) -> None:
    principal = terms["principal"]
    assert isinstance(principal, int)
    terms["principal"] = max(principal, 100_000)  # at least 1 000 yuan: fen rounding is then negligible
    if terms["method"] == "revolving":
        terms.pop("drawn", None)
    s = build_schedule(**terms)  # type: ignore[arg-type]
    fee = s.principal * fee_bp // 10_000
    # A one-rent lease in advance pays its rent on the first day: when that leaves the lessee
    # nothing in hand at the start (all the money out, none in), no rate of return exists.
    paid_at_start = sum(i.payment for i in s.instalments if i.due_date == s.start_date)
    assume(s.principal - fee - paid_at_start > 0)
    ours = loan_apr(s, fee)
    independent = _independent_irr(loan_flows(s, fee))
    # within 0.01 percentage points (or a billionth of the rate for the absurd APRs of a day's
    # loan with a fee, where a float's resolution is coarser than that)
    assert abs(float(ours) - independent) < max(1e-4, 1e-9 * abs(independent))
    assert ours >= Decimal(0) or (terms["annual_rate"] == 0 and fee == 0)


# --- vectorised == scalar --------------------------------------------------------------------------


def _scalar_parts(principal: int, rate_bp: int, term: int, start: date) -> tuple[list[int], list[int]]:
    s = build_schedule(
        principal=principal,
        annual_rate=Decimal(rate_bp) / 10_000,
        term_months=term,
        method="equal_instalment",
        start_date=start,
        day_count=DayCount.THIRTY_360,
    )
    return [i.principal for i in s.instalments], [i.interest for i in s.instalments]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 10**13), st.integers(0, 100_000)),
        min_size=1,
        max_size=8,
    ),
    st.integers(1, 60),
    st.dates(min_value=date(2000, 1, 1), max_value=date(2040, 12, 28)).map(
        lambda d: d.replace(day=min(d.day, 28))
    ),
)
def test_annuity_batch_equals_the_scalar_schedule(
    loans_: list[tuple[int, int]], term: int, start: date
) -> None:
    principals = np.array([p for p, _ in loans_], dtype=np.int64)
    rates = np.array([r for _, r in loans_], dtype=np.int64)
    pp, ii = annuity_batch(principals, rates, term)
    assert pp.shape == ii.shape == (len(loans_), term)
    for row, (p, r) in enumerate(loans_):
        assert (pp[row].tolist(), ii[row].tolist()) == _scalar_parts(p, r, term, start)


@pytest.mark.parametrize("term", [1, 2, 12, 36, 60])
def test_annuity_batch_equals_the_scalar_schedule_on_many_random_loans(term: int) -> None:
    rng = np.random.default_rng(term)
    n = 40_000  # more than two internal blocks
    magnitudes = rng.integers(0, 14, n)
    principals = np.maximum(1, (rng.random(n) * 10.0**magnitudes).astype(np.int64))
    rates = np.where(rng.random(n) < 0.02, 0, rng.integers(1, 4_000, n))
    pp, ii = annuity_batch(principals, rates, term)
    assert (pp.sum(axis=1) == principals).all()
    assert (pp >= 0).all()
    assert (ii >= 0).all()
    for row in rng.choice(n, 600, replace=False):
        start = date(2024, 1 + int(row) % 12, 1 + int(row) % 28)
        expected = _scalar_parts(int(principals[row]), int(rates[row]), term, start)
        assert (pp[row].tolist(), ii[row].tolist()) == expected


def test_batch_payments_break_exact_ties_half_to_even() -> None:
    # Exact half-fen payments, where a float estimate alone would round the wrong way:
    # one period at 36 %/12 × 10: 5 × 1.3 = 6.5 → 6; two periods at r = 1/2: P × 9/10 → 4.5 → 4.
    assert batch_level_payments(np.array([5]), np.array([36_000]), 1).tolist() == [6]
    assert level_payment(5, Fraction(36_000, 120_000), 1) == 6
    assert batch_level_payments(np.array([5, 15]), np.array([60_000, 60_000]), 2).tolist() == [4, 14]
    pp, ii = annuity_batch(np.array([5, 15]), np.array([60_000, 60_000]), 2)
    assert (pp.tolist(), ii.tolist()) == ([[2, 3], [6, 9]], [[2, 2], [8, 4]])
    for p, r in ((5, 60_000), (15, 60_000)):
        assert _scalar_parts(p, r, 2, date(2024, 1, 5)) == (
            pp[[5, 15].index(p)].tolist(),
            ii[[5, 15].index(p)].tolist(),
        )
    rng = np.random.default_rng(7)
    principals = rng.integers(1, 10**12, 5_000)
    rates = rng.integers(0, 100_000, 5_000)
    got = batch_level_payments(principals, rates, 24)
    for i in range(0, 5_000, 5):
        assert got[i] == level_payment(int(principals[i]), Fraction(int(rates[i]), 120_000), 24)


def test_annuity_batch_refuses_bad_inputs() -> None:
    with pytest.raises(ScheduleError):
        annuity_batch(np.array([1.5]), np.array([100]), 12)
    with pytest.raises(ScheduleError):
        annuity_batch(np.array([0]), np.array([100]), 12)
    with pytest.raises(ScheduleError):
        annuity_batch(np.array([100]), np.array([100, 200]), 12)
    with pytest.raises(ScheduleError):
        annuity_batch(np.array([100]), np.array([-1]), 12)
    empty_p, empty_i = annuity_batch(np.array([], dtype=np.int64), np.array([], dtype=np.int64), 3)
    assert empty_p.shape == empty_i.shape == (0, 3)
