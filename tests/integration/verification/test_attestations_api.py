"""Signed attestations end to end: the demo agency signs a rating for the demo SME's order; anyone
verifies it; tampering with any stored signed field breaks it; bad results and bad signatures are
refused with nothing saved; revocation; the credit file with provenance and as-of reads; listings
filtered by consent, with views recorded; and everyone else refused."""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import bearer
from yunrong.config import Settings
from yunrong.db import unit_of_work
from yunrong.demands.tables import Demand
from yunrong.demo.seed import AGENCY, demo_agency_private_key
from yunrong.identity import repository
from yunrong.identity.model import Context
from yunrong.identity.service import actor_for
from yunrong.kit.clock import FrozenClock
from yunrong.kit.errors import YunrongError
from yunrong.kit.ids import human_ref
from yunrong.verification import attestations, credit_file
from yunrong.verification.attestations import BadSignature, InvalidAttestation, WrongResultType
from yunrong.verification.tables import Attestation, CreditFact, ListingView, ServiceOrder

SME = "sme@demo.yunrong.cn"
AGENCY_EMAIL = "agency@demo.yunrong.cn"
PERSON = "investor@demo.yunrong.cn"
INSTITUTION = "institution@demo.yunrong.cn"
REGULATOR = "regulator1@demo.yunrong.cn"
OPERATOR = "operator@demo.yunrong.cn"
BANK = "bank@demo.yunrong.cn"

RATING = {"rating": "AA", "outlook": "stable", "methodology": "Chengxin SME scorecard v3"}


def _ctx(factory: sessionmaker[Session], clock: FrozenClock, email: str) -> Context:
    with unit_of_work(factory) as session:
        user = repository.user_by_email(session, email)
        assert user is not None
        org = repository.organisation_by_id(session, user.organisation_id)
        assert org is not None
        return Context(actor=actor_for(user, org, "test"), clock=clock, request_id="test")


def _org(factory: sessionmaker[Session], email: str) -> uuid.UUID:
    with unit_of_work(factory) as session:
        user = repository.user_by_email(session, email)
        assert user is not None
        return user.organisation_id


def _order(
    factory: sessionmaker[Session],
    clock: FrozenClock,
    *,
    agency_type: str = "credit_rating",
    service: str = "sme_credit_rating",
    status: str = "accepted",
) -> uuid.UUID:
    with unit_of_work(factory) as session:
        order = ServiceOrder(
            ref=human_ref("SO"),
            demand_id=None,
            enterprise_id=_org(factory, SME),
            agency_id=_org(factory, AGENCY_EMAIL),
            agency_type=agency_type,
            service=service,
            required=True,
            status=status,
            fee_minor=300_000,
            currency="CNY",
            deadline_at=clock.now() + timedelta(hours=72),
            assignments=1,
            status_reason=None,
            created_by="test",
            created_at=clock.now(),
            assigned_at=clock.now(),
            accepted_at=clock.now(),
        )
        session.add(order)
        session.flush()
        return order.id


def _attest(
    factory: sessionmaker[Session],
    clock: FrozenClock,
    settings: Settings,
    order_id: uuid.UUID,
    payload: dict[str, Any] | None = None,
    *,
    seed: bytes | None = None,
    signed_payload: dict[str, Any] | None = None,
    valid_for: timedelta = timedelta(days=365),
    evidence: list[uuid.UUID] | None = None,
) -> uuid.UUID:
    """The demo agency signs and files a result (through the service: the order API is elsewhere)."""
    payload = RATING if payload is None else payload
    issued_at = clock.now() - timedelta(minutes=5)
    valid_until = issued_at + valid_for
    ctx = _ctx(factory, clock, AGENCY_EMAIL)
    with unit_of_work(factory) as session:
        order = session.get(ServiceOrder, order_id)
        assert order is not None
        signed = payload if signed_payload is None else signed_payload
        try:
            result = attestations.RESULTS[order.agency_type].model_validate(signed)
            subject = attestations.subject_of(order.agency_type, result)
        except ValidationError:
            subject = "enterprise"  # a wrong result: refused before its signature is checked
        canonical = attestations.canonical_form(
            order_ref=order.ref,
            enterprise_id=order.enterprise_id,
            agency_id=order.agency_id or uuid.uuid4(),
            kind=order.agency_type,
            subject=subject,
            payload=signed,
            issued_at=issued_at,
            valid_until=valid_until,
        )
        key = seed if seed is not None else demo_agency_private_key(settings, AGENCY.organisation)
        row = attestations.record_attestation(
            session,
            ctx=ctx,
            order=order,
            payload=payload,
            issued_at=issued_at,
            valid_until=valid_until,
            signature=attestations.sign(key, canonical),
            evidence_document_ids=evidence or [],
        )
        return row.id


