"""Steps 1–3 of the paper's flow for every product, as the enterprise, the agencies, the investor
and the public see them: publish → order services → signed results into the credit file → listing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import bearer, demo_tokens
from tests.integration.verification.demand_data import demand_body
from yunrong.config import Settings
from yunrong.demands.model import Product
from yunrong.identity.model import Actor, Context
from yunrong.kit.clock import FrozenClock
from yunrong.parties import codes
from yunrong.verification import simulated
from yunrong.verification.simulated import Behaviour

SME = "sme@demo.yunrong.cn"
INVESTOR = "investor@demo.yunrong.cn"
INSTITUTION = "institution@demo.yunrong.cn"

FACTS: dict[Product, dict[str, Any]] = {
    Product.BANK_LOAN: {"repayment_method": "equal_principal"},
    Product.P2P_LOAN: {"guarantee_wanted": True},
    Product.SUPPLY_CHAIN_RECEIVABLE: {
        "repayment_method": "bullet",
        "facts": {
            "receivable": {
                "debtor_name": "Jiangsu Fresh Foods Co.",
                "debtor_credit_code": codes.make_uscc("91320100MA1FRXH2Q"),
                "invoice_number": "INV-2026-0931",
                "amount": "320000.00",
                "due_date": "2027-03-31",
            },
            "inventory": {
                "goods": "Frozen vegetables",
                "warehouse": "Zhenjiang cold store 3",
                "quantity": "80",
                "unit": "t",
                "value": "260000.00",
            },
        },
    },
    Product.ECOMMERCE_CREDIT_LINE: {
        "repayment_method": "revolving",
        "facts": {
            "store": {
                "platform": "Tmall",
                "store_id": "lvyuan-fresh",
                "monthly_sales": ["81000.00", "76000.00", "90500.00", "88000.00", "95000.00", "99000.00"],
            }
        },
    },
    Product.FINANCIAL_LEASE: {
        "repayment_method": "lease_rent",
        "facts": {
            "lease": {
                "equipment": "Vacuum freeze-dryer VF-200",
                "supplier": "Shanghai Tofflon",
                "price": "300000.00",
                "residual_value": "30000.00",
                "end_option": "purchase",
            }
        },
    },
}


@pytest.mark.parametrize("product", list(Product), ids=lambda p: p.value)
def test_steps_1_to_3(
    product: Product,
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    system_ctx: Context,
) -> None:
    # 1. The enterprise publishes its demand.
    body = demand_body(product=product.value, project_key=f"flow-{product.value}", **FACTS[product])
    draft = client.post("/api/v1/demands", json=body, headers=bearer(tokens[SME]))
    assert draft.status_code == 201, draft.text
    demand = client.post(
        f"/api/v1/demands/{draft.json()['id']}/submission", headers=bearer(tokens[SME])
    ).json()
    assert demand["status"] == "under_verification"
    # 2. The platform ordered what the product needs.
    types = {o["agency_type"] for o in demand["orders"]}
    assert {"authentication", "credit_rating"} <= types
    if product is Product.P2P_LOAN:
        assert "guarantee" in types
    if product is Product.SUPPLY_CHAIN_RECEIVABLE:
        assert "logistics_monitoring" in types
        assert any(o["service"] == "receivable_confirmation" for o in demand["orders"])
    if product is Product.FINANCIAL_LEASE:
        assert {"appraisal", "insurance"} <= types
    # 3. The (simulated) agencies work the orders and sign what they return.
    never_refuse = Behaviour(decline_rate=0.0, fail_rate=0.0)
    for _ in range(30):
        clock.advance(timedelta(minutes=2))
        simulated.run_simulated_agencies(factory, settings=settings, clock=clock, behaviour=never_refuse)
        current = client.get(
            f"/api/v1/demands/{demand['id']}",
            headers=bearer(demo_tokens(client, factory, settings, system_ctx)[SME]),
        ).json()
        if current["status"] == "listed":
            break
    else:
        raise AssertionError(f"never listed: {current['orders']}")
    fresh = demo_tokens(client, factory, settings, Context(actor=Actor.system("t"), clock=clock))
    completed = [o for o in current["orders"] if o["status"] == "completed"]
    assert completed
    for order in completed:
        detail = client.get(f"/api/v1/service-orders/{order['id']}", headers=bearer(fresh[SME])).json()
        check = client.get(f"/api/v1/attestations/{detail['attestation_id']}/verification").json()
        assert check["valid"] is True, check
    credit_file = client.get(
        f"/api/v1/enterprises/{current['organisation_id']}/credit-file", headers=bearer(fresh[SME])
    ).json()
    assert "attested" in str(credit_file)
    # The investor decides on verified information, as far as the enterprise consented.
    consent = {
        "data_category": "credit_score",
        "recipient_class": "investors",
        "purpose": "financing",
        "valid_until": "2028-01-01",
    }
    assert client.post("/api/v1/consents", json=consent, headers=bearer(fresh[SME])).status_code == 201
    listing = client.get(f"/api/v1/listings/{demand['id']}", headers=bearer(fresh[INVESTOR]))
    assert listing.status_code == 200, listing.text
    text = str(listing.json())
    assert "credit_score" in text
    assert "verified" in text
