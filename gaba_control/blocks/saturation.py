"""Saturation: floor each weight, then renormalise onto the simplex."""

from __future__ import annotations

import numpy as np

from gaba_control._validation import check_lambda_min, check_num_tasks
from gaba_control.formulas import floor_renormalise

from ._base import Block

__all__ = ["Saturation"]


class Saturation(Block):
    """Floor at ``λ_min`` and renormalise: ``λ* = max(λ̂, λ_min) / Σ max(λ̂, λ_min)``.

    The floor acts on the output only: the EMA state upstream is never
    clipped, which is why the seeds' "anti-windup" reading does not apply
    (the filter's state is unaffected by the saturation).

    Parameters
    ----------
    lambda_min : float
        Floor, in ``[0, 1/K)``.
    num_tasks : int
        Number of tasks ``K`` (for validating ``lambda_min``).

    Examples
    --------
    >>> import numpy as np
    >>> Saturation(0.05, 2)(np.array([0.002, 0.998])).round(6)
    array([0.04771, 0.95229])
    """

    def __init__(self, lambda_min: float, num_tasks: int):
        self.num_tasks = check_num_tasks(num_tasks)
        self.lambda_min = check_lambda_min(lambda_min, self.num_tasks)

    def __call__(self, weights: np.ndarray) -> np.ndarray:
        return floor_renormalise(np.asarray(weights, dtype=np.float64), self.lambda_min)

    def is_active(self, weights: np.ndarray) -> np.ndarray:
        """True where the floor binds for at least one task."""
        return np.any(np.asarray(weights) < self.lambda_min, axis=-1)

    def __repr__(self) -> str:
        return f"Saturation({self.lambda_min}, {self.num_tasks})"
