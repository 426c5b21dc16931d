"""The EMA as an LTI filter: python-control, scipy.signal and the closed forms agree.

Closed forms are written inline from first principles:
``H(e^{jω}) = (1−β)/(1 − β e^{−jω})``, ``|H| = (1−β)/sqrt(1 − 2β cos ω + β²)``,
phase ``−atan2(β sin ω, 1 − β cos ω)``, step response from ``y[−1] = y0``
with the input on from ``n = 0``: ``y[n] = 1 − (1 − y0) β^{n+1}``.
"""

from __future__ import annotations

import control as ct
import matplotlib
import numpy as np
import pytest
import scipy.linalg
import scipy.signal as signal
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from gaba_control import formulas
from gaba_control.lti import (
    ema_dlti,
    ema_filter,
    ema_frequency_response,
    ema_lfilter_coefficients,
    ema_state_space,
    ema_step_response,
    ema_transfer_function,
)
from gaba_control.theory import iir as theory

matplotlib.use("Agg")

BETAS = [0.0, 0.5, 0.9, 0.99, 0.999]
OMEGA = np.linspace(0.0, np.pi, 65)


def closed_form_response(beta, omega):
    return (1.0 - beta) / (1.0 - beta * np.exp(-1j * omega))


def conditioned_rtol(beta):
    """rtol for forms with ``1 − 2β cos ω + β²`` near DC: it cancels to ``(1−β)²``, so
    rounding grows like eps/(1−β)² (1e-8 at β = 0.999)."""
    return max(1e-12, 1e-14 / (1.0 - beta) ** 2)


def closed_form_step(beta, n, y0):
    return 1.0 - (1.0 - y0) * beta ** (n + 1.0)


@pytest.mark.parametrize("beta", BETAS)
def test_pole_zero_and_dc_gain_agree_across_libraries(beta):
    H = ema_transfer_function(beta)
    d = ema_dlti(beta)
    assert H.dt == 1 and d.dt == 1
    assert_allclose(H.poles(), [beta], atol=1e-15)
    assert_allclose(H.zeros(), [0.0], atol=1e-15)
    assert_allclose(d.poles, [beta], atol=1e-15)
    assert_allclose(d.zeros, [0.0], atol=1e-15)
    assert float(H.dcgain()) == pytest.approx(1.0, abs=1e-14)
    # dlti and tf both use positive powers of z: identical coefficient lists.
    assert_allclose(np.squeeze(H.num), d.num, atol=0)
    assert_allclose(np.squeeze(H.den), d.den, atol=0)
    # lfilter's (b, a) in negative powers: the same recursion without the trailing zero.
    b, a = ema_lfilter_coefficients(beta)
    assert_array_equal(b, [1.0 - beta])
    assert_array_equal(a, [1.0, -beta])


@pytest.mark.parametrize("beta", BETAS)
def test_frequency_response_control_scipy_and_closed_form(beta):
    r = ema_frequency_response(beta, OMEGA)
    exact = closed_form_response(beta, OMEGA)
    assert_allclose(r.control, exact, rtol=1e-12, atol=1e-15)
    assert_allclose(r.scipy, exact, rtol=1e-12, atol=1e-15)
    _, from_dlti = signal.dfreqresp(ema_dlti(beta), OMEGA)
    assert_allclose(from_dlti, exact, rtol=1e-12, atol=1e-15)
    magnitude = (1.0 - beta) / np.sqrt(1.0 - 2.0 * beta * np.cos(OMEGA) + beta**2)
    phase = -np.arctan2(beta * np.sin(OMEGA), 1.0 - beta * np.cos(OMEGA))
    assert_allclose(r.magnitude, magnitude, rtol=conditioned_rtol(beta), atol=1e-15)
    assert_allclose(r.phase, phase, rtol=1e-12, atol=1e-14)
    assert r.magnitude[0] == pytest.approx(1.0, abs=1e-14)  # DC gain
    assert r.magnitude[-1] == pytest.approx((1.0 - beta) / (1.0 + beta), rel=1e-12)  # Nyquist
    assert np.all(r.phase <= 1e-15) and np.all(r.phase > -np.pi / 2)


