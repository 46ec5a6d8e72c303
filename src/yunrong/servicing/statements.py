"""Statements of step 7: what the borrower owes and paid, and what each investor received.

- **The loan statement** (the borrower's; its supervisors and, for a direct loan, the lending bank
  read it too): the current schedule version with what was paid on each instalment, each unpaid
  instalment's standing on the statement's date (``due`` on its due date, ``overdue`` after it,
  with its days past due), the penalty accrued by the end of day, the overpayment held, and every
  repayment with how it was allocated. The note holders read their own income statement instead.
- **The income statement** (an investor's): every :class:`~yunrong.servicing.tables.Distribution`
  to the investor's notes with its value date in ``[since, until]``, summed by loan and by month:
  principal returned, interest and penalty income, the platform's disclosed service fee deducted and
  the net received. The net is checked against the custodian's ledger: the credits the distribution
  entries made to the investor's available account (``ledger_net``), so a statement that disagrees
  with the money says so.

Both come as JSON, CSV (UTF-8 with a BOM, so that spreadsheets read the Chinese) and PDF (reportlab,
bilingual headings, the style of the investor statement in :mod:`yunrong.investing.agreement`, with
a bar chart of the net received by month). Amounts are integer minor units throughout; the chart
alone turns them into numbers for its axis.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yunrong.config import Settings
from yunrong.custody.accounts import Purpose
from yunrong.identity.model import Action, Context, OrgType
from yunrong.identity.service import require
from yunrong.identity.tables import Organisation
from yunrong.investing.agreement import (
    REPAYMENT_LABELS,
    PdfStyles,
    bar_chart,
    ensure_font,
    facts_table,
    format_amount,
    format_rate,
    label_of,
    pdf_table,
    pdf_text,
)
from yunrong.investing.tables import Loan, Note
from yunrong.kit.clock import business_date
from yunrong.kit.errors import FieldProblem, InvalidInput, PermissionDenied
from yunrong.kit.money import Money
from yunrong.ledger.tables import LedgerAccount, Posting
from yunrong.servicing.tables import Distribution, Instalment, LoanServicing, Repayment

#: Months filled in (with zero) between ``since`` and ``until`` for the chart, at most.
MAX_FILLED_MONTHS = 36

STANDING_LABELS: dict[str, tuple[str, str]] = {
    "paid": ("已还清", "Paid"),
    "overdue": ("逾期", "Overdue"),
    "due": ("今日到期", "Due today"),
    "part_paid": ("部分已还", "Partly paid"),
    "upcoming": ("未到期", "Upcoming"),
}
KIND_LABELS: dict[str, tuple[str, str]] = {
    "scheduled": ("按期还款", "Scheduled"),
    "early_full": ("提前结清", "Early, in full"),
    "early_partial": ("部分提前还款", "Early, in part"),
}
REPAYMENT_STATUS_LABELS: dict[str, tuple[str, str]] = {
    "pending": ("待银行确认", "Awaiting the bank"),
    "confirmed": ("银行已确认", "Confirmed by the bank"),
    "allocated": ("已入账", "Allocated"),
    "failed": ("失败", "Failed"),
}
SOURCE_LABELS: dict[str, tuple[str, str]] = {
    "repayment": ("还款", "Repayment"),
    "overpayment": ("多付款冲抵", "Overpayment applied"),
    "guarantee": ("担保代偿", "Guarantee claim"),
    "insurance": ("保险理赔", "Insurance claim"),
    "recovery": ("追偿回收", "Recovery"),
}


def _today(ctx: Context, settings: Settings) -> date:
    return business_date(ctx.now(), settings.timezone)


# --- the loan statement -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatementInstalment:
    number: int
    period_start: date
    due_date: date
    principal_due: int
    interest_due: int
    principal_paid: int
    interest_paid: int
    penalty_paid: int
    status: str  # as stored: scheduled | due | paid
    standing: str  # on the statement's date: paid | overdue | due | part_paid | upcoming
    days_past_due: int
    paid_on: date | None

    @property
    def payment(self) -> int:
        return self.principal_due + self.interest_due

    @property
    def paid(self) -> int:
        return self.principal_paid + self.interest_paid

    @property
    def outstanding(self) -> int:
        return 0 if self.status == "paid" else self.payment - self.paid


@dataclass(frozen=True, slots=True)
class StatementRepayment:
    id: uuid.UUID
    ref: str
    created_at: datetime
    value_date: date | None
    amount: int
    kind: str
    early_option: str | None
    status: str
    fees: int
    penalty: int
    interest: int
    principal: int
    held: int
    refunded: int


@dataclass(frozen=True, slots=True)
class LoanStatement:
    loan_id: uuid.UUID
    loan_ref: str
    enterprise: str
    currency: str
    principal: int
    annual_rate: Any  # Decimal fraction
    method: str
    as_of: date
    generated_at: datetime
    servicing: bool  # False before the loan is paid out (no schedule yet)
    state: str | None
    schedule_version: int | None
    principal_outstanding: int
    interest_accrued: int
    penalty_accrued: int
    overpayment_held: int
    maturity_date: date | None
    instalments: tuple[StatementInstalment, ...]
    repayments: tuple[StatementRepayment, ...]

    @property
    def due_now(self) -> int:
        """Unpaid principal and interest of instalments due on or before the statement's date."""
        return sum(i.outstanding for i in self.instalments if i.due_date <= self.as_of)

    @property
    def overdue(self) -> int:
        return sum(i.outstanding for i in self.instalments if i.standing == "overdue")

    @property
    def days_past_due(self) -> int:
        return max((i.days_past_due for i in self.instalments), default=0)

    @property
    def to_pay_now(self) -> int:
        """What settles everything due today: due instalments and penalty, less the overpayment held."""
        return max(0, self.due_now + self.penalty_accrued - self.overpayment_held)

    @property
    def next_instalment(self) -> StatementInstalment | None:
        return next((i for i in self.instalments if i.due_date > self.as_of and i.outstanding), None)

    def paid_total(self, part: str) -> int:
        return sum(int(getattr(r, part)) for r in self.repayments if r.status == "allocated")


