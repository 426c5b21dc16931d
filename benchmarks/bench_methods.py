"""Cost per training step of every weighting method, side by side in one run.

Run: ``python -m benchmarks.bench_methods [--quick] [--repeat R]``.

One training step (forward, the method's gradient work, Adam step) of the
C-MAPSS CNN (:class:`gaba_control.cmapss.model.MultiTaskCNN`, batch 256,
synthetic windows, one torch thread). Each method has its own copy of the
model and optimizer; the methods are timed *interleaved* (one step of each,
in rotating order, repeated), so a change of machine load hits them alike.
Ratios are to ``equal``: one backward of ``Σ L_i / K``.

Each method is timed at the cost it needs, not at the training loop's (which
runs GABA's exact sensor beside every method so every trace records the same
telemetry):

* ``gaba``, ``gradnorm``, ``gradnorm_softmax``, ``upgrad``, ``mgda`` read the
  per-task gradients on the shared parameters: the :class:`LawLoss` /
  :class:`GABALoss` module with the exact sensor (``K`` backward passes; the
  Gramian for the aggregators; GradNorm reads all shared parameters here,
  not only the last shared layer as its paper does to save cost);
* ``uncertainty``, ``dwa`` read losses only: the law's torch step, then one
  backward of ``Σ w_i L_i``;
* ``famo`` as those, plus one forward pass of the same batch after the step.

``--repeat R`` repeats the whole interleaved timing over fresh models; a row
gives the median ms and the median of the R ratios with their range.
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import sys
import time

import torch
from torch import nn

from gaba_control.cmapss.model import MultiTaskCNN
from gaba_control.weighting import Measurement, get_method

CONTROLLER = {"num_tasks": 2, "beta": 0.99, "warmup": 100, "lambda_min": 0.05}
METHODS = ("equal", "gaba", "gradnorm", "gradnorm_softmax", "uncertainty", "dwa", "famo",
           "upgrad", "mgda")
LOSS_ONLY = ("uncertainty", "dwa", "famo")


def _losses(model, x, rul, health):
    rul_pred, logits = model(x)
    return [nn.functional.mse_loss(rul_pred, rul), nn.functional.cross_entropy(logits, health)]


class Step:
    """One method's training step on its own model copy."""

    def __init__(self, name: str, model: nn.Module, batch):
        self.name, self.model, self.batch = name, model, batch
        self.opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        method = get_method(name)(CONTROLLER) if name != "equal" else None
        self.law = None
        self.module = None
        if name in LOSS_ONLY:
            self.law = method.law(steps_per_epoch=55)
            self.state = self.law.initial_state(torch.zeros(2, dtype=torch.float64))
        elif name != "equal":
            self.module = method.module(10**6, steps_per_epoch=55)

    def __call__(self) -> None:
        losses = _losses(self.model, *self.batch)
        if self.name == "equal":
            loss = (losses[0] + losses[1]) / 2
        elif self.module is not None:
            loss = self.module(losses, self.model.parameters(), self.model.backbone.parameters())
        else:
            values = torch.stack([v.detach() for v in losses]).to(torch.float64)
            weights, self.state = self.law.step(
                self.state, Measurement(torch.ones(2, dtype=torch.float64), values))
            w = weights.to(losses[0].dtype)
            loss = w[0] * losses[0] + w[1] * losses[1]
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        if self.law is not None and self.law.post_step:
            with torch.no_grad():
                post = torch.stack(_losses(self.model, *self.batch)).to(torch.float64)
            self.state = self.law.after_step(self.state, post)


def time_methods(steps: int, *, batch_size: int = 256, seed: int = 0) -> dict[str, list[float]]:
    """Interleaved per-step wall times (s) of every method."""
    torch.manual_seed(seed)
    x = torch.randn(batch_size, 14, 30)
    batch = (x, torch.rand(batch_size) * 1.25, torch.randint(0, 3, (batch_size,)))
    base = MultiTaskCNN(14, 30)
    runners = [Step(name, copy.deepcopy(base), batch) for name in METHODS]
    for r in runners:  # warm-up: allocator, autograd graph caches
        for _ in range(3):
            r()
    times: dict[str, list[float]] = {name: [] for name in METHODS}
    for i in range(steps):
        order = runners[i % len(runners):] + runners[:i % len(runners)]
        for r in order:
            start = time.perf_counter()
            r()
            times[r.name].append(time.perf_counter() - start)
    return times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few steps (a smoke run)")
    parser.add_argument("--repeat", type=int, default=3, help="whole timings over fresh models")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per method")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    steps = args.steps or (5 if args.quick else 60)
    repeats = 1 if args.quick else args.repeat
    medians = {name: [] for name in METHODS}
    ratios = {name: [] for name in METHODS}
    for rep in range(repeats):
        times = time_methods(steps, seed=rep)
        equal = statistics.median(times["equal"])
        for name in METHODS:
            m = statistics.median(times[name])
            medians[name].append(m)
            ratios[name].append(m / equal)
    print(f"# Cost per training step, every method (× equal weights)\n\n"
          f"C-MAPSS CNN, batch 256, 1 torch thread, {steps} interleaved steps per method, "
          f"{repeats} repeat(s); torch {torch.__version__}, {platform.processor() or 'cpu'}, "
          f"Python {sys.version.split()[0]}. Command: `python -m benchmarks.bench_methods "
          f"{' '.join(argv if argv is not None else sys.argv[1:])}`.\n")
    print("| method | median ms | × equal (median of repeats) | range over repeats |")
    print("|---|---|---|---|")
    for name in METHODS:
        r = ratios[name]
        print(f"| {name} | {1e3 * statistics.median(medians[name]):.2f} | "
              f"{statistics.median(r):.2f} | {min(r):.2f}–{max(r):.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
