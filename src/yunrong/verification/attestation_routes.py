"""JSON API of attestations, the credit file, the transparency index and investor listings."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from yunrong.deps import DB, ApiCtx, SettingsDep
from yunrong.verification import attestations, credit_file, listings
from yunrong.verification.credit_file import FactView
from yunrong.verification.transparency import Breakdown

router = APIRouter(prefix="/api/v1", tags=["verification"])


class FactOut(BaseModel):
    id: uuid.UUID
    category: str
    key: str
    value: Any
    provenance: str
    verified: bool
    status: str
    source: str
    source_org_id: uuid.UUID | None
    attestation_id: uuid.UUID | None
    attestation_ref: str | None
    observed_at: datetime
    recorded_at: datetime
    valid_until: datetime | None


class CategoryScoreOut(BaseModel):
    category: str
    best_provenance: str | None
    weight: float
    freshness: float


class TransparencyOut(BaseModel):
    score: int = Field(ge=0, le=100)
    coverage: float
    freshness: float
    independence: float
    weights: dict[str, float]
    agencies: int
    conflict_of_interest: bool
    categories: list[CategoryScoreOut]
    formula: str


class WithheldOut(BaseModel):
    attestation_id: uuid.UUID
    attestation_ref: str
    reason: str


class CreditFileOut(BaseModel):
    enterprise_id: uuid.UUID
    enterprise_name: str
    as_of: datetime
    categories: dict[str, list[FactOut]]
    withheld: list[WithheldOut]
    transparency: TransparencyOut


class AgencyRefOut(BaseModel):
    id: uuid.UUID
    name: str | None
    public_key: str


class VerificationOut(BaseModel):
    id: uuid.UUID
    ref: str
    valid: bool
    signature_valid: bool
    key_registered: bool
    revoked: bool
    revoked_at: datetime | None
    expired: bool
    agency: AgencyRefOut
    kind: str
    subject: str
    issued_at: datetime
    valid_until: datetime
    canonical_sha256: str
    signature: str


class RevocationIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class RevocationOut(BaseModel):
    id: uuid.UUID
    ref: str
    revoked_at: datetime
    revoked_reason: str


class ListingOut(BaseModel):
    demand: dict[str, Any]
    enterprise_name: str | None
    categories: dict[str, list[FactOut]]
    shared_categories: list[str]
    hidden_categories: list[str]
    transparency: TransparencyOut
    viewed_at: datetime


class ListingSummaryOut(BaseModel):
    demand: dict[str, Any]
    enterprise_name: str | None
    transparency_score: int
    verified_facts: int
    shared_categories: list[str]


def fact_out(f: FactView) -> FactOut:
    return FactOut(
        id=f.id,
        category=f.category,
        key=f.key,
        value=f.value,
        provenance=f.provenance,
        verified=f.verified,
        status=f.status,
        source=f.source_label,
        source_org_id=f.source_org_id,
        attestation_id=f.attestation_id,
        attestation_ref=f.attestation_ref,
        observed_at=f.observed_at,
        recorded_at=f.recorded_at,
        valid_until=f.valid_until,
    )


def transparency_out(b: Breakdown) -> TransparencyOut:
    return TransparencyOut.model_validate(b.as_dict())


def _grouped(groups: dict[str, list[FactView]]) -> dict[str, list[FactOut]]:
    return {category: [fact_out(f) for f in facts] for category, facts in sorted(groups.items())}


@router.get(
    "/enterprises/{organisation_id}/credit-file",
    operation_id="read_credit_file",
    response_model=CreditFileOut,
)
def read_credit_file(
    organisation_id: uuid.UUID,
    session: DB,
    ctx: ApiCtx,
    settings: SettingsDep,
    as_of: datetime | None = None,
) -> CreditFileOut:
    """The enterprise's credit file (optionally as it stood at ``as_of``): every fact with its
    provenance, time and validity, and the transparency index. The enterprise, regulators, the
    operator and agencies with an order for it; investors see facts through listings."""
    file = credit_file.read_credit_file(
        session, ctx=ctx, enterprise_id=organisation_id, as_of=as_of, settings=settings
    )
    return CreditFileOut(
        enterprise_id=file.enterprise_id,
        enterprise_name=file.enterprise_name,
        as_of=file.as_of,
        categories=_grouped(file.categories),
        withheld=[WithheldOut(**w.__dict__) for w in file.withheld],
        transparency=transparency_out(file.transparency),
    )


@router.get(
    "/enterprises/{organisation_id}/transparency",
    operation_id="read_transparency_index",
    response_model=TransparencyOut,
)
def read_transparency_index(
    organisation_id: uuid.UUID, session: DB, ctx: ApiCtx, settings: SettingsDep
) -> TransparencyOut:
    """The information transparency index (0–100) of an enterprise, with its formula and parts."""
    return transparency_out(
        credit_file.read_transparency_index(
            session, ctx=ctx, enterprise_id=organisation_id, settings=settings
        )
    )


@router.get(
    "/attestations/{attestation_id}/verification",
    operation_id="verify_attestation",
    response_model=VerificationOut,
)
def verify_attestation(attestation_id: uuid.UUID, request: Request, session: DB) -> VerificationOut:
    """Public, no authentication: does the attestation's Ed25519 signature verify over the
    canonical form rebuilt from what is stored, with the agency's registered key; is it revoked or
    expired? The result itself is not shown (the enterprise shares it by consent); whoever holds it
    compares ``canonical_sha256`` and may check ``signature`` with the agency's ``public_key``."""
    return VerificationOut.model_validate(
        attestations.verify_attestation(session, attestation_id, now=request.app.state.clock.now())
    )


