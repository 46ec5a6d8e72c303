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

Timed: ``--clients`` clients post commitments of CNY 1, 2 or 3 to the one listing as fast as
the answers come back (closed loop), each with a fresh Idempotency-Key; every ``--retry-every``-th
request is sent again with the same key and body (it must be answered as a replay of the same
commitment). All requests go to the same round, so they serialise on its row lock: this is the hot
case of many investors rushing one listing. The round's minimum ticket is set to CNY 1 so that the
listing (CNY 1,000,000, the cn-2016 cap for a legal person) does not fill during the timed runs.
The rate is the commitments created over the wall time from the moment every client is connected
to the end of the last one. The clients are coroutines on one asyncio event loop (uvloop's
if installed) in a process of their own, each with one keep-alive connection speaking minimal
HTTP/1.1 by hand: on a 2-vCPU machine a thread per client with ``httpx`` tops out near 1,900
requests/s even against an empty server and takes CPU (and the GIL) from the rest, so the client's
own cost, not the server, would be measured.

Anchor: pgbench's default TPC-B-like script on the same server in the same run
(``pgbench -i -s 8``, then ``pgbench -c 8 -j 2 -T <seconds>``), alternating with our runs; medians
are reported. Target: ours / pgbench ≥ 0.35. pgbench vacuums its tables before each run; so does
this benchmark (``VACUUM ANALYZE``, untimed) before each of its own.

At the end a burst of concurrent commitments asking for more than what is left fills the round:
it must fund exactly to its target (posting every hold once and booking the loan), every other
request must be refused, and ``yunrong.ledger.verify`` must find no violation. ``--profile`` then
breaks batches of commitments down (in-process, with cProfile) into their parts.

    .venv/bin/python bench/commit_pg.py --seconds 10 --repeat 3
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import importlib
import json
import multiprocessing
import os
import pstats
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

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
MIN_TICKET = 100  # CNY 1: small tickets, so the round does not fill during the timed runs


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
        min_ticket_minor=MIN_TICKET,
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


