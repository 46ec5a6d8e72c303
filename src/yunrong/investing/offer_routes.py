"""JSON API of banks' direct offers on bank-loan demands: make, list, read, withdraw, decline, accept."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from yunrong.demands.model import RepaymentMethod
from yunrong.demands.tables import Demand
from yunrong.deps import DB, ApiCtx, SettingsDep
from yunrong.identity.model import Context
from yunrong.identity.tables import Organisation
from yunrong.investing import offers
from yunrong.investing.model import OfferStatus
from yunrong.investing.tables import BankOffer
from yunrong.kit.errors import FieldProblem, InvalidInput
from yunrong.kit.money import Money, MoneyError
from yunrong.ledger import idempotency

router = APIRouter(prefix="/api/v1", tags=["offers"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Unique per request; a retry with the same key returns the first result",
    ),
]


def _major(minor: int, currency: str) -> str:
    return str(Money(minor, currency).decimal)


def _percent(fraction: Decimal) -> str:
    return str((fraction * 100).quantize(Decimal("0.0001")))


class OfferIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    demand_id: uuid.UUID
    amount: Decimal = Field(gt=0, max_digits=16, decimal_places=2, description="Major units, e.g. 300000.00")
    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")
    annual_rate_percent: Decimal = Field(
        gt=0, lt=100, decimal_places=4, description="The contract's nominal annual rate, percent, e.g. 6.5"
    )
    term_months: int = Field(ge=1, le=600, description="1 to 60 months")
    repayment_method: RepaymentMethod
    conditions: str = Field(min_length=1, max_length=4000, description="The offer's conditions, in words")
    valid_until: AwareDatetime = Field(description="Until when the enterprise may accept (with a time zone)")

    def minor(self) -> int:
        try:
            return Money.of(self.amount, self.currency).minor
        except MoneyError as exc:
            raise InvalidInput(str(exc), [FieldProblem(("amount",), str(exc))]) from None


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=500)


class OfferOut(BaseModel):
    id: uuid.UUID
    ref: str
    demand_id: uuid.UUID
    demand_ref: str
    bank_org_id: uuid.UUID
    bank_name: str
    status: str
    amount: str
    amount_minor: int
    currency: str
    annual_rate: str  # fraction, as on loans
    annual_rate_percent: str
    fee_minor: int  # the disclosed one-off platform fee the loan will carry
    all_in_rate_percent: str  # what the legal cap was checked against
    term_months: int
    repayment_method: str
    conditions: str
    valid_until: datetime
    created_at: datetime
    decided_at: datetime | None
    loan_id: uuid.UUID | None


def offer_out(session: DB, row: BankOffer) -> OfferOut:
    demand = session.get(Demand, row.demand_id)
    bank = session.get(Organisation, row.bank_org_id)
    all_in = offers.all_in_rate(
        row.annual_rate, row.fee_minor, row.amount_minor, row.term_months, row.repayment_method
    )
    return OfferOut(
        id=row.id,
        ref=row.ref,
        demand_id=row.demand_id,
        demand_ref=demand.ref if demand else "",
        bank_org_id=row.bank_org_id,
        bank_name=bank.name if bank else "",
        status=row.status,
        amount=_major(row.amount_minor, row.currency),
        amount_minor=row.amount_minor,
        currency=row.currency,
        annual_rate=str(row.annual_rate),
        annual_rate_percent=_percent(row.annual_rate),
        fee_minor=row.fee_minor,
        all_in_rate_percent=_percent(all_in),
        term_months=row.term_months,
        repayment_method=row.repayment_method,
        conditions=row.conditions,
        valid_until=row.valid_until,
        created_at=row.created_at,
        decided_at=row.decided_at,
        loan_id=row.loan_id,
    )


class OfferableDemandOut(BaseModel):
    id: uuid.UUID
    ref: str
    enterprise_name: str
    title: str
    purpose: str
    amount: str
    amount_minor: int
    min_funding_minor: int | None
    currency: str
    term_months: int
    repayment_method: str
    max_annual_rate: Decimal  # percent, as the enterprise stated it
    listed_at: datetime | None
    addressed_to_you: bool  # the enterprise named your bank (else: open to every admitted bank)
    your_open_offer_id: uuid.UUID | None


def offerable_out(session: DB, ctx: Context, demand: Demand) -> OfferableDemandOut:
    enterprise = session.get(Organisation, demand.organisation_id)
    bank_id = ctx.actor.organisation_id
    assert bank_id is not None
    mine = offers.open_offer_of(session, demand.id, bank_id)
    return OfferableDemandOut(
        id=demand.id,
        ref=demand.ref,
        enterprise_name=enterprise.name if enterprise else "",
        title=demand.title,
        purpose=demand.purpose,
        amount=_major(demand.amount_minor, demand.currency),
        amount_minor=demand.amount_minor,
        min_funding_minor=demand.min_funding_minor,
        currency=demand.currency,
        term_months=demand.term_months,
        repayment_method=demand.repayment_method,
        max_annual_rate=demand.max_annual_rate,
        listed_at=demand.listed_at,
        addressed_to_you=str(bank_id) in offers.addressed_banks(demand),
        your_open_offer_id=mine.id if mine else None,
    )


@router.get(
    "/bank-loan-demands", operation_id="list_offerable_demands", response_model=list[OfferableDemandOut]
)
def list_offerable_demands(
    session: DB, ctx: ApiCtx, limit: int = Query(100, ge=1, le=500)
) -> list[OfferableDemandOut]:
    """Banks: the listed bank-loan demands open to your offers (addressed to you, or to no bank)."""
    return [offerable_out(session, ctx, d) for d in offers.offerable_demands(session, ctx=ctx, limit=limit)]


@router.post("/offers", operation_id="create_offer", response_model=OfferOut, status_code=201)
def create_offer(session: DB, ctx: ApiCtx, settings: SettingsDep, body: OfferIn) -> OfferOut:
    """An admitted bank offers a loan: at most the amount asked (at least the stated minimum), at a
    rate within the enterprise's maximum and, fee included, the legal cap; one open offer per demand."""
    row = offers.create_offer(
        session,
        ctx=ctx,
        settings=settings,
        req=offers.OfferRequest(
            demand_id=body.demand_id,
            amount=body.minor(),
            currency=body.currency,
            annual_rate=(body.annual_rate_percent / 100).quantize(Decimal("0.000001")),
            term_months=body.term_months,
            repayment_method=body.repayment_method.value,
            conditions=body.conditions,
            valid_until=body.valid_until,
        ),
    )
    return offer_out(session, row)


