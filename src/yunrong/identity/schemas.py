"""Pydantic shapes of the identity API."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from yunrong.identity.model import InvestorKind, OrgType, Role


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int


class OrganisationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    ref: str
    type: OrgType
    name: str
    investor_kind: InvestorKind | None
    created_at: datetime


class OrganisationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: OrgType
    name: str = Field(min_length=1, max_length=200)
    investor_kind: InvestorKind | None = None


class UserOut(BaseModel):
    id: uuid.UUID
    email: str
    name: str
    organisation_id: uuid.UUID
    roles: list[Role]
    totp_enrolled: bool
    created_at: datetime


class MeOut(BaseModel):
    id: uuid.UUID
    email: str
    name: str
    roles: list[Role]
    organisation: OrganisationOut
    authenticated_via: str


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=3, max_length=254)
    name: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=256)
    roles: list[Role] = Field(min_length=1)


class UserCreatedOut(UserOut):
    totp_secret: str | None = Field(
        default=None, description="Shown once when TOTP was enrolled for the new user; never again."
    )


class ApiKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    prefix: str
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreatedOut(ApiKeyOut):
    key: str = Field(description="The full key: shown once, store it now.")
