"""Tests of the closed-loop study (analysis/closed_loop.py)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import lognormal_trace
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis import closed_loop as cl
from analysis._common import VERDICTS
from gaba_control import formulas
from gaba_control.lti.decimated import decimated_noise_gain
from gaba_control.theory import settling_steps

EXPECTED_VERDICTS = {
    "seed 000's milestone table is what np.random.seed(0) + randn gives": "refuted",
    "seed 000's milestone values are consistent with its synth source": "holds",
    "step 200 of the start-up is halfway to steady state": "refuted",
    "at 50×, 500× and 2,400× GABA assigns ~95 % weight to health": "holds",
    "λ_health converges to ≈ 0.995–0.998 at a 500× imbalance": "refuted",
    "equal gradients are a fixed point (λ = 1/K)": "holds",
    "K_p = 1/(K−1) zeroes the share error in one step if applied directly (K = 2)": "holds",
    "… and for K ≥ 3": "refuted",
    "GABA equalises the tasks' contributions at a 500× imbalance": "refuted",
    "a P-only loop keeps a steady-state share error (the share stays strictly between the "
    "open-loop value and 1/K)": "refuted",
    "refreshing every N steps with β^N keeps the time constant but adds λ noise "
    "≈ (1−β^N)/(1+β^N) vs (1−β)/(1+β)": "holds",
}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return cl.run(tmp_path_factory.mktemp("closed_loop"), seed=0, trace=None, quick=True)


def test_run_writes_every_figure(study):
    stems = ["constant", "decimated", "plant", "startup", "sweep", "switching"]
    expected = sorted(f"closed_loop_{s}.{ext}" for s in stems for ext in ("png", "svg", "pdf"))
    assert sorted(p.name for p in study.figures) == expected
    assert all(p.exists() and p.stat().st_size > 0 for p in study.figures)
    from analysis.closed_loop import load_identified_plants

    identified = [r for r in load_identified_plants() if float(r["lam0"]) in (0.002, 0.05)]
    assert study.name == "closed_loop" and len(study.tables) == 4 + len(identified)
    assert all("Identified plant" in t for t in study.tables[4:])


def test_run_verdicts(study):
    verdicts = {c.claim: c.verdict for c in study.claims}
    for claim, expected in EXPECTED_VERDICTS.items():
        assert verdicts[claim] == expected, claim
    assert all(c.verdict in VERDICTS for c in study.claims)
    assert any(c.real_run == "no trace given" for c in study.claims)


def test_claims_use_a_trace():
    summary = cl.trace_summary(lognormal_trace(steps=800, ratio=100.0))
    assert summary["small"] == 1 and summary["steps"] == 700
    assert 0 <= summary["share_small"] <= 1 and 0 <= summary["floor"] <= 1
    assert "700 active steps" in cl._real(summary, "share")
    assert cl.trace_summary(None) is None


# --- shares and one-step claim ---------------------------------------------------------------
@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(1e-3, 1e3), min_size=2, max_size=2))
def test_raw_weights_equalise_two_tasks(g):
    g = np.array(g)
    shares = cl.achieved_shares(formulas.raw_weights(g), g)
    # λ_raw = 1/2 + (1/2 − s) carries an absolute rounding error ~ε, i.e. ~ε·g_max/g_min relative
    # on the small weight; the balance is exact up to that.
    np.testing.assert_allclose(shares, 0.5, rtol=0, atol=8e-16 * g.max() / g.min())


@pytest.mark.parametrize("num_tasks", (3, 5, 8))
def test_raw_weights_do_not_equalise_three_or_more(num_tasks):
    r = cl.one_step_share_error(num_tasks, runs=500)
    assert r["max"] > 0.1
    assert r["inverse_max"] < 1e-12


def test_one_step_two_tasks_within_rounding():
    assert cl.one_step_share_error(2)["max"] <= cl.ONE_STEP_ATOL


# --- settling --------------------------------------------------------------------------------
@pytest.mark.parametrize("beta", (0.0, 0.5, 0.9, 0.99, 0.999))
def test_settling_index_matches_theory_for_a_geometric_gap(beta):
    n = np.arange(20000)
    y = beta**n  # a gap closing from 1 to 0
    assert cl.settling_index(y, 0.0, 1.0) == settling_steps(beta, cl.SETTLE_FRACTION)


def test_settling_index_never_settles():
    assert cl.settling_index(np.array([1.0, 0.0, 1.0]), 0.0, 1.0) == 3


# --- constant imbalance ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def constant():
    return cl.constant_imbalance_response(steps=2500)


def test_constant_raw_steady_state(constant):
    i0 = int(np.flatnonzero(constant.lambda_mins == 0.0)[0])
    r = constant.ratios
    np.testing.assert_allclose(constant.final_small[i0], r / (1 + r), rtol=0, atol=1e-6)
    np.testing.assert_allclose(constant.final_share_small[i0], 0.5, rtol=0, atol=1e-6)


@pytest.mark.parametrize("lambda_min", (0.01, 0.05, 0.1))
def test_constant_floored_steady_state(constant, lambda_min):
    i = int(np.flatnonzero(np.isclose(constant.lambda_mins, lambda_min))[0])
    r = constant.ratios
    expected = formulas.floor_renormalise(np.stack([1 / (1 + r), r / (1 + r)], -1), lambda_min)
    np.testing.assert_allclose(constant.final_small[i], expected[:, 1], rtol=0, atol=1e-6)
    share = expected[:, 1] / (expected[:, 0] * r + expected[:, 1])
    np.testing.assert_allclose(constant.final_share_small[i], share, rtol=0, atol=1e-6)
    saturated = 1 / (1 + r) < lambda_min
    assert np.all(constant.floor_fraction[i][saturated] > 0)
    assert np.all(constant.floor_fraction[i][~saturated] == 0)


def test_constant_settling_unfloored_matches_ema_theory(constant):
    i0 = int(np.flatnonzero(constant.lambda_mins == 0.0)[0])
    moving = constant.ratios > 1
    assert np.all(np.abs(constant.settle_steps[i0][moving] - settling_steps(0.99, 0.05)) <= 1)


def test_paper_share_at_500x():
    r = cl.constant_imbalance_response((500,), lambda_mins=(0.05,), steps=2000)
    lam = formulas.floor_renormalise(np.array([1 / 501, 500 / 501]), 0.05)
    assert r.final_share_small[0, 0] == pytest.approx(lam[1] / (lam[0] * 500 + lam[1]), abs=1e-6)
    assert r.final_share_small[0, 0] < 0.05  # the floor caps the correction


# --- start-up --------------------------------------------------------------------------------
def test_legacy_stream_equals_seed_then_randn():
    np.random.seed(0)  # noqa: NPY002 - the seed's legacy stream is the point of the test
    loop = np.array([[np.random.randn(), np.random.randn()] for _ in range(50)])  # noqa: NPY002
    np.testing.assert_array_equal(np.random.RandomState(0).standard_normal((50, 2)), loop)


def test_startup_norms_shape_and_floors():
    z = np.full((3, 120, 2), -100.0)
    g = cl.startup_norms(z)
    assert g.shape == (3, 120, 2)
    assert np.all(g[..., 0] == 0.01) and np.all(g[..., 1] == 1e-6)
    g0 = cl.startup_norms(np.zeros((80, 2)))
    np.testing.assert_allclose(g0[[0, 50, 79]], [[2.0, 0.5], [5.0, 0.01], [5.0, 0.01]])


def test_startup_response_progress():
    s = cl.startup_response(runs=100, steady_steps=1200)
    assert s.ema_progress_200 == pytest.approx(1 - 0.99**101, rel=1e-12)
    assert s.progress_200 > s.ema_progress_200  # the floor makes λ* settle early
    assert np.all(s.legacy[:100] == 0.5)
    assert s.legacy_deviation > cl.PRINT_ATOL


# --- decimated sensor ------------------------------------------------------------------------
def test_decimation_theory_is_zero_for_every_step():
    assert cl._decimation_deviation_theory(0.99, 1, 3000) == pytest.approx(0.0, abs=1e-30)


@pytest.mark.parametrize("beta", (0.9, 0.99))
def test_decimated_noise_matches_theory(beta):
    r = cl.decimated_sensor_response((1, 5, 10), ratio=3.0, beta=beta, steps=8000, runs=16,
                                     rng=np.random.default_rng(3))
    np.testing.assert_allclose(r.std_ratio_sim, r.std_ratio_theory, rtol=0.12)
    np.testing.assert_allclose(r.rms_deviation_sim[1:], r.rms_deviation_theory[1:], rtol=0.12)
    expected = np.sqrt([decimated_noise_gain(beta, n) / decimated_noise_gain(beta, 1)
                        for n in (1, 5, 10)])
    np.testing.assert_allclose(r.std_ratio_theory, expected, rtol=1e-12)


# --- plant and sweep -------------------------------------------------------------------------
def test_full_batch_plant_balances_itself():
    p = cl.plant_response(batch=None, steps=400, runs=2)
    for method in ("gaba", "equal"):
        assert p.final[method]["share_small"] == pytest.approx(0.5, abs=1e-3)


def test_minibatch_plant_gaba_raises_the_small_share():
    p = cl.plant_response(steps=600, runs=4)
    assert p.final["gaba"]["share_small"] > p.final["equal"]["share_small"] + 0.1
    assert p.final["gaba"]["weight_small"] > 0.5


def test_sweep_floor_and_settling():
    s = cl.sweep_response(warmups=(0, 50), betas=(0.9,), lambda_mins=(0.0, 0.1), steps=1500,
                          runs=4)
    for row in s.rows:
        if row["lambda_min"] == 0.0:
            assert row["floor"] == 0.0
            assert abs(row["settle"] - row["theory"]) <= 3
        else:  # 100× ⇒ raw small-task weight ≈ 0.01 < 0.1: the floor binds
            assert row["floor"] > 0.9 and row["share_error"] < -0.2
    assert "| W | β | λmin |" in s.table()


def test_docstring_examples():
    import doctest

    result = doctest.testmod(cl, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_settling_is_counted_in_updates_as_the_theory_counts_them():
    # regression: the sweep counted post-warmup samples from 0 and read 298 against the
    # theory's 299 (β = 0.99) and 28 against 29 (β = 0.9); with no floor and no warmup
    # the run-averaged λ* is the EMA of the run-averaged raw weight: it settles as the theory
    from analysis.closed_loop import sweep_response

    rows = sweep_response(warmups=(0,), betas=(0.9, 0.99), lambda_mins=(0.0,), steps=3000,
                          runs=4).rows
    assert [(r["settle"], r["theory"]) for r in rows] == [(29, 29), (299, 299)]
