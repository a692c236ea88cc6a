"""What a results request costs on a running server: counted, kept, and kept after new events.

    .venv/bin/python bench/results_requests.py --visitors 1000000 --events 10000000

Starts ``liftlog serve`` on a temporary data directory, makes through the management API an
experiment shaped like `bench/results.py`'s (3 variations, 5 metrics), writes that benchmark's
synthetic lake with the experiment's ids, and times over HTTP, one after the other:

1. ``GET .../results`` with nothing counted yet (the baseline: a whole counting; the analysis
   stack was imported by an earlier request);
2. the same request again, the other two methods, the CSV (all answered from the kept counts);
3. ``GET .../timeseries`` (a counting of its own: per day), and the results once more;
4. one event appended to the lake (a new Delta version), then the results again: brought up to
   date from the per-visitor counts the server kept (`liftlog.analysis.incremental`), or, with
   none kept, the kept counts while their reuse time lasts (they took seconds);
5. if brought up to date, another event and the results again; else, with a reuse factor above
   0, once the reuse time of those counts has passed (their ``recount_by``), the results again
   (answered from the kept counts while they are counted again in the background), how long
   until the new counts are there, and the results then;
6. the server stopped and started again on the same data directory (the counts it kept on disk,
   ``data/counts``), then the results and the timeseries (the analysis stack imported first, as
   in step 1).

Prints seconds per request and the ratio to the first one. The lake is built once per run (about
a minute for 10M events); ``--keep DIR`` keeps the data directory.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx
import pyarrow as pa
from deltalake import write_deltalake

from ingest import BIN, free_port, server
from liftlog.lake.schema import SCHEMAS
from results import EVENTS, Ids, build

METRICS = [  # the metrics of `results.spec`, by event key
    ("purchase", "unique", None),
    ("purchase", "sum", "revenue"),
    ("signup", "unique", None),
    ("add_to_cart", "count", None),
    ("signup", "sum", "value"),
]


def make_experiment(url: str, token: str) -> tuple[int, Ids]:
    with httpx.Client(base_url=url, headers={"authorization": f"Bearer {token}"}) as w:
        project = w.post("/v2/projects", json={"name": "Bench"}).json()["id"]
        event_ids = {
            key: w.post(f"/v2/projects/{project}/custom_events", json={"key": key}).json()["id"]
            for key in EVENTS
        }
        metrics = [
            {"event_id": event_ids[key], "aggregator": aggregator}
            | ({"field": field} if field else {})
            for key, aggregator, field in METRICS
        ]
        body = {
            "project_id": project,
            "key": "bench",
            "variations": [
                {"key": key, "weight": weight}
                for key, weight in (("a", 3334), ("b", 3333), ("c", 3333))
            ],
            "metrics": metrics,
        }
        response = w.post("/v2/experiments", params={"action": "start"}, json=body)
        response.raise_for_status()
        experiment = response.json()
    ids = Ids(
        experiment=str(experiment["id"]),
        campaign=str(experiment["campaign_id"]),
        variations=tuple(str(v["variation_id"]) for v in experiment["variations"]),  # type: ignore[arg-type]
        events=tuple(str(event_ids[key]) for key in EVENTS),
    )
    return int(experiment["id"]), ids


def append_one_event(lake: Path, ids: Ids, t0: int, n: int = 0) -> None:
    """The ``n``-th appended event: a conversion of a visitor never decided, a Delta commit."""
    schema = SCHEMAS["conversions"]
    row = {f.name: None for f in schema}
    row |= {"date": "day", "uuid": f"late{n}", "timestamp": t0 + 1, "timestamp_raw": t0 + 1,
            "visitor_id": "late", "event_name": EVENTS[0], "entity_id": ids.events[0],
            "problems": [], "source": "v1", "rawlog_position": f"w0:9:{n}",
            "account_id": "1"}  # fmt: skip
    table = pa.Table.from_pylist([row], schema=schema)
    write_deltalake(str(lake / "conversions"), table, mode="append")


def timed(client: httpx.Client, path: str, **params: str) -> tuple[float, httpx.Response]:
    start = time.perf_counter()
    response = client.get(path, params=params)
    elapsed = time.perf_counter() - start
    response.raise_for_status()
    return elapsed, response


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visitors", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--results-reuse-factor", type=float, default=10.0)
    parser.add_argument("--keep", type=Path, help="keep the data directory here")
    args = parser.parse_args()
    data = args.keep or Path(tempfile.mkdtemp(prefix="liftlog-bench-"))
    data.mkdir(parents=True, exist_ok=True)
    liftlog = str(BIN / "liftlog")
    try:
        token = json.loads(
            subprocess.run(
                [liftlog, "token", "create", "--name", "bench", "--scope", "write",
                 "--data", str(data), "--json"],
                check=True, capture_output=True, text=True,
            ).stdout
        )["secret"]  # fmt: skip
        port = free_port()
        cmd = [liftlog, "serve", "--port", str(port), "--data", str(data), "--no-loader",
               "--results-reuse-factor", str(args.results_reuse_factor)]  # fmt: skip
        with server(cmd, port):
            url = f"http://127.0.0.1:{port}"
            experiment_id, ids = make_experiment(url, token)
            t0 = int(time.time() * 1000) + 1000  # after the experiment started
            start = time.perf_counter()
            build(data / "lake", args.visitors, args.events, ids, t0)
            print(f"built {args.events:,} events in {time.perf_counter() - start:.1f} s")
            base = f"/v2/experiments/{experiment_id}"
            rows: list[tuple[str, float, str]] = []
            with httpx.Client(
                base_url=url, headers={"authorization": f"Bearer {token}"}, timeout=600
            ) as r:

                def step(name: str, path: str, **params: str) -> httpx.Response:
                    elapsed, response = timed(r, path, **params)
                    counted = ""
                    if path.endswith("/results") and "format" not in params:
                        fresh = response.json()["freshness"]
                        counted = f"counted at {fresh['counted_at'][11:19]}" + (
                            ", events loaded since" if fresh["loaded_since_counted"] else ""
                        )
                    rows.append((name, elapsed, counted))
                    return response

                # The first results request of a server imports the analysis stack; not timed.
                r.get("/v2/visitors/nobody/timeline", params={"experiment": str(experiment_id)})
                first = step("results, nothing counted yet", f"{base}/results")
                visitors = first.json()["reach"]["total_count"]
                step("results again", f"{base}/results")
                step("results, method=fixed", f"{base}/results", method="fixed")
                step("results, method=bayesian", f"{base}/results", method="bayesian")
                step("results as CSV", f"{base}/results", format="csv")
                step("timeseries (counts per day)", f"{base}/timeseries")
                step("results after the timeseries", f"{base}/results")
                append_one_event(data / "lake", ids, t0)
                kept = step("results after one more event", f"{base}/results")
                if not kept.json()["freshness"]["loaded_since_counted"]:
                    # Brought up to date (the server kept what it counted per visitor): the
                    # counts of the update are reused by its cost, under a second here.
                    append_one_event(data / "lake", ids, t0, 1)
                    step("results after another event", f"{base}/results")
                elif args.results_reuse_factor > 0:
                    fresh = kept.json()["freshness"]
                    due = datetime.fromisoformat(fresh["recount_by"]).timestamp()
                    time.sleep(max(0.0, due - time.time()) + 1)
                    stale = step("results past the reuse time", f"{base}/results")
                    then = stale.json()["freshness"]["counted_at"]
                    start = time.perf_counter()
                    while timed(r, f"{base}/results")[1].json()["freshness"]["counted_at"] == then:
                        time.sleep(0.1)
                    rows.append(("(new counts there after)", time.perf_counter() - start, ""))
                    step("results after the counting in the background", f"{base}/results")
        with (
            server(cmd, port),
            httpx.Client(
                base_url=url, headers={"authorization": f"Bearer {token}"}, timeout=600
            ) as again,
        ):
            again.get("/v2/visitors/nobody/timeline", params={"experiment": str(experiment_id)})
            for name in ("results", "timeseries"):
                elapsed, response = timed(again, f"{base}/{name}")
                fresh = response.json()["freshness"]
                rows.append(
                    (f"{name} after a restart", elapsed, f"counted at {fresh['counted_at'][11:19]}")
                )
        baseline = rows[0][1]
        print(f"{visitors:,} visitors; reuse factor {args.results_reuse_factor:g}")
        print("| request | seconds | / first | counts |\n|---|---:|---:|---|")
        for name, seconds, counted in rows:
            print(f"| {name} | {seconds:.3f} | {seconds / baseline:.3f} | {counted} |")
    finally:
        if args.keep is None:
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
