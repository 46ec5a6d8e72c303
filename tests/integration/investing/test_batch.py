"""Commitments decided in batches answer exactly as the same requests one at a time would."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.integration.investing.conftest import INSTITUTION, INVESTOR, SME, Drain, deposit, list_demand
from yunrong.config import Settings
from yunrong.db import unit_of_work
from yunrong.identity.model import Credential
from yunrong.investing import batch
from yunrong.investing import service as investing
from yunrong.investing.routes import CommitmentIn, commitment_out
from yunrong.investing.tables import Commitment
from yunrong.kit.clock import FrozenClock
from yunrong.kit.errors import YunrongError
from yunrong.ledger.tables import Hold, IdempotencyKey
from yunrong.ledger.verify import first_violation
from yunrong.supervision.service import verify_chain

# (who, amount, key tag, extra body fields): the key tag makes the key; a tag used twice is a retry.
SCRIPT: list[tuple[str, str, str | None, dict[str, Any]]] = [
    (INVESTOR, "1000.00", "a", {}),  # created
    (INVESTOR, "1000.00", "a", {}),  # the same key and body: a replay of the first
    (INVESTOR, "2000.00", "a", {}),  # the same key, another body: 409
    (INSTITUTION, "1000.00", "b", {}),  # created
    (INSTITUTION, "1000.00", "c", {}),  # created: CNY 500 left of its CNY 2,500
    (INSTITUTION, "1000.00", "d", {}),  # over-balance, after the two before it in the same batch
    (SME, "1000.00", "e", {}),  # not an investor: 403
    ("nobody", "1000.00", "f", {}),  # an unknown token: 401
    (INVESTOR, "50.00", "g", {}),  # below-minimum
    (INVESTOR, "1000.00", None, {}),  # no Idempotency-Key: 422
    (INVESTOR, "1000.00", "h", {"accept_agreement": False}),  # agreement-not-accepted
    (INVESTOR, "1000.00", "i", {"demand_id": "unknown"}),  # no such listing: 404
    (INSTITUTION, "500.00", "j", {}),  # created: exactly what the institution has left
]
EXPECTED = [
    (201, False),
    (201, True),
    ("IdempotencyConflict", 409, ""),
    (201, False),
    (201, False),
    ("CommitmentRefused", 422, "over-balance"),
    ("PermissionDenied", 403, ""),
    ("NotAuthenticated", 401, ""),
    ("CommitmentRefused", 422, "below-minimum"),
    ("InvalidInput", 422, "value_error"),
    ("CommitmentRefused", 422, "agreement-not-accepted"),
    ("NotFound", 404, ""),
    (201, False),
]


def _calls(tokens: dict[str, str], demand_id: uuid.UUID, run: str) -> list[batch.CommitCall]:
    calls = []
    for who, amount, tag, extra in SCRIPT:
        fields: dict[str, Any] = {"demand_id": demand_id, "amount": amount, "accept_agreement": True}
        fields.update(extra)
        if fields["demand_id"] == "unknown":
            fields["demand_id"] = uuid.uuid4()
        body = CommitmentIn.model_validate(fields)
        calls.append(
            batch.CommitCall(
                credential=Credential("token", tokens.get(who, "not-a-token")),
                request_id=f"test-{run}",
                key=f"{run}-{tag}" if tag else None,
                body=body.model_dump(mode="json"),
                req=investing.CommitRequest(
                    demand_id=body.demand_id,
                    amount=body.minor(),
                    currency=body.currency,
                    accept_agreement=body.accept_agreement,
                    risk_warning_accepted=body.risk_warning_accepted,
                ),
            )
        )
    return calls


def _summary(answer: Any) -> tuple[Any, ...]:
    if isinstance(answer, YunrongError):
        rule = answer.problems[0].type if answer.problems else ""
        return (type(answer).__name__, answer.status, rule)
    assert not isinstance(answer, BaseException), answer
    status, _body, replayed = answer
    return (status, replayed)


def _render(row: Any) -> dict[str, Any]:
    return commitment_out(row).model_dump(mode="json")


def _committed(factory: sessionmaker[Session], demand_id: uuid.UUID) -> tuple[int, int]:
    with factory() as session:
        funding = investing.round_of(session, demand_id)
        assert funding is not None
        count = session.scalar(
            select(func.count()).select_from(Commitment).where(Commitment.demand_id == demand_id)
        )
        return funding.committed_minor, int(count or 0)


def test_a_batch_answers_each_request_as_one_at_a_time_would(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    verified: None,
    drain: Drain,
) -> None:
    deposit(client, tokens[INVESTOR], "400000.00")
    deposit(client, tokens[INSTITUTION], "2500.00")
    drain()
    together = list_demand(client, tokens, factory, settings, clock)
    alone = list_demand(client, tokens, factory, settings, clock)

    with unit_of_work(factory) as session:
        batched = batch.commit_batch(
            session,
            calls=_calls(tokens, together, "together"),
            settings=settings,
            clock=clock,
            render=_render,
        )
    deposit(client, tokens[INSTITUTION], "2500.00")  # the same money again for the second listing
    drain()
    one_by_one: list[Any] = []
    for call in _calls(tokens, alone, "alone"):
        try:
            with unit_of_work(factory) as session:
                one_by_one.append(
                    batch.commit_alone(session, call=call, settings=settings, clock=clock, render=_render)
                )
        except YunrongError as problem:
            one_by_one.append(problem)

    assert [_summary(a) for a in batched] == EXPECTED
    assert [_summary(a) for a in one_by_one] == EXPECTED
    # The replay is the first answer, word for word.
    first, replay = batched[0], batched[1]
    assert isinstance(first, tuple)
    assert isinstance(replay, tuple)
    assert replay[1] == first[1]
    assert _committed(factory, together) == _committed(factory, alone) == (350_000, 4)
    with factory() as session:
        # A refusal decided under the lock (over-balance) took its staged hold, commitment and key
        # out again: one hold per commitment, and a key only for what was created.
        assert session.scalar(select(func.count()).select_from(Hold)) == 8
        stored = session.scalars(
            select(IdempotencyKey.key).where(IdempotencyKey.key.like("together-%"))
        ).all()
        assert sorted(stored) == ["together-a", "together-b", "together-c", "together-j"]
        assert first_violation(session) is None
        assert verify_chain(session)[1] is None


def test_when_a_batch_fails_as_a_whole_each_request_is_decided_alone(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    verified: None,
    drain: Drain,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    deposit(client, tokens[INVESTOR], "400000.00")
    deposit(client, tokens[INSTITUTION], "2500.00")
    drain()
    demand_id = list_demand(client, tokens, factory, settings, clock)
    queue = batch.CommitQueue(factory, settings=settings, clock=clock, render=_render)

    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("the batch's transaction failed")

    monkeypatch.setattr(batch, "commit_batch", broken)
    answers = queue.decide(_calls(tokens, demand_id, "fallback"))
    assert [_summary(a) for a in answers] == EXPECTED
    assert _committed(factory, demand_id) == (350_000, 4)
    with factory() as session:
        assert first_violation(session) is None


def test_requests_arriving_together_are_decided_in_one_transaction(
    client: TestClient,
    tokens: dict[str, str],
    factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    verified: None,
    drain: Drain,
) -> None:
    """Through the API: many requests at once are answered by fewer transactions, each its own way."""
    deposit(client, tokens[INVESTOR], "400000.00")
    drain()
    demand_id = list_demand(client, tokens, factory, settings, clock)

    def post(i: int) -> int:
        amount = "100.00" if i % 5 else "50.00"  # every 5th is below the minimum
        response = client.post(
            "/api/v1/commitments",
            json={"demand_id": str(demand_id), "amount": amount, "accept_agreement": True},
            headers={"Authorization": f"Bearer {tokens[INVESTOR]}", "Idempotency-Key": f"rush-{i}"},
        )
        return response.status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(post, range(64)))
    assert statuses.count(201) == 51
    assert statuses.count(422) == 13  # every 5th is below the minimum
    queue = client.app.state.commit_queue  # type: ignore[attr-defined]
    assert queue.answered == 64
    assert queue.batches < 64
    metrics = client.get("/metrics").text
    assert f"yunrong_commitment_batch_size_count {float(queue.batches)}" in metrics
    assert "yunrong_commitment_batch_size_sum 64.0" in metrics
    assert _committed(factory, demand_id) == (51 * 10_000, 51)
