"""GABA's loop over a plant: operating point, margins (hand-computed), simulation parity."""

import math

import control as ct
import numpy as np
import pytest
from numpy.testing import assert_allclose

from gaba_control import formulas
from gaba_control.controller import GABAController
from gaba_control.plant.loop import (
    closed_loop_system,
    floor_describing_function,
    loop_analysis,
    operating_point,
    simulate_closed_loop,
)


def _numeric_slope(ema1, lambda_min, h=1e-7):
    def out(e):
        return formulas.floor_renormalise(np.array([e, 1 - e]), lambda_min)[0]

    return (out(ema1 + h) - out(ema1 - h)) / (2 * h)


@pytest.mark.parametrize(("ratio", "lambda_min"), [(600.0, 0.05), (600.0, 0.0), (3.0, 0.05),
                                                   (50.0, 0.01)])
def test_operating_point_slope_is_the_saturation_derivative(ratio, lambda_min):
    op = operating_point(ratio, lambda_min)
    assert op.ema == pytest.approx(1 / (1 + ratio), rel=1e-12)
    assert op.saturation_slope == pytest.approx(_numeric_slope(op.ema, lambda_min), rel=1e-6)
    # k = s(1−s)·K_p·J/λ*: the derivative of log λ*_1 with respect to −log R, numerically
    def log_out(y):
        ema1 = formulas.raw_weights(np.array([math.exp(y), 1.0]))[0]
        return math.log(formulas.floor_renormalise(np.array([ema1, 1 - ema1]), lambda_min)[0])

    y0, h = math.log(ratio), 1e-6
    assert op.gain == pytest.approx(-(log_out(y0 + h) - log_out(y0 - h)) / (2 * h), rel=1e-5)
    assert op.floor_active == (op.ema < lambda_min)


def test_floor_slope_is_small_but_not_zero():
    # K = 2 on the floor: ∂λ*_1/∂λ̂_1 = λ_min/(λ_min + λ̂_2)², not 0 (the renormalisation)
    op = operating_point(600.0, 0.05)
    lam2 = 1 - op.ema
    assert op.saturation_slope == pytest.approx(0.05 / (0.05 + lam2) ** 2, rel=1e-12)
    assert 0.04 < op.saturation_slope < 0.05


def test_margins_of_a_hand_computed_loop():
    # P = 0.5 z⁻¹, R = 1, no floor, β = 0.9: k = s(1−s)/λ* = 0.5, L = 0.025/(z − 0.9).
    a = loop_analysis(ct.tf([0.5], [1, 0], dt=1), operating_point(1.0, 0.0), beta=0.9)
    assert a.dc_loop_gain == pytest.approx(0.25, rel=1e-12)
    # phase −180° only at ω = π, where |L| = 0.025/1.9
    assert a.gain_margin == pytest.approx(1.9 / 0.025, rel=1e-9)
    assert a.phase_crossover == pytest.approx(math.pi)
    assert math.isinf(a.phase_margin) and a.stable
    assert a.oscillation_gain == pytest.approx(76.0, rel=1e-9)  # K_p·GM, K_p = 1 for K = 2
    # two steps of delay: the crossing moves inside, solved by hand: cos ω from |z − 0.9| etc.
    b = loop_analysis(ct.tf([0.5], [1, 0, 0], dt=1), operating_point(1.0, 0.0), beta=0.9)
    w = b.phase_crossover
    value = 0.025 / (np.exp(1j * w) * (np.exp(1j * w) - 0.9))
    assert np.angle(value) == pytest.approx(-math.pi, abs=1e-6) or \
        np.angle(value) == pytest.approx(math.pi, abs=1e-6)
    assert b.gain_margin == pytest.approx(1 / abs(value), rel=1e-9)
    assert_allclose(b.S, 1 / (1 + b.L), rtol=1e-12)
    assert_allclose(b.T, b.L / (1 + b.L), rtol=1e-12)


def test_oscillation_at_the_predicted_gain():
    a = loop_analysis(ct.tf([0.5], [1, 0, 0], dt=1), operating_point(1.0, 0.0), beta=0.9)
    below = loop_analysis(ct.tf([0.5], [1, 0, 0], dt=1), operating_point(1.0, 0.0), beta=0.9,
                          gain_scale=0.95 * a.gain_margin)
    above = loop_analysis(ct.tf([0.5], [1, 0, 0], dt=1), operating_point(1.0, 0.0), beta=0.9,
                          gain_scale=1.05 * a.gain_margin)
    assert below.stable and not above.stable


def test_describing_function_of_the_floor():
    ema0 = 0.002
    amps = np.array([1e-4, 0.01, 0.047, 0.1, 0.3])
    n = floor_describing_function(ema0, amps[amps < ema0], 0.05)
    assert_allclose(n, _numeric_slope(ema0, 0.05), rtol=1e-3)  # small A: the slope
    with pytest.raises(ValueError, match="amplitudes must be"):
        floor_describing_function(ema0, [0.01], 0.05)  # ema0 − A < 0


def test_simulation_with_a_zero_plant_is_the_controller_on_the_disturbance():
    rng = np.random.default_rng(0)
    d = np.log(600.0) + 0.3 * rng.standard_normal(400)
    w, y = simulate_closed_loop(([0.0, 0.0], [1.0]), d, lambda0=0.05, warmup=20)
    g = np.column_stack([np.exp(d), np.ones_like(d)])
    ref = GABAController(2, warmup=20).run(g).weights
    assert_allclose(y, d, rtol=0, atol=0)
    assert_allclose(w, ref, rtol=1e-12)


