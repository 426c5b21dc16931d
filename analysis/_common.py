"""What every study shares: figure style, atomic deterministic saving, claim records."""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from gaba_control._io import atomic_path, atomic_write_text

__all__ = ["FIGURE_FORMATS", "VERDICTS", "VERDICT_COLOURS", "Claim", "Finding", "Study",
           "atomic_write_text", "median_interval", "new_figure", "plain_log_formatter",
           "results_dir",
           "save_figure", "style", "verdict_bars"]

VERDICTS = ("holds", "refuted", "not testable")
#: one colour per verdict, in every figure that counts them
VERDICT_COLOURS = {"holds": "tab:green", "refuted": "tab:red", "not testable": "tab:gray"}


def verdict_bars(ax, groups, counts, order=VERDICTS) -> None:
    """Stacked horizontal bars of verdict counts per group, each count written on its bar.

    ``counts[group][verdict]`` is the number of claims; groups run top to bottom.
    """
    left = np.zeros(len(groups))
    for verdict in order:
        n = np.array([counts[g].get(verdict, 0) for g in groups])
        bars = ax.barh(list(groups), n, left=left, color=VERDICT_COLOURS[verdict], label=verdict)
        ax.bar_label(bars, labels=[str(k) if k else "" for k in n], label_type="center",
                     fontsize=7, color="white")
        left += n
    ax.invert_yaxis()

