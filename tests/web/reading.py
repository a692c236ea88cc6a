"""Reading the numbers of a results page back, to compare them with the results API's."""

from __future__ import annotations

import math
import re
from html.parser import HTMLParser
from typing import Any

#: {segment value ("" for the whole experiment's tables): {metric index: {variation id:
#: {field: text}}}}
Shown = dict[str, dict[int, dict[str, dict[str, str]]]]


class Tables(HTMLParser):
    """The result tables of a page's HTML, as `Shown`."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: Shown = {}
        self._table: dict[str, dict[str, str]] | None = None
        self._row: dict[str, str] | None = None
        self._field: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table" and a.get("data-metric") is not None:
            segment = self.tables.setdefault(str(a.get("data-segment") or ""), {})
            self._table = segment.setdefault(int(str(a["data-metric"])), {})
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


def tables_of(html: str) -> Shown:
    parser = Tables()
    parser.feed(html)
    return parser.tables


def assert_shows(tables: dict[int, dict[str, dict[str, str]]], doc: dict[str, Any]) -> None:
    """Every figure of every metric table equals the results document's (``doc`` is the API's
    document, or one of its ``segments``)."""
    bayesian = doc["method"] == "bayesian"
    metrics = doc["metrics"]
    assert sorted(tables) == list(range(len(metrics)))
    for index, metric in enumerate(metrics):
        assert set(tables[index]) == set(metric["results"])
        for vid, r in metric["results"].items():
            shown = tables[index][vid]
            assert shows(shown["visitors"], r["samples"]), shown
            conversions = {"unique": r["unique_conversions"], "count": r["total_conversions"]}
            assert shows(shown["conversions"], conversions.get(metric["aggregator"], r["value"]))
            assert shows(shown["rate"], r["rate"]), shown
            lift = r.get("lift")
            if lift is None:
                assert shown["improvement"].strip() == "baseline", shown
                continue
            assert shows(shown["improvement"], lift["value"]), shown
            expected = lift["chance_to_beat_baseline"] if bayesian else lift["significance"]
            assert shows(shown["significance"], expected), shown
            if not bayesian:
                assert shows(shown["remaining"], lift["visitors_remaining"]), shown


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
