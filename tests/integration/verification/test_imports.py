"""Data imports into the credit file end to end: the demo SME imports its data sets from CSV and
XLSX through the API and its credit file shows them, self-declared, observed at the end of their
period, and only from the moment they were recorded (as-of reads); a bad file is refused whole
with every problem and nothing stored; a re-import supersedes; an agency's API key feeds data
(provenance data_feed); everyone else is refused."""

from __future__ import annotations

import io
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from openpyxl import Workbook  # type: ignore[import-untyped]
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import bearer
from yunrong.config import Settings
from yunrong.db import unit_of_work
from yunrong.demo.seed import DEMO_PASSWORD
from yunrong.identity import repository
from yunrong.identity import service as identity
from yunrong.identity.model import Context, OrgType, Role
from yunrong.kit.clock import FrozenClock
from yunrong.kit.ids import human_ref
from yunrong.verification.tables import CreditFact, ServiceOrder

SME = "sme@demo.yunrong.cn"
AGENCY = "agency@demo.yunrong.cn"
PERSON = "investor@demo.yunrong.cn"
REGULATOR = "regulator1@demo.yunrong.cn"
OPERATOR = "operator@demo.yunrong.cn"
BANK = "bank@demo.yunrong.cn"

BALANCE_HEADER = (
    "period_end,cash,accounts_receivable,inventory,current_assets,total_assets,"
    "current_liabilities,total_liabilities,equity"
)
BALANCE = (
    f"{BALANCE_HEADER}\n"
    "2024-12-31,700000.00,1200000.00,800000.00,2900000.00,5800000.00,1700000.00,3000000.00,2800000.00\n"
    "2025-12-31,820000.00,1450000.00,960000.00,3400000.00,6250000.00,1900000.00,3100000.00,3150000.00\n"
)


def _org(factory: sessionmaker[Session], email: str) -> uuid.UUID:
    with unit_of_work(factory) as session:
        user = repository.user_by_email(session, email)
        assert user is not None
        return user.organisation_id


def _upload(
    client: TestClient,
    token: str,
    org_id: uuid.UUID,
    kind: str,
    content: bytes,
    filename: str = "data.csv",
) -> Any:
    return client.post(
        f"/api/v1/enterprises/{org_id}/data/{kind}",
        files={"file": (filename, content, "application/octet-stream")},
        headers=bearer(token),
    )


def _file(client: TestClient, token: str, org_id: uuid.UUID, as_of: datetime | None = None) -> dict[str, Any]:
    params = {"as_of": as_of.isoformat()} if as_of else {}
    response = client.get(f"/api/v1/enterprises/{org_id}/credit-file", params=params, headers=bearer(token))
    assert response.status_code == 200, response.text
    return dict(response.json())


def _facts(file: dict[str, Any], prefix: str) -> dict[str, dict[str, Any]]:
    return {
        f["key"]: f for facts in file["categories"].values() for f in facts if f["key"].startswith(prefix)
    }


def _count(factory: sessionmaker[Session]) -> int:
    with unit_of_work(factory) as session:
        return int(session.scalar(select(func.count()).select_from(CreditFact)) or 0)


