"""Writing to the outbox, and the operator's view of it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yunrong.identity.model import Action, Context
from yunrong.identity.tables import User
from yunrong.kit.errors import Conflict, NotFound, PermissionDenied
from yunrong.messaging.model import EventStatus, transition
from yunrong.messaging.tables import Notification, OutboxEvent
from yunrong.supervision import service as audit


def emit(
    session: Session,
    *,
    ctx: Context,
    topic: str,
    payload: dict[str, Any],
    deliver_after: timedelta | None = None,
) -> OutboxEvent:
    """Queue an event in the caller's transaction: it is delivered only if that transaction commits,
    and not before ``deliver_after`` has passed."""
    now = ctx.now()
    event = OutboxEvent(
        topic=topic,
        payload=payload,
        status=EventStatus.PENDING.value,
        attempts=0,
        next_attempt_at=now + deliver_after if deliver_after else now,
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


# --- in-app messages and e-mail to the people of an organisation --------------------------------


@dataclass(frozen=True)
class Message:
    kind: str
    subject_en: str
    subject_zh: str
    body_en: str
    body_zh: str
    link: str | None = None


def notify_organisation(
    session: Session, *, ctx: Context, organisation_id: uuid.UUID, message: Message
) -> int:
    """Tell every user of an organisation: an in-app message each, and an e-mail each through the
    outbox (sent only if this transaction commits). Returns how many users were told."""
    users = session.scalars(
        select(User)
        .where(User.organisation_id == organisation_id, User.is_active.is_(True))
        .order_by(User.id)
    ).all()
    now = ctx.now()
    for user in users:
        session.add(
            Notification(
                user_id=user.id,
                organisation_id=organisation_id,
                kind=message.kind,
                subject_en=message.subject_en,
                subject_zh=message.subject_zh,
                body_en=message.body_en,
                body_zh=message.body_zh,
                link=message.link,
                created_at=now,
            )
        )
        emit(
            session,
            ctx=ctx,
            topic="email.send",
            payload={
                "to": user.email,
                "subject": f"{message.subject_zh} / {message.subject_en}",
                "body": f"{message.body_zh}\n\n{message.body_en}\n",
            },
        )
    session.flush()
    return len(users)


def list_notifications(
    session: Session, *, ctx: Context, unread_only: bool = False, limit: int = 50
) -> list[Notification]:
    if ctx.actor.user_id is None:
        return []
    query = (
        select(Notification)
        .where(Notification.user_id == ctx.actor.user_id)
        .order_by(Notification.created_at.desc(), Notification.id.desc())
        .limit(limit)
    )
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    return list(session.scalars(query).all())


def count_unread(session: Session, *, ctx: Context) -> int:
    if ctx.actor.user_id is None:
        return 0
    return int(
        session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.user_id == ctx.actor.user_id, Notification.read_at.is_(None))
        )
        or 0
    )


def mark_read(session: Session, *, ctx: Context, notification_id: uuid.UUID) -> Notification:
    note = session.get(Notification, notification_id)
    if note is None or note.user_id != ctx.actor.user_id:
        raise NotFound("no such message")
    if note.read_at is None:
        note.read_at = ctx.now()
    return note
