"""Auto-invest: standing rules commit for their investors when a round opens, shared fairly (no rule
takes a listing whole when others qualify), each ticket checked like a manual commitment."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import bearer
from tests.integration.investing.conftest import INSTITUTION, INVESTOR, Drain, deposit, list_demand
from yunrong.config import Settings
from yunrong.db import unit_of_work
from yunrong.identity.model import Actor, Context
from yunrong.investing import autoinvest
from yunrong.investing import service as investing
from yunrong.investing.tables import Commitment
from yunrong.kit.clock import FrozenClock

RULE: dict[str, Any] = {
    "name": "SME working capital",
    "amount_per_loan": "200000.00",
    "max_share_of_loan": "1",
    "max_per_enterprise": "500000.00",
    "max_industry_share": "1",
    "max_region_share": "1",
    "max_grade_share": "1",
    "grades": ["A", "BBB", "BB"],
    "products": ["p2p_loan"],
}


def _run(
    factory: sessionmaker[Session], clock: FrozenClock, settings: Settings, demand_id: uuid.UUID
) -> list[Any]:
    ctx = Context(actor=Actor.system("autoinvest"), clock=clock, request_id="autoinvest")
    with unit_of_work(factory) as session:
        return autoinvest.run_for_demand(session, ctx=ctx, demand_id=demand_id, settings=settings)


def _tickets(factory: sessionmaker[Session], demand_id: uuid.UUID) -> dict[str, int]:
    with factory() as session:
        rows = session.scalars(select(Commitment).where(Commitment.demand_id == demand_id)).all()
        return {str(c.investor_org_id): c.amount_minor for c in rows if c.source == "autoinvest"}


@pytest.mark.parametrize("optimise", [False, True], ids=["fair", "highs"])
def test_rules_share_a_listing_fairly_within_their_limits(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    verified: None,
    drain: Drain,
    optimise: bool,
) -> None:
    settings = settings.model_copy(update={"autoinvest_optimise": optimise})
    deposit(client, tokens[INVESTOR], "300000.00")
    deposit(client, tokens[INSTITUTION], "300000.00")
    drain()
    for email in (INVESTOR, INSTITUTION):
        made = client.post("/api/v1/autoinvest-rules", json=RULE, headers=bearer(tokens[email]))
        assert made.status_code == 201, made.text
    paused = client.post(
        "/api/v1/autoinvest-rules", json={**RULE, "active": False}, headers=bearer(tokens[INVESTOR])
    )
    assert paused.status_code == 201
    bad = client.post(
        "/api/v1/autoinvest-rules",
        json={**RULE, "max_per_enterprise": "100.00", "grades": ["ZZ"]},
        headers=bearer(tokens[INVESTOR]),
    )
    assert bad.status_code == 422
    assert {tuple(e["loc"]) for e in bad.json()["errors"]} == {("max_per_enterprise",), ("grades",)}
    assert (
        client.post(
            "/api/v1/autoinvest-rules", json=RULE, headers=bearer(tokens["sme@demo.yunrong.cn"])
        ).status_code
        == 403
    )

    demand_id = list_demand(client, tokens, factory, settings, clock, amount="300000.00")
    placed = _run(factory, clock, settings, demand_id)
    assert len([p for p in placed if p.commitment_ref]) == 2
    tickets = _tickets(factory, demand_id)
    # Each could take 200,000 of 300,000: an equal split, nobody takes the listing whole.
    assert sorted(tickets.values()) == [15_000_000, 15_000_000]
    assert _run(factory, clock, settings, demand_id) == []  # the round is full: nothing more

    # Another listing that only one rule can afford: it gets its cap, the rest stays open.
    other = list_demand(client, tokens, factory, settings, clock, amount="100000.00")
    _run(factory, clock, settings, other)
    with factory() as session:
        funding = investing.round_of(session, other)
        assert funding is not None
        assert funding.committed_minor <= funding.target_minor
    assert all(v >= settings.min_ticket_minor for v in _tickets(factory, other).values())

    rules = client.get("/api/v1/autoinvest-rules", headers=bearer(tokens[INVESTOR])).json()
    assert [r["active"] for r in rules] == [True, False]
    resumed = client.put(
        f"/api/v1/autoinvest-rules/{rules[1]['id']}/active",
        json={"active": True},
        headers=bearer(tokens[INVESTOR]),
    )
    assert resumed.status_code == 200
    assert resumed.json()["active"] is True
    foreign = client.put(
        f"/api/v1/autoinvest-rules/{rules[1]['id']}/active",
        json={"active": False},
        headers=bearer(tokens[INSTITUTION]),
    )
    assert foreign.status_code == 404
