"""Pure rules of investing: commitment and funding states, ticket checks, and the errors they raise.

Every refusal names the rule it applies, so the API's problem+json and the pages' field messages
can say exactly why a commitment was not taken.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from yunrong.kit.errors import Conflict, FieldProblem, InvalidInput


class RoundStatus(StrEnum):
    OPEN = "open"  # taking commitments until closes_at
    FUNDED = "funded"  # fully (or accepted partially) funded: holds posted, loan booked
    FAILED = "failed"  # deadline passed under the minimum: holds voided
    CANCELLED = "cancelled"  # the demand was withdrawn: holds voided


class CommitmentStatus(StrEnum):
    PENDING = "pending"  # money held in escrow, waiting for the round to close
    POSTED = "posted"  # the round funded: the hold was posted, a note issued
    CANCELLED = "cancelled"  # the investor cancelled (or revoked in the reflection period): hold voided
    VOIDED = "voided"  # the round failed or was cancelled: hold voided


class CommitmentSource(StrEnum):
    MANUAL = "manual"
    AUTOINVEST = "autoinvest"


class LoanStatus(StrEnum):
    CONTRACTING = "contracting"  # agreement generated, waiting for every party's acceptance
    DISBURSING = "disbursing"  # accepted: payout instruction sent to the custodian
    ACTIVE = "active"  # the custodian confirmed the payout: servicing starts
    CANCELLED = "cancelled"  # the payout failed for good or the contract was not accepted in time


class LenderKind(StrEnum):
    INVESTORS = "investors"  # P2P and the other crowd products: one note per investor share
    BANK = "bank"  # a bank's direct offer: one note, the bank's


class OfferStatus(StrEnum):
    OPEN = "open"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"
    SUPERSEDED = "superseded"  # another offer was accepted


# --- refusals ---------------------------------------------------------------------------------------


class CommitmentRefused(InvalidInput):
    code = "commitment-refused"
    title = "The commitment breaks a rule"


class ListingClosed(Conflict):
    code = "listing-closed"
    title = "The listing is not taking commitments"


class CommitmentNotCancellable(Conflict):
    code = "commitment-not-cancellable"
    title = "The commitment can no longer be cancelled"


class OfferNotOpen(Conflict):
    code = "offer-not-open"
    title = "The offer is no longer open"


class LoanNotContracting(Conflict):
    code = "loan-not-contracting"
    title = "The loan's agreement is not awaiting acceptance"


def refuse(rule: str, message: str, field: str = "amount") -> CommitmentRefused:
    """A refusal naming its rule: the rule is the field problem's ``type`` and leads the detail."""
    return CommitmentRefused(f"{rule}: {message}", [FieldProblem((field,), message, type=rule)])


@dataclass(frozen=True)
class Ticket:
    """What one commitment may be, given the round and the investor's money."""

    min_ticket: int
    max_ticket: int
    remaining: int
    available: int


def ticket_problem(amount: int, t: Ticket) -> CommitmentRefused | None:
    """Why ``amount`` may not be committed (None: it may). The last ticket may be smaller than the
    minimum when it exactly fills the round."""
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        return refuse("amount-positive", "the amount must be a positive whole number of minor units")
    if t.remaining <= 0:
        return refuse("fully-committed", "nothing is left to commit to this listing")
    if amount > t.remaining:
        return refuse("over-remaining", f"only {t.remaining} minor units are left to commit")
    if amount < t.min_ticket and amount != t.remaining:
        return refuse("below-minimum", f"the minimum commitment is {t.min_ticket} minor units")
    if amount > t.max_ticket:
        return refuse("above-maximum", f"the maximum commitment is {t.max_ticket} minor units")
    if amount > t.available:
        return refuse("over-balance", f"your available balance is {t.available} minor units")
    return None


def reflection_ends(committed_at: datetime, reflection_days: int) -> datetime | None:
    """Until when a commitment may be revoked without reason (None: no reflection period)."""
    return committed_at + timedelta(days=reflection_days) if reflection_days > 0 else None


def round_outcome(committed: int, target: int, minimum: int | None, accept_partial: bool) -> RoundStatus:
    """What a round becomes at its deadline."""
    if committed >= target:
        return RoundStatus.FUNDED
    if accept_partial and minimum is not None and committed >= minimum and committed > 0:
        return RoundStatus.FUNDED
    return RoundStatus.FAILED
