"""Proportional law: raw weights from the share error."""

from __future__ import annotations

import numpy as np

from gaba_control._validation import check_num_tasks
from gaba_control.formulas import proportional_gain, proportional_law, reference

from ._base import Block

__all__ = ["ProportionalLaw"]


class ProportionalLaw(Block):
    r"""Raw weights ``λ_raw = r + K_p·e`` with ``r = 1/K`` and ``K_p = 1/(K−1)``.

    This is the paper's inverse-gradient closed form in disguise:

    .. math:: \frac1K + \frac{1}{K-1}\Big(\frac1K - \frac{g_i}{S}\Big)
              = \frac{S - g_i}{(K-1)S}, \qquad S = \textstyle\sum_j g_j,

    so the output lies on the simplex and in ``[0, 1/(K−1)]``.

    See Also
    --------
    gaba_control.formulas.inverse_gradient_weights : eq. 4 written directly.
    gaba_control.theory : the identity and the raw-weight range.

    Examples
    --------
    >>> import numpy as np
    >>> ProportionalLaw(3)(np.array([-0.4, 0.2, 0.2])).round(6)
    array([0.133333, 0.433333, 0.433333])
    """

    def __init__(self, num_tasks: int):
        self.num_tasks = check_num_tasks(num_tasks)

    @property
    def gain(self) -> float:
        return proportional_gain(self.num_tasks)

    @property
    def reference(self) -> float:
        return reference(self.num_tasks)

    def __call__(self, error: np.ndarray) -> np.ndarray:
        return proportional_law(np.asarray(error, dtype=np.float64), self.num_tasks)

    def __repr__(self) -> str:
        return f"ProportionalLaw({self.num_tasks})"
