"""Counting in SQL: lake + experiment → per (variation, metric) sums, never rows in Python.

The rules are `liftlog.rules.counting`'s; this module turns them into one DuckDB query per
question. Every number it returns is exact: integer sums stay integers (DuckDB HUGEINT becomes a
Python int), and each value is a sum over visitors, so results don't depend on event order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from liftlog.rules.counting import CountingSpec

Number = int | float


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


def bounds(column: str, intervals: tuple[tuple[int, int | None], ...]) -> str:
    """SQL that is true when ``column`` (epoch ms) lies in one of the running intervals."""
    if not intervals:
        return "FALSE"
    parts = []
    for start, end in intervals:
        lower = f"{column} >= {int(start)}"
        parts.append(lower if end is None else f"({lower} AND {column} < {int(end)})")
    return "(" + " OR ".join(parts) + ")"


def _metrics_table(spec: CountingSpec) -> pa.Table:
    return pa.table(
        {
            "metric_index": pa.array(range(len(spec.metrics)), pa.int32()),
            "event_id": [m.event_id for m in spec.metrics],
            "event_key": [m.event_key for m in spec.metrics],
            "aggregator": [m.aggregator.value for m in spec.metrics],
            "field": [m.field for m in spec.metrics],
        },
        schema=pa.schema(
            [
                ("metric_index", pa.int32()),
                ("event_id", pa.string()),
                ("event_key", pa.string()),
                ("aggregator", pa.string()),
                ("field", pa.string()),
            ]
        ),
    )


def prepare(con: duckdb.DuckDBPyConnection, spec: CountingSpec, segment: str | None = None) -> None:
    """Create the temporary tables ``assigned`` and ``hits`` for ``spec`` on ``con``.

    ``assigned``: one row per visitor with their variation, first decision time and whether
    they were exposed to several variations. ``hits``: every conversion that counts, with its
    visitor, variation, metric, timestamp, revenue and value. With ``segment`` (an attribute key
    or id), both also carry the visitor's value of that attribute at their first decision.
    """
    con.register("metrics", _metrics_table(spec))
    con.register(
        "variations", pa.table({"variation_id": pa.array(spec.variation_ids, pa.string())})
    )
    experiment = _quote(spec.experiment_id)
    if segment is None:
        seg = "NULL::VARCHAR"
    else:
        key = _quote(segment)
        seg = f"list_filter(attributes, lambda a: a.name = '{key}' OR a.id = '{key}')[1].value"
    window = ""
    if spec.attribution_window_ms is not None:
        window = f"AND c.ts <= a.first_ts + {int(spec.attribution_window_ms)}"
    # Duplicates share (entity_id, uuid, timestamp): grouping on that key keeps one of each
    # without sorting the table. The rows of one key are one event, so any one of them will do.
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE assigned AS
        WITH dec AS (
            SELECT any_value(visitor_id) AS visitor_id, any_value(variation_id) AS variation_id,
                   timestamp_raw AS ts, any_value({seg}) AS segment
            FROM decisions
            WHERE experiment_id = '{experiment}' AND len(problems) = 0
              AND NOT coalesce(is_holdback, false)
              AND variation_id IN (SELECT variation_id FROM variations)
            GROUP BY entity_id, uuid, timestamp_raw
        ), legacy AS (
            SELECT visitor_id, x.variation_id AS variation_id, timestamp_raw AS ts, segment
            FROM (SELECT visitor_id, timestamp_raw, unnest(experiments) AS x, {seg} AS segment
                  FROM conversions
                  WHERE source = 'legacy' AND visitor_id IS NOT NULL AND timestamp IS NOT NULL)
            WHERE x.experiment_id = '{experiment}'
              AND x.variation_id IN (SELECT variation_id FROM variations)
        ), exposures AS (
            SELECT * FROM dec WHERE {bounds("ts", spec.intervals)}
            UNION ALL
            SELECT * FROM legacy WHERE {bounds("ts", spec.intervals)}
        )
        SELECT visitor_id, arg_min(variation_id, ts) AS variation_id, min(ts) AS first_ts,
               count(DISTINCT variation_id) > 1 AS multiple, arg_min(segment, ts) AS segment
        FROM exposures GROUP BY visitor_id
    """)
    # A conversion belongs to a metric by its entity_id (the event id) or, for legacy calls and
    # hand-written clients, by its key. Two equi-joins, not one OR-join, keep this a hash join.
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE hits AS
        WITH conv AS (
            SELECT any_value(visitor_id) AS visitor_id, entity_id,
                   any_value(event_name) AS event_name, timestamp_raw AS ts,
                   any_value(revenue) AS revenue, any_value(value) AS value
            FROM conversions
            WHERE visitor_id IS NOT NULL AND timestamp IS NOT NULL
              AND (entity_id IN (SELECT event_id FROM metrics)
                   OR event_name IN (SELECT event_key FROM metrics))
            GROUP BY entity_id, uuid, timestamp_raw
        ), matched AS (
            SELECT c.*, m.metric_index FROM conv c JOIN metrics m ON c.entity_id = m.event_id
            UNION ALL
            SELECT c.*, m.metric_index FROM conv c JOIN metrics m ON c.event_name = m.event_key
            WHERE c.entity_id IS DISTINCT FROM m.event_id
        )
        SELECT a.visitor_id, a.variation_id, a.segment, c.metric_index, c.ts, c.revenue, c.value
        FROM matched c JOIN assigned a ON a.visitor_id = c.visitor_id
        WHERE c.ts >= a.first_ts AND {bounds("c.ts", spec.intervals)} {window}
    """)


_MOMENTS = """
    WITH per_visitor AS (
        SELECT visitor_id, variation_id, segment, metric_index, count(*) AS conversions,
               coalesce(sum(revenue), 0) AS revenue, coalesce(sum(value), 0) AS value
        FROM hits GROUP BY ALL
    ), y AS (
        SELECT p.*,
               CASE m.aggregator
                   WHEN 'unique' THEN 1
                   WHEN 'count' THEN p.conversions
                   WHEN 'sum' THEN CASE m.field WHEN 'revenue' THEN p.revenue ELSE p.value END
               END AS y
        FROM per_visitor p JOIN metrics m USING (metric_index)
    )
    SELECT segment, metric_index, variation_id, sum(y) AS s, sum(y * y) AS ss,
           count(*) FILTER (WHERE y <> 0) AS nonzero, count(*) AS unique_conversions,
           sum(conversions) AS total_conversions, sum(revenue) AS revenue, sum(value) AS value
    FROM y GROUP BY ALL
