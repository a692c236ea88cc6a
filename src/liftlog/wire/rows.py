"""Normalise accepted requests into rows of the lake's three tables, column by column.

The columns follow Optimizely's Experimentation Events Export (E3): ``decisions`` and
``conversions`` (E3 calls the latter ``events``), plus what liftlog needs to explain a result
later: the raw ``timestamp_raw`` as sent, the activation's ``entity_id``, ``problems`` (codes for
values that were stored but will not count as sent), ``source`` and ``rawlog_position``.

Doubtful values are kept and flagged, never dropped:

======================  =====================================================================
problem code            meaning
======================  =====================================================================
timestamp_not_ms        the timestamp is not a 13-digit epoch-milliseconds integer
revenue_not_integer     revenue is not an integer number of cents
value_not_number        value is not a finite number
quantity_not_integer    quantity is not an integer
no_decision             a ``campaign_activated`` event in a snapshot with no decisions
entity_not_campaign     a ``campaign_activated`` event whose ``entity_id`` matches no decision's
                        ``campaign_id`` in its snapshot (one row per decision of the snapshot)
anonymous               a legacy call with neither ``u`` nor ``p``: no visitor to attribute to
======================  =====================================================================
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import msgspec

from liftlog.wire.events import Decision, EventBatch, is_activation, typed_value
from liftlog.wire.legacy import LegacyEvent

DECISION_COLUMNS = (
    "date", "uuid", "timestamp", "timestamp_raw", "process_timestamp", "visitor_id",
    "session_id", "account_id", "project_id", "campaign_id", "experiment_id", "variation_id",
    "entity_id", "is_holdback", "attributes", "user_ip", "user_agent", "referer", "revision",
    "client_engine", "client_version", "enrich_decisions", "flag_key", "rule_key", "rule_type",
    "variation_key", "enabled", "problems", "source", "rawlog_position",
)  # fmt: skip
CONVERSION_COLUMNS = (
    "date", "uuid", "timestamp", "timestamp_raw", "process_timestamp", "visitor_id",
    "session_id", "account_id", "project_id", "experiments", "entity_id", "attributes",
    "user_ip", "user_agent", "referer", "event_type", "event_name", "revenue", "value",
    "quantity", "tags", "revision", "client_engine", "client_version", "enrich_decisions",
    "problems", "source", "rawlog_position",
)  # fmt: skip
REJECT_COLUMNS = (
    "date", "process_timestamp", "endpoint", "reason", "detail", "body", "user_ip",
    "user_agent", "rawlog_position",
)  # fmt: skip

#: 13-digit epoch milliseconds: 2001-09-09 to 2286-11-20.
MS_MIN, MS_MAX = 10**12, 10**13
_DAY_MS = 86_400_000


class Meta(msgspec.Struct, frozen=True):
    """What the collector knew about a request: when, from where, and where it sits in the log."""

    received_ms: int
    position: str
    client_ip: str | None = None
    user_agent: str | None = None
    referer: str | None = None


class Columns:
    """Column lists of one table; `add` appends one row given in column order."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        self.data: list[list[Any]] = [[] for _ in names]

    def add(self, *values: Any) -> None:
        for column, value in zip(self.data, values, strict=True):
            column.append(value)

    def __len__(self) -> int:
        return len(self.data[0])

    def as_dict(self) -> dict[str, list[Any]]:
        return dict(zip(self.names, self.data, strict=True))


class Rows:
    def __init__(self) -> None:
        self.decisions = Columns(DECISION_COLUMNS)
        self.conversions = Columns(CONVERSION_COLUMNS)
        self.rejects = Columns(REJECT_COLUMNS)
        self._days: dict[int, str] = {}

    def day(self, ms: int) -> str:
        key = ms // _DAY_MS
        text = self._days.get(key)
        if text is None:
            text = datetime.fromtimestamp(key * 86_400, UTC).strftime("%Y-%m-%d")
            self._days[key] = text
        return text

    def reject(self, meta: Meta, endpoint: str, reason: str, detail: str, body: bytes) -> None:
        self.rejects.add(
            self.day(meta.received_ms), meta.received_ms, endpoint, reason, detail, body,
            meta.client_ip, meta.user_agent, meta.position,
        )  # fmt: skip


def as_text(value: Any) -> str | None:
    """A value as E3 stores it: strings as they are, booleans lowercase, numbers as written."""
    value = typed_value(value)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return msgspec.json.encode(value).decode()


def _timestamp(raw: int, problems: list[str]) -> int | None:
    if MS_MIN <= raw < MS_MAX:
        return raw
    problems.append("timestamp_not_ms")
    return None


def _revenue(raw: Any, problems: list[str]) -> int | None:
    value = typed_value(raw)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**63:
        return value
    problems.append("revenue_not_integer")
    return None


