"""JSON API of the statements of step 7, each also as CSV (with a BOM) and PDF: the borrower's loan
statement (schedule, what was paid, what is due and overdue) and the investor's income statement
(income and principal returned by loan and by month, from the distributions, checked against the
ledger)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response

from yunrong.deps import DB, ApiCtx, SettingsDep
from yunrong.servicing import statements

router = APIRouter(prefix="/api/v1", tags=["servicing"])

FORMAT = Query("json", pattern="^(json|csv|pdf)$", description="json, csv (UTF-8 with a BOM) or pdf")


def as_format(
    fmt: str,
    payload: Callable[[], dict[str, Any]],
    csv: Callable[[], bytes],
    pdf: Callable[[], bytes],
    filename: str,
) -> Response:
    """The statement in the asked format (only the one asked for is rendered)."""
    if fmt == "csv":
        return Response(
            csv(),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="{filename}.csv"',
                "Cache-Control": "no-store",
            },
        )
    if fmt == "pdf":
        return Response(
            pdf(),
            media_type="application/pdf",
            headers={
                "Content-Disposition": f'attachment; filename="{filename}.pdf"',
                "Cache-Control": "no-store",
            },
        )
    return JSONResponse(payload(), headers={"Cache-Control": "no-store"})


@router.get("/loans/{loan_id}/statement", operation_id="read_loan_statement", response_model=None)
def read_loan_statement(
    session: DB, ctx: ApiCtx, settings: SettingsDep, loan_id: uuid.UUID, format: str = FORMAT
) -> Response:
    """The loan's statement for its borrower (its supervisors and lending bank too): the current
    schedule with what was paid on each instalment, what is due and overdue today (days past due,
    penalty accrued), the overpayment held, and every repayment with its allocation."""
    st = statements.read_loan_statement(session, ctx=ctx, settings=settings, loan_id=loan_id)
    return as_format(
        format,
        lambda: statements.loan_statement_dict(st),
        lambda: statements.loan_statement_csv(st),
        lambda: statements.loan_statement_pdf(st),
        f"loan-statement-{st.loan_ref}-{st.as_of.isoformat()}",
    )


@router.get("/me/income", operation_id="read_income_statement", response_model=None)
def read_income_statement(
    session: DB,
    ctx: ApiCtx,
    settings: SettingsDep,
    format: str = FORMAT,
    since: date | None = Query(None, description="First value date (default: the first distribution)"),
    until: date | None = Query(None, description="Last value date (default: today)"),
    currency: str = Query("CNY", pattern=r"^[A-Z]{3}$"),
) -> Response:
    """The signed-in investor's income statement: principal returned, interest and penalty income,
    the service fee deducted and the net received, by loan and by month, from the distributions to
    its notes; ``ledger_net_minor`` is what those distributions credited to its account."""
    st = statements.read_income_statement(
        session, ctx=ctx, settings=settings, since=since, until=until, currency=currency
    )
    return as_format(
        format,
        lambda: statements.income_statement_dict(st),
        lambda: statements.income_statement_csv(st),
        lambda: statements.income_statement_pdf(st),
        f"income-{st.investor_ref}-{st.since.isoformat()}-{st.until.isoformat()}",
    )
