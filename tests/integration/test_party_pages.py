"""The parties' pages over HTTP: registration, the two-regulator admittance review, requests for
information with an uploaded document, rejection, suspension, inbox, consents, the risk
questionnaire, the LPR table and the operator's custodian bank entering review."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from yunrong import migrate
from yunrong.app import create_app
from yunrong.config import Settings
from yunrong.db import make_engine, make_sessionmaker, unit_of_work
from yunrong.demo.seed import (
    DEMO_PASSWORD,
    INSTITUTION,
    OPERATOR,
    PERSON,
    REGULATOR_1,
    REGULATOR_2,
    SME,
    seed_demo,
)
from yunrong.identity.model import Actor, Context
from yunrong.identity.tables import Organisation
from yunrong.kit.clock import SystemClock
from yunrong.parties import codes
from yunrong.parties.risk import QUESTIONS

HTML = {"accept": "text/html"}
ZH = {**HTML, "accept-language": "zh-CN"}
USCC_BODY = "0123456789ABCDEFGHJKLMNPQRTUWXY"
PASSWORD = "a-long-enough-password-2026"
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    tmp = tmp_path_factory.mktemp("party-pages")
    url = f"sqlite:///{tmp / 'parties.db'}"
    migrate.upgrade(url)
    settings = Settings(database_url=url, demo=True, mail_dir=tmp / "mail", upload_dir=tmp / "uploads")
    engine = make_engine(url)
    with unit_of_work(make_sessionmaker(engine)) as session:
        seed_demo(session, ctx=Context(actor=Actor.system("test"), clock=SystemClock()), settings=settings)
    engine.dispose()
    return settings


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings)
    with TestClient(app, base_url="http://testserver") as test_client:
        yield test_client
    app.state.engine.dispose()


def organisation_count(client: TestClient) -> int:
    with unit_of_work(client.app.state.sessionmaker) as session:  # type: ignore[attr-defined]
        return int(session.scalar(select(func.count()).select_from(Organisation)) or 0)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def log_in(client: TestClient, email: str, password: str = DEMO_PASSWORD, *, next: str = "") -> str:
    client.cookies.clear()
    page = client.get("/login", headers=HTML)
    response = client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": csrf_of(page.text), "next": next},
        headers=HTML,
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return response.headers["location"]


def unread(html: str) -> int:
    """The number on the inbox badge in the navigation (0 when there is none)."""
    found = re.search(r'data-testid="unread-count"[^>]*>(\d+)<', html)
    return int(found.group(1)) if found else 0


def new_uscc(region: str = "320102") -> str:
    return codes.make_uscc("91" + region + "".join(random.choices(USCC_BODY, k=9)))


def new_resident_id() -> str:
    born = date(1960, 1, 1) + timedelta(days=random.randrange(0, 365 * 40))
    return codes.make_resident_id(f"320102{born:%Y%m%d}{random.randrange(1000):03d}")


def unique() -> str:
    return f"{random.randrange(16**8):08x}"


def enterprise_form(tag: str, **overrides: str) -> dict[str, str]:
    form = {
        "enterprise.name": f"Nanjing Test Works {tag} 南京测试{tag}",
        "enterprise.credit_code": new_uscc(),
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
        "enterprise.contact.email": f"contact-{tag}@example.cn",
        "applicant.name": "Liu Yang 刘洋",
        "applicant.email": f"owner-{tag}@example.cn",
        "applicant.password": PASSWORD,
        "bank_account.bank_name": "",
        "bank_account.account_name": "",
        "bank_account.account_number": "",
    }
    form.update(overrides)
    return form


def register(client: TestClient, path: str, form: dict[str, object], headers: dict[str, str] = HTML) -> str:
    client.cookies.clear()
    page = client.get(path, headers=headers)
    assert page.status_code == 200
    response = client.post(path, data={**form, "csrf_token": csrf_of(page.text)}, headers=headers)
    return response.text if response.status_code == 201 else pytest.fail(response.text[-3000:])


def register_enterprise(client: TestClient, tag: str) -> tuple[str, str]:
    """Register through the form; the qualification reference and the applicant's e-mail."""
    form = enterprise_form(tag)
    text = register(client, "/register/enterprise", dict(form))
    ref = re.search(r'data-testid="qualification-ref">(QUA-[\w-]+)<', text)
    assert ref, text
    return ref.group(1), form["applicant.email"]


def case_path(client: TestClient, ref: str) -> str:
    queue = client.get("/regulator/queue", headers=HTML)
    found = re.search(
        rf'href="(/regulator/qualifications/[0-9a-f-]+)"><code>{re.escape(ref)}</code>', queue.text
    )
    assert found, f"{ref} is not in the queue"
    return found.group(1)


