"""The custody pages over HTTP: an investor pays in and takes out through the simulated bank (the
worker delivers its signed answers in-process while a frozen clock moves), a double submit pays
once, bad amounts are shown beside the field, statements download; the regulator's fund-flow
monitor, the alerts page, maker–checker adjustments, an agency verifying a bank account, and
every other role refused."""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yunrong import migrate
from yunrong.app import create_app
from yunrong.config import Settings
from yunrong.custody import accounts as custody_accounts
from yunrong.custody.tables import Instruction
from yunrong.db import make_engine, make_sessionmaker, unit_of_work
from yunrong.demo.seed import (
    AGENCY,
    DEMO_PASSWORD,
    INSTITUTION,
    OPERATOR,
    PERSON,
    REGULATOR_1,
    SME,
    seed_demo,
)
from yunrong.identity import repository as identity_repo
from yunrong.identity import service as identity
from yunrong.identity.model import Actor, Context, Role
from yunrong.kit.clock import FrozenClock, SystemClock
from yunrong.messaging.worker import deliver_due
from yunrong.parties import service as parties
from yunrong.parties.schemas import BankAccountIn
from yunrong.supervision.alerts import raise_alert

HTML = {"accept": "text/html"}
ZH = {**HTML, "accept-language": "zh-CN"}
OPERATOR_2 = "operator2@demo.yunrong.cn"
OPERATOR_2_PASSWORD = "second-operator-2026"
UNVERIFIED_NUMBER = "62220211000055554444"
UNVERIFIED_BANK = "China Merchants Bank 招商银行"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated demo world (no money yet), with a second operator and an investor's bank account
    that no agency has verified; each test works on its own copy."""
    path = tmp_path_factory.mktemp("custody-pages") / "template.db"
    url = f"sqlite:///{path}"
    migrate.upgrade(url)
    settings = Settings(database_url=url, demo=True)
    engine = make_engine(url)
    system = Context(actor=Actor.system("test"), clock=SystemClock())
    with unit_of_work(make_sessionmaker(engine)) as session:
        seed_demo(session, ctx=system, settings=settings, with_money=False)
        operator = identity_repo.user_by_email(session, OPERATOR.email)
        assert operator is not None
        identity.create_user(
            session,
            ctx=system,
            settings=settings,
            organisation_id=operator.organisation_id,
            email=OPERATOR_2,
            name="Qian Hao 钱浩",
            password=OPERATOR_2_PASSWORD,
            roles=frozenset({Role.OPERATOR_ADMIN}),
            enrol_totp=False,
        )
        custody_accounts.adjustment_suspense(session, system, "CNY")
        investor = _context(session, PERSON.email)
        assert investor.actor.organisation_id is not None
        parties.add_bank_account(
            session,
            ctx=investor,
            settings=settings,
            org_id=investor.actor.organisation_id,
            account=BankAccountIn(
                bank_name=UNVERIFIED_BANK,
                account_name=PERSON.name,
                account_number=UNVERIFIED_NUMBER,
            ),
        )
    engine.dispose()
    return path


def _context(session: Session, email: str) -> Context:
    user = identity_repo.user_by_email(session, email)
    assert user is not None
    org = identity_repo.organisation_by_id(session, user.organisation_id)
    assert org is not None
    return Context(actor=identity.actor_for(user, org, "test"), clock=SystemClock())


@dataclass
class World:
    client: TestClient
    clock: FrozenClock
    settings: Settings

    def drain(self) -> int:
        """Let time pass and the worker run until the outbox is quiet (the bank's answers included)."""
        factory = self.client.app.state.sessionmaker  # type: ignore[attr-defined]
        total = 0
        quiet = 0
        for _ in range(60):
            self.clock.advance(timedelta(seconds=30))
            done = deliver_due(factory, settings=self.settings, clock=self.clock, worker_id="page-test")
            total += done
            quiet = quiet + 1 if done == 0 else 0
            if quiet == 2:
                return total
        raise AssertionError("the outbox never went quiet")

    def instructions(self) -> int:
        with unit_of_work(self.client.app.state.sessionmaker) as session:  # type: ignore[attr-defined]
            return int(session.scalar(select(func.count()).select_from(Instruction)) or 0)


@pytest.fixture
def world(template: Path, tmp_path: Path) -> Iterator[World]:
    db = tmp_path / "custody.db"
    shutil.copyfile(template, db)
    settings = Settings(
        database_url=f"sqlite:///{db}",
        demo=True,
        mail_dir=tmp_path / "mail",
        upload_dir=tmp_path / "uploads",
        simbank_callback_mode="direct",
        simbank_failure_rate=0.0,
        simbank_duplicate_rate=0.0,
    )
    clock = FrozenClock(datetime.now(UTC).replace(microsecond=0))
    app = create_app(settings, clock=clock)
    with TestClient(app, base_url="http://testserver") as client:
        yield World(client, clock, settings)
    app.state.engine.dispose()


# --- helpers -----------------------------------------------------------------------------------------


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def log_in(client: TestClient, email: str, password: str = DEMO_PASSWORD) -> None:
    client.cookies.clear()
    page = client.get("/login", headers=HTML)
    response = client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": csrf_of(page.text)},
        headers=HTML,
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text


def form_of(html: str, testid: str) -> str:
    found = re.search(rf'<form[^>]*data-testid="{testid}".*?</form>', html, re.S)
    assert found, f"no form {testid}"
    return found.group(0)


def money_form(html: str, kind: str) -> dict[str, str]:
    """The hidden fields and the first bank account offered by the deposit or withdrawal form."""
    form = form_of(html, f"{kind}-form")
    key = re.search(r'name="idempotency_key" value="([0-9a-f]+)"', form)
    account = re.search(r'<option value="([0-9a-f-]{36})"', form)
    assert key, form
    assert account, form
    return {
        "csrf_token": csrf_of(form),
        "idempotency_key": key.group(1),
        f"{kind}.bank_account_id": account.group(1),
    }


def text_of(html: str, testid: str) -> str:
    """The text of the first element with this test id (up to its closing tag, tags removed)."""
    found = re.search(rf'<(\w+)[^>]*data-testid="{re.escape(testid)}"[^>]*>(.*?)</\1>', html, re.S)
    assert found, f"no {testid} on the page"
    return " ".join(unescape(re.sub(r"<[^>]+>", "", found.group(2))).split())


def move(client: TestClient, kind: str, amount: str, headers: dict[str, str] = HTML) -> tuple[int, str]:
    page = client.get("/investor/money", headers=headers)
    data = {**money_form(page.text, kind), f"{kind}.amount": amount}
    response = client.post(f"/investor/money/{kind}", data=data, headers=headers)
    return response.status_code, response.text


def deposit_and_confirm(world: World, amount: str) -> None:
    status, _ = move(world.client, "deposit", amount)
    assert status == 200
    world.drain()


# --- the investor's money -----------------------------------------------------------------------------


def test_a_deposit_is_pending_until_the_bank_confirms_it_then_it_is_available(world: World) -> None:
    client = world.client
    log_in(client, PERSON.email)
    empty = client.get("/investor/money", headers=HTML)
    assert empty.status_code == 200
    assert 'data-testid="instructions-empty"' in empty.text
    assert 'hx-trigger="every 3s"' not in empty.text  # nothing pending: no polling

    page = client.get("/investor/money", headers=HTML)
    response = client.post(
        "/investor/money/deposit",
        data={**money_form(page.text, "deposit"), "deposit.amount": "1,000.00"},
        headers=HTML,
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/investor/money?done=deposit"
    pending = client.get(response.headers["location"], headers=HTML)
    assert 'data-testid="flash"' in pending.text
    assert text_of(pending.text, "instruction-status") == "Pending at the bank"
    assert text_of(pending.text, "pending-in") == "1,000.00 CNY"
    assert text_of(pending.text, "available") == "0.00 CNY"
    assert 'hx-get="/investor/money/live" hx-trigger="every 3s"' in pending.text

    assert world.drain() > 0
    live = client.get("/investor/money/live", headers={**HTML, "hx-request": "true"})
    assert live.status_code == 200
    assert "<html" not in live.text  # a fragment, swapped into the page
    assert text_of(live.text, "instruction-status") == "Confirmed"
    assert text_of(live.text, "available") == "1,000.00 CNY"
    assert text_of(live.text, "pending-in") == "0.00 CNY"
    assert "SIM" in live.text  # the bank's reference
    assert 'hx-trigger="every 3s"' not in live.text  # settled: the poll stops
    summary = client.get("/investor/money/summary", headers=HTML)
    assert text_of(summary.text, "summary-available") == "1,000.00 CNY"
    zh = client.get("/investor/money", headers=ZH)
    assert "已确认" in zh.text
    assert "可用余额" in zh.text


def test_a_withdrawal_is_held_then_paid_and_too_much_is_refused_beside_the_amount(world: World) -> None:
    client = world.client
    log_in(client, PERSON.email)
    deposit_and_confirm(world, "1000.00")

    status, text = move(client, "withdrawal", "400.00")
    assert status == 200
    assert text_of(text, "held") == "400.00 CNY"
    assert text_of(text, "available") == "600.00 CNY"
    world.drain()
    settled = client.get("/investor/money", headers=HTML).text
    assert text_of(settled, "held") == "0.00 CNY"
    assert text_of(settled, "available") == "600.00 CNY"
    assert settled.count('data-status="confirmed"') == 2

    before = world.instructions()
    status, text = move(client, "withdrawal", "600.01")
    assert status == 409
    assert text_of(text, "error-withdrawal.amount") == "Not enough available money for this withdrawal."
    assert 'value="600.01"' in text  # the form is filled in again
    assert world.instructions() == before


def test_submitting_the_same_form_twice_pays_once(world: World) -> None:
    client = world.client
    log_in(client, PERSON.email)
    page = client.get("/investor/money", headers=HTML)
    data = {**money_form(page.text, "deposit"), "deposit.amount": "250.00"}
    first = client.post("/investor/money/deposit", data=data, headers=HTML, follow_redirects=False)
    second = client.post("/investor/money/deposit", data=data, headers=HTML, follow_redirects=False)
    assert first.status_code == second.status_code == 303
    assert world.instructions() == 1
    world.drain()
    text = client.get("/investor/money", headers=HTML).text
    assert text_of(text, "available") == "250.00 CNY"
    assert text.count("data-status=") == 1

    # The same key with another amount is another request: refused, nothing moves.
    changed = client.post("/investor/money/deposit", data={**data, "deposit.amount": "999.00"}, headers=HTML)
    assert changed.status_code == 409
    assert "already used for a different request" in text_of(changed.text, "form-error")
    assert world.instructions() == 1
    # A freshly rendered form carries a new key.
    assert (
        money_form(client.get("/investor/money", headers=HTML).text, "deposit")["idempotency_key"]
        != (data["idempotency_key"])
    )


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("", "Enter an amount, e.g. 1250000.00."),
        ("abc", "Enter an amount, e.g. 1250000.00."),
        ("10.001", "Enter an amount, e.g. 1250000.00."),
        ("0", "Enter an amount greater than zero."),
        ("-5", "Enter an amount greater than zero."),
        ("1e400", "Out of range."),
    ],
)
def test_bad_amounts_are_shown_beside_the_field_and_nothing_moves(
    world: World, amount: str, message: str
) -> None:
    log_in(world.client, PERSON.email)
    status, text = move(world.client, "deposit", amount)
    assert status == 422
    assert text_of(text, "error-deposit.amount") == message
    assert 'data-testid="error-withdrawal.amount"' not in text
    assert world.instructions() == 0


