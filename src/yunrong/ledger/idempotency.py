"""Idempotency keys for money-moving commands.

The key is claimed *before* the command runs, in a savepoint of the same transaction, so the key
and the command's effect commit together or not at all. A replay with the same request returns
the first result; the same key with another request is a 409. On PostgreSQL a concurrent request
with the same key waits on the unique index until the first commits, then replays it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any, Protocol, cast

from sqlalchemy import Table, bindparam, delete, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from yunrong.db import insert_many
from yunrong.identity.model import Context
from yunrong.kit.errors import FieldProblem, InvalidInput
from yunrong.kit.ids import uuid7
from yunrong.ledger.model import IdempotencyConflict
from yunrong.ledger.tables import IdempotencyKey
from yunrong.supervision.model import canonical_json

MAX_KEY_LENGTH = 200
KEYS = cast(Table, IdempotencyKey.__table__)


def request_hash(operation: str, request: Any) -> str:
    return hashlib.sha256(canonical_json({"operation": operation, "request": request}).encode()).hexdigest()


def scope_of(ctx: Context) -> str:
    """Keys are per organisation (a machine client and its colleagues share one namespace)."""
    return str(ctx.actor.organisation_id) if ctx.actor.organisation_id else f"system:{ctx.actor.email}"


def check_key(key: str | None) -> str:
    """The key, or a 400 naming the header."""
    if not key or not key.strip():
        raise InvalidInput(
            "money-moving requests need an Idempotency-Key header",
            [FieldProblem(("header", "Idempotency-Key"), "required")],
        )
    if len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput(
            "the idempotency key is too long or not printable",
            [FieldProblem(("header", "Idempotency-Key"), f"1 to {MAX_KEY_LENGTH} printable characters")],
        )
    return key


def run_once(
    session: Session,
    *,
    ctx: Context,
    key: str | None,
    operation: str,
    request: Any,
    command: Callable[[], tuple[int, dict[str, Any]]],
) -> tuple[int, dict[str, Any], bool]:
    """Run ``command`` once per (scope, key). Returns (status, body, replayed)."""
    key = check_key(key)
    scope = scope_of(ctx)
    digest = request_hash(operation, request)
    existing = _find(session, scope, key)
    if existing is None:
        try:
            with session.begin_nested():
                session.add(
                    IdempotencyKey(
                        scope=scope,
                        key=key,
                        operation=operation,
                        request_hash=digest,
                        status_code=0,
                        response={},
                        created_at=ctx.now(),
                    )
                )
                session.flush()
        except IntegrityError:
            existing = _find(session, scope, key)
            if existing is None:  # pragma: no cover - the other request rolled back; let the client retry
                raise IdempotencyConflict("a request with this key is still in progress; retry") from None
    if existing is not None:
        status, body = replay(existing, operation, digest)
        return status, body, True
    status, body = command()
    session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.scope == scope, IdempotencyKey.key == key)
        .values(status_code=status, response=body)
    )
    return status, body, False


def _find(session: Session, scope: str, key: str) -> IdempotencyKey | None:
    return session.execute(
        select(IdempotencyKey)
        .where(IdempotencyKey.scope == scope, IdempotencyKey.key == key)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


def find_many(session: Session, pairs: set[tuple[str, str]]) -> dict[tuple[str, str], Stored]:
    """The stored keys among ``(scope, key)`` pairs, in one query (plain rows)."""
    if not pairs:
        return {}
    return {(row.scope, row.key): row for row in session.execute(_FIND_MANY, {"pairs": sorted(pairs)})}


_FIND_MANY = select(
    KEYS.c.scope, KEYS.c.key, KEYS.c.operation, KEYS.c.request_hash, KEYS.c.status_code, KEYS.c.response
).where(tuple_(KEYS.c.scope, KEYS.c.key).in_(bindparam("pairs", expanding=True)))  # the unique index


class Stored(Protocol):
    """A stored key's outcome, as :func:`find_many` reads it (or the ORM row)."""

    operation: str
    request_hash: str
    status_code: int
    response: Any


def replay(row: Stored, operation: str, digest: str) -> tuple[int, dict[str, Any]]:
    """The stored result for a retried request, or a 409 if the key was used for another."""
    if row.request_hash != digest or row.operation != operation:
        raise IdempotencyConflict("this Idempotency-Key was already used for a different request")
    return row.status_code, row.response


def store_many(
    session: Session, *, operation: str, results: Sequence[tuple[Context, str, str, int, dict[str, Any]]]
) -> None:
    """Store the results of commands that ran without claiming their keys first, in one insert:
    ``(ctx, key, request hash, status, body)`` each. The caller's transaction holds their effects,
    and the keys' unique index still refuses a key another transaction claimed meanwhile."""
    insert_many(
        session,
        KEYS,
        [
            {
                "id": uuid7(),
                "scope": scope_of(ctx),
                "key": key,
                "operation": operation,
                "request_hash": digest,
                "status_code": status,
                "response": body,
                "created_at": ctx.now(),
            }
            for ctx, key, digest, status, body in results
        ],
    )


def update_stored(session: Session, ident: tuple[str, str], *, status: int, body: dict[str, Any]) -> None:
    """Replace the result stored for ``(scope, key)`` in this transaction (it changed before commit)."""
    scope, key = ident
    session.execute(
        update(KEYS).where(KEYS.c.scope == scope, KEYS.c.key == key).values(status_code=status, response=body)
    )


def forget_many(session: Session, idents: Sequence[tuple[str, str]]) -> None:
    """Delete the keys ``(scope, key)`` this transaction stored for commands it then refused: a
    refusal writes nothing, so the same key may be sent again."""
    if idents:
        session.execute(delete(KEYS).where(tuple_(KEYS.c.scope, KEYS.c.key).in_(sorted(idents))))
