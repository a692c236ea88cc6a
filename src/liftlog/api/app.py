"""The ASGI application: the collector's two routes on a lean path, everything else on Starlette.

`create_app` is the app factory (no globals); `app_from_env` is what a server process imports.
The raw log is opened in the lifespan, inside the process that serves, so that each worker of
``liftlog serve --workers N`` owns a log directory of its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from liftlog import __version__
from liftlog.api.collector import Collector
from liftlog.api.errors import error_status_headers_body
from liftlog.errors import LiftlogError
from liftlog.rawlog.writer import RawLog, open_writer
from liftlog.settings import Settings


class LiftlogApp:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.collector: Collector | None = None
        self.web = Starlette(
            routes=[Route("/", self.index), Route("/healthz", self.health)],
            exception_handlers={LiftlogError: self.liftlog_error},
            lifespan=self.lifespan,
        )

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        writer = open_writer(self.settings.rawlog_dir, self.settings.segment_bytes)
        rawlog = RawLog(writer, self.settings.max_pending_bytes)
        self.collector = Collector(rawlog, self.settings.max_body_bytes)
        try:
            yield
        finally:
            self.collector = None
            await rawlog.close()

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
                "health": f"{base}/healthz",
            }
        )

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "version": __version__})

    async def liftlog_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LiftlogError)
        status, headers, body = error_status_headers_body(exc)
        extra = {k.decode(): v.decode() for k, v in headers if k == b"retry-after"}
        return Response(body, status, extra, "application/json")


def create_app(settings: Settings) -> LiftlogApp:
    return LiftlogApp(settings)


def app_from_env() -> LiftlogApp:
    """Factory for server processes: settings come from ``LIFTLOG_*`` environment variables."""
    return create_app(Settings.from_env())
