"""Step 7 in a real browser, on both databases: the enterprise repays the first instalment of its crowd
loan on its loan page, the simulated bank confirms the collection (the live server's worker hands the
instruction over and the bank's signed callback comes back over HTTP), the page shows the repayment
allocated and the instalment paid without a reload, and the investor sees the money on its income
page and on its money page.

The live server runs on the wall clock, and a schedule's first instalment falls due a month after the
payout. So once the custodian has paid the loan out, the test moves the loan's start one month back
in the database and writes its version-1 schedule again with the exact generator from that start
(``yunrong.servicing.service.schedule_for``): the loan is then one paid out a month ago, whose first
instalment falls due today (or, when today's day of month does not exist a month back, a day or two
ago). Nothing else is touched: the ledger's loan book holds the same principal either way.
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
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect
from sqlalchemy import delete
from tests.e2e.conftest import _seeded_env, _serving, _stop
from tests.e2e.test_browser_loans import _available, _draft, _list_with_decision, _token

from yunrong.config import Settings
from yunrong.db import make_engine, make_sessionmaker, unit_of_work
from yunrong.demo.seed import INSTITUTION, SME, DemoLogin
from yunrong.investing.tables import Loan
from yunrong.kit.clock import SystemClock, business_date
from yunrong.servicing import service
from yunrong.servicing.daycount import DayCount, add_months
from yunrong.servicing.tables import Instalment, LoanServicing

pytestmark = pytest.mark.browser

# Written for a person to look at; never committed.
SCREENSHOT_REPAY = Path(tempfile.gettempdir()) / "yunrong-repayment.png"
SCREENSHOT_INCOME = Path(tempfile.gettempdir()) / "yunrong-income.png"
#: How long the bank may take to answer: an outcome waited for, not a measured duration.
BANK_ANSWERS_WITHIN_MS = 30_000
#: The demo deposits are confirmed while the fresh server and its worker share the SQLite file; a
#: callback that waited out the busy timeout is retried by the worker: room for one retry.
DEMO_MONEY_WITHIN_S = 90.0
# On SQLite every transaction takes the write lock (BEGIN IMMEDIATE), so a page may wait behind the
# worker's longest transaction (its start-up backlog: the simulated agencies, the first end of day)
# up to the busy timeout of 30 s; the waits allow that. They are outcomes waited for, not timings.
SLOW_MS = 45_000
HTTP_TIMEOUT_S = 45.0  # more than the busy timeout: a request may wait all of it, then work
AMOUNT = "100000.00"


@dataclass(frozen=True)
class World:
    base: str
    env: dict[str, str]


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

    tmp = tmp_path_factory.mktemp(f"repayment-{request.param}")
    url: str | None = None
    name: str | None = None
    if request.param == "postgresql":
        _require_pg()
        url, name = _create_pg_database()
    try:
        env = _seeded_env(tmp, url)
        with _serving(env) as base, _worker(env, base):
            yield World(base, env)
    finally:
        if name is not None:
            _drop_pg_database(name)


@pytest.fixture
def new_page(browser: Any, world: World) -> Iterator[Any]:
    assert isinstance(browser, Browser)
    contexts: list[BrowserContext] = []

    def make() -> Page:
        ctx = browser.new_context(
            base_url=world.base, locale="en-US", viewport={"width": 1280, "height": 1100}
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


def cny(minor: int) -> str:
    return f"{minor // 100:,}.{minor % 100:02d} CNY"


# --- the scene: a crowd loan paid out, its first instalment due ------------------------------------------


def _paid_out_loan(http: httpx.Client, database_url: str) -> str:
    """A crowd loan of 100,000.00 CNY committed by the demo institution, its agreement accepted by
    the enterprise and paid out by the custodian (through the worker)."""
    sme, institution = _token(http, SME), _token(http, INSTITUTION)
    deadline = time.monotonic() + DEMO_MONEY_WITHIN_S
    while _available(http, institution) < 10_000_000:
        assert time.monotonic() < deadline, "the bank never confirmed the demo deposit"
        time.sleep(0.2)
    demand_id = _draft(http, sme)
    _list_with_decision(database_url, demand_id)
    committed = http.post(
        "/api/v1/commitments",
        json={"demand_id": str(demand_id), "amount": AMOUNT, "accept_agreement": True},
        headers={**institution, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert committed.status_code == 201, committed.text
    funding = http.get(f"/api/v1/demands/{demand_id}/funding", headers=sme).json()
    assert funding["status"] == "funded", funding
    loan_id = str(funding["loan_id"])
    pdf = http.get(f"/api/v1/loans/{loan_id}/agreement", headers=sme)
    accepted = http.post(
        f"/api/v1/loans/{loan_id}/agreement/accept",
        json={"sha256": hashlib.sha256(pdf.content).hexdigest()},
        headers=sme,
    )
    assert accepted.status_code == 200, accepted.text
    deadline = time.monotonic() + BANK_ANSWERS_WITHIN_MS / 1000
    while http.get(f"/api/v1/loans/{loan_id}", headers=sme).json()["status"] != "active":
        assert time.monotonic() < deadline, "the bank never confirmed the payout"
        time.sleep(0.2)
    return loan_id


def _started_a_month_ago(database_url: str, loan_id: str) -> None:
    """Move the loan's start one month back and write its schedule again from there (see the module
    docstring): its first instalment then falls due today."""
    settings = Settings(database_url=database_url, demo=True)
    engine = make_engine(database_url)
    try:
        with unit_of_work(make_sessionmaker(engine)) as session:
            loan = session.get(Loan, uuid.UUID(loan_id))
            s = session.get(LoanServicing, uuid.UUID(loan_id))
            assert loan is not None
            assert s is not None
            today = business_date(SystemClock().now(), settings.timezone)
            start = add_months(today, -1)
            schedule = service.schedule_for(loan, start, DayCount(s.day_count))
            assert schedule.instalments[0].due_date <= today
            session.execute(delete(Instalment).where(Instalment.loan_id == loan.id))
            service.write_instalments(session, loan.id, 1, schedule)
            s.start_date = s.last_accrual_date = start
            s.maturity_date = schedule.instalments[-1].due_date
            s.next_due_date = schedule.instalments[0].due_date
    finally:
        engine.dispose()


# --- the test --------------------------------------------------------------------------------------------


def test_the_enterprise_repays_in_the_browser_and_the_investor_sees_the_money(
    new_page: Any, world: World
) -> None:
    with httpx.Client(base_url=world.base, timeout=HTTP_TIMEOUT_S) as http:
        loan_id = _paid_out_loan(http, world.env["YUNRONG_DATABASE_URL"])
        _started_a_month_ago(world.env["YUNRONG_DATABASE_URL"], loan_id)
        institution = _token(http, INSTITUTION)
        cash_before = _available(http, institution)
        first = http.get(f"/api/v1/loans/{loan_id}/schedule", headers=_token(http, SME)).json()[
            "instalments"
        ][0]
    payment = first["principal_due_minor"] + first["interest_due_minor"]

    sme: Page = new_page()
    log_in(sme, SME)
    sme.get_by_role("link", name="Loans", exact=True).first.click()
    sme.locator(f'[data-testid="loans"] a[href="/enterprise/loans/{loan_id}"]').click()
    expect(sme).to_have_url(re.compile(rf"/enterprise/loans/{loan_id}$"))
    # The schedule and the form load into the loan page; the first instalment is highlighted as due.
    schedule = sme.get_by_test_id("schedule")
    expect(schedule).to_be_visible()
    first_row = schedule.locator('[data-testid="instalment"][data-number="1"]')
    expect(first_row).to_have_attribute("data-standing", re.compile(r"^(due|overdue)$"))
    expect(schedule.locator('[data-testid="instalment"][data-standing="upcoming"]')).to_have_count(11)
    expect(sme.get_by_test_id("due-now")).to_have_text(cny(payment))

    # A refusal beside its field first: an early repayment in part needs its option.
    form = sme.get_by_test_id("repay-form")
    form.locator('[name="kind"]').select_option("early_partial")
    form.get_by_test_id("repay-submit").click()
    expect(sme.get_by_test_id("error-early_option")).to_have_text(
        "Choose a shorter term or a smaller instalment."
    )

    # Then the first instalment, as suggested by the form.
    form = sme.get_by_test_id("repay-form")
    expect(form.locator('[name="amount"]')).to_have_value(f"{payment // 100}.{payment % 100:02d}")
    form.locator('[name="kind"]').select_option("scheduled")
    form.get_by_test_id("repay-submit").click()
    expect(sme).to_have_url(re.compile(rf"/enterprise/loans/{loan_id}/repayments\?done=pending$"))
    expect(sme.get_by_test_id("flash")).to_contain_text("sent to the custodian bank")
    # No reload: the HTMX poll swaps in the bank's answer and the allocation.
    expect(sme.get_by_test_id("repayment-status")).to_have_text("Allocated", timeout=BANK_ANSWERS_WITHIN_MS)
    expect(sme.get_by_test_id("repayment-principal")).to_have_text(cny(first["principal_due_minor"]))
    expect(sme.get_by_test_id("repayment-interest")).to_have_text(cny(first["interest_due_minor"]))
    paid_row = sme.get_by_test_id("schedule").locator('[data-testid="instalment"][data-number="1"]')
    expect(paid_row).to_have_attribute("data-standing", "paid")
    expect(sme.get_by_test_id("repayment-polling")).to_have_count(0)
    expect(sme.get_by_test_id("due-now")).to_have_text(cny(0))
    sme.screenshot(path=SCREENSHOT_REPAY, full_page=True)

    with httpx.Client(base_url=world.base, timeout=HTTP_TIMEOUT_S) as http:
        institution = _token(http, INSTITUTION)
        income = http.get("/api/v1/me/income", headers=institution).json()
        cash_after = _available(http, institution)
    net = income["totals"]["net_minor"]
    # A single note: all of the principal and interest, less the disclosed fee on the interest.
    assert income["totals"]["principal_minor"] == first["principal_due_minor"]
    assert income["totals"]["interest_minor"] == first["interest_due_minor"]
    assert net == payment - income["totals"]["service_fee_minor"] > 0
    assert income["reconciled"] is True
    assert cash_after - cash_before == net

    investor: Page = new_page()
    log_in(investor, INSTITUTION)
    investor.get_by_role("link", name="Income", exact=True).first.click()
    expect(investor).to_have_url(re.compile(r"/investor/income$"))
    expect(investor.get_by_test_id("income-net")).to_have_text(cny(net))
    expect(investor.get_by_test_id("income-principal")).to_have_text(cny(first["principal_due_minor"]))
    expect(investor.get_by_test_id("ledger-check")).to_contain_text("Matches")
    expect(investor.locator(f'[data-testid="month-bar"][data-net="{net}"]')).to_have_count(1)
    expect(investor.get_by_test_id("income-loan-net")).to_have_text(cny(net))
    pdf = investor.request.get("/investor/income/statement.pdf")
    assert pdf.ok
    assert pdf.body().startswith(b"%PDF")
    investor.screenshot(path=SCREENSHOT_INCOME, full_page=True)

    investor.get_by_role("link", name="Money", exact=True).first.click()
    expect(investor.get_by_test_id("available").first).to_have_text(cny(cash_after))
