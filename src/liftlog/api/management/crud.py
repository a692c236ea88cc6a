"""The verbs every project-scoped object shares (list by ``project_id``, create, get, update,
delete), over the catalog repository of one kind of object."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from liftlog.api.management.http import (
    Call,
    Operation,
    Param,
    guarded,
    no_content,
    object_response,
    page_response,
)
from liftlog.catalog.store import Catalog

PROJECT_FILTER = Param(
    "project_id", description="The project whose objects to list.", required=True
)


@dataclass(frozen=True)
class Resource:
    """One kind of object: `repo` picks its repository, `id_param` names its path parameter."""

    repo: Callable[[Catalog], Any]
    id_param: str

    def owned(self, call: Call) -> Any:
        """The object named by the path, if it belongs to the caller's account (else 404)."""
        obj = self.repo(call.catalog).get(call.id(self.id_param))
        call.owned_project(obj.project_id)
        return obj

    def listing(self, call: Call) -> Response:
        project_id = call.query_id("project_id")
        call.owned_project(project_id)
        page, per_page = call.page()
        return page_response(self.repo(call.catalog).list(project_id, page, per_page), call)

    def create(self, call: Call) -> Response:
        body = call.json_object()
        project_id = call.body_project(body)
        return object_response(self.repo(call.catalog).create(project_id, body), 201)

    def get(self, call: Call) -> Response:
        return object_response(self.owned(call))

    def update(self, call: Call) -> Response:
        obj = self.owned(call)
        changes = call.json_object()
        repo = self.repo(call.catalog)
        updated = guarded(
            call,
            lambda v: repo.update(obj.id, changes, if_version=v),
            lambda: repo.get(obj.id).version,
        )
        return object_response(updated)

    def delete(self, call: Call) -> Response:
        obj = self.owned(call)
        repo = self.repo(call.catalog)
        guarded(
            call,
            lambda v: repo.delete(obj.id, if_version=v),
            lambda: repo.get(obj.id).version,
        )
        return no_content()

    def operations(
        self, base: str, tag: str, what: str, schema: str, *, delete: bool = True
    ) -> list[Operation]:
        """``GET|POST base`` and ``GET|PATCH|DELETE base/{id}``."""
        one = f"{base}/{{{self.id_param}}}"
        ident = (Param(self.id_param, "path", required=True),)
        ops = [
            Operation("GET", base, self.listing, f"List {what}s", tag, returns=schema, paged=True,
                      params=(PROJECT_FILTER,)),
            Operation("POST", base, self.create, f"Create {what}", tag, status=201,
                      returns=schema, body=f"{schema}Input"),
            Operation("GET", one, self.get, f"Get {what}", tag, returns=schema, params=ident),
            Operation("PATCH", one, self.update, f"Update {what}", tag, returns=schema,
                      body=f"{schema}Input", params=ident),
        ]  # fmt: skip
        if delete:
            ops.append(
                Operation("DELETE", one, self.delete, f"Delete {what}", tag, status=204,
                          params=ident)
            )  # fmt: skip
        return ops
