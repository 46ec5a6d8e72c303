"""Every endpoint that takes an id, tried by every other role and by rivals of the same type."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import bearer
from tests.integration.authz import CASES, IdCase, build_world, operations_with_ids
from yunrong.config import Settings
from yunrong.identity.model import PERMISSIONS, Action, Context, Role


def test_every_operation_with_an_id_has_a_case(client: TestClient) -> None:
    declared = set(operations_with_ids(client.get("/openapi.json").json()))
    covered = {case.operation_id for case in CASES}
    assert declared - covered == set(), "add a case to tests/integration/authz.py"
    assert covered - declared == set()


def test_every_operation_has_a_snake_case_operation_id(client: TestClient) -> None:
    import re

    spec = client.get("/openapi.json").json()
    ids = [op["operationId"] for methods in spec["paths"].values() for op in methods.values()]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z]+(_[a-z0-9]+)+", i) for i in ids), ids


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.operation_id)
def test_only_the_allowed_reach_it(
    case: IdCase,
    client: TestClient,
    factory: sessionmaker[Session],
    settings: Settings,
    system_ctx: Context,
    demo: dict[str, str],
) -> None:
    world = build_world(client, factory, settings, system_ctx)
    method, template = operations_with_ids(client.get("/openapi.json").json())[case.operation_id]
    allowed = case.allowed(world)
    assert allowed or case.owner_allowed, "a case must allow somebody"
    # Refused callers first, so that creating or revoking calls by the allowed do not hide a leak.
    for email in sorted(world.tokens, key=lambda e: e in allowed):
        target = case.make(world)
        path = template.format(**target.path_params)
        response = client.request(method, path, json=target.body, headers=bearer(world.tokens[email]))
        if email in allowed:
            assert response.status_code in case.ok_statuses, (email, response.status_code, response.text)
        else:
            assert response.status_code in (403, 404), (email, response.status_code, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
            # The caller sent the id, so the echoed request path is no leak; everything else must be.
            answer = {k: v for k, v in response.json().items() if k != "instance"}
            for secret in target.secrets:
                assert secret not in str(answer), (email, secret)
    if case.owner_allowed:
        target = case.make(world)
        assert target.owner_token is not None
        path = template.format(**target.path_params)
        response = client.request(method, path, json=target.body, headers=bearer(target.owner_token))
        assert response.status_code in case.ok_statuses, ("owner", response.status_code, response.text)


def test_deny_by_default_every_action_is_granted_explicitly() -> None:
    assert set(PERMISSIONS) == set(Action)
    assert all(PERMISSIONS[a] <= frozenset(Role) for a in Action)
