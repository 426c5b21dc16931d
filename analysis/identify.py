r"""The plant: how training answers the weights, identified from excitation runs.

``gaba-control identify --subsets FD001 FD002 --seeds 0 1 2 --jobs 2``

Every run applies an open-loop weighting ``λ_RUL(t) = λ₀ (1 + ρ p(t))`` (the
``prbs`` and ``multisine`` methods of :mod:`gaba_control.weighting`) through the
training path and cache of ``compare`` (:func:`analysis.compare.run_jobs`), so an
interrupted identification resumes with its unfinished runs. The exact sensor
measures both gradient norms at every step; GABA runs alongside, never applied.

The design (:func:`plan_design`):

* **main**: PRBS at each operating point ``λ₀`` × subset × seed;
* **multisine**: at the middle operating point, the held-out input the model
  orders are chosen on (a model fitted on PRBS runs must predict them);
* **amplitude**: PRBS at the middle operating point with ``ρ`` halved and
  doubled on the first subset, the linearity test;
* **closed_loop**: GABA itself with the floor :data:`SMALL_FLOOR` (it rarely
  binds) on every subset, and with the default floor on the first subset: the
  measured closed loops the plant model must predict.

Outputs in ``--out`` (default ``results/identify``) come from
:func:`identification_response`; see its docstring.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["DesignPoint", "add_arguments", "plan_design", "run_from_args"]

#: where the excitation runs go (shared with ``compare``; git-ignored)
DEFAULT_CACHE = Path("runs/compare")
#: 0.002: where GABA's unfloored state sits on C-MAPSS (its loop with a small floor);
#: 0.05: GABA's default floor; 0.2 and 0.5 towards equal weights
DEFAULT_OPERATING_POINTS = (0.002, 0.05, 0.2, 0.5)
#: the closed-loop validation runs: a floor that rarely binds (GABA's EMA stays above it)
SMALL_FLOOR = 0.001
DEFAULT_AMPLITUDE = 0.4
#: PRBS clock: the hold's −3 dB point 2.78/40 ≈ 0.07 rad/step, seven times the EMA's cut-off
DEFAULT_CLOCK = 40
#: multisine: harmonics 1..8 of 2π/512, 0.012 … 0.098 rad/step
DEFAULT_PERIOD = 512
DEFAULT_HARMONICS = 8


@dataclass(frozen=True)
class DesignPoint:
    """One excitation run of the design."""

    role: str  # "main", "multisine" or "amplitude"
    subset: str
    seed: int
    method: str
    options: dict
    train: dict = field(default_factory=dict)  # TrainConfig overrides (e.g. lambda_min)


def plan_design(subsets=("FD001", "FD002"), seeds=(0, 1, 2), *,
                operating_points=DEFAULT_OPERATING_POINTS, amplitude: float = DEFAULT_AMPLITUDE,
                clock: int = DEFAULT_CLOCK, period: int = DEFAULT_PERIOD,
                harmonics: int = DEFAULT_HARMONICS, amplitude_test: bool = True,
                multisine_runs: bool = True, closed_loop: bool = True) -> list[DesignPoint]:
    """The runs of an identification, first subset first, seed-major.

    The PRBS realisation is the training seed's (``excitation_seed = seed``).

    Examples
    --------
    >>> points = plan_design(["FD001"], [0])
    >>> [(p.role, p.method, p.options.get("operating_point"), p.options.get("amplitude"))
    ...  for p in points]  # doctest: +NORMALIZE_WHITESPACE
    [('main', 'prbs', 0.002, 0.4), ('main', 'prbs', 0.05, 0.4), ('main', 'prbs', 0.2, 0.4),
     ('main', 'prbs', 0.5, 0.4), ('multisine', 'multisine', 0.2, 0.4),
     ('amplitude', 'prbs', 0.2, 0.2), ('amplitude', 'prbs', 0.2, 0.8),
     ('closed_loop', 'gaba', None, None), ('closed_loop', 'gaba', None, None)]
    >>> points[-2].train, points[-1].train
    ({'lambda_min': 0.001}, {})
    """
    if not subsets or not seeds or not operating_points:
        raise ValueError("subsets, seeds and operating_points must each name at least one")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {list(seeds)}")
    middle = sorted(operating_points)[len(operating_points) // 2]
    points = []
    for s_index, subset in enumerate(subsets):
        for seed in seeds:
            prbs = {"clock": clock, "excitation_seed": int(seed)}
            for lam0 in operating_points:
                points.append(DesignPoint("main", subset, seed, "prbs",
                                          {"operating_point": lam0, "amplitude": amplitude,
                                           **prbs}))
            if multisine_runs:
                points.append(DesignPoint("multisine", subset, seed, "multisine",
                                          {"operating_point": middle, "amplitude": amplitude,
                                           "period": period, "harmonics": harmonics}))
            if amplitude_test and s_index == 0:
                for rho in (amplitude / 2, min(2 * amplitude, 0.95)):
                    points.append(DesignPoint("amplitude", subset, seed, "prbs",
                                              {"operating_point": middle, "amplitude": rho,
                                               **prbs}))
            if closed_loop:
                points.append(DesignPoint("closed_loop", subset, seed, "gaba", {},
                                          {"lambda_min": SMALL_FLOOR}))
                if s_index == 0:
                    points.append(DesignPoint("closed_loop", subset, seed, "gaba", {}))
    return points


def design_jobs(points, *, cache: Path, base: dict):
    """The cached ``compare`` jobs of ``points`` (validated before anything runs)."""
    from analysis.compare import make_job
    from gaba_control.weighting import get_method

    jobs = []
    for point in points:
        config = {**base, **point.train}
        unknown = sorted(set(point.train) - set(base))
        if unknown:
            raise TypeError(f"unknown training option(s) {unknown}")
        controller = {"num_tasks": 2,
                      **{k: config[k] for k in ("beta", "warmup", "lambda_min")}}
        get_method(point.method)(controller, **point.options)  # a bad setting fails here
        jobs.append(make_job(cache, point.subset, point.method, point.seed, config,
                             point.options))
    return jobs


def run_design(points, *, cache: Path = DEFAULT_CACHE, jobs: int = 1, backend: str = "loky",
               quick: bool = False, epochs: int | None = None, threads: int | None = None,
               progress: bool = True, **train_kwargs):
    """Train (or reuse) every run of ``points``; return ``[(point, job)]``."""
    from analysis.compare import _base_config, run_jobs
    from gaba_control.cmapss.data import default_data_dir

    train_kwargs["data_dir"] = str(default_data_dir(train_kwargs.get("data_dir")))
    if threads is None and jobs > 1:
        threads = 1
    base = _base_config(quick=quick, epochs=epochs, threads=threads, **train_kwargs)
    planned = design_jobs(points, cache=Path(cache), base=base)
    run_jobs(planned, n_jobs=jobs, backend=backend, progress=progress)
    return list(zip(points, planned, strict=True))


# ------------------------------------------------------------------------------ CLI
def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The ``identify`` command's options."""
    from gaba_control.cmapss.data import SUBSETS

    parser.add_argument("--subsets", nargs="+", type=str.upper, choices=SUBSETS,
                        default=["FD001", "FD002"], help="default: FD001 FD002")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2],
                        help="training seeds (default 0 1 2)")
    parser.add_argument("--operating-points", nargs="+", type=float,
                        default=list(DEFAULT_OPERATING_POINTS),
                        help="λ₀ of the RUL task (default 0.002 0.05 0.2 0.5)")
    parser.add_argument("--amplitude", type=float, default=DEFAULT_AMPLITUDE,
                        help="relative amplitude ρ (default %(default)s)")
    parser.add_argument("--clock", type=int, default=DEFAULT_CLOCK,
                        help="PRBS steps per value (default %(default)s)")
    parser.add_argument("--period", type=int, default=DEFAULT_PERIOD,
                        help="multisine period (default %(default)s)")
    parser.add_argument("--harmonics", type=int, default=DEFAULT_HARMONICS,
                        help="multisine harmonics (default %(default)s)")
    parser.add_argument("--no-amplitude-test", action="store_true")
    parser.add_argument("--no-multisine", action="store_true")
    parser.add_argument("--no-closed-loop", action="store_true",
                        help="no GABA validation runs")
    parser.add_argument("--out", type=Path, default=Path("results/identify"),
                        help="tables and figures (default results/identify)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE,
                        help="run directories, shared with compare (default %(default)s)")
    parser.add_argument("--jobs", type=int, default=1, help="parallel runs (default 1)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads per run (default 1 with --jobs > 1)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke configuration (2 epochs of 30 batches, warmup 10)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per run")
    parser.add_argument("--max-batches", type=int, default=None, help="batches per epoch cap")
    parser.add_argument("--data-dir", default=None, help="C-MAPSS directory")
    parser.add_argument("--train-only", action="store_true",
                        help="run the excitation runs, skip the analysis")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def run_from_args(args: argparse.Namespace) -> int:
    """Run ``identify`` from parsed arguments; print the summary; return the exit status."""
    try:
        points = plan_design(args.subsets, args.seeds, operating_points=args.operating_points,
                             amplitude=args.amplitude, clock=args.clock, period=args.period,
                             harmonics=args.harmonics,
                             amplitude_test=not args.no_amplitude_test,
                             multisine_runs=not args.no_multisine,
                             closed_loop=not args.no_closed_loop)
        runs = run_design(points, cache=args.cache, jobs=args.jobs, quick=args.quick,
                          epochs=args.epochs, threads=args.threads,
                          progress=not args.no_progress, max_batches=args.max_batches,
                          data_dir=args.data_dir)
        if args.train_only:
            return 0
        from analysis.identify_study import identification_response

        response = identification_response(runs)
        response.write(args.out)
    except (ValueError, RuntimeError, FileNotFoundError) as error:
        print(f"gaba-control identify: {error}", file=sys.stderr)
        return 2
    print(response.markdown())
    return 0
