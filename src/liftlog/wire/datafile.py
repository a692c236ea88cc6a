"""The v4 datafile that the official Optimizely SDKs consume, as msgspec Structs.

Python attributes are snake_case; the wire names are the datafile's camelCase (``rename="camel"``,
plus ``anonymizeIP``, which no rename rule produces). Keys that the SDKs require are always
encoded, even when empty: the Python SDK 5.x rejects an experiment without ``forcedVariations``,
``audienceIds`` or ``layerId``, and a datafile without ``groups``, ``audiences`` or ``attributes``
(see the SDK's JSON schema). Keys that are truly optional default to `msgspec.UNSET` and are left
out when unset, because the SDK's schema rejects ``null`` where it expects a string.

Two shapes of audience exist on the wire: ``audiences[].conditions`` is a JSON *string* (the legacy
form every SDK parses), ``typedAudiences[].conditions`` is the JSON tree itself; a typed audience
replaces a legacy one with the same id. `liftlog.rules.audience` reads both.

Decoding ignores unknown keys, like the SDKs do. A structurally unusable datafile raises
`liftlog.errors.InvalidInput` whose single detail names the offending JSON path.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from liftlog.errors import InvalidInput, Problem

#: An experiment-level audience tree: an audience id, or a list such as ``["and", "1", ["not",
#: "2"]]``. A list that does not start with ``"and"``/``"or"``/``"not"`` is an implicit OR.
AudienceConditions = str | list[Any]

#: An audience-level condition tree: a leaf object ``{"name", "type", "match", "value"}`` or a list
#: of operators and subtrees, e.g. ``["and", ["or", {"name": "country", ...}]]``.
TypedConditions = dict[str, Any] | list[Any]


class _Struct(msgspec.Struct, kw_only=True, rename="camel", repr_omit_defaults=True):
    """Base of every datafile Struct: keyword-only, camelCase on the wire."""


class TrafficAllocation(_Struct):
    """A cumulative, exclusive range end in [0, 10000]; ``entity_id == ""`` marks a hole."""

    entity_id: str
    end_of_range: int


class VariableUsage(_Struct):
    """A variation's value for one feature variable, always a string (``"42"``, ``"true"``)."""

    id: str
    value: str


class Variation(_Struct):
    id: str
    key: str
    feature_enabled: bool = False
    variables: list[VariableUsage] = []


class Cmab(_Struct):
    """Contextual multi-armed bandit settings; its traffic is one range end, not a list."""

    attribute_ids: list[str]
    traffic_allocation: int


class Experiment(_Struct):
    """An A/B test, a group member, or a rollout rule: the SDK parses all three the same way."""

    id: str
    key: str
    layer_id: str
    #: Only ``"Running"`` experiments bucket anyone (rollout rules ignore it).
    status: str
    variations: list[Variation] = []
    traffic_allocation: list[TrafficAllocation] = []
    audience_ids: list[str] = []
    #: When set, used instead of ``audience_ids`` (which is then only informative); ``null`` is
    #: accepted on decode and means the same as absent.
    audience_conditions: AudienceConditions | UnsetType | None = UNSET
    #: Whitelist: user id -> variation *key*. Ignores audiences and traffic allocation.
    forced_variations: dict[str, str] = {}
    #: ``"ab"``, ``"mab"``, ``"cmab"``, ``"td"`` (targeted delivery) or ``"fr"`` (feature rollout).
    type: str | UnsetType = UNSET
    cmab: Cmab | UnsetType = UNSET


class Group(_Struct):
    """Mutual exclusion: with policy ``"random"``, ``traffic_allocation`` picks one experiment."""

    id: str
    policy: str = "random"
    experiments: list[Experiment] = []
    traffic_allocation: list[TrafficAllocation] = []


class Event(_Struct):
    id: str
    key: str
    experiment_ids: list[str] = []


class Attribute(_Struct):
    id: str
    key: str


class Audience(_Struct):
    """Legacy audience: ``conditions`` is the JSON *text* of the condition tree."""

    id: str
    name: str
    conditions: str


class TypedAudience(_Struct):
    id: str
    name: str
    conditions: TypedConditions


class Variable(_Struct):
    """A feature variable; ``type`` is boolean|integer|double|string|json, values are strings."""

    id: str
    key: str
    type: str
    default_value: str
    #: ``"json"`` together with ``type == "string"`` means a JSON variable.
    sub_type: str | UnsetType = UNSET


class FeatureFlag(_Struct):
    id: str
    key: str
    #: ``""`` means the flag has no rollout.
    rollout_id: str = ""
    experiment_ids: list[str] = []
    variables: list[Variable] = []


class Rollout(_Struct):
    """A flag's delivery rules, evaluated in order; the last one is "Everyone Else"."""

    id: str
    experiments: list[Experiment] = []


class Integration(_Struct):
    key: str
    host: str | UnsetType = UNSET
    public_key: str | UnsetType = UNSET
    pixel_url: str | UnsetType = UNSET


class Holdout(_Struct):
    id: str
    key: str
    status: str
    variations: list[Variation] = []
    traffic_allocation: list[TrafficAllocation] = []
    audience_ids: list[str] = []
    audience_conditions: AudienceConditions | UnsetType | None = UNSET
    #: Rule ids a local holdout applies to (``localHoldouts`` only).
    included_rules: list[str] | UnsetType = UNSET
    exclude_targeted_deliveries: bool | UnsetType = UNSET


class Datafile(_Struct):
    """A whole v4 datafile. ``revision`` must change on every publish: SDKs skip a same-revision
    datafile when polling."""

    account_id: str
    project_id: str
    revision: str
    version: str = "4"
    sdk_key: str | UnsetType = UNSET
    environment_key: str | UnsetType = UNSET
    anonymize_ip: bool = msgspec.field(default=False, name="anonymizeIP")
    send_flag_decisions: bool = False
    #: When a boolean, SDKs add it to every event as the ``$opt_bot_filtering`` attribute.
    bot_filtering: bool | UnsetType = UNSET
    #: ``"US"`` or ``"EU"``: which logx endpoint the SDKs post events to.
    region: str | UnsetType = UNSET
    attributes: list[Attribute] = []
    audiences: list[Audience] = []
    typed_audiences: list[TypedAudience] = []
    events: list[Event] = []
    experiments: list[Experiment] = []
    groups: list[Group] = []
    feature_flags: list[FeatureFlag] = []
    rollouts: list[Rollout] = []
    integrations: list[Integration] = []
    holdouts: list[Holdout] = []
    local_holdouts: list[Holdout] = []


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Datafile)


def encode_datafile(datafile: Datafile) -> bytes:
    """The datafile as compact JSON bytes, ready to serve to SDKs."""
    return _encoder.encode(datafile)


def decode_datafile(data: bytes | str) -> Datafile:
    """Parse datafile JSON; `InvalidInput` names the first bad path (e.g. ``$.revision``)."""
    try:
        return _decoder.decode(data)
    except msgspec.DecodeError as exc:
        message = str(exc)
        problem, _, path = message.partition(" - at `")
        detail = Problem(path.rstrip("`") if path else "$", problem)
        raise InvalidInput(f"invalid datafile: {message}", [detail]) from exc
