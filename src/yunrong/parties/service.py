"""Use cases of parties: self-registration, the admittance review, suspension, profiles,
documents and consents. Services never commit; the request or command owns the transaction."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from yunrong.config import Settings
from yunrong.identity import repository as identity_repo
from yunrong.identity import security
from yunrong.identity import service as identity
from yunrong.identity.model import Action, Actor, Context, InvestorKind, OrgType, Role
from yunrong.identity.service import actor_for, require
from yunrong.identity.tables import Organisation, User
from yunrong.kit.clock import business_date
from yunrong.kit.errors import FieldProblem, InvalidInput, NotFound
from yunrong.kit.ids import human_ref, uuid7
from yunrong.kit.money import Money, MoneyError
from yunrong.messaging.service import Message, notify_organisation
from yunrong.parties import codes, risk, size
from yunrong.parties.model import MAX_UPLOAD_BYTES as MAX_UPLOAD_BYTES
from yunrong.parties.model import (
    DocumentCategory,
    PartyNotAdmitted,
    PartySuspended,
    QualificationStatus,
    ReviewAction,
    blocking_status,
    mask,
    next_status,
    sniff,
)
from yunrong.parties.schemas import (
    AgencyRegistrationIn,
    AgencyServiceIn,
    BankAccountIn,
    ConsentIn,
    EnterpriseRegistrationIn,
    InvestorRegistrationIn,
    PersonIn,
)
from yunrong.parties.storage import Storage
from yunrong.parties.tables import (
    Agency,
    AgencyService,
    BankAccount,
    Consent,
    Document,
    Enterprise,
    EnterprisePerson,
    Investor,
    Qualification,
    QualificationEvent,
)
from yunrong.supervision import service as audit

S = QualificationStatus
_P = TypeVar("_P", Enterprise, Investor, Agency)


@dataclass(frozen=True)
class Registration:
    organisation: Organisation
    user: User
    qualification: Qualification
    #: For roles that need two-factor: the TOTP secret, to show the applicant once.
    totp_secret: str | None = None


# --- small helpers ---------------------------------------------------------------------------------


def _minor(amount: Decimal, currency: str, loc: tuple[str | int, ...], problems: list[FieldProblem]) -> int:
    try:
        return Money.of(amount, currency).minor
    except MoneyError as exc:
        problems.append(FieldProblem(loc, str(exc)))
        return 0


def _digest(settings: Settings, value: str) -> str:
    """A keyed digest for uniqueness checks on encrypted identifiers (no plaintext is stored)."""
    key = settings.secret_key.get_secret_value().encode()
    return hmac.new(key, f"identifier:{value}".encode(), hashlib.sha256).hexdigest()


def _encrypt(settings: Settings, value: str) -> str:
    return security.encrypt_secret(settings.secret_key.get_secret_value(), value)


def _today(ctx: Context, settings: Settings) -> date:
    return business_date(ctx.now(), settings.timezone)


def _uscc_problems(code: str, loc: tuple[str | int, ...]) -> list[FieldProblem]:
    return [FieldProblem(loc, p) for p in codes.validate_uscc(code)]


def _region_problems(code: str, loc: tuple[str | int, ...]) -> list[FieldProblem]:
    return [FieldProblem(loc, p) for p in codes.validate_region(code)]


def _applicant_problems(session: Session, data: object) -> list[FieldProblem]:
    applicant = data.applicant  # type: ignore[attr-defined]
    return [
        FieldProblem(("applicant", *p.loc), p.msg)
        for p in identity.user_problems(
            session, email=applicant.email, name=applicant.name, password=applicant.password
        )
    ]


def _people_problems(people: Sequence[PersonIn], today: date) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    total_share = Decimal(0)
    for i, person in enumerate(people):
        loc = ("people", i, "identifier")
        if person.identifier:
            ident = person.identifier.upper()
            if (len(ident) == 18 and not codes.validate_resident_id(ident, today=today)) or (
                len(ident) == 18 and not codes.validate_uscc(ident)
            ):
                pass
            else:
                problems.append(
                    FieldProblem(loc, "not a valid resident ID number or unified social credit code")
                )
        if person.share_percent is not None:
            if person.role != "shareholder":
                problems.append(
                    FieldProblem(("people", i, "share_percent"), "only shareholders hold a share")
                )
            total_share += person.share_percent
    if total_share > 100:
        problems.append(FieldProblem(("people",), f"shareholdings add up to {total_share}%, more than 100%"))
    return problems


def _add_people(
    session: Session, *, settings: Settings, org_id: uuid.UUID, people: Sequence[PersonIn], ctx: Context
) -> None:
    for person in people:
        ident = person.identifier.upper() if person.identifier else None
        session.add(
            EnterprisePerson(
                organisation_id=org_id,
                role=person.role.value,
                name=person.name,
                identifier_enc=_encrypt(settings, ident) if ident else None,
                identifier_masked=mask(ident) if ident else None,
                share_bp=int(person.share_percent * 100) if person.share_percent is not None else None,
                created_at=ctx.now(),
            )
        )


def _add_bank_account(
    session: Session, *, settings: Settings, org_id: uuid.UUID, account: BankAccountIn, ctx: Context
) -> BankAccount:
    row = BankAccount(
        organisation_id=org_id,
        bank_name=account.bank_name,
        account_name=account.account_name,
        account_number_enc=_encrypt(settings, account.account_number),
        account_number_masked=mask(account.account_number),
        currency=account.currency,
        created_at=ctx.now(),
    )
    session.add(row)
    return row


def _new_party(
    session: Session,
    *,
    ctx: Context,
    settings: Settings,
    org_type: OrgType,
    name: str,
    investor_kind: InvestorKind | None,
    applicant_email: str,
    applicant_name: str,
    applicant_password: str,
    role: Role,
) -> tuple[Organisation, User, Context, str | None]:
    org = identity.insert_organisation(
        session, ctx=ctx, org_type=org_type, name=name, investor_kind=investor_kind
    )
    user, totp_secret = identity.insert_user(
        session,
        ctx=ctx,
        settings=settings,
        org=org,
        email=applicant_email,
        name=applicant_name,
        password=applicant_password,
        roles=frozenset({role}),
    )
    applicant_ctx = Context(
        actor=actor_for(user, org, "registration"), clock=ctx.clock, request_id=ctx.request_id
    )
    return org, user, applicant_ctx, totp_secret


# --- registration ----------------------------------------------------------------------------------


def register_enterprise(
    session: Session, *, ctx: Context, settings: Settings, data: EnterpriseRegistrationIn
) -> Registration:
    """Public self-registration of an SME. Every problem is reported at once; nothing is saved
    unless all is well."""
    e = data.enterprise
    today = _today(ctx, settings)
    problems = _uscc_problems(e.credit_code, ("enterprise", "credit_code"))
    if not problems and session.scalar(
        select(Enterprise.organisation_id).where(Enterprise.credit_code == e.credit_code)
    ):
        problems.append(
            FieldProblem(
                ("enterprise", "credit_code"), "an enterprise with this credit code is already registered"
            )
        )
    industry = None
    try:
        industry = codes.parse_industry(e.industry_code)
    except ValueError as exc:
        problems.append(FieldProblem(("enterprise", "industry_code"), str(exc)))
    problems += _region_problems(e.region_code, ("enterprise", "region_code"))
    if e.founded_on > today:
        problems.append(FieldProblem(("enterprise", "founded_on"), "must not be in the future"))
    capital = _minor(e.registered_capital, "CNY", ("enterprise", "registered_capital"), problems)
    revenue = _minor(e.annual_revenue, "CNY", ("enterprise", "annual_revenue"), problems)
    assets = _minor(e.total_assets, "CNY", ("enterprise", "total_assets"), problems)
    problems += _applicant_problems(session, data)
    problems += _people_problems(data.people, today)
    if identity_repo.organisation_by_name(session, OrgType.ENTERPRISE.value, e.name) is not None:
        problems.append(
            FieldProblem(("enterprise", "name"), "an enterprise with this name is already registered")
        )
    if problems or industry is None:
        raise InvalidInput("the registration has problems; nothing was saved", problems)
    decision = size.classify(
        industry, employees=e.employees, revenue_minor=revenue, total_assets_minor=assets
    )
    org, user, applicant_ctx, totp_secret = _new_party(
        session,
        ctx=ctx,
        settings=settings,
        org_type=OrgType.ENTERPRISE,
        name=e.name,
        investor_kind=None,
        applicant_email=data.applicant.email,
        applicant_name=data.applicant.name,
        applicant_password=data.applicant.password,
        role=Role.ENTERPRISE_ADMIN,
    )
    session.add(
        Enterprise(
            organisation_id=org.id,
            credit_code=e.credit_code,
            legal_representative=e.legal_representative,
            registered_capital_minor=capital,
            currency="CNY",
            founded_on=e.founded_on,
            industry_code=industry.code,
            region_code=e.region_code,
            employees=e.employees,
            annual_revenue_minor=revenue,
            total_assets_minor=assets,
            size_class=decision.size.value,
            size_group=decision.group,
            size_rule_en=decision.rule_en,
            size_rule_zh=decision.rule_zh,
            contact_name=e.contact.name,
            contact_phone=e.contact.phone,
            contact_email=e.contact.email.lower(),
            created_at=ctx.now(),
        )
    )
    _add_people(session, settings=settings, org_id=org.id, people=data.people, ctx=ctx)
    if data.bank_account:
        _add_bank_account(session, settings=settings, org_id=org.id, account=data.bank_account, ctx=ctx)
    session.flush()
    qualification = open_qualification(session, ctx=applicant_ctx, org=org)
    return Registration(org, user, qualification, totp_secret)


def register_investor(
    session: Session, *, ctx: Context, settings: Settings, data: InvestorRegistrationIn
) -> Registration:
    i = data.investor
    today = _today(ctx, settings)
    problems: list[FieldProblem] = []
    resident_digest = None
    if i.kind is InvestorKind.PERSON:
        if not i.resident_id:
            problems.append(FieldProblem(("investor", "resident_id"), "required for an individual investor"))
        else:
            ident = i.resident_id.upper()
            problems += [
                FieldProblem(("investor", "resident_id"), p)
                for p in codes.validate_resident_id(ident, today=today)
            ]
            resident_digest = _digest(settings, ident)
            if not problems and session.scalar(
                select(Investor.organisation_id).where(Investor.resident_id_digest == resident_digest)
            ):
                problems.append(
                    FieldProblem(
                        ("investor", "resident_id"), "an investor with this ID number is already registered"
                    )
                )
            elif not problems and codes.birth_date_of(ident) > date(
                today.year - 18, today.month, min(today.day, 28)
            ):
                problems.append(
                    FieldProblem(("investor", "resident_id"), "investors must be adults (18 or older)")
                )
        if i.institution_type or i.credit_code:
            problems.append(
                FieldProblem(
                    ("investor", "institution_type"), "only institutions have a type and credit code"
                )
            )
    else:
        if i.institution_type is None:
            problems.append(FieldProblem(("investor", "institution_type"), "required for an institution"))
        if not i.credit_code:
            problems.append(FieldProblem(("investor", "credit_code"), "required for an institution"))
        else:
            problems += _uscc_problems(i.credit_code, ("investor", "credit_code"))
            if session.scalar(select(Investor.organisation_id).where(Investor.credit_code == i.credit_code)):
                problems.append(
                    FieldProblem(
                        ("investor", "credit_code"), "an investor with this credit code is already registered"
                    )
                )
        if i.resident_id:
            problems.append(
                FieldProblem(("investor", "resident_id"), "institutions register with a credit code")
            )
    net_worth = _minor(i.net_worth, i.currency, ("investor", "net_worth"), problems)
    income = _minor(i.annual_income, i.currency, ("investor", "annual_income"), problems)
    assessment = None
    if data.risk_answers is not None:
        try:
            assessment = risk.score_answers(data.risk_answers)
        except risk.QuestionnaireError as exc:
            problems += [FieldProblem(("risk_answers", key), msg) for key, msg in exc.problems]
    problems += _applicant_problems(session, data)
    if problems:
        raise InvalidInput("the registration has problems; nothing was saved", problems)
    org, user, applicant_ctx, totp_secret = _new_party(
        session,
        ctx=ctx,
        settings=settings,
        org_type=OrgType.INVESTOR,
        name=i.name,
        investor_kind=i.kind,
        applicant_email=data.applicant.email,
        applicant_name=data.applicant.name,
        applicant_password=data.applicant.password,
        role=Role.INVESTOR,
    )
    resident = i.resident_id.upper() if i.resident_id else None
    session.add(
        Investor(
            organisation_id=org.id,
            kind=i.kind.value,
            institution_type=i.institution_type.value if i.institution_type else None,
            credit_code=i.credit_code,
            resident_id_enc=_encrypt(settings, resident) if resident else None,
            resident_id_masked=mask(resident) if resident else None,
            resident_id_digest=resident_digest,
            contact_phone=i.contact_phone,
            currency=i.currency,
            net_worth_minor=net_worth,
            annual_income_minor=income,
            funds_sources=[s.value for s in i.funds_sources],
            funds_note=i.funds_note,
            risk_score=assessment.score if assessment else None,
            risk_level=assessment.level.value if assessment else None,
            risk_answers=dict(data.risk_answers) if assessment and data.risk_answers else None,
            risk_assessed_at=ctx.now() if assessment else None,
            created_at=ctx.now(),
        )
    )
    if data.bank_account:
        _add_bank_account(session, settings=settings, org_id=org.id, account=data.bank_account, ctx=ctx)
    session.flush()
    qualification = open_qualification(session, ctx=applicant_ctx, org=org)
    return Registration(org, user, qualification, totp_secret)


def _public_key_problem(value: str) -> str | None:
    try:
        raw = base64.b64decode(value, validate=True)
    except (ValueError, TypeError):
        return "must be base64"
    if len(raw) != 32:
        return "must be a 32-byte Ed25519 public key"
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        return "is not an Ed25519 public key"
    return None


def register_agency(
    session: Session, *, ctx: Context, settings: Settings, data: AgencyRegistrationIn
) -> Registration:
    a = data.agency
    problems = _uscc_problems(a.credit_code, ("agency", "credit_code"))
    if not problems and session.scalar(
        select(Agency.organisation_id).where(Agency.credit_code == a.credit_code)
    ):
        problems.append(
            FieldProblem(("agency", "credit_code"), "an agency with this credit code is already registered")
        )
    problems += _region_problems(a.region_code, ("agency", "region_code"))
    key_problem = _public_key_problem(a.public_key)
    if key_problem:
        problems.append(FieldProblem(("agency", "public_key"), key_problem))
    problems += _services_problems(a.services, set(a.types), ("agency", "services"))
    problems += _applicant_problems(session, data)
    if identity_repo.organisation_by_name(session, OrgType.AGENCY.value, a.name) is not None:
        problems.append(FieldProblem(("agency", "name"), "an agency with this name is already registered"))
    if problems:
        raise InvalidInput("the registration has problems; nothing was saved", problems)
    org, user, applicant_ctx, totp_secret = _new_party(
        session,
        ctx=ctx,
        settings=settings,
        org_type=OrgType.AGENCY,
        name=a.name,
        investor_kind=None,
        applicant_email=data.applicant.email,
        applicant_name=data.applicant.name,
        applicant_password=data.applicant.password,
        role=Role.AGENCY_ADMIN,
    )
    session.add(
        Agency(
            organisation_id=org.id,
            credit_code=a.credit_code,
            licence_number=a.licence_number,
            types=sorted({t.value for t in a.types}),
            region_code=a.region_code,
            public_key=a.public_key,
            created_at=ctx.now(),
        )
    )
    _replace_services(session, org_id=org.id, services=a.services)
    session.flush()
    qualification = open_qualification(session, ctx=applicant_ctx, org=org)
    return Registration(org, user, qualification, totp_secret)


def _services_problems(
    services: Sequence[AgencyServiceIn], types: set[object], loc: tuple[str | int, ...]
) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    seen: set[str] = set()
    for i, service in enumerate(services):
        if service.agency_type not in types:
            problems.append(
                FieldProblem((*loc, i, "agency_type"), "the agency is not registered for this type")
            )
        if service.service in seen:
            problems.append(FieldProblem((*loc, i, "service"), "listed twice"))
        seen.add(service.service)
        try:
            Money.of(service.fee, service.currency)
        except MoneyError as exc:
            problems.append(FieldProblem((*loc, i, "fee"), str(exc)))
    return problems


def _replace_services(session: Session, *, org_id: uuid.UUID, services: Sequence[AgencyServiceIn]) -> None:
    for old in session.scalars(select(AgencyService).where(AgencyService.organisation_id == org_id)).all():
        session.delete(old)
    session.flush()
    for service in services:
        session.add(
            AgencyService(
                organisation_id=org_id,
                agency_type=service.agency_type.value,
                service=service.service,
                fee_minor=Money.of(service.fee, service.currency).minor,
                currency=service.currency,
                sla_hours=service.sla_hours,
            )
        )


def set_agency_services(
    session: Session, *, ctx: Context, org_id: uuid.UUID, services: Sequence[AgencyServiceIn]
) -> list[AgencyService]:
    agency = _own_profile(session, ctx=ctx, org_id=org_id, model=Agency)
    problems = _services_problems(services, set(agency.types), ("services",))
    if problems:
        raise InvalidInput("the service catalogue has problems; nothing was saved", problems)
    _replace_services(session, org_id=org_id, services=services)
    session.flush()
    audit.record(
        session,
        ctx=ctx,
        action="agency.services_set",
        object_type="organisation",
        object_id=org_id,
        after=[s.model_dump(mode="json") for s in services],
    )
    return list(session.scalars(select(AgencyService).where(AgencyService.organisation_id == org_id)).all())


# --- the admittance review ---------------------------------------------------------------------------


def open_qualification(session: Session, *, ctx: Context, org: Organisation) -> Qualification:
    """Put a party into review (self-registration, or the operator creating a custodian bank)."""
    now = ctx.now()
    qualification = Qualification(
        ref=human_ref("QUA"),
        organisation_id=org.id,
        status=S.PENDING.value,
        submitted_at=now,
        updated_at=now,
    )
    session.add(qualification)
    session.flush()
    _event(
        session,
        ctx=ctx,
        qualification=qualification,
        action="submit",
        source=None,
        target=S.PENDING,
        reason="registration submitted",
    )
    audit.record(
        session,
        ctx=ctx,
        action="qualification.submit",
        object_type="qualification",
        object_id=qualification.id,
        after={"organisation_id": str(org.id), "status": S.PENDING.value},
    )
    notify_organisation(
        session,
        ctx=ctx,
        organisation_id=org.id,
        message=Message(
            kind="qualification.submitted",
            subject_en=f"Registration {qualification.ref} received",
            subject_zh=f"注册申请 {qualification.ref} 已受理",
            body_en="Your registration is waiting for the regulator's admittance review. We will tell you "
            "of every decision.",
            body_zh="您的注册申请正在等待监管部门的准入审核，每一项决定都会通知您。",
            link="/qualification",
        ),
    )
    return qualification


def _event(
    session: Session,
    *,
    ctx: Context,
    qualification: Qualification,
    action: str,
    source: QualificationStatus | None,
    target: QualificationStatus,
    reason: str,
    detail: dict[str, object] | None = None,
) -> None:
    session.add(
        QualificationEvent(
            qualification_id=qualification.id,
            at=ctx.now(),
            actor_user_id=str(ctx.actor.user_id) if ctx.actor.user_id else None,
            actor_label=ctx.actor.email,
            action=action,
            from_status=source.value if source else None,
            to_status=target.value,
            reason=reason,
            detail=detail or {},
        )
    )


_DECISION_TEXT = {
    S.APPROVED: ("approved", "已获批准"),
    S.AWAITING_SECOND_APPROVAL: (
        "approved by a first regulator and awaits a second",
        "已获一名监管人员批准，等待第二名复核",
    ),
    S.REJECTED: ("rejected", "未获批准"),
    S.INFO_REQUESTED: ("waiting for more information from you", "需要您补充材料"),
    S.SUSPENDED: ("suspended", "已被暂停"),
    S.PENDING: ("back with the regulator for review", "已重新提交监管审核"),
}


def _apply(
    session: Session,
    *,
    ctx: Context,
    settings: Settings,
    qualification: Qualification,
    action: ReviewAction,
    reason: str,
    detail: dict[str, object] | None = None,
) -> Qualification:
    current = S(qualification.status)
    move = next_status(
        action,
        current,
        two_person=settings.policy.two_person_admittance,
        actor_id=str(ctx.actor.user_id),
        first_approver_id=qualification.first_approver_id,
        reason=reason,
    )
    qualification.status = move.target.value
    qualification.last_reason = reason.strip()
    qualification.updated_at = ctx.now()
    if move.target is S.AWAITING_SECOND_APPROVAL:
        qualification.first_approver_id = str(ctx.actor.user_id)
    elif move.target in (S.PENDING, S.INFO_REQUESTED, S.REJECTED):
        qualification.first_approver_id = None
    _event(
        session,
        ctx=ctx,
        qualification=qualification,
        action=action.value,
        source=current,
        target=move.target,
        reason=reason.strip(),
        detail=detail,
    )
    audit.record(
        session,
        ctx=ctx,
        action=f"qualification.{action.value}",
        object_type="qualification",
        object_id=qualification.id,
        before={"status": current.value},
        after={"status": move.target.value},
        detail={"reason": reason.strip()},
    )
    en, zh = _DECISION_TEXT[move.target]
    notify_organisation(
        session,
        ctx=ctx,
        organisation_id=qualification.organisation_id,
        message=Message(
            kind=f"qualification.{move.target.value}",
            subject_en=f"Registration {qualification.ref}: {en}",
            subject_zh=f"注册申请 {qualification.ref}：{zh}",
            body_en=f"Your registration is {en}. Reason: {reason.strip()}",
            body_zh=f"您的注册申请{zh}。理由：{reason.strip()}",
            link="/qualification",
        ),
    )
    session.flush()
    return qualification


def list_pending(
    session: Session, *, ctx: Context, status: QualificationStatus | None = None
) -> list[tuple[Qualification, Organisation]]:
    require(ctx, Action.REVIEW_QUALIFICATIONS)
    statuses = (
        [status.value]
        if status
        else [S.PENDING.value, S.AWAITING_SECOND_APPROVAL.value, S.INFO_REQUESTED.value]
    )
    rows = session.execute(
        select(Qualification, Organisation)
        .join(Organisation, Organisation.id == Qualification.organisation_id)
        .where(Qualification.status.in_(statuses))
        .order_by(Qualification.submitted_at, Qualification.id)
    ).all()
    return [(q, o) for q, o in rows]


def visible_qualification(
    session: Session, *, ctx: Context, qualification_id: uuid.UUID
) -> tuple[Qualification, Organisation]:
    require(ctx, Action.READ_QUALIFICATION)
    qualification = session.get(Qualification, qualification_id)
    if qualification is None or not (
        ctx.actor.sees_all_organisations or qualification.organisation_id == ctx.actor.organisation_id
    ):
        raise NotFound("no such qualification")
    org = session.get(Organisation, qualification.organisation_id)
    assert org is not None
    return qualification, org


def events_of(session: Session, qualification_id: uuid.UUID) -> list[QualificationEvent]:
    """A case's history, oldest first."""
    return list(
        session.scalars(
            select(QualificationEvent)
            .where(QualificationEvent.qualification_id == qualification_id)
            .order_by(QualificationEvent.at, QualificationEvent.id)
        ).all()
    )


