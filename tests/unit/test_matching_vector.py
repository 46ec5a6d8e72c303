"""The columnar matching (``matching.vector``) gives exactly what the scalar rules give."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from yunrong.credit.grades import GRADES
from yunrong.demands.model import Product
from yunrong.matching import model, vector
from yunrong.parties.risk import RiskLevel
from yunrong.supervision.policy import CN_2016, EU_ECSP, PolicyProfile

GRADE_CODES = [g.code for g in GRADES]
INDUSTRIES = ["C1392", "C1311", "C2611", "A0111", "I6510", "I6420", "K7010", ""]
REGIONS = ["320102", "320583", "110105", "440305", "440106", "3201"]

listings = st.builds(
    model.Listing,
    demand_id=st.just("d"),
    currency=st.sampled_from(["CNY"] * 18 + ["EUR", "USD"]),
    amount_minor=st.integers(10**6, 10**9) | st.integers(1, 10**6),
    term_months=st.integers(6, 24) | st.integers(1, 60),
    product=st.sampled_from([p.value for p in Product] + ["other_product"]),
    grade=st.sampled_from(GRADE_CODES[:5] * 3 + GRADE_CODES),
    pd=st.sampled_from([0.0, 0.005, 0.01, 0.03, 0.2, 1.0]) | st.floats(0, 1),
    annual_rate=st.none() | st.decimals(Decimal("0"), Decimal("0.3"), places=4),
    declined=st.sampled_from([False] * 9 + [True]),
    industry_code=st.sampled_from(INDUSTRIES),
    region_code=st.sampled_from(REGIONS),
    size_class=st.sampled_from([*model.SIZES, ""]),
    innovative=st.booleans(),
    transparency=st.sampled_from([50, 70, 100, 100]) | st.integers(-5, 105),
    guarantee_coverage_bp=st.sampled_from([5000, 10000, 10000]) | st.integers(0, 10000),
)

preferences = st.builds(
    model.Preferences,
    currency=st.sampled_from(["CNY"] * 19 + ["EUR"]),
    amount_per_loan_minor=st.sampled_from([1, 1000, 10**6]) | st.integers(1, 10**8),
    total_budget_minor=st.just(10**9),
    min_term_months=st.sampled_from([1, 1, 1, 1, 6, 12]) | st.integers(1, 30),
    max_term_months=st.sampled_from([60, 60, 60, 60, 36, 24]) | st.integers(1, 60),
    grades=st.just(frozenset()) | st.frozensets(st.sampled_from([*GRADE_CODES, "ZZ"]), max_size=6),
    industries=st.just(frozenset())
    | st.frozensets(st.sampled_from(["C", "C13", "C1392", "A", "I", "I65", "K70", ""]), max_size=3),
    regions=st.just(frozenset())
    | st.frozensets(st.sampled_from(["32", "3201", "320102", "11", "44", "4403"]), max_size=3),
    products=st.just(frozenset())
    | st.frozensets(st.sampled_from([p.value for p in Product] + ["odd"]), max_size=3),
    sizes=st.just(frozenset()) | st.frozensets(st.sampled_from([*model.SIZES, "odd"]), max_size=2),
    innovation=st.sampled_from([*model.Innovation, model.Innovation.NEUTRAL, model.Innovation.PREFER]),
    min_transparency=st.sampled_from([0, 0, 0, 50]) | st.integers(0, 100),
    min_guarantee_coverage_bp=st.sampled_from([0, 0, 0, 0, 5000]) | st.integers(0, 10000),
)

investors = st.builds(
    model.InvestorProfile,
    kind=st.sampled_from(["person", "institution"]),
    risk_level=st.sampled_from([None, *RiskLevel, *[RiskLevel.C5] * 8]),
    net_worth_minor=st.integers(10**9, 10**12) | st.integers(-10, 10**17),
)

pushes = st.dictionaries(st.sampled_from(["C", "A", "I", "K"]), st.integers(0, 4), max_size=3)
policies = st.sampled_from([CN_2016, EU_ECSP])
CHEAP = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _scalar_score(
    p: model.Preferences,
    inv: model.InvestorProfile,
    listing: model.Listing,
    policy: PolicyProfile,
    counts: dict[str, int],
) -> float | None:
    ok, _ = model.fits(p, listing)
    if not ok or model.suitable(inv, listing, p, policy):
        return None
    return model.score(p, inv, listing, counts.get(listing.industry_code[:1], 0)).total


@CHEAP
@given(
    people=st.lists(st.tuples(preferences, investors, pushes), min_size=5, max_size=60),
    listing=listings,
    policy=policies,
    explicit=st.booleans(),
)
def test_rank_investors_is_the_scalar_ranking(
    people: list[tuple[model.Preferences, model.InvestorProfile, dict[str, int]]],
    listing: model.Listing,
    policy: PolicyProfile,
    explicit: bool,
) -> None:
    pm = vector.ProfileMatrix.from_profiles([(p, v) for p, v, _ in people], [c for *_, c in people])
    expected = []
    for i, (p, inv, counts) in enumerate(people):
        total = _scalar_score(p, inv, listing, policy, counts)
        if total is not None:
            expected.append((-total, i))
    expected.sort()
    same = [c.get(listing.industry_code[:1], 0) for *_, c in people] if explicit else None
    idx, scores = vector.rank_investors(pm, listing, policy, same)
    event("some investors ranked" if expected else "nobody ranked")
    assert idx.tolist() == [i for _, i in expected]
    assert scores.tolist() == [-s for s, _ in expected]


@CHEAP
@given(
    people=st.lists(st.tuples(preferences, investors, pushes), min_size=3, max_size=30),
    pool=st.lists(listings, min_size=1, max_size=12),
    repeats=st.lists(st.integers(0, 11), max_size=20),
    policy=policies,
    k=st.integers(1, 6),
    margin=st.integers(0, 4),
    chunk=st.integers(1, 9),
    prefix_features=st.sampled_from([1, 2, 4, 64]),
)
def test_top_k_listings_is_the_scalar_top_k(
    people: list[tuple[model.Preferences, model.InvestorProfile, dict[str, int]]],
    pool: list[model.Listing],
    repeats: list[int],
    policy: PolicyProfile,
    k: int,
    margin: int,
    chunk: int,
    prefix_features: int,
) -> None:
    # repeated listings make exact ties, which must go by listing index
    items = pool + [pool[r % len(pool)] for r in repeats]
    pm = vector.ProfileMatrix.from_profiles([(p, v) for p, v, _ in people], [c for *_, c in people])
    lm = vector.ListingMatrix.from_listings(items)
    stats: dict[str, float] = {}
    idx, scores = vector.top_k_listings(
        pm, lm, policy, k, chunk=chunk, margin=margin, prefix_features=prefix_features, stats=stats
    )
    assert idx.shape == scores.shape == (len(people), k)
    event("rows recomputed exactly" if stats["fallback_rows"] else "every row proven")
    event("some listing recommended" if (idx >= 0).any() else "nothing recommended")
    for i, (p, inv, counts) in enumerate(people):
        ranked = sorted(
            (-t, j)
            for j, listing in enumerate(items)
            if (t := _scalar_score(p, inv, listing, policy, counts)) is not None
        )[:k]
        got = [int(j) for j in idx[i] if j >= 0]
        assert got == [j for _, j in ranked]
        assert scores[i, : len(got)].tolist() == [-t for t, _ in ranked]
        assert np.isnan(scores[i, len(got) :]).all()
        assert (idx[i, len(got) :] == -1).all()


def test_top_k_on_a_larger_world_needs_few_fallbacks() -> None:
    rng = np.random.default_rng(7)
    people = [
        (
            model.Preferences(
                "CNY",
                int(rng.integers(1, 10**6)),
                10**9,
                min_term_months=int(rng.integers(1, 13)),
                max_term_months=int(rng.integers(12, 61)),
                industries=frozenset(
                    rng.choice(["C", "A", "I"], size=int(rng.integers(0, 3)), replace=False)
                ),
                min_transparency=int(rng.integers(0, 60)),
            ),
            model.InvestorProfile("person", RiskLevel(f"C{rng.integers(1, 6)}"), 10**9),
        )
        for _ in range(300)
    ]
    items = [
        model.Listing(
            f"d{j}",
            "CNY",
            int(rng.integers(10**5, 10**7)),
            int(rng.integers(1, 61)),
            "p2p_loan",
            str(rng.choice(GRADE_CODES)),
            float(rng.uniform(0, 0.2)),
            Decimal(int(rng.integers(300, 1500))) / 10000,
            False,
            str(rng.choice(INDUSTRIES[:-1])),
            str(rng.choice(REGIONS)),
            "small",
            bool(rng.integers(0, 2)),
            int(rng.integers(0, 101)),
            int(rng.integers(0, 10001)),
        )
        for j in range(400)
    ]
    pm = vector.ProfileMatrix.from_profiles(people)
    lm = vector.ListingMatrix.from_listings(items)
    stats: dict[str, float] = {}
    idx, _ = vector.top_k_listings(pm, lm, EU_ECSP, 10, chunk=64, stats=stats)
    assert stats["fallback_rows"] <= 15
    for i in range(0, 300, 29):
        p, inv = people[i]
        ranked = sorted(
            (-t, j) for j, x in enumerate(items) if (t := _scalar_score(p, inv, x, EU_ECSP, {})) is not None
        )[:10]
        assert [int(j) for j in idx[i] if j >= 0] == [j for _, j in ranked]


@given(n=st.integers(0, 10**6), ulps=st.integers(-3, 3), scale=st.sampled_from([1.0, 1e-3, 1e-6]))
def test_round6_is_pythons_round(n: int, ulps: int, scale: float) -> None:
    """Around the half-way points, where multiplying by 1e6 can round onto an exact tie."""
    x = (n + 0.5) / 1e6 * scale
    values = [x]
    for _ in range(abs(ulps)):
        x = float(np.nextafter(x, np.inf if ulps > 0 else -np.inf))
        values.append(x)
    assert vector.round6(np.array(values)).tolist() == [round(v, 6) for v in values]
