"""1,000 commitments at once on PostgreSQL: the round's row lock must keep a listing from ever being
overfunded, refused commitments must leave no trace, and a retried request must not commit twice.

Each request runs as the API runs it — ``idempotency.run_once`` around
``investing.create_commitment`` in its own session and transaction — from 48 threads on real
PostgreSQL connections. The app does not retry on serialization failures or deadlocks (READ
COMMITTED with row locks; none are expected), so neither does this test: any database error fails
it with its stack. SQLite serialises writers with BEGIN IMMEDIATE, so the race cannot happen there.
"""

from __future__ import annotations

import random
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.integration.investing.conftest import Drain, list_demand
from yunrong.config import Settings
from yunrong.custody import accounts
from yunrong.custody import service as custody
from yunrong.db import make_engine, make_sessionmaker, unit_of_work
from yunrong.demo.seed import REGULATOR_1, REGULATOR_2
from yunrong.identity import repository as identity_repo
from yunrong.identity.model import Actor, Context, InvestorKind
from yunrong.identity.service import actor_for
from yunrong.identity.tables import Organisation
from yunrong.investing import service as investing
from yunrong.investing.model import CommitmentRefused, ListingClosed, RoundStatus
from yunrong.investing.tables import Commitment, FundingRound, Loan, Note
from yunrong.kit.clock import FrozenClock
from yunrong.ledger import idempotency
from yunrong.ledger import service as ledger
from yunrong.ledger.tables import Hold, IdempotencyKey, JournalEntry
from yunrong.ledger.verify import first_violation
from yunrong.parties import codes
from yunrong.parties import service as parties
from yunrong.parties.model import FundsSource, InstitutionType, ReviewAction
from yunrong.parties.schemas import ApplicantIn, BankAccountIn, InvestorIn, InvestorRegistrationIn
from yunrong.parties.tables import BankAccount, Investor
from yunrong.supervision.tables import AuditRecord

INVESTORS = 20
BALANCE = 15_000_000  # minor units each: more than any investor can be asked for below
TARGET = 100_000_000  # CNY 1,000,000.00
BIG_REQUESTS = 900  # tickets of CNY 1,000–2,500: together far more than the target
SMALL_REQUESTS = 100  # tickets of exactly the minimum, submitted last, so that the round fills
REPEATS = 100  # further requests that reuse an earlier request's key and body
THREADS = 48
# What a refusal may say once the round is nearly or fully committed; anything else fails the test.
# ("listing-closed": the round funded and closed; the service raises ListingClosed, a 409.)
EXPECTED_RULES = {"over-remaining", "fully-committed", "listing-closed"}


def _ctx_of(session: Session, email: str, clock: FrozenClock) -> Context:
    user = identity_repo.user_by_email(session, email)
    assert user is not None
    org = identity_repo.organisation_by_id(session, user.organisation_id)
    assert org is not None
    return Context(actor=actor_for(user, org, "test"), clock=clock, request_id=f"test-{email}")


