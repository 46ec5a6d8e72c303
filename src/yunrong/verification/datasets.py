"""The data sets an enterprise (or a machine source) files into its credit file, one declarative
schema per kind, and the parser that turns a CSV or XLSX file (or JSON rows) into typed rows.

Pure: no web, no database. A parse either yields every row typed or every problem found, each
as (row, column, reason), so that a whole file is fixed in one go. Row numbers are the
spreadsheet's: the header is row 1, the first data row is row 2. JSON rows are numbered from 0
(their index in the list).

Money is written in major units ("1234.56", "1,234.56") and kept as integer minor units (fen);
every data set is in CNY. XLSX number cells are read as the value Excel shows, refused when they
carry more decimals than a fen.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from yunrong.kit.clock import DEFAULT_TIMEZONE
from yunrong.kit.money import CURRENCY_EXPONENT
from yunrong.parties.codes import validate_uscc
from yunrong.parties.model import DataCategory

CURRENCY = "CNY"
MAX_ROWS = 10_000
MAX_FILE_BYTES = 10 * 1024 * 1024
#: An XLSX is a zip; refuse one that would inflate beyond this (a zip bomb).
MAX_XLSX_UNCOMPRESSED = 100 * 1024 * 1024
MAX_KEY = 80
EARLIEST = date(1900, 1, 1)
#: Tolerance of the balance checks, in minor units ("within one fen").
TOLERANCE_MINOR = 1


class DatasetKind(StrEnum):
    BALANCE_SHEET = "balance_sheet"
    INCOME_STATEMENT = "income_statement"
    CASH_FLOW = "cash_flow"
    TAX_PAYMENTS = "tax_payments"
    SOCIAL_INSURANCE = "social_insurance"
    UTILITY_PAYMENTS = "utility_payments"
    BANK_FLOWS = "bank_flows"
    ECOMMERCE_SALES = "ecommerce_sales"
    SUPPLY_CHAIN_LINKS = "supply_chain_links"
    COURT_RECORDS = "court_records"
    PATENTS = "patents"


class ColumnType(StrEnum):
    DATE = "date"  # 2026-10-31
    MONTH = "month"  # 2026-10
    INT = "int"
    MONEY = "money"  # major units, at most two decimals; kept as minor units
    DECIMAL = "decimal"
    STR = "str"
    ENUM = "enum"


T = ColumnType


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    description: str
    example: str
    required: bool = True
    min: Decimal | None = None
    max: Decimal | None = None
    allowed: tuple[str, ...] = ()
    max_length: int = 200
    #: Dates and months: refuse those after today (False for due and expiry dates).
    past: bool = True

    @property
    def json_name(self) -> str:
        """The name in the stored value: money carries its unit (``total_assets_minor``)."""
        return f"{self.name}_minor" if self.type is T.MONEY else self.name

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type.value,
            "required": self.required,
            "description": self.description,
            "example": self.example,
            "min": str(self.min) if self.min is not None else None,
            "max": str(self.max) if self.max is not None else None,
            "allowed": list(self.allowed),
            "max_length": self.max_length if self.type is T.STR else None,
            "not_in_future": self.past if self.type in (T.DATE, T.MONTH) else None,
        }


Row = dict[str, Any]
#: A row-level check: the typed row → [(column, reason)], run only on rows whose cells all parsed.
Check = Callable[[Row], list[tuple[str, str]]]


@dataclass(frozen=True)
class Dataset:
    kind: DatasetKind
    title: str
    category: DataCategory
    #: The column whose value ends the period the row describes: it gives the fact's observed time.
    period: str
    #: The columns that name a row: the fact's key is ``kind:value:value…``. Two rows of a file
    #: may not share it; a later import with the same key supersedes the earlier fact.
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    checks: tuple[tuple[str, Check], ...] = field(default_factory=tuple)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "title": self.title,
            "category": self.category.value,
            "period_column": self.period,
            "key_columns": list(self.key),
            "currency": CURRENCY,
            "columns": [c.as_dict() for c in self.columns],
            "checks": [description for description, _ in self.checks],
        }


# --- row checks ----------------------------------------------------------------------------------


def _money(row: Row, name: str) -> int:
    value = row.get(name)
    return int(value) if value is not None else 0


def _balanced(total: str, parts: Sequence[str]) -> Check:
    def check(row: Row) -> list[tuple[str, str]]:
        expected = sum(_money(row, p) for p in parts)
        if abs(_money(row, total) - expected) > TOLERANCE_MINOR:
            shown = " + ".join(parts)
            difference = format_money(_money(row, total) - expected)
            return [(total, f"must equal {shown} (off by {difference})")]
        return []

    return check


def _not_above(small: str, large: str) -> Check:
    def check(row: Row) -> list[tuple[str, str]]:
        if row.get(small) is not None and row.get(large) is not None and row[small] > row[large]:
            return [(small, f"must not exceed {large}")]
        return []

    return check


def _sum_not_above(parts: Sequence[str], total: str) -> Check:
    def check(row: Row) -> list[tuple[str, str]]:
        present = [p for p in parts if row.get(p) is not None]
        if present and sum(row[p] for p in present) > _money(row, total) + TOLERANCE_MINOR:
            return [(total, f"must be at least {' + '.join(present)}")]
        return []

    return check


def _not_before(later: str, earlier: str) -> Check:
    def check(row: Row) -> list[tuple[str, str]]:
        if row.get(later) is not None and row.get(earlier) is not None and row[later] < row[earlier]:
            return [(later, f"must not be before {earlier}")]
        return []

    return check


def _period_length(start: str, end: str, days: int) -> Check:
    def check(row: Row) -> list[tuple[str, str]]:
        if row[end] < row[start]:
            return [(end, f"must not be before {start}")]
        if (row[end] - row[start]).days >= days:
            return [(end, f"the period must be shorter than {days} days")]
        return []

    return check


def _required_with(needed: Sequence[str], when: str) -> Check:
    def check(row: Row) -> list[tuple[str, str]]:
        if row.get(when) is None:
            return []
        return [(n, f"required when {when} is given") for n in needed if row.get(n) is None]

    return check


def _uscc(name: str) -> Check:
    def check(row: Row) -> list[tuple[str, str]]:
        value = row.get(name)
        return [(name, p) for p in validate_uscc(value)] if value else []

    return check


def _opening_plus_net(opening: str, net: str, closing: str) -> Check:
    def check(row: Row) -> list[tuple[str, str]]:
        if row.get(opening) is None or row.get(closing) is None:
            return []
        if abs(row[opening] + row[net] - row[closing]) > TOLERANCE_MINOR:
            return [(closing, f"must equal {opening} + {net}")]
        return []

    return check


def _closing_from_flows(row: Row) -> list[tuple[str, str]]:
    if row.get("opening_balance") is None:
        return []
    expected = row["opening_balance"] + row["inflow"] - row["outflow"]
    if abs(row["closing_balance"] - expected) > TOLERANCE_MINOR:
        return [("closing_balance", "must equal opening_balance + inflow - outflow")]
    return []


_CONCLUDED = ("judged", "settled", "withdrawn", "concluded")


def _court_conclusion(row: Row) -> list[tuple[str, str]]:
    if row["status"] in _CONCLUDED and row.get("concluded_on") is None:
        return [("concluded_on", f"required when status is {row['status']}")]
    if row["status"] not in _CONCLUDED and row.get("concluded_on") is not None:
        return [("concluded_on", f"must be empty while status is {row['status']}")]
    return []


def _granted(row: Row) -> list[tuple[str, str]]:
    if row["status"] in ("granted", "lapsed", "expired") and row.get("granted_on") is None:
        return [("granted_on", f"required when status is {row['status']}")]
    if row["status"] == "applied" and row.get("granted_on") is not None:
        return [("granted_on", "must be empty while status is applied")]
    return []


# --- the schemas ---------------------------------------------------------------------------------

ZERO = Decimal(0)


def _m(name: str, description: str, example: str, *, required: bool = True, signed: bool = False) -> Column:
    return Column(name, T.MONEY, description, example, required=required, min=None if signed else ZERO)


def _d(name: str, description: str, example: str, *, required: bool = True, past: bool = True) -> Column:
    return Column(name, T.DATE, description, example, required=required, past=past)


def _month(description: str = "the month (YYYY-MM)") -> Column:
    return Column("period", T.MONTH, description, "2025-12")


def _e(name: str, description: str, allowed: tuple[str, ...], *, required: bool = True) -> Column:
    return Column(name, T.ENUM, description, allowed[0], required=required, allowed=allowed)


def _s(name: str, description: str, example: str, *, max_length: int, required: bool = True) -> Column:
    return Column(name, T.STR, description, example, required=required, max_length=max_length)


def _i(name: str, description: str, example: str, *, required: bool = True) -> Column:
    return Column(name, T.INT, description, example, required=required, min=ZERO)


_PERIOD_COLUMNS = (
    _d("period_start", "first day of the period", "2025-01-01"),
    _d("period_end", "last day of the period", "2025-12-31"),
)

DATASETS: dict[DatasetKind, Dataset] = {
    d.kind: d
    for d in (
        Dataset(
            DatasetKind.BALANCE_SHEET,
            "Balance sheet",
            DataCategory.FINANCIALS,
            period="period_end",
            key=("period_end",),
            columns=(
                _d("period_end", "the balance-sheet date", "2025-12-31"),
                _m("cash", "cash and equivalents", "820000.00", required=False),
                _m("accounts_receivable", "accounts receivable", "1450000.00", required=False),
                _m("inventory", "inventories", "960000.00", required=False),
                _m("current_assets", "total current assets", "3400000.00"),
                _m("total_assets", "total assets", "6250000.00"),
                _m("current_liabilities", "total current liabilities", "1900000.00"),
                _m("total_liabilities", "total liabilities", "3100000.00"),
                _m("equity", "owners' equity (may be negative)", "3150000.00", signed=True),
            ),
            checks=(
                (
                    "total_assets = total_liabilities + equity",
                    _balanced("total_assets", ("total_liabilities", "equity")),
                ),
                ("current_assets ≤ total_assets", _not_above("current_assets", "total_assets")),
                (
                    "current_liabilities ≤ total_liabilities",
                    _not_above("current_liabilities", "total_liabilities"),
                ),
                (
                    "cash + accounts_receivable + inventory ≤ current_assets",
                    _sum_not_above(("cash", "accounts_receivable", "inventory"), "current_assets"),
                ),
            ),
        ),
        Dataset(
            DatasetKind.INCOME_STATEMENT,
            "Income statement",
            DataCategory.FINANCIALS,
            period="period_end",
            key=("period_start", "period_end"),
            columns=(
                *_PERIOD_COLUMNS,
                _m("revenue", "operating revenue", "12800000.00"),
                _m("cost_of_sales", "cost of sales", "9100000.00"),
                _m("operating_profit", "operating profit (may be negative)", "1350000.00", signed=True),
                _m("interest_expense", "interest expense", "120000.00", required=False),
                _m(
                    "income_tax",
                    "income tax expense (may be negative)",
                    "210000.00",
                    required=False,
                    signed=True,
                ),
                _m("net_profit", "net profit (may be negative)", "1020000.00", signed=True),
            ),
            checks=(
                (
                    "period_start ≤ period_end, a period shorter than 367 days",
                    _period_length("period_start", "period_end", 367),
                ),
            ),
        ),
        Dataset(
            DatasetKind.CASH_FLOW,
            "Cash-flow statement",
            DataCategory.FINANCIALS,
            period="period_end",
            key=("period_start", "period_end"),
            columns=(
                *_PERIOD_COLUMNS,
                _m("operating", "net cash from operating activities", "1180000.00", signed=True),
                _m("investing", "net cash from investing activities", "-450000.00", signed=True),
                _m("financing", "net cash from financing activities", "-200000.00", signed=True),
                _m("net_change", "net change in cash", "530000.00", signed=True),
                _m("opening_cash", "cash at the start of the period", "290000.00", required=False),
                _m("closing_cash", "cash at the end of the period", "820000.00", required=False),
            ),
            checks=(
                (
                    "period_start ≤ period_end, a period shorter than 367 days",
                    _period_length("period_start", "period_end", 367),
                ),
                (
                    "net_change = operating + investing + financing",
                    _balanced("net_change", ("operating", "investing", "financing")),
                ),
                (
                    "closing_cash = opening_cash + net_change",
                    _opening_plus_net("opening_cash", "net_change", "closing_cash"),
                ),
            ),
        ),
        Dataset(
            DatasetKind.TAX_PAYMENTS,
            "Tax payments",
            DataCategory.TAX_AND_SOCIAL_INSURANCE,
            period="period",
            key=("period", "tax_type"),
            columns=(
                _month("the tax period (YYYY-MM)"),
                _e(
                    "tax_type",
                    "the tax",
                    (
                        "vat",
                        "corporate_income",
                        "individual_income_withheld",
                        "stamp",
                        "urban_maintenance",
                        "education_surcharge",
                        "property",
                        "land_use",
                        "other",
                    ),
                ),
                _m("amount_due", "tax assessed for the period", "86000.00", required=False),
                _m("amount_paid", "tax paid for the period", "86000.00"),
                _d("paid_on", "date of payment", "2026-01-15", required=False),
            ),
        ),
        Dataset(
            DatasetKind.SOCIAL_INSURANCE,
            "Social-insurance headcount",
            DataCategory.TAX_AND_SOCIAL_INSURANCE,
            period="period",
            key=("period",),
            columns=(
                _month(),
                _i("insured_headcount", "employees insured that month", "46"),
                _m("contribution_base", "total contribution base", "368000.00", required=False),
                _m("contribution_paid", "contributions paid (employer and employees)", "110400.00"),
                _m("arrears", "contributions overdue at the month's end", "0.00", required=False),
            ),
        ),
        Dataset(
            DatasetKind.UTILITY_PAYMENTS,
            "Utility payments",
            # Payments to public utilities are read with tax and social insurance: all three are
            # the enterprise's record of paying public bodies on time.
            DataCategory.TAX_AND_SOCIAL_INSURANCE,
            period="period",
            key=("period", "utility"),
            columns=(
                _month("the billing month (YYYY-MM)"),
                _e("utility", "which utility", ("electricity", "water", "gas", "heat", "telecom")),
                _m("amount_billed", "amount billed", "23500.00"),
                _m("amount_paid", "amount paid", "23500.00"),
                _d("paid_on", "date of payment", "2026-01-10", required=False),
                _i("days_overdue", "days paid after the due date (0: on time)", "0", required=False),
                Column("usage", T.DECIMAL, "consumption in usage_unit", "41200", required=False, min=ZERO),
                _s("usage_unit", "unit of usage (kWh, m3, …)", "kWh", max_length=10, required=False),
            ),
            checks=(("usage_unit given with usage", _required_with(("usage_unit",), "usage")),),
        ),
        Dataset(
            DatasetKind.BANK_FLOWS,
            "Bank-account flows",
            DataCategory.BANK_FLOWS,
            period="period",
            key=("period", "bank_name", "account_last4"),
            columns=(
                _month(),
                _s("bank_name", "the bank", "Bank of Nanjing", max_length=40),
                Column("account_last4", T.STR, "last four digits of the account", "0086", max_length=4),
                _m(
                    "opening_balance",
                    "balance at the start of the month",
                    "410000.00",
                    required=False,
                    signed=True,
                ),
                _m("inflow", "total credits in the month", "1620000.00"),
                _m("outflow", "total debits in the month", "1490000.00"),
                _m(
                    "closing_balance",
                    "balance at the end of the month (negative: overdrawn)",
                    "540000.00",
                    signed=True,
                ),
                _i("transactions", "number of transactions", "312", required=False),
            ),
            checks=(("closing_balance = opening_balance + inflow - outflow", _closing_from_flows),),
        ),
        Dataset(
            DatasetKind.ECOMMERCE_SALES,
            "E-commerce sales",
            DataCategory.ECOMMERCE,
            period="period",
            key=("period", "platform", "store_id"),
            columns=(
                _month(),
                _e(
                    "platform",
                    "the marketplace",
                    ("tmall", "taobao", "jd", "pinduoduo", "douyin", "kuaishou", "amazon", "other"),
                ),
                _s("store_id", "the store's id on the platform", "lvyuan-flagship", max_length=40),
                _m("gross_sales", "gross merchandise sales", "386000.00"),
                _m("refunds", "refunds paid", "11200.00"),
                _i("orders", "orders", "2140"),
                _i("refund_orders", "orders refunded", "58", required=False),
                Column(
                    "rating",
                    T.DECIMAL,
                    "store rating, 0 to 5",
                    "4.8",
                    required=False,
                    min=ZERO,
                    max=Decimal(5),
                ),
            ),
            checks=(
                ("refunds ≤ gross_sales", _not_above("refunds", "gross_sales")),
                ("refund_orders ≤ orders", _not_above("refund_orders", "orders")),
            ),
        ),
        Dataset(
            DatasetKind.SUPPLY_CHAIN_LINKS,
            "Supply-chain links",
            DataCategory.SUPPLY_CHAIN,
            period="as_of",
            key=("core_credit_code", "receivable_id"),
            columns=(
                _d("as_of", "the date the link (and receivable) was confirmed", "2025-12-31"),
                _s(
                    "core_enterprise",
                    "the core enterprise's name",
                    "Jiangsu Huatian Food Group",
                    max_length=100,
                ),
                Column(
                    "core_credit_code",
                    T.STR,
                    "its unified social credit code",
                    "91320100MA1W7H2K30",
                    max_length=18,
                ),
                _e("relationship", "what the core enterprise is to you", ("customer", "supplier")),
                _d("since", "when the relationship began", "2021-03-01", required=False),
                _s(
                    "receivable_id",
                    "the receivable's reference",
                    "AR-2025-0117",
                    max_length=30,
                    required=False,
                ),
                _m("receivable_amount", "amount of the receivable", "680000.00", required=False),
                _d("due_on", "the receivable's due date", "2026-03-31", required=False, past=False),
                _e(
                    "confirmation",
                    "the core enterprise's confirmation of the receivable",
                    ("confirmed", "unconfirmed", "disputed"),
                    required=False,
                ),
            ),
            checks=(
                ("core_credit_code is a valid credit code", _uscc("core_credit_code")),
                ("since ≤ as_of", _not_before("as_of", "since")),
                (
                    "a receivable has an amount, a due date and a confirmation",
                    _required_with(("receivable_amount", "due_on", "confirmation"), "receivable_id"),
                ),
                (
                    "a receivable amount belongs to a receivable_id",
                    _required_with(("receivable_id",), "receivable_amount"),
                ),
            ),
        ),
        Dataset(
            DatasetKind.COURT_RECORDS,
            "Court and enforcement records",
            # Public legal records sit with the enterprise's public registration facts.
            DataCategory.IDENTITY,
            period="as_of",
            key=("case_number",),
            columns=(
                _d("as_of", "the date this record was read", "2025-12-31"),
                _s("case_number", "the case number", "(2024)苏0102民初1234号", max_length=60),
                _s("court", "the court", "Nanjing Xuanwu District People's Court", max_length=100),
                _e(
                    "case_type",
                    "kind of case",
                    ("civil", "commercial", "administrative", "criminal", "enforcement", "bankruptcy"),
                ),
                _e(
                    "role",
                    "the enterprise's role",
                    ("defendant", "plaintiff", "third_party", "applicant", "respondent", "judgment_debtor"),
                ),
                _m("amount", "amount in dispute or to be enforced", "150000.00", required=False),
                _e(
                    "status",
                    "state of the case",
                    ("concluded", "pending", "judged", "settled", "withdrawn", "enforcing"),
                ),
                _d("filed_on", "date filed", "2024-03-12"),
                _d("concluded_on", "date concluded", "2024-09-30", required=False),
                _e(
                    "dishonest_debtor", "listed as a dishonest judgment debtor", ("no", "yes"), required=False
                ),
            ),
            checks=(
                ("filed_on ≤ as_of", _not_before("as_of", "filed_on")),
                ("filed_on ≤ concluded_on", _not_before("concluded_on", "filed_on")),
                ("concluded_on given exactly when the case is over", _court_conclusion),
            ),
        ),
        Dataset(
            DatasetKind.PATENTS,
            "Patents",
            # Patents are public registrations, like the enterprise's own.
            DataCategory.IDENTITY,
            period="as_of",
            key=("patent_number",),
            columns=(
                _d("as_of", "the date this record was read", "2025-12-31"),
                _s("patent_number", "the patent or application number", "ZL202310123456.7", max_length=40),
                _s("title", "the title", "Cold-chain humidity controller", max_length=200),
                _e("patent_type", "kind of patent", ("invention", "utility_model", "design")),
                _e("status", "legal status", ("granted", "applied", "lapsed", "expired")),
                _d("filed_on", "application date", "2023-05-08"),
                _d("granted_on", "grant date", "2024-11-19", required=False),
                _d("expires_on", "expiry date", "2043-05-08", required=False, past=False),
                _e("pledged", "pledged as security", ("no", "yes"), required=False),
            ),
            checks=(
                ("filed_on ≤ as_of", _not_before("as_of", "filed_on")),
                ("filed_on ≤ granted_on", _not_before("granted_on", "filed_on")),
                ("granted_on ≤ expires_on", _not_before("expires_on", "granted_on")),
                ("granted_on given exactly when granted", _granted),
            ),
        ),
    )
}


def dataset(kind: str) -> Dataset | None:
    try:
        return DATASETS[DatasetKind(kind)]
    except ValueError:
        return None


# --- cells ---------------------------------------------------------------------------------------

_MONEY = re.compile(r"^-?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?$")
_INT = re.compile(r"^-?\d+$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class CellError(ValueError):
    """A cell that does not hold a value of its column's type (the message is the reason)."""


