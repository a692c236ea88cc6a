"""Counting: lake + experiment → per (variation, metric) sums, never rows in Python.

The rules are `liftlog.rules.counting`'s. DuckDB reads the lake and does the joins; NumPy does the
per-visitor sums, a record batch of hits at a time, so memory does not grow with the number of
events (only with the number of visitors). Every number it returns is exact: integer sums stay
integers (Python ints, with a slower path where int64 could overflow), and each value is a sum
over visitors, so results don't depend on event order.

One results computation is three DuckDB queries and some column arithmetic:

1. ``assigned`` (a temporary table): one row per visitor exposed inside the running bounds, with
   a dense integer ``vid``, their variation (the first exposure's), first exposure time, whether
   they were exposed to several variations and, when asked, a segment attribute.
2. ``repeated`` (meanwhile, on a second connection): the 64-bit hashes of the de-duplication key
   ``(entity_id, uuid, timestamp)`` that occur more than once among the conversions that could
   count; a hash aggregate on one integer column, which DuckDB spills to disk under its
   ``memory_limit``.
3. the hits, streamed in record batches: every metric conversion of an assigned visitor at or
   after their first exposure, inside the bounds and the attribution window, with ``vid``, a bit
   mask of the metric events it is one of, revenue, value and timestamp. Rows whose key hash is
   not repeated are unique (equal keys have equal hashes) and are summed at once; the few rows
   whose hash repeats also carry their key and are de-duplicated on it at the end, so the result
   is exact and a hash collision keeps both events.
4. per-visitor sums accumulated with ``np.add.at`` over ``vid``, then sums, sums of squares and
   counts per (segment, variation).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from liftlog.analysis.counts import (
    MAX_SEGMENT_VALUES,
    Counts,
    Number,
    OtherValues,
    SegmentValue,
    counts_from,
    empty_counts,
)
from liftlog.rules.counting import Aggregator, CountingSpec

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]

#: Integer sums whose magnitude stays below this are exact in float64, so `np.bincount` (which
#: sums in float64) can be used for them; larger ones take an int64 or Python-int path.
_EXACT_FLOAT = 2**52
_SAFE_INT64 = 2**62


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


def _event_of_metric(spec: CountingSpec) -> list[int]:
    """Per metric of ``spec``, the index of its event in `_events`."""
    events = _events(spec)
    return [events.index((m.event_id, m.event_key)) for m in spec.metrics]


def _quote(text: str) -> str:
    return text.replace("'", "''")


def _strings(values: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join(f"'{_quote(v)}'" for v in values) + "]::VARCHAR[]"


def _assigned_sql(spec: CountingSpec, segment: str | None) -> str:
    variations = _strings(spec.variation_ids)
    return f"""
        CREATE OR REPLACE TEMP TABLE assigned AS
        SELECT (row_number() OVER () - 1)::INTEGER AS vid, visitor_id,
               ({variations})[variation_index + 1] AS variation_id, variation_index, first_ts,
               lowest <> highest AS multiple, segment, segment_ts
        FROM ({first_exposures_sql(spec, segment)})
    """


def first_exposures_sql(
    spec: CountingSpec,
    segment: str | None,
    decisions: str = "decisions",
    conversions: str = "conversions",
) -> str:
    """A query of each visitor's first exposure inside the running bounds, from the tables named
    ``decisions`` and ``conversions`` (legacy conversions expose too): ``visitor_id``,
    ``variation_index`` and ``first_ts`` of that exposure, the ``lowest`` and ``highest``
    variation index of all their exposures, and ``segment`` with the time of the exposure it is
    from, ``segment_ts`` (see `prepare`)."""
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
        WITH dec AS (
            SELECT any_value(visitor_id) AS visitor_id,
                   any_value({index("variation_id")}) AS variation, timestamp_raw AS ts,
                   any_value({seg}) AS segment
            FROM {decisions}
            WHERE experiment_id = '{experiment}' AND len(problems) = 0
              AND NOT coalesce(is_holdback, false)
              AND list_contains({variations}, variation_id)
              AND {bounds("timestamp_raw", spec.intervals)}
            GROUP BY entity_id, uuid, timestamp_raw
        ), legacy AS (
            SELECT visitor_id, {index("x.variation_id")} AS variation, timestamp_raw AS ts,
                   segment
            FROM (SELECT visitor_id, timestamp_raw, unnest(experiments) AS x, {seg} AS segment
                  FROM {conversions}
                  WHERE source = 'legacy' AND visitor_id IS NOT NULL AND timestamp IS NOT NULL
                    AND {bounds("timestamp_raw", spec.intervals)})
            WHERE x.experiment_id = '{experiment}'
              AND list_contains({variations}, x.variation_id)
        ), first AS (
            SELECT visitor_id, arg_min(variation, ts) AS variation_index, min(ts) AS first_ts,
                   min(variation) AS lowest, max(variation) AS highest,
                   {"arg_min(segment, ts)" if segment is not None else "NULL::VARCHAR"} AS segment,
                   {
        "min(ts) FILTER (WHERE segment IS NOT NULL)" if segment is not None else "NULL::BIGINT"
    } AS segment_ts
            FROM (SELECT * FROM dec UNION ALL SELECT * FROM legacy)
            WHERE visitor_id IS NOT NULL
            GROUP BY visitor_id
        )
        SELECT * FROM first
    """


