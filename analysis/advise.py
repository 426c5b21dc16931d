"""``gaba-control advise``: which loop settings to use, predicted from a recorded run.

Usage: ``gaba-control advise --trace RUN/trace.npz [--out DIR] [grid options]``.

For every candidate setting (variant × β × floor × W × refresh interval ×
sensor; see :mod:`gaba_control.design`) it predicts, from the recorded per-task
norms:

* **replay** (open loop, all candidates at once): the floor-active fraction,
  the smallest-norm task's weighted share (geometric mean over the
  post-warmup steps) and the noise of its weight (std of ``log λ``);
* **theory**: the settling time (``W`` + the updates the filter needs to close
  95 % of a step, ``⌈log 0.05 / log β^N⌉``, times ``N`` steps) and the cost of a
  step relative to an equal-weights step, ``(c + N − 1)/N`` with ``c`` the
  exact sensor's measured ratio (``benchmarks/results/bench_sensors-cpu.md``;
  the held steps cost one plain backward); for an approximate sensor ``c`` is
  its own row of that table;
* **the sensor** (``--sensors``, default ``exact``; ``K = 2``): an approximate
  sensor (``last_layer``, ``representation``) reads the ratio ``g_0/g_1``
  times its measured bias ``b`` (median over a real FD001 run,
  ``benchmarks/results/bench_sensors-bias.md``, or ``--sensor-bias NAME=b``
  for another network); the loop is replayed on that reading while the shares
  are judged on the recorded exact norms (``simulate_settings(reading=)``).
  The bias is a constant-factor model, measured on the C-MAPSS CNN under the
  exact sensor: the prediction assumes it carries over;
* **plant-corrected** (the shortlist, ``K = 2``, when an identified plant of
  the trace's subset is committed): the same quantities with each setting's
  reading corrected by the identified plant's answer to its weights; a
  setting whose replay and plant predictions disagree (share by more than 25 %
  or floor fraction by more than 0.1) is marked.

It recommends the feasible setting (weight noise ≤ ``--noise-max``, cost ≤
``--cost-max``) whose predicted share is nearest ``1/K`` (plant-corrected
where available), cheaper and faster-settling first among near-ties, and
writes ``advise.csv`` (every candidate), ``advise.md`` and the figure
``advise_grid`` to ``--out``.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._common import new_figure, results_dir, save_figure

__all__ = ["Advice", "advise", "candidate_grid", "exact_sensor_cost", "sensor_bias",
           "sensor_cost"]

DEFAULTS = {"variant": ("gaba", "gaba_antiwindup", "gaba_inverse", "gaba_log_ema",
                        "gaba_integral"),
            "beta": (0.9, 0.95, 0.98, 0.99, 0.995, 0.999),
            "floor": (0.0, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1),
            "warmup": (0, 25, 50, 100, 200, 400),
            "refresh": (1, 2, 5, 10, 20, 50)}
#: GABA's published setting, the reference every recommendation is compared with
PAPER = ("gaba", 0.99, 0.05, 100, 1)
#: the sensors a candidate may use (``naive`` reads the exact norms at a higher cost)
SENSORS = ("exact", "last_layer", "representation")
DISAGREE_SHARE = math.log(1.25)  # |log share_plant − log share_replay| beyond 25 %
DISAGREE_FLOOR = 0.1
NEAR_TIE = math.log(1.05)  # shares within 5 % of the best count as tied
SETTLED = 0.05
#: the largest warmup or refresh interval a candidate may have (steps; int64-safe)
MAX_STEPS = 2**40


def _bench_table(name: str) -> Path:
    return results_dir().parent / "benchmarks" / "results" / name


def sensor_cost(sensor: str, path: Path | None = None) -> float:
    """A sensor's step time over an equal-weights step, K = 2, C-MAPSS CNN.

    Read from the committed benchmark table (first table, the sensor's row,
    ``× equal``); ``NaN`` if it is not there.
    """
    path = Path(path) if path else _bench_table("bench_sensors-cpu.md")
    if not path.is_file():
        return math.nan
    pattern = (r"\|\s*cmapss\s*\|\s*2\s*\|\s*" + re.escape(sensor)
               + r"\s*\|[^|]*\|[^|]*\|\s*([0-9.]+)\s*\|")
    for line in path.read_text().splitlines():
        m = re.match(pattern, line)
        if m:
            return float(m.group(1))
    return math.nan


def exact_sensor_cost(path: Path | None = None) -> float:
    """:func:`sensor_cost` of the exact sensor."""
    return sensor_cost("exact", path)


def sensor_bias(sensor: str, path: Path | None = None) -> float:
    """An approximate sensor's measured bias: the median ratio ``g_0/g_1`` it reads over the
    exact one (``benchmarks/results/bench_sensors-bias.md``); 1 for ``exact``, ``NaN`` if
    the table lacks the sensor."""
    if sensor == "exact":
        return 1.0
    path = Path(path) if path else _bench_table("bench_sensors-bias.md")
    if not path.is_file():
        return math.nan
    for line in path.read_text().splitlines():
        m = re.match(re.escape(sensor) + r":.*median ratio to exact's ([0-9.eE+-]+)", line)
        if m:
            return float(m.group(1))
    return math.nan


def _check_sensors(sensors, biases, num_tasks: int) -> dict[str, float]:
    """``sensor → bias`` of the candidate sensors; ``ValueError`` naming the flag."""
    sensors = tuple(sensors or ("exact",))
    bad = [s for s in sensors if s not in SENSORS]
    if bad or len(set(sensors)) != len(sensors):
        raise ValueError(f"--sensors must be distinct names of {SENSORS}, got {list(sensors)}")
    # the published setting's sensor is always a candidate: it is the reference
    sensors = ("exact", *(name for name in sensors if name != "exact"))
    biases = dict(biases or {})
    unknown = sorted(set(biases) - (set(sensors) - {"exact"}))
    if unknown:
        raise ValueError(f"--sensor-bias names approximate sensors of --sensors only, got "
                         f"{unknown}")
    out = {}
    for s in sensors:
        b = biases.get(s, sensor_bias(s))
        if s != "exact" and num_tasks != 2:
            raise ValueError(f"--sensors {s}: an approximate sensor's bias is a ratio of two "
                             f"tasks' norms; this trace has K = {num_tasks}")
        if not (isinstance(b, (int, float)) and math.isfinite(b) and b > 0):
            raise ValueError(f"--sensor-bias {s} must be a finite number > 0 (none is "
                             f"committed for it), got {b!r}")
        out[s] = float(b)
    return out


def candidate_grid(num_tasks: int, **given):
    """The full factorial grid of :data:`DEFAULTS` (or the given values); floors ≥ 1/K
    are inadmissible and raise ``ValueError`` naming ``--floors``."""
    from gaba_control.design import Settings

    values = {k: tuple(given.get(k) or v) for k, v in DEFAULTS.items()}
    for name, flag, low in (("warmup", "--warmups", 0), ("refresh", "--refresh", 1)):
        # before any array is built: 10^21 would overflow numpy's int64, not name the flag
        bad = [v for v in values[name] if isinstance(v, bool) or not isinstance(
            v, (int, np.integer)) or not low <= v <= MAX_STEPS]
        if bad:
            raise ValueError(f"{flag} must be ints in [{low}, {MAX_STEPS}], got {bad}")
    bad = [f for f in values["floor"] if not (0 <= f < 1 / num_tasks)]
    if bad:
        raise ValueError(f"--floors must lie in [0, 1/K) = [0, {1 / num_tasks:g}), got {bad}")
    return Settings.grid(**values)


@dataclass
class Advice:
    """Every candidate's predictions (``rows``), the shortlist's plant check, the choice."""

    rows: list[dict]
    recommended: dict
    reference: dict
    reasons: list[str]
    trace_label: str
    num_tasks: int
    plant: str
    #: the lowest-ranked setting other than the recommended and the published one
    lowest: dict | None = None

    def sensors(self) -> list[tuple[str, float]]:
        """The candidate sensors with the bias each was replayed with."""
        return list(dict.fromkeys((r.get("sensor", "exact"), r.get("sensor_bias", 1.0))
                                  for r in self.rows))

    def table(self, rows=None, limit: int = 12) -> str:
        rows = self.rows[:limit] if rows is None else rows
        head = ("| rank | variant | β | floor | W | N | sensor | share (replay) | "
                "share (plant) | floor-active | std log λ | settling (steps) | cost × equal | "
                "note |")
        lines = [head, "|" + "---|" * 14]
        for r in rows:
            lines.append(
                f"| {r['rank']} | {r['variant']} | {r['beta']:g} | {r['floor']:g} | "
                f"{r['warmup']} | {r['refresh']} | {r.get('sensor', 'exact')} | "
                f"{r['share_replay']:.3f} | "
                f"{_fmt(r.get('share_plant'))} | {r['floor_replay']:.2f} | "
                f"{r['noise_replay']:.2f} | {r['settling']} | {_fmt(r['cost'], 2)} | "
                f"{r.get('note', '')} |")
        return "\n".join(lines)

    def markdown(self) -> str:
        rec, ref = self.recommended, self.reference
        return "\n\n".join([
            f"# Advice for {self.trace_label}",
            f"{len(self.rows)} candidate settings, K = {self.num_tasks}; plant: {self.plant}. "
            "Shares: the smallest-norm task's weighted share, geometric mean over the "
            "post-warmup steps (aim 1/K = "
            f"{1 / self.num_tasks:.3g}); std log λ: of that task's weight, same window. "
            "Sensors: " + ", ".join(f"{name} (bias {b:.3g})" for name, b in self.sensors())
            + "; an approximate sensor's loop is replayed on the recorded norms with task "
            "0's scaled by its bias, its share judged on the exact norms.",
            "## Recommendation\n\n" + self.table([rec]) + "\n\n"
            + "\n".join(f"- {r}" for r in self.reasons),
            "## GABA's published setting\n\n" + self.table([ref]),
            "## The best-ranked candidates\n\n" + self.table(),
        ]) + "\n"

    def plot(self, fig=None):
        """Predicted share vs floor per variant (β, W, N of the recommendation) and the
        noise–share plane of every candidate."""
        if fig is None:
            fig, axes = new_figure(1, 2, width=8.4, height=3.4)
        else:
            axes = fig.subplots(1, 2)
        rec = self.recommended
        for variant in dict.fromkeys(r["variant"] for r in self.rows):
            pts = sorted((r["floor"], r["share_replay"]) for r in self.rows
                         if r["variant"] == variant and r["beta"] == rec["beta"]
                         and r.get("sensor") == rec.get("sensor")
                         and r["warmup"] == rec["warmup"] and r["refresh"] == rec["refresh"])
            if pts:
                x, y = zip(*pts, strict=True)
                axes[0].plot(np.maximum(x, 1e-4), y, "o-", ms=3, label=variant)
        axes[0].axhline(1 / self.num_tasks, color="0.5", ls="--", lw=0.8)
        axes[0].set_xscale("log")
        axes[0].set_yscale("log")
        axes[0].set_xlabel("floor (0 drawn at 1e-4)")
        axes[0].set_ylabel("smallest task's weighted share (replay)")
        axes[0].set_title(f"β = {rec['beta']:g}, W = {rec['warmup']}, N = {rec['refresh']}, "
                          f"{rec.get('sensor', 'exact')} sensor", fontsize=8)
        axes[0].legend(fontsize=6)
        share = np.array([r["share_replay"] for r in self.rows])
        noise = np.array([r["noise_replay"] for r in self.rows])
        feasible = np.array([r["feasible"] for r in self.rows])
        axes[1].scatter(share[~feasible], noise[~feasible], s=3, color="0.75",
                        label="infeasible (noise or cost)")
        axes[1].scatter(share[feasible], noise[feasible], s=3, color="tab:blue",
                        label="feasible")
        axes[1].plot(rec["share_replay"], rec["noise_replay"], "*", color="tab:red", ms=11,
                     label="recommended")
        ref = self.reference
        axes[1].plot(ref["share_replay"], ref["noise_replay"], "s", color="k", ms=6,
                     mfc="none", label="GABA's published setting")
        axes[1].axvline(1 / self.num_tasks, color="0.5", ls="--", lw=0.8)
        axes[1].set_xscale("log")
        axes[1].set_xlabel("smallest task's weighted share (replay)")
        axes[1].set_ylabel("std log λ")
        axes[1].set_title(f"{len(self.rows)} candidates")
        axes[1].legend(fontsize=6, loc="upper left")
        return fig

    def write(self, out: Path) -> list[Path]:
        from ._common import atomic_write_text
        from .compare import _csv

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "advise.csv", _csv(self.rows))
        atomic_write_text(out / "advise.md", self.markdown())
        return [out / "advise.csv", out / "advise.md", *save_figure(self.plot(), out,
                                                                   "advise_grid")]


def _fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{value:.{digits}f}"


def _settling(beta: float, refresh: int, warmup: int) -> int:
    per_update = beta**refresh
    updates = 1 if per_update == 0 else math.ceil(math.log(SETTLED) / math.log(per_update))
    return int(warmup + updates * refresh)


def _plant_for(subset: str, weight: float, results: Path):
    """The identified plant of ``subset`` nearest (in log) to the weight ``weight`` of task 1."""
    from .variants import load_plants

    plants = [p for p in load_plants(results / "identify" / "plants.csv") if p.subset == subset]
    if not plants:
        return None
    return min(plants, key=lambda p: abs(math.log(p.lam0 / max(weight, 1e-6))))


def advise(trace, *, noise_max: float = 0.5, cost_max: float = 1.3, shortlist: int = 20,
           plant: bool = True, results: Path | None = None, sensors=None,
           sensor_biases: dict | None = None, **grid) -> Advice:
    """Predict every candidate of :func:`candidate_grid` × ``sensors`` on ``trace`` and
    recommend one (``sensor_biases``: ``name → b`` instead of the committed bias)."""
    from gaba_control.design import Settings, simulate_settings

    for name, value in (("noise_max", noise_max), ("cost_max", cost_max)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"--{name.replace('_', '-')} must be a finite number > 0, "
                             f"got {value!r}")
    if isinstance(shortlist, bool) or not isinstance(shortlist, int) or not 1 <= shortlist <= 1000:
        raise ValueError(f"--shortlist must be an int in [1, 1000], got {shortlist!r}")
    results = Path(results) if results is not None else results_dir()
    norms = np.asarray(trace.grad_norms, dtype=np.float64)
    k = norms.shape[1]
    if not np.any(np.all(np.isfinite(norms), axis=1)):
        raise ValueError("the trace holds no finite norms to predict from")
    settings = candidate_grid(k, **grid)
    biases = _check_sensors(sensors, sensor_biases, k)
    paper = Settings.of([PAPER]) if PAPER[2] < 1 / k else None
    if paper is not None:
        settings = Settings(*(np.concatenate([getattr(settings, f), getattr(paper, f)])
                              for f in ("variant", "beta", "floor", "warmup", "refresh")))
    rows = []
    # the exact sensor last: the published setting (exact) stays the last row
    for sensor in sorted(biases, key=lambda name: name == "exact"):
        replay = simulate_settings(norms, settings, reading=_reading(norms, biases[sensor]))
        c_sensor = sensor_cost(sensor) if k == 2 else math.nan
        for i in range(len(settings)):
            s = settings.row(i)
            share = math.exp(replay.share_log_mean[i])
            rows.append({**s, "sensor": sensor, "sensor_bias": biases[sensor],
                         "share_replay": share,
                         "floor_replay": float(replay.floor_fraction[i]),
                         "noise_replay": float(replay.log_weight_std[i]),
                         "weight_small": math.exp(replay.log_weight_mean[i]),
                         "settling": _settling(s["beta"], s["refresh"], s["warmup"]),
                         "cost": (c_sensor + s["refresh"] - 1) / s["refresh"],
                         "share_plant": None, "floor_plant": None, "noise_plant": None,
                         "note": ""})
    for r in rows:
        r["feasible"] = bool(r["noise_replay"] <= noise_max
                             and (not math.isfinite(r["cost"]) or r["cost"] <= cost_max))
        r["error"] = abs(math.log(r["share_replay"] * k))
    order = sorted(range(len(rows)), key=lambda i: _key(rows[i], "share_replay", k))
    plant_label = "none (replay only)"
    if plant and k == 2:
        plant_label = _plant_check(rows, [*order[:shortlist], len(rows) - 1], trace, norms,
                                   results) or plant_label
    # final ranking: the plant-corrected share where it was computed
    order = sorted(range(len(rows)), key=lambda i: _key(rows[i], "share_plant"
                                                        if rows[i]["share_plant"] is not None
                                                        else "share_replay", k))
    ranked = [rows[i] for i in order]
    for rank, r in enumerate(ranked, start=1):
        r["rank"] = rank
    reference = rows[-1] if paper is not None else ranked[-1]
    recommended = ranked[0]
    taken = {_setting(recommended), _setting(reference)}
    lowest = next((r for r in reversed(ranked) if _setting(r) not in taken), None)
    if lowest is not None and plant_label != "none (replay only)" and (
            lowest["share_plant"] is None):  # plant-checked too (not re-ranked): it is validated
        _plant_check(ranked, [ranked.index(lowest)], trace, norms, results)
    return Advice(ranked, recommended, reference, _reasons(recommended, reference, k,
                                                            noise_max, cost_max),
                  f"{trace.subset} {trace.method} seed {trace.seed} ({norms.shape[0]} steps)",
                  k, plant_label, lowest)


def _setting(row: dict) -> tuple:
    return tuple(row[f] for f in ("variant", "beta", "floor", "warmup", "refresh", "sensor"))


def _reading(norms: np.ndarray, bias: float) -> np.ndarray | None:
    """What a sensor of bias ``b`` reads: task 0's norm times ``b`` (``None``: the norms)."""
    if bias == 1.0:
        return None
    return norms * np.r_[bias, np.ones(norms.shape[1] - 1)]