def _order_ref(factory: sessionmaker[Session], order_id: uuid.UUID) -> str:
    with unit_of_work(factory) as session:
        order = session.get(ServiceOrder, order_id)
        assert order is not None
        return order.ref


def _count(factory: sessionmaker[Session], model: type[Any]) -> int:
    with unit_of_work(factory) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _verify(client: TestClient, attestation_id: uuid.UUID) -> dict[str, Any]:
    response = client.get(f"/api/v1/attestations/{attestation_id}/verification")  # no credentials
    assert response.status_code == 200, response.text
    return dict(response.json())


# --- signing, verifying, tampering -------------------------------------------------------------------


def test_anyone_verifies_and_any_tampering_breaks_it(
    client: TestClient,
    demo: dict[str, str],
    factory: sessionmaker[Session],
    clock: FrozenClock,
    settings: Settings,
) -> None:
    order_id = _order(factory, clock)
    other_order = _order(factory, clock)
    attestation_id = _attest(factory, clock, settings, order_id)

    good = _verify(client, attestation_id)
    assert good["valid"]
    assert good["signature_valid"]
    assert good["key_registered"]
    assert not good["revoked"]
    assert not good["expired"]
    assert good["agency"]["name"] == AGENCY.organisation
    assert good["kind"] == "credit_rating"
    assert good["subject"] == "enterprise"
    assert "payload" not in good  # the result is the enterprise's to share, by consent
    assert "enterprise_id" not in good

    with unit_of_work(factory) as session:
        row = session.get(Attestation, attestation_id)
        assert row is not None
        original = {
            c: getattr(row, c)
            for c in (
                "payload",
                "issued_at",
                "valid_until",
                "enterprise_id",
                "agency_id",
                "order_id",
                "kind",
                "subject",
                "signature",
                "public_key",
                "canonical",
            )
        }
    # Whoever holds the result rebuilds the canonical form, matches its digest, checks it offline.
    held = attestations.canonical_form(
        order_ref=_order_ref(factory, order_id),
        enterprise_id=original["enterprise_id"],
        agency_id=original["agency_id"],
        kind="credit_rating",
        subject="enterprise",
        payload=RATING,
        issued_at=original["issued_at"],
        valid_until=original["valid_until"],
    )
    assert hashlib.sha256(held.encode()).hexdigest() == good["canonical_sha256"]
    assert held == original["canonical"]
    assert attestations.signature_valid(good["agency"]["public_key"], held, good["signature"])

    pending = _org(factory, "applicant@qianli-machinery.example.cn")
    other_signature = attestations.sign(bytes(32), "something else")
    tampers: dict[str, Any] = {
        "payload": {**RATING, "rating": "AAA"},
        "issued_at": original["issued_at"] - timedelta(microseconds=1),
        "valid_until": original["valid_until"] + timedelta(days=365),
        "enterprise_id": pending,
        "agency_id": _org(factory, SME),
        "order_id": other_order,
        "kind": "appraisal",
        "subject": "business",
        "signature": other_signature,
        "public_key": attestations.public_key_of(bytes(32)),
    }
    for column, value in tampers.items():
        with unit_of_work(factory) as session:
            session.execute(
                update(Attestation).where(Attestation.id == attestation_id).values({column: value})
            )
        broken = _verify(client, attestation_id)
        assert not broken["valid"], column
        assert not broken["signature_valid"], column
        with unit_of_work(factory) as session:
            session.execute(
                update(Attestation).where(Attestation.id == attestation_id).values({column: original[column]})
            )
        assert _verify(client, attestation_id)["valid"], column

    # The stored canonical text is a convenience, never trusted: verification rebuilds it.
    with unit_of_work(factory) as session:
        session.execute(
            update(Attestation).where(Attestation.id == attestation_id).values(canonical='{"forged":true}')
        )
    assert _verify(client, attestation_id)["canonical_sha256"] == good["canonical_sha256"]

    # A tampered attestation's facts are withheld from the credit file.
    with unit_of_work(factory) as session:
        session.execute(
            update(Attestation)
            .where(Attestation.id == attestation_id)
            .values(payload={**RATING, "rating": "AAA"})
        )
    regulator = _ctx(factory, clock, REGULATOR)
    with unit_of_work(factory) as session:
        file = credit_file.read_credit_file(session, ctx=regulator, enterprise_id=_org(factory, SME))
    assert all(f.attestation_id != attestation_id for f in file.facts)
    assert [w.attestation_id for w in file.withheld] == [attestation_id]

    missing = client.get(f"/api/v1/attestations/{uuid.uuid4()}/verification")
    assert missing.status_code == 404


