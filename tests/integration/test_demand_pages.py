"""The pages of steps 1–3 over HTTP: an SME drafts a demand of every product through the form and
submits it (the platform orders services); a bad form is refused field by field and saves nothing;
the rating agency accepts its order and returns a result signed in the test with its own key over
the canonical text the page shows (a tampered signature is refused beside its field); the operator
waives the rest, the demand is listed, and an investor reads it with each fact marked verified or
self-declared. Every other role is refused."""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from yunrong import migrate
from yunrong.app import create_app
from yunrong.config import Settings
from yunrong.db import make_engine, make_sessionmaker, unit_of_work
from yunrong.demands.tables import Demand
from yunrong.demo.seed import (
    AGENCY,
    DEMO_PASSWORD,
    OPERATOR,
    PERSON,
    REGULATOR_1,
    SME,
    demo_agency_private_key,
    seed_demo,
)
from yunrong.identity.model import Actor, Context
from yunrong.kit.clock import FrozenClock, SystemClock, business_date
from yunrong.parties import codes
from yunrong.verification import attestations
from yunrong.verification.tables import Attestation, ServiceOrder

HTML = {"accept": "text/html"}
ZH = {**HTML, "accept-language": "zh-CN"}
GUARANTOR = "guarantee@demo.yunrong.cn"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated demo world with its simulated specialist agencies and no demands; each test works
    on its own copy."""
    path = tmp_path_factory.mktemp("demand-pages") / "template.db"
    url = f"sqlite:///{path}"
    migrate.upgrade(url)
    engine = make_engine(url)
    system = Context(actor=Actor.system("test"), clock=SystemClock())
    with unit_of_work(make_sessionmaker(engine)) as session:
        seed_demo(session, ctx=system, settings=Settings(database_url=url, demo=True), with_money=False)
    engine.dispose()
    return path


@dataclass
class World:
    client: TestClient
    clock: FrozenClock
    settings: Settings

    def count(self, model: Any) -> int:
        with unit_of_work(self.client.app.state.sessionmaker) as session:  # type: ignore[attr-defined]
            return int(session.scalar(select(func.count()).select_from(model)) or 0)

    def orders_of(self, demand_id: str) -> list[ServiceOrder]:
        with unit_of_work(self.client.app.state.sessionmaker) as session:  # type: ignore[attr-defined]
            rows = session.scalars(
                select(ServiceOrder).where(ServiceOrder.demand_id == uuid.UUID(demand_id))
            ).all()
            session.expunge_all()
            return list(rows)

    def status_of(self, demand_id: str) -> str:
        with unit_of_work(self.client.app.state.sessionmaker) as session:  # type: ignore[attr-defined]
            demand = session.get(Demand, uuid.UUID(demand_id))
            assert demand is not None
            return demand.status


@pytest.fixture
def world(template: Path, tmp_path: Path) -> Iterator[World]:
    db = tmp_path / "demands.db"
    shutil.copyfile(template, db)
    settings = Settings(
        database_url=f"sqlite:///{db}", demo=True, mail_dir=tmp_path / "mail", upload_dir=tmp_path / "up"
    )
    clock = FrozenClock(datetime.now(UTC).replace(microsecond=0))
    app = create_app(settings, clock=clock)
    with TestClient(app, base_url="http://testserver") as client:
        yield World(client, clock, settings)
    app.state.engine.dispose()


# --- helpers -----------------------------------------------------------------------------------------


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def log_in(client: TestClient, email: str) -> None:
    client.cookies.clear()
    page = client.get("/login", headers=HTML)
    response = client.post(
        "/login",
        data={"email": email, "password": DEMO_PASSWORD, "csrf_token": csrf_of(page.text)},
        headers=HTML,
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text


def post(client: TestClient, path: str, data: dict[str, Any], page: str = "") -> Any:
    token = csrf_of(page or client.get("/account", headers=HTML).text)
    return client.post(path, data={**data, "csrf_token": token}, headers=HTML, follow_redirects=False)


def error_of(html: str, field: str) -> str:
    found = re.search(rf'data-testid="error-{re.escape(field)}"[^>]*>(.*?)</', html, re.S)
    assert found, f"no error beside {field}"
    return unescape(found.group(1)).strip()


COMMON: dict[str, str] = {
    "term_months": "12",
    "max_annual_rate": "8.5",
    "purpose": "Working capital for the spring season",
    "use_of_funds.0.item": "Seeds and fertiliser",
    "use_of_funds.0.amount": "60000.00",
    "use_of_funds.1.item": "Labour",
    "use_of_funds.1.amount": "40000.00",
    "amount": "100000.00",
}


def product_form(product: str, today: date) -> dict[str, str]:
    """Valid minimal data for each product, as a person would type it into the form."""
    specific: dict[str, dict[str, str]] = {
        "bank_loan": {"repayment_method": "equal_instalment"},
        "p2p_loan": {"repayment_method": "equal_principal"},
        "supply_chain_receivable": {
            "repayment_method": "bullet",
            "facts.receivable.debtor_name": "Jiangsu Xianfeng Supermarket Chain Co.",
            "facts.receivable.debtor_credit_code": codes.make_uscc("91320100MA1XFCH5N"),
            "facts.receivable.invoice_number": "32001900-0458812",
            "facts.receivable.amount": "120,000.00",
            "facts.receivable.due_date": (today + timedelta(days=60)).isoformat(),
        },
        "ecommerce_credit_line": {
            "repayment_method": "revolving",
            "facts.store.platform": "Tmall",
            "facts.store.store_id": "lvyuan-farm-001",
            "facts.store.monthly_sales": "210000, 198000，226000",
        },
        "financial_lease": {
            "repayment_method": "lease_rent",
            "facts.lease.equipment": "Seedling transplanter",
            "facts.lease.supplier": "Wuxi Jingcheng Machinery",
            "facts.lease.price": "120000.00",
            "facts.lease.residual_value": "10000.00",
            "facts.lease.end_option": "purchase",
        },
    }
    return {
        **COMMON,
        "product": product,
        "title": f"Demand for a {product}",
        "project_key": f"project-{product}",
        "collateral.0.kind": "",
        **specific[product],
    }


def draft(world: World, data: dict[str, str]) -> str:
    """Fill in the form and save the draft; returns the demand's id."""
    client = world.client
    page = client.get("/enterprise/demands/new", headers=HTML)
    assert page.status_code == 200
    response = post(client, "/enterprise/demands", data, page.text)
    assert response.status_code == 303, error_summary(response.text)
    location = response.headers["location"]
    assert location.endswith("?done=drafted")
    return location.split("/")[-1].split("?")[0]


