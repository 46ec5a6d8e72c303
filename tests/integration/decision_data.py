"""A listed demand with a priced credit decision, written directly: for tests of what comes after
listing (the agencies and the credit engine are exercised by their own tests)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from yunrong.decisions.tables import CreditDecision, ModelVersion
from yunrong.demands.tables import Demand


def list_with_decision(
    session: Session,
    demand: Demand,
    now: datetime,
    *,
    grade: str = "BBB",
    pd: float = 0.03,
    annual_rate: Decimal = Decimal("0.085"),
) -> CreditDecision:
    """Mark ``demand`` listed at ``now`` and give it a decision of ``grade`` at ``annual_rate``."""
    demand.status = "listed"
    demand.listed_at = now
    model_row = ModelVersion(
        name="test",
        version=1,
        role="champion",
        artifact_path="-",
        artifact_sha256="0" * 64,
        card={},
        reference_scores={},
        registered_by="test",
        registered_at=now,
    )
    session.add(model_row)
    session.flush()
    decision = CreditDecision(
        demand_id=demand.id,
        model_id=model_row.id,
        as_of=now,
        features={},
        pd=pd,
        score=600.0,
        grade=grade,
        declined=False,
        annual_rate=annual_rate,
        limit_minor=demand.amount_minor,
        price={},
        reasons=[],
        decided_at=now,
    )
    session.add(decision)
    session.flush()
    return decision
