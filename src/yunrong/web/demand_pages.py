"""Pages of steps 1–3: demands, service orders, signed attestations, the credit file, listings.

Enterprises draft financing demands for any of the five products, submit or withdraw them, and read
their credit file (/enterprise/demands, /enterprise/credit-file); agencies work their service
orders and return typed results signed with their own Ed25519 key, which the platform never holds
(/agency/orders, /agency/webhook); investors, regulators and the operator read listings
(/investor/listings, /listings); the operator reassigns and waives orders and watches every demand
(/operator/orders, /operator/demands); anyone may check an attestation (/attestations/{id}/verify).
Every page calls the same service functions as the JSON API and shows a refused input beside its
field; nothing is saved when anything is refused.
"""

from __future__ import annotations

import re
import types
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, Union, get_args, get_origin
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from yunrong import deps
from yunrong.config import Settings
from yunrong.demands import service as demands
from yunrong.demands.model import DemandStatus, Product, RepaymentMethod
from yunrong.demands.schemas import DemandIn, ReasonIn
from yunrong.demands.tables import Demand
from yunrong.deps import DB, SettingsDep
from yunrong.identity.model import Action, Actor, OrgType, Portal
from yunrong.identity.tables import Organisation
from yunrong.kit.clock import business_date
from yunrong.kit.errors import FieldProblem, NotFound, YunrongError
from yunrong.kit.money import Money, MoneyError
from yunrong.verification import attestations, credit_file, listings, orders, webhooks
from yunrong.web.forms import FormDep, field_errors, nest, problems_of, text, texts, values
from yunrong.web.i18n import N_
from yunrong.web.rendering import Csrf, guard, money, page_context, render, render_error
from yunrong.web.rendering import parse_uuid as _uuid

router = APIRouter(include_in_schema=False)

CURRENCY = "CNY"
ORDER_STATUSES = (
    "unassigned",
    "assigned",
    "accepted",
    "escalated",
    "completed",
    "declined",
    "cancelled",
    "waived",
)
#: Orders an agency may still act on (the service decides; these only choose which forms to show).
WORKABLE = ("assigned", "accepted", "escalated")


def _not_found(request: Request, detail: str) -> Response:
    return render_error(request, 404, N_("Not found"), detail)


def _errors(exc: YunrongError, fields: Sequence[str], *, default: str = "form", **kw: Any) -> dict[str, str]:
    """A service error keyed by the form's field names; an error without a field goes to ``default``."""
    errors = field_errors(exc.problems, fields, **kw)
    unplaced = errors.pop("form", None)
    if not exc.problems or unplaced:
        errors.setdefault(default, unplaced or exc.detail)
    return errors


