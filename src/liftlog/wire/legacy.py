"""The legacy offline-conversion call ``GET /event?a=…&n=…&u=…&x<exp>=<var>…``.

Parameters (Optimizely Classic's Events API):

=========================  ==================================================================
``a``                      project id (required)
``n``                      event (goal) name (required)
``d``                      account id
``u``                      Optimizely end-user id (the visitor); absent means anonymous
``p``                      "Universal User ID": when set, it identifies the visitor instead of ``u``
``x<experiment>=<var>``    experiment → variation the visitor saw; multivariate as ``v1_v2_…``
``g``                      goal ids, comma-separated
``v``                      revenue in cents (an integer)
``s<segment>=<value>``     segment (attribute) values
``time``                   event time in epoch seconds; default: when liftlog received the call
=========================  ==================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from liftlog.errors import InvalidInput, Problem

REQUIRED = ("a", "n")
#: ``time`` in milliseconds must be a 64-bit integer, as the lake stores it.
MAX_TIME = (1 << 63) // 1000


@dataclass(frozen=True, slots=True)
class LegacyEvent:
    project_id: str
    event_name: str
    account_id: str | None = None
    end_user_id: str | None = None
    ppid: str | None = None
    experiments: dict[str, str] = field(default_factory=dict)
    goal_ids: tuple[str, ...] = ()
    revenue: str | None = None
    segments: dict[str, str] = field(default_factory=dict)
    time: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def visitor_id(self) -> str | None:
        return self.ppid or self.end_user_id


def parse_query(query: str) -> LegacyEvent:
    """Parse a query string; raise `InvalidInput` naming every missing or malformed parameter."""
    params: dict[str, str] = {}
    experiments: dict[str, str] = {}
    segments: dict[str, str] = {}
    problems: list[Problem] = []
    for key, value in parse_qsl(query, keep_blank_values=True):
        if len(key) > 1 and key[0] == "x" and key[1:].isdigit():
            if not value:
                problems.append(Problem(f"query.{key}", "needs a variation id"))
            experiments[key[1:]] = value
        elif len(key) > 1 and key[0] == "s" and key[1:].isdigit():
            segments[key[1:]] = value
        else:
            params[key] = value
    for key in REQUIRED:
        if not params.get(key):
            problems.append(Problem(f"query.{key}", "is required"))
    if (t := params.get("time")) and not (t.isascii() and t.isdigit() and int(t) < MAX_TIME):
        problems.append(Problem("query.time", "must be epoch seconds (an integer)"))
    if problems:
        raise InvalidInput("The event call is missing or has malformed parameters.", problems)
    known = {"a", "n", "d", "u", "p", "g", "v", "time"}
    return LegacyEvent(
        project_id=params["a"],
        event_name=params["n"],
        account_id=params.get("d") or None,
        end_user_id=params.get("u") or None,
        ppid=params.get("p") or None,
        experiments=experiments,
        goal_ids=tuple(g for g in params.get("g", "").split(",") if g),
        revenue=params.get("v") or None,
        segments=segments,
        time=params.get("time") or None,
        extra={k: v for k, v in params.items() if k not in known},
    )