def standing_of(row: Instalment, as_of: date) -> tuple[str, int]:
    """An instalment's standing on ``as_of`` and its days past due (the end of day's definition: an
    instalment unpaid after its due date is overdue; on its due date it is due)."""
    if row.status == "paid":
        return "paid", 0
    if row.due_date < as_of:
        return "overdue", (as_of - row.due_date).days
    if row.due_date == as_of:
        return "due", 0
    if row.principal_paid or row.interest_paid:
        return "part_paid", 0
    return "upcoming", 0


def statement_loan(session: Session, *, ctx: Context, loan_id: uuid.UUID) -> Loan:
    """The loan, for its borrower, its supervisors and (a direct loan) its bank; 404 to anyone who
    may not see the loan, 403 to a note holder (whose statement is the income statement)."""
    from yunrong.investing.loans import visible_loan

    loan = visible_loan(session, ctx=ctx, loan_id=loan_id)
    if ctx.actor.org_type is OrgType.INVESTOR:
        raise PermissionDenied(
            "the loan statement is the borrower's; your income statement shows what you received"
            " / 还款对账单仅供借款企业查看；您的收益对账单列明您的回款"
        )
    return loan


def _repayment_row(r: Repayment) -> StatementRepayment:
    a = r.allocation or {}

    def part(name: str) -> int:
        value = a.get(name, 0)
        return int(value) if isinstance(value, int) else 0

    return StatementRepayment(
        id=r.id,
        ref=r.ref,
        created_at=r.created_at,
        value_date=r.value_date,
        amount=r.amount_minor,
        kind=r.kind,
        early_option=r.early_option,
        status=r.status,
        fees=part("fees"),
        penalty=part("penalty"),
        interest=part("interest"),
        principal=part("principal"),
        held=part("held"),
        refunded=part("refunded"),
    )