@pytest.mark.parametrize("beta", [0.5, 0.9, 0.99, 0.999])
def test_exact_half_power_cutoff(beta):
    # |H|² = 1/2  <=>  1 − 2β cos ω + β² = 2(1−β)²  <=>  cos ω = 1 − (1−β)²/(2β)
    omega_c = np.arccos(1.0 - (1.0 - beta) ** 2 / (2.0 * beta))
    r = ema_frequency_response(beta, np.array([omega_c]))
    assert r.magnitude[0] ** 2 == pytest.approx(0.5, rel=conditioned_rtol(beta))
    # −ln β is only an approximation of the cutoff: it lands on a different gain
    # (|H|² − 1/2 shrinks like (1−β)², below resolution at β = 0.999).
    approx = ema_frequency_response(beta, np.array([-np.log(beta)])).magnitude[0] ** 2
    if beta <= 0.99:
        assert approx - 0.5 > 100 * conditioned_rtol(beta)


def test_two_element_omega_is_evaluated_pointwise():
    # python-control reads a 2-element list as limits; the wrapper never does.
    r = ema_frequency_response(0.9, [0.1, 0.2])
    assert r.omega.shape == (2,) and r.control.shape == (2,)
    assert_allclose(r.control, closed_form_response(0.9, np.array([0.1, 0.2])), rtol=1e-12)


@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("y0", [0.0, 0.25, 1.0 / 3.0])
def test_step_response_control_scipy_and_closed_form(beta, y0):
    n_steps = 400
    r = ema_step_response(beta, n_steps, y0)
    n = np.arange(n_steps)
    assert_array_equal(r.steps, n)
    exact = closed_form_step(beta, n, y0)
    assert_allclose(r.control, exact, rtol=1e-12, atol=1e-14)
    assert_allclose(r.scipy, exact, rtol=1e-12, atol=1e-14)
    # First sample: the current input already acts (the zero at z = 0).
    assert r.control[0] == pytest.approx(beta * y0 + (1.0 - beta), abs=1e-15)


@pytest.mark.parametrize("beta", BETAS)
def test_step_response_from_zero_matches_dstep_and_control_step(beta):
    n_steps = 300
    n = np.arange(n_steps)
    _, (from_dstep,) = signal.dstep(ema_dlti(beta), n=n_steps)
    from_control = ct.step_response(ema_transfer_function(beta), n).outputs
    exact = 1.0 - beta ** (n + 1.0)
    assert_allclose(from_dstep.ravel(), exact, rtol=1e-12, atol=1e-14)
    assert_allclose(np.ravel(from_control), exact, rtol=1e-12, atol=1e-14)
    assert_allclose(ema_step_response(beta, n_steps).control, exact, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("beta", [0.5, 0.9, 0.99])
def test_dropping_the_zero_delays_the_filter_by_one_step(beta):
    n = np.arange(200)
    delayed = ct.tf([1.0 - beta], [1.0, -beta], dt=1)
    y_delayed = np.ravel(ct.step_response(delayed, n).outputs)
    y = ema_step_response(beta, n.size).control
    assert_allclose(y_delayed, 1.0 - beta**n, rtol=1e-12, atol=1e-14)
    assert_allclose(y_delayed[1:], y[:-1], rtol=1e-12, atol=1e-14)
    assert not np.allclose(y_delayed, y, rtol=1e-6)


@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("num_channels", [1, 2, 3, 5, 8])
def test_state_space_channels_and_state_output(beta, num_channels):
    sys = ema_state_space(beta, num_channels)
    assert sys.nstates == num_channels and sys.ninputs == num_channels
    assert sys.noutputs == 2 * num_channels
    assert_allclose(sys.poles(), np.full(num_channels, beta), atol=1e-15)
    z = np.exp(1j * OMEGA)
    response = ct.frequency_response(sys, OMEGA).complex  # (outputs, inputs, F)
    eye = np.eye(num_channels)[:, :, None]
    # First K outputs: the EMA on each channel, no cross-talk.
    assert_allclose(response[:num_channels], eye * closed_form_response(beta, OMEGA), atol=1e-14)
    # Last K outputs: the stored state m[n] = y[n−1], i.e. z⁻¹H(z) = (1−β)/(z−β).
    assert_allclose(response[num_channels:], eye * (1.0 - beta) / (z - beta), atol=1e-14)


@pytest.mark.parametrize("num_channels", [2, 5])
def test_diagonal_state_space_equals_append_of_siso_filters(num_channels):
    # The alternative MIMO construction (SISO tf -> ss needs no slycot) gives the same system.
    beta = 0.9
    appended = ct.append(*[ct.ss(ema_transfer_function(beta))] * num_channels)
    diagonal = ema_state_space(beta, num_channels, prev_outputs=None)
    assert_allclose(
        ct.frequency_response(appended, OMEGA).complex,
        ct.frequency_response(diagonal, OMEGA).complex,
        rtol=1e-12,
        atol=1e-15,
    )


def test_state_space_without_state_outputs():
    sys = ema_state_space(0.9, 3, prev_outputs=None, outputs="out", inputs="inp", name="f")
    assert sys.output_labels == ["out[0]", "out[1]", "out[2]"]
    assert sys.input_labels == ["inp[0]", "inp[1]", "inp[2]"]
    assert sys.name == "f"
    assert_allclose(sys.dcgain(), np.eye(3), atol=1e-14)


@pytest.mark.parametrize("beta", BETAS)
def test_ema_filter_equals_the_shared_update(beta):
    rng = np.random.default_rng(7)
    x = rng.random((4, 3, 50))
    initial = rng.random((4, 3))
    y = ema_filter(x, beta, initial)
    state = initial.copy()
    for n in range(x.shape[-1]):
        state = formulas.ema_update(state, x[..., n], beta)
        assert_allclose(y[..., n], state, rtol=1e-13, atol=1e-15)
    # Time on another axis gives the same numbers.
    assert_allclose(
        ema_filter(np.moveaxis(x, -1, 0), beta, initial, axis=0),
        np.moveaxis(y, -1, 0),
        rtol=0,
        atol=0,
    )


@given(
    beta=st.floats(0.0, 0.9999),
    x=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=60),
    y0=st.floats(0.0, 1.0),
)
def test_ema_stays_in_the_convex_hull_of_its_inputs(beta, x, y0):
    # y[n] is a convex combination of y[−1] and x[0..n].
    y = ema_filter(np.array(x), beta, initial=y0)
    lo, hi = min([*x, y0]), max([*x, y0])
    assert np.all(y >= lo - 1e-12) and np.all(y <= hi + 1e-12)


