"""Per-visitor counting states kept between results requests, in memory and in files.

`liftlog.analysis.incremental` brings a `VisitorState` up to date from the events loaded since
it was counted, instead of counting the experiment again; this keeps the newest state of each
counting spec so that the next request can. Beside `liftlog.api.count_files` (the counts
themselves) under ``<data>/counts/states``: the workers of a server share them, and a restart
keeps them.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa

from liftlog.analysis.counting import VisitorSums, _column, _events
from liftlog.analysis.incremental import VisitorState, derivable
from liftlog.analysis.sources import Versions
from liftlog.api.count_files import code_digest
from liftlog.rules.counting import CountingSpec

#: What `States` holds in memory at most, in bytes: a state takes about 150 bytes a visitor
#: with 5 metric events (150 MB for an experiment of a million visitors). States read from
#: their files are memory-mapped: their pages are the file's, which the kernel can drop.
MAX_STATE_BYTES = 512 << 20
#: What the state files take on disk at most; past it, the least recently written go.
MAX_STATE_FILE_BYTES = 4 << 30


#: A state is of an experiment's counting spec, broken down by an attribute or not.
Key = tuple[CountingSpec, str | None]


class States:
    """The newest `VisitorState` of each counting spec and segment.

    In memory, the most recently used first, within ``max_bytes`` (a state larger than that is
    not kept in memory). With a ``directory``, also in files (Arrow IPC, one per key, written
    to a temporary file and renamed into place), so that the workers of a server share them and
    a restart keeps them; a file is only read for the same key, counted by the same code
    (`liftlog.api.count_files.code_digest`).
    """

    def __init__(
        self,
        directory: Path | None = None,
        max_bytes: int = MAX_STATE_BYTES,
        max_file_bytes: int = MAX_STATE_FILE_BYTES,
    ) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.max_file_bytes = max_file_bytes
        self._states: OrderedDict[Key, VisitorState] = OrderedDict()
        self._lock = threading.Lock()
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="liftlog-states")

    def get(self, spec: CountingSpec, segment: str | None = None) -> VisitorState | None:
        key = (spec, segment)
        with self._lock:
            state = self._states.get(key)
            if state is not None:
                self._states.move_to_end(key)
        if state is None and self.directory is not None:
            state = _read_state(self.directory, key)
            if state is not None:
                self._remember(state)
        if state is not None and self.directory is not None:
            newer = _read_state(self.directory, key, newer_than=state.versions)
            if newer is not None:  # another worker brought it further
                self._remember(newer)
                return newer
        return state

    def sibling(self, spec: CountingSpec, segment: str | None = None) -> VisitorState | None:
        """The kept state of another spec of ``spec``'s experiment (its settings changed since)
        that `liftlog.analysis.incremental.derive` may make one of ``spec`` from, by the same
        segment: if there are several, the one with the most of ``spec``'s metric events (the
        others must be read from the lake), then of the newest lake snapshot."""
        with self._lock:
            found = [
                state
                for (other, of), state in reversed(self._states.items())
                if of == segment and other != spec and derivable(other, spec)
            ]
        if self.directory is not None:
            for other in _specs_on_disk(self.directory, spec.experiment_id, segment):
                if other != spec and derivable(other, spec) and all(s.spec != other for s in found):
                    state = _read_state(self.directory, (other, segment))
                    if state is not None:
                        found.append(state)
        if not found:
            return None
        wanted = _events(spec)

        def preference(state: VisitorState) -> tuple[int, tuple[int, ...]]:
            shared = sum(e in wanted for e in _events(state.spec))
            return shared, tuple(-1 if v is None else v for v in state.versions)

        return max(found, key=preference)

    def has(self, spec: CountingSpec, segment: str | None = None) -> bool:
        """Whether a state of the key is kept, in memory or in a file (not read: a file that
        turns out unreadable makes `get` None)."""
        key = (spec, segment)
        with self._lock:
            if key in self._states:
                return True
        if self.directory is None:
            return False
        return (self.directory / f"{_state_name(key)[0]}{_SUFFIX}").exists()

    def put(self, state: VisitorState, wait: bool = True) -> None:
        """Keep ``state``; without ``wait``, write its file on this object's writer thread
        (one file at a time, in order) while it is kept in memory already: a request need not
        wait for it (1.8–4.4 s measured for 10M visitors)."""
        if self.directory is None or any(r.dtype == object for r in state.sums.revenue):
            self._remember(state)  # no file for integers past int64: kept in memory only
        elif wait:
            self._remember(self._written(state))
        else:
            self._remember(state)
            self._writer.submit(self._write_later, state)

    def flush(self) -> None:
        """Wait for the files `put` is writing."""
        self._writer.submit(lambda: None).result()

    def _written(self, state: VisitorState) -> VisitorState:
        """``state`` once written to its file, memory-mapped from there (its pages the file's,
        which the kernel can drop, instead of this process's memory); ``state`` itself if the
        file could not be written (a full or read-only disk)."""
        assert self.directory is not None
        with suppress(OSError):
            _write_state(self.directory, state)
            _prune(self.directory, self.max_file_bytes)
            mapped = _read_state(self.directory, (state.spec, state.segment))
            if mapped is not None and mapped.versions == state.versions:
                return mapped
        return state

    def _write_later(self, state: VisitorState) -> None:
        mapped = self._written(state)
        key = (state.spec, state.segment)
        with self._lock:
            if self._states.get(key) is state:  # not replaced by a newer one meanwhile
                self._states[key] = mapped

    def _remember(self, state: VisitorState) -> None:
        key = (state.spec, state.segment)
        with self._lock:
            self._states.pop(key, None)
            if state.nbytes > self.max_bytes:
                return
            self._states[key] = state
            while sum(s.nbytes for s in self._states.values()) > self.max_bytes:
                self._states.popitem(last=False)


def _state_name(key: Key) -> tuple[str, str]:
    """The file stem of ``key``'s state and the text it is named by."""
    text = msgspec.json.encode([code_digest(), "visitor-state", *key]).decode()
    return hashlib.sha256(text.encode()).hexdigest()[:32], text


_SUFFIX = ".arrow"


def _write_state(directory: Path, state: VisitorState) -> None:
    if not state.sums.conversions:  # no metrics: nothing worth a file
        return
    stem, text = _state_name((state.spec, state.segment))
    header = {
        "key": text,
        "experiment_id": state.spec.experiment_id,
        "segment": state.segment,
        "table_ids": list(state.table_ids),
        "versions": list(state.versions),
    }
    columns: dict[str, Any] = {
        "visitor_id": state.visitor_id,
        "variation": state.variation,
        "first_ts": state.first_ts,
        "multiple": state.multiple,
    }
    if state.segment_value is not None and state.segment_ts is not None:
        columns["segment_value"] = state.segment_value
        columns["segment_ts"] = state.segment_ts
    for name in ("conversions", "revenue", "value"):  # a column per metric event
        for j, array in enumerate(getattr(state.sums, name)):
            columns[f"{name}_{j}"] = array
    # One record batch, so that a read takes every column as it is, without copying.
    table = pa.table(columns).combine_chunks()
    table = table.replace_schema_metadata({"liftlog": json.dumps(header)})
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{stem}{_SUFFIX}"
    tmp = target.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table, max_chunksize=len(table) or None)
        os.replace(tmp, target)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def _read_state(
    directory: Path, key: Key, newer_than: Versions | None = None
) -> VisitorState | None:
    """``key``'s state from its file, memory-mapped; None if there is none, or it is not newer
    than ``newer_than`` (every table at a later or the same version, not all the same), or it
    can't be read."""
    spec, segment = key
    stem, text = _state_name(key)
    try:
        reader = pa.ipc.open_file(pa.memory_map(str(directory / f"{stem}{_SUFFIX}")))
        header = json.loads((reader.schema.metadata or {})[b"liftlog"])
        versions: Versions = tuple(header["versions"])
        if header["key"] != text:
            return None  # another spec with the same digest prefix
        if newer_than is not None and not _newer(versions, newer_than):
            return None
        table = reader.read_all()
        events = len(_events(spec))

        def sums(name: str, dtype: Any) -> Any:
            return [_column(table, f"{name}_{j}", dtype) for j in range(events)]

        return VisitorState(
            spec=spec,
            segment=segment,
            segment_value=None if segment is None else _one(table.column("segment_value")),
            segment_ts=None if segment is None else _column(table, "segment_ts", np.int64),
            table_ids=tuple(header["table_ids"]),
            versions=versions,
            visitor_id=_one(table.column("visitor_id")),
            variation=_column(table, "variation", np.int64),
            first_ts=_column(table, "first_ts", np.int64),
            multiple=_column(table, "multiple", np.bool_),
            sums=VisitorSums(
                sums("conversions", np.int64), sums("revenue", np.int64), sums("value", np.float64)
            ),
        )
    except (OSError, ValueError, KeyError, TypeError, pa.ArrowException):
        return None


