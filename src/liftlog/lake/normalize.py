"""Event API v1 bodies → Arrow tables of ``decisions`` and ``conversions``, a batch at a time.

The rules are those of `liftlog.wire.rows` (columns, problem codes), written as DuckDB SQL in
``normalize.sql`` so that no Python runs per event: a batch of raw bodies is one Arrow table, one
``json_transform`` and a few ``unnest`` s. Measured on a loaded 2-core machine, SDK-shaped bodies:
about 23 µs an event (transform 6, events table 8, checks 3.5, conversions 5.5), plus about
0.15 s a batch to bind the SQL.

Every row comes out as `liftlog.wire.rows` made it, with one simplification: a U+E000-typed
string stored as text (an attribute or tag value) is the text after the prefix
(``"\\ue0001.50"`` → ``"1.50"``; the Python path gave ``repr(1.5)``).

Validation, all-or-nothing per record: the SQL flags every record whose body `decode_batch`
could reject (not JSON, a missing required field, a value of the wrong JSON kind, an empty uuid,
a non-finite number) and makes no row of it. Only those records go through `decode_batch`:

* rejected → a ``rejects`` row, ``invalid_body``, naming every problem by its JSON path;
* accepted (a flag the typed decoder disagrees with, e.g. a tag object with a duplicate key) →
  re-encoded canonically by msgspec and normalised again; a record still flagged then holds a
  value the lake cannot store (a timestamp beyond 64 bits) and is rejected as ``invalid_body``.

Known gaps (bodies the collector never stores, since it validates with `decode_batch`): DuckDB's
JSON reader accepts trailing commas, and NaN/Infinity literals nested in an object or array; it
reads a non-array ``attributes`` or ``decisions`` as absent and a non-object element of them as an
empty object; of duplicate keys it keeps the first. Such a body is loaded rather than rejected.
Unicode digits in a typed number (``"\ue000٣"``, 3 for Python's ``int``) are not read as digits.
Objects and arrays stored as text (attribute and tag values) are DuckDB's compact JSON, which
differs from msgspec's in the case of ``\\u`` escapes and in the digits of some floats.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources

import duckdb
import msgspec
import pyarrow as pa

from liftlog.errors import InvalidInput
from liftlog.lake.schema import SCHEMAS
from liftlog.wire.events import decode_batch
from liftlog.wire.rows import Meta, Rows

INPUT_SCHEMA = pa.schema(
    [
        ("idx", pa.int64()),
        ("received_ms", pa.int64()),
        ("client_ip", pa.string()),
        ("user_agent", pa.string()),
        ("referer", pa.string()),
        ("position", pa.string()),
        ("need_decisions", pa.bool_()),
        ("need_conversions", pa.bool_()),
        ("validated", pa.bool_()),
        ("body", pa.string()),
    ]
)
#: A body that is certainly flagged: it gives a record that must not parse as a batch no row.
_PLACEHOLDER = "null"
_UNSTORABLE = "$: holds a value the lake can't store (such as a timestamp beyond 64 bits)"


def _statements() -> dict[str, str]:
    text = resources.files("liftlog.lake").joinpath("normalize.sql").read_text("utf-8")
    parts = re.split(r"^-- name: (\w+)\n", text, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


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

    def table(self, bodies: list[str], validated: bool = False) -> pa.Table:
        """The input of the SQL; ``validated``: the bodies passed `decode_batch` already."""
        return pa.Table.from_arrays(
            [
                pa.array(range(len(bodies)), pa.int64()),
                pa.array(self.received_ms, pa.int64()),
                pa.array(self.client_ip, pa.string()),
                pa.array(self.user_agent, pa.string()),
                pa.array(self.referer, pa.string()),
                pa.array(self.position, pa.string()),
                pa.array(self.need_decisions, pa.bool_()),
                pa.array(self.need_conversions, pa.bool_()),
                pa.array([validated] * len(bodies), pa.bool_()),
                pa.array(bodies, pa.string()),
            ],
            schema=INPUT_SCHEMA,
        )


@dataclass(frozen=True)
class Normalized:
    decisions: pa.Table
    conversions: pa.Table


class Normalizer:
    """One DuckDB connection with the normalisation's macros; not for concurrent use."""

    def __init__(self, threads: int | None = None) -> None:
        self._sql = _statements()
        self._con = duckdb.connect(config={} if threads is None else {"threads": threads})
        self._con.execute(self._sql["macros"])

    def close(self) -> None:
        self._con.close()

    def normalise(self, records: V1Records, rejects: Rows) -> Normalized:
        """Rows of every record of ``records``; the records that can't be read go to ``rejects``.

        Each record gives all its rows or none (then one ``rejects`` row, if it needs one).
        """
        bodies = _texts(records.body)
        out = self._run(records.table(bodies))
        if not out.suspects:
            return Normalized(out.decisions, out.conversions)
        again = V1Records()
        for i in out.suspects:
            try:
                batch = decode_batch(records.body[i])
            except InvalidInput as exc:
                detail = "; ".join(f"{d.path}: {d.problem}" for d in exc.details) or exc.message
                _reject(rejects, records, i, detail)
                continue
            except ValueError as exc:  # msgspec lets a UnicodeDecodeError through
                _reject(rejects, records, i, f"$: not valid JSON: {exc}")
                continue
            need = (records.need_decisions[i], records.need_conversions[i], True)
            again.add(records.meta(i), msgspec.json.encode(batch), need)
            again.need_rejects[-1] = records.need_rejects[i]
            again.body[-1] = records.body[i]  # a reject keeps the body as it was sent
        if not again:
            return Normalized(out.decisions, out.conversions)
        canonical = [msgspec.json.encode(decode_batch(b)).decode() for b in again.body]
        second = self._run(again.table(canonical, validated=True))
        for i in second.suspects:
            _reject(rejects, again, i, _UNSTORABLE)
        return Normalized(
            pa.concat_tables([out.decisions, second.decisions]),
            pa.concat_tables([out.conversions, second.conversions]),
        )

    def _run(self, table: pa.Table) -> _Pass:
        """One pass of the SQL: the rows of unflagged records, the indices of flagged ones."""
        con = self._con
        invalid: set[int] = set()
        con.register("bodies", table)
        try:
            try:
                con.execute(self._sql["records"])
            except duckdb.InvalidInputException:  # a body that is not JSON fails the whole query
                rows = con.execute("SELECT idx FROM bodies WHERE NOT json_valid(body)").fetchall()
                invalid = {i for (i,) in rows}
                con.register("bodies", _without_bodies(table, invalid))
                con.execute(self._sql["records"])
            con.execute(self._sql["events"])
            con.execute(self._sql["suspects"])
            bad = {i for (i,) in con.execute("SELECT idx FROM bad").fetchall()}
            decisions = con.sql(self._sql["decisions"]).to_arrow_table()
            conversions = con.sql(self._sql["conversions"]).to_arrow_table()
        finally:
            con.execute("DROP TABLE IF EXISTS r; DROP TABLE IF EXISTS ev; DROP TABLE IF EXISTS bad")
            con.unregister("bodies")
        return _Pass(
            _conform(decisions, "decisions"),
            _conform(conversions, "conversions"),
            sorted(bad | invalid),
        )


