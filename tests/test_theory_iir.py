"""Closed forms of gaba_control.theory.iir against simulation, scipy.signal and python-control."""

import math

import control
import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import signal

from gaba_control.formulas import ema_update
from gaba_control.theory import iir

BETAS = [0.0, 0.5, 0.9, 0.99, 0.999]
ROLLING_BETAS = [0.5, 0.9, 0.99, 0.999]  # those with a 3 dB cutoff


def _tf(beta):
    return control.tf([1 - beta, 0], [1, -beta], dt=1)


def _recursion(beta, x, y0):
    out, y = [], y0
    for value in x:
        y = ema_update(y, value, beta)
        out.append(y)
    return np.array(out)


@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("y0", [0.0, 0.5, -2.0])
def test_step_response_matches_recursion(beta, y0):
    n = np.arange(0, 400)
    simulated = np.concatenate([[y0], _recursion(beta, np.full(399, 0.002), y0)])
    assert_allclose(iir.step_response(beta, n, y0=y0, amplitude=0.002), simulated,
                    rtol=0, atol=1e-12)


@pytest.mark.parametrize("beta", BETAS)
def test_step_response_matches_scipy_and_control(beta):
    # control/scipy apply the input from k = 0, so their y[k] is our y after k + 1 updates.
    k = np.arange(0, 300)
    ours = iir.step_response(beta, k + 1)
    _, (scipy_y,) = signal.dstep(signal.dlti([1 - beta, 0], [1, -beta], dt=1), n=300)
    assert_allclose(scipy_y[:, 0], ours, rtol=0, atol=1e-12)
    resp = control.step_response(_tf(beta), timepts=k)
    assert_allclose(np.squeeze(resp.outputs), ours, rtol=0, atol=1e-12)


@pytest.mark.parametrize("beta", BETAS)
def test_impulse_response_matches_lfilter(beta):
    impulse = np.zeros(200)
    impulse[0] = 1.0
    expected = signal.lfilter([1 - beta], [1, -beta], impulse)
    assert_allclose(iir.impulse_response(beta, np.arange(200)), expected, rtol=0, atol=1e-15)


