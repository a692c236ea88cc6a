"""The datafile, judged by the official Optimizely SDK that will consume it."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable
from typing import Any

import mmh3
import pytest
from optimizely import optimizely
from optimizely.helpers import validator
from optimizely.helpers.sdk_settings import OptimizelySdkSettings

from liftlog.catalog.datafile import build_datafile, cumulative, datafile_bytes
from liftlog.catalog.models import Experiment, Project
from liftlog.catalog.store import Catalog
from liftlog.errors import NotFound

from .conftest import sdk_client

USERS = [f"user-{i}" for i in range(2000)]
US = {"type": "custom_attribute", "name": "country", "match": "exact", "value": "US"}
REQUIRED = {
    "version",
    "accountId",
    "projectId",
    "revision",
    "experiments",
    "groups",
    "events",
    "attributes",
    "audiences",
    "typedAudiences",
    "featureFlags",
    "rollouts",
    "integrations",
    "anonymizeIP",
    "botFiltering",
    "sdkKey",
    "environmentKey",
}


def bucket(user: str, parent_id: int) -> int:
    """The SDK's bucket, computed independently: MurmurHash3 x86_32 seed 1, 10,000 buckets."""
    return math.floor(mmh3.hash(f"{user}{parent_id}", seed=1, signed=False) / 2**32 * 10_000)


def expected(exp: Experiment, user: str, scale: int = 10_000) -> str | None:
    b, total = bucket(user, exp.id), 0
    for v in exp.variations:
        total += v.weight
        if b < total * scale // 10_000:
            return v.key
    return None


def create(catalog: Catalog, project: Project, key: str, **extra: Any) -> Experiment:
    body: dict[str, Any] = {
        "key": key,
        "variations": [{"key": "control", "weight": 5000}, {"key": "treatment", "weight": 5000}],
    }
    return catalog.experiments.create(project.id, {**body, **extra})


def datafile(catalog: Catalog, project: Project) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(datafile_bytes(catalog, project.sdk_key))
    return out


def test_datafile_has_every_key_and_passes_the_sdk_schema(
    catalog: Catalog, project: Project
) -> None:
    event = catalog.events.create(project.id, {"key": "purchase"})
    catalog.attributes.create(project.id, {"key": "country"})
    audience = catalog.audiences.create(project.id, {"name": "US", "conditions": ["or", US]})
    exp = create(
        catalog,
        project,
        "checkout",
        metrics=[{"event_id": event.id}],
        audience_conditions=["and", {"audience_id": audience.id}],
        status="running",
    )
    df = datafile(catalog, project)
    assert set(df) >= REQUIRED
    assert validator.is_datafile_valid(json.dumps(df))
    assert df["version"] == "4"
    assert df["revision"] == str(catalog.projects.get(project.id).revision)
    assert (df["projectId"], df["accountId"]) == (str(project.id), str(project.account_id))
    assert df["featureFlags"] == [] and df["rollouts"] == [] and df["integrations"] == []
    [entry] = df["experiments"]
    assert entry["id"] == str(exp.id) and entry["layerId"] == str(exp.campaign_id)
    assert entry["status"] == "Running"
    assert entry["audienceIds"] == [str(audience.id)]
    assert entry["audienceConditions"] == ["and", str(audience.id)]
    assert entry["trafficAllocation"] == [
        {"entityId": str(exp.variations[0].variation_id), "endOfRange": 5000},
        {"entityId": str(exp.variations[1].variation_id), "endOfRange": 10_000},
    ]
    assert all(v["id"].isdecimal() for v in entry["variations"])
    assert df["events"] == [
        {"id": str(event.id), "key": "purchase", "experimentIds": [str(exp.id)]}
    ]
    assert df["audiences"][0]["conditions"] == json.dumps(["or", US], separators=(",", ":"))
    assert df["typedAudiences"][0]["conditions"] == ["or", US]
    assert json.loads(datafile_bytes(catalog, project.sdk_key)) == df


def test_datafile_unknown_sdk_key_is_not_found(catalog: Catalog) -> None:
    with pytest.raises(NotFound):
        build_datafile(catalog, "missing")


