"""Step 1 use cases: an admitted enterprise drafts, submits and withdraws financing demands.

Submitting checks the policy profile (outstanding-balance caps, term bounds, no second open
demand for one project, the legal interest cap) and then orders the third-party services the
product needs (step 2); the demand is listed when they are done or waived (step 3).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yunrong.config import Settings
from yunrong.demands.model import (
    MAX_TERM_MONTHS,
    METHODS,
    MIN_TERM_MONTHS,
    OPEN,
    AmountOverCap,
    DemandNotDraft,
    DemandStatus,
    DuplicateFinancing,
    Product,
    transition,
)
from yunrong.demands.schemas import DemandIn
from yunrong.demands.tables import Demand, DemandEvent
from yunrong.identity.model import Action, Context, OrgType
from yunrong.identity.service import require
from yunrong.identity.tables import Organisation
from yunrong.kit.clock import business_date
from yunrong.kit.errors import FieldProblem, InvalidInput, NotFound
from yunrong.kit.ids import human_ref
from yunrong.kit.money import Money, MoneyError
from yunrong.messaging.service import Message, notify_organisation
from yunrong.parties import service as parties
from yunrong.parties.tables import Document
from yunrong.supervision import rates
from yunrong.supervision import service as audit

D = DemandStatus

#: Product facts each product must carry.
REQUIRED_FACTS: dict[Product, tuple[str, ...]] = {
    Product.SUPPLY_CHAIN_RECEIVABLE: ("receivable",),
    Product.ECOMMERCE_CREDIT_LINE: ("store",),
    Product.FINANCIAL_LEASE: ("lease",),
}


def _minor(amount: Decimal, currency: str, loc: tuple[str | int, ...], problems: list[FieldProblem]) -> int:
    try:
        return Money.of(amount, currency).minor
    except MoneyError as exc:
        problems.append(FieldProblem(loc, str(exc)))
        return 0


def _facts_json(data: DemandIn) -> dict[str, Any]:
    facts = data.facts.model_dump(mode="json", exclude_none=True)
    for key in ("receivable", "inventory", "lease"):
        item = facts.get(key)
        if item:
            for money_field in ("amount", "value", "price", "residual_value"):
                if money_field in item:
                    item[f"{money_field}_minor"] = Money.of(
                        Decimal(item.pop(money_field)), data.currency
                    ).minor
    if "store" in facts:
        facts["store"]["monthly_sales_minor"] = [
            Money.of(Decimal(v), data.currency).minor for v in facts["store"].pop("monthly_sales")
        ]
    return facts


def _validate(
    session: Session, *, ctx: Context, settings: Settings, data: DemandIn
) -> tuple[int, int | None, list[dict[str, Any]]]:
    """Every problem with a demand's content, at once."""
    problems: list[FieldProblem] = []
    amount = _minor(data.amount, data.currency, ("amount",), problems)
    min_funding = (
        _minor(data.min_funding, data.currency, ("min_funding",), problems) if data.min_funding else None
    )
    if min_funding is not None and min_funding > amount:
        problems.append(FieldProblem(("min_funding",), "cannot exceed the amount"))
    uses = []
    total = 0
    for i, use in enumerate(data.use_of_funds):
        minor = _minor(use.amount, data.currency, ("use_of_funds", i, "amount"), problems)
        total += minor
        uses.append({"item": use.item, "amount_minor": minor})
    if not problems and total != amount:
        problems.append(
            FieldProblem(
                ("use_of_funds",),
                f"the breakdown sums to {Money(total, data.currency)}, not {Money(amount, data.currency)}",
            )
        )
    if data.repayment_method not in METHODS[data.product]:
        allowed = ", ".join(sorted(m.value for m in METHODS[data.product]))
        problems.append(FieldProblem(("repayment_method",), f"a {data.product.value} is repaid by {allowed}"))
    for name in REQUIRED_FACTS.get(data.product, ()):
        if getattr(data.facts, name) is None:
            problems.append(FieldProblem(("facts", name), f"required for a {data.product.value}"))
    if data.facts.lease and data.facts.lease.residual_value >= data.facts.lease.price:
        problems.append(FieldProblem(("facts", "lease", "residual_value"), "must be below the price"))
    if data.facts.receivable:
        from yunrong.parties import codes

        for msg in codes.validate_uscc(data.facts.receivable.debtor_credit_code):
            problems.append(FieldProblem(("facts", "receivable", "debtor_credit_code"), msg))
        if data.facts.receivable.due_date <= business_date(ctx.now(), settings.timezone):
            problems.append(FieldProblem(("facts", "receivable", "due_date"), "must be in the future"))
    for i, bank_id in enumerate(data.facts.target_bank_ids):
        bank = session.get(Organisation, bank_id)
        if bank is None or bank.type != OrgType.CUSTODIAN_BANK.value:
            problems.append(FieldProblem(("facts", "target_bank_ids", i), "not a bank on the platform"))
    for i, doc_id in enumerate(data.attachment_ids):
        doc = session.get(Document, doc_id)
        if doc is None or doc.organisation_id != ctx.actor.organisation_id:
            problems.append(FieldProblem(("attachment_ids", i), "no such document of yours"))
    if data.innovation.high_tech_certified and not data.innovation.certificate_number:
        problems.append(FieldProblem(("innovation", "certificate_number"), "give the certificate number"))
    cap = rates.cap_on(session, settings.policy, business_date(ctx.now(), settings.timezone))
    if cap is not None and data.max_annual_rate > cap:
        problems.append(
            FieldProblem(
                ("max_annual_rate",), f"above the legal cap of {cap.normalize()}% (4 × the one-year LPR)"
            )
        )
    if problems:
        raise InvalidInput("the demand has problems; nothing was saved", problems)
    return amount, min_funding, uses


