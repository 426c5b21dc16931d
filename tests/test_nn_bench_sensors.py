"""Smoke test of ``python -m benchmarks.bench_sensors --quick`` (timings are not asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_quick_benchmark_runs_and_prints_the_table():
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_sensors", "--quick", "--threads", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    rows = [line for line in out.splitlines() if line.startswith("| cmapss | 2 |")]
    assert [r.split("|")[3].strip() for r in rows] == [
        "equal",
        "naive",
        "exact",
        "refresh10",
        "last_layer",
        "representation",
    ]
    ratios = {r.split("|")[3].strip(): float(r.split("|")[6]) for r in rows}
    assert ratios["equal"] == 1.0
    assert ratios["naive"] > ratios["equal"]  # K + 1 backward passes cost more than one
    assert "load average" in out


def test_cuda_request_without_cuda_skips_cleanly():
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA present: the skip path is not taken")
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_sensors", "--quick", "--device", "cuda"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert "CUDA is not available" in out
