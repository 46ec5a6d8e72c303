"""The investor's pages of steps 4–6 over HTTP, on both databases: preferences saved (and refused
beside the field, nothing saved), recommendations with their reasons, a commitment through the
listing page's form that holds money and shows on /investor/commitments, cancelled again; a double
submit with the same hidden key commits once; refusals named by their rule beside the amount; the
agreement form whose hash the commitment records; the knowledge test; the portfolio with its charts
and statements; the institution's webhook; Chinese pages; other roles refused."""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import timedelta
from html import unescape
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import bearer
from tests.integration.investing.conftest import (
    INSTITUTION,
    INVESTOR,
    SME,
    Drain,
    available,
    deposit,
    list_demand,
)
from yunrong.app import create_app
from yunrong.config import Settings
from yunrong.db import unit_of_work
from yunrong.demo.seed import DEMO_PASSWORD
from yunrong.identity.model import Context
from yunrong.investing import knowledge
from yunrong.investing.tables import Commitment, FundingRound
from yunrong.kit.clock import FrozenClock
from yunrong.matching.tables import InvestmentPreference
from yunrong.messaging.worker import deliver_due
from yunrong.parties.tables import BankAccount, Investor
from yunrong.web import investor_pages

HTML = {"accept": "text/html"}
ZH = {**HTML, "accept-language": "zh-CN"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The simulated bank answers in-process and never fails.
    return settings.model_copy(
        update={"simbank_callback_mode": "direct", "simbank_failure_rate": 0.0, "simbank_duplicate_rate": 0.0}
    )


@pytest.fixture
def app(settings: Settings, clock: FrozenClock, engine: Engine) -> FastAPI:
    app = create_app(settings, clock=clock, engine=engine)
    if not any(getattr(route, "path", "") == "/investor/recommendations" for route in app.routes):
        app.include_router(investor_pages.router)  # until the pages router includes it
    return app


@pytest.fixture
def verified(factory: sessionmaker[Session], system_ctx: Context, demo: dict[str, str]) -> None:
    with unit_of_work(factory) as session:
        for account in session.scalars(select(BankAccount)).all():
            account.verified_at = system_ctx.now()
            account.verified_by = "test"
        for investor in session.scalars(select(Investor)).all():
            investor.risk_level = "C4"


@pytest.fixture
def drain(factory: sessionmaker[Session], settings: Settings, clock: FrozenClock) -> Drain:
    def run() -> int:
        total = 0
        for _ in range(50):
            clock.advance(timedelta(seconds=30))
            done = deliver_due(factory, settings=settings, clock=clock, worker_id="test-worker")
            total += done
            if done == 0:
                clock.advance(timedelta(seconds=30))
                if deliver_due(factory, settings=settings, clock=clock, worker_id="test-worker") == 0:
                    return total
        raise AssertionError("the outbox never went quiet")

    return run


# --- helpers -----------------------------------------------------------------------------------------


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def log_in(client: TestClient, email: str) -> None:
    client.cookies.clear()
    page = client.get("/login", headers=HTML)
    response = client.post(
        "/login",
        data={"email": email, "password": DEMO_PASSWORD, "csrf_token": csrf_of(page.text)},
        headers=HTML,
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text


def post(client: TestClient, path: str, data: dict[str, Any], page: str = "", headers: Any = None) -> Any:
    token = csrf_of(page or client.get("/account", headers=HTML).text)
    return client.post(
        path, data={**data, "csrf_token": token}, headers=headers or HTML, follow_redirects=False
    )


def error_of(html: str, field: str) -> str:
    found = re.search(rf'data-testid="error-{re.escape(field)}"[^>]*>(.*?)</small>', html, re.S)
    assert found, f"no error beside {field}"
    return unescape(re.sub(r"<[^>]+>", "", found.group(1))).strip()


def rule_of(html: str) -> str:
    found = re.search(r'data-testid="error-amount" data-rule="([^"]*)"', html)
    assert found, "no refusal beside the amount"
    return found.group(1)


def key_of(html: str) -> str:
    found = re.search(r'name="idempotency_key" value="([0-9a-f]+)"', html)
    assert found, "the commit form has no idempotency key"
    return found.group(1)


def commitments(factory: sessionmaker[Session]) -> list[Commitment]:
    with factory() as session:
        rows = session.scalars(select(Commitment).order_by(Commitment.created_at)).all()
        session.expunge_all()
        return list(rows)


PREFS: dict[str, Any] = {
    "currency": "CNY",
    "amount_per_loan": "5,000.00",
    "total_budget": "50000.00",
    "min_term_months": "6",
    "max_term_months": "24",
    "grades": ["A", "BBB", "BB"],
    "products": ["p2p_loan"],
    "innovation": "neutral",
    "min_transparency": "0",
    "min_guarantee_coverage": "0",
}


# --- preferences ----------------------------------------------------------------------------------------


def test_preferences_are_saved_and_a_refusal_is_shown_beside_its_field(
    client: TestClient, verified: None, factory: sessionmaker[Session]
) -> None:
    log_in(client, INVESTOR)
    page = client.get("/investor/preferences", headers=HTML)
    assert page.status_code == 200
    assert 'data-testid="no-preferences"' in page.text
    assert 'href="/investor/recommendations"' in page.text  # the new navigation
    assert 'data-testid="webhook-section"' not in page.text  # a person has no webhook

    # The service refuses: more per loan than the budget, a longest term below the shortest.
    bad = post(
        client,
        "/investor/preferences",
        {**PREFS, "amount_per_loan": "60000.00", "min_term_months": "12", "max_term_months": "6"},
        page.text,
    )
    assert bad.status_code == 422
    assert error_of(bad.text, "amount_per_loan") == "must not exceed the total budget"
    assert error_of(bad.text, "max_term_months") == "must not be below the shortest term"
    assert 'value="60000.00"' in bad.text  # the form is shown as submitted
    # Pydantic refuses: not an amount, a coverage above 100 %.
    worse = post(
        client,
        "/investor/preferences",
        {**PREFS, "total_budget": "lots", "min_guarantee_coverage": "150"},
        page.text,
    )
    assert worse.status_code == 422
    assert error_of(worse.text, "total_budget") == "Enter an amount, e.g. 1250000.00."
    assert error_of(worse.text, "min_guarantee_coverage") == "Out of range."
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(InvestmentPreference)) == 0

    saved = post(client, "/investor/preferences", PREFS, page.text)
    assert saved.status_code == 303
    assert saved.headers["location"] == "/investor/preferences?done=saved"
    again = client.get("/investor/preferences?done=saved", headers=HTML)
    assert 'data-testid="flash"' in again.text
    assert 'value="5000.00"' in again.text
    assert 'value="50000.00"' in again.text
    assert re.search(r'name="grades" value="BBB" checked', again.text)
    with factory() as session:
        row = session.scalars(select(InvestmentPreference)).one()
        assert row.amount_per_loan_minor == 500_000
        assert row.total_budget_minor == 5_000_000
        assert row.grades == ["A", "BB", "BBB"]
        assert row.products == ["p2p_loan"]

    # Push settings: refused beside the field, then saved.
    capped = post(client, "/investor/preferences/push", {"daily_cap": "99"}, again.text)
    assert capped.status_code == 422
    assert error_of(capped.text, "daily_cap") == "Out of range."
    quiet = post(client, "/investor/preferences/push", {"daily_cap": "2", "unsubscribed": "on"}, again.text)
    assert quiet.status_code == 303
    shown = client.get("/investor/preferences", headers=HTML).text
    assert 'name="daily_cap" type="text"\n         value="2"' in shown or 'value="2"' in shown
    assert re.search(r'name="unsubscribed" value="on" checked', shown)


def test_an_institution_registers_its_webhook_and_sees_the_secret_once(
    client: TestClient, verified: None
) -> None:
    log_in(client, INSTITUTION)
    page = client.get("/investor/preferences", headers=HTML)
    assert 'data-testid="webhook-section"' in page.text
    assert 'data-testid="deliveries-empty"' in page.text
    bad = post(client, "/investor/preferences/webhook", {"url": "ftp://user:pw@example.cn/x"}, page.text)
    assert bad.status_code == 422
    assert error_of(bad.text, "url") == "must be an https:// (or http://) URL"
    good = post(
        client, "/investor/preferences/webhook", {"url": "https://invest.example.cn/hooks"}, page.text
    )
    assert good.status_code == 200
    secret = re.search(r'data-testid="webhook-secret">(whsec_[^<]+)<', good.text)
    assert secret is not None
    later = client.get("/investor/preferences", headers=HTML).text
    assert secret.group(1) not in later
    assert "https://invest.example.cn/hooks" in later


# --- recommendations ------------------------------------------------------------------------------------


def test_recommendations_show_grade_risk_and_reasons_in_the_pages_language(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    verified: None,
) -> None:
    fits = list_demand(
        client, tokens, factory, settings, clock, amount="100000.00", title="Orchard cold store"
    )
    list_demand(client, tokens, factory, settings, clock, grade="CCC", title="Too risky for C4")
    log_in(client, INVESTOR)
    none_yet = client.get("/investor/recommendations", headers=HTML)
    assert none_yet.status_code == 200
    assert 'data-testid="no-preferences"' in none_yet.text
    assert post(client, "/investor/preferences", PREFS).status_code == 303

    page = client.get("/investor/recommendations", headers=HTML)
    assert page.text.count('data-testid="recommendation"') == 1
    assert "Orchard cold store" in page.text
    assert "Too risky for C4" not in page.text
    assert f'href="/investor/listings/{fits}"' in page.text
    assert re.search(r'<span class="grade-badge grade-[abc]" data-testid="grade">BBB</span>', page.text)
    assert 'data-testid="product-risk">R2<' in page.text
    assert 'data-testid="rate">8.50%<' in page.text
    assert "100,000.00 CNY" in page.text
    reasons = re.findall(r'<li data-reason="([a-z-]+)">([^<]+)</li>', page.text)
    codes = [code for code, _ in reasons]
    assert "suitable" in codes
    assert "expected-return" in codes
    assert "grade" in codes
    assert dict(reasons)["grade"] == "grade BBB is one you chose"
    chinese = client.get("/investor/recommendations", headers=ZH)
    assert "信用等级 BBB 符合" in chinese.text
    assert "R2 在您的风险承受范围内" in chinese.text


# --- committing through the listing page --------------------------------------------------------------


def test_a_commitment_through_the_listing_form_holds_money_once_and_can_be_cancelled(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    verified: None,
    drain: Drain,
) -> None:
    deposit(client, tokens[INVESTOR], "20000.00")
    drain()
    before = available(client, tokens[INVESTOR])
    assert before == 2_000_000
    demand_id = list_demand(client, tokens, factory, settings, clock, amount="100000.00")
    log_in(client, INVESTOR)
    listing = client.get(f"/investor/listings/{demand_id}", headers=HTML)
    assert listing.status_code == 200
    assert 'data-testid="funding-box"' in listing.text
    assert 'data-testid="available-balance">20,000.00 CNY' in listing.text
    assert 'data-testid="funding-remaining">100,000.00 CNY' in listing.text
    assert '<progress value="0" max="10000000"' in listing.text
    assert 'data-testid="risk-warning"' not in listing.text  # cn-2016 asks for no warning
    key = key_of(listing.text)
    assert key != key_of(client.get(f"/investor/listings/{demand_id}", headers=HTML).text)

    form = {"amount": "5,000.00", "accept_agreement": "on", "idempotency_key": key}
    first = post(client, f"/investor/listings/{demand_id}/commitments", form, listing.text)
    assert first.status_code == 303, first.text
    assert first.headers["location"].startswith("/investor/commitments?done=committed&ref=CMT")
    # The same form sent again (a double click, a reload): replayed, not committed twice.
    second = post(client, f"/investor/listings/{demand_id}/commitments", form, listing.text)
    assert second.status_code == 303
    assert second.headers["location"] == first.headers["location"]
    rows = commitments(factory)
    assert len(rows) == 1
    assert rows[0].amount_minor == 500_000
    assert rows[0].status == "pending"
    assert available(client, tokens[INVESTOR]) == before - 500_000

    mine = client.get(first.headers["location"], headers=HTML)
    assert 'data-testid="flash"' in mine.text
    assert rows[0].ref in mine.text
    assert mine.text.count('data-testid="commitment"') == 1
    assert 'data-testid="commitment-amount">5,000.00 CNY' in mine.text
    assert 'data-status="pending"' in mine.text
    assert 'data-testid="cash-available">15,000.00 CNY' in mine.text
    assert 'data-testid="cash-held">5,000.00 CNY' in mine.text
    again = client.get(f"/investor/listings/{demand_id}", headers=HTML).text
    assert 'data-testid="available-balance">15,000.00 CNY' in again
    assert '<progress value="500000" max="10000000"' in again

    cancelled = post(client, f"/investor/commitments/{rows[0].id}/cancel", {}, mine.text)
    assert cancelled.status_code == 303
    after = client.get(cancelled.headers["location"], headers=HTML).text
    assert 'data-status="cancelled"' in after
    assert 'data-testid="cancel-commitment"' not in after
    assert available(client, tokens[INVESTOR]) == before
    # Cancelling again is refused beside the row; another investor learns nothing of it.
    refused = post(client, f"/investor/commitments/{rows[0].id}/cancel", {}, after)
    assert refused.status_code == 409
    assert 'data-testid="error-cancel"' in refused.text
    log_in(client, INSTITUTION)
    assert post(client, f"/investor/commitments/{rows[0].id}/cancel", {}).status_code == 404
    assert 'data-testid="no-commitments"' in client.get("/investor/commitments", headers=HTML).text


def test_refusals_name_their_rule_beside_the_amount_and_hold_nothing(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    verified: None,
    drain: Drain,
) -> None:
    deposit(client, tokens[INVESTOR], "1000.00")
    drain()
    demand_id = list_demand(client, tokens, factory, settings, clock, amount="100000.00")
    log_in(client, INVESTOR)
    page = client.get(f"/investor/listings/{demand_id}", headers=HTML).text
    path = f"/investor/listings/{demand_id}/commitments"

    def attempt(headers: Any = None, **data: str) -> Any:
        return post(client, path, {"idempotency_key": uuid.uuid4().hex, **data}, page, headers)

    unaccepted = attempt(amount="500.00")
    assert unaccepted.status_code == 422
    assert rule_of(unaccepted.text) == "agreement-not-accepted"
    assert error_of(unaccepted.text, "amount") == "Read and accept the loan agreement form first."
    assert 'value="500.00"' in unaccepted.text  # the amount is kept
    small = attempt(amount="50.00", accept_agreement="on")
    assert rule_of(small.text) == "below-minimum"
    assert error_of(small.text, "amount") == "The minimum commitment is 100.00 CNY."
    broke = attempt(amount="2000.00", accept_agreement="on")
    assert broke.status_code == 422
    assert rule_of(broke.text) == "over-balance"
    assert error_of(broke.text, "amount").startswith("Your available balance is 1,000.00 CNY")
    too_much = attempt(amount="100000.01", accept_agreement="on")
    assert rule_of(too_much.text) == "over-remaining"
    garbage = attempt(amount="lots", accept_agreement="on")
    assert garbage.status_code == 422
    assert error_of(garbage.text, "amount") == "Enter an amount, e.g. 5000.00."
    zero = attempt(amount="0", accept_agreement="on")
    assert error_of(zero.text, "amount") == "Enter an amount greater than zero."
    chinese = attempt(headers=ZH, amount="50.00", accept_agreement="on")
    assert rule_of(chinese.text) == "below-minimum"
    assert "100.00 CNY" in error_of(chinese.text, "amount")
    assert "minimum" not in error_of(chinese.text, "amount")
    assert commitments(factory) == []
    assert available(client, tokens[INVESTOR]) == 100_000


def test_under_eu_ecsp_the_risk_warning_is_shown_and_needed_above_the_threshold(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    verified: None,
    drain: Drain,
    app: FastAPI,
) -> None:
    ecsp = settings.model_copy(update={"policy_profile": "eu-ecsp"})
    app.state.settings = ecsp
    deposit(client, tokens[INVESTOR], "300000.00")
    drain()
    with unit_of_work(factory) as session:
        person = session.scalars(select(Investor).where(Investor.kind == "person")).first()
        assert person is not None
        person.net_worth_minor = 4_000_000  # 5 % is 2,000.00, above the 1,000.00 floor
    demand_id = list_demand(client, tokens, factory, ecsp, clock, amount="10000.00")
    log_in(client, INVESTOR)
    page = client.get(f"/investor/listings/{demand_id}", headers=HTML).text
    assert 'data-testid="risk-warning"' in page
    assert 'data-testid="knowledge-needed"' in page
    path = f"/investor/listings/{demand_id}/commitments"
    untested = post(
        client, path, {"amount": "500.00", "accept_agreement": "on", "idempotency_key": "k1"}, page
    )
    assert rule_of(untested.text) == "knowledge-test"

    test_page = client.get("/investor/knowledge-test", headers=HTML)
    assert 'data-testid="test-required"' in test_page.text
    right = {f"answers.{q.key}": q.answer for q in knowledge.QUESTIONS}
    assert post(client, "/investor/knowledge-test", right, test_page.text).status_code == 303
    page = client.get(f"/investor/listings/{demand_id}", headers=HTML).text
    assert 'data-testid="knowledge-needed"' not in page
    unwarned = post(
        client, path, {"amount": "2500.00", "accept_agreement": "on", "idempotency_key": "k2"}, page
    )
    assert rule_of(unwarned.text) == "risk-warning"
    assert "2,000.00" in error_of(unwarned.text, "amount")
    warned = post(
        client,
        path,
        {
            "amount": "2500.00",
            "accept_agreement": "on",
            "risk_warning_accepted": "on",
            "idempotency_key": "k3",
        },
        page,
    )
    assert warned.status_code == 303
    [row] = commitments(factory)
    assert row.risk_warning_accepted
    assert row.revocable_until is not None


def test_the_agreement_form_is_the_one_whose_hash_the_commitment_records(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    verified: None,
    drain: Drain,
) -> None:
    deposit(client, tokens[INVESTOR], "1000.00")
    drain()
    demand_id = list_demand(client, tokens, factory, settings, clock, amount="100000.00")
    log_in(client, INVESTOR)
    page = client.get(f"/investor/listings/{demand_id}", headers=HTML).text
    pdf = client.get(f"/investor/listings/{demand_id}/agreement-form.pdf", headers=HTML)
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    sha = hashlib.sha256(pdf.content).hexdigest()
    assert pdf.headers["x-agreement-sha256"] == sha == pdf.headers["x-agreement-recorded-sha256"]
    assert re.search(rf'data-testid="form-sha256"[^>]*>{sha}<', page)
    form = {"amount": "500.00", "accept_agreement": "on", "idempotency_key": key_of(page)}
    assert post(client, f"/investor/listings/{demand_id}/commitments", form, page).status_code == 303
    assert commitments(factory)[0].agreement_sha256 == sha
    assert (
        client.get(f"/investor/listings/{uuid.uuid4()}/agreement-form.pdf", headers=HTML).status_code == 404
    )


# --- knowledge test, portfolio --------------------------------------------------------------------------


def test_the_knowledge_test_page_records_answers_and_says_whether_it_is_required(
    client: TestClient, verified: None
) -> None:
    log_in(client, INVESTOR)
    page = client.get("/investor/knowledge-test", headers=HTML)
    assert 'data-testid="test-not-required"' in page.text
    assert 'data-testid="test-not-taken"' in page.text
    assert page.text.count('type="radio"') == sum(len(q.options) for q in knowledge.QUESTIONS)
    partial = post(client, "/investor/knowledge-test", {"answers.custody": "b"}, page.text)
    assert partial.status_code == 422
    assert error_of(partial.text, "answers.liquidity") == "Choose one of the options."
    wrong = {f"answers.{q.key}": "a" for q in knowledge.QUESTIONS}
    assert post(client, "/investor/knowledge-test", wrong, page.text).status_code == 303
    failed = client.get("/investor/knowledge-test", headers=HTML).text
    assert 'data-testid="test-failed"' in failed
    right = {f"answers.{q.key}": q.answer for q in knowledge.QUESTIONS}
    assert post(client, "/investor/knowledge-test", right, failed).status_code == 303
    passed = client.get("/investor/knowledge-test?done=taken", headers=HTML).text
    assert 'data-testid="test-passed"' in passed
    assert "5 of 5" in passed
    chinese = client.get("/investor/knowledge-test", headers=ZH).text
    assert "如果企业无法还款，您出借的资金会怎样？" in chinese


def test_the_portfolio_shows_holdings_cash_returns_charts_and_statements(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    verified: None,
    drain: Drain,
) -> None:
    deposit(client, tokens[INVESTOR], "60000.00")
    deposit(client, tokens[INSTITUTION], "60000.00")
    drain()
    demand_id = list_demand(client, tokens, factory, settings, clock, amount="100000.00")
    log_in(client, INVESTOR)
    empty = client.get("/investor/portfolio", headers=HTML)
    assert empty.status_code == 200
    assert 'data-testid="no-holdings"' in empty.text
    page = client.get(f"/investor/listings/{demand_id}", headers=HTML).text
    form = {"amount": "40000.00", "accept_agreement": "on", "idempotency_key": key_of(page)}
    assert post(client, f"/investor/listings/{demand_id}/commitments", form, page).status_code == 303
    response = client.post(
        "/api/v1/commitments",
        json={"demand_id": str(demand_id), "amount": "60000.00", "accept_agreement": True},
        headers={**bearer(tokens[INSTITUTION]), "Idempotency-Key": uuid.uuid4().hex},
    )
    assert response.status_code == 201
    assert response.json()["status"] == "posted"
    with factory() as session:
        assert session.scalars(select(FundingRound)).one().status == "funded"

    p = client.get("/investor/portfolio", headers=HTML)
    assert p.status_code == 200
    assert p.text.count('data-testid="holding"') == 1
    assert 'data-testid="outstanding">40,000.00 CNY' in p.text
    assert 'data-testid="cash-available">20,000.00 CNY' in p.text
    assert 'data-testid="expected-return">' in p.text
    assert "6.70%" in p.text
    assert re.search(r'data-testid="chart-grade">.*?<g data-testid="bar" data-key="BBB">', p.text, re.S)
    assert re.search(r'data-testid="chart-industry">.*?<g data-testid="bar" data-key="[A-T]">', p.text, re.S)
    assert "100.0%" in p.text
    csv = client.get("/investor/portfolio/statement.csv", headers=HTML)
    assert csv.status_code == 200
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.content.startswith("\ufeff".encode())
    assert b"40000.00" in csv.content
    pdf = client.get("/investor/portfolio/statement.pdf", headers=HTML)
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF")
    assert client.get("/investor/portfolio/statement.xls", headers=HTML).status_code == 404
    summary = client.get("/investor/investments/summary", headers=HTML).text
    assert 'data-testid="summary-outstanding">40,000.00 CNY' in summary
    dashboard = client.get("/investor", headers=HTML).text
    assert 'hx-get="/investor/investments/summary"' in dashboard


# --- language, other roles ------------------------------------------------------------------------------


def test_the_pages_speak_chinese(client: TestClient, verified: None) -> None:
    log_in(client, INVESTOR)
    labels = {
        "/investor/preferences": ("投资偏好", "每笔出借金额"),
        "/investor/recommendations": ("为您推荐",),
        "/investor/commitments": ("出借承诺",),
        "/investor/knowledge-test": ("投资知识测试",),
        "/investor/portfolio": ("投资组合", "待收本金"),
    }
    for path, words in labels.items():
        page = client.get(path, headers=ZH)
        assert page.status_code == 200, path
        for word in words:
            assert word in page.text, (path, word)


@pytest.mark.parametrize(
    "path",
    [
        "/investor/preferences",
        "/investor/recommendations",
        "/investor/commitments",
        "/investor/knowledge-test",
        "/investor/portfolio",
        "/investor/portfolio/statement.csv",
    ],
)
def test_other_roles_are_refused(client: TestClient, demo: dict[str, str], path: str) -> None:
    assert client.get(path, headers=HTML, follow_redirects=False).status_code == 303  # to the login
    log_in(client, SME)
    assert client.get(path, headers=HTML).status_code == 403
