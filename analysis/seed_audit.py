r"""The seed-claims audit: every remaining quantitative statement of the five seeds, checked live.

The other studies own the Bode/cutoff claims (``bode``), the warmup/step/EMA
trajectory tables (``step_response``), the variance theorem (``noise``), the
floor bounds and anti-windup (``bounds``) and the closed-loop scenarios
(``closed_loop``). This module goes through each seed top to bottom and checks
everything else: printed values of the code walkthroughs ("EXECUTION STATE",
"Output ="), formulas, identities, settling statements, torch behaviour
(float32 prints, autograd, ``.detach()``), cost and the claims about the
paper's real runs.

Each check is a small function returning an :class:`AuditItem` (a
:class:`~analysis._common.Claim` plus the claimed and computed numbers). The
verdict is computed from the numbers with the stated tolerance; a seed value
printed with ``n`` decimals is compared within half a unit of its last digit
(:func:`printed_tolerance`), an approximate one ("~", "≈ … steps") within the
relative tolerance named in the claim's row. Claims about the paper's runs
(GradNorm, N-CMAPSS, ``main.tex``) are "not testable" with the reason; claims
about C-MAPSS gradient norms use the real trace when one is given and say what
it shows when its subset is not the one the claim is about.

Printed walkthroughs (trajectory tables, "Output =" lines, intermediate
values) are one row per table: each printed value is compared with its
computed counterpart within half a unit of its last digit (:func:`_printed_off`).

Runtime: the quick audit takes a few seconds (no timing measurement); the
full audit adds a per-step cost measurement of a small CNN on one CPU thread
and the time of one K = 1000 evaluation of eq. 4.
"""

from __future__ import annotations

import inspect
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gaba_control import formulas
from gaba_control.controller import GABAController
from gaba_control.lti.iir import ema_filter
from gaba_control.nn import GABALoss
from gaba_control.theory import iir as iir_theory
from gaba_control.theory import variance
from gaba_control.theory.bounds import reachable_output_bounds
from gaba_control.theory.warmup import active_steps, ema_after_active_steps

from ._common import (
    VERDICT_COLOURS,
    VERDICTS,
    Claim,
    Study,
    median_interval,
    new_figure,
    results_dir,
    save_figure,
    verdict_bars,
)

__all__ = [
    "CHECKS",
    "SEEDS",
    "AuditItem",
    "CostMeasurement",
    "SeedAuditResponse",
    "audit_response",
    "measure_step_cost",
    "printed_tolerance",
    "run",
]

#: The five seeds, by number, with the section each one covers.
SEEDS = {
    "000": "warmup gate",
    "001": "EMA",
    "002": "floor + renormalise",
    "003": "inverse-gradient closed form, GABALoss",
    "004": "P-controller reading",
}

PAPER = {"beta": 0.99, "warmup": 100, "lambda_min": 0.05}
NO_TRACE = "no trace given"
NOT_HERE = "not testable here"

# Section titles used by several checks (the seeds' headings).
_S002_SCENARIOS = "Python: Three Scenarios From Scratch"
_S003_NUMPY = "Python: GABA Weights From Gradient Norms"
_S003_TORCH = "PyTorch: GABALoss From The Paper"
_S004_MATH = "The Math: GABA Is A P-Controller With Unity Gain"
_S004_NUMPY = "Python: P-Controller From Scratch (NumPy)"
_S004_TORCH = "PyTorch: The Inner Loop Of GABALoss Verbatim"
_S004_PITFALLS = "Pitfalls When Treating GABA As A Controller"
_S004_GRADNORM = "Why ‘Feedback’ Matters: GradNorm Has Open-Loop Failure Modes"


@dataclass(frozen=True)
class AuditItem:
    """One audited statement: the report row plus the numbers behind it.

    ``claimed`` and ``computed`` are the seed's number and ours when the claim
    is one number (else ``None``); ``seed`` is ``"000"`` … ``"004"``. ``timed``
    marks a ``computed`` that is a wall-clock measurement: it changes from run
    to run, so the figure leaves it out (the table keeps it).
    """

    seed: str
    key: str
    claim: Claim
    claimed: float | None = None
    computed: float | None = None
    timed: bool = False

    @property
    def relative_error(self) -> float | None:
        """``|computed − claimed| / |claimed|`` (``None`` when not numeric or claimed is 0)."""
        if self.claimed is None or self.computed is None or self.claimed == 0:
            return None
        return abs(self.computed - self.claimed) / abs(self.claimed)


@dataclass(frozen=True)
class _Context:
    trace: object | None
    quick: bool
    seed: int
    measure_cost: bool


CheckFn = Callable[[_Context], AuditItem]
CHECKS: dict[str, list[CheckFn]] = {s: [] for s in SEEDS}


def _check(seed: str):
    """Register a check function under its seed (in reading order)."""

    def register(fn: CheckFn) -> CheckFn:
        CHECKS[seed].append(fn)
        return fn

    return register


# ----------------------------------------------------------------------------- helpers


def printed_tolerance(text: str) -> float:
    """Half a unit in the last printed digit of a decimal string ("0.04762" → 5e-6).

    Examples
    --------
    >>> printed_tolerance("0.04762")
    5e-06
    >>> printed_tolerance("250")
    0.5
    """
    mantissa = text.strip().lower().split("e")[0]
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    exponent = int(text.lower().split("e")[1]) if "e" in text.lower() else 0
    return 0.5 * 10.0 ** (exponent - decimals)


def _verdict(ok: bool) -> str:
    return "holds" if bool(ok) else "refuted"


def _g(x: float, digits: int = 6) -> str:
    return f"{x:.{digits}g}"


def _item(seed: str, key: str, claim: str, section: str, *, theory: str, simulation: str = "—",
          real_run: str = NO_TRACE, tolerance: str, verdict: str, evidence: str = "",
          claimed: float | None = None, computed: float | None = None,
          timed: bool = False) -> AuditItem:
    row = Claim(claim=claim, source=f"seed {seed} §{section}", theory=theory,
                simulation=simulation, real_run=real_run, tolerance=tolerance,
                verdict=verdict, evidence=evidence)
    return AuditItem(seed=seed, key=key, claim=row, claimed=claimed, computed=computed,
                     timed=timed)


def _not_testable(seed: str, key: str, claim: str, section: str, reason: str,
                  real_run: str = NO_TRACE) -> AuditItem:
    return _item(seed, key, claim, section, theory=NOT_HERE, real_run=real_run, tolerance="—",
                 verdict="not testable", evidence=reason)


def _rul_health(trace) -> tuple[int, int]:
    """Column of the regression task and of the health task in a trace."""
    names = [str(n).lower() for n in getattr(trace, "task_names", ()) or ()]
    if "rul" in names and len(names) == 2:
        rul = names.index("rul")
        return rul, 1 - rul
    return 0, 1


@dataclass(frozen=True)
class _TraceFacts:
    subset: str
    run: str  # "equal, seed 0": which run of the subset the numbers come from
    init_ratio: float
    median_ratio: float
    peak_epoch_ratio: float
    peak_epoch: int
    last_epoch_ratio: float
    raw_cv: float
    raw_mean: float
    max_health_weight: float
    g_rul_first: float
    g_health_first: float
    g_rul_median: float

    def describe(self) -> str:
        return (f"{self.subset} trace ({self.run}): g_RUL/g_health {self.init_ratio:.3g}× at "
                f"the first step, "
                f"median {self.median_ratio:.3g}×, epoch-median peak {self.peak_epoch_ratio:.3g}× "
                f"(epoch {self.peak_epoch}), last epoch {self.last_epoch_ratio:.3g}×")


def _trace_facts(trace) -> _TraceFacts | None:
    """The numbers the C-MAPSS claims are about, from a real trace (None without one)."""
    if trace is None:
        return None
    g = np.asarray(trace.grad_norms, dtype=float)
    valid = np.asarray(getattr(trace, "valid", np.ones(len(g), bool)), dtype=bool)
    valid &= np.all(np.isfinite(g), axis=1) & np.all(g > 0, axis=1)
    if not valid.any():
        return None
    rul, health = _rul_health(trace)
    ratio = g[valid, rul] / g[valid, health]
    epoch = np.asarray(getattr(trace, "epoch", np.zeros(len(g), int)))[valid]
    epochs = np.unique(epoch)
    per_epoch = np.array([np.median(ratio[epoch == e]) for e in epochs])
    active = np.asarray(getattr(trace, "active", np.ones(len(g), bool)), dtype=bool)
    raw = np.asarray(trace.raw, dtype=float)[valid & active, rul]
    raw = raw[np.isfinite(raw)]
    weights = np.asarray(trace.weights, dtype=float)[active, health]
    seed = getattr(trace, "seed", None)
    return _TraceFacts(
        subset=str(getattr(trace, "subset", None) or "unknown-subset"),
        run=f"{getattr(trace, 'method', None) or 'unknown method'}, "
            f"seed {'?' if seed is None else seed}",
        init_ratio=float(ratio[0]),
        median_ratio=float(np.median(ratio)),
        peak_epoch_ratio=float(per_epoch.max()),
        peak_epoch=int(epochs[per_epoch.argmax()]) + 1,  # epochs counted from 1, as everywhere
        last_epoch_ratio=float(per_epoch[-1]),
        raw_cv=float(raw.std() / raw.mean()) if raw.size > 1 else float("nan"),
        raw_mean=float(raw.mean()) if raw.size else float("nan"),
        max_health_weight=float(weights.max()) if weights.size else float("nan"),
        g_rul_first=float(g[valid, rul][0]),
        g_health_first=float(g[valid, health][0]),
        g_rul_median=float(np.median(g[valid, rul])),
    )


def _fd002_facts(trace, method: str | None = None) -> _TraceFacts | None:
    """Facts of an FD002 run (of ``method``, or any when ``None``): the given trace if it is
    one, else the committed ``results/traces/FD002-<method or gaba>-seed0.npz`` (claims about
    FD002 are decided on FD002)."""
    from gaba_control.trace import load_trace

    if (trace is not None and str(getattr(trace, "subset", "")).upper() == "FD002"
            and method in (None, getattr(trace, "method", None))):
        return _trace_facts(trace)
    path = results_dir() / "traces" / f"FD002-{method or 'gaba'}-seed0.npz"
    if path.is_file():
        return _trace_facts(load_trace(path))
    return _trace_facts(trace)


@dataclass(frozen=True)
class _SeedSpread:
    """A per-run loop quantity over the committed seeds of one subset and method.

    One run's extreme (a peak ratio, its epoch) moves by 2× and more from seed
    to seed; the claims about C-MAPSS runs are decided on the median over the
    seeds, given with its distribution-free 95 % interval
    (:func:`~analysis._common.median_interval`).
    """

    subset: str
    method: str
    values: tuple[float, ...]

    @property
    def median(self) -> float:
        return median_interval(self.values)[0]

    def describe(self, what: str) -> str:
        median, low, high, coverage = median_interval(self.values)
        return (f"{what}: median {median:.3g}× over {len(self.values)} {self.subset} "
                f"{self.method} seeds, 95 % interval of the median [{low:.3g}, {high:.3g}] "
                f"(order statistics, coverage {coverage:.3f}); per seed "
                f"{min(self.values):.3g}–{max(self.values):.3g}×")


#: the committed comparison whose per-seed loop quantities the C-MAPSS claims are decided on
SEED_RUNS = "compare/runs.csv"


def _seed_spread(subset: str, method: str, column: str) -> _SeedSpread | None:
    """``column`` of ``results/compare/runs.csv`` over the seeds of ``subset`` × ``method``
    that finished (None when the table or the runs are missing)."""
    import csv

    path = results_dir() / SEED_RUNS
    if not path.is_file():
        return None
    with path.open(newline="") as f:
        rows = [r for r in csv.DictReader(f)
                if r["subset"] == subset and r["method"] == method and r["status"] == "ok"]
    values = [float(r[column]) for r in rows if r.get(column) not in (None, "")]
    values = [v for v in values if math.isfinite(v)]
    return _SeedSpread(subset, method, tuple(values)) if len(values) >= 6 else None


def _fd002_item(seed, key, claim, section, facts: _TraceFacts | None, measured: float | None,
                claimed: float, rtol: float, what: str, extra: str = "",
                note: str = "") -> AuditItem:
    """A claim about FD002 gradient norms: decided only by an FD002 trace."""
    if facts is None:
        return _not_testable(seed, key, claim, section,
                             "needs a FD002 training trace (pass --trace / --train)")
    real = f"{what} = {_g(measured, 4)}{extra} ({facts.describe()})"
    if facts.subset.upper() != "FD002":
        return _item(seed, key, claim, section, theory=NOT_HERE, real_run=real,
                     tolerance=f"rel {rtol:g}", verdict="not testable",
                     evidence=f"the claim is about FD002; this is a {facts.subset} trace",
                     claimed=claimed, computed=measured)
    ok = abs(measured - claimed) <= rtol * abs(claimed)
    evidence = "" if ok else f"FD002 trace gives {_g(measured, 4)}"
    return _item(seed, key, claim, section, theory=NOT_HERE, real_run=real,
                 tolerance=f"rel {rtol:g}", verdict=_verdict(ok),
                 evidence="; ".join(part for part in (evidence, note) if part),
                 claimed=claimed, computed=measured)


def _pipeline_weights(raw_rul: float, steps: int, *, beta=0.99, lambda_min=0.05) -> np.ndarray:
    """λ* over ``steps`` active steps for a constant raw input (K = 2, EMA from 1/2)."""
    g = np.tile([1.0 - raw_rul, raw_rul], (steps, 1))  # shares give raw = (1−s) for K = 2
    return GABAController(2, beta=beta, warmup=0, lambda_min=lambda_min).run(g)


# ----------------------------------------------------------------------------- seed 000


@_check("000")
def _w_equals_tau(ctx: _Context) -> AuditItem:
    tau = iir_theory.time_constant(PAPER["beta"])
    w = PAPER["warmup"]
    return _item("000", "w_tau", "W = 100 equals one EMA time constant τ = 1/(1−β) at β = 0.99",
                 "Why W = 100 Steps", theory=f"τ = {tau:g} steps", simulation=f"W = {w}",
                 tolerance="rel 1e-9", verdict=_verdict(math.isclose(tau, w, rel_tol=1e-9)),
                 claimed=100.0, computed=tau)


@_check("000")
def _ema_idle_during_warmup(ctx: _Context) -> AuditItem:
    g = np.tile([5.0, 0.01], (PAPER["warmup"], 1))
    tr = GABAController(2, **PAPER).run(g)
    absorbed = float(np.abs(tr.ema[-1] - 0.5).max() / abs(0.5 - tr.raw[-1, 0]))
    claimed = 1.0 - math.exp(-1.0)
    ok = abs(absorbed - claimed) <= 0.05
    return _item("000", "warmup_absorbs", "after the W = 100 warmup steps the EMA \"has had one τ "
                 "to absorb a meaningful signal\" (one τ of clean initialisation)",
                 "Why W = 100 Steps / Takeaway", theory="the EMA is not updated while gated",
                 simulation=f"fraction of the step absorbed at t = W: {absorbed:g} "
                 f"(one τ would be {claimed:.3f})", tolerance="abs 0.05",
                 verdict=_verdict(ok),
                 evidence="the seed itself keeps the buffer at 1/K during warmup: nothing is "
                 "absorbed before step W + 1; W = τ is a coincidence of numbers",
                 claimed=claimed, computed=absorbed)


@_check("000")
def _adam_time_constants(ctx: _Context) -> AuditItem:
    t1, t2 = iir_theory.time_constant(0.9), iir_theory.time_constant(0.999)
    margin = PAPER["warmup"] / t1
    ok = math.isclose(t1, 10, rel_tol=1e-9) and math.isclose(t2, 1000, rel_tol=1e-9) \
        and math.isclose(margin, 10, rel_tol=1e-9)
    return _item("000", "adam_tau", "Adam moments: 1/(1−β₁) = 10, 1/(1−β₂) = 1,000 steps; "
                 "W = 100 is a 10× margin over the first-moment transient",
                 "Why Step-0 Gradients Are Untrustworthy", theory=f"{t1:g}, {t2:g}; W/τ₁ = "
                 f"{margin:g}", tolerance="rel 1e-9", verdict=_verdict(ok),
                 evidence="W = 100 is a tenth of the second-moment time constant",
                 claimed=10.0, computed=t1)


@_check("000")
def _warmup_share_of_training(ctx: _Context) -> AuditItem:
    share = PAPER["warmup"] / (500 * 100)
    return _item("000", "warmup_cost", "100 / (500 epochs × 100 steps) ≈ 0.2 % of training",
                 "Why W = 100 Steps", theory=f"{100 * share:g} %", tolerance="printed (±0.05 %)",
                 verdict=_verdict(abs(100 * share - 0.2) <= printed_tolerance("0.2")),
                 claimed=0.2, computed=100 * share)


