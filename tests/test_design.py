"""The design engine (:mod:`gaba_control.design`): its two paths agree, and a sensor's reading.

``simulate_settings`` replays without the per-step loop (one ``lfilter`` per group
of settings) unless it must step (``keep=True`` or a plant); both paths must give
the same metrics. With ``reading=`` the loop steps on what an approximate sensor
reads while the metrics judge the exact norms.
"""

from __future__ import annotations

import numpy as np
import pytest

from gaba_control import formulas
from gaba_control.design import VARIANT_BLOCKS, Settings, simulate_settings

METRICS = ("floor_fraction", "share_mean", "share_log_mean", "log_weight_std",
           "log_weight_mean")


def _norms(steps=400, seed=0, ratio=300.0):
    rng = np.random.default_rng(seed)
    return np.exp(rng.normal(0.0, 0.4, size=(steps, 2))) * [ratio, 1.0]


def _grid():
    return Settings.grid(variant=tuple(VARIANT_BLOCKS), beta=(0.9, 0.99), floor=(0.0, 0.01, 0.05),
                         warmup=(0, 30), refresh=(1, 4))


@pytest.mark.parametrize("biased", [False, True])
def test_replay_and_the_stepped_loop_give_the_same_metrics(biased):
    g = _norms()
    reading = g * [0.2, 1.0] if biased else None
    fast = simulate_settings(g, _grid(), reading=reading)
    stepped = simulate_settings(g, _grid(), reading=reading, keep=True)
    for name in METRICS:
        np.testing.assert_allclose(getattr(fast, name), getattr(stepped, name), rtol=1e-9,
                                   atol=1e-12, err_msg=name)


def test_reading_the_norms_themselves_changes_nothing():
    g = _norms(seed=1)
    a, b = simulate_settings(g, _grid()), simulate_settings(g, _grid(), reading=g.copy())
    for name in METRICS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_the_loop_steps_on_the_reading_and_the_shares_judge_the_norms():
    """The weights are those of a loop fed the reading; the share is of the exact norms."""
    g = _norms(seed=2)
    reading = g * [0.1, 1.0]
    s = Settings.grid(variant=("gaba", "gaba_log_ema"), beta=(0.95,), floor=(0.001,),
                      warmup=(20,))
    biased = simulate_settings(g, s, reading=reading, keep=True)
    fed = simulate_settings(reading, s, keep=True)
    np.testing.assert_array_equal(biased.weights, fed.weights)
    share = formulas.weighted_shares(biased.weights[20:], g[20:, None, :])[..., biased.small]
    np.testing.assert_allclose(biased.share_mean, share.mean(axis=0), rtol=1e-12)
    # the reading makes the large task look 10x smaller: the loop gives it more weight, so
    # the small task's true share falls below what the loop believes it achieved
    assert np.all(biased.share_mean < fed.share_mean)


@pytest.mark.parametrize("bias", [0.1, 0.5, 2.0])
def test_a_biased_inverse_law_settles_at_the_closed_form_share(bias):
    """Inverse law, no floor, constant norms (G, 1) read as (bG, 1): λ ∝ (1/(bG), 1), so
    the small task's weighted share is 1/(1 + 1/b) = b/(1 + b) (not the aim 1/2)."""
    g = np.tile([500.0, 1.0], (3000, 1))
    s = Settings.grid(variant=("gaba_inverse",), beta=(0.9,), floor=(0.0,), warmup=(0,))
    r = simulate_settings(g, s, reading=g * [bias, 1.0], keep=True)
    assert r.share_median[0] == pytest.approx(bias / (1 + bias), rel=1e-9)


def test_with_a_plant_the_reading_is_corrected_like_the_norms():
    """A constant bias b on task 0 and a plant: the loop's weights are those of the plant
    path fed the biased norms (the correction adds to both log ratios alike)."""
    g = _norms(seed=3)
    plant = ([0.0, 0.05], [1.0, -0.9])
    applied = np.full(g.shape[0], 0.05)
    s = Settings.grid(variant=("gaba", "gaba_inverse"), beta=(0.95,), floor=(0.001,),
                      warmup=(10,))
    biased = simulate_settings(g, s, plant=plant, applied=applied, reading=g * [0.2, 1.0],
                               keep=True)
    fed = simulate_settings(g * [0.2, 1.0], s, plant=plant, applied=applied, keep=True)
    np.testing.assert_allclose(biased.weights, fed.weights, rtol=0, atol=1e-12)
    assert np.all(biased.share_mean < fed.share_mean)


def test_a_reading_of_another_shape_is_refused():
    g = _norms(steps=50)
    with pytest.raises(ValueError, match="reading must have the norms' shape"):
        simulate_settings(g, _grid(), reading=g[:40])
