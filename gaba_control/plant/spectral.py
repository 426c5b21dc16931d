r"""Non-parametric frequency response of a plant from input/output records (Welch H1).

For records ``u_r``, ``y_r`` the Welch averages over every segment of every
record give the auto- and cross-spectra ``P_uu``, ``P_yy``, ``P_uy``
(``scipy.signal.welch`` / ``scipy.signal.csd``; ``csd(u, y)`` averages
``conj(U)·Y``), and

.. math::

    \hat H(e^{jω}) = \frac{P_{uy}}{P_{uu}}, \qquad
    \hat γ^2 = \frac{|P_{uy}|^2}{P_{uu} P_{yy}} .

Confidence region
-----------------
With ``n`` independent segments, ``Y_k = H U_k + N_k`` per segment and
Gaussian noise, ``Ĥ`` is the least-squares fit of a complex regression, and

.. math::

    \frac{(n-1)\,|\hat H - H|^2\, \hat γ^2}{(1-\hat γ^2)\,|\hat H|^2} \sim F_{2,\;2(n-1)},

so ``|H − Ĥ| ≤ r`` with ``r² = F_{2,2(n−1)}(1−α)·(1−γ̂²)/((n−1)γ̂²)·|Ĥ|²`` is a
``1−α`` confidence disk (the single-input case of Bendat & Piersol, *Random
Data*, 4th ed., 2010, §9.2.4; derived here from the regression form). The
magnitude band ``|Ĥ| ± r`` and the phase band ``∠Ĥ ± arcsin(r/|Ĥ|)`` contain the
truth whenever the disk does. Overlapping windowed segments are not
independent: ``n`` is replaced by the equivalent number of independent
segments of Welch's estimate, ``ν/2`` with ``ν`` the equivalent degrees of
freedom of Percival & Walden (1993, eq. 292b), computed for the actual window
and overlap. The calibration of these bands is tested on synthetic systems
with known ``H`` (``tests/test_plant_spectral.py``).

Frequencies are in rad/step (``ω = 2πf``, ``f`` in cycles/step). A
per-segment detrend removes part of the lowest bins' content from ``u`` and
``y`` differently (a removed line is not the plant's answer to a removed
line), which biases those bins beyond their band: measured on
``y = 0.5z⁻¹/(1 − 0.5z⁻¹) u`` with 128-step segments, the error at bin 1 was
2.5× the band's radius with a linear detrend and 1.7× with a constant one, and
inside the band from bin 2 on. The estimate therefore starts at bin 2
(``detrend="linear"`` or a callable), bin 1 (``"constant"``) or bin 0 (none).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import signal, stats

from gaba_control._validation import check_no_extra_kwargs, check_positive_int

__all__ = [
    "FrequencyResponseEstimate",
    "InsufficientCoherenceError",
    "equivalent_segments",
    "frequency_response_estimate",
]


class InsufficientCoherenceError(ValueError):
    """The records carry too little input-explained output power to identify a model."""


def _records(x, name: str) -> list[np.ndarray]:
    if isinstance(x, np.ndarray) and x.ndim == 1:
        x = [x]
    out = []
    for i, record in enumerate(x):
        r = np.asarray(record, dtype=np.float64)
        if r.ndim != 1:
            raise ValueError(f"{name}[{i}] must be 1-D, got shape {r.shape}")
        if not np.all(np.isfinite(r)):
            raise ValueError(f"{name}[{i}] has non-finite values")
        out.append(r)
    if not out:
        raise ValueError(f"{name} must hold at least one record")
    return out


def equivalent_segments(num_segments: int, nperseg: int, noverlap: int,
                        window: str | tuple = "hann") -> float:
    """Equivalent number of independent segments ``ν/2`` of a Welch average.

    ``ν = 2K / (1 + 2 Σ_{m=1}^{K−1} (1 − m/K) ρ(mD)²)`` with ``ρ(s) = Σ_t h_t h_{t+s}``
    for the window ``h`` normalised to ``Σ h² = 1`` and ``D`` the step between
    segments (Percival & Walden 1993, eq. 292b).

    Examples
    --------
    >>> equivalent_segments(10, 256, 0, "hann")  # no overlap: independent
    10.0
    >>> round(equivalent_segments(10, 256, 128, "hann"), 2)  # 50 % overlap
    9.52
    """
    check_positive_int(num_segments, "num_segments")
    h = signal.get_window(window, nperseg)
    h = h / math.sqrt(np.sum(h**2))
    step = nperseg - noverlap
    total = 0.0
    for m in range(1, num_segments):
        shift = m * step
        if shift >= nperseg:
            break
        rho = float(np.dot(h[: nperseg - shift], h[shift:]))
        total += (1 - m / num_segments) * rho**2
    return num_segments / (1 + 2 * total)


@dataclass(frozen=True)
class FrequencyResponseEstimate:
    """``Ĥ(e^{jω})``, coherence and confidence bands on the Welch frequency grid.

    Attributes
    ----------
    omega : (F,) rad/step
    response : (F,) complex ``Ĥ``
    coherence : (F,) ``γ̂²``
    radius : (F,) radius of the ``confidence`` disk around ``Ĥ`` (``inf`` where undefined)
    p_uu, p_yy : (F,) auto-spectra (one-sided, per cycle/step)
    p_uy : (F,) complex cross-spectrum
    segments : equivalent number of independent segments
    confidence : nominal coverage of the bands
    """

    omega: np.ndarray
    response: np.ndarray
    coherence: np.ndarray
    radius: np.ndarray
    p_uu: np.ndarray
    p_yy: np.ndarray
    p_uy: np.ndarray
    segments: float
    confidence: float
    nperseg: int

    @property
    def magnitude(self) -> np.ndarray:
        return np.abs(self.response)

    @property
    def phase(self) -> np.ndarray:
        """Phase in radians, unwrapped along ω."""
        return np.unwrap(np.angle(self.response))

    @property
    def magnitude_band(self) -> tuple[np.ndarray, np.ndarray]:
        """``(|Ĥ| − r, |Ĥ| + r)``, the lower edge clipped at 0."""
        return np.maximum(self.magnitude - self.radius, 0.0), self.magnitude + self.radius

    @property
    def phase_halfwidth(self) -> np.ndarray:
        """``arcsin(r/|Ĥ|)`` in radians; ``π`` where the disk contains the origin."""
        ratio = np.divide(self.radius, self.magnitude, out=np.full_like(self.radius, np.inf),
                          where=self.magnitude > 0)
        return np.where(ratio < 1, np.arcsin(np.minimum(ratio, 1.0)), np.pi)

    def covers(self, truth) -> np.ndarray:
        """Where the confidence disk contains ``truth`` (complex, on :attr:`omega`)."""
        return np.abs(np.asarray(truth) - self.response) <= self.radius

    def band(self, low: float, high: float) -> np.ndarray:
        """Mask of the grid points with ``low ≤ ω ≤ high`` (DC left out)."""
        return (self.omega >= low) & (self.omega <= high) & (self.omega > 0)

    def mean_coherence(self, low: float, high: float) -> float:
        mask = self.band(low, high)
        return float(np.mean(self.coherence[mask])) if mask.any() else math.nan

    def require_coherence(self, low: float, high: float, minimum: float = 0.2) -> None:
        """Raise :class:`InsufficientCoherenceError` if the band's mean ``γ̂²`` < ``minimum``."""
        value = self.mean_coherence(low, high)
        if not (value >= minimum):
            raise InsufficientCoherenceError(
                f"mean coherence {value:.3g} over {low:.3g}–{high:.3g} rad/step is below "
                f"{minimum:g}: the output is mostly not explained by the input (raise the "
                f"amplitude, average more runs, or use longer records); no model is returned")

    def plot(self, ax=None, *, label: str | None = None, color=None, truth=None):
        """Magnitude (log-log) with its band, phase with its band, coherence; returns the axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(3, 1, sharex=True, figsize=(6.4, 7.0))
        keep = self.omega > 0
        w = self.omega[keep]
        lo, hi = (b[keep] for b in self.magnitude_band)
        line = ax[0].loglog(w, self.magnitude[keep], color=color, label=label)[0]
        ax[0].fill_between(w, np.maximum(lo, 1e-300), hi, color=line.get_color(), alpha=0.2,
                           linewidth=0)
        deg = np.degrees(self.phase[keep])
        half = np.degrees(self.phase_halfwidth[keep])
        ax[1].semilogx(w, deg, color=line.get_color())
        ax[1].fill_between(w, deg - half, deg + half, color=line.get_color(), alpha=0.2,
                           linewidth=0)
        ax[2].semilogx(w, self.coherence[keep], color=line.get_color())
        if truth is not None:
            t = np.asarray(truth)[keep]
            ax[0].loglog(w, np.abs(t), "k--", label="true")
            ax[1].semilogx(w, np.degrees(np.unwrap(np.angle(t))), "k--")
        ax[0].set_ylabel("|H|")
        ax[1].set_ylabel("phase [deg]")
        ax[2].set_ylabel("coherence γ²")
        ax[2].set_ylim(0, 1)
        ax[2].set_xlabel("ω [rad/step]")
        return ax


def frequency_response_estimate(u, y, *, nperseg: int = 256, noverlap: int | None = None,
                                window: str | tuple = "hann", detrend: str | bool = "linear",
                                confidence: float = 0.95, **kwargs) -> FrequencyResponseEstimate:
    """H1 estimate of the plant from ``u`` to ``y``, averaged over records and segments.

    Parameters
    ----------
    u, y : array (N,) or sequence of arrays
        Input and output, one record or several (records may differ in length;
        each must have at least ``nperseg`` samples).
    nperseg : int
        Segment length; the grid is ``ω = 2πk/nperseg`` from the first trusted
        bin (see the module docstring).
    noverlap : int, optional
        Default ``nperseg // 2``.
    window, detrend
        As for :func:`scipy.signal.welch` (``detrend="linear"`` removes each
        segment's linear trend: the drift of training).
    confidence : float
        Nominal coverage of the bands, in (0, 1).

    Raises
    ------
    ValueError
        Mismatched records, a record shorter than ``nperseg``, non-finite data,
        or a setting out of range (named).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> u = rng.standard_normal(20_000)
    >>> y = signal.lfilter([0, 0.5], [1, -0.5], u) + 0.1 * rng.standard_normal(u.size)
    >>> est = frequency_response_estimate(u, y, nperseg=128)
    >>> w = est.omega[0]  # the first trusted bin, 2·2π/128
    >>> truth = 0.5 * np.exp(-1j * w) / (1 - 0.5 * np.exp(-1j * w))
    >>> round(float(w), 4), bool(est.covers(truth)[0])
    (0.0982, True)
    """
    check_no_extra_kwargs(kwargs, "frequency_response_estimate")
    nperseg = check_positive_int(nperseg, "nperseg")
    if nperseg < 4:
        raise ValueError(f"nperseg must be >= 4, got {nperseg}")
    noverlap = nperseg // 2 if noverlap is None else noverlap
    if not (isinstance(noverlap, (int, np.integer)) and 0 <= noverlap < nperseg):
        raise ValueError(f"noverlap must be an int in [0, nperseg) = [0, {nperseg}), "
                         f"got {noverlap!r}")
    if not (isinstance(confidence, float) and 0 < confidence < 1):
        raise ValueError(f"confidence must be a float in (0, 1), got {confidence!r}")
    us, ys = _records(u, "u"), _records(y, "y")
    if len(us) != len(ys):
        raise ValueError(f"u has {len(us)} records, y has {len(ys)}")
    step = nperseg - noverlap
    p_uu = p_yy = p_uy = 0.0
    total = 0
    independent = 0.0
    for i, (ur, yr) in enumerate(zip(us, ys, strict=True)):
        if ur.size != yr.size:
            raise ValueError(f"record {i}: u has {ur.size} samples, y has {yr.size}")
        if ur.size < nperseg:
            raise ValueError(f"record {i} has {ur.size} samples, fewer than nperseg={nperseg}")
        n_seg = 1 + (ur.size - nperseg) // step
        common = dict(nperseg=nperseg, noverlap=noverlap, window=window, detrend=detrend)
        f, puu = signal.welch(ur, **common)
        _, pyy = signal.welch(yr, **common)
        _, puy = signal.csd(ur, yr, **common)
        p_uu = p_uu + n_seg * puu
        p_yy = p_yy + n_seg * pyy
        p_uy = p_uy + n_seg * puy
        total += n_seg
        independent += equivalent_segments(n_seg, nperseg, noverlap, window)
    p_uu, p_yy, p_uy = p_uu / total, p_yy / total, p_uy / total
    with np.errstate(divide="ignore", invalid="ignore"):
        response = p_uy / p_uu
        coherence = np.clip(np.abs(p_uy) ** 2 / (p_uu * p_yy), 0.0, 1.0)
        coherence = np.where(np.isfinite(coherence), coherence, 0.0)
        n = independent
        if n > 1:
            f_crit = stats.f.ppf(confidence, 2, 2 * (n - 1))
            radius2 = f_crit * (1 - coherence) / ((n - 1) * coherence) * np.abs(response) ** 2
            radius = np.sqrt(np.where(coherence > 0, radius2, np.inf))
        else:
            radius = np.full(f.shape, np.inf)
    first = _first_trusted_bin(detrend)
    return FrequencyResponseEstimate(
        omega=2 * np.pi * f[first:], response=response[first:], coherence=coherence[first:],
        radius=radius[first:], p_uu=p_uu[first:], p_yy=p_yy[first:], p_uy=p_uy[first:],
        segments=float(independent), confidence=float(confidence), nperseg=nperseg)


def _first_trusted_bin(detrend) -> int:
    """Bins below this one are biased by the per-segment detrend (module docstring)."""
    if detrend is False or detrend is None:
        return 0
    return 1 if detrend == "constant" else 2
