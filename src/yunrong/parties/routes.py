"""JSON API of parties: registration, the admittance review, profiles, documents and consents."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from yunrong.deps import DB, ApiCtx, SettingsDep, anonymous_context
from yunrong.identity.security import totp_uri
from yunrong.identity.tables import Organisation
from yunrong.kit.clock import business_date
from yunrong.kit.money import Money
from yunrong.parties import risk
from yunrong.parties import service as parties
from yunrong.parties.model import MAX_UPLOAD_BYTES, DocumentCategory, QualificationStatus
from yunrong.parties.schemas import (
    AgencyRegistrationIn,
    AgencyServiceIn,
    BankAccountIn,
    BankAccountOut,
    ConsentIn,
    ConsentOut,
    DecisionIn,
    DocumentOut,
    EnterpriseRegistrationIn,
    EventOut,
    InvestorRegistrationIn,
    PersonIn,
    QualificationCaseOut,
    QualificationOut,
    QuestionOptionOut,
    QuestionOut,
    ReasonIn,
    RegistrationOut,
    ResponseIn,
    RiskAssessmentIn,
    RiskAssessmentOut,
)
from yunrong.parties.tables import BankAccount, Consent, Qualification

router = APIRouter(prefix="/api/v1", tags=["parties"])


def registration_out(reg: parties.Registration) -> RegistrationOut:
    return RegistrationOut(
        organisation_id=reg.organisation.id,
        organisation_ref=reg.organisation.ref,
        user_id=reg.user.id,
        qualification_id=reg.qualification.id,
        qualification_ref=reg.qualification.ref,
        status=QualificationStatus(reg.qualification.status),
        totp_secret=reg.totp_secret,
        totp_uri=totp_uri(reg.totp_secret, reg.user.email) if reg.totp_secret else None,
    )


def qualification_out(q: Qualification, org: Organisation) -> QualificationOut:
    return QualificationOut(
        id=q.id,
        ref=q.ref,
        organisation_id=org.id,
        organisation_name=org.name,
        organisation_type=org.type,
        status=QualificationStatus(q.status),
        last_reason=q.last_reason,
        submitted_at=q.submitted_at,
        updated_at=q.updated_at,
        awaiting_second_approval_from_other_than=q.first_approver_id,
    )


def bank_account_out(row: BankAccount) -> BankAccountOut:
    return BankAccountOut(
        id=row.id,
        bank_name=row.bank_name,
        account_name=row.account_name,
        account_number_masked=row.account_number_masked,
        currency=row.currency,
        verified=row.verified_at is not None,
        created_at=row.created_at,
    )


def consent_out(row: Consent, request: Request) -> ConsentOut:
    out = ConsentOut.model_validate(row)
    today = business_date(request.app.state.clock.now(), request.app.state.settings.timezone)
    out.active = parties.consent_active(row, today)
    return out


# --- registration (public) ----------------------------------------------------------------------------


@router.post(
    "/enterprises", operation_id="register_enterprise", response_model=RegistrationOut, status_code=201
)
def register_enterprise(
    request: Request, session: DB, settings: SettingsDep, body: EnterpriseRegistrationIn
) -> RegistrationOut:
    """Public: an SME registers itself and its first user; the registration enters admittance review."""
    return registration_out(
        parties.register_enterprise(session, ctx=anonymous_context(request), settings=settings, data=body)
    )


@router.post("/investors", operation_id="register_investor", response_model=RegistrationOut, status_code=201)
def register_investor(
    request: Request, session: DB, settings: SettingsDep, body: InvestorRegistrationIn
) -> RegistrationOut:
    """Public: an individual or an institution registers as an investor; review follows."""
    return registration_out(
        parties.register_investor(session, ctx=anonymous_context(request), settings=settings, data=body)
    )


@router.post("/agencies", operation_id="register_agency", response_model=RegistrationOut, status_code=201)
def register_agency(
    request: Request, session: DB, settings: SettingsDep, body: AgencyRegistrationIn
) -> RegistrationOut:
    """Public: a third-party agency registers with its types, licence, catalogue and signing key."""
    return registration_out(
        parties.register_agency(session, ctx=anonymous_context(request), settings=settings, data=body)
    )


@router.get("/risk-questionnaire", operation_id="read_risk_questionnaire", response_model=list[QuestionOut])
def read_risk_questionnaire() -> list[QuestionOut]:
    """Public: the investor risk-tolerance questionnaire (answers are scored into C1–C5)."""
    return [
        QuestionOut(
            key=q.key,
            text_en=q.text_en,
            text_zh=q.text_zh,
            options=[QuestionOptionOut(key=o.key, text_en=o.text_en, text_zh=o.text_zh) for o in q.options],
        )
        for q in risk.QUESTIONS
    ]


# --- the admittance review ------------------------------------------------------------------------------


@router.get(
    "/qualifications", operation_id="list_pending_qualifications", response_model=list[QualificationOut]
)
def list_pending_qualifications(
    session: DB, ctx: ApiCtx, status: QualificationStatus | None = None
) -> list[QualificationOut]:
    """Regulators: the review queue (pending, awaiting a second approval, waiting for information)."""
    return [qualification_out(q, o) for q, o in parties.list_pending(session, ctx=ctx, status=status)]


@router.get("/me/qualification", operation_id="read_my_qualification", response_model=QualificationCaseOut)
def read_my_qualification(session: DB, ctx: ApiCtx) -> QualificationCaseOut:
    q, org = parties.my_qualification(session, ctx=ctx)
    return _case(session, q, org)


def _case(session: DB, q: Qualification, org: Organisation) -> QualificationCaseOut:
    from sqlalchemy import select

    from yunrong.identity import repository as identity_repo

    events = parties.events_of(session, q.id)
    people = parties.people_of(session, org.id)
    accounts = session.scalars(select(BankAccount).where(BankAccount.organisation_id == org.id)).all()
    return QualificationCaseOut(
        **qualification_out(q, org).model_dump(),
        profile=parties.case_details(session, org),
        people=[
            {
                "role": p.role,
                "name": p.name,
                "identifier": p.identifier_masked,
                "share_percent": p.share_bp / 100 if p.share_bp else None,
            }
            for p in people
        ],
        bank_accounts=[bank_account_out(a).model_dump(mode="json") for a in accounts],
        documents=[
            DocumentOut.model_validate(d).model_dump(mode="json")
            for d in parties.documents_of(session, org.id)
        ],
        users=[
            {"email": u.email, "name": u.name, "roles": sorted(u.role_set)}
            for u in identity_repo.users_of(session, org.id)
        ],
        events=[EventOut.model_validate(e) for e in events],
    )


@router.get(
    "/qualifications/{qualification_id}",
    operation_id="read_qualification",
    response_model=QualificationCaseOut,
)
def read_qualification(session: DB, ctx: ApiCtx, qualification_id: uuid.UUID) -> QualificationCaseOut:
    """The whole case: everything submitted and every decision so far."""
    q, org = parties.visible_qualification(session, ctx=ctx, qualification_id=qualification_id)
    return _case(session, q, org)


@router.post(
    "/qualifications/{qualification_id}/decisions",
    operation_id="decide_qualification",
    response_model=QualificationOut,
)
def decide_qualification(
    session: DB, ctx: ApiCtx, settings: SettingsDep, qualification_id: uuid.UUID, body: DecisionIn
) -> QualificationOut:
    """Regulators: approve, reject or request more information, always with a reason."""
    q = parties.decide(
        session,
        ctx=ctx,
        settings=settings,
        qualification_id=qualification_id,
        decision=body.decision,
        reason=body.reason,
    )
    _, org = parties.visible_qualification(session, ctx=ctx, qualification_id=q.id)
    return qualification_out(q, org)


@router.post(
    "/qualifications/{qualification_id}/responses",
    operation_id="respond_to_qualification",
    response_model=QualificationOut,
)
def respond_to_qualification(
    session: DB, ctx: ApiCtx, settings: SettingsDep, qualification_id: uuid.UUID, body: ResponseIn
) -> QualificationOut:
    """The applicant answers a request for information; the case goes back to the regulators."""
    q = parties.respond(
        session,
        ctx=ctx,
        settings=settings,
        qualification_id=qualification_id,
        message=body.message,
        document_ids=body.document_ids,
    )
    _, org = parties.visible_qualification(session, ctx=ctx, qualification_id=q.id)
    return qualification_out(q, org)


@router.post(
    "/organisations/{organisation_id}/suspension",
    operation_id="suspend_party",
    response_model=QualificationOut,
)
def suspend_party(
    session: DB, ctx: ApiCtx, settings: SettingsDep, organisation_id: uuid.UUID, body: ReasonIn
) -> QualificationOut:
    q = parties.set_suspension(
        session, ctx=ctx, settings=settings, org_id=organisation_id, suspend=True, reason=body.reason
    )
    _, org = parties.visible_qualification(session, ctx=ctx, qualification_id=q.id)
    return qualification_out(q, org)


@router.post(
    "/organisations/{organisation_id}/reinstatement",
    operation_id="reinstate_party",
    response_model=QualificationOut,
)
def reinstate_party(
    session: DB, ctx: ApiCtx, settings: SettingsDep, organisation_id: uuid.UUID, body: ReasonIn
) -> QualificationOut:
    q = parties.set_suspension(
        session, ctx=ctx, settings=settings, org_id=organisation_id, suspend=False, reason=body.reason
    )
    _, org = parties.visible_qualification(session, ctx=ctx, qualification_id=q.id)
    return qualification_out(q, org)


# --- profiles ---------------------------------------------------------------------------------------------


@router.get("/enterprises/{organisation_id}", operation_id="read_enterprise")
def read_enterprise(session: DB, ctx: ApiCtx, organisation_id: uuid.UUID) -> dict[str, object]:
    org, _ = parties.read_enterprise(session, ctx=ctx, org_id=organisation_id)
    return parties.case_details(session, org)


@router.put("/enterprises/{organisation_id}/people", operation_id="set_enterprise_people")
def set_enterprise_people(
    session: DB, ctx: ApiCtx, settings: SettingsDep, organisation_id: uuid.UUID, body: list[PersonIn]
) -> list[dict[str, object]]:
    """Replace the shareholders (with shares) and key people: legal representative, directors,
    supervisors, the actual controller."""
    people = parties.set_people(session, ctx=ctx, settings=settings, org_id=organisation_id, people=body)
    return [
        {
            "role": p.role,
            "name": p.name,
            "identifier": p.identifier_masked,
            "share_percent": p.share_bp / 100 if p.share_bp else None,
        }
        for p in people
    ]


@router.get("/investors/{organisation_id}", operation_id="read_investor")
def read_investor(session: DB, ctx: ApiCtx, organisation_id: uuid.UUID) -> dict[str, object]:
    org, _ = parties.read_investor(session, ctx=ctx, org_id=organisation_id)
    return parties.case_details(session, org)


@router.post(
    "/investors/{organisation_id}/risk-assessment",
    operation_id="assess_risk_tolerance",
    response_model=RiskAssessmentOut,
)
def assess_risk_tolerance(
    session: DB, ctx: ApiCtx, organisation_id: uuid.UUID, body: RiskAssessmentIn
) -> RiskAssessmentOut:
    assessment = parties.assess_risk(session, ctx=ctx, org_id=organisation_id, answers=body.answers)
    return RiskAssessmentOut(
        score=assessment.score,
        level=assessment.level.value,
        breakdown=[{"question": q, "option": o, "points": p} for q, o, p in assessment.breakdown],
    )


@router.get("/agencies/{organisation_id}", operation_id="read_agency")
def read_agency(session: DB, ctx: ApiCtx, organisation_id: uuid.UUID) -> dict[str, object]:
    org, _, _ = parties.read_agency(session, ctx=ctx, org_id=organisation_id)
    return parties.case_details(session, org)


@router.put("/agencies/{organisation_id}/services", operation_id="set_agency_services")
def set_agency_services(
    session: DB, ctx: ApiCtx, organisation_id: uuid.UUID, body: list[AgencyServiceIn]
) -> list[dict[str, object]]:
    services = parties.set_agency_services(session, ctx=ctx, org_id=organisation_id, services=body)
    return [
        {
            "agency_type": s.agency_type,
            "service": s.service,
            "fee": str(Money(s.fee_minor, s.currency)),
            "sla_hours": s.sla_hours,
        }
        for s in services
    ]


@router.get(
    "/organisations/{organisation_id}/bank-accounts",
    operation_id="list_bank_accounts",
    response_model=list[BankAccountOut],
)
def list_bank_accounts(session: DB, ctx: ApiCtx, organisation_id: uuid.UUID) -> list[BankAccountOut]:
    return [bank_account_out(a) for a in parties.bank_accounts_of(session, ctx=ctx, org_id=organisation_id)]


@router.post(
    "/organisations/{organisation_id}/bank-accounts",
    operation_id="create_bank_account",
    response_model=BankAccountOut,
    status_code=201,
)
def create_bank_account(
    session: DB, ctx: ApiCtx, settings: SettingsDep, organisation_id: uuid.UUID, body: BankAccountIn
) -> BankAccountOut:
    """Add the party's own account for payouts; an authentication agency verifies it later."""
    return bank_account_out(
        parties.add_bank_account(session, ctx=ctx, settings=settings, org_id=organisation_id, account=body)
    )


