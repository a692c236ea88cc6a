"""What every repository shares: transactions, id allocation, revisions, optimistic locking, pages.

Optimistic locking: an update names the version it read (`if_version`, from an If-Match header);
the UPDATE only matches that version, so two writers that read the same version cannot both win.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, Select, Table, func, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from liftlog.catalog import schema
from liftlog.catalog.validate import Checker
from liftlog.errors import Conflict, InvalidInput, NotFound, Problem

DEFAULT_PER_PAGE = 25
MAX_PER_PAGE = 100


@dataclass(frozen=True)
class Context:
    """The engine plus the injected clock (epoch ms) and randomness (n -> n random bytes)."""

    engine: Engine
    clock: Callable[[], int]
    randbytes: Callable[[int], bytes]


class Repository:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction; a uniqueness violation that slipped past the checks becomes Conflict."""
        try:
            with self.ctx.engine.begin() as conn:
                yield conn
        except IntegrityError as exc:
            raise Conflict("the change conflicts with an existing object") from exc

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        with self.ctx.engine.connect() as conn:
            yield conn


def new_id(conn: Connection, kind: str) -> int:
    """A fresh id from the one sequence shared by every kind of object."""
    result = conn.execute(schema.ids.insert().values(kind=kind))
    key = result.inserted_primary_key
    if key is None:  # pragma: no cover - every supported dialect returns it
        raise RuntimeError("database returned no id")
    return int(key[0])


def kind_of(conn: Connection, object_id: int) -> str | None:
    if not 0 < object_id <= MAX_ID:
        return None
    row = conn.execute(select(schema.ids.c.kind).where(schema.ids.c.id == object_id)).first()
    return None if row is None else str(row[0])


def bump_revision(conn: Connection, project_id: int, now: int) -> None:
    """The project's datafile changed: SDKs see a new `revision` on their next poll."""
    p = schema.projects
    conn.execute(
        update(p).where(p.c.id == project_id).values(revision=p.c.revision + 1, last_modified=now)
    )


#: Ids are 64-bit integers in both databases: a larger number names nothing (and SQLite can't
#: even bind it).
MAX_ID = (1 << 63) - 1


def is_id_text(raw: str) -> bool:
    """Whether ``raw`` is written as the APIs take ids and counts: ASCII digits, at most 18 of
    them (so within 64 bits). ``int`` alone would also take ``1_0``, `` 7``, ``-1`` and other
    scripts' digits."""
    return raw.isascii() and raw.isdigit() and len(raw) <= 18


def fetch(conn: Connection, table: Table, object_id: int, what: str) -> RowMapping:
    row = None
    if 0 < object_id <= MAX_ID:
        row = conn.execute(select(table).where(table.c.id == object_id)).mappings().first()
    if row is None:
        raise NotFound(f"{what} {object_id} not found")
    return row


def check_version(row: RowMapping, if_version: int | None, what: str) -> None:
    if if_version is not None and if_version != row["version"]:
        raise Conflict(
            f"{what} {row['id']} is at version {row['version']}, not {if_version}",
            [Problem("$", "the object changed since it was read; fetch it again")],
        )


def store_changes(
    conn: Connection,
    table: Table,
    row: RowMapping,
    values: dict[str, Any],
    *,
    if_version: int | None,
    now: int,
    what: str,
) -> None:
    """Write `values` and bump the row's version, provided nobody changed it since it was read."""
    expected = row["version"]
    check_version(row, if_version, what)
    result = conn.execute(
        update(table)
        .where(table.c.id == row["id"], table.c.version == expected)
        .values(**values, version=expected + 1, last_modified=now)
    )
    if result.rowcount != 1:
        raise Conflict(f"{what} {row['id']} was changed concurrently; fetch it again")


def check_page(page: int, per_page: int) -> None:
    problems = []
    if isinstance(page, bool) or not isinstance(page, int) or page < 1:
        problems.append(Problem("$.page", "must be an integer of at least 1"))
    if (
        isinstance(per_page, bool)
        or not isinstance(per_page, int)
        or not 1 <= per_page <= MAX_PER_PAGE
    ):
        problems.append(Problem("$.per_page", f"must be an integer from 1 to {MAX_PER_PAGE}"))
    if problems:
        raise InvalidInput("invalid pagination", problems)


def page_rows(
    conn: Connection, query: Select[Any], order: Any, page: int, per_page: int
) -> tuple[list[RowMapping], int]:
    """One page of `query` (ordered by `order`) and the total count over all pages."""
    check_page(page, per_page)
    total = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = (
        conn.execute(query.order_by(order).limit(per_page).offset((page - 1) * per_page))
        .mappings()
        .all()
    )
    return list(rows), int(total)


def same_project(check: Checker, project_id: int) -> None:
    """A body may repeat its `project_id` (as a GET returned it) but not contradict it."""
    if check.has("project_id"):
        sent = check.integer("project_id")
        if sent is not None and sent != project_id:
            check.breaks(check.at("project_id"), f"does not match project {project_id}")


def key_taken(
    conn: Connection, table: Table, project_id: int, column: str, value: str
) -> int | None:
    """The id of the project's object whose `column` equals `value`, if any."""
    row = conn.execute(
        select(table.c.id).where(table.c.project_id == project_id, table.c[column] == value)
    ).first()
    return None if row is None else int(row[0])


def ensure_unique(
    conn: Connection,
    table: Table,
    project_id: int,
    column: str,
    value: str | None,
    *,
    own_id: int | None = None,
    what: str,
) -> None:
    if value is None:
        return
    taken = key_taken(conn, table, project_id, column, value)
    if taken is not None and taken != own_id:
        raise Conflict(
            f"{what} with {column} {value!r} already exists in project {project_id}",
            [Problem(f"$.{column}", f"already used by {what} {taken}")],
        )
