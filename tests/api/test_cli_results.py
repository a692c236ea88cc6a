"""`liftlog results` and `liftlog explain`, run as a user runs them on a real data directory."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.analysis.lakes import build_lake, conversion, decision
from tests.api.test_cli import as_json, liftlog


def test_cli_results_and_explain(tmp_path: Path) -> None:
    data = tmp_path / "data"
    pid = str(as_json(data, "project", "create", "--name", "Shop")["id"])
    event = as_json(data, "event", "create", "--project", pid, "--key", "purchase")
    exp = as_json(
        data, "experiment", "create", "--project", pid, "--key", "checkout",
        "--variations", "control:5000,treatment:5000", "--metric", "purchase",
    )  # fmt: skip
    as_json(data, "experiment", "start", str(exp["id"]))
    a, b = (str(v["variation_id"]) for v in exp["variations"])
    ids = {"experiment": str(exp["id"]), "campaign": str(exp["campaign_id"])}
    now = int(time.time() * 1000) + 1000
    visitors = []
    for i in range(30):
        visitors.append(decision(f"u{i}", a if i % 2 else b, now, f"d{i}", **ids))
        if i % 3 == 0:
            visitors.append(conversion(f"u{i}", now + 10, f"c{i}", entity=str(event["id"])))
    visitors.append(conversion("u0", now - 10_000, "early", entity=str(event["id"])))
    build_lake(data, visitors)

    doc = as_json(data, "results", str(exp["id"]))
    reach = {v["name"]: v["count"] for v in doc["reach"]["variations"].values()}
    assert reach == {"control": 15, "treatment": 15}
    kept_counts_answer_only_the_snapshot_they_are_of(data, str(exp["id"]), a, ids, now)
    assert sum(r["unique_conversions"] for r in doc["metrics"][0]["results"].values()) == 10
    table = liftlog(data, "results", str(exp["id"]), "--method", "fixed").stdout
    assert "purchase:unique (primary)" in table and "control *" in table

    events = json.loads(
        liftlog(data, "explain", "--visitor", "u0", "--experiment", str(exp["id"]), "--json").stdout
    )
    assert [(e["uuid"], e["disposition"]) for e in events] == [
        ("early", "before_first_decision"),
        ("d0", "decision"),
        ("c0", "counted"),
    ]
    text = liftlog(data, "explain", "--visitor", "u0", "--experiment", str(exp["id"])).stdout
    assert "before the visitor's first decision" in text


def kept_counts_answer_only_the_snapshot_they_are_of(
    data: Path, experiment: str, a: str, ids: dict[str, str], now: int
) -> None:
    """`liftlog results` keeps what it counts in data/counts, for the server and later runs,
    and takes kept counts only while the lake is at the versions they were counted from."""
    [path] = (data / "counts").glob("*.json")
    header, value = path.read_bytes().split(b"\n", 1)
    kept = json.loads(value)
    kept[0][1]["visitors"][a] = 99  # marked, to see where an answer comes from
    path.write_bytes(header + b"\n" + json.dumps(kept).encode())
    doc = as_json(data, "results", experiment)
    assert doc["reach"]["variations"][a]["count"] == 99  # the kept counts: the lake is as it was
    build_lake(data, [decision("late", a, now + 20, "d-late", **ids)])
    doc = as_json(data, "results", experiment)
    assert doc["reach"]["variations"][a]["count"] == 16  # counted anew: the lake changed


def test_reading_commands_refuse_a_data_directory_that_is_not_there(tmp_path: Path) -> None:
    """A mistyped ``--data`` is an error, not a new empty catalog answering "not found"."""
    missing = tmp_path / "dtaa"
    explain = ("explain", "--visitor", "u0", "--experiment", "5")
    prune = ("rawlog", "prune", "--older-than-days", "7")
    for args in (("results", "5"), explain, ("status",), prune):
        done = liftlog(missing, *args, ok=False)
        assert done.returncode == 2 and "does not exist" in done.stderr, done.stderr
    assert not missing.exists()
