"""Steps 5 and 6 for a P2P loan: fully funded, holds posted once, a note per investor, the agreement
accepted by hash, the custodian pays the enterprise, and every escrow balance adds up."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import bearer
from tests.integration.investing.conftest import (
    INSTITUTION,
    INVESTOR,
    REGULATOR,
    SME,
    Drain,
    available,
    deposit,
    list_demand,
)
from yunrong.config import Settings
from yunrong.investing.tables import AgreementAcceptance
from yunrong.kit.clock import FrozenClock
from yunrong.ledger.tables import Hold
from yunrong.ledger.verify import first_violation


def _commit(client: TestClient, token: str, demand_id: uuid.UUID, amount: str) -> Any:
    response = client.post(
        "/api/v1/commitments",
        json={"demand_id": str(demand_id), "amount": amount, "accept_agreement": True},
        headers={**bearer(token), "Idempotency-Key": uuid.uuid4().hex},
    )
    assert response.status_code == 201, response.text
    return response.json()


def _classes(client: TestClient, token: str) -> dict[str, int]:
    flows = client.get("/api/v1/fund-flows", headers=bearer(token)).json()
    return {c["purpose"]: int(c["balance_minor"]) for c in flows["classes"]}


def test_a_funded_p2p_loan_is_contracted_and_paid_out_through_the_custodian(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    verified: None,
    drain: Drain,
) -> None:
    deposit(client, tokens[INVESTOR], "200000.00")
    deposit(client, tokens[INSTITUTION], "500000.00")
    drain()
    demand_id = list_demand(client, tokens, factory, settings, clock, amount="300000.00")
    _commit(client, tokens[INVESTOR], demand_id, "120000.00")
    _commit(client, tokens[INVESTOR], demand_id, "30000.00")
    last = _commit(client, tokens[INSTITUTION], demand_id, "150000.00")
    assert last["status"] == "posted"  # the last ticket filled the round: every hold posted

    funding = client.get(f"/api/v1/demands/{demand_id}/funding", headers=bearer(tokens[SME])).json()
    assert funding["status"] == "funded"
    assert funding["remaining_minor"] == 0
    loan_id = funding["loan_id"]
    loan = client.get(f"/api/v1/loans/{loan_id}", headers=bearer(tokens[SME])).json()
    assert loan["status"] == "contracting"
    assert loan["principal_minor"] == 30_000_000
    assert sorted(n["principal_minor"] for n in loan["notes"]) == [15_000_000, 15_000_000]
    fee = loan["fee_minor"]
    assert fee == 30_000_000 * settings.platform_fee_bp // 10_000
    assert loan["apr"] is not None
    assert float(loan["apr"]) > float(loan["annual_rate"])
    # An investor sees only its own note of the loan.
    mine = client.get(f"/api/v1/loans/{loan_id}", headers=bearer(tokens[INVESTOR])).json()
    assert [n["principal_minor"] for n in mine["notes"]] == [15_000_000]
    assert (
        client.get("/api/v1/demands/" + str(demand_id), headers=bearer(tokens[SME])).json()["status"]
        == "funded"
    )

    with factory() as session:
        holds = session.scalars(select(Hold).where(Hold.description.like("commitment to %"))).all()
        assert sorted(h.status for h in holds) == ["posted"] * 3
    classes = _classes(client, tokens[REGULATOR])
    assert classes["escrow_cash"] == 70_000_000
    assert classes["investor_available"] == 40_000_000
    assert classes["enterprise_payout"] == 30_000_000

    pdf = client.get(f"/api/v1/loans/{loan_id}/agreement", headers=bearer(tokens[SME]))
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF")
    sha = hashlib.sha256(pdf.content).hexdigest()
    assert pdf.headers["X-Agreement-SHA256"] == sha == loan["agreement_sha256"]

    wrong = client.post(
        f"/api/v1/loans/{loan_id}/agreement/accept", json={"sha256": "0" * 64}, headers=bearer(tokens[SME])
    )
    assert wrong.status_code == 422
    not_party = client.post(
        f"/api/v1/loans/{loan_id}/agreement/accept", json={"sha256": sha}, headers=bearer(tokens[INVESTOR])
    )
    assert not_party.status_code == 404
    accepted = client.post(
        f"/api/v1/loans/{loan_id}/agreement/accept", json={"sha256": sha}, headers=bearer(tokens[SME])
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "disbursing"
    with factory() as session:
        roles = sorted(a.party_role for a in session.scalars(select(AgreementAcceptance)))
    assert roles == ["borrower", "investor", "investor"]

    drain()  # the custodian confirms the payout
    loan = client.get(f"/api/v1/loans/{loan_id}", headers=bearer(tokens[SME])).json()
    assert loan["status"] == "active"
    assert loan["disbursed_at"]
    classes = _classes(client, tokens[REGULATOR])
    assert classes["escrow_cash"] == 70_000_000 - (30_000_000 - fee)  # only the payout left escrow
    assert classes["enterprise_payout"] == 0
    assert classes["platform_fee_income"] == fee
    assert classes["investor_available"] == 40_000_000
    assert available(client, tokens[INVESTOR]) == 5_000_000
    assert available(client, tokens[INSTITUTION]) == 35_000_000
    # Step 7 starts: the exact schedule, and the principal on the loan book against the claims.
    schedule = client.get(f"/api/v1/loans/{loan_id}/schedule", headers=bearer(tokens[SME])).json()
    assert schedule["state"] == "performing"
    assert len(schedule["instalments"]) == 12
    assert sum(i["principal_due_minor"] for i in schedule["instalments"]) == 30_000_000
    assert classes["loan_book"] == classes["investor_claims"] == 30_000_000
    with factory() as session:
        assert first_violation(session) is None
