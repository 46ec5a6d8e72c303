"""Defaults: the guarantor is called after the policy's days past due, pays its covered share from
its deposit in escrow, the money reaches the note holders pro rata and the guarantor takes over that
claim; then collections, write-off (with the risk reserve) and a recovery distributed like a
repayment. Every ledger balance is asserted and the ledger verifies after each step."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import bearer, login_token
from tests.integration.investing.conftest import (  # noqa: F401  (fixtures)
    INSTITUTION,
    INVESTOR,
    OPERATOR,
    REGULATOR,
    SME,
    Drain,
    available,
    drain,
    settings,
    verified,
)
from tests.integration.servicing.test_restructuring import (  # noqa: F401  (fixtures)
    active_p2p_loan,
    app,
    client,
)
from yunrong.config import Settings
from yunrong.custody import accounts
from yunrong.db import unit_of_work
from yunrong.identity import service as identity
from yunrong.identity.model import Actor, Context, OrgType, Role
from yunrong.identity.security import totp_now
from yunrong.identity.tables import Organisation
from yunrong.investing.tables import Loan
from yunrong.kit.clock import FrozenClock
from yunrong.kit.ids import human_ref
from yunrong.ledger import service as ledger
from yunrong.ledger.model import transfer
from yunrong.ledger.verify import first_violation
from yunrong.parties import codes
from yunrong.parties import service as parties
from yunrong.parties.tables import Agency, BankAccount
from yunrong.servicing import defaults
from yunrong.servicing.tables import Distribution, Instalment, LoanServicing
from yunrong.supervision.tables import AuditRecord
from yunrong.verification.attestations import canonical_form, public_key_of, record_attestation, sign
from yunrong.verification.tables import ServiceOrder

PASSWORD = "guarantor-test-password-2026"
PRINCIPAL = 10_000_000
FEE = PRINCIPAL * 50 // 10_000  # the disclosed platform fee at the default 50 bp


def _ctx(clock: FrozenClock) -> Context:
    return Context(actor=Actor.system("test"), clock=clock, request_id="test")


def _guarantor(
    client: TestClient,  # noqa: F811
    factory: sessionmaker[Session],
    settings: Settings,  # noqa: F811
    clock: FrozenClock,
    loan_id: str,
    payload: dict[str, Any],
    kind: str = "guarantee",
) -> tuple[str, str]:
    """An admitted guarantee (or insurance) agency that signed its commitment on the loan's demand,
    through the real attestation path; its own bank account verified. Returns (token, org id)."""
    ctx = _ctx(clock)
    tag = uuid.uuid4().hex[:6]
    email = f"{kind}-{tag}@agency.example.cn"
    seed = bytes.fromhex(uuid.uuid4().hex * 2)
    with unit_of_work(factory) as session:
        org = identity.create_organisation(
            session, ctx=ctx, org_type=OrgType.AGENCY, name=f"{kind} agency {tag}"
        )
        _, secret = identity.create_user(
            session,
            ctx=ctx,
            settings=settings,
            organisation_id=org.id,
            email=email,
            name="Guarantor",
            password=PASSWORD,
            roles=frozenset({Role.AGENCY_ADMIN}),
            enrol_totp=True,
        )
        session.add(
            Agency(
                organisation_id=org.id,
                credit_code=codes.make_uscc("91320100" + uuid.uuid4().hex[:9].upper().replace("I", "1")
                                            .replace("O", "0").replace("Z", "2").replace("S", "5")
                                            .replace("V", "7")),
                licence_number=f"LIC-{tag}",
                types=[kind],
                region_code="320100",
                public_key=public_key_of(seed),
                simulated=False,
                created_at=clock.now(),
            )
        )  # fmt: skip
        qualification = parties.open_qualification(session, ctx=ctx, org=org)
        qualification.status = "approved"
        loan = session.get(Loan, uuid.UUID(loan_id))
        assert loan is not None
        order = ServiceOrder(
            ref=human_ref("SO"),
            demand_id=loan.demand_id,
            enterprise_id=loan.enterprise_org_id,
            agency_id=org.id,
            agency_type=kind,
            requested_service="*",
            service="loan_guarantee" if kind == "guarantee" else "credit_insurance",
            required=True,
            status="accepted",
            fee_minor=0,
            currency="CNY",
            deadline_at=clock.now() + timedelta(days=5),
            assignments=1,
            created_by="test",
            created_at=clock.now(),
        )
        session.add(order)
        session.flush()
        issued, until = clock.now() - timedelta(minutes=1), clock.now() + timedelta(days=400)
        canonical = canonical_form(
            order_ref=order.ref,
            enterprise_id=order.enterprise_id,
            agency_id=org.id,
            kind=kind,
            subject="financing" if kind == "guarantee" else "insurance_policy",
            payload=payload,
            issued_at=issued,
            valid_until=until,
        )
        agency_ctx = Context(actor=Actor.system("agency"), clock=clock, request_id="test")
        record_attestation(
            session,
            ctx=agency_ctx,
            order=order,
            payload=payload,
            issued_at=issued,
            valid_until=until,
            signature=sign(seed, canonical),
            evidence_document_ids=[],
        )
        org_id = str(org.id)
    assert secret is not None
    token = login_token(client, email, PASSWORD, totp=totp_now(secret, clock.now()))
    created = client.post(
        f"/api/v1/organisations/{org_id}/bank-accounts",
        json={
            "bank_name": "Bank of Nanjing",
            "account_name": "Deposit",
            "account_number": "6222020200000077",
        },
        headers=bearer(token),
    )
    assert created.status_code == 201, created.text
    with unit_of_work(factory) as session:
        account = session.get(BankAccount, uuid.UUID(created.json()["id"]))
        assert account is not None
        account.verified_at, account.verified_by = clock.now(), "test"
    return token, org_id


def _overdue(
    factory: sessionmaker[Session], clock: FrozenClock, loan_id: str, dpd: int, interest: int
) -> None:
    """What the end of day would have written by now: days past due, and interest accrued on the
    servicing row and on the memo loan book (DR loan_book, CR investor_claims)."""
    with unit_of_work(factory) as session:
        servicing = session.get(LoanServicing, uuid.UUID(loan_id))
        assert servicing is not None
        added = interest - servicing.interest_accrued
        servicing.days_past_due = dpd
        servicing.interest_accrued = interest
        servicing.state = "non_performing" if dpd > 90 else "delinquent"
        if added:
            ctx = _ctx(clock)
            ledger.post_entry(
                session,
                ctx=ctx,
                legs=transfer(
                    accounts.loan_book(session, ctx, "CNY").id,
                    accounts.investor_claims(session, ctx, "CNY").id,
                    added,
                    "CNY",
                ),
                kind="interest_accrual",
                description="test: accrued interest as the end of day books it",
            )


def _classes(client: TestClient, token: str) -> dict[str, int]:  # noqa: F811
    flows = client.get("/api/v1/fund-flows", headers=bearer(token)).json()
    return {c["purpose"]: int(c["balance_minor"]) for c in flows["classes"]}


def _key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


def _balance(factory: sessionmaker[Session], clock: FrozenClock, org_id: str, purpose: str) -> int:
    with unit_of_work(factory) as session:
        org = session.get(Organisation, uuid.UUID(org_id))
        assert org is not None
        account = getattr(accounts, purpose)(session, _ctx(clock), org, "CNY")
        return int(ledger.balance(session, account.id).posted)


def test_a_default_is_called_on_the_guarantor_paid_distributed_and_subrogated(
    client: TestClient,  # noqa: F811
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,  # noqa: F811
    clock: FrozenClock,
    verified: None,  # noqa: F811
    drain: Drain,  # noqa: F811
) -> None:
    loan_id = active_p2p_loan(client, tokens, factory, settings, clock, drain)
    token, guarantor = _guarantor(
        client,
        factory,
        settings,
        clock,
        loan_id,
        {"coverage_percent": "80", "cap_minor": PRINCIPAL, "fee_percent": "2.00", "term_months": 12,
         "currency": "CNY"},
    )  # fmt: skip
    op = tokens[OPERATOR]
    claim_url = f"/api/v1/loans/{loan_id}/guarantee-claims"
    # Not yet: 29 days past due under cn-2016's 30.
    _overdue(factory, clock, loan_id, 29, 123_457)
    assert client.post(claim_url, headers=bearer(op)).status_code == 409
    _overdue(factory, clock, loan_id, settings.policy.guarantee_call_days, 123_457)
    assert client.post(claim_url, headers=bearer(tokens[INVESTOR])).status_code == 403
    assert (
        client.post(f"/api/v1/loans/{uuid.uuid4()}/guarantee-claims", headers=bearer(op)).status_code == 404
    )
    assert client.post(f"/api/v1/loans/{loan_id}/insurance-claims", headers=bearer(op)).status_code == 409
    made = client.post(claim_url, headers=bearer(op))
    assert made.status_code == 201, made.text
    claim = made.json()
    # 80 % × (10,000,000 + 123,457) = 8,098,765.6 → 8,098,766 (half-even to the fen)
    assert claim["amount_minor"] == 8_098_766
    assert claim["coverage_bp"] == 8_000
    assert claim["status"] == "open"
    assert claim["payer_org_id"] == guarantor
    assert client.post(claim_url, headers=bearer(op)).status_code == 409  # one claim per kind
    schedule = client.get(f"/api/v1/loans/{loan_id}/schedule", headers=bearer(tokens[SME])).json()
    assert schedule["state"] == "defaulted"
    claim_id = claim["id"]
    assert client.get(f"/api/v1/claims/{claim_id}", headers=bearer(token)).status_code == 200
    assert client.get(f"/api/v1/claims/{claim_id}", headers=bearer(tokens[SME])).status_code == 200
    assert client.get(f"/api/v1/claims/{claim_id}", headers=bearer(tokens[INVESTOR])).status_code == 200
    assert client.get(f"/api/v1/claims/{uuid.uuid4()}", headers=bearer(op)).status_code == 404

    # Without a deposit the guarantor cannot pay: refused, nothing moves.
    pay_url = f"/api/v1/claims/{claim_id}/payment"
    broke = client.post(pay_url, headers={**bearer(token), **_key()})
    assert broke.status_code == 409, broke.text
    assert client.post(pay_url, headers={**bearer(tokens[INVESTOR]), **_key()}).status_code == 403
    # The guarantor pays 90,000.00 into its deposit through the custodian.
    funded = client.post(
        "/api/v1/guarantor-deposits", json={"amount": "90000.00"}, headers={**bearer(token), **_key()}
    )
    assert funded.status_code == 202, funded.text
    assert (
        client.post(
            "/api/v1/guarantor-deposits",
            json={"amount": "1.00"},
            headers={**bearer(tokens[INVESTOR]), **_key()},
        ).status_code
        == 403
    )
    drain()
    assert _balance(factory, clock, guarantor, "guarantor_deposit") == 9_000_000
    investor_before = available(client, tokens[INVESTOR])
    institution_before = available(client, tokens[INSTITUTION])
    assert (investor_before, institution_before) == (14_000_000, 16_000_000)

    key = _key()
    paid = client.post(pay_url, headers={**bearer(token), **key})
    assert paid.status_code == 200, paid.text
    replay = client.post(pay_url, headers={**bearer(token), **key})
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == paid.json()
    assert client.post(pay_url, headers={**bearer(token), **_key()}).status_code == 409  # paid already
    body = paid.json()
    assert body["status"] == "paid"
    assert body["subrogated_minor"] == 8_098_766
    # Interest first (123,457), then principal (7,975,309); the note holders keep the rest.
    assert body["investors_part_minor"] == PRINCIPAL - 7_975_309 == 2_024_691
    assert body["payer_part_minor"] == 8_098_766

    # 60/40 by largest remainder: interest 74,074 / 49,383; principal 4,785,185 / 3,190,124.
    assert available(client, tokens[INVESTOR]) == investor_before + 74_074 + 4_785_185
    assert available(client, tokens[INSTITUTION]) == institution_before + 49_383 + 3_190_124
    with factory() as session:
        rows = session.scalars(
            select(Distribution)
            .where(Distribution.source_kind == "guarantee")
            .order_by(Distribution.net.desc())
        ).all()
        assert [(r.principal, r.interest, r.service_fee, r.net) for r in rows] == [
            (4_785_185, 74_074, 0, 4_859_259),
            (3_190_124, 49_383, 0, 3_239_507),
        ]
        servicing = session.get(LoanServicing, uuid.UUID(loan_id))
        assert servicing is not None
        assert (servicing.principal_outstanding, servicing.interest_accrued) == (2_024_691, 0)
        unpaid = session.scalar(
            select(func.sum(Instalment.principal_due - Instalment.principal_paid)).where(
                Instalment.loan_id == uuid.UUID(loan_id), Instalment.version == 1
            )
        )
        assert unpaid == 2_024_691
        assert first_violation(session) is None
    assert _balance(factory, clock, guarantor, "guarantor_deposit") == 9_000_000 - 8_098_766
    classes = _classes(client, tokens[REGULATOR])
    assert classes["escrow_cash"] == 40_000_000 - (PRINCIPAL - FEE) + 9_000_000
    assert classes["investor_available"] == 14_000_000 + 16_000_000 + 8_098_766
    assert classes["guarantor_deposit"] == 901_234
    assert classes["loan_collection"] == 0
    assert classes["platform_fee_income"] == FEE
    assert classes["enterprise_payout"] == 0
    assert classes["loan_book"] == classes["investor_claims"] == PRINCIPAL + 123_457 - 8_098_766

    # The ECL report sees the loan in stage 3 with its guarantee used up: LGD 45 % of 2,024,691.
    report = client.get("/api/v1/reports/ecl", headers=bearer(tokens[REGULATOR]))
    assert report.status_code == 200, report.text
    (line,) = report.json()["loans"]
    assert (line["stage"], line["ead_minor"], line["covered_minor"]) == (3, 2_024_691, 0)
    assert line["ecl_minor"] == 911_111  # 0.45 × 2,024,691 = 911,110.95
    assert report.json()["by_stage"] == [
        {"key": "3", "loans": 1, "ead_minor": 2_024_691, "ecl_minor": 911_111, "coverage": "0.450000"}
    ]
    csv_text = client.get("/api/v1/reports/ecl?format=csv", headers=bearer(op)).text
    assert "911111" in csv_text
    assert client.get("/api/v1/reports/ecl", headers=bearer(tokens[INVESTOR])).status_code == 403
    with factory() as session:
        actions = set(session.scalars(select(AuditRecord.action)).all())
        assert {"loan.guarantee_claimed", "loan.guarantee_paid"} <= actions


def test_write_off_with_the_risk_reserve_then_a_recovery_is_distributed(
    client: TestClient,  # noqa: F811
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,  # noqa: F811
    clock: FrozenClock,
    verified: None,  # noqa: F811
    drain: Drain,  # noqa: F811
) -> None:
    loan_id = active_p2p_loan(client, tokens, factory, settings, clock, drain)
    op = tokens[OPERATOR]
    write_off = f"/api/v1/loans/{loan_id}/write-off"
    # A performing loan is not written off, nor recovered on.
    refused = client.post(write_off, json={"reason": "x"}, headers={**bearer(op), **_key()})
    assert refused.status_code == 409, refused.text
    recovery_url = f"/api/v1/loans/{loan_id}/recoveries"
    assert (
        client.post(recovery_url, json={"amount": "1.00"}, headers={**bearer(op), **_key()}).status_code
        == 409
    )

    # The platform sets 10,000 fen of its disclosed fee aside in the risk reserve.
    with unit_of_work(factory) as session:
        defaults.fund_risk_reserve(session, ctx=_ctx(clock), currency="CNY", amount=10_000)
    reserve = client.get("/api/v1/risk-reserve", headers=bearer(tokens[INVESTOR]))
    assert reserve.status_code == 200, reserve.text
    assert reserve.json()["balance_minor"] == 10_000
    assert reserve.json()["covered_principal_minor"] == PRINCIPAL
    assert reserve.json()["coverage_ratio"] == "0.001000"
    assert reserve.json()["is_guarantee"] is False
    assert "not a guarantee" in reserve.json()["disclosure_en"]

    _overdue(factory, clock, loan_id, 95, 250_000)
    collections = client.post(
        f"/api/v1/loans/{loan_id}/collections", json={"note": "Handed to the collector"}, headers=bearer(op)
    )
    assert collections.status_code == 200, collections.text
    assert collections.json()["state"] == "defaulted"
    assert (
        client.post(
            write_off, json={"reason": "x"}, headers={**bearer(tokens[INVESTOR]), **_key()}
        ).status_code
        == 403
    )
    assert client.post(write_off, json={"reason": ""}, headers={**bearer(op), **_key()}).status_code == 422
    investor_before = available(client, tokens[INVESTOR])
    institution_before = available(client, tokens[INSTITUTION])
    done = client.post(
        write_off,
        json={"reason": "Enterprise insolvent; collector found no assets", "use_risk_reserve": True},
        headers={**bearer(op), **_key()},
    )
    assert done.status_code == 200, done.text
    # The reserve covers the loss at its coverage ratio (0.1 % of 10,000,000 = 10,000), the rest is
    # written off: 9,990,000 principal + 250,000 interest.
    assert done.json()["reserve_paid_minor"] == 10_000
    assert done.json()["written_off_minor"] == 10_240_000
    assert done.json()["state"] == "written_off"
    assert available(client, tokens[INVESTOR]) == investor_before + 6_000
    assert available(client, tokens[INSTITUTION]) == institution_before + 4_000
    classes = _classes(client, tokens[REGULATOR])
    assert classes["loan_book"] == classes["investor_claims"] == 0
    assert classes["risk_reserve"] == 0
    assert classes["platform_fee_income"] == FEE - 10_000
    with factory() as session:
        assert first_violation(session) is None
        reasons = session.scalars(
            select(AuditRecord.detail).where(AuditRecord.action == "loan.written_off")
        ).all()
        assert reasons == [{"reason": "Enterprise insolvent; collector found no assets"}]

    # 12,345.67 recovered from the enterprise through the custodian, distributed 60/40.
    escrow_before = classes["escrow_cash"]
    made = client.post(recovery_url, json={"amount": "12345.67"}, headers={**bearer(op), **_key()})
    assert made.status_code == 202, made.text
    assert made.json()["kind"] == "collection"
    assert available(client, tokens[INVESTOR]) == investor_before + 6_000  # nothing until the bank confirms
    drain()
    # 1,234,567 × 0.6 = 740,740.2 → 740,740; × 0.4 = 493,826.8 → 493,827
    assert available(client, tokens[INVESTOR]) == investor_before + 6_000 + 740_740
    assert available(client, tokens[INSTITUTION]) == institution_before + 4_000 + 493_827
    classes = _classes(client, tokens[REGULATOR])
    assert classes["escrow_cash"] == escrow_before + 1_234_567
    assert classes["loan_collection"] == 0
    assert classes["loan_book"] == 0
    with factory() as session:
        assert defaults.recovered_minor(session, uuid.UUID(loan_id)) == 1_234_567
        kinds = sorted(
            session.scalars(
                select(Distribution.source_kind).where(Distribution.loan_id == uuid.UUID(loan_id))
            )
        )
        assert kinds == ["recovery", "recovery", "reserve", "reserve"]
        assert first_violation(session) is None
    assert client.post(f"/api/v1/loans/{uuid.uuid4()}/recoveries", json={"amount": "1.00"},
                       headers={**bearer(op), **_key()}).status_code == 404  # fmt: skip
