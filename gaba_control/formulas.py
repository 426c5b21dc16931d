r"""The GABA formulas, written once for numpy arrays and torch tensors alike.

Every implementation in the package (the numpy blocks and controller, the
python-control models, the torch :class:`~gaba_control.nn.GABALoss`) computes
the loop through these functions. They use the array-API namespace of their
input (``array_api_compat.array_namespace``), so the same source runs on
numpy arrays and on torch tensors of any device and dtype.

The loop, one function per block::

    g ──sensor_shares──> s ──comparator_error──> e ──proportional_law──> λ_raw
      ──ema_update──> λ̂ ──floor_renormalise──> λ*          (gated by gate_is_open)

All functions broadcast over leading axes; the task axis is the last one.

Measurement policy
------------------
A measurement row ``g`` is *valid* when every entry is finite and at least
one is positive (:func:`measurement_is_valid`). For an invalid row (a NaN or
``+inf`` norm, or every norm exactly zero) :func:`sensor_shares` returns NaN
shares, and the controllers skip the EMA update for that step: the EMA state
holds, so the output (the saturated state, or ``1/K`` while gated) holds too. The paper's
``(S + ε − g) / ((K−1)(S + ε))`` instead returns ``K/(K−1)`` in total when
every ``g`` is zero, i.e. weights off the simplex (see
:func:`inverse_gradient_weights_eps`).
"""

from __future__ import annotations

from array_api_compat import array_namespace as _array_namespace

__all__ = [
    "checked_shares",
    "comparator_error",
    "decimated_beta",
    "ema_update",
    "floor_renormalise",
    "gate_is_open",
    "inverse_gradient_weights",
    "inverse_gradient_weights_eps",
    "measurement_is_valid",
    "proportional_gain",
    "proportional_law",
    "raw_weights",
    "reference",
    "sensor_shares",
    "weighted_shares",
]


_NAMESPACES: dict[type, object] = {}


def array_namespace(x):
    """``array_api_compat.array_namespace(x)``, memoised by ``type(x)``.

    The namespace depends only on the array type, and torch's loss module
    calls these functions every training step: the lookup costs more than
    the arithmetic on ``K`` numbers.
    """
    xp = _NAMESPACES.get(type(x))
    if xp is None:
        xp = _NAMESPACES[type(x)] = _array_namespace(x)
    return xp


def reference(num_tasks: int) -> float:
    """Set point of the loop: the equal share ``r = 1/K``."""
    return 1.0 / num_tasks


def proportional_gain(num_tasks: int) -> float:
    """Gain of the P-law, ``K_p = 1/(K−1)`` (unity for two tasks)."""
    return 1.0 / (num_tasks - 1)


def measurement_is_valid(g):
    """True for rows of ``g`` that are finite with at least one positive entry.

    Parameters
    ----------
    g : array (..., K)
        Non-negative gradient norms.

    Returns
    -------
    array (...) of bool
    """
    return _row_is_valid(_row_max(g))[..., 0]


def _row_max(g):
    # For non-negative rows the maximum decides validity: NaN and +inf propagate into it,
    # and it is 0 only when every norm is 0. One pass instead of three.
    xp = array_namespace(g)
    if g.shape[-1] > _UNROLLED_TASKS:
        return xp.max(g, axis=-1, keepdims=True)
    out = g[..., 0:1]
    for i in range(1, g.shape[-1]):
        out = xp.maximum(out, g[..., i : i + 1])  # propagates NaN, as max does
    return out


#: Up to this many tasks, sums and maxima over the task axis are unrolled into K − 1
#: elementwise operations: a reduction over a short last axis costs ~10× more per element
#: in numpy. The order is numpy's own for fewer than 8 terms (it sums 8 or more pairwise),
#: so the result is the same to the bit.
_UNROLLED_TASKS = 7


def _row_sum(x):
    """``Σ`` over the task (last) axis, keeping it."""
    xp = array_namespace(x)
    if x.shape[-1] > _UNROLLED_TASKS:
        return xp.sum(x, axis=-1, keepdims=True)
    out = x[..., 0:1]
    for i in range(1, x.shape[-1]):
        out = out + x[..., i : i + 1]
    return out


def _row_is_valid(row_max):
    xp = array_namespace(row_max)
    return xp.isfinite(row_max) & (row_max > 0)


def sensor_shares(g):
    r"""Sensor: gradient norms → shares ``s_i = g_i / Σ_j g_j``.

    The norms are first divided by their row maximum, so the shares are
    invariant to the scale of ``g`` and never overflow (``g = 1e30`` in
    float32 is fine). Invalid rows (see :func:`measurement_is_valid`) give NaN.

    Examples
    --------
    >>> import numpy as np
    >>> sensor_shares(np.array([3.0, 1.0]))
    array([0.75, 0.25])
    """
    return checked_shares(g)[1]