def _xlsx(rows: list[list[Any]]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _order(factory: sessionmaker[Session], clock: FrozenClock, status: str = "accepted") -> uuid.UUID:
    with unit_of_work(factory) as session:
        order = ServiceOrder(
            ref=human_ref("SO"),
            demand_id=None,
            enterprise_id=_org(factory, SME),
            agency_id=_org(factory, AGENCY),
            agency_type="credit_rating",
            service="sme_credit_rating",
            required=True,
            status=status,
            fee_minor=0,
            currency="CNY",
            deadline_at=None,
            assignments=1,
            status_reason=None,
            created_by="test",
            created_at=clock.now(),
            assigned_at=clock.now(),
            accepted_at=clock.now(),
        )
        session.add(order)
        session.flush()
        return order.id


def _api_key(client: TestClient, token: str) -> str:
    response = client.post("/api/v1/api-keys", json={"name": "tax feed"}, headers=bearer(token))
    assert response.status_code == 201, response.text
    return str(response.json()["key"])


# --- importing ---------------------------------------------------------------------------------------


def test_an_import_shows_in_the_credit_file_from_when_it_was_recorded(
    client: TestClient, tokens: dict[str, str], factory: sessionmaker[Session], clock: FrozenClock
) -> None:
    sme = _org(factory, SME)
    before = clock.now()
    clock.set(before + timedelta(minutes=10))
    imported_at = clock.now()

    response = _upload(client, tokens[SME], sme, "balance_sheet", BALANCE.encode(), "bs-2025.csv")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["rows"], body["created"], body["superseded"], body["unchanged"]) == (2, 2, 0, 0)
    assert body["provenance"] == "self_declared"
    assert body["format"] == "csv"
    assert body["filename"] == "bs-2025.csv"
    assert len(body["sha256"]) == 64

    clock.set(imported_at + timedelta(minutes=10))
    facts = _facts(_file(client, tokens[SME], sme), "balance_sheet:")
    assert set(facts) == {"balance_sheet:2024-12-31", "balance_sheet:2025-12-31"}
    fact = facts["balance_sheet:2025-12-31"]
    assert fact["category"] == "financials"
    assert fact["provenance"] == "self_declared"
    assert fact["status"] == "self_declared"
    assert fact["source_org_id"] == str(sme)
    # Observed at the end of the period's last day in Asia/Shanghai; recorded when imported.
    assert datetime.fromisoformat(fact["observed_at"]) == datetime(2025, 12, 31, 16, 0, tzinfo=UTC)
    assert datetime.fromisoformat(fact["recorded_at"]) == imported_at
    value = fact["value"]
    assert value["total_assets_minor"] == 6_250_000_00
    assert value["equity_minor"] == 3_150_000_00
    assert value["period_end"] == "2025-12-31"
    assert value["currency"] == "CNY"
    assert value["_source"]["sha256"] == body["sha256"]
    assert value["_source"]["filename"] == "bs-2025.csv"
    assert value["_source"]["row"] == 3

    # Point in time: before the import the file did not hold these facts.
    assert (
        _facts(_file(client, tokens[SME], sme, as_of=before + timedelta(minutes=5)), "balance_sheet:") == {}
    )
    assert set(_facts(_file(client, tokens[SME], sme, as_of=imported_at), "balance_sheet:")) == set(facts)
    # Supervisors read it too.
    assert set(_facts(_file(client, tokens[REGULATOR], sme), "balance_sheet:")) == set(facts)


def test_xlsx_imports_like_csv(
    client: TestClient, tokens: dict[str, str], factory: sessionmaker[Session], clock: FrozenClock
) -> None:
    sme = _org(factory, SME)
    content = _xlsx(
        [
            ["period", "tax_type", "amount_due", "amount_paid", "paid_on"],
            ["2026-09", "vat", 86000.5, 86000.5, date(2026, 10, 15)],
            ["2026-10", "vat", 91000, "91,000.00", "2026-11-14"],
            ["2026-10", "corporate_income", None, 12000.1, None],
        ]
    )
    response = _upload(client, tokens[SME], sme, "tax_payments", content, "tax.xlsx")
    assert response.status_code == 200, response.text
    assert response.json()["format"] == "xlsx"
    facts = _facts(_file(client, tokens[SME], sme), "tax_payments:")
    assert set(facts) == {
        "tax_payments:2026-09:vat",
        "tax_payments:2026-10:vat",
        "tax_payments:2026-10:corporate_income",
    }
    assert facts["tax_payments:2026-09:vat"]["value"]["amount_paid_minor"] == 86_000_50
    assert facts["tax_payments:2026-10:corporate_income"]["value"]["amount_paid_minor"] == 12_000_10
    assert facts["tax_payments:2026-10:corporate_income"]["value"]["amount_due_minor"] is None
    assert facts["tax_payments:2026-10:vat"]["category"] == "tax_and_social_insurance"
    # October has ended in Shanghai (the clock stands in late November).
    observed = datetime.fromisoformat(facts["tax_payments:2026-10:vat"]["observed_at"])
    assert observed == datetime(2026, 10, 31, 16, 0, tzinfo=UTC)


