"""Ledger use cases: accounts, entries (single and linked), reversals, two-phase holds, balances.

The write path uses SQLAlchemy Core so that a batch of entries costs a handful of statements:
lock the touched accounts (``SELECT … FOR UPDATE`` in id order, so concurrent writers never
deadlock; SQLite's BEGIN IMMEDIATE serialises writers instead), check every rule, insert the
entries and their legs, add the deltas to the accounts, and close the entries — the database
refuses to close an unbalanced one. Nothing here commits.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, delete, func, select, update
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from yunrong.db import insert_many, is_postgres
from yunrong.identity.model import Context
from yunrong.kit.clock import business_date
from yunrong.kit.errors import FieldProblem
from yunrong.kit.ids import human_ref, uuid7
from yunrong.ledger.model import (
    AccountType,
    AlreadyReversed,
    Balance,
    CurrencyMismatch,
    HoldNotPending,
    HoldStatus,
    InsufficientFunds,
    InvalidAmount,
    Leg,
    PostExceedsHold,
    Side,
    UnknownAccount,
    ensure_valid,
    reversed_legs,
    would_overdraw,
)
from yunrong.ledger.tables import Hold, JournalEntry, LedgerAccount, Posting

ACCOUNTS = cast(Table, LedgerAccount.__table__)
ENTRIES = cast(Table, JournalEntry.__table__)
POSTINGS = cast(Table, Posting.__table__)
HOLDS = cast(Table, Hold.__table__)

DEFAULT_TIMEZONE = "Asia/Shanghai"


@dataclass(frozen=True)
class EntryDraft:
    legs: Sequence[Leg]
    kind: str
    description: str
    value_date: date | None = None
    reverses_id: uuid.UUID | None = None
    hold_id: uuid.UUID | None = None
    external_ref: str | None = None


@dataclass
class _Locked:
    row: Row[Any]
    dp: int = 0  # debits posted delta
    cp: int = 0
    dpend: int = 0  # debits pending delta
    cpend: int = 0

    @property
    def type(self) -> AccountType:
        return AccountType(self.row.type)

    def balance(self) -> Balance:
        return Balance(
            self.type,
            self.row.debits_posted,
            self.row.credits_posted,
            self.row.debits_pending,
            self.row.credits_pending,
        )

    def overdrawn(self) -> bool:
        return bool(self.row.no_overdraft) and would_overdraw(
            self.type,
            self.balance(),
            debit_posted=self.dp,
            credit_posted=self.cp,
            debit_pending=self.dpend,
            credit_pending=self.cpend,
        )


@dataclass
class _Batch:
    accounts: dict[uuid.UUID, _Locked] = field(default_factory=dict)


# --- accounts -------------------------------------------------------------------------------------


def open_account(
    session: Session,
    *,
    ctx: Context,
    code: str,
    name: str,
    type: AccountType,
    currency: str,
    purpose: str,
    owner_org_id: uuid.UUID | None = None,
    subject_id: str | None = None,
    no_overdraft: bool = True,
) -> LedgerAccount:
    account = LedgerAccount(
        code=code,
        name=name,
        type=type.value,
        currency=currency,
        purpose=purpose,
        owner_org_id=owner_org_id,
        subject_id=subject_id,
        no_overdraft=no_overdraft,
        debits_posted=0,
        credits_posted=0,
        debits_pending=0,
        credits_pending=0,
        created_at=ctx.now(),
    )
    session.add(account)
    session.flush()
    return account


def account_by_code(session: Session, code: str) -> LedgerAccount | None:
    return session.scalars(select(LedgerAccount).where(LedgerAccount.code == code)).one_or_none()


def get_or_open_account(
    session: Session,
    *,
    ctx: Context,
    code: str,
    name: str,
    type: AccountType,
    currency: str,
    purpose: str,
    owner_org_id: uuid.UUID | None = None,
    subject_id: str | None = None,
    no_overdraft: bool = True,
) -> LedgerAccount:
    """Find an account by code or open it. On PostgreSQL a concurrent opener of the same code is
    absorbed by ON CONFLICT DO NOTHING, so both callers get the same account."""
    existing = account_by_code(session, code)
    if existing is not None:
        return existing
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    dialect_insert = pg_insert if is_postgres(session) else sqlite_insert
    session.execute(
        dialect_insert(LedgerAccount)
        .values(
            id=uuid7(),
            code=code,
            name=name,
            type=type.value,
            currency=currency,
            purpose=purpose,
            owner_org_id=owner_org_id,
            subject_id=subject_id,
            no_overdraft=no_overdraft,
            debits_posted=0,
            credits_posted=0,
            debits_pending=0,
            credits_pending=0,
            created_at=ctx.now(),
        )
        .on_conflict_do_nothing(index_elements=["code"])
    )
    account = account_by_code(session, code)
    assert account is not None
    return account


# In id order. NO KEY UPDATE (PostgreSQL; SQLite locks the whole database anyway): balances are not
# keys, so inserting a row that refers to the account (a hold, a posting) need not wait for whoever
# holds this lock. Built once: this runs in every money command.
_LOCK_ACCOUNTS = (
    select(ACCOUNTS)
    .where(ACCOUNTS.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(ACCOUNTS.c.id)
    .with_for_update(key_share=True)
)


def _lock(session: Session, account_ids: set[uuid.UUID]) -> dict[uuid.UUID, _Locked]:
    rows = session.execute(_LOCK_ACCOUNTS, {"ids": sorted(account_ids)}).all()
    found = {row.id: _Locked(row) for row in rows}
    missing = account_ids - set(found)
    if missing:
        raise UnknownAccount(
            "unknown account; no money moved",
            [FieldProblem(("account_id",), f"no account {m}") for m in sorted(missing)],
        )
    return found


class LockedAccounts:
    """Accounts this transaction has locked (:func:`lock_accounts`), with their balances as locked,
    for a caller that decides many moves at once and then makes them with one :func:`place_holds`."""

    def __init__(self, rows: dict[uuid.UUID, _Locked]) -> None:
        self._rows = rows
        self._used = False

    def balance(self, account_id: uuid.UUID) -> Balance:
        return self._rows[account_id].balance()

    def take(self, account_ids: set[uuid.UUID]) -> dict[uuid.UUID, _Locked]:
        if self._used or not account_ids <= set(self._rows):
            raise RuntimeError("locked accounts are used once, for accounts that were locked")
        self._used = True
        return self._rows


def lock_accounts(session: Session, account_ids: set[uuid.UUID]) -> LockedAccounts:
    """Lock the accounts in id order, as every money command does."""
    return LockedAccounts(_lock(session, account_ids))


def _check_currency(locked: dict[uuid.UUID, _Locked], legs: Sequence[Leg]) -> None:
    problems = [
        FieldProblem(
            ("legs", i, "currency"), f"account {leg.account_id} holds {locked[leg.account_id].row.currency}"
        )
        for i, leg in enumerate(legs)
        if locked[leg.account_id].row.currency != leg.currency
    ]
    if problems:
        raise CurrencyMismatch("wrong currency for the account; no money moved", problems)


def _check_overdraft(locked: dict[uuid.UUID, _Locked]) -> None:
    overdrawn = [acc for acc in locked.values() if acc.overdrawn()]
    if overdrawn:
        names = ", ".join(acc.row.code for acc in overdrawn)
        raise InsufficientFunds(
            f"insufficient funds in {names}; no money moved",
            [FieldProblem(("account_id",), f"{acc.row.code} would be overdrawn") for acc in overdrawn],
        )


def _apply_deltas(session: Session, locked: dict[uuid.UUID, _Locked]) -> None:
    """Add each locked account's deltas to its balances: one statement text, sent once per account
    (psycopg pipelines them in one round trip; the same text each time, so it is compiled and
    prepared once)."""
    changed = [acc for acc in locked.values() if acc.dp or acc.cp or acc.dpend or acc.cpend]
    if changed:
        session.execute(
            _ADD_DELTAS,
            [
                {"acc_id": a.row.id, "d_dp": a.dp, "d_cp": a.cp, "d_dpend": a.dpend, "d_cpend": a.cpend}
                for a in changed
            ],
        )


_ADD_DELTAS = (
    update(ACCOUNTS)
    .where(ACCOUNTS.c.id == bindparam("acc_id"))
    .values(
        debits_posted=ACCOUNTS.c.debits_posted + bindparam("d_dp"),
        credits_posted=ACCOUNTS.c.credits_posted + bindparam("d_cp"),
        debits_pending=ACCOUNTS.c.debits_pending + bindparam("d_dpend"),
        credits_pending=ACCOUNTS.c.credits_pending + bindparam("d_cpend"),
    )
)


# --- entries --------------------------------------------------------------------------------------


def post(
    session: Session,
    *,
    ctx: Context,
    drafts: Sequence[EntryDraft],
    linked: bool = True,
    timezone: str = DEFAULT_TIMEZONE,
    _locked: dict[uuid.UUID, _Locked] | None = None,
) -> list[uuid.UUID]:
    """Post entries: all of them or none. ``linked`` records them as one group (they succeeded
    together); a batch of independent entries may pass ``linked=False`` and still commits atomically.
    Returns the entry ids in order."""
    if not drafts:
        return []
    for draft in drafts:
        ensure_valid(draft.legs)
    locked = (
        _locked if _locked is not None else _lock(session, {leg.account_id for d in drafts for leg in d.legs})
    )
    for draft in drafts:
        _check_currency(locked, draft.legs)
        for leg in draft.legs:
            acc = locked[leg.account_id]
            if leg.side is Side.DEBIT:
                acc.dp += leg.amount
            else:
                acc.cp += leg.amount
    _check_overdraft(locked)
    now = ctx.now()
    today = business_date(now, timezone)
    link_id = uuid7() if linked and len(drafts) > 1 else None
    entry_rows: list[dict[str, Any]] = []
    posting_rows: list[dict[str, Any]] = []
    for draft in drafts:
        entry_id = uuid7()
        entry_rows.append(
            {
                "id": entry_id,
                "ref": human_ref("JE", 10),
                "kind": draft.kind,
                "description": draft.description[:500],
                "value_date": draft.value_date or today,
                "created_at": now,
                "created_by": ctx.actor.email,
                "reverses_id": draft.reverses_id,
                "link_id": link_id,
                "hold_id": draft.hold_id,
                "external_ref": draft.external_ref,
                "posted": False,
            }
        )
        posting_rows.extend(
            {
                "id": uuid7(),
                "entry_id": entry_id,
                "account_id": leg.account_id,
                "side": leg.side.value,
                "amount": leg.amount,
                "currency": leg.currency,
                "created_at": now,
            }
            for leg in draft.legs
        )
    session.execute(ENTRIES.insert(), entry_rows)
    session.execute(POSTINGS.insert(), posting_rows)
    _apply_deltas(session, locked)
    ids = [row["id"] for row in entry_rows]
    # Closing the entries is where the database checks that each balances (trigger).
    session.execute(update(ENTRIES).where(ENTRIES.c.id.in_(ids)).values(posted=True))
    return ids


def post_entry(
    session: Session,
    *,
    ctx: Context,
    legs: Sequence[Leg],
    kind: str,
    description: str,
    external_ref: str | None = None,
    timezone: str = DEFAULT_TIMEZONE,
) -> uuid.UUID:
    draft = EntryDraft(legs=legs, kind=kind, description=description, external_ref=external_ref)
    return post(session, ctx=ctx, drafts=[draft], timezone=timezone)[0]


def legs_of(session: Session, entry_id: uuid.UUID) -> list[Leg]:
    rows = session.execute(
        select(POSTINGS.c.account_id, POSTINGS.c.side, POSTINGS.c.amount, POSTINGS.c.currency)
        .where(POSTINGS.c.entry_id == entry_id)
        .order_by(POSTINGS.c.id)
    ).all()
    return [Leg(r.account_id, Side(r.side), r.amount, r.currency) for r in rows]


def reverse(
    session: Session, *, ctx: Context, entry_id: uuid.UUID, reason: str, timezone: str = DEFAULT_TIMEZONE
) -> uuid.UUID:
    """Correct a mistake with an entry that mirrors the original, linked to it. Each entry can be
    reversed once; reversing money that has since left an account is refused (insufficient funds)."""
    original = session.get(JournalEntry, entry_id)
    if original is None:
        raise UnknownAccount("no such entry")
    already = session.scalar(select(ENTRIES.c.id).where(ENTRIES.c.reverses_id == entry_id))
    if already is not None:
        raise AlreadyReversed(f"entry {original.ref} was already reversed")
    draft = EntryDraft(
        legs=reversed_legs(legs_of(session, entry_id)),
        kind="reversal",
        description=f"reversal of {original.ref}: {reason}",
        reverses_id=entry_id,
    )
    return post(session, ctx=ctx, drafts=[draft], timezone=timezone)[0]


# --- holds ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HoldRequest:
    debit_account_id: uuid.UUID
    credit_account_id: uuid.UUID
    amount: int
    currency: str
    description: str
    expires_at: datetime | None = None


def place_hold(
    session: Session,
    *,
    ctx: Context,
    debit_account_id: uuid.UUID,
    credit_account_id: uuid.UUID,
    amount: int,
    currency: str,
    description: str,
    expires_at: datetime | None = None,
) -> Hold:
    """Reserve ``amount``: it stays on the debit account but is no longer available."""
    request = HoldRequest(debit_account_id, credit_account_id, amount, currency, description, expires_at)
    (hold_id,) = place_holds(session, ctx=ctx, requests=[request])
    hold = session.get(Hold, hold_id)
    assert hold is not None
    return hold


def place_holds(
    session: Session,
    *,
    ctx: Context,
    requests: Sequence[HoldRequest],
    locked: LockedAccounts | None = None,
) -> list[uuid.UUID]:
    """Place many holds at once, all or none: each account is locked once (in id order; or by the
    caller, ``locked``), the balances are checked after all of them, the accounts are updated in
    one statement and the holds inserted in another. Returns the holds' ids, in order."""
    _check_holds(requests)
    if not requests:
        return []
    apply_holds(session, requests=requests, locked=locked)
    return _insert_holds(session, ctx, requests)


