"""JSON API of service orders (step 2): agencies accept, decline and complete; the operator adds,
reassigns and waives."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from yunrong.demands.model import Product
from yunrong.deps import DB, ApiCtx
from yunrong.parties.model import AgencyType
from yunrong.verification import orders

router = APIRouter(prefix="/api/v1", tags=["service orders"])


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000)


class CompletionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    result: dict[str, Any] = Field(description="The typed result for the order's agency type")
    issued_at: datetime
    valid_until: datetime
    signature: str = Field(
        min_length=1, max_length=200, description="Ed25519 over the canonical form, base64"
    )
    evidence_document_ids: list[uuid.UUID] = Field(default_factory=list, max_length=20)


class ManualOrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    demand_id: uuid.UUID
    agency_type: AgencyType
    service: str = Field(default="*", min_length=1, max_length=60)
    required: bool = True


def order_out(session: DB, order: Any, *, detail: bool = False) -> dict[str, Any]:
    out = orders.order_summary(order)
    out |= {
        "required": order.required,
        "status_reason": order.status_reason,
        "assignments": order.assignments,
        "agency_id": str(order.agency_id) if order.agency_id else None,
        "attestation_id": str(order.attestation_id) if order.attestation_id else None,
        "created_at": order.created_at.isoformat(),
        "escalated_at": order.escalated_at.isoformat() if order.escalated_at else None,
    }
    if detail:
        out["events"] = [
            {
                "at": e.at.isoformat(),
                "actor": e.actor_label,
                "from": e.from_status,
                "to": e.to_status,
                "reason": e.reason,
            }
            for e in orders.events_of(session, order.id)
        ]
    return out


@router.get("/service-orders", operation_id="list_service_orders")
def list_service_orders(
    session: DB,
    ctx: ApiCtx,
    status: str | None = None,
    demand_id: uuid.UUID | None = None,
    limit: int = Query(200, ge=1, le=500),
) -> list[dict[str, Any]]:
    """Agencies: their own orders. Enterprises: orders for their demands. Supervisors: all."""
    return [
        order_out(session, o)
        for o in orders.list_orders(session, ctx=ctx, status=status, demand_id=demand_id, limit=limit)
    ]


@router.get("/service-orders/{order_id}", operation_id="read_service_order")
def read_service_order(session: DB, ctx: ApiCtx, order_id: uuid.UUID) -> dict[str, Any]:
    return order_out(session, orders.visible_order(session, ctx=ctx, order_id=order_id), detail=True)


@router.post("/service-orders/{order_id}/acceptance", operation_id="accept_service_order")
def accept_service_order(session: DB, ctx: ApiCtx, order_id: uuid.UUID) -> dict[str, Any]:
    return order_out(session, orders.accept_order(session, ctx=ctx, order_id=order_id))


@router.post("/service-orders/{order_id}/decline", operation_id="decline_service_order")
def decline_service_order(session: DB, ctx: ApiCtx, order_id: uuid.UUID, body: ReasonIn) -> dict[str, Any]:
    return order_out(session, orders.decline_order(session, ctx=ctx, order_id=order_id, reason=body.reason))


@router.post("/service-orders/{order_id}/completion", operation_id="complete_service_order")
def complete_service_order(
    session: DB, ctx: ApiCtx, order_id: uuid.UUID, body: CompletionIn
) -> dict[str, Any]:
    """The agency's signed, typed result. A wrong type or a bad signature is refused and nothing is saved."""
    order = orders.complete_order(
        session,
        ctx=ctx,
        order_id=order_id,
        payload=body.result,
        issued_at=body.issued_at,
        valid_until=body.valid_until,
        signature=body.signature,
        evidence_document_ids=body.evidence_document_ids,
    )
    return order_out(session, order, detail=True)


@router.post("/service-orders", operation_id="add_service_order", status_code=201)
def add_service_order(session: DB, ctx: ApiCtx, body: ManualOrderIn) -> dict[str, Any]:
    """The operator orders a service by hand."""
    order = orders.add_order(
        session,
        ctx=ctx,
        demand_id=body.demand_id,
        agency_type=body.agency_type,
        service=body.service,
        required=body.required,
    )
    return order_out(session, order)


@router.post("/service-orders/{order_id}/reassignment", operation_id="reassign_service_order")
def reassign_service_order(session: DB, ctx: ApiCtx, order_id: uuid.UUID, body: ReasonIn) -> dict[str, Any]:
    return order_out(session, orders.reassign_order(session, ctx=ctx, order_id=order_id, reason=body.reason))


@router.post("/service-orders/{order_id}/waiver", operation_id="waive_service_order")
def waive_service_order(session: DB, ctx: ApiCtx, order_id: uuid.UUID, body: ReasonIn) -> dict[str, Any]:
    """The operator waives a service (with a reason); the demand may then be listed."""
    return order_out(session, orders.waive_order(session, ctx=ctx, order_id=order_id, reason=body.reason))


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product: Product
    agency_type: AgencyType
    service: str = Field(default="*", min_length=1, max_length=60, pattern=r"^(\*|[a-z][a-z0-9_]*)$")
    required: bool = True
    description: str = Field(min_length=1, max_length=300)


def rule_out(rule: Any) -> dict[str, Any]:
    return {
        "id": str(rule.id),
        "product": rule.product,
        "agency_type": rule.agency_type,
        "service": rule.service,
        "required": rule.required,
        "description": rule.description,
    }


@router.get("/service-rules", operation_id="list_service_rules")
def list_service_rules(session: DB, ctx: ApiCtx, product: Product | None = None) -> list[dict[str, Any]]:
    """Which services each product needs (data the operator edits)."""
    return [
        rule_out(r) for r in orders.list_rules(session, ctx=ctx, product=product.value if product else None)
    ]


@router.put("/service-rules", operation_id="set_service_rule")
def set_service_rule(session: DB, ctx: ApiCtx, body: RuleIn) -> dict[str, Any]:
    """The operator adds or changes a rule; it applies to demands submitted from now on."""
    rule = orders.set_rule(
        session,
        ctx=ctx,
        product=body.product,
        agency_type=body.agency_type,
        service=body.service,
        required=body.required,
        description=body.description,
    )
    return rule_out(rule)


@router.delete("/service-rules/{rule_id}", operation_id="delete_service_rule", status_code=204)
def delete_service_rule(session: DB, ctx: ApiCtx, rule_id: uuid.UUID) -> None:
    orders.delete_rule(session, ctx=ctx, rule_id=rule_id)
