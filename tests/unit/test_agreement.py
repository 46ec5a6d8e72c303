"""The loan agreement and investor statement PDFs: valid, readable, bilingual and byte-for-byte stable.

The text checks read the real (compressed) output: each content stream is decoded (ASCII85, then
Flate) and the strings drawn with ``Tj`` are pulled out and decoded from the CID font's UTF-16BE.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import zlib
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal

import pytest

from yunrong.investing.agreement import (
    NO_UPFRONT_DEDUCTION,
    AgreementTerms,
    Borrower,
    CashFlow,
    Fee,
    Guarantee,
    Holding,
    Insurance,
    InvestorStatement,
    Lender,
    ScheduleRow,
    agreement_sha256,
    amount_in_words_zh,
    format_amount,
    outstanding_by,
    render_agreement,
    render_investor_statement,
    terms_as_dict,
    terms_from_dict,
)

CREATED = datetime(2025, 3, 14, 2, 30, tzinfo=UTC)


# --- a tiny PDF text reader (pypdf is not a dependency) ---------------------------------------------

_STREAM = re.compile(rb"<<(?P<dict>[^<>]*)>>\s*stream\r?\n(?P<data>.*?)\r?\n?endstream", re.DOTALL)
_ESCAPES = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("f"): 12}


def _literal_strings(content: bytes) -> list[bytes]:
    """Every ``( ... )`` literal string in a content stream, unescaped."""
    out: list[bytes] = []
    i = 0
    while (start := content.find(b"(", i)) != -1:
        buf = bytearray()
        depth, j = 1, start + 1
        while depth:
            c = content[j]
            if c == 0x5C:  # backslash
                nxt = content[j + 1]
                if 0x30 <= nxt <= 0x37:
                    octal = re.match(rb"[0-7]{1,3}", content[j + 1 : j + 4])
                    assert octal is not None
                    buf.append(int(octal.group(), 8) & 0xFF)
                    j += 1 + len(octal.group())
                    continue
                buf.append(_ESCAPES.get(nxt, nxt))
                j += 2
                continue
            if c == 0x28:
                depth += 1
            elif c == 0x29:
                depth -= 1
                if not depth:
                    break
            buf.append(c)
            j += 1
        out.append(bytes(buf))
        i = j + 1
    return out


def pdf_text(pdf: bytes) -> str:
    pieces: list[str] = []
    for match in _STREAM.finditer(pdf):
        head, data = match.group("dict"), match.group("data")
        if b"/Subtype" in head:  # font files and images carry no page text
            continue
        if b"ASCII85Decode" in head:
            data = base64.a85decode(data.strip().removeprefix(b"<~").removesuffix(b"~>"))
        if b"FlateDecode" in head:
            data = zlib.decompress(data)
        if b"BT" not in data:
            continue
        for raw in _literal_strings(data):
            pieces.append(raw.decode("utf-16-be") if len(raw) % 2 == 0 else raw.decode("latin-1"))
    return "\n".join(pieces)


def has(text: str, phrase: str) -> bool:
    """Whether the phrase is drawn, across line wraps (English wraps at a space, Chinese anywhere) and
    across the fragments a Paragraph draws escaped markup characters (&, <, >) in."""
    return phrase in text.replace("\n", " ") or phrase in text.replace("\n", "")


def page_count(pdf: bytes) -> int:
    return len(re.findall(rb"/Type /Page\b(?!s)", pdf))


# --- fixtures ---------------------------------------------------------------------------------------


def equal_principal_schedule(
    principal: int, rate: Decimal, months: int, first_due: date
) -> tuple[ScheduleRow, ...]:
    rows: list[ScheduleRow] = []
    balance = principal
    base, extra = divmod(principal, months)
    for n in range(1, months + 1):
        part = base + (1 if n <= extra else 0)
        interest = int((Decimal(balance) * rate / 12).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
        balance -= part
        month = first_due.month + n - 1
        due = date(first_due.year + (month - 1) // 12, (month - 1) % 12 + 1, first_due.day)
        rows.append(ScheduleRow(n, due, part, interest, part + interest, balance))
    return tuple(rows)


def p2p_terms() -> AgreementTerms:
    rate = Decimal("0.0850")
    principal = 300_000_00
    return AgreementTerms(
        loan_ref="LN-2025-000123",
        demand_ref="DM-2025-000077",
        product="p2p_loan",
        lender_kind="investors",
        borrower=Borrower(
            "杭州云杉精密机械有限公司", "91330106MA2B3C4D5E", "浙江省杭州市西湖区文三路 100 号"
        ),
        lenders=(
            Lender("王* (investor)", "NT-2025-000901", 150_000_00),
            Lender("Li & Partners <Fund>", "NT-2025-000902", 100_000_00),
            Lender("陈**", "NT-2025-000903", 50_000_00),
        ),
        custodian_bank="浙商银行 China Zheshang Bank",
        principal_minor=principal,
        currency="CNY",
        annual_rate=rate,
        apr=Decimal("0.1013"),
        fees=(
            Fee("Platform service fee", "平台服务费", 3_000_00, "云融 Yunrong"),
            Fee("Guarantee fee", "担保费", 2_400_00, "浙江中小企业融资担保有限公司"),
        ),
        repayment_method="equal_principal",
        term_months=12,
        schedule=equal_principal_schedule(principal, rate, 12, date(2025, 4, 14)),
        guarantee=Guarantee("浙江中小企业融资担保有限公司", 8_000),
        insurance=Insurance(
            "中国人保财险 PICC P&C", "履约保证保险，保额为未偿本金 Credit insurance, unpaid principal"
        ),
        collateral=("设备抵押：数控机床 3 台 Machine tools (3) pledged", "应收账款质押 Receivables pledged"),
        policy_key="cn-2016",
        policy_name_en="China 2016 interim measures for online lending intermediaries",
        policy_name_zh="网络借贷信息中介机构业务活动管理暂行办法（2016）",
        interest_cap_text="综合年化成本不超过合同成立时一年期 LPR 的四倍（3.10% × 4 = 12.40%）。\n"
        "The all-in annual cost does not exceed four times the one-year LPR at signing (12.40%).",
        penalty_text="逾期部分按日万分之五计收罚息。\nOverdue amounts bear penalty interest of 0.05% a day.",
        no_upfront_deduction_text=NO_UPFRONT_DEDUCTION,
        dispute_resolution_text="争议提交杭州仲裁委员会仲裁。\nDisputes: Hangzhou Arbitration Commission.",
        created_at=CREATED,
    )


def bank_terms() -> AgreementTerms:
    rate = Decimal("0.0435")
    principal = 1_000_000_00
    return replace(
        p2p_terms(),
        loan_ref="LN-2025-000456",
        product="bank_loan",
        lender_kind="bank",
        lenders=(Lender("中国工商银行杭州分行 ICBC Hangzhou", "BK-ICBC-HZ", principal),),
        principal_minor=principal,
        annual_rate=rate,
        apr=Decimal("0.0435"),
        fees=(),
        repayment_method="bullet",
        schedule=(ScheduleRow(1, date(2026, 3, 14), principal, 43_500_00, principal + 43_500_00, 0),),
        guarantee=None,
        insurance=None,
        collateral=(),
    )


def statement() -> InvestorStatement:
    return InvestorStatement(
        investor_name="王小明",
        investor_ref="INV-000042",
        currency="CNY",
        period_start=date(2025, 1, 1),
        period_end=date(2025, 3, 31),
        holdings=(
            Holding(
                "LN-2025-000123",
                "杭州云杉精密机械有限公司",
                "A",
                "制造业 Manufacturing",
                150_000_00,
                137_500_00,
                Decimal("0.085"),
                "active",
            ),
            Holding(
                "LN-2025-000124",
                "宁波海港物流有限公司",
                "BBB",
                "物流 Logistics",
                50_000_00,
                50_000_00,
                Decimal("0.096"),
                "active",
            ),
            Holding(
                "LN-2024-000981",
                "温州小商品贸易有限公司",
                "AA",
                "批发零售 Wholesale",
                20_000_00,
                0,
                Decimal("0.072"),
                "repaid",
            ),
        ),
        available_minor=12_345_67,
        held_minor=5_000_00,
        cash_flows=(
            CashFlow(date(2025, 1, 5), "deposit", 200_000_00),
            CashFlow(date(2025, 1, 10), "investment", -150_000_00),
            CashFlow(date(2025, 2, 14), "principal", 12_500_00),
            CashFlow(date(2025, 2, 14), "interest", 1_062_50),
        ),
        xirr=Decimal("0.0871"),
        generated_at=CREATED,
    )


# --- tests ------------------------------------------------------------------------------------------


def test_p2p_agreement_is_a_multi_page_pdf_stating_every_term() -> None:
    terms = p2p_terms()
    pdf = render_agreement(terms)
    assert pdf.startswith(b"%PDF-")
    assert pdf.rstrip().endswith(b"%%EOF")
    assert page_count(pdf) >= 2
    text = pdf_text(pdf)
    for expected in [
        "借款合同",
        "Loan Agreement",
        "LN-2025-000123",
        "DM-2025-000077",
        "杭州云杉精密机械有限公司",
        "91330106MA2B3C4D5E",
        "NT-2025-000901",
        "NT-2025-000902",
        "NT-2025-000903",
        "CNY 300,000.00",
        "人民币叁拾万元整",
        "8.50%",
        "10.13%",
        "平台服务费 Platform service fee",
        "CNY 3,000.00",
        "CNY 2,400.00",
        "80.00%",
        "Machine tools (3) pledged",
        "网络借贷信息中介机构业务活动管理暂行办法（2016）",
        "cn-2016",
        "12.40%",
        "0.05% a day",
        "Hangzhou Arbitration Commission",
        "No interest is deducted from the principal up front",
        "never passes through the platform's own account",
        "浙商银行 China Zheshang Bank",
        "recorded with the document's",
        "SHA-256",
    ]:
        assert has(text, expected), expected
    # markup characters in names are escaped, not parsed
    assert has(text, "Li & Partners <Fund>")
    assert has(text, "中国人保财险 PICC P&C")
    # the full schedule: every due date and the balance after each row
    for row in terms.schedule:
        assert row.due_date.isoformat() in text
        assert format_amount(row.payment, "CNY") in text
    assert len(terms.schedule) == 12
    total_interest = sum(r.interest for r in terms.schedule)
    assert format_amount(total_interest, "CNY") in text


def test_bank_agreement_names_the_bank_and_states_no_fee() -> None:
    pdf = render_agreement(bank_terms())
    text = pdf_text(pdf)
    assert pdf.startswith(b"%PDF-")
    assert has(text, "LN-2025-000456")
    assert has(text, "中国工商银行杭州分行 ICBC Hangzhou")
    assert has(text, "人民币壹佰万元整")
    assert has(text, "No fee is charged on this loan.")
    assert has(text, "No third party guarantees this loan.")
    assert has(text, "The loan is unsecured.")
    assert not has(text, "NT-2025-000901")


def test_agreement_bytes_are_deterministic() -> None:
    terms = p2p_terms()
    first, second = render_agreement(terms), render_agreement(terms)
    assert first == second
    assert agreement_sha256(first) == agreement_sha256(second)
    assert re.fullmatch(r"[0-9a-f]{64}", agreement_sha256(first))
    # the creation date is the terms', not the clock's
    assert b"D:20250314023000+00'00'" in first
    # a different term gives a different document
    changed = replace(terms, dispute_resolution_text="争议提交上海仲裁委员会仲裁。")
    assert agreement_sha256(render_agreement(changed)) != agreement_sha256(first)


def test_agreement_bytes_are_the_same_in_another_process() -> None:
    """A stored agreement is re-rendered later, elsewhere: hash seeds and fresh font state must not matter."""
    terms = p2p_terms()
    script = (
        "import json, sys\n"
        "from yunrong.investing.agreement import agreement_sha256, render_agreement, terms_from_dict\n"
        "print(agreement_sha256(render_agreement(terms_from_dict(json.loads(sys.stdin.read())))))\n"
    )
    payload = json.dumps(terms_as_dict(terms))
    for seed in ("1", "2"):
        result = subprocess.run(
            [sys.executable, "-c", script],
            input=payload,
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        assert result.stdout.strip() == agreement_sha256(render_agreement(terms))


def test_terms_round_trip_through_json() -> None:
    for terms in (p2p_terms(), bank_terms()):
        as_dict = terms_as_dict(terms)
        again = terms_from_dict(json.loads(json.dumps(as_dict)))
        assert again == terms
        assert isinstance(as_dict["annual_rate"], str)
        assert as_dict["created_at"] == "2025-03-14T02:30:00+00:00"
        assert render_agreement(again) == render_agreement(terms)


def test_inconsistent_terms_are_refused_with_every_problem() -> None:
    terms = p2p_terms()
    with pytest.raises(ValueError, match="lenders' principals do not add up"):
        replace(terms, lenders=terms.lenders[:2])
    with pytest.raises(ValueError, match="exactly one lender") as excinfo:
        replace(terms, lender_kind="bank", created_at=datetime(2025, 3, 14))
    assert "timezone-aware" in str(excinfo.value)
    broken = (*terms.schedule[:-1], replace(terms.schedule[-1], principal=terms.schedule[-1].principal - 1))
    with pytest.raises(ValueError, match="payment is not principal"):
        replace(terms, schedule=broken)
    with pytest.raises(ValueError, match="lender_kind"):
        replace(terms, lender_kind="crowd")


@pytest.mark.parametrize(
    ("minor", "words"),
    [
        (0, "人民币零元整"),
        (5, "人民币伍分"),
        (50, "人民币伍角整"),
        (1_05, "人民币壹元零伍分"),
        (10_00, "人民币壹拾元整"),
        (1_010_00, "人民币壹仟零壹拾元整"),
        (1_680_32, "人民币壹仟陆佰捌拾元叁角贰分"),
        (300_000_00, "人民币叁拾万元整"),
        (1_000_001_00, "人民币壹佰万零壹元整"),
        (10_005_000_00, "人民币壹仟万零伍仟元整"),
        (100_010_000_00, "人民币壹亿零壹万元整"),
        (100_000_000_00, "人民币壹亿元整"),
        (123_456_789_12, "人民币壹亿贰仟叁佰肆拾伍万陆仟柒佰捌拾玖元壹角贰分"),
    ],
)
def test_amount_in_chinese_uppercase(minor: int, words: str) -> None:
    assert amount_in_words_zh(minor) == words


def test_investor_statement_renders_holdings_cash_flows_xirr_and_charts() -> None:
    s = statement()
    pdf = render_investor_statement(s)
    assert pdf.startswith(b"%PDF-")
    text = pdf_text(pdf)
    for expected in [
        "王小明",
        "INV-000042",
        "2025-01-01",
        "2025-03-31",
        "LN-2025-000123",
        "宁波海港物流有限公司",
        "BBB",
        "137,500.00",
        "9.60%",
        "还款中 Repaying",
        "已结清 Repaid",
        "12,345.67",
        "5,000.00",
        "-150,000.00",
        "利息 Interest",
        "8.71%",
        "按等级 By grade (outstanding, CNY)",
        "按行业 By industry (outstanding, CNY)",
        "物流 Logistics",
    ]:
        assert has(text, expected), expected
    assert render_investor_statement(s) == pdf
    assert outstanding_by(s.holdings, lambda h: h.grade) == {"A": 137_500_00, "BBB": 50_000_00, "AA": 0}


def test_empty_statement_renders_without_charts() -> None:
    s = replace(statement(), holdings=(), cash_flows=(), xirr=None)
    text = pdf_text(render_investor_statement(s))
    assert has(text, "No holdings in this period.")
    assert has(text, "No cash flows in this period.")
    assert has(text, "not computable")


def test_statement_with_everything_repaid_draws_no_empty_chart() -> None:
    s = statement()
    repaid = tuple(replace(h, outstanding_minor=0, status="repaid") for h in s.holdings)
    text = pdf_text(render_investor_statement(replace(s, holdings=repaid)))
    assert has(text, "Nothing is outstanding.")
    assert not has(text, "By grade")