def error_summary(html: str) -> str:
    return "; ".join(
        f"{m[0]}: {unescape(m[1])}" for m in re.findall(r'data-testid="error-([^"]+)"[^>]*>(.*?)</', html)
    )


def submit(world: World, demand_id: str) -> None:
    page = world.client.get(f"/enterprise/demands/{demand_id}", headers=HTML)
    response = post(world.client, f"/enterprise/demands/{demand_id}/submission", {}, page.text)
    assert response.status_code == 303, response.text


def today_of(world: World) -> date:
    return business_date(world.clock.now(), world.settings.timezone)


# --- step 1: the enterprise --------------------------------------------------------------------------


def test_a_demand_of_every_product_is_drafted_through_the_form_and_submitted(world: World) -> None:
    log_in(world.client, SME.email)
    for product in (
        "bank_loan",
        "p2p_loan",
        "supply_chain_receivable",
        "ecommerce_credit_line",
        "financial_lease",
    ):
        demand_id = draft(world, product_form(product, today_of(world)))
        page = world.client.get(f"/enterprise/demands/{demand_id}", headers=HTML)
        assert 'data-testid="demand-status">Draft<' in page.text
        assert 'data-testid="submit-demand"' in page.text
        assert world.orders_of(demand_id) == []
        submit(world, demand_id)
        page = world.client.get(f"/enterprise/demands/{demand_id}", headers=HTML)
        assert world.status_of(demand_id) == "under_verification", product
        orders = world.orders_of(demand_id)
        assert orders, product
        for order in orders:
            assert f'data-testid="order-{order.ref}"' in page.text
        assert 'data-testid="submit-demand"' not in page.text
        assert "Under verification" in page.text
        assert 'data-testid="transparency-score"' in page.text
    listing = world.client.get("/enterprise/demands", headers=HTML)
    assert listing.text.count('data-testid="demand-link"') == 5
    with unit_of_work(world.client.app.state.sessionmaker) as session:  # type: ignore[attr-defined]
        facts = {d.product: d.product_facts for d in session.scalars(select(Demand))}
    assert facts["ecommerce_credit_line"]["store"]["monthly_sales_minor"] == [
        21_000_000,
        19_800_000,
        22_600_000,
    ]
    assert facts["supply_chain_receivable"]["receivable"]["amount_minor"] == 12_000_000
    assert facts["financial_lease"]["lease"]["end_option"] == "purchase"


