"""The reusable authorization harness.

Every API operation whose path takes an id gets a case here: how to make an object that belongs
to one organisation, and who may reach it. The harness then tries it as every demo role and as a
user of another organisation of the same type ("rivals"); everyone not allowed must get 403 or 404
and learn nothing (the object's id and name never appear in the answer). A test also checks that
no operation with an id in its path is missing a case, so later work must extend this file.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import bearer, login_token
from yunrong.config import Settings
from yunrong.db import unit_of_work
from yunrong.demo.seed import DEMO_LOGINS
from yunrong.identity import repository, service
from yunrong.identity.model import CROSS_ORG_ROLES, Context, InvestorKind, OrgType, Role, needs_totp
from yunrong.identity.security import totp_now
from yunrong.identity.service import actor_for
from yunrong.messaging.service import emit
from yunrong.parties import codes
from yunrong.parties import service as parties_service
from yunrong.parties.model import ReviewAction
from yunrong.parties.risk import QUESTIONS
from yunrong.parties.schemas import EnterpriseRegistrationIn

RIVAL_PASSWORD = "rival-password-2026"


@dataclass
class World:
    client: TestClient
    factory: sessionmaker[Session]
    settings: Settings
    ctx: Context
    tokens: dict[str, str]  # e-mail → bearer token, demo users and rivals
    roles: dict[str, Role] = field(default_factory=dict)

    def email_of(self, role: Role) -> str:
        return next(email for email, r in self.roles.items() if r is role and not email.startswith("rival"))

    def org_id_of(self, email: str) -> str:
        with unit_of_work(self.factory) as session:
            user = repository.user_by_email(session, email)
            assert user is not None
            return str(user.organisation_id)

    def ctx_of(self, email: str) -> Context:
        with unit_of_work(self.factory) as session:
            user = repository.user_by_email(session, email)
            assert user is not None
            org = repository.organisation_by_id(session, user.organisation_id)
            assert org is not None
            return Context(actor=actor_for(user, org, "test"), clock=self.ctx.clock, request_id="authz")

    def user_id_of(self, email: str) -> str:
        with unit_of_work(self.factory) as session:
            user = repository.user_by_email(session, email)
            assert user is not None
            return str(user.id)


@dataclass(frozen=True)
class Target:
    path_params: dict[str, str]
    secrets: tuple[str, ...]  # strings a refused caller must never see
    body: Any = None
    owner_token: str | None = None  # a user made with the object who must reach it too


@dataclass(frozen=True)
class IdCase:
    operation_id: str
    make: Callable[[World], Target]
    allowed: Callable[[World], set[str]]  # e-mails that may use it
    ok_statuses: frozenset[int] = frozenset({200, 201})
    owner_allowed: bool = False  # the target's own owner_token must reach it


def build_world(
    client: TestClient, factory: sessionmaker[Session], settings: Settings, ctx: Context
) -> World:
    """Demo users plus one rival organisation of every type with a user of the same role."""
    roles = {login.email: login.role for login in DEMO_LOGINS}
    with unit_of_work(factory) as session:
        for login in DEMO_LOGINS:
            if login.email.startswith("regulator2") or login.email.startswith("institution"):
                continue
            rival_org = service.create_organisation(
                session,
                ctx=ctx,
                org_type=login.org_type,
                name=f"Rival {login.org_type.value} {login.role.value}",
                investor_kind=InvestorKind.PERSON if login.org_type is OrgType.INVESTOR else None,
            )
            email = f"rival-{login.role.value}@rival.cn"
            service.create_user(
                session,
                ctx=ctx,
                settings=settings,
                organisation_id=rival_org.id,
                email=email,
                name="Rival",
                password=RIVAL_PASSWORD,
                roles=frozenset({login.role}),
                enrol_totp=False,
            )
            roles[email] = login.role
    tokens: dict[str, str] = {}
    for email, role in roles.items():
        code = None
        if needs_totp(frozenset({role})):
            with unit_of_work(factory) as session:
                secret = service.enrol_totp_by_operator(session, ctx=ctx, settings=settings, email=email)
            code = totp_now(secret, ctx.now())
        password = RIVAL_PASSWORD if email.startswith("rival") else DEMO_LOGINS[0].password
        tokens[email] = login_token(client, email, password, totp=code)
    return World(client, factory, settings, ctx, tokens, roles)


def _with_roles(world: World, *roles: Role) -> set[str]:
    """Users holding one of the roles in the owning organisation; regulators and operators see
    across organisations, so theirs count wherever they sit."""
    return {
        email
        for email, role in world.roles.items()
        if role in roles and (role in CROSS_ORG_ROLES or not email.startswith("rival"))
    }


# --- cases ---------------------------------------------------------------------------------------


def _sme_org(world: World) -> Target:
    email = world.email_of(Role.ENTERPRISE_ADMIN)
    org_id = world.org_id_of(email)
    return Target({"organisation_id": org_id}, (org_id, "Lvyuan"))


def _sme_user(world: World) -> Target:
    email = world.email_of(Role.ENTERPRISE_ADMIN)
    user_id = world.user_id_of(email)
    return Target({"user_id": user_id}, (user_id, email))


def _new_user_in_sme(world: World) -> Target:
    target = _sme_org(world)
    body = {
        "email": f"harness-{uuid.uuid4().hex[:8]}@sme.cn",
        "name": "Harness",
        "password": "harness-password-1",
        "roles": ["enterprise_staff"],
    }
    return Target(target.path_params, target.secrets, body)


def _agency_key(world: World) -> Target:
    agency = world.email_of(Role.AGENCY_ADMIN)
    response = world.client.post(
        "/api/v1/api-keys", json={"name": "harness"}, headers=bearer(world.tokens[agency])
    )
    assert response.status_code == 201, response.text
    key = response.json()
    return Target({"api_key_id": key["id"]}, (key["id"], key["prefix"]))


def _audit_record(world: World) -> Target:
    from sqlalchemy import select

    from yunrong.supervision.tables import AuditRecord

    with unit_of_work(world.factory) as session:
        record = session.scalars(select(AuditRecord).order_by(AuditRecord.seq.desc())).first()
        assert record is not None
        return Target({"record_id": str(record.id)}, (str(record.id), record.hash))


def _outbox_event(world: World) -> Target:
    with unit_of_work(world.factory) as session:
        event = emit(
            session,
            ctx=world.ctx,
            topic="email.send",
            payload={"to": "secret@x.cn", "subject": "s", "body": "b"},
        )
        return Target({"event_id": str(event.id)}, (str(event.id), "secret@x.cn"))


CASES: list[IdCase] = [
    IdCase(
        "read_organisation",
        _sme_org,
        lambda w: _with_roles(w, Role.ENTERPRISE_ADMIN, Role.OPERATOR_ADMIN, Role.REGULATOR),
    ),
    IdCase(
        "list_organisation_users",
        _sme_org,
        lambda w: _with_roles(w, Role.ENTERPRISE_ADMIN, Role.OPERATOR_ADMIN, Role.REGULATOR),
    ),
    IdCase(
        "create_user", _new_user_in_sme, lambda w: _with_roles(w, Role.ENTERPRISE_ADMIN, Role.OPERATOR_ADMIN)
    ),
    IdCase(
        "read_user",
        _sme_user,
        lambda w: _with_roles(w, Role.ENTERPRISE_ADMIN, Role.OPERATOR_ADMIN, Role.REGULATOR),
    ),
    IdCase("revoke_api_key", _agency_key, lambda w: _with_roles(w, Role.AGENCY_ADMIN)),
    IdCase("read_audit_record", _audit_record, lambda w: _with_roles(w, Role.REGULATOR)),
    IdCase("read_outbox_event", _outbox_event, lambda w: _with_roles(w, Role.OPERATOR_ADMIN)),
    IdCase(
        "requeue_outbox_event",
        _outbox_event,
        lambda w: _with_roles(w, Role.OPERATOR_ADMIN),
        ok_statuses=frozenset({200, 409}),
    ),  # 409: the operator reached it, but it was not dead
]


# --- parties ---------------------------------------------------------------------------------------


def _fresh_registration(
    world: World, *, admit: bool = False, suspend: bool = False, request_info: bool = False
) -> tuple[parties_service.Registration, str]:
    """A new enterprise registered through the service, with a token for its applicant."""
    n = uuid.uuid4().int
    email = f"applicant-{n % 10**8}@fresh.cn"
    body = f"91320100MA{n % 10**7:07d}"
    data = EnterpriseRegistrationIn.model_validate(
        {
            "enterprise": {
                "credit_code": codes.make_uscc(body),
                "name": f"Fresh Enterprise {n % 10**8}",
                "legal_representative": "Fresh",
                "registered_capital": "1000000.00",
                "founded_on": "2020-01-01",
                "industry_code": "C3911",
                "region_code": "320102",
                "employees": 12,
                "annual_revenue": "2500000.00",
                "total_assets": "3000000.00",
                "contact": {"name": "Fresh", "phone": "+86 25 0000 0000", "email": email},
            },
            "applicant": {"email": email, "name": "Fresh Applicant", "password": RIVAL_PASSWORD},
        }
    )
    regulators = sorted(
        e for e, r in world.roles.items() if r is Role.REGULATOR and not e.startswith("rival")
    )
    with unit_of_work(world.factory) as session:
        registration = parties_service.register_enterprise(
            session, ctx=world.ctx, settings=world.settings, data=data
        )
    for step, email_of_regulator in enumerate(
        regulators if admit else regulators[:1] if request_info else []
    ):
        decision = ReviewAction.REQUEST_INFO if request_info else ReviewAction.APPROVE
        with unit_of_work(world.factory) as session:
            parties_service.decide(
                session,
                ctx=world.ctx_of(email_of_regulator),
                settings=world.settings,
                qualification_id=registration.qualification.id,
                decision=decision,
                reason=f"step {step}",
            )
    if suspend:
        with unit_of_work(world.factory) as session:
            parties_service.set_suspension(
                session,
                ctx=world.ctx_of(regulators[0]),
                settings=world.settings,
                org_id=registration.organisation.id,
                suspend=True,
                reason="test",
            )
    token = login_token(world.client, email, RIVAL_PASSWORD)
    return registration, token


def _qualification(world: World) -> Target:
    registration, token = _fresh_registration(world)
    q = str(registration.qualification.id)
    return Target({"qualification_id": q}, (q, registration.organisation.name), owner_token=token)


def _decision(world: World) -> Target:
    target = _qualification(world)
    return Target(target.path_params, target.secrets, {"decision": "approve", "reason": "fine"})


def _info_requested(world: World) -> Target:
    registration, token = _fresh_registration(world, request_info=True)
    q = str(registration.qualification.id)
    return Target(
        {"qualification_id": q},
        (q, registration.organisation.name),
        {"message": "here are the statements"},
        owner_token=token,
    )


def _admitted_org(world: World) -> Target:
    registration, _ = _fresh_registration(world, admit=True)
    org = str(registration.organisation.id)
    return Target({"organisation_id": org}, (registration.organisation.name,), {"reason": "investigation"})


def _suspended_org(world: World) -> Target:
    registration, _ = _fresh_registration(world, admit=True, suspend=True)
    org = str(registration.organisation.id)
    return Target({"organisation_id": org}, (registration.organisation.name,), {"reason": "cleared"})


def _org_of(role: Role, body: Any = None, *secrets: str) -> Callable[[World], Target]:
    def make(world: World) -> Target:
        email = world.email_of(role)
        org_id = world.org_id_of(email)
        return Target({"organisation_id": org_id}, (org_id, *secrets), body)

    return make


def _person_investor(world: World) -> Target:
    with unit_of_work(world.factory) as session:
        org = repository.organisation_by_name(session, "investor", "Li Wei 李伟")
        assert org is not None
        org_id = str(org.id)
    answers = {q.key: q.options[0].key for q in QUESTIONS}
    return Target({"organisation_id": org_id}, (org_id, "Li Wei"), {"answers": answers})


def _person_investor_read(world: World) -> Target:
    target = _person_investor(world)
    return Target(target.path_params, target.secrets)


def _sme_document(world: World) -> Target:
    sme = world.email_of(Role.ENTERPRISE_ADMIN)
    response = world.client.post(
        "/api/v1/documents",
        data={"category": "financial_statement"},
        files={"file": ("statement.pdf", b"%PDF-1.4 secret statement", "application/pdf")},
        headers=bearer(world.tokens[sme]),
    )
    assert response.status_code == 201, response.text
    doc = response.json()
    return Target({"document_id": doc["id"]}, (doc["id"], doc["sha256"], "secret statement"))


def _sme_consent(world: World) -> Target:
    sme = world.email_of(Role.ENTERPRISE_ADMIN)
    response = world.client.post(
        "/api/v1/consents",
        json={
            "data_category": "financials",
            "recipient_class": "investors",
            "purpose": "listing secret",
            "valid_until": "2030-01-01",
        },
        headers=bearer(world.tokens[sme]),
    )
    assert response.status_code == 201, response.text
    return Target({"consent_id": response.json()["id"]}, (response.json()["id"], "listing secret"))


def _sme_notification(world: World) -> Target:
    sme = world.email_of(Role.ENTERPRISE_ADMIN)
    notes = world.client.get("/api/v1/notifications", headers=bearer(world.tokens[sme])).json()
    assert notes, "the demo SME has messages from its admittance"
    return Target({"notification_id": notes[0]["id"]}, (notes[0]["id"], notes[0]["subject_en"]))


_PEOPLE = [{"role": "director", "name": "Director Secret"}]
_SERVICES = [
    {"agency_type": "credit_rating", "service": "sme_credit_rating", "fee": "3100.00", "sla_hours": 72}
]
_ACCOUNT = {"bank_name": "Bank", "account_name": "Acct", "account_number": "6214830100099999"}
_SUPERVISORS = (Role.OPERATOR_ADMIN, Role.REGULATOR)

CASES += [
    IdCase("read_qualification", _qualification, lambda w: _with_roles(w, *_SUPERVISORS), owner_allowed=True),
    IdCase("decide_qualification", _decision, lambda w: _with_roles(w, Role.REGULATOR)),
    IdCase("respond_to_qualification", _info_requested, lambda w: set(), owner_allowed=True),
    IdCase("suspend_party", _admitted_org, lambda w: _with_roles(w, Role.REGULATOR)),
    IdCase("reinstate_party", _suspended_org, lambda w: _with_roles(w, Role.REGULATOR)),
    IdCase(
        "read_enterprise",
        _org_of(Role.ENTERPRISE_ADMIN, None, "Lvyuan"),
        lambda w: _with_roles(w, Role.ENTERPRISE_ADMIN, *_SUPERVISORS),
    ),
    IdCase(
        "set_enterprise_people",
        _org_of(Role.ENTERPRISE_ADMIN, _PEOPLE, "Lvyuan"),
        lambda w: _with_roles(w, Role.ENTERPRISE_ADMIN),
    ),
    IdCase("read_investor", _person_investor_read, lambda w: {PERSON_EMAIL} | _with_roles(w, *_SUPERVISORS)),
    IdCase("assess_risk_tolerance", _person_investor, lambda w: {PERSON_EMAIL}),
    IdCase(
        "read_agency",
        _org_of(Role.AGENCY_ADMIN, None, "Chengxin"),
        lambda w: _with_roles(w, Role.AGENCY_ADMIN, *_SUPERVISORS),
    ),
    IdCase(
        "set_agency_services",
        _org_of(Role.AGENCY_ADMIN, _SERVICES, "Chengxin"),
        lambda w: _with_roles(w, Role.AGENCY_ADMIN),
    ),
    IdCase(
        "list_bank_accounts",
        _org_of(Role.ENTERPRISE_ADMIN, None, "0000012345678"),
        lambda w: _with_roles(w, Role.ENTERPRISE_ADMIN, *_SUPERVISORS),
    ),
    IdCase(
        "create_bank_account",
        _org_of(Role.ENTERPRISE_ADMIN, _ACCOUNT),
        lambda w: _with_roles(w, Role.ENTERPRISE_ADMIN),
    ),
    IdCase("read_document", _sme_document, lambda w: _with_roles(w, Role.ENTERPRISE_ADMIN, *_SUPERVISORS)),
    IdCase(
        "download_document", _sme_document, lambda w: _with_roles(w, Role.ENTERPRISE_ADMIN, *_SUPERVISORS)
    ),
    IdCase("revoke_consent", _sme_consent, lambda w: _with_roles(w, Role.ENTERPRISE_ADMIN)),
    IdCase("mark_notification_read", _sme_notification, lambda w: _with_roles(w, Role.ENTERPRISE_ADMIN)),
]

PERSON_EMAIL = "investor@demo.yunrong.cn"


# --- custody ---------------------------------------------------------------------------------------


def _person_deposit(world: World) -> dict[str, Any]:
    from sqlalchemy import select as _select

    from yunrong.parties.tables import BankAccount

    person = PERSON_EMAIL
    org_id = world.org_id_of(person)
    with unit_of_work(world.factory) as session:
        account = session.scalars(
            _select(BankAccount).where(BankAccount.organisation_id == uuid.UUID(org_id))
        ).first()
        assert account is not None
        account.verified_at = world.ctx.now()
        account_id = str(account.id)
    response = world.client.post(
        "/api/v1/deposits",
        json={"amount": "12.34", "bank_account_id": account_id},
        headers={**bearer(world.tokens[person]), "Idempotency-Key": uuid.uuid4().hex},
    )
    assert response.status_code == 202, response.text
    return dict(response.json())


def _instruction(world: World) -> Target:
    deposit = _person_deposit(world)
    return Target({"instruction_id": deposit["id"]}, (deposit["id"], deposit["ref"]))


def _statement(world: World) -> Target:
    _person_deposit(world)
    accounts = world.client.get("/api/v1/me/accounts", headers=bearer(world.tokens[PERSON_EMAIL])).json()
    account = next(a for a in accounts if a["purpose"] == "investor_available")
    return Target({"account_id": account["id"]}, (account["id"], account["code"]))


def _sme_bank_account(world: World) -> Target:
    sme = world.email_of(Role.ENTERPRISE_ADMIN)
    org_id = world.org_id_of(sme)
    accounts = world.client.get(
        f"/api/v1/organisations/{org_id}/bank-accounts", headers=bearer(world.tokens[sme])
    )
    account = accounts.json()[0]
    return Target(
        {"bank_account_id": account["id"]}, (account["id"],), {"evidence": "bank confirmation letter"}
    )


CASES += [
    IdCase(
        "read_custodian_instruction",
        _instruction,
        lambda w: {PERSON_EMAIL} | _with_roles(w, Role.BANK_OFFICER, *_SUPERVISORS),
    ),
    IdCase("read_account_statement", _statement, lambda w: {PERSON_EMAIL} | _with_roles(w, *_SUPERVISORS)),
    IdCase("verify_bank_account", _sme_bank_account, lambda w: _with_roles(w, Role.AGENCY_ADMIN)),
]


def _adjustment(world: World) -> Target:
    from yunrong.custody import accounts as custody_accounts
    from yunrong.custody import adjustments

    with unit_of_work(world.factory) as session:
        suspense = custody_accounts.adjustment_suspense(session, world.ctx, "CNY")
        reserve = custody_accounts.risk_reserve(session, world.ctx, "CNY")
        row = adjustments.propose(
            session,
            ctx=world.ctx,
            reason="harness secret reason",
            legs=[
                {"account_code": suspense.code, "side": "D", "amount_minor": 1},
                {"account_code": reserve.code, "side": "C", "amount_minor": 1},
            ],
        )
        return Target(
            {"adjustment_id": str(row.id)},
            (str(row.id), "harness secret reason"),
            {"approve": True, "reason": "checked"},
        )


CASES += [IdCase("decide_adjustment", _adjustment, lambda w: _with_roles(w, Role.OPERATOR_ADMIN))]


# --- demands and service orders ------------------------------------------------------------------


def _small_demand(world: World, submit: bool) -> dict[str, Any]:
    from tests.integration.verification.demand_data import demand_body

    sme = world.tokens[world.email_of(Role.ENTERPRISE_ADMIN)]
    body = demand_body(
        amount="1000.00",
        use_of_funds=[{"item": "Stock", "amount": "1000.00"}],
        project_key=f"harness-{uuid.uuid4().hex[:8]}",
        title="Harness secret title",
    )
    created = world.client.post("/api/v1/demands", json=body, headers=bearer(sme))
    assert created.status_code == 201, created.text
    if not submit:
        return dict(created.json())
    submitted = world.client.post(f"/api/v1/demands/{created.json()['id']}/submission", headers=bearer(sme))
    assert submitted.status_code == 200, submitted.text
    return dict(submitted.json())


def _demand(submit: bool, body: Any = None) -> Callable[[World], Target]:
    def make(world: World) -> Target:
        demand = _small_demand(world, submit)
        return Target(
            {"demand_id": demand["id"]}, (demand["id"], demand["ref"], "Harness secret title"), body
        )

    return make


def _order(kind: str = "credit_rating", body: Any = None) -> Callable[[World], Target]:
    def make(world: World) -> Target:
        demand = _small_demand(world, True)
        order = next(o for o in demand["orders"] if o["agency_type"] == kind)
        return Target({"order_id": order["id"]}, (order["id"], order["ref"]), body)

    return make


def _completion(world: World) -> Target:
    from datetime import timedelta

    from yunrong.demo.seed import AGENCY, demo_agency_private_key
    from yunrong.verification import attestations

    demand = _small_demand(world, True)
    order = next(o for o in demand["orders"] if o["agency_type"] == "credit_rating")
    result = {"rating": "BBB", "outlook": "stable", "methodology": "harness"}
    issued = world.ctx.now()
    until = issued + timedelta(days=365)
    agency_id = world.org_id_of(world.email_of(Role.AGENCY_ADMIN))
    canonical = attestations.canonical_form(
        order_ref=order["ref"],
        enterprise_id=uuid.UUID(demand["organisation_id"]),
        agency_id=uuid.UUID(agency_id),
        kind="credit_rating",
        subject="enterprise",
        payload=result,
        issued_at=issued,
        valid_until=until,
    )
    signature = attestations.sign(demo_agency_private_key(world.settings, AGENCY.organisation), canonical)
    body = {
        "result": result,
        "issued_at": issued.isoformat(),
        "valid_until": until.isoformat(),
        "signature": signature,
    }
    return Target({"order_id": order["id"]}, (order["id"], order["ref"]), body)


_DEMAND_READERS = (Role.ENTERPRISE_ADMIN, *_SUPERVISORS)
_ORDER_READERS = (Role.AGENCY_ADMIN, Role.ENTERPRISE_ADMIN, *_SUPERVISORS)

CASES += [
    IdCase("read_demand", _demand(True), lambda w: _with_roles(w, *_DEMAND_READERS)),
    IdCase("submit_demand", _demand(False), lambda w: _with_roles(w, Role.ENTERPRISE_ADMIN)),
    IdCase(
        "withdraw_demand",
        _demand(True, {"reason": "changed plans"}),
        lambda w: _with_roles(w, Role.ENTERPRISE_ADMIN),
    ),
    IdCase("read_service_order", _order(), lambda w: _with_roles(w, *_ORDER_READERS)),
    IdCase("accept_service_order", _order(), lambda w: _with_roles(w, Role.AGENCY_ADMIN)),
    IdCase(
        "decline_service_order",
        _order(body={"reason": "too busy"}),
        lambda w: _with_roles(w, Role.AGENCY_ADMIN),
    ),
    IdCase("complete_service_order", _completion, lambda w: _with_roles(w, Role.AGENCY_ADMIN)),
    IdCase(
        "reassign_service_order",
        _order(body={"reason": "late"}),
        lambda w: _with_roles(w, Role.OPERATOR_ADMIN),
    ),
    IdCase(
        "waive_service_order",
        _order(body={"reason": "not needed"}),
        lambda w: _with_roles(w, Role.OPERATOR_ADMIN),
    ),
]


def _custodian_statement(world: World) -> Target:
    from sqlalchemy import select as _select

    from yunrong.custody.simbank import SimBankTransaction, SimulatedBank

    deposit = _person_deposit(world)
    never_fails = world.settings.model_copy(update={"simbank_failure_rate": 0.0})
    with unit_of_work(world.factory) as session:
        SimulatedBank(never_fails, world.ctx.clock).receive(
            session,
            {
                "instruction_ref": deposit["ref"],
                "kind": "deposit",
                "amount": deposit["amount_minor"],
                "currency": "CNY",
                "owner": "Li Wei",
            },
        )
    with unit_of_work(world.factory) as session:
        booked = session.scalars(
            _select(SimBankTransaction).where(SimBankTransaction.instruction_ref == deposit["ref"])
        ).one()
        return Target(
            {"statement_date": booked.booked_on.isoformat()}, (booked.bank_reference, deposit["ref"])
        )


def _reconciliation(world: World) -> Target:
    from yunrong.custody import reconciliation

    deposit = _person_deposit(world)
    bank_reference = f"SIMHARNESS{uuid.uuid4().hex[:10].upper()}"
    day = world.ctx.now().date().isoformat()
    csv = (
        "booked_on,value_date,bank_reference,end_to_end_id,direction,amount,currency\n"
        f"{day},{day},{bank_reference},{deposit['ref']},credit,12.34,CNY\n"
    ).encode()
    with unit_of_work(world.factory) as session:
        run = reconciliation.import_statement(session, ctx=world.ctx, content=csv, format="csv")
        return Target({"run_id": str(run.id)}, (run.ref, bank_reference, deposit["ref"]))


CASES += [
    IdCase(
        "read_custodian_statement",
        _custodian_statement,
        lambda w: _with_roles(w, Role.BANK_OFFICER, *_SUPERVISORS),
    ),
    IdCase("read_reconciliation", _reconciliation, lambda w: _with_roles(w, *_SUPERVISORS)),
]


# --- verification: attestations, the credit file, listings -------------------------------------------


def _rating_order(world: World) -> uuid.UUID:
    """An accepted credit-rating order of the demo SME at the demo agency, straight in the database."""
    from yunrong.kit.ids import human_ref
    from yunrong.verification.tables import ServiceOrder

    sme = uuid.UUID(world.org_id_of(world.email_of(Role.ENTERPRISE_ADMIN)))
    agency = uuid.UUID(world.org_id_of(world.email_of(Role.AGENCY_ADMIN)))
    now = world.ctx.now()
    with unit_of_work(world.factory) as session:
        order = ServiceOrder(
            ref=human_ref("SO"),
            demand_id=None,
            enterprise_id=sme,
            agency_id=agency,
            agency_type="credit_rating",
            requested_service="*",
            service="sme_credit_rating",
            required=True,
            status="accepted",
            fee_minor=0,
            currency="CNY",
            deadline_at=None,
            assignments=1,
            status_reason=None,
            created_by="authz",
            created_at=now,
            assigned_at=now,
            accepted_at=now,
        )
        session.add(order)
        session.flush()
        return order.id


def _attestation(world: World) -> Target:
    """The demo agency's signed rating of the demo SME."""
    from datetime import timedelta

    from yunrong.demo.seed import AGENCY, demo_agency_private_key
    from yunrong.verification import attestations
    from yunrong.verification.tables import ServiceOrder

    order_id = _rating_order(world)
    agency_ctx = world.ctx_of(world.email_of(Role.AGENCY_ADMIN))
    payload = {"rating": "A", "outlook": "stable", "methodology": "harness secret methodology"}
    issued_at = world.ctx.now()
    valid_until = issued_at + timedelta(days=365)
    with unit_of_work(world.factory) as session:
        order = session.get(ServiceOrder, order_id)
        assert order is not None
        canonical = attestations.canonical_form(
            order_ref=order.ref,
            enterprise_id=order.enterprise_id,
            agency_id=agency_ctx.actor.organisation_id or uuid.uuid4(),
            kind="credit_rating",
            subject="enterprise",
            payload=payload,
            issued_at=issued_at,
            valid_until=valid_until,
        )
        row = attestations.record_attestation(
            session,
            ctx=agency_ctx,
            order=order,
            payload=payload,
            issued_at=issued_at,
            valid_until=valid_until,
            signature=attestations.sign(
                demo_agency_private_key(world.settings, AGENCY.organisation), canonical
            ),
            evidence_document_ids=[],
        )
        return Target(
            {"attestation_id": str(row.id)},
            (str(row.id), row.ref, "harness secret methodology"),
            {"reason": "harness revocation"},
        )


