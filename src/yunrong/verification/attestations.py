"""Signed attestations: an agency's typed result for a service order, signed with its Ed25519 key.

The agency signs the UTF-8 bytes of ``canonical_form(...)``: deterministic JSON (sorted keys, no
spaces, datetimes as UTC ISO-8601 with microseconds) of the format tag, the order's reference, the
enterprise, the agency, the kind (the agency type), the subject, the result payload exactly as
submitted, when it was issued and until when it is valid. Anyone can verify an attestation; the
verification rebuilds the canonical form from the stored columns (never from the stored text), so a
change to any signed field breaks the signature. Agencies can revoke their own attestations; the
credit facts an attestation gave are then superseded.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from yunrong.identity.model import Action, Context
from yunrong.identity.service import require
from yunrong.identity.tables import Organisation
from yunrong.kit.clock import SystemClock, ensure_utc
from yunrong.kit.errors import Conflict, FieldProblem, InvalidInput, NotFound
from yunrong.kit.ids import human_ref
from yunrong.parties import service as parties
from yunrong.parties.model import AgencyType, DataCategory
from yunrong.parties.tables import Agency, Document
from yunrong.supervision import service as audit
from yunrong.supervision.model import canonical_json
from yunrong.verification.tables import Attestation, CreditFact, ServiceOrder

FORMAT = "yunrong-attestation/1"

#: Orders in these statuses take no result (the caller decides which open statuses it accepts).
CLOSED_ORDER = ("declined", "cancelled", "waived", "unassigned")

Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
PositiveMinor = Annotated[int, Field(gt=0, strict=True)]
NonNegativeMinor = Annotated[int, Field(ge=0, strict=True)]
Text = Annotated[str, Field(min_length=1, max_length=500)]


class _Result(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RatingResult(_Result):
    rating: Literal["AAA", "AA", "A", "BBB", "BB", "B", "CCC", "CC", "C"]
    outlook: Literal["positive", "stable", "negative", "developing"]
    methodology: Text


class AppraisalResult(_Result):
    subject: Literal["business", "assets", "receivable", "inventory", "equipment"]
    value_minor: PositiveMinor
    currency: Currency
    method: Text
    appraised_on: date


class PatentValue(_Result):
    number: Annotated[str, Field(min_length=1, max_length=40)]
    title: Text
    value_minor: PositiveMinor


class IpValuationResult(_Result):
    patents: Annotated[list[PatentValue], Field(min_length=1)]
    currency: Currency
    method: Text

    @model_validator(mode="after")
    def _distinct_numbers(self) -> IpValuationResult:
        numbers = [p.number for p in self.patents]
        if len(set(numbers)) != len(numbers):
            raise ValueError("each patent may be valued once")
        return self


class GuaranteeCommitment(_Result):
    coverage_percent: Annotated[Decimal, Field(gt=0, le=100)]
    cap_minor: PositiveMinor
    fee_percent: Annotated[Decimal, Field(ge=0, le=100)]
    term_months: Annotated[int, Field(gt=0, le=600, strict=True)]
    currency: Currency


class InsurancePolicy(_Result):
    policy_number: Annotated[str, Field(min_length=1, max_length=60)]
    coverage_minor: PositiveMinor
    premium_minor: NonNegativeMinor
    currency: Currency
    starts_on: date
    ends_on: date

    @model_validator(mode="after")
    def _ends_after_start(self) -> InsurancePolicy:
        if self.ends_on <= self.starts_on:
            raise ValueError("the policy must end after it starts")
        return self


class VerificationFinding(_Result):
    subject: Literal["identity", "business_licence", "bank_account", "receivable", "other"]
    verified: bool
    finding: Text
    bank_account_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _account_when_bank(self) -> VerificationFinding:
        if self.subject == "bank_account" and self.bank_account_id is None:
            raise ValueError("a bank-account finding names the bank account")
        return self


class LogisticsReport(_Result):
    goods: Text
    warehouse: Text
    quantity: Annotated[Decimal, Field(gt=0)]
    unit: Annotated[str, Field(min_length=1, max_length=20)]
    value_minor: PositiveMinor
    currency: Currency = "CNY"
    inspected_on: date
    condition: Literal["good", "fair", "poor"]


RESULTS: dict[str, type[BaseModel]] = {
    AgencyType.CREDIT_RATING.value: RatingResult,
    AgencyType.APPRAISAL.value: AppraisalResult,
    AgencyType.IP_VALUATION.value: IpValuationResult,
    AgencyType.GUARANTEE.value: GuaranteeCommitment,
    AgencyType.INSURANCE.value: InsurancePolicy,
    AgencyType.AUTHENTICATION.value: VerificationFinding,
    AgencyType.LOGISTICS_MONITORING.value: LogisticsReport,
}


class WrongResultType(InvalidInput):
    code = "wrong-result-type"
    title = "The result does not fit the order"


class InvalidAttestation(InvalidInput):
    code = "invalid-attestation"
    title = "The attestation cannot be accepted"


class BadSignature(InvalidInput):
    code = "bad-signature"
    title = "The signature does not verify"


class AttestationExists(Conflict):
    code = "attestation-exists"
    title = "This order already has an attestation"


class OrderNotOpen(Conflict):
    code = "order-not-open"
    title = "The order does not take a result now"


class AlreadyRevoked(Conflict):
    code = "attestation-already-revoked"
    title = "Already revoked"


# --- the canonical form and signatures ---------------------------------------------------------------


def canonical_form(
    *,
    order_ref: str | None,
    enterprise_id: uuid.UUID | str,
    agency_id: uuid.UUID | str,
    kind: str,
    subject: str,
    payload: dict[str, Any],
    issued_at: datetime,
    valid_until: datetime,
) -> str:
    """The exact text an agency signs (as UTF-8 bytes)."""
    if issued_at.tzinfo is None or valid_until.tzinfo is None:
        raise ValueError("attestation times must be timezone-aware")
    return canonical_json(
        {
            "format": FORMAT,
            "order_ref": order_ref,
            "enterprise_id": str(enterprise_id),
            "agency_id": str(agency_id),
            "kind": kind,
            "subject": subject,
            "payload": payload,
            "issued_at": ensure_utc(issued_at),
            "valid_until": ensure_utc(valid_until),
        }
    )


def sign(private_key_seed: bytes, canonical: str) -> str:
    """Sign a canonical form with a raw 32-byte Ed25519 seed (simulated agencies and tests)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.from_private_bytes(private_key_seed)
    return base64.b64encode(key.sign(canonical.encode("utf-8"))).decode("ascii")


