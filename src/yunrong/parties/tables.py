"""Tables of parties: enterprise, investor and agency profiles, people, bank accounts,
qualifications and their history, documents and consents."""

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
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import false as sa_false
from sqlalchemy.orm import Mapped, mapped_column

from yunrong.db import GUID, Base, UTCDateTime
from yunrong.kit.ids import uuid7
from yunrong.parties.model import (
    DataCategory,
    DocumentCategory,
    InstitutionType,
    PersonRole,
    QualificationStatus,
    RecipientClass,
)

Money64 = BigInteger().with_variant(Integer, "sqlite")


def _in(column: str, values: list[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Enterprise(Base):
    __tablename__ = "enterprises"
    __table_args__ = (
        CheckConstraint("employees >= 0", name="employees_not_negative"),
        CheckConstraint("annual_revenue_minor >= 0", name="revenue_not_negative"),
        CheckConstraint("total_assets_minor >= 0", name="assets_not_negative"),
        CheckConstraint("registered_capital_minor >= 0", name="capital_not_negative"),
        CheckConstraint(_in("size_class", ["micro", "small", "medium", "large"]), name="size_known"),
    )

    organisation_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("organisations.id"), primary_key=True)
    credit_code: Mapped[str] = mapped_column(String(18), unique=True)
    legal_representative: Mapped[str] = mapped_column(String(100))
    registered_capital_minor: Mapped[int] = mapped_column(Money64)
    currency: Mapped[str] = mapped_column(String(3))
    founded_on: Mapped[date] = mapped_column(Date)
    industry_code: Mapped[str] = mapped_column(String(5))
    region_code: Mapped[str] = mapped_column(String(6))
    employees: Mapped[int] = mapped_column(Integer)
    annual_revenue_minor: Mapped[int] = mapped_column(Money64)
    total_assets_minor: Mapped[int] = mapped_column(Money64)
    size_class: Mapped[str] = mapped_column(String(10))
    size_group: Mapped[str] = mapped_column(String(40))
    size_rule_en: Mapped[str] = mapped_column(Text)
    size_rule_zh: Mapped[str] = mapped_column(Text)
    contact_name: Mapped[str] = mapped_column(String(100))
    contact_phone: Mapped[str] = mapped_column(String(30))
    contact_email: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class EnterprisePerson(Base):
    """Shareholders (with their share) and key people. Identity numbers are kept encrypted."""

    __tablename__ = "enterprise_people"
    __table_args__ = (
        CheckConstraint(_in("role", [r.value for r in PersonRole]), name="role_known"),
        CheckConstraint("share_bp IS NULL OR (share_bp > 0 AND share_bp <= 10000)", name="share_in_range"),
    )

    id: Mapped[uuid.UUID] = mapped_column(GUID, primary_key=True, default=uuid7)
    organisation_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("organisations.id"), index=True)
    role: Mapped[str] = mapped_column(String(30))
    name: Mapped[str] = mapped_column(String(200))
    identifier_enc: Mapped[str | None] = mapped_column(String(300))
    identifier_masked: Mapped[str | None] = mapped_column(String(30))
    share_bp: Mapped[int | None] = mapped_column(Integer)  # basis points: 10000 = 100 %
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BankAccount(Base):
    """An account of the party's own at a bank, for payouts and withdrawals; an agency verifies it."""

    __tablename__ = "bank_accounts"

    id: Mapped[uuid.UUID] = mapped_column(GUID, primary_key=True, default=uuid7)
    organisation_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("organisations.id"), index=True)
    bank_name: Mapped[str] = mapped_column(String(200))
    account_name: Mapped[str] = mapped_column(String(200))
    account_number_enc: Mapped[str] = mapped_column(String(300))
    account_number_masked: Mapped[str] = mapped_column(String(40))
    currency: Mapped[str] = mapped_column(String(3))
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    verified_by: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Investor(Base):
    __tablename__ = "investors"
    __table_args__ = (
        CheckConstraint(
            f"institution_type IS NULL OR {_in('institution_type', [t.value for t in InstitutionType])}",
            name="institution_type_known",
        ),
        CheckConstraint(
            "risk_level IS NULL OR risk_level IN ('C1','C2','C3','C4','C5')", name="risk_level_known"
        ),
    )

    organisation_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("organisations.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    institution_type: Mapped[str | None] = mapped_column(String(30))
    credit_code: Mapped[str | None] = mapped_column(String(18), unique=True)
    resident_id_enc: Mapped[str | None] = mapped_column(String(300))
    resident_id_masked: Mapped[str | None] = mapped_column(String(30))
    resident_id_digest: Mapped[str | None] = mapped_column(String(64), unique=True)
    contact_phone: Mapped[str] = mapped_column(String(30))
    currency: Mapped[str] = mapped_column(String(3))
    net_worth_minor: Mapped[int] = mapped_column(Money64)
    annual_income_minor: Mapped[int] = mapped_column(Money64)
    funds_sources: Mapped[list[str]] = mapped_column(JSON)
    funds_note: Mapped[str] = mapped_column(Text)
    risk_score: Mapped[int | None] = mapped_column(Integer)
    risk_level: Mapped[str | None] = mapped_column(String(2))
    risk_answers: Mapped[dict[str, str] | None] = mapped_column(JSON)
    risk_assessed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Agency(Base):
    __tablename__ = "agencies"

    organisation_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("organisations.id"), primary_key=True)
    credit_code: Mapped[str] = mapped_column(String(18), unique=True)
    licence_number: Mapped[str] = mapped_column(String(60))
    types: Mapped[list[str]] = mapped_column(JSON)
    region_code: Mapped[str] = mapped_column(String(6))
    public_key: Mapped[str] = mapped_column(String(64))  # Ed25519, raw 32 bytes, base64
    #: A simulated agency (demo and tests): the worker answers its orders, slowly and imperfectly.
    simulated: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AgencyService(Base):
    """One entry of an agency's catalogue: a service, its fee and its service-level time."""

    __tablename__ = "agency_services"
    __table_args__ = (
        UniqueConstraint("organisation_id", "service", name="uq_agency_services_org_service"),
        CheckConstraint("fee_minor >= 0", name="fee_not_negative"),
        CheckConstraint("sla_hours > 0", name="sla_positive"),
    )

    id: Mapped[uuid.UUID] = mapped_column(GUID, primary_key=True, default=uuid7)
    organisation_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("organisations.id"), index=True)
    agency_type: Mapped[str] = mapped_column(String(30))
    service: Mapped[str] = mapped_column(String(60))
    fee_minor: Mapped[int] = mapped_column(Money64)
    currency: Mapped[str] = mapped_column(String(3))
    sla_hours: Mapped[int] = mapped_column(Integer)


