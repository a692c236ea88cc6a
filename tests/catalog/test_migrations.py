from __future__ import annotations

import contextlib
import hashlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from liftlog.catalog import migrate
from liftlog.catalog.schema import metadata
from liftlog.catalog.store import DATABASE_URL_ENV, Catalog, create_catalog_engine, default_url
from tests.pg import PostgresCluster


def test_migrations_upgrade_an_empty_database_to_head(db_url: str) -> None:
    engine = create_catalog_engine(db_url)
    try:
        assert migrate.current(engine) is None
        assert inspect(engine).get_table_names() == []
        migrate.upgrade(engine)
        assert migrate.current(engine) == migrate.head()
        assert set(inspect(engine).get_table_names()) == set(metadata.tables) | {"alembic_version"}
    finally:
        engine.dispose()


def test_migrations_leave_the_schema_equal_to_the_tables_module(db_url: str) -> None:
    engine = create_catalog_engine(db_url)
    try:
        migrate.upgrade(engine)
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, metadata)
        assert diff == []
    finally:
        engine.dispose()


def test_migrations_downgrade_to_empty_and_back(db_url: str) -> None:
    engine = create_catalog_engine(db_url)
    try:
        migrate.upgrade(engine)
        migrate.downgrade(engine, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        migrate.upgrade(engine)
        assert migrate.current(engine) == migrate.head()
    finally:
        engine.dispose()


def test_head_is_alembics_head() -> None:
    """`migrate.HEAD` lets a catalog at head open without Alembic; a new migration moves it."""
    assert migrate.head() == migrate.HEAD


def test_a_catalog_at_head_opens_without_alembic(db_url: str) -> None:
    """Only a database that needs migrating loads Alembic: a server start or a ``liftlog``
    command on a catalog at head reads its revision and goes on."""
    probe = (
        "import sys; from liftlog.catalog.store import Catalog; Catalog.open(sys.argv[1]).close();"
        " print('alembic' in sys.modules)"
    )

    def alembic_loaded() -> bool:
        done = subprocess.run(
            [sys.executable, "-c", probe, db_url], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip() == "True"

    assert alembic_loaded()  # an empty database is migrated
    assert not alembic_loaded()  # then it is at head
    engine = create_catalog_engine(db_url)
    try:
        migrate.downgrade(engine, "0004")
    finally:
        engine.dispose()
    assert alembic_loaded()  # one revision behind: migrated again
    engine = create_catalog_engine(db_url)
    try:
        assert migrate.current(engine) == migrate.HEAD
    finally:
        engine.dispose()


@contextlib.contextmanager
def at_revision(db_url: str, revision: str, *rows: str) -> Iterator[Engine]:
    """An engine on a database at ``revision`` holding an account and ``rows`` (SQL inserts),
    to migrate to head."""
    engine = create_catalog_engine(db_url)
    try:
        migrate.upgrade(engine, revision)
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO accounts (id, name, version, created, last_modified)"
                " VALUES (1, 'a', 1, 0, 0)"
            ))  # fmt: skip
            for row in rows:
                conn.execute(text(row))
        yield engine
    finally:
        engine.dispose()


OLD_HASH = "$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA"


def test_users_from_before_their_own_stamp_keep_the_one_their_sessions_hold(db_url: str) -> None:
    """Before revision 0004 a session's stamp was the SHA-256 of the password hash."""
    user = (
        "INSERT INTO users (id, account_id, email, password_hash, created)"
        f" VALUES (2, 1, 'ana@example.com', '{OLD_HASH}', 0)"
    )
    with at_revision(db_url, "0003", user) as engine:
        migrate.upgrade(engine)
        with engine.connect() as conn:
            stamp = conn.execute(text("SELECT session_stamp FROM users")).scalar_one()
    assert stamp == hashlib.sha256(OLD_HASH.encode()).hexdigest()[:16]


def test_oauth_clients_from_before_their_auth_method_keep_what_they_were_told(
    db_url: str,
) -> None:
    clients = [
        "INSERT INTO oauth_clients (id, account_id, client_id, secret_sha256, name, redirect_uris,"
        f" scope, created) VALUES ({row_id}, 1, 'c{row_id}', {secret}, 'x', '[]', 'read', 0)"
        for row_id, secret in ((2, "'f00d'"), (3, "NULL"))
    ]
    with at_revision(db_url, "0004", *clients) as engine:
        migrate.upgrade(engine)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT id, auth_method FROM oauth_clients ORDER BY id"))
            assert [tuple(r) for r in rows] == [(2, "client_secret_basic"), (3, "none")]


def test_open_twice_keeps_data(db_url: str) -> None:
    with Catalog.open(db_url) as first:
        project = first.projects.create({"name": "Kept"})
    with Catalog.open(db_url) as second:
        assert second.projects.get(project.id).name == "Kept"


def test_open_sqlite_creates_missing_folders(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/a/b/catalog.db"
    with Catalog.open(url) as cat:
        assert cat.projects.list().total == 0


def test_open_in_memory_sqlite_works_across_calls() -> None:
    with Catalog.open("sqlite://") as cat:
        project = cat.projects.create({"name": "Mem"})
        assert cat.projects.get(project.id).name == "Mem"


def test_open_refuses_a_database_it_cannot_reach() -> None:
    with pytest.raises(Exception, match=r"connect|Connection|refused"):
        Catalog.open("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")


def test_default_url_is_sqlite_in_the_data_dir_unless_the_environment_says(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    assert default_url(f"{tmp_path}/data") == f"sqlite:///{tmp_path}/data/catalog.db"
    monkeypatch.setenv(DATABASE_URL_ENV, "postgresql+psycopg://db/catalog")
    assert default_url(f"{tmp_path}/data") == "postgresql+psycopg://db/catalog"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_processes_opening_a_fresh_catalog_at_once_all_succeed(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """A server and a command on a fresh data directory, or servers on several machines sharing
    one PostgreSQL catalog, may start together: one migrates, the others wait and find the
    schema at head."""
    for attempt in range(3):
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path / str(attempt) / 'catalog.db'}"
        else:
            cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
            url = cluster.create_database(f"race_{attempt}")
        probe = "import sys; from liftlog.catalog.store import Catalog; Catalog.open(sys.argv[1])"
        procs = [
            subprocess.Popen([sys.executable, "-c", probe, url], stderr=subprocess.PIPE, text=True)
            for _ in range(4)
        ]
        errors = [p.communicate(timeout=120)[1] for p in procs]
        assert all(p.returncode == 0 for p in procs), "\n".join(errors)
        engine = create_catalog_engine(url)
        try:
            assert migrate.current(engine) == migrate.head()
        finally:
            engine.dispose()
