"""Step 5 for bank loans: admitted banks make direct offers on listed bank-loan demands.

Banks are investors too. A bank-loan demand is open to every admitted bank unless the enterprise
addressed it to some (``product_facts["target_bank_ids"]``); a bank sees the demands open to it and
makes one offer per demand at a time: amount, annual rate, term, repayment method, conditions and
how long the offer stands. The rate must respect the enterprise's stated maximum and the policy's
all-in cap (4 × the one-year LPR under cn-2016, with the disclosed platform fee spread over the
term exactly as the credit engine does when it prices a demand).

When the enterprise accepts an offer, the bank's money moves in escrow from the bank's sub-account
to the enterprise's payout account (a ledger hold posted at once, so double entry holds and the
bank can never lend money it does not have), the loan is booked with one note, the bank's, every
other open offer on the demand is superseded and the demand becomes funded. From there the loan is
contracted and paid out exactly like a P2P loan: the bank and the enterprise accept the agreement
by its hash and the custodian pays the enterprise's verified account.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from yunrong.config import Settings
from yunrong.custody import accounts
from yunrong.db import is_postgres
from yunrong.demands.model import MAX_TERM_MONTHS, METHODS, MIN_TERM_MONTHS, DemandStatus, Product
from yunrong.demands.model import RepaymentMethod as Method
from yunrong.demands.tables import Demand
from yunrong.identity.model import Action, Context, OrgType
from yunrong.identity.service import require
from yunrong.identity.tables import Organisation
from yunrong.investing import loans
from yunrong.investing.model import LenderKind, ListingClosed, OfferNotOpen, OfferStatus
from yunrong.investing.tables import BankOffer
from yunrong.kit.clock import business_date
from yunrong.kit.errors import Conflict, FieldProblem, InvalidInput, NotFound, PermissionDenied
from yunrong.kit.ids import human_ref
from yunrong.kit.money import Money
from yunrong.ledger import service as ledger
from yunrong.messaging.service import Message, notify_organisation
from yunrong.parties import service as parties
from yunrong.parties.model import QualificationStatus, blocking_status
from yunrong.supervision import rates
from yunrong.supervision import service as audit
from yunrong.verification.listings import LISTED

BP = Decimal("0.0001")
#: Methods repaid in instalments of principal: the fee's annualised weight is doubled (the average
#: balance is about half the principal), as in `yunrong.credit.pricing.price`.
AMORTISING = frozenset({Method.EQUAL_INSTALMENT.value, Method.EQUAL_PRINCIPAL.value})


# --- refusals ------------------------------------------------------------------------------------------


class OfferRefused(InvalidInput):
    code = "offer-refused"
    title = "The offer breaks a rule"


class OfferExists(Conflict):
    code = "offer-exists"
    title = "The bank already has an open offer on this demand"


class BankFundsShort(Conflict):
    code = "bank-funds-insufficient"
    title = "The bank's escrow account does not hold the loan amount"


class BankNotAdmitted(Conflict):
    code = "bank-not-admitted"
    title = "The offering bank is no longer admitted"


def _refused(problems: list[FieldProblem]) -> OfferRefused:
    """Every problem at once; the first rule leads the detail (and is errors[0].type)."""
    return OfferRefused(f"{problems[0].type}: {problems[0].msg}", problems)


# --- pure rules ------------------------------------------------------------------------------------------


def all_in_rate(
    annual_rate: Decimal, fee_minor: int, principal: int, term_months: int, method: str
) -> Decimal:
    """The all-in annual rate checked against the cap: the contract rate plus the one-off fee spread
    over the term (doubled for amortising methods), rounded up to a basis point. The same formula
    the credit engine uses, so an offer and a priced listing meet the same cap the same way."""
    fee_rate = (
        Decimal(fee_minor) * 12 * (2 if method in AMORTISING else 1) / (Decimal(principal) * term_months)
    ).quantize(BP, rounding=ROUND_CEILING)
    return annual_rate + fee_rate


def addressed_banks(demand: Demand) -> frozenset[str]:
    """The banks a demand is addressed to (empty: open to every admitted bank)."""
    facts = demand.product_facts or {}
    return frozenset(str(b) for b in facts.get("target_bank_ids") or ())


def open_to_bank(demand: Demand, bank_org_id: uuid.UUID) -> bool:
    """A listed bank-loan demand, addressed to this bank or to nobody in particular."""
    if demand.product != Product.BANK_LOAN.value or demand.status not in LISTED:
        return False
    targets = addressed_banks(demand)
    return not targets or str(bank_org_id) in targets


# --- helpers -----------------------------------------------------------------------------------------


def _bank_org(session: Session, ctx: Context) -> Organisation:
    actor = ctx.actor
    if actor.org_type is not OrgType.CUSTODIAN_BANK or actor.organisation_id is None:
        raise PermissionDenied("only banks make direct offers")
    parties.require_admitted(session, ctx=ctx)
    org = session.get(Organisation, actor.organisation_id)
    assert org is not None
    return org


def _lock_demand(session: Session, demand_id: uuid.UUID) -> Demand | None:
    query = select(Demand).where(Demand.id == demand_id).with_for_update()
    return session.execute(query.execution_options(populate_existing=True)).scalar_one_or_none()


def _lock_offer(session: Session, offer_id: uuid.UUID) -> BankOffer | None:
    query = select(BankOffer).where(BankOffer.id == offer_id).with_for_update()
    return session.execute(query.execution_options(populate_existing=True)).scalar_one_or_none()


def _cap_percent(session: Session, ctx: Context, settings: Settings) -> Decimal | None:
    try:
        return rates.cap_on(session, settings.policy, business_date(ctx.now(), settings.timezone))
    except ValueError:
        raise OfferRefused(
            "lpr-unknown: no one-year LPR is recorded for today, so the legal cap cannot be checked",
            [FieldProblem(("annual_rate_percent",), "no LPR recorded", type="lpr-unknown")],
        ) from None


def _rate_problems(
    session: Session,
    ctx: Context,
    settings: Settings,
    demand: Demand,
    *,
    annual_rate: Decimal,
    fee_minor: int,
    amount: int,
    term_months: int,
    method: str,
) -> list[FieldProblem]:
    """The enterprise's maximum (the contract rate, percent on the demand) and the legal cap (all-in)."""
    problems: list[FieldProblem] = []
    field = ("annual_rate_percent",)
    percent = annual_rate * 100
    if percent > demand.max_annual_rate:
        problems.append(
            FieldProblem(
                field,
                f"{percent.normalize()}% is above the enterprise's maximum of "
                f"{demand.max_annual_rate.normalize()}%",
                type="above-enterprise-maximum",
            )
        )
    cap = _cap_percent(session, ctx, settings)
    if cap is not None:
        all_in = all_in_rate(annual_rate, fee_minor, amount, term_months, method) * 100
        if all_in > cap:
            problems.append(
                FieldProblem(
                    field,
                    f"the all-in rate {all_in.normalize()}% (the rate plus the disclosed fee) is above "
                    f"the legal cap of {cap.normalize()}% "
                    f"({settings.policy.lpr_multiple_cap} × the one-year LPR)",
                    type="above-rate-cap",
                )
            )
        else:  # the rate-plus-fee check passed: the disclosed APR (IRR, every fee) must pass too
            from yunrong.investing.contracts import apr_above_cap

            why = apr_above_cap(
                session,
                settings=settings,
                principal=amount,
                annual_rate=annual_rate,
                term_months=term_months,
                method=method,
                fee_minor=fee_minor,
                on=business_date(ctx.now(), settings.timezone),
            )
            if why is not None:
                problems.append(FieldProblem(field, why, type="above-rate-cap"))
    return problems


