"""JSON API of financing demands (step 1)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Query

from yunrong.demands import service
from yunrong.demands.model import DemandStatus, Product, RepaymentMethod
from yunrong.demands.schemas import DemandEventOut, DemandIn, DemandOut, ReasonIn
from yunrong.demands.tables import Demand
from yunrong.deps import DB, ApiCtx, SettingsDep
from yunrong.identity.tables import Organisation
from yunrong.kit.money import Money

router = APIRouter(prefix="/api/v1", tags=["demands"])


def demand_out(session: DB, demand: Demand, *, detail: bool = False) -> DemandOut:
    org = session.get(Organisation, demand.organisation_id)
    out = DemandOut(
        id=demand.id,
        ref=demand.ref,
        organisation_id=demand.organisation_id,
        enterprise_name=org.name if org else "",
        product=Product(demand.product),
        status=DemandStatus(demand.status),
        title=demand.title,
        amount=str(Money(demand.amount_minor, demand.currency).decimal),
        amount_minor=demand.amount_minor,
        min_funding_minor=demand.min_funding_minor,
        currency=demand.currency,
        term_months=demand.term_months,
        repayment_method=RepaymentMethod(demand.repayment_method),
        max_annual_rate=demand.max_annual_rate,
        purpose=demand.purpose,
        use_of_funds=demand.use_of_funds,
        innovation=demand.innovation,
        collateral=demand.collateral,
        guarantee_wanted=demand.guarantee_wanted,
        project_key=demand.project_key,
        product_facts=demand.product_facts,
        attachment_ids=demand.attachment_ids,
        status_reason=demand.status_reason,
        created_at=demand.created_at,
        submitted_at=demand.submitted_at,
        listed_at=demand.listed_at,
    )
    if detail:
        from yunrong.verification import orders

        out.events = [DemandEventOut.model_validate(e) for e in service.events_of(session, demand.id)]
        out.orders = [orders.order_summary(o) for o in orders.list_orders_of_demand(session, demand.id)]
    return out


@router.post("/demands", operation_id="create_demand", response_model=DemandOut, status_code=201)
def create_demand(session: DB, ctx: ApiCtx, settings: SettingsDep, body: DemandIn) -> DemandOut:
    """An admitted enterprise drafts a financing demand (every problem is reported at once)."""
    return demand_out(
        session, service.create_demand(session, ctx=ctx, settings=settings, data=body), detail=True
    )


@router.get("/demands", operation_id="list_demands", response_model=list[DemandOut])
def list_demands(
    session: DB, ctx: ApiCtx, status: DemandStatus | None = None, limit: int = Query(100, ge=1, le=500)
) -> list[DemandOut]:
    return [
        demand_out(session, d) for d in service.list_demands(session, ctx=ctx, status=status, limit=limit)
    ]


@router.get("/demands/{demand_id}", operation_id="read_demand", response_model=DemandOut)
def read_demand(session: DB, ctx: ApiCtx, demand_id: uuid.UUID) -> DemandOut:
    return demand_out(session, service.visible_demand(session, ctx=ctx, demand_id=demand_id), detail=True)


@router.post("/demands/{demand_id}/submission", operation_id="submit_demand", response_model=DemandOut)
def submit_demand(session: DB, ctx: ApiCtx, settings: SettingsDep, demand_id: uuid.UUID) -> DemandOut:
    """Submit a draft: policy checks, then the platform orders the third-party services it needs."""
    demand = service.submit_demand(session, ctx=ctx, settings=settings, demand_id=demand_id)
    return demand_out(session, demand, detail=True)


@router.post("/demands/{demand_id}/withdrawal", operation_id="withdraw_demand", response_model=DemandOut)
def withdraw_demand(session: DB, ctx: ApiCtx, demand_id: uuid.UUID, body: ReasonIn) -> DemandOut:
    demand = service.withdraw_demand(session, ctx=ctx, demand_id=demand_id, reason=body.reason)
    return demand_out(session, demand, detail=True)
