"""The running intervals derived from a status history (pure)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from liftlog.catalog.models import StatusChange
from liftlog.catalog.status import STATUSES, allowed, running_intervals


def test_running_intervals_close_on_pause_and_archive() -> None:
    history = [
        StatusChange("not_started", 0),
        StatusChange("running", 10),
        StatusChange("paused", 20),
        StatusChange("running", 30),
        StatusChange("archived", 40),
    ]
    assert running_intervals(history) == [(10, 20), (30, 40)]


def test_running_intervals_stay_open_while_running() -> None:
    assert running_intervals([StatusChange("not_started", 0), StatusChange("running", 5)]) == [
        (5, None)
    ]
    assert running_intervals([StatusChange("not_started", 0)]) == []


def test_status_nothing_returns_to_not_started() -> None:
    assert not any(allowed(s, "not_started") for s in STATUSES)
    assert not allowed("archived", "running")
    assert allowed("paused", "running")


@given(st.lists(st.sampled_from(STATUSES), max_size=30))
def test_running_intervals_are_ordered_disjoint_and_cover_running_time(
    statuses: list[str],
) -> None:
    history = [StatusChange(s, 10 * i) for i, s in enumerate(statuses)]
    intervals = running_intervals(history)
    ends = [e for _, e in intervals]
    assert all(e is not None for e in ends[:-1])
    flat = [t for pair in intervals for t in pair if t is not None]
    assert flat == sorted(flat)
    # Each instant between changes is inside an interval exactly when the status then is running.
    for change in history:
        moment = change.at + 5
        inside = any(s <= moment and (e is None or moment < e) for s, e in intervals)
        assert inside == (change.status == "running")
