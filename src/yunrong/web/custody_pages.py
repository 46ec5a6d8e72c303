"""Pages of the custodian bank and the ledger.

Investors see their money, pay in and take out (/investor/money, with a hidden idempotency key per
form so that a double submit pays once) and download statements; the regulator and the operator
watch the fund flows (/regulator/funds, /operator/funds) and open alerts (/alerts); operators
propose and decide ledger adjustments, maker–checker (/operator/adjustments); authentication
agencies verify parties' bank accounts (/agency/bank-accounts). Every page calls the same service
functions as the JSON API and shows a refused input beside its field.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from yunrong.custody import adjustments, monitor
from yunrong.custody import service as custody
from yunrong.custody.accounts import Purpose
from yunrong.custody.model import InstructionKind, InstructionStatus
from yunrong.custody.routes import MoneyIn, instruction_out
from yunrong.custody.statements import statement_csv, statement_pdf
from yunrong.deps import DB, SettingsDep
from yunrong.identity.model import Action, Actor, Portal
from yunrong.identity.tables import Organisation
from yunrong.kit.errors import FieldProblem, InvalidInput, NotFound, YunrongError
from yunrong.kit.money import Money, MoneyError
from yunrong.ledger import idempotency
from yunrong.ledger import service as ledger
from yunrong.ledger.model import InsufficientFunds
from yunrong.ledger.verify import verify
from yunrong.parties import service as parties
from yunrong.parties.tables import Agency, BankAccount
from yunrong.supervision.alerts import list_alerts
from yunrong.web.forms import FormDep, field_errors, problems_of, text, values
from yunrong.web.i18n import N_
from yunrong.web.rendering import Csrf, guard, money, page_context, render, render_error
from yunrong.web.rendering import parse_uuid as _uuid

router = APIRouter(include_in_schema=False)

CURRENCY = "CNY"
MONEY_FIELDS = ("amount", "bank_account_id")
ADJUSTMENT_ROWS = 4
CHART_DAYS = 14


def _errors(
    exc: YunrongError, fields: Sequence[str], *, prefix: str = "", default: str = "form"
) -> dict[str, str]:
    """A service error keyed by the form's field names; an error without a field goes to ``default``."""
    errors = {f"{prefix}{k}" if k != "form" else k: v for k, v in field_errors(exc.problems, fields).items()}
    unplaced = errors.pop("form", None)
    if not exc.problems or unplaced:
        errors.setdefault(default, unplaced or exc.detail)
    return errors


def _not_found(request: Request, detail: str) -> Response:
    return render_error(request, 404, N_("Not found"), detail)


# --- investor: money --------------------------------------------------------------------------------


def _money_view(request: Request, session: Session, actor: Actor) -> dict[str, Any]:
    """Balances, instructions and bank accounts of the signed-in investor (the page and its poll)."""
    ctx = page_context(request, actor)
    accounts = custody.my_accounts(session, ctx=ctx)
    instructions = custody.my_instructions(session, ctx=ctx)
    pending_in: dict[str, int] = {}
    for row in instructions:
        if row.kind == InstructionKind.DEPOSIT.value and row.status == InstructionStatus.PENDING.value:
            pending_in[row.currency] = pending_in.get(row.currency, 0) + row.amount
    available = [(a, b) for a, b in accounts if a.purpose == Purpose.INVESTOR_AVAILABLE.value]
    currencies = sorted({a.currency for a, _ in available} | set(pending_in)) or [CURRENCY]
    balances = []
    for currency in currencies:
        found = next((b for a, b in available if a.currency == currency), None)
        balances.append(
            {
                "currency": currency,
                "available": found.available if found else 0,
                "held": found.pending_out if found else 0,
                "posted": found.posted if found else 0,
                "pending_in": pending_in.get(currency, 0),
            }
        )
    return {
        "balances": balances,
        "accounts": accounts,
        "instructions": instructions,
        "any_pending": any(i.status == InstructionStatus.PENDING.value for i in instructions),
    }


def _money_page(
    request: Request, session: Session, actor: Actor, *, status: int = 200, **extra: Any
) -> Response:
    assert actor.organisation_id is not None
    ctx = page_context(request, actor)
    bank_accounts = parties.bank_accounts_of(session, ctx=ctx, org_id=actor.organisation_id)
    return render(
        request,
        "custody/money.html",
        status=status,
        money=money,
        verified_accounts=[b for b in bank_accounts if b.verified_at is not None],
        unverified_accounts=[b for b in bank_accounts if b.verified_at is None],
        # A fresh key per rendered form: submitting the same form twice replays the first result.
        deposit_key=uuid.uuid4().hex,
        withdrawal_key=uuid.uuid4().hex,
        can_move=actor.can(Action.MOVE_OWN_MONEY),
        **_money_view(request, session, actor),
        **extra,
    )


