"""Uploaded lists (list attributes): ``/v2/list_attributes``. ``list_content`` is CSV text of at
most 5 MiB (413 over it); PATCH changes the fields sent, PUT replaces the whole list."""

from __future__ import annotations

from dataclasses import replace

from starlette.responses import Response

from liftlog.api.management.crud import Resource
from liftlog.api.management.http import (
    MAX_LIST_BODY_BYTES,
    Call,
    Operation,
    Param,
    guarded,
    object_response,
)

TAG = "List attributes"
RESOURCE = Resource(lambda catalog: catalog.lists, "list_attribute_id")


def replace_list(call: Call) -> Response:
    current = RESOURCE.owned(call)
    body = call.json_object()
    replaced = guarded(
        call,
        lambda v: call.catalog.lists.replace(current.id, body, if_version=v),
        lambda: call.catalog.lists.get(current.id).version,
    )
    return object_response(replaced)


def _roomy(op: Operation) -> Operation:
    """Operations that carry a list body may be as large as a 5 MiB list, JSON-escaped."""
    if op.body is None:
        return op
    return replace(op, max_body=MAX_LIST_BODY_BYTES)


OPERATIONS = [
    _roomy(op)
    for op in [
        *RESOURCE.operations("/v2/list_attributes", TAG, "an uploaded list", "ListAttribute"),
        Operation("PUT", "/v2/list_attributes/{list_attribute_id}", replace_list,
                  "Replace an uploaded list", TAG, returns="ListAttribute",
                  body="ListAttributeInput",
                  params=(Param("list_attribute_id", "path", required=True),)),
    ]
]  # fmt: skip
