"""analysis.compare without training: statistics, claims, tables, the report hook, job records."""

import math
import sys

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from analysis.compare import (
    METRICS,
    TRACE_FIELDS,
    ComparisonResponse,
    Job,
    _backend,
    _csv,
    comparison_response,
    comparison_study,
    paired_statistics,
    run_job,
    trace_statistics,
)
from gaba_control.controller import GABAController
from gaba_control.theory import settling_steps
from gaba_control.trace import TraceRecorder


def test_paired_statistics_known_numbers():
    # d = a - b = [0.1, 0.4, -0.2, 0.8, 0.6]: |d| ranks 1..5 with no ties, W- = 2, W+ = 13.
    a = np.array([10.1, 11.3, 9.8, 12.0, 10.7])
    b = np.array([10.0, 10.9, 10.0, 11.2, 10.1])
    s = paired_statistics(a, b)
    d = a - b
    assert s["n"] == 5
    assert_allclose(s["mean"], 0.34, rtol=1e-12)
    assert_allclose(s["std"], np.std(d, ddof=1), rtol=1e-12)
    t = d.mean() / (d.std(ddof=1) / math.sqrt(5))
    assert_allclose(s["t_p"], 2 * stats.t.sf(abs(t), df=4), rtol=1e-10)
    assert_allclose(s["t_p"], stats.ttest_rel(a, b).pvalue, rtol=1e-12)
    # exact two-sided Wilcoxon: P(W <= 2) = |{{}, {1}, {2}}| / 2^5 = 3/32, doubled
    assert_allclose(s["wilcoxon_p"], 6 / 32, rtol=1e-12)
    assert_allclose(s["d_z"], d.mean() / d.std(ddof=1), rtol=1e-12)


def test_paired_statistics_drops_nonfinite_pairs_and_degenerate_cases():
    s = paired_statistics([1.0, np.nan, 3.0, 4.0], [0.0, 1.0, 1.0, np.inf])
    assert s["n"] == 2 and s["mean"] == pytest.approx(1.5)
    one = paired_statistics([1.0], [0.0])
    assert one["n"] == 1 and math.isnan(one["t_p"]) and math.isnan(one["std"])
    same = paired_statistics([1.0, 2.0, 3.0], [0.0, 1.0, 2.0])  # constant difference
    assert math.isnan(same["t_p"]) and math.isnan(same["d_z"])


def _rows(n_seeds, shift, noise=0.1, seed=0, methods=("gaba", "equal"), failed=()):
    rng = np.random.default_rng(seed)
    rows = []
    for method in methods:
        for s in range(n_seeds):
            status = "diverged" if (method, s) in failed else "ok"
            base = 15.0 + 0.5 * np.sin(s)  # the seed effect the pairing removes
            offset = shift.get(method, 0.0) if isinstance(shift, dict) else shift
            value = base + (offset if method != "gaba" else 0.0) + noise * rng.standard_normal()
            row = {"subset": "FD001", "method": method, "seed": s, "status": status,
                   "hash": "abc", "error": "", "wall_time_s": 1.0, "num_steps": 10.0}
            for m in METRICS:
                row[m] = value if status == "ok" else None
            row.update({f: 1.0 for f in TRACE_FIELDS})
            rows.append(row)
    return rows


def _response(rows, methods=("gaba", "equal")):
    return ComparisonResponse(rows=rows, subsets=("FD001",), methods=methods,
                              seeds=tuple(sorted({r["seed"] for r in rows})))


@pytest.mark.parametrize(
    ("n_seeds", "shift", "verdict"),
    [(6, 1.0, "holds"), (6, -1.0, "refuted"), (6, 0.0, "refuted"), (3, 1.0, "not testable")],
)
def test_claim_verdicts_follow_the_paired_test(n_seeds, shift, verdict):
    claims = _response(_rows(n_seeds, shift)).claims()
    assert len(claims) == 2
    assert claims[0].verdict == verdict, claims[0]
    # without an open-loop reference the attribution cannot be tested
    assert claims[1].verdict == "not testable" and "schedule, replay" in claims[1].evidence


@pytest.mark.parametrize(
    ("shifts", "verdict", "evidence"),
    [({"equal": 1.0, "schedule": 1.0}, "holds", ""),
     ({"equal": 1.0, "schedule": 0.0}, "refuted", "comes from the schedule"),
     ({"equal": 0.0, "schedule": 1.0}, "refuted", "no significant GABA effect")],
)
def test_attribution_feedback_or_schedule(shifts, verdict, evidence):
    methods = ("gaba", "equal", "schedule")
    claims = _response(_rows(6, shifts, methods=methods), methods=methods).claims()
    attribution = claims[-1]
    assert "comes from the feedback" in attribution.claim
    assert attribution.verdict == verdict and evidence in attribution.evidence