def qualification_of(session: Session, org_id: uuid.UUID) -> Qualification | None:
    return session.scalars(select(Qualification).where(Qualification.organisation_id == org_id)).one_or_none()


def my_qualification(session: Session, *, ctx: Context) -> tuple[Qualification, Organisation]:
    if ctx.actor.organisation_id is None:
        raise NotFound("no qualification")
    qualification = qualification_of(session, ctx.actor.organisation_id)
    if qualification is None:
        raise NotFound("your organisation is an authority and has no admittance case")
    return visible_qualification(session, ctx=ctx, qualification_id=qualification.id)


def decide(
    session: Session,
    *,
    ctx: Context,
    settings: Settings,
    qualification_id: uuid.UUID,
    decision: ReviewAction,
    reason: str,
) -> Qualification:
    require(ctx, Action.REVIEW_QUALIFICATIONS)
    if decision not in (ReviewAction.APPROVE, ReviewAction.REJECT, ReviewAction.REQUEST_INFO):
        raise InvalidInput(
            "decide with approve, reject or request_info",
            [FieldProblem(("decision",), "must be approve, reject or request_info")],
        )
    qualification, _ = visible_qualification(session, ctx=ctx, qualification_id=qualification_id)
    return _apply(
        session, ctx=ctx, settings=settings, qualification=qualification, action=decision, reason=reason
    )


