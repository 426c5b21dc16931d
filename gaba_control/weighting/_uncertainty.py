r"""Uncertainty weighting (Kendall, Gal & Cipolla, CVPR 2018).

Each task has a learned log-variance ``s_i = log σ_i²``; the loss is the
negative log-likelihood of a Gaussian with that variance (paper, Eq. 7, in the
``s`` parameterisation its Sec. 3.2 recommends for stability)::

    L = Σ_i ½ e^{−s_i} L_i + ½ s_i

so the weight on task ``i`` is ``w_i = ½ e^{−s_i}`` and ``s`` descends
``∂L/∂s_i = ½ (1 − e^{−s_i} L_i)``. ``s`` starts at 0 (``w = ½``) and is
trained by Adam at ``uw_lr`` (default ``1e-3``, the network's learning rate:
the paper trains ``s`` jointly with the network). Eq. 7's regression form is
used for every task, as common implementations do; the classification form
(Eq. 10, ``e^{−s} L + ½ s``) has the same fixed point.

As a control loop: sensor ``L_i`` (the loss itself, no gradients); reference
``e^{−s_i} L_i = 1``, i.e. ``w_i L_i = ½``; law: integral action (Adam) on the
error ``1 − e^{−s_i} L_i``; state ``s`` (and Adam's moments). The fixed point
``w_i* = 1/(2 L_i)`` weights a task inversely to its loss: it balances
*losses*, not gradients. The weights are not normalised (their sum moves with
the losses); the added ``½ Σ s_i`` changes no network gradient, so the module
delivers ``Σ w_i ∇L_i``.
"""

from __future__ import annotations

from typing import ClassVar

from gaba_control.formulas import array_namespace

from ._base import Option, WeightingMethod, register
from ._law import (
    Law,
    LawMethod,
    Measurement,
    check_adam_state,
    check_flag,
    check_real,
    full,
    optimizer_step,
)

__all__ = ["UncertaintyLaw", "UncertaintyWeighting"]


class UncertaintyLaw(Law):
    """Kendall et al.'s law (see the module docstring); ``lr`` the Adam rate of ``s``.

    ``sgd=True``: a plain gradient step instead of Adam (the analyses' exact small-signal form).
    """

    measures = "losses"
    hyperparameters = ("lr", "sgd")

    def check(self, lr=1e-3, sgd=False) -> None:
        self.lr = check_real(lr, "lr", low=0.0, low_open=True, high=1e3, flag="--uw-lr")
        self.sgd = check_flag(sgd, "sgd")

    def initial_state(self, like) -> dict:
        k = self.num_tasks
        return {"log_var": full(like, (k,), 0.0), "adam_m": full(like, (k,), 0.0),
                "adam_v": full(like, (k,), 0.0), "adam_t": full(like, (), 0.0)}

    def step(self, state: dict, m: Measurement):
        xp = array_namespace(state["log_var"])
        precision = xp.exp(-state["log_var"])
        grad = 0.5 * (1.0 - precision * m.losses)
        s, mom, var, t = optimizer_step(state["log_var"], grad, state, lr=self.lr, sgd=self.sgd)
        return 0.5 * precision, {"log_var": s, "adam_m": mom, "adam_v": var, "adam_t": t}

    def check_state(self, state) -> None:
        super().check_state(state)
        check_adam_state(state)


@register
class UncertaintyWeighting(LawMethod, WeightingMethod):
    """Uncertainty weighting: ``w_i = ½ e^{−s_i}``, ``s`` learned (Kendall et al. 2018)."""

    name = "uncertainty"
    description = "uncertainty weighting (Kendall et al. 2018): learned log-variances"
    measures = "the task losses"
    loop: ClassVar[dict[str, str]] = {
            "sensor": "L_i (no gradients)", "reference": "e^{−s_i} L_i = 1 (w_i L_i = ½)",
            "comparator": "½(1 − e^{−s_i} L_i)", "law": "integral (Adam on s)",
            "state": "s = log σ² (K), Adam's moments"}
    options = (Option("uw_lr", "uncertainty: Adam learning rate of the log-variances, > 0 "
                      "(default 1e-3)"),)

    def law(self, steps_per_epoch=None) -> UncertaintyLaw:
        lr = self.settings["uw_lr"]
        return UncertaintyLaw(self.num_tasks, lr=1e-3 if lr is None else lr)
