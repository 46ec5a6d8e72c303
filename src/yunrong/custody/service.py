"""Custody use cases: deposits and withdrawals through the custodian bank, the bank's callbacks,
and what parties see of their money.

Money moves in the ledger only on the bank's confirmation. A withdrawal first places a hold on
the investor's available money (so it cannot be spent twice); the bank's confirmation posts the
hold, a failure voids it. A deposit moves nothing until the bank confirms it arrived. Each
instruction and the event that carries it to the bank are written in one transaction.
"""

from __future__ import annotations

import importlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from yunrong.config import Settings
from yunrong.custody import accounts
from yunrong.custody.model import (
    AccountNotVerified,
    CallbackOutcome,
    ForgedCallback,
    InstructionKind,
    InstructionStatus,
    NoCustodian,
    signature_problem,
)
from yunrong.custody.tables import BankCallback, Instruction
from yunrong.identity.model import Action, Context, OrgType
from yunrong.identity.service import require
from yunrong.identity.tables import Organisation
from yunrong.kit.errors import FieldProblem, InvalidInput, NotFound
from yunrong.kit.ids import human_ref
from yunrong.kit.money import Money
from yunrong.ledger import service as ledger
from yunrong.ledger.model import Balance, transfer
from yunrong.ledger.tables import LedgerAccount
from yunrong.messaging.service import Message, emit, notify_organisation
from yunrong.parties import service as parties
from yunrong.parties.model import QualificationStatus
from yunrong.parties.tables import BankAccount, Qualification
from yunrong.supervision import service as audit
from yunrong.supervision.alerts import raise_alert


def callback_secret(settings: Settings) -> bytes:
    if settings.bank_callback_secret is not None:
        return settings.bank_callback_secret.get_secret_value().encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"yunrong-bank-callbacks").derive(
        settings.secret_key.get_secret_value().encode()
    )


def platform_custodian(session: Session) -> Organisation:
    """The admitted custodian bank that keeps the escrow (the first one admitted)."""
    bank = session.scalars(
        select(Organisation)
        .join(Qualification, Qualification.organisation_id == Organisation.id)
        .where(
            Organisation.type == OrgType.CUSTODIAN_BANK.value,
            Qualification.status == QualificationStatus.APPROVED.value,
        )
        .order_by(Qualification.updated_at, Organisation.id)
        .limit(1)
    ).first()
    if bank is None:
        raise NoCustodian("no custodian bank is admitted yet; money cannot move")
    return bank


def _own_verified_account(
    session: Session, ctx: Context, bank_account_id: uuid.UUID, currency: str
) -> BankAccount:
    account = session.get(BankAccount, bank_account_id)
    if account is None or account.organisation_id != ctx.actor.organisation_id:
        raise NotFound("no such bank account of yours")
    if account.verified_at is None:
        raise AccountNotVerified(
            "money moves only to and from your own verified account; this one is not verified yet",
            [FieldProblem(("bank_account_id",), "not verified")],
        )
    if account.currency != currency:
        raise InvalidInput(
            "the account holds another currency",
            [FieldProblem(("currency",), f"account holds {account.currency}")],
        )
    return account


def _amount_problems(amount: int) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise InvalidInput(
            "the amount must be positive", [FieldProblem(("amount",), "must be greater than zero")]
        )


def instruct(
    session: Session,
    *,
    ctx: Context,
    kind: InstructionKind,
    bank: Organisation,
    owner: Organisation,
    amount: int,
    currency: str,
    ledger_account: LedgerAccount,
    escrow: LedgerAccount,
    bank_account: BankAccount | None,
    hold_id: uuid.UUID | None = None,
) -> Instruction:
    instruction = Instruction(
        ref=human_ref("BI", 12),
        kind=kind.value,
        status=InstructionStatus.PENDING.value,
        bank_org_id=bank.id,
        organisation_id=owner.id,
        amount=amount,
        currency=currency,
        ledger_account_id=ledger_account.id,
        escrow_account_id=escrow.id,
        bank_account_id=bank_account.id if bank_account else None,
        hold_id=hold_id,
        created_by=ctx.actor.email,
        created_at=ctx.now(),
    )
    session.add(instruction)
    session.flush()
    emit(
        session,
        ctx=ctx,
        topic="bank.instruction",
        payload={
            "instruction_ref": instruction.ref,
            "kind": kind.value,
            "amount": amount,
            "currency": currency,
            "owner": owner.name,
            "account": bank_account.account_number_masked if bank_account else None,
        },
    )
    audit.record(
        session,
        ctx=ctx,
        action=f"custody.{kind.value}_instructed",
        object_type="instruction",
        object_id=instruction.id,
        after={"ref": instruction.ref, "amount": amount, "currency": currency},
    )
    return instruction


