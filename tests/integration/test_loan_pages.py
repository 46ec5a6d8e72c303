"""The pages of steps 5 and 6 over HTTP, on both databases: the enterprise follows its crowd round,
chooses partial funding, accepts the funded loan's agreement by its hash and watches the custodian
pay it out; a bank offers on a bank-loan demand (refusals beside their fields), the enterprise
accepts the offer in its demand page, both accept the agreement and the loan is paid out. Another
enterprise or bank gets 404; other portals 403."""

from __future__ import annotations

import contextlib
import hashlib
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from html import unescape
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import bearer
from tests.integration.investing.conftest import (  # noqa: F401 - fixtures used by name
    INSTITUTION,
    INVESTOR,
    SME,
    Drain,
    deposit,
    drain,
    list_demand,
    verified,
)
from tests.integration.investing.test_bank_offers import _fund_bank
from tests.integration.verification.demand_data import demand_body
from yunrong.app import create_app
from yunrong.config import Settings
from yunrong.custody.tables import Instruction
from yunrong.db import unit_of_work
from yunrong.demands.tables import Demand
from yunrong.identity import service as identity
from yunrong.identity.model import Actor, Context, OrgType, Role
from yunrong.investing.tables import BankOffer, FundingRound, Loan
from yunrong.kit.clock import FrozenClock
from yunrong.parties import service as parties
from yunrong.web import loan_pages

HTML = {"accept": "text/html"}
BANK = "bank@demo.yunrong.cn"
DEMO_PASSWORD_OTHER = "loan-pages-password-2026"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The simulated bank answers in-process and never fails (as in tests/integration/investing).
    return settings.model_copy(
        update={"simbank_callback_mode": "direct", "simbank_failure_rate": 0.0, "simbank_duplicate_rate": 0.0}
    )


@pytest.fixture
def app(settings: Settings, clock: FrozenClock, engine: Engine) -> FastAPI:
    """The application, with these pages mounted if the pages router does not include them yet."""
    application = create_app(settings, clock=clock, engine=engine)
    paths = {getattr(route, "path", None) for route in application.router.routes}
    if "/enterprise/loans/{loan_id}" not in paths:
        application.include_router(loan_pages.router)
    return application


Browse = Callable[[str, str], TestClient]


@pytest.fixture
def browse(app: FastAPI) -> Iterator[Browse]:
    """A signed-in browser (its own cookie jar) per person."""
    with contextlib.ExitStack() as stack:

        def open_as(email: str, password: str = "") -> TestClient:
            from yunrong.demo.seed import DEMO_PASSWORD

            client = stack.enter_context(TestClient(app))
            page = client.get("/login", headers=HTML)
            response = client.post(
                "/login",
                data={
                    "email": email,
                    "password": password or DEMO_PASSWORD,
                    "csrf_token": csrf_of(page.text),
                },
                headers=HTML,
                follow_redirects=False,
            )
            assert response.status_code == 303, response.text
            return client

        yield open_as


# --- helpers ---------------------------------------------------------------------------------------


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def post(client: TestClient, path: str, data: dict[str, str], page: str) -> Any:
    return client.post(path, data={**data, "csrf_token": csrf_of(page)}, headers=HTML, follow_redirects=False)


def text_of(html: str, testid: str) -> str:
    found = re.search(rf'data-testid="{re.escape(testid)}"[^>]*>(.*?)</', html, re.S)
    assert found, f"nothing marked {testid}"
    return unescape(re.sub(r"<[^>]+>", "", found.group(1))).strip()


def error_of(html: str, field: str) -> str:
    return text_of(html, f"error-{field}")


def hidden(html: str, name: str, form_testid: str) -> str:
    form = re.search(rf'<form[^>]*data-testid="{form_testid}".*?</form>', html, re.S)
    assert form, f"no form {form_testid}"
    found = re.search(rf'name="{name}" value="([^"]*)"', form.group(0))
    assert found, f"no {name} in {form_testid}"
    return found.group(1)


def commit(client: TestClient, token: str, demand_id: uuid.UUID, amount: str) -> Any:
    response = client.post(
        "/api/v1/commitments",
        json={"demand_id": str(demand_id), "amount": amount, "accept_agreement": True},
        headers={**bearer(token), "Idempotency-Key": uuid.uuid4().hex},
    )
    assert response.status_code == 201, response.text
    return response.json()


