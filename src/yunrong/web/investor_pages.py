"""The investor's pages of steps 4–6: preferences, "recommended for you", committing to a listing,
commitments, the entry knowledge test and the portfolio.

An admitted investor states what it wants offered and how often it is told (/investor/preferences;
an institution also registers its webhook there), reads the listings that fit with the reasons why
(/investor/recommendations), commits money to a listing from the funding box on the listing page
(a hidden idempotency key per rendered form, so a double submit commits once), follows and cancels
its commitments (/investor/commitments), takes the knowledge test a policy profile may require
(/investor/knowledge-test) and reads its portfolio with statements to download (/investor/portfolio).
Every page calls the same service functions as the JSON API, shows a refused input beside its field
in the page's language and saves nothing of a refused form.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from yunrong.config import Settings
from yunrong.credit.grades import GRADES
from yunrong.custody import service as custody
from yunrong.custody.accounts import Purpose
from yunrong.demands.model import Product
from yunrong.demands.tables import Demand
from yunrong.deps import DB, SettingsDep
from yunrong.identity.model import Action, Actor, InvestorKind, Portal
from yunrong.identity.tables import Organisation
from yunrong.investing import forms_pdf, knowledge, portfolio
from yunrong.investing import service as investing
from yunrong.investing.model import CommitmentNotCancellable, CommitmentStatus, ListingClosed, RoundStatus
from yunrong.investing.routes import CommitmentIn, commitment_out
from yunrong.investing.tables import Commitment, FundingRound
from yunrong.kit.errors import FieldProblem, InvalidInput, NotFound, YunrongError
from yunrong.kit.money import Money, MoneyError
from yunrong.ledger import idempotency
from yunrong.ledger.model import IdempotencyConflict, InsufficientFunds
from yunrong.matching import model as matching_model
from yunrong.matching import service as matching
from yunrong.matching.schemas import PreferencesIn, PushSettingsIn
from yunrong.matching.tables import InvestmentPreference
from yunrong.parties.codes import INDUSTRY_SECTIONS
from yunrong.parties.tables import Investor
from yunrong.verification import listings, webhooks
from yunrong.verification.listings import LISTED
from yunrong.web import i18n
from yunrong.web.decision_pages import grade_tone
from yunrong.web.forms import FormDep, field_errors, problems_of, text, texts, values
from yunrong.web.i18n import N_
from yunrong.web.rendering import Csrf, current_locale, guard, money, page_context, render, render_error
from yunrong.web.rendering import parse_uuid as _uuid

router = APIRouter(include_in_schema=False)

COMMITMENT_STATUS_LABELS: dict[str, str] = {
    CommitmentStatus.PENDING.value: N_("Held in escrow"),
    CommitmentStatus.POSTED.value: N_("Lent"),
    CommitmentStatus.CANCELLED.value: N_("Cancelled"),
    CommitmentStatus.VOIDED.value: N_("Released"),
}
ROUND_STATUS_LABELS: dict[str, str] = {
    RoundStatus.OPEN.value: N_("Open for commitments"),
    RoundStatus.FUNDED.value: N_("Funded"),
    RoundStatus.FAILED.value: N_("Not funded"),
    RoundStatus.CANCELLED.value: N_("Cancelled"),
}
LOAN_STATUS_LABELS: dict[str, str] = {
    "contracting": N_("Awaiting the agreement"),
    "disbursing": N_("Being paid out"),
    "active": N_("Active"),
    "cancelled": N_("Cancelled"),
}
INNOVATION_LABELS: dict[str, str] = {
    matching_model.Innovation.NEUTRAL.value: N_("No view"),
    matching_model.Innovation.PREFER.value: N_("Rank innovative enterprises higher"),
    matching_model.Innovation.ONLY.value: N_("Only innovative enterprises"),
}
SIZE_LABELS: dict[str, str] = {
    "micro": N_("Micro enterprises"),
    "small": N_("Small enterprises"),
    "medium": N_("Medium-sized enterprises"),
    "large": N_("Large enterprises"),
}
#: The preference services' messages (they reach the page in English): extracted for translation.
SERVICE_MESSAGES: tuple[str, ...] = (
    N_("must be positive"),
    N_("must not exceed the total budget"),
    N_("must be between 1 and 60"),
    N_("must not be below the shortest term"),
    N_("must be between 0 and 100"),
    N_("must be between 0 and 50"),
    N_("must be between 0 and 1"),
    N_("not a valid URL"),
    N_("must be an https:// (or http://) URL"),
    N_("must name a host"),
    N_("must not carry credentials; the signature authenticates the platform"),
    N_("must not have a #fragment"),
    N_("at most 500 characters"),
)

#: Commitment refusals by the rule they name (errors[0].type); ``%(amount)s`` is filled in.
REFUSALS: dict[str, str] = {
    "amount-positive": N_("Enter an amount greater than zero."),
    "fully-committed": N_("Nothing is left to commit to this listing."),
    "over-remaining": N_("Only %(amount)s is left to commit to this listing."),
    "below-minimum": N_("The minimum commitment is %(amount)s."),
    "above-maximum": N_("The maximum commitment is %(amount)s."),
    "over-balance": N_("Your available balance is %(amount)s: pay in more money first."),
    "own-listing": N_("You cannot invest in your own demand."),
    "currency": N_("This listing is in %(currency)s."),
    "agreement-not-accepted": N_("Read and accept the loan agreement form first."),
    "no-decision": N_("This listing has no credit decision yet."),
    "outside-suitability": N_(
        "This listing is outside your suitability: its risk is above your risk level, or the policy "
        "profile does not allow it."
    ),
    "knowledge-test": N_("Pass the entry knowledge test before investing."),
    "risk-warning": N_("Above %(amount)s you must read the risk warning and accept it."),
    "listing-closed": N_("This listing is not taking commitments."),
    "idempotency-conflict": N_(
        "This form was already used for another commitment. Reload the page and try again."
    ),
}

PREFERENCE_FIELDS = (
    "currency",
    "amount_per_loan",
    "total_budget",
    "min_term_months",
    "max_term_months",
    "grades",
    "industries",
    "regions",
    "products",
    "enterprise_sizes",
    "innovation",
    "min_transparency",
    "min_guarantee_coverage",
)
LIST_FIELDS = ("grades", "industries", "products", "enterprise_sizes")
PUSH_FIELDS = ("daily_cap", "unsubscribed")


def _not_found(request: Request, detail: str) -> Response:
    return render_error(request, 404, N_("Not found"), detail)


def _refused(request: Request, exc: YunrongError) -> Response:
    """A page the service refused as a whole (e.g. an investor not admitted yet)."""
    return render_error(request, exc.status, type(exc).title, exc.detail)


def _errors(exc: YunrongError, fields: Sequence[str], *, default: str = "form") -> dict[str, str]:
    """A service error keyed by the form's field names (``body.`` stripped, as the API nests them)."""
    moved = [
        FieldProblem(p.loc[1:] if p.loc[:1] == ("body",) else p.loc, p.msg, p.type) for p in exc.problems
    ]
    errors = field_errors(moved, fields)
    unplaced = errors.pop("form", None)
    if not moved or unplaced:
        errors.setdefault(default, unplaced or exc.detail)
    return errors