@router.post(
    "/attestations/{attestation_id}/revocation",
    operation_id="revoke_attestation",
    response_model=RevocationOut,
)
def revoke_attestation(
    attestation_id: uuid.UUID, body: RevocationIn, session: DB, ctx: ApiCtx
) -> RevocationOut:
    """The issuing agency revokes its attestation; the facts it gave leave the credit file."""
    row = attestations.revoke_attestation(session, ctx=ctx, attestation_id=attestation_id, reason=body.reason)
    assert row.revoked_at is not None
    assert row.revoked_reason is not None
    return RevocationOut(id=row.id, ref=row.ref, revoked_at=row.revoked_at, revoked_reason=row.revoked_reason)


@router.get("/listings", operation_id="list_listings", response_model=list[ListingSummaryOut])
def list_listings(session: DB, ctx: ApiCtx, settings: SettingsDep) -> list[ListingSummaryOut]:
    """Admitted investors, regulators and the operator: demands open to investment."""
    return [
        ListingSummaryOut(
            demand=listings.demand_terms(s.demand),
            enterprise_name=s.enterprise_name,
            transparency_score=s.transparency.score,
            verified_facts=s.verified_facts,
            shared_categories=s.shared_categories,
        )
        for s in listings.list_listings(session, ctx=ctx, settings=settings)
    ]


@router.get("/listings/{demand_id}", operation_id="read_listing", response_model=ListingOut)
def read_listing(demand_id: uuid.UUID, session: DB, ctx: ApiCtx, settings: SettingsDep) -> ListingOut:
    """A listed demand as the viewer's consents allow, each fact verified or self-declared; the view
    is recorded."""
    listing = listings.read_listing(session, ctx=ctx, demand_id=demand_id, settings=settings)
    return ListingOut(
        demand=listings.demand_terms(listing.demand),
        enterprise_name=listing.enterprise_name,
        categories=_grouped(listing.categories),
        shared_categories=listing.shared_categories,
        hidden_categories=listing.hidden_categories,
        transparency=transparency_out(listing.transparency),
        viewed_at=listing.viewed_at,
    )
