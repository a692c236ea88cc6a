"""What the pages show, computed from the results API's documents: pure, no I/O.

Every number on the results page comes from the same document ``GET /v2/experiments/{id}/results``
returns; this module only picks and formats. A test reads the page's tables back and compares
them with that document.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from markupsafe import Markup

from liftlog.web.svg import Series, interval_bar, line_chart, pct

STATUS_WORDS = {
    "ok": "",
    "no_visitors": "no visitors yet",
    "one_arm": "only one variation has visitors",
    "too_few_samples": "too few visitors or conversions to call it (100 visitors and 25 "
    "conversions per variation)",
    "zero_variance": "every visitor has the same value",
    "zero_baseline": "the baseline is zero, so a relative improvement is undefined",
}
CONVERSIONS_LABEL = {"unique": "Unique conversions", "count": "Conversions", "sum": "Total"}
RATE_LABEL = {"unique": "Conversion rate", "count": "Conversions per visitor", "sum": "Per visitor"}


def count(n: float | None) -> str:
    if n is None:
        return "–"
    return f"{n:,.0f}" if float(n).is_integer() else f"{n:,.2f}"


def rate(value: float | None, aggregator: str) -> str:
    if value is None:
        return "–"
    return f"{value * 100:.2f}%" if aggregator == "unique" else f"{value:.4g}"


def share(p: float | None) -> str:
    """A probability as a percentage; never "100.0%" or "0.0%", which no evidence can reach."""
    if p is None:
        return "–"
    if p > 0.999:
        return ">99.9%"
    if p < 0.001:
        return "<0.1%"
    return f"{p * 100:.1f}%"


@dataclass(frozen=True, slots=True)
class Row:
    variation_id: str
    name: str
    is_baseline: bool
    visitors: str
    conversions: str
    rate: str
    improvement: str
    bar: Markup
    significance: str
    remaining: str
    verdict: str  # better / worse / equal / ""
    note: str


@dataclass(frozen=True, slots=True)
class MetricTable:
    name: str
    role: str
    conversions_label: str
    rate_label: str
    significance_label: str
    rows: list[Row]


def _conversions(r: dict[str, Any], aggregator: str) -> float:
    if aggregator == "unique":
        return float(r["unique_conversions"])
    if aggregator == "count":
        return float(r["total_conversions"])
    return float(r["value"])


def days_running(doc: dict[str, Any], now: datetime) -> float:
    """Days in the results document's running intervals (an open one runs until ``now``)."""
    seconds = 0.0
    for interval in doc["running_intervals"]:
        end = datetime.fromisoformat(interval["end"]) if interval["end"] else now
        seconds += (end - datetime.fromisoformat(interval["start"])).total_seconds()
    return seconds / 86_400


def _utc(iso: str) -> str:
    return iso[:19].replace("T", " ")


def _time_of_day(iso: str) -> str:
    return iso[11:19]


def freshness_line(freshness: dict[str, Any]) -> str:
    """The results page's "Data" line: what the counts cover, what is still to come."""
    latest = freshness["latest_event_received"]
    text = f"complete up to {_utc(latest)} UTC" if latest else "no events loaded yet"
    waiting = freshness["raw_log_bytes_waiting"]
    if waiting:
        estimate = freshness["events_waiting_estimate"]
        amount = f"about {estimate:,} events" if estimate else f"{waiting:,} bytes of events"
        text += f", {amount} still loading"
        if since := freshness.get("oldest_waiting_received"):
            text += f" (the oldest received at {_time_of_day(since)} UTC)"
    if freshness.get("loaded_since_counted"):
        counted, due = _time_of_day(freshness["counted_at"]), _time_of_day(freshness["recount_by"])
        text += f"; counted at {counted} UTC, events loaded since are counted by {due} UTC"
    return text


