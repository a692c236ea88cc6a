"""Exclusion groups: experiments that share traffic so that a visitor is in at most one of them.

Each entity's `weight` (basis points, sum at most 10,000) is its share of the group's traffic; the
datafile turns the weights into cumulative ranges in entity order, so reordering entities or
changing a weight re-buckets visitors (as in Optimizely).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.engine import RowMapping

from liftlog.catalog import schema
from liftlog.catalog.models import Group, GroupEntity, Page
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
from liftlog.catalog.validate import MAX_TEXT, Checker, present

TOTAL_WEIGHT = 10_000
_WRITABLE = ("name", "description", "archived", "entities")
_READ_ONLY = ("id", "project_id", "created", "last_modified")
GR, GE = schema.groups, schema.group_entities


def read_entities(check: Checker) -> list[GroupEntity] | None:
    items = check.array("entities")
    if items is None:
        return None
    out: list[GroupEntity] = []
    seen: set[int] = set()
    for i, item in enumerate(items):
        e = Checker(item, f"{check.at('entities')}[{i}]", parent=check)
        e.allow_only(("id", "kind", "weight"))
        entity_id = e.integer("id", required=True, low=1)
        e.choice("kind", ["Experiment"], required=True)
        weight = e.integer("weight", required=True, low=0, high=TOTAL_WEIGHT)
        if entity_id is not None and entity_id in seen:
            e.breaks(e.at("id"), "appears twice in this group")
        if entity_id is not None and weight is not None:
            seen.add(entity_id)
            out.append(GroupEntity(entity_id, weight))
    total = sum(e.weight for e in out)
    if total > TOTAL_WEIGHT:
        check.breaks(check.at("entities"), f"weights add up to {total}, more than {TOTAL_WEIGHT}")
    return out


def load(conn: Connection, rows: list[RowMapping]) -> list[Group]:
    ids = [r["id"] for r in rows]
    entities: dict[int, list[GroupEntity]] = {i: [] for i in ids}
    if ids:
        for e in conn.execute(
            select(GE).where(GE.c.group_id.in_(ids)).order_by(GE.c.position)
        ).mappings():
            entities[e["group_id"]].append(GroupEntity(e["experiment_id"], e["weight"]))
    return [
        Group(
            id=r["id"],
            project_id=r["project_id"],
            name=r["name"],
            description=r["description"],
            archived=bool(r["archived"]),
            entities=tuple(entities[r["id"]]),
            version=r["version"],
            created=r["created"],
            last_modified=r["last_modified"],
        )
        for r in rows
    ]


def _one(conn: Connection, group_id: int) -> Group:
    return load(conn, [fetch(conn, GR, group_id, "group")])[0]


class Groups(Repository):
    def _place(
        self,
        conn: Connection,
        check: Checker,
        project_id: int,
        group_id: int,
        entities: list[GroupEntity],
    ) -> None:
        """Check the entities against the database, then make them the group's members."""
        for i, entity in enumerate(entities):
            row = conn.execute(
                select(schema.experiments.c.project_id).where(schema.experiments.c.id == entity.id)
            ).first()
            if row is None or row[0] != project_id:
                check.breaks(f"$.entities[{i}].id", f"no experiment {entity.id} in this project")
            other = conn.execute(
                select(GE.c.group_id).where(
                    GE.c.experiment_id == entity.id, GE.c.group_id != group_id
                )
            ).first()
            if other is not None:
                check.breaks(f"$.entities[{i}].id", f"is already in group {other[0]}")
        check.raise_if_any("group")
        conn.execute(delete(GE).where(GE.c.group_id == group_id))
        for position, entity in enumerate(entities):
            conn.execute(
                insert(GE).values(
                    group_id=group_id,
                    experiment_id=entity.id,
                    position=position,
                    weight=entity.weight,
                )
            )

    def create(self, project_id: int, body: Mapping[str, Any]) -> Group:
        check = Checker(body)
        check.allow_only(_WRITABLE, _READ_ONLY)
        same_project(check, project_id)
        name = check.string("name", required=True, empty=False)
        description = check.string("description", max_len=MAX_TEXT) or ""
        archived = check.boolean("archived") or False
        entities = read_entities(check)
        check.raise_if_any("group")
        now = self.ctx.clock()
        with self.transaction() as conn:
            fetch(conn, schema.projects, project_id, "project")
            group_id = new_id(conn, "group")
            conn.execute(
                insert(GR).values(
                    id=group_id,
                    project_id=project_id,
                    name=present(name),
                    description=description,
                    archived=archived,
                    version=1,
                    created=now,
                    last_modified=now,
                )
            )
            self._place(conn, check, project_id, group_id, entities or [])
            bump_revision(conn, project_id, now)
            return _one(conn, group_id)

    def get(self, group_id: int) -> Group:
        with self.reading() as conn:
            return _one(conn, group_id)

    def list(self, project_id: int, page: int = 1, per_page: int = DEFAULT_PER_PAGE) -> Page[Group]:
        query = select(GR).where(GR.c.project_id == project_id)
        with self.reading() as conn:
            fetch(conn, schema.projects, project_id, "project")
            rows, total = page_rows(conn, query, GR.c.id, page, per_page)
            return Page(tuple(load(conn, rows)), page, per_page, total)

    def update(
        self, group_id: int, changes: Mapping[str, Any], *, if_version: int | None = None
    ) -> Group:
        """Apply the fields present; an `entities` list replaces the members."""
        check = Checker(changes)
        check.allow_only(_WRITABLE, _READ_ONLY)
        values: dict[str, Any] = {
            "name": check.string("name", empty=False),
            "description": check.string("description", max_len=MAX_TEXT),
            "archived": check.boolean("archived"),
        }
        entities = read_entities(check)
        now = self.ctx.clock()
        with self.transaction() as conn:
            before = _one(conn, group_id)
            same_project(check, before.project_id)
            check.raise_if_any("group")
            row = fetch(conn, GR, group_id, "group")
            values = {k: v for k, v in values.items() if v is not None}
            store_changes(conn, GR, row, values, if_version=if_version, now=now, what="group")
            if entities is not None:
                self._place(conn, check, before.project_id, group_id, entities)
            after = _one(conn, group_id)
            if after.entities != before.entities:
                bump_revision(conn, before.project_id, now)
            return after

    def delete(self, group_id: int, *, if_version: int | None = None) -> None:
        """Delete the group; its experiments stay, no longer mutually exclusive."""
        with self.transaction() as conn:
            row = fetch(conn, GR, group_id, "group")
            check_version(row, if_version, "group")
            conn.execute(delete(GE).where(GE.c.group_id == group_id))
            conn.execute(delete(GR).where(GR.c.id == group_id))
            bump_revision(conn, row["project_id"], self.ctx.clock())