def _org_names(session: Session, ids: Sequence[uuid.UUID | None]) -> dict[uuid.UUID, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return dict(
        session.execute(select(Organisation.id, Organisation.name).where(Organisation.id.in_(wanted))).all()
    )


def show_value(value: Any) -> str:
    """A credit fact's value for people: amounts with their currency, objects as "key: value"."""
    if isinstance(value, dict):
        currency = str(value.get("currency") or CURRENCY)
        parts = []
        for key, item in value.items():
            if key == "currency":
                continue
            if key.endswith("_minor") and isinstance(item, int) and not isinstance(item, bool):
                parts.append((key.removesuffix("_minor"), money(item, currency)))
            else:
                parts.append((key, show_value(item)))
        if len(parts) == 1 and parts[0][0] == "value":
            return parts[0][1]
        return "; ".join(f"{k}: {v}" for k, v in parts)
    if isinstance(value, list):
        return " · ".join(show_value(v) for v in value)
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "✓" if value else "✗"
    return str(value)


def percent(value: float) -> str:
    return f"{value * 100:.0f}%"


HELPERS: dict[str, Any] = {"money": money, "show_value": show_value, "percent": percent}


# --- enterprise: the demand form ------------------------------------------------------------------

USE_ROWS = 5
PATENT_ROWS = 3
COLLATERAL_ROWS = 3

SCALARS = (
    "product",
    "title",
    "amount",
    "min_funding",
    "term_months",
    "repayment_method",
    "max_annual_rate",
    "purpose",
    "innovation.rd_spend",
    "innovation.certificate_number",
    "project_key",
)
CHECKS = ("innovation.high_tech_certified", "guarantee_wanted")
#: Lists entered as rows: the list's path, its number of rows and the fields of a row.
ROW_LISTS: dict[str, tuple[int, tuple[str, ...]]] = {
    "use_of_funds": (USE_ROWS, ("item", "amount")),
    "innovation.patents": (PATENT_ROWS, ("number", "title")),
    "collateral": (COLLATERAL_ROWS, ("kind", "description", "value")),
}
#: The product-specific facts, each a fieldset.
FACTS: dict[str, tuple[str, ...]] = {
    "receivable": ("debtor_name", "debtor_credit_code", "invoice_number", "amount", "due_date"),
    "inventory": ("goods", "warehouse", "quantity", "unit", "value"),
    "store": ("platform", "store_id", "monthly_sales"),
    "lease": ("equipment", "supplier", "price", "residual_value", "end_option"),
}
#: Which fieldsets belong to which product (only for showing them; the service decides what is needed).
FACT_PRODUCTS: dict[str, tuple[str, ...]] = {
    "receivable": (Product.SUPPLY_CHAIN_RECEIVABLE.value,),
    "inventory": (Product.SUPPLY_CHAIN_RECEIVABLE.value,),
    "store": (Product.ECOMMERCE_CREDIT_LINE.value,),
    "lease": (Product.FINANCIAL_LEASE.value,),
    "target_bank_ids": (Product.BANK_LOAN.value,),
}
AMOUNTS = {
    "amount",
    "min_funding",
    "innovation.rd_spend",
    "facts.receivable.amount",
    "facts.inventory.value",
    "facts.lease.price",
    "facts.lease.residual_value",
}

ROW_FIELDS = tuple(
    f"{path}.{row}.{name}"
    for path, (count, names) in ROW_LISTS.items()
    for row in range(count)
    for name in names
)
FACT_FIELDS = tuple(f"facts.{kind}.{name}" for kind, names in FACTS.items() for name in names)
DEMAND_FIELDS = (
    *SCALARS,
    *CHECKS,
    *ROW_LISTS,
    *ROW_FIELDS,
    *(f"facts.{kind}" for kind in FACTS),
    *FACT_FIELDS,
    "facts.target_bank_ids",
    "facts",
    "innovation",
    "currency",
)
_SPLIT = re.compile(r"[\s,;，；、]+")


def _amount_text(value: str) -> str:
    return value.replace(",", "").replace(" ", "") if re.fullmatch(r"[\d,. ]+", value) else value


def demand_data(form: FormData) -> tuple[dict[str, Any], dict[str, list[int]]]:
    """The nested input of ``DemandIn`` from the form, and the form row of each list item (empty rows
    are left out)."""
    flat = {name: text(form, name) for name in SCALARS}
    for name in AMOUNTS & set(flat):
        flat[name] = _amount_text(flat[name])
    data = nest(flat)
    for name in CHECKS:
        if text(form, name):
            parent = data.setdefault("innovation", {}) if "." in name else data
            parent[name.rsplit(".", 1)[-1]] = True
    positions: dict[str, list[int]] = {}
    for path, (count, names) in ROW_LISTS.items():
        items: list[dict[str, str]] = []
        positions[path] = []
        for row in range(count):
            cells = {name: text(form, f"{path}.{row}.{name}") for name in names}
            if path == "collateral" and not (cells["description"] or cells["value"]):
                continue  # a kind alone (the select's default) is an empty row
            if not any(cells.values()):
                continue
            for money_cell in ("amount", "value"):
                if money_cell in cells:
                    cells[money_cell] = _amount_text(cells[money_cell])
            items.append({k: v for k, v in cells.items() if v})
            positions[path].append(row)
        if "." in path:
            data.setdefault(path.split(".")[0], {})[path.split(".")[1]] = items
        else:
            data[path] = items
    facts: dict[str, Any] = {}
    for kind, names in FACTS.items():
        cells = {name: text(form, f"facts.{kind}.{name}") for name in names}
        if kind == "lease" and not any(v for k, v in cells.items() if k != "end_option"):
            continue
        if not any(cells.values()):
            continue
        item: dict[str, Any] = {}
        for name, value in cells.items():
            if not value:
                continue
            full = f"facts.{kind}.{name}"
            if name == "monthly_sales":
                item[name] = [v for v in _SPLIT.split(value) if v]
            else:
                item[name] = _amount_text(value) if full in AMOUNTS else value
        facts[kind] = item
    banks = texts(form, "facts.target_bank_ids")
    if banks:
        facts["target_bank_ids"] = banks
    if facts:
        data["facts"] = facts
    return data, positions


def _bank_choices(session: Session) -> list[tuple[str, str]]:
    """The banks on the platform (they make direct offers): whom a bank-loan demand may be
    addressed to."""
    rows = session.execute(
        select(Organisation.id, Organisation.name)
        .where(Organisation.type == OrgType.CUSTODIAN_BANK.value)
        .order_by(Organisation.name)
    ).all()
    return [(str(i), name) for i, name in rows]


def _demand_form(request: Request, session: Session, *, status: int = 200, **extra: Any) -> Response:
    extra.setdefault("form", {"product": Product.BANK_LOAN.value, "collateral.0.kind": ""})
    return render(
        request,
        "demands/new.html",
        status=status,
        products=[p.value for p in Product],
        methods=[m.value for m in RepaymentMethod],
        collateral_kinds=["property", "equipment", "inventory", "receivable", "equity", "deposit", "other"],
        end_options=["purchase", "renew", "return"],
        banks=_bank_choices(session),
        rows={path: range(count) for path, (count, _) in ROW_LISTS.items()},
        fact_products=FACT_PRODUCTS,
        **extra,
    )


@router.get("/enterprise/demands/new")
def demand_new(request: Request, session: DB) -> Response:
    got = guard(request, session, Portal.ENTERPRISE, Action.CREATE_DEMAND)
    if isinstance(got, Response):
        return got
    return _demand_form(request, session)


@router.post("/enterprise/demands", dependencies=[Csrf])
def demand_create(request: Request, session: DB, settings: SettingsDep, form: FormDep) -> Response:
    got = guard(request, session, Portal.ENTERPRISE, Action.CREATE_DEMAND)
    if isinstance(got, Response):
        return got
    data, positions = demand_data(form)
    names = (*SCALARS, *CHECKS, *ROW_FIELDS, *FACT_FIELDS)
    shown = {
        "form": values(form, names),
        "lists": {"facts.target_bank_ids": texts(form, "facts.target_bank_ids")},
    }
    try:
        body = DemandIn.model_validate(data)
    except ValidationError as exc:
        problems = problems_of(exc)
        errors = field_errors(problems, DEMAND_FIELDS, rows=positions)
        return _demand_form(request, session, status=422, errors=errors, **shown)
    try:
        demand = demands.create_demand(session, ctx=page_context(request, got), settings=settings, data=body)
    except YunrongError as exc:
        session.rollback()  # nothing of a refused demand stays
        errors = _errors(exc, DEMAND_FIELDS, rows=positions)
        return _demand_form(request, session, status=exc.status, errors=errors, **shown)
    return RedirectResponse(f"/enterprise/demands/{demand.id}?done=drafted", status_code=303)


# --- enterprise: my demands, one demand, my credit file ---------------------------------------------


@router.get("/enterprise/demands")
def my_demands(request: Request, session: DB) -> Response:
    got = guard(request, session, Portal.ENTERPRISE, Action.READ_DEMAND)
    if isinstance(got, Response):
        return got
    rows = demands.list_demands(session, ctx=page_context(request, got), limit=200)
    return render(
        request, "demands/list.html", demands=rows, can_create=got.can(Action.CREATE_DEMAND), **HELPERS
    )


SUBMIT_FIELDS = ("amount", "term_months", "project_key")


def _demand_page(
    request: Request,
    session: Session,
    settings: Settings,
    actor: Actor,
    demand_id: uuid.UUID,
    *,
    status: int = 200,
    **extra: Any,
) -> Response:
    ctx = page_context(request, actor)
    try:
        demand = demands.visible_demand(session, ctx=ctx, demand_id=demand_id)
    except NotFound:
        return _not_found(request, N_("no such demand"))
    rows = (
        orders.list_orders(session, ctx=ctx, demand_id=demand.id, limit=500)
        if actor.can(Action.READ_ORDERS)
        else []
    )
    rows.sort(key=lambda o: (o.created_at, o.id))
    own = demand.organisation_id == actor.organisation_id and actor.can(Action.CREATE_DEMAND)
    from yunrong.web.loan_pages import funding_box  # step 5: the round or the banks' offers

    return render(
        request,
        "demands/detail.html",
        status=status,
        demand=demand,
        events=demands.events_of(session, demand.id),
        orders=rows,
        agencies=_org_names(session, [o.agency_id for o in rows]),
        enterprise_name=_org_names(session, [demand.organisation_id]).get(demand.organisation_id, ""),
        index=credit_file.demand_index(session, demand, ctx.now()),
        can_submit=own and demand.status == DemandStatus.DRAFT.value,
        can_withdraw=own and demand.status not in ("funded", "failed", "withdrawn"),
        listed=demand.status in listings.LISTED,
        **HELPERS,
        **funding_box(request, session, actor, demand),
        **extra,
    )


@router.get("/enterprise/demands/{demand_id}")
def my_demand(
    request: Request, session: DB, settings: SettingsDep, demand_id: str, done: str = ""
) -> Response:
    got = guard(request, session, Portal.ENTERPRISE, Action.READ_DEMAND)
    if isinstance(got, Response):
        return got
    found = _uuid(demand_id)
    if found is None:
        return _not_found(request, N_("no such demand"))
    return _demand_page(request, session, settings, got, found, done=done)


@router.post("/enterprise/demands/{demand_id}/submission", dependencies=[Csrf])
def demand_submit(request: Request, session: DB, settings: SettingsDep, demand_id: str) -> Response:
    got = guard(request, session, Portal.ENTERPRISE, Action.CREATE_DEMAND)
    if isinstance(got, Response):
        return got
    found = _uuid(demand_id)
    if found is None:
        return _not_found(request, N_("no such demand"))
    try:
        demands.submit_demand(session, ctx=page_context(request, got), settings=settings, demand_id=found)
    except NotFound:
        session.rollback()
        return _not_found(request, N_("no such demand"))
    except YunrongError as exc:
        session.rollback()
        errors = _errors(exc, SUBMIT_FIELDS, default="submit")
        errors["submit_title"] = type(exc).title
        return _demand_page(request, session, settings, got, found, status=exc.status, errors=errors)
    return RedirectResponse(f"/enterprise/demands/{found}?done=submitted", status_code=303)


@router.post("/enterprise/demands/{demand_id}/withdrawal", dependencies=[Csrf])
def demand_withdraw(
    request: Request, session: DB, settings: SettingsDep, demand_id: str, form: FormDep
) -> Response:
    got = guard(request, session, Portal.ENTERPRISE, Action.CREATE_DEMAND)
    if isinstance(got, Response):
        return got
    found = _uuid(demand_id)
    if found is None:
        return _not_found(request, N_("no such demand"))
    submitted = {"withdraw_reason": text(form, "withdraw_reason")}
    try:
        reason = ReasonIn(reason=submitted["withdraw_reason"]).reason
    except ValidationError:
        errors = {"withdraw_reason": N_("Required.")}
        return _demand_page(request, session, settings, got, found, status=422, errors=errors, form=submitted)
    try:
        demands.withdraw_demand(session, ctx=page_context(request, got), demand_id=found, reason=reason)
    except NotFound:
        session.rollback()
        return _not_found(request, N_("no such demand"))
    except YunrongError as exc:
        session.rollback()
        errors = _errors(exc, ("reason",), default="withdraw_reason")
        errors["withdraw_reason"] = errors.pop("reason", errors.get("withdraw_reason", exc.detail))
        return _demand_page(
            request, session, settings, got, found, status=exc.status, errors=errors, form=submitted
        )
    return RedirectResponse(f"/enterprise/demands/{found}?done=withdrawn", status_code=303)


@router.get("/enterprise/credit-file")
def my_credit_file(request: Request, session: DB, settings: SettingsDep, done: str = "") -> Response:
    got = guard(request, session, Portal.ENTERPRISE, Action.READ_CREDIT_FILE)
    if isinstance(got, Response):
        return got
    assert got.organisation_id is not None
    file = credit_file.read_credit_file(
        session, ctx=page_context(request, got), enterprise_id=got.organisation_id, settings=settings
    )
    return render(
        request,
        "demands/credit_file.html",
        file=file,
        categories=sorted(file.categories.items()),
        can_declare=got.can(Action.MANAGE_OWN_PROFILE),
        done=done == "declared",
        **HELPERS,
    )


@router.post("/enterprise/credit-file/registration", dependencies=[Csrf])
def declare_registration(request: Request, session: DB) -> Response:
    """File the registration profile as self-declared facts (unchanged facts are not filed twice)."""
    got = guard(request, session, Portal.ENTERPRISE, Action.MANAGE_OWN_PROFILE)
    if isinstance(got, Response):
        return got
    assert got.organisation_id is not None
    credit_file.self_declare_registration(
        session, ctx=page_context(request, got), enterprise_id=got.organisation_id
    )
    return RedirectResponse("/enterprise/credit-file?done=declared", status_code=303)


# --- agency: service orders --------------------------------------------------------------------------


@router.get("/agency/orders")
def agency_orders(request: Request, session: DB, status: str = "", done: str = "") -> Response:
    got = guard(request, session, Portal.AGENCY, Action.WORK_ORDERS)
    if isinstance(got, Response):
        return got
    chosen = status if status in ORDER_STATUSES else ""
    rows = orders.list_orders(session, ctx=page_context(request, got), status=chosen or None, limit=500)
    return render(
        request,
        "demands/agency_orders.html",
        orders=rows,
        enterprises=_org_names(session, [o.enterprise_id for o in rows]),
        statuses=ORDER_STATUSES,
        current_status=chosen,
        done=done if done in {"declined"} else "",
        **HELPERS,
    )


@dataclass(frozen=True)
class ResultField:
    """One input of an agency's typed result, read from the result model (``attestations.RESULTS``)."""

    name: str
    kind: str  # choice | bool | date | int | money | decimal | text | uuid | rows
    options: tuple[str, ...] = ()
    required: bool = True
    default: str = ""
    columns: tuple[ResultField, ...] = ()


RESULT_ROWS = 5


def _field_of(name: str, info: Any) -> ResultField:
    annotation = info.annotation
    origin = get_origin(annotation)
    default = info.default if isinstance(info.default, str) else ""
    required = info.is_required()
    if origin is Literal:
        return ResultField(name, "choice", tuple(str(a) for a in get_args(annotation)), required, default)
    if origin in (Union, types.UnionType):
        inner = [a for a in get_args(annotation) if a is not type(None)]
        kind = "uuid" if inner == [uuid.UUID] else "text"
        return ResultField(name, kind, required=False)
    if origin is list:
        (item,) = get_args(annotation)
        columns = tuple(_field_of(n, i) for n, i in item.model_fields.items())
        return ResultField(name, "rows", required=required, columns=columns)
    kinds: dict[Any, str] = {bool: "bool", date: "date", Decimal: "decimal", str: "text"}
    if annotation is int:
        return ResultField(name, "money" if name.endswith("_minor") else "int", required=required)
    return ResultField(name, kinds.get(annotation, "text"), required=required, default=default)


def result_fields(kind: str) -> list[ResultField]:
    model = attestations.RESULTS.get(kind)
    return [_field_of(n, i) for n, i in model.model_fields.items()] if model else []


COMPLETION_FIELDS = ("issued_at", "valid_until", "signature")


def _read_cell(
    field: ResultField, raw: str, currency: str, problems: list[FieldProblem], loc: tuple[Any, ...]
) -> Any:
    """A form cell as the JSON value the result model takes (amounts in minor units); None: left out."""
    if field.kind == "bool":
        return raw == "true"
    if raw == "":
        return None
    if field.kind == "money":
        try:
            return Money.of(Decimal(_amount_text(raw)), currency).minor
        except (InvalidOperation, MoneyError, ValueError):
            problems.append(FieldProblem(loc, N_("Enter an amount, e.g. 1250000.00.")))
            return None
    if field.kind == "int":
        if not raw.isdigit():
            problems.append(FieldProblem(loc, N_("Enter a whole number.")))
            return None
        return int(raw)
    return raw


def result_payload(
    form: FormData, fields: Sequence[ResultField]
) -> tuple[dict[str, Any], list[FieldProblem], dict[str, list[int]]]:
    """The result exactly as it will be signed and submitted, from the form's ``result.*`` fields."""
    currency = text(form, "result.currency") or CURRENCY
    payload: dict[str, Any] = {}
    problems: list[FieldProblem] = []
    positions: dict[str, list[int]] = {}
    for field in fields:
        if field.kind == "rows":
            items: list[dict[str, Any]] = []
            positions[f"result.{field.name}"] = []
            for row in range(RESULT_ROWS):
                cells = {c.name: text(form, f"result.{field.name}.{row}.{c.name}") for c in field.columns}
                if not any(cells.values()):
                    continue
                index = len(items)
                item: dict[str, Any] = {}
                for column in field.columns:
                    value = _read_cell(
                        column, cells[column.name], currency, problems, (field.name, index, column.name)
                    )
                    if value is not None:
                        item[column.name] = value
                items.append(item)
                positions[f"result.{field.name}"].append(row)
            payload[field.name] = items
            continue
        value = _read_cell(field, text(form, f"result.{field.name}"), currency, problems, (field.name,))
        if value is not None:
            payload[field.name] = value
    return payload, problems, positions


def result_field_names(fields: Sequence[ResultField]) -> list[str]:
    names: list[str] = []
    for field in fields:
        names.append(f"result.{field.name}")
        if field.kind == "rows":
            names += [f"result.{field.name}.{r}.{c.name}" for r in range(RESULT_ROWS) for c in field.columns]
    return names


def _instant(value: str, settings: Settings) -> datetime | None:
    """A date from the form as the start of that day in the platform's time zone."""
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return None
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(settings.timezone))