# --- documents --------------------------------------------------------------------------------------------


@router.post("/documents", operation_id="upload_document", response_model=DocumentOut, status_code=201)
async def upload_document(
    request: Request,
    session: DB,
    ctx: ApiCtx,
    category: Annotated[DocumentCategory, Form()],
    file: Annotated[UploadFile, File(description="PDF, PNG or JPEG, at most 10 MB")],
) -> DocumentOut:
    content = await file.read(MAX_UPLOAD_BYTES + 1)
    document = await run_in_threadpool(  # the database work off the event loop
        parties.upload_document,
        session,
        ctx=ctx,
        storage=request.app.state.storage,
        category=category,
        filename=file.filename or "upload",
        content=content,
    )
    return DocumentOut.model_validate(document)


@router.get("/documents/{document_id}", operation_id="read_document", response_model=DocumentOut)
def read_document(session: DB, ctx: ApiCtx, document_id: uuid.UUID) -> DocumentOut:
    return DocumentOut.model_validate(parties.visible_document(session, ctx=ctx, document_id=document_id))


@router.get("/documents/{document_id}/content", operation_id="download_document")
def download_document(request: Request, session: DB, ctx: ApiCtx, document_id: uuid.UUID) -> Response:
    document = parties.visible_document(session, ctx=ctx, document_id=document_id)
    content = request.app.state.storage.get(document.stored_name)
    return Response(
        content,
        media_type=document.content_type,
        headers={
            "Content-Disposition": f'attachment; filename="{document.id}{_ext(document.content_type)}"',
            "X-Content-SHA256": document.sha256,
        },
    )


