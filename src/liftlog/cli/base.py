"""The ``liftlog`` command group and what its commands share: options, the catalog, output."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from liftlog.errors import LiftlogError

if TYPE_CHECKING:
    from liftlog.catalog.store import Catalog

DATA_HELP = "Data directory (raw log, lake, catalog). Default: ./data"
DATABASE_HELP = (
    "Catalog database URL (sqlite:///... or postgresql+psycopg://...). "
    "Default: $LIFTLOG_DATABASE_URL, else SQLite in the data directory."
)


@click.group()
@click.version_option(package_name="liftlog")
def main() -> None:
    """liftlog: a self-hosted experimentation backend that speaks Optimizely's Event API."""


def _data(existing: bool) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """``--data``; ``existing``: for commands that act on what a server stored (status,
    results, explain, rawlog prune), where a mistyped directory is an error instead of a new,
    empty one."""
    kind = click.Path(path_type=Path, exists=existing, file_okay=not existing)
    return click.option("--data", "data_dir", default="data", type=kind, help=DATA_HELP)


def _catalog(existing: bool) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """``--data`` (see `_data`) and ``--database-url``."""

    def options(fn: Callable[..., None]) -> Callable[..., None]:
        fn = click.option("--database-url", envvar="LIFTLOG_DATABASE_URL", help=DATABASE_HELP)(fn)
        return _data(existing)(fn)

    return options


data_option = _data(existing=False)
existing_data_option = _data(existing=True)
# Catalog commands: each opens the catalog (migrating it) and calls the repository the API uses.
catalog_options = _catalog(existing=False)
#: A catalog command that reads the lake too (results, explain).
reading_options = _catalog(existing=True)


def when(epoch_ms: int | None) -> str | None:
    """Epoch milliseconds as UTC ISO 8601 to the second."""
    if epoch_ms is None:
        return None
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat(timespec="seconds")


def json_option(fn: Callable[..., None]) -> Callable[..., None]:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(fn)


@contextlib.contextmanager
def open_catalog(data_dir: Path, database_url: str | None) -> Iterator[Catalog]:
    """The catalog, with its errors printed as ``error: <message>`` (and exit status 1)."""
    from liftlog.catalog.store import Catalog, default_url

    url = database_url or default_url(data_dir.resolve())
    try:
        with Catalog.open(url) as catalog:
            yield catalog
    except LiftlogError as exc:
        problems = "".join(f"\n  {d.path}: {d.problem}" for d in exc.details)
        raise click.ClickException(f"{exc.message}{problems}") from None


def show(obj: Any, as_json: bool, line: str) -> None:
    click.echo(json.dumps(obj.to_dict(), indent=2) if as_json else line)
