"""The custodian bank's daily statement of the escrow account: ISO 20022 camt.053.001.08 XML and a
flat CSV, both ways (pure: no web, no database).

A statement is read the way a bank means it: every booked entry (``Sts/Cd`` = ``BOOK``) with its
amount as a decimal string, credit or debit, booking and value dates, the bank's own reference
(``AcctSvcrRef``) and the platform's instruction reference (``EndToEndId``); the opening and closing
booked balances (``OPBD``, ``CLBD``) must agree with the entries. A malformed file is refused with
every problem listed at once (``InvalidInput.problems``), never the first one alone.
"""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Literal

from yunrong.kit.errors import FieldProblem, InvalidInput
from yunrong.kit.money import CURRENCY_EXPONENT, Money

NS = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"
CSV_COLUMNS = (
    "booked_on",
    "value_date",
    "bank_reference",
    "end_to_end_id",
    "direction",
    "amount",
    "currency",
)
MAX_STATEMENT_BYTES = 20 * 1024 * 1024
NOT_PROVIDED = "NOTPROVIDED"  # ISO 20022's word for "no end-to-end reference"

Direction = Literal["credit", "debit"]
Format = Literal["camt053", "csv"]

_AMOUNT = re.compile(r"^\d{1,18}(\.\d{1,5})?$")


class MalformedStatement(InvalidInput):
    code = "malformed-statement"
    title = "The bank statement cannot be read"


@dataclass(frozen=True, slots=True)
class StatementEntry:
    """One booked movement on the escrow account, as the bank sees it."""

    bank_reference: str
    end_to_end_id: str | None  # the platform's instruction reference (BI-…), when the bank has one
    direction: Direction  # credit: money into escrow; debit: money out of it
    amount: int  # minor units, positive
    currency: str
    booked_on: date
    value_date: date


@dataclass(frozen=True, slots=True)
class BankStatement:
    statement_id: str
    statement_date: date
    currency: str
    account_id: str | None  # the escrow account's identifier (None in a CSV, which has no header)
    entries: tuple[StatementEntry, ...]
    created_at: datetime | None = None
    opening_balance: int | None = None  # signed minor units; None when the format carries none
    closing_balance: int | None = None
    servicer: str | None = None


# --- amounts -----------------------------------------------------------------------------------------


def format_amount(minor: int, currency: str) -> str:
    """``123456`` CNY → ``"1234.56"`` (a decimal string, never a float)."""
    exponent = CURRENCY_EXPONENT[currency]
    return f"{Money(abs(minor), currency).decimal:.{exponent}f}"


def _parse_amount(
    text: str | None, currency: str | None, loc: tuple[str | int, ...], problems: list[FieldProblem]
) -> int | None:
    raw = (text or "").strip()
    if not raw:
        problems.append(FieldProblem(loc, "the amount is missing", "missing"))
        return None
    if not _AMOUNT.match(raw):
        problems.append(FieldProblem(loc, f"{raw!r} is not a decimal amount like 1234.56"))
        return None
    if currency is None or currency not in CURRENCY_EXPONENT:
        return None  # the currency's own problem is reported where it is read
    try:
        scaled = Decimal(raw).scaleb(CURRENCY_EXPONENT[currency])
    except InvalidOperation:  # pragma: no cover - the pattern above admits only valid decimals
        problems.append(FieldProblem(loc, f"{raw!r} is not a decimal amount"))
        return None
    if scaled != scaled.to_integral_value():
        problems.append(
            FieldProblem(loc, f"{raw} has more than {CURRENCY_EXPONENT[currency]} decimals for {currency}")
        )
        return None
    return int(scaled)


def _parse_currency(text: str | None, loc: tuple[str | int, ...], problems: list[FieldProblem]) -> str | None:
    raw = (text or "").strip()
    if not raw:
        problems.append(FieldProblem(loc, "the currency is missing", "missing"))
        return None
    if raw not in CURRENCY_EXPONENT:
        problems.append(FieldProblem(loc, f"unknown currency {raw!r}"))
        return None
    return raw


def _parse_date(text: str | None, loc: tuple[str | int, ...], problems: list[FieldProblem]) -> date | None:
    raw = (text or "").strip()
    if not raw:
        problems.append(FieldProblem(loc, "the date is missing", "missing"))
        return None
    try:
        return date.fromisoformat(raw[:10]) if len(raw) >= 10 else date.fromisoformat(raw)
    except ValueError:
        problems.append(FieldProblem(loc, f"{raw!r} is not a date (YYYY-MM-DD)"))
        return None


