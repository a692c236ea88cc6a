"""How long ``liftlog`` takes to start, against a bare ASGI app started the same way.

    .venv/bin/python bench/startup.py [--rounds 5]

Each round, one after the other, times:

* bare: ``bench/bare_app.py`` under uvicorn until it answers a request (the least a Python ASGI
  server on this machine takes to start; the baseline of the ratios);
* ``liftlog --help`` to its exit;
* ``liftlog serve`` on a new data directory until ``/healthz`` answers (it makes the catalog);
* ``liftlog serve`` again on that data directory (a restart).

Rounds alternate the four, so a busy moment of a shared machine falls on all of them. Prints the
median and the best of each, and the ratio of the medians to the bare app's.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ingest import free_port, wait_ready

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _serve(cmd: list[str], port: int) -> float:
    """Seconds from starting ``cmd`` until it answers on ``port``; then stops it."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(port, proc, poll=0.01)
        return time.perf_counter() - start
    finally:
        proc.terminate()
        proc.wait(30)


def _run(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="liftlog-startup-"))
    liftlog = str(BIN / "liftlog")
    try:
        times: dict[str, list[float]] = {}

        def serve(round_: int, fresh: bool) -> float:
            port = free_port()
            data = tmp / f"data-{round_}"
            if fresh:
                shutil.rmtree(data, ignore_errors=True)
            cmd = [liftlog, "serve", "--port", str(port), "--data", str(data)]
            return _serve(cmd, port)

        def bare(round_: int) -> float:
            port = free_port()
            return _serve(
                [sys.executable, str(ROOT / "bench" / "bare_app.py"), "--port", str(port)], port
            )

        figures: dict[str, Callable[[int], float]] = {
            "bare app, to its first answer": bare,
            "liftlog --help": lambda r: _run([liftlog, "--help"]),
            "liftlog serve, new data directory, to /healthz": lambda r: serve(r, True),
            "liftlog serve, restart, to /healthz": lambda r: serve(r, False),
        }
        for r in range(args.rounds):
            for name, measure in figures.items():
                times.setdefault(name, []).append(measure(r))
                time.sleep(0.5)  # let the stopped server's loader exit
        base = statistics.median(times["bare app, to its first answer"])
        print(f"{'':<50}{'median s':>10}{'best s':>9}{'/ bare':>8}")
        for name, got in times.items():
            median = statistics.median(got)
            print(f"{name:<50}{median:>10.2f}{min(got):>9.2f}{median / base:>8.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
