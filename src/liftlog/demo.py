"""The demo project that ``liftlog serve --demo`` (``make run``) makes on first start.

On a catalog with no project and no user, `create` makes a clearly named demo project (a web
shop's checkout experiment with three variations, three metrics, two attributes) whose experiment
started a week ago, and a first user with a random password. `simulate` plans a week of traffic
with known true rates, and `send` posts it to the running server's Event API, as an SDK would:
the events then go the way of every other event (raw log, loader, lake), so the results pages show
real results within seconds of the start.

The traffic also holds what the event debugger is for: conversions sent twice (a client's retry),
conversions before their visitor's decision, and conversions of visitors never decided.
`Traffic.expected` is what the results must count, computed from the plan directly.

`remove` deletes the demo: the project and everything in it from the catalog, and its rows from
the lake. The user stays.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import secrets
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from liftlog.catalog.datafile import build_datafile
from liftlog.catalog.store import Catalog
from liftlog.catalog.users import Users
from liftlog.errors import NotFound
from liftlog.rules.decision import DatafileIndex, variation_for
from liftlog.settings import Settings

DEMO_FILE = "demo.json"
PROJECT_NAME = "Demo shop (simulated traffic)"
DESCRIPTION = (
    "Made by liftlog on first start, with a week of simulated traffic sent through the Event API. "
    "Remove it with: liftlog demo remove"
)
EXPERIMENT_KEY = "checkout_redesign"
EMAIL = "admin@example.com"
DAYS = 7
VISITORS = 10_000
_DAY_MS = 86_400_000
_BATCH_VISITORS = 200

#: Variation key → (weight, add-to-cart rate, purchase rate, mean order value in cents).
ARMS: dict[str, tuple[int, float, float, int]] = {
    "original": (3334, 0.30, 0.080, 4_500),
    "free_shipping": (3333, 0.31, 0.100, 4_300),
    "one_click_checkout": (3333, 0.38, 0.084, 4_600),
}
COUNTRIES = (("US", 0.40), ("DE", 0.20), ("GB", 0.15), ("FR", 0.15), ("NL", 0.10))
DEVICES = (("mobile", 0.55), ("desktop", 0.45))


@dataclass(frozen=True)
class Demo:
    """What `create` made; the password is only known here, at creation."""

    project_id: int
    experiment_id: int
    sdk_key: str
    email: str | None
    password: str | None
    started_ms: int


@dataclass
class Traffic:
    """Event API bodies to send, and the counts the results must show for them."""

    bodies: list[dict[str, Any]] = field(default_factory=list)
    #: {variation key: {"visitors": n, "<event key>": unique converters}}
    expected: dict[str, dict[str, int]] = field(default_factory=dict)
    #: A visitor with a conversion that does not count (it came before the decision).
    explain_visitor: str = ""


def is_first_start(catalog: Catalog) -> bool:
    """No project and no user yet: a new data directory (or a new database)."""
    return catalog.projects.list(1, 1).total == 0 and Users.of(catalog).count() == 0


def create(catalog_url: str, now_ms: int) -> Demo:
    """The demo project, its experiment running since ``DAYS`` days before ``now_ms``, and the
    first user, with a random password."""
    started = now_ms - DAYS * _DAY_MS
    with Catalog.open(catalog_url, clock=lambda: started) as catalog:
        project = catalog.projects.create({"name": PROJECT_NAME, "description": DESCRIPTION})
        pid = project.id
        events = {
            key: catalog.events.create(pid, {"key": key, "name": name}).id
            for key, name in (("purchase", "Purchase"), ("add_to_cart", "Add to cart"))
        }
        for key in ("country", "device"):
            catalog.attributes.create(pid, {"key": key})
        experiment = catalog.experiments.create(
            pid,
            {
                "key": EXPERIMENT_KEY,
                "name": "Checkout redesign",
                "description": "Does free shipping or a one-click checkout sell more?",
                "status": "running",
                "variations": [{"key": k, "weight": w} for k, (w, *_) in ARMS.items()],
                "metrics": [
                    {"event_id": events["purchase"], "aggregator": "unique"},
                    {"event_id": events["purchase"], "aggregator": "sum", "field": "revenue"},
                    {"event_id": events["add_to_cart"], "aggregator": "unique"},
                ],
            },
        )
        password = secrets.token_urlsafe(12)
        Users.of(catalog).create(EMAIL, password)
    return Demo(pid, experiment.id, project.sdk_key, EMAIL, password, started)


def write_marker(settings: Settings, demo: Demo, now_ms: int, explain_visitor: str) -> None:
    """``<data>/demo.json``: which project `remove` deletes, and what `simulate` was given (the
    same arguments give the same traffic)."""
    marker = {
        "project_id": demo.project_id,
        "experiment_id": demo.experiment_id,
        "started_ms": demo.started_ms,
        "simulated_until_ms": now_ms,
        "explain_visitor": explain_visitor,
    }
    (settings.data_dir / DEMO_FILE).write_text(json.dumps(marker, indent=2) + "\n")


def read_marker(settings: Settings) -> dict[str, Any] | None:
    path = settings.data_dir / DEMO_FILE
    if not path.exists():
        return None
    marker: dict[str, Any] = json.loads(path.read_text())
    return marker


def _pick(rng: random.Random, weighted: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([k for k, _ in weighted], [w for _, w in weighted])[0]


def simulate(catalog_url: str, demo: Demo, now_ms: int, seed: int = 7) -> Traffic:
    """A week of visitors bucketed as the SDK would (the project's own datafile), converting at
    the rates of `ARMS`, with the events the debugger explains mixed in."""
    rng = random.Random(seed)
    with Catalog.open(catalog_url) as catalog:
        datafile = build_datafile(catalog, demo.sdk_key)
    index = DatafileIndex(datafile)
    exp = index.experiment(EXPERIMENT_KEY)
    events = {e.key: e.id for e in datafile.events}
    attribute_ids = {a.key: a.id for a in datafile.attributes}
    variation_keys = {v.id: v.key for v in exp.variations}
    traffic = Traffic(
        expected={k: {"visitors": 0, "purchase": 0, "add_to_cart": 0, "revenue": 0} for k in ARMS}
    )
    visitors: list[dict[str, Any]] = []
    first, last = demo.started_ms + 60_000, now_ms - 120_000

    def conversion(key: str, at: int, revenue: int | None = None) -> dict[str, Any]:
        event: dict[str, Any] = {"entity_id": events[key], "key": key, "timestamp": at,
                                 "uuid": _uuid(rng)}  # fmt: skip
        if revenue is not None:
            event["revenue"] = revenue
            event["tags"] = {"revenue": revenue}
        return event

    for i in range(VISITORS):
        visitor_id = f"visitor-{i:05d}"
        attributes = {"country": _pick(rng, COUNTRIES), "device": _pick(rng, DEVICES)}
        at = rng.randint(first, last)
        decided = variation_for(index, EXPERIMENT_KEY, visitor_id, attributes).variation
        if decided is None:  # not possible with weights summing to 10,000; kept honest
            continue
        arm = variation_keys[decided.id]
        _, cart_rate, buy_rate, order_cents = ARMS[arm]
        decision = {"campaign_id": exp.layer_id, "experiment_id": exp.id,
                    "variation_id": decided.id, "is_campaign_holdback": False}  # fmt: skip
        activated = {"entity_id": exp.layer_id, "key": "campaign_activated", "timestamp": at,
                     "uuid": _uuid(rng)}  # fmt: skip
        snapshots: list[dict[str, Any]] = [{"decisions": [decision], "events": [activated]}]
        counted = traffic.expected[arm]
        counted["visitors"] += 1
        later: list[dict[str, Any]] = []
        if rng.random() < cart_rate:
            later.append(conversion("add_to_cart", at + rng.randint(5_000, 600_000)))
        if rng.random() < buy_rate:
            revenue = max(100, round(rng.lognormvariate(math.log(order_cents), 0.45)))
            later.append(conversion("purchase", at + rng.randint(60_000, 3_600_000), revenue))
        for event in later:
            if event["timestamp"] < now_ms:
                counted[event["key"]] += 1
                counted["revenue"] += event.get("revenue", 0)
                snapshots.append({"events": [event]})
                if rng.random() < 0.02:  # a client's retry: the very same event again
                    snapshots.append({"events": [dict(event)]})
        if i % 200 == 17:  # a purchase logged before the visitor's first decision: not counted
            before = rng.randint(1_000, min(900_000, at - demo.started_ms - 1))
            early = conversion("purchase", at - before, 2_500)
            snapshots.append({"events": [early]})
            traffic.explain_visitor = traffic.explain_visitor or visitor_id
        visitors.append(_visitor(visitor_id, attributes, attribute_ids, snapshots))
    for i in range(20):  # visitors who converted but were never decided: not counted either
        event = conversion("purchase", rng.randint(first, last), 3_000)
        attributes = {"country": _pick(rng, COUNTRIES), "device": _pick(rng, DEVICES)}
        visitors.append(
            _visitor(f"undecided-{i:02d}", attributes, attribute_ids, [{"events": [event]}])
        )
    rng.shuffle(visitors)
    for start in range(0, len(visitors), _BATCH_VISITORS):
        traffic.bodies.append(
            {
                "account_id": datafile.account_id,
                "project_id": datafile.project_id,
                "revision": datafile.revision,
                "client_name": "liftlog-demo",
                "client_version": "1",
                "anonymize_ip": True,
                "enrich_decisions": True,
                "visitors": visitors[start : start + _BATCH_VISITORS],
            }
        )
    return traffic


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _visitor(
    visitor_id: str,
    attributes: dict[str, str],
    ids: dict[str, str],
    snapshots: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "visitor_id": visitor_id,
        "attributes": [
            {"entity_id": ids[k], "key": k, "type": "custom", "value": v}
            for k, v in attributes.items()
        ],
        "snapshots": snapshots,
    }


def send(base_url: str, traffic: Traffic, timeout_s: float = 60) -> int:
    """POST the bodies to ``base_url``'s Event API once it answers; the number of 204s.

    A 503 (the raw log is momentarily full) is retried after its ``Retry-After``.
    """
    _wait_until_up(base_url, timeout_s)
    sent = 0
    for body in traffic.bodies:
        data = json.dumps(body, separators=(",", ":")).encode()
        for _ in _attempts(timeout_s, "the server kept answering 503"):
            request = urllib.request.Request(
                f"{base_url}/v1/events", data=data, headers={"Content-Type": "application/json"}
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    sent += response.status == 204
                break
            except urllib.error.HTTPError as exc:
                if exc.code != 503:
                    raise
                time.sleep(float(exc.headers.get("Retry-After") or 1))
    return sent


def _attempts(timeout_s: float, failure: str) -> Iterator[int]:
    """Attempt numbers until ``timeout_s`` has passed, then `TimeoutError` (``failure``)."""
    deadline = time.monotonic() + timeout_s
    attempt = 0
    while time.monotonic() < deadline:
        yield attempt
        attempt += 1
    raise TimeoutError(failure)


def _wait_until_up(base_url: str, timeout_s: float) -> None:
    for _ in _attempts(timeout_s, f"the server at {base_url} did not answer"):
        try:
            with urllib.request.urlopen(f"{base_url}/healthz", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)


@dataclass(frozen=True)
class Removed:
    project_id: int
    rows_deleted: int
    pending_bytes: int


def remove(settings: Settings, catalog_url: str) -> Removed:
    """Delete the demo project from the catalog and its rows from the lake; forget the marker.

    Raises `FileNotFoundError` when this data directory has no demo.
    """
    # The lake's modules (Delta, Arrow) are imported here rather than with this module: the
    # server imports it at every start with ``--demo`` and never needs them.
    from liftlog.lake.erase import delete_project_rows
    from liftlog.lake.status import rawlog_status

    marker = read_marker(settings)
    if marker is None:
        raise FileNotFoundError(f"no demo in {settings.data_dir}")
    project_id = int(marker["project_id"])
    # NotFound: a removal that stopped before the lake's rows were gone
    with Catalog.open(catalog_url) as catalog, contextlib.suppress(NotFound):
        catalog.projects.delete(project_id)
    deleted = delete_project_rows(settings.lake_dir, project_id)
    (settings.data_dir / DEMO_FILE).unlink()
    return Removed(project_id, deleted, rawlog_status(settings)["pending_bytes"])