def test_a_bad_form_shows_each_problem_beside_its_field_and_saves_nothing(world: World) -> None:
    log_in(world.client, SME.email)
    bad = {
        **product_form("financial_lease", today_of(world)),
        "use_of_funds.1.amount": "10000.00",  # 70,000 of 100,000
        "max_annual_rate": "30",  # above four times the LPR
    }
    for name in [k for k in bad if k.startswith("facts.lease.")]:
        bad[name] = ""
    page = world.client.get("/enterprise/demands/new", headers=HTML)
    response = post(world.client, "/enterprise/demands", bad, page.text)
    assert response.status_code == 422
    assert "the breakdown sums to 70,000.00 CNY, not 100,000.00 CNY" in error_of(
        response.text, "use_of_funds"
    )
    assert error_of(response.text, "facts.lease") == "required for a financial_lease"
    assert "above the legal cap" in error_of(response.text, "max_annual_rate")
    assert 'value="Seeds and fertiliser"' in response.text  # what was typed is kept
    assert world.count(Demand) == 0

    # Problems of shape are found before the service is asked, each beside its field too.
    shape = {
        **product_form("bank_loan", today_of(world)),
        "title": "",
        "amount": "a lot",
        "use_of_funds.3.amount": "5",
    }
    response = post(world.client, "/enterprise/demands", shape, page.text)
    assert response.status_code == 422
    assert error_of(response.text, "title") == "Required."
    assert error_of(response.text, "amount") == "Enter an amount, e.g. 1250000.00."
    assert error_of(response.text, "use_of_funds.3.item") == "Required."  # the fourth row, as typed
    assert world.count(Demand) == 0

    zh = world.client.post(
        "/enterprise/demands",
        data={**bad, "csrf_token": csrf_of(page.text)},
        headers=ZH,
        follow_redirects=False,
    )
    assert zh.status_code == 422
    assert "高于法定上限" in error_of(zh.text, "max_annual_rate")
    assert world.count(Demand) == 0


def test_the_enterprise_withdraws_a_demand_with_a_reason(world: World) -> None:
    log_in(world.client, SME.email)
    demand_id = draft(world, product_form("p2p_loan", today_of(world)))
    page = world.client.get(f"/enterprise/demands/{demand_id}", headers=HTML)
    refused = post(
        world.client, f"/enterprise/demands/{demand_id}/withdrawal", {"withdraw_reason": ""}, page.text
    )
    assert refused.status_code == 422
    assert error_of(refused.text, "withdraw_reason") == "Required."
    done = post(
        world.client,
        f"/enterprise/demands/{demand_id}/withdrawal",
        {"withdraw_reason": "financed elsewhere"},
        page.text,
    )
    assert done.status_code == 303
    assert world.status_of(demand_id) == "withdrawn"
    assert "financed elsewhere" in world.client.get(f"/enterprise/demands/{demand_id}", headers=HTML).text


# --- steps 2 and 3: the agency, the operator, the investor ------------------------------------------------


def completion_fields(html: str) -> dict[str, str]:
    form = re.search(r'<form[^>]*data-testid="completion-form".*?</form>', html, re.S)
    assert form, "no completion form"
    fields = dict(
        re.findall(r'<input id="[^"]*" name="([^"]+)" type="(?:text|date)"\s*value="([^"]*)"', form.group(0))
    )
    return {k: unescape(v) for k, v in fields.items()}


def canonical_of(html: str) -> str:
    found = re.search(r'data-testid="canonical">(.*?)</textarea>', html, re.S)
    assert found, "the page shows no text to sign"
    return unescape(found.group(1))


