"""The ASGI application: JSON API under /api/v1, web portals, health and metrics."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import Engine, text
from starlette.exceptions import HTTPException as StarletteHTTPException

from yunrong import __version__, problems
from yunrong.config import Settings, get_settings
from yunrong.custody.recon_routes import router as recon_router
from yunrong.custody.routes import router as custody_router
from yunrong.db import make_engine, make_sessionmaker
from yunrong.decisions.routes import router as decisions_router
from yunrong.demands.routes import router as demands_router
from yunrong.identity.routes import router as identity_router
from yunrong.investing.commit_asgi import CommitFastPath
from yunrong.investing.offer_routes import router as offers_router
from yunrong.investing.portfolio_routes import router as portfolio_router
from yunrong.investing.routes import commit_router
from yunrong.investing.routes import router as investing_router
from yunrong.kit.clock import Clock, SystemClock
from yunrong.kit.errors import YunrongError
from yunrong.matching.routes import router as matching_router
from yunrong.messaging.routes import router as outbox_router
from yunrong.observability import Metrics, RequestContext
from yunrong.parties.routes import router as parties_router
from yunrong.parties.storage import LocalStorage
from yunrong.servicing.default_routes import router as defaults_router
from yunrong.servicing.repayment_routes import router as repayment_router
from yunrong.servicing.routes import router as servicing_router
from yunrong.servicing.statement_routes import router as statement_router
from yunrong.supervision.routes import router as audit_router
from yunrong.verification.attestation_routes import router as attestations_router
from yunrong.verification.import_routes import router as imports_router
from yunrong.verification.order_routes import router as orders_router
from yunrong.verification.webhook_routes import router as webhooks_router
from yunrong.web import pages

log = logging.getLogger("yunrong.http")

STATIC_DIR = Path(__file__).parent / "web" / "static"
SWAGGER = "/static/vendor/swagger-ui-5.35.0"

DESCRIPTION = """
Yunrong (云融) connects small and micro enterprises with investors under government supervision.

Authenticate with `POST /api/v1/auth/token` (OAuth2 password grant) and send
`Authorization: Bearer <token>`; machine clients send an API key (`X-API-Key`). Errors are
RFC 9457 `application/problem+json`.
"""


def create_app(
    settings: Settings | None = None, *, clock: Clock | None = None, engine: Engine | None = None
) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="Yunrong API",
        version=__version__,
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url=None,  # served below from vendored assets: no CDN at run time
        redoc_url=None,
    )
    engine = engine or make_engine(settings.database_url)
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine)
    app.state.clock = clock or SystemClock()
    app.state.metrics = metrics = Metrics()
    app.state.storage = LocalStorage(settings.upload_dir)

    app.add_middleware(CommitFastPath)  # inside RequestContext: see yunrong.investing.commit_asgi
    app.add_middleware(RequestContext, metrics=metrics)

    app.add_exception_handler(YunrongError, problems.on_yunrong_error)
    app.add_exception_handler(RequestValidationError, problems.on_validation_error)
    app.add_exception_handler(StarletteHTTPException, problems.on_http_error)
    app.add_exception_handler(Exception, problems.on_unexpected)

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Yunrong API",
            swagger_js_url=f"{SWAGGER}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER}/swagger-ui.css",
            swagger_favicon_url=f"{SWAGGER}/favicon-32x32.png",
        )

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> Response:
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
                conn.execute(text("SELECT version_num FROM alembic_version"))
        except Exception as exc:
            return PlainTextResponse(f"not ready: {type(exc).__name__}", status_code=503)
        return PlainTextResponse("ready")

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.include_router(commit_router)  # first: see its comment
    app.include_router(identity_router)
    app.include_router(audit_router)
    app.include_router(outbox_router)
    app.include_router(parties_router)
    app.include_router(custody_router)
    app.include_router(demands_router)
    app.include_router(decisions_router)
    app.include_router(matching_router)
    app.include_router(investing_router)
    app.include_router(portfolio_router)
    app.include_router(offers_router)
    app.include_router(servicing_router)
    app.include_router(repayment_router)
    app.include_router(defaults_router)
    app.include_router(statement_router)
    app.include_router(orders_router)
    app.include_router(webhooks_router)
    app.include_router(attestations_router)
    app.include_router(imports_router)
    app.include_router(recon_router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
