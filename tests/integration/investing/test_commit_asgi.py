"""``POST /commitments`` answered by the fast path (yunrong.investing.commit_asgi) answers as the
FastAPI route does; whatever is not the plain case is passed on to the route, body and all."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.integration.investing.conftest import INVESTOR, Drain, deposit, list_demand
from yunrong.config import Settings
from yunrong.investing import commit_asgi
from yunrong.kit.clock import FrozenClock

URL = "/api/v1/commitments"


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Per request to the path: True if the fast path answered it, False if it passed it on."""
    seen: list[bool] = []
    plain_call = commit_asgi.CommitFastPath._plain_call

    def spy(self: commit_asgi.CommitFastPath, scope: Any, body: bytes) -> Any:
        call = plain_call(self, scope, body)
        seen.append(call is not None)
        return call

    monkeypatch.setattr(commit_asgi.CommitFastPath, "_plain_call", spy)
    return seen


@pytest.fixture
def listing(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    verified: None,
    drain: Drain,
) -> uuid.UUID:
    deposit(client, tokens[INVESTOR], "400000.00")
    drain()
    return list_demand(client, tokens, factory, settings, clock)


def _headers(token: str, key: str | None = None, **more: str) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", **more}
    if key is not None:
        headers["Idempotency-Key"] = key
    return headers


def test_a_plain_commitment_is_answered_by_the_fast_path(
    client: TestClient, tokens: dict[str, str], listing: uuid.UUID, taken: list[bool]
) -> None:
    body = json.dumps({"demand_id": str(listing), "amount": "1000.00", "accept_agreement": True})
    first = client.post(
        URL, content=body, headers=_headers(tokens[INVESTOR], "fast-1", **{"X-Request-ID": "rq-1"})
    )
    again = client.post(URL, content=body, headers=_headers(tokens[INVESTOR], "fast-1"))
    assert taken == [True, True]
    assert first.status_code == 201, first.text
    assert first.headers["idempotent-replayed"] == "false"
    assert first.headers["x-request-id"] == "rq-1"  # the request context still wraps it
    assert first.headers["x-content-type-options"] == "nosniff"
    assert first.json()["amount"] == "1000.00"
    assert first.json()["status"] == "pending"
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    # The route's metrics name the route for either path.
    assert 'route="/api/v1/commitments",status="201"} 2.0' in client.get("/metrics").text


def test_a_refusal_from_the_fast_path_is_the_apps_problem_json(
    client: TestClient, tokens: dict[str, str], listing: uuid.UUID, taken: list[bool]
) -> None:
    body = json.dumps({"demand_id": str(listing), "amount": "50.00", "accept_agreement": True})
    refused = client.post(URL, content=body, headers=_headers(tokens[INVESTOR], "fast-low"))
    other = json.dumps({"demand_id": str(listing), "amount": "2000.00", "accept_agreement": True})
    client.post(URL, content=other, headers=_headers(tokens[INVESTOR], "fast-2"))
    conflict = client.post(URL, content=body, headers=_headers(tokens[INVESTOR], "fast-2"))
    assert taken == [True, True, True]
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert problem["instance"] == URL
    assert problem["errors"][0]["type"] == "below-minimum"
    assert refused.headers["x-request-id"] == problem["request_id"]
    assert conflict.status_code == 409
    assert conflict.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("no credential", 401),
        ("invalid body", 422),
        ("not JSON", 422),
        ("unknown field", 422),
        ("another content type", 422),
        ("key given twice", 201),
        ("larger than the fast path reads", 422),
    ],
)
def test_what_is_not_plain_is_answered_by_the_route(
    client: TestClient,
    tokens: dict[str, str],
    listing: uuid.UUID,
    taken: list[bool],
    case: str,
    status: int,
) -> None:
    fields: dict[str, Any] = {"demand_id": str(listing), "amount": "1000.00", "accept_agreement": True}
    headers: list[tuple[str, str]] = list(_headers(tokens[INVESTOR], f"route-{case}").items())
    if case == "no credential":
        headers = [h for h in headers if h[0] != "Authorization"]
    elif case == "invalid body":
        fields["amount"] = "-5"
    elif case == "unknown field":
        fields["note"] = "x"
    elif case == "another content type":
        headers = [h if h[0] != "Content-Type" else ("Content-Type", "text/plain") for h in headers]
    elif case == "key given twice":
        headers.append(("Idempotency-Key", f"route-{case}"))
    elif case == "larger than the fast path reads":
        fields["padding"] = "x" * (commit_asgi.MAX_BODY + 1)
    content = b"{not json" if case == "not JSON" else json.dumps(fields).encode()
    answer = client.post(URL, content=content, headers=headers)
    assert answer.status_code == status, answer.text
    assert taken == ([] if case == "larger than the fast path reads" else [False])
    if status >= 400:
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["status"] == status