FLOAT_REFUSED = 'send numbers as text, e.g. "1234.56" (binary floats lose fen)'


def parse_money(raw: object, currency: str = CURRENCY) -> int:
    """A major-unit amount ("1,234.56", "-0.5", 12, Decimal) as integer minor units. Floats are
    refused: read them as text first."""
    exponent = CURRENCY_EXPONENT[currency]
    if isinstance(raw, float):
        raise CellError(FLOAT_REFUSED)
    if isinstance(raw, bool):
        raise CellError("not an amount")
    if isinstance(raw, int):
        return int(raw * 10**exponent)
    if isinstance(raw, Decimal):
        amount = raw
    else:
        text = str(raw).strip()
        if not _MONEY.match(text):
            raise CellError("not an amount (write it like 1234.56)")
        amount = Decimal(text.replace(",", ""))
    if not amount.is_finite():
        raise CellError("not an amount")
    scaled = amount.scaleb(exponent)
    if scaled != scaled.to_integral_value():
        raise CellError(f"more than {exponent} decimals")
    return int(scaled)


def format_money(minor: int, currency: str = CURRENCY) -> str:
    """Minor units as the major-unit text ``parse_money`` reads back ("-1234.50")."""
    exponent = CURRENCY_EXPONENT[currency]
    return f"{Decimal(minor).scaleb(-exponent):.{exponent}f}"


