"""The shared credit file: every fact about an enterprise with its provenance (self-declared, attested
by which agency, or from a data feed), when it was observed and recorded, and until when it is valid.

Facts are never edited: a newer fact of the same key from the same source supersedes the older
one from that moment, and a revoked attestation supersedes the facts it gave. So the file can be
read as it stood at any instant (``as_of``). Attested facts are re-verified on every read; one
whose attestation no longer verifies is withheld, never shown as a fact.

Who may read a file: the enterprise itself, regulators and the operator, and agencies with an order
for the enterprise (those see the categories the enterprise consented to show agencies, plus what
they attested themselves). Investors see facts only through a listing. Everyone else: 404.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from yunrong.config import Settings
from yunrong.demands.model import Product
from yunrong.demands.tables import Demand
from yunrong.identity.model import Action, Context, OrgType
from yunrong.identity.service import require
from yunrong.identity.tables import Organisation
from yunrong.kit.clock import DEFAULT_TIMEZONE, business_date, ensure_utc
from yunrong.kit.errors import FieldProblem, InvalidInput, NotFound
from yunrong.parties import service as parties
from yunrong.parties.model import DataCategory, PersonRole, RecipientClass
from yunrong.parties.tables import Consent, Enterprise, EnterprisePerson
from yunrong.supervision import service as audit
from yunrong.verification import attestations
from yunrong.verification.tables import Attestation, CreditFact, ServiceOrder
from yunrong.verification.transparency import Breakdown, Signal, transparency_index

C = DataCategory

#: What an investor needs about any enterprise: who it is, its finances, its credit standing, and
#: third parties' findings (bank account, guarantees, insurance).
ENTERPRISE_REQUIRED: tuple[str, ...] = (
    C.IDENTITY.value,
    C.FINANCIALS.value,
    C.CREDIT_SCORE.value,
    C.ATTESTATIONS.value,
)

#: Order statuses in which an agency works for the enterprise (and so may read its file).
AGENCY_READS_IN = ("assigned", "accepted", "escalated", "completed")


def demand_required(demand: Demand) -> tuple[str, ...]:
    """The categories a demand's investors need: the enterprise's, plus what the product rests on."""
    extra: list[str] = []
    if demand.product == Product.SUPPLY_CHAIN_RECEIVABLE.value and "inventory" in (
        demand.product_facts or {}
    ):
        extra.append(C.SUPPLY_CHAIN.value)
    if demand.product == Product.ECOMMERCE_CREDIT_LINE.value:
        extra.append(C.ECOMMERCE.value)
    return (*ENTERPRISE_REQUIRED, *extra)


@dataclass(frozen=True)
class FactView:
    id: uuid.UUID
    category: str
    key: str
    value: Any
    provenance: str
    source_label: str
    source_org_id: uuid.UUID | None
    attestation_id: uuid.UUID | None
    attestation_ref: str | None
    kind: str | None
    observed_at: datetime
    recorded_at: datetime
    valid_until: datetime | None
    #: verified (attested, valid at as_of) | expired | self_declared | data_feed
    status: str

    @property
    def verified(self) -> bool:
        return self.status == "verified"

    def signal(self) -> Signal:
        return Signal(
            category=self.category,
            provenance=self.provenance,
            valid=self.verified,
            agency_id=str(self.source_org_id) if self.provenance == "attested" else None,
            kind=self.kind,
            issued_at=self.observed_at,
            valid_until=self.valid_until,
        )


@dataclass(frozen=True)
class Withheld:
    attestation_id: uuid.UUID
    attestation_ref: str
    reason: str


@dataclass(frozen=True)
class CreditFile:
    enterprise_id: uuid.UUID
    enterprise_name: str
    as_of: datetime
    facts: list[FactView]
    transparency: Breakdown
    withheld: list[Withheld] = field(default_factory=list)

    @property
    def categories(self) -> dict[str, list[FactView]]:
        grouped: dict[str, list[FactView]] = {}
        for fact in self.facts:
            grouped.setdefault(fact.category, []).append(fact)
        return grouped


# --- reading -----------------------------------------------------------------------------------------


def facts_at(
    session: Session, enterprise_id: uuid.UUID, as_of: datetime
) -> tuple[list[FactView], list[Withheld]]:
    """The facts current at ``as_of`` (recorded by then, not superseded by then), each judged as of
    then; attested facts whose attestation no longer verifies are withheld."""
    rows = session.scalars(
        select(CreditFact)
        .where(
            CreditFact.enterprise_id == enterprise_id,
            CreditFact.recorded_at <= as_of,
            or_(CreditFact.superseded_at.is_(None), CreditFact.superseded_at > as_of),
        )
        .order_by(CreditFact.category, CreditFact.key, CreditFact.recorded_at, CreditFact.id)
    ).all()
    attestation_ids = {r.attestation_id for r in rows if r.attestation_id is not None}
    loaded = (
        {a.id: a for a in session.scalars(select(Attestation).where(Attestation.id.in_(attestation_ids)))}
        if attestation_ids
        else {}
    )
    verdicts = {aid: attestations.check(session, a, as_of) for aid, a in loaded.items()}
    facts: list[FactView] = []
    withheld: dict[uuid.UUID, Withheld] = {}
    for row in rows:
        attestation = loaded.get(row.attestation_id) if row.attestation_id else None
        if row.provenance == "attested":
            verdict = verdicts.get(row.attestation_id) if row.attestation_id else None
            if attestation is None or verdict is None or not verdict["signature_valid"]:
                if attestation is not None:
                    withheld[attestation.id] = Withheld(
                        attestation.id, attestation.ref, "the attestation's signature does not verify"
                    )
                continue
            if verdict["revoked"]:
                continue  # revoked by as_of (its facts are superseded then too)
            status = "expired" if verdict["expired"] else "verified"
        else:
            expired = row.valid_until is not None and row.valid_until <= as_of
            status = "expired" if expired else row.provenance
        facts.append(
            FactView(
                id=row.id,
                category=row.category,
                key=row.key,
                value=row.value,
                provenance=row.provenance,
                source_label=row.source_label,
                source_org_id=row.source_org_id,
                attestation_id=row.attestation_id,
                attestation_ref=attestation.ref if attestation else None,
                kind=attestation.kind if attestation else None,
                observed_at=row.observed_at,
                recorded_at=row.recorded_at,
                valid_until=row.valid_until,
                status=status,
            )
        )
    return facts, list(withheld.values())


def index_of(facts: Iterable[FactView], required: Sequence[str], now: datetime) -> Breakdown:
    return transparency_index([f.signal() for f in facts], required, now)


def demand_index(session: Session, demand: Demand, now: datetime) -> Breakdown:
    """The transparency index of one demand: the enterprise's facts against what the demand needs."""
    facts, _ = facts_at(session, demand.organisation_id, now)
    return index_of(facts, demand_required(demand), now)