def _key_hash(bits: int, alias: str = "") -> str:
    """SQL for the 64-bit hash of the de-duplication key; with ``bits`` < 64 only its top bits
    (tests use that to make collisions happen)."""
    h = f"hash({alias}entity_id, {alias}uuid, {alias}timestamp_raw)"
    return h if bits >= 64 else f"({h} >> {64 - int(bits)})"


def _matches(spec: CountingSpec, alias: str = "") -> list[str]:
    return [
        f"({alias}entity_id = '{_quote(event_id)}' OR {alias}event_name = '{_quote(key)}')"
        for event_id, key in _events(spec)
    ]


def _repeated_sql(spec: CountingSpec, bits: int) -> str:
    """The key hashes that occur more than once among the conversions that could count.

    No join with ``assigned`` (the costly part of reading hits): a hash repeated among the hits
    is repeated here too, so this is a superset, which is all the summing pass needs. A hash
    aggregate on one integer column, which DuckDB spills to disk under its memory limit.
    """
    return f"""
        CREATE OR REPLACE TABLE repeated AS
        SELECT h FROM (
            SELECT {_key_hash(bits)} AS h FROM conversions
            WHERE timestamp IS NOT NULL AND ({" OR ".join(_matches(spec))})
              AND {bounds("timestamp_raw", spec.intervals)}
        )
        GROUP BY h HAVING count(*) > 1
    """


def _hits_sql(spec: CountingSpec, bits: int) -> str:
    """Every conversion that counts, before de-duplication: one row per stored row.

    Numbers only, except for rows whose key hash is in ``repeated``: those carry their key, to be
    de-duplicated on it (``dup``).
    """
    mask, counts = hit_sql(spec, "c", "a")
    return f"""
        SELECT x.vid, x.ts, x.revenue, x.value, x.mask, x.h,
               r.h IS NOT NULL AS dup,
               CASE WHEN r.h IS NOT NULL THEN x.entity_id END AS entity_id,
               CASE WHEN r.h IS NOT NULL THEN x.uuid END AS uuid
        FROM (
            SELECT a.vid, c.timestamp_raw AS ts, coalesce(c.revenue, 0) AS revenue,
                   coalesce(c.value, 0.0) AS value, {mask} AS mask,
                   {_key_hash(bits, "c.")} AS h, c.entity_id, c.uuid
            FROM conversions c JOIN assigned a ON a.visitor_id = c.visitor_id
            WHERE {counts}
        ) x LEFT JOIN repeated r ON r.h = x.h
    """


