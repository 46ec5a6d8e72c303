"""HTML forms whose field names are the paths of a Pydantic input (``enterprise.credit_code``).

A form is read once (``FormDep``), turned into the nested dict the input model expects, and every
problem, from Pydantic or from a service (``FieldProblem.loc``), is keyed back to a field name so
that the page shows it beside that field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any

from fastapi import Depends, Request
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile

from yunrong.kit.errors import FieldProblem
from yunrong.web.i18n import N_


async def read_form(request: Request) -> FormData:
    """The submitted form (Starlette caches it, so the CSRF check and the page share one read)."""
    return await request.form()


FormDep = Annotated[FormData, Depends(read_form)]


def text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def texts(form: FormData, name: str) -> list[str]:
    return [v.strip() for v in form.getlist(name) if isinstance(v, str) and v.strip()]


def upload(form: FormData, name: str) -> UploadFile | None:
    value = form.get(name)
    return value if isinstance(value, UploadFile) and value.filename else None


def values(form: FormData, names: Iterable[str]) -> dict[str, str]:
    """The submitted text of each field (to fill the form in again); passwords are never echoed."""
    return {name: text(form, name) for name in names if "password" not in name}


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """{"a.b": 1, "a.c.d": 2} → {"a": {"b": 1, "c": {"d": 2}}}; empty strings are left out, so that
    optional fields stay unset and required ones are reported missing."""
    out: dict[str, Any] = {}
    for path, value in flat.items():
        if value == "" or value is None:
            continue
        node = out
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


#: Pydantic error types → a message a person understands (translated on the page).
_PYDANTIC_MESSAGES: dict[str, str] = {
    "missing": N_("Required."),
    "string_too_short": N_("Required."),
    "too_short": N_("Choose at least one."),
    "string_too_long": N_("Too long."),
    "too_long": N_("Too long."),
    "decimal_parsing": N_("Enter an amount, e.g. 1250000.00."),
    "decimal_type": N_("Enter an amount, e.g. 1250000.00."),
    "decimal_max_places": N_("Enter an amount, e.g. 1250000.00."),
    "decimal_max_digits": N_("Out of range."),
    "decimal_whole_digits": N_("Out of range."),
    "date_parsing": N_("Enter a date as YYYY-MM-DD."),
    "date_from_datetime_parsing": N_("Enter a date as YYYY-MM-DD."),
    "date_type": N_("Enter a date as YYYY-MM-DD."),
    "int_parsing": N_("Enter a whole number."),
    "int_from_float": N_("Enter a whole number."),
    "string_pattern_mismatch": N_("Not in the expected format."),
    "enum": N_("Choose one of the options."),
    "literal_error": N_("Choose one of the options."),
    "greater_than": N_("Out of range."),
    "greater_than_equal": N_("Out of range."),
    "less_than": N_("Out of range."),
    "less_than_equal": N_("Out of range."),
}


def field_for(
    loc: Sequence[str | int], fields: Iterable[str], rows: Mapping[str, Sequence[int]] | None = None
) -> str:
    """The form field a problem belongs to: the longest known prefix of its path, 'form' if none.

    ``rows`` maps a list's path ("agency.services") to the form row of each list item, because empty
    rows are left out of the list before it is validated.
    """
    known = set(fields)
    parts = [str(p) for p in loc]
    for list_path, positions in (rows or {}).items():
        depth = len(list_path.split("."))
        if parts[:depth] == list_path.split(".") and len(parts) > depth and parts[depth].isdigit():
            index = int(parts[depth])
            if index < len(positions):
                parts[depth] = str(positions[index])
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in known:
            return candidate
    return "form"


def problems_of(error: ValidationError) -> list[FieldProblem]:
    return [
        FieldProblem(tuple(e["loc"]), _PYDANTIC_MESSAGES.get(e["type"], N_("Invalid value.")), type=e["type"])
        for e in error.errors()
    ]


def field_errors(
    problems: Iterable[FieldProblem],
    fields: Iterable[str],
    *,
    prefix: Sequence[str] = (),
    rows: Mapping[str, Sequence[int]] | None = None,
) -> dict[str, str]:
    """Each problem keyed by its form field (the first problem of a field wins)."""
    known = list(fields)
    errors: dict[str, str] = {}
    for problem in problems:
        errors.setdefault(field_for((*prefix, *problem.loc), known, rows), problem.msg)
    return errors
