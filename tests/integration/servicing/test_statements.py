"""The statements of step 7 on both databases: after a funded, paid-out P2P loan of 300 000.00 CNY
held 40 % / 60 % by two investors, the enterprise repays its first instalment on its due date and the
custodian confirms it. The loan statement shows the instalment due, then paid, with the repayment and
its allocation; each investor's income statement shows its own share, and its figures are exactly
the Distribution rows and what the ledger credited to its account. CSV (with a BOM) and PDF too;
refusals for the note holders, other parties and bad periods."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import bearer, demo_tokens
from tests.integration.investing.conftest import (
    BANK,
    INSTITUTION,
    INVESTOR,
    OPERATOR,
    REGULATOR,
    SME,
    Drain,
    available,
    deposit,
    list_demand,
)
from tests.integration.investing.conftest import drain as drain
from tests.integration.investing.conftest import settings as settings
from tests.integration.investing.conftest import verified as verified
from yunrong.config import Settings
from yunrong.custody.accounts import Purpose
from yunrong.identity.model import Actor, Context
from yunrong.identity.tables import Organisation
from yunrong.investing.tables import Loan
from yunrong.kit.clock import FrozenClock, business_date
from yunrong.ledger.tables import LedgerAccount, Posting
from yunrong.ledger.verify import first_violation
from yunrong.servicing.repayment_routes import router as repayment_router
from yunrong.servicing.statement_routes import router as statement_router
from yunrong.servicing.tables import Distribution, Instalment

SHARES = {INVESTOR: "120000.00", INSTITUTION: "180000.00"}


@pytest.fixture
def app(app: FastAPI) -> FastAPI:
    """The repayment and statement routes (app.py includes them; added here when it does not yet)."""
    names = {getattr(r, "name", "") for r in app.routes}
    if "create_repayment" not in names:
        app.include_router(repayment_router)
    if "read_loan_statement" not in names:
        app.include_router(statement_router)
    return app


def _active_loan(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    drain: Drain,
) -> uuid.UUID:
    """A P2P loan funded by the two investors, its agreement accepted and paid out by the custodian
    (the path of tests/integration/investing/test_funding_to_disbursement.py)."""
    deposit(client, tokens[INVESTOR], "200000.00")
    deposit(client, tokens[INSTITUTION], "500000.00")
    drain()
    demand_id = list_demand(client, tokens, factory, settings, clock, amount="300000.00")
    for who, amount in SHARES.items():
        committed = client.post(
            "/api/v1/commitments",
            json={"demand_id": str(demand_id), "amount": amount, "accept_agreement": True},
            headers={**bearer(tokens[who]), "Idempotency-Key": uuid.uuid4().hex},
        )
        assert committed.status_code == 201, committed.text
    funding = client.get(f"/api/v1/demands/{demand_id}/funding", headers=bearer(tokens[SME])).json()
    assert funding["status"] == "funded"
    loan_id = uuid.UUID(funding["loan_id"])
    pdf = client.get(f"/api/v1/loans/{loan_id}/agreement", headers=bearer(tokens[SME]))
    accepted = client.post(
        f"/api/v1/loans/{loan_id}/agreement/accept",
        json={"sha256": hashlib.sha256(pdf.content).hexdigest()},
        headers=bearer(tokens[SME]),
    )
    assert accepted.status_code == 200, accepted.text
    drain()  # the custodian confirms the payout: the loan is active and its schedule written
    with factory() as session:
        loan = session.get(Loan, loan_id)
        assert loan is not None
        assert loan.status == "active"
    return loan_id


@pytest.fixture
def world(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    verified: None,
    drain: Drain,
) -> Iterator[dict[str, Any]]:
    loan_id = _active_loan(client, tokens, factory, settings, clock, drain)
    yield {"loan_id": loan_id, "tokens": dict(tokens)}
    with factory() as session:
        assert first_violation(session) is None


def _statement(client: TestClient, token: str, loan_id: uuid.UUID, **params: str) -> Any:
    return client.get(f"/api/v1/loans/{loan_id}/statement", params=params, headers=bearer(token))


def _income(client: TestClient, token: str, **params: str) -> Any:
    return client.get("/api/v1/me/income", params=params, headers=bearer(token))


def _org(factory: sessionmaker[Session], client: TestClient, token: str) -> uuid.UUID:
    return uuid.UUID(client.get("/api/v1/me", headers=bearer(token)).json()["organisation"]["id"])


def _ledger_credits(factory: sessionmaker[Session], org_id: uuid.UUID) -> int:
    """Everything the repayment distributions credited to the investor's available account."""
    with factory() as session:
        return int(
            session.scalar(
                select(func.coalesce(func.sum(Posting.amount), 0))
                .join(LedgerAccount, LedgerAccount.id == Posting.account_id)
                .where(
                    LedgerAccount.owner_org_id == org_id,
                    LedgerAccount.purpose == Purpose.INVESTOR_AVAILABLE.value,
                    Posting.side == "C",
                    Posting.entry_id.in_(select(Distribution.entry_id)),
                )
            )
            or 0
        )


