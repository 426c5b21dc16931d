"""Run every study and write ``figures/REPORT.md``: findings, sections, the audit appendix.

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

from ._common import Claim, Study, atomic_write_text, save_figure

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
    "analysis.variants",
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
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="run the studies in N worker processes, 1–64 (default 1)")


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
    jobs: int = 1,
) -> Path:
    """Run the studies and write ``outdir/REPORT.md``; return its path.

    ``jobs > 1`` runs the studies in that many worker processes (each study is
    independent and writes only its own figures; the report is the same).
    """
    from gaba_control._validation import check_positive_int

    jobs = check_positive_int(jobs, "jobs")
    if jobs > 64:
        raise ValueError(f"jobs must lie in [1, 64], got {jobs}")
    from gaba_control._io import output_directory

    names = _select(only)  # an unknown study name or a missing trace fails before any work
    if trace_path is not None and not Path(trace_path).is_file():
        raise FileNotFoundError(f"trace file not found: {trace_path}")
    outdir = output_directory(outdir, "--outdir")
    trace = _load_or_train_trace(trace_path, train, data_dir, outdir, seed, quick)
    studies, timings = _run_studies(names, outdir, seed=seed, trace=trace, quick=quick,
                                    jobs=jobs, progress=progress)
    report = outdir / "REPORT.md"
    overview = save_figure(audit_figure(studies), outdir, AUDIT_FIGURE)
    claims = outdir / CLAIMS_FILE
    atomic_write_text(claims, claims_json(studies))
    overview.append(claims)
    atomic_write_text(report, render(studies, trace=trace, seed=seed, quick=quick, timings=timings,
                                     with_audit_figure=True))
    _remove_stale(outdir, [*studies, Study("audit", "", "", figures=overview)], report,
                  partial=only is not None)
    return report


AUDIT_FIGURE = "audit_verdicts"
#: every audit row as JSON beside REPORT.md (read by ``analysis.seed_coverage``)
CLAIMS_FILE = "claims.json"


def claims_json(studies) -> str:
    """Every claim with its ID, group and study, as JSON (one object per row)."""
    import json
    from dataclasses import asdict

    rows = [{"id": claim_id(s.name, c), "group": claim_group(c), "study": s.name, **asdict(c)}
            for s in studies for c in s.claims]
    return json.dumps(rows, ensure_ascii=False, indent=1) + "\n"


def audit_figure(studies):
    """Every claim of the report counted by group (seed or toolkit) and verdict, labelled."""
    from ._common import new_figure, verdict_bars

    rows = [(claim_group(c), c.verdict) for s in studies for c in s.claims]
    groups = sorted({g for g, _ in rows}, key=lambda g: (g == "toolkit", g))
    fig, ax = new_figure(width=6.4, height=0.6 + 0.42 * max(len(groups), 1))
    counts = {g: {v: sum(1 for gg, vv in rows if gg == g and vv == v) for v in VERDICT_ORDER}
              for g in groups}
    verdict_bars(ax, groups, counts, VERDICT_ORDER)
    ax.set_xlabel("claims")
    ax.set_title(f"All {len(rows)} claims of the report by the seed that makes them", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    return fig


#: the slowest studies first, so a pool of workers finishes together
_SLOWEST_FIRST = ("analysis.field", "analysis.variants", "analysis.closed_loop", "analysis.noise",
                  "analysis.identify")


def _run_study(module_name: str, outdir: Path, seed: int, trace, quick: bool):
    start = time.perf_counter()
    # relative: the studies are ``analysis`` in a checkout, ``gaba_control.analysis`` installed
    module = importlib.import_module("." + module_name.split(".")[-1], __package__)
    return module.run(outdir, seed=seed, trace=trace, quick=quick), time.perf_counter() - start


def _run_studies(names, outdir, *, seed, trace, quick, jobs, progress):
    """The studies in ``names`` order and their run times (seconds), on ``jobs`` processes."""
    from tqdm.auto import tqdm

    results = {}
    bar = tqdm(total=len(names), desc="studies", disable=not progress, file=sys.stderr)
    if jobs == 1:
        for name in names:
            bar.set_postfix_str(name.split(".")[-1])
            results[name] = _run_study(name, outdir, seed, trace, quick)
            bar.update()
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        order = sorted(names, key=lambda n: (n not in _SLOWEST_FIRST,
                                             _SLOWEST_FIRST.index(n) if n in _SLOWEST_FIRST
                                             else 0))
        # spawn: the parent may hold torch's thread pools, which a fork would copy mid-state
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(_run_study, n, outdir, seed, trace, quick): n for n in order}
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                bar.set_postfix_str(futures[future].split(".")[-1])
                bar.update()
    bar.close()
    return [results[n][0] for n in names], {n: results[n][1] for n in names}


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


#: the prefix of each study's claim IDs (an ID is prefix-hash, stable while the claim's
#: wording and source stay the same, whatever rows are added or removed around it)
ID_PREFIX = {"bode": "BOD", "step_response": "STP", "noise": "NOI", "bounds": "BND",
             "closed_loop": "CLP", "field": "FLD", "real_loop": "REL", "compare": "CMP",
             "sweep": "SWP", "identify": "IDN", "variants": "VAR", "seed_audit": "AUD"}
VERDICT_ORDER = ("refuted", "not testable", "holds")  # the appendix lists refuted rows first


def claim_id(study: str, claim: Claim) -> str:
    """A short stable ID, e.g. ``BOD-3f2a``: study prefix and a hash of the claim and source."""
    import hashlib

    digest = hashlib.sha256(f"{claim.source}\x00{claim.claim}".encode()).hexdigest()[:4]
    return f"{ID_PREFIX.get(study, study[:3].upper())}-{digest}"


def claim_group(claim: Claim) -> str:
    """The appendix group of a claim: the first seed its source names, else "toolkit"."""
    import re

    found = re.search(r"seed (\d{3})", claim.source)
    return f"seed {found.group(1)}" if found else "toolkit"


def describe_trace(trace) -> str:
    """One line naming a trace's run: subset, method, seed, length, loop constants."""
    c = trace.controller
    return (f"{trace.subset} {trace.method}, seed {trace.seed}, {len(trace)} steps "
            f"(K={c['num_tasks']}, β={c['beta']}, W={c['warmup']}, λ_min={c['lambda_min']})")


