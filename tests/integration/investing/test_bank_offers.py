"""Step 5 for bank loans: an admitted bank offers, the enterprise accepts, the bank's money moves in
escrow, the loan is booked with the bank's one note, both accept the agreement by hash and the
custodian pays out; every refusal names its rule."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import bearer, login_token
from tests.integration.investing.conftest import (
    INVESTOR,
    REGULATOR,
    SME,
    Drain,
    available,
    org_of,
)
from tests.integration.verification.demand_data import demand_body
from yunrong.app import create_app
from yunrong.config import Settings
from yunrong.custody import accounts
from yunrong.custody.service import platform_custodian
from yunrong.db import unit_of_work
from yunrong.demands.tables import Demand
from yunrong.identity import service as identity
from yunrong.identity.model import Action, Actor, Context, OrgType, Role, is_allowed
from yunrong.identity.tables import Organisation
from yunrong.investing import offer_jobs, offer_routes
from yunrong.investing.tables import AgreementAcceptance, BankOffer
from yunrong.kit.clock import FrozenClock
from yunrong.ledger import service as ledger
from yunrong.ledger.model import transfer
from yunrong.ledger.tables import Hold
from yunrong.ledger.verify import first_violation
from yunrong.parties import service as parties

BANK = "bank@demo.yunrong.cn"
AGENCY = "agency@demo.yunrong.cn"
STAFF_PASSWORD = "offers-test-password-2026"


@pytest.fixture
def app(settings: Settings, clock: FrozenClock, engine: Engine) -> FastAPI:
    """The application, with the offers router mounted if app.py does not mount it yet."""
    application = create_app(settings, clock=clock, engine=engine)
    mounted = {getattr(r, "operation_id", None) for r in application.router.routes}
    if "create_offer" not in mounted:
        application.include_router(offer_routes.router)
    return application


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


# --- helpers ---------------------------------------------------------------------------------------------


def _list_bank_demand(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    clock: FrozenClock,
    *,
    addressed_to: list[str] | None = None,
    **overrides: Any,
) -> uuid.UUID:
    """A bank-loan demand drafted through the API and then listed directly (verification and
    listing are exercised by their own tests). Unlike conftest.list_demand no funding round opens:
    bank loans are funded by banks' offers. ``addressed_to`` writes product_facts.target_bank_ids
    directly, because the demands API accepts only investor organisations there (see the report)."""
    body = demand_body(product="bank_loan", project_key=f"bank-{uuid.uuid4().hex[:8]}", **overrides)
    draft = client.post("/api/v1/demands", json=body, headers=bearer(tokens[SME]))
    assert draft.status_code == 201, draft.text
    demand_id = uuid.UUID(draft.json()["id"])
    with unit_of_work(factory) as session:
        demand = session.get(Demand, demand_id)
        assert demand is not None
        demand.status = "listed"
        demand.listed_at = clock.now()
        if addressed_to is not None:
            demand.product_facts = {**demand.product_facts, "target_bank_ids": addressed_to}
    return demand_id


def _fund_bank(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    clock: FrozenClock,
    drain: Drain,
    amount: str,
    minor: int,
) -> None:
    """The bank pays its lending money into escrow.

    Through the API (own account added, verified by the demo agency, deposit confirmed by the
    custodian) once Role.BANK_OFFICER may MOVE_OWN_MONEY. Until that permission lands, and ONLY
    until then, the confirmed deposit is booked directly as the custodian's callback would book it
    (escrow cash debited, the bank's sub-account credited): a test fixture, not a product path."""
    if is_allowed(frozenset({Role.BANK_OFFICER}), Action.MOVE_OWN_MONEY):
        org = org_of(client, tokens[BANK])
        created = client.post(
            f"/api/v1/organisations/{org}/bank-accounts",
            json={
                "bank_name": "Bank of Jiangsu",
                "account_name": "Lending",
                "account_number": "6222020200000001",
            },
            headers=bearer(tokens[BANK]),
        )
        assert created.status_code == 201, created.text
        verified = client.post(
            f"/api/v1/bank-accounts/{created.json()['id']}/verification",
            json={"evidence": "bank confirmation letter"},
            headers=bearer(tokens[AGENCY]),
        )
        assert verified.status_code == 200, verified.text
        deposit = client.post(
            "/api/v1/deposits",
            json={"amount": amount, "bank_account_id": created.json()["id"]},
            headers={**bearer(tokens[BANK]), "Idempotency-Key": uuid.uuid4().hex},
        )
        assert deposit.status_code == 202, deposit.text
        drain()
    else:  # TEST-ONLY FALLBACK: a confirmed deposit booked in the ledger (see the docstring).
        ctx = Context(actor=Actor.system("test-deposit"), clock=clock, request_id="test")
        with unit_of_work(factory) as session:
            bank = session.get(Organisation, uuid.UUID(org_of(client, tokens[BANK])))
            assert bank is not None
            escrow = accounts.escrow_cash(session, ctx, platform_custodian(session), "CNY")
            mine = accounts.investor_available(session, ctx, bank, "CNY")
            ledger.post_entry(
                session,
                ctx=ctx,
                legs=transfer(escrow.id, mine.id, minor, "CNY"),
                kind="deposit",
                description="test: the bank's confirmed deposit",
            )
    assert available(client, tokens[BANK]) == minor


def _party(
    client: TestClient,
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    org_type: OrgType,
    role: Role,
    *,
    admitted: bool,
) -> tuple[str, str]:
    """Another organisation with one user: (token, organisation id). Admitted means its
    qualification is approved (the review itself is tested in tests/integration/parties)."""
    clock.advance(timedelta(minutes=1))  # after the demo custodian, which stays the platform's
    ctx = Context(actor=Actor.system("test"), clock=clock, request_id="test")
    tag = uuid.uuid4().hex[:6]
    email = f"{role.value}-{tag}@offers.example.cn"
    with unit_of_work(factory) as session:
        org = identity.create_organisation(
            session, ctx=ctx, org_type=org_type, name=f"Other {role.value} {tag}"
        )
        identity.create_user(
            session,
            ctx=ctx,
            settings=settings,
            organisation_id=org.id,
            email=email,
            name="Other",
            password=STAFF_PASSWORD,
            roles=frozenset({role}),
            enrol_totp=False,
        )
        qualification = parties.open_qualification(session, ctx=ctx, org=org)
        if admitted:
            qualification.status = "approved"
            qualification.updated_at = clock.now()
        org_id = str(org.id)
    return login_token(client, email, STAFF_PASSWORD), org_id


def _valid_until(clock: FrozenClock, minutes: int = 7 * 24 * 60) -> str:
    return (clock.now() + timedelta(minutes=minutes)).isoformat()


def _offer_body(demand_id: uuid.UUID, clock: FrozenClock, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "demand_id": str(demand_id),
        "amount": "300000.00",
        "annual_rate_percent": "6.5000",
        "term_months": 12,
        "repayment_method": "equal_instalment",
        "conditions": "A first-ranking pledge over the refrigeration units.",
        "valid_until": _valid_until(clock),
    }
    body.update(overrides)
    return body


def _offer(client: TestClient, token: str, body: dict[str, Any]) -> Any:
    return client.post("/api/v1/offers", json=body, headers=bearer(token))


def _accept(client: TestClient, token: str, offer_id: str, key: str | None = None) -> Any:
    return client.post(
        f"/api/v1/offers/{offer_id}/accept",
        headers={**bearer(token), "Idempotency-Key": key or uuid.uuid4().hex},
    )


def _rule(response: Any) -> str:
    return str(response.json()["errors"][0]["type"])


def _classes(client: TestClient, token: str) -> dict[str, int]:
    flows = client.get("/api/v1/fund-flows", headers=bearer(token)).json()
    return {c["purpose"]: int(c["balance_minor"]) for c in flows["classes"]}


# --- the whole path ---------------------------------------------------------------------------------------


def test_a_bank_offer_is_accepted_contracted_and_paid_out_through_the_custodian(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    verified: None,
    drain: Drain,
) -> None:
    _fund_bank(client, tokens, factory, clock, drain, "400000.00", 40_000_000)
    other_token, _ = _party(
        client, factory, settings, clock, OrgType.CUSTODIAN_BANK, Role.BANK_OFFICER, admitted=True
    )
    demand_id = _list_bank_demand(client, tokens, factory, clock)

    seen = client.get("/api/v1/bank-loan-demands", headers=bearer(tokens[BANK]))
    assert seen.status_code == 200, seen.text
    listed = {d["id"]: d for d in seen.json()}
    assert str(demand_id) in listed
    assert listed[str(demand_id)]["your_open_offer_id"] is None
    assert listed[str(demand_id)]["addressed_to_you"] is False

    made = _offer(client, tokens[BANK], _offer_body(demand_id, clock))
    assert made.status_code == 201, made.text
    offer = made.json()
    fee = offer["fee_minor"]
    assert fee == (30_000_000 * settings.platform_fee_bp + 5_000) // 10_000
    assert offer["status"] == "open"
    assert offer["annual_rate"] == "0.065000"
    assert offer["all_in_rate_percent"] == "7.5000"  # 6.5 % + 0.5 % fee × 12/12 × 2 (amortising)
    rival = _offer(client, other_token, _offer_body(demand_id, clock, annual_rate_percent="7.0000"))
    assert rival.status_code == 201, rival.text

    # The enterprise sees both offers on its demand; each bank only its own.
    mine = client.get(f"/api/v1/offers?demand_id={demand_id}", headers=bearer(tokens[SME])).json()
    assert sorted(o["id"] for o in mine) == sorted([offer["id"], rival.json()["id"]])
    assert [o["id"] for o in client.get("/api/v1/offers", headers=bearer(tokens[BANK])).json()] == [
        offer["id"]
    ]
    assert client.get(f"/api/v1/offers/{offer['id']}", headers=bearer(other_token)).status_code == 404
    assert client.get(f"/api/v1/offers/{offer['id']}", headers=bearer(tokens[SME])).status_code == 200
    assert client.get(f"/api/v1/offers/{offer['id']}", headers=bearer(tokens[INVESTOR])).status_code == 403

    key = uuid.uuid4().hex
    accepted = _accept(client, tokens[SME], offer["id"], key)
    assert accepted.status_code == 200, accepted.text
    assert accepted.headers["Idempotent-Replayed"] == "false"
    body = accepted.json()
    assert body["status"] == "accepted"
    assert body["loan_id"]
    replay = _accept(client, tokens[SME], offer["id"], key)
    assert replay.status_code == 200
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == body
    assert client.get(f"/api/v1/offers/{rival.json()['id']}", headers=bearer(other_token)).json()[
        "status"
    ] == ("superseded")
    assert (
        client.get(f"/api/v1/demands/{demand_id}", headers=bearer(tokens[SME])).json()["status"] == "funded"
    )
    statuses = [
        e["to_status"]
        for e in client.get(f"/api/v1/demands/{demand_id}", headers=bearer(tokens[SME])).json()["events"]
    ]
    assert statuses[-2:] == ["funding", "funded"]

    loan_id = body["loan_id"]
    loan = client.get(f"/api/v1/loans/{loan_id}", headers=bearer(tokens[BANK])).json()
    assert loan["lender_kind"] == "bank"
    assert loan["status"] == "contracting"
    assert loan["principal_minor"] == 30_000_000
    assert loan["fee_minor"] == fee
    assert loan["annual_rate"] == "0.065000"
    assert loan["term_months"] == 12
    bank_org = org_of(client, tokens[BANK])
    assert [(n["investor_org_id"], n["principal_minor"]) for n in loan["notes"]] == [(bank_org, 30_000_000)]
    with factory() as session:
        holds = session.scalars(select(Hold).where(Hold.description.like("bank offer %"))).all()
        assert [h.status for h in holds] == ["posted"]  # posted exactly once, on acceptance
    classes = _classes(client, tokens[REGULATOR])
    assert classes["escrow_cash"] == 40_000_000
    assert classes["investor_available"] == 10_000_000  # the bank's money not lent
    assert classes["enterprise_payout"] == 30_000_000
    assert available(client, tokens[BANK]) == 10_000_000

    pdf = client.get(f"/api/v1/loans/{loan_id}/agreement", headers=bearer(tokens[BANK]))
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF")
    sha = hashlib.sha256(pdf.content).hexdigest()
    assert sha == loan["agreement_sha256"]
    by_sme = client.post(
        f"/api/v1/loans/{loan_id}/agreement/accept", json={"sha256": sha}, headers=bearer(tokens[SME])
    )
    assert by_sme.status_code == 200, by_sme.text
    assert by_sme.json()["status"] == "contracting"  # the bank has not accepted yet
    not_party = client.post(
        f"/api/v1/loans/{loan_id}/agreement/accept", json={"sha256": sha}, headers=bearer(other_token)
    )
    assert not_party.status_code == 404
    by_bank = client.post(
        f"/api/v1/loans/{loan_id}/agreement/accept", json={"sha256": sha}, headers=bearer(tokens[BANK])
    )
    assert by_bank.status_code == 200, by_bank.text
    assert by_bank.json()["status"] == "disbursing"
    with factory() as session:
        roles = sorted(a.party_role for a in session.scalars(select(AgreementAcceptance)))
    assert roles == ["bank", "borrower"]

    drain()  # the custodian confirms the payout
    loan = client.get(f"/api/v1/loans/{loan_id}", headers=bearer(tokens[SME])).json()
    assert loan["status"] == "active"
    assert loan["disbursed_at"]
    classes = _classes(client, tokens[REGULATOR])
    assert classes["escrow_cash"] == 40_000_000 - (30_000_000 - fee)
    assert classes["enterprise_payout"] == 0
    assert classes["platform_fee_income"] == fee
    assert classes["investor_available"] == 10_000_000
    assert available(client, tokens[BANK]) == 10_000_000
    verification = client.get("/api/v1/ledger/verification", headers=bearer(tokens[REGULATOR])).json()
    assert verification["ok"] is True, verification
    with factory() as session:
        assert first_violation(session) is None


# --- refusals ---------------------------------------------------------------------------------------------


def test_offers_that_break_a_rule_are_refused_naming_it(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    verified: None,
) -> None:
    demand_id = _list_bank_demand(client, tokens, factory, clock, min_funding="200000.00")
    cases = [
        ({"annual_rate_percent": "9.6000"}, "above-enterprise-maximum"),
        ({"amount": "300000.01"}, "above-demand-amount"),
        ({"amount": "100000.00"}, "below-minimum-funding"),
        ({"valid_until": (clock.now() - timedelta(minutes=1)).isoformat()}, "valid-until-past"),
        ({"term_months": 61}, "term-out-of-range"),
        ({"repayment_method": "lease_rent"}, "repayment-method"),
        ({"currency": "EUR"}, "currency"),
    ]
    for change, rule in cases:
        refused = _offer(client, tokens[BANK], _offer_body(demand_id, clock, **change))
        assert refused.status_code == 422, (rule, refused.text)
        assert _rule(refused) == rule, refused.text
        assert rule in refused.json()["detail"]

    # The legal cap (4 × the one-year LPR of 3.00 % = 12 %) binds the all-in rate, fee included,
    # even when the enterprise would pay up to 12 %.
    capped = _list_bank_demand(client, tokens, factory, clock, max_annual_rate="12.0000")
    over = _offer(client, tokens[BANK], _offer_body(capped, clock, annual_rate_percent="11.5000"))
    assert over.status_code == 422, over.text
    assert _rule(over) == "above-rate-cap", over.text
    assert "12%" in over.json()["errors"][0]["msg"]
    at_cap = _offer(client, tokens[BANK], _offer_body(capped, clock, annual_rate_percent="11.0000"))
    assert at_cap.status_code == 201, at_cap.text  # 11 % + 1 % fee = 12 %: allowed
    twice = _offer(client, tokens[BANK], _offer_body(capped, clock, annual_rate_percent="10.0000"))
    assert twice.status_code == 409, twice.text
    assert twice.json()["type"].endswith("offer-exists"), twice.text

    # Who may offer: an investor may not; a bank not admitted may not; a bank the demand is not
    # addressed to does not see it.
    assert _offer(client, tokens[INVESTOR], _offer_body(demand_id, clock)).status_code == 403
    pending_token, _ = _party(
        client, factory, settings, clock, OrgType.CUSTODIAN_BANK, Role.BANK_OFFICER, admitted=False
    )
    not_admitted = _offer(client, pending_token, _offer_body(demand_id, clock))
    assert not_admitted.status_code == 403
    assert "admittance" in not_admitted.json()["detail"]
    other_token, other_id = _party(
        client, factory, settings, clock, OrgType.CUSTODIAN_BANK, Role.BANK_OFFICER, admitted=True
    )
    addressed = _list_bank_demand(client, tokens, factory, clock, addressed_to=[other_id])
    assert _offer(client, tokens[BANK], _offer_body(addressed, clock)).status_code == 404
    banks_list = client.get("/api/v1/bank-loan-demands", headers=bearer(tokens[BANK])).json()
    assert str(addressed) not in {d["id"] for d in banks_list}
    others_list = client.get("/api/v1/bank-loan-demands", headers=bearer(other_token)).json()
    assert {d["id"]: d["addressed_to_you"] for d in others_list}[str(addressed)] is True
    assert _offer(client, other_token, _offer_body(addressed, clock)).status_code == 201
    # A P2P listing takes no bank offers.
    p2p = _list_bank_demand(client, tokens, factory, clock)
    with unit_of_work(factory) as session:
        row = session.get(Demand, p2p)
        assert row is not None
        row.product = "p2p_loan"
    assert _offer(client, tokens[BANK], _offer_body(p2p, clock)).status_code == 404
    with factory() as session:
        assert len(session.scalars(select(BankOffer)).all()) == 2  # nothing refused was saved


def test_accepting_refuses_what_is_not_open_not_funded_or_not_yours(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    verified: None,
    drain: Drain,
) -> None:
    demand_id = _list_bank_demand(client, tokens, factory, clock)
    first = _offer(client, tokens[BANK], _offer_body(demand_id, clock, valid_until=_valid_until(clock, 30)))
    assert first.status_code == 201, first.text
    offer_id = first.json()["id"]

    # The bank has no money in escrow yet.
    short = _accept(client, tokens[SME], offer_id)
    assert short.status_code == 409, short.text
    assert short.json()["type"].endswith("bank-funds-insufficient"), short.text
    # Another enterprise cannot see or accept it; staff cannot decide; nor can the bank itself.
    other_sme, _ = _party(
        client, factory, settings, clock, OrgType.ENTERPRISE, Role.ENTERPRISE_ADMIN, admitted=True
    )
    assert _accept(client, other_sme, offer_id).status_code == 404
    assert client.get(f"/api/v1/offers/{offer_id}", headers=bearer(other_sme)).status_code == 404
    assert (
        client.post(f"/api/v1/offers/{offer_id}/decline", json={}, headers=bearer(other_sme)).status_code
        == 404
    )
    assert _accept(client, tokens[BANK], offer_id).status_code == 403
    outsider = client.post(f"/api/v1/offers/{offer_id}/accept", headers=bearer(other_sme))
    assert outsider.status_code == 404  # ownership is checked before the Idempotency-Key is asked for
    no_key = client.post(f"/api/v1/offers/{offer_id}/accept", headers=bearer(tokens[SME]))
    assert no_key.status_code == 422  # money moves only with an Idempotency-Key

    # Past its time it cannot be accepted, and the job marks it expired (both sides told).
    clock.advance(timedelta(minutes=31))  # (within the tokens' hour)
    expired = _accept(client, tokens[SME], offer_id)
    assert expired.status_code == 409, expired.text
    assert "expired" in expired.json()["detail"], expired.text
    assert offer_jobs.expire_offers(factory, settings, clock) == "1 bank offers expired"
    assert (
        client.get(f"/api/v1/offers/{offer_id}", headers=bearer(tokens[BANK])).json()["status"] == "expired"
    )
    assert offer_jobs.expire_offers(factory, settings, clock) == "0 bank offers expired"

    # Withdrawn and declined offers are no longer open.
    second = _offer(client, tokens[BANK], _offer_body(demand_id, clock)).json()
    withdrawn = client.post(
        f"/api/v1/offers/{second['id']}/withdraw", json={"reason": "repriced"}, headers=bearer(tokens[BANK])
    )
    assert withdrawn.status_code == 200
    assert withdrawn.json()["status"] == "withdrawn"
    again = _accept(client, tokens[SME], second["id"])
    assert again.status_code == 409
    assert again.json()["type"].endswith("offer-not-open")
    third = _offer(client, tokens[BANK], _offer_body(demand_id, clock)).json()
    declined = client.post(
        f"/api/v1/offers/{third['id']}/decline", json={"reason": "too dear"}, headers=bearer(tokens[SME])
    )
    assert declined.status_code == 200
    assert declined.json()["status"] == "declined"
    late = client.post(f"/api/v1/offers/{third['id']}/withdraw", json={}, headers=bearer(tokens[BANK]))
    assert late.status_code == 409
    with factory() as session:
        assert session.scalars(select(Hold).where(Hold.description.like("bank offer %"))).all() == []
    assert (
        client.get(f"/api/v1/demands/{demand_id}", headers=bearer(tokens[SME])).json()["status"] == "listed"
    )
    inbox = client.get("/api/v1/notifications", headers=bearer(tokens[BANK])).json()
    kinds = {n["kind"] for n in inbox}
    assert {"offer.expired", "offer.declined"} <= kinds
