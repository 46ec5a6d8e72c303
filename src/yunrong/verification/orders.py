"""Step 2: the platform orders third-party services for a demand, and agencies work the orders.

Which services a product needs is data (``service_rules``, edited by the operator). Some apply
only when the demand calls for them: a guarantee when one is wanted, an IP valuation when patents
are declared, logistics monitoring when inventory is pledged.

An agency is chosen by type and catalogue service, then by region, current load, fee and
service-level time — and never both rates and guarantees one enterprise (conflict of interest).
Each order has a deadline from the agency's service-level time; a late one is escalated and can
be reassigned. Fees are recorded on the order for billing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yunrong.demands.model import DemandStatus, Product
from yunrong.demands.tables import Demand
from yunrong.identity.model import Action, Context
from yunrong.identity.service import require
from yunrong.identity.tables import Organisation
from yunrong.kit.errors import Conflict, FieldProblem, InvalidInput, NotFound
from yunrong.kit.ids import human_ref
from yunrong.kit.money import Money
from yunrong.messaging.service import Message, emit, notify_organisation
from yunrong.parties.model import AgencyType, QualificationStatus
from yunrong.parties.tables import Agency, AgencyService, Enterprise, Qualification
from yunrong.supervision import service as audit
from yunrong.verification.tables import ServiceOrder, ServiceOrderEvent, ServiceRule

A = AgencyType

#: Services every product needs: (agency type, catalogue service or "*" for any, required, description).
_COMMON: tuple[tuple[AgencyType, str, bool, str], ...] = (
    (A.AUTHENTICATION, "business_licence_check", True, "Authenticate the business licence"),
    (A.AUTHENTICATION, "bank_account_check", True, "Verify the payout bank account"),
    (A.CREDIT_RATING, "*", True, "Rate the enterprise's credit"),
    (A.GUARANTEE, "*", True, "Guarantee the loan (when a guarantee is wanted)"),
    (A.IP_VALUATION, "*", False, "Value the declared patents (when there are any)"),
)

#: What each product needs besides.
_SPECIFIC: tuple[tuple[Product, AgencyType, str, bool, str], ...] = (
    (Product.BANK_LOAN, A.APPRAISAL, "business_appraisal", False, "Appraise the business"),
    (
        Product.SUPPLY_CHAIN_RECEIVABLE,
        A.AUTHENTICATION,
        "receivable_confirmation",
        True,
        "Confirm the receivable",
    ),
    (
        Product.SUPPLY_CHAIN_RECEIVABLE,
        A.LOGISTICS_MONITORING,
        "*",
        True,
        "Monitor pledged inventory (if any)",
    ),
    (Product.ECOMMERCE_CREDIT_LINE, A.APPRAISAL, "business_appraisal", False, "Appraise the online business"),
    (Product.FINANCIAL_LEASE, A.APPRAISAL, "*", True, "Appraise the leased equipment"),
    (Product.FINANCIAL_LEASE, A.INSURANCE, "*", True, "Insure the leased equipment"),
)

#: The default rules: (product, agency type, service, required, description).
DEFAULT_RULES: tuple[tuple[Product, AgencyType, str, bool, str], ...] = (
    *((product, *rule) for product in Product for rule in _COMMON),
    *_SPECIFIC,
)

#: Rules that apply only when the demand calls for them.
CONDITIONS: dict[str, Any] = {
    A.GUARANTEE.value: lambda d: d.guarantee_wanted,
    A.IP_VALUATION.value: lambda d: bool(d.innovation.get("patents")),
    A.LOGISTICS_MONITORING.value: lambda d: "inventory" in d.product_facts,
}

#: An agency that rates an enterprise may not also guarantee it, and the reverse.
CONFLICTS: dict[str, str] = {
    A.CREDIT_RATING.value: A.GUARANTEE.value,
    A.GUARANTEE.value: A.CREDIT_RATING.value,
}

OPEN_ORDER = ("assigned", "accepted", "escalated")
DONE = ("completed", "waived")


class OrderNotOpen(Conflict):
    code = "order-not-open"
    title = "The order is not open for this"


def ensure_default_rules(session: Session) -> int:
    if session.scalar(select(func.count()).select_from(ServiceRule)):
        return 0
    for product, agency_type, service, required, description in DEFAULT_RULES:
        session.add(
            ServiceRule(
                product=product.value,
                agency_type=agency_type.value,
                service=service,
                required=required,
                description=description,
            )
        )
    session.flush()
    return len(DEFAULT_RULES)


def rules_for(session: Session, product: str) -> list[ServiceRule]:
    ensure_default_rules(session)
    return list(
        session.scalars(
            select(ServiceRule)
            .where(ServiceRule.product == product)
            .order_by(ServiceRule.agency_type, ServiceRule.service)
        ).all()
    )


def _open_load(session: Session, agency_id: uuid.UUID) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(ServiceOrder)
            .where(ServiceOrder.agency_id == agency_id, ServiceOrder.status.in_(OPEN_ORDER))
        )
        or 0
    )


def choose_agency(
    session: Session, *, enterprise_id: uuid.UUID, agency_type: str, service: str, exclude: set[uuid.UUID]
) -> tuple[Organisation, AgencyService] | None:
    """The best admitted agency for the service: same province first, then least loaded, then
    cheapest, then fastest. Agencies in conflict for this enterprise are never chosen."""
    enterprise = session.get(Enterprise, enterprise_id)
    province = enterprise.region_code[:2] if enterprise else ""
    conflicting = CONFLICTS.get(agency_type)
    conflicted: set[uuid.UUID] = set()
    if conflicting:
        conflicted = {
            row
            for row in session.scalars(
                select(ServiceOrder.agency_id).where(
                    ServiceOrder.enterprise_id == enterprise_id,
                    ServiceOrder.agency_type == conflicting,
                    ServiceOrder.status.notin_(("declined", "cancelled")),
                    ServiceOrder.agency_id.is_not(None),
                )
            ).all()
            if row is not None
        }
    query = (
        select(Organisation, Agency, AgencyService)
        .join(Agency, Agency.organisation_id == Organisation.id)
        .join(AgencyService, AgencyService.organisation_id == Organisation.id)
        .join(Qualification, Qualification.organisation_id == Organisation.id)
        .where(
            Qualification.status == QualificationStatus.APPROVED.value,
            AgencyService.agency_type == agency_type,
        )
    )
    if service != "*":
        query = query.where(AgencyService.service == service)
    candidates = []
    for org, agency, offer in session.execute(query).all():
        if org.id in exclude or org.id in conflicted or agency_type not in agency.types:
            continue
        candidates.append(
            (
                (
                    agency.region_code[:2] != province,
                    _open_load(session, org.id),
                    offer.fee_minor,
                    offer.sla_hours,
                    str(org.id),
                ),
                org,
                offer,
            )
        )
    if not candidates:
        return None
    _, org, offer = min(candidates, key=lambda c: c[0])
    return org, offer


def _event(
    session: Session, ctx: Context, order: ServiceOrder, source: str | None, target: str, reason: str
) -> None:
    session.add(
        ServiceOrderEvent(
            order_id=order.id,
            at=ctx.now(),
            actor_label=ctx.actor.email,
            from_status=source,
            to_status=target,
            agency_id=order.agency_id,
            reason=reason,
        )
    )


def _set(session: Session, ctx: Context, order: ServiceOrder, target: str, reason: str) -> None:
    source = order.status
    order.status = target
    order.status_reason = reason
    _event(session, ctx, order, source, target, reason)
    audit.record(
        session,
        ctx=ctx,
        action=f"service_order.{target}",
        object_type="service_order",
        object_id=order.id,
        before={"status": source},
        after={"status": target},
        detail={"reason": reason, "agency_id": str(order.agency_id) if order.agency_id else None},
    )


def _assign(
    session: Session, ctx: Context, order: ServiceOrder, exclude: set[uuid.UUID], reason: str
) -> None:
    choice = choose_agency(
        session,
        enterprise_id=order.enterprise_id,
        agency_type=order.agency_type,
        service=order.requested_service,
        exclude=exclude,
    )
    now = ctx.now()
    if choice is None:
        order.agency_id = None
        order.deadline_at = None
        _set(
            session, ctx, order, "unassigned", "no admitted agency offers this service; the operator must act"
        )
        return
    org, offer = choice
    order.agency_id = org.id
    order.service = offer.service
    order.fee_minor = offer.fee_minor
    order.currency = offer.currency
    order.assigned_at = now
    order.accepted_at = None
    order.escalated_at = None
    order.deadline_at = now + timedelta(hours=offer.sla_hours)
    order.assignments += 1
    _set(session, ctx, order, "assigned", reason)
    _tell_agency(session, ctx, order, "service_order.assigned")


def _tell_agency(session: Session, ctx: Context, order: ServiceOrder, event_type: str) -> None:
    assert order.agency_id is not None
    when = f"{order.deadline_at:%Y-%m-%d %H:%M} UTC" if order.deadline_at else "-"
    fee = str(Money(order.fee_minor, order.currency))
    notify_organisation(
        session,
        ctx=ctx,
        organisation_id=order.agency_id,
        message=Message(
            kind=event_type,
            subject_en=f"Service order {order.ref}: {order.service}",
            subject_zh=f"服务订单 {order.ref}：{order.service}",
            body_en=f"Deadline {when}; fee {fee}.",
            body_zh=f"截止时间 {when}；服务费 {fee}。",
            link="/agency/orders",
        ),
    )
    emit(
        session,
        ctx=ctx,
        topic="agency.webhook",
        payload={"agency_id": str(order.agency_id), "event_type": event_type, "order": order_summary(order)},
    )


def order_summary(order: ServiceOrder) -> dict[str, Any]:
    return {
        "id": str(order.id),
        "ref": order.ref,
        "demand_id": str(order.demand_id) if order.demand_id else None,
        "enterprise_id": str(order.enterprise_id),
        "agency_type": order.agency_type,
        "service": order.service,
        "status": order.status,
        "fee_minor": order.fee_minor,
        "currency": order.currency,
        "deadline_at": order.deadline_at.isoformat() if order.deadline_at else None,
    }


def _new_order(
    session: Session, ctx: Context, demand: Demand, agency_type: str, service: str, required: bool
) -> ServiceOrder:
    order = ServiceOrder(
        ref=human_ref("SO"),
        demand_id=demand.id,
        enterprise_id=demand.organisation_id,
        agency_type=agency_type,
        requested_service=service,
        service=service,
        required=required,
        status="unassigned",
        fee_minor=0,
        currency=demand.currency,
        assignments=0,
        created_by=ctx.actor.email,
        created_at=ctx.now(),
    )
    session.add(order)
    session.flush()
    _assign(session, ctx, order, set(), "ordered for the demand")
    return order


def order_services(session: Session, *, ctx: Context, demand: Demand) -> list[ServiceOrder]:
    """Order every service the product's rules ask for (in the caller's transaction)."""
    created = []
    for rule in rules_for(session, demand.product):
        condition = CONDITIONS.get(rule.agency_type)
        if condition is not None and not condition(demand):
            continue
        created.append(_new_order(session, ctx, demand, rule.agency_type, rule.service, rule.required))
    return created


def add_order(
    session: Session,
    *,
    ctx: Context,
    demand_id: uuid.UUID,
    agency_type: AgencyType,
    service: str,
    required: bool,
) -> ServiceOrder:
    """The operator orders a service by hand."""
    require(ctx, Action.MANAGE_ORDERS)
    demand = session.get(Demand, demand_id)
    if demand is None:
        raise NotFound("no such demand")
    if demand.status not in (DemandStatus.UNDER_VERIFICATION.value, DemandStatus.LISTED.value):
        raise Conflict(
            f"demand {demand.ref} is {demand.status}; services are ordered while it is verified or listed"
        )
    # A listed demand stays listed: the new result adds to its credit file.
    return _new_order(session, ctx, demand, agency_type.value, service or "*", required)


def _open_order(session: Session, order_id: uuid.UUID, *, agency_id: uuid.UUID | None = None) -> ServiceOrder:
    order = session.execute(
        select(ServiceOrder).where(ServiceOrder.id == order_id).with_for_update()
    ).scalar_one_or_none()
    if order is None or (agency_id is not None and order.agency_id != agency_id):
        raise NotFound("no such service order")
    return order


def accept_order(session: Session, *, ctx: Context, order_id: uuid.UUID) -> ServiceOrder:
    require(ctx, Action.WORK_ORDERS)
    order = _open_order(session, order_id, agency_id=ctx.actor.organisation_id)
    if order.status not in ("assigned", "escalated") or order.accepted_at is not None:
        raise OrderNotOpen(f"order {order.ref} is {order.status}")
    order.accepted_at = ctx.now()
    _set(session, ctx, order, "accepted", "accepted by the agency")
    return order


def decline_order(session: Session, *, ctx: Context, order_id: uuid.UUID, reason: str) -> ServiceOrder:
    """The agency declines; the platform reassigns to the next best agency at once."""
    require(ctx, Action.WORK_ORDERS)
    if not reason.strip():
        raise InvalidInput("say why", [FieldProblem(("reason",), "required")])
    order = _open_order(session, order_id, agency_id=ctx.actor.organisation_id)
    if order.status not in OPEN_ORDER:
        raise OrderNotOpen(f"order {order.ref} is {order.status}")
    declined_by = _declined_by(session, order) | {ctx.actor.organisation_id}
    _set(session, ctx, order, "declined", reason.strip())
    _assign(
        session, ctx, order, {a for a in declined_by if a}, f"reassigned after a decline: {reason.strip()}"
    )
    return order


def _declined_by(session: Session, order: ServiceOrder) -> set[uuid.UUID]:
    return {
        a
        for a in session.scalars(
            select(ServiceOrderEvent.agency_id).where(
                ServiceOrderEvent.order_id == order.id, ServiceOrderEvent.to_status == "declined"
            )
        ).all()
        if a
    }


def complete_order(
    session: Session,
    *,
    ctx: Context,
    order_id: uuid.UUID,
    payload: dict[str, Any],
    issued_at: datetime,
    valid_until: datetime,
    signature: str,
    evidence_document_ids: Sequence[uuid.UUID] = (),
) -> ServiceOrder:
    """The agency returns its signed result. An invalid result or signature is refused whole."""
    require(ctx, Action.WORK_ORDERS)
    order = _open_order(session, order_id, agency_id=ctx.actor.organisation_id)
    if order.status not in OPEN_ORDER:
        raise OrderNotOpen(f"order {order.ref} is {order.status}")
    from yunrong.verification import attestations

    attestation = attestations.record_attestation(
        session,
        ctx=ctx,
        order=order,
        payload=payload,
        issued_at=issued_at,
        valid_until=valid_until,
        signature=signature,
        evidence_document_ids=list(evidence_document_ids),
    )
    order.attestation_id = attestation.id
    order.completed_at = ctx.now()
    _set(session, ctx, order, "completed", f"attestation {attestation.ref}")
    demand = session.get(Demand, order.demand_id) if order.demand_id else None
    if demand is not None:
        maybe_list(session, ctx=ctx, demand=demand)
    return order


def waive_order(session: Session, *, ctx: Context, order_id: uuid.UUID, reason: str) -> ServiceOrder:
    require(ctx, Action.MANAGE_ORDERS)
    if not reason.strip():
        raise InvalidInput("a waiver needs a reason", [FieldProblem(("reason",), "required")])
    order = _open_order(session, order_id)
    if order.status in (*DONE, "cancelled"):
        raise OrderNotOpen(f"order {order.ref} is {order.status}")
    _set(session, ctx, order, "waived", reason.strip())
    demand = session.get(Demand, order.demand_id) if order.demand_id else None
    if demand is not None:
        maybe_list(session, ctx=ctx, demand=demand)
    return order


def reassign_order(session: Session, *, ctx: Context, order_id: uuid.UUID, reason: str) -> ServiceOrder:
    """The operator moves a late or unassigned order to the next best agency."""
    require(ctx, Action.MANAGE_ORDERS)
    if not reason.strip():
        raise InvalidInput("say why", [FieldProblem(("reason",), "required")])
    order = _open_order(session, order_id)
    if order.status not in (*OPEN_ORDER, "unassigned"):
        raise OrderNotOpen(f"order {order.ref} is {order.status}")
    exclude = _declined_by(session, order) | ({order.agency_id} if order.agency_id else set())
    _assign(session, ctx, order, exclude, f"reassigned by the operator: {reason.strip()}")
    return order


def escalate_late_orders(session: Session, *, ctx: Context) -> int:
    """Mark orders past their deadline as escalated and tell the operator and the agency."""
    late = session.scalars(
        select(ServiceOrder)
        .where(ServiceOrder.status.in_(("assigned", "accepted")), ServiceOrder.deadline_at < ctx.now())
        .with_for_update()
    ).all()
    for order in late:
        order.escalated_at = ctx.now()
        _set(session, ctx, order, "escalated", f"past its deadline of {order.deadline_at:%Y-%m-%d %H:%M} UTC")
        from yunrong.supervision.alerts import raise_alert

        raise_alert(
            session,
            ctx=ctx,
            kind="service_order.late",
            severity="medium",
            subject_en=f"Service order {order.ref} ({order.service}) is late",
            subject_zh=f"服务订单 {order.ref}（{order.service}）已逾期",
            detail=order_summary(order),
        )
        if order.agency_id:
            _tell_agency(session, ctx, order, "service_order.escalated")
    return len(late)


def cancel_open_orders(session: Session, *, ctx: Context, demand: Demand, reason: str) -> int:
    orders = session.scalars(
        select(ServiceOrder).where(
            ServiceOrder.demand_id == demand.id, ServiceOrder.status.in_((*OPEN_ORDER, "unassigned"))
        )
    ).all()
    for order in orders:
        _set(session, ctx, order, "cancelled", reason)
        if order.agency_id:
            _tell_agency(session, ctx, order, "service_order.cancelled")
    return len(orders)


def maybe_list(session: Session, *, ctx: Context, demand: Demand, settings: Any = None) -> bool:
    """List the demand once every required order is completed or waived."""
    if demand.status != DemandStatus.UNDER_VERIFICATION.value:
        return False
    open_required = session.scalar(
        select(func.count())
        .select_from(ServiceOrder)
        .where(
            ServiceOrder.demand_id == demand.id,
            ServiceOrder.required.is_(True),
            ServiceOrder.status.notin_(DONE),
        )
    )
    if open_required:
        return False
    from yunrong.demands.service import move

    move(
        session,
        ctx=ctx,
        demand=demand,
        target=DemandStatus.LISTED,
        reason="every required service is completed or waived",
    )
    # The automated credit decision, when a champion model exists (its grade shows on the listing).
    from yunrong.config import get_settings
    from yunrong.decisions.service import decide_if_possible

    decision = decide_if_possible(session, ctx=ctx, settings=settings or get_settings(), demand=demand)
    if decision is not None:
        # Step 4: push the listing to the investors it suits (in-app message; e-mail via the outbox).
        from yunrong.identity.model import Actor
        from yunrong.matching.service import push_listing

        platform = Context(actor=Actor.system("matching"), clock=ctx.clock, request_id=ctx.request_id)
        # Step 5: the funding window opens with the listing (bank loans wait for banks' offers).
        from yunrong.investing.service import open_round

        funding = open_round(session, ctx=platform, demand=demand, settings=settings or get_settings())
        push_listing(session, ctx=platform, demand_id=demand.id, settings=settings or get_settings())
        if funding is not None:  # standing auto-invest rules take their fair shares first
            from yunrong.investing.autoinvest import run_for_round

            run_for_round(session, ctx=platform, funding=funding, settings=settings or get_settings())
    return True


def visible_order(session: Session, *, ctx: Context, order_id: uuid.UUID) -> ServiceOrder:
    require(ctx, Action.READ_ORDERS)
    order = session.get(ServiceOrder, order_id)
    if order is None or not (
        ctx.actor.sees_all_organisations
        or ctx.actor.organisation_id in (order.agency_id, order.enterprise_id)
    ):
        raise NotFound("no such service order")
    return order


def list_orders(
    session: Session,
    *,
    ctx: Context,
    status: str | None = None,
    demand_id: uuid.UUID | None = None,
    limit: int = 200,
) -> list[ServiceOrder]:
    """Agencies see their own orders; enterprises the orders for their demands; supervisors all."""
    require(ctx, Action.READ_ORDERS)
    query = select(ServiceOrder).order_by(ServiceOrder.created_at.desc(), ServiceOrder.id.desc()).limit(limit)
    if not ctx.actor.sees_all_organisations:
        column = ServiceOrder.agency_id if ctx.actor.can(Action.WORK_ORDERS) else ServiceOrder.enterprise_id
        query = query.where(column == ctx.actor.organisation_id)
    if status:
        query = query.where(ServiceOrder.status == status)
    if demand_id:
        query = query.where(ServiceOrder.demand_id == demand_id)
    return list(session.scalars(query).all())


def events_of(session: Session, order_id: uuid.UUID) -> list[ServiceOrderEvent]:
    return list(
        session.scalars(
            select(ServiceOrderEvent)
            .where(ServiceOrderEvent.order_id == order_id)
            .order_by(ServiceOrderEvent.at, ServiceOrderEvent.id)
        ).all()
    )


def list_orders_of_demand(session: Session, demand_id: uuid.UUID) -> list[ServiceOrder]:
    return list(
        session.scalars(
            select(ServiceOrder)
            .where(ServiceOrder.demand_id == demand_id)
            .order_by(ServiceOrder.created_at, ServiceOrder.id)
        ).all()
    )


# --- the rules, as data the operator edits ----------------------------------------------------------


def list_rules(session: Session, *, ctx: Context, product: str | None = None) -> list[ServiceRule]:
    require(ctx, Action.READ_ORDERS)
    ensure_default_rules(session)
    query = select(ServiceRule).order_by(ServiceRule.product, ServiceRule.agency_type, ServiceRule.service)
    if product:
        query = query.where(ServiceRule.product == product)
    return list(session.scalars(query).all())


def set_rule(
    session: Session,
    *,
    ctx: Context,
    product: Product,
    agency_type: AgencyType,
    service: str,
    required: bool,
    description: str,
) -> ServiceRule:
    """Add or change the rule that a product needs a service (from the next submitted demand on)."""
    require(ctx, Action.MANAGE_ORDERS)
    ensure_default_rules(session)
    service = service.strip() or "*"
    rule = session.scalars(
        select(ServiceRule).where(
            ServiceRule.product == product.value,
            ServiceRule.agency_type == agency_type.value,
            ServiceRule.service == service,
        )
    ).first()
    before = None if rule is None else {"required": rule.required, "description": rule.description}
    if rule is None:
        rule = ServiceRule(
            product=product.value,
            agency_type=agency_type.value,
            service=service,
            required=required,
            description=description.strip(),
        )
        session.add(rule)
    else:
        rule.required = required
        rule.description = description.strip()
    session.flush()
    audit.record(
        session,
        ctx=ctx,
        action="service_rule.set",
        object_type="service_rule",
        object_id=rule.id,
        before=before,
        after={
            "product": product.value,
            "agency_type": agency_type.value,
            "service": service,
            "required": required,
        },
    )
    return rule


def delete_rule(session: Session, *, ctx: Context, rule_id: uuid.UUID) -> None:
    require(ctx, Action.MANAGE_ORDERS)
    rule = session.get(ServiceRule, rule_id)
    if rule is None:
        raise NotFound("no such rule")
    audit.record(
        session,
        ctx=ctx,
        action="service_rule.delete",
        object_type="service_rule",
        object_id=rule.id,
        before={"product": rule.product, "agency_type": rule.agency_type, "service": rule.service},
    )
    session.delete(rule)
    session.flush()