"""


def _number(value: Number | None, as_float: bool) -> Number:
    if value is None:
        return 0.0 if as_float else 0
    return float(value) if as_float else int(value)


def _quote(text: str) -> str:
    return text.replace("'", "''")


def count(con: duckdb.DuckDBPyConnection, spec: CountingSpec) -> Counts:
    """Visitors, multiple exposures and per-metric moments for every variation of ``spec``."""
    return count_segments(con, spec, None).get(None) or empty_counts(spec)


def empty_counts(spec: CountingSpec) -> Counts:
    """No visitors in any variation: what an experiment that saw no traffic yet counts."""
    return _counts(spec, {}, {})


def count_segments(
    con: duckdb.DuckDBPyConnection, spec: CountingSpec, segment: str | None
) -> dict[str | None, Counts]:
    """`count` per value of the ``segment`` attribute at each visitor's first decision.

    Visitors without the attribute are under ``None``. Without a segment, everything is under
    ``None``.
    """
    prepare(con, spec, segment)
    visitors: dict[str | None, list[tuple[str, int, int]]] = {}
    for value, variation, n, several in con.execute(
        "SELECT segment, variation_id, count(*), count(*) FILTER (WHERE multiple) "
        "FROM assigned GROUP BY ALL"
    ).fetchall():
        visitors.setdefault(value, []).append((variation, int(n), int(several)))
    moments: dict[str | None, dict[tuple[int, str], tuple[Any, ...]]] = {}
    for row in con.execute(_MOMENTS).fetchall():
        moments.setdefault(row[0], {})[int(row[1]), row[2]] = row[3:]
    return {value: _counts(spec, {v: (n, m) for v, n, m in rows}, moments.get(value, {}))
            for value, rows in visitors.items()}  # fmt: skip


def _counts(
    spec: CountingSpec,
    visitors: dict[str, tuple[int, int]],
    rows: dict[tuple[int, str], tuple[Any, ...]],
) -> Counts:
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


DAY_MS = 86_400_000

_DAILY = """
    WITH per_day AS (
        SELECT visitor_id, variation_id, metric_index, ts // {day} AS day, count(*) AS dc,
               coalesce(sum(revenue), 0) AS dr, coalesce(sum(value), 0) AS dv
        FROM hits GROUP BY ALL
    ), cum AS (
        SELECT *,
               sum(dc) OVER w AS c, sum(dr) OVER w AS r, sum(dv) OVER w AS v
        FROM per_day
        WINDOW w AS (PARTITION BY visitor_id, metric_index ORDER BY day)
    ), y AS (
        SELECT cum.variation_id, cum.metric_index, cum.day,
               CASE m.aggregator WHEN 'unique' THEN 1 WHEN 'count' THEN c
                    ELSE CASE m.field WHEN 'revenue' THEN r ELSE v END END AS y_new,
               CASE m.aggregator WHEN 'unique' THEN CASE WHEN c - dc > 0 THEN 1 ELSE 0 END
                    WHEN 'count' THEN c - dc
                    ELSE CASE m.field WHEN 'revenue' THEN r - dr ELSE v - dv END END AS y_old,
               CASE WHEN c - dc = 0 THEN 1 ELSE 0 END AS new_converter, dc, dr, dv
        FROM cum JOIN metrics m USING (metric_index)
    )
    SELECT metric_index, variation_id, day, sum(y_new - y_old) AS ds,
           sum(y_new * y_new - y_old * y_old) AS dss,
           sum((y_new <> 0)::INT - (y_old <> 0)::INT) AS dnz, sum(new_converter) AS du,
           sum(dc) AS dt, sum(dr) AS drev, sum(dv) AS dval
    FROM y GROUP BY ALL
