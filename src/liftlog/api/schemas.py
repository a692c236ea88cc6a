"""JSON Schemas of the management API's objects, for the OpenAPI document.

They describe `to_dict()` of the catalog's models (the REST API v2 shapes); ``*Input`` schemas
are what a POST, PATCH or PUT body may hold (read-only fields sent back from a GET are ignored).
"""

from __future__ import annotations

from typing import Any

INT = {"type": "integer", "format": "int64"}
STR = {"type": "string"}
BOOL = {"type": "boolean"}
TIME = {"type": "string", "format": "date-time", "readOnly": True}
RO_INT = {**INT, "readOnly": True}


def obj(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        out["required"] = list(required)
    return out


def enum(*values: str) -> dict[str, Any]:
    return {"type": "string", "enum": list(values)}


VARIATION = obj(
    {
        "variation_id": INT,
        "key": STR,
        "name": STR,
        "description": STR,
        "weight": {"type": "integer", "minimum": 0, "maximum": 10000,
                   "description": "Basis points; the variations' sum is at most 10000."},
    },
    ("key", "weight"),
)  # fmt: skip
METRIC = obj(
    {
        "event_id": INT,
        "aggregator": enum("unique", "count", "sum"),
        "field": enum("revenue", "value"),
        "winning_direction": enum("increasing", "decreasing"),
        "scope": enum("visitor"),
    },
    ("event_id",),
)
EXPERIMENT_FIELDS: dict[str, Any] = {
    "project_id": INT,
    "key": STR,
    "name": STR,
    "description": STR,
    "campaign_id": INT,
    "status": enum("not_started", "running", "paused", "archived"),
    "audience_conditions": {
        "type": "string",
        "description": '"everyone" or a JSON condition list such as '
        '["and", {"audience_id": 7}]',
    },
    "holdback": {"type": "integer", "minimum": 0, "maximum": 10000},
    "attribution_window_seconds": {"type": ["integer", "null"]},
    "variations": {"type": "array", "items": VARIATION},
    "metrics": {"type": "array", "items": METRIC,
                "description": "The first metric is the primary one."},
    "whitelist": {"type": "array", "items": obj({"user_id": STR, "variation_key": STR})},
}  # fmt: skip

PROJECT_FIELDS: dict[str, Any] = {
    "name": STR,
    "description": STR,
    "platform": enum("custom", "web", "ios", "android"),
    "status": enum("active", "archived"),
    "environment_key": STR,
    "anonymize_ip": BOOL,
    "bot_filtering": BOOL,
    "confidence_threshold": {"type": "number", "minimum": 0.5, "maximum": 0.999},
}
EVENT_FIELDS: dict[str, Any] = {
    "key": STR,
    "name": STR,
    "description": STR,
    "category": STR,
    "archived": BOOL,
}
ATTRIBUTE_FIELDS: dict[str, Any] = {
    "project_id": INT,
    "key": STR,
    "name": STR,
    "description": STR,
    "archived": BOOL,
}
AUDIENCE_FIELDS: dict[str, Any] = {
    "project_id": INT,
    "name": STR,
    "description": STR,
    "conditions": {
        "type": "string",
        "description": "JSON text of the condition tree, e.g. "
        '["and", ["or", {"type": "custom_attribute", "name": "plan", '
        '"match": "exact", "value": "pro"}]]',
    },
    "archived": BOOL,
}
GROUP_FIELDS: dict[str, Any] = {
    "project_id": INT,
    "name": STR,
    "description": STR,
    "archived": BOOL,
    "entities": {
        "type": "array",
        "items": obj({"id": INT, "kind": enum("Experiment"), "weight": INT}, ("id", "kind")),
    },
}
LIST_FIELDS: dict[str, Any] = {
    "project_id": INT,
    "name": STR,
    "description": STR,
    "list_type": enum("cookie", "query_parameter", "js_variable", "id"),
    "key_field": STR,
    "list_content": {"type": "string", "description": "CSV, at most 5 MiB."},
    "archived": BOOL,
}
STAMPS = {"id": RO_INT, "created": TIME, "last_modified": TIME}

SCHEMAS: dict[str, Any] = {
    "Project": obj({**STAMPS, **PROJECT_FIELDS, "account_id": RO_INT,
                    "sdk_key": {**STR, "readOnly": True}, "revision": RO_INT}),
    "ProjectInput": obj(PROJECT_FIELDS, ("name",)),
    "Experiment": obj({**STAMPS, **EXPERIMENT_FIELDS, "group_id": RO_INT}),
    "ExperimentInput": obj(EXPERIMENT_FIELDS, ("project_id", "key", "variations")),
    "Event": obj({**STAMPS, **EVENT_FIELDS, "project_id": RO_INT,
                  "event_type": enum("custom")}),
    "EventInput": obj(EVENT_FIELDS, ("key",)),
    "Attribute": obj({**STAMPS, **ATTRIBUTE_FIELDS}),
    "AttributeInput": obj(ATTRIBUTE_FIELDS, ("project_id", "key")),
    "Audience": obj({**STAMPS, **AUDIENCE_FIELDS}),
    "AudienceInput": obj(AUDIENCE_FIELDS, ("project_id", "name", "conditions")),
    "Group": obj({**STAMPS, **GROUP_FIELDS}),
    "GroupInput": obj(GROUP_FIELDS, ("project_id", "name")),
    "ListAttribute": obj({**STAMPS, **LIST_FIELDS, "account_id": RO_INT}),
    "ListAttributeInput": obj(LIST_FIELDS, ("project_id", "name", "list_type", "key_field")),
    "StatusHistory": obj({
        "experiment_id": INT,
        "status": STR,
        "history": {"type": "array", "items": obj({"status": STR, "at": TIME})},
        "running_intervals": {"type": "array",
                              "items": obj({"start": TIME,
                                            "end": {"type": ["string", "null"],
                                                    "format": "date-time"}})},
    }),
    "Error": obj(
        {"error": obj({
            "code": STR,
            "message": STR,
            "details": {"type": "array", "items": obj({"path": STR, "problem": STR})},
        }, ("code", "message", "details"))},
        ("error",),
    ),
}  # fmt: skip
