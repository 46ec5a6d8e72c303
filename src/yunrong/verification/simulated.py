"""Simulated agencies (demo and tests) that behave like real ones.

An agency registered with ``simulated=True`` has its service orders worked by a scheduled job, as
its first user would through the API: after a working time it accepts the order, then it either
completes it with a plausible typed result signed with its Ed25519 key (valid for twelve months),
declines it with a reason when another agency could take it (the platform reassigns it), or goes
silent (the order runs late until it is escalated and an operator reassigns it). Some orders it
cannot do at all (no bank account on file, no pledged goods to inspect) and declines them for that
reason.

Behaviour is seeded by the order's reference, its assignment number and the agency's credit code,
so a run can be replayed; results are seeded by the reference alone. Times are short so that the demo moves
within a minute or two: accepted 5–40 s after assignment, answered 10–80 s after that.
"""

from __future__ import annotations

import hashlib
import logging
import random
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from yunrong.config import Settings
from yunrong.db import unit_of_work
from yunrong.demands.tables import Demand
from yunrong.identity.model import Context
from yunrong.identity.service import actor_for
from yunrong.identity.tables import Organisation, User
from yunrong.kit.clock import Clock, business_date, ensure_utc
from yunrong.kit.money import Money
from yunrong.messaging.jobs import job
from yunrong.parties.model import AgencyType
from yunrong.parties.tables import Agency, BankAccount, Enterprise
from yunrong.verification import attestations, orders
from yunrong.verification.tables import ServiceOrder, ServiceOrderEvent

log = logging.getLogger("yunrong.simulated_agencies")

JOB_NAME = "verification.simulated_agencies"
VALIDITY = timedelta(days=365)


class Outcome(StrEnum):
    COMPLETE = "complete"
    DECLINE = "decline"
    FAIL = "fail"  # accepts, then goes silent: the order runs late


@dataclass(frozen=True)
class Behaviour:
    """How simulated agencies behave (tests may pass another)."""

    decline_rate: float = 0.10
    fail_rate: float = 0.05
    accept_after_seconds: tuple[float, float] = (5.0, 40.0)
    work_seconds: tuple[float, float] = (10.0, 80.0)


BEHAVIOUR = Behaviour()


@dataclass(frozen=True)
class Plan:
    accept_after: timedelta
    done_after: timedelta
    outcome: Outcome
    decline_reason: str


DECLINE_REASONS: dict[str, tuple[str, ...]] = {
    AgencyType.AUTHENTICATION.value: (
        "the registry is unreachable this week; we cannot verify within the service-level time",
        "our verification team is fully booked until next month",
    ),
    AgencyType.APPRAISAL.value: (
        "no qualified appraiser for this asset class is free before the deadline",
        "the site is outside the area our appraisers cover",
    ),
    AgencyType.CREDIT_RATING.value: (
        "conflict of interest: we advise one of the enterprise's shareholders",
        "our rating committee cannot sit before the deadline",
    ),
    AgencyType.IP_VALUATION.value: (
        "the patents are outside the technical fields our valuers cover",
        "our valuers are fully booked this month",
    ),
    AgencyType.INSURANCE.value: (
        "this equipment class is outside our current underwriting appetite",
        "our quota for this industry is used up this quarter",
    ),
    AgencyType.GUARANTEE.value: (
        "our guarantee quota for this industry is used up this quarter",
        "the counter-guarantee offered is not enough for our committee",
    ),
    AgencyType.LOGISTICS_MONITORING.value: (
        "the warehouse is not in our monitoring network",
        "no inspector can reach the warehouse before the deadline",
    ),
}


class Cannot(Exception):
    """The agency cannot do this order (it declines with this reason)."""


def _rng(settings: Settings, *parts: object) -> random.Random:
    material = "|".join([settings.secret_key.get_secret_value(), "simulated-agency", *map(str, parts)])
    return random.Random(int.from_bytes(hashlib.sha256(material.encode()).digest()[:8], "big"))


