"""Experiment status: the allowed transitions and the running intervals they leave behind.

The running intervals are an experiment's bounds for counting: decisions and conversions outside
them do not count. Pure: the history is passed in.
"""

from __future__ import annotations

from collections.abc import Sequence

from liftlog.catalog.models import StatusChange

STATUSES = ("not_started", "running", "paused", "archived")

# Archived experiments come back as paused, never straight to running; nothing returns to
# not_started, because that would erase the fact that it has run.
TRANSITIONS: dict[str, frozenset[str]] = {
    "not_started": frozenset({"running", "archived"}),
    "running": frozenset({"paused", "archived"}),
    "paused": frozenset({"running", "archived"}),
    "archived": frozenset({"paused"}),
}


def allowed(current: str, target: str) -> bool:
    return target in TRANSITIONS[current]


def running_intervals(history: Sequence[StatusChange]) -> list[tuple[int, int | None]]:
    """``[(start_ms, end_ms or None while still running), ...]`` in time order.

    An interval is closed by the first later change to any status other than running.
    """
    intervals: list[tuple[int, int | None]] = []
    start: int | None = None
    for change in history:
        if change.status == "running":
            if start is None:
                start = change.at
        elif start is not None:
            intervals.append((start, change.at))
            start = None
    if start is not None:
        intervals.append((start, None))
    return intervals
