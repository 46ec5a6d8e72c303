"""The reusable authorization harness.

Every API operation whose path takes an id gets a case here: how to make an object that belongs
to one organisation, and who may reach it. The harness then tries it as every demo role and as a
user of another organisation of the same type ("rivals"); everyone not allowed must get 403 or 404
and learn nothing (the object's id and name never appear in the answer). A test also checks that
no operation with an id in its path is missing a case, so later work must extend this file.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import bearer, login_token
from yunrong.config import Settings
from yunrong.db import unit_of_work
from yunrong.demo.seed import DEMO_LOGINS
from yunrong.identity import repository, service
from yunrong.identity.model import CROSS_ORG_ROLES, Context, InvestorKind, OrgType, Role, needs_totp
from yunrong.identity.security import totp_now
from yunrong.messaging.service import emit

RIVAL_PASSWORD = "rival-password-2026"


@dataclass
class World:
    client: TestClient
    factory: sessionmaker[Session]
    settings: Settings
    ctx: Context
    tokens: dict[str, str]  # e-mail → bearer token, demo users and rivals
    roles: dict[str, Role] = field(default_factory=dict)

    def email_of(self, role: Role) -> str:
        return next(email for email, r in self.roles.items() if r is role and not email.startswith("rival"))

    def org_id_of(self, email: str) -> str:
        with unit_of_work(self.factory) as session:
            user = repository.user_by_email(session, email)
            assert user is not None
            return str(user.organisation_id)

    def user_id_of(self, email: str) -> str:
        with unit_of_work(self.factory) as session:
            user = repository.user_by_email(session, email)
            assert user is not None
            return str(user.id)


@dataclass(frozen=True)
class Target:
    path_params: dict[str, str]
    secrets: tuple[str, ...]  # strings a refused caller must never see
    body: dict[str, Any] | None = None


@dataclass(frozen=True)
class IdCase:
    operation_id: str
    make: Callable[[World], Target]
    allowed: Callable[[World], set[str]]  # e-mails that may use it
    ok_statuses: frozenset[int] = frozenset({200, 201})


def build_world(
    client: TestClient, factory: sessionmaker[Session], settings: Settings, ctx: Context
) -> World:
    """Demo users plus one rival organisation of every type with a user of the same role."""
    roles = {login.email: login.role for login in DEMO_LOGINS}
    with unit_of_work(factory) as session:
        for login in DEMO_LOGINS:
            if login.email.startswith("regulator2") or login.email.startswith("institution"):
                continue
            rival_org = service.create_organisation(
                session,
                ctx=ctx,
                org_type=login.org_type,
                name=f"Rival {login.org_type.value} {login.role.value}",
                investor_kind=InvestorKind.PERSON if login.org_type is OrgType.INVESTOR else None,
            )
            email = f"rival-{login.role.value}@rival.cn"
            service.create_user(
                session,
                ctx=ctx,
                settings=settings,
                organisation_id=rival_org.id,
                email=email,
                name="Rival",
                password=RIVAL_PASSWORD,
                roles=frozenset({login.role}),
                enrol_totp=False,
            )
            roles[email] = login.role
    tokens: dict[str, str] = {}
    for email, role in roles.items():
        code = None
        if needs_totp(frozenset({role})):
            with unit_of_work(factory) as session:
                secret = service.enrol_totp_by_operator(session, ctx=ctx, settings=settings, email=email)
            code = totp_now(secret, ctx.now())
        password = RIVAL_PASSWORD if email.startswith("rival") else DEMO_LOGINS[0].password
        tokens[email] = login_token(client, email, password, totp=code)
    return World(client, factory, settings, ctx, tokens, roles)


def _with_roles(world: World, *roles: Role) -> set[str]:
    """Users holding one of the roles in the owning organisation; regulators and operators see
    across organisations, so theirs count wherever they sit."""
    return {
        email
        for email, role in world.roles.items()
        if role in roles and (role in CROSS_ORG_ROLES or not email.startswith("rival"))
    }


# --- cases ---------------------------------------------------------------------------------------


def _sme_org(world: World) -> Target:
    email = world.email_of(Role.ENTERPRISE_ADMIN)
    org_id = world.org_id_of(email)
    return Target({"organisation_id": org_id}, (org_id, "Lvyuan"))


def _sme_user(world: World) -> Target:
    email = world.email_of(Role.ENTERPRISE_ADMIN)
    user_id = world.user_id_of(email)
    return Target({"user_id": user_id}, (user_id, email))


def _new_user_in_sme(world: World) -> Target:
    target = _sme_org(world)
    body = {
        "email": f"harness-{uuid.uuid4().hex[:8]}@sme.cn",
        "name": "Harness",
        "password": "harness-password-1",
        "roles": ["enterprise_staff"],
    }
    return Target(target.path_params, target.secrets, body)


def _agency_key(world: World) -> Target:
    agency = world.email_of(Role.AGENCY_ADMIN)
    response = world.client.post(
        "/api/v1/api-keys", json={"name": "harness"}, headers=bearer(world.tokens[agency])
    )
    assert response.status_code == 201, response.text
    key = response.json()
    return Target({"api_key_id": key["id"]}, (key["id"], key["prefix"]))


def _audit_record(world: World) -> Target:
    from sqlalchemy import select

    from yunrong.supervision.tables import AuditRecord

    with unit_of_work(world.factory) as session:
        record = session.scalars(select(AuditRecord).order_by(AuditRecord.seq.desc())).first()
        assert record is not None
        return Target({"record_id": str(record.id)}, (str(record.id), record.hash))


def _outbox_event(world: World) -> Target:
    with unit_of_work(world.factory) as session:
        event = emit(
            session,
            ctx=world.ctx,
            topic="email.send",
            payload={"to": "secret@x.cn", "subject": "s", "body": "b"},
        )
        return Target({"event_id": str(event.id)}, (str(event.id), "secret@x.cn"))


CASES: list[IdCase] = [
    IdCase(
        "read_organisation",
        _sme_org,
        lambda w: _with_roles(w, Role.ENTERPRISE_ADMIN, Role.OPERATOR_ADMIN, Role.REGULATOR),
    ),
    IdCase(
        "list_organisation_users",
        _sme_org,
        lambda w: _with_roles(w, Role.ENTERPRISE_ADMIN, Role.OPERATOR_ADMIN, Role.REGULATOR),
    ),
    IdCase(
        "create_user", _new_user_in_sme, lambda w: _with_roles(w, Role.ENTERPRISE_ADMIN, Role.OPERATOR_ADMIN)
    ),
    IdCase(
        "read_user",
        _sme_user,
        lambda w: _with_roles(w, Role.ENTERPRISE_ADMIN, Role.OPERATOR_ADMIN, Role.REGULATOR),
    ),
    IdCase("revoke_api_key", _agency_key, lambda w: _with_roles(w, Role.AGENCY_ADMIN)),
    IdCase("read_audit_record", _audit_record, lambda w: _with_roles(w, Role.REGULATOR)),
    IdCase("read_outbox_event", _outbox_event, lambda w: _with_roles(w, Role.OPERATOR_ADMIN)),
    IdCase(
        "requeue_outbox_event",
        _outbox_event,
        lambda w: _with_roles(w, Role.OPERATOR_ADMIN),
        ok_statuses=frozenset({200, 409}),
    ),  # 409: the operator reached it, but it was not dead
]


def operations_with_ids(openapi: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """operationId → (method, path) for every operation whose path has a parameter."""
    found: dict[str, tuple[str, str]] = {}
    for path, methods in openapi["paths"].items():
        if "{" not in path:
            continue
        for method, op in methods.items():
            found[op["operationId"]] = (method.upper(), path)
    return found
