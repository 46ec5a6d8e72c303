"""Endpoints that read an upload or a raw body asynchronously do their database work off the event
loop: while one waits (for a lock, say), the server keeps answering. On SQLite a callback that
waited for the write lock on the loop stopped the very request holding that lock from finishing
(its commit needs the loop), until the 30 s busy timeout failed the callback."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import bearer
from yunrong.custody import reconciliation as recon
from yunrong.custody import service as custody
from yunrong.parties import service as parties
from yunrong.verification import imports

INVESTOR = "investor@demo.yunrong.cn"
OPERATOR = "operator@demo.yunrong.cn"


RELEASE = threading.Event()


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Any, str], threading.Event]]:
    """Make ``module.name`` wait until released; returns the event set once it is waiting."""
    release = RELEASE
    release.clear()

    def hold(module: Any, name: str) -> threading.Event:
        entered = threading.Event()

        def waiting(*_args: Any, **_kwargs: Any) -> Any:
            entered.set()
            release.wait(60)
            raise RuntimeError("released")

        monkeypatch.setattr(module, name, waiting)
        return entered

    yield hold
    release.set()


def _still_answering(
    client: TestClient, request: Callable[[], httpx.Response], entered: threading.Event
) -> None:
    with ThreadPoolExecutor(max_workers=2) as pool:
        waiting = pool.submit(request)
        if not entered.wait(10):
            raise AssertionError(f"the endpoint never reached its database work: {waiting.result().text}")
        try:
            # /healthz touches no database: only a blocked event loop keeps it from answering (the
            # held work is released after 60 s at the latest, so 20 s tells the two apart).
            answered = pool.submit(client.get, "/healthz").result(timeout=20)
        finally:
            RELEASE.set()
        assert answered.status_code == 200


def test_a_custodian_callback_waits_off_the_event_loop(
    client: TestClient, held: Callable[[Any, str], threading.Event]
) -> None:
    entered = held(custody, "apply_callback")
    _still_answering(client, lambda: client.post("/api/v1/custodian/callbacks", content=b"{}"), entered)


def test_a_document_upload_waits_off_the_event_loop(
    client: TestClient, tokens: dict[str, str], held: Callable[[Any, str], threading.Event]
) -> None:
    entered = held(parties, "upload_document")
    files = {"file": ("a.pdf", b"%PDF-1.4 test", "application/pdf")}
    _still_answering(
        client,
        lambda: client.post(
            "/api/v1/documents",
            data={"category": "supporting"},
            files=files,
            headers=bearer(tokens[INVESTOR]),
        ),
        entered,
    )


def test_a_data_import_waits_off_the_event_loop(
    client: TestClient, tokens: dict[str, str], held: Callable[[Any, str], threading.Event]
) -> None:
    entered = held(imports, "import_dataset")
    me = client.get("/api/v1/me", headers=bearer(tokens["sme@demo.yunrong.cn"])).json()
    org = me["organisation"]["id"] if isinstance(me.get("organisation"), dict) else me["organisation_id"]
    files = {"file": ("a.csv", b"a,b\n1,2\n", "text/csv")}
    _still_answering(
        client,
        lambda: client.post(
            f"/api/v1/enterprises/{org}/data/balance_sheet",
            files=files,
            headers=bearer(tokens["sme@demo.yunrong.cn"]),
        ),
        entered,
    )


def test_a_statement_import_waits_off_the_event_loop(
    client: TestClient, tokens: dict[str, str], held: Callable[[Any, str], threading.Event]
) -> None:
    entered = held(recon, "import_statement")
    files = {"file": ("s.csv", b"x\n", "text/csv")}
    _still_answering(
        client,
        lambda: client.post(
            "/api/v1/reconciliations", data={"format": "csv"}, files=files, headers=bearer(tokens[OPERATOR])
        ),
        entered,
    )
