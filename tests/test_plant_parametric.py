"""Parametric plant models: recovery of known discrete systems, order selection, prefilter."""

import control
import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import signal

from gaba_control.plant.excitation import prbs
from gaba_control.plant.parametric import fit_arx, fit_oe, fit_percent, prefilter, select_order

# second order: a resonant pole pair 0.8 ± 0.35j (|p| = 0.87), zero at 0.6, one step of delay
POLES2 = np.array([0.8 + 0.35j, 0.8 - 0.35j])
B2, F2 = [0.0, 0.2, -0.12], np.real(np.poly(POLES2))
DC2 = 0.08 / float(np.sum(F2))


def _record(seed, n=6000, noise=0.3, drift=0.0):
    rng = np.random.default_rng(seed)
    u = prbs(n, clock=5, seed=seed)
    v = noise * signal.lfilter([1.0], [1.0, -0.7], rng.standard_normal(n))
    trend = drift * np.linspace(0, 1, n) ** 2  # slow drift, as in training
    return u, signal.lfilter(B2, F2, u) + v + trend


def test_oe_recovers_a_second_order_system_from_noisy_records():
    records = [_record(s) for s in range(3)]
    m = fit_oe([r[0] for r in records], [r[1] for r in records], nb=2, nf=2, nk=1,
               highpass=None)
    assert_allclose(np.sort_complex(m.poles), np.sort_complex(POLES2), atol=0.03)
    assert m.stable
    assert m.dc_gain == pytest.approx(DC2, rel=0.05)
    assert m.orders == (2, 2, 1)


def test_arx_is_exact_on_equation_error_data():
    rng = np.random.default_rng(7)
    u = prbs(8000, clock=3)
    y = signal.lfilter([0, 0.5], [1, -0.9], u) + signal.lfilter([1], [1, -0.9],
                                                                 0.05 * rng.standard_normal(8000))
    m = fit_arx(u, y, 1, 1, 1, highpass=None)
    assert_allclose([m.a[1], m.b[0]], [-0.9, 0.5], atol=0.01)


def test_prefilter_removes_drift_without_biasing_the_plant():
    u, y = _record(10, drift=20.0)  # a drift ten times the response's range
    biased = fit_oe(u, y, 2, 2, 1, highpass=None)
    filtered = fit_oe(u, y, 2, 2, 1, highpass=0.005)
    assert filtered.dc_gain == pytest.approx(DC2, rel=0.05)
    assert_allclose(np.sort_complex(filtered.poles), np.sort_complex(POLES2), atol=0.03)
    assert abs(biased.dc_gain - DC2) > 5 * abs(filtered.dc_gain - DC2)


def test_prefilter_is_the_same_lti_filter_on_both_signals():
    u, _ = _record(11)
    # L(q)·G(q)u == G(q)·L(q)u once the start transient (time constant 100 steps) has gone
    a = prefilter(signal.lfilter(B2, F2, u), 0.01)
    b = signal.lfilter(B2, F2, prefilter(u, 0.01))
    assert_allclose(a[2500:], b[2500:], atol=1e-6)
    with pytest.raises(ValueError, match="highpass must be a float in"):
        prefilter(u, 4.0)


def test_transfer_function_matches_the_model():
    m = fit_oe(*_record(12), 2, 2, 1, highpass=None)
    tf = m.transfer_function()
    assert isinstance(tf, control.TransferFunction) and tf.dt == 1
    omega = np.array([0.001, 0.01, 0.1, 1.0])
    assert_allclose(tf(np.exp(1j * omega)), m.frequency_response(omega), rtol=1e-10)
    assert_allclose(np.sort(control.poles(tf).real), np.sort(m.poles.real), rtol=1e-9)
    assert control.dcgain(tf) == pytest.approx(m.dc_gain, rel=1e-9)


def test_order_selection_picks_the_true_order_on_held_out_records():
    est = [_record(s) for s in (20, 21)]
    val = [_record(s) for s in (22, 23)]
    choice = select_order([r[0] for r in est], [r[1] for r in est],
                          [r[0] for r in val], [r[1] for r in val],
                          poles=(1, 2, 3), numerators=(1, 2, 3), highpass=None)
    assert choice.chosen.orders == (2, 2, 1)
    rows = choice.table()
    assert len(rows) == 9 and sum(r["chosen"] for r in rows) == 1
    assert all(np.isfinite(r["validation_fit"]) for r in rows)


def test_fit_percent():
    y = np.array([1.0, 2.0, 3.0])
    assert fit_percent(y, y) == 100.0
    assert fit_percent(y, np.full(3, 2.0)) == pytest.approx(0.0)


@pytest.mark.parametrize(
    ("call", "message"),
    [(lambda u, y: fit_oe(u, y, 0, 1), "nb must be an int >= 1"),
     (lambda u, y: fit_arx(u, y, -1, 1), "na must be an int >= 0"),
     (lambda u, y: fit_oe(u, y, 1, 1, 1.5), "nk must be an int >= 0"),
     (lambda u, y: fit_oe(u, y, skip=-2), "skip must be an int >= 0"),
     (lambda u, y: fit_oe(u, y, bogus=1), "unexpected keyword argument"),
     (lambda u, y: fit_arx(u[:4], y[:4], 3, 3), "too short for orders"),
     (lambda u, y: select_order(u, y, u, y, structure="bj"), "structure must be"),
     (lambda u, y: fit_oe([u, u], [y]), "u has 2 records, y has 1")],
)
def test_bad_orders_and_records_are_named(call, message):
    u, y = _record(30, n=400)
    with pytest.raises((ValueError, TypeError), match=message):
        call(u, y)