def _tell(
    session: Session,
    ctx: Context,
    organisation_id: uuid.UUID,
    kind: str,
    en: tuple[str, str],
    zh: tuple[str, str],
    link: str,
) -> None:
    notify_organisation(
        session,
        ctx=ctx,
        organisation_id=organisation_id,
        message=Message(
            kind=kind, subject_en=en[0], body_en=en[1], subject_zh=zh[0], body_zh=zh[1], link=link
        ),
    )


def _shown(offer: BankOffer) -> str:
    return str(Money(offer.amount_minor, offer.currency))


def _percent(rate: Decimal) -> str:
    return f"{(rate * 100).normalize()}%"


# --- what banks see -----------------------------------------------------------------------------------


def offerable_demands(session: Session, *, ctx: Context, limit: int = 100) -> list[Demand]:
    """The listed bank-loan demands open to the calling bank (addressed to it, or to nobody)."""
    require(ctx, Action.MAKE_OFFERS)
    bank = _bank_org(session, ctx)
    rows = session.scalars(
        select(Demand)
        .where(Demand.product == Product.BANK_LOAN.value, Demand.status.in_(LISTED))
        .order_by(Demand.listed_at.desc(), Demand.id)
        .limit(2_000)
    ).all()
    return [d for d in rows if open_to_bank(d, bank.id)][: min(max(1, limit), 500)]


