"""Agencies' webhooks: signed deliveries to a real local HTTP receiver, retried with backoff,
deduplicated by event id, logged for the agency alone; the receiving side's check refuses stale
and tampered deliveries."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import bearer, login_token
from tests.integration.verification.demand_data import demand_body
from yunrong.config import Settings
from yunrong.db import unit_of_work
from yunrong.demo.demands import SPECIALISTS, seed_specialist_agencies
from yunrong.identity import repository
from yunrong.identity import service as identity
from yunrong.identity.model import Context
from yunrong.identity.security import totp_now
from yunrong.kit.clock import FrozenClock
from yunrong.messaging.model import EventStatus
from yunrong.messaging.tables import OutboxEvent
from yunrong.messaging.worker import deliver_due
from yunrong.verification.webhooks import WebhookRejected, sign_webhook, verify_webhook

SME = "sme@demo.yunrong.cn"
AGENCY = "agency@demo.yunrong.cn"
OPERATOR = "operator@demo.yunrong.cn"
GUARANTOR = SPECIALISTS[0].email


class Receiver:
    """An agency's webhook endpoint: checks the signature with ``verify_webhook`` (401 when it
    fails), can be told to fail the first N requests (500), and deduplicates on the event id."""

    def __init__(self, clock: FrozenClock) -> None:
        self.clock = clock
        self.secret: str | None = None
        self.fail_first = 0
        self.requests: list[dict[str, Any]] = []
        self.processed: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.requests.append({"headers": headers, "body": body, "path": self.path})
                status, answer = receiver.answer(headers, body)
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(answer.encode())

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/yunrong"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, headers: dict[str, str], body: bytes) -> tuple[int, str]:
        assert self.secret is not None
        try:
            verify_webhook(
                self.secret,
                headers.get("yunrong-timestamp"),
                body,
                headers.get("yunrong-signature"),
                self.clock.now(),
            )
        except WebhookRejected as exc:
            return exc.status, exc.detail
        if self.fail_first > 0:
            self.fail_first -= 1
            return 500, "temporarily unavailable"
        event_id = headers["yunrong-event-id"]
        if event_id in self.processed:
            return 200, "duplicate, ignored"
        self.processed.append(event_id)
        return 200, "ok"


@pytest.fixture
def receiver(clock: FrozenClock) -> Iterator[Receiver]:
    r = Receiver(clock)
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


def _token(
    client: TestClient, factory: sessionmaker[Session], settings: Settings, ctx: Context, email: str
) -> str:
    with unit_of_work(factory) as session:
        secret = identity.enrol_totp_by_operator(session, ctx=ctx, settings=settings, email=email)
    return login_token(client, email, totp=totp_now(secret, ctx.now()))


def _org_id(factory: sessionmaker[Session], email: str) -> str:
    with unit_of_work(factory) as session:
        user = repository.user_by_email(session, email)
        assert user is not None
        return str(user.organisation_id)


def _deliver(factory: sessionmaker[Session], settings: Settings, clock: FrozenClock) -> int:
    return deliver_due(factory, settings=settings, clock=clock, worker_id="test-worker", batch=1000)


def _signed_headers(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.startswith("yunrong-") or k == "content-type"}


def _webhook_events(factory: sessionmaker[Session]) -> list[OutboxEvent]:
    with unit_of_work(factory) as session:
        return list(
            session.scalars(
                select(OutboxEvent).where(OutboxEvent.topic == "agency.webhook").order_by(OutboxEvent.id)
            ).all()
        )


def test_orders_reach_the_agency_signed_retried_deduplicated_and_logged(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    system_ctx: Context,
    receiver: Receiver,
) -> None:
    with unit_of_work(factory) as session:
        seed_specialist_agencies(session, ctx=system_ctx, settings=settings)
    agency = bearer(tokens[AGENCY])

    # The agency administrator registers its endpoint and sees the secret once.
    bad = client.put("/api/v1/agency-webhook", json={"url": "ftp://agency.example.cn/x"}, headers=agency)
    assert bad.status_code == 422
    creds = client.put(
        "/api/v1/agency-webhook", json={"url": "https://user:pw@agency.example.cn/x"}, headers=agency
    )
    assert creds.status_code == 422
    assert client.get("/api/v1/agency-webhook", headers=agency).status_code == 404
    answer = client.put("/api/v1/agency-webhook", json={"url": receiver.url}, headers=agency)
    assert answer.status_code == 200, answer.text
    receiver.secret = answer.json()["secret"]
    assert receiver.secret
    assert receiver.secret.startswith("whsec_")
    shown = client.get("/api/v1/agency-webhook", headers=agency).json()
    assert shown["url"] == receiver.url
    assert "secret" not in shown
    assert receiver.secret not in json.dumps(shown)

    # The SME submits a demand: three orders go to the demo agency, one to the guarantor (which has
    # no webhook: nothing is sent for it).
    draft = client.post(
        "/api/v1/demands", json=demand_body(guarantee_wanted=True), headers=bearer(tokens[SME])
    )
    assert draft.status_code == 201, draft.text
    submitted = client.post(f"/api/v1/demands/{draft.json()['id']}/submission", headers=bearer(tokens[SME]))
    assert submitted.status_code == 200, submitted.text
    events = _webhook_events(factory)
    assert len(events) == 4
    demo_agency = _org_id(factory, AGENCY)
    ours = [e for e in events if e.payload["agency_id"] == demo_agency]
    assert len(ours) == 3
    first, second, third = (str(e.id) for e in ours)

    # The receiver is down for the first four requests.
    receiver.fail_first = 4
    _deliver(factory, settings, clock)
    assert [r["headers"]["yunrong-event-id"] for r in receiver.requests] == [first, second, third]
    assert receiver.processed == []

    # Backoff: nothing is retried before its time (2 s after the first failure).
    _deliver(factory, settings, clock)
    clock.advance(timedelta(seconds=1))
    _deliver(factory, settings, clock)
    assert len(receiver.requests) == 3
    clock.advance(timedelta(seconds=1))
    _deliver(factory, settings, clock)
    assert [r["headers"]["yunrong-event-id"] for r in receiver.requests[3:]] == [first, second, third]
    assert receiver.processed == [second, third]
    clock.advance(timedelta(seconds=3))
    _deliver(factory, settings, clock)
    assert len(receiver.requests) == 6  # the next backoff is 4 s
    clock.advance(timedelta(seconds=1))
    _deliver(factory, settings, clock)
    assert len(receiver.requests) == 7
    assert receiver.processed == [second, third, first]

    # Every attempt is signed over its timestamp and the raw body; the event id and the body stay
    # the same across retries (receivers deduplicate on the id).
    by_event: dict[str, list[dict[str, Any]]] = {}
    for request in receiver.requests:
        headers = request["headers"]
        assert request["path"] == "/hooks/yunrong"
        assert headers["content-type"] == "application/json"
        assert headers["yunrong-event-type"] == "service_order.assigned"
        assert headers["yunrong-signature"] == sign_webhook(
            receiver.secret, headers["yunrong-timestamp"], request["body"]
        )
        by_event.setdefault(headers["yunrong-event-id"], []).append(request)
    assert {k: len(v) for k, v in by_event.items()} == {first: 3, second: 2, third: 2}
    for event_id, requests in by_event.items():
        assert len({r["body"] for r in requests}) == 1
        document = json.loads(requests[0]["body"])
        assert document["id"] == event_id
        assert document["type"] == "service_order.assigned"
        assert document["data"]["order"]["service"] in (
            "business_licence_check",
            "bank_account_check",
            "sme_credit_rating",
        )
    assert len({r["headers"]["yunrong-timestamp"] for r in by_event[first]}) == 3

    # A replayed delivery is acknowledged without being processed twice.
    replay = receiver.requests[-1]
    response = httpx.post(receiver.url, content=replay["body"], headers=_signed_headers(replay["headers"]))
    assert response.status_code == 200
    assert response.text == "duplicate, ignored"
    assert receiver.processed == [second, third, first]

    # Every event is delivered, the guarantor's with no request at all.
    assert {e.status for e in _webhook_events(factory)} == {EventStatus.DELIVERED.value}

    # The delivery log shows every attempt to the agency, newest first.
    log = client.get("/api/v1/agency-webhook/deliveries", headers=agency)
    assert log.status_code == 200
    rows = list(reversed(log.json()))
    assert [(r["event_id"], r["attempt"], r["status_code"], r["ok"]) for r in rows] == [
        (first, 1, 500, False),
        (second, 1, 500, False),
        (third, 1, 500, False),
        (first, 2, 500, False),
        (second, 2, 200, True),
        (third, 2, 200, True),
        (first, 3, 200, True),
    ]
    assert rows[0]["error"] == "the receiver answered 500"
    assert rows[0]["response_excerpt"] == "temporarily unavailable"
    assert all(r["url"] == receiver.url for r in rows)

    # Only that agency reads it: another agency has its own (empty) log; other roles are refused.
    guarantor = bearer(_token(client, factory, settings, system_ctx, GUARANTOR))
    assert client.get("/api/v1/agency-webhook/deliveries", headers=guarantor).json() == []
    assert client.get("/api/v1/agency-webhook", headers=guarantor).status_code == 404
    for email in (SME, OPERATOR, "regulator1@demo.yunrong.cn", "investor@demo.yunrong.cn"):
        for method, path in (
            ("GET", "/api/v1/agency-webhook/deliveries"),
            ("GET", "/api/v1/agency-webhook"),
            ("PUT", "/api/v1/agency-webhook"),
        ):
            refused = client.request(method, path, json={"url": receiver.url}, headers=bearer(tokens[email]))
            assert refused.status_code == 403, (email, method, path)
            assert first not in refused.text
            assert receiver.url not in refused.text


def test_the_receiver_refuses_stale_tampered_and_foreign_deliveries(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    receiver: Receiver,
) -> None:
    agency = bearer(tokens[AGENCY])
    old_secret = client.put("/api/v1/agency-webhook", json={"url": receiver.url}, headers=agency).json()[
        "secret"
    ]
    receiver.secret = old_secret
    draft = client.post("/api/v1/demands", json=demand_body(), headers=bearer(tokens[SME]))
    client.post(f"/api/v1/demands/{draft.json()['id']}/submission", headers=bearer(tokens[SME]))
    _deliver(factory, settings, clock)
    assert len(receiver.processed) == 3
    genuine = receiver.requests[0]
    headers, body = genuine["headers"], genuine["body"]
    timestamp, signature = headers["yunrong-timestamp"], headers["yunrong-signature"]

    verify_webhook(old_secret, timestamp, body, signature, clock.now())  # genuine and fresh
    verify_webhook(old_secret, timestamp, body, signature, clock.now() + timedelta(seconds=300))

    def refused(**changes: Any) -> str:
        args: dict[str, Any] = {
            "secret": old_secret,
            "timestamp": timestamp,
            "body": body,
            "signature": signature,
            "now": clock.now(),
        }
        args.update(changes)
        with pytest.raises(WebhookRejected) as caught:
            verify_webhook(**args)
        assert caught.value.status == 401
        return caught.value.detail

    assert "stale" in refused(now=clock.now() + timedelta(seconds=301))
    assert "stale" in refused(now=clock.now() - timedelta(seconds=301))
    assert "stale" in refused(now=clock.now() + timedelta(seconds=61), tolerance=60)
    tampered = body.replace(b'"fee_minor":', b'"fee_minor":1')
    assert tampered != body
    assert "does not match" in refused(body=tampered)
    assert "does not match" in refused(timestamp=str(int(timestamp) + 1))
    assert "does not match" in refused(secret="whsec_someone-else")
    assert "does not match" in refused(signature="v0=" + signature[3:])
    assert "required" in refused(signature=None)
    assert "required" in refused(timestamp="")
    assert "number" in refused(timestamp="yesterday")

    # Over HTTP, the receiver answers a stale replay with a clear 401 and does not process it.
    clock.advance(timedelta(minutes=10))
    replay = httpx.post(receiver.url, content=body, headers=_signed_headers(headers))
    assert replay.status_code == 401
    assert "stale" in replay.text
    assert len(receiver.processed) == 3

    # Rotating the secret: deliveries from now on are signed with the new one only.
    new_secret = client.put("/api/v1/agency-webhook", json={"url": receiver.url}, headers=agency).json()[
        "secret"
    ]
    assert new_secret != old_secret
    fresh = str(int(clock.now().timestamp()))
    with pytest.raises(WebhookRejected):
        verify_webhook(new_secret, fresh, body, sign_webhook(old_secret, fresh, body), clock.now())
    # A receiver that accepts both during its own switch-over may pass both signatures.
    both = f"{sign_webhook(old_secret, fresh, body)},{sign_webhook(new_secret, fresh, body)}"
    verify_webhook(new_secret, fresh, body, both, clock.now())
