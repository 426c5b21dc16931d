r"""Feedback or schedule? Paired multi-seed comparisons of weighting methods on C-MAPSS.

``gaba-control compare --subsets FD001 FD002 --methods gaba equal schedule --seeds 0 1 2``

Every (subset, method, seed) is one independent training job
(:func:`gaba_control.cmapss.train.train`); the methods differ only in where the
applied weights come from (see :mod:`gaba_control.cmapss.train`). Jobs run
through :class:`joblib.Parallel`:

* ``--jobs N`` (default 1): local processes (joblib's ``loky`` backend), each job
  with ``torch.set_num_threads(1)`` when ``N > 1``;
* ``--backend dask``: the jobs go to a Dask cluster through
  ``joblib.parallel_config(backend="dask")``; the scheduler is
  ``$DASK_SCHEDULER_ADDRESS`` if set, else a local cluster of ``N`` one-thread
  workers (needs ``pip install "dask[distributed]"``);
* ``--backend ray``: the same through Ray's joblib backend (``ray.init`` with
  ``$RAY_ADDRESS`` if set, else local; needs ``pip install ray``).
  Neither is a dependency: they are imported only when asked for.

Cache
-----
Each job writes into ``<cache>/<subset>/<method>/seed<seed>-<hash>/`` (default
cache :data:`DEFAULT_CACHE`, ``runs/compare``, outside git; comparisons share it,
so a run with the same configuration is trained once) with ``hash`` the first 12
hex digits of the SHA-256 of everything that defines the run (the training configuration, and for
``schedule``/``replay`` the ratio or the replayed run's hash). ``metrics.json``
is written last and atomically, so a directory with it is a finished job and is
skipped on rerun; an interrupted comparison resumes with the unfinished jobs,
each from its last epoch's checkpoint (``train --resume``). The checkpoint is
deleted after a finished job. While a job runs, ``running.json`` in its
directory names the process on it (pid, host, start time). A worker lost
mid-job (killed, out of memory) is the engine's failure, not the job's: Dask
reschedules the task itself, and for every backend the unfinished jobs are
submitted again (up to :data:`RETRIES` times), continuing from their
checkpoints; ``resumed_at_epochs`` in ``metrics.json`` records where.
A job that raises is recorded with ``"status": "crashed"`` and the error; a run
with a non-finite loss has ``"status": "diverged"``; both are counted in the
table (``n ok / n``), never dropped, and are not retried on rerun (delete the
directory to retry).

Open-loop references
--------------------
``schedule`` for a subset uses, unless ``--schedule-ratio`` is given, the median
post-warmup ratio ``g_RUL/g_health`` of that subset's GABA run with the first
seed of the comparison; ``replay`` on seed ``s_i`` applies the ``λ*`` of the GABA
run on the next seed ``s_{i+1}`` (cyclically; with one seed its own), so the
trajectory is GABA's but the noise it reacted to is another run's. GABA runs
are therefore always included. A method that reads another method's runs (its
:attr:`~gaba_control.weighting.WeightingMethod.reference`) runs in a later
wave, planned by its own :meth:`~gaba_control.weighting.WeightingMethod.plan`;
``compare`` itself knows no method by name.

Outputs in ``--out``
--------------------
``runs.csv`` (one row per job: status, metrics, trace statistics),
``summary.csv`` / ``summary.md`` (mean ± std per subset and method, paired
differences against GABA with paired t-test and Wilcoxon signed-rank p-values
and Cohen's ``d_z``, trace statistics) and the figures ``compare_paired_*``,
``compare_lambda``, ``compare_ratio`` (PNG + SVG). :func:`comparison_response`
rebuilds everything from ``runs.csv`` without training; :func:`run` is the
report's hook ("Feedback or schedule?").
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import functools
import hashlib
import io
import json
import math
import os
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from gaba_control.theory import settling_steps

from ._common import (
    Claim,
    Finding,
    Study,
    atomic_write_text,
    new_figure,
    results_dir,
    save_figure,
)
from .real_loop import real_loop_response, rolling_median

__all__ = [
    "METRICS",
    "ComparisonResponse",
    "Job",
    "add_arguments",
    "compare",
    "comparison_response",
    "comparison_study",
    "paired_statistics",
    "plan_jobs",
    "run",
    "run_from_args",
    "trace_statistics",
]

CACHE_VERSION = 1
#: where the run directories go unless ``cache`` is given (git-ignored)
DEFAULT_CACHE = Path("runs/compare")
#: metric key in metrics.json → (label, lower is better)
METRICS = {
    "test_rmse": ("test RMSE (cycles)", True),
    "test_phm08_score": ("PHM08 score", True),
    "test_macro_f1": ("health macro-F1", False),
    "val_rmse": ("validation RMSE (cycles)", True),
}
#: equivalence margins stated before the runs (TOST, :func:`equivalence_test`): ±1 cycle of
#: RMSE (≈ 5 % of GABA's FD002 test RMSE) and ±0.02 of macro-F1; the PHM08 score has none
#: (its scale spans decades between subsets)
EQUIVALENCE_MARGINS = {"test_rmse": 1.0, "val_rmse": 1.0, "test_macro_f1": 0.02}
#: the open-loop references of GABA that the attribution claim tests against
OPEN_LOOP = ("schedule", "replay")
#: rolling-median windows (steps) for the "peak ratio" statistics
RATIO_WINDOWS = (10, 50, 250)
#: significance level of the claims
ALPHA = 0.05
#: fewest paired seeds for a claim to be testable
MIN_SEEDS = 5
#: committed comparisons the report reads, most complete first
COMMITTED = (results_dir() / "compare", results_dir() / "compare-issue3")
#: committed traces, ``<subset>-<method>-seed<seed>.npz``
TRACES = results_dir() / "traces"
TRACE_FIELDS = (
    "ratio_first",
    "ratio_median",
    "ratio_max",
    "ratio_epoch_median_max",
    "ratio_epoch_argmax",
    *(f"ratio_rolling_max_{w}" for w in RATIO_WINDOWS),
    "ratio_median_second_half",
    "floor_fraction",
    "share_weighted_small",
    "share_raw_small",
    "lambda_rul_median",
    "lambda_std",
    "lambda_std_settled",
    "raw_std",
    "weight_min",
    "weight_max",
    "lambda_rul_min",
    "lambda_rul_max",
    "negative_weight_steps",
)
#: a job's worker record (pid, host, start), present while it runs
RUNNING = "running.json"
#: times the unfinished jobs are submitted again after the engine lost a worker
RETRIES = 3
#: the EMA counts as settled once its initial gap is below this fraction
SETTLED_FRACTION = 0.01


# ----------------------------------------------------------------------------- jobs
@dataclass(frozen=True)
class Job:
    """One training run of a comparison."""

    subset: str
    method: str
    seed: int
    config: dict  # TrainConfig fields except out/progress
    key: dict  # what the cache hash is computed from
    directory: str

    @property
    def name(self) -> str:
        return f"{self.subset}/{self.method}/seed{self.seed}"


def _hash(key: dict) -> str:
    text = json.dumps(key, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _base_config(*, quick: bool, epochs: int | None, threads: int | None, **train_kwargs) -> dict:
    from gaba_control.cmapss.train import QUICK_WARMUP, TrainConfig

    config = asdict(TrainConfig())
    # resume: a job killed mid-run continues from its last epoch's checkpoint
    config.update(quick=quick, threads=threads, progress=False, resume=True)
    if quick:
        config["warmup"] = QUICK_WARMUP
    if epochs is not None:
        config["epochs"] = epochs
    for name, value in train_kwargs.items():
        if name not in config or name == "options":
            raise TypeError(f"unknown training option {name!r}")
        if value is not None:
            config[name] = value
    return config


#: configuration fields that do not change what a run computes
_NOT_IN_KEY = {"out", "progress", "threads", "data_dir", "resume"}


def make_job(cache: Path, subset: str, method: str, seed: int, base: dict,
             options: dict | None = None, key_entries: dict | None = None) -> Job:
    """The job of ``method`` on (``subset``, ``seed``) with ``options``; its cache directory.

    The cache key is the configuration without the fields that do not change
    the run, without ``None`` values or an option's stated default (so a new
    optional setting leaves existing keys alone), with the method options that
    identify the run (a path option is replaced by what
    :meth:`~gaba_control.weighting.WeightingMethod.plan` puts in ``key_entries``).
    """
    from gaba_control.weighting import option_owners

    owners = option_owners()
    options = {k: v for k, v in (options or {}).items()
               if v is not None and v != owners[k][0].default}
    config = {**base, "subset": subset, "method": method, "seed": seed,
              "options": options or None}
    key = {k: v for k, v in config.items()
           if k not in _NOT_IN_KEY and k != "options" and v is not None}
    keyed = {k: v for k, v in options.items() if owners[k][0].in_cache_key}
    key.update({"options": keyed} if keyed else {})
    key.update({"cache_version": CACHE_VERSION, **(key_entries or {})})
    directory = cache / subset / method / f"seed{seed}-{_hash(key)}"
    return Job(subset, method, seed, config, key, str(directory))


def plan_jobs(subsets, methods, seeds, *, cache: Path, base: dict, options: dict | None = None,
              references: dict | None = None) -> list[Job]:
    """The jobs of ``methods`` (seed-major: an interrupted run leaves complete pairs behind).

    ``options`` maps a method to its options. A method with a
    :attr:`~gaba_control.weighting.WeightingMethod.reference` is planned from
    ``references[(subset, reference, seed)]``, the reference's job.
    """
    from gaba_control.weighting import get_method

    jobs = []
    for subset in subsets:
        for i, seed in enumerate(seeds):
            for method in methods:
                cls = get_method(method)
                given = dict((options or {}).get(method, {}))
                runs = {} if cls.reference is None else {
                    s: references[(subset, cls.reference, s)].directory for s in seeds}
                planned, key_entries = cls.plan(given, seeds=list(seeds), index=i,
                                                reference_runs=runs)
                jobs.append(make_job(cache, subset, method, seed, base, planned, key_entries))
    return jobs


#: the most parallel jobs or torch threads a command takes (beyond it a typo, not a machine)
MAX_PARALLEL = 1024


def check_jobs(jobs) -> int:
    """``jobs`` if it is an int in [1, MAX_PARALLEL], else ``ValueError`` naming it."""
    if isinstance(jobs, bool) or not isinstance(jobs, (int, np.integer)) or not (
            1 <= jobs <= MAX_PARALLEL):
        raise ValueError(f"jobs must be an int in [1, {MAX_PARALLEL}], got {jobs!r}")
    return int(jobs)


def check_job(job: Job) -> None:
    """Raise ``ValueError``/``TypeError`` naming a setting if ``job`` would crash on it.

    Called for every planned job before any runs, so that a configuration no run can
    train is a message, not a table of crashed runs; a job recorded as a planning error
    (e.g. a reference run that failed) is left to :func:`run_job` to record.
    """
    if "plan_error" in job.key:
        return
    from gaba_control.cmapss.train import TrainConfig, check_config

    config = dict(job.config)
    config["health_thresholds"] = tuple(config["health_thresholds"])
    check_config(TrainConfig(**{**config, "out": job.directory}))


def run_job(job: Job) -> dict:
    """Train ``job`` unless it is finished; return its metrics (status ok/diverged/crashed)."""
    directory = Path(job.directory)
    done = directory / "metrics.json"
    if done.is_file():
        return json.loads(done.read_text())
    from gaba_control.cmapss.train import TrainConfig, _atomic_json, train

    directory.mkdir(parents=True, exist_ok=True)
    # who is on the job: a worker lost mid-job leaves this behind with its checkpoint
    import socket

    atomic_write_text(directory / RUNNING, json.dumps(
        {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}) + "\n")
    started = time.perf_counter()
    try:
        if "plan_error" in job.key:
            raise ValueError(job.key["plan_error"])
        config = dict(job.config)
        config["health_thresholds"] = tuple(config["health_thresholds"])
        if config.get("threads"):
            import torch

            torch.set_num_threads(config["threads"])
        config = TrainConfig(**{**config, "out": str(directory)})
        metrics = train(config, data=_data(config.subset, config.data_dir, config.window,
                                           config.rul_cap, config.health_thresholds,
                                           config.split_seed))
    except Exception as error:  # recorded, counted, not retried: see the module docstring
        metrics = {
            "status": "crashed",
            "diverged": False,
            "error": f"{type(error).__name__}: {error}",
            "traceback": traceback.format_exc(),
            "wall_time_s": time.perf_counter() - started,
        }
        for name in METRICS:
            metrics[name] = None
    metrics.update(subset=job.subset, method=job.method, seed=job.seed, cache_key=job.key,
                   worker={"pid": os.getpid(), "host": socket.gethostname()})
    (directory / "checkpoint.pt").unlink(missing_ok=True)
    _atomic_json(metrics, done)
    (directory / RUNNING).unlink(missing_ok=True)
    return metrics


@functools.lru_cache(maxsize=2)
def _data(subset, data_dir, window, rul_cap, health_thresholds, split_seed):
    """The subset's data, loaded once per process (a worker runs many jobs of a subset)."""
    from gaba_control.cmapss.data import load_subset

    return load_subset(subset, data_dir, window=window, rul_cap=rul_cap,
                       health_thresholds=health_thresholds, seed=split_seed)


