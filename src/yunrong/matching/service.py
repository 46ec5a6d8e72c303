"""Step 4: investors' preferences, "recommended for you", and pushing listings to investors.

Nobody is pushed (or recommended) a listing outside their preferences or their suitability
(:func:`yunrong.matching.model.fits` and :func:`yunrong.matching.model.suitable`). A push is made at
most once per investor and demand, never to an unsubscribed investor, and not beyond the investor's
daily cap (a rolling 24 hours); each push is an in-app message to every user of the investor, and
an e-mail through the outbox.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yunrong.config import Settings
from yunrong.decisions.service import current_decision
from yunrong.decisions.tables import CreditDecision
from yunrong.demands.tables import Demand
from yunrong.identity.model import Action, Context, OrgType
from yunrong.identity.service import require
from yunrong.kit.errors import FieldProblem, InvalidInput, NotFound, PermissionDenied
from yunrong.matching import model, vector
from yunrong.matching.tables import InvestmentPreference, Push, PushSettings
from yunrong.messaging import service as messaging
from yunrong.parties import service as parties
from yunrong.parties.model import QualificationStatus, blocking_status
from yunrong.parties.risk import RiskLevel
from yunrong.parties.tables import Enterprise, Investor, Qualification
from yunrong.supervision import service as audit
from yunrong.supervision.policy import PolicyProfile, profile
from yunrong.verification.credit_file import demand_index
from yunrong.verification.listings import LISTED


@dataclass(frozen=True)
class Recommendation:
    demand: Demand
    listing: model.Listing
    score: model.Score
    reasons: list[model.Reason]


def _policy(settings: Settings | None) -> PolicyProfile:
    return settings.policy if settings is not None else profile("cn-2016")


def _own_investor(session: Session, ctx: Context) -> uuid.UUID:
    actor = ctx.actor
    if actor.org_type is not OrgType.INVESTOR or actor.organisation_id is None:
        raise PermissionDenied("only investors have investment preferences")
    parties.require_admitted(session, ctx=ctx)
    return actor.organisation_id


def preferences_of(row: InvestmentPreference) -> model.Preferences:
    return model.Preferences(
        currency=row.currency,
        amount_per_loan_minor=row.amount_per_loan_minor,
        total_budget_minor=row.total_budget_minor,
        min_term_months=row.min_term_months,
        max_term_months=row.max_term_months,
        grades=frozenset(row.grades),
        industries=frozenset(row.industries),
        regions=frozenset(row.regions),
        products=frozenset(row.products),
        sizes=frozenset(row.sizes),
        innovation=model.Innovation(row.innovation),
        min_transparency=row.min_transparency,
        min_guarantee_coverage_bp=row.min_guarantee_coverage_bp,
    )


def set_preferences(
    session: Session, *, ctx: Context, prefs: model.Preferences, settings: Settings | None = None
) -> InvestmentPreference:
    """Save the investor's preferences (every problem reported at once), then push what now fits."""
    require(ctx, Action.SET_INVESTMENT_PREFERENCES)
    org_id = _own_investor(session, ctx)
    policy = _policy(settings)
    found = model.problems(prefs)
    if prefs.currency != policy.currency:
        found.append(("currency", f"must be {policy.currency} under the {policy.key} profile"))
    if found:
        raise InvalidInput(
            "the preferences have problems",
            problems=[FieldProblem(("body", name), msg) for name, msg in found],
        )
    row = session.get(InvestmentPreference, org_id)
    before = None if row is None else _as_dict(row)
    if row is None:
        row = InvestmentPreference(organisation_id=org_id)
        session.add(row)
    row.currency = prefs.currency
    row.amount_per_loan_minor = prefs.amount_per_loan_minor
    row.total_budget_minor = prefs.total_budget_minor
    row.min_term_months = prefs.min_term_months
    row.max_term_months = prefs.max_term_months
    row.grades = sorted(prefs.grades)
    row.industries = sorted(prefs.industries)
    row.regions = sorted(prefs.regions)
    row.products = sorted(prefs.products)
    row.sizes = sorted(prefs.sizes)
    row.innovation = prefs.innovation.value
    row.min_transparency = prefs.min_transparency
    row.min_guarantee_coverage_bp = prefs.min_guarantee_coverage_bp
    row.updated_by = ctx.actor.email
    row.updated_at = ctx.now()
    session.flush()
    audit.record(
        session,
        ctx=ctx,
        action="matching.preferences_set",
        object_type="investment_preferences",
        object_id=org_id,
        before=before,
        after=_as_dict(row),
    )
    push_for_investor(session, ctx=ctx, investor_org_id=org_id, settings=settings)
    return row


