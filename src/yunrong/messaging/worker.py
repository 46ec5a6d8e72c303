"""The outbox worker: claims due events, delivers them, retries with backoff, dead-letters.

Claiming and delivering are separate: a short transaction claims a batch (on PostgreSQL with
``FOR UPDATE SKIP LOCKED``, so two workers never claim one event; on SQLite the write lock
serialises them) by pushing its ``next_attempt_at`` forward by a lease. Delivery then happens with
no database transaction open (an HTTP call must not hold locks), and a second short transaction
records the result. A worker that dies mid-delivery loses its lease and the event is retried.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Mapping
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from yunrong.config import Settings
from yunrong.db import is_postgres, unit_of_work
from yunrong.kit.clock import Clock
from yunrong.messaging.handlers import DeliveryContext, Event, Handler, registry
from yunrong.messaging.model import EventStatus, backoff
from yunrong.messaging.tables import OutboxEvent

log = logging.getLogger("yunrong.worker")


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def claim(
    factory: sessionmaker[Session], *, settings: Settings, clock: Clock, worker_id: str, batch: int
) -> list[Event]:
    """Claim up to ``batch`` due events for this worker, in one short transaction."""
    with unit_of_work(factory) as session:
        now = clock.now()
        query = (
            select(OutboxEvent)
            .where(OutboxEvent.status == EventStatus.PENDING.value, OutboxEvent.next_attempt_at <= now)
            .order_by(OutboxEvent.next_attempt_at, OutboxEvent.id)
            .limit(batch)
        )
        if is_postgres(session):
            query = query.with_for_update(skip_locked=True)
        rows = list(session.scalars(query).all())
        lease_until = now + timedelta(seconds=settings.outbox_lease_seconds)
        for row in rows:
            row.attempts += 1
            row.next_attempt_at = lease_until
            row.delivered_by = worker_id  # the current claimant until delivered
        return [Event(r.id, r.topic, dict(r.payload), r.attempts, r.created_at) for r in rows]


def _record(
    factory: sessionmaker[Session],
    *,
    settings: Settings,
    clock: Clock,
    worker_id: str,
    event: Event,
    error: str | None,
    final: bool,
) -> None:
    with unit_of_work(factory) as session:
        now = clock.now()
        owned = (
            OutboxEvent.id == event.id,
            OutboxEvent.status == EventStatus.PENDING.value,
            OutboxEvent.delivered_by == worker_id,
        )
        if error is None:
            values: dict[str, object] = {
                "status": EventStatus.DELIVERED.value,
                "delivered_at": now,
                "last_error": None,
            }
        elif final:
            values = {"status": EventStatus.DEAD.value, "last_error": error}
            log.error(
                "outbox event dead", extra={"event_id": str(event.id), "topic": event.topic, "error": error}
            )
        else:
            values = {"next_attempt_at": now + backoff(event.attempts), "last_error": error}
            log.warning(
                "outbox delivery failed, will retry",
                extra={"event_id": str(event.id), "attempts": event.attempts},
            )
        session.execute(update(OutboxEvent).where(*owned).values(**values))


def deliver_due(
    factory: sessionmaker[Session],
    *,
    settings: Settings,
    clock: Clock,
    worker_id: str,
    handlers: Mapping[str, Handler] | None = None,
    batch: int | None = None,
) -> int:
    """Claim and deliver one batch of due events. Returns how many were attempted."""
    table = registry() if handlers is None else handlers
    ctx = DeliveryContext(settings=settings, worker_id=worker_id, clock=clock, factory=factory)
    events = claim(
        factory, settings=settings, clock=clock, worker_id=worker_id, batch=batch or settings.worker_batch
    )
    for event in events:
        fn = table.get(event.topic)
        try:
            if fn is None:
                raise LookupError(f"no handler for topic {event.topic!r}")
            fn(event, ctx)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:2000]
            final = fn is None or event.attempts >= settings.outbox_max_attempts
            _record(
                factory,
                settings=settings,
                clock=clock,
                worker_id=worker_id,
                event=event,
                error=error,
                final=final,
            )
        else:
            _record(
                factory,
                settings=settings,
                clock=clock,
                worker_id=worker_id,
                event=event,
                error=None,
                final=False,
            )
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
    from yunrong.messaging import jobs

    wid = worker_id or default_worker_id()
    log.info("worker started", extra={"worker_id": wid})
    while not stop.is_set():
        try:
            attempted = deliver_due(factory, settings=settings, clock=clock, worker_id=wid)
            jobs.run_due_jobs(factory, settings=settings, clock=clock, worker_id=wid)
        except Exception:
            log.exception("worker round failed; will try again")
            attempted = 0
        if attempted == 0:
            stop.wait(settings.worker_poll_seconds)
    log.info("worker stopped", extra={"worker_id": wid})