@contextlib.contextmanager
def _backend(backend: str, n_jobs: int):
    """``joblib.parallel_config`` for ``backend``; dask and ray are imported only here."""
    import joblib

    if backend in ("loky", "multiprocessing", "threading"):
        with joblib.parallel_config(backend=backend, n_jobs=n_jobs):
            yield
        return
    if backend == "dask":
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError as error:
            raise RuntimeError(
                "--backend dask needs dask.distributed: pip install 'dask[distributed]'"
            ) from error
        address = os.environ.get("DASK_SCHEDULER_ADDRESS")
        cluster = None if address else LocalCluster(n_workers=n_jobs, threads_per_worker=1)
        with Client(address or cluster), joblib.parallel_config(backend="dask", n_jobs=n_jobs):
            yield
        if cluster is not None:
            cluster.close()
        return
    if backend == "ray":
        try:
            import ray
            from ray.util.joblib import register_ray
        except ImportError as error:
            raise RuntimeError("--backend ray needs ray: pip install ray") from error
        register_ray()
        if not ray.is_initialized():
            ray.init(address=os.environ.get("RAY_ADDRESS"))
        with joblib.parallel_config(backend="ray", n_jobs=n_jobs):
            yield
        return
    raise ValueError(f"backend must be one of loky, multiprocessing, threading, dask, ray; "
                     f"got {backend!r}")


def run_jobs(jobs: list[Job], *, n_jobs: int = 1, backend: str = "loky",
             progress: bool = True, retries: int = RETRIES) -> list[dict]:
    """Run the unfinished ``jobs`` in parallel with a progress bar; return all metrics.

    A job never raises (:func:`run_job` records a failing run as crashed), so
    an exception out of the engine is the engine's: a worker process lost
    (killed, out of memory, its machine gone). The unfinished jobs are then
    submitted again, up to ``retries`` times, each continuing from its last
    checkpoint; a finished job is never rerun. (Dask reschedules the task of a
    lost worker itself; loky and Ray raise, and are retried here.)
    """
    import joblib
    from tqdm.auto import tqdm

    def unfinished():
        return [job for job in jobs if not (Path(job.directory) / "metrics.json").is_file()]

    pending = unfinished()
    if pending:
        bar = tqdm(total=len(jobs), initial=len(jobs) - len(pending), desc="compare",
                   unit="run", disable=not progress, file=sys.stderr)
        local = backend in ("loky", "multiprocessing", "threading")
        for attempt in range(retries + 1):
            try:
                with _backend(backend, n_jobs):
                    parallel = joblib.Parallel(return_as="generator_unordered" if local
                                               else "list")
                    for metrics in parallel(joblib.delayed(run_job)(job) for job in pending):
                        bar.set_postfix_str(f"{metrics['subset']}/{metrics['method']}/"
                                            f"seed{metrics['seed']}: {metrics.get('status')}")
                        bar.update(1)
                break
            except Exception as error:  # the engine's, not a job's: see the docstring
                pending = unfinished()
                if attempt == retries or not pending:
                    raise
                print(f"compare: {type(error).__name__} from the {backend} backend ({error}); "
                      f"submitting the {len(pending)} unfinished job(s) again from their "
                      f"checkpoints (retry {attempt + 1} of {retries})", file=sys.stderr)
        bar.n = len(jobs) - len(unfinished())
        bar.refresh()
        bar.close()
    return [json.loads((Path(job.directory) / "metrics.json").read_text()) for job in jobs]