def stage_holds(session: Session, *, ctx: Context, requests: Sequence[HoldRequest]) -> list[uuid.UUID]:
    """The first half of placing holds, for a caller that writes before it takes its locks (the
    commitment batches): insert the holds, pending, WITHOUT moving any balance or locking any
    account. In the same transaction the caller must then either :func:`apply_holds` them or
    :func:`unstage_holds` them; until it commits nobody else sees them. Returns their ids."""
    _check_holds(requests)
    return _insert_holds(session, ctx, requests) if requests else []


def apply_holds(
    session: Session, *, requests: Sequence[HoldRequest], locked: LockedAccounts | None = None
) -> None:
    """Reserve the holds' amounts on their accounts (locked here, or by the caller), all or none:
    InsufficientFunds or CurrencyMismatch and nothing changed."""
    if not requests:
        return
    ids = {r.debit_account_id for r in requests} | {r.credit_account_id for r in requests}
    rows = locked.take(ids) if locked is not None else _lock(session, ids)
    _check_currency(
        rows,
        [
            leg
            for r in requests
            for leg in (
                Leg(r.debit_account_id, Side.DEBIT, r.amount, r.currency),
                Leg(r.credit_account_id, Side.CREDIT, r.amount, r.currency),
            )
        ],
    )
    for r in requests:
        rows[r.debit_account_id].dpend += r.amount
        rows[r.credit_account_id].cpend += r.amount
    _check_overdraft(rows)
    _apply_deltas(session, rows)


