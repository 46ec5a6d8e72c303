"""Tables of step 7: the servicing state of each loan, its instalments, the end-of-day sub-ledger,
repayments and their distribution, restructurings, claims on guarantors and insurers, write-offs.

The loan book is a sub-ledger: one row per loan (``loan_servicing``) and per instalment, and one
accrual row per loan and business date, written set-based by the end of day. The general ledger
holds its control totals per currency (``loan_book`` against ``investor_claims``), so the two can
be reconciled, and every movement of money (collections, distributions, claims) goes through the
ledger itself.
"""

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

Amount = BigInteger().with_variant(Integer, "sqlite")

LOAN_STATES = ("performing", "delinquent", "non_performing", "defaulted", "written_off", "closed")
BUCKETS = ("current", "1-30", "31-60", "61-90", "90+")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class LoanServicing(Base):
    """The servicing state of one active loan (one row per loan, created when it is paid out)."""

    __tablename__ = "loan_servicing"
    __table_args__ = (
        CheckConstraint(_in("state", LOAN_STATES), name="state_known"),
        CheckConstraint(_in("bucket", BUCKETS), name="bucket_known"),
        CheckConstraint("ifrs9_stage IN (1, 2, 3)", name="stage_known"),
        CheckConstraint("principal_outstanding >= 0", name="principal_not_negative"),
        CheckConstraint("interest_accrued >= 0 AND penalty_accrued >= 0", name="accruals_not_negative"),
        CheckConstraint("days_past_due >= 0", name="dpd_not_negative"),
        Index("ix_loan_servicing_state", "state"),
        # Every row is rewritten by each end of day: leave room on the page for the new version
        # (a HOT update on PostgreSQL, no index churn).
        {"postgresql_with": {"fillfactor": 50}},
    )

    loan_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("loans.id"), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3))
    annual_rate_bp: Mapped[int] = mapped_column(Integer)  # the contract rate, basis points (8.5% = 850)
    penalty_rate_bp: Mapped[int] = mapped_column(Integer)  # on overdue amounts, within the all-in cap
    day_count: Mapped[str] = mapped_column(String(10))
    frequency: Mapped[str] = mapped_column(String(10))
    method: Mapped[str] = mapped_column(String(30))
    start_date: Mapped[date] = mapped_column(Date)
    maturity_date: Mapped[date] = mapped_column(Date)
    schedule_version: Mapped[int] = mapped_column(Integer, default=1)
    principal_outstanding: Mapped[int] = mapped_column(Amount)
    interest_accrued: Mapped[int] = mapped_column(Amount, default=0)  # accrued, not yet paid
    penalty_accrued: Mapped[int] = mapped_column(Amount, default=0)  # accrued, not yet paid
    overpayment: Mapped[int] = mapped_column(Amount, default=0)  # held for the enterprise
    days_past_due: Mapped[int] = mapped_column(Integer, default=0)
    bucket: Mapped[str] = mapped_column(String(8), default="current")
    ifrs9_stage: Mapped[int] = mapped_column(Integer, default=1)
    state: Mapped[str] = mapped_column(String(16), default="performing")
    last_accrual_date: Mapped[date | None] = mapped_column(Date)
    next_due_date: Mapped[date | None] = mapped_column(Date)
    closed_on: Mapped[date | None] = mapped_column(Date)
    written_off_minor: Mapped[int] = mapped_column(Amount, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Instalment(Base):
    """One instalment of a loan's current schedule (a restructuring writes a new version)."""

    __tablename__ = "loan_instalments"
    __table_args__ = (
        UniqueConstraint("loan_id", "version", "number", name="one_instalment_per_number"),
        CheckConstraint("principal_due >= 0 AND interest_due >= 0", name="dues_not_negative"),
        CheckConstraint("principal_paid <= principal_due", name="principal_not_overpaid"),
        CheckConstraint("interest_paid <= interest_due", name="interest_not_overpaid"),
        CheckConstraint("status IN ('scheduled', 'due', 'paid', 'superseded')", name="status_known"),
        Index("ix_loan_instalments_due", "due_date", "status"),
        Index("ix_loan_instalments_loan", "loan_id", "version", "number"),
    )

    id: Mapped[uuid.UUID] = mapped_column(GUID, primary_key=True, default=uuid7)
    loan_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("loans.id"))
    version: Mapped[int] = mapped_column(Integer)
    number: Mapped[int] = mapped_column(Integer)
    period_start: Mapped[date] = mapped_column(Date)
    due_date: Mapped[date] = mapped_column(Date)
    principal_due: Mapped[int] = mapped_column(Amount)
    interest_due: Mapped[int] = mapped_column(Amount)
    principal_paid: Mapped[int] = mapped_column(Amount, default=0)
    interest_paid: Mapped[int] = mapped_column(Amount, default=0)
    penalty_paid: Mapped[int] = mapped_column(Amount, default=0)
    status: Mapped[str] = mapped_column(String(12), default="scheduled")
    paid_on: Mapped[date | None] = mapped_column(Date)
    reminded: Mapped[bool] = mapped_column(Boolean, default=False)


