"""The one-year Loan Prime Rate table the operator maintains, and the interest cap it implies."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from yunrong.identity.model import Action, Context
from yunrong.identity.service import require
from yunrong.supervision import service as audit
from yunrong.supervision.policy import PolicyProfile, interest_cap
from yunrong.supervision.tables import LprRate

#: Published one-year LPR fixings (National Interbank Funding Center, authorised by the PBOC).
PUBLISHED_LPR: tuple[tuple[date, Decimal], ...] = (
    (date(2023, 8, 21), Decimal("3.45")),
    (date(2024, 7, 22), Decimal("3.35")),
    (date(2024, 10, 21), Decimal("3.10")),
    (date(2025, 5, 20), Decimal("3.00")),
)


def set_rate(session: Session, *, ctx: Context, effective_on: date, percent: Decimal, source: str) -> LprRate:
    require(ctx, Action.SET_LPR)
    row = session.get(LprRate, effective_on)
    before = {"percent": str(row.one_year_percent)} if row else None
    if row is None:
        row = LprRate(
            effective_on=effective_on,
            one_year_percent=percent,
            source=source,
            recorded_by=ctx.actor.email,
            recorded_at=ctx.now(),
        )
        session.add(row)
    else:
        row.one_year_percent = percent
        row.source = source
        row.recorded_by = ctx.actor.email
        row.recorded_at = ctx.now()
    session.flush()
    audit.record(
        session,
        ctx=ctx,
        action="lpr.set",
        object_type="lpr_rate",
        object_id=effective_on.isoformat(),
        before=before,
        after={"percent": str(percent), "source": source},
    )
    return row


def list_rates(session: Session) -> list[LprRate]:
    return list(session.scalars(select(LprRate).order_by(LprRate.effective_on.desc())).all())


def rate_on(session: Session, on: date) -> Decimal | None:
    """The one-year LPR in force on a date (the latest fixing on or before it)."""
    value = session.scalar(
        select(LprRate.one_year_percent)
        .where(LprRate.effective_on <= on)
        .order_by(LprRate.effective_on.desc())
        .limit(1)
    )
    return Decimal(value) if value is not None else None


def cap_on(session: Session, policy: PolicyProfile, on: date) -> Decimal | None:
    """The all-in annual interest cap in percent on a date, or None where the profile sets none."""
    if policy.lpr_multiple_cap is None:
        return None
    return interest_cap(policy, rate_on(session, on))


def seed_published(session: Session, *, ctx: Context) -> int:
    created = 0
    for effective_on, percent in PUBLISHED_LPR:
        if session.get(LprRate, effective_on) is None:
            set_rate(
                session,
                ctx=ctx,
                effective_on=effective_on,
                percent=percent,
                source="NIFC one-year LPR announcement",
            )
            created += 1
    return created
