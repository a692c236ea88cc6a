"""Custom events (conversion goals). Their ids are the `entity_id` of conversions the SDKs send,
and the datafile lists each with the experiments whose metrics use it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import RowMapping

from liftlog.catalog import schema
from liftlog.catalog.models import Event, Page
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
from liftlog.errors import Conflict, Problem

CATEGORIES = (
    "other",
    "add_to_cart",
    "save",
    "search",
    "share",
    "purchase",
    "convert",
    "sign_up",
    "subscribe",
)
_WRITABLE = ("key", "name", "description", "category", "archived", "event_type")
_READ_ONLY = ("id", "project_id", "is_classic", "is_editable", "created", "last_modified")


def _event(row: RowMapping) -> Event:
    return Event(
        id=row["id"],
        project_id=row["project_id"],
        key=row["key"],
        name=row["name"],
        description=row["description"],
        category=row["category"],
        archived=bool(row["archived"]),
        version=row["version"],
        created=row["created"],
        last_modified=row["last_modified"],
    )


class Events(Repository):
    def create(self, project_id: int, body: Mapping[str, Any]) -> Event:
        check = Checker(body)
        check.allow_only(_WRITABLE, _READ_ONLY)
        same_project(check, project_id)
        key = check.key("key", required=True)
        name = check.string("name")
        description = check.string("description", max_len=65_536) or ""
        category = check.choice("category", CATEGORIES) or "other"
        archived = check.boolean("archived") or False
        check.choice("event_type", ["custom"])
        check.raise_if_any("event")
        now = self.ctx.clock()
        with self.transaction() as conn:
            fetch(conn, schema.projects, project_id, "project")
            ensure_unique(conn, schema.events, project_id, "key", key, what="event")
            event_id = new_id(conn, "event")
            conn.execute(
                insert(schema.events).values(
                    id=event_id,
                    project_id=project_id,
                    key=present(key),
                    name=present(key) if name is None else name,
                    description=description,
                    category=category,
                    archived=archived,
                    version=1,
                    created=now,
                    last_modified=now,
                )
            )
            bump_revision(conn, project_id, now)
            return _event(fetch(conn, schema.events, event_id, "event"))

    def get(self, event_id: int) -> Event:
        with self.reading() as conn:
            return _event(fetch(conn, schema.events, event_id, "event"))

    def list(self, project_id: int, page: int = 1, per_page: int = DEFAULT_PER_PAGE) -> Page[Event]:
        query = select(schema.events).where(schema.events.c.project_id == project_id)
        with self.reading() as conn:
            fetch(conn, schema.projects, project_id, "project")
            rows, total = page_rows(conn, query, schema.events.c.id, page, per_page)
        return Page(tuple(_event(r) for r in rows), page, per_page, total)

    def update(
        self, event_id: int, changes: Mapping[str, Any], *, if_version: int | None = None
    ) -> Event:
        check = Checker(changes)
        check.allow_only(_WRITABLE, _READ_ONLY)
        values: dict[str, Any] = {
            "key": check.key("key"),
            "name": check.string("name"),
            "description": check.string("description", max_len=65_536),
            "category": check.choice("category", CATEGORIES),
            "archived": check.boolean("archived"),
        }
        check.choice("event_type", ["custom"])
        now = self.ctx.clock()
        with self.transaction() as conn:
            row = fetch(conn, schema.events, event_id, "event")
            same_project(check, row["project_id"])
            check.raise_if_any("event")
            values = {k: v for k, v in values.items() if v is not None}
            ensure_unique(
                conn,
                schema.events,
                row["project_id"],
                "key",
                values.get("key"),
                own_id=event_id,
                what="event",
            )
            store_changes(
                conn, schema.events, row, values, if_version=if_version, now=now, what="event"
            )
            if any(k in ("key", "archived") and values[k] != row[k] for k in values):
                bump_revision(conn, row["project_id"], now)
            return _event(fetch(conn, schema.events, event_id, "event"))

    def delete(self, event_id: int, *, if_version: int | None = None) -> None:
        """Delete an event no experiment measures; otherwise Conflict (archive it instead)."""
        m = schema.experiment_metrics
        with self.transaction() as conn:
            row = fetch(conn, schema.events, event_id, "event")
            check_version(row, if_version, "event")
            users = conn.execute(
                select(m.c.experiment_id).where(m.c.event_id == event_id).distinct()
            ).all()
            if users:
                ids = ", ".join(str(u[0]) for u in users)
                raise Conflict(
                    f"event {event_id} is a metric of experiments {ids}",
                    [Problem("$", "remove it from those experiments' metrics or archive it")],
                )
            conn.execute(delete(schema.events).where(schema.events.c.id == event_id))
            bump_revision(conn, row["project_id"], self.ctx.clock())