# ----------------------------------------------------------------------- statistics
def paired_statistics(values, reference) -> dict:
    """Paired differences ``values − reference`` over seeds: mean, std, t-test, Wilcoxon, d_z.

    Pairs with a non-finite member are left out (``n`` counts the rest).
    ``d_z = mean(d)/std(d, ddof=1)`` (Cohen's d for paired samples);
    ``ci_low``/``ci_high`` the two-sided 95 % t interval of the mean difference.
    p-values are two-sided (:func:`scipy.stats.ttest_rel`,
    :func:`scipy.stats.wilcoxon`); NaN where undefined (n < 2, all d equal).

    Examples
    --------
    >>> s = paired_statistics([2.0, 3.0, 5.0], [1.0, 1.0, 2.0])
    >>> s["n"], s["mean"], round(s["d_z"], 4)
    (3, 2.0, 2.0)
    """
    from scipy import stats

    a, b = np.asarray(values, dtype=float), np.asarray(reference, dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    d = a[keep] - b[keep]
    n = int(d.size)
    out = {"n": n, "mean": float(d.mean()) if n else math.nan,
           "std": float(d.std(ddof=1)) if n > 1 else math.nan,
           "ci_low": math.nan, "ci_high": math.nan,
           "t_p": math.nan, "wilcoxon_p": math.nan, "d_z": math.nan}
    if n > 1:
        half = float(stats.t.ppf(0.975, n - 1)) * out["std"] / math.sqrt(n)
        out["ci_low"], out["ci_high"] = out["mean"] - half, out["mean"] + half
    if n < 2 or not np.any(d != d[0]):
        return out
    out["t_p"] = float(stats.ttest_rel(a[keep], b[keep]).pvalue)
    out["d_z"] = out["mean"] / out["std"]
    if np.any(d != 0):
        out["wilcoxon_p"] = float(stats.wilcoxon(d).pvalue)
    return out


def equivalence_test(values, reference, margin: float, *, alpha: float = ALPHA) -> dict:
    """Paired two one-sided t-tests (TOST) that ``|mean(values − reference)| < margin``.

    Schuirmann's TOST on the paired differences ``d`` (pairs with a
    non-finite member left out): ``H0: mean(d) ≤ −margin or mean(d) ≥ margin``
    against ``H1: −margin < mean(d) < margin``, each one-sided t-test at
    ``alpha``; ``p`` is the larger of the two one-sided p-values, and
    equivalence is shown (``equivalent``) when ``p < alpha``, exactly when the
    ``1 − 2·alpha`` (90 %) t interval of the mean lies inside ``(−margin, margin)``.
    NaN where undefined (``n < 2``, all differences equal, or a spread too
    small to divide by).

    Examples
    --------
    >>> e = equivalence_test([1.0, 1.2, 0.9, 1.1], [1.0, 1.0, 1.0, 1.0], margin=0.5)
    >>> e["equivalent"], round(e["ci90_low"], 3), round(e["ci90_high"], 3)
    (True, -0.102, 0.202)
    >>> equivalence_test([1.0, 1.2, 0.9, 1.1], [1.0] * 4, margin=0.1)["equivalent"]
    False
    """
    from scipy import stats

    if not (isinstance(margin, (int, float, np.floating)) and math.isfinite(margin)
            and margin > 0):
        raise ValueError(f"margin must be a finite number > 0, got {margin!r}")
    a, b = np.asarray(values, dtype=float), np.asarray(reference, dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    d = a[keep] - b[keep]
    n = int(d.size)
    out = {"n": n, "margin": float(margin), "mean": float(d.mean()) if n else math.nan,
           "ci90_low": math.nan, "ci90_high": math.nan, "p": math.nan, "equivalent": False}
    if n < 2 or not np.any(d != d[0]):
        return out
    se = float(d.std(ddof=1)) / math.sqrt(n)
    if not (math.isfinite(se) and se > 0):  # e.g. subnormal spread: the t statistic is undefined
        return out
    t = stats.t(n - 1)
    p_lower = float(t.sf((out["mean"] + margin) / se))  # H0: mean ≤ −margin
    p_upper = float(t.cdf((out["mean"] - margin) / se))  # H0: mean ≥ +margin
    half = float(t.ppf(1 - alpha)) * se
    out.update(ci90_low=out["mean"] - half, ci90_high=out["mean"] + half,
               p=max(p_lower, p_upper))
    out["equivalent"] = bool(out["p"] < alpha)
    return out


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjustment of a family of p-values (NaN entries left out, kept NaN).

    >>> holm([0.01, 0.04, 0.03]).round(3).tolist()
    [0.03, 0.06, 0.06]
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, math.nan)
    idx = np.flatnonzero(np.isfinite(p))
    order = idx[np.argsort(p[idx], kind="stable")]
    m = order.size
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def trace_statistics(trace) -> dict:
    """Per-run loop quantities of a :class:`~gaba_control.trace.Trace` (see :data:`TRACE_FIELDS`).

    Ratios are ``g_RUL/g_health`` on the shared parameters; epochs are counted
    from 1. Post-warmup means active and valid steps. ``floor_fraction`` is the
    fraction of them on which some applied weight, as a share of the total, is
    below ``λ_min`` (for GABA: the floor binds; for another method: what its own
    weights did, not GABA's shadow state); the shares use the applied weights.
    """
    response = real_loop_response(trace)
    summary = response.summary()
    post = response.post_warmup
    ratio = response.ratio
    out = {k: summary[k] for k in ("ratio_first", "ratio_median", "ratio_max",
                                   "ratio_epoch_median_max", "floor_fraction",
                                   "share_weighted_small", "share_raw_small")}
    out["ratio_epoch_argmax"] = summary["ratio_epoch_argmax"] + 1
    for w in RATIO_WINDOWS:
        out[f"ratio_rolling_max_{w}"] = _max_full_window_median(ratio, w)
    late = ratio[len(ratio) // 2:]
    late = late[np.isfinite(late)]
    out["ratio_median_second_half"] = float(np.median(late)) if late.size else math.nan
    applied, lam, raw = trace.applied_weights[post], trace.weights[post], trace.raw[post]
    with np.errstate(invalid="ignore", divide="ignore"):
        # the share of the total weight: methods whose weights sum to K or float (UW) compare
        normalised = applied[:, 0] / applied.sum(axis=1)
    out["lambda_rul_median"] = float(np.median(normalised)) if post.any() else math.nan
    every = trace.applied_weights  # every step, warmup included: a bound must hold there too
    finite = every[np.all(np.isfinite(every), axis=1)]
    out["weight_min"] = float(finite.min()) if finite.size else math.nan
    out["weight_max"] = float(finite.max()) if finite.size else math.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        share = finite[:, 0] / finite.sum(axis=1)
    out["lambda_rul_min"] = float(np.min(share)) if share.size else math.nan
    out["lambda_rul_max"] = float(np.max(share)) if share.size else math.nan
    out["negative_weight_steps"] = int(np.sum(np.any(every < 0, axis=1)))
    out["lambda_std"] = float(np.std(lam[:, 0])) if post.any() else math.nan
    settle = settling_steps(float(trace.controller["beta"]), SETTLED_FRACTION)
    settled = lam[settle:, 0]  # λ* after the EMA has forgotten its 1/K start
    out["lambda_std_settled"] = float(np.std(settled)) if settled.size else math.nan
    finite_raw = raw[np.isfinite(raw[:, 0]), 0] if post.any() else raw[:0, 0]
    out["raw_std"] = float(np.std(finite_raw)) if finite_raw.size else math.nan
    return out


def _max_full_window_median(x: np.ndarray, window: int) -> float:
    """Largest median over ``window`` consecutive steps (full windows only; NaN-aware).

    Partial windows at the start would make every long window's maximum the
    short-window one, hiding how the "peak ratio" shrinks with smoothing.
    """
    if x.size < window:
        return math.nan
    view = np.lib.stride_tricks.sliding_window_view(x, window)
    ok = np.isfinite(view).any(axis=-1)
    return float(np.nanmax(np.nanmedian(view[ok], axis=-1))) if ok.any() else math.nan


def _run_row(metrics: dict, directory: Path) -> dict:
    row = {k: metrics.get(k) for k in ("subset", "method", "seed", "status")}
    row["hash"] = directory.name.split("-")[-1]
    for name in METRICS:
        row[name] = metrics.get(name)
    row["wall_time_s"] = metrics.get("wall_time_s")
    row["num_steps"] = metrics.get("num_steps")
    row["error"] = metrics.get("error") or (metrics.get("divergence") or {}).get("reason")
    trace_path = directory / "trace.npz"
    stats = {name: None for name in TRACE_FIELDS}
    if trace_path.is_file() and metrics.get("status") == "ok":
        from gaba_control.trace import load_trace

        stats.update(trace_statistics(load_trace(trace_path)))
    row.update(stats)
    return row


# --------------------------------------------------------------------------- driver
def compare(
    subsets=("FD001", "FD002"),
    methods=("gaba", "equal"),
    seeds=(0, 1, 2),
    *,
    out: Path = Path("results/compare"),
    cache: Path | None = None,
    jobs: int = 1,
    backend: str = "loky",
    quick: bool = False,
    epochs: int | None = None,
    schedule_ratio: float | None = None,
    threads: int | None = None,
    progress: bool = True,
    figures: bool = True,
    options: dict | None = None,
    cached_only: bool = False,
    **train_kwargs,
) -> ComparisonResponse:
    """Run (or reuse) every job, then write the tables and figures to ``out``.

    ``train_kwargs`` are :class:`~gaba_control.cmapss.train.TrainConfig`
    fields shared by every job (e.g. ``lr``, ``data_dir``, ``max_batches``);
    unknown names raise ``TypeError``. ``options``: method options, either
    per method (``{"fixed": {"weights": [1, 3]}}``) or flat (``{"weights":
    [1, 3]}``, given to every compared method that takes it);
    ``weights`` and ``schedule_ratio`` are shortcuts for the flat form. ``threads``: torch
    threads per job (default 1 when ``jobs > 1``, else torch's default); it
    does not enter the cache key. ``cached_only``: train nothing, tabulate the
    planned runs already in the cache (a batch still running, or cut short).
    """
    from gaba_control.weighting import check_options_belong, method_names

    unknown = [m for m in methods if m not in method_names()]
    if unknown:
        raise ValueError(f"methods must be among {method_names()}, got {unknown}")
    if len(set(seeds)) != len(seeds) or not seeds:
        raise ValueError(f"seeds must be distinct and at least one, got {list(seeds)}")
    if any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0 for s in seeds):
        raise ValueError(f"seeds must be ints >= 0, got {list(seeds)}")
    methods = ("gaba", *[m for m in methods if m != "gaba"])
    options = _method_options(methods, options or {}, weights=train_kwargs.pop("weights", None),
                              schedule_ratio=schedule_ratio)
    for method, given in options.items():
        check_options_belong(method, given)
    from gaba_control.cmapss.data import default_data_dir

    # A missing data directory is a setting to fix, not a run to record as crashed.
    train_kwargs["data_dir"] = str(default_data_dir(train_kwargs.get("data_dir")))
    out = Path(out)
    if out.exists() and not out.is_dir():  # found now, not after hours of training
        raise ValueError(f"--out {out} exists and is not a directory")
    cache = Path(cache) if cache is not None else DEFAULT_CACHE
    jobs = check_jobs(jobs)
    if threads is None and jobs > 1:
        threads = 1
    base = _base_config(quick=quick, epochs=epochs, threads=threads, **train_kwargs)
    all_jobs = run_planned(subsets, methods, seeds, cache=cache, base=base, options=options,
                           n_jobs=jobs, backend=backend, progress=progress,
                           cached_only=cached_only)
    rows = [_run_row(json.loads((Path(j.directory) / "metrics.json").read_text()),
                     Path(j.directory)) for j in all_jobs]
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "runs.csv", _csv(rows))
    response = _response(rows, trace_paths={(j.subset, j.method, j.seed):
                                            str(Path(j.directory) / "trace.npz")
                                           for j in all_jobs})
    response.write(out, figures=figures)
    return response


