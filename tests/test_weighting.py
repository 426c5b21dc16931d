"""The weighting registry: one interface per method, numpy twin and torch module in agreement."""

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

from gaba_control.plant.excitation import excitation_band, multisine, prbs
from gaba_control.weighting import (
    GABA,
    PRBS,
    Option,
    SourcedGABALoss,
    WeightingMethod,
    check_options_belong,
    get_method,
    method_names,
    option_owners,
    register,
)

CONTROLLER = {"num_tasks": 2, "beta": 0.99, "warmup": 5, "lambda_min": 0.05}
OPEN_LOOP = {
    "equal": {},
    "fixed": {"weights": [1.0, 3.0]},
    "schedule": {"schedule_ratio": 50.0},
    "prbs": {"operating_point": 0.1, "amplitude": 0.5, "clock": 3, "hold": 4},
    "multisine": {"operating_point": 0.3, "amplitude": 0.2, "period": 16, "harmonics": 3},
}


def test_registry_lists_every_method_once():
    names = method_names()
    assert names == ("gaba", "equal", "fixed", "schedule", "replay", "prbs", "multisine",
                     "gradnorm", "gradnorm_softmax", "uncertainty", "dwa", "famo", "upgrad",
                     "mgda", "gaba_antiwindup", "gaba_inverse", "gaba_integral", "gaba_log_ema",
                     "gaba_relative_floor")
    assert get_method("gaba") is GABA and get_method("prbs") is PRBS
    with pytest.raises(ValueError, match="method must be one of"):
        get_method("no_such_method")


def test_a_new_method_is_one_registered_class():
    class Half(WeightingMethod):
        name = "test-half"
        description = "test"

        def trajectory(self, num_steps):
            return np.full((num_steps, self.num_tasks), 0.5)

    try:
        register(Half)
        assert "test-half" in method_names()
        module = get_method("test-half")(CONTROLLER).module(3)
        assert isinstance(module, SourcedGABALoss)
        with pytest.raises(ValueError, match="already registered"):
            register(type("Other", (Half,), {}))
    finally:
        from gaba_control.weighting import _base

        _base._REGISTRY.pop("test-half", None)


def _drive(module, steps):
    """Run ``module`` for ``steps`` steps on a tiny two-task problem; return the applied rows."""
    torch.manual_seed(0)
    shared = torch.nn.Linear(3, 3)
    heads = [torch.nn.Linear(3, 1), torch.nn.Linear(3, 1)]
    params = [*shared.parameters(), *heads[0].parameters(), *heads[1].parameters()]
    rows = []
    for _ in range(steps):
        z = shared(torch.randn(8, 3))
        losses = [h(z).pow(2).mean() * scale for h, scale in zip(heads, (30.0, 1.0), strict=True)]
        module(losses, params, shared.parameters())
        rows.append(module.telemetry()["applied_weights"])
    return np.array(rows)