def vacuum(url: str) -> None:
    """VACUUM ANALYZE the benchmark's database: every commitment updates the same few rows (the
    round, the enterprise's payout account, the investors' accounts, the audit chain head), and
    their dead versions would otherwise slow each run more than the last."""
    from sqlalchemy import text

    from yunrong.db import make_engine

    engine = make_engine(url)
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
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
    reconnects: int = 0  # connections the server closed (``Connection: close`` or EOF) and reopened


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def _request_bytes(method: str, target: str, authority: str, headers: dict[str, str], body: bytes) -> bytes:
    """One HTTP/1.1 request, built once and sent as often as needed."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {authority}"]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _commitment(authority: str, token: str, demand_id: uuid.UUID, amount: str, key: str) -> bytes:
    body = {"demand_id": str(demand_id), "amount": amount, "accept_agreement": True}
    headers = {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {token}",
        "Idempotency-Key": key,
    }
    return _request_bytes("POST", "/api/v1/commitments", authority, headers, json.dumps(body).encode())


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts = []
    while size := int((await reader.readuntil(b"\r\n")).split(b";", 1)[0].strip(), 16):
        parts.append((await reader.readexactly(size + 2))[:-2])
    while await reader.readuntil(b"\r\n") != b"\r\n":  # trailer fields, if any
        pass
    return b"".join(parts)


class _Connection:
    """One persistent (keep-alive) HTTP/1.1 connection, spoken by hand: a request at a time, the
    answer's head read up to the blank line and its body by Content-Length (or chunked)."""

    def __init__(self, host: str, port: int, authority: str) -> None:
        self.host = host
        self.port = port
        self.authority = authority  # the Host header
        self.opened = 0
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._answered = 0  # answers read on the current connection

    @property
    def reconnects(self) -> int:
        return max(0, self.opened - 1)

    async def exchange(self, request: bytes) -> _Answer:
        """Send ``request`` and read its answer. If the server closed a connection that has served
        before (EOF before the first byte of the answer: an idle keep-alive connection closed under
        us), reopen it and send once more; any other failure raises."""
        while True:
            if self._streams is None:
                self._streams = await asyncio.open_connection(self.host, self.port)
                self.opened += 1
                self._answered = 0
            reader, writer = self._streams
            try:
                writer.write(request)
                await writer.drain()
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                stale = self._answered > 0 and not (
                    isinstance(exc, asyncio.IncompleteReadError) and exc.partial
                )
                self.drop()
                if stale:
                    continue
                raise
            answer = await self._rest(reader, head)
            self._answered += 1
            if answer.headers.get("connection", "").lower() == "close":
                self.drop()  # the next request opens a new one
            return answer

    @staticmethod
    async def _rest(reader: asyncio.StreamReader, head: bytes) -> _Answer:
        status_line, *fields = head[:-4].decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        headers: dict[str, str] = {}
        for field in fields:
            name, _, value = field.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = await _read_chunked(reader)
        elif status in (204, 304):
            body = b""
        else:  # delimited by the end of the connection
            body = await reader.read()
            headers["connection"] = "close"
        return _Answer(status, headers, body)

    def drop(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None

    async def close(self) -> None:
        if self._streams is not None:
            writer = self._streams[1]
            self.drop()
            with suppress(OSError):
                await writer.wait_closed()


def _connection(base: str) -> _Connection:
    url = urlsplit(base)
    if url.scheme != "http" or not url.hostname:
        raise ValueError(f"only http://host:port is spoken here, not {base}")
    return _Connection(url.hostname, url.port or 80, url.netloc)


_T = TypeVar("_T")


def _run(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coro`` on a new event loop: uvloop's if it is installed, else asyncio's own."""
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop
    else:
        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coro)


def load(
    base: str,
    toks: list[str],
    demand_id: uuid.UUID,
    clients: int,
    seconds: float,
    retry_every: int,
    seed: int,
) -> tuple[float, Tally, float]:
    """Closed loop for ``seconds``: commitments created per second over the wall time. The clients
    run in a process of their own (see the module docstring)."""
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
        job = pool.submit(_load_process, base, toks, demand_id, clients, seconds, retry_every, seed)
        return job.result()


def _load_process(
    base: str,
    toks: list[str],
    demand_id: uuid.UUID,
    clients: int,
    seconds: float,
    retry_every: int,
    seed: int,
) -> tuple[float, Tally, float]:
    return _run(_load(base, toks, demand_id, clients, seconds, retry_every, seed))


async def _load(
    base: str,
    toks: list[str],
    demand_id: uuid.UUID,
    clients: int,
    seconds: float,
    retry_every: int,
    seed: int,
) -> tuple[float, Tally, float]:
    conns = [_connection(base) for _ in range(clients)]
    mine = [Tally(latencies=[]) for _ in range(clients)]
    # Every client connects (and is answered once) before the clock starts; one at a time, so that
    # the server's worker processes, which share the listening socket, each get their share (all at
    # once, the first process to wake accepts them all and the others stay idle).
    for c in conns:
        await c.exchange(_request_bytes("GET", "/healthz", c.authority, {}, b""))
        await asyncio.sleep(0.02)
    start = time.perf_counter()
    deadline = start + seconds

    async def client(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        conn, tally = conns[index], mine[index]
        n = 0
        while time.perf_counter() < deadline:
            n += 1
            token = toks[rng.randrange(len(toks))]
            amount = f"{rng.choice((1, 2, 3))}.00"  # multiples of the minimum: the round can fill
            request = _commitment(conn.authority, token, demand_id, amount, uuid.uuid4().hex)
            first = await _post(conn, request, tally, replay=False)
            if retry_every and n % retry_every == 0 and first is not None and first.status == 201:
                again = await _post(conn, request, tally, replay=True)  # the same key and body
                if again is not None and again.status == 201 and again.json()["id"] != first.json()["id"]:
                    tally.errors += 1
                    tally.first_error = tally.first_error or "a retry created a second commitment"

    await asyncio.gather(*(client(i) for i in range(clients)))
    wall = time.perf_counter() - start
    await asyncio.gather(*(c.close() for c in conns))
    total = Tally(latencies=[])
    for conn, t in zip(conns, mine, strict=True):
        total.created += t.created
        total.replayed += t.replayed
        total.refused += t.refused
        total.errors += t.errors
        total.first_error = total.first_error or t.first_error
        total.reconnects += conn.reconnects
        assert total.latencies is not None
        total.latencies.extend(t.latencies or [])
    lat = sorted(total.latencies or [0.0])
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    return total.created / wall, total, p99


async def _post(conn: _Connection, request: bytes, t: Tally, *, replay: bool) -> _Answer | None:
    """Send one commitment request and count its answer; ``None`` if it got none (counted as an
    error, the connection dropped)."""
    t0 = time.perf_counter()
    try:
        async with asyncio.timeout(120):
            answer = await conn.exchange(request)
    except (OSError, EOFError, TimeoutError, ValueError, asyncio.LimitOverrunError) as exc:
        conn.drop()
        t.errors += 1
        t.first_error = t.first_error or f"no answer: {exc!r}"
        return None
    _count(t, answer, time.perf_counter() - t0, replay=replay)
    return answer


def _count(t: Tally, r: _Answer, dt: float, *, replay: bool) -> None:
    assert t.latencies is not None
    t.latencies.append(dt)
    if r.status == 201:
        replayed = r.headers.get("idempotent-replayed")
        if replayed != ("true" if replay else "false"):
            t.errors += 1
            t.first_error = t.first_error or f"replay header wrong: {replayed}"
        elif replay:
            t.replayed += 1
        else:
            t.created += 1
    elif r.status in (409, 422):
        t.refused += 1
    else:
        t.errors += 1
        t.first_error = t.first_error or f"{r.status}: {r.body.decode('utf-8', 'replace')[:500]}"


def fill(base: str, toks: list[str], demand_id: uuid.UUID, clients: int) -> dict[str, Any]:
    """Ask concurrently for more than what is left (tickets of CNY 1,000 to 5,000, then of CNY 1; and
    finally exactly what is left, if anything) so that the round must fill exactly and refuse the
    rest."""
    return _run(_fill(base, toks, demand_id, clients))


async def _fill(base: str, toks: list[str], demand_id: uuid.UUID, clients: int) -> dict[str, Any]:
    remaining = await _remaining(base, toks[0], demand_id)
    rng = random.Random(7)
    big = [f"{rng.randrange(10, 51) * 100}.00" for _ in range(remaining // 300_000 + 50)]
    small = ["1.00"] * 200  # at the end, tickets of the minimum
    asks = big + small
    statuses: Counter[str] = Counter()
    slowest = 0.0
    todo = iter(range(len(asks)))  # shared: each client takes the next ask

    async def client() -> None:
        nonlocal slowest
        conn = _connection(base)
        try:
            for i in todo:
                request = _commitment(
                    conn.authority, toks[i % len(toks)], demand_id, asks[i], uuid.uuid4().hex
                )
                t0 = time.perf_counter()
                async with asyncio.timeout(300):
                    r = await conn.exchange(request)
                slowest = max(slowest, time.perf_counter() - t0)
                rule = r.json().get("errors", [{}])[0].get("type", "") if r.status == 422 else ""
                statuses[f"{r.status} {rule}".strip()] += 1
        finally:
            await conn.close()

    began = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    # Whatever gap the burst left (a ticket may be smaller than the minimum when it fills the round).
    gap = await _remaining(base, toks[0], demand_id)
    if gap > 0:
        asks.append(f"{Decimal(gap) / 100:.2f}")
        todo = iter([len(asks) - 1])
        await client()
    return {
        "asked_minor": sum(int(Decimal(a) * 100) for a in asks),
        "remaining_minor": remaining,
        "statuses": dict(statuses),
        "seconds": round(time.perf_counter() - began, 2),
        "slowest_request_s": round(slowest, 2),
    }


async def _remaining(base: str, token: str, demand_id: uuid.UUID) -> int:
    probe = _connection(base)
    try:
        headers = {"Authorization": f"Bearer {token}"}
        target = f"/api/v1/demands/{demand_id}/funding"
        state = await probe.exchange(_request_bytes("GET", target, probe.authority, headers, b""))
    finally:
        await probe.close()
    return int(state.json()["remaining_minor"])


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
    "credentials (tokens -> actors)": ("identity/service.py", "resolve_credentials"),
    "idempotency keys (look-up)": ("ledger/idempotency.py", "find_many"),
    "listing facts (once per listing)": ("investing/service.py", "listing_facts"),
    "checks without lock (per request)": ("investing/service.py", "prepare_commitment"),
    "rows written before the lock (stage)": ("investing/service.py", "stage_commitments"),
    "answers' idempotency keys": ("ledger/idempotency.py", "store_many"),
    "decide + write under the locks": ("investing/service.py", "decide_staged"),
    "  round row lock": ("investing/service.py", "_lock_round"),
    "  accounts lock": ("ledger/service.py", "lock_accounts"),
    "  apply_holds (balances)": ("ledger/service.py", "apply_holds"),
    "  audit.record_many (chain head)": ("supervision/service.py", "record_many"),
    "commit": ("sqlalchemy/orm/session.py", "commit"),
}


def profile(
    url: str, tmp: Path, tokens_: list[str], demand_id: uuid.UUID, batches: int, size: int
) -> dict[str, float]:
    """``batches`` batches of ``size`` commitments, decided in this thread exactly as a server
    process's commitment queue decides them (``batch.commit_batch`` in one transaction), first
    unprofiled, then under cProfile: milliseconds per batch, per commitment and in each part,
    and SQL statements per batch."""
    from sqlalchemy import event

    from yunrong.db import make_engine, make_sessionmaker, unit_of_work
    from yunrong.identity.model import Credential
    from yunrong.investing import batch
    from yunrong.investing import service as investing
    from yunrong.investing.routes import commitment_out
    from yunrong.kit.clock import SystemClock

    settings = _settings(url, tmp)
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    statements = [0]

    @event.listens_for(engine, "before_cursor_execute")
    def _count(*_args: Any) -> None:
        statements[0] += 1

    rng = random.Random(11)

    def calls() -> list[batch.CommitCall]:
        out = []
        for _ in range(size):
            amount = rng.choice((1, 2, 3))
            body = {
                "demand_id": str(demand_id),
                "amount": f"{amount}.00",
                "currency": "CNY",
                "accept_agreement": True,
                "risk_warning_accepted": False,
            }
            req = investing.CommitRequest(
                demand_id=demand_id, amount=amount * 100, currency="CNY", accept_agreement=True
            )
            credential = Credential("token", rng.choice(tokens_))
            out.append(batch.CommitCall(credential, "bench-profile", uuid.uuid4().hex, body, req))
        return out

    account_ids = batch.AccountIds()  # kept across batches, as a server process's queue keeps it

    def run(count: int) -> float:
        t0 = time.perf_counter()
        for _ in range(count):
            with unit_of_work(factory) as session:
                answers = batch.commit_batch(
                    session,
                    calls=calls(),
                    settings=settings,
                    clock=SystemClock(),
                    render=lambda row: commitment_out(row).model_dump(mode="json"),
                    account_ids=account_ids,
                )
            account_ids.committed()
            assert all(isinstance(a, tuple) and a[0] == 201 for a in answers), answers
        return time.perf_counter() - t0

    try:
        run(3)  # warm up
        statements[0] = 0
        wall = run(batches)
        sql = statements[0] / batches
        prof = cProfile.Profile()
        prof.enable()
        run(batches)
        prof.disable()
    finally:
        engine.dispose()
    cum: dict[tuple[str, str], float] = {}
    for (filename, _line, name), row in pstats.Stats(prof).stats.items():  # type: ignore[attr-defined]
        for path, fn in PARTS.values():
            if name == fn and filename.endswith(path):
                cum[(path, fn)] = cum.get((path, fn), 0.0) + row[3]
    out = {
        f"one batch of {size}, unprofiled": wall / batches * 1000,
        "per commitment, unprofiled": wall / batches / size * 1000,
        "SQL statements per batch": sql,
    }
    for label, key in PARTS.items():
        out[f"profiled, per batch: {label}"] = cum.get(key, 0.0) / batches * 1000
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
    parser.add_argument("--profile", type=int, default=40, help="batches to profile at the end (0: none)")
    parser.add_argument("--profile-size", type=int, default=16, help="commitments per profiled batch")
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
                vacuum(url)  # as pgbench vacuums its tables before each run (untimed)
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
                    f"({t.created} created, {t.replayed} replays, {t.refused} refused, {t.errors} errors, "
                    f"{t.reconnects} reconnects; p99 {p99 * 1000:.0f} ms)",
                    flush=True,
                )
            if min(runs["ours"]) == 0:
                raise SystemExit("a timed run created no commitment: the round filled; use smaller tickets")
            if tally.errors:
                raise SystemExit(f"{tally.errors} requests failed; the first: {tally.first_error}")
            parts: dict[str, float] = {}
            if opts.profile:
                log(f"profiling {opts.profile} batches of {opts.profile_size} in-process (server idle) …")
                parts = profile(url, tmp, toks, world.demand_id, opts.profile, opts.profile_size)
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