class _Numbering:
    """Section, figure and table numbers of one report, and the links to them."""

    def __init__(self, studies):
        import re

        self.section = {s.name: i for i, s in enumerate(studies, 1)}
        self.figure: dict[str, int] = {}
        self.table: dict[tuple[str, int], int] = {}  # (study, its k-th table) → number
        self.table_caption: dict[int, str] = {}
        for s in studies:
            for stem in _figure_stems(s):
                self.figure.setdefault(stem, len(self.figure) + 1)
            for k, caption in enumerate(_table_captions(s)):
                n = self.table[(s.name, k)] = len(self.table) + 1
                self.table_caption[n] = caption
        self._cite = re.compile(r"\{(fig|tab):([^{}]+)\}")

    def figure_link(self, stem: str) -> str:
        if stem not in self.figure:
            raise ValueError(f"the text cites figure {stem!r}, which no study wrote")
        return f"[Figure {self.figure[stem]}](#fig-{stem})"

    def table_link(self, heading: str) -> str:
        matches = [n for n, c in self.table_caption.items() if c.startswith(heading)]
        if len(matches) != 1:
            raise ValueError(f"the text cites table {heading!r}: {len(matches)} tables match")
        return f"[Table {matches[0]}](#tab-{matches[0]})"

    def section_link(self, study: str, title: str) -> str:
        return f"[§{self.section[study]}](#sec-{study})"

    def cite(self, text: str) -> str:
        """Replace ``{fig:STEM}`` and ``{tab:HEADING}`` by numbered links."""
        return self._cite.sub(lambda m: (self.figure_link if m.group(1) == "fig"
                                         else self.table_link)(m.group(2)), text)


def _figure_stems(study) -> list[str]:
    return [Path(f).stem for f in study.figures if str(f).endswith(".png")]


def _title(study) -> str:
    import re

    return re.sub(r"^\d+\.\s*", "", study.title)  # the report numbers the sections


