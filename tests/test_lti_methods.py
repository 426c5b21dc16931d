"""Small-signal models of the field's laws against the simulated laws and closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from gaba_control.lti.methods import (
    dwa_small_signal,
    famo_small_signal,
    gaba_small_signal,
    gradnorm_zero_crossing,
    linearisation_check,
    method_models,
    noise_gain,
    static_gain,
    uncertainty_small_signal,
)
from gaba_control.weighting import GradNormLaw, law_weights


@pytest.mark.parametrize(("name", "settings"), [
    ("gaba", {"beta": 0.99, "ratio": 100.0}),
    ("gaba", {"beta": 0.9, "ratio": 3.0}),
    ("uncertainty", {"lr": 0.1}),
    ("uncertainty", {"lr": 3.0}),  # past η = 2: the pole is negative, the response rings
    ("famo", {"lr": 0.025, "gamma": 0.01}),
    ("famo", {"lr": 0.5, "gamma": 0.5}),
    ("dwa", {"temperature": 2.0, "descent": 0.9}),
    ("dwa", {"temperature": 0.5, "descent": 0.7}),
])
def test_linearisation_matches_the_simulated_law(name, settings):
    """Second-order agreement: |sim − linear| ≤ 2·amplitude² for a 1e-3 step (not 1e-3 itself)."""
    amplitude = 1e-3
    sim, linear = linearisation_check(name, amplitude=amplitude, steps=300, **settings)
    assert np.max(np.abs(linear)) > 0.3 * amplitude  # the model moves: the check is not empty
    np.testing.assert_allclose(sim, linear, rtol=0, atol=2 * amplitude**2)


def test_linearisation_error_shrinks_quadratically():
    errors = [np.max(np.abs(np.subtract(*linearisation_check("uncertainty", amplitude=a,
                                                              lr=0.2, steps=200))))
              for a in (1e-2, 1e-3)]
    assert 50 < errors[0] / errors[1] < 200  # ≈ 100 for a second-order residual


def test_dc_gains_and_poles():
    assert gaba_small_signal(0.99)(1.0).real == pytest.approx(-1.0)
    assert uncertainty_small_signal(0.01)(1.0).real == pytest.approx(-1.0)
    assert famo_small_signal(0.025, 0.01)(1.0).real == pytest.approx(-1.0)
    assert dwa_small_signal(2.0, 0.9)(1.0).real == pytest.approx(0.0, abs=1e-15)
    assert uncertainty_small_signal(3.0).poles()[0].real == pytest.approx(-0.5)
    assert famo_small_signal(0.025, 0.01).poles()[0].real == pytest.approx(1 - 0.025 * 0.01)


def test_noise_gains_match_closed_forms():
    beta, eta = 0.99, 0.1
    assert noise_gain(gaba_small_signal(beta)) == pytest.approx((1 - beta) / (1 + beta), rel=1e-9)
    p = 1 - eta / 2
    assert noise_gain(uncertainty_small_signal(eta)) == pytest.approx((eta / 2) ** 2 / (1 - p**2),
                                                                      rel=1e-9)
    g = 0.9 / 2.0
    assert noise_gain(dwa_small_signal(2.0, 0.9)) == pytest.approx(2 * g * g, rel=1e-12)


def test_static_gains_of_the_aggregators():
    """MGDA, orthogonal gradients: w_1 ∝ g_2², gain −2; UPGrad without conflict: w = ½, gain 0."""
    for ratio in (1.0, 10.0, 1000.0):
        assert static_gain("mgda", ratio, 0.0) == pytest.approx(-2.0, abs=1e-6)
        assert static_gain("upgrad", ratio, 0.0) == pytest.approx(0.0, abs=1e-6)
        assert static_gain("upgrad", ratio, 0.5) == pytest.approx(0.0, abs=1e-6)
    assert np.isnan(static_gain("mgda", 100.0, 0.5))  # a vertex: g_2 alone is the min-norm point


def test_method_models_cover_every_linearisable_method():
    names = [m.name for m in method_models()]
    assert names == ["gaba", "uncertainty", "famo", "dwa", "mgda", "upgrad"]
    for model in method_models():
        assert np.all(np.abs(model.poles) < 1)  # every default setting is stable


@pytest.mark.parametrize("ratio", [5.0, 20.0, 100.0, 500.0])
def test_gradnorm_plain_step_zero_crossing_is_exact(ratio):
    boundary = float(gradnorm_zero_crossing(ratio, sgd=True))
    lows = []
    for factor in (0.3, 3.0):
        law = GradNormLaw(2, lr=factor * boundary, sgd=True)
        w = law_weights(law, np.tile([ratio, 1.0], (4000, 1)), np.ones((4000, 2)))
        lows.append(w[:, 0].min())
    assert lows[0] > 0 > lows[1]


@pytest.mark.parametrize("ratio", [20.0, 100.0, 500.0, 2400.0])
def test_gradnorm_adam_zero_crossing_estimate_within_a_factor_two(ratio):
    boundary = float(gradnorm_zero_crossing(ratio))
    lows = []
    for factor in (0.5, 2.0):
        lr = factor * boundary
        steps = int(min(40000, 40 / lr))
        w = law_weights(GradNormLaw(2, lr=lr), np.tile([ratio, 1.0], (steps, 1)),
                        np.ones((steps, 2)))
        lows.append(w[:, 0].min())
    assert lows[0] > 0 > lows[1]
