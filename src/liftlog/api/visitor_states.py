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
from contextlib import suppress
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa

from liftlog.analysis.counting import VisitorSums, _column, _events
from liftlog.analysis.incremental import VisitorState
from liftlog.analysis.sources import Versions
from liftlog.api.count_files import code_digest
from liftlog.rules.counting import CountingSpec

#: What `States` holds in memory at most, in bytes: a state takes about 150 bytes a visitor
#: with 5 metric events (150 MB for an experiment of a million visitors). States read from
#: their files are memory-mapped: their pages are the file's, which the kernel can drop.
MAX_STATE_BYTES = 512 << 20
#: What the state files take on disk at most; past it, the least recently written go.
MAX_STATE_FILE_BYTES = 4 << 30


class States:
    """The newest `VisitorState` of each counting spec.

    In memory, the most recently used first, within ``max_bytes`` (a state larger than that is
    not kept in memory). With a ``directory``, also in files (Arrow IPC, one per spec, written
    to a temporary file and renamed into place), so that the workers of a server share them and
    a restart keeps them; a file is only read for the same spec, counted by the same code
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
        self._states: OrderedDict[CountingSpec, VisitorState] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, spec: CountingSpec) -> VisitorState | None:
        with self._lock:
            state = self._states.get(spec)
            if state is not None:
                self._states.move_to_end(spec)
        if state is None and self.directory is not None:
            state = _read_state(self.directory, spec)
            if state is not None:
                self._remember(state)
        if state is not None and self.directory is not None:
            newer = _read_state(self.directory, spec, newer_than=state.versions)
            if newer is not None:  # another worker brought it further
                self._remember(newer)
                return newer
        return state

    def put(self, state: VisitorState) -> None:
        if self.directory is not None and state.sums.revenue.dtype != object:
            with suppress(OSError):  # a full or read-only disk: kept in memory only
                _write_state(self.directory, state)
                _prune(self.directory, self.max_file_bytes)
                mapped = _read_state(self.directory, state.spec)
                if mapped is not None and mapped.versions == state.versions:
                    state = mapped  # the file's pages instead of this process's memory
        self._remember(state)

    def _remember(self, state: VisitorState) -> None:
        with self._lock:
            self._states.pop(state.spec, None)
            if state.nbytes > self.max_bytes:
                return
            self._states[state.spec] = state
            while sum(s.nbytes for s in self._states.values()) > self.max_bytes:
                self._states.popitem(last=False)


def _state_name(spec: CountingSpec) -> tuple[str, str]:
    """The file stem of ``spec``'s state and the text it is named by."""
    text = msgspec.json.encode([code_digest(), "visitor-state", spec]).decode()
    return hashlib.sha256(text.encode()).hexdigest()[:32], text


_SUFFIX = ".arrow"


def _write_state(directory: Path, state: VisitorState) -> None:
    if state.sums.conversions.shape[1] == 0:  # no metrics: nothing worth a file
        return
    stem, text = _state_name(state.spec)
    header = {"key": text, "table_ids": list(state.table_ids), "versions": list(state.versions)}
    columns: dict[str, Any] = {
        "visitor_id": state.visitor_id,
        "variation": state.variation,
        "first_ts": state.first_ts,
        "multiple": state.multiple,
    }
    # Per visitor, a list of one number per metric event: the (visitors, events) array as is.
    for name in ("conversions", "revenue", "value"):
        array = np.ascontiguousarray(getattr(state.sums, name))
        columns[name] = pa.FixedSizeListArray.from_arrays(
            pa.array(array.reshape(-1)), max(1, array.shape[1])
        )
    table = pa.table(columns).replace_schema_metadata({"liftlog": json.dumps(header)})
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
    directory: Path, spec: CountingSpec, newer_than: Versions | None = None
) -> VisitorState | None:
    """``spec``'s state from its file, memory-mapped; None if there is none, or it is not newer
    than ``newer_than`` (every table at a later or the same version, not all the same), or it
    can't be read."""
    stem, text = _state_name(spec)
    try:
        reader = pa.ipc.open_file(pa.memory_map(str(directory / f"{stem}{_SUFFIX}")))
        header = json.loads((reader.schema.metadata or {})[b"liftlog"])
        versions: Versions = tuple(header["versions"])
        if header["key"] != text:
            return None  # another spec with the same digest prefix
        if newer_than is not None and not _newer(versions, newer_than):
            return None
        table = reader.read_all()
        shape = (table.num_rows, len(_events(spec)))

        def sums(name: str, dtype: Any) -> Any:
            lists = table.column(name).combine_chunks()
            flat = lists.flatten()  # the values of the rows, offset included
            return _column(pa.table({name: flat}), name, dtype).reshape(shape)

        return VisitorState(
            spec=spec,
            table_ids=tuple(header["table_ids"]),
            versions=versions,
            visitor_id=table.column("visitor_id").combine_chunks(),
            variation=_column(table, "variation", np.int64),
            first_ts=_column(table, "first_ts", np.int64),
            multiple=_column(table, "multiple", np.bool_),
            sums=VisitorSums(
                sums("conversions", np.int64), sums("revenue", np.int64), sums("value", np.float64)
            ),
        )
    except (OSError, ValueError, KeyError, TypeError, pa.ArrowException):
        return None


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