def create_deposit(
    session: Session, *, ctx: Context, amount: int, currency: str, bank_account_id: uuid.UUID
) -> Instruction:
    """An investor pays into escrow from their own verified account. Nothing is credited until
    the custodian confirms the money arrived."""
    require(ctx, Action.MOVE_OWN_MONEY)
    parties.require_admitted(session, ctx=ctx)
    _amount_problems(amount)
    Money(amount, currency)  # refuses unknown currencies
    bank_account = _own_verified_account(session, ctx, bank_account_id, currency)
    investor = session.get(Organisation, ctx.actor.organisation_id)
    assert investor is not None
    bank = platform_custodian(session)
    escrow = accounts.escrow_cash(session, ctx, bank, currency)
    available = accounts.investor_available(session, ctx, investor, currency)
    return instruct(
        session,
        ctx=ctx,
        kind=InstructionKind.DEPOSIT,
        bank=bank,
        owner=investor,
        amount=amount,
        currency=currency,
        ledger_account=available,
        escrow=escrow,
        bank_account=bank_account,
    )


def create_withdrawal(
    session: Session, *, ctx: Context, amount: int, currency: str, bank_account_id: uuid.UUID
) -> Instruction:
    """An investor takes money out to their own verified account. The amount is held at once (it
    can no longer be invested or withdrawn twice) and leaves the ledger when the bank confirms."""
    require(ctx, Action.MOVE_OWN_MONEY)
    parties.require_admitted(session, ctx=ctx)
    _amount_problems(amount)
    Money(amount, currency)
    bank_account = _own_verified_account(session, ctx, bank_account_id, currency)
    investor = session.get(Organisation, ctx.actor.organisation_id)
    assert investor is not None
    bank = platform_custodian(session)
    escrow = accounts.escrow_cash(session, ctx, bank, currency)
    available = accounts.investor_available(session, ctx, investor, currency)
    hold = ledger.place_hold(
        session,
        ctx=ctx,
        debit_account_id=available.id,
        credit_account_id=escrow.id,
        amount=amount,
        currency=currency,
        description=f"withdrawal to {bank_account.account_number_masked}",
    )
    return instruct(
        session,
        ctx=ctx,
        kind=InstructionKind.WITHDRAWAL,
        bank=bank,
        owner=investor,
        amount=amount,
        currency=currency,
        ledger_account=available,
        escrow=escrow,
        bank_account=bank_account,
        hold_id=hold.id,
    )


def verified_account_of(session: Session, org_id: uuid.UUID, currency: str) -> BankAccount | None:
    """The organisation's verified account in ``currency`` (the latest verified, when several)."""
    return session.scalars(
        select(BankAccount)
        .where(
            BankAccount.organisation_id == org_id,
            BankAccount.currency == currency,
            BankAccount.verified_at.is_not(None),
        )
        .order_by(BankAccount.verified_at.desc())
        .limit(1)
    ).first()


def instruct_inbound(
    session: Session,
    *,
    ctx: Context,
    kind: InstructionKind,
    owner: Organisation,
    amount: int,
    currency: str,
    ledger_account: LedgerAccount,
) -> Instruction:
    """Ask the custodian to collect ``amount`` from the owner's own verified account into an escrow
    sub-account (a repayment, a recovery, a guarantor's deposit); credited when the bank confirms."""
    bank_account = verified_account_of(session, owner.id, currency)
    if bank_account is None:
        raise AccountNotVerified(
            f"{owner.name} has no verified {currency} bank account to pay from"
            f" / {owner.name} 没有已验证的 {currency} 银行账户",
            [FieldProblem(("bank_account",), "none verified")],
        )
    bank = platform_custodian(session)
    return instruct(
        session,
        ctx=ctx,
        kind=kind,
        bank=bank,
        owner=owner,
        amount=amount,
        currency=currency,
        ledger_account=ledger_account,
        escrow=accounts.escrow_cash(session, ctx, bank, currency),
        bank_account=bank_account,
    )


