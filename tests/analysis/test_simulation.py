"""End to end: simulated visitors go through the official SDK into a running liftlog.

Visitors with known conversion rates and revenue are activated and tracked with the official
`optimizely-sdk`; the simulator also resends some requests (duplicates), sends conversions
before decisions, and events outside the experiment's running period. The counts liftlog
computes must equal the simulator's own ground truth exactly, and every event the simulator
knows should not count must be explained with the right reason.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections import Counter, defaultdict
from typing import Any

import httpx
from optimizely import optimizely
from optimizely.event.event_processor import ForwardingEventProcessor
from optimizely.helpers.sdk_settings import OptimizelySdkSettings

from liftlog.analysis.counting import count
from liftlog.analysis.explain import timeline
from liftlog.analysis.sources import connect
from liftlog.rules.counting import Aggregator, CountingSpec, MetricSpec, Reason
from tests.server import Server
from tests.test_official_sdk import DATAFILE

H = 3_600_000
RATES = {"control": (0.10, 1500), "treatment": (0.16, 2000)}  # conversion rate, mean revenue
IDS = {"control": "60001", "treatment": "60002"}


class Dispatcher:
    """Posts what the SDK sends; resends some requests, as a flaky network would."""

    def __init__(self, url: str, rng: random.Random) -> None:
        self.client = httpx.Client(timeout=10)
        self.url = url
        self.rng = rng
        self.resent: list[dict[str, Any]] = []

    def post(self, params: dict[str, Any]) -> None:
        body = json.dumps(params)
        assert self.client.post(self.url, content=body).status_code == 204
        if self.rng.random() < 0.05:
            assert self.client.post(self.url, content=body).status_code == 204
            self.resent.append(params)

    def dispatch_event(self, event: Any) -> None:
        self.post(event.params)


def _event(visitor: str, ts: int, key: str, uid: str, **extra: Any) -> dict[str, Any]:
    snapshot: dict[str, Any] = {"events": [{"key": key, "timestamp": ts, "uuid": uid, **extra}]}
    if key == "campaign_activated":
        snapshot["decisions"] = [
            {"campaign_id": "50001", "experiment_id": "40001", "variation_id": extra.pop("v")}
        ]
        snapshot["events"][0].pop("v")
    return {"account_id": "12001", "visitors": [{"visitor_id": visitor, "snapshots": [snapshot]}]}


def test_simulated_run_counts_equal_ground_truth(server: Server) -> None:
    rng = random.Random(20261124)
    start = int(time.time() * 1000) - 60_000
    dispatcher = Dispatcher(f"{server.url}/v1/events", rng)
    client = optimizely.Optimizely(
        datafile=json.dumps(DATAFILE),
        event_dispatcher=dispatcher,
        event_processor=ForwardingEventProcessor(dispatcher),
        settings=OptimizelySdkSettings(odp_disabled=True),
    )
    visitors: Counter[str] = Counter()
    converters: Counter[str] = Counter()
    conversions: Counter[str] = Counter()
    revenue: Counter[str] = Counter()
    expected_reasons: dict[str, list[tuple[str, Reason]]] = defaultdict(list)

    for i in range(400):
        user = f"sim-{i}"
        if rng.random() < 0.1:  # a conversion before the visitor's first decision
            early = f"early-{i}"
            dispatcher.post(
                _event(user, int(time.time() * 1000) - 5_000, "purchase", early,
                       entity_id="30001", revenue=999)
            )  # fmt: skip
            expected_reasons[user].append((early, Reason.BEFORE_FIRST_DECISION))
        variation = client.activate("ab_test", user)
        assert variation in RATES
        visitors[variation] += 1
        rate, mean_revenue = RATES[variation]
        if rng.random() < rate:
            converters[variation] += 1
            for _ in range(1 + (rng.random() < 0.3)):
                cents = rng.randint(mean_revenue // 2, mean_revenue * 3 // 2)
                client.track("purchase", user, None, {"revenue": cents})
                conversions[variation] += 1
                revenue[variation] += cents
        if rng.random() < 0.05:  # a conversion long after the experiment stopped
            late = f"late-{i}"
            dispatcher.post(
                _event(user, start + 48 * H, "purchase", late, entity_id="30001", revenue=5)
            )
            expected_reasons[user].append((late, Reason.OUTSIDE_BOUNDS))
    for i in range(20):  # visitors decided before the experiment started
        user = f"before-{i}"
        uid = str(uuid.UUID(int=rng.getrandbits(128)))
        dispatcher.post(
            _event(user, start - H, "campaign_activated", uid, entity_id="50001", v="60001")
        )
        expected_reasons[user].append((uid, Reason.OUTSIDE_BOUNDS))
    client.close()
    dispatcher.client.close()
    server.wait_loaded()

    spec = CountingSpec(
        experiment_id="40001",
        campaign_id="50001",
        variation_ids=("60001", "60002"),
        intervals=((start, start + 24 * H),),
        metrics=(
            MetricSpec("30001", "purchase", Aggregator.UNIQUE),
            MetricSpec("30001", "purchase", Aggregator.COUNT),
            MetricSpec("30001", "purchase", Aggregator.SUM, "revenue"),
        ),
    )
    con = connect(server.data_dir / "lake")
    counts = count(con, spec)
    for name, vid in IDS.items():
        assert counts.visitors[vid] == visitors[name]
        assert counts.metrics[0][vid].sum == converters[name]
        assert counts.metrics[1][vid].sum == conversions[name]
        assert counts.metrics[2][vid].sum == revenue[name]
        assert counts.multiple_exposures[vid] == 0
    assert sum(visitors.values()) == 400

    for user, expected in expected_reasons.items():
        got = {(d.event.uuid, d.reason) for d in timeline(con, user, spec)}
        assert set(expected) <= got, user
    for params in dispatcher.resent:
        for visitor in params["visitors"]:
            [event] = visitor["snapshots"][0]["events"]
            reasons = [
                d.reason
                for d in timeline(con, visitor["visitor_id"], spec)
                if d.event.uuid == event["uuid"]
            ]
            assert reasons.count(Reason.DUPLICATE) == 1 and len(reasons) == 2