def _sme_file_with_order(world: World) -> Target:
    """The demo SME's credit file, with an order at the demo agency (which may then read it)."""
    _rating_order(world)
    return _org_of(Role.ENTERPRISE_ADMIN, None, "Lvyuan")(world)


def _listed_demand(world: World) -> Target:
    from decimal import Decimal

    from yunrong.demands.tables import Demand
    from yunrong.kit.ids import human_ref

    sme = uuid.UUID(world.org_id_of(world.email_of(Role.ENTERPRISE_ADMIN)))
    now = world.ctx.now()
    with unit_of_work(world.factory) as session:
        demand = Demand(
            ref=human_ref("DM"),
            organisation_id=sme,
            product="bank_loan",
            status="listed",
            title="Harness secret greenhouse",
            amount_minor=1_000_000_00,
            min_funding_minor=None,
            currency="CNY",
            term_months=12,
            repayment_method="equal_instalment",
            max_annual_rate=Decimal("9.5"),
            purpose="Harness secret purpose",
            use_of_funds=[],
            innovation={},
            collateral=[],
            guarantee_wanted=False,
            project_key=f"harness-{uuid.uuid4().hex[:8]}",
            product_facts={},
            attachment_ids=[],
            status_reason=None,
            created_by="authz",
            created_at=now,
            updated_at=now,
            submitted_at=now,
            listed_at=now,
        )
        session.add(demand)
        session.flush()
        return Target(
            {"demand_id": str(demand.id)},
            (str(demand.id), demand.ref, "Harness secret greenhouse", "Harness secret purpose"),
        )


