from __future__ import annotations

from typing import Any

import pytest

from liftlog.catalog.models import Project
from liftlog.catalog.store import Catalog
from liftlog.errors import Conflict, InvalidInput, LiftlogError, NotFound, Unprocessable

from .conftest import START_MS, Clock


def body(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "key": "checkout",
        "variations": [{"key": "control", "weight": 5000}, {"key": "treatment", "weight": 5000}],
    }
    return {**base, **overrides}


def paths(error: LiftlogError) -> list[str]:
    return [d.path for d in error.details]


def test_experiments_create_returns_rest_shape(catalog: Catalog, project: Project) -> None:
    event = catalog.events.create(project.id, {"key": "purchase"})
    exp = catalog.experiments.create(
        project.id,
        body(
            name="Checkout",
            description="one-page checkout",
            holdback=1000,
            attribution_window_seconds=86_400,
            metrics=[
                {"event_id": event.id, "aggregator": "sum", "field": "revenue"},
                {"event_id": event.id, "winning_direction": "decreasing"},
            ],
        ),
    )
    out = exp.to_dict()
    assert out["status"] == "not_started"
    assert out["type"] == "a/b"
    assert out["audience_conditions"] == "everyone"
    assert [v["key"] for v in out["variations"]] == ["control", "treatment"]
    assert [v["weight"] for v in out["variations"]] == [5000, 5000]
    assert out["metrics"][0] == {
        "event_id": event.id,
        "aggregator": "sum",
        "field": "revenue",
        "scope": "visitor",
        "winning_direction": "increasing",
    }
    assert out["metrics"][1]["aggregator"] == "unique"
    assert "field" not in out["metrics"][1]
    assert out["attribution_window_seconds"] == 86_400
    assert exp.metrics[0].event_id == event.id  # the first metric is the primary one
    assert catalog.experiments.get(exp.id) == exp


@pytest.mark.parametrize(
    ("overrides", "error", "path"),
    [
        (
            {"variations": [{"key": "a", "weight": 5000}, {"key": "b", "weight": "x"}]},
            InvalidInput,
            "$.variations[1].weight",
        ),
        (
            {"variations": [{"key": "a", "weight": 5000}, {"key": "b", "weight": 5001}]},
            Unprocessable,
            "$.variations",
        ),
        (
            {"variations": [{"key": "a", "weight": 5000}, {"key": "b", "weight": 10_001}]},
            Unprocessable,
            "$.variations[1].weight",
        ),
        (
            {"variations": [{"key": "a", "weight": 1}, {"key": "a", "weight": 1}]},
            Unprocessable,
            "$.variations[1].key",
        ),
        ({"variations": [{"weight": 1}]}, InvalidInput, "$.variations[0].key"),
        ({"variations": []}, Unprocessable, "$.variations"),
        ({"variations": None}, InvalidInput, "$.variations"),
        ({"key": "has space"}, Unprocessable, "$.key"),
        ({"key": None}, InvalidInput, "$.key"),
        ({"holdback": 10_001}, Unprocessable, "$.holdback"),
        ({"status": "launched"}, Unprocessable, "$.status"),
        ({"type": "multivariate"}, Unprocessable, "$.type"),
        ({"metrics": [{"event_id": 1, "aggregator": "sum"}]}, Unprocessable, "$.metrics[0].field"),
        ({"metrics": [{"event_id": 1, "field": "value"}]}, Unprocessable, "$.metrics[0].field"),
        (
            {"metrics": [{"event_id": 1, "aggregator": "max"}]},
            Unprocessable,
            "$.metrics[0].aggregator",
        ),
        ({"metrics": [{"aggregator": "count"}]}, InvalidInput, "$.metrics[0].event_id"),
        ({"metrics": [{"event_id": 999_999}]}, Unprocessable, "$.metrics[0].event_id"),
        ({"metrics": [{"event_id": 999_999}] * 51}, Unprocessable, "$.metrics"),
        (
            {"audience_conditions": '["and", {"audience_id": 999999}]'},
            Unprocessable,
            "$.audience_conditions",
        ),
        ({"audience_conditions": "[not json"}, InvalidInput, "$.audience_conditions"),
        ({"audience_conditions": ["and", {"id": 1}]}, InvalidInput, "$.audience_conditions[1]"),
        (
            {"whitelist": [{"user_id": "qa", "variation_key": "nope"}]},
            Unprocessable,
            "$.whitelist[0].variation_key",
        ),
        ({"campaign_id": 999_999}, Unprocessable, "$.campaign_id"),
        ({"surprise": 1}, InvalidInput, "$.surprise"),
        # past 64 bits: no database can hold them (SQLite could not even look them up)
        ({"metrics": [{"event_id": 10**30}]}, InvalidInput, "$.metrics[0].event_id"),
        ({"campaign_id": 1 << 63}, InvalidInput, "$.campaign_id"),
        (
            {"audience_conditions": ["or", {"audience_id": 10**30}]},
            InvalidInput,
            "$.audience_conditions[1].audience_id",
        ),
        ({"attribution_window_seconds": -(10**30)}, InvalidInput, "$.attribution_window_seconds"),
    ],
)
def test_experiments_create_names_each_problem_by_path(
    catalog: Catalog,
    project: Project,
    overrides: dict[str, Any],
    error: type[LiftlogError],
    path: str,
) -> None:
    with pytest.raises(error) as info:
        catalog.experiments.create(project.id, body(**overrides))
    assert path in paths(info.value)
    assert catalog.experiments.list(project.id).total == 0