def run_planned(subsets, methods, seeds, *, cache: Path, base: dict, options: dict,
                n_jobs: int = 1, backend: str = "loky", progress: bool = True,
                cached_only: bool = False) -> list[Job]:
    """Plan and run ``methods`` in waves: a method runs after the method it references.

    Returns every job, in plan order (the reference methods' jobs first);
    with ``cached_only`` nothing runs and only the jobs already finished in
    the cache are returned.
    """
    from gaba_control.weighting import get_method

    done: dict = {}
    remaining, ordered = list(methods), []
    while remaining:
        wave = [m for m in remaining
                if get_method(m).reference is None or get_method(m).reference in
                {j.method for j in done.values()}]
        if not wave:
            raise ValueError(f"methods {remaining} reference methods not in the comparison")
        jobs = plan_jobs(subsets, wave, seeds, cache=cache, base=base, options=options,
                         references=done)
        if cached_only:
            jobs = [j for j in jobs if (Path(j.directory) / "metrics.json").is_file()]
        else:
            for job in jobs:
                check_job(job)
            run_jobs(jobs, n_jobs=n_jobs, backend=backend, progress=progress)
        done.update({(j.subset, j.method, j.seed): j for j in jobs})
        ordered += jobs
        remaining = [m for m in remaining if m not in wave]
    return ordered


def _method_options(methods, options: dict, **shortcuts) -> dict:
    """Per-method options: ``options`` (method → dict or flat option → value) and shortcuts."""
    from gaba_control.weighting import option_owners

    owners = option_owners()
    flat = {k: v for k, v in options.items() if k not in methods and v is not None}
    flat.update({k: v for k, v in shortcuts.items() if v is not None})
    out = {m: dict(options.get(m) or {}) for m in methods if isinstance(options.get(m), dict)}
    for name, value in flat.items():
        if name not in owners:
            raise TypeError(f"unknown method option {name!r}")
        takers = [m for m in methods if m in owners[name][1]]
        if not takers:
            raise ValueError(f"{owners[name][0].flag} applies to --methods "
                             f"{' | '.join(owners[name][1])}, none of which is compared")
        for m in takers:
            out.setdefault(m, {})[name] = list(value) if isinstance(value, tuple) else value
    return out


def _csv(rows: list[dict]) -> str:
    if not rows:  # e.g. the paired table of a comparison of GABA alone
        return ""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    return buffer.getvalue()


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, (float, np.floating)):
        return repr(float(value)) if math.isfinite(value) else ""
    if isinstance(value, np.integer):
        return int(value)
    return value


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["seed"] = int(row["seed"])
        for name in (*METRICS, *TRACE_FIELDS, "wall_time_s", "num_steps"):
            if name in row:
                row[name] = float(row[name]) if row[name] not in ("", None) else None
    return rows


