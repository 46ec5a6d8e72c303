"""Step 5: commitments hold money in escrow; every refusal names its rule and places no hold."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

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
    org_of,
)
from yunrong.config import Settings
from yunrong.db import unit_of_work
from yunrong.identity.model import Actor, Context
from yunrong.investing import service as investing
from yunrong.kit.clock import FrozenClock
from yunrong.ledger.tables import Hold
from yunrong.parties.tables import Investor


def _commit(
    client: TestClient, token: str, demand_id: uuid.UUID, amount: str, key: str | None = None, **extra: Any
) -> Any:
    body = {"demand_id": str(demand_id), "amount": amount, "accept_agreement": True, **extra}
    return client.post(
        "/api/v1/commitments",
        json=body,
        headers={**bearer(token), "Idempotency-Key": key or uuid.uuid4().hex},
    )


def _holds(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return int(
            session.scalar(select(func.count()).select_from(Hold).where(Hold.status == "pending")) or 0
        )


def _round(client: TestClient, token: str, demand_id: uuid.UUID) -> dict[str, Any]:
    response = client.get(f"/api/v1/demands/{demand_id}/funding", headers=bearer(token))
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_a_commitment_holds_money_and_can_be_cancelled(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    verified: None,
    drain: Drain,
) -> None:
    deposit(client, tokens[INVESTOR], "50000.00")
    drain()
    demand_id = list_demand(client, tokens, factory, settings, clock)
    assert available(client, tokens[INVESTOR]) == 5_000_000

    made = _commit(client, tokens[INVESTOR], demand_id, "20000.00", key="c-1")
    assert made.status_code == 201, made.text
    assert made.json()["status"] == "pending"
    assert made.json()["agreement_sha256"]
    assert len(made.json()["agreement_sha256"]) == 64
    assert available(client, tokens[INVESTOR]) == 3_000_000
    funding = _round(client, tokens[INVESTOR], demand_id)
    assert (funding["committed_minor"], funding["remaining_minor"]) == (2_000_000, 28_000_000)
    demand = client.get(f"/api/v1/demands/{demand_id}", headers=bearer(tokens[SME])).json()
    assert demand["status"] == "funding"

    # The same key and body: the first answer again, nothing held twice.
    again = _commit(client, tokens[INVESTOR], demand_id, "20000.00", key="c-1")
    assert again.status_code == 201
    assert again.json()["id"] == made.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert _holds(factory) == 1
    # The same key with another body: refused.
    other = _commit(client, tokens[INVESTOR], demand_id, "30000.00", key="c-1")
    assert other.status_code == 409
    assert _holds(factory) == 1

    # The enterprise sees the commitment to its demand; another investor does not.
    mine = client.get(f"/api/v1/commitments?demand_id={demand_id}", headers=bearer(tokens[SME])).json()
    assert [c["ref"] for c in mine] == [made.json()["ref"]]
    theirs = client.get(f"/api/v1/commitments/{made.json()['id']}", headers=bearer(tokens[INSTITUTION]))
    assert theirs.status_code == 404

    cancel = client.post(
        f"/api/v1/commitments/{made.json()['id']}/cancel",
        json={"reason": "changed my mind"},
        headers=bearer(tokens[INVESTOR]),
    )
    assert cancel.status_code == 200, cancel.text
    assert cancel.json()["status"] == "cancelled"
    assert available(client, tokens[INVESTOR]) == 5_000_000
    assert _round(client, tokens[INVESTOR], demand_id)["committed_minor"] == 0
    assert _holds(factory) == 0
    twice = client.post(
        f"/api/v1/commitments/{made.json()['id']}/cancel", json={}, headers=bearer(tokens[INVESTOR])
    )
    assert twice.status_code == 409


def test_bad_commitments_name_the_rule_and_hold_nothing(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    verified: None,
    drain: Drain,
) -> None:
    deposit(client, tokens[INVESTOR], "400000.00")
    drain()
    demand_id = list_demand(client, tokens, factory, settings, clock, grade="B")

    def rule(response: Any) -> str:
        body = response.json()
        assert response.headers["content-type"].startswith("application/problem+json"), body
        return str(body["errors"][0]["type"]) if body.get("errors") else str(body["type"])

    over_left = _commit(client, tokens[INVESTOR], demand_id, "300000.01")
    assert over_left.status_code == 422
    assert rule(over_left) == "over-remaining"
    below = _commit(client, tokens[INVESTOR], demand_id, "50.00")
    assert below.status_code == 422
    assert rule(below) == "below-minimum"
    no_agreement = _commit(client, tokens[INVESTOR], demand_id, "1000.00", accept_agreement=False)
    assert no_agreement.status_code == 422
    assert rule(no_agreement) == "agreement-not-accepted"
    unknown = _commit(client, tokens[INVESTOR], uuid.uuid4(), "1000.00")
    assert unknown.status_code == 404
    not_investor = _commit(client, tokens[SME], demand_id, "1000.00")
    assert not_investor.status_code == 403
    negative = _commit(client, tokens[INVESTOR], demand_id, "-5.00")
    assert negative.status_code == 422
    no_key = client.post(
        "/api/v1/commitments",
        json={"demand_id": str(demand_id), "amount": "1000.00", "accept_agreement": True},
        headers=bearer(tokens[INVESTOR]),
    )
    assert no_key.status_code == 422

    # More than the balance: the institution has no money here.
    broke = _commit(client, tokens[INSTITUTION], demand_id, "1000.00")
    assert broke.status_code == 422
    assert rule(broke) == "over-balance"

    # Outside suitability: a C1 investor may not buy a grade-B (high risk) listing.
    with unit_of_work(factory) as session:
        person = session.get(Investor, uuid.UUID(org_of(client, tokens[INVESTOR])))
        assert person is not None
        person.risk_level = "C1"
    unsuitable = _commit(client, tokens[INVESTOR], demand_id, "1000.00")
    assert unsuitable.status_code == 422
    assert rule(unsuitable) == "outside-suitability"
    assert _holds(factory) == 0
    assert available(client, tokens[INVESTOR]) == 40_000_000

    # A closed listing: the window passed.
    with unit_of_work(factory) as session:
        person = session.get(Investor, uuid.UUID(org_of(client, tokens[INVESTOR])))
        assert person is not None
        person.risk_level = "C5"
    with unit_of_work(factory) as session:
        funding = investing.round_of(session, demand_id)
        assert funding is not None
        funding.closes_at = clock.now() - timedelta(seconds=1)
    closed = _commit(client, tokens[INVESTOR], demand_id, "1000.00")
    assert closed.status_code == 409, closed.text
    assert _holds(factory) == 0
    assert client.get("/api/v1/commitments", headers=bearer(tokens[OPERATOR])).json() == []


def test_the_deadline_releases_every_hold_unless_partial_funding_was_accepted(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    verified: None,
    drain: Drain,
) -> None:
    deposit(client, tokens[INVESTOR], "100000.00")
    drain()
    short = list_demand(client, tokens, factory, settings, clock)
    partial = list_demand(client, tokens, factory, settings, clock, min_funding="20000.00")
    assert _commit(client, tokens[INVESTOR], short, "30000.00").status_code == 201
    assert _commit(client, tokens[INVESTOR], partial, "30000.00").status_code == 201
    refused = client.put(
        f"/api/v1/demands/{short}/funding/partial", json={"accept_partial": True}, headers=bearer(tokens[SME])
    )
    assert refused.status_code == 422  # no stated minimum
    ok = client.put(
        f"/api/v1/demands/{partial}/funding/partial",
        json={"accept_partial": True},
        headers=bearer(tokens[SME]),
    )
    assert ok.status_code == 200
    assert ok.json()["accept_partial"] is True
    assert available(client, tokens[INVESTOR]) == 4_000_000

    clock.advance(timedelta(days=settings.funding_window_days, seconds=1))
    ctx = Context(actor=Actor.system("test"), clock=clock, request_id="deadline")
    with unit_of_work(factory) as session:
        assert investing.close_due_rounds(session, ctx=ctx, settings=settings) == 2
    with unit_of_work(factory) as session:
        assert investing.close_due_rounds(session, ctx=ctx, settings=settings) == 0  # exactly once
    tokens = {email: login_token(client, email) for email in (SME, INVESTOR)}  # the old ones expired

    assert _round(client, tokens[SME], short)["status"] == "failed"
    assert client.get(f"/api/v1/demands/{short}", headers=bearer(tokens[SME])).json()["status"] == "failed"
    funded = _round(client, tokens[SME], partial)
    assert funded["status"] == "funded"
    assert funded["loan_id"]
    loan = client.get(f"/api/v1/loans/{funded['loan_id']}", headers=bearer(tokens[INVESTOR])).json()
    assert loan["principal_minor"] == 3_000_000
    assert loan["status"] == "contracting"
    # 30,000 released from the failed round, 30,000 posted to the funded one.
    assert available(client, tokens[INVESTOR]) == 7_000_000
    assert _holds(factory) == 0
