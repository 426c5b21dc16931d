"""The identification study: synthetic plants with known answers, records, CLI, a real run."""

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import signal

from analysis.cli import main
from analysis.identify import (
    SKIP,
    WARMUP,
    Record,
    estimate_plant,
    identification_response,
    load_records,
    plan_design,
    predict_closed_loop,
    save_records,
)
from gaba_control.plant.excitation import prbs
from gaba_control.plant.loop import simulate_closed_loop
from gaba_control.plant.parametric import PlantModel

B, F = np.array([0.0, 0.12]), np.array([1.0, -0.8])  # elasticity 0.6, pole 0.8, delay 1
N = 1600


def _disturbance(seed, n=N):
    rng = np.random.default_rng(seed)
    drift = np.log(600.0) + 0.4 * np.linspace(0, 1, n)
    return drift + signal.lfilter([1.0], [1.0, -0.9], 0.05 * rng.standard_normal(n))


def _open_loop(seed, lam0, rho=0.4, role="main", hold=0, noise_seed=None):
    p = prbs(N - hold, clock=20, seed=seed)
    lam = np.concatenate([np.full(hold, 0.5), lam0 * (1 + rho * p)])
    u = np.log(lam / lam0)
    y = _disturbance(seed if noise_seed is None else noise_seed) + signal.lfilter(B, F, u)
    epoch = np.arange(N) // 200
    return Record(role, "SYN", seed, "prbs", lam0, rho, 0.05, lam, np.exp(y), epoch, {})


def test_estimate_recovers_the_synthetic_plant():
    records = [_open_loop(s, 0.05) for s in range(3)]
    p = estimate_plant(records)
    assert p.status == "ok"
    assert p.model.orders[0] == 1  # one pole, chosen on the held-out seed
    assert p.model.dc_gain == pytest.approx(0.6, rel=0.1)
    assert p.model.poles[0].real == pytest.approx(0.8, abs=0.05)
    omega = p.spectral.omega
    truth = 0.12 * np.exp(-1j * omega) / (1 - 0.8 * np.exp(-1j * omega))
    assert p.spectral.covers(truth).mean() > 0.85  # nominal 0.95, three short records
    assert len(p.windows) == 3 and len(p.seed_dc_gains) == 3


def test_too_little_coherence_returns_no_model():
    records = [_open_loop(s, 0.05, rho=1e-4) for s in range(3)]
    p = estimate_plant(records)
    assert p.model is None and "no model is returned" in p.status


