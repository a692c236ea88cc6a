"""Counts brought up to date from appended events equal counts made from scratch."""

from __future__ import annotations

import os
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable

from liftlog.analysis.counting import count, count_daily, count_segments
from liftlog.analysis.incremental import (
    VisitorState,
    appended_files,
    count_daily_state,
    count_state,
    counted,
    derive,
    update,
)
from liftlog.analysis.sources import open_lake, table_ids
from liftlog.api.visitor_states import States
from liftlog.lake.loader import Loader
from liftlog.rules.counting import Aggregator, CountingSpec, MetricSpec
from liftlog.settings import Settings
from tests.analysis.lakes import T0, H, build_lake, conversion, decision

METRICS = (
    MetricSpec("500", "purchase", Aggregator.UNIQUE),
    MetricSpec("500", "purchase", Aggregator.COUNT),
    MetricSpec("500", "purchase", Aggregator.SUM, "revenue"),
    MetricSpec("501", "signup", Aggregator.SUM, "value"),
)
SPEC = CountingSpec(
    experiment_id="100",
    campaign_id="200",
    variation_ids=("301", "302", "303"),
    intervals=((T0, T0 + 10 * H), (T0 + 12 * H, None)),
    metrics=METRICS,
)
WINDOWED = CountingSpec(
    experiment_id="100",
    campaign_id="200",
    variation_ids=("301", "302"),
    intervals=((T0, None),),
    metrics=METRICS,
    attribution_window_ms=4 * H,
)


