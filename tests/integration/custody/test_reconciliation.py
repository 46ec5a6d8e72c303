"""Reconciliation of the custodian's statement with the ledger: every seeded break is caught.

Money moves through the API and the simulated bank; then the *bank's* book (never the ledger) is
tampered with: a booking deleted, one repeated, one 1 fen off, one moved past midnight, one the
platform never asked for.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import bearer, demo_tokens
from tests.integration.custody.conftest import Drain
from yunrong.config import Settings
from yunrong.custody.camt053 import NS, parse_camt053, parse_csv, to_camt053, to_csv
from yunrong.custody.recon_jobs import daily_reconciliation
from yunrong.custody.recon_tables import ReconciliationItem, ReconciliationRun
from yunrong.custody.simbank import SimBankTransaction
from yunrong.custody.tables import Instruction
from yunrong.db import unit_of_work
from yunrong.identity.model import Context
from yunrong.kit.clock import FrozenClock
from yunrong.messaging.jobs import jobs
from yunrong.supervision.tables import Alert

INVESTOR = "investor@demo.yunrong.cn"
OPERATOR = "operator@demo.yunrong.cn"
REGULATOR = "regulator1@demo.yunrong.cn"
BANK = "bank@demo.yunrong.cn"
DAY = "2026-11-26"
NEXT = "2026-11-27"


def _account_id(client: TestClient, token: str) -> str:
    org = client.get("/api/v1/me", headers=bearer(token)).json()["organisation"]["id"]
    return client.get(f"/api/v1/organisations/{org}/bank-accounts", headers=bearer(token)).json()[0]["id"]


def _move(client: TestClient, token: str, path: str, amount: str) -> str:
    body = {"amount": amount, "currency": "CNY", "bank_account_id": _account_id(client, token)}
    response = client.post(path, json=body, headers={**bearer(token), "Idempotency-Key": uuid.uuid4().hex})
    assert response.status_code == 202, response.text
    return str(response.json()["ref"])


def _seed_money(client: TestClient, tokens: dict[str, str], drain: Drain) -> dict[str, str]:
    """Five deposits and a withdrawal, all confirmed by the bank on 2026-11-26 (Shanghai)."""
    token = tokens[INVESTOR]
    refs = {
        name: _move(client, token, "/api/v1/deposits", amount)
        for name, amount in (
            ("missing", "1000.00"),
            ("duplicated", "2000.00"),
            ("fen_off", "3000.00"),
            ("late", "400.00"),
            ("fine", "500.00"),
        )
    }
    drain()
    refs["withdrawal"] = _move(client, token, "/api/v1/withdrawals", "100.00")
    drain()
    return refs


def _statement(client: TestClient, token: str, day: str, fmt: str = "camt053") -> bytes:
    response = client.get(
        f"/api/v1/custodian/statements/{day}", params={"format": fmt}, headers=bearer(token)
    )
    assert response.status_code == 200, response.text
    return response.content


def _import(client: TestClient, token: str, content: bytes, name: str = "statement.xml", **form: str) -> Any:
    return client.post(
        "/api/v1/reconciliations", files={"file": (name, content)}, data=form, headers=bearer(token)
    )


def _items(client: TestClient, token: str, run_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/reconciliations/{run_id}", headers=bearer(token))
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def _by_ref(items: list[dict[str, Any]]) -> dict[str | None, list[tuple[str, str | None, int]]]:
    out: dict[str | None, list[tuple[str, str | None, int]]] = {}
    for item in items:
        out.setdefault(item["instruction_ref"], []).append((item["kind"], item["note"], item["age_days"]))
    return out


def _tamper_with_the_bank(factory: sessionmaker[Session], refs: dict[str, str]) -> None:
    with unit_of_work(factory) as session:
        book = {t.instruction_ref: t for t in session.scalars(select(SimBankTransaction)).all()}
        assert {t.booked_on.isoformat() for t in book.values()} == {DAY}
        session.delete(book[refs["missing"]])
        original = book[refs["duplicated"]]
        session.add(
            SimBankTransaction(
                bank_reference=original.bank_reference + "D",
                instruction_ref=original.instruction_ref,
                direction=original.direction,
                amount=original.amount,
                currency=original.currency,
                counterparty=original.counterparty,
                booked_on=original.booked_on,
                booked_at=original.booked_at + timedelta(seconds=1),
            )
        )
        book[refs["fen_off"]].amount += 1
        late = book[refs["late"]]
        late.booked_on = late.booked_on + timedelta(days=1)
        late.booked_at = datetime(2026, 11, 26, 16, 0, 30, tzinfo=UTC)  # 00:00:30 in Shanghai
        session.add(
            SimBankTransaction(
                bank_reference="SIMSTRANGER0001",
                instruction_ref="BI-NOTOURS000",
                direction="credit",
                amount=77_700,
                currency="CNY",
                counterparty="somebody else",
                booked_on=original.booked_on,
                booked_at=original.booked_at,
            )
        )


def test_every_seeded_break_is_caught_and_a_late_booking_clears_the_next_day(
    client: TestClient,
    tokens: dict[str, str],
    verified: None,
    drain: Drain,
    factory: sessionmaker[Session],
    settings: Settings,
    system_ctx: Context,
    clock: FrozenClock,
) -> None:
    refs = _seed_money(client, tokens, drain)
    _tamper_with_the_bank(factory, refs)

    camt = _statement(client, tokens[BANK], DAY)
    statement = parse_camt053(camt)
    assert len(statement.entries) == 6  # 6 instructions − 1 deleted − 1 moved + 1 repeated + 1 stranger
    assert statement.closing_balance == statement.opening_balance + sum(
        e.amount if e.direction == "credit" else -e.amount for e in statement.entries
    )

    response = _import(client, tokens[OPERATOR], camt)
    assert response.status_code == 201, response.text
    run = response.json()
    assert {k: run[k] for k in ("matched", "ledger_only", "bank_only", "duplicates", "amount_mismatch")} == {
        "matched": 3,  # the fine deposit, the first of the repeated pair, the withdrawal
        "ledger_only": 2,  # the deleted booking and the one the bank booked after midnight
        "bank_only": 2,  # the repeat and the stranger
        "duplicates": 1,
        "amount_mismatch": 1,
    }
    assert run["breaks"] == 5
    assert run["clean"] is False
    assert run["alert_id"]

    day_one = _by_ref(_items(client, tokens[REGULATOR], run["id"]))  # the regulator reads it too
    assert day_one[refs["missing"]] == [("ledger_only", None, 0)]
    assert day_one[refs["late"]] == [("ledger_only", None, 0)]
    assert sorted(day_one[refs["duplicated"]], key=lambda x: x[0]) == [
        ("bank_only", "duplicate", 0),
        ("matched", None, 0),
    ]
    assert day_one[refs["fen_off"]] == [("amount_mismatch", "bank +1 minor units", 0)]
    assert day_one["BI-NOTOURS000"] == [("bank_only", None, 0)]
    assert day_one[refs["fine"]] == day_one[refs["withdrawal"]] == [("matched", None, 0)]

    with unit_of_work(factory) as session:
        alerts = session.scalars(select(Alert).where(Alert.kind == "reconciliation.break")).all()
        assert len(alerts) == 1
        assert alerts[0].severity == "high"
        assert alerts[0].detail["counts"]["breaks"] == 5
        assert "2 ledger-only" in alerts[0].subject_en
    for who in (OPERATOR, REGULATOR):
        notes = client.get("/api/v1/notifications", headers=bearer(tokens[who])).json()
        assert any(n["kind"] == "alert.reconciliation.break" for n in notes), who

    # The next day the bank's statement carries the late booking: it matches and clears the old item;
    # the breaks nobody fixed are reported again, a day older.
    clock.advance(timedelta(days=1))
    tokens = demo_tokens(client, factory, settings, system_ctx)  # yesterday's have expired
    second = _import(client, tokens[OPERATOR], _statement(client, tokens[BANK], NEXT)).json()
    day_two = _by_ref(_items(client, tokens[OPERATOR], second["id"]))
    assert day_two[refs["late"]] == [("matched", "bank booked 1 day after the ledger", 1)]
    assert day_two[refs["missing"]] == [("ledger_only", None, 1)]
    assert day_two[refs["fen_off"]] == [("amount_mismatch", "bank +1 minor units", 1)]
    assert day_two[refs["duplicated"]] == [("bank_only", "duplicate", 1)]
    assert day_two["BI-NOTOURS000"] == [("bank_only", None, 1)]
    assert refs["fine"] not in day_two  # matched yesterday: done
    assert (second["matched"], second["breaks"]) == (1, 4)
    with unit_of_work(factory) as session:
        cleared = session.scalars(
            select(ReconciliationItem).where(ReconciliationItem.instruction_ref == refs["late"])
        ).all()
        first_day = next(i for i in cleared if i.kind == "ledger_only")
        assert str(first_day.cleared_by_run_id) == second["id"]
        assert session.scalar(select(func.count()).select_from(Alert)) == 2

    listed = client.get("/api/v1/reconciliations", headers=bearer(tokens[REGULATOR])).json()
    assert [r["statement_date"] for r in listed] == [NEXT, DAY]


def test_a_clean_day_by_the_daily_job_has_no_breaks_and_no_alert(
    client: TestClient,
    tokens: dict[str, str],
    verified: None,
    drain: Drain,
    factory: sessionmaker[Session],
    settings: Settings,
    system_ctx: Context,
    clock: FrozenClock,
) -> None:
    refs = _seed_money(client, tokens, drain)
    assert "custody.daily_reconciliation" in jobs()
    assert jobs()["custody.daily_reconciliation"].every == timedelta(hours=24)
    clock.advance(timedelta(days=1))
    summary = daily_reconciliation(factory, settings, clock)
    assert "6 matched, 0 breaks" in summary
    assert "already reconciled" in daily_reconciliation(factory, settings, clock)
    tokens = demo_tokens(client, factory, settings, system_ctx)
    runs = client.get("/api/v1/reconciliations", headers=bearer(tokens[OPERATOR])).json()
    assert len(runs) == 1
    assert runs[0]["source"] == "simbank"
    assert (runs[0]["statement_date"], runs[0]["breaks"], runs[0]["clean"]) == (DAY, 0, True)
    items = _items(client, tokens[OPERATOR], runs[0]["id"])
    assert {i["instruction_ref"] for i in items} == set(refs.values())
    with unit_of_work(factory) as session:
        assert session.scalars(select(Alert)).all() == []
        escrow_refs = set(session.scalars(select(Instruction.ref)).all())
        assert escrow_refs == set(refs.values())


def test_statement_round_trips_in_camt053_and_csv(
    client: TestClient, tokens: dict[str, str], verified: None, drain: Drain
) -> None:
    _seed_money(client, tokens, drain)
    camt = _statement(client, tokens[BANK], DAY)
    assert camt.startswith(b"<?xml")
    assert f'xmlns="{NS}"'.encode() in camt
    for tag in (
        b"<GrpHdr>",
        b"<Cd>OPBD</Cd>",
        b"<Cd>CLBD</Cd>",
        b"<CdtDbtInd>DBIT</CdtDbtInd>",
        b"<Cd>BOOK</Cd>",
    ):
        assert tag in camt
    parsed = parse_camt053(camt)
    assert to_camt053(parsed) == camt
    assert sorted(e.amount for e in parsed.entries) == [10_000, 40_000, 50_000, 100_000, 200_000, 300_000]
    assert [e.direction for e in parsed.entries].count("debit") == 1
    assert '<Amt Ccy="CNY">1000.00</Amt>' in camt.decode()

    csv_bytes = _statement(client, tokens[BANK], DAY, "csv")
    assert (
        csv_bytes.splitlines()[0]
        == b"booked_on,value_date,bank_reference,end_to_end_id,direction,amount,currency"
    )
    from_csv = parse_csv(csv_bytes)
    assert to_csv(from_csv) == csv_bytes
    assert from_csv.entries == parsed.entries
    assert to_csv(parsed) == csv_bytes

    run = _import(client, tokens[OPERATOR], csv_bytes, "statement.csv").json()
    assert (run["format"], run["matched"], run["breaks"]) == ("csv", 6, 0)
    # Who may read the bank's statement: its own officer, the operator and the regulator, no one else.
    for who, status in ((INVESTOR, 403), ("sme@demo.yunrong.cn", 403), (REGULATOR, 200), (OPERATOR, 200)):
        answer = client.get(f"/api/v1/custodian/statements/{DAY}", headers=bearer(tokens[who]))
        assert answer.status_code == status, who
    assert (
        client.get("/api/v1/custodian/statements/2026-13-01", headers=bearer(tokens[BANK])).status_code == 422
    )


def test_malformed_statements_are_refused_listing_every_problem(
    client: TestClient, tokens: dict[str, str], verified: None, drain: Drain, factory: sessionmaker[Session]
) -> None:
    _seed_money(client, tokens, drain)
    operator = tokens[OPERATOR]
    camt = _statement(client, tokens[BANK], DAY).decode()

    def problems(content: bytes, name: str = "s.xml", **form: str) -> list[str]:
        response = _import(client, operator, content, name, **form)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        body = response.json()
        return [
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
            for e in body.get("errors", body.get("problems", []))
        ]

    assert any("not well-formed XML" in p for p in problems(b"<Document><oops></Document>"))
    assert any("wrong namespace" in p for p in problems(camt.replace(NS, NS.replace(".08", ".02")).encode()))
    assert any("DTD" in p for p in problems(b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'))

    broken = (
        camt.replace(f"<Id>{parse_camt053(camt.encode()).statement_id}</Id>", "", 1)
        .replace(">1000.00<", ">1,000.00<", 1)
        .replace("<CdtDbtInd>DBIT</CdtDbtInd>", "<CdtDbtInd>XX</CdtDbtInd>", 1)
        .replace(">500.00<", ">500.001<", 1)
    )
    found = problems(broken.encode())
    assert any(p.startswith("Stmt.Id:") for p in found), found
    assert any("'1,000.00' is not a decimal amount" in p for p in found), found
    assert any("CdtDbtInd: must be CRDT or DBIT" in p for p in found), found
    assert any("more than 2 decimals" in p for p in found), found
    assert len(found) >= 4

    bad_csv = (
        b"booked_on,value_date,bank_reference,end_to_end_id,direction,amount,currency\n"
        b"2026-11-31,2026-11-26,SIM1,BI-1,credit,10.00,CNY\n"
        b"2026-11-26,2026-11-26,,BI-2,sideways,ten,CNY\n"
        b"2026-11-26,2026-11-26,SIM3,BI-3,debit,1.00,XXX\n"
    )
    found = problems(bad_csv, "s.csv")
    for expected in (
        "row.2.booked_on",
        "row.3.bank_reference",
        "row.3.direction",
        "row.3.amount",
        "row.4.currency",
    ):
        assert any(p.startswith(expected) for p in found), (expected, found)
    assert any(p.startswith("header") for p in problems(b"date,amount\n2026-11-26,1.00\n", "s.csv"))
    other_account = camt.replace(":CNY:ORG-", ":CNY:XXX-", 1).encode()
    assert any("is not the escrow" in p for p in problems(other_account))
    with unit_of_work(factory) as session:
        assert session.scalars(select(ReconciliationRun)).all() == []
    # Only the operator imports; an unknown run is not found.
    assert _import(client, tokens[REGULATOR], camt.encode()).status_code == 403
    assert _import(client, tokens[INVESTOR], camt.encode()).status_code == 403
    missing = client.get(f"/api/v1/reconciliations/{uuid.uuid4()}", headers=bearer(operator))
    assert missing.status_code == 404
    assert client.get("/api/v1/reconciliations", headers=bearer(tokens[INVESTOR])).status_code == 403


# --- the command line ----------------------------------------------------------------------------------


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "yunrong.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
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


def test_cli_statement_and_reconcile_exit_codes(cli_env: dict[str, str], tmp_path: Path) -> None:
    assert _cli(["db", "upgrade"], cli_env).returncode == 0
    seeded = _cli(["demo", "seed"], cli_env)
    assert seeded.returncode == 0, seeded.stderr
    xml_file = tmp_path / "statement.xml"
    written = _cli(["bank", "statement", "--date", DAY, "-o", str(xml_file)], cli_env)
    assert written.returncode == 0, written.stderr
    assert parse_camt053(xml_file.read_bytes()).entries == ()
    to_stdout = _cli(["bank", "statement", "--date", DAY, "--format", "csv"], cli_env)
    assert to_stdout.stdout.startswith("booked_on,value_date,")

    clean = _cli(["reconcile", "--statement", str(xml_file)], cli_env)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "breaks" in clean.stdout

    stranger = tmp_path / "stranger.csv"
    stranger.write_text(
        "booked_on,value_date,bank_reference,end_to_end_id,direction,amount,currency\n"
        f"{NEXT},{NEXT},SIMX1,BI-NOTOURS000,credit,12.34,CNY\n"
    )
    broken = _cli(["reconcile", "--statement", str(stranger), "--format", "csv"], cli_env)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "bank only" in broken.stdout

    garbage = tmp_path / "garbage.xml"
    garbage.write_text("<Document><unclosed></Document>")
    refused = _cli(["reconcile", "--statement", str(garbage)], cli_env)
    assert refused.returncode == 2
    assert "not well-formed XML" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    absent = _cli(["reconcile", "--statement", str(tmp_path / "nope.xml")], cli_env)
    assert absent.returncode == 2
    assert json.dumps("nope.xml").strip('"') in absent.stderr
