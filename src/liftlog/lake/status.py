"""What is stored: rows per lake table, and raw-log bytes still waiting for the loader."""

from __future__ import annotations

import os
from typing import Any

import pyarrow as pa

from liftlog.lake.loader import list_writers, open_table, read_checkpoint
from liftlog.lake.schema import TABLES
from liftlog.rawlog.segments import list_segments, segment_path
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
    total = pending = segments = 0
    for writer in list_writers(settings.rawlog_dir):
        directory = settings.rawlog_dir / writer
        done = read_checkpoint(directory)
        for seq in list_segments(directory):
            size = os.path.getsize(segment_path(directory, seq))
            segments += 1
            total += size
            if seq > done.seq:
                pending += size
            elif seq == done.seq:
                pending += max(0, size - done.offset)
    return {"bytes": total, "segments": segments, "pending_bytes": pending}


def lake_status(settings: Settings) -> dict[str, Any]:
    return {
        "data_dir": str(settings.data_dir),
        "tables": {name: table_status(settings, name) for name in TABLES},
        "rawlog": rawlog_status(settings),
    }
