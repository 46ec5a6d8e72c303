"""Restructuring a loan: a payment holiday, a term extension or a re-amortisation, approved by the
lender and applied as a new version of the schedule.

**What is re-scheduled.** The unpaid remainder: the new schedule starts at the *anchor*, the due
date of the last fully paid instalment (the loan's start when none is paid), on the principal still
outstanding, with the loan's rate, method, frequency and day count, by the exact generator
`yunrong.servicing.schedules.build_schedule`. The remaining term is the calendar months from the
anchor to the current maturity.

- ``payment_holiday`` (``months`` = n): no payments for n months. Interest is **accrued, not
  capitalised**: it keeps running on the outstanding principal and is paid with the first
  instalment after the holiday (the first period is a stub of n + 1 periods, charged by the day
  count over its actual days); the remaining instalments follow on the same level payment, so the
  maturity moves n months later. Nothing is added to the principal, so the end of day's accrual is
  never counted twice.
- ``term_extension`` (``months`` = n): the remainder re-amortised over the remaining term + n.
- ``reamortisation``: the same remaining term, a new level payment over it (after arrears or a part
  prepayment).

**Approval.** The enterprise (or the operator) proposes with a reason; the new schedule is computed
and stored on the row as the preview shown to everyone. The lender decides: for a bank loan the bank
(its officer's vote), for investors' loans the holders of a **majority by value** of the notes'
outstanding principal; each note holder votes once, weighted by its note's share of the outstanding
principal (largest remainder). A majority for applies it at once: the paid instalments are copied
unchanged into version n + 1, followed by the re-scheduled remainder; the old unpaid rows are
superseded; the servicing row's version, maturity and next due date move; an audit record keeps
before and after. A majority against (or a tie that makes one impossible) rejects it. Nothing
changes without the approval (`apply_restructuring` refuses, 409). If the loan changed after the
proposal (a payment, another restructuring) the approval cannot apply a stale preview (409):
propose again (the stale proposal is then replaced).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from yunrong.identity.model import Context
from yunrong.investing.tables import Loan
from yunrong.kit.errors import Conflict, FieldProblem, InvalidInput, NotFound, PermissionDenied
from yunrong.kit.ids import human_ref
from yunrong.kit.money import allocate_minor
from yunrong.messaging.service import Message, notify_organisation
from yunrong.servicing.daycount import DayCount, add_months
from yunrong.servicing.defaults import FINISHED_STATES, notes_by_ref, require_action, servicing_of
from yunrong.servicing.schedules import PERIOD_MONTHS, Frequency, Schedule, build_schedule
from yunrong.servicing.tables import Instalment, LoanServicing, Restructuring, RestructuringVote
from yunrong.supervision import service as audit

KINDS = ("payment_holiday", "term_extension", "reamortisation")
MAX_MONTHS = 24

_ZH_KIND = {"payment_holiday": "延期还款", "term_extension": "展期", "reamortisation": "重新分期"}


class RestructuringPending(Conflict):
    code = "restructuring-pending"
    title = "A restructuring of this loan is already awaiting the lender"


class RestructuringNotApproved(Conflict):
    code = "restructuring-not-approved"
    title = "The restructuring is not approved by the lender"


class RestructuringClosed(Conflict):
    code = "restructuring-closed"
    title = "The restructuring is decided"


class AlreadyVoted(Conflict):
    code = "already-voted"
    title = "You voted on this restructuring already"


class RestructuringStale(Conflict):
    code = "restructuring-stale"
    title = "The loan changed since the proposal"


class LoanFinished(Conflict):
    code = "loan-finished"
    title = "The loan can no longer be restructured"


# --- the new schedule (pure apart from reading rows) ---------------------------------------------------


def months_between(start: date, end: date) -> int:
    return (end.year - start.year) * 12 + end.month - start.month


@dataclass(frozen=True)
class Plan:
    anchor: date
    principal: int
    remaining_months: int
    kept: tuple[Instalment, ...]  # paid rows, copied into the new version
    schedule: Schedule

    def basis(self, servicing: LoanServicing) -> dict[str, Any]:
        """What the preview was computed from; an approval applies it only if this is unchanged."""
        return {
            "schedule_version": servicing.schedule_version,
            "principal_outstanding": servicing.principal_outstanding,
            "anchor": self.anchor.isoformat(),
            "paid": [row.number for row in self.kept],
        }


def plan(loan: Loan, servicing: LoanServicing, rows: Sequence[Instalment], kind: str, months: int) -> Plan:
    """The re-scheduled remainder for ``kind`` (see the module docstring)."""
    kept = tuple(r for r in rows if r.status == "paid")
    anchor = max((r.due_date for r in kept), default=servicing.start_date)
    remaining = months_between(anchor, servicing.maturity_date)
    frequency = Frequency(servicing.frequency)
    period = PERIOD_MONTHS[frequency]
    principal = servicing.principal_outstanding
    problems: list[FieldProblem] = []
    if principal <= 0:
        problems.append(FieldProblem(("loan",), "nothing is outstanding / 已无未还本金"))
    if kind != "reamortisation" and months % period:
        problems.append(FieldProblem(("months",), f"must be a whole number of {frequency} periods"))
    term = remaining + (months if kind == "term_extension" else 0)
    if term < period:
        problems.append(
            FieldProblem(
                ("kind",),
                "the loan has matured: only a term extension can re-schedule it / 已到期，仅可展期",
            )
        )
    if problems:
        raise InvalidInput("the restructuring cannot be computed / 无法计算重组后的还款计划", problems)
    schedule = build_schedule(
        principal=principal,
        annual_rate=Decimal(servicing.annual_rate_bp) / 10_000,
        term_months=term,
        method=servicing.method,
        start_date=anchor,
        frequency=frequency,
        day_count=DayCount(servicing.day_count),
        first_due_date=add_months(anchor, months + period) if kind == "payment_holiday" else None,
    )
    return Plan(anchor, principal, remaining, kept, schedule)


def preview_rows(p: Plan) -> list[dict[str, Any]]:
    start = len(p.kept)
    return [
        {
            "number": start + i.number,
            "period_start": i.period_start.isoformat(),
            "due_date": i.due_date.isoformat(),
            "principal_minor": i.principal,
            "interest_minor": i.interest,
            "payment_minor": i.payment,
            "balance_after_minor": i.balance_after,
        }
        for i in p.schedule.instalments
    ]


def _rows(session: Session, servicing: LoanServicing) -> Sequence[Instalment]:
    return session.scalars(
        select(Instalment)
        .where(Instalment.loan_id == servicing.loan_id, Instalment.version == servicing.schedule_version)
        .order_by(Instalment.number)
    ).all()


# --- use cases ----------------------------------------------------------------------------------------


def _visible_loan(session: Session, ctx: Context, loan_id: uuid.UUID) -> Loan:
    from yunrong.investing.loans import visible_loan

    return visible_loan(session, ctx=ctx, loan_id=loan_id)


def _tell_lenders(session: Session, ctx: Context, loan: Loan, message: Message) -> None:
    for note in notes_by_ref(session, loan.id):
        notify_organisation(session, ctx=ctx, organisation_id=note.investor_org_id, message=message)


def create_restructuring(
    session: Session,
    *,
    ctx: Context,
    loan_id: uuid.UUID,
    kind: str,
    months: int,
    reason: str,
) -> Restructuring:
    """The enterprise (or the operator) proposes; the new schedule is computed and stored."""
    require_action(ctx, "propose_restructuring")
    loan = _visible_loan(session, ctx, loan_id)
    problems: list[FieldProblem] = []
    if kind not in KINDS:
        problems.append(FieldProblem(("kind",), f"one of {', '.join(KINDS)}"))
    if kind == "reamortisation":
        months = 0
    elif not 1 <= months <= MAX_MONTHS:
        problems.append(FieldProblem(("months",), f"between 1 and {MAX_MONTHS}"))
    if not reason.strip():
        problems.append(FieldProblem(("reason",), "required / 请说明原因"))
    if problems:
        raise InvalidInput("the proposal has problems; nothing saved / 重组申请有误，未保存", problems)
    servicing = servicing_of(session, loan, lock=True)
    if servicing.state in FINISHED_STATES:
        raise LoanFinished(f"loan {loan.ref} is {servicing.state} / 借款 {loan.ref} 已{servicing.state}")
    p = plan(loan, servicing, _rows(session, servicing), kind, months)
    basis = p.basis(servicing)
    pending = session.scalars(
        select(Restructuring).where(Restructuring.loan_id == loan.id, Restructuring.status == "proposed")
    ).all()
    for old in pending:
        if old.params.get("basis") == basis:
            raise RestructuringPending(
                f"restructuring {old.ref} of this loan awaits the lender / 该借款已有待审批的重组 {old.ref}"
            )
        old.status = "rejected"  # stale: the loan changed since it was proposed
        old.decided_at = ctx.now()
    row = Restructuring(
        ref=human_ref("RS", 10),
        loan_id=loan.id,
        kind=kind,
        params={
            "months": months,
            "basis": basis,
            "old_maturity": servicing.maturity_date.isoformat(),
            "new_maturity": p.schedule.maturity_date.isoformat(),
            "level_payment_minor": p.schedule.level_payment,
            "interest": "accrued" if kind == "payment_holiday" else "scheduled",
        },
        reason=reason.strip()[:2000],
        status="proposed",
        preview=preview_rows(p),
        proposed_by=ctx.actor.email,
        proposed_at=ctx.now(),
        decided_at=None,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        ctx=ctx,
        action="loan.restructuring_proposed",
        object_type="loan",
        object_id=loan.id,
        after={
            "restructuring": row.ref,
            "kind": kind,
            "months": months,
            "new_maturity": row.params["new_maturity"],
        },
        detail={"reason": row.reason},
    )
    _tell_lenders(
        session,
        ctx,
        loan,
        Message(
            kind="loan.restructuring_proposed",
            subject_en=f"Loan {loan.ref}: a {kind.replace('_', ' ')} is proposed; your vote is needed",
            subject_zh=f"借款 {loan.ref} 申请{_ZH_KIND.get(kind, kind)}，请投票",
            body_en=f"Reason: {row.reason}. New maturity {row.params['new_maturity']}.",
            body_zh=f"原因：{row.reason}。新的到期日 {row.params['new_maturity']}。",
            link=f"/api/v1/restructurings/{row.id}",
        ),
    )
    return row


@dataclass(frozen=True)
class Tally:
    total_minor: int
    approve_minor: int
    reject_minor: int
    weights: dict[uuid.UUID, int]  # lender organisation → its weight

    @property
    def approved(self) -> bool:
        return self.approve_minor * 2 > self.total_minor

    @property
    def rejected(self) -> bool:
        return self.reject_minor * 2 >= self.total_minor


def tally(session: Session, loan: Loan, servicing: LoanServicing, restructuring_id: uuid.UUID) -> Tally:
    """Each lender's weight: its note's share of the outstanding principal (largest remainder)."""
    notes = notes_by_ref(session, loan.id)
    base = servicing.principal_outstanding or loan.principal_minor
    parts = allocate_minor(base, [n.principal_minor for n in notes])
    weights: dict[uuid.UUID, int] = {}
    for note, part in zip(notes, parts, strict=True):
        weights[note.investor_org_id] = weights.get(note.investor_org_id, 0) + part
    votes = session.scalars(
        select(RestructuringVote).where(RestructuringVote.restructuring_id == restructuring_id)
    ).all()
    approve = sum(v.weight_minor for v in votes if v.approve)
    reject = sum(v.weight_minor for v in votes if not v.approve)
    return Tally(sum(weights.values()), approve, reject, weights)


def _lender_weight(loan: Loan, t: Tally, org_id: uuid.UUID | None) -> int:
    if org_id is None:
        raise PermissionDenied("only the lender votes / 仅出借方可投票")
    if loan.lender_kind == "bank":
        if org_id != loan.bank_org_id:
            raise NotFound("no such restructuring")
        return t.total_minor  # the bank alone decides its loan
    weight = t.weights.get(org_id)
    if weight is None:
        raise NotFound("no such restructuring")
    return weight


def vote_restructuring(
    session: Session, *, ctx: Context, restructuring_id: uuid.UUID, approve: bool
) -> Restructuring:
    """A lender votes once; a majority by value applies (or rejects) the restructuring at once."""
    row = visible_restructuring(session, ctx=ctx, restructuring_id=restructuring_id)
    require_action(ctx, "vote_restructuring")
    loan = session.get(Loan, row.loan_id)
    assert loan is not None
    servicing = servicing_of(session, loan, lock=True)
    row = session.scalar(select(Restructuring).where(Restructuring.id == row.id).with_for_update()) or row
    if row.status != "proposed":
        raise RestructuringClosed(f"restructuring {row.ref} is {row.status} / 重组 {row.ref} 已{row.status}")
    before = tally(session, loan, servicing, row.id)
    weight = _lender_weight(loan, before, ctx.actor.organisation_id)
    voted = session.scalar(
        select(RestructuringVote.id).where(
            RestructuringVote.restructuring_id == row.id,
            RestructuringVote.organisation_id == ctx.actor.organisation_id,
        )
    )
    if voted is not None:
        raise AlreadyVoted("you voted on this restructuring already / 您已投过票")
    assert ctx.actor.organisation_id is not None
    session.add(
        RestructuringVote(
            restructuring_id=row.id,
            organisation_id=ctx.actor.organisation_id,
            weight_minor=weight,
            approve=approve,
            voted_by=ctx.actor.email,
            voted_at=ctx.now(),
        )
    )
    session.flush()
    audit.record(
        session,
        ctx=ctx,
        action="loan.restructuring_voted",
        object_type="restructuring",
        object_id=row.id,
        after={"approve": approve, "weight_minor": weight},
    )
    now = tally(session, loan, servicing, row.id)
    if now.approved:
        row.status = "approved"
        row.decided_at = ctx.now()
        apply_restructuring(session, ctx=ctx, restructuring=row)
    elif now.rejected:
        row.status = "rejected"
        row.decided_at = ctx.now()
        audit.record(
            session,
            ctx=ctx,
            action="loan.restructuring_rejected",
            object_type="loan",
            object_id=loan.id,
            after={
                "restructuring": row.ref,
                "reject_minor": now.reject_minor,
                "total_minor": now.total_minor,
            },
        )
        notify_organisation(
            session,
            ctx=ctx,
            organisation_id=loan.enterprise_org_id,
            message=Message(
                kind="loan.restructuring_rejected",
                subject_en=f"The lenders rejected restructuring {row.ref} of loan {loan.ref}",
                subject_zh=f"出借方否决了借款 {loan.ref} 的重组申请 {row.ref}",
                body_en="The schedule is unchanged.",
                body_zh="还款计划不变。",
                link=f"/enterprise/loans/{loan.id}",
            ),
        )
    session.flush()
    return row


def apply_restructuring(session: Session, *, ctx: Context, restructuring: Restructuring) -> LoanServicing:
    """Write the approved schedule as the loan's next version (refused unless approved)."""
    if restructuring.status != "approved":
        raise RestructuringNotApproved(
            f"restructuring {restructuring.ref} is {restructuring.status}, not approved by the lender;"
            f" nothing changed / 重组 {restructuring.ref} 未经出借方批准，计划未变更"
        )
    loan = session.get(Loan, restructuring.loan_id)
    assert loan is not None
    servicing = servicing_of(session, loan, lock=True)
    rows = _rows(session, servicing)
    p = plan(loan, servicing, rows, restructuring.kind, int(restructuring.params.get("months", 0)))
    if p.basis(servicing) != restructuring.params.get("basis") or preview_rows(p) != restructuring.preview:
        raise RestructuringStale(
            f"loan {loan.ref} changed since restructuring {restructuring.ref} was proposed; propose again"
            f" / 借款在申请后已变化，请重新申请"
        )
    old_version = servicing.schedule_version
    version = old_version + 1
    before = {
        "schedule_version": old_version,
        "maturity": servicing.maturity_date.isoformat(),
        "next_due_date": servicing.next_due_date.isoformat() if servicing.next_due_date else None,
    }
    for kept in p.kept:
        session.add(
            Instalment(
                loan_id=loan.id,
                version=version,
                number=kept.number,
                period_start=kept.period_start,
                due_date=kept.due_date,
                principal_due=kept.principal_due,
                interest_due=kept.interest_due,
                principal_paid=kept.principal_paid,
                interest_paid=kept.interest_paid,
                penalty_paid=kept.penalty_paid,
                status="paid",
                paid_on=kept.paid_on,
                reminded=kept.reminded,
            )
        )
    offset = max((k.number for k in p.kept), default=0)
    for i in p.schedule.instalments:
        session.add(
            Instalment(
                loan_id=loan.id,
                version=version,
                number=offset + i.number,
                period_start=i.period_start,
                due_date=i.due_date,
                principal_due=i.principal,
                interest_due=i.interest,
                principal_paid=0,
                interest_paid=0,
                penalty_paid=0,
                status="scheduled",
                paid_on=None,
                reminded=False,
            )
        )
    for old in rows:
        if old.status != "paid":
            old.status = "superseded"
    servicing.schedule_version = version
    servicing.maturity_date = p.schedule.maturity_date
    servicing.next_due_date = p.schedule.instalments[0].due_date
    servicing.updated_at = ctx.now()
    restructuring.status = "applied"
    session.flush()
    audit.record(
        session,
        ctx=ctx,
        action="loan.restructured",
        object_type="loan",
        object_id=loan.id,
        before=before,
        after={
            "restructuring": restructuring.ref,
            "kind": restructuring.kind,
            "schedule_version": version,
            "maturity": servicing.maturity_date.isoformat(),
            "next_due_date": servicing.next_due_date.isoformat(),
            "instalments": len(p.schedule.instalments),
        },
    )
    message = Message(
        kind="loan.restructured",
        subject_en=f"Loan {loan.ref} was restructured ({restructuring.kind.replace('_', ' ')})",
        subject_zh=f"借款 {loan.ref} 已完成{_ZH_KIND.get(restructuring.kind, restructuring.kind)}",
        body_en=f"New maturity {servicing.maturity_date}; next payment due {servicing.next_due_date}.",
        body_zh=f"新的到期日 {servicing.maturity_date}，下一期还款日 {servicing.next_due_date}。",
        link=f"/api/v1/loans/{loan.id}/schedule",
    )
    notify_organisation(session, ctx=ctx, organisation_id=loan.enterprise_org_id, message=message)
    _tell_lenders(session, ctx, loan, message)
    return servicing


def visible_restructuring(session: Session, *, ctx: Context, restructuring_id: uuid.UUID) -> Restructuring:
    """Whoever may see the loan sees its restructurings."""
    row = session.get(Restructuring, restructuring_id)
    if row is None:
        raise NotFound("no such restructuring")
    try:
        _visible_loan(session, ctx, row.loan_id)
    except NotFound:
        raise NotFound("no such restructuring") from None
    return row


@dataclass(frozen=True)
class RestructuringView:
    restructuring: Restructuring
    loan: Loan
    tally: Tally
    votes: Sequence[RestructuringVote]


def read_restructuring(session: Session, *, ctx: Context, restructuring_id: uuid.UUID) -> RestructuringView:
    row = visible_restructuring(session, ctx=ctx, restructuring_id=restructuring_id)
    loan = session.get(Loan, row.loan_id)
    assert loan is not None
    servicing = servicing_of(session, loan)
    votes = session.scalars(
        select(RestructuringVote)
        .where(RestructuringVote.restructuring_id == row.id)
        .order_by(RestructuringVote.voted_at, RestructuringVote.id)
    ).all()
    return RestructuringView(row, loan, tally(session, loan, servicing, row.id), votes)
