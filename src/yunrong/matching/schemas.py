"""Pydantic shapes of the matching API. Amounts are decimal strings in major units."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from yunrong.matching.model import Innovation

Positive = Annotated[Decimal, Field(gt=0, max_digits=16, decimal_places=2)]
Code = Annotated[str, Field(min_length=1, max_length=30)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class PreferencesIn(Strict):
    currency: str = Field(min_length=3, max_length=3)
    amount_per_loan: Positive
    total_budget: Positive
    min_term_months: int = Field(1, ge=1, le=60)
    max_term_months: int = Field(60, ge=1, le=60)
    grades: list[Code] = Field(default_factory=list, max_length=9)
    industries: list[Code] = Field(default_factory=list, max_length=100)
    regions: list[Code] = Field(default_factory=list, max_length=100)
    products: list[Code] = Field(default_factory=list, max_length=5)
    enterprise_sizes: list[Code] = Field(default_factory=list, max_length=4)
    innovation: Innovation = Innovation.NEUTRAL
    min_transparency: int = Field(0, ge=0, le=100)
    min_guarantee_coverage: Decimal = Field(Decimal(0), ge=0, le=1, max_digits=5, decimal_places=4)


class PreferencesOut(BaseModel):
    currency: str
    amount_per_loan: str
    total_budget: str
    min_term_months: int
    max_term_months: int
    grades: list[str]
    industries: list[str]
    regions: list[str]
    products: list[str]
    enterprise_sizes: list[str]
    innovation: Innovation
    min_transparency: int
    min_guarantee_coverage: str
    updated_at: datetime


class PushSettingsIn(Strict):
    daily_cap: int = Field(ge=0, le=50)
    unsubscribed: bool = False


class PushSettingsOut(BaseModel):
    daily_cap: int
    unsubscribed: bool


class ReasonOut(BaseModel):
    code: str
    en: str
    zh: str


class RecommendationOut(BaseModel):
    demand_id: uuid.UUID
    ref: str
    title: str
    product: str
    amount: str
    currency: str
    term_months: int
    grade: str
    product_risk: str
    annual_rate: str | None
    transparency: int
    score: float
    score_parts: dict[str, float]
    reasons: list[ReasonOut]