def _order_page(
    request: Request,
    session: Session,
    settings: Settings,
    actor: Actor,
    order_id: uuid.UUID,
    *,
    status: int = 200,
    **extra: Any,
) -> Response:
    ctx = page_context(request, actor)
    try:
        order = orders.visible_order(session, ctx=ctx, order_id=order_id)
        if order.agency_id != actor.organisation_id:
            raise NotFound("no such service order")
    except NotFound:
        return _not_found(request, N_("no such service order"))
    try:
        file = credit_file.read_credit_file(
            session, ctx=ctx, enterprise_id=order.enterprise_id, settings=settings
        )
    except YunrongError:
        file = None
    fields = result_fields(order.agency_type)
    today = business_date(ctx.now(), settings.timezone)
    form = {"issued_at": today.isoformat(), "valid_until": (today + timedelta(days=365)).isoformat()}
    form |= {f"result.{f.name}": f.default or CURRENCY for f in fields if f.default or f.name == "currency"}
    form |= extra.pop("form", {})
    demand = session.get(Demand, order.demand_id) if order.demand_id else None
    return render(
        request,
        "demands/agency_order.html",
        status=status,
        order=order,
        demand=demand,
        enterprise_name=_org_names(session, [order.enterprise_id]).get(order.enterprise_id, ""),
        events=orders.events_of(session, order.id),
        file=file,
        categories=sorted(file.categories.items()) if file else [],
        fields=fields,
        result_rows=range(RESULT_ROWS),
        workable=order.status in WORKABLE,
        can_accept=order.status in ("assigned", "escalated") and order.accepted_at is None,
        form=form,
        **HELPERS,
        **extra,
    )


