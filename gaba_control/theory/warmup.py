r"""The warmup transition and the EMA trajectory after the gate opens.

The gate holds ``λ* = 1/K`` for steps ``t ≤ W`` (1-based) and leaves the EMA
state at its initial ``1/K``. Step ``W + 1`` is the first active step; after
``n = t − W`` active steps with a constant raw input ``x`` the state is the
step response of :mod:`.iir` started at ``1/K``:

.. math:: \hat λ(n) = x + (1/K − x)\,β^n, \qquad λ^*(n) = \text{floor\_renormalise}(\hat λ(n)).

See Also
--------
gaba_control.formulas.gate_is_open, gaba_control.theory.iir.step_response
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gaba_control._validation import check_beta, check_num_tasks, check_warmup
from gaba_control.formulas import ema_update, floor_renormalise, reference
from gaba_control.theory._checks import check_theory_lambda_min

__all__ = [
    "WarmupJump",
    "active_steps",
    "ema_after_active_steps",
    "first_active_step",
    "settling_progress",
    "steps_until_floor",
    "warmup_jump",
    "weights_after_active_steps",
]


def first_active_step(warmup: int) -> int:
    """First 1-based step at which the loop acts: ``W + 1``.

    Examples
    --------
    >>> first_active_step(100)
    101
    """
    return check_warmup(warmup) + 1


def active_steps(step, warmup: int):
    """Number of EMA updates made by 1-based step ``t``: ``max(t − W, 0)``.

    Examples
    --------
    >>> active_steps([100, 101, 150], 100)
    array([ 0,  1, 50])
    """
    warmup = check_warmup(warmup)
    return np.maximum(np.asarray(step, dtype=int) - warmup, 0)


def ema_after_active_steps(raw, steps, beta: float, initial=None):
    r"""EMA state after ``n`` active steps with the constant raw input ``raw``.

    Parameters
    ----------
    raw : array_like (K,)
        Constant raw weights (a point of the simplex).
    steps : int or array_like of int
        Number of active steps ``n ≥ 0``.
    beta : float
        EMA coefficient.
    initial : array_like (K,), optional
        State when the gate opens; ``1/K`` (the paper's) by default.

    Returns
    -------
    ndarray (..., K)
        ``raw + (initial − raw) β^n``; the leading axes are those of ``steps``.

    Notes
    -----
    The EMA is linear with unit DC gain, so each component follows the step
    response ``x + (y_0 − x)β^n`` (:func:`gaba_control.theory.iir.step_response`).

    Examples
    --------
    >>> ema_after_active_steps([0.002, 0.998], [1, 50], 0.99).round(6)
    array([[0.49502 , 0.50498 ],
           [0.303293, 0.696707]])
    """
    beta = check_beta(beta)
    raw = _check_simplex_point(raw, "raw")
    initial = (np.full(raw.shape, reference(raw.size)) if initial is None
               else _check_simplex_point(initial, "initial"))
    n = np.asarray(steps)
    if not np.issubdtype(n.dtype, np.integer) or np.any(n < 0):
        raise ValueError("steps must be integers >= 0")
    decay = beta ** n.astype(float)[..., None]
    return raw + (initial - raw) * decay


def weights_after_active_steps(raw, steps, beta: float, lambda_min: float, initial=None):
    """Output ``λ*`` after ``n`` active steps: :func:`ema_after_active_steps` floored.

    Examples
    --------
    >>> weights_after_active_steps([0.002, 0.998], 400, 0.99, 0.05).round(6)
    array([0.04812, 0.95188])
    """
    lambda_min = check_theory_lambda_min(lambda_min)
    return floor_renormalise(ema_after_active_steps(raw, steps, beta, initial), lambda_min)


def settling_progress(raw, steps, beta: float, lambda_min: float, task: int = 0):
    r"""Fraction of the way ``λ*_task`` has moved from ``1/K`` to its final value.

    ``(λ*(n) − 1/K)/(λ*(∞) − 1/K)`` with ``λ*(∞) = floor_renormalise(raw)``.
    While the floor is inactive this is ``1 − β^n`` for every task (the EMA
    gap closes geometrically); once the floor binds it is larger, because the
    floored weight stops moving early.

    Examples
    --------
    >>> round(float(settling_progress([0.002, 0.998], 100, 0.99, 0.05)), 3)
    0.698
    """
    final = floor_renormalise(_check_simplex_point(raw, "raw"), check_theory_lambda_min(lambda_min))
    now = weights_after_active_steps(raw, steps, beta, lambda_min)
    start = reference(final.size)
    return (now[..., task] - start) / (final[task] - start)


def steps_until_floor(raw_i: float, beta: float, lambda_min: float, initial: float) -> int | None:
    r"""First active step ``n`` at which the EMA component reaches the floor.

    Returns the smallest integer ``n`` with ``x + (y_0 − x)β^n ≤ λ_min``, or
    ``None`` if it never does (``x ≥ λ_min`` while ``y_0 > λ_min``); 0 if
    ``y_0 ≤ λ_min`` already.

    Notes
    -----
    For ``x < λ_min < y_0``: ``β^n ≤ (λ_min − x)/(y_0 − x)``, so
    ``n = ⌈\ln((λ_min − x)/(y_0 − x))/\ln β⌉``, checked exactly.

    Examples
    --------
    >>> steps_until_floor(0.002, 0.99, 0.05, 0.5)
    233
    """
    beta = check_beta(beta)
    lambda_min = check_theory_lambda_min(lambda_min)
    if initial <= lambda_min:
        return 0
    if raw_i >= lambda_min or beta == 0.0:
        return None if raw_i >= lambda_min else 1
    ratio = (lambda_min - raw_i) / (initial - raw_i)
    n = max(1, math.ceil(math.log(ratio) / math.log(beta)))
    while n > 1 and raw_i + (initial - raw_i) * beta ** (n - 1) <= lambda_min:
        n -= 1
    while raw_i + (initial - raw_i) * beta**n > lambda_min:
        n += 1
    return n


@dataclass(frozen=True)
class WarmupJump:
    """The change of ``λ*`` at the first active step ``W + 1``.

    Attributes
    ----------
    before : ndarray (K,)
        ``1/K`` (warmup output at step ``W``).
    after : ndarray (K,)
        ``λ*`` at step ``W + 1`` (floor and renormalisation included).
    ema : ndarray (K,)
        EMA state at step ``W + 1``: ``β/K + (1−β)x``.
    absolute : ndarray (K,)
        ``after − before``.
    relative : ndarray (K,)
        ``absolute / (1/K)``.
    linear_size : ndarray (K,)
        ``(1−β)|1/K − x|``: equals ``|absolute|`` when the floor is inactive.
    floor_active : bool
        Whether any EMA component is below ``λ_min`` at step ``W + 1``.
    """

    before: np.ndarray
    after: np.ndarray
    ema: np.ndarray
    absolute: np.ndarray
    relative: np.ndarray
    linear_size: np.ndarray
    floor_active: bool


def warmup_jump(raw, beta: float, lambda_min: float) -> WarmupJump:
    r"""Exact jump of ``λ*`` between steps ``W`` and ``W + 1`` for the raw input ``raw``.

    Notes
    -----
    At step ``W + 1`` the state is ``\hat λ = β/K + (1−β)x`` (one update from
    ``1/K``), so ``\hat λ − 1/K = (1−β)(x − 1/K)``. If no component is below
    ``λ_min`` the saturation is the identity (the state already sums to 1)
    and the jump is exactly ``(1−β)(x − 1/K)``: its size *equals*
    ``(1−β)|1/K − x|`` (it is not "less than" it). If the floor binds, the
    floored weights move less and the others are rescaled by the
    renormalisation.

    Examples
    --------
    >>> jump = warmup_jump([0.002, 0.998], 0.99, 0.05)
    >>> jump.absolute.round(6), jump.relative.round(5)
    (array([-0.00498,  0.00498]), array([-0.00996,  0.00996]))
    """
    beta = check_beta(beta)
    lambda_min = check_theory_lambda_min(lambda_min)
    raw = _check_simplex_point(raw, "raw")
    before = np.full(raw.shape, reference(raw.size))
    ema = ema_update(before, raw, beta)
    after = floor_renormalise(ema, lambda_min)
    absolute = after - before
    return WarmupJump(
        before=before,
        after=after,
        ema=ema,
        absolute=absolute,
        relative=absolute / before,
        linear_size=(1.0 - beta) * np.abs(before - raw),
        floor_active=bool(np.any(ema < lambda_min)),
    )


def _check_simplex_point(x, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if x.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of K weights, got shape {x.shape}")
    check_num_tasks(x.size)
    if not np.all(np.isfinite(x)) or np.any(x < 0) or not math.isclose(x.sum(), 1.0, abs_tol=1e-9):
        raise ValueError(f"{name} must be finite, non-negative and sum to 1, got {x}")
    return x
