"""Writing to the outbox, and the operator's view of it."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yunrong.identity.model import Action, Context
from yunrong.kit.errors import Conflict, NotFound, PermissionDenied
from yunrong.messaging.model import EventStatus, transition
from yunrong.messaging.tables import OutboxEvent
from yunrong.supervision import service as audit


def emit(session: Session, *, ctx: Context, topic: str, payload: dict[str, Any]) -> OutboxEvent:
    """Queue an event in the caller's transaction: it is delivered only if that transaction commits."""
    now = ctx.now()
    event = OutboxEvent(
        topic=topic,
        payload=payload,
        status=EventStatus.PENDING.value,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(event)
    session.flush()
    return event


def counts_by_status(session: Session) -> dict[str, int]:
    rows = session.execute(select(OutboxEvent.status, func.count()).group_by(OutboxEvent.status)).all()
    counts = {s.value: 0 for s in EventStatus}
    counts.update(dict(rows))
    return counts


def list_events(
    session: Session, *, ctx: Context, status: EventStatus | None = None, limit: int = 50
) -> list[OutboxEvent]:
    if not ctx.actor.can(Action.READ_OUTBOX):
        raise PermissionDenied("only the platform operator reads the outbox")
    query = select(OutboxEvent).order_by(OutboxEvent.created_at.desc()).limit(limit)
    if status is not None:
        query = query.where(OutboxEvent.status == status.value)
    return list(session.scalars(query).all())


def read_event(session: Session, *, ctx: Context, event_id: uuid.UUID) -> OutboxEvent:
    if not ctx.actor.can(Action.READ_OUTBOX):
        raise PermissionDenied("only the platform operator reads the outbox")
    event = session.get(OutboxEvent, event_id)
    if event is None:
        raise NotFound("no such event")
    return event


def requeue_dead(session: Session, *, ctx: Context, event_id: uuid.UUID) -> OutboxEvent:
    """An operator sends a dead event back for delivery (after fixing what made it fail)."""
    event = read_event(session, ctx=ctx, event_id=event_id)
    if event.status != EventStatus.DEAD.value:
        raise Conflict(f"only dead events can be requeued; this one is {event.status}")
    event.status = transition(EventStatus(event.status), EventStatus.PENDING).value
    event.attempts = 0
    event.next_attempt_at = ctx.now()
    audit.record(session, ctx=ctx, action="outbox.requeue", object_type="outbox_event", object_id=event.id)
    return event