def respond(
    session: Session,
    *,
    ctx: Context,
    settings: Settings,
    qualification_id: uuid.UUID,
    message: str,
    document_ids: Sequence[uuid.UUID] = (),
) -> Qualification:
    """The applicant answers a request for information, optionally pointing to new documents."""
    require(ctx, Action.RESPOND_TO_REVIEW)
    qualification, _ = visible_qualification(session, ctx=ctx, qualification_id=qualification_id)
    if qualification.organisation_id != ctx.actor.organisation_id:
        raise NotFound("no such qualification")
    for doc_id in document_ids:
        doc = session.get(Document, doc_id)
        if doc is None or doc.organisation_id != qualification.organisation_id:
            raise InvalidInput(
                "unknown document", [FieldProblem(("document_ids",), f"no document {doc_id} of yours")]
            )
    return _apply(
        session,
        ctx=ctx,
        settings=settings,
        qualification=qualification,
        action=ReviewAction.RESPOND,
        reason=message,
        detail={"document_ids": [str(d) for d in document_ids]},
    )


def set_suspension(
    session: Session, *, ctx: Context, settings: Settings, org_id: uuid.UUID, suspend: bool, reason: str
) -> Qualification:
    require(ctx, Action.SUSPEND_PARTY)
    qualification = qualification_of(session, org_id)
    if qualification is None:
        raise NotFound("no such party under review")
    action = ReviewAction.SUSPEND if suspend else ReviewAction.REINSTATE
    return _apply(
        session, ctx=ctx, settings=settings, qualification=qualification, action=action, reason=reason
    )


