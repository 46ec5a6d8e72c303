"""Tables of steps 5 and 6: funding rounds, commitments, loans and notes, bank offers, auto-invest
rules, loan agreements and their acceptances, and investors' knowledge tests."""

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
    LargeBinary,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from yunrong.db import GUID, Base, UTCDateTime
from yunrong.kit.ids import uuid7

Amount = BigInteger().with_variant(Integer, "sqlite")


class FundingRound(Base):
    """One per listed demand funded by investors: the window, the tickets and the running total.

    ``committed_minor`` is changed only under the round's row lock, in the same transaction as the
    hold, so concurrent commitments can never overfund it."""

    __tablename__ = "funding_rounds"
    __table_args__ = (
        CheckConstraint("committed_minor >= 0 AND committed_minor <= target_minor", name="never_overfunded"),
        CheckConstraint(
            "min_ticket_minor > 0 AND max_ticket_minor >= min_ticket_minor", name="tickets_ordered"
        ),
        CheckConstraint("status IN ('open', 'funded', 'failed', 'cancelled')", name="status_known"),
    )

    id: Mapped[uuid.UUID] = mapped_column(GUID, primary_key=True, default=uuid7)
    demand_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("demands.id"), unique=True)
    currency: Mapped[str] = mapped_column(String(3))
    target_minor: Mapped[int] = mapped_column(Amount)
    min_funding_minor: Mapped[int | None] = mapped_column(Amount)
    min_ticket_minor: Mapped[int] = mapped_column(Amount)
    max_ticket_minor: Mapped[int] = mapped_column(Amount)
    committed_minor: Mapped[int] = mapped_column(Amount, default=0)
    commitments: Mapped[int] = mapped_column(Integer, default=0)
    annual_rate: Mapped[Decimal] = mapped_column(Numeric(9, 6))  # fraction, from the credit decision
    opens_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closes_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    accept_partial: Mapped[bool] = mapped_column(Boolean, default=False)
    # The agreement form investors accept when they commit (the listing's terms, lenders in an annex).
    form_sha256: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(10), index=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    loan_id: Mapped[uuid.UUID | None] = mapped_column(GUID)


class Commitment(Base):
    __tablename__ = "commitments"
    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint("status IN ('pending', 'posted', 'cancelled', 'voided')", name="status_known"),
        Index("ix_commitments_round_status", "round_id", "status"),
        Index("ix_commitments_investor", "investor_org_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(GUID, primary_key=True, default=uuid7)
    ref: Mapped[str] = mapped_column(String(20), unique=True)
    round_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("funding_rounds.id"))
    demand_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("demands.id"), index=True)
    investor_org_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("organisations.id"))
    amount_minor: Mapped[int] = mapped_column(Amount)
    currency: Mapped[str] = mapped_column(String(3))
    hold_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("holds.id"), unique=True)
    status: Mapped[str] = mapped_column(String(10))
    source: Mapped[str] = mapped_column(String(12))
    rule_id: Mapped[uuid.UUID | None] = mapped_column(GUID)
    risk_warning_accepted: Mapped[bool] = mapped_column(Boolean, default=False)
    # The hash of the agreement form (the listing's terms) the investor accepted by click-through.
    agreement_sha256: Mapped[str | None] = mapped_column(String(64))
    revocable_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolution: Mapped[str | None] = mapped_column(Text)


class Loan(Base):
    __tablename__ = "loans"
    __table_args__ = (
        CheckConstraint("principal_minor > 0", name="principal_positive"),
        CheckConstraint("fee_minor >= 0 AND fee_minor < principal_minor", name="fee_within_principal"),
        CheckConstraint(
            "status IN ('contracting', 'disbursing', 'active', 'cancelled')", name="status_known"
        ),
        CheckConstraint("lender_kind IN ('investors', 'bank')", name="lender_known"),
    )

    id: Mapped[uuid.UUID] = mapped_column(GUID, primary_key=True, default=uuid7)
    ref: Mapped[str] = mapped_column(String(20), unique=True)
    demand_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("demands.id"), unique=True)
    enterprise_org_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("organisations.id"), index=True)
    lender_kind: Mapped[str] = mapped_column(String(10))
    bank_org_id: Mapped[uuid.UUID | None] = mapped_column(GUID, ForeignKey("organisations.id"))
    offer_id: Mapped[uuid.UUID | None] = mapped_column(GUID)
    product: Mapped[str] = mapped_column(String(30))
    principal_minor: Mapped[int] = mapped_column(Amount)
    currency: Mapped[str] = mapped_column(String(3))
    annual_rate: Mapped[Decimal] = mapped_column(Numeric(9, 6))  # fraction
    fee_minor: Mapped[int] = mapped_column(Amount)  # disclosed one-off platform service fee
    apr: Mapped[Decimal | None] = mapped_column(Numeric(9, 6))  # IRR of the cash flows, fee included
    term_months: Mapped[int] = mapped_column(Integer)
    repayment_method: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(12), index=True)
    payout_instruction_id: Mapped[uuid.UUID | None] = mapped_column(GUID)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disbursed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Note(Base):
    """One investor's share of one loan."""

    __tablename__ = "loan_notes"
    __table_args__ = (
        CheckConstraint("principal_minor > 0", name="principal_positive"),
        UniqueConstraint("loan_id", "investor_org_id", name="one_note_per_investor"),
    )

    id: Mapped[uuid.UUID] = mapped_column(GUID, primary_key=True, default=uuid7)
    ref: Mapped[str] = mapped_column(String(20), unique=True)
    loan_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("loans.id"), index=True)
    investor_org_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("organisations.id"), index=True)
    principal_minor: Mapped[int] = mapped_column(Amount)
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BankOffer(Base):
    __tablename__ = "bank_offers"
    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint("term_months > 0", name="term_positive"),
        CheckConstraint(
            "status IN ('open', 'accepted', 'declined', 'withdrawn', 'expired', 'superseded')",
            name="status_known",
        ),
        Index("ix_bank_offers_demand_status", "demand_id", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(GUID, primary_key=True, default=uuid7)
    ref: Mapped[str] = mapped_column(String(20), unique=True)
    demand_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("demands.id"))
    bank_org_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("organisations.id"), index=True)
    amount_minor: Mapped[int] = mapped_column(Amount)
    currency: Mapped[str] = mapped_column(String(3))
    annual_rate: Mapped[Decimal] = mapped_column(Numeric(9, 6))  # fraction
    fee_minor: Mapped[int] = mapped_column(Amount, default=0)
    term_months: Mapped[int] = mapped_column(Integer)
    repayment_method: Mapped[str] = mapped_column(String(30))
    conditions: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10))
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(254))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    loan_id: Mapped[uuid.UUID | None] = mapped_column(GUID)


