"""Money in a real browser: a deposit made in the investor portal shows up as pending, then
available once the simulated bank confirms it (its signed callback arrives over HTTP through the
real worker), and the regulator's monitor shows it."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from yunrong.demo.seed import PERSON, REGULATOR_1, DemoLogin

pytestmark = pytest.mark.browser

# Written for a person to look at; never committed.
SCREENSHOT_MONEY = Path(tempfile.gettempdir()) / "yunrong-money.png"
SCREENSHOT_FUNDS = Path(tempfile.gettempdir()) / "yunrong-funds.png"
#: How long the bank may take to answer: an outcome waited for, not a measured duration.
BANK_ANSWERS_WITHIN_MS = 30_000


@pytest.fixture
def new_page(browser: Any, live_worker: str) -> Iterator[Any]:
    """Pages in separate browser contexts on the live server, with its worker running."""
    assert isinstance(browser, Browser)
    contexts: list[BrowserContext] = []

    def make() -> Page:
        ctx = browser.new_context(
            base_url=live_worker, locale="en-US", viewport={"width": 1280, "height": 900}
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


def amount(text: str) -> Decimal:
    """'201,000.00 CNY' → Decimal('201000.00')."""
    return Decimal(text.split()[0].replace(",", ""))


def test_a_deposit_is_pending_then_available_and_the_regulator_sees_the_inflow(new_page: Any) -> None:
    investor: Page = new_page()
    log_in(investor, PERSON)
    expect(investor).to_have_url(re.compile(r"/investor$"))
    investor.get_by_role("link", name="Money", exact=True).first.click()
    expect(investor).to_have_url(re.compile(r"/investor/money$"))
    # The demo world's own deposit may still be with the bank: the page polls until it is settled.
    expect(investor.get_by_test_id("polling")).to_have_count(0, timeout=BANK_ANSWERS_WITHIN_MS)
    before = amount(investor.get_by_test_id("available").inner_text())

    investor.fill('[name="deposit.amount"]', "1000.00")
    investor.get_by_test_id("deposit-submit").click()
    expect(investor.get_by_test_id("flash")).to_be_visible()
    newest = investor.locator('[data-testid="instructions"] tbody tr').first
    ref = newest.locator("code").first.inner_text()
    expect(newest).to_contain_text("1,000.00 CNY")
    expect(newest.get_by_test_id("instruction-status")).to_have_text("Pending at the bank")
    expect(investor.get_by_test_id("pending-in")).to_contain_text("1,000.00 CNY")

    # No reload: the HTMX poll swaps in the bank's answer.
    mine = investor.get_by_test_id(f"instruction-{ref}")
    expect(mine.get_by_test_id("instruction-status")).to_have_text(
        "Confirmed", timeout=BANK_ANSWERS_WITHIN_MS
    )
    expected = f"{before + Decimal('1000.00'):,.2f} CNY"
    expect(investor.get_by_test_id("available")).to_have_text(expected)
    expect(investor.get_by_test_id("pending-in")).to_have_text("0.00 CNY")
    expect(investor.get_by_test_id("polling")).to_have_count(0)
    investor.screenshot(path=SCREENSHOT_MONEY, full_page=True)

    regulator: Page = new_page()
    log_in(regulator, REGULATOR_1)
    regulator.get_by_role("link", name="Fund flows").first.click()
    expect(regulator).to_have_url(re.compile(r"/regulator/funds$"))
    escrow = regulator.get_by_test_id("class-escrow_cash")
    expect(escrow).to_contain_text("Escrow cash at the custodian")
    assert amount(escrow.get_by_test_id("class-balance").inner_text()) >= before + Decimal("1000.00")
    expect(regulator.get_by_test_id("flow-chart")).to_be_visible()
    expect(regulator.get_by_test_id("bar-in").last).to_be_attached()
    expect(regulator.get_by_test_id("ledger-result")).to_have_text("Every invariant holds.")
    regulator.screenshot(path=SCREENSHOT_FUNDS, full_page=True)