def _amount_text(value: str) -> str:
    return value.replace(",", "").replace(" ", "").replace("，", "")


def rate_pct(value: Decimal | float | None, places: int = 2) -> str:
    """A rate held as a fraction (0.085) for people: "8.50%"."""
    if value is None:
        return "—"
    return f"{Decimal(str(value)) * 100:.{places}f}%"


def major(minor: int | None, currency: str) -> str:
    """An amount as the plain decimal a form field takes ("1250.00")."""
    return str(Money(int(minor or 0), currency).decimal)


HELPERS: dict[str, Any] = {
    "money": money,
    "rate_pct": rate_pct,
    "grade_tone": grade_tone,
    "commitment_labels": COMMITMENT_STATUS_LABELS,
    "round_labels": ROUND_STATUS_LABELS,
    "loan_labels": LOAN_STATUS_LABELS,
}


@dataclass(frozen=True)
class Cash:
    currency: str
    available: int
    held: int


def cash_of(request: Request, session: Session, actor: Actor, currency: str) -> Cash:
    """The investor's available account at the custodian (its ledger balance): what it may still
    commit, and what is held for pending commitments and withdrawals."""
    if not actor.can(Action.READ_OWN_ACCOUNTS):
        return Cash(currency, 0, 0)
    for account, balance in custody.my_accounts(session, ctx=page_context(request, actor)):
        if account.purpose == Purpose.INVESTOR_AVAILABLE.value and account.currency == currency:
            return Cash(currency, balance.available, balance.pending_out)
    return Cash(currency, 0, 0)


def _organisation(session: Session, actor: Actor) -> Organisation | None:
    return session.get(Organisation, actor.organisation_id) if actor.organisation_id else None


def _is_institution(session: Session, actor: Actor) -> bool:
    org = _organisation(session, actor)
    return org is not None and org.investor_kind == InvestorKind.INSTITUTION.value


# --- preferences, push settings and the institution's webhook ------------------------------------


def _preference_form(
    row: InvestmentPreference | None, currency: str
) -> tuple[dict[str, str], dict[str, list[str]]]:
    """The saved preferences as the form shows them (amounts in major units, coverage in %)."""
    if row is None:
        return (
            {"currency": currency, "min_term_months": "1", "max_term_months": "60", "innovation": "neutral"},
            {},
        )
    sections = [c for c in row.industries if c in INDUSTRY_SECTIONS]
    finer = [c for c in row.industries if c not in INDUSTRY_SECTIONS]
    form = {
        "currency": row.currency,
        "amount_per_loan": major(row.amount_per_loan_minor, row.currency),
        "total_budget": major(row.total_budget_minor, row.currency),
        "min_term_months": str(row.min_term_months),
        "max_term_months": str(row.max_term_months),
        "industry_codes": ", ".join(finer),
        "regions": ", ".join(row.regions),
        "innovation": row.innovation,
        "min_transparency": str(row.min_transparency),
        "min_guarantee_coverage": f"{Decimal(row.min_guarantee_coverage_bp) / 100:g}",
    }
    lists = {
        "grades": list(row.grades),
        "industries": sections,
        "products": list(row.products),
        "enterprise_sizes": list(row.sizes),
    }
    return form, lists


