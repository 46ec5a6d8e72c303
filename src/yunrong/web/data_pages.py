"""The enterprise's data-import page (/enterprise/data): pick a data set, download its template,
upload a CSV or XLSX file, and see either every problem by row and column (nothing imported) or
the facts now in the credit file. The page calls the same service as the JSON API."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from yunrong.deps import DB, SettingsDep
from yunrong.identity.model import Action, Actor, Portal
from yunrong.kit.errors import YunrongError
from yunrong.verification import credit_file, imports
from yunrong.verification.datasets import (
    DATASETS,
    MAX_FILE_BYTES,
    ColumnType,
    Dataset,
    DatasetKind,
    format_money,
)
from yunrong.web.forms import FormDep, text, upload
from yunrong.web.i18n import N_
from yunrong.web.labels import DATA_CATEGORY_LABELS, FACT_STATUS_LABELS
from yunrong.web.rendering import Csrf, guard, page_context, render

router = APIRouter(include_in_schema=False)

DATASET_LABELS: dict[str, str] = {
    DatasetKind.BALANCE_SHEET: N_("Balance sheet"),
    DatasetKind.INCOME_STATEMENT: N_("Income statement"),
    DatasetKind.CASH_FLOW: N_("Cash-flow statement"),
    DatasetKind.TAX_PAYMENTS: N_("Tax payments"),
    DatasetKind.SOCIAL_INSURANCE: N_("Social-insurance headcount"),
    DatasetKind.UTILITY_PAYMENTS: N_("Utility payments"),
    DatasetKind.BANK_FLOWS: N_("Bank-account flows"),
    DatasetKind.ECOMMERCE_SALES: N_("E-commerce sales"),
    DatasetKind.SUPPLY_CHAIN_LINKS: N_("Supply-chain links"),
    DatasetKind.COURT_RECORDS: N_("Court and enforcement records"),
    DatasetKind.PATENTS: N_("Patents"),
}

COLUMN_TYPE_LABELS: dict[str, str] = {
    ColumnType.DATE: N_("Date (YYYY-MM-DD)"),
    ColumnType.MONTH: N_("Month (YYYY-MM)"),
    ColumnType.INT: N_("Whole number"),
    ColumnType.MONEY: N_("Amount in CNY (e.g. 1234.56)"),
    ColumnType.DECIMAL: N_("Number"),
    ColumnType.STR: N_("Text"),
    ColumnType.ENUM: N_("One of"),
}

#: The parser's reasons that carry no value, extracted here so that the page shows them translated.
REASONS: tuple[str, ...] = (
    N_("required"),
    N_("unknown column"),
    N_("missing column"),
    N_("column given twice"),
    N_("more cells than columns"),
    N_("must not be in the future"),
    N_("must not be negative"),
    N_("more than 2 decimals"),
    N_("not an amount (write it like 1234.56)"),
    N_("not a whole number"),
    N_("not a number"),
    N_("not a date (write it like 2025-12-31)"),
    N_("no such date"),
    N_("not a month (write it like 2025-12)"),
    N_("a date without a time of day"),
    N_("the file is empty"),
    N_("the file has no data rows"),
    N_("not a readable XLSX file"),
    N_("old .xls files are not read; save it as .xlsx or CSV"),
    N_("the file is neither XLSX nor UTF-8 text; save it as “CSV UTF-8” or XLSX"),
    N_("choose a CSV or XLSX file"),
    N_("choose a data set"),
)


def _cell(ds: Dataset, name: str, value: dict[str, Any]) -> str:
    column = ds.column(name)
    raw = value.get(column.json_name)
    if raw is None:
        return "—"
    return format_money(int(raw)) if column.type is ColumnType.MONEY else str(raw)


def _page(
    request: Request,
    session: Session,
    actor: Actor,
    settings: Any,
    *,
    kind: str,
    status: int = 200,
    **extra: Any,
) -> Response:
    ds = DATASETS.get(DatasetKind(kind)) if kind in DATASETS else None
    facts: list[Any] = []
    if ds is not None and actor.organisation_id is not None:
        file = credit_file.read_credit_file(
            session, ctx=page_context(request, actor), enterprise_id=actor.organisation_id, settings=settings
        )
        facts = sorted(
            (f for f in file.facts if f.key.startswith(f"{ds.kind.value}:")),
            key=lambda f: (f.key, f.provenance),
            reverse=True,
        )
    return render(
        request,
        "data/import.html",
        status=status,
        datasets=list(DATASETS.values()),
        ds=ds,
        facts=facts,
        cell=_cell,
        dataset_labels=DATASET_LABELS,
        type_labels=COLUMN_TYPE_LABELS,
        category_labels=DATA_CATEGORY_LABELS,
        fact_labels=FACT_STATUS_LABELS,
        max_mb=MAX_FILE_BYTES // 2**20,
        can_import=actor.can(Action.IMPORT_OWN_DATA),
        **extra,
    )


@router.get("/enterprise/data")
def data_page(
    request: Request, session: DB, settings: SettingsDep, kind: str = "", done: str = "", rows: int = 0
) -> Response:
    got = guard(request, session, Portal.ENTERPRISE, Action.READ_CREDIT_FILE)
    if isinstance(got, Response):
        return got
    return _page(request, session, got, settings, kind=kind, done=done == "imported", imported_rows=rows)


@router.post("/enterprise/data", dependencies=[Csrf])
def data_import(request: Request, session: DB, settings: SettingsDep, form: FormDep) -> Response:
    got = guard(request, session, Portal.ENTERPRISE, Action.IMPORT_OWN_DATA)
    if isinstance(got, Response):
        return got
    kind = text(form, "kind")
    if kind not in DATASETS:
        return _page(
            request, session, got, settings, kind="", status=422, errors={"kind": N_("choose a data set")}
        )
    file = upload(form, "file")
    assert got.organisation_id is not None
    try:
        result = imports.import_dataset(
            session,
            ctx=page_context(request, got),
            enterprise_id=got.organisation_id,
            kind=kind,
            filename=file.filename if file is not None else None,
            content=file.file.read(MAX_FILE_BYTES + 1) if file is not None else None,
            timezone=settings.timezone,
        )
    except YunrongError as exc:
        session.rollback()
        problems = [
            {
                "row": p.loc[1] if len(p.loc) > 1 and p.loc[0] == "rows" else None,
                "column": p.loc[2] if len(p.loc) > 2 else None,
                "reason": p.msg,
            }
            for p in exc.problems
        ]
        return _page(
            request,
            session,
            got,
            settings,
            kind=kind,
            status=exc.status,
            problems=problems,
            refused=exc.detail,
            filename=file.filename if file is not None else "",
        )
    query = urlencode({"kind": kind, "done": "imported", "rows": result.rows})
    return RedirectResponse(f"/enterprise/data?{query}", status_code=303)
