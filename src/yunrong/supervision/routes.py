"""JSON API of the audit log (regulators read it; regulators and operators verify it)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict

from yunrong.deps import DB, ApiCtx, SettingsDep
from yunrong.identity.model import Action
from yunrong.identity.service import require
from yunrong.kit.clock import business_date
from yunrong.kit.pagination import PageRequest
from yunrong.parties.schemas import LprIn, LprOut, PolicyOut
from yunrong.supervision import rates, service

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


# --- the policy profile and the LPR table -----------------------------------------------------------


@router.get("/policy", operation_id="read_policy_profile", response_model=PolicyOut, tags=["policy"])
def read_policy_profile(request: Request, session: DB, ctx: ApiCtx, settings: SettingsDep) -> PolicyOut:
    require(ctx, Action.READ_POLICY)
    policy = settings.policy
    today = business_date(request.app.state.clock.now(), settings.timezone)
    lpr = rates.rate_on(session, today)
    cap = None
    if policy.lpr_multiple_cap is not None and lpr is not None:
        cap = policy.lpr_multiple_cap * lpr
    return PolicyOut(
        **{k: getattr(policy, k) for k in PolicyOut.model_fields if hasattr(policy, k)},
        current_one_year_lpr_percent=lpr,
        current_interest_cap_percent=cap,
    )


@router.get("/lpr-rates", operation_id="list_lpr_rates", response_model=list[LprOut], tags=["policy"])
def list_lpr_rates(session: DB, ctx: ApiCtx) -> list[LprOut]:
    require(ctx, Action.READ_POLICY)
    return [LprOut.model_validate(r) for r in rates.list_rates(session)]


@router.post(
    "/lpr-rates", operation_id="set_lpr_rate", response_model=LprOut, status_code=201, tags=["policy"]
)
def set_lpr_rate(session: DB, ctx: ApiCtx, body: LprIn) -> LprOut:
    """Operator: record a one-year LPR fixing from its effective date (the cap follows it)."""
    row = rates.set_rate(
        session, ctx=ctx, effective_on=body.effective_on, percent=body.one_year_percent, source=body.source
    )
    return LprOut.model_validate(row)
