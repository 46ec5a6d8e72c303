"""All identity queries."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from yunrong.identity.tables import (
    AccessToken,
    ApiKey,
    LoginFailure,
    Organisation,
    User,
    UserRole,
    WebSession,
)


def user_by_email(session: Session, email: str) -> User | None:
    return session.scalars(select(User).where(User.email == email.strip().lower())).one_or_none()


def user_by_id(session: Session, user_id: uuid.UUID) -> User | None:
    return session.get(User, user_id)


def organisation_by_id(session: Session, org_id: uuid.UUID) -> Organisation | None:
    return session.get(Organisation, org_id)


def organisation_by_name(session: Session, org_type: str, name: str) -> Organisation | None:
    return session.scalars(
        select(Organisation).where(Organisation.type == org_type, Organisation.name == name)
    ).first()


def list_organisations(
    session: Session, *, org_type: str | None, only_id: uuid.UUID | None, limit: int
) -> list[Organisation]:
    query = select(Organisation).order_by(Organisation.id).limit(limit)
    if org_type:
        query = query.where(Organisation.type == org_type)
    if only_id is not None:
        query = query.where(Organisation.id == only_id)
    return list(session.scalars(query).all())


def users_of(session: Session, org_id: uuid.UUID | None, limit: int = 200) -> list[User]:
    query = select(User).order_by(User.id).limit(limit)
    if org_id is not None:
        query = query.where(User.organisation_id == org_id)
    return list(session.scalars(query).all())


def session_by_digest(session: Session, digest: str) -> WebSession | None:
    return session.scalars(select(WebSession).where(WebSession.token_digest == digest)).one_or_none()


_TOKEN_HOLDERS = (  # built once: it runs for every API commitment batch
    select(
        AccessToken.token_digest,
        AccessToken.revoked_at,
        AccessToken.expires_at,
        User.id.label("user_id"),
        User.is_active,
        User.email,
        User.name,
        Organisation.id.label("organisation_id"),
        Organisation.type.label("org_type"),
        UserRole.role,
    )
    .join(User, User.id == AccessToken.user_id)
    .join(Organisation, Organisation.id == User.organisation_id)
    .outerjoin(UserRole, UserRole.user_id == User.id)
    .where(AccessToken.token_digest.in_(bindparam("digests", expanding=True)))
)


def token_holders(session: Session, digests: set[str]) -> tuple[Sequence[Any], dict[uuid.UUID, list[str]]]:
    """For each bearer token: its validity and its user's and organisation's columns (one query),
    and each such user's roles, in one query. Plain rows: this runs for every API commitment."""
    if not digests:
        return [], {}
    found = session.execute(_TOKEN_HOLDERS, {"digests": sorted(digests)}).all()
    rows: dict[str, Any] = {}  # one row per token (the query gives one per token and role)
    roles: dict[uuid.UUID, list[str]] = {}
    for row in found:
        rows.setdefault(row.token_digest, row)
        held = roles.setdefault(row.user_id, [])
        if row.role is not None and row.role not in held:
            held.append(row.role)
    return list(rows.values()), roles


def api_key_by_prefix(session: Session, prefix: str) -> ApiKey | None:
    return session.scalars(select(ApiKey).where(ApiKey.prefix == prefix)).one_or_none()


def api_keys_of(session: Session, org_id: uuid.UUID) -> list[ApiKey]:
    return list(
        session.scalars(
            select(ApiKey).where(ApiKey.organisation_id == org_id).order_by(ApiKey.created_at.desc())
        ).all()
    )


def recent_failures_from(session: Session, client: str, since: datetime) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(LoginFailure)
            .where(LoginFailure.client == client, LoginFailure.at >= since)
        )
        or 0
    )


def count_users(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(User)) or 0)


def count_organisations_by_type(session: Session) -> dict[str, int]:
    rows = session.execute(select(Organisation.type, func.count()).group_by(Organisation.type)).all()
    return {org_type: int(n) for org_type, n in rows}


def count_users_by_org_type(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(Organisation.type, func.count(User.id))
        .join(User, User.organisation_id == Organisation.id)
        .group_by(Organisation.type)
    ).all()
    return {org_type: int(n) for org_type, n in rows}
