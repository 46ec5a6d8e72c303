"""Steps 1–6 of the paper's flow through the HTTP API, on both databases, for a crowd (P2P) loan and a
bank loan, with every escrow balance asserted after every money step.

Nothing is written behind the platform's back: the enterprise's books arrive through the operator's
data feed, the demand is published and submitted, the platform orders the services, the simulated
agencies sign their results, the demand is listed and decided by the champion model (trained on the
synthetic world and promoted by two operators), pushed to the investors it suits, funded in escrow
(by commitments, or by a bank's accepted offer), contracted by hash and paid out by the custodian.

After each money step the regulator's fund flows (per account class) and each party's own
sub-accounts are compared with the figures expected, and the escrow always equals what it owes:
the investors' and banks' available money, the enterprise's payout and the platform's fee.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import bearer, demo_tokens, login_token
from tests.integration.parties_data import person_investor_body
from tests.integration.verification.demand_data import demand_body
from yunrong.config import Settings
from yunrong.db import unit_of_work
from yunrong.decisions import service as decisions
from yunrong.demo.history import feed_history
from yunrong.identity import repository as identity_repo
from yunrong.identity import service as identity
from yunrong.identity.model import Actor, Context, Role
from yunrong.identity.security import totp_now
from yunrong.investing.tables import AgreementAcceptance
from yunrong.kit.clock import FrozenClock
from yunrong.ledger.tables import Hold
from yunrong.ledger.verify import first_violation
from yunrong.matching.model import product_risk
from yunrong.messaging.worker import deliver_due
from yunrong.parties.risk import QUESTIONS
from yunrong.parties.tables import Enterprise
from yunrong.verification import simulated
from yunrong.verification.simulated import Behaviour

SME = "sme@demo.yunrong.cn"
INVESTOR = "investor@demo.yunrong.cn"
INSTITUTION = "institution@demo.yunrong.cn"
OPERATOR = "operator@demo.yunrong.cn"
REGULATOR = "regulator1@demo.yunrong.cn"
REGULATOR_2 = "regulator2@demo.yunrong.cn"
AGENCY = "agency@demo.yunrong.cn"
BANK = "bank@demo.yunrong.cn"
CAREFUL = "careful@investor.example.cn"  # a conservative (C1) investor registered by the test
CAREFUL_PASSWORD = "applicant-password-1"

#: Every class of escrow account the fund flows report on (a class with nothing in it is 0).
CLASSES = (
    "escrow_cash",
    "investor_available",
    "enterprise_payout",
    "platform_fee_income",
    "loan_book",
    "investor_claims",
)
#: Preferences that take any listing: only suitability (the risk level) can keep one away.
ANYTHING = {
    "currency": "CNY",
    "amount_per_loan": "10000.00",
    "total_budget": "500000.00",
    "min_term_months": 3,
    "max_term_months": 36,
    "grades": [],
    "products": [],
    "innovation": "neutral",
    "min_transparency": 0,
    "min_guarantee_coverage": "0",
}
BOLDEST = {q.key: max(q.options, key=lambda o: o.score).key for q in QUESTIONS}  # → C5
MOST_CAREFUL = {q.key: min(q.options, key=lambda o: o.score).key for q in QUESTIONS}  # → C1
NEVER_REFUSE = Behaviour(decline_rate=0.0, fail_rate=0.0)

Drain = Callable[[], None]
Balances = dict[str, tuple[int, int]]


@pytest.fixture
def settings(settings: Settings, tmp_path: Any) -> Settings:
    # The simulated bank answers in-process (with the same signature check as over HTTP) and never
    # fails; registered models live in this test's own folder.
    return settings.model_copy(
        update={
            "simbank_callback_mode": "direct",
            "simbank_failure_rate": 0.0,
            "simbank_duplicate_rate": 0.0,
            "model_dir": tmp_path / "models",
        }
    )


@pytest.fixture
def drain(factory: sessionmaker[Session], settings: Settings, clock: FrozenClock) -> Drain:
    """Let time pass and the outbox worker run until it is quiet (the bank's answers included)."""

    def run() -> None:
        for _ in range(50):
            clock.advance(timedelta(seconds=30))
            if deliver_due(factory, settings=settings, clock=clock, worker_id="steps-1-6") == 0:
                clock.advance(timedelta(seconds=30))
                if deliver_due(factory, settings=settings, clock=clock, worker_id="steps-1-6") == 0:
                    return
        raise AssertionError("the outbox never went quiet")

    return run


def _acting(session: Session, email: str, clock: FrozenClock) -> Context:
    user = identity_repo.user_by_email(session, email)
    assert user is not None
    org = identity_repo.organisation_by_id(session, user.organisation_id)
    assert org is not None
    return Context(actor=identity.actor_for(user, org, "steps-1-6"), clock=clock, request_id="steps-1-6")


def _second_operator(
    client: TestClient, factory: sessionmaker[Session], settings: Settings, clock: FrozenClock, org: str
) -> dict[str, str]:
    """Another operator of the platform, logged in with two-factor: promotions need two."""
    ctx = Context(actor=Actor.system("steps-1-6"), clock=clock, request_id="steps-1-6")
    with unit_of_work(factory) as session:
        identity.create_user(
            session,
            ctx=ctx,
            settings=settings,
            organisation_id=uuid.UUID(org),
            email="operator2@demo.yunrong.cn",
            name="Second operator",
            password="second-operator-1",
            roles=frozenset({Role.OPERATOR_ADMIN}),
            enrol_totp=False,
        )
        secret = identity.enrol_totp_by_operator(
            session, ctx=ctx, settings=settings, email="operator2@demo.yunrong.cn"
        )
    response = client.post(
        "/api/v1/auth/token",
        data={
            "username": "operator2@demo.yunrong.cn",
            "password": "second-operator-1",
            "totp": totp_now(secret, clock.now()),
        },
    )
    assert response.status_code == 200, response.text
    return bearer(response.json()["access_token"])


@pytest.fixture
def champion(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    system_ctx: Context,
) -> str:
    """The platform's default credit model (trained on the generated synthetic world, ~1–2 s),
    proposed by one operator and approved by another through the API: listings are decided by it."""
    with unit_of_work(factory) as session:
        model_id = str(decisions.train_default_model(session, ctx=system_ctx, settings=settings).id)
    operator = bearer(tokens[OPERATOR])
    promotion = client.post(
        f"/api/v1/credit-models/{model_id}/promotions",
        json={"target_role": "champion", "reason": "the default model"},
        headers=operator,
    )
    assert promotion.status_code == 201, promotion.text
    org = client.get("/api/v1/me", headers=operator).json()["organisation"]["id"]
    approved = client.post(
        f"/api/v1/model-promotions/{promotion.json()['id']}/decision",
        json={"approve": True, "reason": "validated on the synthetic world"},
        headers=_second_operator(client, factory, settings, clock, org),
    )
    assert approved.json()["status"] == "approved", approved.text
    return model_id


# --- what the tests look at ------------------------------------------------------------------------------


def _org(client: TestClient, auth: dict[str, str]) -> str:
    return str(client.get("/api/v1/me", headers=auth).json()["organisation"]["id"])


def _escrow(client: TestClient, regulator: dict[str, str]) -> Balances:
    """(posted, available) per account class, as the regulator's fund flows show it; every class of
    :data:`CLASSES` is present (0 when empty) and no other class holds anything."""
    flows = client.get("/api/v1/fund-flows", headers=regulator)
    assert flows.status_code == 200, flows.text
    seen = {
        c["purpose"]: (int(c["balance_minor"]), int(c["available_minor"])) for c in flows.json()["classes"]
    }
    others = {k: v for k, v in seen.items() if k not in CLASSES and v != (0, 0)}
    assert others == {}, others
    balances = {purpose: seen.get(purpose, (0, 0)) for purpose in CLASSES}
    # The custodian's cash is exactly what it owes: nobody's money is anywhere else.
    owed = sum(balances[p][0] for p in ("investor_available", "enterprise_payout", "platform_fee_income"))
    assert balances["escrow_cash"][0] == owed, balances
    assert balances["loan_book"] == balances["investor_claims"], balances
    return balances


def _mine(client: TestClient, auth: dict[str, str]) -> dict[str, tuple[int, int, int, int]]:
    """A party's own sub-accounts with anything in them: (posted, available, pending out, pending in)."""
    accounts = client.get("/api/v1/me/accounts", headers=auth)
    assert accounts.status_code == 200, accounts.text
    out = {
        a["purpose"]: (
            int(a["balance_minor"]),
            int(a["available_minor"]),
            int(a["pending_out_minor"]),
            int(a["pending_in_minor"]),
        )
        for a in accounts.json()
    }
    return {k: v for k, v in out.items() if v != (0, 0, 0, 0)}


def _classes(**posted_available: tuple[int, int] | int) -> Balances:
    """Expected balances: every class 0 unless given; an int means posted == available."""
    expected: Balances = dict.fromkeys(CLASSES, (0, 0))
    for purpose, value in posted_available.items():
        expected[purpose] = (value, value) if isinstance(value, int) else value
    return expected


def _ledger_and_audit_hold(
    client: TestClient, regulator: dict[str, str], factory: sessionmaker[Session]
) -> None:
    ledger = client.get("/api/v1/ledger/verification", headers=regulator).json()
    assert ledger["ok"] is True, ledger
    chain = client.get("/api/v1/audit-records/verification", headers=regulator).json()
    assert chain["ok"] is True, chain
    assert chain["records_checked"] > 0
    assert chain["first_break"] is None
    with factory() as session:
        assert first_violation(session) is None


# --- steps 1 to 3 ----------------------------------------------------------------------------------------


def _publish_and_list(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    **overrides: Any,
) -> tuple[str, dict[str, str]]:
    """Steps 1–3: books fed, demand published and submitted, services ordered and signed, listed.
    Returns the demand id and fresh tokens (the agencies' work takes simulated time)."""
    sme = bearer(tokens[SME])
    # The enterprise's two years of books reach its credit file through the operator's data feed.
    with unit_of_work(factory) as session:
        enterprise = session.get(Enterprise, uuid.UUID(_org(client, sme)))
        assert enterprise is not None
        operator = _acting(session, OPERATOR, clock)
        assert feed_history(session, ctx=operator, enterprise=enterprise, timezone=settings.timezone) > 0
    consent = {
        "data_category": "credit_score",
        "recipient_class": "investors",
        "purpose": "financing",
        "valid_until": "2028-01-01",
    }
    assert client.post("/api/v1/consents", json=consent, headers=sme).status_code == 201

    # 1. The enterprise publishes its demand.
    body = demand_body(project_key=f"steps-1-6-{uuid.uuid4().hex[:8]}", **overrides)
    draft = client.post("/api/v1/demands", json=body, headers=sme)
    assert draft.status_code == 201, draft.text
    assert draft.json()["status"] == "draft"
    submitted = client.post(f"/api/v1/demands/{draft.json()['id']}/submission", headers=sme)
    assert submitted.status_code == 200, submitted.text
    demand = submitted.json()
    assert demand["status"] == "under_verification"
    # 2. The platform ordered what the product needs.
    types = {o["agency_type"] for o in demand["orders"]}
    assert {"authentication", "credit_rating"} <= types
    # 3. The (simulated) agencies work the orders and sign their results; the demand is listed.
    for _ in range(30):
        clock.advance(timedelta(minutes=2))
        simulated.run_simulated_agencies(factory, settings=settings, clock=clock, behaviour=NEVER_REFUSE)
        current = client.get(f"/api/v1/demands/{demand['id']}", headers=sme).json()
        if current["status"] == "listed":
            break
    else:
        raise AssertionError(f"never listed: {current['orders']}")
    fresh = demo_tokens(client, factory, settings, Context(actor=Actor.system("t"), clock=clock))
    for order in (o for o in current["orders"] if o["status"] == "completed"):
        detail = client.get(f"/api/v1/service-orders/{order['id']}", headers=bearer(fresh[SME])).json()
        check = client.get(f"/api/v1/attestations/{detail['attestation_id']}/verification").json()
        assert check["valid"] is True, check
    return str(demand["id"]), fresh


def _deposit(
    client: TestClient, auth: dict[str, str], amount: str, bank_account_id: str | None = None
) -> None:
    if bank_account_id is None:
        org = _org(client, auth)
        bank_account_id = client.get(f"/api/v1/organisations/{org}/bank-accounts", headers=auth).json()[0][
            "id"
        ]
    response = client.post(
        "/api/v1/deposits",
        json={"amount": amount, "bank_account_id": bank_account_id},
        headers={**auth, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "pending"


def _accept_agreement(client: TestClient, auth: dict[str, str], loan_id: str) -> Any:
    pdf = client.get(f"/api/v1/loans/{loan_id}/agreement", headers=auth)
    assert pdf.status_code == 200, pdf.text
    assert pdf.content.startswith(b"%PDF")
    sha = hashlib.sha256(pdf.content).hexdigest()
    assert pdf.headers["X-Agreement-SHA256"] == sha
    accepted = client.post(f"/api/v1/loans/{loan_id}/agreement/accept", json={"sha256": sha}, headers=auth)
    assert accepted.status_code == 200, accepted.text
    return accepted.json()


def _schedule_is_exact(
    client: TestClient, auth: dict[str, str], loan_id: str, principal: int, months: int
) -> None:
    schedule = client.get(f"/api/v1/loans/{loan_id}/schedule", headers=auth)
    assert schedule.status_code == 200, schedule.text
    body = schedule.json()
    assert body["state"] == "performing"
    assert body["principal_outstanding_minor"] == principal
    assert len(body["instalments"]) == months
    assert sum(i["principal_due_minor"] for i in body["instalments"]) == principal
    assert all(i["status"] == "scheduled" for i in body["instalments"])
    assert body["next_due_date"] == body["instalments"][0]["due_date"]


# --- the P2P loan --------------------------------------------------------------------------------------


def test_a_crowd_loan_goes_from_draft_to_paid_out(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    drain: Drain,
    champion: str,
) -> None:
    # The demo investors take the questionnaire as the boldest investors (C5); a careful person
    # registers, answers as the most conservative (C1) and is admitted by two regulators.
    for email in (INVESTOR, INSTITUTION):
        auth = bearer(tokens[email])
        level = client.post(
            f"/api/v1/investors/{_org(client, auth)}/risk-assessment", json={"answers": BOLDEST}, headers=auth
        )
        assert level.json()["level"] == "C5", level.text
    registration = person_investor_body(CAREFUL)
    registration["risk_answers"] = MOST_CAREFUL
    registered = client.post("/api/v1/investors", json=registration)
    assert registered.status_code == 201, registered.text
    qid = registered.json()["qualification_id"]
    for reviewer in (REGULATOR, REGULATOR_2):
        decided = client.post(
            f"/api/v1/qualifications/{qid}/decisions",
            json={"decision": "approve", "reason": "documents consistent"},
            headers=bearer(tokens[reviewer]),
        )
        assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "approved"
    # All three would take any listing: only suitability can keep one away.
    careful = bearer(login_token(client, CAREFUL, CAREFUL_PASSWORD))
    for auth in (careful, bearer(tokens[INVESTOR]), bearer(tokens[INSTITUTION])):
        saved = client.put("/api/v1/me/investment-preferences", json=ANYTHING, headers=auth)
        assert saved.status_code == 200, saved.text

    # Steps 1–3. 24 months at up to 11.5 %: the default model prices the demo enterprise, its
    # statements read from the credit file (the test at the end of the file), within the legal cap.
    demand_id, fresh = _publish_and_list(
        client,
        tokens,
        factory,
        settings,
        clock,
        product="p2p_loan",
        guarantee_wanted=True,
        term_months=24,
        max_annual_rate="11.5000",
    )
    sme, regulator = bearer(fresh[SME]), bearer(fresh[REGULATOR])
    person, institution = bearer(fresh[INVESTOR]), bearer(fresh[INSTITUTION])
    careful = bearer(login_token(client, CAREFUL, CAREFUL_PASSWORD))

    # Listing decided it with the champion model, priced, and opened the funding window.
    decision = client.get(f"/api/v1/demands/{demand_id}/decision", headers=sme).json()
    assert decision["model_id"] == champion
    assert decision["declined"] is False, decision
    assert decision["annual_rate"] is not None
    funding = client.get(f"/api/v1/demands/{demand_id}/funding", headers=sme).json()
    assert funding["status"] == "open", funding
    assert funding["remaining_minor"] == 30_000_000
    assert funding["annual_rate"] == decision["annual_rate"]
    listing = client.get(f"/api/v1/listings/{demand_id}", headers=person)
    assert listing.status_code == 200, listing.text
    assert "verified" in str(listing.json())

    # Step 4: pushed to the investors it suits, with the reasons; never to the careful one.
    assert product_risk(decision["grade"]) > 1  # above R1: outside a C1 investor's suitability
    link = f"/investor/listings/{demand_id}"
    for auth in (person, institution):
        pushes = [
            n
            for n in client.get("/api/v1/notifications", headers=auth).json()
            if n["kind"] == "matching.push"
        ]
        assert [n["link"] for n in pushes] == [link]
        recommended = client.get("/api/v1/recommendations", headers=auth).json()
        assert [r["demand_id"] for r in recommended] == [demand_id]
        assert {"suitable", "grade"} <= {reason["code"] for reason in recommended[0]["reasons"]}
    assert [
        n for n in client.get("/api/v1/notifications", headers=careful).json() if n["kind"] == "matching.push"
    ] == []
    assert client.get("/api/v1/recommendations", headers=careful).json() == []
    assert _escrow(client, regulator) == _classes()  # no money anywhere yet

    # Step 5: the investors pay into escrow; the custodian confirms.
    _deposit(client, person, "200000.00")
    _deposit(client, institution, "500000.00")
    assert _escrow(client, regulator) == _classes()  # nothing moves before the bank confirms
    assert _mine(client, person) == {}
    drain()
    assert _escrow(client, regulator) == _classes(escrow_cash=70_000_000, investor_available=70_000_000)
    assert _mine(client, person) == {"investor_available": (20_000_000, 20_000_000, 0, 0)}
    assert _mine(client, institution) == {"investor_available": (50_000_000, 50_000_000, 0, 0)}

    # Commitments are holds: nothing is posted, the money is reserved. A retry changes nothing.
    def commit(auth: dict[str, str], amount: str, key: str) -> Any:
        return client.post(
            "/api/v1/commitments",
            json={"demand_id": demand_id, "amount": amount, "accept_agreement": True},
            headers={**auth, "Idempotency-Key": key},
        )

    key = uuid.uuid4().hex
    first = commit(person, "120000.00", key)
    assert first.status_code == 201, first.text
    assert first.headers["Idempotent-Replayed"] == "false"
    assert first.json()["status"] == "pending"
    replay = commit(person, "120000.00", key)
    assert replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    other_body = commit(person, "130000.00", key)
    assert 400 <= other_body.status_code < 500, other_body.text
    assert commit(person, "30000.00", uuid.uuid4().hex).status_code == 201
    assert _escrow(client, regulator) == _classes(
        escrow_cash=70_000_000, investor_available=(70_000_000, 55_000_000)
    )
    assert _mine(client, person) == {"investor_available": (20_000_000, 5_000_000, 15_000_000, 0)}
    assert _mine(client, sme) == {"enterprise_payout": (0, 0, 0, 15_000_000)}
    assert (
        client.get(f"/api/v1/demands/{demand_id}/funding", headers=sme).json()["remaining_minor"]
        == 15_000_000
    )

    # The institution's ticket fills the round: every hold is posted, the loan is booked.
    last = commit(institution, "150000.00", uuid.uuid4().hex)
    assert last.status_code == 201, last.text
    assert last.json()["status"] == "posted"
    funding = client.get(f"/api/v1/demands/{demand_id}/funding", headers=sme).json()
    assert funding["status"] == "funded"
    assert funding["remaining_minor"] == 0
    assert client.get(f"/api/v1/demands/{demand_id}", headers=sme).json()["status"] == "funded"
    with factory() as session:
        holds = session.scalars(select(Hold).where(Hold.description.like("commitment to %"))).all()
        assert sorted(h.status for h in holds) == ["posted"] * 3
    assert _escrow(client, regulator) == _classes(
        escrow_cash=70_000_000, investor_available=40_000_000, enterprise_payout=30_000_000
    )
    assert _mine(client, person) == {"investor_available": (5_000_000, 5_000_000, 0, 0)}
    assert _mine(client, institution) == {"investor_available": (35_000_000, 35_000_000, 0, 0)}
    assert _mine(client, sme) == {"enterprise_payout": (30_000_000, 30_000_000, 0, 0)}

    loan_id = funding["loan_id"]
    loan = client.get(f"/api/v1/loans/{loan_id}", headers=sme).json()
    assert loan["status"] == "contracting"
    assert loan["lender_kind"] == "investors"
    assert loan["principal_minor"] == 30_000_000
    assert loan["term_months"] == 24
    assert sorted(n["principal_minor"] for n in loan["notes"]) == [15_000_000, 15_000_000]
    fee = loan["fee_minor"]
    assert fee == 30_000_000 * settings.platform_fee_bp // 10_000 == 150_000
    assert float(loan["apr"]) > float(loan["annual_rate"])  # the fee is in the APR

    # Step 6: the enterprise accepts the agreement by its hash (the investors did when committing);
    # the fee goes to its account and the payout is instructed, held until the bank confirms it.
    accepted = _accept_agreement(client, sme, loan_id)
    assert accepted["status"] == "disbursing"
    with factory() as session:
        roles = sorted(a.party_role for a in session.scalars(select(AgreementAcceptance)))
    assert roles == ["borrower", "investor", "investor"]
    payout = 30_000_000 - fee
    assert _escrow(client, regulator) == _classes(
        escrow_cash=(70_000_000, 70_000_000 - payout),
        investor_available=40_000_000,
        enterprise_payout=(payout, 0),
        platform_fee_income=fee,
    )
    assert _mine(client, sme) == {"enterprise_payout": (payout, 0, payout, 0)}

    drain()  # the custodian pays the enterprise's verified account and confirms
    loan = client.get(f"/api/v1/loans/{loan_id}", headers=sme).json()
    assert loan["status"] == "active"
    assert loan["disbursed_at"]
    assert _escrow(client, regulator) == _classes(
        escrow_cash=70_000_000 - payout,
        investor_available=40_000_000,
        platform_fee_income=fee,
        loan_book=30_000_000,
        investor_claims=30_000_000,
    )
    assert _mine(client, sme) == {}
    assert _mine(client, person) == {"investor_available": (5_000_000, 5_000_000, 0, 0)}
    assert _mine(client, institution) == {"investor_available": (35_000_000, 35_000_000, 0, 0)}
    _schedule_is_exact(client, sme, loan_id, 30_000_000, 24)
    _ledger_and_audit_hold(client, regulator, factory)


# --- the bank loan --------------------------------------------------------------------------------------


def test_a_bank_loan_goes_from_draft_to_paid_out(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    drain: Drain,
    champion: str,
) -> None:
    demand_id, fresh = _publish_and_list(
        client, tokens, factory, settings, clock, product="bank_loan", repayment_method="equal_principal"
    )
    sme, bank, regulator = bearer(fresh[SME]), bearer(fresh[BANK]), bearer(fresh[REGULATOR])
    decision = client.get(f"/api/v1/demands/{demand_id}/decision", headers=sme).json()
    assert decision["model_id"] == champion
    # Bank loans are funded by offers, not by a crowd round.
    assert client.get(f"/api/v1/demands/{demand_id}/funding", headers=sme).status_code == 404
    assert _escrow(client, regulator) == _classes()

    # The bank pays its lending money into escrow from its own account, verified by the agency.
    created = client.post(
        f"/api/v1/organisations/{_org(client, bank)}/bank-accounts",
        json={
            "bank_name": "Bank of Jiangsu",
            "account_name": "Lending",
            "account_number": "6222020200000001",
        },
        headers=bank,
    )
    assert created.status_code == 201, created.text
    verified = client.post(
        f"/api/v1/bank-accounts/{created.json()['id']}/verification",
        json={"evidence": "bank confirmation letter"},
        headers=bearer(fresh[AGENCY]),
    )
    assert verified.status_code == 200, verified.text
    _deposit(client, bank, "400000.00", created.json()["id"])
    assert _escrow(client, regulator) == _classes()
    drain()
    assert _escrow(client, regulator) == _classes(escrow_cash=40_000_000, investor_available=40_000_000)
    # The demo bank is also the platform's custodian: it sees the escrow cash it holds.
    assert _mine(client, bank) == {
        "escrow_cash": (40_000_000, 40_000_000, 0, 0),
        "investor_available": (40_000_000, 40_000_000, 0, 0),
    }

    # The bank sees the demand and offers; an offer moves no money.
    seen = client.get("/api/v1/bank-loan-demands", headers=bank)
    assert seen.status_code == 200, seen.text
    assert demand_id in {d["id"] for d in seen.json()}
    made = client.post(
        "/api/v1/offers",
        json={
            "demand_id": demand_id,
            "amount": "300000.00",
            "annual_rate_percent": "6.5000",
            "term_months": 12,
            "repayment_method": "equal_principal",
            "conditions": "A first-ranking pledge over the refrigeration units.",
            "valid_until": (clock.now() + timedelta(days=7)).isoformat(),
        },
        headers=bank,
    )
    assert made.status_code == 201, made.text
    offer = made.json()
    assert offer["status"] == "open"
    fee = offer["fee_minor"]
    assert fee == 150_000
    assert _escrow(client, regulator) == _classes(escrow_cash=40_000_000, investor_available=40_000_000)

    # The enterprise accepts (money moves: an Idempotency-Key; a retry changes nothing).
    key = uuid.uuid4().hex
    accept_headers = {**sme, "Idempotency-Key": key}
    accepted = client.post(f"/api/v1/offers/{offer['id']}/accept", headers=accept_headers)
    assert accepted.status_code == 200, accepted.text
    assert accepted.headers["Idempotent-Replayed"] == "false"
    assert accepted.json()["status"] == "accepted"
    replay = client.post(f"/api/v1/offers/{offer['id']}/accept", headers=accept_headers)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == accepted.json()
    assert client.get(f"/api/v1/demands/{demand_id}", headers=sme).json()["status"] == "funded"
    with factory() as session:
        holds = session.scalars(select(Hold).where(Hold.description.like("bank offer %"))).all()
        assert [h.status for h in holds] == ["posted"]
    assert _escrow(client, regulator) == _classes(
        escrow_cash=40_000_000, investor_available=10_000_000, enterprise_payout=30_000_000
    )
    assert _mine(client, bank) == {
        "escrow_cash": (40_000_000, 40_000_000, 0, 0),
        "investor_available": (10_000_000, 10_000_000, 0, 0),
    }
    assert _mine(client, sme) == {"enterprise_payout": (30_000_000, 30_000_000, 0, 0)}

    loan_id = accepted.json()["loan_id"]
    loan = client.get(f"/api/v1/loans/{loan_id}", headers=bank).json()
    assert loan["lender_kind"] == "bank"
    assert loan["status"] == "contracting"
    assert loan["fee_minor"] == fee
    assert [(n["investor_org_id"], n["principal_minor"]) for n in loan["notes"]] == [
        (_org(client, bank), 30_000_000)
    ]

    # Both accept the agreement by hash; the bank's acceptance completes it and pays out.
    assert _accept_agreement(client, sme, loan_id)["status"] == "contracting"
    assert _escrow(client, regulator) == _classes(
        escrow_cash=40_000_000, investor_available=10_000_000, enterprise_payout=30_000_000
    )
    assert _accept_agreement(client, bank, loan_id)["status"] == "disbursing"
    with factory() as session:
        roles = sorted(a.party_role for a in session.scalars(select(AgreementAcceptance)))
    assert roles == ["bank", "borrower"]
    payout = 30_000_000 - fee
    assert _escrow(client, regulator) == _classes(
        escrow_cash=(40_000_000, 40_000_000 - payout),
        investor_available=10_000_000,
        enterprise_payout=(payout, 0),
        platform_fee_income=fee,
    )
    assert _mine(client, sme) == {"enterprise_payout": (payout, 0, payout, 0)}
    assert _mine(client, bank)["escrow_cash"] == (40_000_000, 40_000_000 - payout, payout, 0)

    drain()  # the custodian confirms the payout
    loan = client.get(f"/api/v1/loans/{loan_id}", headers=sme).json()
    assert loan["status"] == "active"
    assert loan["disbursed_at"]
    assert _escrow(client, regulator) == _classes(
        escrow_cash=40_000_000 - payout,
        investor_available=10_000_000,
        platform_fee_income=fee,
        loan_book=30_000_000,
        investor_claims=30_000_000,
    )
    assert _mine(client, sme) == {}
    assert _mine(client, bank) == {
        "escrow_cash": (40_000_000 - payout, 40_000_000 - payout, 0, 0),
        "investor_available": (10_000_000, 10_000_000, 0, 0),
    }
    _schedule_is_exact(client, sme, loan_id, 30_000_000, 12)
    _ledger_and_audit_hold(client, regulator, factory)


# --- the decision reads the books ------------------------------------------------------------------------


def test_the_automated_decision_reads_the_books_in_the_credit_file(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    champion: str,
) -> None:
    demand_id, fresh = _publish_and_list(client, tokens, factory, settings, clock)
    decision = client.get(f"/api/v1/demands/{demand_id}/decision", headers=bearer(fresh[SME])).json()
    features = decision["features"]
    assert features["months_of_history"] == 24  # the payment records were read …
    for fed in ("net_margin_12m", "debt_to_assets", "current_ratio", "cash_months", "revenue_yoy"):
        assert features[fed] is not None, (fed, features)  # … and so must the statements be