def hit_sql(spec: CountingSpec, conversion: str, visitor: str) -> tuple[str, str]:
    """SQL for the bit mask of the metric events a conversion (alias ``conversion``) is one of,
    and the condition for it to count for a visitor (alias ``visitor``, with ``first_ts``):
    a metric event, inside the running bounds, at or after the first exposure and inside the
    attribution window."""
    c, v = conversion, visitor
    matches = _matches(spec, f"{c}.")
    # A conversion belongs to a metric by its entity_id (the event id) or, for legacy calls and
    # hand-written clients, by its key: bit j of the mask says it is one of metric event j.
    if len(matches) > 62:
        raise ValueError("more than 62 distinct metric events in one experiment")
    mask = " | ".join(f"(coalesce({m}, false)::BIGINT << {j})" for j, m in enumerate(matches))
    window = ""
    if spec.attribution_window_ms is not None:
        window = f"AND {c}.timestamp_raw <= {v}.first_ts + {int(spec.attribution_window_ms)}"
    counts = f"""{c}.timestamp IS NOT NULL AND ({" OR ".join(matches)})
              AND {bounds(f"{c}.timestamp_raw", spec.intervals)}
              AND {c}.timestamp_raw >= {v}.first_ts {window}"""
    return f"({mask})::BIGINT", counts


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
    """An experiment's assigned visitors, as columns; `stream_hits` reads their hits.

    Visitors are numbered ``0 .. visitors - 1`` (their ``vid``); hits refer to them by ``vid``.
    """

    visitors: int
    #: Per visitor: index of their variation in ``spec.variation_ids``, whether they were exposed
    #: to several, and the index of their segment value in ``segment_values``.
    variation: Ints
    multiple: npt.NDArray[np.bool_]
    segment: Ints
    segment_values: list[SegmentValue]
    #: How many bits of the key hash de-duplication looks at (64; fewer only in tests).
    key_bits: int = 64


@dataclass(frozen=True, slots=True)
class Hits:
    """Counted hits, de-duplicated: one row per (conversion, metric event it is one of)."""

    vid: Ints
    #: Index of the metric event in ``_events(spec)``.
    event: Ints
    ts: Ints
    revenue: Ints
    value: Floats


_NUMPY_TYPES: dict[Any, Any] = {
    pa.int32(): np.int32,
    pa.int64(): np.int64,
    pa.uint64(): np.uint64,
    pa.float64(): np.float64,
}


def _column(table: pa.Table | pa.RecordBatch, name: str, dtype: Any) -> npt.NDArray[Any]:
    """A column without nulls as a NumPy array, read from its Arrow buffers (no pandas)."""
    column = table.column(name)
    if isinstance(column, pa.ChunkedArray):
        array = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    else:
        array = column
    if array.null_count:
        raise ValueError(f"column {name} has nulls")
    start, end = array.offset, array.offset + len(array)
    if len(array) == 0:
        return np.zeros(0, dtype=dtype)
    if pa.types.is_boolean(array.type):
        bits = np.frombuffer(array.buffers()[1], np.uint8)
        values = np.unpackbits(bits, count=end, bitorder="little")[start:].view(np.bool_)
    else:
        values = np.frombuffer(array.buffers()[1], _NUMPY_TYPES[array.type])[start:end]
    return np.asarray(values, dtype=dtype)


#: Rows per record batch read from DuckDB: what reading hits holds at once, however many there are.
BATCH_ROWS = 1 << 20
#: DuckDB's memory while counting; beyond it, its joins and aggregates spill to disk.
MEMORY_LIMIT = "1GB"


