"""The end of day (issue 8): exact accrual against the schedule, due instalments, buckets, IFRS 9
stages, penalty, reminders, the ledger — idempotent per date, restartable after a crash at any step
(the result equals an uninterrupted run on a twin database), and refusals of bad dates."""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import typer
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from tests.conftest import PG_URL, bearer
from tests.integration.investing.conftest import (  # noqa: F401 - fixtures used by name
    INSTITUTION,
    INVESTOR,
    SME,
    Drain,
    deposit,
    drain,
    list_demand,
    verified,
)
from yunrong.config import Settings
from yunrong.db import make_engine, make_sessionmaker, unit_of_work
from yunrong.identity.model import Actor, Context
from yunrong.identity.tables import User
from yunrong.kit.clock import FrozenClock, business_date
from yunrong.ledger.tables import JournalEntry, LedgerAccount, Posting
from yunrong.ledger.verify import first_violation
from yunrong.messaging.tables import Notification, OutboxEvent
from yunrong.servicing import eod
from yunrong.servicing.cli import eod_command
from yunrong.servicing.tables import DailyAccrual, EodRun, Instalment, LoanServicing

# --- the scenario ----------------------------------------------------------------------------------


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The simulated bank answers in-process and never fails unless a test asks it to.
    return settings.model_copy(
        update={"simbank_callback_mode": "direct", "simbank_failure_rate": 0.0, "simbank_duplicate_rate": 0.0}
    )


def _commit(client: TestClient, token: str, demand_id: uuid.UUID, amount: str) -> None:
    response = client.post(
        "/api/v1/commitments",
        json={"demand_id": str(demand_id), "amount": amount, "accept_agreement": True},
        headers={**bearer(token), "Idempotency-Key": uuid.uuid4().hex},
    )
    assert response.status_code == 201, response.text


def active_loan(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    pay_out: Drain,
) -> uuid.UUID:
    """A CNY 300,000 P2P loan, 12 months equal instalments at 8.5 %, funded and paid out."""
    deposit(client, tokens[INVESTOR], "200000.00")
    deposit(client, tokens[INSTITUTION], "500000.00")
    pay_out()
    demand_id = list_demand(client, tokens, factory, settings, clock, amount="300000.00")
    _commit(client, tokens[INVESTOR], demand_id, "150000.00")
    _commit(client, tokens[INSTITUTION], demand_id, "150000.00")
    funding = client.get(f"/api/v1/demands/{demand_id}/funding", headers=bearer(tokens[SME])).json()
    loan_id = funding["loan_id"]
    sha = client.get(f"/api/v1/loans/{loan_id}/agreement", headers=bearer(tokens[SME])).headers[
        "X-Agreement-SHA256"
    ]
    accepted = client.post(
        f"/api/v1/loans/{loan_id}/agreement/accept", json={"sha256": sha}, headers=bearer(tokens[SME])
    )
    assert accepted.status_code == 200, accepted.text
    pay_out()  # the custodian pays out: the loan is active and serviced
    with factory() as session:
        servicing = session.get(LoanServicing, uuid.UUID(loan_id))
        assert servicing is not None
    return uuid.UUID(loan_id)


def _ctx(clock: FrozenClock) -> Context:
    return Context(actor=Actor.system("eod-test"), clock=clock, request_id="eod-test")


def run(
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    first: date,
    last: date,
    after: Callable[[date], None] | None = None,
) -> None:
    day = first
    while day <= last:
        result = eod.run_eod(factory, business_date=day, settings=settings, clock=clock, ctx=_ctx(clock))
        assert result.status == "closed"
        assert not result.already_closed
        if after is not None:
            after(day)
        day += timedelta(days=1)


def to_date(clock: FrozenClock, settings: Settings, day: date) -> None:
    """Move the clock forward so that ``day`` is today (business dates up to it may close)."""
    today = business_date(clock.now(), settings.timezone)
    if day > today:
        clock.advance(timedelta(days=(day - today).days))


def servicing_of(factory: sessionmaker[Session], loan_id: uuid.UUID) -> LoanServicing:
    with factory() as session:
        row = session.get(LoanServicing, loan_id)
        assert row is not None
        return row


