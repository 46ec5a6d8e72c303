"""Push: rank one new listing against 1,000,000 investors (`matching.vector.rank_investors`).

Data: seeded synthetic investors and listings (the generators below, shared with `recommend.py`):
most investors leave most choices open ("any"); those who choose pick a few industry sections
(sometimes a division), provinces (sometimes a city), grades, products; terms in the usual buckets;
amounts log-uniform.

- **encode** (s): `ProfileMatrix.from_profiles` of the 1,000,000 (preferences, profile) pairs, once.
- **ours** (ms): `rank_investors(profiles, listing, policy, same_industry_pushes)`: every rule of
  `model.fits` and `model.suitable` exactly (currency, amount, term, grades, industry and region
  prefixes, products, sizes, innovation, transparency, guarantee, declined, risk level, the
  EU ECSP ticket warning), the exact score (rounded as Python rounds), sorted best first.
- **anchor** (ms): a bare NumPy pass over the same columns: one fused boolean mask of the integer
  comparisons and bit tests (no prefix sets, no ticket rule), a float score of the same four terms
  on the survivors (no exact rounding), `argsort`. Alternating with ours, same process.

Target: ours <= 200 ms (median). Last stdout line: JSON (value = ours in ms; ratio = ours / anchor,
so here lower is better).
"""

from __future__ import annotations

import argparse
import sys
import time
from decimal import Decimal
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import emit, log, machine, median
from yunrong.credit.grades import GRADES
from yunrong.demands.model import Product
from yunrong.matching import model
from yunrong.parties.risk import RiskLevel

SECTIONS = list("ABCDEFGHIJKLMNOPQRST")
DIVISIONS = ["C13", "C26", "C39", "I65", "F51", "K70", "M73", "A01"]
PROVINCES = ["11", "12", "31", "32", "33", "35", "37", "42", "44", "50", "51", "61"]
CITIES = ["3201", "3205", "3301", "4403", "4401", "5101"]
GRADE_CODES = [g.code for g in GRADES]
PRODUCTS = [p.value for p in Product]
LEVELS = list(RiskLevel)


