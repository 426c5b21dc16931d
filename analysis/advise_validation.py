"""Check ``gaba-control advise`` against real runs: its recommendation and two it ranks low.

Usage: ``gaba-control advise --trace RUN/trace.npz --validate [--seeds ...] [--jobs N]
[--out DIR]`` (the validation goes to ``DIR/validation/``).

The advice is computed from one recorded run (its per-task norms, under the
weights that run applied). This trains, through the comparison cache
(:mod:`analysis.compare`), on the trace's subset and ``seeds``:

* the **recommended** setting (rank 1),
* **GABA's published setting** (β = 0.99, λ_min = 0.05, W = 100, N = 1; the
  reference every recommendation is compared with),
* the **lowest-ranked** candidate,

and measures in each run what :mod:`gaba_control.design` predicted, with the same
definitions (:func:`gaba_control.design.trace_loop_quantities`): the
smallest-norm task's weighted share (geometric mean over the post-warmup steps
that measured norms), the floor-active fraction and the std of ``log λ`` of the
largest-norm task. Per setting and quantity it tabulates the replay and the
plant-corrected predictions, the measured mean with its 95 % t interval over the
seeds, the per-seed range, and whether the interval holds each prediction; and
the paired test-RMSE differences against the published setting (95 % CI, Holm
over the two comparisons, TOST at ±1 cycle).

The prediction is made from one run, so for the published setting that run's
seed is in-sample; every other (setting, seed) pair is out of sample. A setting
with an approximate sensor is trained with it (``--sensor``); its trace holds
that sensor's reading, not the exact norms, so its share is not measured (the
floor fraction and the noise, of the applied weights alone, are).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._common import atomic_write_text, new_figure, save_figure

__all__ = ["AdviceValidation", "advice_validation_response", "validate_advice",
           "validation_settings"]

QUANTITIES = {"share": "smallest task's weighted share",
              "floor_fraction": "floor-active fraction",
              "noise": "std log λ (largest-norm task)"}
#: advise's prediction columns of each quantity (replay, plant-corrected)
PREDICTED = {"share": ("share_replay", "share_plant"),
             "floor_fraction": ("floor_replay", "floor_plant"),
             "noise": ("noise_replay", "noise_plant")}
ROLES = ("recommended", "published", "lowest")
SETTING_FIELDS = ("variant", "beta", "floor", "warmup", "refresh")
MARGIN = 1.0  # cycles of test RMSE: the comparisons' equivalence margin


def validation_settings(advice) -> dict[str, dict]:
    """``role → advise row`` of the settings trained: rank 1, the published setting (unless
    it is rank 1) and :attr:`~analysis.advise.Advice.lowest`."""
    out = {"recommended": advice.recommended}
    if advice.reference is not advice.recommended:
        out["published"] = advice.reference
    if advice.lowest is not None:
        out["lowest"] = advice.lowest
    return out


def setting_job(cache: Path, subset: str, seed: int, row: dict, base: dict, num_tasks: int = 2):
    """The comparison job that trains ``row``'s setting (``variant``, β, floor, W, N).

    β, the floor (as ``λ_min``) and ``W`` are the controller's; ``N`` is the
    ``--refresh-every`` option, left out at 1 so that the published setting is the
    comparisons' own GABA run (one cache entry); an approximate sensor is
    ``--sensor``. A variant whose floor is a fraction of ``1/K`` by default
    (``gaba_relative_floor``) gets it as ``--floor-fraction``.
    """
    from gaba_control.weighting import get_method

    from .compare import make_job

    config = {**base, "beta": float(row["beta"]), "lambda_min": float(row["floor"]),
              "warmup": int(row["warmup"])}
    options = {} if int(row["refresh"]) == 1 else {"refresh_every": int(row["refresh"])}
    if row.get("sensor", "exact") != "exact":
        options["sensor"] = row["sensor"]
    if getattr(get_method(row["variant"]), "default_floor_fraction", None) is not None:
        options["floor_fraction"] = float(row["floor"]) * num_tasks
    return make_job(cache, subset, row["variant"], seed, config, options)


def measured_row(metrics: dict, directory: Path, row: dict) -> dict:
    """One run's metrics and its measured loop quantities (``None`` unless it finished)."""
    from gaba_control.design import trace_loop_quantities
    from gaba_control.trace import load_trace

    out = {k: metrics.get(k) for k in ("subset", "method", "seed", "status", "test_rmse",
                                       "health_macro_f1")}
    out.update({f: row[f] for f in SETTING_FIELDS})
    out.update({name: None for name in QUANTITIES})
    out["steps"] = None
    trace_path = Path(directory) / "trace.npz"
    if metrics.get("status") == "ok" and trace_path.is_file():
        trace = load_trace(trace_path)
        q = trace_loop_quantities(trace.grad_norms, trace.applied_weights,
                                  floor=float(row["floor"]), warmup=int(row["warmup"]))
        out.update({name: q[name] for name in QUANTITIES}, steps=q["steps"])
        if row.get("sensor", "exact") != "exact":
            # the trace holds the sensor's reading, not the exact norms the share is of;
            # the floor fraction and the noise are of the applied weights alone
            out["share"] = None
    return out


