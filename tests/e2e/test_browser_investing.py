"""Steps 4–5 in a real browser, on both databases: an investor logs in, states its preferences, sees
a listing recommended with the reasons why, opens it, commits money through the listing's funding
box, and finds the commitment held in escrow on its commitments page with its available balance
down by the amount.

The served demo lists no crowd-funded demand and its deposits wait for the bank, so this module
seeds its own demo database, lets the simulated bank confirm the investors' deposits in-process
(a frozen clock moves; nothing sleeps), and lists one P2P demand of the demo SME with a priced
credit decision written directly, as the integration tests' ``list_demand`` does (the agencies and
the credit engine have browser tests of their own)."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect
from sqlalchemy import select
from tests.e2e.conftest import READY_ATTEMPTS, _free_port, _healthy, _seeded_env, _stop

from yunrong.config import Settings
from yunrong.db import make_engine, make_sessionmaker, unit_of_work
from yunrong.decisions.tables import CreditDecision, ModelVersion
from yunrong.demands import service as demands
from yunrong.demands.schemas import DemandIn
from yunrong.demo.seed import PERSON, SME, DemoLogin
from yunrong.identity import repository as identity_repo
from yunrong.identity import service as identity
from yunrong.identity.model import Actor, Context
from yunrong.investing import service as investing
from yunrong.kit.clock import FrozenClock
from yunrong.messaging.worker import deliver_due

pytestmark = pytest.mark.browser

# Written for a person to look at; never committed.
SCREENSHOT_RECOMMENDED = Path(tempfile.gettempdir()) / "yunrong-recommended.png"
SCREENSHOT_FUNDING = Path(tempfile.gettempdir()) / "yunrong-funding-box.png"
SCREENSHOT_COMMITMENTS = Path(tempfile.gettempdir()) / "yunrong-commitments.png"
TITLE = "Cold-chain storage for the Dantu orchards"

#: The live server; the investor pages' router is included if the app does not include it yet.
LAUNCH = """
import sys
import uvicorn
from yunrong.asgi import app
from yunrong.web import investor_pages
if not any(getattr(r, "path", "") == "/investor/recommendations" for r in app.routes):
    app.include_router(investor_pages.router)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def _prepare(env: dict[str, str]) -> None:
    """Confirm the demo deposits and list a priced P2P demand of the demo SME."""
    settings = Settings(
        database_url=env["YUNRONG_DATABASE_URL"],
        demo=True,
        mail_dir=Path(env["YUNRONG_MAIL_DIR"]),
        upload_dir=Path(env["YUNRONG_UPLOAD_DIR"]),
        simbank_callback_mode="direct",
        simbank_failure_rate=0.0,
        simbank_duplicate_rate=0.0,
    )
    engine = make_engine(settings.database_url)
    factory = make_sessionmaker(engine)
    clock = FrozenClock(datetime.now(UTC).replace(microsecond=0))
    quiet = 0
    for _ in range(40):  # the bank answers within its simulated delay: move the clock past it
        clock.advance(timedelta(seconds=15))
        done = deliver_due(factory, settings=settings, clock=clock, worker_id="e2e-setup")
        quiet = quiet + 1 if done == 0 else 0
        if quiet == 2:
            break
    with unit_of_work(factory) as session:
        user = identity_repo.user_by_email(session, SME.email)
        assert user is not None
        org = identity_repo.organisation_by_id(session, user.organisation_id)
        assert org is not None
        sme = Context(actor=identity.actor_for(user, org, "e2e"), clock=clock, request_id="e2e")
        demand = demands.create_demand(
            session,
            ctx=sme,
            settings=settings,
            data=DemandIn.model_validate(
                {
                    "product": "p2p_loan",
                    "title": TITLE,
                    "amount": "100000.00",
                    "currency": "CNY",
                    "term_months": 12,
                    "repayment_method": "equal_instalment",
                    "max_annual_rate": "9.5000",
                    "purpose": "A second cold store for the pear harvest",
                    "use_of_funds": [{"item": "Refrigeration units", "amount": "100000.00"}],
                    "project_key": "e2e-cold-store",
                }
            ),
        )
        now = clock.now()
        demand.status = "listed"
        demand.listed_at = now
        model = ModelVersion(
            name="e2e",
            version=1,
            role="champion",
            artifact_path="-",
            artifact_sha256="0" * 64,
            card={},
            reference_scores={},
            registered_by="e2e",
            registered_at=now,
        )
        session.add(model)
        session.flush()
        session.add(
            CreditDecision(
                demand_id=demand.id,
                model_id=model.id,
                as_of=now,
                features={},
                pd=0.03,
                score=600.0,
                grade="BBB",
                declined=False,
                annual_rate=Decimal("0.085"),
                limit_minor=demand.amount_minor,
                price={},
                reasons=[],
                decided_at=now,
            )
        )
        session.flush()
        system = Context(actor=Actor.system("e2e"), clock=clock, request_id="e2e")
        assert investing.open_round(session, ctx=system, demand=demand, settings=settings) is not None
        assert session.scalar(select(CreditDecision.id).where(CreditDecision.demand_id == demand.id))
    engine.dispose()


