"""The ``gaba-control`` command: one subcommand per function, dispatched by :func:`main`.

>>> main(["--help"])  # doctest: +ELLIPSIS
usage: gaba-control ...
0
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["build_parser", "dispatch", "main"]


def _train(args: argparse.Namespace) -> int:
    from gaba_control.cmapss.train import run_from_args

    return run_from_args(args)


def _add_train(subparsers) -> None:
    from gaba_control.cmapss.train import add_train_arguments

    parser = subparsers.add_parser(
        "train",
        help="train the multi-task CNN on C-MAPSS (gaba, equal, fixed, schedule or replay weights)",
        description="Train the multi-task CNN on one C-MAPSS subset; writes checkpoint.pt, "
        "metrics.json and trace.npz to --out.",
    )
    add_train_arguments(parser)
    parser.set_defaults(handler=_train)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="gaba-control", description="GABA multi-task loss weighting as a control loop."
    )
    # Kept on the parser so that applications can add their own subcommands.
    parser.subcommands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_train(parser.subcommands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the chosen subcommand, return its status."""
    return dispatch(build_parser(), argv)


def dispatch(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` with ``parser`` and run the handler of the chosen subcommand."""
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help and usage errors: return the status instead of exiting
        return int(exit_.code or 0)
    if getattr(args, "handler", None) is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return args.handler(args)
    except (ValueError, TypeError, OSError) as error:  # everyday mistakes: a message, exit 2
        print(f"{parser.prog} {args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
