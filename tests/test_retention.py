"""Pruning the raw log: only segments the loader has finished with, and only old ones."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from liftlog.lake.loader import Loader
from liftlog.lake.retention import prune_rawlog
from liftlog.lake.status import lake_status
from liftlog.rawlog.record import Endpoint, RawRecord, encode_frame
from liftlog.rawlog.segments import list_segments, segment_path
from liftlog.rawlog.writer import SegmentWriter
from liftlog.settings import Settings
from tests.server import FIXTURES

DAY = 86_400


def _frame(n: int) -> bytes:
    body = (FIXTURES / "events" / "sdk_track.json").read_bytes().replace(b"fc1bc6a8", b"%08d" % n)
    return encode_frame(RawRecord(received_ms=1_795_335_792_943, endpoint=Endpoint.V1_EVENTS,
                                  body=body))  # fmt: skip


def _age(directory: Path, days: float) -> None:
    old = time.time() - days * DAY
    for seq in list_segments(directory):
        os.utime(segment_path(directory, seq), (old, old))


def test_prune_deletes_only_loaded_old_segments_and_loading_goes_on(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, segment_bytes=4096)  # about 3 records a segment
    directory = settings.rawlog_dir / "w0"
    writer = SegmentWriter(directory, settings.segment_bytes)
    for n in range(12):
        writer.write(_frame(n))
    loader = Loader(settings)
    loader.drain()
    for n in range(12, 15):  # written, not loaded yet
        writer.write(_frame(n))
    _age(directory, 40)
    before = list_segments(directory)
    assert len(before) >= 5

    assert prune_rawlog(settings, 60 * DAY).segments == 0  # nothing that old
    dry = prune_rawlog(settings, 30 * DAY, dry_run=True)
    assert dry.segments > 0 and list_segments(directory) == before
    pruned = prune_rawlog(settings, 30 * DAY)
    assert pruned == dry
    left = list_segments(directory)
    assert len(left) == len(before) - pruned.segments
    assert lake_status(settings)["rawlog"]["pending_bytes"] > 0  # the unloaded ones stayed

    loader.drain()  # what was waiting still loads, and nothing twice
    assert lake_status(settings)["tables"]["conversions"]["rows"] == 15
    writer.write(_frame(15))
    writer.close()
    loader.close()
    again = Loader(settings)  # a restarted loader starts from its checkpoint, pruned or not
    again.drain()
    again.close()
    assert lake_status(settings)["tables"]["conversions"]["rows"] == 16


def test_rawlog_prune_command(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, segment_bytes=4096)
    writer = SegmentWriter(settings.rawlog_dir / "w0", settings.segment_bytes)
    for n in range(9):
        writer.write(_frame(n))
    writer.close()
    loader = Loader(settings)
    loader.drain()
    loader.close()
    _age(settings.rawlog_dir / "w0", 10)
    done = subprocess.run(
        [sys.executable, "-m", "liftlog.cli", "rawlog", "prune", "--older-than-days", "7",
         "--data", str(tmp_path)], capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert done.stdout.startswith("deleted ") and "segments" in done.stdout
    assert not done.stdout.startswith("deleted 0 ")
