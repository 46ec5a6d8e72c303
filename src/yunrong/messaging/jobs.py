"""Scheduled jobs run by the worker (hold expiry, the daily reconciliation, …).

Each job has one row; a worker takes a due job by pushing its next run forward inside a short
transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so among several workers exactly one runs it.
Feature modules register jobs when imported, like outbox handlers.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from yunrong.config import Settings
from yunrong.db import is_postgres, unit_of_work
from yunrong.kit.clock import Clock
from yunrong.messaging.tables import ScheduledJob

log = logging.getLogger("yunrong.jobs")

JOB_MODULES: tuple[str, ...] = (
    "yunrong.custody.handlers",
    "yunrong.custody.recon_jobs",
    "yunrong.investing.jobs",
    "yunrong.investing.offer_jobs",
    "yunrong.servicing.eod_jobs",
    "yunrong.verification.jobs",
    "yunrong.verification.simulated",
)

JobFn = Callable[[sessionmaker[Session], Settings, Clock], str]


@dataclass(frozen=True)
class Job:
    name: str
    every: timedelta
    run: JobFn


JOBS: dict[str, Job] = {}
_loaded = False


def job(name: str, every: timedelta) -> Callable[[JobFn], JobFn]:
    def register(fn: JobFn) -> JobFn:
        JOBS[name] = Job(name, every, fn)
        return fn

    return register


def jobs() -> dict[str, Job]:
    global _loaded
    if not _loaded:
        for module in JOB_MODULES:
            importlib.import_module(module)
        _loaded = True
    return JOBS


def _take(factory: sessionmaker[Session], job: Job, now: datetime, worker_id: str) -> bool:
    with unit_of_work(factory) as session:
        dialect_insert = pg_insert if is_postgres(session) else sqlite_insert
        session.execute(
            dialect_insert(ScheduledJob)
            .values(name=job.name, next_run_at=now)
            .on_conflict_do_nothing(index_elements=["name"])
        )
        query = select(ScheduledJob).where(ScheduledJob.name == job.name, ScheduledJob.next_run_at <= now)
        if is_postgres(session):
            query = query.with_for_update(skip_locked=True)
        row = session.scalars(query).one_or_none()
        if row is None:
            return False
        row.next_run_at = now + job.every
        row.last_started_at = now
        row.last_worker = worker_id
        return True


def run_due_jobs(factory: sessionmaker[Session], *, settings: Settings, clock: Clock, worker_id: str) -> int:
    ran = 0
    for job_ in jobs().values():
        if not _take(factory, job_, clock.now(), worker_id):
            continue
        ran += 1
        try:
            summary = job_.run(factory, settings, clock)
            error = None
        except Exception as exc:
            log.exception("scheduled job failed", extra={"job": job_.name})
            summary, error = "", f"{type(exc).__name__}: {exc}"[:2000]
        with unit_of_work(factory) as session:
            row = session.get(ScheduledJob, job_.name)
            if row is not None:
                row.last_finished_at = clock.now()
                row.last_summary = summary[:500]
                row.last_error = error
    return ran
