"""JSON API of step 7's restructurings, defaults (claims, collections, write-off, recoveries), the
risk reserve and the IFRS 9 expected-credit-loss report."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from yunrong.custody.tables import Instruction
from yunrong.deps import DB, ApiCtx, SettingsDep
from yunrong.identity.model import Context
from yunrong.kit.clock import business_date
from yunrong.kit.errors import FieldProblem, InvalidInput
from yunrong.kit.money import Money, MoneyError
from yunrong.ledger import idempotency
from yunrong.servicing import defaults, ecl, restructuring
from yunrong.servicing.tables import Claim

router = APIRouter(prefix="/api/v1", tags=["servicing"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Unique per request; a retry with the same key returns the first result",
    ),
]


def _minor(amount: Decimal, currency: str) -> int:
    try:
        return Money.of(amount, currency).minor
    except MoneyError as exc:
        raise InvalidInput(str(exc), [FieldProblem(("amount",), str(exc))]) from None


def _once(
    session: Session,
    ctx: Context,
    key: str | None,
    operation: str,
    request: Any,
    run: Callable[[], tuple[int, dict[str, Any]]],
) -> JSONResponse:
    status, payload, replayed = idempotency.run_once(
        session, ctx=ctx, key=key, operation=operation, request=request, command=run
    )
    return JSONResponse(
        payload, status_code=status, headers={"Idempotent-Replayed": "true" if replayed else "false"}
    )


# --- restructurings ---------------------------------------------------------------------------------


class RestructuringIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["payment_holiday", "term_extension", "reamortisation"]
    months: int = Field(default=0, ge=0, le=restructuring.MAX_MONTHS, description="Holiday or extension")
    reason: str = Field(min_length=1, max_length=2000)


class VoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approve: bool


class PreviewRow(BaseModel):
    number: int
    period_start: date
    due_date: date
    principal_minor: int
    interest_minor: int
    payment_minor: int
    balance_after_minor: int


class VoteOut(BaseModel):
    organisation_id: uuid.UUID
    approve: bool
    weight_minor: int
    voted_at: datetime


class RestructuringOut(BaseModel):
    id: uuid.UUID
    ref: str
    loan_id: uuid.UUID
    loan_ref: str
    lender_kind: str
    kind: str
    months: int
    reason: str
    status: str
    interest_during_holiday: str | None
    old_maturity: date
    new_maturity: date
    preview: list[PreviewRow]
    total_weight_minor: int
    approve_weight_minor: int
    reject_weight_minor: int
    votes: list[VoteOut]
    proposed_by: str
    proposed_at: datetime
    decided_at: datetime | None


def _restructuring_out(view: restructuring.RestructuringView) -> RestructuringOut:
    r, loan, t = view.restructuring, view.loan, view.tally
    return RestructuringOut(
        id=r.id,
        ref=r.ref,
        loan_id=loan.id,
        loan_ref=loan.ref,
        lender_kind=loan.lender_kind,
        kind=r.kind,
        months=int(r.params.get("months", 0)),
        reason=r.reason,
        status=r.status,
        interest_during_holiday="accrued, paid with the first instalment after the holiday"
        if r.kind == "payment_holiday"
        else None,
        old_maturity=date.fromisoformat(r.params["old_maturity"]),
        new_maturity=date.fromisoformat(r.params["new_maturity"]),
        preview=[PreviewRow.model_validate(p) for p in r.preview],
        total_weight_minor=t.total_minor,
        approve_weight_minor=t.approve_minor,
        reject_weight_minor=t.reject_minor,
        votes=[
            VoteOut(
                organisation_id=v.organisation_id,
                approve=v.approve,
                weight_minor=v.weight_minor,
                voted_at=v.voted_at,
            )
            for v in view.votes
        ],
        proposed_by=r.proposed_by,
        proposed_at=r.proposed_at,
        decided_at=r.decided_at,
    )


@router.post(
    "/loans/{loan_id}/restructurings",
    operation_id="create_restructuring",
    response_model=RestructuringOut,
    status_code=201,
)
def create_restructuring(
    session: DB, ctx: ApiCtx, loan_id: uuid.UUID, body: RestructuringIn
) -> RestructuringOut:
    """Propose a payment holiday, a term extension or a re-amortisation; the new schedule is shown
    and the lender (the bank, or investors holding a majority by value of the notes) decides."""
    row = restructuring.create_restructuring(
        session, ctx=ctx, loan_id=loan_id, kind=body.kind, months=body.months, reason=body.reason
    )
    return _restructuring_out(restructuring.read_restructuring(session, ctx=ctx, restructuring_id=row.id))


@router.get(
    "/restructurings/{restructuring_id}", operation_id="read_restructuring", response_model=RestructuringOut
)
def read_restructuring(session: DB, ctx: ApiCtx, restructuring_id: uuid.UUID) -> RestructuringOut:
    return _restructuring_out(
        restructuring.read_restructuring(session, ctx=ctx, restructuring_id=restructuring_id)
    )


@router.post(
    "/restructurings/{restructuring_id}/votes",
    operation_id="vote_restructuring",
    response_model=RestructuringOut,
)
def vote_restructuring(
    session: DB, ctx: ApiCtx, restructuring_id: uuid.UUID, body: VoteIn
) -> RestructuringOut:
    """A lender's vote, weighted by its notes' outstanding principal; a majority applies it."""
    restructuring.vote_restructuring(
        session, ctx=ctx, restructuring_id=restructuring_id, approve=body.approve
    )
    return _restructuring_out(
        restructuring.read_restructuring(session, ctx=ctx, restructuring_id=restructuring_id)
    )


# --- claims ----------------------------------------------------------------------------------------


class ClaimOut(BaseModel):
    id: uuid.UUID
    ref: str
    loan_id: uuid.UUID
    loan_ref: str
    kind: str
    payer_org_id: uuid.UUID
    coverage_bp: int
    amount_minor: int
    amount: str
    currency: str
    status: str
    deadline: date
    created_at: datetime
    paid_at: datetime | None
    subrogated_minor: int
    investors_part_minor: int
    payer_part_minor: int


def _claim_out(view: defaults.ClaimView) -> ClaimOut:
    c = view.claim
    return ClaimOut(
        id=c.id,
        ref=c.ref,
        loan_id=view.loan.id,
        loan_ref=view.loan.ref,
        kind=c.kind,
        payer_org_id=c.payer_org_id,
        coverage_bp=c.coverage_bp,
        amount_minor=c.amount_minor,
        amount=str(Money(c.amount_minor, c.currency).decimal),
        currency=c.currency,
        status=c.status,
        deadline=c.deadline,
        created_at=c.created_at,
        paid_at=c.paid_at,
        subrogated_minor=c.subrogated_minor,
        investors_part_minor=view.investors_part_minor,
        payer_part_minor=view.payer_part_minor,
    )


def _read_claim(session: Session, ctx: Context, claim: Claim) -> ClaimOut:
    return _claim_out(defaults.read_claim(session, ctx=ctx, claim_id=claim.id))


@router.post(
    "/loans/{loan_id}/guarantee-claims",
    operation_id="create_guarantee_claim",
    response_model=ClaimOut,
    status_code=201,
)
def create_guarantee_claim(session: DB, ctx: ApiCtx, settings: SettingsDep, loan_id: uuid.UUID) -> ClaimOut:
    """Call the guarantor after the policy's days past due: coverage × (principal + accrued interest)."""
    claim = defaults.create_guarantee_claim(session, ctx=ctx, settings=settings, loan_id=loan_id)
    return _read_claim(session, ctx, claim)


