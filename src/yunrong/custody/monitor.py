"""The regulator's live fund-flow monitor: escrow totals by account class, daily inflows and
outflows of the escrow, pending bank instructions, open alerts. Read-only."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yunrong.custody.accounts import PURPOSE_LABELS, Purpose
from yunrong.custody.model import InstructionStatus
from yunrong.custody.tables import Instruction
from yunrong.identity.model import Action, Context
from yunrong.identity.service import require
from yunrong.kit.clock import business_date
from yunrong.ledger import service as ledger
from yunrong.ledger.service import ACCOUNTS, ENTRIES, POSTINGS
from yunrong.supervision.tables import Alert


def fund_flows(session: Session, *, ctx: Context, timezone: str, days: int = 14) -> dict[str, Any]:
    require(ctx, Action.READ_FUND_FLOWS)
    today = business_date(ctx.now(), timezone)
    start = today - timedelta(days=days - 1)
    classes: list[dict[str, Any]] = []
    for (purpose, currency), bal in sorted(ledger.balances_by_purpose(session).items()):
        try:
            label_en, label_zh = PURPOSE_LABELS[Purpose(purpose)]
        except ValueError:
            label_en = label_zh = purpose
        classes.append(
            {
                "purpose": purpose,
                "currency": currency,
                "label_en": label_en,
                "label_zh": label_zh,
                "balance_minor": bal.posted,
                "pending_out_minor": bal.pending_out,
                "available_minor": bal.available,
            }
        )
    flows: dict[tuple[date, str], dict[str, int]] = defaultdict(lambda: {"in": 0, "out": 0})
    rows = session.execute(
        select(ENTRIES.c.value_date, POSTINGS.c.currency, POSTINGS.c.side, func.sum(POSTINGS.c.amount))
        .join(POSTINGS, POSTINGS.c.entry_id == ENTRIES.c.id)
        .join(ACCOUNTS, ACCOUNTS.c.id == POSTINGS.c.account_id)
        .where(ACCOUNTS.c.purpose == Purpose.ESCROW_CASH.value, ENTRIES.c.value_date >= start)
        .group_by(ENTRIES.c.value_date, POSTINGS.c.currency, POSTINGS.c.side)
    ).all()
    for value_date, currency, side, amount in rows:
        flows[(value_date, currency)]["in" if side == "D" else "out"] += int(amount or 0)
    currencies = sorted({str(c["currency"]) for c in classes} | {cur for _, cur in flows}) or ["CNY"]
    daily = [
        {
            "date": (start + timedelta(days=i)).isoformat(),
            "currency": cur,
            "inflow_minor": flows[(start + timedelta(days=i), cur)]["in"],
            "outflow_minor": flows[(start + timedelta(days=i), cur)]["out"],
        }
        for cur in currencies
        for i in range(days)
    ]
    pending = session.execute(
        select(Instruction.kind, Instruction.currency, func.count(), func.sum(Instruction.amount))
        .where(Instruction.status == InstructionStatus.PENDING.value)
        .group_by(Instruction.kind, Instruction.currency)
    ).all()
    alerts = session.execute(
        select(Alert.kind, func.count()).where(Alert.resolved_at.is_(None)).group_by(Alert.kind)
    ).all()
    return {
        "as_of": ctx.now().isoformat(),
        "business_date": today.isoformat(),
        "classes": classes,
        "daily": daily,
        "pending_instructions": [
            {"kind": k, "currency": c, "count": int(n), "amount_minor": int(a or 0)} for k, c, n, a in pending
        ],
        "open_alerts": {kind: int(n) for kind, n in alerts},
    }
