"""Under the eu-ecsp profile: the entry knowledge test, the risk warning above the larger of 1,000
or 5% of net worth, and the 4-day reflection period in which a commitment is revoked without reason
(a full round waits for it before any hold is posted)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import bearer, login_token
from tests.integration.investing.conftest import INVESTOR, SME, Drain, available, deposit, list_demand, org_of
from yunrong.config import Settings
from yunrong.db import unit_of_work
from yunrong.identity.model import Actor, Context
from yunrong.investing import knowledge
from yunrong.investing import service as investing
from yunrong.kit.clock import FrozenClock
from yunrong.parties.tables import Investor


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"policy_profile": "eu-ecsp"})


def _commit(client: TestClient, token: str, demand_id: uuid.UUID, amount: str, **extra: Any) -> Any:
    return client.post(
        "/api/v1/commitments",
        json={"demand_id": str(demand_id), "amount": amount, "accept_agreement": True, **extra},
        headers={**bearer(token), "Idempotency-Key": uuid.uuid4().hex},
    )


def test_knowledge_test_warning_and_reflection(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    verified: None,
    drain: Drain,
) -> None:
    me = bearer(tokens[INVESTOR])
    deposit(client, tokens[INVESTOR], "300000.00")
    drain()
    with unit_of_work(factory) as session:
        person = session.get(Investor, uuid.UUID(org_of(client, tokens[INVESTOR])))
        assert person is not None
        person.net_worth_minor = 4_000_000  # 40,000.00: 5% is 2,000.00, above the 1,000.00 floor
    demand_id = list_demand(client, tokens, factory, settings, clock, amount="10000.00")

    untested = _commit(client, tokens[INVESTOR], demand_id, "500.00")
    assert untested.status_code == 422
    assert untested.json()["errors"][0]["type"] == "knowledge-test"
    test = client.get("/api/v1/me/knowledge-test", headers=me).json()
    assert test["required"] is True
    assert test["passed"] is None
    assert len(test["questions"]) == 5
    wrong = {q["key"]: "a" for q in test["questions"]}
    failed = client.post("/api/v1/me/knowledge-test", json={"answers": wrong}, headers=me)
    assert failed.status_code == 200
    assert failed.json()["passed"] is False
    assert _commit(client, tokens[INVESTOR], demand_id, "500.00").status_code == 422
    incomplete = client.post("/api/v1/me/knowledge-test", json={"answers": {"custody": "b"}}, headers=me)
    assert incomplete.status_code == 422
    right = {q.key: q.answer for q in knowledge.QUESTIONS}
    assert client.post("/api/v1/me/knowledge-test", json={"answers": right}, headers=me).json()["passed"]

    # Above 2,000.00 (5% of net worth) the warning must be accepted.
    unwarned = _commit(client, tokens[INVESTOR], demand_id, "2500.00")
    assert unwarned.status_code == 422
    assert unwarned.json()["errors"][0]["type"] == "risk-warning"
    small = _commit(client, tokens[INVESTOR], demand_id, "2000.00")
    assert small.status_code == 201, small.text
    assert small.json()["revocable_until"] is not None
    warned = _commit(client, tokens[INVESTOR], demand_id, "2500.00", risk_warning_accepted=True)
    assert warned.status_code == 201

    # Revoked without reason inside the reflection period.
    revoked = client.post(f"/api/v1/commitments/{small.json()['id']}/cancel", json={}, headers=me)
    assert revoked.status_code == 200
    assert revoked.json()["status"] == "cancelled"

    # The round fills, but no hold is posted until every reflection period is over.
    rest = _commit(client, tokens[INVESTOR], demand_id, "7500.00", risk_warning_accepted=True)
    assert rest.status_code == 201
    assert rest.json()["status"] == "pending"
    assert available(client, tokens[INVESTOR]) == 30_000_000 - 1_000_000
    clock.advance(timedelta(days=4, seconds=1))
    ctx = Context(actor=Actor.system("test"), clock=clock, request_id="reflection")
    with unit_of_work(factory) as session:
        assert investing.close_due_rounds(session, ctx=ctx, settings=settings) == 1
    token = login_token(client, INVESTOR)
    late = client.post(f"/api/v1/commitments/{warned.json()['id']}/cancel", json={}, headers=bearer(token))
    assert late.status_code == 409
    sme = bearer(login_token(client, SME))
    assert client.get(f"/api/v1/demands/{demand_id}/funding", headers=sme).json()["status"] == "funded"
