"""The difference between a variation and the baseline, read from their sufficient statistics.

Every method starts here: classify the pair (`Status`), then take the means, the per-visitor
variances, the variance of the difference of means, and the delta-method variance of the relative
lift. Sharing one classification keeps the three methods' statuses identical on the same input.

Relative lift ``L = m_b / m_a - 1``; by the delta method (first-order Taylor expansion around the
means, arms independent)::

    Var(L) ≈ var_b / (m_a² n_b) + var_a m_b² / (m_a⁴ n_a)

which is the parametrisation GrowthBook's gbstats uses as well.
"""

from __future__ import annotations

from dataclasses import dataclass

from liftlog.stats.results import Comparison, Method, Status
from liftlog.stats.suffstats import MetricKind, SuffStats


@dataclass(frozen=True, slots=True)
class Contrast:
    """Means and variances of two arms (``a`` = baseline, ``b`` = variation) and their status.

    Means are ``None`` for an arm without visitors; variances ``None`` when undefined.
    """

    status: Status
    kind: MetricKind
    n_a: int
    n_b: int
    mean_a: float | None
    mean_b: float | None
    var_a: float | None
    var_b: float | None

    @property
    def difference(self) -> float | None:
        """``m_b - m_a``, or ``None`` when an arm has no visitors."""
        if self.mean_a is None or self.mean_b is None:
            return None
        return self.mean_b - self.mean_a

    @property
    def lift(self) -> float | None:
        """``m_b / m_a - 1``, or ``None`` when an arm is empty or the baseline mean is 0."""
        if self.mean_a is None or self.mean_b is None or self.mean_a == 0:
            return None
        return self.mean_b / self.mean_a - 1.0

    @property
    def testable(self) -> bool:
        """Whether variances of both arms exist and are positive (status past zero_variance)."""
        return self.status in (Status.OK, Status.ZERO_BASELINE)

    def difference_variance(self) -> float:
        """Variance of ``m_b - m_a``: ``var_a / n_a + var_b / n_b``. Needs `testable`."""
        var_a, var_b = self._variances()
        return var_a / self.n_a + var_b / self.n_b

    def pair_variance(self) -> float:
        """``var_a + var_b``: variance of one (variation - baseline) pair of visitors."""
        var_a, var_b = self._variances()
        return var_a + var_b

    def lift_variance(self) -> float | None:
        """Delta-method variance of the lift; ``None`` when the baseline mean is 0."""
        var_a, var_b = self._variances()
        m_a, m_b = self.mean_a, self.mean_b
        if m_a is None or m_b is None or m_a == 0:
            return None
        return var_b / (m_a**2 * self.n_b) + var_a * m_b**2 / (m_a**4 * self.n_a)

    def lift_pair_variance(self) -> float | None:
        """The lift's variance for one pair of visitors (`lift_variance` with ``n_a = n_b = 1``)."""
        var_a, var_b = self._variances()
        m_a, m_b = self.mean_a, self.mean_b
        if m_a is None or m_b is None or m_a == 0:
            return None
        return var_b / m_a**2 + var_a * m_b**2 / m_a**4

    def welch_df(self) -> float:
        """Welch–Satterthwaite degrees of freedom of ``m_b - m_a``."""
        var_a, var_b = self._variances()
        se_a, se_b = var_a / self.n_a, var_b / self.n_b
        return (se_a + se_b) ** 2 / (se_a**2 / (self.n_a - 1) + se_b**2 / (self.n_b - 1))

    def _variances(self) -> tuple[float, float]:
        if not self.testable or self.var_a is None or self.var_b is None:
            raise ValueError(f"no variance for a contrast with status {self.status}")
        return self.var_a, self.var_b


def contrast(baseline: SuffStats, variation: SuffStats, kind: MetricKind) -> Contrast:
    """Classify and summarise a (baseline, variation) pair for ``kind``.

    ``unique`` metrics must have ``0 <= sum <= n`` (``ValueError`` otherwise).
    """
    for arm in (baseline, variation):
        if kind is MetricKind.UNIQUE and not 0 <= arm.sum <= arm.n:
            raise ValueError(f"unique conversions must be in 0..n, got {arm.sum} of {arm.n}")
    var_a, var_b = baseline.variance(kind), variation.variance(kind)
    n_a, n_b = baseline.n, variation.n
    if n_a == 0 and n_b == 0:
        status = Status.NO_VISITORS
    elif n_a == 0 or n_b == 0:
        status = Status.ONE_ARM
    elif n_a < 2 or n_b < 2:
        status = Status.TOO_FEW_SAMPLES
    elif var_a is None or var_b is None or var_a <= 0 or var_b <= 0:
        status = Status.ZERO_VARIANCE
    elif baseline.sum == 0:
        status = Status.ZERO_BASELINE
    else:
        status = Status.OK
    return Contrast(
        status=status,
        kind=kind,
        n_a=n_a,
        n_b=n_b,
        mean_a=baseline.mean,
        mean_b=variation.mean,
        var_a=var_a,
        var_b=var_b,
    )


def check_level(level: float) -> None:
    """Raise ``ValueError`` unless the confidence ``level`` is strictly between 0 and 1."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")


def untestable(c: Contrast, method: Method, level: float) -> Comparison:
    """The comparison when the data can't be tested: means and difference, no interval or p."""
    return Comparison(
        method=method,
        status=c.status,
        level=level,
        baseline_mean=c.mean_a,
        variation_mean=c.mean_b,
        difference=c.difference,
        difference_interval=None,
        lift=c.lift,
        lift_interval=None,
        p_value=None,
        q_value=None,
        is_significant=False,
    )