def instruct_payout(
    session: Session, *, ctx: Context, enterprise: Organisation, amount: int, currency: str
) -> Instruction:
    """Pay an enterprise's payout money to its own verified account: held at once, posted when the
    custodian confirms, released if it fails. The platform's own accounts are never touched."""
    _amount_problems(amount)
    bank_account = verified_account_of(session, enterprise.id, currency)
    if bank_account is None:
        raise AccountNotVerified(
            f"{enterprise.name} has no verified {currency} bank account to receive the loan",
            [FieldProblem(("bank_account",), "none verified")],
        )
    bank = platform_custodian(session)
    escrow = accounts.escrow_cash(session, ctx, bank, currency)
    payout = accounts.enterprise_payout(session, ctx, enterprise, currency)
    hold = ledger.place_hold(
        session,
        ctx=ctx,
        debit_account_id=payout.id,
        credit_account_id=escrow.id,
        amount=amount,
        currency=currency,
        description=f"payout to {bank_account.account_number_masked}",
    )
    return instruct(
        session,
        ctx=ctx,
        kind=InstructionKind.PAYOUT,
        bank=bank,
        owner=enterprise,
        amount=amount,
        currency=currency,
        ledger_account=payout,
        escrow=escrow,
        bank_account=bank_account,
        hold_id=hold.id,
    )


#: Called in the callback's transaction after an instruction settles (loans activate on payout).
#: Feature modules append to it when imported; the modules named here are imported on first use.
SETTLE_HOOKS: list[Callable[[Session, Context, Instruction], None]] = []
SETTLE_HOOK_MODULES: tuple[str, ...] = (
    "yunrong.investing.loans",
    "yunrong.servicing.repayments",
    "yunrong.servicing.defaults",
)


def _settle_hooks() -> list[Callable[[Session, Context, Instruction], None]]:
    for module in SETTLE_HOOK_MODULES:
        importlib.import_module(module)
    return SETTLE_HOOKS


@dataclass(frozen=True)
class CallbackResult:
    outcome: CallbackOutcome
    instruction_ref: str
    status: str | None


