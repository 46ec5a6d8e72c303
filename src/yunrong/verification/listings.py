"""Step 5: what investors see of a listed demand before they decide.

A listing shows the demand's terms and the enterprise's facts that its active consents allow the
viewer's class to see (individual investors: ``investors``; institutions: ``institutions``;
regulators and the operator see everything), each marked verified (attested, valid, not revoked)
or self-declared, with the demand's transparency index. Every investor's view is recorded.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from yunrong.config import Settings
from yunrong.demands.model import DemandStatus
from yunrong.demands.tables import Demand
from yunrong.identity.model import Action, Context, InvestorKind, OrgType
from yunrong.identity.service import require
from yunrong.identity.tables import Organisation
from yunrong.kit.clock import DEFAULT_TIMEZONE
from yunrong.kit.errors import NotFound
from yunrong.parties import service as parties
from yunrong.parties.model import DataCategory, RecipientClass
from yunrong.verification.credit_file import (
    FactView,
    consented_categories,
    demand_required,
    facts_at,
    index_of,
)
from yunrong.verification.tables import ListingView
from yunrong.verification.transparency import Breakdown

LISTED = (DemandStatus.LISTED.value, DemandStatus.FUNDING.value)
ALL_CATEGORIES = frozenset(c.value for c in DataCategory)


@dataclass(frozen=True)
class Listing:
    demand: Demand
    enterprise_name: str | None  # shown only when identity is shared
    facts: list[FactView]
    shared_categories: list[str]
    hidden_categories: list[str]
    transparency: Breakdown
    viewed_at: datetime

    @property
    def categories(self) -> dict[str, list[FactView]]:
        grouped: dict[str, list[FactView]] = {}
        for fact in self.facts:
            grouped.setdefault(fact.category, []).append(fact)
        return grouped


@dataclass(frozen=True)
class ListingSummary:
    demand: Demand
    enterprise_name: str | None
    transparency: Breakdown
    verified_facts: int
    shared_categories: list[str] = field(default_factory=list)


def demand_terms(demand: Demand) -> dict[str, Any]:
    return {
        "id": str(demand.id),
        "ref": demand.ref,
        "status": demand.status,
        "product": demand.product,
        "title": demand.title,
        "amount_minor": demand.amount_minor,
        "min_funding_minor": demand.min_funding_minor,
        "currency": demand.currency,
        "term_months": demand.term_months,
        "repayment_method": demand.repayment_method,
        "max_annual_rate": str(demand.max_annual_rate),
        "purpose": demand.purpose,
        "use_of_funds": demand.use_of_funds,
        "innovation": demand.innovation,
        "collateral": demand.collateral,
        "guarantee_wanted": demand.guarantee_wanted,
        "product_facts": demand.product_facts,
        "listed_at": demand.listed_at,
    }


def _viewer_categories(
    session: Session, ctx: Context, enterprise_id: uuid.UUID, timezone: str
) -> frozenset[str]:
    """Which categories this viewer may see of this enterprise."""
    actor = ctx.actor
    if actor.sees_all_organisations:
        return ALL_CATEGORIES
    if actor.org_type is not OrgType.INVESTOR or actor.organisation_id is None:
        return frozenset()
    org = session.get(Organisation, actor.organisation_id)
    kind = org.investor_kind if org is not None else None
    recipient = (
        RecipientClass.INSTITUTIONS if kind == InvestorKind.INSTITUTION.value else RecipientClass.INVESTORS
    )
    return frozenset(consented_categories(session, enterprise_id, recipient, ctx.now(), timezone))


def _gate(session: Session, ctx: Context) -> None:
    require(ctx, Action.READ_LISTINGS)
    parties.require_admitted(session, ctx=ctx)


def read_listing(
    session: Session, *, ctx: Context, demand_id: uuid.UUID, settings: Settings | None = None
) -> Listing:
    """One listed (or funding) demand as this viewer may see it; an investor's view is recorded."""
    _gate(session, ctx)
    timezone = settings.timezone if settings else DEFAULT_TIMEZONE
    demand = session.get(Demand, demand_id)
    if demand is None or demand.status not in LISTED:
        raise NotFound("no such listing")
    now = ctx.now()
    allowed = _viewer_categories(session, ctx, demand.organisation_id, timezone)
    facts, _withheld = facts_at(session, demand.organisation_id, now)
    breakdown = index_of(facts, demand_required(demand), now)
    shown = [f for f in facts if f.category in allowed]
    present = {f.category for f in facts}
    org = session.get(Organisation, demand.organisation_id)
    name = org.name if org is not None and DataCategory.IDENTITY.value in allowed else None
    if ctx.actor.org_type is OrgType.INVESTOR:
        session.add(
            ListingView(
                demand_id=demand.id,
                viewer_org_id=ctx.actor.organisation_id,
                viewer_user_id=ctx.actor.user_id,
                at=now,
            )
        )
        session.flush()
    return Listing(
        demand=demand,
        enterprise_name=name,
        facts=shown,
        shared_categories=sorted(allowed & present),
        hidden_categories=sorted(present - allowed),
        transparency=breakdown,
        viewed_at=now,
    )


def list_listings(
    session: Session, *, ctx: Context, settings: Settings | None = None
) -> list[ListingSummary]:
    """Every listed or funding demand, newest first, with its transparency index."""
    _gate(session, ctx)
    timezone = settings.timezone if settings else DEFAULT_TIMEZONE
    now = ctx.now()
    demands = session.scalars(
        select(Demand).where(Demand.status.in_(LISTED)).order_by(Demand.listed_at.desc(), Demand.id.desc())
    ).all()
    summaries: list[ListingSummary] = []
    cache: dict[uuid.UUID, list[FactView]] = {}
    for demand in demands:
        if demand.organisation_id not in cache:
            cache[demand.organisation_id] = facts_at(session, demand.organisation_id, now)[0]
        facts = cache[demand.organisation_id]
        allowed = _viewer_categories(session, ctx, demand.organisation_id, timezone)
        org = session.get(Organisation, demand.organisation_id)
        summaries.append(
            ListingSummary(
                demand=demand,
                enterprise_name=org.name
                if org is not None and DataCategory.IDENTITY.value in allowed
                else None,
                transparency=index_of(facts, demand_required(demand), now),
                verified_facts=sum(1 for f in facts if f.verified and f.category in allowed),
                shared_categories=sorted(allowed & {f.category for f in facts}),
            )
        )
    return summaries