# ------------------------------------------------------------------------- response
def _fmt(value, digits=3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{value:.{digits}g}"


@dataclass(frozen=True)
class ComparisonResponse:
    """Per-run rows of a comparison and everything computed from them."""

    rows: list
    subsets: tuple
    methods: tuple
    seeds: tuple
    trace_paths: dict = field(default_factory=dict)

    def values(self, subset: str, method: str, metric: str) -> dict:
        """``seed → value`` for finished (status ok) runs."""
        return {r["seed"]: r[metric] for r in self.rows
                if r["subset"] == subset and r["method"] == method and r["status"] == "ok"
                and r.get(metric) is not None}

    def counts(self, subset: str, method: str) -> tuple[int, int]:
        """(runs with status ok, all runs) for one cell."""
        cell = [r for r in self.rows if r["subset"] == subset and r["method"] == method]
        return sum(r["status"] == "ok" for r in cell), len(cell)

    def summary(self) -> list[dict]:
        """Mean ± std (ddof 1) per subset, method and metric."""
        out = []
        for subset in self.subsets:
            for method in self.methods:
                ok, total = self.counts(subset, method)
                row = {"subset": subset, "method": method, "n_ok": ok, "n": total,
                       "n_diverged": sum(r["status"] == "diverged" for r in self._cell(subset,
                                                                                         method)),
                       "n_crashed": sum(r["status"] == "crashed" for r in self._cell(subset,
                                                                                       method)),
                       "n_negative": sum((r.get("negative_weight_steps") or 0) > 0
                                         for r in self._cell(subset, method))}
                for metric in (*METRICS, *TRACE_FIELDS):
                    v = np.array(list(self.values(subset, method, metric).values()), float)
                    row[f"{metric}_mean"] = float(v.mean()) if v.size else math.nan
                    row[f"{metric}_std"] = float(v.std(ddof=1)) if v.size > 1 else math.nan
                out.append(row)
        return out

    def _cell(self, subset, method):
        return [r for r in self.rows if r["subset"] == subset and r["method"] == method]

    def paired(self) -> list[dict]:
        """Paired differences ``method − gaba`` per subset and metric, over common seeds."""
        out = []
        for subset in self.subsets:
            for method in self.methods:
                if method == "gaba":
                    continue
                for metric in METRICS:
                    a, b = self.values(subset, method, metric), self.values(subset, "gaba", metric)
                    common = sorted(set(a) & set(b))
                    x, y = [a[s] for s in common], [b[s] for s in common]
                    stats = paired_statistics(x, y)
                    margin = EQUIVALENCE_MARGINS.get(metric)
                    tost = (equivalence_test(x, y, margin) if margin else
                            {"p": math.nan, "margin": math.nan})
                    out.append({"subset": subset, "method": method, "metric": metric,
                                "seeds": " ".join(map(str, common)), **stats,
                                "margin": tost["margin"], "tost_p": tost["p"]})
        # Holm over the family of one subset and metric: every method against GABA
        for subset in self.subsets:
            for metric in METRICS:
                family = [row for row in out if row["subset"] == subset
                          and row["metric"] == metric]
                for key in ("t_p", "tost_p"):
                    adjusted = holm([r[key] for r in family])
                    for row, value in zip(family, adjusted, strict=True):
                        row["holm_p" if key == "t_p" else "tost_holm_p"] = float(value)
        return out

    # ---------------------------------------------------------------- tables
    def markdown(self, level: int = 2) -> str:
        """The results table, the paired differences and the trace statistics (Markdown).

        ``level``: the heading level of the table titles.
        """
        h = "#" * level
        lines = [f"{h} Metrics: mean ± std over seeds (runs ok / runs)", ""]
        head = ["subset", "method", "ok/n", *(METRICS[m][0] for m in METRICS)]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for row in self.summary():
            cells = [row["subset"], row["method"], f"{row['n_ok']}/{row['n']}"]
            cells += [f"{_fmt(row[f'{m}_mean'], 4)} ± {_fmt(row[f'{m}_std'], 2)}" for m in METRICS]
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", f"{h} Paired differences vs gaba (method − gaba, per seed)", "",
                  "Mean difference over the common seeds with its two-sided 95 % t interval; "
                  "paired t-test p, Holm-adjusted over the methods of one subset and metric, "
                  "Wilcoxon signed-rank p; d_z = mean/std of the differences; the equivalence "
                  "test (TOST) at the margin stated before the runs "
                  f"({', '.join(f'{METRICS[m][0]} ±{v:g}' for m, v in EQUIVALENCE_MARGINS.items())}"
                  "), Holm-adjusted likewise (p < 0.05: shown to lie within the margin of gaba). "
                  + "; ".join(f"{label}: {'lower' if low else 'higher'} is better"
                              for label, low in METRICS.values()) + ".", "",
                  "| subset | method | metric | n | mean diff [95 % CI] | t-test p | Holm p "
                  "| Wilcoxon p | d_z | TOST Holm p |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for p in self.paired():
            lines.append(f"| {p['subset']} | {p['method']} | {METRICS[p['metric']][0]} | {p['n']} "
                         f"| {_fmt(p['mean'], 3)} [{_fmt(p['ci_low'], 3)}, "
                         f"{_fmt(p['ci_high'], 3)}] | {_fmt(p['t_p'], 2)} "
                         f"| {_fmt(p.get('holm_p'), 2)} "
                         f"| {_fmt(p['wilcoxon_p'], 2)} | {_fmt(p['d_z'], 2)} "
                         f"| {_fmt(p.get('tost_holm_p'), 2)} |")
        lines += ["", f"{h} Weights applied and divergences", "",
                  "Smallest and largest applied weight (raw, over every step and task, "
                  "warmup included; GradNorm and DWA sum to K, uncertainty weighting is not "
                  "normalised), the RUL task's share of the total weight w_RUL/Σw, runs "
                  "that diverged (non-finite loss or gradient norm) and runs with a negative "
                  "weight on some step.", "",
                  "| subset | method | diverged | negative | weight min | weight max "
                  "| w_RUL/Σw min | w_RUL/Σw max |", "|---|---|---|---|---|---|---|---|"]
        for row in self.summary():
            cells = [row["subset"], row["method"], f"{row['n_diverged']}/{row['n']}",
                     f"{row['n_negative']}/{row['n']}"]
            for name in ("weight_min", "weight_max", "lambda_rul_min", "lambda_rul_max"):
                values = np.array(list(self.values(row["subset"], row["method"],
                                                   name).values()), float)
                pick = np.min if name.endswith("min") else np.max
                cells.append(_fmt(float(pick(values)), 4) if values.size else "—")
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", "Loop quantities: ratio = g_RUL/g_health on the shared parameters; epoch "
                  "counted from 1; "
                  "second half = median over the second half of the steps; rolling maxima are "
                  "the largest median over that many consecutive steps (full windows); "
                  "floor = fraction of post-warmup steps on which some applied weight (as a "
                  "share of the total) is below λ_min: for GABA, the floor binds; share = median "
                  "post-warmup weighted share "
                  "λ_h g_h/Σλg of the health task (1/K = 0.5 is the aim); λ noise = std of λ*_RUL "
                  "after warmup (lambda_std: includes the transient from 1/K; "
                  "lambda_std_settled: after the EMA has settled to 1%) and of raw λ_RUL.", ""]
        ratio_fields = [f for f in TRACE_FIELDS if f.startswith("ratio")]
        groups = {"the gradient-norm ratio g_RUL/g_health": ratio_fields,
                  "floor, achieved share and λ noise": [f for f in TRACE_FIELDS
                                                        if f not in ratio_fields]}
        for what, group in groups.items():
            head = ["subset", "method", *group]
            lines += [f"{h} Loop quantities per run, mean ± std over seeds: {what}", ""]
            lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            for row in self.summary():
                cells = [row["subset"], row["method"]]
                cells += [f"{_fmt(row[f'{m}_mean'], 3)} ± {_fmt(row[f'{m}_std'], 2)}"
                          for m in group]
                lines.append("| " + " | ".join(cells) + " |")
            lines.append("")
        failed = [r for r in self.rows if r["status"] != "ok"]
        if failed:
            lines += ["", f"{h} Runs that did not finish", ""]
            lines += [f"- {r['subset']} {r['method']} seed {r['seed']}: {r['status']} "
                      f"({r.get('error') or ''})" for r in failed]
        return "\n".join(lines) + "\n"

    def write(self, out: Path, *, figures: bool = True) -> list[Path]:
        """``summary.md``, ``summary.csv``, ``paired.csv`` and the figures into ``out``."""
        out = Path(out)
        atomic_write_text(out / "summary.md", self.markdown())
        atomic_write_text(out / "summary.csv", _csv(self.summary()))
        atomic_write_text(out / "paired.csv", _csv(self.paired()))
        written = [out / "summary.md", out / "summary.csv", out / "paired.csv"]
        if figures:
            written += self.save_figures(out)
        return written

    # ---------------------------------------------------------------- figures
    def save_figures(self, outdir: Path) -> list[Path]:
        """Paired dot plots per metric; λ and ratio trajectories when the traces are at hand."""
        paths = []
        for metric in METRICS:
            paths += save_figure(self.plot_paired(metric), outdir, f"compare_paired_{metric}")
        if self._traces_available():
            paths += save_figure(self.plot_lambda(), outdir, "compare_lambda")
            if "equal" in self.methods:
                paths += save_figure(self.plot_ratio(), outdir, "compare_ratio")
        return paths

    def plot(self, fig=None):
        """The test-RMSE paired dot plot (see :meth:`plot_paired`)."""
        return self.plot_paired("test_rmse", fig=fig)

    def plot_paired(self, metric: str, fig=None):
        """Per-seed differences ``method − gaba`` (grey), their mean and 95 % t interval
        (blue where the Holm-adjusted p < 0.05), the equivalence margin shaded; a panel per
        subset. Differences, not levels: a seed's runs are paired, the methods are not."""
        if fig is None:
            fig, axes = new_figure(1, len(self.subsets), width=4.8 * len(self.subsets),
                                   height=1.2 + 0.42 * len(self.methods), squeeze=False)
            axes = axes[0]
        else:
            axes = fig.subplots(1, len(self.subsets), squeeze=False)[0]
        label, lower_better = METRICS[metric]
        paired = {(p["subset"], p["method"]): p for p in self.paired() if p["metric"] == metric}
        others = [m for m in self.methods if m != "gaba"]
        margin = EQUIVALENCE_MARGINS.get(metric)
        for ax, subset in zip(axes, self.subsets, strict=True):
            gaba = self.values(subset, "gaba", metric)
            for i, method in enumerate(others):
                values = self.values(subset, method, metric)
                d = np.array([values[k] - gaba[k] for k in sorted(set(values) & set(gaba))])
                ax.plot(d, np.full(d.size, i), "o", color="0.6", ms=3, zorder=1)
                ok, total = self.counts(subset, method)
                if ok < total:
                    ax.annotate(f"{total - ok} failed", (1.0, i), xycoords=("axes fraction",
                                "data"), ha="right", va="center", fontsize=6.5, color="C3")
                p = paired.get((subset, method))
                if p and p["n"] > 1 and np.isfinite(p["ci_low"]):
                    ax.errorbar(p["mean"], i, xerr=[[p["mean"] - p["ci_low"]],
                                                    [p["ci_high"] - p["mean"]]],
                                fmt="D", color="C0" if p.get("holm_p", 1) < 0.05 else "k",
                                capsize=3, zorder=2)
            if margin is not None:
                ax.axvspan(-margin, margin, color="C2", alpha=0.1, lw=0,
                           label=f"equivalence margin ±{margin:g}")
                ax.legend(fontsize=6.5, loc="lower right")
            ax.axvline(0, color="0.4", lw=0.8)
            ax.set_yticks(range(len(others)), others)
            ax.set_ylim(len(others) - 0.5, -0.5)
            better = "← method better" if lower_better else "method better →"
            ax.set_xlabel(f"{label}: method − GABA   ({better})")
            n = max((p["n"] for p in paired.values() if p["subset"] == subset), default=0)
            ax.set_title(f"{subset}, {n} seeds: per seed (grey), mean and 95 % CI\n"
                         "(blue: Holm-adjusted p < 0.05)", fontsize=8)
        return fig

    def _traces_available(self) -> bool:
        return any(Path(p).is_file() for p in self.trace_paths.values())

    def _trace(self, subset, method, seed=None):
        from gaba_control.trace import load_trace

        seeds = [seed] if seed is not None else list(self.seeds)
        for s in seeds:
            path = self.trace_paths.get((subset, method, s))
            if path and Path(path).is_file():
                return load_trace(path)
        return None

    def _subset_panels(self, fig=None):
        """A figure (new, or ``fig``) with one panel per subset in a row; ``(fig, axes)``."""
        n = len(self.subsets)
        if fig is None:
            return new_figure(1, n, width=3.4 * n + 0.6, height=3.4, squeeze=False)
        return fig, fig.subplots(1, n, squeeze=False)

    def plot_lambda(self, fig=None):
        """Applied λ_RUL over training per method (first seed with a trace), a column per
        subset; below, each method's λ_RUL minus GABA's on the same seed, where methods that
        coincide on the top panel (the replay and schedule follow GABA closely) separate."""
        n = len(self.subsets)
        if fig is None:
            fig, axes = new_figure(2, n, width=3.6 * n + 0.6, height=5.4, squeeze=False,
                                   sharex="col", gridspec_kw={"height_ratios": (1.3, 1)})
        else:
            axes = fig.subplots(2, n, squeeze=False, sharex="col")
        styles = ("-", "--", "-.", ":")
        for col, subset in enumerate(self.subsets):
            top, bottom = axes[0][col], axes[1][col]
            reference = self._trace(subset, "gaba")
            for i, method in enumerate(self.methods):
                trace = self._trace(subset, method, None if reference is None
                                    else reference.seed)
                trace = trace if trace is not None else self._trace(subset, method)
                if trace is None:
                    continue
                style = dict(color=f"C{i}", ls=styles[i % len(styles)], lw=1.1)
                top.plot(trace.step, trace.applied_weights[:, 0],
                         label=f"{method} (seed {trace.seed})", **style)
                if (reference is not None and method != "gaba" and trace.seed == reference.seed
                        and len(trace) == len(reference)):
                    bottom.plot(trace.step, trace.applied_weights[:, 0]
                                - reference.applied_weights[:, 0], label=method, **style)
            top.set_yscale("log")
            top.set_title(f"{subset}: applied RUL weight λ_RUL", fontsize=9)
            bottom.axhline(0, color="k", lw=0.6)
            bottom.set_yscale("symlog", linthresh=1e-4)
            bottom.set_xlabel("training step (from 1)")
        axes[0][0].set_ylabel("λ_RUL (log)")
        axes[1][0].set_ylabel("λ_RUL − GABA's (symlog)")
        axes[0][0].legend(fontsize=6.5)
        return fig

    def lambda_gap(self, subset: str, method: str) -> float | None:
        """Largest ``|λ_RUL − GABA's|`` after the warmup on the plotted seed (None if absent)."""
        reference = self._trace(subset, "gaba")
        trace = None if reference is None else self._trace(subset, method, reference.seed)
        if trace is None or len(trace) != len(reference):
            return None
        active = np.asarray(reference.active, dtype=bool)
        gap = trace.applied_weights[active, 0] - reference.applied_weights[active, 0]
        return float(np.max(np.abs(gap))) if gap.size else None

    def plot_ratio(self, fig=None, window: int = 50):
        """g_RUL/g_health over training under equal and gaba (per step and rolling median)."""
        fig, axes = self._subset_panels(fig)
        for ax, subset in zip(axes[0], self.subsets, strict=True):
            for i, method in enumerate(("equal", "gaba")):
                trace = self._trace(subset, method)
                if trace is None:
                    continue
                g = trace.grad_norms
                with np.errstate(divide="ignore", invalid="ignore"):
                    ratio = np.where(g[:, 1] > 0, g[:, 0] / g[:, 1], np.nan)
                ax.plot(trace.step, ratio, color=f"C{i}", lw=0.4, alpha=0.3)
                ax.plot(trace.step, rolling_median(ratio, window), color=f"C{i}",
                        label=f"{method} (seed {trace.seed}), {window}-step median")
            ax.set_yscale("log")
            ax.set_xlabel("training step (from 1)")
            ax.set_title(f"{subset}: g_RUL / g_health")
        axes[0][0].set_ylabel("gradient-norm ratio (log)")
        axes[0][0].legend(fontsize=7)
        return fig

    # ---------------------------------------------------------------- claims
    def claims(self) -> list[Claim]:
        """Per subset: gaba vs equal, and the closed loop vs each open-loop reference, on test RMSE.

        A claim holds when the paired t-test gives p < :data:`ALPHA` with gaba
        better; it is refuted (not shown) otherwise; not testable with fewer
        than :data:`MIN_SEEDS` paired seeds.
        """
        claims = []
        wording = {
            "equal": "GABA beats equal weights",
            "fixed": "GABA beats its own saturated output held fixed",
            "schedule": "the closed loop beats its own open-loop schedule (same pipeline, "
                        "constant sensor)",
            "replay": "the closed loop beats its own λ* trajectory replayed on another seed",
        }
        paired = {(p["subset"], p["method"], p["metric"]): p for p in self.paired()}
        for subset in self.subsets:
            own = {}
            for method in self.methods:
                if method == "gaba":
                    continue
                p = paired[(subset, method, "test_rmse")]
                own[method] = self._claim(subset, method, wording.get(method, f"GABA beats "
                                                                                f"{method}"), p)
            claims += own.values()
            claims.append(self._attribution(subset, own))
        return claims

    def _attribution(self, subset, own: dict) -> Claim:
        """GABA's effect comes from the feedback: it beats equal AND its open-loop references."""
        needed = ["equal", *[m for m in OPEN_LOOP if m in self.methods]]
        text = f"{subset}: GABA's effect comes from the feedback (it beats equal weights and " \
               f"its own open-loop schedule/replay on test RMSE)"
        missing = [m for m in needed if m not in own]
        if missing or len(needed) < 2:
            reason = f"methods missing from the comparison: {', '.join(missing or OPEN_LOOP)}"
            verdict, evidence = "not testable", reason
        elif any(own[m].verdict == "not testable" for m in needed):
            verdict, evidence = "not testable", own[needed[0]].evidence
        elif own["equal"].verdict != "holds":
            verdict, evidence = "refuted", "no significant GABA effect over equal weights to " \
                                           "attribute"
        elif all(own[m].verdict == "holds" for m in needed[1:]):
            verdict, evidence = "holds", ""
        else:
            verdict, evidence = "refuted", "an open-loop reference reproduces the effect: it " \
                                           "comes from the schedule"
        real = "; ".join(f"vs {m}: {own[m].verdict}" for m in needed if m in own)
        return Claim(claim=text, source="issue 6 (feedback or schedule?)", theory="—",
                     simulation="—", real_run=real or "—",
                     tolerance=f"each paired claim p < {ALPHA}", verdict=verdict,
                     evidence=evidence)

    def _claim(self, subset, method, text, p) -> Claim:
        holm_p = p.get("holm_p", p["t_p"])
        real = (f"test RMSE {method} − gaba = {_fmt(p['mean'], 3)} [95 % CI "
                f"{_fmt(p['ci_low'], 3)}, {_fmt(p['ci_high'], 3)}] cycles over {p['n']} seeds "
                f"(std {_fmt(p['std'], 2)}); t-test p = {_fmt(p['t_p'], 2)}, Holm p = "
                f"{_fmt(holm_p, 2)}, Wilcoxon p = {_fmt(p['wilcoxon_p'], 2)}, d_z = "
                f"{_fmt(p['d_z'], 2)}")
        tolerance = (f"Holm-adjusted p < {ALPHA} (paired t-test over the methods of the subset), "
                     f"sign: gaba lower; ≥ {MIN_SEEDS} seeds")
        tost = p.get("tost_holm_p", math.nan)
        equivalent = (f"; {method} is shown equivalent to gaba within ±{p['margin']:g} cycles "
                      f"(TOST Holm p = {_fmt(tost, 2)})" if tost < ALPHA else "")
        if p["n"] < MIN_SEEDS:
            verdict, evidence = "not testable", f"only {p['n']} paired seeds (< {MIN_SEEDS})"
        elif holm_p < ALPHA and p["mean"] > 0:
            verdict, evidence = "holds", ""
        elif holm_p < ALPHA:
            verdict, evidence = "refuted", f"{method} is significantly better than gaba"
        else:
            verdict, evidence = "refuted", (f"not shown: Holm p = {_fmt(holm_p, 2)} ≥ {ALPHA}"
                                            + equivalent)
        return Claim(claim=f"{subset}: {text}", source="issue 6 (feedback or schedule?)",
                     theory="—", simulation="—", real_run=real, tolerance=tolerance,
                     verdict=verdict, evidence=evidence)


