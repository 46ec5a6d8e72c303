"""RFC 9457 problem+json for every error the API returns; bad input never becomes a 500."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from yunrong.kit.errors import YunrongError
from yunrong.observability import request_id_var

log = logging.getLogger("yunrong.errors")

PROBLEM_JSON = "application/problem+json"


def problem(
    request: Request,
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "request_id": request_id_var.get(),
    }
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def wants_html(request: Request) -> bool:
    if request.url.path.startswith("/api/"):
        return False
    return "text/html" in request.headers.get("accept", "")


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


async def on_yunrong_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, YunrongError)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    if wants_html(request):
        from yunrong.web.pages import render_error

        return render_error(request, exc.status, exc.title, exc.detail)
    return problem(
        request,
        status=exc.status,
        code=exc.code,
        title=exc.title,
        detail=exc.detail,
        errors=[p.as_dict() for p in exc.problems] or None,
        headers=headers,
    )


async def on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "value_error")}
        for e in exc.errors()
    ]
    fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in errors)
    if wants_html(request):
        from yunrong.web.pages import render_error

        return render_error(request, 422, "Invalid input", f"invalid input at: {fields}")
    return problem(
        request,
        status=422,
        code="invalid-input",
        title="Invalid input",
        detail=f"invalid input at: {fields}" if fields else "invalid input",
        errors=_clean(errors),
    )


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if wants_html(request):
        from yunrong.web.pages import render_error

        return render_error(request, exc.status_code, str(exc.detail), str(exc.detail))
    return problem(
        request,
        status=exc.status_code,
        code={404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error"),
        title=str(exc.detail),
        detail=str(exc.detail),
        headers=getattr(exc, "headers", None),
    )


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", exc_info=exc)
    if wants_html(request):
        from yunrong.web.pages import render_error

        return render_error(request, 500, "Internal error", "something went wrong on our side")
    return problem(
        request,
        status=500,
        code="internal-error",
        title="Internal error",
        detail="something went wrong on our side; the request id identifies it in our logs",
    )
