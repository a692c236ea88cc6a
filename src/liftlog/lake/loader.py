"""The loader: raw-log records → rows → Delta tables, in batches, exactly once.

Exactly once across crashes: every Delta commit carries, for each raw-log writer whose records it
holds, an application transaction ``(app_id="liftlog-rawlog:<writer>", version=<end position>)``.
The checkpoint file of each writer is only a hint of where to start reading; a record is written
to a table only if its end position is past that table's transaction version. So a crash between
a Delta commit and the checkpoint (or between the commits of two tables) replays records without
duplicating a row, and nothing acknowledged is skipped.

Batches: at least ``batch_rows`` rows, or whatever is waiting once the oldest record has waited
``max_wait`` seconds. ``POST /v1/events`` records are normalised a whole batch at a time
(`liftlog.lake.normalize`: columns built from msgspec-decoded bodies); the few legacy
``GET /event`` records row by row in Python (`liftlog.wire.rows`). Records that can't be
normalised go to ``rejects`` with their reason.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake.exceptions import TableNotFoundError

from liftlog.errors import InvalidInput
from liftlog.lake.normalize import V1Records, normalise
from liftlog.lake.schema import PARTITION_BY, SCHEMAS, TABLES
from liftlog.rawlog.record import Endpoint, decode_payload
from liftlog.rawlog.segments import Damage, Frame, Position, read_frames
from liftlog.settings import Settings
from liftlog.wire.legacy import parse_query
from liftlog.wire.rows import Meta, Rows, add_legacy

APP_PREFIX = "liftlog-rawlog:"
CHECKPOINT = "loaded.json"
#: In the lake directory: held by the one loader of a lake.
LOADER_LOCK = "loader.lock"


#: Rows per batch. 10k rows (the least a batch may hold) loaded as fast as 30k in the same run
#: (48–63k against 49k events/s) with 50–70 MiB less at peak (310 against 363–381 MiB).
BATCH_ROWS = 10_000


def app_id(writer: str) -> str:
    return APP_PREFIX + writer


def read_checkpoint(directory: Path) -> Position:
    try:
        data = json.loads((directory / CHECKPOINT).read_text())
    except FileNotFoundError:
        return Position(0, 0)
    return Position(int(data["seq"]), int(data["offset"]))


def write_checkpoint(directory: Path, pos: Position) -> None:
    tmp = directory / (CHECKPOINT + ".tmp")
    with open(tmp, "w") as f:
        json.dump({"seq": pos.seq, "offset": pos.offset}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, directory / CHECKPOINT)


def list_writers(rawlog_dir: Path) -> list[str]:
    try:
        return sorted(p.name for p in rawlog_dir.iterdir() if p.is_dir())
    except FileNotFoundError:
        return []


#: Properties of liftlog's tables. Delta keeps 30 days of commit files by default: at a commit
#: every 2 s, 1.3M files per table, and opening a table lists them all (5.4 ms at 200 commits,
#: 19.9 ms at 5,000 on the machine of docs/performance.md). The raw log, not Delta's history, is
#: liftlog's record, so an hour of commits is kept: Delta removes older ones when it writes a
#: checkpoint (every 100 commits), and a reader that opened the table at the checkpoint before
#: still finds what it reads.
TABLE_PROPERTIES = {"delta.logRetentionDuration": "interval 1 hour"}


def open_table(path: Path) -> DeltaTable | None:
    try:
        return DeltaTable(str(path))
    except TableNotFoundError:
        return None


class Loader:
    def __init__(
        self,
        settings: Settings,
        batch_rows: int = BATCH_ROWS,
        max_wait: float = 1.0,
        compact_every: int = 50,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.batch_rows = batch_rows
        self.max_wait = max_wait
        self.compact_every = compact_every
        self.clock = clock
        settings.lake_dir.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(settings.lake_dir / LOADER_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)  # one loader per lake; a second one waits
        self._tables: dict[str, DeltaTable | None] = {
            t: open_table(settings.lake_dir / t) for t in TABLES
        }
        for table in self._tables.values():  # tables made before the properties were set
            if table is not None:
                have = table.metadata().configuration
                if any(have.get(key) != value for key, value in TABLE_PROPERTIES.items()):
                    table.alter.set_table_properties(TABLE_PROPERTIES)
        self._positions: dict[str, Position] = {}
        self._rows = Rows()
        self._v1 = V1Records()
        self._pending_records = 0
        self._pending_since: float | None = None
        self._batch_end: dict[str, Position] = {}
        self._commits_since_compact = 0
        self._stop = False
        self.loaded_records = 0
        #: Per writer, the versions `_done_versions` read when the writer was first seen.
        self._done: dict[str, dict[str, int]] = {}
        # Batches are committed by one thread while the next one is read and normalised: the
        # Delta writer runs in Rust without the GIL, so the two overlap on a second core.
        self._committer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="liftlog-commit")
        self._commit: Future[None] | None = None
        self._failed: BaseException | None = None

    # -- reading ------------------------------------------------------------------------------

    def _done_versions(self, writer: str) -> dict[str, int]:
        """Per table, the end position (as a version) of the last record committed from writer.

        Read once per writer: the records read afterwards start where those left off, so they
        are past these versions, whatever this loader commits meanwhile.
        """
        done = self._done.get(writer)
        if done is None:
            self.wait()  # read the tables between commits, not during one
            done = {}
            for name, table in self._tables.items():
                version = table.transaction_version(app_id(writer)) if table is not None else None
                done[name] = -1 if version is None else version
            self._done[writer] = done
        return done

    def step(self, max_bytes: int = 8 << 20) -> int:
        """Read what waits in the raw logs (about ``max_bytes``) into the pending batch."""
        self._check()
        read = 0
        for writer in list_writers(self.settings.rawlog_dir):
            directory = self.settings.rawlog_dir / writer
            start = self._positions.get(writer)
            if start is None:
                start = read_checkpoint(directory)
            items, end = read_frames(directory, start, max_bytes)
            self._positions[writer] = end
            if not items:
                if end != start and self._pending_records == 0:
                    self.wait()  # its checkpoint would move this one back
                    write_checkpoint(directory, end)  # passed over a torn tail
                continue
            done = self._done_versions(writer)
            for item in items:
                self._add(writer, item, done)
            self._batch_end[writer] = end
            read += len(items)
        if read and self._pending_since is None:
            self._pending_since = self.clock()
        self._pending_records += read
        return read

    def _add(self, writer: str, item: Frame | Damage, done: dict[str, int]) -> None:
        version = item.end.version
        need = [t for t in TABLES if version > done[t]]
        if not need:
            return
        position = f"{writer}:{item.start}"
        rows = self._rows if len(need) == len(TABLES) else Rows()
        if isinstance(item, Damage):
            meta = Meta(received_ms=int(time.time() * 1000), position=position)
            rows.reject(
                meta, "rawlog", "corrupt_rawlog", f"{len(item.data)} damaged bytes", item.data
            )
        else:
            v1 = _normalise(rows, item.payload, position)
            if v1 is not None:
                self._v1.add(
                    v1[0], v1[1], (TABLES[0] in need, TABLES[1] in need, TABLES[2] in need)
                )
                return
        if rows is not self._rows:
            for t in need:
                src, dst = getattr(rows, t), getattr(self._rows, t)
                for column, values in zip(dst.data, src.data, strict=True):
                    column.extend(values)

    # -- writing ------------------------------------------------------------------------------

    @property
    def pending_rows(self) -> int:
        python = len(self._rows.decisions) + len(self._rows.conversions) + len(self._rows.rejects)
        return python + self._v1.events

    def due(self) -> bool:
        if self._pending_records == 0:
            return False
        if self.pending_rows >= self.batch_rows:
            return True
        return (
            self._pending_since is not None and self.clock() - self._pending_since >= self.max_wait
        )

    def flush(self) -> int:
        """Normalise the pending batch and hand it to the committer; return its record count.

        The committer commits it to every table that has rows, then moves the checkpoints, after
        the batch before it; `wait` waits for that.
        """
        self._check()
        records = self._pending_records
        if records == 0:
            return 0
        txns = [Transaction(app_id(w), end.version) for w, end in self._batch_end.items()]
        tables: dict[str, list[pa.Table]] = {name: [] for name in TABLES}
        if self._v1:
            v1 = normalise(self._v1, self._rows)
            tables["decisions"].append(v1.decisions)
            tables["conversions"].append(v1.conversions)
            self._rows.rejects.sort(_log_order)  # v1 rejects were added last
        for name in TABLES:
            columns = getattr(self._rows, name)
            if len(columns):
                tables[name].append(pa.Table.from_pydict(columns.as_dict(), schema=SCHEMAS[name]))
        batch = {name: pa.concat_tables(parts) for name, parts in tables.items() if parts}
        ends = self._batch_end
        self._rows = Rows()
        self._v1 = V1Records()
        self._batch_end = {}
        self._pending_records = 0
        self._pending_since = None
        self.wait()
        self._commit = self._committer.submit(self._write, batch, txns, ends, records)
        self._commits_since_compact += 1
        return records

    def _write(
        self,
        batch: dict[str, pa.Table],
        txns: list[Transaction],
        ends: dict[str, Position],
        records: int,
    ) -> None:
        for name, table in batch.items():
            if table.num_rows == 0:
                continue
            path = str(self.settings.lake_dir / name)
            target = self._tables[name]
            write_deltalake(
                path if target is None else target,  # the open table is brought up to date
                table,
                mode="append",
                partition_by=PARTITION_BY,
                configuration=TABLE_PROPERTIES if target is None else None,
                commit_properties=CommitProperties(app_transactions=txns),
            )
            if target is None:
                self._tables[name] = DeltaTable(path)
        for writer, end in ends.items():
            write_checkpoint(self.settings.rawlog_dir / writer, end)
        self.loaded_records += records

    def wait(self) -> None:
        """Wait until the batch being committed is in the tables and checkpointed.

        Raises what the commit raised. The loader is then done for: the records it had read past
        the last checkpoint are in no table, and only a new loader reads them again.
        """
        commit, self._commit = self._commit, None
        if commit is not None:
            try:
                commit.result()
            except BaseException as exc:
                self._failed = exc
                raise

    def _check(self) -> None:
        if self._failed is not None:
            raise RuntimeError("a commit of this loader failed: load with a new one") from (
                self._failed
            )

    def compact(self) -> None:
        """Merge the small files of many small batches into larger ones.

        The files they replace stay readable for Delta's default retention (7 days), for readers
        of older versions, and are removed by the vacuum of a later compaction.
        """
        self.wait()
        for name, table in self._tables.items():
            if table is not None:
                table.optimize.compact()
                table = DeltaTable(str(self.settings.lake_dir / name))
                table.vacuum(dry_run=False)
                self._tables[name] = table
        self._commits_since_compact = 0

    # -- running ------------------------------------------------------------------------------

    def drain(self, progress: Callable[[int], None] | None = None) -> int:
        """Load everything that is in the raw logs now; return how many records were loaded.

        ``progress`` is called with the records handed to be written so far, after each batch.
        """
        total = 0
        while self.step():
            if self.pending_rows >= self.batch_rows:
                total += self.flush()
                if progress is not None:
                    progress(total)
        total += self.flush()
        self.wait()
        if progress is not None:
            progress(total)
        return total

    def stop(self, *_: Any) -> None:
        self._stop = True

    def run_forever(self, parent_pid: int | None = None, poll: float = 0.05) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        while not self._stop:
            read = self.step()
            if self.due():
                self.flush()
                if self._commits_since_compact >= self.compact_every:
                    self.compact()
            if not read:
                if parent_pid is not None and os.getppid() != parent_pid:
                    break  # the server is gone: stop, another loader takes over with it
                time.sleep(poll)
        self.flush()
        self.wait()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self._committer.shutdown()
            os.close(self._lock_fd)


def _normalise(rows: Rows, payload: bytes, position: str) -> tuple[Meta, bytes] | None:
    """Add the rows of a legacy or unreadable record; return a v1 record's meta and body."""
    try:
        record = decode_payload(payload)
    except msgspec.DecodeError as exc:
        meta = Meta(received_ms=int(time.time() * 1000), position=position)
        rows.reject(meta, "rawlog", "undecodable_record", str(exc), payload)
        return None
    meta = Meta(
        received_ms=record.received_ms,
        position=position,
        client_ip=record.client_ip,
        user_agent=record.user_agent,
        referer=record.referer,
    )
    if record.endpoint == Endpoint.V1_EVENTS:
        return meta, record.body
    if record.endpoint != Endpoint.LEGACY_GET:
        rows.reject(meta, str(record.endpoint), "unknown_endpoint", "", record.body)
        return None
    try:
        add_legacy(rows, parse_query(record.body.decode("latin-1")), meta)
    except InvalidInput as exc:
        detail = "; ".join(f"{d.path}: {d.problem}" for d in exc.details) or exc.message
        rows.reject(meta, "legacy", "invalid_body", detail, record.body)
    except MemoryError:
        raise
    except Exception as exc:  # a case the legacy rules miss: kept, and loading goes on
        detail = f"the loader could not make rows of it: {type(exc).__name__}: {exc}"
        rows.reject(meta, "legacy", "unloadable_record", detail, record.body)
    return None


def _log_order(position: str) -> tuple[str, int, int]:
    """Sort key of a ``rawlog_position`` (``writer:seq:offset``): the order of the raw log."""
    writer, seq, offset = position.rsplit(":", 2)
    return writer, int(seq), int(offset)


#: The loader yields the CPU to the server: a request waiting on the collector matters more than
#: a second of freshness in the lake. Under full load it falls behind and catches up when the load
#: drops (the raw log holds what waits; results say how much in their freshness).
LOADER_NICENESS = 19


def run_loader_process(settings: Settings, parent_pid: int) -> None:
    """Entry point of the loader process that ``liftlog serve`` starts beside the server."""
    os.nice(LOADER_NICENESS)
    loader = Loader(settings)
    try:
        loader.run_forever(parent_pid=parent_pid)
    finally:
        loader.close()
