"""Counts kept on disk, so that the workers of a server share them and a restart keeps them.

`liftlog.api.count_cache` keeps counts in a server process's memory. These files, one per key
under ``<data>/counts``, let a worker answer from what another counted and a restarted server
answer from what it counted before, instead of counting again: about a minute at 100M events.
A counting of a key holds the key's lock file, so workers asking together count it once.

A file is only read for the exact key it was written for: the experiment's `CountingSpec` and
the segment (what the counts are a function of, with the lake's versions, which the file
holds), and a digest of the code that counts, so that counts made by another version of
liftlog are never taken for this one's; and only for the same lake (its tables' Delta ids:
a lake loaded again from the raw log can reach the same versions with other files). Files are
JSON (msgspec; integers of any size and floats come back exactly), written to a temporary file
and renamed into place. Past `MAX_FILES` files, the least recently written go.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import importlib.util
import os
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec

import liftlog

#: Files kept at most (one per experiment and segment asked for, and one per experiment's days).
MAX_FILES = 256

SUFFIX = ".json"

#: The modules whose code decides what counts are.
COUNTING_MODULES = (
    "liftlog.analysis.counting",
    "liftlog.analysis.counts",
    "liftlog.analysis.incremental",
    "liftlog.analysis.sources",
    "liftlog.rules.counting",
)


@functools.cache
def code_digest() -> str:
    """A digest of liftlog's version and of the source of `COUNTING_MODULES`, read from their
    files without importing them (the server imports the analysis stack only when it counts)."""
    digest = hashlib.sha256(liftlog.__version__.encode())
    for name in COUNTING_MODULES:
        found = importlib.util.find_spec(name)
        if found is None or found.origin is None:  # pragma: no cover - a broken installation
            raise RuntimeError(f"no source for {name}")
        digest.update(Path(found.origin).read_bytes())
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class Shape:
    """How a kept value is written: ``to_wire`` makes it what msgspec encodes, ``type`` is what
    that decodes as, and ``from_wire`` makes the value again."""

    type: Any
    to_wire: Callable[[Any], Any]
    from_wire: Callable[[Any], Any]


class _Header(msgspec.Struct, frozen=True):
    key: str
    #: What `CountFiles.identity` said when the counts were written.
    identity: list[str | None] | None
    versions: list[int | None]
    counted_at_ms: int
    seconds: float
    latest_received: datetime | None
    cells: int
    recount_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class Kept:
    """What one counting produced, and of which snapshot of the lake: what a file holds. In
    memory, `liftlog.api.count_cache.Counted` adds when it finished on a process's clock, which
    no other process shares."""

    value: Any
    #: The lake's versions counted (`liftlog.analysis.sources.Versions`).
    versions: tuple[int | None, ...]
    #: Wall-clock epoch ms when counting started, and how long it took.
    counted_at_ms: int
    seconds: float
    #: The latest ``process_timestamp`` in the snapshot counted (None: nothing loaded).
    latest_received: datetime | None
    #: Its size, in cells (see `liftlog.api.count_cache.MAX_CELLS`).
    cells: int
    #: How long counting it again is expected to take, where that is not ``seconds`` (a
    #: counting from scratch that kept what an update needs: `liftlog.api.reports`).
    recount_seconds: float | None = field(default=None, kw_only=True)


class CountFiles:
    def __init__(
        self,
        directory: Path,
        identity: Callable[[], list[str | None] | None] = lambda: None,
        max_files: int = MAX_FILES,
    ) -> None:
        """``identity`` names the lake the counts are of (its tables' ids): counts of another
        lake with the same versions, such as one loaded again from the raw log, are not read."""
        self.directory = directory
        self.identity = identity
        self.max_files = max_files

    def _name(self, key: Hashable) -> tuple[str, str]:
        """The file stem of ``key`` and the text it is named by."""
        text = msgspec.json.encode([code_digest(), key]).decode()
        return hashlib.sha256(text.encode()).hexdigest()[:32], text

    @contextmanager
    def lock(self, key: Hashable) -> Iterator[None]:
        """Hold ``key``'s lock file: one counting of a key at a time across processes. Where
        none can be made (a read-only data directory), processes count on their own."""
        stem, _ = self._name(key)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.directory / f"{stem}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            yield
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def read(self, key: Hashable, shape: Shape, newer_than_ms: int = -1) -> Kept | None:
        """What was kept for ``key`` if it was counted after ``newer_than_ms``; None if nothing
        was, or not by this code, or the file can't be read (it is then counted again and
        written anew)."""
        stem, text = self._name(key)
        try:
            raw = (self.directory / f"{stem}{SUFFIX}").read_bytes()
            header_bytes, value_bytes = raw.split(b"\n", 1)
            header = msgspec.json.decode(header_bytes, type=_Header)
            if header.key != text or header.counted_at_ms <= newer_than_ms:
                return None  # another key with the same digest prefix, or no newer
            if header.identity != self.identity():
                return None  # counts of another lake
            value = shape.from_wire(msgspec.json.decode(value_bytes, type=shape.type))
        except (OSError, ValueError):  # missing, torn by a crash, or of another layout
            return None
        return Kept(
            value, tuple(header.versions), header.counted_at_ms, header.seconds,
            header.latest_received, header.cells, recount_seconds=header.recount_seconds,
        )  # fmt: skip

    def write(self, key: Hashable, kept: Kept, shape: Shape) -> None:
        stem, text = self._name(key)
        header = _Header(
            text, self.identity(), list(kept.versions), kept.counted_at_ms, kept.seconds,
            kept.latest_received, kept.cells, kept.recount_seconds,
        )  # fmt: skip
        body = msgspec.json.encode(header) + b"\n" + msgspec.json.encode(shape.to_wire(kept.value))
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / f"{stem}{SUFFIX}"
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        try:
            tmp.write_bytes(body)
            os.replace(tmp, target)
        except OSError:  # a full disk: leave no partial file behind
            tmp.unlink(missing_ok=True)
            raise
        self._prune()

    def _prune(self) -> None:
        for tmp in self.directory.glob("*.tmp"):  # left by a process killed while writing
            with suppress(FileNotFoundError):
                if time.time() - tmp.stat().st_mtime > 3600:
                    tmp.unlink()
        files = []
        for path in self.directory.glob(f"*{SUFFIX}"):
            try:
                files.append((path.stat().st_mtime, path))
            except FileNotFoundError:  # another process pruned it meanwhile
                continue
        for _, path in sorted(files)[: max(0, len(files) - self.max_files)]:
            path.unlink(missing_ok=True)
            path.with_suffix(".lock").unlink(missing_ok=True)