CASES += [
    IdCase(
        "read_credit_file",
        _sme_file_with_order,
        lambda w: _with_roles(w, Role.ENTERPRISE_ADMIN, Role.AGENCY_ADMIN, *_SUPERVISORS),
    ),
    IdCase(
        "read_transparency_index",
        _sme_file_with_order,
        lambda w: _with_roles(w, Role.ENTERPRISE_ADMIN, Role.AGENCY_ADMIN, *_SUPERVISORS),
    ),
    # Public by design: anyone, even without credentials, may verify an attestation.
    IdCase("verify_attestation", _attestation, lambda w: set(w.tokens)),
    IdCase("revoke_attestation", _attestation, lambda w: _with_roles(w, Role.AGENCY_ADMIN)),
    IdCase("read_listing", _listed_demand, lambda w: _with_roles(w, Role.INVESTOR, *_SUPERVISORS)),
]


# --- credit decisions and the model registry -------------------------------------------------------

_TRAINED: dict[str, Any] = {}


def _registered_model(world: World, champion: bool = False) -> str:
    """Register a small default model (trained once per run) and optionally make it champion."""
    import shutil
    import tempfile
    from pathlib import Path

    from yunrong.decisions import registry
    from yunrong.decisions import service as decisions
    from yunrong.decisions.tables import ModelVersion

    folder = Path(tempfile.gettempdir()) / "yunrong-authz-models"
    if "path" not in _TRAINED:
        settings = world.settings.model_copy(update={"model_dir": folder / "trained"})
        with unit_of_work(world.factory) as session:
            row = decisions.train_default_model(
                session, ctx=world.ctx, settings=settings, enterprises=400, years=4, seed=3
            )
            _TRAINED["path"], _TRAINED["ref"] = row.artifact_path, row.reference_scores
            if not champion:
                return str(row.id)
    copy = folder / f"copy-{uuid.uuid4().hex[:8]}.joblib"
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_TRAINED["path"], copy)
    with unit_of_work(world.factory) as session:
        row = registry.register(
            session,
            ctx=world.ctx,
            model_dir=folder / "store",
            artifact=copy,
            reference_scores=_TRAINED["ref"],
        )
        if champion:
            session.query(ModelVersion).filter(ModelVersion.role == "champion").update({"role": "registered"})
            row.role = "champion"
        return str(row.id)


