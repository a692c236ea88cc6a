"""HTTP requests read in full on the async side, handed to Authlib's synchronous server code.

Starlette reads bodies asynchronously while Authlib reads ``request.form`` synchronously, so a
handler first reads what it needs into a `Prepared` request, then calls Authlib in a worker thread
with it. The adapters give Authlib the view of a request that its Flask integration gives: ``args``
(query), ``form`` (urlencoded body) and ``payload.data`` (both, query first).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from authlib.oauth2.rfc6749 import (  # type: ignore[import-untyped]
    JsonPayload,
    JsonRequest,
    OAuth2Payload,
    OAuth2Request,
)
from starlette.datastructures import Headers
from starlette.requests import Request

from liftlog.errors import PayloadTooLarge, Problem

Pairs = tuple[tuple[str, str], ...]

#: OAuth requests are a few hundred bytes; refuse anything far larger before parsing it.
MAX_BODY = 64 * 1024
MAX_FIELDS = 64


@dataclass(frozen=True)
class Prepared:
    """One request as Authlib needs it, with nothing left to read from the network."""

    method: str
    url: str
    headers: Mapping[str, str]
    query: Pairs = ()
    form: Pairs = ()
    body: bytes = b""


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(
                f"The request body is larger than {limit} bytes.",
                [Problem("$", f"body exceeds {limit} bytes")],
            )
        chunks.append(chunk)
    return b"".join(chunks)


def form_pairs(body: bytes, content_type: str | None) -> Pairs:
    """The fields of an ``application/x-www-form-urlencoded`` body; none for other bodies, so that
    Authlib reports the missing parameters in OAuth's own error format."""
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type != "application/x-www-form-urlencoded":
        return ()
    try:
        text = body.decode("utf-8")
        return tuple(parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS))
    except ValueError:  # not UTF-8, or too many fields
        return ()


async def prepare(request: Request, *, with_form: bool) -> Prepared:
    body = await read_body(request) if with_form else b""
    return Prepared(
        method=request.method,
        url=str(request.url),
        headers=request.headers,
        query=tuple(request.query_params.multi_items()),
        form=form_pairs(body, request.headers.get("content-type")) if with_form else (),
        body=body,
    )


def stored(url: str, params: Mapping[str, str]) -> Prepared:
    """An authorization request rebuilt from the parameters remembered with a consent form."""
    return Prepared(method="GET", url=url, headers=Headers(), query=tuple(params.items()))


class Payload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, pairs: Pairs) -> None:
        self._data: dict[str, str] = {}
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in pairs:
            self._data.setdefault(key, value)
            self._datalist[key].append(value)

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class OAuthRequest(OAuth2Request):  # type: ignore[misc]
    def __init__(self, prepared: Prepared) -> None:
        # Raises InsecureTransportError unless the URL is https or on loopback.
        super().__init__(prepared.method, prepared.url, headers=prepared.headers)
        self.payload = Payload(prepared.query + prepared.form)
        self._args = dict(reversed(prepared.query))  # first value wins, as in `Payload`
        self._form = dict(reversed(prepared.form))

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


class JsonBody(JsonPayload):  # type: ignore[misc]
    def __init__(self, body: bytes) -> None:
        self._data: Any = json.loads(body) if body else {}

    @property
    def data(self) -> Any:
        return self._data


class OAuthJsonRequest(JsonRequest):  # type: ignore[misc]
    def __init__(self, prepared: Prepared) -> None:
        super().__init__(prepared.method, prepared.url, prepared.headers)
        self.payload = JsonBody(prepared.body)
