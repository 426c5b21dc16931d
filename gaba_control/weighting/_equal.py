"""Equal weights ``1/K``: the open-loop baseline every comparison starts from."""

from __future__ import annotations

import numpy as np

from ._base import WeightingMethod, _Constant, register

__all__ = ["Equal"]


@register
class Equal(WeightingMethod):
    """``λ_i = 1/K`` at every step (the delivered gradient is ``Σ ∇L_i / K``)."""

    name = "equal"
    description = "1/K at every step"

    def trajectory(self, num_steps: int) -> np.ndarray:
        return np.full((num_steps, self.num_tasks), 1.0 / self.num_tasks)

    def source(self, num_steps: int):
        return _Constant(np.full(self.num_tasks, 1.0 / self.num_tasks))
