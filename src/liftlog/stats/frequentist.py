"""Fixed-horizon frequentist tests: a z test for conversion rates, Welch's t test for means.

Valid only when the sample size was fixed in advance and the result is read once; for results
read while the experiment runs, use `liftlog.stats.sequential`.

``unique`` metrics use the unpooled (Wald) z test: ``z = (p_b - p_a) / sqrt(p_a(1-p_a)/n_a +
p_b(1-p_b)/n_b)``, the same variance as the interval, so "significant" and "interval excludes 0"
always agree (statsmodels ``test_proportions_2indep(method="wald")``). ``count`` and ``sum``
metrics use Welch's unequal-variance t test with Welch–Satterthwaite degrees of freedom (scipy
``ttest_ind(equal_var=False)``). The relative lift's interval is ``lift ± q · se`` with the
delta-method standard error (`liftlog.stats.contrast`) and the same quantile ``q`` (normal for
``unique``, Student t with the Welch degrees of freedom otherwise).
"""

from __future__ import annotations

import math

from scipy import special

from liftlog.stats.contrast import Contrast, check_level, contrast, untestable
from liftlog.stats.results import Comparison, Interval, Method
from liftlog.stats.suffstats import MetricKind, SuffStats

DEFAULT_LEVEL = 0.90


def fixed_horizon(
    baseline: SuffStats,
    variation: SuffStats,
    *,
    kind: MetricKind,
    level: float = DEFAULT_LEVEL,
) -> Comparison:
    """Two-sided fixed-horizon test of ``variation`` against ``baseline`` at confidence ``level``.

    Degenerate inputs come back as a `Status` with ``None`` fields, never as an exception.
    """
    check_level(level)
    c = contrast(baseline, variation, kind)
    alpha = 1.0 - level
    diff = c.difference
    if not c.testable or diff is None:
        return untestable(c, Method.FIXED_HORIZON, level)
    se = math.sqrt(c.difference_variance())
    quantile, p_value = _quantile_and_p(c, diff / se, alpha)
    lift, lift_var = c.lift, c.lift_variance()
    lift_interval = None
    if lift is not None and lift_var is not None:
        half = quantile * math.sqrt(lift_var)
        lift_interval = Interval(lift - half, lift + half)
    return Comparison(
        method=Method.FIXED_HORIZON,
        status=c.status,
        level=level,
        baseline_mean=c.mean_a,
        variation_mean=c.mean_b,
        difference=diff,
        difference_interval=Interval(diff - quantile * se, diff + quantile * se),
        lift=lift,
        lift_interval=lift_interval,
        p_value=p_value,
        q_value=None,
        is_significant=c.status.decidable and p_value <= alpha,
    )


def _quantile_and_p(c: Contrast, statistic: float, alpha: float) -> tuple[float, float]:
    if c.kind is MetricKind.UNIQUE:
        # the normal's quantile and two-sided tail (scipy.stats.norm.ppf / .sf)
        return float(special.ndtri(1.0 - alpha / 2)), float(2.0 * special.ndtr(-abs(statistic)))
    df = c.welch_df()  # Student's t (scipy.stats.t.ppf / .sf)
    quantile = float(special.stdtrit(df, 1.0 - alpha / 2))
    return quantile, float(2.0 * special.stdtr(df, -abs(statistic)))
