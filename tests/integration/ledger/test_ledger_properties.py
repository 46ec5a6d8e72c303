"""The ledger as a state machine against a simple in-memory model, concurrency, and crash injection."""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from tests.integration.ledger.helpers import deposit, open_books, snapshot
from yunrong.db import unit_of_work
from yunrong.identity.model import Context
from yunrong.kit.clock import FrozenClock
from yunrong.ledger import service as ledger
from yunrong.ledger.model import HoldNotPending, HoldStatus, InsufficientFunds, transfer
from yunrong.ledger.verify import first_violation

INVESTORS = ("inv0", "inv1", "inv2")


@dataclass
class Model:
    """What the books should say: posted balance and pending outflow per investor, escrow cash."""

    posted: dict[str, int] = field(default_factory=lambda: dict.fromkeys(INVESTORS, 0))
    pending: dict[str, int] = field(default_factory=lambda: dict.fromkeys(INVESTORS, 0))
    escrow: int = 0
    holds: dict[uuid.UUID, tuple[str, int]] = field(default_factory=dict)
    deposits: list[tuple[uuid.UUID, str, int]] = field(default_factory=list)

    def available(self, who: str) -> int:
        return self.posted[who] - self.pending[who]


def test_ledger_state_machine(
    factory: sessionmaker[Session], system_ctx: Context, clock: FrozenClock
) -> None:
    """Random deposits, holds, posts (full and part), voids, expiries, withdrawals, transfers and
    reversals; after every step the books equal the model and every invariant holds."""

    class LedgerMachine(RuleBasedStateMachine):
        @initialize()
        def books(self) -> None:
            self.books = open_books(factory, system_ctx)
            self.model = Model()

        @rule(who=st.sampled_from(INVESTORS), amount=st.integers(min_value=1, max_value=10_000))
        def deposit(self, who: str, amount: int) -> None:
            with unit_of_work(factory) as session:
                entry = deposit(session, system_ctx, self.books, who, amount)
            self.model.posted[who] += amount
            self.model.escrow += amount
            self.model.deposits.append((entry, who, amount))

        @rule(
            who=st.sampled_from(INVESTORS),
            amount=st.integers(min_value=1, max_value=12_000),
            expires=st.booleans(),
        )
        def hold(self, who: str, amount: int, expires: bool) -> None:
            try:
                with unit_of_work(factory) as session:
                    hold = ledger.place_hold(
                        session,
                        ctx=system_ctx,
                        debit_account_id=self.books[who],
                        credit_account_id=self.books["escrow"],
                        amount=amount,
                        currency="CNY",
                        description="withdrawal",
                        expires_at=clock.now() + timedelta(minutes=30) if expires else None,
                    )
                    hold_id = hold.id
            except InsufficientFunds:
                assert amount > self.model.available(who)
                return
            assert amount <= self.model.available(who)
            self.model.pending[who] += amount
            self.model.holds[hold_id] = (who, amount)

        @precondition(lambda self: bool(self.model.holds))
        @rule(data=st.data(), part=st.booleans())
        def post(self, data: st.DataObject, part: bool) -> None:
            hold_id = data.draw(st.sampled_from(sorted(self.model.holds)))
            who, amount = self.model.holds.pop(hold_id)
            to_post = data.draw(st.integers(min_value=1, max_value=amount)) if part else amount
            with unit_of_work(factory) as session:
                ledger.post_hold(session, ctx=system_ctx, hold_id=hold_id, amount=to_post)
            self.model.pending[who] -= amount
            self.model.posted[who] -= to_post
            self.model.escrow -= to_post

        @precondition(lambda self: bool(self.model.holds))
        @rule(data=st.data())
        def void(self, data: st.DataObject) -> None:
            hold_id = data.draw(st.sampled_from(sorted(self.model.holds)))
            who, amount = self.model.holds.pop(hold_id)
            with unit_of_work(factory) as session:
                ledger.void_hold(session, ctx=system_ctx, hold_id=hold_id)
            self.model.pending[who] -= amount
            with pytest.raises(HoldNotPending), unit_of_work(factory) as session:
                ledger.post_hold(session, ctx=system_ctx, hold_id=hold_id)

        @rule()
        def time_passes(self) -> None:
            clock.advance(timedelta(minutes=45))
            with unit_of_work(factory) as session:
                ledger.expire_due_holds(session, ctx=system_ctx)
                expired = {
                    h.id
                    for h in session.query(ledger.Hold).filter(ledger.Hold.status == HoldStatus.EXPIRED.value)
                }
            for hold_id in list(self.model.holds):
                if hold_id in expired:
                    who, amount = self.model.holds.pop(hold_id)
                    self.model.pending[who] -= amount

        @rule(a=st.sampled_from(INVESTORS), b=st.sampled_from(INVESTORS), amount=st.integers(1, 5000))
        def transfer(self, a: str, b: str, amount: int) -> None:
            if a == b:
                return
            try:
                with unit_of_work(factory) as session:
                    ledger.post_entry(
                        session,
                        ctx=system_ctx,
                        legs=transfer(self.books[a], self.books[b], amount, "CNY"),
                        kind="transfer",
                        description="between investors",
                    )
            except InsufficientFunds:
                assert amount > self.model.available(a)
                return
            self.model.posted[a] -= amount
            self.model.posted[b] += amount

        @precondition(lambda self: bool(self.model.deposits))
        @rule(data=st.data())
        def reverse(self, data: st.DataObject) -> None:
            entry, who, amount = data.draw(st.sampled_from(self.model.deposits))
            self.model.deposits.remove((entry, who, amount))
            try:
                with unit_of_work(factory) as session:
                    ledger.reverse(session, ctx=system_ctx, entry_id=entry, reason="correction")
            except InsufficientFunds:
                assert amount > self.model.available(who)
                return
            self.model.posted[who] -= amount
            self.model.escrow -= amount

        @invariant()
        def books_equal_the_model(self) -> None:
            if not hasattr(self, "books"):
                return
            with unit_of_work(factory) as session:
                for who in INVESTORS:
                    bal = ledger.balance(session, self.books[who])
                    assert (bal.posted, bal.available) == (
                        self.model.posted[who],
                        self.model.available(who),
                    ), who
                    assert bal.available >= 0
                escrow = ledger.balance(session, self.books["escrow"])
                assert escrow.posted == self.model.escrow
                assert first_violation(session) is None

    LedgerMachine.TestCase.settings = settings(
        max_examples=12,
        stateful_step_count=25,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    LedgerMachine.TestCase().runTest()


def test_concurrent_clients_never_overdraw_or_lose_updates(
    factory: sessionmaker[Session], system_ctx: Context
) -> None:
    """32 clients hammer five accounts with transfers, holds, posts and voids at once."""
    books = open_books(factory, system_ctx, investors=5)
    names = [f"inv{i}" for i in range(5)]
    with unit_of_work(factory) as session:
        for who in names:
            deposit(session, system_ctx, books, who, 1_000)
    errors: list[BaseException] = []
    outcomes: list[str] = []
    lock = threading.Lock()

    def client(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(15):
            a, b = rng.sample(names, 2)
            try:
                with unit_of_work(factory) as session:
                    if rng.random() < 0.6:
                        ledger.post_entry(
                            session,
                            ctx=system_ctx,
                            legs=transfer(books[a], books[b], rng.randint(1, 400), "CNY"),
                            kind="transfer",
                            description="t",
                        )
                    else:
                        hold = ledger.place_hold(
                            session,
                            ctx=system_ctx,
                            debit_account_id=books[a],
                            credit_account_id=books[b],
                            amount=rng.randint(1, 400),
                            currency="CNY",
                            description="h",
                        )
                        if rng.random() < 0.5:
                            ledger.post_hold(
                                session, ctx=system_ctx, hold_id=hold.id, amount=max(1, hold.amount // 2)
                            )
                        else:
                            ledger.void_hold(session, ctx=system_ctx, hold_id=hold.id)
                with lock:
                    outcomes.append("ok")
            except InsufficientFunds:
                with lock:
                    outcomes.append("refused")
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert outcomes.count("ok") > 0
    with unit_of_work(factory) as session:
        balances = [ledger.balance(session, books[who]) for who in names]
        assert all(b.posted >= 0 and b.available >= 0 and b.pending_out == 0 for b in balances)
        assert sum(b.posted for b in balances) == 5_000  # money moved between investors, none made or lost
        assert first_violation(session) is None


class Crash(RuntimeError):
    pass


@contextmanager
def crash_on_statement(engine: Engine, n: int) -> Iterator[list[int]]:
    """Make the n-th SQL statement sent to the database raise, as a crash would at that point.
    Hooked on the engine, so ORM flushes, Core statements and BEGIN all count."""
    count = [0]

    def before(*_args: Any) -> None:
        count[0] += 1
        if count[0] == n:
            raise Crash(f"crash at statement {n}")

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield count
    finally:
        event.remove(engine, "before_cursor_execute", before)


def _crash_every_step(factory: sessionmaker[Session], command: Callable[[Session], object]) -> int:
    """Run the command with a crash injected at statement 1, 2, … until it completes; after every
    crash the books must be exactly as before. Returns how many crash points were tried."""
    before = snapshot(factory)
    engine = factory.kw["bind"]
    for n in range(1, 200):
        session = factory()
        try:
            with crash_on_statement(engine, n) as count:
                command(session)
                session.flush()
            if count[0] < n:  # ran to the end without reaching statement n: nothing left to crash
                session.rollback()
                return n - 1
            session.rollback()
        except Crash:
            session.rollback()
        finally:
            session.close()
        assert snapshot(factory) == before, f"crash at statement {n} left partial work"
        with unit_of_work(factory) as check:
            assert first_violation(check) is None
    raise AssertionError("the command never completed")


def test_a_crash_at_any_step_of_any_money_command_leaves_nothing_partial(
    factory: sessionmaker[Session], system_ctx: Context
) -> None:
    books = open_books(factory, system_ctx)
    with unit_of_work(factory) as session:
        deposit(session, system_ctx, books, "inv0", 1_000)
        entry = deposit(session, system_ctx, books, "inv2", 100)
        pending = ledger.place_hold(
            session,
            ctx=system_ctx,
            debit_account_id=books["inv0"],
            credit_account_id=books["escrow"],
            amount=300,
            currency="CNY",
            description="w",
        ).id
    commands: dict[str, Callable[[Session], object]] = {
        "post": lambda s: deposit(s, system_ctx, books, "inv1", 50),
        "linked": lambda s: ledger.post(
            s,
            ctx=system_ctx,
            drafts=[
                ledger.EntryDraft(
                    legs=transfer(books["escrow"], books["inv1"], 5, "CNY"), kind="d", description="d"
                ),
                ledger.EntryDraft(
                    legs=transfer(books["inv0"], books["inv2"], 5, "CNY"), kind="t", description="t"
                ),
            ],
        ),
        "reverse": lambda s: ledger.reverse(s, ctx=system_ctx, entry_id=entry, reason="r"),
        "place_hold": lambda s: ledger.place_hold(
            s,
            ctx=system_ctx,
            debit_account_id=books["inv0"],
            credit_account_id=books["escrow"],
            amount=10,
            currency="CNY",
            description="h",
        ),
        "post_hold": lambda s: ledger.post_hold(s, ctx=system_ctx, hold_id=pending, amount=100),
        "void_hold": lambda s: ledger.void_hold(s, ctx=system_ctx, hold_id=pending),
    }
    tried = {name: _crash_every_step(factory, command) for name, command in commands.items()}
    assert all(points >= 2 for points in tried.values()), tried
