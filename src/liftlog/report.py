"""An experiment's results: counts from the lake, statistics from `liftlog.stats`, one document.

The shapes follow Optimizely's REST API v2 results where they apply (``metrics[]`` with the
primary metric first, per-variation ``results`` keyed by variation id, ``lift`` with
``confidence_interval``, ``significance``, ``is_significant``, ``visitors_remaining``), plus what
liftlog adds: unique and total conversions, revenue and value sums for every metric, the
multiple-exposure count, the sample-ratio check and the data's freshness.

False discovery rate: the primary metric's variations form one family; every other metric's
variations form a second. The Bayesian method reports chance to beat and expected loss instead.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from liftlog.analysis.counts import Counts, MetricCounts
from liftlog.methods import METHODS
from liftlog.rules.counting import CountingSpec, MetricSpec
from liftlog.stats import (
    BayesianComparison,
    Comparison,
    Interval,
    MetricKind,
    SequentialConfig,
    SuffStats,
    apply_fdr,
    bayesian,
    fixed_horizon,
    msprt,
    srm_check,
)


@dataclass(frozen=True, slots=True)
class Arm:
    variation_id: str
    name: str
    weight: int


def _suff(m: MetricCounts) -> SuffStats:
    return SuffStats(n=m.n, sum=m.sum, sum_sq=m.sum_sq, nonzero=m.nonzero)


def _kind(metric: MetricSpec) -> MetricKind:
    return MetricKind(metric.aggregator.value)


def _interval(i: Interval | None) -> list[float] | None:
    return None if i is None else [i.low, i.high]


def _role(index: int) -> str:
    return "primary" if index == 0 else "secondary" if index <= 4 else "monitoring"


def _compare(
    method: str, baseline: SuffStats, variation: SuffStats, metric: MetricSpec, level: float
) -> Comparison | BayesianComparison:
    kind = _kind(metric)
    if method == "fixed":
        return fixed_horizon(baseline, variation, kind=kind, level=level)
    if method == "bayesian":
        inverse = metric.winning_direction == "decreasing"
        return bayesian(baseline, variation, kind=kind, level=level, inverse=inverse)
    return msprt(baseline, variation, kind=kind, config=SequentialConfig(level=level))


def _lift_status(c: Comparison, metric: MetricSpec) -> str:
    if not c.is_significant or c.difference is None:
        return "equal"
    effect = c.difference
    better = effect > 0 if metric.winning_direction != "decreasing" else effect < 0
    return "better" if better else "worse"


def _comparison_json(c: Comparison | BayesianComparison, metric: MetricSpec) -> dict[str, Any]:
    if isinstance(c, BayesianComparison):
        return {
            "status": c.status.value,
            "value": c.lift,
            "difference": c.difference,
            "credible_interval": _interval(c.credible_interval),
            "chance_to_beat_baseline": c.chance_to_beat,
            "expected_loss": c.expected_loss,
            "baseline_expected_loss": c.baseline_expected_loss,
        }
    return {
        "status": c.status.value,
        "value": c.lift,
        "confidence_interval": _interval(c.lift_interval),
        "difference": c.difference,
        "difference_confidence_interval": _interval(c.difference_interval),
        "p_value": c.p_value,
        "q_value": c.q_value,
        "significance": c.significance,
        "is_significant": c.is_significant,
        "lift_status": _lift_status(c, metric),
        "visitors_remaining": c.visitors_remaining,
    }


def _variation_json(
    arm: Arm, m: MetricCounts, metric: MetricSpec, baseline: bool
) -> dict[str, Any]:
    mean = None if m.n == 0 else m.sum / m.n
    return {
        "variation_id": arm.variation_id,
        "name": arm.name,
        "is_baseline": baseline,
        "samples": m.n,
        "value": m.sum,
        "rate": mean,
        "unique_conversions": m.unique_conversions,
        "total_conversions": m.total_conversions,
        "revenue": m.revenue,
        "revenue_per_visitor": None if m.n == 0 else m.revenue / m.n,
        "value_sum": m.value,
        "value_per_visitor": None if m.n == 0 else m.value / m.n,
    }


def build_results(
    spec: CountingSpec,
    arms: Sequence[Arm],
    counts: Counts,
    *,
    method: str = "sequential",
    level: float = 0.90,
    baseline_id: str | None = None,
) -> dict[str, Any]:
    """The results document for one experiment (see the module docstring)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}")
    base = baseline_id or arms[0].variation_id
    others = [a for a in arms if a.variation_id != base]
    comparisons: dict[tuple[int, str], Comparison | BayesianComparison] = {}
    for index, metric in enumerate(spec.metrics):
        per = counts.metrics[index]
        for arm in others:
            comparisons[index, arm.variation_id] = _compare(
                method, _suff(per[base]), _suff(per[arm.variation_id]), metric, level
            )
    if method != "bayesian":
        for family in (
            [k for k in comparisons if k[0] == 0],
            [k for k in comparisons if k[0] > 0],
        ):
            if family:
                adjusted = apply_fdr([comparisons[k] for k in family])  # type: ignore[misc]
                comparisons.update(zip(family, adjusted, strict=True))

    metrics_json = []
    for index, metric in enumerate(spec.metrics):
        results = {}
        for arm in arms:
            entry = _variation_json(
                arm, counts.metrics[index][arm.variation_id], metric, arm.variation_id == base
            )
            if arm.variation_id != base:
                entry["lift"] = _comparison_json(comparisons[index, arm.variation_id], metric)
            results[arm.variation_id] = entry
        metrics_json.append(
            {
                "name": metric.name,
                "role": _role(index),
                "event_id": metric.event_id,
                "event_key": metric.event_key,
                "aggregator": metric.aggregator.value,
                "field": metric.field,
                "scope": "visitor",
                "winning_direction": metric.winning_direction,
                "results": results,
            }
        )
    observed = [counts.visitors[a.variation_id] for a in arms]
    srm = srm_check(observed, [max(a.weight, 0) for a in arms])
    return {
        "experiment_id": spec.experiment_id,
        "method": method,
        "confidence_threshold": level,
        "baseline_variation_id": base,
        "reach": {
            "total_count": sum(observed),
            "variations": {
                a.variation_id: {
                    "name": a.name,
                    "count": counts.visitors[a.variation_id],
                    "multiple_exposures": counts.multiple_exposures[a.variation_id],
                }
                for a in arms
            },
        },
        "sample_ratio_mismatch": {
            "method": srm.method,
            "status": srm.status.value,
            "p_value": srm.p_value,
            "threshold": srm.threshold,
            "is_mismatch": srm.is_mismatch,
            "expected_weights": {a.variation_id: a.weight for a in arms},
        },
        "metrics": metrics_json,
    }


