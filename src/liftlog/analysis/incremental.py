"""Counts brought up to date from the events loaded since they were counted, not from the lake.

`liftlog.analysis.counting.count` reads every event of the experiment (seconds at 10M events).
Counting the same experiment again after the loader appended a few thousand events only needs
those events and the visitors they touch, if what was counted per visitor is kept: a
`VisitorState` holds, per assigned visitor, their variation, first exposure and whether they
were exposed to several variations, and per metric event the conversions that count with their
revenue and value. `update` brings it to a newer snapshot of the lake:

1. The files the Delta commits since the state added with new data are read; commits that
   removed data (an erasure, a rebuilt table) or changed the schema make `update` return None,
   and the caller counts from scratch. Compaction rewrites files without changing data, so it
   does not; the files it replaced stay on disk for Delta's retention (7 days), which is how long
   a state can be brought up to date.
2. New exposures are merged per visitor. Every aggregate of an exposure is idempotent (the
   earliest one's time and variation, whether several variations were seen, and with a
   breakdown the earliest segment value), so a duplicate of an exposure changes nothing.
3. A visitor who is new, or whose first exposure is now earlier (a late decision), is *touched*:
   their conversions are counted again from the whole snapshot, limited by timestamp to those at
   or after the earliest first exposure among them (Parquet statistics skip the older files).
4. Other visitors' new conversions are added, except those whose de-duplication key (``entity_id,
   uuid, timestamp``) was already in the lake: that read is limited to the new conversions'
   timestamp range, and the lake's files are in arrival order. The rows of one key are one
   event, so a duplicate counts, or not, as its first copy did.

The counts are then those of `counts_of_visitors`, as `count` makes them: a property test holds
both equal on random sequences of appends. The sums of float values may differ in their last
bits (they are added in another order). Which of two *different* events sharing a key, or two
first exposures at the same millisecond, wins is arbitrary in both.

After the experiment's settings change, `derive` makes the state of the new settings from the
old one's, brought up to date first, where it can: metrics added or removed, or running
intervals that count the same events of the lake so far (a pause or a resumption).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
from deltalake import DeltaTable

from liftlog.analysis.counting import (
    BATCH_ROWS,
    MEMORY_LIMIT,
    Ints,
    Prepared,
    VisitorSums,
    _column,
    _events,
    _hits,
    _IntSums,
    counts_of_visitors,
    daily_counts,
    first_exposures_sql,
    hit_sql,
    prepare,
    segment_groups,
    stream_hits,
    visitor_sums,
)
from liftlog.analysis.counts import Counts, SegmentValue, merge_counts
from liftlog.analysis.sources import Versions
from liftlog.lake.schema import SCHEMAS
from liftlog.rules.counting import CountingSpec

#: ``segment_ts`` of a visitor none of whose exposures has the segment's attribute.
NO_SEGMENT = np.iinfo(np.int64).max

_DECISIONS = list(SCHEMAS).index("decisions")
_CONVERSIONS = list(SCHEMAS).index("conversions")


@dataclass(frozen=True, slots=True)
class VisitorState:
    """What `count` knows per visitor of ``spec``, as of the lake's tables at ``versions``.

    Visitors are numbered by ``vid`` (their row in every array); per visitor, their first
    exposure's variation (an index in ``spec.variation_ids``) and time, whether they were
    exposed to several variations, and `VisitorSums` over the metric events.
    """

    spec: CountingSpec
    #: The attribute the counts are broken down by (None: not broken down).
    segment: str | None
    table_ids: tuple[str | None, ...]
    versions: Versions
    visitor_id: pa.Array
    variation: Ints
    first_ts: Ints
    multiple: npt.NDArray[np.bool_]
    sums: VisitorSums
    #: With a ``segment``, each visitor's value of it at their first exposure that has it
    #: (null: none has), and that exposure's time (`NO_SEGMENT`: none).
    segment_value: pa.Array | None = None
    segment_ts: Ints | None = None

    @property
    def visitors(self) -> int:
        return len(self.variation)

    @property
    def nbytes(self) -> int:
        arrays = [self.variation, self.first_ts, self.multiple, *self.sums.conversions,
                  *self.sums.revenue, *self.sums.value]  # fmt: skip
        if self.segment_ts is not None:
            arrays.append(self.segment_ts)
        strings = int(self.visitor_id.nbytes)
        if self.segment_value is not None:
            strings += int(self.segment_value.nbytes)
        return strings + sum(int(a.nbytes) for a in arrays)

    def by_segment(self) -> dict[SegmentValue, Counts]:
        """What `liftlog.analysis.counting.count_segments` returns for the same snapshot."""
        values: list[SegmentValue] = [None]
        group = np.zeros(self.visitors, np.int64)
        if self.segment is not None and self.segment_value is not None and self.visitors:
            values, group = segment_groups(self.segment_value)
        p = Prepared(self.visitors, self.variation, self.multiple, group, values)
        return counts_of_visitors(self.spec, p, self.sums)

    def counts(self) -> Counts:
        """The whole experiment's counts (of every segment together)."""
        return merge_counts(self.spec, self.by_segment().values())


