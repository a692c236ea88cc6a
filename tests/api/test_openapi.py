"""The OpenAPI document describes exactly the routes served, and /docs works offline."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from starlette.routing import Route

from liftlog.api.app import create_app
from liftlog.settings import Settings
from tests.api.conftest import Api

OWN = {"/", "/healthz", "/openapi.json", "/docs"}


def test_openapi_describes_every_served_route(api: Api, tmp_path: Path) -> None:
    with api.client() as anonymous:
        doc = anonymous.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    described = {(path, method.upper()) for path, item in doc["paths"].items() for method in item}
    app = create_app(Settings(data_dir=tmp_path))
    served = {
        (route.path, method)
        for route in app.web.routes
        if isinstance(route, Route) and route.path not in OWN
        for method in route.methods or ()
        if method != "HEAD"
    }
    assert described == served
    schemas = doc["components"]["schemas"]
    for path, item in doc["paths"].items():
        for method, op in item.items():
            refs = re.findall(r'"#/components/schemas/(\w+)"', str(op).replace("'", '"'))
            assert all(ref in schemas for ref in refs), (path, method, refs)
            if path.startswith("/v2/"):
                scope = "read" if method == "get" else "write"
                assert op["security"] == [{"bearer": [scope]}]


def test_openapi_covers_the_optimizely_paths(api: Api) -> None:
    with api.client() as anonymous:
        paths = anonymous.get("/openapi.json").json()["paths"]
    for path, methods in {
        "/v2/projects": {"get", "post"},
        "/v2/projects/{project_id}": {"get", "patch"},
        "/v2/experiments": {"get", "post"},
        "/v2/experiments/{experiment_id}": {"get", "patch", "delete"},
        "/v2/events": {"get"},
        "/v2/events/{event_id}": {"get"},
        "/v2/projects/{project_id}/custom_events": {"post"},
        "/v2/projects/{project_id}/custom_events/{event_id}": {"patch", "delete"},
        "/v2/attributes/{attribute_id}": {"get", "patch", "delete"},
        "/v2/audiences/{audience_id}": {"get", "patch"},
        "/v2/groups/{group_id}": {"get", "patch", "delete"},
        "/v2/list_attributes/{list_attribute_id}": {"get", "patch", "put", "delete"},
    }.items():
        assert methods <= set(paths[path]), path


def test_docs_page_needs_nothing_from_elsewhere(api: Api) -> None:
    with api.client() as anonymous:
        page = anonymous.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    html = page.text
    assert 'fetch("/openapi.json")' in html
    # No script, style or image from another origin.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "@import" not in html


def test_index_points_at_the_api(api: Api) -> None:
    index = httpx.get(api.url + "/").json()
    assert index["openapi"].endswith("/openapi.json")
    assert index["docs"].endswith("/docs")
