"""The command line, run as a user runs it: a real process against a real database file."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from yunrong.demo.seed import DEMO_LOGINS


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "yunrong.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("YUNRONG_")}
    env.update(
        YUNRONG_DATABASE_URL=f"sqlite:///{tmp_path / 'cli.db'}",
        YUNRONG_LOG_JSON="false",
        YUNRONG_MAIL_DIR=str(tmp_path / "mail"),
    )
    return env


def test_upgrade_seed_twice_logins_and_verify(cli_env: dict[str, str], tmp_path: Path) -> None:
    assert run(["db", "upgrade"], cli_env).returncode == 0
    first = run(["demo", "seed"], cli_env)
    assert first.returncode == 0, first.stderr
    created_users = int(first.stdout.split(" and ")[1].split()[0])
    assert created_users >= len(DEMO_LOGINS)
    second = run(["demo", "seed"], cli_env)
    assert "0 organisations and 0 users created" in second.stdout
    logins = json.loads(run(["demo", "logins", "--json"], cli_env).stdout)
    assert {row["role"] for row in logins} == {login.role.value for login in DEMO_LOGINS}
    assert set(logins[0]) == {"role", "email", "password", "organisation"}
    verified = run(["audit", "verify"], cli_env)
    assert verified.returncode == 0
    assert "intact" in verified.stdout


def test_audit_verify_fails_naming_the_edited_record(cli_env: dict[str, str], tmp_path: Path) -> None:
    run(["db", "upgrade"], cli_env)
    run(["demo", "seed"], cli_env)
    with sqlite3.connect(tmp_path / "cli.db") as conn:
        record_id = conn.execute("SELECT id FROM audit_records WHERE seq = 4").fetchone()[0]
        conn.execute("UPDATE audit_records SET action = 'user.delete' WHERE seq = 4")
    result = run(["audit", "verify"], cli_env)
    assert result.returncode == 1
    assert "#4" in result.stderr
    assert str(record_id)[:8] in result.stderr.replace("-", "")


def test_bad_input_is_one_line_and_non_zero(cli_env: dict[str, str]) -> None:
    run(["db", "upgrade"], cli_env)
    created = run(["orgs", "create", "--type", "custodian_bank", "--name", "Test Custody"], cli_env)
    assert created.returncode == 0, created.stderr
    ref = created.stdout.split()[2]
    short = run(
        [
            "users",
            "create",
            "--email",
            "a@b.cn",
            "--name",
            "A",
            "--organisation",
            ref,
            "--role",
            "bank_officer",
            "--password",
            "short",
        ],
        cli_env,
    )
    assert short.returncode == 2
    assert len(short.stderr.strip().splitlines()) == 1
    assert "password" in short.stderr
    unknown = run(
        [
            "users",
            "create",
            "--email",
            "a@b.cn",
            "--name",
            "A",
            "--organisation",
            "ORG-NOPE",
            "--role",
            "bank_officer",
            "--password",
            "long-enough-pw",
        ],
        cli_env,
    )
    assert unknown.returncode == 2
    assert "no organisation" in unknown.stderr
    ok = run(
        [
            "users",
            "create",
            "--email",
            "a@b.cn",
            "--name",
            "A",
            "--organisation",
            ref,
            "--role",
            "bank_officer",
            "--password",
            "long-enough-pw",
        ],
        cli_env,
    )
    assert ok.returncode == 0, ok.stderr


def test_totp_roles_get_a_secret_once(cli_env: dict[str, str]) -> None:
    run(["db", "upgrade"], cli_env)
    created = run(["orgs", "create", "--type", "regulator", "--name", "Test Bureau"], cli_env)
    ref = created.stdout.split()[2]
    result = run(
        [
            "users",
            "create",
            "--email",
            "r@gov.cn",
            "--name",
            "R",
            "--organisation",
            ref,
            "--role",
            "regulator",
            "--password",
            "long-enough-pw",
        ],
        cli_env,
    )
    assert result.returncode == 0, result.stderr
    assert "TOTP secret (shown once)" in result.stdout
    assert "otpauth://totp/" in result.stdout


def test_the_demo_loan_is_a_month_into_its_life_and_made_once(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    """`make run`'s `yunrong demo loan`: steps 1-6 as users would run them, then the start moved a
    month back, so that the enterprise can repay its first instalment today."""
    from datetime import date, datetime, timedelta
    from zoneinfo import ZoneInfo

    from sqlalchemy import create_engine, text

    assert run(["db", "upgrade"], cli_env).returncode == 0
    assert run(["demo", "seed"], cli_env).returncode == 0
    made = run(["demo", "loan"], cli_env)
    assert made.returncode == 0, made.stderr
    assert "paid out a month ago" in made.stdout
    again = run(["demo", "loan"], cli_env)
    assert "already there" in again.stdout
    engine = create_engine(cli_env["YUNRONG_DATABASE_URL"])
    with engine.connect() as db:
        loans = db.execute(text("SELECT id, status, principal_minor FROM loans")).all()
        assert [(status, principal) for _, status, principal in loans] == [("active", 10_000_000)]
        notes = db.execute(text("SELECT principal_minor FROM loan_notes ORDER BY principal_minor")).scalars()
        assert list(notes) == [4_000_000, 6_000_000]
        first_due = db.execute(
            text("SELECT min(due_date) FROM loan_instalments WHERE status != 'superseded'")
        ).scalar_one()
        today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
        assert today - timedelta(days=3) <= date.fromisoformat(str(first_due)) <= today  # due now
    engine.dispose()
    verified = run(["ledger", "verify"], cli_env)
    assert verified.returncode == 0, verified.stdout + verified.stderr
