"""Auto-invest: investors' standing rules commit to a new listing for them, shared out fairly.

When a round opens, every active rule in the round's currency of an admitted investor without a
commitment in the round is seen with its investor's position (available money; holdings by
enterprise, industry, region and grade, outstanding notes plus pending commitments), and
:mod:`yunrong.investing.allocation` decides each rule's ticket, fairly (water-filling with a
reproducible lottery) or, when ``settings.autoinvest_optimise`` is on, maximising expected return
within the same limits (HiGHS). Each ticket then goes through :func:`create_commitment` like a
manual one, in its own savepoint, so every rule of suitability, knowledge test, risk warning and
balance still applies; a refused ticket is skipped and recorded, and the others stand.

Portfolio shares are measured against the larger of the investor's holdings and the total budget in
its investment preferences, so a new investor can start within its limits.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yunrong.config import Settings
from yunrong.credit.grades import BY_CODE
from yunrong.custody import accounts
from yunrong.decisions.service import current_decision
from yunrong.demands.tables import Demand
from yunrong.identity.model import Action, Actor, Context, OrgType, Role
from yunrong.identity.service import require
from yunrong.identity.tables import Organisation
from yunrong.investing import allocation
from yunrong.investing import service as investing
from yunrong.investing.model import CommitmentSource, CommitmentStatus, RoundStatus
from yunrong.investing.tables import AutoInvestRule, Commitment, FundingRound, Loan, Note
from yunrong.kit.errors import FieldProblem, InvalidInput, NotFound, PermissionDenied, YunrongError
from yunrong.kit.ids import human_ref
from yunrong.ledger import service as ledger
from yunrong.matching import model as matching_model
from yunrong.matching.service import listing_of
from yunrong.matching.tables import InvestmentPreference
from yunrong.parties import service as parties
from yunrong.parties.model import QualificationStatus, blocking_status
from yunrong.parties.tables import Enterprise
from yunrong.supervision import service as audit

# --- rules ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleIn:
    name: str
    currency: str
    amount_per_loan_minor: int
    max_share_of_loan_bp: int
    max_per_enterprise_minor: int
    max_industry_bp: int
    max_region_bp: int
    max_grade_bp: int
    grades: frozenset[str]
    products: frozenset[str]
    min_transparency: int
    active: bool = True


def _problems(data: RuleIn) -> list[FieldProblem]:
    out: list[FieldProblem] = []
    if not data.name.strip():
        out.append(FieldProblem(("name",), "give the rule a name"))
    if data.amount_per_loan_minor <= 0:
        out.append(FieldProblem(("amount_per_loan",), "must be greater than zero"))
    if data.max_per_enterprise_minor < data.amount_per_loan_minor:
        out.append(FieldProblem(("max_per_enterprise",), "must be at least the amount per loan"))
    for field in ("max_share_of_loan_bp", "max_industry_bp", "max_region_bp", "max_grade_bp"):
        value = getattr(data, field)
        if not 1 <= value <= 10_000:
            out.append(FieldProblem((field.removesuffix("_bp"),), "a share between 0.01% and 100%"))
    if not 0 <= data.min_transparency <= 100:
        out.append(FieldProblem(("min_transparency",), "between 0 and 100"))
    unknown = sorted(g for g in data.grades if g not in BY_CODE)
    if unknown:
        out.append(FieldProblem(("grades",), f"unknown grades: {', '.join(unknown)}"))
    return out


def _own_investor(session: Session, ctx: Context) -> uuid.UUID:
    require(ctx, Action.MANAGE_AUTOINVEST)
    actor = ctx.actor
    if actor.org_type is not OrgType.INVESTOR or actor.organisation_id is None:
        raise PermissionDenied("only investors have auto-invest rules")
    parties.require_admitted(session, ctx=ctx)
    return actor.organisation_id


def create_rule(session: Session, *, ctx: Context, data: RuleIn) -> AutoInvestRule:
    org_id = _own_investor(session, ctx)
    problems = _problems(data)
    if problems:
        raise InvalidInput("the auto-invest rule has problems; nothing was saved", problems)
    now = ctx.now()
    row = AutoInvestRule(
        ref=human_ref("AIR", 8),
        investor_org_id=org_id,
        name=data.name.strip()[:100],
        active=data.active,
        currency=data.currency,
        amount_per_loan_minor=data.amount_per_loan_minor,
        max_share_of_loan_bp=data.max_share_of_loan_bp,
        max_per_enterprise_minor=data.max_per_enterprise_minor,
        max_industry_bp=data.max_industry_bp,
        max_region_bp=data.max_region_bp,
        max_grade_bp=data.max_grade_bp,
        grades=sorted(data.grades),
        products=sorted(data.products),
        min_transparency=data.min_transparency,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        ctx=ctx,
        action="autoinvest.rule_created",
        object_type="autoinvest_rule",
        object_id=row.id,
        after={"ref": row.ref, "amount_per_loan_minor": row.amount_per_loan_minor, "active": row.active},
    )
    return row


def own_rule(session: Session, *, ctx: Context, rule_id: uuid.UUID) -> AutoInvestRule:
    org_id = _own_investor(session, ctx)
    row = session.get(AutoInvestRule, rule_id)
    if row is None or row.investor_org_id != org_id:
        raise NotFound("no such auto-invest rule")
    return row


def set_active(session: Session, *, ctx: Context, rule_id: uuid.UUID, active: bool) -> AutoInvestRule:
    row = own_rule(session, ctx=ctx, rule_id=rule_id)
    if row.active != active:
        row.active = active
        row.updated_at = ctx.now()
        audit.record(
            session,
            ctx=ctx,
            action="autoinvest.rule_activated" if active else "autoinvest.rule_paused",
            object_type="autoinvest_rule",
            object_id=row.id,
            before={"active": not active},
            after={"active": active},
        )
    session.flush()
    return row


def list_rules(session: Session, *, ctx: Context) -> Sequence[AutoInvestRule]:
    org_id = _own_investor(session, ctx)
    return session.scalars(
        select(AutoInvestRule)
        .where(AutoInvestRule.investor_org_id == org_id)
        .order_by(AutoInvestRule.created_at)
    ).all()


# --- positions ----------------------------------------------------------------------------------------


@dataclass
class _Position:
    total: int = 0
    enterprise: int = 0
    industry: int = 0
    region: int = 0
    grade: int = 0


def _grade_of(session: Session, demand_id: uuid.UUID) -> str:
    decision = current_decision(session, demand_id)
    if decision is None:
        return ""
    return decision.override_grade or decision.grade


def _position(
    session: Session, investor_id: uuid.UUID, currency: str, target: Demand, target_grade: str
) -> _Position:
    """The investor's holdings (outstanding notes + pending commitments) split the ways the rule's
    limits look at them, relative to the target listing."""
    held: list[tuple[uuid.UUID, int]] = []
    notes = session.execute(
        select(Loan.demand_id, Note.principal_minor)
        .join(Loan, Loan.id == Note.loan_id)
        .where(Note.investor_org_id == investor_id, Note.currency == currency, Loan.status != "cancelled")
    ).all()
    held += [(d, int(a)) for d, a in notes]
    pending = session.execute(
        select(Commitment.demand_id, Commitment.amount_minor).where(
            Commitment.investor_org_id == investor_id,
            Commitment.currency == currency,
            Commitment.status == CommitmentStatus.PENDING.value,
        )
    ).all()
    held += [(d, int(a)) for d, a in pending]
    target_ent = session.get(Enterprise, target.organisation_id)
    out = _Position()
    for demand_id, amount in held:
        demand = session.get(Demand, demand_id)
        if demand is None:
            continue
        ent = session.get(Enterprise, demand.organisation_id)
        out.total += amount
        if demand.organisation_id == target.organisation_id:
            out.enterprise += amount
        if ent is not None and target_ent is not None:
            if ent.industry_code[:1] == target_ent.industry_code[:1]:
                out.industry += amount
            if ent.region_code[:2] == target_ent.region_code[:2]:
                out.region += amount
        if _grade_of(session, demand_id) == target_grade:
            out.grade += amount
    return out


def _admitted(session: Session, org_id: uuid.UUID) -> bool:
    qualification = parties.qualification_of(session, org_id)
    status = QualificationStatus(qualification.status) if qualification else None
    return blocking_status(status, OrgType.INVESTOR) is None


def _actor_for_rule(rule: AutoInvestRule) -> Actor:
    """The rule acts for its investor (recorded as such in the audit log)."""
    return Actor(
        None,
        rule.investor_org_id,
        OrgType.INVESTOR,
        frozenset({Role.INVESTOR}),
        email=f"autoinvest:{rule.ref}",
        name=f"auto-invest rule {rule.ref}",
        via="autoinvest",
    )


@dataclass(frozen=True)
class Placed:
    rule_ref: str
    amount: int
    commitment_ref: str | None
    refused: str | None  # why create_commitment refused it, when it did


def run_for_round(
    session: Session, *, ctx: Context, funding: FundingRound, settings: Settings
) -> list[Placed]:
    """Allocate the round's remaining amount across the qualifying rules and commit each ticket."""
    if funding.status != RoundStatus.OPEN.value or funding.committed_minor >= funding.target_minor:
        return []
    demand = session.get(Demand, funding.demand_id)
    decision = current_decision(session, funding.demand_id)
    if demand is None or decision is None:
        return []
    listing = listing_of(session, demand, decision, ctx)
    already = set(
        session.scalars(
            select(Commitment.investor_org_id).where(
                Commitment.round_id == funding.id, Commitment.status == CommitmentStatus.PENDING.value
            )
        )
    )
    rules = session.scalars(
        select(AutoInvestRule)
        .where(
            AutoInvestRule.active.is_(True),
            AutoInvestRule.currency == funding.currency,
            AutoInvestRule.investor_org_id != demand.organisation_id,
        )
        .order_by(AutoInvestRule.id)
    ).all()
    expected = float(matching_model.expected_return(listing))
    views: list[allocation.RuleView] = []
    by_id: dict[str, AutoInvestRule] = {}
    for rule in rules:
        if rule.investor_org_id in already or not _admitted(session, rule.investor_org_id):
            continue
        org = session.get(Organisation, rule.investor_org_id)
        if org is None:
            continue
        position = _position(session, rule.investor_org_id, funding.currency, demand, listing.grade)
        prefs = session.get(InvestmentPreference, rule.investor_org_id)
        budget = prefs.total_budget_minor if prefs is not None and prefs.currency == funding.currency else 0
        account = accounts.investor_available(session, ctx, org, funding.currency)
        views.append(
            allocation.RuleView(
                rule_id=str(rule.id),
                investor_id=str(rule.investor_org_id),
                amount_per_loan=rule.amount_per_loan_minor,
                max_share_of_loan_bp=rule.max_share_of_loan_bp,
                max_per_enterprise=rule.max_per_enterprise_minor,
                max_industry_bp=rule.max_industry_bp,
                max_region_bp=rule.max_region_bp,
                max_grade_bp=rule.max_grade_bp,
                grades=frozenset(rule.grades),
                products=frozenset(rule.products),
                min_transparency=rule.min_transparency,
                available=max(0, ledger.balance(session, account.id).available),
                portfolio_total=max(position.total, budget),
                held_in_enterprise=position.enterprise,
                held_in_industry=position.industry,
                held_in_region=position.region,
                held_in_grade=position.grade,
                expected_return=expected,
            )
        )
        by_id[str(rule.id)] = rule
    if not views:
        return []
    view = allocation.ListingView(
        listing_id=str(demand.id),
        amount=funding.target_minor,
        remaining=funding.target_minor - funding.committed_minor,
        min_ticket=funding.min_ticket_minor,
        max_ticket=funding.max_ticket_minor,
        grade=listing.grade,
        product=demand.product,
        industry=listing.industry_code,
        region=listing.region_code,
        transparency=listing.transparency,
        expected_return=expected,
    )
    allocate = allocation.allocate_optimal if settings.autoinvest_optimise else allocation.allocate_fair
    tickets = allocate(views, view)
    placed: list[Placed] = []
    for rule_id, amount in sorted(
        tickets.items(), key=lambda kv: allocation.lottery_key(str(demand.id), kv[0])
    ):
        rule = by_id[rule_id]
        rule_ctx = Context(actor=_actor_for_rule(rule), clock=ctx.clock, request_id=ctx.request_id)
        savepoint = session.begin_nested()
        try:
            commitment = investing.create_commitment(
                session,
                ctx=rule_ctx,
                settings=settings,
                source=CommitmentSource.AUTOINVEST,
                rule_id=rule.id,
                req=investing.CommitRequest(
                    demand_id=demand.id, amount=amount, currency=funding.currency, accept_agreement=True
                ),
            )
        except YunrongError as exc:
            savepoint.rollback()
            placed.append(Placed(rule.ref, amount, None, str(exc)))
            continue
        savepoint.commit()
        placed.append(Placed(rule.ref, amount, commitment.ref, None))
    audit.record(
        session,
        ctx=ctx,
        action="autoinvest.allocated",
        object_type="demand",
        object_id=demand.id,
        after={
            "method": "optimal" if settings.autoinvest_optimise else "fair",
            "rules_considered": len(views),
            "placed": [(p.rule_ref, p.amount, p.commitment_ref) for p in placed if p.commitment_ref],
            "refused": [(p.rule_ref, p.refused) for p in placed if p.refused],
        },
    )
    return placed


def run_for_demand(
    session: Session, *, ctx: Context, demand_id: uuid.UUID, settings: Settings
) -> list[Placed]:
    """Called by the platform when a round opens."""
    funding = session.execute(
        select(FundingRound)
        .where(FundingRound.demand_id == demand_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if funding is None:
        return []
    return run_for_round(session, ctx=ctx, funding=funding, settings=settings)


def count_active(session: Session, currency: str) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(AutoInvestRule)
            .where(AutoInvestRule.active.is_(True), AutoInvestRule.currency == currency)
        )
        or 0
    )
