"""Pages of the admittance review and of the parties' own settings.

Applicants follow their review and answer requests for information (/qualification); everyone reads
their inbox; regulators work the review queue and decide cases; enterprises manage consents;
investors take the risk questionnaire; the operator records LPR fixings. Every page calls the same
service functions as the JSON API and shows a refused input beside its field.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from yunrong.config import Settings
from yunrong.deps import DB, SettingsDep
from yunrong.identity import repository as identity_repo
from yunrong.identity.model import Action, Actor, Portal
from yunrong.kit.clock import business_date
from yunrong.kit.errors import FieldProblem, NotFound, YunrongError
from yunrong.messaging import service as messaging
from yunrong.parties import risk
from yunrong.parties import service as parties
from yunrong.parties.model import (
    MAX_UPLOAD_BYTES,
    DataCategory,
    DocumentCategory,
    QualificationStatus,
    RecipientClass,
    ReviewAction,
)
from yunrong.parties.schemas import ConsentIn, DecisionIn, LprIn, ReasonIn, ResponseIn
from yunrong.parties.tables import Qualification, QualificationEvent
from yunrong.supervision import rates
from yunrong.web.forms import FormDep, field_errors, problems_of, text, upload, values
from yunrong.web.i18n import N_
from yunrong.web.rendering import Csrf, guard, page_context, render, render_error
from yunrong.web.rendering import parse_uuid as _uuid

router = APIRouter(include_in_schema=False)

S = QualificationStatus
DECISIONS = (ReviewAction.APPROVE, ReviewAction.REQUEST_INFO, ReviewAction.REJECT)


def _errors(exc: YunrongError, fields: tuple[str, ...], *, default: str = "form") -> dict[str, str]:
    """A service error keyed by field; an error without a field goes to ``default``."""
    errors = field_errors(exc.problems, fields)
    unplaced = errors.pop("form", None)
    if not exc.problems or unplaced:
        errors.setdefault(default, unplaced or exc.detail)
    return errors


def _today(request: Request, settings: Settings) -> Any:
    return business_date(request.app.state.clock.now(), settings.timezone)


def _events(session: Session, qualification: Qualification) -> list[QualificationEvent]:
    """The case history, oldest first (the same service call as the API's case view)."""
    return parties.events_of(session, qualification.id)


def _not_found(request: Request) -> Response:
    return render_error(request, 404, N_("Not found"), N_("no such qualification"))


# --- the applicant's own review -------------------------------------------------------------------------

RESPONSE_FIELDS = ("message", "file")


def _my_case(
    request: Request, session: Session, actor: Actor, *, status: int = 200, **extra: Any
) -> Response:
    ctx = page_context(request, actor)
    try:
        qualification, org = parties.my_qualification(session, ctx=ctx)
    except NotFound:
        return render_error(
            request, 404, N_("Not found"), N_("Your organisation is an authority and has no admittance case.")
        )
    return render(
        request,
        "parties/qualification.html",
        status=status,
        qualification=qualification,
        org=org,
        events=_events(session, qualification),
        documents=parties.documents_of(session, org.id),
        can_respond=actor.can(Action.RESPOND_TO_REVIEW) and actor.can(Action.UPLOAD_DOCUMENT),
        **extra,
    )


@router.get("/qualification")
def my_qualification(request: Request, session: DB, done: str = "") -> Response:
    got = guard(request, session, None, Action.READ_QUALIFICATION)
    if isinstance(got, Response):
        return got
    return _my_case(request, session, got, done=done)


@router.post("/qualification/respond", dependencies=[Csrf])
def respond(request: Request, session: DB, settings: SettingsDep, form: FormDep) -> Response:
    got = guard(request, session, None, Action.RESPOND_TO_REVIEW)
    if isinstance(got, Response):
        return got
    ctx = page_context(request, got)
    message = text(form, "message")
    file = upload(form, "file")
    try:
        ResponseIn(message=message)
    except ValidationError as exc:
        errors = field_errors(problems_of(exc), RESPONSE_FIELDS)
        return _my_case(request, session, got, status=422, errors=errors, form={"message": message})
    try:
        qualification, _ = parties.my_qualification(session, ctx=ctx)
        document_ids: list[uuid.UUID] = []
        if file is not None:
            document = parties.upload_document(
                session,
                ctx=ctx,
                storage=request.app.state.storage,
                category=DocumentCategory.SUPPORTING,
                filename=file.filename or "upload",
                content=file.file.read(MAX_UPLOAD_BYTES + 1),
            )
            document_ids.append(document.id)
        parties.respond(
            session,
            ctx=ctx,
            settings=settings,
            qualification_id=qualification.id,
            message=message,
            document_ids=document_ids,
        )
    except YunrongError as exc:
        session.rollback()
        errors = _errors(exc, RESPONSE_FIELDS)
        return _my_case(request, session, got, status=exc.status, errors=errors, form={"message": message})
    return RedirectResponse("/qualification?done=responded", status_code=303)


@router.get("/documents/{document_id}/content")
def document_content(request: Request, session: DB, document_id: str) -> Response:
    got = guard(request, session, None, Action.READ_DOCUMENT)
    if isinstance(got, Response):
        return got
    doc_id = _uuid(document_id)
    try:
        if doc_id is None:
            raise NotFound("no such document")
        document = parties.visible_document(session, ctx=page_context(request, got), document_id=doc_id)
    except NotFound:
        return render_error(request, 404, N_("Not found"), N_("no such document"))
    content = request.app.state.storage.get(document.stored_name)
    extension = {"application/pdf": ".pdf", "image/png": ".png", "image/jpeg": ".jpg"}
    return Response(
        content,
        media_type=document.content_type,
        headers={
            "Content-Disposition": (
                f'attachment; filename="{document.id}{extension.get(document.content_type, "")}"'
            ),
            "X-Content-SHA256": document.sha256,
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )


# --- inbox ------------------------------------------------------------------------------------------------


@router.get("/inbox")
def inbox(request: Request, session: DB) -> Response:
    got = guard(request, session, None, Action.READ_NOTIFICATIONS)
    if isinstance(got, Response):
        return got
    notes = messaging.list_notifications(session, ctx=page_context(request, got), limit=100)
    return render(request, "parties/inbox.html", notifications=notes)


@router.post("/inbox/{notification_id}/read", dependencies=[Csrf])
def inbox_mark_read(request: Request, session: DB, notification_id: str) -> Response:
    got = guard(request, session, None, Action.READ_NOTIFICATIONS)
    if isinstance(got, Response):
        return got
    note_id = _uuid(notification_id)
    try:
        if note_id is None:
            raise NotFound("no such message")
        messaging.mark_read(session, ctx=page_context(request, got), notification_id=note_id)
    except NotFound:
        return render_error(request, 404, N_("Not found"), N_("no such message"))
    return RedirectResponse("/inbox", status_code=303)


@router.post("/inbox/read-all", dependencies=[Csrf])
def inbox_mark_all_read(request: Request, session: DB) -> Response:
    got = guard(request, session, None, Action.READ_NOTIFICATIONS)
    if isinstance(got, Response):
        return got
    ctx = page_context(request, got)
    for note in messaging.list_notifications(session, ctx=ctx, unread_only=True, limit=1000):
        messaging.mark_read(session, ctx=ctx, notification_id=note.id)
    return RedirectResponse("/inbox", status_code=303)


# --- regulator: the review queue and the case page ------------------------------------------------------

DECISION_FIELDS = ("decision", "reason")
SUSPENSION_FIELDS = ("suspension_reason",)


@router.get("/regulator/queue")
def review_queue(request: Request, session: DB, status: str = "") -> Response:
    got = guard(request, session, Portal.REGULATOR, Action.REVIEW_QUALIFICATIONS)
    if isinstance(got, Response):
        return got
    chosen = S(status) if status in {S.PENDING, S.AWAITING_SECOND_APPROVAL, S.INFO_REQUESTED} else None
    rows = parties.list_pending(session, ctx=page_context(request, got), status=chosen)
    return render(
        request,
        "parties/queue.html",
        rows=rows,
        current_status=chosen.value if chosen else "",
        statuses=[S.PENDING.value, S.AWAITING_SECOND_APPROVAL.value, S.INFO_REQUESTED.value],
    )


def _case_page(
    request: Request,
    session: Session,
    actor: Actor,
    qualification_id: uuid.UUID,
    *,
    status: int = 200,
    **extra: Any,
) -> Response:
    ctx = page_context(request, actor)
    try:
        qualification, org = parties.visible_qualification(
            session, ctx=ctx, qualification_id=qualification_id
        )
    except NotFound:
        return _not_found(request)
    return render(
        request,
        "parties/case.html",
        status=status,
        qualification=qualification,
        org=org,
        profile=parties.case_details(session, org),
        people=parties.people_of(session, org.id),
        bank_accounts=parties.bank_accounts_of(session, ctx=ctx, org_id=org.id),
        documents=parties.documents_of(session, org.id),
        users=identity_repo.users_of(session, org.id),
        events=_events(session, qualification),
        decisions=[d.value for d in DECISIONS],
        my_first_approval=qualification.first_approver_id is not None
        and qualification.first_approver_id == str(actor.user_id),
        can_decide=actor.can(Action.REVIEW_QUALIFICATIONS)
        and qualification.status in (S.PENDING, S.AWAITING_SECOND_APPROVAL, S.INFO_REQUESTED),
        can_suspend=actor.can(Action.SUSPEND_PARTY) and qualification.status in (S.APPROVED, S.SUSPENDED),
        **extra,
    )


@router.get("/regulator/qualifications/{qualification_id}")
def review_case(request: Request, session: DB, qualification_id: str, done: str = "") -> Response:
    got = guard(request, session, Portal.REGULATOR, Action.READ_QUALIFICATION)
    if isinstance(got, Response):
        return got
    case_id = _uuid(qualification_id)
    if case_id is None:
        return _not_found(request)
    return _case_page(request, session, got, case_id, done=done)


@router.post("/regulator/qualifications/{qualification_id}/decision", dependencies=[Csrf])
def review_decide(
    request: Request, session: DB, settings: SettingsDep, qualification_id: str, form: FormDep
) -> Response:
    got = guard(request, session, Portal.REGULATOR, Action.REVIEW_QUALIFICATIONS)
    if isinstance(got, Response):
        return got
    case_id = _uuid(qualification_id)
    if case_id is None:
        return _not_found(request)
    submitted = values(form, DECISION_FIELDS)
    try:
        body = DecisionIn(decision=submitted["decision"], reason=submitted["reason"])
    except ValidationError as exc:
        errors = field_errors(problems_of(exc), DECISION_FIELDS)
        return _case_page(request, session, got, case_id, status=422, errors=errors, form=submitted)
    try:
        parties.decide(
            session,
            ctx=page_context(request, got),
            settings=settings,
            qualification_id=case_id,
            decision=body.decision,
            reason=body.reason,
        )
    except NotFound:
        session.rollback()
        return _not_found(request)
    except YunrongError as exc:
        session.rollback()
        errors = _errors(exc, DECISION_FIELDS)
        if "form" in errors:
            errors["form_title"] = type(exc).title
        return _case_page(request, session, got, case_id, status=exc.status, errors=errors, form=submitted)
    return RedirectResponse(
        f"/regulator/qualifications/{case_id}?done={body.decision.value}", status_code=303
    )


@router.post("/regulator/qualifications/{qualification_id}/suspension", dependencies=[Csrf])
def review_suspension(
    request: Request, session: DB, settings: SettingsDep, qualification_id: str, form: FormDep
) -> Response:
    got = guard(request, session, Portal.REGULATOR, Action.SUSPEND_PARTY)
    if isinstance(got, Response):
        return got
    case_id = _uuid(qualification_id)
    if case_id is None:
        return _not_found(request)
    ctx = page_context(request, got)
    submitted = values(form, ("suspension_reason", "action"))
    try:
        qualification, org = parties.visible_qualification(session, ctx=ctx, qualification_id=case_id)
    except NotFound:
        return _not_found(request)
    try:
        reason = ReasonIn(reason=submitted["suspension_reason"]).reason
    except ValidationError as exc:
        errors = field_errors(problems_of(exc), ("reason",), prefix=())
        errors = {"suspension_reason": errors.get("reason", N_("Required."))}
        return _case_page(request, session, got, case_id, status=422, errors=errors, form=submitted)
    suspend = submitted["action"] != ReviewAction.REINSTATE.value
    try:
        parties.set_suspension(
            session, ctx=ctx, settings=settings, org_id=org.id, suspend=suspend, reason=reason
        )
    except YunrongError as exc:
        session.rollback()
        errors = _errors(exc, SUSPENSION_FIELDS, default="suspension_reason")
        return _case_page(request, session, got, case_id, status=exc.status, errors=errors, form=submitted)
    done = ReviewAction.SUSPEND if suspend else ReviewAction.REINSTATE
    return RedirectResponse(
        f"/regulator/qualifications/{qualification.id}?done={done.value}", status_code=303
    )


# --- enterprise: consents ----------------------------------------------------------------------------------

CONSENT_FIELDS = ("data_category", "recipient_class", "purpose", "valid_until")


def _consents_page(
    request: Request, session: Session, settings: Settings, actor: Actor, *, status: int = 200, **extra: Any
) -> Response:
    consents = parties.list_consents(session, ctx=page_context(request, actor))
    today = _today(request, settings)
    return render(
        request,
        "parties/consents.html",
        status=status,
        consents=[(c, parties.consent_active(c, today)) for c in consents],
        data_categories=[c.value for c in DataCategory],
        recipient_classes=[c.value for c in RecipientClass],
        can_manage=actor.can(Action.MANAGE_CONSENTS),
        **extra,
    )


@router.get("/enterprise/consents")
def consents(request: Request, session: DB, settings: SettingsDep, done: str = "") -> Response:
    got = guard(request, session, Portal.ENTERPRISE, Action.READ_PARTY)
    if isinstance(got, Response):
        return got
    return _consents_page(request, session, settings, got, done=done)


@router.post("/enterprise/consents", dependencies=[Csrf])
def consents_grant(request: Request, session: DB, settings: SettingsDep, form: FormDep) -> Response:
    got = guard(request, session, Portal.ENTERPRISE, Action.MANAGE_CONSENTS)
    if isinstance(got, Response):
        return got
    submitted = values(form, CONSENT_FIELDS)
    try:
        body = ConsentIn.model_validate({k: v for k, v in submitted.items() if v})
    except ValidationError as exc:
        errors = field_errors(problems_of(exc), CONSENT_FIELDS)
        return _consents_page(request, session, settings, got, status=422, errors=errors, form=submitted)
    try:
        parties.grant_consent(session, ctx=page_context(request, got), settings=settings, consent=body)
    except YunrongError as exc:
        session.rollback()
        errors = _errors(exc, CONSENT_FIELDS)
        return _consents_page(
            request, session, settings, got, status=exc.status, errors=errors, form=submitted
        )
    return RedirectResponse("/enterprise/consents?done=granted", status_code=303)


@router.post("/enterprise/consents/{consent_id}/revoke", dependencies=[Csrf])
def consents_revoke(request: Request, session: DB, consent_id: str) -> Response:
    got = guard(request, session, Portal.ENTERPRISE, Action.MANAGE_CONSENTS)
    if isinstance(got, Response):
        return got
    found = _uuid(consent_id)
    try:
        if found is None:
            raise NotFound("no such consent")
        parties.revoke_consent(session, ctx=page_context(request, got), consent_id=found)
    except NotFound:
        return render_error(request, 404, N_("Not found"), N_("no such consent"))
    return RedirectResponse("/enterprise/consents?done=revoked", status_code=303)


# --- investor: the risk questionnaire --------------------------------------------------------------------


def _risk_page(
    request: Request, session: Session, actor: Actor, *, status: int = 200, **extra: Any
) -> Response:
    assert actor.organisation_id is not None
    _, investor = parties.read_investor(
        session, ctx=page_context(request, actor), org_id=actor.organisation_id
    )
    form = extra.pop("form", None) or {
        f"risk_answers.{k}": v for k, v in (investor.risk_answers or {}).items()
    }
    return render(
        request,
        "parties/risk.html",
        status=status,
        investor=investor,
        questions=risk.QUESTIONS,
        form=form,
        **extra,
    )


@router.get("/investor/risk")
def risk_profile(request: Request, session: DB) -> Response:
    got = guard(request, session, Portal.INVESTOR, Action.ASSESS_RISK_TOLERANCE)
    if isinstance(got, Response):
        return got
    return _risk_page(request, session, got)


@router.post("/investor/risk", dependencies=[Csrf])
def risk_assess(request: Request, session: DB, form: FormDep) -> Response:
    got = guard(request, session, Portal.INVESTOR, Action.ASSESS_RISK_TOLERANCE)
    if isinstance(got, Response):
        return got
    assert got.organisation_id is not None
    answers = {q.key: text(form, f"risk_answers.{q.key}") for q in risk.QUESTIONS}
    answers = {k: v for k, v in answers.items() if v}
    fields = tuple(f"risk_answers.{q.key}" for q in risk.QUESTIONS)
    submitted = {f"risk_answers.{k}": v for k, v in answers.items()}
    try:
        assessment = parties.assess_risk(
            session, ctx=page_context(request, got), org_id=got.organisation_id, answers=answers
        )
    except YunrongError as exc:
        session.rollback()
        problems = [FieldProblem(("risk_answers", *p.loc[1:]), p.msg) for p in exc.problems]
        errors = field_errors(problems, fields)
        return _risk_page(request, session, got, status=exc.status, errors=errors, form=submitted)
    return _risk_page(request, session, got, assessment=assessment, form=submitted)


# --- operator: the LPR table ------------------------------------------------------------------------------

LPR_FIELDS = ("effective_on", "one_year_percent", "source")


def _lpr_page(
    request: Request, session: Session, settings: Settings, *, status: int = 200, **extra: Any
) -> Response:
    today = _today(request, settings)
    return render(
        request,
        "parties/lpr.html",
        status=status,
        rates=rates.list_rates(session),
        policy=settings.policy,
        current_rate=rates.rate_on(session, today),
        current_cap=rates.cap_on(session, settings.policy, today),
        **extra,
    )


@router.get("/operator/lpr")
def lpr(request: Request, session: DB, settings: SettingsDep, done: str = "") -> Response:
    got = guard(request, session, Portal.OPERATOR, Action.SET_LPR)
    if isinstance(got, Response):
        return got
    return _lpr_page(request, session, settings, done=done)


@router.post("/operator/lpr", dependencies=[Csrf])
def lpr_set(request: Request, session: DB, settings: SettingsDep, form: FormDep) -> Response:
    got = guard(request, session, Portal.OPERATOR, Action.SET_LPR)
    if isinstance(got, Response):
        return got
    submitted = values(form, LPR_FIELDS)
    try:
        body = LprIn.model_validate({k: v for k, v in submitted.items() if v})
    except ValidationError as exc:
        errors = field_errors(problems_of(exc), LPR_FIELDS)
        return _lpr_page(request, session, settings, status=422, errors=errors, form=submitted)
    try:
        rates.set_rate(
            session,
            ctx=page_context(request, got),
            effective_on=body.effective_on,
            percent=body.one_year_percent,
            source=body.source,
        )
    except YunrongError as exc:
        session.rollback()
        return _lpr_page(
            request, session, settings, status=exc.status, errors=_errors(exc, LPR_FIELDS), form=submitted
        )
    return RedirectResponse("/operator/lpr?done=recorded", status_code=303)
