"""Registered credit models, their promotions, and the decisions made with them."""

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
    Float,
    ForeignKey,
    Integer,
    Numeric,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from yunrong.db import GUID, Base, UTCDateTime
from yunrong.kit.ids import uuid7

Amount = BigInteger().with_variant(Integer, "sqlite")


class ModelVersion(Base):
    __tablename__ = "credit_models"
    __table_args__ = (
        CheckConstraint("role IN ('registered', 'champion', 'challenger', 'retired')", name="role_known"),
    )

    id: Mapped[uuid.UUID] = mapped_column(GUID, primary_key=True, default=uuid7)
    name: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(12), index=True)
    artifact_path: Mapped[str] = mapped_column(String(500))
    artifact_sha256: Mapped[str] = mapped_column(String(64))
    card: Mapped[dict[str, Any]] = mapped_column(JSON)
    reference_scores: Mapped[dict[str, Any]] = mapped_column(JSON)  # {"edges": [...], "shares": [...]}
    registered_by: Mapped[str] = mapped_column(String(254))
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ModelPromotion(Base):
    """Making a model champion or challenger takes two operators (maker–checker)."""

    __tablename__ = "credit_model_promotions"
    __table_args__ = (
        CheckConstraint("status IN ('proposed', 'approved', 'rejected')", name="status_known"),
        CheckConstraint("target_role IN ('champion', 'challenger', 'retired')", name="target_known"),
    )

    id: Mapped[uuid.UUID] = mapped_column(GUID, primary_key=True, default=uuid7)
    model_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("credit_models.id"), index=True)
    target_role: Mapped[str] = mapped_column(String(12))
    status: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str] = mapped_column(Text)
    proposed_by: Mapped[str] = mapped_column(String(36))
    proposed_label: Mapped[str] = mapped_column(String(254))
    decided_by: Mapped[str | None] = mapped_column(String(36))
    decided_label: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CreditDecision(Base):
    """The automated decision on a demand (and a human override, if any)."""

    __tablename__ = "credit_decisions"

    id: Mapped[uuid.UUID] = mapped_column(GUID, primary_key=True, default=uuid7)
    demand_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("demands.id"), index=True)
    model_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("credit_models.id"))
    as_of: Mapped[datetime] = mapped_column(UTCDateTime)
    features: Mapped[dict[str, Any]] = mapped_column(JSON)
    pd: Mapped[float] = mapped_column(Float)
    score: Mapped[float] = mapped_column(Float)
    grade: Mapped[str] = mapped_column(String(4))
    declined: Mapped[bool] = mapped_column(Boolean)
    decline_reason: Mapped[str | None] = mapped_column(Text)
    annual_rate: Mapped[Decimal | None] = mapped_column(Numeric(9, 6))
    apr: Mapped[Decimal | None] = mapped_column(Numeric(9, 6))
    cap: Mapped[Decimal | None] = mapped_column(Numeric(9, 6))
    limit_minor: Mapped[int] = mapped_column(Amount)
    price: Mapped[dict[str, Any]] = mapped_column(JSON)
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    counterfactual: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime)
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    override_grade: Mapped[str | None] = mapped_column(String(4))
    override_declined: Mapped[bool | None] = mapped_column(Boolean)
    override_reason: Mapped[str | None] = mapped_column(Text)
    override_by: Mapped[str | None] = mapped_column(String(254))
    override_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
