"""Webhooks: the platform tells an organisation's own system what concerns it, signed.

Two kinds of organisation have one: an agency (its service orders, ``agency.webhook`` events) and
an institutional investor (the listings pushed to it, ``organisation.webhook`` events of type
``matching.push``). Individual investors have none: they are told in the inbox and by e-mail.

The agency's administrator, or a user of the institution, registers a URL and receives a signing
secret, shown once (registering again rotates it). Each event is POSTed there as JSON with:

- ``Yunrong-Event-Id``: the outbox event's id, the same on every retry; receivers deduplicate on it;
- ``Yunrong-Event-Type``: e.g. ``service_order.assigned``;
- ``Yunrong-Timestamp``: Unix seconds when this attempt was signed;
- ``Yunrong-Signature``: ``v1=<hex HMAC-SHA256(secret, timestamp + "." + raw body)>``.

The receiver checks them with ``verify_webhook`` (any language: the recipe is the line above) and
refuses a stale timestamp, so a captured delivery cannot be replayed later. A non-2xx answer or a
network error fails the attempt and the outbox retries with backoff; every attempt, good or bad,
is written to the organisation's delivery log, which only that organisation reads.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from yunrong.config import Settings
from yunrong.db import unit_of_work
from yunrong.identity.model import Action, Context, InvestorKind, OrgType, Role
from yunrong.identity.security import decrypt_secret, encrypt_secret
from yunrong.identity.service import require
from yunrong.identity.tables import Organisation
from yunrong.kit.errors import FieldProblem, InvalidInput, NotAuthenticated, NotFound, PermissionDenied
from yunrong.messaging.handlers import DeliveryContext, Event, handler
from yunrong.messaging.service import emit
from yunrong.messaging.tables import OutboxEvent
from yunrong.supervision import service as audit
from yunrong.verification.tables import AgencyWebhook, WebhookDelivery

#: An agency's service-order events (payload: ``agency_id``, ``event_type``, ``order``).
TOPIC = "agency.webhook"
#: Any other owner's events (payload: ``organisation_id``, ``event_type``, ``data``).
ORGANISATION_TOPIC = "organisation.webhook"
SIGNATURE_VERSION = "v1"
#: How far a receiver lets a delivery's timestamp be from its own clock, in seconds.
DEFAULT_TOLERANCE_SECONDS = 300
#: Connect, read and write each get this long; a slow receiver fails the attempt (and is retried).
TIMEOUT = httpx.Timeout(10.0)
EXCERPT_BYTES = 500
MAX_URL_LENGTH = 500
USER_AGENT = "Yunrong-Webhooks/1"


class WebhookRejected(NotAuthenticated):
    code = "webhook-rejected"
    title = "The webhook delivery is not genuine or not fresh"


class WebhookDeliveryFailed(RuntimeError):
    """An attempt failed; the outbox retries it with backoff."""


# --- signing and verifying -----------------------------------------------------------------------


def sign_webhook(secret: str, timestamp: str, body: bytes) -> str:
    """The ``Yunrong-Signature`` header value for one attempt."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