def admitted_investors(
    factory: sessionmaker[Session], settings: Settings, system_ctx: Context, clock: FrozenClock, n: int
) -> list[Context]:
    """``n`` institutional investors, registered, admitted by two regulators, their bank accounts
    verified and their risk level C4; returns their contexts."""
    emails = [f"concurrency-{i:02d}@investors.example.cn" for i in range(n)]
    with unit_of_work(factory) as session:
        for i, email in enumerate(emails):
            registration = parties.register_investor(
                session,
                ctx=system_ctx,
                settings=settings,
                data=InvestorRegistrationIn(
                    investor=InvestorIn(
                        kind=InvestorKind.INSTITUTION,
                        name=f"Concurrency Test Capital {i:02d} 并发测试资本",
                        institution_type=InstitutionType.SMALL_LOAN_COMPANY,
                        credit_code=codes.make_uscc(f"91321100MA1{i:06d}"),
                        contact_phone="+86 511 8500 0000",
                        net_worth=Decimal("300000000.00"),
                        annual_income=Decimal("42000000.00"),
                        funds_sources=[FundsSource.OWN_CAPITAL],
                    ),
                    applicant=ApplicantIn(
                        email=email, name=f"Tester {i:02d}", password="concurrency-pass-2026"
                    ),
                    bank_account=BankAccountIn(
                        bank_name="Bank of Jiangsu 江苏银行",
                        account_name=f"Concurrency Test Capital {i:02d}",
                        account_number=f"321001880{i:07d}",
                    ),
                ),
            )
            for regulator in (REGULATOR_1, REGULATOR_2):
                parties.decide(
                    session,
                    ctx=_ctx_of(session, regulator.email, clock),
                    settings=settings,
                    qualification_id=registration.qualification.id,
                    decision=ReviewAction.APPROVE,
                    reason="test: admitted",
                )
        contexts = [_ctx_of(session, email, clock) for email in emails]
        orgs = [c.actor.organisation_id for c in contexts]
        for account in session.scalars(select(BankAccount).where(BankAccount.organisation_id.in_(orgs))):
            account.verified_at = system_ctx.now()
            account.verified_by = "test"
        for investor in session.scalars(select(Investor).where(Investor.organisation_id.in_(orgs))):
            investor.risk_level = "C4"
    return contexts


def fund(factory: sessionmaker[Session], contexts: list[Context], drain: Drain, amount: int) -> None:
    """Each investor pays ``amount`` in; the simulated bank confirms it through the outbox."""
    with unit_of_work(factory) as session:
        for ctx in contexts:
            bank_account = session.scalars(
                select(BankAccount).where(BankAccount.organisation_id == ctx.actor.organisation_id)
            ).one()
            custody.create_deposit(
                session, ctx=ctx, amount=amount, currency="CNY", bank_account_id=bank_account.id
            )
    drain()


@dataclass(frozen=True)
class Ask:
    investor: int
    amount: int
    key: str


@dataclass
class Outcome:
    ask: Ask
    status: str  # "created", "replayed" or "refused"
    commitment_id: uuid.UUID | None = None
    rule: str | None = None
    error: str | None = None


def _asks(rng: random.Random) -> list[Ask]:
    asks = [
        Ask(rng.randrange(INVESTORS), rng.randrange(100_000, 250_001, 10_000), f"big-{i}")
        for i in range(BIG_REQUESTS)
    ] + [Ask(i % INVESTORS, 10_000, f"small-{i}") for i in range(SMALL_REQUESTS)]
    # Retries: the same key and body again, a few places later, so that many overlap in time.
    for n, original in enumerate(rng.sample(asks[: BIG_REQUESTS - 50], REPEATS)):
        asks.insert(asks.index(original) + 1 + n % 5, original)
    return asks


def _commit_once(
    factory: sessionmaker[Session], settings: Settings, ctx: Context, demand_id: uuid.UUID, ask: Ask
) -> Outcome:
    """One request, exactly as POST /api/v1/commitments runs it (one transaction)."""
    request = {"demand_id": str(demand_id), "amount": str(Decimal(ask.amount) / 100), "currency": "CNY"}

    def command() -> tuple[int, dict[str, Any]]:
        row = investing.create_commitment(
            session,
            ctx=ctx,
            settings=settings,
            req=investing.CommitRequest(
                demand_id=demand_id, amount=ask.amount, currency="CNY", accept_agreement=True
            ),
        )
        return 201, {"id": str(row.id), "amount_minor": row.amount_minor}

    try:
        with unit_of_work(factory) as session:
            status, body, replayed = idempotency.run_once(
                session, ctx=ctx, key=ask.key, operation="create_commitment", request=request, command=command
            )
    except CommitmentRefused as exc:
        return Outcome(ask, "refused", rule=exc.problems[0].type)
    except ListingClosed as exc:
        return Outcome(ask, "refused", rule=exc.code)
    assert status == 201
    return Outcome(ask, "replayed" if replayed else "created", commitment_id=uuid.UUID(body["id"]))