def _int(raw: object) -> int:
    if isinstance(raw, float):
        raise CellError(FLOAT_REFUSED)
    if isinstance(raw, bool):
        raise CellError("not a whole number")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, Decimal):
        if raw != raw.to_integral_value():
            raise CellError("not a whole number")
        return int(raw)
    text = str(raw).strip().replace(",", "")
    if not _INT.match(text):
        raise CellError("not a whole number")
    return int(text)


def _decimal(raw: object) -> Decimal:
    if isinstance(raw, float):
        raise CellError(FLOAT_REFUSED)
    if isinstance(raw, bool):
        raise CellError("not a number")
    if isinstance(raw, int | Decimal):
        return Decimal(raw)
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation:
        raise CellError("not a number") from None
    if not value.is_finite():
        raise CellError("not a number")
    return value


def _date(raw: object) -> date:
    if isinstance(raw, datetime):
        if raw.time() != time(0):
            raise CellError("a date without a time of day")
        return raw.date()
    if isinstance(raw, date):
        return raw
    text = str(raw).strip()
    if not _DATE.match(text):
        raise CellError("not a date (write it like 2025-12-31)")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CellError("no such date") from None


def _month_of(raw: object) -> date:
    """A month, held as its first day."""
    if isinstance(raw, datetime | date):
        day = raw.date() if isinstance(raw, datetime) else raw
        if day.day != 1:
            raise CellError("not a month (write it like 2025-12)")
        return day
    found = _MONTH.match(str(raw).strip())
    if not found or not 1 <= int(found.group(2)) <= 12:
        raise CellError("not a month (write it like 2025-12)")
    return date(int(found.group(1)), int(found.group(2)), 1)