def _interval(values, log: bool) -> tuple[float, float, float]:
    """Mean and two-sided 95 % t interval over seeds (of ``log`` values, back-transformed)."""
    from scipy import stats

    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], float)
    if log:
        v = np.log(v)
    if v.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(v.mean())
    half = (float(stats.t.ppf(0.975, v.size - 1)) * float(v.std(ddof=1)) / math.sqrt(v.size)
            if v.size > 1 else math.nan)
    low, high = mean - half, mean + half
    return tuple(math.exp(x) for x in (mean, low, high)) if log else (mean, low, high)


@dataclass(frozen=True)
class AdviceValidation:
    """Predicted vs measured, per trained setting (``predictions``: role → advise row;
    ``runs``: one row per role × seed, see :func:`measured_row`)."""

    predictions: dict
    runs: list
    subset: str
    trace_label: str
    margin: float = MARGIN

    def roles(self) -> list[str]:
        return [r for r in ROLES if r in self.predictions]

    def cell(self, role: str) -> list[dict]:
        return [r for r in self.runs if r["role"] == role]

    def summary(self) -> list[dict]:
        """Per role and quantity: predictions, measured mean [95 % CI], range, verdicts.

        The share's mean and interval are geometric (of ``log`` share over seeds), the
        prediction's own definition; the others arithmetic.
        """
        out = []
        for role in self.roles():
            pred, cell = self.predictions[role], self.cell(role)
            ok = [r for r in cell if r["status"] == "ok"]
            for name in QUANTITIES:
                values = [r[name] for r in ok if r[name] is not None]
                mean, low, high = _interval(values, log=name == "share")
                replay, plant = (pred.get(c) for c in PREDICTED[name])
                row = {"role": role, "quantity": name, "rank": pred["rank"],
                       **{f: pred[f] for f in SETTING_FIELDS},
                       "predicted_replay": replay, "predicted_plant": plant,
                       "measured": mean, "ci_low": low, "ci_high": high,
                       "min": min(values) if values else math.nan,
                       "max": max(values) if values else math.nan,
                       "n_ok": len(ok), "n": len(cell)}
                for label, p in (("replay", replay), ("plant", plant)):
                    row[f"within_{label}"] = (None if p is None or not math.isfinite(low)
                                              else bool(low <= p <= high))
                out.append(row)
        return out

    def paired(self) -> list[dict]:
        """Test RMSE of each other setting − the published one, per seed: mean [95 % CI],
        t-test (Holm over the settings compared), TOST at ±``margin`` cycles (Holm too)."""
        from .compare import equivalence_test, holm, paired_statistics

        def by_seed(role):
            return {r["seed"]: r["test_rmse"] for r in self.cell(role)
                    if r["status"] == "ok" and r["test_rmse"] is not None}

        if "published" not in self.predictions:
            return []
        ref = by_seed("published")
        out = []
        for role in self.roles():
            if role == "published":
                continue
            values = by_seed(role)
            common = sorted(set(values) & set(ref))
            a, b = [values[s] for s in common], [ref[s] for s in common]
            s = paired_statistics(a, b)
            e = equivalence_test(a, b, self.margin)
            out.append({"role": role, "n": s["n"], "mean": s["mean"], "ci_low": s["ci_low"],
                        "ci_high": s["ci_high"], "t_p": s["t_p"], "tost_p": e["p"]})
        for key in ("t_p", "tost_p"):
            for row, p in zip(out, holm([r[key] for r in out]), strict=True):
                row[key.replace("_p", "_holm_p")] = float(p)
        return out

    def markdown(self) -> str:
        lines = [f"# Advice validated on {self.subset}",
                 f"Predictions of `gaba-control advise` from {self.trace_label}; each setting "
                 f"then trained on seeds {sorted({r['seed'] for r in self.runs})} "
                 "(the prediction's own seed is in-sample for the published setting only). "
                 "Measured: each run's post-warmup steps that read the norms, the advice's "
                 "definitions; mean over seeds with its 95 % t interval (geometric for the "
                 "share) and the per-seed range.", "",
                 "| setting | rank | variant | β | floor | W | N | quantity | replay | plant | "
                 "measured [95 % CI] | range | runs |", "|" + "---|" * 13]
        for r in self.summary():
            lines.append(
                f"| {r['role']} | {r['rank']} | {r['variant']} | {r['beta']:g} | "
                f"{r['floor']:g} | {r['warmup']} | {r['refresh']} | {QUANTITIES[r['quantity']]} "
                f"| {_fmt(r['predicted_replay'])} | {_fmt(r['predicted_plant'])} | "
                f"{_fmt(r['measured'])} [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}] | "
                f"{_fmt(r['min'])}–{_fmt(r['max'])} | {r['n_ok']}/{r['n']} |")
        paired = self.paired()
        if paired:
            lines += ["", f"Test RMSE − the published setting's, per seed (mean [95 % CI]; "
                      f"Holm over the {len(paired)} comparisons; TOST at ±{self.margin:g} "
                      "cycle, Holm):", "",
                      "| setting | n | difference [95 % CI] | t-test Holm p | TOST Holm p |",
                      "|---|---|---|---|---|"]
            for r in paired:
                lines.append(f"| {r['role']} | {r['n']} | {_signed(r['mean'])} "
                             f"[{_signed(r['ci_low'])}, {_signed(r['ci_high'])}] | "
                             f"{_fmt(r['t_holm_p'], 2)} | {_fmt(r['tost_holm_p'], 2)} |")
        return "\n".join(lines) + "\n"

    def plot(self, fig=None):
        """Top: per quantity, each setting's predictions (replay ○, plant ×) and the measured
        runs (dots: seeds; square: mean with its 95 % interval). Bottom: the prediction
        relative to the measured mean (share: ratio; the others: difference), the
        bar the measured interval on the same scale, so a prediction inside it holds."""
        if fig is None:
            fig, axes = new_figure(2, 3, width=9.0, height=5.4, sharex=True)
        else:
            axes = fig.subplots(2, 3, sharex=True)
        summary = self.summary()
        roles = self.roles()
        for j, name in enumerate(QUANTITIES):
            top, bottom = axes[0, j], axes[1, j]
            ratio = name == "share"
            for x, role in enumerate(roles):
                r = next(s for s in summary if s["role"] == role and s["quantity"] == name)
                seeds = [c[name] for c in self.cell(role) if c[name] is not None]
                top.plot(np.full(len(seeds), x + 0.12), seeds, ".", color="0.4", ms=4,
                         label="runs (seeds)" if x == 0 else None)
                m = r["measured"]
                if math.isfinite(r["ci_low"]):
                    top.errorbar(x + 0.12, m, yerr=[[m - r["ci_low"]], [r["ci_high"] - m]],
                                 fmt="s", color="k", ms=4, capsize=3,
                                 label="measured, 95 % CI" if x == 0 else None)
                    rel = ((r["ci_low"] / m, 1.0, r["ci_high"] / m) if ratio
                           else (r["ci_low"] - m, 0.0, r["ci_high"] - m))
                    bottom.errorbar(x, rel[1], yerr=[[rel[1] - rel[0]], [rel[2] - rel[1]]],
                                    fmt="none", color="k", capsize=4, lw=1.5,
                                    label="measured 95 % CI" if x == 0 else None)
                for column, marker, colour, label in (
                        ("predicted_replay", "o", "tab:blue", "replay"),
                        ("predicted_plant", "x", "tab:red", "plant")):
                    p = r[column]
                    if p is None:
                        continue
                    kw = {"mfc": "none"} if marker == "o" else {}
                    top.plot(x - 0.12, p, marker, color=colour, label=(
                        f"predicted ({label})" if x == 0 else None), **kw)
                    if math.isfinite(m):
                        bottom.plot(x - 0.12 if marker == "o" else x + 0.12,
                                    p / m if ratio else p - m, marker, color=colour, **kw)
            top.set_title(QUANTITIES[name], fontsize=8)
            if ratio:
                top.set_yscale("log")
                top.axhline(0.5, color="0.6", ls="--", lw=0.8)
                bottom.axhline(1.0, color="0.6", lw=0.8)
                bottom.set_ylabel("predicted / measured" if j == 0 else "")
            else:
                bottom.axhline(0.0, color="0.6", lw=0.8)
                bottom.set_ylabel("predicted − measured")
            bottom.set_xticks(range(len(roles)),
                              [f"{role}\n(rank {self.predictions[role]['rank']})"
                               for role in roles], fontsize=7)
            bottom.set_xlim(-0.5, len(roles) - 0.5)
        axes[0, 0].set_ylabel("value")
        axes[0, 0].legend(fontsize=6, loc="lower left")
        axes[1, 0].legend(fontsize=6, loc="lower left")
        return fig

    def write(self, out: Path, *, figures: bool = True) -> list[Path]:
        from .compare import _csv

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        pred = [{"role": role, **{k: v for k, v in row.items()}}
                for role, row in self.predictions.items()]
        written = [out / "predictions.csv", out / "runs.csv", out / "summary.md"]
        atomic_write_text(written[0], _csv(pred))
        atomic_write_text(written[1], _csv(self.runs))
        atomic_write_text(written[2], self.markdown())
        if figures:
            written += save_figure(self.plot(), out, "advise_validation")
        return written


