"""Cost of GABALoss's sensor modes per training step, and the bias of the approximate sensors.

Run: ``python -m benchmarks.bench_sensors [--quick] [--device cuda] [--bias]``.

Timing: one training step (forward, gradient work, optimizer step) of the
C-MAPSS CNN (:class:`gaba_control.cmapss.model.MultiTaskCNN`, batch 256,
synthetic windows) and of a wider backbone, with ``K`` heads (RUL and health,
plus extra regression heads for ``K > 2``). Every method has its own copy of
the model and optimizer, and the methods are timed *interleaved* (one step of
each, in rotating order, repeated), so a change of machine load hits them
alike; the table gives medians in ms (for ``refresh10`` the median refresh step and
the median held step mixed 1 : 9, so the refresh steps count) and ratios to ``equal``
(one backward of ``Σ L_i / K``) and to ``floor``: forward, ``K`` full backward passes
(``autograd.grad``), their sum, optimizer step, the least any exact sensor can cost,
``(F + K·B + O)/(F + B + O)`` of ``equal``, so ``exact``'s "× floor" is its overhead.
A ratio is paired by round (:func:`paired_ratios`: the median of each round's
``t_method / t_reference``), so the machine's drift between rounds cancels; the notes
under the table give ``exact``'s ratio to the floor pooled over every round of every
repeat, with a distribution-free 95 % interval of its median.
Peak memory: CUDA ``max_memory_allocated``; CPU the RSS high-water mark (``VmHWM``,
reset after one warm-up step) above the RSS at that point, over the next 10 training
steps, each method in a fresh subprocess with a fixed glibc mmap threshold so freed
tensors leave the RSS
(``tracemalloc`` cannot see torch's allocator).

``--repeat R`` (default 5): the whole interleaved timing R times over fresh models; a
row then gives the median ms and the median of the R ratios with their range. On a
shared (virtual) machine a single timing's ratio of medians moved by up to a tenth from
run to run, which decides a target that lies this close; the paired ratios move less.

``--malloc retain``: times with glibc told to keep freed memory for reuse
(``mallopt``: trim threshold 1 GiB, mmap threshold 32 MiB) instead of its
default of handing large freed blocks back to the kernel and faulting fresh
zeroed pages in on the next allocation. The default costs every method page
faults on every step, ``exact`` (more live memory per step) the most; PyTorch's
CPU tuning guide recommends an alternative allocator (jemalloc, tcmalloc) for
this reason. Peak memory is measured the same way under both settings.

``--bias``: trains the C-MAPSS model (FD001, real data) with the exact sensor
and, on the same batches and parameters, also reads the two approximate
sensors; each norm sequence is replayed through a :class:`GABALoss`, and the
table compares the RUL/health norm ratio and ``λ_RUL`` of each sensor.
"""

from __future__ import annotations

import argparse
import copy
import ctypes
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from gaba_control.cmapss.model import MultiTaskCNN
from gaba_control.formulas import raw_weights
from gaba_control.nn import GABALoss
from gaba_control.nn._sensor import task_gradients

METHODS = ("equal", "floor", "naive", "exact", "refresh10", "last_layer", "representation")
#: backbone backward passes per step (average), for K tasks
PASSES = {
    "equal": lambda k: "1",
    "floor": lambda k: f"{k}",
    "naive": lambda k: f"{k + 1}",
    "exact": lambda k: f"{k}",
    "refresh10": lambda k: f"1 + {k - 1}/10",
    "last_layer": lambda k: f"{k} partial + 1",
    "representation": lambda k: f"{k} heads-only + 1",
}
BACKBONES = {
    "cmapss": {},  # the model the project trains: 64 channels, 256 features
    "wide": {"conv_channels": 128, "hidden": 512},
}
CHANNELS, WINDOW, BATCH = 14, 30, 256
REFRESH = 10


