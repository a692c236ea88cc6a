"""Counts kept between results requests: reused while the lake is unchanged, recounted after it
changed (or, for long countings, a while later), and counted once for requests arriving together."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from liftlog.api.count_cache import MAX_CELLS, MAX_ENTRIES, CountCache
from liftlog.api.count_files import CountFiles, Shape
from liftlog.api.reports import Reports
from liftlog.api.visitor_states import States
from liftlog.errors import Unavailable
from tests.api.conftest import Api
from tests.api.worlds import build_world, send_conversion


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TickingClock(Clock):
    """Each reading is a millisecond after the one before: countings take time."""

    def __call__(self) -> float:
        self.now += 0.001
        return self.now


def counter(clock: Clock, took: float, seen: tuple[int | None, ...]) -> Any:
    """A count that takes ``took`` seconds of ``clock`` and says how often it ran."""
    calls: list[int] = []

    def count() -> tuple[Any, tuple[int | None, ...], Any, None]:
        clock.now += took
        calls.append(1)
        return len(calls), seen, None, None

    return count, calls


def test_an_entry_answers_while_the_lake_is_at_its_versions() -> None:
    clock = Clock()
    cache = CountCache(clock=clock)
    count, calls = counter(clock, 0.01, (1, 2, None))
    first = cache.get("k", lambda: (1, 2, None), count)
    clock.now += 3600  # age alone never makes an exact entry stale
    again = cache.get("k", lambda: (1, 2, None), count)
    assert again is first and len(calls) == 1
    assert cache.get("other", lambda: (1, 2, None), count).value == 2  # keys are apart


def test_a_quick_count_is_redone_once_the_lake_changed() -> None:
    clock = Clock()
    cache = CountCache(clock=clock)
    count, calls = counter(clock, 0.5, (1,))
    cache.get("k", lambda: (1,), count)
    assert cache.get("k", lambda: (2,), count).value == 2
    assert len(calls) == 2


def test_a_long_count_is_reused_for_factor_times_its_duration_after_the_lake_changed() -> None:
    clock = Clock()
    cache = CountCache(factor=10, reuse_after=1.0, max_age=300, clock=clock, stale_for=0)
    count, calls = counter(clock, 2.0, (1,))
    first = cache.get("k", lambda: (1,), count)
    assert first.seconds == pytest.approx(2.0)
    assert cache.recount_by_ms(first) == first.counted_at_ms + 22_000
    clock.now += 19.9
    assert cache.get("k", lambda: (2,), count) is first
    clock.now += 0.2  # 20.1 s > 10 x 2 s
    assert cache.get("k", lambda: (2,), count).value == 2
    assert len(calls) == 2


def test_reuse_goes_by_the_expected_cost_of_counting_again_where_the_counting_says_it() -> None:
    clock = Clock()
    cache = CountCache(factor=10, reuse_after=1.0, max_age=300, clock=clock, stale_for=60)
    calls: list[float | None] = []

    def count(recount: float | None) -> Any:
        def run() -> tuple[Any, tuple[int | None, ...], Any, float | None]:
            clock.now += 5.0  # a counting from scratch
            calls.append(recount)
            return len(calls), (len(calls),), None, recount

        return run

    first = cache.get("k", lambda: (1,), count(0.0))
    assert first.seconds == pytest.approx(5.0) and first.recount_seconds == 0.0
    clock.now += 1  # an update is cheap: the next request after new events counts at once
    second = cache.get("k", lambda: (2,), count(2.0))
    assert second.value == 2 and second.recount_seconds == 2.0
    clock.now += 19.9  # reused for 10 x the 2 s expected, not 10 x the 5 s it took
    assert cache.get("k", lambda: (3,), count(None)) is second
    clock.now += 0.2
    assert cache.peek("k", (3,)) is None
    assert len(calls) == 2


def test_reuse_never_passes_max_age_and_factor_zero_turns_it_off() -> None:
    clock = Clock()
    cache = CountCache(factor=10, reuse_after=1.0, max_age=30, clock=clock, stale_for=0)
    count, _ = counter(clock, 60.0, (1,))
    first = cache.get("k", lambda: (1,), count)
    clock.now += 31
    assert cache.get("k", lambda: (2,), count) is not first
    off = CountCache(factor=0, clock=clock)  # and no answer while recounted: no window
    count, calls = counter(clock, 60.0, (1,))
    off.get("k", lambda: (1,), count)
    off.get("k", lambda: (2,), count)
    assert len(calls) == 2


def blocking_counter(clock: Clock, took: float) -> Any:
    """A count that takes ``took`` seconds of ``clock`` the first time, and waits for
    ``release`` the times after; it says how often it ran, and the n-th run saw versions (n,)."""
    calls: list[int] = []
    started, release = threading.Event(), threading.Event()

    def count() -> tuple[Any, tuple[int | None, ...], Any, None]:
        calls.append(1)
        if len(calls) == 1:
            clock.now += took
        else:
            started.set()
            assert release.wait(30)
        return len(calls), (len(calls),), None, None

    return count, calls, started, release


def wait_for(condition: Any) -> None:
    for _ in range(3000):
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError("the background counting did not finish")


def test_past_its_window_a_long_count_answers_while_it_is_counted_again() -> None:
    clock = Clock()
    cache = CountCache(factor=10, reuse_after=1.0, max_age=300, clock=clock, stale_for=60)
    count, calls, started, release = blocking_counter(clock, 2.0)
    first = cache.get("k", lambda: (1,), count)
    clock.now += 20 + 59  # past its window (10 x 2 s), within the minute after it
    before_ms = int(time.time() * 1000)
    again = [cache.get("k", lambda: (2,), count) for _ in range(5)]
    assert all(entry is first for entry in again)  # answered at once, without waiting...
    assert started.wait(30)  # ...while one counting runs in the background
    # expected to take as long as the last one, from when it started
    assert before_ms + 2_000 <= cache.recount_by_ms(first) <= int(time.time() * 1000) + 2_000
    release.set()
    wait_for(lambda: cache.peek("k", (2,)) is not None)
    assert cache.get("k", lambda: (2,), count).value == 2
    assert len(calls) == 2


@pytest.mark.parametrize("on_disk", [False, True])
def test_past_the_stale_limit_or_after_a_failed_recount_a_request_counts_and_waits(
    tmp_path: Path, on_disk: bool
) -> None:
    """Also when the counts are kept on disk, where the failed one still is."""
    clock = Clock()
    files = CountFiles(tmp_path) if on_disk else None
    cache = CountCache(
        factor=10, reuse_after=1.0, max_age=300, clock=clock, stale_for=60, files=files,
        wall=lambda: 1.7e9 + clock.now,
    )  # fmt: skip
    shape = Shape(int, lambda v: v, lambda v: v)
    count, calls = counter(clock, 2.0, (1,))
    cache.get("k", lambda: (1,), count, shape=shape)
    clock.now += 20 + 61  # past the window and the minute after it
    assert cache.get("k", lambda: (2,), count, shape=shape).value == 2 and len(calls) == 2

    clock.now += 20 + 1
    failed = threading.Event()

    def broken() -> Any:
        failed.set()
        raise OSError("the lake went away")

    hook, threading.excepthook = threading.excepthook, lambda args: None
    try:
        # answered, while counting again fails
        assert cache.get("k", lambda: (3,), broken, shape=shape).value == 2
        assert failed.wait(30)
        wait_for(lambda: cache.peek("k", (1,)) is None)  # the lake it counted: dropped
    finally:
        threading.excepthook = hook
    with pytest.raises(OSError):  # the next request counts, and sees why
        cache.get("k", lambda: (3,), broken, shape=shape)


def test_requests_arriving_together_count_once() -> None:
    cache = CountCache()
    started, release = threading.Event(), threading.Event()
    calls: list[int] = []

    def slow() -> tuple[Any, tuple[int | None, ...], Any, None]:
        calls.append(1)
        started.set()
        assert release.wait(10)
        return "counts", (1,), None, None

    results: list[Any] = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.get("k", lambda: (1,), slow)))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    assert started.wait(10)
    time.sleep(0.1)  # the other three are waiting on the first one's counting by now
    release.set()
    for t in threads:
        t.join(10)
    assert len(calls) == 1
    assert [r.value for r in results] == ["counts"] * 4


def test_at_most_max_countings_run_at_once_and_too_many_waiting_get_503() -> None:
    cache = CountCache(max_countings=2, max_waiting=4)
    release = threading.Event()
    lock = threading.Lock()
    running, most = [0], [0]

    def slow() -> tuple[Any, tuple[int | None, ...], Any, None]:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        assert release.wait(10)
        with lock:
            running[0] -= 1
        return "counts", (1,), None, None

    threads = [
        threading.Thread(target=cache.get, args=(key, lambda: (1,), slow)) for key in range(4)
    ]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while cache.waiting < 4 and time.monotonic() < deadline:  # all four are in
        time.sleep(0.01)
    with pytest.raises(Unavailable) as refused:
        cache.get("fifth", lambda: (1,), slow)
    assert refused.value.status == 503 and refused.value.retry_after > 0
    release.set()
    for t in threads:
        t.join(10)
    assert most[0] == 2
    assert cache.get("fifth", lambda: (1,), slow).value == "counts"  # room again


def test_the_least_recently_used_entries_go_first() -> None:
    clock = Clock()
    cache = CountCache(clock=clock)
    count, calls = counter(clock, 0.0, (1,))
    for key in range(MAX_ENTRIES):
        cache.get(key, lambda: (1,), count)
    cache.get(0, lambda: (1,), count)  # used again: now the most recent
    cache.get("new", lambda: (1,), count)  # pushes key 1 out
    assert len(calls) == MAX_ENTRIES + 1
    cache.get(0, lambda: (1,), count)
    assert len(calls) == MAX_ENTRIES + 1
    cache.get(1, lambda: (1,), count)
    assert len(calls) == MAX_ENTRIES + 2


def test_large_entries_push_the_oldest_out_and_the_newest_always_stays() -> None:
    clock = Clock()
    cache = CountCache(clock=clock)
    count, calls = counter(clock, 0.0, (1,))
    third = MAX_CELLS // 3
    for key in ("a", "b", "c"):
        cache.get(key, lambda: (1,), count, lambda value: third)
    cache.get("big", lambda: (1,), count, lambda value: 2 * third)  # "a" and "b" go
    assert len(calls) == 4
    for key in ("c", "big"):
        cache.get(key, lambda: (1,), count)
    assert len(calls) == 4
    cache.get("a", lambda: (1,), count, lambda value: 1)
    assert len(calls) == 5
    cache.get("huge", lambda: (1,), count, lambda value: 2 * MAX_CELLS)  # alone, but kept
    cache.get("huge", lambda: (1,), count)
    assert len(calls) == 6


# -- on a real server and lake --------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(api: Api) -> dict[str, Any]:
    return build_world(api, "Kept counts", lambda i: i % 4 == 0)


def _conversions(doc: dict[str, Any], variation: str) -> int:
    return int(doc["metrics"][0]["results"][variation]["unique_conversions"])


def test_the_server_answers_every_method_from_one_count_and_recounts_new_events(
    api: Api, world: dict[str, Any]
) -> None:
    """A small experiment's results are never stale: its counting takes well under a second."""
    experiment_id = world["experiment"]["id"]
    base = f"/v2/experiments/{experiment_id}/results"
    with api.client(api.read) as r:
        docs = [r.get(base, params={"method": m}).json() for m in ("sequential", "fixed")]
        assert docs[0]["freshness"]["counted_at"] == docs[1]["freshness"]["counted_at"]
        before = _conversions(docs[0], world["b"])
        send_conversion(api, world, "r1", "kept-1")  # r1 is in b and had not converted
        after = r.get(base).json()
    assert _conversions(after, world["b"]) == before + 1
    assert after["freshness"]["loaded_since_counted"] is False
    assert after["freshness"]["is_complete"] is True


