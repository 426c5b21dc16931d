"""Argument checks shared by every implementation (numpy, python-control, torch).

Each check raises ``TypeError`` for a wrong type and ``ValueError`` for a value
outside its allowed range, and the message names the argument and the range,
so a bad configuration fails at construction time rather than mid-training.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = [
    "check_beta",
    "check_grad_norms",
    "check_lambda_min",
    "check_no_extra_kwargs",
    "check_num_tasks",
    "check_positive_int",
    "check_simplex_rows",
    "check_warmup",
]


#: step counters are 64-bit in torch: a count beyond this could not advance
MAX_STEPS = 2**62


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_num_tasks(num_tasks) -> int:
    """Return ``num_tasks`` as an int, or raise if it is not an integer ≥ 2."""
    if not _is_int(num_tasks):
        raise TypeError(f"num_tasks must be an int >= 2, got {type(num_tasks).__name__}")
    if num_tasks < 2:
        raise ValueError(f"num_tasks must be >= 2 (two tasks to balance), got {num_tasks}")
    return int(num_tasks)


def check_beta(beta) -> float:
    """Return ``beta`` as a float, or raise if it lies outside ``[0, 1)``."""
    if not _is_real(beta):
        raise TypeError(f"beta must be a real number in [0, 1), got {type(beta).__name__}")
    beta = float(beta)
    if not (0.0 <= beta < 1.0):
        raise ValueError(f"beta must lie in [0, 1) (pole inside the unit circle), got {beta}")
    return beta


def check_lambda_min(lambda_min, num_tasks: int) -> float:
    """Return ``lambda_min`` as a float, or raise if it lies outside ``[0, 1/K)``.

    At ``lambda_min >= 1/K`` the floors alone sum to at least one and the
    saturation can no longer express any preference between tasks.
    """
    if not _is_real(lambda_min):
        raise TypeError(
            f"lambda_min must be a real number in [0, 1/num_tasks), got {type(lambda_min).__name__}"
        )
    lambda_min = float(lambda_min)
    upper = 1.0 / num_tasks
    if not (0.0 <= lambda_min < upper):
        raise ValueError(
            f"lambda_min must lie in [0, 1/num_tasks) = [0, {upper:.6g}) for "
            f"num_tasks={num_tasks}, got {lambda_min}"
        )
    return lambda_min


def check_warmup(warmup) -> int:
    """Return ``warmup`` as an int, or raise if it is not an integer ≥ 0."""
    if not _is_int(warmup):
        raise TypeError(f"warmup must be an int in [0, 2^62], got {type(warmup).__name__}")
    if not 0 <= warmup <= MAX_STEPS:
        raise ValueError(f"warmup must lie in [0, 2^62] steps, got {warmup}")
    return int(warmup)


def check_positive_int(value, name: str) -> int:
    """Return ``value`` as an int, or raise if it is not an integer ≥ 1."""
    if not _is_int(value):
        raise TypeError(f"{name} must be an int >= 1, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def check_grad_norms(grad_norms, num_tasks: int, *, name: str = "grad_norms") -> np.ndarray:
    """Return ``grad_norms`` as a float64 array whose last axis has length K.

    Raises ``ValueError`` for a wrong last-axis length or for negative entries
    (a norm is never negative; ``-inf`` counts as negative). ``NaN`` and
    ``+inf`` are accepted here: the controller's policy skips those steps.
    """
    array = np.asarray(grad_norms)
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_
    ):
        raise TypeError(f"{name} must be a numeric array, got dtype {array.dtype}")
    if np.iscomplexobj(array):
        raise TypeError(f"{name} must be real, got dtype {array.dtype}")
    array = array.astype(np.float64, copy=False)
    if array.ndim == 0 or array.shape[-1] != num_tasks:
        raise ValueError(
            f"{name} must have shape (..., num_tasks) with num_tasks={num_tasks}, "
            f"got shape {array.shape}"
        )
    if np.any(array < 0):
        raise ValueError(f"{name} must be >= 0 (they are norms); found a negative entry")
    return array


def check_simplex_rows(values, name: str, num_tasks: int, *, atol: float = 1e-5) -> np.ndarray:
    """Return ``values`` as float64 if its rows (last axis ``K``) lie on the simplex.

    Finite, ``≥ 0``, each row summing to 1 within ``atol`` (float32 rounding
    of a sum of ``K`` entries): what the loop's EMA state and its weights
    always are. Used for constructed and loaded state alike.
    """
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 0 or array.shape[-1] != num_tasks:
        raise ValueError(f"{name} must have shape (..., {num_tasks}), got {array.shape}")
    if not np.all(np.isfinite(array)) or np.any(array < 0):
        raise ValueError(f"{name} must be {num_tasks} finite numbers >= 0 per row, got "
                         f"{array.tolist()}")
    sums = array.sum(axis=-1)
    if np.any(np.abs(sums - 1.0) > atol):
        raise ValueError(f"{name} must sum to 1 per row (a point of the simplex), got sums "
                         f"{np.unique(sums).tolist()[:4]}")
    return array


def check_no_extra_kwargs(kwargs: dict, where: str) -> None:
    """Raise ``TypeError`` naming unknown keyword arguments, as python-control does."""
    if kwargs:
        names = ", ".join(sorted(kwargs))
        raise TypeError(f"{where}() got unexpected keyword argument(s): {names}")


def is_finite_number(value) -> bool:
    """True for a real finite number (used by the theory module's checks)."""
    return _is_real(value) and math.isfinite(float(value))
