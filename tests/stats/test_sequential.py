"""The mixture SPRT: hand-computed values, always-valid behaviour over looks, A/A error rates."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from liftlog.stats import (
    Comparison,
    MetricKind,
    SequentialConfig,
    Status,
    SuffStats,
    fixed_horizon,
    mixing_ratio_for,
    msprt,
)
from liftlog.stats.sequential import half_width, log_likelihood_ratio

NO_GATE = SequentialConfig(min_visitors=0, min_conversions=0)


def test_msprt_conversion_rate_hand_computed() -> None:
    # p_a = 0.10, p_b = 0.13 on 1000 visitors each: V = (0.09 + 0.1131) / 1000 = 0.0002031.
    # With ρ = 0.01, τ² = ρ (0.09 + 0.1131) = 10 V, so V / (V + τ²) = 1/11 and
    # 1/Λ = sqrt(11) · exp(-τ² θ² / (2 V (V + τ²)))
    #     = sqrt(11) · exp(-10 · 0.03² / (22 · 0.0002031)).
    config = SequentialConfig(mixing_ratio=0.01, min_visitors=0, min_conversions=0)
    r = msprt(
        SuffStats(1000, 100, 100), SuffStats(1000, 130, 130), kind=MetricKind.UNIQUE, config=config
    )
    expected_p = math.sqrt(11) * math.exp(-10 * 0.03**2 / (22 * 0.0002031))
    assert r.p_value == pytest.approx(expected_p, rel=1e-12)
    assert r.p_value == pytest.approx(0.442513, abs=1e-6)  # the same, worked out on paper
    assert not r.is_significant
    # Half-width: sqrt(V (V + τ²) / τ² · (2 ln 10 + ln 11)) = sqrt(1.1 V (2 ln 10 + ln 11)).
    hw = math.sqrt(1.1 * 0.0002031 * (2 * math.log(10) + math.log(11)))
    assert r.difference_interval is not None
    assert r.difference_interval.low == pytest.approx(0.03 - hw, rel=1e-12)
    assert r.difference_interval.high == pytest.approx(0.03 + hw, rel=1e-12)


def test_msprt_matches_two_stream_normal_formula() -> None:
    """Equal arms with equal variance σ²: the reference's two-stream normal form of Λ."""
    n, sigma2, x_bar, y_bar = 400, 2.0, 1.2, 1.0
    baseline = SuffStats(n, 400, 399 * 2 + 400)  # mean 1.0, sample variance 2.0
    variation = SuffStats(n, 480, 399 * 2 + 576)  # mean 1.2, sample variance 2.0
    rho = 0.05
    tau2 = rho * 2 * sigma2  # τ² = ρ (var_a + var_b)
    config = SequentialConfig(mixing_ratio=rho, min_visitors=0, min_conversions=0)
    r = msprt(baseline, variation, kind=MetricKind.COUNT, config=config)
    lam = math.sqrt(2 * sigma2 / (2 * sigma2 + n * tau2)) * math.exp(
        n**2 * tau2 * (x_bar - y_bar) ** 2 / (4 * sigma2 * (2 * sigma2 + n * tau2))
    )
    assert r.p_value == pytest.approx(min(1.0, 1 / lam), rel=1e-12)


def test_msprt_matches_bernoulli_formula() -> None:
    """Equal arms of conversions: the reference's Bernoulli form, V = X̄(1-X̄) + Ȳ(1-Ȳ)."""
    n, x_bar, y_bar = 5000, 0.118, 0.1
    config = SequentialConfig(horizon=20_000, min_visitors=0, min_conversions=0)
    r = msprt(SuffStats(n, 500, 500), SuffStats(n, 590, 590), kind=MetricKind.UNIQUE, config=config)
    v = x_bar * (1 - x_bar) + y_bar * (1 - y_bar)
    tau2 = config.rho * v
    lam = math.sqrt(v / (v + n * tau2)) * math.exp(
        n**2 * tau2 * (x_bar - y_bar) ** 2 / (2 * v * (v + n * tau2))
    )
    assert r.p_value == pytest.approx(1 / lam, rel=1e-9)


