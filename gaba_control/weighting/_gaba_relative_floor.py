r"""GABA with a floor relative to the equal share: ``λ_min = ρ/K``.

GABA's floor is an absolute ``λ_min``, valid only while ``λ_min < 1/K``
(``0.05`` is inadmissible from ``K = 20``) and ever more binding as ``K``
grows: the floors alone take ``K·λ_min`` of the simplex (a quarter at
``K = 5``, half at ``K = 10``). This variant swaps the saturation block's
constant for ``ρ/K``: the floors take the fixed fraction ``ρ`` of the simplex
at every ``K``, the admissible range ``ρ ∈ [0, 1)`` does not depend on ``K``,
and the floor's output for a starved task, ``(ρ/K)/(ρ/K·m + (1 − m·ρ/K)…)``, scales with
``1/K``. With the default ``ρ = 0.1`` it equals GABA's ``λ_min = 0.05`` at
``K = 2``. Every other variant takes the same floor through ``--floor-fraction``.
"""

from __future__ import annotations

from typing import ClassVar

from ._base import register
from ._loop_law import LoopLaw, LoopVariant

__all__ = ["GABARelativeFloor"]


@register
class GABARelativeFloor(LoopVariant):
    """GABA's pipeline with the floor ``ρ/K`` (default ``ρ = 0.1``)."""

    name = "gaba_relative_floor"
    description = "GABA with the floor ρ/K relative to the equal share (default ρ = 0.1)"
    law_class = LoopLaw
    default_floor_fraction = 0.1
    loop: ClassVar[dict[str, str]] = {
        "sensor": "g_i → shares", "reference": "1/K", "comparator": "e = 1/K − s",
        "law": "P-law, EMA, floor ρ/K", "state": "the EMA (K numbers), the step count"}
