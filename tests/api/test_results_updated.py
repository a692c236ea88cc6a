"""Results after more events are loaded: the server brings its counts up to date from the new
events (`liftlog.analysis.incremental`), and they equal a counting from scratch."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from liftlog.analysis.counting import count
from liftlog.analysis.sources import connect
from liftlog.analysis.spec import counting_spec
from liftlog.catalog.store import Catalog
from tests.api.conftest import Api, created
from tests.api.worlds import batch, build_world


def _reach_and_conversions(doc: dict[str, Any]) -> dict[str, tuple[int, int, int]]:
    unique, revenue = doc["metrics"]
    return {
        v: (
            doc["reach"]["variations"][v]["count"],
            unique["results"][v]["unique_conversions"],
            revenue["results"][v]["revenue"],
        )
        for v in doc["reach"]["variations"]
    }


def test_results_after_new_events_equal_a_counting_from_scratch(api: Api) -> None:
    world = build_world(api, "Updated", lambda i: i % 4 < 2)
    experiment = world["experiment"]
    a, b = world["a"], world["b"]
    url = f"/v2/experiments/{experiment['id']}/results"
    with api.client(api.read) as r:
        before = _reach_and_conversions(r.get(url).json())
    assert {v: n for v, (n, _, _) in before.items()} == {a: 20, b: 20}

    decision = {"campaign_id": str(experiment["campaign_id"]),
                "experiment_id": str(experiment["id"])}  # fmt: skip
    activated = {"entity_id": decision["campaign_id"], "key": "campaign_activated"}
    buy = {"entity_id": str(experiment["metrics"][0]["event_id"]), "key": "buy"}
    first_seen = _first_decision(api, "r0")  # the world's decisions are at first_seen + i
    now = int(time.time() * 1000)
    sent = [
        # a new visitor in a, converting
        batch(
            "n1", [{**activated, "timestamp": now, "uuid": "dn1"}], {**decision, "variation_id": a}
        ),
        batch("n1", [{**buy, "timestamp": now + 1, "uuid": "cn1", "revenue": 7}]),
        # r2 (a, no conversion yet) converts
        batch("r2", [{**buy, "timestamp": now + 2, "uuid": "cr2", "revenue": 11}]),
        # r3 (b since first_seen + 3) turns out to have seen a first, at first_seen + 2
        batch(
            "r3",
            [{**activated, "timestamp": first_seen + 2, "uuid": "dr3-late"}],
            {**decision, "variation_id": a},
        ),
        batch("r3", [{**buy, "timestamp": now + 3, "uuid": "cr3", "revenue": 13}]),
        # r0's conversion sent again (i = 0: revenue 100)
        batch("r0", [{**buy, "timestamp": first_seen + 1000, "uuid": "c0", "revenue": 100}]),
    ]
    with httpx.Client(base_url=api.url) as events:
        for body in sent:
            assert events.post("/v1/events", content=json.dumps(body)).status_code == 204
    api.server.wait_loaded()

    with api.client(api.read) as r:
        doc = r.get(url).json()
    after = _reach_and_conversions(doc)
    # r1 (b) converted for 200 and r3 converted for 13: r3 now counts in a
    assert after[a] == (before[a][0] + 2, before[a][1] + 3, before[a][2] + 7 + 11 + 13)
    assert after[b] == (before[b][0] - 1, before[b][1], before[b][2])
    assert doc["reach"]["variations"][a]["multiple_exposures"] == 1

    with Catalog.open(api.database_url) as catalog:
        spec = counting_spec(catalog, experiment["id"])
    scratch = count(connect(api.server.data_dir / "lake"), spec)
    assert after == {
        v: (scratch.visitors[v], scratch.metrics[0][v].unique_conversions,
            scratch.metrics[1][v].revenue)
        for v in (a, b)
    }  # fmt: skip


def _first_decision(api: Api, visitor: str) -> int:
    con = connect(api.server.data_dir / "lake")
    [(ts,)] = con.execute(
        "SELECT min(timestamp_raw) FROM decisions WHERE visitor_id = ?", [visitor]
    ).fetchall()
    return int(ts)


def _scratch(api: Api, experiment_id: int) -> dict[str, list[tuple[int, int]]]:
    """Per variation, the visitors and each metric's (unique conversions, total conversions),
    counted from scratch with the experiment's settings now."""
    with Catalog.open(api.database_url) as catalog:
        spec = counting_spec(catalog, experiment_id)
    counts = count(connect(api.server.data_dir / "lake"), spec)
    return {
        v: [(counts.visitors[v], 0)]
        + [(m[v].unique_conversions, m[v].total_conversions) for m in counts.metrics]
        for v in spec.variation_ids
    }


def _served(doc: dict[str, Any]) -> dict[str, list[tuple[int, int]]]:
    return {
        v: [(doc["reach"]["variations"][v]["count"], 0)]
        + [(m["results"][v]["unique_conversions"], m["results"][v]["total_conversions"])
           for m in doc["metrics"]]
        for v in doc["reach"]["variations"]
    }  # fmt: skip


def test_results_after_a_metric_is_added_and_after_a_pause_equal_a_counting_from_scratch(
    api: Api,
) -> None:
    world = build_world(api, "Changed", lambda i: i % 3 == 0)
    experiment = world["experiment"]
    url = f"/v2/experiments/{experiment['id']}/results"
    with api.client(api.read) as r:
        assert r.get(url).status_code == 200  # counted, and its per-visitor state kept
    with api.client(api.write) as w:
        share = created(
            w.post(f"/v2/projects/{world['project_id']}/custom_events", json={"key": "share"})
        )
    now = int(time.time() * 1000)
    with httpx.Client(base_url=api.url) as events:
        for j, i in enumerate((0, 1, 4, 4, 7)):  # r4 shares twice
            event = {"entity_id": str(share["id"]), "key": "share",
                     "timestamp": now + j, "uuid": f"share-{j}"}  # fmt: skip
            body = batch(f"r{i}", [event])
            assert events.post("/v1/events", content=json.dumps(body)).status_code == 204
    api.server.wait_loaded()

    metrics = [
        *({k: m[k] for k in ("event_id", "aggregator", "field") if m.get(k)}
          for m in experiment["metrics"]),
        {"event_id": share["id"], "aggregator": "count"},
    ]  # fmt: skip
    with api.client(api.write) as w:
        w.patch(f"/v2/experiments/{experiment['id']}", json={"metrics": metrics})
    with api.client(api.read) as r:
        doc = r.get(url).json()
    assert len(doc["metrics"]) == 3
    served = _served(doc)
    assert served == _scratch(api, experiment["id"])
    assert sum(v[3][1] for v in served.values()) == 5  # every share counted, r4's twice

    with api.client(api.write) as w:
        w.patch(f"/v2/experiments/{experiment['id']}", params={"action": "pause"})
    with api.client(api.read) as r:
        doc = r.get(url).json()
    assert doc["running_intervals"][-1]["end"] is not None
    assert _served(doc) == _scratch(api, experiment["id"])
