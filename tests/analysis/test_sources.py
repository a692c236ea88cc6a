"""The lake's table versions, as the kept results counts compare them."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from liftlog.analysis.sources import open_lake, versions
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
