"""Reconciliation runs (one imported bank statement matched to the ledger) and their items."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from yunrong.db import GUID, Base, UTCDateTime
from yunrong.kit.ids import uuid7

Amount = BigInteger().with_variant(Integer, "sqlite")

ITEM_KINDS = ("matched", "ledger_only", "bank_only", "amount_mismatch")
SOURCES = ("upload", "simbank")
FORMATS = ("camt053", "csv")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class ReconciliationRun(Base):
    __tablename__ = "reconciliation_runs"
    __table_args__ = (
        CheckConstraint(_in("source", SOURCES), name="source_known"),
        CheckConstraint(_in("format", FORMATS), name="format_known"),
        Index("ix_reconciliation_runs_account_date", "escrow_account_id", "statement_date"),
    )

    id: Mapped[uuid.UUID] = mapped_column(GUID, primary_key=True, default=uuid7)
    ref: Mapped[str] = mapped_column(String(20), unique=True)
    escrow_account_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("ledger_accounts.id"))
    bank_org_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("organisations.id"))
    currency: Mapped[str] = mapped_column(String(3))
    statement_id: Mapped[str] = mapped_column(String(100))
    statement_date: Mapped[date] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(10))
    format: Mapped[str] = mapped_column(String(10))
    file_sha256: Mapped[str] = mapped_column(String(64))
    opening_balance: Mapped[int | None] = mapped_column(Amount)
    closing_balance: Mapped[int | None] = mapped_column(Amount)
    bank_lines: Mapped[int] = mapped_column(Integer)
    ledger_lines: Mapped[int] = mapped_column(Integer)
    matched: Mapped[int] = mapped_column(Integer)
    ledger_only: Mapped[int] = mapped_column(Integer)
    bank_only: Mapped[int] = mapped_column(Integer)
    amount_mismatch: Mapped[int] = mapped_column(Integer)
    duplicates: Mapped[int] = mapped_column(Integer)
    breaks: Mapped[int] = mapped_column(Integer)
    lookback_days: Mapped[int] = mapped_column(Integer)
    alert_id: Mapped[uuid.UUID | None] = mapped_column(GUID, ForeignKey("alerts.id"))
    created_by: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)


class ReconciliationItem(Base):
    """One line of the outcome: a bank line, a ledger posting, or a pair of them."""

    __tablename__ = "reconciliation_items"
    __table_args__ = (
        CheckConstraint(_in("kind", ITEM_KINDS), name="kind_known"),
        CheckConstraint("direction IN ('credit', 'debit')", name="direction_known"),
        Index("ix_reconciliation_items_run_kind", "run_id", "kind"),
    )

    id: Mapped[uuid.UUID] = mapped_column(GUID, primary_key=True, default=uuid7)
    run_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("reconciliation_runs.id"))
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(String(60))
    instruction_ref: Mapped[str | None] = mapped_column(String(100), index=True)
    bank_reference: Mapped[str | None] = mapped_column(String(64), index=True)
    entry_ref: Mapped[str | None] = mapped_column(String(20), index=True)
    direction: Mapped[str] = mapped_column(String(6))
    currency: Mapped[str] = mapped_column(String(3))
    bank_amount: Mapped[int | None] = mapped_column(Amount)
    ledger_amount: Mapped[int | None] = mapped_column(Amount)
    booked_on: Mapped[date | None] = mapped_column(Date)
    value_date: Mapped[date | None] = mapped_column(Date)
    ledger_value_date: Mapped[date | None] = mapped_column(Date)
    age_days: Mapped[int] = mapped_column(Integer)
    cleared_by_run_id: Mapped[uuid.UUID | None] = mapped_column(GUID, ForeignKey("reconciliation_runs.id"))
