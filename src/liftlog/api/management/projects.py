"""Projects: ``/v2/projects``. A project carries the SDK key of its datafile; projects are not
deleted (archive one with ``"status": "archived"``), as in Optimizely."""

from __future__ import annotations

from starlette.responses import Response

from liftlog.api.management.http import Call, Operation, Param, guarded, object_response
from liftlog.api.management.http import page_response as paged
from liftlog.catalog.models import Project

TAG = "Projects"
ID = Param("project_id", "path", required=True)


def _owned(call: Call) -> Project:
    project_id = call.id("project_id")
    call.owned_project(project_id)
    return call.catalog.projects.get(project_id)


def list_projects(call: Call) -> Response:
    page, per_page = call.page()
    return paged(
        call.catalog.projects.list(page, per_page, account_id=call.principal.account_id), call
    )


def create_project(call: Call) -> Response:
    project = call.catalog.projects.create(call.json_object(), account_id=call.principal.account_id)
    return object_response(project, 201)


def get_project(call: Call) -> Response:
    return object_response(_owned(call))


def update_project(call: Call) -> Response:
    project = _owned(call)
    changes = call.json_object()
    updated = guarded(
        call,
        lambda v: call.catalog.projects.update(project.id, changes, if_version=v),
        lambda: call.catalog.projects.get(project.id).version,
    )
    return object_response(updated)


OPERATIONS = [
    Operation("GET", "/v2/projects", list_projects, "List projects", TAG,
              returns="Project", paged=True),
    Operation("POST", "/v2/projects", create_project, "Create a project", TAG,
              status=201, returns="Project", body="ProjectInput"),
    Operation("GET", "/v2/projects/{project_id}", get_project, "Get a project", TAG,
              returns="Project", params=(ID,)),
    Operation("PATCH", "/v2/projects/{project_id}", update_project, "Update a project", TAG,
              returns="Project", body="ProjectInput", params=(ID,)),
]  # fmt: skip
