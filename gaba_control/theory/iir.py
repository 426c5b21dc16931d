r"""Closed forms for the EMA read as a first-order IIR low-pass filter.

The filter is

.. math:: y[n] = β\,y[n-1] + (1-β)\,x[n], \qquad
          H(z) = \frac{(1-β)\,z}{z-β} = \frac{1-β}{1-βz^{-1}},

a single real pole at ``z = β`` and unit DC gain (``scipy.signal.lfilter([1-β],
[1, -β], x)``; ``control.tf([1-β, 0], [1, -β], dt=1)``). Every function takes
``β ∈ [0, 1)`` and works in steps (samples).

See Also
--------
gaba_control.formulas.ema_update : the update these formulas describe.
gaba_control.theory.variance : what the filter does to noise.
"""

from __future__ import annotations

import math

import numpy as np

from gaba_control._validation import check_beta, check_no_extra_kwargs
from gaba_control.theory._checks import check_fraction, check_real

__all__ = [
    "cutoff_approximation_error",
    "cutoff_frequency",
    "cutoff_frequency_approx",
    "dc_gain",
    "fraction_settled",
    "frequency_response",
    "half_life",
    "impulse_response",
    "magnitude_response",
    "nyquist_gain",
    "phase_response",
    "settling_steps",
    "settling_time",
    "step_response",
    "time_constant",
]

_UNITS = ("rad", "cycles")


def time_constant(beta: float) -> float:
    r"""Time constant ``τ = 1/(1−β)`` in steps.

    Parameters
    ----------
    beta : float
        EMA coefficient in ``[0, 1)``.

    Returns
    -------
    float

    Notes
    -----
    Two readings give the same number. (i) The impulse response
    ``h[n] = (1−β)β^n`` has mean age ``Σ n h[n] = β/(1−β) = τ − 1`` samples
    behind the current one, i.e. the filter averages about ``τ`` samples.
    (ii) For ``β → 1``, ``β^n = e^{n\ln β} ≈ e^{−n/τ}`` because
    ``−\ln β = (1−β) + O((1−β)^2)``: after ``τ`` steps the step response is
    ``1 − β^τ ≈ 1 − 1/e``, but only approximately (``1 − 0.99^{100} = 0.634``,
    not ``0.632``).

    Examples
    --------
    >>> round(time_constant(0.99), 9)
    100.0
    """
    beta = check_beta(beta)
    return 1.0 / (1.0 - beta)


def half_life(beta: float) -> float:
    r"""Half-life ``ln 2 / (−ln β)``: steps for a memory (or a step's gap) to halve.

    Returns 0 for ``β = 0`` (no memory).

    Notes
    -----
    The response to a step from ``y0`` to ``a`` leaves the gap
    ``a − y[n] = (a − y0) β^n``; solving ``β^n = 1/2`` for real ``n`` gives
    ``n = \ln 2/(−\ln β)``. The first integer step at which the gap is at most
    half is ``⌈n⌉`` (:func:`settling_steps` with ``fraction=0.5``).

    Examples
    --------
    >>> round(half_life(0.99), 4)
    68.9676
    """
    beta = check_beta(beta)
    if beta == 0.0:
        return 0.0
    return math.log(2.0) / -math.log(beta)


def settling_time(beta: float, fraction: float = 0.05) -> float:
    r"""Real-valued steps until a step response is within ``fraction`` of its final value.

    Parameters
    ----------
    beta : float
        EMA coefficient in ``[0, 1)``.
    fraction : float, optional
        Remaining gap as a fraction of the initial gap, in ``(0, 1)``
        (0.05 is the "95 % settled" criterion).

    Returns
    -------
    float
        ``ln(fraction)/ln(β)``; 0 for ``β = 0``.

    Notes
    -----
    From ``(a − y[n])/(a − y0) = β^n`` (see :func:`step_response`), the gap
    equals ``fraction`` at ``n = \ln(\text{fraction})/\ln β``. The familiar
    "3τ" rule replaces ``−\ln β`` by ``1−β`` and ``−\ln 0.05 = 2.996`` by 3.

    Examples
    --------
    >>> round(settling_time(0.99, 0.05), 3)
    298.073
    """
    beta = check_beta(beta)
    fraction = check_fraction(fraction)
    if beta == 0.0:
        return 0.0
    return math.log(fraction) / math.log(beta)


