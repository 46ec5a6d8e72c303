"""Loan agreements: the terms as data, rendered to a PDF whose SHA-256 is what parties accept.

The agreement form of a listing (its terms, with the lenders to be listed in an annex at funding)
is what investors accept when they commit; the final agreement names every lender and is what the
borrower, and a lending bank, accept before the money is paid out.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from yunrong.config import Settings, get_settings
from yunrong.custody.service import platform_custodian
from yunrong.demands.tables import Demand
from yunrong.identity.model import Context
from yunrong.identity.tables import Organisation
from yunrong.investing.agreement import (
    AgreementTerms,
    Borrower,
    Fee,
    Lender,
    ScheduleRow,
    agreement_sha256,
    render_agreement,
    terms_as_dict,
)
from yunrong.investing.tables import FundingRound, Loan, LoanAgreement, Note
from yunrong.kit.clock import business_date
from yunrong.parties.tables import Enterprise
from yunrong.servicing.rates import nominal_apr
from yunrong.servicing.schedules import build_schedule

FORM_LENDERS_EN = "The investors listed in the annex at funding"


def _penalty_text(settings: Settings) -> str:
    return (
        "Overdue amounts bear penalty interest at 1.5 times the contract rate (the contract rate plus a "
        "50% surcharge), and the all-in cost stays within the cap of the governing rules. / 逾期部分按合同"
        "利率上浮 50%（即合同利率的 1.5 倍）计收罚息，综合费率不超过监管上限。"
    )


def _terms(
    session: Session,
    *,
    demand: Demand,
    principal: int,
    annual_rate: Decimal,
    term_months: int,
    repayment_method: str,
    fee_minor: int,
    lenders: list[tuple[str, str, int]],
    lender_kind: str,
    loan_ref: str,
    start: date,
    created_at: datetime,
    settings: Settings,
) -> AgreementTerms:
    enterprise = session.get(Organisation, demand.organisation_id)
    facts = session.get(Enterprise, demand.organisation_id)
    policy = settings.policy
    schedule = build_schedule(
        principal=principal,
        annual_rate=annual_rate,
        term_months=term_months,
        method=repayment_method,
        start_date=start,
    )
    apr = nominal_apr(schedule, fee_minor)
    collateral = [str(c.get("description") or c.get("kind") or c) for c in demand.collateral or []]
    try:
        custodian = platform_custodian(session).name
    except Exception:
        custodian = "the platform's custodian bank / 平台存管银行"
    return AgreementTerms(
        loan_ref=loan_ref,
        demand_ref=demand.ref,
        product=demand.product,
        lender_kind=lender_kind,
        borrower=Borrower(
            name=enterprise.name if enterprise else "",
            credit_code=facts.credit_code if facts is not None else "",
            address=None,
        ),
        lenders=tuple(Lender(name=name, ref=ref, principal_minor=amount) for name, ref, amount in lenders),
        custodian_bank=custodian,
        principal_minor=principal,
        currency=demand.currency,
        annual_rate=annual_rate,
        apr=apr,
        fees=(
            (Fee("Platform service fee (one-off)", "平台服务费（一次性）", fee_minor, "platform"),)
            if fee_minor
            else ()
        ),
        repayment_method=repayment_method,
        term_months=term_months,
        schedule=tuple(
            ScheduleRow(i.number, i.due_date, i.principal, i.interest, i.payment, i.balance_after)
            for i in schedule.instalments
        ),
        guarantee=None,
        insurance=None,
        collateral=tuple(collateral),
        policy_key=policy.key,
        policy_name_en=policy.name_en,
        policy_name_zh=policy.name_zh,
        interest_cap_text=(
            f"All-in annual cost at most {policy.lpr_multiple_cap}x the one-year LPR at the contract date"
            f" / 综合年化成本不超过合同成立日一年期 LPR 的 {policy.lpr_multiple_cap} 倍"
            if policy.lpr_multiple_cap is not None
            else "No statutory all-in cap applies under this profile / 本监管配置无法定综合费率上限"
        ),
        penalty_text=_penalty_text(settings),
        no_upfront_deduction_text=(
            "No interest is deducted from the principal up front; the borrower receives the principal"
            " less only the disclosed fees listed in the fees article."
            " / 不得预先从本金中扣除利息；借款人收到的本金仅扣除费用条款所列的已披露费用。"
        ),
        dispute_resolution_text=(
            "Disputes go to the people's court where the platform operator is domiciled."
            " / 争议由平台运营方住所地人民法院管辖。"
        ),
        created_at=created_at,
    )


def form_sha256(
    session: Session, demand: Demand, funding: FundingRound, settings: Settings | None = None
) -> str:
    """The hash of the listing's agreement form, rendered when the round opens and kept on it."""
    if funding.form_sha256:
        return funding.form_sha256
    settings = settings or get_settings()
    from yunrong.investing.loans import fee_of

    terms = _terms(
        session,
        demand=demand,
        principal=funding.target_minor,
        annual_rate=funding.annual_rate,
        term_months=demand.term_months,
        repayment_method=demand.repayment_method,
        fee_minor=fee_of(funding.target_minor, settings),
        lenders=[(FORM_LENDERS_EN, "annex", funding.target_minor)],
        lender_kind="investors",
        loan_ref=f"{demand.ref}-FORM",
        start=business_date(funding.opens_at, settings.timezone),
        created_at=funding.opens_at,
        settings=settings,
    )
    funding.form_sha256 = agreement_sha256(render_agreement(terms))
    session.flush()
    return funding.form_sha256


