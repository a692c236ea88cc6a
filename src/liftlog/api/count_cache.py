"""Counts kept between results requests, so that the same question is not counted twice.

Counting an experiment reads every event of the lake (seconds at 10M events), and the same counts
answer many requests: the page and the API, each of the three methods, the CSV, the list of
experiments. What an entry may be reused for:

* while the lake's tables are at the versions it was counted from, always: the counts are a
  function of the experiment's `CountingSpec` (part of the key) and of that snapshot;
* after the lake changed, only if counting took long (``reuse_after`` seconds or more), and for
  at most ``factor`` times as long as it took (never past ``max_age``): the results of a large
  experiment are then at most a few minutes old, and its counting takes at most about
  ``1 / factor`` of the server's time however often its page is opened. The results say when
  they were counted and whether events were loaded since (`Counted` in ``freshness``). "Took"
  is how long counting them again is expected to take where the counting says so
  (`Kept.recount_seconds`): counts kept with what brings them up to date cost an update, not
  another counting from scratch;
* once that time has passed, for ``stale_for`` seconds more while it is counted again in the
  background: a request for a large experiment then gets the counts of a few minutes ago at once
  instead of waiting for a new counting (a minute at 100M events), and the next request gets the
  new ones. Past that, or if the counting in the background failed, a request counts and waits.

With ``files`` (`liftlog.api.count_files`), entries are also written to disk and read from it
when memory has none as new, so that the workers of a server share them and a restart keeps them.

Requests for the same key wait for the one counting it instead of counting it again. A counting
holds up to about 2.5 GiB at 100M events, so at most ``max_countings`` run at once; past
``max_waiting`` requests waiting for countings, more get 503 with Retry-After instead of
holding a worker thread each.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from contextlib import AbstractContextManager, nullcontext, suppress
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from liftlog.api.count_files import CountFiles, Kept, Shape
from liftlog.errors import Unavailable

if TYPE_CHECKING:
    from liftlog.analysis.sources import Versions

#: Past this many entries, or this many cells (one variation's counts of one metric, about 360
#: bytes) in all, the least recently used entries are dropped. The daily counts of an experiment
#: with 3 variations and 5 metrics over 30 days are 450 cells; with 50 metrics over a year, 55k.
MAX_ENTRIES = 64
MAX_CELLS = 200_000
#: Countings at once, and requests waiting for countings (theirs or another's), per process.
MAX_COUNTINGS = 2
MAX_WAITING = 16


#: What a counting returns to `CountCache.get`: the value, the versions it read, the latest
#: ``process_timestamp`` in them, and `Kept.recount_seconds` (None: as long as it took).
Counting = tuple[Any, "Versions", datetime | None, float | None]


@dataclass(frozen=True, slots=True)
class Counted(Kept):
    """What one counting produced, and of which snapshot of the lake (`Kept`, what a file
    holds), with when it finished on this process's clock."""

    #: ``clock()`` when counting finished (for counts read from a file: when it would have).
    finished: float


@dataclass(frozen=True, slots=True)
class _Job:
    """What `CountCache.get` was given: what a counting of ``key`` in the background needs."""

    key: Hashable
    current: Callable[[], Versions]
    count: Callable[[], Counting]
    cells: Callable[[Any], int]
    shape: Shape | None