def prepare(
    con: duckdb.DuckDBPyConnection,
    spec: CountingSpec,
    segment: str | None = None,
    *,
    key_bits: int = 64,
) -> Prepared:
    """Assign ``spec``'s visitors; `stream_hits` then reads their hits.

    Leaves the temporary table ``assigned`` on ``con``: one row per visitor with ``vid``,
    ``visitor_id``, ``variation_id``, ``variation_index``, ``first_ts``, ``multiple`` and
    ``segment``. With ``segment`` (an attribute key or id), that is the visitor's value of the
    attribute at their first decision that has it (``segment_ts``: its time). Also leaves
    ``repeated``, the key hashes that occur more than once (see `_repeated_sql`), and sets
    DuckDB's memory limit on ``con``.
    """
    con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
    # The repeated key hashes (a scan of the conversions and an aggregate, which share little with
    # assigning visitors) are found on a second connection to the database meanwhile.
    other = con.cursor()
    with ThreadPoolExecutor(1, thread_name_prefix="liftlog-repeated") as pool:
        repeated = pool.submit(other.execute, _repeated_sql(spec, key_bits))
        try:
            con.execute(_assigned_sql(spec, segment))
            assigned = con.sql(
                "SELECT vid, variation_index, multiple, segment FROM assigned"
            ).to_arrow_table()
        finally:
            failed = repeated.exception()
            other.close()
    if isinstance(failed, duckdb.CatalogException):
        # Views over data registered on ``con`` alone (an empty lake's) are not visible there.
        con.execute(_repeated_sql(spec, key_bits))
    elif failed is not None:
        raise failed
    n = assigned.num_rows
    order = _column(assigned, "vid", np.int64)
    variation = np.empty(n, np.int64)
    variation[order] = _column(assigned, "variation_index", np.int64)
    multiple = np.empty(n, np.bool_)
    multiple[order] = _column(assigned, "multiple", np.bool_)
    segment_of = np.zeros(n, np.int64)
    values: list[SegmentValue] = [None]
    if segment is not None and n:
        values, indices = segment_groups(assigned.column("segment").combine_chunks())
        segment_of[order] = indices
    return Prepared(n, variation, multiple, segment_of, values, key_bits)


def segment_groups(segments: pa.Array) -> tuple[list[SegmentValue], Ints]:
    """The segment values to count apart (see `_most_common`) and each visitor's index among
    them, from each visitor's value (null: none)."""
    encoded = pc.dictionary_encode(segments)
    names: list[str] = encoded.dictionary.to_pylist()
    codes = np.asarray(encoded.indices.fill_null(len(names)).to_numpy(), dtype=np.int64)
    return _most_common(names, codes)


def _most_common(names: list[str], codes: Ints) -> tuple[list[SegmentValue], Ints]:
    """The segment values to count apart and each visitor's index among them.

    ``codes`` index ``names`` per visitor (``len(names)``: no value). The `MAX_SEGMENT_VALUES`
    values with the most visitors (ties by value) stay; the others become one `OtherValues`.
    """
    if len(names) <= MAX_SEGMENT_VALUES:
        return [*names, None], codes
    visitors = np.bincount(codes, minlength=len(names) + 1)
    kept = sorted(range(len(names)), key=lambda i: (-int(visitors[i]), names[i]))
    kept = kept[:MAX_SEGMENT_VALUES]
    index = np.full(len(names) + 1, MAX_SEGMENT_VALUES, np.int64)  # the other values
    index[kept] = np.arange(MAX_SEGMENT_VALUES)
    index[len(names)] = MAX_SEGMENT_VALUES + 1  # no value
    other = OtherValues(len(names) - MAX_SEGMENT_VALUES)
    return [*(names[i] for i in kept), other, None], index[codes]


def _hits(spec: CountingSpec, table: pa.Table, keep: npt.NDArray[np.bool_] | None) -> Hits:
    """The rows of ``table`` (from `_hits_sql`) that ``keep`` keeps, one per metric event."""
    columns = [
        _column(table, "vid", np.int64),
        _column(table, "ts", np.int64),
        _column(table, "revenue", np.int64),
        _column(table, "value", np.float64),
    ]
    mask = _column(table, "mask", np.int64)
    if keep is not None:
        columns = [c[keep] for c in columns]
        mask = mask[keep]
    vid, ts, revenue, value = columns
    if not np.any(mask & (mask - 1)):  # each hit is one of a single metric event
        return Hits(vid, np.log2(mask).astype(np.int64), ts, revenue, value)
    # A hit of several metric events counts for each of them.
    rows = [np.flatnonzero(mask & (1 << j)) for j in range(len(_events(spec)))]
    every = np.concatenate(rows)
    event = np.repeat(np.arange(len(rows), dtype=np.int64), [len(r) for r in rows])
    return Hits(vid[every], event, ts[every], revenue[every], value[every])