def other_party(
    factory: sessionmaker[Session], settings: Settings, clock: FrozenClock, org_type: OrgType, role: Role
) -> str:
    """Another admitted organisation with one user; returns the user's e-mail."""
    ctx = Context(actor=Actor.system("test"), clock=clock, request_id="test")
    tag = uuid.uuid4().hex[:6]
    email = f"{role.value}-{tag}@loan-pages.example.cn"
    with unit_of_work(factory) as session:
        org = identity.create_organisation(
            session, ctx=ctx, org_type=org_type, name=f"Other {role.value} {tag}"
        )
        identity.create_user(
            session,
            ctx=ctx,
            settings=settings,
            organisation_id=org.id,
            email=email,
            name="Other",
            password=DEMO_PASSWORD_OTHER,
            roles=frozenset({role}),
            enrol_totp=False,
        )
        qualification = parties.open_qualification(session, ctx=ctx, org=org)
        qualification.status = "approved"
        qualification.updated_at = clock.now()
    return email


def list_bank_demand(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    clock: FrozenClock,
    **overrides: Any,
) -> uuid.UUID:
    """A bank-loan demand drafted through the API, then listed directly (as tests/integration/investing
    does: verification and listing have their own tests)."""
    body = demand_body(product="bank_loan", project_key=f"bank-{uuid.uuid4().hex[:8]}", **overrides)
    draft = client.post("/api/v1/demands", json=body, headers=bearer(tokens[SME]))
    assert draft.status_code == 201, draft.text
    demand_id = uuid.UUID(draft.json()["id"])
    with unit_of_work(factory) as session:
        demand = session.get(Demand, demand_id)
        assert demand is not None
        demand.status = "listed"
        demand.listed_at = clock.now()
    return demand_id


# --- P2P: the round, the agreement, the payout -----------------------------------------------------