def counted(
    con: duckdb.DuckDBPyConnection,
    lake_dir: Path,
    spec: CountingSpec,
    versions: Versions,
    table_ids: tuple[str | None, ...],
    state: VisitorState | None,
    segment: str | None = None,
) -> tuple[VisitorState, bool]:
    """``state`` brought up to ``con``'s snapshot if it can be, else a counting from scratch
    (broken down by ``segment``); and whether it was brought up to date. ``state`` may be of
    another spec of the same experiment (settings changed since): it is brought up to date as
    it is, then `derive`d."""
    if state is not None and state.segment == segment:
        new = update(con, lake_dir, state, versions, table_ids)
        if new is not None and new.spec != spec:
            new = derive(con, new, spec)
        if new is not None:
            return new, True
    return count_state(con, spec, versions, table_ids, segment), False


def count_state(
    con: duckdb.DuckDBPyConnection,
    spec: CountingSpec,
    versions: Versions,
    table_ids: tuple[str | None, ...],
    segment: str | None = None,
) -> VisitorState:
    """Count ``spec`` from scratch on ``con`` (`liftlog.analysis.sources.open_lake`, whose
    snapshot is at ``versions``), keeping what `update` needs; with a ``segment`` attribute,
    each visitor's value of it too."""
    p = prepare(con, spec, segment)
    sums = visitor_sums(spec, p, stream_hits(con, spec, p))
    return _state_of(con, spec, segment, p, sums, versions, table_ids)


def count_daily_state(
    con: duckdb.DuckDBPyConnection,
    spec: CountingSpec,
    versions: Versions,
    table_ids: tuple[str | None, ...],
) -> tuple[list[tuple[int, Counts]], VisitorState]:
    """`liftlog.analysis.counting.count_daily`, and from the same pass the `VisitorState` that
    `count_state` would make."""
    daily, p, sums = daily_counts(con, spec)
    return daily, _state_of(con, spec, None, p, sums, versions, table_ids)


def _state_of(
    con: duckdb.DuckDBPyConnection,
    spec: CountingSpec,
    segment: str | None,
    p: Prepared,
    sums: VisitorSums,
    versions: Versions,
    table_ids: tuple[str | None, ...],
) -> VisitorState:
    """The state of the visitors `prepare` left in ``assigned`` on ``con``."""
    assigned = con.sql(
        f"SELECT visitor_id, first_ts, segment, coalesce(segment_ts, {NO_SEGMENT}) AS segment_ts "
        "FROM assigned ORDER BY vid"
    ).to_arrow_table()
    return VisitorState(
        spec=spec,
        segment=segment,
        segment_value=None if segment is None else _strings(assigned.column("segment")),
        segment_ts=None if segment is None else _column(assigned, "segment_ts", np.int64),
        table_ids=table_ids,
        versions=versions,
        visitor_id=_strings(assigned.column("visitor_id")),
        variation=p.variation,
        first_ts=_column(assigned, "first_ts", np.int64),
        multiple=p.multiple,
        sums=sums,
    )


