"""Run Alembic migrations programmatically (``yunrong db upgrade`` and the tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)
    _analyze(database_url)


def _analyze(database_url: str) -> None:
    """Give the planner statistics at once. Without them, PostgreSQL can keep a prepared plan made
    on an empty table (a sequential scan) long after the ledger has grown."""
    from sqlalchemy import text

    from yunrong.db import make_engine

    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    finally:
        engine.dispose()


def current_heads(database_url: str) -> list[str]:
    from alembic.script import ScriptDirectory

    return list(ScriptDirectory.from_config(alembic_config(database_url)).get_heads())
