"""Serving datafiles: ``GET /datafiles/{sdk_key}.json`` (open, as Optimizely's CDN) and
``GET /datafiles/auth/{sdk_key}.json`` (``Authorization: Bearer <datafile access token>``: a token
of scope ``datafile`` from the project's account).

Validators, and why both:

* ``ETag`` is ``"<project id>-<revision>"``. The revision changes with every change that alters
  the datafile, so a matching ``If-None-Match`` is answered 304 after one indexed lookup, without
  building the datafile.
* ``Last-Modified`` is what the official SDKs use (they send ``If-Modified-Since``, never
  ``If-None-Match``). HTTP dates have whole seconds, so two changes within one second would share
  a date, and an SDK that fetched between them would be told "not modified" until the next change.
  A date is therefore sent only once the second after the last change has fully passed
  (RFC 9110 §8.8.2.2: such a date is a strong validator); until then the response has no
  ``Last-Modified``, the SDK sends no ``If-Modified-Since`` and simply gets the datafile again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from liftlog.api.auth import authenticate
from liftlog.api.management.http import Backend
from liftlog.catalog.datafile import build_datafile
from liftlog.catalog.models import Project
from liftlog.catalog.store import Catalog
from liftlog.errors import Forbidden, Unavailable
from liftlog.wire.datafile import encode_datafile


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def http_date(seconds: int) -> str:
    return format_datetime(datetime.fromtimestamp(seconds, UTC), usegmt=True)


def parse_http_date(value: str) -> int | None:
    try:
        return int(parsedate_to_datetime(value).timestamp())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def stable_seconds(last_modified_ms: int, now: int) -> int | None:
    """The Last-Modified second, if it is safe to send (a whole second has passed since)."""
    second = last_modified_ms // 1000
    return second if now // 1000 > second + 1 else None


def not_modified(headers: Mapping[str, str], tag: str, modified: int | None) -> bool:
    """RFC 9110 §13.2.2: If-None-Match decides when present, else If-Modified-Since."""
    none_match = headers.get("if-none-match")
    if none_match is not None:
        tags = [t.strip().removeprefix("W/") for t in none_match.split(",")]
        return "*" in tags or tag in tags
    since = headers.get("if-modified-since")
    if since is None or modified is None:
        return False
    since_s = parse_http_date(since)
    return since_s is not None and modified <= since_s


def datafile_response(
    catalog: Catalog,
    project: Project,
    headers: Mapping[str, str],
    now: int,
    cache_control: str,
) -> Response:
    tag = f'"{project.id}-{project.revision}"'
    modified = stable_seconds(project.last_modified, now)
    validators = {"etag": tag, "cache-control": cache_control}
    if modified is not None:
        validators["last-modified"] = http_date(modified)
    if not_modified(headers, tag, modified):
        return Response(status_code=304, headers=validators)
    datafile = build_datafile(catalog, project.sdk_key)
    if datafile.revision != str(project.revision):
        # Changed between the two reads: describe what is sent, with no date to rely on.
        validators = {"etag": f'"{project.id}-{datafile.revision}"', "cache-control": cache_control}
    return Response(encode_datafile(datafile), 200, validators, "application/json")


class Datafiles:
    def __init__(self, backend: Backend, clock: Callable[[], int] = now_ms) -> None:
        self.backend = backend
        self.clock = clock

    def _catalog(self) -> Catalog:
        catalog = self.backend.catalog
        if catalog is None:
            raise Unavailable("The catalog is not open yet.")
        return catalog

    def _public(self, sdk_key: str, headers: Mapping[str, str]) -> Response:
        catalog = self._catalog()
        project = catalog.projects.by_sdk_key(sdk_key)
        return datafile_response(catalog, project, headers, self.clock(), "no-cache")

    def _authenticated(self, sdk_key: str, headers: Mapping[str, str]) -> Response:
        catalog = self._catalog()
        principal = authenticate(headers.get("authorization"), self.backend.verifiers, "datafile")
        project = catalog.projects.by_sdk_key(sdk_key)
        if project.account_id != principal.account_id:
            raise Forbidden("This token is not valid for this project's datafile.")
        return datafile_response(catalog, project, headers, self.clock(), "private, no-cache")

    async def public(self, request: Request) -> Response:
        return await run_in_threadpool(
            self._public, request.path_params["sdk_key"], request.headers
        )

    async def authenticated(self, request: Request) -> Response:
        return await run_in_threadpool(
            self._authenticated, request.path_params["sdk_key"], request.headers
        )

    def routes(self) -> list[Route]:
        return [
            Route("/datafiles/auth/{sdk_key}.json", self.authenticated, methods=["GET"]),
            Route("/datafiles/{sdk_key}.json", self.public, methods=["GET"]),
        ]