def require_admitted(
    session: Session,
    *,
    ctx: Context,
    qualifications: Mapping[uuid.UUID, Qualification | None] | None = None,
) -> None:
    """Refuse business to an unapproved or suspended party, with the reason why (``qualifications``:
    read beforehand for many requests at once; an organisation missing from it is looked up)."""
    actor = ctx.actor
    if actor.is_system or actor.org_type is None or actor.organisation_id is None:
        return
    if qualifications is not None and actor.organisation_id in qualifications:
        qualification = qualifications[actor.organisation_id]
    else:
        qualification = qualification_of(session, actor.organisation_id)
    blocked = blocking_status(S(qualification.status) if qualification else None, actor.org_type)
    if blocked is None:
        return
    if blocked is S.SUSPENDED:
        assert qualification is not None
        raise PartySuspended(f"your organisation is suspended by the regulator: {qualification.last_reason}")
    raise PartyNotAdmitted(
        f"your organisation's admittance is {blocked.value.replace('_', ' ')}; "
        "business opens once a regulator approves it"
    )


# --- profiles ---------------------------------------------------------------------------------------


def _visible_org(session: Session, *, ctx: Context, org_id: uuid.UUID, org_type: OrgType) -> Organisation:
    require(ctx, Action.READ_PARTY)
    org = session.get(Organisation, org_id)
    if (
        org is None
        or org.type != org_type.value
        or not (ctx.actor.sees_all_organisations or ctx.actor.organisation_id == org.id)
    ):
        raise NotFound(f"no such {org_type.value.replace('_', ' ')}")
    return org