def test_steps_one_to_three_through_the_pages(world: World) -> None:
    client = world.client
    log_in(client, SME.email)
    page = client.get("/enterprise/credit-file", headers=HTML)
    assert post(client, "/enterprise/credit-file/registration", {}, page.text).status_code == 303
    valid_until = (today_of(world) + timedelta(days=365)).isoformat()
    for category in ("identity", "financials", "credit_score"):
        consent = {
            "data_category": category,
            "recipient_class": "investors",
            "purpose": "investors assess my demands",
            "valid_until": valid_until,
        }
        assert post(client, "/enterprise/consents", consent).status_code == 303
    demand_id = draft(world, product_form("bank_loan", today_of(world)))
    submit(world, demand_id)
    rating = next(o for o in world.orders_of(demand_id) if o.agency_type == "credit_rating")

    # The rating agency finds its order, reads the enterprise's file and accepts.
    log_in(client, AGENCY.email)
    orders = client.get("/agency/orders", headers=HTML)
    assert f'data-testid="order-{rating.ref}"' in orders.text
    page = client.get(f"/agency/orders/{rating.id}", headers=HTML)
    assert page.status_code == 200
    assert 'data-testid="category-identity"' not in page.text  # agencies are given no consent here
    accepted = post(client, f"/agency/orders/{rating.id}/acceptance", {}, page.text)
    assert accepted.status_code == 303
    page = client.get(f"/agency/orders/{rating.id}", headers=HTML)
    assert 'data-testid="order-status">Accepted<' in page.text
    assert 'data-testid="accept-order"' not in page.text

    # A result of the wrong shape is refused beside its field before anything is signed.
    fields = completion_fields(page.text)
    result = {"result.rating": "A", "result.outlook": "stable", "result.methodology": "SME scorecard v3"}
    wrong = post(
        client,
        f"/agency/orders/{rating.id}/completion",
        {**fields, **result, "result.rating": "A+", "step": "prepare"},
        page.text,
    )
    assert wrong.status_code == 422
    assert error_of(wrong.text, "result.rating") == "Choose one of the options."
    assert 'data-testid="canonical"' not in wrong.text

    # The page shows the exact text to sign, computed from what was entered.
    shown = post(
        client, f"/agency/orders/{rating.id}/completion", {**fields, **result, "step": "prepare"}, page.text
    )
    assert shown.status_code == 200
    canonical = canonical_of(shown.text)
    assert f'"order_ref":"{rating.ref}"' in canonical
    assert '"payload":{"methodology":"SME scorecard v3","outlook":"stable","rating":"A"}' in canonical
    key = demo_agency_private_key(world.settings, AGENCY.organisation)
    signature = attestations.sign(key, canonical)

    # A signature over other text (the result altered after signing) is refused beside the field.
    tampered = attestations.sign(key, canonical.replace('"rating":"A"', '"rating":"AA"'))
    refused = post(
        client,
        f"/agency/orders/{rating.id}/completion",
        {**fields, **result, "signature": tampered, "step": "submit"},
        shown.text,
    )
    assert refused.status_code == 422
    assert error_of(refused.text, "signature") == "not a valid Ed25519 signature of the canonical form"
    assert world.count(Attestation) == 0
    changed = post(
        client,
        f"/agency/orders/{rating.id}/completion",
        {**fields, **result, "result.rating": "AA", "signature": signature, "step": "submit"},
        shown.text,
    )
    assert changed.status_code == 422
    assert world.count(Attestation) == 0

    done = post(
        client,
        f"/agency/orders/{rating.id}/completion",
        {**fields, **result, "signature": signature, "step": "submit"},
        shown.text,
    )
    assert done.status_code == 303, error_summary(done.text)
    assert world.count(Attestation) == 1
    page = client.get(f"/agency/orders/{rating.id}", headers=HTML)
    assert 'data-testid="order-status">Completed<' in page.text
    assert 'data-testid="completion-form"' not in page.text
    assert 'data-testid="fact-agency_rating"' in page.text  # what it attested itself

    # The operator waives the remaining required orders; a waiver needs a reason.
    log_in(client, OPERATOR.email)
    page = client.get("/operator/orders", headers=HTML)
    open_orders = [
        o
        for o in world.orders_of(demand_id)
        if o.status in ("assigned", "accepted", "escalated", "unassigned")
    ]
    assert open_orders
    first = open_orders[0]
    refused = post(client, f"/operator/orders/{first.id}/waiver", {"reason": ""}, page.text)
    assert refused.status_code == 422
    assert error_of(refused.text, "reason") == "required"
    for order in open_orders:
        response = post(
            client, f"/operator/orders/{order.id}/waiver", {"reason": "checked on paper"}, page.text
        )
        assert response.status_code == 303
    assert world.status_of(demand_id) == "listed"
    demands_page = client.get("/operator/demands?status=listed", headers=HTML)
    assert 'data-testid="group-listed"' in demands_page.text

    log_in(client, SME.email)
    page = client.get(f"/enterprise/demands/{demand_id}", headers=HTML)
    assert 'data-testid="demand-status">Listed<' in page.text
    credit = client.get("/enterprise/credit-file", headers=HTML)
    assert 'data-testid="fact-verified"' in credit.text
    assert 'data-testid="fact-self-declared"' in credit.text
    link = re.search(r'href="(/attestations/[0-9a-f-]+/verify)"', credit.text)
    assert link

    # An investor reads the listing: verified and self-declared facts, and what is not shared.
    log_in(client, PERSON.email)
    index = client.get("/investor/listings", headers=HTML)
    assert index.status_code == 200
    assert f'href="/investor/listings/{demand_id}"' in index.text
    listing = client.get(f"/investor/listings/{demand_id}", headers=HTML)
    assert listing.status_code == 200
    rated = re.search(r'data-testid="fact-agency_rating".*?</tr>', listing.text, re.S)
    assert rated
    assert f"Verified by {AGENCY.organisation}" in unescape(rated.group(0))
    named = re.search(r'data-testid="fact-name".*?</tr>', listing.text, re.S)
    assert named
    assert 'data-testid="fact-self-declared"' in named.group(0)
    assert "Ownership and key people" in listing.text.split('data-testid="hidden-categories"')[1]
    assert SME.organisation in listing.text  # identity is shared with investors

    # Anyone may check the attestation.
    client.cookies.clear()
    verdict = client.get(link.group(1), headers=HTML)
    assert verdict.status_code == 200
    assert 'data-testid="verdict-valid"' in verdict.text


