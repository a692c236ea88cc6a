"""The official Optimizely SDK, polling liftlog's datafile, on SQLite and on PostgreSQL.

One server per database serves every test here. Its catalog is built through the REST API:
experiments with even and uneven weights, one behind an audience, two in an exclusion group, one
for audience verdicts and one to pause.
"""

from __future__ import annotations

import itertools
import json
import queue
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from optimizely import optimizely
from optimizely.config_manager import PollingConfigManager
from optimizely.event.event_processor import BatchEventProcessor
from optimizely.helpers.sdk_settings import OptimizelySdkSettings

from liftlog.rules.decision import DatafileIndex, variation_for
from liftlog.wire.datafile import decode_datafile
from tests.api.conftest import Api, created, start_api
from tests.lake import rows
from tests.pg import PostgresCluster

HALVES = [{"key": "control", "weight": 5000}, {"key": "treatment", "weight": 5000}]
EXPERIMENTS = ("even", "uneven", "targeted", "grouped_a", "grouped_b")
_databases = itertools.count()


def leaf(name: str, match: str, value: Any = None) -> dict[str, Any]:
    out = {"type": "custom_attribute", "name": name, "match": match}
    if match != "exists":
        out["value"] = value
    return out


PRO_ADULTS = ["and", leaf("plan", "exact", "pro"), leaf("age", "ge", 18)]
VERDICTS = [
    "and",
    [
        "or",
        PRO_ADULTS,
        leaf("email", "substring", "@example.com"),
        leaf("app", "semver_ge", "2.1.0"),
        leaf("beta", "exact", True),
        ["and", leaf("score", "gt", 0.5), leaf("score", "le", 1)],
    ],
    ["not", leaf("banned", "exists")],
]
# (attributes, in the audience?) - written by hand from Optimizely's documented rules.
VERDICT_CASES: list[tuple[dict[str, Any], bool]] = [
    ({}, False),
    ({"plan": "pro", "age": 18}, True),
    ({"plan": "pro", "age": 17.9}, False),
    ({"plan": "pro", "age": "18"}, False),
    ({"plan": "pro", "age": True}, False),
    ({"plan": "pro", "age": 2**60}, False),
    ({"plan": "Pro", "age": 30}, False),
    ({"email": "ann@example.com"}, True),
    ({"email": "ann@example.org"}, False),
    ({"email": 5}, False),
    ({"app": "2.1.0"}, True),
    ({"app": "2.10.0"}, True),
    ({"app": "2.0.9"}, False),
    ({"app": "2.1.0-beta"}, False),
    ({"beta": True}, True),
    ({"beta": "true"}, False),
    ({"beta": True, "banned": "yes"}, False),
    ({"beta": True, "banned": None}, True),
    ({"score": 0.75}, True),
    ({"score": 0.5}, False),
    ({"score": 1}, True),
]


@dataclass
class World:
    api: Api
    project: dict[str, Any]
    experiments: dict[str, dict[str, Any]]
    purchase: dict[str, Any]

    @property
    def sdk_key(self) -> str:
        return str(self.project["sdk_key"])


