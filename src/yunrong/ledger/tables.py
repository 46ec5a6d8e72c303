"""Ledger tables. Postings are never updated or deleted (database triggers refuse it); entries
are closed once (``posted``) and a trigger refuses to close an unbalanced one."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from yunrong.db import GUID, Base, UTCDateTime
from yunrong.kit.ids import uuid7
from yunrong.ledger.model import AccountType, HoldStatus

Amount = BigInteger().with_variant(Integer, "sqlite")


def _in(column: str, values: list[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class LedgerAccount(Base):
    __tablename__ = "ledger_accounts"
    __table_args__ = (
        CheckConstraint(_in("type", [t.value for t in AccountType]), name="type_known"),
        CheckConstraint(
            "debits_posted >= 0 AND credits_posted >= 0 AND debits_pending >= 0 AND credits_pending >= 0",
            name="totals_not_negative",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(GUID, primary_key=True, default=uuid7)
    code: Mapped[str] = mapped_column(String(120), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(10))
    currency: Mapped[str] = mapped_column(String(3))
    purpose: Mapped[str] = mapped_column(String(40), index=True)
    owner_org_id: Mapped[uuid.UUID | None] = mapped_column(GUID, ForeignKey("organisations.id"), index=True)
    subject_id: Mapped[str | None] = mapped_column(String(64), index=True)  # e.g. the loan an account serves
    no_overdraft: Mapped[bool] = mapped_column(Boolean)
    debits_posted: Mapped[int] = mapped_column(Amount, default=0)
    credits_posted: Mapped[int] = mapped_column(Amount, default=0)
    debits_pending: Mapped[int] = mapped_column(Amount, default=0)
    credits_pending: Mapped[int] = mapped_column(Amount, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class JournalEntry(Base):
    __tablename__ = "journal_entries"

    id: Mapped[uuid.UUID] = mapped_column(GUID, primary_key=True, default=uuid7)
    ref: Mapped[str] = mapped_column(String(20), unique=True)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    description: Mapped[str] = mapped_column(String(500))
    value_date: Mapped[date] = mapped_column(Date, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    created_by: Mapped[str] = mapped_column(String(254))
    reverses_id: Mapped[uuid.UUID | None] = mapped_column(GUID, ForeignKey("journal_entries.id"), unique=True)
    link_id: Mapped[uuid.UUID | None] = mapped_column(GUID, index=True)
    hold_id: Mapped[uuid.UUID | None] = mapped_column(GUID, index=True)
    external_ref: Mapped[str | None] = mapped_column(String(100), index=True)  # e.g. a bank instruction
    posted: Mapped[bool] = mapped_column(Boolean, default=False)


class Posting(Base):
    __tablename__ = "postings"
    __table_args__ = (
        CheckConstraint("side IN ('D', 'C')", name="side_known"),
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_postings_account_created", "account_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(GUID, primary_key=True, default=uuid7)
    entry_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("journal_entries.id"), index=True)
    account_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("ledger_accounts.id"))
    side: Mapped[str] = mapped_column(String(1))
    amount: Mapped[int] = mapped_column(Amount)
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Hold(Base):
    __tablename__ = "holds"
    __table_args__ = (
        CheckConstraint(_in("status", [s.value for s in HoldStatus]), name="status_known"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("posted_amount >= 0 AND posted_amount <= amount", name="posted_within_amount"),
        Index("ix_holds_pending_expiry", "status", "expires_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(GUID, primary_key=True, default=uuid7)
    ref: Mapped[str] = mapped_column(String(20), unique=True)
    debit_account_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("ledger_accounts.id"), index=True)
    credit_account_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("ledger_accounts.id"), index=True)
    amount: Mapped[int] = mapped_column(Amount)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(10))
    posted_amount: Mapped[int] = mapped_column(Amount, default=0)
    description: Mapped[str] = mapped_column(String(500))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    entry_id: Mapped[uuid.UUID | None] = mapped_column(GUID, ForeignKey("journal_entries.id"))


class IdempotencyKey(Base):
    """A money-moving command's key, stored with its result in the same transaction as its effect."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("scope", "key", name="uq_idempotency_keys_scope_key"),)

    id: Mapped[uuid.UUID] = mapped_column(GUID, primary_key=True, default=uuid7)
    scope: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(200))
    operation: Mapped[str] = mapped_column(String(60))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Adjustment(Base):
    """A manual ledger adjustment: proposed by one operator, approved by another (maker–checker)."""

    __tablename__ = "ledger_adjustments"
    __table_args__ = (
        CheckConstraint(_in("status", ["proposed", "approved", "rejected"]), name="status_known"),
    )

    id: Mapped[uuid.UUID] = mapped_column(GUID, primary_key=True, default=uuid7)
    ref: Mapped[str] = mapped_column(String(20), unique=True)
    legs: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10))
    proposed_by: Mapped[str] = mapped_column(String(36))
    proposed_label: Mapped[str] = mapped_column(String(254))
    decided_by: Mapped[str | None] = mapped_column(String(36))
    decided_label: Mapped[str | None] = mapped_column(String(254))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    entry_id: Mapped[uuid.UUID | None] = mapped_column(GUID, ForeignKey("journal_entries.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
