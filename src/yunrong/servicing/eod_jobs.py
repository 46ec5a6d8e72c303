"""The scheduled end of day: once the business date has turned, close the previous one.

The worker runs this every few minutes; it is a no-op once yesterday is closed. When the chain is
behind (the worker was down), it closes the missing dates in order, at most
``yunrong.servicing.eod.JOB_MAX_DATES`` per run. Named in ``yunrong.messaging.jobs.JOB_MODULES``.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from yunrong.config import Settings
from yunrong.identity.model import Actor, Context
from yunrong.kit.clock import Clock
from yunrong.messaging.jobs import job
from yunrong.servicing import eod


@job("servicing.end_of_day", every=timedelta(minutes=10))
def end_of_day(factory: sessionmaker[Session], settings: Settings, clock: Clock) -> str:
    ctx = Context(actor=Actor.system("eod"), clock=clock, request_id="eod-job")
    closed = []
    for day in eod.pending_dates(factory, settings=settings, clock=clock):
        result = eod.run_eod(factory, business_date=day, settings=settings, clock=clock, ctx=ctx)
        if result.status == "closed":
            closed.append(day.isoformat())
    if not closed:
        return "end of day: nothing to close"
    return f"end of day closed {', '.join(closed)}"
