"""The variants study: the law-measured linearisation against closed forms, the analysis."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis import variants
from analysis._common import results_dir
from gaba_control.lti.iir import ema_transfer_function
from gaba_control.plant.loop import operating_point
from gaba_control.weighting import LoopLaw, recovery_steps

HAS_IDENTIFY = (results_dir() / "identify" / "plants.csv").is_file()


@pytest.mark.parametrize(("ratio", "floor"), [(3.0, 0.0), (708.0, 0.001), (708.0, 0.05)])
def test_law_measured_controller_is_gabas_linearisation(ratio, floor):
    """C(e^{jω}) measured from the law = k·H(e^{jω}) with k of plant.loop.operating_point."""
    omega = np.array([1e-4, 1e-3, 1e-2, 0.1, 1.0, 3.0])
    law = LoopLaw(2, beta=0.99, warmup=0, floor=floor)
    measured = variants.controller_frequency_response(law, ratio, omega, settle=3000,
                                                      length=3000)
    point = operating_point(ratio, floor, ema=float(1 / (1 + ratio)))
    h = np.asarray(ema_transfer_function(0.99)(np.exp(1j * omega))).reshape(-1)
    expected = point.gain * h
    # a 1e-6 step resolves C to about 1e-5 of its DC value (rounding of δu at 1e-16)
    np.testing.assert_allclose(measured, expected, rtol=2e-5, atol=2e-5 * abs(expected[0]))


def test_floor_table_marks_the_absolute_floor_inadmissible_from_k_20():
    rows = {r["K"]: r for r in variants.floor_rows()}
    assert rows[19]["absolute"] is not None and rows[20]["absolute"] is None
    for r in rows.values():
        assert r["relative"]["total"] == pytest.approx(0.1)
        assert r["relative"]["weight"] <= r["relative"]["floor"]


@pytest.mark.skipif(not HAS_IDENTIFY, reason="no committed identification")
@pytest.mark.slow
def test_committed_analysis_decides_what_each_block_changes():
    response = variants.variants_response(quick=True)
    floor, free = (d for d, _ in variants.DESIGNS)
    gaba = response.row("gaba", floor)
    # for K = 2 every variant's linearised loop is GABA's (the linearisation's resolution)
    for name in variants.VARIANTS[1:]:
        for design in (floor, free):
            a, b = response.loops[(name, design)], response.loops[("gaba", design)]
            assert np.max(np.abs(a - b) / np.abs(b)) < 1e-2, (name, design)
    # anti-windup: one step off the floor; GABA: the closed form
    raw = 1 / (1 + variants.WOUND_RATIO)
    wound = raw + (0.5 - raw) * 0.99**variants.WIND_STEPS
    assert gaba.recovery_steps == recovery_steps(0.99, 0.05, wound,
                                                 1 / (1 + variants.RECOVERY_RATIO))
    assert response.row("gaba_antiwindup", floor).recovery_steps == 1
    # K = 3: the P-law's steady-state error, none for the inverse law and the integrator
    assert gaba.three_task_error > 0.2
    for name in ("gaba_inverse", "gaba_integral"):
        assert response.row(name, floor).three_task_error < 1e-9
    # the floor decides the loop: open on the floor, L(1) ≈ 0.2 without it
    assert gaba.loop_dc < 1e-2 < response.row("gaba", free).loop_dc < 1
    for row in response.rows:
        for source in ("replay", "plant"):
            p = row.predicted[source]
            assert 0 <= p["floor_fraction"] <= 1 and 0 < p["share"] < 1
    on_floor = response.row("gaba", floor).predicted["plant"]
    assert on_floor["floor_fraction"] > 0.8 and on_floor["share"] < 0.05


@pytest.mark.skipif(not HAS_IDENTIFY, reason="no committed identification")
@pytest.mark.slow
def test_study_writes_its_figures_with_captions(tmp_path):
    study = variants.run(tmp_path, quick=True)
    stems = {p.stem for p in study.figures}
    validation = results_dir() / "advise" / "validation"
    expected = {"variants_loop", "variants_predictions"}
    if (validation / "runs.csv").is_file():
        expected.add("advise_validation")
    assert stems == expected
    assert set(study.captions) == stems
    theory = [c for c in study.claims if "design assistant" not in c.claim]
    assert all(c.verdict == "holds" for c in theory), [c.evidence for c in theory]
    if "advise_validation" in stems:
        from analysis.advise_validation import advice_validation_response

        (claim,) = [c for c in study.claims if "design assistant" in c.claim]
        row = next(r for r in advice_validation_response(validation).summary()
                   if r["role"] == "recommended" and r["quantity"] == "share")
        # the verdict is the assistant's 5 % resolution applied to the measured mean
        off = abs(math.log(row["predicted_plant"] / row["measured"]))
        assert claim.verdict == ("holds" if off <= math.log(1.05) else "refuted")
        assert ("inside" if row["within_plant"] else "outside") in claim.evidence
        assert "The design assistant against real runs" in " ".join(study.tables)


def test_without_an_identification_the_study_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("GABA_RESULTS_DIR", str(tmp_path))
    study = variants.run(tmp_path / "out", quick=True)
    assert study.figures == [] and study.claims[0].verdict == "not testable"
    assert "no identified FD002 plant" in study.summary and math.isfinite(1.0)


def test_three_task_rows_pair_against_gaba_and_the_own_open_loop(tmp_path):
    from analysis.compare import _csv

    def runs(method_offsets, shares):
        return [{"subset": "FD001", "method": m, "seed": s, "status": "ok",
                 "test_rmse": 14.0 + off + 0.1 * s * (m != "gaba"),
                 "share_weighted_small": shares[m]}
                for m, off in method_offsets.items() for s in range(4)]

    (tmp_path / "k3").mkdir()
    (tmp_path / "k3_open").mkdir()
    (tmp_path / "k3" / "runs.csv").write_text(_csv(runs(
        {"gaba": 0.0, "gaba_integral": 4.0}, {"gaba": 0.008, "gaba_integral": 0.27})))
    (tmp_path / "k3_open" / "runs.csv").write_text(_csv(runs(
        {"gaba": 0.0, "gaba_integral": 3.0}, {"gaba": 0.008, "gaba_integral": 0.2})))
    rows = {r["method"]: r for r in variants.three_task_rows(tmp_path)}
    integral = rows["gaba_integral"]
    assert integral["diff"] == pytest.approx(4.0 + 0.1 * 1.5)  # mean of 0.1·seed over 0–3
    assert integral["share"] == pytest.approx(0.27)
    vs = rows["gaba_integral closed − its own open loop"]
    assert vs["diff"] == pytest.approx(1.0) and vs["n"] == 4
    assert math.isnan(rows["gaba"]["p"])
    # Holm over the two tested rows
    assert integral["p_holm"] >= integral["p"]
    table = variants.three_task_table(list(rows.values()))
    assert table.count("reference") == 1  # GABA's row only, not a row of constant differences