def _agency_order_id(
    request: Request, session: Session, order_id: str, action: Action
) -> tuple[Actor, uuid.UUID] | Response:
    got = guard(request, session, Portal.AGENCY, action)
    if isinstance(got, Response):
        return got
    found = _uuid(order_id)
    if found is None:
        return _not_found(request, N_("no such service order"))
    return got, found


@router.get("/agency/orders/{order_id}")
def agency_order(
    request: Request, session: DB, settings: SettingsDep, order_id: str, done: str = ""
) -> Response:
    got = _agency_order_id(request, session, order_id, Action.WORK_ORDERS)
    if isinstance(got, Response):
        return got
    return _order_page(request, session, settings, *got, done=done)


@router.post("/agency/orders/{order_id}/acceptance", dependencies=[Csrf])
def agency_accept(request: Request, session: DB, settings: SettingsDep, order_id: str) -> Response:
    got = _agency_order_id(request, session, order_id, Action.WORK_ORDERS)
    if isinstance(got, Response):
        return got
    actor, found = got
    try:
        orders.accept_order(session, ctx=page_context(request, actor), order_id=found)
    except NotFound:
        session.rollback()
        return _not_found(request, N_("no such service order"))
    except YunrongError as exc:
        session.rollback()
        return _order_page(
            request, session, settings, actor, found, status=exc.status, errors={"accept": exc.detail}
        )
    return RedirectResponse(f"/agency/orders/{found}?done=accepted", status_code=303)


