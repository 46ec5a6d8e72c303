"""Step 5: investors commit money to a listing; the round funds a loan or gives the money back.

A commitment is a two-phase hold in escrow: the investor's available money is reserved against the
enterprise's payout account and nothing moves yet. The round's running total changes only under the
round's row lock, in the same transaction as the hold, so concurrent commitments can never overfund
a listing. When the round is full (and, under a reflection period, once every commitment's period has
passed) each hold is posted exactly once and a loan is booked with one note per investor; when the
deadline passes short of the target, each hold is voided exactly once and the money is free again,
unless the enterprise accepted partial funding above its stated minimum.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from yunrong.config import Settings, get_settings
from yunrong.custody import accounts
from yunrong.db import insert_many
from yunrong.decisions.service import current_decision
from yunrong.demands.model import DemandStatus, Product
from yunrong.demands.tables import Demand
from yunrong.identity.model import Action, Context, InvestorKind, OrgType
from yunrong.identity.service import require
from yunrong.identity.tables import Organisation
from yunrong.investing import model
from yunrong.investing.model import CommitmentSource, CommitmentStatus, RoundStatus
from yunrong.investing.tables import Commitment, FundingRound, KnowledgeTest, Loan, Note
from yunrong.kit.clock import business_date
from yunrong.kit.errors import FieldProblem, InvalidInput, NotFound, PermissionDenied, YunrongError
from yunrong.kit.ids import human_ref, uuid7
from yunrong.kit.money import Money
from yunrong.ledger import service as ledger
from yunrong.matching import model as matching_model
from yunrong.matching.service import investor_profile, rating_of
from yunrong.messaging.service import Message, notify_organisation
from yunrong.parties import service as parties
from yunrong.parties.tables import Investor, Qualification
from yunrong.supervision import service as audit
from yunrong.supervision.model import AuditFields
from yunrong.verification.listings import LISTED

# --- rounds --------------------------------------------------------------------------------------


# NO KEY UPDATE (PostgreSQL): a commitment staged by another transaction refers to the round, and
# inserting it need not wait for this lock (see stage_commitments).
_ROUND = select(FundingRound).where(FundingRound.demand_id == bindparam("demand_id"))
_LOCK_ROUND = _ROUND.with_for_update(key_share=True).execution_options(populate_existing=True)


def _lock_round(session: Session, demand_id: uuid.UUID) -> FundingRound | None:
    return session.execute(_LOCK_ROUND, {"demand_id": demand_id}).scalar_one_or_none()


def open_round(session: Session, *, ctx: Context, demand: Demand, settings: Settings) -> FundingRound | None:
    """Open the funding window of a listed crowd-funded demand with a price (idempotent). Bank loans
    are funded by banks' offers, and a declined or unpriced demand has no round."""
    existing = session.scalar(select(FundingRound).where(FundingRound.demand_id == demand.id))
    if existing is not None:
        return existing
    if demand.product == Product.BANK_LOAN.value or demand.status not in LISTED:
        return None
    decision = current_decision(session, demand.id)
    if decision is None or decision.annual_rate is None:
        return None
    declined = decision.declined if decision.override_declined is None else decision.override_declined
    if declined or decision.annual_rate * 100 > demand.max_annual_rate:
        return None  # declined, or priced above the rate the enterprise said it would pay
    now = ctx.now()
    from yunrong.investing import contracts
    from yunrong.investing.loans import fee_of

    too_dear = contracts.apr_above_cap(
        session,
        settings=settings,
        principal=demand.amount_minor,
        annual_rate=decision.annual_rate,
        term_months=demand.term_months,
        method=demand.repayment_method,
        fee_minor=fee_of(demand.amount_minor, settings),
        on=business_date(now, settings.timezone),
    )
    if too_dear is not None:
        audit.record(
            session,
            ctx=ctx,
            action="funding.round_refused",
            object_type="demand",
            object_id=demand.id,
            detail={"reason": too_dear},
        )
        return None
    max_ticket = max(settings.min_ticket_minor, demand.amount_minor * settings.max_ticket_share_bp // 10_000)
    row = FundingRound(
        demand_id=demand.id,
        currency=demand.currency,
        target_minor=demand.amount_minor,
        min_funding_minor=demand.min_funding_minor,
        min_ticket_minor=min(settings.min_ticket_minor, demand.amount_minor),
        max_ticket_minor=min(max_ticket, demand.amount_minor),
        committed_minor=0,
        commitments=0,
        annual_rate=decision.annual_rate,
        opens_at=now,
        closes_at=now + timedelta(days=settings.funding_window_days),
        accept_partial=False,
        status=RoundStatus.OPEN.value,
    )
    session.add(row)
    session.flush()
    from yunrong.investing import contracts

    contracts.form_sha256(session, demand, row, settings)  # what investors will accept, fixed now
    audit.record(
        session,
        ctx=ctx,
        action="funding.round_opened",
        object_type="demand",
        object_id=demand.id,
        after={
            "target_minor": row.target_minor,
            "closes_at": row.closes_at.isoformat(),
            "annual_rate": str(row.annual_rate),
        },
    )
    return row


def round_of(session: Session, demand_id: uuid.UUID) -> FundingRound | None:
    return session.scalar(_ROUND, {"demand_id": demand_id})


def visible_round(session: Session, *, ctx: Context, demand_id: uuid.UUID) -> FundingRound:
    """Admitted investors see every round (rounds exist only for listings); the enterprise its
    own; supervisors all."""
    actor = ctx.actor
    demand = session.get(Demand, demand_id)
    row = round_of(session, demand_id) if demand is not None else None
    if row is None or demand is None:
        raise NotFound("this listing has no funding round")
    if actor.sees_all_organisations or demand.organisation_id == actor.organisation_id:
        return row
    if actor.org_type is OrgType.INVESTOR:
        require(ctx, Action.READ_LISTINGS)
        parties.require_admitted(session, ctx=ctx)
        return row
    raise NotFound("this listing has no funding round")


# --- commitments ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CommitRequest:
    demand_id: uuid.UUID
    amount: int
    currency: str
    accept_agreement: bool
    risk_warning_accepted: bool = False


def _investor_org(
    session: Session, ctx: Context, qualifications: Mapping[uuid.UUID, Qualification | None] | None = None
) -> Organisation:
    actor = ctx.actor
    if actor.org_type is not OrgType.INVESTOR or actor.organisation_id is None:
        raise PermissionDenied("only investors commit money to listings")
    parties.require_admitted(session, ctx=ctx, qualifications=qualifications)
    org = session.get(Organisation, actor.organisation_id)
    assert org is not None
    return org


def warning_threshold(policy_floor: int | None, share: Decimal | None, net_worth: int) -> int | None:
    """Above this ticket a person must accept a risk warning (None: no warning in this profile)."""
    if share is None and policy_floor is None:
        return None
    return max(policy_floor or 0, int(Decimal(net_worth) * (share or Decimal(0))))


def _suitability(
    session: Session,
    settings: Settings,
    investor: Organisation,
    demand: Demand,
    req: CommitRequest,
    rating: matching_model.Rating | None,
) -> None:
    """Refuse what the investor's suitability and the policy profile do not allow."""
    policy = settings.policy
    if rating is None:
        raise model.refuse("no-decision", "this listing has no credit decision yet", "demand_id")
    profile = investor_profile(session, investor.id)
    for reason in matching_model.suitable(profile, rating, _ticket_preferences(req.amount, demand), policy):
        if reason.code == "ticket-above-warning":
            continue  # a warning the investor may accept, handled below
        raise model.refuse("outside-suitability", reason.en, "demand_id")
    row = session.get(Investor, investor.id)
    person = row is None or row.kind == InvestorKind.PERSON.value
    if person and policy.knowledge_test_required:
        test = session.get(KnowledgeTest, investor.id)
        if test is None or not test.passed:
            raise model.refuse(
                "knowledge-test", "pass the entry knowledge test before investing", "knowledge_test"
            )
    threshold = warning_threshold(
        policy.warning_ticket_floor, policy.warning_net_worth_share, row.net_worth_minor if row else 0
    )
    if person and threshold is not None and req.amount > threshold and not req.risk_warning_accepted:
        raise model.refuse(
            "risk-warning",
            f"above {Money(threshold, demand.currency)} you must read the risk warning and accept it",
            "risk_warning_accepted",
        )


def _ticket_preferences(amount: int, demand: Demand) -> matching_model.Preferences:
    """Suitability is checked for this ticket, whatever the investor's standing preferences."""
    return matching_model.Preferences(
        currency=demand.currency,
        amount_per_loan_minor=amount,
        total_budget_minor=amount,
        min_term_months=1,
        max_term_months=max(1, demand.term_months),
    )


@dataclass
class ListingFacts:
    """What every commitment to one listing needs, read once however many arrive together."""

    demand: Demand | None  # None: no such listing
    funding: FundingRound | None = None
    rating: matching_model.Rating | None = None  # None: no credit decision yet
    payout_account_id: uuid.UUID | None = None
    form_sha256: str | None = None


def listing_facts(
    session: Session,
    *,
    ctx: Context,
    settings: Settings,
    demand_id: uuid.UUID,
    payout_accounts: dict[tuple[uuid.UUID, str], uuid.UUID] | None = None,
) -> ListingFacts:
    """What every commitment to the listing needs; ``payout_accounts`` (enterprise and currency to
    account id), if given, is asked first and told what was found."""
    demand = session.get(Demand, demand_id)
    if demand is None:
        return ListingFacts(None)
    funding = round_of(session, demand.id)
    if demand.status not in LISTED and funding is None:
        return ListingFacts(None)
    facts = ListingFacts(demand, funding)
    if demand.product == Product.BANK_LOAN.value:
        return facts
    facts.funding = funding or open_round(session, ctx=ctx, demand=demand, settings=settings)
    if facts.funding is None:
        return facts
    decision = current_decision(session, demand.id)
    facts.rating = None if decision is None else rating_of(decision)
    payouts = payout_accounts if payout_accounts is not None else {}
    payout_key = (demand.organisation_id, demand.currency)
    if payout_key not in payouts:
        enterprise = session.get(Organisation, demand.organisation_id)
        assert enterprise is not None
        payouts[payout_key] = accounts.enterprise_payout(session, ctx, enterprise, demand.currency).id
    facts.payout_account_id = payouts[payout_key]
    facts.form_sha256 = agreement_form_sha256(session, demand, facts.funding)
    return facts


@dataclass
class Lookups:
    """What a batch of commitments reads once for all (one commitment reads each as it goes)."""

    qualifications: Mapping[uuid.UUID, Qualification | None] | None = None
    listings: dict[uuid.UUID, ListingFacts] = field(default_factory=dict)
    #: (investor, currency) and (enterprise, currency) to the ids of their available-money and
    #: payout accounts: known beforehand, or found (and opened if missing) as the checks go.
    available_accounts: dict[tuple[uuid.UUID, str], uuid.UUID] = field(default_factory=dict)
    payout_accounts: dict[tuple[uuid.UUID, str], uuid.UUID] = field(default_factory=dict)


@dataclass(frozen=True)
class Prepared:
    """A commitment that passed every check that needs no lock; the rest is decided under it."""

    ctx: Context
    req: CommitRequest
    investor: Organisation
    facts: ListingFacts
    available_account_id: uuid.UUID
    source: CommitmentSource = CommitmentSource.MANUAL
    rule_id: uuid.UUID | None = None

    @property
    def demand(self) -> Demand:
        assert self.facts.demand is not None
        return self.facts.demand

    @property
    def funding(self) -> FundingRound:
        assert self.facts.funding is not None
        return self.facts.funding


def prepare_commitment(
    session: Session,
    *,
    ctx: Context,
    req: CommitRequest,
    settings: Settings,
    source: CommitmentSource = CommitmentSource.MANUAL,
    rule_id: uuid.UUID | None = None,
    lookups: Lookups | None = None,
) -> Prepared:
    """Every check that needs no lock, in the order a refusal is reported: the investor, the
    listing, the request, the round's state and the investor's suitability."""
    require(ctx, Action.COMMIT_FUNDS)
    lookups = lookups or Lookups()
    investor = _investor_org(session, ctx, lookups.qualifications)
    facts = lookups.listings.get(req.demand_id)
    if facts is None:
        facts = listing_facts(
            session,
            ctx=ctx,
            settings=settings,
            demand_id=req.demand_id,
            payout_accounts=lookups.payout_accounts,
        )
        lookups.listings[req.demand_id] = facts
    demand = facts.demand
    if demand is None:
        raise NotFound("no such listing")
    if demand.organisation_id == investor.id:
        raise model.refuse("own-listing", "you cannot invest in your own demand", "demand_id")
    if req.currency != demand.currency:
        raise model.refuse("currency", f"this listing is in {demand.currency}", "currency")
    if not req.accept_agreement:
        raise model.refuse(
            "agreement-not-accepted", "read and accept the loan agreement form first", "accept_agreement"
        )
    if demand.product == Product.BANK_LOAN.value:
        raise model.ListingClosed("a bank loan is funded by banks' offers, not by commitments")
    if facts.funding is None:
        raise model.ListingClosed("this listing is not taking commitments")
    _refuse_if_closed(facts.funding, ctx.now())
    # The ticket against what was left when the listing was read (the balance is checked under
    # the lock): a full round refuses at once instead of queueing for its lock.
    funding = facts.funding
    problem = model.ticket_problem(
        req.amount,
        model.Ticket(
            min_ticket=funding.min_ticket_minor,
            max_ticket=funding.max_ticket_minor,
            remaining=funding.target_minor - funding.committed_minor,
            available=req.amount,
        ),
    )
    if problem is not None:
        raise problem
    _suitability(session, settings, investor, demand, req, facts.rating)
    available_id = lookups.available_accounts.get((investor.id, demand.currency))
    if available_id is None:
        available_id = accounts.investor_available(session, ctx, investor, demand.currency).id
        lookups.available_accounts[(investor.id, demand.currency)] = available_id
    return Prepared(ctx, req, investor, facts, available_id, source, rule_id)


def create_commitment(
    session: Session,
    *,
    ctx: Context,
    req: CommitRequest,
    settings: Settings | None = None,
    source: CommitmentSource = CommitmentSource.MANUAL,
    rule_id: uuid.UUID | None = None,
) -> Commitment:
    """Commit ``req.amount`` to a listing: checked, held in escrow, counted under the round's lock."""
    settings = settings or get_settings()
    prepared = prepare_commitment(
        session, ctx=ctx, req=req, settings=settings, source=source, rule_id=rule_id
    )
    # The ticket with the balance too (prepare_commitment checked it without), before waiting for
    # the round's lock: a request alone can be refused without queueing.
    funding = prepared.funding
    problem = model.ticket_problem(
        req.amount,
        model.Ticket(
            min_ticket=funding.min_ticket_minor,
            max_ticket=funding.max_ticket_minor,
            remaining=funding.target_minor - funding.committed_minor,
            available=ledger.balance(session, prepared.available_account_id).available,
        ),
    )
    if problem is not None:
        raise problem
    (outcome,) = commit_prepared(session, [prepared], settings=settings)
    if isinstance(outcome, YunrongError):
        raise outcome
    row = session.get(Commitment, outcome.id)
    assert row is not None
    return row


@dataclass(frozen=True)
class CommitmentRecord:
    """A commitment as written (what the API answers with), without loading it back."""

    id: uuid.UUID
    ref: str
    demand_id: uuid.UUID
    amount_minor: int
    currency: str
    status: str
    source: str
    revocable_until: datetime | None
    agreement_sha256: str | None
    created_at: datetime
    resolved_at: datetime | None = None
    resolution: str | None = None


COMMITMENTS = cast(Table, Commitment.__table__)


@dataclass
class Staged:
    """Commitments written but not yet counted: their rows and holds are in the transaction, no
    balance has moved, and no lock is held (:func:`stage_commitments`)."""

    prepared: list[Prepared]
    rows: list[dict[str, Any]]
    holds: list[ledger.HoldRequest]
    records: list[CommitmentRecord]
    audit: list[AuditFields]  # drafted (audit.draft)


def stage_commitments(session: Session, prepared: Sequence[Prepared], *, settings: Settings) -> Staged:
    """Write the commitments and their holds as if all will be accepted, before any lock: the rows
    (two statements for the lot) are invisible to others until the transaction commits, and
    :func:`decide_staged` takes out the ones it refuses. So the round's lock is held only to decide
    and count, not to build and insert rows."""
    rows: list[dict[str, Any]] = []
    holds: list[ledger.HoldRequest] = []
    for p in prepared:
        now = p.ctx.now()
        holds.append(
            ledger.HoldRequest(
                debit_account_id=p.available_account_id,
                credit_account_id=_payout(p),
                amount=p.req.amount,
                currency=p.demand.currency,
                description=f"commitment to {p.demand.ref}",
            )
        )
        rows.append(
            {
                "id": uuid7(),
                "ref": human_ref("CMT", 10),
                "round_id": p.funding.id,
                "demand_id": p.demand.id,
                "investor_org_id": p.investor.id,
                "amount_minor": p.req.amount,
                "currency": p.demand.currency,
                "hold_id": None,
                "status": CommitmentStatus.PENDING.value,
                "source": p.source.value,
                "rule_id": p.rule_id,
                "risk_warning_accepted": p.req.risk_warning_accepted,
                "agreement_sha256": p.facts.form_sha256,
                "revocable_until": model.reflection_ends(now, settings.policy.reflection_days),
                "created_by": p.ctx.actor.email,
                "created_at": now,
                "resolved_at": None,
                "resolution": None,
            }
        )
    if prepared:
        hold_ids = ledger.stage_holds(session, ctx=prepared[0].ctx, requests=holds)
        for row, hold_id in zip(rows, hold_ids, strict=True):
            row["hold_id"] = hold_id
        insert_many(session, COMMITMENTS, rows)
    records = [CommitmentRecord(**{f: row[f] for f in _RECORD_FIELDS}) for row in rows]
    drafts = [
        audit.draft(
            audit.Entry(
                p.ctx,
                "funding.committed",
                "commitment",
                row["id"],
                after={
                    "ref": row["ref"],
                    "demand": p.demand.ref,
                    "amount_minor": row["amount_minor"],
                    "source": row["source"],
                },
            )
        )
        for p, row in zip(prepared, rows, strict=True)
    ]
    return Staged(list(prepared), rows, holds, records, drafts)


def commit_prepared(
    session: Session, prepared: Sequence[Prepared], *, settings: Settings
) -> list[CommitmentRecord | Commitment | YunrongError]:
    """Stage the prepared commitments, then decide them (see the two)."""
    return decide_staged(session, stage_commitments(session, prepared, settings=settings), settings=settings)


def decide_staged(
    session: Session, staged: Staged, *, settings: Settings
) -> list[CommitmentRecord | Commitment | YunrongError]:
    """Decide staged commitments, in order, under their rounds' row locks: each is checked against
    what is left of its round and of the investor's money after the ones before it; the accepted
    ones' holds are reserved and they are counted and audited together (a few statements for the
    lot, so the locks are held briefly); a refused one is deleted with its hold and returned in its
    place as the refusal. A round that fills and closes here answers with its commitments as
    closed."""
    prepared = staged.prepared
    if not prepared:
        return []
    # The rounds' row locks (in demand order), always before any account lock: the closing of a
    # round takes them in the same order, so the two never deadlock.
    rounds: dict[uuid.UUID, FundingRound] = {}
    for demand_id in sorted({p.demand.id for p in prepared}):
        locked_round = _lock_round(session, demand_id)
        assert locked_round is not None
        rounds[demand_id] = locked_round
    locked = ledger.lock_accounts(
        session, {h.debit_account_id for h in staged.holds} | {h.credit_account_id for h in staged.holds}
    )
    available: dict[uuid.UUID, int] = {}
    outcomes: list[CommitmentRecord | Commitment | YunrongError] = []
    accepted: list[int] = []
    for i, p in enumerate(prepared):
        funding = rounds[p.demand.id]
        if p.available_account_id not in available:
            available[p.available_account_id] = locked.balance(p.available_account_id).available
        try:
            _refuse_if_closed(funding, p.ctx.now())
            problem = model.ticket_problem(
                p.req.amount,
                model.Ticket(
                    min_ticket=funding.min_ticket_minor,
                    max_ticket=funding.max_ticket_minor,
                    remaining=funding.target_minor - funding.committed_minor,
                    available=available[p.available_account_id],
                ),
            )
            if problem is not None:
                raise problem
        except YunrongError as refusal:
            outcomes.append(refusal)
            continue
        available[p.available_account_id] -= p.req.amount
        # Counted on the object without marking it changed (written below, in one statement).
        set_committed_value(funding, "committed_minor", funding.committed_minor + p.req.amount)
        set_committed_value(funding, "commitments", funding.commitments + 1)
        outcomes.append(staged.records[i])
        accepted.append(i)
    if len(accepted) < len(prepared):
        refused = sorted(set(range(len(prepared))) - set(accepted))
        session.execute(
            delete(COMMITMENTS).where(COMMITMENTS.c.id.in_([staged.rows[i]["id"] for i in refused]))
        )
        ledger.unstage_holds(session, [staged.rows[i]["hold_id"] for i in refused])
    if not accepted:
        return outcomes
    session.execute(
        _COUNT_ROUND,
        [
            {"round_id": f.id, "committed": f.committed_minor, "count": f.commitments}
            for f in rounds.values()
            if any(prepared[i].demand.id == f.demand_id for i in accepted)
        ],
    )
    # checks the balances again on the locked accounts
    ledger.apply_holds(session, requests=[staged.holds[i] for i in accepted], locked=locked)
    # Of many first commitments arriving together, only the first moves the demand to funding:
    # read it again now that its round is locked (unless it had already moved on).
    for demand_id in {prepared[i].demand.id for i in accepted}:
        first = next(prepared[i] for i in accepted if prepared[i].demand.id == demand_id)
        if first.demand.status == DemandStatus.LISTED.value:
            session.refresh(first.demand)
        if first.demand.status == DemandStatus.LISTED.value:
            from yunrong.demands.service import move

            move(
                session,
                ctx=first.ctx,
                demand=first.demand,
                target=DemandStatus.FUNDING,
                reason="the first commitment arrived",
            )
    audit.record_many(session, [staged.audit[i] for i in accepted])
    for demand_id, funding in rounds.items():
        last = next((prepared[i] for i in reversed(accepted) if prepared[i].demand.id == demand_id), None)
        if (
            last is not None
            and funding.committed_minor == funding.target_minor
            and funding.commitments <= INLINE_CLOSE_LIMIT
            and _reflection_over(session, funding, last.ctx.now())
        ):
            close_round(session, ctx=last.ctx, funding=funding, outcome=RoundStatus.FUNDED, settings=settings)
            outcomes = [
                _reloaded(session, o) if isinstance(o, CommitmentRecord) and o.demand_id == demand_id else o
                for o in outcomes
            ]
    return outcomes


ROUNDS = cast(Table, FundingRound.__table__)
_COUNT_ROUND = (
    update(ROUNDS)
    .where(ROUNDS.c.id == bindparam("round_id"))
    .values(committed_minor=bindparam("committed"), commitments=bindparam("count"))
)
_RECORD_FIELDS = list(CommitmentRecord.__dataclass_fields__)


def _reloaded(session: Session, record: CommitmentRecord) -> Commitment:
    row = session.get(Commitment, record.id)
    assert row is not None
    return row


def _payout(p: Prepared) -> uuid.UUID:
    assert p.facts.payout_account_id is not None
    return p.facts.payout_account_id


#: A round that fills with at most this many commitments is closed by the commitment that fills it;
#: a bigger one by the worker's next ``close_due_rounds`` (within a minute), so that no investor's
#: request waits while thousands of holds are posted. Until then the round is full and refuses more.
INLINE_CLOSE_LIMIT = 200


def _refuse_if_closed(funding: FundingRound, now: datetime) -> None:
    if funding.status == RoundStatus.FUNDED.value:
        raise model.ListingClosed("this listing is fully funded")
    if funding.status != RoundStatus.OPEN.value:
        raise model.ListingClosed(f"this listing's funding round is {funding.status}")
    if now >= funding.closes_at:
        raise model.ListingClosed(f"the funding window closed at {funding.closes_at.isoformat()}")


def agreement_form_sha256(session: Session, demand: Demand, funding: FundingRound) -> str | None:
    """The hash of the agreement form an investor accepts when committing (set by the contracts
    module once agreements are generated; None until then)."""
    from yunrong.investing import contracts

    return contracts.form_sha256(session, demand, funding)


def _reflection_over(session: Session, funding: FundingRound, now: datetime) -> bool:
    """No pending commitment of the round can still be revoked."""
    latest = session.scalar(
        select(func.max(Commitment.revocable_until)).where(
            Commitment.round_id == funding.id, Commitment.status == CommitmentStatus.PENDING.value
        )
    )
    return latest is None or latest <= now


def _own_commitment(session: Session, ctx: Context, commitment_id: uuid.UUID) -> Commitment:
    row = session.get(Commitment, commitment_id)
    if row is None or row.investor_org_id != ctx.actor.organisation_id:
        raise NotFound("no such commitment")
    return row


def cancel_commitment(session: Session, *, ctx: Context, commitment_id: uuid.UUID, reason: str) -> Commitment:
    """Cancel while the round is open (under a reflection period: only within it, without reason);
    the hold is voided exactly once and the round's total goes down."""
    require(ctx, Action.COMMIT_FUNDS)
    row = _own_commitment(session, ctx, commitment_id)
    funding = _lock_round(session, row.demand_id)
    assert funding is not None
    session.refresh(row, with_for_update=True)
    now = ctx.now()
    if row.status != CommitmentStatus.PENDING.value:
        raise model.CommitmentNotCancellable(f"commitment {row.ref} is already {row.status}")
    if funding.status != RoundStatus.OPEN.value:
        raise model.CommitmentNotCancellable("the round has closed")
    if row.revocable_until is not None and now >= row.revocable_until:
        raise model.CommitmentNotCancellable(
            f"the reflection period ended at {row.revocable_until.isoformat()}"
        )
    ledger.void_hold(session, ctx=ctx, hold_id=row.hold_id)
    row.status = CommitmentStatus.CANCELLED.value
    row.resolved_at = now
    row.resolution = reason.strip()[:500] or "cancelled by the investor"
    funding.committed_minor -= row.amount_minor
    funding.commitments -= 1
    session.flush()
    audit.record(
        session,
        ctx=ctx,
        action="funding.commitment_cancelled",
        object_type="commitment",
        object_id=row.id,
        before={"status": "pending"},
        after={"status": row.status},
        detail={"reason": row.resolution},
    )
    return row


def visible_commitment(session: Session, *, ctx: Context, commitment_id: uuid.UUID) -> Commitment:
    require(ctx, Action.READ_COMMITMENTS)
    row = session.get(Commitment, commitment_id)
    if row is None:
        raise NotFound("no such commitment")
    actor = ctx.actor
    if actor.sees_all_organisations or row.investor_org_id == actor.organisation_id:
        return row
    demand = session.get(Demand, row.demand_id)
    if demand is not None and demand.organisation_id == actor.organisation_id:
        return row
    raise NotFound("no such commitment")


def list_commitments(
    session: Session, *, ctx: Context, demand_id: uuid.UUID | None = None, limit: int = 100
) -> Sequence[Commitment]:
    """Investors see their own; an enterprise the commitments to its demands; supervisors all."""
    require(ctx, Action.READ_COMMITMENTS)
    query = select(Commitment).order_by(Commitment.created_at.desc()).limit(min(max(1, limit), 500))
    actor = ctx.actor
    if demand_id is not None:
        query = query.where(Commitment.demand_id == demand_id)
    if actor.sees_all_organisations:
        pass
    elif actor.org_type is OrgType.INVESTOR:
        query = query.where(Commitment.investor_org_id == actor.organisation_id)
    elif actor.org_type is OrgType.ENTERPRISE:
        query = query.join(Demand, Demand.id == Commitment.demand_id).where(
            Demand.organisation_id == actor.organisation_id
        )
    else:
        return []
    return session.scalars(query).all()


# --- the enterprise's choice ----------------------------------------------------------------------


def set_accept_partial(session: Session, *, ctx: Context, demand_id: uuid.UUID, accept: bool) -> FundingRound:
    """The enterprise accepts (or stops accepting) partial funding above its stated minimum."""
    require(ctx, Action.DECIDE_FUNDING)
    demand = session.get(Demand, demand_id)
    if demand is None or demand.organisation_id != ctx.actor.organisation_id:
        raise NotFound("no such demand")
    funding = _lock_round(session, demand_id)
    if funding is None or funding.status != RoundStatus.OPEN.value:
        raise model.ListingClosed("this demand has no open funding round")
    if accept and demand.min_funding_minor is None:
        raise InvalidInput(
            "the demand states no minimum funding, so partial funding cannot be accepted",
            [FieldProblem(("accept_partial",), "the demand has no minimum")],
        )
    funding.accept_partial = accept
    audit.record(
        session,
        ctx=ctx,
        action="funding.partial_accepted" if accept else "funding.partial_refused",
        object_type="demand",
        object_id=demand.id,
        after={"accept_partial": accept, "min_funding_minor": demand.min_funding_minor},
    )
    session.flush()
    return funding


# --- closing -------------------------------------------------------------------------------------


def close_round(
    session: Session, *, ctx: Context, funding: FundingRound, outcome: RoundStatus, settings: Settings
) -> Loan | None:
    """Post every pending hold and book the loan (funded), or void every pending hold (failed or
    cancelled). The caller holds the round's row lock."""
    demand = session.get(Demand, funding.demand_id)
    assert demand is not None
    pending = session.scalars(
        select(Commitment)
        .where(Commitment.round_id == funding.id, Commitment.status == CommitmentStatus.PENDING.value)
        .order_by(Commitment.created_at, Commitment.id)
    ).all()
    now = ctx.now()
    funding.status = outcome.value
    funding.closed_at = now
    loan: Loan | None = None
    if outcome is RoundStatus.FUNDED:
        shares: dict[uuid.UUID, int] = {}
        ledger.post_holds(
            session,
            ctx=ctx,
            hold_ids=[c.hold_id for c in pending],
            kind="funding",
            description=f"funding {demand.ref}",
        )
        for c in pending:
            c.status = CommitmentStatus.POSTED.value
            c.resolved_at = now
            c.resolution = "the round funded"
            shares[c.investor_org_id] = shares.get(c.investor_org_id, 0) + c.amount_minor
        from yunrong.investing import loans

        loan = loans.book_loan(
            session,
            ctx=ctx,
            demand=demand,
            principal=sum(shares.values()),
            annual_rate=funding.annual_rate,
            lenders=sorted(shares.items(), key=lambda kv: str(kv[0])),
            settings=settings,
        )
        funding.loan_id = loan.id
        from yunrong.demands.service import move

        move(session, ctx=ctx, demand=demand, target=DemandStatus.FUNDED, reason=f"funded: loan {loan.ref}")
    else:
        for c in pending:
            ledger.void_hold(session, ctx=ctx, hold_id=c.hold_id)
            c.status = CommitmentStatus.VOIDED.value
            c.resolved_at = now
            c.resolution = f"the round {outcome.value}"
            _tell_investor(session, ctx, c, demand)
        funding.committed_minor = 0
        if outcome is RoundStatus.FAILED and demand.status in LISTED:
            from yunrong.demands.service import move

            move(
                session,
                ctx=ctx,
                demand=demand,
                target=DemandStatus.FAILED,
                reason="the funding window closed short of the target",
            )
    audit.record(
        session,
        ctx=ctx,
        action=f"funding.round_{outcome.value}",
        object_type="demand",
        object_id=demand.id,
        after={
            "committed_minor": sum(c.amount_minor for c in pending),
            "commitments": len(pending),
            "loan": loan.ref if loan else None,
        },
    )
    session.flush()
    return loan


def _tell_investor(session: Session, ctx: Context, c: Commitment, demand: Demand) -> None:
    shown = str(Money(c.amount_minor, c.currency))
    notify_organisation(
        session,
        ctx=ctx,
        organisation_id=c.investor_org_id,
        message=Message(
            kind="funding.released",
            subject_en=f"{demand.ref} was not funded: {shown} is free again",
            subject_zh=f"{demand.ref} 未募集成功：{shown} 已解冻",
            body_en=f"Your commitment {c.ref} was released; the money is available in your account.",
            body_zh=f"您的出借承诺 {c.ref} 已解除，资金已回到可用余额。",
            link="/investor/money",
        ),
    )


def cancel_round(
    session: Session, *, ctx: Context, demand_id: uuid.UUID, settings: Settings | None = None
) -> None:
    """The demand was withdrawn: release every commitment."""
    funding = _lock_round(session, demand_id)
    if funding is not None and funding.status == RoundStatus.OPEN.value:
        close_round(
            session,
            ctx=ctx,
            funding=funding,
            outcome=RoundStatus.CANCELLED,
            settings=settings or get_settings(),
        )


def close_due_rounds(session: Session, *, ctx: Context, settings: Settings, limit: int = 100) -> int:
    """Close rounds whose window has passed, and full rounds whose reflection periods are over."""
    now = ctx.now()
    due = session.scalars(
        select(FundingRound.demand_id)
        .where(FundingRound.status == RoundStatus.OPEN.value)
        .order_by(FundingRound.closes_at)
        .limit(limit * 10)
    ).all()
    closed = 0
    for demand_id in due:
        funding = _lock_round(session, demand_id)
        if funding is None or funding.status != RoundStatus.OPEN.value:
            continue
        full = funding.committed_minor >= funding.target_minor
        if full and _reflection_over(session, funding, now):
            close_round(session, ctx=ctx, funding=funding, outcome=RoundStatus.FUNDED, settings=settings)
        elif now >= funding.closes_at:
            demand = session.get(Demand, demand_id)
            outcome = model.round_outcome(
                funding.committed_minor,
                funding.target_minor,
                demand.min_funding_minor if demand else None,
                funding.accept_partial,
            )
            if outcome is RoundStatus.FUNDED and not _reflection_over(session, funding, now):
                continue
            close_round(session, ctx=ctx, funding=funding, outcome=outcome, settings=settings)
        else:
            continue
        closed += 1
        if closed >= limit:
            break
    return closed


def visible_loan_notes(session: Session, loan: Loan) -> Sequence[Note]:
    return session.scalars(select(Note).where(Note.loan_id == loan.id).order_by(Note.ref)).all()
