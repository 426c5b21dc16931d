"""Fuzzing ``gaba-control compare``, ``sweep``, ``identify``, ``advise`` and ``report``'s
arguments.

Property: any mix of hostile values for their numeric flags either stops at parsing
(exit 2), or is refused with exit 2 and a one-line message naming a flag or setting, or is
accepted and every (tiny) run finishes ok or diverged with exit 0 (none crashes on a setting
that was accepted); never an exception, never a write outside the folders given (the
working directory is a fresh folder, so a stray relative default would show). In-process
through :func:`analysis.cli.main`; ``tests/test_cli_errors.py`` checks the same promises
through real subprocesses.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis.cli import main

pytestmark = pytest.mark.cmapss
HOSTILE = ["0", "-1", "1", "2", "0.5", "2.5", "1e308", "-1e308", "nan", "inf", "1e-320",
           "1000000000000000000000", "abc", ""]
COMPARE_FLAGS = ["--jobs", "--threads", "--epochs", "--lr", "--max-batches", "--beta",
                 "--warmup", "--lambda-min", "--seeds"]
SWEEP_FLAGS = ["--jobs", "--threads", "--epochs", "--max-batches", "--margin", "--seeds",
               "--warmup", "--lambda-min", "--beta", "--refresh-every"]
# words a refusal names: the flag or its setting
NAMES = {"jobs", "threads", "epochs", "lr", "max_batches", "max-batches", "beta", "warmup",
         "lambda_min", "lambda-min", "seeds", "margin", "refresh_every", "refresh-every",
         "n_jobs", "seed", "amplitude", "clock", "period", "harmonics", "operating",
         "windows", "floor", "noise-max", "cost-max", "shortlist", "betas", "warmups",
         "refresh"}
IDENTIFY_FLAGS = ["--jobs", "--threads", "--epochs", "--max-batches", "--seeds",
                  "--operating-points", "--amplitude", "--clock", "--period", "--harmonics",
                  "--windows"]
ADVISE_FLAGS = ["--betas", "--floors", "--warmups", "--refresh", "--noise-max", "--cost-max",
                "--shortlist"]
FUZZ = settings(deadline=None, max_examples=int(os.environ.get("GABA_FUZZ_EXAMPLES", "30")),
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


def _main_in(root: Path, argv: list) -> int:
    """``main(argv)`` with ``root`` as the working directory (restored afterwards)."""
    cwd = Path.cwd()
    os.chdir(root)
    try:
        return main(argv)
    finally:
        os.chdir(cwd)


def _with_defaults(flags, defaults: dict) -> list:
    """``flags`` plus each default flag the draw did not set."""
    given_flags = {f for f, _ in flags}
    return list(flags) + [(f, v) for f, v in defaults.items() if f not in given_flags]


def _outcome(root: Path, argv: list, capsys, *, allowed: set) -> int:
    """Run ``argv`` in ``root``: exit 0, or exit 2 with no traceback and a last line naming a
    flag or setting; nothing written beside the ``allowed`` folders. Returns the status."""
    status = _main_in(root, argv)
    err = capsys.readouterr().err
    assert status in (0, 2), (argv, status, err)
    assert "Traceback" not in err, err
    if status == 2:
        last = err.strip().splitlines()[-1] if err.strip() else ""
        assert any(name in last for name in NAMES) or "usage:" in err or "invalid" in err, (
            argv, err)
    assert {p.name for p in root.iterdir()} <= allowed, (argv, list(root.iterdir()))
    return status


def _run(tmp_path_factory, capsys, command, base, flags):
    root = tmp_path_factory.mktemp("fuzz")
    argv = [command, *base, "--out", "out", "--cache", "cache", "--no-figures",
            "--no-progress"]
    for flag, value in flags:
        argv += [flag, value]
    status = _outcome(root, argv, capsys, allowed={"out", "cache"})
    if status == 0:  # accepted: no run may then crash on a setting ("accepted, fails later")
        import csv

        with open(root / "out" / "runs.csv", newline="") as handle:
            statuses = [row["status"] for row in csv.DictReader(handle)]
        assert statuses and set(statuses) <= {"ok", "diverged"}, (argv, statuses)
    return status


@FUZZ
@given(flags=st.lists(st.tuples(st.sampled_from(COMPARE_FLAGS), st.sampled_from(HOSTILE)),
                      max_size=3, unique_by=lambda t: t[0]))
def test_hostile_compare_arguments(tmp_path_factory, capsys, cmapss_dir, flags):
    base = ["--subsets", "FD001", "--methods", "gaba", "--quick", "--data-dir", str(cmapss_dir)]
    defaults = {"--seeds": "0", "--epochs": "1", "--max-batches": "2", "--threads": "1"}
    flags = _with_defaults(flags, defaults)
    _run(tmp_path_factory, capsys, "compare", base, flags)


@FUZZ
@given(flags=st.lists(st.tuples(st.sampled_from(SWEEP_FLAGS), st.sampled_from(HOSTILE)),
                      max_size=3, unique_by=lambda t: t[0]))
def test_hostile_sweep_arguments(tmp_path_factory, capsys, cmapss_dir, flags):
    base = ["--subset", "FD001", "--quick", "--data-dir", str(cmapss_dir)]
    defaults = {"--seeds": "0", "--epochs": "1", "--max-batches": "2", "--threads": "1",
                "--warmup": "1"}
    flags = _with_defaults(flags, defaults)
    _run(tmp_path_factory, capsys, "sweep", base, flags)


@settings(deadline=None, max_examples=int(os.environ.get("GABA_FUZZ_EXAMPLES", "30")),
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flags=st.lists(st.tuples(st.sampled_from(["--seed", "--only", "--trace", "--jobs"]),
                                st.sampled_from([*HOSTILE, "bode", "nonsense", "../x"])),
                      min_size=1, max_size=2, unique_by=lambda t: t[0]))
def test_hostile_report_arguments_fail_cleanly(tmp_path_factory, capsys, flags):
    # only what is refused: a report that is accepted runs for minutes, tested elsewhere
    flags = list(flags)
    if not any(f == "--trace" for f, _ in flags):
        flags.append(("--trace", "missing.npz"))
    root = tmp_path_factory.mktemp("fuzz")
    argv = ["report", "--quick", "--outdir", "out", "--no-progress"]
    for flag, value in flags:
        argv += [flag, value]
    status = _main_in(root, argv)
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err, (argv, status, err)
    assert not [p for p in root.rglob("*") if p.is_file()], (argv, list(root.rglob("*")))


@FUZZ
@given(flags=st.lists(st.tuples(st.sampled_from(IDENTIFY_FLAGS), st.sampled_from(HOSTILE)),
                      max_size=2, unique_by=lambda t: t[0]))
def test_hostile_identify_arguments(tmp_path_factory, capsys, cmapss_dir, flags):
    """Refused with a message naming a flag, or trained and analysed (tables written, exit 0:
    runs too short to identify a plant are reported, not a crash); nothing outside out/cache."""
    base = ["--subsets", "FD001", "--quick", "--data-dir", str(cmapss_dir), "--no-multisine",
            "--no-closed-loop", "--no-amplitude-test"]
    defaults = {"--seeds": "0", "--epochs": "1", "--max-batches": "2", "--threads": "1",
                "--operating-points": "0.05"}
    root = tmp_path_factory.mktemp("fuzz")
    argv = ["identify", *base, "--out", "out", "--cache", "cache", "--no-progress"]
    for flag, value in _with_defaults(flags, defaults):
        argv += [flag, value]
    if _outcome(root, argv, capsys, allowed={"out", "cache"}) == 0:
        assert (root / "out" / "summary.md").is_file()


TRACE = Path(__file__).resolve().parents[1] / "results" / "traces" / "FD001-gaba-seed0.npz"


@FUZZ
@given(flags=st.lists(st.tuples(st.sampled_from(ADVISE_FLAGS), st.sampled_from(HOSTILE)),
                      min_size=1, max_size=3, unique_by=lambda t: t[0]))
def test_hostile_advise_arguments(tmp_path_factory, capsys, flags):
    """Refused with a message naming a flag, or advice written to out/ only (exit 0)."""
    if not TRACE.is_file():
        pytest.skip("no committed FD001 trace")
    small = {"--betas": "0.99", "--floors": "0.05", "--warmups": "100", "--refresh": "1"}
    root = tmp_path_factory.mktemp("fuzz")
    argv = ["advise", "--trace", str(TRACE), "--out", "out", "--no-plant",
            "--variants", "gaba", "gaba_log_ema"]
    for flag, value in _with_defaults(flags, small):
        argv += [flag, value]
    if _outcome(root, argv, capsys, allowed={"out"}) == 0:
        assert (root / "out" / "advise.md").is_file()