def _key(row: dict, share_field: str, k: int):
    share = row[share_field]
    error = abs(math.log(max(share, 1e-300) * k))
    # feasible first; then the share error in 5 % bins; then cost, settling, noise
    return (not row["feasible"], round(error / NEAR_TIE), row["cost"] if math.isfinite(
        row["cost"]) else 0.0, row["settling"], row["noise_replay"])


def _plant_check(rows, indices, trace, norms, results: Path) -> str | None:
    from gaba_control.design import Settings, simulate_settings

    applied = np.asarray(trace.applied_weights, float)[:, 0]
    applied = applied / np.asarray(trace.applied_weights, float).sum(axis=1)
    if not np.all(np.isfinite(applied)) or np.any(applied <= 0):
        return None
    labels = set()
    groups: dict = {}
    for i in dict.fromkeys(indices):
        # the plant identified nearest to where this setting puts task 1's weight
        w1 = 1 - rows[i]["weight_small"] if _small_is_second(norms) else rows[i]["weight_small"]
        p = _plant_for(trace.subset, w1, results)
        if p is None:
            return None
        groups.setdefault((p.lam0, rows[i]["sensor_bias"]), (p, []))[1].append(i)
    for (_, bias), (p, idx) in groups.items():
        labels.add(f"{p.subset} λ₀ = {p.lam0:g} (DC gain {p.dc_gain:.2f})")
        sub = Settings.of([tuple(rows[i][f] for f in ("variant", "beta", "floor", "warmup",
                                                         "refresh")) for i in idx])
        r = simulate_settings(norms, sub, plant=(p.numerator, p.denominator), applied=applied,
                              reading=_reading(norms, bias))
        for j, i in enumerate(idx):
            row = rows[i]
            row["share_plant"] = math.exp(r.share_log_mean[j])
            row["floor_plant"] = float(r.floor_fraction[j])
            row["noise_plant"] = float(r.log_weight_std[j])
            if (abs(math.log(row["share_plant"] / row["share_replay"])) > DISAGREE_SHARE
                    or abs(row["floor_plant"] - row["floor_replay"]) > DISAGREE_FLOOR):
                row["note"] = "replay and plant disagree"
    return "identified " + "; ".join(sorted(labels))


