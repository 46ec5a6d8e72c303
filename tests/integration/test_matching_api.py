"""Step 4: investment preferences, "recommended for you" and push, through the API and the service."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import bearer, login_token
from tests.integration.decision_data import list_with_decision
from tests.integration.verification.demand_data import demand_body
from yunrong.config import Settings
from yunrong.db import unit_of_work
from yunrong.decisions.tables import ModelVersion
from yunrong.demands.tables import Demand
from yunrong.identity.model import Context
from yunrong.kit.clock import FrozenClock
from yunrong.matching import service
from yunrong.matching.tables import Push
from yunrong.messaging.tables import Notification
from yunrong.parties.tables import Investor

SME = "sme@demo.yunrong.cn"
INVESTOR = "investor@demo.yunrong.cn"
INSTITUTION = "institution@demo.yunrong.cn"

PREFS: dict[str, Any] = {
    "currency": "CNY",
    "amount_per_loan": "10000.00",
    "total_budget": "200000.00",
    "min_term_months": 6,
    "max_term_months": 24,
    "grades": ["A", "BBB", "BB"],
    "products": ["p2p_loan", "bank_loan"],
    "innovation": "neutral",
    "min_transparency": 0,
    "min_guarantee_coverage": "0",
}


def _org(client: TestClient, token: str) -> uuid.UUID:
    return uuid.UUID(client.get("/api/v1/me", headers=bearer(token)).json()["organisation"]["id"])


def _listed_with_decision(
    client: TestClient, tokens: dict[str, str], factory: sessionmaker[Session], clock: FrozenClock, grade: str
) -> uuid.UUID:
    """A demand drafted through the API, then listed with a decision written directly (the agencies
    and the credit engine are exercised by their own tests)."""
    draft = client.post(
        "/api/v1/demands", json=demand_body(project_key=f"match-{grade}"), headers=bearer(tokens[SME])
    )
    assert draft.status_code == 201, draft.text
    demand_id = uuid.UUID(draft.json()["id"])
    now = clock.now()
    with unit_of_work(factory) as session:
        demand = session.get(Demand, demand_id)
        assert demand is not None
        list_with_decision(session, demand, now, grade=grade)
    return demand_id


def _set_level(factory: sessionmaker[Session], org_id: uuid.UUID, level: str) -> None:
    with unit_of_work(factory) as session:
        investor = session.get(Investor, org_id)
        assert investor is not None
        investor.risk_level = level


def _notifications(factory: sessionmaker[Session], org_id: uuid.UUID) -> int:
    with factory() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(Notification)
                .where(Notification.organisation_id == org_id, Notification.kind == "matching.push")
            )
            or 0
        )


def test_preferences_round_trip_and_validation(client: TestClient, tokens: dict[str, str]) -> None:
    me = bearer(tokens[INVESTOR])
    assert client.get("/api/v1/me/investment-preferences", headers=me).status_code == 404
    bad = {
        **PREFS,
        "currency": "EUR",
        "amount_per_loan": "300000.00",
        "min_term_months": 30,
        "max_term_months": 12,
        "grades": ["ZZ"],
    }
    response = client.put("/api/v1/me/investment-preferences", json=bad, headers=me)
    assert response.status_code == 422, response.text
    fields = sorted(e["loc"][-1] for e in response.json()["errors"])
    assert fields == ["amount_per_loan", "currency", "grades", "max_term_months"]
    shape = client.put(
        "/api/v1/me/investment-preferences",
        json={**PREFS, "amount_per_loan": "-1", "min_transparency": 101, "colour": "red"},
        headers=me,
    )
    assert shape.status_code == 422
    assert len(shape.json()["errors"]) == 3
    saved = client.put("/api/v1/me/investment-preferences", json=PREFS, headers=me)
    assert saved.status_code == 200, saved.text
    read = client.get("/api/v1/me/investment-preferences", headers=me).json()
    assert read["amount_per_loan"] == "10000.00"
    assert read["grades"] == ["A", "BB", "BBB"]
    assert read["min_term_months"] == 6
    assert read["max_term_months"] == 24
    sme = client.put("/api/v1/me/investment-preferences", json=PREFS, headers=bearer(tokens[SME]))
    assert sme.status_code == 403
    assert client.get("/api/v1/recommendations", headers=bearer(tokens[SME])).status_code == 403
    settings = client.put("/api/v1/me/push-settings", json={"daily_cap": 51}, headers=me)
    assert settings.status_code == 422


def test_recommended_only_to_fitting_suitable_investors(
    client: TestClient, tokens: dict[str, str], factory: sessionmaker[Session], clock: FrozenClock
) -> None:
    person, institution = _org(client, tokens[INVESTOR]), _org(client, tokens[INSTITUTION])
    _set_level(factory, person, "C3")
    _set_level(factory, institution, "C5")
    demand_id = _listed_with_decision(client, tokens, factory, clock, grade="BB")  # R3
    assert client.put(
        "/api/v1/me/investment-preferences", json=PREFS, headers=bearer(tokens[INVESTOR])
    ).is_success
    only_aaa = {**PREFS, "grades": ["AAA"]}
    assert client.put(
        "/api/v1/me/investment-preferences", json=only_aaa, headers=bearer(tokens[INSTITUTION])
    ).is_success

    recs = client.get("/api/v1/recommendations", headers=bearer(tokens[INVESTOR])).json()
    assert [r["demand_id"] for r in recs] == [str(demand_id)]
    assert recs[0]["grade"] == "BB"
    assert recs[0]["product_risk"] == "R3"
    codes = {reason["code"] for reason in recs[0]["reasons"]}
    assert {"grade", "term", "product", "suitable", "expected-return"} <= codes
    assert 0 < recs[0]["score"] <= 1
    assert client.get("/api/v1/recommendations", headers=bearer(tokens[INSTITUTION])).json() == []

    _set_level(factory, person, "C1")  # a C1 investor is never offered an R3 listing
    assert client.get("/api/v1/recommendations", headers=bearer(tokens[INVESTOR])).json() == []


def test_push_once_per_pair_respecting_unsubscribe(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    clock: FrozenClock,
    system_ctx: Context,
) -> None:
    person, institution = _org(client, tokens[INVESTOR]), _org(client, tokens[INSTITUTION])
    _set_level(factory, person, "C3")
    _set_level(factory, institution, "C5")
    for email in (INVESTOR, INSTITUTION):
        assert client.put(
            "/api/v1/me/investment-preferences", json=PREFS, headers=bearer(tokens[email])
        ).is_success
    unsub = client.put(
        "/api/v1/me/push-settings",
        json={"daily_cap": 5, "unsubscribed": True},
        headers=bearer(tokens[INSTITUTION]),
    )
    assert unsub.json() == {"daily_cap": 5, "unsubscribed": True}
    demand_id = _listed_with_decision(client, tokens, factory, clock, grade="BBB")

    with unit_of_work(factory) as session:
        pushed = service.push_listing(session, ctx=system_ctx, demand_id=demand_id)
        assert [p.investor_org_id for p in pushed] == [person]
        assert {r["code"] for r in pushed[0].reasons} >= {"grade", "suitable"}
    told = _notifications(factory, person)
    assert told >= 1
    assert _notifications(factory, institution) == 0

    clock.advance(timedelta(minutes=5))
    with unit_of_work(factory) as session:
        assert service.push_listing(session, ctx=system_ctx, demand_id=demand_id) == []
    # Changing preferences does not push the same listing twice either.
    assert client.put(
        "/api/v1/me/investment-preferences",
        json={**PREFS, "min_term_months": 3},
        headers=bearer(tokens[INVESTOR]),
    ).is_success
    assert _notifications(factory, person) == told
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Push)) == 1
    # Still recommended in-app while unsubscribed from pushes.
    assert len(client.get("/api/v1/recommendations", headers=bearer(tokens[INSTITUTION])).json()) == 1


def test_preference_change_pushes_within_the_daily_cap(
    client: TestClient, tokens: dict[str, str], factory: sessionmaker[Session], clock: FrozenClock
) -> None:
    person = _org(client, tokens[INVESTOR])
    _set_level(factory, person, "C4")
    first = _listed_with_decision(client, tokens, factory, clock, grade="A")
    second = _listed_with_decision(client, tokens, factory, clock, grade="BB")
    me = bearer(tokens[INVESTOR])
    assert client.put("/api/v1/me/push-settings", json={"daily_cap": 1}, headers=me).is_success
    assert client.put("/api/v1/me/investment-preferences", json=PREFS, headers=me).is_success
    with factory() as session:
        pushed = set(session.scalars(select(Push.demand_id).where(Push.investor_org_id == person)))
    assert len(pushed) == 1
    assert pushed <= {first, second}
    clock.advance(timedelta(days=1, minutes=1))  # the rolling day has passed; tokens have expired
    me = bearer(login_token(client, INVESTOR))
    assert client.put("/api/v1/me/investment-preferences", json=PREFS, headers=me).is_success
    with factory() as session:
        pushed = set(session.scalars(select(Push.demand_id).where(Push.investor_org_id == person)))
    assert pushed == {first, second}


def test_listing_a_demand_decides_it_and_pushes_it_to_the_investors_it_suits(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    system_ctx: Context,
    tmp_path: Any,
) -> None:
    """The whole of step 4's trigger: the last required order done → listed → decided → pushed."""
    from yunrong.decisions import service as decisions

    with unit_of_work(factory) as session:
        model = decisions.train_default_model(
            session,
            ctx=system_ctx,
            settings=settings.model_copy(update={"model_dir": tmp_path / "m"}),
            enterprises=400,
            years=4,
            seed=3,
        )
        session.query(ModelVersion).filter(ModelVersion.id == model.id).update({"role": "champion"})
    investor = bearer(tokens["investor@demo.yunrong.cn"])
    every_grade = {**PREFS, "grades": [], "products": []}
    assert (
        client.put("/api/v1/me/investment-preferences", json=every_grade, headers=investor).status_code == 200
    )
    sme = bearer(tokens[SME])
    draft = client.post("/api/v1/demands", json=demand_body(project_key="push-trigger"), headers=sme).json()
    demand = client.post(f"/api/v1/demands/{draft['id']}/submission", headers=sme).json()
    operator = bearer(tokens["operator@demo.yunrong.cn"])
    for order in demand["orders"]:
        client.post(f"/api/v1/service-orders/{order['id']}/waiver", json={"reason": "test"}, headers=operator)
    listed = client.get(f"/api/v1/demands/{demand['id']}", headers=sme).json()
    assert listed["status"] == "listed"
    decision = client.get(f"/api/v1/demands/{demand['id']}/decision", headers=sme).json()
    assert decision["grade"]
    recommended = client.get("/api/v1/recommendations", headers=investor).json()
    pushed = [
        n
        for n in client.get("/api/v1/notifications", headers=investor).json()
        if n["kind"] == "matching.push"
    ]
    if decision["declined"]:
        assert pushed == []
    else:
        # Pushed exactly when it suits the investor: the same rules decide recommendations.
        assert (len(pushed) == 1) == any(r["demand_id"] == demand["id"] for r in recommended)