def instalments_of(factory: sessionmaker[Session], loan_id: uuid.UUID) -> list[Instalment]:
    with factory() as session:
        return list(
            session.scalars(
                select(Instalment).where(Instalment.loan_id == loan_id).order_by(Instalment.number)
            )
        )


def accruals_of(factory: sessionmaker[Session], loan_id: uuid.UUID) -> dict[date, DailyAccrual]:
    with factory() as session:
        rows = session.scalars(select(DailyAccrual).where(DailyAccrual.loan_id == loan_id)).all()
        return {r.business_date: r for r in rows}


def rhe(numerator: int, denominator: int) -> int:
    return round(Fraction(numerator, denominator))  # Fraction rounds half to even


def dump(factory: sessionmaker[Session]) -> dict[str, Any]:
    """Everything the end of day writes, without generated ids, refs and row timestamps."""

    def rows(session: Session, query: Any) -> list[list[Any]]:
        return [[str(v) for v in row] for row in session.execute(query)]

    with factory() as session:
        ls = LoanServicing.__table__
        ins = Instalment.__table__
        acc = DailyAccrual.__table__
        accounts = {a.id: a.code for a in session.scalars(select(LedgerAccount))}
        entries = {}
        for e in session.scalars(select(JournalEntry)):
            legs = sorted(
                (accounts[p.account_id], p.side, p.amount, p.currency)
                for p in session.scalars(select(Posting).where(Posting.entry_id == e.id))
            )
            entries.setdefault((e.value_date.isoformat(), e.external_ref or "", e.kind), []).append(
                (e.description if e.kind == "eod_accrual" else "", e.posted, legs)
            )
        return {
            "loan_servicing": rows(session, select(ls).order_by(ls.c.loan_id)),
            "accruals": rows(
                session,
                select(
                    acc.c.loan_id, acc.c.business_date, acc.c.interest, acc.c.penalty, acc.c.days_past_due
                ).order_by(acc.c.loan_id, acc.c.business_date),
            ),
            "instalments": rows(session, select(ins).order_by(ins.c.loan_id, ins.c.version, ins.c.number)),
            "entries": sorted((k, sorted(v)) for k, v in entries.items()),
            "balances": rows(
                session,
                select(
                    LedgerAccount.code,
                    LedgerAccount.debits_posted,
                    LedgerAccount.credits_posted,
                    LedgerAccount.debits_pending,
                    LedgerAccount.credits_pending,
                ).order_by(LedgerAccount.code),
            ),
            "eod_runs": [
                [r.business_date.isoformat(), r.status, r.steps_done, json.dumps(r.totals, sort_keys=True)]
                for r in session.scalars(select(EodRun).order_by(EodRun.business_date))
            ],
            "notifications": sorted(
                rows(
                    session,
                    select(
                        Notification.user_id,
                        Notification.kind,
                        Notification.subject_en,
                        Notification.subject_zh,
                        Notification.body_en,
                        Notification.body_zh,
                        Notification.link,
                    ),
                )
            ),
            "outbox": sorted(
                json.dumps([e.topic, e.payload], sort_keys=True, ensure_ascii=False)
                for e in session.scalars(select(OutboxEvent))
            ),
        }


@pytest.fixture
def twin(engine: Engine, db_url: str, tmp_path: Path) -> Iterator[Callable[[], sessionmaker[Session]]]:
    """Clone the test database as it is now (call it once the scenario is set up)."""
    made: list[tuple[Engine, str | None]] = []

    def clone() -> sessionmaker[Session]:
        engine.dispose()  # no connection may be open on a template; SQLite checkpoints its WAL
        if db_url.startswith("sqlite"):
            source = Path(make_url(db_url).database or "")
            target = tmp_path / "twin.db"
            for suffix in ("", "-wal", "-shm"):
                if Path(f"{source}{suffix}").exists():
                    shutil.copyfile(f"{source}{suffix}", f"{target}{suffix}")
            twin_engine = make_engine(f"sqlite:///{target}")
            made.append((twin_engine, None))
            return make_sessionmaker(twin_engine)
        import psycopg

        source_url = make_url(db_url)
        name = f"{source_url.database}_twin"
        admin = make_url(PG_URL).set(drivername="postgresql", database="postgres")
        with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source_url.database}"')
        twin_engine = make_engine(source_url.set(database=name).render_as_string(hide_password=False))
        made.append((twin_engine, name))
        return make_sessionmaker(twin_engine)

    yield clone
    for twin_engine, name in made:
        twin_engine.dispose()
        if name is not None:
            import psycopg

            admin = make_url(PG_URL).set(drivername="postgresql", database="postgres")
            with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- (a) a month of accruals equals the first instalment's interest exactly -----------------------


