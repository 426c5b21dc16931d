r"""GradNorm (Chen, Badrinarayanan, Lee & Rabinovich, ICML 2018), two parameterisations.

The law (paper, Sec. 3.2, Eq. 2 and Algorithm 1), with ``g_i = ‖∇_W L_i‖`` the
unweighted task gradient norm on the shared weights ``W`` and ``L_i(0)`` the
first step's loss::

    G_i = w_i g_i,   Ḡ = mean_i G_i,   L̃_i = L_i(t)/L_i(0),   r_i = L̃_i / mean_j L̃_j
    L_grad = Σ_i |G_i − Ḡ r_i^α|                 (the targets Ḡ r_i^α held constant)
    ∂L_grad/∂w_i = sign(G_i − Ḡ r_i^α) · g_i

The weights ``w_i(t)`` form this step's loss ``Σ w_i L_i``; then ``w`` takes one
optimizer step on ``∇_w L_grad`` and is renormalised to ``Σ w_i = K``
(Algorithm 1). α = 1.5 (the paper's value for its NYUv2 experiments; the
asymmetry knob).

* ``gradnorm`` — **the paper's form**: the weights themselves are the
  parameters. Nothing keeps them positive: a weight driven below zero turns
  its task's descent into ascent (the divergences this toolkit counts).
* ``gradnorm_softmax`` — **the positive parameterisation commonly used** (e.g.
  in LibMTL): ``w = K · softmax(θ)``, the gradient chained through the softmax,
  no renormalisation needed; positive by construction.

Choices of this implementation, stated: ``W`` is every shared parameter (the
exact sensor GABA reads; the paper uses the last shared layer to save cost;
LibMTL also reads all shared parameters); the "standard update rule" of the
paper is Adam (the network's optimizer here), learning rate ``gradnorm_lr``
(default ``1e-3``, the network's).

As a control loop: sensor ``(g, L)``; reference ``Ḡ r^α`` (moving, set by the
loss ratios); comparator ``sign(w_i g_i − Ḡ r_i^α)`` (a relay); law: an
integrator (the optimizer) on the relay output; state ``w`` (and Adam's
moments). A relay under an integrator has no linear small-signal gain: the
loop chatters around its fixed point with an amplitude set by the step size
(see :mod:`gaba_control.weighting.analysis`).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from gaba_control.formulas import array_namespace

from ._base import Option, WeightingMethod, register
from ._law import (
    Law,
    LawMethod,
    Measurement,
    check_adam_state,
    check_flag,
    check_real,
    column,
    full,
    optimizer_step,
    softmax,
    softmax_vjp,
)

__all__ = ["GradNorm", "GradNormLaw", "GradNormSoftmax", "gradnorm_weight_gradient"]


def gradnorm_weight_gradient(w, g, losses, initial_losses, alpha: float):
    r"""``∂L_grad/∂w = sign(w∘g − Ḡ r^α) ∘ g`` (Chen et al. 2018, Eq. 2, targets constant).

    Examples
    --------
    >>> import numpy as np
    >>> gradnorm_weight_gradient(np.ones(2), np.array([3.0, 1.0]), np.ones(2), np.ones(2), 1.5)
    array([ 3., -1.])
    """
    xp = array_namespace(w)
    big_g = w * g
    # r_i^α = (L̃_i / mean L̃)^α in the log domain: the ratios L/L(0) under- or overflow
    # for losses far from their start, the logarithms do not
    log_ratio = xp.log(losses) - xp.log(initial_losses)
    top = xp.max(log_ratio, axis=-1, keepdims=True)
    log_mean = top + xp.log(xp.mean(xp.exp(log_ratio - top), axis=-1, keepdims=True))
    target = xp.mean(big_g, axis=-1, keepdims=True) * xp.exp(alpha * (log_ratio - log_mean))
    return xp.sign(big_g - target) * g


class GradNormLaw(Law):
    """GradNorm's law (see the module docstring); ``positive=True`` for ``w = K·softmax(θ)``.

    Parameters
    ----------
    num_tasks : int
    alpha : float
        Asymmetry ``α ≥ 0`` (default 1.5).
    lr : float
        Adam learning rate of the weight parameters, ``> 0`` (default ``1e-3``).
    positive : bool
        The softmax parameterisation instead of the paper's raw weights.
    sgd : bool
        A plain gradient step instead of Adam (the analyses' exact small-signal form).
    """

    measures = "norms"
    positive_losses = True
    hyperparameters = ("alpha", "lr", "positive", "sgd")

    def check(self, alpha=1.5, lr=1e-3, positive=False, sgd=False) -> None:
        self.alpha = check_real(alpha, "alpha", low=0.0, flag="--gradnorm-alpha")
        self.lr = check_real(lr, "lr", low=0.0, low_open=True, high=1e3, flag="--gradnorm-lr")
        self.positive = check_flag(positive, "positive")
        self.sgd = check_flag(sgd, "sgd")

    def initial_state(self, like) -> dict:
        k = self.num_tasks
        param = full(like, (k,), 0.0 if self.positive else 1.0)
        return {"param": param, "adam_m": full(like, (k,), 0.0), "adam_v": full(like, (k,), 0.0),
                "adam_t": full(like, (), 0.0), "initial_losses": full(like, (k,), 0.0)}

    def weights_of(self, param):
        """The weights ``w`` (sum K) from the parameters."""
        return self.num_tasks * softmax(param) if self.positive else param

    def step(self, state: dict, m: Measurement):
        xp = array_namespace(state["param"])
        initial = xp.where(column(state["adam_t"], m.losses) == 0, m.losses,
                           state["initial_losses"])
        w = self.weights_of(state["param"])
        grad_w = gradnorm_weight_gradient(w, m.norms, m.losses, initial, self.alpha)
        if self.positive:
            grad = softmax_vjp(w / self.num_tasks, self.num_tasks * grad_w)
        else:
            grad = grad_w
        param, mom, var, t = optimizer_step(state["param"], grad, state, lr=self.lr,
                                            sgd=self.sgd)
        if not self.positive:
            total = xp.sum(param, axis=-1, keepdims=True)
            # Algorithm 1 renormalises to Σw = K; a sum ≤ 0 cannot be renormalised (the paper's
            # form has failed by then): keep the previous weights rather than divide by it.
            ok = total > 0
            param = xp.where(ok, param * (self.num_tasks / xp.where(ok, total, 1.0)),
                             state["param"])
        return w, {"param": param, "adam_m": mom, "adam_v": var, "adam_t": t,
                   "initial_losses": initial}

    def check_state(self, state) -> None:
        super().check_state(state)
        check_adam_state(state)
        if "initial_losses" in state and np.any(state["initial_losses"] < 0):
            raise ValueError("state['law_initial_losses'] must be >= 0")


_ALPHA = Option("gradnorm_alpha", "gradnorm*: asymmetry α >= 0 (default 1.5, Chen et al. 2018)")
_LR = Option("gradnorm_lr", "gradnorm*: Adam learning rate of the weights, > 0 (default 1e-3)")


@register
class GradNorm(LawMethod, WeightingMethod):
    """GradNorm, the paper's form (raw weights, renormalised to sum K; may turn negative)."""

    name = "gradnorm"
    description = "GradNorm (Chen et al. 2018), the paper's raw weights"
    measures = "per-task gradient norms on the shared parameters and the loss ratios"
    options = (_ALPHA, _LR)
    loop: ClassVar[dict[str, str]] = {"sensor": "g_i and the loss ratios L_i(t)/L_i(0)",
            "reference": "Ḡ·r_i^α (moves with the losses)",
            "comparator": "sign(w_i g_i − Ḡ r_i^α): a relay",
            "law": "integral (Adam on the weights), renormalised to Σw = K",
            "state": "w (K), Adam's moments, L(0)"}
    positive = False

    def law(self, steps_per_epoch=None) -> GradNormLaw:
        s = self.settings
        return GradNormLaw(self.num_tasks, alpha=1.5 if s["gradnorm_alpha"] is None
                           else s["gradnorm_alpha"],
                           lr=1e-3 if s["gradnorm_lr"] is None else s["gradnorm_lr"],
                           positive=self.positive)


@register
class GradNormSoftmax(GradNorm):
    """GradNorm, the positive parameterisation commonly used: ``w = K·softmax(θ)``."""

    name = "gradnorm_softmax"
    description = "GradNorm with w = K·softmax(θ) (the common positive parameterisation)"
    positive = True
    loop: ClassVar[dict[str, str]] = {
        **GradNorm.loop, "law": "integral (Adam on θ), w = K·softmax(θ)",
        "state": "θ (K), Adam's moments, L(0)"}
