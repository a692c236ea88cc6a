"""What the results routes, the pages and the command line compute from the catalog and the lake.

Results, timeseries, a visitor's timeline and why an event did or did not count, as the JSON
documents the results API returns. This module brings in the analysis stack (DuckDB, Arrow,
NumPy, SciPy: about 100 MiB of memory), so the HTTP layer imports it on the first request that
needs it (`liftlog.api.results.ResultsAPI.reports`): a server that only collects events, and
the loader it starts, never load it.
"""

from __future__ import annotations

from collections.abc import Callable, Sized
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from liftlog.analysis.counts import (
    Counts,
    OtherValues,
    SegmentValue,
    empty_counts,
    merge_counts,
    segment_order,
)
from liftlog.analysis.explain import (
    MAX_EVENTS,
    events_by_uuid,
    experiments_named,
    has_events,
    judged,
    rejected_mentions,
)
from liftlog.analysis.incremental import count_daily_state, counted
from liftlog.analysis.sources import Versions, connect, open_lake, table_ids, versions
from liftlog.analysis.spec import counting_spec
from liftlog.api.count_cache import CountCache, Counted, Counting
from liftlog.api.count_files import CountFiles, Shape
from liftlog.api.visitor_states import States
from liftlog.catalog.store import Catalog
from liftlog.errors import InvalidInput, Problem
from liftlog.lake.status import rawlog_status, table_status
from liftlog.report import Arm, build_results, build_timeseries, results_csv
from liftlog.rules.counting import CountingSpec, describe
from liftlog.rules.dispositions import Disposition, StoredEvent
from liftlog.settings import Settings


def import_the_rest() -> None:
    """Import now what a first computation imports on its way: the root finder of the
    sequential test's visitors-remaining estimate (`liftlog.stats.sequential`), about half a
    second on its own."""
    from scipy import optimize  # noqa: F401


def iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def event_json(d: Disposition) -> dict[str, Any]:
    e: StoredEvent = d.event
    return {
        "kind": e.kind,
        "uuid": e.uuid,
        "entity_id": e.entity_id,
        "key": e.event_key,
        "timestamp": e.timestamp_raw,
        "time": iso(e.timestamp),
        "received": iso(e.received),
        "experiment_id": e.experiment_id,
        "variation_id": e.variation_id,
        "revenue": e.revenue,
        "value": e.value,
        "source": e.source,
        "rawlog_position": e.position,
        "disposition": d.reason.value,
        "counted_for_variation": d.variation_id,
        "reason": describe(d.reason),
        "notes": [{"code": n.value, "reason": describe(n)} for n in d.notes],
    }


def segment_json(value: SegmentValue) -> dict[str, Any]:
    """A segment value in a document: the value (None: not set), or the other values' label
    and how many they are."""
    if isinstance(value, OtherValues):
        return {"value": value.label, "other_values": value.count}
    return {"value": value}


def reject_json(row: dict[str, Any]) -> dict[str, Any]:
    received = row["process_timestamp"]
    return {
        "received": received.isoformat() if received is not None else None,
        "endpoint": row["endpoint"],
        "disposition": "rejected_at_load",
        "reason": row["reason"],
        "detail": row["detail"],
        "rawlog_position": row["rawlog_position"],
    }


def _latest_received(con: Any) -> datetime | None:
    [(latest,)] = con.execute(
        "SELECT max(t) FROM (SELECT max(process_timestamp) AS t FROM decisions "
        "UNION ALL SELECT max(process_timestamp) FROM conversions)"
    ).fetchall()
    return latest  # type: ignore[no-any-return]


def _unsegmented(spec: CountingSpec, counted: Counted) -> Counts:
    """The whole experiment's counts from `count_segments` without a segment."""
    return counted.value.get(None) or empty_counts(spec)


def _last_day(spec: CountingSpec, counted: Counted) -> Counts:
    """The whole experiment's counts from `count_daily`: its last day's cumulative counts."""
    return counted.value[-1][1] if counted.value else empty_counts(spec)


def _visitors_of(con: Any, uuid: str) -> list[str]:
    """The visitors of the stored events with this uuid."""
    return sorted({e.visitor_id for e in events_by_uuid(con, uuid) if e.visitor_id is not None})


#: How each kind of kept counts is written to disk (`liftlog.api.count_files`): the counts per
#: segment value as pairs (a value may be None or `OtherValues`, which JSON keys can't be), the
#: daily counts as they are.
_SHAPES = {
    "segments": Shape(
        list[tuple[str | OtherValues | None, Counts]], lambda v: list(v.items()), dict
    ),
    "daily": Shape(list[tuple[int, Counts]], lambda v: v, lambda v: v),
}