def test_expiry_makes_it_invalid(
    client: TestClient,
    demo: dict[str, str],
    factory: sessionmaker[Session],
    clock: FrozenClock,
    settings: Settings,
) -> None:
    attestation_id = _attest(factory, clock, settings, _order(factory, clock), valid_for=timedelta(hours=1))
    assert _verify(client, attestation_id)["valid"]
    clock.advance(timedelta(hours=1))
    expired = _verify(client, attestation_id)
    assert expired["expired"]
    assert expired["signature_valid"]
    assert not expired["valid"]


# --- refusals: nothing saved --------------------------------------------------------------------------


def _refused(
    exc_type: type[YunrongError],
    factory: sessionmaker[Session],
    clock: FrozenClock,
    settings: Settings,
    order_id: uuid.UUID,
    payload: dict[str, Any],
    **kwargs: Any,
) -> YunrongError:
    before = (_count(factory, Attestation), _count(factory, CreditFact))
    with pytest.raises(exc_type) as caught:
        _attest(factory, clock, settings, order_id, payload, **kwargs)
    assert caught.value.status == 422
    assert (_count(factory, Attestation), _count(factory, CreditFact)) == before
    return caught.value


def test_a_result_of_the_wrong_type_is_refused_with_every_problem(
    demo: dict[str, str], factory: sessionmaker[Session], clock: FrozenClock, settings: Settings
) -> None:
    order_id = _order(factory, clock)
    appraisal = {
        "subject": "business",
        "value_minor": 1_000_000,
        "currency": "CNY",
        "method": "DCF",
        "appraised_on": "2026-11-20",
    }
    error = _refused(WrongResultType, factory, clock, settings, order_id, appraisal, signed_payload=appraisal)
    assert error.code == "wrong-result-type"
    locs = {p.loc for p in error.problems}
    assert {("payload", "rating"), ("payload", "outlook"), ("payload", "methodology")} <= locs
    assert ("payload", "value_minor") in locs  # extra fields are refused too
    bad_rating = {**RATING, "rating": "A+", "outlook": "cloudy"}
    error = _refused(
        WrongResultType, factory, clock, settings, order_id, bad_rating, signed_payload=bad_rating
    )
    assert {("payload", "rating"), ("payload", "outlook")} <= {p.loc for p in error.problems}


def test_a_bad_signature_is_refused_and_no_fact_enters_the_file(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    clock: FrozenClock,
    settings: Settings,
) -> None:
    order_id = _order(factory, clock)
    error = _refused(BadSignature, factory, clock, settings, order_id, RATING, seed=bytes(range(32)))
    assert error.code == "bad-signature"
    # Signed over one result, submitted with another.
    _refused(
        BadSignature, factory, clock, settings, order_id, {**RATING, "rating": "AAA"}, signed_payload=RATING
    )
    file = client.get(
        f"/api/v1/enterprises/{_org(factory, SME)}/credit-file", headers=bearer(tokens[SME])
    ).json()
    assert all(f["provenance"] != "attested" for facts in file["categories"].values() for f in facts)