@contextlib.contextmanager
def _serving(env: dict[str, str]) -> Iterator[str]:
    tmp = Path(env["YUNRONG_MAIL_DIR"]).parent
    port = _free_port()
    log = (tmp / "server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-c", LAUNCH, str(port)],
        env={**os.environ, **env},
        cwd=tmp,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(READY_ATTEMPTS):
            if server.poll() is not None or _healthy(base):
                break
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.wait(timeout=0.1)
        if not _healthy(base):
            log.flush()
            pytest.fail(f"the live server did not start:\n{(tmp / 'server.log').read_text()[-3000:]}")
        yield base
    finally:
        _stop(server)
        log.close()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def investing_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A live server on a demo database of this module's own, with money and a P2P listing."""
    from tests.conftest import _create_pg_database, _drop_pg_database, _require_pg

    tmp = tmp_path_factory.mktemp(f"invest-{request.param}")
    if request.param == "sqlite":
        env = _seeded_env(tmp)
        _prepare(env)
        with _serving(env) as base:
            yield base
        return
    _require_pg()
    url, name = _create_pg_database()
    try:
        env = _seeded_env(tmp, url)
        _prepare(env)
        with _serving(env) as base:
            yield base
    finally:
        _drop_pg_database(name)


@pytest.fixture
def new_page(browser: Any, investing_server: str) -> Iterator[Any]:
    assert isinstance(browser, Browser)
    contexts: list[BrowserContext] = []

    def make() -> Page:
        ctx = browser.new_context(
            base_url=investing_server, locale="en-US", viewport={"width": 1280, "height": 900}
        )
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


def amount(text: str) -> Decimal:
    """'200,000.00 CNY' → Decimal('200000.00')."""
    return Decimal(text.split()[0].replace(",", ""))


def test_an_investor_sets_preferences_sees_a_recommendation_and_commits_through_the_listing(
    new_page: Any,
) -> None:
    investor: Page = new_page()
    log_in(investor, PERSON)

    nav = investor.get_by_role("navigation", name="Main navigation")
    nav.get_by_role("link", name="Preferences", exact=True).click()
    expect(investor).to_have_url(re.compile(r"/investor/preferences$"))
    expect(investor.get_by_test_id("no-preferences")).to_be_visible()
    investor.fill("#f-amount-per-loan", "5000.00")
    investor.fill("#f-total-budget", "50000.00")
    investor.fill("#f-min-term-months", "6")
    investor.fill("#f-max-term-months", "24")
    investor.get_by_test_id("preferences-submit").click()
    expect(investor.get_by_test_id("flash")).to_be_visible()
    expect(investor.get_by_test_id("no-preferences")).to_have_count(0)

    nav.get_by_role("link", name="Recommended", exact=True).click()
    expect(investor).to_have_url(re.compile(r"/investor/recommendations$"))
    card = investor.get_by_test_id("recommendation").filter(has_text=TITLE)
    expect(card).to_have_count(1)
    expect(card.get_by_test_id("grade")).to_have_text("BBB")
    expect(card.get_by_test_id("product-risk")).to_have_text("R2")
    expect(card.locator('[data-reason="grade"]')).to_be_visible()
    expect(card.locator('[data-reason="suitable"]')).to_contain_text("R2 is within your")
    investor.screenshot(path=str(SCREENSHOT_RECOMMENDED), full_page=True)

    card.get_by_test_id("recommendation-link").click()
    expect(investor.get_by_test_id("listing-title")).to_have_text(TITLE)
    box = investor.get_by_test_id("funding-box")
    expect(box.get_by_test_id("round-status")).to_have_text("Open for commitments")
    expect(box.get_by_test_id("funding-remaining")).to_have_text("100,000.00 CNY")
    before = amount(box.get_by_test_id("available-balance").inner_text())
    assert before >= Decimal("5000.00")

    # Refused beside the amount, in words, when the agreement is not accepted; nothing is held.
    box.get_by_test_id("commit-amount").fill("5000.00")
    box.get_by_test_id("commit-submit").click()
    refusal = investor.get_by_test_id("error-amount")
    expect(refusal).to_have_text("Read and accept the loan agreement form first.")
    expect(refusal).to_have_attribute("data-rule", "agreement-not-accepted")
    box = investor.get_by_test_id("funding-box")
    expect(box.get_by_test_id("commit-amount")).to_have_value("5000.00")
    box.get_by_test_id("accept-agreement").check()
    investor.screenshot(path=str(SCREENSHOT_FUNDING), full_page=True)
    box.get_by_test_id("commit-submit").click()

    expect(investor).to_have_url(re.compile(r"/investor/commitments\?done=committed"))
    expect(investor.get_by_test_id("flash")).to_be_visible()
    row = investor.get_by_test_id("commitment")
    expect(row).to_have_count(1)
    expect(row.get_by_test_id("commitment-amount")).to_have_text("5,000.00 CNY")
    expect(row.get_by_test_id("commitment-status")).to_have_text("Held in escrow")
    expect(row).to_contain_text(TITLE)
    after = amount(investor.get_by_test_id("cash-available").inner_text())
    assert after == before - Decimal("5000.00")
    expect(investor.get_by_test_id("cash-held")).to_contain_text("5,000.00 CNY")
    investor.screenshot(path=str(SCREENSHOT_COMMITMENTS), full_page=True)

    row.get_by_role("link", name=TITLE).click()
    box = investor.get_by_test_id("funding-box")
    expect(box.get_by_test_id("funding-remaining")).to_have_text("95,000.00 CNY")
    expect(box.get_by_test_id("available-balance")).to_contain_text(f"{after:,.2f} CNY")
