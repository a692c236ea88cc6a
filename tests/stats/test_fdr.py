"""Benjamini–Hochberg q-values equal statsmodels; families are adjusted as documented."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from statsmodels.stats.multitest import multipletests

from liftlog.stats import (
    MetricKind,
    SequentialConfig,
    Status,
    SuffStats,
    apply_fdr,
    benjamini_hochberg,
    msprt,
)

pvalues = st.lists(st.floats(0.0, 1.0), min_size=1, max_size=50)


@given(pvalues)
def test_benjamini_hochberg_equals_statsmodels(ps: list[float]) -> None:
    _, expected, _, _ = multipletests(np.array(ps), method="fdr_bh")
    assert benjamini_hochberg(ps) == pytest.approx(tuple(expected), abs=1e-12)


@given(pvalues, st.floats(0.01, 0.3))
def test_benjamini_hochberg_rejections_are_the_step_up_procedure(ps: list[float], q: float) -> None:
    m = len(ps)
    ranked = sorted(ps)
    k = max((i for i in range(1, m + 1) if ranked[i - 1] <= i * q / m), default=0)
    threshold = ranked[k - 1] if k else -1.0
    # q-values and the step-up rule agree away from the floating-point boundary
    for p, qv in zip(ps, benjamini_hochberg(ps), strict=True):
        if abs(qv - q) > 1e-12:
            assert (qv <= q) == (p <= threshold)
        assert qv >= p - 1e-15  # q ≥ p, up to the rounding of m·p/m


def test_benjamini_hochberg_hand_computed() -> None:
    # sorted 0.01, 0.03, 0.04, 0.5 → m·p/rank = 0.04, 0.06, 0.0533, 0.5 → running minimum
    # from the top: 0.5, 0.0533, 0.0533, 0.04; back in input order:
    assert benjamini_hochberg([0.01, 0.04, 0.03, 0.5]) == pytest.approx(
        (0.04, 0.16 / 3, 0.16 / 3, 0.5)
    )
    assert benjamini_hochberg([]) == ()
    with pytest.raises(ValueError):
        benjamini_hochberg([1.2])


def _comparison(conv_b: int) -> object:
    config = SequentialConfig(min_visitors=0, min_conversions=0)
    return msprt(
        SuffStats(4000, 400, 400),
        SuffStats(4000, conv_b, conv_b),
        kind=MetricKind.UNIQUE,
        config=config,
    )


def test_apply_fdr_sets_q_values_and_significance_within_the_family() -> None:
    family = [_comparison(c) for c in (520, 490, 480, 400)]
    adjusted = apply_fdr(family)  # type: ignore[arg-type]
    raw = [c.p_value for c in family]  # type: ignore[attr-defined]
    expected = benjamini_hochberg(raw)
    assert [a.q_value for a in adjusted] == pytest.approx(expected)
    for a in adjusted:
        assert a.is_significant == (a.q_value is not None and a.q_value <= 1 - 0.9)
        assert a.significance == pytest.approx(1 - a.q_value)
    # a variation significant on its own can lose significance once its family is adjusted
    assert any(
        c.is_significant and not a.is_significant for c, a in zip(family, adjusted, strict=True)
    )  # type: ignore[attr-defined]


def test_apply_fdr_counts_missing_p_values_as_one() -> None:
    good = _comparison(520)
    empty = msprt(SuffStats(0, 0, 0), SuffStats(0, 0, 0), kind=MetricKind.UNIQUE)
    adjusted = apply_fdr([good, empty])  # type: ignore[list-item]
    assert adjusted[1].status is Status.NO_VISITORS and adjusted[1].q_value is None
    assert adjusted[0].q_value == pytest.approx(min(1.0, 2 * good.p_value))  # type: ignore[attr-defined]


def test_apply_fdr_rejects_mixed_levels() -> None:
    a = _comparison(500)
    b = dataclasses.replace(a, level=0.95)  # type: ignore[type-var]
    with pytest.raises(ValueError, match="level"):
        apply_fdr([a, b])  # type: ignore[list-item]
