"""JSON API of reconciliation: the custodian's daily statement, importing a statement, the runs."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from yunrong.custody import reconciliation as recon
from yunrong.custody.camt053 import MAX_STATEMENT_BYTES, Format, to_camt053, to_csv
from yunrong.custody.recon_tables import ReconciliationItem, ReconciliationRun
from yunrong.deps import DB, ApiCtx, SettingsDep
from yunrong.identity.model import Action
from yunrong.identity.service import require
from yunrong.kit.errors import FieldProblem, InvalidInput

router = APIRouter(prefix="/api/v1", tags=["reconciliation"])


class RunOut(BaseModel):
    id: uuid.UUID
    ref: str
    statement_id: str
    statement_date: date
    currency: str
    source: str
    format: str
    file_sha256: str
    opening_balance_minor: int | None
    closing_balance_minor: int | None
    bank_lines: int
    ledger_lines: int
    matched: int
    ledger_only: int
    bank_only: int
    amount_mismatch: int
    duplicates: int
    breaks: int
    clean: bool
    alert_id: uuid.UUID | None
    created_by: str
    created_at: datetime


class ItemOut(BaseModel):
    kind: str
    note: str | None
    instruction_ref: str | None
    bank_reference: str | None
    entry_ref: str | None
    direction: str
    currency: str
    bank_amount_minor: int | None
    ledger_amount_minor: int | None
    booked_on: date | None
    value_date: date | None
    ledger_value_date: date | None
    age_days: int
    cleared_by_run_id: uuid.UUID | None


class RunDetailOut(RunOut):
    items: list[ItemOut]


def run_out(run: ReconciliationRun) -> RunOut:
    return RunOut(
        id=run.id,
        ref=run.ref,
        statement_id=run.statement_id,
        statement_date=run.statement_date,
        currency=run.currency,
        source=run.source,
        format=run.format,
        file_sha256=run.file_sha256,
        opening_balance_minor=run.opening_balance,
        closing_balance_minor=run.closing_balance,
        bank_lines=run.bank_lines,
        ledger_lines=run.ledger_lines,
        matched=run.matched,
        ledger_only=run.ledger_only,
        bank_only=run.bank_only,
        amount_mismatch=run.amount_mismatch,
        duplicates=run.duplicates,
        breaks=run.breaks,
        clean=run.breaks == 0,
        alert_id=run.alert_id,
        created_by=run.created_by,
        created_at=run.created_at,
    )


def item_out(item: ReconciliationItem) -> ItemOut:
    return ItemOut(
        kind=item.kind,
        note=item.note,
        instruction_ref=item.instruction_ref,
        bank_reference=item.bank_reference,
        entry_ref=item.entry_ref,
        direction=item.direction,
        currency=item.currency,
        bank_amount_minor=item.bank_amount,
        ledger_amount_minor=item.ledger_amount,
        booked_on=item.booked_on,
        value_date=item.value_date,
        ledger_value_date=item.ledger_value_date,
        age_days=item.age_days,
        cleared_by_run_id=item.cleared_by_run_id,
    )


@router.get(
    "/custodian/statements/{statement_date}",
    operation_id="read_custodian_statement",
    responses={200: {"content": {"application/xml": {}, "text/csv": {}}}},
)
def read_custodian_statement(
    session: DB,
    ctx: ApiCtx,
    settings: SettingsDep,
    statement_date: date,
    format: Annotated[str, Query(pattern="^(camt053|csv)$")] = "camt053",
    currency: Annotated[str, Query(pattern="^[A-Z]{3}$")] = "CNY",
) -> Response:
    """The custodian bank's statement of the escrow account for a business date, as ISO 20022
    camt.053.001.08 XML or CSV (the simulated bank's own book, not the ledger)."""
    statement = recon.simulated_statement(
        session, ctx=ctx, settings=settings, on=statement_date, currency=currency
    )
    name = f"statement-{statement.statement_id}"
    if format == "csv":
        return Response(
            to_csv(statement),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    return Response(
        to_camt053(statement),
        media_type="application/xml",
        headers={"Content-Disposition": f'attachment; filename="{name}.xml"'},
    )


@router.post(
    "/reconciliations", operation_id="import_custodian_statement", response_model=RunOut, status_code=201
)
async def import_custodian_statement(
    session: DB,
    ctx: ApiCtx,
    file: Annotated[UploadFile, File(description="camt.053.001.08 XML or CSV, at most 20 MB")],
    format: Annotated[str | None, Form(pattern="^(camt053|csv)$")] = None,
    statement_date: Annotated[date | None, Form(description="For a CSV: the statement's date")] = None,
) -> RunOut:
    """Import a custodian bank statement and match it to the ledger: matched, ledger-only, bank-only,
    amount mismatch, with ageing. Breaks raise an alert to the operator and the regulator."""
    require(ctx, Action.RECONCILE)
    content = await file.read(MAX_STATEMENT_BYTES + 1)
    if len(content) > MAX_STATEMENT_BYTES:
        raise InvalidInput("the file is too large", [FieldProblem(("file",), "at most 20 MB")])
    chosen: Format | None = "csv" if format == "csv" else "camt053" if format == "camt053" else None
    run = await run_in_threadpool(  # the database work off the event loop
        recon.import_statement,
        session,
        ctx=ctx,
        content=content,
        format=chosen,
        statement_date=statement_date,
    )
    return run_out(run)


@router.get("/reconciliations", operation_id="list_reconciliations", response_model=list[RunOut])
def list_reconciliations(
    session: DB, ctx: ApiCtx, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[RunOut]:
    """Reconciliation runs, newest statement first."""
    return [run_out(r) for r in recon.list_runs(session, ctx=ctx, limit=limit)]


@router.get("/reconciliations/{run_id}", operation_id="read_reconciliation", response_model=RunDetailOut)
def read_reconciliation(session: DB, ctx: ApiCtx, run_id: uuid.UUID) -> RunDetailOut:
    """One run with every item (matched and breaks), each with its age in days."""
    run, items = recon.read_run(session, ctx=ctx, run_id=run_id)
    return RunDetailOut(**run_out(run).model_dump(), items=[item_out(i) for i in items])