def _pool(rng: np.random.Generator, size: int, draw: object) -> list[frozenset[str]]:
    out: list[frozenset[str]] = [frozenset()] * (size // 2)  # half of the choices are "any"
    while len(out) < size:
        out.append(draw(rng))  # type: ignore[operator]
    return out


def _industries(rng: np.random.Generator) -> frozenset[str]:
    picks = list(rng.choice(SECTIONS, size=int(rng.integers(1, 4)), replace=False))
    if rng.random() < 0.3:
        picks.append(str(rng.choice(DIVISIONS)))
    return frozenset(str(x) for x in picks)


def _regions(rng: np.random.Generator) -> frozenset[str]:
    picks = list(rng.choice(PROVINCES, size=int(rng.integers(1, 3)), replace=False))
    if rng.random() < 0.3:
        picks = [str(rng.choice(CITIES))]
    return frozenset(str(x) for x in picks)


def investors(n: int, seed: int = 0) -> list[tuple[model.Preferences, model.InvestorProfile]]:
    rng = np.random.default_rng(seed)
    ind_pool = _pool(rng, 4000, _industries)
    reg_pool = _pool(rng, 1000, _regions)
    grade_pool = _pool(
        rng, 200, lambda r: frozenset(r.choice(GRADE_CODES, int(r.integers(2, 7)), replace=False))
    )
    prod_pool = _pool(rng, 60, lambda r: frozenset(r.choice(PRODUCTS, int(r.integers(1, 4)), replace=False)))
    size_pool = _pool(
        rng, 30, lambda r: frozenset(r.choice(model.SIZES, int(r.integers(1, 3)), replace=False))
    )
    amount = (10 ** rng.uniform(5, 7, n)).astype(np.int64)  # CNY 1,000 – 100,000 per loan
    lo = rng.choice([1, 3, 6, 12], n)
    hi = rng.choice([12, 24, 36, 60], n)
    ind = rng.integers(0, len(ind_pool), n)
    reg = rng.integers(0, len(reg_pool), n)
    grd = rng.integers(0, len(grade_pool), n)
    prd = rng.integers(0, len(prod_pool), n)
    siz = rng.integers(0, len(size_pool), n)
    innov = rng.choice([0, 0, 0, 0, 0, 0, 0, 1, 1, 2], n)
    min_t = np.where(rng.random(n) < 0.5, 0, rng.integers(40, 81, n))
    min_c = np.where(rng.random(n) < 0.8, 0, rng.integers(1000, 5001, n))
    person = rng.random(n) < 0.8
    level = rng.choice([-1, 0, 1, 2, 3, 4], n, p=[0.05, 0.1, 0.2, 0.3, 0.2, 0.15])
    worth = (10 ** rng.uniform(6, 10, n)).astype(np.int64)
    innovations = list(model.Innovation)
    return [
        (
            model.Preferences(
                currency="CNY",
                amount_per_loan_minor=int(amount[i]),
                total_budget_minor=int(amount[i]) * 20,
                min_term_months=int(lo[i]),
                max_term_months=int(hi[i]),
                grades=grade_pool[grd[i]],
                industries=ind_pool[ind[i]],
                regions=reg_pool[reg[i]],
                products=prod_pool[prd[i]],
                sizes=size_pool[siz[i]],
                innovation=innovations[innov[i]],
                min_transparency=int(min_t[i]),
                min_guarantee_coverage_bp=int(min_c[i]),
            ),
            model.InvestorProfile(
                kind="person" if person[i] else "institution",
                risk_level=LEVELS[level[i]] if level[i] >= 0 else None,
                net_worth_minor=int(worth[i]),
            ),
        )
        for i in range(n)
    ]


def listings(n: int, seed: int = 1) -> list[model.Listing]:
    rng = np.random.default_rng(seed)
    out = []
    for j in range(n):
        section = str(rng.choice(SECTIONS))
        out.append(
            model.Listing(
                demand_id=f"{j:08d}",
                currency="CNY",
                amount_minor=int(10 ** rng.uniform(7, 9)),  # CNY 100,000 – 10,000,000
                term_months=int(rng.choice([3, 6, 9, 12, 18, 24, 36, 48, 60])),
                product=str(rng.choice(PRODUCTS)),
                grade=str(rng.choice(GRADE_CODES[:7])),
                pd=float(rng.uniform(0.002, 0.2)),
                annual_rate=Decimal(int(rng.integers(400, 1800))) / 10000,
                declined=bool(rng.random() < 0.05),
                industry_code=section + str(int(rng.integers(1000, 9999))),
                region_code=str(rng.choice(PROVINCES)) + str(int(rng.integers(1000, 9999))),
                size_class=str(rng.choice(model.SIZES[:3])),
                innovative=bool(rng.random() < 0.3),
                transparency=int(rng.integers(30, 101)),
                guarantee_coverage_bp=int(rng.choice([0, 0, 2500, 5000, 10000])),
            )
        )
    return out


def new_listing() -> model.Listing:
    return model.Listing(
        demand_id="new",
        currency="CNY",
        amount_minor=50_000_000,
        term_months=12,
        product="p2p_loan",
        grade="BBB",
        pd=0.02,
        annual_rate=Decimal("0.085"),
        declined=False,
        industry_code="C1392",
        region_code="320102",
        size_class="small",
        innovative=True,
        transparency=72,
        guarantee_coverage_bp=3000,
    )


def bare_pass(pm: object, listing: model.Listing, same: np.ndarray) -> np.ndarray:
    """The anchor: the integer part of the filter in one fused mask, a plain float score, argsort."""
    from yunrong.matching import vector

    assert isinstance(pm, vector.ProfileMatrix)
    g = np.uint32(1 << vector.GRADE_INDEX[listing.grade])
    p = np.uint32(1 << pm.products[listing.product])
    s = np.uint32(1 << pm.sizes[listing.size_class])
    t = listing.term_months
    ok = (
        (pm.currency == pm.currencies[listing.currency])
        & (pm.amount <= listing.amount_minor)
        & (pm.min_term <= t)
        & (t <= pm.max_term)
        & ((pm.grade_mask & g) != 0)
        & ((pm.product_mask & p) != 0)
        & ((pm.size_mask & s) != 0)
        & ((pm.innovation != 2) | listing.innovative)
        & (pm.min_transparency <= listing.transparency)
        & (pm.min_coverage <= listing.guarantee_coverage_bp)
        & (pm.level >= model.product_risk(listing.grade))
    )
    idx = np.flatnonzero(ok)
    lo, hi = pm.min_term[idx], pm.max_term[idx]
    cent = 1 - np.abs(t - (lo + hi) / 2) / np.maximum(hi - lo, 1)
    fit = 0.5 * cent + 0.5 * np.where(pm.innovation[idx] == 0, 0.5, float(listing.innovative))
    ret = vector.ListingMatrix.from_listings([listing]).ret[0][pm.level[idx] - 1]
    score = 0.35 * fit + 0.30 * ret + 0.20 / (1 + same[idx]) + 0.15 * listing.transparency / 100
    return idx[np.argsort(-score, kind="stable")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--investors", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from yunrong.matching import vector
    from yunrong.supervision.policy import EU_ECSP

    t0 = time.perf_counter()
    people = investors(args.investors, args.seed)
    log(f"generated {len(people):,} investors in {time.perf_counter() - t0:.1f}s")
    t0 = time.perf_counter()
    pm = vector.ProfileMatrix.from_profiles(people)
    encode_s = time.perf_counter() - t0
    log(
        f"encoded in {encode_s:.2f}s ({len(pm.industries.sets)} distinct industry sets, "
        f"{len(pm.regions.sets)} region sets)"
    )
    del people
    listing = new_listing()
    same = np.random.default_rng(args.seed + 1).integers(0, 4, args.investors)
    idx, scores = vector.rank_investors(pm, listing, EU_ECSP, same)
    bare_pass(pm, listing, same)
    ours, anchor = [], []
    for i in range(args.repeat):
        a = time.perf_counter()
        bare = bare_pass(pm, listing, same)
        b = time.perf_counter()
        idx, scores = vector.rank_investors(pm, listing, EU_ECSP, same)
        c = time.perf_counter()
        anchor.append((b - a) * 1000)
        ours.append((c - b) * 1000)
        log(f"run {i + 1}: ours {ours[-1]:.1f} ms, anchor {anchor[-1]:.1f} ms")
    log(
        f"ranked {len(idx):,} investors (anchor's looser filter: {len(bare):,}); "
        f"median ours {median(ours):.1f} ms, anchor {median(anchor):.1f} ms"
    )
    emit(
        "push_rank_investors",
        median(ours),
        "ms to rank 1 listing against all investors (lower is better)",
        "bare NumPy fused mask + float score + argsort over the same columns",
        median(anchor),
        investors=args.investors,
        ranked=len(idx),
        best_score=float(scores[0]) if len(scores) else None,
        encode_s=round(encode_s, 2),
        target_ms=200,
        runs_ours=[round(v, 1) for v in ours],
        runs_anchor=[round(v, 1) for v in anchor],
        machine=machine(),
    )


if __name__ == "__main__":
    main()
