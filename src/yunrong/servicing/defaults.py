"""Defaults: calling the guarantor (or the insurer), collections, write-off and recoveries, and the
risk reserve's true coverage.

**Who covers what.** A loan's guarantee is the guarantee agency's signed attestation on the loan's
demand (an order of agency type ``guarantee``, result `GuaranteeCommitment`: ``coverage_percent``
and ``cap_minor``); its insurance the insurer's attestation (`InsurancePolicy`: ``coverage_minor``).
Coverage is always recorded there, so no default coverage is assumed: a loan without such an
attestation has no guarantor to call (409).

**Claims.** After the policy's ``guarantee_call_days`` past due the operator (or the system) calls
the guarantor: claim = ``coverage × (principal outstanding + accrued interest)``, rounded half-even
to the fen, never above the guarantee's cap (insurance: never above the policy's cover). The loan
enters default (state ``defaulted``, IFRS 9 stage 3) and the payer has ``CLAIM_PAYMENT_DAYS`` to
pay.

**How the payer pays (one path).** Guarantors and insurers keep a deposit in escrow
(``guarantor_deposit``), paid in through the custodian like any deposit (`create_guarantor_deposit`:
a custodian DEPOSIT instruction from the payer's own verified account, booked when the bank
confirms). `pay_claim` moves the claim from that deposit to the loan's collection account by a
ledger transfer; without enough deposit it is refused (409) and nothing moves.

**Distribution.** The money is applied like a repayment, accrued interest first, then principal
(penalty interest is not covered), to the oldest unpaid instalments, and split among the note
holders pro rata to their notes by largest remainder (`allocate_minor`), each part exact to the fen.
The platform takes no service fee from loss money (guarantee, insurance, reserve, recovery):
``service_fee = 0``. The memo loan book shrinks by what was paid (DR investor_claims, CR loan_book)
and the payer takes over that claim on the enterprise (``Claim.subrogated_minor``): from then on
the enterprise owes the note holders what ``loan_servicing`` shows and the payer what it paid.

**Collections, write-off, recoveries.** `start_collections` puts a loan in the collections stage
(state ``defaulted``, audited with a note). The operator writes a defaulted or non-performing loan
off with a reason (audited, no maker-checker): the investors' remaining debt leaves the memo book
(DR investor_claims, CR loan_book), state ``written_off``. Money recovered afterwards comes in
through the custodian (`create_recovery`: a COLLECTION instruction from the enterprise's verified
account into the loan's collection account); when the bank confirms, the settle hook books it and
distributes it to the note holders (source ``recovery``).

**Risk reserve.** Optional, funded from the disclosed platform service fee (`fund_risk_reserve`:
fee income → ``risk_reserve``). It is shown with its true coverage ratio, reserve ÷ outstanding
principal of the loans it covers (investor-funded loans), and it is never called a guarantee. At
write-off the operator may use it: it covers the loss at the coverage ratio (pro rata: every loss
gets the same share, so early losses cannot drain it), capped at the loss.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yunrong.config import Settings
from yunrong.custody import accounts
from yunrong.custody import service as custody
from yunrong.custody.model import InstructionKind, InstructionStatus
from yunrong.custody.tables import Instruction
from yunrong.identity.model import Action, Context, OrgType
from yunrong.identity.service import require
from yunrong.identity.tables import Organisation
from yunrong.investing.tables import Loan, Note
from yunrong.kit.clock import business_date
from yunrong.kit.errors import Conflict, FieldProblem, InvalidInput, NotFound, PermissionDenied
from yunrong.kit.ids import human_ref
from yunrong.kit.money import Money, allocate_minor
from yunrong.ledger import service as ledger
from yunrong.ledger.model import Leg, credit, debit, transfer
from yunrong.ledger.tables import LedgerAccount
from yunrong.messaging.service import Message, notify_organisation
from yunrong.servicing.tables import Claim, Distribution, Instalment, LoanServicing
from yunrong.supervision import service as audit
from yunrong.verification.tables import Attestation, ServiceOrder

#: Days the guarantor (or insurer) has to pay a claim into escrow.
CLAIM_PAYMENT_DAYS = 7

#: Loans in these states can no longer be called, restructured or written off.
FINISHED_STATES = frozenset({"written_off", "closed"})
#: States a loan may be written off from.
WRITE_OFF_STATES = frozenset({"non_performing", "defaulted"})

# --- permissions -----------------------------------------------------------------------------------


#: The servicing actions this module needs in ``yunrong.identity.model`` (Action and PERMISSIONS).
#: Until they are added there, `require_action` checks these roles; once an action exists in the
#: enum, the permission matrix decides.
def require_action(ctx: Context, name: str) -> None:
    require(ctx, Action(name))


# --- errors ----------------------------------------------------------------------------------------


class NotDue(Conflict):
    code = "claim-not-due"
    title = "Not enough days past due to call the guarantor"


class NoCover(Conflict):
    code = "no-cover"
    title = "No guarantee or insurance is recorded for this loan"


class ClaimExists(Conflict):
    code = "claim-exists"
    title = "This loan already has a claim of this kind"


class ClaimNotOpen(Conflict):
    code = "claim-not-open"
    title = "The claim is not open"


class InsufficientDeposit(Conflict):
    code = "insufficient-deposit"
    title = "The payer's deposit in escrow does not cover the claim"


class LoanNotInDefault(Conflict):
    code = "loan-not-in-default"
    title = "The loan is not in a state that allows this"


class NotServiced(Conflict):
    code = "loan-not-serviced"
    title = "The loan is not being serviced"


# --- shared helpers --------------------------------------------------------------------------------


def servicing_of(session: Session, loan: Loan, *, lock: bool = False) -> LoanServicing:
    query = select(LoanServicing).where(LoanServicing.loan_id == loan.id)
    if lock:
        query = query.with_for_update()
    row = session.scalar(query)
    if row is None:
        raise NotServiced(f"loan {loan.ref} is not active / 借款 {loan.ref} 尚未放款计息")
    return row


def notes_by_ref(session: Session, loan_id: uuid.UUID) -> Sequence[Note]:
    return session.scalars(select(Note).where(Note.loan_id == loan_id).order_by(Note.ref)).all()


def _today(ctx: Context, settings: Settings) -> date:
    return business_date(ctx.now(), settings.timezone)


def visible_loan(session: Session, ctx: Context, loan_id: uuid.UUID) -> Loan:
    from yunrong.investing import loans

    return loans.visible_loan(session, ctx=ctx, loan_id=loan_id)


def _positive(amount: int, field: str = "amount") -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise InvalidInput(
            "the amount must be positive / 金额须大于零",
            [FieldProblem((field,), "must be greater than zero")],
        )


def apply_to_instalments(
    session: Session, servicing: LoanServicing, *, interest: int, principal: int, on: date
) -> None:
    """Mark ``interest`` and ``principal`` paid on the current schedule, oldest instalment first."""
    rows = session.scalars(
        select(Instalment)
        .where(
            Instalment.loan_id == servicing.loan_id,
            Instalment.version == servicing.schedule_version,
            Instalment.status.in_(("scheduled", "due")),
        )
        .order_by(Instalment.number)
    ).all()
    for row in rows:
        take_i = min(interest, row.interest_due - row.interest_paid)
        take_p = min(principal, row.principal_due - row.principal_paid)
        row.interest_paid += take_i
        row.principal_paid += take_p
        interest -= take_i
        principal -= take_p
        if row.interest_paid == row.interest_due and row.principal_paid == row.principal_due:
            row.status = "paid"
            row.paid_on = on
    due = [r.due_date for r in rows if r.status != "paid"]
    servicing.next_due_date = min(due) if due else None
    session.flush()


def distribute(
    session: Session,
    *,
    ctx: Context,
    loan: Loan,
    source_kind: str,
    source_id: uuid.UUID,
    source_account: LedgerAccount,
    principal: int,
    interest: int,
    penalty: int,
    value_date: date,
) -> list[Distribution]:
    """Pay ``principal + interest + penalty`` from ``source_account`` to the note holders, pro rata to
    their notes by largest remainder (each part separately, so each sums exactly), no service fee."""
    notes = notes_by_ref(session, loan.id)
    weights = [n.principal_minor for n in notes]
    parts_p = allocate_minor(principal, weights)
    parts_i = allocate_minor(interest, weights)
    parts_f = allocate_minor(penalty, weights)
    total = principal + interest + penalty
    legs: list[Leg] = [debit(source_account.id, total, loan.currency)]
    rows: list[Distribution] = []
    for note, p, i, f in zip(notes, parts_p, parts_i, parts_f, strict=True):
        investor = session.get(Organisation, note.investor_org_id)
        assert investor is not None
        net = p + i + f
        if net:
            legs.append(
                credit(
                    accounts.investor_available(session, ctx, investor, loan.currency).id, net, loan.currency
                )
            )
        rows.append(
            Distribution(
                source_kind=source_kind,
                source_id=source_id,
                loan_id=loan.id,
                note_id=note.id,
                investor_org_id=note.investor_org_id,
                principal=p,
                interest=i,
                penalty=f,
                service_fee=0,
                net=net,
                currency=loan.currency,
                value_date=value_date,
            )
        )
    entry_id = ledger.post_entry(
        session,
        ctx=ctx,
        legs=legs,
        kind=f"distribution_{source_kind}",
        description=f"{source_kind} money of loan {loan.ref} to its note holders",
        external_ref=loan.ref,
    )
    for row in rows:
        row.entry_id = entry_id
        session.add(row)
    session.flush()
    for row in rows:
        shown = Money(row.net, row.currency)
        notify_organisation(
            session,
            ctx=ctx,
            organisation_id=row.investor_org_id,
            message=Message(
                kind=f"loan.distribution.{source_kind}",
                subject_en=f"{shown} from loan {loan.ref} ({source_kind}) is in your account",
                subject_zh=f"借款 {loan.ref} 的{_ZH_SOURCE.get(source_kind, source_kind)}款 {shown} 已到账",
                body_en=f"Principal {Money(row.principal, row.currency)}, interest "
                f"{Money(row.interest, row.currency)}.",
                body_zh=f"本金 {Money(row.principal, row.currency)}，"
                f"利息 {Money(row.interest, row.currency)}。",
                link="/investor/portfolio",
            ),
        )
    return rows


_ZH_SOURCE = {
    "guarantee": "担保代偿",
    "insurance": "保险理赔",
    "recovery": "追偿回收",
    "reserve": "风险准备金",
}


def _memo_off_book(session: Session, ctx: Context, loan: Loan, amount: int, kind: str, why: str) -> None:
    """Take ``amount`` of the note holders' claims off the memo loan book."""
    if amount <= 0:
        return
    ledger.post_entry(
        session,
        ctx=ctx,
        legs=transfer(
            accounts.investor_claims(session, ctx, loan.currency).id,
            accounts.loan_book(session, ctx, loan.currency).id,
            amount,
            loan.currency,
        ),
        kind=kind,
        description=f"{why} of loan {loan.ref}",
        external_ref=loan.ref,
    )