@router.get("/investor/money")
def investor_money(request: Request, session: DB, done: str = "") -> Response:
    got = guard(request, session, Portal.INVESTOR, Action.READ_OWN_ACCOUNTS)
    if isinstance(got, Response):
        return got
    return _money_page(request, session, got, done=done if done in {"deposit", "withdrawal"} else "")


@router.get("/investor/money/live")
def investor_money_live(request: Request, session: DB) -> Response:
    """The balances and instructions fragment that the money page polls while anything is pending."""
    got = guard(request, session, Portal.INVESTOR, Action.READ_OWN_ACCOUNTS)
    if isinstance(got, Response):
        return got
    return render(request, "custody/_money_live.html", money=money, **_money_view(request, session, got))


@router.get("/investor/money/summary")
def investor_money_summary(request: Request, session: DB) -> Response:
    """The dashboard's escrow panel (loaded by HTMX)."""
    got = guard(request, session, Portal.INVESTOR, Action.READ_OWN_ACCOUNTS)
    if isinstance(got, Response):
        return got
    return render(request, "custody/_money_summary.html", money=money, **_money_view(request, session, got))


def _money_command(request: Request, session: Session, form: Any, operation: str, prefix: str) -> Response:
    got = guard(request, session, Portal.INVESTOR, Action.MOVE_OWN_MONEY)
    if isinstance(got, Response):
        return got
    fields = tuple(f"{prefix}.{name}" for name in MONEY_FIELDS)
    submitted = values(form, fields)
    key = text(form, "idempotency_key")
    amount_text = submitted[f"{prefix}.amount"].replace(",", "").replace(" ", "")
    try:
        body = MoneyIn(
            amount=amount_text,  # pydantic parses the decimal text
            currency=CURRENCY,
            bank_account_id=submitted[f"{prefix}.bank_account_id"],
        )
        amount = body.minor()
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for problem in problems_of(exc):
            name = str(problem.loc[0]) if problem.loc else "form"
            if name == "amount" and problem.type == "greater_than":
                message = N_("Enter an amount greater than zero.")
            elif name == "bank_account_id":
                message = N_("Choose one of your verified bank accounts.")
            else:
                message = problem.msg
            errors.setdefault(f"{prefix}.{name}" if name in MONEY_FIELDS else "form", message)
        return _money_page(request, session, got, status=422, errors=errors, form=submitted, failed=prefix)
    except (InvalidInput, MoneyError, InvalidOperation, OverflowError):
        errors = {f"{prefix}.amount": N_("Enter an amount, e.g. 1250000.00.")}
        return _money_page(request, session, got, status=422, errors=errors, form=submitted, failed=prefix)
    ctx = page_context(request, got)
    command = custody.create_deposit if operation == "create_deposit" else custody.create_withdrawal

    def run() -> tuple[int, dict[str, Any]]:
        instruction = command(
            session, ctx=ctx, amount=amount, currency=body.currency, bank_account_id=body.bank_account_id
        )
        return 202, instruction_out(instruction).model_dump(mode="json")

    try:
        # Exactly as the API does it: the key is the form's hidden field, the request the same body.
        idempotency.run_once(
            session, ctx=ctx, key=key, operation=operation, request=body.model_dump(mode="json"), command=run
        )
    except YunrongError as exc:
        session.rollback()
        if isinstance(exc, InsufficientFunds):
            errors = {f"{prefix}.amount": N_("Not enough available money for this withdrawal.")}
        elif isinstance(exc, NotFound):  # not one of my bank accounts
            errors = {f"{prefix}.bank_account_id": N_("Choose one of your verified bank accounts.")}
        else:
            errors = _errors(exc, MONEY_FIELDS, prefix=f"{prefix}.")
        return _money_page(
            request, session, got, status=exc.status, errors=errors, form=submitted, failed=prefix
        )
    return RedirectResponse(f"/investor/money?done={prefix}", status_code=303)


@router.post("/investor/money/deposit", dependencies=[Csrf])
def investor_deposit(request: Request, session: DB, form: FormDep) -> Response:
    return _money_command(request, session, form, "create_deposit", "deposit")


