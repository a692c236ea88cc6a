"""The Event API v1 payload (``POST /v1/events``) as msgspec Structs.

The Structs accept everything Optimizely's Event API accepts from its SDKs and from hand-written
clients: unknown fields are ignored, ``variation_id`` may be null, ``decisions`` may be missing,
and numeric values may arrive as U+E000-prefixed strings. Only what makes a request structurally
unusable is an error (see `decode_batch`); doubtful *values* (a 19-digit timestamp, revenue that
is not an integer) are accepted here and flagged later, when the event is normalised to rows.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from liftlog.errors import InvalidInput, Problem, too_deep
from liftlog.wire.validate import problems_for

# The Structs are gc=False: a decoded body can't hold a reference cycle, so the garbage collector
# need not track them (the loader keeps thousands alive while it builds a batch's columns).
NonEmptyStr = Annotated[str, msgspec.Meta(min_length=1)]
#: Epoch milliseconds as the lake stores them: a 64-bit integer. Past that, the request is refused
#: (as the legacy call's ``time`` is), instead of being accepted and then rejected at load.
Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
#: A number as JSON, or a U+E000-prefixed string such as ``"\ue0004200"`` (see `typed_value`).
Number = int | float | str


class Attribute(msgspec.Struct, omit_defaults=True, gc=False):
    """A visitor attribute; ``value`` is a string, number, boolean, or a U+E000-typed string."""

    value: Any = None
    type: str = "custom"
    entity_id: str | None = None
    key: str | None = None


class Decision(msgspec.Struct, omit_defaults=True, gc=False):
    campaign_id: str | None = None
    experiment_id: str | None = None
    variation_id: str | None = None
    is_campaign_holdback: bool = False
    metadata: dict[str, Any] | None = None


class Event(msgspec.Struct, omit_defaults=True, gc=False):
    timestamp: Int64
    uuid: NonEmptyStr
    entity_id: str | None = None
    key: str | None = None
    type: str | None = None
    revenue: Number | None = None
    value: Number | None = None
    quantity: Number | None = None
    tags: dict[str, Any] | None = None
    properties: dict[str, Any] | None = None


class Snapshot(msgspec.Struct, omit_defaults=True, gc=False):
    events: list[Event]
    decisions: list[Decision] | None = None


class Visitor(msgspec.Struct, omit_defaults=True, gc=False):
    visitor_id: str
    snapshots: list[Snapshot]
    session_id: str | None = None
    attributes: list[Attribute] | None = None


class EventBatch(msgspec.Struct, omit_defaults=True, gc=False):
    account_id: str
    visitors: list[Visitor]
    project_id: str | None = None
    revision: str | int | None = None
    anonymize_ip: bool = True
    client_name: str | None = None
    client_version: str | None = None
    enrich_decisions: bool | None = None


ACTIVATION = "campaign_activated"

_decoder = msgspec.json.Decoder(EventBatch)


def decode_batch(body: bytes) -> EventBatch:
    """Decode and validate a request body.

    The fast path is one typed msgspec decode. When it fails, the body is decoded again without a
    type and walked against the same Structs so that the error names *every* problem by its JSON
    path, not only the first one msgspec stops at.

    Raises `liftlog.errors.InvalidInput` with one `Problem` per bad field.
    """
    try:
        return _decoder.decode(body)
    except msgspec.DecodeError:
        pass
    except RecursionError:
        raise too_deep() from None
    try:
        raw = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise InvalidInput(
            "The body is not valid JSON.", [Problem("$", f"not valid JSON: {exc}")]
        ) from None
    except RecursionError:
        raise too_deep() from None
    problems = problems_for(EventBatch, raw)
    if not problems:  # pragma: no cover - the typed decoder and the walker disagree
        problems = [Problem("$", "does not match the Event API v1 schema")]
    raise InvalidInput(
        f"The event batch has {len(problems)} problem{'s' if len(problems) > 1 else ''}.",
        problems,
    )


def is_activation(event: Event) -> bool:
    """A decision ("impression") is an event whose ``key`` or ``type`` is ``campaign_activated``."""
    return event.key == ACTIVATION or event.type == ACTIVATION


TYPED_PREFIX = "\ue000"


def typed_value(value: Any) -> Any:
    """Resolve a U+E000-prefixed string to the boolean or number it stands for.

    ``"\\ue000123"`` is 123, ``"\\ue0001.5"`` is 1.5, ``"\\ue000true"`` is True. A prefixed string
    that is none of these is returned without its prefix; anything else is returned as it is.
    """
    if not isinstance(value, str) or not value.startswith(TYPED_PREFIX):
        return value
    text = value[1:]
    if text in ("true", "false"):
        return text == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text
