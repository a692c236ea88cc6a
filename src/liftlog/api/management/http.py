"""What every management endpoint shares: authentication, bodies, ETags, pages and owners.

An endpoint is declared once, as an `Operation` (method, path, handler, and what the OpenAPI
document says about it); the same declaration becomes a Starlette route and an OpenAPI operation,
so the two cannot drift apart.

Handlers are plain synchronous functions of a `Call`: the catalog is synchronous SQLAlchemy, so
each request runs its handler in Starlette's thread pool. The bearer token is checked before the
body is read, so an unauthenticated client cannot make the server buffer a 5 MiB list.

Concurrency: every object response carries ``ETag: "<version>"``. A PATCH, PUT or DELETE may send
``If-Match`` with that tag; if the object has changed since, the answer is 412 Precondition Failed
(RFC 9110 §13.1.1) and nothing is written. ``If-Match: *`` only requires that the object exists.
Without If-Match the write applies to whatever version is current (last writer wins), as in
Optimizely's API. 409 Conflict stays for rule conflicts: a taken key, a status that cannot be
reached, deleting what is in use.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from liftlog.api.auth import Principal, Verifier, authenticate
from liftlog.api.body import read_body
from liftlog.catalog.models import Page
from liftlog.catalog.repo import DEFAULT_PER_PAGE, is_id_text
from liftlog.catalog.store import Catalog
from liftlog.errors import Conflict, InvalidInput, NotFound, Problem, Unavailable, too_deep

T = TypeVar("T")

#: Bodies of ordinary objects are small; an uploaded list holds up to 5 MiB of CSV, which JSON
#: escaping (quotes, newlines) can nearly double.
MAX_JSON_BYTES = 1 << 20
MAX_LIST_BODY_BYTES = 12 << 20


class PreconditionFailed(Conflict):
    """The object changed since the version named in If-Match was read."""

    status = 412
    code = "precondition_failed"


class Backend(Protocol):
    """What the endpoints need from the application: the open catalog and the token verifiers."""

    @property
    def catalog(self) -> Catalog | None: ...

    @property
    def verifiers(self) -> list[Verifier]: ...


@dataclass(frozen=True)
class Call:
    """One authenticated request, as a handler sees it."""

    catalog: Catalog
    principal: Principal
    path_params: Mapping[str, Any]
    query: QueryParams
    headers: Headers
    body: bytes
    url: str

    def json(self) -> Any:
        """The body as JSON (an object is expected; the catalog checks its fields)."""
        if not self.body.strip():
            raise InvalidInput("The request needs a JSON body.", [Problem("$", "is empty")])
        try:
            return json.loads(self.body)
        except (UnicodeDecodeError, ValueError) as exc:
            raise InvalidInput(
                "The body is not valid JSON.", [Problem("$", f"invalid JSON: {exc}")]
            ) from None
        except RecursionError:
            raise too_deep() from None

    def json_object(self) -> dict[str, Any]:
        body = self.json()
        if not isinstance(body, dict):
            raise InvalidInput("The body must be a JSON object.", [Problem("$", "not an object")])
        return body

    def id(self, name: str) -> int:
        """A numeric id from the path; anything else names nothing (404)."""
        raw = str(self.path_params[name])
        if not is_id_text(raw):
            raise NotFound(f"{name} {raw!r} not found")
        return int(raw)

    def query_int(self, name: str) -> int | None:
        """An optional integer query parameter."""
        raw = self.query.get(name)
        if raw is None or raw == "":
            return None
        if not is_id_text(raw):
            raise InvalidInput(
                f"The query parameter {name} must be an integer.",
                [Problem(f"query.{name}", "must be a non-negative integer")],
            )
        return int(raw)

    def query_id(self, name: str) -> int:
        """A required integer query parameter, such as ``project_id`` of a list."""
        value = self.query_int(name)
        if value is None:
            raise InvalidInput(
                f"The query parameter {name} is required.",
                [Problem(f"query.{name}", "is required")],
            )
        return value

    def page(self) -> tuple[int, int]:
        """``page`` (default 1) and ``per_page`` (default 25, at most 100); the catalog checks
        the range."""
        page = self.query_int("page")
        per_page = self.query_int("per_page")
        return (1 if page is None else page), (DEFAULT_PER_PAGE if per_page is None else per_page)

    def if_match(self) -> int | None:
        """The version named by If-Match (``"3"``), or None for no header or ``*``."""
        raw = self.headers.get("if-match")
        if raw is None or raw.strip() == "*":
            return None
        tag = raw.strip()
        inner = tag[1:-1] if len(tag) >= 2 and tag[0] == tag[-1] == '"' else ""
        if not is_id_text(inner):
            raise InvalidInput(
                'If-Match must be one entity tag as sent in ETag, such as "3", or *.',
                [Problem("if-match", f"not a strong entity tag of this API: {raw!r}")],
            )
        return int(inner)

    def owned_project(self, project_id: int) -> None:
        """NotFound unless the project exists in the caller's account (others' are invisible)."""
        project = self.catalog.projects.get(project_id)
        if project.account_id != self.principal.account_id:
            raise NotFound(f"project {project_id} not found")

    def body_project(self, body: Mapping[str, Any]) -> int:
        """The ``project_id`` a create body must name (as in Optimizely), checked for ownership."""
        project_id = body.get("project_id")
        if isinstance(project_id, bool) or not isinstance(project_id, int):
            raise InvalidInput(
                "The body must name its project.",
                [Problem("$.project_id", "is required (an integer)")],
            )
        try:
            self.owned_project(project_id)
        except NotFound as exc:
            raise NotFound(exc.message, [Problem("$.project_id", "no such project")]) from None
        return project_id


def guarded(call: Call, write: Callable[[int | None], T], version_now: Callable[[], int]) -> T:
    """Run ``write(if_version)``; a Conflict raised while the object moved on from the version in
    If-Match becomes 412 (the catalog reports a stale version as a Conflict)."""
    expected = call.if_match()
    try:
        return write(expected)
    except Conflict as exc:
        if expected is not None and not isinstance(exc, PreconditionFailed):
            current = version_now()
            if current != expected:
                raise PreconditionFailed(
                    f"The object is at version {current}, not {expected}.",
                    [Problem("if-match", "the object changed since it was read; fetch it again")],
                ) from exc
        raise


def etag(version: int) -> str:
    return f'"{version}"'


def encode(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def object_response(obj: Any, status: int = 200) -> Response:
    """A catalog object (with `version` and `to_dict()`) and its ETag."""
    return Response(encode(obj.to_dict()), status, {"etag": etag(obj.version)}, "application/json")


def json_response(data: Any, status: int = 200) -> Response:
    return Response(encode(data), status, media_type="application/json")


def no_content() -> Response:
    return Response(status_code=204)


def page_response(page: Page[Any], call: Call) -> Response:
    """A JSON array (Optimizely's list shape), with ``Link`` (first, prev, next, last) and
    ``X-Total-Count``."""
    base, _, _ = call.url.partition("?")
    params = [(k, v) for k, v in call.query.multi_items() if k not in ("page", "per_page")]

    def link(number: int, rel: str) -> str:
        query = urlencode([*params, ("page", str(number)), ("per_page", str(page.per_page))])
        return f'<{base}?{query}>; rel="{rel}"'

    links = [link(1, "first")]
    if page.page > 1:
        links.append(link(min(page.page - 1, page.last_page), "prev"))
    if page.page < page.last_page:
        links.append(link(page.page + 1, "next"))
    links.append(link(page.last_page, "last"))
    return Response(
        encode([item.to_dict() for item in page.items]),
        200,
        {"link": ", ".join(links), "x-total-count": str(page.total)},
        "application/json",
    )


@dataclass(frozen=True)
class Param:
    """A query or path parameter, for the OpenAPI document."""

    name: str
    where: str = "query"
    description: str = ""
    required: bool = False
    type: str = "integer"
    enum: tuple[str, ...] = ()


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    handler: Callable[[Call], Response]
    summary: str
    tag: str
    status: int = 200
    returns: str | None = None
    """Component schema of the response (an array of it when `paged`)."""
    body: str | None = None
    """Component schema of the request body."""
    paged: bool = False
    params: tuple[Param, ...] = ()
    max_body: int = MAX_JSON_BYTES
    responses: tuple[int, ...] = field(default=())

    @property
    def scope(self) -> str:
        return "read" if self.method == "GET" else "write"

    @property
    def name(self) -> str:
        return f"{self.method.lower()}_{self.path.strip('/').replace('/', '_')}"


def endpoint(backend: Backend, op: Operation) -> Callable[[Request], Any]:
    async def run(request: Request) -> Response:
        catalog = backend.catalog
        if catalog is None:
            raise Unavailable("The catalog is not open yet.")
        principal = await run_in_threadpool(
            authenticate, request.headers.get("authorization"), backend.verifiers, op.scope
        )
        body = b""
        if op.method in ("POST", "PATCH", "PUT"):
            length = request.headers.get("content-length")
            encoding = request.headers.get("content-encoding")
            body = await read_body(
                request.receive,
                op.max_body,
                int(length) if length and length.isdigit() else None,
                encoding.encode("latin-1") if encoding else None,
            )
        call = Call(
            catalog=catalog,
            principal=principal,
            path_params=request.path_params,
            query=request.query_params,
            headers=request.headers,
            body=body,
            url=str(request.url),
        )
        return await run_in_threadpool(op.handler, call)

    return run


def routes(backend: Backend, operations: Iterable[Operation]) -> list[Route]:
    """One Starlette route per operation; Starlette answers 405 for a known path and an unknown
    method."""
    return [
        Route(op.path, endpoint(backend, op), methods=[op.method], name=op.name)
        for op in operations
    ]


def paths(operations: Sequence[Operation]) -> list[str]:
    return list(dict.fromkeys(op.path for op in operations))
