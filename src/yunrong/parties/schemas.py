"""Pydantic shapes of the parties API. Amounts are decimal strings in major units ("5000000.00")."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from yunrong.identity.model import InvestorKind
from yunrong.parties.model import (
    AgencyType,
    DataCategory,
    DocumentCategory,
    FundsSource,
    InstitutionType,
    PersonRole,
    QualificationStatus,
    RecipientClass,
    ReviewAction,
)

Amount = Annotated[
    Decimal, Field(ge=0, max_digits=16, decimal_places=2, description="Major units, e.g. 1250000.00")
]
Text200 = Annotated[str, Field(min_length=1, max_length=200)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ApplicantIn(Strict):
    """The person who registers and becomes the party's first user."""

    email: str = Field(min_length=3, max_length=254)
    name: Text200
    password: str = Field(min_length=1, max_length=256)


class ContactIn(Strict):
    name: Text200
    phone: str = Field(min_length=5, max_length=30, pattern=r"^[0-9+\-() ]+$")
    email: str = Field(min_length=3, max_length=254)


class PersonIn(Strict):
    role: PersonRole
    name: Text200
    identifier: str | None = Field(
        default=None,
        max_length=18,
        description="Resident ID (person) or unified social credit code (company)",
    )
    share_percent: Decimal | None = Field(default=None, gt=0, le=100, decimal_places=2)


class BankAccountIn(Strict):
    bank_name: Text200
    account_name: Text200
    account_number: str = Field(min_length=8, max_length=30, pattern=r"^[0-9]+$")
    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")


class EnterpriseIn(Strict):
    credit_code: str = Field(
        min_length=1, max_length=18, description="Unified social credit code (GB 32100-2015)"
    )
    name: Text200
    legal_representative: Text200
    registered_capital: Amount
    founded_on: date
    industry_code: str = Field(min_length=1, max_length=5, description="GB/T 4754-2017, e.g. C3911")
    region_code: str = Field(min_length=1, max_length=6, description="GB/T 2260 administrative division code")
    employees: int = Field(ge=0, le=10_000_000)
    annual_revenue: Amount
    total_assets: Amount
    contact: ContactIn


class EnterpriseRegistrationIn(Strict):
    enterprise: EnterpriseIn
    applicant: ApplicantIn
    people: list[PersonIn] = Field(default_factory=list, max_length=50)
    bank_account: BankAccountIn | None = None


class InvestorIn(Strict):
    kind: InvestorKind
    name: Text200
    resident_id: str | None = Field(default=None, max_length=18, description="Persons: GB 11643 ID number")
    institution_type: InstitutionType | None = None
    credit_code: str | None = Field(default=None, max_length=18, description="Institutions")
    contact_phone: str = Field(min_length=5, max_length=30, pattern=r"^[0-9+\-() ]+$")
    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")
    net_worth: Amount
    annual_income: Amount
    funds_sources: list[FundsSource] = Field(min_length=1, max_length=8)
    funds_note: str = Field(default="", max_length=1000, description="Source-of-funds declaration")


class InvestorRegistrationIn(Strict):
    investor: InvestorIn
    applicant: ApplicantIn
    risk_answers: dict[str, str] | None = Field(default=None, description="question key → option key")
    bank_account: BankAccountIn | None = None


class AgencyServiceIn(Strict):
    agency_type: AgencyType
    service: str = Field(min_length=1, max_length=60, pattern=r"^[a-z][a-z0-9_]*$")
    fee: Amount
    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")
    sla_hours: int = Field(gt=0, le=24 * 90)


class AgencyIn(Strict):
    name: Text200
    credit_code: str = Field(min_length=1, max_length=18)
    licence_number: str = Field(min_length=1, max_length=60)
    types: list[AgencyType] = Field(min_length=1, max_length=7)
    region_code: str = Field(min_length=1, max_length=6)
    public_key: str = Field(
        min_length=1, max_length=64, description="Ed25519 public key, 32 raw bytes in base64"
    )
    services: list[AgencyServiceIn] = Field(min_length=1, max_length=50)


