"""`Catalog`: the one entry point to the configuration store, used alike by the API and the CLI.

    catalog = Catalog.open("sqlite:///data/catalog.db")     # or postgresql+psycopg://...
    project = catalog.projects.create({"name": "Shop"})
    event = catalog.events.create(project.id, {"key": "purchase"})
    exp = catalog.experiments.create(project.id, {"key": "checkout", "variations": [...]})
    catalog.experiments.set_status(exp.id, "running")

Each kind of object has its own repository attribute (`projects`, `experiments`, ...) with the
same verbs: `create`, `get`, `list(page, per_page)`, `update(id, changes, if_version=)`, `delete`.
Opening upgrades the schema to the newest migration.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from liftlog.catalog import migrate
from liftlog.catalog.attributes import Attributes
from liftlog.catalog.audiences import Audiences
from liftlog.catalog.events import Events
from liftlog.catalog.experiments import Experiments
from liftlog.catalog.groups import Groups
from liftlog.catalog.lists import ListAttributes
from liftlog.catalog.projects import Accounts, Projects
from liftlog.catalog.repo import Context, kind_of
from liftlog.catalog.tokens import Tokens

DATABASE_URL_ENV = "LIFTLOG_DATABASE_URL"


def epoch_ms() -> int:
    return time.time_ns() // 1_000_000


def default_url(data_dir: str | Path) -> str:
    """The database URL: ``$LIFTLOG_DATABASE_URL`` if set, else SQLite in `data_dir`."""
    return os.environ.get(DATABASE_URL_ENV) or f"sqlite:///{Path(data_dir) / 'catalog.db'}"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # Foreign keys are off by default in SQLite; a busy writer makes others wait, not fail.
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def create_catalog_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    memory = parsed.database in (None, "", ":memory:")
    if not memory:
        Path(str(parsed.database)).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, poolclass=StaticPool) if memory else create_engine(url)
    event.listen(engine, "connect", _sqlite_pragmas)
    if not memory:
        # WAL lets readers (datafile requests) run beside the one writer; it sticks to the file.
        with migrate.sqlite_file_lock(str(parsed.database)), engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")
    return engine


class Catalog:
    """Repositories over one engine, sharing an injected clock (epoch ms) and randomness."""

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Callable[[], int] = epoch_ms,
        randbytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.engine = engine
        ctx = Context(engine=engine, clock=clock, randbytes=randbytes)
        self.accounts = Accounts(ctx)
        self.projects = Projects(ctx)
        self.experiments = Experiments(ctx)
        self.events = Events(ctx)
        self.attributes = Attributes(ctx)
        self.audiences = Audiences(ctx)
        self.groups = Groups(ctx)
        self.lists = ListAttributes(ctx)
        self.tokens = Tokens(ctx)

    @classmethod
    def open(
        cls,
        url: str,
        *,
        clock: Callable[[], int] = epoch_ms,
        randbytes: Callable[[int], bytes] = os.urandom,
    ) -> Catalog:
        """Connect to `url` (making a SQLite file's folder) and migrate it to the newest schema."""
        engine = create_catalog_engine(url)
        try:
            migrate.upgrade(engine)
        except Exception:
            engine.dispose()
            raise
        return cls(engine, clock=clock, randbytes=randbytes)

    def kind_of(self, object_id: int) -> str | None:
        """What `object_id` names ("experiment", "variation", "event", ...), None if nothing."""
        with self.engine.connect() as conn:
            return kind_of(conn, object_id)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
