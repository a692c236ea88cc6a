"""Schema migrations: Alembic, run programmatically on the catalog's own engine.

`upgrade(engine)` brings any database (empty or older) to the newest revision; `Catalog.open` calls
it, so no separate migration step exists for users. The scripts live in ``migrations/``.

Migrations of one database run one at a time: on PostgreSQL under a transaction-level advisory
lock (servers on several machines sharing one catalog may start together), on a SQLite file under
an exclusive ``flock`` of ``<file>.migrate-lock`` beside it (a server and a ``liftlog`` command
started at once on a fresh data directory). The later ones find the schema at head. Without the
locks, of four processes opening a fresh database at once, 1 to 3 (SQLite) and always 3
(PostgreSQL) failed on tables that already existed, over five tries of each.

A database already at `HEAD` is left as it is after one read of its recorded revision, without
importing Alembic: importing it and running its environment took 0.4 s or more of every server
start and of every ``liftlog`` command that opens the catalog.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
#: The newest revision in ``migrations/versions``; a test holds it equal to Alembic's `head`.
HEAD = "0005"
#: The advisory lock's key (any 64-bit number that nothing else in the database uses).
MIGRATION_LOCK = 0x6C6966746C6F67  # "liftlog"


def config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head() -> str:
    """The newest revision id shipped with this package, as Alembic reads the scripts."""
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory.from_config(config()).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"migrations must have exactly one head, found {heads}")
    return str(heads[0])


def current(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        rev = MigrationContext.configure(conn).get_current_revision()
    return None if rev is None else str(rev)


@contextlib.contextmanager
def sqlite_file_lock(database: str) -> Iterator[None]:
    """Hold the exclusive ``flock`` of the SQLite file ``database``'s ``.migrate-lock``: for
    migrating it, and for switching a fresh file to WAL (which other processes opening it at the
    same moment would find locked)."""
    fd = os.open(f"{database}.migrate-lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def _exclusive(engine: Engine) -> Iterator[Connection]:
    """A transaction on ``engine`` that no other process migrating the database runs beside."""
    url = engine.url
    with contextlib.ExitStack() as stack:
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            stack.enter_context(sqlite_file_lock(url.database))  # released after the commit
        conn = stack.enter_context(engine.begin())
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        yield conn


def _recorded(engine: Engine) -> list[str]:
    """The revisions recorded in the database's ``alembic_version`` table (none if it has none)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return []
        return [
            str(v) for v in conn.execute(text("SELECT version_num FROM alembic_version")).scalars()
        ]


def upgrade(engine: Engine, revision: str = "head") -> None:
    if revision == "head" and _recorded(engine) == [HEAD]:
        return
    from alembic import command

    cfg = config()
    with _exclusive(engine) as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def downgrade(engine: Engine, revision: str) -> None:
    from alembic import command

    cfg = config()
    with _exclusive(engine) as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)
