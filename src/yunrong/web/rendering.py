"""Page plumbing: rendering in the user's language, the CSRF double-submit check, safe redirects,
and the guard that sends anonymous users to the login page and refuses other roles' pages."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from yunrong import deps
from yunrong.config import Settings
from yunrong.identity import security
from yunrong.identity.model import PORTAL_ACTION, Action, Actor, Context, Portal
from yunrong.kit.errors import PermissionDenied
from yunrong.kit.money import Money
from yunrong.messaging import service as messaging
from yunrong.observability import request_id_var
from yunrong.web import i18n
from yunrong.web.i18n import N_
from yunrong.web.labels import (
    EVENT_STATUS_LABELS,
    INVESTOR_KIND_LABELS,
    NAV,
    ORG_TYPE_LABELS,
    PARTY_LABELS,
    PORTAL_LABELS,
    ROLE_LABELS,
    translate_message,
)


class CsrfRejected(PermissionDenied):
    code = "csrf-rejected"
    title = N_("Form expired")


# --- plumbing ----------------------------------------------------------------------------------


def current_locale(request: Request) -> str:
    return i18n.choose_locale(request.cookies.get(deps.LANG_COOKIE), request.headers.get("accept-language"))


def app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _csrf_nonce(request: Request) -> str:
    nonce = getattr(request.state, "csrf_nonce", None) or request.cookies.get(deps.CSRF_COOKIE)
    if not nonce or len(nonce) > 100:
        nonce = secrets.token_urlsafe(24)
    request.state.csrf_nonce = nonce
    return str(nonce)


def set_csrf_cookie(response: Response, settings: Settings, nonce: str) -> None:
    response.set_cookie(
        deps.CSRF_COOKIE, nonce, httponly=True, samesite="lax", secure=settings.secure_cookies, path="/"
    )


def _here(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def _datetime_formatter(settings: Settings) -> Callable[[datetime | None], str]:
    zone = ZoneInfo(settings.timezone)

    def fmt(value: datetime | None) -> str:
        return value.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S") if value else "—"

    return fmt


def render(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    """Render a page in the request's language, with the CSRF token and the navigation of its user."""
    locale = current_locale(request)
    settings = app_settings(request)
    nonce = _csrf_nonce(request)
    actor: Actor | None = getattr(request.state, "actor", None)
    portal = actor.portal if actor else None
    values: dict[str, Any] = {
        "request": request,
        "actor": actor,
        "portal": portal,
        "nav": NAV.get(portal, ()) if portal else (),
        "here": request.url.path,
        "here_quoted": quote(_here(request), safe=""),
        "csrf_token": security.csrf_token(settings.secret_key.get_secret_value(), nonce),
        "role_labels": ROLE_LABELS,
        "org_type_labels": ORG_TYPE_LABELS,
        "portal_labels": PORTAL_LABELS,
        "investor_kind_labels": INVESTOR_KIND_LABELS,
        "event_status_labels": EVENT_STATUS_LABELS,
        "fmt_dt": _datetime_formatter(settings),
        # Plain (escaped) translation of a message that is held in a variable, e.g. a service error.
        "tr": lambda message: translate_message(locale, message),
        "lbl": PARTY_LABELS,
        "unread_count": getattr(request.state, "unread_count", 0),
        "demo": settings.demo,
        "errors": {},
        "form": {},
        "lists": {},
    }
    values.update(context)
    html = i18n.environment(locale).get_template(template).render(values)
    response = HTMLResponse(html, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Language"] = i18n.HTML_LANG[locale]
    if request.cookies.get(deps.CSRF_COOKIE) != nonce:
        set_csrf_cookie(response, settings, nonce)
    return response


def render_error(request: Request, status: int, title: str, detail: str) -> HTMLResponse:
    """The error page (also used by the app's exception handlers for browsers); texts are translated."""
    locale = current_locale(request)
    return render(
        request,
        "error.html",
        status=status,
        status_code=status,
        title=i18n.gettext(locale, title),
        detail=i18n.gettext(locale, detail),
    )


def _forbidden(request: Request) -> HTMLResponse:
    return render_error(
        request,
        403,
        N_("Permission denied"),
        N_("This page is not part of your portal. Use the navigation above to return to your own pages."),
    )


async def check_csrf(request: Request) -> None:
    """Refuse a POST whose token (form field or X-CSRF-Token header) does not match the nonce cookie."""
    settings = app_settings(request)
    token = request.headers.get("x-csrf-token", "")
    if not token:
        form = await request.form()
        value = form.get("csrf_token")
        token = value if isinstance(value, str) else ""
    nonce = request.cookies.get(deps.CSRF_COOKIE, "")
    if not security.csrf_valid(settings.secret_key.get_secret_value(), nonce, token):
        raise CsrfRejected(
            N_("This form has expired or did not come from this site. Reload the page and try again.")
        )


Csrf = Depends(check_csrf)


def safe_next(value: str | None) -> str | None:
    """A same-site path to go back to, or None: absolute URLs, '//host' and backslashes are refused."""
    if not value or len(value) > 2000 or not value.startswith("/"):
        return None
    if value.startswith("//") or "\\" in value or any(ord(c) < 32 or ord(c) == 127 for c in value):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return None
    return value


def home_path(actor: Actor) -> str:
    return f"/{actor.portal.value}" if actor.portal else "/account"


def _to_login(request: Request) -> RedirectResponse:
    return RedirectResponse(f"/login?next={quote(_here(request), safe='')}", status_code=303)


def page_context(request: Request, actor: Actor) -> Context:
    return Context(actor=actor, clock=request.app.state.clock, request_id=request_id_var.get())


def guard(request: Request, session: Session, portal: Portal | None, *actions: Action) -> Actor | Response:
    """The signed-in actor if they may see the page; otherwise the login redirect or a 403 page."""
    actor = deps.page_actor(request, session)
    if actor is None:
        return _to_login(request)
    needed = ([PORTAL_ACTION[portal]] if portal else []) + list(actions)
    if not all(actor.can(action) for action in needed):
        return _forbidden(request)
    if actor.can(Action.READ_NOTIFICATIONS):  # the badge beside "Inbox" in the navigation
        request.state.unread_count = messaging.count_unread(session, ctx=page_context(request, actor))
    return actor


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def money(minor: int | None, currency: str = "CNY") -> str:
    """An amount for people: thousands separators and the currency ("1,000.00 CNY")."""
    return str(Money(int(minor or 0), currency))


def parse_uuid(value: str) -> uuid.UUID | None:
    """An id from a URL or form, or None when it is not one (the page then answers 404)."""
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