class AutoInvestRule(Base):
    __tablename__ = "autoinvest_rules"
    __table_args__ = (
        CheckConstraint("amount_per_loan_minor > 0", name="ticket_positive"),
        CheckConstraint("max_share_of_loan_bp BETWEEN 1 AND 10000", name="share_in_range"),
        CheckConstraint("max_industry_bp BETWEEN 1 AND 10000", name="industry_in_range"),
        CheckConstraint("max_region_bp BETWEEN 1 AND 10000", name="region_in_range"),
        CheckConstraint("max_grade_bp BETWEEN 1 AND 10000", name="grade_in_range"),
    )

    id: Mapped[uuid.UUID] = mapped_column(GUID, primary_key=True, default=uuid7)
    ref: Mapped[str] = mapped_column(String(20), unique=True)
    investor_org_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("organisations.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    currency: Mapped[str] = mapped_column(String(3))
    amount_per_loan_minor: Mapped[int] = mapped_column(Amount)
    max_share_of_loan_bp: Mapped[int] = mapped_column(Integer)  # of one loan's amount
    max_per_enterprise_minor: Mapped[int] = mapped_column(Amount)
    max_industry_bp: Mapped[int] = mapped_column(Integer)  # of the investor's portfolio
    max_region_bp: Mapped[int] = mapped_column(Integer)
    max_grade_bp: Mapped[int] = mapped_column(Integer)
    grades: Mapped[list[str]] = mapped_column(JSON)
    products: Mapped[list[str]] = mapped_column(JSON)
    min_transparency: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LoanAgreement(Base):
    """The generated PDF and its hash; what every party accepts is this hash."""

    __tablename__ = "loan_agreements"

    id: Mapped[uuid.UUID] = mapped_column(GUID, primary_key=True, default=uuid7)
    loan_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("loans.id"), unique=True)
    sha256: Mapped[str] = mapped_column(String(64))
    pdf: Mapped[bytes] = mapped_column(LargeBinary)
    terms: Mapped[dict[str, Any]] = mapped_column(JSON)  # what the PDF states, as data
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AgreementAcceptance(Base):
    __tablename__ = "agreement_acceptances"
    __table_args__ = (UniqueConstraint("agreement_id", "organisation_id", name="one_acceptance_per_party"),)

    id: Mapped[uuid.UUID] = mapped_column(GUID, primary_key=True, default=uuid7)
    agreement_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("loan_agreements.id"), index=True)
    organisation_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("organisations.id"))
    party_role: Mapped[str] = mapped_column(String(12))  # borrower | investor | bank
    sha256: Mapped[str] = mapped_column(String(64))  # the hash the party saw and accepted
    accepted_by: Mapped[str] = mapped_column(String(254))
    accepted_at: Mapped[datetime] = mapped_column(UTCDateTime)


class KnowledgeTest(Base):
    """eu-ecsp: a non-sophisticated investor's entry knowledge test (latest attempt per investor)."""

    __tablename__ = "knowledge_tests"

    organisation_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("organisations.id"), primary_key=True)
    score: Mapped[int] = mapped_column(Integer)
    out_of: Mapped[int] = mapped_column(Integer)
    passed: Mapped[bool] = mapped_column(Boolean)
    answers: Mapped[dict[str, Any]] = mapped_column(JSON)
    taken_by: Mapped[str] = mapped_column(String(254))
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime)
