"""The linearised loop: its DC gain is the static Jacobian, it matches the nonlinear
loop to second order in the perturbation, and it fails where the floor starts to act."""

from __future__ import annotations

import control as ct
import matplotlib
import numpy as np
import pytest
from numpy.testing import assert_allclose

from gaba_control import formulas
from gaba_control.lti import small_signal_loop, small_signal_response

matplotlib.use("Agg")

OPERATING_POINTS = [
    ([1.0, 3.0], 0.05),
    ([1.0, 2.0, 4.0], 0.05),
    ([1.0, 2.0, 3.0, 4.0, 5.0], 0.05),
    ([1.0, 1.0, 40.0], 0.05),  # third channel's EMA sits below the floor
    ([2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 9.0], 0.0),
]


def static_map(g, lambda_min):
    return formulas.floor_renormalise(formulas.raw_weights(g), lambda_min)


@pytest.mark.parametrize(("g0", "lambda_min"), OPERATING_POINTS)
def test_small_signal_dc_gain_is_the_jacobian_of_the_static_map(g0, lambda_min):
    g0 = np.array(g0)
    k = g0.size
    sys = small_signal_loop(g0, 0.9, lambda_min)
    h = 1e-6
    jac = np.column_stack(
        [
            (static_map(g0 + h * e, lambda_min) - static_map(g0 - h * e, lambda_min)) / (2 * h)
            for e in np.eye(k)
        ]
    )
    assert_allclose(sys.dcgain(), jac, rtol=1e-6, atol=1e-10)
    assert_allclose(np.sum(sys.dcgain(), axis=0), 0.0, atol=1e-14)  # λ* stays on the simplex
    assert_allclose(sys.dcgain() @ g0, 0.0, atol=1e-14)  # the sensor is scale invariant
    assert_allclose(np.sort(sys.poles().real), np.full(k, 0.9), atol=1e-12)


@pytest.mark.parametrize(("g0", "lambda_min"), OPERATING_POINTS[:4])
@pytest.mark.parametrize("beta", [0.5, 0.9])
def test_small_signal_model_matches_nonlinear_loop_to_second_order(g0, lambda_min, beta):
    g0 = np.array(g0)
    dG = np.random.default_rng(0).standard_normal((60, g0.size)) * g0
    errors = []
    for eps in (1e-3, 1e-4):
        r = small_signal_response(g0, eps * dG, beta, lambda_min)
        scale = np.abs(r.linear).max()
        error = np.abs(r.linear - r.nonlinear).max()
        assert error < 1e-2 * scale
        errors.append(error)
    # Second order: a 10x smaller perturbation gives a ~100x smaller error.
    assert 50.0 < errors[0] / errors[1] < 200.0


def test_small_signal_model_fails_beyond_its_range():
    # A large perturbation drives task 1's raw weight from 1/9 to 1/21, below the floor
    # 0.1: the loop saturates, the linear model predicts a negative weight.
    g0 = np.array([1.0, 8.0])
    dG = np.zeros((40, 2))
    dG[:, 1] = 12.0
    r = small_signal_response(g0, dG, 0.5, 0.1)
    out0 = static_map(g0, 0.1)
    assert np.min(out0[1] + r.nonlinear[:, 1]) >= 0.1 / 1.1 - 1e-12  # floor bound holds
    assert np.min(out0[1] + r.linear[:, 1]) < 0.0  # the linearisation does not know it


def test_small_signal_rejects_kink_and_bad_operating_points():
    with pytest.raises(ValueError, match="kink"):
        small_signal_loop([1.0, 19.0], 0.9, 0.05)  # raw weight of task 1 is exactly 0.05
    with pytest.raises(ValueError, match="positive"):
        small_signal_loop([0.0, 1.0], 0.9, 0.05)
    with pytest.raises(ValueError):
        small_signal_loop([1.0], 0.9, 0.05)


def test_small_signal_signal_names():
    sys = small_signal_loop([1.0, 2.0, 3.0], 0.9, 0.05)
    assert isinstance(sys, ct.StateSpace)
    assert sys.input_labels == ["dg[0]", "dg[1]", "dg[2]"]
    assert sys.output_labels == ["dlam_star[0]", "dlam_star[1]", "dlam_star[2]"]


def test_plot():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    try:
        s = small_signal_response([1.0, 3.0], 1e-3 * np.ones((10, 2)) * [1, 0], 0.9, 0.05)
        assert s.plot(ax=ax) is ax and len(ax.lines) == 4
    finally:
        plt.close(fig)