def month_end(first: date) -> date:
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return following - timedelta(days=1)


def parse_cell(column: Column, raw: object, *, today: date) -> Any:
    """The typed value of one non-empty cell, or CellError with the reason."""
    t = column.type
    value: Any
    if t is T.MONEY:
        value = parse_money(raw)
        bound: Any = value
        low: Any = parse_money(column.min) if column.min is not None else None
        high: Any = parse_money(column.max) if column.max is not None else None
    elif t is T.INT:
        value = bound = _int(raw)
        low = int(column.min) if column.min is not None else None
        high = int(column.max) if column.max is not None else None
    elif t is T.DECIMAL:
        value = bound = _decimal(raw)
        low, high = column.min, column.max
    elif t in (T.DATE, T.MONTH):
        value = _date(raw) if t is T.DATE else _month_of(raw)
        if value < EARLIEST:
            raise CellError(f"must not be before {EARLIEST.year}")
        if column.past and value > today:
            raise CellError("must not be in the future")
        return value
    else:
        text = str(raw).strip()
        if t is T.ENUM:
            if text not in column.allowed:
                raise CellError(f"must be one of: {', '.join(column.allowed)}")
        elif len(text) > column.max_length:
            raise CellError(f"must be at most {column.max_length} characters")
        elif any(ord(c) < 32 for c in text):
            raise CellError("must not contain control characters")
        return text
    if low is not None and bound < low:
        raise CellError("must not be negative" if low == 0 else f"must be at least {column.min}")
    if high is not None and bound > high:
        raise CellError(f"must be at most {column.max}")
    return value


