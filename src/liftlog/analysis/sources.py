"""The lake's tables as DuckDB views: the current Delta snapshot's Parquet files, read in place.

An empty or missing table becomes an empty view with the table's schema, so the same SQL runs
on a brand-new installation.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from liftlog.lake.schema import SCHEMAS


def table_files(lake_dir: Path, name: str) -> list[str]:
    try:
        return list(DeltaTable(str(lake_dir / name)).file_uris())
    except TableNotFoundError:
        return []


def connect(lake_dir: Path, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with views ``decisions``, ``conversions`` and ``rejects``."""
    con = duckdb.connect()
    # No query here depends on the order rows come out in without an ORDER BY; letting DuckDB
    # drop it allows parallel result collection.
    con.execute("SET preserve_insertion_order = false")
    # What DuckDB spills past its memory limit goes under the data directory, not the cwd.
    spill = lake_dir.parent / "tmp" / "duckdb"
    con.execute("SET temp_directory = ?", [str(spill)])
    if threads is not None:
        con.execute(f"SET threads = {int(threads)}")
    for name, schema in SCHEMAS.items():
        files = table_files(lake_dir, name)
        if files:
            con.read_parquet(files, union_by_name=True).create_view(name)
        else:
            empty = pa.Table.from_batches([], schema=schema.remove(schema.get_field_index("date")))
            con.register(f"_{name}_empty", empty)
            con.sql(f"SELECT * FROM _{name}_empty").create_view(name)
    return con