def decide(client: TestClient, email: str, ref: str, decision: str, reason: str) -> tuple[int, str]:
    log_in(client, email)
    path = case_path(client, ref)
    page = client.get(path, headers=HTML)
    response = client.post(
        f"{path}/decision",
        data={"decision": decision, "reason": reason, "csrf_token": csrf_of(page.text)},
        headers=HTML,
    )
    return response.status_code, response.text


# --- registration -------------------------------------------------------------------------------------


def test_login_page_links_to_registration_and_the_choice_page_offers_every_kind(client: TestClient) -> None:
    assert 'href="/register"' in client.get("/login", headers=HTML).text
    choice = client.get("/register", headers=HTML)
    for path in (
        "/register/enterprise",
        "/register/investor?kind=person",
        "/register/investor?kind=institution",
        "/register/agency",
    ):
        assert f'href="{path}"' in choice.text
        assert client.get(path, headers=HTML).status_code == 200


def test_enterprise_registers_and_gets_a_confirmation(client: TestClient) -> None:
    before = organisation_count(client)
    form = enterprise_form(unique())
    text = register(client, "/register/enterprise", dict(form))
    assert "Registration received" in text
    assert re.search(r"QUA-[\w-]+", text)
    assert 'href="/login?next=%2Fqualification"' in text
    assert organisation_count(client) == before + 1
    assert log_in(client, form["applicant.email"], PASSWORD, next="/qualification") == "/qualification"
    mine = client.get("/qualification", headers=HTML)
    assert "Pending review" in mine.text
    banner = client.get("/enterprise", headers=HTML)
    assert 'data-testid="admittance-banner"' in banner.text


def test_bad_credit_code_and_taken_email_are_shown_beside_their_fields_and_nothing_is_saved(
    client: TestClient,
) -> None:
    before = organisation_count(client)
    good = new_uscc()
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")  # a wrong check character
    form = enterprise_form(unique(), **{"enterprise.credit_code": bad, "applicant.email": SME.email})
    client.cookies.clear()
    page = client.get("/register/enterprise", headers=HTML)
    response = client.post(
        "/register/enterprise", data={**form, "csrf_token": csrf_of(page.text)}, headers=HTML
    )
    assert response.status_code == 422
    assert re.search(r'data-testid="error-enterprise.credit_code">check character should be', response.text)
    assert 'data-testid="error-applicant.email">a user with this e-mail already exists' in response.text
    assert f'value="{bad}"' in response.text  # the form is filled in again…
    assert PASSWORD not in response.text  # …but never with the password
    assert organisation_count(client) == before


def test_malformed_numbers_and_dates_are_shown_beside_fields_not_a_500(client: TestClient) -> None:
    form = enterprise_form(
        unique(),
        **{"enterprise.employees": "many", "enterprise.founded_on": "yesterday", "enterprise.name": ""},
    )
    client.cookies.clear()
    page = client.get("/register/enterprise", headers=ZH)
    response = client.post(
        "/register/enterprise", data={**form, "csrf_token": csrf_of(page.text)}, headers=ZH
    )
    assert response.status_code == 422
    assert 'data-testid="error-enterprise.employees"' in response.text
    assert 'data-testid="error-enterprise.founded_on"' in response.text
    assert 'data-testid="error-enterprise.name"' in response.text
    assert "请输入整数" in response.text


def test_individual_investor_registers_with_the_questionnaire(client: TestClient) -> None:
    tag = unique()
    form: dict[str, object] = {
        "investor.kind": "person",
        "investor.name": f"Guo Jing {tag}",
        "investor.resident_id": new_resident_id(),
        "investor.contact_phone": "13800000000",
        "investor.net_worth": "2000000",
        "investor.annual_income": "400000",
        "investor.funds_sources": ["salary", "savings"],
        "investor.funds_note": "salary savings",
        **{f"risk_answers.{q.key}": q.options[-1].key for q in QUESTIONS},
        "applicant.name": f"Guo Jing {tag}",
        "applicant.email": f"guo-{tag}@example.cn",
        "applicant.password": PASSWORD,
    }
    text = register(client, "/register/investor?kind=person", form)
    assert "Registration received" in text


