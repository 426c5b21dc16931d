"""Each numpy block: per-step vs batched, lfilter vs recursion, holds, composition."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.signal import lfilter

from gaba_control.blocks import (
    Chain,
    Comparator,
    FirstOrderIIR,
    ProportionalLaw,
    Saturation,
    Sensor,
    WarmupGate,
)
from gaba_control.formulas import inverse_gradient_weights

BETAS = [0.0, 0.5, 0.9, 0.99, 0.999]


def recursion(x, beta, y0, update=None):
    """Reference EMA written as a plain loop, skipping steps where update is False."""
    y, out = np.array(y0, dtype=float), np.empty_like(x)
    for t in range(x.shape[-2]):
        step = beta * y + (1 - beta) * x[..., t, :]
        mask = np.ones(x.shape[:-2], bool) if update is None else update[..., t]
        y = np.where(mask[..., None], step, y)
        out[..., t, :] = y
    return out


@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("num_tasks", [2, 3, 5])
def test_iir_apply_equals_recursion_and_step(beta, num_tasks):
    x = np.random.default_rng(0).dirichlet(np.ones(num_tasks), size=(3, 400))
    batched = FirstOrderIIR(beta, num_tasks).apply(x)
    stepwise = FirstOrderIIR(beta, num_tasks)
    per_step = np.stack([stepwise(x[:, t]) for t in range(400)], axis=1)
    expected = recursion(x, beta, np.full(num_tasks, 1 / num_tasks))
    assert_allclose(batched, expected, rtol=0, atol=1e-15)
    assert_allclose(batched, per_step, rtol=0, atol=1e-15)


def test_iir_coefficients_are_the_lfilter_ema():
    iir = FirstOrderIIR(0.99, 2)
    b, a = iir.coefficients
    x = np.random.default_rng(1).random(500)
    y = lfilter(b, a, x)  # zero initial state
    assert_allclose(y, recursion(x[:, None], 0.99, [0.0])[:, 0], atol=1e-15)


@pytest.mark.parametrize("beta", [0.5, 0.99])
def test_iir_arbitrary_holds_match_recursion(beta):
    rng = np.random.default_rng(2)
    x = rng.dirichlet(np.ones(3), size=(6, 300))
    update = rng.random((6, 300)) > 0.3
    update[0] = False  # a run that never updates keeps its initial state
    iir = FirstOrderIIR(beta, 3)
    got = iir.apply(x, hold=~update)
    assert_allclose(got, recursion(x, beta, np.full(3, 1 / 3), update), atol=1e-14)
    assert_allclose(got[0], 1 / 3, rtol=1e-15)
    assert_allclose(iir.state, got[:, -1])


def test_iir_holds_on_non_finite_input():
    iir = FirstOrderIIR(0.9, 2)
    x = np.array([[0.2, 0.8], [np.nan, np.nan], [np.inf, 0.0], [0.2, 0.8]])
    y = iir.apply(x)
    assert np.isfinite(y).all()
    assert_array_equal(y[1], y[0])
    assert_array_equal(y[2], y[0])
    assert_allclose(y[3], 0.9 * y[0] + 0.1 * x[3], rtol=1e-15)


def test_iir_suffix_and_empty_paths():
    x = np.random.default_rng(3).dirichlet(np.ones(2), size=50)
    hold = np.arange(50) < 20
    got = FirstOrderIIR(0.9, 2).apply(x, hold=hold)
    assert_allclose(got, recursion(x, 0.9, [0.5, 0.5], ~hold), atol=1e-15)
    everything_held = FirstOrderIIR(0.9, 2).apply(x, hold=np.ones(50, bool))
    assert_allclose(everything_held, 0.5)
    assert FirstOrderIIR(0.9, 2).apply(np.empty((0, 2))).shape == (0, 2)


def test_stateless_blocks_match_formulas_and_closed_form():
    g = np.random.default_rng(4).lognormal(sigma=2, size=(100, 4))
    chain = Sensor() >> Comparator(4) >> ProportionalLaw(4)
    assert isinstance(chain, Chain) and len(chain.blocks) == 3
    assert_allclose(chain(g), inverse_gradient_weights(g), rtol=1e-12)
    assert_allclose(chain.apply(g[None]), chain(g)[None])
    assert ProportionalLaw(4).gain == pytest.approx(1 / 3)
    assert Comparator(4).reference == 0.25


def test_saturation_marks_where_the_floor_binds():
    sat = Saturation(0.05, 2)
    assert sat.is_active(np.array([[0.01, 0.99], [0.5, 0.5]])).tolist() == [True, False]
    assert_allclose(sat(np.array([0.0, 1.0])), [0.05 / 1.05, 1 / 1.05], rtol=1e-15)


def test_gate_is_inclusive_and_leaves_inner_state_untouched():
    inner = FirstOrderIIR(0.5, 2)
    gate = WarmupGate(3, 2, inner=inner)
    x = np.array([0.0, 1.0])
    outs = [gate(x) for _ in range(4)]
    assert_allclose(outs[:3], 0.5)  # steps 1..3 gated (t <= W)
    assert_allclose(outs[3], [0.25, 0.75])  # step 4 is the first active one
    batched = WarmupGate(3, 2, inner=FirstOrderIIR(0.5, 2)).apply(np.tile(x, (4, 1)))
    assert_allclose(batched, outs)


def test_composed_loop_equals_controller():
    from gaba_control.controller import GABAController

    g = np.random.default_rng(5).lognormal(sigma=2, size=(4, 300, 3))
    loop = WarmupGate(
        50, 3,
        inner=Sensor() >> Comparator(3) >> ProportionalLaw(3) >> FirstOrderIIR(0.9, 3)
        >> Saturation(0.05, 3),
    )
    ctrl = GABAController(3, beta=0.9, warmup=50, lambda_min=0.05)
    assert_allclose(loop.apply(g), ctrl.run(g).weights, atol=1e-15)


def test_chain_rejects_non_blocks():
    with pytest.raises(TypeError, match="Block"):
        Chain(Sensor(), lambda x: x)
