"""Pages of credit decisions and the model registry.

The decision on a demand (grade, PD, score, price or decline, limit, reasons, counterfactual, model
version, a human override) is a fragment that the demand page (/enterprise/demands/{id},
/operator/demands/{id}) and the listing page (/investor/listings/{id}, /listings/{id}) load with
HTMX; without JavaScript its link opens the same fragment as a page. The operator decides a demand
now and overrides a decision with a reason. Operators and regulators read the credit models
(/models), a model's card and its promotions (/models/{id}) and the champion's monitoring
(/models/monitoring); operators propose a promotion and a second, different operator decides it.
Every page calls the same service functions as the JSON API.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from yunrong.config import Settings
from yunrong.credit.features import FEATURES
from yunrong.credit.grades import BY_CODE, GRADES
from yunrong.decisions import registry
from yunrong.decisions import service as decisions
from yunrong.decisions.routes import decision_out, model_out
from yunrong.decisions.tables import CreditDecision, ModelPromotion, ModelVersion
from yunrong.demands import service as demands
from yunrong.demands.tables import Demand
from yunrong.deps import DB, SettingsDep
from yunrong.identity.model import Action, Actor, Portal
from yunrong.kit.errors import NotFound, YunrongError
from yunrong.parties import service as parties
from yunrong.verification import listings
from yunrong.web.demand_pages import HELPERS
from yunrong.web.forms import FormDep, field_errors, text
from yunrong.web.i18n import N_
from yunrong.web.rendering import Csrf, guard, page_context, render, render_error
from yunrong.web.rendering import parse_uuid as _uuid

router = APIRouter(include_in_schema=False)

ROLES = ("champion", "challenger", "registered", "retired")
TARGET_ROLES = ("champion", "challenger", "retired")
OVERRIDE_FIELDS = ("grade", "declined", "reason")
PROPOSAL_FIELDS = ("target_role", "reason")
DECISION_FIELDS = ("approve", "reason")
CHART_HEIGHT = 120
CHART_BAR = 14


def _not_found(request: Request, detail: str) -> Response:
    return render_error(request, 404, N_("Not found"), detail)


def pct(value: Any, places: int = 2) -> str:
    """A rate held as a fraction (0.0725) for people: "7.25%"."""
    if value is None:
        return "—"
    return f"{Decimal(str(value)) * 100:.{places}f}%"


def grade_tone(code: str | None) -> str:
    """The colour family of a grade: a (investment grade), b (speculative), c (distressed)."""
    grade = BY_CODE.get(code or "")
    if grade is None:
        return "none"
    return "a" if grade.rank <= 2 else "b" if grade.rank <= 5 else "c"


def feature_label(name: str, locale: str) -> str:
    spec = FEATURES.get(name)
    if spec is None:
        return name
    return spec.label_zh if locale == "zh_CN" else spec.label_en


DECISION_HELPERS: dict[str, Any] = {
    **HELPERS,
    "pct": pct,
    "grade_tone": grade_tone,
    "grades": GRADES,
    "grade_by_code": BY_CODE,
    "feature_label": feature_label,
}


def _decision_view(session: Session, decision: CreditDecision | None) -> dict[str, Any] | None:
    """The decision as the API answers it, with the model's name and version beside it."""
    if decision is None:
        return None
    view = decision_out(decision)
    model = session.get(ModelVersion, decision.model_id)
    view["model_name"] = model.name if model else "—"
    view["model_version"] = model.version if model else None
    view["decided_at"] = decision.decided_at  # a datetime, for the page's time zone
    if view["override"] is not None:
        view["override"]["at"] = decision.override_at
    return view


