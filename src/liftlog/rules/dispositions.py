"""Why each stored event of one visitor did or did not count in one experiment.

The same rules as the SQL in `liftlog.analysis.counting`, applied to the handful of events of one
visitor so that each gets a reason in plain words. Tests check that the two agree event by event.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from liftlog.rules.counting import Aggregator, CountingSpec, Reason


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One row of the lake, as the debugger needs it."""

    kind: str  # "decision" | "conversion"
    uuid: str
    entity_id: str | None
    timestamp_raw: int
    timestamp: int | None  # epoch ms when ``timestamp_raw`` is a valid 13-digit value
    received: int
    position: str
    visitor_id: str | None
    experiment_id: str | None = None
    variation_id: str | None = None
    event_key: str | None = None
    revenue: int | None = None
    value: float | None = None
    problems: tuple[str, ...] = ()
    is_holdback: bool = False
    duplicate: bool = False
    source: str = "v1"
    #: A legacy call's ``x<experiment>=<variation>`` pairs.
    experiments: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Disposition:
    event: StoredEvent
    reason: Reason
    #: The variation the event counts for (a decision that assigns, or a counted conversion).
    variation_id: str | None = None
    #: Further reasons that limit how it counts, e.g. revenue that is not an integer.
    notes: tuple[Reason, ...] = ()


def in_bounds(ts: int, intervals: tuple[tuple[int, int | None], ...]) -> bool:
    return any(ts >= start and (end is None or ts < end) for start, end in intervals)


def _legacy_variation(event: StoredEvent, spec: CountingSpec) -> str | None:
    for experiment, variation in event.experiments:
        if experiment == spec.experiment_id and variation in spec.variation_ids:
            return variation
    return None


def _is_exposure(event: StoredEvent, spec: CountingSpec) -> str | None:
    """The variation this event exposes the visitor to in ``spec``, if it is a valid exposure."""
    if event.duplicate or event.problems or event.timestamp is None:
        return None
    if not in_bounds(event.timestamp, spec.intervals):
        return None
    if event.kind == "decision":
        if event.experiment_id != spec.experiment_id or event.is_holdback:
            return None
        return event.variation_id if event.variation_id in spec.variation_ids else None
    if event.source == "legacy" and event.visitor_id is not None:
        return _legacy_variation(event, spec)
    return None


def _is_metric_event(event: StoredEvent, spec: CountingSpec) -> bool:
    return any(
        event.entity_id == m.event_id or event.event_key == m.event_key for m in spec.metrics
    )


#: A visitor's first exposure in an experiment: its timestamp and the variation.
First = tuple[int, str] | None


def earlier_exposure(first: First, event: StoredEvent, spec: CountingSpec) -> First:
    """``first``, or ``event`` if it is an exposure before it: fold a visitor's events with it."""
    variation = _is_exposure(event, spec)
    ts = event.timestamp
    if variation is not None and ts is not None and (first is None or ts < first[0]):
        return (ts, variation)
    return first


def dispositions(events: Sequence[StoredEvent], spec: CountingSpec) -> list[Disposition]:
    """A disposition for every event, in the order given (sort by time before calling)."""
    first: First = None
    for event in events:
        first = earlier_exposure(first, event, spec)
    return list(judge(events, spec, first))


def judge(events: Iterable[StoredEvent], spec: CountingSpec, first: First) -> Iterator[Disposition]:
    """`dispositions` of a visitor's events in time order, given their first exposure (from
    all of them: ``events`` may be the visitor's first few)."""
    first_seen = False
    for event in events:
        if event.kind == "decision":
            judged = _decision(event, spec, first, first_seen)
            first_seen = first_seen or judged.reason is Reason.DECISION
            yield judged
        else:
            yield _conversion(event, spec, first)


def _decision(
    event: StoredEvent, spec: CountingSpec, first: tuple[int, str] | None, first_seen: bool
) -> Disposition:
    if event.experiment_id != spec.experiment_id:
        return Disposition(event, Reason.OTHER_EXPERIMENT)
    for code in ("timestamp_not_ms", "entity_not_campaign", "no_decision"):
        if code in event.problems:
            return Disposition(event, Reason(code))
    if event.is_holdback:
        return Disposition(event, Reason.HOLDBACK)
    if event.duplicate:
        return Disposition(event, Reason.DUPLICATE)
    if event.timestamp is None or not in_bounds(event.timestamp, spec.intervals):
        return Disposition(event, Reason.OUTSIDE_BOUNDS)
    if event.variation_id not in spec.variation_ids or first is None:
        return Disposition(event, Reason.UNKNOWN_EVENT)
    if event.variation_id != first[1]:
        return Disposition(event, Reason.MULTIPLE_EXPOSURE, first[1])
    if event.timestamp == first[0] and not first_seen:
        return Disposition(event, Reason.DECISION, first[1])
    return Disposition(event, Reason.REPEAT_DECISION, first[1])


def _conversion(
    event: StoredEvent, spec: CountingSpec, first: tuple[int, str] | None
) -> Disposition:
    if "timestamp_not_ms" in event.problems:
        return Disposition(event, Reason.TIMESTAMP_NOT_MS)
    if "anonymous" in event.problems:
        return Disposition(event, Reason.ANONYMOUS)
    if event.duplicate:
        return Disposition(event, Reason.DUPLICATE)
    if not _is_metric_event(event, spec):
        return Disposition(event, Reason.UNKNOWN_EVENT)
    if first is None:
        return Disposition(event, Reason.NEVER_DECIDED)
    ts = event.timestamp
    if ts is None:
        return Disposition(event, Reason.TIMESTAMP_NOT_MS)
    if ts < first[0]:
        return Disposition(event, Reason.BEFORE_FIRST_DECISION)
    if not in_bounds(ts, spec.intervals):
        return Disposition(event, Reason.OUTSIDE_BOUNDS)
    if spec.attribution_window_ms is not None and ts > first[0] + spec.attribution_window_ms:
        return Disposition(event, Reason.OUTSIDE_ATTRIBUTION_WINDOW)
    notes: tuple[Reason, ...] = ()
    revenue_metric = any(
        m.aggregator is Aggregator.SUM and m.field == "revenue" for m in spec.metrics
    )
    if revenue_metric and "revenue_not_integer" in event.problems:
        notes = (Reason.REVENUE_NOT_INTEGER,)
    return Disposition(event, Reason.COUNTED, first[1], notes)