def metric_tables(doc: dict[str, Any]) -> list[MetricTable]:
    bayesian = doc["method"] == "bayesian"
    tables = []
    for metric in doc["metrics"]:
        aggregator = metric["aggregator"]
        intervals = [
            abs(end) for r in metric["results"].values() for end in (_interval(r.get("lift")) or ())
        ]
        scale = max([0.05, *intervals])
        rows = []
        for r in metric["results"].values():
            lift = r.get("lift")
            if lift is None:
                improvement, bar, signif, remaining, verdict, note = (
                    "baseline", Markup(""), "", "", "", ""
                )  # fmt: skip
            else:
                improvement = pct(lift["value"])
                verdict = lift.get("lift_status", "")
                if bayesian:
                    chance = lift["chance_to_beat_baseline"]
                    verdict = "" if chance is None else "better" if chance >= doc[
                        "confidence_threshold"] else "worse" if chance <= 1 - doc[
                        "confidence_threshold"] else "equal"  # fmt: skip
                    signif = share(chance)
                else:
                    signif = share(lift["significance"])
                bar = interval_bar(_interval(lift), lift["value"], scale, better=verdict)
                remaining = "" if bayesian else count(lift.get("visitors_remaining"))
                note = STATUS_WORDS.get(lift["status"], lift["status"])
            rows.append(
                Row(
                    variation_id=r["variation_id"],
                    name=r["name"],
                    is_baseline=r["is_baseline"],
                    visitors=count(r["samples"]),
                    conversions=count(_conversions(r, aggregator)),
                    rate=rate(r["rate"], aggregator),
                    improvement=improvement,
                    bar=bar,
                    significance=signif,
                    remaining=remaining,
                    verdict=verdict,
                    note=note,
                )
            )
        tables.append(
            MetricTable(
                name=metric["name"],
                role=metric["role"],
                conversions_label=CONVERSIONS_LABEL.get(aggregator, "Conversions"),
                rate_label=RATE_LABEL.get(aggregator, "Rate"),
                significance_label="Chance to beat baseline" if bayesian else "Significance",
                rows=rows,
            )
        )
    return tables


def _interval(lift: dict[str, Any] | None) -> list[float] | None:
    if lift is None:
        return None
    found: list[float] | None = lift.get("confidence_interval") or lift.get("credible_interval")
    return found


def verdict(doc: dict[str, Any]) -> str:
    """The primary metric's verdict in a few words, for the experiments list."""
    if not doc["metrics"]:
        return "no metrics"
    primary = doc["metrics"][0]
    lifts = [(r["name"], r["lift"]) for r in primary["results"].values() if "lift" in r]
    called = [
        f"{name} {lift['lift_status']} ({pct(lift['value'])})"
        for name, lift in lifts
        if lift.get("is_significant")
    ]
    if called:
        return "; ".join(called)
    statuses = {lift["status"] for _, lift in lifts} - {"ok"}
    if statuses:
        return "not enough data yet"
    return "no significant difference yet"


def improvement_chart(series_doc: dict[str, Any], names: dict[str, str]) -> Markup:
    points = series_doc["points"]
    times = [p["end_time_ms"] for p in points]
    base = series_doc["baseline_variation_id"]
    series = []
    for position, (vid, name) in enumerate(names.items()):
        if vid == base:
            continue
        lifts = [p["variations"][vid].get("lift") or {} for p in points]
        ends = [_interval(lift) or (None, None) for lift in lifts]
        series.append(
            Series(
                name,
                [lift.get("value") for lift in lifts],
                [e[0] for e in ends],
                [e[1] for e in ends],
                colour=position,
            )
        )
    title = f"Cumulative improvement of {series_doc['metric']} over the baseline, with its interval"
    return line_chart(title, times, series, percent=True)


def visitors_chart(series_doc: dict[str, Any], names: dict[str, str]) -> Markup:
    points = series_doc["points"]
    times = [p["end_time_ms"] for p in points]
    series = [
        Series(name, [float(p["variations"][vid]["visitors"]) for p in points])
        for vid, name in names.items()
    ]
    return line_chart("Visitors per variation over time", times, series, percent=False)
