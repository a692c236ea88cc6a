"""Mergeable sufficient statistics of one metric in one (experiment, variation).

Every metric liftlog reports is a per-visitor mean: ``unique`` conversions (0 or 1 per visitor),
``count`` (total conversions per visitor) and ``sum`` (revenue in integer cents, or value, per
visitor). Its sufficient statistics are the number of visitors ``n``, the sum of the per-visitor
values and the sum of their squares. Three more sums (a covariate, its square and the cross
product) carry what CUPED and ratio metrics need; they merge the same way.

Merging is addition, so it is associative and commutative. Sums of integers stay Python ``int``
(exact, however large); float sums are built with `math.fsum` (correctly rounded, so they do not
depend on the order of the observations).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum


class MetricKind(StrEnum):
    """How a metric's per-visitor values arise, which fixes how its variance is read.

    ``unique``  0/1 per visitor (converted or not): variance ``p (1 - p)``, as in Optimizely's
                mSPRT for conversion rates and GrowthBook's proportion statistic.
    ``count``   total conversions per visitor: sample variance (``n - 1`` denominator).
    ``sum``     revenue (integer cents) or value per visitor: sample variance.
    """

    UNIQUE = "unique"
    COUNT = "count"
    SUM = "sum"


Number = int | float


@dataclass(frozen=True, slots=True)
class SuffStats:
    """Sufficient statistics of per-visitor values ``y`` (and optionally a covariate ``x``).

    ``n`` visitors; ``sum`` = Σy; ``sum_sq`` = Σy²; ``nonzero`` = visitors with y ≠ 0 (the
    converters of a revenue or value metric, for the sequential test's minimum of 25
    conversions; ``None`` when unknown);
    ``covariate_sum`` = Σx, ``covariate_sum_sq`` = Σx², ``cross_sum`` = Σxy.

    Raises ``ValueError`` for impossible values (negative ``n`` or ``sum_sq``, ``nonzero`` outside
    ``0..n``, non-finite sums): those are bugs upstream, not degenerate data.
    """

    n: int
    sum: Number
    sum_sq: Number
    nonzero: int | None = None
    covariate_sum: Number = 0
    covariate_sum_sq: Number = 0
    cross_sum: Number = 0

    def __post_init__(self) -> None:
        if self.n < 0:
            raise ValueError(f"n must be >= 0, got {self.n}")
        if self.sum_sq < 0 or self.covariate_sum_sq < 0:
            raise ValueError("sums of squares must be >= 0")
        if self.nonzero is not None and not 0 <= self.nonzero <= self.n:
            raise ValueError(f"nonzero must be in 0..n={self.n}, got {self.nonzero}")
        sums = (self.sum, self.sum_sq, self.covariate_sum, self.covariate_sum_sq, self.cross_sum)
        if not all(math.isfinite(s) for s in sums):
            raise ValueError("sums must be finite")
        if self.n == 0 and any(s != 0 for s in sums):
            raise ValueError("sums must be 0 when n is 0")

    @classmethod
    def empty(cls) -> SuffStats:
        """The identity of `merge`: no visitors."""
        return cls(n=0, sum=0, sum_sq=0, nonzero=0)

    @classmethod
    def from_values(
        cls, values: Sequence[Number], covariates: Sequence[Number] | None = None
    ) -> SuffStats:
        """Statistics of per-visitor ``values`` (one per visitor), optionally with covariates."""
        if covariates is not None and len(covariates) != len(values):
            raise ValueError("values and covariates must have the same length")
        xs = covariates if covariates is not None else [0] * len(values)
        return cls(
            n=len(values),
            sum=_exact_sum(values),
            sum_sq=_exact_sum([v * v for v in values]),
            nonzero=sum(1 for v in values if v != 0),
            covariate_sum=_exact_sum(xs),
            covariate_sum_sq=_exact_sum([x * x for x in xs]),
            cross_sum=_exact_sum([v * x for v, x in zip(values, xs, strict=True)]),
        )

    def merge(self, other: SuffStats) -> SuffStats:
        """Statistics of the union of both sets of visitors (disjoint visitors assumed)."""
        nonzero = (
            None if self.nonzero is None or other.nonzero is None else self.nonzero + other.nonzero
        )
        return SuffStats(
            n=self.n + other.n,
            sum=self.sum + other.sum,
            sum_sq=self.sum_sq + other.sum_sq,
            nonzero=nonzero,
            covariate_sum=self.covariate_sum + other.covariate_sum,
            covariate_sum_sq=self.covariate_sum_sq + other.covariate_sum_sq,
            cross_sum=self.cross_sum + other.cross_sum,
        )

    @property
    def mean(self) -> float | None:
        """Σy / n, or ``None`` with no visitors."""
        return None if self.n == 0 else self.sum / self.n

    def variance(self, kind: MetricKind) -> float | None:
        """Per-visitor variance as `MetricKind` defines it; ``None`` when undefined.

        ``unique``: ``p (1 - p)`` (``None`` with no visitors). Otherwise the sample variance,
        ``None`` below 2 visitors. Integer sums give an exact numerator, so "zero variance" is
        decided exactly; float sums are clamped at 0 against rounding.
        """
        if self.n == 0:
            return None
        if kind is MetricKind.UNIQUE:
            p = self.sum / self.n
            return p * (1.0 - p)
        if self.n < 2:
            return None
        if isinstance(self.sum, int) and isinstance(self.sum_sq, int):
            return (self.n * self.sum_sq - self.sum * self.sum) / (self.n * (self.n - 1))
        centred = self.sum_sq - self.sum * self.sum / self.n
        return max(centred, 0.0) / (self.n - 1)

    def conversions(self, kind: MetricKind) -> int | None:
        """Conversions, as the "25 conversions per arm" rule counts them.

        ``unique`` and ``count``: Σy (converting visitors, total conversions). ``sum``: visitors
        with a non-zero value (``nonzero``), ``None`` when that is unknown.
        """
        if kind is MetricKind.SUM:
            return self.nonzero
        return int(self.sum)


def merge_all(parts: Iterable[SuffStats]) -> SuffStats:
    """Merge any number of statistics; the empty iterable gives `SuffStats.empty`."""
    total = SuffStats.empty()
    for part in parts:
        total = total.merge(part)
    return total


def _exact_sum(values: Sequence[Number]) -> Number:
    if all(isinstance(v, int) for v in values):
        return sum(values)
    return math.fsum(values)