"""


def count_daily(con: duckdb.DuckDBPyConnection, spec: CountingSpec) -> list[tuple[int, Counts]]:
    """Cumulative `Counts` at the end of each UTC day (epoch ms of the day's end), oldest first.

    Computed from per-visitor, per-day increments with window functions: one pass over the
    conversions that count, not one recount per day.
    """
    prepare(con, spec)
    new_visitors: dict[int, dict[str, list[int]]] = {}
    for day, variation, n, several in con.execute(
        f"SELECT first_ts // {DAY_MS}, variation_id, count(*), count(*) FILTER (WHERE multiple) "
        "FROM assigned GROUP BY ALL"
    ).fetchall():
        new_visitors.setdefault(int(day), {})[variation] = [int(n), int(several)]
    increments: dict[int, dict[tuple[int, str], list[Any]]] = {}
    for row in con.execute(_DAILY.format(day=DAY_MS)).fetchall():
        increments.setdefault(int(row[2]), {})[int(row[0]), row[1]] = list(row[3:])
    days = sorted(set(new_visitors) | set(increments))
    if not days:
        return []
    visitors: dict[str, tuple[int, int]] = {}
    totals: dict[tuple[int, str], list[Any]] = {}
    out = []
    for day in range(days[0], days[-1] + 1):
        for variation, (n, several) in new_visitors.get(day, {}).items():
            old = visitors.get(variation, (0, 0))
            visitors[variation] = (old[0] + n, old[1] + several)
        for key, delta in increments.get(day, {}).items():
            total = totals.setdefault(key, [0, 0, 0, 0, 0, 0, 0.0])
            for i, d in enumerate(delta):
                total[i] += d or 0
        rows = {k: tuple(v) for k, v in totals.items()}
        out.append(((day + 1) * DAY_MS, _counts(spec, dict(visitors), rows)))
    return out