@router.get("/offers", operation_id="list_offers", response_model=list[OfferOut])
def list_offers(
    session: DB,
    ctx: ApiCtx,
    demand_id: uuid.UUID | None = None,
    status: OfferStatus | None = None,
    limit: int = Query(100, ge=1, le=500),
) -> list[OfferOut]:
    """A bank its own offers; an enterprise the offers on its demands; regulators and the operator all."""
    rows = offers.list_offers(session, ctx=ctx, demand_id=demand_id, status=status, limit=limit)
    return [offer_out(session, r) for r in rows]


@router.get("/offers/{offer_id}", operation_id="read_offer", response_model=OfferOut)
def read_offer(session: DB, ctx: ApiCtx, offer_id: uuid.UUID) -> OfferOut:
    return offer_out(session, offers.visible_offer(session, ctx=ctx, offer_id=offer_id))


@router.post("/offers/{offer_id}/withdraw", operation_id="withdraw_offer", response_model=OfferOut)
def withdraw_offer(session: DB, ctx: ApiCtx, offer_id: uuid.UUID, body: ReasonIn) -> OfferOut:
    """The bank withdraws its open offer."""
    return offer_out(session, offers.withdraw_offer(session, ctx=ctx, offer_id=offer_id, reason=body.reason))


@router.post("/offers/{offer_id}/decline", operation_id="decline_offer", response_model=OfferOut)
def decline_offer(session: DB, ctx: ApiCtx, offer_id: uuid.UUID, body: ReasonIn) -> OfferOut:
    """The enterprise declines an open offer on its demand; the bank is told the reason."""
    return offer_out(session, offers.decline_offer(session, ctx=ctx, offer_id=offer_id, reason=body.reason))


@router.post("/offers/{offer_id}/accept", operation_id="accept_offer", response_model=OfferOut)
def accept_offer(
    session: DB,
    ctx: ApiCtx,
    settings: SettingsDep,
    offer_id: uuid.UUID,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """The enterprise accepts an open offer: the bank's money moves to its payout account in escrow,
    the loan is booked and the demand funded. Then both accept the agreement (accept_loan_agreement)
    and the custodian pays out."""

    offers.require_decidable(session, ctx=ctx, offer_id=offer_id)

    def run() -> tuple[int, dict[str, Any]]:
        row = offers.accept_offer(session, ctx=ctx, settings=settings, offer_id=offer_id)
        return 200, offer_out(session, row).model_dump(mode="json")

    status, payload, replayed = idempotency.run_once(
        session,
        ctx=ctx,
        key=idempotency_key,
        operation="accept_offer",
        request={"offer_id": str(offer_id)},
        command=run,
    )
    return JSONResponse(
        payload, status_code=status, headers={"Idempotent-Replayed": "true" if replayed else "false"}
    )
