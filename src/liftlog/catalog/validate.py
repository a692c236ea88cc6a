"""Checking request bodies (decoded JSON) field by field, collecting every problem with its path.

Two kinds of problem: a *shape* problem (wrong type, unknown field, missing required field) makes
the body unusable and raises `InvalidInput` (400); a *rule* problem (weights over 10,000, an unknown
event id) means the body was understood but breaks a rule, and raises `Unprocessable` (422).
All problems found are reported at once, shape problems first.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from liftlog.errors import InvalidInput, Problem, Unprocessable

T = TypeVar("T")

MAX_NAME = 255
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
MAX_TEXT = 65_536


class Checker:
    """Reads fields of one JSON object, remembering what was wrong and where."""

    def __init__(self, body: object, path: str = "$", *, parent: Checker | None = None) -> None:
        self.path = path
        self.shape: list[Problem] = [] if parent is None else parent.shape
        self.rules: list[Problem] = [] if parent is None else parent.rules
        if isinstance(body, Mapping):
            self.body: Mapping[str, Any] = body
        else:
            self.body = {}
            self.bad(path, "must be a JSON object")

    def at(self, key: str | int) -> str:
        return f"{self.path}[{key}]" if isinstance(key, int) else f"{self.path}.{key}"

    def child(self, body: object, key: str | int) -> Checker:
        return Checker(body, self.at(key), parent=self)

    def bad(self, path: str, problem: str) -> None:
        self.shape.append(Problem(path, problem))

    def breaks(self, path: str, problem: str) -> None:
        self.rules.append(Problem(path, problem))

    def allow_only(self, writable: Iterable[str], read_only: Iterable[str] = ()) -> None:
        """Unknown keys are shape problems; read-only keys (as sent back from a GET) are ignored."""
        known = set(writable) | set(read_only)
        for key in self.body:
            if key not in known:
                self.bad(self.at(key), "unknown field")

    def has(self, key: str) -> bool:
        return key in self.body

    def _missing(self, key: str, required: bool) -> bool:
        if key in self.body and self.body[key] is not None:
            return False
        if required:
            self.bad(self.at(key), "is required")
        return True

    def string(
        self, key: str, *, required: bool = False, max_len: int = MAX_NAME, empty: bool = True
    ) -> str | None:
        if self._missing(key, required):
            return None
        value = self.body[key]
        if not isinstance(value, str):
            self.bad(self.at(key), "must be a string")
            return None
        if len(value) > max_len:
            self.breaks(self.at(key), f"must be at most {max_len} characters")
        if not empty and not value.strip():
            self.breaks(self.at(key), "must not be empty")
        return value

    def key(self, key: str, *, required: bool = False) -> str | None:
        """An object key as the SDKs use it: 1-64 characters, no whitespace."""
        value = self.string(key, required=required, max_len=64, empty=False)
        if value is not None and any(c.isspace() for c in value):
            self.breaks(self.at(key), "must not contain whitespace")
        return value

    def integer(
        self, key: str, *, required: bool = False, low: int | None = None, high: int | None = None
    ) -> int | None:
        if self._missing(key, required):
            return None
        return self.int_value(self.body[key], self.at(key), low=low, high=high)

    def int_value(
        self, value: object, path: str, *, low: int | None = None, high: int | None = None
    ) -> int | None:
        if isinstance(value, str) and value.isdecimal() and value.isascii():
            value = int(value)  # ids travel as numeric strings in datafiles
        if isinstance(value, bool) or not isinstance(value, int):
            self.bad(path, "must be an integer")
            return None
        if not INT64_MIN <= value <= INT64_MAX:  # what both databases store
            self.bad(path, "must be a 64-bit integer")
            return None
        if low is not None and value < low:
            self.breaks(path, f"must be at least {low}")
        if high is not None and value > high:
            self.breaks(path, f"must be at most {high}")
        return value

    def number(self, key: str, *, low: float, high: float) -> float | None:
        if self._missing(key, False):
            return None
        value = self.body[key]
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            self.bad(self.at(key), "must be a finite number")
            return None
        if not low <= value <= high:
            self.breaks(self.at(key), f"must be between {low} and {high}")
        return float(value)

    def boolean(self, key: str) -> bool | None:
        if self._missing(key, False):
            return None
        value = self.body[key]
        if not isinstance(value, bool):
            self.bad(self.at(key), "must be true or false")
            return None
        return value

    def choice(self, key: str, options: Iterable[str], *, required: bool = False) -> str | None:
        value = self.string(key, required=required)
        allowed = list(options)
        if value is not None and value not in allowed:
            self.breaks(self.at(key), f"must be one of {', '.join(allowed)}")
            return None
        return value

    def array(self, key: str, *, required: bool = False) -> list[Any] | None:
        if self._missing(key, required):
            return None
        value = self.body[key]
        if not isinstance(value, list):
            self.bad(self.at(key), "must be an array")
            return None
        return value

    @property
    def ok(self) -> bool:
        return not self.shape and not self.rules

    def raise_if_any(self, what: str) -> None:
        if self.shape:
            raise InvalidInput(f"invalid {what}", self.shape + self.rules)
        if self.rules:
            raise Unprocessable(f"invalid {what}", self.rules)


def unprocessable(path: str, problem: str, message: str) -> Unprocessable:
    return Unprocessable(message, [Problem(path, problem)])


def present(value: T | None) -> T:
    """Narrow a required field that `Checker.raise_if_any` has already vouched for."""
    if value is None:
        raise RuntimeError("a required field passed the checks without a value")
    return value
