"""The ASGI application: the collector's two routes on a lean path, everything else on Starlette.

`create_app` is the app factory (no globals); `app_from_env` is what a server process imports.
The raw log and the catalog are opened in the lifespan, inside the process that serves, so that
each worker of ``liftlog serve --workers N`` owns a log directory and a connection pool of its
own. ``liftlog serve`` migrates the catalog once before starting workers; opening it here again
finds it at the newest schema.

Bearer tokens are resolved by ``self.verifiers``, tried in order (personal access tokens first);
another kind of token is one more ``app.verifiers.append(verifier)``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from liftlog import __version__
from liftlog.api.auth import Principal, Verifier
from liftlog.api.collector import Collector
from liftlog.api.datafiles import Datafiles
from liftlog.api.errors import error_status_headers_body
from liftlog.api.management import OPERATIONS
from liftlog.api.management.http import routes as management_routes
from liftlog.api.oauth import oauth_routes, oauth_verifier
from liftlog.api.oauth import openapi_paths as oauth_openapi_paths
from liftlog.api.openapi import OpenApi
from liftlog.api.results import ResultsAPI
from liftlog.api.results import openapi_paths as results_openapi_paths
from liftlog.api.tokens import PersonalAccessTokens
from liftlog.catalog.store import Catalog, default_url
from liftlog.errors import LiftlogError, MethodNotAllowed, NotFound, Unavailable
from liftlog.rawlog.writer import RawLog, open_writer
from liftlog.settings import Settings
from liftlog.web import WebPages


def _warming(verify: Verifier, results: Callable[[], ResultsAPI]) -> Verifier:
    """``verify``, and once a token that may read the APIs is accepted, the results'
    computations imported in the background: an integration that reads the management API asks
    for results next. Datafile tokens (SDKs polling) leave a collecting server without them."""

    def verified(secret: str) -> Principal | None:
        principal = verify(secret)
        if principal is not None and principal.allows("read"):
            results().import_soon()
        return principal

    return verified


class LiftlogApp:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.collector: Collector | None = None
        self._catalog: Catalog | None = None
        self._verifiers: list[Verifier] = [
            _warming(PersonalAccessTokens(lambda: self._catalog), lambda: results),
            _warming(oauth_verifier(lambda: self._catalog), lambda: results),
        ]
        openapi = OpenApi(OPERATIONS, {**results_openapi_paths(), **oauth_openapi_paths()})
        # One ResultsAPI for the routes and the pages: they share the counts it keeps.
        results = ResultsAPI(settings, self.open_catalog, self._verifiers)
        self.pages = WebPages(settings, self.open_catalog, results)
        self.web = Starlette(
            routes=[
                Route("/", self.index),
                Route("/healthz", self.health),
                Route("/openapi.json", openapi.json),
                Route("/docs", openapi.docs),
                *Datafiles(self).routes(),
                *management_routes(self, OPERATIONS),
                *results.routes(),
                *oauth_routes(lambda: self._catalog, self._verifiers, self._signed_in),
                self.pages.mount(),
            ],
            exception_handlers={LiftlogError: self.liftlog_error, HTTPException: self.http_error},
            lifespan=self.lifespan,
        )

    def _signed_in(self, request: Request) -> tuple[int, str, str] | None:
        """Who is signed in to the pages: (account id, email, CSRF token), for OAuth consent."""
        found = self.pages.signed_in(request)
        return None if found is None else (found[0].account_id, found[0].email, found[1])

    @property
    def catalog(self) -> Catalog | None:
        return self._catalog

    def open_catalog(self) -> Catalog:
        """The catalog, once the lifespan has opened it."""
        if self._catalog is None:
            raise Unavailable("The catalog is not open yet; retry in a moment.")
        return self._catalog

    @property
    def verifiers(self) -> list[Verifier]:
        return self._verifiers

    @property
    def database_url(self) -> str:
        return self.settings.database_url or default_url(self.settings.data_dir)

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self._catalog = await run_in_threadpool(Catalog.open, self.database_url)
        writer = open_writer(self.settings.rawlog_dir, self.settings.segment_bytes)
        rawlog = RawLog(writer, self.settings.max_pending_bytes)
        self.collector = Collector(rawlog, self.settings.max_body_bytes)
        try:
            yield
        finally:
            self.collector = None
            await rawlog.close()
            catalog, self._catalog = self._catalog, None
            catalog.close()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self.collector is not None:
            path = scope["path"]
            if path == "/v1/events":
                await self.collector.events(scope, receive, send)
                return
            if path == "/event":
                await self.collector.legacy(scope, receive, send)
                return
        await self.web(scope, receive, send)

    async def index(self, request: Request) -> Response:
        base = str(request.base_url).rstrip("/")
        return JSONResponse(
            {
                "name": "liftlog",
                "version": __version__,
                "event_api": f"{base}/v1/events",
                "legacy_event_api": f"{base}/event",
                "management_api": f"{base}/v2/projects",
                "datafiles": f"{base}/datafiles/{{sdk_key}}.json",
                "openapi": f"{base}/openapi.json",
                "docs": f"{base}/docs",
                "health": f"{base}/healthz",
            }
        )

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "version": __version__})

    async def liftlog_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LiftlogError)
        status, headers, body = error_status_headers_body(exc)
        extra = {k.decode(): v.decode() for k, v in headers if k == b"retry-after"}
        if status == 401:
            extra["www-authenticate"] = 'Bearer realm="liftlog"'  # RFC 6750 §3
        return Response(body, status, extra, "application/json")

    async def http_error(self, request: Request, exc: Exception) -> Response:
        """Starlette's own 404 (no route) and 405 (no such method), in the shared error shape."""
        assert isinstance(exc, HTTPException)
        error: LiftlogError
        if exc.status_code == 405:
            error = MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}.")
        elif exc.status_code == 404:
            error = NotFound(f"Nothing is at {request.url.path}.")
        else:
            error = LiftlogError(str(exc.detail))
            error.status = exc.status_code
        response = await self.liftlog_error(request, error)
        if exc.headers:
            response.headers.update(exc.headers)
        return response


def create_app(settings: Settings) -> LiftlogApp:
    return LiftlogApp(settings)


def app_from_env() -> LiftlogApp:
    """Factory for server processes: settings come from ``LIFTLOG_*`` environment variables."""
    return create_app(Settings.from_env())
