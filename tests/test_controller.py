"""The numpy controller: batched == per-step, invariants, state, policies, bad input."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from gaba_control.controller import GABAController
from gaba_control.theory import reachable_output_bounds


def random_norms(shape, seed=0, spread=3.0):
    rng = np.random.default_rng(seed)
    g = rng.lognormal(sigma=spread, size=shape)
    g[..., 0] *= 500.0  # a dominant task, as on C-MAPSS
    return g


def step_by_step(ctrl, g):
    outs = [ctrl.step(g[..., t, :]) for t in range(g.shape[-2])]
    return np.stack([o.weights for o in outs], axis=-2), np.stack([o.ema for o in outs], axis=-2)


@pytest.mark.parametrize("num_tasks", [2, 3, 5, 8])
@pytest.mark.parametrize("beta", [0.0, 0.9, 0.99])
@pytest.mark.parametrize("warmup", [0, 1, 37])
@pytest.mark.parametrize("lambda_min", [0.0, 0.01, 0.1])
def test_run_equals_repeated_step(num_tasks, beta, warmup, lambda_min):
    if lambda_min >= 1 / num_tasks:
        pytest.skip("lambda_min must be < 1/K")
    g = random_norms((3, 120, num_tasks), seed=num_tasks)
    g[1, 60] = np.nan
    g[2, 70:75] = 0.0
    kwargs = dict(beta=beta, warmup=warmup, lambda_min=lambda_min)
    trace = GABAController(num_tasks, **kwargs).run(g)
    weights, ema = step_by_step(GABAController(num_tasks, **kwargs), g)
    assert_allclose(trace.weights, weights, rtol=0, atol=1e-12)
    assert_allclose(trace.ema, ema, rtol=0, atol=1e-12)


def test_run_in_pieces_equals_one_run():
    g = random_norms((5, 1000, 2))
    whole = GABAController(2).run(g)
    ctrl = GABAController(2)
    pieces = [ctrl.run(g[:, a:b]) for a, b in [(0, 1), (1, 99), (99, 101), (101, 1000)]]
    assert_allclose(np.concatenate([p.weights for p in pieces], axis=1), whole.weights, atol=1e-15)
    assert_array_equal(np.concatenate([p.steps for p in pieces]), np.arange(1, 1001))


def test_warmup_holds_uniform_and_first_active_step():
    g = np.tile([5.0, 0.01], (102, 1))
    trace = GABAController(2, beta=0.99, warmup=100).run(g)
    assert_allclose(trace.weights[:100], 0.5, rtol=0)
    assert_allclose(trace.ema[:100], 0.5, rtol=0)  # EMA untouched while gated
    assert trace.active.tolist() == [False] * 100 + [True] * 2
    # step 101: 0.99*0.5 + 0.01*raw with raw = g_health/(g_rul+g_health)
    raw = 0.01 / 5.01
    assert_allclose(trace.weights[100, 0], 0.99 * 0.5 + 0.01 * raw, rtol=1e-14)


def test_invalid_measurements_hold_state_and_output():
    g = np.array([[5.0, 1.0], [np.nan, 1.0], [0.0, 0.0], [np.inf, 2.0], [5.0, 1.0]])
    trace = GABAController(2, beta=0.5, warmup=0).run(g)
    assert trace.valid.tolist() == [True, False, False, False, True]
    assert np.isnan(trace.raw[1:4]).all()
    for t in (1, 2, 3):
        assert_array_equal(trace.weights[t], trace.weights[0])
        assert_array_equal(trace.ema[t], trace.ema[0])
    assert_allclose(trace.ema[4], 0.5 * trace.ema[0] + 0.5 * trace.raw[4], rtol=1e-15)


def test_a_zero_norm_task_is_a_valid_measurement():
    # Only the all-zero row is invalid; one silent task gets raw weight 1/(K-1).
    trace = GABAController(3, warmup=0, beta=0.0, lambda_min=0.0).run(np.array([[0.0, 1.0, 3.0]]))
    assert trace.valid.tolist() == [True]
    assert_allclose(trace.raw[0, 0], 0.5)


def test_state_dict_round_trip_resumes_exactly():
    g = random_norms((2, 400, 3), seed=7)
    straight = GABAController(3).run(g).weights
    first = GABAController(3)
    head = first.run(g[:, :150]).weights
    state = first.state_dict()
    second = GABAController(3)
    second.load_state_dict(state)
    tail = second.run(g[:, 150:]).weights
    assert_array_equal(np.concatenate([head, tail], axis=1), straight)
    assert second.step_count == 400


def test_load_state_dict_rejects_mismatch():
    state = GABAController(2, beta=0.9).state_dict()
    with pytest.raises(ValueError, match="config"):
        GABAController(2).load_state_dict(state)
    with pytest.raises(ValueError, match="missing"):
        GABAController(2).load_state_dict({"step": 0})
    bad = GABAController(2).state_dict() | {"step": -1}
    with pytest.raises(ValueError, match="step"):
        GABAController(2).load_state_dict(bad)


def test_reset_returns_to_the_start():
    ctrl = GABAController(2, warmup=0)
    first = ctrl.run(random_norms((50, 2))).weights
    ctrl.reset()
    assert ctrl.step_count == 0
    assert_array_equal(ctrl.run(random_norms((50, 2))).weights, first)


@given(
    num_tasks=st.integers(2, 12),
    beta=st.floats(0.0, 0.999),
    lam_frac=st.floats(0.0, 0.99),
    seed=st.integers(0, 2**32 - 1),
    spread=st.floats(0.0, 8.0),
)
def test_weights_on_simplex_within_bounds(num_tasks, beta, lam_frac, seed, spread):
    lambda_min = lam_frac / num_tasks
    g = random_norms((40, num_tasks), seed=seed, spread=spread)
    trace = GABAController(num_tasks, beta=beta, warmup=3, lambda_min=lambda_min).run(g)
    w = trace.weights
    assert np.isfinite(w).all()
    assert_allclose(w.sum(axis=-1), 1.0, atol=1e-12)
    # Reachable inputs are raw weights in [0, 1/(K-1)] and their EMA, so the
    # output lies inside the tight reachable bounds of theory.bounds.
    low, high = reachable_output_bounds(num_tasks, lambda_min)
    assert np.all(w >= low - 1e-12)
    assert np.all(w <= high + 1e-12)


@given(num_tasks=st.integers(2, 8), scale=st.floats(1e-12, 1e12), seed=st.integers(0, 1000))
def test_scale_invariance_and_permutation_equivariance(num_tasks, scale, seed):
    g = random_norms((60, num_tasks), seed=seed)
    perm = np.random.default_rng(seed).permutation(num_tasks)
    base = GABAController(num_tasks, warmup=5).run(g).weights
    assert_allclose(GABAController(num_tasks, warmup=5).run(g * scale).weights, base, atol=1e-12)
    assert_allclose(GABAController(num_tasks, warmup=5).run(g[:, perm]).weights, base[:, perm],
                    atol=1e-15)


@pytest.mark.parametrize("num_tasks", [2, 4, 9])
def test_equal_norms_are_a_fixed_point(num_tasks):
    g = np.random.default_rng(0).lognormal(size=(200, 1)) * np.ones(num_tasks)
    trace = GABAController(num_tasks, warmup=10).run(g)
    assert_allclose(trace.weights, 1 / num_tasks, rtol=1e-13)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"num_tasks": 1}, ValueError, "num_tasks must be >= 2"),
        ({"num_tasks": 2.0}, TypeError, "num_tasks"),
        ({"beta": 1.0}, ValueError, r"beta must lie in \[0, 1\)"),
        ({"beta": -0.1}, ValueError, "beta"),
        ({"beta": "0.9"}, TypeError, "beta"),
        ({"lambda_min": 0.5}, ValueError, r"lambda_min must lie in \[0, 1/num_tasks\)"),
        ({"lambda_min": -0.01}, ValueError, "lambda_min"),
        ({"warmup": -1}, ValueError, r"warmup must lie in \[0, 2\^62\]"),
        ({"warmup": 1.5}, TypeError, "warmup"),
        ({"gain": 2}, TypeError, "unexpected keyword argument.*gain"),
    ],
)
def test_bad_configuration_is_rejected(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        GABAController(**kwargs)


def test_bad_norms_are_rejected():
    ctrl = GABAController(3)
    with pytest.raises(ValueError, match="shape"):
        ctrl.run(np.ones((10, 2)))
    with pytest.raises(ValueError, match=r"shape \(\.\.\., T, num_tasks\)"):
        ctrl.run(np.ones(3))
    with pytest.raises(ValueError, match=">= 0"):
        ctrl.step(np.array([1.0, -1e-9, 1.0]))
    with pytest.raises(ValueError, match=">= 0"):
        ctrl.step(np.array([1.0, -np.inf, 1.0]))
    with pytest.raises(TypeError, match="numeric"):
        ctrl.step(np.array(["a", "b", "c"]))
    assert ctrl.step_count == 0  # rejected input never advances the loop


def test_floor_active_marks_saturated_steps():
    g = np.tile([500.0, 1.0], (400, 1))
    trace = GABAController(2, warmup=100).run(g)
    floor = trace.floor_active(0.05)
    assert not floor[:100].any()
    # raw = 1/501; the EMA crosses 0.05 when 0.5 - (0.5 - raw)(1 - 0.99^n) < 0.05
    raw = 1 / 501
    n_cross = int(np.ceil(np.log((0.05 - raw) / (0.5 - raw)) / np.log(0.99)))
    assert floor.argmax() == 100 + n_cross - 1


@pytest.mark.parametrize(
    ("change", "message"),
    [({"ema": np.array([np.nan, 0.5])}, r"state\['ema'\] must be 2 finite"),
     ({"ema": np.array([0.9, 0.9])}, "must sum to 1"),
     ({"weights": np.array([-0.5, 1.5])}, r"state\['weights'\] must be 2 finite"),
     ({"step": 2.5}, "step"), ({"step": float("nan")}, "step")],
)
def test_loaded_state_is_checked(change, message):
    ctrl = GABAController(2)
    ctrl.run(np.tile([5.0, 1.0], (150, 1)))
    target = GABAController(2)
    with pytest.raises(ValueError, match=message):
        target.load_state_dict(ctrl.state_dict() | change)
    assert target.gate.step == 0 and np.all(target.iir.state == 0.5)  # untouched


def test_an_empty_run_is_an_empty_result():
    ctrl = GABAController(2)
    trace = ctrl.run(np.zeros((0, 2)))
    assert trace.weights.shape == (0, 2) and trace.steps.size == 0
    assert ctrl.gate.step == 0
    batched = GABAController(3).run(np.zeros((4, 0, 3)))
    assert batched.weights.shape == (4, 0, 3)
    assert_allclose(ctrl.step(np.array([3.0, 1.0])).weights, [0.5, 0.5])  # state intact
