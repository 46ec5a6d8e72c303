"""Ledger postings per second on SQLite, through the ledger's own write path, against bare sqlite3.

What is counted: a *posting* is one journal entry — a transfer of two legs — committed. Ours:
``yunrong.ledger.service.post(session, ctx=ctx, drafts=[...batch...], linked=False)`` inside
``unit_of_work`` (SQLAlchemy, BEGIN IMMEDIATE, one transaction per batch: read the touched
accounts, check every rule, insert entries and legs, add the deltas to the accounts, close the
entries). Anchor: the Python standard library's ``sqlite3`` writing the same rows into the same
migrated file, same batch size, triggers on: BEGIN IMMEDIATE; INSERT the entries (open),
INSERT 2 postings per entry, 2 account balance UPDATEs per transfer, UPDATE the entries closed
(the trigger checks each balances); COMMIT. The anchor does no reads and no validation in Python,
and its ids are a counter and its references sequential.

Both use a temporary file database migrated with ``yunrong.migrate.upgrade`` in WAL mode with
the connection settings of ``yunrong.db.make_engine`` (foreign keys on, synchronous=NORMAL). The
repetitions alternate ours and the anchor; medians are reported. The last line is JSON.

    .venv/bin/python bench/ledger_sqlite.py --seconds 10 --repeat 3
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sqlite3
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

try:  # run as a script (python bench/ledger_sqlite.py) or as a module (python -m bench.ledger_sqlite)
    from _common import emit, log, machine, median, sigterm_as_interrupt
except ImportError:  # pragma: no cover
    from bench._common import emit, log, machine, median, sigterm_as_interrupt

CURRENCY = "CNY"
SEED_BALANCE = 10**12


def _ts(value: datetime) -> str:
    """How SQLAlchemy stores a UTC datetime on SQLite (naive, microseconds)."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def _pairs(
    rng: random.Random, accounts: list[uuid.UUID], batch: int
) -> list[tuple[uuid.UUID, uuid.UUID, int]]:
    out = []
    for _ in range(batch):
        a, b = rng.sample(accounts, 2)
        out.append((a, b, rng.randint(1, 1000)))
    return out


