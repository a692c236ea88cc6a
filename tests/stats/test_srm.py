"""Sample ratio mismatch: chi-square equals scipy; the sequential test follows Lindon & Malek."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special
from scipy import stats as sps

from liftlog.stats import SrmResult, sequential_srm_check, srm_check


@pytest.mark.parametrize(
    ("counts", "weights"),
    [([5000, 5100], [1, 1]), ([4800, 5200], [50, 50]), ([1000, 2100, 2900], [0.2, 0.4, 0.4]),
     ([10, 30], [1, 3]), ([7, 1, 9, 3], [1, 1, 1, 1])],
)  # fmt: skip
def test_srm_check_equals_scipy_chisquare(counts: list[int], weights: list[float]) -> None:
    expected = np.array(weights) / sum(weights) * sum(counts)
    scipy_result = sps.chisquare(counts, expected)
    ours = srm_check(counts, weights)
    assert ours.statistic == pytest.approx(scipy_result.statistic, rel=1e-12)
    assert ours.p_value == pytest.approx(scipy_result.pvalue, rel=1e-9, abs=1e-15)
    assert ours.is_mismatch == bool(scipy_result.pvalue < 0.001)


def test_srm_check_flags_below_one_in_a_thousand() -> None:
    assert srm_check([5000, 5400], [1, 1]).is_mismatch  # χ² = 15.4, p ≈ 9e-5
    assert not srm_check([5000, 5300], [1, 1]).is_mismatch  # χ² = 8.7, p ≈ 3e-3


def _reference_log_bf(batches: list[list[int]], p0: list[float], concentration: float) -> float:
    """Batch by batch, as the published algorithm accumulates it (posterior predictive under the
    Dirichlet–multinomial minus the multinomial log-pmf under p0, then α ← α + n)."""
    alpha = [concentration * p for p in p0]
    log_bf = 0.0
    for n in batches:
        total = sum(n)
        lml1 = (
            special.gammaln(total + 1)
            - sum(special.gammaln(x + 1) for x in n)
            + special.gammaln(sum(alpha))
            - sum(special.gammaln(a) for a in alpha)
            + sum(special.gammaln(a + x) for a, x in zip(alpha, n, strict=True))
            - special.gammaln(sum(alpha) + total)
        )
        lml0 = sps.multinomial.logpmf(n, total, p0)
        log_bf += lml1 - lml0
        alpha = [a + x for a, x in zip(alpha, n, strict=True)]
    return log_bf


@pytest.mark.parametrize("concentration", [100.0, 10_000.0])
def test_sequential_srm_equals_batchwise_reference(concentration: float) -> None:
    rng = np.random.default_rng(3)
    p0 = [0.5, 0.3, 0.2]
    batches = [[int(x) for x in rng.multinomial(200, [0.48, 0.32, 0.2])] for _ in range(25)]
    totals = np.sum(batches, axis=0).tolist()
    ours = sequential_srm_check(totals, [5, 3, 2], concentration=concentration)
    log_bf = _reference_log_bf(batches, p0, concentration)
    assert ours.statistic == pytest.approx(math.exp(log_bf), rel=1e-8)
    assert ours.p_value == pytest.approx(min(1.0, math.exp(-log_bf)), rel=1e-8)


def test_sequential_srm_p_value_is_a_running_minimum() -> None:
    previous: SrmResult | None = None
    counts = np.zeros(2, dtype=int)
    rng = np.random.default_rng(5)
    seen = []
    for _ in range(40):
        counts += rng.multinomial(500, [0.47, 0.53])
        previous = sequential_srm_check(counts.tolist(), [1, 1], previous=previous)
        seen.append(previous.p_value)
    assert all(b <= a for a, b in zip(seen, seen[1:], strict=False))  # noqa: RUF007
    assert previous is not None and previous.is_mismatch  # 47/53 is caught within 20 000 visitors


def test_sequential_srm_aa_false_positive_rate_stays_below_threshold() -> None:
    """200 correctly split experiments, a look after every 200 visitors, 50 looks, at 5%."""
    rng = np.random.default_rng(99)
    threshold, flagged = 0.05, 0
    for _ in range(200):
        looks = np.cumsum(rng.multinomial(200, [0.5, 0.5], size=50), axis=0)
        previous: SrmResult | None = None
        for counts in looks:
            previous = sequential_srm_check(
                counts.tolist(), [1, 1], threshold=threshold, previous=previous
            )
        assert previous is not None
        flagged += previous.is_mismatch
    assert flagged / 200 <= threshold


@pytest.mark.parametrize(
    ("counts", "weights"),
    [
        ([1, 2], [1]),
        ([-1, 2], [1, 1]),
        ([1, 2], [-1, 1]),
        ([1, 2], [0, 0]),
        ([1, 2], [math.nan, 1]),
    ],
)
def test_srm_rejects_invalid_input(counts: list[int], weights: list[float]) -> None:
    with pytest.raises(ValueError):
        srm_check(counts, weights)
