"""Non-parametric plant estimate: H1, its coherence and the calibration of its bands."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import signal

from gaba_control.plant.spectral import (
    InsufficientCoherenceError,
    equivalent_segments,
    frequency_response_estimate,
)

B, A = [0.0, 0.4], [1.0, -0.8]  # G(z) = 0.4 z⁻¹/(1 − 0.8 z⁻¹): 5-step time constant


def _truth(omega):
    z = np.exp(-1j * omega)
    return 0.4 * z / (1 - 0.8 * z)


def _record(seed, n, kind="white", noise=0.8):
    rng = np.random.default_rng(seed)
    u = rng.standard_normal(n) if kind == "white" else np.repeat(
        np.sign(rng.standard_normal(n // 8)), 8)
    v = noise * signal.lfilter([1.0], [1.0, -0.5], rng.standard_normal(n))  # coloured noise
    return u, signal.lfilter(B, A, u) + v


def test_noise_free_estimate_is_the_system():
    u, _ = _record(0, 8192)
    est = frequency_response_estimate(u, signal.lfilter(B, A, u), nperseg=512)
    # leakage of a 5-step impulse response into 512-step Hann segments: below 1e-2 relative
    assert_allclose(est.response, _truth(est.omega), rtol=1e-2)
    assert_allclose(est.coherence, 1.0, atol=3e-3)


@pytest.mark.parametrize(
    ("n", "nperseg", "noverlap", "window", "kind"),
    [(4096, 256, None, "hann", "white"),    # 31 overlapping segments
     (1024, 256, None, "hann", "white"),    # 7: the F quantile matters
     (4096, 256, 0, "boxcar", "white"),     # independent segments, no window
     (4096, 256, None, "hann", "prbs")],    # a binary input held 8 steps
)
@pytest.mark.parametrize("confidence", [0.9, 0.95])
def test_bands_cover_the_truth_at_their_nominal_rate(n, nperseg, noverlap, window, kind,
                                                     confidence):
    # 200 noisy realisations: the pooled coverage of the confidence disk over the band.
    # Measured 0.898-0.905 (nominal 0.9) and 0.949-0.952 (0.95) for these cases; the tolerance
    # of 0.02 is about 4 standard errors of the pooled rate with correlated neighbouring bins.
    covered = []
    for seed in range(200):
        u, y = _record(seed, n, kind)
        est = frequency_response_estimate(u, y, nperseg=nperseg, noverlap=noverlap,
                                          window=window, confidence=confidence)
        band = est.omega < (2.5 if kind == "prbs" else np.pi)  # PRBS nulls at 2π/8
        covered.append(est.covers(_truth(est.omega))[band].mean())
    assert abs(np.mean(covered) - confidence) < 0.02


def test_magnitude_and_phase_bands_contain_the_disk():
    u, y = _record(1, 2048)
    est = frequency_response_estimate(u, y, nperseg=256)
    inside = est.covers(_truth(est.omega))
    lo, hi = est.magnitude_band
    mag = np.abs(_truth(est.omega))
    assert np.all((lo[inside] <= mag[inside]) & (mag[inside] <= hi[inside]))
    phase_error = np.abs(np.angle(_truth(est.omega) / est.response))
    assert np.all(phase_error[inside] <= est.phase_halfwidth[inside] + 1e-12)


def test_records_average_like_one_long_record():
    (u1, y1), (u2, y2) = _record(2, 2048), _record(3, 2048)
    both = frequency_response_estimate([u1, u2], [y1, y2], nperseg=256)
    one = frequency_response_estimate(u1, y1, nperseg=256)
    assert both.segments == pytest.approx(2 * one.segments)
    assert np.mean(both.radius / one.radius) < 0.8  # twice the segments: narrower bands


def test_equivalent_segments():
    assert equivalent_segments(12, 128, 0, "hann") == 12.0
    # Hann at 50 % overlap: ρ(D) = 1/6 for the periodic window, so ν/2 = K/(1 + 2(1-1/K)/36)
    k = 12
    assert equivalent_segments(k, 128, 64, "hann") == pytest.approx(
        k / (1 + 2 * (1 - 1 / k) / 36), rel=1e-12)


def test_low_coherence_is_refused():
    rng = np.random.default_rng(4)
    u = rng.standard_normal(4096)
    y = 0.01 * signal.lfilter(B, A, u) + rng.standard_normal(4096)
    est = frequency_response_estimate(u, y, nperseg=256)
    with pytest.raises(InsufficientCoherenceError, match=r"below 0\.2"):
        est.require_coherence(0.01, 1.0)
    good = frequency_response_estimate(u, signal.lfilter(B, A, u), nperseg=256)
    good.require_coherence(0.01, 1.0)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [({"nperseg": 2}, ValueError, "nperseg must be >= 4"),
     ({"nperseg": 1.5}, TypeError, "nperseg must be an int"),
     ({"noverlap": 256}, ValueError, "noverlap must be an int in"),
     ({"confidence": 1.0}, ValueError, "confidence must be a float in"),
     ({"bogus": 1}, TypeError, "unexpected keyword argument"),
     ({"nperseg": 4096}, ValueError, "fewer than nperseg")],
)
def test_bad_settings_are_named(kwargs, error, message):
    u, y = _record(5, 1024)
    with pytest.raises(error, match=message):
        frequency_response_estimate(u, y, **{"nperseg": 256, **kwargs})


def test_bad_records_are_named():
    u, y = _record(6, 1024)
    with pytest.raises(ValueError, match="u has 2 records, y has 1"):
        frequency_response_estimate([u, u], [y], nperseg=256)
    with pytest.raises(ValueError, match="record 0: u has 1024 samples, y has 1000"):
        frequency_response_estimate(u, y[:1000], nperseg=256)
    bad = y.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match=r"y\[0\] has non-finite values"):
        frequency_response_estimate(u, bad, nperseg=256)
