"""The catalog commands, run as a user runs them; what they write, the API serves."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from liftlog.catalog.store import Catalog, default_url
from tests.server import Server, free_port


def liftlog(data_dir: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "liftlog.cli", *args, "--data", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode == 0) == ok, done.stderr
    return done


def as_json(data_dir: Path, *args: str) -> Any:
    return json.loads(liftlog(data_dir, *args, "--json").stdout)


def test_cli_builds_an_experiment_the_api_serves(tmp_path: Path) -> None:
    data = tmp_path / "data"
    project = as_json(data, "project", "create", "--name", "Shop")
    pid = str(project["id"])
    event = as_json(data, "event", "create", "--project", pid, "--key", "purchase")
    assert event["key"] == "purchase" and event["project_id"] == project["id"]
    exp = as_json(
        data, "experiment", "create", "--project", pid, "--key", "checkout",
        "--variations", "control:5000,treatment:5000", "--metric", "purchase",
    )  # fmt: skip
    assert [(v["key"], v["weight"]) for v in exp["variations"]] == [
        ("control", 5000),
        ("treatment", 5000),
    ]
    assert exp["metrics"][0]["event_id"] == event["id"]
    assert as_json(data, "experiment", "start", str(exp["id"]))["status"] == "running"
    listed = as_json(data, "experiment", "list", "--project", pid)
    assert [(e["key"], e["status"]) for e in listed] == [("checkout", "running")]
    assert as_json(data, "experiment", "pause", str(exp["id"]))["status"] == "paused"
    human = liftlog(data, "experiment", "list", "--project", pid).stdout
    assert "checkout" in human and "paused" in human

    token = as_json(data, "token", "create", "--name", "ci", "--scope", "read")
    assert token["secret"].startswith("llpat_") and token["scope"] == "read"

    server = Server(data, free_port()).start()
    try:
        auth = {"authorization": f"Bearer {token['secret']}"}
        served = httpx.get(f"{server.url}/v2/experiments/{exp['id']}", headers=auth)
        assert served.json()["status"] == "paused"
        [listed] = as_json(data, "token", "list")
        assert listed["last_used"] is not None and listed["revoked"] is None
        assert token["secret"].startswith(listed["prefix"]) and "secret" not in listed
        revoked = as_json(data, "token", "revoke", str(token["id"]))
        assert revoked["revoked"] is not None
        assert httpx.get(f"{server.url}/v2/projects", headers=auth).status_code == 401
    finally:
        server.stop()
    with Catalog.open(default_url(data.resolve())) as catalog:  # past one page of listing
        for n in range(101):
            catalog.tokens.create(f"t{n}", "read")
    lines = liftlog(data, "token", "list").stdout.splitlines()
    assert len(lines) == 102 and f"token {token['id']}  ci  scope read" in lines[0]
    assert "revoked" in lines[0] and lines[1].endswith("active  last used: never used")


def test_cli_reports_errors_without_a_traceback(tmp_path: Path) -> None:
    data = tmp_path / "data"
    pid = str(as_json(data, "project", "create", "--name", "Shop")["id"])
    heavy = liftlog(
        data, "experiment", "create", "--project", pid, "--key", "k",
        "--variations", "a:9000,b:9000", ok=False,
    )  # fmt: skip
    assert "Error:" in heavy.stderr and "$.variations" in heavy.stderr
    assert "Traceback" not in heavy.stderr
    missing = liftlog(data, "experiment", "start", "424242", ok=False)
    assert "not found" in missing.stderr
    bad = liftlog(
        data, "experiment", "create", "--project", pid, "--key", "k", "--variations", "a", ok=False
    )
    assert "KEY:WEIGHT" in bad.stderr
    liftlog(data, "token", "create", "--name", "x", "--scope", "admin", ok=False)
    datafile = as_json(data, "token", "create", "--name", "sdk", "--scope", "datafile")
    assert datafile["scope"] == "datafile"