def _response(rows: list[dict], trace_paths: dict | None = None) -> ComparisonResponse:
    def ordered(key):
        return tuple(dict.fromkeys(r[key] for r in rows))

    methods = ordered("method")
    methods = ("gaba", *[m for m in methods if m != "gaba"]) if "gaba" in methods else methods
    return ComparisonResponse(rows=rows, subsets=ordered("subset"), methods=methods,
                              seeds=tuple(sorted(set(r["seed"] for r in rows))),
                              trace_paths=trace_paths or {})


def _find_trace(row: dict, cache: Path) -> Path | None:
    """The run's trace: in the cache (by hash), else committed in :data:`TRACES` if it matches."""
    directory = cache / row["subset"] / row["method"] / f"seed{row['seed']}-{row.get('hash')}"
    if (directory / "trace.npz").is_file():
        return directory / "trace.npz"
    committed = TRACES / f"{row['subset']}-{row['method']}-seed{row['seed']}.npz"
    if not committed.is_file():
        return None
    from gaba_control.trace import load_trace

    trace = load_trace(committed)  # the same run: same subset, method, seed and length
    same = (trace.subset, trace.method, trace.seed) == (row["subset"], row["method"], row["seed"])
    return committed if same and len(trace) == (row.get("num_steps") or -1) else None