@router.post("/agency/orders/{order_id}/decline", dependencies=[Csrf])
def agency_decline(
    request: Request, session: DB, settings: SettingsDep, order_id: str, form: FormDep
) -> Response:
    got = _agency_order_id(request, session, order_id, Action.WORK_ORDERS)
    if isinstance(got, Response):
        return got
    actor, found = got
    reason = text(form, "decline_reason")
    try:
        orders.decline_order(session, ctx=page_context(request, actor), order_id=found, reason=reason)
    except NotFound:
        session.rollback()
        return _not_found(request, N_("no such service order"))
    except YunrongError as exc:
        session.rollback()
        errors = _errors(exc, ("reason",), default="decline_reason")
        if "reason" in errors:
            errors["decline_reason"] = errors.pop("reason")
        return _order_page(
            request,
            session,
            settings,
            actor,
            found,
            status=exc.status,
            errors=errors,
            form={"decline_reason": reason},
        )
    return RedirectResponse("/agency/orders?done=declined", status_code=303)


@router.post("/agency/orders/{order_id}/completion", dependencies=[Csrf])
def agency_complete(
    request: Request, session: DB, settings: SettingsDep, order_id: str, form: FormDep
) -> Response:
    """Two steps in one form: "Show the text to sign" computes the canonical form from the entered
    values; "Submit the signed result" sends those values with the agency's signature."""
    got = _agency_order_id(request, session, order_id, Action.WORK_ORDERS)
    if isinstance(got, Response):
        return got
    actor, found = got
    ctx = page_context(request, actor)
    try:
        order = orders.visible_order(session, ctx=ctx, order_id=found)
        if order.agency_id != actor.organisation_id:
            raise NotFound("no such service order")
    except NotFound:
        return _not_found(request, N_("no such service order"))
    fields = result_fields(order.agency_type)
    names = result_field_names(fields)
    known = (*names, *COMPLETION_FIELDS)
    submitted = values(form, known)
    payload, problems, positions = result_payload(form, fields)
    errors = field_errors(problems, known, prefix=("result",), rows=positions)
    issued_at = _instant(submitted["issued_at"], settings)
    valid_until = _instant(submitted["valid_until"], settings)
    for name, instant in (("issued_at", issued_at), ("valid_until", valid_until)):
        if instant is None:
            errors.setdefault(name, N_("Enter a date as YYYY-MM-DD."))
    model = attestations.RESULTS.get(order.agency_type)
    canonical = ""
    if model is not None and not errors:
        try:
            result = model.model_validate(payload)
        except ValidationError as exc:
            errors = field_errors(_problems(exc), known, prefix=("result",), rows=positions)
        else:
            assert issued_at is not None
            assert valid_until is not None
            assert order.agency_id is not None
            canonical = attestations.canonical_form(
                order_ref=order.ref,
                enterprise_id=order.enterprise_id,
                agency_id=order.agency_id,
                kind=order.agency_type,
                subject=attestations.subject_of(order.agency_type, result),
                payload=payload,
                issued_at=issued_at,
                valid_until=valid_until,
            )
    signing = text(form, "step") != "submit"
    if not signing and not submitted["signature"] and not errors:
        errors["signature"] = N_("Required.")
    if errors or signing:
        return _order_page(
            request,
            session,
            settings,
            actor,
            found,
            status=422 if errors else 200,
            errors=errors,
            form=submitted,
            canonical=canonical,
        )
    assert issued_at is not None
    assert valid_until is not None
    try:
        orders.complete_order(
            session,
            ctx=ctx,
            order_id=found,
            payload=payload,
            issued_at=issued_at,
            valid_until=valid_until,
            signature=submitted["signature"],
        )
    except NotFound:
        session.rollback()
        return _not_found(request, N_("no such service order"))
    except YunrongError as exc:
        session.rollback()
        moved = [
            FieldProblem(("result", *p.loc[1:]) if p.loc[:1] == ("payload",) else p.loc, p.msg, p.type)
            for p in exc.problems
        ]
        errors = field_errors(moved, known, rows=positions)
        unplaced = errors.pop("form", None)
        if not moved or unplaced:
            errors["completion"] = unplaced or exc.detail
        errors["completion_title"] = type(exc).title
        return _order_page(
            request,
            session,
            settings,
            actor,
            found,
            status=exc.status,
            errors=errors,
            form=submitted,
            canonical=canonical,
        )
    return RedirectResponse(f"/agency/orders/{found}?done=completed", status_code=303)


