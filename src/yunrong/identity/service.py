"""Identity use cases. Services take the session first, never commit, and audit what matters."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from yunrong.config import Settings
from yunrong.identity import repository as repo
from yunrong.identity import security
from yunrong.identity.model import (
    Action,
    Actor,
    Context,
    Credential,
    InvestorKind,
    OrgType,
    Role,
    needs_totp,
    password_problems,
    roles_valid_for,
)
from yunrong.identity.tables import (
    AccessToken,
    ApiKey,
    LoginFailure,
    Organisation,
    User,
    UserRole,
    WebSession,
)
from yunrong.kit.errors import (
    Conflict,
    FieldProblem,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    TooManyRequests,
    YunrongError,
)
from yunrong.kit.ids import human_ref
from yunrong.supervision import service as audit


class AccountLocked(YunrongError):
    status = 423
    code = "account-locked"
    title = "Account locked"


class TotpRequired(YunrongError):
    status = 401
    code = "totp-required"
    title = "Two-factor code required"


def actor_for(user: User, org: Organisation, via: str) -> Actor:
    return Actor(
        user_id=user.id,
        organisation_id=org.id,
        org_type=OrgType(org.type),
        roles=user.role_set,
        email=user.email,
        name=user.name,
        via=via,
    )


def require(ctx: Context, action: Action) -> None:
    if not ctx.actor.can(action):
        raise PermissionDenied(f"your role may not {action.value.replace('_', ' ')}")


# --- organisations and users -------------------------------------------------------------------


def create_organisation(
    session: Session,
    *,
    ctx: Context,
    org_type: OrgType,
    name: str,
    investor_kind: InvestorKind | None = None,
) -> Organisation:
    require(ctx, Action.CREATE_ORGANISATION)
    return insert_organisation(session, ctx=ctx, org_type=org_type, name=name, investor_kind=investor_kind)


def insert_organisation(
    session: Session,
    *,
    ctx: Context,
    org_type: OrgType,
    name: str,
    investor_kind: InvestorKind | None = None,
) -> Organisation:
    """Create an organisation without a permission check: for the operator's create_organisation
    above and for public self-registration, which checks its own rules."""
    name = name.strip()
    if not name:
        raise InvalidInput("name is required", [FieldProblem(("name",), "must not be empty")])
    if org_type is OrgType.INVESTOR and investor_kind is None:
        raise InvalidInput(
            "investors are a person or an institution",
            [FieldProblem(("investor_kind",), "required for investors")],
        )
    if org_type is not OrgType.INVESTOR:
        investor_kind = None
    if repo.organisation_by_name(session, org_type.value, name) is not None:
        raise Conflict(f"a {org_type.value} named {name!r} already exists")
    org = Organisation(
        ref=human_ref("ORG"),
        type=org_type.value,
        name=name,
        investor_kind=investor_kind.value if investor_kind else None,
        created_at=ctx.now(),
    )
    session.add(org)
    session.flush()
    audit.record(
        session,
        ctx=ctx,
        action="organisation.create",
        object_type="organisation",
        object_id=org.id,
        after={"type": org.type, "name": org.name, "ref": org.ref},
    )
    return org


def visible_organisation(session: Session, *, ctx: Context, org_id: uuid.UUID) -> Organisation:
    """The organisation if the actor may see it; otherwise 'not found' (existence is not leaked)."""
    require(ctx, Action.READ_ORGANISATION)
    org = repo.organisation_by_id(session, org_id)
    if org is None or not (ctx.actor.sees_all_organisations or ctx.actor.organisation_id == org.id):
        raise NotFound("no such organisation")
    return org


def list_organisations(
    session: Session, *, ctx: Context, org_type: OrgType | None = None, limit: int = 100
) -> list[Organisation]:
    require(ctx, Action.LIST_ORGANISATIONS)
    return repo.list_organisations(
        session, org_type=org_type.value if org_type else None, only_id=None, limit=limit
    )


def count_organisations_by_type(session: Session, *, ctx: Context) -> dict[str, int]:
    require(ctx, Action.LIST_ORGANISATIONS)
    return repo.count_organisations_by_type(session)


def count_users_by_org_type(session: Session, *, ctx: Context) -> dict[str, int]:
    require(ctx, Action.LIST_ORGANISATIONS)
    return repo.count_users_by_org_type(session)


def create_user(
    session: Session,
    *,
    ctx: Context,
    settings: Settings,
    organisation_id: uuid.UUID,
    email: str,
    name: str,
    password: str,
    roles: frozenset[Role],
    enrol_totp: bool | None = None,
) -> tuple[User, str | None]:
    """Create a user. Returns the user and, when TOTP was enrolled, the secret to show once."""
    require(ctx, Action.CREATE_USER)
    org = repo.organisation_by_id(session, organisation_id)
    if org is None or not (
        ctx.actor.is_system or Role.OPERATOR_ADMIN in ctx.actor.roles or ctx.actor.organisation_id == org.id
    ):
        raise NotFound("no such organisation")
    return insert_user(
        session,
        ctx=ctx,
        settings=settings,
        org=org,
        email=email,
        name=name,
        password=password,
        roles=roles,
        enrol_totp=enrol_totp,
    )


def user_problems(
    session: Session, *, email: str, name: str, password: str, taken_email_is_a_problem: bool = True
) -> list[FieldProblem]:
    """Every problem with a new user's e-mail, name and password (the e-mail lower-cased first)."""
    email = email.strip().lower()
    problems: list[FieldProblem] = []
    if "@" not in email or len(email) > 254 or email.startswith("@") or email.endswith("@"):
        problems.append(FieldProblem(("email",), "must be an e-mail address"))
    elif taken_email_is_a_problem and repo.user_by_email(session, email) is not None:
        problems.append(FieldProblem(("email",), "a user with this e-mail already exists"))
    if not name.strip():
        problems.append(FieldProblem(("name",), "must not be empty"))
    problems += [FieldProblem(("password",), p) for p in password_problems(password, email)]
    return problems


