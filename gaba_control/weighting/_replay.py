"""Another run's recorded ``λ*`` applied step by step, open loop."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ._base import Option, WeightingMethod, register

__all__ = ["Replay", "replay_weights"]


def replay_weights(trace, num_steps: int, controller: dict) -> np.ndarray:
    """The first ``num_steps`` rows of ``trace.weights`` (``λ*``), checked against this run.

    Raises
    ------
    ValueError
        The trace's ``K``, length (fewer than ``num_steps`` steps), start step
        or controller configuration (``beta``, ``warmup``, ``lambda_min``) does
        not fit; the message names the mismatch.
    """
    if trace.num_tasks != controller["num_tasks"]:
        raise ValueError(
            f"replay trace has K={trace.num_tasks} tasks, this run has K={controller['num_tasks']}"
        )
    if len(trace) < num_steps:
        raise ValueError(
            f"replay trace has {len(trace)} steps, fewer than this run's {num_steps} steps"
        )
    if len(trace) and int(trace.step[0]) != 1:
        raise ValueError(f"replay trace must start at step 1, starts at {int(trace.step[0])}")
    for key in ("beta", "warmup", "lambda_min"):
        recorded, ours = trace.controller.get(key), controller[key]
        if recorded is None or not math.isclose(float(recorded), float(ours), rel_tol=0, abs_tol=0):
            raise ValueError(
                f"replay trace controller configuration does not fit: {key}={recorded!r} in the "
                f"trace, {key}={ours!r} in this run"
            )
    return np.asarray(trace.weights[:num_steps], dtype=np.float64)


@register
class Replay(WeightingMethod):
    """The ``λ*`` of ``--replay-trace`` (same ``K`` and controller, ≥ as many steps).

    In ``compare``, seed ``s_i`` replays the GABA run on the next seed
    ``s_{i+1}`` (cyclically), so the trajectory is GABA's but the noise it
    reacted to is another run's.
    """

    name = "replay"
    description = "the λ* of --replay-trace, open loop"
    options = (
        Option("replay_trace", "replay: apply this trace's λ* step by step (same K, controller "
               "settings, >= as many steps)", type=str, metavar="TRACE", in_cache_key=False),
    )
    reference = "gaba"

    def check(self) -> None:
        if not self.settings["replay_trace"]:
            raise ValueError("method 'replay' needs --replay-trace PATH")

    def trajectory(self, num_steps: int) -> np.ndarray:
        from gaba_control.trace import load_trace

        trace = load_trace(self.settings["replay_trace"])
        return replay_weights(trace, num_steps, self.controller)

    def summary(self, source=None) -> dict:
        return {"method": self.name, "replay_trace": str(self.settings["replay_trace"])}

    @classmethod
    def plan(cls, options: dict, *, seeds, index: int, reference_runs) -> tuple:
        directory = Path(reference_runs[seeds[(index + 1) % len(seeds)]])
        return ({**options, "replay_trace": str(directory / "trace.npz")},
                {"replay_of": {"seed": seeds[(index + 1) % len(seeds)],
                               "hash": directory.name}})