def _blank(raw: object) -> bool:
    return raw is None or (isinstance(raw, str) and not raw.strip())


# --- rows ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One problem: ``row`` None (and ``column`` None) for the file as a whole."""

    row: int | None
    column: str | None
    reason: str


@dataclass(frozen=True)
class ParsedRow:
    number: int
    values: Row
    key: str
    #: The last day of the period the row describes (from the period column).
    period_end: date

    def as_json(self, ds: Dataset) -> dict[str, Any]:
        """The row as plain JSON: money as integer minor units (``*_minor``), dates ISO-8601,
        months YYYY-MM, decimals as text."""
        out: dict[str, Any] = {}
        for column in ds.columns:
            value = self.values.get(column.name)
            if value is None:
                out[column.json_name] = None
            elif column.type is T.MONTH:
                out[column.json_name] = value.strftime("%Y-%m")
            elif column.type is T.DATE:
                out[column.json_name] = value.isoformat()
            elif column.type is T.DECIMAL:
                out[column.json_name] = str(value)
            else:
                out[column.json_name] = value
        if any(c.type is T.MONEY for c in ds.columns):
            out["currency"] = CURRENCY
        return out


@dataclass(frozen=True)
class Parsed:
    rows: list[ParsedRow]
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        return not self.problems


def _key_text(column: Column, value: Any) -> str:
    if value is None:
        return "-"
    if column.type is T.MONTH:
        return str(value.strftime("%Y-%m"))
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _period_end(ds: Dataset, values: Row) -> date:
    column = ds.column(ds.period)
    value: date = values[ds.period]
    return month_end(value) if column.type is T.MONTH else value


