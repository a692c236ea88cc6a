"""The official Optimizely Python SDK sends to a real liftlog; each event lands in the lake once."""

from __future__ import annotations

import json
import queue
import threading
from collections import Counter
from typing import Any

import httpx
from optimizely import optimizely
from optimizely.event.event_processor import BatchEventProcessor
from optimizely.helpers.sdk_settings import OptimizelySdkSettings

from tests.lake import rows
from tests.server import Server

DATAFILE: dict[str, Any] = {
    "version": "4",
    "accountId": "12001",
    "projectId": "111001",
    "revision": "7",
    "anonymizeIP": True,
    "botFiltering": False,
    "attributes": [{"id": "111094", "key": "country"}],
    "audiences": [],
    "groups": [],
    "events": [{"id": "30001", "key": "purchase", "experimentIds": ["40001"]}],
    "experiments": [
        {
            "id": "40001",
            "key": "ab_test",
            "layerId": "50001",
            "status": "Running",
            "audienceIds": [],
            "forcedVariations": {},
            "variations": [{"id": "60001", "key": "control"}, {"id": "60002", "key": "treatment"}],
            "trafficAllocation": [
                {"entityId": "60001", "endOfRange": 5000},
                {"entityId": "60002", "endOfRange": 10000},
            ],
        }
    ],
    "featureFlags": [],
    "rollouts": [],
    "integrations": [],
}


class LiftlogDispatcher:
    """What a user writes to point the SDK at liftlog: post ``event.params`` to our URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sent: list[dict[str, Any]] = []
        self.statuses: Counter[int] = Counter()
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=10)

    def dispatch_event(self, event: Any) -> None:
        response = self._client.post(
            self.url, content=json.dumps(event.params), headers=event.headers
        )
        with self._lock:
            self.statuses[response.status_code] += 1
            if response.status_code == 204:
                self.sent.append(event.params)

    def close(self) -> None:
        self._client.close()


def _uuids(payloads: list[dict[str, Any]], activation: bool) -> list[str]:
    return [
        e["uuid"]
        for p in payloads
        for v in p["visitors"]
        for s in v["snapshots"]
        for e in s["events"]
        if (e.get("key") == "campaign_activated") == activation
    ]


def test_official_sdk_batch_processor_events_land_once(server: Server) -> None:
    dispatcher = LiftlogDispatcher(f"{server.url}/v1/events")
    # The SDK's default queue holds 1,000 events and drops the rest; 2,000 are queued here.
    processor = BatchEventProcessor(
        dispatcher,
        event_queue=queue.Queue(maxsize=5000),
        batch_size=50,
        flush_interval=1,
        start_on_init=True,
    )
    client = optimizely.Optimizely(
        datafile=json.dumps(DATAFILE),
        event_dispatcher=dispatcher,
        event_processor=processor,
        settings=OptimizelySdkSettings(odp_disabled=True),
    )
    variations: Counter[str | None] = Counter()
    for i in range(1000):
        user = f"user-{i}"
        variations[client.activate("ab_test", user, {"country": "NL"})] += 1
        client.track("purchase", user, {"country": "NL"}, {"revenue": 100 + i, "value": 1.5})
    client.close()
    dispatcher.close()

    assert dispatcher.statuses == Counter({204: 40})  # 2,000 events in batches of 50
    assert set(variations) == {"control", "treatment"}
    server.wait_loaded()

    decisions = rows(server.data_dir, "decisions")
    conversions = rows(server.data_dir, "conversions")
    assert sorted(r["uuid"] for r in decisions) == sorted(_uuids(dispatcher.sent, True))
    assert sorted(r["uuid"] for r in conversions) == sorted(_uuids(dispatcher.sent, False))
    assert len(decisions) == len({r["uuid"] for r in decisions}) == 1000
    assert len(conversions) == len({r["uuid"] for r in conversions}) == 1000

    by_variation = Counter(r["variation_key"] for r in decisions)
    assert by_variation == variations
    assert {(r["campaign_id"], r["experiment_id"]) for r in decisions} == {("50001", "40001")}
    assert sorted(r["revenue"] for r in conversions) == list(range(100, 1100))
    assert {r["event_name"] for r in conversions} == {"purchase"}
    assert {r["client_engine"] for r in decisions} == {"python-sdk"}
    assert all(r["problems"] == [] for r in decisions + conversions)
