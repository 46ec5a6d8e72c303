"""The end of day: one business date closed at a time, set-based, restartable and idempotent.

``run_eod`` closes one business date in six steps, each in its own transaction and recorded in
``eod_runs.steps_done`` in that same transaction, so a crash between or inside steps leaves either
the whole step or none of it, and a re-run resumes with the first step not done:

1. **accrue** — one ``loan_daily_accruals`` row per active loan (one ``INSERT … SELECT``, ``ON
   CONFLICT DO NOTHING``), then one ``UPDATE`` of ``loan_servicing`` from the rows of the date;
2. **due** — instalments whose due date has come become ``due``; ``next_due_date`` moves on;
3. **delinquency** — days past due, bucket, state and IFRS 9 stage, set-based;
4. **ledger** — one entry per currency for the day's interest and penalty: debit the loan book,
   credit the note holders' claims (``external_ref`` ``EOD-<date>-<currency>``, checked first);
5. **notices** — payment reminders and overdue notices to the enterprise, one per instalment;
6. **close** — the run is closed with its totals.

Dates cannot be skipped: a date runs only if it is the day after the last closed one (the first
date ever run may be any date not in the future). A date already closed is a no-op.

Interest (the one rounding rule: half to even, to the fen). For the instalment whose period
``[period_start, due_date)`` contains the date, the interest accrued in the period up to (excluding)
day *x* is ``T(x) = round(B × rate_bp × e(x) / (10 000 × Y))``, where *e* counts the days from the
period start by the loan's day count (actual days for ACT/365F and ACT/360, ISDA 30/360 days for
30/360), *Y* is 365 (ACT/365F) or 360, and *B* is the principal outstanding less the unpaid
principal of instalments already due (that principal bears penalty instead). A date *d* accrues
``T(d + 1) − T(last_accrual_date)``: the exact cumulative amount less what the previous days already
took, so daily roundings never drift. On the period's last day it accrues ``interest_due − T(…)``
instead: the period's accruals sum exactly to the schedule's contractual ``interest_due`` (and when
the balance did not change, every day's figure equals ``T(d + 1) − T(d)``).

``loan_servicing.last_accrual_date`` means *interest accrued up to, excluding, this date*: the
servicing row starts with the loan's start date (nothing accrued yet) and the end of day of *d*
moves it to *d + 1*. The accrual step only touches loans with ``last_accrual_date <= d``, so it is
idempotent on its own too, and a loan paid out on a date already closed catches up its first days
at the next end of day.

Penalty, on each instalment still unpaid at the end of its due date (principal and interest due
less paid), at ``penalty_rate_bp`` (the contract rate plus the surcharge, capped at activation by
the policy's all-in cap), by actual days over *Y*, with the same cumulative rule: after *n* nights
overdue an instalment has accrued ``round(U × penalty_bp × n / (10 000 × Y))``. The first night is
the night of its due date.

Delinquency: days past due is the date less the oldest unpaid due instalment's due date; buckets
``current``, ``1-30``, ``31-60``, ``61-90``, ``90+`` (more than 90 days); state ``performing`` (0),
``delinquent`` (1–90), ``non_performing`` (more than 90); ``defaulted`` is kept (set by the defaults
process). IFRS 9 stage: 3 when defaulted or more than 90 days past due; 2 when more than 30 days
past due or the loan was restructured (forbearance: a significant increase in credit risk); else 1.
All computed from the day's figures, so a loan brought up to date is cured the same night.

Limits: SQL integers are 64-bit; ``B × rate_bp × days`` must stay below 9.2 × 10¹⁸ (at 24 % over a
92-day quarter: a balance below 4 × 10¹² fen, forty billion yuan).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Date,
    Integer,
    Table,
    and_,
    case,
    exists,
    extract,
    func,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from yunrong.config import Settings
from yunrong.custody import accounts
from yunrong.db import is_postgres, unit_of_work
from yunrong.identity.model import Context
from yunrong.identity.tables import User
from yunrong.investing.tables import Loan
from yunrong.kit.clock import Clock
from yunrong.kit.clock import business_date as business_date_of
from yunrong.kit.errors import Conflict, InvalidInput
from yunrong.kit.ids import uuid7
from yunrong.kit.money import Money
from yunrong.ledger import service as ledger
from yunrong.ledger.model import transfer
from yunrong.ledger.tables import JournalEntry
from yunrong.messaging.model import EventStatus
from yunrong.messaging.service import Message
from yunrong.messaging.tables import Notification, OutboxEvent
from yunrong.servicing.tables import DailyAccrual, EodRun, Instalment, LoanServicing, Restructuring
from yunrong.supervision import service as audit

STEPS: tuple[str, ...] = ("accrue", "due", "delinquency", "ledger", "notices", "close")

#: Payment reminders go this many days before a due date (once per instalment).
REMINDER_DAYS = 3
#: Overdue notices go on these days past due.
OVERDUE_NOTICE_DAYS: tuple[int, ...] = (1, 7, 30)
#: Most dates the scheduled job catches up in one run.
JOB_MAX_DATES = 31

INACTIVE_STATES = ("closed", "written_off")

LS = cast(Table, LoanServicing.__table__)
INS = cast(Table, Instalment.__table__)
ACC = cast(Table, DailyAccrual.__table__)
RES = cast(Table, Restructuring.__table__)
LOANS = cast(Table, Loan.__table__)
NOTIFICATIONS = cast(Table, Notification.__table__)
OUTBOX = cast(Table, OutboxEvent.__table__)


class EodRefused(Conflict):
    code = "eod-refused"
    title = "End of day refused"


class BusinessDateSkipped(EodRefused):
    code = "eod-date-skipped"


class BusinessDateClosed(EodRefused):
    code = "eod-date-closed"


class BusinessDateInFuture(InvalidInput):
    code = "eod-date-in-future"
    title = "End of day refused"


@dataclass(frozen=True)
class EodResult:
    business_date: date
    status: str  # running | closed
    steps_done: tuple[str, ...]
    totals: dict[str, Any] = field(default_factory=dict)
    #: The date was closed before this call: nothing was done.
    already_closed: bool = False


#: Called after each step that ran: (step, its counts, seconds).
StepListener = Callable[[str, dict[str, Any], float], None]


# --- SQL helpers that differ between PostgreSQL and SQLite ----------------------------------------


class _Sql:
    def __init__(self, session: Session) -> None:
        self.pg = is_postgres(session)

    def days(self, start: Any, end: Any) -> ColumnElement[int]:
        """``end − start`` in days (both dates or date expressions)."""
        if self.pg:
            return sql_cast(end - start, Integer)
        return sql_cast(func.round(func.julianday(end) - func.julianday(start)), Integer)

    def days_30_360(self, start: Any, end: Any) -> ColumnElement[int]:
        """ISDA 30/360 days from ``start`` to ``end`` (as `yunrong.servicing.daycount.days_30_360`)."""

        def part(field_: str, value: Any) -> Any:
            if isinstance(value, date):
                return getattr(value, field_)
            return sql_cast(extract(field_, value), Integer)

        d1_raw = part("day", start)
        d1 = case((d1_raw > 30, 30), else_=d1_raw)
        d2_raw = part("day", end)
        d2 = case((and_(d2_raw == 31, d1 == 30), 30), else_=d2_raw)
        return cast(
            ColumnElement[int],
            360 * (part("year", end) - part("year", start))
            + 30 * (part("month", end) - part("month", start))
            + (d2 - d1),
        )


def _round_half_even(n: Any, d: Any) -> ColumnElement[int]:
    """``n / d`` rounded half to even, for integers ``n >= 0`` and ``d > 0`` (SQL integer division)."""
    q = n // d
    r = n - q * d
    return cast(ColumnElement[int], q + case((2 * r > d, 1), (2 * r == d, q % 2), else_=0))


def _not_negative(x: Any) -> ColumnElement[int]:
    return case((x > 0, x), else_=0)


def _active() -> ColumnElement[bool]:
    return LS.c.state.not_in(INACTIVE_STATES)


def _unpaid(t: Any) -> Any:
    return (t.c.principal_due - t.c.principal_paid) + (t.c.interest_due - t.c.interest_paid)


def _dialect_insert(session: Session) -> Any:
    return pg_insert if is_postgres(session) else sqlite_insert


# --- the steps -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Step:
    session: Session
    ctx: Context
    settings: Settings
    day: date

    @property
    def d(self) -> ColumnElement[date]:
        return literal(self.day, Date)

    @property
    def next_day(self) -> ColumnElement[date]:
        return literal(self.day + timedelta(days=1), Date)


def _accrue(step: _Step) -> dict[str, Any]:
    session, sql = step.session, _Sql(step.session)
    accrued_to = func.coalesce(LS.c.last_accrual_date, LS.c.start_date)
    year = case((LS.c.day_count == "act/365f", 365), else_=360)
    denominator = 10_000 * year

    # Overdue instalments, per loan: unpaid principal, penalty of the night(s), days past due.
    od_i = INS.alias("od_i")
    unpaid = _unpaid(od_i)
    nights_to = sql.days(od_i.c.due_date, step.d) + 1
    nights_from = case((accrued_to > od_i.c.due_date, sql.days(od_i.c.due_date, accrued_to)), else_=0)
    per_year = unpaid * LS.c.penalty_rate_bp
    penalty = _round_half_even(per_year * nights_to, denominator) - _round_half_even(
        per_year * nights_from, denominator
    )
    overdue = (
        select(
            od_i.c.loan_id.label("loan_id"),
            # SUM of bigint is numeric on PostgreSQL: back to integers, or `//` stops being integral.
            sql_cast(func.sum(penalty), BigInteger).label("penalty"),
            func.max(sql.days(od_i.c.due_date, step.d)).label("dpd"),
            sql_cast(func.sum(od_i.c.principal_due - od_i.c.principal_paid), BigInteger).label("principal"),
        )
        .select_from(
            od_i.join(LS, and_(LS.c.loan_id == od_i.c.loan_id, LS.c.schedule_version == od_i.c.version))
        )
        .where(
            od_i.c.due_date <= step.d,
            od_i.c.status.in_(("scheduled", "due")),
            unpaid > 0,
            _active(),
            accrued_to <= step.d,
        )
        .group_by(od_i.c.loan_id)
        .subquery("od")
    )

    # The instalment whose period contains the date, and the interest of the night(s).
    cur = INS.alias("cur")
    balance = _not_negative(LS.c.principal_outstanding - func.coalesce(overdue.c.principal, 0))
    from_day = case((accrued_to > cur.c.period_start, accrued_to), else_=cur.c.period_start)
    thirty = LS.c.day_count == "30/360"
    elapsed_to = case(
        (thirty, sql.days_30_360(cur.c.period_start, step.day + timedelta(days=1))),
        else_=sql.days(cur.c.period_start, step.next_day),
    )
    elapsed_from = case(
        (thirty, sql.days_30_360(cur.c.period_start, from_day)),
        else_=sql.days(cur.c.period_start, from_day),
    )
    per_year_interest = balance * LS.c.annual_rate_bp
    to_date = _round_half_even(per_year_interest * elapsed_to, denominator)
    before = _round_half_even(per_year_interest * elapsed_from, denominator)
    interest = case(
        (cur.c.id.is_(None), 0),
        (cur.c.due_date == step.next_day, _not_negative(cur.c.interest_due - before)),
        else_=to_date - before,
    )
    rows = (
        select(
            LS.c.loan_id,
            step.d,
            interest,
            func.coalesce(overdue.c.penalty, 0),
            func.coalesce(overdue.c.dpd, 0),
        )
        .select_from(
            LS.outerjoin(
                cur,
                and_(
                    cur.c.loan_id == LS.c.loan_id,
                    cur.c.version == LS.c.schedule_version,
                    cur.c.period_start <= step.d,
                    cur.c.due_date > step.d,
                    cur.c.status != "superseded",
                ),
            ).outerjoin(overdue, overdue.c.loan_id == LS.c.loan_id)
        )
        .where(_active(), accrued_to <= step.d)
    )
    inserted = session.execute(
        _dialect_insert(session)(ACC)
        .from_select(["loan_id", "business_date", "interest", "penalty", "days_past_due"], rows)
        .on_conflict_do_nothing(index_elements=["loan_id", "business_date"])
        .execution_options(preserve_rowcount=True)
    )
    if sql.pg:  # the planner must know the day's rows are the whole book (a hash join, not 10⁶ probes)
        session.execute(text("ANALYZE loan_daily_accruals"))
    updated = session.execute(
        update(LS)
        .where(ACC.c.loan_id == LS.c.loan_id, ACC.c.business_date == step.d, accrued_to <= step.d)
        .values(
            interest_accrued=LS.c.interest_accrued + ACC.c.interest,
            penalty_accrued=LS.c.penalty_accrued + ACC.c.penalty,
            last_accrual_date=step.next_day,
            updated_at=step.ctx.now(),
        )
        .execution_options(synchronize_session=False)
    )
    return {
        "loans_accrued": int(inserted.rowcount),  # type: ignore[attr-defined]
        "loans_updated": int(updated.rowcount),  # type: ignore[attr-defined]
    }


def _day_sums(session: Session, day: date) -> list[tuple[str, int, int]]:
    rows = session.execute(
        select(LS.c.currency, func.sum(ACC.c.interest), func.sum(ACC.c.penalty))
        .select_from(ACC.join(LS, LS.c.loan_id == ACC.c.loan_id))
        .where(ACC.c.business_date == day)
        .group_by(LS.c.currency)
        .order_by(LS.c.currency)
    ).all()
    return [(str(c), int(i or 0), int(p or 0)) for c, i, p in rows]


def _due(step: _Step) -> dict[str, Any]:
    session = step.session
    current_schedule = exists().where(
        LS.c.loan_id == INS.c.loan_id, LS.c.schedule_version == INS.c.version, _active()
    )
    became_due = session.execute(
        update(INS)
        .where(INS.c.status == "scheduled", INS.c.due_date <= step.d, current_schedule)
        .values(status="due")
        .execution_options(synchronize_session=False)
    )
    following = (
        select(func.min(INS.c.due_date))
        .where(
            INS.c.loan_id == LS.c.loan_id,
            INS.c.version == LS.c.schedule_version,
            INS.c.due_date > step.d,
            INS.c.status != "superseded",
        )
        .scalar_subquery()
    )
    moved = session.execute(
        update(LS)
        .where(_active(), LS.c.next_due_date <= step.d)
        .values(next_due_date=following, updated_at=step.ctx.now())
        .execution_options(synchronize_session=False)
    )
    # Money the enterprise paid ahead (held in the loan's collection account) settles what fell due.
    from yunrong.servicing.repayments import apply_overpayment

    held = session.scalars(
        select(LS.c.loan_id).where(_active(), LS.c.overpayment > 0).order_by(LS.c.loan_id)
    ).all()
    used = sum(
        1
        for loan_id in held
        if apply_overpayment(session, ctx=step.ctx, loan_id=loan_id, value_date=step.day) is not None
    )
    return {
        "instalments_due": int(became_due.rowcount),  # type: ignore[attr-defined]
        "next_due_moved": int(moved.rowcount),  # type: ignore[attr-defined]
        "overpayments_used": used,
    }


def _bucket(dpd: Any) -> ColumnElement[str]:
    return case(
        (dpd <= 0, "current"),
        (dpd <= 30, "1-30"),
        (dpd <= 60, "31-60"),
        (dpd <= 90, "61-90"),
        else_="90+",
    )


def _delinquency(step: _Step) -> dict[str, Any]:
    session, sql = step.session, _Sql(step.session)
    restructured = LS.c.loan_id.in_(select(RES.c.loan_id).where(RES.c.status == "applied"))
    defaulted = LS.c.state == "defaulted"
    oldest = (
        select(INS.c.loan_id.label("loan_id"), func.min(INS.c.due_date).label("oldest"))
        .select_from(
            INS.join(LS, and_(LS.c.loan_id == INS.c.loan_id, LS.c.schedule_version == INS.c.version))
        )
        .where(INS.c.status == "due", INS.c.due_date < step.d, _unpaid(INS) > 0, _active())
        .group_by(INS.c.loan_id)
        .subquery("oldest")
    )
    dpd = sql.days(oldest.c.oldest, step.d)
    late = session.execute(
        update(LS)
        .where(LS.c.loan_id == oldest.c.loan_id)
        .values(
            days_past_due=dpd,
            bucket=_bucket(dpd),
            state=case((defaulted, "defaulted"), (dpd > 90, "non_performing"), else_="delinquent"),
            ifrs9_stage=case((or_(defaulted, dpd > 90), 3), (or_(dpd > 30, restructured), 2), else_=1),
            updated_at=step.ctx.now(),
        )
        .execution_options(synchronize_session=False)
    )
    overdue_left = exists().where(
        INS.c.loan_id == LS.c.loan_id,
        INS.c.version == LS.c.schedule_version,
        INS.c.status == "due",
        INS.c.due_date < step.d,
        _unpaid(INS) > 0,
    )
    stage = case((defaulted, 3), (restructured, 2), else_=1)
    current = session.execute(
        update(LS)
        .where(
            _active(),
            or_(
                LS.c.days_past_due != 0,
                LS.c.bucket != "current",
                LS.c.state.in_(("delinquent", "non_performing")),
                LS.c.ifrs9_stage != stage,
            ),
            ~overdue_left,
        )
        .values(
            days_past_due=0,
            bucket="current",
            state=case((defaulted, "defaulted"), else_="performing"),
            ifrs9_stage=stage,
            updated_at=step.ctx.now(),
        )
        .execution_options(synchronize_session=False)
    )
    return {
        "loans_past_due": int(late.rowcount),  # type: ignore[attr-defined]
        "loans_current_again": int(current.rowcount),  # type: ignore[attr-defined]
    }


def _ledger(step: _Step) -> dict[str, Any]:
    session, ctx = step.session, step.ctx
    posted = 0
    interest_by: dict[str, int] = {}
    penalty_by: dict[str, int] = {}
    for currency, interest, penalty in _day_sums(session, step.day):
        interest_by[currency], penalty_by[currency] = interest, penalty
        amount = interest + penalty
        ref = f"EOD-{step.day.isoformat()}-{currency}"
        if amount <= 0:
            continue
        if session.scalar(select(JournalEntry.id).where(JournalEntry.external_ref == ref)) is not None:
            continue  # booked by an earlier attempt that committed: never twice
        ledger.post(
            session,
            ctx=ctx,
            drafts=[
                ledger.EntryDraft(
                    legs=transfer(  # the borrowers owe more, the note holders are owed more
                        accounts.loan_book(session, ctx, currency).id,
                        accounts.investor_claims(session, ctx, currency).id,
                        amount,
                        currency,
                    ),
                    kind="eod_accrual",
                    description=(
                        f"end of day {step.day.isoformat()}: interest {Money(interest, currency)}, "
                        f"penalty {Money(penalty, currency)} accrued"
                    ),
                    value_date=step.day,
                    external_ref=ref,
                )
            ],
            timezone=step.settings.timezone,
        )
        posted += 1
    return {"ledger_entries": posted, "interest_minor": interest_by, "penalty_minor": penalty_by}


@dataclass(frozen=True)
class _Notice:
    organisation_id: uuid.UUID
    message: Message


def notify_many(session: Session, *, ctx: Context, notices: Sequence[_Notice]) -> int:
    """Many messages at once, each as `yunrong.messaging.service.notify_organisation` sends one: an
    in-app message to every active user of the organisation and an e-mail each through the outbox
    (sent only if this transaction commits). Set-based: one query for the users, two bulk inserts."""
    if not notices:
        return 0
    users: dict[uuid.UUID, list[tuple[uuid.UUID, str]]] = {}
    org_ids = sorted({n.organisation_id for n in notices})
    for start in range(0, len(org_ids), 5_000):
        chunk = org_ids[start : start + 5_000]
        for user_id, org_id, email in session.execute(
            select(User.id, User.organisation_id, User.email)
            .where(User.organisation_id.in_(chunk), User.is_active.is_(True))
            .order_by(User.id)
        ):
            users.setdefault(org_id, []).append((user_id, email))
    now = ctx.now()
    notes: list[dict[str, Any]] = []
    mails: list[dict[str, Any]] = []
    for notice in notices:
        m = notice.message
        for user_id, email in users.get(notice.organisation_id, []):
            notes.append(
                {
                    "id": uuid7(),
                    "user_id": user_id,
                    "organisation_id": notice.organisation_id,
                    "kind": m.kind,
                    "subject_en": m.subject_en,
                    "subject_zh": m.subject_zh,
                    "body_en": m.body_en,
                    "body_zh": m.body_zh,
                    "link": m.link,
                    "created_at": now,
                    "read_at": None,
                }
            )
            mails.append(
                {
                    "id": uuid7(),
                    "topic": "email.send",
                    "payload": {
                        "to": email,
                        "subject": f"{m.subject_zh} / {m.subject_en}",
                        "body": f"{m.body_zh}\n\n{m.body_en}\n",
                    },
                    "status": EventStatus.PENDING.value,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
            )
    if notes:
        session.execute(NOTIFICATIONS.insert(), notes)
        session.execute(OUTBOX.insert(), mails)
    return len(notes)


def _reminder(ref: str, loan_id: uuid.UUID, number: int, due: date, amount: Money) -> Message:
    return Message(
        kind="loan.payment_reminder",
        subject_en=f"Loan {ref}: instalment {number} of {amount} is due on {due.isoformat()}",
        subject_zh=f"借款 {ref}：第 {number} 期 {amount} 将于 {due.isoformat()} 到期",
        body_en=(
            f"Please pay {amount} into the loan's collection account at the custodian by "
            f"{due.isoformat()}. Late payments bear penalty interest."
        ),
        body_zh=f"请于 {due.isoformat()} 前将 {amount} 存入该借款在存管银行的还款账户。逾期将计收罚息。",
        link=f"/enterprise/loans/{loan_id}",
    )


def _overdue(ref: str, loan_id: uuid.UUID, number: int, due: date, days: int, unpaid: Money) -> Message:
    return Message(
        kind="loan.overdue",
        subject_en=(
            f"Loan {ref}: instalment {number} (due {due.isoformat()}) is {days} "
            f"day{'s' if days > 1 else ''} overdue"
        ),
        subject_zh=f"借款 {ref}：第 {number} 期（{due.isoformat()} 到期）已逾期 {days} 天",
        body_en=(
            f"{unpaid} of the instalment due on {due.isoformat()} is unpaid. Penalty interest accrues "
            "every day until it is paid; please pay into the loan's collection account."
        ),
        body_zh=f"{due.isoformat()} 到期的该期尚有 {unpaid} 未还，罚息按日计收直至还清，请尽快存入还款账户。",
        link=f"/enterprise/loans/{loan_id}",
    )


def _notices(step: _Step) -> dict[str, Any]:
    session = step.session
    base = (
        select(
            INS.c.id,
            INS.c.loan_id,
            INS.c.number,
            INS.c.due_date,
            _unpaid(INS).label("unpaid"),
            LOANS.c.ref,
            LOANS.c.enterprise_org_id,
            LS.c.currency,
        )
        .select_from(
            INS.join(LS, and_(LS.c.loan_id == INS.c.loan_id, LS.c.schedule_version == INS.c.version)).join(
                LOANS, LOANS.c.id == INS.c.loan_id
            )
        )
        .where(_active())
        .order_by(INS.c.due_date, LOANS.c.ref, INS.c.number)
    )
    notices: list[_Notice] = []
    horizon = step.day + timedelta(days=REMINDER_DAYS)
    to_remind = (
        INS.c.status == "scheduled",
        INS.c.reminded.is_(False),
        INS.c.due_date > step.d,
        INS.c.due_date <= literal(horizon, Date),
        _unpaid(INS) > 0,
    )
    for row in session.execute(base.where(*to_remind)):
        message = _reminder(row.ref, row.loan_id, row.number, row.due_date, Money(row.unpaid, row.currency))
        notices.append(_Notice(row.enterprise_org_id, message))
    reminders = len(notices)
    current_schedule = exists().where(
        LS.c.loan_id == INS.c.loan_id, LS.c.schedule_version == INS.c.version, _active()
    )
    session.execute(  # the same instalments, set-based, in the same transaction
        update(INS)
        .where(current_schedule, *to_remind)
        .values(reminded=True)
        .execution_options(synchronize_session=False)
    )
    overdue_dates = [step.day - timedelta(days=k) for k in OVERDUE_NOTICE_DAYS]
    late: list[_Notice] = []
    for row in session.execute(
        base.where(INS.c.status == "due", INS.c.due_date.in_(overdue_dates), _unpaid(INS) > 0)
    ):
        days = (step.day - row.due_date).days
        message = _overdue(
            row.ref, row.loan_id, row.number, row.due_date, days, Money(row.unpaid, row.currency)
        )
        late.append(_Notice(row.enterprise_org_id, message))
    # An overdue notice is keyed by its subject (loan, instalment, due date, days): never twice.
    sent: set[tuple[uuid.UUID, str]] = set()
    for start in range(0, len(late), 5_000):
        chunk = late[start : start + 5_000]
        sent.update(
            (org_id, subject)
            for org_id, subject in session.execute(
                select(NOTIFICATIONS.c.organisation_id, NOTIFICATIONS.c.subject_en).where(
                    NOTIFICATIONS.c.kind == "loan.overdue",
                    NOTIFICATIONS.c.subject_en.in_([n.message.subject_en for n in chunk]),
                )
            )
        )
    late = [n for n in late if (n.organisation_id, n.message.subject_en) not in sent]
    notices.extend(late)
    overdue = len(late)
    messages = notify_many(session, ctx=step.ctx, notices=notices)
    return {"reminders": reminders, "overdue_notices": overdue, "messages": messages}


def _close(step: _Step) -> dict[str, Any]:
    session = step.session

    def counts(column: Any) -> dict[str, int]:
        rows = session.execute(
            select(column, func.count()).where(_active()).group_by(column).order_by(column)
        ).all()
        return {str(k): int(n) for k, n in rows}

    return {"buckets": counts(LS.c.bucket), "stages": counts(LS.c.ifrs9_stage), "states": counts(LS.c.state)}


StepFn = Callable[[_Step], dict[str, Any]]

#: The steps, looked up at run time (tests replace one to inject a crash inside it).
STEP_FUNCTIONS: dict[str, StepFn] = {
    "accrue": _accrue,
    "due": _due,
    "delinquency": _delinquency,
    "ledger": _ledger,
    "notices": _notices,
    "close": _close,
}


# --- the run -------------------------------------------------------------------------------------


def _result(row: EodRun, *, already_closed: bool = False) -> EodResult:
    return EodResult(
        business_date=row.business_date,
        status=row.status,
        steps_done=tuple(row.steps_done),
        totals=dict(row.totals),
        already_closed=already_closed,
    )


def last_closed_date(session: Session) -> date | None:
    return session.scalar(select(func.max(EodRun.business_date)).where(EodRun.status == "closed"))


def running_date(session: Session) -> date | None:
    return session.scalar(select(func.min(EodRun.business_date)).where(EodRun.status == "running"))


def next_date(session: Session) -> date | None:
    """The only date an end of day may run for next (None: nothing ran yet, any date may)."""
    running = running_date(session)
    if running is not None:
        return running
    last = last_closed_date(session)
    return None if last is None else last + timedelta(days=1)


def _lock_run(session: Session, day: date) -> EodRun | None:
    query = select(EodRun).where(EodRun.business_date == day)
    if is_postgres(session):
        query = query.with_for_update()
    return session.scalars(query.execution_options(populate_existing=True)).one_or_none()


def _open(
    factory: sessionmaker[Session], *, day: date, settings: Settings, clock: Clock, ctx: Context
) -> EodResult:
    with unit_of_work(factory) as session:
        if is_postgres(session):  # one opener at a time decides which date is next
            session.execute(text("LOCK TABLE eod_runs IN SHARE ROW EXCLUSIVE MODE"))
        row = _lock_run(session, day)
        if row is not None and row.status == "closed":
            return _result(row, already_closed=True)
        today = business_date_of(clock.now(), settings.timezone)
        if day > today:
            raise BusinessDateInFuture(
                f"{day.isoformat()} is in the future (today is {today.isoformat()}); "
                f"nothing booked / {day.isoformat()} 尚未到来（今天是 {today.isoformat()}），未记账"
            )
        if row is None:
            expected = next_date(session)
            if expected is not None and day != expected:
                raise BusinessDateSkipped(
                    f"{day.isoformat()} is not the next business date to close: that is "
                    f"{expected.isoformat()} (dates cannot be skipped); nothing booked / "
                    f"{day.isoformat()} 不是下一个待日终的营业日（应为 {expected.isoformat()}，"
                    "不可跳日），未记账"
                )
            row = EodRun(
                business_date=day,
                status="running",
                steps_done=[],
                totals={},
                started_at=ctx.now(),
                closed_at=None,
                started_by=ctx.actor.email,
            )
            session.add(row)
            session.flush()
        return _result(row)


def run_eod(
    session_factory: sessionmaker[Session],
    *,
    business_date: date,
    settings: Settings,
    clock: Clock,
    ctx: Context,
    stop_after: str | None = None,
    on_step: StepListener | None = None,
) -> EodResult:
    """Close ``business_date`` (or resume it): each step in its own transaction (see the module
    docstring). A date already closed is a no-op returning its run (``already_closed``); a date in
    the future or a skipped date is refused. ``stop_after`` ends the call after that step (as a
    crash would), leaving the run open for a later call to finish."""
    if stop_after is not None and stop_after not in STEPS:
        raise InvalidInput(f"unknown step {stop_after!r}; steps: {', '.join(STEPS)} / 未知的日终步骤")
    opened = _open(session_factory, day=business_date, settings=settings, clock=clock, ctx=ctx)
    if opened.already_closed:
        return opened
    for name in STEPS:
        started = time.monotonic()
        counts: dict[str, Any] | None = None
        with unit_of_work(session_factory) as session:
            row = _lock_run(session, business_date)
            if row is None:  # pragma: no cover - opened above and never deleted
                raise BusinessDateClosed(f"the end of day of {business_date} vanished")
            if name not in row.steps_done:
                if is_postgres(session):
                    # Whole-book joins and sorts in memory; compiling them (JIT) costs more than it saves.
                    session.execute(text("SET LOCAL jit = off"))
                    session.execute(text("SET LOCAL work_mem = '256MB'"))
                counts = STEP_FUNCTIONS[name](_Step(session, ctx, settings, business_date))
                row.steps_done = [*row.steps_done, name]
                row.totals = {**row.totals, **counts}
                if name == "close":
                    row.status = "closed"
                    row.closed_at = ctx.now()
                    audit.record(
                        session,
                        ctx=ctx,
                        action="eod.closed",
                        object_type="eod_run",
                        object_id=business_date.isoformat(),
                        after=row.totals,
                    )
        if counts is not None and on_step is not None:
            on_step(name, counts, time.monotonic() - started)
        if name == stop_after:
            break
    with session_factory() as session:
        final = session.get(EodRun, business_date)
        assert final is not None
        return _result(final)


def pending_dates(
    session_factory: sessionmaker[Session], *, settings: Settings, clock: Clock, limit: int = JOB_MAX_DATES
) -> list[date]:
    """The dates the scheduled job should close now, oldest first: from the next open date through
    yesterday (the first time: from the earliest active loan's start date, or yesterday)."""
    yesterday = business_date_of(clock.now(), settings.timezone) - timedelta(days=1)
    with session_factory() as session:
        start = next_date(session)
        if start is None:
            earliest = session.scalar(select(func.min(LS.c.start_date)).where(_active()))
            start = min(earliest, yesterday) if earliest is not None else yesterday
    days: list[date] = []
    while start <= yesterday and len(days) < limit:
        days.append(start)
        start += timedelta(days=1)
    return days
