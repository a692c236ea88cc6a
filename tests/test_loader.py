"""The loader on real files and real Delta tables: batches, rejects, and exactly-once replays."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from liftlog.lake.loader import Loader, app_id, read_checkpoint, write_checkpoint
from liftlog.lake.schema import PARTITION_BY, SCHEMAS
from liftlog.lake.status import lake_status
from liftlog.rawlog.record import Endpoint, RawRecord, encode_frame
from liftlog.rawlog.segments import Position
from liftlog.rawlog.writer import SegmentWriter, open_writer
from liftlog.settings import Settings
from tests.lake import rows


def batch(i: int, events: int = 3) -> bytes:
    snapshot_events = [
        {"entity_id": "7", "key": "buy", "timestamp": 1_700_000_000_000 + k, "uuid": f"{i}-{k}"}
        for k in range(events)
    ]
    body = {
        "account_id": "1",
        "visitors": [{"visitor_id": f"v{i}", "snapshots": [{"events": snapshot_events}]}],
    }
    return json.dumps(body).encode()


def append(writer: SegmentWriter, body: bytes, endpoint: int = Endpoint.V1_EVENTS) -> None:
    record = RawRecord(received_ms=1_700_000_000_000, endpoint=endpoint, body=body)
    writer.write(encode_frame(record))


def test_loader_moves_everything_once_and_status_counts_it(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    writer = open_writer(settings.rawlog_dir)
    for i in range(20):
        append(writer, batch(i))
    append(writer, b"a=5&n=signup&u=v1&x11=12", Endpoint.LEGACY_GET)
    loader = Loader(settings, batch_rows=25)
    assert loader.drain() == 21
    assert loader.drain() == 0
    loader.close()
    writer.close()
    uuids = [r["uuid"] for r in rows(tmp_path, "conversions")]
    assert len(uuids) == 61 == len(set(uuids))
    info = lake_status(settings)
    assert info["tables"]["conversions"]["rows"] == 61
    assert info["rawlog"]["pending_bytes"] == 0


def test_loader_replay_after_a_lost_checkpoint_duplicates_nothing(tmp_path: Path) -> None:
    """A crash after the Delta commits but before the checkpoint: the replay adds no row."""
    settings = Settings(data_dir=tmp_path)
    writer = open_writer(settings.rawlog_dir)
    for i in range(10):
        append(writer, batch(i))
    loader = Loader(settings)
    loader.drain()
    loader.close()
    directory = settings.rawlog_dir / "w0"
    write_checkpoint(directory, Position(0, 0))  # as if the checkpoint never moved

    for i in range(10, 15):
        append(writer, batch(i))
    writer.close()
    loader = Loader(settings)
    assert loader.drain() == 15  # all records are read again...
    loader.close()
    uuids = [r["uuid"] for r in rows(tmp_path, "conversions")]
    assert len(uuids) == 45 == len(set(uuids))  # ...but each row is written once
    table = DeltaTable(str(tmp_path / "lake" / "conversions"))
    assert table.transaction_version(app_id("w0")) == read_checkpoint(directory).version


def test_loader_replay_after_a_crash_between_two_tables(tmp_path: Path) -> None:
    """Decisions committed, conversions not: the replay fills in only the conversions."""
    settings = Settings(data_dir=tmp_path)
    writer = open_writer(settings.rawlog_dir)
    mixed = {
        "account_id": "1",
        "visitors": [{"visitor_id": "v", "snapshots": [
            {"decisions": [{"campaign_id": "1", "experiment_id": "2", "variation_id": "3"}],
             "events": [{"entity_id": "1", "key": "campaign_activated",
                         "timestamp": 1_700_000_000_000, "uuid": "d"}]},
            {"events": [{"entity_id": "7", "key": "buy", "timestamp": 1_700_000_000_001,
                         "uuid": "c"}]},
        ]}],
    }  # fmt: skip
    append(writer, json.dumps(mixed).encode())
    writer.close()
    loader = Loader(settings)
    loader.drain()
    loader.close()
    # Undo the conversions commit and the checkpoint, keeping the decisions commit.
    conversions = tmp_path / "lake" / "conversions"
    for p in sorted(conversions.rglob("*")):
        if p.is_file():
            p.unlink()
    write_checkpoint(settings.rawlog_dir / "w0", Position(0, 0))

    loader = Loader(settings)
    loader.drain()
    loader.close()
    assert [r["uuid"] for r in rows(tmp_path, "decisions")] == ["d"]
    assert [r["uuid"] for r in rows(tmp_path, "conversions")] == ["c"]


def test_loader_after_a_failed_commit_a_new_loader_loads_everything_once(tmp_path: Path) -> None:
    """Batches are committed in the background; one that fails stops the loader, loses nothing."""
    settings = Settings(data_dir=tmp_path)
    writer = open_writer(settings.rawlog_dir)
    for i in range(10):
        append(writer, batch(i))
    loader = Loader(settings, batch_rows=6)
    loader.drain()
    for i in range(10, 20):
        append(writer, batch(i))
    writer.close()
    log = tmp_path / "lake" / "conversions" / "_delta_log"
    log.rename(log.with_name("kept"))
    log.write_text("not a directory: no commit can be written")
    with pytest.raises(Exception):  # noqa: B017 - whatever the Delta writer raises
        loader.drain()
    with pytest.raises(RuntimeError, match="a commit of this loader failed"):
        loader.step()
    loader.close()
    log.unlink()
    log.with_name("kept").rename(log)

    loader = Loader(settings)
    loader.drain()
    loader.close()
    uuids = [r["uuid"] for r in rows(tmp_path, "conversions")]
    assert len(uuids) == 60 == len(set(uuids))


def test_loader_sends_what_it_cannot_read_to_rejects(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    writer = open_writer(settings.rawlog_dir)
    append(writer, b'{"account_id": 5}')  # what an older, laxer collector might have let in
    append(writer, b"n=only-a-name", Endpoint.LEGACY_GET)
    deep = b'{"account_id": "1", "visitors": [{"visitor_id": "v", "snapshots": [{"events": [{'
    deep += b'"uuid": "u", "timestamp": 1700000000000, "tags": {"a": '
    append(writer, deep + b"[" * 20_000 + b"]" * 20_000 + b"}}]}]}]}")  # past the parser's limit
    append(writer, batch(1))
    writer.close()
    loader = Loader(settings)
    assert loader.drain() == 4
    loader.close()
    rejects = rows(tmp_path, "rejects")
    assert [(r["endpoint"], r["reason"]) for r in rejects] == [
        ("v1", "invalid_body"),
        ("legacy", "invalid_body"),
        ("v1", "invalid_body"),
    ]
    assert rejects[2]["detail"] == "$: nests too deeply"
    assert "$.account_id: expected a string, got number" in rejects[0]["detail"]
    assert rejects[0]["body"] == b'{"account_id": 5}'
    assert len(rows(tmp_path, "conversions")) == 3


def test_loader_survives_legacy_numbers_the_lake_cannot_hold(tmp_path: Path) -> None:
    """Revenue past 64 bits is flagged, a time past 64-bit milliseconds is rejected, and the
    events after them still load (an overflow once stopped the loader process for good)."""
    settings = Settings(data_dir=tmp_path)
    writer = open_writer(settings.rawlog_dir)
    append(writer, b"a=1&n=buy&u=v1&v=" + b"9" * 40, Endpoint.LEGACY_GET)
    append(writer, b"a=1&n=buy&u=v2&v=+12", Endpoint.LEGACY_GET)
    append(writer, b"a=1&n=buy&u=v3&time=" + b"9" * 30, Endpoint.LEGACY_GET)
    append(writer, b"a=1&n=buy&u=v4&v=-250&time=1700000000", Endpoint.LEGACY_GET)
    append(writer, batch(1))
    writer.close()
    loader = Loader(settings)
    assert loader.drain() == 5
    loader.close()
    legacy = {r["visitor_id"]: r for r in rows(tmp_path, "conversions") if r["source"] == "legacy"}
    assert legacy["v1"]["revenue"] is None and legacy["v1"]["problems"] == ["revenue_not_integer"]
    assert legacy["v2"]["revenue"] is None and legacy["v2"]["problems"] == ["revenue_not_integer"]
    assert legacy["v4"]["revenue"] == -250 and legacy["v4"]["timestamp_raw"] == 1_700_000_000_000
    [reject] = rows(tmp_path, "rejects")
    assert reject["reason"] == "invalid_body" and "query.time" in reject["detail"]
    assert len(rows(tmp_path, "conversions")) == 3 + 3  # batch(1) has three


def test_loader_compaction_keeps_every_row(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    writer = open_writer(settings.rawlog_dir)
    loader = Loader(settings, batch_rows=1)
    for i in range(6):
        append(writer, batch(i))
        loader.drain()
    writer.close()
    before = lake_status(settings)["tables"]["conversions"]
    loader.compact()
    loader.close()
    after = lake_status(settings)["tables"]["conversions"]
    assert before["files"] == 6 and after["files"] == 1
    assert before["rows"] == after["rows"] == 18
    assert len(rows(tmp_path, "conversions")) == 18


def test_tables_keep_an_hour_of_delta_log(tmp_path: Path) -> None:
    """Delta's default 30 days of commit files make every table open slower as they pile up;
    the loader's tables keep an hour, those it makes and those made before."""
    settings = Settings(data_dir=tmp_path)
    older = settings.lake_dir / "decisions"  # as an earlier liftlog made it: default retention
    write_deltalake(str(older), pa.Table.from_pylist([], schema=SCHEMAS["decisions"]),
                    partition_by=PARTITION_BY)  # fmt: skip
    writer = open_writer(settings.rawlog_dir)
    append(writer, batch(1))
    writer.close()
    loader = Loader(settings)
    loader.drain()
    loader.close()
    for name in ("decisions", "conversions"):
        configuration = DeltaTable(str(settings.lake_dir / name)).metadata().configuration
        assert configuration["delta.logRetentionDuration"] == "interval 1 hour", name