def test_a_bad_file_is_refused_whole_with_every_problem(
    client: TestClient, tokens: dict[str, str], factory: sessionmaker[Session]
) -> None:
    sme = _org(factory, SME)
    stored = _count(factory)
    content = (
        b"period_end,cash,current_assets,total_assets,current_liabilities,total_liabilities,colour\n"
        b"2025-12-31,820000.00,3400000.00,6250000.00,1900000.00,3100000.00,red\n"  # good, but equity missing
        b"2027-01-31,lots,3400000.00,-5,1900000.00,3100000.00,\n"
    )
    response = _upload(client, tokens[SME], sme, "balance_sheet", content)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problems = {(tuple(e["loc"]), e["msg"]) for e in response.json()["errors"]}
    assert problems == {
        (("rows", 1, "colour"), "unknown column"),
        (("rows", 1, "equity"), "missing column"),
        (("rows", 3, "period_end"), "must not be in the future"),
        (("rows", 3, "cash"), "not an amount (write it like 1234.56)"),
        (("rows", 3, "total_assets"), "must not be negative"),
    }
    assert "nothing was imported" in response.json()["detail"]
    assert _count(factory) == stored

    unbalanced = BALANCE.replace("3150000.00", "3150000.02").encode()
    response = _upload(client, tokens[SME], sme, "balance_sheet", unbalanced)
    assert response.status_code == 422
    assert [(e["loc"], e["msg"]) for e in response.json()["errors"]] == [
        (["rows", 3, "total_assets"], "must equal total_liabilities + equity (off by -0.02)")
    ]
    assert _count(factory) == stored

    response = _upload(client, tokens[SME], sme, "balance_sheet", "余额".encode("gbk"))
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["file"]

    response = client.post(f"/api/v1/enterprises/{sme}/data/balance_sheet", headers=bearer(tokens[SME]))
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"loc": ["file"], "msg": "choose a CSV or XLSX file", "type": "value_error"}
    ]
    assert _count(factory) == stored


def test_a_huge_list_of_problems_is_capped(
    client: TestClient, tokens: dict[str, str], factory: sessionmaker[Session]
) -> None:
    sme = _org(factory, SME)
    rows = "".join(f"2025-{m:02d},x,-1\n" for m in range(1, 13)) * 20  # 240 rows, 2 problems each
    content = f"period,insured_headcount,contribution_paid\n{rows}".encode()
    response = _upload(client, tokens[SME], sme, "social_insurance", content)
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert len(errors) == 201
    assert errors[-1] == {"loc": ["rows"], "msg": "…and 280 more problems", "type": "value_error"}
    assert response.json()["detail"] == "480 problems found; nothing was imported"


def test_a_reimport_supersedes_and_the_same_data_changes_nothing(
    client: TestClient, tokens: dict[str, str], factory: sessionmaker[Session], clock: FrozenClock
) -> None:
    sme = _org(factory, SME)
    first = "period,insured_headcount,contribution_paid\n2026-09,40,96000.00\n2026-10,42,100800.00\n"
    assert _upload(client, tokens[SME], sme, "social_insurance", first.encode()).status_code == 200
    first_at = clock.now()

    clock.set(first_at + timedelta(minutes=10))
    second = "period,insured_headcount,contribution_paid\n2026-10,44,105600.00\n"
    body = _upload(client, tokens[SME], sme, "social_insurance", second.encode()).json()
    assert (body["created"], body["superseded"], body["unchanged"]) == (1, 1, 0)

    facts = _facts(_file(client, tokens[SME], sme), "social_insurance:")
    assert facts["social_insurance:2026-10"]["value"]["insured_headcount"] == 44
    assert facts["social_insurance:2026-09"]["value"]["insured_headcount"] == 40
    then = _facts(_file(client, tokens[SME], sme, as_of=first_at + timedelta(minutes=5)), "social_insurance:")
    assert then["social_insurance:2026-10"]["value"]["insured_headcount"] == 42

    clock.set(first_at + timedelta(minutes=20))
    stored = _count(factory)
    body = _upload(client, tokens[SME], sme, "social_insurance", second.encode(), "again.csv").json()
    assert (body["created"], body["superseded"], body["unchanged"]) == (0, 0, 1)
    assert _count(factory) == stored


