r"""Every weighting method's law as a small-signal model, side by side with GABA's.

One frame for all (``K = 2``): the *input* is the log-ratio the law reacts to
(``d = log(g_1/g_2)`` of the shared-gradient norms for a method that reads
gradients, ``q = log(L_1/L_2)`` of the losses for one that reads losses), the
*output* the log-ratio of the weights it applies, ``u = log(w_1/w_2)``. Each
model is the law linearised around its fixed point, derived below and checked
against the simulated law by :func:`linearisation_check` (tests hold the
two together). A unit DC gain of ``−1`` means the weights move inversely to
the input (``w ∝ 1/g`` or ``1/L``): equal weighted gradients, or equal
weighted losses.

GABA (off its floor): ``λ_1 = EMA(g_2/(g_1 + g_2))``; at ``λ_1 = 1/(1+r)``,
``∂u/∂λ_1 = 1/(λ_1 λ_2)`` and ``∂λ_raw,1/∂d = −r/(1+r)²`` give

.. math:: G(z) = -\frac{(1-β) z}{z-β}.

Uncertainty weighting, plain step ``η`` on ``s``: ``s ← s − (η/2)(1 − e^{ℓ−s})``
with ``ℓ = log L``; around ``s = ℓ``, ``δs ← (1 − η/2) δs + (η/2) δℓ`` and
``u = −(s_1 − s_2)``:

.. math:: G(z) = -\frac{η/2}{z-(1-η/2)}

(stable for ``0 < η < 4``, ringing for ``η > 2``).

FAMO, plain step ``β`` with decay ``γ`` on ``x = ξ_1 − ξ_2`` (``c = z_1 z_2``,
¼ at ``x = 0``; the post-step losses read as the next step's): ``x ← a x −
2βc (q_t − q_{t+1})``, ``a = 1 − βγ``, and ``u = x − q``:

.. math:: G(z) = \frac{2βc(z-1)}{z-a} - 1 = \frac{(2βc-1)z + a - 2βc}{z-a}.

DWA per epoch (sample time one epoch), both losses falling by ``ρ`` an epoch:
``u(e) = (r_1 − r_2)/T`` with ``δr_k = ρ(δℓ_k(e−1) − δℓ_k(e−2))``:

.. math:: G(z) = \frac{ρ}{T}\,\frac{z-1}{z^2}     \quad(\text{FIR: a differentiator, DC gain } 0).

MGDA and UPGrad have no state: static maps of the Gramian, whose gain
:func:`static_gain` takes by central differences through torchjd
(MGDA with orthogonal gradients: ``w_1 ∝ g_2²``, gain ``−2``; UPGrad with
non-conflicting gradients: ``w = (½, ½)``, gain ``0``).

GradNorm has no linearisation: its comparator is ``sign(·)`` (a relay) in
front of an integrator, so the loop chatters (:func:`gradnorm_zero_crossing`
gives where the paper's raw weights cross zero).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import control as ct
import numpy as np

__all__ = [
    "MethodModel",
    "dwa_small_signal",
    "famo_small_signal",
    "gaba_small_signal",
    "gradnorm_zero_crossing",
    "linearisation_check",
    "method_models",
    "noise_gain",
    "static_gain",
    "uncertainty_small_signal",
]


@dataclass(frozen=True)
class MethodModel:
    """A method's small-signal model ``u/input`` (``tf``) with what it is a model of."""

    name: str
    reads: str  # "gradients" or "losses"
    sample: str  # "step" or "epoch"
    tf: ct.TransferFunction
    note: str

    @property
    def dc_gain(self) -> float:
        return float(np.real(self.tf(1.0)))

    @property
    def poles(self) -> np.ndarray:
        return np.asarray(self.tf.poles())


def gaba_small_signal(beta: float = 0.99) -> ct.TransferFunction:
    """``−(1−β) z/(z−β)``: GABA off its floor (``λ_min = 0`` or far above it).

    >>> float(gaba_small_signal(0.99)(1.0).real)
    -1.0
    """
    return ct.tf([-(1.0 - beta), 0.0], [1.0, -beta], dt=1)


def uncertainty_small_signal(lr: float = 1e-3) -> ct.TransferFunction:
    """``−(η/2)/(z − (1 − η/2))``: uncertainty weighting with a plain step ``η`` on ``s``."""
    return ct.tf([-lr / 2.0], [1.0, -(1.0 - lr / 2.0)], dt=1)