def parse_records(
    ds: Dataset,
    records: Iterable[tuple[int, Mapping[str, object]]],
    *,
    today: date,
    header_row: int | None = 1,
) -> Parsed:
    """Type every (row number, {column: raw}) record; collect every problem. ``header_row`` is
    where a missing or unknown column is reported (None: on each record, for JSON rows)."""
    rows: list[ParsedRow] = []
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    known = set(ds.names)
    for number, record in records:
        values: Row = {}
        row_problems: list[Problem] = []
        if header_row is None:
            row_problems.extend(
                Problem(number, name, "unknown column") for name in sorted(set(record) - known)
            )
        for column in ds.columns:
            raw = record.get(column.name)
            if _blank(raw):
                values[column.name] = None
                if column.required and (header_row is None or column.name in record):
                    row_problems.append(Problem(number, column.name, "required"))
                continue
            try:
                values[column.name] = parse_cell(column, raw, today=today)
            except CellError as exc:
                row_problems.append(Problem(number, column.name, str(exc)))
        # A required column missing from the header is reported once, on the header.
        complete = all(values.get(c.name) is not None for c in ds.columns if c.required)
        if not row_problems and complete:
            for _description, check in ds.checks:
                row_problems.extend(Problem(number, col, reason) for col, reason in check(values))
        if not row_problems and complete:
            key = ":".join([ds.kind.value, *(_key_text(ds.column(k), values[k]) for k in ds.key)])
            if len(key) > MAX_KEY:
                row_problems.append(Problem(number, ds.key[-1], "too long to name the record"))
            elif key in seen:
                shown = ", ".join(ds.key)
                row_problems.append(Problem(number, ds.key[-1], f"repeats row {seen[key]} (same {shown})"))
            else:
                seen[key] = number
                rows.append(ParsedRow(number, values, key, _period_end(ds, values)))
        problems.extend(row_problems)
    return Parsed(rows, problems)


