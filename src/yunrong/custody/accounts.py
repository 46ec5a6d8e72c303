"""The chart of accounts for custody.

Money sits in one segregated escrow account per currency at the custodian bank (an asset of the
books we keep on the bank's behalf). Against it, sub-accounts say whose it is: each investor's
available and held money, each loan's collections, each enterprise's payout, each guarantor's
deposit, the risk reserve. Only the platform's fee income is the platform's own money.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from yunrong.identity.model import Context
from yunrong.identity.tables import Organisation
from yunrong.ledger import service as ledger
from yunrong.ledger.model import AccountType
from yunrong.ledger.tables import LedgerAccount


class Purpose(StrEnum):
    ESCROW_CASH = "escrow_cash"  # asset: the segregated escrow account at the custodian bank
    INVESTOR_AVAILABLE = "investor_available"  # liability: an investor's free money
    INVESTOR_HELD = "investor_held"  # liability: an investor's money committed, awaiting funding
    LOAN_COLLECTION = "loan_collection"  # liability: repayments collected for a loan's investors
    ENTERPRISE_PAYOUT = "enterprise_payout"  # liability: money due to an enterprise, before payout
    GUARANTOR_DEPOSIT = "guarantor_deposit"  # liability: a guarantor's deposit
    RISK_RESERVE = "risk_reserve"  # liability: the reserve funded by a disclosed fee
    PLATFORM_FEE_INCOME = "platform_fee_income"  # income: the only money the platform owns
    ADJUSTMENT_SUSPENSE = "adjustment_suspense"  # liability: where approved corrections park
    # The loan book (memo accounts, outside escrow): what borrowers owe (principal, accrued interest
    # and penalty) against what is owed on to the note holders. Per currency; per loan in the
    # servicing sub-ledger, which they control.
    LOAN_BOOK = "loan_book"  # asset: borrowers' debt on active loans
    INVESTOR_CLAIMS = "investor_claims"  # liability: the note holders' claims on that debt


PURPOSE_TYPES: dict[Purpose, AccountType] = {
    Purpose.ESCROW_CASH: AccountType.ASSET,
    Purpose.INVESTOR_AVAILABLE: AccountType.LIABILITY,
    Purpose.INVESTOR_HELD: AccountType.LIABILITY,
    Purpose.LOAN_COLLECTION: AccountType.LIABILITY,
    Purpose.ENTERPRISE_PAYOUT: AccountType.LIABILITY,
    Purpose.GUARANTOR_DEPOSIT: AccountType.LIABILITY,
    Purpose.RISK_RESERVE: AccountType.LIABILITY,
    Purpose.PLATFORM_FEE_INCOME: AccountType.INCOME,
    Purpose.ADJUSTMENT_SUSPENSE: AccountType.LIABILITY,
    Purpose.LOAN_BOOK: AccountType.ASSET,
    Purpose.INVESTOR_CLAIMS: AccountType.LIABILITY,
}

#: What the regulator's monitor calls each class of account.
PURPOSE_LABELS: dict[Purpose, tuple[str, str]] = {
    Purpose.ESCROW_CASH: ("Escrow cash at the custodian", "存管银行托管资金"),
    Purpose.INVESTOR_AVAILABLE: ("Investors' available money", "投资人可用资金"),
    Purpose.INVESTOR_HELD: ("Investors' committed money", "投资人冻结资金"),
    Purpose.LOAN_COLLECTION: ("Loan collections", "借款回款"),
    Purpose.ENTERPRISE_PAYOUT: ("Enterprise payouts", "企业待放款"),
    Purpose.GUARANTOR_DEPOSIT: ("Guarantor deposits", "担保保证金"),
    Purpose.RISK_RESERVE: ("Risk reserve", "风险准备金"),
    Purpose.PLATFORM_FEE_INCOME: ("Platform fee income", "平台服务费收入"),
    Purpose.ADJUSTMENT_SUSPENSE: ("Adjustment suspense", "调账过渡"),
    Purpose.LOAN_BOOK: ("Loan book (borrowers' debt)", "借款余额（借款人欠款）"),
    Purpose.INVESTOR_CLAIMS: ("Note holders' claims", "出借人债权"),
}


def _code(purpose: Purpose, currency: str, key: str) -> str:
    return f"{purpose.value}:{currency}:{key}"


def _account(
    session: Session,
    ctx: Context,
    purpose: Purpose,
    currency: str,
    key: str,
    name: str,
    owner_org_id: uuid.UUID | None = None,
    subject_id: str | None = None,
) -> LedgerAccount:
    # The escrow may not go below zero (the bank cannot pay out money it does not hold), and no
    # owner's sub-account may either. Only the suspense account used by adjustments may.
    return ledger.get_or_open_account(
        session,
        ctx=ctx,
        code=_code(purpose, currency, key),
        name=name,
        type=PURPOSE_TYPES[purpose],
        currency=currency,
        purpose=purpose.value,
        owner_org_id=owner_org_id,
        subject_id=subject_id,
        no_overdraft=purpose is not Purpose.ADJUSTMENT_SUSPENSE,
    )


def escrow_cash(session: Session, ctx: Context, bank: Organisation, currency: str) -> LedgerAccount:
    return _account(session, ctx, Purpose.ESCROW_CASH, currency, bank.ref, f"Escrow at {bank.name}", bank.id)


def investor_available(
    session: Session, ctx: Context, investor: Organisation, currency: str
) -> LedgerAccount:
    return _account(
        session,
        ctx,
        Purpose.INVESTOR_AVAILABLE,
        currency,
        investor.ref,
        f"{investor.name}: available",
        investor.id,
    )


def investor_available_ids(
    session: Session, investors: Sequence[Organisation], currency: str
) -> dict[uuid.UUID, uuid.UUID]:
    """The investors' available-money accounts in ``currency`` that exist, found in one query
    (:func:`investor_available` opens a missing one, in its owner's name)."""
    codes = {_code(Purpose.INVESTOR_AVAILABLE, currency, org.ref): org for org in investors}
    if not codes:
        return {}
    query = select(LedgerAccount.code, LedgerAccount.id).where(LedgerAccount.code.in_(sorted(codes)))
    return {codes[code].id: account_id for code, account_id in session.execute(query)}


def investor_held(session: Session, ctx: Context, investor: Organisation, currency: str) -> LedgerAccount:
    return _account(
        session, ctx, Purpose.INVESTOR_HELD, currency, investor.ref, f"{investor.name}: held", investor.id
    )


def enterprise_payout(
    session: Session, ctx: Context, enterprise: Organisation, currency: str
) -> LedgerAccount:
    return _account(
        session,
        ctx,
        Purpose.ENTERPRISE_PAYOUT,
        currency,
        enterprise.ref,
        f"{enterprise.name}: payout",
        enterprise.id,
    )


def guarantor_deposit(
    session: Session, ctx: Context, guarantor: Organisation, currency: str
) -> LedgerAccount:
    return _account(
        session,
        ctx,
        Purpose.GUARANTOR_DEPOSIT,
        currency,
        guarantor.ref,
        f"{guarantor.name}: deposit",
        guarantor.id,
    )


def loan_collection(session: Session, ctx: Context, loan_ref: str, currency: str) -> LedgerAccount:
    return _account(
        session,
        ctx,
        Purpose.LOAN_COLLECTION,
        currency,
        loan_ref,
        f"Loan {loan_ref}: collection",
        subject_id=loan_ref,
    )


def risk_reserve(session: Session, ctx: Context, currency: str) -> LedgerAccount:
    return _account(session, ctx, Purpose.RISK_RESERVE, currency, "platform", "Risk reserve")


def platform_fee_income(session: Session, ctx: Context, currency: str) -> LedgerAccount:
    return _account(session, ctx, Purpose.PLATFORM_FEE_INCOME, currency, "platform", "Platform fee income")


def adjustment_suspense(session: Session, ctx: Context, currency: str) -> LedgerAccount:
    return _account(session, ctx, Purpose.ADJUSTMENT_SUSPENSE, currency, "platform", "Adjustment suspense")


def loan_book(session: Session, ctx: Context, currency: str) -> LedgerAccount:
    return _account(session, ctx, Purpose.LOAN_BOOK, currency, "book", "Loan book")


def investor_claims(session: Session, ctx: Context, currency: str) -> LedgerAccount:
    return _account(session, ctx, Purpose.INVESTOR_CLAIMS, currency, "book", "Note holders' claims")
