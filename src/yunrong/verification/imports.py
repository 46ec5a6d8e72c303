"""Data into the credit file: an enterprise imports its own data sets from CSV or XLSX files
(self-declared), and machine sources (the operator's, or an admitted agency working for the
enterprise) send the same data sets as JSON rows (data feed).

A file or a batch is taken whole or not at all: every problem is listed, by row and column, and
nothing is stored while any remains. Each row becomes one fact keyed ``kind:…`` (the data set's
key columns, see :mod:`yunrong.verification.datasets`), observed at the end of its period and
recorded now. A row supersedes the current fact of the same key from the same source (the same
provenance and organisation); sending the same row again changes nothing. CSV and XLSX files are
not kept as documents (documents are PDF and images): each fact's value records the file's name
and SHA-256 under ``_source``.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from yunrong.identity.model import Action, Context, OrgType
from yunrong.identity.service import require
from yunrong.identity.tables import Organisation
from yunrong.kit.clock import DEFAULT_TIMEZONE, business_date
from yunrong.kit.errors import FieldProblem, InvalidInput, NotFound
from yunrong.kit.ids import uuid7
from yunrong.parties import service as parties
from yunrong.supervision import service as audit
from yunrong.verification.credit_file import AGENCY_READS_IN
from yunrong.verification.datasets import (
    DATASETS,
    MAX_FILE_BYTES,
    Dataset,
    DatasetKind,
    Parsed,
    Problem,
    observed_at,
    parse_file,
    parse_json_rows,
    sniff_format,
)
from yunrong.verification.datasets import template_csv as _template_csv
from yunrong.verification.tables import CreditFact, ServiceOrder

#: At most this many problems are listed; a last entry says how many more there were.
MAX_PROBLEMS = 200
_CHUNK = 500


class ImportRefused(InvalidInput):
    code = "import-refused"
    title = "The data was refused; nothing was imported"


@dataclass(frozen=True)
class ImportResult:
    kind: str
    enterprise_id: uuid.UUID
    provenance: str
    rows: int
    created: int
    superseded: int
    unchanged: int
    filename: str | None = None
    sha256: str | None = None
    format: str | None = None
    fact_ids: list[uuid.UUID] = field(default_factory=list)


def problems_of(found: Sequence[Problem], limit: int = MAX_PROBLEMS) -> list[FieldProblem]:
    """Problems as field problems, ``("rows", n, column)`` (``("file",)`` for the whole file),
    at most ``limit`` of them and then one "…and N more"."""
    out = [
        FieldProblem(("file",), p.reason)
        if p.row is None
        else FieldProblem(("rows", p.row, p.column or "row"), p.reason)
        for p in found[:limit]
    ]
    if len(found) > limit:
        out.append(FieldProblem(("rows",), f"…and {len(found) - limit} more problems"))
    return out


def _refuse(parsed: Parsed) -> None:
    if parsed.problems:
        count = len(parsed.problems)
        noun = "problem" if count == 1 else "problems"
        raise ImportRefused(f"{count} {noun} found; nothing was imported", problems_of(parsed.problems))


def _dataset(kind: str) -> Dataset:
    try:
        return DATASETS[DatasetKind(kind)]
    except ValueError:
        raise NotFound("no such data set") from None


def _enterprise(session: Session, enterprise_id: uuid.UUID) -> Organisation:
    org = session.get(Organisation, enterprise_id)
    if org is None or org.type != OrgType.ENTERPRISE.value:
        raise NotFound("no such enterprise")
    return org


def _store(
    session: Session,
    *,
    ctx: Context,
    ds: Dataset,
    org: Organisation,
    parsed: Parsed,
    provenance: str,
    source_label: str,
    source_org_id: uuid.UUID | None,
    source: dict[str, Any],
    timezone: str,
) -> tuple[int, int, int, list[uuid.UUID]]:
    """One fact per row, superseding the current fact of the same key and source."""
    now = ctx.now()
    keys = [row.key for row in parsed.rows]
    current: dict[str, list[CreditFact]] = {}
    for start in range(0, len(keys), _CHUNK):
        query = select(CreditFact).where(
            CreditFact.enterprise_id == org.id,
            CreditFact.category == ds.category.value,
            CreditFact.key.in_(keys[start : start + _CHUNK]),
            CreditFact.provenance == provenance,
            CreditFact.superseded_at.is_(None),
            CreditFact.source_org_id.is_(None)
            if source_org_id is None
            else CreditFact.source_org_id == source_org_id,
        )
        for fact in session.scalars(query):
            current.setdefault(fact.key, []).append(fact)
    created = superseded = unchanged = 0
    ids: list[uuid.UUID] = []
    for row in parsed.rows:
        data = row.as_json(ds)
        previous = current.get(row.key, [])
        same = next((f for f in previous if _data(f.value) == data), None)
        if same is not None:
            unchanged += 1
            ids.append(same.id)
            continue
        for fact in previous:
            fact.superseded_at = now
            superseded += 1
        fact = CreditFact(
            id=uuid7(),
            enterprise_id=org.id,
            category=ds.category.value,
            key=row.key,
            value={**data, "_source": {**source, "row": row.number}},
            provenance=provenance,
            source_label=source_label,
            source_org_id=source_org_id,
            attestation_id=None,
            observed_at=observed_at(row.period_end, now=now, timezone=timezone),
            recorded_at=now,
            valid_until=None,
            superseded_at=None,
        )
        session.add(fact)
        created += 1
        ids.append(fact.id)
    session.flush()
    return created, superseded, unchanged, ids


def _data(value: Any) -> Any:
    """A stored row without where it came from (the same data from another file is no change)."""
    return {k: v for k, v in value.items() if k != "_source"} if isinstance(value, dict) else value


def import_dataset(
    session: Session,
    *,
    ctx: Context,
    enterprise_id: uuid.UUID,
    kind: str,
    filename: str | None,
    content: bytes | None,
    timezone: str = DEFAULT_TIMEZONE,
) -> ImportResult:
    """The enterprise's administrator imports one data set from a CSV or XLSX file into its own
    credit file (self-declared). Everyone else: 403 for the wrong role, 404 for another
    enterprise. A file with any problem is refused whole, listing every problem."""
    actor = ctx.actor
    if not actor.is_system:
        require(ctx, Action.IMPORT_OWN_DATA)
        if actor.organisation_id != enterprise_id:
            raise NotFound("no such enterprise")
    org = _enterprise(session, enterprise_id)
    ds = _dataset(kind)
    if not content:
        raise ImportRefused("no file was sent", [FieldProblem(("file",), "choose a CSV or XLSX file")])
    if len(content) > MAX_FILE_BYTES:
        raise ImportRefused(
            "the file is too large", [FieldProblem(("file",), f"at most {MAX_FILE_BYTES // 2**20} MB")]
        )
    name = (filename or "upload").replace("\\", "/").rsplit("/", 1)[-1][:200] or "upload"
    parsed = parse_file(ds.kind, content, today=business_date(ctx.now(), timezone))
    _refuse(parsed)
    digest = hashlib.sha256(content).hexdigest()
    file_format = sniff_format(content)
    created, superseded, unchanged, ids = _store(
        session,
        ctx=ctx,
        ds=ds,
        org=org,
        parsed=parsed,
        provenance="self_declared",
        source_label=org.name,
        source_org_id=org.id,
        source={"channel": "file", "filename": name, "sha256": digest, "format": file_format},
        timezone=timezone,
    )
    result = ImportResult(
        kind=ds.kind.value,
        enterprise_id=org.id,
        provenance="self_declared",
        rows=len(parsed.rows),
        created=created,
        superseded=superseded,
        unchanged=unchanged,
        filename=name,
        sha256=digest,
        format=file_format,
        fact_ids=ids,
    )
    _audit(session, ctx=ctx, result=result)
    return result


def _feeder(session: Session, ctx: Context, enterprise_id: uuid.UUID) -> tuple[str, uuid.UUID | None]:
    """Who feeds data about the enterprise: (label, organisation). The operator feeds any
    enterprise; an agency only one it works for (an order in progress or done); admitted only."""
    actor = ctx.actor
    if actor.is_system:
        return actor.name, None
    require(ctx, Action.FEED_DATA)
    parties.require_admitted(session, ctx=ctx)
    if actor.org_type is OrgType.AGENCY:
        works_for = session.scalar(
            select(ServiceOrder.id)
            .where(
                ServiceOrder.agency_id == actor.organisation_id,
                ServiceOrder.enterprise_id == enterprise_id,
                ServiceOrder.status.in_(AGENCY_READS_IN),
            )
            .limit(1)
        )
        if works_for is None:
            raise NotFound("no such enterprise")
    elif not actor.sees_all_organisations:
        raise NotFound("no such enterprise")
    org = session.get(Organisation, actor.organisation_id) if actor.organisation_id else None
    return (org.name if org else actor.email), actor.organisation_id


def feed(
    session: Session,
    *,
    ctx: Context,
    enterprise_id: uuid.UUID,
    kind: str,
    rows: Sequence[object],
    timezone: str = DEFAULT_TIMEZONE,
) -> ImportResult:
    """A machine source sends rows of one data set about an enterprise (provenance data_feed),
    taken whole or refused whole like a file."""
    label, source_org_id = _feeder(session, ctx, enterprise_id)
    org = _enterprise(session, enterprise_id)
    ds = _dataset(kind)
    parsed = parse_json_rows(ds.kind, rows, today=business_date(ctx.now(), timezone))
    _refuse(parsed)
    created, superseded, unchanged, ids = _store(
        session,
        ctx=ctx,
        ds=ds,
        org=org,
        parsed=parsed,
        provenance="data_feed",
        source_label=label,
        source_org_id=source_org_id,
        source={"channel": "data_feed", "via": ctx.actor.via},
        timezone=timezone,
    )
    result = ImportResult(
        kind=ds.kind.value,
        enterprise_id=org.id,
        provenance="data_feed",
        rows=len(parsed.rows),
        created=created,
        superseded=superseded,
        unchanged=unchanged,
        fact_ids=ids,
    )
    _audit(session, ctx=ctx, result=result)
    return result


def _audit(session: Session, *, ctx: Context, result: ImportResult) -> None:
    audit.record(
        session,
        ctx=ctx,
        action="credit_data.import" if result.provenance == "self_declared" else "credit_data.feed",
        object_type="organisation",
        object_id=result.enterprise_id,
        detail={
            "kind": result.kind,
            "provenance": result.provenance,
            "rows": result.rows,
            "created": result.created,
            "superseded": result.superseded,
            "unchanged": result.unchanged,
            "filename": result.filename,
            "sha256": result.sha256,
        },
    )


def template_csv(kind: str) -> bytes:
    """The data set's CSV template: its header and one example row."""
    return _template_csv(_dataset(kind).kind)


def list_datasets() -> list[dict[str, Any]]:
    return [ds.as_dict() for ds in DATASETS.values()]