def stream_hits(
    con: duckdb.DuckDBPyConnection, spec: CountingSpec, p: Prepared, batch_rows: int = BATCH_ROWS
) -> Iterator[Hits]:
    """The hits that count, de-duplicated, a record batch of about ``batch_rows`` at a time.

    Rows whose key hash is not in ``repeated`` are unique and come out with their batch. Rows
    whose hash is (duplicates, and rows whose other copy does not count) are held back and come
    out last, one per key: `_first_of_each_key` compares their real keys, so a hash collision
    keeps both events. They are as many as the duplicates, not the hits.
    """
    reader = con.sql(_hits_sql(spec, p.key_bits)).to_arrow_reader(batch_rows)
    held: list[pa.Table] = []
    for batch in reader:
        table = pa.Table.from_batches([batch])
        dup = _column(table, "dup", np.bool_)
        if dup.any():
            held.append(table.filter(pa.array(dup)))
            yield _hits(spec, table, ~dup)
        else:
            yield _hits(spec, table, None)
    if held:
        table = pa.concat_tables(held)
        yield _hits(spec, table, _first_of_each_key(table))


def deduplicated_hits(con: duckdb.DuckDBPyConnection, spec: CountingSpec, p: Prepared) -> pa.Table:
    """All of `stream_hits` as one table (``vid``, ``event``, ``ts``, ``revenue``, ``value``):
    for inspecting one experiment, not for counting (it holds every hit)."""
    parts = [
        pa.table({"vid": h.vid, "event": h.event, "ts": h.ts, "revenue": h.revenue,
                  "value": h.value})
        for h in stream_hits(con, spec, p)
    ]  # fmt: skip
    if not parts:
        schema = [("vid", pa.int64()), ("event", pa.int64()), ("ts", pa.int64()),
                  ("revenue", pa.int64()), ("value", pa.float64())]  # fmt: skip
        return pa.table({name: pa.array([], t) for name, t in schema})
    return pa.concat_tables(parts)


