"""The OpenAPI 3.1 document (``GET /openapi.json``), made from the same `Operation` declarations
that become the routes, and ``GET /docs``: a self-contained page (no CDN, no framework) that lists
every operation with a form to send it, for trying the API from a browser."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from liftlog import __version__
from liftlog.api.docs_page import DOCS_HTML
from liftlog.api.management.http import Operation, Param
from liftlog.api.schemas import SCHEMAS

ERROR_STATUSES = {
    400: "The request is malformed (bad JSON, wrong types, unknown fields).",
    401: "No bearer token, or an unknown or revoked one.",
    403: "The token lacks the scope this operation needs.",
    404: "Not found (or in another account).",
    409: "Conflicts with the current state (a taken key, a transition not allowed).",
    412: "If-Match names a version the object no longer has.",
    413: "The body (an uploaded list) is too large.",
    422: "Understood but breaks a rule (weights over 10000, unknown event id).",
}
PAGE_PARAMS = (
    Param("page", description="Page number, from 1."),
    Param("per_page", description="Objects per page, 1-100 (default 25)."),
)
ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


def _param(p: Param) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": p.type}
    if p.enum:
        schema["enum"] = list(p.enum)
    out: dict[str, Any] = {"name": p.name, "in": p.where, "schema": schema}
    if p.required or p.where == "path":
        out["required"] = True
    if p.description:
        out["description"] = p.description
    return out


def _header(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "header", "schema": {"type": "string"}, "description": description}


def _operation(op: Operation) -> dict[str, Any]:
    params = [_param(p) for p in op.params + (PAGE_PARAMS if op.paged else ())]
    if op.method in ("PATCH", "PUT", "DELETE"):
        params.append(_header("If-Match", 'The ETag read before, e.g. "3"; 412 if stale.'))
    success: dict[str, Any] = {"description": "OK" if op.status != 204 else "No content"}
    if op.returns is not None:
        ref = {"$ref": f"#/components/schemas/{op.returns}"}
        schema = {"type": "array", "items": ref} if op.paged else ref
        success["content"] = {"application/json": {"schema": schema}}
        success["headers"] = (
            {"Link": {"schema": {"type": "string"}, "description": "first, prev, next, last"},
             "X-Total-Count": {"schema": {"type": "integer"}}}
            if op.paged
            else {"ETag": {"schema": {"type": "string"}, "description": "The version, quoted."}}
        )  # fmt: skip
    responses: dict[str, Any] = {str(op.status): success}
    for status, text in ERROR_STATUSES.items():
        if status == 412 and op.method not in ("PATCH", "PUT", "DELETE"):
            continue
        if status == 413 and op.body is None:
            continue
        responses[str(status)] = {"description": text, "content": ERROR}
    out: dict[str, Any] = {
        "operationId": op.name,
        "summary": op.summary,
        "tags": [op.tag],
        "parameters": params,
        "responses": responses,
        "security": [{"bearer": [op.scope]}],
    }
    if op.body is not None:
        out["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{op.body}"}}
            },
        }
    return out


def _datafile_paths() -> dict[str, Any]:
    ok = {
        "description": "The v4 datafile",
        "headers": {"ETag": {"schema": {"type": "string"}},
                    "Last-Modified": {"schema": {"type": "string"}}},
        "content": {"application/json": {"schema": {"type": "object"}}},
    }  # fmt: skip
    key = {"name": "sdk_key", "in": "path", "required": True, "schema": {"type": "string"}}
    conditional = [
        key,
        _header("If-None-Match", "An ETag received before: 304 if unchanged."),
        _header("If-Modified-Since", "A Last-Modified received before: 304 if unchanged."),
    ]
    base = {
        "tags": ["Datafiles"],
        "parameters": conditional,
    }
    return {
        "/datafiles/{sdk_key}.json": {
            "get": {
                **base,
                "operationId": "get_datafile",
                "summary": "The project's datafile (open, like Optimizely's CDN)",
                "security": [],
                "responses": {"200": ok, "304": {"description": "Not modified"},
                              "404": {"description": "No such SDK key", "content": ERROR}},
            }
        },
        "/datafiles/auth/{sdk_key}.json": {
            "get": {
                **base,
                "operationId": "get_authenticated_datafile",
                "summary": "The project's datafile, for a datafile access token",
                "security": [{"bearer": ["datafile"]}],
                "responses": {"200": ok, "304": {"description": "Not modified"},
                              "401": {"description": "No or bad token", "content": ERROR},
                              "403": {"description": "Not a datafile token of this account",
                                      "content": ERROR},
                              "404": {"description": "No such SDK key", "content": ERROR}},
            }
        },
    }  # fmt: skip


def document(
    operations: Sequence[Operation], extra_paths: dict[str, Any] | None = None
) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op)
    paths.update(_datafile_paths())
    paths.update(extra_paths or {})
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "liftlog management API",
            "version": __version__,
            "description": "Optimizely REST API v2 paths and shapes for projects, experiments, "
            "events, attributes, audiences, groups and uploaded lists; datafiles for the SDKs. "
            "Send Authorization: Bearer <token> (create one with `liftlog token create`).",
        },
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "Scopes: read (GET), write (everything), datafile.",
                }
            },
        },
    }


class OpenApi:
    def __init__(
        self, operations: Sequence[Operation], extra_paths: dict[str, Any] | None = None
    ) -> None:
        self.document = document(operations, extra_paths)

    async def json(self, request: Request) -> Response:
        return JSONResponse(self.document)

    async def docs(self, request: Request) -> Response:
        return HTMLResponse(DOCS_HTML, headers={"content-security-policy": CSP})


#: The page may load nothing from elsewhere; its own inline script and style are all it runs.
CSP = "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'"
