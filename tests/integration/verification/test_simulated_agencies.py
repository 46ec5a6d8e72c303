"""Simulated agencies work service orders like real ones: slowly, sometimes declining (then the
platform reassigns), sometimes going silent, and signing what they return. And the demo's
demands, seeded in every state, keep moving when the worker runs."""

from __future__ import annotations

import itertools
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.integration.verification.demand_data import demand_body
from yunrong.config import Settings
from yunrong.db import unit_of_work
from yunrong.demands import service as demands
from yunrong.demands.model import OPEN, DemandStatus, Product
from yunrong.demands.schemas import DemandIn
from yunrong.demands.tables import Demand
from yunrong.demo.demands import SME2_EMAIL, SPECIALISTS, seed_demands, seed_specialist_agencies
from yunrong.identity import repository
from yunrong.identity.model import Context
from yunrong.identity.service import actor_for
from yunrong.identity.tables import User
from yunrong.kit.clock import FrozenClock
from yunrong.messaging.jobs import run_due_jobs
from yunrong.messaging.worker import deliver_due
from yunrong.parties.tables import Agency, BankAccount
from yunrong.verification import attestations, orders, simulated
from yunrong.verification.tables import Attestation, ServiceOrder, ServiceOrderEvent

SME = "sme@demo.yunrong.cn"
AGENCY = "agency@demo.yunrong.cn"
CAP = 1_000_000_00


@pytest.fixture
def world(
    factory: sessionmaker[Session], settings: Settings, system_ctx: Context, demo: dict[str, str]
) -> None:
    # The demo world seeds the specialist agencies already; seeding again creates none.
    with unit_of_work(factory) as session:
        assert seed_specialist_agencies(session, ctx=system_ctx, settings=settings) == 0
        from yunrong.parties.tables import Agency

        assert session.query(Agency).filter(Agency.simulated.is_(True)).count() == len(SPECIALISTS) + 1


