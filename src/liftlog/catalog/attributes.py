"""Attributes: the user attributes the SDKs may send. The SDK puts an attribute into its events
only when the datafile lists it (with its id as `entity_id`); audiences may test any attribute."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import RowMapping

from liftlog.catalog import schema
from liftlog.catalog.models import Attribute, Page
from liftlog.catalog.repo import (
    DEFAULT_PER_PAGE,
    Repository,
    bump_revision,
    check_version,
    ensure_unique,
    fetch,
    new_id,
    page_rows,
    same_project,
    store_changes,
)
from liftlog.catalog.validate import Checker, present

_WRITABLE = ("key", "name", "description", "archived")
_READ_ONLY = ("id", "project_id", "condition_type", "last_modified")


def _attribute(row: RowMapping) -> Attribute:
    return Attribute(
        id=row["id"],
        project_id=row["project_id"],
        key=row["key"],
        name=row["name"],
        description=row["description"],
        archived=bool(row["archived"]),
        version=row["version"],
        created=row["created"],
        last_modified=row["last_modified"],
    )


class Attributes(Repository):
    def create(self, project_id: int, body: Mapping[str, Any]) -> Attribute:
        check = Checker(body)
        check.allow_only(_WRITABLE, _READ_ONLY)
        same_project(check, project_id)
        key = check.key("key", required=True)
        name = check.string("name")
        description = check.string("description", max_len=65_536) or ""
        archived = check.boolean("archived") or False
        check.raise_if_any("attribute")
        now = self.ctx.clock()
        with self.transaction() as conn:
            fetch(conn, schema.projects, project_id, "project")
            ensure_unique(conn, schema.attributes, project_id, "key", key, what="attribute")
            attribute_id = new_id(conn, "attribute")
            conn.execute(
                insert(schema.attributes).values(
                    id=attribute_id,
                    project_id=project_id,
                    key=present(key),
                    name=present(key) if name is None else name,
                    description=description,
                    archived=archived,
                    version=1,
                    created=now,
                    last_modified=now,
                )
            )
            bump_revision(conn, project_id, now)
            return _attribute(fetch(conn, schema.attributes, attribute_id, "attribute"))

    def get(self, attribute_id: int) -> Attribute:
        with self.reading() as conn:
            return _attribute(fetch(conn, schema.attributes, attribute_id, "attribute"))

    def list(
        self, project_id: int, page: int = 1, per_page: int = DEFAULT_PER_PAGE
    ) -> Page[Attribute]:
        query = select(schema.attributes).where(schema.attributes.c.project_id == project_id)
        with self.reading() as conn:
            fetch(conn, schema.projects, project_id, "project")
            rows, total = page_rows(conn, query, schema.attributes.c.id, page, per_page)
        return Page(tuple(_attribute(r) for r in rows), page, per_page, total)

    def update(
        self, attribute_id: int, changes: Mapping[str, Any], *, if_version: int | None = None
    ) -> Attribute:
        check = Checker(changes)
        check.allow_only(_WRITABLE, _READ_ONLY)
        values: dict[str, Any] = {
            "key": check.key("key"),
            "name": check.string("name"),
            "description": check.string("description", max_len=65_536),
            "archived": check.boolean("archived"),
        }
        now = self.ctx.clock()
        with self.transaction() as conn:
            row = fetch(conn, schema.attributes, attribute_id, "attribute")
            same_project(check, row["project_id"])
            check.raise_if_any("attribute")
            values = {k: v for k, v in values.items() if v is not None}
            ensure_unique(
                conn,
                schema.attributes,
                row["project_id"],
                "key",
                values.get("key"),
                own_id=attribute_id,
                what="attribute",
            )
            store_changes(
                conn,
                schema.attributes,
                row,
                values,
                if_version=if_version,
                now=now,
                what="attribute",
            )
            if any(k in ("key", "archived") and values[k] != row[k] for k in values):
                bump_revision(conn, row["project_id"], now)
            return _attribute(fetch(conn, schema.attributes, attribute_id, "attribute"))

    def delete(self, attribute_id: int, *, if_version: int | None = None) -> None:
        with self.transaction() as conn:
            row = fetch(conn, schema.attributes, attribute_id, "attribute")
            check_version(row, if_version, "attribute")
            conn.execute(delete(schema.attributes).where(schema.attributes.c.id == attribute_id))
            bump_revision(conn, row["project_id"], self.ctx.clock())