def _preferences_page(
    request: Request, session: Session, settings: Settings, actor: Actor, *, status: int = 200, **extra: Any
) -> Response:
    ctx = page_context(request, actor)
    try:
        row: InvestmentPreference | None = matching.read_preferences(session, ctx=ctx)
    except NotFound:
        row = None
    except YunrongError as exc:
        return _refused(request, exc)
    push = matching.push_settings_of(session, actor.organisation_id) if actor.organisation_id else None
    institution = _is_institution(session, actor)
    hook = None
    deliveries: list[Any] = []
    if institution and actor.can(Action.MANAGE_WEBHOOKS):
        try:
            hook = webhooks.read_webhook(session, ctx=ctx)
        except NotFound:
            hook = None
        deliveries = webhooks.list_deliveries(session, ctx=ctx, limit=50)
    saved_form, saved_lists = _preference_form(row, settings.policy.currency)
    # A refused form is shown as it was submitted; the other forms of the page keep what is saved.
    form = {**saved_form, **extra.pop("form", {})}
    extra.setdefault("lists", saved_lists)
    form.setdefault("daily_cap", str(push.daily_cap if push else matching_model.DEFAULT_DAILY_CAP))
    if push is not None and push.unsubscribed:
        form.setdefault("unsubscribed", "on")
    if hook is not None:
        form.setdefault("url", hook.url)
    locale = current_locale(request)
    return render(
        request,
        "investing/preferences.html",
        status=status,
        saved=row,
        currency=settings.policy.currency,
        grades=[
            (g.code, matching_model.product_risk(g.code), g.name_zh if locale == i18n.ZH_CN else g.name_en)
            for g in GRADES
        ],
        sections=[(k, v[0] if locale == i18n.ZH_CN else v[1]) for k, v in INDUSTRY_SECTIONS.items()],
        products=[p.value for p in Product],
        sizes=list(SIZE_LABELS),
        size_labels=SIZE_LABELS,
        innovations=list(INNOVATION_LABELS),
        innovation_labels=INNOVATION_LABELS,
        max_daily_cap=matching_model.MAX_DAILY_CAP,
        institution=institution,
        hook=hook,
        deliveries=deliveries,
        tolerance=webhooks.DEFAULT_TOLERANCE_SECONDS,
        grade_tone=grade_tone,
        form=form,
        **extra,
    )


@router.get("/investor/preferences")
def preferences(request: Request, session: DB, settings: SettingsDep, done: str = "") -> Response:
    got = guard(request, session, Portal.INVESTOR, Action.READ_INVESTMENT_PREFERENCES)
    if isinstance(got, Response):
        return got
    return _preferences_page(request, session, settings, got, done=done if done in {"saved", "push"} else "")


def preferences_data(form: FormData) -> dict[str, Any]:
    """The input of ``PreferencesIn`` from the form: amounts without separators, the guarantee
    coverage from a percentage to a fraction, lists from checkboxes and comma-separated codes."""
    data: dict[str, Any] = {
        "currency": text(form, "currency"),
        "amount_per_loan": _amount_text(text(form, "amount_per_loan")),
        "total_budget": _amount_text(text(form, "total_budget")),
        "innovation": text(form, "innovation") or "neutral",
        "grades": texts(form, "grades"),
        "industries": texts(form, "industries")
        + [c for c in _codes(text(form, "industry_codes")) if c not in texts(form, "industries")],
        "regions": _codes(text(form, "regions")),
        "products": texts(form, "products"),
        "enterprise_sizes": texts(form, "enterprise_sizes"),
    }
    for name in ("min_term_months", "max_term_months", "min_transparency"):
        if text(form, name):
            data[name] = text(form, name)
    coverage = text(form, "min_guarantee_coverage").rstrip("%").strip()
    if coverage:
        try:
            data["min_guarantee_coverage"] = Decimal(coverage) / 100
        except InvalidOperation:
            data["min_guarantee_coverage"] = coverage  # Pydantic says why
    return data


def _codes(value: str) -> list[str]:
    return [
        c
        for c in value.replace("，", ",").replace("、", ",").replace(";", ",").replace(" ", ",").split(",")
        if c
    ]


