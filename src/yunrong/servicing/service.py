"""Step 7's entry: a paid-out loan starts being serviced, and parties read its schedule.

When the custodian confirms a loan's payout, :func:`activate` writes the schedule (version 1) from
the exact generator in :mod:`yunrong.servicing.schedules`, opens the loan's servicing row, and books
the principal on the loan book against the note holders' claims. Everything after that (end of day,
repayments, restructuring, claims, write-off) works on these rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from yunrong.config import Settings
from yunrong.custody import accounts
from yunrong.identity.model import Context
from yunrong.investing.tables import Loan
from yunrong.kit.clock import business_date
from yunrong.ledger import service as ledger
from yunrong.ledger.model import transfer
from yunrong.servicing.daycount import DayCount
from yunrong.servicing.rates import loan_apr
from yunrong.servicing.schedules import Frequency, Schedule, build_schedule
from yunrong.servicing.tables import Instalment, LoanServicing
from yunrong.supervision import rates as lpr_rates
from yunrong.supervision import service as audit

#: Penalty interest on overdue amounts: the contract rate plus this share of it (the agreement's
#: 1.5 times), never above the all-in cap of the policy profile at the contract date.
PENALTY_SURCHARGE = Decimal("0.5")


def penalty_rate_bp(session: Session, settings: Settings, annual_rate: Decimal, on: date) -> int:
    """The penalty rate in basis points, capped so that it stays within the all-in cap."""
    wanted = annual_rate * (1 + PENALTY_SURCHARGE)
    try:
        cap = lpr_rates.cap_on(session, settings.policy, on)  # percent, or None
    except ValueError:  # the profile caps by the LPR but none is known yet: keep the contract's
        cap = None
    if cap is not None:
        wanted = min(wanted, cap / 100)
    return int((wanted * 10_000).to_integral_value())


def schedule_for(loan: Loan, start: date, day_count: DayCount = DayCount.ACT_365F) -> Schedule:
    return build_schedule(
        principal=loan.principal_minor,
        annual_rate=loan.annual_rate,
        term_months=loan.term_months,
        method=loan.repayment_method,
        start_date=start,
        frequency=Frequency.MONTHLY,
        day_count=day_count,
    )


def write_instalments(session: Session, loan_id: uuid.UUID, version: int, schedule: Schedule) -> None:
    for i in schedule.instalments:
        session.add(
            Instalment(
                loan_id=loan_id,
                version=version,
                number=i.number,
                period_start=i.period_start,
                due_date=i.due_date,
                principal_due=i.principal,
                interest_due=i.interest,
                principal_paid=0,
                interest_paid=0,
                penalty_paid=0,
                status="scheduled",
            )
        )
    session.flush()


def activate(session: Session, *, ctx: Context, loan: Loan, settings: Settings) -> LoanServicing:
    """Start servicing a loan the custodian has paid out (idempotent)."""
    existing = session.get(LoanServicing, loan.id)
    if existing is not None:
        return existing
    start = business_date(loan.disbursed_at or ctx.now(), settings.timezone)
    schedule = schedule_for(loan, start)
    write_instalments(session, loan.id, 1, schedule)
    row = LoanServicing(
        loan_id=loan.id,
        currency=loan.currency,
        annual_rate_bp=int((loan.annual_rate * 10_000).to_integral_value()),
        penalty_rate_bp=penalty_rate_bp(session, settings, loan.annual_rate, start),
        day_count=schedule.day_count.value,
        frequency=schedule.frequency.value,
        method=loan.repayment_method,
        start_date=start,
        maturity_date=schedule.instalments[-1].due_date,
        schedule_version=1,
        principal_outstanding=loan.principal_minor,
        interest_accrued=0,
        penalty_accrued=0,
        overpayment=0,
        days_past_due=0,
        bucket="current",
        ifrs9_stage=1,
        state="performing",
        last_accrual_date=start,
        next_due_date=schedule.instalments[0].due_date,
        written_off_minor=0,
        updated_at=ctx.now(),
    )
    session.add(row)
    session.flush()
    ledger.post_entry(
        session,
        ctx=ctx,
        legs=transfer(  # debit the loan book (asset), credit the note holders' claims (liability)
            accounts.loan_book(session, ctx, loan.currency).id,
            accounts.investor_claims(session, ctx, loan.currency).id,
            loan.principal_minor,
            loan.currency,
        ),
        kind="loan_booked",
        description=f"principal of loan {loan.ref} on the loan book",
        external_ref=loan.ref,
    )
    audit.record(
        session,
        ctx=ctx,
        action="loan.servicing_started",
        object_type="loan",
        object_id=loan.id,
        after={
            "start": start.isoformat(),
            "maturity": row.maturity_date.isoformat(),
            "instalments": len(schedule.instalments),
            "apr": str(loan_apr(schedule, loan.fee_minor)),
        },
    )
    return row


@dataclass(frozen=True)
class ScheduleView:
    loan: Loan
    servicing: LoanServicing | None
    instalments: Sequence[Instalment]


def current_instalments(session: Session, loan_id: uuid.UUID, version: int) -> Sequence[Instalment]:
    return session.scalars(
        select(Instalment)
        .where(Instalment.loan_id == loan_id, Instalment.version == version)
        .order_by(Instalment.number)
    ).all()


def read_schedule(session: Session, *, ctx: Context, loan_id: uuid.UUID) -> ScheduleView:
    """The loan's current schedule with what was paid, for whoever may see the loan."""
    from yunrong.investing.loans import visible_loan

    loan = visible_loan(session, ctx=ctx, loan_id=loan_id)
    servicing = session.get(LoanServicing, loan.id)
    if servicing is None:
        return ScheduleView(loan, None, [])
    return ScheduleView(loan, servicing, current_instalments(session, loan.id, servicing.schedule_version))
