"""Step-response study: closed form vs numpy controller vs python-control, claims, real overlay."""

import dataclasses

import matplotlib.pyplot as plt
import numpy as np
import pytest
from helpers import synthetic_trace
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from analysis import step_response as sr


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return sr.run(tmp_path_factory.mktemp("step"), seed=0, trace=None, quick=True)


@pytest.fixture(scope="module")
def noisy_trace():
    rng = np.random.default_rng(3)
    G = np.exp(rng.normal(0.0, 0.3, (400, 2))) * np.array([1.0, 0.002])
    return synthetic_trace(G)


EXPECTED = {
    "warmup comparison is inclusive": "holds",
    "first active λ*_0 = 0.49502": "holds",
    "no discontinuity": "holds",  # the jump equals the bound (1−β)|1/K − raw|
    "0.5% relative shift": "refuted",  # it is 1.0 % relative (0.5 percentage points)
    "steady state λ*_0 = 0.04762": "refuted",  # 0.047710 for raw 0.002
    "floor-bound steady state is reached": "refuted",  # floor binds after 233 updates
    "half-life 68.97": "holds",
    "95% settling at 3τ": "holds",  # first integer: 299
    "EMA table": "holds",  # within 5e-6; float32 reproduces every digit
    "fraction absorbed is 63.2%": "refuted",  # 1 − 0.99^100 = 63.40 %
    "settled to 98.2%": "holds",
}


def _by_fragment(claims):
    out = {}
    for fragment in EXPECTED:
        hits = [c for c in claims if fragment in c.claim]
        assert len(hits) == 1, fragment
        out[fragment] = hits[0]
    return out


def test_run_without_trace(study):
    assert {p.suffix for p in study.figures} == {".png", ".svg", ".pdf"}
    assert all(p.exists() and p.stat().st_size > 0 for p in study.figures)
    claims = _by_fragment(study.claims)
    assert {k: c.verdict for k, c in claims.items()} == EXPECTED
    assert claims["no discontinuity"].real_run == "no trace given"
    assert "No trace was given" in study.summary


def test_claims_with_a_trace(noisy_trace):
    base = sr.step_response(loop_steps=101)
    r = dataclasses.replace(base, overlay=sr.trace_overlay(noisy_trace))
    claims = _by_fragment(r.claims())
    assert {k: c.verdict for k, c in claims.items()} == EXPECTED
    assert "first EMA update at step 11" in claims["warmup comparison is inclusive"].real_run
    assert "replay max |Δλ*| 0.0e+00" in claims["no discontinuity"].real_run
    fig = r.plot()
    assert len(fig.axes) == 2
    plt.close(fig)


def test_overlay_prediction_is_exact_for_constant_norms():
    trace = synthetic_trace(np.tile([3.0, 1.0], (300, 1)), warmup=20, beta=0.95)
    o = sr.trace_overlay(trace)
    assert_allclose(o.prediction, o.weights, rtol=0, atol=1e-12)
    assert o.first_active == 20 and o.replay_error == 0.0
    assert_allclose(o.jump, o.jump_bound, rtol=1e-12)
    assert o.rms_error < 1e-12


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9, 0.99])
@pytest.mark.parametrize(("g", "lambda_min"), [((499.0, 1.0), 0.05), ((3.0, 1.0), 0.0),
                                               ((1.0, 2.0, 7.0), 0.1), ((1, 1, 2, 3, 9), 0.05)])
def test_closed_form_controller_and_loop_agree(beta, g, lambda_min):
    r = sr.step_response(g, beta=beta, warmup=5, lambda_min=lambda_min, n_steps=200, loop_steps=25)
    assert_allclose(r.controller_weights, r.closed_weights, rtol=0, atol=1e-12)
    assert_allclose(r.controller_ema, r.closed_ema, rtol=0, atol=1e-12)
    assert_allclose(r.loop_weights, r.closed_weights[:25], rtol=0, atol=1e-12)
    assert np.array_equal(r.loop_active, r.controller_active[:25])


def test_default_imbalance_gives_the_seeds_raw_weights():
    r = sr.step_response(warmup=3, n_steps=50, loop_steps=5)
    assert_allclose(r.raw, [0.002, 0.998], rtol=1e-12)
    assert_allclose(r.steady_state[0], 0.05 / 1.048, rtol=1e-12)  # floor_renormalise([.002, .998])


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.floats(0.01, 100.0), min_size=2, max_size=5),
    st.sampled_from([0.5, 0.9, 0.99, 0.999]),
)
def test_jump_equals_the_bound_while_the_floor_is_inactive(g, beta):
    r = sr.step_response(g, beta=beta, warmup=2, lambda_min=0.0, n_steps=4, loop_steps=2)
    assert_allclose(r.jump, r.jump_bound, rtol=1e-9, atol=1e-15)


def test_seed_table_is_float32_arithmetic():
    # Regression: seed 001 printed its EMA table from float32 tensors; float64 differs by ≤ 3.4e-6.
    r = sr.step_response(n_steps=520, loop_steps=2)
    for row in r.ema_table_rows():
        assert np.array_equal(np.round(row["float32"], 6), row["printed"])
        assert np.max(np.abs(row["closed"] - row["printed"])) <= sr.PRINT6_TOL


def test_relative_shift_claim_can_hold():
    # raw [0.25, 0.75]: the jump is 0.01·0.25 = 0.0025, i.e. 0.5 % of 1/2.
    r = sr.step_response((3.0, 1.0), loop_steps=101)
    claim = next(c for c in r.claims() if "relative shift" in c.claim)
    assert claim.verdict == "holds"


def test_bad_arguments():
    with pytest.raises(TypeError, match="step_response"):
        sr.step_response(bogus=1)
    with pytest.raises(ValueError, match="beta"):
        sr.step_response(beta=1.0)
    with pytest.raises(ValueError):
        sr.step_response((1.0, -1.0))
    with pytest.raises(ValueError, match="loop_steps"):
        sr.step_response(loop_steps=1)
