"""Outbox handlers and scheduled jobs of custody (registered on import by the worker)."""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
from sqlalchemy.orm import Session, sessionmaker

from yunrong.config import Settings
from yunrong.custody.model import sign
from yunrong.custody.service import apply_callback, callback_secret, encode_body
from yunrong.custody.simbank import SimulatedBank
from yunrong.db import unit_of_work
from yunrong.identity.model import Actor, Context
from yunrong.kit.clock import Clock
from yunrong.ledger import service as ledger
from yunrong.messaging.handlers import DeliveryContext, Event, handler
from yunrong.messaging.jobs import job


@handler("bank.instruction")
def send_instruction(event: Event, ctx: DeliveryContext) -> None:
    """Hand an instruction to the bank. The simulated bank books it in its own book and answers
    later; delivering the same instruction twice is harmless (the bank deduplicates)."""
    with unit_of_work(ctx.factory) as session:
        SimulatedBank(ctx.settings, ctx.clock).receive(session, event.payload)


@handler("simbank.callback")
def deliver_callback(event: Event, ctx: DeliveryContext) -> None:
    """The simulated bank calls the platform back, signed, over HTTP like a real bank would
    (or in-process in tests, through the same verification)."""
    body = encode_body(event.payload)
    timestamp = str(
        int(ctx.clock.now().timestamp() if ctx.settings.simbank_callback_mode == "direct" else time.time())
    )
    signature = sign(callback_secret(ctx.settings), timestamp, body)
    if ctx.settings.simbank_callback_mode == "direct":
        with unit_of_work(ctx.factory) as session:
            apply_callback(
                session,
                ctx=_system(ctx.clock),
                settings=ctx.settings,
                body=body,
                timestamp=timestamp,
                signature=signature,
            )
        return
    response = httpx.post(
        f"{ctx.settings.public_url.rstrip('/')}/api/v1/custodian/callbacks",
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-Bank-Timestamp": timestamp,
            "X-Bank-Signature": signature,
        },
        timeout=30,
    )
    if response.status_code >= 400 and response.status_code != 409:
        raise RuntimeError(f"the platform answered {response.status_code}: {response.text[:200]}")


def _system(clock: Clock) -> Context:
    return Context(actor=Actor.system("custody"), clock=clock, request_id="custody-job")


@job("ledger.expire_holds", every=timedelta(minutes=1))
def expire_holds(factory: sessionmaker[Session], settings: Settings, clock: Clock) -> str:
    with unit_of_work(factory) as session:
        expired = ledger.expire_due_holds(session, ctx=_system(clock))
    return f"{expired} holds expired"
