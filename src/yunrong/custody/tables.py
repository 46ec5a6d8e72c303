"""Instructions to the custodian bank and the callbacks it sent back."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from yunrong.custody.model import CallbackOutcome, InstructionKind, InstructionStatus
from yunrong.db import GUID, Base, UTCDateTime
from yunrong.kit.ids import uuid7

Amount = BigInteger().with_variant(Integer, "sqlite")


def _in(column: str, values: list[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Instruction(Base):
    __tablename__ = "custodian_instructions"
    __table_args__ = (
        CheckConstraint(_in("kind", [k.value for k in InstructionKind]), name="kind_known"),
        CheckConstraint(_in("status", [s.value for s in InstructionStatus]), name="status_known"),
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_custodian_instructions_org_created", "organisation_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(GUID, primary_key=True, default=uuid7)
    ref: Mapped[str] = mapped_column(String(24), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), index=True)
    bank_org_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("organisations.id"))
    organisation_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("organisations.id"))
    amount: Mapped[int] = mapped_column(Amount)
    currency: Mapped[str] = mapped_column(String(3))
    ledger_account_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("ledger_accounts.id"))
    escrow_account_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("ledger_accounts.id"))
    bank_account_id: Mapped[uuid.UUID | None] = mapped_column(GUID, ForeignKey("bank_accounts.id"))
    hold_id: Mapped[uuid.UUID | None] = mapped_column(GUID, ForeignKey("holds.id"))
    entry_id: Mapped[uuid.UUID | None] = mapped_column(GUID, ForeignKey("journal_entries.id"))
    bank_reference: Mapped[str | None] = mapped_column(String(64), index=True)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class BankCallback(Base):
    """Every callback that passed the signature check, once (deduplicated by the bank's id)."""

    __tablename__ = "bank_callbacks"
    __table_args__ = (
        CheckConstraint(_in("outcome", [o.value for o in CallbackOutcome]), name="outcome_known"),
    )

    id: Mapped[uuid.UUID] = mapped_column(GUID, primary_key=True, default=uuid7)
    callback_id: Mapped[str] = mapped_column(String(64), unique=True)
    instruction_ref: Mapped[str] = mapped_column(String(24), index=True)
    status: Mapped[str] = mapped_column(String(20))
    outcome: Mapped[str] = mapped_column(String(24))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
