"""The regulator's fund-flow monitor and maker-checker adjustments."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import bearer, demo_tokens
from tests.integration.custody.conftest import Drain
from yunrong.config import Settings
from yunrong.db import unit_of_work
from yunrong.identity import service as identity
from yunrong.identity.model import Context, Role
from yunrong.ledger.verify import first_violation

INVESTOR = "investor@demo.yunrong.cn"
OPERATOR = "operator@demo.yunrong.cn"
REGULATOR = "regulator1@demo.yunrong.cn"


def _deposit(client: TestClient, token: str, amount: str) -> None:
    org = client.get("/api/v1/me", headers=bearer(token)).json()["organisation"]["id"]
    account = client.get(f"/api/v1/organisations/{org}/bank-accounts", headers=bearer(token)).json()[0]["id"]
    response = client.post(
        "/api/v1/deposits",
        json={"amount": amount, "bank_account_id": account},
        headers={**bearer(token), "Idempotency-Key": uuid.uuid4().hex},
    )
    assert response.status_code == 202, response.text


def test_the_monitor_shows_escrow_by_class_and_daily_flows(
    client: TestClient, tokens: dict[str, str], verified: None, drain: Drain
) -> None:
    _deposit(client, tokens[INVESTOR], "300.00")
    before = client.get("/api/v1/fund-flows", headers=bearer(tokens[REGULATOR])).json()
    assert before["pending_instructions"] == [
        {"kind": "deposit", "currency": "CNY", "count": 1, "amount_minor": 30_000}
    ]
    drain()
    flows = client.get("/api/v1/fund-flows", headers=bearer(tokens[REGULATOR])).json()
    classes = {c["purpose"]: c for c in flows["classes"]}
    assert classes["escrow_cash"]["balance_minor"] == 30_000
    assert classes["investor_available"]["balance_minor"] == 30_000
    today = [d for d in flows["daily"] if d["date"] == flows["business_date"]]
    assert today == [
        {"date": flows["business_date"], "currency": "CNY", "inflow_minor": 30_000, "outflow_minor": 0}
    ]
    assert flows["pending_instructions"] == []
    assert client.get("/api/v1/fund-flows", headers=bearer(tokens[INVESTOR])).status_code == 403
    assert client.get("/api/v1/fund-flows", headers=bearer(tokens[OPERATOR])).status_code == 200


def test_adjustments_need_a_second_operator(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    system_ctx: Context,
    verified: None,
    drain: Drain,
) -> None:
    _deposit(client, tokens[INVESTOR], "100.00")
    drain()
    accounts = {
        a["purpose"]: a for a in client.get("/api/v1/me/accounts", headers=bearer(tokens[INVESTOR])).json()
    }
    investor_code = accounts["investor_available"]["code"]
    with unit_of_work(factory) as session:
        op_org = identity.visible_user(
            session,
            ctx=system_ctx,
            user_id=uuid.UUID(client.get("/api/v1/me", headers=bearer(tokens[OPERATOR])).json()["id"]),
        ).organisation_id
        identity.create_user(
            session,
            ctx=system_ctx,
            settings=settings,
            organisation_id=op_org,
            email="operator2@demo.yunrong.cn",
            name="Second",
            password="second-operator-1",
            roles=frozenset({Role.OPERATOR_ADMIN}),
            enrol_totp=False,
        )
    second = demo_tokens  # noqa: F841 - the fixture helper enrols TOTP for demo users only
    from yunrong.identity.security import totp_now

    with unit_of_work(factory) as session:
        secret = identity.enrol_totp_by_operator(
            session, ctx=system_ctx, settings=settings, email="operator2@demo.yunrong.cn"
        )
    token2 = client.post(
        "/api/v1/auth/token",
        data={
            "username": "operator2@demo.yunrong.cn",
            "password": "second-operator-1",
            "totp": totp_now(secret, system_ctx.now()),
        },
    ).json()["access_token"]
    suspense = "adjustment_suspense:CNY:platform"
    unbalanced = client.post(
        "/api/v1/ledger/adjustments",
        headers=bearer(tokens[OPERATOR]),
        json={
            "legs": [
                {"account_code": investor_code, "side": "C", "amount_minor": 5},
                {"account_code": investor_code, "side": "D", "amount_minor": 4},
            ],
            "reason": "x",
        },
    )
    assert unbalanced.status_code == 422
    from yunrong.custody import accounts as custody_accounts

    with unit_of_work(factory) as session:
        custody_accounts.adjustment_suspense(session, system_ctx, "CNY")
    proposed = client.post(
        "/api/v1/ledger/adjustments",
        headers=bearer(tokens[OPERATOR]),
        json={
            "legs": [
                {"account_code": suspense, "side": "D", "amount_minor": 250},
                {"account_code": investor_code, "side": "C", "amount_minor": 250},
            ],
            "reason": "interest compensation for a delayed deposit",
        },
    )
    assert proposed.status_code == 201, proposed.text
    adjustment_id = proposed.json()["id"]
    same = client.post(
        f"/api/v1/ledger/adjustments/{adjustment_id}/decision",
        headers=bearer(tokens[OPERATOR]),
        json={"approve": True, "reason": "ok"},
    )
    assert same.status_code == 409
    assert accounts["investor_available"]["balance_minor"] == 10_000
    approved = client.post(
        f"/api/v1/ledger/adjustments/{adjustment_id}/decision",
        headers=bearer(token2),
        json={"approve": True, "reason": "checked against the bank's letter"},
    )
    assert approved.json()["status"] == "approved"
    after = {
        a["purpose"]: a for a in client.get("/api/v1/me/accounts", headers=bearer(tokens[INVESTOR])).json()
    }
    assert after["investor_available"]["balance_minor"] == 10_250
    again = client.post(
        f"/api/v1/ledger/adjustments/{adjustment_id}/decision",
        headers=bearer(token2),
        json={"approve": True, "reason": "twice"},
    )
    assert again.status_code == 409
    audit = client.get(
        "/api/v1/audit-records",
        params={"action": "ledger.adjustment_approved"},
        headers=bearer(tokens[REGULATOR]),
    ).json()
    assert len(audit["items"]) == 1
    with unit_of_work(factory) as session:
        assert first_violation(session) is None


def test_the_demo_world_pays_its_investors_in_through_the_bank(
    factory: sessionmaker[Session], settings: Settings, system_ctx: Context, drain: Drain
) -> None:
    from yunrong.demo.seed import seed_demo
    from yunrong.ledger import service as ledger
    from yunrong.ledger.model import Balance

    with unit_of_work(factory) as session:
        seed_demo(session, ctx=system_ctx, settings=settings)
    drain()
    with unit_of_work(factory) as session:
        seed_demo(session, ctx=system_ctx, settings=settings)  # twice: no second deposit
    drain()
    with unit_of_work(factory) as session:
        from sqlalchemy import select

        from yunrong.ledger.tables import LedgerAccount

        balances: dict[str, Balance] = {
            a.code: ledger.balance(session, a.id)
            for a in session.scalars(
                select(LedgerAccount).where(LedgerAccount.purpose == "investor_available")
            )
        }
        assert sorted(b.posted for b in balances.values()) == [200_000_00, 5_000_000_00]
        assert first_violation(session) is None