def _small_is_second(norms) -> bool:
    med = np.nanmedian(np.where(np.isfinite(norms), norms, np.nan), axis=0)
    return int(np.nanargmin(med)) == 1


def _reasons(rec: dict, ref: dict, k: int, noise_max: float, cost_max: float) -> list[str]:
    def share(r):
        return r["share_plant"] if r["share_plant"] is not None else r["share_replay"]

    out = [f"its predicted weighted share of the smallest task is {share(rec):.3f} against "
           f"the aim 1/K = {1 / k:.3g} ({share(ref):.3f} with GABA's published setting "
           f"{ref['variant']}, β = {ref['beta']:g}, λ_min = {ref['floor']:g}, "
           f"W = {ref['warmup']}, N = {ref['refresh']})",
           f"its floor binds on {100 * rec['floor_replay']:.0f} % of the post-warmup steps "
           f"(published setting: {100 * ref['floor_replay']:.0f} %)",
           f"it reads the {rec.get('sensor', 'exact')} sensor"
           + ("" if rec.get("sensor", "exact") == "exact" else
              f" (replayed with its measured bias {rec['sensor_bias']:.3g}: an assumption "
              "to check with a run)"),
           f"weight noise std log λ = {rec['noise_replay']:.2f} (limit {noise_max:g}); "
           f"settles in {rec['settling']} steps; a step costs "
           f"{_fmt(rec['cost'], 2)}× an equal-weights step (limit {cost_max:g})"]
    if not rec["feasible"]:
        out.append("no candidate meets both limits: this is the best infeasible one")
    if rec.get("note"):
        out.append("replay and the plant-corrected prediction disagree for it: treat the "
                   "share with caution and check with a run")
    return out