def _ext(content_type: str) -> str:
    return {"application/pdf": ".pdf", "image/png": ".png", "image/jpeg": ".jpg"}.get(content_type, "")


# --- consents ---------------------------------------------------------------------------------------------


@router.post("/consents", operation_id="grant_consent", response_model=ConsentOut, status_code=201)
def grant_consent(
    request: Request, session: DB, ctx: ApiCtx, settings: SettingsDep, body: ConsentIn
) -> ConsentOut:
    """The enterprise lets a class of recipients see a category of its data, for a purpose, until a date."""
    return consent_out(parties.grant_consent(session, ctx=ctx, settings=settings, consent=body), request)


@router.get("/consents", operation_id="list_consents", response_model=list[ConsentOut])
def list_consents(
    request: Request,
    session: DB,
    ctx: ApiCtx,
    organisation_id: uuid.UUID | None = Query(
        None, description="Regulators and the operator: whose consents"
    ),
) -> list[ConsentOut]:
    return [consent_out(c, request) for c in parties.list_consents(session, ctx=ctx, org_id=organisation_id)]


@router.delete("/consents/{consent_id}", operation_id="revoke_consent", response_model=ConsentOut)
def revoke_consent(request: Request, session: DB, ctx: ApiCtx, consent_id: uuid.UUID) -> ConsentOut:
    return consent_out(parties.revoke_consent(session, ctx=ctx, consent_id=consent_id), request)
