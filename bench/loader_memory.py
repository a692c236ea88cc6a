"""The loader's memory: peak RSS of draining a raw log into Delta and compacting it.

    .venv/bin/python bench/loader_memory.py [--events N] [--repeat R]

Fills one raw log as `bench/loader.py` does (SDK-shaped 10-event bodies), then, R times each and
alternating, runs ``Loader.drain()`` followed by ``Loader.compact()`` on a copy of it in a fresh
interpreter:

* with the allocators' defaults (none of `liftlog.cli.server.LOADER_ALLOCATOR` set);
* with `LOADER_ALLOCATOR`, as the loader process of ``liftlog serve`` and ``liftlog load`` runs.

Each child samples its own RSS every 20 ms and reports the peak while draining, the peak over
drain and compaction, the RSS at the end, and the drain's seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from ingest import rss_kib  # bench/ingest.py (this script's folder is on sys.path)
from liftlog.cli.server import LOADER_ALLOCATOR
from liftlog.settings import Settings
from loader import fill  # bench/loader.py


def _rss_mib() -> float:
    return rss_kib(os.getpid()) / 1024


def child(data_dir: Path) -> None:
    """Drain and compact ``data_dir``; print the figures as JSON."""
    from liftlog.lake.loader import Loader

    peak = [0.0]

    def sample() -> None:
        while True:
            peak[0] = max(peak[0], _rss_mib())
            time.sleep(0.02)

    threading.Thread(target=sample, daemon=True).start()
    loader = Loader(Settings(data_dir=data_dir), compact_every=10**9)
    start = time.perf_counter()
    loader.drain()
    drain = time.perf_counter() - start
    time.sleep(0.05)
    drain_peak = peak[0]
    loader.compact()
    loader.close()
    time.sleep(0.05)
    print(json.dumps({"drain_s": drain, "drain_peak": drain_peak, "peak": peak[0],
                      "end": _rss_mib()}))  # fmt: skip


def run(raw: Path, work: Path, settings_on: bool) -> dict[str, float]:
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(raw, work / "rawlog")
    env = {k: v for k, v in os.environ.items() if k not in LOADER_ALLOCATOR}
    if settings_on:
        env.update(LOADER_ALLOCATOR)
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(work)],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=700_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child)
        return
    tmp = Path(tempfile.mkdtemp(prefix="liftlog-bench-loader-memory-"))
    try:
        source = Settings(data_dir=tmp / "source")
        size = fill(source, args.events)
        print(f"raw log: {args.events:,} events, {size / 2**20:.0f} MiB; "
              f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")  # fmt: skip
        rows = []
        for _ in range(args.repeat):
            for on in (False, True):
                rows.append((on, run(source.rawlog_dir, tmp / "work", on)))
        print(f"| {'allocators':<22} | {'drain s':>7} | {'drain peak':>10} | "
              f"{'peak with compaction':>20} | {'RSS at the end':>14} |")  # fmt: skip
        print(f"|{'-' * 24}|{'-' * 8}:|{'-' * 11}:|{'-' * 21}:|{'-' * 15}:|")
        for on, f in rows:
            label = "LOADER_ALLOCATOR" if on else "defaults"
            print(f"| {label:<22} | {f['drain_s']:>7.1f} | {f['drain_peak']:>6.0f} MiB | "
                  f"{f['peak']:>16.0f} MiB | {f['end']:>10.0f} MiB |")  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
