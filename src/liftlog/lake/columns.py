"""Event API values as the lake stores them, and the Arrow columns `liftlog.lake.normalize` builds.

Values: revenue and quantity as 64-bit integers, ``value`` as a finite double, attribute and tag
values as text the way E3 stores them (`text`); a value that can't be stored is `BAD` and flagged
in the row's ``problems``. Columns: plain string arrays, the ``problems`` list column, and the
nested ``attributes``, ``experiments`` and ``tags`` columns assembled from flat child arrays.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from itertools import accumulate
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from liftlog.lake.schema import ATTRIBUTES, EXPERIMENTS, SCHEMAS, TS
from liftlog.wire.events import TYPED_PREFIX, Snapshot, Visitor, typed_value

INT64 = 2**63


# -- values --------------------------------------------------------------------------------------


class Bad:
    """The marker of a revenue, value or quantity that is flagged in ``problems``."""


BAD = Bad()


def text(value: Any) -> str | None:
    """A value as E3 stores it: strings as they are (a typed string: its text after the prefix),
    booleans lowercase, numbers as Python's repr, objects and arrays as compact JSON."""
    kind = type(value)
    if kind is str:
        return value[1:] if value.startswith(TYPED_PREFIX) else value  # type: ignore[no-any-return]
    if kind is int or kind is float:
        return repr(value)
    if kind is bool:
        return "true" if value else "false"
    if value is None:
        return None
    return msgspec.json.encode(value).decode()


def texts(values: list[Any]) -> list[str | None]:
    # a string holding U+E000 anywhere takes the slow path (`in` is cheaper than a call)
    return [
        v
        if (kind := type(v)) is str and TYPED_PREFIX not in v
        else repr(v)
        if kind is int or kind is float
        else text(v)
        for v in values
    ]


def _as_int(raw: Any) -> int | Bad | None:
    value = typed_value(raw)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < INT64:
        return value
    return BAD


def _as_float(raw: Any) -> float | Bad | None:
    value = typed_value(raw)
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:  # an integer beyond a double's range
            return BAD
        if math.isfinite(number):
            return number
    return BAD


def ints(raws: list[Any]) -> tuple[list[Any], list[int]]:
    """Revenue or quantity: the values, and the indices of the flagged ones."""
    lo, hi = -INT64, INT64
    out = [r if r is None or (type(r) is int and lo < r < hi) else _as_int(r) for r in raws]
    return _flagged(out)


def floats(raws: list[Any]) -> tuple[list[Any], list[int]]:
    out = [r if r is None or type(r) is float else _as_float(r) for r in raws]
    return _flagged(out)


def _flagged(values: list[Any]) -> tuple[list[Any], list[int]]:
    if BAD not in values:
        return values, []
    bad = [i for i, v in enumerate(values) if v is BAD]
    for i in bad:
        values[i] = None
    return values, bad


def meta_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return msgspec.json.encode(value).decode()


def meta_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    return {"true": True, "false": False}.get(value) if isinstance(value, str) else None


# -- columns -------------------------------------------------------------------------------------


def list_offsets(lengths: list[int]) -> pa.Array:
    return pa.array(accumulate(lengths, initial=0), pa.int32())


def problems(n: int, checks: Sequence[tuple[str, Sequence[int]]]) -> pa.Array:
    """The ``problems`` column of ``n`` rows: each check's code on the rows it flags, in order."""
    flagged: dict[int, list[str]] = {}
    for code, rows in checks:
        for i in rows:
            flagged.setdefault(i, []).append(code)
    lengths = [0] * n
    for i, codes in flagged.items():
        lengths[i] = len(codes)
    values = [c for i in sorted(flagged) for c in flagged[i]]
    return pa.ListArray.from_arrays(list_offsets(lengths), pa.array(values, pa.string()))


def indices(mask: pa.Array) -> list[int]:
    return pc.indices_nonzero(mask).to_pylist()  # type: ignore[no-any-return]


def strs(values: list[Any]) -> pa.Array:
    return pa.array(values, pa.string())


def day(ms: pa.Array) -> pa.Array:
    """``YYYY-MM-DD`` (UTC) of epoch milliseconds."""
    return ms.cast(TS).cast(pa.date32()).cast(pa.string())


_TAGS = SCHEMAS["conversions"].field("tags").type


def _list_of_structs(
    lists: Sequence[Sequence[Any] | None],
    children: Callable[[list[Any]], list[pa.Array]],
    list_type: pa.ListType,
) -> pa.Array:
    """A ``list<struct>`` column, one list a row (None: empty): the structs' fields are
    ``children`` of all the rows' items at once."""
    flat = [item for items in lists if items for item in items]
    struct = pa.StructArray.from_arrays(children(flat), fields=list(list_type.value_type))
    offsets = list_offsets([len(items) if items else 0 for items in lists])
    return pa.ListArray.from_arrays(offsets, struct, type=list_type)


def attributes(visitors: list[Visitor]) -> pa.Array:
    return _list_of_structs(
        [v.attributes for v in visitors],
        lambda flat: [
            strs([a.entity_id for a in flat]),
            strs([a.key for a in flat]),
            strs([a.type for a in flat]),
            strs(texts([a.value for a in flat])),
        ],
        ATTRIBUTES,
    )


def experiments(snaps: list[Snapshot]) -> pa.Array:
    return _list_of_structs(
        [s.decisions for s in snaps],
        lambda flat: [
            strs([d.campaign_id for d in flat]),
            strs([d.experiment_id for d in flat]),
            strs([d.variation_id for d in flat]),
            pa.array([d.is_campaign_holdback for d in flat], pa.bool_()),
        ],
        EXPERIMENTS,
    )


def tags(maps: list[dict[str, Any] | None]) -> pa.Array:
    keys = [k for t in maps if t for k in t]
    values = texts([v for t in maps if t for v in t.values()])
    offsets = list_offsets([len(t) if t else 0 for t in maps])
    mask = pa.array([t is None for t in maps], pa.bool_()) if None in maps else None
    return pa.MapArray.from_arrays(offsets, strs(keys), strs(values), type=_TAGS, mask=mask)
