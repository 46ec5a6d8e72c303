"""Ledger postings per second on PostgreSQL, through the ledger's own write path, against pgbench.

What is counted: a *posting* is one journal entry — a transfer of two legs (debit one account,
credit another) — committed by ``yunrong.ledger.service.post``. Each worker process has its own
engine and calls ``post(session, ctx=ctx, drafts=[...batch entries...], linked=False)`` inside
``unit_of_work``: one transaction per batch, all entries of the batch or none, the touched accounts
locked FOR UPDATE in id order, the database triggers checking every entry closes balanced.

Two workloads, each with ``--workers`` processes (default 8) for ``--seconds``:

* uniform: both accounts of each transfer drawn uniformly from ``--accounts`` wallets;
* hot: both accounts drawn from 10 hot wallets, so every batch locks the same rows and the
  transactions serialise on them.

The anchor is pgbench's default TPC-B-like script on the same server in the same run
(``pgbench -i -s 8``, then ``pgbench -c 8 -j 2 -T <seconds>``): its
"tps = … (without initial connection time)". Every repetition runs pgbench, uniform and hot one
after the other; the medians are reported. The last line is JSON (uniform vs pgbench), with the
hot/uniform ratio as extra keys.

    .venv/bin/python bench/ledger_pg.py --seconds 10 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import queue
import random
import re
import time
import traceback
import uuid
from datetime import UTC, datetime
from typing import Any

try:  # run as a script (python bench/ledger_pg.py) or as a module (python -m bench.ledger_pg)
    from _common import (
        emit,
        libpq_args,
        log,
        machine,
        median,
        pgbench_path,
        postgres_version,
        run_quiet,
        server_url,
        sigterm_as_interrupt,
        throwaway_database,
    )
except ImportError:  # pragma: no cover
    from bench._common import (
        emit,
        libpq_args,
        log,
        machine,
        median,
        pgbench_path,
        postgres_version,
        run_quiet,
        server_url,
        sigterm_as_interrupt,
        throwaway_database,
    )

CURRENCY = "CNY"
HOT_ACCOUNTS = 10
SEED_BALANCE = 10**12  # minor units credited to every wallet before the runs (no overdraft ever)


# --- worker processes ------------------------------------------------------------------------------


def _drafts(rng: random.Random, accounts: list[uuid.UUID], batch: int) -> list[Any]:
    from yunrong.ledger.model import transfer
    from yunrong.ledger.service import EntryDraft

    drafts = []
    for _ in range(batch):
        a, b = rng.sample(accounts, 2)
        drafts.append(
            EntryDraft(
                legs=transfer(a, b, rng.randint(1, 1000), CURRENCY), kind="transfer", description="bench"
            )
        )
    return drafts


def _worker(
    index: int,
    url: str,
    uniform: list[str],
    hot: list[str],
    batch: int,
    tasks: Any,
    results: Any,
    barrier: Any,
) -> None:
    """Own engine, own connection; runs workloads on command until told to stop."""
    from yunrong.db import make_engine, make_sessionmaker, unit_of_work
    from yunrong.identity.model import Actor, Context
    from yunrong.kit.clock import SystemClock
    from yunrong.ledger.service import post

    engine = make_engine(url, pool_size=1, max_overflow=0)
    factory = make_sessionmaker(engine)
    ctx = Context(actor=Actor.system("bench"), clock=SystemClock())
    pools = {"uniform": [uuid.UUID(a) for a in uniform], "hot": [uuid.UUID(a) for a in hot]}
    rng = random.Random(index)
    try:
        # Warm up: connection, statement caches, imports. Committed, but not counted.
        with unit_of_work(factory) as session:
            post(session, ctx=ctx, drafts=_drafts(rng, pools["uniform"], batch), linked=False)
        results.put(("ready", index, 0, 0.0, 0.0))
        while True:
            task = tasks.get()
            if task is None:
                return
            mode, seconds = task
            accounts = pools[mode]
            barrier.wait()
            start = time.monotonic()
            deadline = start + seconds
            committed = 0
            while time.monotonic() < deadline:
                drafts = _drafts(rng, accounts, batch)
                with unit_of_work(factory) as session:
                    post(session, ctx=ctx, drafts=drafts, linked=False)
                committed += len(drafts)
            results.put(("done", index, committed, start, time.monotonic()))
    except BaseException:
        results.put(("error", index, 0, 0.0, traceback.format_exc()))
    finally:
        engine.dispose()


class Workers:
    """``n`` spawned processes that each run one share of a workload when asked."""

    def __init__(self, n: int, url: str, uniform: list[uuid.UUID], hot: list[uuid.UUID], batch: int):
        ctx = mp.get_context("spawn")
        self.n = n
        self.tasks = ctx.Queue()
        self.results = ctx.Queue()
        self.barrier = ctx.Barrier(n)
        args = ([str(a) for a in uniform], [str(a) for a in hot], batch)
        self.procs = [
            ctx.Process(
                target=_worker,
                args=(i, url, *args, self.tasks, self.results, self.barrier),
                daemon=True,
            )
            for i in range(n)
        ]
        for proc in self.procs:
            proc.start()
        self._collect("ready", timeout=120)

    def _collect(self, expected: str, timeout: float) -> list[tuple[Any, ...]]:
        out = []
        while len(out) < self.n:
            try:
                msg = self.results.get(timeout=timeout)
            except queue.Empty:
                raise RuntimeError(f"workers did not report {expected!r} in {timeout}s") from None
            if msg[0] == "error":
                raise RuntimeError(f"worker {msg[1]} failed:\n{msg[4]}")
            out.append(msg)
        return out

    def run(self, mode: str, seconds: float) -> tuple[float, int, float]:
        """Postings per second over the wall time from the common start to the last commit."""
        for _ in range(self.n):
            self.tasks.put((mode, seconds))
        done = self._collect("done", timeout=seconds + 120)
        committed = sum(m[2] for m in done)
        wall = max(m[4] for m in done) - min(m[3] for m in done)
        return committed / wall, committed, wall

    def close(self) -> None:
        for _ in self.procs:
            self.tasks.put(None)
        for proc in self.procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()
                proc.join()


# --- setup ------------------------------------------------------------------------------------------


def prepare_ledger(url: str, n_accounts: int) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """Migrate, open the wallets (liability accounts that may not be overdrawn) and give each an
    opening balance, then VACUUM ANALYZE — the ledger starts in a steady state, with history and
    planner statistics, as pgbench's tables do after ``pgbench -i``.

    The history (one funding entry per wallet: debit the bank, credit the wallet) is written in bulk
    by SQL with every trigger on — the balance check runs when the entries are closed — because
    10^5 entries through post() would take most of the time budget; only the timed runs go through
    post()."""
    from sqlalchemy import text

    from yunrong.db import make_engine, make_sessionmaker, unit_of_work
    from yunrong.identity.model import Actor, Context
    from yunrong.kit.clock import SystemClock
    from yunrong.kit.ids import uuid7
    from yunrong.ledger.model import AccountType
    from yunrong.ledger.service import ACCOUNTS, open_account
    from yunrong.migrate import upgrade

    upgrade(url)
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    ctx = Context(actor=Actor.system("bench"), clock=SystemClock())
    try:
        with unit_of_work(factory) as session:
            bank = open_account(
                session,
                ctx=ctx,
                code="BENCH-BANK",
                name="bench bank",
                type=AccountType.ASSET,
                currency=CURRENCY,
                purpose="bench",
                no_overdraft=False,
            ).id
            hot = [
                open_account(
                    session,
                    ctx=ctx,
                    code=f"BENCH-HOT-{i}",
                    name=f"hot wallet {i}",
                    type=AccountType.LIABILITY,
                    currency=CURRENCY,
                    purpose="bench",
                ).id
                for i in range(HOT_ACCOUNTS)
            ]
            # The many uniform wallets in one multi-row INSERT with exactly the columns
            # open_account sets (open_account flushes one row at a time: too slow for 10^5 rows).
            now = datetime.now(UTC)
            uniform = [uuid7() for _ in range(n_accounts)]
            session.execute(
                ACCOUNTS.insert(),
                [
                    {
                        "id": account_id,
                        "code": f"BENCH-W-{i}",
                        "name": f"wallet {i}",
                        "type": AccountType.LIABILITY.value,
                        "currency": CURRENCY,
                        "purpose": "bench",
                        "owner_org_id": None,
                        "subject_id": None,
                        "no_overdraft": True,
                        "debits_posted": 0,
                        "credits_posted": 0,
                        "debits_pending": 0,
                        "credits_pending": 0,
                        "created_at": now,
                    }
                    for i, account_id in enumerate(uniform)
                ],
            )
        with engine.begin() as conn:
            params = {"bank": bank, "amount": SEED_BALANCE, "cur": CURRENCY}
            for statement in SEED_SQL:
                conn.execute(text(statement), params)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
        return uniform, hot
    finally:
        engine.dispose()


SEED_SQL = [
    """CREATE TEMP TABLE bench_seed ON COMMIT DROP AS
       SELECT id AS account_id, gen_random_uuid() AS entry_id, row_number() OVER (ORDER BY id) AS n
       FROM ledger_accounts WHERE code LIKE 'BENCH-W-%' OR code LIKE 'BENCH-HOT-%'""",
    """INSERT INTO journal_entries (id, ref, kind, description, value_date, created_at, created_by, posted)
       SELECT entry_id, 'JE-SEED-' || lpad(n::text, 8, '0'), 'seed', 'opening balance', current_date,
              now(), 'bench', false
       FROM bench_seed""",
    """INSERT INTO postings (id, entry_id, account_id, side, amount, currency, created_at)
       SELECT gen_random_uuid(), entry_id, :bank, 'D', :amount, :cur, now() FROM bench_seed
       UNION ALL
       SELECT gen_random_uuid(), entry_id, account_id, 'C', :amount, :cur, now() FROM bench_seed""",
    "UPDATE journal_entries SET posted = true WHERE kind = 'seed'",
    """UPDATE ledger_accounts SET credits_posted = credits_posted + :amount
       WHERE id IN (SELECT account_id FROM bench_seed)""",
    """UPDATE ledger_accounts SET debits_posted = debits_posted + :amount * (SELECT count(*) FROM bench_seed)
       WHERE id = :bank""",
]


def check_ledger(url: str) -> tuple[int, str | None]:
    """Entries written, and the ledger's own verification (first violated invariant, if any)."""
    from sqlalchemy import func, select

    from yunrong.db import make_engine, make_sessionmaker
    from yunrong.ledger.service import ENTRIES
    from yunrong.ledger.verify import first_violation

    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            entries = int(session.scalar(select(func.count()).select_from(ENTRIES)) or 0)
            violation = first_violation(session)
            return entries, None if violation is None else str(violation)
    finally:
        engine.dispose()