def _balance_check(
    opening: int | None, closing: int | None, entries: Sequence[StatementEntry]
) -> list[FieldProblem]:
    if opening is None or closing is None:
        return []
    moved = sum(e.amount if e.direction == "credit" else -e.amount for e in entries)
    if opening + moved != closing:
        return [
            FieldProblem(
                ("Stmt", "Bal", "CLBD"),
                f"the closing balance {closing} is not the opening balance {opening} plus the "
                f"entries' net {moved} (minor units)",
            )
        ]
    return []


# --- camt.053 ------------------------------------------------------------------------------------------


def _q(tag: str) -> str:
    return f"{{{NS}}}{tag}"


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, _q(tag), attrs)
    if text is not None:
        element.text = text
    return element


def _balance(stmt: ET.Element, code: str, minor: int, currency: str, on: date) -> None:
    bal = _sub(stmt, "Bal")
    _sub(_sub(_sub(bal, "Tp"), "CdOrPrtry"), "Cd", code)
    _sub(bal, "Amt", format_amount(minor, currency), Ccy=currency)
    _sub(bal, "CdtDbtInd", "CRDT" if minor >= 0 else "DBIT")
    _sub(_sub(bal, "Dt"), "Dt", on.isoformat())


def to_camt053(statement: BankStatement, *, message_id: str | None = None) -> bytes:
    """The statement as camt.053.001.08 XML (UTF-8, with an XML declaration)."""
    created = (statement.created_at or datetime.now(UTC)).astimezone(UTC)
    ET.register_namespace("", NS)
    root = ET.Element(_q("Document"))
    report = _sub(root, "BkToCstmrStmt")
    header = _sub(report, "GrpHdr")
    _sub(header, "MsgId", message_id or statement.statement_id)
    _sub(header, "CreDtTm", created.isoformat(timespec="seconds"))
    stmt = _sub(report, "Stmt")
    _sub(stmt, "Id", statement.statement_id)
    _sub(stmt, "CreDtTm", created.isoformat(timespec="seconds"))
    period = _sub(stmt, "FrToDt")
    _sub(period, "FrDtTm", f"{statement.statement_date.isoformat()}T00:00:00+08:00")
    _sub(period, "ToDtTm", f"{statement.statement_date.isoformat()}T23:59:59+08:00")
    acct = _sub(stmt, "Acct")
    _sub(_sub(_sub(acct, "Id"), "Othr"), "Id", statement.account_id or "")
    _sub(acct, "Ccy", statement.currency)
    if statement.servicer:
        _sub(_sub(_sub(acct, "Svcr"), "FinInstnId"), "Nm", statement.servicer)
    opening = statement.opening_balance or 0
    closing = statement.closing_balance
    if closing is None:
        closing = opening + sum(e.amount if e.direction == "credit" else -e.amount for e in statement.entries)
    _balance(stmt, "OPBD", opening, statement.currency, statement.statement_date)
    _balance(stmt, "CLBD", closing, statement.currency, statement.statement_date)
    summary = _sub(stmt, "TxsSummry")
    _sub(_sub(summary, "TtlNtries"), "NbOfNtries", str(len(statement.entries)))
    for entry in statement.entries:
        ntry = _sub(stmt, "Ntry")
        _sub(ntry, "Amt", format_amount(entry.amount, entry.currency), Ccy=entry.currency)
        _sub(ntry, "CdtDbtInd", "CRDT" if entry.direction == "credit" else "DBIT")
        _sub(_sub(ntry, "Sts"), "Cd", "BOOK")
        _sub(_sub(ntry, "BookgDt"), "Dt", entry.booked_on.isoformat())
        _sub(_sub(ntry, "ValDt"), "Dt", entry.value_date.isoformat())
        _sub(ntry, "AcctSvcrRef", entry.bank_reference)
        domain = _sub(_sub(ntry, "BkTxCd"), "Domn")
        _sub(domain, "Cd", "PMNT")
        family = _sub(domain, "Fmly")
        _sub(family, "Cd", "RCDT" if entry.direction == "credit" else "ICDT")
        _sub(family, "SubFmlyCd", "OTHR")
        refs = _sub(_sub(_sub(ntry, "NtryDtls"), "TxDtls"), "Refs")
        _sub(refs, "AcctSvcrRef", entry.bank_reference)
        _sub(refs, "EndToEndId", entry.end_to_end_id or NOT_PROVIDED)
    ET.indent(root)
    content: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return content


