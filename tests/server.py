"""A real liftlog server process on loopback, with its own data directory."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from liftlog.lake.status import lake_status
from liftlog.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures"


def mapped(pid: int, part: str) -> bool:
    """Whether process ``pid`` has a file whose path contains ``part`` mapped (a loaded library)."""
    with open(f"/proc/{pid}/maps") as maps:
        return any(part in line for line in maps)


def wait_analysis_imported(pid: int, after: str) -> None:
    """Wait until process ``pid`` has loaded DuckDB and ``scipy.optimize`` (the results'
    computations); fail after a minute."""
    deadline = time.monotonic() + 60
    while not (mapped(pid, "duckdb") and mapped(pid, "scipy/optimize")):
        assert time.monotonic() < deadline, f"not imported after {after}"
        time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    data_dir: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def settings(self) -> Settings:
        return Settings(data_dir=self.data_dir)

    def start(self, *extra: str) -> Server:
        with open(self.data_dir.parent / f"server-{self.port}.log", "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "liftlog.cli", "serve", "--port", str(self.port),
                 "--data", str(self.data_dir), *extra],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError(f"server did not start: {self.log()}")

    def log(self) -> str:
        return (self.data_dir.parent / f"server-{self.port}.log").read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        if sig == signal.SIGKILL:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the server and its loader, at once
        else:
            self.proc.send_signal(sig)
        self.proc.wait(30)

    def wait_loaded(self, timeout: float = 60) -> dict[str, object]:
        """Wait until the loader has moved everything in the raw log into the lake."""
        deadline = time.monotonic() + timeout
        while True:
            info = lake_status(self.settings)
            if info["rawlog"]["pending_bytes"] == 0:
                return info
            if time.monotonic() > deadline:
                raise TimeoutError(f"still loading: {info}")
            time.sleep(0.1)

    def wait_rows(self, table: str, rows: int, timeout: float = 90) -> None:
        """Wait until ``table`` holds ``rows`` rows and nothing is left to load."""
        deadline = time.monotonic() + timeout
        while True:
            info = lake_status(self.settings)
            if info["tables"][table]["rows"] == rows and not info["rawlog"]["pending_bytes"]:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"expected {rows} rows in {table}: {info}")
            time.sleep(0.2)
