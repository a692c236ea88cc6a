"""Results, timeseries, timeline and explain over HTTP, for an experiment made through the API."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest

from liftlog.analysis.counts import OtherValues
from liftlog.api.reports import Reports, segment_json
from liftlog.lake.loader import Loader
from liftlog.rawlog.record import Endpoint, RawRecord, encode_frame
from liftlog.rawlog.writer import SegmentWriter
from liftlog.settings import Settings
from tests.api.conftest import Api, error_of
from tests.api.worlds import build_world
from tests.server import FIXTURES


@pytest.fixture(scope="module")
def world(api: Api) -> dict[str, Any]:
    return build_world(api, "Results", lambda i: i % 4 < 2)


def test_results_api_counts_visitors_and_conversions(api: Api, world: dict[str, Any]) -> None:
    experiment_id = world["experiment"]["id"]
    with api.client(api.read) as r:
        doc = r.get(f"/v2/experiments/{experiment_id}/results").json()
    a, b = world["a"], world["b"]
    assert doc["method"] == "sequential" and doc["confidence_threshold"] == 0.9
    assert doc["reach"]["variations"][a]["count"] == 20
    assert doc["reach"]["variations"][b]["count"] == 20
    unique, revenue = doc["metrics"]
    # i % 4 in (0, 1) converts: a (even i) gets i % 4 == 0, b (odd i) gets i % 4 == 1
    assert unique["results"][a]["unique_conversions"] == 10
    assert unique["results"][b]["unique_conversions"] == 10
    expected_a = sum(100 * (i % 3 + 1) for i in range(0, 40, 4))
    assert revenue["results"][a]["revenue"] == expected_a
    assert unique["results"][b]["lift"]["status"] == "too_few_samples"
    assert doc["freshness"]["is_complete"] is True
    assert doc["sample_ratio_mismatch"]["is_mismatch"] is False


def test_results_api_methods_segments_and_csv(api: Api, world: dict[str, Any]) -> None:
    experiment_id = world["experiment"]["id"]
    base = f"/v2/experiments/{experiment_id}/results"
    with api.client(api.read) as r:
        fixed = r.get(base, params={"method": "fixed"}).json()
        assert fixed["metrics"][0]["results"][world["b"]]["lift"]["p_value"] is not None
        bayes = r.get(base, params={"method": "bayesian"}).json()
        assert "chance_to_beat_baseline" in bayes["metrics"][0]["results"][world["b"]]["lift"]
        segmented = r.get(base, params={"segment": "country"}).json()
        counts = {s["value"]: s["reach"]["total_count"] for s in segmented["segments"]}
        assert counts == {"DE": 20, "NL": 20}
        text = r.get(base, params={"format": "csv"})
        assert text.headers["content-type"].startswith("text/csv")
        assert len(list(csv.DictReader(io.StringIO(text.text)))) == 4
        by_country = r.get(base, params={"format": "csv", "segment": "country"}).text
        rows = list(csv.DictReader(io.StringIO(by_country)))
        assert [(row["segment"], row["segment_value"]) for row in rows[::2]] == [
            ("", ""), ("", ""), ("country", "DE"), ("country", "DE"), ("country", "NL"),
            ("country", "NL")]  # fmt: skip
        assert {row["visitors"] for row in rows if row["segment_value"] == "DE"} == {"10"}
        error_of(r.get(base, params={"method": "magic"}), 400)
        error_of(r.get("/v2/experiments/999999/results"), 404)
        # ids past 64 bits name nothing; a query integer is plain digits
        error_of(r.get("/v2/experiments/99999999999999999999999/results"), 404)
        error_of(r.get("/v2/experiments/-1/timeseries"), 404)
        timeline = "/v2/visitors/r0/timeline"
        for bad in ("99999999999999999999999", "1_0", "-1", " 7", "١٢"):
            problem = error_of(r.get(timeline, params={"experiment": bad}), 400)
            assert problem["details"][0]["path"] == "query.experiment"
    with api.client() as anonymous:
        error_of(anonymous.get(base), 401)


def test_results_api_timeseries(api: Api, world: dict[str, Any]) -> None:
    with api.client(api.read) as r:
        doc = r.get(f"/v2/experiments/{world['experiment']['id']}/timeseries").json()
    assert doc["points"]
    assert doc["points"][-1]["variations"][world["a"]]["visitors"] == 20


def test_results_api_timeline_and_explain(api: Api, world: dict[str, Any]) -> None:
    experiment_id = world["experiment"]["id"]
    with api.client(api.read) as r:
        timeline = r.get("/v2/visitors/r0/timeline", params={"experiment": experiment_id}).json()
        reasons = {e["uuid"]: e["disposition"] for e in timeline["events"]}
        assert reasons == {"too-early": "before_first_decision", "d0": "decision", "c0": "counted"}
        assert (timeline["events_total"], timeline["truncated"]) == (3, False)
        [early] = [e for e in timeline["events"] if e["uuid"] == "too-early"]
        assert "before the visitor's first decision" in early["reason"]
        explained = r.get("/v2/events/nobody/explain", params={"experiment": experiment_id})
        [event] = explained.json()["events"]
        assert event["disposition"] == "never_decided"
        error_of(r.get("/v2/visitors/r0/timeline"), 400)


def test_freshness_estimates_the_events_still_waiting(tmp_path: Path) -> None:
    """Events per raw-log byte loaded so far, times the bytes still waiting."""
    settings = Settings(data_dir=tmp_path)
    body = (FIXTURES / "events" / "sdk_track.json").read_bytes()  # one conversion event

    def frame(received_ms: int) -> bytes:
        return encode_frame(RawRecord(received_ms, Endpoint.V1_EVENTS, body))

    writer = SegmentWriter(settings.rawlog_dir / "w0", settings.segment_bytes)
    writer.write(b"".join(frame(1_000 + i) for i in range(4)))
    reports = Reports(settings, lambda: None)  # type: ignore[arg-type,return-value]
    assert reports.freshness()["events_waiting_estimate"] is None  # nothing loaded: no rate yet
    assert reports.freshness()["raw_log_bytes_waiting"] == 4 * len(frame(1_000))
    assert reports.freshness()["oldest_waiting_received"] == "1970-01-01T00:00:01Z"
    Loader(settings).drain()
    assert reports.freshness()["oldest_waiting_received"] is None
    writer.write(b"".join(frame(2_500 + i) for i in range(6)))
    writer.close()
    fresh = reports.freshness()
    assert fresh["is_complete"] is False
    assert fresh["raw_log_bytes_waiting"] == 6 * len(frame(1_000))
    assert fresh["events_waiting_estimate"] == 6
    assert fresh["oldest_waiting_received"] == "1970-01-01T00:00:02.500000Z"
    second = SegmentWriter(settings.rawlog_dir / "w1", settings.segment_bytes)  # --workers 2
    second.write(frame(2_000))
    second.close()
    assert reports.freshness()["oldest_waiting_received"] == "1970-01-01T00:00:02Z"


@pytest.mark.parametrize("method", ["sequential", "bayesian"])
def test_the_page_gets_from_one_pass_what_the_api_routes_return(
    api: Api, world: dict[str, Any], method: str
) -> None:
    """Without a segment, `Reports.page` takes the results and the primary metric's timeseries
    from one `count_daily` pass, or (with a visitor state kept, as the routes' requests left
    here) from the results brought up to date and the kept daily counts; either way they equal
    the two routes' documents."""
    experiment_id = world["experiment"]["id"]
    with api.client(api.read) as r:
        results = r.get(f"/v2/experiments/{experiment_id}/results", params={"method": method})
        series = r.get(f"/v2/experiments/{experiment_id}/timeseries", params={"method": method})
    with api.catalog() as catalog:
        doc, points = Reports(api.server.settings, lambda: catalog).page(experiment_id, method)
    assert _counted_once(doc) == _counted_once(results.json())
    assert _counted_once(points) == _counted_once(series.json())
    assert doc["reach"]["total_count"] == 40