def _enterprise_org(session: Session, enterprise_id: uuid.UUID) -> Organisation | None:
    org = session.get(Organisation, enterprise_id)
    if org is None or org.type != OrgType.ENTERPRISE.value:
        return None
    return org


def consented_categories(
    session: Session, enterprise_id: uuid.UUID, recipient: RecipientClass, now: datetime, timezone: str
) -> set[str]:
    today = business_date(now, timezone)
    rows = session.scalars(
        select(Consent).where(
            Consent.organisation_id == enterprise_id, Consent.recipient_class == recipient.value
        )
    ).all()
    return {row.data_category for row in rows if parties.consent_active(row, today)}


def _scope(
    session: Session, *, ctx: Context, enterprise_id: uuid.UUID, timezone: str
) -> tuple[Organisation, set[str] | None]:
    """The enterprise and which categories the actor may see (None: all); 404 for everyone else."""
    require(ctx, Action.READ_CREDIT_FILE)
    org = _enterprise_org(session, enterprise_id)
    actor = ctx.actor
    if org is None:
        raise NotFound("no such credit file")
    if actor.sees_all_organisations or actor.organisation_id == enterprise_id:
        return org, None
    if actor.org_type is OrgType.AGENCY and actor.organisation_id is not None:
        works_for = session.scalar(
            select(ServiceOrder.id)
            .where(
                ServiceOrder.agency_id == actor.organisation_id,
                ServiceOrder.enterprise_id == enterprise_id,
                ServiceOrder.status.in_(AGENCY_READS_IN),
            )
            .limit(1)
        )
        if works_for is not None:
            parties.require_admitted(session, ctx=ctx)
            return org, consented_categories(
                session, enterprise_id, RecipientClass.AGENCIES, ctx.now(), timezone
            )
    raise NotFound("no such credit file")