def test_a_month_of_accruals_sums_to_the_instalment_interest_and_it_becomes_due(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    verified: None,  # noqa: F811
    drain: Drain,  # noqa: F811
) -> None:
    loan_id = active_loan(client, tokens, factory, settings, clock, drain)
    start = servicing_of(factory, loan_id).start_date
    first = instalments_of(factory, loan_id)[0]
    assert (first.period_start, first.number) == (start, 1)
    due = first.due_date
    to_date(clock, settings, due)
    seen: dict[date, tuple[int, str, int]] = {}

    def after(day: date) -> None:
        s = servicing_of(factory, loan_id)
        seen[day] = (s.interest_accrued, instalments_of(factory, loan_id)[0].status, s.days_past_due)

    run(factory, settings, clock, start, due, after)

    # Day by day: the exact cumulative amount less the previous days', the last day trued up.
    balance, rate_bp = 30_000_000, 850
    accruals = accruals_of(factory, loan_id)
    for k in range((due - start).days - 1):
        day = start + timedelta(days=k)
        expected = rhe(balance * rate_bp * (k + 1), 3_650_000) - rhe(balance * rate_bp * k, 3_650_000)
        assert accruals[day].interest == expected, day
        assert accruals[day].penalty == 0
    period = [accruals[start + timedelta(days=k)].interest for k in range((due - start).days)]
    assert sum(period) == first.interest_due == rhe(balance * 850 * 30, 3_650_000)
    # At the due date the accrued interest is exactly the instalment's contractual interest.
    assert seen[due - timedelta(days=1)] == (first.interest_due, "scheduled", 0)
    assert seen[due][1] == "due"
    assert seen[due][2] == 0
    s = servicing_of(factory, loan_id)
    assert s.next_due_date == instalments_of(factory, loan_id)[1].due_date
    assert (s.bucket, s.state, s.ifrs9_stage) == ("current", "performing", 1)
    assert s.last_accrual_date == due + timedelta(days=1)

    with factory() as session:
        # One reminder, three days before the due date, in both languages, to the enterprise.
        reminders = session.scalars(
            select(Notification).where(Notification.kind == "loan.payment_reminder")
        ).all()
        sme = session.scalars(select(User).where(User.email == SME)).one()
        assert [n.user_id for n in reminders if n.organisation_id == sme.organisation_id] == [sme.id]
        assert {n.created_at.date() for n in reminders} == {clock.now().date()}
        assert all(due.isoformat() in n.subject_en and "到期" in n.subject_zh for n in reminders)
        assert session.scalars(select(Instalment.reminded).where(Instalment.id == first.id)).one() is True
        reminded_on = session.get(EodRun, due - timedelta(days=eod.REMINDER_DAYS))
        assert reminded_on is not None
        assert reminded_on.totals["reminders"] == 1
        # The ledger: one entry per day, loan book = principal + everything accrued.
        entries = session.scalars(select(JournalEntry).where(JournalEntry.kind == "eod_accrual")).all()
        assert sorted(e.external_ref or "" for e in entries) == sorted(
            f"EOD-{(start + timedelta(days=k)).isoformat()}-CNY" for k in range((due - start).days + 1)
        )
        book = session.scalars(select(LedgerAccount).where(LedgerAccount.purpose == "loan_book")).one()
        claims = session.scalars(
            select(LedgerAccount).where(LedgerAccount.purpose == "investor_claims")
        ).one()
        accrued = sum(a.interest + a.penalty for a in accruals.values())
        assert book.debits_posted - book.credits_posted == 30_000_000 + accrued
        assert claims.credits_posted - claims.debits_posted == 30_000_000 + accrued
        assert first_violation(session) is None
        closed = session.get(EodRun, due)
        assert closed is not None
        assert closed.status == "closed"
        assert closed.steps_done == list(eod.STEPS)
        assert closed.totals["instalments_due"] == 1
        assert closed.totals["buckets"] == {"current": 1}