def _connect(path: Path) -> sqlite3.Connection:
    """A bare connection with the pragmas yunrong.db.make_engine sets."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def prepare(path: Path, n_accounts: int) -> list[uuid.UUID]:
    """Migrate, open the wallets and give each an opening balance (one funding entry per wallet,
    written with every trigger on), then ANALYZE."""
    from yunrong.kit.ids import uuid7
    from yunrong.migrate import upgrade

    upgrade(f"sqlite:///{path}")
    now = _ts(datetime.now(UTC))
    today = datetime.now(UTC).date().isoformat()
    bank = uuid7()
    wallets = [uuid7() for _ in range(n_accounts)]
    entries = [uuid7() for _ in wallets]
    conn = _connect(path)
    try:
        conn.execute("BEGIN IMMEDIATE")
        account_sql = (
            "INSERT INTO ledger_accounts (id, code, name, type, currency, purpose, no_overdraft,"
            " debits_posted, credits_posted, debits_pending, credits_pending, created_at)"
            " VALUES (?, ?, ?, ?, ?, 'bench', ?, ?, ?, 0, 0, ?)"
        )
        conn.execute(
            account_sql,
            (bank.hex, "BENCH-BANK", "bench bank", "asset", CURRENCY, 0, SEED_BALANCE * n_accounts, 0, now),
        )
        conn.executemany(
            account_sql,
            [
                (w.hex, f"BENCH-W-{i}", f"wallet {i}", "liability", CURRENCY, 1, 0, SEED_BALANCE, now)
                for i, w in enumerate(wallets)
            ],
        )
        conn.executemany(
            "INSERT INTO journal_entries (id, ref, kind, description, value_date, created_at, created_by,"
            " posted) VALUES (?, ?, 'seed', 'opening balance', ?, ?, 'bench', 0)",
            [(e.hex, f"JE-SEED-{i:08d}", today, now) for i, e in enumerate(entries)],
        )
        posting_sql = (
            "INSERT INTO postings (id, entry_id, account_id, side, amount, currency, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)"
        )
        conn.executemany(
            posting_sql,
            [
                row
                for e, w in zip(entries, wallets, strict=True)
                for row in (
                    (uuid7().hex, e.hex, bank.hex, "D", SEED_BALANCE, CURRENCY, now),
                    (uuid7().hex, e.hex, w.hex, "C", SEED_BALANCE, CURRENCY, now),
                )
            ],
        )
        conn.execute("UPDATE journal_entries SET posted = 1 WHERE kind = 'seed'")
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
    finally:
        conn.close()
    return wallets


# --- ours: the ledger's post() -----------------------------------------------------------------------


def ours_runner(path: Path, batch: int) -> Callable[[random.Random, list[uuid.UUID]], int]:
    from yunrong.db import make_engine, make_sessionmaker, unit_of_work
    from yunrong.identity.model import Actor, Context
    from yunrong.kit.clock import SystemClock
    from yunrong.ledger.model import transfer
    from yunrong.ledger.service import EntryDraft, post

    engine = make_engine(f"sqlite:///{path}")
    factory = make_sessionmaker(engine)
    ctx = Context(actor=Actor.system("bench"), clock=SystemClock())

    def one_batch(rng: random.Random, accounts: list[uuid.UUID]) -> int:
        drafts = [
            EntryDraft(legs=transfer(a, b, amount, CURRENCY), kind="transfer", description="bench")
            for a, b, amount in _pairs(rng, accounts, batch)
        ]
        with unit_of_work(factory) as session:
            post(session, ctx=ctx, drafts=drafts, linked=False)
        return len(drafts)

    return one_batch


# --- anchor: bare sqlite3, same rows -------------------------------------------------------------------


def anchor_runner(path: Path, batch: int) -> Callable[[random.Random, list[uuid.UUID]], int]:
    """The floor: ids are a counter on a UUIDv7 base (time-ordered like ours, but nearly free to
    make) and refs are sequential, which is cheaper in Python and kinder to the indexes than the
    ledger's random references: a strict anchor."""
    from yunrong.kit.ids import uuid7

    local = threading.local()
    ids = itertools.count(uuid7().int)
    refs = itertools.count(1)

    def one_batch(rng: random.Random, accounts: list[uuid.UUID]) -> int:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = _connect(path)
        now_dt = datetime.now(UTC)
        now = _ts(now_dt)
        today = now_dt.date().isoformat()  # the ledger uses the Asia/Shanghai business date: same cost
        entries = []
        postings = []
        updates = []
        for a, b, amount in _pairs(rng, accounts, batch):
            entry = f"{next(ids):032x}"
            entries.append((entry, f"JE-A{next(refs):09d}", today, now))
            postings.append((f"{next(ids):032x}", entry, a.hex, "D", amount, CURRENCY, now))
            postings.append((f"{next(ids):032x}", entry, b.hex, "C", amount, CURRENCY, now))
            updates.append((amount, 0, a.hex))
            updates.append((0, amount, b.hex))
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                "INSERT INTO journal_entries (id, ref, kind, description, value_date, created_at,"
                " created_by, posted) VALUES (?, ?, 'transfer', 'bench', ?, ?, 'bench', 0)",
                entries,
            )
            conn.executemany(
                "INSERT INTO postings (id, entry_id, account_id, side, amount, currency, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                postings,
            )
            conn.executemany(
                "UPDATE ledger_accounts SET debits_posted = debits_posted + ?,"
                " credits_posted = credits_posted + ? WHERE id = ?",
                updates,
            )
            conn.executemany("UPDATE journal_entries SET posted = 1 WHERE id = ?", [(e[0],) for e in entries])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return len(entries)

    return one_batch


# --- timing ----------------------------------------------------------------------------------------------