@pytest.mark.parametrize(
    ("weights", "holdback"),
    [([5000, 5000], 0), ([1000, 2000, 7000], 0), ([2500, 2500], 0), ([5000, 5000], 2000)],
)
def test_datafile_buckets_like_the_weights_say(
    catalog: Catalog, project: Project, weights: list[int], holdback: int
) -> None:
    variations = [{"key": f"v{i}", "weight": w} for i, w in enumerate(weights)]
    exp = create(catalog, project, "e", variations=variations, holdback=holdback, status="running")
    client = sdk_client(catalog, project.sdk_key)
    seen = Counter()
    for user in USERS:
        got = client.get_variation("e", user)
        assert got == expected(exp, user, 10_000 - holdback)
        seen[got] += 1
    share_in = sum(weights) * (10_000 - holdback) / 10_000 / 10_000
    assert abs(sum(n for k, n in seen.items() if k) / len(USERS) - share_in) < 0.05
    client.close()


@pytest.mark.parametrize("status", ["paused", "not_started"])
def test_datafile_only_running_experiments_get_traffic(
    catalog: Catalog, project: Project, status: str
) -> None:
    exp = create(catalog, project, "e", status="running")
    if status == "paused":
        catalog.experiments.set_status(exp.id, "paused")
    else:
        exp = create(catalog, project, "e2")
    entry = next(e for e in datafile(catalog, project)["experiments"] if e["id"] == str(exp.id))
    assert entry["status"] == {"paused": "Paused", "not_started": "Not started"}[status]
    client = sdk_client(catalog, project.sdk_key)
    assert all(client.get_variation(exp.key, u) is None for u in USERS[:200])
    client.close()


def test_datafile_leaves_archived_experiments_out(catalog: Catalog, project: Project) -> None:
    event = catalog.events.create(project.id, {"key": "buy"})
    exp = create(catalog, project, "e", status="running", metrics=[{"event_id": event.id}])
    catalog.experiments.set_status(exp.id, "archived")
    df = datafile(catalog, project)
    assert df["experiments"] == []
    assert df["events"][0]["experimentIds"] == []
    sdk_client(catalog, project.sdk_key).close()


def test_datafile_group_makes_experiments_mutually_exclusive(
    catalog: Catalog, project: Project
) -> None:
    a = create(catalog, project, "a", status="running")
    b = create(catalog, project, "b", status="running")
    free = create(catalog, project, "free", status="running")
    group = catalog.groups.create(
        project.id,
        {
            "name": "g",
            "entities": [
                {"id": a.id, "kind": "Experiment", "weight": 3000},
                {"id": b.id, "kind": "Experiment", "weight": 7000},
            ],
        },
    )
    df = datafile(catalog, project)
    assert [e["key"] for e in df["experiments"]] == ["free"]
    [g] = df["groups"]
    assert g["policy"] == "random" and [e["key"] for e in g["experiments"]] == ["a", "b"]
    assert g["trafficAllocation"] == [
        {"entityId": str(a.id), "endOfRange": 3000},
        {"entityId": str(b.id), "endOfRange": 10_000},
    ]
    client = sdk_client(catalog, project.sdk_key)
    in_a = in_b = 0
    for user in USERS:
        va, vb = client.get_variation("a", user), client.get_variation("b", user)
        assert va is None or vb is None
        group_bucket = bucket(user, group.id)
        assert (va is not None) == (group_bucket < 3000)
        assert (vb is not None) == (group_bucket >= 3000)
        assert client.get_variation("free", user) == expected(free, user)
        in_a += va is not None
        in_b += vb is not None
    assert in_a + in_b == len(USERS)
    assert 0.25 < in_a / len(USERS) < 0.35
    client.close()
    # Archiving a member leaves a hole, so the other member keeps exactly its visitors.
    catalog.experiments.set_status(a.id, "archived")
    allocation = datafile(catalog, project)["groups"][0]["trafficAllocation"]
    assert allocation[0] == {"entityId": "", "endOfRange": 3000}
    client = sdk_client(catalog, project.sdk_key)
    for user in USERS[:300]:
        assert (client.get_variation("b", user) is not None) == (bucket(user, group.id) >= 3000)
    client.close()


def test_datafile_audiences_and_whitelist_reach_the_sdk(catalog: Catalog, project: Project) -> None:
    catalog.attributes.create(project.id, {"key": "country"})
    us = catalog.audiences.create(project.id, {"name": "US", "conditions": ["or", US]})
    adults = catalog.audiences.create(
        project.id,
        {
            "name": "adults",
            "conditions": [
                "and",
                {"type": "custom_attribute", "name": "age", "match": "ge", "value": 18},
            ],
        },
    )
    create(
        catalog,
        project,
        "e",
        status="running",
        audience_conditions=json.dumps(
            ["and", {"audience_id": us.id}, ["not", {"audience_id": adults.id}]]
        ),
        whitelist=[{"user_id": "qa", "variation_key": "treatment"}],
    )
    client = sdk_client(catalog, project.sdk_key)
    cases: list[tuple[dict[str, Any], bool]] = [
        ({"country": "US", "age": 12}, True),
        ({"country": "US", "age": 30}, False),
        ({"country": "CA", "age": 12}, False),
        ({}, False),
    ]
    for attributes, allowed in cases:
        got = [client.get_variation("e", u, attributes) for u in USERS[:50]]
        assert all((g is not None) == allowed for g in got), attributes
    assert client.get_variation("e", "qa", {}) == "treatment"
    client.close()


