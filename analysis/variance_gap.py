r"""Why the seeds measure a 19.4× std reduction where the theorem says 14.1×.

Seed 001 ("EMA + AR(1) noise-reduction theorem") draws ``n = 1000`` steps of

* ``g_rul ~ max(5 + N(0, 1), 0.01)``, ``g_health ~ max(0.01 + 0.005 N(0, 1), 1e-6)``,
* ``λ_raw = g_health / (g_rul + g_health)`` (the K = 2 raw weight of the RUL task),

runs the EMA (β = 0.99) from ``init = λ_raw.mean()`` with the seeds' window
convention (the initial state is the first of the ``n`` outputs and
``values[0]`` is never fed), and reports ``std(λ_raw)/std(λ_ema)``.

Its explanation, "small positive serial correlation" of the input, is wrong
twice over: the input is i.i.d. by construction, and positive correlation
would *lower* the reduction (:func:`gaba_control.theory.variance.std_reduction`
falls with ``ρ``). What the theorem's ``√((1+β)/(1−β))`` does not describe is
the experiment: a window of only ten time constants, over which the sample
variance of the strongly autocorrelated output is biased low, started at the
sample mean of the very inputs it filters (no transient, and a smaller
initial spread than the stationary law). The exact finite-window theory
(:func:`gaba_control.theory.variance.finite_window_std_reduction`) predicts
what Monte Carlo runs of the seeds' experiment measure; seed 0 is one draw
from a wide distribution.

Run ``python -m analysis.variance_gap`` for the table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gaba_control import formulas
from gaba_control._validation import check_beta, check_no_extra_kwargs, check_positive_int
from gaba_control.theory import variance as theory

__all__ = [
    "VarianceGapResponse",
    "main",
    "seed_experiment",
    "seed_inputs",
    "variance_gap_response",
]

SEED_BETA = 0.99
SEED_STEPS = 1000
# The two empirical values seed 001 prints; quoted in the summary, never used in a computation.
SEED_PRINTED = (19.4, 19.6)
RHO_EXAMPLES = (-0.1, 0.0, 0.05, 0.1, 0.3)


def seed_inputs(normal_rul: np.ndarray, normal_health: np.ndarray) -> np.ndarray:
    """The seeds' raw RUL weight from standard-normal draws, through the library's P-law.

    ``raw_weights`` of ``g = (g_rul, g_health)`` is ``(g_health/S, g_rul/S)``;
    component 0 is ``λ_raw`` of the seed.
    """
    g_rul = np.maximum(5.0 + 1.0 * normal_rul, 0.01)
    g_health = np.maximum(0.01 + 0.005 * normal_health, 1e-6)
    return formulas.raw_weights(np.stack([g_rul, g_health], axis=-1))[..., 0]


def seed_experiment(raw: np.ndarray, beta: float = SEED_BETA) -> np.ndarray:
    """EMA of ``raw`` (..., n) in the seeds' convention.

    ``y_0`` is the sample mean of the row and ``y_t = β y_{t−1} + (1−β) x_t``
    for ``t ≥ 1``: ``x_0`` is never fed (the seed's ``ema_run``).
    """
    raw = np.asarray(raw, dtype=float)
    out = np.empty_like(raw)
    out[..., 0] = raw.mean(axis=-1)
    for t in range(1, raw.shape[-1]):
        out[..., t] = formulas.ema_update(out[..., t - 1], raw[..., t], beta)
    return out


def _std_ratio(raw: np.ndarray, ema: np.ndarray) -> np.ndarray:
    return raw.std(axis=-1) / ema.std(axis=-1)


def _lag1_autocorrelation(x: np.ndarray) -> float:
    d = x - x.mean()
    return float(np.sum(d[1:] * d[:-1]) / np.sum(d * d))


@dataclass(frozen=True)
class VarianceGapResponse:
    """Seed 0, Monte Carlo and theory for the seeds' variance-reduction experiment.

    Attributes
    ----------
    beta, n, runs :
        Configuration (runs: Monte Carlo repetitions).
    seed0_ratio : float
        ``std(raw)/std(ema)`` for the legacy stream ``np.random.seed(0)`` +
        ``np.random.randn`` (what the seed's script draws).
    seed0_stats : dict
        Means and stds of raw and EMA for seed 0 (ddof = 0, as ``np.std``).
    seed0_lag1 : float
        Sample lag-1 autocorrelation of seed 0's raw input (standard error
        about ``1/√n`` for i.i.d. input).
    mc_ratios : ndarray (runs,)
        Per-run ratios of independent draws (``numpy.random.default_rng``).
    mc_pooled : float
        ``√(mean s_x² / mean s_y²)`` over the runs: the Monte Carlo estimate
        of what the finite-window theory predicts.
    mc_pooled_se : float
        Its standard error (delta method over the per-run sample variances).
    theory : dict
        Predicted std reductions: ``"stationary, n→∞"`` (the theorem),
        ``"stationary start, n"``, ``"fixed at the mean, n"``,
        ``"sample mean (seed), n"`` and ``"start at 1/K, n"``.
    ar1 : dict
        ``ρ → `` stationary std reduction for AR(1) input.
    input_mean, input_std : float
        Moments of ``λ_raw`` pooled over the runs (for the 1/K start).
    """

    beta: float
    n: int
    runs: int
    seed0_ratio: float
    seed0_stats: dict
    seed0_lag1: float
    mc_ratios: np.ndarray
    mc_pooled: float
    theory: dict
    ar1: dict
    mc_pooled_se: float
    input_mean: float
    input_std: float
    #: the per-run ratio's distribution (Gaussian input, delta method): what the histogram shows
    per_run: theory.PerRunStdReduction | None = None

    @property
    def seed0_percentile(self) -> float:
        """Share of Monte Carlo runs with a smaller ratio than seed 0 (in %)."""
        return float(100.0 * np.mean(self.mc_ratios < self.seed0_ratio))

    def mc_quantiles(self, q=(2.5, 25.0, 50.0, 75.0, 97.5)) -> dict:
        """Quantiles of the per-run ratio."""
        return {p: float(v) for p, v in zip(q, np.percentile(self.mc_ratios, q), strict=True)}

    def table(self) -> str:
        """The study's numbers as a markdown table."""
        q = self.mc_quantiles()
        rows = [
            ("theorem, stationary, n → ∞ (seed's 'theory')", self.theory["stationary, n→∞"]),
            ("finite window, stationary start", self.theory["stationary start, n"]),
            ("finite window, start at the true mean", self.theory["fixed at the mean, n"]),
            ("finite window, start at the sample mean (seed's setup)",
             self.theory["sample mean (seed), n"]),
            ("finite window, start at 1/K = 0.5 (transient)", self.theory["start at 1/K, n"]),
            (f"Monte Carlo pooled √(E s_x²/E s_y²), {self.runs} runs",
             f"{self.mc_pooled:.3f} ± {self.mc_pooled_se:.3f}"),
            ("Monte Carlo mean of per-run ratios", float(self.mc_ratios.mean())),
            ("Monte Carlo median of per-run ratios", q[50.0]),
            ("Monte Carlo 2.5 % … 97.5 %", f"{q[2.5]:.2f} … {q[97.5]:.2f}"),
        ]
        if self.per_run is not None:
            lo, mid, hi = self.per_run.quantile([0.025, 0.5, 0.975])
            rows += [("per-run theory (log-normal, delta method): median", float(mid)),
                     ("per-run theory 2.5 % … 97.5 %", f"{lo:.2f} … {hi:.2f}")]
        rows += [
            ("seed 0 (np.random.seed(0) + randn)", self.seed0_ratio),
            ("seed 0 percentile among Monte Carlo runs", f"{self.seed0_percentile:.1f} %"),
            ("seed 0 lag-1 autocorrelation of λ_raw", f"{self.seed0_lag1:+.4f} "
             f"(95 % band for i.i.d.: ±{1.96 / math.sqrt(self.n):.4f})"),
        ]
        rows += [(f"stationary theorem with AR(1) input, ρ = {r:+g}", v)
                 for r, v in self.ar1.items()]
        lines = [f"| quantity (β = {self.beta:g}, n = {self.n}) | std(raw)/std(EMA) |", "|---|---|"]
        for name, value in rows:
            text = f"{value:.3f}" if isinstance(value, float) else str(value)
            lines.append(f"| {name} | {text} |")
        return "\n".join(lines)

    def plot(self, ax=None):
        """Histogram of the per-run ratios with seed 0 and the two theories; return the axes."""
        import matplotlib.pyplot as plt

        if ax is None:  # a new figure, never whatever plt.gca() holds
            _, ax = plt.subplots()
        _, edges, _ = ax.hist(self.mc_ratios, bins=60, color="0.75",
                                   label=f"{self.runs} Monte Carlo runs")
        if self.per_run is not None:  # the per-run law, scaled to the histogram's counts
            x = np.linspace(edges[0], edges[-1], 400)
            ax.plot(x, self.per_run.pdf(x) * self.runs * (edges[1] - edges[0]), color="C1",
                    lw=1.6, label="per-run theory (log-normal, delta method)")
        marks = (
            (self.theory["stationary, n→∞"], "C3", "--", "theorem √((1+β)/(1−β))"),
            (self.theory["sample mean (seed), n"], "C0", "-",
             "finite-window theory, pooled √(E s²ₓ/E s²ᵧ)"),
            (self.mc_pooled, "C2", "-.", "Monte Carlo, pooled over runs"),
            (float(np.median(self.mc_ratios)), "0.3", "-", "median of the per-run ratios"),
            *(((self.per_run.median, "C1", "--", "per-run theory, median"),)
              if self.per_run is not None else ()),
            (self.seed0_ratio, "k", ":", "seed 0"),
        )
        for value, color, style, label in marks:
            ax.axvline(value, color=color, linestyle=style, label=f"{label}: {value:.2f}")
        ax.set_xlabel("std(λ_raw) / std(λ_EMA)")
        ax.set_ylabel("runs")
        ax.set_title(f"EMA std reduction over n = {self.n} steps, β = {self.beta:g}")
        ax.legend(fontsize=6.5)
        return ax


def variance_gap_response(beta: float = SEED_BETA, n: int = SEED_STEPS, runs: int = 2000,
                          rng_seed: int = 1, **kwargs) -> VarianceGapResponse:
    """Reproduce the seeds' experiment, its Monte Carlo distribution and the theory.

    Parameters
    ----------
    beta : float
        EMA coefficient (the seed's 0.99).
    n : int
        Window length (the seed's 1000).
    runs : int
        Monte Carlo repetitions.
    rng_seed : int
        Seed of the Monte Carlo generator (independent of seed 0's stream).

    Returns
    -------
    VarianceGapResponse

    Examples
    --------
    >>> r = variance_gap_response(runs=200)
    >>> round(r.seed0_ratio, 1), round(r.theory["sample mean (seed), n"], 2)
    (19.4, 16.04)
    """
    check_no_extra_kwargs(kwargs, "variance_gap_response")
    beta = check_beta(beta)
    n = check_positive_int(n, "n")
    runs = check_positive_int(runs, "runs")

    legacy = np.random.RandomState(0)  # the same stream as np.random.seed(0) + np.random.randn
    normal_rul = legacy.randn(n)
    normal_health = legacy.randn(n)
    raw0 = seed_inputs(normal_rul, normal_health)
    ema0 = seed_experiment(raw0, beta)

    rng = np.random.default_rng(rng_seed)
    raw = seed_inputs(rng.standard_normal((runs, n)), rng.standard_normal((runs, n)))
    ema = seed_experiment(raw, beta)
    pooled, pooled_se = pooled_std_ratio(raw.var(axis=-1), ema.var(axis=-1))
    mean, std = float(raw.mean()), float(raw.std())

    def predicted(**options) -> float:
        return theory.finite_window_std_reduction(beta, n, include_init=True, **options)

    prediction = {
        "stationary, n→∞": theory.std_reduction(beta),
        "stationary start, n": predicted(init="stationary"),
        "fixed at the mean, n": predicted(init="fixed"),
        "sample mean (seed), n": predicted(init="sample_mean"),
        "start at 1/K, n": predicted(init="fixed", init_offset=(0.5 - mean) / std),
    }
    return VarianceGapResponse(
        beta=beta, n=n, runs=runs,
        seed0_ratio=float(_std_ratio(raw0, ema0)),
        seed0_stats={"raw_mean": float(raw0.mean()), "raw_std": float(raw0.std()),
                     "ema_mean": float(ema0.mean()), "ema_std": float(ema0.std())},
        seed0_lag1=_lag1_autocorrelation(raw0),
        mc_ratios=_std_ratio(raw, ema),
        mc_pooled=pooled,
        mc_pooled_se=pooled_se,
        theory=prediction,
        ar1={rho: theory.std_reduction(beta, rho) for rho in RHO_EXAMPLES},
        input_mean=mean, input_std=std,
        per_run=theory.per_run_std_reduction(beta, n, init="sample_mean", include_init=True),
    )


def pooled_std_ratio(var_x: np.ndarray, var_y: np.ndarray) -> tuple[float, float]:
    """``√(mean var_x / mean var_y)`` and its delta-method standard error."""
    a, b = var_x.mean(), var_y.mean()
    runs = var_x.size
    cov = np.cov(var_x / a, var_y / b) / runs if runs > 1 else np.zeros((2, 2))
    rel_var = cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1]  # of log(a/b), to first order
    ratio = math.sqrt(a / b)
    return ratio, 0.5 * ratio * math.sqrt(max(rel_var, 0.0))