def _header_problems(ds: Dataset, header: Sequence[str]) -> tuple[list[Problem], list[str]]:
    names = [h.strip().lstrip("\ufeff").lower() for h in header]
    problems: list[Problem] = []
    seen: set[str] = set()
    for name in names:
        if not name:
            continue
        if name in seen:
            problems.append(Problem(1, name, "column given twice"))
        elif name not in ds.names:
            problems.append(Problem(1, name, "unknown column"))
        seen.add(name)
    problems.extend(
        Problem(1, c.name, "missing column") for c in ds.columns if c.required and c.name not in seen
    )
    return problems, names


def _table(ds: Dataset, table: Iterable[Sequence[object]], *, today: date) -> Parsed:
    iterator = iter(table)
    header = next(iterator, None)
    if header is None or all(_blank(h) for h in header):
        return Parsed([], [Problem(None, None, "the file is empty: the first row names the columns")])
    problems, names = _header_problems(ds, [str(h) if h is not None else "" for h in header])

    def records() -> Iterable[tuple[int, dict[str, object]]]:
        for number, cells in enumerate(iterator, start=2):
            if all(_blank(c) for c in cells):
                continue
            if number > MAX_ROWS + 1:
                problems.append(Problem(None, None, f"more than {MAX_ROWS} rows; split the file"))
                return
            extra = [c for c in cells[len(names) :] if not _blank(c)]
            if extra:
                problems.append(Problem(number, None, "more cells than columns"))
            padded = [*cells, *([None] * (len(names) - len(cells)))]
            yield number, {n: padded[i] for i, n in enumerate(names) if n in ds.names}

    parsed = parse_records(ds, records(), today=today)
    if not parsed.rows and not parsed.problems and not problems:
        problems.append(Problem(None, None, "the file has no data rows"))
    return Parsed(parsed.rows, problems + parsed.problems)