def settling_steps(beta: float, fraction: float = 0.05) -> int:
    r"""First integer number of updates ``n`` after which the gap is ``≤ fraction``.

    ``n`` counts EMA updates with the new input applied: ``n = 0`` is the
    initial state, ``n = 1`` the first update. The returned ``n`` is the
    first integer with ``β^n ≤ fraction`` (``⌈settling_time⌉``, checked
    exactly so rounding in the logarithms cannot shift it by one).

    Notes
    -----
    The gap after ``n`` updates is ``β^n`` times the initial gap
    (:func:`step_response`), which decreases monotonically in ``n``.

    Examples
    --------
    >>> settling_steps(0.99, 0.05)  # the "3τ = 300" rule is one step late
    299
    >>> settling_steps(0.99, 0.5)  # first step at least half-way
    69
    """
    beta = check_beta(beta)
    fraction = check_fraction(fraction)
    if beta == 0.0:
        return 1
    n = max(0, math.ceil(math.log(fraction) / math.log(beta)))
    while n > 0 and beta ** (n - 1) <= fraction:
        n -= 1
    while beta**n > fraction:
        n += 1
    return n


def fraction_settled(beta: float, steps):
    r"""Fraction ``1 − β^n`` of a step's gap closed after ``n`` updates.

    Examples
    --------
    >>> fraction_settled(0.99, [100, 300]).round(4)
    array([0.634, 0.951])
    """
    beta = check_beta(beta)
    steps = np.asarray(steps, dtype=float)
    return 1.0 - beta**steps


def step_response(beta: float, steps, *, y0: float = 0.0, amplitude: float = 1.0, **kwargs):
    r"""Closed-form response to a step of height ``amplitude`` from state ``y0``.

    Parameters
    ----------
    beta : float
        EMA coefficient in ``[0, 1)``.
    steps : int or array_like of int
        Number of updates ``n ≥ 0`` since the step; ``n = 0`` is the state ``y0``.
    y0 : float, optional
        Filter state before the step (``1/K`` for GABA's EMA).
    amplitude : float, optional
        Constant input applied from update 1 on.

    Returns
    -------
    ndarray
        ``y[n] = a + (y0 − a) β^n``.

    Notes
    -----
    Subtract ``a`` from the recursion: ``y[n] − a = β (y[n−1] − a)`` because
    ``(1−β)a − a = −βa``; iterating gives the geometric gap. The convention
    differs by one step from ``control.step_response`` of ``(1−β)z/(z−β)``,
    whose input is on from ``k = 0``: there ``y[k] = 1 − β^{k+1}``.

    Examples
    --------
    >>> step_response(0.99, [0, 1, 100], y0=0.5, amplitude=0.002).round(6)
    array([0.5     , 0.49502 , 0.184284])
    """
    check_no_extra_kwargs(kwargs, "step_response")
    beta = check_beta(beta)
    y0 = check_real(y0, "y0", low=-math.inf, high=math.inf)
    amplitude = check_real(amplitude, "amplitude", low=-math.inf, high=math.inf)
    n = _steps_array(steps)
    return amplitude + (y0 - amplitude) * beta**n


def impulse_response(beta: float, steps):
    r"""Impulse response ``h[n] = (1−β) β^n`` (``n ≥ 0``).

    Notes
    -----
    Expand ``H(z) = (1−β) Σ_n β^n z^{−n}`` for ``|z| > β``. It sums to the DC
    gain 1 and its squares sum to ``(1−β)/(1+β)``, the white-noise variance
    gain (:func:`gaba_control.theory.variance.variance_ratio`).

    Examples
    --------
    >>> impulse_response(0.5, [0, 1, 2])
    array([0.5  , 0.25 , 0.125])
    """
    beta = check_beta(beta)
    return (1.0 - beta) * beta ** _steps_array(steps)