@router.post(
    "/loans/{loan_id}/insurance-claims",
    operation_id="create_insurance_claim",
    response_model=ClaimOut,
    status_code=201,
)
def create_insurance_claim(session: DB, ctx: ApiCtx, settings: SettingsDep, loan_id: uuid.UUID) -> ClaimOut:
    claim = defaults.create_insurance_claim(session, ctx=ctx, settings=settings, loan_id=loan_id)
    return _read_claim(session, ctx, claim)


@router.get("/claims/{claim_id}", operation_id="read_claim", response_model=ClaimOut)
def read_claim(session: DB, ctx: ApiCtx, claim_id: uuid.UUID) -> ClaimOut:
    return _claim_out(defaults.read_claim(session, ctx=ctx, claim_id=claim_id))


@router.post("/claims/{claim_id}/payment", operation_id="pay_claim", response_model=ClaimOut)
def pay_claim(
    session: DB,
    ctx: ApiCtx,
    settings: SettingsDep,
    claim_id: uuid.UUID,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """The guarantor (or the operator for it) pays the claim from its deposit in escrow; the money is
    distributed to the note holders at once."""
    defaults.claim_for_payment(session, ctx=ctx, claim_id=claim_id)  # 403/404 before anything else

    def run() -> tuple[int, dict[str, Any]]:
        claim = defaults.pay_claim(session, ctx=ctx, settings=settings, claim_id=claim_id)
        return 200, _claim_out(defaults.read_claim(session, ctx=ctx, claim_id=claim.id)).model_dump(
            mode="json"
        )

    return _once(session, ctx, idempotency_key, "pay_claim", {"claim_id": str(claim_id)}, run)


class DepositIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: Decimal = Field(gt=0, max_digits=16, decimal_places=2, description="Major units")
    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")


class InstructionOut(BaseModel):
    id: uuid.UUID
    ref: str
    kind: str
    status: str
    amount_minor: int
    currency: str


def _instruction_out(i: Instruction) -> dict[str, Any]:
    return InstructionOut(
        id=i.id, ref=i.ref, kind=i.kind, status=i.status, amount_minor=i.amount, currency=i.currency
    ).model_dump(mode="json")


@router.post(
    "/guarantor-deposits",
    operation_id="create_guarantor_deposit",
    response_model=InstructionOut,
    status_code=202,
)
def create_guarantor_deposit(
    session: DB, ctx: ApiCtx, body: DepositIn, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """A guarantor or insurer pays into its deposit in escrow (credited when the custodian confirms)."""
    amount = _minor(body.amount, body.currency)

    def run() -> tuple[int, dict[str, Any]]:
        row = defaults.create_guarantor_deposit(session, ctx=ctx, amount=amount, currency=body.currency)
        return 202, _instruction_out(row)

    return _once(session, ctx, idempotency_key, "create_guarantor_deposit", body.model_dump(mode="json"), run)


# --- collections, write-off, recoveries --------------------------------------------------------------


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(min_length=1, max_length=1000)


class WriteOffIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=1000)
    use_risk_reserve: bool = False


class LoanStateOut(BaseModel):
    loan_id: uuid.UUID
    state: str
    ifrs9_stage: int
    days_past_due: int
    principal_outstanding_minor: int
    interest_accrued_minor: int
    written_off_minor: int
    reserve_paid_minor: int = 0


@router.post("/loans/{loan_id}/collections", operation_id="start_collections", response_model=LoanStateOut)
def start_collections(session: DB, ctx: ApiCtx, loan_id: uuid.UUID, body: NoteIn) -> LoanStateOut:
    """Hand an overdue loan to collections (state defaulted, IFRS 9 stage 3), with a note."""
    s = defaults.start_collections(session, ctx=ctx, loan_id=loan_id, note=body.note)
    return LoanStateOut(
        loan_id=s.loan_id,
        state=s.state,
        ifrs9_stage=s.ifrs9_stage,
        days_past_due=s.days_past_due,
        principal_outstanding_minor=s.principal_outstanding,
        interest_accrued_minor=s.interest_accrued,
        written_off_minor=s.written_off_minor,
    )


@router.post("/loans/{loan_id}/write-off", operation_id="write_off_loan", response_model=LoanStateOut)
def write_off_loan(
    session: DB,
    ctx: ApiCtx,
    settings: SettingsDep,
    loan_id: uuid.UUID,
    body: WriteOffIn,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Write a defaulted loan off (operator, audited with the reason); recoveries still reach the
    note holders."""
    defaults.require_action(ctx, "manage_defaults")
    defaults.visible_loan(session, ctx, loan_id)

    def run() -> tuple[int, dict[str, Any]]:
        done = defaults.write_off_loan(
            session,
            ctx=ctx,
            settings=settings,
            loan_id=loan_id,
            reason=body.reason,
            use_risk_reserve=body.use_risk_reserve,
        )
        s = done.servicing
        out = LoanStateOut(
            loan_id=s.loan_id,
            state=s.state,
            ifrs9_stage=s.ifrs9_stage,
            days_past_due=s.days_past_due,
            principal_outstanding_minor=s.principal_outstanding,
            interest_accrued_minor=s.interest_accrued,
            written_off_minor=s.written_off_minor,
            reserve_paid_minor=done.reserve_paid_minor,
        )
        return 200, out.model_dump(mode="json")

    return _once(
        session, ctx, idempotency_key, "write_off_loan", {"loan_id": str(loan_id), **body.model_dump()}, run
    )


class RecoveryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: Decimal = Field(gt=0, max_digits=16, decimal_places=2, description="Major units")


@router.post(
    "/loans/{loan_id}/recoveries",
    operation_id="create_recovery",
    response_model=InstructionOut,
    status_code=202,
)
def create_recovery(
    session: DB, ctx: ApiCtx, loan_id: uuid.UUID, body: RecoveryIn, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Collect money recovered on a written-off loan through the custodian; it is distributed to the
    note holders when the bank confirms."""
    defaults.require_action(ctx, "manage_defaults")
    loan = defaults.visible_loan(session, ctx, loan_id)
    amount = _minor(body.amount, loan.currency)

    def run() -> tuple[int, dict[str, Any]]:
        row = defaults.create_recovery(session, ctx=ctx, loan_id=loan_id, amount=amount)
        return 202, _instruction_out(row)

    return _once(
        session,
        ctx,
        idempotency_key,
        "create_recovery",
        {"loan_id": str(loan_id), "amount": str(body.amount)},
        run,
    )


# --- risk reserve and ECL --------------------------------------------------------------------------


class RiskReserveOut(BaseModel):
    currency: str
    balance_minor: int
    covered_principal_minor: int
    covered_loans: int
    coverage_ratio: str | None
    is_guarantee: bool
    disclosure_en: str
    disclosure_zh: str


@router.get("/risk-reserve", operation_id="read_risk_reserve", response_model=RiskReserveOut)
def read_risk_reserve(
    session: DB, ctx: ApiCtx, currency: str = Query("CNY", pattern=r"^[A-Z]{3}$")
) -> RiskReserveOut:
    """The risk reserve and its true coverage ratio. It is not a guarantee."""
    v = defaults.risk_reserve(session, ctx=ctx, currency=currency)
    ratio = None if v.coverage_ratio is None else str(v.coverage_ratio)
    shown = (
        "no loans covered"
        if ratio is None
        else f"{v.coverage_ratio * 100:.2f}%"
        if v.coverage_ratio
        else "0.00%"
    )
    return RiskReserveOut(
        currency=v.currency,
        balance_minor=v.balance_minor,
        covered_principal_minor=v.covered_principal_minor,
        covered_loans=v.covered_loans,
        coverage_ratio=ratio,
        is_guarantee=False,
        disclosure_en=(
            f"The risk reserve holds {Money(v.balance_minor, v.currency)} against "
            f"{Money(v.covered_principal_minor, v.currency)} of outstanding principal ({shown}). It is "
            "funded by part of the disclosed service fee and covers losses pro rata only as far as it "
            "goes. It is not a guarantee: you can lose money."
        ),
        disclosure_zh=(
            f"风险准备金余额 {Money(v.balance_minor, v.currency)}，对应未还本金 "
            f"{Money(v.covered_principal_minor, v.currency)}（覆盖率 {shown}）。准备金来自已披露的服务费，"
            "仅在余额范围内按比例弥补损失，不是担保，出借人可能遭受损失。"
        ),
    )


class BucketOut(BaseModel):
    key: str
    loans: int
    ead_minor: int
    ecl_minor: int
    coverage: str


class EclLineOut(BaseModel):
    loan_id: uuid.UUID
    loan_ref: str
    grade: str
    stage: int
    pd_12m: str
    remaining_months: int
    pd: str
    lgd: str
    ead_minor: int
    covered_minor: int
    ecl_minor: int


class EclReportOut(BaseModel):
    as_of: date
    currency: str
    ead_minor: int
    ecl_minor: int
    by_stage: list[BucketOut]
    by_grade: list[BucketOut]
    loans: list[EclLineOut]
    method: str


def _buckets(items: list[ecl.Bucket]) -> list[BucketOut]:
    return [
        BucketOut(
            key=b.key, loans=b.loans, ead_minor=b.ead_minor, ecl_minor=b.ecl_minor, coverage=str(b.coverage)
        )
        for b in items
    ]


@router.get(
    "/reports/ecl",
    operation_id="read_ecl_report",
    response_model=EclReportOut,
    responses={200: {"content": {"text/csv": {}}}},
)
def read_ecl_report(
    session: DB,
    ctx: ApiCtx,
    settings: SettingsDep,
    currency: str = Query("CNY", pattern=r"^[A-Z]{3}$"),
    as_of: date | None = Query(None, description="Business date; default today"),
    format: Literal["json", "csv"] = Query("json"),
) -> Any:
    """Expected credit loss per IFRS 9 stage and grade: PD × LGD × EAD per loan."""
    day = as_of or business_date(ctx.now(), settings.timezone)
    report = ecl.ecl_report(session, ctx=ctx, as_of=day, currency=currency)
    if format == "csv":
        return Response(
            ecl.report_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="ecl-{currency}-{day.isoformat()}.csv"'},
        )
    return EclReportOut(
        as_of=report.as_of,
        currency=report.currency,
        ead_minor=report.ead_minor,
        ecl_minor=report.ecl_minor,
        by_stage=_buckets(report.by_stage),
        by_grade=_buckets(report.by_grade),
        loans=[
            EclLineOut(
                loan_id=x.exposure.loan_id,
                loan_ref=x.exposure.loan_ref,
                grade=x.exposure.grade,
                stage=x.exposure.stage,
                pd_12m=str(x.exposure.pd_12m),
                remaining_months=x.exposure.remaining_months,
                pd=str(x.pd),
                lgd=str(x.lgd),
                ead_minor=x.exposure.ead_minor,
                covered_minor=x.exposure.covered_minor,
                ecl_minor=x.ecl_minor,
            )
            for x in report.lines
        ],
        method="stage 1: 12-month PD; stage 2: lifetime PD; stage 3: PD 1; LGD 45% less guarantee/insurance "
        "cover; EAD principal + accrued interest",
    )