def test_investor_with_half_a_questionnaire_sees_the_unanswered_questions(client: TestClient) -> None:
    tag = unique()
    form: dict[str, object] = {
        "investor.kind": "person",
        "investor.name": f"Guo Jing {tag}",
        "investor.resident_id": new_resident_id(),
        "investor.contact_phone": "13800000000",
        "investor.net_worth": "2000000",
        "investor.annual_income": "400000",
        "investor.funds_sources": ["salary"],
        f"risk_answers.{QUESTIONS[0].key}": QUESTIONS[0].options[0].key,
        "applicant.name": "x",
        "applicant.email": f"guo-{tag}@example.cn",
        "applicant.password": PASSWORD,
    }
    client.cookies.clear()
    page = client.get("/register/investor?kind=person", headers=HTML)
    response = client.post(
        "/register/investor?kind=person", data={**form, "csrf_token": csrf_of(page.text)}, headers=HTML
    )
    assert response.status_code == 422
    assert f'data-testid="error-risk_answers.{QUESTIONS[1].key}">not answered' in response.text


def test_agency_registers_with_a_service_row(client: TestClient) -> None:
    import base64

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    key = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    tag = unique()
    form: dict[str, object] = {
        "agency.name": f"Jiangsu Rating {tag}",
        "agency.credit_code": new_uscc(),
        "agency.licence_number": f"LIC-{tag}",
        "agency.types": ["credit_rating"],
        "agency.region_code": "320102",
        "agency.public_key": base64.b64encode(key).decode(),
        "agency.services.0.agency_type": "appraisal",  # not a type the agency registered for
        "agency.services.0.service": "",
        "agency.services.0.fee": "",
        "agency.services.0.sla_hours": "",
        "agency.services.1.agency_type": "credit_rating",
        "agency.services.1.service": "credit_rating_basic",
        "agency.services.1.fee": "800.00",
        "agency.services.1.sla_hours": "48",
        "applicant.name": "Xu Li",
        "applicant.email": f"agency-{tag}@example.cn",
        "applicant.password": PASSWORD,
    }
    text = register(client, "/register/agency", form)  # the empty first row is ignored
    assert "Registration received" in text
    form["agency.credit_code"] = new_uscc()
    form["agency.name"] = f"Jiangsu Rating {tag} B"
    form["applicant.email"] = f"agency-b-{tag}@example.cn"
    form["agency.services.2.agency_type"] = "appraisal"
    form["agency.services.2.service"] = "site_visit"
    form["agency.services.2.fee"] = "100"
    form["agency.services.2.sla_hours"] = "24"
    page = client.get("/register/agency", headers=HTML)
    refused = client.post("/register/agency", data={**form, "csrf_token": csrf_of(page.text)}, headers=HTML)
    assert refused.status_code == 422
    assert 'data-testid="error-agency.services.2.agency_type">the agency is not registered' in refused.text


# --- the admittance review ----------------------------------------------------------------------------


def test_two_regulators_approve_and_the_applicant_is_told(client: TestClient) -> None:
    ref, email = register_enterprise(client, unique())
    status, text = decide(client, REGULATOR_1.email, ref, "approve", "licence and statements checked")
    assert status == 200, text  # after the redirect
    assert "Awaiting second approval" in text
    assert 'data-testid="first-approval-note"' in text

    status, text = decide(client, REGULATOR_1.email, ref, "approve", "again")
    assert status == 409
    assert "the first approval was yours; a different regulator must approve" in text
    assert "A second, different regulator must approve" in text

    status, text = decide(client, REGULATOR_2.email, ref, "approve", "second review agreed")
    assert status == 200
    assert "Decision recorded: Approved." in text

    log_in(client, email, PASSWORD)
    mine = client.get("/qualification", headers=HTML)
    assert re.search(r'data-testid="status">Approved<', mine.text)
    assert "second review agreed" in mine.text
    dashboard = client.get("/enterprise", headers=HTML)
    assert 'data-testid="admittance-banner"' not in dashboard.text
    assert unread(dashboard.text) == 3  # received, first approval, approved
    inbox = client.get("/inbox", headers=HTML)
    assert f"Registration {ref}: approved" in inbox.text
    assert f"Registration {ref} received" in inbox.text
    inbox_zh = client.get("/inbox", headers=ZH)
    assert f"注册申请 {ref}：已获批准" in inbox_zh.text
    note = re.search(r'action="(/inbox/[0-9a-f-]+/read)"', inbox.text)
    assert note
    client.post(note.group(1), data={"csrf_token": csrf_of(inbox.text)})
    assert unread(client.get("/inbox", headers=HTML).text) == 2
    client.post("/inbox/read-all", data={"csrf_token": csrf_of(inbox.text)})
    assert 'data-testid="unread-count"' not in client.get("/inbox", headers=HTML).text