def checked_shares(g):
    """:func:`measurement_is_valid` and :func:`sensor_shares` of ``g`` from one validity pass.

    The loop needs both every step; the row maximum that decides validity also
    scales the shares, so it is taken once.

    Returns
    -------
    valid : array (...) of bool
    shares : array (..., K)
    """
    xp = array_namespace(g)
    row_max = _row_max(g)
    valid = _row_is_valid(row_max)
    one = xp.ones_like(row_max)
    scaled = xp.where(valid, g, one) / xp.where(valid, row_max, one)
    shares = scaled / _row_sum(scaled)
    return valid[..., 0], xp.where(valid, shares, xp.full_like(row_max, float("nan")))


def comparator_error(shares, num_tasks: int):
    """Comparator: ``e = r − s`` with the reference ``r = 1/K``.

    Positive ``e_i``: task ``i`` pulls less than its equal share.
    """
    return reference(num_tasks) - shares


def proportional_law(error, num_tasks: int):
    """Proportional law: ``λ_raw = r + K_p·e`` with ``K_p = 1/(K−1)``.

    For shares on the simplex the output is on the simplex and lies in
    ``[0, 1/(K−1)]``; it equals the paper's closed form
    :func:`inverse_gradient_weights` (see :mod:`gaba_control.theory`).
    """
    return reference(num_tasks) + proportional_gain(num_tasks) * error


def raw_weights(g):
    """Sensor → comparator → P-law in one call: the raw (unsmoothed) weights."""
    num_tasks = g.shape[-1]
    return proportional_law(comparator_error(sensor_shares(g), num_tasks), num_tasks)


def inverse_gradient_weights(g):
    r"""The paper's closed form (eq. 4), written directly.

    .. math:: λ_i = \frac{Σ_j g_j − g_i}{(K − 1) Σ_j g_j}

    Kept as the reference the block chain is checked against; the controllers
    use :func:`raw_weights`, which is the same map to rounding.
    """
    num_tasks = g.shape[-1]
    total = _row_sum(g)
    return (total - g) / ((num_tasks - 1) * total)


def inverse_gradient_weights_eps(g, eps: float = 1e-12):
    """The paper's code form of eq. 4, with ``ε`` added to the sum.

    Kept only to document its failure mode: for ``g = 0`` every weight is
    ``1/(K−1)`` and the weights sum to ``K/(K−1)``, off the simplex.
    """
    num_tasks = g.shape[-1]
    total = _row_sum(g) + eps
    return (total - g) / ((num_tasks - 1) * total)


def ema_update(previous, x, beta: float):
    """First-order IIR (the EMA): ``y[n] = β·y[n−1] + (1−β)·x[n]``."""
    return beta * previous + (1.0 - beta) * x


def decimated_beta(beta: float, every: int) -> float:
    """EMA coefficient per refresh when the sensor is read every ``N`` steps.

    ``β^N`` per refresh keeps the time constant in steps: ``N`` steps of
    ``β`` decay a memory by ``β^N``.
    """
    return beta**every


def floor_renormalise(weights, lambda_min: float):
    """Saturation: floor at ``λ_min``, then renormalise onto the simplex.

    ``λ*_i = max(λ̂_i, λ_min) / Σ_j max(λ̂_j, λ_min)``.

    Examples
    --------
    >>> import numpy as np
    >>> floor_renormalise(np.array([0.0, 1.0]), 0.05).round(6)
    array([0.047619, 0.952381])
    """
    xp = array_namespace(weights)
    floored = xp.maximum(weights, lambda_min)  # clip(·, λ_min, None) at a tenth of the cost
    return floored / _row_sum(floored)


def weighted_shares(weights, g):
    """What the loop achieves: each task's share ``λ_i g_i / Σ_j λ_j g_j`` of the weighted norms.

    The loop's aim is ``1/K`` for every task; the raw weights reach it exactly
    for ``K = 2`` (``λ_1 g_1 = λ_2 g_2``), the floor moves it away.

    Examples
    --------
    >>> import numpy as np
    >>> weighted_shares(np.array([0.2, 0.8]), np.array([4.0, 1.0]))
    array([0.5, 0.5])
    """
    return sensor_shares(weights * g)


def gate_is_open(step, warmup: int):
    """Warmup gate: the loop acts at 1-based step ``t`` only when ``t > W``."""
    return step > warmup