def test_datafile_events_can_be_tracked(catalog: Catalog, project: Project) -> None:
    event = catalog.events.create(project.id, {"key": "purchase"})
    create(catalog, project, "e", status="running", metrics=[{"event_id": event.id}])
    sent: list[Any] = []

    class Capture:
        def dispatch_event(self, ev: Any) -> None:
            sent.append(ev)

    client = optimizely.Optimizely(
        datafile=datafile_bytes(catalog, project.sdk_key).decode(),
        event_dispatcher=Capture(),
        settings=OptimizelySdkSettings(odp_disabled=True),
    )
    assert client.activate("e", "user-1") is not None
    client.track("purchase", "user-1", event_tags={"revenue": 1299})
    client.close()
    snapshots = [ev.params["visitors"][0]["snapshots"][0] for ev in sent]
    experiment_id = str(catalog.experiments.list(project.id).items[0].id)
    assert snapshots[0]["decisions"][0]["experiment_id"] == experiment_id
    assert snapshots[1]["events"][0]["entity_id"] == str(event.id)


def test_datafile_revision_moves_exactly_when_the_datafile_changes(
    catalog: Catalog, project: Project
) -> None:
    def content() -> dict[str, Any]:
        df = datafile(catalog, project)
        return {k: v for k, v in df.items() if k != "revision"}

    state: dict[str, Any] = {}

    def step_event() -> None:
        state["event"] = catalog.events.create(project.id, {"key": "buy"}).id

    def step_experiment() -> None:
        state["exp"] = create(catalog, project, "e").id

    steps: list[tuple[str, Callable[[], object], bool]] = [
        ("create event", step_event, True),
        ("create experiment", step_experiment, True),
        (
            "rename experiment",
            lambda: catalog.experiments.update(state["exp"], {"name": "N"}),
            False,
        ),
        (
            "describe event",
            lambda: catalog.events.update(state["event"], {"description": "d"}),
            False,
        ),
        (
            "add metric",
            lambda: catalog.experiments.update(
                state["exp"], {"metrics": [{"event_id": state["event"]}]}
            ),
            True,
        ),
        ("start", lambda: catalog.experiments.set_status(state["exp"], "running"), True),
        (
            "reweigh",
            lambda: catalog.experiments.update(
                state["exp"],
                {
                    "variations": [
                        {"key": "control", "weight": 9000},
                        {"key": "treatment", "weight": 1000},
                    ]
                },
            ),
            True,
        ),
        (
            "same weights",
            lambda: catalog.experiments.update(
                state["exp"],
                {
                    "variations": [
                        {"key": "control", "weight": 9000},
                        {"key": "treatment", "weight": 1000},
                    ]
                },
            ),
            False,
        ),
        ("attribute", lambda: catalog.attributes.create(project.id, {"key": "plan"}), True),
        (
            "list",
            lambda: catalog.lists.create(
                project.id, {"name": "l", "list_type": "id", "key_field": "k"}
            ),
            False,
        ),
        ("token", lambda: catalog.tokens.create("t", "read"), False),
        (
            "bot filtering",
            lambda: catalog.projects.update(project.id, {"bot_filtering": True}),
            True,
        ),
        ("pause", lambda: catalog.experiments.set_status(state["exp"], "paused"), True),
    ]
    before, rev = content(), catalog.projects.get(project.id).revision
    for name, step, changes in steps:
        step()
        after, new_rev = content(), catalog.projects.get(project.id).revision
        assert (after != before) == changes, name
        assert (new_rev > rev) == changes, name
        assert datafile(catalog, project)["revision"] == str(new_rev)
        before, rev = after, new_rev


def test_cumulative_ends_do_not_drift() -> None:
    ends = [t.end_of_range for t in cumulative([("a", 3333), ("b", 3333), ("c", 3334)], 9_999)]
    assert ends == [3332, 6665, 9999]
    assert [t.end_of_range for t in cumulative([("a", 0), ("b", 10_000)])] == [0, 10_000]