def test_bad_amount_in_chinese(world: World) -> None:
    log_in(world.client, PERSON.email)
    status, text = move(world.client, "deposit", "12.345", headers=ZH)
    assert status == 422
    assert text_of(text, "error-deposit.amount") == "请输入金额，例如 1250000.00。"


def test_an_unverified_account_is_listed_as_awaiting_and_refused_for_money(world: World) -> None:
    client = world.client
    log_in(client, PERSON.email)
    page = client.get("/investor/money", headers=HTML).text
    unverified = re.search(r'data-testid="unverified-account">(.*?)</li>', page, re.S)
    assert unverified
    assert "Awaiting verification" in unverified.group(1)
    assert UNVERIFIED_NUMBER[-4:] in unverified.group(1)
    assert UNVERIFIED_NUMBER not in page  # masked
    form = form_of(page, "deposit-form")
    assert UNVERIFIED_NUMBER[-4:] not in form  # only verified accounts are offered

    with unit_of_work(client.app.state.sessionmaker) as session:  # type: ignore[attr-defined]
        from yunrong.parties.tables import BankAccount

        account_id = session.scalars(
            select(BankAccount.id).where(BankAccount.bank_name == UNVERIFIED_BANK)
        ).one()
    data = {
        **money_form(page, "deposit"),
        "deposit.amount": "10.00",
        "deposit.bank_account_id": str(account_id),
    }
    response = client.post("/investor/money/deposit", data=data, headers=HTML)
    assert response.status_code == 422
    assert text_of(response.text, "error-deposit.bank_account_id") == "not verified"
    other = {**data, "deposit.bank_account_id": str(uuid.uuid4())}
    response = client.post("/investor/money/deposit", data=other, headers=HTML)
    assert response.status_code == 404
    assert text_of(response.text, "error-deposit.bank_account_id") == (
        "Choose one of your verified bank accounts."
    )
    assert world.instructions() == 0


