"""GABA's loop with one block swapped: parity with the controller, closed forms vs simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gaba_control import formulas
from gaba_control.controller import GABAController
from gaba_control.weighting import (
    AntiWindupLaw,
    IntegralLaw,
    LawLoss,
    LogEMALaw,
    LoopLaw,
    SourcedGABALoss,
    get_method,
    inverse_norm_weights,
    law_weights,
    plaw_weighted_shares,
    recovery_steps,
)

CONTROLLER = {"num_tasks": 2, "beta": 0.99, "warmup": 100, "lambda_min": 0.05}
VARIANTS = ("gaba_antiwindup", "gaba_inverse", "gaba_integral", "gaba_log_ema",
            "gaba_relative_floor")


def constant(ratio: float, steps: int, k: int = 2) -> np.ndarray:
    g = np.ones((steps, k))
    g[:, 0] = ratio
    return g


def run(law, g) -> np.ndarray:
    g = np.asarray(g, dtype=np.float64)
    return law_weights(law, g, np.ones_like(g))


# -- the unchanged pipeline is GABA -------------------------------------------------------------

_norm_rows = hnp.arrays(np.float64, st.tuples(st.integers(1, 80), st.integers(2, 5)),
                        elements=st.one_of(st.floats(0, 1e6), st.just(0.0), st.just(np.nan),
                                           st.just(np.inf)))


@settings(deadline=None, max_examples=60)
@given(_norm_rows, st.floats(0, 0.999), st.integers(0, 20), st.floats(0, 0.19))
def test_loop_law_is_gaba_controller(g, beta, warmup, floor):
    k = g.shape[1]
    expected = GABAController(k, beta=beta, warmup=warmup, lambda_min=floor).run(g).weights
    got = run(LoopLaw(k, beta=beta, warmup=warmup, floor=floor), g)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_loop_law_torch_module_is_gaba_loss_to_rounding():
    rng = np.random.default_rng(1)
    g = rng.lognormal(0, 2, (150, 3))
    module = LawLoss(LoopLaw(3, beta=0.9, warmup=10, floor=0.05), beta=0.9, warmup=10,
                     lambda_min=0.05)
    applied = np.array([module.update_from_measurement(row, np.ones(3)).numpy() for row in g])
    shadow = GABAController(3, beta=0.9, warmup=10, lambda_min=0.05).run(g).weights
    np.testing.assert_allclose(applied, shadow, rtol=0, atol=1e-12)


# -- anti-windup ---------------------------------------------------------------------------------

def test_antiwindup_keeps_gabas_steady_state_under_a_constant_reading():
    ratio, floor = 600.0, 0.05
    raw = 1.0 / (1.0 + ratio)  # λ_raw of task 1 (K = 2)
    closed_form = floor / (floor + 1.0 - raw)
    g = constant(ratio, 3000)
    gaba = run(LoopLaw(2, warmup=0, floor=floor), g)[-1, 0]
    aw = run(AntiWindupLaw(2, warmup=0, floor=floor), g)[-1, 0]
    assert gaba == pytest.approx(closed_form, rel=1e-9)
    assert aw == pytest.approx(closed_form, rel=1e-9)


@pytest.mark.parametrize(("wound_ratio", "new_ratio"), [(600.0, 2.0), (100.0, 3.0), (1e4, 1.5)])
def test_recovery_after_windup_closed_form(wound_ratio, new_ratio):
    beta, floor, wind = 0.99, 0.05, 3000
    g = np.concatenate([constant(wound_ratio, wind), constant(new_ratio, 2000)])
    wound = 1.0 / (1.0 + wound_ratio) + (0.5 - 1.0 / (1.0 + wound_ratio)) * beta**wind
    raw = 1.0 / (1.0 + new_ratio)
    expected = recovery_steps(beta, floor, wound, raw)
    for law, steps in ((LoopLaw(2, beta=beta, warmup=0, floor=floor), expected),
                       (AntiWindupLaw(2, beta=beta, warmup=0, floor=floor), 1)):
        state = law_state_trace(law, g)
        above = np.flatnonzero(state[wind:, 0] >= floor)
        assert above[0] + 1 == steps, type(law).__name__


def law_state_trace(law, g):
    from gaba_control.weighting import LawSimulator

    sim = LawSimulator(law, (law.num_tasks,))
    out = []
    for row in g:
        sim.step(row, np.ones(law.num_tasks))
        out.append(np.array(sim.state["ema"]))
    return np.array(out)


@settings(deadline=None, max_examples=40)
@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 60), st.just(3)),
                  elements=st.floats(1e-6, 1e6)), st.floats(0.0, 0.3))
def test_antiwindup_state_never_lies_below_the_floor(g, floor):
    floor = min(floor, 0.3)
    law = AntiWindupLaw(3, beta=0.9, warmup=0, floor=floor)
    assert np.all(law_state_trace(law, g) >= floor)


# -- inverse-norm law ----------------------------------------------------------------------------

@settings(deadline=None, max_examples=200)
@given(hnp.arrays(np.float64, st.integers(2, 8), elements=st.floats(1e-30, 1e30)))
def test_inverse_norm_law_equalises_weighted_norms_for_every_k(g):
    w = inverse_norm_weights(g)
    assert np.sum(w) == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(formulas.weighted_shares(w, g), 1.0 / g.size, rtol=1e-9)


@settings(deadline=None, max_examples=200)
@given(hnp.arrays(np.float64, 2, elements=st.floats(1e-30, 1e30)))
def test_inverse_norm_law_is_the_p_law_for_two_tasks(g):
    # the P-law forms 1 − s (absolute precision only); the inverse law keeps relative precision
    np.testing.assert_allclose(inverse_norm_weights(g), formulas.raw_weights(g), rtol=1e-9,
                               atol=4e-16)


def test_p_law_weighted_shares_closed_form_and_its_error_for_three_tasks():
    g = np.array([98.0, 1.0, 1.0])
    s = formulas.sensor_shares(g)
    closed = plaw_weighted_shares(s)
    np.testing.assert_allclose(formulas.weighted_shares(formulas.raw_weights(g), g), closed,
                               rtol=1e-12)
    # the P-law's steady-state error: the dominant task keeps half the weighted norm, not 1/3
    assert closed[0] == pytest.approx(0.5, abs=0.01)


def test_inverse_norm_weights_share_the_weight_between_zero_norms_and_reject_invalid_rows():
    assert inverse_norm_weights(np.array([0.0, 3.0, 0.0])).tolist() == [0.5, 0.0, 0.5]
    assert np.isnan(inverse_norm_weights(np.array([0.0, 0.0]))).all()
    assert np.isnan(inverse_norm_weights(np.array([np.nan, 1.0]))).all()


# -- integral action and the log-domain EMA ------------------------------------------------------

@pytest.mark.parametrize("k", [2, 3, 5])
def test_integral_law_is_the_log_domain_ema_of_the_inverse_norm_law(k):
    class LogInverse(LogEMALaw):
        def raw(self, norms, state):
            return inverse_norm_weights(norms)

    g = np.random.default_rng(k).lognormal(0, 1.5, (500, k))
    a = run(IntegralLaw(k, beta=0.95, warmup=7, floor=0.0), g)
    b = run(LogInverse(k, beta=0.95, warmup=7, floor=0.0), g)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


def test_for_two_tasks_integral_action_is_the_log_ema_of_gabas_p_law():
    g = np.random.default_rng(3).lognormal(0, 1.5, (500, 2))
    a = run(IntegralLaw(2, beta=0.95, warmup=7, floor=0.0), g)
    b = run(LogEMALaw(2, beta=0.95, warmup=7, floor=0.0), g)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    # for three tasks they differ: the log EMA keeps the P-law's error, the integrator has none
    g3 = np.tile([98.0, 1.0, 1.0], (3000, 1))
    integral = formulas.weighted_shares(run(IntegralLaw(3, warmup=0, floor=0.0), g3)[-1], g3[0])
    log_ema = formulas.weighted_shares(run(LogEMALaw(3, warmup=0, floor=0.0), g3)[-1], g3[0])
    np.testing.assert_allclose(integral, 1 / 3, atol=1e-9)
    np.testing.assert_allclose(log_ema, plaw_weighted_shares(formulas.sensor_shares(g3[0])),
                               atol=1e-9)


@pytest.mark.parametrize("gain", [0.01, 0.1, 1.0])
def test_integral_action_reaches_equal_weighted_shares_with_its_time_constant(gain):
    g = np.tile([50.0, 5.0, 1.0], (4000, 1))
    law = IntegralLaw(3, warmup=0, floor=0.0, gain=gain)
    w = run(law, g)
    np.testing.assert_allclose(formulas.weighted_shares(w[-1], g[-1]), 1 / 3, atol=1e-9)
    # z's distance to its fixed point decays by (1 − k) a step: after n steps (1 − k)^n
    n = 50
    log_ratio = np.log(w[:, 0] / w[:, 2]) - np.log(1 / 50.0)
    assert abs(log_ratio[n - 1]) == pytest.approx(abs(np.log(1 / 50.0)) * (1 - gain) ** n,
                                                  rel=1e-6, abs=1e-12)


def test_log_ema_tracks_the_median_raw_weight_the_ema_its_mean():
    sigma, ratio = 0.8, 1000.0
    rng = np.random.default_rng(0)
    runs, steps = 8, 30_000  # 8 runs side by side: 160,000 settled steps in 30,000 loop steps
    g = np.ones((steps, runs, 2))
    g[..., 0] = ratio * rng.lognormal(0, sigma, (steps, runs))
    settled = slice(10_000, None)  # 10 time constants: the start at 1/2 has decayed (e^-10)
    arith = run(LoopLaw(2, beta=0.999, warmup=0, floor=0.0), g)[settled, :, 0].mean()
    geo = run(LogEMALaw(2, beta=0.999, warmup=0, floor=0.0), g)[settled, :, 0].mean()
    # raw weight of task 1 ≈ 1/(R X), X log-normal: mean/median = exp(σ²/2)
    assert arith / geo == pytest.approx(math.exp(sigma**2 / 2), rel=0.03)


# -- the relative floor --------------------------------------------------------------------------

def test_relative_floor_is_gaba_at_two_tasks_and_stays_admissible_at_any_k():
    g = np.random.default_rng(0).lognormal(0, 2, (400, 2))
    method = get_method("gaba_relative_floor")(CONTROLLER)
    assert method.law().floor == 0.05
    np.testing.assert_allclose(run(method.law(), g),
                               GABAController(2).run(g).weights, rtol=0, atol=1e-12)
    many = {**CONTROLLER, "num_tasks": 25, "lambda_min": 0.01}
    assert get_method("gaba_relative_floor")(many).law().floor == pytest.approx(0.1 / 25)
    with pytest.raises(ValueError, match="lambda_min"):
        get_method("gaba")({**many, "lambda_min": 0.05})


# -- the methods ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", VARIANTS)
def test_each_variant_is_one_registered_closed_loop_method(name):
    method = get_method(name)(CONTROLLER)
    assert method.closed_loop
    assert method.trajectory(10) is None
    assert isinstance(method.module(100, steps_per_epoch=10), LawLoss)


@pytest.mark.parametrize("name", VARIANTS)
def test_open_loop_ratio_runs_the_same_pipeline_on_a_constant_reading(name):
    method = get_method(name)(CONTROLLER, open_loop_ratio=600.0)
    assert not method.closed_loop
    expected = run(get_method(name)(CONTROLLER).law(), constant(600.0, 300))
    np.testing.assert_array_equal(method.trajectory(300), expected)
    module = method.module(300)
    assert isinstance(module, SourcedGABALoss) and not isinstance(module, LawLoss)


@pytest.mark.parametrize(("options", "flag"), [
    ({"floor_fraction": 1.0}, "--floor-fraction"),
    ({"floor_fraction": -0.1}, "--floor-fraction"),
    ({"floor_fraction": float("nan")}, "--floor-fraction"),
    ({"open_loop_ratio": 0.0}, "--open-loop-ratio"),
    ({"open_loop_ratio": float("inf")}, "--open-loop-ratio"),
])
@pytest.mark.parametrize("name", VARIANTS)
def test_bad_variant_options_name_their_flag(name, options, flag):
    with pytest.raises(ValueError, match=flag):
        get_method(name)(CONTROLLER, **options)


@pytest.mark.parametrize("gain", [0.0, -0.5, 1.5, float("nan")])
def test_integral_gain_outside_its_range_is_refused(gain):
    with pytest.raises(ValueError, match="--integral-gain"):
        get_method("gaba_integral")(CONTROLLER, integral_gain=gain)


def test_floor_fraction_sets_every_variants_floor():
    for name in VARIANTS:
        law = get_method(name)(CONTROLLER, floor_fraction=0.002).law()
        assert law.floor == pytest.approx(0.001)


def test_loaded_antiwindup_state_below_its_floor_is_refused():
    law = AntiWindupLaw(2, warmup=0, floor=0.05)
    module = LawLoss(law, warmup=0)
    module.update_from_measurement([1.0, 1.0], [1.0, 1.0])
    state = module.state_dict()
    state["law_ema"] = torch.tensor([0.01, 0.99], dtype=torch.float64)
    with pytest.raises(ValueError, match="law_ema"):
        LawLoss(AntiWindupLaw(2, warmup=0, floor=0.05), warmup=0).load_state_dict(state)


# -- refresh every N steps (the design assistant's N) -------------------------------------------

@pytest.mark.parametrize("refresh", [1, 3, 7])
@pytest.mark.parametrize("name", ("gaba", *VARIANTS[:4]))
def test_refreshing_variant_module_is_the_design_engines_loop(name, refresh):
    """The torch module with ``--refresh-every N`` gives the weights
    :func:`gaba_control.design.simulate_settings` predicts (β^N per refresh, held between),
    to rounding: the assistant's N is the N a run trains with."""
    from gaba_control.design import Settings, simulate_settings

    g = np.exp(np.random.default_rng(refresh).normal(size=(240, 2))) * [50.0, 1.0]
    controller = {"num_tasks": 2, "beta": 0.9, "warmup": 20, "lambda_min": 0.01}
    module = get_method(name)(controller, refresh_every=refresh).module(240)
    step = module.update_from_norms if name == "gaba" else (
        lambda row: module.update_from_measurement(row, [1.0, 1.0]))
    got = np.array([step(row).double().numpy() for row in g])
    want = simulate_settings(g, Settings.grid(variant=(name,), beta=(0.9,), floor=(0.01,),
                                              warmup=(20,), refresh=(refresh,)), keep=True)
    np.testing.assert_allclose(got, want.weights[:, 0], rtol=0, atol=1e-12)