def test_mixing_ratio_for_hand_computed() -> None:
    # b = 2 ln 10 / 100 = 0.0460517; Φ(-b) = 0.4816342; φ(b)/b = 0.3985193 / 0.0460517 = 8.653714.
    assert mixing_ratio_for(0.10, 10_000) == pytest.approx(
        0.4816342 / (8.653714 - 0.4816342), rel=1e-5
    )
    assert SequentialConfig().rho == pytest.approx(0.058936, rel=1e-4)


@pytest.mark.parametrize("alpha", [0.01, 0.05, 0.10, 0.2])
def test_msprt_interval_bound_is_where_likelihood_ratio_reaches_one_over_alpha(
    alpha: float,
) -> None:
    variance, tau2 = 3e-4, 2e-3
    hw = half_width(variance, tau2, alpha)
    assert log_likelihood_ratio(hw, variance, tau2) == pytest.approx(math.log(1 / alpha), rel=1e-12)


def _looks(
    rng: np.random.Generator, rates: tuple[float, float], batch: int, looks: int
) -> list[tuple[SuffStats, SuffStats]]:
    conv = np.cumsum(rng.binomial(batch, rates, size=(looks, 2)), axis=0)
    return [
        (
            SuffStats(batch * (i + 1), int(c[0]), int(c[0])),
            SuffStats(batch * (i + 1), int(c[1]), int(c[1])),
        )
        for i, c in enumerate(conv)
    ]


def _run(pairs: list[tuple[SuffStats, SuffStats]], config: SequentialConfig) -> list[Comparison]:
    previous: Comparison | None = None
    out = []
    for a, b in pairs:
        previous = msprt(a, b, kind=MetricKind.UNIQUE, config=config, previous=previous)
        out.append(previous)
    return out


def test_msprt_p_values_never_increase_and_intervals_nest_over_looks() -> None:
    rng = np.random.default_rng(4242)
    for rates in [(0.1, 0.1), (0.1, 0.11), (0.3, 0.27)]:
        results = _run(_looks(rng, rates, batch=150, looks=60), NO_GATE)
        p_values = [r.p_value for r in results if r.p_value is not None]
        assert len(p_values) == 60
        assert all(later <= earlier for earlier, later in itertools.pairwise(p_values))
        for earlier, later in itertools.pairwise(results):
            assert earlier.difference_interval is not None and later.difference_interval is not None
            assert earlier.difference_interval.low <= later.difference_interval.low
            assert later.difference_interval.high <= earlier.difference_interval.high


def test_msprt_aa_false_positive_rate_stays_below_alpha_while_peeking() -> None:
    """300 A/A experiments, a look after every batch of 100 visitors per arm, 30 looks."""
    rng = np.random.default_rng(20240611)
    experiments, alpha = 300, 0.10
    sequential_hits = peeking_hits = 0
    for _ in range(experiments):
        pairs = _looks(rng, (0.1, 0.1), batch=100, looks=30)
        if any(r.is_significant for r in _run(pairs, SequentialConfig())):
            sequential_hits += 1
        if any(fixed_horizon(a, b, kind=MetricKind.UNIQUE).is_significant for a, b in pairs):
            peeking_hits += 1
    assert sequential_hits / experiments <= alpha
    # The same data read with a fixed-horizon test at every look exceeds α: the check has teeth.
    assert peeking_hits / experiments > 2 * alpha


def test_msprt_detects_a_real_effect_most_of_the_time() -> None:
    rng = np.random.default_rng(7)
    detected = sum(
        any(
            r.is_significant
            for r in _run(_looks(rng, (0.10, 0.13), batch=250, looks=40), SequentialConfig())
        )
        for _ in range(50)
    )
    assert detected >= 40


