"""Helpers shared by the benchmarks: throwaway PostgreSQL databases, machine facts, medians and the
final JSON line every benchmark prints."""

from __future__ import annotations

import json
import os
import platform
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
PG_URL_ENV = "YUNRONG_BENCH_DATABASE_URL"


def server_url() -> str:
    """The PostgreSQL server the benchmarks may create databases on."""
    return os.environ.get(PG_URL_ENV, DEFAULT_PG_URL)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def log(message: str) -> None:
    """Progress on stderr, so that stdout stays the results (last line: the JSON)."""
    print(message, file=sys.stderr, flush=True)


def emit(
    name: str, value: float, unit: str, anchor: str, anchor_value: float, **extra: Any
) -> dict[str, Any]:
    """Print the final result line: ``{"name", "value", "unit", "anchor", "anchor_value", "ratio"}``
    plus any extra keys."""
    result: dict[str, Any] = {
        "name": name,
        "value": round(value, 1),
        "unit": unit,
        "anchor": anchor,
        "anchor_value": round(anchor_value, 1),
        "ratio": round(value / anchor_value, 3) if anchor_value else None,
    }
    result.update(extra)
    print(json.dumps(result, ensure_ascii=False), flush=True)
    return result


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt so that ``finally`` blocks (dropping databases, removing
    temporary files) also run when the benchmark is killed politely."""

    def _handler(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt("SIGTERM")

    previous = signal.signal(signal.SIGTERM, _handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _admin_engine(url: str) -> Any:
    from sqlalchemy import create_engine

    return create_engine(url, isolation_level="AUTOCOMMIT", pool_size=1, max_overflow=0)


@contextmanager
def throwaway_database(prefix: str, url: str | None = None) -> Iterator[str]:
    """CREATE a database with a random name on the server and yield its SQLAlchemy URL; DROP it
    afterwards (WITH (FORCE), so that a leftover connection cannot keep it alive), also when the
    run fails or is interrupted."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    base = make_url(url or server_url())
    name = f"{prefix}_{secrets.token_hex(6)}"
    admin = _admin_engine(base.render_as_string(hide_password=False))
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield base.set(database=name).render_as_string(hide_password=False)
        finally:
            # Interrupts during the drop would leave the database behind: hold them off.
            old = signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                log(f"dropped database {name}")
            finally:
                signal.signal(signal.SIGINT, old)
    finally:
        admin.dispose()


def libpq_args(sqlalchemy_url: str) -> tuple[list[str], dict[str, str]]:
    """Command-line options and environment for libpq tools (pgbench, psql) from a SQLAlchemy URL."""
    from sqlalchemy.engine import make_url

    url = make_url(sqlalchemy_url)
    args: list[str] = []
    if url.host:
        args += ["-h", url.host]
    if url.port:
        args += ["-p", str(url.port)]
    if url.username:
        args += ["-U", url.username]
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    args.append(str(url.database))
    return args, env


def pgbench_path() -> str:
    found = shutil.which("pgbench") or "/usr/bin/pgbench"
    if not os.path.exists(found):
        raise SystemExit("pgbench not found (install postgresql-client)")
    return found


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    memory_gb = None
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    memory_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "memory_gb": memory_gb,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def postgres_version(url: str) -> str:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("SHOW server_version")).scalar())
    finally:
        engine.dispose()


def run_quiet(cmd: list[str], env: dict[str, str]) -> str:
    """Run a command and return its stdout+stderr; raise with the output if it fails."""
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout + proc.stderr
