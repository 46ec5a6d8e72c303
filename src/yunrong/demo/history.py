"""Two years of monthly books for the demo enterprises, sent through the data feed.

Synthetic, like everything in the demo: revenue follows the enterprise's declared annual revenue
with a seasonal swing, costs and balance-sheet items keep healthy, plausible ratios, taxes and
utility bills are paid on time. The operator's data feed records them (provenance ``data_feed``),
so the credit engine decides on a real-looking file instead of an empty one.
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy.orm import Session

from yunrong.identity.model import Context
from yunrong.kit.clock import business_date
from yunrong.parties.tables import Enterprise
from yunrong.verification import imports

MONTHS = 24


def _yuan(minor: int) -> str:
    return f"{Decimal(minor) / 100:.2f}"


def _month_end(first: date) -> date:
    return (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def feed_history(session: Session, *, ctx: Context, enterprise: Enterprise, timezone: str) -> int:
    """Feed ``MONTHS`` months ending last month. Returns how many rows were sent."""
    today = business_date(ctx.now(), timezone)
    start = today.replace(day=1)
    months: list[date] = []
    for _ in range(MONTHS):
        start = (start - timedelta(days=1)).replace(day=1)
        months.append(start)
    months.reverse()
    monthly = enterprise.annual_revenue_minor // 12
    assets = enterprise.total_assets_minor
    income, balance, tax, utility = [], [], [], []
    for i, first in enumerate(months):
        end = _month_end(first)
        swing = 1 + 0.12 * math.sin(2 * math.pi * (first.month - 3) / 12) + 0.004 * i
        revenue = int(monthly * swing)
        cost = int(revenue * 0.74)
        operating = revenue - cost - int(revenue * 0.12)
        interest = int(revenue * 0.01)
        income_tax = max(0, int((operating - interest) * 0.05))
        income.append(
            {
                "period_start": first.isoformat(),
                "period_end": end.isoformat(),
                "revenue": _yuan(revenue),
                "cost_of_sales": _yuan(cost),
                "operating_profit": _yuan(operating),
                "interest_expense": _yuan(interest),
                "income_tax": _yuan(income_tax),
                "net_profit": _yuan(operating - interest - income_tax),
            }
        )
        current_assets = int(assets * 0.55)
        liabilities = int(assets * 0.42)
        balance.append(
            {
                "period_end": end.isoformat(),
                "cash": _yuan(int(assets * 0.14)),
                "accounts_receivable": _yuan(int(assets * 0.22)),
                "inventory": _yuan(int(assets * 0.16)),
                "current_assets": _yuan(current_assets),
                "total_assets": _yuan(assets),
                "current_liabilities": _yuan(int(assets * 0.30)),
                "total_liabilities": _yuan(liabilities),
                "equity": _yuan(assets - liabilities),
            }
        )
        vat = int(revenue * 0.03)
        paid = (end + timedelta(days=12)).isoformat()
        tax.append(
            {
                "period": first.strftime("%Y-%m"),
                "tax_type": "vat",
                "amount_due": _yuan(vat),
                "amount_paid": _yuan(vat),
                "paid_on": paid,
            }
        )
        bill = int(revenue * 0.015)
        utility.append(
            {
                "period": first.strftime("%Y-%m"),
                "utility": "electricity",
                "amount_billed": _yuan(bill),
                "amount_paid": _yuan(bill),
                "paid_on": paid,
                "days_overdue": 0,
            }
        )
    sent = 0
    for kind, rows in (
        ("income_statement", income),
        ("balance_sheet", balance),
        ("tax_payments", tax),
        ("utility_payments", utility),
    ):
        imports.feed(
            session,
            ctx=ctx,
            enterprise_id=enterprise.organisation_id,
            kind=kind,
            rows=rows,
            timezone=timezone,
        )
        sent += len(rows)
    return sent
