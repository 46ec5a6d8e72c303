"""The pages of step 7 over HTTP, on both databases: the enterprise's loan page loads the schedule and
the "Repay" form; on the first due date the instalment is highlighted as due, a refused repayment is
shown beside its field (in Chinese too) with nothing booked, an early repayment in part is previewed
(the new schedule, nothing written) and only made on "Confirm"; a repayment stays pending until the
custodian confirms, then shows allocated and the instalment paid. The investor's income page shows
what it received, with its chart and downloads. Another enterprise or bank gets 404; other portals
403."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from tests.integration.investing.conftest import BANK, INSTITUTION, INVESTOR, SME, Drain
from tests.integration.investing.conftest import drain as drain
from tests.integration.investing.conftest import verified as verified
from tests.integration.servicing.test_statements import _active_loan
from tests.integration.test_loan_pages import DEMO_PASSWORD_OTHER, HTML, csrf_of, other_party, post, text_of
from tests.integration.test_loan_pages import browse as browse
from yunrong.app import create_app
from yunrong.config import Settings
from yunrong.identity.model import OrgType, Role
from yunrong.kit.clock import FrozenClock, business_date
from yunrong.servicing.repayment_routes import router as repayment_router
from yunrong.servicing.statement_routes import router as statement_router
from yunrong.servicing.tables import Distribution, Instalment, LoanServicing, Repayment
from yunrong.web import i18n, servicing_pages

ZH = {**HTML, "accept-language": "zh-CN"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"simbank_callback_mode": "direct", "simbank_failure_rate": 0.0, "simbank_duplicate_rate": 0.0}
    )


@pytest.fixture
def app(settings: Settings, clock: FrozenClock, engine: Engine) -> FastAPI:
    """The application, with these pages and routes mounted if app.py does not include them yet."""
    application = create_app(settings, clock=clock, engine=engine)
    paths = {getattr(route, "path", None) for route in application.router.routes}
    if "/investor/income" not in paths:
        application.include_router(servicing_pages.router)
    names = {getattr(r, "name", "") for r in application.routes}
    if "create_repayment" not in names:
        application.include_router(repayment_router)
    if "read_loan_statement" not in names:
        application.include_router(statement_router)
    return application


@pytest.fixture
def loan(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    verified: None,
    drain: Drain,
) -> dict[str, Any]:
    """An active crowd loan, on the due date of its first instalment."""
    loan_id = _active_loan(client, tokens, factory, settings, clock, drain)
    with factory() as session:
        first = session.scalars(
            select(Instalment).where(Instalment.loan_id == loan_id, Instalment.number == 1)
        ).one()
    while business_date(clock.now(), settings.timezone) < first.due_date:
        clock.advance(timedelta(days=1))
    return {"id": loan_id, "payment": first.principal_due + first.interest_due, "first": first}


def _amount(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}"


def _count(factory: sessionmaker[Session], table: Any) -> int:
    with factory() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


def _standings(html: str) -> list[str]:
    return re.findall(r'data-testid="instalment" data-number="\d+" data-standing="([a-z_]+)"', html)


def test_the_enterprise_repays_its_first_instalment_in_the_page(
    browse: Any, loan: dict[str, Any], factory: sessionmaker[Session], drain: Drain
) -> None:
    loan_id = loan["id"]
    sme = browse(SME, "")
    page = sme.get(f"/enterprise/loans/{loan_id}", headers=HTML)
    assert page.status_code == 200
    assert f'hx-get="/enterprise/loans/{loan_id}/servicing"' in page.text  # the section loads itself

    section = sme.get(f"/enterprise/loans/{loan_id}/servicing", headers=HTML)
    assert section.status_code == 200
    assert _standings(section.text) == ["due"] + ["upcoming"] * 11
    assert 'class="sv-due"' in section.text  # highlighted
    assert text_of(section.text, "due-now") == f"{loan['payment'] / 100:,.2f} CNY"
    form = re.search(r'name="amount" type="text"\s+value="([0-9.]+)"', section.text)
    assert form is not None
    assert form.group(1) == _amount(loan["payment"])  # what is due, suggested
    assert 'data-testid="repay-form"' in section.text
    assert f'href="/loans/{loan_id}/statement.pdf"' in section.text

    done = post(
        sme,
        f"/enterprise/loans/{loan_id}/repayments",
        {
            "amount": _amount(loan["payment"]),
            "kind": "scheduled",
            "idempotency_key": uuid.uuid4().hex,
            "step": "submit",
        },
        section.text,
    )
    assert done.status_code == 303, done.text
    assert done.headers["location"] == f"/enterprise/loans/{loan_id}/repayments?done=pending"
    pending = sme.get(done.headers["location"], headers=HTML)
    assert text_of(pending.text, "repayment-status") == "Awaiting the bank"
    assert 'data-testid="flash"' in pending.text
    assert f'hx-get="/enterprise/loans/{loan_id}/servicing/live" hx-trigger="every 2s"' in pending.text
    assert _standings(pending.text)[0] == "due"  # nothing allocated before the bank confirms

    drain()  # the custodian confirms
    live = sme.get(f"/enterprise/loans/{loan_id}/servicing/live", headers=HTML)
    assert text_of(live.text, "repayment-status") == "Allocated"
    assert text_of(live.text, "repayment-principal") == f"{loan['first'].principal_due / 100:,.2f} CNY"
    assert _standings(live.text) == ["paid"] + ["upcoming"] * 11
    assert "hx-trigger" not in live.text  # no more polling
    assert _count(factory, Repayment) == 1

    statement = sme.get(f"/loans/{loan_id}/statement.csv")
    assert statement.status_code == 200
    assert statement.content.startswith("\ufeff".encode())

    # The investors see the money on their income page.
    investor = browse(INVESTOR, "")
    income = investor.get("/investor/income", headers=HTML)
    assert income.status_code == 200
    with factory() as session:
        nets = {
            d.investor_org_id: d.net
            for d in session.scalars(select(Distribution).where(Distribution.loan_id == loan_id))
        }
    mine = [n for n in nets.values() if f"{n / 100:,.2f} CNY" == text_of(income.text, "income-net")]
    assert len(mine) == 1
    assert text_of(income.text, "ledger-check").startswith("Matches")
    bars = re.findall(r'data-testid="month-bar" data-month="([0-9-]+)" data-net="(\d+)"', income.text)
    assert [int(net) for _m, net in bars if int(net)] == mine
    csv = investor.get("/investor/income/statement.csv")
    assert csv.content.startswith("\ufeff".encode())
    assert investor.get("/investor/income/statement.pdf").content.startswith(b"%PDF")
    portfolio = investor.get("/investor/portfolio", headers=HTML)
    assert 'href="/investor/income"' in portfolio.text


def test_a_refused_repayment_is_shown_beside_its_field_and_books_nothing(
    browse: Any, loan: dict[str, Any], factory: sessionmaker[Session]
) -> None:
    loan_id = loan["id"]
    sme = browse(SME, "")
    path = f"/enterprise/loans/{loan_id}/repayments"
    page = sme.get(path, headers=HTML)
    key = uuid.uuid4().hex

    negative = post(sme, path, {"amount": "-5", "kind": "scheduled", "idempotency_key": key}, page.text)
    assert negative.status_code == 422
    assert text_of(negative.text, "error-amount") == "Enter an amount greater than zero."
    assert 'value="-5"' in negative.text  # what was typed is kept

    no_option = post(
        sme, path, {"amount": "50000.00", "kind": "early_partial", "idempotency_key": key}, page.text
    )
    assert no_option.status_code == 422
    assert text_of(no_option.text, "error-early_option") == "Choose a shorter term or a smaller instalment."

    too_little = post(
        sme, path, {"amount": "100.00", "kind": "early_full", "idempotency_key": key}, page.text
    )
    assert too_little.status_code == 422
    assert text_of(too_little.text, "error-amount").startswith("closing the loan today takes")

    chinese = sme.post(
        path,
        data={
            "amount": "100.00",
            "kind": "early_full",
            "idempotency_key": key,
            "csrf_token": csrf_of(page.text),
        },
        headers=ZH,
        follow_redirects=False,
    )
    assert chinese.status_code == 422
    assert text_of(chinese.text, "error-amount").startswith("今日提前结清需")
    assert i18n.gettext("zh_CN", "Repayment schedule") in chinese.text
    assert i18n.gettext("zh_CN", "Repayment schedule") != "Repayment schedule"

    assert _count(factory, Repayment) == 0  # nothing was instructed


def test_an_early_repayment_in_part_is_previewed_then_confirmed(
    browse: Any, loan: dict[str, Any], factory: sessionmaker[Session], drain: Drain
) -> None:
    loan_id = loan["id"]
    sme = browse(SME, "")
    path = f"/enterprise/loans/{loan_id}/repayments"
    page = sme.get(path, headers=HTML)
    amount = loan["payment"] + 5_000_000  # what is due and 50 000.00 of principal early
    body = {"amount": _amount(amount), "kind": "early_partial", "early_option": "smaller_instalment"}

    preview = post(sme, path, {**body, "idempotency_key": uuid.uuid4().hex, "step": "submit"}, page.text)
    assert preview.status_code == 200, preview.text
    assert 'data-testid="preview-schedule"' in preview.text
    rows = re.findall(r'data-testid="preview-row" data-status="([a-z]+)"', preview.text)
    assert rows.count("paid") >= 1
    assert rows.count("scheduled") == 11  # a smaller instalment keeps the term
    assert _count(factory, Repayment) == 0  # a preview writes nothing
    with factory() as session:
        s = session.get(LoanServicing, loan_id)
        assert s is not None
        assert s.schedule_version == 1

    confirm = re.search(r'name="idempotency_key" value="([0-9a-f]+)"', preview.text)
    assert confirm is not None
    done = post(sme, path, {**body, "idempotency_key": confirm.group(1), "step": "confirm"}, preview.text)
    assert done.status_code == 303, done.text
    again = post(sme, path, {**body, "idempotency_key": confirm.group(1), "step": "confirm"}, preview.text)
    assert again.status_code == 303  # a second submit of the same form repays once
    assert _count(factory, Repayment) == 1
    drain()
    with factory() as session:
        s = session.get(LoanServicing, loan_id)
        assert s is not None
        assert s.schedule_version == 2
    live = sme.get(f"/enterprise/loans/{loan_id}/servicing/live", headers=HTML)
    assert text_of(live.text, "repayment-status") == "Allocated"
    assert "Version 2" in live.text


def test_other_parties_get_nothing(
    browse: Any, loan: dict[str, Any], factory: sessionmaker[Session], settings: Settings, clock: FrozenClock
) -> None:
    loan_id = loan["id"]
    stranger = browse(
        other_party(factory, settings, clock, OrgType.ENTERPRISE, Role.ENTERPRISE_ADMIN), DEMO_PASSWORD_OTHER
    )
    for path in ("servicing", "servicing/live", "repayments"):
        assert stranger.get(f"/enterprise/loans/{loan_id}/{path}", headers=HTML).status_code == 404
    assert stranger.get(f"/loans/{loan_id}/statement.csv", headers=HTML).status_code == 404
    page = stranger.get("/enterprise/loans", headers=HTML)
    refused = post(
        stranger,
        f"/enterprise/loans/{loan_id}/repayments",
        {"amount": "100.00", "kind": "scheduled", "idempotency_key": uuid.uuid4().hex},
        page.text,
    )
    assert refused.status_code == 404
    bank = browse(BANK, "")
    assert bank.get(f"/bank/loans/{loan_id}/servicing", headers=HTML).status_code == 404
    investor = browse(INVESTOR, "")
    assert investor.get(f"/enterprise/loans/{loan_id}/servicing", headers=HTML).status_code == 403
    assert investor.get(f"/loans/{loan_id}/statement.pdf", headers=HTML).status_code == 404
    sme = browse(SME, "")
    assert sme.get("/investor/income", headers=HTML).status_code == 403
    assert sme.get(f"/enterprise/loans/{uuid.uuid4()}/servicing", headers=HTML).status_code == 404
    bad = investor.get("/investor/income?since=2026-13-01", headers=HTML)
    assert bad.status_code == 422
    assert text_of(bad.text, "error-since") == "Enter a date as YYYY-MM-DD."
    assert _count(factory, Repayment) == 0
    assert INSTITUTION  # the other note holder is exercised by the first test
