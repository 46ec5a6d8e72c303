"""Pages of step 7: the borrower's schedule and repayments, and the investor's income.

The enterprise's loan page (/enterprise/loans/{id}) loads the loan's servicing section once the loan
is paid out: the current schedule with each instalment's standing today (paid, due, overdue with its
days past due), what is due now, the repayments made and how each was allocated, the statement as
CSV or PDF, and the "Repay" form. A repayment is instructed to the custodian bank and stays pending
until the bank confirms; the section polls (HTMX) until then and shows it allocated. An early
repayment in part first shows the new schedule the enterprise chose (shorter term or smaller
instalment), computed by the same function that will write it, and is only made on "Confirm". The
lending bank reads the same section without the form. The investor reads its income statement at
/investor/income: net received by month as an SVG bar chart, by loan and line by line, checked
against the custodian's ledger, with CSV and PDF downloads.

Every page calls the same service functions as the JSON API (they enforce the permissions); another
party's loan answers 404, and a refusal is shown beside its field with nothing booked.
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from yunrong.config import Settings
from yunrong.deps import DB, SettingsDep
from yunrong.identity.model import Action, Actor, Portal
from yunrong.kit.errors import NotFound, PermissionDenied, YunrongError
from yunrong.kit.money import CURRENCY_EXPONENT, Money, MoneyError
from yunrong.ledger import idempotency
from yunrong.servicing import repayments, statements
from yunrong.servicing.repayment_routes import preview_out, repayment_out
from yunrong.servicing.statement_routes import as_format
from yunrong.web import i18n
from yunrong.web.forms import FormDep, text
from yunrong.web.i18n import N_
from yunrong.web.labels import translate_message
from yunrong.web.rendering import Csrf, current_locale, guard, money, page_context, render, render_error
from yunrong.web.rendering import parse_uuid as _uuid

router = APIRouter(include_in_schema=False)

FIELDS = ("amount", "kind", "early_option")
KINDS = ("scheduled", "early_full", "early_partial")
OPTIONS = ("shorter_term", "smaller_instalment")

KIND_LABELS: dict[str, str] = {
    "scheduled": N_("What is due (scheduled instalments)"),
    "early_full": N_("Early repayment in full"),
    "early_partial": N_("Early repayment in part"),
}
OPTION_LABELS: dict[str, str] = {
    "shorter_term": N_("Shorter term: keep the instalment, finish sooner"),
    "smaller_instalment": N_("Smaller instalment: keep the term, pay less each time"),
}
STANDING_LABELS: dict[str, str] = {
    "paid": N_("Paid"),
    "overdue": N_("Overdue"),
    "due": N_("Due today"),
    "part_paid": N_("Partly paid"),
    "upcoming": N_("Upcoming"),
}
REPAYMENT_STATUS_LABELS: dict[str, str] = {
    "pending": N_("Awaiting the bank"),
    "confirmed": N_("Confirmed by the bank"),
    "allocated": N_("Allocated"),
    "failed": N_("Failed"),
}
SOURCE_LABELS: dict[str, str] = {
    "repayment": N_("Repayment"),
    "overpayment": N_("Overpayment applied"),
    "guarantee": N_("Guarantee claim"),
    "insurance": N_("Insurance claim"),
    "recovery": N_("Recovery"),
}
STATE_LABELS: dict[str, str] = {
    "performing": N_("Performing"),
    "delinquent": N_("Overdue"),
    "non_performing": N_("Non-performing"),
    "defaulted": N_("Defaulted"),
    "written_off": N_("Written off"),
    "closed": N_("Repaid in full"),
}
LABELS: dict[str, dict[str, str]] = {
    "kind": KIND_LABELS,
    "option": OPTION_LABELS,
    "standing": STANDING_LABELS,
    "repayment_status": REPAYMENT_STATUS_LABELS,
    "source": SOURCE_LABELS,
    "state": STATE_LABELS,
}

#: Repayments whose outcome the section waits for (and polls while any is).
WAITING = frozenset({"pending", "confirmed"})


def say(locale: str, message: str) -> str:
    """A service message in the page's language: the services write "English / 中文"; anything else
    goes through the catalogue."""
    english, sep, chinese = message.partition(" / ")
    if sep and chinese:
        return chinese.strip() if locale == i18n.ZH_CN else english.strip()
    return translate_message(locale, message)


def _errors(request: Request, exc: YunrongError) -> dict[str, str]:
    """The service's message beside the field its first problem names (else above the form)."""
    locale = current_locale(request)
    message = say(locale, exc.detail)
    for problem in exc.problems:
        name = str(problem.loc[-1]) if problem.loc else ""
        if name in FIELDS:
            return {name: message}
    return {"form": message}


