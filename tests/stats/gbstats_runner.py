"""Run GrowthBook's gbstats on JSON cases from stdin; print its outputs as JSON on stdout.

Executed by the test suite with the interpreter of a separate virtual environment that has
``gbstats`` (which pins numpy < 2) installed. Each case is an object::

    {"op": "bayes" | "ttest" | "srm",
     "kind": "binomial" | "count",
     "a": {"n", "sum", "sum_sq"}, "b": {"n", "sum", "sum_sq"},   # baseline, variation
     "alpha": float, "difference_type": "relative" | "absolute",
     "inverse": bool, "prior": {"mean", "variance", "proper"},     # bayes only
     "users": [int], "weights": [float]}                          # srm only
"""

import json
import math
import sys

from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig, GaussianPrior
from gbstats.frequentist.tests import FrequentistConfig, TwoSidedTTest
from gbstats.models.statistics import ProportionStatistic, SampleMeanStatistic
from gbstats.utils import check_srm


def statistic(kind, arm):
    if kind == "binomial":
        return ProportionStatistic(n=arm["n"], sum=arm["sum"])
    return SampleMeanStatistic(n=arm["n"], sum=arm["sum"], sum_squares=arm["sum_sq"])


def finite(x):
    x = float(x)
    return x if math.isfinite(x) else None


def run(case):
    if case["op"] == "srm":
        return {"p_value": float(check_srm(case["users"], case["weights"]))}
    a, b = statistic(case["kind"], case["a"]), statistic(case["kind"], case["b"])
    if case["op"] == "ttest":
        config = FrequentistConfig(alpha=case["alpha"], difference_type=case["difference_type"])
        r = TwoSidedTTest(a, b, config).compute_result()
        return {
            "expected": finite(r.expected),
            "ci": [finite(v) for v in r.ci],
            "p_value": finite(r.p_value),
            "error": r.error_message,
        }
    p = case["prior"]
    config = EffectBayesianConfig(
        alpha=case["alpha"],
        difference_type=case["difference_type"],
        inverse=case["inverse"],
        prior_type="relative",
        prior_effect=GaussianPrior(mean=p["mean"], variance=p["variance"], proper=p["proper"]),
    )
    r = EffectBayesianABTest(a, b, config).compute_result()
    return {
        "chance_to_win": finite(r.chance_to_win),
        "expected": finite(r.expected),
        "ci": [finite(v) for v in r.ci],
        "stddev": finite(r.uplift.stddev),
        "risk": [finite(v) for v in r.risk],
        "error": r.error_message,
    }


json.dump([run(case) for case in json.load(sys.stdin)], sys.stdout)