@_check("000")
def _gate_off_by_one(ctx: _Context) -> AuditItem:
    counts = {}
    for w in (0, 1, 10, 100):
        tr = GABAController(2, warmup=w).run(np.ones((w + 5, 2)))
        counts[w] = int((~tr.active).sum())
    steps = np.arange(0, 205)
    after_le = int(np.sum(steps[:-1] <= 100))  # counter incremented after the check
    before_lt = int(np.sum(steps[1:] < 100))  # incremented before, strict comparison
    ok = all(counts[w] == w for w in counts) and after_le == 101 and before_lt == 99
    return _item("000", "gate_count", "increment-then-≤ gives exactly W warmup steps; "
                 "increment after the check gives 101, a strict < gives 99",
                 "Pitfalls In Warmup Gating", theory="t ≤ W for t = 1…",
                 simulation=f"gated steps for W = 0, 1, 10, 100: {list(counts.values())}; "
                 f"variants {after_le} / {before_lt}", tolerance="exact",
                 verdict=_verdict(ok), claimed=100.0, computed=float(counts[100]))


@_check("000")
def _step_counter_persists(ctx: _Context) -> AuditItem:
    g = np.tile([5.0, 0.01], (3, 1))
    source = GABALoss(2, **PAPER)
    source.step.fill_(5000)
    resumed = GABALoss(2, warmup=PAPER["warmup"])
    resumed.load_state_dict(source.state_dict())
    resumed.update_from_norms(g)
    torch_active = bool(resumed.telemetry()["active"])
    ctrl = GABAController(2, **PAPER)
    ctrl.load_state_dict({"step": 5000, "ema": np.full(2, 0.5), "weights": np.full(2, 0.5)})
    numpy_active = bool(ctrl.run(g).active.all())
    keys = sorted(source.state_dict())
    ok = torch_active and numpy_active and "step" in keys
    return _item("000", "step_buffer", "step_count is a buffer saved by state_dict(), so a run "
                 "resumed at step 5,000 does not re-enter warmup", "Pitfalls In Warmup Gating",
                 theory="the gate reads the restored counter",
                 simulation=f"torch GABALoss state_dict keys {keys}: active after resume = "
                 f"{torch_active}; numpy controller active = {numpy_active}",
                 tolerance="exact", verdict=_verdict(ok))


def _synth_norms(rng: np.random.Generator, steps: int, noise: bool = True) -> np.ndarray:
    """The seed-000 synthetic norms: ramp from (2, 0.5) to (5, 0.01) over 50 steps."""
    t = np.arange(steps)
    blend = np.minimum(1.0, t / 50.0)
    z = rng.standard_normal((steps, 2)) if noise else np.zeros((steps, 2))
    g_rul = np.maximum(2.0 + 3.0 * blend + 0.5 * z[:, 0], 0.01)
    g_health = np.maximum(0.5 - 0.49 * blend + 0.05 * z[:, 1], 1e-6)
    return np.stack([g_rul, g_health], axis=1)


@_check("000")
def _synth_ratio(ctx: _Context) -> AuditItem:
    rng = np.random.default_rng(ctx.seed)
    g = _synth_norms(rng, 20000)[50:]
    ratio = g[:, 0] / g[:, 1]
    median = float(np.median(ratio))
    clipped = float(np.mean(g[:, 1] <= 1e-6))
    mean_ratio = float(g[:, 0].mean() / g[:, 1].mean())
    ok = abs(median - 500) <= 0.25 * 500
    return _item("000", "synth_ratio", "synth(): ratio 2.0/0.5 = 4× at step 0 and "
                 "5.0/0.01 = 500× from step 50 on", "Python: Warmup Gate From Scratch",
                 theory="means: 4×, 500×", simulation=f"median per-step ratio {median:.0f}×; "
                 f"ratio of mean norms {mean_ratio:.0f}×; g_health clipped at 1e-6 in "
                 f"{100 * clipped:.0f} % of steps", tolerance="median, rel 0.25",
                 verdict=_verdict(ok), evidence="the health noise (sd 0.05) is five times its "
                 "mean 0.01, so the realised norms are far from a steady 500×",
                 claimed=500.0, computed=median)


@_check("000")
def _no_warmup_overshoot(ctx: _Context) -> AuditItem:
    g = _synth_norms(np.random.default_rng(ctx.seed), 3000, noise=False)
    w = GABAController(2, beta=0.99, warmup=0, lambda_min=0.05).run(g).weights[:, 0]
    undershoot = float(w[-1] - w.min())
    ok = undershoot > 1e-6
    return _item("000", "w0_overshoot", "with W = 0 the trajectory drops immediately and "
                 "overshoots before settling", "Why Step-0 Gradients Are Untrustworthy",
                 theory="a first-order low-pass of a monotone input cannot overshoot",
                 simulation=f"synth means, W = 0: final {w[-1]:.5f}, minimum {w.min():.5f}",
                 tolerance="overshoot > 1e-6", verdict=_verdict(ok),
                 evidence=f"no overshoot (final − min = {undershoot:.1e})",
                 claimed=None, computed=undershoot)


@_check("000")
def _gradients_stabilise_50(ctx: _Context) -> AuditItem:
    facts = _trace_facts(ctx.trace)
    real = NO_TRACE if facts is None else facts.describe()
    return _not_testable("000", "stabilise_50", "empirically ~50 steps suffice for gradient "
                         "magnitudes to stabilise; at step 0 the ratio is anywhere in 1×–100×",
                         "Why W = 100 Steps", "one trace cannot show a spread over seeds, and "
                         "'stabilise' is not defined; the paper's runs are not available", real)


@_check("000")
def _paper_warmup_statements(ctx: _Context) -> AuditItem:
    return _not_testable("000", "paper_warmup", "n = 4,120 epoch-level samples; warmup "
                         "cost-benefit > 1,000×",
                         "Why Step-0 Gradients Are Untrustworthy / Why W = 100 Steps",
                         "paper (main.tex) and its runs are not available")


def _sweep_row(seed: str, key: str, parameter: str, low: float, high: float, claim: str,
               section: str) -> AuditItem:
    """A robustness claim decided by the committed sweep (``gaba-control sweep``, TOST)."""
    from .sweep import SWEEP_RESULTS, settings_sweep_response

    runs = SWEEP_RESULTS / "runs.csv"
    if not runs.is_file():
        return _not_testable(seed, key, claim, section,
                             f"no committed sweep results ({runs} not found; run "
                             "gaba-control sweep, see results/README.md)")
    v = settings_sweep_response(runs).range_verdict(parameter, low, high)
    points = "; ".join(
        f"{parameter} = {e['value']:g}: Δ {e['diff']:+.2f} [90 % CI {e['ci90'][0]:+.2f}, "
        f"{e['ci90'][1]:+.2f}], TOST Holm p {e['tost_holm_p']:.2g}, t Holm p "
        f"{e['t_holm_p']:.2g}" for e in v["points"])
    seeds = sorted({e["n"] for e in v["points"]})
    real = (f"{v['subset']}, GABA, test RMSE paired by seed against the centre (n = "
            f"{'/'.join(map(str, seeds)) or 0} seeds per point): {points}")
    verdict = {"holds": "holds", "refuted": "refuted"}.get(v["verdict"], "not testable")
    evidence = {"holds": f"every point in range equivalent to the centre within "
                         f"±{v['margin']:g} cycles (TOST, Holm over the sweep's points)",
                "refuted": "a point in range differs from the centre (paired t, Holm) and is "
                           f"not equivalent within ±{v['margin']:g} cycles",
                "not shown": f"inconclusive at {'/'.join(map(str, seeds))} seeds: no point in "
                             "range differs significantly, yet equivalence within "
                             f"±{v['margin']:g} cycles is not shown for all (more seeds needed)",
                "untested": "the sweep has no point of this range"}[v["verdict"]]
    return _item(seed, key, claim, section, theory="—", simulation="—", real_run=real,
                 tolerance=f"TOST margin ±{v['margin']:g} cycles, α = 0.05", verdict=verdict,
                 evidence=evidence)


@_check("000")
def _warmup_robustness(ctx: _Context) -> AuditItem:
    return _sweep_row("000", "warmup_range", "warmup", 50, 200,
                      "§5.8: results statistically indistinguishable for W ∈ [50, 200]",
                      "Why W = 100 Steps")


def _printed_off(pairs) -> list[str]:
    """The ``(computed, printed)`` pairs that differ by more than half a printed unit.

    Returns them as ``"printed (computed …)"`` strings; empty when every value matches.

    Examples
    --------
    >>> _printed_off([(0.30329, "0.30188"), (0.4950, "0.495")])
    ['0.30188 (computed 0.30329)']
    """
    return [f"{text} (computed {_g(value)})" for value, text in pairs
            if not abs(float(value) - float(text)) <= printed_tolerance(text)]


@cache
def _startup_replay() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seed 000's start-up script replayed: λ*_RUL, the EMA and the gate per loop index t."""
    g = _synth_norms(np.random.RandomState(0), 500)  # the stream of np.random.seed(0) + randn()
    tr = GABAController(2, **PAPER).run(g)
    return tr.weights[:, 0], tr.ema, tr.active


@_check("000")
def _startup_milestones(ctx: _Context) -> AuditItem:
    lam, ema, active = _startup_replay()
    printed = {0: "0.500000", 50: "0.500000", 99: "0.500000", 100: "0.495051", 101: "0.490150",
               150: "0.301712", 200: "0.185016", 300: "0.070340", 499: "0.048225"}
    off = _printed_off([(lam[t], text) for t, text in printed.items()]
                       + [(ema[100, 0], "0.495"), (ema[100, 1], "0.505")])
    gated = [t + 1 for t in (0, 50, 99) if not active[t]]
    ok = not off and gated == [1, 51, 100] and bool(active[100])
    worst = max(abs(lam[t] - float(v)) for t, v in printed.items())
    return _item("000", "startup_table", "np.random.seed(0) start-up table: trace[t] = 0.500000 "
                 "at t = 0, 50, 99 (step_count 1, 51, 100: warmup); t = 100 (first active, ema ≈ "
                 "[0.495, 0.505]) 0.495051; t = 101 0.490150; t = 150 0.301712; t = 200 0.185016; "
                 "t = 300 0.070340; t = 499 0.048225", "Python: Warmup Gate From Scratch",
                 theory="the seed's synth() and gaba_step, W = 100, β = 0.99, λmin = 0.05",
                 simulation="GABAController on the legacy stream (RandomState(0), g_RUL drawn "
                 "first): " + ", ".join(f"t = {t}: {lam[t]:.6f}" for t in printed)
                 + f"; gated step_counts {gated}", tolerance="printed (±5e-7; ±5e-4 for 3 digits)",
                 verdict=_verdict(ok), evidence=f"off by up to {worst:.1e}: " + "; ".join(off)
                 if off else "", claimed=0.185016, computed=float(lam[200]))


@cache
def _torch_gate_run() -> np.ndarray:
    """Seed 000's WarmupGabaLoss demo: λ* per step 1…150 for the constant raw [0.002, 0.998]."""
    loss = GABALoss(2, **PAPER).float()  # the seed's module is float32
    return loss.update_from_norms(np.tile([0.998, 0.002], (150, 1))).double().numpy()


@_check("000")
def _torch_gate_table(ctx: _Context) -> AuditItem:
    out = _torch_gate_run()
    table = {1: ("0.500000", "0.500000"), 50: ("0.500000", "0.500000"),
             99: ("0.500000", "0.500000"), 100: ("0.500000", "0.500000"),
             101: ("0.495020", "0.504980"), 105: ("0.475570", "0.524430"),
             110: ("0.452029", "0.547971"), 130: ("0.367892", "0.632108"),
             150: ("0.301880", "0.698120")}
    trace = {101: ("0.49502", "0.50498"), 105: ("0.47557", "0.52443"),
             110: ("0.45203", "0.54797"), 130: ("0.36789", "0.63211"),
             150: ("0.30188", "0.69812")}
    pairs = [(out[s - 1, i], v) for rows in (table, trace) for s, vals in rows.items()
             for i, v in enumerate(vals)]
    off = _printed_off(pairs)
    steps = np.array(list(table))
    closed = ema_after_active_steps([0.002, 0.998], active_steps(steps, PAPER["warmup"]),
                                    PAPER["beta"])[:, 0]
    return _item("000", "torch_gate_table", "WarmupGabaLoss demo, constant raw [0.002, 0.998]: "
                 "out = [0.5, 0.5] at steps 1, 50, 99, 100; step 101 [0.49502, 0.50498], 105 "
                 "[0.47557, 0.52443], 110 [0.45203, 0.54797], 130 [0.36789, 0.63211], 150 "
                 "[0.30188, 0.69812]; table: 0.495020/0.504980, 0.475570/0.524430, "
                 "0.452029/0.547971, 0.367892/0.632108, 0.301880/0.698120",
                 "PyTorch: The Paper's Branching Code",
                 theory="λ̂_RUL = 0.002 + 0.498·β^(t−W): " + ", ".join(
                     f"{s}: {v:.6f}" for s, v in zip(steps, closed, strict=True) if s > 100),
                 simulation="GABALoss (float32): " + ", ".join(
                     f"{s}: {out[s - 1, 0]:.6f}" for s in table if s > 100),
                 tolerance="printed (±5e-6 / ±5e-7)", verdict=_verdict(not off),
                 evidence=f"{len(off)} of {len(pairs)} values off: " + "; ".join(off[:6])
                 if off else "", claimed=0.30188, computed=float(out[149, 0]))


@_check("000")
def _half_way_at_150(ctx: _Context) -> AuditItem:
    lam = float(_torch_gate_run()[149, 0])
    final = float(formulas.floor_renormalise(np.array([0.002, 0.998]), PAPER["lambda_min"])[0])
    progress = (0.5 - lam) / (0.5 - final)
    ok = abs(lam - 0.30) <= printed_tolerance("0.30") and abs(progress - 0.5) <= 0.1
    return _item("000", "half_way_150", "after 50 active steps (step 150) λ_rul has dropped from "
                 "0.5 to 0.30, about half-way to the steady-state target 0.04762",
                 "PyTorch: The Paper's Branching Code",
                 theory=f"1 − β^50 = {1 - PAPER['beta'] ** 50:.3f} of the EMA gap",
                 simulation=f"λ*_RUL(150) = {lam:.5f}: {progress:.3f} of the way from 0.5 to the "
                 f"steady state {final:.5f}", tolerance="printed 0.30 (±0.005); half-way ± 0.1",
                 verdict=_verdict(ok), evidence=f"{lam:.4f} matches 0.30; the way covered is "
                 f"{progress:.2f} (the steady state of raw [0.002, 0.998] is {final:.5f}, not the "
                 "bound 0.04762)", claimed=0.30, computed=lam)


# ----------------------------------------------------------------------------- seed 001


@_check("001")
def _simplex_preserved(ctx: _Context) -> AuditItem:
    rng = np.random.default_rng(ctx.seed)
    worst = 0.0
    for k in (2, 3, 5, 8):
        g = rng.lognormal(0.0, 2.0, size=(300, k))
        tr = GABAController(k, beta=0.99, warmup=0).run(g)
        worst = max(worst, float(np.abs(tr.ema.sum(axis=-1) - 1).max()))
    return _item("001", "ema_simplex", "the EMA is a convex combination, so λ̂ stays on the "
                 "simplex (Σλ̂ = 1) for all t", "The EMA Update (Paper Eq. 5)",
                 theory="β + (1−β) = 1", simulation=f"max |Σλ̂ − 1| = {worst:.1e} "
                 "(K = 2, 3, 5, 8; 300 steps)", tolerance="abs 1e-12",
                 verdict=_verdict(worst <= 1e-12), claimed=0.0, computed=worst)


@_check("001")
def _per_step_factor(ctx: _Context) -> AuditItem:
    rng = np.random.default_rng(ctx.seed)
    n = 20000
    g = np.stack([np.maximum(5 + rng.standard_normal(n), 0.01),
                  np.maximum(0.01 + 0.005 * rng.standard_normal(n), 1e-6)], axis=1)
    lam = formulas.raw_weights(g)[:, 0]
    factor = np.maximum(lam[1:] / lam[:-1], lam[:-1] / lam[1:])
    median, p95 = float(np.median(factor)), float(np.quantile(factor, 0.95))
    ok = abs(median - 5) <= 0.5 * 5
    return _item("001", "factor_5x", "raw λ* \"fluctuates 5× per step\" on a 500×-imbalanced "
                 "problem", "GPS On A Bumpy Road",
                 theory="the seed's own noise model: g_RUL ~ N(5, 1), g_health ~ N(0.01, 0.005)",
                 simulation=f"step-to-step factor: median {median:.2f}×, 95th percentile "
                 f"{p95:.1f}×", tolerance="median, rel 0.5", verdict=_verdict(ok),
                 evidence=f"typical factor {median:.2f}×", claimed=5.0, computed=median)