def read_loan_statement(
    session: Session, *, ctx: Context, settings: Settings, loan_id: uuid.UUID
) -> LoanStatement:
    loan = statement_loan(session, ctx=ctx, loan_id=loan_id)
    as_of = _today(ctx, settings)
    s = session.get(LoanServicing, loan.id)
    rows: Sequence[Instalment] = ()
    if s is not None:
        rows = session.scalars(
            select(Instalment)
            .where(Instalment.loan_id == loan.id, Instalment.version == s.schedule_version)
            .order_by(Instalment.number)
        ).all()
    instalments = []
    for row in rows:
        standing, dpd = standing_of(row, as_of)
        instalments.append(
            StatementInstalment(
                number=row.number,
                period_start=row.period_start,
                due_date=row.due_date,
                principal_due=row.principal_due,
                interest_due=row.interest_due,
                principal_paid=row.principal_paid,
                interest_paid=row.interest_paid,
                penalty_paid=row.penalty_paid,
                status=row.status,
                standing=standing,
                days_past_due=dpd,
                paid_on=row.paid_on,
            )
        )
    repayments = session.scalars(
        select(Repayment)
        .where(Repayment.loan_id == loan.id)
        .order_by(Repayment.created_at.desc(), Repayment.id.desc())
    ).all()
    enterprise = session.get(Organisation, loan.enterprise_org_id)
    return LoanStatement(
        loan_id=loan.id,
        loan_ref=loan.ref,
        enterprise=enterprise.name if enterprise else "",
        currency=loan.currency,
        principal=loan.principal_minor,
        annual_rate=loan.annual_rate,
        method=loan.repayment_method,
        as_of=as_of,
        generated_at=ctx.now(),
        servicing=s is not None,
        state=s.state if s else None,
        schedule_version=s.schedule_version if s else None,
        principal_outstanding=s.principal_outstanding if s else loan.principal_minor,
        interest_accrued=s.interest_accrued if s else 0,
        penalty_accrued=s.penalty_accrued if s else 0,
        overpayment_held=s.overpayment if s else 0,
        maturity_date=s.maturity_date if s else None,
        instalments=tuple(instalments),
        repayments=tuple(_repayment_row(r) for r in repayments),
    )


def loan_statement_dict(st: LoanStatement) -> dict[str, Any]:
    nxt = st.next_instalment
    return {
        "loan": {
            "id": str(st.loan_id),
            "ref": st.loan_ref,
            "enterprise": st.enterprise,
            "currency": st.currency,
            "principal_minor": st.principal,
            "annual_rate": str(st.annual_rate),
            "repayment_method": st.method,
        },
        "as_of": st.as_of.isoformat(),
        "generated_at": st.generated_at.isoformat(),
        "state": st.state,
        "schedule_version": st.schedule_version,
        "summary": {
            "principal_outstanding_minor": st.principal_outstanding,
            "interest_accrued_minor": st.interest_accrued,
            "penalty_accrued_minor": st.penalty_accrued,
            "overpayment_held_minor": st.overpayment_held,
            "due_now_minor": st.due_now,
            "overdue_minor": st.overdue,
            "days_past_due": st.days_past_due,
            "to_pay_now_minor": st.to_pay_now,
            "next_due_date": nxt.due_date.isoformat() if nxt else None,
            "next_instalment_minor": nxt.outstanding if nxt else None,
            "maturity_date": st.maturity_date.isoformat() if st.maturity_date else None,
            "paid_principal_minor": st.paid_total("principal"),
            "paid_interest_minor": st.paid_total("interest"),
            "paid_penalty_minor": st.paid_total("penalty"),
            "paid_fees_minor": st.paid_total("fees"),
        },
        "instalments": [
            {
                "number": i.number,
                "period_start": i.period_start.isoformat(),
                "due_date": i.due_date.isoformat(),
                "principal_due_minor": i.principal_due,
                "interest_due_minor": i.interest_due,
                "payment_minor": i.payment,
                "principal_paid_minor": i.principal_paid,
                "interest_paid_minor": i.interest_paid,
                "penalty_paid_minor": i.penalty_paid,
                "outstanding_minor": i.outstanding,
                "status": i.status,
                "standing": i.standing,
                "days_past_due": i.days_past_due,
                "paid_on": i.paid_on.isoformat() if i.paid_on else None,
            }
            for i in st.instalments
        ],
        "repayments": [
            {
                "id": str(r.id),
                "ref": r.ref,
                "created_at": r.created_at.isoformat(),
                "value_date": r.value_date.isoformat() if r.value_date else None,
                "amount_minor": r.amount,
                "kind": r.kind,
                "early_option": r.early_option,
                "status": r.status,
                "fees_minor": r.fees,
                "penalty_minor": r.penalty,
                "interest_minor": r.interest,
                "principal_minor": r.principal,
                "held_minor": r.held,
                "refunded_minor": r.refunded,
            }
            for r in st.repayments
        ],
    }


