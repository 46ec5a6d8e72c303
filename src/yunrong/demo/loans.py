"""A demo loan a month into its life: `yunrong demo loan` (run by `make run` after the seed).

The demo world's investors paid money in, but the simulated custodian confirms deposits only when
the worker runs. This command lets the simulated bank answer in-process (the same signed callbacks,
its own book kept), then takes one P2P demand of the demo enterprise through steps 1-6 exactly as
users would (service orders worked by the simulated agencies, the champion model's decision, the
funding round, the investors' commitments, the agreement accepted by the enterprise, the payout)
and moves the loan's start one month back, so that its first instalment is due today: the
enterprise can repay it in the browser, and the worker's end of day catches the month up.
Running it again does nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from yunrong.config import Settings
from yunrong.db import make_engine, make_sessionmaker, unit_of_work
from yunrong.demands import service as demands
from yunrong.demands.schemas import DemandIn
from yunrong.demands.tables import Demand
from yunrong.demo.demands import _ctx_of, _uses, _work
from yunrong.demo.seed import INSTITUTION, PERSON, SME
from yunrong.identity.model import Actor, Context
from yunrong.investing import loans
from yunrong.investing import service as investing
from yunrong.investing.tables import Loan
from yunrong.kit.clock import Clock, SystemClock, business_date
from yunrong.kit.errors import Conflict
from yunrong.messaging.tables import OutboxEvent
from yunrong.messaging.worker import deliver_due
from yunrong.servicing import service as servicing
from yunrong.servicing.daycount import DayCount, add_months
from yunrong.servicing.tables import Instalment, LoanServicing

PROJECT_KEY = "demo-orchard-cold-store"
BODY = {
    "product": "p2p_loan",
    "title": "Cold store for the orchard cooperative",
    "amount": "100000.00",
    "term_months": 24,
    "repayment_method": "equal_instalment",
    "max_annual_rate": "11.5000",
    "purpose": "A 300-tonne cold store so that pears are sold in spring, not at harvest prices",
    "use_of_funds": _uses(("Cold store panels and doors", "70000.00"), ("Refrigeration units", "30000.00")),
    "project_key": PROJECT_KEY,
}
TICKETS = ((PERSON.email, 4_000_000), (INSTITUTION.email, 6_000_000))


@dataclass(frozen=True)
class DemoLoan:
    ref: str
    created: bool


def _settle_at_the_bank(factory: sessionmaker[Session], settings: Settings, clock: Clock) -> None:
    """Let the simulated bank answer everything now, in-process (the same signed callbacks)."""
    direct = settings.model_copy(
        update={
            "simbank_callback_mode": "direct",
            "simbank_failure_rate": 0.0,
            "simbank_duplicate_rate": 0.0,
            "simbank_max_delay_seconds": 0.0,
        }
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if deliver_due(factory, settings=direct, clock=clock, worker_id="demo-loan") > 0:
            continue
        with factory() as session:  # the bank answers after half a second or so: wait for it
            waiting = session.scalar(
                select(func.count())
                .select_from(OutboxEvent)
                .where(OutboxEvent.status == "pending", OutboxEvent.topic.like("%bank%"))
            )
        if not waiting:
            return
        time.sleep(0.3)


def _existing(session: Session) -> Loan | None:
    return session.scalar(
        select(Loan).join(Demand, Demand.id == Loan.demand_id).where(Demand.project_key == PROJECT_KEY)
    )


def seed_demo_loan(settings: Settings, clock: Clock | None = None) -> DemoLoan:
    clock = clock or SystemClock()
    engine = make_engine(settings.database_url)
    try:
        factory = make_sessionmaker(engine)
        ctx = Context(actor=Actor.system("demo-loan"), clock=clock, request_id="demo-loan")
        with factory() as session:
            found = _existing(session)
            if found is not None:
                return DemoLoan(found.ref, created=False)
        _settle_at_the_bank(factory, settings, clock)  # the investors' deposits arrive
        with unit_of_work(factory) as session:
            sme = _ctx_of(session, SME.email, ctx)
            demand = demands.create_demand(
                session, ctx=sme, settings=settings, data=DemandIn.model_validate(BODY)
            )
            demands.submit_demand(session, ctx=sme, settings=settings, demand_id=demand.id)
            _work(session, ctx=ctx, settings=settings, demand=demand, stage="listed")
            funding = investing.round_of(session, demand.id)
            if funding is None:
                raise Conflict("the demo demand was not priced within the cap, so no funding round opened")
            for email, amount in TICKETS:
                investing.create_commitment(
                    session,
                    ctx=_ctx_of(session, email, ctx),
                    settings=settings,
                    req=investing.CommitRequest(
                        demand_id=demand.id, amount=amount, currency="CNY", accept_agreement=True
                    ),
                )
            session.refresh(funding)
            assert funding.loan_id is not None, "the demo round did not fund"
            loan = session.get(Loan, funding.loan_id)
            assert loan is not None
            loans.accept_agreement(
                session,
                ctx=sme,
                settings=settings,
                loan_id=loan.id,
                sha256=loans.agreement_of(session, loan.id).sha256,
            )
            ref = loan.ref
        _settle_at_the_bank(factory, settings, clock)  # the custodian pays the enterprise
        with unit_of_work(factory) as session:
            loan = _existing(session)
            assert loan is not None
            assert loan.status == "active", "the custodian did not pay the loan out"
            _a_month_ago(session, loan, settings, clock)
        return DemoLoan(ref, created=True)
    finally:
        engine.dispose()


def _a_month_ago(session: Session, loan: Loan, settings: Settings, clock: Clock) -> None:
    """Start the loan one month back, its schedule written again from there by the same generator:
    the first instalment is due today, and the end of day catches up the month's interest."""
    s = session.get(LoanServicing, loan.id)
    assert s is not None
    today = business_date(clock.now(), settings.timezone)
    start = add_months(today, -1)
    schedule = servicing.schedule_for(loan, start, DayCount(s.day_count))
    session.execute(delete(Instalment).where(Instalment.loan_id == loan.id))
    servicing.write_instalments(session, loan.id, 1, schedule)
    s.start_date = s.last_accrual_date = start
    s.maturity_date = schedule.instalments[-1].due_date
    s.next_due_date = schedule.instalments[0].due_date
