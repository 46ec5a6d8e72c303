"""Pydantic shapes of the demands API. Amounts are decimal strings in major units."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from yunrong.demands.model import DemandStatus, Product, RepaymentMethod

Amount = Annotated[Decimal, Field(ge=0, max_digits=16, decimal_places=2)]
Positive = Annotated[Decimal, Field(gt=0, max_digits=16, decimal_places=2)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class FundUse(Strict):
    item: str = Field(min_length=1, max_length=200)
    amount: Positive


class Patent(Strict):
    number: str = Field(min_length=1, max_length=40)
    title: str = Field(min_length=1, max_length=200)


class Innovation(Strict):
    rd_spend: Amount = Decimal(0)
    patents: list[Patent] = Field(default_factory=list, max_length=50)
    high_tech_certified: bool = False
    certificate_number: str | None = Field(default=None, max_length=60)


class Collateral(Strict):
    kind: Literal["property", "equipment", "inventory", "receivable", "equity", "deposit", "other"]
    description: str = Field(min_length=1, max_length=300)
    value: Positive


class Receivable(Strict):
    debtor_name: str = Field(min_length=1, max_length=200)
    debtor_credit_code: str = Field(min_length=18, max_length=18)
    invoice_number: str = Field(min_length=1, max_length=60)
    amount: Positive
    due_date: date


class Inventory(Strict):
    goods: str = Field(min_length=1, max_length=200)
    warehouse: str = Field(min_length=1, max_length=200)
    quantity: Decimal = Field(gt=0)
    unit: str = Field(min_length=1, max_length=20)
    value: Positive


class Store(Strict):
    platform: str = Field(min_length=1, max_length=60)
    store_id: str = Field(min_length=1, max_length=60)
    monthly_sales: list[Amount] = Field(
        min_length=1, max_length=36, description="Oldest first, last 1–36 months"
    )


class Lease(Strict):
    equipment: str = Field(min_length=1, max_length=200)
    supplier: str = Field(min_length=1, max_length=200)
    price: Positive
    residual_value: Amount
    end_option: Literal["purchase", "renew", "return"]


class ProductFacts(Strict):
    receivable: Receivable | None = None
    inventory: Inventory | None = None
    store: Store | None = None
    lease: Lease | None = None
    target_bank_ids: list[uuid.UUID] = Field(default_factory=list, max_length=10)


class DemandIn(Strict):
    product: Product
    title: str = Field(min_length=1, max_length=200)
    amount: Positive
    min_funding: Positive | None = Field(
        default=None, description="Least amount accepted if not fully funded"
    )
    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")
    term_months: int = Field(ge=1, le=600)
    repayment_method: RepaymentMethod
    max_annual_rate: Decimal = Field(
        gt=0, lt=100, decimal_places=4, description="Highest acceptable rate, percent"
    )
    purpose: str = Field(min_length=1, max_length=4000)
    use_of_funds: list[FundUse] = Field(min_length=1, max_length=30)
    innovation: Innovation = Field(default_factory=Innovation)
    collateral: list[Collateral] = Field(default_factory=list, max_length=20)
    guarantee_wanted: bool = False
    project_key: str = Field(
        min_length=1, max_length=100, description="Names the project (no double financing)"
    )
    facts: ProductFacts = Field(default_factory=ProductFacts)
    attachment_ids: list[uuid.UUID] = Field(default_factory=list, max_length=20)


class ReasonIn(Strict):
    reason: str = Field(min_length=1, max_length=2000)


class DemandEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    actor_label: str
    from_status: str | None
    to_status: str
    reason: str


class DemandOut(BaseModel):
    id: uuid.UUID
    ref: str
    organisation_id: uuid.UUID
    enterprise_name: str
    product: Product
    status: DemandStatus
    title: str
    amount: str
    amount_minor: int
    min_funding_minor: int | None
    currency: str
    term_months: int
    repayment_method: RepaymentMethod
    max_annual_rate: Decimal
    purpose: str
    use_of_funds: list[dict[str, Any]]
    innovation: dict[str, Any]
    collateral: list[dict[str, Any]]
    guarantee_wanted: bool
    project_key: str
    product_facts: dict[str, Any]
    attachment_ids: list[str]
    status_reason: str | None
    created_at: datetime
    submitted_at: datetime | None
    listed_at: datetime | None
    events: list[DemandEventOut] = Field(default_factory=list)
    orders: list[dict[str, Any]] = Field(default_factory=list)