def _as_dict(row: InvestmentPreference) -> dict[str, object]:
    return {
        "currency": row.currency,
        "amount_per_loan_minor": row.amount_per_loan_minor,
        "total_budget_minor": row.total_budget_minor,
        "min_term_months": row.min_term_months,
        "max_term_months": row.max_term_months,
        "grades": list(row.grades),
        "industries": list(row.industries),
        "regions": list(row.regions),
        "products": list(row.products),
        "sizes": list(row.sizes),
        "innovation": row.innovation,
        "min_transparency": row.min_transparency,
        "min_guarantee_coverage_bp": row.min_guarantee_coverage_bp,
    }


def read_preferences(session: Session, *, ctx: Context) -> InvestmentPreference:
    require(ctx, Action.READ_INVESTMENT_PREFERENCES)
    org_id = _own_investor(session, ctx)
    row = session.get(InvestmentPreference, org_id)
    if row is None:
        raise NotFound("no investment preferences yet")
    return row


def push_settings_of(session: Session, org_id: uuid.UUID) -> PushSettings:
    row = session.get(PushSettings, org_id)
    if row is None:
        return PushSettings(organisation_id=org_id, daily_cap=model.DEFAULT_DAILY_CAP, unsubscribed=False)
    return row


def set_push_settings(session: Session, *, ctx: Context, daily_cap: int, unsubscribed: bool) -> PushSettings:
    require(ctx, Action.SET_PUSH_SETTINGS)
    org_id = _own_investor(session, ctx)
    if not 0 <= daily_cap <= model.MAX_DAILY_CAP:
        raise InvalidInput(
            "the push settings have problems",
            problems=[FieldProblem(("body", "daily_cap"), f"must be between 0 and {model.MAX_DAILY_CAP}")],
        )
    row = session.get(PushSettings, org_id)
    if row is None:
        row = PushSettings(organisation_id=org_id)
        session.add(row)
    row.daily_cap = daily_cap
    row.unsubscribed = unsubscribed
    row.updated_at = ctx.now()
    session.flush()
    audit.record(
        session,
        ctx=ctx,
        action="matching.push_settings_set",
        object_type="push_settings",
        object_id=org_id,
        after={"daily_cap": daily_cap, "unsubscribed": unsubscribed},
    )
    return row


# --- listings and investors as matching sees them ---------------------------------------------------


def rating_of(decision: CreditDecision) -> model.Rating:
    """The grade and verdict in force: the credit committee's override, else the model's."""
    grade = decision.override_grade or decision.grade
    declined = decision.declined if decision.override_declined is None else decision.override_declined
    return model.Rating(grade, declined)