def _event(
    session: Session,
    ctx: Context,
    demand: Demand,
    source: DemandStatus | None,
    target: DemandStatus,
    reason: str,
) -> None:
    session.add(
        DemandEvent(
            demand_id=demand.id,
            at=ctx.now(),
            actor_label=ctx.actor.email,
            from_status=source.value if source else None,
            to_status=target.value,
            reason=reason,
        )
    )


def move(session: Session, *, ctx: Context, demand: Demand, target: DemandStatus, reason: str) -> Demand:
    """The one way a demand changes status: checked against the table, recorded, audited, told."""
    source = DemandStatus(demand.status)
    demand.status = transition(source, target, reason).value
    demand.status_reason = reason
    demand.updated_at = ctx.now()
    if target is D.SUBMITTED:
        demand.submitted_at = ctx.now()
    if target is D.LISTED:
        demand.listed_at = ctx.now()
    _event(session, ctx, demand, source, target, reason)
    audit.record(
        session,
        ctx=ctx,
        action=f"demand.{target.value}",
        object_type="demand",
        object_id=demand.id,
        before={"status": source.value},
        after={"status": target.value},
        detail={"reason": reason},
    )
    notify_organisation(
        session,
        ctx=ctx,
        organisation_id=demand.organisation_id,
        message=Message(
            kind=f"demand.{target.value}",
            subject_en=f"Demand {demand.ref} is now {target.value.replace('_', ' ')}",
            subject_zh=f"融资需求 {demand.ref} 状态变为：{_ZH[target]}",
            body_en=reason,
            body_zh=reason,
            link=f"/enterprise/demands/{demand.id}",
        ),
    )
    session.flush()
    return demand


_ZH = {
    D.DRAFT: "草稿",
    D.SUBMITTED: "已提交",
    D.UNDER_VERIFICATION: "核验中",
    D.LISTED: "已挂牌",
    D.FUNDING: "募集中",
    D.FUNDED: "募集完成",
    D.FAILED: "未成功",
    D.WITHDRAWN: "已撤回",
}


