"""Reading the numbers of a results page back, to compare them with the results API's."""

from __future__ import annotations

import math
import re
from html.parser import HTMLParser


class Tables(HTMLParser):
    """The result tables of a page: {metric index: {variation id: {field: text}}}."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[int, dict[str, dict[str, str]]] = {}
        self._table: dict[str, dict[str, str]] | None = None
        self._row: dict[str, str] | None = None
        self._field: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table" and a.get("data-metric") is not None:
            self._table = self.tables.setdefault(int(str(a["data-metric"])), {})
        elif tag == "tr" and self._table is not None and a.get("data-variation-id"):
            self._row = self._table.setdefault(str(a["data-variation-id"]), {})
        elif tag == "td" and self._row is not None and a.get("data-field"):
            self._field = str(a["data-field"])
            self._row[self._field] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._field = None
        elif tag == "table":
            self._table = self._row = None

    def handle_data(self, data: str) -> None:
        if self._row is not None and self._field is not None:
            self._row[self._field] += data


def tables_of(html: str) -> dict[int, dict[str, dict[str, str]]]:
    parser = Tables()
    parser.feed(html)
    return parser.tables


def number(text: str) -> tuple[float, float]:
    """The number shown and half a unit of its last digit (how far rounding may have moved it)."""
    found = re.search(r"[-+]?[\d,]+(\.\d+)?", text)
    assert found, text
    digits = len(found.group(1) or ".") - 1
    value = float(found.group(0).replace(",", ""))
    scale = 100 if "%" in text[found.end() : found.end() + 1] else 1
    return value / scale, 0.5 * 10**-digits / scale


def shows(text: str, expected: float | None) -> bool:
    """Whether ``text`` shows ``expected``: rounded, or as a bound such as ">99.9%"."""
    if expected is None:
        return text.strip() in ("–", "")
    value, tolerance = number(text)
    bound = text.strip()[:1]
    if bound == ">":
        return expected > value
    if bound == "<":
        return expected < value
    return math.isclose(value, expected, abs_tol=tolerance + 1e-12, rel_tol=5e-4)
