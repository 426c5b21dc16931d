"""Variance closed forms of gaba_control.theory.variance against exact sums and Monte Carlo."""

import math
import zlib

import control
import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import signal
from scipy.linalg import solve_discrete_lyapunov

from gaba_control.theory import variance as var

BETAS = [0.0, 0.5, 0.9, 0.99, 0.999]
RHOS = [-0.5, 0.0, 0.3, 0.9]


def _ar1_filter_impulse(beta, rho, length):
    """Impulse response of white noise → AR(1) (unit variance) → EMA."""
    impulse = np.zeros(length)
    impulse[0] = math.sqrt(1 - rho**2)
    return signal.lfilter([1 - beta], [1, -beta], signal.lfilter([1], [1, -rho], impulse))


@pytest.mark.parametrize("beta", BETAS)
def test_white_noise_variance_ratio_matches_h2_norm_and_lyapunov(beta):
    h = control.tf([1 - beta, 0], [1, -beta], dt=1)
    assert var.variance_ratio(beta) == pytest.approx((1 - beta) / (1 + beta), rel=1e-15)
    if beta > 0:  # control's H2 norm of a static gain is infinite
        assert var.variance_ratio(beta) == pytest.approx(control.system_norm(h, p=2) ** 2,
                                                         rel=1e-10)
    # state y[n] = β y[n−1] + (1−β) x[n]: P = β² P + (1−β)²
    p = solve_discrete_lyapunov(np.array([[beta]]), np.array([[(1 - beta) ** 2]]))
    assert var.variance_ratio(beta) == pytest.approx(p[0, 0], rel=1e-12)


@pytest.mark.parametrize("beta", BETAS[:4])
@pytest.mark.parametrize("rho", RHOS)
def test_ar1_variance_and_autocovariance_match_impulse_sums(beta, rho):
    length = 20_000
    g = _ar1_filter_impulse(beta, rho, length)
    lags = np.arange(0, 50)
    exact = np.array([g[: length - k] @ g[k:] for k in lags])
    assert_allclose(var.output_autocovariance(beta, lags, rho), exact, rtol=1e-9, atol=1e-15)
    assert var.variance_ratio(beta, rho) == pytest.approx(exact[0], rel=1e-9)


@pytest.mark.parametrize("beta", [0.5, 0.9])
def test_autocovariance_when_beta_equals_rho(beta):
    g = _ar1_filter_impulse(beta, beta, 5_000)
    lags = np.arange(0, 30)
    exact = np.array([g[: 5_000 - k] @ g[k:] for k in lags])
    assert_allclose(var.output_autocovariance(beta, lags, beta), exact, rtol=1e-9)


@pytest.mark.parametrize("beta", [0.5, 0.9, 0.99])
def test_input_output_covariance_matches_impulse_sum(beta):
    rho = 0.6
    # Cov(y_t, x_{t+k}) = Σ_j (1−β)β^j ρ^{k+j}
    j = np.arange(0, 20_000)
    for k in range(5):
        exact = np.sum((1 - beta) * beta**j * rho ** (k + j))
        assert var.input_output_covariance(beta, [k], rho)[0] == pytest.approx(exact, rel=1e-12)


def test_positive_correlation_lowers_the_std_reduction():
    rhos = np.linspace(-0.9, 0.9, 37)
    reductions = [var.std_reduction(0.99, r) for r in rhos]
    assert np.all(np.diff(reductions) < 0)
    assert var.std_reduction(0.99, 0.1) < var.std_reduction(0.99) < var.std_reduction(0.99, -0.1)