def timed(
    one_batch: Callable[[random.Random, list[uuid.UUID]], int],
    accounts: list[uuid.UUID],
    workers: int,
    seconds: float,
    seed: int,
) -> tuple[float, int, float]:
    """Postings per second: ``workers`` threads call ``one_batch`` until the deadline; wall time is
    from the common start to the last commit."""
    counts = [0] * workers
    errors: list[BaseException] = []
    start = time.monotonic()
    deadline = start + seconds

    def loop(i: int) -> None:
        rng = random.Random(seed * 1000 + i)
        try:
            while time.monotonic() < deadline:
                counts[i] += one_batch(rng, accounts)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    wall = time.monotonic() - start
    return sum(counts) / wall, sum(counts), wall


def check(path: Path) -> tuple[int, str | None]:
    from sqlalchemy import func, select

    from yunrong.db import make_engine, make_sessionmaker
    from yunrong.ledger.service import ENTRIES
    from yunrong.ledger.verify import first_violation

    engine = make_engine(f"sqlite:///{path}")
    try:
        with make_sessionmaker(engine)() as session:
            entries = int(session.scalar(select(func.count()).select_from(ENTRIES)) or 0)
            violation = first_violation(session)
            return entries, None if violation is None else str(violation)
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10, help="length of each timed run (default 10)")
    parser.add_argument("--batch", type=int, default=100, help="entries per transaction (default 100)")
    parser.add_argument(
        "--workers", type=int, default=1, help="writer threads for both (SQLite has one writer; default 1)"
    )
    parser.add_argument("--accounts", type=int, default=10_000, help="wallets (default 10000)")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions; medians are reported")
    parser.add_argument("--no-verify", action="store_true", help="skip the ledger verification at the end")
    opts = parser.parse_args()

    import sqlalchemy

    began = time.monotonic()
    facts = {**machine(), "sqlite": sqlite3.sqlite_version, "sqlalchemy": sqlalchemy.__version__}
    print(f"machine: {json.dumps(facts)}")
    print(
        f"config: workers={opts.workers} batch={opts.batch} entries/transaction accounts={opts.accounts} "
        f"seconds={opts.seconds} repeat={opts.repeat}"
    )
    runs: dict[str, list[float]] = {"ours": [], "sqlite3": []}
    with sigterm_as_interrupt(), tempfile.TemporaryDirectory(prefix="yr-bench-ledger-") as tmp:
        path = Path(tmp) / "ledger.db"
        log(f"migrating and funding {path} …")
        accounts = prepare(path, opts.accounts)
        ours = ours_runner(path, opts.batch)
        anchor = anchor_runner(path, opts.batch)
        ours(random.Random(0), accounts)  # warm up (committed, not counted)
        anchor(random.Random(0), accounts)
        for rep in range(1, opts.repeat + 1):
            line = [f"run {rep}:"]
            for label, runner in (("ours", ours), ("sqlite3", anchor)):
                rate, committed, wall = timed(runner, accounts, opts.workers, opts.seconds, rep)
                runs[label].append(rate)
                line.append(f"{label} {rate:.0f} postings/s ({committed} in {wall:.1f}s)")
            print(" ".join(line), flush=True)
        if not opts.no_verify:
            entries, violation = check(path)
            print(f"verify: {entries} journal entries in the database; invariants: {violation or 'all hold'}")
            if violation is not None:
                raise SystemExit(f"ledger invariant violated: {violation}")

    value, anchor_value = median(runs["ours"]), median(runs["sqlite3"])
    print(
        f"medians: ours {value:.0f} postings/s, bare sqlite3 {anchor_value:.0f} postings/s "
        f"(ratio {value / anchor_value:.2f}, target >= 0.5); total {time.monotonic() - began:.0f}s"
    )
    emit(
        "ledger_sqlite_postings_per_second",
        value,
        "postings/s",
        "bare sqlite3, same rows, same file and triggers",
        anchor_value,
        batch=opts.batch,
        workers=opts.workers,
        accounts=opts.accounts,
        runs={k: [round(v, 1) for v in vs] for k, vs in runs.items()},
    )


if __name__ == "__main__":
    main()
