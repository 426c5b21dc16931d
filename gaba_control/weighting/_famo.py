r"""FAMO, fast adaptive multitask optimization (Liu, Liu, Jin, Stone & Liu, NeurIPS 2023).

Task logits ``ξ`` give ``z = softmax(ξ)``. The step descends
``Σ_i z_i log ℓ_i`` rescaled (paper, Eqs. 5–6 and Algorithm 1), i.e. the loss
weights are::

    w_i = c · z_i / ℓ_i,   c = (Σ_j z_j / ℓ_j)^{−1}      (Σ w_i = 1)

with ``ℓ_i = L_i − m_i + ε`` (the authors' shift: ``m = 0``, ``ε = 10⁻⁸``).
After the optimizer step the *same batch* is evaluated again and the logits
move against the log-loss decrease it achieved::

    δ = J_z(ξ)ᵀ (log ℓ(θ_t) − log ℓ(θ_{t+1})),     ξ ← optimizer step on δ + γ ξ

Algorithm 1 writes a plain step ``ξ ← ξ − β(δ + γξ)``; the authors' released
code (and their reported runs) use Adam with learning rate ``β = 0.025`` and
weight decay ``γ = 0.01``: these are the defaults here (``famo_lr``,
``famo_gamma``), labelled as such. One extra forward pass per step (no
backward) reads the post-step losses; the authors' model-gradient clipping is
not part of the weighting and is not applied.

As a control loop: sensor ``log ℓ`` before and after the step (the achieved
log-loss decrease, a derivative of the loss); reference: equal decrease
across tasks; law: integral action (Adam on ``ξ``) with leakage ``γ`` (the
weight decay pulls ``ξ`` to 0, i.e. ``z`` to uniform), state ``ξ``.
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
    softmax,
    softmax_vjp,
)

__all__ = ["FAMO", "FAMOLaw", "famo_weights"]


def famo_weights(logits, losses, eps: float = 1e-8):
    """``w_i = z_i/ℓ_i / Σ_j z_j/ℓ_j`` with ``z = softmax(logits)``, ``ℓ = losses + eps``."""
    xp = array_namespace(logits)
    q = softmax(logits) / (losses + eps)
    return q / xp.sum(q, axis=-1, keepdims=True)


class FAMOLaw(Law):
    """FAMO's law (see the module docstring); ``sgd=True`` for Algorithm 1's plain step."""

    measures = "losses"
    post_step = True
    positive_losses = True
    hyperparameters = ("lr", "gamma", "eps", "sgd")

    def check(self, lr=0.025, gamma=0.01, eps=1e-8, sgd=False) -> None:
        self.lr = check_real(lr, "lr", low=0.0, low_open=True, high=1e3, flag="--famo-lr")
        self.gamma = check_real(gamma, "gamma", low=0.0, high=1e3, flag="--famo-gamma")
        self.eps = check_real(eps, "eps", low=0.0, low_open=True, high=1.0)
        self.sgd = check_flag(sgd, "sgd")

    def initial_state(self, like) -> dict:
        k = self.num_tasks
        return {"logits": full(like, (k,), 0.0), "adam_m": full(like, (k,), 0.0),
                "adam_v": full(like, (k,), 0.0), "adam_t": full(like, (), 0.0),
                "log_loss": full(like, (k,), 0.0)}

    def step(self, state: dict, m: Measurement):
        xp = array_namespace(state["logits"])
        weights = famo_weights(state["logits"], m.losses, self.eps)
        return weights, dict(state, log_loss=xp.log(m.losses + self.eps))

    def after_step(self, state: dict, post_losses) -> dict:
        xp = array_namespace(state["logits"])
        decrease = state["log_loss"] - xp.log(post_losses + self.eps)
        grad = softmax_vjp(softmax(state["logits"]), decrease)
        logits, mom, var, t = optimizer_step(state["logits"], grad, state, lr=self.lr,
                                             sgd=self.sgd, weight_decay=self.gamma)
        return dict(state, logits=logits, adam_m=mom, adam_v=var, adam_t=t)

    def check_state(self, state) -> None:
        super().check_state(state)
        check_adam_state(state)


@register
class FAMO(LawMethod, WeightingMethod):
    """FAMO (Liu et al. 2023): logits moved by the achieved log-loss decrease."""

    name = "famo"
    description = "FAMO (Liu et al. 2023): one extra forward pass per step"
    measures = "the task losses before and after each step (same batch)"
    post_step = True
    loop: ClassVar[dict[str, str]] = {"sensor": "log L_i before and after the step (same batch)",
            "reference": "equal log-loss decrease", "comparator": "J_zᵀ (achieved decrease)",
            "law": "leaky integral (Adam on ξ, decay γ); w ∝ softmax(ξ)/L",
            "state": "ξ (K), Adam's moments"}
    options = (
        Option("famo_lr", "famo: Adam learning rate of the logits, > 0 (default 0.025)"),
        Option("famo_gamma", "famo: weight decay of the logits, >= 0 (default 0.01)"),
    )

    def law(self, steps_per_epoch=None) -> FAMOLaw:
        s = self.settings
        return FAMOLaw(self.num_tasks, lr=0.025 if s["famo_lr"] is None else s["famo_lr"],
                       gamma=0.01 if s["famo_gamma"] is None else s["famo_gamma"])