def public_key_of(private_key_seed: bytes) -> str:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    key = Ed25519PrivateKey.from_private_bytes(private_key_seed).public_key()
    return base64.b64encode(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode("ascii")


def signature_valid(public_key_b64: str, canonical: str, signature_b64: str) -> bool:
    """True only when the signature is a valid Ed25519 signature of ``canonical`` by that key."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        raw_key = base64.b64decode(public_key_b64, validate=True)
        raw_signature = base64.b64decode(signature_b64, validate=True)
        if len(raw_key) != 32 or len(raw_signature) != 64:
            return False
        Ed25519PublicKey.from_public_bytes(raw_key).verify(raw_signature, canonical.encode("utf-8"))
    except (InvalidSignature, ValueError, TypeError, binascii.Error):
        return False
    return True


# --- what an attestation says ----------------------------------------------------------------------


def subject_of(kind: str, result: BaseModel) -> str:
    """What the attestation is about: the result's own subject, else one per kind."""
    own = getattr(result, "subject", None)
    if isinstance(own, str):
        return own
    return {
        AgencyType.CREDIT_RATING.value: "enterprise",
        AgencyType.IP_VALUATION.value: "patents",
        AgencyType.GUARANTEE.value: "financing",
        AgencyType.INSURANCE.value: "insurance_policy",
        AgencyType.LOGISTICS_MONITORING.value: "goods",
    }.get(kind, "enterprise")


def facts_of(kind: str, result: BaseModel) -> list[tuple[str, str, Any]]:
    """The credit facts (category, key, value) an attestation gives."""
    data = result.model_dump(mode="json")
    if isinstance(result, RatingResult):
        return [
            (DataCategory.CREDIT_SCORE.value, "agency_rating", result.rating),
            (DataCategory.CREDIT_SCORE.value, "agency_rating_outlook", result.outlook),
        ]
    if isinstance(result, AppraisalResult):
        return [(DataCategory.FINANCIALS.value, f"appraised_value.{result.subject}", data)]
    if isinstance(result, IpValuationResult):
        facts: list[tuple[str, str, Any]] = [
            (
                DataCategory.FINANCIALS.value,
                f"ip_value.{p.number}"[:80],
                {"title": p.title, "value_minor": p.value_minor, "currency": result.currency},
            )
            for p in result.patents
        ]
        total = sum(p.value_minor for p in result.patents)
        facts.append(
            (
                DataCategory.FINANCIALS.value,
                "ip_value.total",
                {"value_minor": total, "currency": result.currency, "patents": len(result.patents)},
            )
        )
        return facts
    if isinstance(result, GuaranteeCommitment):
        return [(DataCategory.ATTESTATIONS.value, "guarantee_commitment", data)]
    if isinstance(result, InsurancePolicy):
        return [(DataCategory.ATTESTATIONS.value, "insurance_policy", data)]
    if isinstance(result, VerificationFinding):
        category = (
            DataCategory.IDENTITY.value
            if result.subject in ("identity", "business_licence")
            else DataCategory.ATTESTATIONS.value
        )
        return [(category, f"verified.{result.subject}", data)]
    if isinstance(result, LogisticsReport):
        return [(DataCategory.SUPPLY_CHAIN.value, "inventory_inspection", data)]
    raise ValueError(f"no facts for {kind}")  # pragma: no cover - RESULTS is exhaustive


def json_native(value: Any) -> bool:
    try:
        return bool(json.loads(json.dumps(value, allow_nan=False)) == value)
    except (TypeError, ValueError):
        return False


def _pydantic_problems(exc: ValidationError) -> list[FieldProblem]:
    return [
        FieldProblem(("payload", *e["loc"]), e["msg"], e["type"])
        for e in exc.errors(include_url=False, include_context=False)
    ]


# --- use cases ---------------------------------------------------------------------------------------


def record_attestation(
    session: Session,
    *,
    ctx: Context,
    order: ServiceOrder,
    payload: dict[str, Any],
    issued_at: datetime,
    valid_until: datetime,
    signature: str,
    evidence_document_ids: list[uuid.UUID],
) -> Attestation:
    """Check an agency's signed result for an order and file it with its credit facts.

    Every problem with the input is reported at once (422); a signature that does not verify
    with the agency's registered key is refused (422, ``bad-signature``). Nothing is saved on
    refusal. The order's status is left to the caller.
    """
    actor = ctx.actor
    if order.agency_id is None or not (actor.is_system or actor.organisation_id == order.agency_id):
        raise NotFound("no such service order")
    parties.require_admitted(session, ctx=ctx)
    if order.status in CLOSED_ORDER:
        raise OrderNotOpen(f"a {order.status} order takes no result")
    if session.scalar(select(Attestation.id).where(Attestation.order_id == order.id)) is not None:
        raise AttestationExists(f"order {order.ref} already has an attestation")
    now = ctx.now()
    kind = order.agency_type
    model = RESULTS.get(kind)
    if model is None:
        raise InvalidAttestation(f"orders of type {kind!r} take no attestation")

    shape: list[FieldProblem] = []
    other: list[FieldProblem] = []
    result: BaseModel | None = None
    if not isinstance(payload, dict) or not json_native(payload):
        shape.append(FieldProblem(("payload",), "must be a JSON object of plain JSON values"))
    else:
        try:
            result = model.model_validate(payload)
        except ValidationError as exc:
            shape += _pydantic_problems(exc)
    if issued_at.tzinfo is None:
        other.append(FieldProblem(("issued_at",), "must carry a time zone"))
    if valid_until.tzinfo is None:
        other.append(FieldProblem(("valid_until",), "must carry a time zone"))
    if not other:
        if valid_until <= now:
            other.append(FieldProblem(("valid_until",), "must be in the future"))
        if valid_until <= issued_at:
            other.append(FieldProblem(("valid_until",), "must be after issued_at"))
        if issued_at > now:
            other.append(FieldProblem(("issued_at",), "must not be in the future"))
    unique_evidence = list(dict.fromkeys(evidence_document_ids))
    if unique_evidence:
        query = select(Document.id, Document.organisation_id).where(Document.id.in_(unique_evidence))
        owners: dict[uuid.UUID, uuid.UUID] = dict(session.execute(query).all())
        for index, doc_id in enumerate(unique_evidence):
            if owners.get(doc_id) not in (order.agency_id, order.enterprise_id):
                other.append(
                    FieldProblem(
                        ("evidence_document_ids", index),
                        "no such document of the agency or the enterprise",
                    )
                )
    if shape:
        raise WrongResultType(
            f"this is a {kind.replace('_', ' ')} order: the result must be a {model.__name__}; nothing saved",
            shape + other,
        )
    if other:
        raise InvalidAttestation("the attestation has problems; nothing saved", other)
    assert result is not None

    agency = session.get(Agency, order.agency_id)
    agency_org = session.get(Organisation, order.agency_id)
    if agency is None or agency_org is None:
        raise NotFound("the order's agency has no profile")
    subject = subject_of(kind, result)
    canonical = canonical_form(
        order_ref=order.ref,
        enterprise_id=order.enterprise_id,
        agency_id=order.agency_id,
        kind=kind,
        subject=subject,
        payload=payload,
        issued_at=issued_at,
        valid_until=valid_until,
    )
    if not signature_valid(agency.public_key, canonical, signature):
        raise BadSignature(
            "the signature does not verify with the agency's registered key over the canonical form; "
            "nothing saved",
            [FieldProblem(("signature",), "not a valid Ed25519 signature of the canonical form")],
        )

    attestation = Attestation(
        ref=human_ref("ATT"),
        order_id=order.id,
        enterprise_id=order.enterprise_id,
        agency_id=order.agency_id,
        kind=kind,
        subject=subject,
        payload=payload,
        canonical=canonical,
        signature=signature,
        public_key=agency.public_key,
        evidence_document_ids=[str(d) for d in unique_evidence],
        issued_at=ensure_utc(issued_at),
        valid_until=ensure_utc(valid_until),
        recorded_at=now,
        revoked_at=None,
        revoked_reason=None,
    )
    session.add(attestation)
    session.flush()
    for category, key, value in facts_of(kind, result):
        _supersede(
            session,
            enterprise_id=order.enterprise_id,
            category=category,
            key=key,
            provenance="attested",
            source_org_id=order.agency_id,
            at=now,
        )
        session.add(
            CreditFact(
                enterprise_id=order.enterprise_id,
                category=category,
                key=key,
                value=value,
                provenance="attested",
                source_label=agency_org.name,
                source_org_id=order.agency_id,
                attestation_id=attestation.id,
                observed_at=attestation.issued_at,
                recorded_at=now,
                valid_until=attestation.valid_until,
                superseded_at=None,
            )
        )
    session.flush()
    audit.record(
        session,
        ctx=ctx,
        action="attestation.record",
        object_type="attestation",
        object_id=attestation.id,
        after={"canonical_sha256": hashlib.sha256(canonical.encode()).hexdigest()},
        detail={"ref": attestation.ref, "order": order.ref, "kind": kind, "subject": subject},
    )
    return attestation


def _supersede(
    session: Session,
    *,
    enterprise_id: uuid.UUID,
    category: str,
    key: str,
    provenance: str,
    source_org_id: uuid.UUID | None,
    at: datetime,
) -> None:
    """A newer fact of the same key from the same source replaces the older one from ``at`` on."""
    source = (
        CreditFact.source_org_id.is_(None)
        if source_org_id is None
        else CreditFact.source_org_id == source_org_id
    )
    session.execute(
        update(CreditFact)
        .where(
            CreditFact.enterprise_id == enterprise_id,
            CreditFact.category == category,
            CreditFact.key == key,
            CreditFact.provenance == provenance,
            source,
            CreditFact.superseded_at.is_(None),
        )
        .values(superseded_at=at)
        .execution_options(synchronize_session=False)
    )


def recompute_canonical(session: Session, attestation: Attestation) -> str:
    """The canonical form rebuilt from the stored signed columns (not from ``canonical``)."""
    order_ref = None
    if attestation.order_id is not None:
        order_ref = session.scalar(select(ServiceOrder.ref).where(ServiceOrder.id == attestation.order_id))
        if order_ref is None:
            order_ref = f"missing:{attestation.order_id}"
    return canonical_form(
        order_ref=order_ref,
        enterprise_id=attestation.enterprise_id,
        agency_id=attestation.agency_id,
        kind=attestation.kind,
        subject=attestation.subject,
        payload=attestation.payload,
        issued_at=attestation.issued_at,
        valid_until=attestation.valid_until,
    )


def check(session: Session, attestation: Attestation, now: datetime) -> dict[str, Any]:
    """The verification of one loaded attestation (see ``verify_attestation``)."""
    canonical = recompute_canonical(session, attestation)
    agency = session.get(Agency, attestation.agency_id)
    agency_org = session.get(Organisation, attestation.agency_id)
    registered_key = agency.public_key if agency is not None else None
    key_registered = registered_key is not None and registered_key == attestation.public_key
    signature_ok = key_registered and signature_valid(
        attestation.public_key, canonical, attestation.signature
    )
    revoked = attestation.revoked_at is not None and attestation.revoked_at <= now
    expired = attestation.valid_until <= now
    return {
        "id": str(attestation.id),
        "ref": attestation.ref,
        "valid": bool(signature_ok and not revoked and not expired),
        "signature_valid": bool(signature_ok),
        "key_registered": key_registered,
        "revoked": revoked,
        "revoked_at": attestation.revoked_at if revoked else None,
        "revoked_reason": attestation.revoked_reason if revoked else None,
        "expired": expired,
        "agency": {
            "id": str(attestation.agency_id),
            "name": agency_org.name if agency_org is not None else None,
            "public_key": attestation.public_key,
        },
        "enterprise_id": str(attestation.enterprise_id),
        "kind": attestation.kind,
        "subject": attestation.subject,
        "payload": attestation.payload,
        "issued_at": attestation.issued_at,
        "valid_until": attestation.valid_until,
        "canonical": canonical,
        "canonical_sha256": hashlib.sha256(canonical.encode("utf-8")).hexdigest(),
        "signature": attestation.signature,
    }


#: What anyone may learn of an attestation. Not its payload nor whom it is about: those are the
#: enterprise's to share (through consents); a holder of the result compares ``canonical_sha256``
#: and can check ``signature`` against the agency's ``public_key`` offline.
PUBLIC_VERDICT = (
    "id",
    "ref",
    "valid",
    "signature_valid",
    "key_registered",
    "revoked",
    "revoked_at",
    "expired",
    "agency",
    "kind",
    "subject",
    "issued_at",
    "valid_until",
    "canonical_sha256",
    "signature",
)


def verify_attestation(
    session: Session, attestation_id: uuid.UUID, *, now: datetime | None = None
) -> dict[str, Any]:
    """Public: is this attestation genuine, unrevoked and unexpired? Anyone may ask.

    ``valid`` needs all three: the signature verifies over the canonical form rebuilt from the
    stored columns with the key the agency registered, it is not revoked, and it has not expired.
    """
    attestation = session.get(Attestation, attestation_id)
    if attestation is None:
        raise NotFound("no such attestation")
    verdict = check(session, attestation, ensure_utc(now) if now is not None else SystemClock().now())
    return {key: verdict[key] for key in PUBLIC_VERDICT}


def revoke_attestation(
    session: Session, *, ctx: Context, attestation_id: uuid.UUID, reason: str
) -> Attestation:
    """The issuing agency withdraws its attestation; the facts it gave are superseded from now."""
    require(ctx, Action.REVOKE_ATTESTATION)
    attestation = session.get(Attestation, attestation_id)
    if attestation is None or attestation.agency_id != ctx.actor.organisation_id:
        raise NotFound("no such attestation")
    if not reason.strip():
        raise InvalidInput("a revocation needs a reason", [FieldProblem(("reason",), "must not be blank")])
    if attestation.revoked_at is not None:
        raise AlreadyRevoked(f"attestation {attestation.ref} was already revoked")
    now = ctx.now()
    attestation.revoked_at = now
    attestation.revoked_reason = reason.strip()
    session.execute(
        update(CreditFact)
        .where(CreditFact.attestation_id == attestation.id, CreditFact.superseded_at.is_(None))
        .values(superseded_at=now)
        .execution_options(synchronize_session=False)
    )
    session.flush()
    audit.record(
        session,
        ctx=ctx,
        action="attestation.revoke",
        object_type="attestation",
        object_id=attestation.id,
        detail={"ref": attestation.ref, "reason": attestation.revoked_reason},
    )
    return attestation
