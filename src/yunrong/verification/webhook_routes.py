"""JSON API of an organisation's webhook: register or rotate it, read it, read its delivery log.

``/webhook`` serves every owner (an agency's administrator, an institutional investor's users);
``/agency-webhook`` is the agencies' original path to the same thing.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from yunrong.deps import DB, ApiCtx, SettingsDep
from yunrong.verification import webhooks
from yunrong.verification.tables import AgencyWebhook, WebhookDelivery

router = APIRouter(prefix="/api/v1", tags=["webhooks"])


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    url: str = Field(
        min_length=1, max_length=webhooks.MAX_URL_LENGTH, examples=["https://agency.example.cn/hooks"]
    )


class WebhookOut(BaseModel):
    url: str
    active: bool
    created_at: datetime
    signature_scheme: str = Field(
        default='Yunrong-Signature: v1=hex(HMAC-SHA256(secret, Yunrong-Timestamp + "." + raw body))'
    )
    tolerance_seconds: int = webhooks.DEFAULT_TOLERANCE_SECONDS


class WebhookSetOut(WebhookOut):
    secret: str = Field(description="The signing secret, shown only now. Registering again rotates it.")


class DeliveryOut(BaseModel):
    id: uuid.UUID
    event_id: str
    event_type: str
    url: str
    attempt: int
    ok: bool
    status_code: int | None
    error: str | None
    response_excerpt: str | None
    at: datetime


def _out(hook: AgencyWebhook) -> WebhookOut:
    return WebhookOut(url=hook.url, active=hook.active, created_at=hook.created_at)


def _delivery(row: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut(
        id=row.id,
        event_id=row.event_id,
        event_type=row.event_type,
        url=row.url,
        attempt=row.attempt,
        ok=row.status_code is not None and 200 <= row.status_code < 300,
        status_code=row.status_code,
        error=row.error,
        response_excerpt=row.response_excerpt,
        at=row.at,
    )


@router.put("/webhook", operation_id="set_webhook", response_model=WebhookSetOut)
def set_webhook(session: DB, ctx: ApiCtx, settings: SettingsDep, body: WebhookIn) -> WebhookSetOut:
    """Register (or replace) your organisation's webhook URL; the answer carries a new signing
    secret, shown once. Agency administrators and institutional investors only."""
    secret = webhooks.set_webhook(session, ctx=ctx, settings=settings, url=body.url)
    hook = webhooks.read_webhook(session, ctx=ctx)
    return WebhookSetOut(**_out(hook).model_dump(), secret=secret)


@router.get("/webhook", operation_id="read_webhook", response_model=WebhookOut)
def read_webhook(session: DB, ctx: ApiCtx) -> WebhookOut:
    return _out(webhooks.read_webhook(session, ctx=ctx))


@router.get(
    "/webhook/deliveries", operation_id="list_my_webhook_deliveries", response_model=list[DeliveryOut]
)
def list_my_webhook_deliveries(
    session: DB, ctx: ApiCtx, limit: int = Query(50, ge=1, le=500)
) -> list[DeliveryOut]:
    """Every delivery attempt to your organisation's webhook, newest first (each sees its own)."""
    return [_delivery(d) for d in webhooks.list_deliveries(session, ctx=ctx, limit=limit)]


@router.put("/agency-webhook", operation_id="set_agency_webhook", response_model=WebhookSetOut)
def set_agency_webhook(session: DB, ctx: ApiCtx, settings: SettingsDep, body: WebhookIn) -> WebhookSetOut:
    """Register (or replace) the agency's webhook URL; the answer carries a new signing secret,
    shown once. The same as ``PUT /webhook``."""
    return set_webhook(session, ctx, settings, body)


@router.get("/agency-webhook", operation_id="read_agency_webhook", response_model=WebhookOut)
def read_agency_webhook(session: DB, ctx: ApiCtx) -> WebhookOut:
    return read_webhook(session, ctx)


@router.get(
    "/agency-webhook/deliveries", operation_id="list_webhook_deliveries", response_model=list[DeliveryOut]
)
def list_webhook_deliveries(
    session: DB, ctx: ApiCtx, limit: int = Query(50, ge=1, le=500)
) -> list[DeliveryOut]:
    """Every delivery attempt to the agency's webhook, newest first (only the agency sees its own)."""
    return list_my_webhook_deliveries(session, ctx, limit)
