"""Audience evaluation with the verdicts of the official Optimizely SDKs.

Two levels of trees share one three-valued logic (``None`` = unknown):

* an experiment's ``audienceConditions`` (or, without it, ``audienceIds``) is a tree of audience
  ids; an unknown id is unknown, and the final verdict is ``result or False``;
* an audience's ``conditions`` is a tree of leaf conditions ``{"name", "type", "match",
  "value"}`` compared with the visitor's attributes.

A list whose first item is ``"and"``, ``"or"`` or ``"not"`` applies that operator to the rest; any
other list is an implicit OR. ``and`` is False if any operand is False, else unknown if any is
unknown; ``or`` is the dual; ``not`` negates its *first* operand only and is unknown without one.

Leaf rules (Python SDK 5.x, ``CustomAttributeConditionEvaluator``): the condition ``type`` must be
``custom_attribute`` or ``third_party_dimension`` and a missing ``match`` means ``exact``. For
every match type but ``exists`` and ``qualified`` a missing or null attribute is unknown. Numbers
are ints or floats but never bools; a number whose magnitude exceeds 2**53, or that is NaN or
infinite, is unknown on either side. ``exact`` compares strings with strings, numbers with numbers
(``1 == 1.0``) and bools with bools, and is unknown across types.

Where the SDK raises on a malformed tree (an empty list, a leaf that is not an object, a semver
core part compared with a pre-release tag), these rules say unknown instead.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, Literal, TypeAlias, TypeVar

from msgspec import UnsetType

from liftlog.wire.datafile import Audience, AudienceConditions, TypedAudience

Verdict = bool | None
Attributes = Mapping[str, object]

L = TypeVar("L")

OperatorName = Literal["and", "or", "not"]
OPERATORS: dict[object, OperatorName] = {"and": "and", "or": "or", "not": "not"}
CONDITION_TYPES = ("custom_attribute", "third_party_dimension")
MATCH_TYPES = frozenset(
    {
        "exact",
        "exists",
        "substring",
        "gt",
        "ge",
        "lt",
        "le",
        "semver_eq",
        "semver_gt",
        "semver_ge",
        "semver_lt",
        "semver_le",
        "qualified",
    }
)
#: Integers beyond this are not exactly representable as doubles, so other SDKs cannot compare
#: them; every SDK treats them as unknown.
MAX_SAFE_NUMBER = 2**53


@dataclass(frozen=True, slots=True)
class Condition:
    """A leaf condition exactly as written in the datafile (any JSON type per field)."""

    name: object
    value: object
    type: object
    match: object = None


@dataclass(frozen=True, slots=True)
class Malformed:
    """A subtree the SDK could not evaluate (it would raise); evaluates to unknown."""

    raw: object


@dataclass(frozen=True, slots=True)
class Operator(Generic[L]):
    op: OperatorName
    operands: tuple[Tree[L], ...]


Tree: TypeAlias = "Operator[L] | L | Malformed"
ConditionTree: TypeAlias = "Tree[Condition]"
#: Leaves are audience ids.
AudienceTree: TypeAlias = "Tree[str]"


# --- parsing ---------------------------------------------------------------------------------


def _parse(raw: object, leaf: Callable[[object], L | Malformed]) -> Tree[L]:
    if isinstance(raw, list):
        if not raw:
            return Malformed(raw)
        head = raw[0]
        if isinstance(head, str) and head in OPERATORS:
            return Operator(OPERATORS[head], tuple(_parse(item, leaf) for item in raw[1:]))
        return Operator("or", tuple(_parse(item, leaf) for item in raw))
    return leaf(raw)


def _condition_leaf(raw: object) -> Condition | Malformed:
    if not isinstance(raw, dict):
        return Malformed(raw)
    return Condition(raw.get("name"), raw.get("value"), raw.get("type"), raw.get("match"))


def _audience_leaf(raw: object) -> str | Malformed:
    return raw if isinstance(raw, str) else Malformed(raw)


def parse_conditions(raw: object) -> ConditionTree:
    """An audience's condition tree from its decoded JSON (a leaf object or a list)."""
    return _parse(raw, _condition_leaf)


