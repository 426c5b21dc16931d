"""Loop variants on the identified plant: what each swapped block changes, and what it cannot.

Every variant of :mod:`gaba_control.weighting` (GABA's loop with one block
swapped) is analysed the same way, at two floors (GABA's ``λ_min = 0.05`` and
the unsaturated ``0.001``), with nothing but its law:

* **derived properties** by simulation of the law against closed forms: the
  steady state on the committed FD002 operating point, the steady-state error
  of the weighted shares for three tasks, the recovery after windup;
* **the linearised loop on the identified FD002 plant**: the controller's
  small-signal response ``C(e^{jω}) = −δu/δy`` is measured from the law itself
  (a step of ``10⁻⁶`` in ``log R`` at its steady state), so every variant is
  linearised by the same code; ``L = C·P``, ``S = 1/(1+L)``, margins;
* **predictions on real readings**: the law run on the open-loop twin runs of
  the identification (``d`` = what training would have read at the operating
  point), once as replay (``log R = d``) and once closed over the identified
  plant (``log R = d + P u``): floor-active fraction, the RUL task's weighted
  share, the λ noise;
* **real runs** (``results/variants/*``, when committed): FD002 × 10 seeds of
  the chosen variants and their own open-loop schedules, paired against GABA.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._common import Claim, Finding, Study, new_figure, results_dir, save_figure

__all__ = ["DESIGNS", "VARIANTS", "VariantsResponse", "controller_frequency_response",
           "variants_response"]

#: the methods analysed, GABA first (its law is the unchanged pipeline)
VARIANTS = ("gaba", "gaba_antiwindup", "gaba_inverse", "gaba_integral", "gaba_log_ema")
#: for two tasks ``gaba_relative_floor`` at ``ρ = 2·λ_min`` is GABA's law itself (tested), so
#: it is analysed only where it differs: the admissible floors across K
#: the two floors every variant is analysed at, as (label, floor for K = 2)
DESIGNS = (("floor 0.05", 0.05), ("floor 0.001", 0.001))
CONTROLLER = {"num_tasks": 2, "beta": 0.99, "warmup": 100, "lambda_min": 0.05}
#: the three-task reading of the steady-state error (a geometric imbalance)
THREE_TASKS = (100.0, 10.0, 1.0)
#: the real runs of this study: directory under results/variants → (method label, what)
REAL_RUNS = {"integral": "gaba_integral", "integral_open": "gaba_integral (open loop)",
             "antiwindup": "gaba_antiwindup", "schedule": "schedule"}
OMEGA = np.logspace(-4, np.log10(np.pi), 300)
BAND = (0.0, 0.1)  # the identification's band (rad/step)


def variant_law(name: str, floor: float, num_tasks: int = 2):
    """The law of ``name`` (``"gaba"``: the unchanged :class:`LoopLaw`) with the given floor."""
    from gaba_control.weighting import LoopLaw, get_method

    c = {**CONTROLLER, "num_tasks": num_tasks}
    if name == "gaba":
        return LoopLaw(num_tasks, beta=c["beta"], warmup=c["warmup"], floor=floor)
    return get_method(name)(c, floor_fraction=floor * num_tasks).law()


def _run_law(law, g: np.ndarray) -> np.ndarray:
    from gaba_control.weighting import law_weights

    return law_weights(law, g, np.ones_like(g))


def _controller(law):
    """``g (2,) → weights`` of one run of ``law``, for :func:`simulate_closed_loop`."""
    from gaba_control.weighting import LawSimulator

    sim = LawSimulator(law, (law.num_tasks,))
    one = np.ones(law.num_tasks)
    return lambda g: sim.step(g, one)


def controller_frequency_response(law, ratio: float, omega=OMEGA, *, settle: int = 2000,
                                  length: int = 2000, delta: float = 1e-6) -> np.ndarray:
    """``C(e^{jω}) = −δu/δy`` of ``law`` linearised at the constant reading ``g = (R, 1)``.

    ``y = log(g_1/g_2)``, ``u = log λ*_1``. Measured from the law: after
    ``settle`` steps at ``R`` (past its warmup), the reading of a second run
    steps to ``R·e^δ``; the difference of the two runs' ``u`` divided by ``δ``
    is the step response, its first difference the impulse response ``h``, and
    ``C = −Σ_n h_n e^{−jωn}`` (``h`` must have decayed within ``length`` steps).

    Examples
    --------
    >>> from gaba_control.weighting import LoopLaw
    >>> law = LoopLaw(2, beta=0.9, warmup=0, floor=0.0)
    >>> c = controller_frequency_response(law, 3.0, [1e-6], settle=200, length=300)
    >>> round(float(c[0].real), 4)  # the P-law's gain k = s₁ = R/(1+R), EMA DC gain 1
    0.75
    """
    return _linearise(law, ratio, omega, settle=settle, length=length, delta=delta)[0]


def _linearise(law, ratio: float, omega=OMEGA, *, settle: int = 2000, length: int = 2000,
               delta: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """:func:`controller_frequency_response` and the law's weights after ``settle + length``
    steps at the constant reading (its steady state, from the same unperturbed run)."""
    g = np.tile([ratio, 1.0], (settle + length, 2, 1))  # (T, 2 runs, K)
    g[settle:, 1, 0] *= math.exp(delta)
    w = _run_law(law, g)
    u = np.log(w[settle - 1:, :, 0])
    step = (u[:, 1] - u[:, 0]) / delta
    h = np.diff(step)  # h[0]: the answer at the step the reading moved (one step of delay: 0)
    n = np.arange(h.size)
    return -np.exp(-1j * np.outer(np.asarray(omega, float), n)) @ h, w[-1, 0]


@dataclass(frozen=True)
class Plant:
    """An identified plant (``plants.csv``): ``P = numerator/denominator`` in powers of ``q⁻¹``."""

    subset: str
    lam0: float
    numerator: np.ndarray
    denominator: np.ndarray
    ratio_median: float

    def response(self, omega) -> np.ndarray:
        z = np.exp(-1j * np.asarray(omega, float))
        num = np.polyval(self.numerator[::-1], z)
        den = np.polyval(self.denominator[::-1], z)
        return num / den

    @property
    def dc_gain(self) -> float:
        return float(self.numerator.sum() / self.denominator.sum())

    def simulate(self, u) -> np.ndarray:
        from scipy.signal import lfilter

        return lfilter(self.numerator, self.denominator, np.asarray(u, float))


def load_plants(path: Path) -> list[Plant]:
    """The identified models of ``plants.csv`` (rows with a model); ``[]`` without the file."""
    from .closed_loop import load_identified_plants

    rows = load_identified_plants(Path(path))
    return [Plant(r["subset"], float(r["lam0"]), np.array(r["numerator"].split(), float),
                  np.array(r["denominator"].split(), float), float(r["ratio_median"]))
            for r in rows]


@dataclass
class Row:
    """Everything measured for one (variant, design)."""

    variant: str
    design: str
    floor: float
    steady_weight: float  # λ*_1 under the constant reading R (FD002 median)
    steady_share: float  # the health task's weighted share there
    three_task_error: float  # max |w_i − 1/3| at THREE_TASKS, floor 0
    recovery_steps: int  # steps to leave the floor after windup (WOUND_RATIO → RECOVERY_RATIO)
    loop_dc: float  # L(1) on the identified plant
    loop_band_max: float  # max |L| over the band
    sensitivity_dc: float  # S(1)
    phase_margin: float  # degrees (inf: |L| < 1 everywhere)
    predicted: dict = field(default_factory=dict)  # "replay"/"plant" → summary


def _paired(values: dict, reference: dict) -> dict:
    """Test RMSE ``values − reference`` over their common seeds (``seed → value``): ``n``,
    the mean of ``values``, the mean difference with its 95 % t interval, the paired t-test
    ``p`` and the TOST ``p_tost`` at ±1 cycle."""
    from .compare import equivalence_test, paired_statistics

    seeds = sorted(set(values) & set(reference))
    a = [float(values[s]) for s in seeds]
    b = [float(reference[s]) for s in seeds]
    st, tost = paired_statistics(a, b), equivalence_test(a, b, 1.0)
    return {"n": len(seeds), "mean": float(np.mean(a)) if a else math.nan, "diff": st["mean"],
            "low": st["ci_low"], "high": st["ci_high"], "p": st["t_p"], "p_tost": tost["p"]}


@dataclass
class VariantsResponse:
    """The variants' analysis (:func:`variants_response`); ``plot()`` draws the loop gains."""

    rows: list[Row]
    omega: np.ndarray
    loops: dict  # (variant, design) → L(e^{jω})
    plant_label: str
    ratio: float
    real: dict  # directory name → list of runs.csv rows (FD002)
    reference: dict  # seed → GABA's test RMSE (the runs paired against)
    floors: list  # floor_rows(): the absolute and the relative floor across K

    def row(self, variant: str, design: str) -> Row:
        return next(r for r in self.rows if r.variant == variant and r.design == design)

    # -------------------------------------------------------------- tables
    def property_table(self) -> str:
        head = ("| variant | floor | λ*_RUL at R | health weighted share | K = 3 share error | "
                "recovery after windup (steps) | L(1) | max \\|L\\| in band | S(1) |")
        lines = [head, "|" + "---|" * 9]
        for r in self.rows:
            lines.append(f"| {r.variant} | {r.floor:g} | {r.steady_weight:.4f} | "
                         f"{r.steady_share:.3f} | {r.three_task_error:.3f} | "
                         f"{r.recovery_steps} | {r.loop_dc:.2g} | {r.loop_band_max:.2g} | "
                         f"{r.sensitivity_dc:.3f} |")
        return "\n".join(lines)

    def prediction_table(self) -> str:
        lines = ["| variant | floor | source | floor-active | health weighted share | "
                 "std log λ_RUL |", "|" + "---|" * 6]
        for r in self.rows:
            for source in ("replay", "plant"):
                p = r.predicted.get(source)
                if p:
                    lines.append(f"| {r.variant} | {r.floor:g} | {source} | "
                                 f"{p['floor_fraction']:.2f} | {p['share']:.3f} | "
                                 f"{p['log_lambda_std']:.3f} |")
        return "\n".join(lines)

    def real_rows(self) -> list[dict]:
        """Paired test-RMSE differences against GABA per real-run directory (FD002)."""
        from .compare import holm

        out = []
        for name, rows in self.real.items():
            method = {r["method"] for r in rows} - {"gaba"}
            values = {int(r["seed"]): float(r["test_rmse"]) for r in rows
                      if r["method"] in method and r["status"] == "ok"}
            if len(set(values) & set(self.reference)) < 2:
                continue
            share = [float(r["share_weighted_small"]) for r in rows if r["method"] in method
                     and r.get("share_weighted_small") not in (None, "")]
            floor = [float(r["floor_fraction"]) for r in rows if r["method"] in method
                     and r.get("floor_fraction") not in (None, "")]
            out.append({"runs": name, "method": REAL_RUNS.get(name, name),
                        **_paired(values, self.reference),
                        "share": float(np.median(share)) if share else math.nan,
                        "floor": float(np.mean(floor)) if floor else math.nan})
        # the feedback against its own open loop: the same law, closed vs fed a constant reading
        closed, open_ = (self._values(n) for n in ("integral", "integral_open"))
        if len(set(closed) & set(open_)) >= 2:
            out.append({"runs": "integral_vs_open", "method": "gaba_integral closed − its own "
                        "open loop", **_paired(closed, open_), "share": math.nan,
                        "floor": math.nan})
        out = [r for r in out if math.isfinite(r["p"])] + [r for r in out
                                                           if not math.isfinite(r["p"])]
        tested = [r for r in out if math.isfinite(r["p"])]
        for r in out:
            r["p_holm"] = r["p_tost_holm"] = math.nan
        if tested:
            for r, p, q in zip(tested, holm([r["p"] for r in tested]),
                               holm([r["p_tost"] for r in tested]), strict=True):
                r["p_holm"], r["p_tost_holm"] = float(p), float(q)
        return out

    def _values(self, name: str) -> dict:
        rows = self.real.get(name, [])
        return {int(r["seed"]): float(r["test_rmse"]) for r in rows
                if r["method"] != "gaba" and r["status"] == "ok"}

    def real_table(self) -> str:
        rows = self.real_rows()
        if not rows:
            return ""
        lines = ["| runs | n | test RMSE | difference [95 % CI] | Holm p | TOST ±1 Holm p | "
                 "health weighted share |", "|" + "---|" * 7]
        for r in rows:
            same = not math.isfinite(r["p"])
            lines.append(f"| {r['method']} | {r['n']} | {r['mean']:.2f} | {r['diff']:+.2f} "
                         f"[{r['low']:+.2f}, {r['high']:+.2f}] | "
                         f"{'identical runs' if same else format(r['p_holm'], '.2g')} | "
                         f"{'—' if same else format(r['p_tost_holm'], '.2g')} | "
                         f"{_share(r['share'])} |")
        return "\n".join(lines)

    # -------------------------------------------------------------- figures
    def plot(self, fig=None):
        """|L| on the identified plant per floor, each variant's difference from GABA, and |S|."""
        if fig is None:
            fig, axes = new_figure(1, 3, width=9.0, height=3.3)
        else:
            axes = fig.subplots(1, 3)
        markers = dict(zip(VARIANTS, ("", "o", "s", "^", "v"), strict=True))
        colours = dict(zip(VARIANTS, ("k", "tab:blue", "tab:orange", "tab:green", "tab:red"),
                           strict=True))
        every = slice(10, None, 40)
        for design, _ in DESIGNS:
            style = "-" if design == DESIGNS[1][0] else ":"
            ref = self.loops[("gaba", design)]
            axes[0].loglog(self.omega, np.abs(ref), style, color="k", lw=1.4,
                           label=f"gaba, {design}")
            axes[2].semilogx(self.omega, np.abs(1 / (1 + ref)), style, color="k", lw=1.4,
                             label=design)
            for variant in VARIANTS[1:]:
                L = self.loops[(variant, design)]
                axes[0].loglog(self.omega[every], np.abs(L[every]), markers[variant], ms=3.5,
                               mfc="none", color=colours[variant],
                               label=variant if design == DESIGNS[1][0] else None)
                rel = np.abs(L - ref) / np.abs(ref)
                axes[1].loglog(self.omega, np.maximum(rel, 1e-16), style,
                               color=colours[variant], lw=1.1,
                               label=variant if design == DESIGNS[1][0] else None)
        for ax in axes:
            ax.axvspan(max(BAND[0], self.omega[0]), BAND[1], color="0.92", zorder=0)
            ax.set_xlabel("ω [rad/step]")
        axes[0].axhline(1, color="0.5", lw=0.8)
        axes[0].set_ylabel(r"$|L(e^{j\omega})|$")
        axes[0].set_title(f"loop gain, identified {self.plant_label} plant")
        axes[0].legend(fontsize=6, loc="lower left")
        axes[1].set_ylabel(r"$|L_\mathrm{variant} - L_\mathrm{gaba}| / |L_\mathrm{gaba}|$")
        axes[1].set_title("difference from GABA's loop")
        axes[1].legend(fontsize=6, loc="upper left")
        axes[2].set_ylabel(r"$|S| = 1/|1 + L|$")
        axes[2].set_title("sensitivity (1: no feedback)")
        axes[2].legend(fontsize=6, loc="lower right")
        return fig

    def plot_predictions(self, fig=None):
        """The health task's weighted share: replay, plant-corrected, measured (FD002)."""
        if fig is None:
            fig, ax = new_figure(width=7.0, height=3.4)
        else:
            ax = fig.subplots()
        labels = []
        for i, r in enumerate(self.rows):
            labels.append(f"{r.variant}\n{r.floor:g}")
            for source, marker, colour, dx in (("replay", "o", "tab:gray", -0.15),
                                               ("plant", "s", "tab:blue", 0.15)):
                p = r.predicted.get(source)
                if p:
                    ax.plot(i + dx, p["share"], marker, color=colour, ms=5,
                            label=source if i == 0 else None)
        measured = {("gaba_integral", 0.001): "integral", ("gaba_antiwindup", 0.05): "antiwindup"}
        real = {r["runs"]: r for r in self.real_rows()}
        for i, r in enumerate(self.rows):
            name = measured.get((r.variant, r.floor))
            if name in real and math.isfinite(real[name]["share"]):
                ax.plot(i, real[name]["share"], "*", color="tab:red", ms=9,
                        label="measured (10 seeds, median)" if name == "integral" else None)
        ax.axhline(0.5, color="0.5", lw=0.8, ls="--")
        ax.text(len(self.rows) - 0.5, 0.5, "1/K", va="bottom", ha="right", fontsize=7)
        ax.set_yscale("log")
        ax.set_xticks(range(len(labels)), labels, fontsize=6, rotation=90)
        ax.set_ylabel("health task's weighted share")
        ax.set_title("predicted on the FD002 twin runs: replay and closed over the plant")
        ax.legend(fontsize=7, loc="upper left")
        return fig


