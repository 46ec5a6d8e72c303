"""Parties through the API: register → review by two regulators → approved, and every other path."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import bearer, login_token
from tests.integration.parties_data import (
    agency_body,
    enterprise_body,
    fresh_resident_id,
    fresh_uscc,
    new_public_key,
    person_investor_body,
)
from yunrong.config import Settings
from yunrong.db import unit_of_work
from yunrong.identity.security import totp_now
from yunrong.identity.tables import Organisation
from yunrong.kit.clock import FrozenClock
from yunrong.messaging.tables import OutboxEvent
from yunrong.messaging.worker import deliver_due
from yunrong.supervision import policy as policy_module

R1 = "regulator1@demo.yunrong.cn"
R2 = "regulator2@demo.yunrong.cn"
OPERATOR = "operator@demo.yunrong.cn"
PASSWORD = "applicant-password-1"


def _count_orgs(factory: sessionmaker[Session]) -> int:
    with unit_of_work(factory) as session:
        return int(session.scalar(select(func.count()).select_from(Organisation)) or 0)


def _decide(client: TestClient, token: str, qid: str, decision: str, reason: str = "checked") -> Any:
    return client.post(
        f"/api/v1/qualifications/{qid}/decisions",
        json={"decision": decision, "reason": reason},
        headers=bearer(token),
    )


def test_enterprise_register_two_approvers_approved(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
) -> None:
    registered = client.post("/api/v1/enterprises", json=enterprise_body("boss@sme-one.cn"))
    assert registered.status_code == 201, registered.text
    qid = registered.json()["qualification_id"]
    assert registered.json()["status"] == "pending"
    applicant = login_token(client, "boss@sme-one.cn", PASSWORD)

    mine = client.get("/api/v1/me/qualification", headers=bearer(applicant)).json()
    assert mine["status"] == "pending"
    assert mine["profile"]["size_class"] == "micro"  # industry: 15 employees < 20
    assert "15" in mine["profile"]["size_rule_en"]
    assert next(p["identifier"][-4:] for p in mine["people"]) != "****"
    assert all(set(p["identifier"][:-4]) == {"*"} for p in mine["people"] if p["identifier"])

    queue = client.get("/api/v1/qualifications", headers=bearer(tokens[R1])).json()
    assert qid in [q["id"] for q in queue]
    case = client.get(f"/api/v1/qualifications/{qid}", headers=bearer(tokens[R1])).json()
    assert case["profile"]["credit_code"]
    assert case["users"][0]["email"] == "boss@sme-one.cn"

    first = _decide(client, tokens[R1], qid, "approve", "licence and statements consistent")
    assert first.json()["status"] == "awaiting_second_approval"
    again = _decide(client, tokens[R1], qid, "approve", "me again")
    assert again.status_code == 409
    assert again.json()["type"] == "/problems/maker-checker"
    second = _decide(client, tokens[R2], qid, "approve", "agreed")
    assert second.json()["status"] == "approved"

    history = client.get(f"/api/v1/qualifications/{qid}", headers=bearer(applicant)).json()["events"]
    assert [e["to_status"] for e in history] == ["pending", "awaiting_second_approval", "approved"]
    assert history[-1]["reason"] == "agreed"
    assert (
        client.post(
            f"/api/v1/qualifications/{qid}/decisions",
            json={"decision": "approve", "reason": "x"},
            headers=bearer(applicant),
        ).status_code
        == 403
    )

    # The applicant is told in the app and by e-mail (through the outbox, after commit).
    notes = client.get("/api/v1/notifications", headers=bearer(applicant)).json()
    assert [n["kind"] for n in notes][:1] == ["qualification.approved"]
    assert "agreed" in notes[0]["body_en"]
    assert "agreed" in notes[0]["body_zh"]
    with unit_of_work(factory) as session:
        to_applicant = session.scalars(select(OutboxEvent).where(OutboxEvent.topic == "email.send")).all()
        assert sum(1 for e in to_applicant if e.payload["to"] == "boss@sme-one.cn") == 3
    while deliver_due(factory, settings=settings, clock=clock, worker_id="t"):
        pass
    mails = [p.read_text(errors="replace") for p in settings.mail_dir.glob("*.eml")]
    assert any("boss@sme-one.cn" in m for m in mails)


def test_reject_needs_a_reason_and_is_final(client: TestClient, tokens: dict[str, str]) -> None:
    qid = client.post("/api/v1/enterprises", json=enterprise_body("a@reject.cn")).json()["qualification_id"]
    empty = _decide(client, tokens[R1], qid, "reject", "   ")
    assert empty.status_code == 422
    rejected = _decide(client, tokens[R1], qid, "reject", "business licence does not match the credit code")
    assert rejected.json()["status"] == "rejected"
    assert rejected.json()["last_reason"] == "business licence does not match the credit code"
    assert _decide(client, tokens[R2], qid, "approve").status_code == 409


def test_request_information_then_answer_with_a_document(client: TestClient, tokens: dict[str, str]) -> None:
    qid = client.post("/api/v1/enterprises", json=enterprise_body("a@info.cn")).json()["qualification_id"]
    applicant = login_token(client, "a@info.cn", PASSWORD)
    assert (
        _decide(client, tokens[R1], qid, "request_info", "upload the 2025 statements").json()["status"]
        == "info_requested"
    )
    uploaded = client.post(
        "/api/v1/documents",
        data={"category": "financial_statement"},
        files={"file": ("fs2025.pdf", b"%PDF-1.7\n2025 statements", "application/pdf")},
        headers=bearer(applicant),
    )
    assert uploaded.status_code == 201
    answered = client.post(
        f"/api/v1/qualifications/{qid}/responses",
        json={"message": "statements attached", "document_ids": [uploaded.json()["id"]]},
        headers=bearer(applicant),
    )
    assert answered.status_code == 200, answered.text
    assert answered.json()["status"] == "pending"
    case = client.get(f"/api/v1/qualifications/{qid}", headers=bearer(tokens[R2])).json()
    assert case["events"][-1]["detail"]["document_ids"] == [uploaded.json()["id"]]
    assert case["documents"][0]["sha256"] == uploaded.json()["sha256"]
    # A second answer when nothing was asked is refused.
    again = client.post(
        f"/api/v1/qualifications/{qid}/responses", json={"message": "more"}, headers=bearer(applicant)
    )
    assert again.status_code == 409


def test_maker_checker_can_be_switched_off_by_the_profile(
    client: TestClient, tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    single = dataclasses.replace(policy_module.CN_2016, two_person_admittance=False)
    monkeypatch.setitem(policy_module.PROFILES, "cn-2016", single)
    qid = client.post("/api/v1/enterprises", json=enterprise_body("a@single.cn")).json()["qualification_id"]
    assert _decide(client, tokens[R1], qid, "approve").json()["status"] == "approved"


def test_suspended_or_unapproved_parties_are_refused_business(
    client: TestClient, tokens: dict[str, str], clock: FrozenClock
) -> None:
    registered = client.post("/api/v1/agencies", json=agency_body("boss@agency-two.cn", new_public_key()))
    assert registered.status_code == 201, registered.text
    qid, org_id = registered.json()["qualification_id"], registered.json()["organisation_id"]
    secret = registered.json()["totp_secret"]
    assert registered.json()["totp_uri"].startswith("otpauth://totp/")
    agency = login_token(client, "boss@agency-two.cn", PASSWORD, totp=totp_now(secret, clock.now()))
    refused = client.post("/api/v1/api-keys", json={"name": "robot"}, headers=bearer(agency))
    assert refused.status_code == 403
    assert refused.json()["type"] == "/problems/party-not-admitted"
    _decide(client, tokens[R1], qid, "approve")
    assert client.post("/api/v1/api-keys", json={"name": "robot"}, headers=bearer(agency)).status_code == 403
    _decide(client, tokens[R2], qid, "approve")
    assert client.post("/api/v1/api-keys", json={"name": "robot"}, headers=bearer(agency)).status_code == 201

    no_reason = client.post(
        f"/api/v1/organisations/{org_id}/suspension", json={"reason": ""}, headers=bearer(tokens[R1])
    )
    assert no_reason.status_code == 422
    suspended = client.post(
        f"/api/v1/organisations/{org_id}/suspension",
        json={"reason": "licence under investigation"},
        headers=bearer(tokens[R1]),
    )
    assert suspended.json()["status"] == "suspended"
    blocked = client.post("/api/v1/api-keys", json={"name": "robot 2"}, headers=bearer(agency))
    assert blocked.status_code == 403
    assert blocked.json()["type"] == "/problems/party-suspended"
    assert "licence under investigation" in blocked.json()["detail"]
    reinstated = client.post(
        f"/api/v1/organisations/{org_id}/reinstatement",
        json={"reason": "cleared"},
        headers=bearer(tokens[R2]),
    )
    assert reinstated.json()["status"] == "approved"
    assert (
        client.post("/api/v1/api-keys", json={"name": "robot 3"}, headers=bearer(agency)).status_code == 201
    )


def test_bad_enterprise_input_lists_every_problem_and_saves_nothing(
    client: TestClient, demo: dict[str, str], factory: sessionmaker[Session]
) -> None:
    before = _count_orgs(factory)
    good = fresh_uscc()
    broken = good[:-1] + ("0" if good[-1] != "0" else "1")
    body = enterprise_body(
        "sme@demo.yunrong.cn",  # taken
        credit_code=broken,
        industry_code="A13",
        region_code="999999",
        founded_on="2999-01-01",
    )
    body["applicant"]["password"] = "short"
    body["people"][1]["identifier"] = "110105194912310021"  # wrong check digit
    response = client.post("/api/v1/enterprises", json=body)
    assert response.status_code == 422
    fields = {tuple(e["loc"]) for e in response.json()["errors"]}
    assert {
        ("enterprise", "credit_code"),
        ("enterprise", "industry_code"),
        ("enterprise", "region_code"),
        ("enterprise", "founded_on"),
        ("applicant", "email"),
        ("applicant", "password"),
        ("people", 1, "identifier"),
    } <= fields
    assert _count_orgs(factory) == before


def test_negative_numbers_and_malformed_input_are_422(client: TestClient, demo: dict[str, str]) -> None:
    body = enterprise_body("neg@x.cn", employees=-1, annual_revenue="-5.00", total_assets="1.001")
    response = client.post("/api/v1/enterprises", json=body)
    assert response.status_code == 422
    locs = {tuple(e["loc"]) for e in response.json()["errors"]}
    assert ("body", "enterprise", "employees") in locs
    assert ("body", "enterprise", "annual_revenue") in locs
    assert ("body", "enterprise", "total_assets") in locs


def test_duplicate_credit_code_is_a_field_error(client: TestClient, demo: dict[str, str]) -> None:
    body = enterprise_body("first@dup.cn")
    assert client.post("/api/v1/enterprises", json=body).status_code == 201
    again = enterprise_body("second@dup.cn", credit_code=body["enterprise"]["credit_code"])
    response = client.post("/api/v1/enterprises", json=again)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["enterprise", "credit_code"]
    assert "already registered" in response.json()["errors"][0]["msg"]


def test_individual_investor_with_questionnaire(client: TestClient, tokens: dict[str, str]) -> None:
    response = client.post("/api/v1/investors", json=person_investor_body("li@investor.cn"))
    assert response.status_code == 201, response.text
    org_id = response.json()["organisation_id"]
    me = login_token(client, "li@investor.cn", PASSWORD)
    profile = client.get(f"/api/v1/investors/{org_id}", headers=bearer(me)).json()
    assert profile["risk_level"] == "C5"
    assert profile["risk_score"] == 100
    assert profile["resident_id"].startswith("**************")
    questions = client.get("/api/v1/risk-questionnaire").json()
    cautious = {q["key"]: q["options"][0]["key"] for q in questions}
    reassessed = client.post(
        f"/api/v1/investors/{org_id}/risk-assessment", json={"answers": cautious}, headers=bearer(me)
    )
    assert reassessed.status_code == 200
    assert reassessed.json()["level"] in {"C1", "C2"}
    incomplete = client.post(
        f"/api/v1/investors/{org_id}/risk-assessment", json={"answers": {}}, headers=bearer(me)
    )
    assert incomplete.status_code == 422
    assert len(incomplete.json()["errors"]) == len(questions)


def test_investor_identity_rules(client: TestClient, demo: dict[str, str]) -> None:
    minor_id = fresh_resident_id()
    minor_id = minor_id[:6] + "2020" + minor_id[10:17]
    from yunrong.parties import codes

    minor = person_investor_body("kid@x.cn", resident_id=codes.make_resident_id(minor_id))
    response = client.post("/api/v1/investors", json=minor)
    assert response.status_code == 422
    assert "adult" in response.json()["errors"][0]["msg"]
    bad = person_investor_body("bad@x.cn", resident_id="11010519491231002Y")
    assert client.post("/api/v1/investors", json=bad).status_code == 422
    twice = person_investor_body("one@x.cn")
    assert client.post("/api/v1/investors", json=twice).status_code == 201
    twice_again = person_investor_body("two@x.cn", resident_id=twice["investor"]["resident_id"])
    dup = client.post("/api/v1/investors", json=twice_again)
    assert dup.status_code == 422
    assert "already registered" in dup.json()["errors"][0]["msg"]


def test_institutional_investor(client: TestClient, tokens: dict[str, str]) -> None:
    body = person_investor_body(
        "fund@x.cn", kind="institution", resident_id=None, institution_type="fund", credit_code=fresh_uscc()
    )
    response = client.post("/api/v1/investors", json=body)
    assert response.status_code == 201, response.text
    qid = response.json()["qualification_id"]
    _decide(client, tokens[R1], qid, "approve")
    assert _decide(client, tokens[R2], qid, "approve").json()["status"] == "approved"
    missing = person_investor_body("fund2@x.cn", kind="institution", resident_id=None)
    problems = {tuple(e["loc"]) for e in client.post("/api/v1/investors", json=missing).json()["errors"]}
    assert {("investor", "institution_type"), ("investor", "credit_code")} <= problems


def test_agency_input_rules(client: TestClient, demo: dict[str, str]) -> None:
    bad_key = agency_body("x@agency.cn", "bm90LWEta2V5")
    bad_key["agency"]["services"].append(
        {"agency_type": "insurance", "service": "cover", "fee": "1.00", "sla_hours": 24}
    )
    response = client.post("/api/v1/agencies", json=bad_key)
    assert response.status_code == 422
    locs = {tuple(e["loc"]) for e in response.json()["errors"]}
    assert ("agency", "public_key") in locs
    assert ("agency", "services", 2, "agency_type") in locs


def test_operator_created_custodian_bank_waits_for_review(client: TestClient, tokens: dict[str, str]) -> None:
    bank = client.post(
        "/api/v1/organisations",
        json={"type": "custodian_bank", "name": "Test Custody"},
        headers=bearer(tokens[OPERATOR]),
    )
    assert bank.status_code == 201
    queue = client.get("/api/v1/qualifications", headers=bearer(tokens[R1])).json()
    assert bank.json()["id"] in [q["organisation_id"] for q in queue]
    regulator_org = client.post(
        "/api/v1/organisations",
        json={"type": "regulator", "name": "Another Bureau"},
        headers=bearer(tokens[OPERATOR]),
    )
    queue = client.get("/api/v1/qualifications", headers=bearer(tokens[R1])).json()
    assert regulator_org.json()["id"] not in [q["organisation_id"] for q in queue]


def test_uploads_are_checked_by_content_and_size(
    client: TestClient, tokens: dict[str, str], settings: Settings
) -> None:
    sme = bearer(tokens["sme@demo.yunrong.cn"])
    text = client.post(
        "/api/v1/documents",
        data={"category": "supporting"},
        files={"file": ("x.pdf", b"just text pretending", "application/pdf")},
        headers=sme,
    )
    assert text.status_code == 422
    assert text.json()["errors"][0]["loc"] == ["file"]
    big = b"%PDF-" + b"0" * (10 * 1024 * 1024)
    too_big = client.post(
        "/api/v1/documents",
        data={"category": "supporting"},
        files={"file": ("big.pdf", big, "application/pdf")},
        headers=sme,
    )
    assert too_big.status_code == 422
    wrong_category = client.post(
        "/api/v1/documents",
        data={"category": "selfie"},
        files={"file": ("x.png", b"\x89PNG\r\n\x1a\nxx", "image/png")},
        headers=sme,
    )
    assert wrong_category.status_code == 422
    png = b"\x89PNG\r\n\x1a\n" + b"pixels"
    ok = client.post(
        "/api/v1/documents",
        data={"category": "business_licence"},
        files={"file": ("../../etc/passwd", png, "text/plain")},
        headers=sme,
    )
    assert ok.status_code == 201, ok.text
    assert ok.json()["content_type"] == "image/png"
    stored = list(settings.upload_dir.rglob("*.png"))
    assert len(stored) == 1
    assert ".." not in str(stored[0].relative_to(settings.upload_dir))
    content = client.get(f"/api/v1/documents/{ok.json()['id']}/content", headers=sme)
    assert content.content == png
    assert content.headers["x-content-sha256"] == ok.json()["sha256"]


def test_consents_are_stored_shown_and_revoked(client: TestClient, tokens: dict[str, str]) -> None:
    sme = bearer(tokens["sme@demo.yunrong.cn"])
    body = {
        "data_category": "financials",
        "recipient_class": "investors",
        "purpose": "listing",
        "valid_until": "2027-12-31",
    }
    granted = client.post("/api/v1/consents", json=body, headers=sme)
    assert granted.status_code == 201
    assert granted.json()["active"] is True
    past = client.post("/api/v1/consents", json={**body, "valid_until": "2020-01-01"}, headers=sme)
    assert past.status_code == 422
    revoked = client.delete(f"/api/v1/consents/{granted.json()['id']}", headers=sme)
    assert revoked.json()["active"] is False
    assert revoked.json()["revoked_at"]
    listed = client.get("/api/v1/consents", headers=sme).json()
    assert [c["active"] for c in listed] == [False]
    org_id = client.get("/api/v1/me", headers=sme).json()["organisation"]["id"]
    as_regulator = client.get(
        "/api/v1/consents", params={"organisation_id": org_id}, headers=bearer(tokens[R1])
    )
    assert len(as_regulator.json()) == 1
    investor = bearer(tokens["investor@demo.yunrong.cn"])
    assert client.post("/api/v1/consents", json=body, headers=investor).status_code == 403
    assert (
        client.get("/api/v1/consents", params={"organisation_id": org_id}, headers=investor).status_code
        == 404
    )


def test_policy_profile_and_lpr_table(client: TestClient, tokens: dict[str, str]) -> None:
    policy = client.get("/api/v1/policy", headers=bearer(tokens["sme@demo.yunrong.cn"])).json()
    assert policy["key"] == "cn-2016"
    assert policy["legal_person_outstanding_cap"] == 100_000_000
    assert policy["natural_person_outstanding_cap"] == 20_000_000
    assert (
        policy["current_one_year_lpr_percent"] == "3.0000"
        or float(policy["current_one_year_lpr_percent"]) == 3.0
    )
    assert float(policy["current_interest_cap_percent"]) == 12.0
    new = {"effective_on": "2026-11-20", "one_year_percent": "2.9000", "source": "test fixing"}
    assert client.post("/api/v1/lpr-rates", json=new, headers=bearer(tokens[R1])).status_code == 403
    assert client.post("/api/v1/lpr-rates", json=new, headers=bearer(tokens[OPERATOR])).status_code == 201
    policy = client.get("/api/v1/policy", headers=bearer(tokens[R1])).json()
    assert float(policy["current_interest_cap_percent"]) == pytest.approx(11.6)


def test_eu_profile_is_data(settings: Settings) -> None:
    eu = settings.model_copy(update={"policy_profile": "eu-ecsp"}).policy
    assert eu.reflection_days == 4
    assert eu.knowledge_test_required
    assert eu.owner_twelve_month_cap == 5_000_000_00
    with pytest.raises(ValueError, match="policy_profile"):
        Settings(policy_profile="nowhere")
