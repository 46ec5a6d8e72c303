"""Pure rules of the double-entry ledger.

Sign convention, fixed on day one: every leg is a positive amount on the debit side or on the credit
side. Asset and expense accounts grow with debits; liability, equity and income accounts grow with
credits. An entry balances when, per currency, its debits equal its credits. Entries are never
changed or deleted: a mistake is corrected by a reversing entry linked to the one it corrects.

Holds are two-phase transfers, as in TigerBeetle: a pending hold reserves an amount on both
accounts (``debits_pending`` / ``credits_pending``) and is then posted (in full or in part),
voided, or expired, exactly once. Available balance excludes pending outflows.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from yunrong.kit.errors import Conflict, FieldProblem, InvalidInput, NotFound
from yunrong.kit.money import CURRENCY_EXPONENT

MAX_AMOUNT = 2**63 - 1


class AccountType(StrEnum):
    ASSET = "asset"
    LIABILITY = "liability"
    EQUITY = "equity"
    INCOME = "income"
    EXPENSE = "expense"


DEBIT_NORMAL: frozenset[AccountType] = frozenset({AccountType.ASSET, AccountType.EXPENSE})


class Side(StrEnum):
    DEBIT = "D"
    CREDIT = "C"

    @property
    def opposite(self) -> Side:
        return Side.CREDIT if self is Side.DEBIT else Side.DEBIT


class HoldStatus(StrEnum):
    PENDING = "pending"
    POSTED = "posted"
    VOIDED = "voided"
    EXPIRED = "expired"


HOLD_TRANSITIONS: dict[HoldStatus, frozenset[HoldStatus]] = {
    HoldStatus.PENDING: frozenset({HoldStatus.POSTED, HoldStatus.VOIDED, HoldStatus.EXPIRED}),
    HoldStatus.POSTED: frozenset(),
    HoldStatus.VOIDED: frozenset(),
    HoldStatus.EXPIRED: frozenset(),
}


# --- errors named after the broken rule ------------------------------------------------------------


class UnknownAccount(NotFound):
    code = "unknown-account"
    title = "Unknown account"


class UnbalancedEntry(InvalidInput):
    code = "unbalanced-entry"
    title = "Debits and credits differ"


class InvalidAmount(InvalidInput):
    code = "invalid-amount"
    title = "Amounts are positive whole minor units"


class CurrencyMismatch(InvalidInput):
    code = "currency-mismatch"
    title = "Wrong currency for the account"


class InsufficientFunds(Conflict):
    code = "insufficient-funds"
    title = "The account may not be overdrawn"


class HoldNotPending(Conflict):
    code = "hold-not-pending"
    title = "The hold is no longer pending"


class PostExceedsHold(InvalidInput):
    code = "post-exceeds-hold"
    title = "Posting more than was held"


class AlreadyReversed(Conflict):
    code = "already-reversed"
    title = "The entry was already reversed"


class IdempotencyConflict(Conflict):
    code = "idempotency-conflict"
    title = "The idempotency key was used for another request"


# --- legs and entries ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Leg:
    account_id: uuid.UUID
    side: Side
    amount: int
    currency: str


def debit(account_id: uuid.UUID, amount: int, currency: str) -> Leg:
    return Leg(account_id, Side.DEBIT, amount, currency)


def credit(account_id: uuid.UUID, amount: int, currency: str) -> Leg:
    return Leg(account_id, Side.CREDIT, amount, currency)


def transfer(from_id: uuid.UUID, to_id: uuid.UUID, amount: int, currency: str) -> tuple[Leg, Leg]:
    """Move value: debit ``from_id`` and credit ``to_id`` (for two liability accounts this moves an
    obligation from one owner to another)."""
    return (debit(from_id, amount, currency), credit(to_id, amount, currency))


def leg_problems(legs: Sequence[Leg]) -> list[FieldProblem]:
    """Every reason a set of legs is not a valid entry (empty when it is)."""
    problems: list[FieldProblem] = []
    if len(legs) < 2:
        problems.append(FieldProblem(("legs",), "an entry has at least two legs"))
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for i, leg in enumerate(legs):
        if isinstance(leg.amount, bool) or not isinstance(leg.amount, int):
            problems.append(FieldProblem(("legs", i, "amount"), "must be whole minor units"))
            continue
        if leg.amount <= 0:
            problems.append(FieldProblem(("legs", i, "amount"), "must be greater than zero"))
        if leg.amount > MAX_AMOUNT:
            problems.append(FieldProblem(("legs", i, "amount"), "is larger than a 64-bit amount"))
        if leg.currency not in CURRENCY_EXPONENT:
            problems.append(FieldProblem(("legs", i, "currency"), f"unknown currency {leg.currency!r}"))
        totals[leg.currency][0 if leg.side is Side.DEBIT else 1] += leg.amount
    for currency, (debits, credits) in sorted(totals.items()):
        if debits != credits:
            problems.append(
                FieldProblem(("legs",), f"{currency} debits {debits} and credits {credits} differ")
            )
    return problems


def ensure_valid(legs: Sequence[Leg]) -> None:
    problems = leg_problems(legs)
    if not problems:
        return
    amount_problem = any(p.loc[-1] == "amount" for p in problems)
    cls = InvalidAmount if amount_problem else UnbalancedEntry
    raise cls("the entry was refused; no money moved", problems)


def reversed_legs(legs: Iterable[Leg]) -> list[Leg]:
    return [Leg(leg.account_id, leg.side.opposite, leg.amount, leg.currency) for leg in legs]


# --- balances -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Balance:
    account_type: AccountType
    debits_posted: int
    credits_posted: int
    debits_pending: int
    credits_pending: int

    @property
    def posted(self) -> int:
        """The balance on the account's normal side (positive for a healthy account)."""
        if self.account_type in DEBIT_NORMAL:
            return self.debits_posted - self.credits_posted
        return self.credits_posted - self.debits_posted

    @property
    def pending_out(self) -> int:
        return self.credits_pending if self.account_type in DEBIT_NORMAL else self.debits_pending

    @property
    def pending_in(self) -> int:
        return self.debits_pending if self.account_type in DEBIT_NORMAL else self.credits_pending

    @property
    def available(self) -> int:
        """What may still leave the account: posted balance less pending outflows."""
        return self.posted - self.pending_out


def would_overdraw(
    account_type: AccountType,
    balance: Balance,
    *,
    debit_posted: int = 0,
    credit_posted: int = 0,
    debit_pending: int = 0,
    credit_pending: int = 0,
) -> bool:
    after = Balance(
        account_type,
        balance.debits_posted + debit_posted,
        balance.credits_posted + credit_posted,
        balance.debits_pending + debit_pending,
        balance.credits_pending + credit_pending,
    )
    return after.available < 0


def net_by_currency(legs: Iterable[Leg]) -> dict[str, int]:
    """Debits minus credits per currency: zero everywhere for a balanced set."""
    net: dict[str, int] = defaultdict(int)
    for leg in legs:
        net[leg.currency] += leg.amount if leg.side is Side.DEBIT else -leg.amount
    return dict(net)
