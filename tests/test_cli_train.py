"""``gaba-control train --quick`` end to end on the real C-MAPSS data (FD001)."""

import json
import math

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal

from gaba_control.cli import main
from gaba_control.cmapss.model import MultiTaskCNN
from gaba_control.cmapss.train import DIVERGED_EXIT_CODE, QUICK_WARMUP
from gaba_control.trace import load_trace, replay_trace

pytestmark = pytest.mark.cmapss
COMMON = ["--subset", "FD001", "--seed", "0", "--threads", "1", "--no-progress"]


@pytest.fixture(scope="module")
def data_dir(cmapss_dir):
    return cmapss_dir  # tests/conftest.py: skips, naming the paths tried, without the data


@pytest.fixture(scope="module")
def quick_runs(data_dir, tmp_path_factory):
    runs = {}
    for method in ("gaba", "equal"):
        out = tmp_path_factory.mktemp(method)
        status = main(
            [
                "train",
                "--quick",
                "--method",
                method,
                "--out",
                str(out),
                "--data-dir",
                str(data_dir),
                *COMMON,
            ]
        )
        runs[method] = (status, out)
    return runs


@pytest.mark.parametrize("method", ["gaba", "equal"])
def test_quick_run_outputs(quick_runs, method):
    status, out = quick_runs[method]
    assert status == 0
    assert {"checkpoint.pt", "metrics.json", "trace.npz"} <= {p.name for p in out.iterdir()}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["method"] == method and metrics["diverged"] is False
    for key in (
        "test_rmse",
        "test_phm08_score",
        "test_health_accuracy",
        "test_macro_f1",
        "val_rmse",
        "wall_time_s",
    ):
        assert math.isfinite(metrics[key]), key
    assert metrics["config"]["quick"] and metrics["config"]["warmup"] == QUICK_WARMUP
    assert metrics["data"]["num_test_engines"] == 100


@pytest.mark.parametrize("method", ["gaba", "equal"])
def test_quick_run_trace_replays(quick_runs, method):
    _, out = quick_runs[method]
    trace = load_trace(out / "trace.npz")
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(trace) == metrics["num_steps"] == 60
    assert trace.method == method and trace.subset == "FD001" and trace.seed == 0
    assert trace.active.sum() == 60 - QUICK_WARMUP and trace.valid.all()
    assert_allclose(replay_trace(trace), trace.weights, rtol=0, atol=1e-6)
    # RUL (MSE in cycles²) dominates the backbone gradient, so GABA moves λ_RUL below 1/2
    assert trace.weights[-1, 0] < 0.45
    if method == "gaba":
        assert_array_equal(trace.applied_weights, trace.weights)
    else:
        assert_array_equal(trace.applied_weights, 0.5)


def test_checkpoint_restores_model(quick_runs):
    _, out = quick_runs["gaba"]
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=True)
    model = MultiTaskCNN(14, 30)
    model.load_state_dict(checkpoint["model"])
    assert checkpoint["epoch"] == 1 and checkpoint["step"] == 60
    assert int(checkpoint["gaba"]["step"]) == 60 and "state" in checkpoint["optimizer"]


def test_same_seed_same_run(data_dir, tmp_path):
    traces = []
    for name in ("a", "b"):
        args = [
            "train",
            "--quick",
            "--epochs",
            "1",
            "--max-batches",
            "4",
            "--out",
            str(tmp_path / name),
            "--data-dir",
            str(data_dir),
            *COMMON,
        ]
        assert main(args) == 0
        traces.append(load_trace(tmp_path / name / "trace.npz"))
    assert_array_equal(traces[0].grad_norms, traces[1].grad_norms)
    assert_array_equal(traces[0].losses, traces[1].losses)


def test_divergence_is_recorded(data_dir, tmp_path):
    # Adam with lr = 1e30 overflows the activations within two steps.
    args = [
        "train",
        "--quick",
        "--epochs",
        "1",
        "--max-batches",
        "5",
        "--lr",
        "1e30",
        "--out",
        str(tmp_path),
        "--data-dir",
        str(data_dir),
        *COMMON,
    ]
    assert main(args) == DIVERGED_EXIT_CODE
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["diverged"] is True and metrics["test_rmse"] is None
    trace = load_trace(tmp_path / "trace.npz")
    assert len(trace) == metrics["divergence"]["step"]
    assert not np.all(np.isfinite(trace.losses[-1]) & np.isfinite(trace.grad_norms[-1]))


def test_missing_data_dir_is_a_message(tmp_path, capsys):
    assert (
        main(
            [
                "train",
                "--quick",
                "--data-dir",
                str(tmp_path / "absent"),
                "--out",
                str(tmp_path / "out"),
            ]
        )
        == 1
    )
    assert "absent" in capsys.readouterr().err


def test_usage_errors():
    assert main(["train", "--method", "nope"]) == 2
    assert main([]) == 2


@pytest.mark.cmapss
@pytest.mark.slow
def test_a_run_killed_by_a_signal_resumes_bit_identically(cmapss_dir, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    common = ["train", "--subset", "FD001", "--quick", "--epochs", "3", "--max-batches", "30",
              "--threads", "1", "--no-progress", "--data-dir", str(cmapss_dir)]
    script = [sys.executable, "-m", "gaba_control.cli"]
    subprocess.run([*script, *common, "--out", str(tmp_path / "whole")], check=True,
                   capture_output=True, timeout=600)
    victim = subprocess.Popen([*script, *common, "--out", str(tmp_path / "cut")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = tmp_path / "cut" / "checkpoint.pt"
    deadline = time.monotonic() + 300
    while not checkpoint.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)  # into the second epoch
    finished_first = (tmp_path / "cut" / "metrics.json").exists()
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=60)
    assert checkpoint.exists() and not finished_first
    subprocess.run([*script, *common, "--out", str(tmp_path / "cut"), "--resume"], check=True,
                   capture_output=True, timeout=600)
    a, b = load_trace(tmp_path / "whole" / "trace.npz"), load_trace(tmp_path / "cut" / "trace.npz")
    for name in ("step", "grad_norms", "weights", "losses"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    whole = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    cut = json.loads((tmp_path / "cut" / "metrics.json").read_text())
    assert cut["test_rmse"] == whole["test_rmse"] and cut["history"] == whole["history"]