def _share(value: float) -> str:
    return "—" if not math.isfinite(value) else f"{value:.3f}"


def _summary(lam: np.ndarray, ratio: np.ndarray, floor: float, skip: int = 100) -> dict:
    """Post-warmup loop quantities of one run: task 1 is RUL, ``ratio = g_RUL/g_health``."""
    from .identify import _weighted_share

    lam, ratio = lam[skip:], ratio[skip:]
    health = 1 - _weighted_share(lam, ratio)  # the health task's weighted share
    return {"floor_fraction": float(np.mean(np.minimum(lam, 1 - lam) < floor * (1 - 1e-9))),
            "share": float(np.median(health)), "log_lambda_std": float(np.std(np.log(lam)))}


def _predict(name: str, floor: float, plant: Plant, twins) -> dict:
    """Replay and plant-corrected loop quantities of a design on the twin runs (means)."""
    from gaba_control.plant.loop import simulate_law_closed_loop

    if not twins:
        return {}
    n = min(t.lam.size for t in twins)
    u = np.stack([np.log(t.lam[:n] / t.lam0) for t in twins])
    y_free = np.stack([np.log(t.ratio[:n]) for t in twins])
    d = y_free - np.stack([plant.simulate(row) for row in u])
    out = {}
    for source, model, disturbance in (("replay", ([0.0, 0.0], [1.0]), y_free),
                                       ("plant", (plant.numerator, plant.denominator), d)):
        lam, y = simulate_law_closed_loop(variant_law(name, floor), model, disturbance,
                                          lambda0=twins[0].lam0)
        runs = [_summary(lam[i, :, 0], np.exp(y[i]), floor) for i in range(len(twins))]
        out[source] = {m: float(np.mean([r[m] for r in runs])) for m in runs[0]}
    return out