def test_datasets_and_templates_are_public(client: TestClient, tokens: dict[str, str]) -> None:
    listed = client.get("/api/v1/datasets").json()
    assert {d["kind"] for d in listed} == {
        "balance_sheet",
        "income_statement",
        "cash_flow",
        "tax_payments",
        "social_insurance",
        "utility_payments",
        "bank_flows",
        "ecommerce_sales",
        "supply_chain_links",
        "court_records",
        "patents",
    }
    balance = next(d for d in listed if d["kind"] == "balance_sheet")
    assert balance["category"] == "financials"
    assert "total_assets = total_liabilities + equity" in balance["checks"]
    response = client.get("/api/v1/datasets/cash_flow/template")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.content.startswith("\ufeffperiod_start,period_end,operating".encode())
    assert client.get("/api/v1/datasets/horoscopes/template").status_code == 422


# --- the data feed -----------------------------------------------------------------------------------

SALES = [
    {
        "period": "2026-10",
        "platform": "tmall",
        "store_id": "lvyuan-flagship",
        "gross_sales": "386000.00",
        "refunds": "11200.00",
        "orders": 2140,
        "rating": "4.8",
    }
]


def test_an_agency_api_key_feeds_data(
    client: TestClient, tokens: dict[str, str], factory: sessionmaker[Session], clock: FrozenClock
) -> None:
    sme = _org(factory, SME)
    agency = _org(factory, AGENCY)
    key = _api_key(client, tokens[AGENCY])
    feed = {"enterprise_id": str(sme), "rows": SALES}

    # No order for the enterprise: the agency does not work for it.
    response = client.post("/api/v1/data-feeds/ecommerce_sales", json=feed, headers={"X-API-Key": key})
    assert response.status_code == 404, response.text

    _order(factory, clock)
    response = client.post("/api/v1/data-feeds/ecommerce_sales", json=feed, headers={"X-API-Key": key})
    assert response.status_code == 200, response.text
    assert response.json()["provenance"] == "data_feed"
    fact = _facts(_file(client, tokens[SME], sme), "ecommerce_sales:")[
        "ecommerce_sales:2026-10:tmall:lvyuan-flagship"
    ]
    assert fact["provenance"] == "data_feed"
    assert fact["status"] == "data_feed"
    assert fact["source_org_id"] == str(agency)
    assert fact["category"] == "ecommerce"
    assert fact["value"]["gross_sales_minor"] == 386_000_00
    assert fact["value"]["rating"] == "4.8"

    # The enterprise's own import of the same key is another source: both stand.
    csv = b"period,platform,store_id,gross_sales,refunds,orders\n2026-10,tmall,lvyuan-flagship,390000,0,215\n"
    assert _upload(client, tokens[SME], sme, "ecommerce_sales", csv).status_code == 200
    with unit_of_work(factory) as session:
        current = session.scalars(
            select(CreditFact.provenance).where(
                CreditFact.key == "ecommerce_sales:2026-10:tmall:lvyuan-flagship",
                CreditFact.superseded_at.is_(None),
            )
        ).all()
    assert sorted(current) == ["data_feed", "self_declared"]

    # A batch with problems is refused whole; numbers with decimals travel as text.
    bad = {"enterprise_id": str(sme), "rows": [SALES[0], {**SALES[0], "refunds": 12.5, "orders": -1}]}
    stored = _count(factory)
    response = client.post("/api/v1/data-feeds/ecommerce_sales", json=bad, headers={"X-API-Key": key})
    assert response.status_code == 422
    assert {tuple(e["loc"]) for e in response.json()["errors"]} == {
        ("rows", 1, "refunds"),
        ("rows", 1, "orders"),
    }
    assert _count(factory) == stored

    # The operator feeds any enterprise.
    response = client.post("/api/v1/data-feeds/ecommerce_sales", json=feed, headers=bearer(tokens[OPERATOR]))
    assert response.status_code == 200, response.text


# --- everyone else -----------------------------------------------------------------------------------


