"""False-discovery-rate control across many comparisons (Benjamini & Hochberg, 1995).

Optimizely's Stats Engine controls the FDR of its winner/loser declarations. liftlog applies the
Benjamini–Hochberg step-up procedure to the always-valid p-values of one *family*: the primary
metric's comparisons (one per variation) form a family of their own, so adding secondary metrics
never slows the primary metric down; all other metrics (secondary and monitoring) × all
variations form a second family. The caller forms the families; this module adjusts one.

The BH-adjusted p-value (q-value) of the i-th smallest of m p-values is
``q_(i) = min_{j >= i} min(1, m p_(j) / j)``; rejecting every hypothesis with ``q <= α`` is exactly
the BH procedure at level α.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from liftlog.stats.results import Comparison


def benjamini_hochberg(pvalues: Sequence[float]) -> tuple[float, ...]:
    """BH q-values, in the order of ``pvalues`` (each in [0, 1]; ``ValueError`` otherwise)."""
    if any(not 0.0 <= p <= 1.0 for p in pvalues):
        raise ValueError("p-values must be in [0, 1]")
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    qvalues = [0.0] * m
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, m * pvalues[i] / rank)
        qvalues[i] = running
    return tuple(qvalues)


def apply_fdr(family: Sequence[Comparison]) -> tuple[Comparison, ...]:
    """Set ``q_value`` and ``is_significant`` for every comparison of one family.

    A comparison without a p-value (degenerate data) counts as ``p = 1`` in the family size, so a
    variation that has no data yet cannot make the others look more significant, and keeps
    ``q_value = None``. All members must share one ``level`` (``ValueError`` otherwise).
    Intervals are left at their nominal level.
    """
    levels = {c.level for c in family}
    if len(levels) > 1:
        raise ValueError(f"one family must share one level, got {sorted(levels)}")
    qvalues = benjamini_hochberg([1.0 if c.p_value is None else c.p_value for c in family])
    adjusted = []
    for c, q in zip(family, qvalues, strict=True):
        if c.p_value is None:
            adjusted.append(dataclasses.replace(c, q_value=None, is_significant=False))
            continue
        significant = c.status.decidable and q <= 1.0 - c.level
        adjusted.append(dataclasses.replace(c, q_value=q, is_significant=significant))
    return tuple(adjusted)