def _render_decision(
    request: Request,
    session: Session,
    demand: Demand,
    *,
    actor: Actor,
    operator: bool = False,
    status: int = 200,
    **extra: Any,
) -> Response:
    """The fragment for HTMX, the same inside a page otherwise (and always after a refused form)."""
    decision = _decision_view(session, decisions.current_decision(session, demand.id))
    fragment = bool(request.headers.get("hx-request")) and status == 200 and not extra.get("errors")
    back = f"/operator/demands/{demand.id}" if operator else None
    if back is None:
        back = (
            f"/enterprise/demands/{demand.id}"
            if actor.portal is Portal.ENTERPRISE
            else request.url.path.removesuffix("/decision")
        )
    return render(
        request,
        "decisions/_decision.html" if fragment else "decisions/decision.html",
        status=status,
        demand=demand,
        decision=decision,
        operator=operator,
        back=back,
        can_decide=operator and actor.can(Action.DECIDE_CREDIT) and demand.status in decisions.DECIDABLE,
        can_override=operator and decision is not None and actor.can(Action.OVERRIDE_CREDIT),
        **DECISION_HELPERS,
        **extra,
    )


# --- the decision on the enterprise's own demand, on a listing, and for the operator -------------------


@router.get("/enterprise/demands/{demand_id}/decision")
def enterprise_decision(request: Request, session: DB, demand_id: str) -> Response:
    got = guard(request, session, Portal.ENTERPRISE, Action.READ_DEMAND)
    if isinstance(got, Response):
        return got
    found = _uuid(demand_id)
    try:
        if found is None:
            raise NotFound("no such demand")
        demand = demands.visible_demand(session, ctx=page_context(request, got), demand_id=found)
    except NotFound:
        return _not_found(request, N_("no such demand"))
    return _render_decision(request, session, demand, actor=got)


def listing_decision(request: Request, session: DB, demand_id: str) -> Response:
    """Investors see the grade on listings: the same gate as the listing itself (admitted, listed),
    without recording a second view of it."""
    got = guard(request, session, None, Action.READ_LISTINGS)
    if isinstance(got, Response):
        return got
    try:
        parties.require_admitted(session, ctx=page_context(request, got))
    except YunrongError as exc:
        return render_error(request, exc.status, type(exc).title, exc.detail)
    found = _uuid(demand_id)
    demand = session.get(Demand, found) if found is not None else None
    if demand is None or demand.status not in listings.LISTED:
        return _not_found(request, N_("no such listing"))
    return _render_decision(request, session, demand, actor=got)


for _base in ("/investor/listings", "/listings"):
    router.add_api_route(f"{_base}/{{demand_id}}/decision", listing_decision, methods=["GET"])


def _operator_demand(request: Request, session: Session, actor: Actor, demand_id: str) -> Demand | None:
    found = _uuid(demand_id)
    if found is None:
        return None
    try:
        return demands.visible_demand(session, ctx=page_context(request, actor), demand_id=found)
    except NotFound:
        return None


@router.get("/operator/demands/{demand_id}/decision")
def operator_decision(request: Request, session: DB, demand_id: str, done: str = "") -> Response:
    got = guard(request, session, Portal.OPERATOR, Action.READ_DEMAND)
    if isinstance(got, Response):
        return got
    demand = _operator_demand(request, session, got, demand_id)
    if demand is None:
        return _not_found(request, N_("no such demand"))
    done = done if done in {"decided", "overridden"} else ""
    return _render_decision(request, session, demand, actor=got, operator=True, done=done)


@router.post("/operator/demands/{demand_id}/decision", dependencies=[Csrf])
def operator_decide(request: Request, session: DB, settings: SettingsDep, demand_id: str) -> Response:
    got = guard(request, session, Portal.OPERATOR, Action.DECIDE_CREDIT)
    if isinstance(got, Response):
        return got
    demand = _operator_demand(request, session, got, demand_id)
    if demand is None:
        return _not_found(request, N_("no such demand"))
    return _decide(request, session, settings, got, demand)


def _decide(request: Request, session: Session, settings: Settings, actor: Actor, demand: Demand) -> Response:
    try:
        decisions.decide_demand(
            session, ctx=page_context(request, actor), settings=settings, demand_id=demand.id
        )
    except YunrongError as exc:
        session.rollback()
        refreshed = session.get(Demand, demand.id)
        assert refreshed is not None
        return _render_decision(
            request,
            session,
            refreshed,
            actor=actor,
            operator=True,
            status=exc.status,
            errors={"decide": exc.detail, "decide_title": type(exc).title},
        )
    return RedirectResponse(f"/operator/demands/{demand.id}/decision?done=decided", status_code=303)


