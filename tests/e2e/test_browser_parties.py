"""The admittance review in a real browser: every kind of party registers through its form, two
regulators approve it, the applicant sees the approval; plus a rejection and a request for
information answered with an uploaded PDF."""

from __future__ import annotations

import base64
import random
import re
import tempfile
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from playwright.sync_api import Browser, BrowserContext, Page, expect

from yunrong.demo.seed import DEMO_PASSWORD, REGULATOR_1, REGULATOR_2
from yunrong.parties import codes
from yunrong.parties.risk import QUESTIONS

pytestmark = pytest.mark.browser

USCC_BODY = "0123456789ABCDEFGHJKLMNPQRTUWXY"
PASSWORD = "a-long-enough-password-2026"
# Written for a person to look at; never committed.
SCREENSHOT_CASE = Path(tempfile.gettempdir()) / "yunrong-case.png"
SCREENSHOT_ERRORS = Path(tempfile.gettempdir()) / "yunrong-register-errors.png"


@pytest.fixture
def new_page(browser: Any, live_server: str) -> Iterator[Any]:
    """Pages in separate browser contexts: one per person, so that their sessions never mix."""
    assert isinstance(browser, Browser)
    contexts: list[BrowserContext] = []

    def make() -> Page:
        ctx = browser.new_context(
            base_url=live_server, locale="en-US", viewport={"width": 1280, "height": 900}
        )
        contexts.append(ctx)
        return ctx.new_page()

    yield make
    for ctx in contexts:
        ctx.close()


def tag() -> str:
    return f"{random.randrange(16**8):08x}"


def new_uscc() -> str:
    return codes.make_uscc("91320102" + "".join(random.choices(USCC_BODY, k=9)))


def new_resident_id() -> str:
    born = date(1965, 1, 1) + timedelta(days=random.randrange(0, 365 * 35))
    return codes.make_resident_id(f"320102{born:%Y%m%d}{random.randrange(1000):03d}")


def field(page: Page, name: str) -> Any:
    return page.locator(f'[name="{name}"]')


def fill(page: Page, values: dict[str, str]) -> None:
    for name, value in values.items():
        field(page, name).fill(value)


def applicant(page: Page, email: str) -> None:
    fill(
        page, {"applicant.name": "Applicant 申请人", "applicant.email": email, "applicant.password": PASSWORD}
    )


def submitted_ref(page: Page) -> str:
    expect(page.get_by_test_id("registered")).to_be_visible()
    return page.get_by_test_id("qualification-ref").inner_text()


def log_in(page: Page, email: str, password: str = DEMO_PASSWORD) -> None:
    page.goto("/login")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("[data-testid=login-submit]")


def open_case(page: Page, ref: str) -> None:
    page.goto("/regulator/queue")
    page.get_by_role("link", name=ref).click()
    expect(page.locator("h1")).to_be_visible()


def decide(page: Page, decision: str, reason: str) -> None:
    page.get_by_test_id(f"decision-{decision}").check()
    page.fill('[name="reason"]', reason)
    page.get_by_test_id("decision-submit").click()


def two_regulators_approve(new_page: Any, ref: str) -> None:
    first = new_page()
    log_in(first, REGULATOR_1.email)
    open_case(first, ref)
    decide(first, "approve", "documents complete")
    expect(first.get_by_test_id("status")).to_have_text("Awaiting second approval")
    expect(first.get_by_test_id("first-approval-note")).to_be_visible()
    second = new_page()
    log_in(second, REGULATOR_2.email)
    open_case(second, ref)
    decide(second, "approve", "second review agreed")
    expect(second.get_by_test_id("status")).to_have_text("Approved")


def applicant_sees(new_page: Any, email: str, status: str) -> Page:
    page = new_page()
    log_in(page, email, PASSWORD)
    page.goto("/qualification")
    expect(page.get_by_test_id("status")).to_have_text(status)
    return page


# --- registration forms ----------------------------------------------------------------------------


def register_enterprise(page: Page, email: str, *, credit_code: str | None = None) -> None:
    page.goto("/login")
    page.get_by_test_id("register-link").click()
    page.get_by_test_id("register-enterprise").click()
    t = tag()
    fill(
        page,
        {
            "enterprise.name": f"Changzhou Browser Works {t}",
            "enterprise.credit_code": credit_code or new_uscc(),
            "enterprise.legal_representative": "Liu Yang 刘洋",
            "enterprise.founded_on": "2018-05-02",
            "enterprise.industry_code": "C3911",
            "enterprise.region_code": "320102",
            "enterprise.employees": "42",
            "enterprise.registered_capital": "3000000",
            "enterprise.annual_revenue": "18000000.00",
            "enterprise.total_assets": "9000000.00",
            "enterprise.contact.name": "Liu Yang 刘洋",
            "enterprise.contact.phone": "+86 25 8888 0101",
            "enterprise.contact.email": f"contact-{t}@example.cn",
            "bank_account.bank_name": "Bank of Jiangsu",
            "bank_account.account_name": f"Changzhou Browser Works {t}",
            "bank_account.account_number": "32100188000099998888",
        },
    )
    applicant(page, email)
    page.get_by_test_id("register-submit").click()


def test_enterprise_registers_and_two_regulators_admit_it(new_page: Any) -> None:
    page = new_page()
    email = f"owner-{tag()}@example.cn"
    register_enterprise(page, email)
    ref = submitted_ref(page)
    two_regulators_approve(new_page, ref)
    mine = applicant_sees(new_page, email, "Approved")
    mine.goto("/inbox")
    expect(mine.get_by_test_id("message").first).to_contain_text("approved")


