"""Pure matching rules: suitability by risk level, the preference filter, the ranking score."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from yunrong.credit.grades import GRADES
from yunrong.demands.model import Product
from yunrong.matching import model
from yunrong.parties.risk import RiskLevel, max_product_risk
from yunrong.supervision.policy import CN_2016, EU_ECSP

GRADE_CODES = [g.code for g in GRADES]
HIGH_RISK = [g for g in GRADE_CODES if model.product_risk(g) >= 2]


def _listing(**kw: object) -> model.Listing:
    base = model.Listing(
        demand_id="d1",
        currency="CNY",
        amount_minor=300_000_00,
        term_months=12,
        product="p2p_loan",
        grade="BB",
        pd=0.03,
        annual_rate=Decimal("0.085"),
        declined=False,
        industry_code="C1392",
        region_code="320100",
        size_class="small",
        innovative=False,
        transparency=70,
        guarantee_coverage_bp=0,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def _prefs(**kw: object) -> model.Preferences:
    return replace(model.Preferences("CNY", 10_000_00, 100_000_00), **kw)  # type: ignore[arg-type]


listings = st.builds(
    _listing,
    amount_minor=st.integers(1, 10**10),
    term_months=st.integers(1, 60),
    product=st.sampled_from([p.value for p in Product]),
    grade=st.sampled_from(GRADE_CODES),
    pd=st.floats(0, 1),
    industry_code=st.sampled_from(["C1392", "A0111", "I6510"]),
    region_code=st.sampled_from(["320100", "110000", "440300"]),
    size_class=st.sampled_from(model.SIZES),
    innovative=st.booleans(),
    transparency=st.integers(0, 100),
    guarantee_coverage_bp=st.integers(0, 10000),
)
prefs = st.builds(
    _prefs,
    amount_per_loan_minor=st.integers(1, 10**9),
    min_term_months=st.integers(1, 30),
    max_term_months=st.integers(30, 60),
    grades=st.frozensets(st.sampled_from(GRADE_CODES)),
    industries=st.frozensets(st.sampled_from(["C", "A", "I65"])),
    regions=st.frozensets(st.sampled_from(["32", "11", "4403"])),
    products=st.frozensets(st.sampled_from([p.value for p in Product])),
    sizes=st.frozensets(st.sampled_from(model.SIZES)),
    innovation=st.sampled_from(list(model.Innovation)),
    min_transparency=st.integers(0, 100),
    min_guarantee_coverage_bp=st.integers(0, 10000),
)


def test_grade_map_is_monotone_and_total() -> None:
    risks = [model.product_risk(g) for g in GRADE_CODES]
    assert risks == sorted(risks)
    assert risks[0] == 1
    assert risks[-1] == 5
    assert model.product_risk("A") == 2
    assert model.product_risk("AA") == 1


@given(listing=listings, p=prefs, grade=st.sampled_from(HIGH_RISK))
def test_c1_investor_is_never_offered_a_high_risk_grade(
    listing: model.Listing, p: model.Preferences, grade: str
) -> None:
    c1 = model.InvestorProfile("person", RiskLevel.C1, 10**9)
    reasons = model.suitable(c1, replace(listing, grade=grade), p, CN_2016)
    assert any(r.code == "risk-above-level" for r in reasons)


@given(listing=listings, p=prefs, level=st.sampled_from(list(RiskLevel)))
def test_suitability_follows_risk_level(
    listing: model.Listing, p: model.Preferences, level: RiskLevel
) -> None:
    investor = model.InvestorProfile("institution", level, 10**9)
    blocked = any(r.code == "risk-above-level" for r in model.suitable(investor, listing, p, CN_2016))
    assert blocked == (model.product_risk(listing.grade) > max_product_risk(level))


@given(listing=listings, p=prefs)
def test_fits_is_monotone_in_every_preference(listing: model.Listing, p: model.Preferences) -> None:
    """Loosening any preference never turns a fit into a misfit."""
    ok, reasons = model.fits(p, listing)
    assert reasons
    if not ok:
        return
    looser = [
        replace(p, amount_per_loan_minor=max(1, p.amount_per_loan_minor // 2)),
        replace(p, min_term_months=1),
        replace(p, max_term_months=60),
        replace(p, grades=p.grades | {"C"} if p.grades else p.grades),
        replace(p, grades=frozenset()),
        replace(p, industries=frozenset()),
        replace(p, regions=frozenset()),
        replace(p, products=frozenset()),
        replace(p, sizes=frozenset()),
        replace(p, innovation=model.Innovation.NEUTRAL),
        replace(p, min_transparency=max(0, p.min_transparency - 10)),
        replace(p, min_guarantee_coverage_bp=0),
    ]
    for q in looser:
        assert model.fits(q, listing)[0]


@given(listing=listings, p=prefs)
def test_better_listing_still_fits(listing: model.Listing, p: model.Preferences) -> None:
    """A more transparent, better covered, bigger listing fits whenever the original did."""
    if not model.fits(p, listing)[0]:
        return
    better = replace(
        listing,
        transparency=min(100, listing.transparency + 5),
        guarantee_coverage_bp=min(10000, listing.guarantee_coverage_bp + 500),
        amount_minor=listing.amount_minor * 2,
    )
    assert model.fits(p, better)[0]


def test_misfit_reasons_name_what_failed() -> None:
    ok, reasons = model.fits(_prefs(products=frozenset({"bank_loan"}), min_transparency=90), _listing())
    assert not ok
    assert {r.code for r in reasons} == {"product", "transparency"}


def test_declined_and_unassessed_are_never_suitable() -> None:
    c5 = model.InvestorProfile("person", RiskLevel.C5, 10**9)
    assert [r.code for r in model.suitable(c5, _listing(declined=True), _prefs(), CN_2016)] == ["declined"]
    none = model.InvestorProfile("person", None, 10**9)
    assert [r.code for r in model.suitable(none, _listing(), _prefs(), CN_2016)] == ["no-risk-level"]


def test_eu_profile_bounds_a_persons_ticket_by_net_worth() -> None:
    person = model.InvestorProfile("person", RiskLevel.C5, 100_000_00)  # 5 % = 5,000.00
    big = _prefs(currency="EUR", amount_per_loan_minor=6_000_00)
    small = _prefs(currency="EUR", amount_per_loan_minor=5_000_00)
    assert [r.code for r in model.suitable(person, _listing(), big, EU_ECSP)] == ["ticket-above-warning"]
    assert model.suitable(person, _listing(), small, EU_ECSP) == []
    institution = replace(person, kind="institution")
    assert model.suitable(institution, _listing(), big, EU_ECSP) == []


@given(listing=listings, p=prefs, level=st.sampled_from(list(RiskLevel)), n=st.integers(0, 50))
def test_score_is_bounded_and_diversification_decreases(
    listing: model.Listing, p: model.Preferences, level: RiskLevel, n: int
) -> None:
    investor = model.InvestorProfile("person", level, 10**9)
    s = model.score(p, investor, listing, n)
    assert 0 <= s.total <= 1
    assert set(s.parts) == set(model.WEIGHTS)
    assert model.score(p, investor, listing, n + 1).total <= s.total


def test_score_formula_by_hand() -> None:
    investor = model.InvestorProfile("person", RiskLevel.C3, 10**9)
    p = _prefs(min_term_months=6, max_term_months=18)
    s = model.score(p, investor, _listing(), 1)
    # fit: centrality 1, innovation neutral 0.5 → 0.75; return: (0.085 − 0.03·0.6)/0.06 = 1.0 (capped)
    assert s.parts == {"fit": 0.75, "return": 1.0, "diversification": 0.5, "transparency": 0.7}
    assert s.total == round(0.35 * 0.75 + 0.30 * 1.0 + 0.20 * 0.5 + 0.15 * 0.7, 6)


def test_problems_lists_every_one() -> None:
    bad = model.Preferences(
        "CNY",
        200,
        100,
        min_term_months=30,
        max_term_months=12,
        grades=frozenset({"ZZ"}),
        min_transparency=101,
    )
    fields = [f for f, _ in model.problems(bad)]
    assert fields == ["amount_per_loan", "max_term_months", "grades", "min_transparency"]
