"""Scheduled job of bank offers: an offer past its ``valid_until`` is marked expired, both sides told.

Acceptance already refuses an offer past its time; this job makes the status say so, so lists and
the bank's portfolio show what is really open. Registered when the worker imports this module
(it is named in ``yunrong.messaging.jobs.JOB_MODULES``).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from yunrong.config import Settings
from yunrong.db import unit_of_work
from yunrong.identity.model import Actor, Context
from yunrong.investing import offers
from yunrong.kit.clock import Clock
from yunrong.messaging.jobs import job


@job("investing.expire_offers", every=timedelta(minutes=5))
def expire_offers(factory: sessionmaker[Session], settings: Settings, clock: Clock) -> str:
    ctx = Context(actor=Actor.system("offers"), clock=clock, request_id="expire-offers")
    with unit_of_work(factory) as session:
        expired = offers.expire_offers(session, ctx=ctx)
    return f"{expired} bank offers expired"
