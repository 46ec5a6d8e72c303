"""Each demo role in a real browser: logs in, sees its own dashboard, is refused the others."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from yunrong.demo.seed import DEMO_LOGINS, DemoLogin
from yunrong.identity.model import PORTAL_BY_ORG_TYPE, Portal

pytestmark = pytest.mark.browser

# Written for a person to look at; never committed.
SCREENSHOT = Path(tempfile.gettempdir()) / "yunrong-dashboard.png"
SCREENSHOT_ZH = Path(tempfile.gettempdir()) / "yunrong-dashboard-zh.png"


@pytest.fixture
def context(browser: Any, live_server: str) -> Iterator[BrowserContext]:
    assert isinstance(browser, Browser)
    ctx = browser.new_context(base_url=live_server, locale="en-US", viewport={"width": 1280, "height": 860})
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def log_in(page: Page, login: DemoLogin) -> None:
    page.goto("/login")
    page.fill("#email", login.email)
    page.fill("#password", login.password)
    page.click("[data-testid=login-submit]")


def another_portal(own: Portal) -> Portal:
    others = [p for p in Portal if p is not own]
    return others[(list(Portal).index(own)) % len(others)]


@pytest.mark.parametrize("login", DEMO_LOGINS, ids=lambda d: d.email.split("@")[0])
def test_demo_login_sees_own_dashboard_and_is_refused_another(page: Page, login: DemoLogin) -> None:
    own = PORTAL_BY_ORG_TYPE[login.org_type]
    log_in(page, login)
    expect(page).to_have_url(re.compile(rf"/{own.value}$"))
    expect(page.get_by_test_id("welcome")).to_contain_text(login.name)
    expect(page.get_by_test_id("org-name")).to_have_text(login.organisation)
    if own is Portal.REGULATOR:
        expect(page.get_by_test_id("chain-result")).to_contain_text("Chain intact")  # loaded by HTMX

    other = another_portal(own)
    response = page.goto(f"/{other.value}")
    assert response is not None
    assert response.status == 403
    expect(page.get_by_test_id("error")).to_contain_text("Permission denied")


def test_dashboard_screenshot(page: Page) -> None:
    operator = next(d for d in DEMO_LOGINS if d.email.startswith("operator"))
    log_in(page, operator)
    expect(page.get_by_test_id("welcome")).to_be_visible()
    page.get_by_role("button", name="Verify the audit chain").click()
    expect(page.get_by_test_id("chain-result")).to_contain_text("Chain intact")  # HTMX with the CSRF header
    page.screenshot(path=SCREENSHOT, full_page=True)


def test_regulator_audit_log_and_verify_button(page: Page) -> None:
    regulator = next(d for d in DEMO_LOGINS if d.email.startswith("regulator1"))
    log_in(page, regulator)
    page.click("text=Audit log")
    expect(page).to_have_url(re.compile(r"/regulator/audit$"))
    expect(page.get_by_test_id("audit-table")).to_contain_text("user.login")
    page.get_by_test_id("verify-chain").click()
    expect(page.get_by_test_id("chain-result")).to_contain_text("records checked")


def test_chinese_browser_gets_chinese_pages_and_can_switch(browser: Any, live_server: str) -> None:
    assert isinstance(browser, Browser)
    ctx = browser.new_context(base_url=live_server, locale="zh-CN")
    try:
        page = ctx.new_page()
        page.goto("/login")
        expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
        expect(page.get_by_test_id("login-submit")).to_have_text("登录")
        page.get_by_test_id("lang-switch").get_by_role("link").click()
        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(page).to_have_url(re.compile(r"/login$"))
        expect(page.get_by_test_id("login-submit")).to_have_text("Log in")
        page.get_by_test_id("lang-switch").get_by_role("link").click()
        expect(page.locator("html")).to_have_attribute("lang", "zh-CN")

        sme = next(d for d in DEMO_LOGINS if d.email.startswith("sme"))
        log_in(page, sme)
        expect(page.get_by_test_id("welcome")).to_contain_text("欢迎")
        expect(page.get_by_role("heading", name="融资需求")).to_be_visible()
        page.screenshot(path=SCREENSHOT_ZH, full_page=True)
        page.goto("/investor")
        expect(page.get_by_test_id("error")).to_contain_text("无权访问")
    finally:
        ctx.close()


def test_wrong_password_is_shown_on_the_form(page: Page) -> None:
    page.goto("/login")
    page.fill("#email", "bank@demo.yunrong.cn")
    page.fill("#password", "definitely-wrong")
    page.click("[data-testid=login-submit]")
    expect(page.get_by_test_id("form-error")).to_contain_text("wrong e-mail or password")
    expect(page.locator("#email")).to_have_value("bank@demo.yunrong.cn")


def test_logout(page: Page) -> None:
    investor = next(d for d in DEMO_LOGINS if d.email.startswith("investor"))
    log_in(page, investor)
    expect(page).to_have_url(re.compile(r"/investor$"))
    page.get_by_test_id("logout").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto("/investor")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Finvestor$"))
