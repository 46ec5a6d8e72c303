"""The loan agreement and the investor statement as PDFs: pure renderers over plain data.

The agreement is what every party accepts by click-through, and each acceptance is recorded with
the document's SHA-256. So the same terms must always give the same bytes: reportlab runs in its
invariant mode and the PDF's creation date is the terms' own ``created_at``, never the wall clock.
The terms travel as a JSON-safe dict (``terms_as_dict`` / ``terms_from_dict``) so that a stored
agreement can be rendered again, byte for byte, and its hash checked.

Chinese renders with the Adobe-Asian ``STSong-Light`` CID font that PDF readers provide, so no font
file is embedded or downloaded. Nothing here knows of the web or the database.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape

from yunrong.kit.money import CURRENCY_EXPONENT

FONT = "STSong-Light"
LENDER_KINDS = frozenset({"investors", "bank"})

#: Civil Code art. 670 (and cn-2016 art. 10): interest may not be deducted from the principal.
NO_UPFRONT_DEDUCTION = (
    "借款利息不得预先在本金中扣除；借款人实际收到的本金即为上文所载借款金额。\n"
    "No interest is deducted from the principal up front: the borrower receives the full amount stated above."
)

PRODUCT_LABELS: dict[str, tuple[str, str]] = {
    "bank_loan": ("银行贷款", "Bank loan"),
    "p2p_loan": ("网络借贷", "P2P loan"),
    "supply_chain_receivable": ("供应链应收账款融资", "Supply-chain receivable finance"),
    "ecommerce_credit_line": ("电商数据信用贷", "E-commerce data credit line"),
    "financial_lease": ("融资租赁", "Financial lease"),
}
REPAYMENT_LABELS: dict[str, tuple[str, str]] = {
    "equal_instalment": ("等额本息", "Equal instalments"),
    "equal_principal": ("等额本金", "Equal principal"),
    "interest_only_balloon": ("先息后本", "Interest only, principal at maturity"),
    "bullet": ("到期一次还本付息", "Principal and interest at maturity"),
    "lease_rent": ("按期支付租金", "Lease rent"),
    "revolving": ("循环额度", "Revolving line"),
}
STATUS_LABELS: dict[str, tuple[str, str]] = {
    "contracting": ("签约中", "Contracting"),
    "disbursing": ("放款中", "Disbursing"),
    "active": ("还款中", "Repaying"),
    "overdue": ("逾期", "Overdue"),
    "defaulted": ("违约", "Defaulted"),
    "repaid": ("已结清", "Repaid"),
    "cancelled": ("已取消", "Cancelled"),
}
CASH_FLOW_LABELS: dict[str, tuple[str, str]] = {
    "deposit": ("充值", "Deposit"),
    "withdrawal": ("提现", "Withdrawal"),
    "investment": ("出借", "Investment"),
    "principal": ("回收本金", "Principal repaid"),
    "interest": ("利息", "Interest"),
    "penalty": ("罚息", "Penalty interest"),
    "fee": ("费用", "Fee"),
    "recovery": ("追偿回收", "Recovery"),
}
#: Best first, as in ``yunrong.credit.grades`` (not imported: that module pulls in numpy).
GRADE_ORDER = ("AAA", "AA", "A", "BBB", "BB", "B", "CCC", "CC", "C")

_DIGITS_ZH = "零壹贰叁肆伍陆柒捌玖"


# --- the terms --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Borrower:
    name: str
    credit_code: str  # unified social credit code (统一社会信用代码)
    address: str | None


@dataclass(frozen=True, slots=True)
class Lender:
    """One lender row: an investor's note in a P2P loan, or the bank for a bank loan."""

    name: str
    ref: str
    principal_minor: int


@dataclass(frozen=True, slots=True)
class Fee:
    name_en: str
    name_zh: str
    amount_minor: int
    payee: str


@dataclass(frozen=True, slots=True)
class ScheduleRow:
    number: int
    due_date: date
    principal: int
    interest: int
    payment: int
    balance_after: int


@dataclass(frozen=True, slots=True)
class Guarantee:
    guarantor: str
    coverage_bp: int  # share of the loss covered, basis points (10000 = all of it)


@dataclass(frozen=True, slots=True)
class Insurance:
    insurer: str
    cover: str