def build(api: Api) -> World:
    with api.client(api.write) as w:
        project = created(w.post("/v2/projects", json={"name": "SDK parity"}))
        pid = project["id"]
        for key in ("plan", "age", "email", "app", "beta", "score", "banned"):
            created(w.post("/v2/attributes", json={"project_id": pid, "key": key}))
        purchase = created(w.post(f"/v2/projects/{pid}/custom_events", json={"key": "purchase"}))

        def audience(name: str, tree: list[Any]) -> int:
            body = {"project_id": pid, "name": name, "conditions": json.dumps(tree)}
            return int(created(w.post("/v2/audiences", json=body))["id"])

        pro_adults, verdicts = audience("Pro adults", PRO_ADULTS), audience("Verdicts", VERDICTS)
        specs: dict[str, dict[str, Any]] = {
            "even": {"variations": HALVES, "metrics": [{"event_id": purchase["id"]}]},
            "uneven": {
                "variations": [
                    {"key": "a", "weight": 1000},
                    {"key": "b", "weight": 2500},
                    {"key": "c", "weight": 6000},
                ]
            },
            "targeted": {
                "variations": HALVES,
                "audience_conditions": json.dumps(["and", {"audience_id": pro_adults}]),
            },
            "grouped_a": {"variations": HALVES},
            "grouped_b": {"variations": [{"key": "x", "weight": 3000},
                                         {"key": "y", "weight": 7000}]},
            "verdicts": {
                "variations": [{"key": "in", "weight": 10000}],
                "audience_conditions": json.dumps(["and", {"audience_id": verdicts}]),
            },
            "pausable": {"variations": [{"key": "on", "weight": 10000}]},
        }  # fmt: skip
        experiments = {
            key: created(
                w.post(
                    "/v2/experiments",
                    params={"action": "start"},
                    json={"project_id": pid, "key": key, **spec},
                )
            )
            for key, spec in specs.items()
        }
        entities = [
            {"id": experiments[k]["id"], "kind": "Experiment", "weight": 4500}
            for k in ("grouped_a", "grouped_b")
        ]
        created(w.post("/v2/groups", json={"project_id": pid, "name": "G", "entities": entities}))
    return World(api, project, experiments, purchase)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    database_url = None
    if request.param == "postgresql":
        cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
        database_url = cluster.create_database(f"sdk_{next(_databases)}")
    api = start_api(tmp_path_factory.mktemp(request.param) / "data", database_url)
    try:
        yield build(api)
    finally:
        api.server.stop()


class Dispatcher:
    """Posts what the SDK dispatches to liftlog's Event API, as a user's dispatcher would."""

    def __init__(self, url: str | None) -> None:
        self.url = url
        self.statuses: Counter[int] = Counter()
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=10)

    def dispatch_event(self, event: Any) -> None:
        if self.url is None:
            return
        response = self._client.post(
            self.url, content=json.dumps(event.params), headers=event.headers
        )
        with self._lock:
            self.statuses[response.status_code] += 1

    def close(self) -> None:
        self._client.close()


def sdk(world: World, dispatcher: Dispatcher | None = None) -> optimizely.Optimizely:
    manager = PollingConfigManager(
        sdk_key=world.sdk_key,
        url_template=f"{world.api.url}/datafiles/{{sdk_key}}.json",
        update_interval=1,
        blocking_timeout=5,
    )
    dispatcher = dispatcher or Dispatcher(None)
    client = optimizely.Optimizely(
        config_manager=manager,
        event_dispatcher=dispatcher,
        # Batches of 50, flushed every second; close() sends what is left.
        event_processor=BatchEventProcessor(
            dispatcher,
            event_queue=queue.Queue(maxsize=5000),
            batch_size=50,
            flush_interval=1,
            start_on_init=True,
        ),
        settings=OptimizelySdkSettings(odp_disabled=True),
    )
    assert client.config_manager.get_config() is not None, "the SDK did not load the datafile"
    return client


def liftlog_index(world: World) -> DatafileIndex:
    body = httpx.get(f"{world.api.url}/datafiles/{world.sdk_key}.json").content
    return DatafileIndex(decode_datafile(body))


def sdk_revision(client: optimizely.Optimizely) -> str:
    config = client.config_manager.get_config()
    assert config is not None
    return str(config.get_revision())


def test_sdk_variations_equal_liftlogs_for_10000_users(world: World) -> None:
    client = sdk(world)
    try:
        index = liftlog_index(world)
        assert sdk_revision(client) == index.datafile.revision
        rng = random.Random(20240601)
        seen: dict[str, Counter[str | None]] = {key: Counter() for key in EXPERIMENTS}
        for i in range(10_000):
            user = f"user-{i}"
            attributes: dict[str, Any] = {"age": rng.randint(10, 70)}
            if rng.random() < 0.8:
                attributes["plan"] = rng.choice(["pro", "free"])
            for key in EXPERIMENTS:
                theirs = client.get_variation(key, user, attributes)
                decision = variation_for(index, key, user, attributes)
                ours = None if decision.variation is None else decision.variation.key
                assert theirs == ours, (key, user, attributes)
                seen[key][ours] += 1
    finally:
        client.close()
    # Every path was exercised: both arms, no-variation traffic, the audience and the group.
    assert set(seen["even"]) == {"control", "treatment"}
    assert set(seen["uneven"]) == {"a", "b", "c", None}
    assert 400 < seen["uneven"][None] < 600  # 5% of traffic is in no variation
    assert 2_000 < seen["targeted"][None] < 8_000 and seen["targeted"]["control"] > 0
    assert seen["grouped_a"][None] > 5_000 and seen["grouped_b"][None] > 5_000
    in_both = seen["grouped_a"]["control"] + seen["grouped_a"]["treatment"]
    assert 4_000 < in_both < 5_000