@_check("001")
def _slow_beta_half(ctx: _Context) -> AuditItem:
    frac = float(iir_theory.fraction_settled(0.999, 600))
    return _item("001", "beta999_600", "β = 0.999: after 600 steps the EMA \"hasn't even reached "
                 "50 %\" (τ = 1000)", "Interactive: Beta Sweep And Step Response",
                 theory=f"1 − 0.999^600 = {frac:.4f}", tolerance="< 0.5",
                 verdict=_verdict(frac < 0.5), claimed=0.5, computed=frac)


@_check("001")
def _slow_beta_short_run(ctx: _Context) -> AuditItem:
    tau = iir_theory.time_constant(0.999)
    n95 = iir_theory.settling_steps(0.999, 0.05)
    frac = float(iir_theory.fraction_settled(0.999, 500))
    ok = math.isclose(tau, 1000, rel_tol=1e-9) and n95 > 500 and abs(n95 - 3000) <= 0.05 * 3000
    return _item("001", "beta999_500", "β = 0.999: τ = 1000, 3τ = 3000 steps; a 500-step run "
                 "never reaches steady state", "Three Pitfalls That Break EMA Stabilisation",
                 theory=f"τ = {tau:g}; 95 % at {n95} steps", simulation=f"settled after 500: "
                 f"{100 * frac:.1f} %", tolerance="rel 0.05", verdict=_verdict(ok),
                 claimed=3000.0, computed=float(n95))


@_check("001")
def _zero_init(ctx: _Context) -> AuditItem:
    beta = PAPER["beta"]
    raw = np.array([0.002, 0.998])
    ema = np.zeros(2)
    sums, out_sums = [], []
    for _ in range(100):
        ema = formulas.ema_update(ema, raw, beta)
        sums.append(ema.sum())
        out_sums.append(formulas.floor_renormalise(ema, PAPER["lambda_min"]).sum())
    out_dev = float(np.abs(np.array(out_sums) - 1).max())
    ok = out_dev > 0.1
    return _item("001", "zero_init", "initialising λ̂ at 0: the first 100 steps run on "
                 "un-normalised weights, the combined loss has scale near zero",
                 "Three Pitfalls That Break EMA Stabilisation", theory="Σλ̂ = 1 − β^t",
                 simulation=f"Σλ̂ = {sums[0]:.2f} at t = 1, {sums[-1]:.3f} at t = 100; "
                 f"Σλ* after floor + renormalise: 1 (max dev {out_dev:.1e})",
                 tolerance="Σλ* off 1 by > 0.1", verdict=_verdict(ok),
                 evidence="λ* = floor_renormalise(λ̂) sums to 1 at every step, so the loss scale "
                 "is unchanged; even an EMA-only module (no renormalisation) has Σλ̂ = 1 − β^t, "
                 "near zero for the first few steps only (0.63 at t = 100)",
                 claimed=0.0, computed=float(out_sums[0]))


@_check("001")
def _state_dict_float32(ctx: _Context) -> AuditItem:
    claimed = (0.010939374566078186, 0.9890638589859009)
    raw = torch.tensor([0.002, 0.998], dtype=torch.float32)
    ema = torch.full((2,), 0.5, dtype=torch.float32)
    for _ in range(400):
        ema = formulas.ema_update(ema, raw, 0.99)
    source = GABALoss(2, warmup=0)
    source.ema.copy_(ema)
    source.step.fill_(400)
    restored = GABALoss(2, warmup=0)
    restored.load_state_dict(source.state_dict())
    got = tuple(restored.ema.tolist())
    ok = got == claimed and int(restored.step) == 400
    return _item("001", "state_dict_f32", "state_dict round trip after 400 steps: ema_weights "
                 "[0.010939374566078186, 0.9890638589859009], step_count 400",
                 "PyTorch: register_buffer And The Detach Trick",
                 theory="float32 EMA of [0.002, 0.998] from [0.5, 0.5]",
                 simulation=f"torch {torch.__version__} float32, GABALoss state_dict: "
                 f"[{got[0]!r}, {got[1]!r}]", tolerance="bit-exact",
                 verdict=_verdict(ok), claimed=claimed[0], computed=got[0])


