"""Pure statistics on mergeable sufficient statistics (numpy and scipy only).

Pure: no I/O, no clock, no global randomness. One module per concept:

    suffstats    SuffStats (n, Σy, Σy², converters, covariate sums) and their merge
    contrast     a (baseline, variation) pair: status, means, variances, delta method
    sequential   mixture SPRT: always-valid p-values and intervals (the default method)
    frequentist  fixed-horizon z test (conversion rates) and Welch t test (means)
    bayesian     chance to beat the baseline and expected loss (gbstats' model)
    fdr          Benjamini–Hochberg q-values over a family of comparisons
    srm          sample ratio mismatch: chi-square and sequential Dirichlet–multinomial
    results      Status, Interval and the frozen result records
"""

from liftlog.stats.bayesian import GaussianPrior, bayesian
from liftlog.stats.fdr import apply_fdr, benjamini_hochberg
from liftlog.stats.frequentist import fixed_horizon
from liftlog.stats.results import (
    BayesianComparison,
    Comparison,
    Interval,
    Method,
    Scale,
    SrmResult,
    Status,
)
from liftlog.stats.sequential import SequentialConfig, mixing_ratio_for, msprt
from liftlog.stats.srm import sequential_srm_check, srm_check
from liftlog.stats.suffstats import MetricKind, SuffStats, merge_all

__all__ = [
    "BayesianComparison",
    "Comparison",
    "GaussianPrior",
    "Interval",
    "Method",
    "MetricKind",
    "Scale",
    "SequentialConfig",
    "SrmResult",
    "Status",
    "SuffStats",
    "apply_fdr",
    "bayesian",
    "benjamini_hochberg",
    "fixed_horizon",
    "merge_all",
    "mixing_ratio_for",
    "msprt",
    "sequential_srm_check",
    "srm_check",
]