@pytest.mark.parametrize("beta", [0.5, 0.9, 0.99, 0.999])
def test_white_noise_variance_gain_three_ways(beta):
    expected = (1.0 - beta) / (1.0 + beta)  # Σ h[n]² with h[n] = (1−β)βⁿ
    H = ema_transfer_function(beta)
    assert ct.system_norm(H, p=2) ** 2 == pytest.approx(expected, rel=1e-10)
    sys = ema_state_space(beta, 1, prev_outputs=None)
    P = scipy.linalg.solve_discrete_lyapunov(sys.A, sys.B @ sys.B.T)
    variance = (sys.C @ P @ sys.C.T + sys.D @ sys.D.T).item()
    assert variance == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    "call",
    [
        lambda: ema_transfer_function(1.0),
        lambda: ema_transfer_function(-0.1),
        lambda: ema_dlti(1.5),
        lambda: ema_frequency_response(0.9, [0.0, 4.0]),
        lambda: ema_frequency_response(0.9, [np.nan]),
        lambda: ema_step_response(0.9, 0),
        lambda: ema_state_space(0.9, 0),
    ],
)
def test_invalid_arguments_raise_value_error(call):
    with pytest.raises(ValueError):
        call()


def test_unknown_keyword_raises_type_error():
    with pytest.raises(TypeError, match="bogus"):
        ema_transfer_function(0.9, bogus=1)
    with pytest.raises(TypeError, match="bogus"):
        ema_state_space(0.9, 2, bogus=1)
    with pytest.raises(TypeError):
        ema_step_response(0.9, 2.5)


def test_plots_draw_on_given_and_new_axes():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    try:
        assert ema_frequency_response(0.9, OMEGA[1:]).plot(ax=ax) is ax
        assert len(ax.lines) == 2
        new_ax = ema_step_response(0.9, 50, 0.5).plot()
        assert len(new_ax.lines) == 2 and new_ax is not ax
        plt.close(new_ax.figure)
    finally:
        plt.close(fig)


# --- parity with the colleague's closed forms (gaba_control.theory.iir) -----------------


@pytest.mark.parametrize("beta", BETAS)
def test_parity_with_theory_closed_forms(beta):
    r = ema_frequency_response(beta, OMEGA)
    assert_allclose(r.control, theory.frequency_response(beta, OMEGA), rtol=1e-12, atol=1e-15)
    assert_allclose(
        r.magnitude, theory.magnitude_response(beta, OMEGA), rtol=conditioned_rtol(beta)
    )
    assert_allclose(r.phase, theory.phase_response(beta, OMEGA), rtol=1e-12, atol=1e-14)
    assert r.magnitude[-1] == pytest.approx(theory.nyquist_gain(beta), rel=1e-12)
    # theory counts updates (n = 0 is the initial state); our sample n is update n + 1.
    s = ema_step_response(beta, 200, 0.25)
    assert_allclose(
        s.control, theory.step_response(beta, s.steps + 1, y0=0.25), rtol=1e-12, atol=1e-14
    )
