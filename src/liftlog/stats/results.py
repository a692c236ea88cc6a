"""The values every statistical method returns: statuses, intervals and frozen result records.

A result is never an exception and never a silent 0. When the data cannot support a number, the
number is ``None`` and `Status` says why. The contract shared by every result:

* a field is ``None`` exactly when it cannot be computed from the data given;
* ``is_significant`` is ``True`` only when `Status.decidable` holds and the (adjusted) p-value is
  at or below ``1 - level``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    """Why a comparison is, or is not, fully computed.

    Checked in this order; the first that applies wins:

    ``no_visitors``       neither arm has a visitor: nothing can be computed.
    ``one_arm``           only one arm has visitors: there is nothing to compare with.
    ``too_few_samples``   an arm is below the method's minimum: fewer than 2 visitors (no variance
                          can be estimated), or, for the sequential test, below the minimum of
                          visitors and conversions needed to declare a winner (100 and 25 by
                          default). Numbers that can be computed still are; no winner is declared.
    ``zero_variance``     an arm's per-visitor variance is 0 (e.g. 0% or 100% conversion, every
                          visitor with the same value): no interval or p-value; the difference of
                          means is still reported.
    ``zero_baseline``     the baseline mean is 0: the relative lift is undefined (``None``); the
                          absolute difference, its interval and p-value are computed as usual.
    ``ok``                everything is computed.
    """

    OK = "ok"
    NO_VISITORS = "no_visitors"
    ONE_ARM = "one_arm"
    TOO_FEW_SAMPLES = "too_few_samples"
    ZERO_VARIANCE = "zero_variance"
    ZERO_BASELINE = "zero_baseline"

    @property
    def decidable(self) -> bool:
        """Whether a result with this status may be declared significant (a winner or a loser)."""
        return self in (Status.OK, Status.ZERO_BASELINE)


class Method(StrEnum):
    """Which test produced a `Comparison`."""

    SEQUENTIAL = "sequential"
    FIXED_HORIZON = "fixed_horizon"


class Scale(StrEnum):
    """The scale of a Bayesian posterior: ``relative`` (lift, as a fraction) or ``absolute``."""

    RELATIVE = "relative"
    ABSOLUTE = "absolute"


@dataclass(frozen=True, slots=True)
class Interval:
    """A closed interval ``[low, high]``; ``low <= high`` always."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not self.low <= self.high:
            raise ValueError(f"interval bounds out of order: [{self.low}, {self.high}]")

    def excludes(self, value: float) -> bool:
        """True when ``value`` lies strictly outside the interval."""
        return value < self.low or value > self.high

    def intersect(self, other: Interval) -> Interval | None:
        """The common part of both intervals, or ``None`` when they do not overlap."""
        low, high = max(self.low, other.low), min(self.high, other.high)
        return Interval(low, high) if low <= high else None


@dataclass(frozen=True, slots=True)
class Comparison:
    """A frequentist comparison of one variation with the baseline, on one metric.

    ``difference`` is ``variation mean - baseline mean`` per visitor; ``lift`` is the relative
    improvement ``variation mean / baseline mean - 1`` (0.05 means +5%). Both intervals are at
    ``level`` (0.90 by default). ``p_value`` is two-sided; for `Method.SEQUENTIAL` it is the
    always-valid p-value, safe to read after every look. ``q_value`` is the Benjamini–Hochberg
    adjusted p-value in the result's family, set by `liftlog.stats.fdr.apply_fdr` (``None``
    before). ``visitors_remaining`` is the sequential estimate of further visitors (both arms
    together, same allocation) needed to reach significance if the observed means and variances
    hold; ``None`` when it cannot be estimated (no effect observed, degenerate data, or fixed
    horizon).
    """

    method: Method
    status: Status
    level: float
    baseline_mean: float | None
    variation_mean: float | None
    difference: float | None
    difference_interval: Interval | None
    lift: float | None
    lift_interval: Interval | None
    p_value: float | None
    q_value: float | None
    is_significant: bool
    visitors_remaining: int | None = None

    @property
    def significance(self) -> float | None:
        """``1 - q_value`` when FDR was applied, else ``1 - p_value`` (Optimizely's meaning)."""
        p = self.q_value if self.q_value is not None else self.p_value
        return None if p is None else 1.0 - p


@dataclass(frozen=True, slots=True)
class BayesianComparison:
    """A Bayesian comparison of one variation with the baseline, on one metric.

    The posterior of the effect is normal with ``posterior_mean`` and ``posterior_sd`` on
    ``scale`` (relative lift by default). ``chance_to_beat`` is the posterior probability that the
    variation is better than the baseline (lower is better when the metric is ``inverse``).
    ``expected_loss`` is what choosing the variation costs on average if it is in fact worse
    (``E[max(-effect, 0)]`` in the metric's direction); ``baseline_expected_loss`` is the same for
    keeping the baseline. Both are on ``scale``.
    """

    status: Status
    level: float
    scale: Scale
    baseline_mean: float | None
    variation_mean: float | None
    difference: float | None
    lift: float | None
    posterior_mean: float | None
    posterior_sd: float | None
    credible_interval: Interval | None
    chance_to_beat: float | None
    expected_loss: float | None
    baseline_expected_loss: float | None


@dataclass(frozen=True, slots=True)
class SrmResult:
    """A sample-ratio-mismatch verdict for one experiment's visitor counts.

    ``statistic`` is the chi-square statistic (``method == "chi_square"``) or the Bayes factor
    against the configured weights (``method == "sequential"``). ``is_mismatch`` is
    ``p_value < threshold``.
    """

    method: str
    status: Status
    statistic: float | None
    p_value: float | None
    threshold: float
    is_mismatch: bool