def hits_view(con: duckdb.DuckDBPyConnection, spec: CountingSpec, p: Prepared) -> None:
    """Create the view ``hits`` on ``con``: one row per counted conversion and metric.

    Its columns: ``vid``, ``visitor_id``, ``variation_id``, ``segment``, ``metric_index``,
    ``ts``, ``revenue``, ``value``; ``p`` must come from `prepare` on the same connection.
    """
    con.register("deduplicated_hits", deduplicated_hits(con, spec, p))
    parts = [
        f"SELECT vid, {i} AS metric_index, ts, revenue, value FROM deduplicated_hits "
        f"WHERE event = {j}"
        for i, j in enumerate(_event_of_metric(spec))
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


class _IntSums:
    """Exact running sums of integers by index: int64 while they must fit, Python ints beyond."""

    def __init__(self, size: int, sums: npt.NDArray[Any] | None = None) -> None:
        """Zeros, or ``sums`` to add to (in place while int64 will do)."""
        self.sums: npt.NDArray[Any] = np.zeros(size, np.int64) if sums is None else sums
        self.bound = 0.0 if sums is None else _magnitude(sums)  # bounds every |partial sum|

    def add(self, index: Ints, values: npt.NDArray[Any]) -> None:
        self.bound += _magnitude(values) * len(values)
        if self.bound >= _SAFE_INT64 and self.sums.dtype != object:
            self.sums = self.sums.astype(object)
        if self.sums.dtype == object:
            values = values.astype(object)
        np.add.at(self.sums, index, values)


def count_segments(
    con: duckdb.DuckDBPyConnection,
    spec: CountingSpec,
    segment: str | None,
    *,
    batch_rows: int = BATCH_ROWS,
    key_bits: int = 64,
) -> dict[SegmentValue, Counts]:
    """`count` per value of the ``segment`` attribute at each visitor's first decision that has
    it.

    Visitors without the attribute are under ``None``; past `MAX_SEGMENT_VALUES` values, the
    least common are counted together under an `OtherValues`. Without a segment, everything is under
    ``None``. ``batch_rows`` and ``key_bits`` are for tests (see `stream_hits`, `prepare`).
    """
    p = prepare(con, spec, segment, key_bits=key_bits)
    sums = visitor_sums(spec, p, stream_hits(con, spec, p, batch_rows))
    return counts_of_visitors(spec, p, sums)


@dataclass(slots=True)
class VisitorSums:
    """Per metric event (in `_events` order) and assigned visitor (by ``vid``): the conversions
    that count, their revenue and their value; one array over the visitors per event, each
    contiguous, so that reading an event's column copies nothing."""

    conversions: list[Ints]
    #: int64, or Python ints where int64 could overflow (see `_IntSums`).
    revenue: list[npt.NDArray[Any]]
    value: list[Floats]


def visitor_sums(spec: CountingSpec, p: Prepared, hits: Iterable[Hits]) -> VisitorSums:
    """``hits`` added up per visitor and metric event, one batch at a time."""
    events = len(_events(spec))
    bins = p.visitors * events
    conversions_of = np.zeros(bins, np.int64)
    revenue_sums = _IntSums(bins)
    values_of = np.zeros(bins, np.float64)
    for batch in hits:
        key = batch.event * p.visitors + batch.vid
        np.add.at(conversions_of, key, 1)
        revenue_sums.add(key, batch.revenue)
        np.add.at(values_of, key, batch.value)
    return _sums_of_bins(spec, p, conversions_of, revenue_sums.sums, values_of)


def _sums_of_bins(
    spec: CountingSpec, p: Prepared, conversions: Ints, revenue: npt.NDArray[Any], value: Floats
) -> VisitorSums:
    """`VisitorSums` of arrays over bins ``event * visitors + vid``, cut per event."""

    def per_event(array: npt.NDArray[Any]) -> list[npt.NDArray[Any]]:
        n = p.visitors
        return [array[j * n : (j + 1) * n] for j in range(len(_events(spec)))]

    return VisitorSums(per_event(conversions), per_event(revenue), per_event(value))


def counts_of_visitors(
    spec: CountingSpec, p: Prepared, sums: VisitorSums
) -> dict[SegmentValue, Counts]:
    """Per segment value, the counts of the visitors of ``p`` with the per-visitor ``sums``."""
    width = len(spec.variation_ids)
    size = width * len(p.segment_values)
    group = p.segment * width + p.variation  # per visitor: (segment, variation)
    visitors = _tally(group, size)
    several = _tally(group[p.multiple], size)
    # Per metric event and group: its converters, conversions, revenue and value.
    by_event: dict[int, tuple[list[int], list[Number], list[Number], list[Number]]] = {}
    rows: list[dict[int, tuple[Number, ...]]] = []
    for metric, j in zip(spec.metrics, _event_of_metric(spec), strict=True):
        conversions, revenue, value = sums.conversions[j], sums.revenue[j], sums.value[j]
        if j not in by_event:
            by_event[j] = (
                _tally(group[conversions > 0], size),
                _sums(group, conversions, size),
                _sums(group, revenue, size),
                _sums(group, value, size),
            )
        converters, total, revenue_sum, value_sum = by_event[j]
        # The sum of the per-visitor values, of their squares, and how many are not 0; what the
        # event's sums already say is not summed again (a converter's `unique` value is 1, so
        # its square too; a visitor's `count` is not 0 exactly when they converted).
        moments: tuple[Sequence[Number], Sequence[Number], Sequence[Number]]
        if metric.aggregator is Aggregator.UNIQUE:
            moments = (converters, converters, converters)
        elif metric.aggregator is Aggregator.COUNT:
            moments = (total, _sums(group, _squares(conversions), size), converters)
        else:
            y, y_sum = (revenue, revenue_sum) if metric.field == "revenue" else (value, value_sum)
            moments = (y_sum, _sums(group, _squares(y), size), _tally(group[y != 0], size))
        columns = (*moments, *by_event[j])
        rows.append({g: tuple(c[g] for c in columns) for g in range(size)})

    out: dict[SegmentValue, Counts] = {}
    for s, segment_value in enumerate(p.segment_values):
        groups = {v: s * width + i for i, v in enumerate(spec.variation_ids)}
        if not any(visitors[g] for g in groups.values()):
            continue
        out[segment_value] = counts_from(
            spec,
            {v: (visitors[g], several[g]) for v, g in groups.items()},
            {(i, v): per[g] for i, per in enumerate(rows) for v, g in groups.items()},
        )
    return out


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


#: Days are stored offset by this in a cell key (visitor, event, day): any day within ±2**20 of
#: 1970 (2870 years) fits.
_DAY_BITS = 21
_DAY_OFFSET = 1 << (_DAY_BITS - 1)


@dataclass(slots=True)
class _Cells:
    """Per (visitor, metric event, day) cell: conversions, revenue and value, added up from
    batches of hits. Batches are reduced on arrival and merged when they outgrow the merged
    cells, so this holds about as much as the cells themselves."""

    key: Ints
    conversions: Ints
    revenue: npt.NDArray[Any]
    value: Floats

    @staticmethod
    def empty() -> _Cells:
        return _Cells(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64),
                      np.zeros(0, np.float64))  # fmt: skip

    @staticmethod
    def of(key: Ints, conversions: Ints, revenue: npt.NDArray[Any], value: Floats) -> _Cells:
        cells, cell_of = np.unique(key, return_inverse=True)
        return _Cells.summed(cells, cell_of, conversions, revenue, value)

    @staticmethod
    def summed(
        cells: Ints, cell_of: Ints, conversions: Ints, revenue: npt.NDArray[Any], value: Floats
    ) -> _Cells:
        """The cells ``cells``, each row added to its cell ``cells[cell_of[row]]``."""
        return _Cells(
            cells,
            _int_sums(cell_of, conversions, len(cells)),
            _int_sums(cell_of, revenue, len(cells)),
            np.bincount(cell_of, weights=value, minlength=len(cells)).astype(np.float64),
        )