# ------------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--trace", type=Path, required=True, help="a training trace (.npz)")
    parser.add_argument("--out", type=Path, default=Path("runs/advise"),
                        help="where advise.csv, advise.md and the figure go")
    parser.add_argument("--variants", nargs="+", default=None, metavar="NAME",
                        help=f"default: {' '.join(DEFAULTS['variant'])}")
    parser.add_argument("--betas", nargs="+", type=float, default=None)
    parser.add_argument("--floors", nargs="+", type=float, default=None)
    parser.add_argument("--warmups", nargs="+", type=int, default=None)
    parser.add_argument("--refresh", nargs="+", type=int, default=None,
                        help="refresh intervals N (measure every N steps)")
    parser.add_argument("--sensors", nargs="+", default=None, metavar="NAME",
                        help=f"sensors to consider, of {' '.join(SENSORS)} (default exact; "
                        "the approximate ones need K = 2)")
    parser.add_argument("--sensor-bias", nargs="+", default=None, metavar="NAME=B",
                        help="an approximate sensor's bias (ratio g_0/g_1 it reads over the "
                        "exact one) for your network, instead of the C-MAPSS CNN's measured one")
    parser.add_argument("--noise-max", type=float, default=0.5,
                        help="largest std of log λ of the smallest task (default 0.5)")
    parser.add_argument("--cost-max", type=float, default=1.3,
                        help="largest cost of a step × an equal-weights step (default 1.3)")
    parser.add_argument("--shortlist", type=int, default=20,
                        help="best replay candidates checked against the plant (default 20)")
    parser.add_argument("--no-plant", action="store_true", help="replay only")
    from .compare import add_engine_arguments

    group = parser.add_argument_group(
        "validation", "train the recommended setting, the published one and the lowest-ranked "
        "on the trace's subset and measure what was predicted (analysis/advise_validation.py); "
        "written to OUT/validation/")
    group.add_argument("--validate", action="store_true", help="train and compare")
    group.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4],
                       help="seeds of the validation runs (default 0 1 2 3 4)")
    group.add_argument("--quick", action="store_true",
                       help="smoke configuration (2 epochs of 30 batches)")
    group.add_argument("--epochs", type=int, default=None, help="epochs per run")
    group.add_argument("--max-batches", type=int, default=None)
    group.add_argument("--data-dir", default=None, help="C-MAPSS directory")
    group.add_argument("--cached-only", action="store_true",
                       help="train nothing: tabulate the validation runs already in the cache")
    group.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_engine_arguments(group)
    return parser


