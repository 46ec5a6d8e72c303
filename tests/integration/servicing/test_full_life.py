"""A loan's full life with the real end of day: paid out, the first instalment paid on time, the
second paid ten days late with penalty, then repaid early in full; every ledger balance asserted
along the way, and the ledger verifies at the end (`yunrong ledger verify`)."""

from __future__ import annotations

from datetime import date, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import bearer
from tests.integration.investing.conftest import SME, Drain
from tests.integration.investing.conftest import drain as drain
from tests.integration.investing.conftest import settings as settings
from tests.integration.investing.conftest import verified as verified
from tests.integration.servicing.test_repayments import Life
from yunrong.config import Settings
from yunrong.custody.tables import Instruction
from yunrong.identity.model import Actor, Context
from yunrong.investing.tables import Loan
from yunrong.kit.clock import FrozenClock
from yunrong.ledger.verify import first_violation
from yunrong.servicing import eod
from yunrong.servicing.tables import DailyAccrual, Distribution


def _close_through(life: Life, last: date) -> None:
    """Run the end of day for every date up to ``last`` (moving the clock there first)."""
    ctx = Context(actor=Actor.system("eod"), clock=life.clock, request_id="full-life")
    life.advance_to(last)
    with life.factory() as session:
        day = eod.next_date(session)
    day = day or life.servicing().start_date  # the first run ever starts at the loan's start
    while day <= last:
        result = eod.run_eod(
            life.factory, business_date=day, settings=life.settings, clock=life.clock, ctx=ctx
        )
        assert result.status == "closed"
        day += timedelta(days=1)


def test_a_loan_from_payout_to_early_repayment_with_one_late_instalment(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    verified: None,
    drain: Drain,
) -> None:
    life = Life(client, factory, settings, clock, drain, tokens)
    deposits = 20_000_000 + 50_000_000
    assert life.classes()["loan_book"] == life.classes()["investor_claims"] == 30_000_000

    # Instalment 1, on time: by the eve of its due date the end of day has accrued exactly its
    # interest; it is paid on the day, so that night's end of day finds nothing overdue.
    first, second = life.rows()[0], life.rows()[1]
    _close_through(life, first.due_date - timedelta(days=1))
    s = life.servicing()
    assert s.interest_accrued == first.interest_due
    assert life.classes()["loan_book"] == 30_000_000 + first.interest_due
    life.advance_to(first.due_date)
    paid_1 = life.repaid(first.principal_due + first.interest_due)
    assert paid_1["allocation"]["principal"] == first.principal_due
    assert life.rows()[0].status == "paid"
    _close_through(life, first.due_date)
    s = life.servicing()
    assert (s.days_past_due, s.penalty_accrued, s.state) == (0, 0, "performing")
    c = life.classes()
    assert c["loan_book"] == c["investor_claims"] == 30_000_000 - first.principal_due + s.interest_accrued
    assert c.get("loan_collection", 0) == 0

    # Instalment 2, ten days late: days past due, the 1-30 bucket, penalty on the overdue amount.
    _close_through(life, second.due_date + timedelta(days=10))
    s = life.servicing()
    assert s.days_past_due == 10
    assert s.bucket == "1-30"
    assert s.state == "delinquent"
    assert s.penalty_accrued > 0
    late = second.principal_due + second.interest_due + s.penalty_accrued
    paid_2 = life.repaid(late)
    assert paid_2["allocation"]["penalty"] == s.penalty_accrued
    assert paid_2["allocation"]["principal"] == second.principal_due
    _close_through(life, life.today() + timedelta(days=1))  # that night: current again
    s = life.servicing()
    assert (s.days_past_due, s.bucket, s.state, s.penalty_accrued) == (0, "current", "performing", 0)

    # Early repayment in full: the payoff the preview quotes closes the loan.
    quote = client.post(
        f"/api/v1/loans/{life.loan_id}/repayments/preview",
        json={"amount": "1000.00", "early_option": "smaller_instalment"},
        headers=bearer(life.tokens[SME]),
    ).json()
    closing = life.repaid(quote["payoff_minor"], kind="early_full")
    assert closing["allocation"]["closed"] is True
    s = life.servicing()
    assert s.state == "closed"
    assert s.principal_outstanding == 0

    # Every balance: the borrower's debt is gone from the loan book, escrow holds exactly the
    # investors' money and the platform's fees, and nothing waits in the loan's collection account.
    c = life.classes()
    assert c["loan_book"] == c["investor_claims"] == 0
    assert c.get("loan_collection", 0) == 0
    assert c.get("enterprise_payout", 0) == 0
    assert c["escrow_cash"] == c["investor_available"] + c["platform_fee_income"]
    repaid = paid_1["amount_minor"] + paid_2["amount_minor"] + closing["amount_minor"]
    net, fees = _distributed(life)
    assert net + fees == repaid  # every fen repaid went to a note holder or to the disclosed fee
    assert c["escrow_cash"] == deposits - _paid_out(life) + repaid
    assert sum(life.available().values()) == deposits - 30_000_000 + net
    assert c["platform_fee_income"] == _loan_fee(life) + fees
    with factory() as session:
        assert first_violation(session) is None


def _accrued_on(life: Life, day: date) -> int:
    with life.factory() as session:
        return int(
            session.scalar(
                select(DailyAccrual.interest).where(
                    DailyAccrual.loan_id == life.loan_id, DailyAccrual.business_date == day
                )
            )
            or 0
        )


def _distributed(life: Life) -> tuple[int, int]:
    with life.factory() as session:
        net, fees = session.execute(
            select(func.sum(Distribution.net), func.sum(Distribution.service_fee)).where(
                Distribution.loan_id == life.loan_id
            )
        ).one()
        return int(net or 0), int(fees or 0)


def _loan_fee(life: Life) -> int:
    with life.factory() as session:
        loan = session.get(Loan, life.loan_id)
        assert loan is not None
        return loan.fee_minor


def _paid_out(life: Life) -> int:
    """What the custodian paid the enterprise: the loan less its disclosed fee."""
    with life.factory() as session:
        loan = session.get(Loan, life.loan_id)
        assert loan is not None
        payout = session.get(Instruction, loan.payout_instruction_id)
        assert payout is not None
        assert payout.status == "confirmed"
        return payout.amount