@pytest.mark.parametrize("beta", BETAS)
def test_frequency_response_matches_freqz_and_control(beta):
    omega = np.linspace(0.0, np.pi, 257)
    _, h = signal.freqz([1 - beta], [1, -beta], worN=omega)
    assert_allclose(iir.frequency_response(beta, omega), h, rtol=1e-12, atol=1e-14)
    assert_allclose(iir.magnitude_response(beta, omega), np.abs(h), rtol=1e-12, atol=1e-14)
    assert_allclose(iir.phase_response(beta, omega), np.angle(h), rtol=0, atol=1e-12)
    resp = control.frequency_response(_tf(beta), omega[1:-1])  # control warns at exactly π
    assert_allclose(np.squeeze(resp.complex), h[1:-1], rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("beta", BETAS)
def test_dc_and_nyquist_gains(beta):
    assert iir.dc_gain(beta) == pytest.approx(float(control.dcgain(_tf(beta))), abs=1e-12)
    assert iir.nyquist_gain(beta) == pytest.approx(abs(iir.frequency_response(beta, np.pi)),
                                                   rel=1e-12)


@pytest.mark.parametrize("beta", BETAS[1:])
def test_phase_minimum_is_minus_arcsin_beta(beta):
    omega = np.linspace(0.0, np.pi, 200_001)
    assert iir.phase_response(beta, omega).min() == pytest.approx(-math.asin(beta), abs=1e-8)


@pytest.mark.parametrize("beta", ROLLING_BETAS)
def test_cutoff_is_the_half_power_point(beta):
    omega_c = iir.cutoff_frequency(beta)
    assert float(iir.magnitude_response(beta, omega_c)) ** 2 == pytest.approx(0.5, rel=1e-12)
    # the arccos form of the brief, evaluated where it is not ill-conditioned
    assert omega_c == pytest.approx(math.acos(1 - (1 - beta) ** 2 / (2 * beta)), rel=1e-6)
    assert iir.cutoff_frequency(beta, "cycles") == pytest.approx(omega_c / (2 * math.pi))


@pytest.mark.parametrize("beta", [0.0, 0.1, 3 - 2 * math.sqrt(2)])
def test_no_cutoff_when_nyquist_gain_is_above_half_power(beta):
    assert iir.cutoff_frequency(beta) == math.inf
    assert iir.nyquist_gain(beta) >= 1 / math.sqrt(2) - 1e-15
    assert math.isnan(iir.cutoff_approximation_error(beta))


@pytest.mark.parametrize("beta", ROLLING_BETAS)
def test_cutoff_approximation_error_is_minus_a_squared_over_12(beta):
    a = -math.log(beta)
    exact, approx = iir.cutoff_frequency(beta), iir.cutoff_frequency_approx(beta)
    assert iir.cutoff_approximation_error(beta) == pytest.approx((approx - exact) / exact)
    if beta >= 0.9:
        assert iir.cutoff_approximation_error(beta) == pytest.approx(-a * a / 12, rel=2e-2)


@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("fraction", [0.5, 0.05, 0.01, 1e-6])
def test_settling_steps_is_first_step_within_fraction(beta, fraction):
    n = iir.settling_steps(beta, fraction)
    gap = 1.0 - iir.step_response(beta, np.arange(0, n + 1))  # start 0, final 1
    assert gap[n] <= fraction
    assert np.all(gap[:n] > fraction)
    assert n == max(1 if beta == 0 else 0, math.ceil(iir.settling_time(beta, fraction) - 1e-9))


@pytest.mark.parametrize("beta", BETAS[1:])
def test_half_life_and_time_constant(beta):
    assert beta ** iir.half_life(beta) == pytest.approx(0.5, rel=1e-12)
    n = np.arange(0, 200_000)
    mean_age = np.sum(n * iir.impulse_response(beta, n))
    assert mean_age == pytest.approx(iir.time_constant(beta) - 1, rel=1e-9, abs=1e-12)


def test_fraction_settled_is_one_minus_beta_power():
    assert_allclose(iir.fraction_settled(0.9, [0, 1, 2]), [0.0, 0.1, 0.19], atol=1e-15)


# --- seed 001, "Time Constant, Half-Life, And Settling" ---------------------------------------
def test_seed001_time_constant_half_life_and_cutoff_are_right():
    assert iir.time_constant(0.99) == pytest.approx(100.0)  # seed: 100 steps
    assert round(iir.half_life(0.99), 2) == 68.97  # seed: 68.97 steps
    assert round(iir.cutoff_frequency(0.99, "cycles"), 4) == 0.0016  # seed: ≈ 0.0016 cycles/step
    assert round(1 / iir.cutoff_frequency_approx(0.99, "cycles")) == 625  # seed: period 625 steps


def test_seed001_three_tau_rule_is_one_step_late():
    # seed: "95% settling (3τ rule) 300 steps"; the first step within 5 % is 299.
    assert iir.settling_steps(0.99, 0.05) == 299
    assert 1 - 0.99**299 >= 0.95 > 1 - 0.99**298


def test_seed001_fraction_absorbed_at_one_tau_is_not_one_minus_one_over_e():
    # seed: "at 1τ, fraction absorbed = 1−1/e ≈ 63.2%"; exactly 1 − 0.99^100 = 0.634.
    assert round(float(iir.fraction_settled(0.99, 100)), 3) == 0.634
    # seed: 2τ 86.5 %, 3τ 95.0 %, 4τ 98.2 %; exact 86.6 %, 95.1 %, 98.2 %.
    assert_allclose(iir.fraction_settled(0.99, [200, 300, 400]).round(3), [0.866, 0.951, 0.982])


def test_seed001_period_one_noise_is_at_dc_not_attenuated():
    # seed: "Per-batch noise (period 1) sees attenuation of more than 30 dB". Sampled once per
    # step, a period-1 disturbance is constant (ω = 2π ≡ 0): gain 0 dB. Only the period-2
    # (Nyquist) component is attenuated by 20·log10((1+β)/(1−β)) = 45.98 dB.
    assert float(iir.magnitude_response(0.99, 2 * np.pi)) == pytest.approx(1.0)
    assert 20 * math.log10(iir.nyquist_gain(0.99)) == pytest.approx(-45.98, abs=5e-3)


# --- argument checks -------------------------------------------------------------------------
@pytest.mark.parametrize("beta", [1.0, -0.1, 1.5])
def test_beta_out_of_range_raises(beta):
    with pytest.raises(ValueError, match="beta"):
        iir.time_constant(beta)


def test_bad_arguments_raise():
    with pytest.raises(TypeError, match="beta"):
        iir.half_life("0.9")
    with pytest.raises(ValueError, match="fraction"):
        iir.settling_steps(0.9, 0.0)
    with pytest.raises(ValueError, match="unit"):
        iir.cutoff_frequency(0.9, unit="hz")
    with pytest.raises(TypeError, match="unexpected"):
        iir.step_response(0.9, 3, init=1.0)
    with pytest.raises(ValueError, match="steps"):
        iir.step_response(0.9, [-1])
    with pytest.raises(TypeError, match="steps"):
        iir.impulse_response(0.9, [0.5])
