"""JSON API of steps 5 and 6: commitments, funding rounds, loans and their agreements."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from yunrong.deps import DB, ApiCredential, ApiCtx, SettingsDep
from yunrong.identity.model import Credential
from yunrong.investing import autoinvest, batch, knowledge, loans
from yunrong.investing import service as investing
from yunrong.investing.tables import Commitment, FundingRound, Loan
from yunrong.kit.errors import FieldProblem, InvalidInput, NotFound
from yunrong.kit.money import Money, MoneyError
from yunrong.observability import request_id_var

router = APIRouter(prefix="/api/v1", tags=["investing"])
#: ``POST /commitments`` alone, included first: a rush on a listing is the API's hottest path, and
#: routes are matched in order (it saves matching every route included before the investing ones).
commit_router = APIRouter(prefix="/api/v1", tags=["investing"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Unique per request; a retry with the same key returns the first result",
    ),
]


def _major(minor: int, currency: str) -> str:
    return str(Money(minor, currency).decimal)


class CommitmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    demand_id: uuid.UUID
    amount: Decimal = Field(gt=0, max_digits=16, decimal_places=2, description="Major units, e.g. 5000.00")
    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")
    accept_agreement: bool = Field(description="You read and accept the listing's loan agreement form")
    risk_warning_accepted: bool = Field(
        default=False, description="You read the risk warning (needed above the policy's threshold)"
    )

    def minor(self) -> int:
        try:
            return Money.of(self.amount, self.currency).minor
        except MoneyError as exc:
            raise InvalidInput(str(exc), [FieldProblem(("amount",), str(exc))]) from None


class CommitmentOut(BaseModel):
    id: uuid.UUID
    ref: str
    demand_id: uuid.UUID
    amount: str
    amount_minor: int
    currency: str
    status: str
    source: str
    revocable_until: datetime | None
    agreement_sha256: str | None
    created_at: datetime
    resolved_at: datetime | None
    resolution: str | None


def commitment_out(row: Commitment | investing.CommitmentRecord) -> CommitmentOut:
    return CommitmentOut(
        id=row.id,
        ref=row.ref,
        demand_id=row.demand_id,
        amount=_major(row.amount_minor, row.currency),
        amount_minor=row.amount_minor,
        currency=row.currency,
        status=row.status,
        source=row.source,
        revocable_until=row.revocable_until,
        agreement_sha256=row.agreement_sha256,
        created_at=row.created_at,
        resolved_at=row.resolved_at,
        resolution=row.resolution,
    )


class RoundOut(BaseModel):
    demand_id: uuid.UUID
    status: str
    currency: str
    target: str
    committed: str
    remaining: str
    target_minor: int
    committed_minor: int
    remaining_minor: int
    min_funding_minor: int | None
    min_ticket_minor: int
    max_ticket_minor: int
    commitments: int
    annual_rate: str
    opens_at: datetime
    closes_at: datetime
    accept_partial: bool
    agreement_form_sha256: str | None
    loan_id: uuid.UUID | None


def round_out(row: FundingRound) -> RoundOut:
    remaining = row.target_minor - row.committed_minor
    return RoundOut(
        demand_id=row.demand_id,
        status=row.status,
        currency=row.currency,
        target=_major(row.target_minor, row.currency),
        committed=_major(row.committed_minor, row.currency),
        remaining=_major(remaining, row.currency),
        target_minor=row.target_minor,
        committed_minor=row.committed_minor,
        remaining_minor=remaining,
        min_funding_minor=row.min_funding_minor,
        min_ticket_minor=row.min_ticket_minor,
        max_ticket_minor=row.max_ticket_minor,
        commitments=row.commitments,
        annual_rate=str(row.annual_rate),
        opens_at=row.opens_at,
        closes_at=row.closes_at,
        accept_partial=row.accept_partial,
        agreement_form_sha256=row.form_sha256,
        loan_id=row.loan_id,
    )


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=500)


class PartialIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    accept_partial: bool


@commit_router.post(
    "/commitments", operation_id="create_commitment", response_model=CommitmentOut, status_code=201
)
async def create_commitment(
    request: Request,
    credential: ApiCredential,
    body: CommitmentIn,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Commit money to a listing: checked against the tickets, what is left, your balance and your
    suitability, then held in escrow until the round funds (posted) or fails (released). Requests
    arriving together are decided together, in arrival order, in one transaction (each still gets
    its own answer); see ``yunrong.investing.batch``."""
    call = commit_call(credential, idempotency_key, body)
    return await answer_commitment(request.app, call)


