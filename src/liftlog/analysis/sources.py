"""The lake's tables as DuckDB views: the current Delta snapshot's Parquet files, read in place.

An empty or missing table becomes an empty view with the table's schema, so the same SQL runs
on a brand-new installation.
"""

from __future__ import annotations

import json
from contextlib import suppress
from pathlib import Path

import duckdb
import pyarrow as pa
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from liftlog.lake.schema import SCHEMAS

#: The Delta version of each lake table a connection reads (None: no such table yet), in
#: `SCHEMAS` order: counts from equal versions are equal.
Versions = tuple[int | None, ...]


def _snapshot(lake_dir: Path, name: str) -> tuple[int | None, list[str]]:
    try:
        table = DeltaTable(str(lake_dir / name))
    except TableNotFoundError:
        return None, []
    return table.version(), list(table.file_uris())


def versions(lake_dir: Path) -> Versions:
    """The tables' current versions, found without opening the tables (which reads their logs
    and lists their files): a Delta version exists once its ``<version>.json`` does, and they
    are numbered one after the other, so the newest is the last that exists counting up from
    the last checkpoint (written every 100 commits). A few dozen ``stat`` calls, however long
    the log, where listing it would grow with every commit kept (30 days of them)."""
    return tuple(_version(lake_dir / name / "_delta_log") for name in SCHEMAS)


def table_ids(lake_dir: Path) -> list[str | None]:
    """Each table's Delta id (None: no such table yet), in `SCHEMAS` order. A table made anew
    (a lake deleted and loaded again from the raw log) has a new id, where its versions may
    come out as before."""
    ids: list[str | None] = []
    for name in SCHEMAS:
        try:
            ids.append(str(DeltaTable(str(lake_dir / name)).metadata().id))
        except TableNotFoundError:
            ids.append(None)
    return ids


def _version(log: Path) -> int | None:
    try:
        version = int(json.loads((log / "_last_checkpoint").read_bytes())["version"])
    except FileNotFoundError:
        version = -1  # no checkpoint yet: count from the first commit
    except (ValueError, KeyError, TypeError):  # unreadable: count from the first commit
        version = -1
    while (log / f"{version + 1:020d}.json").exists():
        version += 1
    return None if version < 0 else version


def connect(lake_dir: Path, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with views ``decisions``, ``conversions`` and ``rejects``."""
    return open_lake(lake_dir, threads)[0]


def open_lake(
    lake_dir: Path, threads: int | None = None
) -> tuple[duckdb.DuckDBPyConnection, Versions]:
    """`connect`, and the versions of the snapshot its views read."""
    con = duckdb.connect()
    # No query here depends on the order rows come out in without an ORDER BY; letting DuckDB
    # drop it allows parallel result collection.
    con.execute("SET preserve_insertion_order = false")
    # What DuckDB spills past its memory limit goes under the data directory, not the cwd.
    spill = lake_dir.parent / "tmp" / "duckdb"
    with suppress(OSError):  # DuckDB makes the last directory when it spills, not its parents
        spill.parent.mkdir(parents=True, exist_ok=True)
    con.execute("SET temp_directory = ?", [str(spill)])
    if threads is not None:
        con.execute(f"SET threads = {int(threads)}")
    seen: list[int | None] = []
    for name, schema in SCHEMAS.items():
        version, files = _snapshot(lake_dir, name)
        seen.append(version)
        if files:
            con.read_parquet(files, union_by_name=True).create_view(name)
        else:
            empty = pa.Table.from_batches([], schema=schema.remove(schema.get_field_index("date")))
            con.register(f"_{name}_empty", empty)
            con.sql(f"SELECT * FROM _{name}_empty").create_view(name)
    return con, tuple(seen)