def _merge(parts: list[_Cells]) -> _Cells:
    if len(parts) == 1:
        return parts[0]
    revenue = [p.revenue for p in parts]
    if any(r.dtype == object for r in revenue):
        revenue = [r.astype(object) for r in revenue]
    return _Cells.summed(
        *_distinct_of_runs(np.concatenate([p.key for p in parts])),
        np.concatenate([p.conversions for p in parts]),
        np.concatenate(revenue),
        np.concatenate([p.value for p in parts]),
    )


def _distinct_of_runs(key: Ints) -> tuple[Ints, Ints]:
    """What ``np.unique(key, return_inverse=True)`` gives, for ``key`` made of sorted runs.

    NumPy's stable sort (timsort for 64-bit integers) merges runs that are already sorted
    instead of sorting them again: the parts of `_merge` took 0.15 s instead of 0.5 s for 4.3M
    keys in 3 runs (on random keys it is the slower one, so `_Cells.of` keeps ``np.unique``).
    """
    order = np.argsort(key, kind="stable")
    ordered = key[order]
    first = np.ones(len(key), np.bool_)
    first[1:] = ordered[1:] != ordered[:-1]
    cell_of = np.empty(len(key), np.int64)
    cell_of[order] = np.cumsum(first) - 1
    return ordered[first], cell_of


def _cells(
    con: duckdb.DuckDBPyConnection, spec: CountingSpec, p: Prepared, batch_rows: int
) -> _Cells:
    events = len(_events(spec))
    if (p.visitors * events) >= 1 << (63 - _DAY_BITS):
        raise ValueError("too many visitors for count_daily's cell keys")
    merged = _Cells.empty()
    pending: list[_Cells] = []
    waiting = 0
    for hits in stream_hits(con, spec, p, batch_rows):
        day = hits.ts // DAY_MS + _DAY_OFFSET
        if len(day) and (day.min() < 0 or day.max() >= 1 << _DAY_BITS):
            raise ValueError("a timestamp outside the days count_daily can key")
        key = ((hits.vid * events + hits.event) << _DAY_BITS) | day
        pending.append(_Cells.of(key, np.ones(len(key), np.int64), hits.revenue, hits.value))
        waiting += len(pending[-1].key)
        if waiting > max(len(merged.key), batch_rows):
            merged, pending, waiting = _merge([merged, *pending]), [], 0
    return _merge([merged, *pending])