def _model(world: World) -> Target:
    model_id = _registered_model(world)
    return Target({"model_id": model_id}, (model_id,), {"target_role": "challenger", "reason": "try it"})


def _promotion(world: World) -> Target:
    from yunrong.decisions import registry

    model_id = _registered_model(world)
    with unit_of_work(world.factory) as session:
        promotion = registry.propose(
            session,
            ctx=world.ctx,
            model_id=uuid.UUID(model_id),
            target_role="challenger",
            reason="harness secret reason",
        )
        return Target(
            {"promotion_id": str(promotion.id)},
            (str(promotion.id), "harness secret reason"),
            {"approve": True, "reason": "checked"},
        )


def _decided_demand(world: World) -> tuple[str, str]:
    from yunrong.decisions import service as decisions

    _registered_model(world, champion=True)
    demand = _small_demand(world, True)
    with unit_of_work(world.factory) as session:
        decision = decisions.decide_demand(
            session, ctx=world.ctx, settings=world.settings, demand_id=uuid.UUID(demand["id"])
        )
        return demand["id"], str(decision.id)


def _decision_of_demand(world: World) -> Target:
    demand_id, decision_id = _decided_demand(world)
    return Target({"demand_id": demand_id}, (decision_id,))


def _decision(world: World) -> Target:
    _, decision_id = _decided_demand(world)
    return Target({"decision_id": decision_id}, (decision_id,), {"grade": "B", "reason": "harness"})


