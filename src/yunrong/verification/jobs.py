"""Scheduled jobs of verification: escalate late service orders."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from yunrong.config import Settings
from yunrong.db import unit_of_work
from yunrong.identity.model import Actor, Context
from yunrong.kit.clock import Clock
from yunrong.messaging.jobs import job
from yunrong.verification import orders


@job("verification.escalate_late_orders", every=timedelta(minutes=5))
def escalate(factory: sessionmaker[Session], settings: Settings, clock: Clock) -> str:
    ctx = Context(actor=Actor.system("verification"), clock=clock, request_id="escalation")
    with unit_of_work(factory) as session:
        late = orders.escalate_late_orders(session, ctx=ctx)
    return f"{late} late orders escalated"