def _text(parent: ET.Element | None, path: str) -> str | None:
    if parent is None:
        return None
    found = parent.find(path, {"c": NS})
    if found is None or found.text is None:
        return None
    return found.text.strip() or None


def _refuse(problems: list[FieldProblem], what: str) -> MalformedStatement:
    return MalformedStatement(
        f"the {what} was refused: {len(problems)} problem{'s' if len(problems) != 1 else ''}; nothing was "
        "reconciled",
        problems,
    )


def parse_camt053(content: bytes) -> BankStatement:
    """Read a camt.053.001.08 statement (one ``Stmt``). Raises ``MalformedStatement`` listing every
    problem: not XML, another namespace or message, missing fields, bad amounts, balances that do not
    add up."""
    if len(content) > MAX_STATEMENT_BYTES:
        raise _refuse([FieldProblem(("file",), "the file is larger than 20 MB")], "statement")
    head = content[:4096].lower()
    if b"<!doctype" in head or b"<!entity" in head:
        # A bank statement has no DTD; refusing one closes the door on entity tricks.
        raise _refuse([FieldProblem(("file",), "a DTD or entity declaration is not allowed")], "statement")
    try:
        root = ET.fromstring(content)  # noqa: S314 - no DTD (checked above), so no entity expansion
    except ET.ParseError as exc:
        raise _refuse([FieldProblem(("file",), f"not well-formed XML: {exc}")], "statement") from None
    problems: list[FieldProblem] = []
    if root.tag != _q("Document"):
        found = root.tag[1:].split("}")[0] if root.tag.startswith("{") else "no namespace"
        local = root.tag.split("}")[-1]
        if local == "Document" and found != NS:
            problems.append(
                FieldProblem(("Document",), f"wrong namespace {found!r}: expected {NS!r} (camt.053.001.08)")
            )
        else:
            problems.append(
                FieldProblem(("Document",), f"the root element is {local!r}, not Document in {NS}")
            )
        raise _refuse(problems, "statement")
    stmts = root.findall("c:BkToCstmrStmt/c:Stmt", {"c": NS})
    if not stmts:
        raise _refuse(
            [FieldProblem(("BkToCstmrStmt", "Stmt"), "no statement in the file", "missing")], "statement"
        )
    if len(stmts) > 1:
        problems.append(FieldProblem(("BkToCstmrStmt", "Stmt"), "one statement per file, please"))
    stmt = stmts[0]

    statement_id = _text(stmt, "c:Id")
    if statement_id is None:
        problems.append(FieldProblem(("Stmt", "Id"), "the statement id is missing", "missing"))
    created_at: datetime | None = None
    created_text = _text(stmt, "c:CreDtTm")
    if created_text is None:
        problems.append(FieldProblem(("Stmt", "CreDtTm"), "the creation time is missing", "missing"))
    else:
        try:
            created_at = datetime.fromisoformat(created_text)
            if created_at.tzinfo is None:
                created_at = created_at.replace(tzinfo=UTC)
        except ValueError:
            problems.append(FieldProblem(("Stmt", "CreDtTm"), f"{created_text!r} is not a date and time"))
    account_id = _text(stmt, "c:Acct/c:Id/c:Othr/c:Id") or _text(stmt, "c:Acct/c:Id/c:IBAN")
    if account_id is None:
        problems.append(FieldProblem(("Stmt", "Acct", "Id"), "the account is missing", "missing"))
    account_ccy = _text(stmt, "c:Acct/c:Ccy")

    balances: dict[str, tuple[int | None, date | None, str | None]] = {}
    for bal in stmt.findall("c:Bal", {"c": NS}):
        code = _text(bal, "c:Tp/c:CdOrPrtry/c:Cd")
        if code not in ("OPBD", "CLBD"):
            continue
        loc: tuple[str | int, ...] = ("Stmt", "Bal", code)
        amt = bal.find("c:Amt", {"c": NS})
        ccy = _parse_currency(amt.get("Ccy") if amt is not None else None, (*loc, "Amt", "Ccy"), problems)
        minor = _parse_amount(amt.text if amt is not None else None, ccy, (*loc, "Amt"), problems)
        indicator = _text(bal, "c:CdtDbtInd")
        if indicator not in ("CRDT", "DBIT"):
            problems.append(FieldProblem((*loc, "CdtDbtInd"), f"must be CRDT or DBIT, not {indicator!r}"))
            minor = None
        elif minor is not None and indicator == "DBIT":
            minor = -minor
        on = _parse_date(_text(bal, "c:Dt/c:Dt") or _text(bal, "c:Dt/c:DtTm"), (*loc, "Dt"), problems)
        balances[code] = (minor, on, ccy)
    for code in ("OPBD", "CLBD"):
        if code not in balances:
            problems.append(FieldProblem(("Stmt", "Bal", code), f"the {code} balance is missing", "missing"))
    currency = account_ccy or balances.get("CLBD", (None, None, None))[2]
    if currency is None:
        problems.append(
            FieldProblem(("Stmt", "Acct", "Ccy"), "the statement's currency is missing", "missing")
        )
    elif currency not in CURRENCY_EXPONENT:
        problems.append(FieldProblem(("Stmt", "Acct", "Ccy"), f"unknown currency {currency!r}"))
        currency = None
    for code, (_, _, ccy) in balances.items():
        if currency and ccy and ccy != currency:
            problems.append(
                FieldProblem(("Stmt", "Bal", code, "Amt", "Ccy"), f"{ccy} is not the account's {currency}")
            )
    statement_date = balances.get("CLBD", (None, None, None))[1]

    entries: list[StatementEntry] = []
    for i, ntry in enumerate(stmt.findall("c:Ntry", {"c": NS})):
        entry = _parse_entry(ntry, i, currency, problems)
        if entry is not None:
            entries.append(entry)
    opening = balances.get("OPBD", (None, None, None))[0]
    closing = balances.get("CLBD", (None, None, None))[0]
    if not problems:
        problems.extend(_balance_check(opening, closing, entries))
    if problems:
        raise _refuse(problems, "statement")
    assert statement_id is not None
    assert currency is not None
    assert statement_date is not None
    return BankStatement(
        statement_id=statement_id,
        statement_date=statement_date,
        currency=currency,
        account_id=account_id,
        entries=tuple(entries),
        created_at=created_at,
        opening_balance=opening,
        closing_balance=closing,
        servicer=_text(stmt, "c:Acct/c:Svcr/c:FinInstnId/c:Nm"),
    )


