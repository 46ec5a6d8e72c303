"""JSON API of the outbox, for the platform operator."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from yunrong.deps import DB, ApiCtx
from yunrong.messaging import service
from yunrong.messaging.model import EventStatus
from yunrong.parties.schemas import NotificationOut

router = APIRouter(prefix="/api/v1", tags=["outbox"])


class OutboxEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    topic: str
    payload: dict[str, Any]
    status: EventStatus
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


@router.get("/outbox-events", operation_id="list_outbox_events", response_model=list[OutboxEventOut])
def list_outbox_events(
    session: DB, ctx: ApiCtx, status: EventStatus | None = None, limit: int = Query(50, ge=1, le=200)
) -> list[OutboxEventOut]:
    return [
        OutboxEventOut.model_validate(e)
        for e in service.list_events(session, ctx=ctx, status=status, limit=limit)
    ]


@router.get("/outbox-events/{event_id}", operation_id="read_outbox_event", response_model=OutboxEventOut)
def read_outbox_event(session: DB, ctx: ApiCtx, event_id: uuid.UUID) -> OutboxEventOut:
    return OutboxEventOut.model_validate(service.read_event(session, ctx=ctx, event_id=event_id))


@router.post(
    "/outbox-events/{event_id}/requeue", operation_id="requeue_outbox_event", response_model=OutboxEventOut
)
def requeue_outbox_event(session: DB, ctx: ApiCtx, event_id: uuid.UUID) -> OutboxEventOut:
    return OutboxEventOut.model_validate(service.requeue_dead(session, ctx=ctx, event_id=event_id))


@router.get(
    "/notifications", operation_id="list_notifications", response_model=list[NotificationOut], tags=["inbox"]
)
def list_notifications(
    session: DB, ctx: ApiCtx, unread: bool = False, limit: int = Query(50, ge=1, le=200)
) -> list[NotificationOut]:
    """The caller's in-app messages, newest first."""
    return [
        NotificationOut.model_validate(n)
        for n in service.list_notifications(session, ctx=ctx, unread_only=unread, limit=limit)
    ]


@router.post(
    "/notifications/{notification_id}/read",
    operation_id="mark_notification_read",
    response_model=NotificationOut,
    tags=["inbox"],
)
def mark_notification_read(session: DB, ctx: ApiCtx, notification_id: uuid.UUID) -> NotificationOut:
    return NotificationOut.model_validate(
        service.mark_read(session, ctx=ctx, notification_id=notification_id)
    )
