"""The data-set schemas and their parser: good files of every kind parse (CSV with or without a
BOM, and XLSX); bad files list every problem at once, by row and column."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import Workbook  # type: ignore[import-untyped]

from yunrong.verification import datasets as d
from yunrong.verification.datasets import DATASETS, DatasetKind, Problem, parse_file, parse_json_rows
from yunrong.verification.imports import problems_of

TODAY = date(2026, 11, 26)


def _csv(*lines: str, bom: bool = False) -> bytes:
    return (("\ufeff" if bom else "") + "\r\n".join(lines) + "\r\n").encode()


def _xlsx(rows: list[list[Any]]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _found(parsed: d.Parsed) -> set[tuple[int | None, str | None, str]]:
    return {(p.row, p.column, p.reason) for p in parsed.problems}


# --- good files ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(DatasetKind))
def test_every_template_is_a_good_file(kind: DatasetKind) -> None:
    parsed = parse_file(kind, d.template_csv(kind), today=TODAY)
    assert parsed.problems == []
    assert len(parsed.rows) == 1
    row = parsed.rows[0]
    ds = DATASETS[kind]
    assert row.number == 2
    assert row.key.startswith(f"{kind.value}:")
    assert len(row.key) <= d.MAX_KEY
    value = row.as_json(ds)
    assert set(value) >= {c.json_name for c in ds.columns}
    assert all(not isinstance(v, float | Decimal | date) for v in value.values())  # plain JSON


@pytest.mark.parametrize("kind", list(DatasetKind))
def test_every_template_parses_as_xlsx_too(kind: DatasetKind) -> None:
    ds = DATASETS[kind]
    parsed = parse_file(kind, _xlsx([list(ds.names), [c.example for c in ds.columns]]), today=TODAY)
    assert parsed.problems == []
    assert parsed.rows[0].values == parse_file(kind, d.template_csv(kind), today=TODAY).rows[0].values


def test_a_good_balance_sheet_with_and_without_bom_and_typed_xlsx_cells() -> None:
    lines = (
        "Period_End , total_assets,total_liabilities,equity,current_assets,current_liabilities,cash",
        '2024-12-31,"5,800,000.00",3000000,2800000.00,2900000.00,1700000.00,',
        "2025-12-31,6250000.00,3100000.00,3150000.00,3400000.00,1900000.00,820000.5",
        ",,,,,,",
    )
    for bom in (False, True):
        parsed = parse_file("balance_sheet", _csv(*lines, bom=bom), today=TODAY)
        assert parsed.problems == []
        assert [r.key for r in parsed.rows] == ["balance_sheet:2024-12-31", "balance_sheet:2025-12-31"]
        first, second = (r.values for r in parsed.rows)
        assert first["total_assets"] == 580_000_000
        assert first["cash"] is None
        assert second["cash"] == 82_000_050
    xlsx = _xlsx(
        [
            [
                "period_end",
                "total_assets",
                "total_liabilities",
                "equity",
                "current_assets",
                "current_liabilities",
            ],
            [datetime(2025, 12, 31), 6250000.1, 3100000, 3150000.1, 3400000.0, 1900000],
        ]
    )
    parsed = parse_file("balance_sheet", xlsx, today=TODAY)
    assert parsed.problems == []
    assert parsed.rows[0].values["total_assets"] == 625_000_010
    assert parsed.rows[0].period_end == date(2025, 12, 31)


def test_months_end_their_period_and_observed_time_is_the_period_end_or_now() -> None:
    parsed = parse_file(
        "social_insurance", _csv("period,insured_headcount,contribution_paid", "2024-02,10,3000"), today=TODAY
    )
    assert parsed.rows[0].period_end == date(2024, 2, 29)
    now = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
    assert d.observed_at(date(2024, 2, 29), now=now) == datetime(2024, 2, 29, 16, 0, tzinfo=UTC)
    assert d.observed_at(date(2026, 11, 30), now=now) == now  # the month has not ended


# --- bad files ---------------------------------------------------------------------------------------


def test_a_bad_balance_sheet_lists_every_problem() -> None:
    content = _csv(
        "period_end,cash,current_assets,total_assets,current_liabilities,total_liabilities,notes",
        "2025-12-31,820000.00,3400000.00,6250000.00,1900000.00,3100000.00,",  # equity column missing
        "2026-12-31,abc,-1,6250000.00,1900000.00,3100000.00,",
        "2025-06-30,1.234,3400000.00,lots,,3100000.00,",
    )
    parsed = parse_file("balance_sheet", content, today=TODAY)
    assert parsed.rows == [] or all(r.number == 2 for r in parsed.rows)
    assert _found(parsed) == {
        (1, "notes", "unknown column"),
        (1, "equity", "missing column"),
        (3, "period_end", "must not be in the future"),
        (3, "cash", "not an amount (write it like 1234.56)"),
        (3, "current_assets", "must not be negative"),
        (4, "cash", "more than 2 decimals"),
        (4, "total_assets", "not an amount (write it like 1234.56)"),
        (4, "current_liabilities", "required"),
    }


def test_an_unbalanced_balance_sheet_is_refused_beyond_one_fen() -> None:
    header = "period_end,current_assets,total_assets,current_liabilities,total_liabilities,equity"
    within = parse_file("balance_sheet", _csv(header, "2025-12-31,10,100.00,5,50.00,50.01"), today=TODAY)
    assert within.problems == []
    beyond = parse_file(
        "balance_sheet",
        _csv(header, "2025-12-31,10,100.00,5,50.00,50.02", "2024-12-31,200,100,5,50,50"),
        today=TODAY,
    )
    assert _found(beyond) == {
        (2, "total_assets", "must equal total_liabilities + equity (off by -0.02)"),
        (3, "current_assets", "must not exceed total_assets"),
    }


def test_cash_flow_must_add_up() -> None:
    header = "period_start,period_end,operating,investing,financing,net_change,opening_cash,closing_cash"
    parsed = parse_file(
        "cash_flow",
        _csv(
            header,
            "2025-01-01,2025-12-31,100,-40,-10,50,20,70",
            "2024-01-01,2024-12-31,100,-40,-10,60,20,80",
            "2023-01-01,2023-12-31,100,-40,-10,50,20,71",
            "2022-12-31,2022-01-01,100,-40,-10,50,,",
        ),
        today=TODAY,
    )
    assert _found(parsed) == {
        (3, "net_change", "must equal operating + investing + financing (off by 10.00)"),
        (4, "closing_cash", "must equal opening_cash + net_change"),
        (5, "period_end", "must not be before period_start"),
    }


def test_the_same_problems_are_found_in_xlsx() -> None:
    rows: list[list[Any]] = [
        ["period", "tax_type", "amount_paid", "paid_on", "colour"],
        ["2026-10", "vat", 100.25, date(2026, 11, 14), None],
        ["2027-01", "wealth", -5, "2026-13-01", None],
        ["2026-10", "vat", 0.001, None, None],
        ["2026-09", "stamp", "ten", datetime(2026, 10, 9, 15, 30), None],
    ]
    parsed = parse_file("tax_payments", _xlsx(rows), today=TODAY)
    assert _found(parsed) == {
        (1, "colour", "unknown column"),
        (3, "period", "must not be in the future"),
        (
            3,
            "tax_type",
            f"must be one of: {', '.join(DATASETS[DatasetKind.TAX_PAYMENTS].column('tax_type').allowed)}",
        ),
        (3, "amount_paid", "must not be negative"),
        (3, "paid_on", "no such date"),
        (4, "amount_paid", "more than 2 decimals"),
        (5, "amount_paid", "not an amount (write it like 1234.56)"),
        (5, "paid_on", "a date without a time of day"),
    }


def test_repeated_keys_and_record_rules() -> None:
    header = "as_of,case_number,court,case_type,role,status,filed_on,concluded_on"
    parsed = parse_file(
        "court_records",
        _csv(
            header,
            "2025-12-31,(2024)A1,Court,civil,defendant,judged,2024-03-01,2024-09-01",
            "2025-12-31,(2024)A1,Court,civil,defendant,judged,2024-03-01,2024-09-01",
            "2025-12-31,(2024)A2,Court,civil,defendant,judged,2024-03-01,",
            "2025-12-31,(2024)A3,Court,civil,defendant,pending,2026-01-05,",
        ),
        today=TODAY,
    )
    assert _found(parsed) == {
        (3, "case_number", "repeats row 2 (same case_number)"),
        (4, "concluded_on", "required when status is judged"),
        (5, "as_of", "must not be before filed_on"),
    }


def test_file_level_problems() -> None:
    assert _found(parse_file("patents", b"", today=TODAY)) == {(None, None, "the file is empty")}
    assert _found(parse_file("patents", "名称".encode("gbk"), today=TODAY)) == {
        (None, None, "the file is neither XLSX nor UTF-8 text; save it as “CSV UTF-8” or XLSX")
    }
    assert _found(parse_file("patents", b"\xd0\xcf\x11\xe0rest", today=TODAY)) == {
        (None, None, "old .xls files are not read; save it as .xlsx or CSV")
    }
    assert _found(parse_file("patents", b"PK\x03\x04broken", today=TODAY)) == {
        (None, None, "not a readable XLSX file")
    }
    header_only = parse_file(
        "social_insurance", _csv("period,insured_headcount,contribution_paid"), today=TODAY
    )
    assert _found(header_only) == {(None, None, "the file has no data rows")}


def test_json_rows_refuse_floats_unknown_columns_and_missing_values() -> None:
    good = {"period": "2026-10", "insured_headcount": 12, "contribution_paid": "3600.00"}
    parsed = parse_json_rows(
        "social_insurance",
        [good, {**good, "contribution_paid": 3600.5, "bonus": 1}, {"period": "2026-09"}, "row"],
        today=TODAY,
    )
    assert parsed.rows == []
    assert _found(parsed) == {
        (1, "contribution_paid", d.FLOAT_REFUSED),
        (1, "bonus", "unknown column"),
        (2, "insured_headcount", "required"),
        (2, "contribution_paid", "required"),
        (3, None, "must be an object of column: value"),
    }
    ok = parse_json_rows("social_insurance", [good], today=TODAY)
    assert ok.problems == []
    assert ok.rows[0].as_json(DATASETS[DatasetKind.SOCIAL_INSURANCE])["contribution_paid_minor"] == 360_000


def test_problems_are_capped_with_a_count_of_the_rest() -> None:
    found = [Problem(n, "amount", "required") for n in range(2, 252)] + [Problem(None, None, "x")]
    listed = problems_of(found, limit=200)
    assert len(listed) == 201
    assert listed[0].loc == ("rows", 2, "amount")
    assert listed[-1].loc == ("rows",)
    assert listed[-1].msg == "…and 51 more problems"
    assert problems_of([Problem(None, None, "the file is empty")])[0].loc == ("file",)


# --- money -------------------------------------------------------------------------------------------


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_money_text_round_trips(minor: int) -> None:
    text = d.format_money(minor)
    assert d.parse_money(text) == minor
    grouped = f"{Decimal(minor).scaleb(-2):,.2f}"
    assert d.parse_money(grouped) == minor


@given(st.decimals(min_value=Decimal("-1e12"), max_value=Decimal("1e12"), places=2, allow_nan=False))
def test_money_from_xlsx_numbers_round_trips(amount: Decimal) -> None:
    # Excel keeps numbers as binary floats; the parser reads the value Excel shows.
    cell = d._xlsx_cell(float(amount))
    assert d.parse_money(cell) == int(amount * 100)


@pytest.mark.parametrize("bad", ["1.2.3", "12,34", "1e5", "NaN", "¥12", "--1", "", 1.5, True])
def test_money_refuses_what_is_not_an_amount(bad: object) -> None:
    with pytest.raises(d.CellError):
        d.parse_money(bad)