def verify_webhook(
    secret: str,
    timestamp: str | None,
    body: bytes,
    signature: str | None,
    now: datetime | float,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> None:
    """For receivers: accept a delivery only if it is signed with ``secret`` and fresh.

    Raises ``WebhookRejected`` (401, with the reason) when a header is missing, the timestamp is
    more than ``tolerance`` seconds from ``now`` (a replay), or no ``v1=`` signature in the header
    matches the raw body. Compare the body exactly as received, before parsing it.
    """
    if not timestamp or not signature:
        raise WebhookRejected("the Yunrong-Timestamp and Yunrong-Signature headers are required")
    if not timestamp.isdigit():
        raise WebhookRejected("the timestamp is not a number of seconds")
    current = now.timestamp() if isinstance(now, datetime) else float(now)
    if abs(current - int(timestamp)) > tolerance:
        raise WebhookRejected(
            f"the timestamp is stale: more than {tolerance} s from now (a replayed delivery?)"
        )
    expected = sign_webhook(secret, timestamp, body)
    offered = [part.strip() for part in signature.split(",")]
    if not any(hmac.compare_digest(expected, part) for part in offered if part.startswith("v1=")):
        raise WebhookRejected("the signature does not match the body (tampered, or another secret)")


# --- an organisation's webhook -------------------------------------------------------------------


def _owner(session: Session, ctx: Context) -> tuple[uuid.UUID, str]:
    """The acting organisation and its kind ("agency" or "institution") if it may have a webhook:
    an agency's administrator, or a user of an institutional investor."""
    require(ctx, Action.MANAGE_WEBHOOKS)
    actor = ctx.actor
    org_id = actor.organisation_id
    if org_id is not None and actor.org_type is OrgType.AGENCY and Role.AGENCY_ADMIN in actor.roles:
        return org_id, "agency"
    if org_id is not None and actor.org_type is OrgType.INVESTOR and Role.INVESTOR in actor.roles:
        org = session.get(Organisation, org_id)
        if org is not None and org.investor_kind == InvestorKind.INSTITUTION.value:
            return org_id, "institution"
        raise PermissionDenied(
            "only institutional investors have a webhook; individual investors receive pushes "
            "in the inbox and by e-mail"
        )
    raise PermissionDenied("only an agency or an institutional investor has a webhook")


def url_problems(url: str) -> list[str]:
    """Why a webhook URL is unacceptable (empty when it is fine)."""
    if len(url) > MAX_URL_LENGTH:
        return [f"at most {MAX_URL_LENGTH} characters"]
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return ["not a valid URL"]
    problems = []
    if parts.scheme not in ("https", "http"):
        problems.append("must be an https:// (or http://) URL")
    if not parts.hostname:
        problems.append("must name a host")
    if parts.username or parts.password:
        problems.append("must not carry credentials; the signature authenticates the platform")
    if parts.fragment:
        problems.append("must not have a #fragment")
    return problems


def set_webhook(session: Session, *, ctx: Context, settings: Settings, url: str) -> str:
    """Register or replace the organisation's webhook URL. Returns a new signing secret, shown only
    now (stored encrypted); the previous secret stops working at once."""
    org_id, kind = _owner(session, ctx)
    url = url.strip()
    problems = url_problems(url)
    if problems:
        raise InvalidInput("the webhook URL is not acceptable", [FieldProblem(("url",), p) for p in problems])
    secret = f"whsec_{secrets.token_urlsafe(32)}"
    encrypted = encrypt_secret(settings.secret_key.get_secret_value(), secret)
    hook = session.get(AgencyWebhook, org_id)
    before = {"url": hook.url, "active": hook.active} if hook else None
    if hook is None:
        hook = AgencyWebhook(
            organisation_id=org_id, url=url, secret_enc=encrypted, active=True, created_at=ctx.now()
        )
        session.add(hook)
    else:
        hook.url = url
        hook.secret_enc = encrypted
        hook.active = True
        hook.created_at = ctx.now()
    session.flush()
    audit.record(
        session,
        ctx=ctx,
        action=f"{kind}_webhook.set" if before is None else f"{kind}_webhook.rotate",
        object_type=f"{kind}_webhook",
        object_id=org_id,
        before=before,
        after={"url": url, "active": True},
    )
    return secret


def read_webhook(session: Session, *, ctx: Context) -> AgencyWebhook:
    org_id, _ = _owner(session, ctx)
    hook = session.get(AgencyWebhook, org_id)
    if hook is None:
        raise NotFound("no webhook is registered; PUT one to start receiving deliveries")
    return hook


def list_deliveries(session: Session, *, ctx: Context, limit: int = 50) -> list[WebhookDelivery]:
    """The organisation's own delivery log, newest first."""
    org_id, _ = _owner(session, ctx)
    return list(
        session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.organisation_id == org_id)
            .order_by(WebhookDelivery.at.desc(), WebhookDelivery.id.desc())
            .limit(max(1, min(limit, 500)))
        ).all()
    )


def emit_to_organisation(
    session: Session, *, ctx: Context, organisation_id: uuid.UUID, event_type: str, payload: dict[str, Any]
) -> OutboxEvent | None:
    """Queue a webhook event for an organisation in the caller's transaction; nothing when it has
    no active webhook. ``payload`` (JSON values only) becomes the delivery's ``data``."""
    hook = session.get(AgencyWebhook, organisation_id)
    if hook is None or not hook.active:
        return None
    return emit(
        session,
        ctx=ctx,
        topic=ORGANISATION_TOPIC,
        payload={"organisation_id": str(organisation_id), "event_type": event_type, "data": payload},
    )