@router.post("/investor/money/withdrawal", dependencies=[Csrf])
def investor_withdrawal(request: Request, session: DB, form: FormDep) -> Response:
    return _money_command(request, session, form, "create_withdrawal", "withdrawal")


@router.get("/statements/{account_id}.{fmt}")
def account_statement(request: Request, session: DB, account_id: str, fmt: str) -> Response:
    """A statement of one of my accounts (the regulator and the operator: of any), as CSV or PDF."""
    got = guard(request, session, None)
    if isinstance(got, Response):
        return got
    ctx = page_context(request, got)
    found = _uuid(account_id)
    try:
        if found is None or fmt not in {"csv", "pdf"}:
            raise NotFound("no such account")
        account = custody.visible_account(session, ctx=ctx, account_id=found)
    except NotFound:
        return _not_found(request, N_("no such account"))
    opening, lines = ledger.statement(session, account_id=account.id)
    headers = {
        "Content-Disposition": f'attachment; filename="statement-{account.id}.{fmt}"',
        "Cache-Control": "no-store",
    }
    if fmt == "csv":
        return Response(
            statement_csv(account, opening, lines), media_type="text/csv; charset=utf-8", headers=headers
        )
    return Response(
        statement_pdf(account, opening, lines, generated_at=ctx.now()),
        media_type="application/pdf",
        headers=headers,
    )


# --- regulator and operator: fund flows, alerts ----------------------------------------------------


def _axis(minor: int, currency: str) -> str:
    return money(minor, currency).rsplit(" ", 1)[0]


