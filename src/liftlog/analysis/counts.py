"""What counting returns: per (variation, metric) counts and moments, as plain numbers.

Apart from `liftlog.analysis.counting` (DuckDB, Arrow, NumPy) so that what only reads counts (the
report, the statistics' callers) does not import the counting machinery.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from liftlog.rules.counting import CountingSpec

Number = int | float

#: Results by an attribute show its most common values (by visitors) one by one and count the
#: rest together, as one `OtherValues`: an attribute with a value per visitor (a zip code, a
#: user id) must not make a document, a page or the memory that holds them grow with visitors.
MAX_SEGMENT_VALUES = 20


@dataclass(frozen=True, slots=True)
class OtherValues:
    """The values of a segment past its `MAX_SEGMENT_VALUES` most common ones, counted together."""

    #: How many values.
    count: int

    @property
    def label(self) -> str:
        return f"({self.count:,} other values)"


#: A value of the attribute a result is broken down by; None: visitors without the attribute.
SegmentValue = str | OtherValues | None


def segment_order(value: SegmentValue) -> tuple[int, str]:
    """Values in order, then the other values, then visitors without the attribute."""
    if isinstance(value, str):
        return (0, value)
    return (1, "") if isinstance(value, OtherValues) else (2, "")


@dataclass(frozen=True, slots=True)
class MetricCounts:
    """One metric in one variation: conversions and the metric's per-visitor moments.

    ``n`` is the variation's visitors; ``sum``, ``sum_sq`` and ``nonzero`` are over the
    per-visitor values of the metric's aggregator (1 for a converter with ``unique``, their
    conversions with ``count``, their revenue or value with ``sum``).
    """

    n: int
    sum: Number
    sum_sq: Number
    nonzero: int
    unique_conversions: int
    total_conversions: int
    revenue: int
    value: float


@dataclass(frozen=True, slots=True)
class Counts:
    visitors: dict[str, int]
    multiple_exposures: dict[str, int]
    #: ``metrics[i][variation_id]`` for the spec's i-th metric.
    metrics: tuple[dict[str, MetricCounts], ...]


def merge_counts(spec: CountingSpec, parts: Iterable[Counts]) -> Counts:
    """The counts of the union of disjoint sets of visitors (the segments of one experiment):
    every field is a sum, so the whole experiment's counts need no second pass over the lake."""
    total = empty_counts(spec)
    for part in parts:
        total = Counts(
            {v: total.visitors[v] + part.visitors[v] for v in total.visitors},
            {v: total.multiple_exposures[v] + part.multiple_exposures[v]
             for v in total.multiple_exposures},
            tuple(
                {v: _add(mine[v], theirs[v]) for v in mine}
                for mine, theirs in zip(total.metrics, part.metrics, strict=True)
            ),
        )  # fmt: skip
    return total


def _add(a: MetricCounts, b: MetricCounts) -> MetricCounts:
    return MetricCounts(
        a.n + b.n, a.sum + b.sum, a.sum_sq + b.sum_sq, a.nonzero + b.nonzero,
        a.unique_conversions + b.unique_conversions, a.total_conversions + b.total_conversions,
        a.revenue + b.revenue, a.value + b.value,
    )  # fmt: skip


def empty_counts(spec: CountingSpec) -> Counts:
    """No visitors in any variation: what an experiment that saw no traffic yet counts."""
    return counts_from(spec, {}, {})


def _number(value: Number | None, as_float: bool) -> Number:
    if value is None:
        return 0.0 if as_float else 0
    return float(value) if as_float else int(value)


def counts_from(
    spec: CountingSpec,
    visitors: dict[str, tuple[int, int]],
    rows: dict[tuple[int, str], tuple[Any, ...]],
) -> Counts:
    """Counts from per-variation ``(visitors, multiple exposures)`` and per ``(metric index,
    variation)`` rows of ``(sum, sum_sq, nonzero, unique, total, revenue, value)``; what is
    missing is zero."""
    n_of = {v: visitors.get(v, (0, 0))[0] for v in spec.variation_ids}
    metrics = []
    for index, metric in enumerate(spec.metrics):
        as_float = metric.field == "value"
        per_variation = {}
        for variation in spec.variation_ids:
            s, ss, nonzero, unique, total, revenue, value = rows.get(
                (index, variation), (0, 0, 0, 0, 0, 0, 0.0)
            )
            per_variation[variation] = MetricCounts(
                n=n_of[variation],
                sum=_number(s, as_float),
                sum_sq=_number(ss, as_float),
                nonzero=int(nonzero),
                unique_conversions=int(unique),
                total_conversions=int(total),
                revenue=int(revenue),
                value=float(value),
            )
        metrics.append(per_variation)
    return Counts(
        visitors=n_of,
        multiple_exposures={v: visitors.get(v, (0, 0))[1] for v in spec.variation_ids},
        metrics=tuple(metrics),
    )
