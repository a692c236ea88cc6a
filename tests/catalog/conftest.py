"""Catalog fixtures. `catalog` is parametrised over SQLite and PostgreSQL, so every test that uses
it runs twice; the PostgreSQL cluster is started once per session and gives each test an empty
database of its own. If PostgreSQL cannot start, those tests fail (they never skip)."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from optimizely import optimizely
from optimizely.helpers.sdk_settings import OptimizelySdkSettings

from liftlog.catalog import migrate
from liftlog.catalog.datafile import datafile_bytes
from liftlog.catalog.models import Project
from liftlog.catalog.store import Catalog, create_catalog_engine
from tests.pg import PostgresCluster, postgres_cluster

START_MS = 1_700_000_000_000
_databases = itertools.count()


class Clock:
    """A clock the test moves by hand (epoch ms)."""

    def __init__(self, now: int = START_MS) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> int:
        self.now += ms
        return self.now


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    with postgres_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def pg_migrated(pg_cluster: PostgresCluster) -> str:
    """Name of a database migrated to head, copied by each test that needs a catalog."""
    engine = create_catalog_engine(pg_cluster.create_database("catalog_template"))
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()
    return "catalog_template"


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.db'}"
        return
    cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
    name = f"catalog_{next(_databases)}"
    yield cluster.create_database(name)
    cluster.drop_database(name)


@pytest.fixture
def catalog_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database already at the newest schema (on PostgreSQL, a copy of a migrated one)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.db'}"
        return
    cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
    template: str = request.getfixturevalue("pg_migrated")
    name = f"catalog_{next(_databases)}"
    yield cluster.create_database(name, template=template)
    cluster.drop_database(name)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def catalog(catalog_url: str, clock: Clock) -> Iterator[Catalog]:
    with Catalog.open(catalog_url, clock=clock, randbytes=random.Random(7).randbytes) as cat:
        yield cat


@pytest.fixture
def project(catalog: Catalog) -> Project:
    return catalog.projects.create({"name": "Shop"})


class DiscardEvents:
    """Event dispatcher for the official SDK that sends nothing."""

    def dispatch_event(self, event: object) -> None:
        return None


def sdk_client(catalog: Catalog, sdk_key: str) -> optimizely.Optimizely:
    """The official SDK, loaded with the catalog's datafile; fails the test if it rejects it."""
    datafile = json.loads(datafile_bytes(catalog, sdk_key))
    client = optimizely.Optimizely(
        datafile=json.dumps(datafile),
        event_dispatcher=DiscardEvents(),
        settings=OptimizelySdkSettings(odp_disabled=True),
    )
    assert client.is_valid, "the official SDK rejected the datafile"
    return client
