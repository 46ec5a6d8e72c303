"""Step 4's pushes leave the platform for real: an institution's system receives each push as a
signed ``matching.push`` webhook (a live local HTTP receiver), every investor's people receive the
e-mail through a live local SMTP server, and an unsubscribed investor or one at the daily cap
receives nothing at all."""

from __future__ import annotations

import json
import socketserver
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import bearer, login_token
from tests.integration.verification.demand_data import demand_body
from yunrong.config import Settings
from yunrong.db import unit_of_work
from yunrong.decisions.tables import CreditDecision, ModelVersion
from yunrong.demands.tables import Demand
from yunrong.identity.model import Context
from yunrong.identity.tables import User
from yunrong.kit.clock import FrozenClock
from yunrong.matching import service as matching
from yunrong.matching.tables import Push
from yunrong.messaging.model import EventStatus
from yunrong.messaging.tables import Notification, OutboxEvent
from yunrong.messaging.worker import deliver_due
from yunrong.parties.tables import Investor
from yunrong.verification.webhooks import WebhookRejected, sign_webhook, verify_webhook

SME = "sme@demo.yunrong.cn"
PERSON = "investor@demo.yunrong.cn"
INSTITUTION = "institution@demo.yunrong.cn"

PREFS: dict[str, Any] = {
    "currency": "CNY",
    "amount_per_loan": "10000.00",
    "total_budget": "200000.00",
    "min_term_months": 6,
    "max_term_months": 24,
    "grades": ["A", "BBB", "BB"],
    "products": ["p2p_loan", "bank_loan"],
    "innovation": "neutral",
    "min_transparency": 0,
    "min_guarantee_coverage": "0",
}


# --- a live webhook receiver ---------------------------------------------------------------------


class Receiver:
    """An institution's endpoint on 127.0.0.1: records every request, answers 401 unless
    ``verify_webhook`` accepts it, and can be told to fail the first N genuine ones (500)."""

    def __init__(self, clock: FrozenClock) -> None:
        self.clock = clock
        self.secret: str | None = None
        self.fail_first = 0
        self.requests: list[dict[str, Any]] = []
        self.accepted: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                request = {"headers": headers, "body": body, "path": self.path}
                receiver.requests.append(request)
                status, answer = receiver.answer(request)
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(answer.encode())

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/yunrong/pushes"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, request: dict[str, Any]) -> tuple[int, str]:
        headers = request["headers"]
        try:
            assert self.secret is not None
            verify_webhook(
                self.secret,
                headers.get("yunrong-timestamp"),
                request["body"],
                headers.get("yunrong-signature"),
                self.clock.now(),
            )
        except WebhookRejected as exc:
            return exc.status, exc.detail
        if self.fail_first > 0:
            self.fail_first -= 1
            return 500, "temporarily unavailable"
        self.accepted.append(request)
        return 200, "ok"

    def demands(self) -> list[str]:
        return [json.loads(r["body"])["data"]["demand_id"] for r in self.accepted]


@pytest.fixture
def receiver(clock: FrozenClock) -> Iterator[Receiver]:
    r = Receiver(clock)
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


# --- a live SMTP server (stdlib only) ------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_to: list[str]
    message: EmailMessage