def test_other_enterprises_and_roles_are_refused(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    system_ctx: Context,
    clock: FrozenClock,
) -> None:
    sme = _org(factory, SME)
    with unit_of_work(factory) as session:
        rival = identity.create_organisation(
            session, ctx=system_ctx, org_type=OrgType.ENTERPRISE, name="Rival Foods"
        )
        identity.create_user(
            session,
            ctx=system_ctx,
            settings=settings,
            organisation_id=rival.id,
            email="admin@rival-foods.cn",
            name="Rival",
            password="rival-password-2026",
            roles=frozenset({Role.ENTERPRISE_ADMIN}),
            enrol_totp=False,
        )
        rival_id = rival.id
    from tests.conftest import login_token

    rival_token = login_token(client, "admin@rival-foods.cn", "rival-password-2026")
    stored = _count(factory)

    response = _upload(client, rival_token, sme, "balance_sheet", BALANCE.encode())
    assert response.status_code == 404
    assert "Lvyuan" not in response.text
    for email in (AGENCY, PERSON, REGULATOR, OPERATOR, BANK):
        assert _upload(client, tokens[email], sme, "balance_sheet", BALANCE.encode()).status_code == 403, (
            email
        )
    assert _upload(client, tokens[SME], rival_id, "balance_sheet", BALANCE.encode()).status_code == 404
    assert (
        client.post(
            f"/api/v1/enterprises/{sme}/data/balance_sheet", files={"file": ("a.csv", BALANCE.encode())}
        ).status_code
        == 401
    )

    _order(factory, clock)
    feed = {"enterprise_id": str(sme), "rows": SALES}
    for email in (SME, PERSON, REGULATOR, BANK):
        response = client.post("/api/v1/data-feeds/ecommerce_sales", json=feed, headers=bearer(tokens[email]))
        assert response.status_code == 403, email
    response = client.post("/api/v1/data-feeds/ecommerce_sales", json=feed, headers=bearer(rival_token))
    assert response.status_code == 403
    # The agency works for the SME, not for the rival.
    other = {"enterprise_id": str(rival_id), "rows": SALES}
    response = client.post("/api/v1/data-feeds/ecommerce_sales", json=other, headers=bearer(tokens[AGENCY]))
    assert response.status_code == 404
    assert _count(factory) == stored


# --- the page ----------------------------------------------------------------------------------------

HTML = {"accept": "text/html"}


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def log_in(client: TestClient, email: str) -> None:
    client.cookies.clear()
    page = client.get("/login", headers=HTML)
    data = {"email": email, "password": DEMO_PASSWORD, "csrf_token": csrf_of(page.text)}
    response = client.post("/login", data=data, headers=HTML, follow_redirects=False)
    assert response.status_code == 303, response.text


def test_the_import_page_lists_every_problem_or_shows_the_facts(
    client: TestClient, demo: dict[str, str], factory: sessionmaker[Session]
) -> None:
    log_in(client, SME)
    page = client.get("/enterprise/data?kind=balance_sheet", headers=HTML)
    assert page.status_code == 200
    assert 'data-testid="facts-empty"' in page.text
    assert "/api/v1/datasets/balance_sheet/template" in page.text
    stored = _count(factory)

    bad = BALANCE.replace("3150000.00", "3150000.02").replace("2024-12-31,700000.00", "2024-12-31,lots")
    response = client.post(
        "/enterprise/data",
        data={"kind": "balance_sheet", "csrf_token": csrf_of(page.text)},
        files={"file": ("bs.csv", bad.encode(), "text/csv")},
        headers=HTML,
    )
    assert response.status_code == 422
    assert response.text.count('data-testid="problem"') == 2
    assert "not an amount (write it like 1234.56)" in response.text
    assert "must equal total_liabilities + equity (off by -0.02)" in response.text
    assert _count(factory) == stored

    response = client.post(
        "/enterprise/data",
        data={"kind": "balance_sheet", "csrf_token": csrf_of(page.text)},
        files={"file": ("bs.csv", BALANCE.encode(), "text/csv")},
        headers=HTML,
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    page = client.get(response.headers["location"], headers=HTML)
    assert 'data-testid="flash"' in page.text
    assert page.text.count('data-testid="fact"') == 2
    assert "6250000.00" in page.text

    client.cookies.set("yr_lang", "zh-CN")
    page = client.get("/enterprise/data?kind=balance_sheet", headers=HTML)
    assert "资产负债表" in page.text

    log_in(client, PERSON)
    assert client.get("/enterprise/data", headers=HTML).status_code == 403
