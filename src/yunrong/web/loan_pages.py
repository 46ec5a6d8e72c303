"""Pages of steps 5 and 6 for the enterprise and the banks: funding, offers, loans, agreements.

The enterprise follows its crowd-funded demand's round (and may accept partial funding above its
stated minimum), or reads the banks' offers on its bank-loan demand and accepts or declines them,
on the demand's own page; it reads each loan, its agreement as a PDF with the SHA-256 it accepts,
and watches the custodian pay it out (/enterprise/loans). A bank sees the bank-loan demands open to
it, makes and withdraws offers and accepts the agreements of its direct loans (/bank/demands,
/bank/offers, /bank/loans). Every page calls the same service functions as the JSON API (they
enforce the permissions), another party's object answers 404, and a refusal is shown beside its
field with nothing half-written.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from yunrong.config import Settings
from yunrong.custody.tables import Instruction
from yunrong.decisions.service import current_decision
from yunrong.demands.model import METHODS, Product
from yunrong.demands.tables import Demand
from yunrong.deps import DB, SettingsDep
from yunrong.identity.model import Action, Actor, Portal
from yunrong.identity.tables import Organisation
from yunrong.investing import loans, offers
from yunrong.investing import service as investing
from yunrong.investing.model import LenderKind, LoanNotContracting, LoanStatus, OfferStatus, RoundStatus
from yunrong.investing.tables import BankOffer, FundingRound, Loan
from yunrong.kit.errors import NotFound, YunrongError
from yunrong.kit.money import Money, MoneyError
from yunrong.ledger import idempotency
from yunrong.verification import credit_file
from yunrong.web import i18n
from yunrong.web.demand_pages import HELPERS as DEMAND_HELPERS
from yunrong.web.demand_pages import _demand_page
from yunrong.web.forms import FormDep, field_errors, text
from yunrong.web.i18n import N_
from yunrong.web.labels import translate_message
from yunrong.web.rendering import (
    Csrf,
    current_locale,
    guard,
    page_context,
    render,
    render_error,
)
from yunrong.web.rendering import parse_uuid as _uuid

router = APIRouter(include_in_schema=False)

CURRENCY = "CNY"
OFFER_FIELDS = (
    "amount",
    "annual_rate_percent",
    "term_months",
    "repayment_method",
    "conditions",
    "valid_until",
    "currency",
)
#: Offer methods a bank may choose, in a stable order for the form.
BANK_METHODS = tuple(sorted(m.value for m in METHODS[Product.BANK_LOAN]))
DEFAULT_OFFER_DAYS = 7

ROUND_STATUS_LABELS: dict[str, str] = {
    RoundStatus.OPEN: N_("Open for commitments"),
    RoundStatus.FUNDED: N_("Funded"),
    RoundStatus.FAILED: N_("Failed"),
    RoundStatus.CANCELLED: N_("Cancelled"),
}
LOAN_STATUS_LABELS: dict[str, str] = {
    LoanStatus.CONTRACTING: N_("Awaiting the agreement"),
    LoanStatus.DISBURSING: N_("Being paid out"),
    LoanStatus.ACTIVE: N_("Active"),
    LoanStatus.CANCELLED: N_("Cancelled"),
}
OFFER_STATUS_LABELS: dict[str, str] = {
    OfferStatus.OPEN: N_("Open"),
    OfferStatus.ACCEPTED: N_("Accepted"),
    OfferStatus.DECLINED: N_("Declined"),
    OfferStatus.WITHDRAWN: N_("Withdrawn"),
    OfferStatus.EXPIRED: N_("Expired"),
    OfferStatus.SUPERSEDED: N_("Superseded"),
}
LENDER_KIND_LABELS: dict[str, str] = {
    LenderKind.INVESTORS: N_("Investors (crowd loan)"),
    LenderKind.BANK: N_("Bank (direct loan)"),
}
PARTY_ROLE_LABELS: dict[str, str] = {
    "borrower": N_("Borrower"),
    "bank": N_("Lending bank"),
    "investor": N_("Investor"),
}
LOAN_LABELS: dict[str, dict[str, str]] = {
    "round_status": ROUND_STATUS_LABELS,
    "loan_status": LOAN_STATUS_LABELS,
    "offer_status": OFFER_STATUS_LABELS,
    "lender_kind": LENDER_KIND_LABELS,
    "party_role": PARTY_ROLE_LABELS,
}

#: Messages of the investing services, extracted here so that the pages show them translated.
KNOWN_MESSAGES: tuple[str, ...] = (
    N_("no such loan"),
    N_("no such loan awaiting your acceptance"),
    N_("no agreement for this loan"),
    N_("no such offer"),
    N_("no such bank-loan demand open to your offers"),
    N_("the agreement you accepted is not the current one; reload it and read it again"),
    N_("does not match the agreement's hash"),
    N_("this demand has no open funding round"),
    N_("the demand states no minimum funding, so partial funding cannot be accepted"),
    N_("the demand has no minimum"),
    N_("only banks make direct offers"),
    N_("the amount must be a positive whole number"),
    N_("the rate must be above zero"),
    N_("the offer must stand until a time in the future"),
    N_("state the offer's conditions (or 'none')"),
    N_("no LPR recorded"),
    N_("the bank that made this offer may not lend now (its admittance is not in force)"),
)

#: Service messages that carry a value: the English pattern and its translatable template.
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), template)
    for pattern, template in (
        (
            r"^(?P<r>[0-9.]+)% is above the enterprise's maximum of (?P<m>[0-9.]+)%$",
            N_("%(r)s%% is above the enterprise's maximum of %(m)s%%"),
        ),
        (
            r"^the all-in rate (?P<a>[0-9.]+)% \(the rate plus the disclosed fee\) is above the legal cap "
            r"of (?P<c>[0-9.]+)% \((?P<k>[0-9.]+) × the one-year LPR\)$",
            N_(
                "the all-in rate %(a)s%% (the rate plus the disclosed fee) is above the legal cap of "
                "%(c)s%% (%(k)s × the one-year LPR)"
            ),
        ),
        (
            r"^the enterprise asks for (?P<m>.+); offer at most that$",
            N_("the enterprise asks for %(m)s; offer at most that"),
        ),
        (r"^the enterprise accepts no less than (?P<m>.+)$", N_("the enterprise accepts no less than %(m)s")),
        (r"^the term must be (?P<a>\d+) to (?P<b>\d+) months$", N_("the term must be %(a)s to %(b)s months")),
        (r"^a bank loan is repaid by (?P<m>.+)$", N_("a bank loan is repaid by %(m)s")),
        (r"^this demand is in (?P<c>[A-Z]{3})$", N_("this demand is in %(c)s")),
        (
            r"^your offer (?P<r>\S+) on (?P<d>\S+) is still open; withdraw it first$",
            N_("your offer %(r)s on %(d)s is still open; withdraw it first"),
        ),
        (r"^offer (?P<r>\S+) is (?P<s>[a-z]+)$", N_("offer %(r)s is %(s)s")),
        (r"^offer (?P<r>\S+) expired at (?P<t>\S+)$", N_("offer %(r)s expired at %(t)s")),
        (
            r"^(?P<b>.+) has not yet paid (?P<m>.+ [A-Z]{3}) into escrow; the offer cannot be accepted now$",
            N_("%(b)s has not yet paid %(m)s into escrow; the offer cannot be accepted now"),
        ),
        (r"^loan (?P<r>\S+) is (?P<s>[a-z]+)$", N_("loan %(r)s is %(s)s")),
    )
)


def say(request: Request, message: str) -> str:
    """A service message in the page's language: the catalogue, these pages' patterns, then the
    portals' own patterns; anything else as it came."""
    locale = current_locale(request)
    translated = i18n.gettext(locale, message)
    if translated != message or locale == i18n.EN:
        return translated
    for pattern, template in _PATTERNS:
        found = pattern.match(message)
        if found:
            return i18n.gettext(locale, template, **found.groupdict())
    return translate_message(locale, message)


