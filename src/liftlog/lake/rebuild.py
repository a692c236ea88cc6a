"""Rebuilding the lake from the raw log: the lake is made from it, the raw log is what was received.

For a lake that was lost or damaged, or to load old records again with a newer loader. Nothing
may be running on the data directory meanwhile: the writers' and the loader's locks are held for
the whole rebuild, and taken without waiting, so a running server or ``liftlog load`` makes it
refuse instead of racing it.

The old lake is moved aside to ``lake.before-rebuild/`` (with the loader's checkpoints, under
``loaded/``) and deleted only once every record has been loaded again; if loading fails, it is
still there to put back. Counts kept for results (``counts/``) were made from the old lake's
tables, which the new ones never match, so they are deleted.

Segments deleted by ``liftlog rawlog prune`` cannot be loaded again: their events are only in
the old lake. A rebuild refuses then, unless told to go on without them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from liftlog.lake.loader import CHECKPOINT, LOADER_LOCK, Loader, list_writers
from liftlog.rawlog.segments import list_segments
from liftlog.rawlog.writer import LOCK_NAME
from liftlog.settings import Settings


class RebuildRefused(Exception):
    """The rebuild did not start; the message says why and what to do."""


class RebuildFailed(Exception):
    """Loading failed after the old lake was moved aside; the message says how to put it back."""


@dataclass(frozen=True)
class Rebuilt:
    #: Raw-log records loaded into the new lake.
    records: int


def pruned_segments(settings: Settings) -> dict[str, int]:
    """Per writer directory, how many segments at the start of its log are gone (logs start at
    segment 1, and only ``liftlog rawlog prune`` deletes segments)."""
    out = {}
    for writer in list_writers(settings.rawlog_dir):
        segments = list_segments(settings.rawlog_dir / writer)
        if segments and segments[0] > 1:
            out[writer] = segments[0] - 1
    return out


@contextlib.contextmanager
def _nothing_running(settings: Settings) -> Iterator[None]:
    """Hold every raw-log writer's lock and the loader's, or raise `RebuildRefused`."""
    locks = [settings.rawlog_dir / w / LOCK_NAME for w in list_writers(settings.rawlog_dir)]
    locks.append(settings.lake_dir / LOADER_LOCK)
    fds: list[int] = []
    try:
        for path in locks:
            if not path.exists():
                continue
            fd = os.open(path, os.O_RDWR)
            fds.append(fd)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RebuildRefused(
                    f"{path} is locked: a server or `liftlog load` is running on this data "
                    "directory. Stop it first."
                ) from None
        yield
    finally:
        for fd in fds:
            os.close(fd)


def rebuild_lake(
    settings: Settings,
    *,
    allow_pruned: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Rebuilt:
    """Load every record of the raw log into a new lake in place of the old one (``progress``:
    see `Loader.drain`)."""
    backup = settings.rebuild_backup_dir
    if backup.exists():
        raise RebuildRefused(
            f"{backup} is there from a rebuild that did not finish. {_put_back(settings)}, "
            "or delete it; then rebuild again."
        )
    pruned = pruned_segments(settings)
    if pruned and not allow_pruned:
        gone = ", ".join(f"{n} of {w}" for w, n in sorted(pruned.items()))
        raise RebuildRefused(
            f"raw-log segments were pruned ({gone}): their events are only in the current lake "
            "and would be missing from the new one. Rebuild without them with --allow-pruned."
        )
    with _nothing_running(settings):
        (backup / "loaded").mkdir(parents=True)
        if settings.lake_dir.exists():
            settings.lake_dir.rename(backup / "lake")
        for writer in list_writers(settings.rawlog_dir):
            checkpoint = settings.rawlog_dir / writer / CHECKPOINT
            if checkpoint.exists():
                checkpoint.rename(backup / "loaded" / f"{writer}.json")
        try:
            loader = Loader(settings)
            try:
                records = loader.drain(progress)
            finally:
                loader.close()
        except Exception as exc:
            raise RebuildFailed(
                f"loading the raw log failed ({exc}). The old lake is in {backup}: "
                f"{_put_back(settings)}."
            ) from exc
    shutil.rmtree(settings.counts_dir, ignore_errors=True)
    shutil.rmtree(backup)
    return Rebuilt(records)


def _put_back(settings: Settings) -> str:
    backup = settings.rebuild_backup_dir
    return (
        f"To go back, replace {settings.lake_dir} with {backup / 'lake'} and move each "
        f"{backup / 'loaded' / '<writer>.json'} to {settings.rawlog_dir / '<writer>' / CHECKPOINT}"
    )
