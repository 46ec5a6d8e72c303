"""JSON API of step 4: investment preferences, push settings and "recommended for you"."""

from __future__ import annotations

from decimal import Decimal

from fastapi import APIRouter

from yunrong.deps import DB, ApiCtx, SettingsDep
from yunrong.kit.money import Money
from yunrong.matching import model, service
from yunrong.matching.schemas import (
    PreferencesIn,
    PreferencesOut,
    PushSettingsIn,
    PushSettingsOut,
    ReasonOut,
    RecommendationOut,
)
from yunrong.matching.tables import InvestmentPreference

router = APIRouter(prefix="/api/v1", tags=["matching"])


def _out(row: InvestmentPreference) -> PreferencesOut:
    return PreferencesOut(
        currency=row.currency,
        amount_per_loan=str(Money(row.amount_per_loan_minor, row.currency).decimal),
        total_budget=str(Money(row.total_budget_minor, row.currency).decimal),
        min_term_months=row.min_term_months,
        max_term_months=row.max_term_months,
        grades=row.grades,
        industries=row.industries,
        regions=row.regions,
        products=row.products,
        enterprise_sizes=row.sizes,
        innovation=model.Innovation(row.innovation),
        min_transparency=row.min_transparency,
        min_guarantee_coverage=str(Decimal(row.min_guarantee_coverage_bp) / 10000),
        updated_at=row.updated_at,
    )


@router.put(
    "/me/investment-preferences", operation_id="set_investment_preferences", response_model=PreferencesOut
)
def set_investment_preferences(
    session: DB, ctx: ApiCtx, settings: SettingsDep, body: PreferencesIn
) -> PreferencesOut:
    """An admitted investor states what it wants offered; listings that now fit are pushed."""
    currency = body.currency.upper()
    prefs = model.Preferences(
        currency=currency,
        amount_per_loan_minor=Money.of(body.amount_per_loan, currency).minor,
        total_budget_minor=Money.of(body.total_budget, currency).minor,
        min_term_months=body.min_term_months,
        max_term_months=body.max_term_months,
        grades=frozenset(g.upper() for g in body.grades),
        industries=frozenset(body.industries),
        regions=frozenset(body.regions),
        products=frozenset(body.products),
        sizes=frozenset(body.enterprise_sizes),
        innovation=body.innovation,
        min_transparency=body.min_transparency,
        min_guarantee_coverage_bp=int(body.min_guarantee_coverage * 10000),
    )
    return _out(service.set_preferences(session, ctx=ctx, prefs=prefs, settings=settings))


@router.get(
    "/me/investment-preferences", operation_id="read_investment_preferences", response_model=PreferencesOut
)
def read_investment_preferences(session: DB, ctx: ApiCtx) -> PreferencesOut:
    return _out(service.read_preferences(session, ctx=ctx))


@router.put("/me/push-settings", operation_id="set_push_settings", response_model=PushSettingsOut)
def set_push_settings(session: DB, ctx: ApiCtx, body: PushSettingsIn) -> PushSettingsOut:
    """Daily cap on pushes (0 = none) and unsubscribe; "recommended for you" stays available."""
    row = service.set_push_settings(
        session, ctx=ctx, daily_cap=body.daily_cap, unsubscribed=body.unsubscribed
    )
    return PushSettingsOut(daily_cap=row.daily_cap, unsubscribed=row.unsubscribed)


@router.get("/recommendations", operation_id="list_recommendations", response_model=list[RecommendationOut])
def list_recommendations(session: DB, ctx: ApiCtx, settings: SettingsDep) -> list[RecommendationOut]:
    """Listings that fit the investor's preferences and suitability, best first, with why."""
    return [
        RecommendationOut(
            demand_id=r.demand.id,
            ref=r.demand.ref,
            title=r.demand.title,
            product=r.demand.product,
            amount=str(Money(r.demand.amount_minor, r.demand.currency).decimal),
            currency=r.demand.currency,
            term_months=r.demand.term_months,
            grade=r.listing.grade,
            product_risk=f"R{model.product_risk(r.listing.grade)}",
            annual_rate=None if r.listing.annual_rate is None else str(r.listing.annual_rate),
            transparency=r.listing.transparency,
            score=r.score.total,
            score_parts=r.score.parts,
            reasons=[ReasonOut(**x.as_dict()) for x in r.reasons],
        )
        for r in service.recommendations(session, ctx=ctx, settings=settings)
    ]
