"""Events, attributes, audiences, groups and uploaded lists."""

from __future__ import annotations

import json
from typing import Any

import pytest

from liftlog.catalog.lists import MAX_CONTENT_BYTES
from liftlog.catalog.models import Project
from liftlog.catalog.store import Catalog
from liftlog.errors import (
    Conflict,
    InvalidInput,
    LiftlogError,
    NotFound,
    PayloadTooLarge,
    Unprocessable,
)

US = {"type": "custom_attribute", "name": "country", "match": "exact", "value": "US"}


def paths(error: LiftlogError) -> list[str]:
    return [d.path for d in error.details]


def revision(catalog: Catalog, project: Project) -> int:
    return catalog.projects.get(project.id).revision


def experiment(catalog: Catalog, project: Project, key: str, **extra: Any) -> int:
    body = {"key": key, "variations": [{"key": "a", "weight": 5000}, {"key": "b", "weight": 5000}]}
    return catalog.experiments.create(project.id, {**body, **extra}).id


def test_events_crud_and_revision(catalog: Catalog, project: Project) -> None:
    r0 = revision(catalog, project)
    event = catalog.events.create(project.id, {"key": "purchase", "category": "purchase"})
    assert event.name == "purchase"
    assert event.to_dict()["event_type"] == "custom"
    assert revision(catalog, project) == r0 + 1
    catalog.events.update(event.id, {"description": "paid"})
    assert revision(catalog, project) == r0 + 1  # descriptions are not in the datafile
    renamed = catalog.events.update(event.id, {"key": "order"}, if_version=2)
    assert renamed.key == "order"
    assert revision(catalog, project) == r0 + 2
    assert [e.key for e in catalog.events.list(project.id).items] == ["order"]
    catalog.events.delete(event.id)
    with pytest.raises(NotFound):
        catalog.events.get(event.id)
    assert revision(catalog, project) == r0 + 3


def test_events_keys_are_unique_and_checked(catalog: Catalog, project: Project) -> None:
    catalog.events.create(project.id, {"key": "purchase"})
    with pytest.raises(Conflict):
        catalog.events.create(project.id, {"key": "purchase"})
    with pytest.raises(Unprocessable) as info:
        catalog.events.create(project.id, {"key": "x", "category": "nonsense"})
    assert paths(info.value) == ["$.category"]
    with pytest.raises(InvalidInput) as info2:
        catalog.events.create(project.id, {"name": "no key"})
    assert paths(info2.value) == ["$.key"]
    with pytest.raises(Unprocessable) as info3:
        catalog.events.create(project.id, {"key": "y", "project_id": project.id + 1})
    assert paths(info3.value) == ["$.project_id"]


def test_events_used_by_a_metric_cannot_be_deleted(catalog: Catalog, project: Project) -> None:
    event = catalog.events.create(project.id, {"key": "purchase"})
    experiment(catalog, project, "e", metrics=[{"event_id": event.id}])
    with pytest.raises(Conflict):
        catalog.events.delete(event.id)
    assert catalog.events.update(event.id, {"archived": True}).archived


def test_events_of_another_project_are_not_metrics(catalog: Catalog, project: Project) -> None:
    other = catalog.projects.create({"name": "Other"})
    foreign = catalog.events.create(other.id, {"key": "purchase"})
    with pytest.raises(Unprocessable) as info:
        experiment(catalog, project, "e", metrics=[{"event_id": foreign.id}])
    assert paths(info.value) == ["$.metrics[0].event_id"]


def test_attributes_crud_and_revision(catalog: Catalog, project: Project) -> None:
    r0 = revision(catalog, project)
    attribute = catalog.attributes.create(project.id, {"key": "country"})
    assert attribute.to_dict()["condition_type"] == "custom_attribute"
    assert revision(catalog, project) == r0 + 1
    with pytest.raises(Conflict):
        catalog.attributes.create(project.id, {"key": "country"})
    catalog.attributes.update(attribute.id, {"archived": True})
    assert revision(catalog, project) == r0 + 2
    assert catalog.attributes.list(project.id, per_page=1).total == 1
    catalog.attributes.delete(attribute.id)
    assert catalog.attributes.list(project.id).total == 0


