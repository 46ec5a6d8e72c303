"""Scheduled jobs of funding: close rounds whose window passed or whose reflection periods ended."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from yunrong.config import Settings
from yunrong.db import unit_of_work
from yunrong.identity.model import Actor, Context
from yunrong.investing import loans as _loans  # noqa: F401 - registers the payout settle hook
from yunrong.investing import service
from yunrong.kit.clock import Clock
from yunrong.messaging.jobs import job


@job("investing.close_due_rounds", every=timedelta(minutes=1))
def close_due_rounds(factory: sessionmaker[Session], settings: Settings, clock: Clock) -> str:
    ctx = Context(actor=Actor.system("funding"), clock=clock, request_id="close-rounds")
    with unit_of_work(factory) as session:
        closed = service.close_due_rounds(session, ctx=ctx, settings=settings)
    return f"{closed} funding rounds closed"