class DailyAccrual(Base):
    """The end of day's sub-ledger: what one loan accrued on one business date."""

    __tablename__ = "loan_daily_accruals"
    __table_args__ = (UniqueConstraint("loan_id", "business_date", name="one_accrual_per_day"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    # No foreign key: only the end of day writes these rows, from loan_servicing (which references
    # loans), and a key check would lock each loan row once per loan per day.
    loan_id: Mapped[uuid.UUID] = mapped_column(GUID)
    business_date: Mapped[date] = mapped_column(Date, index=True)
    interest: Mapped[int] = mapped_column(Amount)
    penalty: Mapped[int] = mapped_column(Amount)
    days_past_due: Mapped[int] = mapped_column(Integer)


class EodRun(Base):
    """One end of day per business date, its steps done one by one (restartable)."""

    __tablename__ = "eod_runs"
    __table_args__ = (CheckConstraint("status IN ('running', 'closed')", name="status_known"),)

    business_date: Mapped[date] = mapped_column(Date, primary_key=True)
    status: Mapped[str] = mapped_column(String(8))
    steps_done: Mapped[list[str]] = mapped_column(JSON)
    totals: Mapped[dict[str, Any]] = mapped_column(JSON)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_by: Mapped[str] = mapped_column(String(254))


class Repayment(Base):
    """Money the enterprise pays into its loan's collection account through the custodian."""

    __tablename__ = "repayments"
    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint("status IN ('pending', 'confirmed', 'failed', 'allocated')", name="status_known"),
        CheckConstraint("kind IN ('scheduled', 'early_full', 'early_partial')", name="kind_known"),
        Index("ix_repayments_loan", "loan_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(GUID, primary_key=True, default=uuid7)
    ref: Mapped[str] = mapped_column(String(20), unique=True)
    loan_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("loans.id"))
    amount_minor: Mapped[int] = mapped_column(Amount)
    currency: Mapped[str] = mapped_column(String(3))
    kind: Mapped[str] = mapped_column(String(14))
    early_option: Mapped[str | None] = mapped_column(String(20))  # shorter_term | smaller_instalment
    status: Mapped[str] = mapped_column(String(10))
    instruction_id: Mapped[uuid.UUID | None] = mapped_column(GUID)
    allocation: Mapped[dict[str, Any]] = mapped_column(JSON)  # fees/penalty/interest/principal/held
    created_by: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    value_date: Mapped[date | None] = mapped_column(Date)
    allocated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Distribution(Base):
    """One note holder's part of one repayment (or claim payment, or recovery)."""

    __tablename__ = "distributions"
    __table_args__ = (Index("ix_distributions_investor", "investor_org_id", "value_date"),)

    id: Mapped[uuid.UUID] = mapped_column(GUID, primary_key=True, default=uuid7)
    source_kind: Mapped[str] = mapped_column(String(12))  # repayment | guarantee | insurance | recovery
    source_id: Mapped[uuid.UUID] = mapped_column(GUID, index=True)
    loan_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("loans.id"), index=True)
    note_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("loan_notes.id"))
    investor_org_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("organisations.id"))
    principal: Mapped[int] = mapped_column(Amount)
    interest: Mapped[int] = mapped_column(Amount)
    penalty: Mapped[int] = mapped_column(Amount)
    service_fee: Mapped[int] = mapped_column(Amount)  # the platform's disclosed fee, deducted
    net: Mapped[int] = mapped_column(Amount)  # paid to the investor's available account
    currency: Mapped[str] = mapped_column(String(3))
    value_date: Mapped[date] = mapped_column(Date)
    entry_id: Mapped[uuid.UUID | None] = mapped_column(GUID)


class Restructuring(Base):
    __tablename__ = "restructurings"
    __table_args__ = (
        CheckConstraint("kind IN ('payment_holiday', 'term_extension', 'reamortisation')", name="kind_known"),
        CheckConstraint("status IN ('proposed', 'approved', 'rejected', 'applied')", name="status_known"),
    )

    id: Mapped[uuid.UUID] = mapped_column(GUID, primary_key=True, default=uuid7)
    ref: Mapped[str] = mapped_column(String(20), unique=True)
    loan_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("loans.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)  # months, new term, ...
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10))
    preview: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # the new schedule, as shown
    proposed_by: Mapped[str] = mapped_column(String(254))
    proposed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RestructuringVote(Base):
    __tablename__ = "restructuring_votes"
    __table_args__ = (UniqueConstraint("restructuring_id", "organisation_id", name="one_vote_per_lender"),)

    id: Mapped[uuid.UUID] = mapped_column(GUID, primary_key=True, default=uuid7)
    restructuring_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("restructurings.id"), index=True)
    organisation_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("organisations.id"))
    weight_minor: Mapped[int] = mapped_column(Amount)  # the note's outstanding principal
    approve: Mapped[bool] = mapped_column(Boolean)
    voted_by: Mapped[str] = mapped_column(String(254))
    voted_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Claim(Base):
    """A call on a guarantor (or an insurer) after the policy's days past due."""

    __tablename__ = "loan_claims"
    __table_args__ = (
        CheckConstraint("kind IN ('guarantee', 'insurance')", name="kind_known"),
        CheckConstraint("status IN ('open', 'paid', 'rejected', 'lapsed')", name="status_known"),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        UniqueConstraint("loan_id", "kind", name="one_claim_per_kind"),
    )

    id: Mapped[uuid.UUID] = mapped_column(GUID, primary_key=True, default=uuid7)
    ref: Mapped[str] = mapped_column(String(20), unique=True)
    loan_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("loans.id"))
    kind: Mapped[str] = mapped_column(String(10))
    payer_org_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("organisations.id"))
    coverage_bp: Mapped[int] = mapped_column(Integer)
    amount_minor: Mapped[int] = mapped_column(Amount)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(10))
    deadline: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    subrogated_minor: Mapped[int] = mapped_column(Amount, default=0)  # the payer's claim on the SME
