"""The pages of credit decisions over HTTP: a small default model is trained; the operator proposes
it as champion on its card and is refused when deciding his own proposal (maker–checker); a second
operator, signed in with TOTP, approves it; a listed demand gets "Decide now" and the enterprise sees
grade, price or decline and the reasons in English and in Chinese; an override with a reason shows
on the listing; monitoring shows the decision; the regulator reads but may not propose; an investor
sees no models."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import bearer
from tests.integration.verification.demand_data import demand_body
from yunrong.config import Settings
from yunrong.db import unit_of_work
from yunrong.decisions import service
from yunrong.decisions.tables import CreditDecision, ModelVersion
from yunrong.demo.seed import DEMO_PASSWORD
from yunrong.identity import repository
from yunrong.identity import service as identity
from yunrong.identity.model import Context, Role
from yunrong.identity.security import totp_now
from yunrong.kit.clock import FrozenClock

HTML = {"accept": "text/html"}
ZH = {**HTML, "accept-language": "zh-CN"}
SME = "sme@demo.yunrong.cn"
OPERATOR = "operator@demo.yunrong.cn"
SECOND = "operator2@demo.yunrong.cn"
SECOND_PASSWORD = "second-operator-1"
REGULATOR = "regulator1@demo.yunrong.cn"
INVESTOR = "investor@demo.yunrong.cn"


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def shown_by(html: str, name: str) -> str:
    """The text inside the first element with this data-testid (tags stripped)."""
    found = re.search(
        rf'data-testid="{re.escape(name)}"[^>]*>(.*?)</(?:p|dd|span|div|ol|small|code)>', html, re.S
    )
    assert found, f"no {name} on the page"
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", found.group(1))).split())


def page_login(
    client: TestClient,
    factory: sessionmaker[Session],
    settings: Settings,
    ctx: Context,
    email: str,
    password: str = DEMO_PASSWORD,
    totp: bool = True,
) -> None:
    """Sign in through the login form, with a TOTP code from a fresh enrolment where the role needs it."""
    code = ""
    if totp:
        with unit_of_work(factory) as session:
            secret = identity.enrol_totp_by_operator(session, ctx=ctx, settings=settings, email=email)
        code = totp_now(secret, ctx.now())
    client.cookies.clear()
    form = client.get("/login", headers=HTML)
    response = client.post(
        "/login",
        data={"email": email, "password": password, "totp": code, "csrf_token": csrf_of(form.text)},
        headers=HTML,
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text


def post(client: TestClient, path: str, data: dict[str, Any], headers: dict[str, str] = HTML) -> Any:
    token = csrf_of(client.get("/account", headers=HTML).text)
    return client.post(path, data={**data, "csrf_token": token}, headers=headers, follow_redirects=False)


@pytest.fixture
def model_id(
    factory: sessionmaker[Session], settings: Settings, system_ctx: Context, tmp_path: Path, demo: Any
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


def _listed_demand(client: TestClient, tokens: dict[str, str]) -> str:
    """Draft, submit, and waive every order as the operator: the demand is listed (no champion yet,
    so nothing decides it)."""
    sme = bearer(tokens[SME])
    draft = client.post("/api/v1/demands", json=demand_body(), headers=sme).json()
    demand = client.post(f"/api/v1/demands/{draft['id']}/submission", headers=sme).json()
    for order in demand["orders"]:
        waived = client.post(
            f"/api/v1/service-orders/{order['id']}/waiver",
            json={"reason": "accepted on the bank's own file"},
            headers=bearer(tokens[OPERATOR]),
        )
        assert waived.status_code == 200, waived.text
    assert client.get(f"/api/v1/demands/{demand['id']}", headers=sme).json()["status"] == "listed"
    return str(demand["id"])


def _second_operator(factory: sessionmaker[Session], settings: Settings, ctx: Context) -> None:
    with unit_of_work(factory) as session:
        first = repository.user_by_email(session, OPERATOR)
        assert first is not None
        identity.create_user(
            session,
            ctx=ctx,
            settings=settings,
            organisation_id=first.organisation_id,
            email=SECOND,
            name="Second Operator",
            password=SECOND_PASSWORD,
            roles=frozenset({Role.OPERATOR_ADMIN}),
            enrol_totp=False,
        )


def test_models_decisions_and_overrides_in_the_pages(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    system_ctx: Context,
    clock: FrozenClock,
    model_id: str,
) -> None:
    demand_id = _listed_demand(client, tokens)
    login = {"factory": factory, "settings": settings, "ctx": system_ctx}

    # The operator's demand page loads the decision; there is none yet, and deciding needs a champion.
    page_login(client, email=OPERATOR, **login)
    detail = client.get(f"/operator/demands/{demand_id}", headers=HTML)
    assert f'hx-get="/operator/demands/{demand_id}/decision"' in detail.text
    fragment = client.get(f"/operator/demands/{demand_id}/decision", headers={**HTML, "hx-request": "true"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.text
    assert 'data-testid="no-decision"' in fragment.text
    assert 'data-testid="decide-now"' in fragment.text
    refused = post(client, f"/operator/demands/{demand_id}/decision", {})
    assert refused.status_code == 409
    assert "No champion credit model" in shown_by(refused.text, "error-decide")

    # The model list and card.
    models = client.get("/models", headers=HTML)
    assert models.status_code == 200
    assert 'href="/models"' in models.text  # "Credit models" in the operator's navigation
    assert "yunrong-default" in models.text
    assert shown_by(models.text, "role") == "Registered, not in use"
    with unit_of_work(factory) as session:
        row = session.get(ModelVersion, uuid.UUID(model_id))
        assert row is not None
        sha, data_sha = row.artifact_sha256, row.card["training_data"]["sha256"]
    card = client.get(f"/models/{model_id}", headers=HTML)
    assert shown_by(card.text, "artifact-sha256") == sha
    assert shown_by(card.text, "data-sha256") == data_sha
    assert 'data-testid="synthetic"' in card.text
    assert "debt-to-assets ratio" in card.text  # features in plain words
    assert "资产负债率" in client.get(f"/models/{model_id}", headers=ZH).text
    assert 'data-testid="no-metrics"' in card.text  # the default model is not cross-validated

    # Propose: a missing reason is refused beside its field; then proposed.
    bad = post(client, f"/models/{model_id}/promotions", {"target_role": "champion", "reason": ""})
    assert bad.status_code == 422
    assert shown_by(bad.text, "error-reason") == "say why"
    proposed = post(client, f"/models/{model_id}/promotions", {"target_role": "champion", "reason": "first"})
    assert proposed.status_code == 303
    card = client.get(proposed.headers["location"], headers=HTML)
    assert shown_by(card.text, "promotion-status") == "Proposed"
    promotion_id = re.search(r'action="/model-promotions/([0-9a-f-]+)/decision"', card.text)
    assert promotion_id

    # The proposer may not decide his own proposal.
    own = post(
        client, f"/model-promotions/{promotion_id.group(1)}/decision", {"approve": "approve", "reason": "me"}
    )
    assert own.status_code == 409
    message = shown_by(own.text, "error-decision")
    assert "A second, different operator must approve" in message
    assert "another operator must decide it" in message
    own_zh = post(
        client,
        f"/model-promotions/{promotion_id.group(1)}/decision",
        {"approve": "approve", "reason": "me"},
        headers=ZH,
    )
    assert "须由另一名运营人员批准" in shown_by(own_zh.text, "error-decision")

    # A second operator approves.
    _second_operator(factory, settings, system_ctx)
    clock.advance(timedelta(seconds=30))
    page_login(client, email=SECOND, password=SECOND_PASSWORD, **login)
    approved = post(
        client,
        f"/model-promotions/{promotion_id.group(1)}/decision",
        {"approve": "approve", "reason": "validated on the synthetic world"},
    )
    assert approved.status_code == 303, approved.text
    card = client.get(approved.headers["location"], headers=HTML)
    assert shown_by(card.text, "role") == "Champion"
    assert shown_by(card.text, "promotion-status") == "Approved"
    # A card with cross-validated metrics (as the credit command line writes them) shows them.
    with unit_of_work(factory) as session:
        row = session.get(ModelVersion, uuid.UUID(model_id))
        assert row is not None
        row.card = {
            **row.card,
            "metrics": {"scorecard": {"auc": 0.7812, "ks": 0.4213, "gini": 0.5624, "brier": 0.0531}},
        }
    card = client.get(f"/models/{model_id}", headers=HTML)
    metrics = re.search(r'data-testid="metrics-scorecard">(.*?)</tr>', card.text, re.S)
    assert metrics
    assert re.findall(r"\d\.\d{4}", metrics.group(1)) == ["0.7812", "0.4213", "0.5624", "0.0531"]

    # Decide now: the enterprise sees grade, price or decline, and the reasons in both languages.
    decided = post(client, f"/operator/demands/{demand_id}/decision", {})
    assert decided.status_code == 303, decided.text
    assert shown_by(client.get(decided.headers["location"], headers=HTML).text, "flash")
    with unit_of_work(factory) as session:
        found = service.current_decision(session, uuid.UUID(demand_id))
        assert found is not None
        decision: CreditDecision = found
        session.expunge(decision)
    page_login(client, email=SME, totp=False, **login)
    en = client.get(f"/enterprise/demands/{demand_id}/decision", headers=HTML)
    assert en.status_code == 200
    assert shown_by(en.text, "grade") == decision.grade
    assert shown_by(en.text, "model") == "yunrong-default v1"
    assert f"{decision.pd * 100:.2f}%" == shown_by(en.text, "pd")
    reasons = [unescape(r) for r in re.findall(r'data-testid="reason">(.*?)</li>', en.text)]
    assert reasons == [r["text_en"] for r in decision.reasons]
    assert reasons
    if decision.declined:
        assert shown_by(en.text, "declined").startswith("Declined:")
        assert 'data-testid="apr"' not in en.text
    else:
        assert shown_by(en.text, "apr") == f"{decision.apr * 100:.2f}%"  # type: ignore[operator]
        assert shown_by(en.text, "cap") == f"{decision.cap * 100:.2f}%"  # type: ignore[operator]
    assert decision.counterfactual
    if decision.counterfactual["target_grade"]:
        assert f"To reach {decision.counterfactual['target_grade']}:" in en.text
    zh_page = client.get(f"/enterprise/demands/{demand_id}/decision", headers=ZH)
    zh_reasons = [unescape(r) for r in re.findall(r'data-testid="reason">(.*?)</li>', zh_page.text)]
    assert zh_reasons == [r["text_zh"] for r in decision.reasons]
    assert "信用决策" in zh_page.text
    # The enterprise's demand page loads it; nobody else's demand is shown.
    assert (
        f'hx-get="/enterprise/demands/{demand_id}/decision"'
        in client.get(f"/enterprise/demands/{demand_id}", headers=HTML).text
    )
    assert client.get(f"/enterprise/demands/{uuid.uuid4()}/decision", headers=HTML).status_code == 404
    assert client.get("/models", headers=HTML).status_code == 403

    # An override needs a reason (shown beside the field), then shows on the listing.
    page_login(client, email=OPERATOR, **login)
    no_reason = post(
        client, f"/operator/credit-decisions/{decision.id}/override", {"grade": "BB", "reason": ""}
    )
    assert no_reason.status_code == 422
    assert shown_by(no_reason.text, "error-reason") == "an override needs a reason"
    overridden = post(
        client,
        f"/operator/credit-decisions/{decision.id}/override",
        {"grade": "BB", "reason": "the guarantee letter was not considered"},
    )
    assert overridden.status_code == 303, overridden.text
    page_login(client, email=INVESTOR, totp=False, **login)
    listing = client.get(f"/investor/listings/{demand_id}", headers=HTML)
    assert f'hx-get="/investor/listings/{demand_id}/decision"' in listing.text
    shown = client.get(f"/investor/listings/{demand_id}/decision", headers={**HTML, "hx-request": "true"})
    assert shown_by(shown.text, "grade") == "BB"
    note = shown_by(shown.text, "override-note")
    assert "the guarantee letter was not considered" in note
    assert OPERATOR in note
    assert f"instead of the model's {decision.grade}" in note
    assert 'data-testid="override-form"' not in shown.text  # investors read, they do not override
    assert client.get("/models", headers=HTML).status_code == 403
    assert client.get(f"/models/{model_id}", headers=HTML).status_code == 403
    assert client.get(f"/operator/demands/{demand_id}/decision", headers=HTML).status_code == 403

    # The regulator reads the models and the monitoring, and may not propose.
    page_login(client, email=REGULATOR, **login)
    assert client.get("/models", headers=HTML).status_code == 200
    card = client.get(f"/models/{model_id}", headers=HTML)
    assert card.status_code == 200
    assert 'data-testid="propose-form"' not in card.text
    refused = post(client, f"/models/{model_id}/promotions", {"target_role": "retired", "reason": "x"})
    assert refused.status_code == 403
    monitoring = client.get("/models/monitoring", headers=HTML)
    assert shown_by(monitoring.text, "decision-count") == "1"
    assert shown_by(monitoring.text, "psi-reading") in {"Stable", "Watch", "Shifted"}
    assert shown_by(monitoring.text, "no-outcomes") == "no outcomes yet"
    assert "<svg" in monitoring.text
    assert "尚无结果" in client.get("/models/monitoring", headers=ZH).text