@router.post("/investor/preferences", dependencies=[Csrf])
def preferences_save(request: Request, session: DB, settings: SettingsDep, form: FormDep) -> Response:
    got = guard(request, session, Portal.INVESTOR, Action.SET_INVESTMENT_PREFERENCES)
    if isinstance(got, Response):
        return got
    shown = {
        "form": values(form, (*PREFERENCE_FIELDS, "industry_codes")),
        "lists": {name: texts(form, name) for name in LIST_FIELDS},
    }
    try:
        body = PreferencesIn.model_validate(preferences_data(form))
        currency = body.currency.upper()
        prefs = matching_model.Preferences(
            currency=currency,
            amount_per_loan_minor=Money.of(body.amount_per_loan, currency).minor,
            total_budget_minor=Money.of(body.total_budget, currency).minor,
            min_term_months=body.min_term_months,
            max_term_months=body.max_term_months,
            grades=frozenset(g.upper() for g in body.grades),
            industries=frozenset(body.industries),
            regions=frozenset(body.regions),
            products=frozenset(body.products),
            sizes=frozenset(body.enterprise_sizes),
            innovation=body.innovation,
            min_transparency=body.min_transparency,
            min_guarantee_coverage_bp=int(body.min_guarantee_coverage * 10000),
        )
    except ValidationError as exc:
        errors = field_errors(problems_of(exc), PREFERENCE_FIELDS)
        return _preferences_page(request, session, settings, got, status=422, errors=errors, **shown)
    except MoneyError as exc:
        errors = {"currency": str(exc)}
        return _preferences_page(request, session, settings, got, status=422, errors=errors, **shown)
    try:
        matching.set_preferences(session, ctx=page_context(request, got), prefs=prefs, settings=settings)
    except YunrongError as exc:
        session.rollback()
        if "min_guarantee_coverage" in {str(p.loc[-1]) for p in exc.problems if p.loc}:
            exc = InvalidInput(
                exc.detail, [FieldProblem(("min_guarantee_coverage",), N_("must be between 0 and 100"))]
            )
        errors = _errors(exc, PREFERENCE_FIELDS)
        return _preferences_page(request, session, settings, got, status=exc.status, errors=errors, **shown)
    return RedirectResponse("/investor/preferences?done=saved", status_code=303)


@router.post("/investor/preferences/push", dependencies=[Csrf])
def push_settings_save(request: Request, session: DB, settings: SettingsDep, form: FormDep) -> Response:
    got = guard(request, session, Portal.INVESTOR, Action.SET_PUSH_SETTINGS)
    if isinstance(got, Response):
        return got
    submitted = values(form, PUSH_FIELDS)
    try:
        body = PushSettingsIn(daily_cap=submitted["daily_cap"], unsubscribed=bool(submitted["unsubscribed"]))
        matching.set_push_settings(
            session, ctx=page_context(request, got), daily_cap=body.daily_cap, unsubscribed=body.unsubscribed
        )
    except ValidationError as exc:
        errors = field_errors(problems_of(exc), PUSH_FIELDS)
        return _preferences_page(request, session, settings, got, status=422, errors=errors, form=submitted)
    except YunrongError as exc:
        session.rollback()
        errors = _errors(exc, PUSH_FIELDS, default="daily_cap")
        return _preferences_page(
            request, session, settings, got, status=exc.status, errors=errors, form=submitted
        )
    return RedirectResponse("/investor/preferences?done=push", status_code=303)


@router.post("/investor/preferences/webhook", dependencies=[Csrf])
def webhook_save(request: Request, session: DB, settings: SettingsDep, form: FormDep) -> Response:
    got = guard(request, session, Portal.INVESTOR, Action.MANAGE_WEBHOOKS)
    if isinstance(got, Response):
        return got
    url = text(form, "url")
    try:
        secret = webhooks.set_webhook(session, ctx=page_context(request, got), settings=settings, url=url)
    except YunrongError as exc:
        session.rollback()
        errors = _errors(exc, ("url",), default="url")
        return _preferences_page(
            request, session, settings, got, status=exc.status, errors=errors, form={"url": url}
        )
    # The secret is shown on this answer only: never stored in clear, never put in a URL.
    return _preferences_page(request, session, settings, got, secret=secret, done="webhook")


# --- recommended for you ---------------------------------------------------------------------------


@router.get("/investor/recommendations")
def recommendations(request: Request, session: DB, settings: SettingsDep) -> Response:
    got = guard(request, session, Portal.INVESTOR, Action.LIST_RECOMMENDATIONS)
    if isinstance(got, Response):
        return got
    ctx = page_context(request, got)
    try:
        rows = matching.recommendations(session, ctx=ctx, settings=settings)
    except YunrongError as exc:
        return _refused(request, exc)
    has_preferences = (
        got.organisation_id is not None and session.get(InvestmentPreference, got.organisation_id) is not None
    )
    zh = current_locale(request) == i18n.ZH_CN
    items = [
        {
            "demand": r.demand,
            "grade": r.listing.grade,
            "risk": matching_model.product_risk(r.listing.grade),
            "rate": r.listing.annual_rate,
            "expected": matching_model.expected_return(r.listing),
            "transparency": r.listing.transparency,
            "score": r.score.total,
            "parts": r.score.parts,
            "reasons": [(x.code, x.zh if zh else x.en) for x in r.reasons],
        }
        for r in rows
    ]
    return render(
        request, "investing/recommendations.html", items=items, has_preferences=has_preferences, **HELPERS
    )


# --- the funding box on a listing, and committing -------------------------------------------------