def _own_profile(session: Session, *, ctx: Context, org_id: uuid.UUID, model: type[_P]) -> _P:
    require(ctx, Action.MANAGE_OWN_PROFILE)
    if ctx.actor.organisation_id != org_id:
        raise NotFound("no such organisation")
    row = session.get(model, org_id)
    if row is None:
        raise NotFound("no such profile")
    return row


def read_enterprise(session: Session, *, ctx: Context, org_id: uuid.UUID) -> tuple[Organisation, Enterprise]:
    org = _visible_org(session, ctx=ctx, org_id=org_id, org_type=OrgType.ENTERPRISE)
    enterprise = session.get(Enterprise, org_id)
    if enterprise is None:
        raise NotFound("no enterprise profile")
    return org, enterprise


def read_investor(session: Session, *, ctx: Context, org_id: uuid.UUID) -> tuple[Organisation, Investor]:
    org = _visible_org(session, ctx=ctx, org_id=org_id, org_type=OrgType.INVESTOR)
    investor = session.get(Investor, org_id)
    if investor is None:
        raise NotFound("no investor profile")
    return org, investor


def read_agency(
    session: Session, *, ctx: Context, org_id: uuid.UUID
) -> tuple[Organisation, Agency, list[AgencyService]]:
    org = _visible_org(session, ctx=ctx, org_id=org_id, org_type=OrgType.AGENCY)
    agency = session.get(Agency, org_id)
    if agency is None:
        raise NotFound("no agency profile")
    services = list(
        session.scalars(
            select(AgencyService)
            .where(AgencyService.organisation_id == org_id)
            .order_by(AgencyService.service)
        ).all()
    )
    return org, agency, services


