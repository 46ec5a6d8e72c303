"""The model's feature row for an enterprise, as of a moment, from its credit file.

Monthly figures come from the statements and payment records in the credit file (imported by the
enterprise, fed by machine sources, or attested), read point-in-time: only facts recorded by then.
They are laid out as the synthetic world's monthly history, so the same documented feature code
(``yunrong.credit.features``) computes them. Industry, region and size map onto the categories the
models were trained with; attestation coverage and freshness come from the verified facts.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from yunrong.parties.tables import Enterprise
from yunrong.verification.tables import Attestation, CreditFact

#: GB/T 4754 section → the world's industry categories.
INDUSTRY_OF_SECTION = {
    "A": "agriculture",
    "B": "manufacturing",
    "C": "manufacturing",
    "D": "manufacturing",
    "E": "construction",
    "F": "wholesale_retail",
    "G": "logistics",
    "H": "catering",
    "I": "tech_services",
    "M": "tech_services",
}
#: Province code → the world's regions (others are left missing: the models bin missing values).
REGION_OF_PROVINCE = {
    "32": "Jiangsu",
    "33": "Zhejiang",
    "44": "Guangdong",
    "51": "Sichuan",
    "41": "Henan",
    "21": "Liaoning",
}
#: Which figures a monthly row is built from, per dataset kind.
KINDS = ("income_statement", "balance_sheet", "tax_payments", "utility_payments")


def _month(day: date) -> date:
    return day.replace(day=1)


def _parse(value: Any) -> date | None:
    if isinstance(value, str) and len(value) >= 7:
        try:
            return date.fromisoformat(value if len(value) > 7 else f"{value}-01")
        except ValueError:
            return None
    return None


def _yuan(value: Any) -> float | None:
    return None if value is None else float(value) / 100


def _minor(v: dict[str, Any], name: str) -> Any:
    """A money field of a credit-file fact: data sets store ``<name>_minor`` (integer fen)."""
    return v.get(f"{name}_minor", v.get(name))


def monthly_history(session: Session, enterprise_id: uuid.UUID, as_of: datetime) -> pd.DataFrame:
    """The enterprise's monthly history as known at ``as_of`` (the world's column layout)."""
    facts = session.scalars(
        select(CreditFact).where(
            CreditFact.enterprise_id == enterprise_id,
            CreditFact.recorded_at <= as_of,
            or_(CreditFact.superseded_at.is_(None), CreditFact.superseded_at > as_of),
            or_(*[CreditFact.key.like(f"{kind}:%") for kind in KINDS]),
        )
    ).all()
    rows: dict[date, dict[str, Any]] = {}
    tax: dict[date, list[int]] = {}
    utility: dict[date, list[int]] = {}
    for fact in facts:
        kind = fact.key.split(":", 1)[0]
        v = fact.value if isinstance(fact.value, dict) else {}
        if kind == "income_statement":
            start, end = _parse(v.get("period_start")), _parse(v.get("period_end"))
            if start is None or end is None or (end - start).days > 31:
                continue  # monthly statements only; annual ones are summarised by the profile
            row = rows.setdefault(_month(start), {})
            revenue, cost = _yuan(_minor(v, "revenue")), _yuan(_minor(v, "cost_of_sales"))
            row.update(revenue=revenue, costs=cost, profit=_yuan(_minor(v, "net_profit")))
        elif kind == "balance_sheet":
            end = _parse(v.get("period_end"))
            if end is None:
                continue
            row = rows.setdefault(_month(end), {})
            row.update(
                total_assets=_yuan(_minor(v, "total_assets")),
                total_debt=_yuan(_minor(v, "total_liabilities")),
                current_assets=_yuan(_minor(v, "current_assets")),
                current_liabilities=_yuan(_minor(v, "current_liabilities")),
                cash=_yuan(_minor(v, "cash")),
            )
        elif kind in ("tax_payments", "utility_payments"):
            period, paid = _parse(v.get("period")), _parse(v.get("paid_on"))
            if period is None:
                continue
            due_day = 15 if kind == "tax_payments" else 28
            nxt = (period.replace(day=28) + timedelta(days=4)).replace(day=1)
            due = nxt.replace(day=due_day)
            owed = _minor(v, "amount_due") or _minor(v, "amount_billed") or 0
            on_time = int(paid is not None and paid <= due and (_minor(v, "amount_paid") or 0) >= owed)
            (tax if kind == "tax_payments" else utility).setdefault(_month(period), []).append(on_time)
    for month, marks in tax.items():
        rows.setdefault(month, {})["tax_on_time"] = min(marks)
    for month, marks in utility.items():
        rows.setdefault(month, {})["utility_on_time"] = min(marks)
    columns = [
        "enterprise_id",
        "month",
        "revenue",
        "costs",
        "profit",
        "total_assets",
        "total_debt",
        "current_assets",
        "current_liabilities",
        "cash",
        "tax_on_time",
        "utility_on_time",
        "supplier_days_late",
    ]
    records = [
        {"enterprise_id": str(enterprise_id), "month": pd.Timestamp(m), **r} for m, r in sorted(rows.items())
    ]
    return pd.DataFrame.from_records(records, columns=columns)


def attestation_signals(
    session: Session, enterprise_id: uuid.UUID, as_of: datetime
) -> tuple[float, float | None]:
    """(share of the credit file's facts that are attested and valid, days since the newest attestation)."""
    facts = session.scalars(
        select(CreditFact).where(
            CreditFact.enterprise_id == enterprise_id,
            CreditFact.recorded_at <= as_of,
            or_(CreditFact.superseded_at.is_(None), CreditFact.superseded_at > as_of),
        )
    ).all()
    if not facts:
        return 0.0, None
    attested = [
        f for f in facts if f.provenance == "attested" and (f.valid_until is None or f.valid_until > as_of)
    ]
    newest = session.scalar(
        select(Attestation.issued_at)
        .where(
            Attestation.enterprise_id == enterprise_id,
            Attestation.recorded_at <= as_of,
            Attestation.revoked_at.is_(None),
        )
        .order_by(Attestation.issued_at.desc())
        .limit(1)
    )
    age = (as_of - newest).days if newest is not None else None
    return round(len(attested) / len(facts), 2), age


def feature_row(
    session: Session, *, enterprise_id: uuid.UUID, as_of: datetime, amount_minor: int, term_months: int
) -> dict[str, Any]:
    """One row in the models' training layout (missing values stay missing)."""
    from yunrong.credit.features import compute_features

    history = monthly_history(session, enterprise_id, as_of)
    coverage, age = attestation_signals(session, enterprise_id, as_of)
    request = pd.DataFrame(
        {
            "enterprise_id": [str(enterprise_id)],
            "as_of": [pd.Timestamp(as_of.date())],
            "attestation_coverage": [coverage],
            "attestation_age_days": [age],
        }
    )
    features: dict[str, Any] = (
        compute_features(history, request).iloc[0].to_dict()
        if len(history)
        else {"months_of_history": 0, "attestation_coverage": coverage, "attestation_age_days": age}
    )
    profile = session.get(Enterprise, enterprise_id)
    from yunrong.credit.features import FEATURES

    features = {**dict.fromkeys(FEATURES), **features}  # what is not known stays missing
    row: dict[str, Any] = {
        k: (None if v is None or pd.isna(v) else float(v))
        for k, v in features.items()
        if k not in ("enterprise_id", "as_of")
    }
    row["industry"] = INDUSTRY_OF_SECTION.get(profile.industry_code[:1]) if profile else None
    row["region"] = REGION_OF_PROVINCE.get(profile.region_code[:2]) if profile else None
    # The world knows micro, small and medium firms; a large one is scored as medium.
    row["size"] = (
        None if profile is None else ("medium" if profile.size_class == "large" else profile.size_class)
    )
    row["amount"] = amount_minor / 100
    row["term_months"] = term_months
    return row
