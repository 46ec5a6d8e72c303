"""Restructuring: a term extension approved by investors holding a majority by value of the notes
(60 % approves; 40 % alone cannot), a payment holiday rejected, and a bank loan restructured by the
bank. The new schedule is shown before approval and applied as a new version; nothing changes
without the approval."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import bearer
from tests.integration.investing.conftest import (  # noqa: F401  (fixtures)
    BANK,
    INSTITUTION,
    INVESTOR,
    OPERATOR,
    REGULATOR,
    SME,
    Drain,
    deposit,
    drain,
    list_demand,
    settings,
    verified,
)
from yunrong.app import create_app
from yunrong.config import Settings
from yunrong.db import unit_of_work
from yunrong.identity.model import Actor, Context
from yunrong.kit.clock import FrozenClock
from yunrong.ledger.verify import first_violation
from yunrong.servicing import default_routes
from yunrong.servicing.daycount import add_months
from yunrong.servicing.restructuring import RestructuringNotApproved, apply_restructuring
from yunrong.servicing.tables import Instalment, LoanServicing, Restructuring
from yunrong.supervision.tables import AuditRecord


@pytest.fixture
def app(settings: Settings, clock: FrozenClock, engine: Engine) -> FastAPI:  # noqa: F811
    """The application, with the defaults router mounted if app.py does not mount it yet."""
    application = create_app(settings, clock=clock, engine=engine)
    mounted = {getattr(r, "operation_id", None) for r in application.router.routes}
    if "create_restructuring" not in mounted:
        application.include_router(default_routes.router)
    return application


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def commit(client: TestClient, token: str, demand_id: uuid.UUID, amount: str) -> Any:
    response = client.post(
        "/api/v1/commitments",
        json={"demand_id": str(demand_id), "amount": amount, "accept_agreement": True},
        headers={**bearer(token), "Idempotency-Key": uuid.uuid4().hex},
    )
    assert response.status_code == 201, response.text
    return response.json()


def active_p2p_loan(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,  # noqa: F811
    clock: FrozenClock,
    drain: Drain,  # noqa: F811
    **demand: Any,
) -> str:
    """A 100,000.00 CNY, 12-month P2P loan, 60 % from the person investor and 40 % from the
    institution (each deposited 200,000.00), accepted by the enterprise and paid out by the
    custodian: the path of test_funding_to_disbursement."""
    deposit(client, tokens[INVESTOR], "200000.00")
    deposit(client, tokens[INSTITUTION], "200000.00")
    drain()
    demand_id = list_demand(client, tokens, factory, settings, clock, amount="100000.00", **demand)
    commit(client, tokens[INVESTOR], demand_id, "60000.00")
    commit(client, tokens[INSTITUTION], demand_id, "40000.00")
    funding = client.get(f"/api/v1/demands/{demand_id}/funding", headers=bearer(tokens[SME])).json()
    loan_id = str(funding["loan_id"])
    loan = client.get(f"/api/v1/loans/{loan_id}", headers=bearer(tokens[SME])).json()
    accepted = client.post(
        f"/api/v1/loans/{loan_id}/agreement/accept",
        json={"sha256": loan["agreement_sha256"]},
        headers=bearer(tokens[SME]),
    )
    assert accepted.status_code == 200, accepted.text
    drain()
    assert client.get(f"/api/v1/loans/{loan_id}", headers=bearer(tokens[SME])).json()["status"] == "active"
    return loan_id


def schedule(client: TestClient, token: str, loan_id: str) -> Any:
    response = client.get(f"/api/v1/loans/{loan_id}/schedule", headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.json()


def propose(client: TestClient, token: str, loan_id: str, **body: Any) -> Any:
    return client.post(f"/api/v1/loans/{loan_id}/restructurings", json=body, headers=bearer(token))


def vote(client: TestClient, token: str, restructuring_id: str, approve: bool) -> Any:
    return client.post(
        f"/api/v1/restructurings/{restructuring_id}/votes", json={"approve": approve}, headers=bearer(token)
    )


def test_investors_holding_a_majority_by_value_approve_a_term_extension(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,  # noqa: F811
    clock: FrozenClock,
    verified: None,  # noqa: F811
    drain: Drain,  # noqa: F811
) -> None:
    loan_id = active_p2p_loan(client, tokens, factory, settings, clock, drain)
    before = schedule(client, tokens[SME], loan_id)
    first = before["instalments"][0]
    # The first instalment was paid (as the repayments module records it).
    with unit_of_work(factory) as session:
        row = session.scalar(
            select(Instalment).where(Instalment.loan_id == uuid.UUID(loan_id), Instalment.number == 1)
        )
        servicing = session.get(LoanServicing, uuid.UUID(loan_id))
        assert row is not None
        assert servicing is not None
        row.principal_paid, row.interest_paid = row.principal_due, row.interest_due
        row.status, row.paid_on = "paid", row.due_date
        servicing.principal_outstanding -= row.principal_due
    outstanding = 10_000_000 - first["principal_due_minor"]

    made = propose(
        client, tokens[SME], loan_id, kind="term_extension", months=6, reason="Harvest delayed by floods"
    )
    assert made.status_code == 201, made.text
    proposal = made.json()
    assert proposal["status"] == "proposed"
    assert proposal["total_weight_minor"] == outstanding
    old_maturity = date.fromisoformat(before["instalments"][-1]["due_date"])
    assert date.fromisoformat(proposal["new_maturity"]) == add_months(old_maturity, 6)
    preview = proposal["preview"]
    assert [p["number"] for p in preview] == list(range(2, 19))  # 11 remaining months + 6
    assert preview[0]["period_start"] == first["due_date"]
    assert sum(p["principal_minor"] for p in preview) == outstanding
    assert preview[-1]["balance_after_minor"] == 0
    # A second proposal while this one waits is refused.
    again = propose(client, tokens[SME], loan_id, kind="reamortisation", reason="again")
    assert again.status_code == 409
    rid = proposal["id"]

    # Parties see the proposal; others do not; only lenders vote.
    assert client.get(f"/api/v1/restructurings/{rid}", headers=bearer(tokens[INVESTOR])).status_code == 200
    assert client.get(f"/api/v1/restructurings/{rid}", headers=bearer(tokens[BANK])).status_code == 404
    assert vote(client, tokens[SME], rid, True).status_code == 403
    assert vote(client, tokens[BANK], rid, True).status_code == 404

    # The 40 % holder alone cannot approve: nothing changes, and applying is refused.
    minority = vote(client, tokens[INSTITUTION], rid, True)
    assert minority.status_code == 200, minority.text
    assert minority.json()["status"] == "proposed"
    assert minority.json()["approve_weight_minor"] == outstanding - outstanding * 6 // 10
    assert vote(client, tokens[INSTITUTION], rid, True).status_code == 409  # one vote each
    assert schedule(client, tokens[SME], loan_id)["schedule_version"] == 1
    ctx = Context(actor=Actor.system("test"), clock=clock, request_id="test")
    with unit_of_work(factory) as session:
        row_r = session.get(Restructuring, uuid.UUID(rid))
        assert row_r is not None
        with pytest.raises(RestructuringNotApproved):
            apply_restructuring(session, ctx=ctx, restructuring=row_r)
    assert schedule(client, tokens[SME], loan_id)["schedule_version"] == 1

    # The 60 % holder approves: a majority by value, applied at once.
    majority = vote(client, tokens[INVESTOR], rid, True)
    assert majority.status_code == 200, majority.text
    assert majority.json()["status"] == "applied"
    assert majority.json()["approve_weight_minor"] == outstanding
    after = schedule(client, tokens[SME], loan_id)
    assert after["schedule_version"] == 2
    assert [i["number"] for i in after["instalments"]] == list(range(1, 19))
    assert after["instalments"][0]["status"] == "paid"
    assert after["instalments"][0]["principal_due_minor"] == first["principal_due_minor"]
    assert sum(i["principal_due_minor"] for i in after["instalments"]) == 10_000_000
    new_rows = [
        {
            "number": i["number"],
            "due_date": i["due_date"],
            "principal_minor": i["principal_due_minor"],
            "interest_minor": i["interest_due_minor"],
        }
        for i in after["instalments"][1:]
    ]
    assert new_rows == [
        {k: p[k] for k in ("number", "due_date", "principal_minor", "interest_minor")} for p in preview
    ]
    assert after["next_due_date"] == preview[0]["due_date"]
    with factory() as session:
        servicing = session.get(LoanServicing, uuid.UUID(loan_id))
        assert servicing is not None
        assert servicing.maturity_date == add_months(old_maturity, 6)
        old = session.scalars(
            select(Instalment.status).where(Instalment.loan_id == uuid.UUID(loan_id), Instalment.version == 1)
        ).all()
        assert sorted(old) == ["paid"] + ["superseded"] * 11
        actions = session.scalars(select(AuditRecord.action).where(AuditRecord.object_id == loan_id)).all()
        assert "loan.restructured" in actions
        assert "loan.restructuring_proposed" in actions
        assert first_violation(session) is None
    assert vote(client, tokens[INVESTOR], rid, False).status_code == 409  # decided


def test_a_payment_holiday_rejected_by_the_majority_changes_nothing(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,  # noqa: F811
    clock: FrozenClock,
    verified: None,  # noqa: F811
    drain: Drain,  # noqa: F811
) -> None:
    loan_id = active_p2p_loan(client, tokens, factory, settings, clock, drain)
    before = schedule(client, tokens[SME], loan_id)
    # Refusals: bad input (422), a foreign loan (404), a role that may not propose (403).
    assert (
        propose(client, tokens[SME], loan_id, kind="payment_holiday", months=0, reason="x").status_code == 422
    )
    assert propose(client, tokens[SME], loan_id, kind="holiday", months=3, reason="x").status_code == 422
    assert (
        propose(client, tokens[SME], str(uuid.uuid4()), kind="reamortisation", reason="x").status_code == 404
    )
    assert propose(client, tokens[INVESTOR], loan_id, kind="reamortisation", reason="x").status_code == 403

    made = propose(
        client, tokens[OPERATOR], loan_id, kind="payment_holiday", months=3, reason="Plant repairs"
    )
    assert made.status_code == 201, made.text
    proposal = made.json()
    start = date.fromisoformat(before["instalments"][0]["period_start"])
    preview = proposal["preview"]
    assert len(preview) == 12
    # No payment for three months; the first instalment after the holiday carries the interest
    # accrued since the start (a four-month stub), and the maturity moves three months.
    assert preview[0]["due_date"] == add_months(start, 4).isoformat()
    assert preview[0]["interest_minor"] > 3 * before["instalments"][0]["interest_due_minor"]
    assert preview[-1]["due_date"] == add_months(start, 15).isoformat()
    assert sum(p["principal_minor"] for p in preview) == 10_000_000
    assert proposal["interest_during_holiday"].startswith("accrued")

    rejected = vote(client, tokens[INVESTOR], proposal["id"], False)
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "rejected"
    assert rejected.json()["reject_weight_minor"] == 6_000_000
    assert vote(client, tokens[INSTITUTION], proposal["id"], True).status_code == 409
    after = schedule(client, tokens[SME], loan_id)
    assert after == before
    regulator = client.get(f"/api/v1/restructurings/{proposal['id']}", headers=bearer(tokens[REGULATOR]))
    assert regulator.status_code == 200
    assert regulator.json()["status"] == "rejected"


def test_a_bank_loan_is_restructured_by_the_bank(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,  # noqa: F811
    clock: FrozenClock,
    verified: None,  # noqa: F811
    drain: Drain,  # noqa: F811
) -> None:
    from tests.integration.investing.test_bank_offers import (
        _accept,
        _fund_bank,
        _list_bank_demand,
        _offer,
        _offer_body,
    )

    _fund_bank(client, tokens, factory, clock, drain, "400000.00", 40_000_000)
    demand_id = _list_bank_demand(client, tokens, factory, clock)
    offer = _offer(client, tokens[BANK], _offer_body(demand_id, clock)).json()
    loan_id = _accept(client, tokens[SME], offer["id"]).json()["loan_id"]
    sha = client.get(f"/api/v1/loans/{loan_id}/agreement", headers=bearer(tokens[BANK])).content
    digest = hashlib.sha256(sha).hexdigest()
    for who in (SME, BANK):
        response = client.post(
            f"/api/v1/loans/{loan_id}/agreement/accept", json={"sha256": digest}, headers=bearer(tokens[who])
        )
        assert response.status_code == 200, response.text
    drain()
    before = schedule(client, tokens[SME], loan_id)
    assert before["state"] == "performing"

    made = propose(client, tokens[SME], loan_id, kind="reamortisation", reason="Lower instalments")
    assert made.status_code == 201, made.text
    proposal = made.json()
    assert proposal["lender_kind"] == "bank"
    assert [p["number"] for p in proposal["preview"]] == list(range(1, 13))
    assert vote(client, tokens[INVESTOR], proposal["id"], True).status_code == 404  # not its loan
    approved = vote(client, tokens[BANK], proposal["id"], True)
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "applied"
    after = schedule(client, tokens[SME], loan_id)
    assert after["schedule_version"] == 2
    assert sum(i["principal_due_minor"] for i in after["instalments"]) == 30_000_000
    assert after["instalments"][-1]["due_date"] == before["instalments"][-1]["due_date"]
    with factory() as session:
        assert first_violation(session) is None
