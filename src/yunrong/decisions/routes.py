"""JSON API of credit decisions and the model registry."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from yunrong.decisions import registry, service
from yunrong.decisions.tables import CreditDecision, ModelVersion
from yunrong.deps import DB, ApiCtx, SettingsDep

router = APIRouter(prefix="/api/v1", tags=["credit decisions"])


def decision_out(d: CreditDecision) -> dict[str, Any]:
    return {
        "id": str(d.id),
        "demand_id": str(d.demand_id),
        "model_id": str(d.model_id),
        "as_of": d.as_of.isoformat(),
        "grade": d.override_grade or d.grade,
        "model_grade": d.grade,
        "pd": d.pd,
        "score": d.score,
        "declined": d.declined if d.override_declined is None else d.override_declined,
        "decline_reason": d.decline_reason,
        "annual_rate": str(d.annual_rate) if d.annual_rate is not None else None,
        "apr": str(d.apr) if d.apr is not None else None,
        "cap": str(d.cap) if d.cap is not None else None,
        "limit_minor": d.limit_minor,
        "price": d.price,
        "reasons": d.reasons,
        "counterfactual": d.counterfactual,
        "features": d.features,
        "decided_at": d.decided_at.isoformat(),
        "override": None
        if d.override_at is None
        else {
            "grade": d.override_grade,
            "declined": d.override_declined,
            "reason": d.override_reason,
            "by": d.override_by,
            "at": d.override_at.isoformat(),
        },
    }


def model_out(m: ModelVersion) -> dict[str, Any]:
    return {
        "id": str(m.id),
        "name": m.name,
        "version": m.version,
        "role": m.role,
        "sha256": m.artifact_sha256,
        "card": m.card,
        "registered_by": m.registered_by,
        "registered_at": m.registered_at.isoformat(),
    }


@router.post("/demands/{demand_id}/decision", operation_id="decide_demand")
def decide_demand(session: DB, ctx: ApiCtx, settings: SettingsDep, demand_id: uuid.UUID) -> dict[str, Any]:
    """Grade, PD, limit, price (or decline and why), reasons, counterfactual, model version."""
    return decision_out(service.decide_demand(session, ctx=ctx, settings=settings, demand_id=demand_id))


@router.get("/demands/{demand_id}/decision", operation_id="read_demand_decision")
def read_demand_decision(session: DB, ctx: ApiCtx, demand_id: uuid.UUID) -> dict[str, Any]:
    return decision_out(service.visible_decision(session, ctx=ctx, demand_id=demand_id))


class OverrideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grade: str | None = Field(default=None, max_length=4)
    declined: bool | None = None
    reason: str = Field(min_length=1, max_length=2000)


@router.post("/credit-decisions/{decision_id}/override", operation_id="override_credit_decision")
def override_credit_decision(
    session: DB, ctx: ApiCtx, decision_id: uuid.UUID, body: OverrideIn
) -> dict[str, Any]:
    """A human override of the model: needs a reason, and is audited."""
    d = service.override(
        session,
        ctx=ctx,
        decision_id=decision_id,
        grade=body.grade,
        declined=body.declined,
        reason=body.reason,
    )
    return decision_out(d)


@router.get("/credit-models", operation_id="list_credit_models")
def list_credit_models(session: DB, ctx: ApiCtx) -> list[dict[str, Any]]:
    return [model_out(m) for m in registry.list_models(session, ctx=ctx)]


@router.get("/credit-models/{model_id}", operation_id="read_model_card")
def read_model_card(session: DB, ctx: ApiCtx, model_id: uuid.UUID) -> dict[str, Any]:
    return model_out(registry.visible_model(session, ctx=ctx, model_id=model_id))


class PromotionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target_role: str = Field(pattern="^(champion|challenger|retired)$")
    reason: str = Field(min_length=1, max_length=2000)


class PromotionDecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approve: bool
    reason: str = Field(min_length=1, max_length=2000)


@router.post("/credit-models/{model_id}/promotions", operation_id="propose_model_promotion", status_code=201)
def propose_model_promotion(
    session: DB, ctx: ApiCtx, model_id: uuid.UUID, body: PromotionIn
) -> dict[str, Any]:
    """Propose a model as champion or challenger (or retire it); a second operator decides."""
    p = registry.propose(
        session, ctx=ctx, model_id=model_id, target_role=body.target_role, reason=body.reason
    )
    return {"id": str(p.id), "model_id": str(p.model_id), "target_role": p.target_role, "status": p.status}


@router.post("/model-promotions/{promotion_id}/decision", operation_id="decide_model_promotion")
def decide_model_promotion(
    session: DB, ctx: ApiCtx, promotion_id: uuid.UUID, body: PromotionDecisionIn
) -> dict[str, Any]:
    p = registry.decide(session, ctx=ctx, promotion_id=promotion_id, approve=body.approve, reason=body.reason)
    return {"id": str(p.id), "model_id": str(p.model_id), "target_role": p.target_role, "status": p.status}


@router.get("/credit-monitoring", operation_id="read_credit_monitoring")
def read_credit_monitoring(session: DB, ctx: ApiCtx) -> dict[str, Any]:
    """Score drift (PSI) of the champion and predicted vs realised default by grade."""
    return service.monitoring(session, ctx=ctx)