def famo_small_signal(lr: float = 0.025, gamma: float = 0.01, *,
                      softmax_product: float = 0.25) -> ct.TransferFunction:
    """FAMO with a plain step ``β = lr`` and decay ``γ``; ``softmax_product = z_1 z_2``."""
    a = 1.0 - lr * gamma
    k = 2.0 * lr * softmax_product
    return ct.tf([k - 1.0, a - k], [1.0, -a], dt=1)


def dwa_small_signal(temperature: float = 2.0, descent: float = 1.0) -> ct.TransferFunction:
    """``(ρ/T)(z − 1)/z²`` per epoch; ``descent = ρ``, the losses' epoch-to-epoch ratio."""
    g = descent / temperature
    return ct.tf([g, -g], [1.0, 0.0, 0.0], dt=1)


def static_gain(kind: str, ratio: float, cosine: float = 0.0, *, h: float = 1e-4) -> float:
    """``∂u/∂d`` of a torchjd Gramian weighting at ``g = (ratio, 1)`` with cosine ``cosine``.

    Central differences in ``d = log g_1`` (step ``h``), the cosine held.
    NaN at a vertex of the simplex (a weight is 0 and stays 0: the map is
    saturated there and ``u`` is unbounded).
    """
    import torch

    from gaba_control.weighting import torchjd_weighting

    weighting = torchjd_weighting(kind)

    def u(d: float) -> float:
        g1 = np.exp(d)
        gram = torch.tensor([[g1 * g1, cosine * g1], [cosine * g1, 1.0]], dtype=torch.float64)
        w = weighting(gram).numpy()
        return float(np.log(w[0] / w[1])) if np.all(w > 0) else math.nan

    d0 = np.log(ratio)
    return (u(d0 + h) - u(d0 - h)) / (2 * h)


def gradnorm_zero_crossing(ratio, *, sgd: bool = False, beta1: float = 0.9) -> np.ndarray:
    r"""The weight step at which GradNorm's raw weight of the larger-gradient task reaches 0.

    With equal loss ratios the fixed point is ``w_1* = 2 g_2/(g_1 + g_2)``
    (``g = (r, 1)``: ``2/(1+r)``), approached and then chattered around (the
    comparator is a relay).

    * Plain step ``η``: ``w_1`` moves by ``η g_1 = η r`` a step, so its
      chatter reaches zero once ``η ≥ 2/(r(1+r))`` (exact in simulation).
    * Adam, rate ``lr``: ``w_1`` moves by ``lr`` a step (``m̂/√v̂ = ±1`` under a
      constant sign); when the relay flips, ``m`` decays through zero in
      ``k* = ln 2/ln(1/β_1)`` steps while the step keeps its sign, an
      overshoot of ``o = lr Σ_{k=1}^{⌊k*⌋} (2β_1^k − 1)`` (``2.43 lr`` for
      ``β_1 = 0.9``; the renormalisation, ignored here, adds to it): zero is
      reached once ``lr ≳ w_1*/o``. Simulation puts the boundary at 0.6–1.0× this
      estimate for ``r ≥ 20`` (tests hold it between 0.5× and 2×).

    Returns the boundary ``η`` (or ``lr``) for each ``ratio``.
    """
    r = np.asarray(ratio, dtype=float)
    if sgd:
        return 2.0 / (r * (1.0 + r))
    k = np.arange(1, math.floor(math.log(2.0) / math.log(1.0 / beta1)) + 1)
    overshoot = float(np.sum(2.0 * beta1**k - 1.0))
    return 2.0 / ((1.0 + r) * overshoot)


def noise_gain(tf: ct.TransferFunction, steps: int = 20000) -> float:
    """``Σ h[n]²``: output variance per unit white-input variance (the squared H2 norm).

    >>> round(noise_gain(gaba_small_signal(0.99)), 6)  # (1−β)/(1+β)
    0.005025
    """
    response = ct.impulse_response(tf, T=np.arange(steps))
    h = np.asarray(response.outputs).reshape(-1)
    return float(np.sum(h * h))


