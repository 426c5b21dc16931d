"""Fuzzing ``gaba-control train``'s arguments: refused with a message, or accepted and run.

Property: for any method and any mix of hostile values for the training and
method flags, parsing either stops (argparse, exit 2) or the configuration is
refused with ``ValueError``/``TypeError`` *naming a flag or field*, or it is
accepted and a short training run on tiny data then finishes ("accepted, then
fails later" is the bug class this hunts) without writing outside ``--out``.
In-process (a subprocess per example would cost a second of imports each);
``tests/test_cli_errors.py`` checks the same promises through real subprocesses.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gaba_control.cmapss.train import add_train_arguments, config_from_args, train
from gaba_control.weighting import method_names, option_owners
from tests.test_cmapss_train import tiny_data

HOSTILE_NUMBERS = ["0", "-1", "1e308", "-1e308", "nan", "inf", "-inf", "1e-320", "0.5", "3",
                   "2.5", "1000000000000000000000", "abc", ""]
TRAIN_FLAGS = ["--lr", "--beta", "--warmup", "--lambda-min", "--rul-scale", "--batch-size",
               "--seed", "--split-seed"]
# methods that read files given on the command line would need them: covered elsewhere
METHODS = [m for m in method_names() if m not in ("replay", "schedule")]
OPTION_FLAGS = [spec.flag for name, (spec, _) in option_owners().items()
                if spec.type in (int, float) and spec.nargs is None]
# every flag and field a refusal may name
NAMES = {f.lstrip("-").replace("-", "_") for f in TRAIN_FLAGS + OPTION_FLAGS} | {
    "lr", "beta", "warmup", "lambda_min", "rul_scale", "batch_size", "seed", "split_seed",
    "steps_per_epoch", "weights", "num_tasks"}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_train_arguments(parser)
    return parser


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=st.sampled_from(METHODS),
       flags=st.lists(st.tuples(st.sampled_from(TRAIN_FLAGS + OPTION_FLAGS),
                                st.sampled_from(HOSTILE_NUMBERS)), max_size=3,
                      unique_by=lambda t: t[0]))
def test_hostile_train_arguments_are_refused_or_run(tmp_path_factory, method, flags):
    root = tmp_path_factory.mktemp("fuzz")
    out = root / "out"
    argv = ["--method", method, "--out", str(out), "--epochs", "1", "--max-batches", "2",
            "--threads", "1", "--no-progress"]
    for flag, value in flags:
        argv += [flag, value]
    try:
        args = _parser().parse_args(argv)
    except (argparse.ArgumentError, SystemExit):
        return  # argparse refuses a value of the wrong type, with a message
    try:
        config = config_from_args(args)
        metrics = train(config, data=tiny_data(n=48))
    except (ValueError, TypeError) as error:
        message = str(error)
        assert any(name in message or name.replace("_", "-") in message for name in NAMES), (
            f"refusal names no argument: {message!r} for {argv}")
        return
    # accepted: it ran to the end (or diverged cleanly, recorded as such)
    assert metrics["status"] in ("ok", "diverged")
    assert metrics["num_steps"] >= 1
    if metrics["status"] == "ok":
        assert math.isfinite(metrics["test_rmse"])
    written = {p.relative_to(root) for p in root.rglob("*")}
    assert all(Path(p).parts[0] == "out" for p in written), written


@pytest.mark.parametrize("method", METHODS)
def test_every_method_runs_with_its_defaults(tmp_path, method):
    args = _parser().parse_args(["--method", method, "--out", str(tmp_path / "o"),
                                 "--epochs", "1", "--max-batches", "2", "--threads", "1",
                                 "--no-progress"])
    metrics = train(config_from_args(args), data=tiny_data(n=48))
    assert metrics["status"] == "ok"