def _problems(exc: ValidationError) -> list[FieldProblem]:
    """Pydantic's problems with a result; a rule of the model itself keeps its own message."""
    out = []
    for problem, error in zip(problems_of(exc), exc.errors(), strict=True):
        if error["type"] == "value_error":
            out.append(
                FieldProblem(problem.loc, str(error["msg"]).removeprefix("Value error, "), problem.type)
            )
        else:
            out.append(problem)
    return out


# --- agency: the webhook ---------------------------------------------------------------------------------


def _webhook_page(
    request: Request, session: Session, actor: Actor, *, status: int = 200, **extra: Any
) -> Response:
    ctx = page_context(request, actor)
    try:
        hook = webhooks.read_webhook(session, ctx=ctx)
    except NotFound:
        hook = None
    return render(
        request,
        "demands/webhook.html",
        status=status,
        hook=hook,
        deliveries=webhooks.list_deliveries(session, ctx=ctx, limit=100),
        tolerance=webhooks.DEFAULT_TOLERANCE_SECONDS,
        **extra,
    )


@router.get("/agency/webhook")
def agency_webhook(request: Request, session: DB) -> Response:
    got = guard(request, session, Portal.AGENCY, Action.MANAGE_WEBHOOKS)
    if isinstance(got, Response):
        return got
    return _webhook_page(request, session, got)


