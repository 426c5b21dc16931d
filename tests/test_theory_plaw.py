"""The P-law identity and the raw-weight range (gaba_control.theory.plaw)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose

from gaba_control.formulas import raw_weights
from gaba_control.theory import plaw

KS = [2, 3, 5, 8]


def _valid_norms():
    return st.integers(2, 10).flatmap(
        lambda k: arrays(np.float64, (k,), elements=st.floats(0.0, 1e6, allow_subnormal=False))
    ).filter(lambda g: g.max() > 0)


@given(_valid_norms())
def test_identity_holds_and_matches_the_loop(g):
    ident = plaw.proportional_law_identity(g)
    assert ident.holds(atol=1e-12)
    assert_allclose(ident.proportional_law, raw_weights(g), rtol=0, atol=1e-15)
    low, high = plaw.raw_weight_range(g.size)
    assert np.all(ident.closed_form >= low - 1e-15)
    assert np.all(ident.closed_form <= high + 1e-15)
    assert ident.closed_form.sum() == pytest.approx(1.0, abs=1e-12)


def test_identity_is_vectorised_and_detects_a_difference():
    rng = np.random.default_rng(0)
    g = rng.exponential(size=(50, 4))
    ident = plaw.proportional_law_identity(g)
    assert ident.proportional_law.shape == (50, 4)
    assert ident.holds()
    broken = plaw.ProportionalLawIdentity(ident.proportional_law, ident.closed_form + 1e-6, 1e-6)
    assert not broken.holds()


@pytest.mark.parametrize("k", KS)
def test_range_ends_are_attained_exactly_where_documented(k):
    low, high = plaw.raw_weight_range(k)
    assert (low, high) == (0.0, pytest.approx(1 / (k - 1)))
    for task in range(k):
        g_low, g_high = plaw.raw_weight_attainers(k, task)
        assert raw_weights(g_low)[task] == pytest.approx(low, abs=1e-15)
        assert raw_weights(g_high)[task] == pytest.approx(high, rel=1e-15)
    # upper end for ANY zero-gradient task; lower end only when every other norm is zero
    g = np.array([0.0] + [3.0] * (k - 1))
    assert raw_weights(g)[0] == pytest.approx(high)
    g = np.array([1.0] + [1e-9] + [0.0] * (k - 2))
    assert raw_weights(g)[0] > low


def test_invalid_inputs_raise():
    with pytest.raises(ValueError, match="positive entry"):
        plaw.proportional_law_identity([0.0, 0.0])
    with pytest.raises(ValueError, match=">= 0"):
        plaw.proportional_law_identity([1.0, -1.0])
    with pytest.raises(ValueError, match="num_tasks"):
        plaw.raw_weight_range(1)
    with pytest.raises(ValueError, match="task"):
        plaw.raw_weight_attainers(3, task=3)