def comparison_response(results_dir: Path, *, cache: Path = DEFAULT_CACHE) -> ComparisonResponse:
    """Rebuild a comparison from ``results_dir/runs.csv`` (read-only: it never trains).

    Traces for the trajectory figures are looked up in ``cache`` (by subset,
    method, seed and hash), then among the committed traces in :data:`TRACES`
    (``<subset>-<method>-seed<seed>.npz``); without any, only the paired plots
    are drawn.
    """
    results_dir = Path(results_dir)
    path = results_dir / "runs.csv"
    if not path.is_file():
        raise FileNotFoundError(f"no comparison results: {path} does not exist")
    rows = _read_csv(path)
    trace_paths = {}
    for r in rows:
        found = _find_trace(r, Path(cache))
        if found is not None:
            trace_paths[(r["subset"], r["method"], r["seed"])] = str(found)
    return _response(rows, trace_paths)


# --------------------------------------------------------------------- report hook
def run(outdir: Path, *, seed: int, trace, quick: bool) -> Study:
    """The report's section "Feedback or schedule?" from the committed comparison results.

    Reads the first of :data:`COMMITTED` that has a ``runs.csv``; never trains.
    ``seed`` and ``trace`` are not used (the runs carry their own).
    """
    found = next((d for d in COMMITTED if (d / "runs.csv").is_file()), None)
    return comparison_study(found, outdir, quick=quick)


