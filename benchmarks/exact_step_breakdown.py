"""Where the exact sensor's step spends its time beyond the floor's, part by part.

Run: ``python -m benchmarks.exact_step_breakdown [--rounds 80] [--tasks 2] [--threads N]``.

:mod:`benchmarks.bench_sensors` times whole steps: ``exact`` against ``floor``
(forward, ``K`` backward passes, their sum, optimizer step). This script splits
both steps (the benchmark's own, ``Runner.step``, on the same C-MAPSS CNN, batch
and optimizer) into parts by timing each function they call through a wrapper
installed for the run: the forward, the backward passes
(``torch.autograd.grad``, the same call in both), the optimizer step, and for
``exact`` each part of :meth:`GABALoss.forward` and of the injected gradient's
backward. The steps alternate, one of each per round; every part is the median
over the rounds, in µs, and ``excess`` the median of the per-round
``exact − floor``. The parts are disjoint: ``task_gradients`` is what it costs
beyond its backward passes, ``GABALoss.forward, the rest`` and
``loss.backward(), the rest`` what those calls cost beyond the parts timed
inside them; ``zero_grad``, the same in both, is in neither. A wrapped call
costs about a microsecond itself (printed, not subtracted), so parts below
~10 µs are at the limit of what this reads.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import statistics
import sys
import time
from collections import defaultdict

import torch

import gaba_control.nn._inject as inject_module
import gaba_control.nn.gaba_loss as gaba_module
from benchmarks.bench_sensors import MultiHead, Runner, synthetic_batch

#: functions of gaba_loss's namespace that one exact step calls, timed each
MODULE_PARTS = ("as_loss_list", "as_param_lists", "task_gradients", "check_reaches_shared",
                "exact_norms", "_detached_values", "inject")
#: GABALoss methods of the same step
METHOD_PARTS = ("_check_params_cover", "_synced", "_step_with", "_finite")


def _timer(fn, key: str, sink: dict):
    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            sink[key] += time.perf_counter() - start
    return timed


@contextlib.contextmanager
def _patched(owner, name: str, key: str, sink: dict):
    """``owner.name`` timed into ``sink[key]`` for the duration of the block."""
    original = getattr(owner, name)
    setattr(owner, name, _timer(original, key, sink))
    try:
        yield
    finally:
        setattr(owner, name, original)


def _instrumented(sink: dict, runners) -> contextlib.ExitStack:
    """Every timed function wrapped into ``sink`` (the runners' optimizer steps included)."""
    stack = contextlib.ExitStack()
    stack.enter_context(_patched(MultiHead, "losses", "forward", sink))
    stack.enter_context(_patched(torch.autograd, "grad", "backward passes", sink))
    stack.enter_context(_patched(torch.Tensor, "backward", "loss.backward()", sink))
    stack.enter_context(_patched(gaba_module.GABALoss, "forward", "GABALoss.forward", sink))
    for name in MODULE_PARTS:
        stack.enter_context(_patched(gaba_module, name, name, sink))
    for name in METHOD_PARTS:
        stack.enter_context(_patched(gaba_module.GABALoss, name, name, sink))
    stack.enter_context(_patched(inject_module, "combine_gradients", "combine (backward)", sink))
    for runner in runners:
        stack.enter_context(_patched(runner.opt, "step", "optimizer", sink))
        stack.enter_context(_patched(runner.opt, "zero_grad", "zero_grad", sink))
    return stack


def _disjoint(method: str, sink: dict) -> dict:
    """The step's nested timings as disjoint parts that add up to the step but for
    ``zero_grad`` (the same call in both steps, left out of both)."""
    parts = dict(sink)
    zero_grad = parts.pop("zero_grad")
    if method == "floor":  # forward, the passes, and the rest of the benchmark's floor step
        del parts["optimizer"]
        parts["sum + optimizer"] = (parts["step"] - zero_grad - parts["forward"]
                                    - parts["backward passes"])
        return parts
    inside = sum(parts[name] for name in (*MODULE_PARTS, *METHOD_PARTS))
    parts["GABALoss.forward, the rest"] = parts.pop("GABALoss.forward") - inside
    parts["task_gradients"] -= parts["backward passes"]
    parts["loss.backward(), the rest"] = parts.pop("loss.backward()") - parts["combine (backward)"]
    return parts


def breakdown(rounds: int = 80, warm: int = 5, num_tasks: int = 2) -> dict:
    """Per-round part times (s) of the two steps: ``{"floor": {part: [..]}, "exact": ..}``.

    Each step is the benchmark's own (:meth:`benchmarks.bench_sensors.Runner.step`),
    with the instrumentation installed once for the whole run.
    """
    if rounds < 1 or warm < 0:
        raise ValueError(f"rounds must be >= 1 and warm >= 0, got {rounds} and {warm}")
    torch.manual_seed(0)
    base = MultiHead(num_tasks)
    batch = synthetic_batch(torch.device("cpu"))
    runners = {m: Runner(m, copy.deepcopy(base), num_tasks) for m in ("floor", "exact")}
    out: dict = {m: defaultdict(list) for m in runners}
    sink: dict = defaultdict(float)
    with _instrumented(sink, runners.values()):
        for r in range(warm + rounds):
            for method in (("floor", "exact") if r % 2 == 0 else ("exact", "floor")):
                sink.clear()
                start = time.perf_counter()
                runners[method].step(batch)
                sink["step"] = time.perf_counter() - start
                if r >= warm:
                    for part, seconds in _disjoint(method, sink).items():
                        out[method][part].append(seconds)
    return out


def wrapper_cost_us(calls: int = 20_000) -> float:
    """Median cost of one timed call of a no-op (µs): the instrumentation's own."""
    sink: dict = defaultdict(float)
    timed = _timer(lambda: None, "x", sink)
    samples = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(calls):
            timed()
        samples.append((time.perf_counter() - start) / calls)
    return 1e6 * statistics.median(samples)


#: the rows in the order a step runs them
_ORDER = ("forward", "as_loss_list", "as_param_lists", "_check_params_cover",
          "backward passes", "task_gradients", "check_reaches_shared", "exact_norms",
          "_synced", "_detached_values", "_step_with", "_finite", "inject",
          "GABALoss.forward, the rest", "sum + optimizer", "combine (backward)",
          "loss.backward(), the rest", "optimizer", "step")


def table(parts: dict) -> str:
    def us(values):
        return f"{1e6 * statistics.median(values):.0f}"

    lines = ["| step | part | µs (median) |", "| --- | --- | --- |"]
    for method in ("floor", "exact"):
        for part, values in sorted(parts[method].items(), key=lambda kv: _ORDER.index(kv[0])):
            if part != "step":
                lines.append(f"| {method} | {part} | {us(values)} |")
        lines.append(f"| {method} | **whole step** | {us(parts[method]['step'])} |")
    excess = [a - b for a, b in zip(parts["exact"]["step"], parts["floor"]["step"], strict=True)]
    lines.append(f"| exact − floor | **excess, paired by round** | {us(excess)} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=80, help="timed rounds (default 80)")
    parser.add_argument("--tasks", type=int, default=2, help="K (default 2)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds must be >= 1, got {args.rounds}")
    if args.tasks < 2:
        parser.error(f"--tasks must be >= 2, got {args.tasks}")
    if args.threads:
        torch.set_num_threads(args.threads)
    parts = breakdown(args.rounds, num_tasks=args.tasks)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, C-MAPSS CNN, "
          f"K = {args.tasks}, batch 256, {args.rounds} rounds (one floor and one exact step "
          f"each, alternating order)\n")
    print(table(parts))
    print(f"\ninstrumentation: {wrapper_cost_us():.2f} µs per timed call (not subtracted)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