@pytest.mark.parametrize("plant", [([0.0, 0.3, 0.1], [1.0, -0.6]),  # second order
                                   ([0.0, 0.05], [1.0, -0.9]), ([0.0, 0.0], [1.0])])
def test_runs_stepped_together_are_each_run_alone_bit_for_bit(plant):
    # regression (2026-12-06): runs of one plant are stepped together so the controller's
    # per-step cost is paid once; each run must still get exactly its own loop
    rng = np.random.default_rng(2)
    d = np.log([[2.0], [100.0], [2400.0]]) + 0.3 * rng.standard_normal((3, 600))
    w, y = simulate_closed_loop(plant, d, lambda0=0.05, warmup=50, lambda_min=0.02)
    assert w.shape == (3, 600, 2) and y.shape == (3, 600)
    for r in range(3):
        w_r, y_r = simulate_closed_loop(plant, d[r], lambda0=0.05, warmup=50, lambda_min=0.02)
        assert np.array_equal(w[r], w_r) and np.array_equal(y[r], y_r)
    with pytest.raises(ValueError, match=r"shape \(T,\) or \(R, T\)"):
        simulate_closed_loop(plant, d[None], lambda0=0.05)


def test_python_control_interconnect_equals_the_numpy_loop():
    rng = np.random.default_rng(1)
    n = 150
    d = np.log(20.0) + 0.2 * rng.standard_normal(n)
    plant = ([0.0, 0.3, 0.1], [1.0, -0.6])
    w, y = simulate_closed_loop(plant, d, lambda0=0.1, warmup=10, lambda_min=0.02)
    sys = closed_loop_system(ct.tf([0.3, 0.1], [1.0, -0.6, 0.0], dt=1), lambda0=0.1,
                             warmup=10, lambda_min=0.02)
    x0 = np.zeros(sys.nstates)
    x0[sys.state_labels.index("ema_m[0]")] = 0.5
    x0[sys.state_labels.index("ema_m[1]")] = 0.5
    response = ct.input_output_response(sys, np.arange(n), d[None, :], X0=x0)
    out = np.asarray(response.outputs)
    assert_allclose(out[0], y, rtol=1e-9, atol=1e-12)
    assert_allclose(out[1], w[:, 0], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [(lambda: operating_point(-1.0), ValueError, "ratio must be a finite number > 0"),
     (lambda: operating_point(2.0, 0.6), ValueError, "lambda_min must lie in"),
     (lambda: operating_point(2.0, num_tasks=3), ValueError, "num_tasks=2"),
     (lambda: loop_analysis("P", operating_point(2.0)), TypeError, "TransferFunction"),
     (lambda: loop_analysis(ct.tf([1], [1, 0], dt=1), operating_point(2.0), gain_scale=0),
      ValueError, "gain_scale"),
     (lambda: simulate_closed_loop(([1.0], [1.0]), np.zeros(3), lambda0=0.1), ValueError,
      "one step of delay"),
     (lambda: simulate_closed_loop(([0.0, 1.0], [1.0]), np.zeros(3), lambda0=2.0), ValueError,
      "lambda0")],
)
def test_bad_arguments_are_named(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_identified_plant_in_the_closed_loop_study():
    from analysis.closed_loop import identified_plant_response

    # elasticity 1: without a floor K = 2 GABA still equalises λ_i g_i at steady state
    r = identified_plant_response([0.0, 0.2], [1.0, -0.8], 0.002, ratios=(10.0, 500.0),
                                  lambda_mins=(0.0, 0.05), steps=3000)
    assert r.elasticity == pytest.approx(1.0)
    assert_allclose(r.final_share["plant"][0], 0.5, atol=1e-3)
    assert_allclose(r.final_share["none"][0], 0.5, atol=1e-3)
    # R = r (λ/λ₀)^P(1) at equilibrium, λ = 1/(1 + R)
    lam = r.final_weight["plant"][0]
    assert_allclose(r.final_ratio["plant"][0], np.array([10.0, 500.0]) * lam / 0.002, rtol=1e-3)
    # on the floor a positive elasticity makes the imbalance worse than without a plant answer
    assert np.all(r.final_share["plant"][1] >= r.final_share["none"][1])
    assert "| 0.05 | 500 |" in r.table()


def test_vectorised_law_loop_equals_the_one_run_simulation():
    """simulate_law_closed_loop(LoopLaw) = simulate_closed_loop(GABA), run by run, with a plant."""
    from gaba_control.plant.loop import simulate_closed_loop, simulate_law_closed_loop
    from gaba_control.weighting import LoopLaw

    rng = np.random.default_rng(0)
    d = np.log(600.0) + rng.normal(0, 0.5, (3, 800))
    plant = ([0.0, 0.06], [1.0, -0.87])
    for floor in (0.001, 0.05):
        w, y = simulate_law_closed_loop(LoopLaw(2, floor=floor), plant, d, lambda0=0.002)
        for i in range(3):
            w1, y1 = simulate_closed_loop(plant, d[i], lambda0=0.002, lambda_min=floor)
            np.testing.assert_allclose(w[i], w1, rtol=0, atol=1e-14)
            np.testing.assert_allclose(y[i], y1, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="delay"):
        simulate_law_closed_loop(LoopLaw(2), ([1.0], [1.0]), d, lambda0=0.002)
