"""Warmup gate: uniform weights for the first W steps, the loop afterwards."""

from __future__ import annotations

import numpy as np

from gaba_control._validation import check_num_tasks, check_warmup
from gaba_control.formulas import gate_is_open

from ._base import Block

__all__ = ["WarmupGate"]


class WarmupGate(Block):
    """Hold uniform ``1/K`` weights while ``t ≤ W``; pass the inner loop after.

    The step ``t`` counts calls from 1 (inclusive comparison: step ``W`` is
    the last gated one, ``W + 1`` the first active one). While the gate is
    closed the inner block is not called per step, and in the batched call
    its stateful blocks receive ``hold=True``, so the EMA state stays at its
    initial value, as in the paper's Algorithm 1.

    Parameters
    ----------
    warmup : int
        Number of gated steps ``W ≥ 0``.
    num_tasks : int
        Number of tasks ``K``.
    inner : Block, optional
        The loop to gate, e.g. ``Sensor() >> Comparator(K) >> ...``. Without
        it the gate passes its input through once open.

    Examples
    --------
    >>> import numpy as np
    >>> from gaba_control.blocks import FirstOrderIIR
    >>> gate = WarmupGate(1, 2, inner=FirstOrderIIR(0.5, 2))
    >>> gate.apply(np.array([[0.0, 1.0], [0.0, 1.0]]))
    array([[0.5 , 0.5 ],
           [0.25, 0.75]])
    """

    def __init__(self, warmup: int, num_tasks: int, inner: Block | None = None):
        self.warmup = check_warmup(warmup)
        self.num_tasks = check_num_tasks(num_tasks)
        if inner is not None and not isinstance(inner, Block):
            raise TypeError(f"inner must be a Block, got {type(inner).__name__}")
        self.inner = inner
        self.step = 0

    def reset(self) -> None:
        self.step = 0
        if self.inner is not None:
            self.inner.reset()

    def advance(self, num_steps: int = 1) -> np.ndarray:
        """Advance the counter by ``num_steps``; return which of them are active."""
        steps = self.step + np.arange(1, num_steps + 1)
        self.step += num_steps
        return gate_is_open(steps, self.warmup)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if not self.advance(1)[0]:
            return np.full((*x.shape[:-1], self.num_tasks), 1.0 / self.num_tasks)
        return self.inner(x) if self.inner is not None else x

    def apply(self, x: np.ndarray, hold: np.ndarray | None = None) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        active = self.advance(x.shape[-2])
        closed = ~active if hold is None else (~active | np.asarray(hold, dtype=bool))
        y = x if self.inner is None else self.inner.apply(x, hold=closed)
        return np.where(active[:, None], y, 1.0 / self.num_tasks)

    def __repr__(self) -> str:
        return f"WarmupGate({self.warmup}, {self.num_tasks}, inner={self.inner!r})"
