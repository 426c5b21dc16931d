"""Weight sources of the training methods: fixed, schedule, replay (no real data needed)."""

from dataclasses import replace

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from gaba_control.cmapss.train import TrainConfig, train
from gaba_control.controller import GABAController
from gaba_control.formulas import floor_renormalise
from gaba_control.trace import load_trace
from gaba_control.weighting import (
    fixed_weights,
    median_ratio,
    method_names,
    replay_weights,
    schedule_weights,
)
from tests.test_cmapss_train import tiny_data

CONTROLLER = {"num_tasks": 2, "beta": 0.99, "warmup": 3, "lambda_min": 0.05}


def _config(tmp_path, name, **kw):
    base = dict(epochs=2, batch_size=32, out=str(tmp_path / name), progress=False, threads=1,
                warmup=3)
    return TrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def gaba_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gaba")
    train(_config(tmp, "gaba"), data=tiny_data())
    return tmp / "gaba"


def test_methods():
    assert method_names()[:5] == ("gaba", "equal", "fixed", "schedule", "replay")


@pytest.mark.parametrize("lambda_min", [0.0, 0.01, 0.05, 0.2])
def test_fixed_default_is_gaba_saturated_output(lambda_min):
    expected = np.array([lambda_min, 1.0]) / (1.0 + lambda_min)
    assert_allclose(fixed_weights(lambda_min=lambda_min), expected, rtol=1e-15)
    assert_allclose(fixed_weights(lambda_min=lambda_min),
                    floor_renormalise(np.array([0.0, 1.0]), lambda_min), rtol=0, atol=0)


@pytest.mark.parametrize(
    ("values", "message"),
    [([1.0], "2 values"), ([1.0, 2.0, 3.0], "2 values"), ([-0.1, 1.0], ">= 0"),
     ([np.nan, 1.0], "finite"), ([0.0, 0.0], "all be zero")],
)
def test_fixed_rejects_bad_weights(values, message):
    with pytest.raises(ValueError, match=message):
        fixed_weights(values)


def test_fixed_normalises():
    assert_allclose(fixed_weights([2.0, 6.0]), [0.25, 0.75], rtol=1e-15)
    assert_allclose(fixed_weights([1, 1, 2], num_tasks=3), [0.25, 0.25, 0.5], rtol=1e-15)


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9, 0.99])
@pytest.mark.parametrize("ratio", [0.5, 3.0, 500.0])
def test_schedule_is_controller_on_constant_reading(beta, ratio):
    w = schedule_weights(ratio, 300, beta=beta, warmup=20, lambda_min=0.05)
    g = np.tile([ratio, 1.0], (300, 1))
    ref = GABAController(2, beta=beta, warmup=20, lambda_min=0.05).run(g).weights
    assert_allclose(w, ref, rtol=0, atol=0)
    assert_allclose(w[:20], 0.5, rtol=0, atol=0)  # gated
    # open loop settles where the controller's fixed point is for this constant reading
    settled = floor_renormalise(np.array([1.0, ratio]) / (1.0 + ratio), 0.05)
    if beta <= 0.9:
        assert_allclose(w[-1], settled, rtol=1e-9)


def test_schedule_rejects_bad_ratio():
    for bad in (0.0, -1.0, np.inf, np.nan):
        with pytest.raises(ValueError, match="ratio"):
            schedule_weights(bad, 10)


def test_median_ratio(gaba_run):
    trace = load_trace(gaba_run / "trace.npz")
    keep = trace.active & trace.valid
    expected = np.median(trace.grad_norms[keep, 0] / trace.grad_norms[keep, 1])
    assert median_ratio(trace) == pytest.approx(expected, rel=1e-12)


def test_replay_mismatches_are_named(gaba_run):
    trace = load_trace(gaba_run / "trace.npz")
    n = len(trace)
    assert_array_equal(replay_weights(trace, n, CONTROLLER), trace.weights)
    with pytest.raises(ValueError, match=f"has {n} steps, fewer than this run's {n + 1}"):
        replay_weights(trace, n + 1, CONTROLLER)
    with pytest.raises(ValueError, match="K=2 tasks, this run has K=3"):
        replay_weights(trace, n, {**CONTROLLER, "num_tasks": 3})
    for key, value in (("beta", 0.9), ("warmup", 100), ("lambda_min", 0.1)):
        with pytest.raises(ValueError, match=f"does not fit: {key}="):
            replay_weights(trace, n, {**CONTROLLER, key: value})