class MultiHead(nn.Module):
    """MultiTaskCNN's backbone with ``K`` heads: RUL (MSE), health (CE), extra MSE heads."""

    def __init__(self, num_tasks: int, **cnn_kwargs):
        super().__init__()
        cnn = MultiTaskCNN(CHANNELS, WINDOW, **cnn_kwargs)
        self.backbone = cnn.backbone
        hidden = cnn.rul_head[0].in_features
        extra = [
            nn.Sequential(nn.Linear(hidden, 64), nn.ReLU(), nn.Linear(64, 1))
            for _ in range(num_tasks - 2)
        ]
        self.heads = nn.ModuleList([cnn.rul_head, cnn.health_head, *extra])

    def last_shared(self) -> nn.Module:
        return [m for m in self.backbone if isinstance(m, nn.Linear)][-1]

    def losses(self, x, rul, health):
        z = self.backbone(x)
        out = [nn.functional.mse_loss(self.heads[0](z).squeeze(-1), rul)]
        out.append(nn.functional.cross_entropy(self.heads[1](z), health))
        for i, head in enumerate(self.heads[2:], start=2):
            out.append(nn.functional.mse_loss(head(z).squeeze(-1), rul * (0.5 + 0.25 * i)))
        return out, z


def synthetic_batch(device, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(BATCH, CHANNELS, WINDOW, generator=gen)
    rul = torch.rand(BATCH, generator=gen) * 125.0
    health = torch.randint(0, 3, (BATCH,), generator=gen)
    return x.to(device), rul.to(device), health.to(device)


class _WithoutNorms(GABALoss):
    """``exact − norms``: the per-task gradients as the exact sensor takes them, no norms."""

    def _read_exact(self, losses, params, shared_index):
        grads = task_gradients(losses, params, retain_last=False)
        return grads, torch.ones(len(losses), dtype=self.ema.dtype, device=self.ema.device)


class _WithoutLoop(GABALoss):
    """``exact − loop``: the exact sensor's reading, the weights held (no loop update)."""

    def _advance(self, norms, losses=None):
        return self.last_weights


#: ``--ablate``: the exact sensor with one part of its own work taken out (timing only: the
#: weights these steps apply are not GABA's), to show where its cost above the floor goes
ABLATIONS = {"exact − norms": _WithoutNorms, "exact − loop": _WithoutLoop}
PASSES.update({name: PASSES["exact"] for name in ABLATIONS})


class Runner:
    """One method's model, optimizer and loss module; ``step()`` is one training step."""

    def __init__(self, method: str, model: MultiHead, num_tasks: int):
        self.method = method
        self.model = model
        self.opt = torch.optim.Adam(model.parameters(), lr=1e-4)
        kwargs = {"warmup": 0}
        if method == "refresh10":
            self.gaba = GABALoss(num_tasks, refresh_every=REFRESH, **kwargs)
        elif method in ABLATIONS:
            self.gaba = ABLATIONS[method](num_tasks, **kwargs)
        elif method not in ("equal", "floor"):
            self.gaba = GABALoss(num_tasks, sensor=method, **kwargs)
        if method not in ("equal", "floor"):
            self.gaba.to(next(model.parameters()).device)
        self.num_tasks = num_tasks

    def step(self, batch) -> None:
        # Gradients cleared first, as in PyTorch's own training-loop idiom: the last step's
        # .grad is freed before this step's gradients are allocated, so the allocator can
        # reuse its memory (clearing it only before backward() keeps it alive through the
        # exact sensor's K backward passes, and glibc's default allocator then faults fresh
        # pages in: about 1,100 more per step here, a few per cent of the step).
        self.opt.zero_grad(set_to_none=True)
        losses, z = self.model.losses(*batch)
        if self.method == "floor":
            self._floor_step(losses)
            return
        if self.method == "equal":
            loss = sum(losses) / self.num_tasks
        else:
            extra = {}
            if self.method == "last_layer":
                extra["sensor_params"] = self.model.last_shared().parameters()
            elif self.method == "representation":
                extra["representation"] = z
            loss = self.gaba(
                losses, self.model.parameters(), self.model.backbone.parameters(), **extra
            )
        loss.backward()
        self.opt.step()


    def _floor_step(self, losses) -> None:
        """What any exact sensor must do at least: K full backward passes, one combination.

        Each task's gradient on every parameter (``autograd.grad``, the graph
        kept for the next task), their equal-weight sum written into ``.grad``,
        one optimizer step. No norm, no check, no state: the cost
        ``(F + K·B + O)/(F + B + O)`` of an equal-weights step that the exact
        sensor is measured against. ``O`` is the same bookkeeping in both: the
        floor's gradients are cleared at the start of its step as every other
        row's are (``zero_grad(set_to_none=True)``, about 0.2 ms for 14
        parameters here), although it then assigns ``.grad``.
        """
        params = [p for p in self.model.parameters() if p.requires_grad]
        last = len(losses) - 1
        grads = [torch.autograd.grad(loss, params, retain_graph=i < last, allow_unused=True)
                 for i, loss in enumerate(losses)]
        for j, p in enumerate(params):
            parts = [g[j] for g in grads if g[j] is not None]
            if not parts:
                p.grad = None
                continue
            total = parts[0].contiguous()  # in place on the first task's (fresh) gradient
            for g in parts[1:]:
                total.add_(g)
            p.grad = total.div_(self.num_tasks)
        self.opt.step()


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass(frozen=True)
class Timing:
    """One interleaved timing: ms per step, refresh10's step types, minor page faults per step."""

    ms: dict
    refresh: dict
    faults: dict
    refresh_faults: dict
    times: dict  # method → its step times (s), one per round, in round order


def time_methods(backbone, num_tasks, device, reps, warm, methods=METHODS) -> Timing:
    """Median ms per step of each method, timed interleaved in one process.

    Also counts the minor page faults of each step (``getrusage``, CPU): on glibc's default
    allocator large freed blocks go back to the kernel, so the next step faults fresh pages
    in, which is the difference ``--malloc retain`` removes.
    """
    torch.manual_seed(0)
    base = MultiHead(num_tasks, **BACKBONES[backbone]).to(device)
    runners = [Runner(m, copy.deepcopy(base), num_tasks) for m in methods]
    batch = synthetic_batch(device)
    times = {m: [] for m in methods}
    faults = {m: [] for m in methods}
    for r in range(warm + reps):
        shift = r % len(runners)
        for runner in runners[shift:] + runners[:shift]:  # rotate the order every round
            _sync(device)
            faulted = _minor_faults()
            start = time.perf_counter()
            runner.step(batch)
            _sync(device)
            if r >= warm:
                times[runner.method].append(time.perf_counter() - start)
                faults[runner.method].append(_minor_faults() - faulted)
    ms = {m: 1e3 * statistics.median(t) for m, t in times.items()}
    split = _refresh_split(times.get("refresh10", []), warm)
    if split:
        ms["refresh10"] = split["per_step"]
    mean_faults = {m: statistics.fmean(f) for m, f in faults.items()}
    refresh_faults = _refresh_split(faults.get("refresh10", []), warm, scale=1)
    return Timing(ms, split, mean_faults, refresh_faults, times)


def paired_ratios(times: dict, reference: str, warm: int) -> dict:
    """Each method's step time over ``reference``'s, paired by round: the median over rounds
    of ``t_m(r) / t_ref(r)``.

    Every method takes one step per round, so a round's steps lie within a few hundred
    milliseconds of each other, while the machine's speed drifts by up to a third over a
    minute (a shared virtual machine; the floor's median moved 28 → 37 ms between repeats
    here). A ratio of two medians over the whole timing carries that drift into each ratio;
    the per-round ratio cancels it. ``refresh10`` mixes its refresh and held rounds 1 : 9
    (:func:`_refresh_split` on the ratios), as its ms column does.
    """
    out = {}
    for method, t in times.items():
        ratios = _round_ratios(t, times[reference])
        split = _refresh_split(ratios, warm, scale=1) if method == "refresh10" else {}
        out[method] = split["per_step"] if split else statistics.median(ratios)
    return out


def _round_ratios(times: list[float], reference: list[float]) -> list[float]:
    """Each round's step time over the reference's step in the same round."""
    return [a / b for a, b in zip(times, reference, strict=True)]


def _minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _refresh_split(times: list[float], warm: int, scale: float = 1e3) -> dict:
    """refresh10's step types (``times`` in s, reported × ``scale``: ms by default): medians
    of its refresh steps and of its held steps, and their mix
    ``(refresh + (REFRESH − 1)·held) / REFRESH``, the typical cost per step.

    Warmup 0: refreshes at t = 1, 11, …; ``times[i]`` is step ``warm + i + 1``. Every other row
    of the table is a median, which ignores the odd slow step; the mix of two medians keeps
    refresh10 comparable with them. The mean of 10-step blocks (``block_mean``, each block
    holding one refresh) counts any slow step in full; the notes under the table print it.
    """
    refresh = [t for i, t in enumerate(times) if (warm + i) % REFRESH == 0]
    held = [t for i, t in enumerate(times) if (warm + i) % REFRESH != 0]
    if not refresh or not held:
        return {}
    split = {"refresh": statistics.median(refresh), "held": statistics.median(held)}
    split["per_step"] = (split["refresh"] + (REFRESH - 1) * split["held"]) / REFRESH
    first = (-warm) % REFRESH  # the first refresh in the timed steps
    blocks = [times[i : i + REFRESH] for i in range(first, len(times) - REFRESH + 1, REFRESH)]
    split["block_mean"] = statistics.median(map(statistics.fmean, blocks)) if blocks else math.nan
    return {k: scale * v for k, v in split.items()}


def peak_memory_mb(backbone, num_tasks, device, method, steps=REFRESH) -> float:
    """Extra peak memory of ``steps`` training steps (CUDA allocator, or CPU RSS high-water).

    The default window of ``REFRESH`` steps after one warm-up step holds one refresh of
    ``refresh10`` (warmup 0: refreshes at t = 1, 11, …), so its peak is that of a refresh.
    """
    if device.type == "cuda":
        torch.manual_seed(0)
        runner = Runner(method, MultiHead(num_tasks, **BACKBONES[backbone]).to(device), num_tasks)
        batch = synthetic_batch(device)
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        for _ in range(steps):
            runner.step(batch)
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - before) / 2**20
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.bench_sensors",
        "--memory-child",
        json.dumps({"backbone": backbone, "k": num_tasks, "method": method, "steps": steps}),
    ]
    # A fixed mmap threshold stops glibc from raising it after the first large free, which
    # would keep freed activations resident and hide later steps' peaks behind the warm-up's.
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(64 * 1024)}
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    return float(out.stdout.strip().splitlines()[-1])


