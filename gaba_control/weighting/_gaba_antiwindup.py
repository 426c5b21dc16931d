r"""GABA with state-clamped (true) anti-windup: the floor acts on the EMA state, not the output.

GABA's saturation clamps the *output* ``λ* = max(λ̂, λ_min)/Σ``; the EMA state
``λ̂`` is a linear filter of the raw weights and winds down towards the raw
weight ``r < λ_min`` while the floor binds. When the reading changes so that
the raw weight rises to ``r' > λ_min``, the output stays on the floor until the
state has climbed back through ``λ_min``:

.. math:: n_\text{GABA} = \Big\lceil \frac{\ln\big((r' − λ_\min)/(r' − r)\big)}{\ln β} \Big\rceil

steps (:func:`recovery_steps`). This variant swaps the filter block for one
that clamps its state after each update,

.. math:: λ̂ ← \max\big(βλ̂ + (1−β)λ_\text{raw},\ λ_\min\big),

(elementwise, not renormalised: the output renormalises), so the state never
lies below the floor and the output leaves it on the first step whose raw
weight exceeds ``λ_min`` (``n = 1``). Under a constant reading the clamped
channel sits at ``λ_min`` and the others converge to their raw weights, so
the output's steady state is GABA's exactly (for ``K = 2``,
``λ*_1 = λ_min/(λ_min + 1 − r)``): anti-windup changes the transients, not
the operating point the floor imposes.
"""

from __future__ import annotations

import math
from typing import ClassVar

from gaba_control import formulas
from gaba_control.formulas import array_namespace

from ._base import register
from ._loop_law import LoopLaw, LoopVariant

__all__ = ["AntiWindupLaw", "GABAAntiWindup", "recovery_steps"]


def recovery_steps(beta: float, lambda_min: float, wound: float, raw: float) -> int:
    """Steps for GABA's EMA to climb from ``wound < λ_min`` through ``λ_min`` at raw weight ``raw``.

    The first step ``n`` at which ``raw + (wound − raw)·βⁿ ≥ λ_min``; ``raw`` must
    exceed ``λ_min``. The anti-windup variant needs one step.

    Examples
    --------
    >>> recovery_steps(0.99, 0.05, 0.002, 0.2)  # ⌈ln(0.15/0.198)/ln 0.99⌉ = ⌈27.6⌉
    28
    """
    if not raw > lambda_min > wound:
        raise ValueError(f"need wound < lambda_min < raw, got {wound}, {lambda_min}, {raw}")
    return max(1, math.ceil(math.log((raw - lambda_min) / (raw - wound)) / math.log(beta)))


class AntiWindupLaw(LoopLaw):
    """GABA whose EMA state is clamped at the floor after every update."""

    def filtered(self, state, raw):
        xp = array_namespace(raw)
        ema = formulas.ema_update(state["ema"], raw, self.beta)
        return {"ema": xp.maximum(ema, self.floor)}

    def check_state(self, state) -> None:
        super().check_state(state)
        if "ema" in state and "step" in state and state["step"] > self.warmup and (
                (state["ema"] < self.floor * (1 - 1e-12)).any()):
            raise ValueError(f"state['law_ema'] must be >= the floor {self.floor:g} after "
                             f"the warmup (it is clamped), got {state['ema'].tolist()}")


@register
class GABAAntiWindup(LoopVariant):
    """GABA with the floor applied to the EMA state (anti-windup)."""

    name = "gaba_antiwindup"
    description = "GABA with state-clamped anti-windup (the floor clamps the EMA state)"
    law_class = AntiWindupLaw
    loop: ClassVar[dict[str, str]] = {
        "sensor": "g_i → shares", "reference": "1/K", "comparator": "e = 1/K − s",
        "law": "P-law, EMA whose state is clamped at the floor, floor",
        "state": "the clamped EMA (K numbers), the step count"}
