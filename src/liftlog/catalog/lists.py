"""Uploaded lists (list attributes): sets of user identifiers pushed by integrations, e.g. a CRM
segment. Content is CSV text of at most 5 MiB (UTF-8); lists are not part of the datafile, so they
never change its revision."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import RowMapping

from liftlog.catalog import schema
from liftlog.catalog.models import ListAttribute, Page
from liftlog.catalog.repo import (
    DEFAULT_PER_PAGE,
    Repository,
    check_version,
    ensure_unique,
    fetch,
    new_id,
    page_rows,
    same_project,
    store_changes,
)
from liftlog.catalog.validate import MAX_TEXT, Checker
from liftlog.errors import PayloadTooLarge, Problem

MAX_CONTENT_BYTES = 5 * 1024 * 1024
LIST_TYPES = ("cookie", "query_parameter", "js_variable", "id")
# The REST API v2 spells the first three in the plural; both spellings are accepted.
_ALIASES = {
    "cookies": "cookie",
    "query_parameters": "query_parameter",
    "js_variables": "js_variable",
}
_WRITABLE = ("name", "description", "list_type", "key_field", "list_content", "archived")
_READ_ONLY = ("id", "project_id", "account_id", "created", "last_modified")
L = schema.list_attributes


def _list(row: RowMapping, account_id: int, *, content: bool = True) -> ListAttribute:
    return ListAttribute(
        id=row["id"],
        project_id=row["project_id"],
        account_id=account_id,
        name=row["name"],
        description=row["description"],
        list_type=row["list_type"],
        key_field=row["key_field"],
        list_content=row["list_content"] if content else None,
        archived=bool(row["archived"]),
        version=row["version"],
        created=row["created"],
        last_modified=row["last_modified"],
    )


def _read(body: Mapping[str, Any], *, full: bool) -> tuple[Checker, dict[str, Any]]:
    """Check a body; `full` (create, replace) requires every field a list needs."""
    check = Checker(body)
    check.allow_only(_WRITABLE, _READ_ONLY)
    content = body.get("list_content")
    if isinstance(content, str) and len(content.encode()) > MAX_CONTENT_BYTES:
        raise PayloadTooLarge(
            "list content is over the limit",
            [Problem("$.list_content", f"must be at most {MAX_CONTENT_BYTES} bytes (5 MiB)")],
        )
    list_type = body.get("list_type")
    if isinstance(list_type, str) and list_type in _ALIASES:
        check = Checker({**body, "list_type": _ALIASES[list_type]})
        check.allow_only(_WRITABLE, _READ_ONLY)
    values: dict[str, Any] = {
        "name": check.string("name", required=full, empty=False),
        "description": check.string("description", max_len=MAX_TEXT),
        "list_type": check.choice("list_type", LIST_TYPES, required=full),
        "key_field": check.string("key_field", required=full, empty=False),
        "list_content": check.string("list_content", max_len=MAX_CONTENT_BYTES),
        "archived": check.boolean("archived"),
    }
    if full:
        values["description"] = values["description"] or ""
        values["list_content"] = values["list_content"] or ""
        values["archived"] = values["archived"] or False
    return check, {k: v for k, v in values.items() if v is not None}


class ListAttributes(Repository):
    def create(self, project_id: int, body: Mapping[str, Any]) -> ListAttribute:
        check, values = _read(body, full=True)
        same_project(check, project_id)
        check.raise_if_any("list attribute")
        now = self.ctx.clock()
        with self.transaction() as conn:
            project = fetch(conn, schema.projects, project_id, "project")
            ensure_unique(conn, L, project_id, "name", values["name"], what="list attribute")
            list_id = new_id(conn, "list_attribute")
            conn.execute(
                insert(L).values(
                    id=list_id,
                    project_id=project_id,
                    **values,
                    version=1,
                    created=now,
                    last_modified=now,
                )
            )
            return _list(fetch(conn, L, list_id, "list attribute"), project["account_id"])

    def get(self, list_id: int) -> ListAttribute:
        with self.reading() as conn:
            row = fetch(conn, L, list_id, "list attribute")
            project = fetch(conn, schema.projects, row["project_id"], "project")
            return _list(row, project["account_id"])

    def list(
        self, project_id: int, page: int = 1, per_page: int = DEFAULT_PER_PAGE
    ) -> Page[ListAttribute]:
        """A page of lists without their content (each may be 5 MiB): `get` one to read it."""
        columns = [c for c in L.c if c.name != "list_content"]
        query = select(*columns).where(L.c.project_id == project_id)
        with self.reading() as conn:
            project = fetch(conn, schema.projects, project_id, "project")
            rows, total = page_rows(conn, query, L.c.id, page, per_page)
        items = tuple(_list(r, project["account_id"], content=False) for r in rows)
        return Page(items, page, per_page, total)

    def _store(
        self, list_id: int, body: Mapping[str, Any], *, full: bool, if_version: int | None
    ) -> ListAttribute:
        check, values = _read(body, full=full)
        now = self.ctx.clock()
        with self.transaction() as conn:
            row = fetch(conn, L, list_id, "list attribute")
            same_project(check, row["project_id"])
            check.raise_if_any("list attribute")
            ensure_unique(
                conn,
                L,
                row["project_id"],
                "name",
                values.get("name"),
                own_id=list_id,
                what="list attribute",
            )
            store_changes(
                conn, L, row, values, if_version=if_version, now=now, what="list attribute"
            )
            project = fetch(conn, schema.projects, row["project_id"], "project")
            return _list(fetch(conn, L, list_id, "list attribute"), project["account_id"])

    def update(
        self, list_id: int, changes: Mapping[str, Any], *, if_version: int | None = None
    ) -> ListAttribute:
        """Change the fields present (PATCH)."""
        return self._store(list_id, changes, full=False, if_version=if_version)

    def replace(
        self, list_id: int, body: Mapping[str, Any], *, if_version: int | None = None
    ) -> ListAttribute:
        """Replace the whole list (PUT): absent optional fields return to their defaults."""
        return self._store(list_id, body, full=True, if_version=if_version)

    def delete(self, list_id: int, *, if_version: int | None = None) -> None:
        with self.transaction() as conn:
            row = fetch(conn, L, list_id, "list attribute")
            check_version(row, if_version, "list attribute")
            conn.execute(delete(L).where(L.c.id == list_id))
