"""Each counting rule on a hand-built lake, with the expected numbers worked out by hand."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from liftlog.analysis.counting import (
    _first_of_each_key,
    count,
    count_daily,
    count_segments,
    prepare,
    stream_hits,
)
from liftlog.analysis.counts import MAX_SEGMENT_VALUES, OtherValues, merge_counts, segment_order
from liftlog.analysis.sources import connect
from liftlog.rules.counting import Aggregator, CountingSpec, MetricSpec
from tests.analysis.lakes import T0, H, build_lake, conversion, decision

METRICS = (
    MetricSpec("500", "purchase", Aggregator.UNIQUE),
    MetricSpec("500", "purchase", Aggregator.COUNT),
    MetricSpec("500", "purchase", Aggregator.SUM, "revenue"),
)
SPEC = CountingSpec(
    experiment_id="100",
    campaign_id="200",
    variation_ids=("301", "302"),
    intervals=((T0, T0 + 10 * H),),
    metrics=METRICS,
)


def scenario() -> list[dict[str, Any]]:
    return [
        # v1: A, two purchases
        decision("v1", "301", T0 + H, "d1"),
        conversion("v1", T0 + 2 * H, "c1a", revenue=100),
        conversion("v1", T0 + 3 * H, "c1b", revenue=50),
        # v2: B; the decision arrives twice; a purchase before it; a purchase sent twice
        decision("v2", "302", T0 + H, "d2"),
        decision("v2", "302", T0 + H, "d2"),
        conversion("v2", T0 + H // 2, "c2early", revenue=999),
        conversion("v2", T0 + 2 * H, "c2", revenue=200),
        conversion("v2", T0 + 2 * H, "c2", revenue=200),
        # v3: a decision before the experiment ran, then B inside the bounds
        decision("v3", "301", T0 - H, "d3early"),
        decision("v3", "302", T0 + 5 * H, "d3"),
        conversion("v3", T0 + 6 * H, "c3", revenue=10),
        # v4: A first, then B: stays in A, reported as a multiple exposure
        decision("v4", "301", T0 + H, "d4a"),
        decision("v4", "302", T0 + 2 * H, "d4b"),
        conversion("v4", T0 + 3 * H, "c4"),
        # v5: never decided
        conversion("v5", T0 + 3 * H, "c5", revenue=5),
        # v6: the activation's entity_id is not the decision's campaign_id
        decision("v6", "301", T0 + H, "d6", entity="999"),
        conversion("v6", T0 + 3 * H, "c6", revenue=5),
        # v7: A, purchase after the experiment stopped
        decision("v7", "301", T0 + H, "d7"),
        conversion("v7", T0 + 11 * H, "c7", revenue=5),
        # v9: a 10-digit timestamp; v10: held back; v11: another experiment
        decision("v9", "301", (T0 + H) // 1000, "d9"),
        decision("v10", "302", T0 + H, "d10", holdback=True),
        decision("v11", "301", T0 + H, "d11", experiment="101", campaign="201"),
        # v12: B, an event that is no metric of this experiment, and revenue as a float
        decision("v12", "302", T0 + H, "d12"),
        conversion("v12", T0 + 2 * H, "c12x", key="signup", entity="501"),
        conversion("v12", T0 + 2 * H, "c12", revenue=12.5),
    ]


LEGACY = [f"a=1&n=purchase&u=v8&x100=302&v=700&time={(T0 + 4 * H) // 1000}"]


def test_counting_follows_every_rule(tmp_path: Path) -> None:
    settings = build_lake(tmp_path, scenario(), LEGACY)
    counts = count(connect(settings.lake_dir), SPEC)

    assert counts.visitors == {"301": 3, "302": 4}  # A: v1 v4 v7; B: v2 v3 v8 v12
    assert counts.multiple_exposures == {"301": 1, "302": 0}

    unique, total, revenue = counts.metrics
    assert (unique["301"].sum, unique["302"].sum) == (2, 4)  # A: v1 v4; B: v2 v3 v8 v12
    assert (total["301"].sum, total["302"].sum) == (3, 4)
    assert (revenue["301"].sum, revenue["302"].sum) == (150, 910)  # v12's 12.5 doesn't count
    assert revenue["302"].sum_sq == 200**2 + 10**2 + 700**2
    assert revenue["301"].sum_sq == 150**2
    assert (revenue["301"].nonzero, revenue["302"].nonzero) == (1, 3)
    assert unique["302"].sum_sq == 4 and unique["302"].n == 4
    assert total["301"].sum_sq == 2**2 + 1**2
    assert revenue["302"].total_conversions == 4 and revenue["302"].revenue == 910


def test_counting_attribution_window(tmp_path: Path) -> None:
    visitors = [
        decision("w1", "301", T0 + H, "d1"),
        conversion("w1", T0 + 2 * H, "in", revenue=1),
        conversion("w1", T0 + 4 * H, "out", revenue=2),
    ]
    settings = build_lake(tmp_path, visitors)
    spec = CountingSpec(
        "100", "200", ("301", "302"), ((T0, None),), METRICS, attribution_window_ms=2 * H
    )
    counts = count(connect(settings.lake_dir), spec)
    assert counts.metrics[1]["301"].sum == 1
    assert counts.metrics[2]["301"].sum == 1


def test_counting_several_running_periods(tmp_path: Path) -> None:
    visitors = [
        decision("p1", "301", T0 + H, "d1"),
        conversion("p1", T0 + 3 * H, "paused", revenue=1),  # while paused
        conversion("p1", T0 + 5 * H, "resumed", revenue=2),
        decision("p2", "302", T0 + 3 * H, "d2"),  # decided while paused
    ]
    settings = build_lake(tmp_path, visitors)
    spec = CountingSpec(
        "100", "200", ("301", "302"), ((T0, T0 + 2 * H), (T0 + 4 * H, None)), METRICS
    )
    counts = count(connect(settings.lake_dir), spec)
    assert counts.visitors == {"301": 1, "302": 0}
    assert counts.metrics[2]["301"].sum == 2


def test_counting_on_an_empty_lake(tmp_path: Path) -> None:
    counts = count(connect(tmp_path / "lake"), SPEC)
    assert counts.visitors == {"301": 0, "302": 0}
    assert all(m.n == 0 and m.sum == 0 for per in counts.metrics for m in per.values())


def test_counting_by_segment_uses_the_attribute_at_the_first_decision(tmp_path: Path) -> None:
    def with_country(visitor: dict[str, Any], country: str) -> dict[str, Any]:
        visitor["attributes"] = [
            {"entity_id": "9", "key": "country", "type": "custom", "value": country}
        ]
        return visitor

    visitors = [
        with_country(decision("s1", "301", T0 + H, "d1"), "NL"),
        with_country(decision("s1", "301", T0 + 2 * H, "d1b"), "DE"),  # later: ignored
        with_country(decision("s2", "302", T0 + H, "d2"), "DE"),
        decision("s3", "302", T0 + H, "d3"),
        conversion("s1", T0 + 3 * H, "c1", revenue=10),
        conversion("s2", T0 + 3 * H, "c2", revenue=20),
        conversion("s3", T0 + 3 * H, "c3", revenue=30),
    ]
    settings = build_lake(tmp_path, visitors)
    by_country = count_segments(connect(settings.lake_dir), SPEC, "country")
    assert set(by_country) == {"NL", "DE", None}
    assert by_country["NL"].visitors == {"301": 1, "302": 0}
    assert by_country["DE"].visitors == {"301": 0, "302": 1}
    assert by_country[None].metrics[2]["302"].sum == 30
    assert by_country["DE"].metrics[2]["302"].sum == 20
    by_id = count_segments(connect(settings.lake_dir), SPEC, "9")
    assert by_id["NL"].metrics[2]["301"].sum == 10
    whole = count(connect(settings.lake_dir), SPEC)
    assert merge_counts(SPEC, by_country.values()) == whole  # segments add up to the whole


def test_segments_past_the_most_common_values_are_counted_together(tmp_path: Path) -> None:
    """An attribute with more values than `MAX_SEGMENT_VALUES`: the most common stay apart (ties
    by value), the rest are one `OtherValues`, and all of them still add up to the whole."""
    events: list[dict[str, Any]] = []
    n_values = MAX_SEGMENT_VALUES + 5
    for k in range(n_values):  # value k has one visitor, and value 0 five more
        for j in range(6 if k == 0 else 1):
            visitor = f"z{k}-{j}"
            d = decision(visitor, "301" if j % 2 == 0 else "302", T0 + H, f"d{k}-{j}")
            d["attributes"] = [{"entity_id": "9", "key": "zip", "type": "custom",
                                "value": f"{k:05d}"}]  # fmt: skip
            events += [d, conversion(visitor, T0 + 2 * H, f"c{k}-{j}", revenue=k)]
    events.append(decision("nozip", "302", T0 + H, "dn"))
    settings = build_lake(tmp_path, events)
    by_zip = count_segments(connect(settings.lake_dir), SPEC, "zip")
    other = OtherValues(5)
    kept = ["00000", *(f"{k:05d}" for k in range(1, MAX_SEGMENT_VALUES))]
    assert sorted(by_zip, key=segment_order) == [*kept, other, None]
    assert by_zip["00000"].visitors == {"301": 3, "302": 3}
    assert sum(by_zip[other].visitors.values()) == 5
    assert by_zip[other].metrics[2]["301"].sum == sum(range(MAX_SEGMENT_VALUES, n_values))
    assert merge_counts(SPEC, by_zip.values()) == count(connect(settings.lake_dir), SPEC)


def test_counting_daily_is_cumulative_and_ends_at_the_total(tmp_path: Path) -> None:
    day = 86_400_000
    t0 = 1_699_920_000_000  # midnight UTC
    visitors = [
        decision("t1", "301", t0 + H, "d1"),
        conversion("t1", t0 + 2 * H, "c1", revenue=10),
        conversion("t1", t0 + day + H, "c2", revenue=5),  # the same visitor, a day later
        decision("t2", "302", t0 + day + H, "d2"),
        conversion("t2", t0 + 2 * day + H, "c3", revenue=7),
    ]
    settings = build_lake(tmp_path, visitors)
    spec = CountingSpec("100", "200", ("301", "302"), ((t0, None),), METRICS)
    con = connect(settings.lake_dir)
    daily = count_daily(con, spec)
    assert len(daily) == 3
    assert [d[1].visitors for d in daily] == [
        {"301": 1, "302": 0},
        {"301": 1, "302": 1},
        {"301": 1, "302": 1},
    ]
    unique, total, revenue = (
        [d[1].metrics[i]["301"] for d in daily] for i in range(3)
    )  # fmt: skip
    assert [m.sum for m in unique] == [1, 1, 1]
    assert [m.sum for m in total] == [1, 2, 2]
    assert [(m.sum, m.sum_sq) for m in revenue] == [(10, 100), (15, 225), (15, 225)]
    assert daily[-1][1] == count(con, spec)
    scenario_lake = build_lake(tmp_path / "scenario", scenario(), LEGACY)
    con = connect(scenario_lake.lake_dir)
    assert count_daily(con, SPEC)[-1][1] == count(con, SPEC)


def test_counting_keeps_large_sums_exact(tmp_path: Path) -> None:
    # 2**40 cents per purchase: the squares (2**80 and up) are beyond int64 and float64.
    big = 2**40
    visitors = [
        decision("b1", "301", T0 + H, "d1"),
        conversion("b1", T0 + 2 * H, "c1", revenue=big),
        conversion("b1", T0 + 3 * H, "c2", revenue=big + 1),
        conversion("b1", T0 + 3 * H, "c2", revenue=big + 1),  # a duplicate
        decision("b2", "301", T0 + H, "d2"),
        conversion("b2", T0 + 2 * H, "c3", revenue=3),
    ]
    settings = build_lake(tmp_path, visitors)
    counts = count(connect(settings.lake_dir), SPEC)
    revenue = counts.metrics[2]["301"]
    assert revenue.sum == 2 * big + 1 + 3
    assert revenue.sum_sq == (2 * big + 1) ** 2 + 3**2
    assert revenue.revenue == 2 * big + 4 and revenue.total_conversions == 3


def test_counting_in_small_batches_with_colliding_hashes_changes_nothing(tmp_path: Path) -> None:
    # Batches of 2 rows put a duplicate and its original in different batches; a key hash cut to
    # 1 or 2 bits makes nearly every hash repeat, so every row is de-duplicated on its real key.
    settings = build_lake(tmp_path, scenario(), LEGACY)
    con = connect(settings.lake_dir)
    batches = list(stream_hits(con, SPEC, prepare(con, SPEC), batch_rows=2))
    assert len(batches) > 2
    whole = count(con, SPEC)
    assert (whole.metrics[1]["301"].sum, whole.metrics[1]["302"].sum) == (3, 4)  # as by hand
    for batch_rows, key_bits in ((1, 64), (2, 2), (3, 1), (1_000, 1)):
        split = count_segments(con, SPEC, None, batch_rows=batch_rows, key_bits=key_bits)
        assert split == {None: whole}, (batch_rows, key_bits)
    daily = count_daily(con, SPEC)
    assert count_daily(con, SPEC, batch_rows=2, key_bits=1) == daily
    assert daily[-1][1] == whole


def test_deduplication_compares_keys_when_hashes_collide() -> None:
    # Rows 0 and 2 are one event; row 1 has another key with the same hash (a collision), row 3
    # is alone. Only row 2 may go.
    hits = pa.table(
        {
            "h": pa.array([7, 7, 7, 9], pa.uint64()),
            "entity_id": ["500", "500", "500", None],
            "uuid": ["a", "b", "a", "a"],
            "ts": pa.array([1, 1, 1, 1], pa.int64()),
        }
    )
    keep = _first_of_each_key(hits)
    assert keep is not None and keep.tolist() == [True, True, False, True]
    collision_only = _first_of_each_key(hits.slice(1, 2))
    assert collision_only is not None and collision_only.tolist() == [True, True]
    assert _first_of_each_key(hits.slice(2, 2)) is None  # no hash repeats: nothing to compare


def test_a_conversion_of_two_metric_events_counts_for_both(tmp_path: Path) -> None:
    metrics = (
        MetricSpec("500", "purchase", Aggregator.COUNT),
        MetricSpec("501", "signup", Aggregator.SUM, "revenue"),
        MetricSpec("500", "purchase", Aggregator.UNIQUE),
    )
    spec = CountingSpec("100", "200", ("301", "302"), ((T0, None),), metrics)
    visitors = [
        decision("m1", "301", T0 + H, "d1"),
        # the id of purchase, the key of signup: one of each
        conversion("m1", T0 + 2 * H, "both", key="signup", entity="500", revenue=7),
        conversion("m1", T0 + 2 * H, "both", key="signup", entity="500", revenue=7),
        conversion("m1", T0 + 3 * H, "s", key="signup", entity="501", revenue=5),
        decision("m2", "302", T0 + H, "d2"),
        conversion("m2", T0 + 2 * H, "p", key="purchase", entity="500", revenue=3),
    ]
    settings = build_lake(tmp_path, visitors)
    purchases, signup_revenue, purchasers = count(connect(settings.lake_dir), spec).metrics
    assert (purchases["301"].sum, purchases["302"].sum) == (1, 1)
    assert (signup_revenue["301"].sum, signup_revenue["302"].sum) == (12, 0)
    assert signup_revenue["301"].total_conversions == 2
    assert (purchasers["301"].sum, purchasers["302"].revenue) == (1, 3)


def test_each_day_of_count_daily_is_a_count_up_to_that_day(tmp_path: Path) -> None:
    day = 86_400_000
    t0 = 1_699_920_000_000  # midnight UTC
    rng = random.Random(4)
    metrics = (
        MetricSpec("500", "purchase", Aggregator.UNIQUE),
        MetricSpec("500", "purchase", Aggregator.SUM, "revenue"),
        MetricSpec("501", "signup", Aggregator.COUNT),
        MetricSpec("501", "signup", Aggregator.SUM, "value"),
    )
    visitors: list[dict[str, Any]] = []
    for v in range(40):
        first = t0 + rng.randrange(5 * day)
        visitors.append(decision(f"r{v}", rng.choice(["301", "302"]), first, f"d{v}"))
        for c in range(rng.randrange(6)):
            ts = first + rng.randrange(-day, 3 * day)
            key, entity = rng.choice([("purchase", "500"), ("signup", "501")])
            event = conversion(
                f"r{v}", ts, f"c{v}.{c}", key=key, entity=entity,
                revenue=rng.randrange(1, 500), value=rng.choice([0.5, 1.25, -0.5]),
            )  # fmt: skip
            visitors.append(event)
            if rng.random() < 0.2:
                visitors.append(event)  # sent twice
    settings = build_lake(tmp_path, visitors)
    con = connect(settings.lake_dir)
    spec = CountingSpec("100", "200", ("301", "302"), ((t0, None),), metrics)
    daily = count_daily(con, spec)
    assert len(daily) >= 5
    assert count_daily(con, spec, batch_rows=3, key_bits=2) == daily
    for end, counts in daily:
        upto = count(con, CountingSpec("100", "200", ("301", "302"), ((t0, end),), metrics))
        assert counts.visitors == upto.visitors
        for got, want in zip(counts.metrics, upto.metrics, strict=True):
            for variation in ("301", "302"):
                g, w = got[variation], want[variation]
                assert (g.n, g.nonzero, g.unique_conversions, g.total_conversions, g.revenue) == (
                    w.n, w.nonzero, w.unique_conversions, w.total_conversions, w.revenue,
                )  # fmt: skip
                assert g.sum == pytest.approx(w.sum) and g.sum_sq == pytest.approx(w.sum_sq)
                assert g.value == pytest.approx(w.value)


def test_revenue_sums_beyond_int64_stay_exact_across_batches(tmp_path: Path) -> None:
    huge = 2**62  # two of them overflow int64: the running sums must switch to Python ints
    visitors = [
        decision("h1", "301", T0 + H, "d1"),
        conversion("h1", T0 + 2 * H, "c1", revenue=huge),
        conversion("h1", T0 + 3 * H, "c2", revenue=huge),
        conversion("h1", T0 + 4 * H, "c3", revenue=huge),
        conversion("h1", T0 + 4 * H, "c3", revenue=huge),  # a duplicate
    ]
    settings = build_lake(tmp_path, visitors)
    con = connect(settings.lake_dir)
    for batch_rows in (1, 1_000):
        revenue = count_segments(con, SPEC, None, batch_rows=batch_rows)[None].metrics[2]["301"]
        assert revenue.sum == revenue.revenue == 3 * huge
        assert revenue.sum_sq == (3 * huge) ** 2
