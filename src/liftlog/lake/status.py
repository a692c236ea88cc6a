"""What is stored: rows per lake table, and raw-log bytes still waiting for the loader."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa

from liftlog.lake.loader import list_writers, open_table, read_checkpoint
from liftlog.lake.schema import TABLES
from liftlog.rawlog.record import decode_payload
from liftlog.rawlog.segments import Frame, Position, list_segments, read_frames, segment_path
from liftlog.settings import Settings


def table_status(settings: Settings, name: str) -> dict[str, Any]:
    table = open_table(settings.lake_dir / name)
    if table is None:
        return {"rows": 0, "files": 0, "version": None}
    actions = pa.table(table.get_add_actions(flatten=True))
    counts = actions.column("num_records").to_pylist()
    return {
        "rows": int(sum(r or 0 for r in counts)),
        "files": actions.num_rows,
        "version": table.version(),
    }


def rawlog_status(settings: Settings) -> dict[str, Any]:
    """The raw log's size, how much of it waits for the loader, and since when: the received
    time (epoch ms) of the oldest record waiting, None when none is."""
    total = pending = segments = 0
    oldest: list[int] = []
    for writer in list_writers(settings.rawlog_dir):
        directory = settings.rawlog_dir / writer
        done = read_checkpoint(directory)
        waiting = 0
        for seq in list_segments(directory):
            size = os.path.getsize(segment_path(directory, seq))
            segments += 1
            total += size
            if seq > done.seq:
                waiting += size
            elif seq == done.seq:
                waiting += max(0, size - done.offset)
        pending += waiting
        received = _first_received_ms(directory, done) if waiting else None
        if received is not None:
            oldest.append(received)
    return {
        "bytes": total,
        "segments": segments,
        "pending_bytes": pending,
        "oldest_waiting_received_ms": min(oldest, default=None),
    }


def _first_received_ms(directory: Path, start: Position) -> int | None:
    """When the first complete record from ``start`` on was received (None: none yet, as while
    it is being written)."""
    items, _ = read_frames(directory, start, max_bytes=64 << 10)
    for item in items:
        if isinstance(item, Frame):
            try:
                return decode_payload(item.payload).received_ms
            except msgspec.DecodeError:  # the loader rejects it; the next one says
                continue
    return None


def lake_status(settings: Settings) -> dict[str, Any]:
    """The tables, the raw log, and where a rebuild that did not finish left the old lake (None
    when none did; see `liftlog.lake.rebuild`)."""
    left = settings.rebuild_backup_dir
    return {
        "data_dir": str(settings.data_dir),
        "tables": {name: table_status(settings, name) for name in TABLES},
        "rawlog": rawlog_status(settings),
        "unfinished_rebuild": str(left) if left.exists() else None,
    }