def open_offer_of(session: Session, demand_id: uuid.UUID, bank_org_id: uuid.UUID) -> BankOffer | None:
    return session.scalars(
        select(BankOffer).where(
            BankOffer.demand_id == demand_id,
            BankOffer.bank_org_id == bank_org_id,
            BankOffer.status == OfferStatus.OPEN.value,
        )
    ).first()


# --- making, withdrawing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class OfferRequest:
    demand_id: uuid.UUID
    amount: int  # minor units
    currency: str
    annual_rate: Decimal  # fraction, e.g. Decimal("0.065")
    term_months: int
    repayment_method: str
    conditions: str
    valid_until: datetime


def create_offer(session: Session, *, ctx: Context, settings: Settings, req: OfferRequest) -> BankOffer:
    """An admitted bank offers a loan on a listed bank-loan demand open to it."""
    require(ctx, Action.MAKE_OFFERS)
    bank = _bank_org(session, ctx)
    demand = _lock_demand(session, req.demand_id)
    if demand is None or not open_to_bank(demand, bank.id):
        raise NotFound("no such bank-loan demand open to your offers")
    now = ctx.now()
    problems: list[FieldProblem] = []
    if req.currency != demand.currency:
        problems.append(FieldProblem(("currency",), f"this demand is in {demand.currency}", type="currency"))
    amount = req.amount
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        problems.append(
            FieldProblem(("amount",), "the amount must be a positive whole number", type="amount-positive")
        )
    elif amount > demand.amount_minor:
        problems.append(
            FieldProblem(
                ("amount",),
                f"the enterprise asks for {Money(demand.amount_minor, demand.currency)}; offer at most that",
                type="above-demand-amount",
            )
        )
    elif demand.min_funding_minor is not None and amount < demand.min_funding_minor:
        problems.append(
            FieldProblem(
                ("amount",),
                f"the enterprise accepts no less than {Money(demand.min_funding_minor, demand.currency)}",
                type="below-minimum-funding",
            )
        )
    if not MIN_TERM_MONTHS <= req.term_months <= MAX_TERM_MONTHS:
        problems.append(
            FieldProblem(
                ("term_months",),
                f"the term must be {MIN_TERM_MONTHS} to {MAX_TERM_MONTHS} months",
                type="term-out-of-range",
            )
        )
    if req.repayment_method not in {m.value for m in METHODS[Product.BANK_LOAN]}:
        allowed = ", ".join(sorted(m.value for m in METHODS[Product.BANK_LOAN]))
        problems.append(
            FieldProblem(
                ("repayment_method",), f"a bank loan is repaid by {allowed}", type="repayment-method"
            )
        )
    if req.annual_rate <= 0:
        problems.append(
            FieldProblem(("annual_rate_percent",), "the rate must be above zero", type="rate-positive")
        )
    if req.valid_until <= now:
        problems.append(
            FieldProblem(
                ("valid_until",), "the offer must stand until a time in the future", type="valid-until-past"
            )
        )
    if not req.conditions.strip():
        problems.append(
            FieldProblem(
                ("conditions",), "state the offer's conditions (or 'none')", type="conditions-required"
            )
        )
    fee = loans.fee_of(amount, settings) if isinstance(amount, int) and amount > 0 else 0
    if not problems:
        problems += _rate_problems(
            session,
            ctx,
            settings,
            demand,
            annual_rate=req.annual_rate,
            fee_minor=fee,
            amount=amount,
            term_months=req.term_months,
            method=req.repayment_method,
        )
    if problems:
        raise _refused(problems)
    existing = open_offer_of(session, demand.id, bank.id)
    if existing is not None:
        raise OfferExists(f"your offer {existing.ref} on {demand.ref} is still open; withdraw it first")
    offer = BankOffer(
        ref=human_ref("OF", 10),
        demand_id=demand.id,
        bank_org_id=bank.id,
        amount_minor=amount,
        currency=demand.currency,
        annual_rate=req.annual_rate,
        fee_minor=fee,
        term_months=req.term_months,
        repayment_method=req.repayment_method,
        conditions=req.conditions.strip(),
        status=OfferStatus.OPEN.value,
        valid_until=req.valid_until,
        created_by=ctx.actor.email,
        created_at=now,
    )
    session.add(offer)
    session.flush()
    audit.record(
        session,
        ctx=ctx,
        action="offer.made",
        object_type="bank_offer",
        object_id=offer.id,
        after={
            "ref": offer.ref,
            "demand": demand.ref,
            "amount_minor": amount,
            "annual_rate": str(offer.annual_rate),
            "fee_minor": fee,
            "term_months": offer.term_months,
            "repayment_method": offer.repayment_method,
            "valid_until": offer.valid_until.isoformat(),
        },
    )
    _tell(
        session,
        ctx,
        demand.organisation_id,
        "offer.received",
        (
            f"{bank.name} offers {_shown(offer)} at {_percent(offer.annual_rate)} for {demand.ref}",
            f"Offer {offer.ref}: {offer.term_months} months, {offer.repayment_method.replace('_', ' ')}; "
            f"valid until {offer.valid_until.isoformat()}. Conditions: {offer.conditions}",
        ),
        (
            f"{bank.name} 为 {demand.ref} 提供 {_shown(offer)} 贷款报价，"
            f"年利率 {_percent(offer.annual_rate)}",
            f"报价 {offer.ref}：期限 {offer.term_months} 个月，有效期至 {offer.valid_until.isoformat()}。"
            f"条件：{offer.conditions}",
        ),
        f"/enterprise/demands/{demand.id}",
    )
    return offer