def _counted_once(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` without when and how fast it was counted (here it was counted twice)."""
    freshness = dict(doc["freshness"])
    assert freshness["counted_at"].endswith("Z")
    assert freshness.pop("counting_seconds") >= 0
    assert freshness.pop("recount_by") >= freshness["counted_at"]
    del freshness["counted_at"]
    return {**doc, "freshness": freshness}


def test_the_overview_is_the_full_results_primary_metric(api: Api, world: dict[str, Any]) -> None:
    """The experiments list counts the primary metric alone; its figures are the full results'."""
    experiment_id = world["experiment"]["id"]
    with api.client(api.read) as r:
        full = r.get(f"/v2/experiments/{experiment_id}/results").json()
    with api.catalog() as catalog:
        overview = Reports(api.server.settings, lambda: catalog).overview(experiment_id)
    assert len(full["metrics"]) == 2 and len(overview["metrics"]) == 1
    assert overview["metrics"][0] == full["metrics"][0]
    for key in ("reach", "sample_ratio_mismatch", "method", "confidence_threshold"):
        assert overview[key] == full[key], key


def test_segment_values_in_documents() -> None:
    assert segment_json("NL") == {"value": "NL"}
    assert segment_json(None) == {"value": None}  # visitors without the attribute
    other = {"value": "(1,234 other values)", "other_values": 1234}
    assert segment_json(OtherValues(1234)) == other
