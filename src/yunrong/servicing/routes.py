"""JSON API of step 7: the loan's schedule (more servicing operations join it)."""

from __future__ import annotations

import uuid
from datetime import date

from fastapi import APIRouter
from pydantic import BaseModel

from yunrong.deps import DB, ApiCtx
from yunrong.kit.money import Money
from yunrong.servicing import service

router = APIRouter(prefix="/api/v1", tags=["servicing"])


class InstalmentOut(BaseModel):
    number: int
    period_start: date
    due_date: date
    principal_due_minor: int
    interest_due_minor: int
    payment_due: str
    principal_paid_minor: int
    interest_paid_minor: int
    penalty_paid_minor: int
    status: str
    paid_on: date | None


class ScheduleOut(BaseModel):
    loan_id: uuid.UUID
    loan_ref: str
    currency: str
    principal_minor: int
    annual_rate: str
    apr: str | None
    method: str
    state: str | None
    day_count: str | None
    schedule_version: int | None
    principal_outstanding_minor: int | None
    interest_accrued_minor: int | None
    penalty_accrued_minor: int | None
    days_past_due: int | None
    bucket: str | None
    next_due_date: date | None
    instalments: list[InstalmentOut]


@router.get("/loans/{loan_id}/schedule", operation_id="read_loan_schedule", response_model=ScheduleOut)
def read_loan_schedule(session: DB, ctx: ApiCtx, loan_id: uuid.UUID) -> ScheduleOut:
    """The loan's current schedule (exact to the fen), what was paid and what is due and overdue."""
    view = service.read_schedule(session, ctx=ctx, loan_id=loan_id)
    loan, s = view.loan, view.servicing
    return ScheduleOut(
        loan_id=loan.id,
        loan_ref=loan.ref,
        currency=loan.currency,
        principal_minor=loan.principal_minor,
        annual_rate=str(loan.annual_rate),
        apr=None if loan.apr is None else str(loan.apr),
        method=loan.repayment_method,
        state=s.state if s else None,
        day_count=s.day_count if s else None,
        schedule_version=s.schedule_version if s else None,
        principal_outstanding_minor=s.principal_outstanding if s else None,
        interest_accrued_minor=s.interest_accrued if s else None,
        penalty_accrued_minor=s.penalty_accrued if s else None,
        days_past_due=s.days_past_due if s else None,
        bucket=s.bucket if s else None,
        next_due_date=s.next_due_date if s else None,
        instalments=[
            InstalmentOut(
                number=i.number,
                period_start=i.period_start,
                due_date=i.due_date,
                principal_due_minor=i.principal_due,
                interest_due_minor=i.interest_due,
                payment_due=str(Money(i.principal_due + i.interest_due, loan.currency).decimal),
                principal_paid_minor=i.principal_paid,
                interest_paid_minor=i.interest_paid,
                penalty_paid_minor=i.penalty_paid,
                status=i.status,
                paid_on=i.paid_on,
            )
            for i in view.instalments
        ],
    )