def _own_offer(session: Session, ctx: Context, offer_id: uuid.UUID) -> BankOffer:
    offer = _lock_offer(session, offer_id)
    if offer is None or offer.bank_org_id != ctx.actor.organisation_id:
        raise NotFound("no such offer")
    return offer


def _require_open(offer: BankOffer, now: datetime) -> None:
    if offer.status != OfferStatus.OPEN.value:
        raise OfferNotOpen(f"offer {offer.ref} is {offer.status}")
    if offer.valid_until <= now:
        raise OfferNotOpen(f"offer {offer.ref} expired at {offer.valid_until.isoformat()}")


def _resolve(session: Session, ctx: Context, offer: BankOffer, status: OfferStatus, reason: str) -> None:
    before = offer.status
    offer.status = status.value
    offer.decided_by = ctx.actor.email
    offer.decided_at = ctx.now()
    session.flush()
    audit.record(
        session,
        ctx=ctx,
        action=f"offer.{status.value}",
        object_type="bank_offer",
        object_id=offer.id,
        before={"status": before},
        after={"status": offer.status, "loan_id": str(offer.loan_id) if offer.loan_id else None},
        detail={"reason": reason},
    )


def withdraw_offer(session: Session, *, ctx: Context, offer_id: uuid.UUID, reason: str = "") -> BankOffer:
    """The bank withdraws its open offer."""
    require(ctx, Action.MAKE_OFFERS)
    offer = _own_offer(session, ctx, offer_id)
    if offer.status != OfferStatus.OPEN.value:
        raise OfferNotOpen(f"offer {offer.ref} is {offer.status}")
    text = reason.strip()[:500] or "withdrawn by the bank"
    _resolve(session, ctx, offer, OfferStatus.WITHDRAWN, text)
    demand = session.get(Demand, offer.demand_id)
    assert demand is not None
    _tell(
        session,
        ctx,
        demand.organisation_id,
        "offer.withdrawn",
        (f"Offer {offer.ref} on {demand.ref} was withdrawn by the bank", text),
        (f"{demand.ref} 的贷款报价 {offer.ref} 已被银行撤回", text),
        f"/enterprise/demands/{demand.id}",
    )
    return offer


