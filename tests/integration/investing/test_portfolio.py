"""The investor's portfolio after a P2P loan is funded and paid out: holdings, cash, pending
commitments, expected and realised return, diversification, and the statement as CSV and PDF."""

from __future__ import annotations

import csv
import hashlib
import io
import math
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import bearer, login_token
from tests.integration.investing.conftest import (
    INSTITUTION,
    INVESTOR,
    OPERATOR,
    REGULATOR,
    SME,
    Drain,
    deposit,
    list_demand,
)
from yunrong.config import Settings
from yunrong.custody import accounts
from yunrong.custody.service import platform_custodian
from yunrong.db import unit_of_work
from yunrong.identity.model import Actor, Context
from yunrong.identity.tables import Organisation
from yunrong.investing.portfolio import FLOW_COLUMNS, HOLDING_COLUMNS
from yunrong.investing.portfolio_routes import router as portfolio_router
from yunrong.investing.tables import Loan
from yunrong.kit.clock import FrozenClock
from yunrong.ledger import service as ledger
from yunrong.ledger.model import transfer
from yunrong.ledger.verify import first_violation


@pytest.fixture
def app(app: FastAPI) -> FastAPI:
    # Until app.py includes the portfolio router, include it here (never twice).
    if not any(getattr(route, "operation_id", None) == "read_portfolio" for route in app.routes):
        app.include_router(portfolio_router)
    return app


def _commit(client: TestClient, token: str, demand_id: uuid.UUID, amount: str) -> Any:
    response = client.post(
        "/api/v1/commitments",
        json={"demand_id": str(demand_id), "amount": amount, "accept_agreement": True},
        headers={**bearer(token), "Idempotency-Key": uuid.uuid4().hex},
    )
    assert response.status_code == 201, response.text
    return response.json()