def test_dates_evidence_and_closed_orders_are_checked(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    clock: FrozenClock,
    settings: Settings,
) -> None:
    order_id = _order(factory, clock)
    error = _refused(
        InvalidAttestation, factory, clock, settings, order_id, RATING, valid_for=timedelta(minutes=1)
    )
    assert ("valid_until",) in {p.loc for p in error.problems}

    def upload(email: str) -> uuid.UUID:
        response = client.post(
            "/api/v1/documents",
            data={"category": "supporting"},
            files={"file": ("e.pdf", b"%PDF-1.4 evidence " + email.encode(), "application/pdf")},
            headers=bearer(tokens[email]),
        )
        assert response.status_code == 201, response.text
        return uuid.UUID(response.json()["id"])

    strangers = upload(PERSON)
    error = _refused(InvalidAttestation, factory, clock, settings, order_id, RATING, evidence=[strangers])
    assert error.problems[0].loc == ("evidence_document_ids", 0)
    mine, theirs = upload(AGENCY_EMAIL), upload(SME)
    attestation_id = _attest(factory, clock, settings, order_id, evidence=[mine, theirs])
    with unit_of_work(factory) as session:
        row = session.get(Attestation, attestation_id)
        assert row is not None
        assert row.evidence_document_ids == [str(mine), str(theirs)]
    with pytest.raises(attestations.AttestationExists):
        _attest(factory, clock, settings, order_id)
    with pytest.raises(attestations.OrderNotOpen):
        _attest(factory, clock, settings, _order(factory, clock, status="declined"))


def test_only_the_orders_agency_may_attest(
    demo: dict[str, str], factory: sessionmaker[Session], clock: FrozenClock, settings: Settings
) -> None:
    order_id = _order(factory, clock)
    sme = _ctx(factory, clock, SME)
    with unit_of_work(factory) as session:
        order = session.get(ServiceOrder, order_id)
        assert order is not None
        with pytest.raises(YunrongError) as caught:
            attestations.record_attestation(
                session,
                ctx=sme,
                order=order,
                payload=RATING,
                issued_at=clock.now(),
                valid_until=clock.now() + timedelta(days=1),
                signature="x",
                evidence_document_ids=[],
            )
    assert caught.value.status == 404


# --- every result type --------------------------------------------------------------------------------

RESULT_EXAMPLES: dict[str, tuple[dict[str, Any], set[tuple[str, str]]]] = {
    "appraisal": (
        {
            "subject": "equipment",
            "value_minor": 2_500_000_00,
            "currency": "CNY",
            "method": "replacement cost",
            "appraised_on": "2026-11-20",
        },
        {("financials", "appraised_value.equipment")},
    ),
    "ip_valuation": (
        {
            "patents": [
                {"number": "ZL202010123456.7", "title": "Drip irrigation valve", "value_minor": 800_000_00},
                {"number": "ZL202110654321.X", "title": "Soil sensor", "value_minor": 300_000_00},
            ],
            "currency": "CNY",
            "method": "relief from royalty",
        },
        {
            ("financials", "ip_value.ZL202010123456.7"),
            ("financials", "ip_value.ZL202110654321.X"),
            ("financials", "ip_value.total"),
        },
    ),
    "guarantee": (
        {
            "coverage_percent": 80.5,
            "cap_minor": 4_000_000_00,
            "fee_percent": "1.8",
            "term_months": 12,
            "currency": "CNY",
        },
        {("attestations", "guarantee_commitment")},
    ),
    "insurance": (
        {
            "policy_number": "PICC-2026-0001",
            "coverage_minor": 2_000_000_00,
            "premium_minor": 12_000_00,
            "currency": "CNY",
            "starts_on": "2026-12-01",
            "ends_on": "2027-11-30",
        },
        {("attestations", "insurance_policy")},
    ),
    "authentication": (
        {
            "subject": "business_licence",
            "verified": True,
            "finding": "matches the SAMR register",
            "bank_account_id": None,
        },
        {("identity", "verified.business_licence")},
    ),
    "logistics_monitoring": (
        {
            "goods": "rice seed",
            "warehouse": "Zhenjiang No. 3",
            "quantity": "120.5",
            "unit": "t",
            "value_minor": 90_000_00,
            "inspected_on": "2026-11-25",
            "condition": "good",
        },
        {("supply_chain", "inventory_inspection")},
    ),
}


@pytest.mark.parametrize("kind", sorted(RESULT_EXAMPLES))
def test_every_result_type_is_filed_with_its_facts(
    kind: str,
    client: TestClient,
    demo: dict[str, str],
    factory: sessionmaker[Session],
    clock: FrozenClock,
    settings: Settings,
) -> None:
    payload, expected = RESULT_EXAMPLES[kind]
    attestation_id = _attest(
        factory, clock, settings, _order(factory, clock, agency_type=kind, service="x"), payload
    )
    assert _verify(client, attestation_id)["valid"]
    with unit_of_work(factory) as session:
        facts = session.scalars(select(CreditFact).where(CreditFact.attestation_id == attestation_id)).all()
        assert {(f.category, f.key) for f in facts} == expected
        assert {f.source_label for f in facts} == {AGENCY.organisation}
        assert all(f.provenance == "attested" and f.valid_until is not None for f in facts)