# --- the enterprise's choice ----------------------------------------------------------------------------


def _enterprise_offer(session: Session, ctx: Context, offer_id: uuid.UUID) -> tuple[Demand, BankOffer]:
    """The offer (locked) and its demand (locked first), when the demand is the caller's; else 404."""
    row = session.get(BankOffer, offer_id)
    demand = _lock_demand(session, row.demand_id) if row is not None else None
    if row is None or demand is None or demand.organisation_id != ctx.actor.organisation_id:
        raise NotFound("no such offer")
    offer = _lock_offer(session, offer_id)
    assert offer is not None
    return demand, offer


def require_decidable(session: Session, *, ctx: Context, offer_id: uuid.UUID) -> None:
    """Refuse (403/404) anyone but the demand's enterprise administrators, before anything else is
    checked (the API asks for the Idempotency-Key only once the caller may decide)."""
    require(ctx, Action.DECIDE_FUNDING)
    row = session.get(BankOffer, offer_id)
    demand = session.get(Demand, row.demand_id) if row is not None else None
    if demand is None or demand.organisation_id != ctx.actor.organisation_id:
        raise NotFound("no such offer")


def decline_offer(session: Session, *, ctx: Context, offer_id: uuid.UUID, reason: str = "") -> BankOffer:
    """The enterprise declines an open offer; the bank is told why."""
    require(ctx, Action.DECIDE_FUNDING)
    demand, offer = _enterprise_offer(session, ctx, offer_id)
    if offer.status != OfferStatus.OPEN.value:
        raise OfferNotOpen(f"offer {offer.ref} is {offer.status}")
    text = reason.strip()[:500] or "declined by the enterprise"
    _resolve(session, ctx, offer, OfferStatus.DECLINED, text)
    _tell(
        session,
        ctx,
        offer.bank_org_id,
        "offer.declined",
        (f"Your offer {offer.ref} on {demand.ref} was declined", text),
        (f"您对 {demand.ref} 的贷款报价 {offer.ref} 被拒绝", text),
        "/bank/offers",
    )
    return offer


def _require_bank_admitted(session: Session, bank_org_id: uuid.UUID) -> Organisation:
    bank = session.get(Organisation, bank_org_id)
    qualification = parties.qualification_of(session, bank_org_id)
    status = QualificationStatus(qualification.status) if qualification else None
    if bank is None or blocking_status(status, OrgType.CUSTODIAN_BANK) is not None:
        raise BankNotAdmitted(
            "the bank that made this offer may not lend now (its admittance is not in force)"
        )
    return bank


