"""End of day over a book of active loans on PostgreSQL, against PostgreSQL's raw insert rate.

Setup (not timed), set-based with ``INSERT … SELECT … generate_series`` on a throwaway database
migrated to head: ``--orgs`` enterprises with one user each, and ``--loans`` active P2P loans (a
demand each, as the schema requires; no notes). Every loan has a servicing row and three instalments
of schedule version 1: the previous one (paid, or — for 3 % of the loans — still unpaid, so that
they are 3–31 days past due and accrue penalty), the current one (due dates spread evenly over the
next 28 days, so each business date has its cohort of due instalments and of reminders), and the
next one. Rates 6–18 %, day counts 80 % ACT/365F, 10 % ACT/360, 10 % 30/360. Reminders of earlier
days are marked sent (steady state). Then ``VACUUM ANALYZE`` and a ``CHECKPOINT``.

Between dates (not timed) ``VACUUM ANALYZE`` of the servicing tables and a ``CHECKPOINT``, as
autovacuum and the checkpointer would do during the business day.

Measured: ``yunrong.servicing.eod.run_eod`` — all six steps, each its own transaction, exactly as
``yunrong eod --date`` runs them (one accrual row per loan, the servicing UPDATE, instalments due,
delinquency, one ledger entry, reminders and overdue notices as in-app messages and e-mails in the
outbox, close) — on ``--dates`` consecutive business dates; loans per second = loans / wall time
of one date, median over the dates.

Anchor, in the same run after each date: PostgreSQL inserting the same rows into a plain table (no
index, no constraint): ``INSERT INTO raw SELECT loan_id, business_date, interest, penalty,
days_past_due FROM loan_daily_accruals WHERE business_date = <date>``, committed; rows per second.

    .venv/bin/python bench/eod_pg.py                 # --loans 1000000 --dates 3 --orgs 100000
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

try:  # run as a script (python bench/eod_pg.py) or as a module (python -m bench.eod_pg)
    from _common import (
        emit,
        log,
        machine,
        median,
        postgres_version,
        server_url,
        sigterm_as_interrupt,
        throwaway_database,
    )
except ImportError:  # pragma: no cover
    from bench._common import (
        emit,
        log,
        machine,
        median,
        postgres_version,
        server_url,
        sigterm_as_interrupt,
        throwaway_database,
    )

TARGET_LOANS_PER_SECOND = 25_000

SETUP = [
    # One row per loan with everything derived from its number, so that every table agrees.
    """
    CREATE UNLOGGED TABLE bench_gen AS
    SELECT i,
           -- time-ordered like the application's UUIDv7: a rising prefix, then random bits
           (lpad(to_hex(i), 12, '0') || substr(md5(random()::text), 1, 20))::uuid AS loan_id,
           (lpad(to_hex(i), 12, '0') || substr(md5(random()::text), 1, 20))::uuid AS demand_id,
           i % :orgs AS org_no,
           (:d + (i % 28))::date AS due,
           5000000 + (i::bigint * 7919) % 495000000 AS principal,
           600 + (i * 37) % 1200 AS rate_bp,
           CASE i % 10 WHEN 0 THEN 'act/360' WHEN 1 THEN '30/360' ELSE 'act/365f' END AS day_count,
           (i % 100) < 3 AS late
    FROM generate_series(0, :loans - 1) AS i
    """,
    "CREATE UNIQUE INDEX ON bench_gen (i)",
    """
    INSERT INTO organisations (id, ref, type, name, investor_kind, created_at)
    SELECT gen_random_uuid(), 'ORG-B' || lpad(g::text, 9, '0'), 'enterprise', 'Bench SME ' || g, NULL, now()
    FROM generate_series(0, :orgs - 1) AS g
    """,
    """
    CREATE UNLOGGED TABLE bench_orgs AS
    SELECT (substr(ref, 6))::int AS org_no, id FROM organisations WHERE ref LIKE 'ORG-B%'
    """,
    "CREATE UNIQUE INDEX ON bench_orgs (org_no)",
    """
    INSERT INTO users (id, organisation_id, email, name, password_hash, locale, is_active,
                       failed_logins, created_at)
    SELECT gen_random_uuid(), id, 'sme' || org_no || '@bench.yunrong.cn', 'Bench user ' || org_no,
           'x', 'zh', true, 0, now()
    FROM bench_orgs
    """,
    """
    INSERT INTO demands (id, ref, organisation_id, product, status, title, amount_minor, currency,
                         term_months, repayment_method, max_annual_rate, purpose, use_of_funds,
                         innovation, collateral, guarantee_wanted, project_key, product_facts,
                         attachment_ids, created_by, created_at, updated_at)
    SELECT g.demand_id, 'DM-B' || lpad(g.i::text, 9, '0'), o.id, 'p2p_loan', 'funded', 'Bench demand',
           g.principal, 'CNY', 12, 'equal_instalment', 24, 'bench', '[]'::json, '{}'::json,
           '[]'::json, false, 'bench-' || g.i, '{}'::json, '[]'::json, 'bench', now(), now()
    FROM bench_gen g JOIN bench_orgs o USING (org_no)
    """,
    """
    INSERT INTO loans (id, ref, demand_id, enterprise_org_id, lender_kind, product, principal_minor,
                       currency, annual_rate, fee_minor, term_months, repayment_method, status,
                       created_at, accepted_at, disbursed_at)
    SELECT g.loan_id, 'LN-B' || lpad(g.i::text, 9, '0'), g.demand_id, o.id, 'investors', 'p2p_loan',
           g.principal, 'CNY', g.rate_bp / 10000.0, 0, 12, 'equal_instalment', 'active',
           now(), now(), now()
    FROM bench_gen g JOIN bench_orgs o USING (org_no)
    """,
    # Instalments: previous (paid, or unpaid for the late 3 %), current, next.
    """
    INSERT INTO loan_instalments (id, loan_id, version, number, period_start, due_date,
                                  principal_due, interest_due, principal_paid, interest_paid,
                                  penalty_paid, status, paid_on, reminded)
    SELECT gen_random_uuid(), g.loan_id, 1, k + 2,
           (g.due + make_interval(months => k - 1))::date,
           (g.due + make_interval(months => k))::date,
           g.principal / 12,
           (g.principal * g.rate_bp * 30) / 3650000,
           CASE WHEN k = -1 AND NOT g.late THEN g.principal / 12 ELSE 0 END,
           CASE WHEN k = -1 AND NOT g.late THEN (g.principal * g.rate_bp * 30) / 3650000 ELSE 0 END,
           0,
           CASE WHEN k = -1 AND NOT g.late THEN 'paid' WHEN k = -1 THEN 'due' ELSE 'scheduled' END,
           CASE WHEN k = -1 AND NOT g.late THEN (g.due - interval '1 month')::date END,
           k = -1 OR (k = 0 AND g.due <= :d + 2)
    FROM bench_gen g CROSS JOIN generate_series(-1, 1) AS k
    """,
    """
    INSERT INTO loan_servicing (loan_id, currency, annual_rate_bp, penalty_rate_bp, day_count,
                                frequency, method, start_date, maturity_date, schedule_version,
                                principal_outstanding, interest_accrued, penalty_accrued, overpayment,
                                days_past_due, bucket, ifrs9_stage, state, last_accrual_date,
                                next_due_date, closed_on, written_off_minor, updated_at)
    SELECT g.loan_id, 'CNY', g.rate_bp, g.rate_bp * 3 / 2, g.day_count, 'monthly', 'equal_instalment',
           (g.due - interval '2 months')::date, (g.due + interval '10 months')::date, 1,
           g.principal - g.principal / 12 * CASE WHEN g.late THEN 0 ELSE 1 END,
           0, 0, 0, 0, 'current', 1, 'performing', :d, g.due, NULL, 0, now()
    FROM bench_gen g
    """,
    "DROP TABLE bench_gen",
    "DROP TABLE bench_orgs",
]


def setup(url: str, loans: int, orgs: int, first: date) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("SET LOCAL synchronous_commit = off"))
            conn.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))
            for statement in SETUP:
                started = time.monotonic()
                result = conn.execute(text(statement), {"loans": loans, "orgs": orgs, "d": first})
                head = " ".join(statement.split()[:3])
                log(f"  {head:<40} {max(result.rowcount, 0):>10,} rows  {time.monotonic() - started:6.1f} s")
        autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        with autocommit.connect() as conn:
            started = time.monotonic()
            conn.execute(text("VACUUM ANALYZE"))
            conn.execute(text("CHECKPOINT"))
            log(f"  VACUUM ANALYZE, CHECKPOINT {time.monotonic() - started:6.1f} s")
    finally:
        engine.dispose()


def run_date(url: str, day: date) -> tuple[float, dict[str, float], dict[str, Any]]:
    """One end of day through the application; returns wall seconds, seconds per step, totals."""
    from yunrong.config import Settings
    from yunrong.db import make_engine, make_sessionmaker
    from yunrong.identity.model import Actor, Context
    from yunrong.kit.clock import FrozenClock
    from yunrong.servicing.eod import run_eod

    settings = Settings(database_url=url)
    clock = FrozenClock(datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC))
    ctx = Context(actor=Actor.system("bench-eod"), clock=clock, request_id="bench-eod")
    engine = make_engine(url)
    steps: dict[str, float] = {}

    def on_step(name: str, counts: dict[str, Any], seconds: float) -> None:
        steps[name] = seconds
        shown = {k: v for k, v in counts.items() if not isinstance(v, dict)}
        log(f"    {name:<12} {seconds:6.2f} s  {shown}")

    try:
        factory = make_sessionmaker(engine)
        with engine.connect():  # connect before the clock starts
            pass
        started = time.monotonic()
        result = run_eod(factory, business_date=day, settings=settings, clock=clock, ctx=ctx, on_step=on_step)
        seconds = time.monotonic() - started
        assert result.status == "closed", result
        return seconds, steps, result.totals
    finally:
        engine.dispose()


def vacuum(url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            started = time.monotonic()
            conn.execute(text("VACUUM ANALYZE loan_servicing, loan_instalments, loan_daily_accruals, loans"))
            conn.execute(text("CHECKPOINT"))
            log(f"  (untimed) VACUUM ANALYZE, CHECKPOINT {time.monotonic() - started:.1f} s")
    finally:
        engine.dispose()


def raw_insert(url: str, day: date, index: int) -> tuple[int, float]:
    """The anchor: the day's accrual rows inserted into a plain table (no index, no constraint)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    f"CREATE TABLE raw_accruals_{index} (loan_id uuid, business_date date, interest bigint,"
                    " penalty bigint, days_past_due integer)"
                )
            )
        with engine.connect() as conn:
            started = time.monotonic()
            with conn.begin():
                rows = conn.execute(
                    text(
                        f"INSERT INTO raw_accruals_{index} SELECT loan_id, business_date, interest, penalty,"
                        " days_past_due FROM loan_daily_accruals WHERE business_date = :d"
                    ),
                    {"d": day},
                ).rowcount
            seconds = time.monotonic() - started
        with engine.begin() as conn:
            conn.execute(text(f"DROP TABLE raw_accruals_{index}"))
        return int(rows), seconds
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--loans", type=int, default=1_000_000, help="active loans (default 1,000,000)")
    parser.add_argument("--orgs", type=int, default=100_000, help="enterprises (default 100,000)")
    parser.add_argument("--dates", type=int, default=3, help="consecutive business dates run (default 3)")
    parser.add_argument("--url", default=server_url(), help="PostgreSQL server URL")
    opts = parser.parse_args()

    from yunrong.migrate import upgrade

    facts = {**machine(), "postgresql": postgres_version(opts.url)}
    log(f"machine: {facts}")
    first = date.today() - timedelta(days=opts.dates + 1)
    with sigterm_as_interrupt(), throwaway_database("yr_bench_eod", opts.url) as url:
        upgrade(url)
        log(f"setup: {opts.loans:,} active loans, {opts.orgs:,} enterprises, first date {first}")
        started = time.monotonic()
        setup(url, opts.loans, opts.orgs, first)
        log(f"setup done in {time.monotonic() - started:.0f} s")
        ours: list[float] = []
        anchor: list[float] = []
        per_step: dict[str, list[float]] = {}
        totals: dict[str, Any] = {}
        for k in range(opts.dates):
            day = first + timedelta(days=k)
            log(f"end of day {day}:")
            seconds, steps, totals = run_date(url, day)
            accrued = int(totals["loans_accrued"])
            assert accrued == opts.loans, (accrued, opts.loans)
            ours.append(accrued / seconds)
            for name, value in steps.items():
                per_step.setdefault(name, []).append(value)
            rows, raw_seconds = raw_insert(url, day, k)
            vacuum(url)  # what autovacuum does during the business day, before the next end of day
            assert rows == accrued
            anchor.append(rows / raw_seconds)
            log(
                f"  ours {seconds:.1f} s = {accrued / seconds:,.0f} loans/s; raw INSERT … SELECT of the "
                f"same {rows:,} rows {raw_seconds:.1f} s = {rows / raw_seconds:,.0f} rows/s"
            )
    value, anchor_value = median(ours), median(anchor)
    emit(
        "eod_pg",
        value,
        "loans/s",
        "PostgreSQL raw INSERT … SELECT of the same accrual rows into a plain table (rows/s)",
        anchor_value,
        loans=opts.loans,
        dates=opts.dates,
        seconds_per_date=round(opts.loans / value, 1),
        runs_loans_per_s=[round(v) for v in ours],
        runs_anchor_rows_per_s=[round(v) for v in anchor],
        step_seconds_median={name: round(median(v), 2) for name, v in per_step.items()},
        last_totals={
            k: v
            for k, v in totals.items()
            if k in ("instalments_due", "reminders", "overdue_notices", "messages", "buckets", "stages")
        },
        target=TARGET_LOANS_PER_SECOND,
        target_met=value >= TARGET_LOANS_PER_SECOND,
        **facts,
    )


if __name__ == "__main__":
    main()