def test_statements_download_as_csv_and_pdf_only_for_their_owner(world: World) -> None:
    client = world.client
    log_in(client, PERSON.email)
    deposit_and_confirm(world, "1234.56")
    page = client.get("/investor/money", headers=HTML).text
    csv_link = re.search(r'href="(/statements/[0-9a-f-]+\.csv)"', page)
    pdf_link = re.search(r'href="(/statements/[0-9a-f-]+\.pdf)"', page)
    assert csv_link
    assert pdf_link
    csv = client.get(csv_link.group(1))
    assert csv.status_code == 200
    assert csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in csv.headers["content-disposition"]
    assert "1234.56" in csv.content.decode("utf-8-sig")
    pdf = client.get(pdf_link.group(1))
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF")

    log_in(client, INSTITUTION.email)  # another investor learns nothing
    assert client.get(csv_link.group(1), headers=HTML).status_code == 404
    assert client.get(f"/statements/{uuid.uuid4()}.csv", headers=HTML).status_code == 404
    assert client.get(csv_link.group(1).replace(".csv", ".xls"), headers=HTML).status_code == 404
    log_in(client, REGULATOR_1.email)  # the regulator sees every account
    assert client.get(csv_link.group(1)).status_code == 200


# --- regulator and operator ----------------------------------------------------------------------------


