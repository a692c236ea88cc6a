"""Collect every problem in a decoded JSON value against a msgspec type, each with its JSON path.

msgspec stops at the first error; a client fixing a batch wants all of them at once. This walker
reads the type description from `msgspec.inspect`, so the Structs stay the single definition of
the schema.
"""

from __future__ import annotations

from typing import Any

import msgspec.inspect as mi

from liftlog.errors import Problem

#: Stop collecting after this many problems: a 3.5 MB body of garbage must not make a 3.5 MB answer.
MAX_PROBLEMS = 100


def problems_for(tp: Any, value: Any, path: str = "$") -> list[Problem]:
    out: list[Problem] = []
    _walk(mi.type_info(tp), value, path, out)
    return out[:MAX_PROBLEMS]


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _expected(t: mi.Type) -> str:
    names = {
        mi.StrType: "a string",
        mi.IntType: "an integer",
        mi.FloatType: "a number",
        mi.BoolType: "a boolean",
        mi.NoneType: "null",
        mi.ListType: "an array",
        mi.DictType: "an object",
        mi.StructType: "an object",
    }
    if isinstance(t, mi.UnionType):
        return " or ".join(_expected(x) for x in t.types)
    return names.get(type(t), "a valid value")


def _matches(t: mi.Type, value: Any) -> bool:
    """Whether ``value`` has the right JSON kind for ``t`` (contents are checked by `_walk`)."""
    if isinstance(t, mi.AnyType):
        return True
    if isinstance(t, mi.UnionType):
        return any(_matches(x, value) for x in t.types)
    if isinstance(t, mi.NoneType):
        return value is None
    if isinstance(t, mi.BoolType):
        return isinstance(value, bool)
    if isinstance(t, mi.IntType):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(t, mi.FloatType):
        return isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(t, mi.StrType):
        return isinstance(value, str)
    if isinstance(t, mi.ListType):
        return isinstance(value, list)
    if isinstance(t, mi.DictType | mi.StructType):
        return isinstance(value, dict)
    return True


def _walk(t: mi.Type, value: Any, path: str, out: list[Problem]) -> None:
    if len(out) >= MAX_PROBLEMS:
        return
    if isinstance(t, mi.UnionType):
        candidates = [x for x in t.types if _matches(x, value)]
        if not candidates:
            out.append(Problem(path, f"expected {_expected(t)}, got {_kind(value)}"))
            return
        _walk(candidates[0], value, path, out)
        return
    if not _matches(t, value):
        out.append(Problem(path, f"expected {_expected(t)}, got {_kind(value)}"))
        return
    if isinstance(t, mi.StrType) and t.min_length and len(value) < t.min_length:
        out.append(Problem(path, "must not be empty"))
    elif isinstance(t, mi.IntType) and not (
        (t.ge is None or value >= t.ge) and (t.le is None or value <= t.le)
    ):
        out.append(Problem(path, f"must be an integer from {t.ge} to {t.le}"))
    elif isinstance(t, mi.ListType):
        for i, item in enumerate(value):
            _walk(t.item_type, item, f"{path}[{i}]", out)
    elif isinstance(t, mi.DictType):
        for key, item in value.items():
            _walk(t.value_type, item, f"{path}.{key}", out)
    elif isinstance(t, mi.StructType):
        for field in t.fields:
            sub = f"{path}.{field.encode_name}"
            if field.encode_name not in value:
                if field.required:
                    out.append(Problem(sub, "is required"))
                continue
            _walk(field.type, value[field.encode_name], sub, out)