def generate_agreement(session: Session, *, ctx: Context, loan: Loan, settings: Settings) -> LoanAgreement:
    """Render the final agreement naming every lender; store the PDF and its hash."""
    demand = session.get(Demand, loan.demand_id)
    assert demand is not None
    lenders: list[tuple[str, str, int]] = []
    for note in session.scalars(select(Note).where(Note.loan_id == loan.id).order_by(Note.ref)):
        org = session.get(Organisation, note.investor_org_id)
        lenders.append((org.name if org else "", org.ref if org else "", note.principal_minor))
    terms = _terms(
        session,
        demand=demand,
        principal=loan.principal_minor,
        annual_rate=loan.annual_rate,
        term_months=loan.term_months,
        repayment_method=loan.repayment_method,
        fee_minor=loan.fee_minor,
        lenders=lenders,
        lender_kind=loan.lender_kind,
        loan_ref=loan.ref,
        start=business_date(loan.created_at, settings.timezone),
        created_at=loan.created_at,
        settings=settings,
    )
    pdf = render_agreement(terms)
    row = LoanAgreement(
        loan_id=loan.id,
        sha256=agreement_sha256(pdf),
        pdf=pdf,
        terms=terms_as_dict(terms),
        created_at=ctx.now(),
    )
    session.add(row)
    session.flush()
    return row


def apr_above_cap(
    session: Session,
    *,
    settings: Settings,
    principal: int,
    annual_rate: Decimal,
    term_months: int,
    method: str,
    fee_minor: int,
    on: date,
) -> str | None:
    """Why a loan on these terms would break the policy's all-in cap, judged by its disclosed APR
    (the IRR of the borrower's flows, every fee included); None when it does not."""
    from yunrong.supervision import rates as lpr_rates

    try:
        cap = lpr_rates.cap_on(session, settings.policy, on)  # percent, or None
    except ValueError:
        return "no LPR is known for today, so the all-in cap cannot be checked"
    if cap is None:
        return None
    schedule = build_schedule(
        principal=principal, annual_rate=annual_rate, term_months=term_months, method=method, start_date=on
    )
    apr = nominal_apr(schedule, fee_minor) * 100
    if apr > cap:
        return (
            f"the APR with every fee is {apr.quantize(Decimal('0.01'))}%, above the cap of {cap.normalize()}%"
        )
    return None