def test_the_fund_flow_monitor_shows_escrow_by_class_a_chart_and_the_ledger_checks(world: World) -> None:
    client = world.client
    log_in(client, PERSON.email)
    move(client, "deposit", "300.00")
    log_in(client, REGULATOR_1.email)
    waiting = client.get("/regulator/funds", headers=HTML)
    assert waiting.status_code == 200
    assert re.search(r'data-testid="pending".*?Deposit.*?300\.00 CNY', waiting.text, re.S)

    world.drain()
    page = client.get("/regulator/funds", headers=HTML).text
    assert 'data-testid="pending-empty"' in page
    escrow = re.search(r'data-testid="class-escrow_cash".*?</tr>', page, re.S)
    assert escrow
    assert "Escrow cash at the custodian" in escrow.group(0)
    assert "300.00 CNY" in escrow.group(0)
    assert "<svg" in page
    assert 'data-testid="bar-in"' in page
    assert 'data-testid="bar-out"' not in page
    assert "Inflow 300.00 CNY" in page
    assert text_of(page, "ledger-result") == "Every invariant holds."
    assert page.count("check-ok") == 7
    assert "<script" not in page.split("</head>", 1)[1]  # the chart is drawn on the server
    assert "存管银行托管资金" in client.get("/regulator/funds", headers=ZH).text

    log_in(client, OPERATOR.email)
    assert "Escrow cash at the custodian" in client.get("/operator/funds", headers=HTML).text


def test_alerts_are_listed_for_the_regulator_and_linked_from_the_monitor(world: World) -> None:
    client = world.client
    with unit_of_work(client.app.state.sessionmaker) as session:  # type: ignore[attr-defined]
        raise_alert(
            session,
            ctx=Context(actor=Actor.system("test"), clock=world.clock),
            kind="bank.contradiction",
            severity="high",
            subject_en="The bank said confirmed and then failed for BI-TEST",
            subject_zh="银行对指令 BI-TEST 先回报confirmed后回报failed",
            detail={},
        )
    log_in(client, REGULATOR_1.email)
    alerts = client.get("/alerts", headers=HTML)
    assert alerts.status_code == 200
    assert "The bank said confirmed and then failed for BI-TEST" in alerts.text
    assert "银行对指令 BI-TEST" in client.get("/alerts", headers=ZH).text
    funds = client.get("/regulator/funds", headers=HTML).text
    assert re.search(r'data-testid="open-alerts".*?href="/alerts"', funds, re.S)


