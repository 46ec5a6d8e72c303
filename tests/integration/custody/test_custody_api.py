"""Deposits and withdrawals through the simulated custodian bank, over the API."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import bearer
from tests.integration.custody.conftest import Drain
from yunrong.config import Settings
from yunrong.custody.model import sign
from yunrong.custody.service import callback_secret
from yunrong.custody.tables import BankCallback
from yunrong.db import unit_of_work
from yunrong.kit.clock import FrozenClock
from yunrong.ledger.verify import first_violation
from yunrong.messaging.tables import OutboxEvent
from yunrong.supervision.tables import Alert

INVESTOR = "investor@demo.yunrong.cn"


def _account_id(client: TestClient, token: str) -> str:
    org = client.get("/api/v1/me", headers=bearer(token)).json()["organisation"]["id"]
    return client.get(f"/api/v1/organisations/{org}/bank-accounts", headers=bearer(token)).json()[0]["id"]


def _available(client: TestClient, token: str) -> tuple[int, int]:
    rows = client.get("/api/v1/me/accounts", headers=bearer(token)).json()
    row = next((r for r in rows if r["purpose"] == "investor_available"), None)
    return (row["balance_minor"], row["available_minor"]) if row else (0, 0)


def _move(
    client: TestClient, token: str, path: str, amount: str, key: str | None = None, **extra: Any
) -> Any:
    body = {"amount": amount, "currency": "CNY", "bank_account_id": _account_id(client, token), **extra}
    headers = {**bearer(token), "Idempotency-Key": key or uuid.uuid4().hex}
    return client.post(path, json=body, headers=headers)


def test_deposit_is_pending_until_the_bank_confirms(
    client: TestClient, tokens: dict[str, str], verified: None, drain: Drain, factory: sessionmaker[Session]
) -> None:
    token = tokens[INVESTOR]
    response = _move(client, token, "/api/v1/deposits", "5000.00")
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "pending"
    assert _available(client, token) == (0, 0)
    drain()
    instruction = client.get(
        f"/api/v1/custodian-instructions/{response.json()['id']}", headers=bearer(token)
    ).json()
    assert instruction["status"] == "confirmed"
    assert instruction["bank_reference"].startswith("SIM")
    assert _available(client, token) == (500_000, 500_000)
    notes = client.get("/api/v1/notifications", headers=bearer(token)).json()
    assert notes[0]["kind"] == "custody.deposit.confirmed"
    with unit_of_work(factory) as session:
        assert first_violation(session) is None


def test_withdrawal_holds_then_pays_or_releases(
    client: TestClient,
    tokens: dict[str, str],
    verified: None,
    drain: Drain,
    settings: Settings,
    factory: sessionmaker[Session],
    clock: FrozenClock,
) -> None:
    token = tokens[INVESTOR]
    _move(client, token, "/api/v1/deposits", "1000.00")
    drain()
    too_much = _move(client, token, "/api/v1/withdrawals", "1000.01")
    assert too_much.status_code == 409
    assert too_much.json()["type"] == "/problems/insufficient-funds"
    out = _move(client, token, "/api/v1/withdrawals", "400.00")
    assert out.status_code == 202
    assert _available(client, token) == (100_000, 60_000)
    drain()
    assert _available(client, token) == (60_000, 60_000)


def test_a_failed_withdrawal_releases_the_hold(
    client: TestClient,
    tokens: dict[str, str],
    verified: None,
    drain: Drain,
    settings: Settings,
    factory: sessionmaker[Session],
    clock: FrozenClock,
    app: Any,
) -> None:
    token = tokens[INVESTOR]
    _move(client, token, "/api/v1/deposits", "1000.00")
    drain()
    app.state.settings = settings.model_copy(update={"simbank_failure_rate": 1.0})
    failing = settings.model_copy(update={"simbank_failure_rate": 1.0})
    out = _move(client, token, "/api/v1/withdrawals", "300.00")
    assert _available(client, token) == (100_000, 70_000)
    from yunrong.messaging.worker import deliver_due

    for _ in range(10):
        clock.advance(__import__("datetime").timedelta(seconds=30))
        deliver_due(factory, settings=failing, clock=clock, worker_id="w")
    instruction = client.get(
        f"/api/v1/custodian-instructions/{out.json()['id']}", headers=bearer(token)
    ).json()
    assert instruction["status"] == "failed"
    assert instruction["failure_reason"]
    assert _available(client, token) == (100_000, 100_000)


def test_idempotency_key_replays_and_conflicts(
    client: TestClient, tokens: dict[str, str], verified: None, factory: sessionmaker[Session]
) -> None:
    token = tokens[INVESTOR]
    first = _move(client, token, "/api/v1/deposits", "10.00", key="dep-1")
    again = _move(client, token, "/api/v1/deposits", "10.00", key="dep-1")
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    other = _move(client, token, "/api/v1/deposits", "11.00", key="dep-1")
    assert other.status_code == 409
    assert other.json()["type"] == "/problems/idempotency-conflict"
    missing = client.post(
        "/api/v1/deposits",
        json={"amount": "1.00", "bank_account_id": _account_id(client, token)},
        headers=bearer(token),
    )
    assert missing.status_code == 422
    with unit_of_work(factory) as session:
        events = session.scalars(select(OutboxEvent).where(OutboxEvent.topic == "bank.instruction")).all()
        assert len(events) == 1


def test_bad_money_input_is_refused_and_nothing_moves(
    client: TestClient, tokens: dict[str, str], demo: dict[str, str], factory: sessionmaker[Session]
) -> None:
    token = tokens[INVESTOR]
    org = client.get("/api/v1/me", headers=bearer(token)).json()["organisation"]["id"]
    fresh = client.post(
        f"/api/v1/organisations/{org}/bank-accounts",
        headers=bearer(token),
        json={"bank_name": "New Bank", "account_name": "Li Wei", "account_number": "6214830100077777"},
    )
    assert fresh.json()["verified"] is False
    unverified = client.post(
        "/api/v1/deposits",
        json={"amount": "10.00", "bank_account_id": fresh.json()["id"]},
        headers={**bearer(token), "Idempotency-Key": "unverified"},
    )
    assert unverified.status_code == 422
    assert unverified.json()["type"] == "/problems/account-not-verified"
    for amount in ("0", "-5.00", "1.001", "abc"):
        assert _move(client, token, "/api/v1/deposits", amount).status_code == 422, amount
    foreign = client.post(
        "/api/v1/deposits",
        json={"amount": "1.00", "bank_account_id": str(uuid.uuid4())},
        headers={**bearer(token), "Idempotency-Key": "x1"},
    )
    assert foreign.status_code == 404
    sme = tokens["sme@demo.yunrong.cn"]
    assert (
        client.post(
            "/api/v1/deposits",
            json={"amount": "1.00", "bank_account_id": str(uuid.uuid4())},
            headers={**bearer(sme), "Idempotency-Key": "x2"},
        ).status_code
        == 403
    )
    with unit_of_work(factory) as session:
        assert session.scalars(select(OutboxEvent).where(OutboxEvent.topic == "bank.instruction")).all() == []


def _signed_post(
    client: TestClient,
    settings: Settings,
    payload: dict[str, Any],
    *,
    timestamp: int | None = None,
    secret: bytes | None = None,
) -> Any:
    body = json.dumps(payload).encode()
    ts = str(timestamp if timestamp is not None else int(time.time()))
    signature = sign(secret or callback_secret(settings), ts, body)
    return client.post(
        "/api/v1/custodian/callbacks",
        content=body,
        headers={"X-Bank-Timestamp": ts, "X-Bank-Signature": signature, "Content-Type": "application/json"},
    )


def test_forged_replayed_duplicated_and_contradicting_callbacks(
    client: TestClient,
    tokens: dict[str, str],
    verified: None,
    settings: Settings,
    factory: sessionmaker[Session],
    clock: FrozenClock,
    app: Any,
) -> None:
    token = tokens[INVESTOR]
    deposit = _move(client, token, "/api/v1/deposits", "100.00").json()
    now = int(clock.now().timestamp())
    payload = {
        "callback_id": "cb-1",
        "instruction_ref": deposit["ref"],
        "status": "confirmed",
        "bank_reference": "BANK-1",
        "amount": 10_000,
        "currency": "CNY",
    }
    forged = _signed_post(client, settings, payload, timestamp=now, secret=b"not-the-bank")
    assert forged.status_code == 401
    assert forged.json()["type"] == "/problems/forged-callback"
    stale = _signed_post(client, settings, payload, timestamp=now - 3600)
    assert stale.status_code == 401
    assert _available(client, token) == (0, 0)
    applied = _signed_post(client, settings, payload, timestamp=now)
    assert applied.json()["outcome"] == "applied"
    replay = _signed_post(client, settings, payload, timestamp=now)
    assert replay.json()["outcome"] == "duplicate"
    late_same = _signed_post(client, settings, {**payload, "callback_id": "cb-2"}, timestamp=now)
    assert late_same.json()["outcome"] == "already_final"
    contradiction = _signed_post(
        client, settings, {**payload, "callback_id": "cb-3", "status": "failed"}, timestamp=now
    )
    assert contradiction.json()["outcome"] == "conflict"
    assert _available(client, token) == (10_000, 10_000)  # applied once, never undone by a contradiction
    unknown = _signed_post(
        client, settings, {**payload, "callback_id": "cb-4", "instruction_ref": "BI-NOPE"}, timestamp=now
    )
    assert unknown.json()["outcome"] == "unknown_instruction"
    with unit_of_work(factory) as session:
        kinds = sorted(a.kind for a in session.scalars(select(Alert)).all())
        assert kinds == ["bank.contradiction", "bank.unknown_instruction"]
        assert len(session.scalars(select(BankCallback)).all()) == 4
        assert first_violation(session) is None


def test_a_confirmation_for_another_amount_moves_nothing(
    client: TestClient, tokens: dict[str, str], verified: None, settings: Settings, clock: FrozenClock
) -> None:
    token = tokens[INVESTOR]
    deposit = _move(client, token, "/api/v1/deposits", "100.00").json()
    off = {
        "callback_id": "cb-x",
        "instruction_ref": deposit["ref"],
        "status": "confirmed",
        "bank_reference": "B",
        "amount": 9_999,
        "currency": "CNY",
    }
    assert (
        _signed_post(client, settings, off, timestamp=int(clock.now().timestamp())).json()["outcome"]
        == "conflict"
    )
    assert _available(client, token) == (0, 0)


def test_statements_in_csv_and_pdf(
    client: TestClient, tokens: dict[str, str], verified: None, drain: Drain
) -> None:
    token = tokens[INVESTOR]
    _move(client, token, "/api/v1/deposits", "1200.00")
    drain()
    _move(client, token, "/api/v1/withdrawals", "200.00")
    drain()
    account = next(
        r
        for r in client.get("/api/v1/me/accounts", headers=bearer(token)).json()
        if r["purpose"] == "investor_available"
    )
    as_json = client.get(f"/api/v1/ledger-accounts/{account['id']}/statement", headers=bearer(token)).json()
    assert [line["running_minor"] for line in as_json["lines"]] == [120_000, 100_000]
    csv_text = client.get(
        f"/api/v1/ledger-accounts/{account['id']}/statement", params={"format": "csv"}, headers=bearer(token)
    ).content.decode("utf-8-sig")
    assert "1200.00" in csv_text
    assert "1000.00" in csv_text
    assert "closing balance" in csv_text
    pdf = client.get(
        f"/api/v1/ledger-accounts/{account['id']}/statement", params={"format": "pdf"}, headers=bearer(token)
    )
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    other = tokens["institution@demo.yunrong.cn"]
    assert (
        client.get(f"/api/v1/ledger-accounts/{account['id']}/statement", headers=bearer(other)).status_code
        == 404
    )


def test_ledger_verification_endpoint(client: TestClient, tokens: dict[str, str]) -> None:
    response = client.get("/api/v1/ledger/verification", headers=bearer(tokens["regulator1@demo.yunrong.cn"]))
    assert response.json()["ok"] is True
    assert client.get("/api/v1/ledger/verification", headers=bearer(tokens[INVESTOR])).status_code == 403