def parse_audience_conditions(raw: AudienceConditions) -> AudienceTree:
    """An experiment's audience-id tree from ``audienceConditions`` or ``audienceIds``."""
    return _parse(raw, _audience_leaf)


def audience_tree(audience: Audience | TypedAudience) -> ConditionTree:
    """The condition tree of a legacy audience (JSON text) or a typed one (JSON tree)."""
    if isinstance(audience, TypedAudience):
        return parse_conditions(audience.conditions)
    try:
        raw = json.loads(audience.conditions)
    except ValueError:
        return Malformed(audience.conditions)
    return parse_conditions(raw)


def audiences_by_id(
    audiences: Sequence[Audience], typed_audiences: Sequence[TypedAudience]
) -> dict[str, ConditionTree]:
    """Every audience's tree by id; a typed audience replaces a legacy one with the same id."""
    trees = {audience.id: audience_tree(audience) for audience in audiences}
    trees.update((audience.id, audience_tree(audience)) for audience in typed_audiences)
    return trees


def experiment_audiences(
    audience_conditions: AudienceConditions | UnsetType | None, audience_ids: Sequence[str]
) -> AudienceTree | None:
    """The tree an experiment is gated by; None when everyone qualifies (``[]`` or absent).

    ``audience_conditions`` wins when present (even ``[]``); otherwise the ids are an implicit OR.
    """
    raw: AudienceConditions = (
        list(audience_ids)
        if audience_conditions is None or isinstance(audience_conditions, UnsetType)
        else audience_conditions
    )
    if raw == []:
        return None
    return parse_audience_conditions(raw)


# --- evaluation ------------------------------------------------------------------------------


def evaluate_tree(tree: Tree[L], leaf: Callable[[L], Verdict]) -> Verdict:
    """Three-valued evaluation of any tree, leaves decided by ``leaf``."""
    if isinstance(tree, Malformed):
        return None
    if isinstance(tree, Operator):
        if tree.op == "not":
            if not tree.operands:
                return None
            result = evaluate_tree(tree.operands[0], leaf)
            return None if result is None else not result
        decisive = tree.op == "or"  # the value that settles the operator at once
        saw_unknown = False
        for operand in tree.operands:
            result = evaluate_tree(operand, leaf)
            if result is decisive:
                return decisive
            if result is None:
                saw_unknown = True
        return None if saw_unknown else not decisive
    return leaf(tree)


def evaluate_conditions(
    tree: ConditionTree, attributes: Attributes, segments: Collection[str] = ()
) -> Verdict:
    """An audience's verdict; ``segments`` are the visitor's qualified ODP segments."""
    return evaluate_tree(tree, lambda leaf: evaluate_condition(leaf, attributes, segments))


def user_in_audiences(
    tree: AudienceTree | None,
    audiences: Mapping[str, ConditionTree],
    attributes: Attributes,
    segments: Collection[str] = (),
) -> bool:
    """Whether a visitor passes an experiment's audience gate; unknown counts as no."""
    if tree is None:
        return True

    def audience(audience_id: str) -> Verdict:
        conditions = audiences.get(audience_id)
        if conditions is None:
            return None
        return evaluate_conditions(conditions, attributes, segments)

    return evaluate_tree(tree, audience) or False


def evaluate_condition(
    condition: Condition, attributes: Attributes, segments: Collection[str] = ()
) -> Verdict:
    """One leaf condition against a visitor's attributes (see the module docstring)."""
    if not isinstance(condition.type, str) or condition.type not in CONDITION_TYPES:
        return None
    match = "exact" if condition.match is None else condition.match
    if not isinstance(match, str) or match not in MATCH_TYPES:
        return None
    if match == "qualified":
        return condition.value in segments if isinstance(condition.value, str) else None
    name = condition.name
    user_value = attributes.get(name) if isinstance(name, str) else None
    if match == "exists":
        return user_value is not None
    if user_value is None:
        return None
    target = condition.value
    if match == "exact":
        return _exact(target, user_value)
    if match == "substring":
        if not isinstance(target, str) or not isinstance(user_value, str):
            return None
        return target in user_value
    if match in ("gt", "ge", "lt", "le"):
        return _numeric(match, target, user_value)
    if not isinstance(target, str) or not isinstance(user_value, str):
        return None
    order = compare_versions(target, user_value)
    if order is None:
        return None
    return _SEMVER[match](order)


