"""Event API v1 bodies → Arrow tables of ``decisions`` and ``conversions``, a batch at a time.

The rules are those of `liftlog.wire.rows` (columns, problem codes). Per record there is one
msgspec decode into the collector's own Structs (`liftlog.wire.events`, ``gc=False``), so the
loader accepts and rejects exactly what the collector does. The columns are then built about 4 MB of
bodies at a time: list comprehensions over the decoded visitors, snapshots and events, values
that are the same for a whole record or visitor expanded with ``take``, nested columns
(``attributes``, ``experiments``, ``tags``, ``problems``) assembled from flat child arrays, and
the checks that set ``problems`` done as Arrow compute on whole columns (the value rules and the
column builders are `liftlog.lake.columns`). Python's garbage collector is off meanwhile (the
decoded bodies hold thousands of dicts and lists it would rescan).

Measured on the loaded 2-core machine of ``docs/performance.md`` with SDK-shaped 10-event bodies
(``bench/loader.py``): about 14 µs an event, of which about 3.5 µs is the msgspec decode and 1 µs
freeing what it made; the DuckDB SQL this replaced took about 23 µs an event on the same bodies.

Every row comes out as `liftlog.wire.rows` made it, with one simplification: a U+E000-typed
string stored as text (an attribute or tag value) is the text after the prefix
(``"\\ue0001.50"`` → ``"1.50"``; the Python path gave ``repr(1.5)``). Decision metadata values
that are not strings (``flag_key``, ``rule_key``, ``rule_type``, ``variation_key``) are stored
as their JSON text, and ``enabled`` is read from ``true``/``false`` or ``"true"``/``"false"``.

Records that `decode_batch` rejects get a ``rejects`` row, ``invalid_body``, naming every problem
by its JSON path (a timestamp past 64 bits among them: the collector refuses those since
`liftlog.wire.events.Int64`, older raw logs may hold some). One that the column builders fail on
is rejected as ``unloadable_record`` with the error (see `_build`). Each record gives all its rows
or none.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from liftlog.errors import InvalidInput
from liftlog.lake import columns as col
from liftlog.lake.schema import SCHEMAS, TS
from liftlog.wire.events import (
    ACTIVATION,
    Decision,
    EventBatch,
    decode_batch,
)
from liftlog.wire.rows import MS_MAX, MS_MIN, Meta, Rows

_decoder = msgspec.json.Decoder(EventBatch)
_NO_DECISION = Decision()


@dataclass
class V1Records:
    """Accepted ``POST /v1/events`` records waiting to be normalised, column by column.

    ``need_*`` say which tables still lack a record's rows (a replay after a crash between the
    commits of two tables needs only some of them).
    """

    received_ms: list[int] = field(default_factory=list)
    client_ip: list[str | None] = field(default_factory=list)
    user_agent: list[str | None] = field(default_factory=list)
    referer: list[str | None] = field(default_factory=list)
    position: list[str] = field(default_factory=list)
    body: list[bytes] = field(default_factory=list)
    need_decisions: list[bool] = field(default_factory=list)
    need_conversions: list[bool] = field(default_factory=list)
    need_rejects: list[bool] = field(default_factory=list)
    #: About how many rows these records make: their events, counted by their ``"uuid"`` keys.
    events: int = 0

    def add(self, meta: Meta, body: bytes, need: tuple[bool, bool, bool]) -> None:
        self.received_ms.append(meta.received_ms)
        self.client_ip.append(meta.client_ip)
        self.user_agent.append(meta.user_agent)
        self.referer.append(meta.referer)
        self.position.append(meta.position)
        self.body.append(body)
        self.need_decisions.append(need[0])
        self.need_conversions.append(need[1])
        self.need_rejects.append(need[2])
        self.events += body.count(b'"uuid"')

    def __len__(self) -> int:
        return len(self.body)

    def meta(self, i: int) -> Meta:
        return Meta(
            self.received_ms[i],
            self.position[i],
            self.client_ip[i],
            self.user_agent[i],
            self.referer[i],
        )


@dataclass(frozen=True)
class Normalized:
    decisions: pa.Table
    conversions: pa.Table


#: Bytes of bodies decoded and made into columns at a time: the decoded objects of a chunk stay
#: nearer the CPU while the columns are taken from them. With 4 kB 10-event bodies, 30k events
#: in one chunk took about 10 % longer than in 4 MB chunks; 2 MB and 8 MB chunks were no better.
CHUNK_BYTES = 4 << 20


def normalise(records: V1Records, rejects: Rows, chunk_bytes: int = CHUNK_BYTES) -> Normalized:
    """Rows of every record of ``records``; the records that can't be read go to ``rejects``.

    Each record gives all its rows or none (then one ``rejects`` row, if it needs one).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        per_record = _RecordColumns(records)
        parts = []
        start = size = 0
        for i, body in enumerate(records.body):
            size += len(body)
            if size >= chunk_bytes or i == len(records) - 1:
                parts.append(_chunk(records, per_record, start, i + 1, rejects))
                start, size = i + 1, 0
    finally:
        if enabled:
            gc.enable()
    if len(parts) <= 1:
        return parts[0] if parts else _chunk(records, per_record, 0, 0, rejects)
    return Normalized(
        pa.concat_tables([p.decisions for p in parts]).combine_chunks(),
        pa.concat_tables([p.conversions for p in parts]).combine_chunks(),
    )


