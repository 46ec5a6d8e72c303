"""A live server on a seeded SQLite database, and a headless Chromium driven by Playwright."""

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


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("live")
    url = f"sqlite:///{tmp / 'live.db'}"
    migrate.upgrade(url)
    settings = Settings(database_url=url, demo=True, mail_dir=tmp / "mail", upload_dir=tmp / "uploads")
    engine = make_engine(url)
    with unit_of_work(make_sessionmaker(engine)) as session:
        seed_demo(session, ctx=Context(actor=Actor.system("e2e"), clock=SystemClock()), settings=settings)
    engine.dispose()

    port = _free_port()
    env = {
        **os.environ,
        "YUNRONG_DATABASE_URL": url,
        "YUNRONG_DEMO": "true",
        "YUNRONG_MAIL_DIR": str(tmp / "mail"),
        "YUNRONG_UPLOAD_DIR": str(tmp / "uploads"),
        "YUNRONG_LOG_LEVEL": "WARNING",
    }
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
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
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
