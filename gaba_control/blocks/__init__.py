"""The GABA loop as numpy blocks, one module per block, in signal order.

``Sensor >> Comparator >> ProportionalLaw >> FirstOrderIIR >> Saturation``,
gated by ``WarmupGate``. Each block has a per-step call ``block(x)`` on
``(..., K)`` and a batched ``block.apply(X)`` on ``(..., T, K)``.
"""

from ._base import Block, Chain
from .comparator import Comparator
from .gate import WarmupGate
from .iir import FirstOrderIIR
from .plaw import ProportionalLaw
from .saturation import Saturation
from .sensor import Sensor

__all__ = [
    "Block",
    "Chain",
    "Comparator",
    "FirstOrderIIR",
    "ProportionalLaw",
    "Saturation",
    "Sensor",
    "WarmupGate",
]
