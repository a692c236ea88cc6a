"""A real ``liftlog serve`` with a catalog, and tokens to call it with.

`api` is one SQLite-backed server per test module (each test makes its own project, so tests don't
see each other's objects). Tokens are issued through the catalog itself, as ``liftlog token
create`` does, before the server starts.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from liftlog.catalog.store import Catalog
from tests.pg import PostgresCluster, postgres_cluster
from tests.server import Server, free_port


@dataclass
class Api:
    server: Server
    database_url: str
    write: str
    read: str
    datafile: str
    other_account_write: str
    other_account_datafile: str

    @property
    def url(self) -> str:
        return self.server.url

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {} if token is None else {"authorization": f"Bearer {token}"}
        return httpx.Client(base_url=self.server.url, headers=headers, timeout=30)

    def catalog(self) -> Catalog:
        return Catalog.open(self.database_url)


def start_api(data_dir: Path, database_url: str | None = None) -> Api:
    """Issue tokens in a fresh catalog, then serve it (``--database-url`` when given)."""
    url = database_url or f"sqlite:///{data_dir / 'catalog.db'}"
    with Catalog.open(url) as catalog:
        catalog.accounts.default()  # the oldest account is the default one
        other = catalog.accounts.create("other")
        secrets = {
            "write": catalog.tokens.create("writer", "write").secret,
            "read": catalog.tokens.create("reader", "read").secret,
            "datafile": catalog.tokens.create("sdk", "datafile").secret,
            "other_account_write": catalog.tokens.create(
                "other", "write", account_id=other.id
            ).secret,
            "other_account_datafile": catalog.tokens.create(
                "other sdk", "datafile", account_id=other.id
            ).secret,
        }
    extra = () if database_url is None else ("--database-url", database_url)
    server = Server(data_dir, free_port()).start(*extra)
    return Api(server=server, database_url=url, **secrets)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    served = start_api(tmp_path_factory.mktemp("api") / "data")
    try:
        yield served
    finally:
        served.server.stop()


@pytest.fixture(scope="module")
def writer(api: Api) -> Iterator[httpx.Client]:
    with api.client(api.write) as client:
        yield client


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    with postgres_cluster() as cluster:
        yield cluster


def created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    """The shared error body, checked for its shape."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert set(error) == {"code", "message", "details"}
    assert isinstance(error["message"], str) and error["message"]
    for detail in error["details"]:
        assert set(detail) == {"path", "problem"}
    return error


def new_project(client: httpx.Client, name: str = "Shop") -> dict[str, Any]:
    return created(client.post("/v2/projects", json={"name": name}))
