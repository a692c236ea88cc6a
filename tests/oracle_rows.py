"""The reference v1 normaliser: liftlog's first per-event Python path, kept as an oracle.

`tests/test_normalize.py` checks that `liftlog.lake.normalize` makes the same rows as `add_v1`,
row for row (order aside), modulo the one documented simplification: a U+E000-typed string
stored as text is the text after the prefix (here it is the repr of the number it stands for).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import msgspec

from liftlog.wire.events import Decision, EventBatch, is_activation, typed_value
from liftlog.wire.rows import Meta, Rows, checked_timestamp


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


def _tags(
    tags: dict[str, Any] | None, text: Callable[[Any], str | None]
) -> list[tuple[str, str | None]] | None:
    if tags is None:
        return None
    return [(k, text(v)) for k, v in tags.items()]


def _experiment(d: Decision) -> dict[str, Any]:
    return {
        "campaign_id": d.campaign_id,
        "experiment_id": d.experiment_id,
        "variation_id": d.variation_id,
        "is_holdback": d.is_campaign_holdback,
    }


def add_v1(
    rows: Rows, batch: EventBatch, meta: Meta, text: Callable[[Any], str | None] = as_text
) -> None:
    """Append one accepted ``POST /v1/events`` batch to ``rows`` (values as ``text`` makes them)."""
    revision = None if batch.revision is None else str(batch.revision)
    engine, version = batch.client_name, batch.client_version
    enrich = batch.enrich_decisions
    ip, ua, ref, received = meta.client_ip, meta.user_agent, meta.referer, meta.received_ms
    account, project, position = batch.account_id, batch.project_id, meta.position
    for visitor in batch.visitors:
        vid, session = visitor.visitor_id, visitor.session_id or None
        attributes = [
            {"id": a.entity_id, "name": a.key, "type": a.type, "value": text(a.value)}
            for a in visitor.attributes or ()
        ]
        for snapshot in visitor.snapshots:
            decisions = snapshot.decisions or []
            experiments = [_experiment(d) for d in decisions]
            for e in snapshot.events:
                problems: list[str] = []
                ts = checked_timestamp(e.timestamp, problems)
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
                    value, quantity, _tags(e.tags, text), revision, engine, version, enrich,
                    problems, "v1", position,
                )  # fmt: skip