# --- revocation -------------------------------------------------------------------------------------------


def test_the_issuing_agency_revokes(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    clock: FrozenClock,
    settings: Settings,
) -> None:
    attestation_id = _attest(factory, clock, settings, _order(factory, clock))
    path = f"/api/v1/attestations/{attestation_id}/revocation"
    assert client.post(path, json={"reason": "x"}, headers=bearer(tokens[SME])).status_code == 403
    assert client.post(path, json={"reason": "x"}, headers=bearer(tokens[REGULATOR])).status_code == 403
    blank = client.post(path, json={"reason": "  "}, headers=bearer(tokens[AGENCY_EMAIL]))
    assert blank.status_code == 422
    clock.advance(timedelta(minutes=1))
    revoked = client.post(path, json={"reason": "rating model error"}, headers=bearer(tokens[AGENCY_EMAIL]))
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked_reason"] == "rating model error"
    again = client.post(path, json={"reason": "again"}, headers=bearer(tokens[AGENCY_EMAIL]))
    assert again.status_code == 409

    verdict = _verify(client, attestation_id)
    assert verdict["revoked"]
    assert verdict["signature_valid"]
    assert not verdict["valid"]
    with unit_of_work(factory) as session:
        facts = session.scalars(select(CreditFact).where(CreditFact.attestation_id == attestation_id)).all()
        assert facts
        assert all(f.superseded_at == clock.now() for f in facts)
        from yunrong.supervision.tables import AuditRecord

        actions = set(session.scalars(select(AuditRecord.action)).all())
        assert {"attestation.record", "attestation.revoke"} <= actions


# --- the credit file ---------------------------------------------------------------------------------------


def _facts(body: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(f["category"], f["key"]): f for facts in body["categories"].values() for f in facts}


def test_credit_file_shows_provenance_and_reads_as_of(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    clock: FrozenClock,
    settings: Settings,
) -> None:
    sme_org = _org(factory, SME)
    t0 = clock.now()
    with unit_of_work(factory) as session:
        declared = credit_file.self_declare_registration(
            session, ctx=_ctx(factory, clock, SME), enterprise_id=sme_org
        )
    with unit_of_work(factory) as session:  # idempotent
        again = credit_file.self_declare_registration(
            session, ctx=_ctx(factory, clock, SME), enterprise_id=sme_org
        )
    assert {f.id for f in again} == {f.id for f in declared}

    clock.advance(timedelta(minutes=10))
    t1 = clock.now()
    attestation_id = _attest(factory, clock, settings, _order(factory, clock))
    clock.advance(timedelta(minutes=10))
    with unit_of_work(factory) as session:
        credit_file.record_self_declared(
            session,
            ctx=_ctx(factory, clock, SME),
            enterprise_id=sme_org,
            category="financials",
            key="annual_revenue",
            value={"value_minor": 20_000_000_00, "currency": "CNY"},
            observed_at=clock.now(),
        )
    clock.advance(timedelta(minutes=10))
    client.post(
        f"/api/v1/attestations/{attestation_id}/revocation",
        json={"reason": "superseded by a new rating"},
        headers=bearer(tokens[AGENCY_EMAIL]),
    )
    path = f"/api/v1/enterprises/{sme_org}/credit-file"

    now = client.get(path, headers=bearer(tokens[SME]))
    assert now.status_code == 200, now.text
    facts = _facts(now.json())
    assert ("credit_score", "agency_rating") not in facts  # revoked
    revenue = facts[("financials", "annual_revenue")]
    assert revenue["provenance"] == "self_declared"
    assert not revenue["verified"]
    assert revenue["value"]["value_minor"] == 20_000_000_00
    assert revenue["source"].startswith("Zhenjiang Lvyuan")
    assert facts[("ownership", "shareholders")]["value"][0]["share_percent"] == 60

    at_t1 = client.get(
        path, params={"as_of": (t1 + timedelta(minutes=5)).isoformat()}, headers=bearer(tokens[SME])
    )
    assert at_t1.status_code == 200, at_t1.text
    facts = _facts(at_t1.json())
    rating = facts[("credit_score", "agency_rating")]
    assert rating["provenance"] == "attested"
    assert rating["verified"]
    assert rating["value"] == "AA"
    assert rating["source"] == AGENCY.organisation
    assert rating["attestation_ref"].startswith("ATT-")
    assert rating["valid_until"] is not None
    assert facts[("financials", "annual_revenue")]["value"]["value_minor"] == 18_600_000_00  # the old one
    index = at_t1.json()["transparency"]
    assert index["categories"][1] == {
        "category": "credit_score",
        "best_provenance": "attested",
        "weight": 1.0,
        "freshness": pytest.approx(1.0, abs=0.001),
    }
    assert 0 < index["score"] <= 100
    assert "coverage" in index["formula"]

    before = client.get(
        path, params={"as_of": (t0 - timedelta(seconds=1)).isoformat()}, headers=bearer(tokens[SME])
    )
    assert before.json()["categories"] == {}
    future = client.get(
        path, params={"as_of": (clock.now() + timedelta(days=1)).isoformat()}, headers=bearer(tokens[SME])
    )
    assert future.status_code == 422

    index_now = client.get(f"/api/v1/enterprises/{sme_org}/transparency", headers=bearer(tokens[REGULATOR]))
    assert index_now.status_code == 200
    assert index_now.json()["score"] < index["score"]  # the rating was revoked


