"""HTML portals: login, a dashboard per role, the regulator's audit log, the operator's console.

Pages sign in with a session cookie; every POST carries a double-submit CSRF token (a form field
or, for HTMX, the ``X-CSRF-Token`` header) bound to a nonce cookie by an HMAC of the server secret.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from yunrong import deps
from yunrong.config import Settings
from yunrong.deps import DB, SettingsDep, anonymous_context
from yunrong.identity import repository as identity_repo
from yunrong.identity import security
from yunrong.identity import service as identity
from yunrong.identity.model import Action, Actor, Context, InvestorKind, OrgType, Portal
from yunrong.kit.errors import Conflict, InvalidInput, NotFound
from yunrong.kit.pagination import PageRequest
from yunrong.messaging import service as messaging
from yunrong.messaging.model import EventStatus
from yunrong.parties import service as parties
from yunrong.parties.model import REVIEWED_TYPES
from yunrong.supervision import service as supervision
from yunrong.web import i18n
from yunrong.web.i18n import N_
from yunrong.web.rendering import (
    Csrf,
    app_settings,
    client_address,
    guard,
    home_path,
    page_context,
    render,
    render_error,
    safe_next,
    set_csrf_cookie,
)

__all__ = ["render_error", "router"]

router = APIRouter(include_in_schema=False)

AUDIT_PAGE_SIZE = 25
LANG_COOKIE_DAYS = 365

# --- home, language, login, logout ---------------------------------------------------------------


@router.get("/")
def home(request: Request, session: DB) -> Response:
    actor = deps.page_actor(request, session)
    return RedirectResponse(home_path(actor) if actor else "/login", status_code=303)


@router.get("/lang/{code}")
def switch_language(request: Request, code: str, next: str = "") -> Response:
    locale = i18n.normalise(code) if code in {"en", "zh-CN", "zh_CN", "zh"} else None
    if locale is None:
        return render_error(request, 404, N_("Not found"), N_("This language is not available."))
    target = safe_next(next)
    if target is None:
        referer = urlsplit(request.headers.get("referer", ""))
        if referer.netloc and referer.netloc == request.url.netloc:
            target = safe_next(referer.path + (f"?{referer.query}" if referer.query else ""))
    response = RedirectResponse(target or "/", status_code=303)
    response.set_cookie(
        deps.LANG_COOKIE,
        i18n.HTML_LANG[locale],
        max_age=LANG_COOKIE_DAYS * 24 * 3600,
        httponly=True,
        samesite="lax",
        secure=app_settings(request).secure_cookies,
        path="/",
    )
    return response


@router.get("/login")
def login_page(request: Request, session: DB, next: str = "") -> Response:
    actor = deps.page_actor(request, session)
    if actor is not None:
        return RedirectResponse(safe_next(next) or home_path(actor), status_code=303)
    return render(request, "login.html", next=safe_next(next) or "")


@router.post("/login", dependencies=[Csrf])
def login_submit(
    request: Request,
    session: DB,
    settings: SettingsDep,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    totp: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    target = safe_next(next)
    errors: dict[str, str] = {}
    if not email.strip():
        errors["email"] = N_("Enter your e-mail address.")
    if not password:
        errors["password"] = N_("Enter your password.")
    if errors:
        return render(
            request, "login.html", status=422, errors=errors, form={"email": email}, next=target or ""
        )
    ctx = anonymous_context(request)
    outcome = identity.authenticate(
        session,
        ctx=ctx,
        settings=settings,
        email=email,
        password=password,
        totp_code=totp.strip() or None,
        client=client_address(request),
    )
    if outcome.error is not None or outcome.user is None:
        session.commit()  # keep the failure count: the login fails but its record must stay
        error = outcome.error
        detail = error.detail if error else N_("wrong e-mail or password")
        field = "totp" if isinstance(error, identity.TotpRequired) or "two-factor code" in detail else "form"
        status = error.status if error is not None and error.status != 401 else 400
        return render(
            request,
            "login.html",
            status=status,
            errors={field: detail},
            form={"email": email},
            next=target or "",
            show_totp=field == "totp",
        )
    user = outcome.user
    token = identity.open_web_session(session, ctx=ctx, settings=settings, user=user)
    org = identity_repo.organisation_by_id(session, user.organisation_id)
    assert org is not None
    actor = identity.actor_for(user, org, "session")
    response = RedirectResponse(target or home_path(actor), status_code=303)
    response.set_cookie(
        deps.SESSION_COOKIE,
        token,
        max_age=settings.session_hours * 3600,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        path="/",
    )
    set_csrf_cookie(response, settings, secrets.token_urlsafe(24))  # a fresh nonce for the new session
    return response


@router.post("/logout", dependencies=[Csrf])
def logout(request: Request, session: DB, settings: SettingsDep) -> Response:
    token = request.cookies.get(deps.SESSION_COOKIE)
    if token:
        actor = deps.page_actor(request, session)
        ctx = page_context(request, actor) if actor else anonymous_context(request)
        identity.close_web_session(session, ctx=ctx, token=token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(deps.SESSION_COOKIE, path="/", secure=settings.secure_cookies, httponly=True)
    return response


# --- dashboards ----------------------------------------------------------------------------------


def _organisation_counts(session: Session, ctx: Context) -> list[tuple[str, int]]:
    counts = identity.count_organisations_by_type(session, ctx=ctx)
    return [(t.value, counts.get(t.value, 0)) for t in OrgType]


def _user_counts(session: Session, ctx: Context) -> list[tuple[str, int]]:
    counts = identity.count_users_by_org_type(session, ctx=ctx)
    return [(t.value, counts.get(t.value, 0)) for t in OrgType]


def _dashboard_view(portal: Portal) -> Callable[[Request, Session], Response]:
    def view(request: Request, session: DB) -> Response:
        got = guard(request, session, portal)
        if isinstance(got, Response):
            return got
        actor = got
        ctx = page_context(request, actor)
        assert actor.organisation_id is not None
        org = identity_repo.organisation_by_id(session, actor.organisation_id)
        panels: dict[str, Any] = {}
        if portal is Portal.OPERATOR:
            panels["org_counts"] = _organisation_counts(session, ctx)
            panels["user_counts"] = _user_counts(session, ctx)
            panels["outbox_counts"] = messaging.counts_by_status(session)
        elif portal is Portal.REGULATOR:
            panels["org_counts"] = _organisation_counts(session, ctx)
            panels["records"] = supervision.list_records(session, ctx=ctx, page=PageRequest(limit=8)).items
            panels["queue_count"] = len(parties.list_pending(session, ctx=ctx))
        if portal in (Portal.ENTERPRISE, Portal.INVESTOR, Portal.AGENCY, Portal.BANK):
            try:
                qualification, _ = parties.my_qualification(session, ctx=ctx)
            except NotFound:
                pass
            else:
                panels["admittance"] = qualification
        return render(request, "dashboard.html", org=org, dashboard=portal.value, **panels)

    view.__name__ = f"{portal.value}_dashboard"
    return view


for _portal in Portal:
    router.add_api_route(
        f"/{_portal.value}", _dashboard_view(_portal), methods=["GET"], name=f"{_portal.value}"
    )


# --- regulator: the audit log ---------------------------------------------------------------------

_AUDIT_ACTION = re.compile(r"^[a-z_]{1,40}(\.[a-z_]{1,40})?$")


@router.get("/regulator/audit")
def audit_log(request: Request, session: DB, after: str = "", action: str = "") -> Response:
    got = guard(request, session, Portal.REGULATOR, Action.READ_AUDIT_LOG)
    if isinstance(got, Response):
        return got
    ctx = page_context(request, got)
    after_seq = after if after.isdigit() and len(after) <= 18 else None
    action = action.strip()
    action_filter = action if _AUDIT_ACTION.match(action) else None
    page = supervision.list_records(
        session, ctx=ctx, page=PageRequest(limit=AUDIT_PAGE_SIZE, after=after_seq), action=action_filter
    )
    return render(
        request,
        "audit.html",
        records=page.items,
        next_after=page.next_after,
        action=action_filter or "",
        first_page=after_seq is None,
    )


@router.get("/audit/verify")
def audit_verify(request: Request, session: DB) -> Response:
    """Walk the whole hash chain; answers an HTMX fragment (or a full page without HTMX)."""
    got = guard(request, session, None, Action.VERIFY_AUDIT_LOG)
    if isinstance(got, Response):
        return got
    checked, broken = supervision.verify_chain(session)
    template = "_chain.html" if request.headers.get("hx-request") else "chain.html"
    return render(request, template, checked=checked, broken=broken)


# --- operator: organisations and the outbox -----------------------------------------------------


def _organisations_page(
    request: Request, session: Session, actor: Actor, *, status: int = 200, **extra: Any
) -> HTMLResponse:
    orgs = identity.list_organisations(session, ctx=page_context(request, actor), limit=1000)
    return render(
        request,
        "organisations.html",
        status=status,
        organisations=orgs,
        org_types=list(OrgType),
        investor_kinds=list(InvestorKind),
        **extra,
    )


@router.get("/operator/organisations")
def organisations(request: Request, session: DB, created: str = "") -> Response:
    got = guard(request, session, Portal.OPERATOR, Action.LIST_ORGANISATIONS)
    if isinstance(got, Response):
        return got
    return _organisations_page(request, session, got, created=created)


@router.post("/operator/organisations", dependencies=[Csrf])
def organisations_create(
    request: Request,
    session: DB,
    type: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    investor_kind: Annotated[str, Form()] = "",
) -> Response:
    got = guard(request, session, Portal.OPERATOR, Action.CREATE_ORGANISATION)
    if isinstance(got, Response):
        return got
    actor = got
    form = {"type": type, "name": name, "investor_kind": investor_kind}
    errors: dict[str, str] = {}
    org_type = OrgType(type) if type in {t.value for t in OrgType} else None
    kind = InvestorKind(investor_kind) if investor_kind in {k.value for k in InvestorKind} else None
    if org_type is None:
        errors["type"] = N_("Choose the type of organisation.")
    if investor_kind and kind is None:
        errors["investor_kind"] = N_("Choose a person or an institution.")
    if len(name) > 200:
        errors["name"] = N_("At most 200 characters.")
    if not errors and org_type is not None:
        try:
            ctx = page_context(request, actor)
            org = identity.create_organisation(
                session, ctx=ctx, org_type=org_type, name=name, investor_kind=kind
            )
            if org_type in REVIEWED_TYPES:  # as the API does: a custodian bank too waits for the regulator
                parties.open_qualification(session, ctx=ctx, org=org)
        except InvalidInput as exc:
            for problem in exc.problems:
                errors[str(problem.loc[0])] = problem.msg
            errors.setdefault("form", exc.detail)
        except Conflict:
            errors["name"] = N_("An organisation of this type with this name already exists.")
        else:
            return RedirectResponse(f"/operator/organisations?created={quote(org.ref)}", status_code=303)
    return _organisations_page(request, session, actor, status=422, errors=errors, form=form)


@router.get("/operator/outbox")
def outbox(request: Request, session: DB, status: str = "") -> Response:
    got = guard(request, session, Portal.OPERATOR, Action.READ_OUTBOX)
    if isinstance(got, Response):
        return got
    chosen = EventStatus(status) if status in {s.value for s in EventStatus} else None
    events = messaging.list_events(session, ctx=page_context(request, got), status=chosen, limit=100)
    return render(
        request,
        "outbox.html",
        events=events,
        current_status=chosen.value if chosen else "",
        statuses=list(EventStatus),
        counts=messaging.counts_by_status(session),
    )


# --- the user's own account: TOTP and API keys ------------------------------------------------------

_BASE32 = re.compile(r"^[A-Z2-7]{16,64}$")


def _account_page(
    request: Request, session: Session, settings: Settings, actor: Actor, *, status: int = 200, **extra: Any
) -> HTMLResponse:
    assert actor.user_id is not None
    assert actor.organisation_id is not None
    user = identity_repo.user_by_id(session, actor.user_id)
    org = identity_repo.organisation_by_id(session, actor.organisation_id)
    assert user is not None
    assert org is not None
    values: dict[str, Any] = {"user": user, "org": org, "totp_enrolled": user.totp_secret_enc is not None}
    if user.totp_secret_enc is None:
        secret = extra.pop("totp_secret", None)
        if secret is None:
            secret, _uri = identity.start_totp_enrolment(settings, user)
        values["totp_secret"] = secret
        values["totp_uri"] = security.totp_uri(secret, user.email)
    if actor.can(Action.MANAGE_API_KEYS):
        values["api_keys"] = identity.list_api_keys(session, ctx=page_context(request, actor))
    values.update(extra)
    return render(request, "account.html", status=status, **values)


@router.get("/account")
def account(request: Request, session: DB, settings: SettingsDep, done: str = "") -> Response:
    got = guard(request, session, None, Action.READ_ME)
    if isinstance(got, Response):
        return got
    return _account_page(request, session, settings, got, done=done)


@router.post("/account/totp", dependencies=[Csrf])
def account_totp(
    request: Request,
    session: DB,
    settings: SettingsDep,
    secret: Annotated[str, Form()] = "",
    code: Annotated[str, Form()] = "",
) -> Response:
    got = guard(request, session, None, Action.ENROL_TOTP)
    if isinstance(got, Response):
        return got
    if not _BASE32.match(secret):
        return _account_page(
            request,
            session,
            settings,
            got,
            status=422,
            errors={"code": N_("The enrolment expired; scan the new code and try again.")},
        )
    try:
        identity.confirm_totp_enrolment(
            session, ctx=page_context(request, got), settings=settings, secret=secret, code=code
        )
    except InvalidInput:
        return _account_page(
            request,
            session,
            settings,
            got,
            status=422,
            totp_secret=secret,
            errors={"code": N_("wrong or expired code")},
        )
    return RedirectResponse("/account?done=totp", status_code=303)


@router.post("/account/api-keys", dependencies=[Csrf])
def account_api_key_create(
    request: Request, session: DB, settings: SettingsDep, name: Annotated[str, Form()] = ""
) -> Response:
    got = guard(request, session, None, Action.MANAGE_API_KEYS)
    if isinstance(got, Response):
        return got
    try:
        key, full = identity.create_api_key(session, ctx=page_context(request, got), name=name)
    except InvalidInput:
        return _account_page(
            request,
            session,
            settings,
            got,
            status=422,
            errors={"key_name": N_("1 to 100 characters")},
            form={"key_name": name},
        )
    return _account_page(request, session, settings, got, status=201, new_key=full, new_key_name=key.name)


@router.post("/account/api-keys/{key_id}/revoke", dependencies=[Csrf])
def account_api_key_revoke(request: Request, session: DB, key_id: str) -> Response:
    got = guard(request, session, None, Action.MANAGE_API_KEYS)
    if isinstance(got, Response):
        return got
    try:
        identity.revoke_api_key(session, ctx=page_context(request, got), key_id=uuid.UUID(key_id))
    except (ValueError, NotFound):
        return render_error(request, 404, N_("Not found"), N_("no such API key"))
    return RedirectResponse("/account?done=revoked", status_code=303)


# The parties' pages: registration, the admittance review, inbox, consents, risk profile, LPR.
from yunrong.web import custody_pages, demand_pages, party_pages, registration_pages  # noqa: E402

router.include_router(registration_pages.router)
router.include_router(party_pages.router)
router.include_router(custody_pages.router)
router.include_router(demand_pages.router)

from yunrong.web import data_pages, decision_pages  # noqa: E402

router.include_router(data_pages.router)
router.include_router(decision_pages.router)

from yunrong.web import investor_pages  # noqa: E402

router.include_router(investor_pages.router)

from yunrong.web import loan_pages  # noqa: E402

router.include_router(loan_pages.router)

from yunrong.web import servicing_pages  # noqa: E402

router.include_router(servicing_pages.router)
