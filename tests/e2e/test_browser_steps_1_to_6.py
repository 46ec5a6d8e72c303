"""Steps 1–6 of a crowd (P2P) loan in a real browser, on both databases, with the escrow balances
the pages show checked against the figures expected.

The enterprise drafts and submits its demand in the page; the rating agency accepts its order and
signs its result in the page, the operator waives the rest, and the demand is listed — and, as on
any listing, decided by the champion model and pushed to the investors it suits. The investor finds
it under "Recommended", commits in the listing's funding box and sees the money held in escrow; a
second investor fills the round through the API; the enterprise accepts the agreement in the page
and watches the custodian's payout become confirmed (the live server's worker hands it to the
simulated bank, whose signed callback comes back over HTTP). Then the investor's money page and the
regulator's fund-flows page show the escrow's balances, to the fen.

The module seeds its own demo database per backend and prepares it as the platform would be: the
enterprise's books arrive through the operator's data feed, and the default credit model (trained
on the synthetic world) is proposed by the platform and approved as champion by the operator, as
the demo seed does.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect
from tests.e2e.conftest import _seeded_env, _serving, _stop

from yunrong.config import Settings
from yunrong.db import make_engine, make_sessionmaker, unit_of_work
from yunrong.decisions import registry
from yunrong.decisions import service as decisions
from yunrong.demo.history import feed_history
from yunrong.demo.seed import (
    AGENCY,
    INSTITUTION,
    OPERATOR,
    PERSON,
    REGULATOR_1,
    SME,
    DemoLogin,
    demo_agency_private_key,
)
from yunrong.identity import repository as identity_repo
from yunrong.identity import service as identity
from yunrong.identity.model import Actor, Context
from yunrong.kit.clock import SystemClock
from yunrong.parties.risk import QUESTIONS
from yunrong.parties.tables import Enterprise
from yunrong.verification import attestations

pytestmark = pytest.mark.browser

# Written for a person to look at; never committed.
SCREENSHOT_MONEY = Path(tempfile.gettempdir()) / "yunrong-steps-1-6-money.png"
SCREENSHOT_FUNDS = Path(tempfile.gettempdir()) / "yunrong-steps-1-6-funds.png"
#: How long the bank may take to answer: an outcome waited for, not a measured duration.
BANK_ANSWERS_WITHIN_MS = 30_000
#: Generous waits for HTMX-updated parts and for a server that shares its SQLite file with the worker.
# On SQLite every transaction takes the write lock (BEGIN IMMEDIATE), so a page may wait behind the
# worker's longest transaction (its start-up backlog: the simulated agencies, the first end of day)
# up to the busy timeout of 30 s; the waits allow that. They are outcomes waited for, not timings.
SLOW_MS = 45_000
HTTP_TIMEOUT_S = 45.0  # more than the busy timeout: a request may wait all of it, then work
TITLE = "Cold store for the pear harvest (steps 1-6)"
#: The demo world's deposits (pending at the bank when seeded; the worker gets them confirmed).
PERSON_DEPOSIT = Decimal("200000.00")
INSTITUTION_DEPOSIT = Decimal("5000000.00")
AMOUNT = Decimal("100000.00")
PERSON_TICKET = Decimal("40000.00")
FEE = AMOUNT * Decimal("0.005")  # the disclosed 0.5 % platform fee (platform_fee_bp = 50)
BOLDEST = {q.key: max(q.options, key=lambda o: o.score).key for q in QUESTIONS}  # → C5
ANYTHING = {
    "currency": "CNY",
    "amount_per_loan": "10000.00",
    "total_budget": "500000.00",
    "min_term_months": 3,
    "max_term_months": 36,
    "grades": [],
    "products": [],
    "innovation": "neutral",
    "min_transparency": 0,
    "min_guarantee_coverage": "0",
}


@dataclass(frozen=True)
class World:
    base: str
    env: dict[str, str]


def _acting(session: Any, login: DemoLogin, clock: SystemClock) -> Context:
    user = identity_repo.user_by_email(session, login.email)
    assert user is not None
    org = identity_repo.organisation_by_id(session, user.organisation_id)
    assert org is not None
    return Context(actor=identity.actor_for(user, org, "e2e"), clock=clock, request_id="e2e-steps-1-6")


def _prepare(env: dict[str, str]) -> None:
    """The enterprise's books through the operator's data feed; the default model as champion."""
    settings = Settings(
        database_url=env["YUNRONG_DATABASE_URL"], demo=True, model_dir=Path(env["YUNRONG_MODEL_DIR"])
    )
    engine = make_engine(settings.database_url)
    clock = SystemClock()
    system = Context(actor=Actor.system("e2e"), clock=clock, request_id="e2e-steps-1-6")
    try:
        with unit_of_work(make_sessionmaker(engine)) as session:
            sme = _acting(session, SME, clock)
            enterprise = session.get(Enterprise, sme.actor.organisation_id)
            assert enterprise is not None
            operator = _acting(session, OPERATOR, clock)
            assert feed_history(session, ctx=operator, enterprise=enterprise, timezone=settings.timezone) > 0
            model = decisions.train_default_model(session, ctx=system, settings=settings)
            promotion = registry.propose(
                session, ctx=system, model_id=model.id, target_role="champion", reason="the default model"
            )
            registry.decide(
                session,
                ctx=operator,
                promotion_id=promotion.id,
                approve=True,
                reason="approved by the operator",
            )
    finally:
        engine.dispose()


@contextlib.contextmanager
def _worker(env: dict[str, str], base: str) -> Iterator[None]:
    """``yunrong worker`` for this server: the simulated bank's signed callbacks come back over
    HTTP, some of them twice."""
    tmp = Path(env["YUNRONG_MAIL_DIR"]).parent
    log = (tmp / "worker.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "yunrong.cli", "worker"],
        env={
            **os.environ,
            **env,
            "YUNRONG_PUBLIC_URL": base,
            "YUNRONG_SIMBANK_CALLBACK_MODE": "http",
            "YUNRONG_SIMBANK_FAILURE_RATE": "0",
            "YUNRONG_SIMBANK_DUPLICATE_RATE": "0.3",
            "YUNRONG_SIMBANK_MAX_DELAY_SECONDS": "1",
            "YUNRONG_WORKER_POLL_SECONDS": "0.2",
        },
        cwd=tmp,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield
    finally:
        _stop(worker)
        log.close()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A live server and its worker on a demo database of this module's own, per backend."""
    from tests.conftest import _create_pg_database, _drop_pg_database, _require_pg

    tmp = tmp_path_factory.mktemp(f"steps-1-6-{request.param}")
    url: str | None = None
    name: str | None = None
    if request.param == "postgresql":
        _require_pg()
        url, name = _create_pg_database()
    try:
        env = {**_seeded_env(tmp, url), "YUNRONG_MODEL_DIR": str(tmp / "models")}
        _prepare(env)
        with _serving(env) as base, _worker(env, base):
            yield World(base, env)
    finally:
        if name is not None:
            _drop_pg_database(name)