def _table_blocks(text: str):
    """``(caption or None, lines before the table, table lines)`` for each pipe table."""
    lines, blocks, pending, caption = text.strip().splitlines(), [], [], None
    i = 0
    while i < len(lines):
        if lines[i].startswith("|"):
            j = i
            while j < len(lines) and lines[j].startswith("|"):
                j += 1
            blocks.append((caption, pending, lines[i:j]))
            pending, caption, i = [], None, j
            continue
        if lines[i].startswith("#"):
            caption = lines[i].lstrip("#").strip()
        else:
            pending.append(lines[i])
        i += 1
    return blocks, pending


def _table_captions(study) -> list[str]:
    return [caption or "" for text in study.tables for caption, _, _ in _table_blocks(text)[0]]


def _render_tables(study, numbers: _Numbering) -> list[str]:
    out, k = [], 0
    for text in study.tables:
        blocks, tail = _table_blocks(text)
        for caption, before, table in blocks:
            if before and any(line.strip() for line in before):
                out += [numbers.cite("\n".join(before)).strip(), ""]
            n = numbers.table[(study.name, k)]
            k += 1
            out += [f'<a id="tab-{n}"></a>', "", f"**Table {n}.** {caption or ''}".rstrip(), "",
                    *table, ""]
        if any(line.strip() for line in tail):
            out += [numbers.cite("\n".join(tail)).strip(), ""]
    return out


def _render_figure(study, stem: str, numbers: _Numbering) -> list[str]:
    n = numbers.figure[stem]
    caption = numbers.cite(study.captions.get(stem, "").strip())
    formats = " · ".join(f"[{ext.upper()}]({stem}.{ext})" for ext in ("pdf", "svg"))
    return [f'<a id="fig-{stem}"></a>', "", f"![Figure {n}: {stem}]({stem}.png)", "",
            f"**Figure {n}.** {caption} ({formats})", ""]


def render_findings(studies, numbers: _Numbering) -> list[str]:
    """The first page: each study's findings, with links to their section and figure."""
    lines = ["## Findings", ""]
    k = 0
    for study in studies:
        for finding in study.findings:
            k += 1
            where = [numbers.section_link(study.name, _title(study))]
            if finding.figure:
                where.append(numbers.figure_link(finding.figure))
            lines.append(f"{k}. {numbers.cite(finding.text.strip())} ({', '.join(where)})")
    if not k:
        lines.append("No study reported findings in this configuration.")
    return [*lines, ""]


def render_contents(studies) -> list[str]:
    lines = ["## Contents", "", "- [Findings](#findings)"]
    lines += [f"- [{i}. {_title(s)}](#sec-{s.name})" for i, s in enumerate(studies, 1)]
    lines += ["- [Appendix A. The audit: every claim and its verdict](#appendix-a)",
              "- [Appendix B. Run times](#appendix-b)", ""]
    return lines