def _value(raw: Any, problems: list[str]) -> float | None:
    value = typed_value(raw)
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    problems.append("value_not_number")
    return None


def _quantity(raw: Any, problems: list[str]) -> int | None:
    value = typed_value(raw)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**63:
        return value
    problems.append("quantity_not_integer")
    return None


def _tags(tags: dict[str, Any] | None) -> list[tuple[str, str | None]] | None:
    if tags is None:
        return None
    return [(k, as_text(v)) for k, v in tags.items()]


def _experiment(d: Decision) -> dict[str, Any]:
    return {
        "campaign_id": d.campaign_id,
        "experiment_id": d.experiment_id,
        "variation_id": d.variation_id,
        "is_holdback": d.is_campaign_holdback,
    }


def add_v1(rows: Rows, batch: EventBatch, meta: Meta) -> None:
    """Append one accepted ``POST /v1/events`` batch to ``rows``."""
    revision = None if batch.revision is None else str(batch.revision)
    engine, version = batch.client_name, batch.client_version
    enrich = batch.enrich_decisions
    ip, ua, ref, received = meta.client_ip, meta.user_agent, meta.referer, meta.received_ms
    account, project, position = batch.account_id, batch.project_id, meta.position
    for visitor in batch.visitors:
        vid, session = visitor.visitor_id, visitor.session_id or None
        attributes = [
            {"id": a.entity_id, "name": a.key, "type": a.type, "value": as_text(a.value)}
            for a in visitor.attributes or ()
        ]
        for snapshot in visitor.snapshots:
            decisions = snapshot.decisions or []
            experiments = [_experiment(d) for d in decisions]
            for e in snapshot.events:
                problems: list[str] = []
                ts = _timestamp(e.timestamp, problems)
                date = rows.day(ts if ts is not None else received)
                if is_activation(e):
                    matched = [d for d in decisions if d.campaign_id == e.entity_id]
                    if not matched:
                        problems.append("entity_not_campaign" if decisions else "no_decision")
                    for d in matched or decisions or [Decision()]:
                        m = d.metadata or {}
                        rows.decisions.add(
                            date, e.uuid, ts, e.timestamp, received, vid, session, account,
                            project, d.campaign_id, d.experiment_id, d.variation_id, e.entity_id,
                            d.is_campaign_holdback, attributes, ip, ua, ref, revision, engine,
                            version, enrich, m.get("flag_key"), m.get("rule_key"),
                            m.get("rule_type"), m.get("variation_key"), m.get("enabled"),
                            problems, "v1", position,
                        )  # fmt: skip
                    continue
                revenue = _revenue(e.revenue, problems)
                value = _value(e.value, problems)
                quantity = _quantity(e.quantity, problems)
                rows.conversions.add(
                    date, e.uuid, ts, e.timestamp, received, vid, session, account, project,
                    experiments, e.entity_id, attributes, ip, ua, ref, e.type, e.key, revenue,
                    value, quantity, _tags(e.tags), revision, engine, version, enrich, problems,
                    "v1", position,
                )  # fmt: skip


def add_legacy(rows: Rows, event: LegacyEvent, meta: Meta) -> None:
    """Append one ``GET /event`` call: a conversion that carries its experiment → variation map.

    It has no client uuid, so its uuid is made from its raw-log position: stable across reloads,
    and two calls are two events, as in Optimizely Classic.
    """
    problems: list[str] = []
    ts = int(event.time) * 1000 if event.time else meta.received_ms
    ts_ok = _timestamp(ts, problems)
    visitor = event.visitor_id
    if visitor is None:
        problems.append("anonymous")
    revenue = None
    if event.revenue is not None:
        try:
            revenue = int(event.revenue)
        except ValueError:
            problems.append("revenue_not_integer")
    experiments = [
        {"campaign_id": None, "experiment_id": x, "variation_id": v, "is_holdback": False}
        for x, v in event.experiments.items()
    ]
    attributes = [
        {"id": s, "name": None, "type": "segment", "value": v} for s, v in event.segments.items()
    ]
    tags: list[tuple[str, str | None]] = [(k, v) for k, v in event.extra.items()]
    if event.goal_ids:
        tags.append(("goal_ids", ",".join(event.goal_ids)))
    if event.ppid and event.end_user_id:
        tags.append(("end_user_id", event.end_user_id))
    rows.conversions.add(
        rows.day(ts_ok if ts_ok is not None else meta.received_ms), f"legacy:{meta.position}",
        ts_ok, ts, meta.received_ms, visitor, None, event.account_id, event.project_id,
        experiments, event.goal_ids[0] if event.goal_ids else None, attributes, meta.client_ip,
        meta.user_agent, meta.referer, None, event.event_name, revenue, None, None, tags or None,
        None, event.extra.get("src"), None, None, problems, "legacy", meta.position,
    )  # fmt: skip
