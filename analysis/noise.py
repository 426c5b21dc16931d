"""Noise study: what the EMA does to measurement noise, in theory, in Monte Carlo and on real runs.

Four experiments, each against the closed forms of
:mod:`gaba_control.theory.variance` and :mod:`gaba_control.theory.iir`:

* stationary variance ratio for AR(1) input over several ``ρ`` (``ρ = 0`` is
  the seeds' i.i.d. theorem), and over a ladder of ``β``;
* finite windows of ``n`` steps with three initialisations (stationary, at
  the true mean, at the sample mean with the seeds' window convention);
* the seeds' own 19.4× experiment, from :mod:`analysis.variance_gap`;
* Welch power spectra of the raw and smoothed weights against ``|H|²``, on
  synthetic gradients run through the numpy controller and on the
  post-warmup segment of a real trace when one is given.

Every Monte Carlo runs a batch of independent runs at once through
:func:`gaba_control.lti.iir.ema_filter` (``scipy.signal.lfilter``) or
:meth:`gaba_control.controller.GABAController.run`, and reports a 95 %
confidence interval over the runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import scipy.signal as signal
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter
from scipy.stats import norm

from gaba_control._validation import check_beta, check_no_extra_kwargs, check_positive_int
from gaba_control.controller import GABAController
from gaba_control.lti.iir import ema_filter
from gaba_control.theory import iir as iir_theory
from gaba_control.theory import variance as theory

from ._common import Claim, Finding, Study, new_figure, results_dir, save_figure
from .variance_gap import VarianceGapResponse, pooled_std_ratio, variance_gap_response

__all__ = [
    "FiniteWindowResponse",
    "NoiseResponse",
    "PsdResponse",
    "StationaryNoiseResponse",
    "TraceNoise",
    "ar1_noise",
    "familywise_z",
    "finite_window_response",
    "noise_response",
    "psd_response",
    "run",
    "stationary_noise_response",
    "trace_noise",
]

BETA = 0.99
RHOS = (-0.5, 0.0, 0.3, 0.6, 0.9)
BETA_LADDER = (0.9, 0.99, 0.999)
WINDOWS = (100, 300, 1000)
#: (init, include_init) of :func:`gaba_control.theory.variance.output_sample_variance`.
INIT_MODES = (("stationary", False), ("fixed", False), ("sample_mean", True))
INIT_LABELS = {
    ("stationary", False): "stationary start",
    ("fixed", False): "start at the true mean",
    ("sample_mean", True): "start at the sample mean, y₀ in window (seeds)",
}
Z95 = 1.96
#: Family-wise confidence of a claim that compares theory with several Monte Carlo estimates.
CLAIM_LEVEL = 0.99
#: Synthetic gradient norms: medians, log-scale std and AR(1) coefficient of the log-noise.
SYNTH_MEDIANS = (1.0, 0.004)
SYNTH_LOG_STD = (0.2, 0.5)
SYNTH_RHO = 0.5
#: Welch check: median of Pyy / (Pxx |H|²) within this of 1.
PSD_MEDIAN_TOL = 0.02
#: Fewest settled steps for a Welch estimate on a real trace.
MIN_WELCH_STEPS = 256
#: Real traces: τ skipped after the gate opens, and τ needed after that to measure a std ratio.
SETTLE_TAUS, MEASURE_TAUS = 3, 10

# The seeds' statements under test.
CLAIMED_THEOREM = 14.1  # seed 001: sqrt((1+β)/(1−β)) at β = 0.99, one decimal
CLAIMED_EMPIRICAL = 19.4  # seed 001: empirical reduction on its synthetic data
CLAIMED_DECADE_GAIN = 3.2  # seed 001: "every 10× on (1+β)/(1−β) buys √10 ≈ 3.2×"
CLAIMED_FD002 = {"mean": 0.002, "std": 0.001, "cv": 0.5}  # seed 001: "of order", 50 % CV
ORDER_FACTOR = math.sqrt(10.0)  # our reading of "of order": within half a decade
CV_FACTOR = 2.0  # a CV within a factor 2 of the claimed one


def _seeded(seed: int, stream: int) -> np.random.Generator:
    """An independent generator per experiment, so each is deterministic on its own."""
    return np.random.default_rng([seed, stream])


def ar1_noise(rng: np.random.Generator, rho: float, shape: tuple[int, ...]) -> np.ndarray:
    """Stationary zero-mean unit-variance AR(1) noise along the last axis.

    ``x_t = ρ x_{t−1} + √(1−ρ²) e_t`` with ``x_{−1} ~ N(0, 1)``, so every
    sample has variance 1 and lag-k correlation ``ρ^k`` from the first on.
    """
    e = rng.standard_normal(shape)
    x_prev = rng.standard_normal((*shape[:-1], 1))
    return signal.lfilter([math.sqrt(1.0 - rho**2)], [1.0, -rho], e, axis=-1, zi=rho * x_prev)[0]


def _interval(ratio: float, se: float) -> tuple[float, float]:
    return ratio - Z95 * se, ratio + Z95 * se


def familywise_z(comparisons: int, level: float = CLAIM_LEVEL) -> float:
    """Two-sided normal quantile for ``comparisons`` tests at family-wise ``level`` (Bonferroni).

    A claim checked against several Monte Carlo estimates must not fail
    by chance more often than ``1 − level`` in total.

    Examples
    --------
    >>> round(familywise_z(1, 0.95), 2)
    1.96
    """
    return float(norm.ppf(1.0 - (1.0 - level) / (2.0 * comparisons)))


def _tolerance_text(comparisons: int) -> str:
    return (f"theory inside the MC {100 * CLAIM_LEVEL:g}% CI (family-wise over {comparisons}, "
            f"z = {familywise_z(comparisons):.2f})")


# --------------------------------------------------------------------------
# Stationary variance ratio: AR(1) sweep and β ladder
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class StationaryNoiseResponse:
    """Stationary std reduction ``std(x)/std(y)``: Monte Carlo vs :func:`theory.std_reduction`.

    Runs start the EMA at the input mean and discard a burn-in of ``5τ``;
    the second moments about the known mean 0 are unbiased estimates of the
    stationary variances.
    """

    beta: float
    rhos: np.ndarray
    runs: int
    n: int
    reduction: np.ndarray  # MC std reduction per ρ
    reduction_se: np.ndarray
    theory: np.ndarray
    ladder_betas: np.ndarray
    ladder_reduction: np.ndarray
    ladder_se: np.ndarray
    ladder_theory: np.ndarray

    def within_ci(self, z: float | None = None) -> np.ndarray:
        """Whether theory lies in each ρ's interval (family-wise over all ρ by default)."""
        z = familywise_z(self.rhos.size) if z is None else z
        return np.abs(self.reduction - self.theory) <= z * self.reduction_se

    def plot(self, ax=None):
        """Std reduction against ρ: theory curve, Monte Carlo with 95 % intervals."""
        if ax is None:
            _, ax = new_figure()
        grid = np.linspace(-0.9, 0.95, 200)
        ax.plot(grid, [theory.std_reduction(self.beta, r) for r in grid], label="theory (AR(1))")
        ax.errorbar(self.rhos, self.reduction, yerr=Z95 * self.reduction_se, fmt="o", ms=4,
                    capsize=3, color="k", label=f"Monte Carlo, {self.runs} runs × {self.n} steps")
        ax.axhline(theory.std_reduction(self.beta), color="C3", ls="--", lw=0.8,
                   label=f"i.i.d. theorem √((1+β)/(1−β)) = {theory.std_reduction(self.beta):.2f}")
        ax.set_yscale("log")  # the reduction spans more than a decade over ρ
        ax.set_xlabel("lag-1 correlation ρ of the input")
        ax.set_ylabel("std(x) / std(EMA)")
        ax.set_title(f"Stationary std reduction, β = {self.beta:g}")
        ax.legend(fontsize=7)
        return ax