def unstage_holds(session: Session, hold_ids: Sequence[uuid.UUID]) -> None:
    """Remove holds this transaction staged and did not apply (they never moved any balance)."""
    if hold_ids:
        session.execute(
            delete(HOLDS).where(HOLDS.c.id.in_(list(hold_ids)), HOLDS.c.status == HoldStatus.PENDING.value)
        )


def _check_holds(requests: Sequence[HoldRequest]) -> None:
    for r in requests:
        if isinstance(r.amount, bool) or not isinstance(r.amount, int) or r.amount <= 0:
            raise InvalidAmount(
                "a hold is a positive whole amount", [FieldProblem(("amount",), "must be > 0")]
            )
        if r.debit_account_id == r.credit_account_id:
            raise InvalidAmount(
                "a hold moves between two accounts", [FieldProblem(("credit_account_id",), "same")]
            )


def _insert_holds(session: Session, ctx: Context, requests: Sequence[HoldRequest]) -> list[uuid.UUID]:
    now = ctx.now()
    holds = [
        {
            "id": uuid7(),
            "ref": human_ref("HLD", 10),
            "debit_account_id": r.debit_account_id,
            "credit_account_id": r.credit_account_id,
            "amount": r.amount,
            "currency": r.currency,
            "status": HoldStatus.PENDING.value,
            "posted_amount": 0,
            "description": r.description[:500],
            "expires_at": r.expires_at,
            "created_at": now,
            "resolved_at": None,
            "entry_id": None,
        }
        for r in requests
    ]
    insert_many(session, HOLDS, holds)
    return [cast(uuid.UUID, h["id"]) for h in holds]