@pytest.fixture
def new_page(browser: Any, world: World) -> Iterator[Any]:
    """Pages in separate browser contexts (one per person) on this module's live server."""
    assert isinstance(browser, Browser)
    contexts: list[BrowserContext] = []

    def make() -> Page:
        ctx = browser.new_context(
            base_url=world.base, locale="en-US", viewport={"width": 1280, "height": 1000}
        )
        ctx.set_default_timeout(SLOW_MS)
        contexts.append(ctx)
        return ctx.new_page()

    yield make
    for ctx in contexts:
        ctx.close()


def log_in(page: Page, login: DemoLogin) -> None:
    page.goto("/login")
    page.fill("#email", login.email)
    page.fill("#password", login.password)
    page.click("[data-testid=login-submit]")
    expect(page.get_by_test_id("welcome")).to_be_visible()


def cny(value: Decimal) -> str:
    """Decimal('5100500.00') → '5,100,500.00 CNY', as the pages write money."""
    return f"{value:,.2f} CNY"


# --- through the live server's API -----------------------------------------------------------------------


def _token(http: httpx.Client, login: DemoLogin) -> dict[str, str]:
    response = http.post(
        "/api/v1/auth/token",
        data={"username": login.email, "password": login.password, "grant_type": "password"},
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _available(http: httpx.Client, auth: dict[str, str]) -> int:
    for account in http.get("/api/v1/me/accounts", headers=auth).json():
        if account["purpose"] == "investor_available":
            return int(account["available_minor"])
    return 0


def _wait_for_money(http: httpx.Client, auth: dict[str, str], minor: int) -> None:
    """The demo deposits are confirmed by the simulated bank through the worker: wait for it."""
    deadline = time.monotonic() + BANK_ANSWERS_WITHIN_MS / 1000
    while _available(http, auth) < minor:
        assert time.monotonic() < deadline, "the bank never confirmed the demo deposit"
        time.sleep(0.2)


def _minor(value: Decimal) -> int:
    return int(value * 100)


# --- the test ------------------------------------------------------------------------------------------


def test_a_crowd_loan_from_draft_to_paid_out_in_the_browser(new_page: Any, world: World) -> None:
    with httpx.Client(base_url=world.base, timeout=HTTP_TIMEOUT_S) as http:
        person, institution = _token(http, PERSON), _token(http, INSTITUTION)
        # The investors' money is in escrow, exactly the demo deposits.
        _wait_for_money(http, person, _minor(PERSON_DEPOSIT))
        _wait_for_money(http, institution, _minor(INSTITUTION_DEPOSIT))
        assert _available(http, person) == _minor(PERSON_DEPOSIT)
        # Both take the risk questionnaire as the boldest investors; the person states preferences
        # that take any listing (what suits is then the platform's call).
        for auth in (person, institution):
            org = http.get("/api/v1/me", headers=auth).json()["organisation"]["id"]
            level = http.post(
                f"/api/v1/investors/{org}/risk-assessment", json={"answers": BOLDEST}, headers=auth
            )
            assert level.json()["level"] == "C5", level.text
        saved = http.put("/api/v1/me/investment-preferences", json=ANYTHING, headers=person)
        assert saved.status_code == 200, saved.text

    # Step 1: the enterprise drafts and submits its demand in the page.
    sme: Page = new_page()
    log_in(sme, SME)
    sme.get_by_role("link", name="Demands", exact=True).first.click()
    sme.get_by_test_id("new-demand").click()
    sme.select_option("#f-product", "p2p_loan")
    for name, value in {
        "title": TITLE,
        "amount": f"{AMOUNT}",
        "term_months": "24",
        "max_annual_rate": "11.5",
        "project_key": f"e2e-steps-1-6-{uuid.uuid4().hex[:6]}",
        "purpose": "A second cold store so that pears keep until the supermarkets buy them",
        "use_of_funds.0.item": "Refrigeration units",
        "use_of_funds.0.amount": "70000.00",
        "use_of_funds.1.item": "Insulated panels",
        "use_of_funds.1.amount": "30000.00",
        "innovation.rd_spend": "380000.00",
    }.items():
        sme.fill(f'[name="{name}"]', value)
    sme.select_option('[name="repayment_method"]', "equal_instalment")
    sme.get_by_test_id("demand-submit").click()
    expect(sme.get_by_test_id("flash")).to_contain_text("The draft is saved")
    expect(sme.get_by_test_id("demand-status")).to_have_text("Draft")
    sme.get_by_test_id("submit-demand").click()
    expect(sme.get_by_test_id("demand-status")).to_have_text("Under verification")
    demand_url = sme.url.split("?")[0]
    demand_id = demand_url.rstrip("/").split("/")[-1]

    # Step 2: the platform ordered the services; the rating agency accepts and signs its result.
    rows = sme.locator('[data-testid="orders"] tbody tr')
    expect(rows.first).to_be_visible()
    rating_row = sme.locator('[data-testid="orders"] tbody tr[data-agency-type="credit_rating"]')
    expect(rating_row).to_have_count(1)
    rating_ref = rating_row.locator("code").first.inner_text()
    other_refs = [r.locator("code").first.inner_text() for r in rows.all()]
    other_refs.remove(rating_ref)

    agency: Page = new_page()
    log_in(agency, AGENCY)
    agency.get_by_role("link", name="Service orders", exact=True).first.click()
    agency.get_by_test_id(f"order-{rating_ref}").get_by_test_id("order-link").click()
    agency.get_by_test_id("accept-order").click()
    expect(agency.get_by_test_id("order-status")).to_have_text("Accepted")
    agency.select_option('[name="result.rating"]', "A")
    agency.select_option('[name="result.outlook"]', "stable")
    agency.fill('[name="result.methodology"]', "SME scorecard v3")
    agency.get_by_test_id("prepare-signature").click()
    canonical = agency.get_by_test_id("canonical").input_value()
    assert f'"order_ref":"{rating_ref}"' in canonical
    settings = Settings(database_url=world.env["YUNRONG_DATABASE_URL"], demo=True)
    key = demo_agency_private_key(settings, AGENCY.organisation)  # the agency's own, never the platform's
    agency.fill('[name="signature"]', attestations.sign(key, canonical))
    agency.get_by_test_id("submit-result").click()
    expect(agency.get_by_test_id("order-status")).to_have_text("Completed")

    # The operator waives what is left; step 3: the demand is listed (and decided, and pushed).
    operator: Page = new_page()
    log_in(operator, OPERATOR)
    operator.get_by_role("link", name="Service orders", exact=True).first.click()
    for ref in other_refs:
        row = operator.get_by_test_id(f"order-{ref}")
        if row.get_by_test_id("waive").count() == 0:
            continue
        row.get_by_test_id("reason").fill("checked on paper by the operator")
        row.get_by_test_id("waive").click()
        expect(operator.get_by_test_id(f"order-{ref}").get_by_test_id("order-status")).to_have_text("Waived")
    sme.goto(demand_url)
    expect(sme.get_by_test_id("demand-status")).to_have_text("Listed")

    # Step 4: the investor finds it recommended, with the reasons.
    investor: Page = new_page()
    log_in(investor, PERSON)
    nav = investor.get_by_role("navigation", name="Main navigation")
    nav.get_by_role("link", name="Recommended", exact=True).click()
    expect(investor).to_have_url(re.compile(r"/investor/recommendations$"))
    card = investor.get_by_test_id("recommendation").filter(has_text=TITLE)
    expect(card).to_have_count(1)
    expect(card.locator('[data-reason="suitable"]')).to_be_visible()
    expect(card.get_by_test_id("grade")).not_to_be_empty()

    # Step 5: it commits in the listing's funding box; the money is held in escrow.
    card.get_by_test_id("recommendation-link").click()
    expect(investor.get_by_test_id("listing-title")).to_have_text(TITLE)
    box = investor.get_by_test_id("funding-box")
    expect(box.get_by_test_id("round-status")).to_have_text("Open for commitments")
    expect(box.get_by_test_id("funding-remaining")).to_have_text(cny(AMOUNT))
    expect(box.get_by_test_id("available-balance")).to_contain_text(cny(PERSON_DEPOSIT))
    box.get_by_test_id("commit-amount").fill(f"{PERSON_TICKET}")
    box.get_by_test_id("accept-agreement").check()
    box.get_by_test_id("commit-submit").click()
    expect(investor).to_have_url(re.compile(r"/investor/commitments\?done=committed"))
    row = investor.get_by_test_id("commitment").filter(has_text=TITLE)
    expect(row.get_by_test_id("commitment-amount")).to_have_text(cny(PERSON_TICKET))
    expect(row.get_by_test_id("commitment-status")).to_have_text("Held in escrow")
    expect(investor.get_by_test_id("cash-available")).to_have_text(cny(PERSON_DEPOSIT - PERSON_TICKET))
    expect(investor.get_by_test_id("cash-held")).to_contain_text(cny(PERSON_TICKET))

    # A second investor fills the round through the API: the round funds, the loan is booked.
    with httpx.Client(base_url=world.base, timeout=HTTP_TIMEOUT_S) as http:
        committed = http.post(
            "/api/v1/commitments",
            json={"demand_id": demand_id, "amount": f"{AMOUNT - PERSON_TICKET}", "accept_agreement": True},
            headers={**_token(http, INSTITUTION), "Idempotency-Key": uuid.uuid4().hex},
        )
        assert committed.status_code == 201, committed.text
        assert committed.json()["status"] == "posted"
        funding = http.get(f"/api/v1/demands/{demand_id}/funding", headers=_token(http, SME)).json()
        assert funding["status"] == "funded", funding
        loan_id = funding["loan_id"]

    # Step 6: the enterprise accepts the agreement (the hash shown is the PDF's) and sees the payout.
    sme.get_by_role("link", name="Loans", exact=True).first.click()
    expect(sme).to_have_url(re.compile(r"/enterprise/loans$"))
    sme.locator(f'[data-testid="loans"] a[href="/enterprise/loans/{loan_id}"]').click()
    expect(sme.get_by_test_id("principal")).to_have_text(cny(AMOUNT))
    expect(sme.get_by_test_id("loan-status-head")).to_have_text("Awaiting the agreement")
    shown = sme.get_by_test_id("agreement-sha256").inner_text().strip()
    pdf = sme.request.get(sme.get_by_test_id("agreement-link").get_attribute("href") or "")
    assert pdf.ok
    assert hashlib.sha256(pdf.body()).hexdigest() == shown
    sme.get_by_test_id("read-checkbox").check()
    sme.get_by_test_id("accept-agreement").click()
    expect(sme.get_by_test_id("flash")).to_contain_text("You accepted the agreement.")
    # No reload: the HTMX poll swaps in the bank's answer.
    expect(sme.get_by_test_id("payout-status")).to_have_text("Confirmed", timeout=BANK_ANSWERS_WITHIN_MS)
    expect(sme.get_by_test_id("loan-status")).to_have_text("Active")
    expect(sme.get_by_test_id("payout-amount")).to_have_text(cny(AMOUNT - FEE))

    # The investor's money: what was not lent is available; nothing held or pending.
    nav.get_by_role("link", name="Money", exact=True).click()
    expect(investor).to_have_url(re.compile(r"/investor/money$"))
    expect(investor.get_by_test_id("polling")).to_have_count(0, timeout=BANK_ANSWERS_WITHIN_MS)
    expect(investor.get_by_test_id("available")).to_have_text(cny(PERSON_DEPOSIT - PERSON_TICKET))
    expect(investor.get_by_test_id("held")).to_have_text(cny(Decimal(0)))
    expect(investor.get_by_test_id("pending-in")).to_have_text(cny(Decimal(0)))
    investor.screenshot(path=SCREENSHOT_MONEY, full_page=True)

    # The regulator's fund flows: every class of the escrow, to the fen.
    regulator: Page = new_page()
    log_in(regulator, REGULATOR_1)
    regulator.get_by_role("link", name="Fund flows").first.click()
    expect(regulator).to_have_url(re.compile(r"/regulator/funds$"))
    deposits = PERSON_DEPOSIT + INSTITUTION_DEPOSIT
    expected = {
        "escrow_cash": deposits - (AMOUNT - FEE),  # only the payout left the custodian
        "investor_available": deposits - AMOUNT,
        "enterprise_payout": Decimal(0),
        "platform_fee_income": FEE,
        "loan_book": AMOUNT,
        "investor_claims": AMOUNT,
    }
    for purpose, figure in expected.items():
        balance = regulator.get_by_test_id(f"class-{purpose}").get_by_test_id("class-balance")
        expect(balance).to_have_text(cny(figure))
    expect(regulator.get_by_test_id("ledger-result")).to_have_text("Every invariant holds.")
    regulator.screenshot(path=SCREENSHOT_FUNDS, full_page=True)
