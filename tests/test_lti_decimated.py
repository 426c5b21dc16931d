"""The decimated loop (sensor read every N steps, EMA coefficient β^N per refresh)."""

from __future__ import annotations

import control as ct
import matplotlib
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from gaba_control import formulas
from gaba_control.controller import GABAController
from gaba_control.lti import (
    decimated_noise_gain,
    decimated_time_constant,
    decimated_transfer_function,
    refresh_steps,
    simulate_decimated,
    simulate_decimated_control,
)
from gaba_control.theory import variance
from gaba_control.theory import warmup as theory_warmup

matplotlib.use("Agg")

BETAS = [0.5, 0.9, 0.99, 0.999]
EVERY = [1, 2, 5, 10, 50]


def norms(shape, seed, imbalance=30.0):
    rng = np.random.default_rng(seed)
    scale = np.ones(shape[-1])
    scale[0] = imbalance
    return scale * rng.lognormal(0.0, 0.7, size=shape)


@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("every", EVERY)
def test_transfer_function_pole_dt_and_preserved_time_constant(beta, every):
    H = decimated_transfer_function(beta, every)
    assert H.dt == every
    assert_allclose(H.poles(), [beta**every], rtol=1e-14)
    assert_allclose(H.zeros(), [0.0], atol=1e-15)
    assert float(H.dcgain()) == pytest.approx(1.0, abs=1e-12)
    # Time constant in steps from the pole: −dt/ln(p). Same for every N.
    tau = -H.dt / np.log(H.poles().real[0])
    assert tau == pytest.approx(-1.0 / np.log(beta), rel=1e-12)
    assert decimated_time_constant(beta, every) == pytest.approx(tau, rel=1e-12)
    # ... unlike N/(1−β^N), the "1/(1−β)" rule applied per refresh.
    if every > 1:
        assert every / (1.0 - beta**every) > 1.0 / (1.0 - beta) * (1 + 1e-6)
    # dt = 1: the same filter on the refresh clock.
    assert decimated_transfer_function(beta, every, dt=1).dt == 1