def plan_for(
    settings: Settings,
    *,
    ref: str,
    assignment: int,
    agency: str,
    agency_type: str,
    behaviour: Behaviour | None = None,
) -> Plan:
    """What the agency (named by its credit code) will do with one assignment of an order: a pure
    function of its inputs and the platform's secret key."""
    b = behaviour or BEHAVIOUR
    rng = _rng(settings, ref, assignment, agency)
    accept_after = rng.uniform(*b.accept_after_seconds)
    done_after = accept_after + rng.uniform(*b.work_seconds)
    draw = rng.random()
    if draw < b.decline_rate:
        outcome = Outcome.DECLINE
    elif draw < b.decline_rate + b.fail_rate:
        outcome = Outcome.FAIL
    else:
        outcome = Outcome.COMPLETE
    reasons = DECLINE_REASONS.get(agency_type, ("we cannot take this order",))
    return Plan(
        accept_after=timedelta(seconds=accept_after),
        done_after=timedelta(seconds=done_after),
        outcome=outcome,
        decline_reason=rng.choice(reasons),
    )


# --- results -------------------------------------------------------------------------------------


def add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, 28))


def _round_minor(value: float, step: int = 1000_00) -> int:
    """Round a value in minor units to a whole step (default CNY 1,000), at least one step."""
    return max(step, round(value / step) * step)