def frequency_response(beta: float, omega):
    r"""Complex frequency response ``H(e^{jω}) = (1−β)/(1 − β e^{−jω})``.

    Parameters
    ----------
    omega : float or array_like
        Angular frequency in rad/sample (``π`` is Nyquist).

    Examples
    --------
    >>> complex(frequency_response(0.5, 0.0))
    (1+0j)
    """
    beta = check_beta(beta)
    omega = np.asarray(omega, dtype=float)
    return (1.0 - beta) / (_real_part(beta, omega) + 1j * beta * np.sin(omega))


def magnitude_response(beta: float, omega):
    r"""Gain ``|H(e^{jω})| = (1−β)/\sqrt{1 − 2β\cos ω + β^2}``.

    Notes
    -----
    ``|1 − βe^{−jω}|^2 = (1 − β\cos ω)^2 + β^2 \sin^2 ω = 1 − 2β\cos ω + β^2``.
    It falls monotonically from 1 at DC to ``(1−β)/(1+β)`` at Nyquist. It is
    evaluated as ``(1−β)^2 + 4β\sin^2(ω/2)``, the same number without the
    cancellation of ``1 − 2β + β^2`` near DC for ``β → 1``.

    Examples
    --------
    >>> round(float(magnitude_response(0.99, np.pi)), 6)
    0.005025
    """
    beta = check_beta(beta)
    omega = np.asarray(omega, dtype=float)
    return (1.0 - beta) / np.sqrt((1.0 - beta) ** 2 + 4.0 * beta * np.sin(omega / 2.0) ** 2)


def phase_response(beta: float, omega):
    r"""Phase ``∠H(e^{jω}) = −\operatorname{atan2}(β \sin ω,\ 1 − β\cos ω)`` in rad.

    Notes
    -----
    The numerator ``1−β`` is real and positive, so the phase is minus the
    angle of ``1 − βe^{−jω} = (1 − β\cos ω) + jβ\sin ω``. It lies in
    ``(−π/2, 0]`` for ``ω ∈ [0, π]`` (a lag), is 0 at DC and at Nyquist, and is
    most negative, ``−\arcsin β``, at ``\cos ω = β``.

    Examples
    --------
    >>> bool(np.isclose(phase_response(0.5, np.arccos(0.5)), -np.arcsin(0.5)))
    True
    """
    beta = check_beta(beta)
    omega = np.asarray(omega, dtype=float)
    return -np.arctan2(beta * np.sin(omega), _real_part(beta, omega))


def dc_gain(beta: float) -> float:
    """DC gain ``H(1) = (1−β)/(1−β) = 1``: a constant input passes unchanged.

    Examples
    --------
    >>> dc_gain(0.99)
    1.0
    """
    check_beta(beta)
    return 1.0


def nyquist_gain(beta: float) -> float:
    r"""Gain at Nyquist ``|H(−1)| = (1−β)/(1+β)``, the strongest attenuation.

    Note that a disturbance with a period of one step is not at Nyquist: it is
    constant when sampled once per step, i.e. it sits at DC and passes with
    gain 1. Nyquist is the period-2 (alternating) signal.

    Examples
    --------
    >>> round(20 * math.log10(nyquist_gain(0.99)), 2)  # dB
    -45.98
    """
    beta = check_beta(beta)
    return (1.0 - beta) / (1.0 + beta)