def _propose(client: TestClient, legs: list[tuple[str, str, str]], reason: str) -> tuple[int, str]:
    page = client.get("/operator/adjustments", headers=HTML)
    data = {"csrf_token": csrf_of(page.text), "reason": reason}
    for i, (code, side, amount) in enumerate(legs):
        data.update({f"legs.{i}.account_code": code, f"legs.{i}.side": side, f"legs.{i}.amount": amount})
    response = client.post("/operator/adjustments", data=data, headers=HTML)
    return response.status_code, response.text


def _decide(client: TestClient, ref: str, decision: str, reason: str) -> tuple[int, str]:
    page = client.get("/operator/adjustments", headers=HTML).text
    section = re.search(rf'data-testid="adjustment-{ref}".*?</section>', page, re.S)
    assert section
    action = re.search(r'action="(/operator/adjustments/[0-9a-f-]+/decision)"', section.group(0))
    assert action
    response = client.post(
        action.group(1),
        data={"csrf_token": csrf_of(page), "decision": decision, "decision_reason": reason},
        headers=HTML,
    )
    return response.status_code, response.text


def test_adjustments_need_a_second_operator(world: World) -> None:
    client = world.client
    log_in(client, PERSON.email)
    deposit_and_confirm(world, "100.00")
    page = client.get("/investor/money", headers=HTML).text
    investor_code = re.search(r"<code>(investor_available:[^<]+)</code>", page)
    assert investor_code
    code = unescape(investor_code.group(1))
    suspense = "adjustment_suspense:CNY:platform"

    log_in(client, OPERATOR.email)
    status, text = _propose(client, [(suspense, "D", "2.50"), (code, "C", "2.40")], "unbalanced")
    assert status == 422
    assert "debits 250 and credits 240" in text_of(text, "error-legs")
    status, text = _propose(client, [("no-such-account", "D", "2.50"), (code, "C", "2.5x")], "bad")
    assert status == 422
    assert text_of(text, "error-legs.1.amount") == "Enter an amount, e.g. 1250000.00."
    status, text = _propose(client, [("no-such-account", "D", "2.50"), (code, "C", "2.50")], "bad")
    assert status == 422
    assert text_of(text, "error-legs.0.account_code") == "no such account"
    status, text = _propose(client, [(suspense, "D", "2.50")], "")
    assert status == 422
    assert text_of(text, "error-legs") == "An adjustment has at least two legs."
    assert text_of(text, "error-reason") == "Required."

    status, text = _propose(
        client, [(suspense, "D", "2.50"), (code, "C", "2.50")], "interest for a delayed deposit"
    )
    assert status == 200
    assert 'data-testid="flash"' in text
    ref = re.search(r'data-testid="adjustment-(ADJ-[\w-]+)"', text)
    assert ref
    assert 'data-testid="maker-note"' in text
    status, text = _decide(client, ref.group(1), "approve", "looks right")
    assert status == 409
    assert "another operator must decide it" in text_of(text, "decision-error")
    status, text = _decide(client, ref.group(1), "approve", "")
    assert status == 422
    assert text_of(text, "error-decision_reason") == "Required."

    log_in(client, OPERATOR_2, OPERATOR_2_PASSWORD)
    assert 'data-testid="maker-note"' not in client.get("/operator/adjustments", headers=HTML).text
    status, text = _decide(client, ref.group(1), "approve", "checked against the bank's letter")
    assert status == 200
    section = re.search(rf'data-testid="adjustment-{ref.group(1)}".*?</section>', text, re.S)
    assert section
    assert text_of(section.group(0), "adjustment-status") == "Approved"
    assert 'data-testid="decision-form"' not in section.group(0)

    log_in(client, PERSON.email)
    assert text_of(client.get("/investor/money", headers=HTML).text, "available") == "102.50 CNY"


# --- agency: bank accounts -------------------------------------------------------------------------------