class SmtpSink:
    """Just enough of RFC 5321 on 127.0.0.1 for ``smtplib``: EHLO/HELO, MAIL, RCPT, DATA (with
    dot-unstuffing), RSET, NOOP, QUIT. Each message is kept once the server has answered 250."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write(line.encode() + b"\r\n")
                self.wfile.flush()

            def handle(self) -> None:
                self.reply("220 sink.test ESMTP ready")
                mail_from: str | None = None
                rcpt_to: list[str] = []
                while line := self.rfile.readline():
                    command = line.decode("ascii", errors="replace").rstrip("\r\n")
                    verb = command.split(" ", 1)[0].upper()
                    upper = command.upper()
                    if verb in ("EHLO", "HELO"):
                        mail_from, rcpt_to = None, []
                        self.reply("250 sink.test")
                    elif upper.startswith("MAIL FROM:"):
                        mail_from, rcpt_to = _address(command[10:]), []
                        self.reply("250 OK")
                    elif upper.startswith("RCPT TO:"):
                        if mail_from is None:
                            self.reply("503 MAIL first")
                            continue
                        rcpt_to.append(_address(command[8:]))
                        self.reply("250 OK")
                    elif verb == "DATA":
                        if mail_from is None or not rcpt_to:
                            self.reply("503 RCPT first")
                            continue
                        self.reply("354 end with <CRLF>.<CRLF>")
                        lines: list[bytes] = []
                        while (data := self.rfile.readline()) not in (b".\r\n", b".\n", b""):
                            lines.append(data[1:] if data.startswith(b".") else data)
                        message = BytesParser(policy=default_policy).parsebytes(b"".join(lines))
                        assert isinstance(message, EmailMessage)
                        sink.received.append(Received(mail_from, rcpt_to, message))
                        mail_from, rcpt_to = None, []
                        self.reply("250 OK queued")
                    elif verb == "RSET":
                        mail_from, rcpt_to = None, []
                        self.reply("250 OK")
                    elif verb == "NOOP":
                        self.reply("250 OK")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("502 command not implemented")

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def to(self, address: str) -> list[EmailMessage]:
        return [r.message for r in self.received if r.message["To"] == address]

    def about(self, title: str) -> list[Received]:
        return [r for r in self.received if title in str(r.message["Subject"])]


def _address(argument: str) -> str:
    return argument.strip().split(" ", 1)[0].strip("<>")


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    s = SmtpSink()
    s.thread.start()
    yield s
    s.server.shutdown()
    s.server.server_close()


@pytest.fixture
def smtp_settings(settings: Settings, sink: SmtpSink) -> Settings:
    return settings.model_copy(
        update={"mail_backend": "smtp", "smtp_host": "127.0.0.1", "smtp_port": sink.port}
    )


# --- the world -----------------------------------------------------------------------------------


def _org(client: TestClient, token: str) -> uuid.UUID:
    return uuid.UUID(client.get("/api/v1/me", headers=bearer(token)).json()["organisation"]["id"])


def _investors(
    client: TestClient, tokens: dict[str, str], factory: sessionmaker[Session]
) -> tuple[uuid.UUID, uuid.UUID]:
    """The demo person (C3) and institution (C5), each with preferences that fit every test listing."""
    person, institution = _org(client, tokens[PERSON]), _org(client, tokens[INSTITUTION])
    with unit_of_work(factory) as session:
        for org_id, level in ((person, "C3"), (institution, "C5")):
            investor = session.get(Investor, org_id)
            assert investor is not None
            investor.risk_level = level
    for email in (PERSON, INSTITUTION):
        saved = client.put("/api/v1/me/investment-preferences", json=PREFS, headers=bearer(tokens[email]))
        assert saved.status_code == 200, saved.text
    return person, institution


def _listed(
    client: TestClient, tokens: dict[str, str], factory: sessionmaker[Session], clock: FrozenClock, title: str
) -> Demand:
    """A demand drafted through the API, then listed with a BBB decision written directly (agencies
    and the credit engine have their own tests)."""
    draft = client.post(
        "/api/v1/demands",
        json=demand_body(title=title, project_key=f"push-{uuid.uuid4().hex[:8]}"),
        headers=bearer(tokens[SME]),
    )
    assert draft.status_code == 201, draft.text
    now = clock.now()
    with unit_of_work(factory) as session:
        demand = session.get(Demand, uuid.UUID(draft.json()["id"]))
        assert demand is not None
        demand.status = "listed"
        demand.listed_at = now
        model_row = ModelVersion(
            name=f"test-{title}",
            version=1,
            role="champion",
            artifact_path="-",
            artifact_sha256="0" * 64,
            card={},
            reference_scores={},
            registered_by="test",
            registered_at=now,
        )
        session.add(model_row)
        session.flush()
        session.add(
            CreditDecision(
                demand_id=demand.id,
                model_id=model_row.id,
                as_of=now,
                features={},
                pd=0.03,
                score=600.0,
                grade="BBB",
                declined=False,
                annual_rate=Decimal("0.085"),
                limit_minor=demand.amount_minor,
                price={},
                reasons=[],
                decided_at=now,
            )
        )
        session.flush()
        session.expunge(demand)
    return demand


def _push(factory: sessionmaker[Session], ctx: Context, demand: Demand) -> set[uuid.UUID]:
    """What the platform does when a demand is listed; returns who was pushed."""
    with unit_of_work(factory) as session:
        return {p.investor_org_id for p in matching.push_listing(session, ctx=ctx, demand_id=demand.id)}


def _deliver(factory: sessionmaker[Session], settings: Settings, clock: FrozenClock) -> int:
    return deliver_due(factory, settings=settings, clock=clock, worker_id="test-worker", batch=1000)


def _register(client: TestClient, token: str, receiver: Receiver) -> None:
    answer = client.put("/api/v1/webhook", json={"url": receiver.url}, headers=bearer(token))
    assert answer.status_code == 200, answer.text
    receiver.secret = answer.json()["secret"]
    assert receiver.secret.startswith("whsec_")


def _inbox(factory: sessionmaker[Session], org_id: uuid.UUID, demand: Demand) -> int:
    with factory() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(Notification)
                .where(
                    Notification.organisation_id == org_id,
                    Notification.kind == "matching.push",
                    Notification.link == f"/investor/listings/{demand.id}",
                )
            )
            or 0
        )


def _events(factory: sessionmaker[Session], topic: str) -> list[OutboxEvent]:
    with factory() as session:
        return list(
            session.scalars(select(OutboxEvent).where(OutboxEvent.topic == topic).order_by(OutboxEvent.id))
        )


def _emails_of(factory: sessionmaker[Session], org_id: uuid.UUID) -> list[str]:
    with factory() as session:
        return list(
            session.scalars(
                select(User.email).where(User.organisation_id == org_id, User.is_active.is_(True))
            )
        )


# --- the tests -----------------------------------------------------------------------------------


def test_an_institution_receives_each_push_as_a_signed_webhook(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    system_ctx: Context,
    receiver: Receiver,
) -> None:
    person, institution = _investors(client, tokens, factory)
    institution_h, person_h = bearer(tokens[INSTITUTION]), bearer(tokens[PERSON])

    # An individual investor has no webhook, and is told why.
    for method, path in (
        ("PUT", "/api/v1/webhook"),
        ("GET", "/api/v1/webhook"),
        ("GET", "/api/v1/webhook/deliveries"),
        ("PUT", "/api/v1/agency-webhook"),
    ):
        refused = client.request(method, path, json={"url": receiver.url}, headers=person_h)
        assert refused.status_code == 403, (method, path, refused.text)
        assert "only institutional investors have a webhook" in refused.json()["detail"]
    # The institution registers its endpoint; the secret is shown once.
    assert client.get("/api/v1/webhook", headers=institution_h).status_code == 404
    _register(client, tokens[INSTITUTION], receiver)
    shown = client.get("/api/v1/webhook", headers=institution_h).json()
    assert shown["url"] == receiver.url
    assert receiver.secret is not None
    assert receiver.secret not in json.dumps(shown)
    _deliver(factory, settings, clock)  # whatever the demo queued before this test's push

    demand = _listed(client, tokens, factory, clock, "冷链仓储扩建 Cold store")
    assert _push(factory, system_ctx, demand) == {person, institution}
    events = _events(factory, "organisation.webhook")
    assert [e.payload["organisation_id"] for e in events] == [str(institution)]  # none for the person

    # The receiver is down once: the outbox retries after its backoff.
    receiver.fail_first = 1
    _deliver(factory, settings, clock)
    assert len(receiver.requests) == 1
    assert receiver.accepted == []
    clock.advance(timedelta(seconds=2))
    _deliver(factory, settings, clock)
    assert len(receiver.requests) == 2
    assert len(receiver.accepted) == 1
    assert {e.status for e in _events(factory, "organisation.webhook")} == {EventStatus.DELIVERED.value}

    # Both attempts were the same event, the same body, each signed with the institution's secret.
    first, second = receiver.requests
    assert first["body"] == second["body"]
    for request in receiver.requests:
        headers = request["headers"]
        assert request["path"] == "/yunrong/pushes"
        assert headers["content-type"] == "application/json"
        assert headers["yunrong-event-id"] == str(events[0].id)
        assert headers["yunrong-event-type"] == "matching.push"
        assert headers["yunrong-signature"] == sign_webhook(
            receiver.secret or "", headers["yunrong-timestamp"], request["body"]
        )
        verify_webhook(
            receiver.secret or "",
            headers["yunrong-timestamp"],
            request["body"],
            headers["yunrong-signature"],
            clock.now(),
        )
    with pytest.raises(WebhookRejected):
        verify_webhook(
            "whsec_another",
            second["headers"]["yunrong-timestamp"],
            second["body"],
            second["headers"]["yunrong-signature"],
            clock.now(),
        )

    document = json.loads(second["body"])
    assert document["id"] == str(events[0].id)
    assert document["type"] == "matching.push"
    assert document["organisation_id"] == str(institution)
    data = document["data"]
    with factory() as session:
        push = session.scalars(
            select(Push).where(Push.investor_org_id == institution, Push.demand_id == demand.id)
        ).one()
    assert data["push_id"] == str(push.id)
    assert data["demand_id"] == str(demand.id)
    assert data["demand_ref"] == demand.ref
    assert data["title"] == "冷链仓储扩建 Cold store"
    assert data["grade"] == "BBB"
    assert data["amount_minor"] == demand.amount_minor == 30_000_000
    assert data["currency"] == "CNY"
    assert data["term_months"] == 12
    assert Decimal(data["annual_rate"]) == Decimal("0.085")
    assert data["reasons"] == push.reasons
    codes = {r["code"] for r in data["reasons"]}
    assert {"grade", "term", "product", "suitable", "expected-return"} <= codes
    assert all(r["en"] and r["zh"] for r in data["reasons"])
    assert data["link"] == f"/investor/listings/{demand.id}"
    assert data["url"] == settings.public_url.rstrip("/") + data["link"]

    # The institution's delivery log shows both attempts, newest first; its inbox has the push too.
    log = client.get("/api/v1/webhook/deliveries", headers=institution_h)
    assert log.status_code == 200, log.text
    assert [(r["event_type"], r["attempt"], r["status_code"], r["ok"]) for r in log.json()] == [
        ("matching.push", 2, 200, True),
        ("matching.push", 1, 500, False),
    ]
    assert _inbox(factory, institution, demand) == 1
    assert _inbox(factory, person, demand) == 1
    # The agency's log is its own: it sees none of the institution's deliveries.
    agency = client.get("/api/v1/webhook/deliveries", headers=bearer(tokens["agency@demo.yunrong.cn"]))
    assert agency.status_code == 200
    assert all(r["event_id"] != str(events[0].id) for r in agency.json())


def test_the_push_email_reaches_the_investor_through_smtp(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    smtp_settings: Settings,
    clock: FrozenClock,
    system_ctx: Context,
    sink: SmtpSink,
) -> None:
    person, _ = _investors(client, tokens, factory)
    unsubscribed = client.put(
        "/api/v1/me/push-settings",
        json={"daily_cap": 5, "unsubscribed": True},
        headers=bearer(tokens[INSTITUTION]),
    )
    assert unsubscribed.status_code == 200, unsubscribed.text
    _deliver(factory, settings, clock)  # what the demo queued goes to files, not to the sink
    assert sink.received == []

    demand = _listed(client, tokens, factory, clock, "果蔬冷库 Fruit cold room")
    assert _push(factory, system_ctx, demand) == {person}
    queued = [e for e in _events(factory, "email.send") if e.status == EventStatus.PENDING.value]
    assert len(queued) >= 1
    assert _deliver(factory, smtp_settings, clock) == len(queued)
    assert {e.status for e in _events(factory, "email.send")} == {EventStatus.DELIVERED.value}

    people = _emails_of(factory, person)
    assert PERSON in people
    assert sorted(r.rcpt_to[0] for r in sink.received) == sorted(people)
    for received in sink.received:
        message = received.message
        assert received.mail_from == settings.mail_from
        assert received.rcpt_to == [message["To"]]
        assert message["From"] == settings.mail_from
        assert "果蔬冷库 Fruit cold room" in str(message["Subject"])
        assert "grade BBB" in str(message["Subject"])
        body = message.get_body()
        assert body is not None
        text = body.get_content()
        assert demand.ref in text
        assert "unsubscribe" in text
        assert "退订" in text
        assert any(message["Message-ID"] == f"<{e.id}@yunrong>" for e in queued)
    (mine,) = sink.to(PERSON)
    assert "为您推荐" in str(mine["Subject"])


def test_unsubscribed_or_capped_investors_receive_nothing(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    smtp_settings: Settings,
    clock: FrozenClock,
    system_ctx: Context,
    receiver: Receiver,
    sink: SmtpSink,
) -> None:
    person, institution = _investors(client, tokens, factory)
    _register(client, tokens[INSTITUTION], receiver)
    capped = client.put(
        "/api/v1/me/push-settings", json={"daily_cap": 1}, headers=bearer(tokens[INSTITUTION])
    )
    assert capped.status_code == 200, capped.text
    unsubscribed = client.put(
        "/api/v1/me/push-settings",
        json={"daily_cap": 5, "unsubscribed": True},
        headers=bearer(tokens[PERSON]),
    )
    assert unsubscribed.status_code == 200, unsubscribed.text
    _deliver(factory, settings, clock)
    person_mail, institution_mail = _emails_of(factory, person), _emails_of(factory, institution)

    # The first listing uses up the institution's one push of the day; the person is unsubscribed.
    first = _listed(client, tokens, factory, clock, "第一笔 First listing")
    assert _push(factory, system_ctx, first) == {institution}
    _deliver(factory, smtp_settings, clock)
    assert receiver.demands() == [str(first.id)]
    assert sorted(r.rcpt_to[0] for r in sink.about("First listing")) == sorted(institution_mail)
    assert _inbox(factory, institution, first) == len(institution_mail)
    assert _inbox(factory, person, first) == 0

    # The second: the institution is at its cap, the person still unsubscribed: nothing anywhere.
    clock.advance(timedelta(minutes=5))
    second = _listed(client, tokens, factory, clock, "第二笔 Second listing")
    assert _push(factory, system_ctx, second) == set()
    _deliver(factory, smtp_settings, clock)
    assert receiver.demands() == [str(first.id)]
    assert len(receiver.requests) == 1
    assert sink.about("Second listing") == []
    assert len(sink.received) == len(institution_mail)
    for org_id in (person, institution):
        assert _inbox(factory, org_id, second) == 0
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Push).where(Push.demand_id == second.id)) == 0
    assert all(
        e.payload["data"]["demand_id"] != str(second.id) for e in _events(factory, "organisation.webhook")
    )
    assert all("Second listing" not in e.payload["subject"] for e in _events(factory, "email.send"))

    # It was the cap and the unsubscription that held them back: a day later, resubscribed, both get it.
    clock.advance(timedelta(days=1))
    resubscribed = client.put(
        "/api/v1/me/push-settings",
        json={"daily_cap": 5, "unsubscribed": False},
        headers=bearer(login_token(client, PERSON)),
    )
    assert resubscribed.status_code == 200, resubscribed.text
    assert _push(factory, system_ctx, second) == {person, institution}
    _deliver(factory, smtp_settings, clock)
    assert receiver.demands() == [str(first.id), str(second.id)]
    assert sorted(r.rcpt_to[0] for r in sink.about("Second listing")) == sorted(
        person_mail + institution_mail
    )
    assert _inbox(factory, person, second) == len(person_mail)
    assert _inbox(factory, institution, second) == len(institution_mail)
