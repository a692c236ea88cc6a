"""Accounts and projects. A project owns everything else and carries the datafile's SDK key and
revision counter; an account owns projects, uploaded lists and personal access tokens."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.engine import RowMapping

from liftlog.catalog import schema
from liftlog.catalog.models import Account, Page, Project
from liftlog.catalog.repo import (
    DEFAULT_PER_PAGE,
    Repository,
    bump_revision,
    fetch,
    new_id,
    page_rows,
    store_changes,
)
from liftlog.catalog.validate import Checker
from liftlog.errors import NotFound

PLATFORMS = ("custom", "web", "ios", "android")
PROJECT_STATUSES = ("active", "archived")
_WRITABLE = (
    "name",
    "description",
    "platform",
    "status",
    "environment_key",
    "anonymize_ip",
    "bot_filtering",
    "confidence_threshold",
)
_READ_ONLY = (
    "id",
    "account_id",
    "sdk_key",
    "revision",
    "is_classic",
    "created",
    "last_modified",
)
# Fields copied into the datafile: changing one of them is a new datafile revision.
_IN_DATAFILE = ("environment_key", "anonymize_ip", "bot_filtering")


def _account(row: RowMapping) -> Account:
    return Account(
        id=row["id"],
        name=row["name"],
        version=row["version"],
        created=row["created"],
        last_modified=row["last_modified"],
    )


def _project(row: RowMapping) -> Project:
    return Project(
        id=row["id"],
        account_id=row["account_id"],
        name=row["name"],
        description=row["description"],
        platform=row["platform"],
        status=row["status"],
        sdk_key=row["sdk_key"],
        environment_key=row["environment_key"],
        revision=row["revision"],
        anonymize_ip=bool(row["anonymize_ip"]),
        bot_filtering=bool(row["bot_filtering"]),
        confidence_threshold=float(row["confidence_threshold"]),
        version=row["version"],
        created=row["created"],
        last_modified=row["last_modified"],
    )


class Accounts(Repository):
    def create(self, name: str) -> Account:
        check = Checker({"name": name})
        check.string("name", required=True, empty=False)
        check.raise_if_any("account")
        now = self.ctx.clock()
        with self.transaction() as conn:
            account_id = new_id(conn, "account")
            conn.execute(
                insert(schema.accounts).values(
                    id=account_id, name=name, version=1, created=now, last_modified=now
                )
            )
            return _account(fetch(conn, schema.accounts, account_id, "account"))

    def get(self, account_id: int) -> Account:
        with self.reading() as conn:
            return _account(fetch(conn, schema.accounts, account_id, "account"))

    def default(self) -> Account:
        """The oldest account, created (named "default") if there is none yet."""
        with self.reading() as conn:
            row = (
                conn.execute(select(schema.accounts).order_by(schema.accounts.c.id).limit(1))
                .mappings()
                .first()
            )
        return self.create("default") if row is None else _account(row)


class Projects(Repository):
    def _sdk_key(self) -> str:
        return base64.urlsafe_b64encode(self.ctx.randbytes(16)).decode().rstrip("=")

    def create(self, body: Mapping[str, Any], *, account_id: int | None = None) -> Project:
        """Create a project in `account_id` (default: the default account), at revision 1."""
        check = Checker(body)
        check.allow_only(_WRITABLE, _READ_ONLY)
        name = check.string("name", required=True, empty=False)
        description = check.string("description", max_len=65_536) or ""
        platform = check.choice("platform", PLATFORMS) or "custom"
        status = check.choice("status", PROJECT_STATUSES) or "active"
        environment_key = check.key("environment_key") or "production"
        anonymize_ip = check.boolean("anonymize_ip")
        bot_filtering = check.boolean("bot_filtering")
        threshold = check.number("confidence_threshold", low=0.5, high=0.999)
        check.raise_if_any("project")
        owner = account_id if account_id is not None else Accounts(self.ctx).default().id
        now = self.ctx.clock()
        with self.transaction() as conn:
            fetch(conn, schema.accounts, owner, "account")
            project_id = new_id(conn, "project")
            conn.execute(
                insert(schema.projects).values(
                    id=project_id,
                    account_id=owner,
                    name=name,
                    description=description,
                    platform=platform,
                    status=status,
                    sdk_key=self._sdk_key(),
                    environment_key=environment_key,
                    revision=1,
                    anonymize_ip=True if anonymize_ip is None else anonymize_ip,
                    bot_filtering=False if bot_filtering is None else bot_filtering,
                    confidence_threshold=0.9 if threshold is None else threshold,
                    version=1,
                    created=now,
                    last_modified=now,
                )
            )
            return _project(fetch(conn, schema.projects, project_id, "project"))

    def get(self, project_id: int) -> Project:
        with self.reading() as conn:
            return _project(fetch(conn, schema.projects, project_id, "project"))

    def by_sdk_key(self, sdk_key: str) -> Project:
        with self.reading() as conn:
            row = (
                conn.execute(select(schema.projects).where(schema.projects.c.sdk_key == sdk_key))
                .mappings()
                .first()
            )
        if row is None:
            raise NotFound(f"no project has SDK key {sdk_key!r}")
        return _project(row)

    def list(
        self,
        page: int = 1,
        per_page: int = DEFAULT_PER_PAGE,
        *,
        account_id: int | None = None,
    ) -> Page[Project]:
        query = select(schema.projects)
        if account_id is not None:
            query = query.where(schema.projects.c.account_id == account_id)
        with self.reading() as conn:
            rows, total = page_rows(conn, query, schema.projects.c.id, page, per_page)
        return Page(tuple(_project(r) for r in rows), page, per_page, total)

    def update(
        self, project_id: int, changes: Mapping[str, Any], *, if_version: int | None = None
    ) -> Project:
        check = Checker(changes)
        check.allow_only(_WRITABLE, _READ_ONLY)
        values: dict[str, Any] = {
            "name": check.string("name", empty=False),
            "description": check.string("description", max_len=65_536),
            "platform": check.choice("platform", PLATFORMS),
            "status": check.choice("status", PROJECT_STATUSES),
            "environment_key": check.key("environment_key"),
            "anonymize_ip": check.boolean("anonymize_ip"),
            "bot_filtering": check.boolean("bot_filtering"),
            "confidence_threshold": check.number("confidence_threshold", low=0.5, high=0.999),
        }
        check.raise_if_any("project")
        values = {k: v for k, v in values.items() if v is not None}
        now = self.ctx.clock()
        with self.transaction() as conn:
            row = fetch(conn, schema.projects, project_id, "project")
            store_changes(
                conn,
                schema.projects,
                row,
                values,
                if_version=if_version,
                now=now,
                what="project",
            )
            if any(k in _IN_DATAFILE and values[k] != row[k] for k in values):
                bump_revision(conn, project_id, now)
            return _project(fetch(conn, schema.projects, project_id, "project"))

    def delete(self, project_id: int) -> None:
        """Delete a project and everything in it, in one transaction.

        Not a REST API route (Optimizely's API archives projects instead); the CLI uses it to
        remove the demo project that ``liftlog serve --demo`` makes on first start.
        """
        s = schema
        with self.transaction() as conn:
            fetch(conn, s.projects, project_id, "project")
            experiments = select(s.experiments.c.id).where(s.experiments.c.project_id == project_id)
            groups = select(s.groups.c.id).where(s.groups.c.project_id == project_id)
            for child in (s.variations, s.experiment_metrics, s.status_history):
                conn.execute(delete(child).where(child.c.experiment_id.in_(experiments)))
            conn.execute(delete(s.group_entities).where(s.group_entities.c.group_id.in_(groups)))
            for table in (s.experiments, s.events, s.attributes, s.audiences, s.groups):
                conn.execute(delete(table).where(table.c.project_id == project_id))
            lists = s.list_attributes
            conn.execute(delete(lists).where(lists.c.project_id == project_id))
            conn.execute(delete(s.projects).where(s.projects.c.id == project_id))


def project_row(conn: Connection, project_id: int) -> RowMapping:
    return fetch(conn, schema.projects, project_id, "project")