#: the windup test: the ratio holds at WOUND_RATIO, then falls to RECOVERY_RATIO
WOUND_RATIO, RECOVERY_RATIO, WIND_STEPS = 600.0, 15.0, 3000


def _recovery(law, wind: int = WIND_STEPS, wound_ratio: float = WOUND_RATIO,
              new_ratio: float = RECOVERY_RATIO) -> int:
    g = np.concatenate([np.tile([wound_ratio, 1.0], (wind, 1)),
                        np.tile([new_ratio, 1.0], (3000, 1))])
    from gaba_control.weighting import LawSimulator

    sim, one = LawSimulator(law, (2,)), np.ones(2)
    for t, row in enumerate(g):
        sim.step(row, one)
        if t >= wind and float(law.unsaturated(sim.state)[0]) >= law.floor:
            return t - wind + 1  # the floor no longer binds: the weights left it
    return -1


#: the task counts of the relative-floor table
FLOOR_KS = (2, 3, 5, 10, 19, 20, 50)


def floor_rows(lambda_min: float = 0.05, rho: float = 0.1, ratio: float = 1e3) -> list[dict]:
    """GABA's absolute floor against the relative floor ``ρ/K`` across ``K``.

    The reading ``g = (R, 1, …, 1)`` starves task 1 (its raw weight is
    ``(1 − s_1)/(K−1) ≈ 0``); the table gives the floor, the simplex share all
    floors take (``K·floor``) and task 1's applied weight, simulated
    (``None`` where the absolute floor is inadmissible, ``λ_min ≥ 1/K``).
    """
    from gaba_control.weighting import LoopLaw

    rows = []
    for k in FLOOR_KS:
        g = np.ones((3000, k))
        g[:, 0] = ratio
        row = {"K": k}
        for label, floor in (("absolute", lambda_min), ("relative", rho / k)):
            if floor >= 1 / k:
                row[label] = None
                continue
            w = _run_law(LoopLaw(k, warmup=0, floor=floor), g)[-1, 0]
            row[label] = {"floor": floor, "total": k * floor, "weight": float(w)}
        rows.append(row)
    return rows


