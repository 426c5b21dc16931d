"""gaba-control advise: predictions against the engine, a sane recommendation, clear errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from analysis import advise
from analysis._common import results_dir
from gaba_control.design import Settings, simulate_settings
from gaba_control.trace import load_trace

TRACE = results_dir() / "traces" / "FD002-gaba-seed0.npz"
pytestmark = pytest.mark.skipif(not TRACE.is_file(), reason="no committed FD002 trace")


def test_advice_ranks_feasible_settings_and_keeps_the_published_one_as_reference(tmp_path):
    trace = load_trace(TRACE)
    advice = advise.advise(trace, beta=(0.95, 0.99), warmup=(100,), refresh=(1, 10),
                           floor=(0.0, 0.001, 0.05))
    ref, rec = advice.reference, advice.recommended
    assert (ref["variant"], ref["beta"], ref["floor"], ref["warmup"], ref["refresh"]) == \
        advise.PAPER
    assert rec["feasible"] and rec["rank"] == 1
    # the recommendation is nearer 1/K than GABA's published setting, which sits on its floor
    assert abs(np.log(2 * rec["share_replay"])) < abs(np.log(2 * ref["share_replay"]))
    assert ref["floor_replay"] > 0.8
    # replay numbers are the engine's, for the same setting
    s = Settings.of([advise.PAPER])
    r = simulate_settings(trace.grad_norms, s)
    assert ref["share_replay"] == pytest.approx(float(np.exp(r.share_log_mean[0])))
    files = advice.write(tmp_path)
    assert {p.name for p in files} >= {"advise.csv", "advise.md", "advise_grid.png"}
    assert "Recommendation" in (tmp_path / "advise.md").read_text()


def test_cost_follows_the_refresh_interval():
    c = advise.exact_sensor_cost()
    if not np.isfinite(c):
        pytest.skip("no committed sensor benchmark")
    trace = load_trace(TRACE)
    rows = advise.advise(trace, beta=(0.99,), warmup=(100,), refresh=(1, 10), floor=(0.05,),
                         plant=False).rows
    cost = {r["refresh"]: r["cost"] for r in rows if r["variant"] == "gaba"}
    assert cost[1] == pytest.approx(c) and cost[10] == pytest.approx((c + 9) / 10)


@pytest.mark.parametrize(("args", "message"), [
    (["--floors", "0.5"], "--floors"),
    (["--noise-max", "-1"], "--noise-max"),
    (["--variants", "nope"], "variant"),
    (["--shortlist", "0"], "--shortlist"),
])
def test_cli_refuses_bad_settings_with_a_message(tmp_path, args, message):
    run = subprocess.run([sys.executable, "-m", "analysis.cli", "advise", "--trace", str(TRACE),
                          "--out", str(tmp_path / "o"), *args], capture_output=True, text=True)
    assert run.returncode == 2, run.stderr
    assert message in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(("flag", "value"), [("--warmups", "1000000000000000000000"),
                                             ("--refresh", "1000000000000000000000"),
                                             ("--refresh", "0"), ("--warmups", "-1")])
def test_cli_refuses_step_counts_beyond_the_range(tmp_path, flag, value):
    """Regression (the advise fuzzer, 300 examples): 10^21 overflowed numpy's int64."""
    run = subprocess.run([sys.executable, "-m", "analysis.cli", "advise", "--trace", str(TRACE),
                          "--out", str(tmp_path / "o"), "--no-plant", flag, value],
                         capture_output=True, text=True)
    assert run.returncode == 2 and flag in run.stderr and "Traceback" not in run.stderr


def test_an_approximate_sensor_is_replayed_on_its_biased_reading():
    """The sensor dimension: an approximate sensor's rows are the engine on the norms with
    task 0's scaled by the committed bias, the shares judged on the exact norms; its cost
    is its own benchmark row; the published setting stays the exact-sensor reference."""
    trace = load_trace(TRACE)
    bias = advise.sensor_bias("representation")
    if not np.isfinite(bias):
        pytest.skip("no committed sensor-bias table")
    grid = {"beta": (0.95, 0.99), "warmup": (100,), "refresh": (1,), "floor": (0.001, 0.05),
            "variant": ("gaba", "gaba_inverse")}
    advice = advise.advise(trace, plant=False, sensors=["representation"], **grid)
    assert {r["sensor"] for r in advice.rows} == {"exact", "representation"}
    assert advice.reference["sensor"] == "exact"
    s = Settings.of([("gaba_inverse", 0.99, 0.001, 100, 1)])
    want = simulate_settings(trace.grad_norms, s, reading=trace.grad_norms * [bias, 1.0])
    (row,) = [r for r in advice.rows if r["sensor"] == "representation"
              and (r["variant"], r["beta"], r["floor"]) == ("gaba_inverse", 0.99, 0.001)]
    assert row["share_replay"] == pytest.approx(float(np.exp(want.share_log_mean[0])))
    assert row["cost"] == pytest.approx(advise.sensor_cost("representation"))
    # reading task 0 (RUL, the large norm) too small gives it too much weight: the small
    # task's true share falls below the exact sensor's for the same setting
    (exact,) = [r for r in advice.rows if r["sensor"] == "exact"
                and (r["variant"], r["beta"], r["floor"]) == ("gaba_inverse", 0.99, 0.001)]
    assert row["share_replay"] < exact["share_replay"]
    # a user's own bias replaces the committed one
    own = advise.advise(trace, plant=False, sensors=["representation"],
                        sensor_biases={"representation": 1.0}, **grid)
    (same,) = [r for r in own.rows if r["sensor"] == "representation"
               and (r["variant"], r["beta"], r["floor"]) == ("gaba_inverse", 0.99, 0.001)]
    assert same["share_replay"] == pytest.approx(exact["share_replay"])


@pytest.mark.parametrize(("args", "message"), [
    (["--sensors", "nope"], "--sensors"),
    (["--sensors", "representation", "--sensor-bias", "representation=-1"], "--sensor-bias"),
    (["--sensors", "representation", "--sensor-bias", "representation"], "--sensor-bias"),
    (["--sensor-bias", "last_layer=0.3"], "--sensor-bias"),
])
def test_cli_refuses_bad_sensors_with_a_message(tmp_path, args, message):
    run = subprocess.run([sys.executable, "-m", "analysis.cli", "advise", "--trace", str(TRACE),
                          "--out", str(tmp_path / "o"), "--no-plant", *args],
                         capture_output=True, text=True)
    assert run.returncode == 2, run.stderr
    assert message in run.stderr and "Traceback" not in run.stderr
