"""``gaba-control compare --quick`` on the real FD001 data: outputs, cache, resume, divergence."""

import csv
import json

import numpy as np
import pytest
from numpy.testing import assert_allclose

from analysis.cli import main
from analysis.compare import compare, comparison_response
from gaba_control.trace import load_trace
from gaba_control.weighting import schedule_weights

# 81 s measured on 2 shared cores beside two training jobs: slow by the suite's rule.
pytestmark = [pytest.mark.cmapss, pytest.mark.slow]
METHODS = ["gaba", "equal", "fixed", "schedule", "replay"]
# 2 epochs of 8 batches, warmup 10: seconds per run, enough to exercise every path
SMALL = dict(quick=True, max_batches=8, progress=False, threads=1)


@pytest.fixture(scope="module")
def data_dir(cmapss_dir):
    return cmapss_dir  # tests/conftest.py: skips, naming the paths tried, without the data


@pytest.fixture(scope="module")
def quick(data_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    args = ["compare", "--quick", "--max-batches", "8", "--subsets", "FD001", "--methods",
            *METHODS, "--seeds", "0", "1", "--out", str(root / "out"), "--cache",
            str(root / "cache"), "--data-dir", str(data_dir), "--threads", "1", "--no-progress"]
    assert main(args) == 0
    return root


def _stamps(cache):
    return {p: p.stat().st_mtime_ns for p in sorted(cache.rglob("metrics.json"))}


def _rows(out):
    with open(out / "runs.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_outputs(quick):
    out = quick / "out"
    rows = _rows(out)
    assert sorted((r["method"], r["seed"]) for r in rows) == sorted(
        (m, s) for m in METHODS for s in ("0", "1"))
    assert all(r["status"] == "ok" for r in rows)
    for name in ("summary.md", "summary.csv", "paired.csv", "compare_paired_test_rmse.png",
                 "compare_paired_test_macro_f1.svg", "compare_lambda.png", "compare_ratio.png"):
        assert (out / name).is_file(), name
    text = (out / "summary.md").read_text()
    assert "| FD001 | schedule | 2/2 |" in text and "Wilcoxon" in text
    assert not list((quick / "cache").rglob("checkpoint.pt"))  # deleted after each job


def test_open_loop_sources(quick):
    cache = quick / "cache" / "FD001"
    gaba = {int(p.parent.name[4]): load_trace(p) for p in (cache / "gaba").glob("*/trace.npz")}
    # replay on seed 0 applies GABA's λ* of seed 1, and vice versa
    for path in (cache / "replay").glob("*/trace.npz"):
        trace = load_trace(path)
        assert_allclose(trace.applied_weights, gaba[1 - trace.seed].weights, rtol=0, atol=0)
    # schedule: the open loop of the median post-warmup ratio of GABA's first-seed run
    g = gaba[0].grad_norms[gaba[0].active & gaba[0].valid]
    ratio = float(np.median(g[:, 0] / g[:, 1]))
    for path in (cache / "schedule").glob("*/trace.npz"):
        trace = load_trace(path)
        metrics = json.loads((path.parent / "metrics.json").read_text())
        assert metrics["weight_source"]["ratio"] == pytest.approx(ratio, rel=1e-12)
        expected = schedule_weights(ratio, len(trace), warmup=10)
        assert_allclose(trace.applied_weights, expected, rtol=1e-15)
        assert np.all(np.isfinite(trace.grad_norms))  # norms measured for every method


def test_rerun_is_cached(quick, data_dir):
    before = _stamps(quick / "cache")
    response = compare(["FD001"], METHODS, [0, 1], out=quick / "again", cache=quick / "cache",
                       data_dir=str(data_dir), figures=False, **SMALL)
    assert _stamps(quick / "cache") == before  # nothing retrained
    assert len(response.rows) == 10
    assert [r["test_rmse"] for r in response.rows] == pytest.approx(
        [float(r["test_rmse"]) for r in _rows(quick / "out")], rel=1e-12)


def test_cached_only_trains_nothing_and_tabulates_what_exists(quick, data_dir):
    before = _stamps(quick / "cache")
    response = compare(["FD001"], ["gaba", "equal", "famo"], [0, 1, 2], out=quick / "cached",
                       cache=quick / "cache", data_dir=str(data_dir), figures=False,
                       cached_only=True, **SMALL)
    assert _stamps(quick / "cache") == before  # nothing trained, famo and seed 2 absent
    assert sorted((r["method"], r["seed"]) for r in response.rows) == [
        ("equal", 0), ("equal", 1), ("gaba", 0), ("gaba", 1)]


@pytest.mark.slow
def test_every_field_method_trains_and_is_tabulated(data_dir, tmp_path):
    methods = ["gaba", "gradnorm", "gradnorm_softmax", "uncertainty", "dwa", "famo", "upgrad",
               "mgda"]
    response = compare(["FD001"], methods, [0], out=tmp_path / "out", cache=tmp_path / "cache",
                       data_dir=str(data_dir), figures=False, **SMALL)
    assert {r["method"]: r["status"] for r in response.rows} == dict.fromkeys(methods, "ok")
    text = (tmp_path / "out" / "summary.md").read_text()
    assert "Holm p" in text and "Weights applied and divergences" in text
    for row in response.rows:
        assert np.isfinite(row["weight_min"]) and row["weight_max"] >= row["weight_min"]
        assert row["negative_weight_steps"] >= 0


def test_interrupted_job_resumes(quick, data_dir):
    before = _stamps(quick / "cache")
    victim = next(p for p in before if "/equal/" in str(p))
    original = json.loads(victim.read_text())
    victim.unlink()  # as if killed before its metrics were written
    compare(["FD001"], METHODS, [0, 1], out=quick / "resumed", cache=quick / "cache",
            data_dir=str(data_dir), figures=False, **SMALL)
    after = _stamps(quick / "cache")
    assert after.keys() == before.keys()
    changed = [p for p in after if after[p] != before[p]]
    assert changed == [victim]
    redone = json.loads(victim.read_text())
    assert redone["test_rmse"] == pytest.approx(original["test_rmse"], rel=1e-6)  # deterministic


def test_diverged_runs_are_counted(data_dir, tmp_path):
    # Adam with lr = 1e30 overflows within a few steps; two workers exercise the process pool.
    response = compare(["FD001"], ["gaba", "equal"], [0], out=tmp_path / "out",
                       cache=tmp_path / "cache", data_dir=str(data_dir), lr=1e30, epochs=1,
                       jobs=2, figures=False, **{**SMALL, "max_batches": 3})
    assert [r["status"] for r in response.rows] == ["diverged", "diverged"]
    summary = response.summary()
    assert all((r["n_ok"], r["n"], r["n_diverged"]) == (0, 1, 1) for r in summary)
    text = (tmp_path / "out" / "summary.md").read_text()
    assert "| FD001 | equal | 0/1 |" in text and "equal seed 0: diverged" in text
    again = comparison_response(tmp_path / "out", cache=tmp_path / "cache")
    assert [r["status"] for r in again.rows] == ["diverged", "diverged"]
