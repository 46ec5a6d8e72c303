"""Request plumbing shared by the API and the pages: the transaction, the clock, the actor."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from yunrong.config import Settings
from yunrong.identity import service as identity
from yunrong.identity.model import Actor, Context, Credential
from yunrong.kit.errors import NotAuthenticated
from yunrong.observability import request_id_var

SESSION_COOKIE = "yr_session"
CSRF_COOKIE = "yr_csrf"
LANG_COOKIE = "yr_lang"


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_db(request: Request) -> Iterator[Session]:
    """The request owns the transaction: commit when the endpoint returns, roll back if it raises.
    Used with ``scope="function"`` so the commit happens before the response is sent."""
    session: Session = request.app.state.sessionmaker()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


DB = Annotated[Session, Depends(get_db, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def anonymous_context(request: Request) -> Context:
    return Context(
        actor=Actor.system("anonymous"), clock=request.app.state.clock, request_id=request_id_var.get()
    )


def credential_of(request: Request) -> Credential | None:
    """What the caller presents: an API key (X-API-Key, or Bearer yrk_…) or an OAuth2 bearer token."""
    return credential_from(request.headers.get("x-api-key"), request.headers.get("authorization"))


def credential_from(api_key: str | None, authorization: str | None) -> Credential | None:
    """The credential in an ``X-API-Key`` and an ``Authorization`` header (the key wins)."""
    if api_key:
        return Credential("api_key", api_key)
    scheme, _, value = (authorization or "").partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return Credential("api_key" if value.startswith("yrk_") else "token", value)
    return None


async def api_credential(request: Request) -> Credential:
    """For an endpoint that resolves the caller itself (with others', in one query): a credential
    must be presented (401 before anything else); whether it is valid is decided by the endpoint."""
    credential = credential_of(request)
    if credential is None:
        raise NotAuthenticated("a valid bearer token or API key is required")
    return credential


def api_context(request: Request, session: DB) -> Context:
    """The actor of an API call: an OAuth2 bearer token, or an API key (Bearer or X-API-Key)."""
    base = anonymous_context(request)
    credential = credential_of(request)
    actor = None
    if credential is not None:
        actor = identity.resolve_credentials(session, ctx=base, credentials={credential})[credential]
    if actor is None:
        raise NotAuthenticated("a valid bearer token or API key is required")
    request.state.actor = actor
    return Context(actor=actor, clock=base.clock, request_id=base.request_id)


def page_actor(request: Request, session: Session) -> Actor | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    actor = identity.resolve_web_session(session, ctx=anonymous_context(request), token=token)
    if actor is not None:
        request.state.actor = actor
    return actor


ApiCtx = Annotated[Context, Depends(api_context)]
ApiCredential = Annotated[Credential, Depends(api_credential)]
