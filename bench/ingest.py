"""Ingest benchmark: ``liftlog serve`` (durable, loader running) against a bare ASGI 204 app.

Both servers run under the same uvicorn configuration (httptools, uvloop, one worker) on
127.0.0.1, one after the other in the same run, and every figure is printed with the ratio
liftlog/bare. Figures:

* throughput: wrk, one thread, 64 connections (``--connections``), POSTing a 1-event and a
  10-event body;
* latency at a fixed 5,000 requests/s: a paced generator (below), p50/p99 measured from each
  request's *scheduled* send time, so the wait of requests queued behind a slow response counts
  in their latency instead of being hidden (no coordinated omission);
* memory: RSS of the server's whole process tree (server and loader), read from /proc every
  0.5 s while under load; ``--sustained`` adds 60 s of wrk load on liftlog for it.

A third column, ``liftlog serve --no-loader``, shows what the loader's share of the two cores
costs the server (``--skip-no-loader`` leaves it out). ``--workers N`` runs every server, the
bare app's included, with N worker processes (``liftlog serve --workers N``).

Before the servers, the script times 200 appends of 4 KiB + ``fdatasync`` in the data
directory's file system, as the raw log does them: every durable request waits for at least one
such sync (and, on average, for part of the one already under way), so with ``c`` connections
``c / sync time`` is a ceiling on requests/s that no server code can pass, and the sync's own
latency is a floor under every percentile.

Usage::

    .venv/bin/python bench/ingest.py [--duration S] [--sustained] [--skip-no-loader]
                                     [--connections C] [--workers N]

Needs ``wrk`` (Debian: ``apt-get install wrk``). Every load phase is bounded in time; the servers
are stopped at the end, and the data directory is a temporary one, removed afterwards.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import random
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "events" / "sdk_track.json"
BIN = Path(sys.executable).parent
CONNECTIONS = 64
PACED_RATE = 5_000
PACED_CONNECTIONS = 32
WARMUP = 2.0
SUSTAINED = 60.0


# -- request bodies ------------------------------------------------------------------------------


def make_body(n_events: int, seed: int = 1) -> bytes:
    """What the official SDK sends for one ``track`` (n=1), or n such visitors in one batch."""
    rng = random.Random(seed)
    batch = json.loads(FIXTURE.read_text())
    template = batch["visitors"][0]
    visitors = []
    for i in range(n_events):
        visitor = json.loads(json.dumps(template))
        visitor["visitor_id"] = f"user-{i}"
        visitor["snapshots"][0]["events"][0]["uuid"] = str(uuid.UUID(int=rng.getrandbits(128)))
        visitors.append(visitor)
    batch["visitors"] = visitors
    return json.dumps(batch, separators=(",", ":")).encode()


# -- servers -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(
    port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0, poll: float = 0.1
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before it was ready")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n")
            if s.recv(64).startswith(b"HTTP/1.1"):
                return
        time.sleep(poll)
    raise RuntimeError("server not ready in time")


@contextlib.contextmanager
def server(cmd: list[str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL)
    try:
        wait_ready(port, proc)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # uvicorn shuts down; liftlog then stops its loader
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(45)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the group is ours: start_new_session above
        proc.wait()


# -- memory --------------------------------------------------------------------------------------


def process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class RssSampler(threading.Thread):
    """Peak RSS of a process tree: the whole tree, the server process, and its children."""

    def __init__(self, root: int, every: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.root, self.every = root, every
        self.samples: list[tuple[int, int]] = []  # (server KiB, children KiB)
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.every):
            pids = process_tree(self.root)
            children = sum(rss_kib(p) for p in pids if p != self.root)
            self.samples.append((rss_kib(self.root), children))

    def stop(self) -> dict[str, float]:
        self._stop_event.set()
        self.join()
        samples = self.samples or [(0, 0)]
        return {
            "rss_total_mib": max(a + b for a, b in samples) / 1024,
            "rss_server_mib": max(a for a, _ in samples) / 1024,
            "rss_children_mib": max(b for _, b in samples) / 1024,
            "rss_last_mib": sum(samples[-1]) / 1024,
        }


# -- wrk -----------------------------------------------------------------------------------------

LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[%s]==]
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT %%d %%d %%d %%d %%d %%d\\n", summary.requests, summary.duration,
    e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end
"""


