"""Investing fixtures: the demo world with verified bank accounts and money, and a listed demand."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import bearer
from tests.integration.decision_data import list_with_decision
from tests.integration.verification.demand_data import demand_body
from yunrong.config import Settings
from yunrong.db import unit_of_work
from yunrong.demands.tables import Demand
from yunrong.identity.model import Actor, Context
from yunrong.investing import service as investing
from yunrong.kit.clock import FrozenClock
from yunrong.messaging.worker import deliver_due
from yunrong.parties.tables import BankAccount, Investor

SME = "sme@demo.yunrong.cn"
INVESTOR = "investor@demo.yunrong.cn"
INSTITUTION = "institution@demo.yunrong.cn"
OPERATOR = "operator@demo.yunrong.cn"
REGULATOR = "regulator1@demo.yunrong.cn"
BANK = "bank@demo.yunrong.cn"

Drain = Callable[[], int]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The simulated bank answers in-process (same signature check as over HTTP) and never fails
    # unless a test asks it to.
    return settings.model_copy(
        update={"simbank_callback_mode": "direct", "simbank_failure_rate": 0.0, "simbank_duplicate_rate": 0.0}
    )


@pytest.fixture
def verified(factory: sessionmaker[Session], system_ctx: Context, demo: dict[str, str]) -> None:
    with unit_of_work(factory) as session:
        for account in session.scalars(select(BankAccount)).all():
            account.verified_at = system_ctx.now()
            account.verified_by = "test"
        for investor in session.scalars(select(Investor)).all():
            investor.risk_level = "C4"


@pytest.fixture
def drain(factory: sessionmaker[Session], settings: Settings, clock: FrozenClock) -> Drain:
    """Let time pass and the worker run until the outbox is quiet (bank answers included)."""

    def run() -> int:
        total = 0
        for _ in range(50):
            clock.advance(timedelta(seconds=30))
            done = deliver_due(factory, settings=settings, clock=clock, worker_id="test-worker")
            total += done
            if done == 0:
                clock.advance(timedelta(seconds=30))
                if deliver_due(factory, settings=settings, clock=clock, worker_id="test-worker") == 0:
                    return total
        raise AssertionError("the outbox never went quiet")

    return run


def org_of(client: TestClient, token: str) -> str:
    return str(client.get("/api/v1/me", headers=bearer(token)).json()["organisation"]["id"])


def deposit(client: TestClient, token: str, amount: str) -> None:
    org = org_of(client, token)
    account = client.get(f"/api/v1/organisations/{org}/bank-accounts", headers=bearer(token)).json()[0]["id"]
    response = client.post(
        "/api/v1/deposits",
        json={"amount": amount, "bank_account_id": account},
        headers={**bearer(token), "Idempotency-Key": uuid.uuid4().hex},
    )
    assert response.status_code == 202, response.text


def available(client: TestClient, token: str) -> int:
    for account in client.get("/api/v1/me/accounts", headers=bearer(token)).json():
        if account["purpose"] == "investor_available":
            return int(account["available_minor"])
    return 0


def list_demand(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    *,
    grade: str = "BBB",
    **overrides: Any,
) -> uuid.UUID:
    """A demand drafted through the API, then listed with a priced decision written directly (the
    agencies and the credit engine are exercised by their own tests); the round opens as on listing."""
    if "amount" in overrides and "use_of_funds" not in overrides:
        overrides["use_of_funds"] = [{"item": "Working capital", "amount": overrides["amount"]}]
    body = demand_body(project_key=f"invest-{uuid.uuid4().hex[:8]}", **overrides)
    draft = client.post("/api/v1/demands", json=body, headers=bearer(tokens[SME]))
    assert draft.status_code == 201, draft.text
    demand_id = uuid.UUID(draft.json()["id"])
    now = clock.now()
    with unit_of_work(factory) as session:
        demand = session.get(Demand, demand_id)
        assert demand is not None
        list_with_decision(session, demand, now, grade=grade)
        ctx = Context(actor=Actor.system("test"), clock=clock, request_id="test")
        funding = investing.open_round(session, ctx=ctx, demand=demand, settings=settings)
        assert (funding is None) == (demand.product == "bank_loan")  # banks fund bank loans by offers
    return demand_id