def accept_offer(session: Session, *, ctx: Context, settings: Settings, offer_id: uuid.UUID) -> BankOffer:
    """The enterprise accepts an open offer: the bank's money moves to the enterprise's payout
    account in escrow, the loan is booked (one note, the bank's), the other offers are superseded
    and the demand is funded. The agreement is then accepted by both parties and paid out."""
    require(ctx, Action.DECIDE_FUNDING)
    demand, offer = _enterprise_offer(session, ctx, offer_id)
    parties.require_admitted(session, ctx=ctx)
    now = ctx.now()
    _require_open(offer, now)
    if demand.status not in LISTED:
        raise ListingClosed(f"demand {demand.ref} is {demand.status}")
    bank = _require_bank_admitted(session, offer.bank_org_id)
    # The cap is the cap at the contract date: re-checked now (the LPR may have moved).
    problems = _rate_problems(
        session,
        ctx,
        settings,
        demand,
        annual_rate=offer.annual_rate,
        fee_minor=offer.fee_minor,
        amount=offer.amount_minor,
        term_months=offer.term_months,
        method=offer.repayment_method,
    )
    if problems:
        raise _refused(problems)
    enterprise = session.get(Organisation, demand.organisation_id)
    assert enterprise is not None
    lending = accounts.investor_available(session, ctx, bank, offer.currency)
    if ledger.balance(session, lending.id).available < offer.amount_minor:
        raise BankFundsShort(
            f"{bank.name} has not yet paid {_shown(offer)} into escrow; the offer cannot be accepted now"
        )
    payout = accounts.enterprise_payout(session, ctx, enterprise, offer.currency)
    hold = ledger.place_hold(
        session,
        ctx=ctx,
        debit_account_id=lending.id,
        credit_account_id=payout.id,
        amount=offer.amount_minor,
        currency=offer.currency,
        description=f"bank offer {offer.ref} for {demand.ref}",
    )
    ledger.post_hold(
        session,
        ctx=ctx,
        hold_id=hold.id,
        kind="funding",
        description=f"funding {demand.ref} by {bank.name} (offer {offer.ref})",
        external_ref=offer.ref,
        timezone=settings.timezone,
    )
    loan = loans.book_loan(
        session,
        ctx=ctx,
        demand=demand,
        principal=offer.amount_minor,
        annual_rate=offer.annual_rate,
        lenders=[(bank.id, offer.amount_minor)],
        settings=settings,
        lender_kind=LenderKind.BANK,
        bank_org_id=bank.id,
        offer_id=offer.id,
        term_months=offer.term_months,
        repayment_method=offer.repayment_method,
        fee_minor=offer.fee_minor,
    )
    offer.loan_id = loan.id
    _resolve(session, ctx, offer, OfferStatus.ACCEPTED, f"accepted: loan {loan.ref}")
    _supersede_others(session, ctx, demand, offer)
    from yunrong.demands.service import move

    if demand.status == DemandStatus.LISTED.value:
        move(
            session,
            ctx=ctx,
            demand=demand,
            target=DemandStatus.FUNDING,
            reason=f"the enterprise accepted {bank.name}'s offer {offer.ref}",
        )
    move(
        session,
        ctx=ctx,
        demand=demand,
        target=DemandStatus.FUNDED,
        reason=f"funded by {bank.name}: loan {loan.ref}",
    )
    _tell(
        session,
        ctx,
        bank.id,
        "offer.accepted",
        (
            f"Your offer {offer.ref} was accepted: accept the agreement of loan {loan.ref}",
            f"{_shown(offer)} moved from your escrow account to {enterprise.name}'s payout account. "
            "Read the loan agreement and accept it; the custodian then pays the loan out.",
        ),
        (
            f"您的贷款报价 {offer.ref} 已被接受，请确认借款合同 {loan.ref}",
            f"{_shown(offer)} 已从贵行存管账户划入 {enterprise.name} 的待放款账户。请阅读并确认借款合同，"
            "确认后由存管银行放款。",
        ),
        f"/bank/loans/{loan.id}",
    )
    _tell(
        session,
        ctx,
        enterprise.id,
        "offer.accepted",
        (
            f"You accepted {bank.name}'s offer {offer.ref}: loan {loan.ref}",
            f"{_shown(offer)} at {_percent(offer.annual_rate)} for {offer.term_months} months is reserved "
            "for you in escrow; accept the loan agreement to have it paid out.",
        ),
        (
            f"您已接受 {bank.name} 的贷款报价 {offer.ref}：借款 {loan.ref}",
            f"{_shown(offer)}（年利率 {_percent(offer.annual_rate)}，期限 {offer.term_months} 个月）已在存管"
            "账户中为您划定；确认借款合同后即可放款。",
        ),
        f"/enterprise/loans/{loan.id}",
    )
    return offer


def _supersede_others(session: Session, ctx: Context, demand: Demand, accepted: BankOffer) -> None:
    others = session.scalars(
        select(BankOffer)
        .where(
            BankOffer.demand_id == demand.id,
            BankOffer.status == OfferStatus.OPEN.value,
            BankOffer.id != accepted.id,
        )
        .order_by(BankOffer.created_at)
        .with_for_update()
    ).all()
    for other in others:
        _resolve(session, ctx, other, OfferStatus.SUPERSEDED, f"the enterprise accepted offer {accepted.ref}")
        _tell(
            session,
            ctx,
            other.bank_org_id,
            "offer.superseded",
            (
                f"Your offer {other.ref} on {demand.ref} lapsed",
                "The enterprise accepted another bank's offer.",
            ),
            (f"您对 {demand.ref} 的贷款报价 {other.ref} 已失效", "企业已接受其他银行的报价。"),
            "/bank/offers",
        )