def test_a_decision_needs_a_reason(client: TestClient) -> None:
    ref, _ = register_enterprise(client, unique())
    status, text = decide(client, REGULATOR_1.email, ref, "approve", "   ")
    assert status == 422
    assert 'data-testid="error-reason"' in text
    assert "Pending review" in text


def test_request_information_then_the_applicant_answers_with_a_pdf(client: TestClient) -> None:
    ref, email = register_enterprise(client, unique())
    status, text = decide(
        client, REGULATOR_1.email, ref, "request_info", "Please upload the 2025 statements."
    )
    assert status == 200
    assert "Information requested" in text

    log_in(client, email, PASSWORD)
    mine = client.get("/qualification", headers=HTML)
    assert 'data-testid="respond-form"' in mine.text
    assert "Please upload the 2025 statements." in mine.text
    token = csrf_of(mine.text)
    not_pdf = client.post(
        "/qualification/respond",
        data={"message": "here", "csrf_token": token},
        files={"file": ("statements.pdf", b"GIF89a not a pdf", "application/pdf")},
        headers=HTML,
    )
    assert not_pdf.status_code == 422
    assert 'data-testid="error-file">must be a PDF, PNG or JPEG file' in not_pdf.text
    answered = client.post(
        "/qualification/respond",
        data={"message": "The 2025 statements are attached.", "csrf_token": token},
        files={"file": ("statements-2025.pdf", PDF, "application/pdf")},
        headers=HTML,
    )
    assert answered.status_code == 200
    assert "Pending review" in answered.text
    assert "statements-2025.pdf" in answered.text

    log_in(client, REGULATOR_2.email)
    case = client.get(case_path(client, ref), headers=HTML)
    assert "The 2025 statements are attached." in case.text
    link = re.search(
        r'href="(/documents/[0-9a-f-]+/content)" data-testid="document-link">statements-2025.pdf', case.text
    )
    assert link
    download = client.get(link.group(1))
    assert download.status_code == 200
    assert download.content == PDF
    assert download.headers["content-type"] == "application/pdf"
    log_in(client, SME.email)
    assert client.get(link.group(1), headers=HTML).status_code == 404  # another party learns nothing


def test_reject_path(client: TestClient) -> None:
    ref, email = register_enterprise(client, unique())
    status, text = decide(client, REGULATOR_2.email, ref, "reject", "the business licence is forged")
    assert status == 200
    assert "Rejected" in text
    log_in(client, email, PASSWORD)
    assert "the business licence is forged" in client.get("/qualification", headers=HTML).text
    assert "Rejected" in client.get("/enterprise", headers=HTML).text


def test_suspend_and_reinstate(client: TestClient) -> None:
    ref, email = register_enterprise(client, unique())
    decide(client, REGULATOR_1.email, ref, "approve", "ok")
    _status, text = decide(client, REGULATOR_2.email, ref, "approve", "ok too")
    path = re.search(r'action="(/regulator/qualifications/[0-9a-f-]+)/suspension"', text)
    assert path, "an approved party can be suspended"
    refused = client.post(
        f"{path.group(1)}/suspension",
        data={"action": "suspend", "suspension_reason": "", "csrf_token": csrf_of(text)},
        headers=HTML,
    )
    assert refused.status_code == 422
    assert 'data-testid="error-suspension_reason"' in refused.text
    suspended = client.post(
        f"{path.group(1)}/suspension",
        data={"action": "suspend", "suspension_reason": "fund-flow anomaly", "csrf_token": csrf_of(text)},
        headers=HTML,
    )
    assert "Decision recorded: Suspended." in suspended.text
    log_in(client, email, PASSWORD)
    assert "suspended by the regulator" in client.get("/enterprise", headers=HTML).text
    log_in(client, REGULATOR_1.email)
    page = client.get(path.group(1), headers=HTML)
    reinstated = client.post(
        f"{path.group(1)}/suspension",
        data={"action": "reinstate", "suspension_reason": "explained", "csrf_token": csrf_of(page.text)},
        headers=HTML,
    )
    assert "Decision recorded: Approved." in reinstated.text


def test_regulator_dashboard_counts_the_queue_and_the_queue_reads_in_chinese(client: TestClient) -> None:
    log_in(client, REGULATOR_1.email)
    dashboard = client.get("/regulator", headers=HTML)
    count = re.search(r'data-testid="queue-count">(\d+)<', dashboard.text)
    assert count
    assert int(count.group(1)) >= 2
    queue = client.get("/regulator/queue", headers=ZH)
    assert '<html lang="zh-CN"' in queue.text
    assert "审核队列" in queue.text
    assert "苏州千里精密机械有限公司" in queue.text
    assert "待审核" in queue.text
    assert "需补充材料" in queue.text
    only_info = client.get("/regulator/queue", params={"status": "info_requested"}, headers=HTML)
    assert "Lantian" in only_info.text
    assert "Qianli" not in only_info.text


