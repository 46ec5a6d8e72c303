"""The ledger on a real database: entries, linked entries, reversals, holds, balances, triggers."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from tests.integration.ledger.helpers import deposit, open_books
from yunrong.db import unit_of_work
from yunrong.identity.model import Context
from yunrong.kit.clock import FrozenClock
from yunrong.ledger import service as ledger
from yunrong.ledger.model import (
    AlreadyReversed,
    CurrencyMismatch,
    HoldNotPending,
    InsufficientFunds,
    InvalidAmount,
    Leg,
    PostExceedsHold,
    Side,
    UnbalancedEntry,
    UnknownAccount,
    transfer,
)
from yunrong.ledger.service import EntryDraft
from yunrong.ledger.tables import Hold
from yunrong.ledger.verify import first_violation


def test_a_deposit_moves_both_sides(factory: sessionmaker[Session], system_ctx: Context) -> None:
    books = open_books(factory, system_ctx)
    with unit_of_work(factory) as session:
        deposit(session, system_ctx, books, "inv0", 100_00)
    with unit_of_work(factory) as session:
        assert ledger.balance(session, books["escrow"]).posted == 100_00
        assert ledger.balance(session, books["inv0"]).posted == 100_00
        assert ledger.balance(session, books["inv0"]).available == 100_00
        assert first_violation(session) is None


def test_bad_entries_are_refused_and_nothing_moves(
    factory: sessionmaker[Session], system_ctx: Context
) -> None:
    books = open_books(factory, system_ctx)
    escrow, inv = books["escrow"], books["inv0"]
    bad: list[tuple[list[Leg], type[Exception]]] = [
        ([Leg(escrow, Side.DEBIT, 100, "CNY")], UnbalancedEntry),
        ([Leg(escrow, Side.DEBIT, 100, "CNY"), Leg(inv, Side.CREDIT, 99, "CNY")], UnbalancedEntry),
        ([Leg(escrow, Side.DEBIT, 0, "CNY"), Leg(inv, Side.CREDIT, 0, "CNY")], InvalidAmount),
        ([Leg(escrow, Side.DEBIT, -5, "CNY"), Leg(inv, Side.CREDIT, -5, "CNY")], InvalidAmount),
        ([Leg(escrow, Side.DEBIT, 100, "EUR"), Leg(inv, Side.CREDIT, 100, "EUR")], CurrencyMismatch),
        (
            [Leg(escrow, Side.DEBIT, 100, "CNY"), Leg(__import__("uuid").uuid4(), Side.CREDIT, 100, "CNY")],
            UnknownAccount,
        ),
        (list(transfer(inv, escrow, 1, "CNY")), InsufficientFunds),  # an investor cannot go below zero
    ]
    for legs, error in bad:
        with pytest.raises(error), unit_of_work(factory) as session:
            ledger.post_entry(session, ctx=system_ctx, legs=legs, kind="test", description="bad")
    with unit_of_work(factory) as session:
        assert ledger.balance(session, escrow).posted == 0
        assert ledger.balance(session, inv).posted == 0
        assert first_violation(session) is None


def test_linked_entries_succeed_or_fail_together(factory: sessionmaker[Session], system_ctx: Context) -> None:
    books = open_books(factory, system_ctx)
    good = EntryDraft(
        legs=transfer(books["escrow"], books["inv0"], 500, "CNY"), kind="deposit", description="ok"
    )
    overdraw = EntryDraft(
        legs=transfer(books["inv1"], books["inv2"], 1, "CNY"), kind="move", description="no"
    )
    with pytest.raises(InsufficientFunds), unit_of_work(factory) as session:
        ledger.post(session, ctx=system_ctx, drafts=[good, overdraw])
    with unit_of_work(factory) as session:
        assert ledger.balance(session, books["inv0"]).posted == 0
    with unit_of_work(factory) as session:
        ids = ledger.post(session, ctx=system_ctx, drafts=[good, good])
    assert len(ids) == 2
    with unit_of_work(factory) as session:
        assert ledger.balance(session, books["inv0"]).posted == 1000


def test_reversal_mirrors_once_and_cannot_overdraw(
    factory: sessionmaker[Session], system_ctx: Context
) -> None:
    books = open_books(factory, system_ctx)
    with unit_of_work(factory) as session:
        first = deposit(session, system_ctx, books, "inv0", 300)
        second = deposit(session, system_ctx, books, "inv1", 200)
    with unit_of_work(factory) as session:
        reversal = ledger.reverse(
            session, ctx=system_ctx, entry_id=first, reason="keyed to the wrong investor"
        )
        assert ledger.legs_of(session, reversal)[0].side is Side.CREDIT
    with pytest.raises(AlreadyReversed), unit_of_work(factory) as session:
        ledger.reverse(session, ctx=system_ctx, entry_id=first, reason="again")
    with unit_of_work(factory) as session:
        ledger.post_entry(
            session,
            ctx=system_ctx,
            legs=transfer(books["inv1"], books["fees"], 150, "CNY"),
            kind="fee",
            description="fee",
        )
    with pytest.raises(InsufficientFunds), unit_of_work(factory) as session:
        ledger.reverse(session, ctx=system_ctx, entry_id=second, reason="money already gone")
    with unit_of_work(factory) as session:
        assert ledger.balance(session, books["inv0"]).posted == 0
        assert ledger.balance(session, books["escrow"]).posted == 200
        assert first_violation(session) is None


def test_holds_post_in_part_void_and_expire_exactly_once(
    factory: sessionmaker[Session], system_ctx: Context, clock: FrozenClock
) -> None:
    books = open_books(factory, system_ctx)
    with unit_of_work(factory) as session:
        deposit(session, system_ctx, books, "inv0", 1000)
        hold = ledger.place_hold(
            session,
            ctx=system_ctx,
            debit_account_id=books["inv0"],
            credit_account_id=books["escrow"],
            amount=600,
            currency="CNY",
            description="withdrawal",
        ).id
    with unit_of_work(factory) as session:
        bal = ledger.balance(session, books["inv0"])
        assert (bal.posted, bal.available) == (1000, 400)
    with pytest.raises(InsufficientFunds), unit_of_work(factory) as session:
        ledger.place_hold(
            session,
            ctx=system_ctx,
            debit_account_id=books["inv0"],
            credit_account_id=books["escrow"],
            amount=401,
            currency="CNY",
            description="too much",
        )
    with pytest.raises(PostExceedsHold), unit_of_work(factory) as session:
        ledger.post_hold(session, ctx=system_ctx, hold_id=hold, amount=601)
    with unit_of_work(factory) as session:
        ledger.post_hold(session, ctx=system_ctx, hold_id=hold, amount=250)  # the rest is released
    with unit_of_work(factory) as session:
        bal = ledger.balance(session, books["inv0"])
        assert (bal.posted, bal.available) == (750, 750)
    for again in (ledger.post_hold, ledger.void_hold):
        with pytest.raises(HoldNotPending), unit_of_work(factory) as session:
            again(session, ctx=system_ctx, hold_id=hold)
    with unit_of_work(factory) as session:
        voided = ledger.place_hold(
            session,
            ctx=system_ctx,
            debit_account_id=books["inv0"],
            credit_account_id=books["escrow"],
            amount=100,
            currency="CNY",
            description="v",
        ).id
        expiring = ledger.place_hold(
            session,
            ctx=system_ctx,
            debit_account_id=books["inv0"],
            credit_account_id=books["escrow"],
            amount=100,
            currency="CNY",
            description="e",
            expires_at=clock.now() + timedelta(hours=1),
        ).id
        ledger.void_hold(session, ctx=system_ctx, hold_id=voided)
    clock.advance(timedelta(hours=2))
    with pytest.raises(HoldNotPending), unit_of_work(factory) as session:
        ledger.post_hold(session, ctx=system_ctx, hold_id=expiring)
    with unit_of_work(factory) as session:
        assert ledger.expire_due_holds(session, ctx=system_ctx) == 1
        assert ledger.expire_due_holds(session, ctx=system_ctx) == 0
    with unit_of_work(factory) as session:
        bal = ledger.balance(session, books["inv0"])
        assert (bal.posted, bal.available) == (750, 750)
        assert first_violation(session) is None


def test_balance_as_of_a_past_time_and_statement(
    factory: sessionmaker[Session], system_ctx: Context, clock: FrozenClock
) -> None:
    books = open_books(factory, system_ctx)
    with unit_of_work(factory) as session:
        deposit(session, system_ctx, books, "inv0", 100)
    before_second = clock.now()
    clock.advance(timedelta(minutes=5))
    with unit_of_work(factory) as session:
        deposit(session, system_ctx, books, "inv0", 50)
        ledger.post_entry(
            session,
            ctx=system_ctx,
            legs=transfer(books["inv0"], books["fees"], 30, "CNY"),
            kind="fee",
            description="service fee",
        )
    with unit_of_work(factory) as session:
        assert ledger.balance_as_of(session, books["inv0"], before_second).posted == 100
        assert ledger.balance(session, books["inv0"]).posted == 120
        opening, lines = ledger.statement(session, account_id=books["inv0"], since=before_second)
    assert opening == 100
    assert [(line.credit, line.debit, line.running) for line in lines] == [(50, 0, 150), (0, 30, 120)]


def _db_id(engine: Engine, value: uuid.UUID) -> str:
    """How the id column stores a UUID on this backend (32 hex on SQLite, native on PostgreSQL)."""
    return value.hex if engine.dialect.name == "sqlite" else str(value)


INSERT_ENTRY = text(
    "INSERT INTO journal_entries (id, ref, kind, description, value_date, created_at, created_by, posted) "
    "VALUES (:id, :ref, 'x', 'x', '2026-11-26', '2026-11-26 00:00:00', 'x', false)"
)
INSERT_POSTING = text(
    "INSERT INTO postings (id, entry_id, account_id, side, amount, currency, created_at) "
    "VALUES (:id, :entry, :account, 'D', 100, 'CNY', '2026-11-26 00:00:00')"
)


def test_the_database_itself_refuses_unbalanced_or_changed_entries(
    factory: sessionmaker[Session], system_ctx: Context, engine: Engine
) -> None:
    books = open_books(factory, system_ctx)
    with unit_of_work(factory) as session:
        entry = deposit(session, system_ctx, books, "inv0", 100)
    for statement in (
        "UPDATE postings SET amount = amount + 1",
        "DELETE FROM postings",
        "DELETE FROM journal_entries",
        "UPDATE journal_entries SET description = 'changed'",
    ):
        with pytest.raises(Exception, match="immutable"), engine.begin() as conn:
            conn.execute(text(statement))
    escrow = _db_id(engine, books["escrow"])
    # An unbalanced entry written behind the code's back cannot be closed.
    sneaky = _db_id(engine, uuid.uuid4())
    with pytest.raises(Exception, match="unbalanced"), engine.begin() as conn:  # noqa: PT012
        conn.execute(INSERT_ENTRY, {"id": sneaky, "ref": "JE-SNEAKY"})
        conn.execute(INSERT_POSTING, {"id": _db_id(engine, uuid.uuid4()), "entry": sneaky, "account": escrow})
        conn.execute(text("UPDATE journal_entries SET posted = true WHERE id = :id"), {"id": sneaky})
    # No leg can be added to a closed entry.
    with pytest.raises(Exception, match="closed"), engine.begin() as conn:
        conn.execute(
            INSERT_POSTING,
            {"id": _db_id(engine, uuid.uuid4()), "entry": _db_id(engine, entry), "account": escrow},
        )


def test_an_entry_left_open_is_refused_or_named(
    factory: sessionmaker[Session], system_ctx: Context, engine: Engine
) -> None:
    """PostgreSQL refuses to commit an entry left open (deferred constraint trigger); SQLite cannot
    defer a trigger, so `ledger verify` names the half-written entry instead."""
    if engine.dialect.name == "postgresql":
        with pytest.raises(Exception, match="left open"), engine.begin() as conn:
            conn.execute(INSERT_ENTRY, {"id": str(uuid.uuid4()), "ref": "JE-OPEN"})
        return
    with engine.begin() as conn:
        conn.execute(INSERT_ENTRY, {"id": uuid.uuid4().hex, "ref": "JE-OPEN"})
    with unit_of_work(factory) as session:
        violation = first_violation(session)
    assert violation is not None
    assert violation.invariant in {"entries balance", "no half-written work"}
    assert "JE-OPEN" in violation.detail


def test_verify_names_the_first_violation(
    factory: sessionmaker[Session], system_ctx: Context, engine: Engine
) -> None:
    books = open_books(factory, system_ctx)
    with unit_of_work(factory) as session:
        deposit(session, system_ctx, books, "inv0", 100)
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE ledger_accounts SET credits_posted = credits_posted + 1 "
                "WHERE purpose = 'investor_available'"
            )
        )
    with unit_of_work(factory) as session:
        violation = first_violation(session)
    assert violation is not None
    assert violation.invariant == "balances equal the sum of their postings"
    assert "investor_available" in violation.detail


def test_staged_holds_move_nothing_until_applied_and_can_be_taken_out(
    factory: sessionmaker[Session], system_ctx: Context
) -> None:
    books = open_books(factory, system_ctx)
    with unit_of_work(factory) as session:
        deposit(session, system_ctx, books, "inv0", 1000)
    requests = [
        ledger.HoldRequest(books["inv0"], books["escrow"], amount, "CNY", f"staged {amount}")
        for amount in (300, 200, 100)
    ]
    with unit_of_work(factory) as session:
        staged = ledger.stage_holds(session, ctx=system_ctx, requests=requests)
        assert ledger.balance(session, books["inv0"]).available == 1000  # nothing moved yet
        ledger.unstage_holds(session, staged[1:2])  # the second is refused after all
        ledger.apply_holds(session, requests=[requests[0], requests[2]])
    with unit_of_work(factory) as session:
        assert ledger.balance(session, books["inv0"]).available == 600
        assert session.get(Hold, staged[1]) is None
        assert first_violation(session) is None
    # Applying more than is available refuses, and the transaction leaves nothing behind.
    too_much = [ledger.HoldRequest(books["inv0"], books["escrow"], 601, "CNY", "too much")]
    staged_ids: list[uuid.UUID] = []

    def stage_then_apply() -> None:
        with unit_of_work(factory) as session:
            staged_ids.extend(ledger.stage_holds(session, ctx=system_ctx, requests=too_much))
            ledger.apply_holds(session, requests=too_much)

    with pytest.raises(InsufficientFunds):
        stage_then_apply()
    with unit_of_work(factory) as session:
        assert session.get(Hold, staged_ids[0]) is None
        assert ledger.balance(session, books["inv0"]).available == 600
        assert first_violation(session) is None
