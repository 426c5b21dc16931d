r"""Excitation signals for identifying how training answers the weights.

Both signals are zero-mean-ish, bounded by 1 in magnitude and deterministic
given their arguments, so an excitation run is reproducible and its input is
known exactly (it is also recorded in the trace as ``applied_weights``).

* :func:`prbs`: a maximum-length binary sequence (``scipy.signal.max_len_seq``)
  of ±1, each value held for ``clock`` steps. Its power is spread evenly over
  ``0 < ω ≲ 2.8/clock`` rad/step (the ``sinc²`` envelope of the hold falls by
  3 dB near ``ω ≈ 2.78/clock`` and has its first null at ``2π/clock``).
* :func:`multisine`: ``Σ_k cos(2π k t/N + φ_k)`` over harmonics ``k = 1 … M`` of
  the period ``N`` with Schroeder phases ``φ_k = −π k(k−1)/M`` (low crest
  factor), scaled to peak 1. Its power sits exactly on the harmonics
  ``ω_k = 2πk/N``, so periodic averaging separates the response from noise.

References
----------
Schroeder, M. R. (1970). "Synthesis of low-peak-factor signals and binary
sequences with low autocorrelation". IEEE Trans. Inf. Theory 16(1), 85–89.
Ljung, L. (1999). *System Identification: Theory for the User*, 2nd ed.,
section 13.3 (input signals).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import signal

from gaba_control._validation import _is_int, check_positive_int

__all__ = ["excitation_band", "multisine", "prbs"]

#: largest register of the m-sequence (2^24 − 1 clock periods)
_MAX_BITS = 24

#: the longest clock or period an excitation takes (2^20 steps, far beyond any training run;
#: regression: ``--period 10^21`` reached numpy as an array size instead of being refused)
MAX_PERIOD = 2**20


def prbs(num_steps: int, clock: int = 20, seed: int = 0) -> np.ndarray:
    """A ±1 maximum-length sequence held ``clock`` steps per value, ``(num_steps,)``.

    Parameters
    ----------
    num_steps : int
        Length (≥ 1).
    clock : int
        Steps each binary value is held (≥ 1); sets the band, see the module docstring.
    seed : int
        Selects the register's start state (≥ 0), i.e. a circular shift of the sequence.

    Examples
    --------
    >>> u = prbs(12, clock=3)
    >>> u.tolist()
    [-1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0, 1.0, 1.0, 1.0]
    >>> bool(np.all(u.reshape(4, 3) == u[::3, None]))  # held for 3 steps
    True
    >>> float(abs(prbs(20_000, clock=20).mean())) < 0.05  # a truncated m-sequence
    True
    """
    num_steps = check_positive_int(num_steps, "num_steps")
    clock = check_positive_int(clock, "clock")
    if clock > MAX_PERIOD:
        raise ValueError(f"clock must lie in [1, {MAX_PERIOD}] steps, got {clock}")
    if not _is_int(seed) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    periods = math.ceil(num_steps / clock)
    nbits = max(4, math.ceil(math.log2(periods + 1)))
    if nbits > _MAX_BITS:
        raise ValueError(f"num_steps/clock = {periods} clock periods exceeds 2^{_MAX_BITS} - 1")
    length = 2**nbits - 1
    # a non-zero start state chosen by the seed: the same m-sequence, circularly shifted
    state = np.array([int(b) for b in np.binary_repr(1 + seed % length, nbits)], dtype=np.int8)
    bits = signal.max_len_seq(nbits, state=state, length=periods)[0]
    return np.repeat(2.0 * bits - 1.0, clock)[:num_steps]


def multisine(num_steps: int, period: int = 512, harmonics: int = 8) -> np.ndarray:
    """A Schroeder-phased multisine of period ``period`` on harmonics ``1 … harmonics``, peak 1.

    Parameters
    ----------
    num_steps : int
        Length (≥ 1); the signal repeats every ``period`` steps.
    period : int
        ``N`` (≥ 4): the lowest excited frequency is ``2π/N`` rad/step.
    harmonics : int
        ``M``, 1 ≤ M < N/2: the highest excited frequency is ``2πM/N``.

    Examples
    --------
    >>> u = multisine(1024, period=256, harmonics=4)
    >>> float(np.max(np.abs(u))), bool(np.allclose(u[:256], u[256:512]))
    (1.0, True)
    >>> spectrum = np.abs(np.fft.rfft(u[:256]))
    >>> [int(k) for k in np.flatnonzero(spectrum > 1e-6 * spectrum.max())]
    [1, 2, 3, 4]
    """
    num_steps = check_positive_int(num_steps, "num_steps")
    period = check_positive_int(period, "period")
    harmonics = check_positive_int(harmonics, "harmonics")
    if not 4 <= period <= MAX_PERIOD:
        raise ValueError(f"period must lie in [4, {MAX_PERIOD}] steps, got {period}")
    if not harmonics < period / 2:
        raise ValueError(f"harmonics must be < period/2 = {period / 2:g} (below Nyquist), "
                         f"got {harmonics}")
    k = np.arange(1, harmonics + 1)
    phases = -np.pi * k * (k - 1) / harmonics
    t = np.arange(period)
    one = np.cos(2 * np.pi * np.outer(t, k) / period + phases).sum(axis=1)
    one /= np.max(np.abs(one))
    return np.tile(one, math.ceil(num_steps / period))[:num_steps]


def excitation_band(kind: str, *, clock: int = 20, period: int = 512,
                    harmonics: int = 8) -> tuple[float, float]:
    """The band ``(ω_low, ω_high)`` rad/step a signal puts its power in.

    ``prbs``: ``(0, 2.78/clock)`` (the hold's −3 dB point); ``multisine``:
    ``(2π/N, 2πM/N)``.

    Examples
    --------
    >>> [round(w, 4) for w in excitation_band("multisine", period=512, harmonics=8)]
    [0.0123, 0.0982]
    """
    if kind == "prbs":
        return 0.0, 2.78 / check_positive_int(clock, "clock")
    if kind == "multisine":
        return 2 * np.pi / period, 2 * np.pi * harmonics / period
    raise ValueError(f"kind must be 'prbs' or 'multisine', got {kind!r}")
