"""Counting: lake + experiment → per (variation, metric) sums, never rows in Python.

The rules are `liftlog.rules.counting`'s. DuckDB reads the lake and does the joins; NumPy does the
de-duplication and the per-visitor sums on whole columns. Every number it returns is exact:
integer sums stay integers (Python ints, with a slower path where int64 could overflow), and each
value is a sum over visitors, so results don't depend on event order.

One results computation is two DuckDB queries and some column arithmetic:

1. ``assigned`` (a temporary table): one row per visitor exposed inside the running bounds, with
   a dense integer ``vid``, their variation (the first exposure's), first exposure time, whether
   they were exposed to several variations and, when asked, a segment attribute.
2. the candidate hits: every metric conversion of an assigned visitor at or after their first
   exposure, inside the bounds and the attribution window, with ``vid``, one boolean column per
   metric event, revenue, value, timestamp and a 64-bit hash of the de-duplication key
   ``(entity_id, uuid, timestamp)``. Only the columns and rows that can count are read.
3. de-duplication: rows whose key hash occurs once are unique (equal keys have equal hashes);
   only the few rows whose hash repeats are compared on the key itself, so the result is exact
   without a hash aggregate over every conversion.
4. per-visitor sums with ``bincount`` over ``vid``, then sums, sums of squares and counts per
   (segment, variation).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from liftlog.rules.counting import Aggregator, CountingSpec

Number = int | float
Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]

#: Integer sums whose magnitude stays below this are exact in float64, so `np.bincount` (which
#: sums in float64) can be used for them; larger ones take an int64 or Python-int path.
_EXACT_FLOAT = 2**52
_SAFE_INT64 = 2**62


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


def bounds(column: str, intervals: tuple[tuple[int, int | None], ...]) -> str:
    """SQL that is true when ``column`` (epoch ms) lies in one of the running intervals."""
    if not intervals:
        return "FALSE"
    parts = []
    for start, end in intervals:
        lower = f"{column} >= {int(start)}"
        parts.append(lower if end is None else f"({lower} AND {column} < {int(end)})")
    return "(" + " OR ".join(parts) + ")"


def _events(spec: CountingSpec) -> list[tuple[str, str]]:
    """The distinct ``(event_id, event_key)`` of the metrics: metrics on one event share hits."""
    events: list[tuple[str, str]] = []
    for m in spec.metrics:
        if (m.event_id, m.event_key) not in events:
            events.append((m.event_id, m.event_key))
    return events


def _quote(text: str) -> str:
    return text.replace("'", "''")


def _strings(values: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join(f"'{_quote(v)}'" for v in values) + "]::VARCHAR[]"


def _assigned_sql(spec: CountingSpec, segment: str | None) -> str:
    experiment = _quote(spec.experiment_id)
    variations = _strings(spec.variation_ids)
    if segment is None:
        seg = "NULL::VARCHAR"
    else:
        key = _quote(segment)
        seg = f"list_filter(attributes, lambda a: a.name = '{key}' OR a.id = '{key}')[1].value"

    # Variations are numbered by their place in the spec: integer aggregates are cheaper.
    def index(column: str) -> str:
        return f"(list_position({variations}, {column}) - 1)::INTEGER"

    # Duplicates share (entity_id, uuid, timestamp): grouping on that key keeps one of each
    # without sorting the table. The rows of one key are one event, so any one of them will do.
    return f"""
        CREATE OR REPLACE TEMP TABLE assigned AS
        WITH dec AS (
            SELECT any_value(visitor_id) AS visitor_id,
                   any_value({index("variation_id")}) AS variation, timestamp_raw AS ts,
                   any_value({seg}) AS segment
            FROM decisions
            WHERE experiment_id = '{experiment}' AND len(problems) = 0
              AND NOT coalesce(is_holdback, false)
              AND list_contains({variations}, variation_id)
              AND {bounds("timestamp_raw", spec.intervals)}
            GROUP BY entity_id, uuid, timestamp_raw
        ), legacy AS (
            SELECT visitor_id, {index("x.variation_id")} AS variation, timestamp_raw AS ts,
                   segment
            FROM (SELECT visitor_id, timestamp_raw, unnest(experiments) AS x, {seg} AS segment
                  FROM conversions
                  WHERE source = 'legacy' AND visitor_id IS NOT NULL AND timestamp IS NOT NULL
                    AND {bounds("timestamp_raw", spec.intervals)})
            WHERE x.experiment_id = '{experiment}'
              AND list_contains({variations}, x.variation_id)
        ), first AS (
            SELECT visitor_id, arg_min(variation, ts) AS variation_index, min(ts) AS first_ts,
                   min(variation) <> max(variation) AS multiple,
                   {"arg_min(segment, ts)" if segment is not None else "NULL::VARCHAR"} AS segment
            FROM (SELECT * FROM dec UNION ALL SELECT * FROM legacy)
            WHERE visitor_id IS NOT NULL
            GROUP BY visitor_id
        )
        SELECT (row_number() OVER () - 1)::INTEGER AS vid, visitor_id,
               ({variations})[variation_index + 1] AS variation_id, variation_index, first_ts,
               multiple, segment
        FROM first
    """


def _hits_sql(spec: CountingSpec) -> str:
    """Every conversion that counts, before de-duplication: one row per stored row."""
    matches = [
        f"(c.entity_id = '{_quote(event_id)}' OR c.event_name = '{_quote(key)}')"
        for event_id, key in _events(spec)
    ]
    window = ""
    if spec.attribution_window_ms is not None:
        window = f"AND c.timestamp_raw <= a.first_ts + {int(spec.attribution_window_ms)}"
    # A conversion belongs to a metric by its entity_id (the event id) or, for legacy calls and
    # hand-written clients, by its key: one boolean column per metric event, the first event it
    # matches, and whether it matches several.
    columns = ", ".join(f"coalesce({m}, false) AS e{j}" for j, m in enumerate(matches))
    first = " ".join(f"WHEN {m} THEN {j}" for j, m in enumerate(matches))
    several = " + ".join(f"coalesce({m}, false)::INTEGER" for m in matches)
    return f"""
        SELECT a.vid, c.timestamp_raw AS ts, coalesce(c.revenue, 0) AS revenue,
               coalesce(c.value, 0.0) AS value, {columns},
               (CASE {first} END)::INTEGER AS event, {several} > 1 AS several,
               hash(c.entity_id, c.uuid, c.timestamp_raw) AS h, c.entity_id, c.uuid
        FROM conversions c JOIN assigned a ON a.visitor_id = c.visitor_id
        WHERE c.timestamp IS NOT NULL AND ({" OR ".join(matches)})
          AND {bounds("c.timestamp_raw", spec.intervals)}
          AND c.timestamp_raw >= a.first_ts {window}
    """


def _first_of_each_key(hits: pa.Table) -> npt.NDArray[np.bool_] | None:
    """Which rows to keep so that each ``(entity_id, uuid, ts)`` counts once; None: all of them.

    Rows whose key hash is unique are unique. The rows sharing a hash (the duplicates, and in
    theory hash collisions) are grouped on the key itself, keeping one row of each key (the first
    in ``hits``; the rows of one key are one event, so any one of them will do).
    """
    h = _column(hits, "h", np.uint64)
    if len(h) < 2:
        return None
    ordered = np.sort(h)
    repeated = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
    if len(repeated) == 0:
        return None
    position = np.minimum(np.searchsorted(repeated, h), len(repeated) - 1)
    shared = repeated[position] == h
    rows = np.flatnonzero(shared)
    keys = hits.select(["entity_id", "uuid", "ts"]).take(rows)
    keys = keys.append_column("row", pa.array(rows, pa.int64()))
    first = keys.group_by(["entity_id", "uuid", "ts"]).aggregate([("row", "min")])
    keep: npt.NDArray[np.bool_] = ~shared
    keep[_column(first, "row_min", np.int64)] = True
    return keep


@dataclass(frozen=True, slots=True)
class Prepared:
    """An experiment's assigned visitors and their de-duplicated hits, as columns.

    Visitors are numbered ``0 .. visitors - 1`` (their ``vid``); hits refer to them by ``vid``.
    """

    visitors: int
    #: Per visitor: index of their variation in ``spec.variation_ids``, whether they were exposed
    #: to several, and the index of their segment value in ``segment_values``.
    variation: Ints
    multiple: npt.NDArray[np.bool_]
    segment: Ints
    segment_values: list[str | None]
    #: Per stored hit: the visitor (``visitors`` for a duplicate of an earlier hit, which does
    #: not count), the timestamp, revenue, value, for each metric event whether the hit is one of
    #: it, the first metric event it is one of, and whether it is one of several.
    vid: Ints
    ts: Ints
    revenue: Ints
    value: Floats
    matches: list[npt.NDArray[np.bool_]]
    event: Ints
    several: npt.NDArray[np.bool_]


_NUMPY_TYPES: dict[Any, Any] = {
    pa.int32(): np.int32,
    pa.int64(): np.int64,
    pa.uint64(): np.uint64,
    pa.float64(): np.float64,
}


def _column(table: pa.Table, name: str, dtype: Any) -> npt.NDArray[Any]:
    """A column without nulls as a NumPy array, read from its Arrow buffers (no pandas)."""
    column = table.column(name)
    array = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    if array.null_count:
        raise ValueError(f"column {name} has nulls")
    start, end = array.offset, array.offset + len(array)
    if pa.types.is_boolean(array.type):
        bits = np.frombuffer(array.buffers()[1], np.uint8)
        values = np.unpackbits(bits, count=end, bitorder="little")[start:].view(np.bool_)
    else:
        values = np.frombuffer(array.buffers()[1], _NUMPY_TYPES[array.type])[start:end]
    return np.asarray(values, dtype=dtype)


def prepare(
    con: duckdb.DuckDBPyConnection, spec: CountingSpec, segment: str | None = None
) -> Prepared:
    """Assign ``spec``'s visitors and collect their hits, de-duplicated.

    Leaves the temporary table ``assigned`` on ``con``: one row per visitor with ``vid``,
    ``visitor_id``, ``variation_id``, ``variation_index``, ``first_ts``, ``multiple`` and
    ``segment``. With ``segment`` (an attribute key or id), that is the visitor's value of the
    attribute at their first decision.
    """
    con.execute(_assigned_sql(spec, segment))
    assigned = con.sql(
        "SELECT vid, variation_index, multiple, segment FROM assigned"
    ).to_arrow_table()
    n = assigned.num_rows
    order = _column(assigned, "vid", np.int64)
    variation = np.empty(n, np.int64)
    variation[order] = _column(assigned, "variation_index", np.int64)
    multiple = np.empty(n, np.bool_)
    multiple[order] = _column(assigned, "multiple", np.bool_)
    segment_of = np.zeros(n, np.int64)
    values: list[str | None] = [None]
    if segment is not None and n:
        encoded = pc.dictionary_encode(assigned.column("segment").combine_chunks())
        values = [*encoded.dictionary.to_pylist(), None]
        codes = encoded.indices.fill_null(len(values) - 1)
        segment_of[order] = np.asarray(codes.to_numpy(), dtype=np.int64)

    hits = con.sql(_hits_sql(spec)).to_arrow_table()
    vid = _column(hits, "vid", np.int64)
    keep = _first_of_each_key(hits)
    if keep is not None:
        vid[~keep] = n  # a duplicate: nobody's
    return Prepared(
        visitors=n,
        variation=variation,
        multiple=multiple,
        segment=segment_of,
        segment_values=values,
        vid=vid,
        ts=_column(hits, "ts", np.int64),
        revenue=_column(hits, "revenue", np.int64),
        value=_column(hits, "value", np.float64),
        matches=[_column(hits, f"e{j}", np.bool_) for j in range(len(_events(spec)))],
        event=_column(hits, "event", np.int64),
        several=_column(hits, "several", np.bool_),
    )


def hits_view(con: duckdb.DuckDBPyConnection, spec: CountingSpec, p: Prepared) -> None:
    """Create the view ``hits`` on ``con``: one row per counted conversion and metric.

    Its columns: ``vid``, ``visitor_id``, ``variation_id``, ``segment``, ``metric_index``,
    ``ts``, ``revenue``, ``value``; ``p`` must come from `prepare` on the same connection.
    """
    table = pa.table(
        {"vid": p.vid, "ts": p.ts, "revenue": p.revenue, "value": p.value}
        | {f"e{j}": m for j, m in enumerate(p.matches)}
    ).filter(pa.array(p.vid < p.visitors))
    con.register("deduplicated_hits", table)
    events = _events(spec)
    parts = [
        f"SELECT vid, {i} AS metric_index, ts, revenue, value FROM deduplicated_hits "
        f"WHERE e{events.index((m.event_id, m.event_key))}"
        for i, m in enumerate(spec.metrics)
    ]
    union = " UNION ALL ".join(parts) or (
        "SELECT vid, 0 AS metric_index, ts, revenue, value FROM deduplicated_hits WHERE false"
    )
    con.execute(f"""
        CREATE OR REPLACE TEMP VIEW hits AS
        SELECT a.vid, a.visitor_id, a.variation_id, a.segment, x.metric_index, x.ts,
               x.revenue, x.value
        FROM ({union}) x JOIN assigned a USING (vid)
    """)


def _magnitude(values: npt.NDArray[Any]) -> float:
    """An upper bound of ``|v|`` over ``values`` (0 when empty)."""
    if len(values) == 0:
        return 0.0
    return max(abs(float(values.min())), abs(float(values.max())))


def _int_sums(index: Ints, values: npt.NDArray[Any], size: int) -> npt.NDArray[Any]:
    """Exact sums of integer ``values`` by ``index``: int64, or Python ints where int64 could
    overflow."""
    if values.dtype != object:
        bound = _magnitude(values) * len(values)
        if bound < _EXACT_FLOAT:
            # Every partial sum is an integer below 2**52, which float64 holds exactly.
            sums: Ints = np.bincount(index, weights=values, minlength=size).astype(np.int64)
            return sums
        if bound < _SAFE_INT64:
            sums = np.zeros(size, np.int64)
            np.add.at(sums, index, values)
            return sums
    big: npt.NDArray[Any] = np.zeros(size, object)
    np.add.at(big, index, values.astype(object))
    return big


def _squares(values: npt.NDArray[Any]) -> npt.NDArray[Any]:
    if values.dtype != object and (values.dtype == np.float64 or _magnitude(values) < 2**31):
        squares: npt.NDArray[Any] = values * values
        return squares
    big: npt.NDArray[Any] = values.astype(object)
    big *= big
    return big


def _sums(index: Ints, values: npt.NDArray[Any], size: int) -> list[Number]:
    if values.dtype == np.float64:
        return [float(x) for x in np.bincount(index, weights=values, minlength=size)]
    return [int(x) for x in _int_sums(index, values, size)]


def _tally(index: Ints, size: int) -> list[int]:
    return [int(x) for x in np.bincount(index, minlength=size)]


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
    p = prepare(con, spec, segment)
    width = len(spec.variation_ids)
    size = width * len(p.segment_values)
    group = p.segment * width + p.variation  # per visitor: (segment, variation)
    visitors = _tally(group, size)
    several = _tally(group[p.multiple], size)

    # Per visitor and metric event: conversions, revenue and value, in one pass over the hits
    # (bin vid * events + event). The last visitor's bins collect the duplicates and are dropped.
    events = len(_events(spec))
    key, revenue_in, value_in = p.vid * events + p.event, p.revenue, p.value
    rows_of_several = np.flatnonzero(p.several)
    if len(rows_of_several):  # hits of several metric events count for each of them
        extra = [
            rows_of_several[p.matches[j][rows_of_several] & (p.event[rows_of_several] != j)]
            for j in range(events)
        ]
        key = np.concatenate([key, *(p.vid[r] * events + j for j, r in enumerate(extra))])
        revenue_in = np.concatenate([revenue_in, *(p.revenue[r] for r in extra)])
        value_in = np.concatenate([value_in, *(p.value[r] for r in extra)])
    bins = (p.visitors + 1) * events
    shape = (p.visitors + 1, events)
    conversions_of = np.bincount(key, minlength=bins).reshape(shape)[:-1]
    revenue_of = _int_sums(key, revenue_in, bins).reshape(shape)[:-1]
    values_of = np.bincount(key, weights=value_in, minlength=bins).reshape(shape)[:-1]

    by_event: dict[int, tuple[list[int], list[Number], list[Number], list[Number]]] = {}
    rows: list[dict[int, tuple[Number, ...]]] = []
    for metric in spec.metrics:
        j = _events(spec).index((metric.event_id, metric.event_key))
        conversions = np.ascontiguousarray(conversions_of[:, j], dtype=np.int64)
        revenue = np.ascontiguousarray(revenue_of[:, j])
        value = np.ascontiguousarray(values_of[:, j], dtype=np.float64)
        if j not in by_event:
            by_event[j] = (
                _tally(group[conversions > 0], size),
                _sums(group, conversions, size),
                _sums(group, revenue, size),
                _sums(group, value, size),
            )
        y: npt.NDArray[Any]
        if metric.aggregator is Aggregator.UNIQUE:
            y = (conversions > 0).astype(np.int64)
        elif metric.aggregator is Aggregator.COUNT:
            y = conversions
        else:
            y = revenue if metric.field == "revenue" else value
        columns = (
            _sums(group, y, size),
            _sums(group, _squares(y), size),
            _tally(group[y != 0], size),
            *by_event[j],
        )
        rows.append({g: tuple(c[g] for c in columns) for g in range(size)})

    out: dict[str | None, Counts] = {}
    for s, segment_value in enumerate(p.segment_values):
        groups = {v: s * width + i for i, v in enumerate(spec.variation_ids)}
        if not any(visitors[g] for g in groups.values()):
            continue
        out[segment_value] = _counts(
            spec,
            {v: (visitors[g], several[g]) for v, g in groups.items()},
            {(i, v): per[g] for i, per in enumerate(rows) for v, g in groups.items()},
        )
    return out


def _number(value: Number | None, as_float: bool) -> Number:
    if value is None:
        return 0.0 if as_float else 0
    return float(value) if as_float else int(value)


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


def _running(values: npt.NDArray[Any], start: npt.NDArray[np.bool_]) -> npt.NDArray[Any]:
    """Running sums of ``values`` that restart where ``start`` is true (it is at 0).

    Added up one position at a time (all first cells, then all second cells, ...), so each sum is
    the plain left-to-right sum of its own run: no cancellation against other runs' totals.
    """
    exact_int = values.dtype != np.float64 and values.dtype != object
    if exact_int and _magnitude(values) * len(values) >= _SAFE_INT64:
        values = values.astype(object)
    index = np.arange(len(values))
    position = index - np.maximum.accumulate(np.where(start, index, 0))
    running = values.copy()
    order = np.argsort(position, kind="stable")
    ends = np.cumsum(np.bincount(position))
    for level in range(1, len(ends)):
        cells = order[ends[level - 1] : ends[level]]
        running[cells] = running[cells - 1] + values[cells]
    return running


def _difference(a: Sequence[Number], b: Sequence[Number]) -> list[Number]:
    return [x - y for x, y in zip(a, b, strict=True)]


def _daily_increments(
    spec: CountingSpec, p: Prepared
) -> dict[int, dict[tuple[int, str], list[Number]]]:
    """Per day, (metric, variation) → what that day adds to each field of `MetricCounts`.

    Per visitor and day, the cumulative conversions, revenue and value before and after the day
    give the change of the visitor's metric value; those changes add up per variation and day.
    """
    events = len(_events(spec))
    counted = p.vid < p.visitors
    several = np.flatnonzero(p.several & counted)
    extra = [several[p.matches[j][several] & (p.event[several] != j)] for j in range(events)]
    rows = [np.flatnonzero(counted), *extra]
    vid = np.concatenate([p.vid[r] for r in rows])
    event = np.concatenate([p.event[rows[0]], *(np.full(len(r), j) for j, r in enumerate(extra))])
    day = np.concatenate([p.ts[r] // DAY_MS for r in rows])
    revenue = np.concatenate([p.revenue[r] for r in rows])
    value = np.concatenate([p.value[r] for r in rows])
    out: dict[int, dict[tuple[int, str], list[Number]]] = {}
    if len(vid) == 0:
        return out
    first_day = int(day.min())
    days = int(day.max()) - first_day + 1
    width = len(spec.variation_ids)
    size = days * width
    for j in range(events):
        of_event = event == j
        if not of_event.any():
            continue
        # One cell per visitor and day, in (visitor, day) order.
        cells, cell_of = np.unique(vid[of_event] * days + (day[of_event] - first_day),
                                   return_inverse=True)  # fmt: skip
        cell_vid, cell_day = cells // days, cells % days
        dc = np.bincount(cell_of, minlength=len(cells)).astype(np.int64)
        dr = _int_sums(cell_of, revenue[of_event], len(cells))
        dv = np.bincount(cell_of, weights=value[of_event], minlength=len(cells))
        start = np.ones(len(cells), np.bool_)
        start[1:] = cell_vid[1:] != cell_vid[:-1]
        c, r, v = _running(dc, start), _running(dr, start), _running(dv, start)
        group = cell_day * width + p.variation[cell_vid]
        shared: list[Sequence[Number]] = [
            _tally(group[c - dc == 0], size),
            _sums(group, dc, size),
            _sums(group, dr, size),
            _sums(group, dv, size),
        ]
        present = _tally(group, size)
        for i, metric in enumerate(spec.metrics):
            if _events(spec).index((metric.event_id, metric.event_key)) != j:
                continue
            new: npt.NDArray[Any]
            old: npt.NDArray[Any]
            if metric.aggregator is Aggregator.UNIQUE:
                new, old = np.ones(len(cells), np.int64), (c - dc > 0).astype(np.int64)
            elif metric.aggregator is Aggregator.COUNT:
                new, old = c, c - dc
            elif metric.field == "revenue":
                new, old = r, r - dr
            else:
                new, old = v, v - dv
            columns: list[Sequence[Number]] = [
                _difference(_sums(group, new, size), _sums(group, old, size)),
                _difference(_sums(group, _squares(new), size), _sums(group, _squares(old), size)),
                _difference(_tally(group[new != 0], size), _tally(group[old != 0], size)),
                *shared,
            ]
            for g in range(size):
                if present[g]:
                    key = (i, spec.variation_ids[g % width])
                    out.setdefault(first_day + g // width, {})[key] = [col[g] for col in columns]
    return out


def count_daily(con: duckdb.DuckDBPyConnection, spec: CountingSpec) -> list[tuple[int, Counts]]:
    """Cumulative `Counts` at the end of each UTC day (epoch ms of the day's end), oldest first.

    Computed from per-visitor, per-day increments: one pass over the conversions that count, not
    one recount per day.
    """
    p = prepare(con, spec)
    new_visitors: dict[int, dict[str, list[int]]] = {}
    for day, variation, n, several in con.execute(
        f"SELECT first_ts // {DAY_MS}, variation_id, count(*), count(*) FILTER (WHERE multiple) "
        "FROM assigned GROUP BY ALL"
    ).fetchall():
        new_visitors.setdefault(int(day), {})[variation] = [int(n), int(several)]
    increments = _daily_increments(spec, p)
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