@dataclass(frozen=True, slots=True)
class AgreementTerms:
    """Everything the agreement states, as plain data. Amounts are integer minor units."""

    loan_ref: str
    demand_ref: str
    product: str
    lender_kind: str  # "investors" or "bank"
    borrower: Borrower
    lenders: tuple[Lender, ...]
    custodian_bank: str
    principal_minor: int
    currency: str
    annual_rate: Decimal  # nominal, a fraction (0.085 = 8.5%)
    apr: Decimal  # annual percentage rate with every fee included, a fraction
    fees: tuple[Fee, ...]
    repayment_method: str
    term_months: int
    schedule: tuple[ScheduleRow, ...]
    guarantee: Guarantee | None
    insurance: Insurance | None
    collateral: tuple[str, ...]
    policy_key: str
    policy_name_en: str
    policy_name_zh: str
    interest_cap_text: str
    penalty_text: str
    no_upfront_deduction_text: str
    dispute_resolution_text: str
    created_at: datetime

    def __post_init__(self) -> None:
        problems = _terms_problems(self)
        if problems:
            raise ValueError("inconsistent agreement terms: " + "; ".join(problems))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _terms_problems(t: AgreementTerms) -> list[str]:
    """Every inconsistency at once: an agreement must never state figures that do not add up."""
    problems: list[str] = []
    if t.lender_kind not in LENDER_KINDS:
        problems.append(f"lender_kind must be one of {sorted(LENDER_KINDS)}, not {t.lender_kind!r}")
    if t.currency not in CURRENCY_EXPONENT:
        problems.append(f"unknown currency {t.currency!r}")
    if t.created_at.tzinfo is None:
        problems.append("created_at must be timezone-aware")
    if not _is_int(t.principal_minor) or t.principal_minor <= 0:
        problems.append("principal_minor must be a positive integer")
        return problems
    if not t.lenders:
        problems.append("at least one lender is needed")
    if t.lender_kind == "bank" and len(t.lenders) != 1:
        problems.append("a bank loan has exactly one lender, the bank")
    if any(not _is_int(x.principal_minor) or x.principal_minor <= 0 for x in t.lenders):
        problems.append("every lender's principal must be a positive integer")
    elif sum(x.principal_minor for x in t.lenders) != t.principal_minor:
        problems.append("the lenders' principals do not add up to the loan principal")
    if any(not _is_int(f.amount_minor) or f.amount_minor < 0 for f in t.fees):
        problems.append("fee amounts must be non-negative integers")
    if not t.schedule:
        problems.append("the repayment schedule is empty")
    balance = t.principal_minor
    for expected_number, row in enumerate(t.schedule, start=1):
        if row.number != expected_number:
            problems.append(f"schedule row {expected_number} is numbered {row.number}")
        if row.payment != row.principal + row.interest:
            problems.append(f"schedule row {row.number}: payment is not principal + interest")
        balance -= row.principal
        if row.balance_after != balance:
            problems.append(f"schedule row {row.number}: balance after should be {balance}")
    if t.schedule and balance != 0:
        problems.append("the schedule does not repay the whole principal")
    dues = [row.due_date for row in t.schedule]
    if dues != sorted(dues):
        problems.append("schedule due dates go backwards")
    if t.guarantee is not None and not 0 < t.guarantee.coverage_bp <= 10_000:
        problems.append("guarantee coverage must be between 1 and 10000 basis points")
    if t.annual_rate < 0 or t.apr < 0:
        problems.append("rates cannot be negative")
    if t.term_months <= 0:
        problems.append("term_months must be positive")
    return problems


def terms_as_dict(t: AgreementTerms) -> dict[str, Any]:
    """JSON-safe: ints, strings (rates as decimal strings), ISO dates and datetimes, lists, None."""
    return {
        "loan_ref": t.loan_ref,
        "demand_ref": t.demand_ref,
        "product": t.product,
        "lender_kind": t.lender_kind,
        "borrower": {
            "name": t.borrower.name,
            "credit_code": t.borrower.credit_code,
            "address": t.borrower.address,
        },
        "lenders": [{"name": x.name, "ref": x.ref, "principal_minor": x.principal_minor} for x in t.lenders],
        "custodian_bank": t.custodian_bank,
        "principal_minor": t.principal_minor,
        "currency": t.currency,
        "annual_rate": str(t.annual_rate),
        "apr": str(t.apr),
        "fees": [
            {"name_en": f.name_en, "name_zh": f.name_zh, "amount_minor": f.amount_minor, "payee": f.payee}
            for f in t.fees
        ],
        "repayment_method": t.repayment_method,
        "term_months": t.term_months,
        "schedule": [
            {
                "number": r.number,
                "due_date": r.due_date.isoformat(),
                "principal": r.principal,
                "interest": r.interest,
                "payment": r.payment,
                "balance_after": r.balance_after,
            }
            for r in t.schedule
        ],
        "guarantee": None
        if t.guarantee is None
        else {"guarantor": t.guarantee.guarantor, "coverage_bp": t.guarantee.coverage_bp},
        "insurance": None
        if t.insurance is None
        else {"insurer": t.insurance.insurer, "cover": t.insurance.cover},
        "collateral": list(t.collateral),
        "policy_key": t.policy_key,
        "policy_name_en": t.policy_name_en,
        "policy_name_zh": t.policy_name_zh,
        "interest_cap_text": t.interest_cap_text,
        "penalty_text": t.penalty_text,
        "no_upfront_deduction_text": t.no_upfront_deduction_text,
        "dispute_resolution_text": t.dispute_resolution_text,
        "created_at": t.created_at.isoformat(),
    }