@router.post("/operator/credit-decisions/{decision_id}/override", dependencies=[Csrf])
def operator_override(request: Request, session: DB, decision_id: str, form: FormDep) -> Response:
    got = guard(request, session, Portal.OPERATOR, Action.OVERRIDE_CREDIT)
    if isinstance(got, Response):
        return got
    found = _uuid(decision_id)
    decision = session.get(CreditDecision, found) if found is not None else None
    if decision is None or decision.superseded_at is not None:
        return _not_found(request, N_("no such current decision"))
    demand_id = decision.demand_id
    grade = text(form, "grade")
    declined = bool(text(form, "declined"))
    reason = text(form, "reason")
    submitted = {"grade": grade, "declined": "1" if declined else "", "reason": reason}
    errors: dict[str, str] = {}
    status = 422
    if grade and grade not in BY_CODE:
        errors["grade"] = N_("Choose one of the options.")
    if not grade and not declined:
        errors["grade"] = N_("Choose a grade, or decline.")
    if not reason:
        errors["reason"] = N_("an override needs a reason")
    if not errors:
        try:
            decisions.override(
                session,
                ctx=page_context(request, got),
                decision_id=decision.id,
                grade=grade or None,
                declined=True if declined else None,
                reason=reason,
            )
        except YunrongError as exc:
            session.rollback()
            status = exc.status
            errors = field_errors(exc.problems, OVERRIDE_FIELDS)
            if not exc.problems or "form" in errors:
                errors["override"] = errors.pop("form", exc.detail)
        else:
            return RedirectResponse(
                f"/operator/demands/{demand_id}/decision?done=overridden", status_code=303
            )
    demand = session.get(Demand, demand_id)
    assert demand is not None
    return _render_decision(
        request, session, demand, actor=got, operator=True, status=status, errors=errors, form=submitted
    )


# --- credit models: the list, monitoring, a model's card and its promotions ---------------------------


@router.get("/models")
def models_index(request: Request, session: DB) -> Response:
    got = guard(request, session, None, Action.READ_MODELS)
    if isinstance(got, Response):
        return got
    rows = registry.list_models(session, ctx=page_context(request, got))
    pending = dict(
        session.execute(
            select(ModelPromotion.model_id, ModelPromotion.target_role).where(
                ModelPromotion.status == "proposed"
            )
        ).all()
    )
    return render(
        request,
        "decisions/models.html",
        models=[(model_out(m), m.registered_at) for m in rows],
        pending=pending,
    )


def _bars(by_grade: list[dict[str, Any]]) -> dict[str, Any]:
    """Bar heights (pixels) of predicted and realised default per grade, on one scale."""
    top = max(
        [row["predicted_pd"] for row in by_grade]
        + [row["realised_default_rate"] or 0.0 for row in by_grade]
        + [1e-9]
    )
    bars = []
    for i, row in enumerate(by_grade):
        realised = row["realised_default_rate"]
        bars.append(
            {
                "grade": row["grade"],
                "x": 10 + i * (3 * CHART_BAR),
                "predicted": round(row["predicted_pd"] / top * CHART_HEIGHT, 1),
                "realised": None if realised is None else round(realised / top * CHART_HEIGHT, 1),
            }
        )
    return {
        "bars": bars,
        "width": 20 + max(1, len(by_grade)) * 3 * CHART_BAR,
        "height": CHART_HEIGHT,
        "bar": CHART_BAR,
        "top": top,
    }


@router.get("/models/monitoring")
def models_monitoring(request: Request, session: DB) -> Response:
    got = guard(request, session, None, Action.READ_MODELS)
    if isinstance(got, Response):
        return got
    report = decisions.monitoring(session, ctx=page_context(request, got))
    return render(
        request, "decisions/monitoring.html", report=report, chart=_bars(report["by_grade"]), pct=pct
    )