def _without_bodies(table: pa.Table, indices: set[int]) -> pa.Table:
    """``table`` with the bodies at ``indices`` replaced by a placeholder that the SQL flags."""
    bodies = table.column("body").to_pylist()
    for i in indices:
        bodies[i] = _PLACEHOLDER
    column = table.schema.get_field_index("body")
    return table.set_column(column, "body", pa.array(bodies, pa.string()))


@dataclass(frozen=True)
class _Pass:
    decisions: pa.Table
    conversions: pa.Table
    suspects: list[int]


def _texts(bodies: list[bytes]) -> list[str]:
    """Bodies as text; one that is not UTF-8 becomes a placeholder that the SQL flags."""
    out = []
    for body in bodies:
        try:
            out.append(body.decode())
        except UnicodeDecodeError:
            out.append(_PLACEHOLDER)
    return out


def _reject(rejects: Rows, records: V1Records, i: int, detail: str) -> None:
    if records.need_rejects[i]:
        rejects.reject(records.meta(i), "v1", "invalid_body", detail, records.body[i])


def _conform(table: pa.Table, name: str) -> pa.Table:
    """DuckDB's Arrow output in the lake's schema (milliseconds as UTC timestamps, names)."""
    schema = SCHEMAS[name]
    columns = []
    for f in schema:
        column = table.column(f.name)
        if pa.types.is_timestamp(f.type):
            column = column.cast(pa.int64()).cast(f.type)
        columns.append(column.cast(f.type))
    return pa.Table.from_arrays(columns, schema=schema)