def test_experiments_create_reports_every_problem_at_once(
    catalog: Catalog, project: Project
) -> None:
    bad = body(key=5, holdback=-1, variations=[{"key": "a", "weight": -3}, {"weight": 2}])
    with pytest.raises(InvalidInput) as info:
        catalog.experiments.create(project.id, bad)
    assert {"$.key", "$.holdback", "$.variations[0].weight", "$.variations[1].key"} <= set(
        paths(info.value)
    )


def test_experiments_keys_are_unique_per_project(catalog: Catalog, project: Project) -> None:
    catalog.experiments.create(project.id, body())
    with pytest.raises(Conflict) as info:
        catalog.experiments.create(project.id, body())
    assert paths(info.value) == ["$.key"]
    other = catalog.projects.create({"name": "Other"})
    assert catalog.experiments.create(other.id, body()).key == "checkout"


def test_experiments_create_in_unknown_project_is_not_found(catalog: Catalog) -> None:
    with pytest.raises(NotFound):
        catalog.experiments.create(123_456, body())


def test_experiments_update_keeps_variation_ids_by_key(catalog: Catalog, project: Project) -> None:
    exp = catalog.experiments.create(project.id, body())
    control, treatment = exp.variations
    updated = catalog.experiments.update(
        exp.id,
        {
            "variations": [
                {"key": "treatment", "weight": 3000},
                {"key": "control", "weight": 3000},
                {"key": "new", "weight": 4000},
            ]
        },
        if_version=exp.version,
    )
    assert [v.key for v in updated.variations] == ["treatment", "control", "new"]
    assert updated.variations[0].variation_id == treatment.variation_id
    assert updated.variations[1].variation_id == control.variation_id
    assert updated.variations[2].variation_id not in {
        control.variation_id,
        treatment.variation_id,
    }
    assert updated.version == exp.version + 1


def test_experiments_update_renames_a_variation_by_id(catalog: Catalog, project: Project) -> None:
    exp = catalog.experiments.create(project.id, body())
    first = exp.variations[0].variation_id
    changed = catalog.experiments.update(
        exp.id,
        {"variations": [{"variation_id": str(first), "key": "baseline", "weight": 10_000}]},
    )
    assert [(v.variation_id, v.key) for v in changed.variations] == [(first, "baseline")]


def test_experiments_update_rejects_foreign_variation_ids(
    catalog: Catalog, project: Project
) -> None:
    a = catalog.experiments.create(project.id, body(key="a"))
    b = catalog.experiments.create(project.id, body(key="b"))
    stolen = b.variations[0].variation_id
    with pytest.raises(Unprocessable) as info:
        catalog.experiments.update(
            a.id, {"variations": [{"variation_id": stolen, "key": "x", "weight": 1}]}
        )
    assert paths(info.value) == ["$.variations[0].variation_id"]


def test_experiments_update_with_stale_version_conflicts(
    catalog: Catalog, project: Project
) -> None:
    exp = catalog.experiments.create(project.id, body())
    catalog.experiments.update(exp.id, {"name": "first"}, if_version=exp.version)
    with pytest.raises(Conflict):
        catalog.experiments.update(exp.id, {"name": "second"}, if_version=exp.version)
    assert catalog.experiments.get(exp.id).name == "first"


