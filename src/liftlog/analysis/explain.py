"""The debugger's data: every stored event of one visitor (or one uuid), with its disposition."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import duckdb

from liftlog.rules.counting import CountingSpec
from liftlog.rules.dispositions import Disposition, First, StoredEvent, earlier_exposure, judge

# Duplicates are decided over the whole table: the first row of each (entity_id, uuid,
# timestamp) key, in the order rows were received, is the original.
_EVENTS = """
WITH mine AS (
    SELECT 'decision' AS kind, uuid, entity_id, timestamp_raw, timestamp, process_timestamp,
           rawlog_position, visitor_id, experiment_id, variation_id, NULL AS event_key,
           NULL::BIGINT AS revenue, NULL::DOUBLE AS value, problems,
           coalesce(is_holdback, false) AS is_holdback, source, [] AS experiments
    FROM decisions WHERE {where}
    UNION ALL
    SELECT 'conversion', uuid, entity_id, timestamp_raw, timestamp, process_timestamp,
           rawlog_position, visitor_id, NULL, NULL, event_name, revenue, value, problems, false,
           source, [(x.experiment_id, x.variation_id) FOR x IN experiments]
    FROM conversions WHERE {where}
), keys AS (
    SELECT DISTINCT entity_id, uuid, timestamp_raw FROM mine
), candidates AS (
    SELECT 'decision' AS kind, entity_id, uuid, timestamp_raw, process_timestamp, rawlog_position
    FROM decisions WHERE uuid IN (SELECT uuid FROM keys)
    UNION ALL
    SELECT 'conversion', entity_id, uuid, timestamp_raw, process_timestamp, rawlog_position
    FROM conversions WHERE uuid IN (SELECT uuid FROM keys)
), ranked AS (
    SELECT *, row_number() OVER (PARTITION BY kind, entity_id, uuid, timestamp_raw
                                 ORDER BY process_timestamp, rawlog_position) > 1 AS duplicate
    FROM candidates
)
SELECT DISTINCT m.*, r.duplicate
FROM mine m JOIN ranked r
  ON m.kind = r.kind AND m.uuid = r.uuid AND m.rawlog_position = r.rawlog_position
 AND m.entity_id IS NOT DISTINCT FROM r.entity_id AND m.timestamp_raw = r.timestamp_raw
