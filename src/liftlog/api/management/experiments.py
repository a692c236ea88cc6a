"""Experiments: ``/v2/experiments``, with their variations, metrics and status.

Status changes either way Optimizely offers: ``"status"`` in a PATCH body, or an action in the
query (``PATCH /v2/experiments/{id}?action=start``; also on create, ``POST ...?action=start``).
Actions: ``start`` and ``resume`` -> running, ``pause`` -> paused, ``archive`` -> archived,
``unarchive`` -> paused, ``publish`` -> no status change. A change the lifecycle does not allow
(``not_started`` -> ``paused``, anything -> ``not_started``) is 409. Every change is kept in the
status history, whose running intervals are the experiment's bounds for counting.

DELETE removes an experiment that never ran or is archived; a running or paused one is 409
(archive it first), so that nothing with results disappears by accident.
"""

from __future__ import annotations

from starlette.responses import Response

from liftlog.api.management.crud import PROJECT_FILTER, Resource
from liftlog.api.management.http import (
    Call,
    Operation,
    Param,
    guarded,
    json_response,
    object_response,
    page_response,
)
from liftlog.catalog.models import Experiment, iso
from liftlog.catalog.status import STATUSES
from liftlog.errors import InvalidInput, Problem

TAG = "Experiments"
RESOURCE = Resource(lambda catalog: catalog.experiments, "experiment_id")
ACTIONS = {
    "start": "running",
    "resume": "running",
    "pause": "paused",
    "archive": "archived",
    "unarchive": "paused",
    "publish": None,
}
ACTION = Param(
    "action",
    description="Change the status: start, resume, pause, archive, unarchive (publish: none).",
    type="string",
    enum=tuple(ACTIONS),
)
STATUS_FILTER = Param("status", description="Only experiments in this status.", type="string",
                      enum=STATUSES)  # fmt: skip
ID = Param("experiment_id", "path", required=True)


def _action_status(call: Call) -> str | None:
    action = call.query.get("action")
    if action is None:
        return None
    if action not in ACTIONS:
        raise InvalidInput(
            f"Unknown action {action!r}.",
            [Problem("query.action", f"must be one of {', '.join(ACTIONS)}")],
        )
    return ACTIONS[action]


def list_experiments(call: Call) -> Response:
    project_id = call.query_id("project_id")
    call.owned_project(project_id)
    page, per_page = call.page()
    status = call.query.get("status")
    return page_response(
        call.catalog.experiments.list(project_id, page, per_page, status=status), call
    )


def create_experiment(call: Call) -> Response:
    target = _action_status(call)
    body = call.json_object()
    project_id = call.body_project(body)
    if target is not None:
        body = {**body, "status": target}
    return object_response(call.catalog.experiments.create(project_id, body), 201)


def update_experiment(call: Call) -> Response:
    """Apply the body's fields, then the action's status change (each its own transaction)."""
    current: Experiment = RESOURCE.owned(call)
    target = _action_status(call)
    changes = call.json() if call.body.strip() or target is None else {}
    repo = call.catalog.experiments

    def write(if_version: int | None) -> Experiment:
        after = current
        if changes or target is None:
            after = repo.update(current.id, changes, if_version=if_version)
            if_version = None
        if target is not None:
            after = repo.set_status(current.id, target, if_version=if_version)
        return after

    return object_response(guarded(call, write, lambda: repo.get(current.id).version))


def status_history(call: Call) -> Response:
    experiment: Experiment = RESOURCE.owned(call)
    history = call.catalog.experiments.history(experiment.id)
    intervals = call.catalog.experiments.running_intervals(experiment.id)
    return json_response(
        {
            "experiment_id": experiment.id,
            "status": experiment.status,
            "history": [{"status": h.status, "at": iso(h.at)} for h in history],
            "running_intervals": [
                {"start": iso(start), "end": None if end is None else iso(end)}
                for start, end in intervals
            ],
        }
    )


ONE = "/v2/experiments/{experiment_id}"
OPERATIONS = [
    Operation("GET", "/v2/experiments", list_experiments, "List experiments", TAG,
              returns="Experiment", paged=True, params=(PROJECT_FILTER, STATUS_FILTER)),
    Operation("POST", "/v2/experiments", create_experiment, "Create an experiment", TAG,
              status=201, returns="Experiment", body="ExperimentInput", params=(ACTION,)),
    Operation("GET", ONE, RESOURCE.get, "Get an experiment", TAG, returns="Experiment",
              params=(ID,)),
    Operation("PATCH", ONE, update_experiment, "Update an experiment or change its status",
              TAG, returns="Experiment", body="ExperimentInput", params=(ID, ACTION)),
    Operation("DELETE", ONE, RESOURCE.delete, "Delete an experiment (not started or archived)",
              TAG, status=204, params=(ID,)),
    Operation("GET", f"{ONE}/status_history", status_history,
              "Status history and running intervals", TAG, returns="StatusHistory",
              params=(ID,)),
]  # fmt: skip
