"""Pure parts of attestations: the canonical form, Ed25519 signatures, result types, and the
information transparency index."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from yunrong.parties.model import AgencyType
from yunrong.verification.attestations import (
    RESULTS,
    GuaranteeCommitment,
    RatingResult,
    VerificationFinding,
    canonical_form,
    public_key_of,
    sign,
    signature_valid,
)
from yunrong.verification.transparency import (
    FORMULA,
    Signal,
    combine,
    remaining_fraction,
    transparency_index,
)

SEED = bytes(range(32))
OTHER_SEED = bytes(range(1, 33))
ISSUED = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
UNTIL = datetime(2027, 11, 26, 2, 0, tzinfo=UTC)
ENTERPRISE = uuid.UUID("01900000-0000-7000-8000-000000000001")
AGENCY = uuid.UUID("01900000-0000-7000-8000-000000000002")


def _fields(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "order_ref": "SO-ABCDEFGH",
        "enterprise_id": ENTERPRISE,
        "agency_id": AGENCY,
        "kind": "credit_rating",
        "subject": "enterprise",
        "payload": {"rating": "AA", "outlook": "stable", "methodology": "SME scorecard v3"},
        "issued_at": ISSUED,
        "valid_until": UNTIL,
    }
    base.update(overrides)
    return base


# --- the canonical form -------------------------------------------------------------------------


def test_canonical_form_is_deterministic_and_order_free() -> None:
    one = canonical_form(**_fields())
    reordered = _fields(payload={"methodology": "SME scorecard v3", "outlook": "stable", "rating": "AA"})
    assert canonical_form(**reordered) == one
    assert canonical_form(**_fields(enterprise_id=str(ENTERPRISE))) == one
    # The same instants in another zone are the same canonical form.
    shanghai = timezone(timedelta(hours=8))
    assert (
        canonical_form(
            **_fields(issued_at=ISSUED.astimezone(shanghai), valid_until=UNTIL.astimezone(shanghai))
        )
        == one
    )
    parsed = json.loads(one)
    assert parsed["format"] == "yunrong-attestation/1"
    assert parsed["issued_at"] == "2026-11-26T02:00:00.000000+00:00"
    assert " " not in one.replace("SME scorecard v3", "")


def test_canonical_form_refuses_naive_times() -> None:
    with pytest.raises(ValueError, match="timezone"):
        canonical_form(**_fields(issued_at=datetime(2026, 1, 1)))


def test_sign_and_verify() -> None:
    canonical = canonical_form(**_fields())
    signature = sign(SEED, canonical)
    key = public_key_of(SEED)
    assert signature_valid(key, canonical, signature)
    assert not signature_valid(public_key_of(OTHER_SEED), canonical, signature)
    assert not signature_valid(key, canonical + " ", signature)
    assert not signature_valid(key, canonical, "not base64!")
    assert not signature_valid(key, canonical, signature[:-4] + "AAAA")
    assert not signature_valid("short", canonical, signature)


json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-(10**12), 10**12), st.text(max_size=12))
json_values = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
payloads = st.dictionaries(st.text(min_size=1, max_size=8), json_values, min_size=1, max_size=5)
SIGNED_FIELDS = [
    "order_ref",
    "enterprise_id",
    "agency_id",
    "kind",
    "subject",
    "payload",
    "issued_at",
    "valid_until",
]


def _tampered(field: str, value: Any) -> Any:
    if field == "order_ref":
        return (value or "") + "X"
    if field in ("enterprise_id", "agency_id"):
        return uuid.UUID(int=uuid.UUID(str(value)).int ^ 1)
    if field in ("kind", "subject"):
        return value + "_"
    if field == "payload":
        changed = dict(value)
        first = sorted(changed)[0]
        changed[first] = [changed[first]]  # any change of any value
        return changed
    return value + timedelta(microseconds=1)


@settings(max_examples=150, deadline=None)
@given(
    field=st.sampled_from(SIGNED_FIELDS),
    payload=payloads,
    order_ref=st.one_of(st.none(), st.text(min_size=1, max_size=12)),
    subject=st.text(min_size=1, max_size=20),
    shift=st.integers(0, 10**9),
)
def test_tampering_with_any_signed_field_breaks_the_signature(
    field: str, payload: dict[str, Any], order_ref: str | None, subject: str, shift: int
) -> None:
    fields = _fields(
        payload=payload,
        order_ref=order_ref,
        subject=subject,
        issued_at=ISSUED + timedelta(microseconds=shift),
    )
    canonical = canonical_form(**fields)
    signature = sign(SEED, canonical)
    key = public_key_of(SEED)
    assert signature_valid(key, canonical, signature)
    fields[field] = _tampered(field, fields[field])
    assert not signature_valid(key, canonical_form(**fields), signature)


# --- result types ---------------------------------------------------------------------------------


def test_every_agency_type_has_a_result_type() -> None:
    assert set(RESULTS) == {t.value for t in AgencyType}


def test_results_validate_and_refuse_the_wrong_shape() -> None:
    assert RatingResult.model_validate({"rating": "BBB", "outlook": "negative", "methodology": "m"})
    with pytest.raises(ValidationError):
        RatingResult.model_validate({"rating": "ZZ", "outlook": "stable", "methodology": "m"})
    with pytest.raises(ValidationError):  # an appraisal is not a rating
        RESULTS["credit_rating"].model_validate(
            {
                "subject": "business",
                "value_minor": 1,
                "currency": "CNY",
                "method": "m",
                "appraised_on": "2026-11-01",
            }
        )
    ok = {
        "coverage_percent": "80",
        "cap_minor": 100,
        "fee_percent": "1.5",
        "term_months": 12,
        "currency": "CNY",
    }
    assert GuaranteeCommitment.model_validate(ok)
    for bad in (
        {"coverage_percent": "0"},
        {"coverage_percent": "100.01"},
        {"cap_minor": 0},
        {"term_months": 0},
    ):
        with pytest.raises(ValidationError):
            GuaranteeCommitment.model_validate({**ok, **bad})
    with pytest.raises(ValidationError, match="bank account"):
        VerificationFinding.model_validate({"subject": "bank_account", "verified": True, "finding": "ok"})


# --- the transparency index ------------------------------------------------------------------------

NOW = datetime(2027, 1, 1, tzinfo=UTC)
CATEGORIES = ["identity", "financials", "credit_score", "attestations", "supply_chain"]
AGENCIES = ["a1", "a2", "a3", "a4"]
KINDS = ["credit_rating", "guarantee", "appraisal", "authentication"]

signals = st.builds(
    Signal,
    category=st.sampled_from(CATEGORIES),
    provenance=st.sampled_from(["self_declared", "attested", "data_feed"]),
    valid=st.booleans(),
    agency_id=st.sampled_from(AGENCIES),
    kind=st.sampled_from(KINDS),
    issued_at=st.integers(-800, 0).map(lambda d: NOW + timedelta(days=d)),
    valid_until=st.integers(-100, 800).map(lambda d: NOW + timedelta(days=d)),
)
required_sets = st.sets(st.sampled_from(CATEGORIES), min_size=1)


@given(facts=st.lists(signals, max_size=12), required=required_sets)
def test_score_is_always_between_0_and_100(facts: list[Signal], required: set[str]) -> None:
    b = transparency_index(facts, required, NOW)
    assert 0 <= b.score <= 100
    for part in (b.coverage, b.freshness, b.independence):
        assert 0.0 <= part <= 1.0
    assert b.formula == FORMULA
    assert [c.category for c in b.categories] == sorted(required)


unit = st.floats(0, 1, allow_nan=False)


@given(c1=unit, c2=unit, f=unit, i=unit)
def test_score_is_monotone_in_coverage(c1: float, c2: float, f: float, i: float) -> None:
    low, high = sorted((c1, c2))
    assert combine(low, f, i) <= combine(high, f, i)
    assert combine(f, low, i) <= combine(f, high, i)
    assert combine(f, i, low) <= combine(f, i, high)


@given(facts=st.lists(signals, max_size=10), required=required_sets, category=st.sampled_from(CATEGORIES))
def test_declaring_more_never_lowers_the_score(
    facts: list[Signal], required: set[str], category: str
) -> None:
    before = transparency_index(facts, required, NOW).score
    after = transparency_index([*facts, Signal(category, "self_declared")], required, NOW).score
    assert after >= before


@given(
    facts=st.lists(signals, max_size=10),
    required=required_sets,
    category=st.sampled_from(CATEGORIES),
    kind=st.sampled_from(KINDS),
    age=st.integers(0, 300),
)
def test_a_valid_attestation_by_a_new_agency_never_lowers_the_score(
    facts: list[Signal], required: set[str], category: str, kind: str, age: int
) -> None:
    before = transparency_index(facts, required, NOW)
    new = Signal(
        category,
        "attested",
        valid=True,
        agency_id="newcomer",
        kind=kind,
        issued_at=NOW - timedelta(days=age),
        valid_until=NOW + timedelta(days=365),
    )
    after = transparency_index([*facts, new], required, NOW)
    assert after.score >= before.score
    assert after.coverage >= before.coverage


def _attested(category: str, agency: str, kind: str, *, days_left: int = 365, valid: bool = True) -> Signal:
    return Signal(
        category,
        "attested",
        valid=valid,
        agency_id=agency,
        kind=kind,
        issued_at=NOW - timedelta(days=365 - days_left),
        valid_until=NOW + timedelta(days=days_left),
    )


def test_index_examples_broken_down() -> None:
    required = ["identity", "financials", "credit_score"]
    assert transparency_index([], required, NOW).score == 0
    declared = [Signal(c, "self_declared") for c in required]
    b = transparency_index(declared, required, NOW)
    assert (b.coverage, b.freshness, b.independence, b.score) == (0.2, 0.0, 0.0, 10)

    full = [
        _attested("identity", "a1", "authentication"),
        _attested("financials", "a2", "appraisal"),
        _attested("credit_score", "a3", "credit_rating"),
    ]
    b = transparency_index(full, required, NOW)
    assert (b.coverage, b.freshness, b.independence, b.score) == (1.0, 1.0, 1.0, 100)
    assert b.as_dict()["categories"][0] == {
        "category": "credit_score",
        "best_provenance": "attested",
        "weight": 1.0,
        "freshness": 1.0,
    }

    # Half-way through their validity: freshness 0.5.
    half = [_attested(s.category, s.agency_id or "", s.kind or "", days_left=182) for s in full]
    assert transparency_index(half, required, NOW).freshness == pytest.approx(0.5, abs=0.01)

    # Expired, revoked or badly signed attestations count for nothing beyond a declaration.
    dead = [
        _attested("identity", "a1", "authentication", days_left=-1),
        _attested("financials", "a2", "appraisal", valid=False),
    ]
    b = transparency_index([*dead, *declared], required, NOW)
    assert b.agencies == 0
    assert b.coverage == pytest.approx(0.2)

    # One agency that rates and guarantees: independence halved.
    conflicted = [*full, _attested("attestations", "a3", "guarantee")]
    b = transparency_index(conflicted, required, NOW)
    assert b.conflict
    assert b.independence == 0.5
    assert b.score == 90


def test_remaining_fraction_bounds() -> None:
    assert remaining_fraction(NOW, NOW + timedelta(days=10), NOW) == 1.0
    assert remaining_fraction(NOW - timedelta(days=10), NOW, NOW) == 0.0
    assert remaining_fraction(NOW, NOW, NOW) == 0.0
    assert remaining_fraction(NOW - timedelta(days=5), NOW + timedelta(days=5), NOW) == 0.5
