"""The outbox worker: claims due events, delivers them, retries with backoff, dead-letters.

Several workers may run against one PostgreSQL: each claims rows with ``FOR UPDATE SKIP LOCKED``
inside its transaction, so no event is handed to two workers at once. On SQLite the write lock
(BEGIN IMMEDIATE) serialises workers instead.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from yunrong.config import Settings
from yunrong.db import is_postgres, unit_of_work
from yunrong.kit.clock import Clock
from yunrong.messaging.handlers import HANDLERS, DeliveryContext, Handler
from yunrong.messaging.model import EventStatus, backoff, transition
from yunrong.messaging.tables import OutboxEvent

log = logging.getLogger("yunrong.worker")


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def _claim(session: Session, *, clock: Clock, batch: int) -> list[OutboxEvent]:
    query = (
        select(OutboxEvent)
        .where(OutboxEvent.status == EventStatus.PENDING.value, OutboxEvent.next_attempt_at <= clock.now())
        .order_by(OutboxEvent.next_attempt_at, OutboxEvent.id)
        .limit(batch)
    )
    if is_postgres(session):
        query = query.with_for_update(skip_locked=True)
    return list(session.scalars(query).all())


def deliver_due(
    factory: sessionmaker[Session],
    *,
    settings: Settings,
    clock: Clock,
    worker_id: str,
    handlers: Mapping[str, Handler] | None = None,
    batch: int | None = None,
) -> int:
    """Deliver one batch of due events in one transaction. Returns how many were attempted."""
    registry = HANDLERS if handlers is None else handlers
    ctx = DeliveryContext(settings=settings, worker_id=worker_id)
    with unit_of_work(factory) as session:
        events = _claim(session, clock=clock, batch=batch or settings.worker_batch)
        for event in events:
            fn = registry.get(event.topic)
            event.attempts += 1
            try:
                if fn is None:
                    raise LookupError(f"no handler for topic {event.topic!r}")
                with session.begin_nested():
                    fn(event, ctx)
            except Exception as exc:
                event.last_error = f"{type(exc).__name__}: {exc}"[:2000]
                if fn is None or event.attempts >= settings.outbox_max_attempts:
                    event.status = transition(EventStatus(event.status), EventStatus.DEAD).value
                    log.error(
                        "outbox event dead",
                        extra={"event_id": str(event.id), "topic": event.topic, "error": event.last_error},
                    )
                else:
                    event.next_attempt_at = clock.now() + backoff(event.attempts)
                    log.warning(
                        "outbox delivery failed, will retry",
                        extra={"event_id": str(event.id), "attempts": event.attempts},
                    )
            else:
                event.status = transition(EventStatus(event.status), EventStatus.DELIVERED).value
                event.delivered_at = clock.now()
                event.delivered_by = worker_id
                event.last_error = None
        return len(events)


def run_worker(
    factory: sessionmaker[Session],
    *,
    settings: Settings,
    clock: Clock,
    stop: threading.Event,
    worker_id: str | None = None,
) -> None:
    """Loop until ``stop`` is set: deliver while there is work, otherwise wait the poll interval."""
    wid = worker_id or default_worker_id()
    log.info("worker started", extra={"worker_id": wid})
    while not stop.is_set():
        try:
            attempted = deliver_due(factory, settings=settings, clock=clock, worker_id=wid)
        except Exception:
            log.exception("worker round failed; will try again")
            attempted = 0
        if attempted == 0:
            stop.wait(settings.worker_poll_seconds)
    log.info("worker stopped", extra={"worker_id": wid})