def _pending_hold(session: Session, hold_id: uuid.UUID) -> Hold:
    query = select(Hold).where(Hold.id == hold_id).with_for_update()
    hold = session.execute(query.execution_options(populate_existing=True)).scalar_one_or_none()
    if hold is None:
        raise UnknownAccount("no such hold")
    if hold.status != HoldStatus.PENDING.value:
        raise HoldNotPending(f"hold {hold.ref} is already {hold.status}")
    return hold


def _release(session: Session, hold: Hold) -> dict[uuid.UUID, _Locked]:
    locked = _lock(session, {hold.debit_account_id, hold.credit_account_id})
    locked[hold.debit_account_id].dpend -= hold.amount
    locked[hold.credit_account_id].cpend -= hold.amount
    return locked


def post_hold(
    session: Session,
    *,
    ctx: Context,
    hold_id: uuid.UUID,
    amount: int | None = None,
    kind: str = "hold_post",
    description: str | None = None,
    external_ref: str | None = None,
    timezone: str = DEFAULT_TIMEZONE,
) -> uuid.UUID:
    """Post a pending hold, in full or in part (the rest is released), exactly once."""
    hold = _pending_hold(session, hold_id)
    _refuse_expired(hold, ctx.now())
    to_post = hold.amount if amount is None else amount
    if isinstance(to_post, bool) or not isinstance(to_post, int) or to_post <= 0:
        raise InvalidAmount("post a positive whole amount", [FieldProblem(("amount",), "must be > 0")])
    if to_post > hold.amount:
        raise PostExceedsHold(
            f"cannot post {to_post}: hold {hold.ref} is for {hold.amount}",
            [FieldProblem(("amount",), f"at most {hold.amount}")],
        )
    [entry_id] = _post_locked_holds(
        session,
        ctx=ctx,
        holds=[(hold, to_post)],
        kind=kind,
        description=description,
        external_ref=external_ref,
        timezone=timezone,
    )
    return entry_id


