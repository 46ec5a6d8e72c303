"""Automated credit decisions on listed demands, human overrides, monitoring, and the default model.

A decision records the grade, PD, limit, price (or the decline and why), the reasons in both
languages, a one-grade-up counterfactual, the features used and the model version. A price above
the legal cap is a decline with that reason, never a lower price.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from dataclasses import asdict
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from yunrong.config import Settings
from yunrong.decisions import registry
from yunrong.decisions.features import feature_row
from yunrong.decisions.tables import CreditDecision, ModelVersion
from yunrong.demands.model import DemandStatus
from yunrong.demands.tables import Demand
from yunrong.identity.model import Action, Actor, Context
from yunrong.identity.service import require
from yunrong.kit.clock import business_date
from yunrong.kit.errors import Conflict, FieldProblem, InvalidInput, NotFound
from yunrong.parties.tables import Enterprise
from yunrong.supervision import rates
from yunrong.supervision import service as audit

#: Largest limit as a share of the enterprise's annual revenue, per grade (documented policy).
LIMIT_SHARE: dict[str, Decimal] = {
    "AAA": Decimal("0.50"),
    "AA": Decimal("0.45"),
    "A": Decimal("0.40"),
    "BBB": Decimal("0.30"),
    "BB": Decimal("0.20"),
    "B": Decimal("0.12"),
    "CCC": Decimal("0.05"),
    "CC": Decimal("0"),
    "C": Decimal("0"),
}
DECIDABLE = (DemandStatus.LISTED.value, DemandStatus.FUNDING.value, DemandStatus.UNDER_VERIFICATION.value)


def _limit(session: Session, demand: Demand, grade: str, declined: bool) -> int:
    if declined:
        return 0
    profile = session.get(Enterprise, demand.organisation_id)
    revenue = profile.annual_revenue_minor if profile else 0
    by_revenue = int(Decimal(revenue) * LIMIT_SHARE.get(grade, Decimal(0)))
    return max(0, min(demand.amount_minor, by_revenue))


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float | np.floating):
        return None if np.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def decide_demand(
    session: Session, *, ctx: Context, settings: Settings, demand_id: uuid.UUID
) -> CreditDecision:
    """Decide on a demand with the champion model (the operator asks, or the platform on listing)."""
    if not ctx.actor.is_system:
        require(ctx, Action.DECIDE_CREDIT)
    from yunrong.credit.pipeline import Terms, decide
    from yunrong.credit.pricing import Decline
    from yunrong.credit.reasons import counterfactual

    demand = session.execute(
        select(Demand).where(Demand.id == demand_id).with_for_update()
    ).scalar_one_or_none()
    if demand is None:
        raise NotFound("no such demand")
    if demand.status not in DECIDABLE:
        raise Conflict(
            f"demand {demand.ref} is {demand.status}; decisions are made while it is verified or listed"
        )
    model_row = registry.champion(session)
    model = registry.load(model_row)
    now = ctx.now()
    row = feature_row(
        session,
        enterprise_id=demand.organisation_id,
        as_of=now,
        amount_minor=demand.amount_minor,
        term_months=demand.term_months,
    )
    cap_percent = rates.cap_on(session, settings.policy, business_date(now, settings.timezone))
    cap = cap_percent / 100 if cap_percent is not None else None
    terms = Terms(term_months=demand.term_months, cap=cap)
    decision = decide(model, row, terms)
    declined = isinstance(decision.price, Decline)
    cf = counterfactual(model, row)
    price = _jsonable(asdict(decision.price))
    if not declined and Decimal(str(decision.price.annual_rate)) * 100 > demand.max_annual_rate:  # type: ignore[union-attr]
        price["above_enterprise_maximum"] = True
    session.execute(
        update(CreditDecision)
        .where(CreditDecision.demand_id == demand.id, CreditDecision.superseded_at.is_(None))
        .values(superseded_at=now)
    )
    record = CreditDecision(
        demand_id=demand.id,
        model_id=model_row.id,
        as_of=now,
        features=_jsonable(row),
        pd=float(decision.pd),
        score=float(decision.score),
        grade=decision.grade,
        declined=declined,
        decline_reason=decision.price.message_en if declined else None,  # type: ignore[union-attr]
        annual_rate=None if declined else decision.price.annual_rate,  # type: ignore[union-attr]
        apr=None if declined else decision.price.apr,  # type: ignore[union-attr]
        cap=cap,
        limit_minor=_limit(session, demand, decision.grade, declined),
        price=price,
        reasons=[_jsonable(asdict(r)) for r in decision.reasons],
        counterfactual=_jsonable(asdict(cf)),
        decided_at=now,
    )
    session.add(record)
    session.flush()
    audit.record(
        session,
        ctx=ctx,
        action="credit.decide",
        object_type="demand",
        object_id=demand.id,
        after={
            "grade": record.grade,
            "pd": round(record.pd, 6),
            "declined": declined,
            "model": f"{model_row.name} v{model_row.version}",
        },
    )
    return record


def decide_if_possible(
    session: Session, *, ctx: Context, settings: Settings, demand: Demand
) -> CreditDecision | None:
    """On listing: decide automatically when a champion model exists (otherwise later, by hand)."""
    engine = Context(actor=Actor.system("credit-engine"), clock=ctx.clock, request_id=ctx.request_id)
    try:
        with session.begin_nested():
            return decide_demand(session, ctx=engine, settings=settings, demand_id=demand.id)
    except registry.NoChampion:
        return None


_CURRENT = select(CreditDecision).where(
    CreditDecision.demand_id == bindparam("demand_id"), CreditDecision.superseded_at.is_(None)
)


def current_decision(session: Session, demand_id: uuid.UUID) -> CreditDecision | None:
    return session.scalars(_CURRENT, {"demand_id": demand_id}).first()


def visible_decision(session: Session, *, ctx: Context, demand_id: uuid.UUID) -> CreditDecision:
    """The enterprise sees its own; supervisors all; investors see grades on listings."""
    demand = session.get(Demand, demand_id)
    if demand is None or not (
        ctx.actor.sees_all_organisations or demand.organisation_id == ctx.actor.organisation_id
    ):
        raise NotFound("no such demand")
    decision = current_decision(session, demand_id)
    if decision is None:
        raise NotFound("no decision yet")
    return decision


def override(
    session: Session,
    *,
    ctx: Context,
    decision_id: uuid.UUID,
    grade: str | None,
    declined: bool | None,
    reason: str,
) -> CreditDecision:
    require(ctx, Action.OVERRIDE_CREDIT)
    from yunrong.credit.grades import GRADES

    if not reason.strip():
        raise InvalidInput("an override needs a reason", [FieldProblem(("reason",), "required")])
    if grade is not None and grade not in {g.code for g in GRADES}:
        raise InvalidInput(
            "unknown grade", [FieldProblem(("grade",), "one of " + ", ".join(g.code for g in GRADES))]
        )
    decision = session.get(CreditDecision, decision_id)
    if decision is None or decision.superseded_at is not None:
        raise NotFound("no such current decision")
    before = {"grade": decision.override_grade or decision.grade, "declined": decision.declined}
    decision.override_grade = grade
    decision.override_declined = declined
    decision.override_reason = reason.strip()
    decision.override_by = ctx.actor.email
    decision.override_at = ctx.now()
    audit.record(
        session,
        ctx=ctx,
        action="credit.override",
        object_type="credit_decision",
        object_id=decision.id,
        before=before,
        after={"grade": grade, "declined": declined},
        detail={"reason": reason.strip()},
    )
    return decision


def monitoring(session: Session, *, ctx: Context, days: int = 90) -> dict[str, Any]:
    """Score drift (PSI against the training distribution) and predicted vs realised default by grade."""
    require(ctx, Action.READ_MODELS)
    try:
        model = registry.champion(session)
    except registry.NoChampion:
        return {"champion": None, "psi": None, "by_grade": []}
    since = ctx.now() - timedelta(days=days)
    decisions = session.scalars(
        select(CreditDecision).where(CreditDecision.model_id == model.id, CreditDecision.decided_at >= since)
    ).all()
    ref = model.reference_scores or {}
    drift = registry.psi(ref.get("edges", []), ref.get("shares", []), [d.score for d in decisions])
    by_grade: dict[str, list[float]] = defaultdict(list)
    for d in decisions:
        by_grade[d.grade].append(d.pd)
    return {
        "champion": {"id": str(model.id), "name": model.name, "version": model.version},
        "decisions": len(decisions),
        "psi": drift,
        "psi_reading": None
        if drift is None
        else ("stable" if drift < 0.1 else "watch" if drift < 0.25 else "shifted"),
        # Realised defaults come from the loan book (servicing); until loans mature there are none.
        "by_grade": [
            {"grade": g, "count": len(v), "predicted_pd": float(np.mean(v)), "realised_default_rate": None}
            for g, v in sorted(by_grade.items())
        ],
    }


def train_default_model(
    session: Session,
    *,
    ctx: Context,
    settings: Settings,
    enterprises: int = 1500,
    years: int = 5,
    seed: int = 0,
) -> ModelVersion:
    """Train the default model on a generated synthetic world (documented as synthetic) and register
    it. Promotion to champion still takes the operator's decision."""
    from datetime import UTC, datetime

    from yunrong.credit.artifact import make_card, save_artifact
    from yunrong.credit.model import fit_model
    from yunrong.credit.tabular import Dataset
    from yunrong.credit.world import generate, training_table

    world = generate(enterprises, years, seed)
    table = training_table(world.enterprises, world.monthly, world.loans, seed=seed)
    y = table["default"].to_numpy()
    X = table.drop(columns=["id", "default"])
    categorical = [c for c in ("industry", "region", "size") if c in X.columns]
    numeric = [c for c in X.columns if c not in categorical]
    model = fit_model(X, y, numeric=numeric, categorical=categorical, seed=seed)
    scores = model.scorecard.score(X)
    edges = [float(e) for e in np.quantile(scores, np.linspace(0.1, 0.9, 9))]
    shares = (np.histogram(scores, bins=[-np.inf, *edges, np.inf])[0] / len(scores)).tolist()
    digest = hashlib.sha256(table.to_csv(index=False).encode()).hexdigest()
    data = Dataset(
        X=X,
        y=y,
        numeric=numeric,
        categorical=categorical,
        target="default",
        bad="1",
        sha256=digest,
        source=f"synthetic world n={enterprises} y={years} seed={seed}",
    )
    card = make_card(model, data, name="yunrong-default", created_at=datetime.now(UTC))
    card["synthetic"] = True
    path = Path(settings.model_dir) / "incoming" / f"yunrong-default-seed{seed}.joblib"
    save_artifact(model, path, card)
    return registry.register(
        session,
        ctx=ctx,
        model_dir=Path(settings.model_dir),
        artifact=path,
        reference_scores={"edges": edges, "shares": shares},
    )
