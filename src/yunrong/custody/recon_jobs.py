"""The daily reconciliation of the simulated custodian bank's statement (a scheduled job)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from yunrong.config import Settings
from yunrong.custody.model import NoCustodian
from yunrong.custody.reconciliation import reconcile_simulated_day
from yunrong.db import unit_of_work
from yunrong.identity.model import Actor, Context
from yunrong.kit.clock import Clock, business_date
from yunrong.messaging.jobs import job


@job("custody.daily_reconciliation", every=timedelta(hours=24))
def daily_reconciliation(factory: sessionmaker[Session], settings: Settings, clock: Clock) -> str:
    """Reconcile yesterday's (business date) statement of the simulated bank with the ledger."""
    ctx = Context(actor=Actor.system("reconciliation"), clock=clock, request_id="reconciliation-job")
    yesterday = business_date(clock.now(), settings.timezone) - timedelta(days=1)
    try:
        with unit_of_work(factory) as session:
            runs = reconcile_simulated_day(session, ctx=ctx, settings=settings, on=yesterday)
            summary = [f"{r.currency} {r.ref}: {r.matched} matched, {r.breaks} breaks" for r in runs]
    except NoCustodian:
        return "no custodian bank admitted: nothing to reconcile"
    return f"{yesterday}: " + ("; ".join(summary) if summary else "already reconciled")