def test_individual_investor_registers_and_is_admitted(new_page: Any) -> None:
    page = new_page()
    page.goto("/register")
    page.get_by_test_id("register-person").click()
    email = f"person-{tag()}@example.cn"
    fill(
        page,
        {
            "investor.name": "Guo Jing 郭靖",
            "investor.resident_id": new_resident_id(),
            "investor.contact_phone": "13800000000",
            "investor.net_worth": "2000000",
            "investor.annual_income": "400000",
        },
    )
    page.locator('[name="investor.funds_sources"][value="salary"]').check()
    for question in QUESTIONS:
        page.locator(f'[name="risk_answers.{question.key}"][value="{question.options[2].key}"]').check()
    applicant(page, email)
    page.get_by_test_id("register-submit").click()
    ref = submitted_ref(page)
    two_regulators_approve(new_page, ref)
    applicant_sees(new_page, email, "Approved")


def test_institutional_investor_registers_and_is_admitted(new_page: Any) -> None:
    page = new_page()
    page.goto("/register")
    page.get_by_test_id("register-institution").click()
    email = f"fund-{tag()}@example.cn"
    fill(
        page,
        {
            "investor.name": f"Suzhou Browser Fund {tag()}",
            "investor.credit_code": new_uscc(),
            "investor.contact_phone": "+86 512 6666 0000",
            "investor.net_worth": "500000000",
            "investor.annual_income": "80000000",
        },
    )
    page.select_option('[name="investor.institution_type"]', "fund")
    page.locator('[name="investor.funds_sources"][value="own_capital"]').check()
    applicant(page, email)
    page.get_by_test_id("register-submit").click()
    ref = submitted_ref(page)
    two_regulators_approve(new_page, ref)
    applicant_sees(new_page, email, "Approved")


def test_agency_registers_with_its_signing_key_and_is_admitted(new_page: Any) -> None:
    public = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    page = new_page()
    page.goto("/register")
    page.get_by_test_id("register-agency").click()
    email = f"agency-{tag()}@example.cn"
    fill(
        page,
        {
            "agency.name": f"Nanjing Browser Rating {tag()}",
            "agency.credit_code": new_uscc(),
            "agency.licence_number": f"LIC-{tag()}",
            "agency.region_code": "320102",
            "agency.public_key": base64.b64encode(public).decode(),
            "agency.services.0.service": "credit_rating_basic",
            "agency.services.0.fee": "800.00",
            "agency.services.0.sla_hours": "48",
        },
    )
    page.locator('[name="agency.types"][value="credit_rating"]').check()
    page.select_option('[name="agency.services.0.agency_type"]', "credit_rating")
    applicant(page, email)
    page.get_by_test_id("register-submit").click()
    ref = submitted_ref(page)
    two_regulators_approve(new_page, ref)
    applicant_sees(new_page, email, "Approved")


def test_errors_are_shown_beside_the_fields(new_page: Any) -> None:
    page = new_page()
    good = new_uscc()
    register_enterprise(page, REGULATOR_1.email, credit_code=good[:-1] + ("0" if good[-1] != "0" else "1"))
    expect(page.get_by_test_id("error-enterprise.credit_code")).to_contain_text("check character should be")
    expect(page.get_by_test_id("error-applicant.email")).to_contain_text("already exists")
    page.screenshot(path=str(SCREENSHOT_ERRORS), full_page=True)


def test_rejected_registration(new_page: Any) -> None:
    page = new_page()
    email = f"owner-{tag()}@example.cn"
    register_enterprise(page, email)
    ref = submitted_ref(page)
    regulator = new_page()
    log_in(regulator, REGULATOR_2.email)
    open_case(regulator, ref)
    decide(regulator, "reject", "the business licence does not match the register")
    expect(regulator.get_by_test_id("status")).to_have_text("Rejected")
    mine = applicant_sees(new_page, email, "Rejected")
    expect(mine.get_by_test_id("last-reason")).to_have_text(
        "the business licence does not match the register"
    )


def test_request_information_answered_with_a_pdf(new_page: Any, tmp_path: Path) -> None:
    page = new_page()
    email = f"owner-{tag()}@example.cn"
    register_enterprise(page, email)
    ref = submitted_ref(page)
    regulator = new_page()
    log_in(regulator, REGULATOR_1.email)
    open_case(regulator, ref)
    decide(regulator, "request_info", "Please upload the 2025 financial statements.")
    expect(regulator.get_by_test_id("status")).to_have_text("Information requested")

    mine = applicant_sees(new_page, email, "Information requested")
    statement = tmp_path / "statements-2025.pdf"
    statement.write_bytes(b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n")
    mine.fill('[name="message"]', "The 2025 statements are attached.")
    mine.set_input_files('[name="file"]', str(statement))
    mine.get_by_test_id("respond-submit").click()
    expect(mine.get_by_test_id("flash")).to_be_visible()
    expect(mine.get_by_test_id("status")).to_have_text("Pending review")

    open_case(regulator, ref)
    expect(regulator.get_by_test_id("documents")).to_contain_text("statements-2025.pdf")
    expect(regulator.get_by_test_id("history")).to_contain_text("The 2025 statements are attached.")
    with regulator.expect_download() as download:
        regulator.get_by_test_id("document-link").first.click()
    assert re.search(r"\.pdf$", download.value.suggested_filename)
    regulator.screenshot(path=str(SCREENSHOT_CASE), full_page=True)
