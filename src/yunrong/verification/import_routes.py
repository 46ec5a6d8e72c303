"""JSON API of data imports into the credit file: the data sets and their templates, an
enterprise's file imports, and the data feed of machine sources."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, File, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from yunrong.deps import DB, ApiCtx, SettingsDep
from yunrong.verification import imports
from yunrong.verification.datasets import MAX_FILE_BYTES, MAX_ROWS, DatasetKind
from yunrong.verification.imports import ImportResult

router = APIRouter(prefix="/api/v1", tags=["credit data"])


class ColumnOut(BaseModel):
    name: str
    type: str
    required: bool
    description: str
    example: str
    min: str | None
    max: str | None
    allowed: list[str]
    max_length: int | None
    not_in_future: bool | None


class DatasetOut(BaseModel):
    kind: str
    title: str
    category: str
    period_column: str
    key_columns: list[str]
    currency: str
    columns: list[ColumnOut]
    checks: list[str]


class ImportOut(BaseModel):
    kind: str
    enterprise_id: uuid.UUID
    provenance: str
    rows: int = Field(description="rows taken")
    created: int = Field(description="new facts")
    superseded: int = Field(description="earlier facts of the same key and source replaced")
    unchanged: int = Field(description="rows identical to the current fact (nothing stored)")
    filename: str | None
    sha256: str | None
    format: str | None
    fact_ids: list[uuid.UUID]


class FeedIn(BaseModel):
    enterprise_id: uuid.UUID
    rows: Annotated[list[dict[str, Any]], Field(min_length=1, max_length=MAX_ROWS)]


def import_out(result: ImportResult) -> ImportOut:
    return ImportOut(**result.__dict__)


@router.get("/datasets", operation_id="list_datasets", response_model=list[DatasetOut])
def list_datasets() -> list[DatasetOut]:
    """Public: every data set that can be imported, with its columns, types and row checks."""
    return [DatasetOut.model_validate(d) for d in imports.list_datasets()]


@router.get(
    "/datasets/{kind}/template",
    operation_id="download_dataset_template",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
def download_dataset_template(kind: DatasetKind) -> Response:
    """Public: a CSV template (UTF-8 with BOM) of the data set: its header and an example row."""
    return Response(
        imports.template_csv(kind.value),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{kind.value}-template.csv"'},
    )


@router.post(
    "/enterprises/{organisation_id}/data/{kind}",
    operation_id="import_enterprise_data",
    response_model=ImportOut,
)
async def import_enterprise_data(
    organisation_id: uuid.UUID,
    kind: DatasetKind,
    session: DB,
    ctx: ApiCtx,
    settings: SettingsDep,
    file: Annotated[UploadFile | None, File(description="CSV (UTF-8) or XLSX, at most 10 MB")] = None,
) -> ImportOut:
    """The enterprise's administrator imports one data set into its credit file (self-declared).
    A file with any problem is refused whole (422), every problem listed by row and column."""
    content = await file.read(MAX_FILE_BYTES + 1) if file is not None else None
    result = await run_in_threadpool(  # the database work off the event loop
        imports.import_dataset,
        session,
        ctx=ctx,
        enterprise_id=organisation_id,
        kind=kind.value,
        filename=file.filename if file is not None else None,
        content=content,
        timezone=settings.timezone,
    )
    return import_out(result)


@router.post("/data-feeds/{kind}", operation_id="feed_enterprise_data", response_model=ImportOut)
def feed_enterprise_data(
    kind: DatasetKind, body: FeedIn, session: DB, ctx: ApiCtx, settings: SettingsDep
) -> ImportOut:
    """Machine sources (the operator, or an admitted agency working for the enterprise, by API
    key) send rows of one data set (provenance data_feed). Numbers with decimals are sent as
    text; the batch is taken whole or refused whole (422) like a file."""
    result = imports.feed(
        session,
        ctx=ctx,
        enterprise_id=body.enterprise_id,
        kind=kind.value,
        rows=body.rows,
        timezone=settings.timezone,
    )
    return import_out(result)