def test_self_declared_facts_are_checked(
    demo: dict[str, str], factory: sessionmaker[Session], clock: FrozenClock
) -> None:
    sme_org = _org(factory, SME)
    with unit_of_work(factory) as session, pytest.raises(YunrongError) as caught:
        credit_file.record_self_declared(
            session,
            ctx=_ctx(factory, clock, SME),
            enterprise_id=sme_org,
            category="horoscope",
            key="",
            value=Decimal("1"),
            observed_at=clock.now() + timedelta(days=1),
        )
    assert caught.value.status == 422
    assert len(caught.value.problems) == 4
    with unit_of_work(factory) as session, pytest.raises(YunrongError) as caught:
        credit_file.record_self_declared(
            session,
            ctx=_ctx(factory, clock, INSTITUTION),
            enterprise_id=sme_org,
            category="financials",
            key="revenue",
            value=1,
            observed_at=clock.now(),
        )
    assert caught.value.status in (403, 404)


def test_who_may_read_a_credit_file(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    clock: FrozenClock,
    settings: Settings,
) -> None:
    sme_org = _org(factory, SME)
    with unit_of_work(factory) as session:
        credit_file.self_declare_registration(session, ctx=_ctx(factory, clock, SME), enterprise_id=sme_org)
    paths = (f"/api/v1/enterprises/{sme_org}/credit-file", f"/api/v1/enterprises/{sme_org}/transparency")
    for path in paths:
        for email in (PERSON, INSTITUTION, BANK, AGENCY_EMAIL):  # the agency has no order yet
            response = client.get(path, headers=bearer(tokens[email]))
            assert response.status_code == 404, (email, path)
            assert "Lvyuan" not in response.text
        for email in (SME, REGULATOR, OPERATOR):
            assert client.get(path, headers=bearer(tokens[email])).status_code == 200
    assert client.get(paths[0]).status_code == 401
    not_an_enterprise = client.get(
        f"/api/v1/enterprises/{_org(factory, PERSON)}/credit-file", headers=bearer(tokens[REGULATOR])
    )
    assert not_an_enterprise.status_code == 404

    # With an order, the agency reads what the SME lets agencies see, and what it attested itself.
    _attest(factory, clock, settings, _order(factory, clock))
    as_agency = client.get(paths[0], headers=bearer(tokens[AGENCY_EMAIL]))
    assert as_agency.status_code == 200
    assert set(as_agency.json()["categories"]) == {"credit_score"}
    consent = client.post(
        "/api/v1/consents",
        json={
            "data_category": "financials",
            "recipient_class": "agencies",
            "purpose": "credit rating",
            "valid_until": "2027-12-31",
        },
        headers=bearer(tokens[SME]),
    )
    assert consent.status_code == 201, consent.text
    as_agency = client.get(paths[0], headers=bearer(tokens[AGENCY_EMAIL]))
    assert set(as_agency.json()["categories"]) == {"credit_score", "financials"}


# --- listings --------------------------------------------------------------------------------------------


