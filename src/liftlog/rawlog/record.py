"""One raw-log record: the exact body a client sent, and what liftlog knew when it arrived.

On disk a record is a frame::

    magic  b"LLR1"   4 bytes   lets a reader find the next frame after damaged bytes
    length u32 LE    4 bytes   payload length
    crc    u32 LE    4 bytes   CRC-32 of the payload
    payload          msgpack of `RawRecord` (an array, fields in declaration order)

A frame whose bytes run past the end of the file, or whose CRC does not match, was never
acknowledged if it is the last thing in the file (a torn tail); anywhere else it is damage.
"""

from __future__ import annotations

import ipaddress
import struct
import zlib
from enum import IntEnum

import msgspec

MAGIC = b"LLR1"
HEADER = struct.Struct("<4sII")
HEADER_SIZE = HEADER.size
#: A payload can't be larger than a request body plus its metadata; anything bigger is damage.
MAX_PAYLOAD = 16 * 1024 * 1024


class Endpoint(IntEnum):
    V1_EVENTS = 1  # POST /v1/events, body = decoded JSON
    LEGACY_GET = 2  # GET /event, body = the query string


class RawRecord(msgspec.Struct, array_like=True, frozen=True):
    received_ms: int
    endpoint: int
    body: bytes
    client_ip: str | None = None
    user_agent: str | None = None
    referer: str | None = None


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(RawRecord)


def encode_frame(record: RawRecord) -> bytes:
    payload = _encoder.encode(record)
    return HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload


def decode_payload(payload: bytes) -> RawRecord:
    return _decoder.decode(payload)


def anonymize_ip(ip: str | None) -> str | None:
    """Zero the last octet of an IPv4 address (the last 80 bits of an IPv6 address)."""
    if not ip:
        return ip
    if ":" not in ip:
        head, _, _ = ip.rpartition(".")
        return f"{head}.0" if head else ip
    try:
        addr = ipaddress.IPv6Address(ip)
    except ValueError:
        return None
    return str(ipaddress.IPv6Address(int(addr) >> 80 << 80))
