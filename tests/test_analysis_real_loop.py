"""The real-loop study on synthetic and real (quick C-MAPSS) traces."""

import numpy as np
import pytest
from helpers import synthetic_trace
from numpy.testing import assert_allclose

from analysis import real_loop
from gaba_control.formulas import floor_renormalise


def verdicts(claims):
    return {c.claim.split(" (")[0]: c.verdict for c in claims}


def test_saturated_loop_is_reported_as_not_balancing(tmp_path):
    # A constant 500x imbalance drives the EMA below the floor; the weighted
    # share of the small task then sits far below 1/2.
    g = np.tile([500.0, 1.0], (1500, 1))
    study = real_loop.run(tmp_path, seed=0, trace=synthetic_trace(g, warmup=100), quick=True)
    v = verdicts(study.claims)
    assert v["GABA equalises the tasks' contributions to the shared update"] == "refuted"
    assert v["the floor is a relief valve that does nothing ~99% of the time"] == "refuted"
    assert v["GABA's weights stay inside the proven bounds at every step"] == "holds"
    assert v["replaying the recorded g through the numpy controller reproduces the torch λ*"] \
        == "holds"
    assert all(p.exists() for p in study.figures)
    # the weighted share at the floor-bound steady state, from the formulas
    w = floor_renormalise(np.array([1 / 501, 500 / 501]), 0.05)
    expected_share = w[1] * 1.0 / (w[0] * 500.0 + w[1] * 1.0)
    summary = real_loop.real_loop_response(synthetic_trace(g, warmup=100)).summary()
    assert summary["small_task"] == 1
    assert_allclose(summary["share_weighted_small"], expected_share, rtol=1e-3)


def test_balanced_loop_holds():
    g = np.exp(np.random.default_rng(0).normal(0, 0.1, (800, 2))) * [2.0, 1.0]
    response = real_loop.real_loop_response(synthetic_trace(g, warmup=50))
    v = verdicts(response.claims())
    assert v["GABA equalises the tasks' contributions to the shared update"] == "holds"
    assert v["the floor is a relief valve that does nothing ~99% of the time"] == "holds"


def test_without_trace_or_post_warmup_steps_is_not_testable(tmp_path):
    study = real_loop.run(tmp_path, seed=0, trace=None, quick=True)
    assert [c.verdict for c in study.claims] == ["not testable"]
    short = real_loop.real_loop_response(synthetic_trace(np.ones((20, 2)), warmup=100))
    assert [c.verdict for c in short.claims()] == ["not testable"]


def test_rolling_median_is_trailing_and_nan_aware():
    x = np.array([1.0, 3.0, np.nan, 5.0, 7.0])
    assert_allclose(real_loop.rolling_median(x, 2), [np.nan, 2.0, 3.0, 5.0, 6.0])
    assert np.isnan(real_loop.rolling_median(x, 9)).all()
    assert_allclose(real_loop.rolling_median(x, 1), x)


@pytest.mark.cmapss
def test_real_quick_training_trace(tmp_path, cmapss_dir):
    from gaba_control.cmapss.train import TrainConfig, train
    from gaba_control.trace import load_trace

    train(TrainConfig(method="gaba", subset="FD001", quick=True, out=str(tmp_path / "run"),
                      data_dir=str(cmapss_dir), progress=False))
    trace = load_trace(tmp_path / "run" / "trace.npz")
    response = real_loop.real_loop_response(trace)
    assert response.replay_error <= 1e-6
    s = response.summary()
    assert s["ratio_median"] > 1  # RUL (MSE in cycles) pulls harder than health
    assert 0 <= s["floor_fraction"] <= 1


def test_floor_fraction_describes_the_applied_weights():
    # regression (issue 13): an equal-weights run reported GABA's shadow floor fraction
    # (94 % on FD002) although its applied weights were 1/2 throughout
    from pathlib import Path

    from analysis.real_loop import _below_floor, real_loop_response
    from gaba_control.trace import load_trace

    assert _below_floor([[0.5, 0.5], [0.96, 0.04], [1.9, 0.08]], 0.05).tolist() == [
        False, True, True]
    traces = Path(__file__).resolve().parents[1] / "results" / "traces"
    if not (traces / "FD002-equal-seed0.npz").is_file():
        return
    gaba = real_loop_response(load_trace(traces / "FD002-gaba-seed0.npz"))
    equal = real_loop_response(load_trace(traces / "FD002-equal-seed0.npz"))
    floor_binds = (gaba.ema.min(axis=-1) < gaba.lambda_min) & gaba.post_warmup
    assert gaba.floor_fraction == floor_binds.sum() / gaba.post_warmup.sum()
    assert equal.floor_fraction == 0.0