# --- expiry -------------------------------------------------------------------------------------------


def expire_offers(session: Session, *, ctx: Context, limit: int = 500) -> int:
    """Mark open offers past their ``valid_until`` expired, telling both sides. Safe to run from
    several workers at once (locked rows are skipped on PostgreSQL)."""
    query = (
        select(BankOffer)
        .where(BankOffer.status == OfferStatus.OPEN.value, BankOffer.valid_until <= ctx.now())
        .order_by(BankOffer.valid_until)
        .limit(limit)
    )
    query = query.with_for_update(skip_locked=True) if is_postgres(session) else query
    expired = 0
    for offer in session.scalars(query).all():
        _resolve(session, ctx, offer, OfferStatus.EXPIRED, f"valid until {offer.valid_until.isoformat()}")
        demand = session.get(Demand, offer.demand_id)
        told = [(offer.bank_org_id, "/bank/offers")]
        if demand is not None:
            told.append((demand.organisation_id, f"/enterprise/demands/{demand.id}"))
        for org_id, link in told:
            _tell(
                session,
                ctx,
                org_id,
                "offer.expired",
                (f"Offer {offer.ref} expired", f"It stood until {offer.valid_until.isoformat()}."),
                (f"贷款报价 {offer.ref} 已过期", f"有效期至 {offer.valid_until.isoformat()}。"),
                link,
            )
        expired += 1
    return expired


def lapse_offers_of(session: Session, *, ctx: Context, demand_id: uuid.UUID, reason: str) -> int:
    """The demand was withdrawn or failed: its open offers lapse (expired), each bank is told."""
    count = 0
    for offer in session.scalars(
        select(BankOffer)
        .where(BankOffer.demand_id == demand_id, BankOffer.status == OfferStatus.OPEN.value)
        .with_for_update()
    ).all():
        _resolve(session, ctx, offer, OfferStatus.EXPIRED, reason)
        _tell(
            session,
            ctx,
            offer.bank_org_id,
            "offer.expired",
            (f"Offer {offer.ref} lapsed", reason),
            (f"贷款报价 {offer.ref} 已失效", reason),
            "/bank/offers",
        )
        count += 1
    return count


# --- what parties see ------------------------------------------------------------------------------


def visible_offer(session: Session, *, ctx: Context, offer_id: uuid.UUID) -> BankOffer:
    """The bank its own; the enterprise the offers on its demands; supervisors all."""
    require(ctx, Action.READ_OFFERS)
    offer = session.get(BankOffer, offer_id)
    if offer is None:
        raise NotFound("no such offer")
    actor = ctx.actor
    if actor.sees_all_organisations or offer.bank_org_id == actor.organisation_id:
        return offer
    if actor.org_type is OrgType.ENTERPRISE:
        demand = session.get(Demand, offer.demand_id)
        if demand is not None and demand.organisation_id == actor.organisation_id:
            return offer
    raise NotFound("no such offer")


def list_offers(
    session: Session,
    *,
    ctx: Context,
    demand_id: uuid.UUID | None = None,
    status: OfferStatus | None = None,
    limit: int = 100,
) -> Sequence[BankOffer]:
    require(ctx, Action.READ_OFFERS)
    query = (
        select(BankOffer).order_by(BankOffer.created_at.desc(), BankOffer.id).limit(min(max(1, limit), 500))
    )
    if demand_id is not None:
        query = query.where(BankOffer.demand_id == demand_id)
    if status is not None:
        query = query.where(BankOffer.status == status.value)
    actor = ctx.actor
    if actor.sees_all_organisations:
        pass
    elif actor.org_type is OrgType.CUSTODIAN_BANK:
        query = query.where(BankOffer.bank_org_id == actor.organisation_id)
    elif actor.org_type is OrgType.ENTERPRISE:
        query = query.join(Demand, Demand.id == BankOffer.demand_id).where(
            Demand.organisation_id == actor.organisation_id
        )
    else:
        return []
    return session.scalars(query).all()
