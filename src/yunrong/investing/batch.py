"""Commitments decided in batches: group commit for a rush on a listing.

Every commitment to a listing serialises on its round's row lock, so one transaction per request
caps a listing at 1 / (time the lock is held): 53 a second on PostgreSQL on a 2-vCPU machine,
however many processes serve the API (``bench/commit_pg.py``). Instead, each server process
hands its commitment requests to one thread, which takes every request waiting (up to
``MAX_BATCH``) and decides them in ONE transaction: the callers' credentials and idempotency keys
are read together, every check that needs no lock runs per request as in
:func:`~yunrong.investing.service.prepare_commitment`, the commitments, their holds and their
idempotency keys are written as if all will be accepted
(:func:`~yunrong.investing.service.stage_commitments`), and only then
:func:`~yunrong.investing.service.decide_staged` takes each round's lock once, decides the
requests in arrival order against what is left and each investor's balance, takes out the ones it
refuses, reserves the money and audits the rest. So the round's lock, which the server processes
take in turn, is held to decide and count, not to build and insert rows. A batch waits at most
``LINGER`` (1 ms) for one more request, and not at all once as many have come as last time: under
light load it is one request; under a rush, the requests that arrived while the previous batch
committed. Every request still gets its own answer: a refusal is that request's problem and
leaves nothing written, the others commit. Should the batch's transaction fail as a whole (say,
two processes raced on one idempotency key), each request is retried alone through the
one-request path (:func:`~yunrong.ledger.idempotency.run_once` and
:func:`~yunrong.investing.service.create_commitment`), which is what every other caller uses.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, sessionmaker

from yunrong.config import Settings
from yunrong.custody import accounts
from yunrong.db import unit_of_work
from yunrong.demands.tables import Demand
from yunrong.identity import service as identity
from yunrong.identity.model import Actor, Context, Credential
from yunrong.identity.tables import Organisation
from yunrong.investing import service
from yunrong.investing.tables import Commitment, KnowledgeTest
from yunrong.kit.clock import Clock
from yunrong.kit.errors import NotAuthenticated, YunrongError
from yunrong.ledger import idempotency
from yunrong.parties.tables import Investor, Qualification

log = logging.getLogger(__name__)

OPERATION = "create_commitment"
#: At most this many requests in one transaction (a batch's locks are held while it is decided).
MAX_BATCH = 256
#: Having taken a request, wait this long for the next before deciding (seconds). Requests that a
#: batch's answers set free come back a moment later; without it the next batch would be the one
#: straggler that beat them, and a rush would be decided a few at a time. Light load pays <= 1 ms.
LINGER = 0.001

Answer = tuple[int, dict[str, Any], bool]  # status, body, replayed
Render = Callable[[Commitment | service.CommitmentRecord], dict[str, Any]]


@dataclass(frozen=True)
class CommitCall:
    """One ``POST /commitments`` as received: who, which key, the request as JSON and parsed."""

    credential: Credential
    request_id: str
    key: str | None
    body: dict[str, Any]
    req: service.CommitRequest


class AccountIds:
    """Ids of ledger accounts that never change once they exist (an investor's available money, an
    enterprise's payout account, per currency), kept by a commitment queue across its batches: two
    or three queries fewer per batch. What a batch finds is kept only once its transaction commits
    (a rolled-back batch may have opened an account that does not exist after all)."""

    LIMIT = 100_000  # entries kept; beyond, start again (each is found again by one query)

    def __init__(self) -> None:
        self.available: dict[tuple[uuid.UUID, str], uuid.UUID] = {}
        self.payout: dict[tuple[uuid.UUID, str], uuid.UUID] = {}
        self._found: list[service.Lookups] = []

    def lookups(
        self,
        qualifications: dict[uuid.UUID, Qualification | None],
        owners: set[uuid.UUID],
        currencies: set[str],
    ) -> service.Lookups:
        """A batch's lookups, with what is known of these investors' and enterprises' accounts."""
        found = service.Lookups(qualifications=qualifications)
        for owner in owners:
            for currency in currencies:
                for mine, theirs in (
                    (self.available, found.available_accounts),
                    (self.payout, found.payout_accounts),
                ):
                    known = mine.get((owner, currency))
                    if known is not None:
                        theirs[(owner, currency)] = known
        self._found.append(found)
        return found

    def committed(self) -> None:
        for found in self._found:
            for mine, theirs in (
                (self.available, found.available_accounts),
                (self.payout, found.payout_accounts),
            ):
                if len(mine) + len(theirs) > self.LIMIT:
                    mine.clear()
                mine.update(theirs)
        self._found.clear()

    def rolled_back(self) -> None:
        self._found.clear()


@dataclass(frozen=True)
class _Known:
    ctx: Context
    ident: tuple[str, str]  # (scope, key)
    digest: str


def commit_batch(
    session: Session,
    *,
    calls: Sequence[CommitCall],
    settings: Settings,
    clock: Clock,
    render: Render,
    account_ids: AccountIds | None = None,
) -> list[Answer | YunrongError]:
    """Answer every call in the caller's transaction: created, replayed, or refused (written
    nothing). ``account_ids``: what the caller's earlier batches learned (the caller tells it
    whether this transaction committed)."""
    answers: list[Answer | YunrongError | None] = [None] * len(calls)
    base = Context(actor=Actor.system("anonymous"), clock=clock, request_id="commit-batch")
    actors = identity.resolve_credentials(session, ctx=base, credentials={c.credential for c in calls})
    known: dict[int, _Known] = {}
    for i, call in enumerate(calls):
        actor = actors[call.credential]
        try:
            if actor is None:
                raise NotAuthenticated("a valid bearer token or API key is required")
            key = idempotency.check_key(call.key)
        except YunrongError as problem:
            answers[i] = problem
            continue
        ctx = Context(actor=actor, clock=clock, request_id=call.request_id)
        digest = idempotency.request_hash(OPERATION, call.body)
        known[i] = _Known(ctx, (idempotency.scope_of(ctx), key), digest)
    # A key sent twice in one batch: the second waits for the first's outcome (the next wave), as
    # it would wait on the key's unique index if it came in another transaction.
    waiting = sorted(known)
    while waiting:
        wave: list[int] = []
        later: list[int] = []
        seen: set[tuple[str, str]] = set()
        for i in waiting:
            (later if known[i].ident in seen else wave).append(i)
            seen.add(known[i].ident)
        stored = idempotency.find_many(session, {known[i].ident for i in wave})
        fresh: list[int] = []
        for i in wave:
            row = stored.get(known[i].ident)
            if row is None:
                fresh.append(i)
                continue
            try:
                status, body = idempotency.replay(row, OPERATION, known[i].digest)
                answers[i] = (status, body, True)
            except YunrongError as problem:
                answers[i] = problem
        _commit_fresh(
            session, [(i, calls[i], known[i]) for i in fresh], answers, settings, render, account_ids
        )
        waiting = later
    done: list[Answer | YunrongError] = []
    for answer in answers:
        assert answer is not None
        done.append(answer)
    return done


def _commit_fresh(
    session: Session,
    fresh: list[tuple[int, CommitCall, _Known]],
    answers: list[Answer | YunrongError | None],
    settings: Settings,
    render: Render,
    account_ids: AccountIds | None,
) -> None:
    if not fresh:
        return
    org_ids = {k.ctx.actor.organisation_id for _, _, k in fresh if k.ctx.actor.organisation_id}
    demand_ids = sorted({call.req.demand_id for _, call, _ in fresh})
    # Into the session's identity map, where the per-request checks look them up (session.get);
    # the map holds objects weakly, so ``loaded`` keeps them for the batch.
    loaded: list[object] = list(session.scalars(_DEMANDS, {"ids": demand_ids}))
    qualifications: dict[uuid.UUID, Qualification | None] = {}
    for org, investor, test, qualification in session.execute(_INVESTORS, {"ids": sorted(org_ids)}):
        loaded += [org, investor, test]
        qualifications[org.id] = qualification
    currencies = {call.req.currency for _, call, _ in fresh}
    enterprises = {d.organisation_id for d in loaded if isinstance(d, Demand)}
    lookups = (account_ids or AccountIds()).lookups(qualifications, org_ids | enterprises, currencies)
    investors = [o for o in loaded if isinstance(o, Organisation)]
    for currency in sorted(currencies):
        unknown = [o for o in investors if (o.id, currency) not in lookups.available_accounts]
        ids = accounts.investor_available_ids(session, unknown, currency)
        lookups.available_accounts.update({(org_id, currency): a for org_id, a in ids.items()})
    prepared: list[tuple[int, _Known, service.Prepared]] = []
    for i, call, k in fresh:
        try:
            p = service.prepare_commitment(
                session, ctx=k.ctx, req=call.req, settings=settings, lookups=lookups
            )
        except YunrongError as problem:
            answers[i] = problem
            continue
        prepared.append((i, k, p))
    # Written before the round's lock is taken (as if all were accepted), answers and keys too, so
    # that the lock is held only to decide; the refused ones are taken out again.
    staged = service.stage_commitments(session, [p for _, _, p in prepared], settings=settings)
    bodies = [render(record) for record in staged.records]
    idempotency.store_many(
        session,
        operation=OPERATION,
        results=[
            (k.ctx, k.ident[1], k.digest, 201, body) for (_, k, _), body in zip(prepared, bodies, strict=True)
        ],
    )
    outcomes = service.decide_staged(session, staged, settings=settings)
    refused: list[tuple[str, str]] = []
    for (i, k, _), outcome, body in zip(prepared, outcomes, bodies, strict=True):
        if isinstance(outcome, YunrongError):
            answers[i] = outcome
            refused.append(k.ident)
        elif isinstance(outcome, service.CommitmentRecord):
            answers[i] = (201, body, False)
        else:  # the round closed with it: answered as it now is
            body = render(outcome)
            idempotency.update_stored(session, k.ident, status=201, body=body)
            answers[i] = (201, body, False)
    idempotency.forget_many(session, refused)
    del loaded


# Built once (a batch runs every few milliseconds under a rush).
_DEMANDS = select(Demand).where(Demand.id.in_(bindparam("ids", expanding=True)))
_INVESTORS = (
    select(Organisation, Investor, KnowledgeTest, Qualification)
    .outerjoin(Investor, Investor.organisation_id == Organisation.id)
    .outerjoin(KnowledgeTest, KnowledgeTest.organisation_id == Organisation.id)
    .outerjoin(Qualification, Qualification.organisation_id == Organisation.id)
    .where(Organisation.id.in_(bindparam("ids", expanding=True)))
)


def commit_alone(
    session: Session, *, call: CommitCall, settings: Settings, clock: Clock, render: Render
) -> Answer:
    """One request through the one-request path (its key claimed first, in a savepoint)."""
    base = Context(actor=Actor.system("anonymous"), clock=clock, request_id=call.request_id)
    actor = identity.resolve_credentials(session, ctx=base, credentials={call.credential})[call.credential]
    if actor is None:
        raise NotAuthenticated("a valid bearer token or API key is required")
    ctx = Context(actor=actor, clock=clock, request_id=call.request_id)

    def command() -> tuple[int, dict[str, Any]]:
        row = service.create_commitment(session, ctx=ctx, settings=settings, req=call.req)
        return 201, render(row)

    return idempotency.run_once(
        session, ctx=ctx, key=call.key, operation=OPERATION, request=call.body, command=command
    )


_Waiter = tuple[CommitCall, "asyncio.Future[Answer]", asyncio.AbstractEventLoop]


class CommitQueue:
    """This process's commitment requests, decided in batches by one thread (see the module)."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        settings: Settings,
        clock: Clock,
        render: Render,
        max_batch: int = MAX_BATCH,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self._factory = factory
        self._settings = settings
        self._clock = clock
        self._render = render
        self._max_batch = max_batch
        self._on_batch = on_batch  # told each batch's size (the app's metrics)
        self._queue: queue.SimpleQueue[_Waiter] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()
        self._account_ids = AccountIds()  # used by the queue's thread only
        self.batches = 0  # how many transactions, and how many requests they answered
        self.answered = 0

    async def submit(self, call: CommitCall) -> Answer:
        """The call's answer, or its refusal raised."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Answer] = loop.create_future()
        self._ensure_thread()
        self._queue.put((call, future, loop))
        return await future

    def _ensure_thread(self) -> None:
        if self._thread is not None:
            return
        with self._start:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="commit-queue", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        expected = 1  # how many the last batch had: a rush's callers come back together
        while True:
            batch = [self._queue.get()]
            while len(batch) < self._max_batch:
                try:
                    # Without waiting once as many as last time have come (the rest of a rush is
                    # then unlikely); else up to LINGER for each next one.
                    batch.append(self._queue.get(block=len(batch) < expected, timeout=LINGER))
                except queue.Empty:
                    break
            expected = len(batch)
            try:
                answers = self.decide([call for call, _, _ in batch])
            except BaseException as exc:  # never leave a caller waiting
                answers = [exc] * len(batch)
            self.batches += 1
            self.answered += len(batch)
            if self._on_batch is not None:
                self._on_batch(len(batch))
            # One wake-up per event loop for all its answers (not one per answer).
            by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Answer], Any]]] = {}
            for (_, future, loop), answer in zip(batch, answers, strict=True):
                by_loop.setdefault(loop, []).append((future, answer))
            for loop, settled in by_loop.items():
                try:
                    loop.call_soon_threadsafe(_settle_all, settled)
                except RuntimeError:  # that event loop is gone (the server stopped)
                    log.warning(
                        "%d commitment answers could not be delivered: their event loop is closed",
                        len(settled),
                    )

    def decide(self, calls: list[CommitCall]) -> list[Answer | BaseException]:
        """One transaction for all; if it fails as a whole, one transaction for each."""
        try:
            with unit_of_work(self._factory) as session:
                decided: list[Answer | BaseException] = list(
                    commit_batch(
                        session,
                        calls=calls,
                        settings=self._settings,
                        clock=self._clock,
                        render=self._render,
                        account_ids=self._account_ids,
                    )
                )
            self._account_ids.committed()
            return decided
        except Exception as exc:
            self._account_ids.rolled_back()
            log.warning(
                "a batch of %d commitments failed as a whole (%r); deciding each alone", len(calls), exc
            )
        answers: list[Answer | BaseException] = []
        for call in calls:
            try:
                with unit_of_work(self._factory) as session:
                    answers.append(
                        commit_alone(
                            session,
                            call=call,
                            settings=self._settings,
                            clock=self._clock,
                            render=self._render,
                        )
                    )
            except Exception as exc:
                answers.append(exc)
        return answers


def _settle_all(settled: list[tuple[asyncio.Future[Answer], Answer | BaseException]]) -> None:
    for future, answer in settled:
        if future.cancelled():
            continue
        if isinstance(answer, BaseException):
            future.set_exception(answer)
        else:
            future.set_result(answer)
