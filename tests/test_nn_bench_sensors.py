"""Smoke test of ``python -m benchmarks.bench_sensors --quick`` (timings are not asserted)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def bench(*args: str, timeout: float = 120) -> str:
    """Stdout of ``python -m benchmarks.bench_sensors ARGS`` (raises on a non-zero exit)."""
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_sensors", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=timeout,
    ).stdout


def test_quick_benchmark_runs_and_prints_the_table():
    out = bench("--quick", "--threads", "1")
    rows = [line for line in out.splitlines() if line.startswith("| cmapss | 2 |")]
    assert [r.split("|")[3].strip() for r in rows] == [
        "equal",
        "floor",
        "naive",
        "exact",
        "refresh10",
        "last_layer",
        "representation",
    ]
    ratios = {r.split("|")[3].strip(): float(r.split("|")[6]) for r in rows}
    assert ratios["equal"] == 1.0
    assert ratios["naive"] > ratios["equal"]  # K + 1 backward passes cost more than one
    header = next(line for line in out.splitlines() if line.startswith("| backbone"))
    assert header.split("|")[7].strip() == "× floor"
    floors = {r.split("|")[3].strip(): float(r.split("|")[7]) for r in rows}
    assert floors["floor"] == 1.0
    assert floors["naive"] > floors["floor"]  # K + 1 backward passes against K
    assert "exact × floor pooled over the 10 rounds of the 1 repeats" in out
    assert "exact − floor, the same rounds: median" in out
    assert header.split("|")[8].strip() == "page faults/step"
    assert all(float(r.split("|")[8]) >= 0 for r in rows)
    assert "load average" in out


@pytest.mark.skipif(sys.platform != "linux", reason="mallopt is glibc's")
def test_malloc_retain_and_repeats_are_applied_and_named():
    out = bench("--quick", "--threads", "1", "--malloc", "retain", "--repeat", "2")
    assert "malloc retain" in out and "repeated 2×" in out
    rows = [line.split("|") for line in out.splitlines() if line.startswith("| cmapss | 2 |")]
    assert len(rows) == 7
    for row in rows:  # the median of two ratios lies inside their range, × equal and × floor
        for median, span in ((6, 7), (8, 9)):
            low, high = map(float, row[span].split("–"))
            assert low <= float(row[median]) <= high


def test_bad_repeat_is_refused_with_its_name():
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_sensors", "--repeat", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "--repeat must be >= 1" in proc.stderr


def test_cuda_request_without_cuda_skips_cleanly():
    if torch.cuda.is_available():
        pytest.skip("CUDA present: the skip path is not taken")
    out = bench("--quick", "--device", "cuda", timeout=60)
    assert "CUDA is not available" in out


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux procfs")
def test_cpu_peak_memory_column_sees_a_training_step():
    # Regression: the column read 0 for every method, because the RSS high-water of
    # `import torch` and model set-up was above any training step's. The peak is now reset
    # after a warm-up step. The exact sensor holds K = 2 per-task gradients of the shared
    # parameters (2 MB each in float32) besides the activations, so it peaks higher.
    # Measured through `peak_memory_mb`, as the table is: its child runs with a fixed glibc
    # mmap threshold. Without it (an earlier version of this test ran the child directly)
    # the peaks wandered by ±5 MB run to run and the comparison failed once in CI.
    from benchmarks.bench_sensors import peak_memory_mb

    cpu = torch.device("cpu")
    equal = peak_memory_mb("cmapss", 2, cpu, "equal")
    exact = peak_memory_mb("cmapss", 2, cpu, "exact")
    assert equal > 1.0
    assert exact > equal + 1.0


def test_refresh10_per_step_cost_mixes_the_median_refresh_and_held_steps():
    from benchmarks.bench_sensors import REFRESH, _refresh_split

    warm = 3  # times[i] is step warm + i + 1; warmup 0 refreshes at steps 1, 11, 21, …
    times = [0.007 if (warm + i) % REFRESH == 0 else 0.004 for i in range(60)]
    times[20] = 1.0  # one slow held step: the medians ignore it, a block mean does not
    split = _refresh_split(times, warm)
    assert split["refresh"] == pytest.approx(7.0)
    assert split["held"] == pytest.approx(4.0)
    assert split["per_step"] == pytest.approx((7.0 + (REFRESH - 1) * 4.0) / REFRESH)
    assert split["block_mean"] == pytest.approx(4.3)  # 6 blocks: the slow one is not the median
    assert _refresh_split(times[:1], warm) == {}  # no refresh among the timed steps
    short = _refresh_split(times[:12], warm)  # a refresh, but no whole 10-step block after it
    assert short["per_step"] == pytest.approx(4.3) and math.isnan(short["block_mean"])


def test_paired_ratios_are_the_median_of_each_rounds_ratio():
    import numpy as np

    from benchmarks.bench_sensors import REFRESH, paired_ratios

    # the machine's speed drifts by a factor of 3 from round to round; the exact sensor costs
    # 1.05x the floor in its own round, plus a slow step (a hiccup) in one round of five
    rng = np.random.default_rng(0)
    rounds = 60
    speed = np.exp(rng.uniform(0.0, np.log(3.0), rounds))
    hiccup = np.where(np.arange(rounds) % 5 == 0, 1.5, 1.0)
    times = {"floor": list(speed), "exact": list(1.05 * speed * hiccup)}
    ratios = paired_ratios(times, "floor", warm=0)
    assert ratios["floor"] == 1.0
    assert ratios["exact"] == pytest.approx(1.05)  # the drift cancels, the hiccups are outvoted
    assert ratios["exact"] == pytest.approx(float(np.median(np.array(times["exact"]) / speed)))
    # refresh10: its refresh and held rounds mixed 1 : 9, on the per-round ratios
    warm = 3
    times = {"floor": list(speed),
             "refresh10": [(1.7 if (warm + i) % REFRESH == 0 else 1.1) * s
                           for i, s in enumerate(speed)]}
    mixed = paired_ratios(times, "floor", warm)["refresh10"]
    assert mixed == pytest.approx((1.7 + (REFRESH - 1) * 1.1) / REFRESH)


def test_ablate_adds_the_exact_sensor_without_its_norms_and_without_its_loop():
    out = bench("--quick", "--threads", "1", "--reps", "3", "--ablate")
    rows = [line.split("|") for line in out.splitlines() if line.startswith("| cmapss | 2 |")]
    names = [r[3].strip() for r in rows]
    assert names[-2:] == ["exact − norms", "exact − loop"] and len(names) == 9
    assert all(float(r[7]) > 0 for r in rows)  # each timed against the floor


def test_the_ablated_sensors_leave_out_what_they_name():
    from benchmarks.bench_sensors import _WithoutLoop, _WithoutNorms

    w = torch.ones(3, requires_grad=True)
    for ablated, norms_read in ((_WithoutNorms, False), (_WithoutLoop, True)):
        gaba = ablated(2, warmup=0)
        gaba([w[0] * w[2], 10 * w[1] * w[2]], [w], [w]).backward()
        if norms_read:  # the reading is taken, the loop holds its weights and records nothing
            assert gaba.last_step is None and gaba.last_weights.tolist() == [0.5, 0.5]
        else:  # the loop steps on a constant reading of ones: equal shares, equal weights
            assert gaba.telemetry()["norms"].tolist() == [1.0, 1.0]
        assert w.grad is not None
        w.grad = None


def test_pooled_note_gives_the_ratio_and_the_excess_over_the_floor():
    # floor steps of 20, 30, …, 120 ms and an exact sensor 1.5 ms slower in every round:
    # the excess is 1.5 ms whatever the floor, and 3 % of a step holds from 50 ms on
    from benchmarks.bench_sensors import Timing, _pooled_note

    floor = [0.010 * i for i in range(2, 13)]
    times = {"floor": floor, "exact": [t + 0.0015 for t in floor]}
    runs = [Timing({}, {}, {}, {}, times)] * 2
    note = _pooled_note("cmapss", 2, runs)
    ratio_line, excess_line = note.splitlines()
    assert "pooled over the 22 rounds of the 2 repeats" in ratio_line
    assert "median 1.021" in ratio_line  # 1.5 / 70 ms, the middle floor step
    assert "median 1.50 ms, 95 % interval [1.50, 1.50] ms" in excess_line
    assert excess_line.endswith("within 3 % of a floor step of 50 ms or longer")


def test_exact_step_breakdown_parts_are_disjoint_and_add_up_to_the_step():
    from benchmarks.exact_step_breakdown import breakdown, table

    parts = breakdown(rounds=3, warm=1)
    assert set(parts["floor"]) == {"forward", "backward passes", "sum + optimizer", "step"}
    assert {"exact_norms", "_step_with", "inject", "combine (backward)", "optimizer",
            "GABALoss.forward, the rest", "loss.backward(), the rest"} <= set(parts["exact"])
    for method, timed in parts.items():
        for r, step in enumerate(timed["step"]):
            inside = [values[r] for part, values in timed.items() if part != "step"]
            # each part is timed inside the step and apart from the others, so each is >= 0
            # and together they fill the step but for the patching of the wrappers
            assert all(seconds >= 0 for seconds in inside), (method, r)
            assert 0.8 * step <= sum(inside) <= step, (method, r)
    assert "| exact − floor | **excess, paired by round** |" in table(parts)
    # the instrumentation is gone after the run
    import gaba_control.nn._sensor as sensor_module
    import gaba_control.nn.gaba_loss as gaba_module

    grad = torch.autograd.grad
    assert gaba_module.exact_norms is sensor_module.exact_norms
    assert grad.__module__ == "torch.autograd" and grad.__name__ == "grad"


def test_exact_step_breakdown_refuses_bad_rounds():
    from benchmarks.exact_step_breakdown import breakdown

    with pytest.raises(ValueError, match="rounds must be >= 1"):
        breakdown(rounds=0)
