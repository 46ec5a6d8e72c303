"""Tables of step 4: investors' preferences, push settings, and the pushes made."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from yunrong.db import GUID, Base, UTCDateTime
from yunrong.kit.ids import uuid7

Amount = BigInteger().with_variant(Integer, "sqlite")


class InvestmentPreference(Base):
    """One row per investor organisation."""

    __tablename__ = "investment_preferences"
    __table_args__ = (
        CheckConstraint("amount_per_loan_minor > 0", name="ticket_positive"),
        CheckConstraint("total_budget_minor >= amount_per_loan_minor", name="ticket_within_budget"),
        CheckConstraint("min_term_months >= 1 AND max_term_months >= min_term_months", name="terms_ordered"),
        CheckConstraint("min_transparency BETWEEN 0 AND 100", name="transparency_in_range"),
        CheckConstraint("min_guarantee_coverage_bp BETWEEN 0 AND 10000", name="coverage_in_range"),
        CheckConstraint("innovation IN ('neutral', 'prefer', 'only')", name="innovation_known"),
    )

    organisation_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("organisations.id"), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3))
    amount_per_loan_minor: Mapped[int] = mapped_column(Amount)
    total_budget_minor: Mapped[int] = mapped_column(Amount)
    min_term_months: Mapped[int] = mapped_column(Integer)
    max_term_months: Mapped[int] = mapped_column(Integer)
    grades: Mapped[list[str]] = mapped_column(JSON)
    industries: Mapped[list[str]] = mapped_column(JSON)
    regions: Mapped[list[str]] = mapped_column(JSON)
    products: Mapped[list[str]] = mapped_column(JSON)
    sizes: Mapped[list[str]] = mapped_column(JSON)
    innovation: Mapped[str] = mapped_column(String(10))
    min_transparency: Mapped[int] = mapped_column(Integer)
    min_guarantee_coverage_bp: Mapped[int] = mapped_column(Integer)
    updated_by: Mapped[str] = mapped_column(String(254))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PushSettings(Base):
    __tablename__ = "push_settings"
    __table_args__ = (CheckConstraint("daily_cap >= 0", name="cap_not_negative"),)

    organisation_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("organisations.id"), primary_key=True)
    daily_cap: Mapped[int] = mapped_column(Integer)
    unsubscribed: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Push(Base):
    """A listing pushed to an investor: at most once per pair."""

    __tablename__ = "pushes"
    __table_args__ = (
        UniqueConstraint("investor_org_id", "demand_id", name="uq_pushes_pair"),
        Index("ix_pushes_investor_at", "investor_org_id", "pushed_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(GUID, primary_key=True, default=uuid7)
    investor_org_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("organisations.id"))
    demand_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("demands.id"), index=True)
    industry_code: Mapped[str] = mapped_column(String(5))
    score: Mapped[float] = mapped_column(Float)
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    pushed_at: Mapped[datetime] = mapped_column(UTCDateTime)