def people_of(session: Session, org_id: uuid.UUID) -> list[EnterprisePerson]:
    return list(
        session.scalars(
            select(EnterprisePerson)
            .where(EnterprisePerson.organisation_id == org_id)
            .order_by(EnterprisePerson.created_at, EnterprisePerson.id)
        ).all()
    )


def set_people(
    session: Session, *, ctx: Context, settings: Settings, org_id: uuid.UUID, people: Sequence[PersonIn]
) -> list[EnterprisePerson]:
    _own_profile(session, ctx=ctx, org_id=org_id, model=Enterprise)
    problems = _people_problems(people, _today(ctx, settings))
    if problems:
        raise InvalidInput("the ownership and key people have problems; nothing was saved", problems)
    for old in people_of(session, org_id):
        session.delete(old)
    session.flush()
    _add_people(session, settings=settings, org_id=org_id, people=people, ctx=ctx)
    session.flush()
    audit.record(
        session,
        ctx=ctx,
        action="enterprise.people_set",
        object_type="organisation",
        object_id=org_id,
        after=[{"role": p.role.value, "name": p.name, "share": str(p.share_percent)} for p in people],
    )
    return people_of(session, org_id)


def bank_accounts_of(session: Session, *, ctx: Context, org_id: uuid.UUID) -> list[BankAccount]:
    require(ctx, Action.READ_PARTY)
    org = session.get(Organisation, org_id)
    if org is None or not (ctx.actor.sees_all_organisations or ctx.actor.organisation_id == org_id):
        raise NotFound("no such organisation")
    return list(
        session.scalars(
            select(BankAccount).where(BankAccount.organisation_id == org_id).order_by(BankAccount.created_at)
        ).all()
    )