@pytest.mark.parametrize("n", [2, 10, 1000])
@pytest.mark.parametrize("ddof", [0, 1])
def test_iid_input_sample_variance(n, ddof):
    assert var.input_sample_variance(n, ddof=ddof) == pytest.approx((n - 1) / (n - ddof))


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9, 0.99])
@pytest.mark.parametrize("rho", [0.0, 0.5, -0.3])
@pytest.mark.parametrize("include_init", [False, True])
def test_stationary_start_matrix_equals_autocovariance_form(beta, rho, include_init):
    # two derivations: the n×n covariance with a stationary y0, and the O(n) stationary formula
    n = 300
    matrix = var.output_sample_variance(beta, n, init="stationary", rho=rho,
                                        include_init=include_init)
    assert matrix == pytest.approx(var.stationary_output_sample_variance(beta, n, rho), rel=1e-10)


def test_finite_window_tends_to_stationary_ratio():
    ratios = [var.sample_variance_ratio(0.99, n) / var.variance_ratio(0.99)
              for n in (1000, 10_000, 100_000)]
    assert ratios[0] < ratios[1] < ratios[2] < 1.0
    assert ratios[2] == pytest.approx(1.0, abs=3e-3)  # relative bias ≈ 2τ/n = 2e-3


def _simulate(beta, n, rho, init, offset, include_init, runs, rng):
    """Sample variance of the window, by simulation in the convention of the docstring."""
    burn = 400
    e = rng.standard_normal((runs, burn + n + 1)) * math.sqrt(1 - rho**2)
    x = signal.lfilter([1], [1, -rho], e, axis=1)[:, burn - 200:]  # ≥ 200 steps of history
    start = 200 if include_init else 201  # index of the first window input
    window_x = x[:, start:start + n]
    fed = window_x[:, 1:] if include_init else window_x
    if init == "stationary":
        y0 = signal.lfilter([1 - beta], [1, -beta], x[:, :201], axis=1)[:, -1]
    elif init == "fixed":
        y0 = np.full(runs, offset)
    else:
        y0 = window_x.mean(axis=1)
    y, _ = signal.lfilter([1 - beta], [1, -beta], fed, axis=1, zi=(beta * y0)[:, None])
    window_y = np.concatenate([y0[:, None], y], axis=1) if include_init else y
    return window_y.var(axis=1), window_x.var(axis=1)


INITS = [("stationary", 0.0), ("fixed", 0.0), ("fixed", 2.0), ("sample_mean", 0.0)]


@pytest.mark.parametrize("rho", [0.0, 0.5])
@pytest.mark.parametrize("include_init", [False, True])
@pytest.mark.parametrize(("init", "offset"), INITS)
def test_output_sample_variance_matches_monte_carlo(rho, include_init, init, offset):
    beta, n, runs = 0.9, 60, 20_000
    rng = np.random.default_rng(zlib.crc32(repr((rho, include_init, init, offset)).encode()))
    s_y, s_x = _simulate(beta, n, rho, init, offset, include_init, runs, rng)
    theory = var.output_sample_variance(beta, n, init=init, init_offset=offset, rho=rho,
                                        include_init=include_init)
    # 4.5 standard errors of the Monte Carlo mean: a false failure has probability < 1e-5
    assert abs(s_y.mean() - theory) < 4.5 * s_y.std() / math.sqrt(runs)
    assert abs(s_x.mean() - var.input_sample_variance(n, rho)) < 4.5 * s_x.std() / math.sqrt(runs)


def test_start_at_a_far_fixed_value_adds_the_transient():
    # start far from the mean: the deterministic transient dominates the sample variance
    far = var.output_sample_variance(0.99, 1000, init="fixed", init_offset=400.0)
    assert var.sample_variance_ratio(0.99, 1000, init="fixed", init_offset=400.0) > 1.0
    assert far > 100 * var.output_sample_variance(0.99, 1000, init="fixed")


# --- seed 001, "Variance Reduction Theorem" --------------------------------------------------
def test_seed001_theorem_value_is_right():
    # seed: "theoretical std reduction = sqrt(199) ≈ 14.1x" (stationary, infinite window)
    assert round(var.std_reduction(0.99), 1) == 14.1
    assert var.std_reduction(0.99) == pytest.approx(math.sqrt(199))


