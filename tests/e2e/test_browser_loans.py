"""Steps 5 and 6 in a real browser: the enterprise opens its funded crowd loan, reads the agreement
(the PDF's SHA-256 is the one the page shows), accepts it and watches the custodian's payout become
confirmed without reloading (the live server's worker hands the instruction to the simulated bank,
whose signed callback comes back over HTTP). Then a bank offers on a bank-loan demand in its portal,
the enterprise accepts the offer on its demand page, both accept the agreement and the loan is paid
out."""

from __future__ import annotations

import hashlib
import re
import tempfile
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect
from sqlalchemy import select
from tests.integration.verification.demand_data import demand_body

from yunrong.config import Settings
from yunrong.db import make_engine, make_sessionmaker, unit_of_work
from yunrong.decisions.tables import CreditDecision, ModelVersion
from yunrong.demands.tables import Demand
from yunrong.demo.seed import AGENCY, BANK, INSTITUTION, SME, DemoLogin
from yunrong.identity.model import Actor, Context
from yunrong.investing import service as investing
from yunrong.kit.clock import SystemClock
from yunrong.parties.tables import Investor

pytestmark = pytest.mark.browser

# Written for a person to look at; never committed.
SCREENSHOT_LOAN = Path(tempfile.gettempdir()) / "yunrong-loan.png"
SCREENSHOT_OFFER = Path(tempfile.gettempdir()) / "yunrong-bank-offer.png"
#: How long the bank may take to answer: an outcome waited for, not a measured duration.
BANK_ANSWERS_WITHIN_MS = 30_000
#: The live server shares its SQLite file with the worker: a request may wait for the other's write.
HTTP_TIMEOUT_S = 45.0  # more than the busy timeout: a request may wait all of it, then work
#: Pages too may wait out SQLite's 30 s busy timeout behind the worker (as in the other browser tests).
SLOW_MS = 45_000
LOAN_AMOUNT = "100000.00"