def commit_call(credential: Credential, key: str | None, body: CommitmentIn) -> batch.CommitCall:
    """A valid ``POST /commitments`` as the commitment queue takes it (also from ``commit_asgi``)."""
    return batch.CommitCall(
        credential=credential,
        request_id=request_id_var.get(),
        key=key,
        body=body.model_dump(mode="json"),
        req=investing.CommitRequest(
            demand_id=body.demand_id,
            amount=body.minor(),
            currency=body.currency,
            accept_agreement=body.accept_agreement,
            risk_warning_accepted=body.risk_warning_accepted,
        ),
    )


async def answer_commitment(app: Any, call: batch.CommitCall) -> JSONResponse:
    """The call decided by this process's commitment queue: 201, or the first answer replayed
    (a refusal is raised, for the problem+json handler)."""
    status, payload, replayed = await _commit_queue(app).submit(call)
    return JSONResponse(
        payload, status_code=status, headers={"Idempotent-Replayed": "true" if replayed else "false"}
    )


def _commit_queue(app: Any) -> batch.CommitQueue:
    """The app's commitment queue, made on first use (on the event loop, so made once)."""
    found: batch.CommitQueue | None = getattr(app.state, "commit_queue", None)
    if found is None:
        found = batch.CommitQueue(
            app.state.sessionmaker,
            settings=app.state.settings,
            clock=app.state.clock,
            render=lambda row: commitment_out(row).model_dump(mode="json"),
            on_batch=app.state.metrics.commitment_batch.observe,
        )
        app.state.commit_queue = found
    return found


@router.get("/commitments", operation_id="list_commitments", response_model=list[CommitmentOut])
def list_commitments(
    session: DB, ctx: ApiCtx, demand_id: uuid.UUID | None = None, limit: int = Query(100, ge=1, le=500)
) -> list[CommitmentOut]:
    return [
        commitment_out(c)
        for c in investing.list_commitments(session, ctx=ctx, demand_id=demand_id, limit=limit)
    ]


@router.get("/commitments/{commitment_id}", operation_id="read_commitment", response_model=CommitmentOut)
def read_commitment(session: DB, ctx: ApiCtx, commitment_id: uuid.UUID) -> CommitmentOut:
    return commitment_out(investing.visible_commitment(session, ctx=ctx, commitment_id=commitment_id))


@router.post(
    "/commitments/{commitment_id}/cancel", operation_id="cancel_commitment", response_model=CommitmentOut
)
def cancel_commitment(session: DB, ctx: ApiCtx, commitment_id: uuid.UUID, body: CancelIn) -> CommitmentOut:
    """Cancel while the round is open (under eu-ecsp: revoke within the reflection period); the
    hold is released at once."""
    return commitment_out(
        investing.cancel_commitment(session, ctx=ctx, commitment_id=commitment_id, reason=body.reason)
    )


@router.get("/demands/{demand_id}/funding", operation_id="read_funding_round", response_model=RoundOut)
def read_funding_round(session: DB, ctx: ApiCtx, demand_id: uuid.UUID) -> RoundOut:
    """The funding window of a listing: target, committed, what is left, tickets, deadline."""
    return round_out(investing.visible_round(session, ctx=ctx, demand_id=demand_id))


@router.put(
    "/demands/{demand_id}/funding/partial", operation_id="set_partial_funding", response_model=RoundOut
)
def set_partial_funding(session: DB, ctx: ApiCtx, demand_id: uuid.UUID, body: PartialIn) -> RoundOut:
    """The enterprise accepts partial funding above its stated minimum if the window closes short."""
    return round_out(
        investing.set_accept_partial(session, ctx=ctx, demand_id=demand_id, accept=body.accept_partial)
    )


# --- loans -------------------------------------------------------------------------------------------


class NoteOut(BaseModel):
    ref: str
    investor_org_id: uuid.UUID
    principal: str
    principal_minor: int


class LoanOut(BaseModel):
    id: uuid.UUID
    ref: str
    demand_id: uuid.UUID
    enterprise_org_id: uuid.UUID
    lender_kind: str
    product: str
    status: str
    principal: str
    principal_minor: int
    fee_minor: int
    currency: str
    annual_rate: str
    apr: str | None
    term_months: int
    repayment_method: str
    agreement_sha256: str | None
    created_at: datetime
    accepted_at: datetime | None
    disbursed_at: datetime | None
    notes: list[NoteOut]


