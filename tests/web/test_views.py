"""The results page's "Data" line, from the results document's freshness."""

from __future__ import annotations

from datetime import UTC, datetime

from liftlog.web.views import days_running, freshness_line

COUNTED = {
    "latest_event_received": "2026-03-01T10:00:00.123000+00:00",
    "raw_log_bytes_waiting": 0,
    "events_waiting_estimate": None,
    "is_complete": True,
    "counted_at": "2026-03-01T10:00:05.000Z",
    "counting_seconds": 6.2,
    "loaded_since_counted": False,
    "recount_by": "2026-03-01T10:01:07.000Z",
}


def test_complete_counts() -> None:
    assert freshness_line(COUNTED) == "complete up to 2026-03-01 10:00:00 UTC"
    empty = {**COUNTED, "latest_event_received": None}
    assert freshness_line(empty) == "no events loaded yet"


def test_events_still_loading() -> None:
    loading = {**COUNTED, "raw_log_bytes_waiting": 4096, "events_waiting_estimate": 12000}
    assert freshness_line(loading).endswith(", about 12,000 events still loading")
    no_rate = {**COUNTED, "raw_log_bytes_waiting": 4096}
    assert freshness_line(no_rate).endswith(", 4,096 bytes of events still loading")
    behind = {**loading, "oldest_waiting_received": "2026-03-01T10:00:02.500000Z"}
    assert freshness_line(behind).endswith(
        ", about 12,000 events still loading (the oldest received at 10:00:02 UTC)"
    )


def test_counts_kept_from_before_newer_events_say_when_they_are_redone() -> None:
    kept = {**COUNTED, "loaded_since_counted": True, "is_complete": False}
    assert freshness_line(kept) == (
        "complete up to 2026-03-01 10:00:00 UTC; counted at 10:00:05 UTC, events loaded since"
        " are counted by 10:01:07 UTC"
    )


def test_days_running_adds_the_intervals_and_runs_the_open_one_until_now() -> None:
    doc = {"running_intervals": [
        {"start": "2026-03-01T00:00:00Z", "end": "2026-03-03T12:00:00Z"},
        {"start": "2026-03-05T00:00:00Z", "end": None},
    ]}  # fmt: skip
    assert days_running(doc, datetime(2026, 3, 6, tzinfo=UTC)) == 3.5
