"""The append-only audit log and its chain head (one row, locked to serialise appends)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, Date, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from yunrong.db import GUID, Base, UTCDateTime
from yunrong.kit.ids import uuid7


class AuditRecord(Base):
    __tablename__ = "audit_records"

    id: Mapped[uuid.UUID] = mapped_column(GUID, primary_key=True, default=uuid7)
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), unique=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor_user_id: Mapped[str | None] = mapped_column(String(36))
    actor_org_id: Mapped[str | None] = mapped_column(String(36), index=True)
    actor_label: Mapped[str] = mapped_column(String(254))
    action: Mapped[str] = mapped_column(String(80), index=True)
    object_type: Mapped[str] = mapped_column(String(50))
    object_id: Mapped[str | None] = mapped_column(String(64), index=True)
    before_digest: Mapped[str | None] = mapped_column(String(64))
    after_digest: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditChainHead(Base):
    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    last_hash: Mapped[str] = mapped_column(String(64))


class LprRate(Base):
    """The one-year Loan Prime Rate, as published, from its effective date (maintained by the operator)."""

    __tablename__ = "lpr_rates"

    effective_on: Mapped[date] = mapped_column(Date, primary_key=True)
    one_year_percent: Mapped[Decimal] = mapped_column(Numeric(6, 4))
    source: Mapped[str] = mapped_column(String(200))
    recorded_by: Mapped[str] = mapped_column(String(254))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Alert(Base):
    """Something the operator and the regulator must look at (a reconciliation break, a bank that
    contradicts itself)."""

    __tablename__ = "alerts"

    id: Mapped[uuid.UUID] = mapped_column(GUID, primary_key=True, default=uuid7)
    kind: Mapped[str] = mapped_column(String(60), index=True)
    severity: Mapped[str] = mapped_column(String(10))
    subject_en: Mapped[str] = mapped_column(String(300))
    subject_zh: Mapped[str] = mapped_column(String(300))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[str | None] = mapped_column(String(254))
