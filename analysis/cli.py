"""The ``gaba-control`` console script: the library's commands plus the studies'.

The library's own parser (:func:`gaba_control.cli.build_parser`, with ``train``)
is extended here with ``report``, ``compare``, ``identify``, ``sweep`` and ``advise``, so
that imports keep going one way (``analysis`` → ``gaba_control``).

>>> main(["--help"])  # doctest: +ELLIPSIS
usage: gaba-control ...
0
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from gaba_control import cli as library_cli

__all__ = ["build_parser", "main"]


def _report(args: argparse.Namespace) -> int:
    from .report import run_from_args

    return run_from_args(args)


def _compare(args: argparse.Namespace) -> int:
    from .compare import run_from_args

    return run_from_args(args)


def _identify(args: argparse.Namespace) -> int:
    from .identify import run_from_args

    return run_from_args(args)


def _sweep(args: argparse.Namespace) -> int:
    from .sweep import run_from_args

    return run_from_args(args)


def _advise(args: argparse.Namespace) -> int:
    from .advise import run_from_args

    return run_from_args(args)


def build_parser() -> argparse.ArgumentParser:
    """``train`` from the library, ``report`` and ``compare`` from the studies."""
    from .report import add_arguments

    parser = library_cli.build_parser()
    subparsers = parser.subcommands
    report = subparsers.add_parser(
        "report",
        help="run every study and write figures/REPORT.md (the main job)",
        description="Run every study; write figures (PNG+SVG) and REPORT.md with the "
        "verification table.",
    )
    add_arguments(report)
    report.set_defaults(handler=_report)
    from .compare import add_arguments as add_compare_arguments

    compare = subparsers.add_parser(
        "compare",
        help="train methods x seeds x subsets (cached, parallel) and compare them paired",
        description="Run every (subset, method, seed) as a cached job; write runs.csv, "
        "summary tables (mean ± std, paired tests vs gaba) and figures to --out.",
    )
    add_compare_arguments(compare)
    compare.set_defaults(handler=_compare)
    from .identify import add_arguments as add_identify_arguments

    identify = subparsers.add_parser(
        "identify",
        help="identify the plant (how training answers the weights) from excitation runs",
        description="Train open-loop excitation runs (PRBS, multisine) through the compare "
        "cache; estimate the frequency response and low-order models of the plant.",
    )
    add_identify_arguments(identify)
    identify.set_defaults(handler=_identify)
    from .sweep import add_arguments as add_sweep_arguments

    sweep = subparsers.add_parser(
        "sweep",
        help="sweep GABA's settings (β, λ_min, W, refresh interval) × seeds on one subset",
        description="Train GABA at points of its settings through the compare cache; paired "
        "differences and equivalence tests against the centre; figures per parameter.",
    )
    add_sweep_arguments(sweep)
    sweep.set_defaults(handler=_sweep)
    from .advise import add_arguments as add_advise_arguments

    advise = subparsers.add_parser(
        "advise",
        help="predict loop settings (variant, β, floor, W, refresh) from a recorded run",
        description="Predict, for a grid of candidate settings, the floor-active fraction, "
        "the achieved weighted share, the weight noise, settling and cost from a trace "
        "(replay and the identified plant); recommend one; write advise.csv/.md and a figure.",
    )
    add_advise_arguments(advise)
    advise.set_defaults(handler=_advise)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the chosen subcommand, return its status."""
    return library_cli.dispatch(build_parser(), argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