def _not_found(request: Request) -> Response:
    return render_error(request, 404, N_("Not found"), N_("no such loan"))


def _base(portal: Portal) -> str:
    return f"/{portal.value}/loans"


def _amount_text(minor: int, currency: str) -> str:
    return f"{Money(minor, currency).decimal:.{CURRENCY_EXPONENT[currency]}f}"


def _statement(
    request: Request, session: Session, settings: Settings, actor: Actor, loan_id: str
) -> statements.LoanStatement | None:
    found = _uuid(loan_id)
    if found is None:
        return None
    try:
        return statements.read_loan_statement(
            session, ctx=page_context(request, actor), settings=settings, loan_id=found
        )
    except (NotFound, PermissionDenied):
        return None


def _section(actor: Actor, portal: Portal, st: statements.LoanStatement, **extra: Any) -> dict[str, Any]:
    """What the servicing section (and its live part) shows."""
    can_repay = (
        portal is Portal.ENTERPRISE
        and actor.can(Action.REPAY_LOAN)
        and st.servicing
        and st.state not in repayments.FINISHED_STATES
    )
    suggested = st.to_pay_now or (st.next_instalment.outstanding if st.next_instalment else 0)
    form = {"amount": _amount_text(suggested, st.currency) if suggested else "", "kind": "scheduled"}
    form.update(extra.pop("form", {}))
    return {
        "st": st,
        "base": _base(portal),
        "can_repay": can_repay,
        "polling": any(r.status in WAITING for r in st.repayments),
        "repay_key": uuid.uuid4().hex,  # one per rendered form: a double submit repays once
        "kinds": KINDS,
        "options": OPTIONS,
        "sl": LABELS,
        "money": money,
        "form": form,
        **extra,
    }


def _get(request: Request, session: Session, settings: Settings, portal: Portal, loan_id: str) -> Any:
    got = guard(request, session, portal, Action.READ_LOANS)
    if isinstance(got, Response):
        return got
    st = _statement(request, session, settings, got, loan_id)
    if st is None:
        return _not_found(request)
    return got, st


# --- the loan page's section, its live part and the full page -------------------------------------------


def _section_get(
    request: Request, session: Session, settings: Settings, portal: Portal, loan_id: str, template: str
) -> Response:
    got = _get(request, session, settings, portal, loan_id)
    if isinstance(got, Response):
        return got
    actor, st = got
    return render(request, template, **_section(actor, portal, st))


@router.get("/enterprise/loans/{loan_id}/servicing")
def enterprise_section(request: Request, session: DB, settings: SettingsDep, loan_id: str) -> Response:
    """The servicing section the enterprise's loan page loads (HTMX)."""
    return _section_get(request, session, settings, Portal.ENTERPRISE, loan_id, "servicing/_section.html")


@router.get("/bank/loans/{loan_id}/servicing")
def bank_section(request: Request, session: DB, settings: SettingsDep, loan_id: str) -> Response:
    return _section_get(request, session, settings, Portal.BANK, loan_id, "servicing/_section.html")


@router.get("/enterprise/loans/{loan_id}/servicing/live")
def enterprise_live(request: Request, session: DB, settings: SettingsDep, loan_id: str) -> Response:
    """The schedule and repayments, polled while a repayment waits for the bank."""
    return _section_get(request, session, settings, Portal.ENTERPRISE, loan_id, "servicing/_live.html")


@router.get("/bank/loans/{loan_id}/servicing/live")
def bank_live(request: Request, session: DB, settings: SettingsDep, loan_id: str) -> Response:
    return _section_get(request, session, settings, Portal.BANK, loan_id, "servicing/_live.html")


def _page(
    request: Request,
    actor: Actor,
    portal: Portal,
    st: statements.LoanStatement,
    *,
    status: int = 200,
    **extra: Any,
) -> Response:
    return render(request, "servicing/repay.html", status=status, **_section(actor, portal, st, **extra))


@router.get("/enterprise/loans/{loan_id}/repayments")
def enterprise_repayments(
    request: Request, session: DB, settings: SettingsDep, loan_id: str, done: str = ""
) -> Response:
    """The schedule, the repayments and the form on a page of their own (also without JavaScript)."""
    got = _get(request, session, settings, Portal.ENTERPRISE, loan_id)
    if isinstance(got, Response):
        return got
    actor, st = got
    return _page(request, actor, Portal.ENTERPRISE, st, done=done if done == "pending" else "")