# --- who covers the loan ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Cover:
    kind: str  # guarantee | insurance
    payer_org_id: uuid.UUID
    attestation_ref: str
    coverage: Decimal | None  # guarantee: the covered share (0..1]
    cap_minor: int  # guarantee: its cap; insurance: the policy's cover
    currency: str


def cover_of(session: Session, loan: Loan, kind: str) -> Cover | None:
    """The loan's guarantee or insurance: the latest unrevoked attestation of that agency type on an
    order for the loan's demand."""
    row = session.scalars(
        select(Attestation)
        .join(ServiceOrder, ServiceOrder.id == Attestation.order_id)
        .where(
            ServiceOrder.demand_id == loan.demand_id,
            Attestation.kind == kind,
            Attestation.revoked_at.is_(None),
        )
        .order_by(Attestation.recorded_at.desc(), Attestation.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    payload: dict[str, Any] = row.payload
    if kind == "guarantee":
        return Cover(
            kind=kind,
            payer_org_id=row.agency_id,
            attestation_ref=row.ref,
            coverage=Decimal(str(payload["coverage_percent"])) / 100,
            cap_minor=int(payload["cap_minor"]),
            currency=str(payload.get("currency", loan.currency)),
        )
    return Cover(
        kind=kind,
        payer_org_id=row.agency_id,
        attestation_ref=row.ref,
        coverage=None,
        cap_minor=int(payload["coverage_minor"]),
        currency=str(payload.get("currency", loan.currency)),
    )


def claim_amount(cover: Cover, principal: int, interest: int) -> int:
    """coverage × (principal + accrued interest), half-even to the fen, within the cap."""
    exposure = principal + interest
    if cover.coverage is None:
        return min(cover.cap_minor, exposure)
    wanted = int((cover.coverage * exposure).to_integral_value(rounding=ROUND_HALF_EVEN))
    return min(cover.cap_minor, wanted)


# --- claims ----------------------------------------------------------------------------------------


def _create_claim(
    session: Session, *, ctx: Context, settings: Settings, loan_id: uuid.UUID, kind: str
) -> Claim:
    require_action(ctx, "manage_defaults")
    loan = visible_loan(session, ctx, loan_id)
    servicing = servicing_of(session, loan, lock=True)
    if servicing.state in FINISHED_STATES:
        raise LoanNotInDefault(f"loan {loan.ref} is {servicing.state} / 借款 {loan.ref} 已{servicing.state}")
    call_days = settings.policy.guarantee_call_days
    if servicing.days_past_due < call_days:
        raise NotDue(
            f"loan {loan.ref} is {servicing.days_past_due} days past due; the {kind} may be called after "
            f"{call_days} / 借款逾期 {servicing.days_past_due} 天，满 {call_days} 天后方可向"
            f"{'担保方' if kind == 'guarantee' else '保险方'}索赔"
        )
    if session.scalar(select(Claim.id).where(Claim.loan_id == loan.id, Claim.kind == kind)) is not None:
        raise ClaimExists(f"loan {loan.ref} already has a {kind} claim / 该借款已有{kind}索赔")
    cover = cover_of(session, loan, kind)
    if cover is None:
        raise NoCover(
            f"no {kind} is recorded for loan {loan.ref} / 借款 {loan.ref} 没有"
            f"{'担保' if kind == 'guarantee' else '保险'}记录"
        )
    if cover.currency != loan.currency:
        raise NoCover(f"the {kind} covers {cover.currency}, the loan is in {loan.currency} / 币种不符")
    amount = claim_amount(cover, servicing.principal_outstanding, servicing.interest_accrued)
    if amount <= 0:
        raise NoCover(f"nothing is left to claim on loan {loan.ref} / 无可索赔金额")
    exposure = servicing.principal_outstanding + servicing.interest_accrued
    coverage_bp = (
        int(cover.coverage * 10_000)
        if cover.coverage is not None
        else min(10_000, amount * 10_000 // exposure)
    )
    today = _today(ctx, settings)
    claim = Claim(
        ref=human_ref("CL", 10),
        loan_id=loan.id,
        kind=kind,
        payer_org_id=cover.payer_org_id,
        coverage_bp=coverage_bp,
        amount_minor=amount,
        currency=loan.currency,
        status="open",
        deadline=today + timedelta(days=CLAIM_PAYMENT_DAYS),
        created_at=ctx.now(),
        paid_at=None,
        subrogated_minor=0,
    )
    session.add(claim)
    before = {"state": servicing.state, "stage": servicing.ifrs9_stage}
    servicing.state = "defaulted"
    servicing.ifrs9_stage = 3
    servicing.updated_at = ctx.now()
    session.flush()
    audit.record(
        session,
        ctx=ctx,
        action=f"loan.{kind}_claimed",
        object_type="loan",
        object_id=loan.id,
        before=before,
        after={
            "claim": claim.ref,
            "amount_minor": amount,
            "coverage_bp": coverage_bp,
            "attestation": cover.attestation_ref,
            "days_past_due": servicing.days_past_due,
            "deadline": claim.deadline.isoformat(),
        },
    )
    shown = Money(amount, loan.currency)
    notify_organisation(
        session,
        ctx=ctx,
        organisation_id=cover.payer_org_id,
        message=Message(
            kind=f"loan.{kind}_claim",
            subject_en=f"Claim {claim.ref}: pay {shown} for loan {loan.ref} by {claim.deadline}",
            subject_zh=f"索赔 {claim.ref}：请于 {claim.deadline} 前为借款 {loan.ref} 支付 {shown}",
            body_en=f"The loan is {servicing.days_past_due} days past due. Your {kind} covers "
            f"{coverage_bp / 100:.2f}% of principal and interest; the money is paid from your deposit in "
            "escrow.",
            body_zh=f"该借款已逾期 {servicing.days_past_due} 天。"
            f"按约定比例 {coverage_bp / 100:.2f}% 代偿本息，款项从您在存管账户的保证金中支付。",
            link=f"/api/v1/claims/{claim.id}",
        ),
    )
    return claim


def create_guarantee_claim(
    session: Session, *, ctx: Context, settings: Settings, loan_id: uuid.UUID
) -> Claim:
    """Call the loan's guarantor for its covered share (see the module docstring)."""
    return _create_claim(session, ctx=ctx, settings=settings, loan_id=loan_id, kind="guarantee")


def create_insurance_claim(
    session: Session, *, ctx: Context, settings: Settings, loan_id: uuid.UUID
) -> Claim:
    """Claim on the loan's credit insurance, up to the policy's cover."""
    return _create_claim(session, ctx=ctx, settings=settings, loan_id=loan_id, kind="insurance")


def visible_claim(session: Session, *, ctx: Context, claim_id: uuid.UUID) -> Claim:
    """The payer (guarantor or insurer) sees its claims; otherwise whoever may see the loan."""
    claim = session.get(Claim, claim_id)
    if claim is None:
        raise NotFound("no such claim")
    actor = ctx.actor
    if actor.organisation_id is not None and actor.organisation_id == claim.payer_org_id:
        return claim
    if actor.org_type is OrgType.AGENCY:
        raise NotFound("no such claim")
    visible_loan(session, ctx, claim.loan_id)
    return claim


def claim_for_payment(session: Session, *, ctx: Context, claim_id: uuid.UUID) -> Claim:
    """The claim, if the caller may pay it: the payer's administrator, the operator or the system."""
    require_action(ctx, "pay_claims")
    claim = session.get(Claim, claim_id)
    actor = ctx.actor
    if claim is None or not (actor.sees_all_organisations or (actor.organisation_id == claim.payer_org_id)):
        raise NotFound("no such claim")
    return claim


def pay_claim(session: Session, *, ctx: Context, settings: Settings, claim_id: uuid.UUID) -> Claim:
    """Pay an open claim from the payer's deposit in escrow and distribute it to the note holders."""
    claim = claim_for_payment(session, ctx=ctx, claim_id=claim_id)
    claim = session.scalar(select(Claim).where(Claim.id == claim.id).with_for_update()) or claim
    if claim.status != "open":
        raise ClaimNotOpen(f"claim {claim.ref} is {claim.status} / 索赔 {claim.ref} 状态为 {claim.status}")
    loan = session.get(Loan, claim.loan_id)
    payer = session.get(Organisation, claim.payer_org_id)
    assert loan is not None
    assert payer is not None
    servicing = servicing_of(session, loan, lock=True)
    interest = min(claim.amount_minor, servicing.interest_accrued)
    principal = min(claim.amount_minor - interest, servicing.principal_outstanding)
    paid = interest + principal  # never more than the investors are still owed
    if paid <= 0:
        raise ClaimNotOpen(f"nothing is owed any more on loan {loan.ref} / 该借款已无欠款")
    deposit = accounts.guarantor_deposit(session, ctx, payer, claim.currency)
    have = ledger.balance(session, deposit.id).available
    if have < paid:
        raise InsufficientDeposit(
            f"the deposit of {payer.name} holds {Money(have, claim.currency)}; the claim needs "
            f"{Money(paid, claim.currency)} / 保证金余额 {Money(have, claim.currency)} 不足以支付 "
            f"{Money(paid, claim.currency)}",
            [FieldProblem(("deposit",), "insufficient")],
        )
    collection = accounts.loan_collection(session, ctx, loan.ref, loan.currency)
    ledger.post_entry(
        session,
        ctx=ctx,
        legs=transfer(deposit.id, collection.id, paid, loan.currency),
        kind=f"{claim.kind}_payment",
        description=f"{claim.kind} claim {claim.ref} paid by {payer.name}",
        external_ref=claim.ref,
    )
    today = _today(ctx, settings)
    distribute(
        session,
        ctx=ctx,
        loan=loan,
        source_kind=claim.kind,
        source_id=claim.id,
        source_account=collection,
        principal=principal,
        interest=interest,
        penalty=0,
        value_date=today,
    )
    _memo_off_book(session, ctx, loan, paid, f"{claim.kind}_subrogation", f"{claim.kind} claim {claim.ref}")
    before = {
        "principal_outstanding": servicing.principal_outstanding,
        "interest": servicing.interest_accrued,
    }
    servicing.principal_outstanding -= principal
    servicing.interest_accrued -= interest
    servicing.updated_at = ctx.now()
    apply_to_instalments(session, servicing, interest=interest, principal=principal, on=today)
    claim.status = "paid"
    claim.paid_at = ctx.now()
    claim.subrogated_minor = paid
    session.flush()
    audit.record(
        session,
        ctx=ctx,
        action=f"loan.{claim.kind}_paid",
        object_type="claim",
        object_id=claim.id,
        before=before,
        after={
            "claim": claim.ref,
            "paid_minor": paid,
            "principal_minor": principal,
            "interest_minor": interest,
            "late": today > claim.deadline,
            "subrogated_minor": paid,
        },
    )
    return claim


@dataclass(frozen=True)
class ClaimView:
    claim: Claim
    loan: Loan
    investors_part_minor: int  # what the enterprise still owes the note holders
    payer_part_minor: int  # what it owes the guarantor or insurer (subrogated)


def read_claim(session: Session, *, ctx: Context, claim_id: uuid.UUID) -> ClaimView:
    claim = visible_claim(session, ctx=ctx, claim_id=claim_id)
    loan = session.get(Loan, claim.loan_id)
    assert loan is not None
    s = session.get(LoanServicing, loan.id)
    investors = 0 if s is None else s.principal_outstanding + s.interest_accrued + s.penalty_accrued
    return ClaimView(claim, loan, investors, claim.subrogated_minor)


def create_guarantor_deposit(session: Session, *, ctx: Context, amount: int, currency: str) -> Instruction:
    """A guarantor or insurer pays into its deposit in escrow from its own verified account; it is
    credited when the custodian confirms."""
    require_action(ctx, "pay_claims")
    if ctx.actor.org_type is not OrgType.AGENCY or ctx.actor.organisation_id is None:
        raise PermissionDenied(
            "only guarantee and insurance agencies keep a deposit / 仅担保或保险机构可缴存保证金"
        )
    _positive(amount)
    Money(amount, currency)
    payer = session.get(Organisation, ctx.actor.organisation_id)
    assert payer is not None
    return custody.instruct_inbound(
        session,
        ctx=ctx,
        kind=InstructionKind.DEPOSIT,
        owner=payer,
        amount=amount,
        currency=currency,
        ledger_account=accounts.guarantor_deposit(session, ctx, payer, currency),
    )


# --- collections, write-off, recoveries ------------------------------------------------------------


def start_collections(session: Session, *, ctx: Context, loan_id: uuid.UUID, note: str) -> LoanServicing:
    """Hand a delinquent loan to collections: state ``defaulted`` (IFRS 9 stage 3), audited."""
    require_action(ctx, "manage_defaults")
    loan = visible_loan(session, ctx, loan_id)
    servicing = servicing_of(session, loan, lock=True)
    if servicing.state in FINISHED_STATES:
        raise LoanNotInDefault(f"loan {loan.ref} is {servicing.state} / 借款已{servicing.state}")
    if servicing.days_past_due <= 0:
        raise LoanNotInDefault(f"loan {loan.ref} is not past due / 借款 {loan.ref} 未逾期")
    if not note.strip():
        raise InvalidInput("say why / 请填写原因", [FieldProblem(("note",), "required")])
    before = {"state": servicing.state, "stage": servicing.ifrs9_stage}
    servicing.state = "defaulted"
    servicing.ifrs9_stage = 3
    servicing.updated_at = ctx.now()
    session.flush()
    audit.record(
        session,
        ctx=ctx,
        action="loan.collections_started",
        object_type="loan",
        object_id=loan.id,
        before=before,
        after={"state": "defaulted", "collections": True, "days_past_due": servicing.days_past_due},
        detail={"note": note.strip()[:1000]},
    )
    notify_organisation(
        session,
        ctx=ctx,
        organisation_id=loan.enterprise_org_id,
        message=Message(
            kind="loan.collections",
            subject_en=f"Loan {loan.ref} is in collections",
            subject_zh=f"借款 {loan.ref} 已进入催收阶段",
            body_en=f"The loan is {servicing.days_past_due} days past due. Please contact us to repay.",
            body_zh=f"该借款已逾期 {servicing.days_past_due} 天，请尽快联系平台还款。",
            link=f"/enterprise/loans/{loan.id}",
        ),
    )
    return servicing


@dataclass(frozen=True)
class RiskReserveView:
    currency: str
    balance_minor: int
    covered_principal_minor: int  # outstanding principal of the loans it covers
    coverage_ratio: Decimal | None  # balance / covered principal; None when nothing is covered
    covered_loans: int


def _covered_book(session: Session, currency: str) -> tuple[int, int]:
    row = session.execute(
        select(func.coalesce(func.sum(LoanServicing.principal_outstanding), 0), func.count())
        .join(Loan, Loan.id == LoanServicing.loan_id)
        .where(
            Loan.lender_kind == "investors",
            LoanServicing.currency == currency,
            LoanServicing.state.not_in(tuple(FINISHED_STATES)),
        )
    ).one()
    return int(row[0]), int(row[1])


def risk_reserve(session: Session, *, ctx: Context, currency: str) -> RiskReserveView:
    """The reserve and its true coverage ratio (shown to investors; not a guarantee)."""
    require(ctx, Action.READ_LOANS)
    Money(0, currency)
    balance = ledger.balance(session, accounts.risk_reserve(session, ctx, currency).id).posted
    covered, count = _covered_book(session, currency)
    ratio = (Decimal(balance) / Decimal(covered)).quantize(Decimal("0.000001")) if covered else None
    return RiskReserveView(currency, balance, covered, ratio, count)


def fund_risk_reserve(session: Session, *, ctx: Context, currency: str, amount: int) -> uuid.UUID:
    """Set aside part of the disclosed platform service fee in the risk reserve."""
    require_action(ctx, "manage_defaults")
    _positive(amount)
    entry = ledger.post_entry(
        session,
        ctx=ctx,
        legs=transfer(
            accounts.platform_fee_income(session, ctx, currency).id,
            accounts.risk_reserve(session, ctx, currency).id,
            amount,
            currency,
        ),
        kind="risk_reserve_funding",
        description="part of the disclosed service fee set aside in the risk reserve",
    )
    audit.record(
        session,
        ctx=ctx,
        action="risk_reserve.funded",
        object_type="risk_reserve",
        object_id=currency,
        after={"amount_minor": amount},
    )
    return entry


def reserve_cover(balance: int, covered_principal: int, loss_principal: int) -> int:
    """What the reserve pays for one loss: the loss at the coverage ratio, floored, within the loss."""
    if balance <= 0 or covered_principal <= 0 or loss_principal <= 0:
        return 0
    return min(loss_principal, balance * loss_principal // covered_principal, balance)


@dataclass(frozen=True)
class WriteOff:
    servicing: LoanServicing
    written_off_minor: int
    reserve_paid_minor: int


def write_off_loan(
    session: Session,
    *,
    ctx: Context,
    settings: Settings,
    loan_id: uuid.UUID,
    reason: str,
    use_risk_reserve: bool = False,
) -> WriteOff:
    """Write the investors' remaining debt off the memo book (audited with the reason)."""
    require_action(ctx, "manage_defaults")
    loan = visible_loan(session, ctx, loan_id)
    if not reason.strip():
        raise InvalidInput(
            "a write-off needs a reason / 核销须说明原因", [FieldProblem(("reason",), "required")]
        )
    servicing = servicing_of(session, loan, lock=True)
    if servicing.state not in WRITE_OFF_STATES:
        raise LoanNotInDefault(
            f"loan {loan.ref} is {servicing.state}; only defaulted or non-performing loans are written off"
            f" / 借款 {loan.ref} 状态为 {servicing.state}，仅违约或不良借款可核销"
        )
    today = _today(ctx, settings)
    reserve_paid = 0
    if use_risk_reserve and loan.lender_kind == "investors":
        reserve = accounts.risk_reserve(session, ctx, loan.currency)
        balance = ledger.balance(session, reserve.id).available
        covered, _ = _covered_book(session, loan.currency)
        reserve_paid = reserve_cover(balance, covered, servicing.principal_outstanding)
        if reserve_paid:
            distribute(
                session,
                ctx=ctx,
                loan=loan,
                source_kind="reserve",
                source_id=loan.id,
                source_account=reserve,
                principal=reserve_paid,
                interest=0,
                penalty=0,
                value_date=today,
            )
            _memo_off_book(session, ctx, loan, reserve_paid, "risk_reserve_cover", "risk reserve cover")
            servicing.principal_outstanding -= reserve_paid
    before = {
        "state": servicing.state,
        "principal_outstanding": servicing.principal_outstanding,
        "interest_accrued": servicing.interest_accrued,
        "penalty_accrued": servicing.penalty_accrued,
    }
    amount = servicing.principal_outstanding + servicing.interest_accrued + servicing.penalty_accrued
    _memo_off_book(session, ctx, loan, amount, "write_off", "write-off")
    servicing.written_off_minor = amount
    servicing.principal_outstanding = 0
    servicing.interest_accrued = 0
    servicing.penalty_accrued = 0
    servicing.state = "written_off"
    servicing.ifrs9_stage = 3
    servicing.next_due_date = None
    servicing.updated_at = ctx.now()
    session.flush()
    audit.record(
        session,
        ctx=ctx,
        action="loan.written_off",
        object_type="loan",
        object_id=loan.id,
        before=before,
        after={"state": "written_off", "written_off_minor": amount, "reserve_paid_minor": reserve_paid},
        detail={"reason": reason.strip()[:1000]},
    )
    for note in notes_by_ref(session, loan.id):
        notify_organisation(
            session,
            ctx=ctx,
            organisation_id=note.investor_org_id,
            message=Message(
                kind="loan.written_off",
                subject_en=f"Loan {loan.ref} was written off; recoveries will still be paid to you",
                subject_zh=f"借款 {loan.ref} 已核销，后续追回款项仍将分配给您",
                body_en=f"Written off: {Money(amount, loan.currency)}.",
                body_zh=f"核销金额：{Money(amount, loan.currency)}。",
                link="/investor/portfolio",
            ),
        )
    return WriteOff(servicing, amount, reserve_paid)


def create_recovery(session: Session, *, ctx: Context, loan_id: uuid.UUID, amount: int) -> Instruction:
    """Money recovered on a written-off loan: a custodian COLLECTION instruction from the enterprise's
    verified account into the loan's collection account, distributed when the bank confirms."""
    require_action(ctx, "manage_defaults")
    loan = visible_loan(session, ctx, loan_id)
    servicing = servicing_of(session, loan)
    if servicing.state != "written_off":
        raise LoanNotInDefault(
            f"loan {loan.ref} is {servicing.state}; recoveries are for written-off loans (repay otherwise)"
            f" / 借款 {loan.ref} 未核销，请走正常还款"
        )
    _positive(amount)
    enterprise = session.get(Organisation, loan.enterprise_org_id)
    assert enterprise is not None
    instruction = custody.instruct_inbound(
        session,
        ctx=ctx,
        kind=InstructionKind.COLLECTION,
        owner=enterprise,
        amount=amount,
        currency=loan.currency,
        ledger_account=accounts.loan_collection(session, ctx, loan.ref, loan.currency),
    )
    audit.record(
        session,
        ctx=ctx,
        action="loan.recovery_instructed",
        object_type="loan",
        object_id=loan.id,
        after={"instruction": instruction.ref, "amount_minor": amount},
    )
    return instruction


def _on_settled(session: Session, ctx: Context, instruction: Instruction) -> None:
    """A recovery on a written-off loan arrived: book it into the collection account (unless another
    hook already did) and distribute it to the note holders."""
    if instruction.kind != InstructionKind.COLLECTION.value:
        return
    if instruction.status != InstructionStatus.CONFIRMED.value:
        return
    account = session.get(LedgerAccount, instruction.ledger_account_id)
    if account is None or account.purpose != accounts.Purpose.LOAN_COLLECTION.value:
        return
    loan = session.scalar(select(Loan).where(Loan.ref == account.subject_id))
    if loan is None:
        return
    servicing = session.get(LoanServicing, loan.id)
    if servicing is None or servicing.state != "written_off":
        return  # a repayment: the repayments module handles it
    if instruction.entry_id is None:
        instruction.entry_id = ledger.post_entry(
            session,
            ctx=ctx,
            legs=transfer(
                instruction.escrow_account_id, account.id, instruction.amount, instruction.currency
            ),
            kind="recovery",
            description=f"recovery {instruction.ref} on written-off loan {loan.ref}",
            external_ref=instruction.ref,
        )
    from yunrong.config import get_settings

    distribute(
        session,
        ctx=ctx,
        loan=loan,
        source_kind="recovery",
        source_id=instruction.id,
        source_account=account,
        principal=instruction.amount,
        interest=0,
        penalty=0,
        value_date=business_date(ctx.now(), get_settings().timezone),
    )
    audit.record(
        session,
        ctx=ctx,
        action="loan.recovered",
        object_type="loan",
        object_id=loan.id,
        after={"instruction": instruction.ref, "amount_minor": instruction.amount},
    )


if _on_settled not in custody.SETTLE_HOOKS:
    custody.SETTLE_HOOKS.append(_on_settled)


def recovered_minor(session: Session, loan_id: uuid.UUID) -> int:
    return int(
        session.scalar(
            select(func.coalesce(func.sum(Distribution.net), 0)).where(
                Distribution.loan_id == loan_id, Distribution.source_kind == "recovery"
            )
        )
        or 0
    )
