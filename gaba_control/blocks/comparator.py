"""Comparator: error between the equal-share reference and the measured share."""

from __future__ import annotations

import numpy as np

from gaba_control._validation import check_num_tasks
from gaba_control.formulas import comparator_error, reference

from ._base import Block

__all__ = ["Comparator"]


class Comparator(Block):
    """Compare the shares with the reference ``r = 1/K``: ``e = r − s``.

    A positive error means the task pulls less than its equal share. The
    errors of a valid measurement sum to zero.

    Examples
    --------
    >>> import numpy as np
    >>> Comparator(2)(np.array([0.75, 0.25]))
    array([-0.25,  0.25])
    """

    def __init__(self, num_tasks: int):
        self.num_tasks = check_num_tasks(num_tasks)

    @property
    def reference(self) -> float:
        return reference(self.num_tasks)

    def __call__(self, shares: np.ndarray) -> np.ndarray:
        return comparator_error(np.asarray(shares, dtype=np.float64), self.num_tasks)

    def __repr__(self) -> str:
        return f"Comparator({self.num_tasks})"