def test_the_enterprise_follows_its_round_accepts_the_agreement_and_sees_the_payout(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    verified: None,  # noqa: F811
    drain: Drain,  # noqa: F811
    browse: Browse,
) -> None:
    deposit(client, tokens[INVESTOR], "200000.00")
    deposit(client, tokens[INSTITUTION], "500000.00")
    drain()
    demand_id = list_demand(client, tokens, factory, settings, clock, amount="300000.00")
    sme = browse(SME, "")

    page = sme.get(f"/enterprise/demands/{demand_id}", headers=HTML)
    assert page.status_code == 200, page.text
    assert text_of(page.text, "round-status") == "Open for commitments"
    assert text_of(page.text, "committed").startswith("0.00 CNY")
    assert 'data-testid="funding-progress"' in page.text
    commit(client, tokens[INVESTOR], demand_id, "120000.00")
    page = sme.get(f"/enterprise/demands/{demand_id}", headers=HTML)
    assert text_of(page.text, "committed") == "120,000.00 CNY (40.0%)"
    assert text_of(page.text, "commitments") == "1"
    assert re.search(r'data-testid="progress-filled"', page.text)
    assert 'width="240.0"' in page.text  # 40 % of the 600-wide bar
    commit(client, tokens[INSTITUTION], demand_id, "180000.00")

    page = sme.get(f"/enterprise/demands/{demand_id}", headers=HTML)
    assert text_of(page.text, "round-status") == "Funded"
    with factory() as session:
        loan = session.scalars(select(Loan).where(Loan.demand_id == demand_id)).one()
        loan_id, ref, fee = loan.id, loan.ref, loan.fee_minor
    assert f'href="/enterprise/loans/{loan_id}"' in page.text

    listing = sme.get("/enterprise/loans", headers=HTML)
    assert listing.status_code == 200
    assert f'data-testid="loan-{ref}"' in listing.text
    assert 'href="/enterprise/loans"' in listing.text  # the navigation item
    page = sme.get(f"/enterprise/loans/{loan_id}", headers=HTML)
    assert page.status_code == 200, page.text
    assert text_of(page.text, "principal") == "300,000.00 CNY"
    assert text_of(page.text, "loan-status-head") == "Awaiting the agreement"
    assert "2 note(s)" in text_of(page.text, "lenders")
    assert text_of(page.text, "net") == f"{(30_000_000 - fee) / 100:,.2f} CNY"
    shown = text_of(page.text, "agreement-sha256")
    pdf = sme.get(f"/loans/{loan_id}/agreement.pdf")
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF")
    assert hashlib.sha256(pdf.content).hexdigest() == shown == pdf.headers["X-Agreement-SHA256"]
    assert 'data-testid="payout-waiting"' in page.text
    assert "hx-get" not in page.text.split('id="loan-live"')[1].split(">")[0]  # nothing to poll yet

    # Refusals beside the fields; nothing is accepted.
    accept_path = f"/enterprise/loans/{loan_id}/agreement/acceptance"
    wrong = post(sme, accept_path, {"sha256": "0" * 64, "read": "yes"}, page.text)
    assert wrong.status_code == 422, wrong.text
    assert error_of(wrong.text, "sha256") == "does not match the agreement's hash"
    absent = post(sme, accept_path, {"read": "yes"}, page.text)
    assert absent.status_code == 422
    assert error_of(absent.text, "sha256") == "Required."
    unread = post(sme, accept_path, {"sha256": shown}, page.text)
    assert unread.status_code == 422
    assert error_of(unread.text, "read") == "Tick the box to confirm that you have read the agreement."
    with factory() as session:
        assert session.get(Loan, loan_id).status == "contracting"  # type: ignore[union-attr]

    # Another enterprise learns nothing; an investor's portal is not the enterprise's.
    stranger = browse(
        other_party(factory, settings, clock, OrgType.ENTERPRISE, Role.ENTERPRISE_ADMIN), DEMO_PASSWORD_OTHER
    )
    assert stranger.get(f"/enterprise/loans/{loan_id}", headers=HTML).status_code == 404
    assert stranger.get(f"/enterprise/loans/{loan_id}/live", headers=HTML).status_code == 404
    assert stranger.get(f"/loans/{loan_id}/agreement.pdf", headers=HTML).status_code == 404
    other_page = stranger.get("/enterprise/loans", headers=HTML)
    assert ref not in other_page.text
    refused = post(stranger, accept_path, {"sha256": shown, "read": "yes"}, other_page.text)
    assert refused.status_code == 404
    investor = browse(INVESTOR, "")
    assert investor.get(f"/enterprise/loans/{loan_id}", headers=HTML).status_code == 403
    assert sme.get(f"/enterprise/loans/{uuid.uuid4()}", headers=HTML).status_code == 404
    assert sme.get("/enterprise/loans/not-an-id", headers=HTML).status_code == 404

    accepted = post(sme, accept_path, {"sha256": shown, "read": "yes"}, page.text)
    assert accepted.status_code == 303, accepted.text
    page = sme.get(accepted.headers["location"], headers=HTML)
    assert text_of(page.text, "flash").startswith("You accepted the agreement.")
    assert text_of(page.text, "loan-status") == "Being paid out"
    assert text_of(page.text, "payout-status") == "Pending at the bank"
    assert text_of(page.text, "payout-amount") == f"{(30_000_000 - fee) / 100:,.2f} CNY"
    assert f'hx-get="/enterprise/loans/{loan_id}/live"' in page.text
    assert 'data-testid="accept-form"' not in page.text
    assert 'data-testid="you-accepted"' in page.text
    again = post(sme, accept_path, {"sha256": shown, "read": "yes"}, page.text)
    assert again.status_code == 303  # a second submit of the same form changes nothing

    drain()  # the custodian confirms the payout
    live = sme.get(f"/enterprise/loans/{loan_id}/live", headers=HTML)
    assert live.status_code == 200
    assert text_of(live.text, "payout-status") == "Confirmed"
    assert text_of(live.text, "loan-status") == "Active"
    assert 'data-testid="payout-confirmed"' in live.text
    assert "hx-get" not in live.text  # polling stops
    with factory() as session:
        row = session.get(Loan, loan_id)
        assert row is not None
        assert row.status == "active"
        instruction = session.get(Instruction, row.payout_instruction_id)
        assert instruction is not None
        assert instruction.status == "confirmed"
    chinese = sme.get(f"/enterprise/loans/{loan_id}", headers={**HTML, "accept-language": "zh-CN"})
    assert chinese.status_code == 200
    assert 'lang="zh-CN"' in chinese.text


