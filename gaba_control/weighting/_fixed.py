"""Constant weights; by default GABA's saturated output with the RUL task on the floor."""

from __future__ import annotations

import numpy as np

from gaba_control.formulas import floor_renormalise

from ._base import Option, WeightingMethod, _Constant, register

__all__ = ["Fixed", "fixed_weights"]


def fixed_weights(values=None, *, num_tasks: int = 2, lambda_min: float = 0.05) -> np.ndarray:
    """The weights of the ``fixed`` method: ``values`` normalised to sum 1.

    ``values=None`` gives GABA's saturated output for ``K = 2``, the RUL task at
    the floor: ``floor_renormalise((0, 1), λ_min) = (λ_min, 1)/(1 + λ_min)``.

    Raises
    ------
    ValueError
        Not ``num_tasks`` values, a negative or non-finite value, all zero, or
        ``values=None`` with ``num_tasks != 2``.

    Examples
    --------
    >>> fixed_weights().round(6)
    array([0.047619, 0.952381])
    >>> fixed_weights([1, 3])
    array([0.25, 0.75])
    """
    if values is None:
        if num_tasks != 2:
            raise ValueError(
                f"fixed weights need --weights for num_tasks={num_tasks} (default is K=2)"
            )
        return np.asarray(floor_renormalise(np.array([0.0, 1.0]), lambda_min), dtype=np.float64)
    w = np.asarray(values, dtype=np.float64).reshape(-1)
    if w.shape[0] != num_tasks:
        raise ValueError(f"weights must have {num_tasks} values (one per task), got {w.shape[0]}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError(f"weights must be finite and >= 0, got {w.tolist()}")
    if w.sum() <= 0:
        raise ValueError(f"weights must not all be zero, got {w.tolist()}")
    return w / w.sum()


@register
class Fixed(WeightingMethod):
    """Constant weights ``--weights`` (normalised), default ``(λ_min, 1)/(1 + λ_min)``."""

    name = "fixed"
    description = "constant --weights (default GABA's saturated output)"
    options = (
        Option("weights", "fixed: one weight per task (rul health), >= 0, normalised to sum 1 "
               "(default: GABA's saturated output (λ_min, 1)/(1 + λ_min))",
               nargs="+", metavar="W"),
    )

    def check(self) -> None:
        self.weights = fixed_weights(self.settings["weights"], num_tasks=self.num_tasks,
                                     lambda_min=self.controller["lambda_min"])

    def trajectory(self, num_steps: int) -> np.ndarray:
        return np.tile(self.weights, (num_steps, 1))

    def source(self, num_steps: int):
        return _Constant(self.weights)

    def summary(self, source=None) -> dict:
        return {"method": self.name, "weights": self.weights.tolist()}