def test_an_authentication_agency_verifies_a_bank_account_with_evidence(world: World) -> None:
    client = world.client
    log_in(client, AGENCY.email)
    page = client.get("/agency/bank-accounts", headers=HTML)
    assert page.status_code == 200
    rows = re.findall(r'<tr data-testid="account-([0-9a-f-]+)">(.*?)</tr>', page.text, re.S)
    row = next((r for r in rows if UNVERIFIED_BANK in unescape(r[1])), None)
    assert row, "the investor's new account is not listed"
    assert PERSON.organisation in unescape(row[1])
    assert UNVERIFIED_NUMBER[-4:] in row[1]
    assert UNVERIFIED_NUMBER not in page.text
    action = f"/agency/bank-accounts/{row[0]}/verification"
    empty = client.post(action, data={"csrf_token": csrf_of(page.text), "evidence": " "}, headers=HTML)
    assert empty.status_code == 422
    assert text_of(empty.text, "error-evidence") == "required"
    done = client.post(
        action,
        data={"csrf_token": csrf_of(page.text), "evidence": "called the bank; letter on file"},
        headers=HTML,
        follow_redirects=False,
    )
    assert done.status_code == 303
    after = client.get(done.headers["location"], headers=HTML).text
    assert 'data-testid="flash"' in after
    assert row[0] not in after
    missing = client.post(
        f"/agency/bank-accounts/{uuid.uuid4()}/verification",
        data={"csrf_token": csrf_of(page.text), "evidence": "x"},
        headers=HTML,
    )
    assert missing.status_code == 404

    log_in(client, PERSON.email)
    money = client.get("/investor/money", headers=HTML).text
    assert 'data-testid="unverified-account"' not in money
    assert UNVERIFIED_NUMBER[-4:] in form_of(money, "deposit-form")


# --- who may see what ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("email", "path"),
    [
        (REGULATOR_1.email, "/investor/money"),
        (SME.email, "/investor/money"),
        (OPERATOR.email, "/investor/money/live"),
        (PERSON.email, "/regulator/funds"),
        (PERSON.email, "/operator/funds"),
        (REGULATOR_1.email, "/operator/funds"),
        (OPERATOR.email, "/regulator/funds"),
        (PERSON.email, "/alerts"),
        (AGENCY.email, "/alerts"),
        (PERSON.email, "/operator/adjustments"),
        (REGULATOR_1.email, "/operator/adjustments"),
        (PERSON.email, "/agency/bank-accounts"),
        (OPERATOR.email, "/agency/bank-accounts"),
    ],
)
def test_other_roles_get_the_403_page(world: World, email: str, path: str) -> None:
    log_in(world.client, email)
    response = world.client.get(path, headers=HTML)
    assert response.status_code == 403
    assert "Permission denied" in response.text


def test_posts_of_other_roles_and_without_a_session_are_refused(world: World) -> None:
    client = world.client
    log_in(client, REGULATOR_1.email)
    page = client.get("/regulator/funds", headers=HTML)
    token = csrf_of(page.text)
    for path in ("/investor/money/deposit", "/investor/money/withdrawal", "/operator/adjustments"):
        response = client.post(path, data={"csrf_token": token, "idempotency_key": "k"}, headers=HTML)
        assert response.status_code == 403, path
    assert world.instructions() == 0
    client.cookies.clear()
    anonymous = client.get("/investor/money", headers=HTML, follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/login?next=")


def test_the_navigation_and_dashboards_link_the_new_pages(world: World) -> None:
    client = world.client
    log_in(client, PERSON.email)
    dashboard = client.get("/investor", headers=HTML).text
    assert 'href="/investor/money"' in dashboard
    assert 'hx-get="/investor/money/summary"' in dashboard
    log_in(client, REGULATOR_1.email)
    dashboard = client.get("/regulator", headers=HTML).text
    assert 'href="/regulator/funds"' in dashboard
    assert 'href="/alerts"' in dashboard
    log_in(client, OPERATOR.email)
    dashboard = client.get("/operator", headers=HTML).text
    assert 'href="/operator/funds"' in dashboard
    assert 'href="/operator/adjustments"' in dashboard
    log_in(client, AGENCY.email)
    assert 'href="/agency/bank-accounts"' in client.get("/agency", headers=HTML).text