def method_models(*, beta: float = 0.99, uw_lr: float = 1e-3, famo_lr: float = 0.025,
                  famo_gamma: float = 0.01, dwa_temperature: float = 2.0,
                  dwa_descent: float = 0.9, ratio: float = 100.0,
                  cosine: float = 0.0) -> list[MethodModel]:
    """The small-signal model of every method with a linearisation, at the given settings."""
    models = [
        MethodModel("gaba", "gradients", "step", gaba_small_signal(beta),
                    f"off the floor, β = {beta:g}"),
        MethodModel("uncertainty", "losses", "step", uncertainty_small_signal(uw_lr),
                    f"plain step η = {uw_lr:g} on s"),
        MethodModel("famo", "losses", "step", famo_small_signal(famo_lr, famo_gamma),
                    f"plain step β = {famo_lr:g}, γ = {famo_gamma:g}, z = (½, ½)"),
        MethodModel("dwa", "losses", "epoch", dwa_small_signal(dwa_temperature, dwa_descent),
                    f"T = {dwa_temperature:g}, losses ×{dwa_descent:g} an epoch"),
    ]
    for kind in ("mgda", "upgrad"):
        k = static_gain(kind, ratio, cosine)
        models.append(MethodModel(kind, "gradients", "step", ct.tf([k], [1.0], dt=1),
                                  f"memoryless, g = ({ratio:g}, 1), cos = {cosine:g}"))
    return models


def linearisation_check(name: str, *, amplitude: float = 1e-3, steps: int = 400,
                        **settings) -> tuple[np.ndarray, np.ndarray]:
    """``(simulated, linear)``: the law's ``δu`` after a step of ``amplitude`` in its input.

    The law (numpy twin, plain-step form where it has an optimizer) starts at
    its fixed point; the linear prediction is the model's step response
    times ``amplitude``. Their difference is second order in ``amplitude``.
    """
    from gaba_control import formulas
    from gaba_control.weighting import DWALaw, FAMOLaw, UncertaintyLaw, law_weights

    def logratio(w):
        return np.log(w[:, 0] / w[:, 1])

    step = np.concatenate([np.zeros(1), np.full(steps - 1, amplitude)])
    if name == "gaba":
        beta, ratio = settings.get("beta", 0.99), settings.get("ratio", 100.0)
        ema = np.array([1.0, ratio]) / (1.0 + ratio)  # the fixed point at g = (ratio, 1)
        w = np.empty((steps, 2))
        for t, x in enumerate(np.log(ratio) + step):
            ema = formulas.ema_update(ema, formulas.raw_weights(np.array([np.exp(x), 1.0])),
                                      beta)
            w[t] = formulas.floor_renormalise(ema, 0.0)
        sim = logratio(w) - np.log(1.0 / ratio)
        tf = gaba_small_signal(beta)
    elif name == "uncertainty":
        lr = settings.get("lr", 0.1)
        law = UncertaintyLaw(2, lr=lr, sgd=True)
        q = step
        losses = np.column_stack([np.exp(q), np.ones(steps)])
        w = law_weights(law, np.ones_like(losses), losses)  # s starts at log L = 0: fixed point
        sim = logratio(w)
        tf = uncertainty_small_signal(lr)
    elif name == "famo":
        lr, gamma = settings.get("lr", 0.025), settings.get("gamma", 0.01)
        law = FAMOLaw(2, lr=lr, gamma=gamma, sgd=True, eps=1e-300)
        losses = np.column_stack([np.exp(step), np.ones(steps)])
        w = law_weights(law, np.ones_like(losses), losses)
        sim = logratio(w)
        tf = famo_small_signal(lr, gamma)
    elif name == "dwa":
        temperature, descent = settings.get("temperature", 2.0), settings.get("descent", 0.9)
        warm = 3  # two epochs before DWA starts, one to settle
        n = warm + steps
        base = descent ** np.arange(n)
        q = np.concatenate([np.zeros(warm), step])
        losses = np.column_stack([base * np.exp(q), base])
        w = law_weights(DWALaw(2, temperature=temperature, steps_per_epoch=1),
                        np.ones_like(losses), losses)
        sim = logratio(w)[warm:]
        tf = dwa_small_signal(temperature, descent)
    else:
        raise ValueError(f"name must be one of gaba, uncertainty, famo, dwa, got {name!r}")
    response = ct.step_response(tf, T=np.arange(steps - 1))
    linear = np.concatenate([np.zeros(1), amplitude * np.asarray(response.outputs).reshape(-1)])
    return sim, linear