@router.post("/agency/webhook", dependencies=[Csrf])
def agency_webhook_set(request: Request, session: DB, settings: SettingsDep, form: FormDep) -> Response:
    got = guard(request, session, Portal.AGENCY, Action.MANAGE_WEBHOOKS)
    if isinstance(got, Response):
        return got
    url = text(form, "url")
    try:
        secret = webhooks.set_webhook(session, ctx=page_context(request, got), settings=settings, url=url)
    except YunrongError as exc:
        session.rollback()
        errors = _errors(exc, ("url",), default="url")
        return _webhook_page(request, session, got, status=exc.status, errors=errors, form={"url": url})
    # The secret is shown on this answer only: never stored in clear, never redirected through a URL.
    return _webhook_page(request, session, got, secret=secret)


# --- investors, regulators, the operator: listings ----------------------------------------------------


def _listing_base(request: Request) -> str:
    return "/investor/listings" if request.url.path.startswith("/investor/") else "/listings"


def listings_index(request: Request, session: DB, settings: SettingsDep) -> Response:
    got = guard(request, session, None, Action.READ_LISTINGS)
    if isinstance(got, Response):
        return got
    try:
        rows = listings.list_listings(session, ctx=page_context(request, got), settings=settings)
    except YunrongError as exc:  # e.g. an investor not admitted yet
        return render_error(request, exc.status, type(exc).title, exc.detail)
    return render(request, "demands/listings.html", listings=rows, base=_listing_base(request), **HELPERS)


def listing_detail(request: Request, session: DB, settings: SettingsDep, demand_id: str) -> Response:
    got = guard(request, session, None, Action.READ_LISTINGS)
    if isinstance(got, Response):
        return got
    found = _uuid(demand_id)
    try:
        if found is None:
            raise NotFound("no such listing")
        listing = listings.read_listing(
            session, ctx=page_context(request, got), demand_id=found, settings=settings
        )
    except NotFound:
        return _not_found(request, N_("no such listing"))
    except YunrongError as exc:
        return render_error(request, exc.status, type(exc).title, exc.detail)
    funding: dict[str, Any] = {}
    if _listing_base(request) == "/investor/listings":
        from yunrong.web.investor_pages import funding_box  # imported here: it builds on this module

        funding = funding_box(request, session, settings, got, listing.demand)
    return render(
        request,
        "demands/listing.html",
        listing=listing,
        demand=listing.demand,
        categories=sorted(listing.categories.items()),
        base=_listing_base(request),
        **HELPERS,
        **funding,
    )


for _base in ("/investor/listings", "/listings"):
    router.add_api_route(_base, listings_index, methods=["GET"])
    router.add_api_route(f"{_base}/{{demand_id}}", listing_detail, methods=["GET"])


# --- operator: every order and every demand -----------------------------------------------------------


