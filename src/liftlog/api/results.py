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

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from liftlog.api.auth import Verifier, authenticate
from liftlog.catalog.repo import is_id_text
from liftlog.catalog.store import Catalog
from liftlog.errors import InvalidInput, NotFound, Problem
from liftlog.methods import METHODS
from liftlog.settings import Settings

if TYPE_CHECKING:
    from liftlog.api.reports import Reports


def _required_int(request: Request, name: str) -> int:
    value = _int_param(request, name)
    if value is None:
        raise InvalidInput(f"'{name}' is required.", [Problem(f"query.{name}", "is required")])
    return value


def _int_param(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if not is_id_text(raw):
        raise InvalidInput(
            f"'{name}' must be an integer.",
            [Problem(f"query.{name}", "must be a non-negative integer")],
        )
    return int(raw)


def _path_int(request: Request, name: str) -> int:
    raw = str(request.path_params[name])
    if not is_id_text(raw):
        raise NotFound(f"No experiment {raw!r}.")
    return int(raw)


def _method(request: Request) -> str:
    method = request.query_params.get("method", "sequential")
    if method not in METHODS:
        raise InvalidInput(
            "Unknown method.", [Problem("query.method", f"must be one of {', '.join(METHODS)}")]
        )
    return method


class ResultsAPI:
    def __init__(
        self, settings: Settings, catalog: Callable[[], Catalog], verifiers: Sequence[Verifier]
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.verifiers = verifiers
        self._reports: Reports | None = None
        self._importing = threading.Lock()  # one thread imports; the others wait for it
        self._import_started = False

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v2/experiments/{experiment_id}/results", self.results),
            Route("/v2/experiments/{experiment_id}/timeseries", self.timeseries),
            Route("/v2/visitors/{visitor_id}/timeline", self.timeline),
            Route("/v2/events/{uuid}/explain", self.explain),
        ]

    @property
    def reports(self) -> Reports:
        """The computations, imported on first use (see `liftlog.api.reports`)."""
        if self._reports is None:
            with self._importing:
                if self._reports is None:
                    from liftlog.api.reports import Reports

                    self._reports = Reports(self.settings, self.catalog)
        return self._reports

    def import_soon(self) -> None:
        """Import the computations in the background, when results will likely be asked for
        soon (someone signed in to the pages, or opened one signed in): the first page then
        doesn't wait for the imports, about a second and a half."""
        if self._reports is None and not self._import_started:  # once, not per page opened
            self._import_started = True
            threading.Thread(target=self._import, name="liftlog-import", daemon=True).start()

    def _import(self) -> None:
        self.reports  # noqa: B018 - the property imports
        from liftlog.api.reports import import_the_rest

        import_the_rest()

    def _auth(self, request: Request) -> None:
        authenticate(request.headers.get("authorization"), self.verifiers, "read")

    async def results(self, request: Request) -> Response:
        self._auth(request)
        experiment_id = _path_int(request, "experiment_id")
        method = _method(request)
        segment = request.query_params.get("segment") or None
        baseline = request.query_params.get("baseline_variation_id") or None

        # In a worker thread: the first call also imports the analysis stack.
        doc = await run_in_threadpool(
            lambda: self.reports.results(experiment_id, method, segment, baseline)
        )
        if request.query_params.get("format") == "csv":
            disposition = f'attachment; filename="experiment-{experiment_id}.csv"'
            return Response(
                self.reports.csv(doc),
                media_type="text/csv",
                headers={"content-disposition": disposition},
            )
        return JSONResponse(doc)

    async def timeseries(self, request: Request) -> Response:
        self._auth(request)
        experiment_id = _path_int(request, "experiment_id")
        method = _method(request)
        metric = _int_param(request, "metric") or 0
        doc = await run_in_threadpool(
            lambda: self.reports.timeseries(experiment_id, method, metric)
        )
        return JSONResponse(doc)

    async def timeline(self, request: Request) -> Response:
        self._auth(request)
        visitor_id = request.path_params["visitor_id"]
        experiment_id = _required_int(request, "experiment")
        doc = await run_in_threadpool(lambda: self.reports.timeline(experiment_id, visitor_id))
        return JSONResponse(doc)

    async def explain(self, request: Request) -> Response:
        self._auth(request)
        uuid = request.path_params["uuid"]
        experiment_id = _required_int(request, "experiment")
        doc = await run_in_threadpool(lambda: self.reports.explain(experiment_id, uuid))
        return JSONResponse(doc)


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