def post_holds(
    session: Session,
    *,
    ctx: Context,
    hold_ids: Sequence[uuid.UUID],
    kind: str = "hold_post",
    description: str | None = None,
) -> list[uuid.UUID]:
    """Post many pending holds in full, exactly once each, all or none: the holds and their
    accounts are each locked once and one independent journal entry is posted per hold.
    Returns the entry ids in the holds' order."""
    if not hold_ids:
        return []
    query = select(Hold).where(Hold.id.in_(sorted(set(hold_ids)))).order_by(Hold.id).with_for_update()
    found = {h.id: h for h in session.execute(query.execution_options(populate_existing=True)).scalars()}
    now = ctx.now()
    holds: list[tuple[Hold, int]] = []
    for hold_id in hold_ids:
        hold = found.get(hold_id)
        if hold is None:
            raise UnknownAccount("no such hold")
        if hold.status != HoldStatus.PENDING.value:
            raise HoldNotPending(f"hold {hold.ref} is already {hold.status}")
        _refuse_expired(hold, now)
        holds.append((hold, hold.amount))
    if len(holds) != len(found):
        raise HoldNotPending("a hold was named twice")
    return _post_locked_holds(session, ctx=ctx, holds=holds, kind=kind, description=description)


def _refuse_expired(hold: Hold, now: datetime) -> None:
    if hold.expires_at is not None and hold.expires_at <= now:
        raise HoldNotPending(f"hold {hold.ref} expired at {hold.expires_at.isoformat()}")