def test_the_first_instalment_repaid_shows_in_both_statements(
    client: TestClient,
    world: dict[str, Any],
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    drain: Drain,
) -> None:
    loan_id: uuid.UUID = world["loan_id"]
    tokens: dict[str, str] = world["tokens"]

    before = _statement(client, tokens[SME], loan_id).json()
    first = before["instalments"][0]
    assert [i["standing"] for i in before["instalments"]] == ["upcoming"] * 12
    assert before["summary"]["due_now_minor"] == 0
    assert before["summary"]["next_due_date"] == first["due_date"]
    assert before["summary"]["principal_outstanding_minor"] == 30_000_000
    assert sum(i["principal_due_minor"] for i in before["instalments"]) == 30_000_000
    assert before["repayments"] == []

    # The due date of the first instalment, in Shanghai; tokens last an hour.
    due = date.fromisoformat(first["due_date"])
    while business_date(clock.now(), settings.timezone) < due:
        clock.advance(timedelta(days=1))
    tokens.update(demo_tokens(client, factory, settings, Context(actor=Actor.system("t"), clock=clock)))
    payment = first["payment_minor"]
    assert payment == first["principal_due_minor"] + first["interest_due_minor"]

    on_due = _statement(client, tokens[SME], loan_id).json()
    assert on_due["instalments"][0]["standing"] == "due"
    assert on_due["summary"]["due_now_minor"] == payment
    assert on_due["summary"]["overdue_minor"] == 0
    assert on_due["summary"]["to_pay_now_minor"] == payment

    cash_before = {who: available(client, tokens[who]) for who in SHARES}
    created = client.post(
        f"/api/v1/loans/{loan_id}/repayments",
        json={"amount": f"{payment // 100}.{payment % 100:02d}"},
        headers={**bearer(tokens[SME]), "Idempotency-Key": uuid.uuid4().hex},
    )
    assert created.status_code == 202, created.text
    pending = _statement(client, tokens[SME], loan_id).json()
    assert [r["status"] for r in pending["repayments"]] == ["pending"]
    assert pending["instalments"][0]["standing"] == "due"  # nothing allocated before the bank confirms
    assert _income(client, tokens[INVESTOR]).json()["totals"]["net_minor"] == 0

    drain()  # the custodian confirms: allocated and distributed

    after = _statement(client, tokens[SME], loan_id).json()
    one = after["instalments"][0]
    assert one["standing"] == one["status"] == "paid"
    assert one["outstanding_minor"] == 0
    assert one["principal_paid_minor"] == first["principal_due_minor"]
    assert one["interest_paid_minor"] == first["interest_due_minor"]
    assert one["paid_on"] == due.isoformat()
    assert [i["standing"] for i in after["instalments"][1:]] == ["upcoming"] * 11
    summary = after["summary"]
    assert summary["due_now_minor"] == summary["overdue_minor"] == summary["days_past_due"] == 0
    assert summary["paid_principal_minor"] == first["principal_due_minor"]
    assert summary["paid_interest_minor"] == first["interest_due_minor"]
    assert summary["principal_outstanding_minor"] == 30_000_000 - first["principal_due_minor"]
    assert summary["next_due_date"] == after["instalments"][1]["due_date"]
    [repaid] = after["repayments"]
    assert repaid["id"] == created.json()["id"]
    assert repaid["status"] == "allocated"
    assert repaid["value_date"] == due.isoformat()
    assert (repaid["principal_minor"], repaid["interest_minor"], repaid["held_minor"]) == (
        first["principal_due_minor"],
        first["interest_due_minor"],
        0,
    )
    # Supervisors read the same statement.
    assert _statement(client, tokens[REGULATOR], loan_id).json()["summary"] == summary

    nets = 0
    principals = 0
    interests = 0
    fees = 0
    for who in SHARES:
        org_id = _org(factory, client, tokens[who])
        st = _income(client, tokens[who]).json()
        with factory() as session:
            mine = session.scalars(select(Distribution).where(Distribution.investor_org_id == org_id)).all()
            rows = [(d.principal, d.interest, d.penalty, d.service_fee, d.net) for d in mine]
        assert len(rows) == 1
        principal, interest, penalty, fee, net = rows[0]
        t = st["totals"]
        assert (t["principal_minor"], t["interest_minor"], t["penalty_minor"]) == (
            principal,
            interest,
            penalty,
        )
        assert (t["service_fee_minor"], t["net_minor"]) == (fee, net)
        assert t["income_minor"] == interest + penalty
        assert net == principal + interest + penalty - fee
        # What the ledger credited is what the statement says, and what the investor's cash rose by.
        assert st["ledger_net_minor"] == net == _ledger_credits(factory, org_id)
        assert st["reconciled"] is True
        assert available(client, tokens[who]) - cash_before[who] == net
        [by_loan] = st["by_loan"]
        assert by_loan["loan_id"] == str(loan_id)
        assert by_loan["net_minor"] == net
        assert by_loan["enterprise"]
        month = [m for m in st["by_month"] if m["net_minor"]]
        assert [m["month"] for m in month] == [due.strftime("%Y-%m")]
        assert month[0]["principal_minor"] == principal
        assert sum(m["net_minor"] for m in st["by_month"]) == net
        assert [line["value_date"] for line in st["lines"]] == [due.isoformat()]
        assert st["since"] == st["until"] == due.isoformat()
        nets += net
        principals += principal
        interests += interest
        fees += fee
    # The two shares add up to the instalment exactly, pro rata 40 / 60 to the fen (largest remainder).
    assert principals == first["principal_due_minor"]
    assert interests == first["interest_due_minor"]
    assert nets == payment - fees
    investor_share = _income(client, tokens[INVESTOR]).json()["totals"]["principal_minor"]
    assert abs(investor_share * 5 - principals * 2) <= 5

    # A period without income: zero, and the months are there for the chart.
    later = _income(
        client,
        tokens[INVESTOR],
        since=(due + timedelta(days=1)).isoformat(),
        until=(due + timedelta(days=45)).isoformat(),
    ).json()
    assert later["totals"]["net_minor"] == 0
    assert later["lines"] == []
    assert len(later["by_month"]) >= 2
    assert {m["net_minor"] for m in later["by_month"]} == {0}