@pytest.mark.parametrize(
    ("conditions", "path"),
    [
        ("not json", "$.conditions"),
        (42, "$.conditions"),
        (
            ["and", {"type": "custom_attribute", "name": "age", "match": "gt", "value": "x"}],
            "$.conditions[1].value",
        ),
        (["or", {"type": "cookie", "name": "a", "value": "b"}], "$.conditions[1].type"),
        (
            ["or", {"type": "custom_attribute", "name": "a", "match": "like", "value": "b"}],
            "$.conditions[1].match",
        ),
        (["not", US, US], "$.conditions"),
        (["or", ["and", {"type": "custom_attribute", "value": 1}]], "$.conditions[1][1].name"),
        (
            ["or", {"type": "custom_attribute", "name": "v", "match": "semver_ge", "value": 2}],
            "$.conditions[1].value",
        ),
        (["or", US, "and"], "$.conditions[2]"),
    ],
)
def test_audiences_reject_bad_condition_trees(
    catalog: Catalog, project: Project, conditions: Any, path: str
) -> None:
    with pytest.raises(LiftlogError) as info:
        catalog.audiences.create(project.id, {"name": "A", "conditions": conditions})
    assert path in paths(info.value)


@pytest.mark.parametrize(
    "conditions",
    [
        ["and", ["or", ["or", US]]],
        json.dumps(["and", US]),
        US,
        ["not", {"type": "custom_attribute", "name": "x", "match": "exists"}],
        [{"type": "custom_attribute", "name": "age", "match": "ge", "value": 18.5}],
        ["or", {"type": "custom_attribute", "name": "app", "match": "semver_lt", "value": "2.0"}],
    ],
)
def test_audiences_accept_optimizely_condition_trees(
    catalog: Catalog, project: Project, conditions: Any
) -> None:
    audience = catalog.audiences.create(project.id, {"name": "A", "conditions": conditions})
    expected = json.loads(conditions) if isinstance(conditions, str) else conditions
    assert audience.condition_tree == expected
    assert isinstance(audience.to_dict()["conditions"], str)


def test_audiences_targeted_by_experiments_cannot_be_deleted(
    catalog: Catalog, project: Project
) -> None:
    audience = catalog.audiences.create(project.id, {"name": "US", "conditions": ["or", US]})
    exp = experiment(
        catalog, project, "e", audience_conditions=["and", {"audience_id": audience.id}]
    )
    with pytest.raises(Conflict):
        catalog.audiences.delete(audience.id)
    catalog.experiments.update(exp, {"audience_conditions": "everyone"})
    r0 = revision(catalog, project)
    catalog.audiences.delete(audience.id)
    assert revision(catalog, project) == r0 + 1


def test_audiences_update_conditions_bumps_revision(catalog: Catalog, project: Project) -> None:
    audience = catalog.audiences.create(project.id, {"name": "US", "conditions": ["or", US]})
    r0 = revision(catalog, project)
    catalog.audiences.update(audience.id, {"description": "people in the US"})
    assert revision(catalog, project) == r0
    new = ["or", {**US, "value": "CA"}]
    assert catalog.audiences.update(audience.id, {"conditions": new}).condition_tree == new
    assert revision(catalog, project) == r0 + 1


def test_groups_hold_each_experiment_once(catalog: Catalog, project: Project) -> None:
    a, b, c = (experiment(catalog, project, k) for k in "abc")
    group = catalog.groups.create(
        project.id,
        {
            "name": "checkout",
            "entities": [
                {"id": a, "kind": "Experiment", "weight": 5000},
                {"id": b, "kind": "Experiment", "weight": 5000},
            ],
        },
    )
    assert [e.to_dict() for e in group.entities] == [
        {"id": a, "kind": "Experiment", "weight": 5000},
        {"id": b, "kind": "Experiment", "weight": 5000},
    ]
    assert catalog.experiments.get(a).group_id == group.id
    assert catalog.experiments.get(c).group_id is None
    with pytest.raises(Unprocessable) as info:
        catalog.groups.create(
            project.id, {"name": "g2", "entities": [{"id": a, "kind": "Experiment", "weight": 1}]}
        )
    assert paths(info.value) == ["$.entities[0].id"]
    updated = catalog.groups.update(
        group.id, {"entities": [{"id": c, "kind": "Experiment", "weight": 10_000}]}
    )
    assert [e.id for e in updated.entities] == [c]
    assert catalog.experiments.get(a).group_id is None
    catalog.groups.delete(group.id)
    assert catalog.experiments.get(c).group_id is None