def test_the_rating_page_and_its_errors_in_chinese(world: World) -> None:
    log_in(world.client, SME.email)
    demand_id = draft(world, product_form("bank_loan", today_of(world)))
    submit(world, demand_id)
    rating = next(o for o in world.orders_of(demand_id) if o.agency_type == "credit_rating")
    log_in(world.client, AGENCY.email)
    page = world.client.get(f"/agency/orders/{rating.id}", headers=ZH)
    assert "签名" in page.text
    fields = completion_fields(page.text)
    response = world.client.post(
        f"/agency/orders/{rating.id}/completion",
        data={
            **fields,
            "result.rating": "A",
            "result.outlook": "stable",
            "result.methodology": "v3",
            "signature": "bm90IGEgc2lnbmF0dXJl",
            "step": "submit",
            "csrf_token": csrf_of(page.text),
        },
        headers=ZH,
        follow_redirects=False,
    )
    assert response.status_code == 422
    assert error_of(response.text, "signature") != "not a valid Ed25519 signature of the canonical form"
    form = world.client.get("/enterprise/demands/new", headers=ZH)
    assert form.status_code == 403  # an agency has no enterprise pages


def test_an_agency_declines_and_the_order_moves_on(world: World) -> None:
    log_in(world.client, SME.email)
    demand_id = draft(world, {**product_form("bank_loan", today_of(world)), "guarantee_wanted": "true"})
    submit(world, demand_id)
    guarantee = next(o for o in world.orders_of(demand_id) if o.agency_type == "guarantee")
    log_in(world.client, GUARANTOR)
    page = world.client.get(f"/agency/orders/{guarantee.id}", headers=HTML)
    assert page.status_code == 200
    assert 'name="result.coverage_percent"' in page.text  # the form is typed by the order's agency type
    refused = post(world.client, f"/agency/orders/{guarantee.id}/decline", {"decline_reason": ""}, page.text)
    assert refused.status_code == 422
    assert error_of(refused.text, "decline_reason") == "required"
    done = post(
        world.client, f"/agency/orders/{guarantee.id}/decline", {"decline_reason": "fully booked"}, page.text
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/agency/orders?done=declined"
    # No other guarantor is admitted: the order waits for the operator, and the agency no longer sees it.
    assert [o.status for o in world.orders_of(demand_id) if o.id == guarantee.id] == ["unassigned"]
    assert world.client.get(f"/agency/orders/{guarantee.id}", headers=HTML).status_code == 404
    log_in(world.client, OPERATOR.email)
    page = world.client.get("/operator/orders", headers=HTML)
    first_row = re.search(r'<tbody>\s*<tr data-testid="order-[^"]+" data-status="([a-z_]+)"', page.text)
    assert first_row
    assert first_row.group(1) == "unassigned"  # unassigned and late orders come first


def test_the_agency_webhook_secret_is_shown_once(world: World) -> None:
    log_in(world.client, AGENCY.email)
    page = world.client.get("/agency/webhook", headers=HTML)
    assert page.status_code == 200
    assert 'data-testid="deliveries-empty"' in page.text
    bad = post(world.client, "/agency/webhook", {"url": "ftp://user:pw@example.cn"}, page.text)
    assert bad.status_code == 422
    assert error_of(bad.text, "url") == "must be an https:// (or http://) URL"
    good = post(world.client, "/agency/webhook", {"url": "https://agency.example.cn/hooks"}, page.text)
    assert good.status_code == 200
    secret = re.search(r'data-testid="webhook-secret">(whsec_[^<]+)<', good.text)
    assert secret
    again = world.client.get("/agency/webhook", headers=HTML)
    assert secret.group(1) not in again.text
    assert "https://agency.example.cn/hooks" in again.text


def test_other_roles_are_refused(world: World) -> None:
    log_in(world.client, SME.email)
    demand_id = draft(world, product_form("bank_loan", today_of(world)))
    submit(world, demand_id)
    rating = next(o for o in world.orders_of(demand_id) if o.agency_type == "credit_rating")
    refusals = {
        SME.email: [
            "/agency/orders",
            f"/agency/orders/{rating.id}",
            "/agency/webhook",
            "/investor/listings",
            "/listings",
            "/operator/orders",
            "/operator/demands",
        ],
        PERSON.email: [
            "/enterprise/demands",
            "/enterprise/demands/new",
            f"/enterprise/demands/{demand_id}",
            "/enterprise/credit-file",
            "/agency/orders",
            "/operator/orders",
        ],
        AGENCY.email: [
            "/enterprise/demands",
            f"/enterprise/demands/{demand_id}",
            "/investor/listings",
            "/operator/orders",
            f"/operator/demands/{demand_id}",
        ],
        REGULATOR_1.email: ["/enterprise/demands", "/agency/orders", "/operator/orders", "/operator/demands"],
    }
    for email, paths in refusals.items():
        log_in(world.client, email)
        for path in paths:
            response = world.client.get(path, headers=HTML)
            assert response.status_code == 403, (email, path)
            assert "Permission denied" in response.text
            assert "Demand for a bank_loan" not in response.text
    # Posts are refused too, and change nothing.
    log_in(world.client, PERSON.email)
    page = world.client.get("/investor", headers=HTML)
    assert post(world.client, f"/enterprise/demands/{demand_id}/submission", {}, page.text).status_code == 403
    assert (
        post(world.client, f"/operator/orders/{rating.id}/waiver", {"reason": "x"}, page.text).status_code
        == 403
    )
    assert [o.status for o in world.orders_of(demand_id) if o.id == rating.id] == ["assigned"]
    # Another agency learns nothing of an order that is not its own.
    log_in(world.client, GUARANTOR)
    assert world.client.get(f"/agency/orders/{rating.id}", headers=HTML).status_code == 404
    # A regulator may read listings; nothing is listed yet.
    log_in(world.client, REGULATOR_1.email)
    assert 'data-testid="listings-empty"' in world.client.get("/listings", headers=HTML).text
    assert world.client.get(f"/listings/{demand_id}", headers=HTML).status_code == 404
    # Signed out: the login page.
    world.client.cookies.clear()
    assert world.client.get("/enterprise/demands", headers=HTML, follow_redirects=False).status_code == 303