@router.get("/bank/loans/{loan_id}/repayments")
def bank_repayments(request: Request, session: DB, settings: SettingsDep, loan_id: str) -> Response:
    got = _get(request, session, settings, Portal.BANK, loan_id)
    if isinstance(got, Response):
        return got
    actor, st = got
    return _page(request, actor, Portal.BANK, st)


def read_repay_form(form: FormData, currency: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The repayment's values (amount in minor units) and an English message id beside each field
    that cannot be read."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    amount = text(form, "amount").replace(",", "").replace(" ", "")
    try:
        values["amount"] = Money.of(Decimal(amount), currency).minor
        if values["amount"] <= 0:
            errors["amount"] = N_("Enter an amount greater than zero.")
    except (InvalidOperation, MoneyError, ValueError):
        errors["amount"] = N_("Enter an amount, e.g. 1250000.00.") if amount else N_("Required.")
    kind = text(form, "kind")
    if kind not in KINDS:
        errors["kind"] = N_("Choose one of the options.")
    values["kind"] = kind
    option = text(form, "early_option")
    if kind == "early_partial" and option not in OPTIONS:
        errors["early_option"] = N_("Choose a shorter term or a smaller instalment.")
    values["early_option"] = option if kind == "early_partial" else None
    values["refund_overpayment"] = text(form, "refund_overpayment") == "yes"
    return values, errors


@router.post("/enterprise/loans/{loan_id}/repayments", dependencies=[Csrf])
def repay(request: Request, session: DB, settings: SettingsDep, loan_id: str, form: FormDep) -> Response:
    """Repay (or, for an early repayment in part, preview first and repay on "Confirm")."""
    got = guard(request, session, Portal.ENTERPRISE, Action.REPAY_LOAN)
    if isinstance(got, Response):
        return got
    st = _statement(request, session, settings, got, loan_id)
    if st is None:
        return _not_found(request)
    locale = current_locale(request)
    submitted = {name: text(form, name) for name in (*FIELDS, "refund_overpayment")}
    values, problems = read_repay_form(form, st.currency)
    if problems:
        errors = {k: i18n.gettext(locale, v) for k, v in problems.items()}
        return _page(request, got, Portal.ENTERPRISE, st, status=422, errors=errors, form=submitted)
    ctx = page_context(request, got)
    loan_key = st.loan_id
    if values["kind"] == "early_partial" and text(form, "step") != "confirm":
        try:
            plan = repayments.preview_early_repayment(
                session, ctx, loan_key, values["amount"], values["early_option"], settings=settings
            )
        except NotFound:
            session.rollback()
            return _not_found(request)
        except YunrongError as exc:
            session.rollback()
            errors = _errors(request, exc)
            return _page(
                request, got, Portal.ENTERPRISE, st, status=exc.status, errors=errors, form=submitted
            )
        preview = preview_out(loan_key, values["amount"], plan)
        return _page(request, got, Portal.ENTERPRISE, st, preview=preview, form=submitted)

    def run() -> tuple[int, dict[str, Any]]:
        row = repayments.create_repayment(session, ctx=ctx, loan_id=loan_key, settings=settings, **values)
        return 202, repayment_out(row).model_dump(mode="json")

    try:
        idempotency.run_once(
            session,
            ctx=ctx,
            key=text(form, "idempotency_key"),
            operation="create_repayment",
            request={"loan_id": str(loan_key), **values},
            command=run,
        )
    except NotFound:
        session.rollback()
        return _not_found(request)
    except YunrongError as exc:
        session.rollback()
        fresh = _statement(request, session, settings, got, str(loan_key))
        if fresh is None:
            return _not_found(request)
        errors = _errors(request, exc)
        return _page(request, got, Portal.ENTERPRISE, fresh, status=exc.status, errors=errors, form=submitted)
    return RedirectResponse(f"/enterprise/loans/{loan_key}/repayments?done=pending", status_code=303)


@router.get("/loans/{loan_id}/statement.{fmt}")
def loan_statement_file(
    request: Request, session: DB, settings: SettingsDep, loan_id: str, fmt: str
) -> Response:
    """The loan statement as CSV or PDF (GET /api/v1/loans/{id}/statement), for the browser."""
    got = guard(request, session, None, Action.READ_LOANS)
    if isinstance(got, Response):
        return got
    st = _statement(request, session, settings, got, loan_id)
    if st is None or fmt not in {"csv", "pdf"}:
        return _not_found(request)
    return as_format(
        fmt,
        lambda: statements.loan_statement_dict(st),
        lambda: statements.loan_statement_csv(st),
        lambda: statements.loan_statement_pdf(st),
        f"loan-statement-{st.loan_ref}-{st.as_of.isoformat()}",
    )


# --- the investor's income -----------------------------------------------------------------------------

CHART_WIDTH = 640
CHART_HEIGHT = 220
CHART_TOP = 24
CHART_BOTTOM = 36
CHART_LEFT = 8


def month_chart(st: statements.IncomeStatement) -> dict[str, Any]:
    """Geometry of the SVG bar chart of the net received by month (drawn by the template); the
    heights are exact ratios of minor units, rounded to a tenth of a pixel for drawing only."""
    months = st.by_month
    top = max((m.totals.net for m in months), default=0)
    plot = CHART_HEIGHT - CHART_TOP - CHART_BOTTOM
    slot = (CHART_WIDTH - CHART_LEFT) / max(len(months), 1)
    bar = max(min(slot * 0.6, 60), 4)
    bars = []
    for index, m in enumerate(months):
        height = round(plot * m.totals.net / top, 1) if top > 0 and m.totals.net > 0 else 0.0
        x = round(CHART_LEFT + slot * index + (slot - bar) / 2, 1)
        bars.append(
            {
                "month": m.month,
                "x": x,
                "y": round(CHART_TOP + plot - height, 1),
                "height": height,
                "centre": round(x + bar / 2, 1),
                "value": money(m.totals.net, st.currency),
                "net": m.totals.net,
            }
        )
    return {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "bar": round(bar, 1),
        "baseline": CHART_TOP + plot,
        "label_y": CHART_HEIGHT - 14,
        "bars": bars,
        "any": top > 0,
    }


def _dates(since: str, until: str) -> tuple[dict[str, date | None], dict[str, str]]:
    out: dict[str, date | None] = {}
    errors: dict[str, str] = {}
    for name, value in (("since", since), ("until", until)):
        try:
            out[name] = date.fromisoformat(value) if value else None
        except ValueError:
            out[name] = None
            errors[name] = N_("Enter a date as YYYY-MM-DD.")
    return out, errors


@router.get("/investor/income")
def income(
    request: Request, session: DB, settings: SettingsDep, since: str = "", until: str = ""
) -> Response:
    got = guard(request, session, Portal.INVESTOR, Action.READ_PORTFOLIO)
    if isinstance(got, Response):
        return got
    locale = current_locale(request)
    submitted = {"since": since[:10], "until": until[:10]}
    period, problems = _dates(submitted["since"], submitted["until"])
    errors = {k: i18n.gettext(locale, v) for k, v in problems.items()}
    ctx = page_context(request, got)
    try:
        st = statements.read_income_statement(
            session, ctx=ctx, settings=settings, since=period["since"], until=period["until"]
        )
    except YunrongError as exc:
        message = say(locale, exc.detail)
        errors.setdefault("since", message)
        st = statements.read_income_statement(session, ctx=ctx, settings=settings)
    query = f"?since={st.since.isoformat()}&until={st.until.isoformat()}"
    if not errors:  # the period shown, in the form
        submitted = {"since": st.since.isoformat(), "until": st.until.isoformat()}
    return render(
        request,
        "servicing/income.html",
        status=422 if errors else 200,
        st=st,
        chart=month_chart(st),
        query=query,
        sl=LABELS,
        money=money,
        errors=errors,
        form=submitted,
    )


@router.get("/investor/income/statement.{fmt}")
def income_file(
    request: Request, session: DB, settings: SettingsDep, fmt: str, since: str = "", until: str = ""
) -> Response:
    """The income statement as CSV or PDF (GET /api/v1/me/income), for the browser."""
    got = guard(request, session, Portal.INVESTOR, Action.READ_PORTFOLIO)
    if isinstance(got, Response):
        return got
    period, problems = _dates(since[:10], until[:10])
    if fmt not in {"csv", "pdf"} or problems:
        return render_error(request, 404, N_("Not found"), N_("no such statement"))
    try:
        st = statements.read_income_statement(
            session,
            ctx=page_context(request, got),
            settings=settings,
            since=period["since"],
            until=period["until"],
        )
    except YunrongError as exc:
        return render_error(request, exc.status, type(exc).title, say(current_locale(request), exc.detail))
    return as_format(
        fmt,
        lambda: statements.income_statement_dict(st),
        lambda: statements.income_statement_csv(st),
        lambda: statements.income_statement_pdf(st),
        f"income-{st.investor_ref}-{st.since.isoformat()}-{st.until.isoformat()}",
    )