def _amount(minor: int, currency: str) -> str:
    return f"{Money(minor, currency).decimal}"


def _csv_bytes(rows: Iterable[Sequence[object]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")  # BOM: spreadsheets then read the Chinese right


def loan_statement_csv(st: LoanStatement) -> bytes:
    cur = st.currency
    rows: list[Sequence[object]] = [
        ["借款 Loan", st.loan_ref, st.enterprise, cur],
        ["对账日 As of", st.as_of.isoformat()],
        ["待还本金 Principal outstanding", _amount(st.principal_outstanding, cur)],
        ["应还 Due now", _amount(st.due_now, cur)],
        ["逾期 Overdue", _amount(st.overdue, cur)],
        ["逾期天数 Days past due", st.days_past_due],
        ["罚息 Penalty accrued", _amount(st.penalty_accrued, cur)],
        ["暂存多付款 Overpayment held", _amount(st.overpayment_held, cur)],
        [],
        [
            "期数 No.",
            "起息日 Period start",
            "到期日 Due date",
            "应还本金 Principal due",
            "应还利息 Interest due",
            "应还合计 Payment",
            "已还本金 Principal paid",
            "已还利息 Interest paid",
            "已还罚息 Penalty paid",
            "未还 Outstanding",
            "状态 Standing",
            "逾期天数 Days past due",
            "还清日 Paid on",
        ],
    ]
    for i in st.instalments:
        rows.append(
            [
                i.number,
                i.period_start.isoformat(),
                i.due_date.isoformat(),
                _amount(i.principal_due, cur),
                _amount(i.interest_due, cur),
                _amount(i.payment, cur),
                _amount(i.principal_paid, cur),
                _amount(i.interest_paid, cur),
                _amount(i.penalty_paid, cur),
                _amount(i.outstanding, cur),
                i.standing,
                i.days_past_due,
                i.paid_on.isoformat() if i.paid_on else "",
            ]
        )
    rows += [
        [],
        [
            "还款编号 Repayment",
            "提交时间 Created (UTC)",
            "起息日 Value date",
            "类型 Kind",
            "状态 Status",
            "金额 Amount",
            "费用 Fees",
            "罚息 Penalty",
            "利息 Interest",
            "本金 Principal",
            "暂存 Held",
            "退回 Refunded",
        ],
    ]
    for r in st.repayments:
        rows.append(
            [
                r.ref,
                r.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
                r.value_date.isoformat() if r.value_date else "",
                r.kind,
                r.status,
                _amount(r.amount, cur),
                _amount(r.fees, cur),
                _amount(r.penalty, cur),
                _amount(r.interest, cur),
                _amount(r.principal, cur),
                _amount(r.held, cur),
                _amount(r.refunded, cur),
            ]
        )
    return _csv_bytes(rows)


def _generated(at: datetime, currency: str) -> str:
    return f"生成时间 Generated {at.astimezone(UTC):%Y-%m-%d %H:%M} UTC  |  金额单位 Amounts in {currency}"


def _document(title: str, story: list[Any], landscape_page: bool = False) -> bytes:
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.units import mm
    from reportlab.platypus import SimpleDocTemplate

    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=landscape(A4) if landscape_page else A4,
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=12 * mm,
        bottomMargin=12 * mm,
        title=title,
        author="Yunrong 云融",
        creator="Yunrong 云融",
    )
    doc.build(story)
    return buffer.getvalue()


def loan_statement_pdf(st: LoanStatement) -> bytes:
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, Spacer

    ensure_font()
    styles = PdfStyles()
    cur = st.currency
    width = landscape(A4)[0] - 24 * mm
    nxt = st.next_instalment

    def fmt(minor: int) -> str:
        return format_amount(minor, cur)

    story: list[Any] = [
        Paragraph("云融 Yunrong  |  借款还款对账单 Loan statement", styles.title),
        Paragraph(
            pdf_text(f"{st.enterprise}  |  {st.loan_ref}  |  对账日 As of {st.as_of.isoformat()}"),
            styles.subtitle,
        ),
        Paragraph(
            pdf_text(_generated(st.generated_at, cur)),
            styles.subtitle,
        ),
        Spacer(1, 4 * mm),
        facts_table(
            [
                ("借款本金 Principal", fmt(st.principal)),
                ("年利率 Annual rate", format_rate(st.annual_rate)),
                ("还款方式 Repayment", label_of(REPAYMENT_LABELS, st.method)),
                ("待还本金 Principal outstanding", fmt(st.principal_outstanding)),
                ("今日应还 Due now", fmt(st.due_now)),
                ("其中逾期 Of which overdue", f"{fmt(st.overdue)}  ({st.days_past_due} 天 days)"),
                ("罚息 Penalty accrued", fmt(st.penalty_accrued)),
                ("暂存多付款 Overpayment held", fmt(st.overpayment_held)),
                (
                    "下一期 Next instalment",
                    f"{nxt.due_date.isoformat()}  {fmt(nxt.outstanding)}" if nxt else "—",
                ),
            ],
            styles,
            width * 0.6,
        ),
        Paragraph("还款计划 Schedule", styles.h_zh),
    ]
    if st.instalments:
        rows: list[list[object]] = [
            [
                "期数 No.",
                "到期日 Due",
                "本金 Principal",
                "利息 Interest",
                "应还 Payment",
                "已还 Paid",
                "罚息 Penalty paid",
                "未还 Outstanding",
                "状态 Standing",
            ]
        ]
        for i in st.instalments:
            standing = label_of(STANDING_LABELS, i.standing)
            if i.days_past_due:
                standing += f" {i.days_past_due}d"
            rows.append(
                [
                    str(i.number),
                    i.due_date.isoformat(),
                    fmt(i.principal_due),
                    fmt(i.interest_due),
                    fmt(i.payment),
                    fmt(i.paid),
                    fmt(i.penalty_paid),
                    fmt(i.outstanding),
                    Paragraph(pdf_text(standing), styles.cell),
                ]
            )
        rows.append(
            [
                "合计 Total",
                "",
                fmt(sum(i.principal_due for i in st.instalments)),
                fmt(sum(i.interest_due for i in st.instalments)),
                fmt(sum(i.payment for i in st.instalments)),
                fmt(sum(i.paid for i in st.instalments)),
                fmt(sum(i.penalty_paid for i in st.instalments)),
                fmt(sum(i.outstanding for i in st.instalments)),
                "",
            ]
        )
        shares = (0.07, 0.11, 0.11, 0.11, 0.11, 0.11, 0.1, 0.11, 0.17)
        story.append(pdf_table(rows, [width * f for f in shares], numeric_from=2, total=True))
    else:
        story.append(Paragraph("借款尚未放款，暂无还款计划。 Not paid out yet: no schedule.", styles.body))
    story.append(Paragraph("还款记录 Repayments", styles.h_zh))
    if st.repayments:
        paid: list[list[object]] = [
            [
                "编号 Ref",
                "起息日 Value date",
                "类型 Kind",
                "状态 Status",
                "金额 Amount",
                "罚息 Penalty",
                "利息 Interest",
                "本金 Principal",
                "暂存 Held",
            ]
        ]
        for r in st.repayments:
            paid.append(
                [
                    r.ref,
                    r.value_date.isoformat() if r.value_date else "—",
                    Paragraph(pdf_text(label_of(KIND_LABELS, r.kind)), styles.cell),
                    Paragraph(pdf_text(label_of(REPAYMENT_STATUS_LABELS, r.status)), styles.cell),
                    fmt(r.amount),
                    fmt(r.penalty),
                    fmt(r.interest),
                    fmt(r.principal),
                    fmt(r.held),
                ]
            )
        shares = (0.14, 0.1, 0.13, 0.13, 0.1, 0.1, 0.1, 0.1, 0.1)
        story.append(pdf_table(paid, [width * f for f in shares], numeric_from=4, total=False))
    else:
        story.append(Paragraph("尚无还款。 No repayments yet.", styles.body))
    story.append(Spacer(1, 3 * mm))
    story.append(
        Paragraph(
            "还款经存管银行划入借款回款账户，从不经过平台自有账户。 "
            "Repayments are collected by the custodian bank into the loan's collection account, "
            "never by the platform.",
            styles.body_en,
        )
    )
    return _document(f"借款还款对账单 Loan statement {st.loan_ref}", story, landscape_page=True)


# --- the income statement --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IncomeTotals:
    principal: int = 0
    interest: int = 0
    penalty: int = 0
    service_fee: int = 0
    net: int = 0

    @property
    def income(self) -> int:
        """Interest and penalty interest, before the service fee."""
        return self.interest + self.penalty

    def plus(self, d: Distribution | IncomeTotals) -> IncomeTotals:
        return IncomeTotals(
            self.principal + d.principal,
            self.interest + d.interest,
            self.penalty + d.penalty,
            self.service_fee + d.service_fee,
            self.net + d.net,
        )


@dataclass(frozen=True, slots=True)
class IncomeLine:
    value_date: date
    loan_id: uuid.UUID
    loan_ref: str
    note_ref: str
    source_kind: str
    totals: IncomeTotals


@dataclass(frozen=True, slots=True)
class LoanIncome:
    loan_id: uuid.UUID
    loan_ref: str
    enterprise: str
    totals: IncomeTotals


@dataclass(frozen=True, slots=True)
class MonthIncome:
    month: str  # YYYY-MM
    totals: IncomeTotals


@dataclass(frozen=True, slots=True)
class IncomeStatement:
    investor_name: str
    investor_ref: str
    currency: str
    since: date
    until: date
    generated_at: datetime
    lines: tuple[IncomeLine, ...]
    by_loan: tuple[LoanIncome, ...]
    by_month: tuple[MonthIncome, ...]
    totals: IncomeTotals
    ledger_net: int  # what the distribution entries credited to the investor's available account
    notes: dict[str, int] = field(default_factory=dict)

    @property
    def reconciled(self) -> bool:
        return self.ledger_net == self.totals.net


def _income_investor(session: Session, ctx: Context) -> Organisation:
    require(ctx, Action.READ_PORTFOLIO)
    if ctx.actor.org_type is not OrgType.INVESTOR or ctx.actor.organisation_id is None:
        raise PermissionDenied("only investors have an income statement / 只有投资人有收益对账单")
    org = session.get(Organisation, ctx.actor.organisation_id)
    assert org is not None
    return org


def _months(since: date, until: date) -> list[str]:
    out: list[str] = []
    year, month = since.year, since.month
    while (year, month) <= (until.year, until.month) and len(out) <= MAX_FILLED_MONTHS:
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def _ledger_net(session: Session, org_id: uuid.UUID, currency: str, entry_ids: set[uuid.UUID]) -> int:
    if not entry_ids:
        return 0
    credited = session.scalar(
        select(func.coalesce(func.sum(Posting.amount), 0))
        .join(LedgerAccount, LedgerAccount.id == Posting.account_id)
        .where(
            Posting.entry_id.in_(entry_ids),
            Posting.side == "C",
            LedgerAccount.owner_org_id == org_id,
            LedgerAccount.purpose == Purpose.INVESTOR_AVAILABLE.value,
            LedgerAccount.currency == currency,
        )
    )
    return int(credited or 0)


def read_income_statement(
    session: Session,
    *,
    ctx: Context,
    settings: Settings,
    since: date | None = None,
    until: date | None = None,
    currency: str = "CNY",
) -> IncomeStatement:
    """The signed-in investor's distributions with a value date in [since, until] (default: from the
    first one to today), summed by loan and by month."""
    org = _income_investor(session, ctx)
    until = until or _today(ctx, settings)
    if since is None:
        first = session.scalar(
            select(func.min(Distribution.value_date)).where(
                Distribution.investor_org_id == org.id, Distribution.currency == currency
            )
        )
        since = min(first or until, until)
    if since > until:
        raise InvalidInput(
            "since must not be after until / 起始日期不能晚于截止日期",
            [FieldProblem(("query", "since"), f"must be on or before {until.isoformat()}")],
        )
    found = session.execute(
        select(Distribution, Loan.ref, Loan.enterprise_org_id, Note.ref)
        .join(Loan, Loan.id == Distribution.loan_id)
        .join(Note, Note.id == Distribution.note_id)
        .where(
            Distribution.investor_org_id == org.id,
            Distribution.currency == currency,
            Distribution.value_date >= since,
            Distribution.value_date <= until,
        )
        .order_by(Distribution.value_date, Loan.ref, Note.ref, Distribution.id)
    ).all()
    names = {
        o.id: o.name
        for o in session.scalars(select(Organisation).where(Organisation.id.in_({row[2] for row in found})))
    }
    lines: list[IncomeLine] = []
    by_loan: dict[uuid.UUID, LoanIncome] = {}
    months: dict[str, IncomeTotals] = {m: IncomeTotals() for m in _months(since, until)}
    total = IncomeTotals()
    notes: dict[str, int] = {}
    for d, loan_ref, enterprise_id, note_ref in found:
        one = IncomeTotals().plus(d)
        lines.append(IncomeLine(d.value_date, d.loan_id, loan_ref, note_ref, d.source_kind, one))
        held = by_loan.get(d.loan_id) or LoanIncome(
            d.loan_id, loan_ref, names.get(enterprise_id, ""), IncomeTotals()
        )
        by_loan[d.loan_id] = LoanIncome(held.loan_id, held.loan_ref, held.enterprise, held.totals.plus(one))
        month = d.value_date.strftime("%Y-%m")
        months[month] = months.get(month, IncomeTotals()).plus(one)
        total = total.plus(one)
        notes[note_ref] = notes.get(note_ref, 0) + d.net
    return IncomeStatement(
        investor_name=org.name,
        investor_ref=org.ref,
        currency=currency,
        since=since,
        until=until,
        generated_at=ctx.now(),
        lines=tuple(lines),
        by_loan=tuple(sorted(by_loan.values(), key=lambda x: x.loan_ref)),
        by_month=tuple(MonthIncome(m, t) for m, t in sorted(months.items())),
        totals=total,
        ledger_net=_ledger_net(session, org.id, currency, {d.entry_id for d, *_ in found if d.entry_id}),
        notes=notes,
    )


def _totals_dict(t: IncomeTotals) -> dict[str, int]:
    return {
        "principal_minor": t.principal,
        "interest_minor": t.interest,
        "penalty_minor": t.penalty,
        "income_minor": t.income,
        "service_fee_minor": t.service_fee,
        "net_minor": t.net,
    }


def income_statement_dict(st: IncomeStatement) -> dict[str, Any]:
    return {
        "investor": {"name": st.investor_name, "ref": st.investor_ref},
        "currency": st.currency,
        "since": st.since.isoformat(),
        "until": st.until.isoformat(),
        "generated_at": st.generated_at.isoformat(),
        "totals": _totals_dict(st.totals),
        "ledger_net_minor": st.ledger_net,
        "reconciled": st.reconciled,
        "by_loan": [
            {
                "loan_id": str(x.loan_id),
                "loan_ref": x.loan_ref,
                "enterprise": x.enterprise,
                **_totals_dict(x.totals),
            }
            for x in st.by_loan
        ],
        "by_month": [{"month": m.month, **_totals_dict(m.totals)} for m in st.by_month],
        "lines": [
            {
                "value_date": line.value_date.isoformat(),
                "loan_id": str(line.loan_id),
                "loan_ref": line.loan_ref,
                "note_ref": line.note_ref,
                "source": line.source_kind,
                **_totals_dict(line.totals),
            }
            for line in st.lines
        ],
    }


_INCOME_HEAD = [
    "本金回收 Principal returned",
    "利息 Interest",
    "罚息 Penalty",
    "收益合计 Income",
    "服务费 Service fee",
    "实收 Net received",
]


def _income_cells(t: IncomeTotals, cur: str) -> list[str]:
    return [_amount(v, cur) for v in (t.principal, t.interest, t.penalty, t.income, t.service_fee, t.net)]


def income_statement_csv(st: IncomeStatement) -> bytes:
    cur = st.currency
    rows: list[Sequence[object]] = [
        ["投资人 Investor", st.investor_name, st.investor_ref, cur],
        ["期间 Period", st.since.isoformat(), st.until.isoformat()],
        ["合计 Total", *_income_cells(st.totals, cur)],
        ["账户入账 Credited to your account (ledger)", _amount(st.ledger_net, cur)],
        [],
        ["按借款 By loan"],
        ["借款 Loan", "企业 Enterprise", *_INCOME_HEAD],
    ]
    rows += [[x.loan_ref, x.enterprise, *_income_cells(x.totals, cur)] for x in st.by_loan]
    rows += [[], ["按月 By month"], ["月份 Month", *_INCOME_HEAD]]
    rows += [[m.month, *_income_cells(m.totals, cur)] for m in st.by_month]
    rows += [
        [],
        ["明细 Lines"],
        ["起息日 Value date", "借款 Loan", "债权 Note", "来源 Source", *_INCOME_HEAD],
    ]
    rows += [
        [
            line.value_date.isoformat(),
            line.loan_ref,
            line.note_ref,
            line.source_kind,
            *_income_cells(line.totals, cur),
        ]
        for line in st.lines
    ]
    return _csv_bytes(rows)


def income_statement_pdf(st: IncomeStatement) -> bytes:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, Spacer

    ensure_font()
    styles = PdfStyles()
    cur = st.currency
    width = A4[0] - 24 * mm

    def fmt(minor: int) -> str:
        return format_amount(minor, cur)

    t = st.totals
    story: list[Any] = [
        Paragraph("云融 Yunrong  |  投资收益对账单 Income statement", styles.title),
        Paragraph(
            pdf_text(f"{st.investor_name}  |  {st.investor_ref}  |  {st.since.isoformat()} — {st.until}"),
            styles.subtitle,
        ),
        Paragraph(
            pdf_text(_generated(st.generated_at, cur)),
            styles.subtitle,
        ),
        Spacer(1, 4 * mm),
        facts_table(
            [
                ("本金回收 Principal returned", fmt(t.principal)),
                ("利息收入 Interest income", fmt(t.interest)),
                ("罚息收入 Penalty interest", fmt(t.penalty)),
                ("平台服务费（已扣除）Service fee deducted", fmt(t.service_fee)),
                ("实收合计 Net received", fmt(t.net)),
                (
                    "存管账户入账 Credited to your account",
                    fmt(st.ledger_net)
                    + ("  ✓ 与账务一致 matches the ledger" if st.reconciled else "  ≠ 不一致 differs"),
                ),
            ],
            styles,
            width,
        ),
    ]
    story.append(Paragraph("按月 By month", styles.h_zh))
    months: list[list[object]] = [["月份 Month", "本金 Principal", "收益 Income", "服务费 Fee", "实收 Net"]]
    months += [
        [m.month, fmt(m.totals.principal), fmt(m.totals.income), fmt(m.totals.service_fee), fmt(m.totals.net)]
        for m in st.by_month
    ]
    months.append(["合计 Total", fmt(t.principal), fmt(t.income), fmt(t.service_fee), fmt(t.net)])
    story.append(
        pdf_table(months, [width * f for f in (0.2, 0.2, 0.2, 0.2, 0.2)], numeric_from=1, total=True)
    )
    if st.by_month:
        story += [
            Spacer(1, 3 * mm),
            bar_chart(
                f"每月实收 Net received by month ({cur})",
                [(m.month, m.totals.net) for m in st.by_month],
                cur,
                width,
            ),
        ]
    story.append(Paragraph("按借款 By loan", styles.h_zh))
    if st.by_loan:
        loans: list[list[object]] = [
            [
                "借款 Loan",
                "企业 Enterprise",
                "本金 Principal",
                "利息 Interest",
                "罚息 Penalty",
                "服务费 Fee",
                "实收 Net",
            ]
        ]
        for x in st.by_loan:
            loans.append(
                [
                    x.loan_ref,
                    Paragraph(pdf_text(x.enterprise), styles.cell),
                    fmt(x.totals.principal),
                    fmt(x.totals.interest),
                    fmt(x.totals.penalty),
                    fmt(x.totals.service_fee),
                    fmt(x.totals.net),
                ]
            )
        loans.append(
            [
                "合计 Total",
                "",
                fmt(t.principal),
                fmt(t.interest),
                fmt(t.penalty),
                fmt(t.service_fee),
                fmt(t.net),
            ]
        )
        shares = (0.15, 0.25, 0.12, 0.12, 0.12, 0.12, 0.12)
        story.append(pdf_table(loans, [width * f for f in shares], numeric_from=2, total=True))
    else:
        story.append(Paragraph("本期无回款。 Nothing received in this period.", styles.body))
    story.append(Spacer(1, 3 * mm))
    story.append(
        Paragraph(
            "回款由存管银行从借款回款账户直接划入您的账户；服务费按已披露费率从利息中扣除。 "
            "Repayments go from the loan's collection account at the custodian bank straight to your "
            "account; the disclosed service fee is deducted from interest.",
            styles.body_en,
        )
    )
    return _document(f"投资收益对账单 Income statement {st.investor_ref}", story)