class Traffic:
    """Random events of a few visitors: decisions (some late, some for several variations),
    conversions before and after them, outside the bounds, of other events, legacy calls, and
    exact copies of earlier events sent again in a later batch."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.sent: list[dict[str, Any]] = []
        self.serial = 0

    def _ts(self) -> int:
        # Distinct times, so that no visitor has two first exposures in the same millisecond.
        self.serial += 1
        return T0 - 2 * H + self.rng.randrange(16 * H) // 1000 * 1000 + self.serial

    def batch(self, size: int) -> tuple[list[dict[str, Any]], list[str]]:
        rng = self.rng
        out: list[dict[str, Any]] = []
        legacy: list[str] = []
        for _ in range(size):
            visitor = f"v{rng.randrange(40)}"
            kind = rng.random()
            self.serial += 1
            uuid = f"u{self.serial}"
            if kind < 0.1 and self.sent:
                out.append(rng.choice(self.sent))  # the same event again
                continue
            if kind < 0.35:
                variation = rng.choice(["301", "302", "303", "399"])
                event = decision(visitor, variation, self._ts(), uuid)
                country = rng.choice(["NL", "DE", "FR", None])
                if country is not None:
                    event["attributes"] = [
                        {"entity_id": "9", "key": "country", "type": "custom", "value": country}
                    ]
            elif kind < 0.4:
                variation = rng.choice(["301", "302"])
                legacy.append(
                    f"a=1&n=purchase&u={visitor}&x100={variation}&v={rng.randrange(500)}"
                    f"&time={self._ts() // 1000}"
                )
                continue
            elif kind < 0.8:
                event = conversion(visitor, self._ts(), uuid, revenue=rng.randrange(1000))
            elif kind < 0.95:
                event = conversion(
                    visitor, self._ts(), uuid, key="signup", entity="501",
                    value=rng.randrange(40) / 4,
                )  # fmt: skip
            else:
                event = conversion(visitor, self._ts(), uuid, key="other", entity="502")
            self.sent.append(event)
            out.append(event)
        return out, legacy


def _state(settings: Settings, spec: CountingSpec, segment: str | None = None) -> VisitorState:
    con, seen = open_lake(settings.lake_dir)
    return count_state(con, spec, seen, tuple(table_ids(settings.lake_dir)), segment)


def _updated(settings: Settings, state: VisitorState) -> VisitorState | None:
    con, seen = open_lake(settings.lake_dir)
    return update(con, settings.lake_dir, state, seen, tuple(table_ids(settings.lake_dir)))


def _from_scratch(settings: Settings, spec: CountingSpec, segment: str | None = None) -> Any:
    con, _ = open_lake(settings.lake_dir)
    return count_segments(con, spec, segment)


#: The counts each test keeps up to date: two experiments' settings, one also by country.
KEYS = ((SPEC, None), (WINDOWED, None), (SPEC, "country"))


@pytest.mark.parametrize("seed", range(4))
def test_counts_updated_after_each_append_equal_counts_from_scratch(
    tmp_path: Path, seed: int
) -> None:
    traffic = Traffic(seed)
    settings = build_lake(tmp_path, *traffic.batch(60))
    states = {key: _state(settings, *key) for key in KEYS}
    for step in range(6):
        build_lake(tmp_path, *traffic.batch(traffic.rng.randrange(1, 40)))
        if step == 3:  # compaction rewrites the files: no new data, nothing to recount
            loader = Loader(settings)
            loader.compact()
            loader.close()
        for (spec, segment), state in states.items():
            updated = _updated(settings, state)
            assert updated is not None, (seed, step)
            expected = _from_scratch(settings, spec, segment)
            assert updated.by_segment() == expected, (seed, step, spec, segment)
            assert updated.counts() == count(open_lake(settings.lake_dir)[0], spec)
            states[spec, segment] = updated
    # Multiple exposures happened along the way, and visitors in every country.
    assert any(states[SPEC, None].multiple)
    assert set(states[SPEC, "country"].by_segment()) == {"NL", "DE", "FR", None}


def test_an_update_with_nothing_new_keeps_the_counts(tmp_path: Path) -> None:
    settings = build_lake(tmp_path, *Traffic(7).batch(50))
    state = _state(settings, SPEC)
    again = _updated(settings, state)
    assert again is not None and again.counts() == state.counts()


def test_removed_rows_ask_for_a_counting_from_scratch(tmp_path: Path) -> None:
    settings = build_lake(tmp_path, *Traffic(8).batch(50))
    state = _state(settings, SPEC)
    DeltaTable(str(settings.lake_dir / "conversions")).delete("visitor_id = 'v1'")
    assert _updated(settings, state) is None


def test_a_rebuilt_lake_asks_for_a_counting_from_scratch(tmp_path: Path) -> None:
    traffic = Traffic(9)
    first, legacy = traffic.batch(50)
    settings = build_lake(tmp_path / "a", first, legacy)
    state = _state(settings, SPEC)
    other = build_lake(tmp_path / "b", first, legacy)  # the same events, a new table
    con, seen = open_lake(other.lake_dir)
    assert update(con, other.lake_dir, state, seen, tuple(table_ids(other.lake_dir))) is None


def test_appended_files_are_the_files_added_with_new_rows(tmp_path: Path) -> None:
    traffic = Traffic(10)
    settings = build_lake(tmp_path, *traffic.batch(30))
    table = settings.lake_dir / "conversions"
    before = DeltaTable(str(table))
    build_lake(tmp_path, *traffic.batch(30))
    after = DeltaTable(str(table))
    added = appended_files(table, before.version(), after.version())
    assert added is not None
    assert sorted(added) == sorted(set(after.file_uris()) - set(before.file_uris()))
    assert appended_files(table, None, after.version()) is not None
    assert appended_files(table, after.version(), after.version()) == []
    assert appended_files(table, after.version() + 1, after.version()) is None


def test_counted_updates_a_state_of_the_same_spec_and_counts_others_from_scratch(
    tmp_path: Path,
) -> None:
    traffic = Traffic(11)
    settings = build_lake(tmp_path, *traffic.batch(50))
    lake, ids = settings.lake_dir, tuple(table_ids(settings.lake_dir))
    con, seen = open_lake(lake)
    state, updated = counted(con, lake, SPEC, seen, ids, None)
    assert not updated
    build_lake(tmp_path, *traffic.batch(20))
    con, seen = open_lake(lake)
    again, updated = counted(con, lake, SPEC, seen, ids, state)
    assert updated and again.versions == seen
    other, updated = counted(con, lake, WINDOWED, seen, ids, state)
    assert not updated and other.counts() == count(con, WINDOWED)


def test_states_keep_the_most_recently_used_within_their_size(tmp_path: Path) -> None:
    settings = build_lake(tmp_path, *Traffic(12).batch(50))
    one, two = _state(settings, SPEC), _state(settings, WINDOWED)
    states = States(max_bytes=one.nbytes + two.nbytes)
    assert not states.has(SPEC)
    states.put(one)
    states.put(two)
    assert states.has(SPEC) and states.get(SPEC) is one and states.get(WINDOWED) is two
    states.max_bytes = max(one.nbytes, two.nbytes)
    states.put(one)  # the most recently used stays, the other goes
    assert states.get(SPEC) is one and states.get(WINDOWED) is None
    states.max_bytes = one.nbytes - 1
    states.put(one)  # larger than all there is room for: not kept
    assert states.get(SPEC) is None


def test_states_in_files_are_shared_and_brought_up_to_date(tmp_path: Path) -> None:
    """What one worker (or a server before its restart) kept, another reads and updates."""
    traffic = Traffic(13)
    settings = build_lake(tmp_path / "data", *traffic.batch(60))
    lake, ids = settings.lake_dir, tuple(table_ids(settings.lake_dir))
    directory = tmp_path / "states"
    first, second = States(directory), States(directory)
    state = _state(settings, SPEC)
    first.put(state)
    assert len(list(directory.glob("*.arrow"))) == 1
    assert second.has(SPEC) and not second.has(WINDOWED) and not second.has(SPEC, "country")
    read = second.get(SPEC)
    assert read is not None and read is not state
    assert read.versions == state.versions and read.counts() == state.counts()
    assert second.get(WINDOWED) is None and second.get(SPEC, "country") is None
    by_country = _state(settings, SPEC, "country")
    first.put(by_country)
    read_by_country = second.get(SPEC, "country")
    assert read_by_country is not None
    assert read_by_country.by_segment() == by_country.by_segment()

    build_lake(tmp_path / "data", *traffic.batch(30))
    con, seen = open_lake(lake)
    newer, updated = counted(con, lake, SPEC, seen, ids, read)
    assert updated and newer.counts() == count(con, SPEC)
    second.put(newer)
    # The first one still holds the older state in memory; the file is newer.
    again = first.get(SPEC)
    assert again is not None and again.versions == seen and again.counts() == newer.counts()


def test_a_state_kept_without_waiting_is_there_at_once_and_in_its_file_soon(
    tmp_path: Path,
) -> None:
    settings = build_lake(tmp_path / "data", *Traffic(17).batch(40))
    directory = tmp_path / "states"
    states, state = States(directory), _state(settings, SPEC)
    states.put(state, wait=False)
    assert states.get(SPEC) is not None
    states.flush()
    read = States(directory).get(SPEC)
    assert read is not None and read.counts() == state.counts()


def test_a_state_file_that_cannot_be_read_is_counted_again(tmp_path: Path) -> None:
    settings = build_lake(tmp_path / "data", *Traffic(14).batch(40))
    directory = tmp_path / "states"
    States(directory).put(_state(settings, SPEC))
    [path] = directory.glob("*.arrow")
    path.write_bytes(path.read_bytes()[:100])  # torn
    assert States(directory).get(SPEC) is None


def test_state_files_past_their_size_go_least_recently_written_first(tmp_path: Path) -> None:
    settings = build_lake(tmp_path / "data", *Traffic(15).batch(40))
    directory = tmp_path / "states"
    States(directory).put(_state(settings, SPEC))
    [path] = directory.glob("*.arrow")
    states = States(directory, max_file_bytes=path.stat().st_size * 3 // 2)
    os.utime(path, (1, 1))  # written long ago
    states.put(_state(settings, WINDOWED))
    assert not path.exists() and len(list(directory.glob("*.arrow"))) == 1
    assert States(directory).get(WINDOWED) is not None


def test_revenue_sums_past_int64_stay_exact_when_brought_up_to_date(tmp_path: Path) -> None:
    big = 2**62 + 1
    settings = build_lake(
        tmp_path,
        [decision("v1", "301", T0 + H, "d1"), conversion("v1", T0 + 2 * H, "c1", revenue=big)],
    )
    state = _state(settings, SPEC)
    build_lake(tmp_path, [conversion("v1", T0 + 3 * H, "c2", revenue=big + 4)])
    updated = _updated(settings, state)
    assert updated is not None
    assert updated.counts().metrics[2]["301"].sum == 2 * big + 4
    assert updated.counts() == _from_scratch(settings, SPEC)[None]


def test_the_daily_pass_makes_the_same_state(tmp_path: Path) -> None:
    traffic = Traffic(16)
    settings = build_lake(tmp_path, *traffic.batch(80))
    lake, ids = settings.lake_dir, tuple(table_ids(settings.lake_dir))
    for spec in (SPEC, WINDOWED):
        con, seen = open_lake(lake)
        daily, state = count_daily_state(con, spec, seen, ids)
        assert daily == count_daily(open_lake(lake)[0], spec)
        assert state.counts() == _state(settings, spec).counts() == daily[-1][1]
    build_lake(tmp_path, *traffic.batch(30))
    updated = _updated(settings, state)
    assert updated is not None and updated.counts() == _from_scratch(settings, WINDOWED)[None]


def test_a_state_older_than_the_files_the_lake_keeps_asks_for_a_counting_from_scratch(
    tmp_path: Path,
) -> None:
    """Compaction replaces files; once a vacuum deleted the ones a state's snapshot read, that
    state can't be brought up to date (as after Delta's 7-day retention)."""
    traffic = Traffic(18)
    settings = build_lake(tmp_path, *traffic.batch(40))
    build_lake(tmp_path, *traffic.batch(40))
    state = _state(settings, SPEC)
    build_lake(tmp_path, *traffic.batch(20))
    for name in ("decisions", "conversions"):
        table = DeltaTable(str(settings.lake_dir / name))
        table.optimize.compact()
        table.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
    assert _updated(settings, state) is None


#: SPEC after its metrics changed: an event the state has no sums of, one it has with another
#: aggregator, one kept as it was; the others dropped.
NEW_METRICS = replace(
    SPEC,
    metrics=(
        MetricSpec("502", "other", Aggregator.COUNT),
        MetricSpec("501", "signup", Aggregator.UNIQUE),
        MetricSpec("500", "purchase", Aggregator.SUM, "revenue"),
    ),
)
#: SPEC paused after every event of the lakes `Traffic` makes (they end at T0 + 14 H).
PAUSED = replace(SPEC, intervals=((T0, T0 + 10 * H), (T0 + 12 * H, T0 + 15 * H)))


@pytest.mark.parametrize("segment", [None, "country"])
def test_a_state_is_derived_for_other_metrics_and_brought_up_to_date_from_there(
    tmp_path: Path, segment: str | None
) -> None:
    traffic = Traffic(20)
    settings = build_lake(tmp_path, *traffic.batch(80))
    lake, ids = settings.lake_dir, tuple(table_ids(settings.lake_dir))
    state = _state(settings, SPEC, segment)
    build_lake(tmp_path, *traffic.batch(30))  # loaded before the first request after the change
    con, seen = open_lake(lake)
    derived, updated = counted(con, lake, NEW_METRICS, seen, ids, state, segment)
    assert updated and derived.spec == NEW_METRICS and derived.versions == seen
    assert derived.by_segment() == _from_scratch(settings, NEW_METRICS, segment)
    assert any(derived.sums.conversions[0])  # the new event's conversions were counted
    build_lake(tmp_path, *traffic.batch(30))
    again = _updated(settings, derived)
    assert again is not None
    assert again.by_segment() == _from_scratch(settings, NEW_METRICS, segment)


def test_a_paused_experiment_keeps_its_state_when_no_event_is_past_the_pause(
    tmp_path: Path,
) -> None:
    traffic = Traffic(21)
    settings = build_lake(tmp_path, *traffic.batch(80))
    lake, ids = settings.lake_dir, tuple(table_ids(settings.lake_dir))
    state = _state(settings, SPEC)
    con, seen = open_lake(lake)
    paused, updated = counted(con, lake, PAUSED, seen, ids, state)
    assert updated and paused.by_segment() == _from_scratch(settings, PAUSED)
    # After the pause: a new visitor's decision and an assigned visitor's conversion, which
    # count for SPEC (still running) and not for PAUSED.
    assigned = state.visitor_id[0].as_py()
    build_lake(tmp_path, [
        decision("after-pause", "301", T0 + 16 * H, "d-after"),
        conversion(assigned, T0 + 16 * H, "c-after", revenue=5),
    ], [])  # fmt: skip
    again = _updated(settings, paused)
    assert again is not None and again.by_segment() == _from_scratch(settings, PAUSED)
    assert _from_scratch(settings, PAUSED) != _from_scratch(settings, SPEC)
    # Resumed later than every event: the state is still good.
    resumed = replace(PAUSED, intervals=(*PAUSED.intervals, (T0 + 20 * H, None)))
    con, seen = open_lake(lake)
    back, updated = counted(con, lake, resumed, seen, ids, again)
    assert updated and back.by_segment() == _from_scratch(settings, resumed)
    # Resumed back to the pause's start: the events after it count now, so from scratch.
    unpaused = replace(PAUSED, intervals=(*PAUSED.intervals, (T0 + 15 * H, None)))
    recounted, updated = counted(con, lake, unpaused, seen, ids, again)
    assert not updated and recounted.by_segment() == _from_scratch(settings, unpaused)


def test_settings_a_state_cannot_be_derived_for_ask_for_a_counting_from_scratch(
    tmp_path: Path,
) -> None:
    settings = build_lake(tmp_path, *Traffic(22).batch(80))
    lake, ids = settings.lake_dir, tuple(table_ids(settings.lake_dir))
    state = _state(settings, SPEC)
    con, seen = open_lake(lake)
    no_gap = replace(SPEC, intervals=((T0, None),))  # the lake has events in SPEC's gap
    for other in (
        no_gap,
        replace(SPEC, attribution_window_ms=H),
        replace(SPEC, variation_ids=("301", "302")),
        replace(SPEC, experiment_id="101"),
    ):
        assert derive(con, state, other) is None, other
    recounted, updated = counted(con, lake, no_gap, seen, ids, state)
    assert not updated and recounted.by_segment() == _from_scratch(settings, no_gap)


def test_states_find_a_state_of_the_experiment_before_its_settings_changed(
    tmp_path: Path,
) -> None:
    settings = build_lake(tmp_path, *Traffic(23).batch(50))
    state = _state(settings, SPEC)
    in_memory = States()
    in_memory.put(state)
    assert in_memory.sibling(NEW_METRICS) is state
    # A state of the primary metric alone (the list of experiments keeps those), kept later:
    # SPEC's has more of NEW_METRICS' events, so it is the one to start from.
    primary = derive(open_lake(settings.lake_dir)[0], state, replace(SPEC, metrics=METRICS[:1]))
    assert primary is not None
    in_memory.put(primary)
    assert in_memory.sibling(NEW_METRICS) is state
    States(tmp_path / "states").put(state)
    other = States(tmp_path / "states")  # another worker, or the server after a restart
    found = other.sibling(NEW_METRICS)
    assert found is not None and found.spec == SPEC and found.versions == state.versions
    assert found.counts() == state.counts()
    assert other.sibling(PAUSED) is not None
    assert other.sibling(SPEC) is None  # a state of the spec itself is `get`'s
    assert other.sibling(NEW_METRICS, "country") is None
    assert other.sibling(replace(SPEC, attribution_window_ms=H)) is None
    assert other.sibling(replace(SPEC, experiment_id="101")) is None
