from __future__ import annotations

import pytest

from liftlog.catalog.models import Project
from liftlog.catalog.store import Catalog
from liftlog.errors import Conflict, InvalidInput, NotFound, Unprocessable

from .conftest import START_MS, Clock


def test_projects_create_gives_defaults_and_rest_shape(catalog: Catalog) -> None:
    project = catalog.projects.create({"name": "Shop", "description": "web shop"})
    body = project.to_dict()
    assert body["name"] == "Shop"
    assert body["description"] == "web shop"
    assert body["platform"] == "custom"
    assert body["status"] == "active"
    assert body["revision"] == 1
    assert body["created"] == "2023-11-14T22:13:20.000Z"  # START_MS
    assert project.version == 1
    assert project.account_id == catalog.accounts.default().id
    assert len(project.sdk_key) >= 20


def test_projects_sdk_keys_differ_and_find_the_project(catalog: Catalog) -> None:
    a = catalog.projects.create({"name": "A"})
    b = catalog.projects.create({"name": "B"})
    assert a.sdk_key != b.sdk_key
    assert catalog.projects.by_sdk_key(b.sdk_key).id == b.id
    with pytest.raises(NotFound):
        catalog.projects.by_sdk_key("nope")


def test_projects_get_unknown_is_not_found(catalog: Catalog) -> None:
    with pytest.raises(NotFound):
        catalog.projects.get(987654)


@pytest.mark.parametrize("object_id", [0, -1, 1 << 63, 10**23])
def test_ids_past_64_bits_or_below_1_are_not_found(catalog: Catalog, object_id: int) -> None:
    """Not an overflow in the database driver (SQLite can't bind them): nothing has them."""
    with pytest.raises(NotFound):
        catalog.projects.get(object_id)
    with pytest.raises(NotFound):
        catalog.experiments.get(object_id)
    assert catalog.kind_of(object_id) is None


@pytest.mark.parametrize(
    ("body", "error", "path"),
    [
        ({}, InvalidInput, "$.name"),
        ({"name": 3}, InvalidInput, "$.name"),
        ({"name": "x", "colour": "red"}, InvalidInput, "$.colour"),
        ({"name": "x", "platform": "tv"}, Unprocessable, "$.platform"),
        ({"name": "  "}, Unprocessable, "$.name"),
        ({"name": "x", "confidence_threshold": 2}, Unprocessable, "$.confidence_threshold"),
        ({"name": "x", "anonymize_ip": "yes"}, InvalidInput, "$.anonymize_ip"),
    ],
)
def test_projects_create_names_each_problem_by_path(
    catalog: Catalog, body: dict[str, object], error: type[Exception], path: str
) -> None:
    with pytest.raises(error) as info:
        catalog.projects.create(body)
    assert path in [d.path for d in info.value.details]  # type: ignore[attr-defined]


def test_projects_list_pages_in_creation_order(catalog: Catalog) -> None:
    created = [catalog.projects.create({"name": f"p{i}"}).id for i in range(7)]
    first = catalog.projects.list(page=1, per_page=3)
    last = catalog.projects.list(page=3, per_page=3)
    beyond = catalog.projects.list(page=4, per_page=3)
    assert [p.id for p in first.items] == created[:3]
    assert [p.id for p in last.items] == created[6:]
    assert beyond.items == ()
    assert first.total == 7
    assert first.last_page == 3


@pytest.mark.parametrize(("page", "per_page"), [(0, 10), (1, 0), (1, 101), (-1, 5)])
def test_projects_list_rejects_bad_pagination(catalog: Catalog, page: int, per_page: int) -> None:
    with pytest.raises(InvalidInput):
        catalog.projects.list(page=page, per_page=per_page)