# --- (b) running a date twice changes nothing -------------------------------------------------------


def test_running_a_date_twice_changes_nothing(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    verified: None,  # noqa: F811
    drain: Drain,  # noqa: F811
) -> None:
    loan_id = active_loan(client, tokens, factory, settings, clock, drain)
    due = instalments_of(factory, loan_id)[0].due_date
    first = due - timedelta(days=4)  # the first end of day may be any date: the loan catches up
    to_date(clock, settings, due + timedelta(days=2))
    run(factory, settings, clock, first, due + timedelta(days=1))  # reminder, due, one day overdue
    before = dump(factory)
    assert before["notifications"]
    assert before["accruals"]

    again = eod.run_eod(factory, business_date=due, settings=settings, clock=clock, ctx=_ctx(clock))
    assert again.already_closed
    assert again.status == "closed"
    assert dump(factory) == before

    # Even forced through every step again, each step is idempotent on its own.
    with unit_of_work(factory) as session:
        session.execute(
            update(EodRun)
            .where(EodRun.business_date == due + timedelta(days=1))
            .values(status="running", steps_done=[], totals={})
        )
    rerun = eod.run_eod(
        factory, business_date=due + timedelta(days=1), settings=settings, clock=clock, ctx=_ctx(clock)
    )
    assert rerun.status == "closed"
    assert not rerun.already_closed
    after = dump(factory)
    assert after["eod_runs"][-1][3] != before["eod_runs"][-1][3]  # the counts say nothing new was done
    assert rerun.totals["loans_accrued"] == 0
    assert rerun.totals["ledger_entries"] == 0
    assert rerun.totals["overdue_notices"] == 0
    assert rerun.totals["reminders"] == 0
    after["eod_runs"], before["eod_runs"] = after["eod_runs"][:-1], before["eod_runs"][:-1]
    assert after == before


# --- (c) a crash anywhere, then a resume, equals an uninterrupted run -------------------------------