def _post_locked_holds(
    session: Session,
    *,
    ctx: Context,
    holds: Sequence[tuple[Hold, int]],
    kind: str,
    description: str | None,
    external_ref: str | None = None,
    timezone: str = DEFAULT_TIMEZONE,
) -> list[uuid.UUID]:
    """Post ``(hold, amount)`` pairs of pending holds the caller has locked and checked: each
    hold's reservation is released in full and ``amount`` of it posted as its own entry."""
    locked = _lock(session, {h.debit_account_id for h, _ in holds} | {h.credit_account_id for h, _ in holds})
    for hold, _ in holds:
        locked[hold.debit_account_id].dpend -= hold.amount
        locked[hold.credit_account_id].cpend -= hold.amount
    drafts = [
        EntryDraft(
            legs=(
                Leg(hold.debit_account_id, Side.DEBIT, to_post, hold.currency),
                Leg(hold.credit_account_id, Side.CREDIT, to_post, hold.currency),
            ),
            kind=kind,
            description=description or hold.description,
            hold_id=hold.id,
            external_ref=external_ref,
        )
        for hold, to_post in holds
    ]
    entry_ids = post(session, ctx=ctx, drafts=drafts, linked=False, timezone=timezone, _locked=locked)
    now = ctx.now()
    for (hold, to_post), entry_id in zip(holds, entry_ids, strict=True):
        hold.status = HoldStatus.POSTED.value
        hold.posted_amount = to_post
        hold.entry_id = entry_id
        hold.resolved_at = now
    session.flush()
    return entry_ids


def void_hold(
    session: Session, *, ctx: Context, hold_id: uuid.UUID, status: HoldStatus = HoldStatus.VOIDED
) -> Hold:
    """Release a pending hold without moving money (voided, or expired by the clock), exactly once."""
    hold = _pending_hold(session, hold_id)
    locked = _release(session, hold)
    _apply_deltas(session, locked)
    hold.status = status.value
    hold.resolved_at = ctx.now()
    session.flush()
    return hold


def expire_due_holds(session: Session, *, ctx: Context, limit: int = 1000) -> int:
    """Expire pending holds whose time has passed. Safe to run from several workers at once."""
    query = (
        select(HOLDS.c.id)
        .where(and_(HOLDS.c.status == HoldStatus.PENDING.value, HOLDS.c.expires_at <= ctx.now()))
        .order_by(HOLDS.c.expires_at)
        .limit(limit)
    )
    if is_postgres(session):
        query = query.with_for_update(skip_locked=True)
    expired = 0
    for hold_id in session.scalars(query).all():
        void_hold(session, ctx=ctx, hold_id=hold_id, status=HoldStatus.EXPIRED)
        expired += 1
    return expired


# --- balances -------------------------------------------------------------------------------------


def balance(session: Session, account_id: uuid.UUID) -> Balance:
    row = session.execute(select(ACCOUNTS).where(ACCOUNTS.c.id == account_id)).one_or_none()
    if row is None:
        raise UnknownAccount("no such account")
    return Balance(
        AccountType(row.type), row.debits_posted, row.credits_posted, row.debits_pending, row.credits_pending
    )


