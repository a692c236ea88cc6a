"""An experiment with known traffic, made through the management API and the Event API."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.api.conftest import Api, created


def batch(visitor: str, events: list[dict[str, Any]], decision: dict[str, Any] | None = None,
           country: str | None = None) -> dict[str, Any]:  # fmt: skip
    snapshot: dict[str, Any] = {"events": events}
    if decision is not None:
        snapshot["decisions"] = [decision]
    attributes = [] if country is None else [
        {"entity_id": "1", "key": "country", "type": "custom", "value": country}
    ]  # fmt: skip
    return {
        "account_id": "1",
        "visitors": [{"visitor_id": visitor, "attributes": attributes, "snapshots": [snapshot]}],
    }


def build_world(api: Api, project: str, converts: Callable[[int], bool]) -> dict[str, Any]:
    """40 visitors over variations a and b (NL, then DE), conversions for ``converts(i)``, one
    conversion before its visitor's decision, one from a visitor never decided; fed through the
    Event API and loaded by the server's own loader."""
    with api.client(api.write) as w:
        pid = created(w.post("/v2/projects", json={"name": project}))["id"]
        purchase = created(w.post(f"/v2/projects/{pid}/custom_events", json={"key": "buy"}))
        experiment = created(
            w.post(
                "/v2/experiments",
                params={"action": "start"},
                json={
                    "project_id": pid,
                    "key": "checkout",
                    "variations": [{"key": "a", "weight": 5000}, {"key": "b", "weight": 5000}],
                    "metrics": [
                        {"event_id": purchase["id"], "aggregator": "unique"},
                        {"event_id": purchase["id"], "aggregator": "sum", "field": "revenue"},
                    ],
                },
            )
        )
    [a, b] = [str(v["variation_id"]) for v in experiment["variations"]]
    decision = {"campaign_id": str(experiment["campaign_id"]),
                "experiment_id": str(experiment["id"])}  # fmt: skip
    now = int(time.time() * 1000)
    sent = []
    for i in range(40):
        variation = a if i % 2 == 0 else b
        visitor = f"r{i}"
        sent.append(batch(visitor, [
            {"entity_id": decision["campaign_id"], "key": "campaign_activated",
             "timestamp": now + i, "uuid": f"d{i}"}],
            {**decision, "variation_id": variation}, country="NL" if i < 20 else "DE"))  # fmt: skip
        if converts(i):
            sent.append(batch(visitor, [{"entity_id": str(purchase["id"]), "key": "buy",
                                          "timestamp": now + 1000 + i, "uuid": f"c{i}",
                                          "revenue": 100 * (i % 3 + 1)}]))  # fmt: skip
    # one conversion before its visitor's decision, and a visitor who was never decided
    sent.append(batch("r0", [{"entity_id": str(purchase["id"]), "key": "buy",
                               "timestamp": now - 1, "uuid": "too-early"}]))  # fmt: skip
    sent.append(batch("stranger", [{"entity_id": str(purchase["id"]), "key": "buy",
                                     "timestamp": now + 5, "uuid": "nobody"}]))  # fmt: skip
    with httpx.Client(base_url=api.url) as events:
        for body in sent:
            assert events.post("/v1/events", content=json.dumps(body)).status_code == 204
    api.server.wait_loaded()
    return {"project_id": pid, "experiment": experiment, "a": a, "b": b}


def send_conversion(api: Api, world: dict[str, Any], visitor: str, uuid: str) -> None:
    """A conversion of the world's first metric, 2 s from now, loaded before this returns."""
    event_id = world["experiment"]["metrics"][0]["event_id"]
    timestamp = int(time.time() * 1000) + 2000
    event = {"entity_id": str(event_id), "key": "buy", "uuid": uuid, "timestamp": timestamp}
    body = batch(visitor, [event])
    with httpx.Client(base_url=api.url) as events:
        assert events.post("/v1/events", content=json.dumps(body)).status_code == 204
    api.server.wait_loaded()