# --- delivery (the outbox handler) ---------------------------------------------------------------


def _owner_id(event: Event) -> uuid.UUID:
    if event.topic == TOPIC:
        return uuid.UUID(str(event.payload["agency_id"]))
    return uuid.UUID(str(event.payload["organisation_id"]))


def encode_event(event: Event, public_url: str | None = None) -> bytes:
    """The request body: the same bytes on every attempt of one event. A relative ``link`` in the
    data also comes as an absolute ``url`` on ``public_url``."""
    payload = event.payload
    document: dict[str, Any] = {
        "id": str(event.id),
        "type": str(payload.get("event_type", "")),
        "created_at": event.created_at.isoformat(),
    }
    if event.topic == TOPIC:
        document["agency_id"] = str(payload.get("agency_id", ""))
        document["data"] = {"order": payload.get("order")}
    else:
        data = dict(payload.get("data") or {})
        link = data.get("link")
        if public_url and isinstance(link, str) and link.startswith("/"):
            data["url"] = public_url.rstrip("/") + link
        document["organisation_id"] = str(payload.get("organisation_id", ""))
        document["data"] = data
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _log_attempt(
    ctx: DeliveryContext,
    *,
    event: Event,
    organisation_id: uuid.UUID,
    url: str,
    status_code: int | None = None,
    excerpt: str | None = None,
    error: str | None = None,
) -> None:
    with unit_of_work(ctx.factory) as session:
        session.add(
            WebhookDelivery(
                organisation_id=organisation_id,
                event_id=str(event.id),
                event_type=str(event.payload.get("event_type", ""))[:60],
                url=url,
                attempt=event.attempts,
                status_code=status_code,
                error=error,
                response_excerpt=excerpt[:EXCERPT_BYTES] if excerpt is not None else None,
                at=ctx.clock.now(),
            )
        )


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    """POST without following redirects; read at most a short excerpt of the answer."""
    with (
        httpx.Client(timeout=TIMEOUT, follow_redirects=False) as client,
        client.stream("POST", url, content=body, headers=headers) as response,
    ):
        chunk = b""
        for part in response.iter_bytes():
            chunk += part
            if len(chunk) >= EXCERPT_BYTES:
                break
        return response.status_code, chunk[:EXCERPT_BYTES].decode("utf-8", errors="replace")


@handler(TOPIC)
@handler(ORGANISATION_TOPIC)
def deliver_webhook(event: Event, ctx: DeliveryContext) -> None:
    """POST one event to the organisation's webhook; no webhook, nothing to send."""
    organisation_id = _owner_id(event)
    with unit_of_work(ctx.factory) as session:
        hook = session.get(AgencyWebhook, organisation_id)
        if hook is None or not hook.active:
            return
        url, secret_enc = hook.url, hook.secret_enc
    secret = decrypt_secret(ctx.settings.secret_key.get_secret_value(), secret_enc)
    if secret is None:
        error = "the webhook secret cannot be decrypted (the platform's key changed?); register the URL again"
        _log_attempt(ctx, event=event, organisation_id=organisation_id, url=url, error=error)
        raise WebhookDeliveryFailed(error)
    body = encode_event(event, ctx.settings.public_url)
    timestamp = str(int(ctx.clock.now().timestamp()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Yunrong-Event-Id": str(event.id),
        "Yunrong-Event-Type": str(event.payload.get("event_type", "")),
        "Yunrong-Timestamp": timestamp,
        "Yunrong-Signature": sign_webhook(secret, timestamp, body),
    }
    try:
        status, excerpt = _post(url, body, headers)
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:2000]
        _log_attempt(ctx, event=event, organisation_id=organisation_id, url=url, error=error)
        raise WebhookDeliveryFailed(f"webhook to {url} failed: {error}") from exc
    ok = 200 <= status < 300
    _log_attempt(
        ctx,
        event=event,
        organisation_id=organisation_id,
        url=url,
        status_code=status,
        excerpt=excerpt,
        error=None if ok else f"the receiver answered {status}",
    )
    if not ok:
        raise WebhookDeliveryFailed(f"webhook to {url} answered {status}")