def terms_from_dict(d: Mapping[str, Any]) -> AgreementTerms:
    """The inverse of :func:`terms_as_dict`; a missing key raises ``KeyError``."""
    b = d["borrower"]
    g = d["guarantee"]
    i = d["insurance"]
    return AgreementTerms(
        loan_ref=d["loan_ref"],
        demand_ref=d["demand_ref"],
        product=d["product"],
        lender_kind=d["lender_kind"],
        borrower=Borrower(name=b["name"], credit_code=b["credit_code"], address=b["address"]),
        lenders=tuple(Lender(x["name"], x["ref"], int(x["principal_minor"])) for x in d["lenders"]),
        custodian_bank=d["custodian_bank"],
        principal_minor=int(d["principal_minor"]),
        currency=d["currency"],
        annual_rate=Decimal(d["annual_rate"]),
        apr=Decimal(d["apr"]),
        fees=tuple(Fee(f["name_en"], f["name_zh"], int(f["amount_minor"]), f["payee"]) for f in d["fees"]),
        repayment_method=d["repayment_method"],
        term_months=int(d["term_months"]),
        schedule=tuple(
            ScheduleRow(
                number=int(r["number"]),
                due_date=date.fromisoformat(r["due_date"]),
                principal=int(r["principal"]),
                interest=int(r["interest"]),
                payment=int(r["payment"]),
                balance_after=int(r["balance_after"]),
            )
            for r in d["schedule"]
        ),
        guarantee=None if g is None else Guarantee(g["guarantor"], int(g["coverage_bp"])),
        insurance=None if i is None else Insurance(i["insurer"], i["cover"]),
        collateral=tuple(d["collateral"]),
        policy_key=d["policy_key"],
        policy_name_en=d["policy_name_en"],
        policy_name_zh=d["policy_name_zh"],
        interest_cap_text=d["interest_cap_text"],
        penalty_text=d["penalty_text"],
        no_upfront_deduction_text=d["no_upfront_deduction_text"],
        dispute_resolution_text=d["dispute_resolution_text"],
        created_at=datetime.fromisoformat(d["created_at"]),
    )


def agreement_sha256(pdf: bytes) -> str:
    """The hex digest recorded with every acceptance."""
    return hashlib.sha256(pdf).hexdigest()


# --- formatting -------------------------------------------------------------------------------------


def format_amount(minor: int, currency: str) -> str:
    """``1234567, "CNY"`` → ``"12,345.67"``: exact, grouped, no float on the way."""
    exponent = CURRENCY_EXPONENT[currency]
    sign = "-" if minor < 0 else ""
    units, cents = divmod(abs(minor), 10**exponent)
    return f"{sign}{units:,}" + (f".{cents:0{exponent}d}" if exponent else "")


def format_rate(rate: Decimal) -> str:
    """A fraction as a percentage with two decimals: ``Decimal("0.0875")`` → ``"8.75%"``."""
    return f"{(rate * 100).quantize(Decimal('0.01'))}%"


def _section_zh(value: int) -> str:
    """0 < value < 10000 in financial uppercase, without the section's unit."""
    out: list[str] = []
    pending_zero = False
    for position, unit in ((1000, "仟"), (100, "佰"), (10, "拾"), (1, "")):
        digit = value // position % 10
        if digit == 0:
            pending_zero = bool(out)
            continue
        if pending_zero:
            out.append("零")
            pending_zero = False
        out.append(_DIGITS_ZH[digit] + unit)
    return "".join(out)


def amount_in_words_zh(minor: int) -> str:
    """A CNY amount (in fen) in the financial uppercase used on contracts: 人民币壹万贰仟元整."""
    if not _is_int(minor) or minor < 0:
        raise ValueError("amount_in_words_zh takes a non-negative integer amount in fen")
    yuan, rest = divmod(minor, 100)
    jiao, fen = divmod(rest, 10)
    sections: list[int] = []
    while yuan:
        yuan, section = divmod(yuan, 10_000)
        sections.append(section)
    units = ["", "万", "亿", "万亿"]
    if len(sections) > len(units):
        raise ValueError("amount too large to write out")
    words = ""
    gap = False  # zeros wait between the last digit written and the next: one 零 stands for them
    for index in range(len(sections) - 1, -1, -1):
        section = sections[index]
        if section == 0:
            gap = bool(words)
            continue
        if words and (gap or section < 1000):
            words += "零"
        words += _section_zh(section) + units[index]
        gap = section % 10 == 0
    if words:
        words += "元"
    if jiao == 0 and fen == 0:
        return "人民币" + (words or "零元") + "整"
    if jiao:
        words += _DIGITS_ZH[jiao] + "角"
    elif words:
        words += "零"
    words += _DIGITS_ZH[fen] + "分" if fen else "整"
    return "人民币" + words