def test_long_counts_are_reused_after_new_events_and_say_so(
    api: Api, world: dict[str, Any]
) -> None:
    """With reuse for every count (as for one that took seconds), results counted before new
    events arrived are served until they are too old, and their freshness says events were
    loaded since they were counted. Without visitor states (none kept: as when none fits in
    memory and none can be written), which would bring them up to date instead."""
    experiment_id = world["experiment"]["id"]
    clock = TickingClock()
    cache = CountCache(factor=1e6, reuse_after=0.0, clock=clock)
    with api.catalog() as catalog:
        reports = Reports(api.server.settings, lambda: catalog, cache, States(max_bytes=0))
        page, _ = reports.page(experiment_id)
        before = _conversions(page, world["b"])
        send_conversion(api, world, "r3", "kept-2")  # r3 is in b and had not converted
        kept = reports.results(experiment_id)  # from the page's daily counts
        assert kept["freshness"]["counted_at"] == page["freshness"]["counted_at"]
        assert _conversions(kept, world["b"]) == before
        assert kept["freshness"]["loaded_since_counted"] is True
        assert kept["freshness"]["is_complete"] is False
        assert kept["freshness"]["recount_by"] > kept["freshness"]["counted_at"]
        clock.now += 400  # past the reuse time (300 s), within the 5 minutes after it
        # answered at once from the page's counts, which are counted again in the background
        stale = reports.results(experiment_id)
        assert stale["freshness"]["counted_at"] == page["freshness"]["counted_at"]
        assert _conversions(stale, world["b"]) == before
        wait_for(
            lambda: (
                reports.page(experiment_id)[0]["freshness"]["counted_at"]
                != (page["freshness"]["counted_at"])
            )
        )
        assert _conversions(reports.page(experiment_id)[0], world["b"]) == before + 1
        clock.now += 3600  # too old to answer while counted again: counted now
        send_conversion(api, world, "r5", "kept-3")  # r5 is in b and had not converted
        recounted = reports.results(experiment_id)
    assert _conversions(recounted, world["b"]) == before + 2
    assert recounted["freshness"]["loaded_since_counted"] is False