_SEMVER: dict[str, Callable[[int], bool]] = {
    "semver_eq": lambda order: order == 0,
    "semver_gt": lambda order: order > 0,
    "semver_ge": lambda order: order >= 0,
    "semver_lt": lambda order: order < 0,
    "semver_le": lambda order: order <= 0,
}


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _finite_number(value: object) -> int | float | None:
    """The value if it is a number other SDKs can compare exactly, else None."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value if abs(value) <= MAX_SAFE_NUMBER else None


def _exact(target: object, user_value: object) -> Verdict:
    if not isinstance(target, str | int | float):
        return None
    if _is_number(target) and _finite_number(target) is None:
        return None
    if not isinstance(user_value, str | int | float):
        return None
    if isinstance(target, str) != isinstance(user_value, str):
        return None
    if isinstance(target, bool) != isinstance(user_value, bool):
        return None
    if _is_number(user_value) and _finite_number(user_value) is None:
        return None
    return target == user_value


def _numeric(match: str, target: object, user_value: object) -> Verdict:
    bound, number = _finite_number(target), _finite_number(user_value)
    if bound is None or number is None:
        return None
    if match == "gt":
        return number > bound
    if match == "ge":
        return number >= bound
    if match == "lt":
        return number < bound
    return number <= bound


# --- semantic versions -----------------------------------------------------------------------


def _is_pre_release(version: str) -> bool:
    """A ``-`` that comes before any ``+`` starts a pre-release tag (``1.2.3-beta+7``)."""
    if "-" not in version:
        return False
    build = version.find("+")
    return build < 0 or version.find("-") < build


def _is_build(version: str) -> bool:
    if "+" not in version:
        return False
    pre = version.find("-")
    return pre < 0 or version.find("+") < pre


def _split_version(version: str) -> list[str] | None:
    """Core parts (at most three, all digits) followed by the pre-release or build tag, if any."""
    if " " in version:
        return None
    core, suffix = version, []
    if _is_pre_release(version):
        core, *suffix = version.split("-", 1)
    elif _is_build(version):
        core, *suffix = version.split("+", 1)
    if core.count(".") > 2:
        return None
    parts = core.split(".")
    if not all(part.isdigit() for part in parts):
        return None
    return parts + suffix


def compare_versions(target: str, user: str) -> int | None:
    """-1, 0 or 1 as the user's version is below, equal to or above the target; None if invalid.

    Only as many parts as the target has are compared, so target ``"2.0"`` equals ``"2.0.1"``,
    while target ``"2.0.0"`` is above ``"2.0"``. A pre-release is below its release
    (``1.2.3-beta < 1.2.3``).
    """
    target_pre, target_build = _is_pre_release(target), _is_build(target)
    user_pre = _is_pre_release(user)
    target_parts, user_parts = _split_version(target), _split_version(user)
    if target_parts is None or user_parts is None:
        return None
    for index, target_part in enumerate(target_parts):
        if index >= len(user_parts):
            return 1 if target_pre or target_build else -1
        user_part = user_parts[index]
        if not user_part.isdigit():
            # Pre-release and build tags compare as strings, as the SDKs do.
            if user_part < target_part:
                return 1 if target_pre and not user_pre else -1
            if user_part > target_part:
                return -1 if not target_pre and user_pre else 1
            continue
        try:
            user_number, target_number = int(user_part), int(target_part)
        except ValueError:
            return None
        if user_number != target_number:
            return 1 if user_number > target_number else -1
    if user_pre and not target_pre:
        return -1
    return 0