def _demand(factory: sessionmaker[Session], clock: FrozenClock, status: str = "listed") -> uuid.UUID:
    with unit_of_work(factory) as session:
        demand = Demand(
            ref=human_ref("DM"),
            organisation_id=_org(factory, SME),
            product="bank_loan",
            status=status,
            title="Greenhouse expansion 温室扩建",
            amount_minor=1_000_000_00,
            min_funding_minor=None,
            currency="CNY",
            term_months=12,
            repayment_method="equal_instalment",
            max_annual_rate=Decimal("9.5"),
            purpose="Build two greenhouses",
            use_of_funds=[{"item": "greenhouses", "amount_minor": 1_000_000_00}],
            innovation={},
            collateral=[],
            guarantee_wanted=False,
            project_key="greenhouse-2027",
            product_facts={},
            attachment_ids=[],
            status_reason=None,
            created_by=SME,
            created_at=clock.now(),
            updated_at=clock.now(),
            submitted_at=clock.now(),
            listed_at=clock.now() if status in ("listed", "funding") else None,
        )
        session.add(demand)
        session.flush()
        return demand.id


def _consent(client: TestClient, token: str, category: str, recipient: str) -> None:
    response = client.post(
        "/api/v1/consents",
        json={
            "data_category": category,
            "recipient_class": recipient,
            "purpose": "listing",
            "valid_until": "2027-12-31",
        },
        headers=bearer(token),
    )
    assert response.status_code == 201, response.text


def test_listing_shows_what_consent_allows_and_records_views(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    clock: FrozenClock,
    settings: Settings,
) -> None:
    sme_org = _org(factory, SME)
    with unit_of_work(factory) as session:
        credit_file.self_declare_registration(session, ctx=_ctx(factory, clock, SME), enterprise_id=sme_org)
    _attest(factory, clock, settings, _order(factory, clock))
    _consent(client, tokens[SME], "credit_score", "investors")
    _consent(client, tokens[SME], "financials", "institutions")
    _consent(client, tokens[SME], "identity", "institutions")
    demand_id = _demand(factory, clock)
    path = f"/api/v1/listings/{demand_id}"

    person = client.get(path, headers=bearer(tokens[PERSON]))
    assert person.status_code == 200, person.text
    body = person.json()
    assert set(body["categories"]) == {"credit_score"}
    assert all(f["verified"] and f["provenance"] == "attested" for f in body["categories"]["credit_score"])
    assert body["enterprise_name"] is None
    assert {"identity", "financials", "ownership"} <= set(body["hidden_categories"])
    assert body["demand"]["amount_minor"] == 1_000_000_00
    assert body["demand"]["max_annual_rate"] == "9.5000"
    assert 0 < body["transparency"]["score"] <= 100

    institution = client.get(path, headers=bearer(tokens[INSTITUTION])).json()
    assert set(institution["categories"]) == {"financials", "identity"}
    assert institution["enterprise_name"].startswith("Zhenjiang Lvyuan")
    assert all(not f["verified"] for facts in institution["categories"].values() for f in facts)
    assert {f["provenance"] for facts in institution["categories"].values() for f in facts} == {
        "self_declared"
    }

    regulator = client.get(path, headers=bearer(tokens[REGULATOR])).json()
    assert {"credit_score", "financials", "identity", "ownership"} <= set(regulator["categories"])
    assert regulator["hidden_categories"] == []

    viewers = sorted(str(_org(factory, e)) for e in (PERSON, INSTITUTION))
    with unit_of_work(factory) as session:
        views = session.scalars(select(ListingView).where(ListingView.demand_id == demand_id)).all()
        assert sorted(str(v.viewer_org_id) for v in views) == viewers
        assert all(v.at == clock.now() and v.viewer_user_id is not None for v in views)

    listed = client.get("/api/v1/listings", headers=bearer(tokens[PERSON]))
    assert listed.status_code == 200
    assert [d["demand"]["id"] for d in listed.json()] == [str(demand_id)]
    assert listed.json()[0]["verified_facts"] == 2

    for email in (SME, AGENCY_EMAIL, BANK):
        assert client.get(path, headers=bearer(tokens[email])).status_code == 403
        assert client.get("/api/v1/listings", headers=bearer(tokens[email])).status_code == 403
    draft = _demand(factory, clock, status="draft")
    assert client.get(f"/api/v1/listings/{draft}", headers=bearer(tokens[PERSON])).status_code == 404
    assert (
        client.get(f"/api/v1/listings/{uuid.uuid4()}", headers=bearer(tokens[REGULATOR])).status_code == 404
    )
    assert _count(factory, ListingView) == 2
