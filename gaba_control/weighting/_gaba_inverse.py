r"""GABA with the inverse-norm law: ``λ_i ∝ 1/g_i``, which equalises ``λ_i g_i`` for every K.

GABA's P-law ``λ_raw,i = 1/K + (1/K − s_i)/(K−1) = (1 − s_i)/(K−1)`` equalises
the weighted norms ``λ_i g_i`` only for ``K = 2`` (there ``λ_1 = s_2``). For
``K ≥ 3`` its weighted shares are

.. math:: \frac{λ_i g_i}{Σ_j λ_j g_j} = \frac{s_i(1 − s_i)}{Σ_j s_j(1 − s_j)}

(:func:`plaw_weighted_shares`), not ``1/K``: the steady-state error of the
proportional law. This variant swaps the law block for

.. math:: λ_\text{raw,i} = \frac{1/g_i}{Σ_j 1/g_j},

whose weighted shares are ``1/K`` exactly for any ``K`` and any norms. For
``K = 2`` the two laws are the same map (``(1/g_1)/(1/g_1 + 1/g_2) = s_2``).
The norms are divided by their smallest entry first (no overflow at any scale);
tasks with a zero norm share the whole weight between them.
"""

from __future__ import annotations

from typing import ClassVar

from gaba_control import formulas
from gaba_control.formulas import array_namespace

from ._base import register
from ._loop_law import LoopLaw, LoopVariant

__all__ = ["GABAInverse", "InverseNormLaw", "inverse_norm_weights", "plaw_weighted_shares"]


def inverse_norm_weights(g):
    """``λ_i = (1/g_i)/Σ_j (1/g_j)`` over the last axis; NaN for a row GABA's sensor rejects.

    Examples
    --------
    >>> import numpy as np
    >>> inverse_norm_weights(np.array([4.0, 1.0, 1.0])).round(4).tolist()
    [0.1111, 0.4444, 0.4444]
    >>> inverse_norm_weights(np.array([4.0, 0.0, 1.0])).tolist()
    [0.0, 1.0, 0.0]
    """
    xp = array_namespace(g)
    valid = formulas.measurement_is_valid(g)[..., None]
    smallest = xp.min(g, axis=-1, keepdims=True)
    zero = smallest == 0
    safe = xp.where(g > 0, g, xp.ones_like(g))
    inverse = xp.where(zero, xp.where(g == 0, xp.ones_like(g), xp.zeros_like(g)),
                       xp.where(zero, xp.ones_like(g), smallest) / safe)
    weights = inverse / xp.sum(inverse, axis=-1, keepdims=True)
    return xp.where(valid, weights, xp.full_like(weights, float("nan")))


def plaw_weighted_shares(shares):
    """The weighted shares the P-law's raw weights give: ``s_i(1−s_i)/Σ_j s_j(1−s_j)``."""
    xp = array_namespace(shares)
    x = shares * (1 - shares)
    return x / xp.sum(x, axis=-1, keepdims=True)


class InverseNormLaw(LoopLaw):
    """GABA whose law block is ``λ_raw ∝ 1/g``."""

    def raw(self, norms, state):
        return inverse_norm_weights(norms)


@register
class GABAInverse(LoopVariant):
    """GABA with the inverse-norm law (equal weighted norms for every K)."""

    name = "gaba_inverse"
    description = "GABA with the inverse-norm law λ ∝ 1/g (equalises λ_i g_i for any K)"
    law_class = InverseNormLaw
    loop: ClassVar[dict[str, str]] = {
        "sensor": "g_i", "reference": "equal weighted norms λ_i g_i",
        "comparator": "implicit (static inverse)", "law": "λ_raw ∝ 1/g, EMA, floor",
        "state": "the EMA (K numbers), the step count"}