def test_partial_funding_is_chosen_on_the_demand_page_or_explained(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    verified: None,  # noqa: F811
    browse: Browse,
) -> None:
    sme = browse(SME, "")
    partial = list_demand(client, tokens, factory, settings, clock, min_funding="200000.00")
    page = sme.get(f"/enterprise/demands/{partial}", headers=HTML)
    assert 'data-testid="partial-submit"' in page.text
    path = f"/enterprise/demands/{partial}/partial-funding"
    done = post(sme, path, {"accept_partial": "yes"}, page.text)
    assert done.status_code == 303, done.text
    page = sme.get(done.headers["location"], headers=HTML)
    assert text_of(page.text, "flash") == "Partial funding above your stated minimum is accepted."
    assert re.search(r'name="accept_partial" value="yes" checked', page.text)
    with factory() as session:
        assert (
            session.scalars(select(FundingRound).where(FundingRound.demand_id == partial))
            .one()
            .accept_partial
        )
    undone = post(sme, path, {}, page.text)
    assert undone.status_code == 303
    with factory() as session:
        row = session.scalars(select(FundingRound).where(FundingRound.demand_id == partial)).one()
        assert row.accept_partial is False

    whole = list_demand(client, tokens, factory, settings, clock)  # states no minimum
    page = sme.get(f"/enterprise/demands/{whole}", headers=HTML)
    assert "states no least amount" in text_of(page.text, "partial-not-possible")
    assert 'data-testid="partial-submit"' not in page.text
    refused = post(sme, f"/enterprise/demands/{whole}/partial-funding", {"accept_partial": "yes"}, page.text)
    assert refused.status_code == 422
    assert error_of(refused.text, "accept_partial") == "the demand has no minimum"
    stranger = browse(
        other_party(factory, settings, clock, OrgType.ENTERPRISE, Role.ENTERPRISE_ADMIN), DEMO_PASSWORD_OTHER
    )
    other_page = stranger.get("/enterprise/loans", headers=HTML)
    assert post(stranger, path, {"accept_partial": "yes"}, other_page.text).status_code == 404
    assert stranger.get(f"/enterprise/demands/{partial}", headers=HTML).status_code == 404


# --- bank loans: the offer, its acceptance, both agreements -------------------------------------------


OFFER = {
    "amount": "300000.00",
    "annual_rate_percent": "6.5",
    "term_months": "12",
    "repayment_method": "equal_instalment",
    "conditions": "A first-ranking pledge over the refrigeration units.",
}