def insert_user(
    session: Session,
    *,
    ctx: Context,
    settings: Settings,
    org: Organisation,
    email: str,
    name: str,
    password: str,
    roles: frozenset[Role],
    enrol_totp: bool | None = None,
) -> tuple[User, str | None]:
    """Create a user without a permission check (callers check: create_user, self-registration)."""
    email = email.strip().lower()
    problems = user_problems(
        session, email=email, name=name, password=password, taken_email_is_a_problem=False
    )
    if not roles_valid_for(OrgType(org.type), roles):
        problems.append(FieldProblem(("roles",), f"not valid for a {org.type} organisation"))
    if problems:
        raise InvalidInput("the user cannot be created as given", problems)
    if repo.user_by_email(session, email) is not None:
        raise Conflict("a user with this e-mail already exists")
    user = User(
        organisation_id=org.id,
        email=email,
        name=name.strip(),
        password_hash=security.hash_password(password),
        is_active=True,
        failed_logins=0,
        created_at=ctx.now(),
    )
    user.roles = [UserRole(role=r.value) for r in sorted(roles)]
    secret: str | None = None
    if enrol_totp if enrol_totp is not None else needs_totp(roles):
        secret = security.new_totp_secret()
        user.totp_secret_enc = security.encrypt_secret(settings.secret_key.get_secret_value(), secret)
    session.add(user)
    session.flush()
    audit.record(
        session,
        ctx=ctx,
        action="user.create",
        object_type="user",
        object_id=user.id,
        after={"email": user.email, "organisation_id": str(org.id), "roles": sorted(r.value for r in roles)},
    )
    return user, secret


def visible_user(session: Session, *, ctx: Context, user_id: uuid.UUID) -> User:
    require(ctx, Action.READ_USER)
    user = repo.user_by_id(session, user_id)
    if user is None or not (
        ctx.actor.sees_all_organisations or user.organisation_id == ctx.actor.organisation_id
    ):
        raise NotFound("no such user")
    return user


def list_users(session: Session, *, ctx: Context, organisation_id: uuid.UUID) -> list[User]:
    require(ctx, Action.LIST_USERS)
    org = visible_organisation(session, ctx=ctx, org_id=organisation_id)
    return repo.users_of(session, org.id)


# --- authentication ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LoginOutcome:
    """A login either yields a user or an error. Failures are recorded, so the caller commits
    before raising the error (a rolled-back failure would not count toward the lock-out)."""

    user: User | None
    error: YunrongError | None


