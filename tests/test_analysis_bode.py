"""Bode study: python-control vs scipy vs closed form, cutoff, claims and report hook."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from analysis import bode
from gaba_control.theory import iir as theory

BETAS = [0.0, 0.5, 0.9, 0.99, 0.999]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return bode.run(tmp_path_factory.mktemp("bode"), seed=0, trace=None, quick=True)


def _verdict(study, fragment):
    hits = [c.verdict for c in study.claims if fragment in c.claim]
    assert len(hits) == 1, fragment
    return hits[0]


def test_run_writes_png_and_svg(study):
    assert {p.suffix for p in study.figures} == {".png", ".svg", ".pdf"}
    assert all(p.exists() and p.stat().st_size > 0 for p in study.figures)
    assert study.name == "bode" and study.tables


@pytest.mark.parametrize(
    ("fragment", "expected"),
    [
        ("3 dB cutoff f_c", "holds"),  # 0.0015996 rounds to 0.0016
        ("cutoff period", "holds"),  # 625.17 steps
        ("per-batch noise (period 1)", "refuted"),  # aliases to DC; white noise loses 23 dB
        ("period 2 (Nyquist", "holds"),  # 45.98 dB
        ("coherent trends", "refuted"),  # |H| = 0.85 at period 1000
        ("DC gain", "holds"),
        ("python-control, scipy", "holds"),
    ],
)
def test_verdicts(study, fragment, expected):
    assert _verdict(study, fragment) == expected


@pytest.mark.parametrize("beta", BETAS)
def test_three_sources_agree(beta):
    r = bode.bode_response([beta], num=64)
    assert_allclose(r.control, r.closed_form, rtol=0, atol=1e-12)
    assert_allclose(r.scipy, r.closed_form, rtol=0, atol=1e-12)
    assert r.omega[-1] == math.pi
    assert_allclose(abs(r.control[0, -1]), (1 - beta) / (1 + beta), rtol=1e-12)
    assert_allclose(r.dc_gain, 1.0, rtol=0, atol=1e-12)


@pytest.mark.parametrize("beta", [0.5, 0.9, 0.99, 0.999])
def test_measured_cutoff_is_the_half_power_point(beta):
    r = bode.bode_response([beta], num=8)
    assert_allclose(r.cutoff_measured, r.cutoff, rtol=1e-9)
    assert_allclose(theory.magnitude_response(beta, r.cutoff_measured[0]) ** 2, 0.5, rtol=1e-9)
    # The −ln β approximation is low by about (−ln β)²/12 (relative).
    a = -math.log(beta)
    assert_allclose((r.cutoff_approx[0] - r.cutoff[0]) / r.cutoff[0], -(a**2) / 12, rtol=0.05)


def test_no_cutoff_when_the_filter_never_reaches_minus_3_db():
    r = bode.bode_response([0.1], num=8)  # Nyquist gain 0.818 > 1/√2
    assert math.isinf(r.cutoff[0]) and math.isinf(r.cutoff_measured[0])


@settings(max_examples=30, deadline=None)
@given(st.floats(0.0, 0.999))
def test_magnitude_falls_and_phase_lags(beta):
    r = bode.bode_response([beta], num=50)
    assert np.all(np.diff(r.magnitude_db[0]) <= 1e-9)
    assert np.all((r.phase_deg[0] <= 1e-9) & (r.phase_deg[0] > -90.0))


def test_claims_can_flip():
    # At β = 0.5 the cutoff is 0.115 cycles/step, far from the seeds' 0.0016.
    r = bode.bode_response([0.5, 0.99], num=32)
    verdicts = {c.claim.split(" at ")[0]: c.verdict for c in r.claims(0.5)}
    assert verdicts["3 dB cutoff f_c = −ln β/(2π) ≈ 0.0016 cycles/step"] == "refuted"


def test_claims_need_a_swept_beta():
    with pytest.raises(ValueError, match="not in the sweep"):
        bode.bode_response([0.9], num=8).claims(0.99)


def test_bad_arguments():
    with pytest.raises(TypeError, match="bode_response"):
        bode.bode_response([0.9], bogus=1)
    with pytest.raises(ValueError, match="beta"):
        bode.bode_response([1.0])


def test_plot_has_log_frequency_axes():
    fig = bode.bode_response([0.9, 0.99], num=32).plot()
    mag, phase = fig.axes[:2]
    assert mag.get_xscale() == "log" and phase.get_xscale() == "log"
    assert "rad/sample" in phase.get_xlabel() and "dB" in mag.get_ylabel()
