"""JSON API of custody: deposits, withdrawals, balances, statements, the bank's callbacks."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from yunrong.custody import adjustments, monitor
from yunrong.custody import service as custody
from yunrong.custody.statements import statement_csv, statement_pdf
from yunrong.custody.tables import Instruction
from yunrong.db import unit_of_work
from yunrong.deps import DB, ApiCtx, SettingsDep, anonymous_context
from yunrong.identity.model import Action
from yunrong.identity.service import require
from yunrong.kit.errors import FieldProblem, InvalidInput
from yunrong.kit.money import Money, MoneyError
from yunrong.ledger import idempotency
from yunrong.ledger import service as ledger
from yunrong.ledger.verify import verify

router = APIRouter(prefix="/api/v1", tags=["custody"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Unique per request; a retry with the same key returns the first result",
    ),
]


class MoneyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: Decimal = Field(gt=0, max_digits=16, decimal_places=2, description="Major units, e.g. 5000.00")
    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")
    bank_account_id: uuid.UUID = Field(description="Your own verified bank account")

    def minor(self) -> int:
        try:
            return Money.of(self.amount, self.currency).minor
        except MoneyError as exc:
            raise InvalidInput(str(exc), [FieldProblem(("amount",), str(exc))]) from None


class InstructionOut(BaseModel):
    id: uuid.UUID
    ref: str
    kind: str
    status: str
    amount: str
    amount_minor: int
    currency: str
    bank_reference: str | None
    failure_reason: str | None
    created_at: datetime
    resolved_at: datetime | None


def instruction_out(row: Instruction) -> InstructionOut:
    return InstructionOut(
        id=row.id,
        ref=row.ref,
        kind=row.kind,
        status=row.status,
        amount=str(Money(row.amount, row.currency).decimal),
        amount_minor=row.amount,
        currency=row.currency,
        bank_reference=row.bank_reference,
        failure_reason=row.failure_reason,
        created_at=row.created_at,
        resolved_at=row.resolved_at,
    )


class AccountOut(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    purpose: str
    currency: str
    balance_minor: int
    available_minor: int
    pending_out_minor: int
    pending_in_minor: int
    balance: str
    available: str


def _money_command(
    request: Request, session: DB, ctx: ApiCtx, key: str | None, body: MoneyIn, operation: str
) -> JSONResponse:
    amount = body.minor()
    command = custody.create_deposit if operation == "create_deposit" else custody.create_withdrawal

    def run() -> tuple[int, dict[str, Any]]:
        instruction = command(
            session, ctx=ctx, amount=amount, currency=body.currency, bank_account_id=body.bank_account_id
        )
        return 202, instruction_out(instruction).model_dump(mode="json")

    status, payload, replayed = idempotency.run_once(
        session, ctx=ctx, key=key, operation=operation, request=body.model_dump(mode="json"), command=run
    )
    return JSONResponse(
        payload, status_code=status, headers={"Idempotent-Replayed": "true" if replayed else "false"}
    )


@router.post("/deposits", operation_id="create_deposit", response_model=InstructionOut, status_code=202)
def create_deposit(
    request: Request, session: DB, ctx: ApiCtx, body: MoneyIn, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """An investor pays in from their own verified account. The money shows as pending, and becomes
    available when the custodian bank confirms it arrived."""
    return _money_command(request, session, ctx, idempotency_key, body, "create_deposit")


@router.post("/withdrawals", operation_id="create_withdrawal", response_model=InstructionOut, status_code=202)
def create_withdrawal(
    request: Request, session: DB, ctx: ApiCtx, body: MoneyIn, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """An investor takes money out to their own verified account: held at once, paid when the bank
    confirms, released if the bank fails it."""
    return _money_command(request, session, ctx, idempotency_key, body, "create_withdrawal")


@router.get(
    "/custodian-instructions", operation_id="list_my_instructions", response_model=list[InstructionOut]
)
def list_my_instructions(session: DB, ctx: ApiCtx) -> list[InstructionOut]:
    return [instruction_out(i) for i in custody.my_instructions(session, ctx=ctx)]


@router.get(
    "/custodian-instructions/{instruction_id}",
    operation_id="read_custodian_instruction",
    response_model=InstructionOut,
)
def read_custodian_instruction(session: DB, ctx: ApiCtx, instruction_id: uuid.UUID) -> InstructionOut:
    return instruction_out(custody.visible_instruction(session, ctx=ctx, instruction_id=instruction_id))


@router.get("/me/accounts", operation_id="list_my_accounts", response_model=list[AccountOut])
def list_my_accounts(session: DB, ctx: ApiCtx) -> list[AccountOut]:
    """Your sub-accounts at the custodian: balance, what is available, what is pending."""
    out = []
    for account, bal in custody.my_accounts(session, ctx=ctx):
        out.append(
            AccountOut(
                id=account.id,
                code=account.code,
                name=account.name,
                purpose=account.purpose,
                currency=account.currency,
                balance_minor=bal.posted,
                available_minor=bal.available,
                pending_out_minor=bal.pending_out,
                pending_in_minor=bal.pending_in,
                balance=str(Money(bal.posted, account.currency).decimal),
                available=str(Money(bal.available, account.currency).decimal),
            )
        )
    return out


@router.get("/ledger-accounts/{account_id}/statement", operation_id="read_account_statement")
def read_account_statement(
    session: DB,
    ctx: ApiCtx,
    account_id: uuid.UUID,
    format: str = Query("json", pattern="^(json|csv|pdf)$"),
    since: datetime | None = None,
    until: datetime | None = None,
) -> Response:
    """A statement with a running balance, as JSON, CSV or PDF."""
    account = custody.visible_account(session, ctx=ctx, account_id=account_id)
    opening, lines = ledger.statement(session, account_id=account.id, since=since, until=until)
    if format == "csv":
        return Response(
            statement_csv(account, opening, lines),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="statement-{account.id}.csv"'},
        )
    if format == "pdf":
        return Response(
            statement_pdf(account, opening, lines, generated_at=ctx.now()),
            media_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="statement-{account.id}.pdf"'},
        )
    return JSONResponse(
        {
            "account": {
                "id": str(account.id),
                "code": account.code,
                "name": account.name,
                "currency": account.currency,
            },
            "opening_minor": opening,
            "lines": [
                {
                    "at": line.at.isoformat(),
                    "value_date": line.value_date.isoformat(),
                    "entry": line.entry_ref,
                    "kind": line.kind,
                    "description": line.description,
                    "debit_minor": line.debit,
                    "credit_minor": line.credit,
                    "running_minor": line.running,
                }
                for line in lines
            ],
            "closing_minor": lines[-1].running if lines else opening,
        }
    )


@router.post("/custodian/callbacks", operation_id="receive_custodian_callback", tags=["custodian bank"])
async def receive_custodian_callback(
    request: Request,
    x_bank_timestamp: Annotated[str | None, Header()] = None,
    x_bank_signature: Annotated[str | None, Header()] = None,
) -> dict[str, str | None]:
    """The custodian bank's signed word on an instruction (HMAC-SHA256 over timestamp, '.', raw body).
    Forged or stale callbacks are refused; repeats change nothing."""
    body = await request.body()
    ctx = anonymous_context(request)

    def apply() -> custody.CallbackResult:
        # Off the event loop: waiting for a lock here must not stop the loop, which the holder of
        # that lock may need to finish its own request (on SQLite: any writer).
        with unit_of_work(request.app.state.sessionmaker) as session:
            return custody.apply_callback(
                session,
                ctx=ctx,
                settings=request.app.state.settings,
                body=body,
                timestamp=x_bank_timestamp,
                signature=x_bank_signature,
            )

    result = await run_in_threadpool(apply)
    return {
        "outcome": result.outcome.value,
        "instruction_ref": result.instruction_ref,
        "status": result.status,
    }


class VerificationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    evidence: str = Field(min_length=1, max_length=500, description="How the account was confirmed")


@router.post("/bank-accounts/{bank_account_id}/verification", operation_id="verify_bank_account")
def verify_bank_account(
    session: DB, ctx: ApiCtx, bank_account_id: uuid.UUID, body: VerificationIn
) -> dict[str, Any]:
    """An admitted authentication agency confirms the account belongs to its holder."""
    account = custody.verify_bank_account(
        session, ctx=ctx, bank_account_id=bank_account_id, evidence=body.evidence
    )
    return {
        "id": str(account.id),
        "verified": account.verified_at is not None,
        "verified_at": account.verified_at.isoformat() if account.verified_at else None,
    }


@router.get("/ledger/verification", operation_id="verify_ledger", tags=["ledger"])
def verify_ledger(session: DB, ctx: ApiCtx) -> dict[str, Any]:
    """Every ledger invariant, checked now."""
    require(ctx, Action.VERIFY_LEDGER)
    results = verify(session)
    return {
        "ok": all(v is None for _, v in results),
        "checks": [
            {"check": name, "ok": v is None, "violation": str(v) if v else None} for name, v in results
        ],
    }


@router.get("/fund-flows", operation_id="read_fund_flows", tags=["supervision"])
def read_fund_flows(
    session: DB, ctx: ApiCtx, settings: SettingsDep, days: int = Query(14, ge=1, le=90)
) -> dict[str, Any]:
    """Regulators and the operator: escrow totals by account class, daily in- and outflows of the
    escrow, pending bank instructions and open alerts."""
    return monitor.fund_flows(session, ctx=ctx, timezone=settings.timezone, days=days)


class AdjustmentLegIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account_code: str = Field(min_length=1, max_length=120)
    side: str = Field(pattern="^[DC]$")
    amount_minor: int = Field(gt=0, le=2**63 - 1)


class AdjustmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    legs: list[AdjustmentLegIn] = Field(min_length=2, max_length=20)
    reason: str = Field(min_length=1, max_length=1000)


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approve: bool
    reason: str = Field(min_length=1, max_length=1000)


def adjustment_out(row: Any) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "ref": row.ref,
        "legs": row.legs,
        "reason": row.reason,
        "status": row.status,
        "proposed_by": row.proposed_label,
        "decided_by": row.decided_label,
        "decision_reason": row.decision_reason,
        "entry_id": str(row.entry_id) if row.entry_id else None,
        "created_at": row.created_at.isoformat(),
    }


@router.post("/ledger/adjustments", operation_id="propose_adjustment", status_code=201, tags=["ledger"])
def propose_adjustment(session: DB, ctx: ApiCtx, body: AdjustmentIn) -> dict[str, Any]:
    """An operator proposes a correcting entry; nothing moves until a second operator approves."""
    row = adjustments.propose(
        session, ctx=ctx, legs=[leg.model_dump() for leg in body.legs], reason=body.reason
    )
    return adjustment_out(row)


@router.get("/ledger/adjustments", operation_id="list_adjustments", tags=["ledger"])
def list_adjustments(session: DB, ctx: ApiCtx) -> list[dict[str, Any]]:
    return [adjustment_out(row) for row in adjustments.list_adjustments(session, ctx=ctx)]


@router.post(
    "/ledger/adjustments/{adjustment_id}/decision", operation_id="decide_adjustment", tags=["ledger"]
)
def decide_adjustment(session: DB, ctx: ApiCtx, adjustment_id: uuid.UUID, body: DecisionIn) -> dict[str, Any]:
    row = adjustments.decide(
        session, ctx=ctx, adjustment_id=adjustment_id, approve=body.approve, reason=body.reason
    )
    return adjustment_out(row)