def _specs_on_disk(directory: Path, experiment_id: str, segment: str | None) -> list[CountingSpec]:
    """The specs of the state files of ``experiment_id`` by ``segment``, counted by this code."""
    specs = []
    for path in directory.glob(f"*{_SUFFIX}"):
        try:
            schema = pa.ipc.open_file(pa.memory_map(str(path))).schema
            header = json.loads((schema.metadata or {})[b"liftlog"])
            if header.get("experiment_id") != experiment_id or header.get("segment") != segment:
                continue
            digest, _, spec, _ = msgspec.json.decode(header["key"], type=_KeyText)
        except (OSError, ValueError, KeyError, TypeError, pa.ArrowException, msgspec.DecodeError):
            continue  # being replaced, pruned meanwhile, or not a state file of this code
        if digest == code_digest():
            specs.append(spec)
    return specs


#: What a state file's ``key`` holds (`_state_name`).
_KeyText = tuple[str, str, CountingSpec, str | None]


def _one(column: pa.ChunkedArray) -> pa.Array:
    return column.combine_chunks()


def _newer(versions: Versions, than: Versions) -> bool:
    if len(versions) != len(than) or versions == than:
        return False
    return all(b is None or (a is not None and a >= b) for a, b in zip(versions, than, strict=True))


def _prune(directory: Path, max_bytes: int) -> None:
    """Delete the least recently written state files past ``max_bytes``, and temporary files
    left by a process killed while writing."""
    files = []
    for path in directory.glob("*"):
        try:
            stat = path.stat()
        except FileNotFoundError:  # another process pruned it meanwhile
            continue
        if path.suffix == ".tmp":
            if time.time() - stat.st_mtime > 3600:
                path.unlink(missing_ok=True)
        elif path.suffix == _SUFFIX:
            files.append((stat.st_mtime, stat.st_size, path))
    total = sum(size for _, size, _ in files)
    for _, size, path in sorted(files, key=lambda f: f[0]):
        if total <= max_bytes:
            break
        path.unlink(missing_ok=True)
        total -= size
