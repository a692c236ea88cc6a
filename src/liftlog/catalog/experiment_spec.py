"""Reading an experiment body (REST v2 shape) into checked values, with a path for every problem.

Checks that need the database (does the event exist? is the key free?) are done by the repository
with the values read here. Variation weights are basis points: each 0-10,000, their sum at most
10,000; traffic not given to any variation is simply not in the experiment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from liftlog.catalog.conditions import experiment_conditions
from liftlog.catalog.status import STATUSES
from liftlog.catalog.validate import MAX_TEXT, Checker

TOTAL_WEIGHT = 10_000
AGGREGATORS = ("unique", "count", "sum")
FIELDS = ("revenue", "value")
DIRECTIONS = ("increasing", "decreasing")
WRITABLE = (
    "key",
    "name",
    "description",
    "campaign_id",
    "audience_conditions",
    "attribution_window_seconds",
    "holdback",
    "variations",
    "metrics",
    "whitelist",
    "status",
    "type",
)
READ_ONLY = (
    "id",
    "project_id",
    "group_id",
    "is_classic",
    "created",
    "last_modified",
    "earliest",
    "latest",
)
_VARIATION_WRITABLE = ("variation_id", "key", "name", "description", "weight")
_VARIATION_READ_ONLY = ("status", "archived", "actions", "feature_enabled", "variable_values")


@dataclass(frozen=True, slots=True)
class VariationSpec:
    variation_id: int | None
    key: str
    name: str
    description: str
    weight: int


@dataclass(frozen=True, slots=True)
class MetricSpec:
    event_id: int
    aggregator: str
    field: str | None
    winning_direction: str
    path: str


@dataclass(frozen=True, slots=True)
class WhitelistSpec:
    user_id: str
    variation_key: str
    path: str


def read_variations(check: Checker) -> list[VariationSpec] | None:
    items = check.array("variations")
    if items is None:
        return None
    if not items:
        check.breaks(check.at("variations"), "must hold at least one variation")
    out: list[VariationSpec] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        v = _child(check, item, i)
        v.allow_only(_VARIATION_WRITABLE, _VARIATION_READ_ONLY)
        variation_id = v.integer("variation_id", low=1)
        key = v.key("key", required=True)
        name = v.string("name")
        description = v.string("description", max_len=MAX_TEXT) or ""
        weight = v.integer("weight", required=True, low=0, high=TOTAL_WEIGHT)
        if key is not None and key in seen:
            v.breaks(v.at("key"), f"repeats the key of variations[{seen[key]}]")
        if key is not None:
            seen.setdefault(key, i)
        if key is not None and weight is not None:
            out.append(
                VariationSpec(variation_id, key, key if name is None else name, description, weight)
            )
    total = sum(v.weight for v in out)
    if total > TOTAL_WEIGHT:
        check.breaks(check.at("variations"), f"weights add up to {total}, more than {TOTAL_WEIGHT}")
    return out


def _child(check: Checker, item: object, i: int) -> Checker:
    return Checker(item, f"{check.at('variations')}[{i}]", parent=check)


#: Metrics an experiment may have (counting keys the distinct metric events in a 64-bit mask).
MAX_METRICS = 50


def read_metrics(check: Checker) -> list[MetricSpec] | None:
    items = check.array("metrics")
    if items is None:
        return None
    if len(items) > MAX_METRICS:
        check.breaks(check.at("metrics"), f"may hold at most {MAX_METRICS} metrics")
    out: list[MetricSpec] = []
    for i, item in enumerate(items):
        m = Checker(item, f"{check.at('metrics')}[{i}]", parent=check)
        m.allow_only(("event_id", "aggregator", "field", "winning_direction", "scope"))
        event_id = m.integer("event_id", required=True, low=1)
        aggregator = m.choice("aggregator", AGGREGATORS) or "unique"
        field = m.choice("field", FIELDS)
        direction = m.choice("winning_direction", DIRECTIONS) or "increasing"
        m.choice("scope", ["visitor"])
        if aggregator == "sum" and field is None and not m.has("field"):
            m.breaks(m.at("field"), "is required when aggregator is 'sum' (revenue or value)")
        if aggregator != "sum" and field is not None:
            m.breaks(m.at("field"), "applies only when aggregator is 'sum'")
        if event_id is not None:
            out.append(MetricSpec(event_id, aggregator, field, direction, m.path))
    return out


def read_whitelist(check: Checker) -> list[WhitelistSpec] | None:
    items = check.array("whitelist")
    if items is None:
        return None
    out: list[WhitelistSpec] = []
    users: set[str] = set()
    for i, item in enumerate(items):
        w = Checker(item, f"{check.at('whitelist')}[{i}]", parent=check)
        w.allow_only(("user_id", "variation_key"))
        user = w.string("user_id", required=True, empty=False)
        variation = w.string("variation_key", required=True, empty=False)
        if user is not None and user in users:
            w.breaks(w.at("user_id"), "is whitelisted twice")
        if user is not None and variation is not None:
            users.add(user)
            out.append(WhitelistSpec(user, variation, w.path))
    return out


@dataclass(frozen=True, slots=True)
class ExperimentSpec:
    """Only the fields present in the body; None means "not given" (keep / default)."""

    fields: dict[str, Any]
    variations: list[VariationSpec] | None
    metrics: list[MetricSpec] | None
    whitelist: list[WhitelistSpec] | None
    status: str | None
    campaign_id: int | None


def read_experiment(body: Mapping[str, Any], *, creating: bool) -> tuple[Checker, ExperimentSpec]:
    """Read every field; problems stay in the returned checker until the caller raises them."""
    check = Checker(body)
    check.allow_only(WRITABLE, READ_ONLY)
    fields: dict[str, Any] = {
        "key": check.key("key", required=creating),
        "name": check.string("name"),
        "description": check.string("description", max_len=MAX_TEXT),
        "audience_conditions": experiment_conditions(check)
        if creating or check.has("audience_conditions")
        else None,
        "holdback": check.integer("holdback", low=0, high=TOTAL_WEIGHT),
    }
    if check.has("attribution_window_seconds"):
        window = check.body["attribution_window_seconds"]
        # null clears the window: conversions then count until the experiment stops.
        fields["attribution_window_seconds"] = (
            None
            if window is None
            else check.integer("attribution_window_seconds", low=1, high=10 * 365 * 86_400)
        )
    check.choice("type", ["a/b"])
    variations = read_variations(check)
    if creating and variations is None:
        check.bad(check.at("variations"), "is required")
    spec = ExperimentSpec(
        fields={
            k: v for k, v in fields.items() if v is not None or k == "attribution_window_seconds"
        },
        variations=variations,
        metrics=read_metrics(check),
        whitelist=read_whitelist(check),
        status=check.choice("status", STATUSES),
        campaign_id=check.integer("campaign_id", low=1),
    )
    return check, spec
