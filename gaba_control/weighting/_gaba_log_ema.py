r"""GABA with a log-domain EMA: the filter averages ``log λ_raw`` (a geometric mean).

The filter block becomes

.. math:: ℓ ← βℓ + (1−β)\log\max(λ_\text{raw}, ε), \qquad
          λ̂ = \frac{e^{ℓ}}{Σ_j e^{ℓ_j}},

then GABA's floor. It averages the raw weights geometrically: a reading that
is an outlier by a factor moves the state by its logarithm, and under
multiplicative noise the state estimates the median raw weight rather than
the mean (for log-normal raw weights with log-variance ``σ²`` the arithmetic
EMA's mean is ``e^{σ²/2}`` times larger). ``ε`` (:data:`RAW_FLOOR`) keeps a raw
weight of exactly 0 finite. The state is shifted to mean zero after each step,
which the softmax ignores.

For ``K = 2``, ``log λ_raw,1 − log λ_raw,2 = log(g_2/g_1)``: the variant is the
integral law of :mod:`._gaba_integral` with gain ``1 − β`` (checked in the tests).
"""

from __future__ import annotations

from typing import ClassVar

from gaba_control.formulas import array_namespace

from ._base import register
from ._law import full, softmax
from ._loop_law import LoopLaw, LoopVariant

__all__ = ["RAW_FLOOR", "GABALogEMA", "LogEMALaw"]

#: the smallest raw weight whose logarithm the filter takes
RAW_FLOOR = 1e-12


class LogEMALaw(LoopLaw):
    """GABA whose EMA runs on ``log λ_raw``."""

    log_state = True

    def initial_state(self, like) -> dict:
        return {"ema": full(like, (self.num_tasks,), 0.0), "step": full(like, (), 0.0)}

    def filtered(self, state, raw):
        xp = array_namespace(raw)
        log_raw = xp.log(xp.maximum(raw, RAW_FLOOR))
        ell = self.beta * state["ema"] + (1.0 - self.beta) * log_raw
        return {"ema": ell - xp.mean(ell, axis=-1, keepdims=True)}

    def unsaturated(self, state):
        return softmax(state["ema"])



@register
class GABALogEMA(LoopVariant):
    """GABA with the EMA taken on the logarithm of the raw weights."""

    name = "gaba_log_ema"
    description = "GABA with a log-domain EMA (geometric mean of the raw weights)"
    law_class = LogEMALaw
    loop: ClassVar[dict[str, str]] = {
        "sensor": "g_i → shares", "reference": "1/K", "comparator": "e = 1/K − s",
        "law": "P-law, EMA of log λ_raw, softmax, floor",
        "state": "the log-domain EMA (K numbers), the step count"}
