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
revenue_not_integer     revenue is not an integer number of cents that fits in 64 bits
value_not_number        value is not a finite number
quantity_not_integer    quantity is not an integer that fits in 64 bits
no_decision             a ``campaign_activated`` event in a snapshot with no decisions
entity_not_campaign     a ``campaign_activated`` event whose ``entity_id`` matches no decision's
                        ``campaign_id`` in its snapshot (one row per decision of the snapshot)
anonymous               a legacy call with neither ``u`` nor ``p``: no visitor to attribute to
======================  =====================================================================
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec

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

    def sort(self, key: Callable[[Any], Any], by: str = "rawlog_position") -> None:
        """Reorder the rows by ``key`` of their ``by`` column (a stable sort)."""
        keys = self.data[self.names.index(by)]
        order = sorted(range(len(keys)), key=lambda i: key(keys[i]))
        self.data = [[column[i] for i in order] for column in self.data]

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


def checked_timestamp(raw: int, problems: list[str]) -> int | None:
    if MS_MIN <= raw < MS_MAX:
        return raw
    problems.append("timestamp_not_ms")
    return None


def add_legacy(rows: Rows, event: LegacyEvent, meta: Meta) -> None:
    """Append one ``GET /event`` call: a conversion that carries its experiment → variation map.

    It has no client uuid, so its uuid is made from its raw-log position: stable across reloads,
    and two calls are two events, as in Optimizely Classic.
    """
    problems: list[str] = []
    ts = int(event.time) * 1000 if event.time else meta.received_ms
    ts_ok = checked_timestamp(ts, problems)
    visitor = event.visitor_id
    if visitor is None:
        problems.append("anonymous")
    revenue = None
    if event.revenue is not None:
        digits = event.revenue.removeprefix("-")
        if digits.isascii() and digits.isdigit() and abs(int(event.revenue)) < 1 << 63:
            revenue = int(event.revenue)
        else:  # not an integer of cents, or none the lake can hold
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
