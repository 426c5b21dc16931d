r"""The closed loop: what the controller achieves when gradient sources drive it.

The controller's target is the *weighted* gradient share: the loss
``Σ λ_i L_i`` hands the shared parameters the gradient ``Σ λ_i ∇L_i``, and task
``i`` contributes ``λ_i g_i`` of it. The loop aims at the achieved share
:func:`achieved_shares` ``λ_i g_i / Σ_j λ_j g_j = 1/K``. This study drives
the numpy :class:`~gaba_control.controller.GABAController` (vectorised over
many runs with ``.run``) with

* constant imbalances ``g = (r, 1)`` from 1× to 2,400×;
* the seeds' drifting start-up source (``synth`` of seed 000, re-implemented
  here from its description: ``g_0 = max(2 + 3 min(1, t/50) + 0.5 z, 0.01)``,
  ``g_1 = max(0.5 − 0.49 min(1, t/50) + 0.05 z', 10⁻⁶)``, ``t`` from 0);
* log-normal noise and regime switching;
* a *plant* whose gradients respond to the weights (:func:`plant_response`):
  two least-squares tasks sharing a parameter vector ``θ``, trained by
  (minibatch) gradient descent on ``Σ λ_i L_i``; the per-task gradient norms
  the controller reads are measured on the plant at every step;
* the *identified* C-MAPSS plant (:func:`identified_plant_response`, the
  committed models of ``results/identify/plants.csv``): constant imbalances
  through ``log R = log r + P(z) log(λ_1/λ₀)``, against the same imbalances
  with no plant answer.

It sweeps ``W``, ``β`` and ``λ_min``, and checks the decimated sensor (the
norms read every ``N`` steps, ``β^N`` per refresh) against the theory of
:mod:`gaba_control.lti.decimated`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gaba_control import formulas
from gaba_control.controller import GABAController
from gaba_control.lti.decimated import decimated_noise_gain, simulate_decimated
from gaba_control.theory import fraction_settled, settling_steps

from ._common import (
    Claim,
    Finding,
    Study,
    new_figure,
    plain_log_formatter,
    results_dir,
    save_figure,
)

__all__ = [
    "ConstantImbalanceResponse",
    "DecimatedSensorResponse",
    "PlantResponse",
    "StartupResponse",
    "SweepResponse",
    "SwitchingResponse",
    "achieved_shares",
    "constant_imbalance_response",
    "decimated_sensor_response",
    "identified_plant_response",
    "lognormal_norms",
    "one_step_share_error",
    "plant_response",
    "plant_table",
    "run",
    "settling_index",
    "startup_norms",
    "startup_response",
    "sweep_response",
    "switching_norms",
    "switching_response",
    "trace_summary",
]

PAPER = {"beta": 0.99, "warmup": 100, "lambda_min": 0.05}
#: Milestones of the seed's start-up table (0-based loop index t; step = t + 1).
MILESTONES = (0, 50, 99, 100, 101, 150, 200, 300, 499)
#: The seed's printed λ_rul at those milestones, kept only to be compared against.
SEED_MILESTONES = (0.5, 0.5, 0.5, 0.495051, 0.490150, 0.301712, 0.185016, 0.070340, 0.048225)
PRINT_ATOL = 5e-7  # printed with 6 decimals
#: Settling criterion: within 5 % of the total move (the "95 % settled" convention).
SETTLE_FRACTION = 0.05
#: Rounding of λ_raw = 1 − s for a share s near 1 costs ~ε/λ relative; log-normal g with log-std 1.
ONE_STEP_ATOL = 1e-10
#: A coefficient of variation 0.65 per step, as reported for a real run's norms.
LOGNORMAL_SIGMA = float(np.sqrt(np.log(1 + 0.65**2)))


def achieved_shares(weights, grad_norms):
    """Each task's share of the weighted gradient, ``λ_i g_i / Σ_j λ_j g_j``.

    See :func:`gaba_control.formulas.weighted_shares`: what the loop is trying
    to set to ``1/K``.

    Examples
    --------
    >>> achieved_shares(np.array([0.2, 0.8]), np.array([4.0, 1.0]))
    array([0.5, 0.5])
    """
    return formulas.weighted_shares(np.asarray(weights, float), np.asarray(grad_norms, float))


def settling_index(y, final, start, fraction: float = SETTLE_FRACTION) -> np.ndarray:
    """First index after which ``|y − final| ≤ fraction·|start − final|`` for good (along -1).

    Returns ``len(y)`` where ``y`` never settles; 0 when there is nothing to settle.
    """
    y = np.asarray(y, dtype=float)
    band = fraction * np.abs(np.asarray(start) - np.asarray(final))
    outside = np.abs(y - np.asarray(final)[..., None]) > np.asarray(band)[..., None]
    last_out = np.where(outside.any(axis=-1),
                        y.shape[-1] - 1 - np.argmax(outside[..., ::-1], axis=-1), -1)
    return last_out + 1


def settling_updates(after_updates, final, start, fraction: float = SETTLE_FRACTION):
    """EMA updates until ``after_updates`` (its element ``i`` taken after ``i + 1`` updates,
    started at ``start``) stays within ``fraction`` of its move, counted as
    :func:`gaba_control.theory.settling_steps` counts them (0: nothing to settle).

    Regression: :func:`settling_index` of the post-warmup samples is one lower, which made
    the sweep's table read 298 against the theory's 299 at β = 0.99.
    """
    index = settling_index(after_updates, final, start, fraction)
    moved = np.abs(np.asarray(start) - np.asarray(final)) > 0
    return np.where(moved, index + 1, 0)


def one_step_share_error(num_tasks: int, *, runs: int = 2000, spread: float = 1.0,
                         rng: np.random.Generator | None = None) -> dict:
    """Achieved-share error when ``λ_raw`` is applied directly to the norms it was computed from.

    ``g`` log-normal with log-std ``spread``; returns the largest and the mean
    ``|λ_i g_i / Σ λ_j g_j − 1/K|`` and the same for the inverse-gradient
    weights ``λ ∝ 1/g`` (which do equalise for every ``K``).
    """
    rng = np.random.default_rng(0) if rng is None else rng
    g = np.exp(spread * rng.standard_normal((runs, num_tasks)))
    err = np.abs(achieved_shares(formulas.raw_weights(g), g) - formulas.reference(num_tasks))
    inverse = (1 / g) / (1 / g).sum(axis=-1, keepdims=True)
    err_inv = np.abs(achieved_shares(inverse, g) - formulas.reference(num_tasks))
    return {"max": float(err.max()), "mean": float(err.mean()), "inverse_max": float(err_inv.max())}


# ---------------------------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------------------------
def startup_norms(standard_normals: np.ndarray) -> np.ndarray:
    """The seed's drifting start-up source from draws ``z (..., T, 2)`` (``z[..., t, 0]`` first).

    Returns ``g (..., T, 2)``: task 0 (regression) drifts from ~2 to ~5, task 1
    (health) from ~0.5 to ~0.01 over the first 50 steps; both floored.
    """
    z = np.asarray(standard_normals, dtype=float)
    t = np.arange(z.shape[-2], dtype=float)
    blend = np.minimum(1.0, t / 50.0)
    big = np.maximum(2.0 + 3.0 * blend + 0.5 * z[..., 0], 0.01)
    small = np.maximum(0.5 - 0.49 * blend + 0.05 * z[..., 1], 1e-6)
    return np.stack([big, small], axis=-1)


def lognormal_norms(base, steps: int, runs: int, *, sigma: float = LOGNORMAL_SIGMA,
                    rng: np.random.Generator) -> np.ndarray:
    """``g_i = base_i · exp(σ z − σ²/2)``, independent per task and step: ``(runs, T, K)``."""
    base = np.asarray(base, dtype=float)
    z = rng.standard_normal((runs, steps, base.size))
    return base * np.exp(sigma * z - sigma**2 / 2)


def switching_norms(ratios, dwell: int, steps: int, runs: int, *, sigma: float = LOGNORMAL_SIGMA,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Regime switching: task 0's norm ``r(t)`` cycles through ``ratios`` every ``dwell`` steps.

    Returns ``(g (runs, T, 2), ratio (T,))``; task 1 has mean norm 1, both log-normal.
    """
    ratios = np.asarray(ratios, dtype=float)
    ratio = ratios[(np.arange(steps) // dwell) % ratios.size]
    base = np.stack([ratio, np.ones(steps)], axis=-1)
    noise = np.exp(sigma * rng.standard_normal((runs, steps, 2)) - sigma**2 / 2)
    return base * noise, ratio


# ---------------------------------------------------------------------------------------------
# Constant imbalance
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConstantImbalanceResponse:
    """The loop on ``g = (r, 1)`` (task 0 the large gradient) for many ratios ``r``."""

    ratios: np.ndarray
    lambda_mins: np.ndarray
    steps: np.ndarray
    weights_small: np.ndarray  # (len(lambda_mins), len(ratios), T): λ* of task 1 (small g)
    raw_small: np.ndarray  # (len(ratios),) λ_raw of task 1 = r/(1+r)
    final_small: np.ndarray  # (len(lambda_mins), len(ratios)) λ* at the last step
    final_share_small: np.ndarray  # achieved share of task 1 at the last step
    settle_steps: np.ndarray  # active steps to settle λ* (5 %), per λ_min and ratio
    floor_fraction: np.ndarray  # fraction of active steps with the floor binding
    beta: float
    warmup: int

    def table(self) -> str:
        """Steady state per ratio: weight, achieved share, settling and floor activity."""
        mins = ", ".join(f"{m:g}" for m in self.lambda_mins)
        lines = [f"| ratio g₁/g₂ | raw λ₂ | λ*₂ (λmin = {mins}) | achieved share of task 2 "
                 f"(λmin = {mins}) | settling, active steps | floor active |",
                 "| --- | --- | --- | --- | --- | --- |"]
        for j, r in enumerate(self.ratios):
            def cells(a, fmt, j=j):
                return " / ".join(fmt.format(v) for v in a[:, j])
            lines.append(
                f"| {r:g} | {self.raw_small[j]:.4f} | {cells(self.final_small, '{:.4f}')} | "
                f"{cells(self.final_share_small, '{:.4f}')} | {cells(self.settle_steps, '{:d}')} | "
                f"{cells(100 * self.floor_fraction, '{:.0f} %')} |")
        return "\n".join(lines)

    def steady_state_curves(self, points: int = 400):
        """The analytic steady state on a dense ratio grid: ``(r, λ*_small, share_small)``.

        On ``g = (r, 1)`` the EMA converges to the raw weights, so the steady output is
        ``floor_renormalise(raw_weights(g))`` and the share follows from it (no simulation).
        """
        r = np.geomspace(self.ratios.min(), self.ratios.max(), points)
        g = np.stack([r, np.ones_like(r)], axis=-1)
        lam = np.stack([formulas.floor_renormalise(formulas.raw_weights(g), float(m))
                        for m in self.lambda_mins])
        share = formulas.weighted_shares(lam, g)[..., 1]
        return r, lam[..., 1], share

    def plot(self, fig=None):
        """Steady-state weight and achieved share of the small task vs the ratio; trajectories.

        Lines are the analytic steady state on a dense grid, markers the simulated loop at
        its last step; vertical ticks mark where each floor starts to bind (r = 1/λmin − 1).
        """
        if fig is None:
            fig, axes = new_figure(1, 3, width=10.0, height=3.6)
        else:
            axes = fig.subplots(1, 3)
        r, lam, share = self.steady_state_curves()
        ax = axes[0]
        ax.semilogx(r, r / (1 + r), "k--", lw=1, label="raw λ₂ (no floor)")
        for k, m in enumerate(self.lambda_mins):
            (line,) = ax.semilogx(r, lam[k], lw=1.2, label=f"λmin = {m:g}")
            ax.semilogx(self.ratios, self.final_small[k], "o", ms=3.5, mfc="none",
                        color=line.get_color())
            if m > 0:  # the floor binds once the large task's raw weight 1/(1+r) < λmin
                for a in axes[:2]:
                    a.axvline(1 / m - 1, color=line.get_color(), lw=0.6, ls=":")
        ax.set(xlabel="gradient ratio r = g₁/g₂", ylabel="steady-state λ*₂ (small-gradient task)",
               title="Weight of the small-gradient task")
        ax.title.set_fontsize(9)
        ax.plot([], [], "ko", ms=3.5, mfc="none", label=f"simulated, step {self.steps[-1]}")
        ax.plot([], [], "k:", lw=0.6, label="floor starts to bind")
        ax.legend(fontsize=6.5, loc="lower right")
        ax = axes[1]
        for k, m in enumerate(self.lambda_mins):
            (line,) = ax.loglog(r, share[k], lw=1.2, label=f"λmin = {m:g}")
            ax.loglog(self.ratios, self.final_share_small[k], "o", ms=3.5, mfc="none",
                      color=line.get_color())
        ax.axhline(0.5, color="k", ls="--", lw=0.8, label="reference 1/K")
        ax.text(1.3, 0.6, "equalised", fontsize=7)
        ax.text(1.2, 0.12, "right of a dotted line the\nfloor binds: share ∝ 1/r", fontsize=6.5)
        ax.set_ylim(top=0.9)
        ax.set(xlabel="gradient ratio r = g₁/g₂", ylabel="achieved share λ₂g₂ / Σ λⱼgⱼ",
               title="Its achieved share (log)")
        ax.title.set_fontsize(9)
        ax.legend(fontsize=6.5, loc="lower left")
        ax = axes[2]
        i_m = int(np.argmin(np.abs(self.lambda_mins - PAPER["lambda_min"])))
        for ratio in (2, 10, 19, 500):
            j = int(np.argmin(np.abs(self.ratios - ratio)))
            ax.plot(self.steps, self.weights_small[i_m, j], label=f"r = {self.ratios[j]:g}")
        ax.axvspan(0.5, self.warmup + 0.5, color="tab:orange", alpha=0.12, lw=0, label="warmup")
        ax.set(xlabel="step (from 1)", ylabel="λ*₂ (small-gradient task)",
               title=f"Trajectories, λmin = {self.lambda_mins[i_m]:g}")
        ax.title.set_fontsize(9)
        ax.legend(fontsize=6.5, loc="lower right")
        for a in axes[:2]:
            a.xaxis.set_major_formatter(plain_log_formatter())
        return fig


def constant_imbalance_response(ratios=(1, 2, 5, 10, 19, 50, 100, 500, 1000, 2400), *,
                                lambda_mins=(0.0, 0.01, 0.05, 0.1), steps: int = 1500,
                                beta: float = PAPER["beta"],
                                warmup: int = PAPER["warmup"]) -> ConstantImbalanceResponse:
    """Run the controller on constant ``g = (r, 1)``; all ratios in one vectorised ``run``.

    Examples
    --------
    >>> r = constant_imbalance_response((500,), lambda_mins=(0.05,), steps=1200)
    >>> round(float(r.final_small[0, 0]), 4), round(float(r.final_share_small[0, 0]), 4)
    (0.9523, 0.0384)
    """
    ratios = np.asarray(ratios, dtype=float)
    mins = np.asarray(lambda_mins, dtype=float)
    g = np.stack([ratios, np.ones_like(ratios)], axis=-1)
    G = np.broadcast_to(g[:, None, :], (ratios.size, steps, 2))
    raw_small = formulas.raw_weights(g)[:, 1]
    weights, final, share, settle, floor = [], [], [], [], []
    for m in mins:
        tr = GABAController(2, beta=beta, warmup=warmup, lambda_min=m).run(G)
        w = tr.weights[..., 1]
        weights.append(w)
        final.append(w[:, -1])
        share.append(achieved_shares(tr.weights[:, -1], g)[:, 1])
        settle.append(settling_updates(w[:, warmup:], w[:, -1], 0.5))
        floor.append(tr.floor_active(m)[:, tr.active].mean(axis=-1))
    return ConstantImbalanceResponse(
        ratios=ratios, lambda_mins=mins, steps=np.arange(1, steps + 1),
        weights_small=np.array(weights), raw_small=raw_small, final_small=np.array(final),
        final_share_small=np.array(share), settle_steps=np.array(settle),
        floor_fraction=np.array(floor), beta=beta, warmup=warmup)


# ---------------------------------------------------------------------------------------------
# Start-up scenario
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StartupResponse:
    """The seed's start-up source: the legacy-RNG replay and the distribution over seeds."""

    steps: np.ndarray
    legacy: np.ndarray  # λ_rul per loop index t for np.random.seed(0)-style draws
    quantiles: np.ndarray  # (3, T): 0.5 %, 50 %, 99.5 % over seeds
    mean: np.ndarray
    runs: int
    steady: float  # long-run mean λ_rul
    ema_progress_200: float  # 1 − β^(active steps at t = 200)
    progress_200: float  # (0.5 − mean λ(200)) / (0.5 − steady)

    @property
    def legacy_deviation(self) -> float:
        """Largest ``|replay − printed|`` over the seed's milestones."""
        pairs = zip(MILESTONES, SEED_MILESTONES, strict=True)
        return max(abs(self.legacy[t] - v) for t, v in pairs)

    def outside_band(self) -> list[int]:
        """Milestones whose printed value lies outside the 99 % band over seeds."""
        lo, hi = self.quantiles[0], self.quantiles[2]
        return [t for t, v in zip(MILESTONES, SEED_MILESTONES, strict=True)
                if not lo[t] - PRINT_ATOL <= v <= hi[t] + PRINT_ATOL]

    def milestone_table(self) -> str:
        """The seed's milestones against the legacy replay and the spread over seeds."""
        lines = ["| step (the seed's t + 1) | seed's value | legacy seed(0) replay | median over "
                 "seeds | 99 % band |", "| --- | --- | --- | --- | --- |"]
        for t, printed in zip(MILESTONES, SEED_MILESTONES, strict=True):
            lo, med, hi = self.quantiles[:, t]
            lines.append(f"| {t + 1} | {printed:.6f} | {self.legacy[t]:.6f} | {med:.6f} | "
                         f"[{lo:.6f}, {hi:.6f}] |")
        return "\n".join(lines)

    def plot(self, fig=None):
        """λ_rul over the start-up (top) and every curve's difference from the median over
        seeds (bottom), where the band and the seed's table can be told apart."""
        if fig is None:
            fig, axes = new_figure(2, 1, width=6.4, height=5.0, sharex=True,
                                   gridspec_kw={"height_ratios": (1.4, 1)})
        else:
            axes = fig.subplots(2, 1, sharex=True)
        step = self.steps + 1  # the seed's loop index t is step t + 1
        marks = np.asarray(MILESTONES) + 1
        ax = axes[0]
        ax.fill_between(step, self.quantiles[0], self.quantiles[2], color="C0", alpha=0.25,
                        lw=0, label=f"99 % band over {self.runs} seeds")
        ax.plot(step, self.quantiles[1], color="C0", label="median over seeds")
        ax.plot(step, self.legacy, color="C1", lw=0.9, label="np.random.seed(0) replay")
        ax.plot(marks, SEED_MILESTONES, "kx", ms=5, label="seed 000's table")
        ax.axhline(self.steady, color="0.5", ls=":", lw=0.8,
                   label=f"long-run mean {self.steady:.4f}")
        ax.set(ylabel="λ*_RUL",
               title="Seed 000's start-up scenario (W = 100, β = 0.99, λmin = 0.05)")
        ax.legend(fontsize=6.5, loc="upper right")
        ax = axes[1]
        median = self.quantiles[1]
        ax.fill_between(step, self.quantiles[0] - median, self.quantiles[2] - median, color="C0",
                        alpha=0.25, lw=0, label="99 % band − median")
        ax.plot(step, self.legacy - median, color="C1", lw=0.9, label="replay − median")
        ax.plot(marks, np.asarray(SEED_MILESTONES) - median[list(MILESTONES)], "kx", ms=5,
                label="seed's table − median")
        ax.axhline(0, color="k", lw=0.6)
        ax.set(xlabel="training step (from 1)", ylabel="difference from the median")
        ax.legend(fontsize=6.5, loc="lower right", ncol=3)
        return fig


def startup_response(runs: int = 1000, *, steps: int = 500, steady_steps: int = 2000,
                     rng: np.random.Generator | None = None) -> StartupResponse:
    """Replay seed 000's start-up with legacy draws and over ``runs`` independent seeds.

    Legacy replay: ``numpy.random.RandomState(0).randn(T, 2)`` — the same
    stream as ``np.random.seed(0)`` followed by ``randn()`` per norm, task 0
    first, one pair per loop index including the warmup.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    controller = GABAController(2, **PAPER)
    z_legacy = np.random.RandomState(0).standard_normal((steps, 2))
    legacy = controller.run(startup_norms(z_legacy)).weights[:, 0]
    controller.reset()
    many = controller.run(startup_norms(rng.standard_normal((runs, steady_steps, 2))))
    lam = many.weights[..., 0]
    steady = float(lam[:, -steady_steps // 4:].mean())
    mean = lam[:, :steps].mean(axis=0)
    active_at_200 = 200 + 1 - PAPER["warmup"]
    return StartupResponse(
        steps=np.arange(steps), legacy=legacy,
        quantiles=np.quantile(lam[:, :steps], [0.005, 0.5, 0.995], axis=0), mean=mean, runs=runs,
        steady=steady, ema_progress_200=float(fraction_settled(PAPER["beta"], active_at_200)),
        progress_200=float((0.5 - mean[200]) / (0.5 - steady)))


# ---------------------------------------------------------------------------------------------
# Regime switching and noise
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SwitchingResponse:
    """The loop under log-normal noise with the imbalance switching between regimes."""

    steps: np.ndarray
    ratio: np.ndarray
    weight_small: np.ndarray  # (3, T) quantiles 5/50/95 % of λ* of task 1
    share_small: np.ndarray  # (3, T) quantiles of the achieved share of task 1 (per step)
    raw_share_small: np.ndarray  # median unweighted share g_1/Σg
    lambda_min: float
    runs: int

    def plot(self, fig=None):
        """Weight and achieved share of the small task through the regime changes."""
        if fig is None:
            fig, axes = new_figure(2, 1, width=6.6, height=4.6, sharex=True)
        else:
            axes = fig.subplots(2, 1, sharex=True)
        ax = axes[0]
        ax.fill_between(self.steps, self.weight_small[0], self.weight_small[2], alpha=0.3, lw=0,
                        label="5–95 % over runs")
        ax.plot(self.steps, self.weight_small[1], label="median λ*₂")
        ax.set(ylabel="λ*₂ (small-gradient task)",
               title=f"Regime switching, log-normal noise (CV 0.65), {self.runs} runs")
        twin = ax.twinx()
        twin.semilogy(self.steps, self.ratio, "k:", lw=0.8)
        twin.set_ylabel("ratio g₁/g₂ (dotted)")
        twin.yaxis.set_major_formatter(plain_log_formatter())
        twin.yaxis.set_minor_formatter(plain_log_formatter(minor=True))
        ax.legend(fontsize=7, loc="center right")
        ax = axes[1]
        ax.fill_between(self.steps, self.share_small[0], self.share_small[2], alpha=0.3, lw=0)
        ax.plot(self.steps, self.share_small[1], label="achieved share λ₂g₂/Σλⱼgⱼ (median)")
        ax.plot(self.steps, self.raw_share_small, color="0.5", lw=0.8,
                label="unweighted share g₂/Σg (median)")
        ax.axhline(0.5, color="k", ls=":", lw=0.8, label="reference 1/K")
        ax.set(xlabel="step (from 1)", ylabel="share of the small-gradient task")
        ax.legend(fontsize=6.5, loc="upper left", ncol=3)
        ax.set_ylim(top=1.05)
        return fig


def switching_response(ratios=(10.0, 500.0, 50.0), *, dwell: int = 600, steps: int = 2400,
                       runs: int = 64, lambda_min: float = PAPER["lambda_min"],
                       rng: np.random.Generator | None = None) -> SwitchingResponse:
    """Drive the paper-default loop with :func:`switching_norms`."""
    rng = np.random.default_rng(0) if rng is None else rng
    g, ratio = switching_norms(ratios, dwell, steps, runs, rng=rng)
    tr = GABAController(2, beta=PAPER["beta"], warmup=PAPER["warmup"],
                        lambda_min=lambda_min).run(g)
    q = [5, 50, 95]
    return SwitchingResponse(
        steps=tr.steps, ratio=ratio,
        weight_small=np.percentile(tr.weights[..., 1], q, axis=0),
        share_small=np.percentile(achieved_shares(tr.weights, g)[..., 1], q, axis=0),
        raw_share_small=np.median(tr.shares[..., 1], axis=0), lambda_min=lambda_min, runs=runs)


# ---------------------------------------------------------------------------------------------
# Sweep over W, β, λ_min
# ---------------------------------------------------------------------------------------------
#: λ_min values of the sweep's table (the figure uses the dense default grid)
TABLE_LAMBDA_MINS = (0.0, 0.01, 0.05, 0.1)


@dataclass(frozen=True)
class SweepResponse:
    """Share error, settling and floor activity over ``W × β × λ_min`` (log-normal source)."""

    #: dicts: warmup, beta, lambda_min, share_error, share_abs_error, settle, theory, floor
    rows: list
    ratio: float
    runs: int
    steps: int

    def table(self, lambda_mins=TABLE_LAMBDA_MINS) -> str:
        """Markdown table of the sweep at ``lambda_mins`` (the figure has the dense grid)."""
        lines = ["| W | β | λmin | share error (small task) | mean abs. error | settling (steps "
                 "after W) | EMA theory | floor active |",
                 "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in self.rows:
            if not any(abs(r["lambda_min"] - m) < 1e-12 for m in lambda_mins):
                continue
            lines.append(
                f"| {r['warmup']} | {r['beta']:g} | {r['lambda_min']:g} "
                f"| {r['share_error']:+.4f} | "
                f"{r['share_abs_error']:.4f} | {r['settle']} | {r['theory']} | "
                f"{100 * r['floor']:.1f} % |")
        return "\n".join(lines)

    def plot(self, fig=None):
        """Share error and floor activity vs ``λ_min`` per ``β`` (``W`` as line style)."""
        if fig is None:
            fig, axes = new_figure(1, 2, width=8.6, height=3.2)
        else:
            axes = fig.subplots(1, 2)
        betas = sorted({r["beta"] for r in self.rows})
        warmups = sorted({r["warmup"] for r in self.rows})
        styles = ["-", "--", ":"]
        for i, b in enumerate(betas):
            for j, w in enumerate(warmups):
                sel = [r for r in self.rows if r["beta"] == b and r["warmup"] == w]
                m = [r["lambda_min"] for r in sel]
                label = f"β = {b:g}" if j == 0 else None
                axes[0].plot(m, [r["share_error"] for r in sel], styles[j % 3], color=f"C{i}",
                             marker="o", ms=2.5, label=label)
                axes[1].plot(m, [100 * r["floor"] for r in sel], styles[j % 3], color=f"C{i}",
                             marker="o", ms=2.5, label=label)
        for j, w in enumerate(warmups):
            axes[1].plot([], [], styles[j % 3], color="k", label=f"W = {w}")
        axes[0].axhline(0, color="k", lw=0.6)
        axes[0].set(xlabel="λmin", ylabel="achieved share − 1/K (small task)",
                    title=f"Steady-state share error, {self.ratio:g}× log-normal")
        axes[1].set(xlabel="λmin", ylabel="floor active (% of active steps)",
                    title="Floor activity")
        axes[0].legend(fontsize=7)
        axes[1].legend(fontsize=6.5, loc="lower right", ncol=2)
        fig.suptitle(f"{self.runs} runs × {self.steps} steps per setting, g = ({self.ratio:g}, 1) "
                     f"with log-normal noise; steady-state window: the last quarter", fontsize=8)
        return fig


def sweep_response(*, ratio: float = 100.0, warmups=(0, 100, 300), betas=(0.9, 0.99, 0.999),
                   lambda_mins=(0.0, 0.01, 0.02, 0.03, 0.05, 0.07, 0.1),
                   steps: int = 6000, runs: int = 16,
                   rng: np.random.Generator | None = None) -> SweepResponse:
    """Sweep the three constants on one log-normal source (same draws for every config).

    *Share error*: mean over the steady-state window (the last quarter, later
    if the EMA has not settled to 1 % by then) and over runs of the per-step
    achieved share of task 1 minus 1/2. *Settling*: first step after ``W``
    after which the run-averaged ``λ*₁`` stays within 5 % of its move from 1/2
    to its steady-state mean; ``theory`` is the EMA's
    :func:`~gaba_control.theory.settling_steps`. *Floor active*: fraction of
    active steps with some ``λ̂_i < λ_min``.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    g = lognormal_norms([ratio, 1.0], steps, runs, rng=rng)
    rows = []
    for w in warmups:
        for b in betas:
            # steady state: the last quarter, or later if the EMA has not settled to 1 % by then
            start = min(max(w + settling_steps(b, 0.01), steps - steps // 4), steps - steps // 10)
            tail = slice(start, steps)
            for m in lambda_mins:
                tr = GABAController(2, beta=b, warmup=w, lambda_min=m).run(g)
                share = achieved_shares(tr.weights, g)[..., 1]
                err = share[:, tail] - 0.5
                mean_w = tr.weights[..., 1].mean(axis=0)
                settle = int(settling_updates(mean_w[w:], mean_w[tail].mean(), 0.5))
                rows.append({
                    "warmup": w, "beta": b, "lambda_min": m,
                    "share_error": float(err.mean()), "share_abs_error": float(np.abs(err).mean()),
                    "settle": settle, "theory": settling_steps(b, SETTLE_FRACTION),
                    "floor": float(tr.floor_active(m)[:, tr.active].mean()),
                })
    return SweepResponse(rows=rows, ratio=ratio, runs=runs, steps=steps)


# ---------------------------------------------------------------------------------------------
# Plant: the gradients respond to the weights
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PlantResponse:
    """A two-task least-squares plant trained on ``Σ λ_i L_i``, GABA vs equal weights."""

    steps: np.ndarray
    scales: tuple
    batch: int | None
    runs: int
    losses: dict  # method -> (T, 2) median task losses (relative to their minima)
    ratio: dict  # method -> (T,) median g_0/g_1
    weight_small: np.ndarray  # (T,) median λ* of task 1 (GABA)
    share_small: dict  # method -> (T,) median achieved share of task 1
    floor_fraction: float
    final: dict  # method -> dict of final medians

    def plot(self, fig=None):
        """Gradient ratio, weights/achieved share, and task losses, GABA vs equal weights."""
        if fig is None:
            fig, axes = new_figure(1, 3, width=9.6, height=3.2)
        else:
            axes = fig.subplots(1, 3)
        for method, color in (("gaba", "C0"), ("equal", "C1")):
            axes[0].semilogy(self.steps, self.ratio[method], color=color, label=method)
            axes[1].plot(self.steps, self.share_small[method], color=color,
                         label=f"achieved share, {method}")
            for i, ls in ((0, "-"), (1, "--")):
                axes[2].semilogy(self.steps, self.losses[method][:, i], ls, color=color,
                                 label=f"task {i + 1}, {method}")
        axes[1].plot(self.steps, self.weight_small, color="C2", lw=0.9, label="λ*₂ (GABA)")
        axes[1].axhline(0.5, color="k", ls=":", lw=0.8)
        batch = "full batch" if self.batch is None else f"batch {self.batch}"
        axes[0].set(xlabel="step (from 1)", ylabel="g₁/g₂ (median over runs)",
                    title=f"Plant gradients ({batch}, {self.runs} runs)")
        axes[0].yaxis.set_major_formatter(plain_log_formatter())
        axes[0].yaxis.set_minor_formatter(plain_log_formatter(minor=True))
        axes[1].set(xlabel="step (from 1)", ylabel="task 2 (small gradient)",
                    title="Weight and achieved share")
        axes[2].set(xlabel="step (from 1)", ylabel="L_i − min L_i (median)", title="Task losses")
        for ax in axes:
            ax.axvspan(0.5, PAPER["warmup"] + 0.5, color="tab:orange", alpha=0.1, lw=0)
        axes[0].legend(fontsize=6, loc="upper right")
        axes[1].legend(fontsize=6, loc="center right")
        axes[2].legend(fontsize=6, loc="center right", ncol=2)
        return fig


def plant_table(responses) -> str:
    """Final medians of plant runs (GABA and equal weights) as a Markdown table."""
    lines = ["| gradients | method | λ₁ | ratio g₀/g₁ | achieved share of task 1 | "
             "excess loss task 0 | excess loss task 1 |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for resp in responses:
        batch = "full batch" if resp.batch is None else f"minibatch {resp.batch}"
        for method, f in resp.final.items():
            lines.append(f"| {batch} | {method} | {f['weight_small']:.3f} | {f['ratio']:.3g} | "
                         f"{f['share_small']:.3f} | {f['loss'][0]:.3g} | {f['loss'][1]:.3g} |")
    return "\n".join(lines)


def _plant_problem(dim: int, rows: int, scales, rng):
    """Two least-squares tasks with different optima on a shared ``θ ∈ R^dim``."""
    X = rng.standard_normal((2, rows, dim))
    theta_star = rng.standard_normal((2, dim))
    y = np.einsum("krd,kd->kr", X, theta_star) + 0.5 * rng.standard_normal((2, rows))
    return X, y, np.asarray(scales, dtype=float)


def _plant_losses(theta, X, y, scales):
    resid = np.einsum("krd,nd->nkr", X, theta) - y  # (runs, 2, rows)
    return 0.5 * scales * (resid**2).mean(axis=-1)


def plant_response(*, scales=(100.0, 1.0), dim: int = 8, rows: int = 256, batch: int | None = 16,
                   lr: float = 0.004, steps: int = 1500, runs: int = 32,
                   beta: float = PAPER["beta"], warmup: int = PAPER["warmup"],
                   lambda_min: float = PAPER["lambda_min"],
                   rng: np.random.Generator | None = None) -> PlantResponse:
    r"""Close the loop through a toy plant (numpy only).

    Task ``i`` has ``L_i(θ) = (s_i / 2n) ‖X_i θ − y_i‖²`` on a shared ``θ``
    (different optima, so the tasks conflict; scales ``s`` make the norms
    differ by ~``s_0/s_1``). Every step each run draws a minibatch of
    ``batch`` rows per task (``None``: full batch), measures
    ``g_i = ‖∇L_i‖`` on it, asks the controller (``GABAController.step``,
    batched over runs) for ``λ*`` and takes ``θ ← θ − η Σ λ*_i ∇L_i``.
    The same draws drive an equal-weights run (``λ = 1/2``) for comparison.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    X, y, s = _plant_problem(dim, rows, scales, rng)
    optimum = np.stack([np.linalg.lstsq(X[k], y[k], rcond=None)[0] for k in range(2)])
    min_loss = _plant_losses(optimum, X, y, s).diagonal()
    theta0 = rng.standard_normal((runs, dim))
    batches = (None if batch is None
               else rng.integers(0, rows, size=(steps, runs, 2, batch)))
    out = {}
    for method in ("gaba", "equal"):
        theta = theta0.copy()
        ctrl = GABAController(2, beta=beta, warmup=warmup, lambda_min=lambda_min)
        weights, norms, losses, floor = [], [], [], []
        for t in range(steps):
            if batches is None:
                Xb = np.broadcast_to(X, (runs, *X.shape))
                yb = np.broadcast_to(y, (runs, *y.shape))
            else:
                idx = batches[t]
                Xb = X[np.arange(2)[None, :, None], idx]  # (runs, 2, batch, dim)
                yb = y[np.arange(2)[None, :, None], idx]
            resid = np.einsum("nkbd,nd->nkb", Xb, theta) - yb
            grads = s[None, :, None] * np.einsum("nkb,nkbd->nkd", resid, Xb) / Xb.shape[-2]
            g = np.linalg.norm(grads, axis=-1)
            step = ctrl.step(g)
            lam = step.weights if method == "gaba" else np.full((runs, 2), 0.5)
            theta = theta - lr * np.einsum("nk,nkd->nd", lam, grads)
            weights.append(lam)
            norms.append(g)
            losses.append(_plant_losses(theta, X, y, s) - min_loss)
            floor.append(np.any(step.ema < lambda_min, axis=-1) & step.active)
        out[method] = (np.array(weights), np.array(norms), np.array(losses), np.array(floor))
    tail = slice(steps - steps // 4, steps)
    losses, ratio, share, final = {}, {}, {}, {}
    for method, (w, g, loss, _) in out.items():
        sh = achieved_shares(w, g)[..., 1]
        losses[method] = np.median(loss, axis=1)
        ratio[method] = np.median(g[..., 0] / g[..., 1], axis=1)
        share[method] = np.median(sh, axis=1)
        final[method] = {"share_small": float(np.median(sh[tail])),
                         "weight_small": float(np.median(w[tail, :, 1])),
                         "ratio": float(np.median(g[tail, :, 0] / g[tail, :, 1])),
                         "loss": np.median(loss[tail], axis=(0, 1))}
    w_gaba, _, _, floor_gaba = out["gaba"]
    return PlantResponse(
        steps=np.arange(1, steps + 1), scales=tuple(scales), batch=batch, runs=runs,
        losses=losses, ratio=ratio, weight_small=np.median(w_gaba[..., 1], axis=1),
        share_small=share, floor_fraction=float(floor_gaba[warmup:].mean()), final=final)


IDENTIFIED = results_dir() / "identify/plants.csv"


@dataclass(frozen=True)
class IdentifiedPlantResponse:
    """GABA against constant imbalances through an identified plant and through none."""

    label: str
    lam0: float
    elasticity: float
    ratios: np.ndarray
    lambda_mins: np.ndarray
    final_weight: dict  # "plant"/"none" -> (lambda_mins, ratios) final λ*_1
    final_ratio: dict  # -> final R = g_1/g_2 the controller reads
    final_share: dict  # -> final achieved share of task 1

    def table(self) -> str:
        lines = [f"### Identified plant {self.label} (elasticity P(1) = {self.elasticity:.3g}): "
                 "final λ*_RUL, ratio R and achieved RUL share under a constant imbalance r", "",
                 "| λ_min | imbalance r | λ* (plant) | λ* (none) | R (plant) | "
                 "share (plant) | share (none) |", "| --- | --- | --- | --- | --- | --- | --- |"]
        for i, lm in enumerate(self.lambda_mins):
            for j, r in enumerate(self.ratios):
                lines.append(
                    f"| {lm:g} | {r:g} | {self.final_weight['plant'][i, j]:.4g} | "
                    f"{self.final_weight['none'][i, j]:.4g} | {self.final_ratio['plant'][i, j]:.4g}"
                    f" | {self.final_share['plant'][i, j]:.3f} | "
                    f"{self.final_share['none'][i, j]:.3f} |")
        return "\n".join(lines)


def load_identified_plants(path: Path = IDENTIFIED) -> list[dict]:
    """The committed identified models (``plants.csv`` rows with a model), or ``[]``."""
    import csv

    if not Path(path).is_file():
        return []
    with open(path, newline="") as handle:
        return [row for row in csv.DictReader(handle) if row.get("numerator")]


def identified_plant_response(numerator, denominator, lam0: float, *, label: str = "",
                              ratios=(10.0, 100.0, 500.0, 2400.0), lambda_mins=(0.0, 0.05),
                              steps: int = 3000) -> IdentifiedPlantResponse:
    """Close GABA over ``P = numerator/denominator`` (powers of ``q⁻¹``) for constant ``r``.

    The disturbance is ``d = log r``; with the plant the controller reads
    ``log R = d + P u``, ``u = log(λ*_1/λ₀)``; without it, ``log R = d``
    (the constant-imbalance source of this study).
    """
    from gaba_control.plant.loop import simulate_closed_loop

    num, den = np.asarray(numerator, float), np.asarray(denominator, float)
    ratios, lambda_mins = np.asarray(ratios, float), np.asarray(lambda_mins, float)
    weight = {k: np.empty((lambda_mins.size, ratios.size)) for k in ("plant", "none")}
    ratio = {k: np.empty_like(weight["plant"]) for k in ("plant", "none")}
    share = {k: np.empty_like(weight["plant"]) for k in ("plant", "none")}
    d = np.repeat(np.log(ratios)[:, None], steps, axis=1)  # one run per ratio, side by side
    for i, lm in enumerate(lambda_mins):
        for key, plant in (("plant", (num, den)), ("none", ([0.0, 0.0], [1.0]))):
            w, y = simulate_closed_loop(plant, d, lambda0=lam0, lambda_min=float(lm),
                                        warmup=PAPER["warmup"])
            for j in range(ratios.size):
                g = np.array([np.exp(y[j, -1]), 1.0])
                weight[key][i, j] = w[j, -1, 0]
                ratio[key][i, j] = g[0]
                share[key][i, j] = achieved_shares(w[j, -1], g)[0]
    return IdentifiedPlantResponse(label, float(lam0), float(num.sum() / den.sum()), ratios,
                                   lambda_mins, weight, ratio, share)


# ---------------------------------------------------------------------------------------------
# Decimated sensor
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DecimatedSensorResponse:
    """Extra λ noise when the sensor is refreshed every ``N`` steps (``β^N`` per refresh)."""

    every: np.ndarray
    std_ratio_sim: np.ndarray  # std of the EMA (small task) vs N = 1
    std_ratio_theory: np.ndarray  # sqrt(noise_gain(N)/noise_gain(1))
    deviation_sim: np.ndarray  # mean |λ̂_N − λ̂_1| / mean λ̂_1 (EMA of the small-weight task)
    deviation_theory: np.ndarray  # Gaussian approximation √(2/π)·rms from the impulse responses
    rms_deviation_sim: np.ndarray  # rms(λ̂_N − λ̂_1) / mean λ̂_1
    rms_deviation_theory: np.ndarray  # exact for i.i.d. raw weights (linear filters)
    weight_deviation_sim: np.ndarray  # the same for the floored output λ*
    ratio: float
    beta: float
    runs: int
    steps: int
    every_dense: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    rms_theory_dense: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def plot(self, ax=None):
        """Relative deviation from the per-step loop vs ``N``: simulation (markers) and the
        theory on every integer N (lines)."""
        if ax is None:
            fig, ax = new_figure(width=6.4, height=3.4)
        else:
            fig = ax.figure
        dense = self.every_dense.size > 0
        n_th = self.every_dense if dense else self.every
        rms_th = self.rms_theory_dense if dense else self.rms_deviation_theory
        ax.plot(self.every, 100 * self.rms_deviation_sim, "o", label="rms, EMA λ̂ (simulation)")
        ax.plot(n_th, 100 * rms_th, "C0-", lw=1, label="rms, theory (exact, i.i.d. raw)")
        ax.plot(self.every, 100 * self.deviation_sim, "^", ms=4,
                label="mean |·|, EMA λ̂ (simulation)")
        ax.plot(n_th, 100 * np.sqrt(2 / np.pi) * rms_th, "C1:", lw=1,
                label="mean |·|, Gaussian approx. √(2/π)·rms")
        ax.plot(self.every, 100 * self.weight_deviation_sim, "s", ms=4,
                label="mean |·|, output λ* (simulation; floored)")
        ax.set(xscale="log", xlabel="refresh every N steps",
               ylabel="deviation from the per-step loop (% of mean)",
               title=f"Decimated sensor, {self.ratio:g}× log-normal (CV 0.65), β = {self.beta:g}, "
                     f"{self.runs} runs × {self.steps} steps")
        ax.xaxis.set_major_formatter(plain_log_formatter())
        ax.legend(fontsize=6.5, loc="upper left")
        return fig


def _decimation_deviation_theory(beta: float, every: int, length: int) -> float:
    """Per unit input variance: mean over refresh phases of ``Σ_k (h_N,o[k] − h_1[k])²``.

    ``h_1[k] = (1−β)β^k`` is the per-step EMA; the decimated EMA held ``o``
    steps after its last refresh weights input ``k = o + jN`` steps back by
    ``(1−β^N)β^{Nj}``.
    """
    k = np.arange(length)
    h1 = (1 - beta) * beta**k
    pole = formulas.decimated_beta(beta, every)
    total = 0.0
    for o in range(every):
        hn = np.zeros(length)
        j = np.arange((length - o + every - 1) // every)
        hn[o + j * every] = (1 - pole) * pole**j
        total += np.sum((hn - h1) ** 2)
    return total / every


def decimated_sensor_response(every=(1, 5, 10, 50), *, ratio: float = 500.0,
                              beta: float = PAPER["beta"], steps: int = 6000, runs: int = 32,
                              rng: np.random.Generator | None = None) -> DecimatedSensorResponse:
    """Same norms, read every step or every ``N``; deviations of the small weight.

    The comparison uses the EMA state (a linear filter of the i.i.d. raw
    weights, so the theory is exact up to the Gaussian approximation of the
    mean absolute deviation) and also reports the floored output.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    every = np.asarray(every, dtype=int)
    g = lognormal_norms([ratio, 1.0], steps, runs, rng=rng)
    warmup = PAPER["warmup"]
    burn = warmup + 15 * int(np.ceil(1 / (1 - beta)))  # the start at 1/K must be forgotten
    res = {int(n): simulate_decimated(g, 2, beta=beta, every=int(n), warmup=warmup,
                                      lambda_min=PAPER["lambda_min"]) for n in every}
    base = res[1] if 1 in res else simulate_decimated(g, 2, beta=beta, every=1, warmup=warmup)
    ema1, w1 = base.ema[:, burn:, 0], base.weights[:, burn:, 0]
    raw = formulas.raw_weights(g)[:, burn:, 0]
    sigma_x, mean_x = float(raw.std()), float(raw.mean())
    std1 = float(ema1.std())
    std_sim, std_th, dev_sim, dev_th, wdev, rms_sim, rms_th = [], [], [], [], [], [], []
    for n in every:
        r = res[int(n)]
        emaN, wN = r.ema[:, burn:, 0], r.weights[:, burn:, 0]
        std_sim.append(float(emaN.std()) / std1)
        std_th.append(np.sqrt(decimated_noise_gain(beta, int(n)) / decimated_noise_gain(beta, 1)))
        dev_sim.append(float(np.abs(emaN - ema1).mean() / ema1.mean()))
        length = 20 * int(np.ceil(1 / (1 - beta))) + 50 * int(n)
        var_d = _decimation_deviation_theory(beta, int(n), length)
        rms_sim.append(float(np.sqrt(np.mean((emaN - ema1) ** 2)) / ema1.mean()))
        rms_th.append(sigma_x * np.sqrt(var_d) / mean_x)
        dev_th.append(np.sqrt(2 / np.pi) * rms_th[-1])
        wdev.append(float(np.abs(wN - w1).mean() / w1.mean()))
    dense = np.unique(np.geomspace(1, every.max(), 24).round().astype(int))
    rms_dense = [sigma_x * np.sqrt(_decimation_deviation_theory(
        beta, int(n), 20 * int(np.ceil(1 / (1 - beta))) + 50 * int(n))) / mean_x for n in dense]
    return DecimatedSensorResponse(
        every=every, std_ratio_sim=np.array(std_sim), std_ratio_theory=np.array(std_th),
        deviation_sim=np.array(dev_sim), deviation_theory=np.array(dev_th),
        weight_deviation_sim=np.array(wdev), rms_deviation_sim=np.array(rms_sim),
        rms_deviation_theory=np.array(rms_th), ratio=ratio, beta=beta, runs=runs, steps=steps,
        every_dense=dense, rms_theory_dense=np.array(rms_dense))


# ---------------------------------------------------------------------------------------------
# Claims and run
# ---------------------------------------------------------------------------------------------
def _verdict(ok: bool) -> str:
    return "holds" if ok else "refuted"


def trace_summary(trace) -> dict | None:
    """Post-warmup medians of a real trace: the small-gradient task's weight and achieved share."""
    if trace is None:
        return None
    g = np.asarray(trace.grad_norms, dtype=float)
    w = np.asarray(trace.weights, dtype=float)
    post = np.asarray(trace.active, dtype=bool) & np.asarray(trace.valid, dtype=bool)
    if not post.any():
        return None
    g, w = g[post], w[post]
    small = int(np.argmin(np.median(g, axis=0)))
    m = float(trace.controller["lambda_min"])
    return {"small": small, "steps": int(post.sum()),
            "ratio": float(np.median(g.max(axis=-1) / g.min(axis=-1))),
            "weight_small": float(np.median(w[:, small])),
            "share_small": float(np.median(achieved_shares(w, g)[:, small])),
            "floor": float(np.mean(np.any(np.asarray(trace.ema, dtype=float)[post] < m, axis=-1)))}


def _real(summary: dict | None, what: str) -> str:
    if summary is None:
        return "no trace given"
    return (f"{summary['steps']} active steps, median ratio {summary['ratio']:.3g}: median "
            f"{what} of the small-gradient task {summary[what + '_small']:.4f} "
            f"(floor active {100 * summary['floor']:.0f} %)")


def _claims(const: ConstantImbalanceResponse, start: StartupResponse, one_step: dict,
            fixed_point: float, plant: PlantResponse, deci: DecimatedSensorResponse,
            real: dict | None = None) -> list[Claim]:
    claims = []
    legacy_dev = start.legacy_deviation
    outside = start.outside_band()
    in_band = not outside
    claims += [
        Claim(claim="seed 000's milestone table is what np.random.seed(0) + randn gives",
              source="seed 000", theory="—",
              simulation=f"legacy replay: max deviation {legacy_dev:.2e} over the 9 milestones",
              real_run="—", tolerance=f"{PRINT_ATOL:g} (6 printed decimals)",
              verdict=_verdict(legacy_dev <= PRINT_ATOL),
              evidence="the table depends on the RNG stream; see the distribution row"),
        Claim(claim="seed 000's milestone values are consistent with its synth source",
              source="seed 000", theory="—",
              simulation=f"every milestone inside the 99 % band over {start.runs} seeds"
                         + ("" if in_band else f" except t = {outside}"),
              real_run="—", tolerance="0.5–99.5 % quantiles", verdict=_verdict(in_band)),
        Claim(claim="step 200 of the start-up is halfway to steady state",
              source="seed 000",
              theory=f"EMA: 1 − β^{200 + 1 - PAPER['warmup']} = {start.ema_progress_200:.3f} "
                     "of the gap",
              simulation=f"mean λ*_rul has covered {start.progress_200:.3f} of its way "
                         f"(0.5 → {start.steady:.4f})",
              real_run="—", tolerance="0.5 ± 0.1",
              verdict=_verdict(abs(start.progress_200 - 0.5) <= 0.1),
              evidence="the floor makes λ* settle faster than the EMA"),
    ]
    i_m = int(np.argmin(np.abs(const.lambda_mins - PAPER["lambda_min"])))
    idx = {r: int(np.argmin(np.abs(const.ratios - r))) for r in (50, 500, 2400)}
    floored = {r: float(const.final_small[i_m, j]) for r, j in idx.items()}
    raw = {r: float(const.raw_small[j]) for r, j in idx.items()}
    claims.append(Claim(
        claim="at 50×, 500× and 2,400× GABA assigns ~95 % weight to health",
        source="seed 004",
        theory="raw λ_health = r/(1+r): " + ", ".join(f"{raw[r]:.4f}" for r in raw),
        simulation="steady-state λ*_health (λmin = 0.05): "
                   + ", ".join(f"{floored[r]:.4f}" for r in floored),
        real_run=_real(real, "weight"), tolerance="±0.01",
        verdict=_verdict(all(abs(v - 0.95) <= 0.01 for v in floored.values())),
        evidence="true of the floored output only; the raw law gives 98.0–99.96 %"))
    j500 = idx[500]
    claims.append(Claim(
        claim="λ_health converges to ≈ 0.995–0.998 at a 500× imbalance",
        source="seed 004 (main.tex:647, Pitfall 2)",
        theory=f"raw/EMA {raw[500]:.4f}; output bound 1/(1+λmin) = {1 / 1.05:.4f}",
        simulation=f"λ*_health = {floored[500]:.4f}", real_run="—", tolerance="±0.005",
        verdict=_verdict(abs(floored[500] - 0.995) <= 0.005),
        evidence="holds for the EMA state, not for the weight the loss uses"))
    claims.append(Claim(
        claim="equal gradients are a fixed point (λ = 1/K)", source="seed 004",
        theory="e = 0 ⇒ λ_raw = 1/K",
        simulation=f"K = 2, 3, 5, 8, 1000 steps: max |λ* − 1/K| = {fixed_point:.1e}",
        real_run="—", tolerance="1e-12", verdict=_verdict(fixed_point <= 1e-12)))
    claims += [
        Claim(claim="K_p = 1/(K−1) zeroes the share error in one step if applied directly (K = 2)",
              source="seed 004", theory="λ_i ∝ g_j ⇒ λ_1g_1 = λ_2g_2",
              simulation=f"2000 random g: max |achieved share − 1/2| = {one_step[2]['max']:.1e}",
              real_run="—", tolerance=f"{ONE_STEP_ATOL:g} (rounding)",
              verdict=_verdict(one_step[2]["max"] <= ONE_STEP_ATOL)),
        Claim(claim="… and for K ≥ 3", source="seed 004",
              theory="λ_i g_i ∝ g_i(Σg − g_i): not constant in i",
              simulation="max |achieved share − 1/K|: " + ", ".join(
                  f"K = {k}: {one_step[k]['max']:.3f}" for k in sorted(one_step) if k > 2)
              + f"; λ ∝ 1/g gives {max(v['inverse_max'] for v in one_step.values()):.0e}",
              real_run="—", tolerance=f"{ONE_STEP_ATOL:g}",
              verdict=_verdict(all(v["max"] <= ONE_STEP_ATOL
                                   for k, v in one_step.items() if k > 2)),
              evidence="only inverse-gradient weights equalise λ_i g_i for K ≥ 3"),
    ]
    share500 = float(const.final_share_small[i_m, j500])
    unsat = const.ratios < 1 / PAPER["lambda_min"] - 1  # raw small weight > λ_min: no floor
    err_unsat = float(np.max(np.abs(const.final_share_small[i_m, unsat] - 0.5)))
    claims += [
        Claim(claim="a P-only loop keeps a steady-state share error (the share stays strictly "
                    "between the open-loop value and 1/K)",
              source="seed 004 (Pitfall 4)",
              theory="constant g, K = 2: EMA DC gain 1 ⇒ λ̂ → λ_raw ⇒ λ_1g_1 = λ_2g_2",
              simulation=f"unsaturated ratios < {1 / PAPER['lambda_min'] - 1:g}×: "
                         f"max |share − 1/2| = {err_unsat:.1e} after {const.steps[-1]} steps; "
                         f"at 500× with the floor: {share500:.4f}",
              real_run="—", tolerance="1e-3",
              verdict=_verdict(err_unsat > 1e-3),
              evidence="no error without the floor (K = 2); the error comes from the saturation"),
        Claim(claim="GABA equalises the tasks' contributions at a 500× imbalance",
              source="seed 004 ('equalising effective contributions on the shared backbone')",
              theory=f"floored λ*: share_small = λ*_1/(λ*_0·r + λ*_1) = {share500:.4f}",
              simulation=f"plant (scales {plant.scales[0]:g}:{plant.scales[1]:g}, minibatch): "
                         f"achieved share {plant.final['gaba']['share_small']:.3f} "
                         f"(equal weights {plant.final['equal']['share_small']:.3f})",
              real_run=_real(real, "share"), tolerance="|share − 1/2| ≤ 0.05",
              verdict=_verdict(abs(share500 - 0.5) <= 0.05),
              evidence=f"with λmin = 0.05 the floor caps the correction: the small task gets "
                       f"{100 * share500:.1f} % of the weighted gradient, not 50 %"),
    ]
    n_idx = {int(n): i for i, n in enumerate(deci.every)}

    def per_n(values, fmt):
        return ", ".join(fmt.format(values[i]) for n, i in n_idx.items() if n > 1)

    claims.append(Claim(
        claim="refreshing every N steps with β^N keeps the time constant but adds λ noise "
              "≈ (1−β^N)/(1+β^N) vs (1−β)/(1+β)",
        source="notes/gradient-cost.md",
        theory="std ratio " + ", ".join(f"N = {n}: {deci.std_ratio_theory[i]:.2f}"
                                        for n, i in n_idx.items() if n > 1),
        simulation="std ratio " + ", ".join(f"N = {n}: {deci.std_ratio_sim[i]:.2f}"
                                            for n, i in n_idx.items() if n > 1)
                   + "; rms deviation from the per-step EMA "
                   + per_n(100 * deci.rms_deviation_sim, "{:.0f} %")
                   + " (theory " + per_n(100 * deci.rms_deviation_theory, "{:.0f} %")
                   + "); mean |deviation| " + per_n(100 * deci.deviation_sim, "{:.0f} %"),
        real_run="notes report a real run (not reproduced here)", tolerance="15 % relative",
        verdict=_verdict(bool(
            np.all(np.abs(deci.std_ratio_sim / deci.std_ratio_theory - 1) <= 0.15)
            and np.all(np.abs(deci.rms_deviation_sim[1:] / deci.rms_deviation_theory[1:] - 1)
                       <= 0.15))),
        evidence=f"{deci.ratio:g}× log-normal norms with CV 0.65, EMA of the small weight"))
    return claims


def _fixed_point_error(steps: int = 1000) -> float:
    worst = 0.0
    for k in (2, 3, 5, 8):
        tr = GABAController(k, **PAPER).run(np.full((steps, k), 3.7))
        worst = max(worst, float(np.abs(tr.weights - 1 / k).max()))
    return worst


def run(outdir: Path, *, seed: int, trace, quick: bool) -> Study:
    """Compute the closed-loop study, save its figures, return the :class:`Study`."""
    rng = np.random.default_rng(seed)
    const = constant_imbalance_response(steps=1000 if quick else 1500)
    start = startup_response(runs=200 if quick else 600, steady_steps=1000 if quick else 1500,
                             rng=rng)
    switching = switching_response(runs=8 if quick else 48, rng=rng)
    if quick:
        sweep = sweep_response(warmups=(0, 100), betas=(0.9, 0.99), lambda_mins=(0.0, 0.05),
                               steps=1500, runs=4, rng=rng)
    else:
        sweep = sweep_response(runs=8, rng=rng)
    plant = plant_response(steps=500 if quick else 1000, runs=4 if quick else 16, rng=rng)
    plant_full = plant_response(batch=None, steps=300 if quick else 600, runs=2 if quick else 4,
                                rng=rng)
    deci = decimated_sensor_response(steps=8000 if quick else 12000, runs=12 if quick else 24,
                                     rng=rng)
    one_step = {k: one_step_share_error(k, rng=rng) for k in (2, 3, 5, 8)}
    fixed = _fixed_point_error(300 if quick else 1000)
    figures = []
    figures += save_figure(const.plot(), outdir, "closed_loop_constant")
    figures += save_figure(start.plot(), outdir, "closed_loop_startup")
    figures += save_figure(switching.plot(), outdir, "closed_loop_switching")
    figures += save_figure(sweep.plot(), outdir, "closed_loop_sweep")
    figures += save_figure(plant.plot(), outdir, "closed_loop_plant")
    figures += save_figure(deci.plot(), outdir, "closed_loop_decimated")
    # each plant where the loop operates: the unfloored state (λ₀ = 0.002) without a floor,
    # GABA's floor (λ₀ = 0.05) with λ_min = 0.05
    regimes = {0.002: (0.0,), 0.05: (PAPER["lambda_min"],)}
    identified = [identified_plant_response(
        [float(c) for c in row["numerator"].split()],
        [float(c) for c in row["denominator"].split()], float(row["lam0"]),
        label=f"{row['subset']} λ₀ = {float(row['lam0']):g}",
        lambda_mins=regimes[float(row["lam0"])], steps=1500 if quick else 3000)
        for row in load_identified_plants() if float(row["lam0"]) in regimes]
    i_m = int(np.argmin(np.abs(const.lambda_mins - PAPER["lambda_min"])))
    j500 = int(np.argmin(np.abs(const.ratios - 500)))
    no_floor = [r["share_error"] for r in sweep.rows
                if r["lambda_min"] == 0.0 and r["beta"] == PAPER["beta"]]
    noise_bias = float(np.mean(no_floor)) if no_floor else float("nan")
    summary = (
        f"Without the floor the K = 2 loop equalises the weighted gradient exactly at steady state "
        f"for any constant imbalance; with λmin = {PAPER['lambda_min']} the floor binds above "
        f"{1 / PAPER['lambda_min'] - 1:g}× and the small-gradient task's achieved share drops to "
        f"{const.final_share_small[i_m, j500]:.4f} at 500× (reference 0.5) while its weight is "
        f"{const.final_small[i_m, j500]:.4f}: saturated, the controller stops balancing. "
        f"Under log-normal noise (CV 0.65, {sweep.ratio:g}×) even without the floor the small "
        f"task's achieved share is off by {noise_bias:+.3f}: the EMA averages λ_raw, a convex "
        f"function of the ratio, so the large task is over-weighted; W only delays the loop. "
        f"Seed 000's start-up table is not reproduced by np.random.seed(0) draws "
        f"(max deviation {start.legacy_deviation:.1e}); "
        f"at step 201 (the seed's t = 200) the mean λ*_rul has covered "
        f"{start.progress_200:.2f} of its way, not half. "
        f"In the toy plant (two conflicting least-squares tasks, scales "
        f"{plant.scales[0]:g}:{plant.scales[1]:g}) the achieved share of the small task is "
        f"{plant.final['gaba']['share_small']:.3f} with GABA vs "
        f"{plant.final['equal']['share_small']:.3f} "
        f"with equal weights (minibatch {plant.batch}), at the price of task 0's excess loss "
        f"({plant.final['gaba']['loss'][0]:.3g} vs {plant.final['equal']['loss'][0]:.3g}; task 1: "
        f"{plant.final['gaba']['loss'][1]:.3g} vs {plant.final['equal']['loss'][1]:.3g}); "
        f"on the full batch the optimiser itself "
        f"drives λ_1g_1 = λ_2g_2 ({plant_full.final['gaba']['share_small']:.3f} GABA, "
        f"{plant_full.final['equal']['share_small']:.3f} equal). A sensor read every N = "
        + ", ".join(str(int(n)) for n in deci.every[1:])
        + " steps (β^N per refresh) moves the small weight's EMA away from the per-step loop by "
        + ", ".join(f"{100 * d:.0f} %" for d in deci.rms_deviation_sim[1:])
        + " rms (theory " + ", ".join(f"{100 * d:.0f} %" for d in deci.rms_deviation_theory[1:])
        + "), mean |deviation| " + ", ".join(f"{100 * d:.0f} %" for d in deci.deviation_sim[1:])
        + f", at {deci.ratio:g}× with CV 0.65 norms; the floored output barely moves ("
        + ", ".join(f"{100 * d:.2f} %" for d in deci.weight_deviation_sim[1:]) + ").")
    title = "The closed loop: sources, a plant, and what is balanced"
    p = PAPER
    setting = f"β = {p['beta']:g}, W = {p['warmup']}, λmin = {p['lambda_min']:g}"
    captions = {
        "closed_loop_constant": (
            f"The loop ({setting} unless a curve says otherwise) on constant gradients "
            f"g = (r, 1): the small-gradient task's steady weight and achieved share against "
            f"the imbalance r (lines: analytic steady state floor_renormalise(raw weights); "
            f"markers: the simulated loop at step {const.steps[-1]}, {const.ratios.size} ratios; "
            f"dotted: where each floor starts to bind, r = 1/λmin − 1), and trajectories at "
            f"four ratios."),
        "closed_loop_startup": (
            f"Seed 000's start-up scenario ({setting}) over {start.runs} independent seeds "
            f"(99 % band, median), the np.random.seed(0) replay and the seed's printed table; "
            f"bottom: each against the median, where the band's width and the table's "
            f"deviation (max {start.legacy_deviation:.1e} from the replay) are visible."),
        "closed_loop_switching": (
            f"Regime switching ({setting}): the imbalance steps through "
            f"{', '.join(f'{r:g}' for r in np.unique(switching.ratio))}× (dotted, right axis) with "
            f"log-normal noise, {switching.runs} runs (5–95 % bands, medians): weight and achieved "
            f"share of the small-gradient task against the unweighted share."),
        "closed_loop_sweep": (
            f"Steady-state share error of the small-gradient task and the fraction of active "
            f"steps with the floor binding, against λmin on a grid of "
            f"{len({r['lambda_min'] for r in sweep.rows})} values, for each β and W "
            f"(g = ({sweep.ratio:g}, 1) with log-normal noise, {sweep.runs} runs × "
            f"{sweep.steps} steps per setting; window: the last quarter)."),
        "closed_loop_plant": (
            f"The loop closed through a toy plant (two conflicting least-squares tasks, loss "
            f"scales {plant.scales[0]:g}:{plant.scales[1]:g}, minibatch {plant.batch}, "
            f"{plant.runs} runs, medians; {setting}), GABA against equal weights; shaded: the "
            f"warmup."),
        "closed_loop_decimated": (
            f"A sensor read every N steps (β^N per refresh) against the per-step loop: "
            f"deviation of the small weight's EMA (rms and mean absolute; markers simulated, "
            f"{deci.runs} runs × {deci.steps} steps at {deci.ratio:g}× log-normal, lines the "
            f"exact linear-filter theory on every N) and of the floored output."),
    }
    finding = Finding(
        f"With λmin = {p['lambda_min']:g} the floor binds above "
        f"{1 / p['lambda_min'] - 1:g}× imbalance and then the loop stops balancing: at 500× the "
        f"small-gradient task gets {const.final_share_small[i_m, j500]:.3f} of the weighted "
        f"gradient, not 1/K = 0.5 (K = 2, steady state, analytic and simulated alike).",
        figure="closed_loop_constant")
    claims = _claims(const, start, one_step, fixed, plant, deci, trace_summary(trace))
    return Study(name="closed_loop", title=title,
                 summary=summary + " See {fig:closed_loop_constant}–{fig:closed_loop_decimated}.",
                 figures=figures, claims=claims, captions=captions, findings=[finding],
                 tables=[f"### Constant imbalance g = (r, 1): steady state at step "
                         f"{const.steps[-1]} per λmin\n\n" + const.table(),
                         "### Seed 000's start-up table against the replay and the "
                         "distribution over seeds\n\n" + start.milestone_table(),
                         f"### Sweep of W, β and λmin on a {sweep.ratio:g}× log-normal source "
                         f"({sweep.runs} runs × {sweep.steps} steps; window: the last "
                         f"quarter)\n\n" + sweep.table(),
                         "### The toy plant: final medians, GABA against equal weights\n\n"
                         + plant_table([plant, plant_full]),
                         *(r.table() for r in identified)])