def test_a_bank_offers_in_its_portal_and_the_enterprise_accepts_in_its_own(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    verified: None,  # noqa: F811
    drain: Drain,  # noqa: F811
    browse: Browse,
) -> None:
    _fund_bank(client, tokens, factory, clock, drain, "400000.00", 40_000_000)
    demand_id = list_bank_demand(client, tokens, factory, clock, min_funding="200000.00")
    bank = browse(BANK, "")
    listing = bank.get("/bank/demands", headers=HTML)
    assert listing.status_code == 200, listing.text
    with factory() as session:
        demand = session.get(Demand, demand_id)
        assert demand is not None
        demand_ref = demand.ref
    assert f'data-testid="bank-demand-{demand_ref}"' in listing.text
    assert 'href="/bank/offers"' in listing.text
    assert 'href="/bank/demands"' in listing.text
    detail = bank.get(f"/bank/demands/{demand_id}", headers=HTML)
    assert detail.status_code == 200
    assert text_of(detail.text, "grade") == "Not decided"
    form = bank.get(f"/bank/demands/{demand_id}/offer", headers=HTML)
    assert form.status_code == 200
    assert (
        'name="amount" type="text"\n         value="300000.00"' in form.text
        or 'value="300000.00"' in form.text
    )
    until = (clock.now() + timedelta(days=7)).strftime("%Y-%m-%dT%H:%M")
    good = {**OFFER, "valid_until": until}
    path = f"/bank/demands/{demand_id}/offer"

    cases = [
        (
            {"annual_rate_percent": "9.6"},
            "annual_rate_percent",
            "9.6% is above the enterprise's maximum of 9.5%",
        ),
        (
            {"annual_rate_percent": "six"},
            "annual_rate_percent",
            "Enter the annual rate in percent, e.g. 6.5 (at most four decimals).",
        ),
        ({"amount": "300000.01"}, "amount", "the enterprise asks for 300,000.00 CNY; offer at most that"),
        ({"amount": "100000.00"}, "amount", "the enterprise accepts no less than 200,000.00 CNY"),
        ({"amount": "lots"}, "amount", "Enter an amount, e.g. 1250000.00."),
        ({"term_months": "61"}, "term_months", "the term must be 1 to 60 months"),
        ({"repayment_method": "lease_rent"}, "repayment_method", "Choose one of the options."),
        ({"conditions": ""}, "conditions", "state the offer's conditions (or 'none')"),
        (
            {"valid_until": (clock.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")},
            "valid_until",
            "the offer must stand until a time in the future",
        ),
        ({"valid_until": "soon"}, "valid_until", "Enter a date and time, e.g. 2026-12-31T17:00."),
    ]
    for change, field, message in cases:
        refused = post(bank, path, {**good, **change}, form.text)
        assert refused.status_code == 422, (field, refused.text)
        assert error_of(refused.text, field) == message, field
        assert 'data-testid="offer-form"' in refused.text
    capped = list_bank_demand(client, tokens, factory, clock, max_annual_rate="12.0000")
    capped_form = bank.get(f"/bank/demands/{capped}/offer", headers=HTML)
    over = post(
        bank, f"/bank/demands/{capped}/offer", {**good, "annual_rate_percent": "11.5"}, capped_form.text
    )
    assert over.status_code == 422
    assert "is above the legal cap of 12%" in error_of(over.text, "annual_rate_percent")
    with factory() as session:
        assert session.scalars(select(BankOffer)).all() == []  # nothing refused was saved

    made = post(bank, path, good, form.text)
    assert made.status_code == 303, made.text
    offers_page = bank.get(made.headers["location"], headers=HTML)
    with factory() as session:
        offer = session.scalars(select(BankOffer)).one()
        offer_id, offer_ref = offer.id, offer.ref
    assert text_of(offers_page.text, "flash") == f"Offer {offer_ref} is made; the enterprise has been told."
    assert 'data-testid="withdraw-form"' in offers_page.text
    twice = post(bank, path, good, form.text)
    assert twice.status_code == 409
    assert text_of(twice.text, "form-error") == "The bank already has an open offer on this demand"
    assert f"your offer {offer_ref} on {demand_ref} is still open; withdraw it first" in twice.text

    # Another bank does not see this bank's offers; an investor's portal is not a bank's.
    rival = browse(
        other_party(factory, settings, clock, OrgType.CUSTODIAN_BANK, Role.BANK_OFFICER), DEMO_PASSWORD_OTHER
    )
    assert offer_ref not in rival.get("/bank/offers", headers=HTML).text
    rival_page = rival.get("/bank/offers", headers=HTML)
    assert post(rival, f"/bank/offers/{offer_id}/withdrawal", {}, rival_page.text).status_code == 404
    assert browse(INVESTOR, "").get("/bank/demands", headers=HTML).status_code == 403

    # The enterprise reads the offer on its demand page and accepts it there.
    sme = browse(SME, "")
    page = sme.get(f"/enterprise/demands/{demand_id}", headers=HTML)
    assert page.status_code == 200
    assert text_of(page.text, "offer-amount") == "300,000.00 CNY"
    assert text_of(page.text, "offer-rate") == "6.50%"
    assert text_of(page.text, "offer-conditions") == OFFER["conditions"]
    key = hidden(page.text, "idempotency_key", "accept-offer-form")
    accepted = post(sme, f"/enterprise/offers/{offer_id}/acceptance", {"idempotency_key": key}, page.text)
    assert accepted.status_code == 303, accepted.text
    replay = post(sme, f"/enterprise/offers/{offer_id}/acceptance", {"idempotency_key": key}, page.text)
    assert replay.status_code == 303
    assert replay.headers["location"] == accepted.headers["location"]
    with factory() as session:
        loan = session.scalars(select(Loan).where(Loan.demand_id == demand_id)).one()
        loan_id = loan.id
        assert loan.lender_kind == "bank"
        assert loan.status == "contracting"
    assert accepted.headers["location"].startswith(f"/enterprise/loans/{loan_id}")
    page = sme.get(accepted.headers["location"], headers=HTML)
    shown = text_of(page.text, "agreement-sha256")
    assert 'data-testid="waiting-bank"' in page.text
    by_sme = post(
        sme, f"/enterprise/loans/{loan_id}/agreement/acceptance", {"sha256": shown, "read": "yes"}, page.text
    )
    assert by_sme.status_code == 303
    page = sme.get(by_sme.headers["location"], headers=HTML)
    assert "The other party has not accepted it yet." in text_of(page.text, "flash")

    assert rival.get(f"/bank/loans/{loan_id}", headers=HTML).status_code == 404
    bank_page = bank.get(f"/bank/loans/{loan_id}", headers=HTML)
    assert bank_page.status_code == 200
    assert text_of(bank_page.text, "agreement-sha256") == shown
    wrong = post(
        bank,
        f"/bank/loans/{loan_id}/agreement/acceptance",
        {"sha256": "f" * 64, "read": "yes"},
        bank_page.text,
    )
    assert wrong.status_code == 422
    assert error_of(wrong.text, "sha256") == "does not match the agreement's hash"
    by_bank = post(
        bank, f"/bank/loans/{loan_id}/agreement/acceptance", {"sha256": shown, "read": "yes"}, bank_page.text
    )
    assert by_bank.status_code == 303, by_bank.text
    bank_page = bank.get(by_bank.headers["location"], headers=HTML)
    assert text_of(bank_page.text, "payout-status") == "Pending at the bank"
    drain()
    assert text_of(bank.get(f"/bank/loans/{loan_id}/live", headers=HTML).text, "loan-status") == "Active"
    assert f'href="/bank/loans/{loan_id}"' in bank.get("/bank/offers", headers=HTML).text


def test_the_bank_withdraws_its_offer_and_the_enterprise_declines_another(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    verified: None,  # noqa: F811
    browse: Browse,
) -> None:
    first = list_bank_demand(client, tokens, factory, clock)
    second = list_bank_demand(client, tokens, factory, clock)
    bank = browse(BANK, "")
    until = (clock.now() + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
    for demand_id in (first, second):
        form = bank.get(f"/bank/demands/{demand_id}/offer", headers=HTML)
        assert (
            post(
                bank, f"/bank/demands/{demand_id}/offer", {**OFFER, "valid_until": until}, form.text
            ).status_code
            == 303
        )
    with factory() as session:
        ids = {o.demand_id: o.id for o in session.scalars(select(BankOffer))}
    page = bank.get("/bank/offers", headers=HTML)
    withdrawn = post(
        bank, f"/bank/offers/{ids[first]}/withdrawal", {"reason": "Our credit committee said no."}, page.text
    )
    assert withdrawn.status_code == 303
    page = bank.get(withdrawn.headers["location"], headers=HTML)
    again = post(bank, f"/bank/offers/{ids[first]}/withdrawal", {}, page.text)
    assert again.status_code == 409
    assert error_of(again.text, "offer").endswith("is withdrawn")

    sme = browse(SME, "")
    page = sme.get(f"/enterprise/demands/{first}", headers=HTML)
    assert 'data-status="withdrawn"' in page.text
    assert 'data-testid="accept-offer-form"' not in page.text
    page = sme.get(f"/enterprise/demands/{second}", headers=HTML)
    declined = post(sme, f"/enterprise/offers/{ids[second]}/decline", {"reason": "Too dear."}, page.text)
    assert declined.status_code == 303
    page = sme.get(declined.headers["location"], headers=HTML)
    assert text_of(page.text, "offer-status") == "Declined"
    # Accepting what is no longer open is refused beside the offer.
    key = uuid.uuid4().hex
    late = post(sme, f"/enterprise/offers/{ids[second]}/acceptance", {"idempotency_key": key}, page.text)
    assert late.status_code == 409
    assert error_of(late.text, "offer").endswith("is declined")
    with factory() as session:
        assert {o.status for o in session.scalars(select(BankOffer))} == {"withdrawn", "declined"}