def _parse_entry(
    ntry: ET.Element, i: int, currency: str | None, problems: list[FieldProblem]
) -> StatementEntry | None:
    loc: tuple[str | int, ...] = ("Stmt", "Ntry", i)
    before = len(problems)
    amt = ntry.find("c:Amt", {"c": NS})
    ccy = _parse_currency(amt.get("Ccy") if amt is not None else None, (*loc, "Amt", "Ccy"), problems)
    if ccy and currency and ccy != currency:
        problems.append(FieldProblem((*loc, "Amt", "Ccy"), f"{ccy} is not the account's {currency}"))
    minor = _parse_amount(amt.text if amt is not None else None, ccy, (*loc, "Amt"), problems)
    if minor == 0:
        problems.append(FieldProblem((*loc, "Amt"), "an entry's amount must be greater than zero"))
    indicator = _text(ntry, "c:CdtDbtInd")
    if indicator not in ("CRDT", "DBIT"):
        problems.append(FieldProblem((*loc, "CdtDbtInd"), f"must be CRDT or DBIT, not {indicator!r}"))
    status = _text(ntry, "c:Sts/c:Cd") or _text(ntry, "c:Sts")
    if status != "BOOK":
        problems.append(
            FieldProblem((*loc, "Sts", "Cd"), f"only booked entries (BOOK) belong here, not {status!r}")
        )
    booked_on = _parse_date(
        _text(ntry, "c:BookgDt/c:Dt") or _text(ntry, "c:BookgDt/c:DtTm"), (*loc, "BookgDt"), problems
    )
    value_text = _text(ntry, "c:ValDt/c:Dt") or _text(ntry, "c:ValDt/c:DtTm")
    value_date = _parse_date(value_text, (*loc, "ValDt"), problems) if value_text else booked_on
    bank_reference = _text(ntry, "c:AcctSvcrRef") or _text(ntry, "c:NtryDtls/c:TxDtls/c:Refs/c:AcctSvcrRef")
    if bank_reference is None:
        problems.append(FieldProblem((*loc, "AcctSvcrRef"), "the bank's reference is missing", "missing"))
    end_to_end = _text(ntry, "c:NtryDtls/c:TxDtls/c:Refs/c:EndToEndId")
    if len(problems) > before:
        return None
    assert minor is not None
    assert ccy is not None
    assert booked_on is not None
    assert value_date is not None
    assert bank_reference is not None
    return StatementEntry(
        bank_reference=bank_reference,
        end_to_end_id=None if end_to_end in (None, NOT_PROVIDED) else end_to_end,
        direction="credit" if indicator == "CRDT" else "debit",
        amount=minor,
        currency=ccy,
        booked_on=booked_on,
        value_date=value_date,
    )