def comparison_study(results_dir: Path | None, outdir: Path, *, quick: bool = False) -> Study:
    """The :class:`Study` of one comparison results directory (``None``: nothing committed)."""
    title = "Feedback or schedule? GABA against open-loop weightings on C-MAPSS"
    if results_dir is None or not (Path(results_dir) / "runs.csv").is_file():
        reason = f"no committed comparison results ({results_dir or 'none found'})"
        return Study(name="compare", title=title, summary="Skipped: " + reason + ".",
                     claims=[Claim(claim="GABA's effect comes from the feedback, not its "
                                   "schedule", source="issue 6", theory="—", simulation="—",
                                   real_run=reason, tolerance="—", verdict="not testable",
                                   evidence=reason)])
    response = comparison_response(results_dir)
    figures = []
    for metric in ("test_rmse",) if quick else tuple(METRICS):
        figures += save_figure(response.plot_paired(metric), outdir, f"compare_paired_{metric}")
    if not quick and response._traces_available():
        figures += save_figure(response.plot_lambda(), outdir, "compare_lambda")
        if "equal" in response.methods:
            figures += save_figure(response.plot_ratio(), outdir, "compare_ratio")
    n_runs = len(response.rows)
    seeds = f"{len(response.seeds)} seeds"
    captions = {f"compare_paired_{metric}": (
        f"{METRICS[metric][0]}: each method minus GABA on the same seed (grey points; "
        f"{seeds}, {n_runs} runs in all), their mean with its 95 % t interval (blue where the "
        f"Holm-adjusted paired t-test gives p < 0.05 over the {len(response.methods) - 1} "
        f"comparisons of a subset), and the equivalence margin of the TOST (green)."
        + (" " + ("Lower" if METRICS[metric][1] else "Higher") + " is better.")
    ) for metric in METRICS}
    captions["compare_lambda"] = (
        "The RUL weight each method applied over training (first seed with a committed trace; "
        "GABA's line lies under the replay's), and below its difference from GABA's on the "
        "same seed (symmetric log scale, linear within ±10⁻⁴). The replay on seed s applies "
        "the λ* of GABA's run on the next seed and the schedule is GABA's pipeline fed a "
        "constant ratio, so their difference is how much one run's λ* differs from another's"
        + _lambda_gaps(response) + ".")
    captions["compare_ratio"] = (
        "The gradient-norm ratio g_RUL/g_health the sensor read under equal weights and under "
        "GABA (per step, faint, and a 50-step rolling median).")
    findings = [Finding(text, figure="compare_paired_test_rmse")
                for text in _open_loop_findings(response)]
    return Study(name="compare", title=title,
                 summary=_summary_text(response, results_dir)
                 + " " + ", ".join("{fig:" + Path(f).stem + "}" for f in figures
                                   if str(f).endswith(".png")) + ".",
                 figures=figures, claims=response.claims(), captions=captions, findings=findings,
                 tables=[response.markdown(level=3)])


def _lambda_gaps(response) -> str:
    """``; largest |difference| after the warmup: replay FD001 1.2e-03, …`` (or nothing)."""
    parts = [f"{method} {subset} {gap:.1e}" for subset in response.subsets
             for method in ("replay", "schedule")
             if method in response.methods
             and (gap := response.lambda_gap(subset, method)) is not None]
    return "; largest |difference| after the warmup: " + ", ".join(parts) if parts else ""


def _open_loop_findings(response: ComparisonResponse) -> list[str]:
    """Per subset: do open-loop replays of GABA's weights do as well (TOST)?"""
    out = []
    paired = response.paired()  # every test once; each subset picks its rows
    for subset in response.subsets:
        rows = [p for p in paired
                if p["subset"] == subset and p["metric"] == "test_rmse"
                and p["method"] in ("schedule", "replay") and np.isfinite(p.get("tost_holm_p",
                                                                                 np.nan))]
        if not rows:
            continue
        shown = [p for p in rows if p["tost_holm_p"] < ALPHA]
        cells = "; ".join(f"{p['method']} − GABA {p['mean']:+.2f} [{p['ci_low']:+.2f}, "
                          f"{p['ci_high']:+.2f}] (TOST Holm p = {p['tost_holm_p']:.2g})"
                          for p in rows)
        verdict = ("do as well as the closed loop" if len(shown) == len(rows)
                   else "are not all shown equivalent to the closed loop")
        out.append(f"On {subset} open-loop weights ({', '.join(p['method'] for p in rows)} of "
                   f"GABA's) {verdict}: test RMSE {cells} cycles over {rows[0]['n']} paired "
                   f"seeds, equivalence margin ±{rows[0]['margin']:g} cycle.")
    return out


def _summary_text(response: ComparisonResponse, found: Path) -> str:
    shown = Path(os.path.relpath(found)) if Path(found).is_absolute() else found
    parts = [f"From the committed comparison `{shown}` ({len(response.rows)} runs; methods "
             f"{', '.join(response.methods)}; seeds {', '.join(map(str, response.seeds))})."]
    summary = {(r["subset"], r["method"]): r for r in response.summary()}
    for subset in response.subsets:
        cells = [f"{m} {_fmt(summary[(subset, m)]['test_rmse_mean'], 4)} ± "
                 f"{_fmt(summary[(subset, m)]['test_rmse_std'], 2)}" for m in response.methods]
        parts.append(f"{subset} test RMSE (cycles): " + "; ".join(cells) + ".")
    verdicts = [c for c in response.claims()]
    held = [c.claim for c in verdicts if c.verdict == "holds"]
    parts.append(f"{len(held)} of {len(verdicts)} paired claims hold at p < {ALPHA}"
                 + (f" ({'; '.join(held)})." if held else "."))
    return " ".join(parts)


# ------------------------------------------------------------------------------ CLI
def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """``--cache``, ``--jobs``, ``--threads``, ``--backend``: how a command's jobs run."""
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE,
                        help="run directories, shared between commands (default %(default)s)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="parallel jobs; each uses one torch thread when > 1 (default 1)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads per job (default 1 with --jobs > 1)")
    parser.add_argument("--backend", default="loky",
                        choices=("loky", "multiprocessing", "threading", "dask", "ray"),
                        help="joblib backend (default loky: local processes); dask uses "
                        "$DASK_SCHEDULER_ADDRESS or a local cluster, ray uses $RAY_ADDRESS")


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The ``compare`` command's options."""
    from gaba_control.cmapss.data import SUBSETS
    from gaba_control.cmapss.train import add_method_arguments
    from gaba_control.weighting import method_names

    parser.add_argument("--subsets", nargs="+", type=str.upper, choices=SUBSETS,
                        default=["FD001", "FD002"], help="default: FD001 FD002")
    parser.add_argument("--methods", nargs="+", choices=method_names(), default=["gaba", "equal"],
                        help="weighting methods (gaba is always included; default gaba equal)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2],
                        help="training seeds (default 0 1 2)")
    parser.add_argument("--out", type=Path, default=Path("results/compare"),
                        help="tables and figures (default results/compare)")
    add_engine_arguments(parser)
    parser.add_argument("--quick", action="store_true",
                        help="smoke configuration (2 epochs of 30 batches, warmup 10)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per run")
    parser.add_argument("--lr", type=float, default=None, help="Adam learning rate")
    parser.add_argument("--max-batches", type=int, default=None, help="batches per epoch cap")
    parser.add_argument("--data-dir", default=None, help="C-MAPSS directory")
    from gaba_control.cmapss.train import AUX_TASKS

    parser.add_argument("--aux-task", choices=AUX_TASKS, default=None,
                        help="a third task for every run (next_cycle: next-cycle sensors)")
    add_method_arguments(parser, method=False)  # each given to the compared methods taking it
    parser.add_argument("--no-figures", action="store_true", help="tables only")
    parser.add_argument("--cached-only", action="store_true",
                        help="train nothing: tabulate the planned runs already in the cache")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def run_from_args(args: argparse.Namespace) -> int:
    """Run ``compare`` from parsed arguments; print the table; return the exit status."""
    from gaba_control.cmapss.train import method_options_from_args

    try:
        response = compare(
            args.subsets, args.methods, args.seeds, out=args.out, cache=args.cache,
            jobs=args.jobs, backend=args.backend, quick=args.quick, epochs=args.epochs,
            threads=args.threads, progress=not args.no_progress,
            figures=not args.no_figures, lr=args.lr, max_batches=args.max_batches,
            data_dir=args.data_dir, options=method_options_from_args(args),
            cached_only=args.cached_only, aux_task=args.aux_task,
        )
    except (ValueError, RuntimeError, FileNotFoundError) as error:
        print(f"gaba-control compare: {error}", file=sys.stderr)
        return 2
    print(response.markdown())
    return 0