def _to_decide(world: World) -> Target:
    _registered_model(world, champion=True)
    demand = _small_demand(world, True)
    return Target({"demand_id": demand["id"]}, (demand["ref"],))


CASES += [
    IdCase("read_model_card", _model, lambda w: _with_roles(w, Role.OPERATOR_ADMIN, Role.REGULATOR)),
    IdCase("propose_model_promotion", _model, lambda w: _with_roles(w, Role.OPERATOR_ADMIN)),
    IdCase("decide_model_promotion", _promotion, lambda w: _with_roles(w, Role.OPERATOR_ADMIN)),
    IdCase("decide_demand", _to_decide, lambda w: _with_roles(w, Role.OPERATOR_ADMIN)),
    IdCase(
        "read_demand_decision",
        _decision_of_demand,
        lambda w: _with_roles(w, Role.ENTERPRISE_ADMIN, *_SUPERVISORS),
    ),
    IdCase("override_credit_decision", _decision, lambda w: _with_roles(w, Role.OPERATOR_ADMIN)),
]


# --- credit data imports -------------------------------------------------------------------------


def _sme_import(world: World) -> Target:
    """The demo SME's balance-sheet import (the harness sends no file: see ok_statuses)."""
    target = _org_of(Role.ENTERPRISE_ADMIN, None, "Lvyuan")(world)
    return Target({**target.path_params, "kind": "balance_sheet"}, target.secrets)


