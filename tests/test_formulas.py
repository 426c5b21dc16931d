"""The shared formulas: identities, the invalid-measurement policy, numpy/torch parity."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose

from gaba_control import formulas as F

KS = [2, 3, 5, 8, 21, 64]


def norms(num_tasks, min_value=1e-6, max_value=1e6):
    return arrays(
        np.float64, num_tasks, elements=st.floats(min_value, max_value, allow_subnormal=False)
    )


@pytest.mark.parametrize("num_tasks", KS)
def test_block_chain_equals_closed_form(num_tasks):
    # The P-law identity: 1/K + (1/K - s)/(K-1) == (S - g)/((K-1) S), to rounding.
    g = np.random.default_rng(num_tasks).lognormal(sigma=3.0, size=(1000, num_tasks))
    assert_allclose(F.raw_weights(g), F.inverse_gradient_weights(g), rtol=1e-12, atol=1e-15)


@given(st.integers(2, 64).flatmap(norms))
def test_raw_weights_on_simplex_and_in_range(g):
    num_tasks = g.size
    raw = F.raw_weights(g)
    assert_allclose(raw.sum(), 1.0, atol=1e-12)
    assert np.all(raw >= -1e-15)
    assert np.all(raw <= 1.0 / (num_tasks - 1) + 1e-15)


@given(st.integers(2, 16).flatmap(norms), st.floats(1e-20, 1e20), st.randoms())
def test_scale_invariant_and_permutation_equivariant(g, scale, rnd):
    perm = list(range(g.size))
    rnd.shuffle(perm)
    assert_allclose(F.raw_weights(g * scale), F.raw_weights(g), rtol=1e-12, atol=1e-15)
    assert_allclose(F.raw_weights(g[perm]), F.raw_weights(g)[perm], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("num_tasks", KS)
@pytest.mark.parametrize("level", [1e-30, 1.0, 1e30])
def test_equal_norms_are_a_fixed_point(num_tasks, level):
    raw = F.raw_weights(np.full(num_tasks, level))
    assert_allclose(raw, 1.0 / num_tasks, rtol=1e-14)
    assert_allclose(F.comparator_error(F.sensor_shares(np.full(num_tasks, level)), num_tasks), 0.0,
                    atol=1e-16)


def test_invalid_rows_give_nan_and_no_warning():
    g = np.array([[0.0, 0.0], [np.nan, 1.0], [np.inf, 1.0], [0.0, 2.0]])
    with np.errstate(all="raise"):
        shares = F.sensor_shares(g)
    assert np.isnan(shares[:3]).all()
    assert_allclose(shares[3], [0.0, 1.0])
    assert F.measurement_is_valid(g).tolist() == [False, False, False, True]


def test_paper_epsilon_form_leaves_the_simplex_at_zero():
    # The seeds' `S + 1e-12` guard: with every g = 0 each weight is 1/(K-1),
    # so the weights sum to K/(K-1) (2 for K = 2, 1.5 for K = 3), not 1.
    for num_tasks in (2, 3, 5):
        total = F.inverse_gradient_weights_eps(np.zeros(num_tasks)).sum()
        assert total == pytest.approx(num_tasks / (num_tasks - 1), rel=1e-12)


def test_extreme_scales_do_not_overflow_in_float32():
    g = torch.tensor([3e38, 1e38, 1e-30], dtype=torch.float32)
    shares = F.sensor_shares(g)
    assert torch.isfinite(shares).all()
    assert_allclose(shares.numpy(), [0.75, 0.25, 0.0], atol=1e-7)


@pytest.mark.parametrize("num_tasks", [2, 3, 7])
def test_numpy_and_torch_agree(num_tasks):
    rng = np.random.default_rng(1)
    g = rng.lognormal(sigma=2.0, size=(50, num_tasks))
    ema = rng.dirichlet(np.ones(num_tasks), size=50)
    for dtype, tol in [(torch.float64, 1e-15), (torch.float32, 1e-6)]:
        gt, et = torch.tensor(g, dtype=dtype), torch.tensor(ema, dtype=dtype)
        assert_allclose(F.raw_weights(gt).numpy(), F.raw_weights(g), atol=tol)
        assert_allclose(F.floor_renormalise(et, 0.05).numpy(), F.floor_renormalise(ema, 0.05),
                        atol=tol)
        assert_allclose(F.ema_update(et, gt, 0.9).numpy(), F.ema_update(ema, g, 0.9), rtol=tol)


def test_floor_renormalise_matches_hand_values():
    # (0.002, 0.998) floored at 0.05 -> (0.05, 0.998)/1.048
    assert_allclose(F.floor_renormalise(np.array([0.002, 0.998]), 0.05),
                    [0.05 / 1.048, 0.998 / 1.048], rtol=1e-15)
    # lambda_min = 0 is the identity on the simplex
    x = np.array([0.1, 0.2, 0.7])
    assert_allclose(F.floor_renormalise(x, 0.0), x, rtol=1e-15)


def test_gate_is_inclusive_and_decimated_beta():
    assert not F.gate_is_open(100, 100)
    assert F.gate_is_open(101, 100)
    assert F.decimated_beta(0.99, 10) == pytest.approx(0.99**10, rel=1e-15)
    assert F.proportional_gain(2) == 1.0
    assert F.reference(4) == 0.25


@pytest.mark.parametrize("num_tasks", range(1, 13))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_task_axis_sums_and_maxima_equal_numpy_reductions_to_the_bit(num_tasks, dtype):
    # Regression for the unrolled task-axis reductions (a 1.6x faster GABAController.run at
    # 1000 runs x 1e4 steps x K = 2): same numbers as xp.sum / xp.max, NaN and inf included.
    from gaba_control.formulas import _row_max, _row_sum

    rng = np.random.default_rng(num_tasks)
    x = (rng.lognormal(size=(4000, num_tasks)) * 10.0 ** rng.uniform(-20, 20, (4000, 1))).astype(
        dtype
    )
    x[::97, 0] = np.nan
    x[::89, -1] = np.inf
    np.testing.assert_array_equal(_row_sum(x), np.sum(x, axis=-1, keepdims=True))
    np.testing.assert_array_equal(_row_max(x), np.max(x, axis=-1, keepdims=True))
    t = torch.from_numpy(x)
    np.testing.assert_array_equal(_row_max(t).numpy(), np.max(x, axis=-1, keepdims=True))
    np.testing.assert_allclose(
        _row_sum(t).numpy(), np.sum(x, axis=-1, keepdims=True), rtol=4 * np.finfo(dtype).eps
    )
