"""``POST /api/v1/commitments`` without the framework's per-request machinery, for a rush.

Under a rush on a listing, routing, dependency solving and request parsing in FastAPI took about
a quarter of a server process's CPU per commitment (``bench/commit_pg.py``). This ASGI middleware answers
the plain case itself: a JSON body of at most ``MAX_BODY`` bytes that
:class:`~yunrong.investing.routes.CommitmentIn` accepts, from a caller that presents a credential,
with at most one ``Idempotency-Key``. It builds the same call
(:func:`~yunrong.investing.routes.commit_call`) and answers with the same function
(:func:`~yunrong.investing.routes.answer_commitment`) as the route, and a refusal is rendered by
the app's own problem+json handler. Anything else (no credential, a body the model refuses, another
content type, a header given twice) is passed on, body and all, to the FastAPI route, whose answer
(401, 422, ...) is then the one every other endpoint would give. The route stays the documented
operation (OpenAPI); metrics and logs name it for either path.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from yunrong.deps import credential_from
from yunrong.investing.batch import CommitCall
from yunrong.investing.routes import CommitmentIn, answer_commitment, commit_call
from yunrong.kit.errors import YunrongError
from yunrong.problems import on_yunrong_error

PATH = "/api/v1/commitments"
#: A commitment's JSON is ~150 bytes; anything much larger is not the plain case.
MAX_BODY = 16 * 1024
_JSON = (b"application/json", b"application/json; charset=utf-8")
_WANTED = {b"authorization", b"x-api-key", b"idempotency-key", b"content-type"}


@dataclass(frozen=True)
class _Route:
    path: str  # the template, as a matched route gives it


_ROUTE = _Route(PATH)


class CommitFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != PATH:
            await self.app(scope, receive, send)
            return
        messages, body = await _read(receive)
        call = None if body is None else self._plain_call(scope, body)
        if call is None:
            await self.app(scope, _replaying(messages, receive), send)
            return
        scope["route"] = _ROUTE  # for the request context's metrics and log line
        response: Response
        try:
            response = await answer_commitment(scope["app"], call)
        except YunrongError as refusal:
            response = await on_yunrong_error(Request(scope), refusal)
        await response(scope, receive, send)

    def _plain_call(self, scope: Scope, body: bytes) -> CommitCall | None:
        headers: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            if name in _WANTED:
                if name in headers:
                    return None
                headers[name] = value
        if headers.get(b"content-type", b"").lower() not in _JSON:
            return None
        credential = credential_from(
            headers.get(b"x-api-key", b"").decode("latin-1"),
            headers.get(b"authorization", b"").decode("latin-1"),
        )
        if credential is None:
            return None
        try:
            parsed = CommitmentIn.model_validate_json(body)
            key = headers.get(b"idempotency-key")
            return commit_call(credential, None if key is None else key.decode("latin-1"), parsed)
        except (ValidationError, YunrongError, UnicodeDecodeError):
            return None


async def _read(receive: Receive) -> tuple[list[Message], bytes | None]:
    """The messages read, and the whole body (None: larger than ``MAX_BODY``, or cut short)."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        size += len(message.get("body", b""))
        if size > MAX_BODY:
            return messages, None
        if not message.get("more_body", False):
            return messages, b"".join(m.get("body", b"") for m in messages)


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    """``receive`` giving back what was already read first."""
    pending = list(reversed(messages))

    async def again() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return again
