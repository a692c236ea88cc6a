"""Fixed-horizon tests equal scipy and statsmodels on the same data, to 1e-9."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps
from statsmodels.stats import proportion
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from liftlog.stats import MetricKind, Status, SuffStats, fixed_horizon

TOL = 1e-9


def _samples(seed: int, integer: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n_a, n_b = (int(n) for n in rng.integers(20, 2000, 2))
    if integer:
        return rng.poisson(1.3, n_a), rng.poisson(1.45, n_b)
    return rng.normal(10.0, 3.0, n_a), rng.gamma(4.0, 2.6, n_b)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("integer", [True, False])
@pytest.mark.parametrize("level", [0.90, 0.95])
def test_fixed_horizon_welch_equals_scipy_and_statsmodels(
    seed: int, integer: bool, level: float
) -> None:
    a, b = _samples(seed, integer)
    cast = int if integer else float
    kind = MetricKind.COUNT if integer else MetricKind.SUM
    ours = fixed_horizon(
        SuffStats.from_values([cast(v) for v in a]),
        SuffStats.from_values([cast(v) for v in b]),
        kind=kind,
        level=level,
    )
    scipy_result = sps.ttest_ind(b, a, equal_var=False)
    scipy_ci = scipy_result.confidence_interval(confidence_level=level)
    sm_low, sm_high = CompareMeans(DescrStatsW(b), DescrStatsW(a)).tconfint_diff(
        alpha=1 - level, usevar="unequal"
    )
    assert ours.status is Status.OK and ours.difference_interval is not None
    assert ours.difference == pytest.approx(b.mean() - a.mean(), abs=TOL)
    assert ours.p_value == pytest.approx(scipy_result.pvalue, abs=TOL)
    assert ours.difference_interval.low == pytest.approx(scipy_ci.low, abs=TOL)
    assert ours.difference_interval.high == pytest.approx(scipy_ci.high, abs=TOL)
    assert ours.difference_interval.low == pytest.approx(sm_low, abs=TOL)
    assert ours.difference_interval.high == pytest.approx(sm_high, abs=TOL)


@pytest.mark.parametrize(
    ("conv_a", "n_a", "conv_b", "n_b"),
    [(100, 1000, 130, 1000), (31, 4000, 18, 3500), (2500, 10_000, 2450, 9000), (5, 60, 9, 61)],
)
@pytest.mark.parametrize("level", [0.90, 0.99])
def test_fixed_horizon_z_test_equals_statsmodels_wald(
    conv_a: int, n_a: int, conv_b: int, n_b: int, level: float
) -> None:
    ours = fixed_horizon(
        SuffStats(n_a, conv_a, conv_a), SuffStats(n_b, conv_b, conv_b), kind=MetricKind.UNIQUE,
        level=level,
    )  # fmt: skip
    test = proportion.test_proportions_2indep(
        conv_b, n_b, conv_a, n_a, method="wald", compare="diff", correction=False
    )
    low, high = proportion.confint_proportions_2indep(
        conv_b, n_b, conv_a, n_a, method="wald", compare="diff", alpha=1 - level
    )
    assert ours.difference_interval is not None
    assert ours.p_value == pytest.approx(test.pvalue, abs=TOL)
    assert ours.difference_interval.low == pytest.approx(low, abs=TOL)
    assert ours.difference_interval.high == pytest.approx(high, abs=TOL)


@pytest.mark.parametrize("kind", [MetricKind.UNIQUE, MetricKind.COUNT])
def test_fixed_horizon_lift_interval_is_delta_method(kind: MetricKind) -> None:
    """The lift's standard error is the gradient of m_b/m_a - 1 through the means' covariance."""
    a, b = (
        SuffStats(2000, 300, 300 if kind is MetricKind.UNIQUE else 700),
        SuffStats(1800, 310, 310 if kind is MetricKind.UNIQUE else 750),
    )
    ours = fixed_horizon(a, b, kind=kind, level=0.90)
    var_a, var_b = a.variance(kind), b.variance(kind)
    assert var_a is not None and var_b is not None and a.mean is not None and b.mean is not None
    step = 1e-6

    def lift(m_a: float, m_b: float) -> float:
        return m_b / m_a - 1

    grad_a = (lift(a.mean + step, b.mean) - lift(a.mean - step, b.mean)) / (2 * step)
    grad_b = (lift(a.mean, b.mean + step) - lift(a.mean, b.mean - step)) / (2 * step)
    se = math.sqrt(grad_a**2 * var_a / a.n + grad_b**2 * var_b / b.n)
    if kind is MetricKind.UNIQUE:
        q = sps.norm.ppf(0.95)
    else:
        se_a, se_b = var_a / a.n, var_b / b.n
        df = (se_a + se_b) ** 2 / (se_a**2 / (a.n - 1) + se_b**2 / (b.n - 1))
        q = sps.t.ppf(0.95, df)
    assert ours.lift is not None and ours.lift_interval is not None
    assert ours.lift == pytest.approx(b.mean / a.mean - 1, rel=1e-12)
    assert ours.lift_interval.low == pytest.approx(ours.lift - q * se, abs=1e-7)
    assert ours.lift_interval.high == pytest.approx(ours.lift + q * se, abs=1e-7)


@settings(max_examples=200, deadline=None)
@given(
    n_a=st.integers(2, 5000),
    n_b=st.integers(2, 5000),
    rate_a=st.floats(0.0, 1.0),
    rate_b=st.floats(0.0, 1.0),
    level=st.sampled_from([0.8, 0.9, 0.95, 0.99]),
)
def test_fixed_horizon_significant_iff_interval_excludes_zero(
    n_a: int, n_b: int, rate_a: float, rate_b: float, level: float
) -> None:
    conv_a, conv_b = round(rate_a * n_a), round(rate_b * n_b)
    r = fixed_horizon(
        SuffStats(n_a, conv_a, conv_a), SuffStats(n_b, conv_b, conv_b), kind=MetricKind.UNIQUE,
        level=level,
    )  # fmt: skip
    if r.difference_interval is None or r.p_value is None:
        assert r.status is Status.ZERO_VARIANCE and not r.is_significant
        return
    if abs(r.p_value - (1 - level)) > 1e-9:  # away from the boundary, where rounding decides
        assert r.is_significant == r.difference_interval.excludes(0.0)


def test_fixed_horizon_higher_level_gives_wider_interval() -> None:
    a, b = SuffStats(1000, 100, 100), SuffStats(1000, 120, 120)
    narrow = fixed_horizon(a, b, kind=MetricKind.UNIQUE, level=0.80).difference_interval
    wide = fixed_horizon(a, b, kind=MetricKind.UNIQUE, level=0.99).difference_interval
    assert narrow is not None and wide is not None
    assert wide.low < narrow.low < narrow.high < wide.high


@pytest.mark.parametrize("level", [0.0, 1.0, -0.1, 1.5])
def test_fixed_horizon_rejects_level_outside_unit_interval(level: float) -> None:
    with pytest.raises(ValueError, match="level"):
        fixed_horizon(SuffStats(10, 1, 1), SuffStats(10, 2, 2), kind=MetricKind.UNIQUE, level=level)
