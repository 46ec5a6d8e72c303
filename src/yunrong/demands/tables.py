"""Tables of financing demands and their history."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from yunrong.db import GUID, Base, UTCDateTime
from yunrong.demands.model import DemandStatus, Product, RepaymentMethod
from yunrong.kit.ids import uuid7

Amount = BigInteger().with_variant(Integer, "sqlite")


def _in(column: str, values: list[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Demand(Base):
    __tablename__ = "demands"
    __table_args__ = (
        CheckConstraint(_in("status", [s.value for s in DemandStatus]), name="status_known"),
        CheckConstraint(_in("product", [p.value for p in Product]), name="product_known"),
        CheckConstraint(_in("repayment_method", [m.value for m in RepaymentMethod]), name="method_known"),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint("term_months > 0", name="term_positive"),
        Index("ix_demands_org_status", "organisation_id", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(GUID, primary_key=True, default=uuid7)
    ref: Mapped[str] = mapped_column(String(20), unique=True)
    organisation_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("organisations.id"))
    product: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(20), index=True)
    title: Mapped[str] = mapped_column(String(200))
    amount_minor: Mapped[int] = mapped_column(Amount)
    min_funding_minor: Mapped[int | None] = mapped_column(Amount)
    currency: Mapped[str] = mapped_column(String(3))
    term_months: Mapped[int] = mapped_column(Integer)
    repayment_method: Mapped[str] = mapped_column(String(30))
    max_annual_rate: Mapped[Decimal] = mapped_column(Numeric(7, 4))  # percent, e.g. 9.5000
    purpose: Mapped[str] = mapped_column(Text)
    use_of_funds: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    innovation: Mapped[dict[str, Any]] = mapped_column(JSON)
    collateral: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    guarantee_wanted: Mapped[bool] = mapped_column(Boolean)
    project_key: Mapped[str] = mapped_column(String(100), index=True)
    product_facts: Mapped[dict[str, Any]] = mapped_column(JSON)
    attachment_ids: Mapped[list[str]] = mapped_column(JSON)
    status_reason: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    listed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DemandEvent(Base):
    __tablename__ = "demand_events"

    id: Mapped[uuid.UUID] = mapped_column(GUID, primary_key=True, default=uuid7)
    demand_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("demands.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_label: Mapped[str] = mapped_column(String(254))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text)