def test_counts_kept_with_their_visitor_state_are_brought_up_to_date_and_never_go_back(
    api: Api, world: dict[str, Any]
) -> None:
    """However long a counting from scratch took, the first request after new events brings
    its counts up to date (an update costs a fraction of it); the counts of that update are
    then reused by how long it took, unless the page's daily counts were counted since, of a
    newer snapshot: the results then take those, never going back to older counts."""
    experiment_id = world["experiment"]["id"]
    clock = TickingClock()
    cache = CountCache(factor=1e6, reuse_after=0.0, clock=clock)  # reuse any counting
    with api.catalog() as catalog:
        reports = Reports(api.server.settings, lambda: catalog, cache, States())
        counted = reports.results(experiment_id)  # from scratch, keeping the state
        before = _conversions(counted, world["b"])
        send_conversion(api, world, "r7", "kept-4")  # r7 is in b and had not converted
        updated = reports.results(experiment_id)
        assert _conversions(updated, world["b"]) == before + 1
        assert updated["freshness"]["loaded_since_counted"] is False
        send_conversion(api, world, "r9", "kept-5")  # r9 is in b and had not converted
        reused = reports.results(experiment_id)
        assert _conversions(reused, world["b"]) == before + 1
        assert reused["freshness"]["counted_at"] == updated["freshness"]["counted_at"]
        assert reused["freshness"]["loaded_since_counted"] is True
        series = reports.timeseries(experiment_id, "sequential", 0)  # counts per day, newer
        assert series["freshness"]["loaded_since_counted"] is False
        latest = reports.results(experiment_id)
    assert _conversions(latest, world["b"]) == before + 2
    assert latest["freshness"]["counted_at"] == series["freshness"]["counted_at"]


def test_the_experiments_list_takes_the_primary_metric_from_kept_counts(
    api: Api, world: dict[str, Any]
) -> None:
    experiment_id = world["experiment"]["id"]
    with api.catalog() as catalog:
        counted_alone = Reports(api.server.settings, lambda: catalog).overview(experiment_id)
        reports = Reports(api.server.settings, lambda: catalog)
        full = reports.results(experiment_id)
        overview = reports.overview(experiment_id)
    assert overview["freshness"]["counted_at"] == full["freshness"]["counted_at"]
    assert overview["metrics"] == full["metrics"][:1] == counted_alone["metrics"]
    assert overview["reach"] == full["reach"] == counted_alone["reach"]
