"""One base error with a message and an HTTP status; features subclass it per broken rule.

The API renders these as RFC 9457 problem+json; pages show the message beside the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One problem with one input field; ``loc`` is the path to the field."""

    loc: tuple[str | int, ...]
    msg: str
    type: str = "value_error"

    def as_dict(self) -> dict[str, Any]:
        return {"loc": list(self.loc), "msg": self.msg, "type": self.type}


@dataclass
class YunrongError(Exception):
    """Base of every expected business error."""

    detail: str
    problems: list[FieldProblem] = field(default_factory=list)

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"

    def __post_init__(self) -> None:
        Exception.__init__(self, self.detail)

    def __str__(self) -> str:
        return self.detail


class InvalidInput(YunrongError):
    status = 422
    code = "invalid-input"
    title = "Invalid input"


class NotAuthenticated(YunrongError):
    status = 401
    code = "not-authenticated"
    title = "Not authenticated"


class PermissionDenied(YunrongError):
    status = 403
    code = "permission-denied"
    title = "Permission denied"


class NotFound(YunrongError):
    status = 404
    code = "not-found"
    title = "Not found"


class Conflict(YunrongError):
    status = 409
    code = "conflict"
    title = "Conflict"


class TooManyRequests(YunrongError):
    status = 429
    code = "too-many-requests"
    title = "Too many requests"
