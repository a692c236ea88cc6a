"""Audiences: named condition trees over user attributes, referenced by experiments."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.engine import RowMapping

from liftlog.catalog import schema
from liftlog.catalog.conditions import audience_conditions, audience_ids
from liftlog.catalog.models import Audience, Page
from liftlog.catalog.repo import (
    DEFAULT_PER_PAGE,
    Repository,
    bump_revision,
    check_version,
    fetch,
    new_id,
    page_rows,
    same_project,
    store_changes,
)
from liftlog.catalog.validate import Checker, present
from liftlog.errors import Conflict, Problem

_WRITABLE = ("name", "description", "conditions", "archived", "segmentation")
_READ_ONLY = (
    "id",
    "project_id",
    "is_classic",
    "experiment_count",
    "for_journey",
    "created",
    "last_modified",
)


def _audience(row: RowMapping) -> Audience:
    return Audience(
        id=row["id"],
        project_id=row["project_id"],
        name=row["name"],
        description=row["description"],
        conditions=row["conditions"],
        archived=bool(row["archived"]),
        version=row["version"],
        created=row["created"],
        last_modified=row["last_modified"],
    )


def experiments_using(conn: Connection, project_id: int, audience_id: int) -> list[int]:
    e = schema.experiments
    rows = conn.execute(
        select(e.c.id, e.c.audience_conditions).where(e.c.project_id == project_id)
    ).all()
    return [int(r[0]) for r in rows if audience_id in audience_ids(r[1])]


class Audiences(Repository):
    def create(self, project_id: int, body: Mapping[str, Any]) -> Audience:
        check = Checker(body)
        check.allow_only(_WRITABLE, _READ_ONLY)
        same_project(check, project_id)
        name = check.string("name", required=True, empty=False)
        description = check.string("description", max_len=65_536) or ""
        conditions = audience_conditions(check)
        archived = check.boolean("archived") or False
        check.boolean("segmentation")
        check.raise_if_any("audience")
        now = self.ctx.clock()
        with self.transaction() as conn:
            fetch(conn, schema.projects, project_id, "project")
            audience_id = new_id(conn, "audience")
            conn.execute(
                insert(schema.audiences).values(
                    id=audience_id,
                    project_id=project_id,
                    name=present(name),
                    description=description,
                    conditions=present(conditions),
                    archived=archived,
                    version=1,
                    created=now,
                    last_modified=now,
                )
            )
            bump_revision(conn, project_id, now)
            return _audience(fetch(conn, schema.audiences, audience_id, "audience"))

    def get(self, audience_id: int) -> Audience:
        with self.reading() as conn:
            return _audience(fetch(conn, schema.audiences, audience_id, "audience"))

    def list(
        self, project_id: int, page: int = 1, per_page: int = DEFAULT_PER_PAGE
    ) -> Page[Audience]:
        query = select(schema.audiences).where(schema.audiences.c.project_id == project_id)
        with self.reading() as conn:
            fetch(conn, schema.projects, project_id, "project")
            rows, total = page_rows(conn, query, schema.audiences.c.id, page, per_page)
        return Page(tuple(_audience(r) for r in rows), page, per_page, total)

    def update(
        self, audience_id: int, changes: Mapping[str, Any], *, if_version: int | None = None
    ) -> Audience:
        check = Checker(changes)
        check.allow_only(_WRITABLE, _READ_ONLY)
        values: dict[str, Any] = {
            "name": check.string("name", empty=False),
            "description": check.string("description", max_len=65_536),
            "conditions": audience_conditions(check) if check.has("conditions") else None,
            "archived": check.boolean("archived"),
        }
        check.boolean("segmentation")
        now = self.ctx.clock()
        with self.transaction() as conn:
            row = fetch(conn, schema.audiences, audience_id, "audience")
            same_project(check, row["project_id"])
            check.raise_if_any("audience")
            values = {k: v for k, v in values.items() if v is not None}
            store_changes(
                conn,
                schema.audiences,
                row,
                values,
                if_version=if_version,
                now=now,
                what="audience",
            )
            if any(k in ("name", "conditions") and values[k] != row[k] for k in values):
                bump_revision(conn, row["project_id"], now)
            return _audience(fetch(conn, schema.audiences, audience_id, "audience"))

    def delete(self, audience_id: int, *, if_version: int | None = None) -> None:
        """Delete an audience no experiment targets; otherwise Conflict."""
        with self.transaction() as conn:
            row = fetch(conn, schema.audiences, audience_id, "audience")
            check_version(row, if_version, "audience")
            users = experiments_using(conn, row["project_id"], audience_id)
            if users:
                raise Conflict(
                    f"audience {audience_id} is targeted by experiments "
                    + ", ".join(map(str, users)),
                    [Problem("$", "remove it from those experiments' audience_conditions")],
                )
            conn.execute(delete(schema.audiences).where(schema.audiences.c.id == audience_id))
            bump_revision(conn, row["project_id"], self.ctx.clock())
