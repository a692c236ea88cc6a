"""What counts in an experiment's results: the inputs of counting and the reason codes.

These are Optimizely's counting rules (see the README, "How results are counted"):

1. A decision is a ``campaign_activated`` event whose ``entity_id`` is the ``campaign_id`` of a
   decision in its snapshot. A legacy ``GET /event`` call is a decision for each of its
   ``x<experiment>=<variation>`` pairs and a conversion at once.
2. Events with the same ``(entity_id, uuid, timestamp)`` are one event.
3. A visitor's variation is the one of their first decision inside the running bounds; later
   decisions for another variation are reported as multiple exposures, not counted again.
4. A conversion counts for that variation when its timestamp is at or after the first decision,
   inside the running bounds, and inside the attribution window when the experiment has one.
5. Timestamps are 13-digit epoch milliseconds and revenue is integer cents; other values are
   stored, and explained here, but do not count.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Aggregator(StrEnum):
    UNIQUE = "unique"  # visitors who converted at least once
    COUNT = "count"  # conversions per visitor
    SUM = "sum"  # revenue or value per visitor


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One metric of an experiment; the first of an experiment's metrics is its primary one."""

    event_id: str
    event_key: str
    aggregator: Aggregator
    field: str | None = None  # "revenue" | "value" for SUM
    winning_direction: str = "increasing"

    @property
    def name(self) -> str:
        if self.aggregator is Aggregator.SUM:
            return f"{self.event_key}:{self.field}"
        return f"{self.event_key}:{self.aggregator.value}"


@dataclass(frozen=True, slots=True)
class CountingSpec:
    """Everything counting needs to know about one experiment, in wire ids and epoch ms."""

    experiment_id: str
    campaign_id: str
    variation_ids: tuple[str, ...]
    #: Running intervals ``[start, end)``; ``end`` None means still running.
    intervals: tuple[tuple[int, int | None], ...]
    metrics: tuple[MetricSpec, ...]
    attribution_window_ms: int | None = None


class Reason(StrEnum):
    """Why an event did or did not count; the event debugger shows `describe` for each."""

    COUNTED = "counted"
    DECISION = "decision"
    REPEAT_DECISION = "repeat_decision"
    DUPLICATE = "duplicate"
    MULTIPLE_EXPOSURE = "multiple_exposure"
    BEFORE_FIRST_DECISION = "before_first_decision"
    OUTSIDE_BOUNDS = "outside_bounds"
    OUTSIDE_ATTRIBUTION_WINDOW = "outside_attribution_window"
    NEVER_DECIDED = "never_decided"
    ENTITY_NOT_CAMPAIGN = "entity_not_campaign"
    NO_DECISION = "no_decision"
    TIMESTAMP_NOT_MS = "timestamp_not_ms"
    REVENUE_NOT_INTEGER = "revenue_not_integer"
    UNKNOWN_EVENT = "unknown_event"
    ANONYMOUS = "anonymous"
    HOLDBACK = "holdback"
    OTHER_EXPERIMENT = "other_experiment"
    REJECTED_AT_LOAD = "rejected_at_load"


DESCRIPTIONS: dict[Reason, str] = {
    Reason.COUNTED: "Counted for the variation the visitor saw first.",
    Reason.DECISION: "The visitor's first decision in this experiment: it fixes their variation.",
    Reason.REPEAT_DECISION: "A later decision for the variation the visitor is already in; the "
    "visitor is counted once.",
    Reason.DUPLICATE: "A duplicate of an earlier event with the same entity_id, uuid and "
    "timestamp; only the first one counts.",
    Reason.MULTIPLE_EXPOSURE: "A later decision for a different variation; the visitor stays in "
    "the variation of their first decision, and is reported as exposed to several.",
    Reason.BEFORE_FIRST_DECISION: "The event happened before the visitor's first decision; "
    "conversions count only at or after it.",
    Reason.OUTSIDE_BOUNDS: "The event's timestamp is outside the periods the experiment was "
    "running.",
    Reason.OUTSIDE_ATTRIBUTION_WINDOW: "The conversion came after the experiment's attribution "
    "window had closed.",
    Reason.NEVER_DECIDED: "The visitor has no decision in this experiment, so the conversion "
    "can't be attributed to a variation.",
    Reason.ENTITY_NOT_CAMPAIGN: "A campaign_activated event whose entity_id is not the "
    "campaign_id of any decision in its snapshot.",
    Reason.NO_DECISION: "A campaign_activated event sent without a decision in its snapshot.",
    Reason.TIMESTAMP_NOT_MS: "The timestamp is not a 13-digit number of epoch milliseconds.",
    Reason.REVENUE_NOT_INTEGER: "Revenue must be an integer number of cents; this event's "
    "revenue is not counted.",
    Reason.UNKNOWN_EVENT: "The event is not one of this experiment's metrics.",
    Reason.ANONYMOUS: "A legacy call without a visitor id (u or p): nobody to attribute it to.",
    Reason.HOLDBACK: "The decision was held back at the campaign level.",
    Reason.OTHER_EXPERIMENT: "A decision for another experiment.",
    Reason.REJECTED_AT_LOAD: "The request was stored but could not be read when loaded.",
}


def describe(reason: Reason) -> str:
    return DESCRIPTIONS[reason]
