"""Bucketing: the SDK's hash vectors, ranges, groups, and the distribution of buckets."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import chi2

from liftlog.rules.bucketing import (
    MAX_TRAFFIC_VALUE,
    Reason,
    bucket,
    bucket_value,
    bucketing_id,
    find_bucket,
    hash_key,
)
from liftlog.wire.datafile import Experiment, Group, TrafficAllocation, Variation

LONG_ID = (
    "a very very very very very very very very very very very very very very very long ppd string"
)


@pytest.mark.parametrize(
    ("user", "parent", "hashed", "expected"),
    [
        ("ppid1", "1886780721", 2256854705, 5254),
        ("ppid2", "1886780721", 1846603100, 4299),
        ("ppid2", "1886780722", 1045634806, 2434),
        ("ppid3", "1886780721", 2336050061, 5439),
        (LONG_ID, "1886780721", 2632290317, 6128),
    ],
)
def test_hash_and_bucket_match_sdk_vectors(
    user: str, parent: str, hashed: int, expected: int
) -> None:
    assert hash_key(user + parent) == hashed
    assert bucket_value(user, parent) == expected


@pytest.mark.parametrize(
    ("user", "parent", "expected"),
    [
        ("test_user", "111127", 4577),
        ("user-1234", "0001", 1378),
        ("user-1234", "0002", 4020),
        ("test_user", "19228", 7019),
        ("test_user", "32222", 9867),
        ("ünïcödé", "40001", 1895),
        ("", "40001", 2890),
    ],
)
def test_bucket_matches_reference_vectors(user: str, parent: str, expected: int) -> None:
    assert bucket_value(user, parent) == expected


@given(st.text(), st.text(alphabet="0123456789", min_size=1, max_size=12))
def test_bucket_is_deterministic_and_in_range(user: str, parent: str) -> None:
    value = bucket_value(user, parent)
    assert 0 <= value < MAX_TRAFFIC_VALUE
    assert value == bucket_value(user, parent)
    # The key is the plain concatenation: only the joined string matters.
    assert value == bucket_value(user + parent[:1], parent[1:])


@settings(max_examples=25, derandomize=True, deadline=None)
@given(salt=st.text(min_size=0, max_size=8), parent=st.integers(min_value=1, max_value=10**10))
def test_buckets_are_uniform(salt: str, parent: int) -> None:
    """20,000 visitor ids over 100 bins of 100 buckets: chi-square p-value above 1e-4."""
    bins = [0] * 100
    ids = 20_000
    for number in range(ids):
        bins[bucket_value(f"{salt}visitor-{number}", str(parent)) // 100] += 1
    expected = ids / len(bins)
    statistic = sum((count - expected) ** 2 / expected for count in bins)
    assert chi2.sf(statistic, df=len(bins) - 1) > 1e-4


def _allocation(*ranges: tuple[str, int]) -> list[TrafficAllocation]:
    return [TrafficAllocation(entity_id=entity, end_of_range=end) for entity, end in ranges]


def test_find_bucket_takes_first_range_above_the_bucket() -> None:
    value = bucket_value("ppid1", "1886780721")  # 5254
    assert find_bucket("ppid1", "1886780721", _allocation(("a", 5254), ("b", 5255))) == "b"
    assert find_bucket("ppid1", "1886780721", _allocation(("a", 5255), ("b", 10000))) == "a"
    assert find_bucket("ppid1", "1886780721", _allocation(("", 6000))) == ""
    assert find_bucket("ppid1", "1886780721", _allocation(("a", value))) is None
    assert find_bucket("ppid1", "1886780721", []) is None


def test_bucketing_id_prefers_string_attribute() -> None:
    assert bucketing_id("u1", {"$opt_bucketing_id": "house"}) == "house"
    assert bucketing_id("u1", {"$opt_bucketing_id": 7}) == "u1"
    assert bucketing_id("u1", {"$opt_bucketing_id": None}) == "u1"
    assert bucketing_id("u1", None) == "u1"


def _experiment(exp_id: str, *ranges: tuple[str, int], key: str = "exp") -> Experiment:
    return Experiment(
        id=exp_id,
        key=key,
        layer_id="1",
        status="Running",
        variations=[Variation(id="v1", key="one"), Variation(id="v2", key="two")],
        traffic_allocation=_allocation(*ranges),
    )


def test_bucket_reports_hole_unknown_variation_and_past_the_end() -> None:
    value = bucket_value("ppid1", "1886780721")  # 5254
    hole = bucket(_experiment("1886780721", ("v1", 5000), ("", 6000), ("v2", 10000)), "ppid1")
    unknown = bucket(_experiment("1886780721", ("nope", 10000)), "ppid1")
    short = bucket(_experiment("1886780721", ("v1", 5000)), "ppid1")
    hit = bucket(_experiment("1886780721", ("v1", 5000), ("v2", 10000)), "ppid1")
    assert [r.reason for r in (hole, unknown, short)] == [Reason.EMPTY_RANGE] * 3
    assert all(r.variation is None and r.bucket == value for r in (hole, unknown, short))
    assert hit.variation is not None and hit.variation.key == "two"
    assert (hit.reason, hit.bucket) == (Reason.BUCKETED, value)


def test_bucket_in_random_group_requires_the_group_to_pick_the_experiment() -> None:
    # "test_user" + "19228" -> 7019: the group picks whichever experiment owns 7019.
    first = _experiment("111127", ("v1", 10000))
    second = _experiment("111128", ("v2", 10000))
    group = Group(
        id="19228",
        policy="random",
        experiments=[first, second],
        traffic_allocation=_allocation(("111127", 7019), ("111128", 10000)),
    )
    assert bucket(first, "test_user", group).reason == Reason.GROUP_OTHER_EXPERIMENT
    picked = bucket(second, "test_user", group)
    assert picked.variation is not None and picked.variation.key == "two"
    hole = Group(id="19228", policy="random", traffic_allocation=_allocation(("", 10000)))
    assert bucket(second, "test_user", hole).reason == Reason.GROUP_EMPTY_RANGE
    overlapping = Group(id="19228", policy="overlapping", traffic_allocation=[])
    assert bucket(first, "test_user", overlapping).reason == Reason.BUCKETED


def test_bucket_refuses_a_blank_experiment_key() -> None:
    result = bucket(_experiment("1", ("v1", 10000), key="  "), "anyone")
    assert (result.variation, result.reason) == (None, Reason.INVALID_EXPERIMENT_KEY)
