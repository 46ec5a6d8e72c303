"""Handlers that deliver outbox events to the world outside the database.

A handler raises to signal failure; the worker then retries with backoff. Handlers must be safe
to run twice for one event (delivery is at-least-once), so each keys its effect on the event id.
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime

from yunrong.config import Settings
from yunrong.messaging.tables import OutboxEvent


@dataclass(frozen=True)
class DeliveryContext:
    settings: Settings
    worker_id: str


Handler = Callable[[OutboxEvent, DeliveryContext], None]

HANDLERS: dict[str, Handler] = {}


def handler(topic: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[topic] = fn
        return fn

    return register


def build_email(event: OutboxEvent, settings: Settings) -> EmailMessage:
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
def send_email(event: OutboxEvent, ctx: DeliveryContext) -> None:
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
