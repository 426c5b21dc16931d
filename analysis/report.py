"""Run every study and write ``figures/REPORT.md`` with the verification table.

Usage: ``gaba-control report [--outdir figures] [--trace TRACE.npz | --train] [--quick]``.

Each study module in :data:`STUDIES` exposes ``run(outdir, *, seed, trace, quick)``
returning an :class:`analysis._common.Study`. The report embeds their figures,
collects their claims into one table, and removes files a previous run wrote
that this run did not (tracked in ``outdir/.manifest``), so no stale figure
survives a rerun.
"""

from __future__ import annotations

import argparse
import importlib
import platform
import sys
import time
from pathlib import Path

import numpy as np

from ._common import Claim, Study, atomic_write_text

STUDIES = (
    "analysis.bode",
    "analysis.step_response",
    "analysis.noise",
    "analysis.bounds",
    "analysis.closed_loop",
    "analysis.field",
    "analysis.real_loop",
    "analysis.compare",
    "analysis.sweep",
    "analysis.identify",
    "analysis.seed_audit",
)

MANIFEST = ".manifest"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``report`` command's options (shared by ``gaba-control report`` and ``python -m``)."""
    parser.add_argument("--outdir", type=Path, default=Path("figures"),
                        help="where figures and REPORT.md go (default: figures)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every synthetic experiment")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--trace", type=Path, default=None,
                        help="a training trace (.npz from `gaba-control train`) for the "
                        "real-data rows")
    source.add_argument("--train", action="store_true",
                        help="train a default FD001 GABA run first and use its trace")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="C-MAPSS directory for --train "
                        "(default: $GABA_CMAPSS_DIR or ../shared/data/cmapss)")
    parser.add_argument("--quick", action="store_true",
                        help="small configurations (for tests); figures are still complete")
    parser.add_argument("--only", nargs="+", default=None, metavar="STUDY",
                        help="run only these studies (e.g. bode noise)")
    parser.add_argument("--no-progress", action="store_true", help="no progress display")


def run_report(
    outdir: Path = Path("figures"),
    *,
    seed: int = 0,
    trace_path: Path | None = None,
    train: bool = False,
    data_dir: Path | None = None,
    quick: bool = False,
    only: list[str] | None = None,
    progress: bool = True,
) -> Path:
    """Run the studies and write ``outdir/REPORT.md``; return its path."""
    from gaba_control._io import output_directory

    names = _select(only)  # an unknown study name or a missing trace fails before any work
    if trace_path is not None and not Path(trace_path).is_file():
        raise FileNotFoundError(f"trace file not found: {trace_path}")
    outdir = output_directory(outdir, "--outdir")
    trace = _load_or_train_trace(trace_path, train, data_dir, outdir, seed, quick)
    studies: list[Study] = []
    timings: dict[str, float] = {}
    from tqdm.auto import tqdm

    bar = tqdm(names, desc="studies", disable=not progress, file=sys.stderr)
    for module_name in bar:
        bar.set_postfix_str(module_name.split(".")[-1])
        start = time.perf_counter()
        # relative: the studies are ``analysis`` in a checkout, ``gaba_control.analysis`` installed
        module = importlib.import_module("." + module_name.split(".")[-1], __package__)
        studies.append(module.run(outdir, seed=seed, trace=trace, quick=quick))
        timings[module_name] = time.perf_counter() - start
    report = outdir / "REPORT.md"
    atomic_write_text(report, render(studies, trace=trace, seed=seed, quick=quick, timings=timings))
    _remove_stale(outdir, studies, report, partial=only is not None)
    return report


def _select(only: list[str] | None) -> list[str]:
    if only is None:
        return list(STUDIES)
    known = {name.split(".")[-1]: name for name in STUDIES}
    unknown = sorted(set(only) - set(known))
    if unknown:
        raise ValueError(f"unknown study name(s) {unknown}; choose from {sorted(known)}")
    return [known[name] for name in only]


def _load_or_train_trace(trace_path, train, data_dir, outdir, seed, quick):
    from gaba_control.trace import load_trace

    if trace_path is not None:
        return load_trace(trace_path)
    if not train:
        return None
    from gaba_control.cmapss.train import TrainConfig, train

    run_dir = outdir / "run"
    config = TrainConfig(method="gaba", subset="FD001", seed=seed, quick=quick, out=str(run_dir),
                         data_dir=None if data_dir is None else str(data_dir), progress=False)
    train(config)
    return load_trace(run_dir / "trace.npz")