def _signed(value) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:+.2f}"


def _fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{value:.{digits}g}"


def validate_advice(advice, *, seeds=(0, 1, 2, 3, 4), cache: Path | None = None,
                    jobs: int = 1, threads: int | None = None, backend: str = "loky",
                    progress: bool = True, cached_only: bool = False,
                    subset: str | None = None, quick: bool = False, epochs: int | None = None,
                    **train_kwargs) -> AdviceValidation:
    """Train (or reuse) the three settings of :func:`validation_settings` × ``seeds`` on the
    trace's subset through the comparison cache; measure what ``advice`` predicted."""
    from gaba_control.cmapss.data import default_data_dir

    from .compare import DEFAULT_CACHE, _base_config, check_job, check_jobs, run_jobs

    seeds = list(seeds)
    if not seeds or len(set(seeds)) != len(seeds) or any(
            isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0 for s in seeds):
        raise ValueError(f"seeds must be distinct ints >= 0 and at least one, got {seeds}")
    subset = subset or advice.trace_label.split()[0]
    jobs = check_jobs(jobs)
    train_kwargs["data_dir"] = str(default_data_dir(train_kwargs.get("data_dir")))
    if threads is None and jobs > 1:
        threads = 1
    base = _base_config(quick=quick, epochs=epochs, threads=threads, **train_kwargs)
    cache = Path(cache) if cache is not None else DEFAULT_CACHE
    chosen = validation_settings(advice)
    planned = [(role, seed, setting_job(cache, subset, seed, row, base, advice.num_tasks))
               for seed in seeds for role, row in chosen.items()]
    if cached_only:
        planned = [p for p in planned if (Path(p[2].directory) / "metrics.json").is_file()]
    else:
        for *_, job in planned:
            check_job(job)
        run_jobs([job for *_, job in planned], n_jobs=jobs, backend=backend, progress=progress)
    if not planned:
        raise ValueError(f"--cached-only: no validation run of these settings is in {cache}")
    runs = []
    for role, _, job in planned:
        metrics = json.loads((Path(job.directory) / "metrics.json").read_text())
        runs.append({"role": role, **measured_row(metrics, Path(job.directory), chosen[role])})
    return AdviceValidation(chosen, runs, subset, advice.trace_label)