def _errors(
    request: Request, exc: YunrongError, fields: Sequence[str], *, default: str = "form"
) -> dict[str, str]:
    """A service error keyed by the form's field names (translated); one without a field goes to
    ``default``."""
    errors = {k: say(request, v) for k, v in field_errors(exc.problems, fields).items()}
    unplaced = errors.pop("form", None)
    if not exc.problems or unplaced:
        errors.setdefault(default, unplaced or say(request, exc.detail))
    return errors


def _not_found(request: Request, detail: str) -> Response:
    return render_error(request, 404, N_("Not found"), detail)


def pct(fraction: Decimal | None) -> str:
    """A rate held as a fraction, for people: 0.065 → '6.50%'."""
    if fraction is None:
        return "—"
    return f"{(Decimal(fraction) * 100).quantize(Decimal('0.01'))}%"


def _names(session: Session, ids: Sequence[uuid.UUID | None]) -> dict[uuid.UUID, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.execute(select(Organisation.id, Organisation.name).where(Organisation.id.in_(wanted)))
    return {row[0]: row[1] for row in rows}


def progress(committed: int, target: int) -> dict[str, Any]:
    """Geometry of the SVG progress bar of a round (drawn by the template)."""
    share = min(max(committed / target, 0.0), 1.0) if target > 0 else 0.0
    width = 600
    return {
        "width": width,
        "height": 24,
        "filled": round(width * share, 1),
        "percent": f"{share * 100:.1f}%",
    }


#: What the funding box adds to the demand page (which has the demand pages' helpers already).
BOX_HELPERS: dict[str, Any] = {"pct": pct, "ll": LOAN_LABELS}
HELPERS: dict[str, Any] = {**DEMAND_HELPERS, **BOX_HELPERS}


# --- the enterprise's demand page: the funding box ----------------------------------------------------


def funding_box(request: Request, session: Session, actor: Actor, demand: Demand) -> dict[str, Any]:
    """What the enterprise's demand page shows of its funding: the crowd round, or the banks'
    offers. Empty for anyone but the demand's own enterprise."""
    if actor.portal is not Portal.ENTERPRISE or demand.organisation_id != actor.organisation_id:
        return {}
    ctx = page_context(request, actor)
    if demand.product == Product.BANK_LOAN.value:
        if not actor.can(Action.READ_OFFERS):
            return {}
        rows = offers.list_offers(session, ctx=ctx, demand_id=demand.id, limit=100)
        return {
            "offer_box": {
                "offers": [_offer_row(session, o) for o in rows],
                "banks": _names(session, [o.bank_org_id for o in rows]),
                "can_decide": actor.can(Action.DECIDE_FUNDING),
                "now": ctx.now(),
                # One key per rendered accept form: a double submit accepts once.
                "accept_keys": {o.id: uuid.uuid4().hex for o in rows},
            },
            **BOX_HELPERS,
        }
    funding = investing.round_of(session, demand.id)
    if funding is None:
        return {}
    return {"funding_box": _round_view(demand, funding, actor), **BOX_HELPERS}


def _round_view(demand: Demand, funding: FundingRound, actor: Actor) -> dict[str, Any]:
    is_open = funding.status == RoundStatus.OPEN.value
    if not is_open:
        why_not = N_("The funding round is closed: partial funding can only be chosen while it is open.")
    elif demand.min_funding_minor is None:
        why_not = N_(
            "Your demand states no least amount it accepts, so partial funding cannot be accepted: "
            "the round funds only when the full amount is committed."
        )
    elif not actor.can(Action.DECIDE_FUNDING):
        why_not = N_("Only an enterprise administrator decides on funding.")
    else:
        why_not = ""
    return {
        "round": funding,
        "bar": progress(funding.committed_minor, funding.target_minor),
        "remaining": funding.target_minor - funding.committed_minor,
        "can_toggle": not why_not,
        "why_not": why_not,
    }


def _offer_row(session: Session, o: BankOffer) -> dict[str, Any]:
    all_in = offers.all_in_rate(o.annual_rate, o.fee_minor, o.amount_minor, o.term_months, o.repayment_method)
    return {"offer": o, "all_in": all_in}


def _demand_again(
    request: Request, session: Session, settings: Settings, actor: Actor, demand_id: uuid.UUID, **extra: Any
) -> Response:
    return _demand_page(request, session, settings, actor, demand_id, **extra)


@router.post("/enterprise/demands/{demand_id}/partial-funding", dependencies=[Csrf])
def set_partial_funding(
    request: Request, session: DB, settings: SettingsDep, demand_id: str, form: FormDep
) -> Response:
    got = guard(request, session, Portal.ENTERPRISE, Action.DECIDE_FUNDING)
    if isinstance(got, Response):
        return got
    found = _uuid(demand_id)
    if found is None:
        return _not_found(request, N_("no such demand"))
    accept = text(form, "accept_partial") == "yes"
    try:
        investing.set_accept_partial(session, ctx=page_context(request, got), demand_id=found, accept=accept)
    except NotFound:
        session.rollback()
        return _not_found(request, N_("no such demand"))
    except YunrongError as exc:
        session.rollback()
        errors = _errors(request, exc, ("accept_partial",), default="accept_partial")
        return _demand_again(request, session, settings, got, found, status=exc.status, errors=errors)
    done = "partial-accepted" if accept else "partial-refused"
    return RedirectResponse(f"/enterprise/demands/{found}?done={done}#funding", status_code=303)


def _enterprise_offer(request: Request, session: Session, actor: Actor, offer_id: str) -> BankOffer | None:
    found = _uuid(offer_id)
    if found is None:
        return None
    try:
        return offers.visible_offer(session, ctx=page_context(request, actor), offer_id=found)
    except NotFound:
        return None


@router.post("/enterprise/offers/{offer_id}/acceptance", dependencies=[Csrf])
def accept_offer(
    request: Request, session: DB, settings: SettingsDep, offer_id: str, form: FormDep
) -> Response:
    """The enterprise accepts a bank's offer: the bank's money moves in escrow and the loan is booked;
    the form's key makes a double submit accept once, as the API's Idempotency-Key does."""
    got = guard(request, session, Portal.ENTERPRISE, Action.DECIDE_FUNDING)
    if isinstance(got, Response):
        return got
    offer = _enterprise_offer(request, session, got, offer_id)
    if offer is None:
        return _not_found(request, N_("no such offer"))
    offer_key, demand_id = offer.id, offer.demand_id
    ctx = page_context(request, got)

    def run() -> tuple[int, dict[str, Any]]:
        row = offers.accept_offer(session, ctx=ctx, settings=settings, offer_id=offer_key)
        return 200, {"id": str(row.id), "loan_id": str(row.loan_id), "status": row.status}

    try:
        _status, payload, _replayed = idempotency.run_once(
            session,
            ctx=ctx,
            key=text(form, "idempotency_key"),
            operation="accept_offer",
            request={"offer_id": str(offer_key)},
            command=run,
        )
    except NotFound:
        session.rollback()
        return _not_found(request, N_("no such offer"))
    except YunrongError as exc:
        session.rollback()
        errors = {f"offer-{offer_key}": say(request, exc.detail), "offer_title": type(exc).title}
        return _demand_again(request, session, settings, got, demand_id, status=exc.status, errors=errors)
    return RedirectResponse(f"/enterprise/loans/{payload['loan_id']}?done=offer-accepted", status_code=303)


@router.post("/enterprise/offers/{offer_id}/decline", dependencies=[Csrf])
def decline_offer(
    request: Request, session: DB, settings: SettingsDep, offer_id: str, form: FormDep
) -> Response:
    got = guard(request, session, Portal.ENTERPRISE, Action.DECIDE_FUNDING)
    if isinstance(got, Response):
        return got
    offer = _enterprise_offer(request, session, got, offer_id)
    if offer is None:
        return _not_found(request, N_("no such offer"))
    offer_key, demand_id = offer.id, offer.demand_id
    reason = text(form, "reason")
    if len(reason) > 500:
        errors = {f"offer-{offer_key}": say(request, N_("Too long."))}
        return _demand_again(request, session, settings, got, demand_id, status=422, errors=errors)
    try:
        offers.decline_offer(session, ctx=page_context(request, got), offer_id=offer_key, reason=reason)
    except NotFound:
        session.rollback()
        return _not_found(request, N_("no such offer"))
    except YunrongError as exc:
        session.rollback()
        errors = {f"offer-{offer_key}": say(request, exc.detail), "offer_title": type(exc).title}
        return _demand_again(request, session, settings, got, demand_id, status=exc.status, errors=errors)
    return RedirectResponse(f"/enterprise/demands/{demand_id}?done=offer-declined#offers", status_code=303)


# --- loans: the enterprise's and the bank's -------------------------------------------------------------


def _loan_base(portal: Portal) -> str:
    return f"/{portal.value}/loans"


def _loan_list(request: Request, session: Session, portal: Portal) -> Response:
    got = guard(request, session, portal, Action.READ_LOANS)
    if isinstance(got, Response):
        return got
    rows = loans.list_loans(session, ctx=page_context(request, got), limit=200)
    counts = {
        loan.id: len(loans.notes_of(session, ctx=page_context(request, got), loan=loan)) for loan in rows
    }
    demands = (
        {d.id: d for d in session.scalars(select(Demand).where(Demand.id.in_([r.demand_id for r in rows])))}
        if rows
        else {}
    )
    return render(
        request,
        "loans/list.html",
        loans=rows,
        lenders=counts,
        demands=demands,
        base=_loan_base(portal),
        **HELPERS,
    )


@router.get("/enterprise/loans")
def enterprise_loans(request: Request, session: DB) -> Response:
    return _loan_list(request, session, Portal.ENTERPRISE)


@router.get("/bank/loans")
def bank_loans(request: Request, session: DB) -> Response:
    return _loan_list(request, session, Portal.BANK)


def _payout_view(session: Session, loan: Loan) -> dict[str, Any]:
    instruction = session.get(Instruction, loan.payout_instruction_id) if loan.payout_instruction_id else None
    polling = loan.status == LoanStatus.DISBURSING.value and (
        instruction is None or instruction.status == "pending"
    )
    return {"loan": loan, "instruction": instruction, "polling": polling}


def _loan_view(request: Request, session: Session, actor: Actor, loan_id: uuid.UUID) -> dict[str, Any] | None:
    ctx = page_context(request, actor)
    try:
        loan = loans.visible_loan(session, ctx=ctx, loan_id=loan_id)
        agreement = loans.agreement_of(session, loan.id)
    except NotFound:
        return None
    acceptances = loans.acceptances_of(session, agreement.id)
    mine = next((a for a in acceptances if a.organisation_id == actor.organisation_id), None)
    parties = {loan.enterprise_org_id: "borrower"}
    if loan.lender_kind == LenderKind.BANK.value and loan.bank_org_id is not None:
        parties[loan.bank_org_id] = "bank"
    party = parties.get(actor.organisation_id) if actor.organisation_id else None
    notes = loans.notes_of(session, ctx=ctx, loan=loan)
    return {
        "agreement": agreement,
        "acceptances": [a for a in acceptances if a.party_role != "investor"],
        "investor_acceptances": sum(1 for a in acceptances if a.party_role == "investor"),
        "mine": mine,
        "waiting_for": [
            role for org, role in parties.items() if not any(a.organisation_id == org for a in acceptances)
        ],
        "can_accept": (
            party is not None
            and mine is None
            and loan.status == LoanStatus.CONTRACTING.value
            and actor.can(Action.ACCEPT_CONTRACT)
        ),
        "notes": notes,
        "lenders": len(notes),
        "names": _names(session, [loan.enterprise_org_id, loan.bank_org_id]),
        "demand": session.get(Demand, loan.demand_id),
        **_payout_view(session, loan),
    }


def _loan_page(
    request: Request,
    session: Session,
    actor: Actor,
    loan_id: uuid.UUID,
    portal: Portal,
    *,
    status: int = 200,
    **extra: Any,
) -> Response:
    view = _loan_view(request, session, actor, loan_id)
    if view is None:
        return _not_found(request, N_("no such loan"))
    return render(
        request, "loans/loan.html", status=status, base=_loan_base(portal), **view, **HELPERS, **extra
    )


def _loan_get(request: Request, session: Session, portal: Portal, loan_id: str, done: str) -> Response:
    got = guard(request, session, portal, Action.READ_LOANS)
    if isinstance(got, Response):
        return got
    found = _uuid(loan_id)
    if found is None:
        return _not_found(request, N_("no such loan"))
    shown = done if done in {"accepted", "offer-accepted"} else ""
    return _loan_page(request, session, got, found, portal, done=shown)


@router.get("/enterprise/loans/{loan_id}")
def enterprise_loan(request: Request, session: DB, loan_id: str, done: str = "") -> Response:
    return _loan_get(request, session, Portal.ENTERPRISE, loan_id, done)


@router.get("/bank/loans/{loan_id}")
def bank_loan(request: Request, session: DB, loan_id: str, done: str = "") -> Response:
    return _loan_get(request, session, Portal.BANK, loan_id, done)


def _loan_live(request: Request, session: Session, portal: Portal, loan_id: str) -> Response:
    """The disbursement fragment the loan page polls (HTMX) while the custodian pays out."""
    got = guard(request, session, portal, Action.READ_LOANS)
    if isinstance(got, Response):
        return got
    found = _uuid(loan_id)
    try:
        if found is None:
            raise NotFound("no such loan")
        loan = loans.visible_loan(session, ctx=page_context(request, got), loan_id=found)
    except NotFound:
        return _not_found(request, N_("no such loan"))
    return render(
        request, "loans/_payout.html", base=_loan_base(portal), **_payout_view(session, loan), **HELPERS
    )


@router.get("/enterprise/loans/{loan_id}/live")
def enterprise_loan_live(request: Request, session: DB, loan_id: str) -> Response:
    return _loan_live(request, session, Portal.ENTERPRISE, loan_id)


@router.get("/bank/loans/{loan_id}/live")
def bank_loan_live(request: Request, session: DB, loan_id: str) -> Response:
    return _loan_live(request, session, Portal.BANK, loan_id)


_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


def _accept_agreement(
    request: Request, session: Session, settings: Settings, portal: Portal, loan_id: str, form: FormData
) -> Response:
    got = guard(request, session, portal, Action.ACCEPT_CONTRACT)
    if isinstance(got, Response):
        return got
    found = _uuid(loan_id)
    if found is None:
        return _not_found(request, N_("no such loan"))
    sha256 = text(form, "sha256")
    submitted = {"sha256": sha256, "read": text(form, "read")}
    errors: dict[str, str] = {}
    if not sha256:
        errors["sha256"] = say(request, N_("Required."))
    elif not _SHA256.match(sha256):
        errors["sha256"] = say(request, N_("A SHA-256 fingerprint is 64 hexadecimal characters."))
    if submitted["read"] != "yes":
        errors["read"] = say(request, N_("Tick the box to confirm that you have read the agreement."))
    if errors:
        return _loan_page(request, session, got, found, portal, status=422, errors=errors, form=submitted)
    ctx = page_context(request, got)
    try:
        loans.accept_agreement(session, ctx=ctx, settings=settings, loan_id=found, sha256=sha256)
    except NotFound:
        session.rollback()
        return _not_found(request, N_("no such loan"))
    except LoanNotContracting as exc:
        session.rollback()
        view = _loan_view(request, session, got, found)
        if view is not None and view["mine"] is not None:  # a second submit of the same form
            return RedirectResponse(f"{_loan_base(portal)}/{found}?done=accepted", status_code=303)
        errors = {"sha256": say(request, exc.detail)}
        return _loan_page(
            request, session, got, found, portal, status=exc.status, errors=errors, form=submitted
        )
    except YunrongError as exc:
        session.rollback()
        errors = _errors(request, exc, ("sha256",), default="sha256")
        return _loan_page(
            request, session, got, found, portal, status=exc.status, errors=errors, form=submitted
        )
    return RedirectResponse(f"{_loan_base(portal)}/{found}?done=accepted", status_code=303)


@router.post("/enterprise/loans/{loan_id}/agreement/acceptance", dependencies=[Csrf])
def enterprise_accept_agreement(
    request: Request, session: DB, settings: SettingsDep, loan_id: str, form: FormDep
) -> Response:
    return _accept_agreement(request, session, settings, Portal.ENTERPRISE, loan_id, form)


@router.post("/bank/loans/{loan_id}/agreement/acceptance", dependencies=[Csrf])
def bank_accept_agreement(
    request: Request, session: DB, settings: SettingsDep, loan_id: str, form: FormDep
) -> Response:
    return _accept_agreement(request, session, settings, Portal.BANK, loan_id, form)


@router.get("/loans/{loan_id}/agreement.pdf")
def agreement_pdf(request: Request, session: DB, loan_id: str) -> Response:
    """The agreement as generated, for a party that may see the loan; its SHA-256 in a header too."""
    got = guard(request, session, None, Action.READ_LOANS)
    if isinstance(got, Response):
        return got
    found = _uuid(loan_id)
    try:
        if found is None:
            raise NotFound("no such loan")
        loan = loans.visible_loan(session, ctx=page_context(request, got), loan_id=found)
        agreement = loans.agreement_of(session, loan.id)
    except NotFound:
        return _not_found(request, N_("no such loan"))
    return Response(
        agreement.pdf,
        media_type="application/pdf",
        headers={
            "X-Agreement-SHA256": agreement.sha256,
            "Content-Disposition": f'inline; filename="{loan.ref}-agreement.pdf"',
            "Cache-Control": "no-store",
        },
    )


# --- the bank: demands open to it, its offers -------------------------------------------------------------


def _bank_guard(request: Request, session: Session, *actions: Action) -> Actor | Response:
    return guard(request, session, Portal.BANK, *actions)


@router.get("/bank/demands")
def bank_demands(request: Request, session: DB) -> Response:
    got = _bank_guard(request, session, Action.MAKE_OFFERS)
    if isinstance(got, Response):
        return got
    ctx = page_context(request, got)
    try:
        rows = offers.offerable_demands(session, ctx=ctx, limit=200)
    except YunrongError as exc:  # e.g. a bank not admitted (yet, or any more)
        return render_error(request, exc.status, type(exc).title, exc.detail)
    bank_id = got.organisation_id
    assert bank_id is not None
    now = ctx.now()
    items = []
    for demand in rows:
        decision = current_decision(session, demand.id)
        items.append(
            {
                "demand": demand,
                "grade": decision.grade if decision is not None and not decision.declined else None,
                "score": credit_file.demand_index(session, demand, now).score,
                "addressed": str(bank_id) in offers.addressed_banks(demand),
                "mine": offers.open_offer_of(session, demand.id, bank_id),
            }
        )
    names = _names(session, [d.organisation_id for d in rows])
    return render(request, "loans/bank_demands.html", items=items, names=names, **HELPERS)


def _open_demand(request: Request, session: Session, actor: Actor, demand_id: str) -> Demand | Response:
    """The bank-loan demand, when it is listed and open to this (admitted) bank; else the 404 page."""
    found = _uuid(demand_id)
    demand = session.get(Demand, found) if found is not None else None
    if (
        demand is None
        or actor.organisation_id is None
        or not offers.open_to_bank(demand, actor.organisation_id)
    ):
        return _not_found(request, N_("no such bank-loan demand open to your offers"))
    return demand


def _demand_facts(request: Request, session: Session, actor: Actor, demand: Demand) -> dict[str, Any]:
    ctx = page_context(request, actor)
    decision = current_decision(session, demand.id)
    assert actor.organisation_id is not None
    return {
        "demand": demand,
        "decision": decision,
        "index": credit_file.demand_index(session, demand, ctx.now()),
        "enterprise_name": _names(session, [demand.organisation_id]).get(demand.organisation_id, ""),
        "mine": offers.open_offer_of(session, demand.id, actor.organisation_id),
        "addressed": str(actor.organisation_id) in offers.addressed_banks(demand),
    }


@router.get("/bank/demands/{demand_id}")
def bank_demand(request: Request, session: DB, demand_id: str) -> Response:
    got = _bank_guard(request, session, Action.MAKE_OFFERS)
    if isinstance(got, Response):
        return got
    demand = _open_demand(request, session, got, demand_id)
    if isinstance(demand, Response):
        return demand
    return render(
        request, "loans/bank_demand.html", **_demand_facts(request, session, got, demand), **HELPERS
    )


def _offer_page(
    request: Request,
    session: Session,
    settings: Settings,
    actor: Actor,
    demand: Demand,
    *,
    status: int = 200,
    **extra: Any,
) -> Response:
    ctx = page_context(request, actor)
    zone = ZoneInfo(settings.timezone)
    defaults = {
        "amount": str(Money(demand.amount_minor, demand.currency).decimal),
        "term_months": str(demand.term_months),
        "repayment_method": demand.repayment_method if demand.repayment_method in BANK_METHODS else "",
        "valid_until": (ctx.now() + timedelta(days=DEFAULT_OFFER_DAYS))
        .astimezone(zone)
        .strftime("%Y-%m-%dT%H:%M"),
    }
    extra["form"] = {**defaults, **extra.get("form", {})}
    return render(
        request,
        "loans/offer_form.html",
        status=status,
        methods=BANK_METHODS,
        fee_bp=settings.platform_fee_bp,
        timezone=settings.timezone,
        **_demand_facts(request, session, actor, demand),
        **HELPERS,
        **extra,
    )


@router.get("/bank/demands/{demand_id}/offer")
def offer_form(request: Request, session: DB, settings: SettingsDep, demand_id: str) -> Response:
    got = _bank_guard(request, session, Action.MAKE_OFFERS)
    if isinstance(got, Response):
        return got
    demand = _open_demand(request, session, got, demand_id)
    if isinstance(demand, Response):
        return demand
    return _offer_page(request, session, settings, got, demand)


def read_offer_form(
    form: FormData, settings: Settings, currency: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """The offer's values from the form (amount in minor units, rate as a fraction, an aware time),
    and a message (an English message id) beside each field that cannot be read."""
    zone = ZoneInfo(settings.timezone)
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    amount = text(form, "amount").replace(",", "").replace(" ", "")
    try:
        values["amount"] = Money.of(Decimal(amount), currency).minor
        if values["amount"] <= 0:
            errors["amount"] = N_("Enter an amount greater than zero.")
    except (InvalidOperation, MoneyError, ValueError):
        errors["amount"] = N_("Enter an amount, e.g. 1250000.00.") if amount else N_("Required.")
    rate = text(form, "annual_rate_percent").removesuffix("%").strip()
    try:
        percent_value = Decimal(rate)
        exponent = percent_value.as_tuple().exponent
        if not isinstance(exponent, int) or exponent < -4:  # not finite, or finer than 0.0001 %
            raise InvalidOperation
        if percent_value <= 0 or percent_value >= 100:
            errors["annual_rate_percent"] = N_("Enter a rate above 0 and below 100 (percent).")
        values["annual_rate"] = (percent_value / 100).quantize(Decimal("0.000001"))
    except InvalidOperation:
        errors["annual_rate_percent"] = (
            N_("Enter the annual rate in percent, e.g. 6.5 (at most four decimals).")
            if rate
            else N_("Required.")
        )
    term = text(form, "term_months")
    try:
        values["term_months"] = int(term)
    except ValueError:
        errors["term_months"] = N_("Enter a whole number.") if term else N_("Required.")
    method = text(form, "repayment_method")
    if method not in BANK_METHODS:
        errors["repayment_method"] = N_("Choose one of the options.")
    values["repayment_method"] = method
    values["conditions"] = text(form, "conditions")
    if len(values["conditions"]) > 4000:
        errors["conditions"] = N_("Too long.")
    until = text(form, "valid_until")
    try:
        moment = datetime.fromisoformat(until)
        values["valid_until"] = moment.replace(tzinfo=zone) if moment.tzinfo is None else moment
    except ValueError:
        errors["valid_until"] = (
            N_("Enter a date and time, e.g. 2026-12-31T17:00.") if until else N_("Required.")
        )
    return values, errors


@router.post("/bank/demands/{demand_id}/offer", dependencies=[Csrf])
def make_offer(
    request: Request, session: DB, settings: SettingsDep, demand_id: str, form: FormDep
) -> Response:
    got = _bank_guard(request, session, Action.MAKE_OFFERS)
    if isinstance(got, Response):
        return got
    demand = _open_demand(request, session, got, demand_id)
    if isinstance(demand, Response):
        return demand
    submitted = {name: text(form, name) for name in OFFER_FIELDS if name != "currency"}
    values, problems = read_offer_form(form, settings, demand.currency)
    if problems:
        errors = {k: say(request, v) for k, v in problems.items()}
        return _offer_page(request, session, settings, got, demand, status=422, errors=errors, form=submitted)
    try:
        offer = offers.create_offer(
            session,
            ctx=page_context(request, got),
            settings=settings,
            req=offers.OfferRequest(demand_id=demand.id, currency=demand.currency, **values),
        )
    except NotFound:
        session.rollback()
        return _not_found(request, N_("no such bank-loan demand open to your offers"))
    except YunrongError as exc:
        session.rollback()
        demand_again = session.get(Demand, demand.id)
        assert demand_again is not None
        errors = _errors(request, exc, OFFER_FIELDS)
        if "currency" in errors:
            errors.setdefault("amount", errors.pop("currency"))
        if "form" in errors:
            errors["form_title"] = type(exc).title
        return _offer_page(
            request, session, settings, got, demand_again, status=exc.status, errors=errors, form=submitted
        )
    return RedirectResponse(f"/bank/offers?done=made&offer={offer.ref}", status_code=303)


def _offers_page(
    request: Request, session: Session, actor: Actor, *, status: int = 200, **extra: Any
) -> Response:
    ctx = page_context(request, actor)
    rows = offers.list_offers(session, ctx=ctx, limit=200)
    demands = (
        {d.id: d for d in session.scalars(select(Demand).where(Demand.id.in_({o.demand_id for o in rows})))}
        if rows
        else {}
    )
    assert actor.organisation_id is not None
    bank_id = actor.organisation_id
    return render(
        request,
        "loans/bank_offers.html",
        status=status,
        rows=[_offer_row(session, o) for o in rows],
        demands=demands,
        still_open={d_id for d_id, d in demands.items() if offers.open_to_bank(d, bank_id)},
        can_withdraw=actor.can(Action.MAKE_OFFERS),
        **HELPERS,
        **extra,
    )


@router.get("/bank/offers")
def bank_offers(request: Request, session: DB, done: str = "", offer: str = "") -> Response:
    got = _bank_guard(request, session, Action.READ_OFFERS)
    if isinstance(got, Response):
        return got
    shown = done if done in {"made", "withdrawn"} else ""
    return _offers_page(request, session, got, done=shown, done_ref=offer[:20])


@router.post("/bank/offers/{offer_id}/withdrawal", dependencies=[Csrf])
def withdraw_offer(request: Request, session: DB, offer_id: str, form: FormDep) -> Response:
    got = _bank_guard(request, session, Action.MAKE_OFFERS)
    if isinstance(got, Response):
        return got
    found = _uuid(offer_id)
    if found is None:
        return _not_found(request, N_("no such offer"))
    reason = text(form, "reason")
    if len(reason) > 500:
        return _offers_page(
            request, session, got, status=422, errors={f"offer-{found}": say(request, N_("Too long."))}
        )
    try:
        row = offers.withdraw_offer(session, ctx=page_context(request, got), offer_id=found, reason=reason)
    except NotFound:
        session.rollback()
        return _not_found(request, N_("no such offer"))
    except YunrongError as exc:
        session.rollback()
        return _offers_page(
            request, session, got, status=exc.status, errors={f"offer-{found}": say(request, exc.detail)}
        )
    return RedirectResponse(f"/bank/offers?done=withdrawn&offer={row.ref}", status_code=303)
