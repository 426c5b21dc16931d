"""The python-control GABA loop reproduces the numpy controller and the closed forms.

``simulate_loop`` costs about 1.3 ms of CPU per step (8 named blocks, fixed-point
solved twice per step), so sequences here are a few hundred steps.
"""

from __future__ import annotations

import warnings

import matplotlib
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from gaba_control import formulas
from gaba_control.controller import GABAController
from gaba_control.lti import (
    gaba_loop,
    loop_blocks,
    loop_initial_state,
    simulate_loop,
)
from gaba_control.theory import warmup as theory_warmup

matplotlib.use("Agg")

FIELDS = ("shares", "error", "raw", "ema", "weights")
PARITY_ATOL = 1e-9  # the brief's bound; measured differences are ~1e-16


def gradient_sequence(num_tasks, num_steps, floor, seed):
    """Log-normal norms: balanced (floor never binds) or one task ~100x larger (it binds)."""
    rng = np.random.default_rng(seed)
    scale = np.ones(num_tasks)
    sigma = 0.3
    if floor == "active":
        scale[0], sigma = 100.0, 1.0
    return scale * rng.lognormal(0.0, sigma, size=(num_steps, num_tasks))


def assert_trace_equal(response, trace, atol=PARITY_ATOL):
    for field in FIELDS:
        assert_allclose(
            getattr(response, field),
            getattr(trace, field),
            rtol=0,
            atol=atol,
            equal_nan=True,
            err_msg=field,
        )
    assert_array_equal(response.valid, trace.valid)
    assert_array_equal(response.active, trace.active)
    assert_array_equal(response.steps, trace.steps)


CASES = [
    # (K, beta, warmup, lambda_min, floor regime)
    (2, 0.9, 0, 0.05, "inactive"),
    (2, 0.95, 0, 0.05, "active"),
    (2, 0.5, 60, 0.05, "active"),
    (2, 0.0, 60, 0.0, "off"),  # lambda_min = 0: the floor can never bind
    (3, 0.9, 0, 0.05, "inactive"),
    (3, 0.9, 60, 0.1, "active"),
    (3, 0.99, 60, 0.05, "inactive"),
    (5, 0.9, 0, 0.15, "active"),
    (5, 0.99, 60, 0.05, "inactive"),
    (5, 0.5, 60, 0.15, "active"),
]


@pytest.mark.parametrize(("num_tasks", "beta", "warmup", "lambda_min", "floor"), CASES)
def test_loop_reproduces_numpy_controller(num_tasks, beta, warmup, lambda_min, floor):
    G = gradient_sequence(
        num_tasks, 200, "inactive" if floor == "inactive" else "active", seed=num_tasks + warmup
    )
    response = simulate_loop(G, num_tasks, beta, warmup, lambda_min)
    trace = GABAController(num_tasks, beta=beta, warmup=warmup, lambda_min=lambda_min).run(G)
    assert_trace_equal(response, trace)
    binds = trace.floor_active(lambda_min)
    assert binds.any() == (floor == "active"), "test sequence does not exercise the regime"


@pytest.mark.parametrize("num_tasks", [2, 3, 5])
@pytest.mark.parametrize("warmup", [0, 20])
def test_invalid_measurements_hold_like_the_controller(num_tasks, warmup):
    G = gradient_sequence(num_tasks, 80, "active", seed=3)
    G[5] = np.nan  # inside the warmup when warmup = 20
    G[30, 0] = np.inf
    G[31] = 0.0
    G[32, -1] = np.nan
    G[60:63] = 0.0  # several invalid steps in a row
    response = simulate_loop(G, num_tasks, 0.9, warmup, 0.05)
    trace = GABAController(num_tasks, beta=0.9, warmup=warmup, lambda_min=0.05).run(G)
    assert_trace_equal(response, trace)
    invalid = ~response.valid
    assert_array_equal(np.flatnonzero(invalid), [5, 30, 31, 32, 60, 61, 62])
    assert np.all(np.isnan(response.raw[invalid])) and np.all(np.isfinite(response.ema))
    # Held: the EMA and the output equal the previous step's (to rounding: the switch
    # feeds the state back, y = β·m + (1−β)·m).
    held = np.flatnonzero(invalid & response.active)
    assert_allclose(response.ema[held], response.ema[held - 1], rtol=0, atol=1e-15)
    assert_allclose(response.weights[held], response.weights[held - 1], rtol=0, atol=1e-15)


@pytest.mark.parametrize("num_tasks", [2, 3, 5, 8])
@pytest.mark.parametrize("beta", [0.5, 0.99])
def test_warmup_leaves_ema_untouched_and_first_active_step(num_tasks, beta):
    warmup = 15
    G = gradient_sequence(num_tasks, warmup + 3, "active", seed=num_tasks)
    r = simulate_loop(G, num_tasks, beta, warmup, 0.0)
    uniform = np.full(num_tasks, 1.0 / num_tasks)
    assert_array_equal(r.active, r.steps > warmup)
    assert_allclose(r.ema[:warmup], np.tile(uniform, (warmup, 1)), rtol=0, atol=1e-15)
    assert_allclose(r.weights[:warmup], np.tile(uniform, (warmup, 1)), rtol=0, atol=0)
    raw = formulas.raw_weights(G[warmup])
    assert_allclose(r.ema[warmup], beta * uniform + (1 - beta) * raw, rtol=1e-14)


