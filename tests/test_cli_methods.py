"""``gaba-control train --method fixed|schedule|replay``: options and their errors on the CLI."""

import json

import numpy as np
import pytest
from numpy.testing import assert_allclose

from analysis.cli import main as app_main
from gaba_control.cli import main
from gaba_control.trace import load_trace

COMMON = ["--subset", "FD001", "--seed", "0", "--threads", "1", "--no-progress"]


@pytest.fixture(scope="module")
def data_dir(cmapss_dir):
    return cmapss_dir  # tests/conftest.py: skips, naming the paths tried, without the data


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--method", "fixed", "--weights", "1", "-1"], "finite and >= 0"),
        (["--method", "fixed", "--weights", "1", "2", "3"], "must have 2 values"),
        (["--method", "gaba", "--weights", "1", "1"], "--weights applies to --method fixed"),
        (["--method", "equal", "--replay-trace", "x.npz"], "--replay-trace applies"),
        (["--method", "schedule", "--schedule-ratio", "0"], "schedule_ratio"),
    ],
)
def test_bad_options_are_messages(tmp_path, capsys, args, message):
    assert main(["train", *args, "--out", str(tmp_path / "never"), *COMMON]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "never").exists()


def test_help_lists_the_methods(capsys):
    assert main(["train", "--help"]) == 0
    text = capsys.readouterr().out
    for word in ("fixed", "schedule", "replay", "--weights", "--schedule-ratio",
                 "--schedule-from", "--replay-trace"):
        assert word in text
    assert app_main(["compare", "--help"]) == 0
    text = capsys.readouterr().out
    for word in ("--jobs", "--backend", "dask", "--seeds", "--cache"):
        assert word in text


@pytest.mark.cmapss
def test_fixed_and_replay_on_real_data(data_dir, tmp_path, capsys):
    quick = ["--quick", "--epochs", "1", "--max-batches", "6", "--data-dir", str(data_dir)]
    assert main(["train", "--method", "fixed", "--weights", "1", "3",
                 "--out", str(tmp_path / "fixed"), *quick, *COMMON]) == 0
    fixed = load_trace(tmp_path / "fixed" / "trace.npz")
    assert_allclose(fixed.applied_weights, np.tile([0.25, 0.75], (6, 1)), rtol=1e-15)
    metrics = json.loads((tmp_path / "fixed" / "metrics.json").read_text())
    assert metrics["status"] == "ok" and metrics["weight_source"]["weights"] == [0.25, 0.75]
    trace = str(tmp_path / "fixed" / "trace.npz")
    # a 6-step trace cannot drive a 12-step run
    assert main(["train", "--method", "replay", "--replay-trace", trace, "--max-batches", "12",
                 "--out", str(tmp_path / "replay"), *quick[:3], *quick[5:], *COMMON]) == 2
    assert "replay trace has 6 steps, fewer than this run's 12 steps" in capsys.readouterr().err
    assert main(["train", "--method", "replay", "--replay-trace", trace, "--warmup", "3",
                 "--out", str(tmp_path / "replay"), *quick, *COMMON]) == 2
    assert "warmup=10 in the trace, warmup=3 in this run" in capsys.readouterr().err
