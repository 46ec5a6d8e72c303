"""Pure rules of bank instructions and the bank's signed callbacks."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from enum import StrEnum

from yunrong.kit.errors import Conflict, NotAuthenticated, YunrongError


class InstructionKind(StrEnum):
    DEPOSIT = "deposit"  # credit an investor's deposit into escrow
    WITHDRAWAL = "withdrawal"  # pay an investor out to their own verified account
    PAYOUT = "payout"  # pay an enterprise out to its verified account
    REFUND = "refund"  # return money to where it came from
    COLLECTION = "collection"  # collect a repayment into a loan's collection account
    TRANSFER = "transfer"  # move between sub-accounts inside the escrow


class InstructionStatus(StrEnum):
    PENDING = "pending"  # sent; money moves only when the bank confirms
    CONFIRMED = "confirmed"
    FAILED = "failed"


INSTRUCTION_TRANSITIONS: dict[InstructionStatus, frozenset[InstructionStatus]] = {
    InstructionStatus.PENDING: frozenset({InstructionStatus.CONFIRMED, InstructionStatus.FAILED}),
    InstructionStatus.CONFIRMED: frozenset(),
    InstructionStatus.FAILED: frozenset(),
}


class CallbackOutcome(StrEnum):
    APPLIED = "applied"  # the first word on this instruction: money moved (or the hold was voided)
    DUPLICATE = "duplicate"  # the same callback again: nothing happens
    ALREADY_FINAL = "already_final"  # another callback said the same thing before: nothing happens
    CONFLICT = "conflict"  # says the opposite of what the bank said before, or another amount: alert
    UNKNOWN_INSTRUCTION = "unknown_instruction"


SIGNATURE_TOLERANCE_SECONDS = 300


class ForgedCallback(NotAuthenticated):
    code = "forged-callback"
    title = "The callback's signature is not the bank's"


class NoCustodian(Conflict):
    code = "no-custodian"
    title = "No admitted custodian bank"


class AccountNotVerified(YunrongError):
    status = 422
    code = "account-not-verified"
    title = "The bank account is not verified"


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over ``timestamp`` + ``.`` + the raw body, hex encoded."""
    return hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def signature_problem(
    secret: bytes, timestamp: str | None, body: bytes, signature: str | None, now: datetime
) -> str | None:
    """None when the callback is the bank's and fresh; otherwise why it is refused."""
    if not timestamp or not signature:
        return "the signature headers are missing"
    try:
        sent = int(timestamp)
    except ValueError:
        return "the timestamp is not a number"
    if abs(now.timestamp() - sent) > SIGNATURE_TOLERANCE_SECONDS:
        return "the timestamp is stale (a replay?)"
    if not hmac.compare_digest(sign(secret, timestamp, body), signature):
        return "the signature does not match"
    return None
