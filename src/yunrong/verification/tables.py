"""Tables of verification: service rules, service orders and their history, signed attestations,
the credit file's facts, listing views, and agencies' webhooks with their delivery log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
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

Amount = BigInteger().with_variant(Integer, "sqlite")

ORDER_STATUSES = (
    "assigned",
    "accepted",
    "completed",
    "declined",
    "escalated",
    "unassigned",
    "waived",
    "cancelled",
)
PROVENANCES = ("self_declared", "attested", "data_feed")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class ServiceRule(Base):
    """Which services a product needs (data the operator edits)."""

    __tablename__ = "service_rules"
    __table_args__ = (
        UniqueConstraint("product", "agency_type", "service", name="uq_service_rules_product_type_service"),
    )

    id: Mapped[uuid.UUID] = mapped_column(GUID, primary_key=True, default=uuid7)
    product: Mapped[str] = mapped_column(String(30), index=True)
    agency_type: Mapped[str] = mapped_column(String(30))
    service: Mapped[str] = mapped_column(String(60))
    required: Mapped[bool] = mapped_column(Boolean)
    description: Mapped[str] = mapped_column(String(300))


class ServiceOrder(Base):
    __tablename__ = "service_orders"
    __table_args__ = (
        CheckConstraint(_in("status", ORDER_STATUSES), name="status_known"),
        CheckConstraint("fee_minor >= 0", name="fee_not_negative"),
        Index("ix_service_orders_agency_status", "agency_id", "status"),
        Index("ix_service_orders_deadline", "status", "deadline_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(GUID, primary_key=True, default=uuid7)
    ref: Mapped[str] = mapped_column(String(20), unique=True)
    demand_id: Mapped[uuid.UUID | None] = mapped_column(GUID, ForeignKey("demands.id"), index=True)
    enterprise_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("organisations.id"), index=True)
    agency_id: Mapped[uuid.UUID | None] = mapped_column(GUID, ForeignKey("organisations.id"))
    agency_type: Mapped[str] = mapped_column(String(30))
    #: What the rule asked for ("*" = any service of the type); ``service`` is what the agency offers.
    requested_service: Mapped[str] = mapped_column(String(60), default="*")
    service: Mapped[str] = mapped_column(String(60))
    required: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(20))
    fee_minor: Mapped[int] = mapped_column(Amount)
    currency: Mapped[str] = mapped_column(String(3))
    deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    assignments: Mapped[int] = mapped_column(Integer)
    status_reason: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attestation_id: Mapped[uuid.UUID | None] = mapped_column(GUID)


class ServiceOrderEvent(Base):
    __tablename__ = "service_order_events"

    id: Mapped[uuid.UUID] = mapped_column(GUID, primary_key=True, default=uuid7)
    order_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("service_orders.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_label: Mapped[str] = mapped_column(String(254))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    agency_id: Mapped[uuid.UUID | None] = mapped_column(GUID)
    reason: Mapped[str] = mapped_column(Text)


class Attestation(Base):
    """An agency's result, signed with its Ed25519 key over ``canonical`` (the exact signed bytes)."""

    __tablename__ = "attestations"

    id: Mapped[uuid.UUID] = mapped_column(GUID, primary_key=True, default=uuid7)
    ref: Mapped[str] = mapped_column(String(20), unique=True)
    order_id: Mapped[uuid.UUID | None] = mapped_column(GUID, ForeignKey("service_orders.id"), index=True)
    enterprise_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("organisations.id"), index=True)
    agency_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("organisations.id"), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    subject: Mapped[str] = mapped_column(String(60))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    canonical: Mapped[str] = mapped_column(Text)
    signature: Mapped[str] = mapped_column(String(100))
    public_key: Mapped[str] = mapped_column(String(64))
    evidence_document_ids: Mapped[list[str]] = mapped_column(JSON)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_reason: Mapped[str | None] = mapped_column(Text)


class CreditFact(Base):
    """One fact in an enterprise's credit file, with where it came from and when it was known."""

    __tablename__ = "credit_facts"
    __table_args__ = (
        CheckConstraint(_in("provenance", PROVENANCES), name="provenance_known"),
        Index("ix_credit_facts_enterprise_key", "enterprise_id", "category", "key"),
    )

    id: Mapped[uuid.UUID] = mapped_column(GUID, primary_key=True, default=uuid7)
    enterprise_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("organisations.id"))
    category: Mapped[str] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(String(80))
    value: Mapped[Any] = mapped_column(JSON)
    provenance: Mapped[str] = mapped_column(String(20))
    source_label: Mapped[str] = mapped_column(String(254))
    source_org_id: Mapped[uuid.UUID | None] = mapped_column(GUID)
    attestation_id: Mapped[uuid.UUID | None] = mapped_column(GUID, ForeignKey("attestations.id"))
    observed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ListingView(Base):
    __tablename__ = "listing_views"

    id: Mapped[uuid.UUID] = mapped_column(GUID, primary_key=True, default=uuid7)
    demand_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("demands.id"), index=True)
    viewer_org_id: Mapped[uuid.UUID | None] = mapped_column(GUID)
    viewer_user_id: Mapped[uuid.UUID | None] = mapped_column(GUID)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class AgencyWebhook(Base):
    __tablename__ = "agency_webhooks"

    organisation_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("organisations.id"), primary_key=True)
    url: Mapped[str] = mapped_column(String(500))
    secret_enc: Mapped[str] = mapped_column(String(300))
    active: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WebhookDelivery(Base):
    """Every attempt to deliver a webhook, visible to the agency it was for."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[uuid.UUID] = mapped_column(GUID, primary_key=True, default=uuid7)
    organisation_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("organisations.id"), index=True)
    event_id: Mapped[str] = mapped_column(String(40), index=True)
    event_type: Mapped[str] = mapped_column(String(60))
    url: Mapped[str] = mapped_column(String(500))
    attempt: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    response_excerpt: Mapped[str | None] = mapped_column(String(500))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