class CountCache:
    def __init__(
        self,
        factor: float = 10.0,
        reuse_after: float = 1.0,
        max_age: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        max_countings: int = MAX_COUNTINGS,
        max_waiting: int = MAX_WAITING,
        stale_for: float = 300.0,
        files: CountFiles | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        """``clock`` measures durations and ages; ``wall`` (epoch seconds) dates countings."""
        self.files = files
        self.wall = wall
        self.factor = factor
        self.reuse_after = reuse_after
        self.max_age = max_age
        self.stale_for = stale_for
        #: Keys being counted again in the background, with the wall-clock ms each started.
        self._recounting: dict[Hashable, int] = {}
        #: Keys whose counting in the background failed: a request counts them, and waits.
        self._failed: set[Hashable] = set()
        self.clock = clock
        self._entries: OrderedDict[Hashable, Counted] = OrderedDict()
        self._cells = 0
        self._lock = threading.Lock()
        self._counting: dict[Hashable, threading.Lock] = {}
        self._slots = threading.BoundedSemaphore(max_countings)
        self.max_waiting = max_waiting
        self._waiting = 0

    @property
    def waiting(self) -> int:
        """Requests counting or waiting for a counting now."""
        return self._waiting

    def _window(self, entry: Counted) -> float:
        """How long after counting ``entry`` answers for a changed lake (seconds): by how long
        counting it again is expected to take, which is how long it took unless its counting
        said otherwise."""
        cost = entry.seconds if entry.recount_seconds is None else entry.recount_seconds
        if self.factor <= 0 or cost < self.reuse_after:
            return 0.0
        return min(self.max_age, self.factor * cost)

    def _usable(self, entry: Counted, current: Versions) -> bool:
        if entry.versions == current:
            return True
        window = self._window(entry)
        return window > 0 and self.clock() - entry.finished <= window

    def recount_by_ms(self, entry: Counted) -> int:
        """Epoch ms by which events loaded after ``entry`` was counted are counted (about: a
        counting in the background is expected to take as long as ``entry``'s did)."""
        with self._lock:
            started = next(
                (ms for key, ms in self._recounting.items() if self._entries.get(key) is entry),
                None,
            )
        if started is None:
            return entry.counted_at_ms + round((entry.seconds + self._window(entry)) * 1000)
        return started + round(entry.seconds * 1000)

    def _may_answer_while_recounted(self, entry: Counted) -> bool:
        window = self._window(entry)
        return window > 0 and self.clock() - entry.finished <= window + self.stale_for

    def peek(
        self, key: Hashable, current: Versions, while_recounted: bool = False
    ) -> Counted | None:
        """The entry for ``key`` if it may answer now (``while_recounted``: or once `get` has
        started counting it again); never counts."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if not self._usable(entry, current) and not (
                while_recounted and self._may_answer_while_recounted(entry)
            ):
                return None
            self._entries.move_to_end(key)
            return entry

    def get(
        self,
        key: Hashable,
        current: Callable[[], Versions],
        count: Callable[[], Counting],
        cells: Callable[[Any], int] = lambda value: 1,
        shape: Shape | None = None,
    ) -> Counted:
        """The entry for ``key`` if it may answer now, else a new one from ``count``, which
        returns the value, the versions it read, the latest ``process_timestamp`` in them and
        how long counting it again is expected to take (`Kept.recount_seconds`; None: as long
        as it took);
        ``cells`` says how large a value is. With ``files`` and a ``shape``, entries are also
        read from and written to disk."""
        job = _Job(key, current, count, cells, shape)
        entry = self.peek(key, current())
        if entry is not None:
            return entry
        self._adopt(job)
        entry = self.peek(key, current()) or self._while_recounted(job)
        if entry is not None:
            return entry
        with self._lock:
            if self._waiting >= self.max_waiting:
                raise Unavailable("Too many results are being counted; retry shortly.", 5)
            self._waiting += 1
        try:
            return self._count(job)
        finally:
            with self._lock:
                self._waiting -= 1

    def _adopt(self, job: _Job) -> None:
        if job.shape is not None:
            self.load(job.key, job.shape)

    def load(self, key: Hashable, shape: Shape) -> None:
        """Take the entry on disk for ``key`` if it is newer than the one in memory."""
        if self.files is None:
            return
        with self._lock:
            mine = self._entries.get(key)
        kept = self.files.read(key, shape, -1 if mine is None else mine.counted_at_ms)
        if kept is None:
            return
        with self._lock:
            mine = self._entries.get(key)
            if mine is not None and mine.counted_at_ms >= kept.counted_at_ms:
                return
            ago = max(0.0, self.wall() - (kept.counted_at_ms / 1000 + kept.seconds))
            self._store(key, Counted(
                kept.value, kept.versions, kept.counted_at_ms, kept.seconds,
                kept.latest_received, kept.cells, self.clock() - ago,
                recount_seconds=kept.recount_seconds,
            ))  # fmt: skip

    def _count(self, job: _Job) -> Counted:
        with self._lock:
            gate = self._counting.setdefault(job.key, threading.Lock())
        # One counting per key: in this process, the others wait for it and take its result;
        # across processes sharing ``files``, they wait on its lock file and read its file.
        with gate, self._file_lock(job):
            self._adopt(job)
            entry = self.peek(job.key, job.current())
            if entry is not None:
                return entry
            with self._slots:
                started_ms, start = int(self.wall() * 1000), self.clock()
                counting = job.count()
                finished = self.clock()
            value, versions, latest, recount = counting
            entry = Counted(
                value, versions, started_ms, finished - start, latest, job.cells(value), finished,
                recount_seconds=recount,
            )  # fmt: skip
            with self._lock:
                self._store(job.key, entry)
                self._counting.pop(job.key, None)
                self._failed.discard(job.key)
            self._write(job, entry)
            return entry

    def _file_lock(self, job: _Job) -> AbstractContextManager[None]:
        if self.files is None or job.shape is None:
            return nullcontext()
        return self.files.lock(job.key)

    def _write(self, job: _Job, entry: Counted) -> None:
        if self.files is None or job.shape is None:
            return
        with suppress(OSError):  # a full disk: the counts still answer from memory
            self.files.write(job.key, entry, job.shape)

    def _while_recounted(self, job: _Job) -> Counted | None:
        """The entry for ``job.key`` if it may answer while it is counted again, which this
        starts in the background unless it runs already; None if a request must count and
        wait."""
        with self._lock:
            entry = self._entries.get(job.key)
            if (
                entry is None
                or job.key in self._failed
                or not self._may_answer_while_recounted(entry)
            ):
                return None
            self._entries.move_to_end(job.key)
            if job.key in self._recounting:
                return entry
            self._recounting[job.key] = int(self.wall() * 1000)
        threading.Thread(
            target=self._recount, args=(job, entry), name="liftlog-recount", daemon=True
        ).start()
        return entry

    def _recount(self, job: _Job, stale: Counted) -> None:
        try:
            self._count(job)
        except BaseException:
            with self._lock:  # the next request counts, and gets the error if it recurs
                self._failed.add(job.key)
                if self._entries.get(job.key) is stale:
                    self._cells -= self._entries.pop(job.key).cells
            raise  # to threading.excepthook, which prints it on stderr
        finally:
            with self._lock:
                self._recounting.pop(job.key, None)

    def _store(self, key: Hashable, entry: Counted) -> None:
        """Keep ``entry``; drop the least recently used ones past the limits (never ``entry``)."""
        old = self._entries.pop(key, None)
        self._cells -= old.cells if old is not None else 0
        self._entries[key] = entry
        self._cells += entry.cells
        while len(self._entries) > 1 and (
            len(self._entries) > MAX_ENTRIES or self._cells > MAX_CELLS
        ):
            _, dropped = self._entries.popitem(last=False)
            self._cells -= dropped.cells
