"""Step 6, the investor's side: what it holds, what its money earns and how concentrated it is.

An investor's portfolio is read from the notes it holds and from the ledger, never from figures
kept beside them, so that it changes by itself when money moves:

Holdings
    One per note: the loan, the enterprise (name, GB/T 4754 industry, GB/T 2260 region), the product,
    the grade of the loan's *current* credit decision (an operator's override first, as matching
    reads it), the principal lent and the principal still outstanding, the contract rate and the
    loan's status. Only notes taken on or before ``as_of`` (a business date) count.

Outstanding principal
    ``note principal − principal distributed to the investor for that loan``, the distributions read
    from the ledger. Until loan servicing (step 7) books repayments it equals the principal. The
    convention servicing must follow for this to work (documented here because this module reads it):
    a distribution is a posted entry that debits the loan's collection account
    (``loan_collection:{currency}:{loan ref}``, ``subject_id`` = loan ref) and credits the investor's
    available account, one loan per entry and one part per entry, its ``kind`` naming the part:
    ``distribution_principal``, ``distribution_interest``, ``distribution_penalty`` or
    ``distribution_recovery``. Principal and recovery reduce the outstanding principal; every part is
    an inflow of the realised return. A reversal of a distribution counts negatively under the part of
    the entry it reverses. A cancelled loan has nothing outstanding.

Cash
    The investor's available account at the custodian: ``available`` (what may still leave it) and
    ``held`` (pending outflows: commitments waiting for their round, and withdrawals waiting for the
    bank), with the part held for commitments shown per listing. For an ``as_of`` in the past, the
    posted balance at the end of that day and the holds then pending.

Expected return
    The average, weighted by outstanding principal, of each holding's contract rate less its expected
    loss, ``rate − PD × LGD`` as :func:`yunrong.matching.model.expected_return` computes it (LGD 60 %
    less the demand's collateral coverage, floored at 10 %). Holdings without a credit decision are
    left out of the average.

Realised return (XIRR)
    The annual effective rate (ACT/365) of the investor's own cash flows on its loans: each commitment
    that funded a loan is an outflow on the value date of the hold's posting; each distribution an
    inflow on its value date; and the outstanding principal, valued at par, is a terminal inflow on
    ``as_of``. Interest accrued but not yet paid is not counted, so until repayments exist the realised
    return is 0. It is ``None`` when nothing was invested or no day has passed since the first
    investment (an annualised rate of no time is meaningless), or when the flows have no rate.

Diversification
    Outstanding principal by grade, by industry (GB/T 4754 section), by region (province), by product
    and by enterprise, each with its share, the largest single exposure and the Herfindahl index
    ``Σ shareᵢ²`` (1/n for n equal exposures, 1 for a single one). Every breakdown sums to the total
    outstanding principal.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, aliased

from yunrong.config import Settings
from yunrong.custody import accounts
from yunrong.decisions.service import current_decision
from yunrong.demands.tables import Demand
from yunrong.identity.model import Action, Context, OrgType
from yunrong.identity.service import require
from yunrong.identity.tables import Organisation
from yunrong.investing import agreement as documents
from yunrong.investing.model import CommitmentStatus, LoanStatus
from yunrong.investing.tables import Commitment, Loan, Note
from yunrong.kit.clock import business_date, ensure_utc
from yunrong.kit.errors import FieldProblem, InvalidInput, PermissionDenied
from yunrong.kit.money import Money
from yunrong.ledger import service as ledger
from yunrong.ledger.tables import Hold, JournalEntry, LedgerAccount, Posting
from yunrong.matching import model as matching_model
from yunrong.parties import service as parties
from yunrong.parties.codes import INDUSTRY_SECTIONS, PROVINCES
from yunrong.parties.tables import Enterprise
from yunrong.servicing.rates import xirr

DISTRIBUTION_PREFIX = "distribution_"
#: Parts of a distribution that pay principal back (the others are income).
PRINCIPAL_PARTS = frozenset({"principal", "recovery"})
UNRATED = "unrated"
SHARE_PLACES = Decimal("0.0001")
RATE_PLACES = Decimal("0.000001")
XIRR_PLACES = Decimal("1E-10")  # as yunrong.servicing.rates rounds its rates
DIMENSIONS = ("grade", "industry", "region", "product", "enterprise")
_ENTRY_KINDS = {"deposit": "deposit", "withdrawal": "withdrawal", "funding": "investment"}


# --- what a portfolio is ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PortfolioHolding:
    note_id: uuid.UUID
    note_ref: str
    loan_id: uuid.UUID
    loan_ref: str
    demand_id: uuid.UUID
    enterprise_org_id: uuid.UUID
    enterprise: str
    product: str
    grade: str
    industry_code: str
    region_code: str
    currency: str
    principal_minor: int
    repaid_principal_minor: int
    outstanding_minor: int
    annual_rate: Decimal
    expected_return: Decimal | None  # contract rate less PD × LGD; None without a credit decision
    loan_status: str
    noted_on: date  # the business date the note was issued


@dataclass(frozen=True)
class PendingCommitment:
    commitment_id: uuid.UUID
    ref: str
    demand_id: uuid.UUID
    demand_ref: str
    enterprise: str
    amount_minor: int  # held in escrow until the round funds or fails
    committed_at: datetime
    revocable_until: datetime | None


@dataclass(frozen=True)
class Cash:
    currency: str
    balance_minor: int  # posted balance of the available account
    available_minor: int  # what may still leave it
    held_minor: int  # pending outflows (commitments and withdrawals)
    held_for_commitments_minor: int
    held_for_withdrawals_minor: int


@dataclass(frozen=True)
class Exposure:
    key: str
    label: str
    outstanding_minor: int
    share: Decimal  # of the total outstanding, 4 places


@dataclass(frozen=True)
class Breakdown:
    dimension: str
    total_minor: int
    items: tuple[Exposure, ...]  # largest first
    largest: Exposure | None
    herfindahl: Decimal  # Σ shareᵢ², 6 places; 0 when nothing is outstanding


@dataclass(frozen=True)
class Flow:
    on: date
    kind: str  # deposit, withdrawal, investment, principal, interest, penalty, recovery, ...
    amount_minor: int  # signed from the investor's side: negative = money out
    loan_ref: str | None
    entry_ref: str


@dataclass(frozen=True)
class Portfolio:
    investor_org_id: uuid.UUID
    investor_name: str
    investor_ref: str
    currency: str
    as_of: date
    generated_at: datetime
    holdings: tuple[PortfolioHolding, ...]
    pending: tuple[PendingCommitment, ...]
    cash: Cash
    principal_minor: int
    outstanding_minor: int
    expected_return: Decimal | None
    realised_xirr: Decimal | None
    xirr_flows: tuple[tuple[date, int], ...]  # what the realised return was computed from
    diversification: dict[str, Breakdown]


# --- pure helpers -----------------------------------------------------------------------------------


def breakdown(
    dimension: str, amounts: Iterable[tuple[str, int]], label: Callable[[str], str] = str
) -> Breakdown:
    """Sum positive amounts per key; shares, the largest exposure and the Herfindahl index."""
    totals: dict[str, int] = {}
    for key, amount in amounts:
        if amount > 0:
            totals[key] = totals.get(key, 0) + amount
    total = sum(totals.values())
    ordered = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))
    items = tuple(
        Exposure(key, label(key), amount, _fraction(Fraction(amount, total), SHARE_PLACES))
        for key, amount in ordered
    )
    hhi = sum((Fraction(a, total) ** 2 for a in totals.values()), Fraction(0)) if total else Fraction(0)
    return Breakdown(dimension, total, items, items[0] if items else None, _fraction(hhi, RATE_PLACES))


def weighted_rate(pairs: Iterable[tuple[int, Decimal | None]]) -> Decimal | None:
    """The average of rates weighted by amounts (pairs without a rate or with no amount left out)."""
    weight = 0
    total = Decimal(0)
    for amount, rate in pairs:
        if rate is None or amount <= 0:
            continue
        weight += amount
        total += Decimal(amount) * rate
    return (total / weight).quantize(RATE_PLACES, rounding=ROUND_HALF_EVEN) if weight else None


def realised_xirr(flows: Sequence[tuple[date, int]]) -> Decimal | None:
    """XIRR of dated flows; None without an outflow, when no day separates the flows, or no rate."""
    if not any(amount < 0 for _, amount in flows) or len({on for on, _ in flows}) < 2:
        return None
    rate = xirr(list(flows))
    return None if rate is None else Decimal(rate).quantize(XIRR_PLACES, rounding=ROUND_HALF_EVEN)


def _fraction(value: Fraction, places: Decimal) -> Decimal:
    return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(places, rounding=ROUND_HALF_EVEN)


def industry_label(section: str) -> str:
    names = INDUSTRY_SECTIONS.get(section)
    return f"{section} {names[0]}" if names else section


def region_label(province: str) -> str:
    names = PROVINCES.get(province)
    return names[0] if names else province


def product_label(product: str) -> str:
    names = documents.PRODUCT_LABELS.get(product)
    return f"{names[0]} {names[1]}" if names else product


def grade_sort_key(grade: str) -> tuple[int, str]:
    order = documents.GRADE_ORDER
    return (order.index(grade), "") if grade in order else (len(order), grade)


# --- reading it -------------------------------------------------------------------------------------


def _investor(session: Session, ctx: Context) -> Organisation:
    require(ctx, Action.READ_PORTFOLIO)
    actor = ctx.actor
    if actor.org_type is not OrgType.INVESTOR or actor.organisation_id is None:
        raise PermissionDenied("only investors have a portfolio / 只有投资人有投资组合")
    parties.require_admitted(session, ctx=ctx)
    org = session.get(Organisation, actor.organisation_id)
    assert org is not None
    return org


def _end_of(day: date, timezone: str) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=ZoneInfo(timezone))


def _available_account(session: Session, investor_id: uuid.UUID, currency: str) -> uuid.UUID | None:
    """The investor's available account in ``currency`` (None before its first deposit: reading a
    portfolio opens no account)."""
    return session.scalar(
        select(LedgerAccount.id).where(
            LedgerAccount.purpose == accounts.Purpose.INVESTOR_AVAILABLE.value,
            LedgerAccount.owner_org_id == investor_id,
            LedgerAccount.currency == currency,
        )
    )


def _distributions(
    session: Session, account_id: uuid.UUID | None, until: date | None = None
) -> list[tuple[Flow, str]]:
    """Distributions to (and their reversals from) the investor's available account, with their
    part (principal, interest, …), per the convention in the module docstring."""
    if account_id is None:
        return []
    mine = aliased(Posting)
    other = aliased(Posting)
    source = aliased(LedgerAccount)
    reversed_entry = aliased(JournalEntry)
    query = (
        select(
            mine.side,
            mine.amount,
            JournalEntry.value_date,
            JournalEntry.kind,
            JournalEntry.ref,
            reversed_entry.kind,
            source.subject_id,
        )
        .join(JournalEntry, JournalEntry.id == mine.entry_id)
        .join(other, and_(other.entry_id == mine.entry_id, other.side != mine.side))
        .join(source, source.id == other.account_id)
        .outerjoin(reversed_entry, reversed_entry.id == JournalEntry.reverses_id)
        .where(
            mine.account_id == account_id,
            source.purpose == accounts.Purpose.LOAN_COLLECTION.value,
            JournalEntry.posted.is_(True),
        )
        .order_by(JournalEntry.value_date, mine.created_at, mine.id)
    )
    if until is not None:
        query = query.where(JournalEntry.value_date <= until)
    out: list[tuple[Flow, str]] = []
    for side, amount, value_date, kind, ref, original_kind, loan_ref in session.execute(query).all():
        named = original_kind if kind == "reversal" and original_kind else kind
        part = named.removeprefix(DISTRIBUTION_PREFIX)
        signed = int(amount) if side == "C" else -int(amount)
        out.append((Flow(value_date, part, signed, loan_ref, ref), part))
    return out


def _investments(
    session: Session, investor_id: uuid.UUID, currency: str, until: date | None = None
) -> list[Flow]:
    """The investor's commitments that funded a loan: the hold's posting, its amount and value date."""
    query = (
        select(Hold.posted_amount, JournalEntry.value_date, JournalEntry.ref, Loan.ref)
        .select_from(Commitment)
        .join(Hold, Hold.id == Commitment.hold_id)
        .join(JournalEntry, JournalEntry.id == Hold.entry_id)
        .outerjoin(Loan, Loan.demand_id == Commitment.demand_id)
        .where(
            Commitment.investor_org_id == investor_id,
            Commitment.currency == currency,
            Commitment.status == CommitmentStatus.POSTED.value,
            JournalEntry.posted.is_(True),
        )
        .order_by(JournalEntry.value_date, JournalEntry.created_at, JournalEntry.id)
    )
    if until is not None:
        query = query.where(JournalEntry.value_date <= until)
    return [
        Flow(value_date, "investment", -int(amount), loan_ref, ref)
        for amount, value_date, ref, loan_ref in session.execute(query).all()
    ]


def _holdings(
    session: Session,
    investor_id: uuid.UUID,
    currency: str,
    as_of: date,
    timezone: str,
    repaid: dict[str, int],
) -> list[PortfolioHolding]:
    rows = session.execute(
        select(Note, Loan, Demand, Organisation, Enterprise)
        .join(Loan, Loan.id == Note.loan_id)
        .join(Demand, Demand.id == Loan.demand_id)
        .join(Organisation, Organisation.id == Loan.enterprise_org_id)
        .outerjoin(Enterprise, Enterprise.organisation_id == Loan.enterprise_org_id)
        .where(Note.investor_org_id == investor_id, Note.currency == currency)
        .order_by(Note.created_at, Note.ref)
    ).all()
    out: list[PortfolioHolding] = []
    for note, loan, demand, org, enterprise in rows:
        noted_on = business_date(ensure_utc(note.created_at), timezone)
        if noted_on > as_of:
            continue
        grade, expected = _grade_and_expected_return(session, demand, enterprise, loan)
        back = repaid.get(loan.ref, 0)
        outstanding = 0 if loan.status == LoanStatus.CANCELLED.value else max(0, note.principal_minor - back)
        out.append(
            PortfolioHolding(
                note_id=note.id,
                note_ref=note.ref,
                loan_id=loan.id,
                loan_ref=loan.ref,
                demand_id=demand.id,
                enterprise_org_id=org.id,
                enterprise=org.name,
                product=loan.product,
                grade=grade,
                industry_code=enterprise.industry_code if enterprise else "",
                region_code=enterprise.region_code if enterprise else "",
                currency=note.currency,
                principal_minor=note.principal_minor,
                repaid_principal_minor=back,
                outstanding_minor=outstanding,
                annual_rate=loan.annual_rate,
                expected_return=expected,
                loan_status=loan.status,
                noted_on=noted_on,
            )
        )
    return out


def _grade_and_expected_return(
    session: Session, demand: Demand, enterprise: Enterprise | None, loan: Loan
) -> tuple[str, Decimal | None]:
    """The current decision's grade (override first) and the contract rate less PD × LGD.

    The listing is built as :func:`yunrong.matching.service.listing_of` builds it, except for its
    transparency index, which the expected return does not read (and which costs a credit-file
    read per holding)."""
    decision = current_decision(session, demand.id)
    if decision is None:
        return UNRATED, None
    grade = decision.override_grade or decision.grade
    declined = decision.declined if decision.override_declined is None else decision.override_declined
    collateral = sum(int(c.get("value_minor", 0)) for c in demand.collateral or [])
    listing = matching_model.Listing(
        demand_id=str(demand.id),
        currency=demand.currency,
        amount_minor=demand.amount_minor,
        term_months=demand.term_months,
        product=demand.product,
        grade=grade,
        pd=decision.pd,
        annual_rate=decision.annual_rate,
        declined=declined,
        industry_code=enterprise.industry_code if enterprise else "",
        region_code=enterprise.region_code if enterprise else "",
        size_class=enterprise.size_class if enterprise else "",
        innovative=bool(
            (demand.innovation or {}).get("high_tech_certified") or (demand.innovation or {}).get("patents")
        ),
        transparency=0,
        guarantee_coverage_bp=min(10000, collateral * 10000 // max(1, demand.amount_minor)),
    )
    contract = replace(listing, annual_rate=loan.annual_rate)
    expected = matching_model.expected_return(contract).quantize(RATE_PLACES, rounding=ROUND_HALF_EVEN)
    return grade, expected


def _pending(
    session: Session, investor_id: uuid.UUID, currency: str, at: datetime
) -> list[PendingCommitment]:
    """Commitments whose money was held at ``at``: taken before it and not resolved by then."""
    rows = session.execute(
        select(Commitment, Demand.ref, Organisation.name)
        .join(Demand, Demand.id == Commitment.demand_id)
        .join(Organisation, Organisation.id == Demand.organisation_id)
        .where(
            Commitment.investor_org_id == investor_id,
            Commitment.currency == currency,
            Commitment.created_at <= at,
            or_(Commitment.resolved_at.is_(None), Commitment.resolved_at > at),
        )
        .order_by(Commitment.created_at, Commitment.ref)
    ).all()
    return [
        PendingCommitment(
            commitment_id=c.id,
            ref=c.ref,
            demand_id=c.demand_id,
            demand_ref=demand_ref,
            enterprise=name,
            amount_minor=c.amount_minor,
            committed_at=ensure_utc(c.created_at),
            revocable_until=ensure_utc(c.revocable_until) if c.revocable_until else None,
        )
        for c, demand_ref, name in rows
    ]


def _cash(
    session: Session,
    account_id: uuid.UUID | None,
    currency: str,
    at: datetime,
    live: bool,
    for_commitments: int,
) -> Cash:
    if account_id is None:
        posted = held = 0
    elif live:
        bal = ledger.balance(session, account_id)
        posted, held = bal.posted, bal.pending_out
    else:
        posted = ledger.balance_as_of(session, account_id, at).posted
        held = sum(
            session.scalars(
                select(Hold.amount).where(
                    Hold.debit_account_id == account_id,
                    Hold.created_at <= at,
                    or_(Hold.resolved_at.is_(None), Hold.resolved_at > at),
                )
            ).all()
        )
    return Cash(
        currency=currency,
        balance_minor=posted,
        available_minor=posted - held,
        held_minor=held,
        held_for_commitments_minor=for_commitments,
        held_for_withdrawals_minor=max(0, held - for_commitments),
    )


def _diversification(holdings: Sequence[PortfolioHolding]) -> dict[str, Breakdown]:
    live = [h for h in holdings if h.outstanding_minor > 0]
    names = {str(h.enterprise_org_id): h.enterprise for h in live}
    return {
        "grade": breakdown("grade", ((h.grade, h.outstanding_minor) for h in live)),
        "industry": breakdown(
            "industry", ((h.industry_code[:1] or "?", h.outstanding_minor) for h in live), industry_label
        ),
        "region": breakdown(
            "region", ((h.region_code[:2] or "?", h.outstanding_minor) for h in live), region_label
        ),
        "product": breakdown("product", ((h.product, h.outstanding_minor) for h in live), product_label),
        "enterprise": breakdown(
            "enterprise",
            ((str(h.enterprise_org_id), h.outstanding_minor) for h in live),
            lambda key: names.get(key, key),
        ),
    }


def _as_of(ctx: Context, settings: Settings, as_of: date | None) -> tuple[date, datetime, bool]:
    """The valuation date, the instant that ends it (now, for today) and whether that is now."""
    today = business_date(ctx.now(), settings.timezone)
    day = today if as_of is None else as_of
    if day > today:
        raise InvalidInput(
            f"as_of {day.isoformat()} is in the future / 估值日期不能晚于今天",
            [FieldProblem(("query", "as_of"), f"must be on or before {today.isoformat()}")],
        )
    if day == today:
        return day, ctx.now(), True
    return day, _end_of(day, settings.timezone), False


def read_portfolio(
    session: Session,
    *,
    ctx: Context,
    settings: Settings,
    as_of: date | None = None,
    currency: str | None = None,
) -> Portfolio:
    """The calling investor's portfolio at ``as_of`` (a business date; default today), in one
    currency (default the policy profile's)."""
    investor = _investor(session, ctx)
    currency = currency or settings.policy.currency
    day, at, live = _as_of(ctx, settings, as_of)
    account_id = _available_account(session, investor.id, currency)
    distributions = _distributions(session, account_id, day)
    repaid: dict[str, int] = {}
    for flow, part in distributions:
        if part in PRINCIPAL_PARTS and flow.loan_ref is not None:
            repaid[flow.loan_ref] = repaid.get(flow.loan_ref, 0) + flow.amount_minor
    holdings = _holdings(session, investor.id, currency, day, settings.timezone, repaid)
    pending = _pending(session, investor.id, currency, at)
    cash = _cash(session, account_id, currency, at, live, sum(p.amount_minor for p in pending))
    outstanding = sum(h.outstanding_minor for h in holdings)
    flows: list[tuple[date, int]] = [
        (f.on, f.amount_minor) for f in _investments(session, investor.id, currency, day)
    ]
    flows += [(f.on, f.amount_minor) for f, _ in distributions]
    if outstanding > 0:
        flows.append((day, outstanding))
    flows.sort(key=lambda f: f[0])
    return Portfolio(
        investor_org_id=investor.id,
        investor_name=investor.name,
        investor_ref=investor.ref,
        currency=currency,
        as_of=day,
        generated_at=ctx.now(),
        holdings=tuple(holdings),
        pending=tuple(pending),
        cash=cash,
        principal_minor=sum(h.principal_minor for h in holdings),
        outstanding_minor=outstanding,
        expected_return=weighted_rate((h.outstanding_minor, h.expected_return) for h in holdings),
        realised_xirr=realised_xirr(flows),
        xirr_flows=tuple(flows),
        diversification=_diversification(holdings),
    )


def chart_series(breakdown_: Breakdown, *, by_grade: bool = False) -> list[Exposure]:
    """Bars for a chart: grades best first, anything else largest first."""
    if by_grade:
        return sorted(breakdown_.items, key=lambda e: grade_sort_key(e.key))
    return list(breakdown_.items)


# --- the statement ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Statement:
    portfolio: Portfolio  # valued at ``until``
    since: date
    until: date
    flows: tuple[Flow, ...]  # every movement of the available account in the period


def statement(
    session: Session,
    *,
    ctx: Context,
    settings: Settings,
    since: date | None = None,
    until: date | None = None,
    currency: str | None = None,
) -> Statement:
    """The portfolio at ``until`` (default today) and every cash movement of the investor's
    available account between ``since`` (default: the account's first movement) and ``until``."""
    portfolio = read_portfolio(session, ctx=ctx, settings=settings, as_of=until, currency=currency)
    until = portfolio.as_of
    account_id = _available_account(session, portfolio.investor_org_id, portfolio.currency)
    if since is None:
        first = session.scalar(
            select(JournalEntry.value_date)
            .join(Posting, Posting.entry_id == JournalEntry.id)
            .where(Posting.account_id == account_id, JournalEntry.posted.is_(True))
            .order_by(JournalEntry.value_date)
            .limit(1)
        )
        since = min(first or until, until)
    if since > until:
        raise InvalidInput(
            "since must not be after until / 起始日期不能晚于截止日期",
            [FieldProblem(("query", "since"), f"must be on or before {until.isoformat()}")],
        )
    return Statement(
        portfolio, since, until, tuple(_account_flows(session, portfolio, account_id, since, until))
    )


def _account_flows(
    session: Session, portfolio: Portfolio, account_id: uuid.UUID | None, since: date, until: date
) -> list[Flow]:
    """Every posting on the available account in [since, until], named: distributions by part,
    commitments' postings as investments (with their loan), deposits, withdrawals, others by kind."""
    if account_id is None:
        return []
    named: dict[str, Flow] = {
        f.entry_ref: f for f in _investments(session, portfolio.investor_org_id, portfolio.currency, until)
    }
    named.update({f.entry_ref: f for f, _ in _distributions(session, account_id, until)})
    rows = session.execute(
        select(Posting.side, Posting.amount, JournalEntry.value_date, JournalEntry.kind, JournalEntry.ref)
        .join(JournalEntry, JournalEntry.id == Posting.entry_id)
        .where(
            Posting.account_id == account_id,
            JournalEntry.posted.is_(True),
            JournalEntry.value_date >= since,
            JournalEntry.value_date <= until,
        )
        .order_by(JournalEntry.value_date, Posting.created_at, Posting.id)
    ).all()
    out: list[Flow] = []
    for side, amount, value_date, kind, ref in rows:
        signed = int(amount) if side == "C" else -int(amount)
        known = named.get(ref)
        out.append(
            Flow(
                value_date,
                known.kind if known else _ENTRY_KINDS.get(kind, kind),
                signed,
                known.loan_ref if known else None,
                ref,
            )
        )
    return out


def industry_chart_label(section: str) -> str:
    """A short industry label for a chart's axis: the section letter and its Chinese name, cut."""
    names = INDUSTRY_SECTIONS.get(section)
    if not names:
        return section
    return f"{section} {names[0][:4]}{'…' if len(names[0]) > 4 else ''}"


def investor_statement(st: Statement) -> documents.InvestorStatement:
    """The renderer's view of a statement (it draws the charts by grade and industry)."""
    p = st.portfolio
    return documents.InvestorStatement(
        investor_name=p.investor_name,
        investor_ref=p.investor_ref,
        currency=p.currency,
        period_start=st.since,
        period_end=st.until,
        holdings=tuple(
            documents.Holding(
                loan_ref=h.loan_ref,
                enterprise=h.enterprise,
                grade=h.grade,
                industry=industry_chart_label(h.industry_code[:1]),
                principal_minor=h.principal_minor,
                outstanding_minor=h.outstanding_minor,
                annual_rate=h.annual_rate,
                status=h.loan_status,
            )
            for h in p.holdings
        ),
        available_minor=p.cash.available_minor,
        held_minor=p.cash.held_minor,
        cash_flows=tuple(documents.CashFlow(f.on, f.kind, f.amount_minor) for f in st.flows),
        xirr=p.realised_xirr,
        generated_at=p.generated_at,
    )


def statement_pdf(st: Statement) -> bytes:
    return documents.render_investor_statement(investor_statement(st))


HOLDING_COLUMNS = (
    "note_ref",
    "loan_ref",
    "enterprise",
    "product",
    "grade",
    "industry_code",
    "region_code",
    "principal",
    "outstanding",
    "annual_rate",
    "expected_return",
    "loan_status",
    "noted_on",
    "currency",
)
FLOW_COLUMNS = ("date", "kind", "amount", "loan_ref", "entry_ref", "currency")


def statement_csv(st: Statement) -> bytes:
    """Holdings (header, one row per note), a blank line, then cash flows (header, one row per
    movement). UTF-8 with a byte-order mark, so spreadsheets read the Chinese names right."""
    p = st.portfolio

    def major(minor: int) -> str:
        return str(Money(minor, p.currency).decimal)

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HOLDING_COLUMNS)
    for h in p.holdings:
        writer.writerow(
            [
                h.note_ref,
                h.loan_ref,
                h.enterprise,
                h.product,
                h.grade,
                h.industry_code,
                h.region_code,
                major(h.principal_minor),
                major(h.outstanding_minor),
                str(h.annual_rate),
                "" if h.expected_return is None else str(h.expected_return),
                h.loan_status,
                h.noted_on.isoformat(),
                h.currency,
            ]
        )
    writer.writerow([])
    writer.writerow(FLOW_COLUMNS)
    for f in st.flows:
        writer.writerow(
            [f.on.isoformat(), f.kind, major(f.amount_minor), f.loan_ref or "", f.entry_ref, p.currency]
        )
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")
