"""Handlers that deliver outbox events to the world outside the database.

A handler raises to signal failure; the worker then retries with backoff. Delivery is
at-least-once, so every handler is safe to run twice for one event (each keys its effect on the
event id or on a business key). A handler runs outside the worker's claiming transaction; one that
writes to the database opens its own unit of work with ``ctx.factory``.
"""

from __future__ import annotations

import importlib
import smtplib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from yunrong.config import Settings
from yunrong.kit.clock import Clock

#: Feature modules that register handlers when imported (by name, so messaging depends on none).
HANDLER_MODULES: tuple[str, ...] = ("yunrong.custody.handlers", "yunrong.verification.webhooks")


@dataclass(frozen=True)
class Event:
    """What a handler sees of an outbox event: a detached copy, not a database row."""

    id: uuid.UUID
    topic: str
    payload: dict[str, Any]
    attempts: int
    created_at: datetime


@dataclass(frozen=True)
class DeliveryContext:
    settings: Settings
    worker_id: str
    clock: Clock
    factory: sessionmaker[Session]


Handler = Callable[[Event, DeliveryContext], None]

HANDLERS: dict[str, Handler] = {}
_loaded = False


def handler(topic: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[topic] = fn
        return fn

    return register


def registry() -> dict[str, Handler]:
    """Every registered handler, importing the feature modules that register them once."""
    global _loaded
    if not _loaded:
        for module in HANDLER_MODULES:
            importlib.import_module(module)
        _loaded = True
    return HANDLERS


def build_email(event: Event, settings: Settings) -> EmailMessage:
    payload = event.payload
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = payload["to"]
    message["Subject"] = payload["subject"]
    message["Message-ID"] = f"<{event.id}@yunrong>"
    message["Date"] = format_datetime(event.created_at)
    message.set_content(payload["body"])
    return message


@handler("email.send")
def send_email(event: Event, ctx: DeliveryContext) -> None:
    """Send one e-mail. The Message-ID is the event id, so a repeated delivery is recognisable."""
    message = build_email(event, ctx.settings)
    if ctx.settings.mail_backend == "smtp":
        with smtplib.SMTP(ctx.settings.smtp_host, ctx.settings.smtp_port, timeout=30) as smtp:
            smtp.send_message(message)
        return
    folder = ctx.settings.mail_dir
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{event.id}.eml"
    tmp = target.with_suffix(".tmp")
    tmp.write_bytes(bytes(message))
    tmp.replace(target)  # atomic: a crash never leaves half a message