class AgencyRegistrationIn(Strict):
    agency: AgencyIn
    applicant: ApplicantIn


class RegistrationOut(BaseModel):
    organisation_id: uuid.UUID
    organisation_ref: str
    user_id: uuid.UUID
    qualification_id: uuid.UUID
    qualification_ref: str
    status: QualificationStatus
    totp_secret: str | None = Field(
        default=None, description="For agency users, who must use two-factor: the TOTP secret, shown once."
    )
    totp_uri: str | None = Field(
        default=None, description="otpauth:// URI of the same secret, for a QR code."
    )


class DecisionIn(Strict):
    decision: ReviewAction = Field(description="approve, reject or request_info")
    reason: str = Field(min_length=1, max_length=2000)


class ResponseIn(Strict):
    message: str = Field(min_length=1, max_length=4000)
    document_ids: list[uuid.UUID] = Field(default_factory=list, max_length=20)


class ReasonIn(Strict):
    reason: str = Field(min_length=1, max_length=2000)


class EventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    actor_label: str
    action: str
    from_status: str | None
    to_status: str
    reason: str
    detail: dict[str, Any]


class QualificationOut(BaseModel):
    id: uuid.UUID
    ref: str
    organisation_id: uuid.UUID
    organisation_name: str
    organisation_type: str
    status: QualificationStatus
    last_reason: str | None
    submitted_at: datetime
    updated_at: datetime
    awaiting_second_approval_from_other_than: str | None = None


class QualificationCaseOut(QualificationOut):
    profile: dict[str, Any]
    people: list[dict[str, Any]]
    bank_accounts: list[dict[str, Any]]
    documents: list[dict[str, Any]]
    users: list[dict[str, Any]]
    events: list[EventOut]


class QuestionOptionOut(BaseModel):
    key: str
    text_en: str
    text_zh: str


class QuestionOut(BaseModel):
    key: str
    text_en: str
    text_zh: str
    options: list[QuestionOptionOut]


class RiskAssessmentIn(Strict):
    answers: dict[str, str]


class RiskAssessmentOut(BaseModel):
    score: int
    level: str
    breakdown: list[dict[str, Any]]


class DocumentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    organisation_id: uuid.UUID
    category: DocumentCategory
    original_name: str
    content_type: str
    size_bytes: int
    sha256: str
    created_at: datetime


class ConsentIn(Strict):
    data_category: DataCategory
    recipient_class: RecipientClass
    purpose: str = Field(min_length=1, max_length=500)
    valid_until: date


class ConsentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    data_category: DataCategory
    recipient_class: RecipientClass
    purpose: str
    valid_until: date
    granted_by: str
    granted_at: datetime
    revoked_at: datetime | None
    active: bool = False


class BankAccountOut(BaseModel):
    id: uuid.UUID
    bank_name: str
    account_name: str
    account_number_masked: str
    currency: str
    verified: bool
    created_at: datetime


class LprIn(Strict):
    effective_on: date
    one_year_percent: Decimal = Field(gt=0, lt=100, decimal_places=4)
    source: str = Field(min_length=1, max_length=200)


class LprOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    effective_on: date
    one_year_percent: Decimal
    source: str


class PolicyOut(BaseModel):
    key: str
    name_en: str
    name_zh: str
    currency: str
    two_person_admittance: bool
    custody_required: bool
    natural_person_outstanding_cap: int | None
    legal_person_outstanding_cap: int | None
    owner_twelve_month_cap: int | None
    lpr_multiple_cap: Decimal | None
    knowledge_test_required: bool
    reflection_days: int
    notes: str
    current_one_year_lpr_percent: Decimal | None
    current_interest_cap_percent: Decimal | None


class NotificationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: str
    subject_en: str
    subject_zh: str
    body_en: str
    body_zh: str
    link: str | None
    created_at: datetime
    read_at: datetime | None