def _graph_nodes(tensor: torch.Tensor) -> int:
    """Autograd nodes reachable from ``tensor.grad_fn`` (0 for a tensor without history)."""
    seen, stack = set(), [tensor.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        stack.extend(next_fn for next_fn, _ in node.next_functions)
    return len(seen)


@cache
def _detach_growth(steps: int) -> dict:
    """Graph size of an EMA buffer with and without ``.detach()`` for two kinds of raw weights."""
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    x = torch.randn(16, 4)
    out = {}
    for history in (True, False):
        for detach in (True, False):
            ema = torch.full((2,), 0.5)
            sizes = []
            for _ in range(steps):
                losses = model(x).pow(2).mean(0)
                if history:  # raw weights that are a differentiable function of the losses
                    raw = torch.softmax(-losses, 0)
                else:  # the paper's path: norms of autograd.grad (no create_graph)
                    norms = torch.stack([torch.sqrt(sum(g.pow(2).sum() for g in torch.autograd.grad(
                        loss, list(model.parameters()), retain_graph=True))) for loss in losses])
                    raw = formulas.raw_weights(norms)
                ema = formulas.ema_update(ema, raw, 0.99)
                if detach:
                    ema = ema.detach()
                sizes.append(_graph_nodes(ema))
            out[(history, detach)] = np.array(sizes)
    return out


@_check("001")
def _detach_memory(ctx: _Context) -> AuditItem:
    steps = 60 if ctx.quick else 300
    sizes = _detach_growth(steps)
    leak = sizes[(True, False)]
    per_step = float(np.polyfit(np.arange(1, steps + 1), leak, 1)[0])
    linear = np.allclose(np.diff(leak[5:]), per_step, atol=1e-9)
    flat = sizes[(True, True)].max() <= sizes[(True, True)][0]
    paper_path = int(sizes[(False, False)].max())
    ok = linear and flat and per_step > 0
    return _item("001", "detach_growth", "without .detach() the autograd graph (memory) grows "
                 "linearly with the step count; with it, it is constant",
                 "PyTorch: register_buffer And The Detach Trick",
                 theory="each update adds the step's graph to the chain through the buffer",
                 simulation=f"{steps} steps: +{per_step:.0f} nodes/step without detach, "
                 f"{int(sizes[(True, True)].max())} with; raw from autograd.grad norms: "
                 f"{paper_path} nodes without detach", tolerance="exactly linear / constant",
                 verdict=_verdict(ok), evidence="holds only when the raw weights carry autograd "
                 "history; norms from autograd.grad (create_graph=False) carry none",
                 claimed=None, computed=per_step)


@_check("001")
def _oom_1000(ctx: _Context) -> AuditItem:
    steps = 60 if ctx.quick else 300
    paper_path = int(_detach_growth(steps)[(False, False)].max())
    ok = paper_path > 0
    return _item("001", "oom_1000", "forgetting .detach() OOMs \"after ~1,000 steps\"; "
                 "the paper's .detach() \"is the line that makes GABA fixed-memory\"",
                 "PyTorch: register_buffer And The Detach Trick",
                 theory="leak per step = the tensors saved by that step's raw-weight graph; "
                 "steps to OOM = free memory / leak, no fixed ~1,000",
                 simulation=f"paper path (norms from autograd.grad, create_graph=False), no "
                 f"detach: {paper_path} graph nodes after {steps} steps",
                 tolerance="any growth", verdict=_verdict(ok),
                 evidence="in the paper's code path the EMA never carries history, so omitting "
                 "the detach leaks nothing; with a differentiable sensor the OOM step depends "
                 "on activation size, not on ~1,000", claimed=None, computed=float(paper_path))


@cache
def _ema_float32_run() -> np.ndarray:
    """Seed 001's GabaEMA smoke test: the float32 EMA of [0.002, 0.998] from [0.5, 0.5], steps
    1…400 (row ``t − 1`` is step ``t``)."""
    raw = torch.tensor([0.002, 0.998], dtype=torch.float32)
    ema = torch.full((2,), 0.5, dtype=torch.float32)
    rows = []
    for _ in range(400):
        ema = formulas.ema_update(ema, raw, 0.99)
        rows.append(ema.tolist())
    return np.array(rows)


@_check("001")
def _ema_table_float32(ctx: _Context) -> AuditItem:
    ema = _ema_float32_run()
    table = {1: ("0.495020", "0.504980"), 50: ("0.303293", "0.696708"),
             100: ("0.184284", "0.815718"), 200: ("0.068722", "0.931281"),
             300: ("0.026422", "0.973581"), 400: ("0.010939", "0.989064")}
    pairs = [(ema[s - 1, i], v) for s, vals in table.items() for i, v in enumerate(vals)]
    pairs += [(ema[0, 0], "0.49502"), (ema[0, 1], "0.50498"), (ema[399, 0], "0.0109"),
              (ema[399, 1], "0.9891")]
    check = 0.5 + (0.998 - 0.5) * 0.632  # the seed's by-hand check at 1τ (its arithmetic)
    gap = (0.5 - ema[:, 0]) / (0.5 - 0.002)
    crossing = int(np.flatnonzero(gap >= 0.5)[0]) + 1
    off = _printed_off([*pairs, (check, "0.815")])
    ok = not off and crossing == 69
    return _item("001", "ema_table_f32", "GabaEMA smoke test, raw [0.002, 0.998] from [0.5, 0.5]: "
                 "step 1 (0.495020, 0.504980) = [0.49502, 0.50498]; 50 (0.303293, 0.696708), the "
                 "half-life crossed at step 69; 100 (0.184284, 0.815718), check 0.5 + (0.998 − "
                 "0.5)·0.632 = 0.815; 200 (0.068722, 0.931281); 300 (0.026422, 0.973581); 400 "
                 "(0.010939, 0.989064) ≈ (0.0109, 0.9891)",
                 "PyTorch: register_buffer And The Detach Trick",
                 theory=f"by-hand check 0.5 + 0.498·0.632 = {check:.6f} (with 1 − β^100 = "
                 f"{1 - 0.99 ** 100:.4f} for 1 − 1/e: {0.5 + 0.498 * (1 - 0.99 ** 100):.6f})",
                 simulation="float32 eq. 5: " + ", ".join(
                     f"{s}: ({ema[s - 1, 0]:.6f}, {ema[s - 1, 1]:.6f})" for s in table)
                 + f"; gap first ≤ ½ at step {crossing}", tolerance="printed digits",
                 verdict=_verdict(ok), evidence="; ".join(off), claimed=0.010939,
                 computed=float(ema[399, 0]))


def _absorbed_row(key: str, steps: int, printed: str, claim: str, section: str) -> AuditItem:
    """A seed-001 "fraction absorbed after ``steps`` steps" claim against 1 − β^steps."""
    theory = 100 * float(iir_theory.fraction_settled(0.99, steps))
    ema = _ema_float32_run()
    simulated = 100 * float((0.5 - ema[steps - 1, 0]) / (0.5 - 0.002))
    ok = abs(theory - float(printed)) <= printed_tolerance(printed)
    return _item("001", key, claim, section, theory=f"1 − β^{steps} = {theory:.3f} %",
                 simulation=f"float32 EMA of the step: {simulated:.3f} % of the gap closed",
                 tolerance=f"printed (±{printed_tolerance(printed):g} percentage points)",
                 verdict=_verdict(ok), evidence="" if ok else f"{theory:.2f} %: "
                 f"1 − e^−{steps // 100} = {100 * (1 - math.exp(-steps / 100)):.2f} % is the "
                 "continuous-time value, the EMA closes 1 − β^n", claimed=float(printed),
                 computed=theory)


@_check("001")
def _absorbed_100(ctx: _Context) -> AuditItem:
    return _absorbed_row("absorbed_100", 100, "63", "after 100 steps the EMA has absorbed ≈ 63% "
                         "of any sustained change (1 − 1/e)", "Python: EMA From Scratch")


@_check("001")
def _absorbed_200(ctx: _Context) -> AuditItem:
    return _absorbed_row("absorbed_200", 200, "86.5", "at step 200 (= 2τ) the fraction absorbed "
                         "is ≈ 86.5%", "PyTorch: register_buffer And The Detach Trick")


@cache
def _ema_demo() -> dict:
    """Seed 001's ema_from_scratch.py on the np.random.seed(0) stream (n = 1000)."""
    rs = np.random.RandomState(0)  # np.random.randn draws, g_RUL's 1000 first
    n = 1000
    g_rul = np.maximum(5.0 + 1.0 * rs.standard_normal(n), 0.01)
    g_health = np.maximum(0.01 + 0.005 * rs.standard_normal(n), 1e-6)
    raw = formulas.raw_weights(np.stack([g_rul, g_health], axis=1))[:, 0]
    ema = np.empty_like(raw)
    ema[0] = raw.mean()  # the seed's ema_run(init=mean): out[0] = init, then eq. 5 from t = 1
    for t in range(1, n):
        ema[t] = formulas.ema_update(ema[t - 1], raw[t], 0.99)
    return {"raw_mean": float(raw.mean()), "raw_std": float(raw.std()),
            "ema_mean": float(ema.mean()), "ema_std": float(ema.std()),
            "ratio": float(raw.std() / ema.std())}


@_check("001")
def _ema_demo_stats(ctx: _Context) -> AuditItem:
    d = _ema_demo()
    pairs = [(d["raw_mean"], "0.002130"), (d["raw_mean"], "0.00213"), (d["raw_std"], "0.001150"),
             (d["raw_std"], "0.00115"), (d["ema_mean"], "0.002140"), (d["ema_mean"], "0.00214"),
             (d["ema_std"], "0.000059"), (d["ema_std"], "0.0000587"), (d["ratio"], "19.4"),
             (d["ratio"], "19.6")]
    off = _printed_off(pairs)
    return _item("001", "ema_demo", "ema_from_scratch.py (np.random.seed(0), n = 1000): raw λ "
                 "mean 0.002130 (≈ 0.00213), std 0.001150 (≈ 0.00115); EMA from the mean: mean "
                 "0.002140 (≈ 0.00214), std 0.000059 (≈ 0.0000587); reduction 19.4× printed, "
                 "0.001150/0.0000587 ≈ 19.6× in the walkthrough", "Python: EMA From Scratch",
                 theory="the seed's source: g_RUL = max(5 + randn, 0.01), g_health = max(0.01 + "
                 "0.005·randn, 1e-6), λ = g_health/Σg, ema_run(init = mean)",
                 simulation=f"legacy stream: raw mean {d['raw_mean']:.6f}, std "
                 f"{d['raw_std']:.6f}; EMA mean {d['ema_mean']:.6f}, std {d['ema_std']:.3e}; "
                 f"ratio {d['ratio']:.2f}×", tolerance="printed digits",
                 verdict=_verdict(not off), evidence="the printed output holds; the walkthrough's "
                 "own numbers do not: " + "; ".join(off) if off else "",
                 claimed=0.0000587, computed=d["ema_std"])


@_check("001")
def _std_ratio_takeaway(ctx: _Context) -> AuditItem:
    theory = variance.std_reduction(0.99)
    empirical = _ema_demo()["ratio"]
    ok = abs(theory - 14) <= printed_tolerance("14") and abs(empirical - 19) <= \
        printed_tolerance("19")
    return _item("001", "std_ratio_14", "std ratio √((1+β)/(1−β)) ≈ 14× at β = 0.99 for i.i.d. "
                 "noise; empirically 19× on the demo's gradient noise", "Takeaway",
                 theory=f"√199 = {theory:.4f}", simulation=f"the seed-0 demo: {empirical:.2f}×",
                 tolerance="printed (±0.5)", verdict=_verdict(ok),
                 evidence="the 19× is one draw of a finite window; the seed's serial-correlation "
                 "explanation is a row of the noise study", claimed=14.0, computed=theory)


@_check("001")
def _half_life_parts(ctx: _Context) -> AuditItem:
    ln2, ln_beta = math.log(2), -math.log(0.99)
    half = iir_theory.half_life(0.99)
    off = _printed_off([(ln2, "0.6931"), (ln_beta, "0.01005"), (half, "68.97")])
    return _item("001", "half_life_parts", "half_life = ln(2)/|ln(0.99)| = 0.6931/0.01005 ≈ 68.97 "
                 "steps", "Python: EMA From Scratch",
                 theory=f"ln 2 = {ln2:.6f}, −ln 0.99 = {ln_beta:.6f}; half_life() = {half:.4f}",
                 tolerance="printed digits", verdict=_verdict(not off), evidence="; ".join(off),
                 claimed=68.97, computed=half)


@_check("001")
def _long_bits(ctx: _Context) -> AuditItem:
    info = torch.iinfo(torch.long)
    ok = info.bits == 64 and info.min < 0
    return _item("001", "long_bits", "dtype = torch.long is a 64-bit signed integer (the "
                 "step_count buffer)", "PyTorch: register_buffer And The Detach Trick",
                 theory="torch.iinfo", simulation=f"torch.long: {info.bits} bits, min {info.min}",
                 tolerance="exact", verdict=_verdict(ok), claimed=64.0, computed=float(info.bits))


@_check("001")
def _adam_defaults(ctx: _Context) -> AuditItem:
    betas = inspect.signature(torch.optim.Adam).parameters["betas"].default
    ok = tuple(betas) == (0.9, 0.999)
    return _item("001", "adam_betas", "EMA in other fields: Adam's moments use β₁ = 0.9, "
                 "β₂ = 0.999", "EMA In Other Fields", theory="torch.optim.Adam signature",
                 simulation=f"torch {torch.__version__}: betas = {betas}", tolerance="exact",
                 verdict=_verdict(ok), claimed=0.9, computed=float(betas[0]))


@_check("001")
def _other_fields(ctx: _Context) -> AuditItem:
    return _not_testable("001", "other_fields", "EMA in other fields: target Q-network (Polyak) "
                         "averaging uses β ≈ 0.995 — 0.999", "EMA In Other Fields",
                         "a convention of reinforcement-learning practice, not a property of "
                         "GABA or of a library default this toolkit can read")


# ----------------------------------------------------------------------------- seed 002


def _raw_rul(g_rul, g_health):
    return formulas.raw_weights(torch.stack([g_rul, g_health]))[0]


@_check("002")
def _sensitivity(ctx: _Context) -> AuditItem:
    g_r = torch.tensor(5.0, dtype=torch.float64)
    g_h = torch.tensor(0.01, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(_raw_rul(g_r, g_h), g_h)
    theory = 5.0 / 5.01**2
    h = 1e-7
    fd = float((_raw_rul(g_r, g_h.detach() + h) - _raw_rul(g_r, g_h.detach() - h)) / (2 * h))
    ok = abs(float(grad) - 0.2) <= 0.1 * 0.2
    return _item("002", "sensitivity", "∂λ_RUL/∂g_health \"~0.2 when g_health is small\" "
                 "(500× point, g = [5, 0.01])", "What Happens Without A Floor",
                 theory=f"g_RUL/(g_RUL + g_health)² = {theory:.5f}",
                 simulation=f"torch autograd {float(grad):.5f}; central difference {fd:.5f}",
                 tolerance="rel 0.1", verdict=_verdict(ok), claimed=0.2, computed=float(grad))


@_check("002")
def _noise_amplification(ctx: _Context) -> AuditItem:
    g_r = torch.tensor(5.0, dtype=torch.float64)
    g_h = torch.tensor(0.01, dtype=torch.float64, requires_grad=True)
    lam = _raw_rul(g_r, g_h)
    (grad,) = torch.autograd.grad(lam, g_h)
    elasticity = float((grad * g_h / lam).detach())
    rng = np.random.default_rng(ctx.seed)
    gh = 0.01 * rng.lognormal(0.0, 0.3, 50000)
    raw = formulas.raw_weights(np.stack([np.full_like(gh, 5.0), gh], axis=1))[:, 0]
    gain = float((raw.std() / raw.mean()) / (gh.std() / gh.mean()))
    ok = gain > 1.5
    return _item("002", "amplification", "near λ* ≈ 0 the closed form has \"very high relative "
                 "sensitivity\": near-zero weights amplify per-batch fluctuations",
                 "What Happens Without A Floor",
                 theory=f"elasticity ∂ln λ/∂ln g_health = g_RUL/Σg = {elasticity:.4f}",
                 simulation=f"CV(λ)/CV(g_health) = {gain:.3f} (g_health CV 0.3)",
                 tolerance="amplification > 1.5", verdict=_verdict(ok),
                 evidence=f"relative fluctuations pass through with gain {gain:.2f} (≤ 1): "
                 "no amplification", claimed=None, computed=gain)


def _ulps32(a: float, b: float) -> int:
    ia = np.array([a], dtype=np.float32).view(np.int32)[0]
    ib = np.array([b], dtype=np.float32).view(np.int32)[0]
    return abs(int(ia) - int(ib))


@_check("002")
def _floor_float32_prints(ctx: _Context) -> AuditItem:
    seed_a = (0.04770992398262024, 0.9522900581359863)
    seed_x = (0.04761904925107956, 0.9523810148239136)
    got_a = formulas.floor_renormalise(torch.tensor([0.002, 0.998]), 0.05).tolist()
    got_x = formulas.floor_renormalise(torch.tensor([0.0, 1.0]), 0.05).tolist()
    printed = seed_a + seed_x
    ulps = [_ulps32(s, g) for s, g in zip(printed, got_a + got_x, strict=True)]
    not_float32 = [v for v in printed if float(np.float32(v)) != v]
    ok = not not_float32 and max(ulps) == 0
    return _item("002", "float32_prints", "torch float32 prints: A → [0.04770992398262024, "
                 "0.9522900581359863]; [0, 1] → [0.04761904925107956, 0.9523810148239136]",
                 "PyTorch: clamp + renormalise (Paper Code)",
                 theory="float32 clamp + divide by the float32 sum; .tolist() prints float32 "
                 "values exactly",
                 simulation=f"torch {torch.__version__}: A → [{got_a[0]!r}, {got_a[1]!r}], "
                 f"[0, 1] → [{got_x[0]!r}, {got_x[1]!r}]", tolerance="bit-exact (17 digits)",
                 verdict=_verdict(ok),
                 evidence=(f"{len(not_float32)} of the 4 printed values are not float32 numbers "
                           f"({', '.join(repr(v) for v in not_float32)}), so no float32 tensor "
                           f"prints them; torch differs by {ulps} ulp after rounding them"
                           if not ok else ""),
                 claimed=seed_a[0], computed=got_a[0])


@_check("002")
def _sum_gradient_zero(ctx: _Context) -> AuditItem:
    grads = {}
    for dtype in (torch.float32, torch.float64):
        ema = torch.tensor([0.002, 0.998], dtype=dtype, requires_grad=True)
        formulas.floor_renormalise(ema, 0.05).sum().backward()
        grads[dtype] = ema.grad.tolist()
    g32 = max(abs(v) for v in grads[torch.float32])
    g64 = max(abs(v) for v in grads[torch.float64])
    ok = g32 == 0.0
    return _item("002", "sum_grad", "d(Σ out)/d ema at [0.002, 0.998] \"is exactly zero\": "
                 "[0.0, 0.0]", "PyTorch: clamp + renormalise (Paper Code)",
                 theory="Σλ* ≡ 1, so the true gradient is 0",
                 simulation=f"float32 {grads[torch.float32]}, float64 {grads[torch.float64]}",
                 tolerance="exact (as printed)", verdict=_verdict(ok),
                 evidence=f"zero only to rounding: |grad| = {g32:.2e} in float32 (2^-24), "
                 f"{g64:.1e} in float64", claimed=0.0, computed=g32)


@_check("002")
def _clamp_subgradient(ctx: _Context) -> AuditItem:
    x = torch.tensor([0.04, 0.05, 0.06], requires_grad=True)
    x.clamp(min=0.05).sum().backward()
    below, at, above = x.grad.tolist()
    ok = below == 0.0 and at == 0.0 and above == 1.0
    return _item("002", "clamp_grad", "clamp(min=v) has gradient 1 above the floor and 0 at or "
                 "below it", "PyTorch: clamp + renormalise (Paper Code)",
                 theory="subgradient choice at the kink is the framework's",
                 simulation=f"torch grads below/at/above: {below:g} / {at:g} / {above:g}",
                 tolerance="exact", verdict=_verdict(ok),
                 evidence="torch passes gradient 1 at the threshold itself (x ≥ min); 0 only "
                 "strictly below", claimed=0.0, computed=at)


@_check("002")
def _floor_before_ema(ctx: _Context) -> AuditItem:
    rng = np.random.default_rng(ctx.seed)
    n, beta, m = (5000 if ctx.quick else 30000), 0.99, 0.05
    results = {}
    for label, mean in (("500×", 0.002), ("near floor", 0.05)):
        raw_rul = np.clip(mean * (1 + 0.5 * rng.standard_normal(n)), 0.0, 0.5)
        raw = np.stack([raw_rul, 1 - raw_rul], axis=1)
        canonical = GABAController(2, beta=beta, warmup=0, lambda_min=m).run(
            np.stack([1 - raw_rul, raw_rul], axis=1)).weights[:, 0]
        floored = formulas.floor_renormalise(raw, m)
        wrong = ema_filter(floored[:, 0], beta, initial=0.5)
        burn = n // 10
        results[label] = float(wrong[burn:].mean() - canonical[burn:].mean())
    ok = results["near floor"] > 1e-3
    return _item("002", "floor_order", "flooring before the EMA \"creates persistent "
                 "low-frequency bias\"", "Pitfalls In The Floor + Renormalise Step",
                 theory="E[max(x, λmin)] > max(E[x], λmin) when the noise straddles λmin",
                 simulation="mean λ*_RUL (floor→EMA) − (EMA→floor): "
                 + ", ".join(f"{k}: {v:+.2e}" for k, v in results.items()),
                 tolerance="bias > 1e-3", verdict=_verdict(ok),
                 evidence="the bias is real where the raw weight straddles λmin, and ~0 at the "
                 "500× point where both orders sit on the floor",
                 claimed=None, computed=results["near floor"])


@_check("002")
def _orders_of_magnitude(ctx: _Context) -> AuditItem:
    orders = math.log10(0.002 / 1e-8)
    ok = abs(orders - 7) <= 0.5
    return _item("002", "orders", "scenarios A and B give nearly the same output \"even though "
                 "raw inputs differ by 7 orders of magnitude\"", _S002_SCENARIOS,
                 theory=f"log10(0.002/1e-8) = {orders:.2f}", tolerance="abs 0.5",
                 verdict=_verdict(ok), evidence=f"{orders:.1f} orders of magnitude",
                 claimed=7.0, computed=orders)


@_check("002")
def _allclose_defaults(ctx: _Context) -> AuditItem:
    params = inspect.signature(np.allclose).parameters
    rtol, atol = params["rtol"].default, params["atol"].default
    ok = rtol == 1e-5 and atol == 1e-8
    return _item("002", "allclose", "np.allclose defaults: atol = 1e-8, rtol = 1e-5",
                 _S002_SCENARIOS, theory="numpy signature",
                 simulation=f"numpy {np.__version__}: rtol = {rtol:g}, atol = {atol:g}",
                 tolerance="exact", verdict=_verdict(ok))


@_check("002")
def _paper_floor_statements(ctx: _Context) -> AuditItem:
    return _not_testable("002", "paper_floor", "GradNorm diverged on 1/5 N-CMAPSS seeds "
                         "(seed 789) where GABA ran",
                         "The Bounded-Weight Guarantee",
                         "no N-CMAPSS data and the paper's runs are not available (GradNorm's "
                         "negative weights on C-MAPSS are a row of the field study)")


@_check("002")
def _floor_robustness(ctx: _Context) -> AuditItem:
    return _sweep_row("002", "floor_range", "lambda_min", 0.02, 0.10,
                      "§5.8: results statistically indistinguishable for λ_min ∈ [0.02, 0.10] "
                      "across the C-MAPSS subsets", "Why λmin = 0.05")


@_check("002")
def _scenario_walkthrough(ctx: _Context) -> AuditItem:
    m = PAPER["lambda_min"]
    ema_a, ema_b = np.array([0.002, 0.998]), np.array([1e-8, 1.0 - 1e-8])
    clamp_a, clamp_b = np.maximum(ema_a, m), np.maximum(ema_b, m)
    out_a, out_b = formulas.floor_renormalise(ema_a, m), formulas.floor_renormalise(ema_b, m)
    pairs = [(clamp_a.sum(), "1.048"), (out_a[0], "0.04771"), (out_a[1], "0.95229"),
             (clamp_b.sum(), "1.05"), (out_b[0], "0.04762"), (out_b[1], "0.95238"),
             (out_b[0], "0.0476")]
    truncated = f"{ema_b[1]:.10f}".startswith("0.9999999")  # printed "0.9999999..."
    off = _printed_off(pairs)
    ok = not off and truncated
    return _item("002", "scenarios_ab", "A: clamp [0.05, 0.998], sum 0.05 + 0.998 = 1.048, out = "
                 "[0.05/1.048, 0.998/1.048] = [0.04771, 0.95229]; B: raw [1e-08, 0.9999999...], "
                 "sum ≈ 1.05, out [0.04762, 0.95238]: the tiny weight is rescued to ~0.0476",
                 _S002_SCENARIOS, theory="eq. 6: max(λ̂, λmin)/Σ max(λ̂, λmin)",
                 simulation=f"A: sum {clamp_a.sum():.6f}, out [{out_a[0]:.6f}, {out_a[1]:.6f}]; "
                 f"B: raw[1] = {float(ema_b[1])!r}, sum {clamp_b.sum():.8f}, out [{out_b[0]:.6f}, "
                 f"{out_b[1]:.6f}]", tolerance="printed digits", verdict=_verdict(ok),
                 evidence="; ".join(off), claimed=0.04771, computed=float(out_a[0]))


@_check("002")
def _aggressive_floor(ctx: _Context) -> AuditItem:
    low, high = reachable_output_bounds(2, 0.4)
    paper_low, paper_high = reachable_output_bounds(2, PAPER["lambda_min"])
    share = (high - low) / (paper_high - paper_low)
    off = _printed_off([(low, "0.286"), (high, "0.714")])
    ok = not off and abs(share - 0.5) <= 0.1
    return _item("002", "floor_04", "λmin = 0.4 on K = 2: the bound becomes [0.286, 0.714], half "
                 "the dynamic range of GABA", "Pitfalls In The Floor + Renormalise Step",
                 theory=f"[λmin/(1+λmin), 1/(1+λmin)] = [{low:.4f}, {high:.4f}]",
                 simulation=f"width {high - low:.4f} vs {paper_high - paper_low:.4f} at λmin = "
                 f"0.05: {share:.3f} of the range", tolerance="printed digits; half ± 0.1",
                 verdict=_verdict(ok), evidence="; ".join(off), claimed=0.286, computed=low)


@_check("002")
def _tiny_weight_arithmetic(ctx: _Context) -> AuditItem:
    parts = 1 / 1e-8
    product = 1e-8 * 100
    ok = math.isclose(parts, 100e6) and math.isclose(product, 1e-6)
    return _item("002", "tiny_weight", "ema_b = [1e-8, ~1.0]: RUL is one part in 100 million; "
                 "without the floor λ_rul · L_rul ≈ 1e-8 · 100 = 1e-6", _S002_SCENARIOS,
                 theory=f"1/1e-8 = {parts:.3g}; 1e-8 × 100 = {product:g}", tolerance="rel 1e-9",
                 verdict=_verdict(ok), evidence="the L_rul = 100 is the seed's example value",
                 claimed=1e-6, computed=product)


@_check("002")
def _suppression_streak(ctx: _Context) -> AuditItem:
    beta = PAPER["beta"]
    half, tau, n95 = (iir_theory.settling_steps(beta, f) for f in (0.5, 1 / math.e, 0.05))
    return _not_testable("002", "streak_100", "without a floor, after a streak of small-g_health "
                         "batches \"the next 100+ steps see no RUL gradient\"",
                         "What Happens Without A Floor",
                         "the streak and 'no RUL gradient' are not specified; λ̂_RUL stays > 0 "
                         "(no gradient is exactly zero) and its recovery time depends on both: "
                         f"from near 0 the EMA regains half the gap in {half} steps, 1 − 1/e in "
                         f"{tau}, 95 % in {n95}")


# ----------------------------------------------------------------------------- seed 003


@_check("003")
def _fd002_init(ctx: _Context) -> AuditItem:
    facts = _fd002_facts(ctx.trace)  # the first step is the same for every method
    return _fd002_item("003", "fd002_init", "on FD002 at initialisation g_RUL ≈ 5.0, "
                       "g_health ≈ 0.01: a 500× imbalance", "Two Voices, One Microphone", facts,
                       None if facts is None else facts.init_ratio, 500.0, 0.5,
                       "first-step ratio", extra=_spread_text("FD002", "gaba", "ratio_first"),
                       note="" if facts is None else
                       f"only the ratio is compared: the absolute first-step norms are "
                       f"[{facts.g_rul_first:.3g}, {facts.g_health_first:.3g}], a scale set by "
                       "the model and the loss units")


def _spread_text(subset: str, method: str, column: str) -> str:
    spread = _seed_spread(subset, method, column)
    return "" if spread is None else "; " + spread.describe("over the seeds")


@_check("003")
def _median_ratio(ctx: _Context) -> AuditItem:
    facts = _trace_facts(ctx.trace)
    real = NO_TRACE if facts is None else facts.describe()
    return _not_testable("003", "median_500", "§12.3: median ratio ~500× measured across "
                         "FD001–FD004 (g_RUL ≈ 5 \"the median measured\")",
                         _S003_NUMPY,
                         "needs traces of all four subsets (a single run shows one subset)", real)


@_check("003")
def _closed_form_500(ctx: _Context) -> AuditItem:
    lam = formulas.inverse_gradient_weights(np.array([5.0, 0.01]))
    raw = formulas.raw_weights(np.array([5.0, 0.01]))
    tol = printed_tolerance("0.001996")
    ok = abs(lam[0] - 0.001996) <= tol and abs(lam[1] - 0.998004) <= tol
    return _item("003", "closed_500", "500× imbalance (g = [5, 0.01]) ⇒ λ = [0.001996, 0.998004]",
                 _S003_NUMPY,
                 theory=f"eq. 4: [{lam[0]:.6f}, {lam[1]:.6f}]",
                 simulation=f"sensor → comparator → P-law: [{raw[0]:.6f}, {raw[1]:.6f}]",
                 tolerance="printed (±5e-7)", verdict=_verdict(ok),
                 claimed=0.001996, computed=float(lam[0]))


@_check("003")
def _k2_specialisation(ctx: _Context) -> AuditItem:
    g = np.random.default_rng(ctx.seed).lognormal(0.0, 3.0, size=(1000, 2))
    err = float(np.abs(formulas.inverse_gradient_weights(g)[:, 0]
                       - g[:, 1] / g.sum(axis=1)).max())
    return _item("003", "k2_form", "setting K = 2 in eq. 4 gives λ_RUL = g_health/(g_RUL + "
                 "g_health)", "The K-Task Formula", theory="(S − g_i)/S = g_j/S",
                 simulation=f"max difference over 1,000 random g: {err:.1e}",
                 tolerance="abs 1e-15", verdict=_verdict(err <= 1e-15), claimed=0.0,
                 computed=err)


def _random_norms(rng, k, n=400):
    return rng.lognormal(0.0, 3.0, size=(n, k))


@_check("003")
def _sums_to_one(ctx: _Context) -> AuditItem:
    rng = np.random.default_rng(ctx.seed)
    worst = max(float(np.abs(formulas.inverse_gradient_weights(_random_norms(rng, k)).sum(-1)
                              - 1).max()) for k in (2, 3, 5, 8))
    return _item("003", "sum_one", "Σλ_i = (K·S − S)/((K−1)·S) = 1: \"no need to manually "
                 "re-normalise\"", "The K-Task Formula",
                 theory="algebraic identity for Σg > 0",
                 simulation=f"max |Σλ − 1| = {worst:.1e} (K = 2, 3, 5, 8)",
                 tolerance="abs 1e-12", verdict=_verdict(worst <= 1e-12), claimed=1.0,
                 computed=1.0 + worst)


@_check("003")
def _eps_guard(ctx: _Context) -> AuditItem:
    sums = {k: float(formulas.inverse_gradient_weights_eps(np.zeros(k)).sum()) for k in (2, 3, 5)}
    ok = all(abs(s - 1) <= 1e-9 for s in sums.values())
    return _item("003", "eps_guard", "the + 1e-12 guard makes the all-zero case safe (\"saves "
                 "us from a NaN\"); the weights still sum to 1", _S003_NUMPY,
                 theory="at g = 0: every λ_i = ε/((K−1)ε) = 1/(K−1)",
                 simulation="Σλ at g = 0: " + ", ".join(f"K={k}: {s:g}" for k, s in sums.items()),
                 tolerance="abs 1e-9", verdict=_verdict(ok),
                 evidence="no NaN, but the weights sum to K/(K−1) (2 for K = 2), off the "
                 "simplex; the toolkit treats g = 0 as an invalid measurement instead",
                 claimed=1.0, computed=sums[2])


@_check("003")
def _non_negative(ctx: _Context) -> AuditItem:
    rng = np.random.default_rng(ctx.seed)
    low = min(float(formulas.inverse_gradient_weights(_random_norms(rng, k)).min())
              for k in (2, 3, 5, 8))
    return _item("003", "non_negative", "all λ_i ≥ 0 since g_i ≤ Σg", "The K-Task Formula",
                 theory="numerator Σg − g_i ≥ 0", simulation=f"min λ = {low:.2e}",
                 tolerance="≥ 0", verdict=_verdict(low >= 0), claimed=0.0, computed=low)


@_check("003")
def _equal_at_balance(ctx: _Context) -> AuditItem:
    worst = max(float(np.abs(formulas.inverse_gradient_weights(np.full(k, 3.7)) - 1 / k).max())
                for k in (2, 3, 5, 8))
    return _item("003", "balance", "equal g_i ⇒ λ_i = 1/K (degenerates to equal weighting)",
                 "The K-Task Formula", theory="(K−1)g/((K−1)Kg) = 1/K",
                 simulation=f"max |λ − 1/K| = {worst:.1e}", tolerance="abs 1e-15",
                 verdict=_verdict(worst <= 1e-15), claimed=0.0, computed=worst)


@_check("003")
def _inverse_monotonic(ctx: _Context) -> AuditItem:
    rng = np.random.default_rng(ctx.seed)
    worst = -np.inf
    for k in (2, 3, 5, 8):
        for g in _random_norms(rng, k, 50):
            jac = torch.autograd.functional.jacobian(
                formulas.inverse_gradient_weights, torch.tensor(g, dtype=torch.float64))
            worst = max(worst, float(torch.diagonal(jac).max()))
    return _item("003", "monotonic", "inverse-monotonic: if g_i rises, λ_i falls",
                 "The K-Task Formula", theory="∂λ_i/∂g_i = −(S − g_i)/((K−1)S²) < 0",
                 simulation=f"largest ∂λ_i/∂g_i (torch Jacobian, K = 2…8): {worst:.2e}",
                 tolerance="< 0", verdict=_verdict(worst < 0), claimed=None, computed=worst)


@_check("003")
def _zero_hyperparameters(ctx: _Context) -> AuditItem:
    g = np.random.default_rng(ctx.seed).lognormal(0.0, 2.0, size=(200, 3))
    base = formulas.inverse_gradient_weights(g)
    scale_dev = max(float(np.abs(formulas.inverse_gradient_weights(c * g) - base).max())
                    for c in (1e-9, 1e9))
    tiny = np.array([2e-12, 1e-12])
    eps_dev = float(np.abs(formulas.inverse_gradient_weights_eps(tiny)
                           - formulas.inverse_gradient_weights(tiny)).max())
    ok = scale_dev <= 1e-12
    return _item("003", "zero_hyper", "the raw inverse-gradient formula has zero hyperparameters "
                 "(β, W, λmin only stabilise it)", "Three Pitfalls Of Naive Implementations",
                 theory="eq. 4 is homogeneous of degree 0 in g: no scale constant",
                 simulation=f"max |λ(cg) − λ(g)| for c = 1e±9: {scale_dev:.1e}; the code's "
                 f"ε = 1e-12 shifts λ by {eps_dev:.2f} at g ~ 1e-12", tolerance="abs 1e-12",
                 verdict=_verdict(ok), evidence="holds for eq. 4; the code's ε is a hidden "
                 "constant that matters only for norms near 1e-12", claimed=0.0,
                 computed=scale_dev)


@_check("003")
def _extreme_slider(ctx: _Context) -> AuditItem:
    lam = formulas.inverse_gradient_weights(np.array([100.0, 0.001]))
    ok = abs(lam[0]) <= printed_tolerance("0.0") and abs(lam[1] - 1) <= printed_tolerance("1.0")
    return _item("003", "slider", "g_RUL = 100, g_health = 0.001 ⇒ λ_health ≈ 1.0, λ_RUL ≈ 0.0",
                 "Interactive: Drag Gradients, Watch Weights",
                 theory=f"[{lam[0]:.2e}, {lam[1]:.5f}]", tolerance="printed (±0.05)",
                 verdict=_verdict(ok), claimed=1.0, computed=float(lam[1]))


@_check("003")
def _half_life_samples(ctx: _Context) -> AuditItem:
    approx = math.log(2) / (1 - 0.99)
    exact = iir_theory.half_life(0.99)
    samples = exact * 64
    ok = abs(approx - 69) <= 0.02 * 69 and abs(samples - 4400) <= 0.02 * 4400
    return _item("003", "half_life", "half-life ≈ ln 2/(1−β) = 69 steps, ~4,400 samples at "
                 "batch 64", _S003_TORCH,
                 theory=f"ln 2/(1−β) = {approx:.2f}; exact ln 2/(−ln β) = {exact:.2f}",
                 simulation=f"{exact:.2f} × 64 = {samples:.0f} samples",
                 tolerance="rel 0.02", verdict=_verdict(ok), claimed=69.0, computed=exact)


@cache
def _toy003() -> dict:
    """The seed-003 smoke test rebuilt: Linear(14→32) backbone, MSE + 3-class CE, warmup 2."""
    torch.manual_seed(0)
    backbone, rul_head, hp_head = nn.Linear(14, 32), nn.Linear(32, 1), nn.Linear(32, 3)
    x = torch.randn(64, 14)
    rul_target = torch.rand(64, 1) * 125.0
    hp_target = torch.randint(0, 3, (64,))
    gaba = GABALoss(2, beta=0.99, warmup=2, lambda_min=0.05, sensor="naive")
    params = [*backbone.parameters(), *rul_head.parameters(), *hp_head.parameters()]
    rows = []
    for _ in range(5):
        feat = backbone(x)
        losses = [((rul_head(feat) - rul_target) ** 2).mean(),
                  nn.functional.cross_entropy(hp_head(feat), hp_target)]
        total = gaba(losses, params, list(backbone.parameters()))
        t = gaba.telemetry()
        rows.append({"losses": [float(v.detach()) for v in losses], "norms": t["norms"],
                     "raw": t["raw"], "ema": t["ema"], "total": float(total.detach())})
    counts = [sum(p.numel() for p in m.parameters()) for m in (backbone, rul_head, hp_head)]
    return {"rows": rows, "counts": counts}


@_check("003")
def _toy_losses_norms(ctx: _Context) -> AuditItem:
    row = _toy003()["rows"][2]
    (l_rul, l_h), (g_r, g_h) = row["losses"], row["norms"]
    checks = [(l_rul, 4521.15, "4521.15"), (l_h, 1.1936, "1.1936"), (g_r, 76.53, "76.53"),
              (g_h, 0.367, "0.367"), (g_r / g_h, 209, "209")]
    ok = all(abs(v - c) <= printed_tolerance(t) for v, c, t in checks)
    return _item("003", "toy_norms", "smoke test: rul_loss ≈ 4521.15, health_loss ≈ 1.1936 "
                 "(≈ ln 3 = 1.0986), g ≈ [76.53, 0.367], ratio ≈ 209×",
                 _S003_TORCH, theory=f"ln 3 = {math.log(3):.4f}",
                 simulation=f"torch {torch.__version__}, seed 0: losses {l_rul:.2f}, {l_h:.4f}; "
                 f"g = [{g_r:.2f}, {g_h:.4f}], ratio {g_r / g_h:.1f}×",
                 tolerance="printed digits", verdict=_verdict(ok), claimed=76.53, computed=g_r)


@_check("003")
def _toy_lambda(ctx: _Context) -> AuditItem:
    rows = _toy003()["rows"]
    got = [tuple(r["ema"]) for r in rows[2:]]
    raw = rows[2]["raw"]
    claimed = [(0.4950, 0.5050), (0.4901, 0.5099), (0.4853, 0.5147)]
    ema = np.array([0.5, 0.5])
    by_hand = []
    for _ in range(3):  # the EMA arithmetic with the seed's stated raw [0.0048, 0.9952]
        ema = formulas.ema_update(ema, np.array([0.0048, 0.9952]), 0.99)
        by_hand.append(ema.copy())
    tol = printed_tolerance("0.4950")
    ok = all(abs(a - c) <= tol for pair, ref in zip(got, claimed, strict=True)
             for a, c in zip(pair, ref, strict=True)) and \
        all(abs(h[0] - c[0]) <= tol for h, c in zip(by_hand, claimed, strict=True))
    return _item("003", "toy_lambda", "λ after steps 3–5 = (0.4950, 0.5050), (0.4901, 0.5099), "
                 "(0.4853, 0.5147) from raw ≈ [0.0048, 0.9952]",
                 _S003_TORCH,
                 theory="EMA by hand from raw [0.0048, 0.9952]: "
                 + ", ".join(f"{h[0]:.4f}" for h in by_hand),
                 simulation=f"GABALoss (naive sensor): raw [{raw[0]:.4f}, {raw[1]:.4f}], λ̂_RUL "
                 + ", ".join(f"{g[0]:.4f}" for g in got), tolerance="printed (±5e-5)",
                 verdict=_verdict(ok), evidence="the printed λ is the EMA buffer; the applied λ* "
                 "equals it here because the floor is not yet active",
                 claimed=0.4853, computed=float(got[-1][0]))


@_check("003")
def _toy_totals(ctx: _Context) -> AuditItem:
    rows = _toy003()["rows"]
    warm, third = rows[0]["total"], rows[2]["total"]
    ok = abs(warm - 2261.2) <= printed_tolerance("2261.2") + 0.01 and \
        abs(third - 2238.6) <= 0.5
    return _item("003", "toy_total", "combined loss ≈ 2261.2 during warmup and ≈ 2238.6 at step 3",
                 _S003_TORCH, theory="Σ λ*_i L_i",
                 simulation=f"{warm:.2f} (warmup), {third:.2f} (step 3)",
                 tolerance="±0.06 / ±0.5 (λ rounded to 4 digits)", verdict=_verdict(ok),
                 claimed=2238.6, computed=third)


@_check("003")
def _convergence_time(ctx: _Context) -> AuditItem:
    n99 = iir_theory.settling_steps(0.99, 0.01)
    ok = abs(n99 - 500) <= 0.2 * 500
    return _item("003", "converge_500", "\"β = 0.99 needs ~500 steps to fully stabilise\" "
                 "(full convergence of the EMA to ~[0.005, 0.995])",
                 _S003_TORCH, theory=f"99 % of the step after {n99} steps "
                 f"(99.9 % after {iir_theory.settling_steps(0.99, 0.001)})",
                 tolerance="rel 0.2", verdict=_verdict(ok), claimed=500.0, computed=float(n99))


@_check("003")
def _converged_weights(ctx: _Context) -> AuditItem:
    tr = _pipeline_weights(0.0048, 3000)
    final = tr.weights[-1]
    onset = int(np.flatnonzero(tr.ema[:, 0] < PAPER["lambda_min"])[0]) + 1
    ok = abs(final[0] - 0.005) <= printed_tolerance("0.005")
    return _item("003", "converge_floor", "λ drifts toward [~0.005, ~0.995] (the printed "
                 "\"lambda\" is the EMA buffer)", _S003_TORCH,
                 theory="λ* = max(λ̂, λmin)/Σ max(λ̂, λmin)",
                 simulation=f"applied λ* → [{final[0]:.5f}, {final[1]:.5f}]; the floor "
                 f"engages after {onset} active steps", tolerance="printed (±5e-4)",
                 verdict=_verdict(ok), evidence=f"the weights used converge to the floor "
                 f"[{final[0]:.5f}, {final[1]:.5f}], not [0.005, 0.995]",
                 claimed=0.005, computed=float(final[0]))


@_check("003")
def _raw_weights_history(ctx: _Context) -> AuditItem:
    torch.manual_seed(0)
    layer = nn.Linear(3, 2)
    losses = layer(torch.randn(8, 3)).pow(2).mean(0)
    norms = torch.stack([torch.sqrt(sum(g.pow(2).sum() for g in torch.autograd.grad(
        loss, list(layer.parameters()), retain_graph=True))) for loss in losses])
    raw = formulas.raw_weights(norms)
    ok = raw.requires_grad
    return _item("003", "raw_graph", "raw_weights \"has a full graph back to loss\", so without "
                 ".detach() the graph leaks across steps via the EMA buffer",
                 _S003_TORCH,
                 theory="autograd.grad without create_graph returns tensors without history",
                 simulation=f"raw.requires_grad = {raw.requires_grad}, grad_fn = "
                 f"{raw.grad_fn}", tolerance="exact",
                 verdict=_verdict(ok), evidence="the norms (and so raw and the EMA) carry no "
                 "graph; the .detach() is harmless but not what keeps memory constant",
                 claimed=None, computed=float(raw.requires_grad))


@_check("003")
def _ce_gradient_bound(ctx: _Context) -> AuditItem:
    torch.manual_seed(ctx.seed)
    logits = (20 * torch.randn(4096, 3)).requires_grad_()
    target = torch.randint(0, 3, (4096,))
    nn.functional.cross_entropy(logits, target, reduction="sum").backward()
    worst = float(logits.grad.abs().max())
    return _item("003", "ce_grad", "cross-entropy gradient per logit is bounded by 1 "
                 "(|softmax − one_hot|)", _S003_NUMPY,
                 theory="|p_c − y_c| ≤ 1", simulation=f"max |∂CE/∂logit| over 4,096 samples "
                 f"with logits of sd 20: {worst:.6f}", tolerance="≤ 1",
                 verdict=_verdict(worst <= 1.0), claimed=1.0, computed=worst)


@_check("003")
def _param_counts(ctx: _Context) -> AuditItem:
    counts = _toy003()["counts"]
    ok = counts == [480, 33, 99]
    return _item("003", "params", "backbone 480, RUL head 33, health head 99 parameters",
                 _S003_TORCH, theory="14·32 + 32; 32 + 1; 32·3 + 3",
                 simulation=f"torch: {counts}", tolerance="exact", verdict=_verdict(ok),
                 claimed=480.0, computed=float(counts[0]))


@_check("003")
def _retain_graph_needed(ctx: _Context) -> AuditItem:
    w = torch.randn(3, requires_grad=True)
    y = (w.exp() * 2).sum()
    torch.autograd.grad(y, [w])
    try:
        torch.autograd.grad(y, [w])
        crashed = False
    except RuntimeError:
        crashed = True
    z = (w * 2).sum()
    unused = torch.zeros(2, requires_grad=True)
    try:
        torch.autograd.grad(z, [w, unused])
        unused_raises = False
    except RuntimeError:
        unused_raises = True
    ok = crashed and unused_raises
    return _item("003", "retain_graph", "without retain_graph=True the second autograd.grad "
                 "call crashes; without allow_unused=True an unused input raises RuntimeError",
                 "Three Pitfalls Of Naive Implementations", theory="torch semantics",
                 simulation=f"second call raises: {crashed}; unused input raises: "
                 f"{unused_raises}", tolerance="exact", verdict=_verdict(ok))


@_check("003")
def _paper_tuning(ctx: _Context) -> AuditItem:
    facts = _trace_facts(ctx.trace)
    real = NO_TRACE if facts is None else (
        f"{facts.subset} trace: first-step g_RUL = {facts.g_rul_first:.3g}, "
        f"g_health = {facts.g_health_first:.3g}")
    return _not_testable("003", "paper_tuning", "MSE gradients at init are \"of order 5–10\" "
                         "in L2 norm; the defaults \"almost never need retuning\"",
                         "Python: GABA Weights From Gradient Norms / Takeaway",
                         "depends on the paper's model and on runs over datasets not made here",
                         real)


@_check("003")
def _eps_invisible(ctx: _Context) -> AuditItem:
    facts_g = None if ctx.trace is None else np.asarray(ctx.trace.grad_norms, dtype=float)
    claim = "ε = 1e-12 is invisible: realistic norms are ≥ 1e-6, so ε never perturbs λ"
    section = _S003_NUMPY
    if facts_g is None or not np.isfinite(facts_g).any():
        return _not_testable("003", "eps_floor", claim, section,
                             "needs a training trace for the smallest measured norm")
    finite = facts_g[np.all(np.isfinite(facts_g), axis=1) & np.any(facts_g > 0, axis=1)]
    smallest = float(finite.min())
    shift = float(np.abs(formulas.inverse_gradient_weights_eps(finite)
                         - formulas.inverse_gradient_weights(finite)).max())
    ok = smallest >= 1e-6 and shift <= 1e-6
    subset = getattr(ctx.trace, "subset", None) or "unknown-subset"
    return _item("003", "eps_floor", claim, section, theory="shift ≈ ε/Σg",
                 real_run=f"{subset} trace: smallest norm {smallest:.3g}; largest λ shift from "
                 f"ε {shift:.1e}", tolerance="min g ≥ 1e-6, shift ≤ 1e-6",
                 verdict=_verdict(ok), claimed=1e-6, computed=smallest)


@_check("003")
def _numpy_walkthrough(ctx: _Context) -> AuditItem:
    g = np.array([5.0, 0.01])
    total = g.sum() + 1e-12  # the seed's gaba_weights
    numerators = total - g
    weights = formulas.inverse_gradient_weights_eps(g)
    pairs = [(total, "5.01"), (total, "5.010"), (numerators[0], "0.010"), (numerators[1], "5.000"),
             ((2 - 1) * total, "5.010"), (weights[0], "0.001996"), (weights[1], "0.998004"),
             (weights[0], "0.0020"), (weights[1], "0.9980"), (0.01 / 5.01, "0.002"),
             (weights[1], "0.998"), (100 * weights[1], "99.8")]
    off = _printed_off(pairs)
    return _item("003", "numpy_walk", "gaba_weights([5.0, 0.01]): total = 5.0 + 0.01 + 1e-12 ≈ "
                 "5.01; numerators [5.010 − 5.0, 5.010 − 0.01] = [0.010, 5.000]; denominator "
                 "(2 − 1) × 5.010; weights [0.010/5.010, 5.000/5.010] = [0.001996, 0.998004]: "
                 "λ_rul = 0.01/5.01 ≈ 0.002 (0.0020), λ_health ≈ 0.998 (0.9980, ~99.8 %)",
                 _S003_NUMPY, theory="eq. 4 with the code's ε = 1e-12",
                 simulation=f"total {total:.6f}; numerators {numerators.round(6).tolist()}; "
                 f"weights [{weights[0]:.6f}, {weights[1]:.6f}]", tolerance="printed digits",
                 verdict=_verdict(not off), evidence="; ".join(off), claimed=0.002,
                 computed=float(weights[0]))


@_check("003")
def _k1000_cost(ctx: _Context) -> AuditItem:
    claim = "even a K = 1000 task vector evaluates in microseconds (NumPy)"
    g = np.random.default_rng(ctx.seed).lognormal(0.0, 1.0, 1000)
    if not ctx.measure_cost:
        return _not_testable("003", "k1000_time", claim, _S003_NUMPY,
                             "a timing: measured in the full audit only (quick run)")
    runs = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(200):
            formulas.inverse_gradient_weights_eps(g)
        runs.append((time.perf_counter() - t0) / 200)
    median = statistics.median(runs)
    return _item("003", "k1000_time", claim, _S003_NUMPY, theory="O(K) vector arithmetic",
                 simulation=f"inverse_gradient_weights_eps, K = 1000: {1e6 * median:.1f} µs per "
                 "call (median of 5 × 200)", tolerance="< 1 ms ('microseconds')",
                 verdict=_verdict(median < 1e-3), claimed=1e-3, computed=median, timed=True)


@_check("003")
def _format_precision(ctx: _Context) -> AuditItem:
    got = f"{3.14159:.3f}"
    return _item("003", "format_3f", "f-string example: f'{3.14159:.3f}' → '3.142'", _S003_NUMPY,
                 theory="round half to even at 3 decimals", simulation=f"python: {got!r}",
                 tolerance="exact", verdict=_verdict(got == "3.142"), claimed=3.142,
                 computed=float(got))


@_check("003")
def _format_width(ctx: _Context) -> AuditItem:
    got = f"{4521.15:7.2f}"
    claimed = " 4521.15"
    return _item("003", "format_width", "':7.2f' is width 7, 2 decimals: 4521.15 → ' 4521.15' "
                 "(left-padded to width 7)", _S003_TORCH,
                 theory="the width is the minimum field length, decimals included",
                 simulation=f"python: {got!r} ({len(got)} characters)", tolerance="exact",
                 verdict=_verdict(got == claimed),
                 evidence=f"{got!r}: 4521.15 already fills 7 characters, so no padding; "
                 f"{claimed!r} has 8", claimed=float(len(claimed)), computed=float(len(got)))


@_check("003")
def _initial_buffer(ctx: _Context) -> AuditItem:
    inits = {k: GABALoss(k).ema.tolist() for k in (2, 3)}
    off = _printed_off([(v, "0.5") for v in inits[2]] + [(v, "0.333") for v in inits[3]])
    return _item("003", "init_uniform", "the EMA buffer starts at torch.ones(K)/K: [0.5, 0.5] "
                 "for K = 2, [0.333, 0.333, 0.333] for K = 3", _S003_TORCH, theory="1/K",
                 simulation=f"GABALoss(K).ema: {inits}", tolerance="printed digits",
                 verdict=_verdict(not off), evidence="; ".join(off), claimed=0.333,
                 computed=inits[3][0])


@_check("003")
def _toy_loss_scale(ctx: _Context) -> AuditItem:
    l_rul, l_h = _toy003()["rows"][0]["losses"]
    rul_ok, h_ok = abs(l_rul - 4500) <= 0.05 * 4500, abs(l_h - 1.10) <= 0.05 * 1.10
    return _item("003", "toy_loss_scale", "at initialisation rul_loss ≈ 4500 (targets in [0, 125],"
                 " untrained predictions) and health_loss ≈ 1.10, \"close to ln(3) = 1.0986\"",
                 _S003_TORCH, theory=f"ln 3 = {math.log(3):.4f}",
                 simulation=f"the seed's smoke test (torch seed 0): rul_loss {l_rul:.2f}, "
                 f"health_loss {l_h:.4f}", tolerance="rel 0.05 ('≈')",
                 verdict=_verdict(rul_ok and h_ok),
                 evidence="" if h_ok else f"rul_loss matches; health_loss is {l_h:.4f}, "
                 f"{100 * (l_h / 1.10 - 1):.0f} % above 1.10 (the seed's own log prints 1.1936)",
                 claimed=1.10, computed=l_h)


@_check("003")
def _toy_raw_walkthrough(ctx: _Context) -> AuditItem:
    g_r, g_h = _toy003()["rows"][2]["norms"]
    total = g_r + g_h
    raw = formulas.inverse_gradient_weights(np.array([g_r, g_h]))
    pairs = [(g_r, "76.53"), (g_r, "76.5"), (g_h, "0.37"), (total, "76.90"),
             (total - g_r, "0.37"), (total - g_h, "76.53"), (raw[0], "0.0048"), (raw[1], "0.9952")]
    off = _printed_off(pairs)
    return _item("003", "toy_raw", "smoke test: grad_norms = [76.53, 0.37] (≈ [76.5, 0.37]); "
                 "total_norm ≈ 76.90 (76.53 + 0.37); numerators [76.90 − 76.53, 76.90 − 0.37] = "
                 "[0.37, 76.53]; raw = [0.37/76.90, 76.53/76.90] ≈ [0.0048, 0.9952]", _S003_TORCH,
                 theory="eq. 4 for K = 2", simulation=f"g = [{g_r:.4f}, {g_h:.4f}], total "
                 f"{total:.4f}, raw [{raw[0]:.5f}, {raw[1]:.5f}]", tolerance="printed digits",
                 verdict=_verdict(not off), evidence="; ".join(off), claimed=76.90,
                 computed=float(total))


@_check("003")
def _toy_products(ctx: _Context) -> AuditItem:
    row = _toy003()["rows"][2]
    (l_rul, l_h), lam = row["losses"], row["ema"]
    rul_part, health_part = lam[0] * l_rul, lam[1] * l_h
    # λ printed to 4 digits: its rounding (±5e-5) moves each product by ±5e-5 · L
    ok = abs(rul_part - 2238.0) <= 5e-5 * l_rul + printed_tolerance("2238.0") and \
        abs(health_part - 0.6028) <= 5e-5 * l_h + printed_tolerance("0.6028")
    return _item("003", "toy_products", "step 3 of the smoke test: w·l = 0.4950 × 4521.15 ≈ "
                 "2238.0 (total = 0.0 + 2238.0 = 2238.0), then 0.5050 × 1.1936 ≈ 0.6028",
                 _S003_TORCH, theory="λ*_i L_i with λ* = λ̂ (floor inactive)",
                 simulation=f"λ = [{lam[0]:.6f}, {lam[1]:.6f}]: {rul_part:.3f} and "
                 f"{health_part:.5f}", tolerance="printed + λ's rounding (±0.28 / ±1.1e-4)",
                 verdict=_verdict(ok), claimed=2238.0, computed=float(rul_part))


@_check("003")
def _floor_steals(ctx: _Context) -> AuditItem:
    ema = np.array([0.002, 0.998])
    clamped = np.maximum(ema, 0.05)
    out = formulas.floor_renormalise(ema, 0.05)
    stolen = 100 * (1 - out[1] / ema[1])
    off = _printed_off([(clamped.sum(), "1.048"), (out[0], "0.0477"), (out[1], "0.9523"),
                        (stolen, "4.5")])
    return _item("003", "floor_steals", "at convergence [0.05, 0.998]/1.048 ≈ [0.0477, 0.9523]: "
                 "the floor steals 4.5% of health's weight", _S003_TORCH,
                 theory="1 − 1/Σ max(λ̂, λmin) of every unfloored weight",
                 simulation=f"out [{out[0]:.5f}, {out[1]:.5f}]; health loses {stolen:.3f} % "
                 f"({100 * (ema[1] - out[1]):.3f} percentage points)",
                 tolerance="printed digits", verdict=_verdict(not off),
                 evidence="; ".join(off), claimed=4.5, computed=stolen)


@_check("003")
def _clamp_sum(ctx: _Context) -> AuditItem:
    m = PAPER["lambda_min"]
    worst = {}
    for k in (2, 3):
        pts = np.vstack([np.eye(k), np.random.default_rng(ctx.seed).dirichlet(np.ones(k), 2000)])
        worst[k] = float(np.maximum(pts, m).sum(axis=1).max())  # the largest sum before dividing
    off = _printed_off([(worst[2], "1.05"), (worst[3], "1.10")])
    return _item("003", "clamp_sum", "without the renormalisation the clamped weights \"might "
                 "sum to 1.05 or 1.10\"", _S003_TORCH,
                 theory="max Σ max(λ̂, λmin) = 1 + (K − 1)·λmin on the simplex",
                 simulation=f"largest clamped sum: K = 2 {worst[2]:.4f}, K = 3 {worst[3]:.4f}",
                 tolerance="printed digits", verdict=_verdict(not off),
                 evidence="1.10 needs K = 3: for the K = 2 module shown the sum is at most 1.05",
                 claimed=1.05, computed=worst[2])


@_check("003")
def _toy_shapes(ctx: _Context) -> AuditItem:
    backbone, rul_head, hp_head = nn.Linear(14, 32), nn.Linear(32, 1), nn.Linear(32, 3)
    shapes = [tuple(m.weight.shape) for m in (backbone, rul_head, hp_head)]
    weights = [m.weight.numel() for m in (backbone, hp_head)]
    ok = shapes == [(32, 14), (1, 32), (3, 32)] and weights == [448, 96] \
        and backbone.bias.numel() == 32
    return _item("003", "toy_shapes", "nn.Linear(14, 32) backbone (14 sensor inputs → 32 "
                 "features): W (32, 14) = 448 weights + b (32,) = 32 biases; health head "
                 "nn.Linear(32, 3): 32×3 = 96 weights + 3 biases", _S003_TORCH,
                 theory="out × in weights + out biases",
                 simulation=f"torch weight shapes {shapes}; weights {weights}",
                 tolerance="exact", verdict=_verdict(ok), claimed=448.0, computed=float(weights[0]))


# ----------------------------------------------------------------------------- seed 004


@_check("004")
def _p_identity_k2(ctx: _Context) -> AuditItem:
    g = np.random.default_rng(ctx.seed).lognormal(0.0, 3.0, size=(2000, 2))
    err = float(np.abs(formulas.raw_weights(g) - formulas.inverse_gradient_weights(g)).max())
    ok = formulas.proportional_gain(2) == 1.0 and err <= 1e-15
    return _item("004", "p_k2", "for K = 2 the closed form equals r + K_p·e with K_p = 1",
                 _S004_MATH,
                 theory="1/2 + (g_j − g_i)/(2Σg) = g_j/Σg",
                 simulation=f"max |P-law − eq. 4| over 2,000 random g: {err:.1e}",
                 tolerance="abs 1e-15", verdict=_verdict(ok), claimed=0.0, computed=err)


@_check("004")
def _p_identity_general(ctx: _Context) -> AuditItem:
    rng = np.random.default_rng(ctx.seed)
    errs, unity = {}, {}
    for k in (3, 5, 8):
        g = _random_norms(rng, k, 500)
        closed = formulas.inverse_gradient_weights(g)
        errs[k] = float(np.abs(formulas.raw_weights(g) - closed).max())
        e = formulas.comparator_error(formulas.sensor_shares(g), k)
        unity[k] = float(np.abs(formulas.reference(k) + e - closed).max())
    ok = max(errs.values()) <= 1e-15 and min(unity.values()) > 1e-3
    return _item("004", "p_general", "for K tasks the closed form is 1/K + e_i/(K−1): "
                 "K_p = 1/(K−1)", _S004_MATH,
                 theory="(S − g_i)/((K−1)S) = 1/K + (1/K − g_i/S)/(K−1)",
                 simulation="max |P-law − eq. 4|: " + ", ".join(f"K={k}: {v:.0e}"
                                                              for k, v in errs.items())
                 + "; with K_p = 1 instead: " + ", ".join(f"{v:.2f}" for v in unity.values()),
                 tolerance="abs 1e-15", verdict=_verdict(ok), claimed=0.0,
                 computed=max(errs.values()))


@_check("004")
def _numpy_demo(ctx: _Context) -> AuditItem:
    g = np.array([250.0, 0.5])
    s = formulas.sensor_shares(g)
    e = formulas.comparator_error(s, 2)
    lam = formulas.proportional_law(e, 2)
    tol = printed_tolerance("0.99800399")
    ok = (abs(s[0] - 0.99800399) <= tol and abs(e[1] - 0.49800399) <= tol
          and abs(lam[0] - 0.00199601) <= tol and g.sum() == 250.5)
    return _item("004", "numpy_demo", "g = [250, 0.5]: shares [0.99800399, 0.00199601], errors "
                 "∓0.49800399, weights [0.00199601, 0.99800399], total 250.5",
                 _S004_NUMPY,
                 theory=f"s = {s.round(8).tolist()}, e = {e.round(8).tolist()}, "
                 f"λ = {lam.round(8).tolist()}", tolerance="printed (±5e-9)",
                 verdict=_verdict(ok), claimed=0.00199601, computed=float(lam[0]))


@_check("004")
def _simplex_output(ctx: _Context) -> AuditItem:
    rng = np.random.default_rng(ctx.seed)
    worst = max(float(np.abs(formulas.raw_weights(_random_norms(rng, k)).sum(-1) - 1).max())
                for k in (2, 3, 5, 8))
    return _item("004", "p_simplex", "the controller output is automatically on the simplex: "
                 "no renormalisation needed", _S004_MATH,
                 theory="Σ(1/K + K_p e_i) = 1 + K_p Σe_i = 1",
                 simulation=f"max |Σλ − 1| = {worst:.1e} over valid g (K = 2…8)",
                 tolerance="abs 1e-12", verdict=_verdict(worst <= 1e-12),
                 evidence="for valid g; g = 0 is invalid (see the ε-guard row)",
                 claimed=1.0, computed=1.0 + worst)


@_check("004")
def _permutation(ctx: _Context) -> AuditItem:
    rng = np.random.default_rng(ctx.seed)
    worst = 0.0
    for k in (2, 3, 5, 8):
        g = _random_norms(rng, k, 200)
        perm = rng.permutation(k)
        worst = max(worst, float(np.abs(formulas.raw_weights(g[:, perm])
                                        - formulas.raw_weights(g)[:, perm]).max()))
    return _item("004", "permutation", "permutation-equivariant: swapping g₁ ↔ g₂ swaps the "
                 "weights", _S004_MATH, theory="λ(Pg) = Pλ(g)",
                 simulation=f"max deviation {worst:.1e}", tolerance="abs 1e-15",
                 verdict=_verdict(worst <= 1e-15), claimed=0.0, computed=worst)


@_check("004")
def _error_structure(ctx: _Context) -> AuditItem:
    rng = np.random.default_rng(ctx.seed)
    g2 = _random_norms(rng, 2)
    e2 = formulas.comparator_error(formulas.sensor_shares(g2), 2)
    anti = float(np.abs(e2[:, 0] + e2[:, 1]).max())
    g3 = _random_norms(rng, 3)
    e3 = formulas.comparator_error(formulas.sensor_shares(g3), 3)
    zero_sum = float(np.abs(e3.sum(-1)).max())
    pairwise = float(np.min(np.abs(np.abs(e3[:, 0]) - np.abs(e3[:, 1]))))
    mismatched = float(np.mean(np.abs(np.abs(e3[:, 0]) - np.abs(e3[:, 1])) > 1e-9))
    ok = anti <= 1e-15 and zero_sum <= 1e-15 and mismatched > 0.5
    return _item("004", "error_sym", "errors sum to 0; for K = 2 they are equal and opposite, "
                 "a property that breaks down for K > 2", _S004_NUMPY,
                 theory="Σe = 1 − Σs = 0", simulation=f"K = 2: max |e₁ + e₂| = {anti:.0e}; "
                 f"K = 3: max |Σe| = {zero_sum:.0e}, |e₁| ≠ |e₂| in {100 * mismatched:.0f} % "
                 f"(min gap {pairwise:.1e})", tolerance="abs 1e-15", verdict=_verdict(ok))


@_check("004")
def _bit_exact_beta_one(ctx: _Context) -> AuditItem:
    g = np.array([4.0, 0.05])
    closed = formulas.inverse_gradient_weights(g)
    ema = np.full(2, 0.5)
    for _ in range(50):  # β = 1 is outside the toolkit's β ∈ [0, 1): run the formula directly
        ema = formulas.ema_update(ema, formulas.raw_weights(g), 1.0)
    out = formulas.floor_renormalise(ema, 0.0)
    diff = float(np.abs(out - closed).max())
    return _item("004", "bit_exact_beta1", "the inner P-controller is \"bit-exact to GABALoss "
                 "when beta = 1 and min_weight = 0\"", _S004_TORCH,
                 theory="β = 1: λ̂ ← 1·λ̂ + 0·λ_raw never leaves 1/K",
                 simulation=f"after 50 steps λ* = {out.tolist()} vs closed form "
                 f"[{closed[0]:.5f}, {closed[1]:.5f}]", tolerance="bit-exact",
                 verdict=_verdict(diff == 0.0), evidence=f"off by {diff:.4f}: with β = 1 the EMA "
                 "ignores every measurement; the equality needs β = 0 (see next row)",
                 claimed=0.0, computed=diff)


@_check("004")
def _bit_exact_beta_zero(ctx: _Context) -> AuditItem:
    rng = np.random.default_rng(ctx.seed)
    n = 200 if ctx.quick else 5000
    g = rng.lognormal(0.0, 3.0, size=(n, 2))
    closed = formulas.inverse_gradient_weights(g)
    numpy_out = GABAController(2, beta=0.0, warmup=0, lambda_min=0.0).run(g).weights
    loss = GABALoss(2, beta=0.0, warmup=0, lambda_min=0.0).double()
    torch_out = loss.update_from_norms(g).numpy()
    paper = formulas.floor_renormalise(formulas.ema_update(
        np.full_like(g, 0.5), formulas.inverse_gradient_weights_eps(g), 0.0), 0.0)
    diffs = {name: float(np.abs(out - closed).max())
             for name, out in (("numpy", numpy_out), ("torch", torch_out), ("paper", paper))}
    same = {name: float(np.mean(out == closed))
            for name, out in (("numpy", numpy_out), ("torch", torch_out), ("paper", paper))}
    toolkit = max(diffs["numpy"], diffs["torch"])
    ok = toolkit <= 4e-16
    return _item("004", "bit_exact_beta0", "(corrected reading) with β = 0 and λmin = 0 the "
                 "pipeline equals the closed form", _S004_TORCH,
                 theory="β = 0: λ̂ = λ_raw; λmin = 0: floor inactive",
                 simulation=f"{n} random g; max |λ* − eq. 4| (bit-identical share): "
                 + ", ".join(f"{k} {diffs[k]:.1e} ({100 * same[k]:.0f} %)" for k in diffs),
                 tolerance="abs 4e-16 (2 ulp), numpy controller and torch GABALoss",
                 verdict=_verdict(ok),
                 evidence="equal to rounding but not bit-exact: the share-based P-law and the "
                 "renormalising division round differently; the paper's ε-form differs by up "
                 f"to {diffs['paper']:.0e} where Σg is small",
                 claimed=0.0, computed=toolkit)


@cache
def _toy004() -> dict:
    torch.manual_seed(0)
    shared = nn.Parameter(torch.randn(3))
    x = torch.randn(8, 3)
    y_rul = torch.randn(8)
    y_health = torch.randint(0, 3, (8,))
    rul_loss = (((x * shared).sum(dim=1) - y_rul) ** 2).mean()
    logits = torch.outer(x.mean(dim=1), torch.ones(3)) * shared
    health_loss = nn.functional.cross_entropy(logits, y_health)
    norms = torch.stack([torch.autograd.grad(loss, [shared], retain_graph=True)[0].norm()
                         for loss in (rul_loss, health_loss)])
    lam = formulas.inverse_gradient_weights(norms)
    total = lam[0] * rul_loss + lam[1] * health_loss
    return {"shared": shared.detach().tolist(), "norms": norms.tolist(), "lam": lam.tolist(),
            "total": float(total.detach())}


@_check("004")
def _toy_p_controller(ctx: _Context) -> AuditItem:
    toy = _toy004()
    (g_r, g_h), lam, total = toy["norms"], toy["lam"], toy["total"]
    ok = (abs(g_r - 4.221) <= printed_tolerance("4.221") and abs(lam[0] - 0.0150) <=
          printed_tolerance("0.0150") and abs(total - 1.0832) <= printed_tolerance("1.0832"))
    return _item("004", "toy_p", "smoke test: grad norms [4.221, 0.064], weights [0.0150, "
                 "0.9850], total loss 1.0832, ratio ~70×", _S004_TORCH,
                 theory="same draws as the seed (shared = "
                 f"[{', '.join(f'{v:.2f}' for v in toy['shared'])}])",
                 simulation=f"torch {torch.__version__}: g = [{g_r:.3f}, {g_h:.3f}], λ = "
                 f"[{lam[0]:.4f}, {lam[1]:.4f}], total {total:.4f}, ratio {g_r / g_h:.0f}×",
                 tolerance="printed digits", verdict=_verdict(ok),
                 evidence=f"g = [{g_r:.3f}, {g_h:.3f}], λ_RUL = {lam[0]:.4f}, total {total:.4f}, "
                 f"{g_r / g_h:.0f}×", claimed=4.221, computed=g_r)


@_check("004")
def _sqrt_example(ctx: _Context) -> AuditItem:
    g = torch.tensor([2.4, -1.1, 0.7], dtype=torch.float64)
    sq = float(g.pow(2).sum())
    ok = abs(sq - 7.46) <= 1e-12 and abs(math.sqrt(sq) - 2.731) <= printed_tolerance("2.731")
    return _item("004", "sqrt_example", "g = [2.4, −1.1, 0.7] → Σg² = 7.46 → √7.46 ≈ 2.731",
                 _S004_TORCH, theory=f"{sq:.2f}, {math.sqrt(sq):.4f}",
                 tolerance="printed", verdict=_verdict(ok), claimed=2.731,
                 computed=math.sqrt(sq))


@_check("004")
def _no_learnable_parameters(ctx: _Context) -> AuditItem:
    loss = GABALoss(2)
    n_params = sum(p.numel() for p in loss.parameters())
    constants = [name for name in ("beta", "warmup", "lambda_min") if hasattr(loss, name)]
    ok = n_params == 0 and len(constants) == 3
    return _item("004", "no_params", "the rule has no learnable parameters and three constants "
                 "(β = 0.99, λmin = 0.05, W = 100)", "Hook: Cruise Control On A Hilly Road",
                 theory="closed form, no optimisation",
                 simulation=f"GABALoss: {n_params} parameters; constants {constants}",
                 tolerance="exact", verdict=_verdict(ok), claimed=0.0, computed=float(n_params))


@_check("004")
def _max_gain(ctx: _Context) -> AuditItem:
    results = {}
    for k in (2, 3, 5):
        e_vertex = formulas.comparator_error(np.eye(k)[0], k)  # one task owns the whole gradient
        gains = np.linspace(0.0, 2.0, 20001)
        lowest = formulas.reference(k) + gains[:, None] * e_vertex[None, :]
        results[k] = float(gains[np.all(lowest >= -1e-12, axis=1)].max())
    ok = all(abs(results[k] - formulas.proportional_gain(k)) <= 1e-4 for k in results)
    return _item("004", "max_gain", "K_p = 1 (1/(K−1)) is already \"the maximum sensible K_p\"",
                 _S004_PITFALLS,
                 theory="λ ≥ 0 for every share vector ⇔ K_p ≤ 1/(K−1)",
                 simulation="largest K_p keeping λ ≥ 0: " + ", ".join(
                     f"K={k}: {v:.4f}" for k, v in results.items()),
                 tolerance="abs 1e-4", verdict=_verdict(ok),
                 evidence="holds in the sense of keeping the raw weights non-negative; the "
                 "oscillation part is the closed-loop study's", claimed=1.0, computed=results[2])


_DYNAMICS = ("under equal weighting the ratio evolves ~50× → ~2,400× (epoch 4) → 500–1,000×; "
             "500× is the median")
#: the parts of the dynamics claim: the runs.csv column each is decided on, and its test
_DYNAMICS_PARTS = {
    "initial ~50×": ("ratio_first", lambda v: abs(v - 50) <= 0.5 * 50),
    "peak ~2,400×": ("ratio_epoch_median_max", lambda v: abs(v - 2400) <= 0.5 * 2400),
    "settled 500–1,000×": ("ratio_median_second_half", lambda v: 0.5 * 500 <= v <= 1.5 * 1000),
    "median ~500×": ("ratio_median", lambda v: abs(v - 500) <= 0.5 * 500),
}


@_check("004")
def _gradient_dynamics(ctx: _Context) -> AuditItem:
    section = "Interactive: The Closed Loop, Live"
    spreads = {name: _seed_spread("FD002", "equal", column)
               for name, (column, _) in _DYNAMICS_PARTS.items()}
    facts = _fd002_facts(ctx.trace, "equal")
    real = NO_TRACE if facts is None else facts.describe()
    if any(spread is None for spread in spreads.values()):
        return _not_testable("004", "dynamics", _DYNAMICS, section,
                             f"needs the FD002 equal-weights runs of results/{SEED_RUNS}", real)
    verdicts = {name: test(spreads[name].median)
                for name, (_, test) in _DYNAMICS_PARTS.items()}
    detail = "; ".join(f"{name}: {spreads[name].median:.3g}× ({'matches' if good else 'off'})"
                       for name, good in verdicts.items())
    peak = spreads["peak ~2,400×"]
    per_step = _seed_spread("FD002", "equal", "ratio_max")
    epoch = _seed_spread("FD002", "equal", "ratio_epoch_argmax")
    spread = "" if per_step is None or epoch is None else (
        f"; one run's per-step peak (ratio_max) ranges {min(per_step.values):.3g}–"
        f"{max(per_step.values):.3g}× over the seeds, its epoch-median peak "
        f"{min(peak.values):.3g}–{max(peak.values):.3g}×, the epoch of that peak "
        f"{min(epoch.values):.0f}–{max(epoch.values):.0f} (counted from 1)")
    return _item("004", "dynamics", _DYNAMICS, section, theory=NOT_HERE,
                 real_run="; ".join(spreads[name].describe(f"{name} ({column})")
                                    for name, (column, _) in _DYNAMICS_PARTS.items())
                 + ("" if facts is None else f"; seed-0 trace: {real}"),
                 tolerance="rel 0.5 on the median over the seeds (settled: 250–1,500×)",
                 verdict=_verdict(all(verdicts.values())),
                 evidence=detail + " (decided on medians over the seeds, the peak on the "
                 "epoch median" + spread + "; the peak's epoch is not compared: epoch lengths "
                 "differ between subsets and runs)",
                 claimed=2400.0, computed=peak.median)


@_check("004")
def _g_rul_scale(ctx: _Context) -> AuditItem:
    facts = _trace_facts(ctx.trace)
    real = NO_TRACE if facts is None else \
        f"{facts.subset} trace: median g_RUL = {facts.g_rul_median:.3g}"
    return _not_testable("004", "g_scale", "\"paper-realistic\" g_RUL is O(100–500) early in "
                         "training (seed 003 says ≈ 5.0 at init on the same backbone)",
                         _S004_TORCH,
                         "the paper's 3.5M-parameter backbone is not available; the two seeds "
                         "disagree by two orders of magnitude", real)


@_check("004")
def _ce_bounded(ctx: _Context) -> AuditItem:
    logits = torch.tensor([[0.0, 0.0, 10.0]])
    ce = float(nn.functional.cross_entropy(logits, torch.tensor([0])))
    ok = ce <= 2 * math.log(3)
    return _item("004", "ce_bounded", "3-class cross-entropy is \"bounded above by O(ln C)\" "
                 "≈ 1.10 regardless of model size", _S004_TORCH,
                 theory=f"CE = −log softmax; ln 3 = {math.log(3):.4f} only for uniform logits",
                 simulation=f"logits [0, 0, 10], target 0: CE = {ce:.4f}",
                 tolerance="≤ 2 ln 3", verdict=_verdict(ok),
                 evidence=f"unbounded: {ce:.2f} for a confident wrong prediction; ≈ ln 3 only "
                 "near initialisation", claimed=math.log(3), computed=ce)


@dataclass(frozen=True)
class CostMeasurement:
    """Per-step CPU timings of a small CNN (medians, seconds) and the cost-model ratios."""

    forward: float
    backward: float
    optimizer: float
    equal: float
    gaba_naive: float
    gaba_exact: float
    num_tasks: int = 2

    @property
    def model_ratio(self) -> float:
        """Cost model (F + K·B + O)/(F + B + O) from the measured parts."""
        f, b, o = self.forward, self.backward, self.optimizer
        return (f + self.num_tasks * b + o) / (f + b + o)


def _small_cnn():
    backbone = nn.Sequential(nn.Conv1d(14, 32, 5), nn.ReLU(), nn.Conv1d(32, 32, 5), nn.ReLU(),
                             nn.Flatten(), nn.Linear(32 * 22, 64), nn.ReLU())
    return backbone, nn.Linear(64, 1), nn.Linear(64, 3)


def measure_step_cost(reps: int = 30, seed: int = 0) -> CostMeasurement:
    """Time equal weighting vs GABA steps of a small 1D-CNN on one CPU thread (medians).

    The methods are interleaved rep by rep so drifts in machine load hit all of them.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(seed)
        backbone, rul_head, hp_head = _small_cnn()
        params = [*backbone.parameters(), *rul_head.parameters(), *hp_head.parameters()]
        opt = torch.optim.Adam(params, lr=1e-4)
        x, y = torch.randn(128, 14, 30), torch.randn(128, 1)
        c = torch.randint(0, 3, (128,))
        gabas = {s: GABALoss(2, warmup=0, sensor=s) for s in ("naive", "exact")}

        def losses():
            z = backbone(x)
            return [nn.functional.mse_loss(rul_head(z), y),
                    nn.functional.cross_entropy(hp_head(z), c)]

        def step(kind, parts):
            t0 = time.perf_counter()
            task = losses()
            t1 = time.perf_counter()
            opt.zero_grad()
            if kind == "equal":
                (0.5 * task[0] + 0.5 * task[1]).backward()
            else:
                gabas[kind](task, params, list(backbone.parameters())).backward()
            t2 = time.perf_counter()
            opt.step()
            t3 = time.perf_counter()
            parts.append((t1 - t0, t2 - t1, t3 - t2, t3 - t0))

        runs = {"equal": [], "naive": [], "exact": []}
        for _ in range(3):  # warm up allocator and kernels
            for kind, parts in runs.items():
                step(kind, parts)
        runs = {k: [] for k in runs}
        for _ in range(reps):
            for kind, parts in runs.items():
                step(kind, parts)
        med = {k: [statistics.median(col) for col in zip(*v, strict=True)] for k, v in runs.items()}
        return CostMeasurement(forward=med["equal"][0], backward=med["equal"][1],
                               optimizer=med["equal"][2], equal=med["equal"][3],
                               gaba_naive=med["naive"][3], gaba_exact=med["exact"][3])
    finally:
        torch.set_num_threads(threads)


@_check("004")
def _overhead(ctx: _Context) -> AuditItem:
    k = 2
    bound = (k - 1) / 3  # cost model with B ≥ F and O ≤ F
    if ctx.measure_cost:
        cost = measure_step_cost(reps=10 if ctx.quick else 30, seed=ctx.seed)
        measured = cost.gaba_exact / cost.equal - 1
        sim = (f"small CNN, 1 CPU thread: F {1e3 * cost.forward:.2f} ms, B "
               f"{1e3 * cost.backward:.2f} ms, O {1e3 * cost.optimizer:.2f} ms → model "
               f"+{100 * (cost.model_ratio - 1):.0f} %; measured +{100 * measured:.0f} % "
               f"(exact sensor), +{100 * (cost.gaba_naive / cost.equal - 1):.0f} % (naive)")
        computed = measured
    else:
        sim, computed = "not measured (quick run)", bound
    ok = computed < 0.10
    return _item("004", "overhead", "computational overhead < 10 % (two extra autograd.grad "
                 "calls)", _S004_GRADNORM,
                 theory=f"cost model (F + K·B + O)/(F + B + O): with B ≥ F, O ≤ F the overhead "
                 f"is ≥ (K−1)/3 = {100 * bound:.0f} % for K = 2", simulation=sim,
                 tolerance="< 10 %", verdict=_verdict(ok),
                 evidence="refuted by the cost model: K backward passes instead of one cannot "
                 "cost < 10 %; only refresh-every-N or an approximate sensor get there",
                 claimed=0.10, computed=computed, timed=ctx.measure_cost)


@_check("004")
def _gradnorm_statements(ctx: _Context) -> AuditItem:
    return _not_testable("004", "gradnorm", "GradNorm diverged on 1/5 N-CMAPSS seeds (seed 789, "
                         "NaN) while GABA was stable on 5/5",
                         _S004_GRADNORM,
                         "no N-CMAPSS data and the paper's runs are not available; GradNorm's "
                         "other statements (open loop, unbounded weights, 500×, "
                         "hyperparameters, cost) are rows of the field study, and its "
                         "divergences on C-MAPSS are counted in the comparison")


@_check("004")
def _numpy_demo_walkthrough(ctx: _Context) -> AuditItem:
    g = np.array([250.0, 0.5])
    s = formulas.sensor_shares(g)
    e = formulas.comparator_error(s, 2)
    lam = formulas.proportional_law(e, 2)
    pairs = [(s[0], "0.998004"), (s[1], "0.001996"), (s[0], "0.998"), (s[1], "0.002"),
             (-e[0], "0.498004"), (e[1], "0.498004"), (-e[0], "0.498"), (e[1], "0.498"),
             (100 * e[1], "49.8"), (lam[0], "0.001996"), (lam[1], "0.998004"),
             (lam[0], "0.002"), (lam[1], "0.998")]
    off = _printed_off(pairs)
    return _item("004", "numpy_demo_6", "g = [250, 0.5]: share = [250.0/250.5, 0.5/250.5] = "
                 "[0.998004, 0.001996] (≈ [0.998, 0.002]); err = r − s = [−0.498004, 0.498004] "
                 "(≈ [−0.498, +0.498]): RUL over-represented by 49.8 percentage points; lam = "
                 "r + K_p·err = [0.5 − 0.498, 0.5 + 0.498] = [0.001996, 0.998004] ≈ (0.002, 0.998)",
                 _S004_NUMPY, theory="sense → compare → P-law (K_p = 1)",
                 simulation=f"s = {s.round(6).tolist()}, e = {e.round(6).tolist()}, "
                 f"λ = {lam.round(6).tolist()}", tolerance="printed digits",
                 verdict=_verdict(not off), evidence="; ".join(off), claimed=0.001996,
                 computed=float(lam[0]))


@_check("004")
def _sqrt_squares(ctx: _Context) -> AuditItem:
    sq = torch.tensor([2.4, -1.1, 0.7], dtype=torch.float64).pow(2).tolist()
    off = _printed_off(list(zip(sq, ("5.76", "1.21", "0.49"), strict=True)))
    return _item("004", "sqrt_squares", "g = [2.4, −1.1, 0.7] → g.pow(2) = [5.76, 1.21, 0.49]",
                 _S004_TORCH, theory="element-wise squares", simulation=f"torch: {sq}",
                 tolerance="printed digits", verdict=_verdict(not off), evidence="; ".join(off),
                 claimed=5.76, computed=sq[0])


@_check("004")
def _toy_draws(ctx: _Context) -> AuditItem:
    torch.manual_seed(0)
    shared = torch.randn(3)
    x = torch.randn(8, 3)
    off = _printed_off(list(zip(shared.tolist(), ("1.54", "-0.29", "-2.18"), strict=True)))
    ok = not off and tuple(x.shape) == (8, 3) and shared.tolist() == _toy004()["shared"]
    return _item("004", "toy_draws", "smoke test, torch.manual_seed(0): shared = "
                 "nn.Parameter(torch.randn(3)) = [1.54, −0.29, −2.18]; a batch of 8 inputs, "
                 "x = torch.randn(8, 3)", _S004_TORCH, theory="torch's seeded generator",
                 simulation=f"torch {torch.__version__}: shared = "
                 f"{[round(v, 4) for v in shared.tolist()]}, x {tuple(x.shape)}",
                 tolerance="printed digits", verdict=_verdict(ok), evidence="; ".join(off),
                 claimed=1.54, computed=shared[0].item())


@_check("004")
def _paper_backbone_scale(ctx: _Context) -> AuditItem:
    facts = _fd002_facts(ctx.trace)
    real = NO_TRACE if facts is None else facts.describe()
    return _not_testable("004", "paper_scale", "on the paper's real backbone the health gradient "
                         "norm is 100–2400× smaller than grad_norms[0] and the health loss "
                         "100–1000× smaller than rul_loss", _S004_TORCH,
                         "the paper's 3.5M-parameter backbone and runs are not available; the "
                         "FD002 trace's ratios are in the real-run cell", real)


# ----------------------------------------------------------------------------- response


@dataclass(frozen=True)
class SeedAuditResponse:
    """All audited statements, grouped by seed, with a verdict-count chart."""

    items: tuple[AuditItem, ...]
    quick: bool
    trace_subset: str | None = None
    counts: dict = field(default_factory=dict)

    def __post_init__(self):
        counts = {s: {v: sum(i.seed == s and i.claim.verdict == v for i in self.items)
                      for v in VERDICTS} for s in SEEDS}
        object.__setattr__(self, "counts", counts)

    def claims(self) -> list[Claim]:
        """The report rows, in seed order."""
        return [item.claim for item in self.items]

    def by_key(self, key: str) -> AuditItem:
        """The item with this key (e.g. ``"bit_exact_beta1"``)."""
        for item in self.items:
            if item.key == key:
                return item
        raise KeyError(key)

    def table(self) -> str:
        """Per-seed Markdown summary: verdict counts and the refuted keys."""
        lines = ["| seed | section | holds | refuted | not testable | refuted claims |",
                 "| --- | --- | --- | --- | --- | --- |"]
        for s, section in SEEDS.items():
            c = self.counts[s]
            refuted = ", ".join(i.key for i in self.items
                                if i.seed == s and i.claim.verdict == "refuted")
            lines.append(f"| {s} | {section} | {c['holds']} | {c['refuted']} | "
                         f"{c['not testable']} | {refuted or '—'} |")
        return "\n".join(lines)

    def plot(self, fig=None):
        """Verdict counts per seed (left, counts written on the bars) and, for every numeric
        item by name, |computed − claimed|/|claimed| (right, log), grouped by seed.

        Timed items are left out of the right panel, so the figure is the same
        on every run with the same seed and trace.
        """
        numeric = [i for s in SEEDS for i in self.items
                   if i.seed == s and i.relative_error is not None and not i.timed]
        height = max(3.8, 0.6 + 0.14 * len(numeric))
        if fig is None:
            fig, (ax_counts, ax_err) = new_figure(1, 2, width=9.0, height=height,
                                                  gridspec_kw={"width_ratios": (1, 1.5)})
        else:
            ax_counts, ax_err = fig.subplots(1, 2)
        colours = VERDICT_COLOURS
        verdict_bars(ax_counts, list(SEEDS), self.counts)
        ax_counts.set_xlabel("claims of this study (the report's Appendix A counts all)")
        ax_counts.set_ylabel("seed")
        ax_counts.set_title(f"Verdicts of the {len(self.items)} audit items, per seed",
                            fontsize=9)
        ax_counts.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=3, fontsize=7)
        floor = 1e-17
        for row, item in enumerate(numeric):
            finite = np.isfinite(item.relative_error)  # an infinite error: at the right edge
            ax_err.scatter(max(item.relative_error, floor) if finite else 7e2, row,
                           s=14 if finite else 24, marker="o" if finite else ">",
                           color=colours[item.claim.verdict], zorder=3)
        ax_err.set_yticks(range(len(numeric)), [f"{i.seed} {i.key}" for i in numeric],
                          fontsize=5.5)
        ax_err.set_ylim(len(numeric) - 0.5, -0.5)
        ax_err.set_xscale("log")
        ax_err.set_xlim(floor / 3, 1e3)
        ax_err.axvline(floor, color="0.7", lw=0.6)
        ax_err.set_xlabel("relative error |computed − claimed|/|claimed| (left edge: exact; "
                          "▶ at the right edge: infinite; timings left out)", fontsize=7)
        ax_err.set_title(f"Claimed against computed: the {len(numeric)} numeric items",
                         fontsize=9)
        return fig


def audit_response(seed: int = 0, trace=None, quick: bool = False, *,
                   measure_cost: bool | None = None, seeds=None, **kwargs) -> SeedAuditResponse:
    """Run every check (or those of ``seeds``) and collect the verdicts.

    Parameters
    ----------
    seed : int
        Seed of the synthetic experiments (``np.random.default_rng(seed)``).
    trace : Trace or None
        A real training trace for the C-MAPSS rows.
    quick : bool
        Smaller sample sizes; no timing measurement unless ``measure_cost``.
    measure_cost : bool, optional
        Time the small CNN for the overhead row (default: ``not quick``).
    seeds : iterable of str, optional
        Subset of ``"000"`` … ``"004"``.

    Examples
    --------
    >>> r = audit_response(quick=True, seeds=["004"])
    >>> r.by_key("bit_exact_beta1").claim.verdict
    'refuted'
    """
    if kwargs:
        raise TypeError(f"audit_response() got unexpected keyword argument(s) {sorted(kwargs)}")
    chosen = list(SEEDS) if seeds is None else [str(s) for s in seeds]
    unknown = sorted(set(chosen) - set(SEEDS))
    if unknown:
        raise ValueError(f"unknown seed(s) {unknown}; choose from {list(SEEDS)}")
    ctx = _Context(trace=trace, quick=quick, seed=seed,
                   measure_cost=(not quick) if measure_cost is None else bool(measure_cost))
    items = tuple(fn(ctx) for s in chosen for fn in CHECKS[s])
    subset = None if trace is None else getattr(trace, "subset", None)
    return SeedAuditResponse(items=items, quick=quick, trace_subset=subset)


def run(outdir: Path, *, seed: int, trace, quick: bool) -> Study:
    """Audit the seeds, save the verdict figure, return the :class:`Study`."""
    response = audit_response(seed, trace, quick)
    figures = save_figure(response.plot(), outdir, "seed_audit_verdicts")
    total = {v: sum(c[v] for c in response.counts.values()) for v in VERDICTS}
    pick = {i.key: i for i in response.items}
    reproduced = [key for key in ("toy_norms", "toy_lambda", "state_dict_f32")
                  if pick[key].claim.verdict == "holds"]
    summary = (
        f"{len(response.items)} further quantitative statements of the five seeds were "
        f"recomputed: {total['holds']} hold, {total['refuted']} are refuted and "
        f"{total['not testable']} are not testable here (GradNorm, N-CMAPSS, the paper's runs"
        f"{'' if trace is not None else ', and without a trace the C-MAPSS gradient norms'}). "
        f"\"Bit-exact when β = 1\": {pick['bit_exact_beta1'].claim.verdict} "
        f"({pick['bit_exact_beta1'].claim.evidence.split(':')[0]}); with β = 0, λmin = 0 the "
        f"numpy and torch pipelines match eq. 4 to {pick['bit_exact_beta0'].computed:.0e}. "
        f"Seed-004 torch demo: {pick['toy_p'].claim.verdict} ({pick['toy_p'].claim.evidence}); "
        f"reproduced exactly: {', '.join(reproduced) or 'none'}. "
        f"Overhead < 10 %: {pick['overhead'].claim.verdict} (cost-model lower bound "
        f"{pick['overhead'].claim.theory.split('≥ ')[-1]}).")

    caption = (f"The seed-claims audit items ({len(response.items)}: further quantitative "
               f"statements of the five seeds, recomputed here): verdicts per seed, and the "
               f"relative error of each numeric item against the number the seed prints, by "
               f"name, coloured by verdict.")
    return Study(name="seed_audit", title="Seed-claims audit", summary=summary
                 + " See {fig:seed_audit_verdicts} and {tab:Seed-claims audit items}.",
                 figures=figures, claims=response.claims(),
                 tables=["### Seed-claims audit items: verdict counts per seed and the refuted "
                         "items\n\n"
                         + response.table()], captions={"seed_audit_verdicts": caption})