def funding_box(
    request: Request, session: Session, settings: Settings, actor: Actor, demand: Demand
) -> dict[str, Any]:
    """What the listing page shows an investor about funding the demand: the round, its progress,
    the tickets, the deadline, the investor's money, what the policy asks of it, and a fresh
    idempotency key for the commit form."""
    ctx = page_context(request, actor)
    try:
        funding: FundingRound | None = investing.visible_round(session, ctx=ctx, demand_id=demand.id)
    except YunrongError:
        funding = None
    box: dict[str, Any] = {
        "funding": funding,
        "bank_loan": demand.product == Product.BANK_LOAN.value,
        "commit_key": uuid.uuid4().hex,
        "can_commit": False,
    }
    shown: dict[str, Any] = {"box": box, "round_labels": ROUND_STATUS_LABELS, "rate_pct": rate_pct}
    if funding is None:
        return shown
    policy = settings.policy
    person, threshold = warning_of(session, settings, actor)
    test = knowledge.latest(session, ctx=ctx) if actor.can(Action.TAKE_KNOWLEDGE_TEST) else None
    now = ctx.now()
    is_open = funding.status == RoundStatus.OPEN.value and now < funding.closes_at
    remaining = max(0, funding.target_minor - funding.committed_minor)
    box.update(
        cash=cash_of(request, session, actor, funding.currency),
        remaining=remaining,
        percent=min(100, funding.committed_minor * 100 // max(1, funding.target_minor)),
        is_open=is_open,
        can_commit=is_open and remaining > 0 and actor.can(Action.COMMIT_FUNDS),
        form_sha256=forms_sha(session, demand, funding) if is_open else funding.form_sha256,
        agreement_url=f"/investor/listings/{demand.id}/agreement-form.pdf",
        warning_threshold=threshold,
        knowledge_needed=person and policy.knowledge_test_required and not (test is not None and test.passed),
        reflection_days=policy.reflection_days,
        min_ticket=min(funding.min_ticket_minor, remaining) if remaining else funding.min_ticket_minor,
    )
    return shown


def warning_of(session: Session, settings: Settings, actor: Actor) -> tuple[bool, int | None]:
    """Whether the investor is a natural person, and the ticket above which the policy profile asks
    it to read and accept a risk warning (None: no warning), as the commitment service computes it."""
    policy = settings.policy
    investor = session.get(Investor, actor.organisation_id) if actor.organisation_id else None
    person = investor is None or investor.kind == InvestorKind.PERSON.value
    if not person:
        return False, None
    net_worth = investor.net_worth_minor if investor else 0
    return True, investing.warning_threshold(
        policy.warning_ticket_floor, policy.warning_net_worth_share, net_worth
    )


def forms_sha(session: Session, demand: Demand, funding: FundingRound) -> str | None:
    from yunrong.investing import contracts

    return contracts.form_sha256(session, demand, funding)


def _listing_page(
    request: Request,
    session: Session,
    settings: Settings,
    actor: Actor,
    demand_id: uuid.UUID,
    *,
    status: int = 200,
    **extra: Any,
) -> Response:
    """The investor's listing page (as demand_pages renders it) with the funding box, for a commit
    form that was refused."""
    from yunrong.web.demand_pages import HELPERS as LISTING_HELPERS

    try:
        listing = listings.read_listing(
            session, ctx=page_context(request, actor), demand_id=demand_id, settings=settings
        )
    except NotFound:
        return _not_found(request, N_("no such listing"))
    except YunrongError as exc:
        return _refused(request, exc)
    return render(
        request,
        "demands/listing.html",
        status=status,
        listing=listing,
        demand=listing.demand,
        categories=sorted(listing.categories.items()),
        base="/investor/listings",
        **LISTING_HELPERS,
        **funding_box(request, session, settings, actor, listing.demand),
        **extra,
    )


def _refusal(
    request: Request,
    exc: YunrongError,
    funding: FundingRound | None,
    cash: Cash | None,
    threshold: int | None,
) -> tuple[str, str]:
    """(rule, message in the page's language) of a refused commitment."""
    locale = current_locale(request)
    rule = exc.problems[0].type if exc.problems and exc.problems[0].type else exc.code
    if isinstance(exc, InsufficientFunds):
        rule = "over-balance"
    elif isinstance(exc, ListingClosed):
        rule = "listing-closed"
    elif isinstance(exc, IdempotencyConflict):
        rule = "idempotency-conflict"
    template = REFUSALS.get(rule)
    if template is None:
        return rule, i18n.gettext(locale, exc.detail)
    currency = funding.currency if funding else "CNY"
    amount = {
        "over-remaining": funding.target_minor - funding.committed_minor if funding else None,
        "below-minimum": funding.min_ticket_minor if funding else None,
        "above-maximum": funding.max_ticket_minor if funding else None,
        "over-balance": cash.available if cash else None,
        "risk-warning": threshold,
    }.get(rule)
    if rule == "currency":
        return rule, i18n.gettext(locale, template, currency=currency)
    if "%(amount)s" in template:
        return rule, i18n.gettext(
            locale, template, amount=money(amount, currency) if amount is not None else "—"
        )
    return rule, i18n.gettext(locale, template)


COMMIT_FIELDS = ("amount", "accept_agreement", "risk_warning_accepted")


@router.post("/investor/listings/{demand_id}/commitments", dependencies=[Csrf])
def commit(request: Request, session: DB, settings: SettingsDep, demand_id: str, form: FormDep) -> Response:
    got = guard(request, session, Portal.INVESTOR, Action.COMMIT_FUNDS)
    if isinstance(got, Response):
        return got
    found = _uuid(demand_id)
    demand = session.get(Demand, found) if found is not None else None
    if found is None or demand is None or demand.status not in LISTED:
        return _not_found(request, N_("no such listing"))
    submitted = values(form, COMMIT_FIELDS)
    accept = bool(submitted["accept_agreement"])
    warned = bool(submitted["risk_warning_accepted"])
    key = text(form, "idempotency_key")
    locale = current_locale(request)
    try:
        body = CommitmentIn(
            demand_id=found,
            amount=_amount_text(submitted["amount"]),  # Pydantic parses the text
            currency=demand.currency,
            accept_agreement=accept,
            risk_warning_accepted=warned,
        )
        amount = body.minor()
    except (ValidationError, InvalidInput, MoneyError, InvalidOperation) as exc:
        positive = isinstance(exc, ValidationError) and any(e["type"] == "greater_than" for e in exc.errors())
        message = (
            N_("Enter an amount greater than zero.") if positive else N_("Enter an amount, e.g. 5000.00.")
        )
        errors = {"amount": i18n.gettext(locale, message), "amount_rule": "amount-format"}
        return _listing_page(
            request, session, settings, got, found, status=422, errors=errors, form=submitted
        )
    ctx = page_context(request, got)

    def run() -> tuple[int, dict[str, Any]]:
        row = investing.create_commitment(
            session,
            ctx=ctx,
            settings=settings,
            req=investing.CommitRequest(
                demand_id=found,
                amount=amount,
                currency=body.currency,
                accept_agreement=body.accept_agreement,
                risk_warning_accepted=body.risk_warning_accepted,
            ),
        )
        return 201, commitment_out(row).model_dump(mode="json")

    try:
        # Exactly as the API does it: the key is the form's hidden field, the request the same body.
        _, payload, _ = idempotency.run_once(
            session,
            ctx=ctx,
            key=key,
            operation="create_commitment",
            request=body.model_dump(mode="json"),
            command=run,
        )
    except NotFound:
        session.rollback()
        return _not_found(request, N_("no such listing"))
    except YunrongError as exc:
        session.rollback()
        funding = investing.round_of(session, found)
        cash = cash_of(request, session, got, demand.currency)
        rule, message = _refusal(request, exc, funding, cash, warning_of(session, settings, got)[1])
        errors = {"amount": message, "amount_rule": rule}
        return _listing_page(
            request, session, settings, got, found, status=exc.status, errors=errors, form=submitted
        )
    return RedirectResponse(
        f"/investor/commitments?done=committed&ref={payload.get('ref', '')}", status_code=303
    )


@router.get("/investor/listings/{demand_id}/agreement-form.pdf")
def agreement_form(request: Request, session: DB, demand_id: str) -> Response:
    """The listing's loan agreement form, which an investor accepts when committing; its SHA-256 is
    in the X-Agreement-SHA256 header and is what the commitment records."""
    got = guard(request, session, Portal.INVESTOR, Action.READ_LISTINGS)
    if isinstance(got, Response):
        return got
    found = _uuid(demand_id)
    try:
        if found is None:
            raise NotFound("no such listing")
        funding = investing.visible_round(session, ctx=page_context(request, got), demand_id=found)
        demand = session.get(Demand, found)
        assert demand is not None
    except NotFound:
        return _not_found(request, N_("no such listing"))
    except YunrongError as exc:
        return _refused(request, exc)
    document = forms_pdf.agreement_form(session, demand=demand, funding=funding)
    return Response(
        document.pdf,
        media_type="application/pdf",
        headers={
            "X-Agreement-SHA256": document.sha256,
            "X-Agreement-Recorded-SHA256": document.recorded_sha256,
            "Content-Disposition": f'inline; filename="{demand.ref}-agreement-form.pdf"',
            "Cache-Control": "no-store",
        },
    )


# --- my commitments --------------------------------------------------------------------------------


def _commitments_page(
    request: Request, session: Session, settings: Settings, actor: Actor, *, status: int = 200, **extra: Any
) -> Response:
    ctx = page_context(request, actor)
    try:
        rows = list(investing.list_commitments(session, ctx=ctx, limit=500))
    except YunrongError as exc:
        return _refused(request, exc)
    demand_ids = {c.demand_id for c in rows}
    demands = (
        {d.id: d for d in session.scalars(select(Demand).where(Demand.id.in_(demand_ids))).all()}
        if demand_ids
        else {}
    )
    rounds = (
        {
            r.demand_id: r
            for r in session.scalars(select(FundingRound).where(FundingRound.demand_id.in_(demand_ids))).all()
        }
        if demand_ids
        else {}
    )
    now = ctx.now()

    def cancellable(c: Commitment) -> bool:
        funding = rounds.get(c.demand_id)
        return (
            c.status == CommitmentStatus.PENDING.value
            and funding is not None
            and funding.status == RoundStatus.OPEN.value
            and (c.revocable_until is None or now < c.revocable_until)
            and actor.can(Action.COMMIT_FUNDS)
        )

    return render(
        request,
        "investing/commitments.html",
        status=status,
        rows=[
            {
                "c": c,
                "demand": demands.get(c.demand_id),
                "listed": c.demand_id in demands and demands[c.demand_id].status in LISTED,
                "round": rounds.get(c.demand_id),
                "cancellable": cancellable(c),
            }
            for c in rows
        ],
        cash=cash_of(request, session, actor, settings.policy.currency),
        **HELPERS,
        **extra,
    )


@router.get("/investor/commitments")
def commitments(
    request: Request, session: DB, settings: SettingsDep, done: str = "", ref: str = ""
) -> Response:
    got = guard(request, session, Portal.INVESTOR, Action.READ_COMMITMENTS)
    if isinstance(got, Response):
        return got
    return _commitments_page(
        request,
        session,
        settings,
        got,
        done=done if done in {"committed", "cancelled"} else "",
        done_ref=ref[:20],
    )


@router.post("/investor/commitments/{commitment_id}/cancel", dependencies=[Csrf])
def commitment_cancel(
    request: Request, session: DB, settings: SettingsDep, commitment_id: str, form: FormDep
) -> Response:
    got = guard(request, session, Portal.INVESTOR, Action.COMMIT_FUNDS)
    if isinstance(got, Response):
        return got
    found = _uuid(commitment_id)
    if found is None:
        return _not_found(request, N_("no such commitment"))
    reason = text(form, "reason")[:500]
    try:
        row = investing.cancel_commitment(
            session, ctx=page_context(request, got), commitment_id=found, reason=reason
        )
    except NotFound:
        session.rollback()
        return _not_found(request, N_("no such commitment"))
    except YunrongError as exc:
        session.rollback()
        message = (
            N_(
                "This commitment can no longer be cancelled: the round has closed, or the reflection "
                "period is over."
            )
            if isinstance(exc, CommitmentNotCancellable)
            else exc.detail
        )
        return _commitments_page(
            request,
            session,
            settings,
            got,
            status=exc.status,
            errors={"cancel": i18n.gettext(current_locale(request), message)},
            row_id=str(found),
        )
    return RedirectResponse(f"/investor/commitments?done=cancelled&ref={row.ref}", status_code=303)


# --- the entry knowledge test ----------------------------------------------------------------------


def _knowledge_page(
    request: Request, session: Session, settings: Settings, actor: Actor, *, status: int = 200, **extra: Any
) -> Response:
    ctx = page_context(request, actor)
    try:
        result = knowledge.latest(session, ctx=ctx)
    except YunrongError as exc:
        return _refused(request, exc)
    zh = current_locale(request) == i18n.ZH_CN
    questions = [
        {
            "key": q.key,
            "text": q.zh if zh else q.en,
            "options": [(k, z if zh else e) for k, e, z in q.options],
        }
        for q in knowledge.QUESTIONS
    ]
    if result is not None and "form" not in extra:
        extra["form"] = {f"answers.{k}": v for k, v in (result.answers or {}).items()}
    return render(
        request,
        "investing/knowledge.html",
        status=status,
        questions=questions,
        result=result,
        required=settings.policy.knowledge_test_required,
        institution=_is_institution(session, actor),
        policy=settings.policy,
        pass_mark=knowledge.PASS_MARK,
        out_of=len(knowledge.QUESTIONS),
        **extra,
    )


@router.get("/investor/knowledge-test")
def knowledge_test(request: Request, session: DB, settings: SettingsDep, done: str = "") -> Response:
    got = guard(request, session, Portal.INVESTOR, Action.TAKE_KNOWLEDGE_TEST)
    if isinstance(got, Response):
        return got
    return _knowledge_page(request, session, settings, got, done=done == "taken")


@router.post("/investor/knowledge-test", dependencies=[Csrf])
def knowledge_take(request: Request, session: DB, settings: SettingsDep, form: FormDep) -> Response:
    got = guard(request, session, Portal.INVESTOR, Action.TAKE_KNOWLEDGE_TEST)
    if isinstance(got, Response):
        return got
    names = tuple(f"answers.{q.key}" for q in knowledge.QUESTIONS)
    submitted = values(form, names)
    answers = {name.removeprefix("answers."): value for name, value in submitted.items() if value}
    try:
        knowledge.take_test(session, ctx=page_context(request, got), answers=answers)
    except YunrongError as exc:
        session.rollback()
        errors = {
            ".".join(str(p) for p in problem.loc): N_("Choose one of the options.")
            for problem in exc.problems
            if ".".join(str(p) for p in problem.loc) in names
        }
        if not errors:
            errors["form"] = exc.detail
        return _knowledge_page(
            request, session, settings, got, status=exc.status, errors=errors, form=submitted
        )
    return RedirectResponse("/investor/knowledge-test?done=taken", status_code=303)


# --- the portfolio ---------------------------------------------------------------------------------

BAR_WIDTH = 300
BAR_HEIGHT = 24
BAR_GAP = 8
LABEL_WIDTH = 140
VALUE_WIDTH = 220


def bar_chart(items: Sequence[portfolio.Exposure], currency: str) -> dict[str, Any]:
    """Geometry of a horizontal SVG bar chart of exposures (drawn by the template)."""
    top = max((e.outstanding_minor for e in items), default=0)
    rows = []
    for i, e in enumerate(items):
        width = round(BAR_WIDTH * e.outstanding_minor / top, 1) if top else 0.0
        y = i * (BAR_HEIGHT + BAR_GAP)
        rows.append(
            {
                "key": e.key,
                "label": e.label if len(e.label) <= 14 else e.label[:13] + "…",
                "full_label": e.label,
                "y": y,
                "text_y": y + BAR_HEIGHT * 0.7,
                "width": max(width, 1.0) if e.outstanding_minor else 0.0,
                "value": money(e.outstanding_minor, currency),
                "share": f"{e.share * 100:.1f}%",
            }
        )
    return {
        "rows": rows,
        "label_width": LABEL_WIDTH,
        "bar_x": LABEL_WIDTH + 6,
        "width": LABEL_WIDTH + 6 + BAR_WIDTH + VALUE_WIDTH,
        "height": max(1, len(rows)) * (BAR_HEIGHT + BAR_GAP),
        "bar_height": BAR_HEIGHT,
    }


@router.get("/investor/portfolio")
def portfolio_page(request: Request, session: DB, settings: SettingsDep) -> Response:
    got = guard(request, session, Portal.INVESTOR, Action.READ_PORTFOLIO)
    if isinstance(got, Response):
        return got
    try:
        p = portfolio.read_portfolio(session, ctx=page_context(request, got), settings=settings)
    except YunrongError as exc:
        return _refused(request, exc)
    zh = current_locale(request) == i18n.ZH_CN
    by_industry = [
        portfolio.Exposure(
            e.key,
            f"{e.key} {INDUSTRY_SECTIONS[e.key][0 if zh else 1]}" if e.key in INDUSTRY_SECTIONS else e.key,
            e.outstanding_minor,
            e.share,
        )
        for e in portfolio.chart_series(p.diversification["industry"])
    ]
    return render(
        request,
        "investing/portfolio.html",
        p=p,
        by_grade=bar_chart(portfolio.chart_series(p.diversification["grade"], by_grade=True), p.currency),
        by_industry=bar_chart(by_industry, p.currency),
        **HELPERS,
    )


@router.get("/investor/portfolio/statement.{fmt}")
def portfolio_statement(request: Request, session: DB, settings: SettingsDep, fmt: str) -> Response:
    """The statement of GET /api/v1/me/portfolio/statement, for the signed-in investor's browser."""
    got = guard(request, session, Portal.INVESTOR, Action.READ_PORTFOLIO)
    if isinstance(got, Response):
        return got
    if fmt not in {"csv", "pdf"}:
        return _not_found(request, N_("no such statement"))
    try:
        st = portfolio.statement(session, ctx=page_context(request, got), settings=settings)
    except YunrongError as exc:
        return _refused(request, exc)
    name = f"portfolio-{st.portfolio.investor_ref}-{st.since.isoformat()}-{st.until.isoformat()}"
    headers = {"Content-Disposition": f'attachment; filename="{name}.{fmt}"', "Cache-Control": "no-store"}
    if fmt == "pdf":
        return Response(portfolio.statement_pdf(st), media_type="application/pdf", headers=headers)
    return Response(portfolio.statement_csv(st), media_type="text/csv; charset=utf-8", headers=headers)


# --- the dashboard's panel -------------------------------------------------------------------------


@router.get("/investor/investments/summary")
def investments_summary(request: Request, session: DB, settings: SettingsDep) -> Response:
    """The dashboard's "My investments" panel (loaded by HTMX)."""
    got = guard(request, session, Portal.INVESTOR, Action.READ_COMMITMENTS)
    if isinstance(got, Response):
        return got
    ctx = page_context(request, got)
    try:
        rows = investing.list_commitments(session, ctx=ctx, limit=500)
        p = (
            portfolio.read_portfolio(session, ctx=ctx, settings=settings)
            if got.can(Action.READ_PORTFOLIO)
            else None
        )
        suggested = len(matching.recommendations(session, ctx=ctx, settings=settings))
    except YunrongError as exc:
        return render(request, "investing/_summary.html", refused=exc.detail)
    pending = [c for c in rows if c.status == CommitmentStatus.PENDING.value]
    return render(
        request,
        "investing/_summary.html",
        pending=len(pending),
        pending_minor=sum(c.amount_minor for c in pending),
        currency=settings.policy.currency,
        p=p,
        suggested=suggested,
        **HELPERS,
    )
