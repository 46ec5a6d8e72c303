"""Use cases of the audit log: append a record, read records, verify the chain."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from yunrong.db import insert_many, is_postgres
from yunrong.identity.model import Action, Context
from yunrong.kit.errors import NotFound, PermissionDenied
from yunrong.kit.ids import uuid7
from yunrong.kit.pagination import Page, PageRequest
from yunrong.supervision.model import (
    GENESIS_HASH,
    AuditFields,
    ChainBreak,
    StoredRecord,
    chain_hash,
    digest,
    first_break,
)
from yunrong.supervision.tables import AuditChainHead, AuditRecord

_HEAD_ID = 1
AUDIT_RECORDS = cast(Table, AuditRecord.__table__)


@dataclass(frozen=True)
class Entry:
    """One record to append: who (the context), what and to which object."""

    ctx: Context
    action: str
    object_type: str
    object_id: uuid.UUID | str | None
    before: Any = None
    after: Any = None
    detail: dict[str, Any] | None = None


def record(
    session: Session,
    *,
    ctx: Context,
    action: str,
    object_type: str,
    object_id: uuid.UUID | str | None,
    before: Any = None,
    after: Any = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one record in the caller's transaction. The chain head row is locked, so appends
    from concurrent transactions take turns and the sequence has no gaps."""
    record_many(session, [Entry(ctx, action, object_type, object_id, before, after, detail)])


def draft(entry: Entry) -> AuditFields:
    """An entry with everything but its place in the chain worked out (``seq`` is 0 until
    :func:`record_many` appends it), so that a caller holding a busy lock appends it quickly."""
    actor = entry.ctx.actor
    return AuditFields(
        seq=0,
        at=entry.ctx.now(),
        actor_user_id=str(actor.user_id) if actor.user_id else None,
        actor_org_id=str(actor.organisation_id) if actor.organisation_id else None,
        actor_label=actor.email,
        action=entry.action,
        object_type=entry.object_type,
        object_id=str(entry.object_id) if entry.object_id is not None else None,
        before_digest=digest(entry.before),
        after_digest=digest(entry.after),
        request_id=entry.ctx.request_id,
        detail=entry.detail or {},
    )


def record_many(session: Session, entries: Sequence[Entry | AuditFields]) -> None:
    """Append records in order (entries, or their :func:`draft`), taking the chain head's lock once
    for all of them (one insert)."""
    if not entries:
        return
    drafts = [e if isinstance(e, AuditFields) else draft(e) for e in entries]
    last_seq, last_hash = _locked_head(session)
    rows: list[dict[str, Any]] = []
    for d in drafts:
        fields = replace(d, seq=last_seq + 1)
        new_hash = chain_hash(last_hash, fields)
        rows.append(
            {
                "id": uuid7(),
                "seq": fields.seq,
                "at": fields.at,
                "actor_user_id": fields.actor_user_id,
                "actor_org_id": fields.actor_org_id,
                "actor_label": fields.actor_label,
                "action": fields.action,
                "object_type": fields.object_type,
                "object_id": fields.object_id,
                "before_digest": fields.before_digest,
                "after_digest": fields.after_digest,
                "request_id": fields.request_id,
                "detail": fields.detail,
                "prev_hash": last_hash,
                "hash": new_hash,
            }
        )
        last_seq, last_hash = fields.seq, new_hash
    insert_many(session, AUDIT_RECORDS, rows)
    session.execute(_MOVE_HEAD, {"seq": last_seq, "hash": last_hash})


HEAD = cast(Table, AuditChainHead.__table__)
_LOCK_HEAD = select(HEAD.c.last_seq, HEAD.c.last_hash).where(HEAD.c.id == _HEAD_ID).with_for_update()
_MOVE_HEAD = (
    update(HEAD).where(HEAD.c.id == _HEAD_ID).values(last_seq=bindparam("seq"), last_hash=bindparam("hash"))
)


def _locked_head(session: Session) -> tuple[int, str]:
    """Lock the chain head row and read it, creating it first if this is the very first record.
    The insert ignores a conflict, so concurrent first writers do not fail; they then queue on the
    lock. (Plain rows, not ORM objects: this runs under whatever busy locks the caller holds.)"""
    head = session.execute(_LOCK_HEAD).one_or_none()
    if head is None:
        dialect_insert = pg_insert if is_postgres(session) else sqlite_insert
        session.execute(
            dialect_insert(HEAD)
            .values(id=_HEAD_ID, last_seq=0, last_hash=GENESIS_HASH)
            .on_conflict_do_nothing(index_elements=["id"])
        )
        head = session.execute(_LOCK_HEAD).one()
    return int(head.last_seq), str(head.last_hash)


def _stored(row: AuditRecord) -> StoredRecord:
    return StoredRecord(
        record_id=str(row.id),
        prev_hash=row.prev_hash,
        hash=row.hash,
        fields=AuditFields(
            seq=row.seq,
            at=row.at,
            actor_user_id=row.actor_user_id,
            actor_org_id=row.actor_org_id,
            actor_label=row.actor_label,
            action=row.action,
            object_type=row.object_type,
            object_id=row.object_id,
            before_digest=row.before_digest,
            after_digest=row.after_digest,
            request_id=row.request_id,
            detail=row.detail,
        ),
    )


def _iter_records(session: Session, batch: int = 1000) -> Iterator[StoredRecord]:
    # Stored order (by id, which is time-ordered) is walked in seq order; a reordered or deleted
    # record shows up as a sequence or link break.
    last_seq = 0
    while True:
        rows = session.scalars(
            select(AuditRecord).where(AuditRecord.seq > last_seq).order_by(AuditRecord.seq).limit(batch)
        ).all()
        if not rows:
            return
        for row in rows:
            yield _stored(row)
        last_seq = rows[-1].seq


def verify_chain(session: Session) -> tuple[int, ChainBreak | None]:
    """Check every link. Returns (records checked, first break or None)."""
    records = list(_iter_records(session))
    broken = first_break(records)
    head = session.execute(
        select(AuditChainHead).where(AuditChainHead.id == _HEAD_ID).execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if broken is None and head is not None and records:
        last = records[-1]
        if head.last_seq != last.fields.seq or head.last_hash != last.hash:
            broken = ChainBreak(
                last.fields.seq, last.record_id, f"chain head says #{head.last_seq}: records after it deleted"
            )
    if broken is None and head is not None and not records and head.last_seq:
        broken = ChainBreak(head.last_seq, "-", "chain head exists but every record is gone")
    return len(records), broken


def list_records(
    session: Session, *, ctx: Context, page: PageRequest, action: str | None = None
) -> Page[AuditRecord]:
    if not ctx.actor.can(Action.READ_AUDIT_LOG):
        raise PermissionDenied("only regulators read the audit log")
    query = select(AuditRecord).order_by(AuditRecord.seq.desc()).limit(page.limit + 1)
    if page.after:
        try:
            query = query.where(AuditRecord.seq < int(page.after))
        except ValueError:
            query = query.where(AuditRecord.seq < 0)
    if action:
        query = query.where(AuditRecord.action == action)
    rows = list(session.scalars(query).all())
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    return Page(items=rows, next_after=str(rows[-1].seq) if more and rows else None)


def read_record(session: Session, *, ctx: Context, record_id: uuid.UUID) -> AuditRecord:
    if not ctx.actor.can(Action.READ_AUDIT_LOG):
        raise PermissionDenied("only regulators read the audit log")
    row = session.get(AuditRecord, record_id)
    if row is None:
        raise NotFound("no such audit record")
    return row
