"""CRUD over HTTP for every kind of object, on Optimizely's REST API v2 paths."""

from __future__ import annotations

import httpx

from tests.api.conftest import Api, created, error_of, new_project

VARIATIONS = [{"key": "control", "weight": 5000}, {"key": "treatment", "weight": 5000}]


def test_projects_create_get_update_list(writer: httpx.Client) -> None:
    project = new_project(writer, "Checkout")
    assert project["name"] == "Checkout" and project["revision"] == 1
    assert project["sdk_key"] and project["id"] > 0

    got = writer.get(f"/v2/projects/{project['id']}")
    assert got.status_code == 200 and got.json() == project
    assert got.headers["etag"] == '"1"'

    patched = writer.patch(f"/v2/projects/{project['id']}", json={"description": "all of it"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["description"] == "all of it"
    assert patched.headers["etag"] == '"2"'

    listed = writer.get("/v2/projects", params={"per_page": 100})
    assert project["id"] in [p["id"] for p in listed.json()]
    error_of(writer.get("/v2/projects/999999999"), 404)
    error_of(writer.get("/v2/projects/abc"), 404)


def test_experiments_lifecycle_with_actions_and_history(writer: httpx.Client) -> None:
    project = new_project(writer)
    event = created(
        writer.post(f"/v2/projects/{project['id']}/custom_events", json={"key": "purchase"})
    )
    body = {
        "project_id": project["id"],
        "key": "checkout_button",
        "variations": VARIATIONS,
        "metrics": [{"event_id": event["id"], "aggregator": "unique"}],
    }
    exp = created(writer.post("/v2/experiments", json=body))
    assert exp["status"] == "not_started" and exp["project_id"] == project["id"]
    assert [v["key"] for v in exp["variations"]] == ["control", "treatment"]
    assert exp["metrics"][0]["event_id"] == event["id"]
    one = f"/v2/experiments/{exp['id']}"

    started = writer.patch(one, params={"action": "start"})
    assert started.status_code == 200, started.text
    assert started.json()["status"] == "running"
    paused = writer.patch(one, json={"status": "paused"})
    assert paused.json()["status"] == "paused"
    resumed = writer.patch(one, params={"action": "resume"}, json={"description": "again"})
    assert resumed.json()["status"] == "running" and resumed.json()["description"] == "again"

    history = writer.get(f"{one}/status_history").json()
    assert [h["status"] for h in history["history"]] == [
        "not_started",
        "running",
        "paused",
        "running",
    ]
    assert len(history["running_intervals"]) == 2
    assert history["running_intervals"][-1]["end"] is None

    # A running experiment cannot be deleted, nor sent back to not_started.
    assert error_of(writer.delete(one), 409)["details"][0]["path"] == "$.status"
    error_of(writer.patch(one, json={"status": "not_started"}), 409)
    error_of(writer.patch(one, params={"action": "fly"}), 400)
    assert writer.patch(one, params={"action": "archive"}).json()["status"] == "archived"
    assert writer.delete(one).status_code == 204
    error_of(writer.get(one), 404)


def test_experiments_create_started_and_list_by_project(writer: httpx.Client) -> None:
    project = new_project(writer)
    other = new_project(writer, "Other")
    for key in ("a", "b"):
        created(
            writer.post(
                "/v2/experiments",
                params={"action": "start"},
                json={"project_id": project["id"], "key": key, "variations": VARIATIONS},
            )
        )
    created(
        writer.post(
            "/v2/experiments",
            json={"project_id": other["id"], "key": "c", "variations": VARIATIONS},
        )
    )
    listed = writer.get("/v2/experiments", params={"project_id": project["id"]}).json()
    assert [(e["key"], e["status"]) for e in listed] == [("a", "running"), ("b", "running")]
    running = writer.get("/v2/experiments", params={"project_id": other["id"], "status": "running"})
    assert running.json() == []
    error_of(writer.get("/v2/experiments"), 400)


def test_variations_change_inside_the_experiment(writer: httpx.Client) -> None:
    project = new_project(writer)
    exp = created(
        writer.post(
            "/v2/experiments",
            json={"project_id": project["id"], "key": "x", "variations": VARIATIONS},
        )
    )
    control_id = exp["variations"][0]["variation_id"]
    changed = writer.patch(
        f"/v2/experiments/{exp['id']}",
        json={
            "variations": [
                {"key": "control", "weight": 3000},
                {"key": "treatment", "weight": 3000},
                {"key": "third", "weight": 4000},
            ]
        },
    ).json()
    assert [v["weight"] for v in changed["variations"]] == [3000, 3000, 4000]
    assert changed["variations"][0]["variation_id"] == control_id  # same key, same id
    too_heavy = writer.patch(
        f"/v2/experiments/{exp['id']}",
        json={"variations": [{"key": "a", "weight": 6000}, {"key": "b", "weight": 6000}]},
    )
    assert error_of(too_heavy, 422)["details"][0]["path"] == "$.variations"


def test_custom_events_on_optimizely_paths(writer: httpx.Client) -> None:
    project = new_project(writer)
    other = new_project(writer, "Other")
    base = f"/v2/projects/{project['id']}/custom_events"
    event = created(writer.post(base, json={"key": "signup", "category": "sign_up"}))
    assert event["event_type"] == "custom" and event["category"] == "sign_up"
    assert writer.get(f"/v2/events/{event['id']}").json() == event
    listed = writer.get("/v2/events", params={"project_id": project["id"]}).json()
    assert [e["key"] for e in listed] == ["signup"]

    error_of(writer.post(base, json={"key": "signup"}), 409)
    renamed = writer.patch(f"{base}/{event['id']}", json={"name": "Sign-up"})
    assert renamed.json()["name"] == "Sign-up"
    # The event exists, but not in that project.
    error_of(writer.patch(f"/v2/projects/{other['id']}/custom_events/{event['id']}", json={}), 404)

    exp = created(
        writer.post(
            "/v2/experiments",
            json={
                "project_id": project["id"],
                "key": "e",
                "variations": VARIATIONS,
                "metrics": [{"event_id": event["id"]}],
            },
        )
    )
    error_of(writer.delete(f"{base}/{event['id']}"), 409)  # measured by an experiment
    writer.patch(f"/v2/experiments/{exp['id']}", json={"metrics": []})
    assert writer.delete(f"{base}/{event['id']}").status_code == 204
    error_of(writer.get(f"/v2/events/{event['id']}"), 404)


def test_attributes_audiences_groups(writer: httpx.Client) -> None:
    project = new_project(writer)
    pid = project["id"]
    attribute = created(writer.post("/v2/attributes", json={"project_id": pid, "key": "plan"}))
    assert writer.get(f"/v2/attributes/{attribute['id']}").json()["key"] == "plan"
    assert (
        writer.patch(
            f"/v2/attributes/{attribute['id']}", json={"description": "billing plan"}
        ).json()["description"]
        == "billing plan"
    )

    conditions = '["and", {"type": "custom_attribute", "name": "plan", "value": "pro"}]'
    audience = created(
        writer.post(
            "/v2/audiences", json={"project_id": pid, "name": "Pro", "conditions": conditions}
        )
    )
    assert audience["conditions"]
    listed = writer.get("/v2/audiences", params={"project_id": pid}).json()
    assert [a["name"] for a in listed] == ["Pro"]
    bad = writer.post(
        "/v2/audiences", json={"project_id": pid, "name": "Bad", "conditions": "not json"}
    )
    assert error_of(bad, 400)["details"][0]["path"] == "$.conditions"

    experiments = [
        created(
            writer.post(
                "/v2/experiments",
                json={"project_id": pid, "key": f"g{i}", "variations": VARIATIONS},
            )
        )
        for i in range(2)
    ]
    entities = [{"id": e["id"], "kind": "Experiment", "weight": 5000} for e in experiments]
    group = created(
        writer.post("/v2/groups", json={"project_id": pid, "name": "G", "entities": entities})
    )
    assert [e["id"] for e in group["entities"]] == [e["id"] for e in experiments]
    assert writer.get(f"/v2/experiments/{experiments[0]['id']}").json()["group_id"] == group["id"]
    assert (
        writer.patch(f"/v2/groups/{group['id']}", json={"entities": entities[:1]}).json()[
            "entities"
        ]
        == entities[:1]
    )
    assert writer.delete(f"/v2/groups/{group['id']}").status_code == 204
    assert writer.delete(f"/v2/attributes/{attribute['id']}").status_code == 204
    assert writer.delete(f"/v2/audiences/{audience['id']}").status_code == 204
    error_of(writer.get(f"/v2/groups/{group['id']}"), 404)


def test_list_attributes_replace_and_size_limit(writer: httpx.Client) -> None:
    project = new_project(writer)
    body = {
        "project_id": project["id"],
        "name": "VIPs",
        "description": "from the CRM",
        "list_type": "id",
        "key_field": "user_id",
        "list_content": "user_id\nu1\nu2\n",
    }
    lst = created(writer.post("/v2/list_attributes", json=body))
    one = f"/v2/list_attributes/{lst['id']}"
    assert writer.get(one).json()["list_content"] == "user_id\nu1\nu2\n"
    listed = writer.get("/v2/list_attributes", params={"project_id": project["id"]}).json()
    assert [item["name"] for item in listed] == ["VIPs"]
    assert "list_content" not in listed[0]  # lists leave the (large) content out

    put = writer.put(
        one,
        json={"name": "VIPs", "list_type": "id", "key_field": "user_id", "list_content": "u3"},
    )
    assert put.status_code == 200, put.text
    assert put.json()["list_content"] == "u3" and put.json()["description"] == ""
    patched = writer.patch(one, json={"description": "again"}).json()
    assert patched["list_content"] == "u3" and patched["description"] == "again"

    big = "user_id\n" + "x" * (5 * 1024 * 1024)
    too_large = writer.put(one, json={**body, "list_content": big})
    assert error_of(too_large, 413)["details"][0]["path"] == "$.list_content"
    assert writer.get(one).json()["list_content"] == "u3"
    assert writer.delete(one).status_code == 204


def test_pagination_link_header(writer: httpx.Client) -> None:
    pid = new_project(writer)["id"]
    ids = [
        created(writer.post("/v2/attributes", json={"project_id": pid, "key": f"a{i}"}))["id"]
        for i in range(7)
    ]
    first = writer.get("/v2/attributes", params={"project_id": pid, "per_page": 3})
    assert [a["id"] for a in first.json()] == ids[:3]
    assert first.headers["x-total-count"] == "7"
    links = first.links
    assert set(links) == {"first", "next", "last"}
    assert "page=2" in links["next"]["url"] and "page=3" in links["last"]["url"]
    assert f"project_id={pid}" in links["next"]["url"]

    seen = []
    url: str | None = links["first"]["url"]
    while url:
        page = writer.get(url)
        seen += [a["id"] for a in page.json()]
        url = page.links.get("next", {}).get("url")
    assert seen == ids
    last = writer.get("/v2/attributes", params={"project_id": pid, "per_page": 3, "page": 3})
    assert [a["id"] for a in last.json()] == ids[6:]
    assert set(last.links) == {"first", "prev", "last"}

    bad = writer.get("/v2/attributes", params={"project_id": pid, "per_page": 0})
    assert error_of(bad, 400)["details"][0]["path"] == "$.per_page"
    error_of(writer.get("/v2/attributes", params={"project_id": pid, "page": "x"}), 400)


def test_other_accounts_objects_are_not_found(api: Api, writer: httpx.Client) -> None:
    project = new_project(writer)
    exp = created(
        writer.post(
            "/v2/experiments",
            json={"project_id": project["id"], "key": "k", "variations": VARIATIONS},
        )
    )
    with api.client(api.other_account_write) as other:
        error_of(other.get(f"/v2/projects/{project['id']}"), 404)
        error_of(other.get(f"/v2/experiments/{exp['id']}"), 404)
        error_of(other.patch(f"/v2/experiments/{exp['id']}", params={"action": "start"}), 404)
        error_of(other.get("/v2/experiments", params={"project_id": project["id"]}), 404)
        error_of(
            other.post("/v2/attributes", json={"project_id": project["id"], "key": "sneaky"}),
            404,
        )
        assert project["id"] not in [p["id"] for p in other.get("/v2/projects").json()]
        mine = new_project(other, "Theirs")
        assert mine["account_id"] != project["account_id"]
