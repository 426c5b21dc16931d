"""GABA's own pipeline fed a constant sensor reading: the open-loop schedule."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from gaba_control._validation import check_positive_int

from ._base import Option, WeightingMethod, register

__all__ = ["DEFAULT_SCHEDULE_TRACE", "Schedule", "median_ratio", "schedule_weights"]

#: The committed reference trace whose median post-warmup ratio is the default schedule.
DEFAULT_SCHEDULE_TRACE = Path(__file__).resolve().parents[2] / "results/traces/FD001-gaba-seed0.npz"


def schedule_weights(
    ratio: float,
    num_steps: int,
    *,
    num_tasks: int = 2,
    beta: float = 0.99,
    warmup: int = 100,
    lambda_min: float = 0.05,
) -> np.ndarray:
    """GABA's open-loop ``λ*`` ``(num_steps, K)`` for the constant reading ``g = (R, 1, …)``.

    The same controller (warmup, EMA, floor) as the closed loop, but its
    sensor sees a constant ratio ``R = g_1/g_k`` instead of the measured norms:
    a schedule that only depends on time.

    Examples
    --------
    >>> w = schedule_weights(1000.0, 400, warmup=100)
    >>> w[99].tolist(), bool(w[-1, 0] < w[150, 0] < 0.5)
    ([0.5, 0.5], True)
    """
    from gaba_control.controller import GABAController

    if not (math.isfinite(ratio) and ratio > 0):
        raise ValueError(f"schedule ratio must be a finite number > 0, got {ratio!r}")
    check_positive_int(num_steps, "num_steps")
    g = np.ones(num_tasks)
    g[0] = ratio
    controller = GABAController(num_tasks, beta=beta, warmup=warmup, lambda_min=lambda_min)
    return controller.run(np.tile(g, (num_steps, 1))).weights


def median_ratio(trace) -> float:
    """Median ``g_1/g_2`` over the post-warmup, valid steps of ``trace`` (a :class:`Trace`)."""
    g = np.asarray(trace.grad_norms, dtype=np.float64)
    keep = np.asarray(trace.active, bool) & np.asarray(trace.valid, bool) & (g[:, 1] > 0)
    if not keep.any():
        raise ValueError("trace has no valid post-warmup step to take a ratio from")
    return float(np.median(g[keep, 0] / g[keep, 1]))


@register
class Schedule(WeightingMethod):
    """GABA's pipeline (warmup, EMA, floor) on the constant reading ``g = (R, 1)``.

    ``R`` is ``--schedule-ratio``, else the median post-warmup ``g_1/g_2`` of
    ``--schedule-from TRACE``, else of :data:`DEFAULT_SCHEDULE_TRACE`. In
    ``compare`` it is the median ratio of the subset's GABA run on the first seed.
    """

    name = "schedule"
    description = "GABA fed a constant ratio (open loop)"
    options = (
        Option("schedule_ratio", "schedule: the constant sensor reading g = (R, 1)",
               metavar="R"),
        Option("schedule_from", "schedule: R = median post-warmup g_rul/g_health of this trace "
               "(default: the committed results/traces/FD001-gaba-seed0.npz)",
               type=str, metavar="TRACE", in_cache_key=False),
    )
    reference = "gaba"

    def check(self) -> None:
        ratio = self.settings["schedule_ratio"]
        if ratio is not None and not (isinstance(ratio, (int, float)) and math.isfinite(ratio)
                                      and ratio > 0):
            raise ValueError(f"schedule_ratio must be a finite number > 0, got {ratio!r}")
        self.ratio, self.ratio_from = self.resolve_ratio()

    def resolve_ratio(self) -> tuple[float, str]:
        """The ratio ``R`` and where it came from."""
        from gaba_control.trace import load_trace

        if self.settings["schedule_ratio"] is not None:
            return float(self.settings["schedule_ratio"]), "--schedule-ratio"
        origin = self.settings["schedule_from"]
        path = Path(origin) if origin else DEFAULT_SCHEDULE_TRACE
        if not path.is_file():
            raise ValueError(
                f"schedule needs --schedule-ratio or --schedule-from TRACE; the "
                f"{'given' if origin else 'default reference'} trace {path} does not exist"
            )
        return median_ratio(load_trace(path)), f"median post-warmup ratio of {path}"

    def trajectory(self, num_steps: int) -> np.ndarray:
        c = self.controller
        return schedule_weights(self.ratio, num_steps, num_tasks=self.num_tasks, beta=c["beta"],
                                warmup=c["warmup"], lambda_min=c["lambda_min"])

    def summary(self, source=None) -> dict:
        out = {"method": self.name, "ratio": self.ratio, "ratio_from": self.ratio_from}
        if source is not None:
            out["final_weights"] = source.table[-1].tolist()
        return out

    @classmethod
    def plan(cls, options: dict, *, seeds, index: int, reference_runs) -> tuple:
        if options.get("schedule_ratio") is not None:
            return dict(options), {}
        from gaba_control.trace import load_trace

        directory = Path(reference_runs[seeds[0]])
        path = directory / "trace.npz"
        try:
            ratio = median_ratio(load_trace(path))
        except (OSError, ValueError) as error:  # the reference crashed: the job records it
            return dict(options), {"plan_error": f"no schedule ratio from {path}: {error}"}
        return ({**options, "schedule_ratio": ratio},
                {"schedule_of": {"seed": seeds[0], "hash": directory.name}})