@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("every", [2, 5, 10])
def test_step_response_on_the_refresh_grid(beta, every):
    k = np.arange(100)
    y = np.ravel(ct.step_response(decimated_transfer_function(beta, every), k * every).outputs)
    assert_allclose(y, 1.0 - beta ** (every * (k + 1.0)), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("num_tasks", [2, 3, 5])
@pytest.mark.parametrize("every", [2, 5])
@pytest.mark.parametrize("beta", [0.5, 0.9, 0.99])
def test_zero_order_hold_equivalence_with_the_plain_ema(num_tasks, every, beta):
    # A refresh update equals N plain EMA steps on the measurement held for N steps.
    num_blocks = 40
    G = norms((num_blocks * every, num_tasks), seed=every)
    dec = simulate_decimated(G, num_tasks, beta, every, warmup=0, lambda_min=0.0)
    held = np.repeat(G[::every], every, axis=0)
    plain = GABAController(num_tasks, beta=beta, warmup=0, lambda_min=0.0).run(held)
    block_ends = np.arange(every - 1, num_blocks * every, every)
    assert_allclose(dec.ema[block_ends], plain.ema[block_ends], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("num_tasks", [2, 3, 5, 8])
@pytest.mark.parametrize("warmup", [0, 7, 100])
@pytest.mark.parametrize("lambda_min", [0.0, 0.05])
def test_every_one_is_the_plain_controller_exactly(num_tasks, warmup, lambda_min):
    G = norms((3, 250, num_tasks), seed=num_tasks)
    G[0, 120] = np.nan
    G[1, 130:133] = 0.0
    dec = simulate_decimated(G, num_tasks, 0.99, 1, warmup, lambda_min)
    plain = GABAController(num_tasks, beta=0.99, warmup=warmup, lambda_min=lambda_min).run(G)
    for field in ("ema", "weights", "active"):
        assert_array_equal(getattr(dec, field), getattr(plain, field), err_msg=field)
    assert_array_equal(dec.refresh, dec.active)
    # The plain controller also reports the (unused) warmup measurements; the
    # decimated loop reads nothing before its first refresh.
    on = dec.active
    assert_array_equal(dec.raw[:, on], plain.raw[:, on])
    assert_array_equal(dec.valid[:, on], plain.valid[:, on])
    assert np.all(np.isnan(dec.raw[:, ~on])) and not dec.valid[:, ~on].any()


CONTROL_CASES = [
    # (K, beta, N, W, lambda_min)
    (2, 0.9, 2, 0, 0.05),
    (2, 0.99, 5, 7, 0.05),
    (3, 0.9, 5, 0, 0.1),
    (3, 0.5, 2, 7, 0.0),
    (5, 0.9, 3, 4, 0.15),
]


@pytest.mark.parametrize(("num_tasks", "beta", "every", "warmup", "lambda_min"), CONTROL_CASES)
def test_numpy_and_python_control_versions_agree(num_tasks, beta, every, warmup, lambda_min):
    G = norms((150, num_tasks), seed=every + warmup)
    first = warmup  # index of step W + 1, the first refresh
    G[first + every] = np.nan  # invalid at a refresh: held
    G[first + 2 * every, 0] = np.inf
    G[first + 3 * every + 1] = np.nan  # invalid off the refresh grid: never read
    a = simulate_decimated(G, num_tasks, beta, every, warmup, lambda_min)
    b = simulate_decimated_control(G, num_tasks, beta, every, warmup, lambda_min)
    for field in ("raw", "ema", "weights"):
        assert_allclose(
            getattr(b, field), getattr(a, field), rtol=0, atol=1e-12, equal_nan=True, err_msg=field
        )
    for field in ("steps", "active", "refresh", "valid"):
        assert_array_equal(getattr(b, field), getattr(a, field), err_msg=field)
    assert a.refresh[first + every] and not a.valid[first + every]


@pytest.mark.parametrize("every", [2, 5, 10])
@pytest.mark.parametrize("warmup", [0, 3, 100])
def test_schedule_and_hold(every, warmup):
    num_steps = 300
    G = norms((num_steps, 3), seed=1)
    r = simulate_decimated(G, 3, 0.9, every, warmup, 0.05)
    t = np.arange(1, num_steps + 1)
    expected = (t > warmup) & ((t - warmup - 1) % every == 0)
    assert_array_equal(r.refresh, expected)
    assert r.refresh[warmup] and not r.refresh[:warmup].any()  # first refresh at t = W + 1
    assert_array_equal(r.weights[:warmup], np.full((warmup, 3), 1 / 3))
    # Outputs change only at refresh steps.
    changed = np.any(r.weights[1:] != r.weights[:-1], axis=-1)
    assert not np.any(changed & ~r.refresh[1:])
    # Rows off the refresh grid are never read: replacing them changes nothing.
    G2 = G.copy()
    G2[~r.refresh] = np.nan
    r2 = simulate_decimated(G2, 3, 0.9, every, warmup, 0.05)
    assert_array_equal(r2.weights, r.weights)


@given(
    num_steps=st.integers(0, 400),
    every=st.integers(1, 60),
    warmup=st.integers(0, 200),
)
def test_refresh_count(num_steps, every, warmup):
    mask = refresh_steps(num_steps, every, warmup)
    active = max(0, num_steps - warmup)
    assert mask.sum() == -(-active // every)  # ceil(active / N)
    assert mask.shape == (num_steps,)


@pytest.mark.parametrize("every", [1, 5, 20])
def test_output_variance_per_refresh_monte_carlo(every):
    """EMA variance / raw-weight variance ≈ (1−β^N)/(1+β^N) for i.i.d. input.

    Both tasks draw i.i.d. identical norms, so the raw weights are i.i.d. with mean 1/2,
    the EMA's initial state: only the variance transient is discarded (p^(2·burn) < e^-10).
    The tolerance is 4 standard errors of the mean over independent runs.
    """
    beta, runs, window = 0.99, 256, 400
    p = beta**every
    burn = int(np.ceil(5.0 / (1.0 - p)))
    num_steps = (burn + window) * every
    G = np.random.default_rng(every).lognormal(0.0, 0.5, size=(runs, num_steps, 2))
    r = simulate_decimated(G, 2, beta, every, warmup=0, lambda_min=0.0)
    refreshed = np.flatnonzero(r.refresh)[burn:]
    ema = r.ema[:, refreshed, 0]
    raw = r.raw[:, r.refresh, 0]
    per_run = np.mean((ema - 0.5) ** 2, axis=1) / np.var(raw)
    ratio, stderr = per_run.mean(), per_run.std(ddof=1) / np.sqrt(runs)
    expected = decimated_noise_gain(beta, every)
    assert expected == pytest.approx((1 - p) / (1 + p), rel=1e-14)
    assert abs(ratio - expected) < 4.0 * stderr
    assert stderr < 0.05 * expected  # precise enough to tell N apart
    if every > 1:  # the per-step gain (1−β)/(1+β) is rejected
        assert abs(ratio - (1 - beta) / (1 + beta)) > 10.0 * stderr


@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("every", EVERY)
def test_noise_gain_is_the_h2_norm_squared(beta, every):
    H = decimated_transfer_function(beta, every)
    assert ct.system_norm(H, p=2) ** 2 == pytest.approx(decimated_noise_gain(beta, every), rel=1e-9)


def test_run_shorter_than_warmup():
    G = norms((5, 2), seed=0)
    for simulate in (simulate_decimated, simulate_decimated_control):
        r = simulate(G, 2, 0.9, 3, 10, 0.05)
        assert not r.refresh.any() and not r.active.any()
        assert_array_equal(r.weights, np.full((5, 2), 0.5))


def test_invalid_arguments():
    G = np.ones((10, 2))
    with pytest.raises(ValueError, match="every"):
        simulate_decimated(G, 2, 0.9, 0)
    with pytest.raises(TypeError, match="every"):
        decimated_transfer_function(0.9, 2.0)
    with pytest.raises(ValueError, match="G"):
        simulate_decimated(-G, 2, 0.9, 2)
    with pytest.raises(ValueError, match="shape"):
        simulate_decimated_control(np.ones((2, 10, 2)), 2, 0.9, 2)
    with pytest.raises(TypeError, match="bogus"):
        simulate_decimated(G, 2, bogus=1)


def test_plot():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    try:
        r = simulate_decimated(norms((2, 40, 2), seed=0), 2, 0.9, 5, 5, 0.05)
        assert r.plot(ax=ax) is ax and len(ax.lines) == 3
    finally:
        plt.close(fig)


def test_parity_with_theory_variance_ratio():
    for every in EVERY:
        assert decimated_noise_gain(0.99, every) == pytest.approx(
            variance.variance_ratio(formulas.decimated_beta(0.99, every)), rel=1e-14
        )


@pytest.mark.parametrize("every", [1, 3, 10])
def test_constant_input_parity_with_theory_warmup(every):
    g = np.array([4.0, 1.0, 0.5])
    raw = formulas.raw_weights(g)
    r = simulate_decimated(np.tile(g, (200, 1)), 3, 0.99, every, 20, 0.05)
    refreshes_done = np.cumsum(r.refresh)  # k refreshes at or before each step
    p = formulas.decimated_beta(0.99, every)
    on = r.active
    assert_allclose(
        r.ema[on],
        theory_warmup.ema_after_active_steps(raw, refreshes_done[on], p),
        rtol=1e-12,
        atol=1e-15,
    )
    assert_allclose(
        r.weights[on],
        theory_warmup.weights_after_active_steps(raw, refreshes_done[on], p, 0.05),
        rtol=1e-12,
        atol=1e-15,
    )
