"""A real ``liftlog serve``, a user from ``liftlog user create``, an experiment with traffic.

The experiment is built as in ``tests/api/test_results_api.py``: through the management API, fed
through the Event API, loaded by the server's own loader.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.conftest import Api, created, start_api
from tests.api.test_results_api import batch

EMAIL = "ana@example.com"
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    served = start_api(tmp_path_factory.mktemp("web") / "data")
    try:
        made = subprocess.run(
            [sys.executable, "-m", "liftlog.cli", "user", "create", "--email", EMAIL,
             "--password-stdin", "--data", str(served.server.data_dir)],
            input=PASSWORD + "\n", capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        assert EMAIL in made.stdout
        yield served
    finally:
        served.server.stop()


@pytest.fixture(scope="module")
def world(web: Api) -> dict[str, Any]:
    """40 visitors split over a and b, 20 conversions, one too early, one never decided."""
    with web.client(web.write) as w:
        pid = created(w.post("/v2/projects", json={"name": "Web shop"}))["id"]
        purchase = created(w.post(f"/v2/projects/{pid}/custom_events", json={"key": "buy"}))
        experiment = created(
            w.post(
                "/v2/experiments",
                params={"action": "start"},
                json={
                    "project_id": pid,
                    "key": "checkout",
                    "variations": [{"key": "a", "weight": 5000}, {"key": "b", "weight": 5000}],
                    "metrics": [
                        {"event_id": purchase["id"], "aggregator": "unique"},
                        {"event_id": purchase["id"], "aggregator": "sum", "field": "revenue"},
                    ],
                },
            )
        )
    [a, b] = [str(v["variation_id"]) for v in experiment["variations"]]
    decision = {"campaign_id": str(experiment["campaign_id"]),
                "experiment_id": str(experiment["id"])}  # fmt: skip
    now = int(time.time() * 1000)
    sent = []
    for i in range(40):
        visitor = f"r{i}"
        sent.append(batch(visitor, [
            {"entity_id": decision["campaign_id"], "key": "campaign_activated",
             "timestamp": now + i, "uuid": f"d{i}"}],
            {**decision, "variation_id": a if i % 2 == 0 else b},
            country="NL" if i < 20 else "DE"))  # fmt: skip
        if i % 4 < 2 or i % 7 == 0:
            sent.append(batch(visitor, [{"entity_id": str(purchase["id"]), "key": "buy",
                                         "timestamp": now + 1000 + i, "uuid": f"c{i}",
                                         "revenue": 100 * (i % 3 + 1)}]))  # fmt: skip
    sent.append(batch("r0", [{"entity_id": str(purchase["id"]), "key": "buy",
                              "timestamp": now - 1, "uuid": "too-early"}]))  # fmt: skip
    with httpx.Client(base_url=web.url) as events:
        for body in sent:
            assert events.post("/v1/events", content=json.dumps(body)).status_code == 204
    web.server.wait_loaded()
    return {"project_id": pid, "experiment": experiment, "a": a, "b": b}


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def sign_in(client: httpx.Client, password: str = PASSWORD) -> httpx.Response:
    form = client.get("/ui/signin")
    assert form.status_code == 200
    return client.post(
        "/ui/signin",
        data={"csrf": csrf_of(form.text), "email": EMAIL, "password": password,
              "next": "/ui/projects"},
    )  # fmt: skip


@pytest.fixture
def browser_client(web: Api) -> Iterator[httpx.Client]:
    """An httpx client that has signed in, as a browser would (cookie jar, forms)."""
    with httpx.Client(base_url=web.url, timeout=30) as client:
        assert sign_in(client).status_code == 303
        yield client