def test_drain_reports_its_progress_after_each_batch(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    writer = open_writer(settings.rawlog_dir)
    for i in range(400):
        append(writer, batch(i, events=300))  # about 11 MB: more than one read of the raw log
    writer.close()
    seen: list[int] = []
    loader = Loader(settings)
    assert loader.drain(seen.append) == 400
    loader.close()
    assert len(seen) >= 2 and seen == sorted(seen) and seen[0] < 400 and seen[-1] == 400


def test_long_loads_print_their_progress_every_few_seconds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from liftlog.cli.server import Progress

    settings = Settings(data_dir=tmp_path)
    writer = open_writer(settings.rawlog_dir)
    append(writer, batch(0))
    writer.close()
    now = [100.0]
    progress = Progress(settings, every=5.0, clock=lambda: now[0])
    for t, records in ((101.0, 10), (104.9, 20), (105.0, 30), (107.0, 40), (111.0, 50)):
        now[0] = t
        progress(records)
    lines = capsys.readouterr().err.splitlines()
    size = (tmp_path / "rawlog" / "w0" / "00000000000000000001.seg").stat().st_size
    assert lines == [
        f"  30 records loaded in 5 s, {size:,} raw-log bytes still to load",
        f"  50 records loaded in 11 s, {size:,} raw-log bytes still to load",
    ]
