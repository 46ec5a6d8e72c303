"""Custody fixtures: the demo world with verified bank accounts, and a worker that drains the outbox."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from yunrong.config import Settings
from yunrong.db import unit_of_work
from yunrong.identity.model import Context
from yunrong.kit.clock import FrozenClock
from yunrong.messaging.worker import deliver_due
from yunrong.parties.tables import BankAccount


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The simulated bank answers in-process here (same signature check as over HTTP), and never fails
    # unless a test asks it to.
    return settings.model_copy(
        update={"simbank_callback_mode": "direct", "simbank_failure_rate": 0.0, "simbank_duplicate_rate": 0.0}
    )


@pytest.fixture
def verified(factory: sessionmaker[Session], system_ctx: Context, demo: dict[str, str]) -> None:
    with unit_of_work(factory) as session:
        for account in session.scalars(select(BankAccount)).all():
            account.verified_at = system_ctx.now()
            account.verified_by = "test"


Drain = Callable[[], int]


@pytest.fixture
def drain(factory: sessionmaker[Session], settings: Settings, clock: FrozenClock) -> Drain:
    """Let time pass and the worker run until the outbox is quiet (bank answers included)."""

    def run() -> int:
        total = 0
        for _ in range(50):
            clock.advance(timedelta(seconds=30))
            done = deliver_due(factory, settings=settings, clock=clock, worker_id="test-worker")
            total += done
            if done == 0:
                clock.advance(timedelta(seconds=30))
                if deliver_due(factory, settings=settings, clock=clock, worker_id="test-worker") == 0:
                    return total
        raise AssertionError("the outbox never went quiet")

    return run
