"""Speed of the vectorised controller against a per-step Python loop of the same math.

Run: ``python -m benchmarks.bench_controller`` (add ``--quick`` for a smoke run).

Both sides compute the same loop through :mod:`gaba_control.formulas`, so the
ratio measures vectorisation (one ``lfilter`` pass along time) against a
Python loop over steps, in one process, side by side. Prints a Markdown
table; the README quotes its output.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from gaba_control import formulas as F
from gaba_control.controller import GABAController


def per_step_loop(g: np.ndarray, beta=0.99, warmup=100, lambda_min=0.05) -> np.ndarray:
    """The same math as GABAController, one Python iteration per step."""
    num_steps, num_tasks = g.shape
    ema = np.full(num_tasks, 1.0 / num_tasks)
    out = np.empty_like(g)
    for t in range(num_steps):
        if F.gate_is_open(t + 1, warmup) and F.measurement_is_valid(g[t]):
            ema = F.ema_update(ema, F.raw_weights(g[t]), beta)
            out[t] = F.floor_renormalise(ema, lambda_min)
        elif F.gate_is_open(t + 1, warmup):
            out[t] = F.floor_renormalise(ema, lambda_min)
        else:
            out[t] = 1.0 / num_tasks
    return out


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = parser.parse_args(argv)

    long_steps = 2 * 10**4 if args.quick else 10**6
    runs, run_steps = (50, 10**3) if args.quick else (1000, 10**4)
    rng = np.random.default_rng(0)
    g_long = rng.lognormal(sigma=1.0, size=(long_steps, 2)) * [500.0, 1.0]
    g_many = rng.lognormal(sigma=1.0, size=(runs, run_steps, 2)) * [500.0, 1.0]

    loop_s = best_of(lambda: per_step_loop(g_long), 1)
    run_s = best_of(lambda: GABAController(2).run(g_long), 5)
    check = g_long[:20000]
    same = np.max(np.abs(per_step_loop(check) - GABAController(2).run(check).weights))
    many_s = best_of(lambda: GABAController(2).run(g_many), 3)

    print(f"# controller benchmark ({platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, numpy {np.__version__}, "
          f"load average {os.getloadavg()[0]:.1f} at the end)\n")
    print("| case | time | ratio |")
    print("| --- | --- | --- |")
    print(f"| per-step Python loop, {long_steps:.0e} steps x K=2 | {loop_s:.2f} s | 1 |")
    print(f"| `GABAController.run`, {long_steps:.0e} steps x K=2 | {run_s * 1e3:.1f} ms "
          f"| {loop_s / run_s:.0f}x faster |")
    print(f"| `GABAController.run`, {runs} runs x {run_steps:.0e} steps x K=2 | {many_s:.2f} s | |")
    print(f"\nmax |loop - run| over 2e4 steps: {same:.1e}")


if __name__ == "__main__":
    main()
