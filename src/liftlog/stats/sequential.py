"""Sequential testing with the mixture SPRT: p-values and intervals valid at every look.

Johari, Pekelis & Walsh, "Always Valid Inference: Continuous Monitoring of A/B Tests" (Operations
Research 70(3), 2022) and Johari, Koomen, Pekelis & Walsh, "Peeking at A/B Tests" (KDD 2017), the
basis of Optimizely's Stats Engine. With ``θ̂`` the observed difference of means, ``V`` its
variance (``var_a/n_a + var_b/n_b``) and a normal mixing distribution ``N(0, τ²)`` over the true
difference, the mixture likelihood ratio against ``θ = 0`` is::

    Λ = sqrt(V / (V + τ²)) · exp( τ² θ̂² / (2 V (V + τ²)) )

The always-valid p-value is ``p_n = min(p_{n-1}, 1/Λ_n)`` (capped at 1), and the always-valid
interval at level ``1 - α`` is the running intersection of ``θ̂ ± sqrt( V (V + τ²)/τ² ·
(2 ln(1/α) + ln((V + τ²)/V)) )``. Pass the previous look's result as ``previous`` to carry the
running minimum and intersection; without it, the values are those of a first look.

Mixing variance: ``τ² = ρ · (var_a + var_b)``, i.e. ``ρ`` is τ² in units of the variance of one
(variation - baseline) pair of visitors, which makes the test independent of the metric's unit
(conversions, cents). ``ρ`` defaults to the truncation-optimal choice of "Peeking at A/B Tests"
for a standardised stream: ``b = 2 ln(1/α) / sqrt(M)``, ``ρ = Φ(-b) / (φ(b)/b - Φ(-b))`` with
``M`` the expected visitors per arm at the end of the test (``horizon``, 10 000 by default; at
α = 0.10 this gives ρ ≈ 0.0589). The relative lift gets the same test on the lift scale, with the
delta-method variance and ``τ²_lift = ρ ·`` (the lift's variance for one pair of visitors).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from liftlog.stats.contrast import Contrast, check_level, contrast, untestable
from liftlog.stats.results import Comparison, Interval, Method, Status
from liftlog.stats.suffstats import MetricKind, SuffStats

# Beyond this many times the current sample, "visitors remaining" is reported as unknown (None).
_MAX_GROWTH = 1e9


@dataclass(frozen=True, slots=True)
class SequentialConfig:
    """Settings of the sequential test.

    ``level``: confidence level of intervals and significance threshold (``α = 1 - level``).
    ``horizon``: expected visitors per arm when the test ends; tunes the mixing variance.
    ``mixing_ratio``: τ² / (var_a + var_b); ``None`` derives it from ``level`` and ``horizon``.
    ``min_visitors`` / ``min_conversions``: per arm, below which no winner is declared
    (Optimizely's 100 and 25).
    """

    level: float = 0.90
    horizon: int = 10_000
    mixing_ratio: float | None = None
    min_visitors: int = 100
    min_conversions: int = 25

    def __post_init__(self) -> None:
        check_level(self.level)
        if self.horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {self.horizon}")
        if self.mixing_ratio is not None and not self.mixing_ratio > 0:
            raise ValueError(f"mixing_ratio must be > 0, got {self.mixing_ratio}")
        if self.min_visitors < 0 or self.min_conversions < 0:
            raise ValueError("minimum visitors and conversions must be >= 0")

    @property
    def rho(self) -> float:
        """The mixing ratio in use: the explicit one, else `mixing_ratio_for`."""
        if self.mixing_ratio is not None:
            return self.mixing_ratio
        return mixing_ratio_for(1.0 - self.level, self.horizon)


def mixing_ratio_for(alpha: float, horizon: int) -> float:
    """τ²/σ² minimising the expected stopping time at truncation ``horizon`` ("Peeking", §4)."""
    b = 2.0 * math.log(1.0 / alpha) / math.sqrt(horizon)
    tail = 0.5 * math.erfc(b / math.sqrt(2.0))  # Φ(-b)
    density = math.exp(-0.5 * b * b) / math.sqrt(2.0 * math.pi)  # φ(b)
    return tail / (density / b - tail)


def log_likelihood_ratio(estimate: float, variance: float, tau2: float) -> float:
    """``ln Λ`` of the normal-mixture SPRT for ``θ = 0`` (variance and τ² > 0)."""
    total = variance + tau2
    return 0.5 * math.log(variance / total) + tau2 * estimate**2 / (2.0 * variance * total)


def p_value(estimate: float, variance: float, tau2: float) -> float:
    """``min(1, 1/Λ)`` for one look (the running minimum is `msprt`'s job)."""
    return min(1.0, math.exp(-log_likelihood_ratio(estimate, variance, tau2)))


def half_width(variance: float, tau2: float, alpha: float) -> float:
    """Half-width of the level ``1 - α`` interval at one look: where ``Λ = 1/α``."""
    total = variance + tau2
    return math.sqrt(
        variance * total / tau2 * (2.0 * math.log(1.0 / alpha) + math.log(total / variance))
    )


def msprt(
    baseline: SuffStats,
    variation: SuffStats,
    *,
    kind: MetricKind,
    config: SequentialConfig | None = None,
    previous: Comparison | None = None,
) -> Comparison:
    """Always-valid comparison of ``variation`` with ``baseline`` at this look.

    ``previous`` is the result of the preceding look of the same (variation, metric), computed
    with the same ``config``; its p-value and intervals are carried forward (running minimum,
    running intersection; when an intersection would be empty the current interval is used).
    Raises ``ValueError`` when ``previous`` is not a sequential result at the same level, or when a
    ``sum`` metric lacks ``nonzero`` (the minimum-conversions rule cannot be checked).
    """
    cfg = config or SequentialConfig()
    alpha = 1.0 - cfg.level
    if previous is not None and (
        previous.method is not Method.SEQUENTIAL or previous.level != cfg.level
    ):
        raise ValueError("previous must be a sequential result at the same level")
    c = contrast(baseline, variation, kind)
    conversions = (baseline.conversions(kind), variation.conversions(kind))
    if conversions[0] is None or conversions[1] is None:
        raise ValueError("sequential test needs SuffStats.nonzero for sum metrics")
    gate = _gate_factor(c, (conversions[0], conversions[1]), cfg)
    status = Status.TOO_FEW_SAMPLES if c.status.decidable and gate > 1.0 else c.status
    diff = c.difference
    if not c.testable or diff is None:
        return untestable(c, Method.SEQUENTIAL, cfg.level)

    rho = cfg.rho
    var = c.difference_variance()
    tau2 = rho * c.pair_variance()
    p = p_value(diff, var, tau2)
    if previous is not None and previous.p_value is not None:
        p = min(p, previous.p_value)
    diff_interval = _carry(_around(diff, half_width(var, tau2, alpha)), previous, lift=False)

    lift, lift_var, lift_pair = c.lift, c.lift_variance(), c.lift_pair_variance()
    lift_interval = None
    if lift is not None and lift_var is not None and lift_pair is not None:
        current = _around(lift, half_width(lift_var, rho * lift_pair, alpha))
        lift_interval = _carry(current, previous, lift=True)

    return Comparison(
        method=Method.SEQUENTIAL,
        status=status,
        level=cfg.level,
        baseline_mean=c.mean_a,
        variation_mean=c.mean_b,
        difference=diff,
        difference_interval=diff_interval,
        lift=lift,
        lift_interval=lift_interval,
        p_value=p,
        q_value=None,
        is_significant=status.decidable and p <= alpha,
        visitors_remaining=_visitors_remaining(c, diff, var, tau2, alpha, p, gate),
    )


def _around(centre: float, half: float) -> Interval:
    return Interval(centre - half, centre + half)


def _carry(current: Interval, previous: Comparison | None, *, lift: bool) -> Interval:
    before = (
        None
        if previous is None
        else (previous.lift_interval if lift else previous.difference_interval)
    )
    if before is None:
        return current
    return current.intersect(before) or current


def _gate_factor(c: Contrast, conversions: tuple[int, int], cfg: SequentialConfig) -> float:
    """How many times the current sample must grow (same allocation) to pass the minimums.

    1.0 when they already pass; ``inf`` when an arm has no visitor or no conversion yet.
    """
    factor = 1.0
    for n, conv in ((c.n_a, conversions[0]), (c.n_b, conversions[1])):
        if n < cfg.min_visitors:
            factor = max(factor, cfg.min_visitors / n if n else math.inf)
        if conv < cfg.min_conversions:
            factor = max(factor, cfg.min_conversions / conv if conv else math.inf)
    return factor


def _visitors_remaining(
    c: Contrast, diff: float, var: float, tau2: float, alpha: float, p: float, gate: float
) -> int | None:
    """Further visitors (both arms) until significance if means and variances stay as observed.

    Growing the sample k-fold divides ``V`` by k and leaves τ² alone; the interval's half-width
    strictly decreases in k, so the k where it reaches ``|θ̂|`` is found by bracketing.
    """
    if p <= alpha:
        growth = 1.0
    elif diff == 0:
        return None
    else:

        def excess(log_k: float) -> float:
            return half_width(var / math.exp(log_k), tau2, alpha) - abs(diff)

        from scipy import optimize  # here: importing it costs ~0.3 s and ~25 MiB per process

        upper = math.log(_MAX_GROWTH)
        if excess(upper) > 0:
            return None
        growth = 1.0 if excess(0.0) <= 0 else math.exp(optimize.brentq(excess, 0.0, upper))
    growth = max(growth, gate)
    if not math.isfinite(growth) or growth > _MAX_GROWTH:
        return None
    return math.ceil((growth - 1.0) * (c.n_a + c.n_b) - 1e-9)