def render_audit(studies, numbers: _Numbering, *, figure: bool = False) -> list[str]:
    """Appendix A: every claim, grouped by the seed that makes it, refuted first, with IDs."""
    rows = [(claim_group(c), s, c) for s in studies for c in s.claims]
    groups = sorted({g for g, _, _ in rows}, key=lambda g: (g == "toolkit", g))
    lines = ['<a id="appendix-a"></a>', "", "## Appendix A. The audit: every claim and its verdict",
             "",
             "Each claim of the seeds (and each check the toolkit makes of itself) with the "
             "theory, simulation and real-run evidence that decided it, the tolerance it was "
             "held to and the verdict. IDs are stable (study prefix and a hash of the claim "
             "and its source); each row links to the section and, where one shows it, the "
             "figure with the evidence. Grouped by the seed that makes the claim, refuted "
             "rows first.", "",
             "| group | claims | hold | refuted | not testable |",
             "| --- | --- | --- | --- | --- |"]
    for g in groups:
        vs = [c.verdict for gg, _, c in rows if gg == g]
        lines.append(f"| [{g}](#audit-{g.replace(' ', '-')}) | {len(vs)} | {vs.count('holds')} | "
                     f"{vs.count('refuted')} | {vs.count('not testable')} |")
    vs = [c.verdict for _, _, c in rows]
    lines += [f"| all | {len(vs)} | {vs.count('holds')} | {vs.count('refuted')} | "
              f"{vs.count('not testable')} |", ""]
    if figure:
        n = numbers.figure.setdefault(AUDIT_FIGURE, len(numbers.figure) + 1)
        lines += [f'<a id="fig-{AUDIT_FIGURE}"></a>', "",
                  f"![Figure {n}: {AUDIT_FIGURE}]({AUDIT_FIGURE}.png)", "",
                  f"**Figure {n}.** Every claim of this report ({len(vs)}) counted by the seed "
                  f"that makes it (toolkit: the toolkit's checks of itself and the issues' "
                  f"questions) and by verdict. ([PDF]({AUDIT_FIGURE}.pdf) · "
                  f"[SVG]({AUDIT_FIGURE}.svg))", ""]
    seen: set[str] = set()
    for g in groups:
        lines += [f'<a id="audit-{g.replace(" ", "-")}"></a>', "", f"### {g}", ""]
        members = [(s, c) for gg, s, c in rows if gg == g]
        members.sort(key=lambda sc: VERDICT_ORDER.index(sc[1].verdict))
        for study, c in members:
            cid = claim_id(study.name, c)
            if cid in seen:
                raise ValueError(f"two claims share the ID {cid}: {c.claim!r}")
            seen.add(cid)
            verdict = {"refuted": "**refuted**", "holds": "holds",
                       "not testable": "*not testable*"}[c.verdict]
            where = [numbers.section_link(study.name, _title(study))]
            if c.figure:
                where.append(numbers.figure_link(c.figure))
            lines += [f'<a id="{cid}"></a>**{cid}** {verdict}: {_escape(c.claim)} '
                      f"({_escape(c.source)}; evidence {', '.join(where)})", ""]
            details = [("theory", c.theory), ("simulation", c.simulation),
                       ("real run", c.real_run), ("tolerance", c.tolerance),
                       ("verdict", c.evidence)]
            lines += [f"- {name}: {_escape(value)}" for name, value in details
                      if value and value not in ("—", "n/a")]
            lines.append("")
    return lines


def render(studies, *, trace, seed, quick, timings, with_audit_figure: bool = False) -> str:
    """The whole REPORT.md text."""
    import control
    import scipy
    import torch

    import gaba_control

    claims = [c for s in studies for c in s.claims]
    counts = {v: sum(c.verdict == v for c in claims) for v in ("holds", "refuted", "not testable")}
    source = ("real trace: " + describe_trace(trace)) if trace is not None else (
        "synthetic gradients only (pass `--trace` or `--train` for the real-data rows)")
    numbers = _Numbering(studies)
    lines = [
        "# GABA as a control loop: verification report",
        "",
        "Generated by `gaba-control report` from the committed code; do not edit by hand.",
        "",
        f"- gaba_control {gaba_control.__version__}, Python {platform.python_version()}, "
        f"numpy {np.__version__}, scipy {scipy.__version__}, control {control.__version__}, "
        f"torch {torch.__version__}",
        f"- seed {seed}{', quick configuration' if quick else ''}; {source}",
        f"- {len(claims)} claims audited ([Appendix A](#appendix-a)): {counts['holds']} hold, "
        f"{counts['refuted']} refuted, {counts['not testable']} not testable",
        "- conventions: steps and epochs are counted from 1; \"±\" is one standard deviation "
        "across seeds or runs unless a row says otherwise; intervals in brackets are 95 % "
        "confidence intervals; each table states its window and its number of runs",
        "",
        *render_findings(studies, numbers),
        *render_contents(studies),
    ]
    for i, study in enumerate(studies, 1):
        lines += [f'<a id="sec-{study.name}"></a>', "", f"## {i}. {_title(study)}", "",
                  numbers.cite(study.summary.strip()), ""]
        lines += _render_tables(study, numbers)
        for stem in _figure_stems(study):
            lines += _render_figure(study, stem, numbers)
    lines += render_audit(studies, numbers, figure=with_audit_figure)
    lines += ['<a id="appendix-b"></a>', "", "## Appendix B. Run times", "",
              "| study | seconds |", "| --- | --- |"]
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
                        progress=not args.no_progress, jobs=args.jobs)
    print(f"wrote {report}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