def test_push_ranks_every_investor_as_match_does_one_by_one(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    clock: FrozenClock,
    system_ctx: Context,
) -> None:
    """push_listing ranks all investors at once (matching.vector): the same investors, scores and
    order as match() investor by investor, including the diversification by earlier pushes."""
    person, institution = _org(client, tokens[INVESTOR]), _org(client, tokens[INSTITUTION])
    _set_level(factory, person, "C5")
    _set_level(factory, institution, "C5")
    for email, amount in ((INVESTOR, "10000.00"), (INSTITUTION, "50000.00")):
        body = {**PREFS, "amount_per_loan": amount, "grades": []}
        assert client.put(
            "/api/v1/me/investment-preferences", json=body, headers=bearer(tokens[email])
        ).is_success
    earlier = _listed_with_decision(client, tokens, factory, clock, grade="A")
    with unit_of_work(factory) as session:
        service.push_listing(session, ctx=system_ctx, demand_id=earlier)  # pushes in this industry
    demand_id = _listed_with_decision(client, tokens, factory, clock, grade="BB")

    with factory() as session:
        demand = session.get(Demand, demand_id)
        assert demand is not None
        decision = service.current_decision(session, demand_id)
        assert decision is not None
        listing = service.listing_of(session, demand, decision, system_ctx)
        expected = []
        for row in service._admitted_investors_with_preferences(session):
            org_id = row.organisation_id
            ok, score, _ = service.match(
                service.preferences_of(row),
                service.investor_profile(session, org_id),
                listing,
                service._policy(None),
                service._industry_pushes(session, org_id),
            )
            if ok:
                expected.append((-score.total, str(org_id), score.total))
    expected.sort()
    assert len(expected) == 2
    with unit_of_work(factory) as session:
        pushed = service.push_listing(session, ctx=system_ctx, demand_id=demand_id)
        got = [(str(p.investor_org_id), p.score) for p in pushed]
    assert got == [(org, total) for _, org, total in expected]