def apply_callback(
    session: Session,
    *,
    ctx: Context,
    settings: Settings,
    body: bytes,
    timestamp: str | None,
    signature: str | None,
) -> CallbackResult:
    """The bank's word on an instruction. Forged or stale callbacks are refused; a repeat changes
    nothing; the first confirmation moves the money, the first failure releases the hold; a later
    callback that contradicts the first raises an alert instead of moving money."""
    problem = signature_problem(callback_secret(settings), timestamp, body, signature, ctx.now())
    if problem is not None:
        raise ForgedCallback(f"callback refused: {problem}")
    try:
        data = json.loads(body)
        callback_id = str(data["callback_id"])
        ref = str(data["instruction_ref"])
        status = InstructionStatus(data["status"])
        amount = int(data["amount"])
        currency = str(data["currency"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(f"the callback is malformed: {exc}") from None
    if status is InstructionStatus.PENDING:
        raise InvalidInput("a callback reports a final status")
    if session.scalar(select(BankCallback.id).where(BankCallback.callback_id == callback_id)) is not None:
        return CallbackResult(CallbackOutcome.DUPLICATE, ref, status.value)

    instruction = session.execute(
        select(Instruction).where(Instruction.ref == ref).with_for_update()
    ).scalar_one_or_none()
    outcome = _settle(
        session, ctx=ctx, instruction=instruction, status=status, amount=amount, currency=currency, data=data
    )
    try:
        with session.begin_nested():
            session.add(
                BankCallback(
                    callback_id=callback_id,
                    instruction_ref=ref,
                    status=status.value,
                    outcome=outcome.value,
                    received_at=ctx.now(),
                    body=data,
                )
            )
            session.flush()
    except IntegrityError:  # the same callback raced in on another connection: it did the work
        raise _Duplicate("the same callback is being processed; it will be applied once") from None
    return CallbackResult(outcome, ref, status.value)


class _Duplicate(InvalidInput):
    status = 409
    code = "duplicate-callback"
    title = "The same callback is being processed"


def _settle(
    session: Session,
    *,
    ctx: Context,
    instruction: Instruction | None,
    status: InstructionStatus,
    amount: int,
    currency: str,
    data: dict[str, Any],
) -> CallbackOutcome:
    if instruction is None:
        raise_alert(
            session,
            ctx=ctx,
            kind="bank.unknown_instruction",
            severity="high",
            subject_en=f"The bank reported on an instruction we never sent: {data.get('instruction_ref')}",
            subject_zh=f"银行回报了一条平台未发出的指令：{data.get('instruction_ref')}",
            detail=data,
        )
        return CallbackOutcome.UNKNOWN_INSTRUCTION
    current = InstructionStatus(instruction.status)
    if current is not InstructionStatus.PENDING:
        if current is status:
            return CallbackOutcome.ALREADY_FINAL
        raise_alert(
            session,
            ctx=ctx,
            kind="bank.contradiction",
            severity="high",
            subject_en=f"The bank said {current.value} and then {status.value} for {instruction.ref}",
            subject_zh=f"银行对指令 {instruction.ref} 先回报{current.value}后回报{status.value}",
            detail=data,
        )
        return CallbackOutcome.CONFLICT
    if status is InstructionStatus.CONFIRMED and (
        amount != instruction.amount or currency != instruction.currency
    ):
        raise_alert(
            session,
            ctx=ctx,
            kind="bank.amount_mismatch",
            severity="high",
            subject_en=f"The bank confirmed {amount} {currency} for {instruction.ref} of "
            f"{instruction.amount} {instruction.currency}",
            subject_zh=f"银行确认金额 {amount} {currency} 与指令 {instruction.ref} 的金额"
            f" {instruction.amount} 不符",
            detail=data,
        )
        return CallbackOutcome.CONFLICT
    kind = InstructionKind(instruction.kind)
    if status is InstructionStatus.CONFIRMED:
        if kind in (InstructionKind.DEPOSIT, InstructionKind.COLLECTION):
            # Money arrived at the custodian: escrow cash up, the owner's (or the loan's) account up.
            instruction.entry_id = ledger.post_entry(
                session,
                ctx=ctx,
                legs=transfer(instruction.escrow_account_id, instruction.ledger_account_id, amount, currency),
                kind=kind.value,
                description=f"{kind.value} {instruction.ref}",
                external_ref=instruction.ref,
            )
        elif instruction.hold_id is not None:
            instruction.entry_id = ledger.post_hold(
                session,
                ctx=ctx,
                hold_id=instruction.hold_id,
                kind=kind.value,
                description=f"{kind.value} {instruction.ref}",
                external_ref=instruction.ref,
            )
    elif instruction.hold_id is not None:
        ledger.void_hold(session, ctx=ctx, hold_id=instruction.hold_id)
    instruction.status = status.value
    instruction.bank_reference = str(data.get("bank_reference") or "") or None
    instruction.failure_reason = (
        str(data.get("reason") or "") or None if status is InstructionStatus.FAILED else None
    )
    instruction.resolved_at = ctx.now()
    for hook in _settle_hooks():
        hook(session, ctx, instruction)
    audit.record(
        session,
        ctx=ctx,
        action=f"custody.{kind.value}_{status.value}",
        object_type="instruction",
        object_id=instruction.id,
        before={"status": "pending"},
        after={"status": status.value},
        detail={"bank_reference": instruction.bank_reference},
    )
    shown = str(Money(instruction.amount, instruction.currency))
    if status is InstructionStatus.CONFIRMED:
        en, zh = f"{kind.value} of {shown} confirmed by the bank", f"银行已确认{_ZH[kind]} {shown}"
    else:
        en = f"{kind.value} of {shown} failed at the bank: {instruction.failure_reason}"
        zh = f"{_ZH[kind]} {shown} 银行处理失败：{instruction.failure_reason}"
    notify_organisation(
        session,
        ctx=ctx,
        organisation_id=instruction.organisation_id,
        message=Message(
            kind=f"custody.{kind.value}.{status.value}",
            subject_en=en,
            subject_zh=zh,
            body_en=f"{en} (instruction {instruction.ref}).",
            body_zh=f"{zh}（指令 {instruction.ref}）。",
            link="/enterprise/loans"
            if kind in (InstructionKind.PAYOUT, InstructionKind.COLLECTION)
            else "/investor/money",
        ),
    )
    return CallbackOutcome.APPLIED


_ZH = {
    InstructionKind.DEPOSIT: "充值",
    InstructionKind.WITHDRAWAL: "提现",
    InstructionKind.PAYOUT: "放款",
    InstructionKind.REFUND: "退款",
    InstructionKind.COLLECTION: "收款",
    InstructionKind.TRANSFER: "转账",
}


# --- what parties see ----------------------------------------------------------------------------


def visible_instruction(session: Session, *, ctx: Context, instruction_id: uuid.UUID) -> Instruction:
    if not ctx.actor.sees_all_organisations:
        require(ctx, Action.READ_OWN_ACCOUNTS)
    instruction = session.get(Instruction, instruction_id)
    if instruction is None or not (
        ctx.actor.sees_all_organisations
        or ctx.actor.organisation_id in (instruction.organisation_id, instruction.bank_org_id)
    ):
        raise NotFound("no such instruction")
    return instruction


def my_instructions(session: Session, *, ctx: Context, limit: int = 50) -> list[Instruction]:
    require(ctx, Action.READ_OWN_ACCOUNTS)
    return list(
        session.scalars(
            select(Instruction)
            .where(Instruction.organisation_id == ctx.actor.organisation_id)
            .order_by(Instruction.created_at.desc(), Instruction.id.desc())
            .limit(limit)
        ).all()
    )


def my_accounts(session: Session, *, ctx: Context) -> list[tuple[LedgerAccount, Balance]]:
    require(ctx, Action.READ_OWN_ACCOUNTS)
    rows = session.scalars(
        select(LedgerAccount)
        .where(LedgerAccount.owner_org_id == ctx.actor.organisation_id)
        .order_by(LedgerAccount.purpose, LedgerAccount.currency)
    ).all()
    return [(row, ledger.balance(session, row.id)) for row in rows]


def visible_account(session: Session, *, ctx: Context, account_id: uuid.UUID) -> LedgerAccount:
    account = session.get(LedgerAccount, account_id)
    if account is None or not (
        ctx.actor.sees_all_organisations
        or (
            account.owner_org_id is not None
            and account.owner_org_id == ctx.actor.organisation_id
            and account.purpose != accounts.Purpose.ESCROW_CASH.value
        )
    ):
        raise NotFound("no such account")
    return account


def verify_bank_account(
    session: Session, *, ctx: Context, bank_account_id: uuid.UUID, evidence: str
) -> BankAccount:
    """An admitted authentication agency confirms a party's bank account is genuinely its own."""
    require(ctx, Action.VERIFY_BANK_ACCOUNT)
    parties.require_admitted(session, ctx=ctx)
    from yunrong.parties.tables import Agency

    agency = session.get(Agency, ctx.actor.organisation_id)
    if agency is None or "authentication" not in agency.types:
        raise NotFound("only authentication agencies verify bank accounts")
    account = session.get(BankAccount, bank_account_id)
    if account is None:
        raise NotFound("no such bank account")
    if not evidence.strip():
        raise InvalidInput("say how it was verified", [FieldProblem(("evidence",), "required")])
    if account.verified_at is None:
        account.verified_at = ctx.now()
        account.verified_by = f"{ctx.actor.email} ({evidence.strip()[:150]})"
        audit.record(
            session,
            ctx=ctx,
            action="bank_account.verify",
            object_type="bank_account",
            object_id=account.id,
            detail={"evidence": evidence.strip()[:500]},
        )
    return account


def encode_body(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
