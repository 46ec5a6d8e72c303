"""Step 1 and 2 through the API: demands, policy checks, service orders and their lifecycle."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import bearer, demo_tokens
from tests.integration.verification.demand_data import demand_body
from yunrong.config import Settings
from yunrong.db import unit_of_work
from yunrong.demands.tables import Demand
from yunrong.identity.model import Actor, Context
from yunrong.kit.clock import FrozenClock
from yunrong.verification import orders
from yunrong.verification.tables import ServiceOrder

SME = "sme@demo.yunrong.cn"
AGENCY = "agency@demo.yunrong.cn"
OPERATOR = "operator@demo.yunrong.cn"
REGULATOR = "regulator1@demo.yunrong.cn"


def _draft(client: TestClient, token: str, **overrides: Any) -> dict[str, Any]:
    response = client.post("/api/v1/demands", json=demand_body(**overrides), headers=bearer(token))
    assert response.status_code == 201, response.text
    return dict(response.json())


def _submit(client: TestClient, token: str, demand_id: str) -> Any:
    return client.post(f"/api/v1/demands/{demand_id}/submission", headers=bearer(token))


def _count(factory: sessionmaker[Session]) -> int:
    with unit_of_work(factory) as session:
        return int(session.scalar(select(func.count()).select_from(Demand)) or 0)


def test_a_draft_is_checked_all_at_once_and_nothing_is_saved(
    client: TestClient, tokens: dict[str, str], factory: sessionmaker[Session]
) -> None:
    token = tokens[SME]
    bad = demand_body(
        product="financial_lease",
        repayment_method="equal_instalment",
        max_annual_rate="25.0000",
        use_of_funds=[{"item": "x", "amount": "1.00"}],
        innovation={"high_tech_certified": True},
    )
    response = client.post("/api/v1/demands", json=bad, headers=bearer(token))
    assert response.status_code == 422
    locs = {tuple(e["loc"]) for e in response.json()["errors"]}
    assert {
        ("use_of_funds",),
        ("repayment_method",),
        ("facts", "lease"),
        ("max_annual_rate",),
        ("innovation", "certificate_number"),
    } <= locs
    assert "12%" in next(e["msg"] for e in response.json()["errors"] if e["loc"] == ["max_annual_rate"])
    assert _count(factory) == 0
    assert (
        client.post("/api/v1/demands", json=demand_body(amount="-1"), headers=bearer(token)).status_code
        == 422
    )
    assert (
        client.post(
            "/api/v1/demands", json=demand_body(), headers=bearer(tokens["investor@demo.yunrong.cn"])
        ).status_code
        == 403
    )


def test_submit_orders_the_services_the_product_needs(client: TestClient, tokens: dict[str, str]) -> None:
    token = tokens[SME]
    demand = _draft(client, token)
    assert demand["status"] == "draft"
    submitted = _submit(client, token, demand["id"])
    assert submitted.status_code == 200, submitted.text
    body = submitted.json()
    assert body["status"] == "under_verification"
    assert [e["to_status"] for e in body["events"]] == ["draft", "submitted", "under_verification"]
    services = {(o["agency_type"], o["service"], o["status"]) for o in body["orders"]}
    assert ("authentication", "business_licence_check", "assigned") in services
    assert ("authentication", "bank_account_check", "assigned") in services
    assert ("credit_rating", "sme_credit_rating", "assigned") in services
    assert not any(t == "guarantee" for t, _, _ in services)  # no guarantee was wanted
    agency_orders = client.get("/api/v1/service-orders", headers=bearer(tokens[AGENCY])).json()
    assert {o["id"] for o in agency_orders} >= {o["id"] for o in body["orders"] if o["status"] == "assigned"}
    assert all(o["fee_minor"] > 0 and o["deadline_at"] for o in agency_orders)
    notes = client.get("/api/v1/notifications", headers=bearer(tokens[AGENCY])).json()
    assert any(n["kind"] == "service_order.assigned" for n in notes)


def test_policy_checks_on_submit(client: TestClient, tokens: dict[str, str]) -> None:
    token = tokens[SME]
    first = _draft(
        client,
        token,
        amount="700000.00",
        use_of_funds=[{"item": "Line", "amount": "700000.00"}],
        project_key="line-a",
    )
    assert _submit(client, token, first["id"]).status_code == 200
    twin = _draft(client, token, project_key="LINE-A")
    duplicate = _submit(client, token, twin["id"])
    assert duplicate.status_code == 422
    assert duplicate.json()["type"] == "/problems/duplicate-financing"
    big = _draft(
        client,
        token,
        amount="400000.00",
        use_of_funds=[{"item": "More", "amount": "400000.00"}],
        project_key="line-b",
    )
    over = _submit(client, token, big["id"])
    assert over.status_code == 422
    assert over.json()["type"] == "/problems/amount-over-cap"
    assert "1,000,000.00 CNY" in over.json()["detail"]
    withdrawn = client.post(
        f"/api/v1/demands/{first['id']}/withdrawal", json={"reason": "plans changed"}, headers=bearer(token)
    )
    assert withdrawn.json()["status"] == "withdrawn"
    assert all(o["status"] == "cancelled" for o in withdrawn.json()["orders"] if o["status"] != "unassigned")
    assert _submit(client, token, big["id"]).status_code == 200  # room again once withdrawn
    again = client.post(
        f"/api/v1/demands/{first['id']}/withdrawal", json={"reason": "twice"}, headers=bearer(token)
    )
    assert again.status_code == 409


def test_decline_reassigns_and_conflict_rule_holds(
    client: TestClient, tokens: dict[str, str], factory: sessionmaker[Session], system_ctx: Context
) -> None:
    token = tokens[SME]
    demand = _submit(client, token, _draft(client, token)["id"]).json()
    rating = next(o for o in demand["orders"] if o["agency_type"] == "credit_rating")
    declined = client.post(
        f"/api/v1/service-orders/{rating['id']}/decline",
        json={"reason": "conflict of interest"},
        headers=bearer(tokens[AGENCY]),
    )
    assert declined.status_code == 200, declined.text
    # The demo world has one rating agency, so the order waits for the operator.
    assert declined.json()["status"] == "unassigned"
    assert declined.json()["assignments"] == 1
    events = client.get(f"/api/v1/service-orders/{rating['id']}", headers=bearer(tokens[OPERATOR])).json()[
        "events"
    ]
    assert [e["to"] for e in events] == ["assigned", "declined", "unassigned"]
    # The agency that declined no longer sees it as its own.
    assert (
        client.get(f"/api/v1/service-orders/{rating['id']}", headers=bearer(tokens[AGENCY])).status_code
        == 404
    )


def test_an_agency_never_both_rates_and_guarantees_one_enterprise(
    client: TestClient, tokens: dict[str, str], factory: sessionmaker[Session]
) -> None:
    from yunrong.parties.tables import Agency, AgencyService

    agency_org = client.get("/api/v1/me", headers=bearer(tokens[AGENCY])).json()["organisation"]["id"]
    with unit_of_work(factory) as session:
        agency = session.get(Agency, uuid.UUID(agency_org))
        assert agency is not None
        agency.types = [*agency.types, "guarantee"]
        # Cheaper than any other guarantor: only the conflict rule can keep it from the order.
        session.add(
            AgencyService(
                organisation_id=agency.organisation_id,
                agency_type="guarantee",
                service="cheap_guarantee",
                fee_minor=1,
                currency="CNY",
                sla_hours=24,
            )
        )
    token = tokens[SME]
    demand = _submit(client, token, _draft(client, token, guarantee_wanted=True)["id"]).json()
    by_type = {o["agency_type"]: o for o in demand["orders"]}
    rating = client.get(
        f"/api/v1/service-orders/{by_type['credit_rating']['id']}", headers=bearer(tokens[OPERATOR])
    )
    guarantee = client.get(
        f"/api/v1/service-orders/{by_type['guarantee']['id']}", headers=bearer(tokens[OPERATOR])
    )
    assert rating.json()["agency_id"] == agency_org
    assert guarantee.json()["agency_id"] not in (None, agency_org)
    # If the other guarantor declines, the rater still may not take the guarantee.
    with unit_of_work(factory) as session:
        order = session.get(ServiceOrder, uuid.UUID(by_type["guarantee"]["id"]))
        assert order is not None
        choice = orders.choose_agency(
            session,
            enterprise_id=order.enterprise_id,
            agency_type="guarantee",
            service="*",
            exclude={order.agency_id} if order.agency_id else set(),
        )
        assert choice is None or str(choice[0].id) != agency_org


def test_late_orders_escalate_and_the_operator_reassigns_or_waives(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    clock: FrozenClock,
    settings: Settings,
) -> None:
    token = tokens[SME]
    demand = _submit(client, token, _draft(client, token)["id"]).json()
    clock.advance(timedelta(hours=80))  # past the 24 h and 72 h service-level times
    with unit_of_work(factory) as session:
        late = orders.escalate_late_orders(session, ctx=Context(actor=Actor.system("t"), clock=clock))
    assert late == len([o for o in demand["orders"] if o["status"] == "assigned"])
    tokens = demo_tokens(
        client, factory, settings, Context(actor=Actor.system("t"), clock=clock)
    )  # fresh logins
    listed = client.get(
        "/api/v1/service-orders", params={"status": "escalated"}, headers=bearer(tokens[OPERATOR])
    )
    assert len(listed.json()) == late
    alerts = client.get("/api/v1/notifications", headers=bearer(tokens[REGULATOR])).json()
    assert any(n["kind"] == "alert.service_order.late" for n in alerts)
    for order in demand["orders"]:
        assert (
            client.post(
                f"/api/v1/service-orders/{order['id']}/waiver",
                json={"reason": "x"},
                headers=bearer(tokens[SME]),
            ).status_code
            == 403
        )
        waived = client.post(
            f"/api/v1/service-orders/{order['id']}/waiver",
            json={"reason": "accepted on the bank's own file"},
            headers=bearer(tokens[OPERATOR]),
        )
        assert waived.status_code == 200, waived.text
    after = client.get(f"/api/v1/demands/{demand['id']}", headers=bearer(tokens[SME])).json()
    assert after["status"] == "listed"
    assert after["events"][-1]["reason"] == "every required service is completed or waived"


def test_the_operator_edits_the_rules_as_data(client: TestClient, tokens: dict[str, str]) -> None:
    op = bearer(tokens[OPERATOR])
    rules = client.get("/api/v1/service-rules", params={"product": "p2p_loan"}, headers=op).json()
    assert {r["agency_type"] for r in rules} >= {"authentication", "credit_rating"}
    rule = {
        "product": "p2p_loan",
        "agency_type": "appraisal",
        "service": "*",
        "required": True,
        "description": "Appraise every P2P borrower's business",
    }
    assert client.put("/api/v1/service-rules", json=rule, headers=bearer(tokens[SME])).status_code == 403
    added = client.put("/api/v1/service-rules", json=rule, headers=op)
    assert added.status_code == 200, added.text
    token = tokens[SME]
    first = _submit(
        client,
        token,
        _draft(
            client,
            token,
            project_key="rule-a",
            amount="1000.00",
            use_of_funds=[{"item": "x", "amount": "1000.00"}],
        )["id"],
    ).json()
    assert "appraisal" in {o["agency_type"] for o in first["orders"]}
    assert client.delete(f"/api/v1/service-rules/{added.json()['id']}", headers=op).status_code == 204
    second = _submit(
        client,
        token,
        _draft(
            client,
            token,
            project_key="rule-b",
            amount="1000.00",
            use_of_funds=[{"item": "x", "amount": "1000.00"}],
        )["id"],
    ).json()
    assert "appraisal" not in {o["agency_type"] for o in second["orders"]}
    bad = client.put("/api/v1/service-rules", json={**rule, "service": "DROP TABLE"}, headers=op)
    assert bad.status_code == 422