def floor_table(rows: list[dict]) -> str:
    lines = ["| K | λ_min = 0.05: total floor share | its starved weight | ρ/K (ρ = 0.1): floor | "
             "total | starved weight |", "|" + "---|" * 6]
    for r in rows:
        a, b = r["absolute"], r["relative"]
        left = ("inadmissible (λ_min ≥ 1/K) | —" if a is None
                else f"{a['total']:.2f} | {a['weight']:.4f}")
        lines.append(f"| {r['K']} | {left} | {b['floor']:.4f} | {b['total']:.2f} | "
                     f"{b['weight']:.4f} |")
    return "\n".join(lines)


def _three_task_error(name: str) -> float:
    from gaba_control import formulas

    law = variant_law(name, 0.0, num_tasks=3)
    g = np.tile(THREE_TASKS, (3000, 1))
    w = formulas.weighted_shares(_run_law(law, g)[-1], g[-1])
    return float(np.max(np.abs(w - 1 / 3)))


def variants_response(results: Path | None = None, *, subset: str = "FD002",
                      quick: bool = False) -> VariantsResponse:
    """Analyse every variant at both floors on ``subset``'s identified plant and twin runs.

    ``results`` is the committed results folder (default :func:`results_dir`);
    ``ValueError`` when it holds no identified plant for ``subset``.
    """

    from .identify import load_records

    results = Path(results) if results is not None else results_dir()
    plants = [p for p in load_plants(results / "identify" / "plants.csv") if p.subset == subset]
    if not plants:
        raise ValueError(f"no identified {subset} plant in {results / 'identify'}")
    by_lam0 = {p.lam0: p for p in plants}
    records_path = results / "identify" / "records.npz"
    twins = [r for r in load_records(records_path) if r.subset == subset and r.role == "twin"] \
        if records_path.is_file() else []
    if quick:
        twins = [r for r in twins if r.seed == min(t.seed for t in twins)]
    ratio = by_lam0[min(by_lam0, key=lambda v: abs(v - 0.05))].ratio_median
    rows, loops = [], {}
    for design, floor in DESIGNS:
        # the plant identified nearest (in log) to where the design's loop settles
        linearised = {"gaba": _linearise(variant_law("gaba", floor), ratio)}
        settled = linearised["gaba"][1][0]  # GABA's steady λ_RUL after 4,000 steps at R
        plant = by_lam0[min(by_lam0, key=lambda v: abs(math.log(v / settled)))]
        p_resp = plant.response(OMEGA)
        for name in VARIANTS:
            law = variant_law(name, floor)
            if name not in linearised:
                linearised[name] = _linearise(law, ratio)
            c, w = linearised[name]  # w: the steady state after 4,000 steps at R
            L = c * p_resp
            loops[(name, design)] = L
            band = (OMEGA >= BAND[0]) & (OMEGA <= BAND[1])
            above = np.abs(L) >= 1
            pm = math.inf if not above.any() else float(
                180 + np.degrees(np.angle(L[np.flatnonzero(above)[-1]])))
            row = Row(name, design, floor, float(w[0]),
                      float(w[1] / (w[0] * ratio + w[1])), _three_task_error(name),
                      _recovery(law) if floor > 0.01 else 0, float(L[0].real),
                      float(np.abs(L[band]).max()), float(abs(1 / (1 + L[0]))), pm)
            row.predicted = _predict(name, floor, plant,
                                     [t for t in twins if abs(t.lam0 - plant.lam0) < 1e-12])
            rows.append(row)
    real, reference = _real_runs(results / "variants", subset)
    return VariantsResponse(rows, OMEGA, loops, subset, ratio, real, reference, floor_rows())


