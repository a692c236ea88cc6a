"""Deleting raw-log segments that the loader has finished with, once they are old enough.

The raw log keeps every accepted request byte for byte, so that the lake can be rebuilt and an
event explained from what was received; it also grows by every request for ever. A segment is
deleted only when the loader's checkpoint has moved past its end (each of its records is in the
lake, or in ``rejects``) and its last write is older than the retention period. The segment being
written to and those still waiting to load are never touched.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from liftlog.lake.loader import list_writers, read_checkpoint
from liftlog.rawlog.segments import list_segments, segment_path
from liftlog.settings import Settings


@dataclass(frozen=True)
class Pruned:
    segments: int
    bytes: int


def prune_rawlog(
    settings: Settings, older_than_s: float, *, now: float | None = None, dry_run: bool = False
) -> Pruned:
    """Delete (or, with ``dry_run``, count) loaded segments last written over ``older_than_s``
    seconds before ``now``."""
    now = time.time() if now is None else now
    segments = size = 0
    for writer in list_writers(settings.rawlog_dir):
        directory = settings.rawlog_dir / writer
        loaded_before = read_checkpoint(directory).seq  # segments below it are fully loaded
        for seq in list_segments(directory):
            if seq >= loaded_before:
                break
            path = segment_path(directory, seq)
            stat = path.stat()
            if now - stat.st_mtime < older_than_s:
                continue
            if not dry_run:
                path.unlink()
            segments += 1
            size += stat.st_size
    return Pruned(segments, size)