def test_prediction_is_exact_with_the_true_plant():
    # the "measured" closed loop: GABA on d + P u with the true plant, seed 0's disturbance
    d = _disturbance(0)
    lam, y = simulate_closed_loop((B, F), d, lambda0=0.05, warmup=WARMUP, lambda_min=0.05)
    measured = Record("closed_loop", "SYN", 0, "gaba", math.nan, math.nan, 0.05, lam[:, 0],
                      np.exp(y), np.arange(N) // 200, {})
    # its open-loop twin: same disturbance, W steps at 1/K, then PRBS around λ₀
    twin = _open_loop(0, 0.05, role="twin", hold=WARMUP, noise_seed=0)
    plant = estimate_plant([_open_loop(s, 0.05) for s in range(3)])
    true = PlantModel("oe", B[1:], F, 1, math.nan, math.nan, None)
    object.__setattr__(plant, "model", true)
    prediction = predict_closed_loop(measured, plant, twin)
    for key, value in prediction.measured.items():
        assert prediction.with_plant[key] == pytest.approx(value, rel=1e-10, abs=1e-12), key
    assert_allclose(prediction.epoch_with_plant, prediction.epoch_measured, rtol=1e-10)
    errors = prediction.errors()
    assert errors["lambda_log_rmse_plant"] < 1e-10
    assert errors["share_abs_error_replay"] > 0  # replay ignores the plant's answer


def _synthetic_records():
    records = []
    for s in range(3):
        for lam0 in (0.002, 0.05, 0.2):
            records.append(_open_loop(s, lam0))
        for rho in (0.2, 0.8):
            records.append(_open_loop(s, 0.2, rho=rho, role="amplitude"))
        for lam0 in (0.002, 0.05):
            records.append(_open_loop(s, lam0, role="twin", hold=WARMUP))
        for floor in (0.001, 0.05):
            d = _disturbance(s)
            lam, y = simulate_closed_loop((B, F), d, lambda0=0.05, warmup=WARMUP,
                                          lambda_min=floor)
            records.append(Record("closed_loop", "SYN", s, "gaba", math.nan, math.nan, floor,
                                  lam[:, 0], np.exp(y), np.arange(N) // 200, {}))
    return records


def test_response_tables_and_figures(tmp_path):
    response = identification_response(_synthetic_records())
    rows = response.plant_rows()
    assert [r["lam0"] for r in rows] == [0.002, 0.05, 0.2]
    assert all(r["dc_gain"] == pytest.approx(0.6, rel=0.15) for r in rows)
    loops = response.loop_rows()
    assert {r["regime"].split()[0] for r in loops} == {"floor", "unsaturated"}
    floor = next(r for r in loops if r["regime"].startswith("floor"))
    free = next(r for r in loops if r["regime"].startswith("unsaturated"))
    assert 0 < floor["L_dc"] < 0.01 < free["L_dc"]  # the floor takes the loop gain away
    assert len(response.predictions) == 6
    written = response.write(tmp_path)
    names = {p.name for p in written}
    for name in ("plants.csv", "windows.csv", "loops.csv", "predictions.csv", "summary.md",
                 "identify_bode.png", "identify_loop.svg", "identify_prediction.png"):
        assert name in names
    assert "### The loop on the identified plant" in (tmp_path / "summary.md").read_text()


def test_records_round_trip_and_bad_files(tmp_path):
    records = _synthetic_records()[:3]
    records[0] = Record(*[getattr(records[0], f) for f in ("role", "subset", "seed", "method",
                                                           "lam0", "amplitude", "lambda_min",
                                                           "lam", "ratio", "epoch", "metrics")],
                        {"period": 256, "harmonics": 4})
    path = save_records(records, tmp_path / "records.npz")
    again = load_records(path)
    assert again[0].options == {"period": 256, "harmonics": 4} and again[1].options == {}
    assert [(r.role, r.lam0, r.seed) for r in again] == [(r.role, r.lam0, r.seed)
                                                          for r in records]
    assert_allclose(again[1].lam, records[1].lam, rtol=0, atol=0)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"bad\.npz: not a readable identification record"):
        load_records(tmp_path / "bad.npz")


def test_cli_from_records(tmp_path, capsys):
    save_records(_synthetic_records(), tmp_path / "records.npz")
    assert main(["identify", "--from-records", str(tmp_path / "records.npz"),
                 "--out", str(tmp_path / "out")]) == 0
    assert "The plant" in capsys.readouterr().out
    assert (tmp_path / "out" / "plants.csv").is_file()
    assert main(["identify", "--from-records", str(tmp_path / "none.npz"),
                 "--out", str(tmp_path / "out2")]) == 2
    assert "not a readable identification record" in capsys.readouterr().err


def test_design_validates_before_training(tmp_path, capsys):
    assert main(["identify", "--operating-points", "0.9", "--amplitude", "0.5",
                 "--cache", str(tmp_path / "cache"), "--train-only"]) == 2
    assert "must be < 1" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()
    with pytest.raises(ValueError, match="seeds must be distinct"):
        plan_design(["FD001"], [0, 0])
    with pytest.raises(ValueError, match="seeds must be ints >= 0"):
        plan_design(["FD001"], [-1])


def test_skip_and_inputs_of_a_record():
    r = _open_loop(0, 0.05)
    assert r.u.size == N - SKIP
    assert_allclose(np.exp(r.u) * 0.05, r.lam[SKIP:], rtol=1e-12)
    assert_allclose(r.share, r.ratio[SKIP:] / (1 + r.ratio[SKIP:]), rtol=1e-12)


@pytest.mark.cmapss
@pytest.mark.slow
def test_a_small_real_identification_produces_a_model(cmapss_dir, tmp_path, capsys):
    # 6 epochs of 55 batches = 330 steps per run on FD001; two operating points, two seeds
    args = ["identify", "--subsets", "FD001", "--seeds", "0", "1", "--operating-points",
            "0.05", "0.5", "--epochs", "6", "--no-amplitude-test", "--no-multisine",
            "--no-closed-loop", "--clock", "10", "--data-dir", str(cmapss_dir),
            "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "out"),
            "--jobs", "2", "--no-progress"]
    assert main(args) == 0
    rows = (tmp_path / "out" / "plants.csv").read_text().splitlines()
    assert len(rows) == 3  # header + two operating points
    records = load_records(tmp_path / "out" / "records.npz")
    assert len(records) == 4 and all(r.lam.size == 330 for r in records)
    response = identification_response(records)
    assert any(p.model is not None for p in response.plants)


def test_windows_are_validated_by_name():
    from analysis.identify import training_windows

    assert len(training_windows(4)) == 4
    for bad in (0, 11, 2.5, True):
        with pytest.raises(ValueError, match="windows must be an int in"):
            training_windows(bad)
    with pytest.raises(ValueError, match="windows must be an int in"):
        identification_response(_synthetic_records()[:3], windows=0)
