"""Results API: results, timeseries, and why an event did or did not count.

    GET /v2/experiments/{id}/results?method=sequential|fixed|bayesian&segment=<attribute>
                                    &baseline_variation_id=<id>&format=json|csv
    GET /v2/experiments/{id}/timeseries?method=…&metric=<index>
    GET /v2/visitors/{visitor_id}/timeline?experiment=<id>
    GET /v2/events/{uuid}/explain?experiment=<id>

All need a bearer token with the ``read`` scope. The SQL runs in a worker thread, so a long
computation never holds up the Event API on the same server.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from liftlog.analysis.counting import count_daily, count_segments, empty_counts, merge_counts
from liftlog.analysis.explain import events_by_uuid, rejected_mentions, visitor_events
from liftlog.analysis.sources import connect
from liftlog.analysis.spec import counting_spec
from liftlog.api.auth import Verifier, authenticate
from liftlog.catalog.store import Catalog
from liftlog.errors import InvalidInput, NotFound, Problem
from liftlog.lake.status import rawlog_status, table_status
from liftlog.report import METHODS, Arm, build_results, build_timeseries, results_csv
from liftlog.rules.counting import CountingSpec, describe
from liftlog.rules.dispositions import Disposition, StoredEvent, dispositions
from liftlog.settings import Settings


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def _required_int(request: Request, name: str) -> int:
    value = _int_param(request, name)
    if value is None:
        raise InvalidInput(f"'{name}' is required.", [Problem(f"query.{name}", "is required")])
    return value


def _int_param(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput(
            f"'{name}' must be an integer.", [Problem(f"query.{name}", "must be an integer")]
        ) from None


def _path_int(request: Request, name: str) -> int:
    try:
        return int(request.path_params[name])
    except ValueError:
        raise NotFound(f"No experiment {request.path_params[name]!r}.") from None


def _method(request: Request) -> str:
    method = request.query_params.get("method", "sequential")
    if method not in METHODS:
        raise InvalidInput(
            "Unknown method.", [Problem("query.method", f"must be one of {', '.join(METHODS)}")]
        )
    return method


def event_json(d: Disposition) -> dict[str, Any]:
    e: StoredEvent = d.event
    return {
        "kind": e.kind,
        "uuid": e.uuid,
        "entity_id": e.entity_id,
        "key": e.event_key,
        "timestamp": e.timestamp_raw,
        "time": _iso(e.timestamp),
        "received": _iso(e.received),
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


class ResultsAPI:
    def __init__(
        self, settings: Settings, catalog: Callable[[], Catalog], verifiers: Sequence[Verifier]
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.verifiers = verifiers

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v2/experiments/{experiment_id}/results", self.results),
            Route("/v2/experiments/{experiment_id}/timeseries", self.timeseries),
            Route("/v2/visitors/{visitor_id}/timeline", self.timeline),
            Route("/v2/events/{uuid}/explain", self.explain),
        ]

    @property
    def lake(self) -> Path:
        return self.settings.lake_dir

    def _auth(self, request: Request) -> None:
        authenticate(request.headers.get("authorization"), self.verifiers, "read")

    def _experiment(self, experiment_id: int) -> tuple[CountingSpec, list[Arm], float]:
        catalog = self.catalog()
        experiment = catalog.experiments.get(experiment_id)
        project = catalog.projects.get(experiment.project_id)
        arms = [Arm(str(v.variation_id), v.name or v.key, v.weight) for v in experiment.variations]
        return counting_spec(catalog, experiment_id), arms, project.confidence_threshold

    def freshness(self) -> dict[str, Any]:
        con = connect(self.lake)
        [(latest,)] = con.execute(
            "SELECT max(t) FROM (SELECT max(process_timestamp) AS t FROM decisions "
            "UNION ALL SELECT max(process_timestamp) FROM conversions)"
        ).fetchall()
        raw = rawlog_status(self.settings)
        pending, loaded = raw["pending_bytes"], raw["bytes"] - raw["pending_bytes"]
        estimate = None
        if pending and loaded:  # events per raw-log byte so far, times the bytes still waiting
            rows = sum(table_status(self.settings, t)["rows"] for t in ("decisions", "conversions"))
            estimate = round(pending * rows / loaded) if rows else None
        return {
            "latest_event_received": None if latest is None else latest.isoformat(),
            "raw_log_bytes_waiting": pending,
            "events_waiting_estimate": estimate,
            "is_complete": pending == 0,
        }

    def _results(self, experiment_id: int, request: Request) -> dict[str, Any]:
        spec, arms, level = self._experiment(experiment_id)
        method = _method(request)
        segment = request.query_params.get("segment") or None
        baseline = request.query_params.get("baseline_variation_id") or None
        if baseline is not None and baseline not in spec.variation_ids:
            raise InvalidInput(
                "Unknown baseline.", [Problem("query.baseline_variation_id", "not a variation")]
            )
        by_segment = count_segments(connect(self.lake), spec, segment)
        if segment:  # segments split the visitors: their sum is the whole experiment
            overall = merge_counts(spec, by_segment.values())
        else:
            overall = by_segment.get(None) or empty_counts(spec)
        doc = build_results(spec, arms, overall, method=method, level=level, baseline_id=baseline)
        doc["freshness"] = self.freshness()
        doc["running_intervals"] = [
            {"start": _iso(start), "end": _iso(end)} for start, end in spec.intervals
        ]
        if segment:
            doc["segment"] = segment
            doc["segments"] = [
                {
                    "value": value,
                    **build_results(
                        spec, arms, counts, method=method, level=level, baseline_id=baseline
                    ),
                }
                for value, counts in sorted(by_segment.items(), key=_segment_order)
            ]
        return doc

    async def results(self, request: Request) -> Response:
        self._auth(request)
        experiment_id = _path_int(request, "experiment_id")
        doc = await run_in_threadpool(self._results, experiment_id, request)
        if request.query_params.get("format") == "csv":
            return Response(
                results_csv(doc),
                media_type="text/csv",
                headers={
                    "content-disposition": f'attachment; filename="experiment-{experiment_id}.csv"'
                },
            )
        return JSONResponse(doc)

    async def timeseries(self, request: Request) -> Response:
        self._auth(request)
        experiment_id = _path_int(request, "experiment_id")
        method = _method(request)
        metric = _int_param(request, "metric") or 0

        def compute() -> dict[str, Any]:
            spec, arms, level = self._experiment(experiment_id)
            if not 0 <= metric < len(spec.metrics):
                raise InvalidInput("Unknown metric.", [Problem("query.metric", "out of range")])
            daily = count_daily(connect(self.lake), spec)
            return build_timeseries(
                spec, arms, daily, metric_index=metric, method=method, level=level
            )

        return JSONResponse(await run_in_threadpool(compute))

    async def timeline(self, request: Request) -> Response:
        self._auth(request)
        visitor_id = request.path_params["visitor_id"]
        experiment_id = _required_int(request, "experiment")

        def compute() -> dict[str, Any]:
            spec, _, _ = self._experiment(experiment_id)
            con = connect(self.lake)
            events = dispositions(visitor_events(con, visitor_id), spec)
            return {
                "visitor_id": visitor_id,
                "experiment_id": spec.experiment_id,
                "events": [event_json(d) for d in events],
                "rejected": [_reject_json(r) for r in rejected_mentions(con, visitor_id)],
            }

        return JSONResponse(await run_in_threadpool(compute))

    async def explain(self, request: Request) -> Response:
        self._auth(request)
        uuid = request.path_params["uuid"]
        experiment_id = _required_int(request, "experiment")

        def compute() -> dict[str, Any]:
            spec, _, _ = self._experiment(experiment_id)
            con = connect(self.lake)
            mine = events_by_uuid(con, uuid)
            visitors = {e.visitor_id for e in mine if e.visitor_id is not None}
            explained = [
                d
                for v in sorted(visitors)
                for d in dispositions(visitor_events(con, v), spec)
                if d.event.uuid == uuid
            ]
            return {
                "uuid": uuid,
                "experiment_id": spec.experiment_id,
                "events": [event_json(d) for d in explained],
                "rejected": [_reject_json(r) for r in rejected_mentions(con, uuid)],
            }

        return JSONResponse(await run_in_threadpool(compute))


def _segment_order(item: tuple[str | None, Any]) -> tuple[bool, str]:
    return (item[0] is None, item[0] or "")


def _reject_json(row: dict[str, Any]) -> dict[str, Any]:
    received = row["process_timestamp"]
    return {
        "received": received.isoformat() if received is not None else None,
        "endpoint": row["endpoint"],
        "disposition": "rejected_at_load",
        "reason": row["reason"],
        "detail": row["detail"],
        "rawlog_position": row["rawlog_position"],
    }


def _op(summary: str, params: list[dict[str, Any]], csv: bool = False) -> dict[str, Any]:
    content: dict[str, Any] = {"application/json": {"schema": {"type": "object"}}}
    if csv:
        content["text/csv"] = {"schema": {"type": "string"}}
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    return {
        "get": {
            "operationId": "get_" + summary.lower().replace(" ", "_").replace("'", ""),
            "summary": summary,
            "tags": ["Results"],
            "parameters": params,
            "security": [{"bearer": ["read"]}],
            "responses": {
                "200": {"description": "OK", "content": content},
                "400": {"description": "A bad parameter", "content": error},
                "401": {"description": "No or bad token", "content": error},
                "404": {"description": "No such experiment", "content": error},
            },
        }
    }


def _param(name: str, where: str, kind: str, description: str, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": name,
        "in": where,
        "schema": {"type": kind, **extra},
        "description": description,
    }
    if where == "path":
        out["required"] = True
    return out


def openapi_paths() -> dict[str, Any]:
    """The OpenAPI path items of the routes above."""
    experiment = _param("experiment_id", "path", "integer", "The experiment.")
    method = _param("method", "query", "string", "Statistics.", enum=list(METHODS))
    return {
        "/v2/experiments/{experiment_id}/results": _op(
            "Experiment results",
            [
                experiment,
                method,
                _param("segment", "query", "string", "Break down by this attribute (key or id)."),
                _param("baseline_variation_id", "query", "string", "Compare with this one."),
                _param("format", "query", "string", "json or csv", enum=["json", "csv"]),
            ],
            csv=True,
        ),
        "/v2/experiments/{experiment_id}/timeseries": _op(
            "Experiment timeseries",
            [experiment, method, _param("metric", "query", "integer", "Metric index, 0 first.")],
        ),
        "/v2/visitors/{visitor_id}/timeline": _op(
            "Visitor timeline",
            [
                _param("visitor_id", "path", "string", "The visitor."),
                _param("experiment", "query", "integer", "The experiment.", minimum=1),
            ],
        ),
        "/v2/events/{uuid}/explain": _op(
            "Explain an event",
            [
                _param("uuid", "path", "string", "The event's uuid."),
                _param("experiment", "query", "integer", "The experiment.", minimum=1),
            ],
        ),
    }
