"""``gaba-control sweep``: design, equivalence test, verdict logic, and a small real sweep."""

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from analysis.cli import main
from analysis.compare import equivalence_test
from analysis.sweep import (
    CENTRE,
    SettingsSweepResponse,
    design_points,
    settings_sweep_response,
    sweep,
)


# --------------------------------------------------------------------------- design
def test_oat_design_centre_first_no_duplicates():
    points = design_points({"warmup": [25, 100, 400], "lambda_min": [0.02, 0.05]})
    assert points[0] == CENTRE
    assert [(p["warmup"], p["lambda_min"]) for p in points] == [
        (100, 0.05), (25, 0.05), (400, 0.05), (100, 0.02)]


def test_grid_design_is_the_product():
    points = design_points({"warmup": [50, 200], "refresh_every": [1, 4]}, design="grid")
    assert {(p["warmup"], p["refresh_every"]) for p in points} == {
        (100, 1), (50, 1), (50, 4), (200, 1), (200, 4)}


@pytest.mark.parametrize("values, error, match", [
    ({"gamma": [1]}, ValueError, "sweep parameters must be among"),
    ({"warmup": []}, ValueError, "warmup values must be distinct"),
    ({"warmup": [50, 50]}, ValueError, "warmup values must be distinct"),
    ({"warmup": [2.5]}, ValueError, "warmup values must be integers"),
    ({"beta": ["0.9"]}, TypeError, "beta values must be numbers"),
])
def test_design_rejects(values, error, match):
    with pytest.raises(error, match=match):
        design_points(values)


def test_design_rejects_unknown_design():
    with pytest.raises(ValueError, match="design must be 'oat' or 'grid'"):
        design_points({"warmup": [50]}, design="lhs")


def test_sweep_rejects_invalid_points_before_training(tmp_path):
    # checked by the method itself (the same check as a training run), before any job
    with pytest.raises(ValueError, match="lambda_min"):
        sweep("FD001", {"lambda_min": [0.7]}, [0], out=tmp_path / "out", cache=tmp_path / "c")
    with pytest.raises(ValueError, match="refresh_every"):
        sweep("FD001", {"refresh_every": [0]}, [0], out=tmp_path / "out", cache=tmp_path / "c")
    with pytest.raises(ValueError, match="margin must be"):
        sweep("FD001", {"warmup": [50]}, [0], margin=0.0, out=tmp_path / "o")
    with pytest.raises(ValueError, match="seeds must be"):
        sweep("FD001", {"warmup": [50]}, [-1], out=tmp_path / "o")
    assert not (tmp_path / "c").exists()


# ------------------------------------------------------------------------- TOST
def test_tost_matches_the_interval_inclusion_rule_and_scipy():
    rng = np.random.default_rng(3)
    for _ in range(200):
        n = int(rng.integers(2, 12))
        d = rng.normal(rng.normal(0, 0.6), rng.uniform(0.05, 1.5), n)
        margin = float(rng.uniform(0.1, 2.0))
        e = equivalence_test(d, np.zeros(n), margin)
        inside = -margin < e["ci90_low"] and e["ci90_high"] < margin
        assert e["equivalent"] == inside
        # the two one-sided tests as scipy states them
        lower = stats.ttest_1samp(d, -margin, alternative="greater").pvalue
        upper = stats.ttest_1samp(d, margin, alternative="less").pvalue
        assert math.isclose(e["p"], max(lower, upper), rel_tol=1e-9, abs_tol=1e-15)


@given(st.lists(st.floats(-1e3, 1e3), min_size=2, max_size=20),
       st.floats(1e-3, 1e3), st.floats(-1e3, 1e3))
def test_tost_is_shift_invariant_in_pairs(d, margin, shift):
    a = np.asarray(d)
    e1 = equivalence_test(a, np.zeros_like(a), margin)
    e2 = equivalence_test(a + shift, np.full_like(a, shift), margin)
    if math.isnan(e1["p"]):
        assert not e1["equivalent"]
    else:
        assert 0.0 <= e1["p"] <= 1.0
        assert e1["mean"] == pytest.approx(e2["mean"], abs=1e-6 * (1 + abs(shift)))


