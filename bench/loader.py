"""Loader benchmark: raw-log records → Delta rows, against the cost of its parts in the same run.

1. Fill a raw log with N events in 10-event batches shaped like the official SDK's ``track``
   (one visitor per event, two attributes, revenue, value and tags), written with
   `SegmentWriter` and `encode_frame` as the server would write them.
2. Time ``Loader(settings).drain()`` on it: events/s into Delta (the ``conversions`` table);
   then the same on a copy of the raw log with ``--big-batch``-row batches.
3. Baselines on the same records, in the same process: reading the frames, msgpack, the JSON
   decode with msgspec alone (the collector's Structs, collector on), the loader's normaliser
   alone (`liftlog.lake.normalize.normalise`: decode + columns, in the loader's batches), then
   ``write_deltalake`` of the same rows already in Arrow (read back from the loader's own table):
   in the loader's batch-sized commits to the open table as the loader makes them, and in one
   commit with the default writer and with other compressions.
4. ``cProfile`` of a second drain (on ``--profile-events`` events): the top functions.

Usage::

    .venv/bin/python bench/loader.py [--events N] [--profile-events M]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deltalake import DeltaTable, WriterProperties, write_deltalake

from liftlog.lake.loader import BATCH_ROWS, Loader
from liftlog.lake.normalize import V1Records, normalise
from liftlog.lake.schema import PARTITION_BY, SCHEMAS
from liftlog.rawlog.record import Endpoint, RawRecord, decode_payload, encode_frame
from liftlog.rawlog.segments import Frame, Position, read_frames
from liftlog.rawlog.writer import SegmentWriter
from liftlog.settings import Settings
from liftlog.wire.events import decode_batch
from liftlog.wire.rows import Meta, Rows

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "events" / "sdk_track.json"
EVENTS_PER_BODY = 10
USER_AGENT = "python-requests/2.32.3"


def fill(settings: Settings, events: int, seed: int = 1) -> int:
    """Write ``events`` events, 10 per record, into the raw log of ``settings``; return bytes."""
    rng = random.Random(seed)
    batch = json.loads(FIXTURE.read_text())
    template = json.dumps(batch["visitors"][0])
    base_ms = batch["visitors"][0]["snapshots"][0]["events"][0]["timestamp"]
    writer = SegmentWriter(settings.rawlog_dir / "w0", settings.segment_bytes)
    chunk = bytearray()
    total = 0
    for r in range(events // EVENTS_PER_BODY):
        visitors = []
        for k in range(EVENTS_PER_BODY):
            visitor = json.loads(template)
            visitor["visitor_id"] = f"user-{r * EVENTS_PER_BODY + k}"
            event = visitor["snapshots"][0]["events"][0]
            event["uuid"] = str(uuid.UUID(int=rng.getrandbits(128)))
            event["timestamp"] = base_ms + r
            visitors.append(visitor)
        batch["visitors"] = visitors
        body = json.dumps(batch, separators=(",", ":")).encode()
        chunk += encode_frame(
            RawRecord(
                received_ms=base_ms + r + 50,
                endpoint=Endpoint.V1_EVENTS,
                body=body,
                client_ip="127.0.0.0",
                user_agent=USER_AGENT,
            )
        )
        if len(chunk) >= 1 << 20:  # one group commit per MiB, as a busy server would
            writer.write(chunk)
            total += len(chunk)
            chunk = bytearray()
    if chunk:
        writer.write(chunk)
        total += len(chunk)
    writer.close()
    return total


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def read_all(settings: Settings) -> list[bytes]:
    directory = settings.rawlog_dir / "w0"
    payloads: list[bytes] = []
    pos = Position(0, 0)
    while True:
        items, nxt = read_frames(directory, pos)
        payloads.extend(i.payload for i in items if isinstance(i, Frame))
        if nxt == pos:
            return payloads
        pos = nxt


def stages(settings: Settings, events: int, out_dir: Path) -> dict[str, float]:
    """Parts of the loader's work on the same records, one at a time (seconds).

    The decode stages go a loader batch (``BATCH_ROWS`` rows) at a time and drop what they built,
    as the loader does, so that the garbage collector sees the heap the loader would. The Delta
    baselines write the rows the loader itself wrote (read back from its ``conversions`` table, so
    they are the same rows, already in Arrow) to new tables under ``out_dir``.
    """
    out: dict[str, float] = {}
    payloads, out["read frames"] = timed(lambda: read_all(settings))
    per_batch = BATCH_ROWS // EVENTS_PER_BODY
    msgpack = decode = norm = 0.0
    for start in range(0, len(payloads), per_batch):
        chunk = payloads[start : start + per_batch]
        records, t = timed(lambda c=chunk: [decode_payload(p) for p in c])
        msgpack += t
        _, t = timed(lambda r=records: [decode_batch(x.body) for x in r])
        decode += t
        v1 = V1Records()
        for k, x in enumerate(records):
            meta = Meta(x.received_ms, f"w0:0:{start + k}", x.client_ip, x.user_agent, x.referer)
            v1.add(meta, x.body, (True, True, True))
        _, t = timed(lambda v=v1: normalise(v, Rows()))
        norm += t
    out["msgpack decode (RawRecord)"] = msgpack
    out["JSON decode + validate (msgspec), alone"] = decode
    out["normalise() alone (decode + columns)"] = norm
    del payloads, records, v1

    table = DeltaTable(str(settings.lake_dir / "conversions")).to_pyarrow_table()
    table = table.select(SCHEMAS["conversions"].names).combine_chunks()
    assert table.num_rows == events, table.num_rows
    slices = [table.slice(i, BATCH_ROWS) for i in range(0, table.num_rows, BATCH_ROWS)]
    commit_ms: list[float] = []

    def write_each(path: Path) -> None:
        write_deltalake(str(path), slices[0], partition_by=PARTITION_BY)
        dt = DeltaTable(str(path))  # the loader writes to its open table, as here
        for part in slices[1:]:
            _, t = timed(
                lambda p=part: write_deltalake(dt, p, mode="append", partition_by=PARTITION_BY)
            )
            commit_ms.append(t * 1000)

    k = BATCH_ROWS // 1000
    _, out[f"write_deltalake of Arrow, {k}k-row commits"] = timed(
        lambda: write_each(out_dir / "commits")
    )
    _, out["write_deltalake of Arrow, one commit"] = timed(
        lambda: write_deltalake(str(out_dir / "one"), table, partition_by=PARTITION_BY)
    )
    for codec in ("UNCOMPRESSED", "LZ4_RAW", "ZSTD"):
        props = WriterProperties(compression=codec)  # type: ignore[arg-type]
        _, out[f"  the same, one commit, {codec}"] = timed(
            lambda p=props, c=codec: write_deltalake(
                str(out_dir / c), table, partition_by=PARTITION_BY, writer_properties=p
            )
        )
    if commit_ms:
        first, last = commit_ms[:10], commit_ms[-10:]
        print(
            f"{k}k-row commits: first {len(first)} took {sum(first) / len(first):.0f} ms each, "
            f"last {len(last)} {sum(last) / len(last):.0f} ms each ({len(commit_ms) + 1} commits)"
        )
    return out


def profile(settings: Settings, top: int) -> tuple[float, list[tuple[str, float, float, int]]]:
    loader = Loader(settings)
    prof = cProfile.Profile()
    t = time.perf_counter()
    prof.runcall(loader.drain)
    wall = time.perf_counter() - t
    loader.close()
    stats = pstats.Stats(prof)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = max(ct for _, _, _, ct, _ in raw.values())
    rows = []
    for (file, line, func), (_, calls, tt, ct, _) in raw.items():
        where = file.split("site-packages/")[-1].split("src/")[-1] if file != "~" else ""
        name = f"{where}:{line}({func})" if where else func
        rows.append((name, tt / total, ct / total, calls))
    rows.sort(key=lambda r: r[1], reverse=True)
    return wall, rows[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description="liftlog loader vs its parts")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--profile-events", type=int, default=200_000)
    parser.add_argument("--top", type=int, default=20, help="functions to list from the profile")
    parser.add_argument("--big-batch", type=int, default=100_000, help="rows of the second drain")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="liftlog-bench-loader-"))
    try:
        settings = Settings(data_dir=tmp / "main")
        size = fill(settings, args.events)
        n = args.events // EVENTS_PER_BODY * EVENTS_PER_BODY
        print(f"raw log: {n:,} events in {n // EVENTS_PER_BODY:,} records, {size / 2**20:.0f} MiB")

        big = Settings(data_dir=tmp / "big")
        shutil.copytree(settings.rawlog_dir, big.rawlog_dir)

        loader = Loader(settings)
        records, drain = timed(loader.drain)
        loader.close()
        assert records == n // EVENTS_PER_BODY, records
        loader = Loader(big, batch_rows=args.big_batch)
        records, big_drain = timed(loader.drain)
        loader.close()
        assert records == n // EVENTS_PER_BODY, records
        shutil.rmtree(big.data_dir)
        parts = stages(settings, n, tmp / "baseline")
        print(f"\n| {'what (same events, same run)':<44} | {'seconds':>8} | {'events/s':>10} |"
              f" {'loader/this':>11} |")  # fmt: skip
        print(f"|{'-' * 46}|{'-' * 9}:|{'-' * 11}:|{'-' * 12}:|")
        print(
            f"| {'Loader.drain() (loader, end to end)':<44} | {drain:>8.2f} | {n / drain:>10,.0f} |"
            f" {1:>11.2f} |"
        )
        label = f"  the same, {args.big_batch // 1000}k-row batches"
        print(
            f"| {label:<44} | {big_drain:>8.2f} | {n / big_drain:>10,.0f} |"
            f" {drain / big_drain:>11.2f} |"
        )
        for label, seconds in parts.items():
            print(
                f"| {label:<44} | {seconds:>8.2f} | {n / seconds:>10,.0f} |"
                f" {drain / seconds:>11.2f} |"
            )
        print("target: 500,000 events/s into Delta")

        prof_settings = Settings(data_dir=tmp / "profile")
        fill(prof_settings, args.profile_events)
        wall, top = profile(prof_settings, args.top)
        m = args.profile_events
        print(f"\ncProfile of Loader.drain() on {m:,} events: {wall:.2f} s under the profiler")
        print(f"| {'function':<70} | {'own %':>6} | {'incl. %':>7} | {'calls':>10} |")
        print(f"|{'-' * 72}|{'-' * 7}:|{'-' * 8}:|{'-' * 11}:|")
        for name, own, incl, calls in top:
            print(f"| {name[:70]:<70} | {own * 100:>6.1f} | {incl * 100:>7.1f} | {calls:>10,} |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
