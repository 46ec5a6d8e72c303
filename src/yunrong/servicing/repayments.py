"""Repayments: the enterprise pays into its loan's collection account through the custodian; when
the bank confirms, the money is allocated to what is owed and distributed to the note holders, in
the callback's transaction.

- **Collection.** `create_repayment` instructs the custodian to collect from the enterprise's own
  verified account (kind ``collection``). Nothing is booked until the bank confirms; then escrow
  cash rises against the loan's collection account (DR escrow_cash, CR loan_collection).
- **Allocation** (:mod:`yunrong.servicing.allocation`): the new money plus any overpayment held
  pays fees → penalty → interest → principal, oldest instalment first (configurable per product).
  A *scheduled* repayment pays what has fallen due (instalments whose due date is on or before the
  value date); anything beyond is held in the collection account (``LoanServicing.overpayment``)
  and used first by the next repayment (or by `apply_overpayment` when an instalment falls due),
  or, on request, refunded to the enterprise's verified account.
- **Early repayment** also pays the current period's interest *to the value date*: the outstanding
  principal × the contract rate × the day count's year fraction from the period's start, rounded
  half to even (the schedule's own rule); no prepayment penalty. In full it settles everything and
  closes the loan; in part it reduces the principal and writes the schedule again as a new version
  (old rows ``superseded``): the paid rows, one paid row for the early repayment itself (due on the
  value date), then a new schedule from the value date whose first instalment keeps the old due
  date, either keeping the number of instalments (``smaller_instalment``) or keeping the
  instalment (``shorter_term``: the fewest periods whose level payment, or per-period principal,
  is not above today's). `preview_early_repayment` returns exactly that plan without writing it.
- **Distribution**: principal, interest and penalty go to the notes pro rata to their outstanding
  principal (largest remainder), less the platform's disclosed service fee of
  :data:`SERVICE_FEE_BP` on interest, in one entry: DR loan_collection, CR each holder's available
  account and the platform's fee income. The memo loan book falls by the debt settled (DR
  investor_claims, CR loan_book) for the principal, the penalty and the interest the end of day
  had booked as accrued. A bank loan has one note, the bank's: the same path pays the bank.

The end of day (another module) accrues ``interest_accrued`` and ``penalty_accrued`` and books
them on the loan book; a repayment lowers them by what it pays (never below zero).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yunrong.config import Settings, get_settings
from yunrong.custody import accounts
from yunrong.custody import service as custody
from yunrong.custody.model import InstructionKind, InstructionStatus
from yunrong.custody.tables import Instruction
from yunrong.identity.model import Action, Context, OrgType
from yunrong.identity.service import require
from yunrong.identity.tables import Organisation
from yunrong.investing.model import LoanStatus
from yunrong.investing.tables import Loan, Note
from yunrong.kit.clock import business_date
from yunrong.kit.errors import FieldProblem, InvalidInput, NotFound, PermissionDenied
from yunrong.kit.ids import human_ref
from yunrong.kit.money import Money
from yunrong.ledger import service as ledger
from yunrong.ledger.model import Leg, credit, debit, transfer
from yunrong.messaging.service import Message, notify_organisation
from yunrong.servicing.allocation import (
    SHORTER_TERM_METHODS,
    EarlyOption,
    Kind,
    Plan,
    Row,
    Share,
    Terms,
    distribute,
    plan_repayment,
)
from yunrong.servicing.daycount import DayCount
from yunrong.servicing.schedules import Frequency
from yunrong.servicing.tables import Distribution, Instalment, LoanServicing, Repayment
from yunrong.supervision import service as audit

#: The platform's disclosed service fee on the interest it collects for the note holders, in basis
#: points of that interest (1 000 = 10 %), rounded half up to the fen. (To move to Settings.)
SERVICE_FEE_BP = 1_000

#: States in which the loan takes no more repayments.
FINISHED_STATES = frozenset({"closed", "written_off"})


# --- who may repay ----------------------------------------------------------------------------------


def _require_repayer(ctx: Context) -> None:
    require(ctx, Action.REPAY_LOAN)  # the borrower's administrator (or the platform itself)


def repayable_loan(session: Session, *, ctx: Context, loan_id: uuid.UUID, lock: bool = False) -> Loan:
    """The caller's own loan (404 for anyone else's), before anything else is looked at."""
    _require_repayer(ctx)
    query = select(Loan).where(Loan.id == loan_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    loan = session.scalar(query)
    if loan is None or not (ctx.actor.is_system or loan.enterprise_org_id == ctx.actor.organisation_id):
        raise NotFound("no such loan of yours / 没有这笔借款")
    return loan


def _servicing(session: Session, loan: Loan, *, lock: bool = False) -> LoanServicing:
    """The loan's servicing row, if the loan is being repaid; a closed loan is not found."""
    query = select(LoanServicing).where(LoanServicing.loan_id == loan.id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    row = session.scalar(query)
    if row is None or loan.status != LoanStatus.ACTIVE.value or row.state in FINISHED_STATES:
        raise NotFound(f"loan {loan.ref} is not being repaid / 借款 {loan.ref} 不在还款期")
    return row


def _rows(session: Session, loan_id: uuid.UUID, version: int) -> list[Instalment]:
    return list(
        session.scalars(
            select(Instalment)
            .where(Instalment.loan_id == loan_id, Instalment.version == version)
            .order_by(Instalment.number)
        )
    )


def row_of(i: Instalment) -> Row:
    return Row(
        i.number,
        i.period_start,
        i.due_date,
        i.principal_due,
        i.interest_due,
        i.principal_paid,
        i.interest_paid,
        i.penalty_paid,
        i.status,
        i.paid_on,
    )


def terms_of(loan: Loan, s: LoanServicing) -> Terms:
    return Terms(
        annual_rate=loan.annual_rate,
        day_count=DayCount(s.day_count),
        frequency=Frequency(s.frequency),
        method=s.method,
        penalty_accrued=s.penalty_accrued,
        principal_outstanding=s.principal_outstanding,
        product=loan.product,
    )


def _check_early(terms: Terms, plan: Plan, kind: Kind, option: EarlyOption | None) -> None:
    """Refuse (422) an early repayment that would not do what was asked, before anything moves."""
    if kind is Kind.EARLY_FULL and not plan.closes:
        raise InvalidInput(
            f"closing the loan today takes {plan.payoff} (minor units), held overpayment included"
            f" / 今日提前结清需 {plan.payoff}（分，含已暂存的多付款）",
            [FieldProblem(("amount",), f"at least the payoff {plan.payoff}")],
        )
    if kind is Kind.EARLY_PARTIAL:
        if option is None:
            raise InvalidInput(
                "choose a shorter term or a smaller instalment / 请选择缩短期限或减少每期还款额",
                [FieldProblem(("early_option",), "required for early_partial")],
            )
        if option is EarlyOption.SHORTER_TERM and terms.method not in SHORTER_TERM_METHODS:
            raise InvalidInput(
                "a shorter term keeps the instalment, which only amortising loans have"
                " / 仅等额本息、等额本金贷款可选择缩短期限",
                [FieldProblem(("early_option",), "use smaller_instalment")],
            )
        if plan.closes:
            raise InvalidInput(
                "this amount settles the whole loan: repay it in full instead"
                " / 该金额已足以结清，请选择提前结清",
                [FieldProblem(("kind",), "use early_full")],
            )
        if plan.kind is not Kind.EARLY_PARTIAL:
            raise InvalidInput(
                "the amount does not go beyond what is due and the interest to date, so no principal"
                " would be repaid early / 金额未超过应还款项与截至今日的利息，无法提前偿还本金",
                [FieldProblem(("amount",), f"more than {plan.payoff - plan.principal_after}")],
            )


# --- use cases ------------------------------------------------------------------------------------


def _value_date(ctx: Context, settings: Settings | None) -> date:
    return business_date(ctx.now(), (settings or get_settings()).timezone)


def _plan_for(
    session: Session,
    loan: Loan,
    s: LoanServicing,
    money: int,
    kind: Kind,
    option: EarlyOption | None,
    on: date,
) -> Plan:
    rows = [row_of(i) for i in _rows(session, loan.id, s.schedule_version)]
    return plan_repayment(terms_of(loan, s), rows, money=money, kind=kind, option=option, value_date=on)


def _amount_problem(amount: int) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise InvalidInput(
            "the amount must be positive / 金额须大于零",
            [FieldProblem(("amount",), "must be greater than zero")],
        )


def preview_early_repayment(
    session: Session,
    ctx: Context,
    loan_id: uuid.UUID,
    amount: int,
    option: EarlyOption | str,
    *,
    settings: Settings | None = None,
) -> Plan:
    """What an early partial repayment of ``amount`` today would do: the new schedule, unwritten."""
    loan = previewable_loan(session, ctx=ctx, loan_id=loan_id)
    s = _servicing(session, loan)
    _amount_problem(amount)
    chosen = _option(option)
    plan = _plan_for(
        session, loan, s, amount + s.overpayment, Kind.EARLY_PARTIAL, chosen, _value_date(ctx, settings)
    )
    _check_early(terms_of(loan, s), plan, Kind.EARLY_PARTIAL, chosen)
    return plan


def previewable_loan(session: Session, *, ctx: Context, loan_id: uuid.UUID) -> Loan:
    """The borrower (admin or staff) and supervisors preview; other parties of the loan may not."""
    from yunrong.investing.loans import visible_loan

    loan = visible_loan(session, ctx=ctx, loan_id=loan_id)
    if not ctx.actor.sees_all_organisations and ctx.actor.org_type is not OrgType.ENTERPRISE:
        raise PermissionDenied("only the borrower previews its repayments / 仅借款企业可预览还款")
    return loan


def _option(option: EarlyOption | str | None) -> EarlyOption | None:
    if option is None or option == "":
        return None
    try:
        return EarlyOption(option)
    except ValueError:
        raise InvalidInput(
            "unknown early repayment option / 未知的提前还款方式",
            [FieldProblem(("early_option",), "shorter_term or smaller_instalment")],
        ) from None


def create_repayment(
    session: Session,
    *,
    ctx: Context,
    loan_id: uuid.UUID,
    amount: int,
    kind: Kind | str = Kind.SCHEDULED,
    early_option: EarlyOption | str | None = None,
    refund_overpayment: bool = False,
    settings: Settings | None = None,
) -> Repayment:
    """The borrower pays ``amount`` from its own verified account into the loan's collection
    account. Checked now (amount, kind, what an early repayment needs); allocated and distributed
    when the custodian confirms the money arrived."""
    loan = repayable_loan(session, ctx=ctx, loan_id=loan_id, lock=True)
    s = _servicing(session, loan, lock=True)
    _amount_problem(amount)
    Money(amount, loan.currency)
    try:
        chosen_kind = Kind(kind)
    except ValueError:
        raise InvalidInput(
            "unknown repayment kind / 未知的还款类型",
            [FieldProblem(("kind",), "scheduled, early_full or early_partial")],
        ) from None
    option = _option(early_option)
    if option is not None and chosen_kind is not Kind.EARLY_PARTIAL:
        raise InvalidInput(
            "an early option is for a partial early repayment / 仅部分提前还款需选择方式",
            [FieldProblem(("early_option",), "only with early_partial")],
        )
    if chosen_kind is not Kind.SCHEDULED:
        plan = _plan_for(
            session, loan, s, amount + s.overpayment, chosen_kind, option, _value_date(ctx, settings)
        )
        _check_early(terms_of(loan, s), plan, chosen_kind, option)
    enterprise = session.get(Organisation, loan.enterprise_org_id)
    assert enterprise is not None
    instruction = instruct_collection(session, ctx=ctx, loan=loan, enterprise=enterprise, amount=amount)
    repayment = Repayment(
        ref=human_ref("RP", 10),
        loan_id=loan.id,
        amount_minor=amount,
        currency=loan.currency,
        kind=chosen_kind.value,
        early_option=option.value if option else None,
        status="pending",
        instruction_id=instruction.id,
        allocation={"refund_overpayment": bool(refund_overpayment)},
        created_by=ctx.actor.email,
        created_at=ctx.now(),
    )
    session.add(repayment)
    session.flush()
    audit.record(
        session,
        ctx=ctx,
        action="repayment.created",
        object_type="loan",
        object_id=loan.id,
        after={
            "repayment": repayment.ref,
            "amount_minor": amount,
            "kind": repayment.kind,
            "early_option": repayment.early_option,
            "instruction": instruction.ref,
        },
    )
    return repayment


def instruct_collection(
    session: Session, *, ctx: Context, loan: Loan, enterprise: Organisation, amount: int
) -> Instruction:
    """Ask the custodian to collect ``amount`` from the enterprise's own verified account into the
    loan's collection account (booked DR escrow_cash, CR loan_collection when the bank confirms)."""
    return custody.instruct_inbound(
        session,
        ctx=ctx,
        kind=InstructionKind.COLLECTION,
        owner=enterprise,
        amount=amount,
        currency=loan.currency,
        ledger_account=accounts.loan_collection(session, ctx, loan.ref, loan.currency),
    )


def list_repayments(session: Session, *, ctx: Context, loan_id: uuid.UUID) -> Sequence[Repayment]:
    """A loan's repayments, newest first, for whoever may see the loan."""
    from yunrong.investing.loans import visible_loan

    loan = visible_loan(session, ctx=ctx, loan_id=loan_id)
    return session.scalars(
        select(Repayment)
        .where(Repayment.loan_id == loan.id)
        .order_by(Repayment.created_at.desc(), Repayment.id.desc())
    ).all()


# --- when the bank confirms: allocate and distribute ------------------------------------------------


def _on_settled(session: Session, ctx: Context, instruction: Instruction) -> None:
    if instruction.kind != InstructionKind.COLLECTION.value:
        return
    repayment = session.scalar(
        select(Repayment)
        .where(Repayment.instruction_id == instruction.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if repayment is None or repayment.status != "pending":
        return
    loan = session.get(Loan, repayment.loan_id)
    assert loan is not None
    if instruction.status != InstructionStatus.CONFIRMED.value:
        repayment.status = "failed"
        audit.record(
            session,
            ctx=ctx,
            action="repayment.failed",
            object_type="loan",
            object_id=loan.id,
            after={"repayment": repayment.ref, "reason": instruction.failure_reason},
        )
        return
    servicing = session.get(LoanServicing, loan.id)
    if servicing is not None and servicing.state == "written_off":
        # Written off meanwhile: the money is a recovery, which the defaults module distributes.
        repayment.status = "allocated"
        repayment.allocation = {"recovery": instruction.amount}
        repayment.allocated_at = ctx.now()
        return
    if instruction.entry_id is None:  # the custody module books deposits, not (yet) collections
        instruction.entry_id = ledger.post_entry(
            session,
            ctx=ctx,
            legs=transfer(
                instruction.escrow_account_id,
                instruction.ledger_account_id,
                instruction.amount,
                instruction.currency,
            ),
            kind="collection",
            description=f"repayment {repayment.ref} of loan {loan.ref}",
            external_ref=instruction.ref,
        )
    repayment.status = "confirmed"
    allocate_repayment(session, ctx=ctx, repayment=repayment)


if _on_settled not in custody.SETTLE_HOOKS:
    custody.SETTLE_HOOKS.append(_on_settled)


def allocate_repayment(
    session: Session, *, ctx: Context, repayment: Repayment, settings: Settings | None = None
) -> Plan | None:
    """Allocate a confirmed repayment (with the overpayment held) and distribute it, now."""
    loan = session.get(Loan, repayment.loan_id)
    assert loan is not None
    on = _value_date(ctx, settings)
    s = session.scalar(
        select(LoanServicing)
        .where(LoanServicing.loan_id == loan.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    repayment.value_date = on
    repayment.allocated_at = ctx.now()
    repayment.status = "allocated"
    requested_refund = bool(repayment.allocation.get("refund_overpayment"))
    if s is None or s.state in FINISHED_STATES:  # closed meanwhile: the money goes back
        _refund(session, ctx, loan, repayment.amount_minor, f"repayment {repayment.ref} to a closed loan")
        repayment.allocation = {"refunded": repayment.amount_minor, "reason": "loan closed"}
        return None
    plan = _plan_for(
        session,
        loan,
        s,
        repayment.amount_minor + s.overpayment,
        Kind(repayment.kind),
        _option(repayment.early_option),
        on,
    )
    outcome = _apply(session, ctx, loan, s, plan, "repayment", repayment.id, refund=requested_refund)
    repayment.allocation = {**outcome, "kind_applied": plan.kind.value}
    return plan


def apply_overpayment(session: Session, *, ctx: Context, loan_id: uuid.UUID, value_date: date) -> Plan | None:
    """Use the overpayment held for what has fallen due by ``value_date`` (for the end of day, when
    instalments fall due). Returns None when nothing is held or nothing is due."""
    loan = session.get(Loan, loan_id)
    s = session.scalar(
        select(LoanServicing)
        .where(LoanServicing.loan_id == loan_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if loan is None or s is None or s.overpayment <= 0 or s.state in FINISHED_STATES:
        return None
    plan = _plan_for(session, loan, s, s.overpayment, Kind.SCHEDULED, None, value_date)
    if plan.allocation.allocated == 0:
        return None
    _apply(session, ctx, loan, s, plan, "overpayment", loan.id, refund=False)
    return plan


def _write_rows(session: Session, loan: Loan, s: LoanServicing, plan: Plan) -> None:
    current = _rows(session, loan.id, s.schedule_version)
    if not plan.new_version:
        by_number = {r.number: r for r in plan.rows}
        for row in current:
            new = by_number[row.number]
            row.principal_paid, row.interest_paid, row.penalty_paid = (
                new.principal_paid,
                new.interest_paid,
                new.penalty_paid,
            )
            row.status, row.paid_on = new.status, new.paid_on
        session.flush()
        return
    for row in current:
        row.status = "superseded"
    s.schedule_version += 1
    for r in plan.rows:
        session.add(
            Instalment(
                loan_id=loan.id,
                version=s.schedule_version,
                number=r.number,
                period_start=r.period_start,
                due_date=r.due_date,
                principal_due=r.principal_due,
                interest_due=r.interest_due,
                principal_paid=r.principal_paid,
                interest_paid=r.interest_paid,
                penalty_paid=r.penalty_paid,
                status=r.status,
                paid_on=r.paid_on,
            )
        )
    session.flush()


def _note_weights(session: Session, loan: Loan) -> list[tuple[Note, int]]:
    notes = list(session.scalars(select(Note).where(Note.loan_id == loan.id).order_by(Note.ref)))
    returned = {
        note_id: int(total)
        for note_id, total in session.execute(
            select(Distribution.note_id, func.coalesce(func.sum(Distribution.principal), 0))
            .where(Distribution.loan_id == loan.id)
            .group_by(Distribution.note_id)
        )
    }
    weights = [(n, max(0, n.principal_minor - int(returned.get(n.id, 0)))) for n in notes]
    if not any(w for _, w in weights):
        weights = [(n, n.principal_minor) for n in notes]
    return weights


def _apply(
    session: Session,
    ctx: Context,
    loan: Loan,
    s: LoanServicing,
    plan: Plan,
    source_kind: str,
    source_id: uuid.UUID,
    *,
    refund: bool,
) -> dict[str, Any]:
    a = plan.allocation
    cur = loan.currency
    collection = accounts.loan_collection(session, ctx, loan.ref, cur)
    _write_rows(session, loan, s, plan)

    # Distribution: DR the collection, CR each holder (net) and the platform (fee on interest).
    weighted = _note_weights(session, loan)
    shares = distribute(a.principal, a.interest, a.penalty, [w for _, w in weighted], SERVICE_FEE_BP)
    fee = sum(sh.service_fee for sh in shares) + a.fees
    entry_id: uuid.UUID | None = None
    if a.allocated:
        legs: list[Leg] = [debit(collection.id, a.allocated, cur)]
        orgs = {
            o.id: o
            for o in session.scalars(
                select(Organisation).where(Organisation.id.in_([n.investor_org_id for n, _ in weighted]))
            )
        }
        nets: dict[uuid.UUID, int] = defaultdict(int)
        for (note, _), share in zip(weighted, shares, strict=True):
            nets[note.investor_org_id] += share.net
        for org_id, net in nets.items():
            if net:
                legs.append(credit(accounts.investor_available(session, ctx, orgs[org_id], cur).id, net, cur))
        if fee:
            legs.append(credit(accounts.platform_fee_income(session, ctx, cur).id, fee, cur))
        entry_id = ledger.post_entry(
            session,
            ctx=ctx,
            legs=legs,
            kind="repayment_distribution",
            description=f"{source_kind} of loan {loan.ref} to its note holders",
            external_ref=loan.ref,
        )
    for (note, _), share in zip(weighted, shares, strict=True):
        if share.principal or share.interest or share.penalty:
            session.add(
                Distribution(
                    source_kind=source_kind,
                    source_id=source_id,
                    loan_id=loan.id,
                    note_id=note.id,
                    investor_org_id=note.investor_org_id,
                    principal=share.principal,
                    interest=share.interest,
                    penalty=share.penalty,
                    service_fee=share.service_fee,
                    net=share.net,
                    currency=cur,
                    value_date=plan.value_date,
                    entry_id=entry_id,
                )
            )

    # The loan's servicing state, and the memo loan book falling by the debt settled.
    booked_interest = min(a.interest, s.interest_accrued)
    s.interest_accrued -= booked_interest
    s.penalty_accrued -= min(a.penalty, s.penalty_accrued)
    s.principal_outstanding = plan.principal_after
    released = 0
    if plan.closes:  # anything still accrued is no longer owed: the claims fall with it
        released = s.interest_accrued + s.penalty_accrued
        s.interest_accrued = s.penalty_accrued = 0
    memo = a.principal + booked_interest + a.penalty + released
    if memo:
        ledger.post_entry(
            session,
            ctx=ctx,
            legs=transfer(
                accounts.investor_claims(session, ctx, cur).id,
                accounts.loan_book(session, ctx, cur).id,
                memo,
                cur,
            ),
            kind="loan_repaid",
            description=f"debt of loan {loan.ref} settled",
            external_ref=loan.ref,
        )
    open_rows = [r for r in plan.rows if r.open]
    s.next_due_date = open_rows[0].due_date if open_rows else None
    s.maturity_date = plan.rows[-1].due_date if plan.new_version else s.maturity_date
    if not any(r.due_date <= plan.value_date for r in open_rows) and s.days_past_due:
        s.days_past_due, s.bucket = 0, "current"  # cured; the end of day keeps it so
        if s.state == "delinquent":
            s.state = "performing"
    refunded = 0
    held = plan.held
    if held and (refund or plan.closes):
        refunded, held = held, 0
        _refund(session, ctx, loan, refunded, f"overpayment on loan {loan.ref}")
    s.overpayment = held
    if plan.closes:
        s.state, s.closed_on, s.days_past_due, s.bucket = "closed", plan.value_date, 0, "current"
    s.updated_at = ctx.now()
    session.flush()

    outcome = {
        **a.as_dict(),
        "service_fee": fee - a.fees,
        "held": held,
        "refunded": refunded,
        "interest_unaccrued": a.interest - booked_interest,
        "accrual_released": released,
        "principal_after": plan.principal_after,
        "schedule_version": s.schedule_version,
        "closed": plan.closes,
    }
    audit.record(
        session,
        ctx=ctx,
        action=f"loan.{source_kind}_allocated",
        object_type="loan",
        object_id=loan.id,
        after=outcome,
    )
    if plan.closes:
        audit.record(
            session,
            ctx=ctx,
            action="loan.closed",
            object_type="loan",
            object_id=loan.id,
            after={"closed_on": plan.value_date.isoformat()},
        )
    _tell(session, ctx, loan, plan, weighted, shares)
    return outcome


def _refund(session: Session, ctx: Context, loan: Loan, amount: int, why: str) -> None:
    """Give money held for a loan back: to the enterprise's payout account, then its bank account."""
    enterprise = session.get(Organisation, loan.enterprise_org_id)
    assert enterprise is not None
    cur = loan.currency
    ledger.post_entry(
        session,
        ctx=ctx,
        legs=transfer(
            accounts.loan_collection(session, ctx, loan.ref, cur).id,
            accounts.enterprise_payout(session, ctx, enterprise, cur).id,
            amount,
            cur,
        ),
        kind="repayment_refund",
        description=why,
        external_ref=loan.ref,
    )
    custody.instruct_payout(session, ctx=ctx, enterprise=enterprise, amount=amount, currency=cur)


def _tell(
    session: Session,
    ctx: Context,
    loan: Loan,
    plan: Plan,
    weighted: list[tuple[Note, int]],
    shares: list[Share],
) -> None:
    paid = Money(plan.allocation.allocated, loan.currency)
    notify_organisation(
        session,
        ctx=ctx,
        organisation_id=loan.enterprise_org_id,
        message=Message(
            kind="loan.closed" if plan.closes else "loan.repayment_applied",
            subject_en=f"Loan {loan.ref}: {paid} applied" + (", the loan is repaid" if plan.closes else ""),
            subject_zh=f"借款 {loan.ref}：已入账 {paid}" + ("，借款已结清" if plan.closes else ""),
            body_en=f"Held for later: {Money(plan.held, loan.currency)}.",
            body_zh=f"暂存待用：{Money(plan.held, loan.currency)}。",
            link=f"/enterprise/loans/{loan.id}",
        ),
    )

    def m(minor: int) -> Money:
        return Money(minor, loan.currency)

    for (note, _), share in zip(weighted, shares, strict=True):
        if share.net:
            net = m(share.net)
            notify_organisation(
                session,
                ctx=ctx,
                organisation_id=note.investor_org_id,
                message=Message(
                    kind="loan.distribution",
                    subject_en=f"Loan {loan.ref} repaid {net} on your note {note.ref}",
                    subject_zh=f"借款 {loan.ref} 向您的债权 {note.ref} 回款 {net}",
                    body_en=f"Principal {m(share.principal)}, interest {m(share.interest)}, "
                    f"service fee {m(share.service_fee)}.",
                    body_zh=f"本金 {m(share.principal)}，利息 {m(share.interest)}，"
                    f"服务费 {m(share.service_fee)}。",
                    link="/investor/portfolio",
                ),
            )
