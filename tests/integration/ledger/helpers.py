"""Small helpers for ledger tests: a custody-like set of accounts and snapshots of the books."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from yunrong.db import unit_of_work
from yunrong.identity.model import Context
from yunrong.ledger import service as ledger
from yunrong.ledger.model import AccountType, transfer
from yunrong.ledger.tables import Hold, IdempotencyKey, JournalEntry, LedgerAccount, Posting


def open_books(
    factory: sessionmaker[Session], ctx: Context, investors: int = 3, currency: str = "CNY"
) -> dict[str, uuid.UUID]:
    """An escrow cash account (asset) and investor accounts (liabilities, no overdraft)."""
    tag = uuid.uuid4().hex[:8]
    ids: dict[str, uuid.UUID] = {}
    with unit_of_work(factory) as session:
        ids["escrow"] = ledger.open_account(
            session,
            ctx=ctx,
            code=f"escrow_cash:{currency}:{tag}",
            name="Escrow",
            type=AccountType.ASSET,
            currency=currency,
            purpose="escrow_cash",
        ).id
        for i in range(investors):
            ids[f"inv{i}"] = ledger.open_account(
                session,
                ctx=ctx,
                code=f"investor_available:{currency}:{tag}:{i}",
                name=f"Investor {i}",
                type=AccountType.LIABILITY,
                currency=currency,
                purpose="investor_available",
            ).id
        ids["fees"] = ledger.open_account(
            session,
            ctx=ctx,
            code=f"platform_fee_income:{currency}:{tag}",
            name="Fees",
            type=AccountType.INCOME,
            currency=currency,
            purpose="platform_fee_income",
        ).id
    return ids


def deposit(session: Session, ctx: Context, books: dict[str, uuid.UUID], who: str, amount: int) -> uuid.UUID:
    return ledger.post_entry(
        session,
        ctx=ctx,
        legs=transfer(books["escrow"], books[who], amount, "CNY"),
        kind="deposit",
        description=f"deposit {who}",
    )


def snapshot(factory: sessionmaker[Session]) -> dict[str, Any]:
    """Everything a money command could change, to compare before and after a crash."""
    with unit_of_work(factory) as session:
        accounts = session.execute(
            select(
                LedgerAccount.code,
                LedgerAccount.debits_posted,
                LedgerAccount.credits_posted,
                LedgerAccount.debits_pending,
                LedgerAccount.credits_pending,
            ).order_by(LedgerAccount.code)
        ).all()
        return {
            "accounts": [tuple(r) for r in accounts],
            "entries": session.scalar(select(func.count()).select_from(JournalEntry)),
            "postings": session.scalar(select(func.count()).select_from(Posting)),
            "holds": sorted(
                tuple(r) for r in session.execute(select(Hold.ref, Hold.status, Hold.posted_amount)).all()
            ),
            "keys": session.scalar(select(func.count()).select_from(IdempotencyKey)),
        }