def derivable(old: CountingSpec, new: CountingSpec) -> bool:
    """Whether a state of ``old`` may be `derive`d as one of ``new`` (the running intervals are
    checked against the lake there): the same experiment, variations and attribution window."""
    same = ("experiment_id", "campaign_id", "variation_ids", "attribution_window_ms")
    return all(getattr(old, f) == getattr(new, f) for f in same)


def derive(
    con: duckdb.DuckDBPyConnection, state: VisitorState, spec: CountingSpec
) -> VisitorState | None:
    """``state`` (at ``con``'s snapshot) as the state of ``spec``, another spec of the same
    experiment, or None if only a counting from scratch can say.

    After a change of metrics, the metric events both specs have keep their sums, and those
    only ``spec`` has are counted for the state's visitors (a read of those events alone);
    the visitors and their exposures don't depend on metrics. After a change of running
    intervals (pausing or resuming the experiment), the state is ``spec``'s as it is if both
    specs agree on every time up to the newest event in the lake: then they count the same
    events of this snapshot, and `update` applies ``spec``'s intervals to those loaded later.
    Another attribution window or other variations need a counting from scratch.
    """
    old = state.spec
    if not derivable(old, spec):
        return None
    if old.intervals != spec.intervals and not _agree_until(
        old.intervals, spec.intervals, latest_timestamp(con)
    ):
        return None
    old_events, new_events = _events(old), _events(spec)
    missing = [e for e in new_events if e not in old_events]
    conversions: list[Ints] = []
    revenue: list[npt.NDArray[Any]] = []
    value: list[npt.NDArray[np.float64]] = []
    for e in new_events:
        if e in old_events:
            j = old_events.index(e)
            conversions.append(state.sums.conversions[j])
            revenue.append(state.sums.revenue[j])
            value.append(state.sums.value[j])
        else:
            conversions.append(np.zeros(state.visitors, np.int64))
            revenue.append(np.zeros(state.visitors, np.int64))
            value.append(np.zeros(state.visitors, np.float64))
    if missing and state.visitors:
        # A new event's conversions may be a large part of the lake: spill past the limit of
        # a counting from scratch.
        con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
        of_missing = tuple(m for m in spec.metrics if (m.event_id, m.event_key) in missing)
        counted_spec = dataclasses.replace(spec, metrics=of_missing)
        con.register(
            "visitors",
            pa.table({"vid": np.arange(state.visitors, dtype=np.int64),
                      "visitor_id": state.visitor_id, "first_ts": state.first_ts}),
        )  # fmt: skip
        try:
            # A literal lower bound, so that Parquet statistics skip the files before it.
            since = f"c.timestamp_raw >= {int(state.first_ts.min())}"
            query = one_per_key_sql(counted_spec, "conversions", since)
            places = [new_events.index(e) for e in _events(counted_spec)]
            # In record batches: a new metric event may have tens of millions of conversions.
            for batch in con.sql(query).to_arrow_reader(BATCH_ROWS):
                table = pa.Table.from_batches([batch])
                add_hits(counted_spec, table, places, conversions, revenue, value)
        finally:
            con.unregister("visitors")
    return dataclasses.replace(state, spec=spec, sums=VisitorSums(conversions, revenue, value))


def _agree_until(
    a: tuple[tuple[int, int | None], ...], b: tuple[tuple[int, int | None], ...], until: int | None
) -> bool:
    """Whether running intervals ``a`` and ``b`` hold the same times up to ``until`` (epoch
    ms; None: no time at all)."""
    if until is None:
        return True

    def upto(intervals: tuple[tuple[int, int | None], ...]) -> list[tuple[int, int]]:
        clipped = sorted(
            (start, until + 1 if end is None else min(end, until + 1)) for start, end in intervals
        )
        merged: list[tuple[int, int]] = []
        for start, end in clipped:
            if start >= end:
                continue
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        return merged

    return upto(a) == upto(b)


def latest_timestamp(con: duckdb.DuckDBPyConnection) -> int | None:
    """The newest event time (epoch ms) of ``con``'s snapshot, decisions and conversions."""
    [(latest,)] = con.execute(
        "SELECT max(t) FROM (SELECT max(timestamp_raw) AS t FROM decisions "
        "UNION ALL SELECT max(timestamp_raw) FROM conversions)"
    ).fetchall()
    return None if latest is None else int(latest)


