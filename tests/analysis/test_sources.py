"""The lake's table versions, as the kept results counts compare them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from liftlog.analysis.sources import open_lake, table_ids, versions
from liftlog.lake.schema import SCHEMAS


def test_versions_follow_commits_past_checkpoints(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    assert versions(lake) == (None,) * len(SCHEMAS)  # a brand-new installation
    table = lake / "conversions"
    row = pa.table({"a": [1]})
    for _ in range(205):  # delta-rs writes a checkpoint every 100 commits
        write_deltalake(str(table), row, mode="append")
    assert (table / "_delta_log" / "_last_checkpoint").exists()
    expected = tuple(204 if name == "conversions" else None for name in SCHEMAS)
    assert versions(lake) == expected
    assert DeltaTable(str(table)).version() == 204
    write_deltalake(str(table), row, mode="append")
    assert versions(lake)[list(SCHEMAS).index("conversions")] == 205
    # an unreadable checkpoint pointer: counted from the first commit instead
    (table / "_delta_log" / "_last_checkpoint").write_text("{not json")
    assert versions(lake)[list(SCHEMAS).index("conversions")] == 205


def test_a_connection_reports_the_versions_it_reads(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    schema = SCHEMAS["decisions"]
    empty = pa.Table.from_pylist([], schema=schema)
    write_deltalake(str(lake / "decisions"), empty, partition_by=["date"])
    _, seen = open_lake(lake)
    assert seen == versions(lake)
    assert seen[list(SCHEMAS).index("decisions")] == 0


def test_a_table_made_anew_has_a_new_id_where_its_versions_come_out_the_same(
    tmp_path: Path,
) -> None:
    lake = tmp_path / "lake"
    assert table_ids(lake) == [None] * len(SCHEMAS)
    row = pa.table({"a": [1]})
    write_deltalake(str(lake / "conversions"), row, mode="append")
    before, seen = table_ids(lake), versions(lake)
    assert before == table_ids(lake)  # an id stays with its table
    shutil.rmtree(lake)
    write_deltalake(str(lake / "conversions"), row, mode="append")
    assert versions(lake) == seen
    after = table_ids(lake)
    i = list(SCHEMAS).index("conversions")
    assert after[i] is not None and after[i] != before[i]


def test_what_does_not_fit_in_memory_spills_under_the_data_directory(tmp_path: Path) -> None:
    """A counting at 100M events spills past DuckDB's memory limit; the spill directory's parent
    is made if the data directory has none yet."""
    data = tmp_path / "data"
    (data / "lake").mkdir(parents=True)
    con, _ = open_lake(data / "lake", threads=1)
    con.execute("SET memory_limit = '32MB'")
    [(groups,)] = con.execute(
        "SELECT count(*) FROM (SELECT i, count(*) FROM range(4000000) t(i) GROUP BY i)"
    ).fetchall()
    assert groups == 4_000_000
    assert (data / "tmp" / "duckdb").is_dir()