@pytest.mark.parametrize(("attributes", "expected"), VERDICT_CASES)
def test_sdk_audience_verdicts_equal_liftlogs(
    world: World, attributes: dict[str, Any], expected: bool
) -> None:
    client = sdk(world)
    try:
        theirs = client.get_variation("verdicts", "visitor", attributes) is not None
    finally:
        client.close()
    ours = variation_for(liftlog_index(world), "verdicts", "visitor", attributes).variation
    assert theirs == (ours is not None) == expected


def test_sdk_sees_a_pause_made_through_the_api(world: World) -> None:
    client = sdk(world)
    try:
        assert client.get_variation("pausable", "visitor-1") == "on"
        before = int(sdk_revision(client))
        experiment = world.experiments["pausable"]
        with world.api.client(world.api.write) as w:
            paused = w.patch(f"/v2/experiments/{experiment['id']}", params={"action": "pause"})
            assert paused.json()["status"] == "paused"
        deadline = time.monotonic() + 15
        while client.get_variation("pausable", "visitor-1") is not None:
            assert time.monotonic() < deadline, "the SDK never saw the pause"
            time.sleep(0.2)
        assert int(sdk_revision(client)) > before
        assert client.get_variation("even", "visitor-1") is not None  # the rest still runs
    finally:
        client.close()


def test_sdk_events_land_in_the_lake_with_catalog_ids(world: World) -> None:
    dispatcher = Dispatcher(f"{world.api.url}/v1/events")
    client = sdk(world, dispatcher)
    chosen: dict[str, str] = {}
    try:
        for i in range(200):
            user = f"buyer-{i}"
            variation = client.activate("even", user, {"plan": "pro"})
            assert variation is not None
            chosen[user] = variation
            client.track("purchase", user, {"plan": "pro"}, {"revenue": 250})
    finally:
        client.close()  # flushes the SDK's event batches
        dispatcher.close()
    assert dispatcher.statuses == Counter({204: 8})  # 400 events in batches of 50
    world.api.server.wait_loaded()

    experiment = world.experiments["even"]
    variation_ids = {v["key"]: str(v["variation_id"]) for v in experiment["variations"]}
    decisions = [
        r for r in rows(world.api.server.data_dir, "decisions") if r["visitor_id"] in chosen
    ]
    assert len(decisions) == 200
    for row in decisions:
        assert row["project_id"] == str(world.project["id"])
        assert row["account_id"] == str(world.project["account_id"])
        assert row["experiment_id"] == str(experiment["id"])
        assert row["campaign_id"] == str(experiment["campaign_id"])
        assert row["variation_id"] == variation_ids[chosen[row["visitor_id"]]]
        assert row["problems"] == []
    conversions = [
        r for r in rows(world.api.server.data_dir, "conversions") if r["visitor_id"] in chosen
    ]
    assert len(conversions) == 200
    assert {r["entity_id"] for r in conversions} == {str(world.purchase["id"])}
    assert {r["event_name"] for r in conversions} == {"purchase"}
    assert {r["revenue"] for r in conversions} == {250}


def test_world_fixture_is_not_empty(world: World) -> None:
    """Guards the parity tests above against a catalog that silently lost its experiments."""
    index = liftlog_index(world)
    assert set(EXPERIMENTS) <= set(index.experiments_by_key)
    assert {g.id for g in index.datafile.groups} and index.datafile.typed_audiences