def test_refreshing_variant_trains_measuring_on_the_refresh_steps_only():
    """Through real autograd: held steps read nothing (NaN norms, one backward) and apply
    the last refresh's weights; the refresh steps' weights are the replay of their norms."""
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2)
    module = get_method("gaba_log_ema")({"num_tasks": 2, "beta": 0.9, "warmup": 4,
                                          "lambda_min": 0.01}, refresh_every=3).module(20)
    twin = get_method("gaba_log_ema")({"num_tasks": 2, "beta": 0.9, "warmup": 4,
                                        "lambda_min": 0.01}, refresh_every=3).module(20)
    x = torch.randn(16, 3)
    for t in range(1, 21):
        out = net(x)
        losses = [(out[:, 0] ** 2).mean() * 100, (out[:, 1] - 1).pow(2).mean()]
        module(losses, list(net.parameters()), list(net.parameters())).backward()
        net.zero_grad()
        rec = module.last_step
        assert bool(rec.measured) == module.reads_sensor(t) == (t > 4 and (t - 5) % 3 == 0)
        assert bool(torch.isnan(rec.norms).all()) != bool(rec.measured)
        expected = twin.update_from_measurement(rec.norms, [1.0, 1.0])
        torch.testing.assert_close(rec.applied_weights.double(), expected.double())


