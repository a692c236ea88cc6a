"""liftlog's Bayesian engine (and shared pieces) against GrowthBook's gbstats on the same inputs.

gbstats runs in its own virtual environment (see conftest.py). Cases are sufficient statistics of
data simulated with a seeded generator. Starting gbstats takes seconds, so every case of this
module goes to it in one batch (the ``gb`` fixture) and each test reads its share.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from liftlog.stats import (
    BayesianComparison,
    GaussianPrior,
    MetricKind,
    Scale,
    SuffStats,
    bayesian,
    fixed_horizon,
    srm_check,
)
from tests.stats.conftest import GbStats

# gbstats computes the same closed forms along other paths (truncated-normal means for the risk,
# ``1 - cdf`` for p-values); agreement is to rounding, far inside gbstats' own 5-decimal tests.
REL = 1e-9
ABS = 1e-12

Pair = tuple[MetricKind, SuffStats, SuffStats]
PRIORS = [None, GaussianPrior(mean=0.02, variance=0.05**2)]
DEGENERATE = [
    (SuffStats(0, 0, 0), SuffStats(100, 10, 10)),  # empty baseline
    (SuffStats(100, 10, 10), SuffStats(0, 0, 0)),  # empty variation
    (SuffStats(100, 0, 0), SuffStats(100, 10, 10)),  # 0% baseline: zero variance
    (SuffStats(100, 100, 100), SuffStats(100, 10, 10)),  # 100% baseline: zero variance
    (SuffStats(100, 10, 10), SuffStats(100, 100, 100)),  # 100% variation: zero variance
]


def _simulated_pairs(seed: int, count: int) -> list[Pair]:
    rng = np.random.default_rng(seed)
    pairs = []
    for i in range(count):
        kind = (MetricKind.UNIQUE, MetricKind.COUNT, MetricKind.SUM)[i % 3]
        arms = []
        for _ in range(2):
            n = int(rng.integers(30, 3000))
            if kind is MetricKind.UNIQUE:
                values = rng.binomial(1, rng.uniform(0.02, 0.6), n)
            elif kind is MetricKind.COUNT:
                values = rng.poisson(rng.uniform(0.1, 3.0), n)
            else:  # revenue in cents: most visitors buy nothing
                values = rng.binomial(1, 0.1, n) * rng.integers(100, 20_000, n)
            arms.append(SuffStats.from_values([int(v) for v in values]))
        pairs.append((kind, arms[0], arms[1]))
    return pairs


BAYES_PAIRS = _simulated_pairs(seed=20240611, count=60)
TTEST_PAIRS = [p for p in _simulated_pairs(seed=7, count=90) if p[0] is not MetricKind.UNIQUE]


def _srm_cases() -> list[dict[str, Any]]:
    rng = np.random.default_rng(11)
    cases = []
    for _ in range(40):
        arms = int(rng.integers(2, 5))
        weights = [float(w) for w in rng.uniform(0.1, 1.0, arms)]
        total = int(rng.integers(50, 50_000))
        users = [int(u) for u in rng.multinomial(total, np.ones(arms) / arms)]
        cases.append({"op": "srm", "users": users, "weights": weights})
    return cases


SRM_CASES = _srm_cases()


def _arm(stats: SuffStats) -> dict[str, Any]:
    return {"n": stats.n, "sum": stats.sum, "sum_sq": stats.sum_sq}


def _bayes_case(
    pair: Pair, level: float, scale: Scale, inverse: bool, prior: GaussianPrior | None
) -> dict[str, Any]:
    kind, a, b = pair
    return {
        "op": "bayes",
        "kind": "binomial" if kind is MetricKind.UNIQUE else "count",
        "a": _arm(a),
        "b": _arm(b),
        "alpha": 1 - level,
        "difference_type": scale.value,
        "inverse": inverse,
        "prior": {
            "mean": prior.mean if prior else 0.0,
            "variance": prior.variance if prior else 1.0,
            "proper": prior is not None,
        },
    }


def _ttest_case(pair: Pair, level: float, difference_type: str) -> dict[str, Any]:
    _, a, b = pair
    return {
        "op": "ttest",
        "kind": "count",
        "a": _arm(a),
        "b": _arm(b),
        "alpha": 1 - level,
        "difference_type": difference_type,
    }


def _key(*parts: object) -> str:
    return "-".join(str(p) for p in parts)


@pytest.fixture(scope="module")
def gb(gbstats: GbStats) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for scale in Scale:
        for inverse in (False, True):
            for i, prior in enumerate(PRIORS):
                groups[_key("bayes", scale, inverse, i)] = [
                    _bayes_case(pair, 0.90, scale, inverse, prior) for pair in BAYES_PAIRS
                ]
    groups["degenerate"] = [
        _bayes_case((MetricKind.UNIQUE, a, b), 0.90, Scale.RELATIVE, False, None)
        for a, b in DEGENERATE
    ]
    for difference_type in ("relative", "absolute"):
        groups[_key("ttest", difference_type)] = [
            _ttest_case(pair, 0.95, difference_type) for pair in TTEST_PAIRS
        ]
    groups["srm"] = SRM_CASES
    results = iter(gbstats([case for cases in groups.values() for case in cases]))
    return {key: [next(results) for _ in cases] for key, cases in groups.items()}


@pytest.mark.parametrize("scale", list(Scale))
@pytest.mark.parametrize("inverse", [False, True])
@pytest.mark.parametrize("prior_index", range(len(PRIORS)))
def test_bayesian_equals_gbstats(
    gb: dict[str, list[dict[str, Any]]], scale: Scale, inverse: bool, prior_index: int
) -> None:
    prior = PRIORS[prior_index]
    theirs = gb[_key("bayes", scale, inverse, prior_index)]
    compared = 0
    for (kind, a, b), gbr in zip(BAYES_PAIRS, theirs, strict=True):
        mine = bayesian(a, b, kind=kind, level=0.90, scale=scale, prior=prior, inverse=inverse)
        assert (mine.chance_to_beat is None) == (gbr["error"] is not None), (mine, gbr)
        if gbr["error"] is None:
            _assert_bayesian_equal(mine, gbr)
            compared += 1
    assert compared >= 50  # the comparison covers the cases, not just their refusals


def _assert_bayesian_equal(mine: BayesianComparison, gbr: dict[str, Any]) -> None:
    assert mine.credible_interval is not None
    assert mine.chance_to_beat == pytest.approx(gbr["chance_to_win"], rel=REL, abs=ABS)
    assert mine.posterior_mean == pytest.approx(gbr["expected"], rel=REL, abs=ABS)
    assert mine.posterior_sd == pytest.approx(gbr["stddev"], rel=REL, abs=ABS)
    assert mine.credible_interval.low == pytest.approx(gbr["ci"][0], rel=REL, abs=ABS)
    assert mine.credible_interval.high == pytest.approx(gbr["ci"][1], rel=REL, abs=ABS)
    assert mine.baseline_expected_loss == pytest.approx(gbr["risk"][0], rel=REL, abs=ABS)
    assert mine.expected_loss == pytest.approx(gbr["risk"][1], rel=REL, abs=ABS)


def test_bayesian_degenerate_where_gbstats_refuses(gb: dict[str, list[dict[str, Any]]]) -> None:
    for (a, b), gbr in zip(DEGENERATE, gb["degenerate"], strict=True):
        mine = bayesian(a, b, kind=MetricKind.UNIQUE)
        assert gbr["error"] is not None  # gbstats returns its uninformative default...
        assert not mine.status.decidable  # ...where liftlog returns a status and no numbers
        assert mine.chance_to_beat is None and mine.expected_loss is None


@pytest.mark.parametrize("difference_type", ["relative", "absolute"])
def test_welch_and_delta_method_equal_gbstats_ttest(
    gb: dict[str, list[dict[str, Any]]], difference_type: str
) -> None:
    """For count/sum metrics gbstats' TwoSidedTTest is Welch's t test with the delta-method lift."""
    compared = 0
    for (kind, a, b), gbr in zip(TTEST_PAIRS, gb[_key("ttest", difference_type)], strict=True):
        mine = fixed_horizon(a, b, kind=kind, level=0.95)
        if gbr["error"] is not None:
            assert not mine.status.decidable
            continue
        compared += 1
        if difference_type == "relative":
            estimate, interval = mine.lift, mine.lift_interval
        else:
            estimate, interval = mine.difference, mine.difference_interval
            assert mine.p_value == pytest.approx(gbr["p_value"], abs=1e-9)
        assert interval is not None
        assert estimate == pytest.approx(gbr["expected"], rel=REL, abs=ABS)
        assert interval.low == pytest.approx(gbr["ci"][0], rel=REL, abs=ABS)
        assert interval.high == pytest.approx(gbr["ci"][1], rel=REL, abs=ABS)
    assert compared >= 40


def test_srm_equals_gbstats(gb: dict[str, list[dict[str, Any]]]) -> None:
    for case, gbr in zip(SRM_CASES, gb["srm"], strict=True):
        mine = srm_check(case["users"], case["weights"])
        assert mine.p_value == pytest.approx(gbr["p_value"], rel=REL, abs=ABS)