def flow_chart(daily: Sequence[dict[str, Any]], currency: str) -> dict[str, Any]:
    """Geometry of an SVG bar chart of daily escrow in- and outflows (drawn by the template)."""
    days = [d for d in daily if d["currency"] == currency]
    top = max([max(d["inflow_minor"], d["outflow_minor"]) for d in days] + [0])
    width, height, left, bottom, top_pad = 760, 240, 92, 34, 16
    plot_h = height - bottom - top_pad
    slot = (width - left - 8) / max(len(days), 1)
    bar = max(slot * 0.34, 2)
    scale = plot_h / top if top else 0

    def h(value: int) -> float:
        return round(value * scale, 1) if value else 0.0

    bars = []
    for i, d in enumerate(days):
        x = left + i * slot + slot * 0.14
        hin, hout = h(d["inflow_minor"]), h(d["outflow_minor"])
        bars.append(
            {
                "date": d["date"],
                "label": d["date"][5:],
                "x_in": round(x, 1),
                "x_out": round(x + bar + 1, 1),
                "x_label": round(left + i * slot + slot / 2, 1),
                "y_in": round(top_pad + plot_h - hin, 1),
                "y_out": round(top_pad + plot_h - hout, 1),
                "h_in": hin,
                "h_out": hout,
                "inflow": d["inflow_minor"],
                "outflow": d["outflow_minor"],
            }
        )
    return {
        "currency": currency,
        "width": width,
        "height": height,
        "left": left,
        "baseline": top_pad + plot_h,
        "top_y": top_pad,
        "bar": round(bar, 1),
        "top_label": _axis(top, currency),
        "half_label": _axis(top // 2, currency),
        "mid_y": round(top_pad + plot_h / 2, 1),
        "bars": bars,
        "total_in": sum(d["inflow_minor"] for d in days),
        "total_out": sum(d["outflow_minor"] for d in days),
    }


def _funds_page(request: Request, session: Session, settings: Any, actor: Actor) -> Response:
    ctx = page_context(request, actor)
    flows = monitor.fund_flows(session, ctx=ctx, timezone=settings.timezone, days=CHART_DAYS)
    currencies = sorted({d["currency"] for d in flows["daily"]})
    checks = verify(session) if actor.can(Action.VERIFY_LEDGER) else None
    return render(
        request,
        "custody/funds.html",
        money=money,
        flows=flows,
        charts=[flow_chart(flows["daily"], c) for c in currencies],
        checks=checks,
        ledger_ok=checks is not None and all(v is None for _, v in checks),
        alerts=list_alerts(session, ctx=ctx, limit=10) if actor.can(Action.READ_ALERTS) else [],
    )


@router.get("/regulator/funds")
def regulator_funds(request: Request, session: DB, settings: SettingsDep) -> Response:
    got = guard(request, session, Portal.REGULATOR, Action.READ_FUND_FLOWS)
    if isinstance(got, Response):
        return got
    return _funds_page(request, session, settings, got)


@router.get("/operator/funds")
def operator_funds(request: Request, session: DB, settings: SettingsDep) -> Response:
    got = guard(request, session, Portal.OPERATOR, Action.READ_FUND_FLOWS)
    if isinstance(got, Response):
        return got
    return _funds_page(request, session, settings, got)


@router.get("/alerts")
def alerts_page(request: Request, session: DB, show: str = "open") -> Response:
    got = guard(request, session, None, Action.READ_ALERTS)
    if isinstance(got, Response):
        return got
    open_only = show != "all"
    rows = list_alerts(session, ctx=page_context(request, got), open_only=open_only, limit=200)
    return render(request, "custody/alerts.html", alerts=rows, show="open" if open_only else "all")


# --- operator: adjustments, maker–checker ----------------------------------------------------------

LEG_FIELDS = ("account_code", "side", "amount")


def _adjustment_fields() -> tuple[str, ...]:
    rows = tuple(f"legs.{i}.{name}" for i in range(ADJUSTMENT_ROWS) for name in LEG_FIELDS)
    return (*rows, "legs", "reason")


def _leg_view(session: Session, leg: dict[str, Any]) -> dict[str, Any]:
    account = ledger.account_by_code(session, str(leg.get("account_code")))
    currency = account.currency if account else CURRENCY
    return {
        "account_code": leg.get("account_code"),
        "side": leg.get("side"),
        "amount": money(int(leg.get("amount_minor") or 0), currency),
    }


def _adjustments_page(
    request: Request, session: Session, actor: Actor, *, status: int = 200, **extra: Any
) -> Response:
    rows = adjustments.list_adjustments(session, ctx=page_context(request, actor))[:100]
    return render(
        request,
        "custody/adjustments.html",
        status=status,
        adjustments=[(row, [_leg_view(session, leg) for leg in row.legs]) for row in rows],
        me=str(actor.user_id),
        leg_rows=range(ADJUSTMENT_ROWS),
        can_decide=actor.can(Action.APPROVE_ADJUSTMENT),
        **extra,
    )


@router.get("/operator/adjustments")
def adjustments_list(request: Request, session: DB, done: str = "") -> Response:
    got = guard(request, session, Portal.OPERATOR, Action.PROPOSE_ADJUSTMENT)
    if isinstance(got, Response):
        return got
    return _adjustments_page(
        request, session, got, done=done if done in {"proposed", "approved", "rejected"} else ""
    )


def _minor(session: Session, code: str, amount: str) -> int | None:
    """Major units in the account's currency → minor units; None when the text is not an amount."""
    account = ledger.account_by_code(session, code) if code else None
    currency = account.currency if account else CURRENCY
    if not amount:
        return None
    try:
        return Money.of(Decimal(amount.replace(",", "")), currency).minor
    except (InvalidOperation, MoneyError, ValueError, OverflowError):
        return None


@router.post("/operator/adjustments", dependencies=[Csrf])
def adjustments_propose(request: Request, session: DB, form: FormDep) -> Response:
    got = guard(request, session, Portal.OPERATOR, Action.PROPOSE_ADJUSTMENT)
    if isinstance(got, Response):
        return got
    fields = _adjustment_fields()
    submitted = values(form, fields)
    errors: dict[str, str] = {}
    legs: list[dict[str, Any]] = []
    positions: list[int] = []
    for i in range(ADJUSTMENT_ROWS):
        code, side, amount = (submitted[f"legs.{i}.{name}"] for name in LEG_FIELDS)
        if not (code or amount):
            continue
        minor = _minor(session, code, amount)
        if minor is None:
            errors[f"legs.{i}.amount"] = N_("Enter an amount, e.g. 1250000.00.")
        if not code:
            errors[f"legs.{i}.account_code"] = N_("Required.")
        legs.append({"account_code": code, "side": side, "amount_minor": minor if minor is not None else 0})
        positions.append(i)
    if len(legs) < 2:
        errors.setdefault("legs", N_("An adjustment has at least two legs."))
    if not submitted["reason"]:
        errors["reason"] = N_("Required.")
    if errors:
        return _adjustments_page(request, session, got, status=422, errors=errors, form=submitted)
    try:
        adjustments.propose(session, ctx=page_context(request, got), legs=legs, reason=submitted["reason"])
    except YunrongError as exc:
        session.rollback()
        problems = [
            FieldProblem(
                tuple("amount" if part == "amount_minor" else part for part in p.loc), p.msg, type=p.type
            )
            for p in exc.problems
        ]
        errors = field_errors(problems, fields, rows={"legs": positions})
        unplaced = errors.pop("form", None)
        if not exc.problems or unplaced:
            errors.setdefault("legs", unplaced or exc.detail)
        return _adjustments_page(request, session, got, status=exc.status, errors=errors, form=submitted)
    return RedirectResponse("/operator/adjustments?done=proposed", status_code=303)


@router.post("/operator/adjustments/{adjustment_id}/decision", dependencies=[Csrf])
def adjustments_decide(request: Request, session: DB, adjustment_id: str, form: FormDep) -> Response:
    got = guard(request, session, Portal.OPERATOR, Action.APPROVE_ADJUSTMENT)
    if isinstance(got, Response):
        return got
    found = _uuid(adjustment_id)
    if found is None:
        return _not_found(request, N_("no such adjustment"))
    decision = text(form, "decision")
    reason = text(form, "decision_reason")
    extra = {"deciding": str(found), "decision_form": {"decision": decision, "decision_reason": reason}}
    errors: dict[str, str] = {}
    if decision not in {"approve", "reject"}:
        errors["decision"] = N_("Choose one of the options.")
    if not reason:
        errors["decision_reason"] = N_("Required.")
    if errors:
        return _adjustments_page(request, session, got, status=422, errors=errors, **extra)
    try:
        row = adjustments.decide(
            session,
            ctx=page_context(request, got),
            adjustment_id=found,
            approve=decision == "approve",
            reason=reason,
        )
    except NotFound:
        session.rollback()
        return _not_found(request, N_("no such adjustment"))
    except YunrongError as exc:
        session.rollback()
        errors = _errors(exc, ("decision", "decision_reason"), default="decision_form")
        if "decision_form" in errors:
            errors["decision_title"] = type(exc).title
        return _adjustments_page(request, session, got, status=exc.status, errors=errors, **extra)
    return RedirectResponse(f"/operator/adjustments?done={row.status}", status_code=303)


# --- agency: bank accounts awaiting verification ----------------------------------------------------


def _authentication_agency(session: Session, actor: Actor) -> bool:
    agency = session.get(Agency, actor.organisation_id) if actor.organisation_id else None
    return agency is not None and "authentication" in agency.types


def _bank_accounts_page(
    request: Request, session: Session, actor: Actor, *, status: int = 200, **extra: Any
) -> Response:
    allowed = _authentication_agency(session, actor)
    rows: list[tuple[BankAccount, str]] = []
    if allowed:
        rows = [
            (account, name)
            for account, name in session.execute(
                select(BankAccount, Organisation.name)
                .join(Organisation, Organisation.id == BankAccount.organisation_id)
                .where(BankAccount.verified_at.is_(None))
                .order_by(BankAccount.created_at, BankAccount.id)
                .limit(200)
            ).all()
        ]
    return render(request, "custody/bank_accounts.html", status=status, allowed=allowed, rows=rows, **extra)


@router.get("/agency/bank-accounts")
def agency_bank_accounts(request: Request, session: DB, done: str = "") -> Response:
    got = guard(request, session, Portal.AGENCY, Action.VERIFY_BANK_ACCOUNT)
    if isinstance(got, Response):
        return got
    return _bank_accounts_page(request, session, got, done=done == "verified")


@router.post("/agency/bank-accounts/{bank_account_id}/verification", dependencies=[Csrf])
def agency_verify_bank_account(
    request: Request, session: DB, bank_account_id: str, form: FormDep
) -> Response:
    got = guard(request, session, Portal.AGENCY, Action.VERIFY_BANK_ACCOUNT)
    if isinstance(got, Response):
        return got
    found = _uuid(bank_account_id)
    if found is None:
        return _not_found(request, N_("no such bank account"))
    evidence = text(form, "evidence")
    extra = {"row_id": str(found), "form": {"evidence": evidence}}
    try:
        custody.verify_bank_account(
            session, ctx=page_context(request, got), bank_account_id=found, evidence=evidence
        )
    except NotFound as exc:
        session.rollback()
        return _not_found(request, exc.detail)
    except YunrongError as exc:
        session.rollback()
        errors = _errors(exc, ("evidence",), default="evidence")
        return _bank_accounts_page(request, session, got, status=exc.status, errors=errors, **extra)
    return RedirectResponse("/agency/bank-accounts?done=verified", status_code=303)
