"""The lake's tables as DuckDB views: the current Delta snapshot's Parquet files, read in place.

An empty or missing table becomes an empty view with the table's schema, so the same SQL runs
on a brand-new installation.
"""

from __future__ import annotations

import os
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


def table_files(lake_dir: Path, name: str) -> list[str]:
    return _snapshot(lake_dir, name)[1]


def versions(lake_dir: Path) -> Versions:
    """The tables' current versions, read from their logs' file names (cheaper than opening the
    tables, which lists their files): a Delta version exists once its ``<version>.json`` does."""
    out: list[int | None] = []
    for name in SCHEMAS:
        try:
            names = os.listdir(lake_dir / name / "_delta_log")
        except FileNotFoundError:
            out.append(None)
            continue
        commits = [int(n[:-5]) for n in names if n.endswith(".json") and n[:-5].isdigit()]
        out.append(max(commits) if commits else None)
    return tuple(out)


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