def median_interval(values, level: float = 0.95) -> tuple[float, float, float, float]:
    """Median of ``values`` with a distribution-free interval: ``(median, low, high, coverage)``.

    The interval is ``[x_(j), x_(n+1-j)]`` of the sorted sample with the
    largest ``j`` whose coverage ``1 − 2·P(Bin(n, ½) ≤ j − 1)`` is at least
    ``level`` (the sign-test interval: no assumption on the distribution, so
    it suits loop quantities such as a peak ratio whose spread over seeds is
    skewed); ``coverage`` is that exact probability. NaNs are dropped; below
    the smallest ``n`` that reaches ``level`` (6 for 95 %) the bounds are NaN.

    Examples
    --------
    >>> med, low, high, cov = median_interval(range(1, 11))
    >>> med, low, high, round(cov, 4)
    (5.5, 2.0, 9.0, 0.9785)
    """
    from scipy.stats import binom

    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    x = np.sort(np.asarray(values, dtype=float))
    x = x[~np.isnan(x)]
    n = x.size
    if n == 0:
        return (math.nan,) * 4
    median = float(np.median(x))
    best = None
    for j in range(1, n // 2 + 1):
        coverage = 1.0 - 2.0 * float(binom.cdf(j - 1, n, 0.5))
        if coverage < level:
            break
        best = (j, coverage)
    if best is None:
        return median, math.nan, math.nan, math.nan
    j, coverage = best
    return median, float(x[j - 1]), float(x[n - j]), coverage


def results_dir() -> Path:
    """The committed results the studies read (C-MAPSS comparisons, traces, identified plants).

    ``$GABA_RESULTS_DIR`` if set, else ``results/`` of the checkout these
    studies live in. An installed package (``gaba_control.analysis``) has no
    checkout around it: the folder does not exist there unless the variable
    names one, and the studies that need it say so in their claims.
    """
    given = os.environ.get("GABA_RESULTS_DIR")
    return Path(given) if given else Path(__file__).resolve().parents[1] / "results"


STYLE = {
    "figure.dpi": 110,
    "savefig.dpi": 300,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "lines.linewidth": 1.4,
    "svg.hashsalt": "gaba_control",  # deterministic SVG ids
    "svg.fonttype": "none",
}


@contextlib.contextmanager
def style():
    """The one figure style of the report."""
    with plt.rc_context(STYLE):
        yield


def new_figure(nrows: int = 1, ncols: int = 1, *, width: float = 6.4, height: float = 3.6, **kw):
    """A figure in the report style (call inside :func:`style` or not: it applies it)."""
    with plt.rc_context(STYLE):
        return plt.subplots(nrows, ncols, figsize=(width, height), layout="constrained", **kw)


#: every figure is written in these formats; the metadata that would vary run to run is dropped
FIGURE_FORMATS = (
    ("png", {"Software": None}),  # raster at savefig.dpi = 300, embedded in REPORT.md
    ("svg", {"Date": None, "Creator": None}),
    ("pdf", {"CreationDate": None, "Creator": None, "Producer": None}),  # vector, for papers
)


#: zlib level 3 instead of Pillow's 6: compressing a 300-dpi PNG was a third of its saving
#: time at level 6 and is a small part at level 3, for files about a fifth larger
SAVE_OPTIONS = {"png": {"pil_kwargs": {"compress_level": 3}}}


def save_figure(fig, outdir: Path, name: str) -> list[Path]:
    """Save ``fig`` as ``name.png`` (300 dpi), ``.svg`` and ``.pdf``, atomically and
    deterministically (no dates or tool versions in the files); close it."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    _plain_log_ticks(fig)
    written = []
    with plt.rc_context(STYLE):
        for ext, metadata in FIGURE_FORMATS:
            target = outdir / f"{name}.{ext}"
            with atomic_path(target, suffix=f".{ext}") as temporary:
                fig.savefig(temporary, format=ext, metadata=metadata, **SAVE_OPTIONS.get(ext, {}))
            written.append(target)
            # the first save solved the layout: keep it for the other formats (a third of
            # the saving time; every format shows the same layout)
            fig.set_layout_engine("none")
    plt.close(fig)
    return written


def plain_log_formatter(minor: bool = False):
    """Log-axis tick labels 0.2, 1, 10, 1000 (not ``2×10⁻¹`` or ``10⁰``); ``minor``: label
    the 2s and 5s of each decade only."""
    from matplotlib.ticker import FuncFormatter

    def label(v, _):
        lead = round(v / 10 ** np.floor(np.log10(v)), 6) if v > 0 else 0
        return f"{v:g}" if not minor or lead in (2, 5) else ""

    return FuncFormatter(label)


def _plain_log_ticks(fig) -> None:
    """On log axes spanning at most two decades, plain tick labels (0.2, 0.5, 1, 2) instead
    of matplotlib's ``2×10⁻¹``; wider axes keep their powers of ten."""
    from matplotlib.ticker import LogFormatterSciNotation

    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            if axis.get_scale() != "log":
                continue
            if not isinstance(axis.get_major_formatter(), LogFormatterSciNotation):
                continue  # a study chose its own labels
            lo, hi = sorted(axis.get_view_interval())
            if lo > 0 and hi / lo <= 100:
                axis.set_major_formatter(plain_log_formatter())
                axis.set_minor_formatter(plain_log_formatter(minor=True))


@dataclass(frozen=True)
class Claim:
    """One row of the audit (the report's appendix).

    ``verdict`` is ``"holds"``, ``"refuted"`` or ``"not testable"``; ``evidence``
    says how it was decided (and, when refuted, the correct value); ``figure``
    names the figure (its file stem) that shows the evidence, when one does.
    """

    claim: str
    source: str
    theory: str
    simulation: str
    real_run: str
    tolerance: str
    verdict: str
    evidence: str = ""
    figure: str = ""

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")


@dataclass(frozen=True)
class Finding:
    """One entry of the report's first page: a measured statement and where its evidence is.

    ``text`` is Markdown with the numbers the study computed; ``figure`` the
    stem of the figure that shows it (linked as "Figure N"), if any.
    """

    text: str
    figure: str = ""


@dataclass
class Study:
    """What a study hands to the report.

    ``title`` (unnumbered: the report numbers the sections), ``summary`` text
    (Markdown; ``{fig:STEM}`` and ``{tab:HEADING}`` become "Figure N"/"Table N"
    links), ``figures`` (the files :func:`save_figure` wrote), ``captions``
    (figure stem → caption; every figure needs one), ``claims`` (audit rows),
    ``tables`` (Markdown; each pipe table follows a ``### heading``, which
    becomes its numbered caption) and ``findings`` (for the first page).
    """

    name: str
    title: str
    summary: str
    figures: list[Path] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    captions: dict[str, str] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