@dataclass(frozen=True)
class _Subject:
    order: ServiceOrder
    enterprise: Enterprise
    name: str
    demand: Demand | None
    today: date

    @property
    def amount_minor(self) -> int:
        return self.demand.amount_minor if self.demand else max(1, self.enterprise.annual_revenue_minor // 10)

    @property
    def currency(self) -> str:
        return self.demand.currency if self.demand else self.enterprise.currency

    @property
    def facts(self) -> dict[str, Any]:
        return dict(self.demand.product_facts or {}) if self.demand else {}


def _rating(s: _Subject, rng: random.Random) -> dict[str, Any]:
    e = s.enterprise
    years = max(0.0, (s.today - e.founded_on).days / 365.25)
    turnover = e.annual_revenue_minor / max(1, e.total_assets_minor)
    ask = s.amount_minor / max(1, e.annual_revenue_minor)
    capitalisation = e.registered_capital_minor / max(1, e.total_assets_minor)
    score = (
        min(years, 10.0) * 2
        + min(turnover, 2.0) * 10
        + (20 if ask < 0.05 else 15 if ask < 0.1 else 10 if ask < 0.2 else 5 if ask < 0.4 else 0)
        + (5 if e.employees >= 20 else 2)
        + min(capitalisation, 1.0) * 15
        + rng.uniform(-4, 4)
    )
    bands = ((65, "AAA"), (58, "AA"), (50, "A"), (42, "BBB"), (34, "BB"), (26, "B"), (18, "CCC"))
    rating = next((grade for floor, grade in bands if score >= floor), "CC")
    outlook = rng.choices(["stable", "positive", "negative"], weights=[70, 20, 10])[0]
    return {
        "rating": rating,
        "outlook": outlook,
        "methodology": (
            f"SME scorecard: {years:.1f} years trading, asset turnover {turnover:.2f}, "
            f"request {ask:.1%} of revenue, capitalisation {capitalisation:.0%}, "
            f"{e.employees} employees; score {score:.0f}/80"
        ),
    }


def _appraisal(s: _Subject, rng: random.Random) -> dict[str, Any]:
    lease = s.facts.get("lease")
    if lease:  # a financial lease: the leased equipment is what matters
        subject, base, method = (
            "equipment",
            int(lease["price_minor"]) * rng.uniform(0.86, 1.0),
            "replacement cost less depreciation, checked against dealer quotes",
        )
    else:
        subject, base, method = (
            "business",
            s.enterprise.total_assets_minor * rng.uniform(0.85, 1.15),
            "adjusted net assets, cross-checked with a revenue multiple of listed peers",
        )
    return {
        "subject": subject,
        "value_minor": _round_minor(base),
        "currency": s.currency,
        "method": method,
        "appraised_on": s.today.isoformat(),
    }


def _ip_valuation(s: _Subject, rng: random.Random) -> dict[str, Any]:
    patents = (s.demand.innovation or {}).get("patents") if s.demand else None
    if not patents:
        raise Cannot("no patents were declared to value")
    return {
        "patents": [
            {
                "number": str(p["number"]),
                "title": str(p["title"]),
                "value_minor": _round_minor(rng.uniform(150_000_00, 1_800_000_00)),
            }
            for p in {str(p["number"]): p for p in patents}.values()
        ],
        "currency": s.currency,
        "method": "relief-from-royalty over the remaining patent life, 12% discount rate",
    }


def _guarantee(s: _Subject, rng: random.Random) -> dict[str, Any]:
    coverage = rng.choice(range(50, 81, 5))
    term = s.demand.term_months if s.demand else 12
    return {
        "coverage_percent": str(coverage),
        "cap_minor": max(1, s.amount_minor * coverage // 100),
        "fee_percent": f"{rng.uniform(1.5, 3.0):.2f}",
        "term_months": max(1, min(term, 600)),
        "currency": s.currency,
    }


def _insurance(s: _Subject, rng: random.Random) -> dict[str, Any]:
    lease = s.facts.get("lease")
    coverage = int(lease["price_minor"]) if lease else s.amount_minor
    term = s.demand.term_months if s.demand else 12
    return {
        "policy_number": f"POL-{s.today:%Y}-{rng.randrange(10**7):07d}",
        "coverage_minor": max(1, coverage),
        "premium_minor": int(coverage * rng.uniform(0.004, 0.012)),
        "currency": s.currency,
        "starts_on": s.today.isoformat(),
        "ends_on": add_months(s.today, max(12, term)).isoformat(),
    }


def _authentication(session: Session, s: _Subject) -> dict[str, Any]:
    service = s.order.service
    if service == "bank_account_check":
        account = session.scalars(
            select(BankAccount)
            .where(BankAccount.organisation_id == s.enterprise.organisation_id)
            .order_by(BankAccount.created_at, BankAccount.id)
        ).first()
        if account is None:
            raise Cannot("the enterprise has no bank account on file to verify")
        return {
            "subject": "bank_account",
            "verified": True,
            "finding": (
                f"Account {account.account_number_masked} at {account.bank_name} is active and held "
                f"in the name of {account.account_name}"
            )[:500],
            "bank_account_id": str(account.id),
        }
    if service == "receivable_confirmation":
        receivable = s.facts.get("receivable")
        if not receivable:
            raise Cannot("no receivable was declared to confirm")
        amount = Money(int(receivable["amount_minor"]), s.currency)
        return {
            "subject": "receivable",
            "verified": True,
            "finding": (
                f"{receivable['debtor_name']} confirmed in writing invoice {receivable['invoice_number']} "
                f"for {amount}, due {receivable['due_date']}, unpaid and not pledged elsewhere"
            )[:500],
        }
    if service == "business_licence_check":
        return {
            "subject": "business_licence",
            "verified": True,
            "finding": (
                f"Licence {s.enterprise.credit_code} matches the National Enterprise Credit Information "
                f"Publicity System: {s.name}, in operation, legal representative "
                f"{s.enterprise.legal_representative}"
            )[:500],
        }
    return {
        "subject": "other",
        "verified": True,
        "finding": f"{service.replace('_', ' ')}: checked, no issues",
    }


def _logistics(s: _Subject, rng: random.Random) -> dict[str, Any]:
    inventory = s.facts.get("inventory")
    if not inventory:
        raise Cannot("no pledged goods to inspect")
    return {
        "goods": str(inventory["goods"]),
        "warehouse": str(inventory["warehouse"]),
        "quantity": str(inventory["quantity"]),
        "unit": str(inventory["unit"]),
        "value_minor": _round_minor(int(inventory["value_minor"]) * rng.uniform(0.9, 1.0), 100_00),
        "currency": s.currency,
        "inspected_on": s.today.isoformat(),
        "condition": rng.choices(["good", "fair", "poor"], weights=[80, 18, 2])[0],
    }


def result_for(session: Session, *, settings: Settings, order: ServiceOrder, now: datetime) -> dict[str, Any]:
    """A plausible typed result for the order (raises ``Cannot`` when the agency cannot do it)."""
    enterprise = session.get(Enterprise, order.enterprise_id)
    org = session.get(Organisation, order.enterprise_id)
    if enterprise is None or org is None:
        raise Cannot("the enterprise has no profile")
    demand = session.get(Demand, order.demand_id) if order.demand_id else None
    subject = _Subject(order, enterprise, org.name, demand, business_date(now, settings.timezone))
    rng = _rng(settings, order.ref, "result")
    kind = order.agency_type
    if kind == AgencyType.CREDIT_RATING.value:
        return _rating(subject, rng)
    if kind == AgencyType.APPRAISAL.value:
        return _appraisal(subject, rng)
    if kind == AgencyType.IP_VALUATION.value:
        return _ip_valuation(subject, rng)
    if kind == AgencyType.GUARANTEE.value:
        return _guarantee(subject, rng)
    if kind == AgencyType.INSURANCE.value:
        return _insurance(subject, rng)
    if kind == AgencyType.AUTHENTICATION.value:
        return _authentication(session, subject)
    if kind == AgencyType.LOGISTICS_MONITORING.value:
        return _logistics(subject, rng)
    raise Cannot(f"no simulated result for {kind}")


def sign_result(
    settings: Settings,
    *,
    order: ServiceOrder,
    agency_name: str,
    payload: dict[str, Any],
    issued_at: datetime,
    valid_until: datetime,
) -> str:
    """Sign a result as the agency does: Ed25519 over the canonical form, with its demo key."""
    from yunrong.demo.seed import demo_agency_private_key

    assert order.agency_id is not None
    result = attestations.RESULTS[order.agency_type].model_validate(payload)
    canonical = attestations.canonical_form(
        order_ref=order.ref,
        enterprise_id=order.enterprise_id,
        agency_id=order.agency_id,
        kind=order.agency_type,
        subject=attestations.subject_of(order.agency_type, result),
        payload=payload,
        issued_at=issued_at,
        valid_until=valid_until,
    )
    return attestations.sign(demo_agency_private_key(settings, agency_name), canonical)


def agency_context(session: Session, agency_id: uuid.UUID, clock: Clock) -> Context | None:
    """Act as the agency's first active user, as a person at the agency would."""
    org = session.get(Organisation, agency_id)
    user = session.scalars(
        select(User)
        .where(User.organisation_id == agency_id, User.is_active.is_(True))
        .order_by(User.created_at, User.id)
    ).first()
    if org is None or user is None:
        return None
    return Context(actor=actor_for(user, org, "simulated-agency"), clock=clock, request_id="simulated-agency")


def complete_with_result(session: Session, *, ctx: Context, settings: Settings, order_id: uuid.UUID) -> str:
    """Complete an order with a signed plausible result, or decline it if the agency cannot do it.
    Returns "completed" or "declined"."""
    order = session.get(ServiceOrder, order_id)
    agency = session.get(Organisation, ctx.actor.organisation_id) if ctx.actor.organisation_id else None
    if order is None or agency is None:
        raise LookupError("no such order or agency")
    now = ctx.now()
    try:
        payload = result_for(session, settings=settings, order=order, now=now)
    except Cannot as exc:
        orders.decline_order(session, ctx=ctx, order_id=order_id, reason=str(exc))
        return "declined"
    valid_until = now + VALIDITY
    signature = sign_result(
        settings,
        order=order,
        agency_name=agency.name,
        payload=payload,
        issued_at=now,
        valid_until=valid_until,
    )
    orders.complete_order(
        session,
        ctx=ctx,
        order_id=order_id,
        payload=payload,
        issued_at=now,
        valid_until=valid_until,
        signature=signature,
    )
    return "completed"


# --- the job -------------------------------------------------------------------------------------


def _someone_else_can(session: Session, order: ServiceOrder) -> bool:
    """Whether another admitted agency would take the order if this one declined. A simulated
    agency declines for its own convenience only then (so the demo never strands an order); when it
    truly cannot do an order it declines regardless."""
    declined = set(
        session.scalars(
            select(ServiceOrderEvent.agency_id).where(
                ServiceOrderEvent.order_id == order.id, ServiceOrderEvent.to_status == "declined"
            )
        ).all()
    )
    exclude = {a for a in (*declined, order.agency_id) if a is not None}
    return (
        orders.choose_agency(
            session,
            enterprise_id=order.enterprise_id,
            agency_type=order.agency_type,
            service=order.service,
            exclude=exclude,
        )
        is not None
    )


def work_order(
    session: Session,
    *,
    settings: Settings,
    clock: Clock,
    order_id: uuid.UUID,
    behaviour: Behaviour | None = None,
) -> str:
    """Take the next step on one order of a simulated agency, if its time has come."""
    order = session.get(ServiceOrder, order_id)
    if order is None or order.status not in orders.OPEN_ORDER or order.agency_id is None:
        return "closed"
    agency = session.get(Agency, order.agency_id)
    if agency is None or not agency.simulated or order.assigned_at is None:
        return "not simulated"
    ctx = agency_context(session, order.agency_id, clock)
    if ctx is None:
        return "no user"
    plan = plan_for(
        settings,
        ref=order.ref,
        assignment=order.assignments,
        agency=agency.credit_code,
        agency_type=order.agency_type,
        behaviour=behaviour,
    )
    elapsed = clock.now() - ensure_utc(order.assigned_at)
    if elapsed < plan.accept_after:
        return "working"
    step = "waiting"
    if order.accepted_at is None:
        orders.accept_order(session, ctx=ctx, order_id=order.id)
        step = "accepted"
    if elapsed < plan.done_after:
        return step
    if plan.outcome is Outcome.FAIL:
        return "silent"
    if plan.outcome is Outcome.DECLINE and _someone_else_can(session, order):
        orders.decline_order(session, ctx=ctx, order_id=order.id, reason=plan.decline_reason)
        return "declined"
    return complete_with_result(session, ctx=ctx, settings=settings, order_id=order.id)


def run_simulated_agencies(
    factory: sessionmaker[Session],
    *,
    settings: Settings,
    clock: Clock,
    behaviour: Behaviour | None = None,
    limit: int = 500,
) -> Counter[str]:
    """One round: each open order of a simulated agency gets its next step, each in its own unit
    of work (one order's trouble does not hold up the others)."""
    with unit_of_work(factory) as session:
        due = list(
            session.scalars(
                select(ServiceOrder.id)
                .join(Agency, Agency.organisation_id == ServiceOrder.agency_id)
                .where(Agency.simulated.is_(True), ServiceOrder.status.in_(orders.OPEN_ORDER))
                .order_by(ServiceOrder.assigned_at, ServiceOrder.id)
                .limit(limit)
            ).all()
        )
    steps: Counter[str] = Counter()
    for order_id in due:
        try:
            with unit_of_work(factory) as session:
                steps[
                    work_order(
                        session, settings=settings, clock=clock, order_id=order_id, behaviour=behaviour
                    )
                ] += 1
        except Exception:
            log.exception("a simulated agency could not work an order", extra={"order_id": str(order_id)})
            steps["error"] += 1
    return steps


@job(JOB_NAME, every=timedelta(seconds=30))
def simulated_agencies(factory: sessionmaker[Session], settings: Settings, clock: Clock) -> str:
    steps = run_simulated_agencies(factory, settings=settings, clock=clock)
    return ", ".join(f"{count} {step}" for step, count in sorted(steps.items())) or "no open orders"
