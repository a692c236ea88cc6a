"""What the catalog returns: frozen dataclasses whose `to_dict()` has the REST API v2 shape.

Ids are integers here and in `to_dict()` (the REST API v2 types them as integers); the datafile
turns them into numeric strings. Times are epoch milliseconds on the objects and ISO 8601 (UTC, ms)
in `to_dict()`. `version` is the object's edit counter, the basis of its ETag.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def iso(ms: int) -> str:
    moment = datetime.fromtimestamp(ms // 1000, UTC).replace(microsecond=(ms % 1000) * 1000)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    page: int
    per_page: int
    total: int

    @property
    def last_page(self) -> int:
        return max(1, -(-self.total // self.per_page))


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    name: str
    version: int
    created: int
    last_modified: int

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name}


@dataclass(frozen=True, slots=True)
class Project:
    id: int
    account_id: int
    name: str
    description: str
    platform: str
    status: str
    sdk_key: str
    environment_key: str
    revision: int
    anonymize_ip: bool
    bot_filtering: bool
    confidence_threshold: float
    version: int
    created: int
    last_modified: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "account_id": self.account_id,
            "name": self.name,
            "description": self.description,
            "platform": self.platform,
            "status": self.status,
            "is_classic": False,
            "sdk_key": self.sdk_key,
            "environment_key": self.environment_key,
            "revision": self.revision,
            "anonymize_ip": self.anonymize_ip,
            "bot_filtering": self.bot_filtering,
            "confidence_threshold": self.confidence_threshold,
            "created": iso(self.created),
            "last_modified": iso(self.last_modified),
        }


@dataclass(frozen=True, slots=True)
class Variation:
    variation_id: int
    key: str
    name: str
    description: str
    weight: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "variation_id": self.variation_id,
            "key": self.key,
            "name": self.name,
            "description": self.description,
            "weight": self.weight,
            "status": "active",
            "archived": False,
        }


@dataclass(frozen=True, slots=True)
class Metric:
    event_id: int
    aggregator: str
    field: str | None
    winning_direction: str
    scope: str = "visitor"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "event_id": self.event_id,
            "aggregator": self.aggregator,
            "scope": self.scope,
            "winning_direction": self.winning_direction,
        }
        if self.field is not None:
            out["field"] = self.field
        return out


@dataclass(frozen=True, slots=True)
class WhitelistEntry:
    user_id: str
    variation_key: str

    def to_dict(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "variation_key": self.variation_key}


@dataclass(frozen=True, slots=True)
class Experiment:
    id: int
    project_id: int
    key: str
    name: str
    description: str
    campaign_id: int
    status: str
    audience_conditions: str
    """``"everyone"`` or a JSON tree such as ``["and", {"audience_id": 7}]`` (REST v2 form)."""
    attribution_window_seconds: int | None
    holdback: int
    group_id: int | None
    variations: tuple[Variation, ...]
    metrics: tuple[Metric, ...]
    whitelist: tuple[WhitelistEntry, ...]
    version: int
    created: int
    last_modified: int

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "project_id": self.project_id,
            "key": self.key,
            "name": self.name,
            "description": self.description,
            "campaign_id": self.campaign_id,
            "type": "a/b",
            "status": self.status,
            "audience_conditions": self.audience_conditions,
            "holdback": self.holdback,
            "variations": [v.to_dict() for v in self.variations],
            "metrics": [m.to_dict() for m in self.metrics],
            "whitelist": [w.to_dict() for w in self.whitelist],
            "attribution_window_seconds": self.attribution_window_seconds,
            "is_classic": False,
            "created": iso(self.created),
            "last_modified": iso(self.last_modified),
        }
        if self.group_id is not None:
            out["group_id"] = self.group_id
        return out


@dataclass(frozen=True, slots=True)
class StatusChange:
    status: str
    at: int


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    project_id: int
    key: str
    name: str
    description: str
    category: str
    archived: bool
    version: int
    created: int
    last_modified: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "project_id": self.project_id,
            "key": self.key,
            "name": self.name,
            "description": self.description,
            "category": self.category,
            "event_type": "custom",
            "archived": self.archived,
            "is_classic": False,
            "is_editable": True,
            "created": iso(self.created),
            "last_modified": iso(self.last_modified),
        }


@dataclass(frozen=True, slots=True)
class Attribute:
    id: int
    project_id: int
    key: str
    name: str
    description: str
    archived: bool
    version: int
    created: int
    last_modified: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "project_id": self.project_id,
            "key": self.key,
            "name": self.name,
            "description": self.description,
            "archived": self.archived,
            "condition_type": "custom_attribute",
            "last_modified": iso(self.last_modified),
        }


@dataclass(frozen=True, slots=True)
class Audience:
    id: int
    project_id: int
    name: str
    description: str
    conditions: str
    """JSON text of the condition tree in the datafile's form (`match`, `and`/`or`/`not`)."""
    archived: bool
    version: int
    created: int
    last_modified: int

    @property
    def condition_tree(self) -> Any:
        return json.loads(self.conditions)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "project_id": self.project_id,
            "name": self.name,
            "description": self.description,
            "conditions": self.conditions,
            "archived": self.archived,
            "is_classic": False,
            "segmentation": False,
            "created": iso(self.created),
            "last_modified": iso(self.last_modified),
        }


@dataclass(frozen=True, slots=True)
class GroupEntity:
    id: int
    weight: int
    kind: str = "Experiment"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "weight": self.weight}


@dataclass(frozen=True, slots=True)
class Group:
    id: int
    project_id: int
    name: str
    description: str
    archived: bool
    entities: tuple[GroupEntity, ...]
    version: int
    created: int
    last_modified: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "project_id": self.project_id,
            "name": self.name,
            "description": self.description,
            "archived": self.archived,
            "entities": [e.to_dict() for e in self.entities],
            "created": iso(self.created),
            "last_modified": iso(self.last_modified),
        }


@dataclass(frozen=True, slots=True)
class ListAttribute:
    id: int
    project_id: int
    account_id: int
    name: str
    description: str
    list_type: str
    key_field: str
    list_content: str | None
    """None in list results, which leave the (up to 5 MB) content out."""
    archived: bool
    version: int
    created: int
    last_modified: int

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "project_id": self.project_id,
            "account_id": self.account_id,
            "name": self.name,
            "description": self.description,
            "list_type": self.list_type,
            "key_field": self.key_field,
            "archived": self.archived,
            "created": iso(self.created),
            "last_modified": iso(self.last_modified),
        }
        if self.list_content is not None:
            out["list_content"] = self.list_content
        return out


@dataclass(frozen=True, slots=True)
class Token:
    """A personal access token as stored: never the secret itself."""

    id: int
    account_id: int
    name: str
    scope: str
    prefix: str
    created: int
    last_used: int | None
    revoked: int | None

    @property
    def active(self) -> bool:
        return self.revoked is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "account_id": self.account_id,
            "name": self.name,
            "scope": self.scope,
            "prefix": self.prefix,
            "created": iso(self.created),
            "last_used": None if self.last_used is None else iso(self.last_used),
            "revoked": None if self.revoked is None else iso(self.revoked),
        }


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """The result of creating a token: the secret is shown this once and never stored."""

    token: Token
    secret: str
