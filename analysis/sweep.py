r"""Hyperparameter sweeps of GABA on C-MAPSS, and the seeds' robustness claims.

``gaba-control sweep --subset FD002 --warmup 25 50 100 200 400 --lambda-min 0.01 0.02 0.05 0.1 0.2``

A sweep trains GABA at a set of *points* of its settings (``beta``,
``lambda_min``, ``warmup``, ``refresh_every``) on one subset and several seeds,
through the same cached, resumable jobs and parallel engine as
:mod:`analysis.compare` (a point equal to a comparison's GABA run is that run,
trained once). Two designs:

* ``oat`` (default): one at a time around the centre (the paper's β = 0.99,
  λ_min = 0.05, W = 100, refresh every step), each parameter over its listed
  values with the others at the centre;
* ``grid``: every combination of the listed values.

Each point is compared with the centre *paired by seed* (same data order and
initialisation): the mean difference of each metric with its 95 % t interval
and, for the primary metric (test RMSE), an equivalence test (TOST,
:func:`analysis.compare.equivalence_test`) with the margin stated in advance
(default ±1 cycle, :data:`MARGIN`), Holm-adjusted over the points of the
sweep. Loop quantities per point (from the traces, as in
:func:`analysis.compare.trace_statistics`): the fraction of post-warmup steps
with the EMA below λ_min (``floor_fraction``) and the weighted share of the
small-gradient task (``share_weighted_small``).

Claims
------
The seeds state that GABA's results are *statistically indistinguishable* for
``W ∈ [50, 200]`` (seed 000) and ``λ_min ∈ [0.02, 0.10]`` (seed 002).
:meth:`SettingsSweepResponse.range_verdict` decides one such claim on the swept points
inside the range: *holds* when every one of them is shown equivalent to the
centre (Holm-adjusted TOST p < 0.05 at the margin: any difference is smaller
than the margin), *refuted* when one differs from it (Holm-adjusted paired t
p < 0.05) and is not shown equivalent, else *not shown* (neither: the seeds are
too few for the margin).

Outputs in ``--out``: ``runs.csv`` (one row per run with its point),
``summary.csv`` / ``summary.md`` (per point: n ok / n, mean ± std of every
metric, paired difference vs the centre with its interval, TOST, loop
quantities), ``verdicts.json`` (the range claims) and the figures
``sweep_<parameter>`` (PNG + SVG). :func:`settings_sweep_response` rebuilds it from
``runs.csv``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._common import Finding, Study, atomic_write_text, new_figure, results_dir, save_figure
from .compare import (
    ALPHA,
    DEFAULT_CACHE,
    EQUIVALENCE_MARGINS,
    METRICS,
    _base_config,
    _csv,
    _fmt,
    _read_csv,
    _run_row,
    add_engine_arguments,
    check_job,
    check_jobs,
    equivalence_test,
    holm,
    make_job,
    paired_statistics,
    run_jobs,
)

__all__ = ["CENTRE", "MARGIN", "PARAMETERS", "SettingsSweepResponse", "design_points", "run",
           "settings_sweep_response", "sweep"]

#: the committed sweep the report and the audit read
SWEEP_RESULTS = results_dir() / "sweep"
#: the paper's settings: the centre of a one-at-a-time design
CENTRE = {"beta": 0.99, "lambda_min": 0.05, "warmup": 100, "refresh_every": 1}
#: parameter → (type, label, log axis)
PARAMETERS = {
    "beta": (float, "EMA coefficient β", False),
    "lambda_min": (float, "floor λ_min", True),
    "warmup": (int, "warmup W (steps)", True),
    "refresh_every": (int, "refresh interval N (steps)", True),
}
PRIMARY = "test_rmse"
#: equivalence margin of the primary metric, stated before the runs: ±1 cycle of test RMSE
#: (≈ 5 % of GABA's FD002 test RMSE, about 1.5 seed standard deviations; as in ``compare``)
MARGIN = EQUIVALENCE_MARGINS[PRIMARY]
#: the seeds' robustness claims: (seed, parameter, low, high, statement)
RANGE_CLAIMS = (
    ("000", "warmup", 50, 200, "results statistically indistinguishable for W ∈ [50, 200]"),
    ("002", "lambda_min", 0.02, 0.10,
     "results statistically indistinguishable for λ_min ∈ [0.02, 0.10]"),
)
LOOP = ("floor_fraction", "share_weighted_small")


def _check_values(name: str, values) -> list:
    kind = PARAMETERS[name][0]
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise TypeError(f"{name} values must be numbers, got {v!r}")
        if kind is int and float(v) != int(v):
            raise ValueError(f"{name} values must be integers, got {v!r}")
        out.append(kind(v))
    if not out or len(set(out)) != len(out):
        raise ValueError(f"{name} values must be distinct and at least one, got {list(values)}")
    return out


def design_points(values: dict, *, design: str = "oat", centre: dict | None = None) -> list[dict]:
    """The points of a sweep: full settings dicts, the centre first, no duplicates.

    ``values`` maps a parameter of :data:`PARAMETERS` to the values it takes.

    Examples
    --------
    >>> [p["warmup"] for p in design_points({"warmup": [50, 100, 200]})]
    [100, 50, 200]
    >>> len(design_points({"warmup": [50, 200], "lambda_min": [0.02, 0.1]}, design="grid"))
    5
    """
    centre = {**CENTRE, **(centre or {})}
    unknown = sorted(set(values) - set(PARAMETERS))
    if unknown:
        raise ValueError(f"sweep parameters must be among {list(PARAMETERS)}, got {unknown}")
    if design not in ("oat", "grid"):
        raise ValueError(f"design must be 'oat' or 'grid', got {design!r}")
    values = {k: _check_values(k, v) for k, v in values.items()}
    if design == "oat":
        points = [{**centre, name: v} for name, vs in values.items() for v in vs]
    else:
        names = list(values)
        points = [{**centre, **dict(zip(names, combo, strict=True))}
                  for combo in itertools.product(*(values[n] for n in names))]
    out = [centre]
    for p in points:
        if p not in out:
            out.append(p)
    return out


def _point_job(cache: Path, subset: str, seed: int, point: dict, base: dict):
    config = {**base, "beta": point["beta"], "lambda_min": point["lambda_min"],
              "warmup": point["warmup"]}
    # refresh_every = 1 is the default: left out so that the run is the comparisons' GABA run
    options = {} if point["refresh_every"] == 1 else {"refresh_every": point["refresh_every"]}
    return make_job(cache, subset, "gaba", seed, config, options)


def sweep(subset: str = "FD002", values: dict | None = None, seeds=(0, 1, 2, 3, 4), *,
          design: str = "oat", out: Path = Path("results/sweep"), cache: Path | None = None,
          jobs: int = 1, backend: str = "loky", quick: bool = False, epochs: int | None = None,
          threads: int | None = None, progress: bool = True, figures: bool = True,
          cached_only: bool = False, margin: float = MARGIN,
          **train_kwargs) -> SettingsSweepResponse:
    """Train (or reuse) every point × seed, then write the tables and figures to ``out``.

    ``values``: parameter → values (default the seeds' two ranges, widened:
    ``warmup`` 25–400 and ``lambda_min`` 0.01–0.20). ``train_kwargs``:
    :class:`~gaba_control.cmapss.train.TrainConfig` fields shared by every run
    (e.g. ``lr``, ``data_dir``, ``max_batches``). ``cached_only``: train
    nothing, tabulate the runs already in the cache.
    """
    from gaba_control.cmapss.data import SUBSETS, default_data_dir

    if subset not in SUBSETS:
        raise ValueError(f"subset must be one of {SUBSETS}, got {subset!r}")
    seeds = list(seeds)
    if not seeds or len(set(seeds)) != len(seeds) or any(
            isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0 for s in seeds):
        raise ValueError(f"seeds must be distinct ints >= 0 and at least one, got {seeds}")
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not (
            math.isfinite(margin) and margin > 0):
        raise ValueError(f"margin must be a finite number > 0, got {margin!r}")
    if values is None:
        values = {"warmup": [25, 50, 100, 200, 400], "lambda_min": [0.01, 0.02, 0.05, 0.10, 0.20]}
    points = design_points(values, design=design)
    from gaba_control.weighting import get_method

    for point in points:  # every point is a valid configuration before anything trains
        get_method("gaba")({"num_tasks": 2, **{k: point[k] for k in ("beta", "warmup",
                                                                       "lambda_min")}},
                           refresh_every=point["refresh_every"]).module(1)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a directory")
    train_kwargs["data_dir"] = str(default_data_dir(train_kwargs.get("data_dir")))
    jobs = check_jobs(jobs)
    if threads is None and jobs > 1:
        threads = 1
    base = _base_config(quick=quick, epochs=epochs, threads=threads, **train_kwargs)
    cache = Path(cache) if cache is not None else DEFAULT_CACHE
    planned = [(i, seed, _point_job(cache, subset, seed, point, base))
               for seed in seeds for i, point in enumerate(points)]  # seed-major: pairs first
    if cached_only:
        planned = [p for p in planned if (Path(p[2].directory) / "metrics.json").is_file()]
    else:
        for _, _, job in planned:
            check_job(job)
        run_jobs([job for _, _, job in planned], n_jobs=jobs, backend=backend, progress=progress)
    rows = []
    for i, _, job in planned:
        metrics = json.loads((Path(job.directory) / "metrics.json").read_text())
        rows.append({"point": i, **{k: points[i][k] for k in PARAMETERS},
                     **_run_row(metrics, Path(job.directory))})
    response = SettingsSweepResponse(rows=rows, subset=subset, points=tuple(points),
                             seeds=tuple(seeds), varied=tuple(values), margin=margin)
    out.mkdir(parents=True, exist_ok=True)
    if rows:
        atomic_write_text(out / "runs.csv", _csv(rows))
    response.write(out, figures=figures)
    return response


def settings_sweep_response(runs_csv: Path, *, margin: float = MARGIN) -> SettingsSweepResponse:
    """The :class:`SettingsSweepResponse` of a committed ``runs.csv`` (no training)."""
    rows = _read_csv(Path(runs_csv))
    points: dict[int, dict] = {}
    for row in rows:
        row["point"] = int(row["point"])
        for name, (kind, _, _) in PARAMETERS.items():
            row[name] = kind(float(row[name]))
        points.setdefault(row["point"], {k: row[k] for k in PARAMETERS})
    ordered = tuple(points[i] for i in sorted(points))
    # points without runs are absent from runs.csv: renumber the rest by position
    position = {i: k for k, i in enumerate(sorted(points))}
    for row in rows:
        row["point"] = position[row["point"]]
    centre = ordered[0]
    varied = tuple(k for k in PARAMETERS if any(p[k] != centre[k] for p in ordered))
    subsets = {row["subset"] for row in rows}
    if len(subsets) != 1:
        raise ValueError(f"{runs_csv}: a sweep holds one subset, found {sorted(subsets)}")
    return SettingsSweepResponse(rows=rows, subset=subsets.pop(), points=ordered,
                         seeds=tuple(sorted({r["seed"] for r in rows})), varied=varied,
                         margin=margin)


@dataclass(frozen=True)
class SettingsSweepResponse:
    """Runs of a sweep (one row per point × seed) and what is computed from them.

    ``points[0]`` is the centre every other point is compared with.
    """

    rows: list
    subset: str
    points: tuple
    seeds: tuple
    varied: tuple
    margin: float = MARGIN

    def values(self, point: int, metric: str) -> dict:
        """``seed → value`` of the finished (status ok) runs of ``point``."""
        return {r["seed"]: r[metric] for r in self.rows
                if r["point"] == point and r["status"] == "ok" and r.get(metric) is not None}

    def counts(self, point: int) -> tuple[int, int]:
        cell = [r for r in self.rows if r["point"] == point]
        return sum(r["status"] == "ok" for r in cell), len(cell)

    def summary(self) -> list[dict]:
        """Per point: settings, counts, mean ± std, paired difference vs the centre, TOST, loop."""
        out = []
        for i, point in enumerate(self.points):
            ok, total = self.counts(i)
            row = {"point": i, **point, "n_ok": ok, "n": total}
            for metric in (*METRICS, *LOOP):
                v = np.array(list(self.values(i, metric).values()), float)
                row[f"{metric}_mean"] = float(v.mean()) if v.size else math.nan
                row[f"{metric}_std"] = float(v.std(ddof=1)) if v.size > 1 else math.nan
                row[f"{metric}_median"] = float(np.median(v)) if v.size else math.nan
                row[f"{metric}_min"] = float(v.min()) if v.size else math.nan
                row[f"{metric}_max"] = float(v.max()) if v.size else math.nan
            for metric in METRICS:
                a, b = self.values(i, metric), self.values(0, metric)
                common = sorted(set(a) & set(b))
                s = paired_statistics([a[k] for k in common], [b[k] for k in common])
                for key in ("n", "mean", "ci_low", "ci_high", "t_p"):
                    row[f"{metric}_diff_{key}"] = s[key] if i else math.nan
            a, b = self.values(i, PRIMARY), self.values(0, PRIMARY)
            common = sorted(set(a) & set(b))
            e = equivalence_test([a[k] for k in common], [b[k] for k in common], self.margin)
            row.update({f"tost_{k}": (e[k] if i else math.nan) for k in
                        ("ci90_low", "ci90_high", "p")})
            out.append(row)
        others = [r for r in out if r["point"]]
        for key, adjusted in (("tost_p", "tost_holm_p"),
                              (f"{PRIMARY}_diff_t_p", f"{PRIMARY}_diff_holm_p")):
            for row, p in zip(others, holm([r[key] for r in others]), strict=True):
                row[adjusted] = float(p)
        out[0]["tost_holm_p"] = out[0][f"{PRIMARY}_diff_holm_p"] = math.nan
        return out

    def range_verdict(self, parameter: str, low: float, high: float) -> dict:
        """Decide "indistinguishable from the centre for ``parameter`` ∈ [low, high]".

        Over the swept points that differ from the centre in ``parameter`` only
        and lie in the range: ``holds`` when every one is equivalent (Holm TOST
        p < α: a difference, if any, is inside the margin), ``refuted`` when one
        differs (Holm paired t p < α) without being shown equivalent, else ``not
        shown``; ``untested`` when no such point or fewer than 2 seeds.
        """
        centre = self.points[0]
        summary = self.summary()
        inside = [r for r in summary[1:]
                  if low <= r[parameter] <= high and all(
                      r[k] == centre[k] for k in PARAMETERS if k != parameter)]
        evidence = [{"value": r[parameter], "n": r[f"{PRIMARY}_diff_n"],
                     "diff": r[f"{PRIMARY}_diff_mean"], "ci90": [r["tost_ci90_low"],
                                                                 r["tost_ci90_high"]],
                     "ci95": [r[f"{PRIMARY}_diff_ci_low"], r[f"{PRIMARY}_diff_ci_high"]],
                     "tost_holm_p": r["tost_holm_p"], "t_holm_p": r[f"{PRIMARY}_diff_holm_p"]}
                    for r in inside]
        if not inside or any(e["n"] < 2 for e in evidence):
            verdict = "untested"
        elif all(e["tost_holm_p"] < ALPHA for e in evidence):
            verdict = "holds"
        elif any(e["t_holm_p"] < ALPHA and not e["tost_holm_p"] < ALPHA for e in evidence):
            verdict = "refuted"
        else:
            verdict = "not shown"
        return {"parameter": parameter, "low": low, "high": high, "subset": self.subset,
                "metric": PRIMARY, "margin": self.margin, "seeds": list(self.seeds),
                "verdict": verdict, "points": evidence}

    def verdicts(self) -> list[dict]:
        """:meth:`range_verdict` of every claim of :data:`RANGE_CLAIMS` this sweep varies."""
        return [{"seed": seed, "claim": text, **self.range_verdict(name, low, high)}
                for seed, name, low, high, text in RANGE_CLAIMS if name in self.varied]

    # ------------------------------------------------------------------ tables
    def markdown(self, level: int = 2) -> str:
        h = "#" * level
        label = METRICS[PRIMARY][0]
        lines = [f"{h} Sweep of GABA on {self.subset}: {len(self.points)} points × "
                 f"{len(self.seeds)} seeds (seeds {' '.join(map(str, self.seeds))})", "",
                 f"Per point: runs ok / runs; {label} mean ± std over seeds (ddof 1); its "
                 "paired difference from the centre (point 0) with the two-sided 95 % t "
                 f"interval; the TOST equivalence test at ±{self.margin:g} (its 90 % interval "
                 "and the Holm-adjusted p over the points); the median over seeds of the "
                 "post-warmup floor-active fraction and of the small task's weighted share.",
                 "", "| point | β | λ_min | W | N | ok/n | " + label + " | Δ vs centre [95 % CI] "
                 "| TOST 90 % CI | TOST Holm p | floor | share |",
                 "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in self.summary():
            paired = r["point"] and r[f"{PRIMARY}_diff_n"] >= 2
            diff = ("—" if not paired else
                    f"{r[f'{PRIMARY}_diff_mean']:+.2f} [{r[f'{PRIMARY}_diff_ci_low']:+.2f}, "
                    f"{r[f'{PRIMARY}_diff_ci_high']:+.2f}]")
            tost = ("—" if not paired or not np.isfinite(r["tost_ci90_low"]) else
                    f"[{r['tost_ci90_low']:+.2f}, {r['tost_ci90_high']:+.2f}]")
            lines.append(
                f"| {r['point']} | {r['beta']:g} | {r['lambda_min']:g} | {r['warmup']} | "
                f"{r['refresh_every']} | {r['n_ok']}/{r['n']} | "
                f"{_fmt(r[f'{PRIMARY}_mean'], 4)} ± {_fmt(r[f'{PRIMARY}_std'], 2)} | {diff} | "
                f"{tost} | {_fmt(r['tost_holm_p'], 2)} | "
                f"{_fmt(r['floor_fraction_median'], 2)} | "
                f"{_fmt(r['share_weighted_small_median'], 2)} |")
        verdicts = self.verdicts()
        if verdicts:
            lines += ["", f"{h} The seeds' robustness claims", ""]
            for v in verdicts:
                lines.append(f"* seed {v['seed']}: {v['claim']}: **{v['verdict']}** "
                             f"({v['subset']}, {v['metric']}, margin ±{v['margin']:g}; points "
                             + ", ".join(f"{e['value']:g} (n = {e['n']}): TOST Holm p "
                                         f"{_fmt(e['tost_holm_p'], 2)}, t Holm p "
                                         f"{_fmt(e['t_holm_p'], 2)}"
                                         for e in v["points"]) + ")")
        return "\n".join(lines) + "\n"

    def write(self, out: Path, *, figures: bool = True) -> list[Path]:
        """``summary.md``, ``summary.csv``, ``verdicts.json`` and the figures into ``out``."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        written = [out / "summary.md", out / "summary.csv", out / "verdicts.json"]
        atomic_write_text(written[0], self.markdown())
        atomic_write_text(written[1], _csv(self.summary()))
        atomic_write_text(written[2], json.dumps(self.verdicts(), indent=2, default=_json) + "\n")
        if figures:
            for name in self.varied:
                written += save_figure(self.plot(name), out, f"sweep_{name}")
        return written

    # ----------------------------------------------------------------- figures
    def plot(self, parameter: str | None = None, fig=None):
        """Three panels against ``parameter``: Δ test RMSE vs the centre; the loop quantities.

        Top: each point's paired mean difference from the centre with its 95 %
        t interval (lower is better), the equivalence band ±margin shaded.
        Middle: the post-warmup floor-active fraction; bottom (log): the small
        task's weighted share, the target 1/K dashed; both medians over seeds
        with min–max bars. Points varying another parameter are left out.
        """
        parameter = parameter or self.varied[0]
        if parameter not in PARAMETERS:
            raise ValueError(f"parameter must be among {list(PARAMETERS)}, got {parameter!r}")
        _, label, log = PARAMETERS[parameter]
        centre = self.points[0]
        summary = [r for r in self.summary()  # points with runs, varying this parameter only
                   if r["n_ok"] and all(r[k] == centre[k] for k in PARAMETERS if k != parameter)]
        summary.sort(key=lambda r: r[parameter])
        x = np.array([r[parameter] for r in summary], float)
        if fig is None:
            fig, (top, floor, share) = new_figure(3, 1, width=5.6, height=6.4, sharex=True)
        else:
            top, floor, share = fig.subplots(3, 1, sharex=True)
        top.axhspan(-self.margin, self.margin, color="0.85", lw=0,
                    label=f"equivalence margin ±{self.margin:g}")
        top.axhline(0, color="0.4", lw=0.8)
        mean = np.array([0.0 if not r["point"] else r[f"{PRIMARY}_diff_mean"] for r in summary])
        low = np.array([0.0 if not r["point"] else r[f"{PRIMARY}_diff_ci_low"] for r in summary])
        high = np.array([0.0 if not r["point"] else r[f"{PRIMARY}_diff_ci_high"]
                         for r in summary])
        top.errorbar(x, mean, yerr=[mean - low, high - mean], fmt="o", color="C0", capsize=3,
                     label="mean Δ over seeds, 95 % t CI")
        top.plot([centre[parameter]], [0.0], "s", color="k", label="centre (reference)")
        top.set_ylabel(f"Δ {METRICS[PRIMARY][0]}\nvs centre (lower is better)")
        top.legend(loc="best", fontsize=7)
        top.set_title(f"GABA on {self.subset}, {len(self.seeds)} seeds: {label}")
        for ax, metric, color, name in (
                (floor, "floor_fraction", "C3", "floor-active fraction"),
                (share, "share_weighted_small", "C2", "weighted share\nof the small task")):
            med = np.array([r[f"{metric}_median"] for r in summary])
            lo = np.array([r[f"{metric}_min"] for r in summary])
            hi = np.array([r[f"{metric}_max"] for r in summary])
            ax.errorbar(x, med, yerr=[med - lo, hi - med], fmt="o-", color=color, capsize=3,
                        label="median over seeds, min–max")
            ax.set_ylabel(name)
            ax.legend(loc="best", fontsize=7)
        floor.set_ylim(-0.02, 1.02)
        share.axhline(0.5, color="0.4", ls="--", lw=0.8, label="target 1/K")
        share.set_yscale("log")
        share.legend(loc="best", fontsize=7)
        share.set_xlabel(label)
        if log:
            share.set_xscale("log")
        share.set_xticks(x, [f"{v:g}" for v in x])
        share.minorticks_off()
        return fig