def _dataset_template(world: World) -> Target:
    """``kind`` names a public schema, not an object anybody owns: there is nothing to hide."""
    return Target({"kind": "balance_sheet"}, ())


def _sme_feed(world: World) -> Target:
    """A data-feed batch about the demo SME, whose order the demo agency works on."""
    _rating_order(world)
    sme = world.org_id_of(world.email_of(Role.ENTERPRISE_ADMIN))
    rows = [{"period": "2026-10", "insured_headcount": 12, "contribution_paid": "3600.00"}]
    return Target({"kind": "social_insurance"}, (sme, "Lvyuan"), {"enterprise_id": sme, "rows": rows})


CASES += [
    # 422: the admin got past authorization and is told that no file came (the harness sends JSON).
    IdCase(
        "import_enterprise_data",
        _sme_import,
        lambda w: _with_roles(w, Role.ENTERPRISE_ADMIN),
        ok_statuses=frozenset({200, 422}),
    ),
    # Public by design, like verify_attestation: `kind` is a path parameter but not an owned id.
    IdCase("download_dataset_template", _dataset_template, lambda w: set(w.tokens)),
    IdCase(
        "feed_enterprise_data",
        _sme_feed,
        lambda w: _with_roles(w, Role.OPERATOR_ADMIN, Role.AGENCY_ADMIN, Role.AGENCY_ANALYST),
    ),
]


def _rule(world: World) -> Target:
    from yunrong.demands.model import Product
    from yunrong.parties.model import AgencyType
    from yunrong.verification import orders as order_service

    with unit_of_work(world.factory) as session:
        rule = order_service.set_rule(
            session,
            ctx=world.ctx,
            product=Product.BANK_LOAN,
            agency_type=AgencyType.INSURANCE,
            service=f"harness_{uuid.uuid4().hex[:6]}",
            required=False,
            description="harness secret rule",
        )
        return Target({"rule_id": str(rule.id)}, (str(rule.id), "harness secret rule"))


CASES += [
    IdCase(
        "delete_service_rule",
        _rule,
        lambda w: _with_roles(w, Role.OPERATOR_ADMIN),
        ok_statuses=frozenset({204}),
    )
]


# --- steps 5 and 6: funding rounds, commitments, loans ---------------------------------------------


def _p2p_round(world: World, amount_minor: int = 1_000_000_00) -> str:
    """A listed P2P demand of the demo SME with a priced decision and an open funding round."""
    from datetime import timedelta
    from decimal import Decimal

    from yunrong.decisions.tables import CreditDecision, ModelVersion
    from yunrong.demands.tables import Demand
    from yunrong.investing import service as investing
    from yunrong.kit.ids import human_ref

    sme = uuid.UUID(world.org_id_of(world.email_of(Role.ENTERPRISE_ADMIN)))
    now = world.ctx.now() - timedelta(seconds=1)
    with unit_of_work(world.factory) as session:
        demand = Demand(
            ref=human_ref("DM"),
            organisation_id=sme,
            product="p2p_loan",
            status="listed",
            title="Harness secret orchard",
            amount_minor=amount_minor,
            min_funding_minor=None,
            currency="CNY",
            term_months=12,
            repayment_method="equal_instalment",
            max_annual_rate=Decimal("9.5"),
            purpose="Harness secret purpose",
            use_of_funds=[],
            innovation={},
            collateral=[],
            guarantee_wanted=False,
            project_key=f"harness-{uuid.uuid4().hex[:8]}",
            product_facts={},
            attachment_ids=[],
            status_reason=None,
            created_by="authz",
            created_at=now,
            updated_at=now,
            submitted_at=now,
            listed_at=now,
        )
        session.add(demand)
        model_row = ModelVersion(
            name="harness",
            version=1,
            role="retired",
            artifact_path="-",
            artifact_sha256="0" * 64,
            card={},
            reference_scores={},
            registered_by="authz",
            registered_at=now,
        )
        session.add(model_row)
        session.flush()
        session.add(
            CreditDecision(
                demand_id=demand.id,
                model_id=model_row.id,
                as_of=now,
                features={},
                pd=0.02,
                score=650.0,
                grade="A",
                declined=False,
                annual_rate=Decimal("0.08"),
                limit_minor=amount_minor,
                price={},
                reasons=[],
                decided_at=now,
            )
        )
        session.flush()
        assert investing.open_round(session, ctx=world.ctx, demand=demand, settings=world.settings)
        return str(demand.id)


def _fund_investor(world: World, email: str, amount_minor: int) -> None:
    """Money in the investor's escrow sub-account, booked as a confirmed deposit would be (the
    deposit path itself is tested in tests/integration/custody)."""
    from yunrong.custody import accounts
    from yunrong.custody.service import platform_custodian
    from yunrong.identity.tables import Organisation
    from yunrong.ledger import service as ledger
    from yunrong.ledger.model import transfer
    from yunrong.parties.tables import Investor

    with unit_of_work(world.factory) as session:
        org = session.get(Organisation, uuid.UUID(world.org_id_of(email)))
        assert org is not None
        investor = session.get(Investor, org.id)
        if investor is not None:
            investor.risk_level = "C5"
        escrow = accounts.escrow_cash(session, world.ctx, platform_custodian(session), "CNY")
        mine = accounts.investor_available(session, world.ctx, org, "CNY")
        ledger.post_entry(
            session,
            ctx=world.ctx,
            legs=transfer(escrow.id, mine.id, amount_minor, "CNY"),
            kind="deposit",
            description="harness deposit",
        )


def _commitment_of(world: World, amount_minor: int, demand_id: str) -> tuple[str, str]:
    from yunrong.investing import service as investing

    email = world.email_of(Role.INVESTOR)
    if not email.startswith("investor@"):
        email = "investor@demo.yunrong.cn"
    _fund_investor(world, email, amount_minor)
    with unit_of_work(world.factory) as session:
        row = investing.create_commitment(
            session,
            ctx=world.ctx_of(email),
            settings=world.settings,
            req=investing.CommitRequest(
                demand_id=uuid.UUID(demand_id), amount=amount_minor, currency="CNY", accept_agreement=True
            ),
        )
        return str(row.id), row.ref


