"""Loader benchmark: raw-log records → Delta rows, against the cost of its parts in the same run.

1. Fill a raw log with N events in 10-event batches shaped like the official SDK's ``track``
   (one visitor per event, two attributes, revenue, value and tags), written with
   `SegmentWriter` and `encode_frame` as the server would write them.
2. Time ``Loader(settings).drain()`` on it: events/s into Delta (the ``conversions`` table).
3. Baselines on the same records, in the same process: the loader's stages done one at a time
   with the same public functions (read frames, msgpack, JSON decode with msgspec, normalise to
   Python column lists, ``pa.Table.from_pydict``), then ``write_deltalake`` of the already-built
   Arrow tables, in 10k-row commits as the loader makes them and in a single commit.
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

import pyarrow as pa
from deltalake import write_deltalake

from liftlog.lake.loader import Loader
from liftlog.lake.schema import PARTITION_BY, SCHEMAS
from liftlog.rawlog.record import Endpoint, RawRecord, decode_payload, encode_frame
from liftlog.rawlog.segments import Frame, Position, read_frames
from liftlog.rawlog.writer import SegmentWriter
from liftlog.settings import Settings
from liftlog.wire.events import decode_batch
from liftlog.wire.rows import Meta, Rows, add_v1

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "events" / "sdk_track.json"
EVENTS_PER_BODY = 10
BATCH_ROWS = 10_000  # the loader's default batch
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
    """The loader's work, one stage at a time, with the same functions it calls (seconds).

    Reads the raw log of ``settings``; the Delta baselines are written under ``out_dir``.
    """
    out: dict[str, float] = {}
    payloads, out["read frames"] = timed(lambda: read_all(settings))
    records, out["msgpack decode (RawRecord)"] = timed(
        lambda: [decode_payload(p) for p in payloads]
    )
    batches, out["JSON decode + validate (msgspec)"] = timed(
        lambda: [decode_batch(r.body) for r in records]
    )
    per_table = BATCH_ROWS // EVENTS_PER_BODY
    normalise = arrow = 0.0
    tables: list[pa.Table] = []
    for start in range(0, len(records), per_table):
        rows = Rows()
        t = time.perf_counter()
        for i in range(start, min(start + per_table, len(records))):
            r = records[i]
            meta = Meta(r.received_ms, f"w0:{i}", r.client_ip, r.user_agent, r.referer)
            add_v1(rows, batches[i], meta)
        t2 = time.perf_counter()
        tables.append(
            pa.Table.from_pydict(rows.conversions.as_dict(), schema=SCHEMAS["conversions"])
        )
        arrow += time.perf_counter() - t2
        normalise += t2 - t
    out["normalise to column lists (add_v1)"] = normalise
    out["Python lists → Arrow (from_pydict)"] = arrow
    assert sum(t.num_rows for t in tables) == events

    def write_each(path: Path) -> None:
        for table in tables:
            write_deltalake(str(path), table, mode="append", partition_by=PARTITION_BY)

    _, out["write_deltalake, 10k-row commits"] = timed(lambda: write_each(out_dir / "commits"))
    whole = pa.concat_tables(tables)
    _, out["write_deltalake, one commit"] = timed(
        lambda: write_deltalake(str(out_dir / "one"), whole, partition_by=PARTITION_BY)
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
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="liftlog-bench-loader-"))
    try:
        settings = Settings(data_dir=tmp / "main")
        size = fill(settings, args.events)
        n = args.events // EVENTS_PER_BODY * EVENTS_PER_BODY
        print(f"raw log: {n:,} events in {n // EVENTS_PER_BODY:,} records, {size / 2**20:.0f} MiB")

        loader = Loader(settings)
        records, drain = timed(loader.drain)
        loader.close()
        assert records == n // EVENTS_PER_BODY, records
        parts = stages(settings, n, tmp / "baseline")
        print(f"\n| {'what (same events, same run)':<40} | {'seconds':>8} | {'events/s':>10} |"
              f" {'loader/this':>11} |")  # fmt: skip
        print(f"|{'-' * 42}|{'-' * 9}:|{'-' * 11}:|{'-' * 12}:|")
        print(
            f"| {'Loader.drain() (loader, end to end)':<40} | {drain:>8.2f} | {n / drain:>10,.0f} |"
            f" {1:>11.2f} |"
        )
        for label, seconds in parts.items():
            print(
                f"| {label:<40} | {seconds:>8.2f} | {n / seconds:>10,.0f} |"
                f" {drain / seconds:>11.2f} |"
            )
        staged = sum(v for k, v in parts.items() if k != "write_deltalake, one commit")
        print(f"\nsum of stages with 10k-row commits: {staged:.2f} s ({n / staged:,.0f} events/s)")
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