def _portfolio(client: TestClient, token: str, **params: str) -> Any:
    response = client.get("/api/v1/me/portfolio", params=params, headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.json()


def _check_diversification(p: dict[str, Any]) -> None:
    outstanding = p["outstanding_minor"]
    assert outstanding == sum(h["outstanding_minor"] for h in p["holdings"])
    for name in ("grade", "industry", "region", "product", "enterprise"):
        b = p["diversification"][name]
        assert b["total_minor"] == outstanding == sum(i["outstanding_minor"] for i in b["items"]), name
        if outstanding:
            largest = max(i["outstanding_minor"] for i in b["items"])
            assert b["largest"]["outstanding_minor"] == largest
            hhi = sum(Decimal(i["outstanding_minor"]) ** 2 for i in b["items"]) / Decimal(outstanding) ** 2
            assert abs(Decimal(b["herfindahl"]) - hhi) < Decimal("0.000001")
    for chart in ("by_grade", "by_industry"):
        assert sum(s["outstanding_minor"] for s in p["charts"][chart]["series"]) == outstanding


def _fund_and_pay_out(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    drain: Drain,
) -> tuple[uuid.UUID, str, uuid.UUID]:
    """A 300 000 loan funded by both investors, accepted and paid out; then a second listing that
    the person investor commits 20 000 to (pending)."""
    deposit(client, tokens[INVESTOR], "200000.00")
    deposit(client, tokens[INSTITUTION], "500000.00")
    drain()
    demand_id = list_demand(client, tokens, factory, settings, clock, amount="300000.00")
    _commit(client, tokens[INVESTOR], demand_id, "120000.00")
    _commit(client, tokens[INVESTOR], demand_id, "30000.00")
    assert _commit(client, tokens[INSTITUTION], demand_id, "150000.00")["status"] == "posted"
    funding = client.get(f"/api/v1/demands/{demand_id}/funding", headers=bearer(tokens[SME])).json()
    loan_id = funding["loan_id"]
    pdf = client.get(f"/api/v1/loans/{loan_id}/agreement", headers=bearer(tokens[SME]))
    accepted = client.post(
        f"/api/v1/loans/{loan_id}/agreement/accept",
        json={"sha256": hashlib.sha256(pdf.content).hexdigest()},
        headers=bearer(tokens[SME]),
    )
    assert accepted.status_code == 200, accepted.text
    drain()
    loan = client.get(f"/api/v1/loans/{loan_id}", headers=bearer(tokens[SME])).json()
    assert loan["status"] == "active"
    second = list_demand(client, tokens, factory, settings, clock, amount="100000.00", grade="A")
    assert _commit(client, tokens[INVESTOR], second, "20000.00")["status"] == "pending"
    return uuid.UUID(loan_id), loan["ref"], second


def test_each_investor_sees_its_own_portfolio_cash_and_diversification(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    verified: None,
    drain: Drain,
) -> None:
    loan_id, loan_ref, second = _fund_and_pay_out(client, tokens, factory, settings, clock, drain)
    person = _portfolio(client, tokens[INVESTOR])
    institution = _portfolio(client, tokens[INSTITUTION])

    # Holdings: one per note, the person's two commitments are one note of 150 000.
    [h] = person["holdings"]
    assert h["loan_id"] == str(loan_id)
    assert h["loan_ref"] == loan_ref
    assert h["principal_minor"] == h["outstanding_minor"] == 15_000_000
    assert h["repaid_principal_minor"] == 0
    assert h["grade"] == "BBB"
    assert h["product"] == "p2p_loan"
    assert h["loan_status"] == "active"
    assert Decimal(h["annual_rate"]) == Decimal("0.085")
    with factory() as session:
        loan = session.get(Loan, loan_id)
        assert loan is not None
        enterprise = session.get(Organisation, loan.enterprise_org_id)
        assert enterprise is not None
        assert h["enterprise"] == enterprise.name
    assert h["industry_code"]
    assert len(h["region_code"]) == 6
    # Contract rate less PD × LGD: PD 3 %, no collateral so LGD 60 %.
    assert Decimal(h["expected_return"]) == Decimal("0.085") - Decimal("0.03") * Decimal("0.60")
    assert Decimal(person["expected_return"]) == Decimal(h["expected_return"])

    # Cash: deposit − the loan's share − the pending commitment, which is held.
    cash = person["cash"]
    assert cash["balance_minor"] == 20_000_000 - 15_000_000
    assert cash["held_minor"] == cash["held_for_commitments_minor"] == 2_000_000
    assert cash["available_minor"] == 20_000_000 - 15_000_000 - 2_000_000
    [pending] = person["pending_commitments"]
    assert pending["demand_id"] == str(second)
    assert pending["held_minor"] == 2_000_000
    assert person["principal_minor"] == person["outstanding_minor"] == 15_000_000
    _check_diversification(person)
    assert person["diversification"]["enterprise"]["largest"]["share"] == "1.0000"
    assert person["diversification"]["grade"]["herfindahl"] == "1.000000"
    assert [s["key"] for s in person["charts"]["by_grade"]["series"]] == ["BBB"]
    # Funded and valued on the same day: no time has passed, so no annualised return.
    assert person["realised_xirr"] is None
    flows = person["xirr_flows"]
    assert sorted(f["amount_minor"] for f in flows) == [-12_000_000, -3_000_000, 15_000_000]
    assert flows[-1] == {"on": person["as_of"], "amount_minor": 15_000_000}

    # The other investor sees only its own note, its own cash and nothing pending.
    [other] = institution["holdings"]
    assert other["note_ref"] != h["note_ref"]
    assert other["loan_ref"] == loan_ref
    assert other["principal_minor"] == 15_000_000
    assert institution["cash"]["available_minor"] == 50_000_000 - 15_000_000
    assert institution["cash"]["held_minor"] == 0
    assert institution["pending_commitments"] == []
    _check_diversification(institution)

    # A future valuation date is refused; the enterprise and other roles have no portfolio.
    tomorrow = (clock.now() + timedelta(days=1)).date().isoformat()
    future = client.get("/api/v1/me/portfolio", params={"as_of": tomorrow}, headers=bearer(tokens[INVESTOR]))
    assert future.status_code == 422
    for role in (SME, OPERATOR, REGULATOR):
        for path in ("/api/v1/me/portfolio", "/api/v1/me/portfolio/statement"):
            assert client.get(path, headers=bearer(tokens[role])).status_code == 403, (role, path)


def test_repayments_booked_to_the_ledger_move_outstanding_cash_and_realised_return(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    verified: None,
    drain: Drain,
) -> None:
    _loan_id, loan_ref, _second = _fund_and_pay_out(client, tokens, factory, settings, clock, drain)
    funded_on = _portfolio(client, tokens[INVESTOR])["as_of"]
    clock.advance(timedelta(days=30))
    token = login_token(client, INVESTOR)  # the first token has expired

    # Thirty days on, nothing repaid: outstanding at par, so the realised return is exactly 0.
    before = _portfolio(client, token)
    assert Decimal(before["realised_xirr"]) == 0
    assert before["outstanding_minor"] == 15_000_000

    # What loan servicing (step 7) will book, by the convention the portfolio reads: the
    # enterprise's repayment arrives in the loan's collection account at the custodian, then a
    # principal and an interest distribution to the investor, one part per entry.
    ctx = Context(actor=Actor.system("test"), clock=clock, request_id="test")
    with unit_of_work(factory) as session:
        investor = session.scalars(
            select(Organisation).where(Organisation.name == before["investor_name"])
        ).one()
        escrow = accounts.escrow_cash(session, ctx, platform_custodian(session), "CNY")
        collection = accounts.loan_collection(session, ctx, loan_ref, "CNY")
        mine = accounts.investor_available(session, ctx, investor, "CNY")
        ledger.post_entry(
            session,
            ctx=ctx,
            legs=transfer(escrow.id, collection.id, 5_100_000, "CNY"),
            kind="collection",
            description=f"repayment of {loan_ref}",
        )
        for kind, amount in (("distribution_principal", 5_000_000), ("distribution_interest", 100_000)):
            ledger.post_entry(
                session,
                ctx=ctx,
                legs=transfer(collection.id, mine.id, amount, "CNY"),
                kind=kind,
                description=f"{kind} of {loan_ref}",
            )

    after = _portfolio(client, token)
    [h] = after["holdings"]
    assert h["repaid_principal_minor"] == 5_000_000
    assert h["outstanding_minor"] == after["outstanding_minor"] == 10_000_000
    assert after["cash"]["balance_minor"] == before["cash"]["balance_minor"] + 5_100_000
    assert after["cash"]["available_minor"] == before["cash"]["available_minor"] + 5_100_000
    _check_diversification(after)
    # −150 000 thirty days ago; +51 000 and 100 000 outstanding today: (151/150)^(365/30) − 1.
    expected = (15_100_000 / 15_000_000) ** (365 / 30) - 1
    assert math.isclose(float(after["realised_xirr"]), expected, rel_tol=1e-6)
    assert after["xirr_flows"][-1] == {"on": after["as_of"], "amount_minor": 10_000_000}

    # Valued at the funding date, before the repayment: the position as it was then.
    then = _portfolio(client, token, as_of=funded_on)
    assert then["outstanding_minor"] == 15_000_000
    assert then["realised_xirr"] is None
    assert then["cash"]["held_minor"] == 2_000_000

    # The statement: holdings (header, one row per note), then every movement of the period.
    response = client.get("/api/v1/me/portfolio/statement", params={"format": "csv"}, headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert tuple(rows[0]) == HOLDING_COLUMNS
    blank = rows.index([])
    holdings = rows[1:blank]
    assert [r[1] for r in holdings] == [loan_ref]
    assert holdings[0][2] == h["enterprise"]
    assert holdings[0][HOLDING_COLUMNS.index("outstanding")] == "100000.00"
    assert tuple(rows[blank + 1]) == FLOW_COLUMNS
    flows = rows[blank + 2 :]
    assert sorted(r[1] for r in flows) == ["deposit", "interest", "investment", "investment", "principal"]
    net = sum(Decimal(r[2]) for r in flows)
    assert net * 100 == after["cash"]["balance_minor"]

    pdf = client.get("/api/v1/me/portfolio/statement", params={"format": "pdf"}, headers=bearer(token))
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert len(pdf.content) > 5_000

    # The other investor's statement has only its own note.
    other = login_token(client, INSTITUTION)
    theirs = client.get("/api/v1/me/portfolio/statement", params={"format": "csv"}, headers=bearer(other))
    their_rows = list(csv.reader(io.StringIO(theirs.content.decode("utf-8-sig"))))
    their_notes = their_rows[1 : their_rows.index([])]
    assert len(their_notes) == 1
    assert their_notes[0][0] != holdings[0][0]

    with factory() as session:
        assert first_violation(session) is None
