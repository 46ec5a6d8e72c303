"""Shared fixtures: every database test runs on SQLite and, when configured, on PostgreSQL.

Set ``YUNRONG_TEST_DATABASE_URL`` to a PostgreSQL server URL (any database on it); each test run
creates a throwaway database there and drops it afterwards. Under ``CI=true`` a missing
PostgreSQL is a failure, not a silent skip.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import settings as hypothesis_settings
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from yunrong.app import create_app
from yunrong.config import Settings
from yunrong.db import make_engine, make_sessionmaker, unit_of_work
from yunrong.demo.seed import DEMO_LOGINS, DEMO_PASSWORD, seed_demo
from yunrong.identity import security
from yunrong.identity.model import Actor, Context
from yunrong.kit.clock import FrozenClock
from yunrong.migrate import upgrade
from yunrong.models import Base

# Argon2id at production cost takes ~50 ms a hash; the suite hashes thousands. Tests use the same
# algorithm at its smallest cost, which exercises the same code paths.
security._hasher = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
security._DUMMY_HASH = security._hasher.hash("dummy-password")

IN_CI = os.environ.get("CI", "").lower() == "true"

# Shared machines are noisy: no per-example deadlines. In CI the examples are derived from the test
# itself (derandomize), so a run is repeatable; locally Hypothesis keeps exploring new ones.
hypothesis_settings.register_profile("local", deadline=None)
hypothesis_settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
hypothesis_settings.load_profile("ci" if IN_CI else "local")
PG_URL = os.environ.get("YUNRONG_TEST_DATABASE_URL", "")

BACKENDS = ["sqlite", "postgresql"]


def _require_pg() -> None:
    if not PG_URL:
        if IN_CI:
            pytest.fail(
                "CI=true but YUNRONG_TEST_DATABASE_URL is not set: PostgreSQL tests cannot be skipped"
            )
        pytest.skip("PostgreSQL not configured (set YUNRONG_TEST_DATABASE_URL)")


def _create_pg_database() -> tuple[str, str]:
    import psycopg

    server = make_url(PG_URL)
    name = f"yunrong_test_{uuid.uuid4().hex[:12]}"
    admin = server.set(drivername="postgresql", database=server.database or "postgres")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server.set(drivername="postgresql+psycopg", database=name).render_as_string(
        hide_password=False
    ), name


def _drop_pg_database(name: str) -> None:
    import psycopg

    server = make_url(PG_URL)
    admin = server.set(drivername="postgresql", database=server.database or "postgres")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session", params=BACKENDS)
def backend_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated, empty database per backend for the whole run."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / "yunrong.db"
        url = f"sqlite:///{path}"
        upgrade(url)
        yield url
        return
    _require_pg()
    url, name = _create_pg_database()
    try:
        upgrade(url)
        yield url
    finally:
        _drop_pg_database(name)


@pytest.fixture(scope="session")
def backend_engine(backend_url: str) -> Iterator[Engine | None]:
    """PostgreSQL: one engine for the run (tables are truncated after each test). SQLite: none;
    each test gets a fresh copy of the migrated file instead, since the ledger's triggers rightly
    refuse to delete its rows."""
    if backend_url.startswith("sqlite"):
        yield None
        return
    engine = make_engine(backend_url)
    yield engine
    engine.dispose()


def _truncate_all_tables(engine: Engine) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))


@pytest.fixture
def db_url(backend_url: str, tmp_path: Path) -> str:
    if backend_url.startswith("sqlite"):
        template = Path(make_url(backend_url).database or "")
        copy = tmp_path / "test.db"
        shutil.copyfile(template, copy)
        return f"sqlite:///{copy}"
    return backend_url


@pytest.fixture
def engine(backend_engine: Engine | None, db_url: str) -> Iterator[Engine]:
    """An engine on an empty, migrated database of the test's backend."""
    if backend_engine is None:
        engine = make_engine(db_url)
        yield engine
        engine.dispose()
        return
    yield backend_engine
    _truncate_all_tables(backend_engine)


@pytest.fixture
def factory(engine: Engine) -> sessionmaker[Session]:
    return make_sessionmaker(engine)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 11, 26, 2, 0, tzinfo=UTC))


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=db_url,
        demo=False,
        mail_dir=tmp_path / "mail",
        upload_dir=tmp_path / "uploads",
        log_json=True,
    )


@pytest.fixture
def system_ctx(clock: FrozenClock) -> Context:
    return Context(actor=Actor.system("test"), clock=clock, request_id="test")


@pytest.fixture
def app(settings: Settings, clock: FrozenClock, engine: Engine) -> FastAPI:
    return create_app(settings, clock=clock, engine=engine)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def demo(factory: sessionmaker[Session], settings: Settings, system_ctx: Context) -> dict[str, str]:
    """Seed the demo world; returns e-mail → role."""
    with unit_of_work(factory) as session:
        seed_demo(session, ctx=system_ctx, settings=settings, with_money=False)
    return {login.email: login.role.value for login in DEMO_LOGINS}


def login_token(
    client: TestClient, email: str, password: str = DEMO_PASSWORD, totp: str | None = None
) -> str:
    data = {"username": email, "password": password, "grant_type": "password"}
    if totp:
        data["totp"] = totp
    response = client.post("/api/v1/auth/token", data=data)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def demo_tokens(
    client: TestClient, factory: sessionmaker[Session], settings: Settings, ctx: Context
) -> dict[str, str]:
    """A bearer token for every demo login, passing TOTP where the role needs it (as in production)."""
    from yunrong.identity import service
    from yunrong.identity.model import needs_totp
    from yunrong.identity.security import totp_now

    tokens: dict[str, str] = {}
    for login in DEMO_LOGINS:
        code = None
        if needs_totp(frozenset({login.role})):
            with unit_of_work(factory) as session:
                secret = service.enrol_totp_by_operator(
                    session, ctx=ctx, settings=settings, email=login.email
                )
            code = totp_now(secret, ctx.now())
        tokens[login.email] = login_token(client, login.email, totp=code)
    return tokens


@pytest.fixture
def tokens(
    client: TestClient,
    factory: sessionmaker[Session],
    settings: Settings,
    system_ctx: Context,
    demo: dict[str, str],
) -> dict[str, str]:
    return demo_tokens(client, factory, settings, system_ctx)
