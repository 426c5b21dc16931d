"""Torch front end of the GABA loop: :class:`GABALoss`, a drop-in multi-task loss module.

>>> from gaba_control.nn import GABALoss
>>> GABALoss(3, warmup=10)
GABALoss(num_tasks=3, beta=0.99, warmup=10, lambda_min=0.05, sensor='exact', nonfinite='skip')
"""

from .gaba_loss import GABALoss, GABAStep

__all__ = ["GABALoss", "GABAStep"]
