"""Block protocol and ``>>`` composition shared by the loop's numpy blocks."""

from __future__ import annotations

import numpy as np

__all__ = ["Block", "Chain"]


class Block:
    """One block of the loop: a per-step call and a batched call.

    ``block(x)`` maps one step's signal, shape ``(..., K)``. ``block.apply(X)``
    maps a whole sequence, shape ``(..., T, K)`` (independent runs, time,
    tasks). Stateful blocks advance their state in both. ``hold`` (shape
    ``(..., T)``) marks steps at which a stateful block must keep its state;
    stateless blocks ignore it.

    Blocks compose with ``>>`` into a :class:`Chain`, read left to right in
    signal order.
    """

    def __call__(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def apply(self, x: np.ndarray, hold: np.ndarray | None = None) -> np.ndarray:
        """Batched call over time (axis ``-2``); the default maps each step alike."""
        return self(x)

    def reset(self) -> None:
        """Return to the initial state (nothing to do for a stateless block)."""

    def __rshift__(self, other: Block) -> Chain:
        return Chain(self, other)


class Chain(Block):
    """Blocks in series: ``Chain(a, b)(x) == b(a(x))``.

    Examples
    --------
    >>> import numpy as np
    >>> from gaba_control.blocks import Sensor, Comparator, ProportionalLaw
    >>> chain = Sensor() >> Comparator(2) >> ProportionalLaw(2)
    >>> chain(np.array([3.0, 1.0]))
    array([0.25, 0.75])
    """

    def __init__(self, *blocks: Block):
        flat: list[Block] = []
        for block in blocks:
            if not isinstance(block, Block):
                raise TypeError(f"Chain takes Block instances, got {type(block).__name__}")
            flat.extend(block.blocks if isinstance(block, Chain) else [block])
        self.blocks: tuple[Block, ...] = tuple(flat)

    def __call__(self, x):
        for block in self.blocks:
            x = block(x)
        return x

    def apply(self, x, hold=None):
        for block in self.blocks:
            x = block.apply(x, hold=hold)
        return x

    def reset(self) -> None:
        for block in self.blocks:
            block.reset()

    def __repr__(self) -> str:
        return " >> ".join(repr(block) for block in self.blocks)
