"""The raw log on real files: framing, group commit, failures, torn tails and damage."""

from __future__ import annotations

import asyncio
import errno
from pathlib import Path

import pytest

from liftlog.errors import Unavailable
from liftlog.rawlog.record import RawRecord, anonymize_ip, decode_payload, encode_frame
from liftlog.rawlog.segments import Damage, Frame, Position, iter_all, list_segments, segment_path
from liftlog.rawlog.writer import RawLog, SegmentWriter, open_writer


def record(i: int, size: int = 10) -> RawRecord:
    return RawRecord(
        received_ms=1_700_000_000_000 + i, endpoint=1, body=b"x" * size + str(i).encode()
    )


def bodies(directory: Path) -> list[bytes]:
    return [decode_payload(f.payload).body for f in iter_all(directory) if isinstance(f, Frame)]


def test_rawlog_group_commit_makes_every_append_durable_with_fewer_syncs(tmp_path: Path) -> None:
    syncs = []

    def counting_sync(fd: int) -> None:
        syncs.append(fd)
        __import__("os").fdatasync(fd)

    async def main() -> RawLog:
        log = RawLog(SegmentWriter(tmp_path, sync=counting_sync))
        await asyncio.gather(*(log.append(record(i)) for i in range(500)))
        await log.close()
        return log

    log = asyncio.run(main())
    assert log.records == 500
    assert len(syncs) == log.groups < 500
    assert bodies(tmp_path) == [record(i).body for i in range(500)]


def test_rawlog_failed_sync_answers_unavailable_and_leaves_no_bytes(tmp_path: Path) -> None:
    fail = {"on": False}

    def flaky_sync(fd: int) -> None:
        if fail["on"]:
            raise OSError(errno.ENOSPC, "No space left on device")
        __import__("os").fdatasync(fd)

    async def main() -> None:
        log = RawLog(SegmentWriter(tmp_path, sync=flaky_sync))
        await log.append(record(1))
        fail["on"] = True
        with pytest.raises(Unavailable) as caught:
            await log.append(record(2))
        assert caught.value.status == 503 and caught.value.retry_after > 0
        fail["on"] = False
        await log.append(record(3))
        await log.close()

    asyncio.run(main())
    assert bodies(tmp_path) == [record(1).body, record(3).body]
    assert len(list_segments(tmp_path)) == 2  # the failure closed the segment; a new one took over


def test_rawlog_bounded_queue_refuses_instead_of_growing(tmp_path: Path) -> None:
    async def main() -> list[BaseException | None]:
        log = RawLog(SegmentWriter(tmp_path), max_pending_bytes=10_000)
        results = await asyncio.gather(
            *(log.append(record(i, size=1_000)) for i in range(50)), return_exceptions=True
        )
        await log.close()
        return results

    results = asyncio.run(main())
    refused = [r for r in results if isinstance(r, Unavailable)]
    stored = [r for r in results if r is None]
    assert refused and stored
    assert len(bodies(tmp_path)) == len(stored)


def test_rawlog_segments_rotate_and_read_back_in_order(tmp_path: Path) -> None:
    writer = SegmentWriter(tmp_path, segment_bytes=1_000)
    for i in range(100):
        writer.write(encode_frame(record(i)))
    writer.close()
    assert len(list_segments(tmp_path)) >= 3
    assert bodies(tmp_path) == [record(i).body for i in range(100)]


def test_rawlog_recovery_cuts_only_a_torn_tail(tmp_path: Path) -> None:
    writer = SegmentWriter(tmp_path)
    for i in range(10):
        writer.write(encode_frame(record(i)))
    writer.close()
    path = segment_path(tmp_path, list_segments(tmp_path)[-1])
    whole = path.stat().st_size
    torn = encode_frame(record(10))
    with open(path, "ab") as f:
        f.write(torn[: len(torn) // 2])  # a crash in the middle of a write

    writer = SegmentWriter(tmp_path)
    assert writer.recovered_bytes == len(torn) // 2
    assert path.stat().st_size == whole
    writer.write(encode_frame(record(11)))
    writer.close()
    assert bodies(tmp_path) == [record(i).body for i in [*range(10), 11]]


def test_rawlog_damage_in_the_middle_is_reported_and_later_frames_kept(tmp_path: Path) -> None:
    writer = SegmentWriter(tmp_path)
    for i in range(5):
        writer.write(encode_frame(record(i)))
    writer.close()
    path = segment_path(tmp_path, list_segments(tmp_path)[-1])
    data = bytearray(path.read_bytes())
    frame_len = len(encode_frame(record(0)))
    data[frame_len * 2 + 14] ^= 0xFF  # flip a byte in the payload of the third frame
    path.write_bytes(bytes(data))

    writer = SegmentWriter(tmp_path)  # recovery must not cut valid frames after the damage
    assert writer.recovered_bytes == 0
    writer.close()
    items = list(iter_all(tmp_path))
    assert [type(i) for i in items] == [Frame, Frame, Damage, Frame, Frame]
    damage = items[2]
    assert isinstance(damage, Damage) and len(damage.data) == frame_len


def test_rawlog_each_process_gets_its_own_writer_directory(tmp_path: Path) -> None:
    first = open_writer(tmp_path)
    second = open_writer(tmp_path)
    assert (first.directory.name, second.directory.name) == ("w0", "w1")
    first.close()
    third = open_writer(tmp_path)
    assert third.directory.name == "w0"
    second.close()
    third.close()


def test_rawlog_position_version_orders_like_positions() -> None:
    positions = [Position(1, 0), Position(1, 5), Position(2, 0), Position(2, 2**31)]
    versions = [p.version for p in positions]
    assert versions == sorted(versions)
    assert [Position.from_version(v) for v in versions] == positions


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("203.0.113.77", "203.0.113.0"),
        ("2001:db8:85a3:8d3:1319:8a2e:370:7348", "2001:db8:85a3::"),
        (None, None),
    ],
)
def test_rawlog_anonymize_ip(ip: str | None, expected: str | None) -> None:
    assert anonymize_ip(ip) == expected