def _chunk(
    records: V1Records, per_record: _RecordColumns, start: int, end: int, rejects: Rows
) -> Normalized:
    batches: list[EventBatch] = []
    kept: list[int] = []
    for i in range(start, end):
        body = records.body[i]
        try:
            batches.append(_decoder.decode(body))
        # msgspec.DecodeError, a UnicodeDecodeError it lets through, or nesting past its limit
        except (ValueError, RecursionError):
            _reject(rejects, records, i, _problems_of(body))
            continue
        kept.append(i)
    return _build(records, per_record, batches, kept, rejects)


def _build(
    records: V1Records,
    per_record: _RecordColumns,
    batches: list[EventBatch],
    kept: list[int],
    rejects: Rows,
) -> Normalized:
    """The tables of ``batches``; a record whose rows can't be made goes to ``rejects``.

    A record that decodes but makes the column builders fail (a case this module misses) would
    otherwise fail its whole batch at every try, and loading would stop there for good. So the
    batch is halved until the failing records are found alone; each is rejected as
    ``unloadable_record`` with the error, and the others load. Running out of memory is not a
    property of a record and is raised.
    """
    try:
        return _Builder(per_record, batches, kept).tables()
    except MemoryError:
        raise
    except Exception as exc:
        if len(batches) == 1:
            detail = f"$: the loader could not make rows of it: {type(exc).__name__}: {exc}"
            _reject(rejects, records, kept[0], detail, reason="unloadable_record")
            return _build(records, per_record, [], [], rejects)
        half = len(batches) // 2
        parts = [
            _build(records, per_record, batches[:half], kept[:half], rejects),
            _build(records, per_record, batches[half:], kept[half:], rejects),
        ]
        return Normalized(
            pa.concat_tables([p.decisions for p in parts]),
            pa.concat_tables([p.conversions for p in parts]),
        )


def _problems_of(body: bytes) -> str:
    """The reason `decode_batch` gives for rejecting ``body``, as a ``rejects`` detail."""
    try:
        decode_batch(body)
    except InvalidInput as exc:
        return "; ".join(f"{d.path}: {d.problem}" for d in exc.details) or exc.message
    except ValueError as exc:  # msgspec lets a UnicodeDecodeError through
        return f"$: not valid JSON: {exc}"
    # pragma: no cover - the loader's Structs and the collector's disagree
    return "$: does not match the Event API v1 schema"


def _reject(
    rejects: Rows, records: V1Records, i: int, detail: str, reason: str = "invalid_body"
) -> None:
    if records.need_rejects[i]:
        rejects.reject(records.meta(i), "v1", reason, detail, records.body[i])


class _RecordColumns:
    """What the raw log says of each record, as Arrow arrays."""

    def __init__(self, records: V1Records) -> None:
        self.received = pa.array(records.received_ms, pa.int64())
        self.need_decisions = pa.array(records.need_decisions, pa.bool_())
        self.need_conversions = pa.array(records.need_conversions, pa.bool_())
        self.user_ip = col.strs(records.client_ip)
        self.user_agent = col.strs(records.user_agent)
        self.referer = col.strs(records.referer)
        self.position = col.strs(records.position)