def balance_as_of(session: Session, account_id: uuid.UUID, at: datetime) -> Balance:
    """The posted balance at a past instant, from the postings themselves (pending is not historical)."""
    account_type = session.scalar(select(ACCOUNTS.c.type).where(ACCOUNTS.c.id == account_id))
    if account_type is None:
        raise UnknownAccount("no such account")
    sums = dict(
        session.execute(
            select(POSTINGS.c.side, func.coalesce(func.sum(POSTINGS.c.amount), 0))
            .join(ENTRIES, ENTRIES.c.id == POSTINGS.c.entry_id)
            .where(
                POSTINGS.c.account_id == account_id, POSTINGS.c.created_at <= at, ENTRIES.c.posted.is_(True)
            )
            .group_by(POSTINGS.c.side)
        ).all()
    )
    return Balance(AccountType(account_type), int(sums.get("D", 0)), int(sums.get("C", 0)), 0, 0)


@dataclass(frozen=True)
class StatementLine:
    at: datetime
    value_date: date
    entry_ref: str
    kind: str
    description: str
    debit: int
    credit: int
    running: int


def statement(
    session: Session, *, account_id: uuid.UUID, since: datetime | None = None, until: datetime | None = None
) -> tuple[int, list[StatementLine]]:
    """Opening balance and lines with a running balance (on the account's normal side)."""
    account_type = AccountType(
        session.scalar(select(ACCOUNTS.c.type).where(ACCOUNTS.c.id == account_id)) or "asset"
    )
    debit_normal = account_type in (AccountType.ASSET, AccountType.EXPENSE)
    opening = 0
    if since is not None:
        opening = balance_as_of(session, account_id, since).posted
    query = (
        select(
            POSTINGS.c.created_at,
            POSTINGS.c.side,
            POSTINGS.c.amount,
            ENTRIES.c.ref,
            ENTRIES.c.kind,
            ENTRIES.c.description,
            ENTRIES.c.value_date,
        )
        .join(ENTRIES, ENTRIES.c.id == POSTINGS.c.entry_id)
        .where(POSTINGS.c.account_id == account_id, ENTRIES.c.posted.is_(True))
        .order_by(POSTINGS.c.created_at, POSTINGS.c.id)
    )
    if since is not None:
        query = query.where(POSTINGS.c.created_at > since)
    if until is not None:
        query = query.where(POSTINGS.c.created_at <= until)
    running = opening
    lines: list[StatementLine] = []
    for row in session.execute(query).all():
        is_debit = row.side == "D"
        running += row.amount if is_debit == debit_normal else -row.amount
        lines.append(
            StatementLine(
                row.created_at,
                row.value_date,
                row.ref,
                row.kind,
                row.description,
                row.amount if is_debit else 0,
                0 if is_debit else row.amount,
                running,
            )
        )
    return opening, lines


def balances_by_purpose(session: Session, currency: str | None = None) -> dict[tuple[str, str], Balance]:
    """Totals per (purpose, currency), for the regulator's fund-flow monitor."""
    query = select(
        ACCOUNTS.c.purpose,
        ACCOUNTS.c.currency,
        ACCOUNTS.c.type,
        func.sum(ACCOUNTS.c.debits_posted),
        func.sum(ACCOUNTS.c.credits_posted),
        func.sum(ACCOUNTS.c.debits_pending),
        func.sum(ACCOUNTS.c.credits_pending),
    ).group_by(ACCOUNTS.c.purpose, ACCOUNTS.c.currency, ACCOUNTS.c.type)
    if currency:
        query = query.where(ACCOUNTS.c.currency == currency)
    out: dict[tuple[str, str], Balance] = {}
    for purpose, cur, typ, dp, cp, dpe, cpe in session.execute(query).all():
        out[(purpose, cur)] = Balance(
            AccountType(typ), int(dp or 0), int(cp or 0), int(dpe or 0), int(cpe or 0)
        )
    return out


def account_totals(session: Session) -> dict[str, dict[str, int]]:
    """Debits and credits per currency over all postings (they must be equal)."""
    rows = session.execute(
        select(POSTINGS.c.currency, POSTINGS.c.side, func.sum(POSTINGS.c.amount)).group_by(
            POSTINGS.c.currency, POSTINGS.c.side
        )
    ).all()
    totals: dict[str, dict[str, int]] = defaultdict(lambda: {"D": 0, "C": 0})
    for currency, side, amount in rows:
        totals[currency][side] = int(amount or 0)
    return dict(totals)