def run_wrk(port: int, body: bytes, duration: float, script_dir: Path) -> dict[str, float]:
    script = script_dir / f"post-{len(body)}.lua"
    script.write_text(LUA % body.decode())
    url = f"http://127.0.0.1:{port}/v1/events"
    base = ["wrk", "-t1", f"-c{CONNECTIONS}", "-s", str(script), "--timeout", "5s"]
    subprocess.run([*base, f"-d{WARMUP:g}s", url], capture_output=True, check=True, timeout=60)
    out = subprocess.run(
        [*base, f"-d{duration:g}s", url],
        capture_output=True,
        text=True,
        check=True,
        timeout=duration + 60,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    requests, micros, io_errors, bad_status, p50, p99 = map(int, line.split()[1:])
    return {
        "rps": requests / (micros / 1e6),
        "errors": io_errors + bad_status,
        "p50_ms": p50 / 1000,
        "p99_ms": p99 / 1000,
    }


# -- paced load ----------------------------------------------------------------------------------


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def paced(port: int, body: bytes, rate: float, duration: float, conns: int) -> dict[str, float]:
    """Send ``rate`` requests/s on a fixed schedule for ``WARMUP + duration`` seconds.

    Request i is due at ``t0 + i / rate``. It goes out on the first idle keep-alive connection
    once due; if none is idle it waits, and that wait counts in its latency, which is measured
    from the due time to the end of the response (as wrk2 does). One thread, non-blocking
    sockets, ``select`` with microsecond timeouts (epoll's are whole milliseconds).
    """
    head = (
        f"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    request = head + body
    socks = []
    for _ in range(conns):
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        socks.append(s)
    by_fd = {s.fileno(): s for s in socks}
    idle = collections.deque(socks)  # FIFO: every connection stays busy, none idles out
    due_of: dict[int, tuple[float, float]] = {}  # fd -> (due, sent)
    buffers: dict[int, bytes] = {s.fileno(): b"" for s in socks}
    total = int(rate * (WARMUP + duration))
    t0 = time.perf_counter() + 0.05
    measure_from = t0 + WARMUP
    deadline = t0 + WARMUP + duration + 10.0
    latency, service, lag = [], [], []
    sent = done = errors = 0
    while done < total:
        now = time.perf_counter()
        if now > deadline:
            break
        while sent < total and idle and t0 + sent / rate <= now:
            s = idle.popleft()
            due = t0 + sent / rate
            n = s.send(request)
            if n < len(request):  # rare on loopback: finish it blocking
                s.setblocking(True)
                s.sendall(request[n:])
                s.setblocking(False)
            due_of[s.fileno()] = (due, time.perf_counter())
            sent += 1
        wait = (t0 + sent / rate - time.perf_counter()) if sent < total and idle else 0.05
        readable, _, _ = select.select(list(due_of), [], [], max(0.0, wait))
        for fd in readable:
            chunk = by_fd[fd].recv(65536)
            if not chunk:
                raise RuntimeError("server closed a connection")
            buf = buffers[fd] + chunk
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                buffers[fd] = buf
                continue
            headers = buf[:end].lower()
            length = 0
            at = headers.find(b"\r\ncontent-length:")
            if at >= 0:
                length = int(headers[at + 17 :].split(b"\r\n", 1)[0])
            if len(buf) < end + 4 + length:
                buffers[fd] = buf
                continue
            buffers[fd] = b""
            finished = time.perf_counter()
            due, sent_at = due_of.pop(fd)
            if buf[9:12] != b"204":
                errors += 1
            if due >= measure_from:
                latency.append(finished - due)
                service.append(finished - sent_at)
                lag.append(sent_at - due)
            done += 1
            idle.append(by_fd[fd])
    for s in socks:
        s.close()
    latency.sort()
    service.sort()
    lag.sort()
    return {
        "rps": len(latency) / duration,
        "errors": errors + (total - done),
        "p50_ms": _percentile(latency, 0.50) * 1000,
        "p99_ms": _percentile(latency, 0.99) * 1000,
        "service_p99_ms": _percentile(service, 0.99) * 1000,
        "send_lag_p99_ms": _percentile(lag, 0.99) * 1000,
    }


def run_paced(port: int, body_file: Path, duration: float) -> dict[str, float]:
    """The paced generator in a process of its own, so that nothing here shares its GIL."""
    cmd = [sys.executable, __file__, "_paced", str(port), str(body_file), str(duration)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    if out.returncode:
        raise RuntimeError(f"paced load generator failed:\n{out.stderr}")
    return dict(json.loads(out.stdout))


# -- the disk ------------------------------------------------------------------------------------


def sync_latency(directory: Path, n: int = 200, size: int = 4096) -> dict[str, float]:
    """p50/p99 (ms) of append + ``fdatasync`` in ``directory``, as the raw log's group commit."""
    path = directory / "sync-probe.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    times = []
    try:
        for _ in range(n):
            started = time.perf_counter()
            os.write(fd, b"x" * size)
            os.fdatasync(fd)
            times.append((time.perf_counter() - started) * 1000)
    finally:
        os.close(fd)
        path.unlink()
    times.sort()
    return {"p50_ms": _percentile(times, 0.50), "p99_ms": _percentile(times, 0.99)}


# -- the run -------------------------------------------------------------------------------------


def measure(
    name: str, cmd: list[str], port: int, bodies: dict[int, Path], args: argparse.Namespace,
    sustained: bool = False,
) -> dict[str, dict[str, float]]:  # fmt: skip
    results: dict[str, dict[str, float]] = {}
    with server(cmd, port) as proc:
        sampler = RssSampler(proc.pid)
        sampler.start()
        for n, path in bodies.items():
            print(f"  {name}: {PACED_RATE} req/s paced, {n}-event body", file=sys.stderr)
            results[f"paced{n}"] = run_paced(port, path, args.duration)
        for n, path in bodies.items():
            print(f"  {name}: wrk -c{CONNECTIONS}, {n}-event body", file=sys.stderr)
            results[f"wrk{n}"] = run_wrk(port, path.read_bytes(), args.duration, path.parent)
        results["rss"] = sampler.stop()
        if sustained:
            print(f"  {name}: {SUSTAINED:g} s sustained, 10-event body", file=sys.stderr)
            sampler = RssSampler(proc.pid)
            sampler.start()
            body = bodies[10]
            results["sustained"] = run_wrk(port, body.read_bytes(), SUSTAINED, body.parent)
            results["sustained"].update(sampler.stop())
    return results


def lake_rows(data: Path) -> str:
    """What ``liftlog status`` says once the server (and its loader) stopped."""
    out = subprocess.run(
        [str(BIN / "liftlog"), "status", "--data", str(data), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if out.returncode:
        reason = (out.stderr.strip().splitlines() or ["no message"])[-1]
        return f"liftlog status failed: {reason}"
    info = json.loads(out.stdout)
    rows = sum(t["rows"] for t in info["tables"].values())
    pending = info["rawlog"]["pending_bytes"]
    return f"{rows:,} rows in the lake, {pending:,} raw-log bytes still waiting for the loader"


def fmt(value: float, unit: str) -> str:
    if value != value:  # NaN
        return "n/a"
    if unit == "ms":
        return f"{value:.2f} ms"
    if unit == "MiB":
        return f"{value:.0f} MiB"
    return f"{value:,.0f}"


def report(runs: dict[str, dict[str, dict[str, float]]]) -> None:
    """Print one table: a column per server, and each liftlog column's ratio to ``bare``."""
    rows: list[tuple[str, str, str, str]] = []  # (label, phase, field, unit)
    for n in (1, 10):
        label = f"wrk c{CONNECTIONS}, {n}-event body"
        rows.append((f"{label}: requests/s", f"wrk{n}", "rps", ""))
        rows.append((f"{label}: events/s", f"wrk{n}", f"events{n}", ""))
        rows.append((f"{label}: p99", f"wrk{n}", "p99_ms", "ms"))
    for n in (1, 10):
        label = f"{PACED_RATE} req/s paced, {n}-event body"
        rows.append((f"{label}: achieved requests/s", f"paced{n}", "rps", ""))
        rows.append((f"{label}: p50", f"paced{n}", "p50_ms", "ms"))
        rows.append((f"{label}: p99", f"paced{n}", "p99_ms", "ms"))
    rows.append(("peak RSS during the phases above, all processes", "rss", "rss_total_mib", "MiB"))
    if any("sustained" in r for r in runs.values()):
        label = f"{SUSTAINED:g} s sustained wrk, 10-event"
        rows.append((f"{label}: requests/s", "sustained", "rps", ""))
        rows.append((f"{label}: peak RSS, all processes", "sustained", "rss_total_mib", "MiB"))
        rows.append((f"{label}: peak RSS, server process", "sustained", "rss_server_mib", "MiB"))
        rows.append((f"{label}: peak RSS, loader", "sustained", "rss_children_mib", "MiB"))
        rows.append((f"{label}: RSS at the end", "sustained", "rss_last_mib", "MiB"))

    def value(run: str, phase: str, field: str) -> float:
        figures = runs[run].get(phase)
        if figures is None:
            return float("nan")
        if field.startswith("events"):
            return figures["rps"] * int(field[6:])
        return figures[field]

    names = list(runs)
    width = max(len(r[0]) for r in rows)
    head = f"| {'figure':<{width}} |"
    rule = f"|{'-' * (width + 2)}|"
    widths = {name: max(10, len(name)) for name in names}
    for name in names:
        head += f" {name:>{widths[name]}} |"
        rule += f"{'-' * (widths[name] + 1)}:|"
        if name != "bare":
            head += f" {'/bare':>8} |"
            rule += f"{'-' * 9}:|"
    print(head)
    print(rule)
    for label, phase, field, unit in rows:
        base = value("bare", phase, field)
        line = f"| {label:<{width}} |"
        for name in names:
            v = value(name, phase, field)
            line += f" {fmt(v, unit):>{widths[name]}} |"
            if name != "bare":
                ratio = f"{v / base:.2f}" if base == base and base and v == v else "n/a"
                line += f" {ratio:>8} |"
        print(line)
    for name in names:
        errors = {k: int(v["errors"]) for k, v in runs[name].items() if "errors" in v}
        print(f"{name}: non-204 or unfinished requests per phase: {json.dumps(errors)}")
        for n in (1, 10):
            p = runs[name][f"paced{n}"]
            print(
                f"{name}: paced {n}-event: p99 from the actual send {p['service_p99_ms']:.2f} ms,"
                f" generator send lag p99 {p['send_lag_p99_ms']:.2f} ms"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description="liftlog ingest vs a bare ASGI 204 app")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    parser.add_argument("--sustained", action="store_true", help="add 60 s of load for RSS")
    parser.add_argument(
        "--skip-no-loader", action="store_true", help="skip the liftlog --no-loader column"
    )
    parser.add_argument(
        "--connections", type=int, default=CONNECTIONS, help="wrk connections (default 64)"
    )
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
    args = parser.parse_args()
    globals()["CONNECTIONS"] = args.connections
    if shutil.which("wrk") is None:
        sys.exit("bench/ingest.py needs wrk: apt-get install wrk")
    tmp = Path(tempfile.mkdtemp(prefix="liftlog-bench-"))
    try:
        bodies = {}
        for n in (1, 10):
            bodies[n] = tmp / f"body-{n}.json"
            bodies[n].write_bytes(make_body(n))
        sizes = ", ".join(f"{n} event(s) = {p.stat().st_size} B" for n, p in bodies.items())
        print(f"bodies: {sizes}", file=sys.stderr)
        sync = sync_latency(tmp)
        ceiling = CONNECTIONS / (sync["p50_ms"] / 1000)
        load_before = os.getloadavg()[0]
        runs = {}
        port = free_port()
        workers = ["--workers", str(args.workers)]
        bare_cmd = [sys.executable, str(ROOT / "bench" / "bare_app.py"), "--port", str(port)]
        bare_cmd += workers
        runs["bare"] = measure("bare", bare_cmd, port, bodies, args)
        port = free_port()
        data = tmp / "data"
        serve = [str(BIN / "liftlog"), "serve", "--host", "127.0.0.1", "--port", str(port)]
        serve += workers
        runs["liftlog"] = measure(
            "liftlog", [*serve, "--data", str(data)], port, bodies, args, args.sustained
        )
        lake = lake_rows(data)
        if not args.skip_no_loader:
            port = free_port()
            serve = [str(BIN / "liftlog"), "serve", "--host", "127.0.0.1", "--port", str(port)]
            cmd = [*serve, *workers, "--data", str(tmp / "data-no-loader"), "--no-loader"]
            runs["liftlog --no-loader"] = measure("liftlog --no-loader", cmd, port, bodies, args)
        print(f"bodies: {sizes}; load average (1 min) before {load_before:.2f}, "
              f"after {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; "
              f"{args.workers} worker(s) per server")  # fmt: skip
        print(f"disk: append + fdatasync of 4 KiB p50 {sync['p50_ms']:.2f} ms, p99 "
              f"{sync['p99_ms']:.2f} ms; so at c{CONNECTIONS} durable requests/s < "
              f"{ceiling:,.0f} (connections / sync p50)")  # fmt: skip
        report(runs)
        print(f"liftlog, after its run: {lake}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "_paced":
        _, _, port_arg, body_arg, duration_arg = sys.argv
        result = paced(
            int(port_arg), Path(body_arg).read_bytes(), PACED_RATE, float(duration_arg),
            PACED_CONNECTIONS,
        )  # fmt: skip
        print(json.dumps(result))
    else:
        main()