def add_bank_account(
    session: Session, *, ctx: Context, settings: Settings, org_id: uuid.UUID, account: BankAccountIn
) -> BankAccount:
    require(ctx, Action.MANAGE_OWN_PROFILE)
    if ctx.actor.organisation_id != org_id:
        raise NotFound("no such organisation")
    row = _add_bank_account(session, settings=settings, org_id=org_id, account=account, ctx=ctx)
    session.flush()
    audit.record(
        session,
        ctx=ctx,
        action="bank_account.add",
        object_type="bank_account",
        object_id=row.id,
        after={"bank": row.bank_name, "account": row.account_number_masked},
    )
    return row


def assess_risk(
    session: Session, *, ctx: Context, org_id: uuid.UUID, answers: dict[str, str]
) -> risk.RiskAssessment:
    require(ctx, Action.ASSESS_RISK_TOLERANCE)
    investor = _own_profile(session, ctx=ctx, org_id=org_id, model=Investor)
    try:
        assessment = risk.score_answers(answers)
    except risk.QuestionnaireError as exc:
        raise InvalidInput(
            "the questionnaire is incomplete", [FieldProblem(("answers", k), m) for k, m in exc.problems]
        ) from None
    before = {"level": investor.risk_level, "score": investor.risk_score}
    investor.risk_score = assessment.score
    investor.risk_level = assessment.level.value
    investor.risk_answers = dict(answers)
    investor.risk_assessed_at = ctx.now()
    audit.record(
        session,
        ctx=ctx,
        action="investor.risk_assessed",
        object_type="organisation",
        object_id=org_id,
        before=before,
        after={"level": assessment.level.value, "score": assessment.score},
    )
    return assessment


def case_details(session: Session, org: Organisation) -> dict[str, object]:
    """Everything a regulator needs to decide, for the case page and the API."""
    profile: dict[str, object] = {"type": org.type, "name": org.name, "ref": org.ref}
    if org.type == OrgType.ENTERPRISE.value and (e := session.get(Enterprise, org.id)):
        profile |= {
            "credit_code": e.credit_code,
            "legal_representative": e.legal_representative,
            "registered_capital": str(Money(e.registered_capital_minor, e.currency)),
            "founded_on": e.founded_on.isoformat(),
            "industry_code": e.industry_code,
            "region_code": e.region_code,
            "region_name": codes.region_name(e.region_code),
            "employees": e.employees,
            "annual_revenue": str(Money(e.annual_revenue_minor, e.currency)),
            "total_assets": str(Money(e.total_assets_minor, e.currency)),
            "size_class": e.size_class,
            "size_rule_en": e.size_rule_en,
            "size_rule_zh": e.size_rule_zh,
            "contact": {"name": e.contact_name, "phone": e.contact_phone, "email": e.contact_email},
        }
    elif org.type == OrgType.INVESTOR.value and (i := session.get(Investor, org.id)):
        profile |= {
            "kind": i.kind,
            "institution_type": i.institution_type,
            "credit_code": i.credit_code,
            "resident_id": i.resident_id_masked,
            "contact_phone": i.contact_phone,
            "net_worth": str(Money(i.net_worth_minor, i.currency)),
            "annual_income": str(Money(i.annual_income_minor, i.currency)),
            "funds_sources": i.funds_sources,
            "funds_note": i.funds_note,
            "risk_level": i.risk_level,
            "risk_score": i.risk_score,
        }
    elif org.type == OrgType.AGENCY.value and (a := session.get(Agency, org.id)):
        services = session.scalars(select(AgencyService).where(AgencyService.organisation_id == org.id)).all()
        profile |= {
            "credit_code": a.credit_code,
            "licence_number": a.licence_number,
            "types": a.types,
            "region_code": a.region_code,
            "public_key": a.public_key,
            "services": [
                {
                    "type": s.agency_type,
                    "service": s.service,
                    "fee": str(Money(s.fee_minor, s.currency)),
                    "sla_hours": s.sla_hours,
                }
                for s in services
            ],
        }
    return profile


