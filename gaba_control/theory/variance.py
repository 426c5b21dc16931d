r"""What the EMA does to noise: stationary and finite-window variance ratios.

The filter is ``y[n] = β y[n−1] + (1−β) x[n]`` (see :mod:`.iir`). The input is
a wide-sense stationary sequence with variance ``σ²`` and autocorrelation
``ρ^{|k|}`` (an AR(1) process; ``ρ = 0`` is i.i.d. noise). All results are
ratios to ``σ²``, so they hold for any input mean and scale, and they need only
second moments (no Gaussian assumption).

Two different questions have two different answers:

* the *stationary* ratio ``Var(y)/Var(x)`` (:func:`variance_ratio`), the
  textbook ``(1−β)/(1+β)`` for white noise;
* the ratio of the *expected sample variances* that an experiment of ``n``
  steps measures (:func:`sample_variance_ratio`). With ``n`` only a few time
  constants long, the sample variance of the strongly autocorrelated output
  is biased low (its mean is estimated from few effectively independent
  samples). The start matters too: a start at the mean gives the first
  outputs less spread than the stationary law (lower still), a start away
  from the mean adds a deterministic transient (higher, possibly by orders
  of magnitude).

See Also
--------
gaba_control.theory.iir : time constant, cutoff and the step response.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.linalg import toeplitz

from gaba_control._validation import check_beta, check_no_extra_kwargs
from gaba_control.theory._checks import check_correlation, check_nonnegative_int, check_real

__all__ = [
    "INIT_MODES",
    "PerRunStdReduction",
    "finite_window_std_reduction",
    "input_output_covariance",
    "input_sample_variance",
    "output_autocovariance",
    "output_sample_variance",
    "per_run_std_reduction",
    "sample_variance_ratio",
    "stationary_output_sample_variance",
    "std_reduction",
    "variance_ratio",
]

#: Accepted values of ``init`` in the finite-window functions.
INIT_MODES = ("stationary", "fixed", "sample_mean")

_MAX_WINDOW = 8000  # the exact computation builds n×n matrices
_MAX_STATIONARY = 1_000_000  # the O(n) stationary path


def variance_ratio(beta: float, rho: float = 0.0) -> float:
    r"""Stationary variance gain ``Var(y)/Var(x)`` of the EMA.

    Parameters
    ----------
    beta : float
        EMA coefficient in ``[0, 1)``.
    rho : float, optional
        Lag-one autocorrelation of an AR(1) input, in ``(−1, 1)``; 0 (default)
        for i.i.d. input.

    Returns
    -------
    float
        ``(1−β)(1+βρ) / ((1+β)(1−βρ))``; ``(1−β)/(1+β)`` for ``ρ = 0``.

    Notes
    -----
    In steady state ``y_t = (1−β) Σ_{i≥0} β^i x_{t−i}``, so with
    ``Cov(x_s, x_t) = σ² ρ^{|s−t|}``

    .. math:: \frac{Var(y)}{σ^2} = (1−β)^2 \sum_{i,j} β^{i+j} ρ^{|i−j|}
              = \frac{(1−β)^2}{1−β^2}\Bigl(1 + 2\sum_{k≥1}(βρ)^k\Bigr)
              = \frac{(1−β)(1+βρ)}{(1+β)(1−βρ)},

    grouping the double sum by ``k = |i − j|`` (each ``k ≥ 1`` occurs twice with
    weight ``Σ_i β^{2i+k} = β^k/(1−β^2)``). The ratio increases with ``ρ``:
    positively correlated noise is slow, so a low-pass filter removes *less*
    of it, and the std reduction :func:`std_reduction` falls.

    Examples
    --------
    >>> round(variance_ratio(0.99), 6)
    0.005025
    >>> variance_ratio(0.99, rho=0.1) > variance_ratio(0.99)  # correlation hurts
    True
    """
    beta = check_beta(beta)
    rho = check_correlation(rho)
    return (1.0 - beta) * (1.0 + beta * rho) / ((1.0 + beta) * (1.0 - beta * rho))


def std_reduction(beta: float, rho: float = 0.0) -> float:
    r"""Stationary std reduction ``std(x)/std(y) = 1/\sqrt{\text{variance\_ratio}}``.

    Notes
    -----
    For i.i.d. input this is ``\sqrt{(1+β)/(1−β)}``; it decreases with ``ρ``
    (see :func:`variance_ratio`).

    Examples
    --------
    >>> round(std_reduction(0.99), 4)  # sqrt(199)
    14.1067
    >>> round(std_reduction(0.99, rho=0.1), 4)
    12.7729
    """
    return 1.0 / math.sqrt(variance_ratio(beta, rho))


def input_output_covariance(beta: float, lags, rho: float = 0.0):
    r"""Stationary ``Cov(y_t, x_{t+k})/σ²`` for lags ``k ≥ 0`` (input ahead of output).

    Returns ``(1−β) ρ^k / (1−βρ)``.

    Notes
    -----
    ``Cov(y_t, x_{t+k}) = (1−β) Σ_i β^i Cov(x_{t−i}, x_{t+k})
    = (1−β) σ² ρ^k Σ_i (βρ)^i``. At ``k = 0`` this is the share of the current
    sample in the output; used for a stationary initial state that is
    correlated with the inputs that follow it.

    Examples
    --------
    >>> input_output_covariance(0.5, [0, 1])
    array([0.5, 0. ])
    """
    beta = check_beta(beta)
    rho = check_correlation(rho)
    k = _lags_array(lags)
    return (1.0 - beta) * rho**k / (1.0 - beta * rho)


def output_autocovariance(beta: float, lags, rho: float = 0.0):
    r"""Stationary autocovariance ``γ_y(k)/σ²`` of the EMA output, ``k ≥ 0``.

    Returns
    -------
    ndarray
        ``γ_y(k) = β^k V + (1−β)^2 ρ\, d_k / (1−βρ)`` with ``V`` the
        :func:`variance_ratio`, ``d_0 = 0`` and ``d_k = β d_{k−1} + ρ^{k−1}``
        (``= (β^k − ρ^k)/(β − ρ)`` for ``β ≠ ρ``, ``kβ^{k−1}`` for ``β = ρ``).
        For i.i.d. input ``γ_y(k) = β^k (1−β)/(1+β)``.

    Notes
    -----
    Stack the AR(1) input and the filter into the state ``s_t = (x_t, y_t)``:
    ``x_t = ρx_{t−1} + e_t``, ``y_t = βy_{t−1} + (1−β)ρx_{t−1} + (1−β)e_t``,
    i.e. ``s_t = F s_{t−1} + G e_t`` with ``F = [[ρ, 0], [(1−β)ρ, β]]``. Then
    ``Cov(s_{t+k}, s_t) = F^k P`` with ``P`` the stationary covariance, and
    ``F^k = [[ρ^k, 0], [(1−β)ρ d_k, β^k]]`` (multiply out ``F·F^{k−1}``).
    The ``y``-row gives ``γ_y(k) = (1−β)ρ d_k P_{xy} + β^k P_{yy}`` with
    ``P_{yy} = V`` and ``P_{xy} = (1−β)/(1−βρ)`` (:func:`input_output_covariance`).

    Examples
    --------
    >>> output_autocovariance(0.5, [0, 1, 2]).round(6)
    array([0.333333, 0.166667, 0.083333])
    """
    beta = check_beta(beta)
    rho = check_correlation(rho)
    k = _lags_array(lags)
    v = variance_ratio(beta, rho)
    d = _cross_power_sums(beta, rho, int(k.max()) if k.size else 0)
    return beta**k * v + (1.0 - beta) ** 2 * rho * d[k.astype(int)] / (1.0 - beta * rho)


def input_sample_variance(n: int, rho: float = 0.0, ddof: int = 0) -> float:
    r"""Expected sample variance ``E[s_x^2]/σ^2`` of ``n`` stationary input samples.

    Parameters
    ----------
    n : int
        Window length, ``≥ 2``.
    rho : float, optional
        AR(1) coefficient of the input (0: i.i.d.).
    ddof : int, optional
        ``s^2 = Σ(x − \bar x)^2/(n − \text{ddof})``; 0 as in ``numpy.var``.

    Returns
    -------
    float
        ``n (1 − Var(\bar x)/σ^2) / (n − \text{ddof})``; ``(n−1)/(n−\text{ddof})``
        for i.i.d. input.

    Notes
    -----
    ``Σ(x_t − \bar x)^2 = Σ x_t^2 − n \bar x^2``, and for a zero-mean process
    (the mean cancels) ``E = nσ^2 − n Var(\bar x)`` with
    ``Var(\bar x) = (σ^2/n)(1 + 2Σ_{k=1}^{n−1}(1 − k/n)ρ^k)``.

    Examples
    --------
    >>> input_sample_variance(1000)
    0.999
    """
    n = _check_window(n)
    rho = check_correlation(rho)
    ddof = _check_ddof(ddof, n)
    k = np.arange(n)
    acov = rho ** k.astype(float)
    return _stationary_sample_variance(acov, ddof)


def stationary_output_sample_variance(beta: float, n: int, rho: float = 0.0,
                                      ddof: int = 0) -> float:
    r"""Expected sample variance ``E[s_y^2]/σ^2`` of ``n`` outputs of a stationary EMA.

    Same as :func:`output_sample_variance` with ``init="stationary"``, computed
    in ``O(n)`` from the autocovariance instead of from the full covariance.

    Notes
    -----
    For a stationary sequence with autocovariance ``γ(k)``,
    ``E[Σ(y_t − \bar y)^2] = n γ(0) − n Var(\bar y)`` and
    ``Var(\bar y) = (1/n)(γ(0) + 2Σ_{k=1}^{n−1}(1 − k/n)γ(k))``. For ``n`` not
    much larger than ``τ = 1/(1−β)``, ``Var(\bar y)`` is a sizeable part of
    ``γ(0)``: for white input and ``n ≫ τ``, ``Var(\bar y) ≈ σ^2/n`` (the
    mean of the output is the mean of the input) while ``γ(0) ≈ σ^2/(2τ)``, so
    the relative bias is about ``2τ/n``.

    Examples
    --------
    >>> v = stationary_output_sample_variance(0.99, 1000)
    >>> round(v / variance_ratio(0.99), 3)  # biased low by about 2τ/n = 0.2
    0.821
    """
    beta = check_beta(beta)
    n = _check_window(n, _MAX_STATIONARY)
    rho = check_correlation(rho)
    ddof = _check_ddof(ddof, n)
    acov = output_autocovariance(beta, np.arange(n), rho)
    return _stationary_sample_variance(acov, ddof)


def output_sample_variance(beta: float, n: int, *, init: str = "stationary",
                           init_offset: float = 0.0, rho: float = 0.0,
                           include_init: bool = False, ddof: int = 0, **kwargs) -> float:
    r"""Exact expected sample variance ``E[s_y^2]/σ^2`` of ``n`` EMA outputs.

    Parameters
    ----------
    beta : float
        EMA coefficient in ``[0, 1)``.
    n : int
        Number of output samples in the window, ``≥ 2``: at most 8000 for the
        exact ``n×n`` computation; a stationary start accepts up to
        ``10**6`` and switches to :func:`stationary_output_sample_variance`
        above 8000.
    init : {"stationary", "fixed", "sample_mean"}
        Initial state ``y_0``: drawn from the stationary law of the output
        (as if the filter had run forever, correlated with the inputs that
        follow when ``ρ ≠ 0``); a fixed value ``μ + init_offset·σ`` (the
        true mean for ``init_offset=0``; ``(1/K − μ)/σ`` for GABA's start at
        ``1/K``); or the sample mean of the ``n`` input samples.
    init_offset : float, optional
        ``(y_0 − μ)/σ`` for ``init="fixed"``; must be 0 otherwise.
    rho : float, optional
        AR(1) coefficient of the input (0: i.i.d.).
    include_init : bool, optional
        Window convention. ``False``: the window is ``y_1 … y_n`` driven by
        the ``n`` input samples ``x_1 … x_n`` (the controller). ``True``:
        the window is ``y_0 … y_{n−1}``, the initial state followed by
        ``n − 1`` updates driven by ``x_1 … x_{n−1}``, while the input window
        (for its statistics and the sample mean) is ``x_0 … x_{n−1}``: the
        ``ema_run(values, init)`` of the seeds, where ``values[0]`` is never fed.
    ddof : int, optional
        Divisor ``n − ddof``; 0 as in ``numpy.var``.

    Returns
    -------
    float

    Notes
    -----
    Write the window as ``Y = c\,y_0 + B X`` with ``X`` the ``n`` input samples,
    ``B_{kj} = (1−β)β^{k−j}`` for the samples that have been fed by output
    ``k`` and ``c_k = β^{m_k}`` with ``m_k`` the number of updates before
    output ``k``. With ``μ = 0``, ``σ = 1`` and ``Σ_X = [ρ^{|i−j|}]``:

    * fixed: ``E[Y] = c·\text{init\_offset}``, ``Cov(Y) = BΣ_XB^T``;
    * sample mean: ``Y = (B + c1^T/n)X``;
    * stationary: ``Cov(Y) = BΣ_XB^T + V cc^T + Bvc^T + cv^TB^T`` with
      ``V = `` :func:`variance_ratio` and ``v_j = Cov(y_0, X_j)`` from
      :func:`input_output_covariance` at the lag between ``X_j`` and the
      last input in ``y_0``.

    Then, with ``C = I − 11^T/n``,
    ``E[Σ_k (Y_k − \bar Y)^2] = \operatorname{tr}(C\,Cov(Y)) + E[Y]^T C E[Y]``,
    i.e. ``Σ_k Var(Y_k) − n Var(\bar Y)`` plus the spread of the means (the
    transient). Divide by ``n − ddof``.

    Examples
    --------
    The seeds' experiment (n = 1000, start at the input's sample mean, the
    initial state counted in the window):

    >>> v = output_sample_variance(0.99, 1000, init="sample_mean", include_init=True)
    >>> round(math.sqrt(input_sample_variance(1000) / v), 2)
    16.04
    """
    check_no_extra_kwargs(kwargs, "output_sample_variance")
    beta = check_beta(beta)
    n = _check_window(n, _MAX_STATIONARY if init == "stationary" else _MAX_WINDOW)
    rho = check_correlation(rho)
    ddof = _check_ddof(ddof, n)
    init_offset = check_real(init_offset, "init_offset", low=-math.inf, high=math.inf)
    if init not in INIT_MODES:
        raise ValueError(f"init must be one of {INIT_MODES}, got {init!r}")
    if init != "fixed" and init_offset != 0.0:
        raise ValueError("init_offset applies only to init='fixed'")
    if not isinstance(include_init, bool):
        raise TypeError(f"include_init must be a bool, got {type(include_init).__name__}")
    if n > _MAX_WINDOW:  # only reachable for a stationary start: the window is stationary
        return stationary_output_sample_variance(beta, n, rho, ddof)

    feed, c, lag = _window_maps(beta, n, include_init)
    sigma_x = toeplitz(rho ** np.arange(n, dtype=float))
    mean = np.zeros(n)
    if init == "sample_mean":
        feed = feed + np.outer(c, np.full(n, 1.0 / n))
    if init == "fixed":
        mean = c * init_offset
    trace, total = _quadratic_parts(feed, sigma_x)
    if init == "stationary":
        v0 = variance_ratio(beta, rho)
        cross = feed @ input_output_covariance(beta, lag, rho)  # Cov(Y, y0) through X
        trace += v0 * c @ c + 2.0 * c @ cross
        total += v0 * c.sum() ** 2 + 2.0 * c.sum() * cross.sum()
    spread = np.sum((mean - mean.mean()) ** 2)
    return float((trace - total / n + spread) / (n - ddof))


def sample_variance_ratio(beta: float, n: int, **kwargs) -> float:
    r"""``E[s_y^2]/E[s_x^2]`` over a window of ``n`` steps.

    Keyword arguments are those of :func:`output_sample_variance` (``init``,
    ``init_offset``, ``rho``, ``include_init``); ``ddof`` cancels.

    Notes
    -----
    The ratio of the two expectations from :func:`output_sample_variance` and
    :func:`input_sample_variance`. For ``n → ∞`` with a stationary start it
    tends to :func:`variance_ratio`. It is the ratio of means, not the mean of
    the ratio: the per-run ratio ``s_y^2/s_x^2`` scatters widely because
    ``s_y^2`` rests on only about ``n/(2τ)`` effectively independent samples.

    Examples
    --------
    >>> round(sample_variance_ratio(0.99, 1000) / variance_ratio(0.99), 3)
    0.822
    """
    rho = kwargs.get("rho", 0.0)
    out = output_sample_variance(beta, n, **kwargs)
    return out / input_sample_variance(n, rho=rho, ddof=kwargs.get("ddof", 0))


def finite_window_std_reduction(beta: float, n: int, **kwargs) -> float:
    r"""Predicted ``std(x)/std(y)`` over ``n`` steps: ``1/√`` :func:`sample_variance_ratio`.

    Notes
    -----
    ``\sqrt{E[s_x^2]/E[s_y^2]}``: to first order in the fluctuations of the
    sample variances this is also the typical value of the per-run ratio of
    sample standard deviations (Monte Carlo runs scatter around it; their
    mean is a few percent higher by Jensen's inequality).

    Examples
    --------
    >>> round(finite_window_std_reduction(0.99, 1000), 2)  # stationary start
    15.56
    >>> round(finite_window_std_reduction(0.99, 100_000), 2)  # → sqrt(199) = 14.11
    14.12
    """
    return 1.0 / math.sqrt(sample_variance_ratio(beta, n, **kwargs))


@dataclass(frozen=True)
class PerRunStdReduction:
    """The distribution of one run's ``std(x)/std(y)``: log-normal with ``median`` and
    ``log_sd`` (see :func:`per_run_std_reduction`)."""

    median: float
    log_sd: float

    def quantile(self, q):
        """The ``q`` quantile(s), ``0 < q < 1``."""
        from scipy.stats import norm

        return self.median * np.exp(self.log_sd * norm.ppf(np.asarray(q, dtype=float)))

    def pdf(self, x):
        """The density at ``x > 0``."""
        x = np.asarray(x, dtype=float)
        z = np.log(x / self.median) / self.log_sd
        return np.exp(-0.5 * z * z) / (x * self.log_sd * math.sqrt(2.0 * math.pi))


def per_run_std_reduction(beta: float, n: int, *, init: str = "sample_mean", rho: float = 0.0,
                          include_init: bool = False, **kwargs) -> PerRunStdReduction:
    r"""The per-run ratio ``s_x/s_y`` of one window, not the ratio of expectations.

    :func:`finite_window_std_reduction` predicts ``√(E s_x²/E s_y²)``, which a
    histogram of per-run ratios does not centre on. For Gaussian input both
    sample variances are quadratic forms, ``n s_x² = XᵀCX`` and
    ``n s_y² = XᵀMX`` with ``M = FᵀCF`` (``F`` the window map of
    :func:`output_sample_variance`, ``C = I − 11ᵀ/n``), whose means, variances
    and covariance are exact: ``E XᵀAX = tr(AΣ)``,
    ``Cov(XᵀAX, XᵀBX) = 2 tr(AΣBΣ)``. To second order in their fluctuations
    (the delta method on the logarithms), ``log(s_x/s_y)`` is normal with

    .. math:: m = \tfrac12\big[\log\tfrac{μ_x}{μ_y} − \tfrac{V_x}{2μ_x^2}
              + \tfrac{V_y}{2μ_y^2}\big],\quad
              s^2 = \tfrac14\big[\tfrac{V_x}{μ_x^2} + \tfrac{V_y}{μ_y^2}
              − \tfrac{2C_{xy}}{μ_xμ_y}\big],

    so the ratio is log-normal with median ``e^m`` (above the pooled ratio:
    ``s_y²`` scatters more than ``s_x²``) and log-sd ``s``.

    Parameters
    ----------
    beta, n, rho, include_init
        As :func:`output_sample_variance` (``n`` up to 8000).
    init : {"fixed", "sample_mean"}
        The start (``"fixed"`` at the true mean); a stationary start is not
        a quadratic form in the window's inputs alone.

    Examples
    --------
    The seeds' experiment: the median of the per-run ratios, not the pooled 16.04.

    >>> r = per_run_std_reduction(0.99, 1000, init="sample_mean", include_init=True)
    >>> round(r.median, 2), round(r.log_sd, 3)
    (16.78, 0.212)
    """
    check_no_extra_kwargs(kwargs, "per_run_std_reduction")
    beta = check_beta(beta)
    n = _check_window(n, _MAX_WINDOW)
    rho = check_correlation(rho)
    if init not in ("fixed", "sample_mean"):
        raise ValueError(f"init must be 'fixed' or 'sample_mean', got {init!r}")
    if not isinstance(include_init, bool):
        raise TypeError(f"include_init must be a bool, got {type(include_init).__name__}")
    feed, c, _ = _window_maps(beta, n, include_init)
    if init == "sample_mean":
        feed = feed + np.outer(c, np.full(n, 1.0 / n))
    sigma = toeplitz(rho ** np.arange(n, dtype=float))
    centre = np.eye(n) - 1.0 / n
    m = feed.T @ centre @ feed
    cs, ms = centre @ sigma, m @ sigma
    mu_x, mu_y = np.trace(cs), np.trace(ms)
    v_x, v_y = 2.0 * np.sum(cs * cs.T), 2.0 * np.sum(ms * ms.T)
    c_xy = 2.0 * np.sum(cs * ms.T)
    mean = 0.5 * (math.log(mu_x / mu_y) - v_x / (2 * mu_x**2) + v_y / (2 * mu_y**2))
    var = 0.25 * (v_x / mu_x**2 + v_y / mu_y**2 - 2.0 * c_xy / (mu_x * mu_y))
    return PerRunStdReduction(math.exp(mean), math.sqrt(max(var, 0.0)))


def _window_maps(beta: float, n: int, include_init: bool):
    """``B``, ``c`` and the lags of ``X_j`` behind ``y_0``'s last input (see the docstring)."""
    k = np.arange(n)
    age = k[:, None] - k[None, :]
    fed = age >= 0
    if include_init:
        fed &= k[None, :] >= 1  # x_0 is recorded but never fed
        c = beta ** k.astype(float)
        lag = k
    else:
        c = beta ** (k + 1.0)
        lag = k + 1
    feed = np.where(fed, (1.0 - beta) * beta ** np.where(fed, age, 0).astype(float), 0.0)
    return feed, c, lag


def _quadratic_parts(feed: np.ndarray, sigma_x: np.ndarray):
    """``tr(BΣBᵀ)`` and ``1ᵀBΣBᵀ1`` without forming ``BΣBᵀ``."""
    weighted = feed @ sigma_x
    trace = float(np.sum(weighted * feed))
    column = feed.sum(axis=0)
    return trace, float(column @ sigma_x @ column)


def _stationary_sample_variance(acov: np.ndarray, ddof: int) -> float:
    n = acov.size
    k = np.arange(1, n)
    var_mean = (acov[0] + 2.0 * np.sum((1.0 - k / n) * acov[1:])) / n
    return float(n * (acov[0] - var_mean) / (n - ddof))


def _cross_power_sums(beta: float, rho: float, max_lag: int) -> np.ndarray:
    """``d_k = Σ_{i<k} β^{k−1−i} ρ^i`` for ``k = 0 … max_lag`` (stable for β = ρ)."""
    d = np.zeros(max_lag + 1)
    for k in range(1, max_lag + 1):
        d[k] = beta * d[k - 1] + rho ** (k - 1)
    return d


def _lags_array(lags) -> np.ndarray:
    k = np.asarray(lags)
    if k.dtype == bool or not np.issubdtype(k.dtype, np.integer):
        raise TypeError("lags must be integers >= 0")
    if np.any(k < 0):
        raise ValueError("lags must be >= 0")
    return k.astype(float)


def _check_window(n, limit: int = _MAX_STATIONARY) -> int:
    n = check_nonnegative_int(n, "n")
    if not 2 <= n <= limit:
        raise ValueError(f"n must lie in [2, {limit}] for this computation, got {n}")
    return n


def _check_ddof(ddof, n: int) -> int:
    ddof = check_nonnegative_int(ddof, "ddof")
    if ddof >= n:
        raise ValueError(f"ddof must be < n = {n}, got {ddof}")
    return ddof
