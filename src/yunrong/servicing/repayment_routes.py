"""JSON API of repayments: the borrower repays (scheduled, early in full or in part), previews an
early repayment's new schedule before confirming, and the loan's parties list its repayments."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from yunrong.deps import DB, ApiCtx, SettingsDep
from yunrong.investing.tables import Loan
from yunrong.kit.errors import FieldProblem, InvalidInput
from yunrong.kit.money import Money, MoneyError
from yunrong.ledger import idempotency
from yunrong.servicing import repayments
from yunrong.servicing.allocation import EarlyOption, Kind, Plan
from yunrong.servicing.tables import Repayment

router = APIRouter(prefix="/api/v1", tags=["servicing"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Unique per request; a retry with the same key returns the first result",
    ),
]


class RepaymentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: Decimal = Field(gt=0, max_digits=16, decimal_places=2, description="Major units, e.g. 5000.00")
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$", description="The loan's (default)")
    kind: Kind = Kind.SCHEDULED
    early_option: EarlyOption | None = Field(
        default=None, description="For early_partial: shorter_term or smaller_instalment"
    )
    refund_overpayment: bool = Field(
        default=False, description="Refund what goes beyond everything due instead of holding it"
    )


class PreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: Decimal = Field(gt=0, max_digits=16, decimal_places=2)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    early_option: EarlyOption


class RepaymentOut(BaseModel):
    id: uuid.UUID
    ref: str
    loan_id: uuid.UUID
    amount: str
    amount_minor: int
    currency: str
    kind: str
    early_option: str | None
    status: str
    instruction_id: uuid.UUID | None
    allocation: dict[str, Any]
    created_at: datetime
    value_date: date | None
    allocated_at: datetime | None


class PreviewRow(BaseModel):
    number: int
    period_start: date
    due_date: date
    principal_due_minor: int
    interest_due_minor: int
    payment_minor: int
    status: str


class PreviewOut(BaseModel):
    loan_id: uuid.UUID
    value_date: date
    amount_minor: int
    held_used_minor: int
    payoff_minor: int  # what closes the loan today
    interest_to_date_minor: int
    allocation: dict[str, Any]
    principal_after_minor: int
    instalment_minor: int  # the first new instalment
    maturity_date: date
    instalments: list[PreviewRow]


def repayment_out(row: Repayment) -> RepaymentOut:
    return RepaymentOut(
        id=row.id,
        ref=row.ref,
        loan_id=row.loan_id,
        amount=str(Money(row.amount_minor, row.currency).decimal),
        amount_minor=row.amount_minor,
        currency=row.currency,
        kind=row.kind,
        early_option=row.early_option,
        status=row.status,
        instruction_id=row.instruction_id,
        allocation=row.allocation,
        created_at=row.created_at,
        value_date=row.value_date,
        allocated_at=row.allocated_at,
    )


def _minor(amount: Decimal, currency: str | None, loan: Loan) -> int:
    if currency is not None and currency != loan.currency:
        raise InvalidInput(
            f"the loan is in {loan.currency} / 该借款币种为 {loan.currency}",
            [FieldProblem(("currency",), f"must be {loan.currency}")],
        )
    try:
        return Money.of(amount, loan.currency).minor
    except MoneyError as exc:
        raise InvalidInput(str(exc), [FieldProblem(("amount",), str(exc))]) from None


@router.post(
    "/loans/{loan_id}/repayments",
    operation_id="create_repayment",
    response_model=RepaymentOut,
    status_code=202,
)
def create_repayment(
    session: DB,
    ctx: ApiCtx,
    settings: SettingsDep,
    loan_id: uuid.UUID,
    body: RepaymentIn,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """The borrower repays from its own verified account into the loan's collection account. The
    custodian collects it; when it confirms, the money is allocated (fees, penalty, interest,
    principal, oldest instalment first) and distributed to the note holders."""
    loan = repayments.repayable_loan(session, ctx=ctx, loan_id=loan_id)  # 403/404 before anything
    amount = _minor(body.amount, body.currency, loan)

    def run() -> tuple[int, dict[str, Any]]:
        row = repayments.create_repayment(
            session,
            ctx=ctx,
            loan_id=loan_id,
            amount=amount,
            kind=body.kind,
            early_option=body.early_option,
            refund_overpayment=body.refund_overpayment,
            settings=settings,
        )
        return 202, repayment_out(row).model_dump(mode="json")

    status, payload, replayed = idempotency.run_once(
        session,
        ctx=ctx,
        key=idempotency_key,
        operation="create_repayment",
        request={"loan_id": str(loan_id), **body.model_dump(mode="json")},
        command=run,
    )
    return JSONResponse(
        payload, status_code=status, headers={"Idempotent-Replayed": "true" if replayed else "false"}
    )


@router.get("/loans/{loan_id}/repayments", operation_id="list_repayments", response_model=list[RepaymentOut])
def list_repayments(session: DB, ctx: ApiCtx, loan_id: uuid.UUID) -> list[RepaymentOut]:
    """The loan's repayments, newest first, with how each was allocated."""
    return [repayment_out(r) for r in repayments.list_repayments(session, ctx=ctx, loan_id=loan_id)]


def preview_out(loan_id: uuid.UUID, amount: int, plan: Plan) -> PreviewOut:
    new = [r for r in plan.rows if r.status == "scheduled"]
    return PreviewOut(
        loan_id=loan_id,
        value_date=plan.value_date,
        amount_minor=amount,
        held_used_minor=plan.money - amount,
        payoff_minor=plan.payoff,
        interest_to_date_minor=plan.interest_to_date,
        allocation=plan.allocation.as_dict(),
        principal_after_minor=plan.principal_after,
        instalment_minor=(new[0].principal_due + new[0].interest_due) if new else 0,
        maturity_date=plan.rows[-1].due_date,
        instalments=[
            PreviewRow(
                number=r.number,
                period_start=r.period_start,
                due_date=r.due_date,
                principal_due_minor=r.principal_due,
                interest_due_minor=r.interest_due,
                payment_minor=r.principal_due + r.interest_due,
                status=r.status,
            )
            for r in plan.rows
        ],
    )


@router.post(
    "/loans/{loan_id}/repayments/preview", operation_id="preview_repayment", response_model=PreviewOut
)
def preview_repayment(
    session: DB, ctx: ApiCtx, settings: SettingsDep, loan_id: uuid.UUID, body: PreviewIn
) -> PreviewOut:
    """What an early partial repayment of this amount today would do: the new schedule (nothing is
    written), the payoff that would close the loan instead, and the interest to date."""
    loan = repayments.previewable_loan(session, ctx=ctx, loan_id=loan_id)
    amount = _minor(body.amount, body.currency, loan)
    plan = repayments.preview_early_repayment(
        session, ctx, loan_id, amount, body.early_option, settings=settings
    )
    return preview_out(loan_id, amount, plan)
