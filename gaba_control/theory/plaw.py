r"""The proportional law and the paper's closed form are one map.

With shares ``s_i = g_i/Σg``, reference ``r = 1/K``, error ``e_i = r − s_i``
and gain ``K_p = 1/(K−1)``, the P-law output is

.. math:: λ_i = \frac1K + \frac{e_i}{K−1} = \frac{Σ_j g_j − g_i}{(K−1)\,Σ_j g_j},

the paper's inverse-gradient weights (eq. 4).

See Also
--------
gaba_control.formulas.proportional_law, gaba_control.formulas.inverse_gradient_weights
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gaba_control._validation import check_grad_norms, check_num_tasks
from gaba_control.formulas import (
    comparator_error,
    inverse_gradient_weights,
    measurement_is_valid,
    proportional_law,
    sensor_shares,
)

__all__ = [
    "ProportionalLawIdentity",
    "proportional_law_identity",
    "raw_weight_attainers",
    "raw_weight_range",
]


@dataclass(frozen=True)
class ProportionalLawIdentity:
    """Both sides of ``1/K + e/(K−1) = (Σg − g_i)/((K−1)Σg)`` for one input.

    Attributes
    ----------
    proportional_law : ndarray (..., K)
        ``1/K + e_i/(K−1)`` through the sensor, comparator and P-law blocks.
    closed_form : ndarray (..., K)
        The paper's eq. 4 written directly.
    max_abs_difference : float
        Largest ``|left − right|`` (rounding only).
    """

    proportional_law: np.ndarray
    closed_form: np.ndarray
    max_abs_difference: float

    def holds(self, atol: float = 1e-12) -> bool:
        """True when the two sides agree to ``atol``."""
        return self.max_abs_difference <= atol


def proportional_law_identity(grad_norms) -> ProportionalLawIdentity:
    r"""Evaluate both sides of the P-law identity for valid gradient norms.

    Parameters
    ----------
    grad_norms : array_like (..., K)
        Non-negative, finite norms with a positive entry in each row.

    Returns
    -------
    ProportionalLawIdentity

    Notes
    -----
    With ``S = Σ_j g_j`` and ``s_i = g_i/S``:

    .. math:: \frac1K + \frac{1/K − s_i}{K−1} = \frac{(K−1) + 1}{K(K−1)} − \frac{s_i}{K−1}
              = \frac{1 − s_i}{K−1} = \frac{S − g_i}{(K−1)S}.

    So the comparator/P-law reading adds nothing numerically; it explains the
    gain: ``Σ e_i = 0`` keeps ``Σ λ_i = 1`` for any gain, and
    ``λ_i = 1/K − K_p (K−1)/K ≥ 0`` at ``s_i = 1`` needs ``K_p ≤ 1/(K−1)``.
    ``K_p = 1/(K−1)`` is the largest gain that keeps every weight
    non-negative for every input; a task that carries the whole gradient
    gets weight exactly 0.

    Examples
    --------
    >>> ident = proportional_law_identity([3.0, 1.0, 0.0])
    >>> ident.closed_form
    array([0.125, 0.375, 0.5  ])
    >>> ident.holds()
    True
    """
    g = np.asarray(grad_norms, dtype=float)
    num_tasks = check_num_tasks(g.shape[-1] if g.ndim else 0)
    g = check_grad_norms(g, num_tasks)
    if not np.all(measurement_is_valid(g)):
        raise ValueError("grad_norms must be finite with a positive entry in every row")
    left = proportional_law(comparator_error(sensor_shares(g), num_tasks), num_tasks)
    right = inverse_gradient_weights(g)
    return ProportionalLawIdentity(left, right, float(np.max(np.abs(left - right))))


def raw_weight_range(num_tasks: int) -> tuple[float, float]:
    r"""Range ``[0, 1/(K−1)]`` of each raw weight over all valid inputs.

    Notes
    -----
    ``λ_i = (1 − s_i)/(K−1)`` with ``s_i ∈ [0, 1]``. The lower end 0 is reached
    exactly when ``s_i = 1``: task ``i`` is the only one with a non-zero
    gradient. The upper end ``1/(K−1)`` is reached exactly when ``s_i = 0``:
    task ``i`` has a zero gradient (whatever the others are). For ``K = 2`` the
    range is the whole ``[0, 1]``; for ``K ≥ 3`` no raw weight exceeds
    ``1/(K−1) < 1``. The map ``s ↦ (1 − s)/(K−1)`` is a bijection from the
    simplex onto ``Δ ∩ [0, 1/(K−1)]^K`` (``Σ(1 − s_i) = K − 1``), the set the
    output bounds of :mod:`.bounds` are taken over.

    Examples
    --------
    >>> raw_weight_range(3)
    (0.0, 0.5)
    """
    num_tasks = check_num_tasks(num_tasks)
    return 0.0, 1.0 / (num_tasks - 1)


def raw_weight_attainers(num_tasks: int, task: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Gradient norms at which raw weight ``task`` hits its lower and its upper end.

    Returns ``(g_low, g_high)``: ``g_low`` has only ``task`` non-zero
    (``λ_task = 0``); ``g_high`` has ``task`` zero and the others one
    (``λ_task = 1/(K−1)``; any non-zero others would do).

    Examples
    --------
    >>> low, high = raw_weight_attainers(3)
    >>> inverse_gradient_weights(low)[0], inverse_gradient_weights(high)[0]
    (np.float64(0.0), np.float64(0.5))
    """
    num_tasks = check_num_tasks(num_tasks)
    if isinstance(task, bool) or not isinstance(task, int) or not 0 <= task < num_tasks:
        raise ValueError(f"task must be an int in [0, {num_tasks}), got {task!r}")
    low = np.zeros(num_tasks)
    low[task] = 1.0
    return low, 1.0 - low