def _real_runs(folder: Path, subset: str) -> tuple[dict, dict]:
    from .compare import _read_csv

    real, reference = {}, {}
    for name in REAL_RUNS:
        path = folder / name / "runs.csv"
        if not path.is_file():
            continue
        rows = [r for r in _read_csv(path) if r["subset"] == subset]
        real[name] = rows
        for r in rows:
            if r["method"] == "gaba" and r["status"] == "ok":
                reference[int(r["seed"])] = float(r["test_rmse"])
    return real, reference


# ---------------------------------------------------------------------------- the study
def run(outdir: Path, *, seed: int = 0, trace=None, quick: bool = False) -> Study:
    title = "Loop variants: one block swapped, analysed on the identified plant"
    try:
        response = variants_response(quick=quick)
    except (ValueError, OSError) as error:
        reason = f"no committed identification to analyse on ({error})"
        return Study(name="variants", title=title, summary="Skipped: " + reason + ".",
                     claims=[Claim("A loop variant makes the feedback earn its place",
                                   "issue 15", "—", "—", reason, "—", "not testable", reason)])
    figures = save_figure(response.plot(), outdir, "variants_loop")
    figures += save_figure(response.plot_predictions(), outdir, "variants_predictions")
    gaba_free = response.row("gaba", DESIGNS[1][0])
    gaba_floor = response.row("gaba", DESIGNS[0][0])
    aw = response.row("gaba_antiwindup", DESIGNS[0][0])
    integral = response.row("gaba_integral", DESIGNS[1][0])
    same_k2 = max(abs(response.row(v, d).loop_dc - response.row("gaba", d).loop_dc)
                  / abs(response.row("gaba", d).loop_dc)
                  for v in VARIANTS for d, _ in DESIGNS if v != "gaba_antiwindup")
    summary = (
        "Each variant of GABA's loop swaps one block (`gaba_control.weighting._gaba_*`) and is "
        "analysed by the same code from its law alone: steady state at the FD002 operating "
        f"point (R = {response.ratio:.0f}), the three-task steady-state error at the reading "
        f"{THREE_TASKS}, the recovery after windup, and the small-signal controller measured "
        "from the law and closed over the identified FD002 plant ({tab:Derived properties and "
        "the linearised loop of each variant}, {fig:variants_loop}). For two tasks the "
        "inverse-norm law *is* the P-law, the log-domain EMA *is* the integrator, and the "
        "relative floor ρ = 0.1 *is* λ_min = 0.05; the linearised loop of every variant "
        f"except anti-windup matches GABA's within {100 * same_k2:.2g} % in L(1). On the floor "
        f"L(1) = {gaba_floor.loop_dc:.2g} (the loop is open); without it "
        f"L(1) = {gaba_free.loop_dc:.2g}, S(1) = {gaba_free.sensitivity_dc:.2f}: even "
        "unsaturated, the loop cancels only a fifth of a slow disturbance of the ratio, "
        "because the plant's elasticity ∂log R/∂log λ is small. Anti-windup leaves the floor "
        f"after {aw.recovery_steps} step instead of {gaba_floor.recovery_steps} and changes "
        "neither the steady state nor the floor-bound loop. The three-task error "
        f"(max |w_i − 1/3|) is {gaba_free.three_task_error:.3f} for GABA's P-law and "
        f"{integral.three_task_error:.1e} for the integrator. {{tab:Predicted loop "
        "quantities on the FD002 twin runs}} and {fig:variants_predictions} predict, for "
        "each design, the floor-active fraction and the health task's weighted share by replay "
        "and closed over the plant: only the floor decides them.")
    tables = ["### Derived properties and the linearised loop of each variant\n\n"
              + response.property_table(),
              "### The absolute and the relative floor across K\n\n"
              "Reading g = (1000, 1, …, 1): task 1's raw weight is ≈ 0 and the floor holds it; "
              "simulated steady state.\n\n" + floor_table(response.floors),
              "### Predicted loop quantities on the FD002 twin runs\n\n"
              "Means over the identification's open-loop twin runs (seeds 0–2), post-warmup "
              "medians per run; replay reads the recorded ratio, *plant* closes the law over "
              "the identified model.\n\n" + response.prediction_table()]
    claims = _claims(response)
    findings = []
    real = response.real_table()
    if real:
        tables.append("### Real runs on FD002 against GABA\n\nTest RMSE difference "
                      "method − GABA per seed (last row: the integral law closed minus its "
                      "own open-loop schedule), mean and 95 % t-interval; Holm over the "
                      "tested rows; TOST at ±1 cycle; health weighted share: median over "
                      "seeds of each run's post-warmup median. gaba_integral and its open "
                      "loop use the floor 0.001 (--floor-fraction 0.002); anti-windup "
                      "GABA's 0.05. GABA's runs are the rerun of results/field's with this "
                      "session's code.\n\n" + real)
        summary += (" The real FD002 runs ({tab:Real runs on FD002 against GABA}) test the "
                    "chosen designs.")
        findings += _real_findings(response)
    three = three_task_rows(results_dir() / "variants")
    if three:
        tables.append("### Three tasks on FD001 against GABA\n\nFD001 with a third task, "
                      "next-cycle sensor regression (`--aux-task next_cycle`); the variants "
                      "at the floor 0.001 (`--floor-fraction 0.003`). Test RMSE difference "
                      "method − GABA per seed, mean and 95 % t interval; Holm over the rows; "
                      "TOST at ±1 cycle; last row (when run): the integral law closed minus "
                      "its own open-loop schedule at the median reading of its seed-0 run. "
                      "Smallest task's weighted share: median over seeds of each run's "
                      "post-warmup median (aim 1/3).\n\n" + three_task_table(three))
        summary += (" With three tasks ({tab:Three tasks on FD001 against GABA}) the "
                    "equalisation defect of the closed form is visible and its repair costly.")
        findings.append(_three_task_finding(three))
    validation = _advice_validation(results_dir() / "advise" / "validation")
    captions = {}
    if validation is not None:
        figures += save_figure(validation.plot(), outdir, "advise_validation")
        body, paired = validation.markdown().split("\n", 1)[1].split("\nTest RMSE", 1)
        tables.append("### The design assistant against real runs\n\n" + body.strip())
        tables.append("### Test RMSE of the assistant's settings against the published "
                      "one\n\nTest RMSE" + paired.rstrip())
        summary += (" The design assistant (`gaba-control advise`) was checked against real "
                    "runs of the setting it recommends and of two it ranks low "
                    "({tab:The design assistant against real runs}, "
                    "{fig:advise_validation}).")
        claims.append(_validation_claim(validation))
        findings.append(_validation_finding(validation))
        captions["advise_validation"] = (
            f"The design assistant's predictions from {validation.trace_label} (open circles: "
            "replay of the recorded norms; crosses: closed over the identified plant) against "
            f"{validation.subset} runs trained with each setting (dots: seeds; squares: mean "
            "with its 95 % t interval, geometric for the share). Left: the smallest-norm "
            "(health) task's share of the weighted gradient, log axis, dashed the aim 1/K; "
            "middle: the fraction of post-warmup steps on the floor; right: std of log λ of "
            "the RUL task. Bottom: each prediction relative to the measured mean (ratio for "
            "the share, difference otherwise) with the measured 95 % interval on the same "
            "scale: a marker inside the bar is a prediction the runs cannot reject. Settings "
            "labelled by their rank among the candidates.")
    captions |= {
        "variants_loop": f"Each variant's small-signal loop on the identified FD002 plant, "
                         f"linearised at R = {response.ratio:.0f} from its law (a 1e-6 step "
                         "of log R). Left: |L| of GABA (lines; dotted floor 0.05, solid floor "
                         "0.001) and of each variant (markers); middle: each variant's "
                         "relative difference from GABA's L (log axis, dotted floor 0.05, "
                         "solid floor 0.001; 1e-6 is the linearisation's own resolution, and "
                         "a difference below 1e-16 — the anti-windup law's, whose clamp "
                         "does not act in the small signal — is drawn at 1e-16); right: "
                         "|S| = 1/|1 + L|. Shaded: the identification band.",
        "variants_predictions": "The health task's share of the weighted gradient (log axis) "
                                "predicted for each variant and floor from the FD002 twin "
                                "runs: replay (grey) and closed over the identified plant "
                                "(blue); red stars: measured medians of the real runs; dashed: "
                                "the loop's aim 1/K.",
    }
    return Study(name="variants", title=title, summary=summary, figures=figures,
                 captions=captions, claims=claims, tables=tables, findings=findings)