def test_crashes_at_every_step_then_resume_equal_an_uninterrupted_run(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    verified: None,  # noqa: F811
    drain: Drain,  # noqa: F811
    twin: Callable[[], sessionmaker[Session]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loan_id = active_loan(client, tokens, factory, settings, clock, drain)
    due = instalments_of(factory, loan_id)[0].due_date
    first, last = due - timedelta(days=5), due + timedelta(days=7)
    to_date(clock, settings, last)
    other = twin()

    run(factory, settings, clock, first, last)  # uninterrupted

    class Crash(RuntimeError):
        pass

    def crashing(name: str) -> Callable[[Any], dict[str, Any]]:
        real = eod.STEP_FUNCTIONS[name]

        def step(s: Any) -> dict[str, Any]:
            real(s)  # the step's writes happen, then the process dies before the commit
            s.session.flush()
            raise Crash(name)

        return step

    # Even dates stop after each step in turn (a crash between steps); odd dates crash inside
    # each step in turn, after its writes and before its commit. Then the run is resumed.
    day, k = first, 0
    crashed_in: set[str] = set()
    while day <= last:
        ctx = _ctx(clock)
        step = eod.STEPS[(k // 2) % len(eod.STEPS)]
        if k % 2 == 0:
            stopped = eod.run_eod(
                other, business_date=day, settings=settings, clock=clock, ctx=ctx, stop_after=step
            )
            assert stopped.status == ("closed" if step == "close" else "running")
            assert stopped.steps_done == eod.STEPS[: eod.STEPS.index(step) + 1]
        else:
            with monkeypatch.context() as patch:
                patch.setitem(eod.STEP_FUNCTIONS, step, crashing(step))
                with pytest.raises(Crash):
                    eod.run_eod(other, business_date=day, settings=settings, clock=clock, ctx=ctx)
            with other() as session:
                row = session.get(EodRun, day)
                assert row is not None
                assert row.steps_done == list(eod.STEPS[: eod.STEPS.index(step)])
            crashed_in.add(step)
        resumed = eod.run_eod(other, business_date=day, settings=settings, clock=clock, ctx=ctx)
        assert resumed.status == "closed"
        assert resumed.steps_done == eod.STEPS
        day, k = day + timedelta(days=1), k + 1

    assert crashed_in == set(eod.STEPS)
    expected, got = dump(factory), dump(other)
    assert expected["accruals"]
    assert expected["notifications"]
    assert any(int(row[-1]) > 0 for row in expected["accruals"])  # days past due reached
    for key in expected:
        if key == "eod_runs":
            continue  # the per-step counts of a resumed run cover only what its last attempt did
        assert got[key] == expected[key], key
    assert [r[:3] for r in got["eod_runs"]] == [r[:3] for r in expected["eod_runs"]]
    with other() as session:
        assert first_violation(session) is None


# --- (d) bad dates are refused ---------------------------------------------------------------------


def test_skipped_closed_and_future_dates_are_refused(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    verified: None,  # noqa: F811
    drain: Drain,  # noqa: F811
) -> None:
    loan_id = active_loan(client, tokens, factory, settings, clock, drain)
    start = servicing_of(factory, loan_id).start_date
    today = business_date(clock.now(), settings.timezone)
    ctx = _ctx(clock)
    with pytest.raises(eod.BusinessDateInFuture, match="future"):
        eod.run_eod(factory, business_date=today + timedelta(days=1), settings=settings, clock=clock, ctx=ctx)
    to_date(clock, settings, start + timedelta(days=5))
    run(factory, settings, clock, start, start + timedelta(days=1))
    before = dump(factory)
    with pytest.raises(eod.BusinessDateSkipped, match="skipped"):
        eod.run_eod(factory, business_date=start + timedelta(days=3), settings=settings, clock=clock, ctx=ctx)
    with pytest.raises(eod.BusinessDateInFuture):
        eod.run_eod(factory, business_date=start + timedelta(days=6), settings=settings, clock=clock, ctx=ctx)
    closed = eod.run_eod(factory, business_date=start, settings=settings, clock=clock, ctx=ctx)
    assert closed.already_closed
    with pytest.raises(Exception, match="unknown step"):
        eod.run_eod(
            factory,
            business_date=start + timedelta(days=2),
            settings=settings,
            clock=clock,
            ctx=ctx,
            stop_after="nap",
        )
    assert dump(factory) == before  # nothing booked


def test_the_cli_refuses_bad_dates_in_one_line(
    engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("yunrong.config.get_settings", lambda: settings)
    app = typer.Typer()
    app.command("eod")(eod_command)
    app.command("noop")(lambda: None)
    runner = CliRunner()
    from yunrong.kit.clock import SystemClock

    today = business_date(SystemClock().now(), settings.timezone)

    def cli(*args: str) -> Any:
        return runner.invoke(app, ["eod", *args])

    future = cli("--date", (today + timedelta(days=1)).isoformat())
    assert future.exit_code == 2
    assert "future" in future.stderr
    assert len(future.stderr.strip().splitlines()) == 1
    first = cli("--date", (today - timedelta(days=4)).isoformat())
    assert first.exit_code == 0, first.stderr
    assert "accrue" in first.stdout
    assert "closed" in first.stdout
    closed = cli("--date", (today - timedelta(days=4)).isoformat())
    assert closed.exit_code == 2
    assert "already closed" in closed.stderr
    assert len(closed.stderr.strip().splitlines()) == 1
    skipped = cli("--date", (today - timedelta(days=1)).isoformat())
    assert skipped.exit_code == 2
    assert "skipped" in skipped.stderr
    assert len(skipped.stderr.strip().splitlines()) == 1
    bad = cli("--date", "2026-13-01")
    assert bad.exit_code == 2
    assert len(bad.stderr.strip().splitlines()) == 1
    through = cli("--through", (today - timedelta(days=2)).isoformat())
    assert through.exit_code == 0, through.stderr
    assert through.stdout.count(" closed") == 2
    with make_sessionmaker(engine)() as session:
        assert eod.last_closed_date(session) == today - timedelta(days=2)


# --- (e) a late instalment moves through the buckets and stages, with penalty -----------------------


def test_a_late_instalment_moves_through_buckets_and_stages_with_penalty(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    verified: None,  # noqa: F811
    drain: Drain,  # noqa: F811
) -> None:
    loan_id = active_loan(client, tokens, factory, settings, clock, drain)
    schedule = instalments_of(factory, loan_id)
    one, two = schedule[0], schedule[1]
    due = one.due_date
    last = due + timedelta(days=91)
    to_date(clock, settings, last)
    states: dict[int, tuple[str, str, int, int]] = {}

    def after(day: date) -> None:
        s = servicing_of(factory, loan_id)
        states[(day - due).days] = (s.bucket, s.state, s.ifrs9_stage, s.penalty_accrued)

    run(factory, settings, clock, due - timedelta(days=2), last, after)

    assert states[0][:3] == ("current", "performing", 1)
    assert states[1][:3] == ("1-30", "delinquent", 1)
    assert states[30][:3] == ("1-30", "delinquent", 1)
    assert states[31][:3] == ("31-60", "delinquent", 2)  # IFRS 9 stage 2 after 30 days
    assert states[60][:3] == ("31-60", "delinquent", 2)
    assert states[61][:3] == ("61-90", "delinquent", 2)
    assert states[90][:3] == ("61-90", "delinquent", 2)
    assert states[91][:3] == ("90+", "non_performing", 3)  # stage 3 and non-performing after 90
    s = servicing_of(factory, loan_id)
    assert s.days_past_due == 91

    # Penalty: from the night of the due date on the unpaid instalment, exact cumulative rounding.
    pbp = s.penalty_rate_bp
    assert pbp > 850
    unpaid_one = one.principal_due + one.interest_due
    nights = (two.due_date - due).days  # up to the night before the second instalment is due
    assert states[nights - 1][3] == rhe(unpaid_one * pbp * nights, 3_650_000)
    assert states[-1][3] == 0
    # The next period's interest is on the scheduled balance (the overdue principal bears penalty
    # instead), so it adds up to the second instalment's interest exactly.
    accruals = accruals_of(factory, loan_id)
    period_two = sum(accruals[due + timedelta(days=k)].interest for k in range(nights))
    assert period_two == two.interest_due
    assert accruals[due + timedelta(days=31)].days_past_due == 31
    with factory() as session:
        overdue = session.scalars(
            select(Notification.subject_en).where(Notification.kind == "loan.overdue")
        ).all()
        days_told = sorted({int(subject.split(" is ")[1].split()[0]) for subject in overdue})
        assert days_told == [1, 7, 30]
        assert first_violation(session) is None


def test_the_scheduled_job_closes_the_previous_business_dates_in_order(
    factory: sessionmaker[Session], settings: Settings, clock: FrozenClock
) -> None:
    from yunrong.servicing.eod_jobs import end_of_day

    today = business_date(clock.now(), settings.timezone)
    yesterday = today - timedelta(days=1)
    assert end_of_day(factory, settings, clock) == f"end of day closed {yesterday.isoformat()}"
    assert end_of_day(factory, settings, clock) == "end of day: nothing to close"
    clock.advance(timedelta(days=3))  # the worker was down for three days: it catches up in order
    caught_up = ", ".join((today + timedelta(days=k)).isoformat() for k in range(3))
    assert end_of_day(factory, settings, clock) == f"end of day closed {caught_up}"
    with factory() as session:
        assert eod.last_closed_date(session) == today + timedelta(days=2)