def _summary(r: VarianceGapResponse) -> str:
    q = r.mc_quantiles()
    s = r.seed0_stats
    return (
        f"Seed 0 (np.random.seed(0) + randn, as in the seed's script) gives raw mean "
        f"{s['raw_mean']:.6f}, std {s['raw_std']:.6f}; EMA mean {s['ema_mean']:.6f}, std "
        f"{s['ema_std']:.7f}: a reduction of {r.seed0_ratio:.2f}× (the seed prints "
        f"{SEED_PRINTED[0]}× in its output and {SEED_PRINTED[1]}× in its annotation; "
        f"{r.seed0_ratio:.1f} is what the draw gives). The theorem's "
        f"{r.theory['stationary, n→∞']:.2f}× is the stationary, infinite-window value. The exact "
        f"finite-window theory for the seed's setup (n = {r.n}, start at the sample mean) "
        f"predicts {r.theory['sample mean (seed), n']:.2f}×, and {r.runs} Monte Carlo runs give "
        f"{r.mc_pooled:.2f} ± {r.mc_pooled_se:.2f}× pooled (per-run median {q[50.0]:.2f}×, "
        f"95 % of runs in "
        f"[{q[2.5]:.2f}, {q[97.5]:.2f}]); seed 0 sits at the {r.seed0_percentile:.0f}th "
        f"percentile. The input is i.i.d. (seed 0's lag-1 autocorrelation is "
        f"{r.seed0_lag1:+.3f}); positive correlation would lower the reduction "
        f"(ρ = 0.1: {r.ar1[0.1]:.2f}×)."
    )


def main(argv=None) -> int:
    """Print the study's table and summary."""
    r = variance_gap_response()
    print(r.table())
    print()
    print(_summary(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