def _stationary_moments(rng, beta: float, rho: float, runs: int, n: int):
    """Per-run mean squares of the input and of the stationary EMA output."""
    burn = math.ceil(5 * iir_theory.time_constant(beta))
    x = ar1_noise(rng, rho, (runs, burn + n))
    y = ema_filter(x, beta, initial=0.0)[:, burn:]
    return np.mean(x[:, burn:] ** 2, axis=-1), np.mean(y**2, axis=-1)


def stationary_noise_response(beta: float = BETA, rhos=RHOS, *, runs: int = 400, n: int = 4000,
                              ladder=BETA_LADDER, seed: int = 0,
                              **kwargs) -> StationaryNoiseResponse:
    """Monte Carlo of the stationary std reduction for AR(1) input and a ladder of β.

    Examples
    --------
    >>> r = stationary_noise_response(0.9, [0.0], runs=50, n=2000, ladder=[0.5])
    >>> bool(r.within_ci().all()), round(float(r.theory[0]), 4)
    (True, 4.3589)
    """
    check_no_extra_kwargs(kwargs, "stationary_noise_response")
    beta = check_beta(beta)
    runs, n = check_positive_int(runs, "runs"), check_positive_int(n, "n")
    rhos = np.asarray(rhos, dtype=float)
    rng = _seeded(seed, 1)
    est = [pooled_std_ratio(*_stationary_moments(rng, beta, float(r), runs, n)) for r in rhos]
    ladder = np.asarray([check_beta(b) for b in ladder], dtype=float)
    lad = []
    for b in ladder:
        n_b = max(n, math.ceil(40 * iir_theory.time_constant(b)))  # ≥ 40τ per run
        lad.append(pooled_std_ratio(*_stationary_moments(rng, b, 0.0, max(runs // 4, 20), n_b)))
    return StationaryNoiseResponse(
        beta=beta, rhos=rhos, runs=runs, n=n,
        reduction=np.array([e[0] for e in est]), reduction_se=np.array([e[1] for e in est]),
        theory=np.array([theory.std_reduction(beta, float(r)) for r in rhos]),
        ladder_betas=ladder,
        ladder_reduction=np.array([e[0] for e in lad]), ladder_se=np.array([e[1] for e in lad]),
        ladder_theory=np.array([theory.std_reduction(b) for b in ladder]),
    )


# --------------------------------------------------------------------------
# Finite windows
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class FiniteWindowResponse:
    """Sample-variance std reduction over ``n`` steps for several starts, MC vs exact theory.

    ``reduction[m, j]`` is ``√(mean s_x² / mean s_y²)`` over the runs for mode
    ``modes[m]`` and window ``windows[j]`` (i.i.d. unit-variance input).
    """

    beta: float
    windows: np.ndarray
    modes: tuple
    runs: int
    reduction: np.ndarray
    reduction_se: np.ndarray
    theory: np.ndarray
    grid: np.ndarray
    theory_grid: np.ndarray

    def within_ci(self, z: float | None = None) -> np.ndarray:
        """Whether theory lies in each interval (family-wise over all cells by default)."""
        z = familywise_z(self.theory.size) if z is None else z
        return np.abs(self.reduction - self.theory) <= z * self.reduction_se

    def table(self) -> str:
        head = "| start | " + " | ".join(f"n = {n}" for n in self.windows) + " |"
        rows = [head, "| --- |" + " --- |" * len(self.windows)]
        for m, mode in enumerate(self.modes):
            cells = [f"theory {self.theory[m, j]:.2f}, MC {self.reduction[m, j]:.2f} ± "
                     f"{Z95 * self.reduction_se[m, j]:.2f}" for j in range(len(self.windows))]
            rows.append(f"| {INIT_LABELS[mode]} | " + " | ".join(cells) + " |")
        rows.append(f"| stationary theorem (n → ∞) | {theory.std_reduction(self.beta):.2f} |"
                    + " |" * (len(self.windows) - 1))
        return "\n".join(rows)

    def plot(self, ax=None):
        """Std reduction against the window length for each start, theory lines and MC points."""
        if ax is None:
            _, ax = new_figure()
        for m, mode in enumerate(self.modes):
            (line,) = ax.plot(self.grid, self.theory_grid[m], label=f"theory: {INIT_LABELS[mode]}")
            ax.errorbar(self.windows, self.reduction[m], yerr=Z95 * self.reduction_se[m], fmt="o",
                        ms=4, capsize=3, color=line.get_color())
        ax.axhline(theory.std_reduction(self.beta), color="C3", ls="--", lw=0.8,
                   label="stationary theorem (n → ∞)")
        ax.axvline(iir_theory.time_constant(self.beta), color="k", lw=0.6, ls=":", label="n = τ")
        ax.set_xscale("log")
        ax.set_xlabel("window n [steps]")
        ax.set_ylabel(r"$\sqrt{E\,s_x^2\,/\,E\,s_y^2}$")
        ax.set_title(f"Finite windows, i.i.d. input, β = {self.beta:g} (points: MC ± 95 %)")
        ax.legend(fontsize=6.5)
        return ax


def _window_variances(rng, beta: float, n: int, mode: tuple, runs: int):
    """Per-run sample variances of the input window and of the EMA window."""
    init, include_init = mode
    if include_init != (init == "sample_mean"):
        raise ValueError(f"mode {mode} is not simulated; use one of {INIT_MODES}")
    burn = math.ceil(5 * iir_theory.time_constant(beta)) if init == "stationary" else 0
    x_all = rng.standard_normal((runs, burn + n))
    x = x_all[:, burn:]
    if init == "sample_mean":  # the seeds' ema_run: y_0 = mean(x), x_0 recorded but never fed
        y0 = x.mean(axis=-1)
        y = np.concatenate([y0[:, None], ema_filter(x[:, 1:], beta, initial=y0)], -1)
    else:
        y = ema_filter(x_all, beta, initial=0.0)[:, burn:]
    return x.var(axis=-1), y.var(axis=-1)


def finite_window_response(beta: float = BETA, windows=WINDOWS, *, modes=INIT_MODES,
                           runs: int = 2000, seed: int = 0, **kwargs) -> FiniteWindowResponse:
    """Monte Carlo of the finite-window std reduction vs the exact expectation.

    Examples
    --------
    >>> r = finite_window_response(0.9, [50], runs=400)
    >>> bool(r.within_ci().all())
    True
    """
    check_no_extra_kwargs(kwargs, "finite_window_response")
    beta = check_beta(beta)
    runs = check_positive_int(runs, "runs")
    windows = np.asarray([check_positive_int(int(n), "windows") for n in windows])
    rng = _seeded(seed, 2)
    est = np.array([[pooled_std_ratio(*_window_variances(rng, beta, int(n), mode, runs))
                     for n in windows] for mode in modes])
    grid = np.unique(np.geomspace(10, windows.max(), 14).astype(int))

    def predict(n, mode):
        return theory.finite_window_std_reduction(beta, int(n), init=mode[0],
                                                  include_init=mode[1])

    return FiniteWindowResponse(
        beta=beta, windows=windows, modes=tuple(modes), runs=runs,
        reduction=est[..., 0], reduction_se=est[..., 1],
        theory=np.array([[predict(n, mode) for n in windows] for mode in modes]),
        grid=grid, theory_grid=np.array([[predict(n, mode) for n in grid] for mode in modes]),
    )


# --------------------------------------------------------------------------
# Welch power spectra
# --------------------------------------------------------------------------


def _welch(x: np.ndarray, nperseg: int):
    """One-sided Welch PSD along the last axis, averaged over leading axes; ω in rad/sample."""
    f, p = signal.welch(x, fs=1.0, nperseg=nperseg, axis=-1)
    p = p.reshape(-1, p.shape[-1]).mean(axis=0)
    return 2 * np.pi * f[1:], p[1:]  # drop DC (the mean)


def _nperseg(beta: float, available: int) -> int:
    """A power of two ≳ 10τ (what resolves the corner), limited by the data."""
    wanted = 2 ** math.ceil(math.log2(10 * iir_theory.time_constant(beta)))
    limit = 2 ** math.floor(math.log2(max(available // 2, 8)))
    return min(wanted, limit)


@dataclass(frozen=True)
class PsdResponse:
    """Welch PSDs of the raw weight ``x`` and the EMA ``y`` of one task against ``|H|²``."""

    label: str
    beta: float
    nperseg: int
    samples: int  # steps per run used
    omega: np.ndarray  # rad/sample, DC dropped
    pxx: np.ndarray
    pyy: np.ndarray

    @property
    def gain2(self) -> np.ndarray:
        return iir_theory.magnitude_response(self.beta, self.omega) ** 2

    @property
    def normalised(self) -> np.ndarray:
        """``Pyy / (Pxx |H|²)``; 1 where the filter law holds."""
        return self.pyy / (self.pxx * self.gain2)

    def stats(self) -> dict:
        r = self.normalised
        q5, q50, q95 = np.percentile(r, [5, 50, 95])
        return {"median": float(q50), "q5": float(q5), "q95": float(q95), "bins": r.size}


def psd_response(beta: float = BETA, *, runs: int = 16, n: int = 32768, seed: int = 0,
                 **kwargs) -> PsdResponse:
    """Welch PSD of raw and EMA weights from the numpy controller on synthetic gradients.

    The gradient norms are log-normal around :data:`SYNTH_MEDIANS` with
    AR(1) log-noise (ρ = :data:`SYNTH_RHO`), so the raw weight is coloured,
    not white; the filter law ``Pyy = |H|² Pxx`` must hold regardless. The
    controller runs with ``warmup = 0``; the first ``5τ`` steps are dropped.

    Examples
    --------
    >>> r = psd_response(0.9, runs=2, n=4096)
    >>> abs(r.stats()["median"] - 1) < 0.05
    True
    """
    check_no_extra_kwargs(kwargs, "psd_response")
    beta = check_beta(beta)
    runs, n = check_positive_int(runs, "runs"), check_positive_int(n, "n")
    rng = _seeded(seed, 3)
    burn = math.ceil(5 * iir_theory.time_constant(beta))
    log_noise = np.stack([s * ar1_noise(rng, SYNTH_RHO, (runs, burn + n)) for s in SYNTH_LOG_STD],
                         axis=-1)
    g = np.asarray(SYNTH_MEDIANS) * np.exp(log_noise)
    tr = GABAController(2, beta=beta, warmup=0, lambda_min=0.0).run(g)
    x, y = tr.raw[:, burn:, 0], tr.ema[:, burn:, 0]
    nperseg = _nperseg(beta, n)
    omega, pxx = _welch(x, nperseg)
    _, pyy = _welch(y, nperseg)
    return PsdResponse("synthetic gradients (numpy controller)", beta, nperseg, n, omega, pxx, pyy)


# --------------------------------------------------------------------------
# Real trace
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class TraceNoise:
    """Noise statistics of a real trace's raw and EMA weights after the warmup."""

    label: str
    subset: str | None
    task: int
    task_name: str
    segment: tuple[int, int]  # [start, stop) indices of the longest active & valid run
    raw_mean: float
    raw_std: float
    raw_lag1: float
    std_reduction: float  # std(raw)/std(EMA − start transient), after SETTLE_TAUS·τ
    settled_steps: int
    psd: PsdResponse | None

    @property
    def cv(self) -> float:
        return self.raw_std / self.raw_mean


def _ar1_reduction(beta: float, rho: float) -> float:
    """Stationary std reduction for an AR(1) input with lag-1 correlation ``rho`` (clipped)."""
    return theory.std_reduction(beta, float(np.clip(rho, -0.99, 0.99)))


def _longest_true_run(mask: np.ndarray) -> tuple[int, int]:
    """``[start, stop)`` of the longest run of True (``(0, 0)`` if none)."""
    padded = np.concatenate([[False], mask, [False]]).astype(int)
    edges = np.flatnonzero(np.diff(padded))
    if edges.size == 0:
        return 0, 0
    starts, stops = edges[::2], edges[1::2]
    i = int(np.argmax(stops - starts))
    return int(starts[i]), int(stops[i])


def _lag1(x: np.ndarray) -> float:
    if x.size <= 2:
        return math.nan
    d = x - x.mean()
    return float(np.sum(d[1:] * d[:-1]) / np.sum(d * d))


def trace_noise(trace) -> TraceNoise:
    """Post-warmup noise of the RUL task's raw weight (task 0 if unnamed) on a real trace.

    Uses the longest run of active, valid steps. The EMA's decay from its state
    at the start of the run towards the run's mean raw weight (a closed-form
    step response) is subtracted before the first ``SETTLE_TAUS·τ`` steps are
    dropped, so the std ratio and the spectra see the filtered noise only.
    """
    beta = float(trace.controller["beta"])
    names = tuple(trace.task_names)
    task = names.index("rul") if "rul" in names else 0
    start, stop = _longest_true_run(np.asarray(trace.active, bool) & np.asarray(trace.valid, bool))
    x = np.asarray(trace.raw[start:stop, task], float)
    y = np.asarray(trace.ema[start:stop, task], float)
    tau = iir_theory.time_constant(beta)
    skip = math.ceil(SETTLE_TAUS * tau)
    if x.size:
        # The EMA enters the segment at y_prev (1/K after the warmup), far from the raw weight's
        # mean: its geometric decay would dominate the EMA's variance for many τ. Subtract it.
        k = trace.raw.shape[-1]
        y_prev = float(trace.ema[start - 1, task]) if start > 0 else 1.0 / k
        decay = iir_theory.step_response(beta, np.arange(1, x.size + 1), y0=y_prev,
                                         amplitude=float(x.mean())) - float(x.mean())
        y = y - decay
    xs, ys = x[skip:], y[skip:]
    long_enough = xs.size >= MEASURE_TAUS * tau
    psd = None
    if xs.size >= MIN_WELCH_STEPS:  # after the start transient, whose leakage would swamp Pyy
        nperseg = _nperseg(beta, xs.size)
        omega, pxx = _welch(xs, nperseg)
        _, pyy = _welch(ys, nperseg)
        psd = PsdResponse(f"{trace.subset or 'real'} trace, {xs.size} settled post-warmup steps",
                          beta, nperseg,
                          xs.size, omega, pxx, pyy)
    return TraceNoise(
        label=f"{trace.subset or 'C-MAPSS'} {trace.method} (seed {trace.seed})",
        subset=trace.subset, task=task, task_name=names[task] if names else f"task {task}",
        segment=(start, stop),
        raw_mean=float(x.mean()) if x.size else math.nan,
        raw_std=float(x.std()) if x.size else math.nan,
        raw_lag1=_lag1(x),
        std_reduction=float(xs.std() / ys.std()) if long_enough and ys.std() > 0 else math.nan,
        settled_steps=int(max(xs.size, 0)),
        psd=psd,
    )


# --------------------------------------------------------------------------
# Everything together
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class NoiseResponse:
    """All noise experiments at one β, with the seeds' claims decided from them."""

    beta: float
    stationary: StationaryNoiseResponse
    windows: FiniteWindowResponse
    gap: VarianceGapResponse
    psd: PsdResponse
    real: TraceNoise | None
    fd002: TraceNoise | None = None  # a committed FD002 trace, for the claims about FD002

    def plot(self, fig=None):
        """Three panels: AR(1) sweep, finite windows, the seeds' experiment (histogram)."""
        if fig is None:
            fig, axes = new_figure(3, 1, height=9.6)
        else:
            axes = fig.subplots(3, 1)
        self.stationary.plot(axes[0])
        self.windows.plot(axes[1])
        self.gap.plot(axes[2])
        axes[2].set_title(f"Seeds' experiment (variance_gap): n = {self.gap.n}, sample-mean start")
        return fig

    def plot_psd(self, fig=None, *, extra=()):
        """PSDs of raw and EMA weights (top) and ``Pyy/(Pxx|H|²)`` around 1 (bottom).

        ``extra`` are further :class:`TraceNoise` (e.g. a longer committed trace, whose
        first Welch bin lies below ω_c and so tests the passband)."""
        if fig is None:
            fig, axes = new_figure(2, 1, height=6.4, sharex=True)
        else:
            axes = fig.subplots(2, 1, sharex=True)
        reals = [r for r in ((self.real,) if self.real else ()) + tuple(extra) if r.psd]
        sources = [(self.psd, "-", "C0", "C1")] + [
            (r.psd, style, "C0", "C1") for r, style in zip(reals, ("--", "-.", ":"), strict=False)]
        for k, (psd, style, cx, cy) in enumerate(sources):
            axes[0].loglog(psd.omega, psd.pxx / (2 * np.pi), style, color=cx, lw=1.0,
                           label=f"raw λ, {psd.label}")
            axes[0].loglog(psd.omega, psd.pyy / (2 * np.pi), style, color=cy, lw=1.0,
                           label=f"EMA λ̂, {psd.label}")
            axes[0].loglog(psd.omega, psd.pxx * psd.gain2 / (2 * np.pi), ":", color="k", lw=0.8)
            axes[1].semilogx(psd.omega, psd.normalised, style, color=f"C{2 + k}", lw=1.0,
                             label=f"{psd.label} (nperseg {psd.nperseg}, first bin "
                             f"{psd.omega[0]:.4f})")
        axes[0].plot([], [], ":", color="k", lw=0.8, label="Pxx·|H|² (theory)")
        axes[1].axhline(1.0, color="k", lw=0.9, label="filter law Pyy = |H|²·Pxx")
        axes[1].set_yscale("log")
        axes[1].set_ylim(0.2, 5)
        axes[1].yaxis.set_major_locator(FixedLocator([0.25, 0.5, 1, 2, 4]))
        axes[1].yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        axes[1].yaxis.set_minor_formatter(NullFormatter())
        wc = iir_theory.cutoff_frequency(self.beta)
        low = min(p.omega[0] for p, *_ in sources) / 1.5
        for ax in axes:
            ax.set_xlim(low, 1.3 * np.pi)
            ax.axvspan(low, wc, color="tab:blue", alpha=0.06)
            ax.axvline(wc, color="k", ls=":", lw=0.6)
            ax.axvline(np.pi, color="k", ls="--", lw=0.8)
        axes[1].text(wc, 4.2, " ω_c (passband to the left)", fontsize=6.5)
        axes[0].set_ylabel("PSD [λ² per rad/sample]")
        axes[0].set_title(f"Welch PSD of the raw and smoothed weight, β = {self.beta:g}"
                          + ("" if reals else " (no trace given)"), fontsize=9)
        axes[0].legend(fontsize=6)
        axes[1].set_ylabel("Pyy / (Pxx·|H|²)")
        axes[1].set_xlabel("ω [rad/sample]")
        axes[1].legend(fontsize=6, loc="lower left")
        return fig

    # ---- claims -----------------------------------------------------------------------
    def claims(self) -> list[Claim]:
        return [
            self._theorem_claim(),
            self._ar1_claim(),
            self._finite_window_claim(),
            self._empirical_claim(),
            self._explanation_claim(),
            self._decade_claim(),
            self._psd_claim(),
            self._fd002_claim(),
        ]

    def _real_reduction(self) -> str:
        r = self.real
        if r is None:
            return "no trace given"
        if math.isnan(r.std_reduction):
            tau = iir_theory.time_constant(self.beta)
            need = SETTLE_TAUS + MEASURE_TAUS
            return (f"{r.label}: post-warmup segment of {r.segment[1] - r.segment[0]} steps is "
                    f"shorter than {need}τ = {need * tau:.0f} ({SETTLE_TAUS}τ to settle + "
                    f"{MEASURE_TAUS}τ to measure); lag-1 ρ̂ of raw λ = {r.raw_lag1:+.3f}")
        rho = float(np.clip(r.raw_lag1, -0.99, 0.99))  # same clip as _ar1_reduction
        n = min(r.settled_steps, 8000)
        windowed = math.sqrt(theory.input_sample_variance(n, rho)
                             / theory.stationary_output_sample_variance(self.beta, n, rho))
        return (f"{r.label}: std(raw)/std(EMA) = {r.std_reduction:.2f} over {r.settled_steps} "
                f"settled steps; lag-1 ρ̂ = {r.raw_lag1:+.3f} → AR(1) model "
                f"{_ar1_reduction(self.beta, rho):.2f} (n → ∞), {windowed:.2f} (n = {n})")

    def _theorem_claim(self) -> Claim:
        s = self.stationary
        i = int(np.flatnonzero(s.rhos == 0.0)[0])
        lo, hi = _interval(s.reduction[i], s.reduction_se[i])
        th = theory.std_reduction(self.beta)
        ok = bool(s.within_ci(familywise_z(1))[i]) and abs(th - CLAIMED_THEOREM) <= 0.05
        return Claim(
            claim=f"variance theorem: an EMA of i.i.d. noise reduces the std by "
                  f"√((1+β)/(1−β)) ≈ {CLAIMED_THEOREM}× at β = {self.beta:g}",
            source="seed 001 (variance-reduction theorem)",
            theory=f"√((1+β)/(1−β)) = {th:.4f}; Var ratio (1−β)/(1+β) = "
                   f"{theory.variance_ratio(self.beta):.6f}",
            simulation=f"MC {s.reduction[i]:.3f}, 95% CI [{lo:.3f}, {hi:.3f}] ({s.runs} runs × "
                       f"{s.n} stationary steps)",
            real_run=self._real_reduction(),
            tolerance=_tolerance_text(1) + "; ±0.05 on the printed 14.1",
            verdict="holds" if ok else "refuted",
        )

    def _ar1_claim(self) -> Claim:
        s = self.stationary
        ok = bool(s.within_ci().all())
        cells = "; ".join(f"ρ={r:+g}: {t:.2f} vs {m:.2f}±{Z95 * e:.2f}"
                          for r, t, m, e in zip(s.rhos, s.theory, s.reduction, s.reduction_se,
                                                strict=True))
        return Claim(
            claim="AR(1) input: std reduction √((1+β)(1−βρ)/((1−β)(1+βρ))) for every ρ",
            source="toolkit (theory.variance.variance_ratio)",
            theory="std_reduction(β, ρ), falls with ρ",
            simulation=cells,
            real_run=self._real_reduction(),
            tolerance=_tolerance_text(s.rhos.size),
            verdict="holds" if ok else "refuted",
        )

    def _finite_window_claim(self) -> Claim:
        w = self.windows
        ok = bool(w.within_ci().all())
        worst = np.max(np.abs(w.reduction - w.theory) / w.reduction_se)
        return Claim(
            claim="finite windows: the exact expected sample-variance ratio predicts the "
                  "measured std reduction for every window and start",
            source="toolkit (theory.variance.finite_window_std_reduction)",
            theory=f"{w.theory.size} predictions, {w.theory.min():.2f}–{w.theory.max():.2f}×",
            simulation=f"{w.runs} runs each; largest |MC − theory| = {worst:.2f} standard errors",
            real_run="n/a",
            tolerance=_tolerance_text(w.theory.size),
            verdict="holds" if ok else "refuted",
            evidence=f"over n ≲ 10τ the sample variance is biased: e.g. n = {w.windows[-1]}, "
                     f"stationary start: {w.theory[0, -1]:.2f}× vs "
                     f"{theory.std_reduction(w.beta):.2f}×",
        )

    def _empirical_claim(self) -> Claim:
        g = self.gap
        q = g.mc_quantiles()
        reproduced = abs(g.seed0_ratio - CLAIMED_EMPIRICAL) <= 0.05
        return Claim(
            claim=f"on the seeds' synthetic data the empirical reduction is {CLAIMED_EMPIRICAL}× "
                  f"vs {CLAIMED_THEOREM}× in theory",
            source="seed 001 (EMA from scratch)",
            theory=f"finite-window theory for that setup: {g.theory['sample mean (seed), n']:.2f}×"
                   f" (theorem {g.theory['stationary, n→∞']:.2f}×)",
            simulation=f"seed 0 stream: {g.seed0_ratio:.2f}×; {g.runs} MC runs: pooled "
                       f"{g.mc_pooled:.2f} ± {Z95 * g.mc_pooled_se:.2f}, 95% of runs in "
                       f"[{q[2.5]:.1f}, {q[97.5]:.1f}]",
            real_run="n/a (synthetic experiment)",
            tolerance="±0.05 on the printed 19.4 (seed-0 reproduction)",
            verdict="holds" if reproduced else "refuted",
            evidence=f"the print is reproduced, but it is one draw (percentile "
                     f"{g.seed0_percentile:.0f}); the expected value is "
                     f"{g.theory['sample mean (seed), n']:.2f}×" if reproduced else
            f"seed 0 gives {g.seed0_ratio:.2f}×",
        )

    def _explanation_claim(self) -> Claim:
        s, g = self.stationary, self.gap
        positive = s.rhos > 0
        mc_lower = bool(np.all(s.reduction[positive] + Z95 * s.reduction_se[positive]
                               < theory.std_reduction(self.beta)))
        band = Z95 / math.sqrt(g.n)
        iid_input = abs(g.seed0_lag1) <= band
        seed_setup = g.theory["sample mean (seed), n"]
        explained = abs(g.mc_pooled - seed_setup) <= familywise_z(1) * g.mc_pooled_se
        ok = not mc_lower and not (iid_input and explained)
        rho_txt = ", ".join(f"ρ={r:+g}: {m:.2f}×" for r, m in
                            zip(s.rhos[positive], s.reduction[positive], strict=True))
        return Claim(
            claim="the excess over theory is because 'the per-batch noise has small positive "
                  "serial correlation that EMA can exploit'",
            source="seed 001 (EMA from scratch)",
            theory=f"positive ρ lowers the reduction (ρ=0.1: "
                   f"{theory.std_reduction(self.beta, 0.1):.2f}×); finite window + sample-mean "
                   f"start: {seed_setup:.2f}×",
            simulation=f"MC with AR(1) input: {rho_txt}; seed-0 input lag-1 "
                       f"{g.seed0_lag1:+.3f} (i.i.d. band ±{band:.3f}); MC of the seeds' setup "
                       f"{g.mc_pooled:.2f} ± {Z95 * g.mc_pooled_se:.2f}",
            real_run=self._real_reduction(),
            tolerance="positive-ρ MC 95% upper bounds vs the i.i.d. value; lag-1 vs the i.i.d. "
                      "95% band; seeds' setup vs theory within the 99% CI",
            verdict="holds" if ok else "refuted",
            evidence="positive correlation makes the EMA reduce the std less, not more; the input "
                     "is i.i.d. and the gap is the 10τ window started at the sample mean"
            if not ok else "",
        )

    def _decade_claim(self) -> Claim:
        s = self.stationary
        m = (1 + s.ladder_betas) / (1 - s.ladder_betas)
        predicted = np.sqrt(m[1:] / m[:-1])
        measured = s.ladder_reduction[1:] / s.ladder_reduction[:-1]
        rel_se = np.hypot(s.ladder_se[1:] / s.ladder_reduction[1:],
                          s.ladder_se[:-1] / s.ladder_reduction[:-1])
        in_ci = np.abs(measured / predicted - 1) <= familywise_z(predicted.size) * rel_se
        exact = math.sqrt(10.0)
        ok = bool(in_ci.all()) and abs(exact - CLAIMED_DECADE_GAIN) <= 0.05
        pairs = "; ".join(f"β {a:g}→{b:g}: ×{mm:.2f} on (1+β)/(1−β), std gain theory {p:.3f}, "
                          f"MC {q:.3f}" for a, b, mm, p, q in
                          zip(s.ladder_betas[:-1], s.ladder_betas[1:], m[1:] / m[:-1], predicted,
                              measured, strict=True))
        rho = 0.9
        corr = theory.std_reduction(0.999, rho) / theory.std_reduction(0.99, rho)
        return Claim(
            claim=f"every 10× on (1+β)/(1−β) buys √10 ≈ {CLAIMED_DECADE_GAIN}× std reduction",
            source="seed 001 (variance-reduction theorem)",
            theory=f"std reduction = √((1+β)/(1−β)) ⇒ gain √10 = {exact:.4f} (i.i.d. input)",
            simulation=pairs,
            real_run="n/a",
            tolerance=_tolerance_text(predicted.size) + "; ±0.05 on the printed 3.2",
            verdict="holds" if ok else "refuted",
            evidence=f"only for i.i.d. input: with AR(1) ρ = {rho}, β 0.99→0.999 buys "
                     f"{corr:.2f}×",
        )

    def _psd_claim(self) -> Claim:
        st = self.psd.stats()
        ok = abs(st["median"] - 1.0) <= PSD_MEDIAN_TOL
        real = "no trace given"
        if self.real is not None:
            if self.real.psd is None:
                real = f"{self.real.label}: post-warmup segment too short for Welch"
            else:
                rs = self.real.psd.stats()
                real = (f"{self.real.label}: median {rs['median']:.3f} (5–95%: {rs['q5']:.3f}–"
                        f"{rs['q95']:.3f}), nperseg {self.real.psd.nperseg}")
        return Claim(
            claim="the EMA is a first-order low-pass: output PSD = |H(e^{jω})|² × input PSD",
            source="seed 001 (EMA as IIR low-pass)",
            theory="Pyy/(Pxx|H|²) = 1",
            simulation=f"Welch (nperseg {self.psd.nperseg} ≥ 10τ), {st['bins']} bins: median "
                       f"{st['median']:.4f}, 5–95% {st['q5']:.3f}–{st['q95']:.3f}",
            real_run=real,
            tolerance=f"median within ±{PSD_MEDIAN_TOL:g}",
            verdict="holds" if ok else "refuted",
        )

    def _fd002_claim(self) -> Claim:
        base = dict(
            claim="on FD002 the raw λ_rul has std of order 0.001 around a mean of order 0.002 "
                  "(50% coefficient of variation)",
            source="seed 001 (why raw λ cannot be used)",
            theory="—",
            simulation="—",
            tolerance=f"mean and std within ×{ORDER_FACTOR:.2f} ('of order'); CV within "
                      f"×{CV_FACTOR:g} of 50%",
        )
        r = self.real if self.real is not None and self.real.subset == "FD002" else (
            self.fd002 or self.real)
        if r is None:
            return Claim(**base, real_run="no trace given", verdict="not testable",
                         evidence="needs an FD002 training trace (pass --trace)")
        stats = (f"{r.label}: raw λ_{r.task_name} mean {r.raw_mean:.4g}, std {r.raw_std:.4g}, "
                 f"CV {100 * r.cv:.0f}% over {r.segment[1] - r.segment[0]} post-warmup steps")
        if r.subset != "FD002":
            return Claim(**base, real_run=stats, verdict="not testable",
                         evidence=f"the trace is {r.subset or 'of an unknown subset'}, not FD002")
        if r.segment[1] - r.segment[0] < 2:
            return Claim(**base, real_run=stats, verdict="not testable",
                         evidence="the trace has no post-warmup measurements")

        def within(value, claimed, factor):
            return claimed / factor <= value <= claimed * factor

        ok = (within(r.raw_mean, CLAIMED_FD002["mean"], ORDER_FACTOR)
              and within(r.raw_std, CLAIMED_FD002["std"], ORDER_FACTOR)
              and within(r.cv, CLAIMED_FD002["cv"], CV_FACTOR))
        return Claim(**base, real_run=stats, verdict="holds" if ok else "refuted")


def noise_response(beta: float = BETA, *, trace=None, seed: int = 0, quick: bool = False,
                   **kwargs) -> NoiseResponse:
    """Run every noise experiment (small sizes when ``quick``) and the real-trace statistics.

    Examples
    --------
    >>> r = noise_response(quick=True)
    >>> [c.verdict for c in r.claims()][:2]
    ['holds', 'holds']
    """
    check_no_extra_kwargs(kwargs, "noise_response")
    beta = check_beta(beta)
    return NoiseResponse(
        beta=beta,
        stationary=stationary_noise_response(beta, RHOS, runs=100 if quick else 400,
                                             n=2000 if quick else 4000, seed=seed),
        windows=finite_window_response(beta, WINDOWS[:2] if quick else WINDOWS,
                                       runs=400 if quick else 2000, seed=seed),
        gap=variance_gap_response(beta, runs=300 if quick else 2000, rng_seed=seed + 1),
        psd=psd_response(beta, runs=4 if quick else 16, n=8192 if quick else 32768, seed=seed),
        real=None if trace is None else trace_noise(trace),
    )


def run(outdir: Path, *, seed: int, trace, quick: bool) -> Study:
    """Compute the noise experiments, save the two figures, decide the claims."""
    r = noise_response(BETA, trace=trace, seed=seed, quick=quick)
    longer = _longest_committed_trace(trace)
    r = replace(r, fd002=longer[0] if longer else None)
    figures = save_figure(r.plot(), outdir, "noise_variance")
    figures += save_figure(r.plot_psd(extra=longer), outdir, "noise_psd")
    s, g, st = r.stationary, r.gap, r.psd.stats()
    i = int(np.flatnonzero(s.rhos == 0.0)[0])
    positive = s.rhos > 0
    correlated = ", ".join(f"ρ={p:g}: {v:.1f}×" for p, v in
                           zip(s.rhos[positive], s.reduction[positive], strict=True))
    real = ("No trace was given, so the real-run cells are empty." if r.real is None else
            f"On the real trace ({r.real.label}) the raw λ_{r.real.task_name} has mean "
            f"{r.real.raw_mean:.4g}, std {r.real.raw_std:.4g} and lag-1 correlation "
            f"{r.real.raw_lag1:+.3f}"
            + (f"; the EMA reduces its std only {r.real.std_reduction:.2f}× (an AR(1) input with "
               f"that lag-1 correlation would give {_ar1_reduction(BETA, r.real.raw_lag1):.1f}×): "
               f"real raw weights carry slow drift that a low-pass passes, so the i.i.d. theorem "
               f"does not describe them, while the filter law itself holds (Welch median "
               f"{r.real.psd.stats()['median']:.3f})." if
               math.isfinite(r.real.std_reduction) and r.real.psd is not None else
               " (the post-warmup segment is too short to measure the EMA's std reduction)."))
    summary = (
        f"For i.i.d. input the EMA (β = {BETA:g}) reduces the std {s.reduction[i]:.2f}× in "
        f"Monte Carlo against √((1+β)/(1−β)) = {s.theory[i]:.2f}×. Positively correlated AR(1) "
        f"input is reduced less ({correlated}), so serial correlation cannot explain the seeds' "
        f"{CLAIMED_EMPIRICAL}×; the seeds' own setup (n = {g.n}, start at the sample mean) has "
        f"an expected {g.theory['sample mean (seed), n']:.2f}× "
        f"and seed 0 draws {g.seed0_ratio:.2f}×. Over short windows the sample-variance ratio "
        f"follows the exact finite-window theory for every start. Welch spectra confirm "
        f"Pyy = |H|²·Pxx (median ratio {st['median']:.3f}). " + real
    )
    if longer:
        lo = longer[0].psd
        summary += (f" The committed {longer[0].label} trace ({lo.samples} settled steps, "
                    f"nperseg {lo.nperseg}) puts its first Welch bin at ω = {lo.omega[0]:.4f}, "
                    f"below ω_c = {iir_theory.cutoff_frequency(BETA):.4f}, so it tests the "
                    f"passband too (median Pyy/(Pxx|H|²) {lo.stats()['median']:.3f}).")
    captions = {
        "noise_variance": (
            f"Std reduction of the EMA (β = {BETA:g}). Top: stationary AR(1) input against its "
            f"lag-1 correlation ρ (theory line, Monte Carlo {s.runs} runs × {s.n} steps, 95 % "
            f"intervals; log scale). Middle: finite windows of n steps for three starts (exact "
            f"expectation against Monte Carlo, {r.windows.runs} runs). Bottom: the seeds' "
            f"experiment (n = {g.n}, start at the sample mean) over {g.runs} runs: the histogram "
            f"is of per-run ratios, whose median lies above the pooled ratio √(E s²ₓ/E s²ᵧ) "
            f"that the finite-window theory predicts (and the pooled Monte Carlo matches); "
            f"orange: the per-run theory (log-normal by the delta method on the two sample "
            f"variances, Gaussian input), median {g.per_run.median:.2f} against the runs' "
            f"{float(np.median(g.mc_ratios)):.2f}."),
        "noise_psd": (
            f"Welch spectra of the raw weight and its EMA (β = {BETA:g}): synthetic coloured "
            f"gradients ({r.psd.samples} steps × runs) and the real traces after their warmup "
            f"and {SETTLE_TAUS}τ of settling. Bottom: Pyy/(Pxx·|H|²), which is 1 where the "
            f"filter law holds; shaded: the passband ω < ω_c."),
    }
    finding = Finding(
        f"The EMA reduces i.i.d. noise {s.reduction[i]:.2f}× (theory {s.theory[i]:.2f}×); the "
        f"seeds' larger {CLAIMED_EMPIRICAL}× is not serial correlation (which reduces it less) "
        f"but their finite-window setup, whose expected ratio is "
        f"{g.theory['sample mean (seed), n']:.2f}×.", figure="noise_variance")
    return Study(
        name="noise",
        title="Noise: variance reduction, finite windows and spectra",
        summary=summary + " See {fig:noise_variance}, {fig:noise_psd}, {tab:Finite windows} "
        "and {tab:The seeds' experiment}.",
        figures=figures,
        claims=[replace(c, figure="noise_psd" if "PSD" in c.claim or "Welch" in c.simulation
                        else "noise_variance") for c in r.claims()],
        tables=["### Finite windows: std reduction over n steps by start (theory and Monte "
                "Carlo ± 1.96·SE)\n\n" + r.windows.table(),
                "### The seeds' experiment reproduced (n = 1000, sample-mean start)\n\n"
                + r.gap.table()],
        captions=captions,
        findings=[finding],
    )


def _longest_committed_trace(given) -> tuple:
    """The committed FD002 GABA trace (4× longer than FD001's), unless it is the given one."""
    from gaba_control.trace import load_trace

    path = results_dir() / "traces" / "FD002-gaba-seed0.npz"
    if not path.is_file():
        return ()
    trace = load_trace(path)
    if given is not None and given.subset == trace.subset and len(given) == len(trace):
        return ()
    noise = trace_noise(trace)
    return (noise,) if noise.psd is not None else ()