def test_projects_update_bumps_version_and_checks_if_version(
    catalog: Catalog, project: Project, clock: Clock
) -> None:
    clock.advance(5_000)
    updated = catalog.projects.update(project.id, {"name": "Renamed"}, if_version=1)
    assert updated.name == "Renamed"
    assert updated.version == 2
    assert updated.last_modified == START_MS + 5_000
    with pytest.raises(Conflict):
        catalog.projects.update(project.id, {"name": "Stale"}, if_version=1)
    assert catalog.projects.get(project.id).name == "Renamed"


def test_projects_revision_moves_only_with_datafile_fields(
    catalog: Catalog, project: Project
) -> None:
    catalog.projects.update(project.id, {"name": "New name", "description": "d"})
    assert catalog.projects.get(project.id).revision == 1
    catalog.projects.update(project.id, {"anonymize_ip": False})
    assert catalog.projects.get(project.id).revision == 2
    catalog.projects.update(project.id, {"anonymize_ip": False})
    assert catalog.projects.get(project.id).revision == 2


def test_projects_accounts_are_separate(catalog: Catalog) -> None:
    mine = catalog.projects.create({"name": "Mine"})  # creates the default account
    other = catalog.accounts.create("Other")
    theirs = catalog.projects.create({"name": "Theirs"}, account_id=other.id)
    assert [p.id for p in catalog.projects.list(account_id=other.id).items] == [theirs.id]
    assert mine.account_id != theirs.account_id
    with pytest.raises(NotFound):
        catalog.projects.create({"name": "Orphan"}, account_id=424242)


def test_ids_are_unique_across_kinds(catalog: Catalog, project: Project) -> None:
    event = catalog.events.create(project.id, {"key": "buy"})
    attribute = catalog.attributes.create(project.id, {"key": "country"})
    experiment = catalog.experiments.create(
        project.id, {"key": "e", "variations": [{"key": "a", "weight": 10_000}]}
    )
    ids = [
        project.id,
        project.account_id,
        event.id,
        attribute.id,
        experiment.id,
        experiment.campaign_id,
        experiment.variations[0].variation_id,
    ]
    assert len(set(ids)) == len(ids)
    assert catalog.kind_of(event.id) == "event"
    assert catalog.kind_of(experiment.variations[0].variation_id) == "variation"
    assert catalog.kind_of(experiment.campaign_id) == "campaign"
    assert catalog.kind_of(10**12) is None


def test_projects_delete_removes_everything_in_the_project_and_nothing_else(
    catalog: Catalog, project: Project
) -> None:
    pid = project.id
    event = catalog.events.create(pid, {"key": "buy"})
    catalog.attributes.create(pid, {"key": "plan"})
    catalog.audiences.create(pid, {"name": "all", "conditions": '["and"]'})
    catalog.lists.create(pid, {"name": "l", "list_type": "id", "key_field": "k"})
    body = {"variations": [{"key": "a", "weight": 5000}, {"key": "b", "weight": 5000}],
            "metrics": [{"event_id": event.id}], "status": "running"}  # fmt: skip
    a = catalog.experiments.create(pid, {"key": "a", **body})
    b = catalog.experiments.create(pid, {"key": "b", **body})
    catalog.groups.create(pid, {"name": "g", "entities": [
        {"id": a.id, "kind": "Experiment", "weight": 5000},
        {"id": b.id, "kind": "Experiment", "weight": 5000}]})  # fmt: skip
    other = catalog.projects.create({"name": "Other"})
    kept = catalog.experiments.create(other.id, {"key": "kept", **body} | {
        "metrics": [{"event_id": catalog.events.create(other.id, {"key": "buy"}).id}]})  # fmt: skip

    catalog.projects.delete(pid)

    with pytest.raises(NotFound):
        catalog.projects.get(pid)
    for experiment_id in (a.id, b.id):
        with pytest.raises(NotFound):
            catalog.experiments.get(experiment_id)
    with pytest.raises(NotFound):
        catalog.events.list(pid)
    assert catalog.experiments.get(kept.id).metrics  # the other project is untouched
    assert [p.id for p in catalog.projects.list().items] == [other.id]
    with pytest.raises(NotFound):
        catalog.projects.delete(pid)
