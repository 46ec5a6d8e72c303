"""JSON API of identity: tokens, the current user, organisations, users, API keys."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Request, status

from yunrong.deps import DB, ApiCtx, SettingsDep, anonymous_context
from yunrong.identity import repository as repo
from yunrong.identity import service
from yunrong.identity.model import Action, OrgType
from yunrong.identity.schemas import (
    ApiKeyCreatedOut,
    ApiKeyIn,
    ApiKeyOut,
    MeOut,
    OrganisationIn,
    OrganisationOut,
    TokenOut,
    UserCreatedOut,
    UserIn,
    UserOut,
)
from yunrong.identity.tables import User
from yunrong.kit.errors import InvalidInput
from yunrong.parties import service as parties
from yunrong.parties.model import REVIEWED_TYPES

router = APIRouter(prefix="/api/v1", tags=["identity"])


def user_out(user: User) -> UserOut:
    return UserOut(
        id=user.id,
        email=user.email,
        name=user.name,
        organisation_id=user.organisation_id,
        roles=sorted(user.role_set),
        totp_enrolled=user.totp_secret_enc is not None,
        created_at=user.created_at,
    )


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post("/auth/token", operation_id="create_token", response_model=TokenOut)
def create_token(
    request: Request,
    session: DB,
    settings: SettingsDep,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    grant_type: Annotated[str, Form(pattern="^password$")] = "password",
    totp: Annotated[str | None, Form(description="6-digit TOTP code, for roles that need it")] = None,
) -> TokenOut:
    """OAuth2 password grant: exchange e-mail and password (and TOTP code) for a bearer token."""
    ctx = anonymous_context(request)
    outcome = service.authenticate(
        session,
        ctx=ctx,
        settings=settings,
        email=username,
        password=password,
        totp_code=totp,
        client=client_address(request),
    )
    if outcome.error is not None or outcome.user is None:
        session.commit()  # keep the failure count even though the request fails
        raise outcome.error or InvalidInput("login failed")
    token, lifetime = service.issue_access_token(session, ctx=ctx, settings=settings, user=outcome.user)
    return TokenOut(access_token=token, expires_in=lifetime)


@router.get("/me", operation_id="read_me", response_model=MeOut)
def read_me(session: DB, ctx: ApiCtx) -> MeOut:
    assert ctx.actor.user_id is not None
    assert ctx.actor.organisation_id is not None
    user = repo.user_by_id(session, ctx.actor.user_id)
    org = repo.organisation_by_id(session, ctx.actor.organisation_id)
    assert user is not None
    assert org is not None
    return MeOut(
        id=user.id,
        email=user.email,
        name=user.name,
        roles=sorted(user.role_set),
        organisation=OrganisationOut.model_validate(org),
        authenticated_via=ctx.actor.via,
    )


@router.get("/organisations", operation_id="list_organisations", response_model=list[OrganisationOut])
def list_organisations(session: DB, ctx: ApiCtx, type: OrgType | None = None) -> list[OrganisationOut]:
    return [
        OrganisationOut.model_validate(o) for o in service.list_organisations(session, ctx=ctx, org_type=type)
    ]


@router.post(
    "/organisations",
    operation_id="create_organisation",
    response_model=OrganisationOut,
    status_code=status.HTTP_201_CREATED,
)
def create_organisation(session: DB, ctx: ApiCtx, body: OrganisationIn) -> OrganisationOut:
    org = service.create_organisation(
        session, ctx=ctx, org_type=body.type, name=body.name, investor_kind=body.investor_kind
    )
    if body.type in REVIEWED_TYPES:  # e.g. a custodian bank: it too waits for the regulator
        parties.open_qualification(session, ctx=ctx, org=org)
    return OrganisationOut.model_validate(org)


@router.get(
    "/organisations/{organisation_id}", operation_id="read_organisation", response_model=OrganisationOut
)
def read_organisation(session: DB, ctx: ApiCtx, organisation_id: uuid.UUID) -> OrganisationOut:
    return OrganisationOut.model_validate(
        service.visible_organisation(session, ctx=ctx, org_id=organisation_id)
    )


@router.get(
    "/organisations/{organisation_id}/users",
    operation_id="list_organisation_users",
    response_model=list[UserOut],
)
def list_organisation_users(session: DB, ctx: ApiCtx, organisation_id: uuid.UUID) -> list[UserOut]:
    return [user_out(u) for u in service.list_users(session, ctx=ctx, organisation_id=organisation_id)]


@router.post(
    "/organisations/{organisation_id}/users",
    operation_id="create_user",
    response_model=UserCreatedOut,
    status_code=status.HTTP_201_CREATED,
)
def create_user(
    session: DB, ctx: ApiCtx, settings: SettingsDep, organisation_id: uuid.UUID, body: UserIn
) -> UserCreatedOut:
    # Scope first: an organisation the caller may not see is 'not found' before any other check.
    service.require(ctx, Action.CREATE_USER)
    service.visible_organisation(session, ctx=ctx, org_id=organisation_id)
    user, secret = service.create_user(
        session,
        ctx=ctx,
        settings=settings,
        organisation_id=organisation_id,
        email=body.email,
        name=body.name,
        password=body.password,
        roles=frozenset(body.roles),
    )
    return UserCreatedOut(**user_out(user).model_dump(), totp_secret=secret)


@router.get("/users/{user_id}", operation_id="read_user", response_model=UserOut)
def read_user(session: DB, ctx: ApiCtx, user_id: uuid.UUID) -> UserOut:
    return user_out(service.visible_user(session, ctx=ctx, user_id=user_id))


@router.get("/api-keys", operation_id="list_api_keys", response_model=list[ApiKeyOut])
def list_api_keys(session: DB, ctx: ApiCtx) -> list[ApiKeyOut]:
    return [ApiKeyOut.model_validate(k) for k in service.list_api_keys(session, ctx=ctx)]


@router.post("/api-keys", operation_id="create_api_key", response_model=ApiKeyCreatedOut, status_code=201)
def create_api_key(session: DB, ctx: ApiCtx, body: ApiKeyIn) -> ApiKeyCreatedOut:
    parties.require_admitted(session, ctx=ctx)  # machine access is business: admitted parties only
    key, full = service.create_api_key(session, ctx=ctx, name=body.name)
    return ApiKeyCreatedOut(**ApiKeyOut.model_validate(key).model_dump(), key=full)


@router.delete("/api-keys/{api_key_id}", operation_id="revoke_api_key", response_model=ApiKeyOut)
def revoke_api_key(session: DB, ctx: ApiCtx, api_key_id: uuid.UUID) -> ApiKeyOut:
    return ApiKeyOut.model_validate(service.revoke_api_key(session, ctx=ctx, key_id=api_key_id))
