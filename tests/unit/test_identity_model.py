from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from yunrong.identity import security
from yunrong.identity.model import (
    PERMISSIONS,
    PORTAL_ACTION,
    PORTAL_BY_ORG_TYPE,
    ROLES_BY_ORG_TYPE,
    Action,
    Actor,
    OrgType,
    Role,
    is_allowed,
    needs_totp,
    password_problems,
    roles_valid_for,
)


def test_every_role_belongs_to_exactly_one_organisation_type() -> None:
    seen = [role for roles in ROLES_BY_ORG_TYPE.values() for role in roles]
    assert sorted(seen) == sorted(Role)


def test_each_portal_is_open_only_to_its_own_roles() -> None:
    for portal, action in PORTAL_ACTION.items():
        for org_type, roles in ROLES_BY_ORG_TYPE.items():
            own = PORTAL_BY_ORG_TYPE[org_type]
            for role in roles:
                assert is_allowed(frozenset({role}), action) == (own is portal), (role, portal)


def test_deny_by_default() -> None:
    assert not is_allowed(frozenset(), Action.READ_ME)
    assert not is_allowed(frozenset(Role), "no_such_action")  # type: ignore[arg-type]
    assert set(PERMISSIONS) == set(Action)


def test_only_regulators_read_the_audit_log() -> None:
    assert PERMISSIONS[Action.READ_AUDIT_LOG] == frozenset({Role.REGULATOR})


def test_roles_must_fit_the_organisation() -> None:
    assert roles_valid_for(OrgType.ENTERPRISE, frozenset({Role.ENTERPRISE_ADMIN}))
    assert not roles_valid_for(OrgType.ENTERPRISE, frozenset({Role.REGULATOR}))
    assert not roles_valid_for(OrgType.ENTERPRISE, frozenset())


def test_totp_roles() -> None:
    assert needs_totp(frozenset({Role.REGULATOR}))
    assert needs_totp(frozenset({Role.AGENCY_ANALYST}))
    assert not needs_totp(frozenset({Role.INVESTOR}))


def test_system_actor_can_everything_and_sees_all() -> None:
    system = Actor.system()
    assert system.can(Action.CREATE_ORGANISATION)
    assert system.sees_all_organisations


def test_password_rules_report_every_problem() -> None:
    assert password_problems("short", "a@b.cn") == ["must be at least 10 characters"]
    assert "must not contain the e-mail address" in password_problems("xa@b.cnxxxx", "a@b.cn")
    assert "must not contain the e-mail address" in password_problems("zhoumin-2026!", "zhoumin@gov.cn")
    assert password_problems("a-good-long-password", "a@b.cn") == []


def test_password_hash_round_trip() -> None:
    hashed = security.hash_password("a-good-long-password")
    assert hashed.startswith("$argon2id$")
    assert security.verify_password(hashed, "a-good-long-password")
    assert not security.verify_password(hashed, "another-password")
    assert not security.verify_password(None, "anything")
    assert not security.verify_password("garbage", "anything")


def test_totp_accepts_adjacent_steps_only() -> None:
    secret = security.new_totp_secret()
    at = datetime(2026, 11, 26, tzinfo=UTC)
    code = security.totp_now(secret, at)
    assert security.verify_totp(secret, code, at)
    assert security.verify_totp(secret, code, at + timedelta(seconds=30))
    assert not security.verify_totp(secret, code, at + timedelta(minutes=5))
    assert not security.verify_totp(secret, "12345a", at)


def test_secrets_are_encrypted_and_tamper_evident() -> None:
    token = security.encrypt_secret("key-one", "JBSWY3DPEHPK3PXP")
    assert "JBSWY3DP" not in token
    assert security.decrypt_secret("key-one", token) == "JBSWY3DPEHPK3PXP"
    assert security.decrypt_secret("key-two", token) is None


def test_api_keys_split_and_digest() -> None:
    full, prefix, digest = security.new_api_key()
    parts = security.split_api_key(full)
    assert parts is not None
    assert parts[0] == prefix
    assert security.token_digest(parts[1]) == digest
    for bad in ("", "yrk_", "abc_def_ghi", "yrk__secret"):
        assert security.split_api_key(bad) is None


@pytest.mark.parametrize("nonce", ["n1", "another-nonce"])
def test_csrf_tokens_bind_to_nonce_and_secret(nonce: str) -> None:
    token = security.csrf_token("secret", nonce)
    assert security.csrf_valid("secret", nonce, token)
    assert not security.csrf_valid("other", nonce, token)
    assert not security.csrf_valid("secret", nonce + "x", token)
    assert not security.csrf_valid("secret", "", token)
