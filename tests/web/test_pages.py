"""The results page shows the API's numbers; the debugger says why an event did not count."""

from __future__ import annotations

import csv
import io
import json
import re
import time
from typing import Any

import httpx
import pytest

from tests.api.conftest import Api
from tests.api.worlds import batch
from tests.web.reading import assert_shows, tables_of


@pytest.mark.parametrize("method", ["sequential", "fixed", "bayesian"])
def test_results_page_equals_the_results_api(
    web: Api, world: dict[str, Any], browser_client: httpx.Client, method: str
) -> None:
    experiment_id = world["experiment"]["id"]
    with web.client(web.read) as api:
        doc = api.get(f"/v2/experiments/{experiment_id}/results", params={"method": method})
    page = browser_client.get(f"/ui/experiments/{experiment_id}", params={"method": method})
    assert page.status_code == 200
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert len(doc.json()["metrics"]) == 2
    assert_shows(tables_of(page.text)[""], doc.json())
    reach = doc.json()["reach"]
    assert f"Visitors</dt><dd>{reach['total_count']:,}:" in page.text
    assert "complete up to" in page.text
    assert f'/ui/debugger?experiment={experiment_id}"' in page.text
    assert '<svg class="chart"' in page.text  # the improvement and visitors charts


def test_results_page_segments_and_csv(
    web: Api, world: dict[str, Any], browser_client: httpx.Client
) -> None:
    experiment_id = world["experiment"]["id"]
    page = browser_client.get(f"/ui/experiments/{experiment_id}", params={"segment": "country"})
    assert page.status_code == 200
    assert "country = DE" in page.text and "country = NL" in page.text
    with web.client(web.read) as api:
        doc = api.get(f"/v2/experiments/{experiment_id}/results", params={"segment": "country"})
    shown = tables_of(page.text)
    assert set(shown) == {"", "DE", "NL"}
    assert_shows(shown[""], doc.json())
    for part in doc.json()["segments"]:
        assert_shows(shown[part["value"]], part)
    download = browser_client.get(f"/ui/experiments/{experiment_id}/results.csv")
    assert download.headers["content-type"].startswith("text/csv")
    with web.client(web.read) as api:
        served = api.get(f"/v2/experiments/{experiment_id}/results", params={"format": "csv"})
    assert list(csv.reader(io.StringIO(download.text))) == list(
        csv.reader(io.StringIO(served.text))
    )
    bad = browser_client.get(f"/ui/experiments/{experiment_id}", params={"method": "magic"})
    assert bad.status_code == 400 and "text/html" in bad.headers["content-type"]


def test_experiments_list_shows_status_and_visitors(
    world: dict[str, Any], browser_client: httpx.Client
) -> None:
    page = browser_client.get(f"/ui/projects/{world['project_id']}")
    assert page.status_code == 200
    row = re.search(r"checkout</a></th>(.*?)</tr>", page.text, re.S)
    assert row, page.text
    assert "running" in row.group(1) and ">40<" in row.group(1)
    assert '<td class="num">0.0</td>' in row.group(1)  # days running: started minutes ago
    assert "not enough data yet" in row.group(1)


def test_debugger_shows_why_a_conversion_was_excluded(
    world: dict[str, Any], browser_client: httpx.Client
) -> None:
    experiment_id = world["experiment"]["id"]
    for q in ("r0", "too-early"):  # by visitor id, and by the event's uuid
        page = browser_client.get("/ui/debugger", params={"q": q, "experiment": experiment_id})
        assert page.status_code == 200
        row = re.search(r'<tr data-uuid="too-early"[^>]*>(.*?)</tr>', page.text, re.S)
        assert row, page.text
        assert "before_first_decision" in row.group(1)
        assert "before the visitor&#39;s first decision" in row.group(1)
        assert re.search(r'<tr data-uuid="c0"[^>]*>.*?<code>counted</code>', page.text, re.S)


def test_debugger_finds_the_experiments_itself(
    world: dict[str, Any], browser_client: httpx.Client
) -> None:
    experiment_id = world["experiment"]["id"]
    page = browser_client.get("/ui/debugger", params={"q": "too-early"})  # no experiment given
    assert page.status_code == 200
    assert f'<table class="timeline" data-experiment-id="{experiment_id}">' in page.text
    row = re.search(r'<tr data-uuid="too-early"[^>]*>(.*?)</tr>', page.text, re.S)
    assert row and "before_first_decision" in row.group(1), page.text
    never = browser_client.get("/ui/debugger", params={"q": "stranger"})
    assert 'class="timeline"' not in never.text
    assert "No experiment of yours decided <code>stranger</code>" in never.text
    given = browser_client.get(
        "/ui/debugger", params={"q": "stranger", "experiment": experiment_id}
    )
    assert re.search(r'<tr data-uuid="nobody"[^>]*>.*?never_decided', given.text, re.S), given.text


def test_debugger_finds_an_experiment_named_after_a_visitors_first_thousand_events(
    web: Api, world: dict[str, Any], browser_client: httpx.Client
) -> None:
    """The experiments to show come from all of the visitor's events, not the ones shown."""
    experiment = world["experiment"]
    decision = {"campaign_id": str(experiment["campaign_id"]),
                "experiment_id": str(experiment["id"]), "variation_id": world["a"]}  # fmt: skip
    now = int(time.time() * 1000)
    early = [{"key": "browse", "timestamp": now - 5_000 + i, "uuid": f"busy-{i}"}
             for i in range(1_000)]  # fmt: skip
    late = {"key": "buy", "timestamp": now, "uuid": "busy-late"}  # in a snapshot naming it
    with httpx.Client(base_url=web.url) as events:
        for body in (batch("busy", early), batch("busy", [late], decision)):
            assert events.post("/v1/events", content=json.dumps(body)).status_code == 204
    web.server.wait_loaded()
    page = browser_client.get("/ui/debugger", params={"q": "busy"})
    assert page.status_code == 200
    assert f'<table class="timeline" data-experiment-id="{experiment["id"]}">' in page.text
    assert "1,001 stored events; the oldest 1,000 are shown" in page.text


def test_debugger_takes_only_plain_digits_as_an_experiment_id(
    world: dict[str, Any], browser_client: httpx.Client
) -> None:
    experiment_id = str(world["experiment"]["id"])
    for bad in (f"{experiment_id[0]}_{experiment_id[1:]}", "-1", "\u0661\u0662", "1e3"):
        page = browser_client.get("/ui/debugger", params={"q": "r0", "experiment": bad})
        assert page.status_code == 400, bad
        assert 'class="timeline"' not in page.text
    assert browser_client.get("/ui/debugger", params={"experiment": "9" * 30}).status_code == 400


def test_pages_hide_other_accounts_projects(web: Api, browser_client: httpx.Client) -> None:
    with web.client(web.other_account_write) as other:
        theirs = other.post("/v2/projects", json={"name": "Not yours"}).json()
    page = browser_client.get(f"/ui/projects/{theirs['id']}")
    assert page.status_code == 404
    assert "Not yours" not in browser_client.get("/ui/projects").text


def test_pages_for_ids_past_64_bits_are_not_found(browser_client: httpx.Client) -> None:
    huge = "99999999999999999999999"
    for path in (f"/ui/projects/{huge}", f"/ui/experiments/{huge}",
                 f"/ui/experiments/{huge}/results.csv"):  # fmt: skip
        assert browser_client.get(path).status_code == 404, path
    debugger = browser_client.get("/ui/debugger", params={"experiment": huge, "q": "r0"})
    assert debugger.status_code in (400, 404)