def advice_validation_response(directory: Path) -> AdviceValidation:
    """The :class:`AdviceValidation` of a committed validation folder (no training)."""
    directory = Path(directory)
    pred = {r.pop("role"): r for r in _read_rows(directory / "predictions.csv")}
    runs = _read_rows(directory / "runs.csv")
    subsets = {r["subset"] for r in runs}
    if len(subsets) != 1:
        raise ValueError(f"{directory}: a validation holds one subset, found {sorted(subsets)}")
    label = _trace_label(directory / "summary.md")
    return AdviceValidation(pred, runs, subsets.pop(), label)


_INTS = ("rank", "warmup", "refresh", "seed", "steps", "settling")
_TEXT = ("role", "variant", "subset", "method", "status", "note", "sensor")


def _read_rows(path: Path) -> list[dict]:
    """A CSV this module wrote, typed back: ints, floats, bools; empty cells ``None``."""
    import csv

    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise ValueError(f"{path}: no rows")
    for row in rows:
        for key, text in row.items():
            if key in _TEXT:
                continue
            if text in ("", None):
                row[key] = None
            elif text in ("True", "False"):
                row[key] = text == "True"
            else:
                try:
                    row[key] = int(text) if key in _INTS else float(text)
                except ValueError as error:
                    raise ValueError(f"{path}: column {key!r} holds {text!r}, not a number"
                                     ) from error
    return rows


def _trace_label(summary: Path) -> str:
    if summary.is_file():
        for line in summary.read_text().splitlines():
            if line.startswith("Predictions of `gaba-control advise` from "):
                return line.split(" from ", 1)[1].split(";", 1)[0]
    return "a recorded run"
