"""Bayesian comparison: chance to beat the baseline and expected loss.

The model is GrowthBook's (gbstats ``EffectBayesianABTest``): the likelihood of the effect is
normal, centred on the observed effect with the frequentist variance (difference of means, or the
delta-method variance of the lift, see `liftlog.stats.contrast`), and the prior on the effect is
either flat (the default: the posterior is the likelihood) or a proper `GaussianPrior`. The
posterior ``N(μ, σ²)`` then gives, in closed form::

    chance to beat   P(effect > 0)          = Φ(μ/σ)
    expected loss    E[max(-effect, 0)]     = σ φ(μ/σ) - μ Φ(-μ/σ)   (choosing the variation)
    baseline loss    E[max(effect, 0)]      = σ φ(μ/σ) + μ Φ(μ/σ)    (keeping the baseline)

For an ``inverse`` metric (lower is better) the sign of the effect is flipped in all three.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import special

from liftlog.stats.contrast import check_level, contrast
from liftlog.stats.results import BayesianComparison, Interval, Scale
from liftlog.stats.suffstats import MetricKind, SuffStats


@dataclass(frozen=True, slots=True)
class GaussianPrior:
    """A normal prior ``N(mean, variance)`` on the effect, stated on the relative (lift) scale.

    On the absolute scale it is rescaled by the baseline mean (``mean · |m_a|``,
    ``variance · m_a²``), as gbstats does for its relative priors.
    """

    mean: float = 0.0
    variance: float = 0.01

    def __post_init__(self) -> None:
        if not self.variance > 0:
            raise ValueError(f"prior variance must be > 0, got {self.variance}")


def bayesian(
    baseline: SuffStats,
    variation: SuffStats,
    *,
    kind: MetricKind,
    level: float = 0.90,
    scale: Scale = Scale.RELATIVE,
    prior: GaussianPrior | None = None,
    inverse: bool = False,
) -> BayesianComparison:
    """Posterior comparison of ``variation`` with ``baseline``; ``prior=None`` is flat.

    The credible interval is the equal-tailed interval at ``level``. On the relative scale a zero
    baseline mean leaves the posterior undefined (status ``zero_baseline``, fields ``None``).
    """
    check_level(level)
    c = contrast(baseline, variation, kind)
    empty = BayesianComparison(
        status=c.status,
        level=level,
        scale=scale,
        baseline_mean=c.mean_a,
        variation_mean=c.mean_b,
        difference=c.difference,
        lift=c.lift,
        posterior_mean=None,
        posterior_sd=None,
        credible_interval=None,
        chance_to_beat=None,
        expected_loss=None,
        baseline_expected_loss=None,
    )
    if not c.testable or c.mean_a is None:
        return empty
    if scale is Scale.RELATIVE:
        effect, variance = c.lift, c.lift_variance()
        if effect is None or variance is None:
            return empty
    else:
        effect, variance = c.difference, c.difference_variance()
        if effect is None:
            return empty

    mean, var = effect, variance
    if prior is not None:
        unit = 1.0 if scale is Scale.RELATIVE else abs(c.mean_a)
        prior_mean, prior_var = prior.mean * unit, prior.variance * unit**2
        precision = 1.0 / variance + 1.0 / prior_var
        mean = (effect / variance + prior_mean / prior_var) / precision
        var = 1.0 / precision
    sd = math.sqrt(var)

    alpha = 1.0 - level
    low = mean + sd * float(special.ndtri(alpha / 2))  # the normal's quantiles
    high = mean + sd * float(special.ndtri(1.0 - alpha / 2))
    signed = -mean if inverse else mean  # the effect in the metric's "better" direction
    z = signed / sd
    density = math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # the standard normal's pdf
    return BayesianComparison(
        status=c.status,
        level=level,
        scale=scale,
        baseline_mean=c.mean_a,
        variation_mean=c.mean_b,
        difference=c.difference,
        lift=c.lift,
        posterior_mean=mean,
        posterior_sd=sd,
        credible_interval=Interval(low, high),
        chance_to_beat=float(special.ndtr(z)),
        expected_loss=sd * density - signed * float(special.ndtr(-z)),
        baseline_expected_loss=sd * density + signed * float(special.ndtr(z)),
    )