def _remove_stale(outdir: Path, studies: list[Study], report: Path, *, partial: bool) -> None:
    from gaba_control._io import inside

    written = {report.resolve()} | {Path(f).resolve() for s in studies for f in s.figures}
    manifest = outdir / MANIFEST
    previous = set()
    if manifest.exists():
        for line in manifest.read_text().split():
            try:  # a manifest naming files outside the folder is not ours to delete
                previous.add(inside(line, outdir))
            except ValueError:
                print(f"gaba-control report: ignoring manifest entry {line!r} outside "
                      f"{outdir}", file=sys.stderr)
    if partial:
        written |= previous  # a partial run keeps the other studies' files
    else:
        for stale in previous - written:
            stale.unlink(missing_ok=True)
    names = sorted(str(p.relative_to(outdir.resolve())) for p in written if p.exists())
    atomic_write_text(manifest, "\n".join(names) + "\n")


def _escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def claims_table(claims: list[Claim]) -> str:
    """The verification table as Markdown."""
    header = ("| # | claim | source | theory | simulation | real run | tolerance | verdict |\n"
              "| --- | --- | --- | --- | --- | --- | --- | --- |")
    rows = []
    for i, c in enumerate(claims, 1):
        verdict = {"holds": "holds", "refuted": "**refuted**", "not testable": "not testable"}
        cells = [str(i), c.claim, c.source, c.theory, c.simulation, c.real_run, c.tolerance,
                 verdict[c.verdict] + (f": {c.evidence}" if c.evidence else "")]
        rows.append("| " + " | ".join(_escape(cell) for cell in cells) + " |")
    return "\n".join([header, *rows])


def describe_trace(trace) -> str:
    """One line naming a trace's run: subset, method, seed, length, loop constants."""
    c = trace.controller
    return (f"{trace.subset} {trace.method}, seed {trace.seed}, {len(trace)} steps "
            f"(K={c['num_tasks']}, β={c['beta']}, W={c['warmup']}, λ_min={c['lambda_min']})")


def render(studies, *, trace, seed, quick, timings) -> str:
    """The whole REPORT.md text."""
    import control
    import scipy
    import torch

    import gaba_control

    claims = [c for s in studies for c in s.claims]
    counts = {v: sum(c.verdict == v for c in claims) for v in ("holds", "refuted", "not testable")}
    source = ("real trace: " + describe_trace(trace)) if trace is not None else (
        "synthetic gradients only (pass `--trace` or `--train` for the real-data rows)")
    lines = [
        "# GABA as a control loop: verification report",
        "",
        "Generated by `gaba-control report` from the committed code; do not edit by hand.",
        "",
        f"- gaba_control {gaba_control.__version__}, Python {platform.python_version()}, "
        f"numpy {np.__version__}, scipy {scipy.__version__}, control {control.__version__}, "
        f"torch {torch.__version__}",
        f"- seed {seed}{', quick configuration' if quick else ''}; {source}",
        f"- {len(claims)} claims: {counts['holds']} hold, {counts['refuted']} refuted, "
        f"{counts['not testable']} not testable",
        "",
        "## Verification table",
        "",
        claims_table(claims),
        "",
    ]
    for study in studies:
        lines += [f"## {study.title}", "", study.summary.strip(), ""]
        for table in study.tables:
            lines += [table.strip(), ""]
        for fig in study.figures:
            if str(fig).endswith(".png"):
                lines += [f"![{Path(fig).stem}]({Path(fig).name})", ""]
    lines += ["## Run times", "", "| study | seconds |", "| --- | --- |"]
    lines += [f"| {name.split('.')[-1]} | {sec:.1f} |" for name, sec in timings.items()]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="gaba-control report",
                                     description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run_from_args(args)


def run_from_args(args: argparse.Namespace) -> int:
    report = run_report(args.outdir, seed=args.seed, trace_path=args.trace, train=args.train,
                        data_dir=args.data_dir, quick=args.quick, only=args.only,
                        progress=not args.no_progress)
    print(f"wrote {report}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
