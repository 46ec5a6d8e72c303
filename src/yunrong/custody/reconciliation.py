"""Reconciliation of the custodian bank's statement with the ledger's escrow cash account.

The matcher (``match``) is pure: bank lines and ledger lines in, items out. Lines pair on the
platform's instruction reference (the statement's ``EndToEndId``, the journal entry's
``external_ref``); a pair with the same direction, amount and currency is *matched*, a pair that
differs is an *amount mismatch*; a bank line repeated for an instruction already paired is *bank-only*
with the note ``duplicate``; what is left is *bank-only* or *ledger-only*.

Days are stitched together as open items, so a booking that crosses midnight on either side is
reported once and then clears:

* The ledger side of a run is every escrow posting within the look-back window that no run of an
  *earlier* statement date has matched, however late it was posted. A posting that pairs with nothing
  is reported as ledger-only only when its value date is on or before the statement date (the
  cut-off); a later one is simply in transit and waits for the next statement.
* The bank side is the statement's entries plus the open bank-side items (bank-only, amount mismatch)
  of the latest earlier run, carried forward with their original booking date.
* So a late bank booking is ledger-only on day D (age 0) and matched on D+1 (age 1), and the D item
  is marked cleared by the D+1 run; an unresolved break is reported again each day, older each time.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from yunrong.config import Settings
from yunrong.custody import accounts
from yunrong.custody.camt053 import BankStatement, Format, StatementEntry, parse_statement, to_camt053
from yunrong.custody.recon_tables import ReconciliationItem, ReconciliationRun
from yunrong.custody.service import platform_custodian
from yunrong.custody.simbank import SimBankTransaction, SimulatedBank
from yunrong.identity.model import Action, Context
from yunrong.identity.service import require
from yunrong.kit.errors import FieldProblem, InvalidInput, NotFound
from yunrong.kit.ids import human_ref
from yunrong.kit.money import Money
from yunrong.ledger.service import ENTRIES, POSTINGS
from yunrong.ledger.tables import LedgerAccount
from yunrong.supervision import service as audit
from yunrong.supervision.alerts import raise_alert

LOOKBACK_DAYS = 31
DUPLICATE = "duplicate"


class ItemKind(StrEnum):
    MATCHED = "matched"
    LEDGER_ONLY = "ledger_only"
    BANK_ONLY = "bank_only"
    AMOUNT_MISMATCH = "amount_mismatch"


@dataclass(frozen=True, slots=True)
class BankLine:
    bank_reference: str
    instruction_ref: str | None
    direction: str  # "credit" into escrow, "debit" out of it
    amount: int
    currency: str
    booked_on: date
    value_date: date
    carried_note: str | None = None  # an open item from an earlier run keeps its note


@dataclass(frozen=True, slots=True)
class LedgerLine:
    entry_ref: str
    instruction_ref: str | None
    direction: str  # in the bank's terms: an escrow debit is money in ("credit" at the bank)
    amount: int
    currency: str
    value_date: date


@dataclass(frozen=True, slots=True)
class Item:
    kind: ItemKind
    bank: BankLine | None
    ledger: LedgerLine | None
    age_days: int
    note: str | None = None

    @property
    def is_break(self) -> bool:
        return self.kind is not ItemKind.MATCHED

    @property
    def instruction_ref(self) -> str | None:
        return (
            self.bank.instruction_ref if self.bank else self.ledger.instruction_ref if self.ledger else None
        )

    @property
    def direction(self) -> str:
        line = self.bank or self.ledger
        assert line is not None
        return line.direction

    @property
    def currency(self) -> str:
        line = self.bank or self.ledger
        assert line is not None
        return line.currency


def _age(statement_date: date, *dates: date | None) -> int:
    known = [d for d in dates if d is not None]
    return max(0, (statement_date - min(known)).days) if known else 0


def _same(bank: BankLine, ledger: LedgerLine) -> bool:
    return (bank.direction, bank.amount, bank.currency) == (ledger.direction, ledger.amount, ledger.currency)


def _pair_note(bank: BankLine, ledger: LedgerLine) -> str | None:
    if bank.direction != ledger.direction:
        return "direction differs"
    if bank.currency != ledger.currency:
        return "currency differs"
    if bank.amount != ledger.amount:
        return f"bank {bank.amount - ledger.amount:+d} minor units"
    lag = (bank.booked_on - ledger.value_date).days
    if lag > 0:
        return f"bank booked {lag} day{'s' if lag != 1 else ''} after the ledger"
    if lag < 0:
        return f"ledger posted {-lag} day{'s' if lag != -1 else ''} after the bank"
    return None


def match(
    bank_lines: Sequence[BankLine],
    ledger_lines: Sequence[LedgerLine],
    *,
    statement_date: date,
    cutoff: date | None = None,
) -> list[Item]:
    """Pair bank lines with ledger lines on the instruction reference. Unpaired ledger lines after
    ``cutoff`` (default: the statement date) are in transit and not reported."""
    cutoff = statement_date if cutoff is None else cutoff
    ledger_by_ref: dict[str, list[int]] = defaultdict(list)
    for i, line in enumerate(ledger_lines):
        if line.instruction_ref is not None:
            ledger_by_ref[line.instruction_ref].append(i)
    paired_ledger: dict[int, int] = {}  # ledger index → bank index
    pairs: dict[int, int] = {}  # bank index → ledger index
    # Exact pairs first, so that a repeated or altered bank line never steals a good pair.
    for b, bank in enumerate(bank_lines):
        for li in ledger_by_ref.get(bank.instruction_ref or "", []):
            if li not in paired_ledger and _same(bank, ledger_lines[li]):
                pairs[b], paired_ledger[li] = li, b
                break
    seen_refs: set[str] = {bank_lines[b].instruction_ref or "" for b in pairs}
    seen_bank_refs: set[str] = set()
    items: list[Item] = []
    for b, bank in enumerate(bank_lines):
        if b in pairs:
            ledger = ledger_lines[pairs[b]]
            seen_bank_refs.add(bank.bank_reference)
            items.append(
                Item(
                    ItemKind.MATCHED,
                    bank,
                    ledger,
                    _age(statement_date, bank.value_date, ledger.value_date),
                    _pair_note(bank, ledger),
                )
            )
            continue
        repeated = bank.bank_reference in seen_bank_refs or (
            bank.instruction_ref is not None and bank.instruction_ref in seen_refs
        )
        seen_bank_refs.add(bank.bank_reference)
        free = [li for li in ledger_by_ref.get(bank.instruction_ref or "", []) if li not in paired_ledger]
        if free and not repeated:
            li = free[0]
            paired_ledger[li] = b
            ledger = ledger_lines[li]
            if bank.instruction_ref is not None:
                seen_refs.add(bank.instruction_ref)
            items.append(
                Item(
                    ItemKind.AMOUNT_MISMATCH,
                    bank,
                    ledger,
                    _age(statement_date, bank.value_date, ledger.value_date),
                    _pair_note(bank, ledger),
                )
            )
            continue
        if repeated:
            note: str | None = DUPLICATE
        elif bank.instruction_ref is None:
            note = "no end-to-end reference"
        else:
            note = bank.carried_note
        if bank.instruction_ref is not None:
            seen_refs.add(bank.instruction_ref)
        items.append(Item(ItemKind.BANK_ONLY, bank, None, _age(statement_date, bank.value_date), note))
    for li, ledger in enumerate(ledger_lines):
        if li in paired_ledger or ledger.value_date > cutoff:
            continue
        note = None if ledger.instruction_ref else "no bank instruction"
        items.append(Item(ItemKind.LEDGER_ONLY, None, ledger, _age(statement_date, ledger.value_date), note))
    return items


def counts(items: Sequence[Item]) -> dict[str, int]:
    out = {kind.value: 0 for kind in ItemKind}
    for item in items:
        out[item.kind.value] += 1
    out["duplicates"] = sum(1 for i in items if i.kind is ItemKind.BANK_ONLY and i.note == DUPLICATE)
    out["breaks"] = sum(1 for i in items if i.is_break)
    return out


# --- the service -------------------------------------------------------------------------------------


def escrow_code(bank_ref: str, currency: str) -> str:
    return f"{accounts.Purpose.ESCROW_CASH.value}:{currency}:{bank_ref}"


def _line_from_entry(entry: StatementEntry) -> BankLine:
    return BankLine(
        bank_reference=entry.bank_reference,
        instruction_ref=entry.end_to_end_id,
        direction=entry.direction,
        amount=entry.amount,
        currency=entry.currency,
        booked_on=entry.booked_on,
        value_date=entry.value_date,
    )


def _previous_run(session: Session, escrow_id: uuid.UUID, on: date) -> ReconciliationRun | None:
    return session.scalars(
        select(ReconciliationRun)
        .where(ReconciliationRun.escrow_account_id == escrow_id, ReconciliationRun.statement_date < on)
        .order_by(ReconciliationRun.statement_date.desc(), ReconciliationRun.created_at.desc())
        .limit(1)
    ).first()


def _carried_bank_lines(
    session: Session, previous: ReconciliationRun | None, earliest: date, skip: set[str]
) -> list[BankLine]:
    """The open bank-side items of the latest earlier run (not in today's statement again)."""
    if previous is None:
        return []
    rows = session.scalars(
        select(ReconciliationItem)
        .where(
            ReconciliationItem.run_id == previous.id,
            ReconciliationItem.kind.in_([ItemKind.BANK_ONLY.value, ItemKind.AMOUNT_MISMATCH.value]),
            ReconciliationItem.cleared_by_run_id.is_(None),
            ReconciliationItem.booked_on >= earliest,
        )
        .order_by(ReconciliationItem.seq)
    ).all()
    return [
        BankLine(
            bank_reference=row.bank_reference or "",
            instruction_ref=row.instruction_ref,
            direction=row.direction,
            amount=row.bank_amount or 0,
            currency=row.currency,
            booked_on=row.booked_on or previous.statement_date,
            value_date=row.value_date or row.booked_on or previous.statement_date,
            carried_note=row.note if row.note == DUPLICATE else None,
        )
        for row in rows
        if row.bank_reference and row.bank_reference not in skip
    ]


def _ledger_lines(session: Session, escrow_id: uuid.UUID, on: date, earliest: date) -> list[LedgerLine]:
    """Escrow postings in the window that no run of an earlier statement date has matched."""
    matched_before = (
        select(ReconciliationItem.entry_ref)
        .join(ReconciliationRun, ReconciliationRun.id == ReconciliationItem.run_id)
        .where(
            ReconciliationRun.escrow_account_id == escrow_id,
            ReconciliationRun.statement_date < on,
            ReconciliationItem.kind == ItemKind.MATCHED.value,
            ReconciliationItem.entry_ref.is_not(None),
        )
    )
    rows = session.execute(
        select(
            ENTRIES.c.ref,
            ENTRIES.c.external_ref,
            ENTRIES.c.value_date,
            POSTINGS.c.side,
            POSTINGS.c.amount,
            POSTINGS.c.currency,
        )
        .join(ENTRIES, ENTRIES.c.id == POSTINGS.c.entry_id)
        .where(
            POSTINGS.c.account_id == escrow_id,
            ENTRIES.c.posted.is_(True),
            ENTRIES.c.value_date >= earliest,
            ENTRIES.c.ref.not_in(matched_before),
        )
        .order_by(POSTINGS.c.created_at, POSTINGS.c.id)
    ).all()
    return [
        LedgerLine(
            entry_ref=row.ref,
            instruction_ref=row.external_ref,
            direction="credit" if row.side == "D" else "debit",
            amount=row.amount,
            currency=row.currency,
            value_date=row.value_date,
        )
        for row in rows
    ]


def _severity(items: Sequence[Item]) -> str:
    serious = any(
        i.kind in (ItemKind.AMOUNT_MISMATCH, ItemKind.BANK_ONLY) or (i.is_break and i.age_days >= 2)
        for i in items
    )
    return "high" if serious else "medium"


def _summary(item: Item) -> dict[str, Any]:
    return {
        "kind": item.kind.value,
        "note": item.note,
        "instruction_ref": item.instruction_ref,
        "bank_reference": item.bank.bank_reference if item.bank else None,
        "entry_ref": item.ledger.entry_ref if item.ledger else None,
        "bank_amount": item.bank.amount if item.bank else None,
        "ledger_amount": item.ledger.amount if item.ledger else None,
        "age_days": item.age_days,
    }


def reconcile_statement(
    session: Session,
    *,
    ctx: Context,
    statement: BankStatement,
    format: Format,
    file_sha256: str,
    source: str = "upload",
    lookback_days: int = LOOKBACK_DAYS,
) -> ReconciliationRun:
    """Match a parsed statement against the ledger, store the run and its items, raise one alert
    when there are breaks, and audit it."""
    require(ctx, Action.RECONCILE)
    bank = platform_custodian(session)
    escrow = accounts.escrow_cash(session, ctx, bank, statement.currency)
    if statement.account_id is not None and statement.account_id != escrow.code:
        raise InvalidInput(
            "the statement is for another account; nothing was reconciled",
            [
                FieldProblem(
                    ("Stmt", "Acct", "Id"), f"{statement.account_id!r} is not the escrow {escrow.code!r}"
                )
            ],
        )
    on = statement.statement_date
    earliest = on - timedelta(days=lookback_days)
    fresh = [_line_from_entry(e) for e in statement.entries]
    previous = _previous_run(session, escrow.id, on)
    carried = _carried_bank_lines(session, previous, earliest, {line.bank_reference for line in fresh})
    ledger_lines = _ledger_lines(session, escrow.id, on, earliest)
    items = match([*carried, *fresh], ledger_lines, statement_date=on)
    tally = counts(items)
    run = ReconciliationRun(
        ref=human_ref("RC", 10),
        escrow_account_id=escrow.id,
        bank_org_id=bank.id,
        currency=statement.currency,
        statement_id=statement.statement_id[:100],
        statement_date=on,
        source=source,
        format=format,
        file_sha256=file_sha256,
        opening_balance=statement.opening_balance,
        closing_balance=statement.closing_balance,
        bank_lines=len(fresh),
        ledger_lines=len(ledger_lines),
        matched=tally["matched"],
        ledger_only=tally["ledger_only"],
        bank_only=tally["bank_only"],
        amount_mismatch=tally["amount_mismatch"],
        duplicates=tally["duplicates"],
        breaks=tally["breaks"],
        lookback_days=lookback_days,
        created_by=ctx.actor.email,
        created_at=ctx.now(),
        detail={"carried_forward": len(carried), "previous_run": previous.ref if previous else None},
    )
    session.add(run)
    session.flush()
    for seq, item in enumerate(items):
        session.add(
            ReconciliationItem(
                run_id=run.id,
                seq=seq,
                kind=item.kind.value,
                note=item.note,
                instruction_ref=item.instruction_ref,
                bank_reference=item.bank.bank_reference if item.bank else None,
                entry_ref=item.ledger.entry_ref if item.ledger else None,
                direction=item.direction,
                currency=item.currency,
                bank_amount=item.bank.amount if item.bank else None,
                ledger_amount=item.ledger.amount if item.ledger else None,
                booked_on=item.bank.booked_on if item.bank else None,
                value_date=item.bank.value_date if item.bank else None,
                ledger_value_date=item.ledger.value_date if item.ledger else None,
                age_days=item.age_days,
            )
        )
    session.flush()
    _clear_earlier(session, run, [i for i in items if i.kind is ItemKind.MATCHED])
    if tally["breaks"]:
        run.alert_id = _alert(session, ctx, run, items, tally)
    audit.record(
        session,
        ctx=ctx,
        action="reconciliation.run",
        object_type="reconciliation_run",
        object_id=run.id,
        after=tally,
        detail={
            "ref": run.ref,
            "statement_id": run.statement_id,
            "statement_date": on.isoformat(),
            "currency": run.currency,
            "source": source,
            "file_sha256": file_sha256,
        },
    )
    return run


def _clear_earlier(session: Session, run: ReconciliationRun, matched: Sequence[Item]) -> None:
    """Open items of earlier statement dates that this run matched are cleared by it."""
    bank_refs = [i.bank.bank_reference for i in matched if i.bank]
    entry_refs = [i.ledger.entry_ref for i in matched if i.ledger]
    if not matched:
        return
    earlier = select(ReconciliationRun.id).where(
        ReconciliationRun.escrow_account_id == run.escrow_account_id,
        ReconciliationRun.statement_date < run.statement_date,
    )
    for column, refs in (
        (ReconciliationItem.bank_reference, bank_refs),
        (ReconciliationItem.entry_ref, entry_refs),
    ):
        for start in range(0, len(refs), 500):
            session.execute(
                update(ReconciliationItem)
                .where(
                    ReconciliationItem.run_id.in_(earlier),
                    ReconciliationItem.kind != ItemKind.MATCHED.value,
                    ReconciliationItem.cleared_by_run_id.is_(None),
                    column.in_(refs[start : start + 500]),
                )
                .values(cleared_by_run_id=run.id)
                .execution_options(synchronize_session=False)
            )


def _alert(
    session: Session, ctx: Context, run: ReconciliationRun, items: Sequence[Item], tally: dict[str, int]
) -> uuid.UUID:
    day = run.statement_date.isoformat()
    en = (
        f"Reconciliation {run.ref} of {day} ({run.currency}): {tally['breaks']} breaks — "
        f"{tally['ledger_only']} ledger-only, {tally['bank_only']} bank-only "
        f"({tally['duplicates']} duplicates), {tally['amount_mismatch']} amount mismatches"
    )
    zh = (
        f"对账 {run.ref}（{day}，{run.currency}）发现 {tally['breaks']} 笔差异：平台有银行无 "
        f"{tally['ledger_only']} 笔，银行有平台无 {tally['bank_only']} 笔（重复 {tally['duplicates']} 笔），"
        f"金额不符 {tally['amount_mismatch']} 笔"
    )
    alert = raise_alert(
        session,
        ctx=ctx,
        kind="reconciliation.break",
        severity=_severity(items),
        subject_en=en[:300],
        subject_zh=zh[:300],
        detail={
            "run_id": str(run.id),
            "run_ref": run.ref,
            "statement_date": day,
            "currency": run.currency,
            "counts": tally,
            "breaks": [_summary(i) for i in items if i.is_break][:50],
        },
    )
    return alert.id


def import_statement(
    session: Session,
    *,
    ctx: Context,
    content: bytes,
    format: Format | None = None,
    statement_date: date | None = None,
    source: str = "upload",
) -> ReconciliationRun:
    """Import a bank statement file (camt.053 XML or CSV; detected when not said) and reconcile it."""
    require(ctx, Action.RECONCILE)
    statement = parse_statement(content, format, statement_date=statement_date)
    chosen: Format = format or ("camt053" if statement.account_id is not None else "csv")
    return reconcile_statement(
        session,
        ctx=ctx,
        statement=statement,
        format=chosen,
        file_sha256=hashlib.sha256(content).hexdigest(),
        source=source,
    )


# --- the simulated bank's statements -------------------------------------------------------------------


def simulated_statement(
    session: Session, *, ctx: Context, settings: Settings, on: date, currency: str = "CNY"
) -> BankStatement:
    """What the simulated custodian bank reports for the escrow account on a business date."""
    require(ctx, Action.READ_BANK_STATEMENT)
    bank = platform_custodian(session)
    if not ctx.actor.sees_all_organisations and ctx.actor.organisation_id != bank.id:
        raise NotFound("no statement of yours for that date")
    Money(0, currency)  # refuses unknown currencies
    sim = SimulatedBank(settings, ctx.clock)
    rows = [t for t in sim.book(session, on) if t.currency == currency]
    opening = sim.balance_before(session, on, currency)
    entries = tuple(
        StatementEntry(
            bank_reference=t.bank_reference,
            end_to_end_id=t.instruction_ref or None,
            direction="credit" if t.direction == "credit" else "debit",
            amount=t.amount,
            currency=t.currency,
            booked_on=t.booked_on,
            value_date=t.booked_on,
        )
        for t in rows
    )
    closing = opening + sum(e.amount if e.direction == "credit" else -e.amount for e in entries)
    return BankStatement(
        statement_id=f"{bank.ref}-{currency}-{on:%Y%m%d}",
        statement_date=on,
        currency=currency,
        account_id=escrow_code(bank.ref, currency),
        entries=entries,
        created_at=ctx.now(),
        opening_balance=opening,
        closing_balance=closing,
        servicer=bank.name,
    )


def reconcile_simulated_day(
    session: Session, *, ctx: Context, settings: Settings, on: date
) -> list[ReconciliationRun]:
    """The daily job: the simulated bank's camt.053 for ``on``, for each escrow currency, imported
    like any other file. A date already reconciled from the simulated bank is skipped."""
    require(ctx, Action.RECONCILE)
    bank = platform_custodian(session)
    currencies = set(
        session.scalars(
            select(LedgerAccount.currency).where(
                LedgerAccount.purpose == accounts.Purpose.ESCROW_CASH.value,
                LedgerAccount.owner_org_id == bank.id,
            )
        ).all()
    ) | set(
        session.scalars(select(SimBankTransaction.currency).where(SimBankTransaction.booked_on == on)).all()
    )
    runs: list[ReconciliationRun] = []
    for currency in sorted(currencies):
        done = session.scalar(
            select(ReconciliationRun.id)
            .join(LedgerAccount, LedgerAccount.id == ReconciliationRun.escrow_account_id)
            .where(
                LedgerAccount.code == escrow_code(bank.ref, currency),
                ReconciliationRun.statement_date == on,
                ReconciliationRun.source == "simbank",
            )
            .limit(1)
        )
        if done is not None:
            continue
        statement = simulated_statement(session, ctx=ctx, settings=settings, on=on, currency=currency)
        runs.append(
            import_statement(
                session, ctx=ctx, content=to_camt053(statement), format="camt053", source="simbank"
            )
        )
    return runs


# --- reading -----------------------------------------------------------------------------------------


def list_runs(session: Session, *, ctx: Context, limit: int = 50) -> list[ReconciliationRun]:
    require(ctx, Action.READ_ALERTS)
    return list(
        session.scalars(
            select(ReconciliationRun)
            .order_by(ReconciliationRun.statement_date.desc(), ReconciliationRun.created_at.desc())
            .limit(max(1, min(limit, 500)))
        ).all()
    )


def read_run(
    session: Session, *, ctx: Context, run_id: uuid.UUID
) -> tuple[ReconciliationRun, list[ReconciliationItem]]:
    require(ctx, Action.READ_ALERTS)
    run = session.get(ReconciliationRun, run_id)
    if run is None:
        raise NotFound("no such reconciliation")
    items = list(
        session.scalars(
            select(ReconciliationItem)
            .where(ReconciliationItem.run_id == run.id)
            .order_by(ReconciliationItem.seq)
        ).all()
    )
    return run, items
