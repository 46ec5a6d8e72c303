"""Account statements with a running balance, as CSV and PDF (Chinese names render: the PDF uses
the Adobe-Asian STSong-Light font that PDF readers provide, so nothing is embedded or downloaded)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import datetime

from yunrong.kit.money import Money
from yunrong.ledger.service import StatementLine
from yunrong.ledger.tables import LedgerAccount


def _fmt(minor: int, currency: str) -> str:
    return f"{Money(minor, currency).decimal:.2f}"


def statement_csv(account: LedgerAccount, opening: int, lines: Sequence[StatementLine]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["account", account.code, account.name, account.currency])
    writer.writerow(["time_utc", "value_date", "entry", "kind", "description", "debit", "credit", "balance"])
    writer.writerow(["", "", "", "opening", "opening balance", "", "", _fmt(opening, account.currency)])
    for line in lines:
        writer.writerow(
            [
                line.at.isoformat(),
                line.value_date.isoformat(),
                line.entry_ref,
                line.kind,
                line.description,
                _fmt(line.debit, account.currency) if line.debit else "",
                _fmt(line.credit, account.currency) if line.credit else "",
                _fmt(line.running, account.currency),
            ]
        )
    closing = lines[-1].running if lines else opening
    writer.writerow(["", "", "", "closing", "closing balance", "", "", _fmt(closing, account.currency)])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")  # BOM: spreadsheets then read the Chinese right


def statement_pdf(
    account: LedgerAccount, opening: int, lines: Sequence[StatementLine], *, generated_at: datetime
) -> bytes:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    font = "STSong-Light"
    if font not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(font))
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=landscape(A4),
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=12 * mm,
        bottomMargin=12 * mm,
        title=f"Statement {account.code}",
        author="Yunrong 云融",
    )
    title = ParagraphStyle("title", fontName=font, fontSize=14, leading=18)
    small = ParagraphStyle("small", fontName=font, fontSize=8, leading=10)
    cur = account.currency
    rows: list[list[object]] = [
        [
            "时间 Time (UTC)",
            "起息日 Value date",
            "凭证 Entry",
            "摘要 Description",
            "借 Debit",
            "贷 Credit",
            "余额 Balance",
        ]
    ]
    rows.append(["", "", "", "期初余额 Opening balance", "", "", _fmt(opening, cur)])
    for line in lines:
        rows.append(
            [
                line.at.strftime("%Y-%m-%d %H:%M"),
                line.value_date.isoformat(),
                line.entry_ref,
                Paragraph(line.description, small),
                _fmt(line.debit, cur) if line.debit else "",
                _fmt(line.credit, cur) if line.credit else "",
                _fmt(line.running, cur),
            ]
        )
    closing = lines[-1].running if lines else opening
    rows.append(["", "", "", "期末余额 Closing balance", "", "", _fmt(closing, cur)])
    table = Table(
        rows, repeatRows=1, colWidths=[32 * mm, 24 * mm, 30 * mm, 95 * mm, 30 * mm, 30 * mm, 32 * mm]
    )
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), font),
                ("FONTSIZE", (0, 0), (-1, -1), 8),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#0f2a4a")),
                ("TEXTCOLOR", (0, 0), (-1, 0), colors.white),
                ("ALIGN", (4, 0), (-1, -1), "RIGHT"),
                ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f3f5f8")]),
                ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#c8d0da")),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ]
        )
    )
    story = [
        Paragraph("云融 Yunrong · 账户对账单 Account statement", title),
        Paragraph(f"{account.name} · {account.code} · {cur}", small),
        Paragraph(
            f"生成时间 Generated {generated_at:%Y-%m-%d %H:%M} UTC · 资金由存管银行托管 "
            "Funds are held by the custodian bank, never by the platform",
            small,
        ),
        Spacer(1, 6 * mm),
        table,
    ]
    doc.build(story)
    return buffer.getvalue()
