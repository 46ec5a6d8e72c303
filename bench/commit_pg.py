"""Commitments per second over real HTTP on PostgreSQL, against pgbench, with zero overfunding.

What is counted: a *commitment* is one ``POST /api/v1/commitments`` answered 201 (not a replay),
i.e. one committed transaction that checked the ticket, the investor's suitability and balance,
placed a two-phase hold in escrow and raised the round's total under the round's row lock.

Setup (not timed): a throwaway database is migrated and seeded with the demo world; ``--investors``
institutional investors are registered, admitted by the two demo regulators, their bank accounts
verified, and each pays money in through a deposit instruction that the simulated bank confirms
through the outbox; the demo enterprise's demand of CNY 1,000,000.00 is listed with a priced
decision and its funding round opened. Then ``uvicorn yunrong.asgi:app --workers <server-workers>``
serves that database, and every investor logs in for a bearer token.

Timed: ``--clients`` threads, each with its own keep-alive ``httpx.Client``, post commitments of
CNY 100, 200 or 300 to the one listing as fast as the answers come back (closed loop), each with a fresh
Idempotency-Key; every ``--retry-every``-th request is sent again with the same key and body
(it must be answered as a replay of the same commitment). All requests go to the same round, so
they serialise on its row lock: this is the hot case of many investors rushing one listing. The
round is large enough not to fill during the timed runs.

Anchor: pgbench's default TPC-B-like script on the same server in the same run
(``pgbench -i -s 8``, then ``pgbench -c 8 -j 2 -T <seconds>``), alternating with our runs; medians
are reported. Target: ours / pgbench ≥ 0.35.

At the end a burst of concurrent commitments asking for more than what is left fills the round:
it must fund exactly to its target (posting every hold once and booking the loan), every other
request must be refused, and ``yunrong.ledger.verify`` must find no violation. ``--profile`` then
breaks one request down (in-process, with cProfile) into its parts.

    .venv/bin/python bench/commit_pg.py --seconds 10 --repeat 3
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

try:  # run as a script (python bench/commit_pg.py) or as a module (python -m bench.commit_pg)
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
    from ledger_pg import pgbench_init, pgbench_run
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
    from bench.ledger_pg import pgbench_init, pgbench_run

PASSWORD = "bench-investor-2026"  # noqa: S105 - throwaway investors in a throwaway database
TARGET = "1000000.00"  # the demand, CNY; the cn-2016 profile caps a legal person at this much
DEPOSIT = 5_000_000  # minor units per investor (CNY 50,000)


# --- setup ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class World:
    url: str
    demand_id: uuid.UUID
    emails: list[str]


def _settings(url: str, tmp: Path) -> Any:
    from yunrong.config import Settings

    return Settings(
        database_url=url,
        demo=False,
        mail_dir=tmp / "mail",
        upload_dir=tmp / "uploads",
        model_dir=tmp / "models",
        log_level="WARNING",
        simbank_callback_mode="direct",
        simbank_failure_rate=0.0,
        simbank_duplicate_rate=0.0,
        simbank_max_delay_seconds=0.5,
    )


def _ctx(session: Any, email: str) -> Any:
    from yunrong.identity import repository as repo
    from yunrong.identity.model import Context
    from yunrong.identity.service import actor_for
    from yunrong.kit.clock import SystemClock

    user = repo.user_by_email(session, email)
    assert user is not None
    org = repo.organisation_by_id(session, user.organisation_id)
    assert org is not None
    return Context(actor=actor_for(user, org, "bench"), clock=SystemClock(), request_id="bench-setup")


def prepare(url: str, tmp: Path, investors: int) -> World:
    """Migrate, seed, admit and fund the investors, list the demand (see the module docstring)."""
    from sqlalchemy import select

    from yunrong.custody import service as custody
    from yunrong.db import make_engine, make_sessionmaker, unit_of_work
    from yunrong.decisions.tables import CreditDecision, ModelVersion
    from yunrong.demands import service as demands
    from yunrong.demands.schemas import DemandIn
    from yunrong.demo.seed import REGULATOR_1, REGULATOR_2, SME, seed_demo
    from yunrong.identity.model import Actor, Context, InvestorKind
    from yunrong.investing import service as investing
    from yunrong.kit.clock import SystemClock
    from yunrong.messaging.worker import deliver_due
    from yunrong.migrate import upgrade
    from yunrong.parties import codes
    from yunrong.parties import service as parties
    from yunrong.parties.model import FundsSource, InstitutionType, ReviewAction
    from yunrong.parties.schemas import ApplicantIn, BankAccountIn, InvestorIn, InvestorRegistrationIn
    from yunrong.parties.tables import BankAccount, Investor

    settings = _settings(url, tmp)
    upgrade(url)
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    clock = SystemClock()
    system = Context(actor=Actor.system("bench"), clock=clock, request_id="bench-setup")
    emails = [f"bench-{i:03d}@investors.example.cn" for i in range(investors)]
    try:
        with unit_of_work(factory) as session:
            seed_demo(session, ctx=system, settings=settings, with_money=False)
        with unit_of_work(factory) as session:
            for i, email in enumerate(emails):
                registration = parties.register_investor(
                    session,
                    ctx=system,
                    settings=settings,
                    data=InvestorRegistrationIn(
                        investor=InvestorIn(
                            kind=InvestorKind.INSTITUTION,
                            name=f"Bench Capital {i:03d} 基准资本",
                            institution_type=InstitutionType.SMALL_LOAN_COMPANY,
                            credit_code=codes.make_uscc(f"91321100MA1{i:06d}"),
                            contact_phone="+86 511 8500 0000",
                            net_worth=Decimal("300000000.00"),
                            annual_income=Decimal("42000000.00"),
                            funds_sources=[FundsSource.OWN_CAPITAL],
                        ),
                        applicant=ApplicantIn(email=email, name=f"Bench {i:03d}", password=PASSWORD),
                        bank_account=BankAccountIn(
                            bank_name="Bank of Jiangsu 江苏银行",
                            account_name=f"Bench Capital {i:03d}",
                            account_number=f"321001880{i:07d}",
                        ),
                    ),
                )
                for regulator in (REGULATOR_1, REGULATOR_2):
                    parties.decide(
                        session,
                        ctx=_ctx(session, regulator.email),
                        settings=settings,
                        qualification_id=registration.qualification.id,
                        decision=ReviewAction.APPROVE,
                        reason="bench: admitted",
                    )
            for account in session.scalars(select(BankAccount)).all():
                account.verified_at = clock.now()
                account.verified_by = "bench"
            for row in session.scalars(select(Investor)).all():
                row.risk_level = "C4"
        with unit_of_work(factory) as session:
            for email in emails:
                ctx = _ctx(session, email)
                bank_account = session.scalars(
                    select(BankAccount).where(BankAccount.organisation_id == ctx.actor.organisation_id)
                ).one()
                custody.create_deposit(
                    session, ctx=ctx, amount=DEPOSIT, currency="CNY", bank_account_id=bank_account.id
                )
        # The simulated bank answers after 0.5 s through the outbox: run the worker until quiet.
        quiet = 0
        while quiet < 3:
            done = deliver_due(factory, settings=settings, clock=clock, worker_id="bench-setup")
            quiet = quiet + 1 if done == 0 else 0
            if done == 0:
                time.sleep(0.5)  # waiting for the bank's delayed answers, not timing anything
        with unit_of_work(factory) as session:
            sme = _ctx(session, SME.email)
            demand = demands.create_demand(
                session, ctx=sme, settings=settings, data=DemandIn.model_validate(_demand_body())
            )
            now = clock.now()
            demand.status = "listed"
            demand.listed_at = now
            model_row = ModelVersion(
                name="bench",
                version=1,
                role="champion",
                artifact_path="-",
                artifact_sha256="0" * 64,
                card={},
                reference_scores={},
                registered_by="bench",
                registered_at=now,
            )
            session.add(model_row)
            session.flush()
            session.add(
                CreditDecision(
                    demand_id=demand.id,
                    model_id=model_row.id,
                    as_of=now,
                    features={},
                    pd=0.03,
                    score=600.0,
                    grade="BBB",
                    declined=False,
                    annual_rate=Decimal("0.085"),
                    limit_minor=demand.amount_minor,
                    price={},
                    reasons=[],
                    decided_at=now,
                )
            )
            session.flush()
            funding = investing.open_round(session, ctx=system, demand=demand, settings=settings)
            assert funding is not None
            demand_id = demand.id
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            from sqlalchemy import text

            conn.execute(text("VACUUM ANALYZE"))
        return World(url, demand_id, emails)
    finally:
        engine.dispose()


def _demand_body() -> dict[str, Any]:
    return {
        "product": "p2p_loan",
        "title": "Cold-chain storage expansion (benchmark)",
        "amount": TARGET,
        "currency": "CNY",
        "term_months": 12,
        "repayment_method": "equal_instalment",
        "max_annual_rate": "9.5000",
        "purpose": "Build a second cold store for the 2027 harvest",
        "use_of_funds": [{"item": "Cold stores", "amount": TARGET}],
        "innovation": {"rd_spend": "420000.00", "patents": [], "high_tech_certified": False},
        "collateral": [],
        "guarantee_wanted": False,
        "project_key": f"bench-{uuid.uuid4().hex[:8]}",
    }


# --- the server ---------------------------------------------------------------------------------------


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(url: str, tmp: Path, workers: int) -> Iterator[str]:
    port = _port()
    env = {
        **os.environ,
        "YUNRONG_DATABASE_URL": url,
        "YUNRONG_LOG_LEVEL": "WARNING",
        "YUNRONG_MAIL_DIR": str(tmp / "mail"),
        "YUNRONG_UPLOAD_DIR": str(tmp / "uploads"),
        "YUNRONG_MODEL_DIR": str(tmp / "models"),
        "YUNRONG_SIMBANK_CALLBACK_MODE": "direct",
    }
    cmd = [sys.executable, "-m", "uvicorn", "yunrong.asgi:app", "--port", str(port), "--no-access-log"]
    cmd += ["--log-level", "warning", "--workers", str(workers)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=5) as http:
            for _ in range(600):
                try:
                    if http.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None:
                    raise SystemExit(
                        f"the server did not start:\n{proc.stderr.read() if proc.stderr else ''}"
                    )
                time.sleep(0.1)  # waiting for the server to come up, not timing anything
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def tokens(base: str, emails: list[str]) -> list[str]:
    out = []
    with httpx.Client(base_url=base, timeout=30) as http:
        for email in emails:
            r = http.post("/api/v1/auth/token", data={"username": email, "password": PASSWORD})
            assert r.status_code == 200, r.text
            out.append(str(r.json()["access_token"]))
    return out


# --- the load ------------------------------------------------------------------------------------------


@dataclass
class Tally:
    created: int = 0
    replayed: int = 0
    refused: int = 0
    errors: int = 0
    first_error: str = ""
    latencies: list[float] | None = None


def _post(
    http: httpx.Client, token: str, demand_id: uuid.UUID, amount: str, key: str
) -> tuple[httpx.Response, float]:
    t0 = time.perf_counter()
    r = http.post(
        "/api/v1/commitments",
        json={"demand_id": str(demand_id), "amount": amount, "accept_agreement": True},
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
    )
    return r, time.perf_counter() - t0


def load(
    base: str,
    toks: list[str],
    demand_id: uuid.UUID,
    clients: int,
    seconds: float,
    retry_every: int,
    seed: int,
) -> tuple[float, Tally, float]:
    """Closed loop for ``seconds``: commitments created per second over the wall time."""
    barrier = threading.Barrier(clients)
    lock = threading.Lock()
    total = Tally(latencies=[])
    marks: list[tuple[float, float]] = []

    def client(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        mine = Tally(latencies=[])
        with httpx.Client(base_url=base, timeout=120, limits=httpx.Limits(max_connections=1)) as http:
            http.get("/healthz")  # connect before the clock starts
            barrier.wait()
            start = time.perf_counter()
            deadline = start + seconds
            n = 0
            while time.perf_counter() < deadline:
                n += 1
                token = toks[rng.randrange(len(toks))]
                amount = f"{rng.choice((100, 200, 300))}.00"  # multiples of the minimum: the round can fill
                key = uuid.uuid4().hex
                r, dt = _post(http, token, demand_id, amount, key)
                _count(mine, r, dt, replay=False)
                if retry_every and n % retry_every == 0 and r.status_code == 201:
                    again, dt2 = _post(http, token, demand_id, amount, key)
                    _count(mine, again, dt2, replay=True)
                    if again.status_code == 201 and again.json()["id"] != r.json()["id"]:
                        mine.errors += 1
                        mine.first_error = mine.first_error or "a retry created a second commitment"
            end = time.perf_counter()
        with lock:
            total.created += mine.created
            total.replayed += mine.replayed
            total.refused += mine.refused
            total.errors += mine.errors
            total.first_error = total.first_error or mine.first_error
            assert total.latencies is not None
            assert mine.latencies is not None
            total.latencies.extend(mine.latencies)
            marks.append((start, end))

    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(client, range(clients)))
    wall = max(m[1] for m in marks) - min(m[0] for m in marks)
    lat = sorted(total.latencies or [0.0])
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    return total.created / wall, total, p99


def _count(t: Tally, r: httpx.Response, dt: float, *, replay: bool) -> None:
    assert t.latencies is not None
    t.latencies.append(dt)
    if r.status_code == 201:
        if (r.headers.get("Idempotent-Replayed") == "true") != replay:
            t.errors += 1
            t.first_error = t.first_error or f"replay header wrong: {r.headers.get('Idempotent-Replayed')}"
        elif replay:
            t.replayed += 1
        else:
            t.created += 1
    elif r.status_code in (409, 422):
        t.refused += 1
    else:
        t.errors += 1
        t.first_error = t.first_error or f"{r.status_code}: {r.text[:500]}"


def fill(base: str, toks: list[str], demand_id: uuid.UUID, clients: int) -> dict[str, Any]:
    """Ask concurrently for more than what is left (tickets of the minimum, CNY 100, and larger
    ones) so that the round must fill exactly and refuse the rest."""
    with httpx.Client(base_url=base, timeout=30) as http:
        state = http.get(
            f"/api/v1/demands/{demand_id}/funding", headers={"Authorization": f"Bearer {toks[0]}"}
        )
        remaining = int(state.json()["remaining_minor"])
    rng = random.Random(7)
    big = [f"{rng.randrange(10, 51) * 100}.00" for _ in range(remaining // 300_000 + 50)]
    small = ["100.00"] * 100  # at the end: whatever gap the big ones leave (a multiple of 100) fills
    asks = big + small
    statuses: Counter[str] = Counter()
    slowest = 0.0

    def one(i: int) -> None:
        nonlocal slowest
        with httpx.Client(base_url=base, timeout=300) as http:
            r, dt = _post(http, toks[i % len(toks)], demand_id, asks[i], uuid.uuid4().hex)
        rule = r.json().get("errors", [{}])[0].get("type", "") if r.status_code == 422 else ""
        statuses[f"{r.status_code} {rule}".strip()] += 1
        slowest = max(slowest, dt)

    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(one, range(len(asks))))
    return {
        "asked_minor": sum(int(Decimal(a) * 100) for a in asks),
        "remaining_minor": remaining,
        "statuses": dict(statuses),
        "seconds": round(time.perf_counter() - began, 2),
        "slowest_request_s": round(slowest, 2),
    }


# --- checks and the profile --------------------------------------------------------------------------


def check(url: str, demand_id: uuid.UUID) -> dict[str, Any]:
    from sqlalchemy import func, select

    from yunrong.config import Settings
    from yunrong.db import make_engine, make_sessionmaker, unit_of_work
    from yunrong.identity.model import Actor, Context
    from yunrong.investing.service import close_due_rounds
    from yunrong.investing.tables import Commitment, FundingRound, Loan
    from yunrong.kit.clock import SystemClock
    from yunrong.ledger.tables import Hold
    from yunrong.ledger.verify import first_violation

    engine = make_engine(url)
    try:
        # A round filled by more than INLINE_CLOSE_LIMIT commitments is closed by the worker's
        # job: run it as the worker would, and time it (it is not part of the measured rate).
        started = time.perf_counter()
        ctx = Context(actor=Actor.system("funding"), clock=SystemClock(), request_id="bench-close")
        with unit_of_work(make_sessionmaker(engine)) as session:
            closed = close_due_rounds(session, ctx=ctx, settings=Settings(database_url=url))
        closing_seconds = round(time.perf_counter() - started, 2)
        with make_sessionmaker(engine)() as session:
            funding = session.scalars(select(FundingRound).where(FundingRound.demand_id == demand_id)).one()
            live = session.scalars(
                select(Commitment).where(
                    Commitment.demand_id == demand_id, Commitment.status.in_(("pending", "posted"))
                )
            ).all()
            holds = Counter(
                session.scalars(select(Hold.status).where(Hold.id.in_([c.hold_id for c in live]))).all()
            )
            loan = session.get(Loan, funding.loan_id) if funding.loan_id else None
            violation = first_violation(session)
            n_commitments = session.scalar(select(func.count()).select_from(Commitment))
            return {
                "target_minor": funding.target_minor,
                "committed_minor": funding.committed_minor,
                "sum_of_commitments_minor": sum(c.amount_minor for c in live),
                "commitments": n_commitments,
                "round_status": funding.status,
                "holds": dict(holds),
                "loan_principal_minor": loan.principal_minor if loan else None,
                "ledger_violation": None if violation is None else str(violation),
                "closed_by_the_worker_job": closed,
                "closing_seconds": closing_seconds,
            }
    finally:
        engine.dispose()


PARTS = {
    "auth (bearer token -> actor)": ("identity/service.py", "resolve_access_token"),
    "idempotency claim + command": ("ledger/idempotency.py", "run_once"),
    "create_commitment (all)": ("investing/service.py", "create_commitment"),
    "  wait for + take round lock": ("investing/service.py", "_lock_round"),
    "  suitability checks": ("investing/service.py", "_suitability"),
    "  investor account (find)": ("custody/accounts.py", "investor_available"),
    "  enterprise payout (find)": ("custody/accounts.py", "enterprise_payout"),
    "  place_hold (accounts FOR UPDATE)": ("ledger/service.py", "place_hold"),
    "  agreement form hash": ("investing/service.py", "agreement_form_sha256"),
    "  audit.record (chain head lock)": ("supervision/service.py", "record"),
    "commit": ("sqlalchemy/orm/session.py", "commit"),
}


def profile(url: str, tmp: Path, tokens_: list[str], demand_id: uuid.UUID, n: int) -> dict[str, float]:
    """``n`` commitments, one at a time, exactly as the endpoint runs them (bearer token, run_once,
    create_commitment, commit) but in this thread under cProfile: milliseconds per request in each
    part, SQL statements per request, and how long each transaction holds the round's row lock (from
    taking it to the end of the commit) — one listing cannot take commitments faster than
    1 / that."""
    from sqlalchemy import event

    from yunrong.db import make_engine, make_sessionmaker
    from yunrong.identity import service as identity
    from yunrong.identity.model import Actor, Context
    from yunrong.investing import service as investing
    from yunrong.kit.clock import SystemClock
    from yunrong.ledger import idempotency

    settings = _settings(url, tmp)
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    statements = [0]

    @event.listens_for(engine, "before_cursor_execute")
    def _count(*_args: Any) -> None:
        statements[0] += 1

    acquired = [0.0]
    original = investing._lock_round

    def timed_lock(session: Any, demand_id: uuid.UUID) -> Any:
        row = original(session, demand_id)
        acquired[0] = time.perf_counter()
        return row

    def one(token: str) -> float:
        with factory() as session:
            base = Context(actor=Actor.system("anonymous"), clock=SystemClock(), request_id="bench")
            actor = identity.resolve_access_token(session, ctx=base, token=token)
            assert actor is not None
            ctx = Context(actor=actor, clock=base.clock, request_id="bench")
            req = investing.CommitRequest(
                demand_id=demand_id, amount=10_000, currency="CNY", accept_agreement=True
            )
            body = {
                "demand_id": str(demand_id),
                "amount": "100.00",
                "currency": "CNY",
                "accept_agreement": True,
            }

            def command() -> tuple[int, dict[str, Any]]:
                row = investing.create_commitment(session, ctx=ctx, settings=settings, req=req)
                return 201, {"id": str(row.id)}

            idempotency.run_once(
                session,
                ctx=ctx,
                key=uuid.uuid4().hex,
                operation="create_commitment",
                request=body,
                command=command,
            )
            session.commit()
            return time.perf_counter() - acquired[0]

    def many(count: int, profiler: cProfile.Profile | None) -> tuple[float, list[float]]:
        held: list[float] = []
        t0 = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        for i in range(count):
            held.append(one(tokens_[i % len(tokens_)]))
        if profiler is not None:
            profiler.disable()
        return time.perf_counter() - t0, held

    investing._lock_round = timed_lock  # this process only: to time the lock
    try:
        many(5, None)  # warm up
        statements[0] = 0
        wall, held = many(n, None)
        sql = statements[0] / n
        prof = cProfile.Profile()
        many(n, prof)
    finally:
        investing._lock_round = original
        engine.dispose()
    cum: dict[tuple[str, str], float] = {}
    for (filename, _line, name), row in pstats.Stats(prof).stats.items():  # type: ignore[attr-defined]
        for path, fn in PARTS.values():
            if name == fn and filename.endswith(path):
                cum[(path, fn)] = cum.get((path, fn), 0.0) + row[3]
    out = {
        "one request, service path (unprofiled)": wall / n * 1000,
        "round lock held, median (unprofiled)": median(held) * 1000,
        "SQL statements per request": sql,
    }
    for label, key in PARTS.items():
        out[f"profiled: {label}"] = cum.get(key, 0.0) / n * 1000
    return out


# --- main -------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10, help="length of each timed run (default 10)")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions; medians are reported")
    parser.add_argument("--clients", type=int, default=32, help="concurrent HTTP clients (default 32)")
    parser.add_argument("--investors", type=int, default=40, help="investors with money (default 40)")
    parser.add_argument("--server-workers", type=int, default=2, help="uvicorn --workers (default 2)")
    parser.add_argument("--retry-every", type=int, default=10, help="resend every n-th request (0: never)")
    parser.add_argument("--scale", type=int, default=8, help="pgbench -s (default 8)")
    parser.add_argument("--pgbench-clients", type=int, default=8, help="pgbench -c (default 8)")
    parser.add_argument("--pgbench-threads", type=int, default=2, help="pgbench -j (default 2)")
    parser.add_argument("--profile", type=int, default=50, help="requests to profile at the end (0: none)")
    parser.add_argument("--url", default=server_url(), help="server URL ($YUNRONG_BENCH_DATABASE_URL)")
    opts = parser.parse_args()

    began = time.monotonic()
    facts = {**machine(), "postgresql": postgres_version(opts.url)}
    print(f"machine: {json.dumps(facts)}")
    print(
        f"config: clients={opts.clients} investors={opts.investors} uvicorn --workers {opts.server_workers} "
        f"seconds={opts.seconds} repeat={opts.repeat} retry_every={opts.retry_every} "
        f"pgbench -s {opts.scale} -c {opts.pgbench_clients} -j {opts.pgbench_threads}"
    )
    runs: dict[str, list[float]] = {"pgbench": [], "ours": [], "p99_ms": []}
    with (
        sigterm_as_interrupt(),
        tempfile.TemporaryDirectory() as tmpdir,
        throwaway_database("yr_bench_pgbench", opts.url) as pgb_url,
        throwaway_database("yr_bench_commit", opts.url) as url,
    ):
        tmp = Path(tmpdir)
        log("pgbench -i …")
        pgbench_init(pgb_url, opts.scale)
        log(f"migrating, seeding, admitting and funding {opts.investors} investors …")
        world = prepare(url, tmp, opts.investors)
        log(f"setup done in {time.monotonic() - began:.0f}s; starting uvicorn …")
        with server(url, tmp, opts.server_workers) as base:
            toks = tokens(base, world.emails)
            load(base, toks, world.demand_id, opts.clients, 2, 0, seed=0)  # warm up, not counted
            tally = Tally()
            for rep in range(1, opts.repeat + 1):
                tps = pgbench_run(pgb_url, opts.pgbench_clients, opts.pgbench_threads, opts.seconds)
                rate, t, p99 = load(
                    base, toks, world.demand_id, opts.clients, opts.seconds, opts.retry_every, seed=rep
                )
                runs["pgbench"].append(tps)
                runs["ours"].append(rate)
                runs["p99_ms"].append(p99 * 1000)
                tally.created += t.created
                tally.replayed += t.replayed
                tally.refused += t.refused
                tally.errors += t.errors
                tally.first_error = tally.first_error or t.first_error
                print(
                    f"run {rep}: pgbench {tps:.0f} tps; ours {rate:.1f} commitments/s "
                    f"({t.created} created, {t.replayed} replays, {t.refused} refused, {t.errors} errors; "
                    f"p99 {p99 * 1000:.0f} ms)",
                    flush=True,
                )
            if tally.errors:
                raise SystemExit(f"{tally.errors} requests failed; the first: {tally.first_error}")
            parts: dict[str, float] = {}
            if opts.profile:
                log(f"profiling {opts.profile} single requests in-process (server idle) …")
                parts = profile(url, tmp, toks, world.demand_id, opts.profile)
                for label, value in parts.items():
                    print(f"profile: {label:48s} {value:8.2f}", flush=True)
            filled = fill(base, toks, world.demand_id, opts.clients)
            print(f"fill: {json.dumps(filled)}", flush=True)
        result = check(url, world.demand_id)
        print(f"check: {json.dumps(result)}", flush=True)
        if result["committed_minor"] > result["target_minor"]:
            raise SystemExit("OVERFUNDED: the round committed more than its target")
        if result["committed_minor"] != result["sum_of_commitments_minor"]:
            raise SystemExit("the round's total differs from the sum of its live commitments")
        if result["ledger_violation"]:
            raise SystemExit(f"ledger invariant violated: {result['ledger_violation']}")
        if result["round_status"] != "funded" or result["loan_principal_minor"] != result["target_minor"]:
            raise SystemExit("the fill burst did not fund the round exactly")
        if set(result["holds"]) != {"posted"}:
            raise SystemExit(f"holds not all posted once: {result['holds']}")

    pgb, ours = median(runs["pgbench"]), median(runs["ours"])
    print(
        f"medians: pgbench {pgb:.0f} tps, ours {ours:.1f} commitments/s "
        f"(ratio {ours / pgb:.3f}, target >= 0.35), p99 {median(runs['p99_ms']):.0f} ms; "
        f"total {time.monotonic() - began:.0f}s"
    )
    emit(
        "commit_pg_commitments_per_second",
        ours,
        "commitments/s",
        f"pgbench TPC-B-like tps (-s {opts.scale} -c {opts.pgbench_clients} -j {opts.pgbench_threads})",
        pgb,
        target=0.35,
        clients=opts.clients,
        investors=opts.investors,
        server_workers=opts.server_workers,
        overfunded=False,
        runs={k: [round(v, 1) for v in vs] for k, vs in runs.items()},
        profile_ms={k: round(v, 2) for k, v in parts.items()},
    )


if __name__ == "__main__":
    main()