# --- documents -----------------------------------------------------------------------------------------


def upload_document(
    session: Session,
    *,
    ctx: Context,
    storage: Storage,
    category: DocumentCategory,
    filename: str,
    content: bytes,
) -> Document:
    require(ctx, Action.UPLOAD_DOCUMENT)
    assert ctx.actor.organisation_id is not None
    problems: list[FieldProblem] = []
    if not content:
        problems.append(FieldProblem(("file",), "is empty"))
    elif len(content) > MAX_UPLOAD_BYTES:
        problems.append(FieldProblem(("file",), f"is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB"))
    sniffed = sniff(content) if content else None
    if content and sniffed is None:
        problems.append(FieldProblem(("file",), "must be a PDF, PNG or JPEG file"))
    if problems or sniffed is None:
        raise InvalidInput("the upload was refused; nothing was stored", problems)
    content_type, extension = sniffed
    stored_name = f"{uuid7().hex}{extension}"
    digest = hashlib.sha256(content).hexdigest()
    # The file is written first; if the transaction then fails, an unreferenced file remains,
    # never a row pointing at a missing file.
    storage.put(stored_name, content)
    document = Document(
        organisation_id=ctx.actor.organisation_id,
        category=category.value,
        original_name=(filename or "upload")[-255:],
        stored_name=stored_name,
        content_type=content_type,
        size_bytes=len(content),
        sha256=digest,
        uploaded_by=ctx.actor.email,
        created_at=ctx.now(),
    )
    session.add(document)
    session.flush()
    audit.record(
        session,
        ctx=ctx,
        action="document.upload",
        object_type="document",
        object_id=document.id,
        after={"sha256": digest, "category": category.value, "size": len(content)},
    )
    return document


def visible_document(session: Session, *, ctx: Context, document_id: uuid.UUID) -> Document:
    require(ctx, Action.READ_DOCUMENT)
    document = session.get(Document, document_id)
    if document is None or not (
        ctx.actor.sees_all_organisations or document.organisation_id == ctx.actor.organisation_id
    ):
        raise NotFound("no such document")
    return document


def documents_of(session: Session, org_id: uuid.UUID) -> list[Document]:
    return list(
        session.scalars(
            select(Document).where(Document.organisation_id == org_id).order_by(Document.created_at)
        ).all()
    )


# --- consents ----------------------------------------------------------------------------------------


def grant_consent(session: Session, *, ctx: Context, settings: Settings, consent: ConsentIn) -> Consent:
    require(ctx, Action.MANAGE_CONSENTS)
    assert ctx.actor.organisation_id is not None
    if consent.valid_until <= _today(ctx, settings):
        raise InvalidInput(
            "a consent must last beyond today", [FieldProblem(("valid_until",), "must be after today")]
        )
    row = Consent(
        organisation_id=ctx.actor.organisation_id,
        data_category=consent.data_category.value,
        recipient_class=consent.recipient_class.value,
        purpose=consent.purpose,
        valid_until=consent.valid_until,
        granted_by=ctx.actor.email,
        granted_at=ctx.now(),
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        ctx=ctx,
        action="consent.grant",
        object_type="consent",
        object_id=row.id,
        after=consent.model_dump(mode="json"),
    )
    return row


def list_consents(session: Session, *, ctx: Context, org_id: uuid.UUID | None = None) -> list[Consent]:
    """The actor's own consents, or (regulators, operator) any enterprise's."""
    require(ctx, Action.READ_PARTY)
    target = org_id or ctx.actor.organisation_id
    if target is None or not (ctx.actor.sees_all_organisations or target == ctx.actor.organisation_id):
        raise NotFound("no such organisation")
    return list(
        session.scalars(
            select(Consent)
            .where(Consent.organisation_id == target)
            .order_by(Consent.granted_at.desc(), Consent.id)
        ).all()
    )


def revoke_consent(session: Session, *, ctx: Context, consent_id: uuid.UUID) -> Consent:
    require(ctx, Action.MANAGE_CONSENTS)
    row = session.get(Consent, consent_id)
    if row is None or row.organisation_id != ctx.actor.organisation_id:
        raise NotFound("no such consent")
    if row.revoked_at is None:
        row.revoked_at = ctx.now()
        row.revoked_by = ctx.actor.email
        audit.record(session, ctx=ctx, action="consent.revoke", object_type="consent", object_id=row.id)
    return row


def consent_active(row: Consent, today: date) -> bool:
    return row.revoked_at is None and row.valid_until >= today


def system_context(ctx: Context) -> Context:
    return Context(actor=Actor.system(), clock=ctx.clock, request_id=ctx.request_id)
