"""Counts kept on disk: shared by the workers of a server, kept across its restarts, never taken
for another key, and counted once when workers ask together."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from liftlog.analysis.counts import Counts, MetricCounts, OtherValues
from liftlog.api.count_cache import CountCache
from liftlog.api.count_files import SUFFIX, CountFiles, Kept, Shape
from liftlog.api.reports import _SHAPES
from tests.api.conftest import Api, start_api
from tests.api.worlds import build_world, send_conversion


def counts(n: int) -> Counts:
    metric = MetricCounts(n, 2**70 + n, 0.1 + 0.2, 1, 1, 2, 5, 1.5)  # beyond 64 bits; inexact
    return Counts({"a": n, "b": n + 1}, {"a": 0, "b": 1}, ({"a": metric, "b": metric},))


def counter(value: Any, seen: tuple[int | None, ...] = (1, None, 2)) -> Any:
    calls: list[int] = []

    def count() -> tuple[Any, tuple[int | None, ...], Any, None]:
        calls.append(1)
        return value, seen, None, None

    return count, calls


def test_a_second_process_takes_what_the_first_counted(tmp_path: Path) -> None:
    """Two caches over one directory stand for two worker processes (or a restarted one)."""
    value = {None: counts(3), "NL": counts(4), OtherValues(7): counts(5)}
    count, calls = counter(value)
    key = ("segments", "spec", "country")
    first = CountCache(files=CountFiles(tmp_path)).get(
        key, lambda: (1, None, 2), count, shape=_SHAPES["segments"]
    )
    second = CountCache(files=CountFiles(tmp_path)).get(
        key, lambda: (1, None, 2), count, shape=_SHAPES["segments"]
    )
    assert len(calls) == 1
    assert second.value == value  # exactly: None and "other values" keys, big ints, floats
    assert (second.versions, second.counted_at_ms) == (first.versions, first.counted_at_ms)
    daily = [(1_767_312_000_000, counts(1)), (1_767_398_400_000, counts(2))]
    count, calls = counter(daily)
    for _ in range(2):
        got = CountCache(files=CountFiles(tmp_path)).get(
            ("daily", "spec"), lambda: (1, None, 2), count, shape=_SHAPES["daily"]
        )
        assert got.value == daily
    assert len(calls) == 1


def test_files_answer_only_their_own_key_and_a_damaged_one_is_counted_again(
    tmp_path: Path,
) -> None:
    files = CountFiles(tmp_path)
    shape = Shape(int, lambda v: v, lambda v: v)
    files.write("k", Kept(1, (1,), 1000, 0.5, None, 1), shape)
    assert files.read("k", shape) == Kept(1, (1,), 1000, 0.5, None, 1)
    assert files.read("other", shape) is None
    assert files.read("k", shape, newer_than_ms=1000) is None  # not newer than what one has
    [path] = tmp_path.glob(f"*{SUFFIX}")
    path.write_bytes(path.read_bytes()[:-1] + b"x")  # torn or damaged
    assert files.read("k", shape) is None
    count, calls = counter(2, (1,))
    assert CountCache(files=files).get("k", lambda: (1,), count, shape=shape).value == 2
    assert len(calls) == 1 and files.read("k", shape) is not None  # written anew


def test_files_keep_what_counting_again_is_expected_to_cost(tmp_path: Path) -> None:
    files = CountFiles(tmp_path)
    shape = Shape(int, lambda v: v, lambda v: v)
    kept = Kept(1, (1,), 1000, 5.0, None, 1, recount_seconds=0.0)
    files.write("k", kept, shape)
    assert files.read("k", shape) == kept


def test_counts_of_another_lake_are_not_read(tmp_path: Path) -> None:
    """A lake loaded again from the raw log can reach the same versions with other files: the
    tables' ids, which ``identity`` gives, tell the two apart."""
    lake = ["id-1", None, "id-3"]
    files = CountFiles(tmp_path, identity=lambda: lake)
    shape = Shape(int, lambda v: v, lambda v: v)
    files.write("k", Kept(1, (4, None, 2), 1000, 0.5, None, 1), shape)
    assert files.read("k", shape) is not None
    lake = ["id-1b", None, "id-3b"]  # the same versions, other tables
    assert files.read("k", shape) is None
    count, calls = counter(2, (4, None, 2))
    cache = CountCache(files=files)
    assert cache.get("k", lambda: (4, None, 2), count, shape=shape).value == 2
    assert len(calls) == 1


