"""Sensor: gradient norms → shares of the total."""

from __future__ import annotations

import numpy as np

from gaba_control.formulas import sensor_shares

from ._base import Block

__all__ = ["Sensor"]


class Sensor(Block):
    """Measure each task's share of the gradient, ``s_i = g_i / Σ_j g_j``.

    Stateless. Rows that are not a valid measurement (a NaN or ``+inf`` norm,
    or all norms zero) give NaN shares, which the downstream
    :class:`~gaba_control.blocks.FirstOrderIIR` treats as "hold".

    See Also
    --------
    gaba_control.formulas.sensor_shares : the formula, shared with torch.
    Comparator : the next block, ``e = 1/K − s``.

    Examples
    --------
    >>> import numpy as np
    >>> Sensor()(np.array([500.0, 1.0])).round(6)
    array([0.998004, 0.001996])
    """

    def __call__(self, g: np.ndarray) -> np.ndarray:
        return sensor_shares(np.asarray(g, dtype=np.float64))

    def __repr__(self) -> str:
        return "Sensor()"
