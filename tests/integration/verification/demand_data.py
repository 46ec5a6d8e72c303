"""Demand bodies for tests."""

from __future__ import annotations

from typing import Any


def demand_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "product": "p2p_loan",
        "title": "Cold-chain storage expansion",
        "amount": "300000.00",
        "currency": "CNY",
        "term_months": 12,
        "repayment_method": "equal_instalment",
        "max_annual_rate": "9.5000",
        "purpose": "Build a second cold store for the 2027 harvest",
        "use_of_funds": [
            {"item": "Refrigeration units", "amount": "180000.00"},
            {"item": "Insulated panels and works", "amount": "120000.00"},
        ],
        "innovation": {"rd_spend": "420000.00", "patents": [], "high_tech_certified": False},
        "collateral": [],
        "guarantee_wanted": False,
        "project_key": "cold-store-2027",
    }
    body.update(overrides)
    return body