def test_statements_as_csv_and_pdf(
    client: TestClient, world: dict[str, Any], clock: FrozenClock, settings: Settings, drain: Drain
) -> None:
    loan_id: uuid.UUID = world["loan_id"]
    tokens: dict[str, str] = world["tokens"]
    csv_response = _statement(client, tokens[SME], loan_id, format="csv")
    assert csv_response.status_code == 200
    assert csv_response.headers["content-type"].startswith("text/csv")
    assert csv_response.content.startswith("\ufeff".encode())
    text = csv_response.content.decode("utf-8-sig")
    ref = _statement(client, tokens[SME], loan_id).json()["loan"]["ref"]
    assert ref in text
    assert "到期日 Due date" in text
    assert text.count(",upcoming,") == 12
    pdf = _statement(client, tokens[SME], loan_id, format="pdf")
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF")
    assert "attachment" in pdf.headers["content-disposition"]

    income_csv = _income(client, tokens[INSTITUTION], format="csv")
    assert income_csv.status_code == 200
    assert income_csv.content.startswith("\ufeff".encode())
    assert "实收 Net received" in income_csv.content.decode("utf-8-sig")
    income_pdf = _income(client, tokens[INSTITUTION], format="pdf")
    assert income_pdf.status_code == 200
    assert income_pdf.content.startswith(b"%PDF")
    assert _income(client, tokens[INSTITUTION], format="xml").status_code == 422


def test_who_reads_which_statement(
    client: TestClient, world: dict[str, Any], factory: sessionmaker[Session]
) -> None:
    loan_id: uuid.UUID = world["loan_id"]
    tokens: dict[str, str] = world["tokens"]
    # A note holder reads its income statement, not the borrower's loan statement.
    refused = _statement(client, tokens[INVESTOR], loan_id)
    assert refused.status_code == 403
    assert "income statement" in refused.text
    # The bank is not a party to this crowd loan: it learns nothing.
    hidden = _statement(client, tokens[BANK], loan_id)
    assert hidden.status_code == 404
    with factory() as session:
        loan = session.get(Loan, loan_id)
        assert loan is not None
        assert loan.ref not in hidden.text
    assert _statement(client, tokens[OPERATOR], loan_id).status_code == 200
    assert _statement(client, tokens[SME], uuid.uuid4()).status_code == 404
    # Only investors have an income statement.
    assert _income(client, tokens[SME]).status_code == 403
    assert _income(client, tokens[OPERATOR]).status_code == 403
    bad = _income(client, tokens[INVESTOR], since="2026-12-31", until="2026-12-01")
    assert bad.status_code == 422
    assert "since" in bad.text
    with factory() as session:  # nothing was written by reading
        assert session.scalar(select(func.count()).select_from(Distribution)) == 0
        assert session.scalar(select(func.count()).select_from(Instalment)) == 12
        assert session.scalar(select(func.count()).select_from(Organisation)) > 0