class Reports:
    def __init__(
        self,
        settings: Settings,
        catalog: Callable[[], Catalog],
        cache: CountCache | None = None,
        states: States | None = None,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        lake = settings.lake_dir
        self.cache = cache or CountCache(
            factor=settings.results_reuse_factor,
            files=CountFiles(settings.counts_dir, lambda: table_ids(lake)),
        )
        #: Per-visitor counts of each experiment (and breakdown asked for), brought up to date
        #: as events are loaded.
        self.states = states or States(settings.counts_dir / "states")

    def _count(
        self,
        key: tuple[Any, ...],
        spec: CountingSpec,
        compute: Callable[[Any, Versions], tuple[Sized, float | None]],
    ) -> Counted:
        """``compute(connection, versions)`` (several `Counts` of ``spec``: per segment value or
        per day; the versions of the connection's snapshot; and how long counting them again
        is expected to take if not as long as this, see `Kept.recount_seconds`),
        or what an earlier request counted (`CountCache`); ``key[0]`` is the kind of counts."""
        lake = self.settings.lake_dir

        def run() -> Counting:
            con, seen = open_lake(lake)
            value, recount = compute(con, seen)
            return value, seen, _latest_received(con), recount

        per_counts = max(1, len(spec.metrics)) * len(spec.variation_ids)
        return self.cache.get(
            key, lambda: versions(lake), run, lambda v: len(v) * per_counts, _SHAPES[key[0]]
        )

    def segment_counts(self, spec: CountingSpec, segment: str | None) -> dict[SegmentValue, Counts]:
        """`count_segments` of ``spec``, or the same counts kept (`CountCache`)."""
        value: dict[SegmentValue, Counts] = self._segments(spec, segment).value
        return value

    def _segments(self, spec: CountingSpec, segment: str | None) -> Counted:
        key = ("segments", spec, segment)
        return self._count(key, spec, lambda con, seen: self._by_segment(spec, segment, con, seen))

    def _by_segment(
        self, spec: CountingSpec, segment: str | None, con: Any, seen: Versions
    ) -> tuple[dict[SegmentValue, Counts], float | None]:
        """`count_segments`, from the kept `VisitorState` brought up to date when it can be
        (`liftlog.analysis.incremental`), or from a state of the experiment's settings before
        they changed (`States.sibling`)."""
        lake = self.settings.lake_dir
        ids = tuple(table_ids(lake))
        kept = self.states.get(spec, segment) or self.states.sibling(spec, segment)
        state, updated = counted(con, lake, spec, seen, ids, kept, segment)
        self.states.put(state, wait=False)
        # Counted from scratch or derived from another spec's state, these counts are brought
        # up to date next time: a fraction of this counting, so they are not reused for as long
        # as it took (`CountCache`).
        only_updated = updated and kept is not None and kept.spec == spec
        return state.by_segment(), None if only_updated else 0.0

    def _daily(self, spec: CountingSpec) -> Counted:
        return self._count(("daily", spec), spec, lambda con, seen: self._days(spec, con, seen))

    def _days(
        self, spec: CountingSpec, con: Any, seen: Versions
    ) -> tuple[list[tuple[int, Counts]], None]:
        """`count_daily`, keeping the whole experiment's `VisitorState` from the same pass."""
        daily, state = count_daily_state(con, spec, seen, tuple(table_ids(self.settings.lake_dir)))
        self.states.put(state, wait=False)
        return daily, None

    def experiment(self, experiment_id: int) -> tuple[CountingSpec, list[Arm], float]:
        """The experiment's counting spec, its arms, and its project's significance level."""
        catalog = self.catalog()
        experiment = catalog.experiments.get(experiment_id)
        project = catalog.projects.get(experiment.project_id)
        arms = [Arm(str(v.variation_id), v.name or v.key, v.weight) for v in experiment.variations]
        return counting_spec(catalog, experiment_id), arms, project.confidence_threshold

    def freshness(self, counted: Counted | None = None) -> dict[str, Any]:
        """How complete the lake is; with ``counted``, how complete those counts are."""
        if counted is None:
            latest = _latest_received(connect(self.settings.lake_dir))
            changed = False
        else:
            latest = counted.latest_received
            changed = counted.versions != versions(self.settings.lake_dir)
        raw = rawlog_status(self.settings)
        pending, loaded = raw["pending_bytes"], raw["bytes"] - raw["pending_bytes"]
        estimate = None
        if pending and loaded:  # events per raw-log byte so far, times the bytes still waiting
            rows = sum(table_status(self.settings, t)["rows"] for t in ("decisions", "conversions"))
            estimate = round(pending * rows / loaded) if rows else None
        since = raw["oldest_waiting_received_ms"]
        doc: dict[str, Any] = {
            "latest_event_received": None if latest is None else latest.isoformat(),
            "raw_log_bytes_waiting": pending,
            "events_waiting_estimate": estimate,
            "oldest_waiting_received": None if since is None else iso(since),
            "is_complete": pending == 0 and not changed,
        }
        if counted is not None:
            doc["counted_at"] = iso(counted.counted_at_ms)
            doc["counting_seconds"] = round(counted.seconds, 3)
            doc["loaded_since_counted"] = changed
            doc["recount_by"] = iso(self.cache.recount_by_ms(counted))
        return doc

    def results(
        self,
        experiment_id: int,
        method: str = "sequential",
        segment: str | None = None,
        baseline: str | None = None,
    ) -> dict[str, Any]:
        spec, arms, level = self.experiment(experiment_id)
        if baseline is not None and baseline not in spec.variation_ids:
            raise InvalidInput(
                "Unknown baseline.", [Problem("query.baseline_variation_id", "not a variation")]
            )
        if segment:  # segments split the visitors: their sum is the whole experiment
            counted = self._segments(spec, segment)
            by_segment = counted.value
            overall = merge_counts(spec, by_segment.values())
            return self._document(
                spec, arms, level, counted, overall, method, baseline, (segment, by_segment)
            )
        counted, overall = self._kept_whole(spec) or self._whole(spec)
        return self._document(spec, arms, level, counted, overall, method, baseline)

    def _whole(self, spec: CountingSpec) -> tuple[Counted, Counts]:
        counted = self._segments(spec, None)
        return counted, _unsegmented(spec, counted)

    def _kept_whole(self, spec: CountingSpec) -> tuple[Counted, Counts] | None:
        """The whole experiment's counts if they are kept (in memory, else on disk), also as the
        last day of the page's daily counts. If none may answer now but the daily ones are the
        newer of those that may while they are counted again, those (and they are counted
        again): the results must not go back to older counts than the page showed.

        With a `VisitorState` of the experiment kept, its counts brought up to date instead
        (`_whole`): that takes a fraction of a counting, and the page takes its results from
        there too; unless the whole experiment's counts that may answer are older than the daily
        ones, which then answer."""
        current = versions(self.settings.lake_dir)
        daily_key, whole_key = ("daily", spec), ("segments", spec, None)
        if self.states.has(spec):
            counted, counts = self._whole(spec)
            self.cache.load(daily_key, _SHAPES["daily"])
            daily = self.cache.peek(daily_key, current, while_recounted=True)
            if (
                daily is not None
                and daily.versions != counted.versions
                and daily.counted_at_ms > counted.counted_at_ms
            ):
                return daily, _last_day(spec, daily)
            return counted, counts
        for on_disk in (False, True):  # memory first: a file costs a read
            for key, whole_of in ((daily_key, _last_day), (whole_key, _unsegmented)):
                if on_disk:
                    self.cache.load(key, _SHAPES[key[0]])
                entry = self.cache.peek(key, current)
                if entry is not None:
                    return entry, whole_of(spec, entry)
        daily = self.cache.peek(daily_key, current, while_recounted=True)
        whole = self.cache.peek(whole_key, current, while_recounted=True)
        if daily is not None and (whole is None or daily.counted_at_ms > whole.counted_at_ms):
            daily = self._daily(spec)
            return daily, _last_day(spec, daily)
        return None

    def overview(self, experiment_id: int) -> dict[str, Any]:
        """`results` of the primary metric alone (visitors, their split, the primary metric's
        verdict), for the experiments list. The primary metric is a false-discovery family of
        its own, so its figures are those of the full `results`, and leaving the other metrics'
        events out makes the count cheaper (2.4 against 4.3 s on the 10M-event bench lake).
        Counts of all the metrics, if kept, answer without a counting."""
        full, arms, level = self.experiment(experiment_id)
        spec = replace(full, metrics=full.metrics[:1])
        kept = self._kept_whole(full)
        if kept is not None:
            counted, counts = kept
            overall = replace(counts, metrics=counts.metrics[:1])
        else:
            counted, overall = self._whole(spec)
        return self._document(spec, arms, level, counted, overall, "sequential", None)

    def page(
        self, experiment_id: int, method: str = "sequential", segment: str | None = None
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """What the results page shows: `results`, and the primary metric's `timeseries` (None
        without metrics). Without a segment and without a kept `VisitorState` of the experiment,
        both come from one pass over the lake: the last day's cumulative counts are the whole
        experiment's, and that pass keeps the state; with one, the results are brought up to
        date from it, and the timeseries is kept and counted again as `_daily` says, so it may
        be of an older snapshot (its ``freshness`` says which)."""
        spec, arms, level = self.experiment(experiment_id)
        if segment or self.states.has(spec):
            doc = self.results(experiment_id, method, segment)
            series = self.timeseries(experiment_id, method, 0) if doc["metrics"] else None
            return doc, series
        counted = self._daily(spec)
        doc = self._document(spec, arms, level, counted, _last_day(spec, counted), method, None)
        if not doc["metrics"]:
            return doc, None
        series = build_timeseries(
            spec, arms, counted.value, metric_index=0, method=method, level=level
        )
        series["freshness"] = doc["freshness"]
        return doc, series

    def _document(
        self,
        spec: CountingSpec,
        arms: list[Arm],
        level: float,
        counted: Counted,
        overall: Counts,
        method: str,
        baseline: str | None,
        segments: tuple[str, dict[SegmentValue, Counts]] | None = None,
    ) -> dict[str, Any]:
        """The results document of ``overall``; with ``segments`` (the attribute and the counts
        per value), one more document per value under ``segments``."""
        doc = build_results(spec, arms, overall, method=method, level=level, baseline_id=baseline)
        doc["freshness"] = self.freshness(counted)
        doc["running_intervals"] = [
            {"start": iso(start), "end": iso(end)} for start, end in spec.intervals
        ]
        if segments is not None:
            segment, by_segment = segments
            doc["segment"] = segment
            doc["segments"] = [
                {
                    **segment_json(value),
                    **build_results(
                        spec, arms, counts, method=method, level=level, baseline_id=baseline
                    ),
                }
                for value, counts in sorted(by_segment.items(), key=lambda i: segment_order(i[0]))
            ]
        return doc

    @staticmethod
    def csv(doc: dict[str, Any]) -> str:
        """`results`' document as CSV."""
        return results_csv(doc)

    def timeseries(self, experiment_id: int, method: str, metric: int) -> dict[str, Any]:
        """Cumulative results per day of the ``metric``-th metric (0: the primary)."""
        spec, arms, level = self.experiment(experiment_id)
        if not 0 <= metric < len(spec.metrics):
            raise InvalidInput("Unknown metric.", [Problem("query.metric", "out of range")])
        counted = self._daily(spec)
        series = build_timeseries(
            spec, arms, counted.value, metric_index=metric, method=method, level=level
        )
        series["freshness"] = self.freshness(counted)
        return series

    def timeline(self, experiment_id: int, visitor_id: str) -> dict[str, Any]:
        """The visitor's stored events (the oldest `MAX_EVENTS`) and how they count in the
        experiment."""
        spec, _, _ = self.experiment(experiment_id)
        con = connect(self.settings.lake_dir)
        events, total = judged(con, visitor_id, spec)
        return {
            "visitor_id": visitor_id,
            "experiment_id": spec.experiment_id,
            "events": [event_json(d) for d in events],
            "events_total": total,
            "truncated": total > len(events),
            "rejected": [reject_json(r) for r in rejected_mentions(con, visitor_id)],
        }

    def explain(self, experiment_id: int, uuid: str) -> dict[str, Any]:
        """How the events with this uuid count in the experiment."""
        spec, _, _ = self.experiment(experiment_id)
        con = connect(self.settings.lake_dir)
        explained = [d for v in _visitors_of(con, uuid) for d in judged(con, v, spec, uuid=uuid)[0]]
        return {
            "uuid": uuid,
            "experiment_id": spec.experiment_id,
            "events": [event_json(d) for d in explained[:MAX_EVENTS]],
            "rejected": [reject_json(r) for r in rejected_mentions(con, uuid)],
        }

    def searched(self, q: str) -> tuple[list[str], list[str], list[dict[str, Any]]]:
        """The visitors ``q`` names (itself, or if ``q`` is an event uuid, its visitors), the
        experiments their stored events name, and the rejected records that mention ``q``."""
        con = connect(self.settings.lake_dir)
        visitors = [q]
        if not has_events(con, q):
            visitors = _visitors_of(con, q)
        return visitors, experiments_named(con, visitors), rejected_mentions(con, q)

    def judged(self, visitors: list[str], experiment_id: int) -> tuple[list[dict[str, Any]], int]:
        """How the visitors' events count in the experiment, as `event_json` (the first
        `MAX_EVENTS`), and how many events they have."""
        spec, _, _ = self.experiment(experiment_id)
        con = connect(self.settings.lake_dir)
        shown: list[dict[str, Any]] = []
        total = 0
        for visitor in visitors:
            events, count = judged(con, visitor, spec, limit=MAX_EVENTS - len(shown))
            shown += [event_json(d) for d in events]
            total += count
        return shown, total