def loan_out(session: DB, ctx: Any, loan: Loan) -> LoanOut:
    try:
        sha: str | None = loans.agreement_of(session, loan.id).sha256
    except NotFound:
        sha = None
    return LoanOut(
        id=loan.id,
        ref=loan.ref,
        demand_id=loan.demand_id,
        enterprise_org_id=loan.enterprise_org_id,
        lender_kind=loan.lender_kind,
        product=loan.product,
        status=loan.status,
        principal=_major(loan.principal_minor, loan.currency),
        principal_minor=loan.principal_minor,
        fee_minor=loan.fee_minor,
        currency=loan.currency,
        annual_rate=str(loan.annual_rate),
        apr=None if loan.apr is None else str(loan.apr),
        term_months=loan.term_months,
        repayment_method=loan.repayment_method,
        agreement_sha256=sha,
        created_at=loan.created_at,
        accepted_at=loan.accepted_at,
        disbursed_at=loan.disbursed_at,
        notes=[
            NoteOut(
                ref=n.ref,
                investor_org_id=n.investor_org_id,
                principal=_major(n.principal_minor, n.currency),
                principal_minor=n.principal_minor,
            )
            for n in loans.notes_of(session, ctx=ctx, loan=loan)
        ],
    )


class AcceptIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sha256: str = Field(pattern=r"^[0-9a-fA-F]{64}$", description="The hash of the agreement you read")


@router.get("/loans", operation_id="list_loans", response_model=list[LoanOut])
def list_loans(session: DB, ctx: ApiCtx, limit: int = Query(100, ge=1, le=500)) -> list[LoanOut]:
    """Your loans: an enterprise its borrowings, an investor the loans it holds notes of, a bank its
    direct loans; supervisors every loan."""
    return [loan_out(session, ctx, loan) for loan in loans.list_loans(session, ctx=ctx, limit=limit)]


@router.get("/loans/{loan_id}", operation_id="read_loan", response_model=LoanOut)
def read_loan(session: DB, ctx: ApiCtx, loan_id: uuid.UUID) -> LoanOut:
    return loan_out(session, ctx, loans.visible_loan(session, ctx=ctx, loan_id=loan_id))


