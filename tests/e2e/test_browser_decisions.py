"""Credit decisions in a real browser, on a demo seeded as ``yunrong demo seed`` does (with its
demands: the default model is trained, the demo operator approves it as champion, and the listed
demo demand is decided). An investor opens the listed demand and sees its grade, its price or the
decline, and the reasons; the operator opens the credit models and sees the champion."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect
from tests.e2e.conftest import _serving

from yunrong import migrate
from yunrong.config import Settings
from yunrong.db import make_engine, make_sessionmaker, unit_of_work
from yunrong.demo.seed import OPERATOR, PERSON, DemoLogin, seed_demo
from yunrong.identity.model import Actor, Context
from yunrong.kit.clock import SystemClock

pytestmark = pytest.mark.browser

# Written for a person to look at; never committed.
SCREENSHOT_DECISION = Path(tempfile.gettempdir()) / "yunrong-listing-decision.png"
GRADE = re.compile(r"^(AAA|AA|A|BBB|BB|B|CCC|CC|C)$")


@pytest.fixture(scope="module")
def decisions_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A demo database seeded with its demands and its champion model, as the command line seeds it."""
    tmp = tmp_path_factory.mktemp("decisions-live")
    url = f"sqlite:///{tmp / 'live.db'}"
    migrate.upgrade(url)
    settings = Settings(
        database_url=url,
        demo=True,
        mail_dir=tmp / "mail",
        upload_dir=tmp / "uploads",
        model_dir=tmp / "models",
    )
    engine = make_engine(url)
    with unit_of_work(make_sessionmaker(engine)) as session:
        seed_demo(
            session,
            ctx=Context(actor=Actor.system("e2e"), clock=SystemClock()),
            settings=settings,
            with_demands=True,
        )
    engine.dispose()
    return {
        "YUNRONG_DATABASE_URL": url,
        "YUNRONG_DEMO": "true",
        "YUNRONG_MAIL_DIR": str(tmp / "mail"),
        "YUNRONG_UPLOAD_DIR": str(tmp / "uploads"),
        "YUNRONG_MODEL_DIR": str(tmp / "models"),
        "YUNRONG_LOG_LEVEL": "WARNING",
    }


@pytest.fixture(scope="module")
def decisions_server(decisions_env: dict[str, str]) -> Iterator[str]:
    with _serving(decisions_env) as base:
        yield base


@pytest.fixture
def new_page(browser: Any, decisions_server: str) -> Iterator[Any]:
    assert isinstance(browser, Browser)
    contexts: list[BrowserContext] = []

    def make() -> Page:
        ctx = browser.new_context(
            base_url=decisions_server, locale="en-US", viewport={"width": 1280, "height": 1100}
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


def test_a_demand_in_the_demo_gets_a_grade_price_and_reasons_in_the_browser(new_page: Any) -> None:
    investor: Page = new_page()
    log_in(investor, PERSON)
    investor.get_by_role("link", name="Listings", exact=True).first.click()
    investor.locator("a[href^='/investor/listings/']").first.click()
    expect(investor.get_by_test_id("listing-title")).to_be_visible()
    decision = investor.get_by_test_id("credit-decision")  # loaded into the page by HTMX
    expect(decision).to_be_visible()
    expect(decision.get_by_test_id("grade")).to_have_text(GRADE)
    expect(decision.get_by_test_id("pd")).to_contain_text("%")
    expect(decision.get_by_test_id("apr").or_(decision.get_by_test_id("declined"))).to_be_visible()
    expect(decision.get_by_test_id("reason").first).to_be_visible()
    expect(decision.get_by_test_id("model")).to_contain_text("yunrong-default v1")
    expect(decision.get_by_test_id("override-form")).to_have_count(0)
    decision.scroll_into_view_if_needed()
    investor.screenshot(path=str(SCREENSHOT_DECISION), full_page=True)

    operator: Page = new_page()
    log_in(operator, OPERATOR)
    operator.get_by_role("link", name="Credit models", exact=True).click()
    expect(operator).to_have_url(re.compile(r"/models$"))
    champion = operator.get_by_test_id("models").locator(
        "tr", has=operator.get_by_text("Champion", exact=True)
    )
    expect(champion).to_have_count(1)
    expect(champion).to_contain_text("yunrong-default")
    champion.get_by_role("link").click()
    expect(operator.get_by_test_id("role")).to_have_text("Champion")
    expect(operator.get_by_test_id("promotion-status")).to_have_text("Approved")