class Qualification(Base):
    """A party's admittance case; its status says whether it may do business."""

    __tablename__ = "qualifications"
    __table_args__ = (
        CheckConstraint(_in("status", [s.value for s in QualificationStatus]), name="status_known"),
    )

    id: Mapped[uuid.UUID] = mapped_column(GUID, primary_key=True, default=uuid7)
    ref: Mapped[str] = mapped_column(String(20), unique=True)
    organisation_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("organisations.id"), unique=True)
    status: Mapped[str] = mapped_column(String(30), index=True)
    first_approver_id: Mapped[str | None] = mapped_column(String(36))
    last_reason: Mapped[str | None] = mapped_column(Text)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class QualificationEvent(Base):
    __tablename__ = "qualification_events"

    id: Mapped[uuid.UUID] = mapped_column(GUID, primary_key=True, default=uuid7)
    qualification_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("qualifications.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_user_id: Mapped[str | None] = mapped_column(String(36))
    actor_label: Mapped[str] = mapped_column(String(254))
    action: Mapped[str] = mapped_column(String(30))
    from_status: Mapped[str | None] = mapped_column(String(30))
    to_status: Mapped[str] = mapped_column(String(30))
    reason: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)


class Document(Base):
    __tablename__ = "documents"
    __table_args__ = (
        CheckConstraint(_in("category", [c.value for c in DocumentCategory]), name="category_known"),
        CheckConstraint("size_bytes > 0", name="size_positive"),
    )

    id: Mapped[uuid.UUID] = mapped_column(GUID, primary_key=True, default=uuid7)
    organisation_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("organisations.id"), index=True)
    category: Mapped[str] = mapped_column(String(30))
    original_name: Mapped[str] = mapped_column(String(255))
    stored_name: Mapped[str] = mapped_column(String(80), unique=True)
    content_type: Mapped[str] = mapped_column(String(60))
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    uploaded_by: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Consent(Base):
    """The enterprise lets a class of recipients see a category of its data, for a purpose, until a date."""

    __tablename__ = "consents"
    __table_args__ = (
        CheckConstraint(_in("data_category", [c.value for c in DataCategory]), name="category_known"),
        CheckConstraint(_in("recipient_class", [c.value for c in RecipientClass]), name="recipient_known"),
    )

    id: Mapped[uuid.UUID] = mapped_column(GUID, primary_key=True, default=uuid7)
    organisation_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("organisations.id"), index=True)
    data_category: Mapped[str] = mapped_column(String(40))
    recipient_class: Mapped[str] = mapped_column(String(20))
    purpose: Mapped[str] = mapped_column(String(500))
    valid_until: Mapped[date] = mapped_column(Date)
    granted_by: Mapped[str] = mapped_column(String(254))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by: Mapped[str | None] = mapped_column(String(254))
