"""Argument checks specific to the theory module.

The theory functions *describe* the loop, so they accept a wider range than
the controller configures (e.g. ``0 ≤ λ_min < 1`` rather than ``< 1/K``);
the shared checks in :mod:`gaba_control._validation` are used wherever the
range is the same.
"""

from __future__ import annotations

from gaba_control._validation import is_finite_number


def check_real(value, name: str, *, low: float, high: float, high_open: bool = True,
               low_open: bool = False) -> float:
    """Return ``value`` as a float, or raise if it is not a real in the given interval."""
    if not is_finite_number(value):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            raise ValueError(f"{name} must be finite, got {value}")
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if too_low or too_high:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        raise ValueError(f"{name} must lie in {left}{low:g}, {high:g}{right}, got {value}")
    return value


def check_theory_lambda_min(lambda_min) -> float:
    """``λ_min`` for the theory functions: any real in ``[0, 1)``."""
    return check_real(lambda_min, "lambda_min", low=0.0, high=1.0)


def check_fraction(fraction) -> float:
    """A settling tolerance: a real in ``(0, 1)``."""
    return check_real(fraction, "fraction", low=0.0, high=1.0, low_open=True)


def check_correlation(rho) -> float:
    """An AR(1) coefficient: a real in ``(−1, 1)`` (a stationary input)."""
    return check_real(rho, "rho", low=-1.0, high=1.0, low_open=True)


def check_nonnegative_int(value, name: str) -> int:
    """Return ``value`` as an int, or raise if it is not an integer ≥ 0."""
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise TypeError(f"{name} must be an int >= 0, got {type(value).__name__}")
    value = int(value)
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