def test_workers_asking_together_count_once(tmp_path: Path) -> None:
    started, release = threading.Event(), threading.Event()
    calls: list[int] = []

    def count() -> tuple[Any, tuple[int | None, ...], Any, None]:
        calls.append(1)
        started.set()
        assert release.wait(30)
        return {None: counts(1)}, (1,), None, None

    shape = _SHAPES["segments"]
    caches = [CountCache(files=CountFiles(tmp_path)) for _ in range(3)]
    got: list[Any] = []
    threads = [
        threading.Thread(
            target=lambda c=c: got.append(c.get("k", lambda: (1,), count, shape=shape).value)
        )
        for c in caches
    ]
    threads[0].start()
    assert started.wait(30)
    for t in threads[1:]:
        t.start()
    time.sleep(0.2)  # the others are waiting on the key's lock file, not counting
    assert len(calls) == 1
    release.set()
    for t in threads:
        t.join(30)
    assert got == [{None: counts(1)}] * 3 and len(calls) == 1


def test_the_oldest_files_go_past_the_limit(tmp_path: Path) -> None:
    files = CountFiles(tmp_path, max_files=2)
    shape = Shape(int, lambda v: v, lambda v: v)
    for i, key in enumerate(("a", "b", "c")):
        files.write(key, Kept(i, (1,), 1000 + i, 0.5, None, 1), shape)
        time.sleep(0.01)  # distinct modification times
    assert files.read("a", shape) is None
    assert files.read("b", shape) is not None and files.read("c", shape) is not None
    assert len(list(tmp_path.glob(f"*{SUFFIX}"))) == 2
    old, new = tmp_path / "x.123.tmp", tmp_path / "y.456.tmp"  # left by killed processes
    for path, age in ((old, 7200), (new, 60)):
        path.write_bytes(b"{")
        os.utime(path, (time.time() - age, time.time() - age))
    files.write("d", Kept(3, (1,), 1003, 0.5, None, 1), shape)
    assert not old.exists() and new.exists()  # one writing now may still be at it


@pytest.fixture()
def served(tmp_path: Path) -> Any:
    api = start_api(tmp_path / "data")
    try:
        yield api
    finally:
        api.server.stop()


def test_a_restarted_server_answers_from_the_counts_it_kept(served: Api) -> None:
    world = build_world(served, "Restart", lambda i: i % 3 == 0)
    base = f"/v2/experiments/{world['experiment']['id']}"
    with served.client(served.read) as r:
        before = r.get(f"{base}/results").json()
        assert list((served.server.data_dir / "counts").glob(f"*{SUFFIX}"))
        send_conversion(served, world, "r1", "restart-1")  # r1 is in b and had not converted
        series = r.get(f"{base}/timeseries").json()  # the newest counts: per day
    served.server.stop()
    served.server.start()
    with served.client(served.read) as r:
        after = r.get(f"{base}/results").json()
        again = r.get(f"{base}/timeseries").json()
    # Not the older whole-experiment counts kept on disk: the daily counts kept on disk, or the
    # whole experiment's brought up to date from the visitor state the daily pass kept (a
    # counting after the timeseries'), both of the newest snapshot.
    assert after["freshness"]["counted_at"] >= series["freshness"]["counted_at"]
    assert after["freshness"]["loaded_since_counted"] is False
    assert again["freshness"]["counted_at"] == series["freshness"]["counted_at"]
    b = world["b"]
    assert (
        after["metrics"][0]["results"][b]["unique_conversions"]
        == before["metrics"][0]["results"][b]["unique_conversions"] + 1
    )