# --- CSV ---------------------------------------------------------------------------------------------


def to_csv(statement: BankStatement) -> bytes:
    """One row per entry: booked_on,value_date,bank_reference,end_to_end_id,direction,amount,currency."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for e in statement.entries:
        writer.writerow(
            [
                e.booked_on.isoformat(),
                e.value_date.isoformat(),
                e.bank_reference,
                e.end_to_end_id or "",
                e.direction,
                format_amount(e.amount, e.currency),
                e.currency,
            ]
        )
    return buffer.getvalue().encode("utf-8")


def parse_csv(content: bytes, *, statement_date: date | None = None) -> BankStatement:
    """Read the CSV form. The statement's date is ``statement_date`` when given, else the latest
    booking date in the file; a CSV carries no balances and no account."""
    if len(content) > MAX_STATEMENT_BYTES:
        raise _refuse([FieldProblem(("file",), "the file is larger than 20 MB")], "CSV statement")
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _refuse([FieldProblem(("file",), f"not UTF-8 text: {exc.reason}")], "CSV statement") from None
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or [h.strip() for h in header] != list(CSV_COLUMNS):
        raise _refuse(
            [FieldProblem(("header",), f"the header must be exactly: {','.join(CSV_COLUMNS)}")],
            "CSV statement",
        )
    problems: list[FieldProblem] = []
    entries: list[StatementEntry] = []
    currencies: set[str] = set()
    for number, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        loc: tuple[str | int, ...] = ("row", number)
        if len(row) != len(CSV_COLUMNS):
            problems.append(FieldProblem(loc, f"has {len(row)} columns, not {len(CSV_COLUMNS)}"))
            continue
        before = len(problems)
        values = dict(zip(CSV_COLUMNS, (cell.strip() for cell in row), strict=True))
        booked_on = _parse_date(values["booked_on"], (*loc, "booked_on"), problems)
        value_date = (
            _parse_date(values["value_date"], (*loc, "value_date"), problems)
            if values["value_date"]
            else booked_on
        )
        if not values["bank_reference"]:
            problems.append(
                FieldProblem((*loc, "bank_reference"), "the bank's reference is missing", "missing")
            )
        direction = values["direction"].lower()
        if direction not in ("credit", "debit"):
            problems.append(
                FieldProblem((*loc, "direction"), f"must be credit or debit, not {values['direction']!r}")
            )
        ccy = _parse_currency(values["currency"], (*loc, "currency"), problems)
        minor = _parse_amount(values["amount"], ccy, (*loc, "amount"), problems)
        if minor == 0:
            problems.append(FieldProblem((*loc, "amount"), "an entry's amount must be greater than zero"))
        if len(problems) > before:
            continue
        assert booked_on is not None
        assert value_date is not None
        assert ccy is not None
        assert minor is not None
        currencies.add(ccy)
        entries.append(
            StatementEntry(
                bank_reference=values["bank_reference"],
                end_to_end_id=values["end_to_end_id"] or None,
                direction="credit" if direction == "credit" else "debit",
                amount=minor,
                currency=ccy,
                booked_on=booked_on,
                value_date=value_date,
            )
        )
    if len(currencies) > 1:
        problems.append(
            FieldProblem(("currency",), f"one currency per statement, not {', '.join(sorted(currencies))}")
        )
    on = statement_date or max((e.booked_on for e in entries), default=None)
    if on is None and not problems:
        problems.append(
            FieldProblem(("statement_date",), "an empty CSV statement needs its date given", "missing")
        )
    if problems:
        raise _refuse(problems, "CSV statement")
    assert on is not None
    currency = next(iter(currencies), "CNY")
    return BankStatement(
        statement_id=f"CSV-{currency}-{on:%Y%m%d}",
        statement_date=on,
        currency=currency,
        account_id=None,
        entries=tuple(entries),
    )


def detect_format(content: bytes) -> Format:
    return "camt053" if content.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<") else "csv"


def parse_statement(
    content: bytes, format: Format | None = None, *, statement_date: date | None = None
) -> BankStatement:
    chosen = format or detect_format(content)
    if chosen == "camt053":
        return parse_camt053(content)
    return parse_csv(content, statement_date=statement_date)