@pytest.fixture
def refs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Order references in sequence, so that a run is the same every time (behaviour is seeded by
    the reference)."""
    counter = itertools.count(1)
    monkeypatch.setattr(orders, "human_ref", lambda prefix: f"{prefix}-T{next(counter):07d}")


def _ctx(session: Session, email: str, system_ctx: Context) -> Context:
    user = repository.user_by_email(session, email)
    assert user is not None
    org = repository.organisation_by_id(session, user.organisation_id)
    assert org is not None
    return Context(actor=actor_for(user, org, "test"), clock=system_ctx.clock, request_id="test")


def _submit(
    factory: sessionmaker[Session], settings: Settings, system_ctx: Context, **overrides: Any
) -> uuid.UUID:
    with unit_of_work(factory) as session:
        sme = _ctx(session, SME, system_ctx)
        demand = demands.create_demand(
            session, ctx=sme, settings=settings, data=DemandIn.model_validate(demand_body(**overrides))
        )
        demands.submit_demand(session, ctx=sme, settings=settings, demand_id=demand.id)
        return demand.id


def _round(factory: sessionmaker[Session], settings: Settings, clock: FrozenClock) -> None:
    """Thirty seconds pass; the worker runs its due jobs and drains the outbox."""
    clock.advance(timedelta(seconds=30))
    run_due_jobs(factory, settings=settings, clock=clock, worker_id="test-worker")
    deliver_due(factory, settings=settings, clock=clock, worker_id="test-worker", batch=1000)


def _status(factory: sessionmaker[Session], demand_id: uuid.UUID) -> str:
    with unit_of_work(factory) as session:
        demand = session.get(Demand, demand_id)
        assert demand is not None
        return demand.status


def _operator_steps_in(factory: sessionmaker[Session], system_ctx: Context, demand_id: uuid.UUID) -> None:
    """What an operator does with late or stranded orders: reassign, or waive when no one can."""
    with unit_of_work(factory) as session:
        for order in orders.list_orders_of_demand(session, demand_id):
            if order.status == "escalated":
                orders.reassign_order(
                    session, ctx=system_ctx, order_id=order.id, reason="the agency is silent"
                )
            elif order.status == "unassigned" and order.required:
                orders.waive_order(session, ctx=system_ctx, order_id=order.id, reason="no agency can do it")


def test_plans_are_seeded_by_the_order_and_mix_the_outcomes(settings: Settings) -> None:
    def plan(ref: str, assignment: int = 1) -> simulated.Plan:
        return simulated.plan_for(
            settings, ref=ref, assignment=assignment, agency="91320106MA1HRDB2XT", agency_type="guarantee"
        )

    assert plan("SO-ABC") == plan("SO-ABC")
    plans = [plan(f"SO-{i:06d}") for i in range(2000)]
    outcomes = Counter(p.outcome for p in plans)
    assert 0.07 < outcomes[simulated.Outcome.DECLINE] / 2000 < 0.13
    assert 0.03 < outcomes[simulated.Outcome.FAIL] / 2000 < 0.07
    assert all(timedelta(seconds=5) <= p.accept_after <= timedelta(seconds=40) for p in plans)
    assert all(p.accept_after < p.done_after <= timedelta(seconds=120) for p in plans)
    assert {p.decline_reason for p in plans} == set(simulated.DECLINE_REASONS["guarantee"])
    # A reassignment is a new draw: the same order may go otherwise with the next agency.
    assert any(plan(f"SO-{i:06d}", 2) != plans[i] for i in range(20))


def test_simulated_agencies_take_a_demand_to_listed_with_signed_results(
    world: None,
    refs: None,
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    system_ctx: Context,
) -> None:
    demand_id = _submit(
        factory,
        settings,
        system_ctx,
        product="bank_loan",
        guarantee_wanted=True,
        innovation={
            "rd_spend": "420000.00",
            "patents": [{"number": "ZL202110234567.8", "title": "Seedling humidity control"}],
        },
    )
    with unit_of_work(factory) as session:
        ordered = orders.list_orders_of_demand(session, demand_id)
        assert {o.agency_type for o in ordered} == {
            "authentication",
            "credit_rating",
            "guarantee",
            "ip_valuation",
            "appraisal",
        }
        assert all(o.status == "assigned" for o in ordered)

    # Nothing happens before the agencies have had time to look at the orders.
    clock.advance(timedelta(seconds=4))
    steps = simulated.run_simulated_agencies(factory, settings=settings, clock=clock)
    assert steps == Counter({"working": len(ordered)})

    for minute in range(60):
        _round(factory, settings, clock)
        if _status(factory, demand_id) == DemandStatus.LISTED.value:
            break
        if minute % 10 == 9:  # someone went silent: a day passes, the order escalates, the operator acts
            clock.advance(timedelta(days=5))
            run_due_jobs(factory, settings=settings, clock=clock, worker_id="test-worker")
            _operator_steps_in(factory, system_ctx, demand_id)
    assert _status(factory, demand_id) == DemandStatus.LISTED.value

    with unit_of_work(factory) as session:
        agencies = {a.organisation_id: a for a in session.scalars(select(Agency)).all()}
        users = {u.email for u in session.scalars(select(User)).all()}
        for order in orders.list_orders_of_demand(session, demand_id):
            events = orders.events_of(session, order.id)
            if order.status != "completed":
                assert order.status == "waived" or not order.required
                continue
            assert order.agency_id is not None
            assert agencies[order.agency_id].simulated
            # Accepted, then completed, by a person of the agency, as through the API.
            worked = [e for e in events if e.to_status in ("accepted", "completed")]
            assert [e.to_status for e in worked][-2:] == ["accepted", "completed"]
            assert all(e.actor_label in users for e in worked)
            attestation = session.get(Attestation, order.attestation_id)
            assert attestation is not None
            verdict = attestations.verify_attestation(session, attestation.id, now=clock.now())
            assert verdict["valid"], verdict
            assert attestation.agency_id == order.agency_id
            assert attestation.valid_until - attestation.issued_at == timedelta(days=365)
            result = attestations.RESULTS[order.agency_type].model_validate(attestation.payload)
            if isinstance(result, attestations.GuaranteeCommitment):
                assert 50 <= result.coverage_percent <= 80
            if order.service == "bank_account_check":
                assert isinstance(result, attestations.VerificationFinding)
                assert result.bank_account_id is not None
                assert result.verified
            if isinstance(result, attestations.IpValuationResult):
                assert [p.number for p in result.patents] == ["ZL202110234567.8"]


def test_a_decline_is_reassigned_to_another_agency(
    world: None,
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    system_ctx: Context,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Agencies that would rather not: each declines whenever someone else could take the order.
    monkeypatch.setattr(simulated, "BEHAVIOUR", simulated.Behaviour(decline_rate=1.0, fail_rate=0.0))
    demand_id = _submit(factory, settings, system_ctx, product="bank_loan")
    with unit_of_work(factory) as session:
        appraisal = next(
            o for o in orders.list_orders_of_demand(session, demand_id) if o.agency_type == "appraisal"
        )
        first_agency = appraisal.agency_id
        appraisal_id = appraisal.id

    clock.advance(timedelta(minutes=2))
    steps = simulated.run_simulated_agencies(factory, settings=settings, clock=clock)
    # The demo agency alone offers the checks and the rating, so it does them; the appraisal (two
    # firms offer it) is declined and goes at once to the other firm.
    assert steps == Counter({"completed": 3, "declined": 1})
    with unit_of_work(factory) as session:
        order = session.get(ServiceOrder, appraisal_id)
        assert order is not None
        assert order.status == "assigned"
        assert order.assignments == 2
        assert order.agency_id not in (None, first_agency)
        second_agency = order.agency_id
        trail = [(e.to_status, e.agency_id) for e in orders.events_of(session, appraisal_id)]
        assert trail == [
            ("assigned", first_agency),
            ("accepted", first_agency),
            ("declined", first_agency),
            ("assigned", second_agency),
        ]
        declined = session.scalars(
            select(ServiceOrderEvent).where(
                ServiceOrderEvent.order_id == appraisal_id, ServiceOrderEvent.to_status == "declined"
            )
        ).one()
        assert declined.reason in simulated.DECLINE_REASONS["appraisal"]
    assert _status(factory, demand_id) == DemandStatus.LISTED.value  # the appraisal is optional

    # The second firm has no one left to pass it to, so it does the work.
    clock.advance(timedelta(minutes=2))
    assert simulated.run_simulated_agencies(factory, settings=settings, clock=clock) == Counter(
        {"completed": 1}
    )
    with unit_of_work(factory) as session:
        order = session.get(ServiceOrder, appraisal_id)
        assert order is not None
        assert order.status == "completed"
        attestation = session.get(Attestation, order.attestation_id)
        assert attestation is not None
        assert attestation.agency_id == second_agency
        assert attestations.verify_attestation(session, attestation.id, now=clock.now())["valid"]


def test_a_silent_agency_leaves_the_order_late_until_it_is_escalated(
    world: None,
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    system_ctx: Context,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(simulated, "BEHAVIOUR", simulated.Behaviour(decline_rate=0.0, fail_rate=1.0))
    demand_id = _submit(factory, settings, system_ctx)
    for _ in range(3):
        clock.advance(timedelta(minutes=3))
        assert simulated.run_simulated_agencies(factory, settings=settings, clock=clock) == Counter(
            {"silent": 3}
        )
    with unit_of_work(factory) as session:
        assert {o.status for o in orders.list_orders_of_demand(session, demand_id)} == {"accepted"}
    clock.advance(timedelta(days=4))
    with unit_of_work(factory) as session:
        assert orders.escalate_late_orders(session, ctx=system_ctx) == 3
    assert _status(factory, demand_id) == DemandStatus.UNDER_VERIFICATION.value
    # Escalated, still silent: the agency does not come back to it.
    assert simulated.run_simulated_agencies(factory, settings=settings, clock=clock) == Counter({"silent": 3})


def test_an_order_the_agency_cannot_do_is_declined_with_the_reason(
    world: None,
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    system_ctx: Context,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(simulated, "BEHAVIOUR", simulated.Behaviour(decline_rate=0.0, fail_rate=0.0))
    demand_id = _submit(factory, settings, system_ctx)
    with unit_of_work(factory) as session:
        sme_org = _ctx(session, SME, system_ctx).actor.organisation_id
        for account in session.scalars(select(BankAccount).where(BankAccount.organisation_id == sme_org)):
            session.delete(account)
    clock.advance(timedelta(minutes=3))
    simulated.run_simulated_agencies(factory, settings=settings, clock=clock)
    with unit_of_work(factory) as session:
        check = next(
            o for o in orders.list_orders_of_demand(session, demand_id) if o.service == "bank_account_check"
        )
        assert check.status == "unassigned"  # no other agency checks bank accounts: the operator must act
        reasons = [e.reason for e in orders.events_of(session, check.id) if e.to_status == "declined"]
        assert reasons == ["the enterprise has no bank account on file to verify"]


def test_the_demo_demands_are_in_every_state_and_keep_moving(
    world: None,
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    system_ctx: Context,
) -> None:
    with unit_of_work(factory) as session:
        created = seed_demands(session, ctx=system_ctx, settings=settings)
        assert seed_demands(session, ctx=system_ctx, settings=settings) == 0
    assert created == 7
    with unit_of_work(factory) as session:
        seeded = list(session.scalars(select(Demand)).all())
        assert {d.status for d in seeded} == {"draft", "withdrawn", "under_verification", "listed"}
        assert {d.product for d in seeded} == {p.value for p in Product}
        owners = {d.organisation_id for d in seeded}
        assert len(owners) == 2
        for owner in owners:
            open_total = sum(
                d.amount_minor for d in seeded if d.organisation_id == owner and d.status in OPEN
            )
            assert open_total <= CAP
        sme2 = repository.user_by_email(session, SME2_EMAIL)
        assert sme2 is not None
        assert sme2.organisation_id in owners

        listed = next(d for d in seeded if d.status == "listed")
        done = [o for o in orders.list_orders_of_demand(session, listed.id) if o.status == "completed"]
        assert {o.agency_type for o in done} >= {"authentication", "credit_rating", "guarantee"}
        for order in done:
            assert order.attestation_id is not None
            assert attestations.verify_attestation(session, order.attestation_id, now=clock.now())["valid"]
        partly = next(d for d in seeded if d.product == Product.SUPPLY_CHAIN_RECEIVABLE.value)
        partly_statuses = Counter(o.status for o in orders.list_orders_of_demand(session, partly.id))
        assert partly.status == "under_verification"
        assert partly_statuses["completed"] >= 1
        assert partly_statuses["assigned"] >= 1
        withdrawn = next(d for d in seeded if d.status == "withdrawn")
        assert {o.status for o in orders.list_orders_of_demand(session, withdrawn.id)} == {"cancelled"}
        demo_agency = session.get(Agency, _ctx(session, AGENCY, system_ctx).actor.organisation_id)
        assert demo_agency is not None
        assert demo_agency.simulated

    # With the worker running, the demands under verification move on, as in `make run`.
    for _ in range(20):
        _round(factory, settings, clock)
    with unit_of_work(factory) as session:
        statuses = Counter(d.status for d in session.scalars(select(Demand)).all())
    assert statuses["listed"] > 1
    assert statuses["draft"] == 1
    assert statuses["withdrawn"] == 1
