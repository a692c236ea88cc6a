"""The exceptions liftlog raises, and the one place their tree is drawn.

    LiftlogError
    ├── InvalidInput(ValueError)        400  the request is structurally unusable
    │   ├── PayloadTooLarge             413  the (decoded) body is over the limit
    │   └── UnsupportedMediaType        415  a content type or encoding liftlog can't read
    ├── MethodNotAllowed                405
    ├── NotFound(LookupError)           404
    ├── Conflict                        409  a precondition or uniqueness rule failed
    ├── Unprocessable(ValueError)       422  well-formed but semantically invalid
    ├── Unauthorized                    401
    ├── Forbidden                       403
    ├── Unavailable                     503  could not be made durable now; resend later
    └── CorruptLog                          the raw log holds bytes that are not a record

Every error that reaches a client is turned into HTTP in exactly one place (`liftlog.api.errors`)
with one JSON shape: ``{"error": {"code", "message", "details": [{"path", "problem"}]}}``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an input, located by a path such as ``$.visitors[0].visitor_id``."""

    path: str
    problem: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "problem": self.problem}


class LiftlogError(Exception):
    """Root of every error liftlog raises on purpose."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, details: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = list(details or [])


class InvalidInput(LiftlogError, ValueError):
    status = 400
    code = "invalid_input"


class PayloadTooLarge(InvalidInput):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(InvalidInput):
    status = 415
    code = "unsupported_media_type"


class MethodNotAllowed(LiftlogError):
    status = 405
    code = "method_not_allowed"


class NotFound(LiftlogError, LookupError):
    status = 404
    code = "not_found"


class Conflict(LiftlogError):
    status = 409
    code = "conflict"


class Unprocessable(LiftlogError, ValueError):
    status = 422
    code = "unprocessable"


class Unauthorized(LiftlogError):
    status = 401
    code = "unauthorized"


class Forbidden(LiftlogError):
    status = 403
    code = "forbidden"


class Unavailable(LiftlogError):
    """The request can't be served now (an event not made durable, too many countings under
    way); the client should send it again after ``retry_after`` seconds."""

    status = 503
    code = "unavailable"

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class CorruptLog(LiftlogError):
    """A raw-log segment holds bytes that are not a valid record (not a torn tail)."""


def too_deep() -> InvalidInput:
    """A JSON body nested deeper than the parser's recursion limit (about a thousand levels;
    no body liftlog reads needs more than a few dozen)."""
    return InvalidInput(
        "The body is nested too deeply to read.", [Problem("$", "nests too deeply")]
    )