def _fire(
    factory: sessionmaker[Session],
    settings: Settings,
    contexts: list[Context],
    demand_id: uuid.UUID,
    asks: list[Ask],
) -> list[Outcome]:
    start = threading.Barrier(THREADS)
    started: set[int] = set()
    guard = threading.Lock()

    def run(ask: Ask) -> Outcome:
        with guard:  # the first request of each thread waits until every thread is ready
            first = threading.get_ident() not in started
            started.add(threading.get_ident())
        if first:
            start.wait()
        try:
            return _commit_once(factory, settings, contexts[ask.investor], demand_id, ask)
        except Exception:  # a deadlock, a serialization failure, a 500: keep the stack for the report
            return Outcome(ask, "error", error=traceback.format_exc())

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        return list(pool.map(run, asks))


@pytest.fixture
def wide_factory(engine: Engine, db_url: str) -> Iterator[sessionmaker[Session]]:
    """A pool wide enough that every thread holds its own connection at once."""
    if engine.dialect.name != "postgresql":
        pytest.skip("real concurrent transactions: PostgreSQL only (SQLite serialises writers)")
    wide = make_engine(db_url, pool_size=THREADS, max_overflow=0)
    yield make_sessionmaker(wide)
    wide.dispose()


def test_a_thousand_concurrent_commitments_never_overfund(
    wide_factory: sessionmaker[Session],
    factory: sessionmaker[Session],
    client: TestClient,
    tokens: dict[str, str],
    settings: Settings,
    system_ctx: Context,
    clock: FrozenClock,
    verified: None,
    drain: Drain,
) -> None:
    assert settings.policy.reflection_days == 0  # so the round posts the moment it fills
    contexts = admitted_investors(factory, settings, system_ctx, clock, INVESTORS)
    fund(factory, contexts, drain, BALANCE)
    demand_id = list_demand(
        client,
        tokens,
        factory,
        settings,
        clock,
        amount="1000000.00",
        use_of_funds=[{"item": "Cold stores", "amount": "1000000.00"}],
    )
    with unit_of_work(factory) as session:
        funding = investing.round_of(session, demand_id)
        assert funding is not None
        assert (funding.target_minor, funding.min_ticket_minor) == (TARGET, 10_000)
        assert funding.max_ticket_minor >= 250_000

    asks = _asks(random.Random(20261126))
    assert len(asks) == BIG_REQUESTS + SMALL_REQUESTS + REPEATS
    assert sum(a.amount for a in {a.key: a for a in asks}.values()) > TARGET  # some must be refused
    began = time.perf_counter()
    outcomes = _fire(wide_factory, settings, contexts, demand_id, asks)
    wall = time.perf_counter() - began
    print(f"\n{len(asks)} concurrent commitments ({THREADS} threads) in {wall:.2f}s")

    errors = [o.error for o in outcomes if o.error]
    assert errors == [], f"{len(errors)} requests failed; the first:\n{errors[0]}"
    refused = [o for o in outcomes if o.status == "refused"]
    assert refused
    assert {o.rule for o in refused} <= EXPECTED_RULES, Counter(o.rule for o in refused)

    # Retries with the same key created nothing new: each key holds at most one commitment, and
    # every answer for a key that created one names that commitment.
    by_key: dict[str, set[uuid.UUID]] = {}
    for o in outcomes:
        if o.commitment_id is not None:
            by_key.setdefault(o.ask.key, set()).add(o.commitment_id)
    assert all(len(ids) == 1 for ids in by_key.values())
    created = [o for o in outcomes if o.status == "created"]
    assert len(created) == len(by_key) == len({o.commitment_id for o in created})
    assert any(o.status == "replayed" for o in outcomes)

    with unit_of_work(factory) as session:
        funding_row = session.scalars(select(FundingRound).where(FundingRound.demand_id == demand_id)).one()
        commitments = session.scalars(select(Commitment).where(Commitment.demand_id == demand_id)).all()
        live = [c for c in commitments if c.status in ("pending", "posted")]
        # Never overfunded, and the running total is exactly what is held.
        assert funding_row.committed_minor <= funding_row.target_minor
        assert funding_row.committed_minor == sum(c.amount_minor for c in live)
        assert funding_row.commitments == len(live) == len(commitments) == len(created)
        assert {c.id for c in commitments} == {o.commitment_id for o in created}
        assert session.scalar(
            select(func.count())
            .select_from(IdempotencyKey)
            .where(IdempotencyKey.operation == "create_commitment")
        ) == len(created)

        # Exactly the refused requests placed no hold: one hold per commitment, none without one,
        # and each investor's money is what was paid in less what was committed.
        payout_holds = session.scalars(
            select(Hold).where(
                Hold.id.in_(select(Commitment.hold_id)) | Hold.description.like("commitment to %")
            )
        ).all()
        assert sorted(h.id for h in payout_holds) == sorted(c.hold_id for c in commitments)
        holds = {h.id: h for h in payout_holds}
        for c in commitments:
            assert holds[c.hold_id].amount == c.amount_minor
        committed_by: Counter[uuid.UUID] = Counter()
        for c in live:
            committed_by[c.investor_org_id] += c.amount_minor
        for ctx in contexts:
            org = session.get(Organisation, ctx.actor.organisation_id)
            assert org is not None
            balance = ledger.balance(session, accounts.investor_available(session, ctx, org, "CNY").id)
            assert balance.available == BALANCE - committed_by[org.id]

        # The round filled exactly (the small tickets close any gap). A round of this many
        # commitments is closed by the worker's job, not by the request that filled it.
        assert funding_row.committed_minor == TARGET
        assert funding_row.commitments > investing.INLINE_CLOSE_LIMIT
        assert funding_row.status == RoundStatus.OPEN.value
    closer = Context(actor=Actor.system("funding"), clock=clock, request_id="close-rounds")
    with unit_of_work(factory) as session:
        assert investing.close_due_rounds(session, ctx=closer, settings=settings) == 1
    with unit_of_work(factory) as session:
        assert investing.close_due_rounds(session, ctx=closer, settings=settings) == 0  # exactly once

    # Every hold was posted exactly once into one entry, and the notes add up to the principal.
    with unit_of_work(factory) as session:
        funding_row = session.scalars(select(FundingRound).where(FundingRound.demand_id == demand_id)).one()
        commitments = session.scalars(select(Commitment).where(Commitment.demand_id == demand_id)).all()
        payout_holds = session.scalars(
            select(Hold).where(Hold.id.in_([c.hold_id for c in commitments]))
        ).all()
        assert funding_row.status == RoundStatus.FUNDED.value
        assert all(c.status == "posted" for c in commitments)
        assert all(h.status == "posted" and h.posted_amount == h.amount for h in payout_holds)
        entries = session.execute(
            select(JournalEntry.hold_id, func.count())
            .where(JournalEntry.hold_id.in_([h.id for h in payout_holds]))
            .group_by(JournalEntry.hold_id)
        ).all()
        assert len(entries) == len(payout_holds)
        assert all(n == 1 for _, n in entries)
        loan = session.get(Loan, funding_row.loan_id)
        assert loan is not None
        assert loan.principal_minor == TARGET
        notes = session.scalars(select(Note).where(Note.loan_id == loan.id)).all()
        assert sum(n.principal_minor for n in notes) == loan.principal_minor
        assert {n.investor_org_id: n.principal_minor for n in notes} == dict(committed_by)

        # The listing moved to "funding" once, not once per racing first commitment (each racer
        # that read the demand before the round's lock would otherwise move it again: one more
        # status event, audit record and notification to the enterprise each).
        moves = Counter(
            session.scalars(
                select(AuditRecord.action).where(
                    AuditRecord.object_id == str(demand_id), AuditRecord.action.like("demand.%")
                )
            ).all()
        )
        assert first_violation(session) is None
        assert moves["demand.funding"] == 1, moves
        assert moves["demand.funded"] == 1, moves