def read_credit_file(
    session: Session,
    *,
    ctx: Context,
    enterprise_id: uuid.UUID,
    as_of: datetime | None = None,
    settings: Settings | None = None,
) -> CreditFile:
    """The enterprise's credit file as it stood at ``as_of`` (default: now), with its index."""
    timezone = settings.timezone if settings else DEFAULT_TIMEZONE
    org, allowed = _scope(session, ctx=ctx, enterprise_id=enterprise_id, timezone=timezone)
    now = ctx.now()
    if as_of is None:
        at = now
    elif as_of.tzinfo is None:
        raise InvalidInput("as_of needs a time zone", [FieldProblem(("as_of",), "must carry a time zone")])
    else:
        at = ensure_utc(as_of)
        if at > now:
            raise InvalidInput(
                "the file cannot be read in the future",
                [FieldProblem(("as_of",), "must not be in the future")],
            )
    facts, withheld = facts_at(session, enterprise_id, at)
    breakdown = index_of(facts, ENTERPRISE_REQUIRED, at)
    if allowed is not None:
        me = ctx.actor.organisation_id
        facts = [f for f in facts if f.category in allowed or (me is not None and f.source_org_id == me)]
        withheld = []
    return CreditFile(org.id, org.name, at, facts, breakdown, withheld)


def read_transparency_index(
    session: Session, *, ctx: Context, enterprise_id: uuid.UUID, settings: Settings | None = None
) -> Breakdown:
    """The enterprise's information transparency index now, broken down (same readers as the file)."""
    timezone = settings.timezone if settings else DEFAULT_TIMEZONE
    _scope(session, ctx=ctx, enterprise_id=enterprise_id, timezone=timezone)
    now = ctx.now()
    facts, _ = facts_at(session, enterprise_id, now)
    return index_of(facts, ENTERPRISE_REQUIRED, now)


# --- self-declared facts ------------------------------------------------------------------------------


def _declarer(session: Session, ctx: Context, enterprise_id: uuid.UUID) -> Organisation:
    actor = ctx.actor
    if not actor.is_system:
        require(ctx, Action.MANAGE_OWN_PROFILE)
        if actor.organisation_id != enterprise_id:
            raise NotFound("no such enterprise")
    org = _enterprise_org(session, enterprise_id)
    if org is None:
        raise NotFound("no such enterprise")
    return org


def _declare(
    session: Session,
    *,
    ctx: Context,
    org: Organisation,
    category: str,
    key: str,
    value: Any,
    observed_at: datetime,
) -> tuple[CreditFact, bool]:
    problems: list[FieldProblem] = []
    if category not in {c.value for c in DataCategory}:
        problems.append(FieldProblem(("category",), f"unknown category {category!r}"))
    if not key.strip() or len(key) > 80:
        problems.append(FieldProblem(("key",), "must be 1 to 80 characters"))
    if not attestations.json_native(value):
        problems.append(FieldProblem(("value",), "must be a plain JSON value"))
    if observed_at.tzinfo is None:
        problems.append(FieldProblem(("observed_at",), "must carry a time zone"))
    elif observed_at > ctx.now():
        problems.append(FieldProblem(("observed_at",), "must not be in the future"))
    if problems:
        raise InvalidInput("the fact has problems; nothing saved", problems)
    current = session.scalars(
        select(CreditFact).where(
            CreditFact.enterprise_id == org.id,
            CreditFact.category == category,
            CreditFact.key == key,
            CreditFact.provenance == "self_declared",
            CreditFact.superseded_at.is_(None),
        )
    ).all()
    for row in current:
        if row.value == value:
            return row, False
    now = ctx.now()
    for row in current:
        row.superseded_at = now
    fact = CreditFact(
        enterprise_id=org.id,
        category=category,
        key=key,
        value=value,
        provenance="self_declared",
        source_label=org.name,
        source_org_id=org.id,
        attestation_id=None,
        observed_at=ensure_utc(observed_at),
        recorded_at=now,
        valid_until=None,
        superseded_at=None,
    )
    session.add(fact)
    session.flush()
    return fact, True


