"""Everyday mistakes on the command line: a message naming the problem, exit 2, no traceback.

Each case runs the real console script in a subprocess and checks that nothing
was written outside the output folder it was given.
"""

import subprocess
import sys

import pytest


def _run(args, cwd):
    return subprocess.run([sys.executable, "-m", "gaba_control.analysis.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    ("args", "message"),
    [(["train", "--out", "{file}", "--quick"], "exists and is not a directory"),
     (["report", "--outdir", "{file}", "--quick"], "exists and is not a directory"),
     (["report", "--only", "nope", "--outdir", "{dir}/r"], "unknown study"),
     (["report", "--trace", "{dir}/missing.npz", "--outdir", "{dir}/r"], "trace file not found"),
     (["compare", "--seeds", "-1", "--out", "{dir}/c", "--cache", "{dir}/cache"],
      "seeds must be ints >= 0"),
     (["compare", "--out", "{file}", "--cache", "{dir}/cache"], "exists and is not a directory"),
     # accepted before, then every run crashed on it and the command exited 0
     (["compare", "--threads", "-1", "--out", "{dir}/c", "--cache", "{dir}/cache"],
      "threads must be >= 1"),
     (["sweep", "--margin", "nan", "--out", "{dir}/s", "--cache", "{dir}/cache"],
      "margin must be a finite number > 0"),
     (["sweep", "--epochs", "0", "--out", "{dir}/s", "--cache", "{dir}/cache"],
      "epochs must be >= 1"),
     (["identify", "--operating-points", "0.9", "--amplitude", "0.5", "--cache",
       "{dir}/cache", "--train-only"], "must be < 1"),
     (["train", "--method", "fixed", "--weights", "1", "-1", "--out", "{dir}/t"], ">= 0")],
)
def test_mistakes_are_messages(tmp_path, args, message):
    file = tmp_path / "a_file.txt"
    file.write_text("keep me")
    work = tmp_path / "work"
    work.mkdir()
    args = [a.format(file=file, dir=tmp_path) for a in args]
    before = sorted(p.name for p in tmp_path.iterdir())
    result = _run(args, cwd=work)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert file.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing new outside
    assert not list(work.iterdir())