@pytest.mark.parametrize("name", sorted(OPEN_LOOP))
def test_numpy_twin_is_what_the_torch_module_applies(name):
    method = get_method(name)(CONTROLLER, **OPEN_LOOP[name])
    table = method.trajectory(20)
    assert table.shape == (20, 2)
    assert_allclose(table.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    applied = _drive(method.module(20), 20)
    # the loop's buffers are float64: the applied weights are the twin's, bit for bit
    assert_allclose(applied, table, rtol=0, atol=0)


def test_gaba_is_the_closed_loop_and_its_twin_is_the_controller():
    method = get_method("gaba")(CONTROLLER)
    assert method.closed_loop and method.trajectory(5) is None
    module = method.module(10)
    assert type(module).__name__ == "GABALoss"
    twin = method.controller_twin()
    assert (twin.beta, twin.warmup, twin.lambda_min) == (0.99, 5, 0.05)
    assert module.refresh_every == 1
    decimated = get_method("gaba")(CONTROLLER, refresh_every=4)
    assert decimated.module(10).refresh_every == 4
    assert decimated.summary() == {"method": "gaba", "refresh_every": 4, "sensor": "exact"}


def test_excitation_trajectory():
    method = get_method("prbs")(CONTROLLER, operating_point=0.1, amplitude=0.5, clock=4,
                                hold=10, excitation_seed=3)
    w = method.trajectory(400)
    assert_allclose(w[:10], 0.5, rtol=0, atol=0)  # held at 1/K like GABA's warmup
    p = prbs(390, clock=4, seed=3)
    assert_allclose(w[10:, 0], 0.1 * (1 + 0.5 * p), rtol=1e-15)
    assert set(np.round(w[10:, 0], 12)) == {0.05, 0.15}
    ms = get_method("multisine")(CONTROLLER, operating_point=0.2, amplitude=0.4, period=32,
                                 harmonics=4).trajectory(64)
    assert_allclose(ms[:, 0], 0.2 * (1 + 0.4 * multisine(64, 32, 4)), rtol=1e-15)
    assert 0.12 - 1e-12 <= ms[:, 0].min() and ms[:, 0].max() <= 0.28 + 1e-12
    low, high = excitation_band("prbs", clock=40)
    assert low == 0 and high == pytest.approx(2.78 / 40)


@pytest.mark.parametrize("name", ["prbs", "multisine"])
@pytest.mark.parametrize("num_steps", [1, 2, 3])
def test_a_run_that_ends_inside_its_hold_is_held_not_refused(name, num_steps):
    # regression (train fuzzer, thorough profile): --hold 3 with a 2-step run raised
    # "num_steps must be >= 1, got 0" from the empty excitation after the hold
    w = get_method(name)(CONTROLLER, hold=3).trajectory(num_steps)
    assert w.shape == (num_steps, 2)
    assert_allclose(w, 0.5, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("name", "options", "error", "message"),
    [("prbs", {"operating_point": 0.0}, ValueError, r"operating_point must lie in \(0, 1\)"),
     ("prbs", {"operating_point": 0.7, "amplitude": 0.5}, ValueError, "must be < 1"),
     ("prbs", {"clock": 0}, ValueError, "clock must be an int >= 1"),
     ("prbs", {"hold": -1}, ValueError, "hold must be an int >= 0"),
     ("prbs", {"excitation_seed": -1}, ValueError, "excitation_seed must be an int >= 0"),
     ("multisine", {"period": 3}, ValueError, "period must lie in \\[4"),
     ("multisine", {"harmonics": 8, "period": 16}, ValueError, "harmonics must be < period/2"),
     ("equal", {"weights": [1, 1]}, TypeError, "takes no option"),
     ("fixed", {"weights": [1.0]}, ValueError, "2 values"),
     ("gaba", {"refresh_every": 0}, ValueError, "refresh_every"),
     ("gaba", {"refresh_every": 2.5}, TypeError, "refresh_every"),
     ("gaba", {"refresh_every": True}, TypeError, "refresh_every")],
)
def test_bad_options_are_named(name, options, error, message):
    with pytest.raises(error, match=message):
        get_method(name)(CONTROLLER, **options)


def test_options_belong_to_their_methods():
    owners = option_owners()
    assert owners["operating_point"][1] == ("prbs", "multisine")
    assert isinstance(owners["clock"][0], Option) and owners["clock"][0].flag == "--clock"
    check_options_belong("prbs", {"clock": 5, "weights": None})
    with pytest.raises(ValueError, match="--clock applies to --method prbs only, not 'gaba'"):
        check_options_belong("gaba", {"clock": 5})
    with pytest.raises(TypeError, match="unknown method option 'bogus'"):
        check_options_belong("gaba", {"bogus": 1})


def test_replay_plans_the_next_seed_and_schedule_the_first(tmp_path):
    runs = {0: tmp_path / "seed0-aaa", 1: tmp_path / "seed1-bbb"}
    options, key = get_method("replay").plan({}, seeds=[0, 1], index=1, reference_runs=runs)
    assert options["replay_trace"] == str(runs[0] / "trace.npz")
    assert key == {"replay_of": {"seed": 0, "hash": "seed0-aaa"}}
    options, key = get_method("schedule").plan({}, seeds=[0, 1], index=1, reference_runs=runs)
    assert "plan_error" in key and "no schedule ratio" in key["plan_error"]  # no trace there
    options, key = get_method("schedule").plan({"schedule_ratio": 3.0}, seeds=[0, 1], index=0,
                                               reference_runs=runs)
    assert options == {"schedule_ratio": 3.0} and key == {}


def test_every_method_validates_the_loop_constants_it_is_built_with():
    # regression: `train --method fixed --lambda-min 1e308` overflowed in fixed's default
    # weights instead of being refused (found by tests/test_cli_fuzz.py)
    from gaba_control.weighting import get_method, method_names

    for name in method_names():
        for bad, match in (({"lambda_min": 1e308}, "lambda_min"), ({"beta": 1.5}, "beta"),
                           ({"warmup": -1}, "warmup")):
            controller = {"num_tasks": 2, "beta": 0.99, "warmup": 100, "lambda_min": 0.05,
                          **bad}
            with pytest.raises(ValueError, match=match):
                get_method(name)(controller)


def test_excitation_periods_are_bounded_with_a_message():
    # regression (train fuzzer): `--method multisine --period 10^21` reached numpy as an
    # array size ("Maximum allowed size exceeded") instead of being refused by name
    from gaba_control.plant.excitation import MAX_PERIOD, multisine, prbs

    with pytest.raises(ValueError, match="period must lie in"):
        multisine(10, period=10**21)
    with pytest.raises(ValueError, match="clock must lie in"):
        prbs(10, clock=MAX_PERIOD + 1)
    assert multisine(8, period=MAX_PERIOD, harmonics=2).shape == (8,)


def test_a_prbs_clock_beyond_its_range_is_refused_on_construction():
    """Regression: ``identify --clock 10^21`` (CI's fuzzer) was accepted and every run then
    crashed in ``prbs``; the method now checks the clock and seed when it is built."""
    from gaba_control.plant.excitation import MAX_PERIOD

    get_method("prbs")(CONTROLLER, clock=MAX_PERIOD)
    for clock in (MAX_PERIOD + 1, 10**21):
        with pytest.raises(ValueError, match="clock must lie in"):
            get_method("prbs")(CONTROLLER, clock=clock)
