"""Identity through the HTTP API: tokens, /me, lock-out, rate limiting, TOTP, API keys."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import bearer, login_token
from yunrong.config import Settings
from yunrong.db import unit_of_work
from yunrong.demo.seed import DEMO_PASSWORD
from yunrong.identity import service
from yunrong.identity.model import Context
from yunrong.identity.security import totp_now
from yunrong.kit.clock import FrozenClock

SME = "sme@demo.yunrong.cn"
REGULATOR = "regulator1@demo.yunrong.cn"
AGENCY = "agency@demo.yunrong.cn"
OPERATOR = "operator@demo.yunrong.cn"


def test_token_then_me_returns_the_user(client: TestClient, demo: dict[str, str]) -> None:
    token = login_token(client, SME)
    response = client.get("/api/v1/me", headers=bearer(token))
    assert response.status_code == 200
    body = response.json()
    assert body["email"] == SME
    assert body["roles"] == ["enterprise_admin"]
    assert body["organisation"]["type"] == "enterprise"
    assert body["authenticated_via"] == "token"


def test_me_without_credentials_is_401_problem(client: TestClient) -> None:
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["type"] == "/problems/not-authenticated"


def test_forged_and_expired_tokens_are_refused(
    client: TestClient, demo: dict[str, str], clock: FrozenClock, settings: Settings
) -> None:
    assert client.get("/api/v1/me", headers=bearer("forged-token")).status_code == 401
    token = login_token(client, SME)
    clock.advance(timedelta(minutes=settings.token_minutes, seconds=1))
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 401


def test_wrong_password_is_401_and_same_for_unknown_user(client: TestClient, demo: dict[str, str]) -> None:
    wrong = client.post("/api/v1/auth/token", data={"username": SME, "password": "not-the-password"})
    unknown = client.post("/api/v1/auth/token", data={"username": "nobody@x.cn", "password": "whatever12"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"] == "wrong e-mail or password"


def test_account_locks_after_repeated_failures_and_unlocks_later(
    client: TestClient, demo: dict[str, str], settings: Settings, clock: FrozenClock
) -> None:
    for _ in range(settings.login_max_failures):
        assert (
            client.post("/api/v1/auth/token", data={"username": SME, "password": "bad-password"}).status_code
            == 401
        )
    locked = client.post("/api/v1/auth/token", data={"username": SME, "password": DEMO_PASSWORD})
    assert locked.status_code == 423
    assert locked.json()["type"] == "/problems/account-locked"
    clock.advance(timedelta(minutes=settings.login_lock_minutes, seconds=1))
    assert login_token(client, SME)


def test_one_address_is_rate_limited_across_accounts(
    client: TestClient, demo: dict[str, str], settings: Settings
) -> None:
    for i in range(settings.login_ip_limit):
        client.post("/api/v1/auth/token", data={"username": f"u{i}@x.cn", "password": "bad-password"})
    limited = client.post("/api/v1/auth/token", data={"username": SME, "password": DEMO_PASSWORD})
    assert limited.status_code == 429


def test_totp_roles_need_enrolment_and_a_valid_code(
    client: TestClient,
    demo: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    system_ctx: Context,
    clock: FrozenClock,
) -> None:
    not_enrolled = client.post("/api/v1/auth/token", data={"username": REGULATOR, "password": DEMO_PASSWORD})
    assert not_enrolled.status_code == 401
    assert not_enrolled.json()["type"] == "/problems/totp-required"
    with unit_of_work(factory) as session:
        secret = service.enrol_totp_by_operator(session, ctx=system_ctx, settings=settings, email=REGULATOR)
    missing = client.post("/api/v1/auth/token", data={"username": REGULATOR, "password": DEMO_PASSWORD})
    assert missing.json()["type"] == "/problems/totp-required"
    wrong = client.post(
        "/api/v1/auth/token", data={"username": REGULATOR, "password": DEMO_PASSWORD, "totp": "000000"}
    )
    assert wrong.status_code == 401
    assert login_token(client, REGULATOR, totp=totp_now(secret, clock.now()))


def test_demo_mode_lets_demo_users_in_without_totp(
    settings: Settings, clock: FrozenClock, engine: object, demo: dict[str, str]
) -> None:
    from yunrong.app import create_app

    demo_app = create_app(settings.model_copy(update={"demo": True}), clock=clock, engine=engine)  # type: ignore[arg-type]
    with TestClient(demo_app) as demo_client:
        assert login_token(demo_client, REGULATOR)


def test_totp_secret_is_stored_encrypted(
    demo: dict[str, str], factory: sessionmaker[Session], settings: Settings, system_ctx: Context
) -> None:
    from yunrong.identity import repository

    with unit_of_work(factory) as session:
        secret = service.enrol_totp_by_operator(session, ctx=system_ctx, settings=settings, email=AGENCY)
    with unit_of_work(factory) as session:
        user = repository.user_by_email(session, AGENCY)
        assert user is not None
        assert user.totp_secret_enc
        assert secret not in user.totp_secret_enc
        assert user.password_hash.startswith("$argon2id$")


def test_api_key_lifecycle(client: TestClient, tokens: dict[str, str]) -> None:
    agency = bearer(tokens[AGENCY])
    created = client.post("/api/v1/api-keys", json={"name": "rating robot"}, headers=agency)
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    assert key.startswith("yrk_")
    me = client.get("/api/v1/me", headers={"X-API-Key": key})
    assert me.status_code == 200
    assert me.json()["authenticated_via"] == "api_key"
    assert client.get("/api/v1/me", headers=bearer(key)).status_code == 200
    listed = client.get("/api/v1/api-keys", headers=agency).json()
    assert [k["prefix"] for k in listed] == [created.json()["prefix"]]
    assert "key" not in listed[0]
    assert client.delete(f"/api/v1/api-keys/{created.json()['id']}", headers=agency).status_code == 200
    assert client.get("/api/v1/me", headers={"X-API-Key": key}).status_code == 401
    tampered = key[:-2] + ("AA" if not key.endswith("AA") else "BB")
    assert client.get("/api/v1/me", headers={"X-API-Key": tampered}).status_code == 401


def test_enterprise_may_not_hold_api_keys(client: TestClient, tokens: dict[str, str]) -> None:
    response = client.post("/api/v1/api-keys", json={"name": "x"}, headers=bearer(tokens[SME]))
    assert response.status_code == 403


def test_operator_creates_a_custodian_bank_and_its_user(client: TestClient, tokens: dict[str, str]) -> None:
    op = bearer(tokens[OPERATOR])
    org = client.post(
        "/api/v1/organisations", json={"type": "custodian_bank", "name": "Test Custody Bank"}, headers=op
    )
    assert org.status_code == 201, org.text
    org_id = org.json()["id"]
    assert org.json()["ref"].startswith("ORG-")
    user = client.post(
        f"/api/v1/organisations/{org_id}/users",
        json={
            "email": "Officer@Bank.cn",
            "name": "Officer",
            "password": "a-long-password-1",
            "roles": ["bank_officer"],
        },
        headers=op,
    )
    assert user.status_code == 201, user.text
    assert user.json()["email"] == "officer@bank.cn"
    assert user.json()["totp_secret"] is None
    token = login_token(client, "officer@bank.cn", "a-long-password-1")
    assert client.get("/api/v1/me", headers=bearer(token)).json()["organisation"]["id"] == org_id


def test_bad_user_input_lists_every_problem_and_saves_nothing(
    client: TestClient, tokens: dict[str, str]
) -> None:
    op = bearer(tokens[OPERATOR])
    orgs = client.get("/api/v1/organisations", params={"type": "enterprise"}, headers=op).json()
    response = client.post(
        f"/api/v1/organisations/{orgs[0]['id']}/users",
        json={"email": "not-an-email", "name": " ", "password": "short", "roles": ["regulator"]},
        headers=op,
    )
    assert response.status_code == 422
    fields = {tuple(e["loc"]) for e in response.json()["errors"]}
    assert fields == {("email",), ("name",), ("password",), ("roles",)}
    users = client.get(f"/api/v1/organisations/{orgs[0]['id']}/users", headers=op).json()
    assert all(u["email"] != "not-an-email" for u in users)


def test_validation_errors_are_422_with_field_path(client: TestClient, tokens: dict[str, str]) -> None:
    op = bearer(tokens[OPERATOR])
    response = client.post("/api/v1/organisations", json={"type": "martian", "name": ""}, headers=op)
    assert response.status_code == 422
    body = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    locs = {tuple(e["loc"]) for e in body["errors"]}
    assert ("body", "type") in locs
    assert ("body", "name") in locs
    assert (
        client.post(
            "/api/v1/organisations", content=b"{not json", headers={**op, "content-type": "application/json"}
        ).status_code
        == 422
    )
    assert client.get("/api/v1/users/not-a-uuid", headers=op).status_code == 422


def test_unknown_route_and_method_are_problems(client: TestClient) -> None:
    missing = client.get("/api/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.json()["type"] == "/problems/not-found"
    assert client.put("/api/v1/me").status_code == 405


def test_duplicate_email_is_a_conflict(client: TestClient, tokens: dict[str, str]) -> None:
    op = bearer(tokens[OPERATOR])
    org_id = client.get("/api/v1/organisations", params={"type": "enterprise"}, headers=op).json()[0]["id"]
    body = {"email": SME, "name": "Again", "password": "a-long-password-1", "roles": ["enterprise_staff"]}
    response = client.post(f"/api/v1/organisations/{org_id}/users", json=body, headers=op)
    assert response.status_code == 409
