"""Custom events (conversion goals), on Optimizely's paths: listed and read under ``/v2/events``,
created, changed and deleted under ``/v2/projects/{project_id}/custom_events``."""

from __future__ import annotations

from starlette.responses import Response

from liftlog.api.management.crud import PROJECT_FILTER, Resource
from liftlog.api.management.http import (
    Call,
    Operation,
    Param,
    guarded,
    no_content,
    object_response,
)
from liftlog.catalog.models import Event
from liftlog.errors import NotFound

TAG = "Events"
RESOURCE = Resource(lambda catalog: catalog.events, "event_id")
PROJECT = Param("project_id", "path", required=True)
EVENT = Param("event_id", "path", required=True)


def _in_project(call: Call) -> Event:
    """The event of the path's project (an event of another project is not found there)."""
    event: Event = RESOURCE.owned(call)
    if event.project_id != call.id("project_id"):
        raise NotFound(f"event {event.id} not found in project {call.id('project_id')}")
    return event


def create_event(call: Call) -> Response:
    project_id = call.id("project_id")
    call.owned_project(project_id)
    return object_response(call.catalog.events.create(project_id, call.json_object()), 201)


def update_event(call: Call) -> Response:
    event = _in_project(call)
    changes = call.json_object()
    updated = guarded(
        call,
        lambda v: call.catalog.events.update(event.id, changes, if_version=v),
        lambda: call.catalog.events.get(event.id).version,
    )
    return object_response(updated)


def delete_event(call: Call) -> Response:
    event = _in_project(call)
    guarded(
        call,
        lambda v: call.catalog.events.delete(event.id, if_version=v),
        lambda: call.catalog.events.get(event.id).version,
    )
    return no_content()


ONE = "/v2/projects/{project_id}/custom_events/{event_id}"
OPERATIONS = [
    Operation("GET", "/v2/events", RESOURCE.listing, "List events", TAG, returns="Event",
              paged=True, params=(PROJECT_FILTER,)),
    Operation("GET", "/v2/events/{event_id}", RESOURCE.get, "Get an event", TAG,
              returns="Event", params=(EVENT,)),
    Operation("POST", "/v2/projects/{project_id}/custom_events", create_event,
              "Create a custom event", TAG, status=201, returns="Event", body="EventInput",
              params=(PROJECT,)),
    Operation("PATCH", ONE, update_event, "Update a custom event", TAG, returns="Event",
              body="EventInput", params=(PROJECT, EVENT)),
    Operation("DELETE", ONE, delete_event, "Delete a custom event", TAG, status=204,
              params=(PROJECT, EVENT)),
]  # fmt: skip
