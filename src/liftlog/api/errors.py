"""The one place where exceptions become HTTP: status, headers and the JSON error shape.

Every error response body is ``{"error": {"code", "message", "details": [{"path", "problem"}]}}``.
"""

from __future__ import annotations

import msgspec

from liftlog.errors import LiftlogError, Unavailable


def error_status_headers_body(exc: LiftlogError) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    body = msgspec.json.encode(
        {
            "error": {
                "code": exc.code,
                "message": exc.message,
                "details": [d.to_dict() for d in exc.details],
            }
        }
    )
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if isinstance(exc, Unavailable):
        headers.append((b"retry-after", str(exc.retry_after).encode()))
    return exc.status, headers, body