@pytest.mark.parametrize(
    ("entities", "error", "path"),
    [
        ([{"id": 1, "kind": "Experiment", "weight": 6000}] * 2, Unprocessable, "$.entities[1].id"),
        ([{"id": 1, "kind": "Campaign", "weight": 1}], Unprocessable, "$.entities[0].kind"),
        ([{"id": 1, "kind": "Experiment"}], InvalidInput, "$.entities[0].weight"),
        ([{"id": 999_999, "kind": "Experiment", "weight": 1}], Unprocessable, "$.entities[0].id"),
    ],
)
def test_groups_check_their_entities(
    catalog: Catalog,
    project: Project,
    entities: list[dict[str, Any]],
    error: type[LiftlogError],
    path: str,
) -> None:
    with pytest.raises(error) as info:
        catalog.groups.create(project.id, {"name": "g", "entities": entities})
    assert path in paths(info.value)
    assert catalog.groups.list(project.id).total == 0


def test_groups_weights_cannot_exceed_all_traffic(catalog: Catalog, project: Project) -> None:
    a, b = experiment(catalog, project, "a"), experiment(catalog, project, "b")
    entities = [
        {"id": a, "kind": "Experiment", "weight": 6000},
        {"id": b, "kind": "Experiment", "weight": 6000},
    ]
    with pytest.raises(Unprocessable) as info:
        catalog.groups.create(project.id, {"name": "g", "entities": entities})
    assert paths(info.value) == ["$.entities"]


def test_lists_create_replace_and_list_without_content(catalog: Catalog, project: Project) -> None:
    r0 = revision(catalog, project)
    created = catalog.lists.create(
        project.id,
        {
            "name": "vip",
            "list_type": "cookies",
            "key_field": "uid",
            "list_content": "a,b,c",
        },
    )
    assert created.list_type == "cookie"
    assert created.list_content == "a,b,c"
    assert created.account_id == project.account_id
    listed = catalog.lists.list(project.id).items
    assert [x.list_content for x in listed] == [None]
    assert "list_content" not in listed[0].to_dict()
    replaced = catalog.lists.replace(
        created.id,
        {"name": "vip", "list_type": "id", "key_field": "user_id"},
        if_version=created.version,
    )
    assert (replaced.list_type, replaced.list_content, replaced.version) == ("id", "", 2)
    assert catalog.lists.update(created.id, {"list_content": "x"}).list_content == "x"
    assert revision(catalog, project) == r0  # lists are not in the datafile
    with pytest.raises(Conflict):
        catalog.lists.create(project.id, {"name": "vip", "list_type": "id", "key_field": "k"})
    catalog.lists.delete(created.id)
    with pytest.raises(NotFound):
        catalog.lists.get(created.id)


@pytest.mark.parametrize(
    ("body", "error", "path"),
    [
        ({"list_type": "id", "key_field": "k"}, InvalidInput, "$.name"),
        ({"name": "n", "list_type": "zip_codes", "key_field": "k"}, Unprocessable, "$.list_type"),
        ({"name": "n", "list_type": "id"}, InvalidInput, "$.key_field"),
        (
            {"name": "n", "list_type": "id", "key_field": "k", "list_content": 5},
            InvalidInput,
            "$.list_content",
        ),
    ],
)
def test_lists_name_each_problem(
    catalog: Catalog,
    project: Project,
    body: dict[str, Any],
    error: type[LiftlogError],
    path: str,
) -> None:
    with pytest.raises(error) as info:
        catalog.lists.create(project.id, body)
    assert path in paths(info.value)


def test_lists_over_five_mib_are_too_large(catalog: Catalog, project: Project) -> None:
    base = {"name": "big", "list_type": "id", "key_field": "k"}
    exactly = "x" * MAX_CONTENT_BYTES
    created = catalog.lists.create(project.id, {**base, "list_content": exactly})
    assert created.list_content is not None and len(created.list_content) == MAX_CONTENT_BYTES
    # Two bytes in UTF-8 each: under the limit in characters, over it in bytes.
    over = "é" * (MAX_CONTENT_BYTES // 2 + 1)
    with pytest.raises(PayloadTooLarge) as info:
        catalog.lists.update(created.id, {"list_content": over})
    assert paths(info.value) == ["$.list_content"]
    assert info.value.status == 413