def test_tost_undefined_and_bad_margin():
    assert math.isnan(equivalence_test([1.0], [1.0], 1.0)["p"])
    assert math.isnan(equivalence_test([1.0, 2.0], [0.0, 1.0], 1.0)["p"])  # all d equal
    assert not equivalence_test([1.0, 2.0], [0.0, 1.0], 1.0)["equivalent"]
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="margin must be"):
            equivalence_test([1.0, 2.0], [1.0, 2.5], bad)


# ------------------------------------------------------------------- verdict logic
def _synthetic(diffs: dict, *, seeds=range(8), base=18.0, noise=0.05,
               seed=0) -> SettingsSweepResponse:
    """A sweep of warmup values whose test RMSE differs from the centre by ``diffs[W]``."""
    rng = np.random.default_rng(seed)
    points = design_points({"warmup": [100, *diffs]})
    centre = {s: base + rng.normal(0, 0.7) for s in seeds}
    rows = []
    for i, p in enumerate(points):
        shift = diffs.get(p["warmup"], 0.0) if i else 0.0
        for s in seeds:
            value = centre[s] + (shift + rng.normal(0, noise) if i else 0.0)
            rows.append({"point": i, **p, "subset": "FD002", "method": "gaba", "seed": s,
                         "status": "ok", "test_rmse": value, "test_phm08_score": 1.0,
                         "test_macro_f1": 0.8, "val_rmse": value, "floor_fraction": 0.9,
                         "share_weighted_small": 0.03})
    return SettingsSweepResponse(rows=rows, subset="FD002", points=tuple(points),
                                 seeds=tuple(seeds), varied=("warmup",))


def test_range_verdict_holds_refuted_not_shown():
    holds = _synthetic({50: 0.05, 200: -0.05, 400: 3.0})  # 400 is outside [50, 200]
    assert holds.range_verdict("warmup", 50, 200)["verdict"] == "holds"
    refuted = _synthetic({50: 0.05, 200: 1.5})
    assert refuted.range_verdict("warmup", 50, 200)["verdict"] == "refuted"
    noisy = _synthetic({50: 0.3, 200: 0.0}, noise=2.0, seeds=range(3))
    assert noisy.range_verdict("warmup", 50, 200)["verdict"] == "not shown"
    assert holds.range_verdict("warmup", 1000, 2000)["verdict"] == "untested"


def test_summary_holm_over_the_points():
    response = _synthetic({50: 0.0, 200: 0.1, 400: 0.2})
    rows = response.summary()
    raw = [r["tost_p"] for r in rows[1:]]
    adjusted = [r["tost_holm_p"] for r in rows[1:]]
    assert all(a >= p for a, p in zip(adjusted, raw, strict=True))
    assert math.isnan(rows[0]["tost_holm_p"])


def test_plot_shows_each_point(tmp_path):
    response = _synthetic({50: 0.1, 200: -0.1})
    fig = response.plot("warmup")
    top = fig.axes[0]
    assert top.get_title() == "GABA on FD002, 8 seeds: warmup W (steps)"
    assert fig.axes[2].get_xscale() == "log" and fig.axes[2].get_yscale() == "log"
    with pytest.raises(ValueError, match="parameter must be among"):
        response.plot("gamma")