@pytest.fixture
def new_page(browser: Any, live_worker: str) -> Iterator[Any]:
    """Pages in separate browser contexts on the live server, with its worker running."""
    assert isinstance(browser, Browser)
    contexts: list[BrowserContext] = []

    def make() -> Page:
        ctx = browser.new_context(
            base_url=live_worker, locale="en-US", viewport={"width": 1280, "height": 1000}
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


# --- setting the scene through the live server's API (and, where noted, its database) ------------------


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
    """A deposit is confirmed by the simulated bank through the worker: wait for it."""
    deadline = time.monotonic() + BANK_ANSWERS_WITHIN_MS / 1000
    while _available(http, auth) < minor:
        assert time.monotonic() < deadline, "the bank never confirmed the demo deposit"
        time.sleep(0.2)


def _system(clock: SystemClock) -> Context:
    return Context(actor=Actor.system("e2e-loans"), clock=clock, request_id="e2e-loans")


def _draft(http: httpx.Client, sme: dict[str, str], **overrides: Any) -> uuid.UUID:
    body = demand_body(
        project_key=f"e2e-loans-{uuid.uuid4().hex[:8]}",
        amount=LOAN_AMOUNT,
        use_of_funds=[{"item": "Working capital", "amount": LOAN_AMOUNT}],
        **overrides,
    )
    draft = http.post("/api/v1/demands", json=body, headers=sme)
    assert draft.status_code == 201, draft.text
    return uuid.UUID(draft.json()["id"])


def _list_with_decision(database_url: str, demand_id: uuid.UUID) -> None:
    """List the drafted demand with a priced decision written directly (as tests/integration/investing
    does: verification and the credit engine have their own browser tests); the round opens as on
    listing. The demo investors are made growth investors (C4), as there."""
    settings = Settings(database_url=database_url, demo=True)
    engine = make_engine(database_url)
    clock = SystemClock()
    try:
        with unit_of_work(make_sessionmaker(engine)) as session:
            for investor in session.scalars(select(Investor)).all():
                investor.risk_level = "C4"
            demand = session.get(Demand, demand_id)
            assert demand is not None
            now = clock.now()
            demand.status = "listed"
            demand.listed_at = now
            if demand.product == "bank_loan":
                return
            model_row = ModelVersion(
                name=f"e2e-loans-{uuid.uuid4().hex[:6]}",
                version=1,
                role="challenger",
                artifact_path="-",
                artifact_sha256="0" * 64,
                card={},
                reference_scores={},
                registered_by="e2e",
                registered_at=now,
            )
            session.add(model_row)
            session.flush()
            session.add(
                CreditDecision(
                    demand_id=demand_id,
                    model_id=model_row.id,
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
            assert (
                investing.open_round(session, ctx=_system(clock), demand=demand, settings=settings)
                is not None
            )
    finally:
        engine.dispose()


def _fund_bank(http: httpx.Client, minor: int) -> None:
    """The bank pays its lending money into escrow as any party does: its own account is added, the
    demo agency verifies it, and the custodian confirms the deposit (through the worker)."""
    bank, agency = _token(http, BANK), _token(http, AGENCY)
    org = http.get("/api/v1/me", headers=bank).json()["organisation"]["id"]
    created = http.post(
        f"/api/v1/organisations/{org}/bank-accounts",
        json={
            "bank_name": "Bank of Jiangsu",
            "account_name": "Lending",
            "account_number": "6222020200000001",
        },
        headers=bank,
    )
    assert created.status_code == 201, created.text
    verified = http.post(
        f"/api/v1/bank-accounts/{created.json()['id']}/verification",
        json={"evidence": "bank confirmation letter"},
        headers=agency,
    )
    assert verified.status_code == 200, verified.text
    before = _available(http, bank)
    paid = http.post(
        "/api/v1/deposits",
        json={"amount": str(Decimal(minor) / 100), "bank_account_id": created.json()["id"]},
        headers={**bank, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert paid.status_code == 202, paid.text
    _wait_for_money(http, bank, before + minor)


@pytest.fixture
def funded_loan(live_worker: str, live_env: dict[str, str]) -> str:
    """A crowd loan of 100,000.00 CNY, fully committed by the demo institution: its agreement awaits
    the enterprise."""
    with httpx.Client(base_url=live_worker, timeout=HTTP_TIMEOUT_S) as http:
        sme, institution = _token(http, SME), _token(http, INSTITUTION)
        _wait_for_money(http, institution, 10_000_000)
        demand_id = _draft(http, sme)
        _list_with_decision(live_env["YUNRONG_DATABASE_URL"], demand_id)
        committed = http.post(
            "/api/v1/commitments",
            json={"demand_id": str(demand_id), "amount": LOAN_AMOUNT, "accept_agreement": True},
            headers={**institution, "Idempotency-Key": uuid.uuid4().hex},
        )
        assert committed.status_code == 201, committed.text
        assert committed.json()["status"] == "posted"
        funding = http.get(f"/api/v1/demands/{demand_id}/funding", headers=sme).json()
        assert funding["status"] == "funded", funding
        return str(funding["loan_id"])


# --- the tests ------------------------------------------------------------------------------------------


def _read_and_accept(page: Page) -> str:
    """Read the agreement the page links (its hash is the one shown) and accept it."""
    shown = page.get_by_test_id("agreement-sha256").inner_text().strip()
    link = page.get_by_test_id("agreement-link")
    pdf = page.request.get(link.get_attribute("href") or "")
    assert pdf.ok
    assert pdf.body().startswith(b"%PDF")
    assert hashlib.sha256(pdf.body()).hexdigest() == shown
    expect(page.get_by_test_id("sha256-input")).to_have_value(shown)
    page.get_by_test_id("read-checkbox").check()
    page.get_by_test_id("accept-agreement").click()
    expect(page.get_by_test_id("flash")).to_contain_text("You accepted the agreement.")
    return shown


def test_the_enterprise_accepts_its_funded_loan_and_sees_the_payout_confirmed(
    new_page: Any, funded_loan: str
) -> None:
    sme: Page = new_page()
    log_in(sme, SME)
    sme.get_by_role("link", name="Loans", exact=True).first.click()
    expect(sme).to_have_url(re.compile(r"/enterprise/loans$"))
    sme.locator(f'[data-testid="loans"] a[href="/enterprise/loans/{funded_loan}"]').click()
    expect(sme).to_have_url(re.compile(rf"/enterprise/loans/{funded_loan}$"))
    expect(sme.get_by_test_id("principal")).to_have_text("100,000.00 CNY")
    expect(sme.get_by_test_id("loan-status-head")).to_have_text("Awaiting the agreement")

    # Accepting without ticking the box is refused beside it.
    sme.get_by_test_id("accept-agreement").click()
    expect(sme.get_by_test_id("error-read")).to_have_text(
        "Tick the box to confirm that you have read the agreement."
    )
    _read_and_accept(sme)

    # No reload: the HTMX poll swaps in the bank's answer.
    expect(sme.get_by_test_id("payout-status")).to_have_text("Confirmed", timeout=BANK_ANSWERS_WITHIN_MS)
    expect(sme.get_by_test_id("loan-status")).to_have_text("Active")
    expect(sme.get_by_test_id("payout-amount")).to_have_text("99,500.00 CNY")  # less the disclosed 0.5 % fee
    expect(sme.get_by_test_id("polling")).to_have_count(0)
    sme.screenshot(path=SCREENSHOT_LOAN, full_page=True)


def test_a_bank_offers_and_the_enterprise_accepts_then_both_sign_and_the_loan_is_paid(
    new_page: Any, live_worker: str, live_env: dict[str, str]
) -> None:
    with httpx.Client(base_url=live_worker, timeout=HTTP_TIMEOUT_S) as http:
        demand_id = _draft(http, _token(http, SME), product="bank_loan", title="Bank loan for the cold store")
        _list_with_decision(live_env["YUNRONG_DATABASE_URL"], demand_id)
        _fund_bank(http, 10_000_000)

    bank: Page = new_page()
    log_in(bank, BANK)
    bank.get_by_role("link", name="Demands", exact=True).first.click()
    expect(bank).to_have_url(re.compile(r"/bank/demands$"))
    bank.locator(f'a[href="/bank/demands/{demand_id}/offer"]').click()
    expect(bank.get_by_test_id("offer-form")).to_be_visible()
    bank.fill('[name="annual_rate_percent"]', "9.9")
    bank.fill('[name="conditions"]', "Quarterly management accounts.")
    bank.get_by_test_id("offer-submit").click()
    expect(bank.get_by_test_id("error-annual_rate_percent")).to_have_text(
        "9.9% is above the enterprise's maximum of 9.5%"
    )
    bank.fill('[name="annual_rate_percent"]', "6.5")
    bank.get_by_test_id("offer-submit").click()
    expect(bank).to_have_url(re.compile(r"/bank/offers\?done=made"))
    expect(bank.get_by_test_id("flash")).to_contain_text("is made")
    bank.screenshot(path=SCREENSHOT_OFFER, full_page=True)

    sme: Page = new_page()
    log_in(sme, SME)
    sme.goto(f"/enterprise/demands/{demand_id}")
    offer = sme.get_by_test_id("offers-box")
    expect(offer.get_by_test_id("offer-rate")).to_have_text("6.50%")
    expect(offer.get_by_test_id("offer-conditions")).to_have_text("Quarterly management accounts.")
    offer.get_by_test_id("accept-offer").click()
    expect(sme).to_have_url(re.compile(r"/enterprise/loans/[0-9a-f-]+\?done=offer-accepted$"))
    loan_path = sme.url.split("?")[0].split(live_worker)[-1]
    shown = _read_and_accept(sme)
    expect(sme.get_by_test_id("flash")).to_contain_text("The other party has not accepted it yet.")

    bank.get_by_role("link", name="Offers", exact=True).first.click()
    bank.get_by_test_id("loan-link").first.click()
    expect(bank).to_have_url(re.compile(r"/bank/loans/[0-9a-f-]+$"))
    assert bank.url.endswith(loan_path.removeprefix("/enterprise/loans/"))
    assert _read_and_accept(bank) == shown
    expect(bank.get_by_test_id("payout-status")).to_have_text("Confirmed", timeout=BANK_ANSWERS_WITHIN_MS)
    sme.reload()
    expect(sme.get_by_test_id("loan-status")).to_have_text("Active")
