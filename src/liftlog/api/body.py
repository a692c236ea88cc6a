"""Reading a request body under a size limit that holds after decompression.

The limit is enforced while reading: an oversized ``Content-Length`` is refused before a byte of
the body is read, and a gzip body is inflated chunk by chunk with ``max_length``, so a compressed
bomb never makes liftlog hold more than ``limit`` decoded bytes (plus one chunk).
"""

from __future__ import annotations

import zlib
from typing import Any

from liftlog.errors import InvalidInput, PayloadTooLarge, Problem, UnsupportedMediaType

#: Inflate at most this much per step; a step past the limit is never taken.
_STEP = 256 * 1024


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The request body is larger than {limit} bytes (after decompression).",
        [Problem("$", f"body exceeds {limit} bytes")],
    )


async def read_body(
    receive: Any, limit: int, content_length: int | None, content_encoding: bytes | None
) -> bytes:
    encoding = (content_encoding or b"identity").strip().lower()
    if encoding in (b"gzip", b"x-gzip"):
        inflater: Any = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif encoding == b"deflate":
        inflater = zlib.decompressobj()
    elif encoding == b"identity":
        inflater = None
    else:
        raise UnsupportedMediaType(
            "Content-Encoding must be gzip, deflate or identity.",
            [Problem("content-encoding", f"unsupported encoding {encoding.decode('latin-1')!r}")],
        )
    if content_length is not None and content_length > limit and inflater is None:
        raise too_large(limit)

    # Deflate expands incompressible data by at most ~0.03% plus headers, so a compressed body
    # much larger than the limit can't inflate to less than it.
    wire_limit = limit if inflater is None else limit + limit // 256 + 1024
    chunks: list[bytes] = []
    size = 0
    received = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InvalidInput("The client disconnected before sending the whole body.")
        data: bytes = message.get("body", b"")
        more = message.get("more_body", False)
        received += len(data)
        if received > wire_limit:
            raise too_large(limit)
        if inflater is None:
            chunks.append(data)
            size += len(data)
            continue
        try:
            while data:
                out = inflater.decompress(data, _STEP)
                size += len(out)
                if size > limit:
                    raise too_large(limit)
                chunks.append(out)
                data = inflater.unconsumed_tail
        except zlib.error as exc:
            raise InvalidInput(
                "The body is not valid compressed data.",
                [Problem("content-encoding", f"could not decompress: {exc}")],
            ) from None
    if inflater is not None and not inflater.eof:
        raise InvalidInput(
            "The compressed body is truncated.",
            [Problem("content-encoding", "the compressed stream ends early")],
        )
    return b"".join(chunks)