# --------------------------------------------------------------------- real sweep
@pytest.mark.cmapss
def test_small_real_sweep_resumes_and_rebuilds(cmapss_dir, tmp_path):
    args = ["sweep", "--subset", "FD001", "--quick", "--epochs", "1", "--max-batches", "12",
            "--design", "grid", "--warmup", "4", "--refresh-every", "1", "3", "--seeds", "0", "1",
            "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache"),
            "--data-dir", str(cmapss_dir), "--threads", "1", "--no-progress"]
    assert main(args) == 0
    out = tmp_path / "out"
    for name in ("runs.csv", "summary.md", "summary.csv", "verdicts.json",
                 "sweep_warmup.png", "sweep_refresh_every.svg"):
        assert (out / name).is_file(), name
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "cache").rglob("metrics.json")}
    assert len(stamps) == 2 * 3  # centre, (W 4, N 1), (W 4, N 3), two seeds each
    again = settings_sweep_response(out / "runs.csv")
    assert [p["warmup"] for p in again.points] == [100, 4, 4]
    assert again.points[2]["refresh_every"] == 3
    # a rerun trains nothing and tabulates the same numbers
    assert main(args) == 0
    assert stamps == {p: p.stat().st_mtime_ns for p in (tmp_path / "cache").rglob("metrics.json")}
    rerun = settings_sweep_response(out / "runs.csv")
    assert [r["test_rmse"] for r in rerun.rows] == [r["test_rmse"] for r in again.rows]
    rows = {r["point"]: r for r in again.summary()}
    # the refresh point measured every third step after W = 4: a different run, and not diverged
    assert again.counts(2) == (2, 2)
    assert rows[2]["test_rmse_mean"] != rows[1]["test_rmse_mean"]
    assert json.loads((out / "verdicts.json").read_text())[0]["verdict"] == "untested"


# ----------------------------------------------------------------- report and audit
def _committed(tmp_path, response):
    from analysis.compare import _csv

    (tmp_path / "sweep").mkdir()
    (tmp_path / "sweep" / "runs.csv").write_text(_csv(response.rows))
    return tmp_path / "sweep"


def test_report_section_and_audit_rows_read_the_committed_sweep(tmp_path, monkeypatch):
    import analysis.sweep as sweep_module
    from analysis import seed_audit

    response = _synthetic({50: 0.02, 200: -0.02, 25: 2.5})
    monkeypatch.setattr(sweep_module, "SWEEP_RESULTS", _committed(tmp_path, response))
    study = sweep_module.run(tmp_path / "figures", seed=0, trace=None, quick=True)
    assert [p.name for p in study.figures] == ["sweep_warmup.png", "sweep_warmup.svg",
                                              "sweep_warmup.pdf"]
    assert "holds" in study.summary and "±1 cycles" in study.summary
    row = seed_audit._sweep_row("000", "warmup_range", "warmup", 50, 200, "claim", "section")
    assert row.claim.verdict == "holds" and "warmup = 50" in row.claim.real_run
    # the λ_min claim: this sweep has no λ_min point
    row = seed_audit._sweep_row("002", "floor_range", "lambda_min", 0.02, 0.1, "claim", "s")
    assert row.claim.verdict == "not testable" and "no point" in row.claim.evidence


def test_without_a_committed_sweep_the_rows_say_so(tmp_path, monkeypatch):
    import analysis.sweep as sweep_module
    from analysis import seed_audit

    monkeypatch.setattr(sweep_module, "SWEEP_RESULTS", tmp_path / "absent")
    study = sweep_module.run(tmp_path / "figures", seed=0, trace=None, quick=True)
    assert study.summary.startswith("Skipped: no committed sweep results")
    row = seed_audit._sweep_row("000", "warmup_range", "warmup", 50, 200, "claim", "section")
    assert row.claim.verdict == "not testable" and "no committed sweep" in row.claim.evidence


def test_a_committed_sweep_with_missing_points_reads_back_the_same(tmp_path):
    # regression: points without runs are absent from runs.csv; their indices must not shift
    # the others (the audit once paired W = 200 with nothing and W = 50 with λ_min = 0.1)
    from analysis.compare import _csv

    full = _synthetic({50: 0.3, 200: -0.2, 400: 1.0})
    rows = [r for r in full.rows if r["warmup"] != 50]  # point 1 (W = 50) never ran
    (tmp_path / "runs.csv").write_text(_csv(rows))
    again = settings_sweep_response(tmp_path / "runs.csv")
    assert [p["warmup"] for p in again.points] == [100, 200, 400]
    by_w = {r["warmup"]: r for r in again.summary()}
    expected = {r["warmup"]: r for r in full.summary()}
    for w in (200, 400):
        assert by_w[w]["test_rmse_diff_mean"] == pytest.approx(expected[w]["test_rmse_diff_mean"])