def test_other_roles_cannot_review(client: TestClient) -> None:
    log_in(client, SME.email)
    assert client.get("/regulator/queue", headers=HTML).status_code == 403
    log_in(client, REGULATOR_1.email)
    assert client.get("/regulator/qualifications/not-an-id", headers=HTML).status_code == 404
    assert (
        client.get(f"/regulator/qualifications/{'0' * 8}-0000-0000-0000-{'0' * 12}", headers=HTML).status_code
        == 404
    )


# --- consents, risk, LPR, the operator's custodian bank ----------------------------------------------


def test_enterprise_grants_and_revokes_a_consent(client: TestClient) -> None:
    log_in(client, SME.email)
    page = client.get("/enterprise/consents", headers=HTML)
    assert page.status_code == 200
    token = csrf_of(page.text)
    past = client.post(
        "/enterprise/consents",
        data={
            "data_category": "financials",
            "recipient_class": "institutions",
            "purpose": "credit review",
            "valid_until": "2001-01-01",
            "csrf_token": token,
        },
        headers=HTML,
    )
    assert past.status_code == 422
    assert 'data-testid="error-valid_until">must be after today' in past.text
    until = (date.today() + timedelta(days=400)).isoformat()
    granted = client.post(
        "/enterprise/consents",
        data={
            "data_category": "financials",
            "recipient_class": "institutions",
            "purpose": "credit review",
            "valid_until": until,
            "csrf_token": token,
        },
        headers=HTML,
    )
    assert "Consent granted." in granted.text
    assert "Active" in granted.text
    revoke = re.search(r'action="(/enterprise/consents/[0-9a-f-]+/revoke)"', granted.text)
    assert revoke
    revoked = client.post(revoke.group(1), data={"csrf_token": token}, headers=HTML)
    assert "Consent revoked." in revoked.text
    assert "Revoked" in revoked.text


def test_investor_takes_the_risk_questionnaire(client: TestClient) -> None:
    log_in(client, PERSON.email)
    page = client.get("/investor/risk", headers=HTML)
    assert page.status_code == 200
    token = csrf_of(page.text)
    cautious = {f"risk_answers.{q.key}": min(q.options, key=lambda o: o.score).key for q in QUESTIONS}
    result = client.post("/investor/risk", data={**cautious, "csrf_token": token}, headers=HTML)
    assert 'data-testid="risk-result">Score 0 of 100: risk level C1 · conservative.' in result.text
    partial = client.post(
        "/investor/risk",
        data={f"risk_answers.{QUESTIONS[0].key}": QUESTIONS[0].options[0].key, "csrf_token": token},
    )
    assert partial.status_code == 422
    assert f'data-testid="error-risk_answers.{QUESTIONS[-1].key}">not answered' in partial.text
    log_in(client, INSTITUTION.email)
    assert client.get("/investor/risk", headers=ZH).status_code == 200


def test_operator_records_an_lpr_fixing(client: TestClient) -> None:
    log_in(client, OPERATOR.email)
    page = client.get("/operator/lpr", headers=HTML)
    assert re.search(r"3\.00(00)?%", page.text)
    token = csrf_of(page.text)
    bad = client.post(
        "/operator/lpr",
        data={"effective_on": "2026-01-20", "one_year_percent": "abc", "source": "x", "csrf_token": token},
    )
    assert bad.status_code == 422
    assert 'data-testid="error-one_year_percent"' in bad.text
    ok = client.post(
        "/operator/lpr",
        data={
            "effective_on": "2025-06-20",
            "one_year_percent": "2.95",
            "source": "NIFC",
            "csrf_token": token,
        },
        headers=HTML,
    )
    assert "Fixing recorded." in ok.text
    assert "2.9500%" in ok.text or "2.95%" in ok.text


def test_operator_creates_a_custodian_bank_and_it_enters_the_queue(client: TestClient) -> None:
    name = f"Bank of Nanjing Custody {unique()}"
    log_in(client, OPERATOR.email)
    page = client.get("/operator/organisations", headers=HTML)
    created = client.post(
        "/operator/organisations",
        data={"type": "custodian_bank", "name": name, "csrf_token": csrf_of(page.text)},
        headers=HTML,
    )
    assert created.status_code == 200
    log_in(client, REGULATOR_1.email)
    queue = client.get("/regulator/queue", headers=HTML)
    assert name in queue.text
