"""JSON API of the audit log (regulators read it; regulators and operators verify it)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from yunrong.deps import DB, ApiCtx
from yunrong.identity.model import Action
from yunrong.identity.service import require
from yunrong.kit.pagination import PageRequest
from yunrong.supervision import service

router = APIRouter(prefix="/api/v1", tags=["audit"])


class AuditRecordOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    seq: int
    at: datetime
    actor_user_id: str | None
    actor_org_id: str | None
    actor_label: str
    action: str
    object_type: str
    object_id: str | None
    before_digest: str | None
    after_digest: str | None
    request_id: str
    detail: dict[str, Any]
    prev_hash: str
    hash: str


class AuditPageOut(BaseModel):
    items: list[AuditRecordOut]
    next_after: str | None


class AuditVerificationOut(BaseModel):
    ok: bool
    records_checked: int
    first_break: str | None


@router.get("/audit-records", operation_id="list_audit_records", response_model=AuditPageOut)
def list_audit_records(
    session: DB,
    ctx: ApiCtx,
    limit: int = Query(50, ge=1, le=200),
    after: str | None = Query(None, description="Cursor: the next_after of the previous page"),
    action: str | None = None,
) -> AuditPageOut:
    page = service.list_records(session, ctx=ctx, page=PageRequest(limit=limit, after=after), action=action)
    return AuditPageOut(
        items=[AuditRecordOut.model_validate(r) for r in page.items], next_after=page.next_after
    )


@router.get(
    "/audit-records/verification", operation_id="verify_audit_log", response_model=AuditVerificationOut
)
def verify_audit_log(session: DB, ctx: ApiCtx) -> AuditVerificationOut:
    require(ctx, Action.VERIFY_AUDIT_LOG)
    checked, broken = service.verify_chain(session)
    return AuditVerificationOut(
        ok=broken is None, records_checked=checked, first_break=str(broken) if broken else None
    )


@router.get("/audit-records/{record_id}", operation_id="read_audit_record", response_model=AuditRecordOut)
def read_audit_record(session: DB, ctx: ApiCtx, record_id: uuid.UUID) -> AuditRecordOut:
    return AuditRecordOut.model_validate(service.read_record(session, ctx=ctx, record_id=record_id))
