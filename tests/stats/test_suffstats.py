"""Sufficient statistics: merge laws and order independence (hypothesis), variance readings."""

from __future__ import annotations

import math
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liftlog.stats import MetricKind, SuffStats, bayesian, fixed_horizon, merge_all, msprt

cents = st.lists(st.integers(0, 1_000_000), max_size=40)
values = st.lists(st.floats(-1e6, 1e6, allow_nan=False), max_size=40)


def _stats(xs: list[int]) -> SuffStats:
    return SuffStats.from_values(xs, covariates=[x // 3 for x in xs])


@given(cents, cents, cents)
def test_suffstats_merge_is_associative(xs: list[int], ys: list[int], zs: list[int]) -> None:
    a, b, c = _stats(xs), _stats(ys), _stats(zs)
    assert a.merge(b).merge(c) == a.merge(b.merge(c))


@given(cents, cents)
def test_suffstats_merge_is_commutative_with_empty_identity(xs: list[int], ys: list[int]) -> None:
    a, b = _stats(xs), _stats(ys)
    assert a.merge(b) == b.merge(a)
    assert a.merge(SuffStats.empty()) == a == SuffStats.empty().merge(a)


@given(cents, cents)
def test_suffstats_merge_equals_statistics_of_the_union(xs: list[int], ys: list[int]) -> None:
    assert _stats(xs).merge(_stats(ys)) == _stats(xs + ys)


@given(values, values, values)
def test_suffstats_float_merge_is_associative_to_rounding(
    xs: list[float], ys: list[float], zs: list[float]
) -> None:
    a, b, c = (SuffStats.from_values(v) for v in (xs, ys, zs))
    left, right = a.merge(b).merge(c), a.merge(b.merge(c))
    assert left.n == right.n and left.nonzero == right.nonzero
    scale = math.fsum(abs(v) for v in xs + ys + zs)
    assert left.sum == pytest.approx(right.sum, abs=1e-12 * scale)
    assert left.sum_sq == pytest.approx(right.sum_sq, rel=1e-12)


@given(values, st.randoms(use_true_random=False))
def test_suffstats_from_values_ignores_order(xs: list[float], rnd: object) -> None:
    shuffled = list(xs)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert SuffStats.from_values(shuffled) == SuffStats.from_values(xs)


@settings(deadline=None, max_examples=50)
@given(
    st.lists(st.integers(0, 5), min_size=2, max_size=300),
    st.lists(st.integers(0, 5), min_size=2, max_size=300),
    st.randoms(use_true_random=False),
)
def test_results_do_not_depend_on_event_order(xs: list[int], ys: list[int], rnd: object) -> None:
    """Shuffle the visitors and split them into arbitrary batches: every result is identical."""

    def batched(v: list[int]) -> SuffStats:
        v = list(v)
        rnd.shuffle(v)  # type: ignore[attr-defined]
        cut = rnd.randint(0, len(v))  # type: ignore[attr-defined]
        return merge_all([SuffStats.from_values(v[cut:]), SuffStats.from_values(v[:cut])])

    for kind in (MetricKind.COUNT, MetricKind.SUM):
        a, b = SuffStats.from_values(xs), SuffStats.from_values(ys)
        a2, b2 = batched(xs), batched(ys)
        assert fixed_horizon(a, b, kind=kind) == fixed_horizon(a2, b2, kind=kind)
        assert msprt(a, b, kind=kind) == msprt(a2, b2, kind=kind)
        assert bayesian(a, b, kind=kind) == bayesian(a2, b2, kind=kind)


@given(st.lists(st.floats(-1e4, 1e4, allow_nan=False), min_size=2, max_size=60))
def test_suffstats_variance_equals_sample_variance(xs: list[float]) -> None:
    ours = SuffStats.from_values(xs).variance(MetricKind.SUM)
    assert ours == pytest.approx(statistics.variance(xs), rel=1e-7, abs=1e-6)


def test_suffstats_unique_variance_is_p_times_one_minus_p() -> None:
    assert SuffStats(10, 3, 3).variance(MetricKind.UNIQUE) == pytest.approx(0.21)
    assert SuffStats(1, 1, 1).variance(MetricKind.UNIQUE) == 0.0
    assert SuffStats(0, 0, 0).variance(MetricKind.UNIQUE) is None
    assert SuffStats(1, 5, 25).variance(MetricKind.COUNT) is None


def test_suffstats_integer_sums_stay_exact() -> None:
    big = SuffStats.from_values([10**15 + 1, 10**15 + 1, 10**15 + 1])
    assert isinstance(big.sum, int) and big.variance(MetricKind.SUM) == 0.0


@pytest.mark.parametrize(
    "fields",
    [
        {"n": -1, "sum": 0, "sum_sq": 0},
        {"n": 2, "sum": 1, "sum_sq": -1},
        {"n": 2, "sum": 1, "sum_sq": 1, "nonzero": 3},
        {"n": 2, "sum": math.inf, "sum_sq": 1},
        {"n": 0, "sum": 1, "sum_sq": 1},
    ],
)
def test_suffstats_rejects_impossible_values(fields: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        SuffStats(**fields)  # type: ignore[arg-type]