def test_refresh_is_refused_where_nothing_is_measured_or_the_law_cannot_hold():
    with pytest.raises(ValueError, match="--refresh-every"):
        get_method("gaba_log_ema")(CONTROLLER, refresh_every=5, open_loop_ratio=600.0)
    with pytest.raises(ValueError, match="refresh_every"):
        get_method("gaba_inverse")(CONTROLLER, refresh_every=0)
    from gaba_control.weighting import get_method as method

    dwa = method("dwa")(CONTROLLER).law(steps_per_epoch=10)
    with pytest.raises(ValueError, match="refresh_every must be 1"):
        LawLoss(dwa, refresh_every=2)


def test_open_loop_ratio_takes_one_value_or_one_per_task_but_the_last():
    from gaba_control.weighting._loop_law import open_loop_reading

    k3 = {**CONTROLLER, "num_tasks": 3}
    one = get_method("gaba_integral")(k3, open_loop_ratio=[600.0]).trajectory(300)
    np.testing.assert_array_equal(
        one, get_method("gaba_integral")(k3, open_loop_ratio=600.0).trajectory(300))
    two = get_method("gaba_integral")(k3, open_loop_ratio=[600.0, 3.0]).trajectory(300)
    expected = run(get_method("gaba_integral")(k3).law(), np.tile([600.0, 3.0, 1.0], (300, 1)))
    np.testing.assert_array_equal(two, expected)
    assert open_loop_reading([5.0, 2.0], 3).tolist() == [5.0, 2.0, 1.0]
    for bad in ([1.0, 2.0, 3.0], [], [0.0, 1.0], [float("nan")], [True]):
        with pytest.raises(ValueError, match="--open-loop-ratio"):
            get_method("gaba_integral")(k3, open_loop_ratio=bad)
    # one value through compare's planning keys as the plain number (committed runs' keys)
    cls = get_method("gaba_integral")
    assert cls.plan({"open_loop_ratio": [516.7]}, seeds=[0], index=0,
                    reference_runs={})[0] == {"open_loop_ratio": 516.7}
