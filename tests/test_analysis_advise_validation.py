"""advise --validate: measured like predicted, the settings it trains, its statistics, real runs."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from analysis import advise
from analysis._common import results_dir
from analysis.advise_validation import (
    AdviceValidation,
    advice_validation_response,
    setting_job,
    validation_settings,
)
from analysis.compare import _base_config, make_job
from gaba_control.design import Settings, simulate_settings, trace_loop_quantities
from gaba_control.trace import load_trace

TRACES = results_dir() / "traces"


@pytest.mark.parametrize("variant", ["gaba", "gaba_antiwindup", "gaba_log_ema"])
@pytest.mark.parametrize("refresh", [1, 4])
def test_measured_quantities_have_the_predictions_definitions(variant, refresh):
    """A run that applied exactly the replayed weights measures exactly what replay predicted:
    the measurement and the prediction are one definition (held rows NaN for N > 1)."""
    g = np.exp(np.random.default_rng(refresh).normal(size=(600, 2))) * [80.0, 1.0]
    s = Settings.grid(variant=(variant,), beta=(0.95,), floor=(0.02,), warmup=(40,),
                      refresh=(refresh,))
    predicted = simulate_settings(g, s)
    w = simulate_settings(g, s, keep=True).weights[:, 0]
    measured_norms = g.copy()
    if refresh > 1:  # what a refreshing run records: the norms of its refresh steps only
        t = np.arange(1, 601)
        measured_norms[~((t > 40) & ((t - 41) % refresh == 0))] = np.nan
    q = trace_loop_quantities(measured_norms, 2 * w, floor=0.02, warmup=40)  # sum 2: normalised
    if refresh == 1:  # every step read: identical to the prediction
        assert q["share"] == pytest.approx(math.exp(predicted.share_log_mean[0]), rel=1e-12)
        assert q["floor_fraction"] == pytest.approx(predicted.floor_fraction[0], abs=1e-12)
        assert q["noise"] == pytest.approx(predicted.log_weight_std[0], rel=1e-9)
        assert q["steps"] == 560
    else:  # the refresh steps sample the same quantities: the same to sampling error
        assert q["steps"] == len(range(41, 601, refresh))
        assert q["share"] == pytest.approx(math.exp(predicted.share_log_mean[0]), rel=0.15)


def test_trace_loop_quantities_refuses_bad_arguments():
    g = np.ones((10, 2))
    with pytest.raises(ValueError, match="shape"):
        trace_loop_quantities(g, np.ones((9, 2)), floor=0.05, warmup=0)
    with pytest.raises(ValueError, match="floor"):
        trace_loop_quantities(g, g, floor=0.5, warmup=0)
    with pytest.raises(ValueError, match="warmup"):
        trace_loop_quantities(g, g, floor=0.05, warmup=-1)


def _advice(**grid):
    return advise.advise(load_trace(TRACES / "FD002-gaba-seed0.npz"), **grid)


@pytest.mark.skipif(not (TRACES / "FD002-gaba-seed0.npz").is_file(), reason="no FD002 trace")
def test_the_three_settings_and_their_jobs(tmp_path):
    advice = _advice(variant=("gaba", "gaba_log_ema"), beta=(0.95, 0.99), warmup=(50, 100),
                     refresh=(1, 10), floor=(0.001, 0.05))
    chosen = validation_settings(advice)
    assert list(chosen) == ["recommended", "published", "lowest"]
    assert chosen["recommended"]["rank"] == 1
    keys = {tuple(chosen[r][f] for f in ("variant", "beta", "floor", "warmup", "refresh"))
            for r in chosen}
    assert len(keys) == 3
    # the lowest-ranked setting other than the published one (which the grid holds too)
    assert chosen["lowest"]["rank"] >= len(advice.rows) - 2
    assert (chosen["published"]["variant"], chosen["published"]["floor"]) == ("gaba", 0.05)
    assert all(r["share_plant"] is not None for r in chosen.values())  # all plant-checked
    base = _base_config(quick=False, epochs=None, threads=1, data_dir="d")
    # the published setting is the comparisons' own GABA run: one cache entry
    job = setting_job(tmp_path, "FD002", 3, chosen["published"], base)
    assert job.directory == make_job(tmp_path, "FD002", "gaba", 3, base).directory
    rec = setting_job(tmp_path, "FD002", 3, chosen["recommended"], base)
    r = chosen["recommended"]
    assert (rec.config["beta"], rec.config["lambda_min"], rec.config["warmup"]) == (
        r["beta"], r["floor"], r["warmup"])
    assert (rec.config["options"] or {}).get("refresh_every", 1) == r["refresh"]


def _synthetic() -> AdviceValidation:
    def pred(rank, variant, share, floor, noise):
        return {"rank": rank, "variant": variant, "beta": 0.99, "floor": 0.05, "warmup": 100,
                "refresh": 1, "share_replay": share, "share_plant": share * 1.1,
                "floor_replay": floor, "floor_plant": floor, "noise_replay": noise,
                "noise_plant": None}

    predictions = {"recommended": pred(1, "gaba_log_ema", 0.45, 0.1, 0.4),
                   "published": pred(9, "gaba", 0.03, 0.9, 0.3)}
    runs = []
    for seed in range(4):
        for role, shift, share in (("recommended", -2.0 + 0.1 * seed, 0.4 + 0.02 * seed),
                                   ("published", 0.0, 0.03)):
            runs.append({"role": role, "subset": "FD002", "method": predictions[role]["variant"],
                         "seed": seed, "status": "ok", "test_rmse": 17.0 + shift + 0.3 * seed,
                         "health_macro_f1": 0.9, **{f: predictions[role][f] for f in
                                                   ("variant", "beta", "floor", "warmup",
                                                    "refresh")},
                         "share": share, "floor_fraction": 0.1 if role == "recommended" else 0.9,
                         "noise": 0.35, "steps": 4000})
    return AdviceValidation(predictions, runs, "FD002", "FD002 gaba seed 0 (4320 steps)")


def test_summary_geometric_interval_and_verdicts():
    v = _synthetic()
    rows = {(r["role"], r["quantity"]): r for r in v.summary()}
    share = rows[("recommended", "share")]
    logs = np.log([0.4, 0.42, 0.44, 0.46])
    half = stats.t.ppf(0.975, 3) * logs.std(ddof=1) / 2
    assert share["measured"] == pytest.approx(math.exp(logs.mean()))
    assert (share["ci_low"], share["ci_high"]) == pytest.approx(
        (math.exp(logs.mean() - half), math.exp(logs.mean() + half)))
    assert share["within_replay"] is True and share["within_plant"] is False  # 0.495 > high
    assert rows[("published", "noise")]["within_plant"] is None  # no plant prediction
    assert math.isnan(rows[("published", "noise")]["ci_low"]) or \
        rows[("published", "noise")]["ci_low"] == pytest.approx(0.35)


def test_paired_differences_against_the_published_setting():
    v = _synthetic()
    (row,) = v.paired()
    d = np.array([-2.0 + 0.1 * s for s in range(4)])
    assert row["role"] == "recommended" and row["n"] == 4
    assert row["mean"] == pytest.approx(d.mean())
    assert row["t_holm_p"] == pytest.approx(stats.ttest_1samp(d, 0).pvalue)  # one test: Holm = p


def test_write_and_read_back(tmp_path):
    v = _synthetic()
    files = v.write(tmp_path, figures=True)
    assert {p.name for p in files} >= {"runs.csv", "predictions.csv", "summary.md",
                                      "advise_validation.png", "advise_validation.pdf"}
    again = advice_validation_response(tmp_path)
    assert again.summary() == v.summary()
    assert again.paired() == v.paired()
    assert again.trace_label == v.trace_label
    assert "Test RMSE − the published setting's" in (tmp_path / "summary.md").read_text()


def test_read_back_refuses_a_corrupted_table(tmp_path):
    _synthetic().write(tmp_path, figures=False)
    text = (tmp_path / "runs.csv").read_text().replace("17.0", "seventeen", 1)
    (tmp_path / "runs.csv").write_text(text)
    with pytest.raises(ValueError, match=r"runs\.csv"):
        advice_validation_response(tmp_path)


@pytest.mark.skipif(not (TRACES / "FD002-gaba-seed0.npz").is_file(), reason="no FD002 trace")
def test_cli_cached_only_without_runs_is_a_message(tmp_path):
    run = subprocess.run([sys.executable, "-m", "analysis.cli", "advise", "--trace",
                          str(TRACES / "FD002-gaba-seed0.npz"), "--out", str(tmp_path / "o"),
                          "--betas", "0.99", "--warmups", "100", "--refresh", "1",
                          "--validate", "--cached-only", "--cache", str(tmp_path / "c")],
                         capture_output=True, text=True)
    assert run.returncode == 2
    assert "--cached-only" in run.stderr and "Traceback" not in run.stderr


@pytest.mark.cmapss
@pytest.mark.skipif(not (TRACES / "FD001-gaba-seed0.npz").is_file(), reason="no FD001 trace")
def test_real_validation_trains_measures_and_resumes(cmapss_dir, tmp_path):
    from analysis.cli import main

    args = ["advise", "--trace", str(TRACES / "FD001-gaba-seed0.npz"), "--out",
            str(tmp_path / "out"), "--variants", "gaba", "gaba_log_ema", "--betas", "0.9",
            "0.99", "--floors", "0.01", "0.05", "--warmups", "4", "--refresh", "1", "3",
            "--validate", "--quick", "--epochs", "1", "--max-batches", "12", "--seeds", "0",
            "1", "--cache", str(tmp_path / "cache"), "--data-dir", str(cmapss_dir),
            "--threads", "1", "--no-progress", "--no-plant"]
    assert main(args) == 0
    out = tmp_path / "out" / "validation"
    v = advice_validation_response(out)
    assert len(v.runs) == 2 * len(v.predictions) and all(r["status"] == "ok" for r in v.runs)
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "cache").rglob("metrics.json")}
    assert len(stamps) == len(v.runs)
    assert main(args) == 0  # a rerun trains nothing and measures the same
    assert stamps == {p: p.stat().st_mtime_ns for p in (tmp_path / "cache").rglob("metrics.json")}
    assert advice_validation_response(out).runs == v.runs
    # a refreshing run read the norms on its refresh steps only
    for trace_path in (tmp_path / "cache").rglob("trace.npz"):
        trace = load_trace(trace_path)
        every = (trace.metadata()["config"]["options"] or {}).get("refresh_every", 1)
        measured = np.isfinite(trace.grad_norms).all(axis=1)
        assert (measured.sum() < 0.5 * measured.size) == (every > 1)