ORDER BY timestamp_raw, process_timestamp, rawlog_position
"""


def _ms(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def _stored(row: dict[str, Any]) -> StoredEvent:
    return StoredEvent(
        kind=row["kind"],
        uuid=row["uuid"],
        entity_id=row["entity_id"],
        timestamp_raw=row["timestamp_raw"],
        timestamp=row["timestamp_raw"] if row["timestamp"] is not None else None,
        received=_ms(row["process_timestamp"]) or 0,
        position=row["rawlog_position"],
        visitor_id=row["visitor_id"],
        experiment_id=row["experiment_id"],
        variation_id=row["variation_id"],
        event_key=row["event_key"],
        revenue=row["revenue"],
        value=row["value"],
        problems=tuple(row["problems"] or ()),
        is_holdback=bool(row["is_holdback"]),
        duplicate=bool(row["duplicate"]),
        source=row["source"],
        experiments=tuple((e[0], e[1]) for e in row["experiments"] or ()),
    )


#: Events of one visitor that a timeline shows, the oldest first: a visitor id shared by a bot or
#: a misconfigured client (``"undefined"``, ``"user123"``) can have millions.
MAX_EVENTS = 1_000
#: Rows read from DuckDB at a time when going through all of a visitor's events.
_BATCH = 10_000


def _rows(con: duckdb.DuckDBPyConnection, where: str, params: list[Any]) -> Iterator[StoredEvent]:
    # On ``con`` itself: an empty lake's tables are registered on it alone. One pass at a time.
    cursor = con.execute(_EVENTS.format(where=where), params * 2)
    names = [d[0] for d in cursor.description or ()]
    while batch := cursor.fetchmany(_BATCH):
        for row in batch:
            yield _stored(dict(zip(names, row, strict=True)))


def _query(
    con: duckdb.DuckDBPyConnection, where: str, params: list[Any], limit: int
) -> list[StoredEvent]:
    return list(itertools.islice(_rows(con, where, params), limit))


def events_by_uuid(
    con: duckdb.DuckDBPyConnection, uuid: str, limit: int = MAX_EVENTS
) -> list[StoredEvent]:
    """The first ``limit`` stored events with this ``uuid`` (duplicates included), oldest
    first."""
    return _query(con, "uuid = ?", [uuid], limit)


def has_events(con: duckdb.DuckDBPyConnection, visitor_id: str) -> bool:
    """Whether any event of ``visitor_id`` is stored: 0.04 s on a 10M-event lake, against 0.5 s
    for the first row of the query that lists them (which also finds their duplicates)."""
    row = con.execute(
        "SELECT EXISTS (SELECT 1 FROM decisions WHERE visitor_id = $1) "
        "OR EXISTS (SELECT 1 FROM conversions WHERE visitor_id = $1)",
        [visitor_id],
    ).fetchone()
    return bool(row and row[0])


def experiments_named(con: duckdb.DuckDBPyConnection, visitors: list[str]) -> list[str]:
    """The ids of the experiments that any stored event of ``visitors`` names (a decision's
    ``experiment_id``, a legacy call's ``x`` pair), however many events they have."""
    if not visitors:
        return []
    marks = ", ".join("?" * len(visitors))
    rows = con.execute(
        f"""
        SELECT experiment_id FROM decisions WHERE visitor_id IN ({marks})
        UNION
        SELECT x.experiment_id FROM (
            SELECT unnest(experiments) AS x FROM conversions WHERE visitor_id IN ({marks})
        )
        """,
        visitors * 2,
    ).fetchall()
    return sorted({row[0] for row in rows if row[0]})


def judged(
    con: duckdb.DuckDBPyConnection,
    visitor_id: str,
    spec: CountingSpec,
    *,
    uuid: str | None = None,
    limit: int = MAX_EVENTS,
) -> tuple[list[Disposition], int]:
    """How the visitor's events (those with ``uuid`` only, if given) count in ``spec``'s
    experiment: the first ``limit`` of them, oldest first, and how many there are.

    The first pass over the visitor's events finds their first exposure (it may come after the
    ones shown); then they are judged in order. A visitor with at most `MAX_EVENTS` events has
    them judged from the first pass; one with more, from a second pass, so that neither holds
    them all.
    """
    first: First = None
    total = 0
    held: list[StoredEvent] | None = []
    for event in _rows(con, "visitor_id = ?", [visitor_id]):
        first = earlier_exposure(first, event, spec)
        total += uuid is None or event.uuid == uuid
        if held is not None:
            held.append(event)
            if len(held) > MAX_EVENTS:
                held = None
    again = _rows(con, "visitor_id = ?", [visitor_id]) if held is None else held
    shown = judge(again, spec, first)
    if uuid is not None:
        shown = (d for d in shown if d.event.uuid == uuid)
    return list(itertools.islice(shown, limit)), total


def rejected_mentions(
    con: duckdb.DuckDBPyConnection, text: str, limit: int = MAX_EVENTS
) -> list[dict[str, Any]]:
    """The first ``limit`` rejected records whose body contains ``text`` (a visitor id or a
    uuid)."""
    cursor = con.execute(
        "SELECT process_timestamp, endpoint, reason, detail, rawlog_position FROM rejects "
        "WHERE contains(decode(body), ?) ORDER BY process_timestamp LIMIT ?",
        [text, limit],
    )
    names = [d[0] for d in cursor.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def timeline(
    con: duckdb.DuckDBPyConnection, visitor_id: str, spec: CountingSpec
) -> list[Disposition]:
    """The visitor's first `MAX_EVENTS` events in ``spec``'s experiment, each with why it
    counted or not (`judged` also says how many there are)."""
    return judged(con, visitor_id, spec)[0]