def _commitment(world: World) -> Target:
    demand_id = _p2p_round(world)
    commitment_id, ref = _commitment_of(world, 500_000, demand_id)
    return Target({"commitment_id": commitment_id}, (commitment_id, ref), {"reason": "harness"})


def _round(world: World) -> Target:
    demand_id = _p2p_round(world)
    return Target({"demand_id": demand_id}, ("Harness secret orchard",), {"accept_partial": False})


def _loan(world: World) -> Target:
    """A funded P2P loan awaiting the borrower's acceptance (its bank account verified)."""
    from sqlalchemy import select

    from yunrong.investing import loans
    from yunrong.investing import service as investing
    from yunrong.parties.tables import BankAccount

    demand_id = _p2p_round(world, amount_minor=200_000)
    _commitment_of(world, 200_000, demand_id)
    sme = uuid.UUID(world.org_id_of(world.email_of(Role.ENTERPRISE_ADMIN)))
    with unit_of_work(world.factory) as session:
        for account in session.scalars(select(BankAccount).where(BankAccount.organisation_id == sme)):
            account.verified_at = world.ctx.now()
            account.verified_by = "authz"
        funding = investing.round_of(session, uuid.UUID(demand_id))
        assert funding is not None
        assert funding.loan_id is not None
        loan = loans.visible_loan(session, ctx=world.ctx, loan_id=funding.loan_id)
        sha = loans.agreement_of(session, loan.id).sha256
        return Target({"loan_id": str(loan.id)}, (str(loan.id), loan.ref), {"sha256": sha})


def _investor_owner(world: World) -> set[str]:
    return {"investor@demo.yunrong.cn"} & set(world.tokens)


CASES += [
    IdCase(
        "read_commitment",
        _commitment,
        lambda w: _investor_owner(w) | _with_roles(w, Role.ENTERPRISE_ADMIN, *_SUPERVISORS),
    ),
    IdCase("cancel_commitment", _commitment, _investor_owner),
    IdCase(
        "read_funding_round",
        _round,
        lambda w: _with_roles(w, Role.INVESTOR, Role.ENTERPRISE_ADMIN, Role.ENTERPRISE_STAFF, *_SUPERVISORS),
    ),
    IdCase("set_partial_funding", _round, lambda w: _with_roles(w, Role.ENTERPRISE_ADMIN)),
    IdCase(
        "read_loan",
        _loan,
        lambda w: (
            _investor_owner(w) | _with_roles(w, Role.ENTERPRISE_ADMIN, Role.ENTERPRISE_STAFF, *_SUPERVISORS)
        ),
    ),
    IdCase(
        "read_loan_agreement",
        _loan,
        lambda w: (
            _investor_owner(w) | _with_roles(w, Role.ENTERPRISE_ADMIN, Role.ENTERPRISE_STAFF, *_SUPERVISORS)
        ),
    ),
    IdCase("accept_loan_agreement", _loan, lambda w: _with_roles(w, Role.ENTERPRISE_ADMIN)),
    IdCase(
        "read_loan_statement",
        _loan,
        lambda w: _with_roles(w, Role.ENTERPRISE_ADMIN, Role.ENTERPRISE_STAFF, *_SUPERVISORS),
    ),
    IdCase(
        "read_loan_schedule",
        _loan,
        lambda w: (
            _investor_owner(w) | _with_roles(w, Role.ENTERPRISE_ADMIN, Role.ENTERPRISE_STAFF, *_SUPERVISORS)
        ),
    ),
]


def _bank_offer(world: World) -> Target:
    """An open offer of the demo bank on a listed bank-loan demand of the demo SME."""
    from datetime import timedelta
    from decimal import Decimal

    from yunrong.investing import offers

    demand = _listed_demand(world)
    with unit_of_work(world.factory) as session:
        offer = offers.create_offer(
            session,
            ctx=world.ctx_of("bank@demo.yunrong.cn"),
            settings=world.settings,
            req=offers.OfferRequest(
                demand_id=uuid.UUID(demand.path_params["demand_id"]),
                amount=100_000_00,
                currency="CNY",
                annual_rate=Decimal("0.06"),
                term_months=12,
                repayment_method="equal_instalment",
                conditions="Harness secret conditions",
                valid_until=world.ctx.now() + timedelta(days=7),
            ),
        )
        return Target(
            {"offer_id": str(offer.id)},
            (str(offer.id), offer.ref, "Harness secret conditions"),
            {"reason": "harness"},
        )


def _bank(world: World) -> set[str]:
    return {"bank@demo.yunrong.cn"} & set(world.tokens)


CASES += [
    IdCase(
        "read_offer",
        _bank_offer,
        lambda w: _bank(w) | _with_roles(w, Role.ENTERPRISE_ADMIN, Role.ENTERPRISE_STAFF, *_SUPERVISORS),
    ),
    IdCase("withdraw_offer", _bank_offer, _bank),
    IdCase("decline_offer", _bank_offer, lambda w: _with_roles(w, Role.ENTERPRISE_ADMIN)),
    # 422: the enterprise got past authorization and is asked for an Idempotency-Key.
    IdCase(
        "accept_offer",
        _bank_offer,
        lambda w: _with_roles(w, Role.ENTERPRISE_ADMIN),
        ok_statuses=frozenset({422}),
    ),
]


def _autoinvest_rule(world: World) -> Target:
    from yunrong.investing import autoinvest

    with unit_of_work(world.factory) as session:
        rule = autoinvest.create_rule(
            session,
            ctx=world.ctx_of("investor@demo.yunrong.cn"),
            data=autoinvest.RuleIn(
                name="Harness secret rule",
                currency="CNY",
                amount_per_loan_minor=100_000,
                max_share_of_loan_bp=2_000,
                max_per_enterprise_minor=500_000,
                max_industry_bp=3_000,
                max_region_bp=5_000,
                max_grade_bp=5_000,
                grades=frozenset({"A"}),
                products=frozenset(),
                min_transparency=0,
            ),
        )
        return Target(
            {"rule_id": str(rule.id)}, (str(rule.id), rule.ref, "Harness secret rule"), {"active": False}
        )


CASES += [IdCase("set_autoinvest_rule_active", _autoinvest_rule, _investor_owner)]