def record_self_declared(
    session: Session,
    *,
    ctx: Context,
    enterprise_id: uuid.UUID,
    category: str,
    key: str,
    value: Any,
    observed_at: datetime,
) -> CreditFact:
    """The enterprise states a fact about itself. Stating the same value again changes nothing;
    a new value supersedes the old from now on."""
    org = _declarer(session, ctx, enterprise_id)
    fact, created = _declare(
        session, ctx=ctx, org=org, category=category, key=key, value=value, observed_at=observed_at
    )
    if created:
        audit.record(
            session,
            ctx=ctx,
            action="credit_fact.declare",
            object_type="credit_fact",
            object_id=fact.id,
            after={"category": category, "key": key, "value": value},
        )
    return fact


def registration_facts(
    enterprise: Enterprise, org: Organisation, people: Sequence[EnterprisePerson]
) -> list[tuple[str, str, Any]]:
    """(category, key, value) of what an enterprise declared when it registered."""
    money = enterprise.currency
    facts: list[tuple[str, str, Any]] = [
        (C.IDENTITY.value, "name", org.name),
        (C.IDENTITY.value, "credit_code", enterprise.credit_code),
        (C.IDENTITY.value, "legal_representative", enterprise.legal_representative),
        (C.IDENTITY.value, "founded_on", enterprise.founded_on.isoformat()),
        (C.IDENTITY.value, "industry_code", enterprise.industry_code),
        (C.IDENTITY.value, "region_code", enterprise.region_code),
        (
            C.IDENTITY.value,
            "registered_capital",
            {"value_minor": enterprise.registered_capital_minor, "currency": money},
        ),
        (
            C.FINANCIALS.value,
            "annual_revenue",
            {"value_minor": enterprise.annual_revenue_minor, "currency": money},
        ),
        (
            C.FINANCIALS.value,
            "total_assets",
            {"value_minor": enterprise.total_assets_minor, "currency": money},
        ),
        (C.FINANCIALS.value, "employees", enterprise.employees),
        (C.FINANCIALS.value, "size_class", enterprise.size_class),
    ]
    shareholders = [
        {"name": p.name, "share_percent": p.share_bp / 100 if p.share_bp else None}
        for p in people
        if p.role == PersonRole.SHAREHOLDER.value
    ]
    key_people = [{"role": p.role, "name": p.name} for p in people if p.role != PersonRole.SHAREHOLDER.value]
    facts.append((C.OWNERSHIP.value, "shareholders", shareholders))
    facts.append((C.OWNERSHIP.value, "key_people", key_people))
    return facts


def self_declare_registration(
    session: Session, *, ctx: Context, enterprise_id: uuid.UUID
) -> list[CreditFact]:
    """File the enterprise's registration profile as self-declared facts (identity, financials,
    ownership). Idempotent: unchanged facts are not filed twice."""
    org = _declarer(session, ctx, enterprise_id)
    enterprise = session.get(Enterprise, enterprise_id)
    if enterprise is None:
        raise NotFound("no enterprise profile")
    people = parties.people_of(session, enterprise_id)
    observed = min(enterprise.created_at, ctx.now())
    filed: list[CreditFact] = []
    created_any: list[str] = []
    for category, key, value in registration_facts(enterprise, org, people):
        fact, created = _declare(
            session, ctx=ctx, org=org, category=category, key=key, value=value, observed_at=observed
        )
        filed.append(fact)
        if created:
            created_any.append(f"{category}.{key}")
    if created_any:
        audit.record(
            session,
            ctx=ctx,
            action="credit_fact.declare_registration",
            object_type="organisation",
            object_id=enterprise_id,
            detail={"facts": created_any},
        )
    return filed
