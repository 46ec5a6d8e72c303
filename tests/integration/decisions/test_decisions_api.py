"""Automated credit decisions: the default model, promotion by two operators, a decision with
reasons and a counterfactual on a listed demand, a human override, monitoring."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import bearer
from tests.integration.verification.demand_data import demand_body
from yunrong.config import Settings
from yunrong.db import unit_of_work
from yunrong.decisions import service
from yunrong.identity import service as identity
from yunrong.identity.model import Context, Role
from yunrong.identity.security import totp_now

SME = "sme@demo.yunrong.cn"
OPERATOR = "operator@demo.yunrong.cn"
REGULATOR = "regulator1@demo.yunrong.cn"


@pytest.fixture
def model_id(
    factory: sessionmaker[Session],
    settings: Settings,
    system_ctx: Context,
    tmp_path: Any,
    demo: dict[str, str],
) -> str:
    with unit_of_work(factory) as session:
        row = service.train_default_model(
            session,
            ctx=system_ctx,
            settings=settings.model_copy(update={"model_dir": tmp_path / "models"}),
            enterprises=400,
            years=4,
            seed=3,
        )
        return str(row.id)


def _second_operator(
    client: TestClient,
    factory: sessionmaker[Session],
    settings: Settings,
    ctx: Context,
    tokens: dict[str, str],
) -> str:
    op_org = client.get("/api/v1/me", headers=bearer(tokens[OPERATOR])).json()["organisation"]["id"]
    with unit_of_work(factory) as session:
        identity.create_user(
            session,
            ctx=ctx,
            settings=settings,
            organisation_id=uuid.UUID(op_org),
            email="operator2@demo.yunrong.cn",
            name="Second",
            password="second-operator-1",
            roles=frozenset({Role.OPERATOR_ADMIN}),
            enrol_totp=False,
        )
        secret = identity.enrol_totp_by_operator(
            session, ctx=ctx, settings=settings, email="operator2@demo.yunrong.cn"
        )
    return str(
        client.post(
            "/api/v1/auth/token",
            data={
                "username": "operator2@demo.yunrong.cn",
                "password": "second-operator-1",
                "totp": totp_now(secret, ctx.now()),
            },
        ).json()["access_token"]
    )


def test_promote_decide_override_and_monitor(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    system_ctx: Context,
    model_id: str,
) -> None:
    op = bearer(tokens[OPERATOR])
    card = client.get(f"/api/v1/credit-models/{model_id}", headers=bearer(tokens[REGULATOR])).json()
    assert card["role"] == "registered"
    assert card["card"]["training_data"]["sha256"]
    assert card["card"]["synthetic"] is True
    # No champion yet: a decision is refused with that reason.
    sme = bearer(tokens[SME])
    draft = client.post("/api/v1/demands", json=demand_body(), headers=sme).json()
    demand = client.post(f"/api/v1/demands/{draft['id']}/submission", headers=sme).json()
    assert (
        client.post(f"/api/v1/demands/{demand['id']}/decision", headers=op).json()["type"]
        == "/problems/no-champion"
    )
    # Promotion needs a second operator.
    promotion = client.post(
        f"/api/v1/credit-models/{model_id}/promotions",
        headers=op,
        json={"target_role": "champion", "reason": "first model"},
    ).json()
    refused = client.post(
        f"/api/v1/model-promotions/{promotion['id']}/decision",
        headers=op,
        json={"approve": True, "reason": "me"},
    )
    assert refused.status_code == 409
    assert refused.json()["type"] == "/problems/maker-checker"
    second = bearer(_second_operator(client, factory, settings, system_ctx, tokens))
    approved = client.post(
        f"/api/v1/model-promotions/{promotion['id']}/decision",
        headers=second,
        json={"approve": True, "reason": "validated on the synthetic world"},
    )
    assert approved.json()["status"] == "approved"
    decision = client.post(f"/api/v1/demands/{demand['id']}/decision", headers=op)
    assert decision.status_code == 200, decision.text
    body = decision.json()
    assert body["grade"] in {"AAA", "AA", "A", "BBB", "BB", "B", "CCC", "CC", "C"}
    assert 0 < body["pd"] < 1
    assert body["model_id"] == model_id
    assert body["reasons"]
    assert body["reasons"][0]["text_zh"]
    assert "current_grade" in body["counterfactual"]
    if body["declined"]:
        assert body["decline_reason"]
        assert body["limit_minor"] == 0
    else:
        assert float(body["apr"]) <= float(body["cap"])
    assert client.get(f"/api/v1/demands/{demand['id']}/decision", headers=sme).json()["id"] == body["id"]
    other = bearer(tokens["investor@demo.yunrong.cn"])
    assert client.get(f"/api/v1/demands/{demand['id']}/decision", headers=other).status_code == 404
    # A human override needs a reason and is audited.
    no_reason = client.post(
        f"/api/v1/credit-decisions/{body['id']}/override", headers=op, json={"reason": ""}
    )
    assert no_reason.status_code == 422
    overridden = client.post(
        f"/api/v1/credit-decisions/{body['id']}/override",
        headers=op,
        json={"grade": "BB", "reason": "the guarantee letter was not considered"},
    )
    assert overridden.json()["grade"] == "BB"
    assert overridden.json()["model_grade"] == body["grade"]
    audit = client.get(
        "/api/v1/audit-records", params={"action": "credit.override"}, headers=bearer(tokens[REGULATOR])
    )
    assert len(audit.json()["items"]) == 1
    monitor = client.get("/api/v1/credit-monitoring", headers=bearer(tokens[REGULATOR])).json()
    assert monitor["decisions"] == 1
    assert monitor["by_grade"][0]["count"] == 1
    assert monitor["psi"] is not None


def test_a_changed_artifact_is_never_loaded(
    factory: sessionmaker[Session], settings: Settings, system_ctx: Context, model_id: str
) -> None:
    from pathlib import Path

    from yunrong.decisions import registry
    from yunrong.decisions.tables import ModelVersion

    with unit_of_work(factory) as session:
        row = session.get(ModelVersion, uuid.UUID(model_id))
        assert row is not None
        Path(row.artifact_path).write_bytes(Path(row.artifact_path).read_bytes() + b"tampered")
        registry._cache.pop(row.artifact_sha256, None)
        with pytest.raises(Exception, match="changed"):
            registry.load(row)