def _model_page(
    request: Request, session: Session, actor: Actor, model_id: uuid.UUID, *, status: int = 200, **extra: Any
) -> Response:
    try:
        model = registry.visible_model(session, ctx=page_context(request, actor), model_id=model_id)
    except NotFound:
        return _not_found(request, N_("no such model"))
    promotions = session.scalars(
        select(ModelPromotion)
        .where(ModelPromotion.model_id == model.id)
        .order_by(ModelPromotion.created_at.desc())
    ).all()
    card = model.card or {}
    return render(
        request,
        "decisions/model.html",
        status=status,
        model=model_out(model),
        card=card,
        training=card.get("training_data") or {},
        features=card.get("features") or [],
        scaling=card.get("scaling") or {},
        metrics=sorted((card.get("metrics") or {}).items()),
        versions=sorted((card.get("versions") or {}).items()),
        promotions=promotions,
        can_manage=actor.can(Action.MANAGE_MODELS),
        target_roles=TARGET_ROLES,
        **DECISION_HELPERS,
        **extra,
    )


@router.get("/models/{model_id}")
def model_card(request: Request, session: DB, model_id: str, done: str = "") -> Response:
    got = guard(request, session, None, Action.READ_MODELS)
    if isinstance(got, Response):
        return got
    found = _uuid(model_id)
    if found is None:
        return _not_found(request, N_("no such model"))
    done = done if done in {"proposed", "approved", "rejected"} else ""
    return _model_page(request, session, got, found, done=done)


@router.post("/models/{model_id}/promotions", dependencies=[Csrf])
def model_propose(request: Request, session: DB, model_id: str, form: FormDep) -> Response:
    got = guard(request, session, None, Action.MANAGE_MODELS)
    if isinstance(got, Response):
        return got
    found = _uuid(model_id)
    if found is None:
        return _not_found(request, N_("no such model"))
    submitted = {"target_role": text(form, "target_role"), "reason": text(form, "reason")}
    errors: dict[str, str] = {}
    status = 422
    if submitted["target_role"] not in TARGET_ROLES:
        errors["target_role"] = N_("Choose one of the options.")
    if not submitted["reason"]:
        errors["reason"] = N_("say why")
    if not errors:
        try:
            registry.propose(
                session,
                ctx=page_context(request, got),
                model_id=found,
                target_role=submitted["target_role"],
                reason=submitted["reason"],
            )
        except NotFound:
            session.rollback()
            return _not_found(request, N_("no such model"))
        except YunrongError as exc:
            session.rollback()
            status = exc.status
            errors = field_errors(exc.problems, PROPOSAL_FIELDS)
            if not exc.problems or "form" in errors:
                errors["propose"] = errors.pop("form", exc.detail)
        else:
            return RedirectResponse(f"/models/{found}?done=proposed", status_code=303)
    return _model_page(request, session, got, found, status=status, errors=errors, form=submitted)


@router.post("/model-promotions/{promotion_id}/decision", dependencies=[Csrf])
def promotion_decide(request: Request, session: DB, promotion_id: str, form: FormDep) -> Response:
    got = guard(request, session, None, Action.MANAGE_MODELS)
    if isinstance(got, Response):
        return got
    found = _uuid(promotion_id)
    promotion = session.get(ModelPromotion, found) if found is not None else None
    if promotion is None:
        return _not_found(request, N_("no such promotion"))
    model_id = promotion.model_id
    choice = text(form, "approve")
    reason = text(form, "reason")
    submitted = {"approve": choice, "decision_reason": reason}
    errors: dict[str, str] = {}
    status = 422
    if choice not in {"approve", "reject"}:
        errors["approve"] = N_("Choose one of the options.")
    if not errors:
        try:
            registry.decide(
                session,
                ctx=page_context(request, got),
                promotion_id=promotion.id,
                approve=choice == "approve",
                reason=reason,
            )
        except YunrongError as exc:
            session.rollback()
            status = exc.status
            errors = field_errors(exc.problems, DECISION_FIELDS)
            if not exc.problems or "form" in errors:
                errors["decision"] = errors.pop("form", exc.detail)
                errors["decision_title"] = type(exc).title
        else:
            done = "approved" if choice == "approve" else "rejected"
            return RedirectResponse(f"/models/{model_id}?done={done}", status_code=303)
    if "reason" in errors:
        errors["decision_reason"] = errors.pop("reason")
    return _model_page(
        request,
        session,
        got,
        model_id,
        status=status,
        errors=errors,
        form=submitted,
        row_id=str(found),
    )
