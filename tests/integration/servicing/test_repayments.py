"""Repayments from end to end: the enterprise pays through the custodian, the bank confirms, the
money is allocated (fees → penalty → interest → principal, oldest instalment first) and distributed
to the two note holders exactly, after the platform's fee on interest; partial payments, an
overpayment held then used, an early partial repayment whose preview is what gets written, an early
full repayment that closes the loan, and refusals that book nothing. Every balance is asserted."""

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

from tests.conftest import bearer, login_token
from tests.integration.investing.conftest import (
    INSTITUTION,
    INVESTOR,
    OPERATOR,
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
from yunrong.custody import accounts
from yunrong.custody.tables import Instruction
from yunrong.db import unit_of_work
from yunrong.identity.model import Actor, Context
from yunrong.investing.tables import Loan, Note
from yunrong.kit.clock import FrozenClock, business_date
from yunrong.ledger import service as ledger
from yunrong.ledger.model import transfer
from yunrong.ledger.verify import first_violation
from yunrong.servicing import repayments
from yunrong.servicing.allocation import service_fee
from yunrong.servicing.repayment_routes import router as repayment_router
from yunrong.servicing.tables import Distribution, Instalment, LoanServicing, Repayment

FEE_BP = repayments.SERVICE_FEE_BP


@pytest.fixture
def app(app: FastAPI) -> FastAPI:
    """The repayment routes (app.py includes them; added here when it does not yet)."""
    if not any(getattr(r, "name", "") == "create_repayment" for r in app.routes):
        app.include_router(repayment_router)
    return app


class Life:
    """One active P2P loan of 300 000.00 CNY, 12 months, 8.5 %, two note holders of 150 000.00."""

    def __init__(
        self,
        client: TestClient,
        factory: sessionmaker[Session],
        settings: Settings,
        clock: FrozenClock,
        drain: Drain,
        tokens: dict[str, str],
    ) -> None:
        self.client, self.factory, self.settings, self.clock, self.drain = (
            client,
            factory,
            settings,
            clock,
            drain,
        )
        self.tokens = dict(tokens)
        deposit(client, tokens[INVESTOR], "200000.00")
        deposit(client, tokens[INSTITUTION], "500000.00")
        drain()
        demand_id = list_demand(client, tokens, factory, settings, clock, amount="300000.00")
        for who, amount in ((INVESTOR, "150000.00"), (INSTITUTION, "150000.00")):
            r = client.post(
                "/api/v1/commitments",
                json={"demand_id": str(demand_id), "amount": amount, "accept_agreement": True},
                headers={**bearer(tokens[who]), "Idempotency-Key": uuid.uuid4().hex},
            )
            assert r.status_code == 201, r.text
        funding = client.get(f"/api/v1/demands/{demand_id}/funding", headers=bearer(tokens[SME])).json()
        self.loan_id = uuid.UUID(funding["loan_id"])
        pdf = client.get(f"/api/v1/loans/{self.loan_id}/agreement", headers=bearer(tokens[SME]))
        accepted = client.post(
            f"/api/v1/loans/{self.loan_id}/agreement/accept",
            json={"sha256": hashlib.sha256(pdf.content).hexdigest()},
            headers=bearer(tokens[SME]),
        )
        assert accepted.status_code == 200, accepted.text
        drain()
        with factory() as session:
            loan = session.get(Loan, self.loan_id)
            assert loan is not None
            assert loan.status == "active"
            self.ref = loan.ref
        self.ctx = Context(actor=Actor.system("test"), clock=clock, request_id="test")

    # --- time and the end of day ---------------------------------------------------------------

    def today(self) -> date:
        return business_date(self.clock.now(), self.settings.timezone)

    def advance_to(self, day: date) -> None:
        """Move to 10:00 in Shanghai on ``day`` and log in again (tokens last an hour)."""
        while self.today() < day:
            self.clock.advance(timedelta(days=1))
        for who in (SME, INVESTOR, INSTITUTION):
            self.tokens[who] = login_token(self.client, who)

    def eod_through(self, day: date) -> None:
        """What the end of day has done by ``day``: instalments due on or before it marked due, their
        interest accrued and booked on the loan book (DR loan_book, CR investor_claims)."""
        with unit_of_work(self.factory) as session:
            s = session.get(LoanServicing, self.loan_id)
            assert s is not None
            rows = repayments._rows(session, self.loan_id, s.schedule_version)
            accrued = 0
            for row in rows:
                if row.status == "scheduled" and row.due_date <= day:
                    row.status = "due"
                    accrued += row.interest_due
            if accrued:
                s.interest_accrued += accrued
                ledger.post_entry(
                    session,
                    ctx=self.ctx,
                    legs=transfer(
                        accounts.loan_book(session, self.ctx, "CNY").id,
                        accounts.investor_claims(session, self.ctx, "CNY").id,
                        accrued,
                        "CNY",
                    ),
                    kind="interest_accrual",
                    description="test end of day",
                )
            s.last_accrual_date = day

    # --- reading -----------------------------------------------------------------------------------

    def rows(self) -> list[Instalment]:
        with self.factory() as session:
            s = session.get(LoanServicing, self.loan_id)
            assert s is not None
            return repayments._rows(session, self.loan_id, s.schedule_version)

    def servicing(self) -> LoanServicing:
        with self.factory() as session:
            s = session.get(LoanServicing, self.loan_id)
            assert s is not None
            session.expunge(s)
            return s

    def classes(self) -> dict[str, int]:
        with self.factory() as session:
            return {p: b.posted for (p, c), b in ledger.balances_by_purpose(session, "CNY").items()}

    def collection(self) -> int:
        with self.factory() as session:
            return ledger.balance(
                session, accounts.loan_collection(session, self.ctx, self.ref, "CNY").id
            ).posted

    def available(self) -> dict[str, int]:
        return {who: available(self.client, self.tokens[who]) for who in (INVESTOR, INSTITUTION)}

    def distributions(self, repayment_id: str) -> list[Distribution]:
        with self.factory() as session:
            return list(
                session.scalars(select(Distribution).where(Distribution.source_id == uuid.UUID(repayment_id)))
            )

    # --- acting ------------------------------------------------------------------------------------

    def repay(self, amount_minor: int, key: str | None = None, **body: Any) -> Any:
        response = self.client.post(
            f"/api/v1/loans/{self.loan_id}/repayments",
            json={"amount": f"{amount_minor / 100:.2f}", **body},
            headers={**bearer(self.tokens[SME]), "Idempotency-Key": key or uuid.uuid4().hex},
        )
        assert response.status_code == 202, response.text
        return response.json()

    def repaid(self, amount_minor: int, **body: Any) -> dict[str, Any]:
        """Repay, let the bank confirm, and return the repayment as allocated."""
        created = self.repay(amount_minor, **body)
        assert created["status"] == "pending"
        self.drain()
        listed = self.client.get(
            f"/api/v1/loans/{self.loan_id}/repayments", headers=bearer(self.tokens[SME])
        ).json()
        row: dict[str, Any] = next(r for r in listed if r["id"] == created["id"])
        assert row["status"] == "allocated", row
        return row


@pytest.fixture
def life(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    verified: None,
    drain: Drain,
) -> Iterator[Life]:
    loan_life = Life(client, factory, settings, clock, drain, tokens)
    yield loan_life
    with factory() as session:
        assert first_violation(session) is None


def _check_distribution(life: Life, repayment: dict[str, Any], principal: int, interest: int) -> int:
    """Two notes of equal principal: the parts sum exactly; returns the platform's fee."""
    parts = life.distributions(repayment["id"])
    assert len(parts) == 2
    assert sum(d.principal for d in parts) == principal
    assert sum(d.interest for d in parts) == interest
    fee = service_fee(interest, FEE_BP)
    assert sum(d.service_fee for d in parts) == fee
    assert sum(d.net for d in parts) == principal + interest - fee
    assert max(d.principal for d in parts) - min(d.principal for d in parts) <= 1
    for d in parts:
        assert d.net == d.principal + d.interest + d.penalty - d.service_fee
    return fee


def test_an_on_time_repayment_is_allocated_and_distributed_exactly(life: Life) -> None:
    first = life.rows()[0]
    life.advance_to(first.due_date)
    life.eod_through(first.due_date)
    before, classes = life.available(), life.classes()
    payment = first.principal_due + first.interest_due

    key = uuid.uuid4().hex
    created = life.repay(payment, key=key)
    replay = life.client.post(
        f"/api/v1/loans/{life.loan_id}/repayments",
        json={"amount": f"{payment / 100:.2f}"},
        headers={**bearer(life.tokens[SME]), "Idempotency-Key": key},
    )
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["id"] == created["id"]
    assert life.collection() == 0  # nothing booked before the bank confirms
    life.drain()

    repayment = next(
        r
        for r in life.client.get(
            f"/api/v1/loans/{life.loan_id}/repayments", headers=bearer(life.tokens[SME])
        ).json()
        if r["id"] == created["id"]
    )
    assert repayment["status"] == "allocated"
    assert repayment["allocation"]["interest"] == first.interest_due
    assert repayment["allocation"]["principal"] == first.principal_due
    assert repayment["allocation"]["held"] == 0
    fee = _check_distribution(life, repayment, first.principal_due, first.interest_due)
    assert fee == (first.interest_due * 1_000 + 5_000) // 10_000
    parts = life.distributions(repayment["id"])
    after = life.available()
    gained = sorted(after[w] - before[w] for w in after)
    assert gained == sorted(d.net for d in parts)
    # Equal notes: each gets half of the principal and the interest (odd fen to the first note),
    # less its half of the fee.
    half_p, half_i, half_f = first.principal_due // 2, first.interest_due // 2, fee // 2
    assert sum(gained) == payment - fee
    assert gained[0] >= half_p + half_i - half_f - 1
    now = life.classes()
    assert now["platform_fee_income"] - classes["platform_fee_income"] == fee
    assert now["escrow_cash"] - classes["escrow_cash"] == payment
    assert now["investor_available"] - classes["investor_available"] == payment - fee
    assert now.get("loan_collection", 0) == 0
    assert now["loan_book"] == now["investor_claims"] == 30_000_000 - first.principal_due

    row = life.rows()[0]
    assert row.status == "paid"
    assert row.paid_on == first.due_date
    s = life.servicing()
    assert s.principal_outstanding == 30_000_000 - first.principal_due
    assert s.interest_accrued == 0
    assert s.next_due_date == life.rows()[1].due_date
    # The investor sees its income in the loan's repayments too.
    seen = life.client.get(f"/api/v1/loans/{life.loan_id}/repayments", headers=bearer(life.tokens[INVESTOR]))
    assert seen.status_code == 200
    assert [r["id"] for r in seen.json()] == [created["id"]]


def test_partial_then_overpayment_held_then_used(life: Life) -> None:
    first, second, third = life.rows()[:3]
    life.advance_to(second.due_date)
    life.eod_through(second.due_date)  # two instalments due: the oldest is paid first
    half = (first.principal_due + first.interest_due) // 2
    partial = life.repaid(half)
    assert partial["allocation"]["interest"] == first.interest_due
    assert partial["allocation"]["principal"] == half - first.interest_due
    rows = life.rows()
    assert rows[0].status == "due"
    assert rows[0].principal_paid == half - first.interest_due
    assert rows[1].principal_paid == rows[1].interest_paid == 0
    _check_distribution(life, partial, half - first.interest_due, first.interest_due)

    owed = (first.principal_due + first.interest_due - half) + second.principal_due + second.interest_due
    extra = 100_000
    over = life.repaid(owed + extra)
    assert over["allocation"]["held"] == extra
    assert [r.status for r in life.rows()[:3]] == ["paid", "paid", "scheduled"]
    assert life.servicing().overpayment == extra
    assert life.collection() == extra  # held in the loan's collection account
    s = life.servicing()
    assert s.principal_outstanding == 30_000_000 - first.principal_due - second.principal_due

    # When the third instalment falls due, the overpayment held goes to it first.
    life.advance_to(third.due_date)
    life.eod_through(third.due_date)
    with unit_of_work(life.factory) as session:
        plan = repayments.apply_overpayment(
            session, ctx=life.ctx, loan_id=life.loan_id, value_date=third.due_date
        )
        assert plan is not None
        assert plan.allocation.allocated == extra
    assert life.collection() == 0
    assert life.servicing().overpayment == 0
    rest = third.principal_due + third.interest_due - extra
    used = life.repaid(rest)
    assert used["allocation"]["held"] == 0
    assert life.rows()[2].status == "paid"
    assert life.collection() == 0
    c = life.classes()
    paid_principal = first.principal_due + second.principal_due + third.principal_due
    assert c["loan_book"] == c["investor_claims"] == 30_000_000 - paid_principal
    with life.factory() as session:
        returned = session.scalar(
            select(func.sum(Distribution.principal)).where(Distribution.loan_id == life.loan_id)
        )
    assert returned == paid_principal


def test_early_partial_repayment_preview_is_what_is_written_then_early_full_closes(life: Life) -> None:
    first = life.rows()[0]
    life.advance_to(first.due_date)
    life.eod_through(first.due_date)
    life.repaid(first.principal_due + first.interest_due)
    life.advance_to(first.due_date + timedelta(days=10))
    instalments_left = sum(1 for r in life.rows() if r.status == "scheduled")

    amount = 10_000_000  # 100 000.00
    body = {"amount": "100000.00", "early_option": "smaller_instalment"}
    preview = life.client.post(
        f"/api/v1/loans/{life.loan_id}/repayments/preview", json=body, headers=bearer(life.tokens[SME])
    )
    assert preview.status_code == 200, preview.text
    shown = preview.json()
    outstanding = 30_000_000 - first.principal_due
    assert shown["interest_to_date_minor"] > 0
    assert shown["principal_after_minor"] == outstanding - (amount - shown["interest_to_date_minor"])
    new_rows = [r for r in shown["instalments"] if r["status"] == "scheduled"]
    assert len(new_rows) == instalments_left  # the term is kept
    assert sum(r["principal_due_minor"] for r in new_rows) == shown["principal_after_minor"]
    assert life.servicing().schedule_version == 1  # a preview writes nothing

    repayment = life.repaid(amount, kind="early_partial", early_option="smaller_instalment")
    assert repayment["allocation"]["kind_applied"] == "early_partial"
    s = life.servicing()
    assert s.schedule_version == 2
    assert s.principal_outstanding == shown["principal_after_minor"]
    written = [
        {
            "number": r.number,
            "period_start": r.period_start.isoformat(),
            "due_date": r.due_date.isoformat(),
            "principal_due_minor": r.principal_due,
            "interest_due_minor": r.interest_due,
            "payment_minor": r.principal_due + r.interest_due,
            "status": r.status,
        }
        for r in life.rows()
    ]
    assert written == shown["instalments"]
    assert sum(r.principal_due for r in life.rows()) == 30_000_000
    assert shown["instalment_minor"] < first.principal_due + first.interest_due
    with life.factory() as session:
        superseded = session.scalar(
            select(func.count()).where(Instalment.loan_id == life.loan_id, Instalment.status == "superseded")
        )
    assert superseded == 12
    _check_distribution(
        life, repayment, amount - shown["interest_to_date_minor"], shown["interest_to_date_minor"]
    )

    # Shorter term: keeping the instalment, the schedule ends sooner.
    life.advance_to(life.today() + timedelta(days=3))
    shorter = life.client.post(
        f"/api/v1/loans/{life.loan_id}/repayments/preview",
        json={"amount": "50000.00", "early_option": "shorter_term"},
        headers=bearer(life.tokens[SME]),
    ).json()
    left_now = sum(1 for r in life.rows() if r.status == "scheduled")
    assert len([r for r in shorter["instalments"] if r["status"] == "scheduled"]) < left_now

    # Early repayment in full: less than the payoff is refused and books nothing.
    payoff = shorter["payoff_minor"]
    too_little = life.client.post(
        f"/api/v1/loans/{life.loan_id}/repayments",
        json={"amount": f"{(payoff - 1) / 100:.2f}", "kind": "early_full"},
        headers={**bearer(life.tokens[SME]), "Idempotency-Key": uuid.uuid4().hex},
    )
    assert too_little.status_code == 422
    before = life.available()
    classes = life.classes()
    closing = life.repaid(payoff + 5_000, kind="early_full")  # 50.00 too much: refunded
    assert closing["allocation"]["closed"] is True
    assert closing["allocation"]["refunded"] == 5_000
    s = life.servicing()
    assert s.state == "closed"
    assert s.closed_on == life.today()
    assert s.principal_outstanding == 0
    assert all(r.status == "paid" for r in life.rows())
    assert sum(r.principal_due for r in life.rows()) == 30_000_000
    c = life.classes()
    assert c["loan_book"] == c["investor_claims"] == 0
    assert c.get("loan_collection", 0) == 0
    interest = payoff - (30_000_000 - first.principal_due - (amount - shown["interest_to_date_minor"]))
    fee = _check_distribution(life, closing, payoff - interest, interest)
    assert sum(life.available().values()) - sum(before.values()) == payoff - fee
    assert c["platform_fee_income"] - classes["platform_fee_income"] == fee
    with life.factory() as session:
        refunds = session.scalars(select(Instruction).where(Instruction.kind == "payout")).all()
        assert sorted(i.amount for i in refunds)[0] == 5_000  # the refund, beside the loan's payout
    life.drain()  # the bank pays the refund out
    assert life.classes()["enterprise_payout"] == 0

    # A closed loan takes no more repayments.
    closed = life.client.post(
        f"/api/v1/loans/{life.loan_id}/repayments",
        json={"amount": "10.00"},
        headers={**bearer(life.tokens[SME]), "Idempotency-Key": uuid.uuid4().hex},
    )
    assert closed.status_code == 404


def test_bad_repayments_are_refused_and_book_nothing(life: Life, tokens: dict[str, str]) -> None:
    def post(token: str, body: dict[str, Any], loan_id: uuid.UUID | None = None) -> int:
        response = life.client.post(
            f"/api/v1/loans/{loan_id or life.loan_id}/repayments",
            json=body,
            headers={**bearer(token), "Idempotency-Key": uuid.uuid4().hex},
        )
        assert response.headers["content-type"].startswith("application/problem+json")
        return int(response.status_code)

    sme = life.tokens[SME]
    assert post(sme, {"amount": "-5.00"}) == 422
    assert post(sme, {"amount": "0"}) == 422
    assert post(sme, {"amount": "100.00", "kind": "early_partial"}) == 422  # no option chosen
    assert post(sme, {"amount": "100.00", "early_option": "shorter_term"}) == 422  # not early_partial
    assert post(sme, {"amount": "100.00", "currency": "USD"}) == 422
    assert post(sme, {"amount": "100.00"}, loan_id=uuid.uuid4()) == 404
    assert post(life.tokens[INVESTOR], {"amount": "100.00"}) in (403, 404)
    assert post(tokens[OPERATOR], {"amount": "100.00"}) in (403, 404)
    missing_key = life.client.post(
        f"/api/v1/loans/{life.loan_id}/repayments", json={"amount": "100.00"}, headers=bearer(sme)
    )
    assert missing_key.status_code == 422
    no_option = life.client.post(
        f"/api/v1/loans/{life.loan_id}/repayments/preview", json={"amount": "100.00"}, headers=bearer(sme)
    )
    assert no_option.status_code == 422
    first_day = life.client.post(
        f"/api/v1/loans/{life.loan_id}/repayments/preview",
        json={"amount": "0.01", "early_option": "smaller_instalment"},
        headers=bearer(sme),
    )
    assert first_day.status_code == 200  # on the first day no interest has run: all principal
    assert first_day.json()["principal_after_minor"] == 30_000_000 - 1
    investor_preview = life.client.post(
        f"/api/v1/loans/{life.loan_id}/repayments/preview",
        json={"amount": "100.00", "early_option": "smaller_instalment"},
        headers=bearer(life.tokens[INVESTOR]),
    )
    assert investor_preview.status_code in (403, 404)
    with life.factory() as session:
        assert session.scalar(select(func.count()).select_from(Repayment)) == 0
        assert session.scalar(select(func.count()).where(Instruction.kind == "collection")) == 0
        assert session.scalar(select(func.count()).select_from(Note)) == 2
    assert life.collection() == 0


# --- authorization: the cases proposed for tests/integration/authz.py, run here the same way ------