def _claims(response: VariantsResponse) -> list[Claim]:
    from gaba_control.weighting import recovery_steps

    gaba_floor = response.row("gaba", DESIGNS[0][0])
    aw = response.row("gaba_antiwindup", DESIGNS[0][0])
    raw = 1 / (1 + WOUND_RATIO)
    wound = raw + (0.5 - raw) * 0.99**WIND_STEPS
    closed = recovery_steps(0.99, 0.05, wound, 1 / (1 + RECOVERY_RATIO))
    integral = response.row("gaba_integral", DESIGNS[1][0])
    out = [
        Claim("The floor clamps the output, not the EMA state: after windup GABA stays on the "
              "floor for hundreds of steps; state-clamped anti-windup leaves it at once",
              "issue 15", f"{closed} steps (closed form), anti-windup 1",
              f"{gaba_floor.recovery_steps} / {aw.recovery_steps} steps", "—", "exact",
              "holds" if (gaba_floor.recovery_steps == closed and aw.recovery_steps == 1)
              else "refuted", f"ratio {WOUND_RATIO:g} for {WIND_STEPS} steps, then "
              f"{RECOVERY_RATIO:g} (raw weight {1 / (1 + RECOVERY_RATIO):.4f} > λ_min)"),
        Claim("The closed form equalises λ_i·g_i only for K = 2", "issue 15",
              "P-law weighted shares s_i(1−s_i)/Σ s_j(1−s_j)",
              f"max |w − 1/3| = {response.row('gaba', DESIGNS[1][0]).three_task_error:.3f} "
              f"(P-law) vs {integral.three_task_error:.1e} (integral)", "—", "> 0.05 vs < 1e-6",
              "holds" if (response.row("gaba", DESIGNS[1][0]).three_task_error > 0.05
                          and integral.three_task_error < 1e-6) else "refuted",
              f"reading {THREE_TASKS}, floor 0"),
    ]
    return out


