"""Step 6: a funded demand becomes a loan; its agreement is accepted; the custodian pays it out.

The loan is booked with one note per lender's share and its agreement generated as a PDF whose
SHA-256 is stored. Investors accepted the agreement form when they committed; the enterprise (and,
for a direct loan, the bank) accept the final agreement by click-through, each acceptance recorded
with the hash and in the audit log. Once every party has accepted, the disclosed platform fee moves
from the enterprise's payout account to the platform's fee income, and a custodian instruction pays
the rest to the enterprise's verified account. No interest is deducted up front, and the money
never passes through an account of the platform's own: it stays in escrow until the bank pays it out.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from yunrong.config import Settings
from yunrong.custody import accounts
from yunrong.custody import service as custody
from yunrong.custody.model import InstructionKind, InstructionStatus
from yunrong.custody.tables import Instruction
from yunrong.demands.tables import Demand
from yunrong.identity.model import Action, Context, OrgType
from yunrong.identity.service import require
from yunrong.identity.tables import Organisation
from yunrong.investing import contracts
from yunrong.investing.model import LenderKind, LoanNotContracting, LoanStatus
from yunrong.investing.tables import AgreementAcceptance, Loan, LoanAgreement, Note
from yunrong.kit.errors import NotFound
from yunrong.kit.ids import human_ref
from yunrong.kit.money import Money
from yunrong.ledger import service as ledger
from yunrong.ledger.model import transfer
from yunrong.messaging.service import Message, notify_organisation
from yunrong.supervision import service as audit


def fee_of(principal: int, settings: Settings) -> int:
    """The disclosed one-off platform service fee: basis points of principal, rounded half up."""
    return (principal * settings.platform_fee_bp + 5_000) // 10_000


def book_loan(
    session: Session,
    *,
    ctx: Context,
    demand: Demand,
    principal: int,
    annual_rate: Decimal,
    lenders: Sequence[tuple[uuid.UUID, int]],
    settings: Settings,
    lender_kind: LenderKind = LenderKind.INVESTORS,
    bank_org_id: uuid.UUID | None = None,
    offer_id: uuid.UUID | None = None,
    term_months: int | None = None,
    repayment_method: str | None = None,
    fee_minor: int | None = None,
) -> Loan:
    """Book the loan and its notes (the money is already in the enterprise's payout account), and
    generate its agreement."""
    now = ctx.now()
    loan = Loan(
        ref=human_ref("LN", 10),
        demand_id=demand.id,
        enterprise_org_id=demand.organisation_id,
        lender_kind=lender_kind.value,
        bank_org_id=bank_org_id,
        offer_id=offer_id,
        product=demand.product,
        principal_minor=principal,
        currency=demand.currency,
        annual_rate=annual_rate,
        fee_minor=fee_of(principal, settings) if fee_minor is None else fee_minor,
        term_months=term_months or demand.term_months,
        repayment_method=repayment_method or demand.repayment_method,
        status=LoanStatus.CONTRACTING.value,
        created_at=now,
    )
    session.add(loan)
    session.flush()
    for org_id, amount in lenders:
        session.add(
            Note(
                ref=human_ref("NT", 10),
                loan_id=loan.id,
                investor_org_id=org_id,
                principal_minor=amount,
                currency=demand.currency,
                created_at=now,
            )
        )
    session.flush()
    agreement = contracts.generate_agreement(session, ctx=ctx, loan=loan, settings=settings)
    loan.apr = Decimal(agreement.terms["apr"])
    audit.record(
        session,
        ctx=ctx,
        action="loan.booked",
        object_type="loan",
        object_id=loan.id,
        after={
            "ref": loan.ref,
            "demand": demand.ref,
            "principal_minor": principal,
            "annual_rate": str(annual_rate),
            "fee_minor": loan.fee_minor,
            "notes": len(lenders),
            "agreement_sha256": agreement.sha256,
        },
    )
    _record_investor_acceptances(session, ctx, loan, agreement)
    shown = Money(principal, loan.currency)
    notify_organisation(
        session,
        ctx=ctx,
        organisation_id=loan.enterprise_org_id,
        message=Message(
            kind="loan.agreement_ready",
            subject_en=f"Your loan {loan.ref} of {shown} is funded: accept the agreement",
            subject_zh=f"您的借款 {loan.ref}（{shown}）已募集完成，请确认借款合同",
            body_en="Read the loan agreement and accept it; the custodian bank then pays the loan out.",
            body_zh="请阅读并确认借款合同，确认后由存管银行放款。",
            link=f"/enterprise/loans/{loan.id}",
        ),
    )
    return loan


def _record_investor_acceptances(
    session: Session, ctx: Context, loan: Loan, agreement: LoanAgreement
) -> None:
    """Investors accepted the agreement form (the same terms, lenders in an annex) when they
    committed: their acceptances carry the form's hash they saw."""
    if loan.lender_kind != LenderKind.INVESTORS.value:
        return
    from yunrong.investing.tables import Commitment, FundingRound

    funding = session.scalar(select(FundingRound).where(FundingRound.demand_id == loan.demand_id))
    if funding is None:
        return
    seen: set[uuid.UUID] = set()
    for c in session.scalars(
        select(Commitment)
        .where(Commitment.round_id == funding.id, Commitment.status == "posted")
        .order_by(Commitment.created_at)
    ):
        if c.investor_org_id in seen:
            continue
        seen.add(c.investor_org_id)
        session.add(
            AgreementAcceptance(
                agreement_id=agreement.id,
                organisation_id=c.investor_org_id,
                party_role="investor",
                sha256=c.agreement_sha256 or agreement.sha256,
                accepted_by=c.created_by,
                accepted_at=c.created_at,
            )
        )
    session.flush()


def _parties_to_accept(loan: Loan) -> dict[uuid.UUID, str]:
    out = {loan.enterprise_org_id: "borrower"}
    if loan.lender_kind == LenderKind.BANK.value and loan.bank_org_id is not None:
        out[loan.bank_org_id] = "bank"
    return out


def accept_agreement(
    session: Session, *, ctx: Context, settings: Settings, loan_id: uuid.UUID, sha256: str
) -> Loan:
    """The borrower (or the lending bank) accepts the agreement whose hash it was shown; when every
    party has accepted, the loan is paid out."""
    require(ctx, Action.ACCEPT_CONTRACT)
    loan = session.execute(
        select(Loan).where(Loan.id == loan_id).with_for_update().execution_options(populate_existing=True)
    ).scalar_one_or_none()
    role = (
        _parties_to_accept(loan).get(ctx.actor.organisation_id)
        if loan and ctx.actor.organisation_id
        else None
    )
    if loan is None or role is None:
        raise NotFound("no such loan awaiting your acceptance")
    if loan.status != LoanStatus.CONTRACTING.value:
        raise LoanNotContracting(f"loan {loan.ref} is {loan.status}")
    agreement = agreement_of(session, loan.id)
    if sha256.strip().lower() != agreement.sha256:
        from yunrong.kit.errors import FieldProblem, InvalidInput

        raise InvalidInput(
            "the agreement you accepted is not the current one; reload it and read it again",
            [FieldProblem(("sha256",), "does not match the agreement's hash")],
        )
    organisation_id = ctx.actor.organisation_id
    assert organisation_id is not None
    already = session.scalar(
        select(AgreementAcceptance.id).where(
            AgreementAcceptance.agreement_id == agreement.id,
            AgreementAcceptance.organisation_id == organisation_id,
        )
    )
    if already is None:
        session.add(
            AgreementAcceptance(
                agreement_id=agreement.id,
                organisation_id=organisation_id,
                party_role=role,
                sha256=agreement.sha256,
                accepted_by=ctx.actor.email,
                accepted_at=ctx.now(),
            )
        )
        session.flush()
        audit.record(
            session,
            ctx=ctx,
            action="loan.agreement_accepted",
            object_type="loan",
            object_id=loan.id,
            after={"party_role": role, "sha256": agreement.sha256},
        )
    accepted = set(
        session.scalars(
            select(AgreementAcceptance.organisation_id).where(
                AgreementAcceptance.agreement_id == agreement.id
            )
        )
    )
    if set(_parties_to_accept(loan)) <= accepted:
        loan.accepted_at = ctx.now()
        disburse(session, ctx=ctx, loan=loan)
    return loan


def disburse(session: Session, *, ctx: Context, loan: Loan) -> Instruction:
    """Move the disclosed fee to its account and instruct the custodian to pay the rest out."""
    enterprise = session.get(Organisation, loan.enterprise_org_id)
    assert enterprise is not None
    payout = accounts.enterprise_payout(session, ctx, enterprise, loan.currency)
    if loan.fee_minor > 0:
        fee_income = accounts.platform_fee_income(session, ctx, loan.currency)
        ledger.post_entry(
            session,
            ctx=ctx,
            legs=transfer(payout.id, fee_income.id, loan.fee_minor, loan.currency),
            kind="loan_fee",
            description=f"disclosed service fee of loan {loan.ref}",
            external_ref=loan.ref,
        )
    instruction = custody.instruct_payout(
        session,
        ctx=ctx,
        enterprise=enterprise,
        amount=loan.principal_minor - loan.fee_minor,
        currency=loan.currency,
    )
    loan.payout_instruction_id = instruction.id
    loan.status = LoanStatus.DISBURSING.value
    audit.record(
        session,
        ctx=ctx,
        action="loan.disbursement_instructed",
        object_type="loan",
        object_id=loan.id,
        after={
            "instruction": instruction.ref,
            "amount_minor": instruction.amount,
            "fee_minor": loan.fee_minor,
        },
    )
    session.flush()
    return instruction


def _on_settled(session: Session, ctx: Context, instruction: Instruction) -> None:
    """A payout settled: the loan becomes active (confirmed) or waits for a new instruction (failed)."""
    if instruction.kind != InstructionKind.PAYOUT.value:
        return
    loan = session.scalar(select(Loan).where(Loan.payout_instruction_id == instruction.id))
    if loan is None or loan.status != LoanStatus.DISBURSING.value:
        return
    if instruction.status == InstructionStatus.CONFIRMED.value:
        loan.status = LoanStatus.ACTIVE.value
        loan.disbursed_at = ctx.now()
        from yunrong.config import get_settings
        from yunrong.servicing.service import activate

        activate(session, ctx=ctx, loan=loan, settings=get_settings())  # step 7: the schedule starts
        audit.record(
            session,
            ctx=ctx,
            action="loan.disbursed",
            object_type="loan",
            object_id=loan.id,
            after={"instruction": instruction.ref, "bank_reference": instruction.bank_reference},
        )
        for note in session.scalars(select(Note).where(Note.loan_id == loan.id)):
            notify_organisation(
                session,
                ctx=ctx,
                organisation_id=note.investor_org_id,
                message=Message(
                    kind="loan.disbursed",
                    subject_en=f"Loan {loan.ref} was paid out; your note {note.ref} is earning interest",
                    subject_zh=f"借款 {loan.ref} 已放款，您的债权 {note.ref} 开始计息",
                    body_en=f"Your share: {Money(note.principal_minor, note.currency)}.",
                    body_zh=f"您的份额：{Money(note.principal_minor, note.currency)}。",
                    link="/investor/portfolio",
                ),
            )
    else:
        # The bank failed the payout: the hold was released, the money waits in the payout account.
        audit.record(
            session,
            ctx=ctx,
            action="loan.disbursement_failed",
            object_type="loan",
            object_id=loan.id,
            after={"instruction": instruction.ref, "reason": instruction.failure_reason},
        )


custody.SETTLE_HOOKS.append(_on_settled)


def retry_disbursement(session: Session, *, ctx: Context, loan_id: uuid.UUID) -> Instruction:
    """After a failed payout (say the account was corrected): instruct the custodian again."""
    loan = session.get(Loan, loan_id)
    if loan is None or loan.status != LoanStatus.DISBURSING.value or loan.payout_instruction_id is None:
        raise NotFound("no such loan awaiting payout")
    previous = session.get(Instruction, loan.payout_instruction_id)
    if previous is None or previous.status != InstructionStatus.FAILED.value:
        raise LoanNotContracting("the last payout instruction has not failed")
    enterprise = session.get(Organisation, loan.enterprise_org_id)
    assert enterprise is not None
    instruction = custody.instruct_payout(
        session, ctx=ctx, enterprise=enterprise, amount=previous.amount, currency=loan.currency
    )
    loan.payout_instruction_id = instruction.id
    session.flush()
    return instruction


# --- what parties see ------------------------------------------------------------------------------


def agreement_of(session: Session, loan_id: uuid.UUID) -> LoanAgreement:
    row = session.scalar(select(LoanAgreement).where(LoanAgreement.loan_id == loan_id))
    if row is None:
        raise NotFound("no agreement for this loan")
    return row


def _visible_clause(ctx: Context) -> ColumnElement[bool] | None:
    actor = ctx.actor
    if actor.org_type is OrgType.INVESTOR:
        return Loan.id.in_(select(Note.loan_id).where(Note.investor_org_id == actor.organisation_id))
    if actor.org_type is OrgType.ENTERPRISE:
        return Loan.enterprise_org_id == actor.organisation_id
    if actor.org_type is OrgType.CUSTODIAN_BANK:
        return Loan.bank_org_id == actor.organisation_id
    return None


def visible_loan(session: Session, *, ctx: Context, loan_id: uuid.UUID) -> Loan:
    require(ctx, Action.READ_LOANS)
    query = select(Loan).where(Loan.id == loan_id)
    if not ctx.actor.sees_all_organisations:
        clause = _visible_clause(ctx)
        if clause is None:
            raise NotFound("no such loan")
        query = query.where(clause)
    loan = session.scalar(query)
    if loan is None:
        raise NotFound("no such loan")
    return loan


def list_loans(session: Session, *, ctx: Context, limit: int = 100) -> Sequence[Loan]:
    require(ctx, Action.READ_LOANS)
    query = select(Loan).order_by(Loan.created_at.desc()).limit(min(max(1, limit), 500))
    if not ctx.actor.sees_all_organisations:
        clause = _visible_clause(ctx)
        if clause is None:
            return []
        query = query.where(clause)
    return session.scalars(query).all()


def notes_of(session: Session, *, ctx: Context, loan: Loan) -> Sequence[Note]:
    """Every note for the borrower, the bank and supervisors; an investor sees only its own."""
    query = select(Note).where(Note.loan_id == loan.id).order_by(Note.ref)
    if ctx.actor.org_type is OrgType.INVESTOR:
        query = query.where(Note.investor_org_id == ctx.actor.organisation_id)
    return session.scalars(query).all()


def acceptances_of(session: Session, agreement_id: uuid.UUID) -> Sequence[AgreementAcceptance]:
    return session.scalars(
        select(AgreementAcceptance)
        .where(AgreementAcceptance.agreement_id == agreement_id)
        .order_by(AgreementAcceptance.accepted_at)
    ).all()
