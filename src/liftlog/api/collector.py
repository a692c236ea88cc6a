"""The collector: ``POST /v1/events`` and ``GET /event``, the hot path.

A lean ASGI handler, no framework: read the body under the size limit, validate it with the
typed msgspec decoder, append the exact bytes and their metadata to the raw log, and answer only
once the raw log says the record is on disk. Normalising events into rows happens later, in the
loader, so that a request costs one decode and one share of a group commit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from liftlog.api.body import read_body
from liftlog.api.errors import error_status_headers_body
from liftlog.errors import LiftlogError, MethodNotAllowed
from liftlog.rawlog.record import Endpoint, RawRecord, anonymize_ip
from liftlog.rawlog.writer import RawLog
from liftlog.wire.events import decode_batch
from liftlog.wire.legacy import parse_query

CORS = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-expose-headers", b"retry-after"),
]
PREFLIGHT = [
    *CORS,
    (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
    (b"access-control-max-age", b"86400"),
    (b"vary", b"access-control-request-headers"),
]
NO_STORE = (b"cache-control", b"no-store")
#: A 1x1 transparent GIF, for ``<img src=".../event?...">`` pixels.
PIXEL = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)

Scope = dict[str, Any]


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return dict(scope["headers"])


def _text(value: bytes | None) -> str | None:
    return value.decode("latin-1") if value else None


def _client_ip(scope: Scope) -> str | None:
    client = scope.get("client")
    return client[0] if client else None


async def _send(
    send: Any, status: int, headers: list[tuple[bytes, bytes]], body: bytes = b""
) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send_error(send: Any, exc: LiftlogError) -> None:
    status, headers, body = error_status_headers_body(exc)
    await _send(send, status, [*headers, *CORS], body)


class Collector:
    def __init__(
        self, rawlog: RawLog, max_body_bytes: int, clock: Callable[[], float] = time.time
    ) -> None:
        self.rawlog = rawlog
        self.max_body_bytes = max_body_bytes
        self.clock = clock

    async def events(self, scope: Scope, receive: Any, send: Any) -> None:
        """``POST /v1/events``: 204 once durable, 400/413/415 for unusable input, 503 to retry."""
        method = scope["method"]
        if method == "OPTIONS":
            await self._preflight(scope, send)
            return
        try:
            if method != "POST":
                raise MethodNotAllowed("Use POST to send events to /v1/events.")
            headers = _headers(scope)
            length = headers.get(b"content-length")
            body = await read_body(
                receive,
                self.max_body_bytes,
                int(length) if length and length.isdigit() else None,
                headers.get(b"content-encoding"),
            )
            batch = decode_batch(body)
            ip = _client_ip(scope)
            record = RawRecord(
                received_ms=int(self.clock() * 1000),
                endpoint=Endpoint.V1_EVENTS,
                body=body,
                client_ip=anonymize_ip(ip) if batch.anonymize_ip else ip,
                user_agent=_text(headers.get(b"user-agent")),
                referer=_text(headers.get(b"referer")),
            )
            await self.rawlog.append(record)
        except LiftlogError as exc:
            await _send_error(send, exc)
            return
        await _send(send, 204, CORS)

    async def legacy(self, scope: Scope, receive: Any, send: Any) -> None:
        """``GET /event?a=…&n=…``: 204, or a transparent GIF when the client accepts images."""
        method = scope["method"]
        if method == "OPTIONS":
            await self._preflight(scope, send)
            return
        try:
            if method not in ("GET", "HEAD"):
                raise MethodNotAllowed("Use GET for the legacy /event call.")
            query: bytes = scope.get("query_string", b"")
            parse_query(query.decode("latin-1"))
            headers = _headers(scope)
            record = RawRecord(
                received_ms=int(self.clock() * 1000),
                endpoint=Endpoint.LEGACY_GET,
                body=query,
                client_ip=anonymize_ip(_client_ip(scope)),
                user_agent=_text(headers.get(b"user-agent")),
                referer=_text(headers.get(b"referer")),
            )
            await self.rawlog.append(record)
        except LiftlogError as exc:
            await _send_error(send, exc)
            return
        if b"image/" in headers.get(b"accept", b""):
            await _send(
                send,
                200,
                [
                    *CORS,
                    NO_STORE,
                    (b"content-type", b"image/gif"),
                    (b"content-length", str(len(PIXEL)).encode()),
                ],
                PIXEL,
            )
        else:
            await _send(send, 204, [*CORS, NO_STORE])

    async def _preflight(self, scope: Scope, send: Any) -> None:
        requested = _headers(scope).get(b"access-control-request-headers")
        allow = requested or b"content-type, content-encoding, x-optimizely-strict"
        await _send(send, 204, [*PREFLIGHT, (b"access-control-allow-headers", allow)])