def listing_of(session: Session, demand: Demand, decision: CreditDecision, ctx: Context) -> model.Listing:
    enterprise = session.get(Enterprise, demand.organisation_id)
    innovation = demand.innovation or {}
    collateral = sum(int(c.get("value_minor", 0)) for c in demand.collateral or [])
    rating = rating_of(decision)
    return model.Listing(
        demand_id=str(demand.id),
        currency=demand.currency,
        amount_minor=demand.amount_minor,
        term_months=demand.term_months,
        product=demand.product,
        grade=rating.grade,
        pd=decision.pd,
        annual_rate=decision.annual_rate,
        declined=rating.declined,
        industry_code=enterprise.industry_code if enterprise else "",
        region_code=enterprise.region_code if enterprise else "",
        size_class=enterprise.size_class if enterprise else "",
        innovative=bool(innovation.get("high_tech_certified") or innovation.get("patents")),
        transparency=demand_index(session, demand, ctx.now()).score,
        guarantee_coverage_bp=min(10000, collateral * 10000 // max(1, demand.amount_minor)),
    )


def _listings(session: Session, ctx: Context) -> list[tuple[Demand, model.Listing]]:
    demands = session.scalars(
        select(Demand).where(Demand.status.in_(LISTED)).order_by(Demand.listed_at.desc(), Demand.id.desc())
    ).all()
    out: list[tuple[Demand, model.Listing]] = []
    for demand in demands:
        decision = current_decision(session, demand.id)
        if decision is not None:
            out.append((demand, listing_of(session, demand, decision, ctx)))
    return out


def investor_profile(session: Session, org_id: uuid.UUID) -> model.InvestorProfile:
    row = session.get(Investor, org_id)
    if row is None:
        return model.InvestorProfile(kind="person", risk_level=None, net_worth_minor=0)
    return model.InvestorProfile(
        kind=row.kind,
        risk_level=RiskLevel(row.risk_level) if row.risk_level else None,
        net_worth_minor=row.net_worth_minor,
    )


def _industry_pushes(session: Session, org_id: uuid.UUID) -> dict[str, int]:
    """How many pushes the investor had per industry section (the letter)."""
    counts: dict[str, int] = {}
    for code in session.scalars(select(Push.industry_code).where(Push.investor_org_id == org_id)):
        counts[code[:1]] = counts.get(code[:1], 0) + 1
    return counts


def match(
    prefs: model.Preferences,
    investor: model.InvestorProfile,
    listing: model.Listing,
    policy: PolicyProfile,
    industry_pushes: dict[str, int],
) -> tuple[bool, model.Score, list[model.Reason]]:
    """Filter (preferences and suitability) and score; the reasons say why."""
    ok, reasons = model.fits(prefs, listing)
    unsuitable = model.suitable(investor, listing, prefs, policy)
    if not ok or unsuitable:
        return False, model.Score(0.0), (reasons if not ok else []) + unsuitable
    score = model.score(prefs, investor, listing, industry_pushes.get(listing.industry_code[:1], 0))
    risk = model.product_risk(listing.grade)
    extra = [
        model.Reason(
            "suitable",
            f"R{risk} is within your {investor.risk_level.value if investor.risk_level else ''} appetite",
            f"R{risk} 在您的风险承受范围内",
        ),
        model.Reason(
            "expected-return",
            f"expected return {model.expected_return(listing):.2%} after expected loss",
            f"扣除预期损失后的预期收益 {model.expected_return(listing):.2%}",
        ),
    ]
    return True, score, reasons + extra


def recommendations(
    session: Session, *, ctx: Context, settings: Settings | None = None
) -> list[Recommendation]:
    """Listed demands with a current decision that fit this investor's preferences and suitability,
    best first, each with why. No preferences yet: nothing is recommended."""
    require(ctx, Action.LIST_RECOMMENDATIONS)
    org_id = _own_investor(session, ctx)
    row = session.get(InvestmentPreference, org_id)
    if row is None:
        return []
    prefs = preferences_of(row)
    investor = investor_profile(session, org_id)
    policy = _policy(settings)
    pushes = _industry_pushes(session, org_id)
    out: list[Recommendation] = []
    for demand, listing in _listings(session, ctx):
        ok, score, reasons = match(prefs, investor, listing, policy, pushes)
        if ok:
            out.append(Recommendation(demand, listing, score, reasons))
    out.sort(key=lambda r: (-r.score.total, r.listing.demand_id))
    return out


# --- push --------------------------------------------------------------------------------------------


def _admitted_investors_with_preferences(session: Session) -> list[InvestmentPreference]:
    query = (
        select(InvestmentPreference, Qualification.status)
        .outerjoin(Qualification, Qualification.organisation_id == InvestmentPreference.organisation_id)
        .order_by(InvestmentPreference.organisation_id)
    )
    admitted: list[InvestmentPreference] = []
    for row, known in session.execute(query):
        status = QualificationStatus(known) if known else None
        if blocking_status(status, OrgType.INVESTOR) is None:
            admitted.append(row)
    return admitted


def _room(session: Session, ctx: Context, org_id: uuid.UUID) -> int:
    """How many more pushes the investor takes now: 0 when unsubscribed or at the daily cap."""
    settings = push_settings_of(session, org_id)
    if settings.unsubscribed:
        return 0
    since = ctx.now() - timedelta(days=1)
    recent = session.scalar(
        select(func.count()).where(Push.investor_org_id == org_id, Push.pushed_at >= since)
    )
    return max(0, settings.daily_cap - int(recent or 0))


def _already(session: Session, org_id: uuid.UUID, demand_id: uuid.UUID) -> bool:
    return (
        session.scalar(select(Push.id).where(Push.investor_org_id == org_id, Push.demand_id == demand_id))
        is not None
    )


def _push(
    session: Session,
    ctx: Context,
    org_id: uuid.UUID,
    demand: Demand,
    listing: model.Listing,
    score: model.Score,
    reasons: list[model.Reason],
) -> Push:
    push = Push(
        investor_org_id=org_id,
        demand_id=demand.id,
        industry_code=listing.industry_code,
        score=score.total,
        reasons=[r.as_dict() for r in reasons],
        pushed_at=ctx.now(),
    )
    session.add(push)
    session.flush()
    why_en = "; ".join(r.en for r in reasons[:4])
    why_zh = "；".join(r.zh for r in reasons[:4])
    messaging.notify_organisation(
        session,
        ctx=ctx,
        organisation_id=org_id,
        message=messaging.Message(
            kind="matching.push",
            subject_en=f"Recommended for you: {demand.title} (grade {listing.grade})",
            subject_zh=f"为您推荐：{demand.title}（等级 {listing.grade}）",
            body_en=f"{demand.ref} matches your preferences: {why_en}. "
            "Change your preferences or unsubscribe under your push settings.",
            body_zh=f"{demand.ref} 符合您的偏好：{why_zh}。可在推送设置中修改偏好或退订。",
            link=f"/investor/listings/{demand.id}",
        ),
    )
    from yunrong.verification import webhooks  # here, not at the top: this change stays in _push

    # An institution with a webhook also gets the push as a signed event (others: nothing queued).
    webhooks.emit_to_organisation(
        session,
        ctx=ctx,
        organisation_id=org_id,
        event_type="matching.push",
        payload={
            "push_id": str(push.id),
            "demand_id": str(demand.id),
            "demand_ref": demand.ref,
            "title": demand.title,
            "grade": listing.grade,
            "amount_minor": listing.amount_minor,
            "currency": listing.currency,
            "term_months": listing.term_months,
            "annual_rate": str(listing.annual_rate) if listing.annual_rate is not None else None,
            "reasons": push.reasons,
            "link": f"/investor/listings/{demand.id}",
        },
    )
    return push


def push_listing(
    session: Session, *, ctx: Context, demand_id: uuid.UUID, settings: Settings | None = None
) -> list[Push]:
    """Rank every admitted investor with preferences against one listing and push to those it fits,
    best first, honouring unsubscribe and daily caps; a pair already pushed is not pushed again.
    The platform calls this (a system actor) when a demand is listed.

    The ranking is :func:`yunrong.matching.vector.rank_investors` over all the investors at once
    (the same set, scores and order as :func:`match` one by one, property-tested); ``match`` then
    gives the reasons for the ones pushed."""
    if not ctx.actor.is_system:
        raise PermissionDenied("only the platform pushes listings")
    demand = session.get(Demand, demand_id)
    if demand is None or demand.status not in LISTED:
        raise NotFound("no such listing")
    decision = current_decision(session, demand.id)
    if decision is None:
        return []
    listing = listing_of(session, demand, decision, ctx)
    policy = _policy(settings)
    # Ties go by investor, as str(organisation_id): encode the investors in that order.
    rows = sorted(_admitted_investors_with_preferences(session), key=lambda r: str(r.organisation_id))
    if not rows:
        return []
    org_ids = [row.organisation_id for row in rows]
    prefs = [preferences_of(row) for row in rows]
    profiles = _investor_profiles(session)
    investors = [profiles.get(org_id, _NO_PROFILE) for org_id in org_ids]
    section = listing.industry_code[:1]
    in_section = _section_pushes(session, section)
    same = [in_section.get(org_id, 0) for org_id in org_ids]
    matrix = vector.ProfileMatrix.from_profiles(list(zip(prefs, investors, strict=True)))
    ranked, _scores = vector.rank_investors(matrix, listing, policy, same)
    pushed: list[Push] = []
    for i in ranked.tolist():
        org_id = org_ids[i]
        if _already(session, org_id, demand.id) or _room(session, ctx, org_id) <= 0:
            continue
        ok, score, reasons = match(prefs[i], investors[i], listing, policy, {section: same[i]})
        assert ok, "the vector ranking and match() disagree"
        pushed.append(_push(session, ctx, org_id, demand, listing, score, reasons))
    return pushed


_NO_PROFILE = model.InvestorProfile(kind="person", risk_level=None, net_worth_minor=0)


def _investor_profiles(session: Session) -> dict[uuid.UUID, model.InvestorProfile]:
    """Every investor's suitability profile, in one query (see :func:`investor_profile`)."""
    return {
        row.organisation_id: model.InvestorProfile(
            kind=row.kind,
            risk_level=RiskLevel(row.risk_level) if row.risk_level else None,
            net_worth_minor=row.net_worth_minor,
        )
        for row in session.scalars(select(Investor))
    }


def _section_pushes(session: Session, section: str) -> dict[uuid.UUID, int]:
    """How many listings of the industry section (the letter) each investor was pushed already."""
    query = (
        select(Push.investor_org_id, func.count())
        .where(func.substr(Push.industry_code, 1, 1) == section)
        .group_by(Push.investor_org_id)
    )
    return {org_id: int(count) for org_id, count in session.execute(query)}


def push_for_investor(
    session: Session, *, ctx: Context, investor_org_id: uuid.UUID, settings: Settings | None = None
) -> list[Push]:
    """After the investor's preferences change: push the best fitting listings not yet pushed,
    within the daily cap (nothing when unsubscribed)."""
    row = session.get(InvestmentPreference, investor_org_id)
    if row is None:
        return []
    prefs = preferences_of(row)
    investor = investor_profile(session, investor_org_id)
    policy = _policy(settings)
    pushes = _industry_pushes(session, investor_org_id)
    ranked: list[tuple[Demand, model.Listing, model.Score, list[model.Reason]]] = []
    for demand, listing in _listings(session, ctx):
        ok, score, reasons = match(prefs, investor, listing, policy, pushes)
        if ok and not _already(session, investor_org_id, demand.id):
            ranked.append((demand, listing, score, reasons))
    ranked.sort(key=lambda t: (-t[2].total, t[1].demand_id))
    room = _room(session, ctx, investor_org_id)
    return [_push(session, ctx, investor_org_id, *item) for item in ranked[:room]]
