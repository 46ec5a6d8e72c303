"""The hash-chained audit log: appends, verification, and detection of every kind of tampering."""

from __future__ import annotations

import threading

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import bearer
from yunrong.db import unit_of_work
from yunrong.identity.model import Context
from yunrong.supervision import service as audit
from yunrong.supervision.tables import AuditRecord


def _append(factory: sessionmaker[Session], ctx: Context, n: int) -> None:
    for i in range(n):
        with unit_of_work(factory) as session:
            audit.record(
                session, ctx=ctx, action="test.event", object_type="thing", object_id=str(i), after={"i": i}
            )


def test_fresh_chain_verifies(factory: sessionmaker[Session], system_ctx: Context) -> None:
    _append(factory, system_ctx, 5)
    with unit_of_work(factory) as session:
        checked, broken = audit.verify_chain(session)
    assert (checked, broken) == (5, None)


def test_an_edited_record_is_named(
    factory: sessionmaker[Session], system_ctx: Context, engine: Engine
) -> None:
    _append(factory, system_ctx, 5)
    with engine.begin() as conn:
        conn.execute(update(AuditRecord).where(AuditRecord.seq == 3).values(actor_label="someone-else"))
    with unit_of_work(factory) as session:
        _, broken = audit.verify_chain(session)
    assert broken is not None
    assert broken.seq == 3
    assert "hash mismatch" in broken.reason


def test_a_deleted_record_is_detected(
    factory: sessionmaker[Session], system_ctx: Context, engine: Engine
) -> None:
    _append(factory, system_ctx, 5)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_records WHERE seq = 2"))
    with unit_of_work(factory) as session:
        _, broken = audit.verify_chain(session)
    assert broken is not None
    assert broken.seq == 3
    assert "deleted" in broken.reason


def test_deleting_the_tail_is_detected(
    factory: sessionmaker[Session], system_ctx: Context, engine: Engine
) -> None:
    _append(factory, system_ctx, 5)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_records WHERE seq = 5"))
    with unit_of_work(factory) as session:
        _, broken = audit.verify_chain(session)
    assert broken is not None
    assert "deleted" in broken.reason


def test_reordered_records_are_detected(
    factory: sessionmaker[Session], system_ctx: Context, engine: Engine
) -> None:
    _append(factory, system_ctx, 5)
    with engine.begin() as conn:
        conn.execute(update(AuditRecord).where(AuditRecord.seq == 2).values(seq=-2))
        conn.execute(update(AuditRecord).where(AuditRecord.seq == 4).values(seq=2))
        conn.execute(update(AuditRecord).where(AuditRecord.seq == -2).values(seq=4))
    with unit_of_work(factory) as session:
        _, broken = audit.verify_chain(session)
    assert broken is not None
    assert broken.seq == 2


def test_rolled_back_work_leaves_no_audit_record(factory: sessionmaker[Session], system_ctx: Context) -> None:
    with pytest.raises(RuntimeError), unit_of_work(factory) as session:  # noqa: PT012 - a crash mid-transaction
        audit.record(session, ctx=system_ctx, action="test.event", object_type="thing", object_id="x")
        raise RuntimeError("crash after the audit write")
    with unit_of_work(factory) as session:
        assert session.scalars(select(AuditRecord)).all() == []
        assert audit.verify_chain(session) == (0, None)


def test_concurrent_appends_keep_one_gapless_chain(
    factory: sessionmaker[Session], system_ctx: Context
) -> None:
    errors: list[BaseException] = []

    def work() -> None:
        try:
            _append(factory, system_ctx, 10)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with unit_of_work(factory) as session:
        checked, broken = audit.verify_chain(session)
        seqs = session.scalars(select(AuditRecord.seq).order_by(AuditRecord.seq)).all()
    assert broken is None
    assert checked == 80
    assert list(seqs) == list(range(1, 81))


def test_regulators_read_and_verify_through_the_api(client: TestClient, tokens: dict[str, str]) -> None:
    regulator = bearer(tokens["regulator1@demo.yunrong.cn"])
    page = client.get("/api/v1/audit-records", params={"limit": 5}, headers=regulator)
    assert page.status_code == 200
    body = page.json()
    assert len(body["items"]) == 5
    assert body["next_after"]
    older = client.get(
        "/api/v1/audit-records", params={"limit": 5, "after": body["next_after"]}, headers=regulator
    )
    assert older.json()["items"][0]["seq"] == body["items"][-1]["seq"] - 1
    logins = client.get("/api/v1/audit-records", params={"action": "token.issue"}, headers=regulator).json()
    assert logins["items"]
    assert all(r["action"] == "token.issue" for r in logins["items"])
    verified = client.get("/api/v1/audit-records/verification", headers=regulator).json()
    assert verified["ok"] is True
    assert verified["records_checked"] > 0
    sme = bearer(tokens["sme@demo.yunrong.cn"])
    assert client.get("/api/v1/audit-records", headers=sme).status_code == 403
    assert client.get("/api/v1/audit-records/verification", headers=sme).status_code == 403