def _parse_biases(items) -> dict[str, float] | None:
    """``NAME=B`` pairs of ``--sensor-bias``; ``ValueError`` naming the flag."""
    if not items:
        return None
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            out[name] = float(value) if sep else math.nan
        except ValueError:
            out[name] = math.nan
        if not sep or not math.isfinite(out[name]):
            raise ValueError(f"--sensor-bias takes NAME=B with B a number, got {item!r}")
    return out


def run_from_args(args: argparse.Namespace) -> int:
    from gaba_control.trace import load_trace

    try:
        if args.out.exists() and not args.out.is_dir():
            raise ValueError(f"--out {args.out} exists and is not a directory")
        trace = load_trace(args.trace)
        advice = advise(trace, noise_max=args.noise_max, cost_max=args.cost_max,
                        shortlist=args.shortlist, plant=not args.no_plant,
                        sensors=args.sensors, sensor_biases=_parse_biases(args.sensor_bias),
                        variant=args.variants, beta=args.betas, floor=args.floors,
                        warmup=args.warmups, refresh=args.refresh)
        advice.write(args.out)
        validation = None
        if args.validate:
            from .advise_validation import validate_advice

            validation = validate_advice(
                advice, seeds=args.seeds, cache=args.cache, jobs=args.jobs,
                threads=args.threads, backend=args.backend, progress=not args.no_progress,
                cached_only=args.cached_only, quick=args.quick, epochs=args.epochs,
                max_batches=args.max_batches, data_dir=args.data_dir)
            validation.write(args.out / "validation")
    except (ValueError, TypeError, OSError) as error:
        print(f"gaba-control advise: {error}", file=sys.stderr)
        return 2
    print(advice.markdown())
    if validation is not None:
        print(validation.markdown())
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run_from_args(add_arguments(argparse.ArgumentParser(description=__doc__))
                           .parse_args()))
