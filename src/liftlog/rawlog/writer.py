"""The raw-log writer: append a frame, return once it is on disk, with one fdatasync per group.

Group commit: requests append frames to an in-memory buffer and wait. One flusher at a time takes
the whole buffer, writes it and calls ``fdatasync`` in a worker thread, then wakes every request
of that group. Requests arriving during a flush form the next group, so under load one sync
covers many requests and an idle server syncs each request at once (no timer, no added latency).

Failure: if a write or sync fails (disk full, I/O error), the file is cut back to its last good
length, the waiting requests get `Unavailable` (HTTP 503, resend later) and the next group starts
a new segment. The buffer is bounded: past ``max_pending_bytes`` appends fail with `Unavailable`
at once instead of growing memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from liftlog.errors import Unavailable
from liftlog.rawlog.record import RawRecord, encode_frame
from liftlog.rawlog.segments import (
    MAX_SEGMENT_BYTES,
    list_segments,
    scan,
    segment_path,
)

LOCK_NAME = "writer.lock"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def recover_tail(path: Path) -> int:
    """Cut a torn tail (a last frame that was never completely written) off a segment.

    Returns the number of bytes removed. Damaged bytes that are followed by valid frames are
    not a tail and are left for the reader to report.
    """
    data = path.read_bytes()
    _, tail = scan(data)
    if tail == len(data):
        return 0
    with open(path, "r+b") as f:
        f.truncate(tail)
        os.fsync(f.fileno())
    return len(data) - tail


class SegmentWriter:
    """Synchronous appends to the segments of one writer directory (used by one thread)."""

    def __init__(
        self,
        directory: Path,
        segment_bytes: int = 64 << 20,
        sync: Callable[[int], None] = os.fdatasync,
    ) -> None:
        if segment_bytes > MAX_SEGMENT_BYTES:
            raise ValueError(f"segment_bytes must be at most {MAX_SEGMENT_BYTES}")
        self.directory = directory
        self.segment_bytes = segment_bytes
        self._sync = sync
        directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise
        existing = list_segments(directory)
        self.recovered_bytes = (
            recover_tail(segment_path(directory, existing[-1])) if existing else 0
        )
        self._seq = (existing[-1] + 1) if existing else 1
        self._fd = -1
        self._size = 0

    def _open_next(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
        path = segment_path(self.directory, self._seq)
        self._seq += 1
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._size = os.fstat(self._fd).st_size
        fsync_dir(self.directory)

    def write(self, data: bytes | bytearray) -> None:
        """Append ``data`` and make it durable; on error, leave the segment as it was and raise."""
        if self._fd < 0 or (self._size and self._size + len(data) > self.segment_bytes):
            self._open_next()
        view = memoryview(data)
        good = self._size
        try:
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
            self._sync(self._fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, good)
            os.close(self._fd)
            self._fd = -1  # the next write starts a new segment
            raise
        self._size = good + len(data)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        os.close(self._lock_fd)


def open_writer(root: Path, segment_bytes: int = 64 << 20) -> SegmentWriter:
    """Take the first writer directory ``root/w<N>`` that no other process holds.

    Each server process (``--workers N``) gets a log of its own, so group commit needs no locks
    across processes, and a restarted process takes its old directory back.
    """
    for n in range(1024):
        try:
            return SegmentWriter(root / f"w{n}", segment_bytes)
        except BlockingIOError:
            continue
    raise RuntimeError(f"no free raw-log writer directory under {root}")


class RawLog:
    """Group-commit front of a `SegmentWriter`: `append` returns once the record is durable."""

    def __init__(self, writer: SegmentWriter, max_pending_bytes: int = 64 << 20) -> None:
        self.writer = writer
        self.max_pending_bytes = max_pending_bytes
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="liftlog-rawlog")
        self._buf = bytearray()
        self._waiters: list[asyncio.Future[None]] = []
        self._in_flight = 0
        self._flushing = False
        self._flush_task: asyncio.Task[None] | None = None
        self.groups = 0
        self.records = 0

    @property
    def pending_bytes(self) -> int:
        return len(self._buf) + self._in_flight

    async def append(self, record: RawRecord) -> None:
        frame = encode_frame(record)
        if self.pending_bytes + len(frame) > self.max_pending_bytes:
            raise Unavailable("The raw log's write queue is full; resend later.", retry_after=1)
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._buf += frame
        self._waiters.append(waiter)
        if not self._flushing:
            self._flushing = True
            self._flush_task = loop.create_task(self._flush())
        await waiter

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._buf:
                buf, waiters = self._buf, self._waiters
                self._buf, self._waiters = bytearray(), []
                self._in_flight = len(buf)
                try:
                    await loop.run_in_executor(self._executor, self.writer.write, buf)
                except Exception as exc:  # any failure means "not durable": the client resends
                    reason = getattr(exc, "strerror", None) or type(exc).__name__
                    error = Unavailable(f"The event could not be stored ({reason}).", 5)
                    for w in waiters:
                        if not w.done():
                            w.set_exception(error)
                else:
                    self.groups += 1
                    self.records += len(waiters)
                    for w in waiters:
                        if not w.done():
                            w.set_result(None)
                finally:
                    self._in_flight = 0
        finally:
            self._flushing = False

    async def close(self) -> None:
        while self._flushing:
            await asyncio.sleep(0.001)
        self._executor.shutdown(wait=True)
        self.writer.close()