def appended_files(table: Path, since: int | None, until: int | None) -> list[str] | None:
    """The data files that Delta commits ``since + 1 .. until`` of ``table`` added with new rows
    (None: the table did not exist), or None if those commits did anything else to its rows
    (removed some, changed the schema) or are no longer there to read."""
    if until is None:
        return [] if since is None else None
    if since is not None and since > until:
        return None
    files: list[str] = []
    for version in range(0 if since is None else since + 1, until + 1):
        try:
            lines = (table / "_delta_log" / f"{version:020d}.json").read_bytes().splitlines()
        except FileNotFoundError:  # the log was cleaned up past its retention
            return None
        for line in lines:
            if not line.strip():
                continue
            action: dict[str, Any] = json.loads(line)
            if "metaData" in action and version > 0:
                return None
            add, remove = action.get("add"), action.get("remove")
            if add is not None and add.get("dataChange", True):
                if add.get("deletionVector") or "://" in add["path"]:
                    return None
                files.append(str(table / unquote(add["path"])))
            if remove is not None and remove.get("dataChange", True):
                return None
    return files


def _files_of(table: Path, version: int | None) -> list[str]:
    if version is None:
        return []
    return list(DeltaTable(str(table), version=version).file_uris())


def _view(con: duckdb.DuckDBPyConnection, name: str, files: list[str], table: str) -> None:
    """The view ``name`` over ``files`` (an empty one with ``table``'s columns if none)."""
    if files:
        con.read_parquet(files, union_by_name=True).create_view(name)
    else:
        con.sql(f"SELECT * FROM {table} WHERE false").create_view(name)


def update(
    con: duckdb.DuckDBPyConnection,
    lake_dir: Path,
    state: VisitorState,
    versions: Versions,
    table_ids: tuple[str | None, ...],
) -> VisitorState | None:
    """``state`` brought up to the snapshot of ``con`` (at ``versions``), or None if only a
    counting from scratch can say (see the module's description)."""
    if table_ids != state.table_ids:
        return None
    decisions_dir, conversions_dir = lake_dir / "decisions", lake_dir / "conversions"
    new_decisions = appended_files(decisions_dir, state.versions[_DECISIONS], versions[_DECISIONS])
    new_conversions = appended_files(
        conversions_dir, state.versions[_CONVERSIONS], versions[_CONVERSIONS]
    )
    if new_decisions is None or new_conversions is None:
        return None
    if not new_decisions and not new_conversions:
        return dataclasses.replace(state, table_ids=table_ids, versions=versions)
    old_conversions = _files_of(conversions_dir, state.versions[_CONVERSIONS])
    if not all(Path(f).exists() for f in (*new_decisions, *new_conversions, *old_conversions)):
        return None  # vacuumed: the files of that snapshot are gone
    _view(con, "new_decisions", new_decisions, "decisions")
    _view(con, "new_conversions", new_conversions, "conversions")
    _view(con, "old_conversions", old_conversions, "conversions")
    return _Update(con, state, versions, table_ids).run()


