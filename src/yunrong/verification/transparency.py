"""The information transparency index: how much of what an investor needs is independently verified,
and how fresh it is. Pure: no database, no web.

The formula (shown with every index, broken down)::

    score        = round(100 × (0.5·coverage + 0.3·freshness + 0.2·independence))      0 … 100

    coverage     = mean over the required categories c of  w(c), where
                   w(c) = 1    when a valid attestation covers c (signed, not expired, not revoked)
                          0.5  when only a data-feed fact covers it
                          0.2  when only a self-declared fact covers it
                          0    when nothing does
    freshness    = mean over the required categories c of the best remaining-validity fraction of
                   the valid attestations covering c, where for one attestation
                   fraction = (valid_until − now) / (valid_until − issued_at), clipped to 0 … 1
                   (an uncovered category counts 0)
    independence = min(1, distinct attesting agencies / 3) × (0.5 if one agency both rates the
                   enterprise and guarantees it, else 1)

Properties (tested with Hypothesis): the score is always within 0 … 100; a higher coverage, freshness
or independence never lowers it; adding a self-declared fact, or a valid attestation by an agency
not yet attesting, never lowers it. Why these weights: coverage matters most (a missing category
is a blind spot), freshness next (stale ratings mislead), independence last (three agencies is
plenty for an SME file; a rater that also guarantees the loan has a conflict of interest).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

W_COVERAGE = 0.5
W_FRESHNESS = 0.3
W_INDEPENDENCE = 0.2
AGENCIES_FOR_FULL_INDEPENDENCE = 3
CONFLICT_PENALTY = 0.5
PROVENANCE_WEIGHT: dict[str, float] = {"attested": 1.0, "data_feed": 0.5, "self_declared": 0.2}

#: Agency types whose combination in one agency is a conflict of interest.
CONFLICTING_KINDS = frozenset({"credit_rating", "guarantee"})

FORMULA = (
    "score = round(100 × (0.5·coverage + 0.3·freshness + 0.2·independence)); "
    "coverage = mean over required categories of 1 (valid attestation) / 0.5 (data feed only) / "
    "0.2 (self-declared only) / 0 (nothing); "
    "freshness = mean over required categories of the best remaining-validity fraction "
    "(valid_until − now) / (valid_until − issued_at) of its valid attestations, 0 if none; "
    "independence = min(1, distinct attesting agencies / 3), halved when one agency both rates "
    "and guarantees"
)


@dataclass(frozen=True, slots=True)
class Signal:
    """What the index needs to know of one fact."""

    category: str
    provenance: str  # self_declared | attested | data_feed
    valid: bool = True  # for attestations: signature good, not expired, not revoked
    agency_id: str | None = None
    kind: str | None = None  # the attesting agency's type (credit_rating, guarantee, …)
    issued_at: datetime | None = None
    valid_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class CategoryScore:
    category: str
    best_provenance: str | None
    weight: float
    freshness: float


@dataclass(frozen=True, slots=True)
class Breakdown:
    score: int
    coverage: float
    freshness: float
    independence: float
    agencies: int
    conflict: bool
    categories: tuple[CategoryScore, ...] = field(default_factory=tuple)
    formula: str = FORMULA

    def as_dict(self) -> dict[str, object]:
        return {
            "score": self.score,
            "coverage": self.coverage,
            "freshness": self.freshness,
            "independence": self.independence,
            "weights": {
                "coverage": W_COVERAGE,
                "freshness": W_FRESHNESS,
                "independence": W_INDEPENDENCE,
            },
            "agencies": self.agencies,
            "conflict_of_interest": self.conflict,
            "categories": [
                {
                    "category": c.category,
                    "best_provenance": c.best_provenance,
                    "weight": c.weight,
                    "freshness": c.freshness,
                }
                for c in self.categories
            ],
            "formula": self.formula,
        }


def remaining_fraction(issued_at: datetime, valid_until: datetime, now: datetime) -> float:
    """How much of an attestation's validity is left: 1 when just issued, 0 once expired."""
    span = (valid_until - issued_at).total_seconds()
    if span <= 0:
        return 0.0
    left = (valid_until - now).total_seconds()
    return min(1.0, max(0.0, left / span))


def combine(coverage: float, freshness: float, independence: float) -> int:
    """The weighted score, 0 … 100 (inputs are clipped to 0 … 1)."""
    parts = (
        W_COVERAGE * _unit(coverage) + W_FRESHNESS * _unit(freshness) + W_INDEPENDENCE * _unit(independence)
    )
    return max(0, min(100, math.floor(100 * parts + 0.5 + 1e-9)))


def _unit(x: float) -> float:
    return 0.0 if math.isnan(x) else min(1.0, max(0.0, x))


def _attestation_counts(s: Signal, now: datetime) -> bool:
    return (
        s.provenance == "attested"
        and s.valid
        and s.agency_id is not None
        and (s.valid_until is None or s.valid_until > now)
    )


def transparency_index(
    signals: Iterable[Signal], required_categories: Iterable[str], now: datetime
) -> Breakdown:
    """The index over the facts of an enterprise (or a demand), for the required categories."""
    facts = list(signals)
    required = sorted(set(required_categories))
    valid_attestations = [s for s in facts if _attestation_counts(s, now)]

    per_category: list[CategoryScore] = []
    for category in required:
        in_category = [s for s in facts if s.category == category]
        attested = [s for s in valid_attestations if s.category == category]
        if attested:
            best, weight = "attested", PROVENANCE_WEIGHT["attested"]
        elif any(s.provenance == "data_feed" for s in in_category):
            best, weight = "data_feed", PROVENANCE_WEIGHT["data_feed"]
        elif any(s.provenance == "self_declared" for s in in_category):
            best, weight = "self_declared", PROVENANCE_WEIGHT["self_declared"]
        else:
            best, weight = None, 0.0
        fresh = max(
            (
                remaining_fraction(s.issued_at, s.valid_until, now)
                for s in attested
                if s.issued_at is not None and s.valid_until is not None
            ),
            default=0.0,
        )
        per_category.append(CategoryScore(category, best, weight, round(fresh, 4)))

    if required:
        coverage = sum(c.weight for c in per_category) / len(required)
        freshness = sum(c.freshness for c in per_category) / len(required)
    else:
        coverage = freshness = 1.0

    kinds_by_agency: dict[str, set[str]] = {}
    for s in valid_attestations:
        assert s.agency_id is not None
        kinds_by_agency.setdefault(s.agency_id, set()).add(s.kind or "")
    conflict = any(kinds >= CONFLICTING_KINDS for kinds in kinds_by_agency.values())
    independence = min(1.0, len(kinds_by_agency) / AGENCIES_FOR_FULL_INDEPENDENCE)
    if conflict:
        independence *= CONFLICT_PENALTY

    return Breakdown(
        score=combine(coverage, freshness, independence),
        coverage=round(coverage, 4),
        freshness=round(freshness, 4),
        independence=round(independence, 4),
        agencies=len(kinds_by_agency),
        conflict=conflict,
        categories=tuple(per_category),
    )