def _json(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    raise TypeError(f"not JSON serialisable: {value!r}")


# --------------------------------------------------------------------------- report
def run(outdir: Path, *, seed: int, trace, quick: bool) -> Study:
    """The report's "Robustness sweeps" section, from the committed sweep (trains nothing).

    Its verdicts are rows of the seed audit (seed 000 ``warmup_range``, seed
    002 ``floor_range``); here are the table and the figures.
    """
    runs = SWEEP_RESULTS / "runs.csv"
    title = "Robustness sweeps: W and λ_min on C-MAPSS"
    if not runs.is_file():
        return Study(name="sweep", title=title,
                     summary=f"Skipped: no committed sweep results ({runs} not found).")
    response = settings_sweep_response(runs)
    figures = []
    for name in response.varied:
        figures += save_figure(response.plot(name), outdir, f"sweep_{name}")
    verdicts = "; ".join(f"seed {v['seed']} ({v['claim']}): {v['verdict']}"
                         for v in response.verdicts())
    summary = (f"GABA on {response.subset} at {len(response.points)} points of its settings × "
               f"{len(response.seeds)} seeds (`gaba-control sweep`, one at a time around "
               f"β = 0.99, λ_min = 0.05, W = 100), each paired by seed with the centre; "
               f"equivalence margin ±{response.margin:g} cycles of test RMSE (TOST, Holm over "
               f"the points). Verdicts (rows of the seed audit): {verdicts}.")
    labels = {name: PARAMETERS[name][1] for name in response.varied}
    captions = {f"sweep_{name}": (
        f"GABA on {response.subset} against {labels[name]} ({len(response.seeds)} seeds per "
        f"point, the other settings at their defaults): top, the paired difference of test "
        f"RMSE from the centre with its 95 % t interval and the equivalence margin "
        f"±{response.margin:g} cycle (shaded); middle, the fraction of post-warmup steps with "
        f"the floor binding; bottom (log), the small task's achieved share against 1/K "
        f"(medians over seeds, min–max bars).") for name in response.varied}
    findings = [Finding(
        f"Seed {v['seed']}'s claim of {v['claim']}: {v['verdict']} on {response.subset} "
        f"({len(response.seeds)} seeds, TOST at "
        f"±{response.margin:g} cycle of test RMSE, Holm over the points).",
        figure=f"sweep_{v['parameter']}" if v.get("parameter") in response.varied else "")
        for v in response.verdicts()]
    findings += _differing_points(response)
    return Study(name="sweep", title=title,
                 summary=summary + " See " + ", ".join(
                     "{fig:sweep_" + name + "}" for name in response.varied) + ".",
                 figures=figures, tables=[response.markdown(level=3)], captions=captions,
                 findings=findings)


def _differing_points(response) -> list[Finding]:
    """A finding for each point that differs from the centre after Holm (paired t)."""
    out = []
    for r in response.summary():
        p = r.get(f"{PRIMARY}_diff_holm_p")
        if not r["point"] or p is None or not np.isfinite(p) or p >= 0.05:
            continue
        name = next(k for k in response.varied if r[k] != response.points[0][k])
        out.append(Finding(
            f"On {response.subset} GABA with {PARAMETERS[name][1].split(' (')[0]} = {r[name]:g} "
            f"instead of its default changes the test RMSE by "
            f"{r[f'{PRIMARY}_diff_mean']:+.2f} [{r[f'{PRIMARY}_diff_ci_low']:+.2f}, "
            f"{r[f'{PRIMARY}_diff_ci_high']:+.2f}] cycles ({r[f'{PRIMARY}_diff_n']} paired seeds, "
            f"Holm p = {p:.2g} over {len(response.points) - 1} points); the small task's weighted "
            f"share is {r['share_weighted_small_median']:.2g} instead of "
            f"{response.summary()[0]['share_weighted_small_median']:.2g}.",
            figure=f"sweep_{name}"))
    return out


# ------------------------------------------------------------------------------ CLI
def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The ``sweep`` command's options."""
    from gaba_control.cmapss.data import SUBSETS

    parser.add_argument("--subset", type=str.upper, choices=SUBSETS, default="FD002",
                        help="C-MAPSS subset (default FD002)")
    for name, (kind, label, _) in PARAMETERS.items():
        parser.add_argument("--" + name.replace("_", "-"), nargs="+", type=kind, default=None,
                            metavar="V", help=f"values of {label} (centre {CENTRE[name]})")
    parser.add_argument("--design", choices=("oat", "grid"), default="oat",
                        help="one at a time around the centre (default) or every combination")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4],
                        help="training seeds (default 0 1 2 3 4)")
    parser.add_argument("--margin", type=float, default=MARGIN,
                        help=f"equivalence margin of test RMSE in cycles (default {MARGIN:g})")
    parser.add_argument("--out", type=Path, default=Path("results/sweep"),
                        help="tables and figures (default results/sweep)")
    add_engine_arguments(parser)
    parser.add_argument("--quick", action="store_true",
                        help="smoke configuration (2 epochs of 30 batches)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per run")
    parser.add_argument("--max-batches", type=int, default=None, help="batches per epoch cap")
    parser.add_argument("--data-dir", default=None, help="C-MAPSS directory")
    parser.add_argument("--no-figures", action="store_true", help="tables only")
    parser.add_argument("--cached-only", action="store_true",
                        help="train nothing: tabulate the points already in the cache")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def run_from_args(args: argparse.Namespace) -> int:
    """Run ``sweep`` from parsed arguments; print the table; return the exit status."""
    values = {name: getattr(args, name) for name in PARAMETERS
              if getattr(args, name) is not None}
    try:
        response = sweep(args.subset, values or None, args.seeds, design=args.design,
                         out=args.out, cache=args.cache, jobs=args.jobs, backend=args.backend,
                         quick=args.quick, epochs=args.epochs, threads=args.threads,
                         progress=not args.no_progress, figures=not args.no_figures,
                         cached_only=args.cached_only, margin=args.margin,
                         max_batches=args.max_batches, data_dir=args.data_dir)
    except (ValueError, TypeError, RuntimeError, FileNotFoundError) as error:
        print(f"gaba-control sweep: {error}", file=sys.stderr)
        return 2
    print(response.markdown())
    return 0