def create_demand(session: Session, *, ctx: Context, settings: Settings, data: DemandIn) -> Demand:
    require(ctx, Action.CREATE_DEMAND)
    parties.require_admitted(session, ctx=ctx)
    amount, min_funding, uses = _validate(session, ctx=ctx, settings=settings, data=data)
    assert ctx.actor.organisation_id is not None
    now = ctx.now()
    demand = Demand(
        ref=human_ref("DEM"),
        organisation_id=ctx.actor.organisation_id,
        product=data.product.value,
        status=D.DRAFT.value,
        title=data.title,
        amount_minor=amount,
        min_funding_minor=min_funding,
        currency=data.currency,
        term_months=data.term_months,
        repayment_method=data.repayment_method.value,
        max_annual_rate=data.max_annual_rate,
        purpose=data.purpose,
        use_of_funds=uses,
        innovation={
            **data.innovation.model_dump(mode="json", exclude={"rd_spend"}),
            "rd_spend_minor": Money.of(data.innovation.rd_spend, data.currency).minor,
        },
        collateral=[
            {
                "kind": c.kind,
                "description": c.description,
                "value_minor": Money.of(c.value, data.currency).minor,
            }
            for c in data.collateral
        ],
        guarantee_wanted=data.guarantee_wanted,
        project_key=data.project_key.strip().lower(),
        product_facts=_facts_json(data),
        attachment_ids=[str(a) for a in data.attachment_ids],
        created_by=ctx.actor.email,
        created_at=now,
        updated_at=now,
    )
    session.add(demand)
    session.flush()
    _event(session, ctx, demand, None, D.DRAFT, "drafted")
    audit.record(
        session,
        ctx=ctx,
        action="demand.draft",
        object_type="demand",
        object_id=demand.id,
        after={"ref": demand.ref, "amount": amount, "product": demand.product},
    )
    return demand


def _open_total(session: Session, org_id: uuid.UUID, currency: str, exclude: uuid.UUID) -> int:
    """What the enterprise owes or asks for on the platform now: open and funded demands (the loan
    book will replace funded demands by outstanding principal)."""
    statuses = [s.value for s in OPEN] + [D.FUNDED.value]
    return int(
        session.scalar(
            select(func.coalesce(func.sum(Demand.amount_minor), 0)).where(
                Demand.organisation_id == org_id,
                Demand.currency == currency,
                Demand.status.in_(statuses),
                Demand.id != exclude,
            )
        )
        or 0
    )


def submit_demand(session: Session, *, ctx: Context, settings: Settings, demand_id: uuid.UUID) -> Demand:
    require(ctx, Action.CREATE_DEMAND)
    parties.require_admitted(session, ctx=ctx)
    demand = _own(session, ctx, demand_id, lock=True)
    if demand.status != D.DRAFT.value:
        raise DemandNotDraft(f"demand {demand.ref} is {demand.status}")
    policy = settings.policy
    if not MIN_TERM_MONTHS <= demand.term_months <= MAX_TERM_MONTHS:
        raise InvalidInput(
            "the term is outside the policy's bounds",
            [FieldProblem(("term_months",), f"must be {MIN_TERM_MONTHS} to {MAX_TERM_MONTHS} months")],
        )
    duplicate = session.scalar(
        select(Demand.ref).where(
            Demand.organisation_id == demand.organisation_id,
            Demand.project_key == demand.project_key,
            Demand.status.in_([s.value for s in OPEN]),
            Demand.id != demand.id,
        )
    )
    if duplicate:
        raise DuplicateFinancing(
            f"project {demand.project_key!r} already has an open demand ({duplicate}); "
            "duplicate financing is forbidden",
            [FieldProblem(("project_key",), f"open demand {duplicate}")],
        )
    outstanding = _open_total(session, demand.organisation_id, demand.currency, demand.id)
    cap = policy.legal_person_outstanding_cap if policy.currency == demand.currency else None
    if cap is not None and outstanding + demand.amount_minor > cap:
        raise AmountOverCap(
            f"{Money(outstanding, demand.currency)} outstanding plus "
            f"{Money(demand.amount_minor, demand.currency)} requested exceeds the cap of "
            f"{Money(cap, demand.currency)} per legal person on this platform",
            [FieldProblem(("amount",), f"at most {Money(max(0, cap - outstanding), demand.currency)} more")],
        )
    if policy.owner_twelve_month_cap is not None:
        since = ctx.now() - timedelta(days=365)
        raised = int(
            session.scalar(
                select(func.coalesce(func.sum(Demand.amount_minor), 0)).where(
                    Demand.organisation_id == demand.organisation_id,
                    Demand.submitted_at >= since,
                    Demand.status.notin_([D.WITHDRAWN.value, D.FAILED.value]),
                )
            )
            or 0
        )
        if raised + demand.amount_minor > policy.owner_twelve_month_cap:
            raise AmountOverCap(
                f"over the 12-month cap of {Money(policy.owner_twelve_month_cap, policy.currency)} "
                "per project owner",
                [FieldProblem(("amount",), "over the 12-month cap")],
            )
    move(session, ctx=ctx, demand=demand, target=D.SUBMITTED, reason="submitted by the enterprise")
    from yunrong.verification import orders

    created = orders.order_services(session, ctx=ctx, demand=demand)
    move(
        session,
        ctx=ctx,
        demand=demand,
        target=D.UNDER_VERIFICATION,
        reason=f"{len(created)} third-party services ordered",
    )
    orders.maybe_list(session, ctx=ctx, demand=demand)
    return demand


