"""Steps 1–3 in a real browser: the SME files its profile, shares it with investors, drafts a demand
(the form shows only the chosen product's fieldset) and submits it; the rating agency accepts its
order and returns a result signed with its own key over the text the page shows (the test signs it,
as the agency's own system would); the operator waives the rest; the SME sees the demand listed; an
investor opens the listing and sees which facts are verified and which self-declared."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from yunrong.config import Settings
from yunrong.demo.seed import AGENCY, OPERATOR, PERSON, SME, DemoLogin, demo_agency_private_key
from yunrong.parties.codes import make_uscc
from yunrong.verification import attestations

pytestmark = pytest.mark.browser

# Written for a person to look at; never committed.
SCREENSHOT_FORM = Path(tempfile.gettempdir()) / "yunrong-demand-form.png"
SCREENSHOT_ORDER = Path(tempfile.gettempdir()) / "yunrong-agency-order.png"
SCREENSHOT_LISTING = Path(tempfile.gettempdir()) / "yunrong-listing.png"
SCREENSHOT_OPERATOR = Path(tempfile.gettempdir()) / "yunrong-operator-orders.png"


@pytest.fixture
def new_page(browser: Any, backend_live_server: str) -> Iterator[Any]:
    """Pages in separate browser contexts (one per person) on this module's own live server."""
    assert isinstance(browser, Browser)
    contexts: list[BrowserContext] = []

    def make() -> Page:
        ctx = browser.new_context(
            base_url=backend_live_server, locale="en-US", viewport={"width": 1280, "height": 900}
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


def share_with_investors(page: Page, category: str) -> None:
    page.goto("/enterprise/consents")
    page.select_option('[name="data_category"]', category)
    page.select_option('[name="recipient_class"]', "investors")
    page.fill('[name="purpose"]', "investors assess my demands")
    page.fill('[name="valid_until"]', (date.today() + timedelta(days=365)).isoformat())
    page.locator('form[action="/enterprise/consents"] button[type=submit]').click()
    expect(page.get_by_test_id("flash")).to_be_visible()


#: What each product's form needs besides the common fields: (repayment method, fills, selects).
PRODUCTS: dict[str, tuple[str, dict[str, str], dict[str, str]]] = {
    "bank_loan": ("equal_instalment", {}, {}),
    "p2p_loan": ("equal_principal", {}, {}),
    "supply_chain_receivable": (
        "bullet",
        {
            "facts.receivable.debtor_name": "Jiangsu Fresh Foods Co.",
            "facts.receivable.debtor_credit_code": make_uscc("91320100MA1FRXH2Q"),
            "facts.receivable.invoice_number": "INV-2026-0931",
            "facts.receivable.amount": "180000.00",
            "facts.receivable.due_date": (date.today() + timedelta(days=120)).isoformat(),
        },
        {},
    ),
    "ecommerce_credit_line": (
        "revolving",
        {
            "facts.store.platform": "Tmall",
            "facts.store.store_id": "lvyuan-fresh",
            "facts.store.monthly_sales": "81000, 76000, 90500, 88000, 95000, 99000",
        },
        {},
    ),
    "financial_lease": (
        "lease_rent",
        {
            "facts.lease.equipment": "Vacuum freeze-dryer VF-200",
            "facts.lease.supplier": "Shanghai Tofflon",
            "facts.lease.price": "160000.00",
            "facts.lease.residual_value": "16000.00",
        },
        {"facts.lease.end_option": "purchase"},
    ),
}


@pytest.mark.parametrize("product", list(PRODUCTS))
def test_a_demand_goes_from_draft_to_listed_in_the_browser(
    product: str, new_page: Any, backend_live_env: dict[str, str]
) -> None:
    method, product_fills, product_selects = PRODUCTS[product]
    title = f"Cold store for the spring harvest ({product})"
    sme: Page = new_page()
    log_in(sme, SME)
    sme.get_by_role("link", name="Credit file", exact=True).first.click()
    sme.get_by_test_id("declare-registration").click()
    expect(sme.get_by_test_id("flash")).to_be_visible()
    expect(sme.get_by_test_id("fact-self-declared").first).to_be_visible()
    for category in ("identity", "credit_score"):
        share_with_investors(sme, category)

    # Step 1: the form shows the chosen product's own fieldset only.
    sme.get_by_role("link", name="Demands", exact=True).first.click()
    sme.get_by_test_id("new-demand").click()
    lease = sme.get_by_test_id("facts-lease")
    sme.select_option("#f-product", "financial_lease")
    expect(lease).to_be_visible()
    expect(sme.get_by_test_id("facts-store")).to_be_hidden()
    sme.select_option("#f-product", "bank_loan")
    expect(lease).to_be_hidden()
    expect(sme.get_by_test_id("facts-banks")).to_be_visible()
    values = {
        "title": title,
        "amount": "150000.00",
        "term_months": "24",
        "max_annual_rate": "8.5",
        "project_key": f"browser-cold-store-{product}",
        "purpose": "A second cold store so that vegetables keep until the supermarkets buy them",
        "use_of_funds.0.item": "Refrigeration units",
        "use_of_funds.0.amount": "110000.00",
        "use_of_funds.1.item": "Insulated panels",
        "use_of_funds.1.amount": "40000.00",
        "innovation.rd_spend": "380000.00",
    }
    sme.select_option("#f-product", product)
    for name, value in {**values, **product_fills}.items():
        sme.fill(f'[name="{name}"]', value)
    for name, value in product_selects.items():
        sme.select_option(f'[name="{name}"]', value)
    sme.select_option('[name="repayment_method"]', method)
    sme.screenshot(path=SCREENSHOT_FORM, full_page=True)
    sme.get_by_test_id("demand-submit").click()
    expect(sme.get_by_test_id("flash")).to_contain_text("The draft is saved")
    expect(sme.get_by_test_id("demand-status")).to_have_text("Draft")
    sme.get_by_test_id("submit-demand").click()
    expect(sme.get_by_test_id("demand-status")).to_have_text("Under verification")
    rows = sme.locator('[data-testid="orders"] tbody tr')
    expect(rows.first).to_be_visible()
    rating_row = sme.locator('[data-testid="orders"] tbody tr[data-agency-type="credit_rating"]')
    expect(rating_row).to_have_count(1)
    rating_ref = rating_row.locator("code").first.inner_text()
    other_refs = [r.locator("code").first.inner_text() for r in rows.all()]
    other_refs.remove(rating_ref)
    demand_url = sme.url.split("?")[0]

    # Step 2: the rating agency accepts and returns its signed result.
    agency: Page = new_page()
    log_in(agency, AGENCY)
    agency.get_by_role("link", name="Service orders", exact=True).first.click()
    agency.get_by_test_id(f"order-{rating_ref}").get_by_test_id("order-link").click()
    agency.get_by_test_id("accept-order").click()
    expect(agency.get_by_test_id("flash")).to_contain_text("Accepted")
    expect(agency.get_by_test_id("order-status")).to_have_text("Accepted")
    agency.select_option('[name="result.rating"]', "A")
    agency.select_option('[name="result.outlook"]', "stable")
    agency.fill('[name="result.methodology"]', "SME scorecard v3")
    agency.get_by_test_id("prepare-signature").click()
    canonical = agency.get_by_test_id("canonical").input_value()
    assert f'"order_ref":"{rating_ref}"' in canonical
    settings = Settings(database_url=backend_live_env["YUNRONG_DATABASE_URL"], demo=True)
    key = demo_agency_private_key(settings, AGENCY.organisation)  # the agency's own, never the platform's
    agency.fill('[name="signature"]', attestations.sign(key, canonical.replace('"A"', '"AA"')))
    agency.get_by_test_id("submit-result").click()
    expect(agency.get_by_test_id("error-signature")).to_have_text(
        "not a valid Ed25519 signature of the canonical form"
    )
    agency.fill('[name="signature"]', attestations.sign(key, canonical))
    agency.screenshot(path=SCREENSHOT_ORDER, full_page=True)
    agency.get_by_test_id("submit-result").click()
    expect(agency.get_by_test_id("flash")).to_contain_text("recorded as an attestation")
    expect(agency.get_by_test_id("order-status")).to_have_text("Completed")

    # The operator waives what is left.
    operator: Page = new_page()
    log_in(operator, OPERATOR)
    operator.get_by_role("link", name="Service orders", exact=True).first.click()
    for ref in other_refs:
        row = operator.get_by_test_id(f"order-{ref}")
        if row.get_by_test_id("waive").count() == 0:
            continue
        row.get_by_test_id("reason").fill("checked on paper by the operator")
        row.get_by_test_id("waive").click()
        expect(operator.get_by_test_id("flash")).to_have_text("Order waived.")
        expect(operator.get_by_test_id(f"order-{ref}").get_by_test_id("order-status")).to_have_text("Waived")

    operator.screenshot(path=SCREENSHOT_OPERATOR, full_page=True)

    # Step 3: listed.
    sme.goto(demand_url)
    expect(sme.get_by_test_id("demand-status")).to_have_text("Listed")
    expect(sme.get_by_test_id(f"order-{rating_ref}").get_by_test_id("order-status")).to_have_text("Completed")

    investor: Page = new_page()
    log_in(investor, PERSON)
    investor.get_by_role("link", name="Listings", exact=True).first.click()
    expect(investor).to_have_url(re.compile(r"/investor/listings$"))
    investor.get_by_role("link", name=title).click()
    expect(investor.get_by_test_id("listing-title")).to_have_text(title)
    rated = investor.get_by_test_id("fact-agency_rating")
    expect(rated).to_contain_text("A")
    expect(rated.get_by_test_id("fact-verified")).to_contain_text(f"Verified by {AGENCY.organisation}")
    expect(investor.get_by_test_id("fact-name").get_by_test_id("fact-self-declared")).to_be_visible()
    expect(investor.get_by_test_id("hidden-categories")).to_contain_text("Financials")
    expect(investor.get_by_test_id("transparency-score")).to_be_visible()
    investor.screenshot(path=SCREENSHOT_LISTING, full_page=True)

    # Anyone can check the attestation behind the ✓.
    rated.get_by_test_id("verify-link").click()
    expect(investor.get_by_test_id("verdict-valid")).to_be_visible()