def _daily_increments(
    spec: CountingSpec, p: Prepared, cells: _Cells
) -> dict[int, dict[tuple[int, str], list[Number]]]:
    """Per day, (metric, variation) → what that day adds to each field of `MetricCounts`.

    Per visitor and day, the cumulative conversions, revenue and value before and after the day
    give the change of the visitor's metric value; those changes add up per variation and day.
    """
    events = len(_events(spec))
    out: dict[int, dict[tuple[int, str], list[Number]]] = {}
    if len(cells.key) == 0:
        return out
    # Cells are in key order: (visitor, event, day).
    vid_event = cells.key >> _DAY_BITS
    day = (cells.key & ((1 << _DAY_BITS) - 1)) - _DAY_OFFSET
    vid, event = vid_event // events, vid_event % events
    first_day = int(day.min())
    days = int(day.max()) - first_day + 1
    width = len(spec.variation_ids)
    size = days * width
    for j in range(events):
        of_event = event == j
        if not of_event.any():
            continue
        # One cell per visitor and day, in (visitor, day) order.
        cell_vid, cell_day = vid[of_event], day[of_event] - first_day
        dc, dr, dv = cells.conversions[of_event], cells.revenue[of_event], cells.value[of_event]
        start = np.ones(len(cell_vid), np.bool_)
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
        for i, (metric, metric_event) in enumerate(
            zip(spec.metrics, _event_of_metric(spec), strict=True)
        ):
            if metric_event != j:
                continue
            new: npt.NDArray[Any]
            old: npt.NDArray[Any]
            if metric.aggregator is Aggregator.UNIQUE:
                new, old = np.ones(len(cell_vid), np.int64), (c - dc > 0).astype(np.int64)
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


def count_daily(
    con: duckdb.DuckDBPyConnection,
    spec: CountingSpec,
    *,
    batch_rows: int = BATCH_ROWS,
    key_bits: int = 64,
) -> list[tuple[int, Counts]]:
    """Cumulative `Counts` at the end of each UTC day (epoch ms of the day's end), oldest first.

    Computed from per-visitor, per-day increments: one pass over the conversions that count, not
    one recount per day. ``batch_rows`` and ``key_bits`` are for tests, as in `count_segments`.
    """
    return daily_counts(con, spec, batch_rows=batch_rows, key_bits=key_bits)[0]


def daily_counts(
    con: duckdb.DuckDBPyConnection,
    spec: CountingSpec,
    *,
    batch_rows: int = BATCH_ROWS,
    key_bits: int = 64,
) -> tuple[list[tuple[int, Counts]], Prepared, VisitorSums]:
    """`count_daily`, with the visitors it assigned (``assigned`` is left on ``con``) and their
    `VisitorSums` over all days."""
    p = prepare(con, spec, key_bits=key_bits)
    new_visitors: dict[int, dict[str, list[int]]] = {}
    for day, variation, n, several in con.execute(
        f"SELECT first_ts // {DAY_MS}, variation_id, count(*), count(*) FILTER (WHERE multiple) "
        "FROM assigned GROUP BY ALL"
    ).fetchall():
        new_visitors.setdefault(int(day), {})[variation] = [int(n), int(several)]
    cells = _cells(con, spec, p, batch_rows)
    increments = _daily_increments(spec, p, cells)
    sums = _sums_of_cells(spec, p, cells)
    days = sorted(set(new_visitors) | set(increments))
    if not days:
        return [], p, sums
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
        out.append(((day + 1) * DAY_MS, counts_from(spec, dict(visitors), rows)))
    return out, p, sums


def _sums_of_cells(spec: CountingSpec, p: Prepared, cells: _Cells) -> VisitorSums:
    """Per visitor and metric event, the sums of their cells over all days."""
    events = len(_events(spec))
    bins = p.visitors * events
    vid_event = cells.key >> _DAY_BITS  # vid * events + event
    of_bin = (vid_event % events) * p.visitors + vid_event // events
    conversions = np.zeros(bins, np.int64)
    np.add.at(conversions, of_bin, cells.conversions)
    revenue = _IntSums(bins)
    revenue.add(of_bin, cells.revenue)
    value = np.zeros(bins, np.float64)
    np.add.at(value, of_bin, cells.value)
    return _sums_of_bins(spec, p, conversions, revenue.sums, value)