def test_experiments_update_cannot_orphan_the_whitelist(catalog: Catalog, project: Project) -> None:
    exp = catalog.experiments.create(
        project.id, body(whitelist=[{"user_id": "qa", "variation_key": "treatment"}])
    )
    with pytest.raises(Unprocessable) as info:
        catalog.experiments.update(exp.id, {"variations": [{"key": "control", "weight": 100}]})
    assert paths(info.value) == ["$.variations"]


def test_experiments_attribution_window_can_be_cleared(catalog: Catalog, project: Project) -> None:
    exp = catalog.experiments.create(project.id, body(attribution_window_seconds=3600))
    assert catalog.experiments.update(exp.id, {"name": "n"}).attribution_window_seconds == 3600
    cleared = catalog.experiments.update(exp.id, {"attribution_window_seconds": None})
    assert cleared.attribution_window_seconds is None


def test_experiments_status_history_gives_running_intervals(
    catalog: Catalog, project: Project, clock: Clock
) -> None:
    exp = catalog.experiments.create(project.id, body())
    t1 = clock.advance(1_000)
    catalog.experiments.set_status(exp.id, "running")
    t2 = clock.advance(60_000)
    catalog.experiments.set_status(exp.id, "paused")
    clock.advance(5_000)
    catalog.experiments.set_status(exp.id, "paused")  # no-op
    t3 = clock.advance(5_000)
    catalog.experiments.set_status(exp.id, "running")
    assert catalog.experiments.running_intervals(exp.id) == [(t1, t2), (t3, None)]
    t4 = clock.advance(1_000)
    catalog.experiments.set_status(exp.id, "archived")
    history = catalog.experiments.history(exp.id)
    assert [(h.status, h.at) for h in history] == [
        ("not_started", START_MS),
        ("running", t1),
        ("paused", t2),
        ("running", t3),
        ("archived", t4),
    ]
    assert catalog.experiments.running_intervals(exp.id) == [(t1, t2), (t3, t4)]


def test_experiments_status_change_can_be_backdated_but_not_before_the_last(
    catalog: Catalog, project: Project, clock: Clock
) -> None:
    exp = catalog.experiments.create(project.id, body())
    catalog.experiments.set_status(exp.id, "running", at=START_MS + 10)
    with pytest.raises(Unprocessable):
        catalog.experiments.set_status(exp.id, "paused", at=START_MS + 5)
    assert catalog.experiments.running_intervals(exp.id) == [(START_MS + 10, None)]


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ([], "paused"),
        (["running", "paused"], "not_started"),
        (["running"], "not_started"),
        (["archived"], "running"),
    ],
)
def test_experiments_refuse_impossible_status_changes(
    catalog: Catalog, project: Project, path: list[str], target: str
) -> None:
    exp = catalog.experiments.create(project.id, body())
    for status in path:
        catalog.experiments.set_status(exp.id, status)
    with pytest.raises(Conflict):
        catalog.experiments.set_status(exp.id, target)


def test_experiments_status_can_change_through_update(catalog: Catalog, project: Project) -> None:
    exp = catalog.experiments.create(project.id, body(status="running"))
    assert exp.status == "running"
    paused = catalog.experiments.update(exp.id, {"status": "paused"})
    assert paused.status == "paused"
    assert [h.status for h in catalog.experiments.history(exp.id)] == [
        "not_started",
        "running",
        "paused",
    ]


def test_experiments_list_pages_and_filters_by_status(catalog: Catalog, project: Project) -> None:
    ids = [catalog.experiments.create(project.id, body(key=f"e{i}")).id for i in range(5)]
    catalog.experiments.set_status(ids[1], "running")
    catalog.experiments.set_status(ids[3], "running")
    page = catalog.experiments.list(project.id, page=2, per_page=2)
    assert [e.id for e in page.items] == ids[2:4]
    assert page.total == 5
    running = catalog.experiments.list(project.id, status="running")
    assert [e.id for e in running.items] == [ids[1], ids[3]]
    assert all(len(e.variations) == 2 for e in page.items)
    with pytest.raises(Unprocessable):
        catalog.experiments.list(project.id, status="launched")


def test_experiments_delete_only_when_not_live(catalog: Catalog, project: Project) -> None:
    exp = catalog.experiments.create(project.id, body())
    catalog.experiments.set_status(exp.id, "running")
    with pytest.raises(Conflict):
        catalog.experiments.delete(exp.id)
    catalog.experiments.set_status(exp.id, "archived")
    catalog.experiments.delete(exp.id)
    with pytest.raises(NotFound):
        catalog.experiments.get(exp.id)
    with pytest.raises(NotFound):
        catalog.experiments.history(exp.id)
