"""Reading segment files: frames, damage, torn tails, and positions in a writer's log.

A writer's log is a directory of segments named ``<seq>.seg`` (20 digits, so names sort by seq).
A position is ``(seq, offset)``; `Position.version` packs it into one increasing integer, used as
the Delta application-transaction version of the loader.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from liftlog.rawlog.record import HEADER, HEADER_SIZE, MAGIC, MAX_PAYLOAD

SUFFIX = ".seg"
#: Offsets must fit in 32 bits for `Position.version`; segments rotate long before that.
MAX_SEGMENT_BYTES = 1 << 30


@dataclass(frozen=True, slots=True, order=True)
class Position:
    seq: int
    offset: int

    @property
    def version(self) -> int:
        return (self.seq << 32) | self.offset

    @classmethod
    def from_version(cls, version: int) -> Position:
        return cls(version >> 32, version & 0xFFFFFFFF)

    def __str__(self) -> str:
        return f"{self.seq}:{self.offset}"


@dataclass(frozen=True, slots=True)
class Frame:
    start: Position
    end: Position
    payload: bytes


@dataclass(frozen=True, slots=True)
class Damage:
    """Bytes between two valid frames that are not a frame (disk damage, not a torn tail)."""

    start: Position
    end: Position
    data: bytes


def segment_path(directory: Path, seq: int) -> Path:
    return directory / f"{seq:020d}{SUFFIX}"


def list_segments(directory: Path) -> list[int]:
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    return sorted(int(n[: -len(SUFFIX)]) for n in names if n.endswith(SUFFIX) and n[:-4].isdigit())


def _frame_at(buf: bytes | memoryview, pos: int) -> int | None:
    """End offset of a valid frame starting at ``pos``; None if there is none (yet)."""
    if len(buf) - pos < HEADER_SIZE:
        return None
    magic, length, crc = HEADER.unpack_from(buf, pos)
    length = int(length)
    if magic != MAGIC or length > MAX_PAYLOAD:
        return None
    end = pos + HEADER_SIZE + length
    if end > len(buf) or zlib.crc32(buf[pos + HEADER_SIZE : end]) != crc:
        return None
    return end


def scan(buf: bytes, base: int = 0) -> tuple[list[tuple[int, int, bytes | None]], int]:
    """Split ``buf`` (bytes of a segment from offset ``base``) into frames and damage.

    Returns ``(items, tail)``: items are ``(start, end, payload)`` for frames and
    ``(start, end, None)`` for damaged bytes followed by a valid frame; ``tail`` is the offset of
    the first byte that is not part of a complete frame (``base + len(buf)`` when all are).
    Bytes from ``tail`` on are either a write still in progress or a torn tail.
    """
    view = memoryview(buf)
    items: list[tuple[int, int, bytes | None]] = []
    pos = 0
    while pos < len(buf):
        end = _frame_at(view, pos)
        if end is not None:
            items.append((base + pos, base + end, bytes(view[pos + HEADER_SIZE : end])))
            pos = end
            continue
        nxt = buf.find(MAGIC, pos + 1)
        while nxt != -1 and _frame_at(view, nxt) is None:
            nxt = buf.find(MAGIC, nxt + 1)
        if nxt == -1:
            break
        items.append((base + pos, base + nxt, None))
        pos = nxt
    return items, base + pos


def read_frames(
    directory: Path, start: Position, max_bytes: int = 8 << 20
) -> tuple[list[Frame | Damage], Position]:
    """Read complete frames from ``start`` on, about ``max_bytes`` of them, across segments.

    Returns the frames (and damage) and the position to read from next time. A segment is
    finished only once a later segment exists: the writer creates the next segment after the
    last write to the previous one, so checking for it *before* reading makes the read complete.
    Bytes after the last frame of a finished segment are a torn tail that no client was told
    was stored, and are passed over.
    """
    out: list[Frame | Damage] = []
    pos = start
    budget = max_bytes
    segments = list_segments(directory)
    for i, seq in enumerate(segments):
        if seq < pos.seq:
            continue
        if seq > pos.seq:
            pos = Position(seq, 0)
        sealed = i + 1 < len(segments) or len(list_segments(directory)) > len(segments)
        with open(segment_path(directory, seq), "rb") as f:
            f.seek(pos.offset)
            chunk = f.read(budget)
            items, tail = scan(chunk, pos.offset)
            if not items and len(chunk) == budget:
                # One frame larger than the budget: read exactly what it needs.
                f.seek(pos.offset)
                chunk = f.read(HEADER_SIZE + MAX_PAYLOAD)
                items, tail = scan(chunk, pos.offset)
        at_eof = len(chunk) < budget
        for s, e, payload in items:
            a, b = Position(seq, s), Position(seq, e)
            if payload is None:
                out.append(Damage(a, b, chunk[s - pos.offset : e - pos.offset]))
            else:
                out.append(Frame(a, b, payload))
        budget -= tail - pos.offset
        pos = Position(seq, tail)
        if not sealed or not at_eof or budget <= 0:
            break
    return out, pos


def iter_all(directory: Path) -> Iterator[Frame | Damage]:
    """Every frame in the log, oldest first (for tests, recovery and replay tools)."""
    pos = Position(0, 0)
    while True:
        items, nxt = read_frames(directory, pos)
        yield from items
        if nxt == pos:
            return
        pos = nxt
