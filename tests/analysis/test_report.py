"""The results document: counts and statistics put together, in JSON and CSV."""

from __future__ import annotations

import csv
import io

import pytest

from liftlog.analysis.counting import Counts, count
from liftlog.analysis.sources import connect
from liftlog.report import Arm, build_results, results_csv
from liftlog.stats import MetricKind, SuffStats, fixed_horizon
from tests.analysis.lakes import build_lake
from tests.analysis.test_counting import LEGACY, SPEC, scenario

ARMS = (Arm("301", "control", 5000), Arm("302", "treatment", 5000))


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


def test_report_flags_a_sample_ratio_mismatch(counts: Counts) -> None:
    skewed = (Arm("301", "control", 9999), Arm("302", "treatment", 1))
    doc = build_results(SPEC, skewed, counts)
    assert doc["sample_ratio_mismatch"]["is_mismatch"] is True
    assert build_results(SPEC, ARMS, counts)["sample_ratio_mismatch"]["is_mismatch"] is False