def authenticate(
    session: Session,
    *,
    ctx: Context,
    settings: Settings,
    email: str,
    password: str,
    totp_code: str | None,
    client: str,
) -> LoginOutcome:
    now = ctx.now()
    window_start = now - timedelta(minutes=settings.login_lock_minutes)
    if repo.recent_failures_from(session, client, window_start) >= settings.login_ip_limit:
        return LoginOutcome(None, TooManyRequests("too many failed logins from this address; try later"))
    user = repo.user_by_email(session, email)
    if user is not None and user.locked_until is not None and user.locked_until > now:
        return LoginOutcome(
            None, AccountLocked("this account is locked after repeated failed logins; try later")
        )
    if not security.verify_password(user.password_hash if user else None, password) or user is None:
        _record_failure(session, ctx=ctx, settings=settings, user=user, email=email, client=client)
        return LoginOutcome(None, NotAuthenticated("wrong e-mail or password"))
    if not user.is_active:
        return LoginOutcome(None, NotAuthenticated("this account is disabled"))
    if settings.require_totp and not settings.demo and needs_totp(user.role_set) and not user.totp_secret_enc:
        return LoginOutcome(
            None,
            TotpRequired("two-factor enrolment is required for your role; ask the operator to enrol you"),
        )
    if user.totp_secret_enc and not (settings.demo and not totp_code):
        secret = security.decrypt_secret(settings.secret_key.get_secret_value(), user.totp_secret_enc)
        if not totp_code:
            return LoginOutcome(None, TotpRequired("enter the 6-digit code from your authenticator app"))
        if secret is None or not security.verify_totp(secret, totp_code, now):
            _record_failure(session, ctx=ctx, settings=settings, user=user, email=email, client=client)
            return LoginOutcome(None, NotAuthenticated("wrong two-factor code"))
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    if security.needs_rehash(user.password_hash):
        user.password_hash = security.hash_password(password)
    return LoginOutcome(user, None)


def _record_failure(
    session: Session, *, ctx: Context, settings: Settings, user: User | None, email: str, client: str
) -> None:
    now = ctx.now()
    session.add(LoginFailure(client=client[:64], email=email.strip().lower()[:254], at=now))
    if user is not None:
        user.failed_logins += 1
        if user.failed_logins >= settings.login_max_failures:
            user.locked_until = now + timedelta(minutes=settings.login_lock_minutes)
            user.failed_logins = 0
            audit.record(
                session,
                ctx=ctx,
                action="user.lock",
                object_type="user",
                object_id=user.id,
                detail={"reason": "repeated failed logins", "client": client[:64]},
            )
    session.flush()


def open_web_session(session: Session, *, ctx: Context, settings: Settings, user: User) -> str:
    token = security.new_token()
    now = ctx.now()
    session.add(
        WebSession(
            token_digest=security.token_digest(token),
            user_id=user.id,
            created_at=now,
            expires_at=now + timedelta(hours=settings.session_hours),
        )
    )
    audit.record(
        session,
        ctx=_as(session, ctx, user, "session"),
        action="user.login",
        object_type="user",
        object_id=user.id,
    )
    return token


def close_web_session(session: Session, *, ctx: Context, token: str) -> None:
    row = repo.session_by_digest(session, security.token_digest(token))
    if row is not None and row.revoked_at is None:
        row.revoked_at = ctx.now()
        audit.record(session, ctx=ctx, action="user.logout", object_type="user", object_id=row.user_id)


def issue_access_token(session: Session, *, ctx: Context, settings: Settings, user: User) -> tuple[str, int]:
    token = security.new_token()
    now = ctx.now()
    lifetime = settings.token_minutes * 60
    session.add(
        AccessToken(
            token_digest=security.token_digest(token),
            user_id=user.id,
            created_at=now,
            expires_at=now + timedelta(seconds=lifetime),
        )
    )
    audit.record(
        session,
        ctx=_as(session, ctx, user, "token"),
        action="token.issue",
        object_type="user",
        object_id=user.id,
    )
    return token, lifetime


def _as(session: Session, ctx: Context, user: User, via: str) -> Context:
    """The context of a user who has just proved who they are (the request had no actor yet)."""
    org = repo.organisation_by_id(session, user.organisation_id)
    assert org is not None
    return Context(actor=actor_for(user, org, via), clock=ctx.clock, request_id=ctx.request_id)


def _live(user: User | None, now: datetime) -> User | None:
    if user is None or not user.is_active:
        return None
    return user


def resolve_web_session(session: Session, *, ctx: Context, token: str) -> Actor | None:
    row = repo.session_by_digest(session, security.token_digest(token))
    now = ctx.now()
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        return None
    return _actor_of(session, row.user_id, now, "session")


def resolve_access_token(session: Session, *, ctx: Context, token: str) -> Actor | None:
    return resolve_access_tokens(session, ctx=ctx, tokens={token})[token]


def resolve_access_tokens(session: Session, *, ctx: Context, tokens: set[str]) -> dict[str, Actor | None]:
    """The actor of each bearer token (None: unknown, revoked, expired, or its user inactive), read
    for many tokens at once in two queries."""
    digests = {security.token_digest(token): token for token in tokens}
    now = ctx.now()
    out: dict[str, Actor | None] = dict.fromkeys(tokens)
    rows, roles = repo.token_holders(session, set(digests))
    for row in rows:
        if row.revoked_at is None and row.expires_at > now and row.is_active:
            out[digests[row.token_digest]] = Actor(
                user_id=row.user_id,
                organisation_id=row.organisation_id,
                org_type=OrgType(row.org_type),
                roles=frozenset(Role(r) for r in roles[row.user_id]),
                email=row.email,
                name=row.name,
                via="token",
            )
    return out