#: the three-task runs (FD001 + next-cycle regression) and the integral law's own open loop
THREE_TASK_RUNS = ("k3", "k3_open")


def three_task_rows(folder: Path) -> list[dict]:
    """Test RMSE of each three-task method − GABA per seed (mean, 95 % CI, Holm over the
    methods, TOST ±1) and the integral law closed − its own open-loop schedule (``k3_open``);
    ``share``: the median over seeds of the smallest task's weighted share."""
    from .compare import _read_csv, holm

    path = Path(folder) / THREE_TASK_RUNS[0] / "runs.csv"
    if not path.is_file():
        return []
    rows = [r for r in _read_csv(path) if r["status"] == "ok"]
    by = {}
    for r in rows:
        by.setdefault(r["method"], {})[int(r["seed"])] = r
    open_path = Path(folder) / THREE_TASK_RUNS[1] / "runs.csv"
    if open_path.is_file():
        by["gaba_integral (open loop)"] = {int(r["seed"]): r for r in _read_csv(open_path)
                                           if r["status"] == "ok" and r["method"] != "gaba"}
    ref = by.get("gaba", {})

    def row(label, runs, base):
        share = [r["share_weighted_small"] for r in runs.values()
                 if r.get("share_weighted_small") is not None]
        return {"method": label, **_paired({s: r["test_rmse"] for s, r in runs.items()},
                                           {s: r["test_rmse"] for s, r in base.items()}),
                "share": float(np.median(share)) if share else math.nan}

    out = [{**row("gaba", ref, ref), "diff": math.nan, "p": math.nan, "p_tost": math.nan}]
    out += [row(m, runs, ref) for m, runs in by.items() if m != "gaba"]
    if "gaba_integral (open loop)" in by and "gaba_integral" in by:
        out.append(row("gaba_integral closed − its own open loop", by["gaba_integral"],
                       by["gaba_integral (open loop)"]))
        out[-1]["share"] = math.nan
    tested = [r for r in out if math.isfinite(r["p"])]
    for key in ("p", "p_tost"):
        for r, p in zip(tested, holm([r[key] for r in tested]), strict=True):
            r[f"{key}_holm"] = float(p)
    return out


def three_task_table(rows: list[dict]) -> str:
    lines = ["| runs | n | test RMSE | difference [95 % CI] | Holm p | TOST ±1 Holm p | "
             "smallest task's weighted share |", "|" + "---|" * 7]
    def p(value):
        return "—" if value is None or not math.isfinite(value) else format(value, ".2g")

    for r in rows:
        ref = r["method"] == "gaba"
        lines.append(f"| {r['method']} | {r['n']} | {r['mean']:.2f} | "
                     + ("reference" if ref else
                        f"{r['diff']:+.2f} [{r['low']:+.2f}, {r['high']:+.2f}]")
                     + f" | {p(r.get('p_holm'))} | {p(r.get('p_tost_holm'))} | "
                     f"{'—' if not math.isfinite(r['share']) else format(r['share'], '.3g')} |")
    return "\n".join(lines)


def _three_task_finding(rows: list[dict]) -> Finding:
    by = {r["method"]: r for r in rows}
    g, i = by["gaba"], by.get("gaba_integral")
    text = (f"With three tasks (FD001 + next-cycle regression, {g['n']} seeds) GABA gives its "
            f"smallest task {g['share']:.3g} of the weighted gradient (aim 1/3)")
    if i:
        text += (f"; the integral law reaches {i['share']:.3g} but loses "
                 f"{i['diff']:+.2f} [{i['low']:+.2f}, {i['high']:+.2f}] cycles of test RMSE "
                 f"(Holm p = {i.get('p_holm', math.nan):.2g})")
    vs = by.get("gaba_integral closed − its own open loop")
    if vs:
        verdict = ("shown equivalent within ±1 cycle" if vs.get("p_tost_holm", 1) < 0.05 else
                   "different" if vs.get("p_holm", 1) < 0.05 else "not decided")
        text += (f"; closed − its own open loop {vs['diff']:+.2f} [{vs['low']:+.2f}, "
                 f"{vs['high']:+.2f}] ({verdict})")
    e = by.get("equal")
    if e:
        text += f"; equal weights {e['diff']:+.2f} [{e['low']:+.2f}, {e['high']:+.2f}]"
    return Finding(text + ".")


def _advice_validation(folder: Path):
    """The committed validation of ``gaba-control advise`` (``None`` when absent)."""
    if not (folder / "runs.csv").is_file():
        return None
    from .advise_validation import advice_validation_response

    return advice_validation_response(folder)


def _validation_row(validation, role: str, quantity: str) -> dict | None:
    return next((r for r in validation.summary() if r["role"] == role
                 and r["quantity"] == quantity), None)