def test_failed_runs_are_counted_not_dropped():
    response = _response(_rows(4, 1.0, failed={("equal", 1)}))
    summary = {r["method"]: r for r in response.summary()}
    assert (summary["equal"]["n_ok"], summary["equal"]["n"], summary["equal"]["n_diverged"]) == (
        3, 4, 1)
    paired = next(p for p in response.paired() if p["metric"] == "test_rmse")
    assert paired["n"] == 3 and paired["seeds"] == "0 2 3"
    text = response.markdown()
    assert "| FD001 | equal | 3/4 |" in text and "seed 1: diverged" in text


def test_summary_mean_and_std():
    rows = _rows(5, 1.0)
    response = _response(rows)
    values = [r["test_rmse"] for r in rows if r["method"] == "equal"]
    row = next(r for r in response.summary() if r["method"] == "equal")
    assert_allclose(row["test_rmse_mean"], np.mean(values), rtol=1e-12)
    assert_allclose(row["test_rmse_std"], np.std(values, ddof=1), rtol=1e-12)


def test_runs_csv_round_trip_and_study(tmp_path):
    rows = _rows(5, 1.0)
    (tmp_path / "runs.csv").write_text(_csv(rows))
    response = comparison_response(tmp_path, cache=tmp_path / "nothing")
    assert response.methods == ("gaba", "equal") and response.seeds == (0, 1, 2, 3, 4)
    assert_allclose([r["test_rmse"] for r in response.rows], [r["test_rmse"] for r in rows],
                    rtol=1e-15)
    study = comparison_study(tmp_path, tmp_path / "fig", quick=True)
    assert study.name == "compare" and study.claims[0].verdict == "holds"
    assert all(p.is_file() for p in study.figures) and study.figures
    assert "FD001 test RMSE" in study.summary


def test_study_without_results_is_not_testable(tmp_path):
    study = comparison_study(None, tmp_path)
    assert study.claims[0].verdict == "not testable" and study.summary.startswith("Skipped")
    with pytest.raises(FileNotFoundError, match=r"runs\.csv"):
        comparison_response(tmp_path)


def _synthetic_trace(ratio=100.0, steps=400, warmup=50):
    rng = np.random.default_rng(0)
    g = np.column_stack([ratio * np.exp(0.3 * rng.standard_normal(steps)), np.ones(steps)])
    out = GABAController(2, beta=0.9, warmup=warmup, lambda_min=0.05).run(g)
    rec = TraceRecorder(2)
    for t in range(steps):
        rec.record(step=t + 1, epoch=t // 100, grad_norms=g[t], shares=out.shares[t],
                   raw=out.raw[t], ema=out.ema[t], weights=out.weights[t],
                   applied_weights=out.weights[t], losses=[1.0, 1.0], lr=1e-3,
                   active=out.active[t], valid=out.valid[t])
    controller = {"num_tasks": 2, "beta": 0.9, "warmup": warmup, "lambda_min": 0.05}
    return rec.to_trace(controller=controller, method="gaba", subset="FD001", seed=0), g, out


def test_trace_statistics_against_direct_computation():
    trace, g, out = _synthetic_trace()
    s = trace_statistics(trace)
    ratio = g[:, 0] / g[:, 1]
    post = out.active & out.valid
    assert_allclose(s["ratio_first"], ratio[0], rtol=1e-12)
    assert_allclose(s["ratio_median"], np.median(ratio), rtol=1e-12)
    assert_allclose(s["ratio_max"], ratio.max(), rtol=1e-12)
    epoch_medians = [np.median(ratio[t:t + 100]) for t in range(0, 400, 100)]
    assert_allclose(s["ratio_epoch_median_max"], max(epoch_medians), rtol=1e-12)
    assert s["ratio_epoch_argmax"] == int(np.argmax(epoch_medians)) + 1
    # smoothing lowers the peak: rolling maxima decrease with the window
    assert s["ratio_max"] >= s["ratio_rolling_max_10"] >= s["ratio_rolling_max_250"]
    full = [np.median(ratio[t:t + 50]) for t in range(400 - 50 + 1)]
    assert_allclose(s["ratio_rolling_max_50"], max(full), rtol=1e-12)
    settle = settling_steps(0.9, 0.01)  # EMA updates until the 1/K start is forgotten
    assert_allclose(s["lambda_std_settled"], np.std(out.weights[post, 0][settle:]), rtol=1e-12)
    assert_allclose(s["ratio_median_second_half"], np.median(ratio[200:]), rtol=1e-12)
    assert_allclose(s["floor_fraction"], np.mean(np.any(out.ema[post] < 0.05, axis=-1)), rtol=1e-12)
    assert s["floor_fraction"] > 0.5  # ratio ~100: the RUL weight sits on the floor
    assert_allclose(s["lambda_std"], np.std(out.weights[post, 0]), rtol=1e-12)
    assert_allclose(s["raw_std"], np.std(out.raw[post, 0]), rtol=1e-12)
    shares = out.weights * g / (out.weights * g).sum(-1, keepdims=True)
    assert_allclose(s["share_weighted_small"], np.median(shares[post, 1]), rtol=1e-12)


