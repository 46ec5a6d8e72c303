"""Valid registration bodies with fresh codes, for the parties tests."""

from __future__ import annotations

import random
from typing import Any

from yunrong.parties import codes

_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def fresh_uscc(rng: random.Random | None = None) -> str:
    rng = rng or random.Random()
    body = "9132010" + "0" + "".join(rng.choice(_CHARSET) for _ in range(9))
    return codes.make_uscc(body)


def fresh_resident_id(rng: random.Random | None = None) -> str:
    rng = rng or random.Random()
    birth = f"{rng.randint(1960, 2000)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    return codes.make_resident_id(f"320106{birth}{rng.randint(0, 999):03d}")


def enterprise_body(email: str, **overrides: Any) -> dict[str, Any]:
    enterprise = {
        "credit_code": fresh_uscc(),
        "name": f"Test Enterprise {email}",
        "legal_representative": "Zhang San 张三",
        "registered_capital": "5000000.00",
        "founded_on": "2018-06-01",
        "industry_code": "C3911",
        "region_code": "320102",
        "employees": 15,
        "annual_revenue": "2800000.00",
        "total_assets": "4000000.00",
        "contact": {"name": "Zhang San", "phone": "+86 25 1234 5678", "email": email},
    }
    enterprise.update(overrides)
    return {
        "enterprise": enterprise,
        "applicant": {"email": email, "name": "Zhang San 张三", "password": "applicant-password-1"},
        "people": [
            {"role": "legal_representative", "name": "Zhang San", "identifier": fresh_resident_id()},
            {
                "role": "shareholder",
                "name": "Zhang San",
                "identifier": fresh_resident_id(),
                "share_percent": "70",
            },
            {"role": "shareholder", "name": "Holding Co.", "identifier": fresh_uscc(), "share_percent": "30"},
        ],
        "bank_account": {
            "bank_name": "Bank of Nanjing",
            "account_name": "Test",
            "account_number": "6214830100001111",
        },
    }


def person_investor_body(email: str, **overrides: Any) -> dict[str, Any]:
    from yunrong.parties.risk import QUESTIONS

    investor = {
        "kind": "person",
        "name": f"Investor {email}",
        "resident_id": fresh_resident_id(),
        "contact_phone": "+86 139 1234 5678",
        "net_worth": "800000.00",
        "annual_income": "200000.00",
        "funds_sources": ["salary", "savings"],
        "funds_note": "salary",
    }
    investor.update(overrides)
    return {
        "investor": investor,
        "applicant": {"email": email, "name": "Investor", "password": "applicant-password-1"},
        "risk_answers": {q.key: max(q.options, key=lambda o: o.score).key for q in QUESTIONS},
    }


def agency_body(email: str, public_key: str, **overrides: Any) -> dict[str, Any]:
    agency = {
        "name": f"Agency {email}",
        "credit_code": fresh_uscc(),
        "licence_number": "LIC-001",
        "types": ["credit_rating", "guarantee"],
        "region_code": "320102",
        "public_key": public_key,
        "services": [
            {"agency_type": "credit_rating", "service": "sme_rating", "fee": "2500.00", "sla_hours": 48},
            {"agency_type": "guarantee", "service": "loan_guarantee", "fee": "0.00", "sla_hours": 96},
        ],
    }
    agency.update(overrides)
    return {
        "agency": agency,
        "applicant": {"email": email, "name": "Agent", "password": "applicant-password-1"},
    }


def new_public_key() -> str:
    import base64

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()