def test_seed001_serial_correlation_explanation_has_the_wrong_sign():
    # seed: the empirical reduction exceeds theory "because the per-batch noise has small
    # positive serial correlation that EMA can exploit further". Positive ρ gives LESS reduction.
    for rho in (0.01, 0.05, 0.1):
        assert var.std_reduction(0.99, rho) < var.std_reduction(0.99)


def test_seed001_finite_window_prediction():
    # The seed's setup (n = 1000, start at the sample mean, initial state in the window):
    # the exact expectation-level prediction is 16.04×, not 14.1×.
    predicted = var.finite_window_std_reduction(0.99, 1000, init="sample_mean", include_init=True)
    assert round(predicted, 2) == 16.04


# --- argument checks -------------------------------------------------------------------------
def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="rho"):
        var.variance_ratio(0.9, rho=1.0)
    with pytest.raises(ValueError, match="init"):
        var.output_sample_variance(0.9, 10, init="mean")
    with pytest.raises(ValueError, match="init_offset"):
        var.output_sample_variance(0.9, 10, init="stationary", init_offset=1.0)
    with pytest.raises(ValueError, match="n must"):
        var.output_sample_variance(0.9, 1, init="fixed")
    with pytest.raises(ValueError, match="n must"):
        var.output_sample_variance(0.9, 9000, init="fixed")
    with pytest.raises(TypeError, match="unexpected"):
        var.output_sample_variance(0.9, 10, window=3)
    with pytest.raises(ValueError, match="ddof"):
        var.input_sample_variance(5, ddof=5)
    with pytest.raises(TypeError, match="lags"):
        var.output_autocovariance(0.9, [0.5])


@pytest.mark.parametrize(("init", "include_init", "rho"), [
    ("sample_mean", True, 0.0), ("sample_mean", False, 0.3), ("fixed", False, 0.0)])
def test_per_run_std_reduction_matches_monte_carlo_quantiles(init, include_init, rho):
    """Gaussian AR(1) input, 4000 windows: the per-run ratio's 5/50/95 % quantiles are the
    log-normal theory's within 3 % (Monte Carlo error of the quantiles ≈ 1 %)."""
    from scipy.signal import lfilter

    from gaba_control.theory.variance import per_run_std_reduction

    beta, n, runs = 0.95, 400, 4000
    rng = np.random.default_rng(7)
    # a stationary AR(1) of unit variance: x_0 ~ N(0, 1), innovations of variance 1 − ρ²
    e = rng.standard_normal((runs, n))
    e[:, 1:] *= math.sqrt(1 - rho**2)
    x = lfilter([1.0], [1.0, -rho], e, axis=1)
    y0 = x.mean(axis=1) if init == "sample_mean" else np.zeros(runs)
    fed = x[:, 1:] if include_init else x
    y = lfilter([1 - beta], [1.0, -beta], fed, axis=1, zi=(beta * y0)[:, None])[0]
    if include_init:
        y = np.concatenate([y0[:, None], y], axis=1)
    ratio = x.std(axis=1) / y.std(axis=1)
    theory = per_run_std_reduction(beta, n, init=init, rho=rho, include_init=include_init)
    np.testing.assert_allclose(np.percentile(ratio, [5, 50, 95]),
                               theory.quantile([0.05, 0.5, 0.95]), rtol=0.03)


def test_per_run_std_reduction_refuses_a_stationary_start_and_its_density_integrates():
    from gaba_control.theory.variance import per_run_std_reduction

    with pytest.raises(ValueError, match="init"):
        per_run_std_reduction(0.99, 100, init="stationary")
    r = per_run_std_reduction(0.9, 200)
    x = np.linspace(r.quantile(1e-6), r.quantile(1 - 1e-6), 20001)
    assert np.trapezoid(r.pdf(x), x) == pytest.approx(1.0, abs=1e-4)
