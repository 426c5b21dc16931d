r"""GABA with integral action on the log weighted-share error.

The law block becomes an integrator. With the filter state ``z`` and the
weights ``λ̂ = softmax(z)`` it reads the weighted shares the current weights
give, ``w_i = λ̂_i g_i / Σ_j λ̂_j g_j``, and integrates their log error:

.. math:: z ← z + k_I\,\big(\log(1/K) − \log w\big), \qquad λ^* = \text{floor}(\text{softmax}(z)).

Its fixed point is ``w = 1/K`` for every task and every ``K``: no
steady-state error (the P-law has one for ``K ≥ 3``, see
:func:`~gaba_control.weighting.plaw_weighted_shares`), and the floor's error
alone remains where it binds. Because ``log λ̂_i = z_i − \log Σ e^{z}``, the
update is, up to a constant the softmax ignores,

.. math:: z ← (1 − k_I)\,z − k_I \log g,

a first-order low-pass of ``−log g`` with pole ``1 − k_I``: integral action
through a logarithmic actuator is the log-domain EMA of the inverse-norm law
``λ ∝ 1/g`` (for ``K = 2`` the log-domain EMA of GABA's P-law, with
``β = 1 − k_I``). So the integrator cannot wind up: its state is a bounded
average of the log norms, whatever the floor does. Stable for
``0 < k_I < 2`` on a frozen plant; ``k_I`` is limited to ``(0, 1]`` (no
oscillating sign). Default ``k_I = 1 − β``: GABA's time constant.
"""

from __future__ import annotations

from typing import ClassVar

from gaba_control import formulas
from gaba_control.formulas import array_namespace

from ._base import Option, register
from ._law import check_real, full, softmax
from ._loop_law import LoopLaw, LoopVariant

__all__ = ["GABAIntegral", "IntegralLaw"]

#: the smallest weighted share whose logarithm the integrator takes
SHARE_FLOOR = 1e-300


class IntegralLaw(LoopLaw):
    """Integral action on ``log(1/K) − log w`` through ``λ̂ = softmax(z)``, gain in (0, 1]."""

    hyperparameters = ("beta", "warmup", "floor", "gain")

    def check_extra(self, gain=None) -> None:
        gain = 1.0 - self.beta if gain is None else gain
        self.gain = check_real(gain, "gain", low=0.0, high=1.0 + 1e-15, low_open=True,
                               flag="--integral-gain")

    log_state = True

    def initial_state(self, like) -> dict:
        return {"ema": full(like, (self.num_tasks,), 0.0), "step": full(like, (), 0.0)}

    def raw(self, norms, state):
        """The log error of the weighted shares the current weights give."""
        xp = array_namespace(norms)
        w = formulas.weighted_shares(softmax(state["ema"]), norms)
        return -xp.log(float(self.num_tasks) * xp.maximum(w, SHARE_FLOOR))

    def filtered(self, state, raw):
        xp = array_namespace(raw)
        z = state["ema"] + self.gain * raw
        return {"ema": z - xp.mean(z, axis=-1, keepdims=True)}

    def unsaturated(self, state):
        return softmax(state["ema"])



@register
class GABAIntegral(LoopVariant):
    """GABA with integral action on the log weighted-share error."""

    name = "gaba_integral"
    description = "GABA with integral action on the log weighted-share error (any K)"
    law_class = IntegralLaw
    variant_options = (Option("integral_gain", "gaba_integral: integrator gain k_I ∈ (0, 1] "
                              "(default 1 − β: GABA's time constant)"),)
    loop: ClassVar[dict[str, str]] = {
        "sensor": "g_i → weighted shares of the current weights",
        "reference": "1/K (equal weighted shares)",
        "comparator": "log(1/K) − log w", "law": "integral (k_I), softmax actuator, floor",
        "state": "the integrator z (K numbers), the step count"}

    def law_kwargs(self) -> dict:
        return {"gain": self.settings["integral_gain"]}