def test_train_replay_mismatch_is_a_value_error(gaba_run, tmp_path):
    trace = str(gaba_run / "trace.npz")
    with pytest.raises(ValueError, match="fewer than this run's"):
        train(_config(tmp_path, "long", method="replay", options={"replay_trace": trace},
                      epochs=3),
              data=tiny_data())
    with pytest.raises(ValueError, match="lambda_min"):
        train(_config(tmp_path, "cfg", method="replay", options={"replay_trace": trace},
                      lambda_min=0.1),
              data=tiny_data())


@pytest.mark.parametrize("method", ["fixed", "schedule", "replay"])
def test_sources_are_applied_and_gaba_runs_alongside(gaba_run, tmp_path, method):
    gaba = load_trace(gaba_run / "trace.npz")
    options = {"fixed": {"weights": (1.0, 3.0)}, "schedule": {"schedule_ratio": 40.0},
               "replay": {"replay_trace": str(gaba_run / "trace.npz")}}[method]
    metrics = train(_config(tmp_path, method, method=method, options=options),
                    data=tiny_data())
    trace = load_trace(tmp_path / method / "trace.npz")
    expected = {
        "fixed": np.tile([0.25, 0.75], (len(trace), 1)),
        "schedule": schedule_weights(40.0, len(trace), beta=0.99, warmup=3, lambda_min=0.05),
        "replay": gaba.weights,
    }[method]
    assert_allclose(trace.applied_weights, expected, rtol=1e-15, atol=0)
    assert metrics["status"] == "ok" and metrics["weight_source"]["method"] == method
    # the loop still ran on the measured norms: λ* is GABA's for this run's g, not the applied one
    ref = GABAController(2, beta=0.99, warmup=3, lambda_min=0.05).run(trace.grad_norms).weights
    assert_allclose(trace.weights, ref, rtol=1e-12)
    assert np.all(np.isfinite(trace.grad_norms))


def test_replay_of_own_trace_reproduces_the_gaba_run(gaba_run, tmp_path):
    # Same seed, same λ* applied open loop: the same training, to float rounding.
    train(_config(tmp_path, "r", method="replay",
                  options={"replay_trace": str(gaba_run / "trace.npz")}),
          data=tiny_data())
    a, b = load_trace(gaba_run / "trace.npz"), load_trace(tmp_path / "r" / "trace.npz")
    assert_allclose(b.losses, a.losses, rtol=1e-5)


@pytest.mark.parametrize(
    ("change", "message"),
    [({"weights": (1.0, 1.0)}, "--weights applies to --method fixed"),
     ({"schedule_ratio": 5.0}, "--schedule-ratio applies to --method schedule"),
     ({"replay_trace": "x.npz"}, "--replay-trace applies to --method replay"),
     ({"method": "fixed", "weights": (1.0, -1.0)}, ">= 0"),
     ({"method": "schedule", "schedule_ratio": -2.0}, "schedule_ratio"),
     ({"method": "replay"}, "needs --replay-trace"),
     ({"method": "schedule", "schedule_from": "/nonexistent.npz"}, "does not exist"),
     ({"method": "prbs", "operating_point": 0.8, "amplitude": 0.5}, "must be < 1"),
     ({"method": "prbs", "clock": 0}, "clock must be an int >= 1"),
     ({"method": "multisine", "harmonics": 300}, "harmonics must be < period/2"),
     ({"method": "multisine", "amplitude": 1.5}, r"amplitude must lie in \(0, 1\)")],
)
def test_bad_method_options(tmp_path, change, message):
    change = dict(change)
    method = change.pop("method", "gaba")
    config = replace(_config(tmp_path, "never"), method=method, options=change)
    with pytest.raises(ValueError, match=message):
        train(config, data=tiny_data())


def test_default_schedule_ratio_is_the_committed_reference():
    from gaba_control.cmapss.train import weighting_method
    from gaba_control.weighting import DEFAULT_SCHEDULE_TRACE

    if not DEFAULT_SCHEDULE_TRACE.is_file():
        pytest.skip(f"reference trace not committed: {DEFAULT_SCHEDULE_TRACE}")
    method = weighting_method(TrainConfig(method="schedule"))
    ratio, origin = method.ratio, method.ratio_from
    reference = load_trace(DEFAULT_SCHEDULE_TRACE)
    assert (reference.subset, reference.method, reference.seed) == ("FD001", "gaba", 0)
    assert ratio == median_ratio(reference) and str(DEFAULT_SCHEDULE_TRACE) in origin
    assert ratio > 1.0  # the RUL gradient dominates on C-MAPSS with the loss in cycles²
