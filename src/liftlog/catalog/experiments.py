"""Experiments with their variations, metrics, whitelist and status history.

Every write runs in one transaction: the experiment row, its child rows, the status history and
the project's datafile revision change together or not at all.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.engine import RowMapping

from liftlog.catalog import schema
from liftlog.catalog.conditions import audience_ids
from liftlog.catalog.experiment_spec import ExperimentSpec, read_experiment
from liftlog.catalog.models import Experiment, Metric, Page, StatusChange, Variation, WhitelistEntry
from liftlog.catalog.repo import (
    DEFAULT_PER_PAGE,
    Repository,
    bump_revision,
    check_version,
    ensure_unique,
    fetch,
    kind_of,
    new_id,
    page_rows,
    same_project,
    store_changes,
)
from liftlog.catalog.status import STATUSES, allowed, running_intervals
from liftlog.catalog.validate import Checker
from liftlog.errors import Conflict, Problem, Unprocessable

Intervals = list[tuple[int, int | None]]
E, V, M = schema.experiments, schema.variations, schema.experiment_metrics
H, G = schema.status_history, schema.group_entities


def load(conn: Connection, rows: Sequence[RowMapping]) -> list[Experiment]:
    """Experiments for `rows` of the experiments table, children fetched in three queries."""
    ids = [r["id"] for r in rows]
    variations: dict[int, list[Variation]] = {i: [] for i in ids}
    metrics: dict[int, list[Metric]] = {i: [] for i in ids}
    groups: dict[int, int] = {}
    if ids:
        for v in conn.execute(
            select(V).where(V.c.experiment_id.in_(ids)).order_by(V.c.position)
        ).mappings():
            variations[v["experiment_id"]].append(
                Variation(v["id"], v["key"], v["name"], v["description"], v["weight"])
            )
        for m in conn.execute(
            select(M).where(M.c.experiment_id.in_(ids)).order_by(M.c.position)
        ).mappings():
            metrics[m["experiment_id"]].append(
                Metric(
                    m["event_id"], m["aggregator"], m["field"], m["winning_direction"], m["scope"]
                )
            )
        for g in conn.execute(select(G).where(G.c.experiment_id.in_(ids))).mappings():
            groups[g["experiment_id"]] = g["group_id"]
    return [
        Experiment(
            id=r["id"],
            project_id=r["project_id"],
            key=r["key"],
            name=r["name"],
            description=r["description"],
            campaign_id=r["campaign_id"],
            status=r["status"],
            audience_conditions=r["audience_conditions"],
            attribution_window_seconds=r["attribution_window_seconds"],
            holdback=r["holdback"],
            group_id=groups.get(r["id"]),
            variations=tuple(variations[r["id"]]),
            metrics=tuple(metrics[r["id"]]),
            whitelist=tuple(WhitelistEntry(**w) for w in json.loads(r["whitelist"])),
            version=r["version"],
            created=r["created"],
            last_modified=r["last_modified"],
        )
        for r in rows
    ]


def _one(conn: Connection, experiment_id: int) -> Experiment:
    return load(conn, [fetch(conn, E, experiment_id, "experiment")])[0]


def datafile_view(e: Experiment) -> tuple[Any, ...]:
    """The parts of an experiment that reach the datafile; when they change, so does `revision`."""
    return (
        e.key,
        e.campaign_id,
        e.status,
        e.audience_conditions,
        e.holdback,
        tuple((v.variation_id, v.key, v.weight) for v in e.variations),
        frozenset(m.event_id for m in e.metrics),
        e.whitelist,
    )


class Experiments(Repository):
    def _check_references(
        self,
        conn: Connection,
        check: Checker,
        project_id: int,
        spec: ExperimentSpec,
        current: Experiment | None,
    ) -> None:
        """Rules that need the database; adds problems to `check`."""
        for m in spec.metrics or []:
            row = conn.execute(
                select(schema.events.c.project_id).where(schema.events.c.id == m.event_id)
            ).first()
            if row is None or row[0] != project_id:
                check.breaks(f"{m.path}.event_id", f"no event {m.event_id} in this project")
        conditions = spec.fields.get("audience_conditions")
        for audience_id in audience_ids(conditions) if conditions else []:
            row = conn.execute(
                select(schema.audiences.c.project_id).where(schema.audiences.c.id == audience_id)
            ).first()
            if row is None or row[0] != project_id:
                check.breaks("$.audience_conditions", f"no audience {audience_id} in this project")
        own = {v.variation_id for v in current.variations} if current else set()
        for i, v in enumerate(spec.variations or []):
            if v.variation_id is not None and v.variation_id not in own:
                check.breaks(
                    f"$.variations[{i}].variation_id", "is not a variation of this experiment"
                )
        moved = spec.campaign_id is not None and (
            current is None or spec.campaign_id != current.campaign_id
        )
        if moved and kind_of(conn, int(spec.campaign_id or 0)) != "campaign":
            check.breaks("$.campaign_id", f"{spec.campaign_id} is not a campaign id")
        keys = (
            [v.key for v in spec.variations]
            if spec.variations is not None
            else [v.key for v in current.variations]
            if current
            else []
        )
        for w in spec.whitelist or []:
            if w.variation_key not in keys:
                check.breaks(f"{w.path}.variation_key", "is not a key of this experiment")
        if spec.whitelist is None and spec.variations is not None and current is not None:
            for entry in current.whitelist:
                if entry.variation_key not in keys:
                    check.breaks(
                        "$.variations",
                        f"removes {entry.variation_key!r}, whitelisted for {entry.user_id!r}",
                    )

    def _write_children(self, conn: Connection, experiment_id: int, spec: ExperimentSpec) -> None:
        if spec.variations is not None:
            conn.execute(delete(V).where(V.c.experiment_id == experiment_id))
            for position, v in enumerate(spec.variations):
                conn.execute(
                    insert(V).values(
                        id=v.variation_id or new_id(conn, "variation"),
                        experiment_id=experiment_id,
                        position=position,
                        key=v.key,
                        name=v.name,
                        description=v.description,
                        weight=v.weight,
                    )
                )
        if spec.metrics is not None:
            conn.execute(delete(M).where(M.c.experiment_id == experiment_id))
            for position, m in enumerate(spec.metrics):
                conn.execute(
                    insert(M).values(
                        experiment_id=experiment_id,
                        position=position,
                        event_id=m.event_id,
                        aggregator=m.aggregator,
                        field=m.field,
                        winning_direction=m.winning_direction,
                        scope="visitor",
                    )
                )

    def _transition(
        self, conn: Connection, experiment_id: int, current: str, target: str, at: int
    ) -> None:
        if not allowed(current, target):
            raise Conflict(
                f"experiment {experiment_id} cannot go from {current} to {target}",
                [Problem("$.status", f"not reachable from {current}")],
            )
        last = conn.execute(
            select(H.c.at).where(H.c.experiment_id == experiment_id).order_by(H.c.seq.desc())
        ).first()
        if last is not None and at < last[0]:
            raise Unprocessable(
                f"status change at {at} precedes the last change at {last[0]}",
                [Problem("$.at", "must not be earlier than the previous status change")],
            )
        conn.execute(insert(H).values(experiment_id=experiment_id, status=target, at=at))
        conn.execute(E.update().where(E.c.id == experiment_id).values(status=target))

    def create(self, project_id: int, body: Mapping[str, Any]) -> Experiment:
        """Create an experiment (status not_started unless the body asks for a reachable one)."""
        check, spec = read_experiment(body, creating=True)
        same_project(check, project_id)
        if check.shape:
            check.raise_if_any("experiment")
        now = self.ctx.clock()
        with self.transaction() as conn:
            fetch(conn, schema.projects, project_id, "project")
            self._check_references(conn, check, project_id, spec, None)
            check.raise_if_any("experiment")
            key = spec.fields["key"]
            ensure_unique(conn, E, project_id, "key", key, what="experiment")
            experiment_id = new_id(conn, "experiment")
            conn.execute(
                insert(E).values(
                    id=experiment_id,
                    project_id=project_id,
                    key=key,
                    name=spec.fields.get("name", key),
                    description=spec.fields.get("description", ""),
                    campaign_id=spec.campaign_id or new_id(conn, "campaign"),
                    status="not_started",
                    audience_conditions=spec.fields["audience_conditions"],
                    attribution_window_seconds=spec.fields.get("attribution_window_seconds"),
                    holdback=spec.fields.get("holdback", 0),
                    whitelist=_whitelist_json(spec),
                    version=1,
                    created=now,
                    last_modified=now,
                )
            )
            conn.execute(
                insert(H).values(experiment_id=experiment_id, status="not_started", at=now)
            )
            self._write_children(conn, experiment_id, spec)
            if spec.status not in (None, "not_started"):
                self._transition(conn, experiment_id, "not_started", str(spec.status), now)
            bump_revision(conn, project_id, now)
            return _one(conn, experiment_id)

    def get(self, experiment_id: int) -> Experiment:
        with self.reading() as conn:
            return _one(conn, experiment_id)

    def list(
        self,
        project_id: int,
        page: int = 1,
        per_page: int = DEFAULT_PER_PAGE,
        *,
        status: str | None = None,
    ) -> Page[Experiment]:
        query = select(E).where(E.c.project_id == project_id)
        if status is not None:
            if status not in STATUSES:
                check = Checker({"status": status})
                check.choice("status", STATUSES)
                check.raise_if_any("filter")
            query = query.where(E.c.status == status)
        with self.reading() as conn:
            fetch(conn, schema.projects, project_id, "project")
            rows, total = page_rows(conn, query, E.c.id, page, per_page)
            return Page(tuple(load(conn, rows)), page, per_page, total)

    def update(
        self, experiment_id: int, changes: Mapping[str, Any], *, if_version: int | None = None
    ) -> Experiment:
        """Apply the fields present in `changes`; a `variations` or `metrics` list replaces the
        old one (variations keep their ids when `variation_id` or the same `key` is given)."""
        check, spec = read_experiment(changes, creating=False)
        if check.shape:
            check.raise_if_any("experiment")
        now = self.ctx.clock()
        with self.transaction() as conn:
            before = _one(conn, experiment_id)
            same_project(check, before.project_id)
            if spec.variations is not None:
                by_key = {v.key: v.variation_id for v in before.variations}
                spec.variations[:] = [
                    v
                    if v.variation_id is not None or v.key not in by_key
                    else type(v)(by_key[v.key], v.key, v.name, v.description, v.weight)
                    for v in spec.variations
                ]
            self._check_references(conn, check, before.project_id, spec, before)
            check.raise_if_any("experiment")
            row = fetch(conn, E, experiment_id, "experiment")
            values = dict(spec.fields)
            if spec.whitelist is not None:
                values["whitelist"] = _whitelist_json(spec)
            if spec.campaign_id is not None:
                values["campaign_id"] = spec.campaign_id
            ensure_unique(
                conn,
                E,
                before.project_id,
                "key",
                values.get("key"),
                own_id=experiment_id,
                what="experiment",
            )
            store_changes(conn, E, row, values, if_version=if_version, now=now, what="experiment")
            self._write_children(conn, experiment_id, spec)
            if spec.status is not None and spec.status != before.status:
                self._transition(conn, experiment_id, before.status, spec.status, now)
            after = _one(conn, experiment_id)
            if datafile_view(after) != datafile_view(before):
                bump_revision(conn, before.project_id, now)
            return after

    def set_status(
        self,
        experiment_id: int,
        status: str,
        *,
        at: int | None = None,
        if_version: int | None = None,
    ) -> Experiment:
        """Move to `status` at `at` (epoch ms, default now); the same status is a no-op."""
        check = Checker({"status": status})
        check.choice("status", STATUSES, required=True)
        if at is not None:
            check.int_value(at, "$.at", low=0)
        check.raise_if_any("status change")
        now = self.ctx.clock()
        with self.transaction() as conn:
            row = fetch(conn, E, experiment_id, "experiment")
            check_version(row, if_version, "experiment")
            if row["status"] == status:
                return _one(conn, experiment_id)
            self._transition(conn, experiment_id, row["status"], status, now if at is None else at)
            store_changes(conn, E, row, {}, if_version=None, now=now, what="experiment")
            bump_revision(conn, row["project_id"], now)
            return _one(conn, experiment_id)

    def history(self, experiment_id: int) -> tuple[StatusChange, ...]:
        """Every status the experiment has had, oldest first, starting with not_started."""
        with self.reading() as conn:
            fetch(conn, E, experiment_id, "experiment")
            rows = conn.execute(
                select(H.c.status, H.c.at)
                .where(H.c.experiment_id == experiment_id)
                .order_by(H.c.seq)
            ).all()
        return tuple(StatusChange(r[0], r[1]) for r in rows)

    def running_intervals(self, experiment_id: int) -> Intervals:
        """The experiment's bounds for counting: ``[(start_ms, end_ms | None), ...]``."""
        return running_intervals(self.history(experiment_id))

    def delete(self, experiment_id: int, *, if_version: int | None = None) -> None:
        """Delete an experiment that never ran or is archived; a live one gives Conflict."""
        with self.transaction() as conn:
            row = fetch(conn, E, experiment_id, "experiment")
            check_version(row, if_version, "experiment")
            if row["status"] not in ("not_started", "archived"):
                raise Conflict(
                    f"experiment {experiment_id} is {row['status']}; archive it first",
                    [Problem("$.status", "must be not_started or archived to delete")],
                )
            for table in (V, M, H, G):
                conn.execute(delete(table).where(table.c.experiment_id == experiment_id))
            conn.execute(delete(E).where(E.c.id == experiment_id))
            bump_revision(conn, row["project_id"], self.ctx.clock())


def _whitelist_json(spec: ExperimentSpec) -> str:
    entries = [
        {"user_id": w.user_id, "variation_key": w.variation_key} for w in spec.whitelist or []
    ]
    return json.dumps(entries, separators=(",", ":"))
