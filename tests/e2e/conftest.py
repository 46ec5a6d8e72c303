"""A live server on a seeded SQLite database, its outbox worker when a test asks for it, and a
headless Chromium driven by Playwright."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from yunrong import migrate
from yunrong.config import Settings
from yunrong.db import make_engine, make_sessionmaker, unit_of_work
from yunrong.demo.seed import seed_demo
from yunrong.identity.model import Actor, Context
from yunrong.kit.clock import SystemClock

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
READY_ATTEMPTS = 300  # x 0.1 s connection timeout: at most ~30 s for the server to come up


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=0.1) as response:  # noqa: S310 - our own server
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _seeded_env(tmp: Path, url: str | None = None) -> dict[str, str]:
    """A freshly seeded demo database (under ``tmp``, or at ``url``) and the settings (environment)
    of a server on it."""
    url = url or f"sqlite:///{tmp / 'live.db'}"
    migrate.upgrade(url)
    settings = Settings(database_url=url, demo=True, mail_dir=tmp / "mail", upload_dir=tmp / "uploads")
    engine = make_engine(url)
    with unit_of_work(make_sessionmaker(engine)) as session:
        seed_demo(session, ctx=Context(actor=Actor.system("e2e"), clock=SystemClock()), settings=settings)
    engine.dispose()
    return {
        "YUNRONG_DATABASE_URL": url,
        "YUNRONG_DEMO": "true",
        "YUNRONG_MAIL_DIR": str(tmp / "mail"),
        "YUNRONG_UPLOAD_DIR": str(tmp / "uploads"),
        "YUNRONG_LOG_LEVEL": "WARNING",
    }


@contextlib.contextmanager
def _serving(live_env: dict[str, str]) -> Iterator[str]:
    """Run the app under uvicorn with these settings until the block ends; yields its base URL."""
    tmp = Path(live_env["YUNRONG_MAIL_DIR"]).parent
    port = _free_port()
    env = {**os.environ, **live_env}
    log = (tmp / "server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "yunrong.asgi:app", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=tmp,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(READY_ATTEMPTS):
            if server.poll() is not None:
                break
            if _healthy(base):
                break
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.wait(timeout=0.1)  # a bounded pause between polls that ends early if it dies
        if not _healthy(base):
            log.flush()
            pytest.fail(f"the live server did not start:\n{(tmp / 'server.log').read_text()[-3000:]}")
        yield base
    finally:
        _stop(server)
        log.close()


@pytest.fixture(scope="session")
def live_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The settings (environment) of the live server on a freshly seeded demo database; its worker
    runs with the same ones."""
    return _seeded_env(tmp_path_factory.mktemp("live"))


@pytest.fixture(scope="session")
def live_server(live_env: dict[str, str]) -> Iterator[str]:
    with _serving(live_env) as base:
        yield base


@pytest.fixture(scope="module")
def own_live_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A demo database of one test module's own, for a flow that must not meet what the other
    browser tests leave in the shared one (the agencies they admit win service orders, say)."""
    return _seeded_env(tmp_path_factory.mktemp("own-live"))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend_live_env(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """Like ``own_live_env``, once on SQLite and once on a throwaway PostgreSQL database."""
    from tests.conftest import _create_pg_database, _drop_pg_database, _require_pg

    tmp = tmp_path_factory.mktemp(f"live-{request.param}")
    if request.param == "sqlite":
        yield _seeded_env(tmp)
        return
    _require_pg()
    url, name = _create_pg_database()
    try:
        yield _seeded_env(tmp, url)
    finally:
        _drop_pg_database(name)


@pytest.fixture(scope="module")
def backend_live_server(backend_live_env: dict[str, str]) -> Iterator[str]:
    with _serving(backend_live_env) as base:
        yield base


@pytest.fixture(scope="module")
def own_live_server(own_live_env: dict[str, str]) -> Iterator[str]:
    """A live server on ``own_live_env`` (no worker: nothing answers orders but the people)."""
    with _serving(own_live_env) as base:
        yield base


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def live_worker(
    live_server: str, live_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The outbox worker of the live server (``yunrong worker``), for the tests that need the bank to
    answer: it hands instructions to the simulated custodian bank and posts the bank's signed
    callbacks back to the live server over HTTP, some of them twice. It runs for one test module, so
    that the other browser tests keep the live database to themselves."""
    tmp = tmp_path_factory.mktemp("worker")
    env = {
        **os.environ,
        **live_env,
        "YUNRONG_PUBLIC_URL": live_server,
        "YUNRONG_SIMBANK_CALLBACK_MODE": "http",
        "YUNRONG_SIMBANK_FAILURE_RATE": "0",
        "YUNRONG_SIMBANK_DUPLICATE_RATE": "0.3",
        "YUNRONG_SIMBANK_MAX_DELAY_SECONDS": "1",
        "YUNRONG_WORKER_POLL_SECONDS": "0.2",
    }
    log = (tmp / "worker.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "yunrong.cli", "worker"],
        env=env,
        cwd=tmp,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield live_server
    finally:
        _stop(worker)
        log.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: install Debian's chromium package"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