def test_crashed_job_is_recorded_and_not_retried(tmp_path):
    directory = tmp_path / "FD001" / "replay" / "seed0-x"
    config = {"method": "replay", "subset": "FD001", "seed": 0,
              "options": {"replay_trace": "missing.npz"},
              "health_thresholds": [30.0, 100.0], "progress": False,
              "data_dir": str(tmp_path / "no-data")}
    job = Job("FD001", "replay", 0, config, {"k": 1}, str(directory))
    metrics = run_job(job)
    assert metrics["status"] == "crashed" and metrics["test_rmse"] is None
    assert (directory / "metrics.json").is_file()
    stamp = (directory / "metrics.json").stat().st_mtime_ns
    assert run_job(job)["status"] == "crashed"
    assert (directory / "metrics.json").stat().st_mtime_ns == stamp


@pytest.mark.parametrize("backend", ["dask", "ray"])
def test_missing_distributed_backend_is_a_clear_error(backend, monkeypatch):
    # an entry of None in sys.modules makes the import fail, as if not installed
    modules = {"dask": ("dask", "dask.distributed"), "ray": ("ray", "ray.util.joblib")}
    for module in modules[backend]:
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(RuntimeError, match=f"--backend {backend} needs"):
        with _backend(backend, 2):
            pass


def test_unknown_backend():
    with pytest.raises(ValueError, match="backend must be one of"):
        with _backend("spark", 2):
            pass


def test_missing_data_is_an_error_before_any_job(tmp_path):
    from analysis.compare import compare

    with pytest.raises(FileNotFoundError, match="C-MAPSS data directory not found"):
        compare(["FD001"], ["gaba"], [0], out=tmp_path / "out", cache=tmp_path / "cache",
                data_dir=str(tmp_path / "absent"), progress=False)
    assert not (tmp_path / "cache").exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [({"methods": ["no_such_method"]}, ValueError, "methods must be among"),
     ({"seeds": [0, 0]}, ValueError, "seeds must be distinct"),
     ({"bogus": 1}, TypeError, "unknown training option 'bogus'")],
)
def test_bad_compare_arguments(tmp_path, kwargs, error, message):
    from analysis.compare import compare

    args = {"subsets": ["FD001"], "methods": ["gaba"], "seeds": [0], **kwargs}
    with pytest.raises(error, match=message):
        compare(args.pop("subsets"), args.pop("methods"), args.pop("seeds"),
                out=tmp_path / "out", cache=tmp_path / "cache", progress=False, **args)
    assert not (tmp_path / "cache").exists()


def test_negative_seeds_are_refused_before_any_job(tmp_path):
    from analysis.compare import compare

    with pytest.raises(ValueError, match="seeds must be ints >= 0"):
        compare(["FD001"], ["gaba"], [-1], out=tmp_path / "out", cache=tmp_path / "cache",
                progress=False)
    assert not (tmp_path / "cache").exists()


def test_lambda_caption_states_the_measured_gaps_of_the_committed_traces():
    # the replay applies the next seed's λ*: its difference from GABA's is a seed-to-seed
    # difference, and the caption gives its size instead of saying the lines "follow"
    from analysis.compare import COMMITTED, _lambda_gaps
    from gaba_control.trace import load_trace

    folder = next((p for p in COMMITTED if (p / "runs.csv").is_file()), None)
    traces = folder.parent / "traces" if folder is not None else None
    if folder is None or not (traces / "FD001-replay-seed0.npz").is_file():
        pytest.skip("the committed comparison and its traces are not here")
    response = comparison_response(folder)
    gaba = load_trace(traces / "FD001-gaba-seed0.npz")
    replay = load_trace(traces / "FD001-replay-seed0.npz")
    active = np.asarray(gaba.active, dtype=bool)
    expected = np.max(np.abs(replay.applied_weights[active, 0] - gaba.applied_weights[active, 0]))
    assert response.lambda_gap("FD001", "replay") == pytest.approx(expected, rel=1e-12)
    assert 1e-4 < expected < 1e-2  # not zero: another seed's run
    assert f"replay FD001 {expected:.1e}" in _lambda_gaps(response)
    assert response.lambda_gap("FD001", "nonexistent") is None