def _memory_child(spec: str) -> None:
    spec = json.loads(spec)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    runner = Runner(spec["method"], MultiHead(spec["k"], **BACKBONES[spec["backbone"]]), spec["k"])
    batch = synthetic_batch(torch.device("cpu"))
    runner.step(batch)  # allocates the optimizer state and the lazy kernels' caches
    before = _reset_rss_peak()
    for _ in range(spec["steps"]):
        runner.step(batch)
    print((_rss_peak_kib() - before) / 1024)


def _proc_status_kib(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def _reset_rss_peak() -> int:
    """Reset the RSS high-water mark to the current RSS and return it (KiB).

    Linux resets ``VmHWM`` on writing ``5`` to ``/proc/self/clear_refs``; without it the
    peak of ``import torch`` and model set-up would hide a training step's (the column
    read 0 before). Elsewhere, fall back to ``ru_maxrss`` (a lower bound on the step's peak).
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return _proc_status_kib("VmRSS")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _rss_peak_kib() -> int:
    try:
        return _proc_status_kib("VmHWM")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


#: glibc ``mallopt`` parameters (malloc.h) and the values ``--malloc retain`` sets
MALLOC_RETAIN = {"M_TRIM_THRESHOLD": (-1, 1 << 30), "M_MMAP_THRESHOLD": (-3, 32 << 20)}


def retain_freed_memory() -> None:
    """Make glibc's malloc keep freed memory in the heap for reuse (``--malloc retain``).

    Raises ``RuntimeError`` where the C library has no ``mallopt`` (not glibc)
    or refuses a value, rather than timing something other than what was asked.
    """
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is None:
        raise RuntimeError("--malloc retain needs glibc's mallopt, which this C library lacks")
    for name, (param, value) in MALLOC_RETAIN.items():
        if mallopt(ctypes.c_int(param), ctypes.c_int(value)) != 1:
            raise RuntimeError(f"mallopt({name}, {value}) was refused by the C library")


def _load() -> str:
    return "load average (1/5/15 min): " + " / ".join(f"{v:.2f}" for v in os.getloadavg())


def benchmark_table(args) -> str:
    device = torch.device(args.device)
    lines = [
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"device {device}, threads {torch.get_num_threads()}, batch {BATCH}, "
        f"{args.reps} interleaved steps per method (median), repeated {args.repeat}×, "
        f"malloc {args.malloc}, "
        f"{_load()} at start",
        "",
    ]
    header = "| backbone | K | method | backbone backward passes | ms/step | × equal |"
    header += f" × equal, range of {args.repeat} |" if args.repeat > 1 else ""
    header += " × floor |" + (f" × floor, range of {args.repeat} |" if args.repeat > 1 else "")
    cpu = device.type == "cpu"
    header += " page faults/step |" if cpu else ""
    header += " peak MB | peak × equal |" if args.memory else ""
    lines += [header, header_rule(header)]
    notes: list[str] = []
    if args.stream:
        print("\n".join(lines), flush=True)
    for backbone in args.backbones:
        for k in args.ks:
            runs = [
                time_methods(backbone, k, device, args.reps, args.warm, args.methods)
                for _ in range(args.repeat)
            ]
            ms = _median_of([r.ms for r in runs])
            faults = _median_of([r.faults for r in runs])
            ratios = [paired_ratios(r.times, "equal", args.warm) for r in runs]
            floors = [paired_ratios(r.times, "floor", args.warm) for r in runs]
            notes.append(_pooled_note(backbone, k, runs))
            if runs[0].refresh:
                split = _median_of([r.refresh for r in runs])
                if cpu:
                    split["faults"] = _median_of([r.refresh_faults for r in runs])["refresh"]
                    split["exact_faults"] = faults["exact"]
                notes.append(_refresh_note(backbone, k, ms, split))
            mem = (
                {m: peak_memory_mb(backbone, k, device, m) for m in args.methods}
                if args.memory else {}
            )
            for m in args.methods:
                row = f"| {backbone} | {k} | {m} | {PASSES[m](k)} | {ms[m]:.1f} | "
                row += f"{statistics.median(r[m] for r in ratios):.2f} |"
                if args.repeat > 1:
                    row += f" {min(r[m] for r in ratios):.2f}–{max(r[m] for r in ratios):.2f} |"
                row += f" {statistics.median(r[m] for r in floors):.3f} |"
                if args.repeat > 1:
                    row += f" {min(r[m] for r in floors):.3f}–{max(r[m] for r in floors):.3f} |"
                row += f" {faults[m]:.0f} |" if cpu else ""
                if args.memory:
                    ratio = mem[m] / mem["equal"] if mem["equal"] > 0 else float("nan")
                    row += f" {mem[m]:.0f} | {ratio:.2f} |"
                lines.append(row)
                if args.stream:
                    print(row, flush=True)
    lines += ["", *notes, "", f"{_load()} at end"]
    return "\n".join(lines)


def _pooled_note(backbone: str, k: int, runs: list[Timing]) -> str:
    """``exact``'s per-round ratio to the floor and its per-round excess over it (ms), pooled
    over every repeat, each with the distribution-free 95 % interval of its median
    (sign-test order statistics).

    The excess is what the sensor adds to a step (norms, checks, the loop, the injection):
    about constant, so the ratio depends on the machine's speed while the excess says on
    which floor step ``T`` the 3 % target holds (``T >= excess / 0.03``).
    """
    from analysis._common import median_interval

    pooled = [x for r in runs for x in _round_ratios(r.times["exact"], r.times["floor"])]
    median, low, high, coverage = median_interval(pooled)
    excess = [1e3 * (a - b) for r in runs
              for a, b in zip(r.times["exact"], r.times["floor"], strict=True)]
    ms, ms_low, ms_high, _ = median_interval(excess)
    head = f"- {backbone}, K = {k}: "
    return (f"{head}exact × floor pooled over the {len(pooled)} rounds of "
            f"the {len(runs)} repeats: median {median:.3f}, 95 % interval [{low:.3f}, "
            f"{high:.3f}] (coverage {coverage:.3f})\n"
            f"{head}exact − floor, the same rounds: median {ms:.2f} ms, 95 % interval "
            f"[{ms_low:.2f}, {ms_high:.2f}] ms; within 3 % of a floor step of "
            f"{ms / 0.03:.0f} ms or longer")


def _median_of(dicts: list[dict]) -> dict:
    """Key-wise median of dicts with the same keys (one per repeat)."""
    return {key: statistics.median(d[key] for d in dicts) for key in dicts[0]}


def _refresh_note(backbone: str, k: int, ms: dict, split: dict) -> str:
    block = split["block_mean"]
    return (
        f"- {backbone}, K = {k}: refresh10's refresh steps {split['refresh']:.1f} ms "
        f"(exact {ms['exact']:.1f}), its held steps {split['held']:.1f} ms "
        f"(equal {ms['equal']:.1f}); medians"
        + (
            f"; median of 10-step block means {block:.1f} ms ({block / ms['equal']:.2f}× equal)"
            if math.isfinite(block)
            else ""
        )
        + (
            f"; a refresh step faults {split['faults']:.0f} pages in "
            f"(exact {split['exact_faults']:.0f})"
            if "faults" in split
            else ""
        )
    )


def header_rule(header: str) -> str:
    return "|" + " --- |" * (header.count("|") - 1)


# ------------------------------------------------------------------ approximate-sensor bias


def sensor_bias(steps: int, report_at, subset="FD001", seed=0) -> str:
    """Norm ratio RUL/health and λ_RUL per sensor along one exact-sensor training run."""
    from gaba_control.cmapss.data import load_subset

    data = load_subset(subset)
    torch.manual_seed(seed)
    model = MultiTaskCNN(data.num_channels, data.window)
    gaba = GABALoss(2)  # the project's defaults: β 0.99, W 100, λ_min 0.05
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    shared = list(model.backbone.parameters())
    last = list(model.backbone[5].parameters())  # Linear(64·window → 256), the last shared layer
    norms = {"exact": [], "last_layer": [], "representation": []}
    n = data.x_train.shape[0]
    for _ in range(steps):
        idx = torch.randint(0, n, (BATCH,), generator=gen)
        x, rul, health = data.x_train[idx], data.rul_train[idx], data.health_train[idx]
        z = model.backbone(x)
        losses = [
            nn.functional.mse_loss(model.rul_head(z).squeeze(-1), rul),
            nn.functional.cross_entropy(model.health_head(z), health),
        ]
        for name, inputs in (("last_layer", last), ("representation", [z])):
            row = []
            for loss in losses:
                grads = torch.autograd.grad(loss, inputs, retain_graph=True)
                row.append(float(torch.sqrt(sum((g.double() ** 2).sum() for g in grads))))
            norms[name].append(row)
        loss = gaba(losses, model.parameters(), shared)
        norms["exact"].append(gaba.last_norms.tolist())
        opt.zero_grad()
        loss.backward()
        opt.step()
    lam = {name: GABALoss(2).update_from_norms(np.array(g)).numpy() for name, g in norms.items()}
    g = {name: np.array(v) for name, v in norms.items()}
    lines = [
        f"C-MAPSS {subset}, MultiTaskCNN, batch {BATCH}, Adam 1e-3, GABA defaults (β 0.99, "
        f"W 100, λ_min 0.05), trained with the exact sensor; seed {seed}",
        "",
        "| step | sensor | g_RUL / g_health | λ_RUL | λ_RUL − exact |",
        "| --- | --- | --- | --- | --- |",
    ]
    for t in report_at:
        for name in norms:
            ratio = g[name][t - 1, 0] / g[name][t - 1, 1]
            d = lam[name][t - 1, 0] - lam["exact"][t - 1, 0]
            lines.append(f"| {t} | {name} | {ratio:.3g} | {lam[name][t - 1, 0]:.4f} | {d:+.4f} |")
    lines.append("")
    active = slice(100, steps)
    for name in norms:
        own = g[name][:, 0] / g[name][:, 1]
        ratio = own / (g["exact"][:, 0] / g["exact"][:, 1])
        dev = np.abs(lam[name][active, 0] - lam["exact"][active, 0])
        raw_rul = np.median(raw_weights(g[name])[:, 0])
        lines.append(
            f"{name}: median g_RUL/g_health {np.median(own):.3g}, median ratio to exact's "
            f"{np.median(ratio):.3g}; median raw λ_RUL {raw_rul:.4f}; mean |λ*_RUL − exact| "
            f"over the active steps {dev.mean():.4f} (max {dev.max():.4f})"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: K=2, few steps")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (CPU)")
    parser.add_argument("--bias", action="store_true", help="approximate-sensor bias instead")
    parser.add_argument("--bias-steps", type=int, default=300)
    parser.add_argument("--ks", type=int, nargs="+", default=None, help="K values (2 4 8)")
    parser.add_argument("--backbones", nargs="+", default=None, choices=list(BACKBONES))
    parser.add_argument(
        "--reps", type=int, default=None, help="interleaved timed steps per method (default 60)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="time each table R times over fresh models; ratios are the median, with their "
        "range (default 5, --quick 1)",
    )
    parser.add_argument(
        "--malloc",
        choices=("default", "retain"),
        default="default",
        help="glibc malloc as configured, or told to keep freed memory (CPU timing)",
    )
    parser.add_argument(
        "--ablate",
        action="store_true",
        help="also time the exact sensor without its norms and without its loop update "
        "(rows 'exact − norms', 'exact − loop'): where its cost above the floor goes",
    )
    parser.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child is not None:
        _memory_child(args.memory_child)
        return 0
    if args.repeat is None:
        args.repeat = 1 if args.quick else 5
    if args.repeat < 1:
        parser.error(f"--repeat must be >= 1, got {args.repeat}")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.malloc == "retain":
        retain_freed_memory()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("CUDA is not available: skipping the CUDA benchmark")
        return 0
    if args.bias:
        steps = 30 if args.quick else args.bias_steps
        at = [1, 10, 30] if args.quick else [t for t in (1, 100, 101, 200, 300, 600) if t <= steps]
        print(sensor_bias(steps, at))
        return 0
    args.methods = METHODS + (tuple(ABLATIONS) if args.ablate else ())
    args.ks = args.ks or ([2] if args.quick else [2, 4, 8])
    args.backbones = args.backbones or (["cmapss"] if args.quick else list(BACKBONES))
    reps, args.warm = (10, 1) if args.quick else (60, 3)
    args.reps = args.reps or reps
    args.memory = not args.quick
    args.stream = not args.quick  # rows as they come (a full run takes minutes)
    table = benchmark_table(args)
    print("\n\n" + table if args.stream else table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
