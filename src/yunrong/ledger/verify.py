"""`yunrong ledger verify`: check every invariant of the ledger and name the first violation."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sqlalchemy import and_, case, func, literal, or_, select
from sqlalchemy.orm import Session

from yunrong.ledger.model import DEBIT_NORMAL, HoldStatus
from yunrong.ledger.service import ACCOUNTS, ENTRIES, HOLDS, POSTINGS


@dataclass(frozen=True)
class Violation:
    invariant: str
    detail: str

    def __str__(self) -> str:
        return f"{self.invariant}: {self.detail}"


def _entries_balance(session: Session) -> Iterator[Violation]:
    signed = case((POSTINGS.c.side == "D", POSTINGS.c.amount), else_=-POSTINGS.c.amount)
    rows = session.execute(
        select(ENTRIES.c.ref, POSTINGS.c.currency, func.sum(signed))
        .join(POSTINGS, POSTINGS.c.entry_id == ENTRIES.c.id)
        .group_by(ENTRIES.c.ref, POSTINGS.c.currency)
        .having(func.sum(signed) != 0)
        .limit(1)
    ).all()
    for ref, currency, net in rows:
        yield Violation("entries balance", f"entry {ref} is off by {net} in {currency}")
    short = session.execute(
        select(ENTRIES.c.ref)
        .outerjoin(POSTINGS, POSTINGS.c.entry_id == ENTRIES.c.id)
        .group_by(ENTRIES.c.ref)
        .having(func.count(POSTINGS.c.id) < 2)
        .limit(1)
    ).scalar()
    if short:
        yield Violation("entries balance", f"entry {short} has fewer than two legs")


def _entries_closed(session: Session) -> Iterator[Violation]:
    ref = session.scalar(select(ENTRIES.c.ref).where(ENTRIES.c.posted.is_(False)).limit(1))
    if ref:
        yield Violation("no half-written work", f"entry {ref} was never closed")


def _currency_totals(session: Session) -> Iterator[Violation]:
    signed = case((POSTINGS.c.side == "D", POSTINGS.c.amount), else_=-POSTINGS.c.amount)
    rows = session.execute(
        select(POSTINGS.c.currency, func.sum(signed))
        .group_by(POSTINGS.c.currency)
        .having(func.sum(signed) != 0)
    ).all()
    for currency, net in rows:
        yield Violation("totals per currency net to zero", f"{currency} debits exceed credits by {net}")


def _legs_match_accounts(session: Session) -> Iterator[Violation]:
    row = session.execute(
        select(ACCOUNTS.c.code, POSTINGS.c.currency, ACCOUNTS.c.currency.label("account_currency"))
        .join(ACCOUNTS, ACCOUNTS.c.id == POSTINGS.c.account_id)
        .where(POSTINGS.c.currency != ACCOUNTS.c.currency)
        .limit(1)
    ).first()
    if row:
        yield Violation(
            "one currency per account", f"{row.code} ({row.account_currency}) has a {row.currency} leg"
        )


def _cached_totals(session: Session) -> Iterator[Violation]:
    sums = (
        select(
            POSTINGS.c.account_id,
            func.sum(case((POSTINGS.c.side == "D", POSTINGS.c.amount), else_=0)).label("d"),
            func.sum(case((POSTINGS.c.side == "C", POSTINGS.c.amount), else_=0)).label("c"),
        )
        .group_by(POSTINGS.c.account_id)
        .subquery()
    )
    row = session.execute(
        select(ACCOUNTS.c.code, ACCOUNTS.c.debits_posted, ACCOUNTS.c.credits_posted, sums.c.d, sums.c.c)
        .outerjoin(sums, sums.c.account_id == ACCOUNTS.c.id)
        .where(
            or_(
                ACCOUNTS.c.debits_posted != func.coalesce(sums.c.d, literal(0)),
                ACCOUNTS.c.credits_posted != func.coalesce(sums.c.c, literal(0)),
            )
        )
        .limit(1)
    ).first()
    if row:
        yield Violation(
            "balances equal the sum of their postings",
            f"{row.code} says D {row.debits_posted} / C {row.credits_posted}, postings say "
            f"D {row.d or 0} / C {row.c or 0}",
        )


def _no_overdraft(session: Session) -> Iterator[Violation]:
    debit_normal = [t.value for t in DEBIT_NORMAL]
    available = case(
        (
            ACCOUNTS.c.type.in_(debit_normal),
            ACCOUNTS.c.debits_posted - ACCOUNTS.c.credits_posted - ACCOUNTS.c.credits_pending,
        ),
        else_=ACCOUNTS.c.credits_posted - ACCOUNTS.c.debits_posted - ACCOUNTS.c.debits_pending,
    )
    row = session.execute(
        select(ACCOUNTS.c.code, available.label("available"))
        .where(and_(ACCOUNTS.c.no_overdraft.is_(True), available < 0))
        .limit(1)
    ).first()
    if row:
        yield Violation("no forbidden overdraft", f"{row.code} is overdrawn: available {row.available}")


def _holds_consistent(session: Session) -> Iterator[Violation]:
    pending = HoldStatus.PENDING.value
    for column, side_col, label in (
        (HOLDS.c.debit_account_id, ACCOUNTS.c.debits_pending, "debits"),
        (HOLDS.c.credit_account_id, ACCOUNTS.c.credits_pending, "credits"),
    ):
        held = (
            select(column.label("account_id"), func.sum(HOLDS.c.amount).label("amount"))
            .where(HOLDS.c.status == pending)
            .group_by(column)
            .subquery()
        )
        row = session.execute(
            select(ACCOUNTS.c.code, side_col.label("cached"), held.c.amount)
            .outerjoin(held, held.c.account_id == ACCOUNTS.c.id)
            .where(side_col != func.coalesce(held.c.amount, literal(0)))
            .limit(1)
        ).first()
        if row:
            yield Violation(
                "holds consistent",
                f"{row.code} has {label} pending {row.cached}, pending holds total {row.amount or 0}",
            )
    posted = session.execute(
        select(
            HOLDS.c.ref, HOLDS.c.posted_amount, func.coalesce(func.sum(POSTINGS.c.amount), 0).label("legs")
        )
        .outerjoin(
            POSTINGS,
            and_(POSTINGS.c.entry_id == HOLDS.c.entry_id, POSTINGS.c.side == "D"),
        )
        .where(HOLDS.c.status == HoldStatus.POSTED.value)
        .group_by(HOLDS.c.ref, HOLDS.c.posted_amount)
        .having(func.coalesce(func.sum(POSTINGS.c.amount), 0) != HOLDS.c.posted_amount)
        .limit(1)
    ).first()
    if posted:
        yield Violation(
            "holds consistent",
            f"hold {posted.ref} posted {posted.posted_amount} but its entry moved {posted.legs}",
        )
    loose = session.scalar(
        select(HOLDS.c.ref)
        .where(
            or_(
                and_(HOLDS.c.status != HoldStatus.POSTED.value, HOLDS.c.posted_amount != 0),
                and_(HOLDS.c.status == HoldStatus.PENDING.value, HOLDS.c.resolved_at.is_not(None)),
                and_(HOLDS.c.status != HoldStatus.PENDING.value, HOLDS.c.resolved_at.is_(None)),
            )
        )
        .limit(1)
    )
    if loose:
        yield Violation(
            "holds consistent", f"hold {loose} has a status that contradicts its amounts or dates"
        )


CHECKS: tuple[tuple[str, Callable[[Session], Iterator[Violation]]], ...] = (
    ("entries balance", _entries_balance),
    ("no half-written work", _entries_closed),
    ("totals per currency net to zero", _currency_totals),
    ("one currency per account", _legs_match_accounts),
    ("balances equal the sum of their postings", _cached_totals),
    ("no forbidden overdraft", _no_overdraft),
    ("holds consistent", _holds_consistent),
)


def verify(session: Session) -> list[tuple[str, Violation | None]]:
    """Run every check; each result is (check name, first violation or None)."""
    return [(name, next(check(session), None)) for name, check in CHECKS]


def first_violation(session: Session) -> Violation | None:
    for _name, violation in verify(session):
        if violation is not None:
            return violation
    return None
