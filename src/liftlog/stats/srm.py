"""Sample ratio mismatch: are visitors split across variations as the traffic weights say?

Two verdicts on the same counts:

* `srm_check`, Pearson's chi-square goodness-of-fit test against the configured weights (as
  GrowthBook's ``check_srm``), flagged at ``p < 0.001``. Valid when read once.
* `sequential_srm_check`, the sequential test Optimizely uses (Lindon & Malek, "Anytime-Valid
  Inference for Multinomial Count Data", NeurIPS 2022): a Dirichlet–multinomial Bayes factor
  against the multinomial with the intended allocation ``p0``, with prior ``Dir(c · p0)``
  (``c = 10 000``), and the always-valid p-value ``min(p_prev, 1/BF)``. The Bayes factor of a
  sequence of batches is the product of their posterior-predictive ratios, which telescopes to a
  function of the running totals alone::

      ln BF = ln Γ(Σα) - Σ ln Γ(α_i) + Σ ln Γ(α_i + n_i) - ln Γ(Σα + N) - Σ n_i ln p0_i

  so the test needs only the current counts (and the previous p-value to keep its running
  minimum).

Arms with weight 0 take no traffic: if such an arm has visitors, the split is mismatched outright
(p = 0); if it has none, it is left out. Invalid input (lengths differ, negative counts or weights,
no positive weight) raises ``ValueError``; degenerate data (no visitors, one arm) is a `Status`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from scipy import special

from liftlog.stats.results import SrmResult, Status

DEFAULT_THRESHOLD = 0.001
DEFAULT_CONCENTRATION = 10_000.0


def srm_check(
    counts: Sequence[int], weights: Sequence[float], *, threshold: float = DEFAULT_THRESHOLD
) -> SrmResult:
    """Chi-square test of ``counts`` (visitors per arm) against ``weights`` (any positive scale)."""
    arms = _arms(counts, weights, threshold)
    if isinstance(arms, SrmResult):
        return _named(arms, "chi_square")
    observed, expected_share = arms
    total = sum(observed)
    statistic = sum(
        (o - p * total) ** 2 / (p * total) for o, p in zip(observed, expected_share, strict=True)
    )
    p_value = float(special.chdtrc(len(observed) - 1, statistic))  # scipy.stats.chi2.sf
    return SrmResult("chi_square", Status.OK, statistic, p_value, threshold, p_value < threshold)


def sequential_srm_check(
    counts: Sequence[int],
    weights: Sequence[float],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    concentration: float = DEFAULT_CONCENTRATION,
    previous: SrmResult | None = None,
) -> SrmResult:
    """Always-valid SRM test on the running ``counts``; pass the last look's result as ``previous``.

    ``statistic`` is the Bayes factor (``inf`` when it overflows a float).
    """
    if not concentration > 0:
        raise ValueError(f"concentration must be > 0, got {concentration}")
    if previous is not None and previous.method != "sequential":
        raise ValueError("previous must be a sequential SRM result")
    arms = _arms(counts, weights, threshold)
    if isinstance(arms, SrmResult):
        return _named(arms, "sequential")
    observed, p0 = arms
    prior = [concentration * p for p in p0]
    log_bf = (
        special.gammaln(sum(prior))
        - sum(special.gammaln(a) for a in prior)
        + sum(special.gammaln(a + n) for a, n in zip(prior, observed, strict=True))
        - special.gammaln(sum(prior) + sum(observed))
        - sum(n * math.log(p) for n, p in zip(observed, p0, strict=True))
    )
    p_value = min(1.0, math.exp(-log_bf))
    if previous is not None and previous.p_value is not None:
        p_value = min(p_value, previous.p_value)
    bayes_factor = math.exp(log_bf) if log_bf < 700 else math.inf
    return SrmResult("sequential", Status.OK, bayes_factor, p_value, threshold, p_value < threshold)


def _arms(
    counts: Sequence[int], weights: Sequence[float], threshold: float
) -> tuple[list[int], list[float]] | SrmResult:
    """Validate; return (counts, expected shares) of the weighted arms, or a finished verdict."""
    if len(counts) != len(weights):
        raise ValueError(f"{len(counts)} counts but {len(weights)} weights")
    if any(c < 0 for c in counts) or any(not w >= 0 or not math.isfinite(w) for w in weights):
        raise ValueError("counts and weights must be >= 0 and finite")
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    total_weight = sum(weights)
    if total_weight <= 0:
        raise ValueError("at least one weight must be > 0")
    if sum(counts) == 0:
        return SrmResult("", Status.NO_VISITORS, None, None, threshold, False)
    if any(c > 0 and w == 0 for c, w in zip(counts, weights, strict=True)):
        return SrmResult("", Status.OK, math.inf, 0.0, threshold, True)
    kept = [(c, w / total_weight) for c, w in zip(counts, weights, strict=True) if w > 0]
    if len(kept) < 2:
        return SrmResult("", Status.ONE_ARM, None, None, threshold, False)
    return [c for c, _ in kept], [p for _, p in kept]


def _named(result: SrmResult, method: str) -> SrmResult:
    return SrmResult(
        method,
        result.status,
        result.statistic,
        result.p_value,
        result.threshold,
        result.is_mismatch,
    )