def _csv_rows(content: bytes) -> list[list[str]]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CellError("the file is neither XLSX nor UTF-8 text; save it as “CSV UTF-8” or XLSX") from None
    if "\x00" in text:
        raise CellError("the file is neither XLSX nor CSV text")
    try:
        return list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise CellError(f"not a readable CSV file: {exc}") from None


def _xlsx_cell(value: object) -> object:
    """An XLSX cell as the parser reads it: numbers as the Decimal Excel shows (a float within a
    millionth of a fen-exact value is that value), text as text."""
    if isinstance(value, float):
        exact = Decimal(repr(value))
        near = exact.quantize(Decimal("0.01"))
        return near if abs(exact - near) < Decimal("0.000001") else exact
    if isinstance(value, str | int | date | datetime) or value is None:
        return value
    return str(value)


def _xlsx_rows(content: bytes) -> list[list[object]]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
        inflated = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile:
        raise CellError("not a readable XLSX file") from None
    if inflated > MAX_XLSX_UNCOMPRESSED:
        raise CellError("the XLSX file is too large once unpacked")
    from openpyxl import load_workbook  # type: ignore[import-untyped]

    try:
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception:  # openpyxl raises many kinds of error for a broken workbook
        raise CellError("not a readable XLSX file") from None
    try:
        sheet = workbook.worksheets[0]
        table: list[list[object]] = []
        for cells in sheet.iter_rows(values_only=True):
            table.append([_xlsx_cell(c) for c in cells])
            if len(table) > MAX_ROWS + 2:
                break
        return table
    finally:
        workbook.close()


XLSX_MAGIC = b"PK\x03\x04"
XLS_MAGIC = b"\xd0\xcf\x11\xe0"


def sniff_format(content: bytes) -> str:
    """'xlsx' or 'csv', from the content itself (the file name is not trusted)."""
    return "xlsx" if content.startswith(XLSX_MAGIC) else "csv"


def parse_file(kind: DatasetKind | str, content: bytes, *, today: date) -> Parsed:
    """Every row of a CSV (UTF-8, with or without BOM) or XLSX (its first sheet) file, typed, or
    every problem found in it."""
    ds = DATASETS[DatasetKind(kind)]
    if not content.strip():
        return Parsed([], [Problem(None, None, "the file is empty")])
    if len(content) > MAX_FILE_BYTES:
        return Parsed(
            [], [Problem(None, None, f"the file is larger than {MAX_FILE_BYTES // 1024 // 1024} MB")]
        )
    if content.startswith(XLS_MAGIC):
        return Parsed([], [Problem(None, None, "old .xls files are not read; save it as .xlsx or CSV")])
    try:
        table: list[list[Any]] = (
            _xlsx_rows(content) if sniff_format(content) == "xlsx" else [list(r) for r in _csv_rows(content)]
        )
    except CellError as exc:
        return Parsed([], [Problem(None, None, str(exc))])
    return _table(ds, table, today=today)


def parse_json_rows(kind: DatasetKind | str, rows: Sequence[object], *, today: date) -> Parsed:
    """JSON rows from a machine source: objects keyed by column name, numbered from 0."""
    ds = DATASETS[DatasetKind(kind)]
    if not rows:
        return Parsed([], [Problem(None, None, "no rows")])
    if len(rows) > MAX_ROWS:
        return Parsed([], [Problem(None, None, f"more than {MAX_ROWS} rows; send them in parts")])
    problems: list[Problem] = []
    records: list[tuple[int, Mapping[str, object]]] = []
    for number, row in enumerate(rows):
        if not isinstance(row, Mapping):
            problems.append(Problem(number, None, "must be an object of column: value"))
            continue
        nested = [str(k) for k, v in row.items() if isinstance(v, dict | list)]
        problems.extend(Problem(number, name, "must be a single value") for name in nested)
        records.append((number, {str(k): v for k, v in row.items() if str(k) not in nested}))
    parsed = parse_records(ds, records, today=today, header_row=None)
    return Parsed(parsed.rows if not problems else [], problems + parsed.problems)


# --- observed time and templates -----------------------------------------------------------------


def observed_at(period_end: date, *, now: datetime, timezone: str = DEFAULT_TIMEZONE) -> datetime:
    """When a row's facts held: the end of its period's last day in the platform's time zone, or
    now when the period has not ended yet."""
    end = datetime.combine(period_end + timedelta(days=1), time(0), ZoneInfo(timezone)).astimezone(UTC)
    return min(end, now.astimezone(UTC))


def template_csv(kind: DatasetKind | str) -> bytes:
    """The header and one example row, UTF-8 with a BOM (so that spreadsheet programs read it right)."""
    ds = DATASETS[DatasetKind(kind)]
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(ds.names)
    writer.writerow([c.example for c in ds.columns])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")