def label_of(labels: Mapping[str, tuple[str, str]], key: str) -> str:
    zh, en = labels.get(key, (key, key))
    return zh if zh == en else f"{zh} {en}"


# --- reportlab plumbing -----------------------------------------------------------------------------


def ensure_font() -> None:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont

    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))


def _pdf_date(at: datetime) -> Callable[..., str]:
    """A date formatter for reportlab that ignores the clock and states ``at`` (in UTC)."""
    stamp = at.astimezone(UTC).strftime("D:%Y%m%d%H%M%S+00'00'")
    return lambda *_ignored: stamp


def pdf_text(text: str) -> str:
    """Escape user text for a reportlab Paragraph, keeping line breaks."""
    return escape(text).replace("\n", "<br/>")


class PdfStyles:
    def __init__(self) -> None:
        from reportlab.lib import colors
        from reportlab.lib.styles import ParagraphStyle

        grey = colors.HexColor("#4a5568")
        self.title = ParagraphStyle("title", fontName=FONT, fontSize=18, leading=24, alignment=1)
        self.subtitle = ParagraphStyle(
            "subtitle", fontName=FONT, fontSize=11, leading=15, alignment=1, textColor=grey
        )
        self.h_zh = ParagraphStyle("h_zh", fontName=FONT, fontSize=12, leading=16, spaceBefore=8)
        self.h_en = ParagraphStyle(
            "h_en", fontName=FONT, fontSize=9, leading=12, textColor=grey, spaceAfter=3
        )
        self.body = ParagraphStyle("body", fontName=FONT, fontSize=9, leading=13, spaceAfter=2)
        self.body_en = ParagraphStyle(
            "body_en", fontName=FONT, fontSize=8.5, leading=12, textColor=grey, spaceAfter=4
        )
        self.cell = ParagraphStyle("cell", fontName=FONT, fontSize=8, leading=10)


def pdf_table(
    rows: list[list[object]], widths: Sequence[float], *, numeric_from: int | None, total: bool
) -> Any:
    from reportlab.lib import colors
    from reportlab.platypus import Table, TableStyle

    commands: list[tuple[Any, ...]] = [
        ("FONTNAME", (0, 0), (-1, -1), FONT),
        ("FONTSIZE", (0, 0), (-1, -1), 8),
        ("LEADING", (0, 0), (-1, -1), 10),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#0f2a4a")),
        ("TEXTCOLOR", (0, 0), (-1, 0), colors.white),
        ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f3f5f8")]),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#c8d0da")),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
    ]
    if numeric_from is not None:
        commands.append(("ALIGN", (numeric_from, 1), (-1, -1), "RIGHT"))
    if total:
        commands.append(("BACKGROUND", (0, -1), (-1, -1), colors.HexColor("#e2e8f0")))
    table = Table(rows, colWidths=list(widths), repeatRows=1, hAlign="LEFT")
    table.setStyle(TableStyle(commands))
    return table


def facts_table(rows: Iterable[tuple[str, object]], styles: PdfStyles, width: float) -> Any:
    """A two-column label/value table without a header row."""
    from reportlab.lib import colors
    from reportlab.platypus import Paragraph, Table, TableStyle

    data = [
        [
            Paragraph(pdf_text(label), styles.cell),
            v if not isinstance(v, str) else Paragraph(pdf_text(v), styles.cell),
        ]
        for label, v in rows
    ]
    table = Table(data, colWidths=[width * 0.34, width * 0.66], hAlign="LEFT")
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#c8d0da")),
                ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#f3f5f8")),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    return table


# --- the agreement ----------------------------------------------------------------------------------


