"""The transactional outbox: written with the change, delivered once, retried, dead-lettered."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from email import message_from_bytes

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from yunrong.config import Settings
from yunrong.db import unit_of_work
from yunrong.identity.model import Context
from yunrong.kit.clock import FrozenClock
from yunrong.messaging.handlers import DeliveryContext, Event
from yunrong.messaging.model import EventStatus
from yunrong.messaging.service import emit, requeue_dead
from yunrong.messaging.tables import OutboxEvent
from yunrong.messaging.worker import deliver_due


def _emit(factory: sessionmaker[Session], ctx: Context, n: int, topic: str = "test.topic") -> list[str]:
    with unit_of_work(factory) as session:
        return [str(emit(session, ctx=ctx, topic=topic, payload={"n": i}).id) for i in range(n)]


def _status(factory: sessionmaker[Session]) -> Counter[str]:
    with unit_of_work(factory) as session:
        return Counter(session.scalars(select(OutboxEvent.status)).all())


def test_an_event_of_a_rolled_back_change_is_never_delivered(
    factory: sessionmaker[Session], system_ctx: Context
) -> None:
    with pytest.raises(RuntimeError), unit_of_work(factory) as session:  # noqa: PT012 - a crash mid-transaction
        emit(session, ctx=system_ctx, topic="test.topic", payload={})
        raise RuntimeError("the change failed")
    assert _status(factory) == Counter()


def test_email_is_written_once_as_a_real_message(
    factory: sessionmaker[Session], system_ctx: Context, settings: Settings, clock: FrozenClock
) -> None:
    with unit_of_work(factory) as session:
        event = emit(
            session,
            ctx=system_ctx,
            topic="email.send",
            payload={"to": "li@example.cn", "subject": "审核结果 Review result", "body": "已通过。Approved."},
        )
    assert deliver_due(factory, settings=settings, clock=clock, worker_id="w1") == 1
    assert deliver_due(factory, settings=settings, clock=clock, worker_id="w1") == 0
    files = list(settings.mail_dir.glob("*.eml"))
    assert [f.name for f in files] == [f"{event.id}.eml"]
    message = message_from_bytes(files[0].read_bytes())
    assert message["To"] == "li@example.cn"
    assert "Review result" in str(message["Subject"]) or "=?utf-8?" in str(message["Subject"])
    assert _status(factory) == Counter({EventStatus.DELIVERED.value: 1})


def test_failures_back_off_then_dead_letter_then_requeue(
    factory: sessionmaker[Session], system_ctx: Context, settings: Settings, clock: FrozenClock
) -> None:
    attempts: list[str] = []

    def flaky(event: Event, ctx: DeliveryContext) -> None:
        attempts.append(str(event.id))
        raise ConnectionError("the agency's server is down")

    handlers = {"test.topic": flaky}
    settings = settings.model_copy(update={"outbox_max_attempts": 3})
    [event_id] = _emit(factory, system_ctx, 1)
    assert deliver_due(factory, settings=settings, clock=clock, worker_id="w", handlers=handlers) == 1
    # Not due again until the backoff has passed.
    assert deliver_due(factory, settings=settings, clock=clock, worker_id="w", handlers=handlers) == 0
    clock.advance(timedelta(seconds=2))
    assert deliver_due(factory, settings=settings, clock=clock, worker_id="w", handlers=handlers) == 1
    clock.advance(timedelta(seconds=3))
    assert deliver_due(factory, settings=settings, clock=clock, worker_id="w", handlers=handlers) == 0
    clock.advance(timedelta(seconds=1))
    assert deliver_due(factory, settings=settings, clock=clock, worker_id="w", handlers=handlers) == 1
    assert len(attempts) == 3
    with unit_of_work(factory) as session:
        event = session.get(OutboxEvent, __import__("uuid").UUID(event_id))
        assert event is not None
        assert event.status == EventStatus.DEAD.value
        assert event.last_error == "ConnectionError: the agency's server is down"
        requeue_dead(session, ctx=system_ctx, event_id=event.id)
    ok = {"test.topic": lambda event, ctx: None}
    assert deliver_due(factory, settings=settings, clock=clock, worker_id="w", handlers=ok) == 1
    assert _status(factory) == Counter({EventStatus.DELIVERED.value: 1})


def test_unknown_topic_goes_straight_to_dead(
    factory: sessionmaker[Session], system_ctx: Context, settings: Settings, clock: FrozenClock
) -> None:
    _emit(factory, system_ctx, 1, topic="nobody.listens")
    deliver_due(factory, settings=settings, clock=clock, worker_id="w", handlers={})
    assert _status(factory) == Counter({EventStatus.DEAD.value: 1})


def test_a_handler_database_write_is_undone_when_it_fails(
    factory: sessionmaker[Session], system_ctx: Context, settings: Settings, clock: FrozenClock
) -> None:
    from yunrong.supervision import service as audit
    from yunrong.supervision.tables import AuditRecord

    def half_done(event: Event, ctx: DeliveryContext) -> None:
        with unit_of_work(ctx.factory) as session:
            audit.record(session, ctx=system_ctx, action="half.done", object_type="x", object_id="1")
            raise RuntimeError("crash after a write")

    _emit(factory, system_ctx, 1)
    deliver_due(factory, settings=settings, clock=clock, worker_id="w", handlers={"test.topic": half_done})
    with unit_of_work(factory) as session:
        assert session.scalars(select(AuditRecord).where(AuditRecord.action == "half.done")).all() == []
        event = session.scalars(select(OutboxEvent)).one()
        assert event.status == EventStatus.PENDING.value
        assert event.last_error == "RuntimeError: crash after a write"


def test_a_claimed_event_is_leased_and_retried_if_its_worker_dies(
    factory: sessionmaker[Session], system_ctx: Context, settings: Settings, clock: FrozenClock
) -> None:
    from yunrong.messaging.worker import claim

    [event_id] = _emit(factory, system_ctx, 1)
    taken = claim(factory, settings=settings, clock=clock, worker_id="dies", batch=10)
    assert [str(e.id) for e in taken] == [event_id]
    # The worker that claimed it dies before delivering; nobody else may take it during the lease.
    assert claim(factory, settings=settings, clock=clock, worker_id="other", batch=10) == []
    delivered: list[str] = []
    clock.advance(timedelta(seconds=settings.outbox_lease_seconds + 1))
    handlers = {"test.topic": lambda event, ctx: delivered.append(str(event.id))}
    assert deliver_due(factory, settings=settings, clock=clock, worker_id="other", handlers=handlers) == 1
    assert delivered == [event_id]
    assert _status(factory) == Counter({EventStatus.DELIVERED.value: 1})


def test_several_workers_never_deliver_an_event_twice(
    factory: sessionmaker[Session], system_ctx: Context, settings: Settings, clock: FrozenClock
) -> None:
    """Four workers race over the same queue; every event is delivered exactly once.

    On PostgreSQL the workers overlap for real (FOR UPDATE SKIP LOCKED); on SQLite they queue
    on the write lock. A handler that notices a second delivery of one id records it.
    """
    ids = _emit(factory, system_ctx, 200)
    delivered: list[str] = []
    lock = threading.Lock()
    by_worker: Counter[str] = Counter()

    def record(event: Event, ctx: DeliveryContext) -> None:
        with lock:
            delivered.append(str(event.id))
            by_worker[ctx.worker_id] += 1

    handlers = {"test.topic": record}
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            while deliver_due(
                factory, settings=settings, clock=clock, worker_id=name, handlers=handlers, batch=5
            ):
                pass
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(f"worker-{i}",)) for i in range(4)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert errors == []
    assert sorted(delivered) == sorted(ids)  # each once, none missing
    assert _status(factory) == Counter({EventStatus.DELIVERED.value: 200})