CSV_COLUMNS = (
    "segment", "segment_value", "metric", "role", "variation_id", "variation", "is_baseline",
    "visitors", "unique_conversions", "total_conversions", "rate", "revenue", "value_sum",
    "improvement", "ci_low", "ci_high", "significance", "is_significant", "visitors_remaining",
    "chance_to_beat_baseline",
)  # fmt: skip


#: What a spreadsheet reads as the start of a formula (OWASP's list for CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _text_cell(text: str | None) -> str | None:
    """A text cell a spreadsheet shows as text: a leading ``'`` when it would start a formula.

    Attribute values come from anyone who can send events, and metric and variation names from
    the catalog; opened in a spreadsheet, ``=HYPERLINK(…)`` in one of them would run.
    """
    if text and text.startswith(_FORMULA_STARTS):
        return "'" + text
    return text


def results_csv(doc: dict[str, Any]) -> str:
    """One row per metric and variation: the whole experiment's (``segment`` empty), then, for a
    document broken down by an attribute, each value's (``segment_value`` empty: not set).
    Text cells that would start a spreadsheet formula start with ``'`` (`_text_cell`)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    parts = [("", None, doc)]
    parts += [(doc["segment"], part["value"], part) for part in doc.get("segments", [])]
    for segment, value, part in parts:
        _csv_rows(writer, segment, value, part)
    return out.getvalue()


def _csv_rows(writer: Any, segment: str, value: str | None, doc: dict[str, Any]) -> None:
    for metric in doc["metrics"]:
        for r in metric["results"].values():
            lift = r.get("lift") or {}
            interval = (
                lift.get("confidence_interval") or lift.get("credible_interval") or [None, None]
            )
            writer.writerow(
                [
                    _text_cell(segment),
                    _text_cell(value),
                    _text_cell(metric["name"]),
                    metric["role"],
                    r["variation_id"],
                    _text_cell(r["name"]),
                    r["is_baseline"],
                    r["samples"],
                    r["unique_conversions"],
                    r["total_conversions"],
                    r["rate"],
                    r["revenue"],
                    r["value_sum"],
                    lift.get("value"),
                    interval[0],
                    interval[1],
                    lift.get("significance"),
                    lift.get("is_significant"),
                    lift.get("visitors_remaining"),
                    lift.get("chance_to_beat_baseline"),
                ]
            )


def build_timeseries(
    spec: CountingSpec,
    arms: Sequence[Arm],
    daily: Sequence[tuple[int, Counts]],
    *,
    metric_index: int = 0,
    method: str = "sequential",
    level: float = 0.90,
    baseline_id: str | None = None,
) -> dict[str, Any]:
    """Cumulative improvement and its interval at the end of each day, for one metric.

    The sequential method carries each day's result into the next (``previous=``), so its
    intervals only narrow and its p-values only fall: what you read on any day stays valid.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}")
    metric = spec.metrics[metric_index]
    base = baseline_id or arms[0].variation_id
    previous: dict[str, Comparison] = {}
    points = []
    for end, counts in daily:
        per = counts.metrics[metric_index]
        variations: dict[str, Any] = {}
        for arm in arms:
            entry: dict[str, Any] = {"visitors": counts.visitors[arm.variation_id]}
            if arm.variation_id != base:
                b, v = _suff(per[base]), _suff(per[arm.variation_id])
                c: Comparison | BayesianComparison
                if method == "sequential":
                    sequential = msprt(
                        b, v, kind=_kind(metric), config=SequentialConfig(level=level),
                        previous=previous.get(arm.variation_id),
                    )  # fmt: skip
                    previous[arm.variation_id] = c = sequential
                else:
                    c = _compare(method, b, v, metric, level)
                entry["lift"] = _comparison_json(c, metric)
            variations[arm.variation_id] = entry
        points.append({"end_time_ms": end, "variations": variations})
    return {
        "experiment_id": spec.experiment_id,
        "metric": metric.name,
        "method": method,
        "confidence_threshold": level,
        "baseline_variation_id": base,
        "points": points,
    }


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:+.1f}%"


