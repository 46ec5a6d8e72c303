"""Health, readiness, metrics, request ids and structured logs; migrations match the models."""

from __future__ import annotations

import json
import logging

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from yunrong.models import Base
from yunrong.observability import JsonFormatter


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.text == "ready"


def test_metrics_count_requests_by_route_template(client: TestClient) -> None:
    client.get("/api/v1/users/0191f0a0-0000-7000-8000-000000000000")
    body = client.get("/metrics").text
    assert (
        'yunrong_http_requests_total{method="GET",route="/api/v1/users/{user_id}",status="401"} 1.0' in body
    )
    assert "yunrong_http_request_duration_seconds_bucket" in body


def test_request_id_is_echoed_or_made(client: TestClient) -> None:
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
    made = client.get("/healthz").headers["x-request-id"]
    assert len(made) == 32
    problem = client.get("/api/v1/me", headers={"X-Request-ID": "trace-me"}).json()
    assert problem["request_id"] == "trace-me"


def test_logs_are_json_lines_with_the_request_id(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="yunrong.http"):
        client.get("/healthz", headers={"X-Request-ID": "log-me"})
    record = next(r for r in caplog.records if r.name == "yunrong.http")
    line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] == "log-me"
    assert line["path"] == "/healthz"
    assert line["status"] == 200


def test_migrations_match_the_models(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []


def test_openapi_and_docs_are_served(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["paths"]["/api/v1/me"]["get"]["operationId"] == "read_me"
    assert spec["paths"]["/api/v1/auth/token"]["post"]["operationId"] == "create_token"
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert (
        "http"
        not in docs.text.replace("http://127.0.0.1", "")
        .split("<script>")[0]
        .lower()
        .replace("http-equiv", "")
        or "/static/vendor/swagger-ui" in docs.text
    )
    assert "cdn" not in docs.text.lower()
    assert client.get("/static/vendor/swagger-ui-5.35.0/swagger-ui-bundle.js").status_code == 200