class _Update:
    """One `update` of a state whose new files are the views ``new_decisions`` and
    ``new_conversions`` on ``con``, beside ``old_conversions`` (the state's snapshot)."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        state: VisitorState,
        versions: Versions,
        table_ids: tuple[str | None, ...],
    ) -> None:
        self.con, self.state, self.spec = con, state, state.spec
        self.versions, self.table_ids = versions, table_ids

    def run(self) -> VisitorState:
        state, spec = self.state, self.spec
        con = self.con
        # The known visitors that the new events are of: the one pass over all of them.
        con.register(
            "known",
            pa.table({"vid": np.arange(state.visitors, dtype=np.int64),
                      "visitor_id": state.visitor_id}),
        )  # fmt: skip
        met = con.sql("""
            SELECT k.vid, k.visitor_id FROM known k
            SEMI JOIN (SELECT visitor_id FROM new_decisions
                       UNION SELECT visitor_id FROM new_conversions) n USING (visitor_id)
        """).to_arrow_table()
        con.unregister("known")
        con.register("met", met)
        exposed = con.sql(f"""
            SELECT k.vid, f.visitor_id, f.variation_index, f.first_ts, f.lowest, f.highest,
                   f.segment, coalesce(f.segment_ts, {NO_SEGMENT}) AS segment_ts
            FROM ({first_exposures_sql(spec, state.segment, "new_decisions", "new_conversions")}) f
            LEFT JOIN met k USING (visitor_id)
        """).to_arrow_table()
        con.unregister("met")
        old = exposed.filter(exposed.column("vid").is_valid())
        new = exposed.filter(exposed.column("vid").is_null())

        variation, first_ts = state.variation.copy(), state.first_ts.copy()
        multiple = state.multiple.copy()
        vid = _column(old, "vid", np.int64)
        ts, index = _column(old, "first_ts", np.int64), _column(old, "variation_index", np.int64)
        lowest, highest = _column(old, "lowest", np.int64), _column(old, "highest", np.int64)
        # Not several variations before (all the visitor's exposures were in theirs): several
        # now if the new ones are of several, or of another.
        multiple[vid] |= (lowest != highest) | (lowest != variation[vid])
        earlier = ts < first_ts[vid]
        variation[vid[earlier]] = index[earlier]
        first_ts[vid[earlier]] = ts[earlier]

        added = new.num_rows
        total = state.visitors + added
        variation = np.concatenate([variation, _column(new, "variation_index", np.int64)])
        first_ts = np.concatenate([first_ts, _column(new, "first_ts", np.int64)])
        multiple = np.concatenate(
            [multiple, _column(new, "lowest", np.int64) != _column(new, "highest", np.int64)]
        )
        visitor_id = pa.concat_arrays([state.visitor_id, _strings(new.column("visitor_id"))])
        segment_value, segment_ts = None, None
        if state.segment_value is not None and state.segment_ts is not None:
            # Each visitor's value at their first exposure that has one: the new one's where
            # that is earlier.
            seen = _column(old, "segment_ts", np.int64)
            better = seen < state.segment_ts[vid]
            segment_ts = state.segment_ts.copy()
            segment_ts[vid[better]] = seen[better]
            segment_ts = np.concatenate([segment_ts, _column(new, "segment_ts", np.int64)])
            delta = (_strings(old.column("segment")), _strings(new.column("segment")))
            values = pa.concat_arrays([state.segment_value, *delta])
            take = np.arange(state.visitors + old.num_rows + added, dtype=np.int64)
            take[vid[better]] = state.visitors + np.flatnonzero(better)
            take = np.concatenate([take[: state.visitors], take[state.visitors + old.num_rows :]])
            segment_value = values.take(pa.array(take))
        touched = np.concatenate([vid[earlier], np.arange(state.visitors, total, dtype=np.int64)])

        # Per event, the state's sums with room for the new visitors; the touched visitors'
        # are counted again from the whole snapshot.
        conversions: list[Ints] = []
        revenue: list[npt.NDArray[Any]] = []
        value: list[npt.NDArray[np.float64]] = []
        old_sums = state.sums
        for c, r, v in zip(old_sums.conversions, old_sums.revenue, old_sums.value, strict=True):
            conversions.append(np.concatenate([c, np.zeros(added, np.int64)]))
            revenue.append(np.concatenate([r, np.zeros(added, r.dtype)]))
            value.append(np.concatenate([v, np.zeros(added, np.float64)]))
            conversions[-1][touched], revenue[-1][touched], value[-1][touched] = 0, 0, 0.0
        mark = np.zeros(total, np.bool_)
        mark[touched] = True
        # The visitors the new events are of (the others' counts stay as they are).
        of_events = np.concatenate(
            [_column(met, "vid", np.int64), np.arange(state.visitors, total, dtype=np.int64)]
        )
        ids = pa.concat_arrays([_strings(met.column("visitor_id")), visitor_id[state.visitors :]])
        con.register(
            "visitors",
            pa.table({"vid": of_events, "visitor_id": ids, "first_ts": first_ts[of_events],
                      "touched": mark[of_events]}),
        )  # fmt: skip
        hits = [self._touched_hits(first_ts[touched]), self._new_hits()]
        con.unregister("visitors")
        places = list(range(len(conversions)))
        for table in hits:
            add_hits(spec, table, places, conversions, revenue, value)
        return VisitorState(
            spec=spec,
            segment=state.segment,
            segment_value=segment_value,
            segment_ts=segment_ts,
            table_ids=self.table_ids,
            versions=self.versions,
            visitor_id=visitor_id,
            variation=variation,
            first_ts=first_ts,
            multiple=multiple,
            sums=VisitorSums(conversions, revenue, value),
        )

    def _touched_hits(self, first_ts: Ints) -> pa.Table:
        """Every conversion that counts for a touched visitor, one per key."""
        if len(first_ts) == 0:
            return _no_hits()
        # A literal lower bound, so that Parquet statistics skip the files before it.
        touched = f"v.touched AND c.timestamp_raw >= {int(first_ts.min())}"
        return self.con.sql(one_per_key_sql(self.spec, "conversions", touched)).to_arrow_table()

    def _new_hits(self) -> pa.Table:
        """The new conversions that count for the other visitors, one per key, leaving out
        those whose key was already in the lake."""
        query = one_per_key_sql(
            self.spec, "new_conversions", "NOT v.touched", "c.entity_id, c.uuid,"
        )
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE new_hits AS {query}")
        [(low, high)] = self.con.execute("SELECT min(ts), max(ts) FROM new_hits").fetchall()
        if low is None:
            return _no_hits()
        return self.con.sql(f"""
            SELECT n.vid, n.ts, n.revenue, n.value, n.mask FROM new_hits n
            ANTI JOIN (SELECT entity_id, uuid, timestamp_raw FROM old_conversions
                       WHERE timestamp_raw BETWEEN {int(low)} AND {int(high)}) o
              ON o.entity_id = n.entity_id AND o.uuid = n.uuid AND o.timestamp_raw = n.ts
        """).to_arrow_table()


def one_per_key_sql(spec: CountingSpec, conversions: str, visitors: str, keys: str = "") -> str:
    """A query of the conversions of the table ``conversions`` that count for the table
    ``visitors`` (``vid``, ``visitor_id``, ``first_ts``) where ``visitors`` holds (a condition
    on ``v`` and ``c``), one per de-duplication key (the rows of a key are one event, so any one
    of them will do), with ``keys`` more of its columns."""
    mask, counts = hit_sql(spec, "c", "v")
    return f"""
        SELECT any_value(v.vid) AS vid, {keys} c.timestamp_raw AS ts,
               any_value(coalesce(c.revenue, 0)) AS revenue,
               any_value(coalesce(c.value, 0.0)) AS value, any_value({mask}) AS mask
        FROM {conversions} c JOIN visitors v ON v.visitor_id = c.visitor_id
        WHERE {visitors} AND {counts}
        GROUP BY c.entity_id, c.uuid, c.timestamp_raw
    """


def add_hits(
    spec: CountingSpec,
    table: pa.Table,
    places: list[int],
    conversions: list[Ints],
    revenue: list[npt.NDArray[Any]],
    value: list[npt.NDArray[np.float64]],
) -> None:
    """Add the hits of ``table`` (`one_per_key_sql` of ``spec``) to the sums, in place: those
    of ``spec``'s j-th metric event to the arrays at ``places[j]`` (``revenue``'s may be
    replaced by wider ones, see `_IntSums`)."""
    if not table.num_rows:
        return
    batch = _hits(spec, table, None)
    for j, place in enumerate(places):
        of_event = batch.event == j
        vid = batch.vid[of_event]
        np.add.at(conversions[place], vid, 1)
        exact = _IntSums(len(revenue[place]), revenue[place])
        exact.add(vid, batch.revenue[of_event])
        revenue[place] = exact.sums
        np.add.at(value[place], vid, batch.value[of_event])


def _strings(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A column of text as one `pa.string()` array, the type the state keeps."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    return column.cast(pa.string())


def _no_hits() -> pa.Table:
    return pa.table({
        "vid": pa.array([], pa.int64()), "ts": pa.array([], pa.int64()),
        "revenue": pa.array([], pa.int64()), "value": pa.array([], pa.float64()),
        "mask": pa.array([], pa.int64()),
    })  # fmt: skip