def render_agreement(terms: AgreementTerms) -> bytes:
    """A bilingual A4 PDF of the agreement; the same terms always give the same bytes."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer

    ensure_font()
    styles = PdfStyles()
    t = terms
    cur = t.currency
    width = A4[0] - 36 * mm

    def money(minor: int) -> str:
        return f"{cur} {format_amount(minor, cur)}"

    story: list[Any] = []
    article = 0

    def heading(zh: str, en: str) -> None:
        nonlocal article
        article += 1
        story.append(Paragraph(f"第{article}条　{pdf_text(zh)}", styles.h_zh))
        story.append(Paragraph(f"Article {article}: {pdf_text(en)}", styles.h_en))

    def clause(zh: str, en: str) -> None:
        story.append(Paragraph(pdf_text(zh), styles.body))
        story.append(Paragraph(pdf_text(en), styles.body_en))

    def text_block(text: str) -> None:
        for line in text.splitlines() or [""]:
            story.append(Paragraph(pdf_text(line), styles.body))

    story += [
        Paragraph("借款合同", styles.title),
        Paragraph("Loan Agreement", styles.subtitle),
        Paragraph(
            pdf_text(
                f"合同编号 Agreement No. {t.loan_ref}  |  融资需求 Demand {t.demand_ref}  |  "
                f"{label_of(PRODUCT_LABELS, t.product)}"
            ),
            styles.subtitle,
        ),
        Paragraph(
            pdf_text(f"订立时间 Made on {t.created_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"), styles.subtitle
        ),
        Spacer(1, 5 * mm),
    ]

    # 1. parties
    heading("合同各方", "Parties")
    b = t.borrower
    story.append(
        facts_table(
            [
                ("借款人 Borrower", b.name),
                ("统一社会信用代码 Unified social credit code", b.credit_code),
                ("住所 Registered address", b.address or "—"),
                ("资金存管银行 Custodian bank", t.custodian_bank),
                ("信息中介 Information intermediary", "云融 Yunrong"),
            ],
            styles,
            width,
        )
    )
    story.append(Spacer(1, 3 * mm))
    if t.lender_kind == "bank":
        clause(
            f"出借人为银行 {t.lenders[0].name}（编号 {t.lenders[0].ref}），以其自有资金发放本笔贷款。",
            f"The lender is the bank {t.lenders[0].name} (ref {t.lenders[0].ref}), lending its own funds.",
        )
    else:
        clause(
            f"出借人为下列 {len(t.lenders)} 位投资人，各按其出借凭证所载金额出借，合计等于借款金额。",
            f"The lenders are the {len(t.lenders)} investors below, each lending the amount of its note; "
            "together they lend the whole principal.",
        )
    lender_rows: list[list[object]] = [
        ["序号 No.", "出借人 Lender", "凭证编号 Note / ref", "出借金额 Principal"]
    ]
    for n, lender in enumerate(t.lenders, start=1):
        lender_rows.append(
            [str(n), Paragraph(pdf_text(lender.name), styles.cell), lender.ref, money(lender.principal_minor)]
        )
    lender_rows.append(["", "合计 Total", "", money(sum(x.principal_minor for x in t.lenders))])
    story.append(
        pdf_table(lender_rows, [width * f for f in (0.1, 0.38, 0.26, 0.26)], numeric_from=3, total=True)
    )

    # 2. amount
    heading("借款金额", "Amount")
    amount_rows: list[tuple[str, object]] = [
        ("借款本金（小写） Principal in figures", money(t.principal_minor))
    ]
    if cur == "CNY":
        amount_rows.append(("借款本金（大写） Principal in words", amount_in_words_zh(t.principal_minor)))
    amount_rows += [
        ("借款期限 Term", f"{t.term_months} 个月 months"),
        ("还款方式 Repayment method", label_of(REPAYMENT_LABELS, t.repayment_method)),
    ]
    story.append(facts_table(amount_rows, styles, width))
    story.append(Spacer(1, 2 * mm))
    text_block(t.no_upfront_deduction_text)

    # 3. rate, APR and fees
    heading("利率与费用", "Interest rate, APR and fees")
    total_interest = sum(r.interest for r in t.schedule)
    total_fees = sum(f.amount_minor for f in t.fees)
    story.append(
        facts_table(
            [
                ("年利率（名义） Nominal annual rate", format_rate(t.annual_rate)),
                ("年化综合成本（含全部费用） APR, every fee included", format_rate(t.apr)),
                ("利息合计 Total interest", money(total_interest)),
                ("费用合计 Total fees", money(total_fees)),
                ("借款总成本 Total cost of credit", money(total_interest + total_fees)),
                (
                    "应还总额（本息） Total to repay (principal + interest)",
                    money(t.principal_minor + total_interest),
                ),
            ],
            styles,
            width,
        )
    )
    story.append(Spacer(1, 3 * mm))
    if t.fees:
        fee_rows: list[list[object]] = [["费用 Fee", "收取方 Payee", "金额 Amount"]]
        for f in t.fees:
            fee_rows.append(
                [
                    Paragraph(pdf_text(f"{f.name_zh} {f.name_en}"), styles.cell),
                    Paragraph(pdf_text(f.payee), styles.cell),
                    money(f.amount_minor),
                ]
            )
        fee_rows.append(["合计 Total", "", money(total_fees)])
        story.append(
            pdf_table(fee_rows, [width * 0.44, width * 0.32, width * 0.24], numeric_from=2, total=True)
        )
        story.append(Spacer(1, 2 * mm))
        clause(
            "除上表所列费用外，借款人无需向任何一方支付其他费用；上述年化综合成本已包含全部费用。",
            "Beyond the fees listed above the borrower pays nothing to anyone; "
            "the APR above includes them all.",
        )
    else:
        clause("本笔借款不收取任何费用。", "No fee is charged on this loan.")

    # 4. schedule
    heading("还款计划", "Repayment schedule")
    sched: list[list[object]] = [
        ["期数 No.", "到期日 Due date", "本金 Principal", "利息 Interest", "应还 Payment", "剩余本金 Balance"]
    ]
    for r in t.schedule:
        sched.append(
            [
                str(r.number),
                r.due_date.isoformat(),
                format_amount(r.principal, cur),
                format_amount(r.interest, cur),
                format_amount(r.payment, cur),
                format_amount(r.balance_after, cur),
            ]
        )
    sched.append(
        [
            "合计 Total",
            "",
            format_amount(sum(r.principal for r in t.schedule), cur),
            format_amount(total_interest, cur),
            format_amount(sum(r.payment for r in t.schedule), cur),
            "",
        ]
    )
    story.append(
        pdf_table(
            sched, [width * f for f in (0.12, 0.18, 0.175, 0.175, 0.175, 0.175)], numeric_from=2, total=True
        )
    )
    story.append(Spacer(1, 2 * mm))
    clause(f"金额单位：{cur}。", f"Amounts in {cur}.")

    # 5. guarantee and insurance
    heading("担保与保险", "Guarantee and insurance")
    if t.guarantee is not None:
        share = format_rate(Decimal(t.guarantee.coverage_bp) / Decimal(10_000))
        clause(
            f"保证人 {t.guarantee.guarantor} 对本笔借款损失的 {share} 承担保证责任。",
            f"{t.guarantee.guarantor} guarantees {share} of any loss on this loan.",
        )
    else:
        clause("本笔借款无第三方保证。", "No third party guarantees this loan.")
    if t.insurance is not None:
        clause(
            f"保险人 {t.insurance.insurer} 承保：{t.insurance.cover}",
            f"Insured by {t.insurance.insurer}: {t.insurance.cover}",
        )
    else:
        clause("本笔借款未投保。", "The loan is not insured.")
    clause(
        "平台仅为信息中介，不对本笔借款提供任何担保，亦不承诺保本保息。",
        "The platform is an information intermediary only: it neither guarantees this loan nor promises "
        "principal or interest.",
    )

    # 6. collateral
    heading("抵押与质押", "Collateral")
    if t.collateral:
        for n, item in enumerate(t.collateral, start=1):
            story.append(Paragraph(f"{n}. {pdf_text(item)}", styles.body))
    else:
        clause("本笔借款无抵押或质押。", "The loan is unsecured.")

    # 7. custody
    heading("资金存管", "Custody of funds")
    clause(
        f"出借资金及还款资金均由存管银行 {t.custodian_bank} 存管并由其划付，"
        "任何资金均不经过平台自有账户，平台不归集、不挪用出借人或借款人的资金。",
        f"The money lent and repaid is held and paid by the custodian bank, {t.custodian_bank}; it never "
        "passes through the platform's own account, and the platform never pools or uses lenders' or "
        "borrowers' funds.",
    )

    # 8. penalty
    heading("逾期与违约", "Late payment and default")
    text_block(t.penalty_text)

    # 9. governing rules
    heading("适用规则", "Governing rules")
    clause(
        f"本合同受 {t.policy_name_zh}（规则编号 {t.policy_key}）及相关法律法规约束。",
        f"This agreement is governed by {t.policy_name_en} (profile {t.policy_key}) and the related laws.",
    )
    text_block(t.interest_cap_text)

    # 10. disputes
    heading("争议解决", "Dispute resolution")
    text_block(t.dispute_resolution_text)

    # 11. acceptance
    accept = [
        Paragraph(f"第{article + 1}条　电子签署", styles.h_zh),
        Paragraph(f"Article {article + 1}: Acceptance", styles.h_en),
        Paragraph(
            pdf_text(
                "本合同以点击确认方式电子签署；每次确认均连同本文件的 SHA-256 摘要记录于平台审计日志。"
                "全部当事人确认后，本合同生效。"
            ),
            styles.body,
        ),
        Paragraph(
            pdf_text(
                "Accepted electronically by click-through; each acceptance is recorded with the document's "
                "SHA-256 in the platform's audit log. "
                "The agreement takes effect once every party has accepted."
            ),
            styles.body_en,
        ),
    ]
    signers: list[list[object]] = [["当事人 Party", "名称 Name", "确认方式 Acceptance"]]
    signers.append(["借款人 Borrower", Paragraph(pdf_text(b.name), styles.cell), "点击确认 click-through"])
    if t.lender_kind == "bank":
        signers.append(
            [
                "出借人 Lender (bank)",
                Paragraph(pdf_text(t.lenders[0].name), styles.cell),
                "点击确认 click-through",
            ]
        )
    else:
        signers.append(
            [
                "出借人 Lenders",
                f"{len(t.lenders)} 位投资人 investors (第1条 Art. 1)",
                "各自点击确认 each by click-through",
            ]
        )
    accept.append(
        pdf_table(signers, [width * 0.28, width * 0.42, width * 0.30], numeric_from=None, total=False)
    )
    story.append(KeepTogether(accept))

    def on_page(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(FONT, 7.5)
        canvas.drawString(18 * mm, 10 * mm, f"借款合同 Loan Agreement {t.loan_ref}")
        canvas.drawRightString(A4[0] - 18 * mm, 10 * mm, f"第 {doc.page} 页 Page {doc.page}")
        canvas.restoreState()

    def on_first_page(canvas: Any, doc: Any) -> None:
        canvas.setDateFormatter(_pdf_date(t.created_at))
        on_page(canvas, doc)

    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=16 * mm,
        bottomMargin=18 * mm,
        title=f"借款合同 Loan Agreement {t.loan_ref}",
        subject=f"Demand {t.demand_ref}",
        author="Yunrong 云融",
        creator="Yunrong 云融",
        invariant=1,
    )
    doc.build(story, onFirstPage=on_first_page, onLaterPages=on_page)
    return buffer.getvalue()


# --- the investor statement -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Holding:
    loan_ref: str
    enterprise: str
    grade: str
    industry: str
    principal_minor: int  # what the investor lent
    outstanding_minor: int  # principal still to be repaid to the investor
    annual_rate: Decimal
    status: str


@dataclass(frozen=True, slots=True)
class CashFlow:
    on: date
    kind: str  # investment, principal, interest, fee, deposit, withdrawal, ...
    amount_minor: int  # signed, from the investor's side: negative = money out, positive = money in


@dataclass(frozen=True, slots=True)
class InvestorStatement:
    investor_name: str
    investor_ref: str
    currency: str
    period_start: date
    period_end: date
    holdings: tuple[Holding, ...]
    available_minor: int  # free cash at the custodian
    held_minor: int  # cash held against pending commitments
    cash_flows: tuple[CashFlow, ...]
    xirr: Decimal | None  # annualised money-weighted return; None when it cannot be computed
    generated_at: datetime


def _grade_key(grade: str) -> tuple[int, str]:
    return (GRADE_ORDER.index(grade), "") if grade in GRADE_ORDER else (len(GRADE_ORDER), grade)


def outstanding_by(holdings: Iterable[Holding], key: Callable[[Holding], str]) -> dict[str, int]:
    """Outstanding principal summed per key, in minor units."""
    totals: dict[str, int] = {}
    for h in holdings:
        totals[key(h)] = totals.get(key(h), 0) + h.outstanding_minor
    return totals


def bar_chart(title: str, items: Sequence[tuple[str, int]], currency: str, width: float) -> Any:
    from reportlab.graphics.charts.barcharts import VerticalBarChart
    from reportlab.graphics.shapes import Drawing, String
    from reportlab.lib import colors

    height = 150.0
    drawing = Drawing(width, height)
    drawing.add(String(0, height - 12, title, fontName=FONT, fontSize=9))
    chart = VerticalBarChart()
    chart.x, chart.y = 42, 30
    chart.width, chart.height = width - 52, height - 56
    scale = 10 ** CURRENCY_EXPONENT[currency]
    # Plotting only: the chart's axis needs numbers, the exact figures are in the tables.
    chart.data = [[minor / scale for _, minor in items]]
    chart.categoryAxis.categoryNames = [label for label, _ in items]
    chart.categoryAxis.labels.fontName = FONT
    chart.categoryAxis.labels.fontSize = 7
    chart.categoryAxis.labels.angle = 30 if len(items) > 4 else 0
    chart.categoryAxis.labels.boxAnchor = "ne" if len(items) > 4 else "n"
    chart.valueAxis.labels.fontName = FONT
    chart.valueAxis.labels.fontSize = 7
    chart.valueAxis.valueMin = 0
    chart.valueAxis.labelTextFormat = lambda value: f"{value:,.0f}"
    chart.bars[0].fillColor = colors.HexColor("#2b6cb0")
    chart.bars[0].strokeColor = None
    drawing.add(chart)
    return drawing


def render_investor_statement(statement: InvestorStatement) -> bytes:
    """One investor's statement: holdings, cash, cash flows, XIRR and charts by grade and industry."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table

    ensure_font()
    styles = PdfStyles()
    s = statement
    cur = s.currency
    width = A4[0] - 24 * mm

    def fmt(minor: int) -> str:
        return format_amount(minor, cur)

    outstanding = sum(h.outstanding_minor for h in s.holdings)

    story: list[Any] = [
        Paragraph("云融 Yunrong  |  投资人对账单 Investor statement", styles.title),
        Paragraph(
            pdf_text(
                f"{s.investor_name}  |  {s.investor_ref}  |  "
                f"{s.period_start.isoformat()} — {s.period_end.isoformat()}"
            ),
            styles.subtitle,
        ),
        Paragraph(
            pdf_text(
                f"生成时间 Generated {s.generated_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC  |  "
                f"金额单位 Amounts in {cur}"
            ),
            styles.subtitle,
        ),
        Spacer(1, 4 * mm),
        facts_table(
            [
                ("可用资金 Available cash", fmt(s.available_minor)),
                ("冻结资金 Held for pending commitments", fmt(s.held_minor)),
                ("待收本金 Outstanding principal", fmt(outstanding)),
                ("账户总值 Total", fmt(s.available_minor + s.held_minor + outstanding)),
                (
                    "内部收益率 XIRR (annualised)",
                    format_rate(s.xirr) if s.xirr is not None else "— 无法计算 not computable",
                ),
            ],
            styles,
            width,
        ),
        Paragraph("持仓 Holdings", styles.h_zh),
    ]
    if s.holdings:
        rows: list[list[object]] = [
            [
                "借款编号 Loan",
                "企业 Enterprise",
                "等级 Grade",
                "本金 Principal",
                "待收 Outstanding",
                "利率 Rate",
                "状态 Status",
            ]
        ]
        for h in s.holdings:
            rows.append(
                [
                    h.loan_ref,
                    Paragraph(pdf_text(h.enterprise), styles.cell),
                    h.grade,
                    fmt(h.principal_minor),
                    fmt(h.outstanding_minor),
                    format_rate(h.annual_rate),
                    Paragraph(pdf_text(label_of(STATUS_LABELS, h.status)), styles.cell),
                ]
            )
        rows.append(
            ["合计 Total", "", "", fmt(sum(h.principal_minor for h in s.holdings)), fmt(outstanding), "", ""]
        )
        story.append(
            pdf_table(
                rows,
                [width * f for f in (0.15, 0.23, 0.09, 0.14, 0.14, 0.09, 0.16)],
                numeric_from=3,
                total=True,
            )
        )
        live = [h for h in s.holdings if h.outstanding_minor > 0]
        if live:
            by_grade = sorted(
                outstanding_by(live, lambda h: h.grade).items(), key=lambda kv: _grade_key(kv[0])
            )
            by_industry = sorted(
                outstanding_by(live, lambda h: h.industry).items(), key=lambda kv: (-kv[1], kv[0])
            )
            half = width / 2 - 4
            charts = [
                bar_chart(f"按等级 By grade (outstanding, {cur})", by_grade, cur, half),
                bar_chart(f"按行业 By industry (outstanding, {cur})", by_industry, cur, half),
            ]
            story += [Spacer(1, 4 * mm), Table([charts], colWidths=[width / 2, width / 2], hAlign="LEFT")]
        else:
            story.append(Paragraph("无待收本金。 Nothing is outstanding.", styles.body))
    else:
        story.append(Paragraph("本期无持仓。 No holdings in this period.", styles.body))

    story.append(Paragraph("资金流水 Cash flows", styles.h_zh))
    if s.cash_flows:
        flows: list[list[object]] = [["日期 Date", "类型 Kind", "金额 Amount"]]
        for c in sorted(s.cash_flows, key=lambda c: c.on):
            flows.append([c.on.isoformat(), label_of(CASH_FLOW_LABELS, c.kind), fmt(c.amount_minor)])
        flows.append(["净额 Net", "", fmt(sum(c.amount_minor for c in s.cash_flows))])
        story.append(pdf_table(flows, [width * 0.25, width * 0.45, width * 0.30], numeric_from=2, total=True))
    else:
        story.append(Paragraph("本期无资金流水。 No cash flows in this period.", styles.body))
    story.append(Spacer(1, 3 * mm))
    story.append(
        Paragraph(
            "资金由存管银行托管，从不经过平台自有账户。 "
            "Funds are held by the custodian bank, never by the platform.",
            styles.body_en,
        )
    )

    def on_first_page(canvas: Any, doc: Any) -> None:
        canvas.setDateFormatter(_pdf_date(s.generated_at))

    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=12 * mm,
        bottomMargin=12 * mm,
        title=f"Investor statement {s.investor_ref} {s.period_start.isoformat()}/{s.period_end.isoformat()}",
        author="Yunrong 云融",
        creator="Yunrong 云融",
        invariant=1,
    )
    doc.build(story, onFirstPage=on_first_page)
    return buffer.getvalue()