def test_msprt_withholds_a_winner_below_minimum_visitors_and_conversions() -> None:
    huge_effect = (SuffStats(99, 5, 5), SuffStats(99, 60, 60))
    r = msprt(*huge_effect, kind=MetricKind.UNIQUE)
    assert r.status is Status.TOO_FEW_SAMPLES and not r.is_significant
    assert r.p_value is not None and r.p_value < 0.001  # computed, just not declared
    few_conversions = msprt(
        SuffStats(2000, 24, 24), SuffStats(2000, 90, 90), kind=MetricKind.UNIQUE
    )
    assert few_conversions.status is Status.TOO_FEW_SAMPLES and not few_conversions.is_significant
    enough = msprt(SuffStats(2000, 25, 25), SuffStats(2000, 90, 90), kind=MetricKind.UNIQUE)
    assert enough.status is Status.OK and enough.is_significant


def test_msprt_sum_metric_counts_converters_from_nonzero() -> None:
    a = SuffStats(500, 300_000, 9_000_000_000, nonzero=20)
    b = SuffStats(500, 400_000, 12_000_000_000, nonzero=30)
    assert msprt(a, b, kind=MetricKind.SUM).status is Status.TOO_FEW_SAMPLES
    with pytest.raises(ValueError, match="nonzero"):
        msprt(SuffStats(500, 300_000, 9_000_000_000), b, kind=MetricKind.SUM)


@pytest.mark.parametrize(
    ("rate_a", "rate_b", "n"), [(0.10, 0.11, 2000), (0.05, 0.06, 500), (0.2, 0.17, 1500)]
)
def test_msprt_visitors_remaining_is_where_significance_arrives(
    rate_a: float, rate_b: float, n: int
) -> None:
    """Grow both arms by the estimate with the same rates: significant; 1% short of it: not."""

    def at(visitors: float) -> Comparison:
        return msprt(
            SuffStats(visitors, rate_a * visitors, rate_a * visitors),  # type: ignore[arg-type]
            SuffStats(visitors, rate_b * visitors, rate_b * visitors),  # type: ignore[arg-type]
            kind=MetricKind.UNIQUE,
            config=NO_GATE,
        )

    now = at(n)
    assert not now.is_significant and now.visitors_remaining is not None
    per_arm_then = n + now.visitors_remaining / 2
    assert at(per_arm_then).is_significant
    assert not at(n + 0.99 * now.visitors_remaining / 2).is_significant


def test_msprt_visitors_remaining_zero_when_significant_and_none_without_effect() -> None:
    assert (
        msprt(
            SuffStats(5000, 500, 500), SuffStats(5000, 700, 700), kind=MetricKind.UNIQUE
        ).visitors_remaining
        == 0
    )
    assert (
        msprt(
            SuffStats(5000, 500, 500), SuffStats(5000, 500, 500), kind=MetricKind.UNIQUE
        ).visitors_remaining
        is None
    )


def test_msprt_visitors_remaining_includes_the_minimum_gate() -> None:
    r = msprt(SuffStats(50, 25, 25), SuffStats(50, 45, 45), kind=MetricKind.UNIQUE)
    assert r.status is Status.TOO_FEW_SAMPLES
    assert r.visitors_remaining == 100  # 50 more per arm to reach 100 visitors each


def test_msprt_rejects_a_previous_result_from_another_method_or_level() -> None:
    a, b = SuffStats(1000, 100, 100), SuffStats(1000, 120, 120)
    fixed = fixed_horizon(a, b, kind=MetricKind.UNIQUE)
    with pytest.raises(ValueError, match="previous"):
        msprt(a, b, kind=MetricKind.UNIQUE, previous=fixed)
    at_95 = msprt(a, b, kind=MetricKind.UNIQUE, config=SequentialConfig(level=0.95))
    with pytest.raises(ValueError, match="previous"):
        msprt(a, b, kind=MetricKind.UNIQUE, previous=at_95)