def test_initial_ema_matches_controller_state():
    G = gradient_sequence(3, 60, "active", seed=11)
    ema0 = np.array([0.6, 0.3, 0.1])
    ctrl = GABAController(3, beta=0.9, warmup=10, lambda_min=0.05)
    ctrl.load_state_dict({"step": 0, "ema": ema0, "weights": np.full(3, 1 / 3)})
    response = simulate_loop(G, 3, 0.9, 10, 0.05, initial_ema=ema0)
    assert_trace_equal(response, ctrl.run(G))


def test_simulation_is_deterministic():
    G = gradient_sequence(3, 50, "active", seed=5)
    a = simulate_loop(G, 3, 0.9, 10, 0.05)
    b = simulate_loop(G, 3, 0.9, 10, 0.05)
    for field in FIELDS:
        assert_array_equal(getattr(a, field), getattr(b, field))


def test_blocks_are_named_and_wired_by_signal_name():
    blocks = loop_blocks(3, 0.9, 5, 0.05)
    assert [b.name for b in blocks.values()] == list(blocks)
    assert blocks["ema"].nstates == 3 and blocks["gate"].nstates == 1
    assert all(blocks[n].nstates == 0 for n in ("sensor", "comparator", "p_law", "saturation"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no unused or unconnected signals
        sys = gaba_loop(3, 0.9, 5, 0.05)
    assert sys.input_labels == ["g[0]", "g[1]", "g[2]"]
    assert sys.state_labels == ["gate_count", "ema_m[0]", "ema_m[1]", "ema_m[2]"]
    assert sys.output_labels[:3] == ["lam_star[0]", "lam_star[1]", "lam_star[2]"]
    assert sys.output_labels[-2:] == ["valid", "active"]
    assert_array_equal(loop_initial_state(3), [0.0, 1 / 3, 1 / 3, 1 / 3])


@pytest.mark.parametrize("lambda_min", [0.0, 0.05])
def test_static_blocks_are_finite_at_the_solvers_zero_start(lambda_min):
    # interconnect starts its fixed-point iteration from zero internal signals.
    blocks = loop_blocks(3, 0.9, 0, lambda_min)
    zeros = np.zeros(3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in ("sensor", "comparator", "p_law", "saturation"):
            out = blocks[name].output(0, [], zeros)
            assert np.all(np.isfinite(out)), name
        assert blocks["sensor"].output(0, [], zeros)[-1] == 0.0  # all-zero row: invalid


def test_invalid_arguments():
    G = np.ones((5, 2))
    with pytest.raises(ValueError, match="G"):
        simulate_loop(-G, 2)
    with pytest.raises(ValueError, match="shape"):
        simulate_loop(np.ones((5, 3)), 2)
    with pytest.raises(ValueError, match="shape"):
        simulate_loop(np.ones((2, 5, 2)), 2)
    with pytest.raises(ValueError, match="lambda_min"):
        simulate_loop(G, 2, lambda_min=0.5)
    with pytest.raises(ValueError, match="beta"):
        simulate_loop(G, 2, beta=1.0)
    with pytest.raises(ValueError, match="initial_ema"):
        simulate_loop(G, 2, initial_ema=[0.5, np.nan])
    with pytest.raises(TypeError, match="bogus"):
        simulate_loop(G, 2, bogus=True)


def test_plots():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    try:
        r = simulate_loop(gradient_sequence(2, 20, "active", 0), 2, 0.9, 5, 0.05)
        assert r.plot(ax=ax) is ax and len(ax.lines) == 4
        new_ax = r.plot()
        assert new_ax is not ax and len(new_ax.lines) == 4
        plt.close(new_ax.figure)
    finally:
        plt.close(fig)


@pytest.mark.parametrize("beta", [0.9, 0.99])
def test_constant_input_after_warmup_follows_the_closed_form(beta):
    # Constant raw weights a = [0.002, 0.998] (norms [0.998, 0.002]): after the gate
    # opens at t = W + 1 the EMA is a + (1/2 − a)·β^(t−W), the floor acts on the output only.
    warmup, num_steps = 100, 150
    G = np.tile([0.998, 0.002], (num_steps, 1))
    r = simulate_loop(G, 2, beta, warmup, 0.05)
    a = np.array([0.002, 0.998])
    n = np.clip(r.steps - warmup, 0, None)[:, None]
    ema = a + (0.5 - a) * beta**n
    assert_allclose(r.ema, ema, rtol=1e-12, atol=1e-15)
    assert_allclose(
        r.weights,
        formulas.floor_renormalise(ema, 0.05) * r.active[:, None] + 0.5 * ~r.active[:, None],
        rtol=1e-12,
        atol=1e-15,
    )


@pytest.mark.parametrize("num_tasks", [2, 3, 5])
@pytest.mark.parametrize("lambda_min", [0.0, 0.05])
def test_parity_with_theory_warmup_closed_forms(num_tasks, lambda_min):
    rng = np.random.default_rng(num_tasks)
    g = rng.lognormal(0.0, 1.5, size=num_tasks)
    raw = formulas.raw_weights(g)
    warmup = 10
    r = simulate_loop(np.tile(g, (60, 1)), num_tasks, 0.9, warmup, lambda_min)
    n = r.steps[warmup:] - warmup  # active steps taken
    assert_allclose(
        r.ema[warmup:], theory_warmup.ema_after_active_steps(raw, n, 0.9), rtol=1e-12, atol=1e-15
    )
    assert_allclose(
        r.weights[warmup:],
        theory_warmup.weights_after_active_steps(raw, n, 0.9, lambda_min),
        rtol=1e-12,
        atol=1e-15,
    )
