"""analysis._common: the distribution-free median interval the C-MAPSS claims use."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import binom

from analysis._common import median_interval


def test_median_interval_of_ten_is_second_to_ninth_order_statistic():
    # n = 10: j = 2 covers 1 − 2·11/1024 = 0.9785; j = 3 would cover 0.891 < 0.95
    x = np.array([9.0, 1.0, 4.0, 10.0, 2.0, 7.0, 3.0, 8.0, 6.0, 5.0])
    median, low, high, coverage = median_interval(x)
    assert (median, low, high) == (5.5, 2.0, 9.0)
    assert coverage == pytest.approx(1 - 2 * 11 / 1024, abs=1e-12)


def test_median_interval_too_few_values_gives_nan_bounds():
    # n = 5: even [min, max] covers only 1 − 2/32 = 0.9375 < 0.95
    median, low, high, coverage = median_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    assert median == 3.0 and math.isnan(low) and math.isnan(high) and math.isnan(coverage)
    assert all(math.isnan(v) for v in median_interval([]))


def test_median_interval_rejects_a_level_outside_the_unit_interval():
    for level in (0.0, 1.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="level"):
            median_interval([1.0, 2.0], level=level)


@given(n=st.integers(6, 60), level=st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_median_interval_coverage_is_exact_and_the_largest_j(n, level):
    x = np.arange(n, dtype=float)
    _, low, high, coverage = median_interval(x, level)
    if math.isnan(low):
        assert 1 - 2 * binom.cdf(0, n, 0.5) < level
        return
    j = int(low) + 1
    assert high == n - j  # symmetric order statistics
    assert coverage == pytest.approx(1 - 2 * binom.cdf(j - 1, n, 0.5), abs=1e-12)
    assert coverage >= level
    assert 1 - 2 * binom.cdf(j, n, 0.5) < level  # j + 1 would fall short


def test_median_interval_covers_a_skewed_median_in_monte_carlo():
    # log-normal (the spread of a peak ratio over seeds is skewed): true median e^0 = 1
    rng = np.random.default_rng(7)
    trials, n = 4000, 10
    hits = sum(low <= 1.0 <= high for _, low, high, _ in
               (median_interval(rng.lognormal(0.0, 1.0, n)) for _ in range(trials)))
    expected = 1 - 2 * 11 / 1024
    se = math.sqrt(expected * (1 - expected) / trials)
    assert abs(hits / trials - expected) <= 4 * se