def withdraw_demand(session: Session, *, ctx: Context, demand_id: uuid.UUID, reason: str) -> Demand:
    require(ctx, Action.CREATE_DEMAND)
    demand = _own(session, ctx, demand_id, lock=True)
    move(session, ctx=ctx, demand=demand, target=D.WITHDRAWN, reason=reason)
    from yunrong.verification import orders

    orders.cancel_open_orders(session, ctx=ctx, demand=demand, reason="the demand was withdrawn")
    from yunrong.investing.service import cancel_round

    cancel_round(session, ctx=ctx, demand_id=demand.id)  # every commitment's hold is released
    from yunrong.investing.offers import lapse_offers_of

    lapse_offers_of(session, ctx=ctx, demand_id=demand.id, reason="the demand was withdrawn")
    return demand


def _own(session: Session, ctx: Context, demand_id: uuid.UUID, *, lock: bool = False) -> Demand:
    query = select(Demand).where(Demand.id == demand_id)
    if lock:
        query = query.with_for_update()
    demand = session.execute(query).scalar_one_or_none()
    if demand is None or demand.organisation_id != ctx.actor.organisation_id:
        raise NotFound("no such demand")
    return demand


def visible_demand(session: Session, *, ctx: Context, demand_id: uuid.UUID) -> Demand:
    """The enterprise's own demands; regulators and the operator see all (investors see listings)."""
    require(ctx, Action.READ_DEMAND)
    demand = session.get(Demand, demand_id)
    if demand is None or not (
        ctx.actor.sees_all_organisations or demand.organisation_id == ctx.actor.organisation_id
    ):
        raise NotFound("no such demand")
    return demand


def list_demands(
    session: Session, *, ctx: Context, status: DemandStatus | None = None, limit: int = 100
) -> list[Demand]:
    require(ctx, Action.READ_DEMAND)
    query = select(Demand).order_by(Demand.created_at.desc(), Demand.id.desc()).limit(limit)
    if not ctx.actor.sees_all_organisations:
        query = query.where(Demand.organisation_id == ctx.actor.organisation_id)
    if status is not None:
        query = query.where(Demand.status == status.value)
    return list(session.scalars(query).all())


def events_of(session: Session, demand_id: uuid.UUID) -> Sequence[DemandEvent]:
    return session.scalars(
        select(DemandEvent).where(DemandEvent.demand_id == demand_id).order_by(DemandEvent.at, DemandEvent.id)
    ).all()