def _number(x: float | None) -> str:
    """A count or sum as a reader takes it in: integers whole, with separators (revenue in cents
    as 1,199,135, not 1.19914e+06), other numbers to two decimals or four significant digits."""
    if x is None:
        return "-"
    if isinstance(x, int):
        return f"{x:,}"
    return f"{x:,.2f}" if abs(x) >= 1 else f"{x:.4g}"


_TABLE_HEADER = ("variation", "visitors", "conv.", "value", "rate", "improvement", "interval")


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows of cells, each column as wide as its widest cell: the first column (the variation)
    left-aligned, the figures right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        figures = [cell.rjust(w) for cell, w in zip(row[1:], widths[1:], strict=True)]
        lines.append("  " + "  ".join([row[0].ljust(widths[0]), *figures]).rstrip())
    return lines


def results_text(doc: dict[str, Any]) -> str:
    """The results document as the plain-text tables ``liftlog results`` prints."""
    lines = [f"experiment {doc['experiment_id']}  method {doc['method']}  "
             f"significance level {doc['confidence_threshold']:.0%}"]  # fmt: skip
    reach = doc["reach"]["variations"]
    lines.append("visitors: " + ", ".join(f"{v['name']} {v['count']:,}" for v in reach.values()))
    srm = doc["sample_ratio_mismatch"]
    if srm["is_mismatch"]:
        lines.append(f"WARNING: sample ratio mismatch (p = {srm['p_value']:.2g})")
    for metric in doc["metrics"]:
        lines.append("")
        lines.append(f"{metric['name']} ({metric['role']})")
        last = "P(beat)" if doc["method"] == "bayesian" else "signif."
        rows: list[tuple[str, ...]] = [(*_TABLE_HEADER, last)]
        for r in metric["results"].values():
            lift = r.get("lift") or {}
            interval = lift.get("confidence_interval") or lift.get("credible_interval")
            signif = lift.get("significance", lift.get("chance_to_beat_baseline"))
            rows.append((
                r["name"] + (" *" if r["is_baseline"] else ""),
                f"{r['samples']:,}",
                f"{r['unique_conversions']:,}",
                _number(r["value"]),
                "-" if r["rate"] is None else f"{r['rate']:.4g}",
                _pct(lift.get("value")) if lift else "baseline",
                "-" if not interval else f"[{_pct(interval[0])}, {_pct(interval[1])}]",
                "-" if signif is None else f"{signif:.0%}",
            ))  # fmt: skip
        lines += _table(rows)
    return "\n".join(lines)
