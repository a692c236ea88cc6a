"""Building the v4 datafile that the official SDKs (and liftlog's own) bucket visitors with.

What reaches the SDK, and why:

* Only running experiments get traffic. Others keep their place in the datafile with the status the
  SDK knows ("Paused", "Not started"), which it treats as "no variation" (only "Running" buckets),
  and an empty `trafficAllocation`. Archived experiments are left out.
* `trafficAllocation` holds cumulative `endOfRange` values from the variation weights, scaled by
  `(10000 - holdback) / 10000`; traffic past the last range gets no variation.
* Experiments in an exclusion group appear only under `groups[].experiments`; the group's own
  allocation is cumulative over its entities' weights, with an empty `entityId` (a hole) where an
  experiment was archived, so that the other members' visitors keep their buckets.
* Every audience appears twice with the same id: in `audiences` with its conditions as JSON text
  (what every SDK version parses) and in `typedAudiences` as a tree (which newer SDKs prefer).
* `revision` is the project's counter, bumped by every change that alters this output.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from sqlalchemy import Connection, Table, select
from sqlalchemy.engine import RowMapping

from liftlog.catalog import schema
from liftlog.catalog.conditions import audience_ids, datafile_conditions
from liftlog.catalog.experiments import load as load_experiments
from liftlog.catalog.groups import load as load_groups
from liftlog.catalog.models import Experiment
from liftlog.catalog.store import Catalog
from liftlog.errors import NotFound
from liftlog.wire import datafile as wire

TOTAL = 10_000
SDK_STATUS = {"running": "Running", "paused": "Paused", "not_started": "Not started"}


def cumulative(
    entries: Iterable[tuple[str, int]], scale: int = TOTAL
) -> list[wire.TrafficAllocation]:
    """Ranges from weights: ``[("a", 5000), ("b", 5000)]`` -> ends 5000, 10000 (times scale/10000).

    Ends are computed from the running sum, so rounding never accumulates across entries.
    """
    out: list[wire.TrafficAllocation] = []
    total = 0
    for entity_id, weight in entries:
        total += weight
        out.append(wire.TrafficAllocation(entity_id=entity_id, end_of_range=total * scale // TOTAL))
    return out


def _experiment(e: Experiment) -> wire.Experiment:
    running = e.status == "running"
    return wire.Experiment(
        id=str(e.id),
        key=e.key,
        layer_id=str(e.campaign_id),
        status=SDK_STATUS[e.status],
        variations=[wire.Variation(id=str(v.variation_id), key=v.key) for v in e.variations],
        traffic_allocation=cumulative(
            ((str(v.variation_id), v.weight) for v in e.variations), TOTAL - e.holdback
        )
        if running
        else [],
        audience_ids=[str(a) for a in audience_ids(e.audience_conditions)],
        audience_conditions=datafile_conditions(e.audience_conditions),
        forced_variations={w.user_id: w.variation_key for w in e.whitelist},
    )


def _rows(conn: Connection, table: Table, project_id: int) -> Sequence[RowMapping]:
    query = select(table).where(table.c.project_id == project_id).order_by(table.c.id)
    return conn.execute(query).mappings().all()


def build_datafile(catalog: Catalog, sdk_key: str) -> wire.Datafile:
    """The datafile of the project with `sdk_key` (NotFound if none), read in one snapshot."""
    conn_options = (
        {"isolation_level": "REPEATABLE READ"}
        if catalog.engine.dialect.name == "postgresql"
        else {}
    )
    with catalog.engine.connect().execution_options(**conn_options) as conn, conn.begin():
        project = (
            conn.execute(select(schema.projects).where(schema.projects.c.sdk_key == sdk_key))
            .mappings()
            .first()
        )
        if project is None:
            raise NotFound(f"no project has SDK key {sdk_key!r}")
        pid = project["id"]
        experiments = [
            e
            for e in load_experiments(conn, _rows(conn, schema.experiments, pid))
            if e.status != "archived"
        ]
        groups = load_groups(conn, list(_rows(conn, schema.groups, pid)))
        events = [r for r in _rows(conn, schema.events, pid) if not r["archived"]]
        attributes = [r for r in _rows(conn, schema.attributes, pid) if not r["archived"]]
        audiences = _rows(conn, schema.audiences, pid)

    live = {e.id: e for e in experiments}
    grouped = {entity.id for g in groups for entity in g.entities}
    by_event: dict[int, list[str]] = {}
    for e in experiments:
        for event_id in dict.fromkeys(m.event_id for m in e.metrics):
            by_event.setdefault(event_id, []).append(str(e.id))
    return wire.Datafile(
        version="4",
        account_id=str(project["account_id"]),
        project_id=str(pid),
        revision=str(project["revision"]),
        sdk_key=sdk_key,
        environment_key=project["environment_key"],
        anonymize_ip=bool(project["anonymize_ip"]),
        bot_filtering=bool(project["bot_filtering"]),
        send_flag_decisions=False,
        experiments=[_experiment(e) for e in experiments if e.id not in grouped],
        groups=[
            wire.Group(
                id=str(g.id),
                policy="random",
                experiments=[_experiment(live[x.id]) for x in g.entities if x.id in live],
                traffic_allocation=cumulative(
                    (str(x.id) if x.id in live else "", x.weight) for x in g.entities
                ),
            )
            for g in groups
        ],
        events=[
            wire.Event(id=str(r["id"]), key=r["key"], experiment_ids=by_event.get(r["id"], []))
            for r in events
        ],
        attributes=[wire.Attribute(id=str(r["id"]), key=r["key"]) for r in attributes],
        audiences=[
            wire.Audience(id=str(r["id"]), name=r["name"], conditions=r["conditions"])
            for r in audiences
        ],
        typed_audiences=[
            wire.TypedAudience(
                id=str(r["id"]), name=r["name"], conditions=json.loads(r["conditions"])
            )
            for r in audiences
        ],
        feature_flags=[],
        rollouts=[],
        integrations=[],
    )


def datafile_bytes(catalog: Catalog, sdk_key: str) -> bytes:
    """The datafile as the compact JSON served at ``/datafiles/{sdk_key}.json``."""
    return wire.encode_datafile(build_datafile(catalog, sdk_key))
