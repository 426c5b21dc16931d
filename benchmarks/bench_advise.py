"""Time the design assistant's replay: candidate settings × steps of a recorded run, one core.

``python -m benchmarks.bench_advise [--settings 10080] [--steps 10000] [--repeat 3]``
prints the median wall time of :func:`gaba_control.design.simulate_settings` over a
log-normal K = 2 norm sequence (the C-MAPSS ratio scale), for the full grid of the five
variants × β × floor × W × refresh (no plant: the plant check runs on a shortlist).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from gaba_control.design import Settings, simulate_settings

    settings = Settings.grid(
        variant=("gaba", "gaba_antiwindup", "gaba_inverse", "gaba_log_ema", "gaba_integral"),
        beta=(0.9, 0.95, 0.98, 0.99, 0.995, 0.998, 0.999),
        floor=(0.0, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1),
        warmup=(0, 25, 50, 100, 200, 400), refresh=(1, 2, 5, 10, 20, 50))
    rng = np.random.default_rng(0)
    g = np.exp(rng.normal(0, 1, (args.steps, 2))) * [600.0, 1.0]
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        simulate_settings(g, settings)
        times.append(time.perf_counter() - start)
    print(f"{len(settings)} settings × {args.steps} steps: median {np.median(times):.2f} s "
          f"(range {min(times):.2f}–{max(times):.2f}, {args.repeat} repeats, load average "
          f"{os.getloadavg()[0]:.2f})")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