def cutoff_frequency(beta: float, unit: str = "rad") -> float:
    r"""Exact 3 dB (half-power) cutoff of the EMA.

    Parameters
    ----------
    beta : float
        EMA coefficient in ``[0, 1)``.
    unit : {"rad", "cycles"}
        ``"rad"``: rad/sample; ``"cycles"``: cycles/step (rad/(2π)).

    Returns
    -------
    float
        ``ω_c = \arccos(1 − (1−β)^2/(2β)) = 2\arcsin(\sinh(−\ln β/2))``;
        ``inf`` when the gain never falls to ``1/√2`` (``β ≤ 3 − 2√2``, where
        even the Nyquist gain ``(1−β)/(1+β)`` is at least ``1/√2``), as
        ``control.bandwidth`` reports for a system that does not roll off.

    Notes
    -----
    Set ``|H|^2 = 1/2``: ``2(1−β)^2 = 1 − 2β\cos ω + β^2``, so
    ``\cos ω_c = (1 + β^2 − 2(1−β)^2)/(2β) = 1 − (1−β)^2/(2β)``. With
    ``a = −\ln β`` one has ``(1−β)^2/β = (β^{−1/2} − β^{1/2})^2 = 4\sinh^2(a/2)``
    and ``1 − \cos ω = 2\sin^2(ω/2)``, hence ``\sin(ω_c/2) = \sinh(a/2)``:
    the second form, which is free of cancellation for ``β → 1``.

    Examples
    --------
    >>> round(cutoff_frequency(0.99), 8)
    0.01005042
    >>> round(1 / cutoff_frequency(0.99, unit="cycles"), 2)  # period in steps
    625.17
    """
    beta = check_beta(beta)
    _check_unit(unit)
    if beta <= 3.0 - 2.0 * math.sqrt(2.0):
        return math.inf
    half_a = -math.log(beta) / 2.0
    omega = 2.0 * math.asin(math.sinh(half_a))
    return omega if unit == "rad" else omega / (2.0 * math.pi)


def cutoff_frequency_approx(beta: float, unit: str = "rad") -> float:
    r"""The common approximation ``ω_c ≈ −\ln β`` (``f_c ≈ −\ln β/(2π)``).

    Notes
    -----
    With ``a = −\ln β``, the exact cutoff is ``ω_c = 2\arcsin(\sinh(a/2))``
    (:func:`cutoff_frequency`). Expanding ``\sinh(a/2) = a/2 + a^3/48`` and
    ``\arcsin z = z + z^3/6`` gives ``ω_c = a + a^3/12 + O(a^5)``: the
    approximation is low by the relative amount ``a^2/12``
    (:func:`cutoff_approximation_error`), 8.4 ppm at ``β = 0.99``. The
    other common form ``ω_c ≈ 1−β`` is low by about ``(1−β)/2`` relative.

    Examples
    --------
    >>> round(cutoff_frequency_approx(0.99, unit="cycles"), 7)
    0.0015996
    """
    beta = check_beta(beta)
    _check_unit(unit)
    if beta == 0.0:
        return math.inf
    omega = -math.log(beta)
    return omega if unit == "rad" else omega / (2.0 * math.pi)


def cutoff_approximation_error(beta: float) -> float:
    r"""Relative error ``(−\ln β − ω_c)/ω_c`` of :func:`cutoff_frequency_approx`.

    Negative: the approximation underestimates. It is ``−a^2/12 + O(a^4)``
    with ``a = −\ln β``; ``nan`` where no cutoff exists.

    Examples
    --------
    >>> f"{cutoff_approximation_error(0.99):.3e}"
    '-8.417e-06'
    """
    exact = cutoff_frequency(beta)
    if math.isinf(exact):
        return math.nan
    return (cutoff_frequency_approx(beta) - exact) / exact


def _real_part(beta: float, omega: np.ndarray) -> np.ndarray:
    """``1 − β cos ω`` written as ``(1−β) + 2β sin²(ω/2)`` (no cancellation near DC)."""
    return (1.0 - beta) + 2.0 * beta * np.sin(omega / 2.0) ** 2


def _check_unit(unit: str) -> None:
    if unit not in _UNITS:
        raise ValueError(f"unit must be one of {_UNITS}, got {unit!r}")


def _steps_array(steps) -> np.ndarray:
    n = np.asarray(steps)
    if n.dtype == bool or not (np.issubdtype(n.dtype, np.integer) or _is_whole(n)):
        raise TypeError("steps must be integers >= 0")
    if np.any(n < 0):
        raise ValueError("steps must be >= 0")
    return n.astype(float)


def _is_whole(n: np.ndarray) -> bool:
    return np.issubdtype(n.dtype, np.floating) and bool(np.all(np.isfinite(n) & (n == np.round(n))))
