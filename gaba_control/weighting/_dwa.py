r"""Dynamic weight average, DWA (Liu, Johns & Davison, CVPR 2019, Eq. 7).

With ``L̄_k(e)`` the mean training loss of task ``k`` over epoch ``e``::

    r_k(e−1) = L̄_k(e−1) / L̄_k(e−2),   λ_k(e) = K exp(r_k(e−1)/T) / Σ_i exp(r_i(e−1)/T)

and ``λ = 1`` for the first two epochs; temperature ``T = 2`` (the paper's).
The weights sum to ``K`` and change only at epoch boundaries.

As a control loop: sensor ``L_k`` averaged over an epoch (a boxcar filter
sampled once an epoch); no reference: the law is a static map of the loss
*descent rates* (a task whose loss falls slower gets more weight), a
derivative action on the log-loss; state: the last two epoch means. The map
is bounded: every weight lies in ``K·(0, 1)``, and with ``r`` in a range
``[a, b]``, in ``[K/(1 + (K−1)e^{(b−a)/T}), K/(1 + (K−1)e^{−(b−a)/T})]``.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from gaba_control.formulas import array_namespace

from ._base import Option, WeightingMethod, register
from ._law import Law, LawMethod, Measurement, check_real, column, full, softmax

__all__ = ["DWA", "DWALaw"]


class DWALaw(Law):
    """DWA over epochs of ``steps_per_epoch`` steps, temperature ``temperature`` (> 0)."""

    measures = "losses"
    positive_losses = True
    hyperparameters = ("temperature", "steps_per_epoch")

    def check(self, temperature=2.0, steps_per_epoch=None) -> None:
        self.temperature = check_real(temperature, "temperature", low=0.0, low_open=True,
                                      flag="--dwa-temperature")
        if steps_per_epoch is None:
            raise ValueError("DWA needs steps_per_epoch (its weights change once an epoch)")
        if isinstance(steps_per_epoch, bool) or not isinstance(steps_per_epoch,
                                                               (int, np.integer)):
            raise TypeError(f"steps_per_epoch must be an int >= 1, got "
                            f"{type(steps_per_epoch).__name__}")
        if steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")
        self.steps_per_epoch = int(steps_per_epoch)

    def initial_state(self, like) -> dict:
        k = self.num_tasks
        return {"loss_sum": full(like, (k,), 0.0), "valid_steps": full(like, (), 0.0),
                "epoch_step": full(like, (), 0.0), "epochs": full(like, (), 0.0),
                "mean_1": full(like, (k,), 1.0), "mean_2": full(like, (k,), 1.0)}

    def weights_of(self, state):
        """``λ(e)`` from the last two epoch means (``1`` before two epochs are complete)."""
        xp = array_namespace(state["mean_1"])
        r = state["mean_1"] / state["mean_2"]
        lam = self.num_tasks * softmax(r / self.temperature)
        return xp.where(column(state["epochs"], lam) >= 2, lam, xp.ones_like(lam))

    def step(self, state: dict, m: Measurement):
        weights = self.weights_of(state)
        state = dict(state, loss_sum=state["loss_sum"] + m.losses,
                     valid_steps=state["valid_steps"] + 1)
        return weights, self._tick(state)

    def hold(self, state: dict) -> dict:
        return self._tick(dict(state))

    def _tick(self, state: dict) -> dict:
        """Count the step; at an epoch end shift the means (unless it had no valid step)."""
        xp = array_namespace(state["loss_sum"])
        epoch_step = state["epoch_step"] + 1
        end = epoch_step >= self.steps_per_epoch
        closes = end & (state["valid_steps"] > 0)
        vec = state["loss_sum"]
        count = column(state["valid_steps"], vec)
        mean = vec / xp.where(count > 0, count, 1.0)
        end_k, closes_k = column(end, vec), column(closes, vec)
        return {
            "loss_sum": xp.where(end_k, xp.zeros_like(vec), vec),
            "valid_steps": xp.where(end, 0.0 * state["valid_steps"], state["valid_steps"]),
            "epoch_step": xp.where(end, 0.0 * epoch_step, epoch_step),
            "epochs": xp.where(closes, state["epochs"] + 1, state["epochs"]),
            "mean_1": xp.where(closes_k, mean, state["mean_1"]),
            "mean_2": xp.where(closes_k, state["mean_1"], state["mean_2"]),
        }

    def check_state(self, state) -> None:
        super().check_state(state)
        for name in ("mean_1", "mean_2"):
            if name in state and np.any(state[name] <= 0):
                raise ValueError(f"state['law_{name}'] must be > 0 (mean losses), got "
                                 f"{state[name].tolist()}")
        for name in ("valid_steps", "epoch_step", "epochs"):
            if name in state and (state[name] < 0 or state[name] != np.floor(state[name])):
                raise ValueError(f"state['law_{name}'] must be a count >= 0, got {state[name]}")
        if "epoch_step" in state and state["epoch_step"] >= self.steps_per_epoch:
            raise ValueError(f"state['law_epoch_step'] must be < steps_per_epoch="
                             f"{self.steps_per_epoch}, got {state['epoch_step']}")


@register
class DWA(LawMethod, WeightingMethod):
    """Dynamic weight average (Liu et al. 2019): weights from the epochs' loss descent rates."""

    name = "dwa"
    description = "dynamic weight average (Liu et al. 2019), T = 2, per epoch"
    measures = "the task losses, averaged over each epoch"
    loop: ClassVar[dict[str, str]] = {"sensor": "epoch-mean L_k (boxcar, sampled once an epoch)",
            "reference": "none (equal descent rates give equal weights)",
            "comparator": "none: descent rates r_k = L̄_k(e−1)/L̄_k(e−2)",
            "law": "static softmax of r/T (a derivative action on log L)",
            "state": "the last two epoch means"}
    options = (Option("dwa_temperature", "dwa: temperature T > 0 (default 2)"),)

    def law(self, steps_per_epoch=None) -> DWALaw:
        t = self.settings["dwa_temperature"]
        return DWALaw(self.num_tasks, temperature=2.0 if t is None else t,
                      steps_per_epoch=steps_per_epoch)