def resolve_credentials(
    session: Session, *, ctx: Context, credentials: set[Credential]
) -> dict[Credential, Actor | None]:
    """The actor behind each credential (None: not a valid one). Bearer tokens are read together."""
    tokens = {c.value for c in credentials if c.kind == "token"}
    by_token = resolve_access_tokens(session, ctx=ctx, tokens=tokens)
    return {
        c: by_token[c.value] if c.kind == "token" else resolve_api_key(session, ctx=ctx, key=c.value)
        for c in credentials
    }


def resolve_api_key(session: Session, *, ctx: Context, key: str) -> Actor | None:
    parts = security.split_api_key(key)
    if parts is None:
        return None
    prefix, secret = parts
    row = repo.api_key_by_prefix(session, prefix)
    if row is None or row.revoked_at is not None:
        return None
    if not security.digests_equal(row.secret_digest, security.token_digest(secret)):
        return None
    row.last_used_at = ctx.now()
    return _actor_of(session, row.user_id, ctx.now(), "api_key")


def _actor_of(session: Session, user_id: uuid.UUID, now: datetime, via: str) -> Actor | None:
    user = _live(repo.user_by_id(session, user_id), now)
    if user is None:
        return None
    org = repo.organisation_by_id(session, user.organisation_id)
    if org is None:
        return None
    return actor_for(user, org, via)


# --- API keys and TOTP -------------------------------------------------------------------------


def create_api_key(session: Session, *, ctx: Context, name: str) -> tuple[ApiKey, str]:
    require(ctx, Action.MANAGE_API_KEYS)
    if not name.strip() or len(name) > 100:
        raise InvalidInput("name the key", [FieldProblem(("name",), "1 to 100 characters")])
    assert ctx.actor.user_id is not None
    assert ctx.actor.organisation_id is not None
    full, prefix, digest = security.new_api_key()
    key = ApiKey(
        prefix=prefix,
        secret_digest=digest,
        user_id=ctx.actor.user_id,
        organisation_id=ctx.actor.organisation_id,
        name=name.strip(),
        created_at=ctx.now(),
    )
    session.add(key)
    session.flush()
    audit.record(
        session,
        ctx=ctx,
        action="api_key.create",
        object_type="api_key",
        object_id=key.id,
        after={"prefix": prefix, "name": key.name},
    )
    return key, full


def list_api_keys(session: Session, *, ctx: Context) -> list[ApiKey]:
    require(ctx, Action.MANAGE_API_KEYS)
    assert ctx.actor.organisation_id is not None
    return repo.api_keys_of(session, ctx.actor.organisation_id)


def revoke_api_key(session: Session, *, ctx: Context, key_id: uuid.UUID) -> ApiKey:
    require(ctx, Action.MANAGE_API_KEYS)
    key = session.get(ApiKey, key_id)
    if key is None or key.organisation_id != ctx.actor.organisation_id:
        raise NotFound("no such API key")
    if key.revoked_at is None:
        key.revoked_at = ctx.now()
        audit.record(session, ctx=ctx, action="api_key.revoke", object_type="api_key", object_id=key.id)
    return key


def start_totp_enrolment(settings: Settings, user: User) -> tuple[str, str]:
    """A fresh secret and its otpauth URI; nothing is stored until a code confirms it."""
    secret = security.new_totp_secret()
    return secret, security.totp_uri(secret, user.email)


def confirm_totp_enrolment(
    session: Session, *, ctx: Context, settings: Settings, secret: str, code: str
) -> User:
    require(ctx, Action.ENROL_TOTP)
    assert ctx.actor.user_id is not None
    user = repo.user_by_id(session, ctx.actor.user_id)
    if user is None:
        raise NotFound("no such user")
    if not security.verify_totp(secret, code, ctx.now()):
        raise InvalidInput("the code does not match", [FieldProblem(("code",), "wrong or expired code")])
    user.totp_secret_enc = security.encrypt_secret(settings.secret_key.get_secret_value(), secret)
    audit.record(session, ctx=ctx, action="user.totp_enrol", object_type="user", object_id=user.id)
    return user


def enrol_totp_by_operator(session: Session, *, ctx: Context, settings: Settings, email: str) -> str:
    """CLI: (re)enrol a user's TOTP and return the new secret to hand over once."""
    user = repo.user_by_email(session, email)
    if user is None:
        raise NotFound(f"no user {email}")
    secret = security.new_totp_secret()
    user.totp_secret_enc = security.encrypt_secret(settings.secret_key.get_secret_value(), secret)
    audit.record(session, ctx=ctx, action="user.totp_reset", object_type="user", object_id=user.id)
    return secret
