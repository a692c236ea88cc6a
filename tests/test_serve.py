"""`liftlog serve --workers N` and `liftlog status`, as a user runs them."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.lake import rows
from tests.server import FIXTURES, Server, free_port


def _send_tracks(server: Server, prefix: str, n: int) -> None:
    """The official SDK's ``track`` body ``n`` times, with uuids ``<prefix>-0`` and on."""
    body = (FIXTURES / "events" / "sdk_track.json").read_text()
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for i in range(n):
            sent = body.replace("fc1bc6a8-3282-4728-97f0-ab7e0a7e214d", f"{prefix}-{i}")
            assert client.post("/v1/events", content=sent).status_code == 204


def test_serve_with_two_workers_gives_each_its_own_raw_log(tmp_path: Path) -> None:
    server = Server(tmp_path / "data", free_port()).start("--workers", "2")
    try:
        _send_tracks(server, "uuid", 200)
        server.wait_loaded()
    finally:
        server.stop()
    assert sorted(p.name for p in (server.data_dir / "rawlog").iterdir()) == ["w0", "w1"]
    uuids = sorted(r["uuid"] for r in rows(server.data_dir, "conversions"))
    assert uuids == sorted(f"uuid-{i}" for i in range(200))


def test_status_reports_rows_and_waiting_bytes(server: Server) -> None:
    body = (FIXTURES / "events" / "activate.json").read_bytes()
    assert httpx.post(f"{server.url}/v1/events", content=body).status_code == 204
    server.wait_loaded()
    out = subprocess.run(
        [sys.executable, "-m", "liftlog.cli", "status", "--data", str(server.data_dir), "--json"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    info = json.loads(out)
    assert info["tables"]["decisions"]["rows"] == 1
    assert info["tables"]["conversions"]["rows"] == 0
    assert info["rawlog"]["pending_bytes"] == 0
    assert info["rawlog"]["oldest_waiting_received_ms"] is None
    assert info["unfinished_rebuild"] is None
    assert info["rawlog"]["bytes"] > len(body)
    text = subprocess.run(
        [sys.executable, "-m", "liftlog.cli", "status", "--data", str(server.data_dir)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert "decisions" in text and "0 bytes waiting to load" in text
    assert "rebuild" not in text
    (server.data_dir / "lake.before-rebuild").mkdir()  # left by a rebuild whose loading failed
    text = subprocess.run(
        [sys.executable, "-m", "liftlog.cli", "status", "--data", str(server.data_dir)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert "a lake rebuild did not finish" in text and "lake.before-rebuild" in text


def _loaders(server_pid: int) -> list[int]:
    """The server's loader processes: its children started by multiprocessing's spawn."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == server_pid and b"spawn_main" in cmdline:
            found.append(int(entry.name))
    return found


def test_a_loader_that_dies_is_started_again(tmp_path: Path) -> None:
    """Killed outright (as the OOM killer would), the loader comes back and loads what came
    in meanwhile, once each."""
    server = Server(tmp_path / "data", free_port()).start()
    try:
        assert server.proc is not None
        [first] = _loaders(server.proc.pid)
        os.kill(first, signal.SIGKILL)
        _send_tracks(server, "again", 20)
        server.wait_loaded()
        [second] = _loaders(server.proc.pid)
        assert second != first
    finally:
        server.stop()
    assert "the loader exited (code -9); starting it again in 1 s" in server.log()
    uuids = sorted(r["uuid"] for r in rows(server.data_dir, "conversions"))
    assert uuids == sorted(f"again-{i}" for i in range(20))


def test_ctrl_c_stops_server_and_loader_without_a_restart(tmp_path: Path) -> None:
    """Ctrl-C in a terminal signals the whole process group: the loader stops first, and that
    is no death to report or restart from."""
    server = Server(tmp_path / "data", free_port()).start()
    assert server.proc is not None
    [loader] = _loaders(server.proc.pid)
    os.killpg(server.proc.pid, signal.SIGINT)
    assert server.proc.wait(30) == 0
    assert "the loader exited" not in server.log()
    with pytest.raises(ProcessLookupError):
        os.kill(loader, 0)


def test_a_taken_port_fails_before_anything_is_made(tmp_path: Path) -> None:
    """Not a demo project whose traffic goes to whatever listens there, then a bind error."""
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        done = subprocess.run(
            [sys.executable, "-m", "liftlog.cli", "serve", "--port", str(port),
             "--data", str(tmp_path / "data"), "--demo"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in done.stderr
    assert not (tmp_path / "data").exists()


def _liftlog(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "liftlog.cli", *args], capture_output=True, text=True, timeout=120
    )


def _stored(data_dir: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every table's rows, by what identifies them and what counting reads."""
    keep = ("rawlog_position", "uuid", "visitor_id", "entity_id", "timestamp_raw", "revenue")
    return {
        table: sorted(tuple(r.get(k) for k in keep) for r in rows(data_dir, table))
        for table in ("decisions", "conversions", "rejects")
    }


def test_lake_rebuild_loads_every_raw_log_record_again(tmp_path: Path) -> None:
    server = Server(tmp_path / "data", free_port()).start()
    data = server.data_dir
    try:
        activate = (FIXTURES / "events" / "activate.json").read_bytes()
        assert httpx.post(f"{server.url}/v1/events", content=activate).status_code == 204
        _send_tracks(server, "first", 30)
        server.wait_loaded()
        running = _liftlog("lake", "rebuild", "--data", str(data))
        assert running.returncode == 1 and "Stop it first" in running.stderr
        assert not (data / "lake.before-rebuild").exists()
    finally:
        server.stop()
    before = _stored(data)
    assert len(before["conversions"]) == 30 and len(before["decisions"]) == 1
    (data / "counts").mkdir(exist_ok=True)
    (data / "counts" / "left.counts").write_text("{}")  # counts of the old lake's tables

    done = _liftlog("lake", "rebuild", "--data", str(data))
    assert done.returncode == 0, done.stderr
    assert "1 decisions, 30 conversions, 0 rejects" in done.stdout
    assert _stored(data) == before
    assert not (data / "lake.before-rebuild").exists() and not (data / "counts").exists()

    # A second log segment, then the first one pruned: its events are only in the lake now.
    server.start()
    try:
        _send_tracks(server, "second", 2)
        server.wait_loaded()
    finally:
        server.stop()
    pruned = _liftlog("rawlog", "prune", "--older-than-days", "0", "--data", str(data))
    assert pruned.returncode == 0 and "deleted 1 segments" in pruned.stdout, pruned.stderr
    whole = _stored(data)
    refused = _liftlog("lake", "rebuild", "--data", str(data))
    assert (
        refused.returncode == 1
        and "1 of w0" in refused.stderr
        and "--allow-pruned" in refused.stderr
    )
    assert _stored(data) == whole
    done = _liftlog("lake", "rebuild", "--allow-pruned", "--data", str(data))
    assert done.returncode == 0, done.stderr
    assert sorted(r["uuid"] for r in rows(data, "conversions")) == ["second-0", "second-1"]