def _operator_orders_page(
    request: Request, session: Session, actor: Actor, *, status: int = 200, **extra: Any
) -> Response:
    rows = orders.list_orders(session, ctx=page_context(request, actor), limit=500)
    urgent = ("escalated", "unassigned")
    rows.sort(key=lambda o: (o.status not in urgent, urgent.index(o.status) if o.status in urgent else 0))
    demand_ids = {o.demand_id for o in rows if o.demand_id}
    refs = (
        dict(session.execute(select(Demand.id, Demand.ref).where(Demand.id.in_(demand_ids))).all())
        if demand_ids
        else {}
    )
    return render(
        request,
        "demands/operator_orders.html",
        status=status,
        orders=rows,
        names=_org_names(session, [*(o.agency_id for o in rows), *(o.enterprise_id for o in rows)]),
        demand_refs=refs,
        open_statuses=(*WORKABLE, "unassigned"),
        **HELPERS,
        **extra,
    )


@router.get("/operator/orders")
def operator_orders(request: Request, session: DB, done: str = "") -> Response:
    got = guard(request, session, Portal.OPERATOR, Action.MANAGE_ORDERS)
    if isinstance(got, Response):
        return got
    return _operator_orders_page(request, session, got, done=done if done in {"waived", "reassigned"} else "")


def _operator_order_action(
    request: Request, session: Session, order_id: str, form: FormData, action: str
) -> Response:
    got = guard(request, session, Portal.OPERATOR, Action.MANAGE_ORDERS)
    if isinstance(got, Response):
        return got
    found = _uuid(order_id)
    if found is None:
        return _not_found(request, N_("no such service order"))
    reason = text(form, "reason")
    command = orders.waive_order if action == "waive" else orders.reassign_order
    try:
        command(session, ctx=page_context(request, got), order_id=found, reason=reason)
    except NotFound:
        session.rollback()
        return _not_found(request, N_("no such service order"))
    except YunrongError as exc:
        session.rollback()
        errors = _errors(exc, ("reason",), default="reason")
        return _operator_orders_page(
            request,
            session,
            got,
            status=exc.status,
            errors=errors,
            row_id=str(found),
            row_action=action,
            form={"reason": reason},
        )
    done = "waived" if action == "waive" else "reassigned"
    return RedirectResponse(f"/operator/orders?done={done}", status_code=303)


@router.post("/operator/orders/{order_id}/waiver", dependencies=[Csrf])
def operator_waive(request: Request, session: DB, order_id: str, form: FormDep) -> Response:
    return _operator_order_action(request, session, order_id, form, "waive")


@router.post("/operator/orders/{order_id}/reassignment", dependencies=[Csrf])
def operator_reassign(request: Request, session: DB, order_id: str, form: FormDep) -> Response:
    return _operator_order_action(request, session, order_id, form, "reassign")


@router.get("/operator/demands")
def operator_demands(request: Request, session: DB, status: str = "") -> Response:
    got = guard(request, session, Portal.OPERATOR, Action.READ_DEMAND)
    if isinstance(got, Response):
        return got
    chosen = DemandStatus(status) if status in {s.value for s in DemandStatus} else None
    rows = demands.list_demands(session, ctx=page_context(request, got), status=chosen, limit=500)
    groups: dict[str, list[Demand]] = {s.value: [] for s in DemandStatus}
    for row in rows:
        groups.setdefault(row.status, []).append(row)
    return render(
        request,
        "demands/operator_demands.html",
        groups=[(s, groups[s]) for s in groups if groups[s]],
        statuses=[s.value for s in DemandStatus],
        current_status=chosen.value if chosen else "",
        names=_org_names(session, [d.organisation_id for d in rows]),
        **HELPERS,
    )


@router.get("/operator/demands/{demand_id}")
def operator_demand(request: Request, session: DB, settings: SettingsDep, demand_id: str) -> Response:
    got = guard(request, session, Portal.OPERATOR, Action.READ_DEMAND)
    if isinstance(got, Response):
        return got
    found = _uuid(demand_id)
    if found is None:
        return _not_found(request, N_("no such demand"))
    return _demand_page(request, session, settings, got, found)


# --- public: is this attestation genuine? ------------------------------------------------------------


@router.get("/attestations/{attestation_id}/verify")
def attestation_verify(request: Request, session: DB, attestation_id: str) -> Response:
    deps.page_actor(request, session)  # the navigation of a signed-in visitor; nobody needs to be
    found = _uuid(attestation_id)
    try:
        if found is None:
            raise NotFound("no such attestation")
        verdict = attestations.verify_attestation(session, found, now=request.app.state.clock.now())
    except NotFound:
        return _not_found(request, N_("no such attestation"))
    reasons = []
    if not verdict["key_registered"]:
        reasons.append(N_("The key that signed it is not the agency's registered key."))
    elif not verdict["signature_valid"]:
        reasons.append(N_("The signature does not verify over what is stored: the attestation was altered."))
    if verdict["revoked"]:
        reasons.append(N_("The agency revoked it."))
    if verdict["expired"]:
        reasons.append(N_("It has expired."))
    return render(request, "demands/verify.html", verdict=verdict, reasons=reasons)
