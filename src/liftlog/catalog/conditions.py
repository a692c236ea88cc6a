"""Condition trees, checked before they are stored. Pure: no database, no clock.

Two trees, both with `and` / `or` / `not` operators and Optimizely's rule that a list without a
leading operator means `or`:

* an audience's `conditions`, whose leaves are ``{"type": "custom_attribute", "name", "match",
  "value"}`` exactly as the datafile carries them (a missing `match` means `exact`);
* an experiment's `audience_conditions` in REST v2 form, ``"everyone"`` or a tree whose leaves are
  ``{"audience_id": 123}``; the datafile wants the same tree with id strings as leaves.

Either may arrive as a tree or as its JSON text (the REST API types both as strings).
"""

from __future__ import annotations

import json
import math
from typing import Any

from liftlog.catalog.validate import Checker

OPERATORS = ("and", "or", "not")
CONDITION_TYPES = ("custom_attribute", "third_party_dimension")
STRING_MATCHES = ("substring", "semver_eq", "semver_gt", "semver_ge", "semver_lt", "semver_le")
NUMBER_MATCHES = ("gt", "ge", "lt", "le")
MATCHES = ("exact", "exists", *NUMBER_MATCHES, *STRING_MATCHES)
MAX_DEPTH = 16
EVERYONE = "everyone"


def _decoded(check: Checker, key: str) -> tuple[bool, Any]:
    value = check.body[key]
    if isinstance(value, str):
        if value == EVERYONE:
            return True, value
        try:
            return True, json.loads(value)
        except ValueError:
            check.bad(check.at(key), "must be a condition tree or its JSON text")
            return False, None
        except RecursionError:
            check.bad(check.at(key), f"nests deeper than {MAX_DEPTH} levels")
            return False, None
    return True, value


def _walk(check: Checker, node: Any, path: str, depth: int, leaf: Any) -> None:
    if depth > MAX_DEPTH:
        check.bad(path, f"nests deeper than {MAX_DEPTH} levels")
        return
    if isinstance(node, list):
        operands = node
        start = 0
        if node and isinstance(node[0], str) and node[0] in OPERATORS:
            operands, start = node[1:], 1
            if node[0] == "not" and len(operands) != 1:
                check.bad(path, '"not" takes exactly one operand')
        elif not node:
            return  # an empty list matches everyone
        for i, child in enumerate(operands, start):
            _walk(check, child, f"{path}[{i}]", depth + 1, leaf)
        return
    leaf(check, node, path)


def _attribute_leaf(check: Checker, node: Any, path: str) -> None:
    if isinstance(node, str) and node in OPERATORS:
        check.bad(path, "an operator must come first in its list")
        return
    if not isinstance(node, dict):
        check.bad(path, "must be an operator list or a condition object")
        return
    item = Checker(node, path, parent=check)
    item.allow_only(("type", "name", "match", "value"))
    item.choice("type", CONDITION_TYPES, required=True)
    item.string("name", required=True, empty=False)
    match = item.choice("match", MATCHES) or "exact"
    value = node.get("value")
    at = item.at("value")
    if match == "exists":
        return
    if value is None:
        check.bad(at, f"is required for match {match!r}")
    elif match in STRING_MATCHES and not isinstance(value, str):
        check.bad(at, f"must be a string for match {match!r}")
    elif match in NUMBER_MATCHES and (
        isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
    ):
        check.bad(at, f"must be a finite number for match {match!r}")
    elif match == "exact" and (
        not isinstance(value, str | int | float | bool)
        or (isinstance(value, float) and not math.isfinite(value))
    ):
        check.bad(at, "must be a string, number or boolean for match 'exact'")


def audience_conditions(check: Checker, key: str = "conditions") -> str | None:
    """The audience's condition tree as compact JSON text, or None (with problems noted)."""
    if not check.has(key):
        check.bad(check.at(key), "is required")
        return None
    ok, tree = _decoded(check, key)
    if not ok:
        return None
    if tree == EVERYONE or not isinstance(tree, list | dict):
        check.bad(check.at(key), "must be a condition tree (a list or an object)")
        return None
    before = len(check.shape)
    _walk(check, tree, check.at(key), 0, _attribute_leaf)
    return json.dumps(tree, separators=(",", ":")) if len(check.shape) == before else None


def _audience_leaf(check: Checker, node: Any, path: str) -> None:
    if isinstance(node, str) and node in OPERATORS:
        check.bad(path, "an operator must come first in its list")
        return
    if not isinstance(node, dict) or set(node) != {"audience_id"}:
        check.bad(path, 'must be an operator list or {"audience_id": <id>}')
        return
    check.int_value(node["audience_id"], f"{path}.audience_id", low=1)


def experiment_conditions(check: Checker, key: str = "audience_conditions") -> str | None:
    """REST v2 `audience_conditions` normalised to ``"everyone"`` or compact JSON text."""
    if not check.has(key) or check.body[key] is None:
        return EVERYONE
    ok, tree = _decoded(check, key)
    if not ok:
        return None
    if tree == EVERYONE or tree == []:
        return EVERYONE
    if not isinstance(tree, list | dict):
        check.bad(check.at(key), 'must be "everyone" or a tree of {"audience_id": <id>}')
        return None
    before = len(check.shape)
    _walk(check, tree, check.at(key), 0, _audience_leaf)
    if len(check.shape) != before:
        return None
    return json.dumps(_normalise_ids(tree), separators=(",", ":"))


def _normalise_ids(node: Any) -> Any:
    if isinstance(node, list):
        return [_normalise_ids(n) for n in node]
    if isinstance(node, dict):
        return {"audience_id": int(node["audience_id"])}
    return node


def audience_ids(conditions: str) -> list[int]:
    """Every audience id an experiment's stored `audience_conditions` mentions, in order, once."""
    if conditions == EVERYONE:
        return []
    found: list[int] = []

    def visit(node: Any) -> None:
        if isinstance(node, list):
            for n in node:
                visit(n)
        elif isinstance(node, dict) and node["audience_id"] not in found:
            found.append(node["audience_id"])

    visit(json.loads(conditions))
    return found


def datafile_conditions(conditions: str) -> list[Any]:
    """The stored `audience_conditions` as the datafile's `audienceConditions`: ids as strings."""
    if conditions == EVERYONE:
        return []

    def convert(node: Any) -> Any:
        if isinstance(node, list):
            return [convert(n) for n in node]
        if isinstance(node, dict):
            return str(node["audience_id"])
        return node

    tree = convert(json.loads(conditions))
    return tree if isinstance(tree, list) else ["or", tree]