def _repayment_target(world: World, body: dict[str, Any] | None, active: bool) -> Target:
    """The harness's loan (awaiting acceptance) with a valid body; ``active``: also accepted and
    paid out (the custodian's confirmation applied as a signed callback)."""
    from dataclasses import replace

    from yunrong.custody import service as custody
    from yunrong.custody.model import sign
    from yunrong.custody.tables import Instruction
    from yunrong.investing.tables import Loan

    target = _loan(world)
    if active:
        sme = world.tokens[world.email_of(Role.ENTERPRISE_ADMIN)]
        loan_id = target.path_params["loan_id"]
        accepted = world.client.post(
            f"/api/v1/loans/{loan_id}/agreement/accept", json=target.body, headers=bearer(sme)
        )
        assert accepted.status_code == 200, accepted.text
        with unit_of_work(world.factory) as session:
            loan = session.get(Loan, uuid.UUID(loan_id))
            assert loan is not None
            instruction = session.get(Instruction, loan.payout_instruction_id)
            assert instruction is not None
            raw = custody.encode_body(
                {
                    "callback_id": uuid.uuid4().hex,
                    "instruction_ref": instruction.ref,
                    "status": "confirmed",
                    "amount": instruction.amount,
                    "currency": instruction.currency,
                }
            )
            stamp = str(int(world.ctx.now().timestamp()))
            secret = custody.callback_secret(world.settings)
            custody.apply_callback(
                session,
                ctx=world.ctx,
                settings=world.settings,
                body=raw,
                timestamp=stamp,
                signature=sign(secret, stamp, raw),
            )
            assert loan.status == "active"
    return replace(target, body=body)


CASES += [
    # 422: the borrower got past authorization and is asked for an Idempotency-Key.
    IdCase(
        "create_repayment",
        lambda w: _repayment_target(w, {"amount": "100.00"}, active=False),
        lambda w: _with_roles(w, Role.ENTERPRISE_ADMIN),
        ok_statuses=frozenset({422}),
    ),
    IdCase(
        "list_repayments",
        lambda w: _repayment_target(w, None, active=False),
        lambda w: (
            _investor_owner(w) | _with_roles(w, Role.ENTERPRISE_ADMIN, Role.ENTERPRISE_STAFF, *_SUPERVISORS)
        ),
    ),
    IdCase(
        "preview_repayment",
        lambda w: _repayment_target(
            w, {"amount": "100.00", "early_option": "smaller_instalment"}, active=True
        ),
        lambda w: _with_roles(w, Role.ENTERPRISE_ADMIN, Role.ENTERPRISE_STAFF, *_SUPERVISORS),
    ),
]


# --- step 7: restructurings, defaults (to append to tests/integration/authz.py) ---------------------


def _active_loan(world: World, body: Any = None) -> Target:
    """The harness loan, accepted and paid out (servicing started as on the custodian's confirmation)."""
    from yunrong.investing.tables import Loan
    from yunrong.servicing.service import activate

    target = _loan(world)
    with unit_of_work(world.factory) as session:
        loan = session.get(Loan, uuid.UUID(target.path_params["loan_id"]))
        assert loan is not None
        loan.status, loan.disbursed_at = "active", world.ctx.now()
        activate(session, ctx=world.ctx, loan=loan, settings=world.settings)
    return Target(target.path_params, target.secrets, body)


def _active_loan_with(body: Any) -> Callable[[World], Target]:
    return lambda world: _active_loan(world, body)


def _restructuring(world: World) -> Target:
    from yunrong.servicing import restructuring

    loan = _active_loan(world)
    with unit_of_work(world.factory) as session:
        row = restructuring.create_restructuring(
            session,
            ctx=world.ctx,
            loan_id=uuid.UUID(loan.path_params["loan_id"]),
            kind="reamortisation",
            months=0,
            reason="Harness secret reason",
        )
        return Target(
            {"restructuring_id": str(row.id)},
            (str(row.id), row.ref, "Harness secret reason"),
            {"approve": True},
        )


def _claim(world: World) -> Target:
    """An open guarantee claim on the harness loan, payable by the demo agency."""
    from datetime import timedelta

    from yunrong.kit.ids import human_ref
    from yunrong.servicing.tables import Claim

    loan = _active_loan(world)
    payer = uuid.UUID(world.org_id_of("agency@demo.yunrong.cn"))
    with unit_of_work(world.factory) as session:
        claim = Claim(
            ref=human_ref("CL", 10),
            loan_id=uuid.UUID(loan.path_params["loan_id"]),
            kind="guarantee",
            payer_org_id=payer,
            coverage_bp=8_000,
            amount_minor=100_000,
            currency="CNY",
            status="open",
            deadline=world.ctx.now().date() + timedelta(days=7),
            created_at=world.ctx.now(),
            subrogated_minor=0,
        )
        session.add(claim)
        session.flush()
        return Target({"claim_id": str(claim.id)}, (str(claim.id), claim.ref), None)


CASES += [
    IdCase(
        "create_restructuring",
        _active_loan_with({"kind": "reamortisation", "reason": "harness"}),
        lambda w: _with_roles(w, Role.ENTERPRISE_ADMIN, Role.OPERATOR_ADMIN),
        ok_statuses=frozenset({201}),
    ),
    IdCase(
        "read_restructuring",
        _restructuring,
        lambda w: (
            _investor_owner(w) | _with_roles(w, Role.ENTERPRISE_ADMIN, Role.ENTERPRISE_STAFF, *_SUPERVISORS)
        ),
    ),
    IdCase("vote_restructuring", _restructuring, _investor_owner),
    # 409: the operator got past authorization; the harness loan is not past due (or not written off).
    IdCase(
        "create_guarantee_claim",
        _active_loan,
        lambda w: _with_roles(w, Role.OPERATOR_ADMIN),
        ok_statuses=frozenset({409}),
    ),
    IdCase(
        "create_insurance_claim",
        _active_loan,
        lambda w: _with_roles(w, Role.OPERATOR_ADMIN),
        ok_statuses=frozenset({409}),
    ),
    IdCase(
        "start_collections",
        _active_loan_with({"note": "harness"}),
        lambda w: _with_roles(w, Role.OPERATOR_ADMIN),
        ok_statuses=frozenset({409}),
    ),
    # 422: past authorization, asked for an Idempotency-Key.
    IdCase(
        "write_off_loan",
        _active_loan_with({"reason": "harness"}),
        lambda w: _with_roles(w, Role.OPERATOR_ADMIN),
        ok_statuses=frozenset({422}),
    ),
    IdCase(
        "create_recovery",
        _active_loan_with({"amount": "1.00"}),
        lambda w: _with_roles(w, Role.OPERATOR_ADMIN),
        ok_statuses=frozenset({422}),
    ),
    IdCase(
        "read_claim",
        _claim,
        lambda w: (
            _investor_owner(w)
            | _with_roles(
                w,
                Role.ENTERPRISE_ADMIN,
                Role.ENTERPRISE_STAFF,
                Role.AGENCY_ADMIN,
                Role.AGENCY_ANALYST,
                *_SUPERVISORS,
            )
        ),
    ),
    IdCase(
        "pay_claim",
        _claim,
        lambda w: _with_roles(w, Role.AGENCY_ADMIN, Role.OPERATOR_ADMIN),
        ok_statuses=frozenset({422}),
    ),
]


def operations_with_ids(openapi: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """operationId → (method, path) for every operation whose path has a parameter."""
    found: dict[str, tuple[str, str]] = {}
    for path, methods in openapi["paths"].items():
        if "{" not in path:
            continue
        for method, op in methods.items():
            found[op["operationId"]] = (method.upper(), path)
    return found
