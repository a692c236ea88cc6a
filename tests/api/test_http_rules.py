"""Auth, ETag/If-Match, and the error shape at the HTTP boundary."""

from __future__ import annotations

import httpx

from tests.api.conftest import Api, created, error_of, new_project


def test_management_needs_a_bearer_token(api: Api) -> None:
    with api.client() as anonymous:
        response = anonymous.get("/v2/projects")
        assert error_of(response, 401)["code"] == "unauthorized"
        assert response.headers["www-authenticate"].startswith("Bearer")
        error_of(anonymous.get("/v2/projects", headers={"authorization": "Basic eDp5"}), 401)
        error_of(anonymous.get("/v2/projects", headers={"authorization": "Bearer"}), 401)
    for token in ("llpat_not-a-real-token", "some-other-kind-of-token"):
        with api.client(token) as stranger:
            error_of(stranger.get("/v2/projects"), 401)


def test_read_token_reads_but_does_not_write(api: Api, writer: httpx.Client) -> None:
    project = new_project(writer)
    with api.client(api.read) as reader:
        assert reader.get(f"/v2/projects/{project['id']}").status_code == 200
        denied = reader.post("/v2/projects", json={"name": "nope"})
        assert error_of(denied, 403)["code"] == "forbidden"
        error_of(reader.patch(f"/v2/projects/{project['id']}", json={"name": "x"}), 403)
    assert writer.get(f"/v2/projects/{project['id']}").json()["name"] == project["name"]


def test_datafile_token_cannot_use_the_management_api(api: Api) -> None:
    with api.client(api.datafile) as sdk:
        error_of(sdk.get("/v2/projects"), 403)


def test_revoked_token_is_refused(api: Api) -> None:
    with api.catalog() as catalog:
        issued = catalog.tokens.create("short-lived", "read")
        with api.client(issued.secret) as client:
            assert client.get("/v2/projects").status_code == 200
            catalog.tokens.revoke(issued.token.id)
            error_of(client.get("/v2/projects"), 401)


def test_if_match_stale_version_is_412(writer: httpx.Client) -> None:
    project = new_project(writer)
    attr = created(writer.post("/v2/attributes", json={"project_id": project["id"], "key": "k"}))
    one = f"/v2/attributes/{attr['id']}"
    etag = writer.get(one).headers["etag"]
    assert etag == '"1"'

    first = writer.patch(one, json={"name": "first"}, headers={"if-match": etag})
    assert first.status_code == 200 and first.headers["etag"] == '"2"'
    # A second writer that read version 1 loses, and changes nothing.
    second = writer.patch(one, json={"name": "second"}, headers={"if-match": etag})
    assert error_of(second, 412)["code"] == "precondition_failed"
    assert writer.get(one).json()["name"] == "first"
    error_of(writer.delete(one, headers={"if-match": etag}), 412)

    error_of(writer.patch(one, json={}, headers={"if-match": "2"}), 400)  # not a quoted tag
    error_of(writer.patch(one, json={}, headers={"if-match": 'W/"2"'}), 400)
    assert writer.patch(one, json={"name": "any"}, headers={"if-match": "*"}).status_code == 200
    assert writer.delete(one, headers={"if-match": '"3"'}).status_code == 204


def test_if_match_on_experiment_status_action(writer: httpx.Client) -> None:
    project = new_project(writer)
    exp = created(
        writer.post(
            "/v2/experiments",
            json={
                "project_id": project["id"],
                "key": "k",
                "variations": [{"key": "a", "weight": 10000}],
            },
        )
    )
    one = f"/v2/experiments/{exp['id']}"
    stale = writer.get(one).headers["etag"]
    writer.patch(one, json={"description": "edited elsewhere"})
    error_of(writer.patch(one, params={"action": "start"}, headers={"if-match": stale}), 412)
    assert writer.get(one).json()["status"] == "not_started"
    fresh = writer.get(one).headers["etag"]
    started = writer.patch(one, params={"action": "start"}, headers={"if-match": fresh})
    assert started.json()["status"] == "running"
    assert started.headers["etag"] != fresh


def test_error_shapes(writer: httpx.Client) -> None:
    project = new_project(writer)
    not_json = writer.post(
        "/v2/attributes", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert error_of(not_json, 400)["details"][0]["path"] == "$"
    deep = b"[" * 20_000 + b"]" * 20_000  # past the JSON parsers' recursion limit
    as_json = {"content-type": "application/json"}
    too_deep = writer.post("/v2/attributes", content=b'{"key": ' + deep + b"}", headers=as_json)
    assert error_of(too_deep, 400)["details"] == [{"path": "$", "problem": "nests too deeply"}]
    deep_text = writer.post(  # conditions may come as JSON text: parsed again, as deep
        "/v2/audiences",
        json={"project_id": project["id"], "name": "a", "conditions": deep.decode()},
    )
    assert error_of(deep_text, 400)["details"][0]["path"] == "$.conditions"
    deep_client = writer.post(
        "/oauth/clients", content=b'{"client_name": ' + deep + b"}", headers=as_json
    )
    assert error_of(deep_client, 400)["details"] == [{"path": "$", "problem": "nests too deeply"}]
    unknown_field = writer.post(
        "/v2/attributes", json={"project_id": project["id"], "key": "k", "colour": "red"}
    )
    assert error_of(unknown_field, 400)["details"][0]["path"] == "$.colour"
    no_project = writer.post("/v2/attributes", json={"key": "k"})
    assert error_of(no_project, 400)["details"][0]["path"] == "$.project_id"
    missing = writer.post("/v2/attributes", json={"project_id": 10**12, "key": "k"})
    assert error_of(missing, 404)["details"][0]["path"] == "$.project_id"
    created(writer.post("/v2/attributes", json={"project_id": project["id"], "key": "k"}))
    dup = writer.post("/v2/attributes", json={"project_id": project["id"], "key": "k"})
    assert error_of(dup, 409)["details"][0]["path"] == "$.key"
    heavy = writer.post(
        "/v2/experiments",
        json={
            "project_id": project["id"],
            "key": "heavy",
            "variations": [{"key": "a", "weight": 9000}, {"key": "b", "weight": 9000}],
        },
    )
    assert error_of(heavy, 422)["code"] == "unprocessable"
    assert error_of(writer.get("/v2/nothing-here"), 404)["code"] == "not_found"
    not_allowed = writer.delete("/v2/projects")
    assert error_of(not_allowed, 405)["code"] == "method_not_allowed"
    assert "GET" in not_allowed.headers["allow"]


def test_catalog_and_api_agree(api: Api, writer: httpx.Client) -> None:
    """The API writes through the catalog: what one says, the other reads."""
    project = new_project(writer)
    with api.catalog() as catalog:
        stored = catalog.projects.get(project["id"])
        assert stored.to_dict() == project
        event = catalog.events.create(project["id"], {"key": "from_catalog"})
    got = writer.get(f"/v2/events/{event.id}")
    assert got.json() == event.to_dict() and got.headers["etag"] == f'"{event.version}"'