@router.get(
    "/loans/{loan_id}/agreement",
    operation_id="read_loan_agreement",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
def read_loan_agreement(session: DB, ctx: ApiCtx, loan_id: uuid.UUID) -> Response:
    """The agreement as PDF; its SHA-256 is in the X-Agreement-SHA256 header."""
    loan = loans.visible_loan(session, ctx=ctx, loan_id=loan_id)
    agreement = loans.agreement_of(session, loan.id)
    return Response(
        agreement.pdf,
        media_type="application/pdf",
        headers={
            "X-Agreement-SHA256": agreement.sha256,
            "Content-Disposition": f'inline; filename="{loan.ref}-agreement.pdf"',
        },
    )


@router.post(
    "/loans/{loan_id}/agreement/accept", operation_id="accept_loan_agreement", response_model=LoanOut
)
def accept_loan_agreement(
    session: DB, ctx: ApiCtx, settings: SettingsDep, loan_id: uuid.UUID, body: AcceptIn
) -> LoanOut:
    """Accept the agreement you read (by its hash). When every party has accepted, the custodian is
    instructed to pay the loan out to the enterprise's verified account."""
    loan = loans.accept_agreement(session, ctx=ctx, settings=settings, loan_id=loan_id, sha256=body.sha256)
    return loan_out(session, ctx, loan)


# --- the entry knowledge test (eu-ecsp) ---------------------------------------------------------------


class OptionOut(BaseModel):
    key: str
    en: str
    zh: str


class QuestionOut(BaseModel):
    key: str
    en: str
    zh: str
    options: list[OptionOut]


class KnowledgeTestOut(BaseModel):
    required: bool
    pass_mark: int
    questions: list[QuestionOut]
    score: int | None
    passed: bool | None
    taken_at: datetime | None


class KnowledgeAnswersIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answers: dict[str, str] = Field(description="question key → option key")


def _knowledge_out(session: DB, ctx: Any, settings: Any) -> KnowledgeTestOut:
    row = knowledge.latest(session, ctx=ctx)
    return KnowledgeTestOut(
        required=settings.policy.knowledge_test_required,
        pass_mark=knowledge.PASS_MARK,
        questions=[
            QuestionOut(
                key=q.key,
                en=q.en,
                zh=q.zh,
                options=[OptionOut(key=k, en=en, zh=zh) for k, en, zh in q.options],
            )
            for q in knowledge.QUESTIONS
        ],
        score=row.score if row else None,
        passed=row.passed if row else None,
        taken_at=row.taken_at if row else None,
    )


@router.get("/me/knowledge-test", operation_id="read_knowledge_test", response_model=KnowledgeTestOut)
def read_knowledge_test(session: DB, ctx: ApiCtx, settings: SettingsDep) -> KnowledgeTestOut:
    """The questions, whether this policy profile requires the test, and your latest result."""
    return _knowledge_out(session, ctx, settings)


@router.post("/me/knowledge-test", operation_id="take_knowledge_test", response_model=KnowledgeTestOut)
def take_knowledge_test(
    session: DB, ctx: ApiCtx, settings: SettingsDep, body: KnowledgeAnswersIn
) -> KnowledgeTestOut:
    """Answer every question; the latest attempt counts."""
    knowledge.take_test(session, ctx=ctx, answers=body.answers)
    return _knowledge_out(session, ctx, settings)


# --- auto-invest rules ---------------------------------------------------------------------------------


def _bp(share: Decimal) -> int:
    return int((share * 10_000).to_integral_value())


class AutoInvestRuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")
    amount_per_loan: Decimal = Field(gt=0, max_digits=16, decimal_places=2)
    max_share_of_loan: Decimal = Field(default=Decimal("0.2"), gt=0, le=1, description="of one loan, 0–1")
    max_per_enterprise: Decimal = Field(gt=0, max_digits=16, decimal_places=2)
    max_industry_share: Decimal = Field(default=Decimal("0.3"), gt=0, le=1, description="of the portfolio")
    max_region_share: Decimal = Field(default=Decimal("0.5"), gt=0, le=1)
    max_grade_share: Decimal = Field(default=Decimal("0.5"), gt=0, le=1)
    grades: list[str] = Field(default_factory=list, description="empty: any grade")
    products: list[str] = Field(default_factory=list, description="empty: any product")
    min_transparency: int = Field(default=0, ge=0, le=100)
    active: bool = True


class AutoInvestRuleOut(BaseModel):
    id: uuid.UUID
    ref: str
    name: str
    active: bool
    currency: str
    amount_per_loan: str
    max_share_of_loan: str
    max_per_enterprise: str
    max_industry_share: str
    max_region_share: str
    max_grade_share: str
    grades: list[str]
    products: list[str]
    min_transparency: int
    created_at: datetime
    updated_at: datetime


class RuleActiveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    active: bool


def rule_out(row: Any) -> AutoInvestRuleOut:
    def share(bp: int) -> str:
        return str(Decimal(bp) / 10_000)

    return AutoInvestRuleOut(
        id=row.id,
        ref=row.ref,
        name=row.name,
        active=row.active,
        currency=row.currency,
        amount_per_loan=_major(row.amount_per_loan_minor, row.currency),
        max_share_of_loan=share(row.max_share_of_loan_bp),
        max_per_enterprise=_major(row.max_per_enterprise_minor, row.currency),
        max_industry_share=share(row.max_industry_bp),
        max_region_share=share(row.max_region_bp),
        max_grade_share=share(row.max_grade_bp),
        grades=row.grades,
        products=row.products,
        min_transparency=row.min_transparency,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


@router.post(
    "/autoinvest-rules",
    operation_id="create_autoinvest_rule",
    response_model=AutoInvestRuleOut,
    status_code=201,
)
def create_autoinvest_rule(session: DB, ctx: ApiCtx, body: AutoInvestRuleIn) -> AutoInvestRuleOut:
    """A standing rule: when a listing appears, commit up to the amount per loan within the limits;
    listings are shared fairly among every investor's qualifying rule."""
    try:
        amount = Money.of(body.amount_per_loan, body.currency).minor
        per_enterprise = Money.of(body.max_per_enterprise, body.currency).minor
    except MoneyError as exc:
        raise InvalidInput(str(exc), [FieldProblem(("currency",), str(exc))]) from None
    row = autoinvest.create_rule(
        session,
        ctx=ctx,
        data=autoinvest.RuleIn(
            name=body.name,
            currency=body.currency,
            amount_per_loan_minor=amount,
            max_share_of_loan_bp=_bp(body.max_share_of_loan),
            max_per_enterprise_minor=per_enterprise,
            max_industry_bp=_bp(body.max_industry_share),
            max_region_bp=_bp(body.max_region_share),
            max_grade_bp=_bp(body.max_grade_share),
            grades=frozenset(g.upper() for g in body.grades),
            products=frozenset(body.products),
            min_transparency=body.min_transparency,
            active=body.active,
        ),
    )
    return rule_out(row)


@router.get("/autoinvest-rules", operation_id="list_autoinvest_rules", response_model=list[AutoInvestRuleOut])
def list_autoinvest_rules(session: DB, ctx: ApiCtx) -> list[AutoInvestRuleOut]:
    return [rule_out(r) for r in autoinvest.list_rules(session, ctx=ctx)]


@router.put(
    "/autoinvest-rules/{rule_id}/active",
    operation_id="set_autoinvest_rule_active",
    response_model=AutoInvestRuleOut,
)
def set_autoinvest_rule_active(
    session: DB, ctx: ApiCtx, rule_id: uuid.UUID, body: RuleActiveIn
) -> AutoInvestRuleOut:
    """Pause or resume a rule."""
    return rule_out(autoinvest.set_active(session, ctx=ctx, rule_id=rule_id, active=body.active))