class _Builder:
    """The two tables of a list of decoded batches; ``kept[j]`` is batch j's record index."""

    def __init__(self, records: _RecordColumns, batches: list[EventBatch], kept: list[int]) -> None:
        take = pa.array(kept, pa.int64())
        # per batch (record)
        self.b_received = records.received.take(take)
        self.b_need_dec = records.need_decisions.take(take)
        self.b_need_conv = records.need_conversions.take(take)
        self.b_meta: dict[str, pa.Array] = {
            "user_ip": records.user_ip.take(take),
            "user_agent": records.user_agent.take(take),
            "referer": records.referer.take(take),
            "rawlog_position": records.position.take(take),
            "account_id": col.strs([b.account_id for b in batches]),
            "project_id": col.strs([b.project_id for b in batches]),
            "revision": col.strs(
                [None if b.revision is None else str(b.revision) for b in batches]
            ),
            "client_engine": col.strs([b.client_name for b in batches]),
            "client_version": col.strs([b.client_version for b in batches]),
            "enrich_decisions": pa.array([b.enrich_decisions for b in batches], pa.bool_()),
        }
        # per visitor, snapshot and event, each with the index of its parent
        visitors = [v for b in batches for v in b.visitors]
        v_batch = [j for j, b in enumerate(batches) for _ in b.visitors]
        self.snaps = snaps = [s for v in visitors for s in v.snapshots]
        s_visitor = [k for k, v in enumerate(visitors) for _ in v.snapshots]
        self.events = events = [e for s in snaps for e in s.events]
        self.e_snap = e_snap = [k for k, s in enumerate(snaps) for _ in s.events]
        self.e_snap_a = pa.array(e_snap, pa.int64())
        self.e_visitor = pa.array(s_visitor, pa.int64()).take(self.e_snap_a)
        self.e_batch = pa.array(v_batch, pa.int64()).take(self.e_visitor)
        self.v_cols = {
            "visitor_id": col.strs([v.visitor_id for v in visitors]),
            "session_id": col.strs([v.session_id or None for v in visitors]),
            "attributes": col.attributes(visitors),
        }
        # per event
        ts_raw = pa.array([e.timestamp for e in events], pa.int64())  # 64 bits: see Int64
        ok = pc.and_(pc.greater_equal(ts_raw, MS_MIN), pc.less(ts_raw, MS_MAX))
        ts = pc.if_else(ok, ts_raw, None)
        received = self.b_received.take(self.e_batch)
        self.e_cols: dict[str, pa.Array] = {
            "date": col.day(pc.coalesce(ts, received)),
            "uuid": col.strs([e.uuid for e in events]),
            "timestamp": ts.cast(TS),
            "timestamp_raw": ts_raw,
            "process_timestamp": received.cast(TS),
            "entity_id": col.strs([e.entity_id for e in events]),
            "key": col.strs([e.key for e in events]),
            "type": col.strs([e.type for e in events]),
        }
        self.ts_bad = pc.invert(ok)
        key, kind = self.e_cols["key"], self.e_cols["type"]
        activation = pc.fill_null(
            pc.or_kleene(pc.equal(key, ACTIVATION), pc.equal(kind, ACTIVATION)), False
        )
        self.is_decision = pc.and_(activation, self.b_need_dec.take(self.e_batch))
        self.is_conversion = pc.and_(pc.invert(activation), self.b_need_conv.take(self.e_batch))

    def tables(self) -> Normalized:
        return Normalized(self.decisions(), self.conversions())

    def _columns(self, name: str, rows: pa.Array | None, own: dict[str, pa.Array]) -> pa.Table:
        """The table ``name`` of the events at ``rows`` (indices; None: all), with ``own``."""
        e_visitor = _pick(self.e_visitor, rows)
        e_batch = _pick(self.e_batch, rows)
        n = len(e_batch)
        columns = []
        for f in SCHEMAS[name]:
            if f.name in own:
                column = own[f.name]
            elif f.name in self.e_cols:
                column = _pick(self.e_cols[f.name], rows)
            elif f.name in self.v_cols:
                column = self.v_cols[f.name].take(e_visitor)
            elif f.name in self.b_meta:
                column = self.b_meta[f.name].take(e_batch)
            elif f.name == "source":
                column = pa.repeat("v1", n).cast(pa.string())
            else:  # pragma: no cover - a column added to the schema but not here
                raise KeyError(f.name)
            columns.append(column)
        return pa.Table.from_arrays(columns, schema=SCHEMAS[name])

    def conversions(self) -> pa.Table:
        found = pc.indices_nonzero(self.is_conversion)
        rows: pa.Array | None = found
        if len(found) == 0:
            return SCHEMAS["conversions"].empty_table()
        if len(found) == len(self.events):
            rows, events = None, self.events  # the common case: every event, in order
        else:
            events = [self.events[k] for k in found.to_pylist()]
        n = len(events)
        revenue, revenue_bad = col.ints([e.revenue for e in events])
        value, value_bad = col.floats([e.value for e in events])
        quantity, quantity_bad = col.ints([e.quantity for e in events])
        own = {
            "experiments": col.experiments(self.snaps).take(_pick(self.e_snap_a, rows)),
            "event_type": _pick(self.e_cols["type"], rows),
            "event_name": _pick(self.e_cols["key"], rows),
            "revenue": pa.array(revenue, pa.int64()),
            "value": pa.array(value, pa.float64()),
            "quantity": pa.array(quantity, pa.int64()),
            "tags": col.tags([e.tags for e in events]),
            "problems": col.problems(
                n,
                [
                    ("timestamp_not_ms", col.indices(_pick(self.ts_bad, rows))),
                    ("revenue_not_integer", revenue_bad),
                    ("value_not_number", value_bad),
                    ("quantity_not_integer", quantity_bad),
                ],
            ),
        }
        return self._columns("conversions", rows, own)

    def decisions(self) -> pa.Table:
        """One row per decision an activation matches by ``campaign_id``; without a match, one
        per decision of its snapshot (entity_not_campaign), or one with none (no_decision)."""
        rows: list[int] = []
        chosen: list[Decision] = []
        unmatched: list[tuple[int, str]] = []  # (first row, code), for every row of the event
        events, snaps, e_snap = self.events, self.snaps, self.e_snap
        for k in col.indices(self.is_decision):
            e = events[k]
            decisions = snaps[e_snap[k]].decisions or ()
            these = [d for d in decisions if d.campaign_id == e.entity_id]
            if not these:
                code = "entity_not_campaign" if decisions else "no_decision"
                unmatched.extend((len(rows) + m, code) for m in range(max(len(decisions), 1)))
                these = list(decisions) or [_NO_DECISION]
            rows.extend([k] * len(these))
            chosen.extend(these)
        if not rows:
            return SCHEMAS["decisions"].empty_table()
        take = pa.array(rows, pa.int64())
        meta = [d.metadata or {} for d in chosen]
        own = {
            "campaign_id": col.strs([d.campaign_id for d in chosen]),
            "experiment_id": col.strs([d.experiment_id for d in chosen]),
            "variation_id": col.strs([d.variation_id for d in chosen]),
            "is_holdback": pa.array([d.is_campaign_holdback for d in chosen], pa.bool_()),
            "flag_key": col.strs([col.meta_text(m.get("flag_key")) for m in meta]),
            "rule_key": col.strs([col.meta_text(m.get("rule_key")) for m in meta]),
            "rule_type": col.strs([col.meta_text(m.get("rule_type")) for m in meta]),
            "variation_key": col.strs([col.meta_text(m.get("variation_key")) for m in meta]),
            "enabled": pa.array([col.meta_bool(m.get("enabled")) for m in meta], pa.bool_()),
            "problems": col.problems(
                len(rows),
                [
                    ("timestamp_not_ms", col.indices(self.ts_bad.take(take))),
                    *_grouped(unmatched),
                ],
            ),
        }
        return self._columns("decisions", take, own)


def _pick(array: pa.Array, rows: pa.Array | None) -> pa.Array:
    return array if rows is None else array.take(rows)


def _grouped(pairs: list[tuple[int, str]]) -> list[tuple[str, list[int]]]:
    out: dict[str, list[int]] = {}
    for i, code in pairs:
        out.setdefault(code, []).append(i)
    return list(out.items())
