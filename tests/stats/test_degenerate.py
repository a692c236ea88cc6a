"""Degenerate inputs come back as a status with None fields, never an exception or a silent 0."""

from __future__ import annotations

from typing import Any

import pytest

from liftlog.stats import (
    BayesianComparison,
    Comparison,
    MetricKind,
    Scale,
    Status,
    SuffStats,
    bayesian,
    fixed_horizon,
    msprt,
    sequential_srm_check,
    srm_check,
)

EMPTY = SuffStats(0, 0, 0)
U = MetricKind.UNIQUE
C = MetricKind.SUM

# (case, kind, baseline, variation, status, difference) — difference None when not computable
CASES: list[tuple[str, MetricKind, SuffStats, SuffStats, Status, float | None]] = [
    ("no visitors", U, EMPTY, EMPTY, Status.NO_VISITORS, None),
    ("empty baseline", U, EMPTY, SuffStats(500, 50, 50), Status.ONE_ARM, None),
    ("empty variation", C, SuffStats(500, 900, 4000), EMPTY, Status.ONE_ARM, None),
    (
        "one visitor",
        C,
        SuffStats(1, 3, 9),
        SuffStats(500, 900, 4000),
        Status.TOO_FEW_SAMPLES,
        1.8 - 3,
    ),
    ("no conversions", U, SuffStats(500, 0, 0), SuffStats(500, 0, 0), Status.ZERO_VARIANCE, 0.0),
    (
        "all converted",
        U,
        SuffStats(500, 500, 500),
        SuffStats(400, 300, 300),
        Status.ZERO_VARIANCE,
        -0.25,
    ),
    ("constant values", C, SuffStats(3, 6, 12), SuffStats(3, 9, 29), Status.ZERO_VARIANCE, 1.0),
    ("zero baseline mean", C, SuffStats(4, 0, 8), SuffStats(4, 4, 10), Status.ZERO_BASELINE, 1.0),
]
IDS = [c[0] for c in CASES]


def _methods(kind: MetricKind, a: SuffStats, b: SuffStats) -> list[Comparison | BayesianComparison]:
    return [
        fixed_horizon(a, b, kind=kind),
        msprt(a, b, kind=kind) if kind is U else msprt(_nz(a), _nz(b), kind=kind),
        bayesian(a, b, kind=kind, scale=Scale.ABSOLUTE),
    ]


def _nz(s: SuffStats) -> SuffStats:
    return SuffStats(s.n, s.sum, s.sum_sq, nonzero=s.n)


@pytest.mark.parametrize(("case", "kind", "a", "b", "status", "difference"), CASES, ids=IDS)
def test_degenerate_inputs_return_a_status(
    case: str,
    kind: MetricKind,
    a: SuffStats,
    b: SuffStats,
    status: Status,
    difference: float | None,
) -> None:
    for result in _methods(kind, a, b):
        expected = status
        if isinstance(result, Comparison) and result.method == "sequential" and status.decidable:
            expected = Status.TOO_FEW_SAMPLES  # under 100 visitors: the sequential gate
        assert result.status is expected, (case, result)
        assert not result.is_significant if isinstance(result, Comparison) else True
        if difference is None:
            assert result.difference is None
        else:
            assert result.difference == pytest.approx(difference)
        if status is Status.ZERO_BASELINE:
            assert result.lift is None
        if not status.decidable:
            _assert_no_inference(result)


def _assert_no_inference(result: Comparison | BayesianComparison) -> None:
    if isinstance(result, Comparison):
        assert result.p_value is None and result.difference_interval is None
        assert result.lift_interval is None and result.significance is None
        assert result.visitors_remaining is None
    else:
        assert result.chance_to_beat is None and result.expected_loss is None
        assert result.credible_interval is None


def test_zero_baseline_still_tests_the_difference() -> None:
    r = fixed_horizon(SuffStats(40, 0, 80), SuffStats(40, 40, 100), kind=C)
    assert r.status is Status.ZERO_BASELINE and r.p_value is not None
    assert r.lift is None and r.lift_interval is None and r.difference_interval is not None
    assert bayesian(SuffStats(40, 0, 80), SuffStats(40, 40, 100), kind=C).posterior_mean is None


SRM_CASES: list[tuple[str, list[int], list[float], Status, Any]] = [
    ("no visitors", [0, 0], [1, 1], Status.NO_VISITORS, None),
    ("one arm", [10], [1], Status.ONE_ARM, None),
    ("one weighted arm", [10, 0], [1, 0], Status.ONE_ARM, None),
    ("traffic to a zero-weight arm", [10, 3], [1, 0], Status.OK, 0.0),
]


@pytest.mark.parametrize(
    ("case", "counts", "weights", "status", "p"), SRM_CASES, ids=[c[0] for c in SRM_CASES]
)
def test_srm_degenerate_inputs_return_a_status(
    case: str, counts: list[int], weights: list[float], status: Status, p: float | None
) -> None:
    for result in (srm_check(counts, weights), sequential_srm_check(counts, weights)):
        assert result.status is status
        assert result.p_value == p
        assert result.is_mismatch is (p is not None)
