"""Public self-registration: an enterprise, an individual or institutional investor, an agency.

Each form's field names are the paths of the registration input (``parties.schemas``); the page
builds that input, calls the same service as the API, and shows every problem beside its field.
Nothing is saved unless the whole registration is accepted.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from yunrong.deps import DB, SettingsDep, anonymous_context
from yunrong.identity.model import InvestorKind
from yunrong.kit.errors import YunrongError
from yunrong.parties import risk
from yunrong.parties import service as parties
from yunrong.parties.model import AgencyType, FundsSource, InstitutionType
from yunrong.parties.schemas import (
    AgencyRegistrationIn,
    EnterpriseRegistrationIn,
    InvestorRegistrationIn,
)
from yunrong.web.forms import FormDep, field_errors, nest, problems_of, text, texts, values
from yunrong.web.rendering import Csrf, render

router = APIRouter(include_in_schema=False)

SERVICE_ROWS = 3

APPLICANT_FIELDS = ("applicant.name", "applicant.email", "applicant.password")
BANK_FIELDS = ("bank_account.bank_name", "bank_account.account_name", "bank_account.account_number")
ENTERPRISE_FIELDS = (
    *(
        f"enterprise.{name}"
        for name in (
            "credit_code",
            "name",
            "legal_representative",
            "registered_capital",
            "founded_on",
            "industry_code",
            "region_code",
            "employees",
            "annual_revenue",
            "total_assets",
            "contact.name",
            "contact.phone",
            "contact.email",
        )
    ),
    *APPLICANT_FIELDS,
    *BANK_FIELDS,
)
INVESTOR_FIELDS = (
    *(
        f"investor.{name}"
        for name in (
            "name",
            "resident_id",
            "institution_type",
            "credit_code",
            "contact_phone",
            "net_worth",
            "annual_income",
            "funds_sources",
            "funds_note",
        )
    ),
    *(f"risk_answers.{q.key}" for q in risk.QUESTIONS),
    "risk_answers",
    *APPLICANT_FIELDS,
)
SERVICE_FIELDS = ("agency_type", "service", "fee", "sla_hours")
AGENCY_FIELDS = (
    *(
        f"agency.{name}"
        for name in (
            "name",
            "credit_code",
            "licence_number",
            "types",
            "region_code",
            "public_key",
            "services",
        )
    ),
    *(f"agency.services.{row}.{name}" for row in range(SERVICE_ROWS) for name in SERVICE_FIELDS),
    *APPLICANT_FIELDS,
)

PERSON_FUNDS = [
    s.value
    for s in (
        FundsSource.SALARY,
        FundsSource.BUSINESS_INCOME,
        FundsSource.INVESTMENT_INCOME,
        FundsSource.SAVINGS,
        FundsSource.PROPERTY_SALE,
        FundsSource.INHERITANCE,
    )
]
INSTITUTION_FUNDS = [s.value for s in (FundsSource.OWN_CAPITAL, FundsSource.CLIENT_FUNDS_UNDER_MANDATE)]


@router.get("/register")
def register_choice(request: Request) -> Response:
    return render(request, "parties/register.html")


def _registered(request: Request, registration: parties.Registration) -> Response:
    return render(
        request,
        "parties/registered.html",
        status=201,
        qualification=registration.qualification,
        organisation=registration.organisation,
        applicant_email=registration.user.email,
    )


def _submit(
    request: Request,
    session: Session,
    *,
    model: type[BaseModel],
    data: dict[str, Any],
    fields: tuple[str, ...],
    register: Any,
    rows: dict[str, list[int]] | None = None,
) -> tuple[parties.Registration | None, dict[str, str]]:
    """Validate, then register through the service; on any problem roll back and key the errors."""
    try:
        body = model.model_validate(data)
    except ValidationError as exc:
        return None, field_errors(problems_of(exc), fields, rows=rows)
    try:
        registration: parties.Registration = register(body)
    except YunrongError as exc:
        session.rollback()  # nothing of a refused registration stays
        errors = field_errors(exc.problems, fields, rows=rows)
        if not exc.problems:
            errors["form"] = exc.detail
        return None, errors
    return registration, {}


# --- enterprise -------------------------------------------------------------------------------------------


@router.get("/register/enterprise")
def register_enterprise_page(request: Request) -> Response:
    return render(request, "parties/register_enterprise.html")


@router.post("/register/enterprise", dependencies=[Csrf])
def register_enterprise_submit(
    request: Request, session: DB, settings: SettingsDep, form: FormDep
) -> Response:
    flat = {name: text(form, name) for name in ENTERPRISE_FIELDS}
    if not any(flat[name] for name in BANK_FIELDS):
        for name in BANK_FIELDS:
            flat.pop(name)
    registration, errors = _submit(
        request,
        session,
        model=EnterpriseRegistrationIn,
        data=nest(flat),
        fields=ENTERPRISE_FIELDS,
        register=lambda body: parties.register_enterprise(
            session, ctx=anonymous_context(request), settings=settings, data=body
        ),
    )
    if registration is not None:
        return _registered(request, registration)
    return render(
        request,
        "parties/register_enterprise.html",
        status=422,
        errors=errors,
        form=values(form, ENTERPRISE_FIELDS),
    )


# --- investor ---------------------------------------------------------------------------------------------


def _investor_page(request: Request, kind: InvestorKind, *, status: int = 200, **extra: Any) -> Response:
    return render(
        request,
        "parties/register_investor.html",
        status=status,
        kind=kind.value,
        funds_sources=PERSON_FUNDS if kind is InvestorKind.PERSON else INSTITUTION_FUNDS,
        institution_types=[t.value for t in InstitutionType],
        questions=risk.QUESTIONS,
        **extra,
    )


def _kind(value: str) -> InvestorKind:
    return InvestorKind.INSTITUTION if value == InvestorKind.INSTITUTION.value else InvestorKind.PERSON


@router.get("/register/investor")
def register_investor_page(request: Request, kind: str = "person") -> Response:
    return _investor_page(request, _kind(kind))


def _risk_answers(form: FormData) -> dict[str, str] | None:
    answers = {q.key: text(form, f"risk_answers.{q.key}") for q in risk.QUESTIONS}
    answered = {key: value for key, value in answers.items() if value}
    return answered or None


@router.post("/register/investor", dependencies=[Csrf])
def register_investor_submit(
    request: Request, session: DB, settings: SettingsDep, form: FormDep, kind: str = "person"
) -> Response:
    investor_kind = _kind(text(form, "investor.kind") or kind)
    flat: dict[str, Any] = {name: text(form, name) for name in INVESTOR_FIELDS if "." in name}
    for key in [k for k in flat if k.startswith("risk_answers.")]:
        flat.pop(key)
    if investor_kind is InvestorKind.PERSON:
        flat.pop("investor.institution_type")
        flat.pop("investor.credit_code")
    else:
        flat.pop("investor.resident_id")
    flat["investor.kind"] = investor_kind.value
    flat["investor.funds_sources"] = texts(form, "investor.funds_sources")
    data = nest(flat)
    data["investor"].setdefault("funds_sources", [])
    answers = _risk_answers(form)
    if answers is not None:
        data["risk_answers"] = answers
    registration, errors = _submit(
        request,
        session,
        model=InvestorRegistrationIn,
        data=data,
        fields=INVESTOR_FIELDS,
        register=lambda body: parties.register_investor(
            session, ctx=anonymous_context(request), settings=settings, data=body
        ),
    )
    if registration is not None:
        return _registered(request, registration)
    form_values = values(form, INVESTOR_FIELDS)
    return _investor_page(
        request,
        investor_kind,
        status=422,
        errors=errors,
        form=form_values,
        lists={"investor.funds_sources": texts(form, "investor.funds_sources")},
    )


# --- agency -----------------------------------------------------------------------------------------------


def _agency_page(request: Request, *, status: int = 200, **extra: Any) -> Response:
    return render(
        request,
        "parties/register_agency.html",
        status=status,
        agency_types=[t.value for t in AgencyType],
        service_rows=range(SERVICE_ROWS),
        **extra,
    )


@router.get("/register/agency")
def register_agency_page(request: Request) -> Response:
    return _agency_page(request)


@router.post("/register/agency", dependencies=[Csrf])
def register_agency_submit(request: Request, session: DB, settings: SettingsDep, form: FormDep) -> Response:
    flat: dict[str, Any] = {
        name: text(form, name) for name in AGENCY_FIELDS if not name.startswith("agency.services")
    }
    flat["agency.types"] = texts(form, "agency.types")
    services: list[dict[str, Any]] = []
    positions: list[int] = []
    for row in range(SERVICE_ROWS):
        cells = {name: text(form, f"agency.services.{row}.{name}") for name in SERVICE_FIELDS}
        if not any(cells[name] for name in ("service", "fee", "sla_hours")):
            continue  # an empty row is ignored
        services.append({k: v for k, v in cells.items() if v})
        positions.append(row)
    data = nest(flat)
    data.setdefault("agency", {})["services"] = services
    data["agency"].setdefault("types", [])
    registration, errors = _submit(
        request,
        session,
        model=AgencyRegistrationIn,
        data=data,
        fields=AGENCY_FIELDS,
        register=lambda body: parties.register_agency(
            session, ctx=anonymous_context(request), settings=settings, data=body
        ),
        rows={"agency.services": positions},
    )
    if registration is not None:
        return _registered(request, registration)
    return _agency_page(
        request,
        status=422,
        errors=errors,
        form=values(form, AGENCY_FIELDS),
        lists={"agency.types": texts(form, "agency.types")},
    )