# --- pgbench ----------------------------------------------------------------------------------------

TPS = re.compile(r"tps = ([0-9.]+) \(without initial connection time\)")


def pgbench_init(url: str, scale: int) -> None:
    args, env = libpq_args(url)
    run_quiet([pgbench_path(), "-i", "-q", "-s", str(scale), *args], env)


def pgbench_run(url: str, clients: int, threads: int, seconds: int) -> float:
    args, env = libpq_args(url)
    out = run_quiet([pgbench_path(), "-c", str(clients), "-j", str(threads), "-T", str(seconds), *args], env)
    match = TPS.search(out)
    if match is None:
        raise RuntimeError(f"no tps in pgbench output:\n{out}")
    return float(match.group(1))


# --- main -------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10, help="length of each timed run (default 10)")
    parser.add_argument("--batch", type=int, default=100, help="entries per post() call (default 100)")
    parser.add_argument("--workers", type=int, default=8, help="worker processes = pgbench clients")
    parser.add_argument("--accounts", type=int, default=100_000, help="wallets for the uniform run")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions; medians are reported")
    parser.add_argument("--scale", type=int, default=8, help="pgbench -s (default 8)")
    parser.add_argument("--pgbench-threads", type=int, default=2, help="pgbench -j (default 2)")
    parser.add_argument("--url", default=server_url(), help="server URL ($YUNRONG_BENCH_DATABASE_URL)")
    parser.add_argument("--no-verify", action="store_true", help="skip the ledger verification at the end")
    opts = parser.parse_args()

    began = time.monotonic()
    facts = {**machine(), "postgresql": postgres_version(opts.url)}
    print(f"machine: {json.dumps(facts)}")
    print(
        f"config: workers={opts.workers} batch={opts.batch} entries/transaction "
        f"accounts={opts.accounts} hot_accounts={HOT_ACCOUNTS} seconds={opts.seconds} "
        f"repeat={opts.repeat} pgbench -s {opts.scale} -c {opts.workers} -j {opts.pgbench_threads}"
    )
    runs: dict[str, list[float]] = {"pgbench": [], "uniform": [], "hot": []}
    with (
        sigterm_as_interrupt(),
        throwaway_database("yr_bench_pgbench", opts.url) as pgb_url,
        throwaway_database("yr_bench_ledger", opts.url) as ledger_url,
    ):
        log("pgbench -i …")
        pgbench_init(pgb_url, opts.scale)
        log("migrating and funding the ledger …")
        uniform, hot = prepare_ledger(ledger_url, opts.accounts)
        log(f"setup done in {time.monotonic() - began:.0f}s; starting {opts.workers} workers …")
        workers = Workers(opts.workers, ledger_url, uniform, hot, opts.batch)
        counted = 0
        try:
            for rep in range(1, opts.repeat + 1):
                tps = pgbench_run(pgb_url, opts.workers, opts.pgbench_threads, opts.seconds)
                runs["pgbench"].append(tps)
                line = [f"run {rep}: pgbench {tps:.0f} tps"]
                for mode in ("uniform", "hot"):
                    rate, committed, wall = workers.run(mode, opts.seconds)
                    counted += committed
                    runs[mode].append(rate)
                    line.append(f"{mode} {rate:.0f} postings/s ({committed} in {wall:.1f}s)")
                print("; ".join(line), flush=True)
        finally:
            workers.close()
        if not opts.no_verify:
            entries, violation = check_ledger(ledger_url)
            print(f"verify: {entries} journal entries in the database; invariants: {violation or 'all hold'}")
            if violation is not None:
                raise SystemExit(f"ledger invariant violated: {violation}")

    pgb, uni, hot_rate = (median(runs[k]) for k in ("pgbench", "uniform", "hot"))
    print(
        f"medians: pgbench {pgb:.0f} tps, uniform {uni:.0f} postings/s "
        f"(ratio {uni / pgb:.2f}, target >= 1.0), "
        f"hot {hot_rate:.0f} postings/s (hot/uniform {hot_rate / uni:.2f}, target >= 0.85); "
        f"total {time.monotonic() - began:.0f}s"
    )
    print(
        json.dumps(
            {
                "name": "ledger_pg_hot_vs_uniform",
                "value": round(hot_rate, 1),
                "unit": "postings/s",
                "anchor": "ledger_pg uniform",
                "anchor_value": round(uni, 1),
                "ratio": round(hot_rate / uni, 3),
            }
        )
    )
    emit(
        "ledger_pg_postings_per_second",
        uni,
        "postings/s",
        f"pgbench TPC-B-like tps (-s {opts.scale} -c {opts.workers} -j {opts.pgbench_threads})",
        pgb,
        batch=opts.batch,
        workers=opts.workers,
        accounts=opts.accounts,
        hot_value=round(hot_rate, 1),
        hot_ratio=round(hot_rate / uni, 3),
        runs=runs,
    )


if __name__ == "__main__":
    main()
