"""Schema migrations: Alembic, run programmatically on the catalog's own engine.

`upgrade(engine)` brings any database (empty or older) to the newest revision; `Catalog.open` calls
it, so no separate migration step exists for users. The scripts live in ``migrations/``.

On PostgreSQL a migration holds a transaction-level advisory lock: servers on several machines that
share one catalog and start together migrate one after the other, and the later ones find the
schema already at head. (Without it they raced to create the same tables and all but one failed.)
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

MIGRATIONS = Path(__file__).parent / "migrations"
#: The advisory lock's key (any 64-bit number that nothing else in the database uses).
MIGRATION_LOCK = 0x6C6966746C6F67  # "liftlog"


def config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head() -> str:
    """The newest revision id shipped with this package."""
    heads = ScriptDirectory.from_config(config()).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"migrations must have exactly one head, found {heads}")
    return str(heads[0])


def current(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    with engine.connect() as conn:
        rev = MigrationContext.configure(conn).get_current_revision()
    return None if rev is None else str(rev)


def _lock(conn: Connection) -> None:
    """Wait for any other migration of this database; the lock goes with the transaction."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})


def upgrade(engine: Engine, revision: str = "head") -> None:
    cfg = config()
    with engine.begin() as conn:
        _lock(conn)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def downgrade(engine: Engine, revision: str) -> None:
    cfg = config()
    with engine.begin() as conn:
        _lock(conn)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)