def _validation_claim(validation) -> Claim:
    """The plant-corrected share predicted for the recommended setting lies within the
    assistant's own resolution (the 5 % bins it ranks shares in, ``advise.NEAR_TIE``) of the
    measured mean of its real runs; the evidence also says whether the 95 % interval holds it.
    """
    from .advise import NEAR_TIE

    r = _validation_row(validation, "recommended", "share")
    if r is None or r["predicted_plant"] is None or not math.isfinite(r["measured"]):
        return Claim("The design assistant predicts the weighted share of the setting it "
                     "recommends", "issue 15", "—", "—", "—", "5 %", "not testable",
                     "no plant-corrected prediction or no finished run")
    off = {k: r[f"predicted_{k}"] / r["measured"] - 1 for k in ("plant", "replay")}
    inside = "inside" if r["within_plant"] else "outside"
    return Claim(
        "The design assistant predicts the weighted share of the setting it recommends",
        "issue 15", f"plant-corrected {r['predicted_plant']:.3f} (replay "
        f"{r['predicted_replay']:.3f})", "—",
        f"{r['measured']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}] over {r['n_ok']} "
        f"{validation.subset} runs", f"within {100 * (math.exp(NEAR_TIE) - 1):.0f} % (the "
        "assistant's ranking resolution)",
        "holds" if abs(math.log1p(off["plant"])) <= NEAR_TIE else "refuted",
        f"plant {100 * off['plant']:+.1f} %, replay {100 * off['replay']:+.1f} % of the "
        f"measured mean; the plant prediction lies {inside} the 95 % interval; "
        f"{r['variant']}, β = {r['beta']:g}, floor {r['floor']:g}, W = {r['warmup']}, "
        f"N = {r['refresh']}; predicted from {validation.trace_label}",
        figure="advise_validation")


def _validation_finding(validation) -> Finding:
    rows = {(r["role"], r["quantity"]): r for r in validation.summary()}
    paired = {r["role"]: r for r in validation.paired()}
    rec, pub = rows.get(("recommended", "share")), rows.get(("published", "share"))
    text = (f"The design assistant recommends {rec['variant']} (β = {rec['beta']:g}, floor "
            f"{rec['floor']:g}, W = {rec['warmup']}, N = {rec['refresh']}) from one FD002 "
            f"GABA run; trained on {rec['n_ok']} seeds its health task receives "
            f"{rec['measured']:.3f} [{rec['ci_low']:.3f}, {rec['ci_high']:.3f}] of the "
            f"weighted gradient (predicted {_pred(rec)}), against "
            f"{pub['measured']:.3f} (predicted {_pred(pub)}) under GABA's published setting.")
    fl = rows.get(("recommended", "floor_fraction"))
    if fl and math.isfinite(fl["ci_low"]) and not (fl["within_replay"] or fl["within_plant"]):
        text += (f" Its floor-active fraction is not predicted: measured {fl['measured']:.2f} "
                 f"[{fl['ci_low']:.2f}, {fl['ci_high']:.2f}], replay "
                 f"{fl['predicted_replay']:.2f}, plant {fl['predicted_plant']:.2f}.")
    p = paired.get("recommended")
    if p and math.isfinite(p["mean"]):
        text += (f" Test RMSE − published: {p['mean']:+.2f} [{p['ci_low']:+.2f}, "
                 f"{p['ci_high']:+.2f}] cycles (Holm p = {p['t_holm_p']:.2g}).")
    return Finding(text, figure="advise_validation")


def _pred(row: dict) -> str:
    plant = row["predicted_plant"]
    return (f"{plant:.3f} with the plant, {row['predicted_replay']:.3f} by replay"
            if plant is not None else f"{row['predicted_replay']:.3f} by replay")


def _real_findings(response: VariantsResponse) -> list[Finding]:
    rows = {r["runs"]: r for r in response.real_rows()}
    out = []
    closed, vs = rows.get("integral"), rows.get("integral_vs_open")
    open_ = rows.get("integral_open")
    if closed and vs and open_:
        verdict = ("**no**: closed and open loop are shown equivalent within ±1 cycle"
                   if vs["p_tost_holm"] < 0.05 else "not decided at this sample size")
        out.append(Finding(
            f"Does a variant make the feedback earn its place? FD002, 10 seeds: the integral "
            f"law with the floor 0.001 beats GABA by {closed['diff']:+.2f} "
            f"[{closed['low']:+.2f}, {closed['high']:+.2f}] cycles of test RMSE (Holm p = "
            f"{closed['p_holm']:.2g}), but its own open-loop schedule does nearly as well "
            f"({open_['diff']:+.2f} [{open_['low']:+.2f}, {open_['high']:+.2f}]); closed − "
            f"open = {vs['diff']:+.2f} [{vs['low']:+.2f}, {vs['high']:+.2f}], TOST Holm p = "
            f"{vs['p_tost_holm']:.2g}: {verdict}. The gain comes from the lower floor (the "
            "operating point), not from the feedback.", figure="variants_predictions"))
    aw = rows.get("antiwindup")
    if aw and not math.isfinite(aw["p"]):
        out.append(Finding(
            f"Anti-windup on FD002 ({aw['n']} seeds) applied GABA's weights bit for bit: the "
            "floor never released once the state had wound down, so clamping the state "
            "changed nothing that training saw.", figure="variants_loop"))
    return out


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--outdir", type=Path, default=Path("figures"))
    parser.add_argument("--quick", action="store_true")
    return parser


if __name__ == "__main__":  # pragma: no cover
    args = add_arguments(argparse.ArgumentParser(description=__doc__)).parse_args()
    study = run(args.outdir, quick=args.quick)
    print(study.summary)
    for table in study.tables:
        print("\n" + table)
