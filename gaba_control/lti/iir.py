r"""The EMA of the GABA loop as a first-order IIR low-pass filter.

One filter, four equivalent descriptions, each in the convention of its tool:

* :func:`ema_transfer_function` — a :class:`control.TransferFunction` in
  positive powers of ``z``, ``(1−β) z / (z − β)``;
* :func:`ema_dlti` — a :class:`scipy.signal.dlti`, also positive powers of ``z``;
* :func:`ema_lfilter_coefficients` — ``(b, a)`` in *negative* powers of ``z``
  for :func:`scipy.signal.lfilter` / :func:`scipy.signal.freqz`;
* :func:`ema_state_space` — a diagonal ``K``-channel :class:`control.StateSpace`
  whose state is the previous EMA value (the controller's stored EMA).

:func:`ema_frequency_response` and :func:`ema_step_response` evaluate the
filter with python-control and with scipy side by side and return data objects
with a ``.plot()`` method, so the two libraries can be checked against each
other and against the closed forms.
"""

from __future__ import annotations

from dataclasses import dataclass

import control as ct
import numpy as np
import scipy.signal as signal

from gaba_control._validation import check_beta, check_no_extra_kwargs, check_positive_int

__all__ = [
    "EmaFrequencyResponse",
    "EmaStepResponse",
    "ema_dlti",
    "ema_filter",
    "ema_frequency_response",
    "ema_lfilter_coefficients",
    "ema_state_space",
    "ema_step_response",
    "ema_transfer_function",
    "signal_names",
]


def signal_names(base: str, num_channels: int) -> list[str]:
    """Indexed python-control signal names ``base[0] … base[K−1]``."""
    return [f"{base}[{i}]" for i in range(num_channels)]


def ema_transfer_function(beta: float, *, dt: float = 1, **kwargs) -> ct.TransferFunction:
    r"""The EMA as a python-control transfer function, ``(1−β) z / (z − β)``.

    Parameters
    ----------
    beta : float
        Pole of the filter (the EMA coefficient), ``0 ≤ β < 1``.
    dt : float, optional
        Sampling period in training steps (1 for the per-step EMA; ``N`` for
        a loop refreshed every ``N`` steps, see :mod:`gaba_control.lti.decimated`).
    **kwargs
        Only ``name``, ``inputs`` and ``outputs`` are accepted (passed to
        :func:`control.tf`); anything else raises ``TypeError``.

    Returns
    -------
    control.TransferFunction
        SISO, discrete time, one pole at ``z = β`` and one zero at ``z = 0``.

    Notes
    -----
    The filter is the difference equation

    .. math:: y[n] = β\,y[n−1] + (1−β)\,x[n],

    whose z-transform is

    .. math:: H(z) = \frac{1−β}{1 − β z^{−1}} = \frac{(1−β)\,z}{z − β}.

    The zero at ``z = 0`` matters: it makes the current input act on the
    current output (direct feedthrough ``1−β``). Dropping it gives
    ``(1−β)/(z−β) = z^{−1} H(z)``, the same filter delayed by one step, whose
    step response is ``1 − β^n`` instead of ``1 − β^{n+1}`` (``n`` counted
    from 0). Its DC gain is ``H(1) = 1`` for every ``β``.

    See Also
    --------
    ema_dlti : the same filter for :mod:`scipy.signal` (``dstep``, ``dfreqresp``).
    ema_lfilter_coefficients : ``(b, a)`` in negative powers of ``z``; passing
        the positive-power numerator ``[1−β, 0]`` to ``lfilter`` would *also*
        shift the filter by a step, the mirror image of the pitfall above.
    ema_state_space : the ``K``-channel realisation used inside the loop
        (MIMO ``tf → ss`` needs slycot; the diagonal ``ss`` does not).

    Examples
    --------
    >>> H = ema_transfer_function(0.99)
    >>> H.poles().real, H.zeros().real, float(H.dcgain())
    (array([0.99]), array([0.]), 1.0)
    """
    beta = check_beta(beta)
    names = _pop_names(kwargs, "ema_transfer_function")
    return ct.tf([1.0 - beta, 0.0], [1.0, -beta], dt=dt, **names)


def ema_dlti(beta: float, *, dt: float = 1) -> signal.dlti:
    """The EMA as a :class:`scipy.signal.dlti`, numerator ``[1−β, 0]``, denominator ``[1, −β]``.

    ``dlti`` takes coefficients in positive powers of ``z`` (like
    :func:`control.tf`), so the trailing zero in the numerator is the zero at
    ``z = 0``; see :func:`ema_transfer_function` for the filter itself.
    ``control.tf`` does not accept a ``dlti``: pass ``(d.num, d.den, d.dt)``.

    See Also
    --------
    ema_lfilter_coefficients : the same filter in negative powers of ``z``.

    Examples
    --------
    >>> import scipy.signal as signal
    >>> _, (y,) = signal.dstep(ema_dlti(0.5), n=3)
    >>> y.ravel()
    array([0.5  , 0.75 , 0.875])
    """
    beta = check_beta(beta)
    return signal.dlti([1.0 - beta, 0.0], [1.0, -beta], dt=dt)


def ema_lfilter_coefficients(beta: float) -> tuple[np.ndarray, np.ndarray]:
    """``(b, a) = ([1−β], [1, −β])`` for :func:`scipy.signal.lfilter` and ``freqz``.

    ``lfilter`` reads ``b`` and ``a`` in negative powers of ``z``:
    ``a[0] y[n] + a[1] y[n−1] = b[0] x[n]`` — the EMA difference equation.

    Examples
    --------
    >>> import scipy.signal as signal
    >>> b, a = ema_lfilter_coefficients(0.5)
    >>> signal.lfilter(b, a, [1.0, 1.0, 1.0])
    array([0.5  , 0.75 , 0.875])
    """
    beta = check_beta(beta)
    return np.array([1.0 - beta]), np.array([1.0, -beta])


def ema_filter(x, beta: float, initial=0.0, *, axis: int = -1) -> np.ndarray:
    """Run the EMA over ``x`` along ``axis`` with :func:`scipy.signal.lfilter`.

    Parameters
    ----------
    x : array_like
        Input sequence(s); every 1-D slice along ``axis`` is filtered.
    beta : float
        EMA coefficient, ``0 ≤ β < 1``.
    initial : float or array_like, optional
        EMA state before the first sample, ``y[−1]``; broadcast against the
        other axes of ``x``.
    axis : int, optional
        Time axis.

    Returns
    -------
    numpy.ndarray
        ``y[n] = β y[n−1] + (1−β) x[n]``, same shape as ``x``.

    Notes
    -----
    ``lfilter`` realises the filter in transposed direct form II; its state
    before sample 0 is ``zi = β·y[−1]``, which gives
    ``y[0] = (1−β) x[0] + β y[−1]``.

    Examples
    --------
    >>> ema_filter([1.0, 1.0], 0.5, initial=1.0)
    array([1., 1.])
    """
    beta = check_beta(beta)
    x = np.moveaxis(np.asarray(x, dtype=np.float64), axis, -1)
    b, a = ema_lfilter_coefficients(beta)
    zi = beta * np.broadcast_to(np.asarray(initial, dtype=np.float64), x.shape[:-1])[..., None]
    y, _ = signal.lfilter(b, a, x, axis=-1, zi=zi)
    return np.moveaxis(y, -1, axis)


def ema_state_space(
    beta: float, num_channels: int = 1, *, dt: float = 1, **kwargs
) -> ct.StateSpace:
    r"""``K`` independent EMA channels as one diagonal :class:`control.StateSpace`.

    The state is the *previous* EMA value ``m[n] = y[n−1]``, so

    .. math::

        m[n+1] = β\,m[n] + (1−β)\,x[n], \qquad
        y[n] = β\,m[n] + (1−β)\,x[n], \qquad
        y_{prev}[n] = m[n],

    i.e. ``A = βI``, ``B = (1−β)I``, ``C = [βI; I]``, ``D = [(1−β)I; 0]``.
    The first ``K`` outputs are the EMA after the step (transfer function
    :func:`ema_transfer_function` on each channel); the last ``K`` are the
    stored state, with no feedthrough, which the loop's hold switch reads
    without creating an algebraic loop. The initial state is the EMA before
    the first step (``1/K`` in GABA).

    Parameters
    ----------
    beta : float
        EMA coefficient, ``0 ≤ β < 1``.
    num_channels : int, optional
        Number of channels ``K``.
    dt : float, optional
        Sampling period in steps.
    **kwargs
        ``name`` (default ``"ema"``), ``inputs`` (base name, default ``"x"``),
        ``outputs`` (base name, default ``"y"``), ``prev_outputs`` (base name
        of the state outputs, default ``outputs + "_prev"``; ``None`` leaves
        them out), ``states`` (base name, default ``"m"``).

    Examples
    --------
    >>> sys = ema_state_space(0.9, 2)
    >>> sys.output_labels
    ['y[0]', 'y[1]', 'y_prev[0]', 'y_prev[1]']
    >>> sys.dcgain()[:2, :2]
    array([[1., 0.],
           [0., 1.]])
    """
    beta = check_beta(beta)
    k = check_positive_int(num_channels, "num_channels")
    name = kwargs.pop("name", "ema")
    inputs = kwargs.pop("inputs", "x")
    outputs = kwargs.pop("outputs", "y")
    prev_outputs = kwargs.pop("prev_outputs", f"{outputs}_prev")
    states = kwargs.pop("states", "m")
    check_no_extra_kwargs(kwargs, "ema_state_space")
    eye, zero = np.eye(k), np.zeros((k, k))
    c, d, output_names = beta * eye, (1.0 - beta) * eye, signal_names(outputs, k)
    if prev_outputs is not None:
        c, d = np.vstack([c, eye]), np.vstack([d, zero])
        output_names += signal_names(prev_outputs, k)
    return ct.ss(
        beta * eye,
        (1.0 - beta) * eye,
        c,
        d,
        dt=dt,
        name=name,
        inputs=signal_names(inputs, k),
        outputs=output_names,
        states=signal_names(states, k),
    )


@dataclass(frozen=True)
class EmaFrequencyResponse:
    """Frequency response of the EMA from python-control and from scipy.

    Attributes
    ----------
    beta : float
    omega : ndarray (F,)
        Frequencies in rad/sample (``0 … π``).
    control : ndarray (F,) complex
        ``control.frequency_response(H, omega).complex``.
    scipy : ndarray (F,) complex
        ``scipy.signal.freqz(b, a, worN=omega)`` with the lfilter coefficients.
    """

    beta: float
    omega: np.ndarray
    control: np.ndarray
    scipy: np.ndarray

    @property
    def magnitude(self) -> np.ndarray:
        """``|H(e^{jω})|`` (python-control)."""
        return np.abs(self.control)

    @property
    def phase(self) -> np.ndarray:
        """Phase of ``H(e^{jω})`` in rad (python-control), in ``(−π/2, 0]``."""
        return np.angle(self.control)

    def plot(self, ax=None):
        """Draw the magnitude in dB against ω (both sources) onto ``ax`` (or a new Axes)."""
        ax = _axes(ax)
        ax.plot(self.omega, 20 * np.log10(np.abs(self.control)), label="python-control")
        ax.plot(self.omega, 20 * np.log10(np.abs(self.scipy)), "--", label="scipy freqz")
        ax.set_xlabel("ω [rad/step]")
        ax.set_ylabel("|H| [dB]")
        ax.set_title(f"EMA frequency response, β = {self.beta:g}")
        ax.legend()
        return ax


def ema_frequency_response(beta: float, omega) -> EmaFrequencyResponse:
    """Evaluate ``H(e^{jω})`` of the EMA with python-control and with scipy.

    Parameters
    ----------
    beta : float
        EMA coefficient, ``0 ≤ β < 1``.
    omega : array_like
        Frequencies in rad/sample, each in ``[0, π]`` (above π a discrete
        filter aliases, and python-control warns). Always evaluated point by
        point — a 2-element list is *not* read as limits here.

    Returns
    -------
    EmaFrequencyResponse

    Examples
    --------
    >>> r = ema_frequency_response(0.5, [0.0, np.pi])
    >>> r.magnitude.round(6)
    array([1.      , 0.333333])
    """
    beta = check_beta(beta)
    omega = np.atleast_1d(np.asarray(omega, dtype=np.float64))
    if omega.ndim != 1 or np.any(~np.isfinite(omega)) or np.any((omega < 0) | (omega > np.pi)):
        raise ValueError("omega must be a 1-D array of frequencies in [0, pi] rad/sample")
    from_control = np.atleast_1d(ct.frequency_response(ema_transfer_function(beta), omega).complex)
    b, a = ema_lfilter_coefficients(beta)
    _, from_scipy = signal.freqz(b, a, worN=omega)
    return EmaFrequencyResponse(beta, omega, from_control.reshape(-1), np.asarray(from_scipy))


@dataclass(frozen=True)
class EmaStepResponse:
    """Unit-step response of the EMA from python-control and from scipy.

    The input is ``x[n] = 1`` for ``n = 0, 1, …`` and the EMA starts from
    ``y[−1] = y0``, so ``control[n]`` is the EMA after ``n + 1`` steps.

    Attributes
    ----------
    beta, y0 : float
    steps : ndarray (N,) of int
        Sample index ``n = 0 … N−1``.
    control : ndarray (N,)
        :func:`control.forced_response` of :func:`ema_state_space` with
        initial state ``y0``.
    scipy : ndarray (N,)
        :func:`scipy.signal.lfilter` with ``zi = β·y0``.
    """

    beta: float
    y0: float
    steps: np.ndarray
    control: np.ndarray
    scipy: np.ndarray

    def plot(self, ax=None):
        """Draw both responses against the step index onto ``ax`` (or a new Axes)."""
        ax = _axes(ax)
        ax.plot(self.steps, self.control, label="python-control")
        ax.plot(self.steps, self.scipy, "--", label="scipy lfilter")
        ax.set_xlabel("n [steps]")
        ax.set_ylabel("y[n]")
        ax.set_title(f"EMA step response, β = {self.beta:g}, y[−1] = {self.y0:g}")
        ax.legend()
        return ax


def ema_step_response(beta: float, n_steps: int, y0: float = 0.0) -> EmaStepResponse:
    """Response of the EMA to a unit step from initial state ``y0``.

    Parameters
    ----------
    beta : float
        EMA coefficient, ``0 ≤ β < 1``.
    n_steps : int
        Number of samples ``N``. Always given explicitly: python-control's
        automatic horizon mistakes a pole near 1 for an integrator.
    y0 : float, optional
        EMA state before the first sample.

    Returns
    -------
    EmaStepResponse
        With ``y0 = 0`` both series equal ``1 − β^{n+1}``, ``n = 0 … N−1``.

    Examples
    --------
    >>> ema_step_response(0.5, 3).control
    array([0.5  , 0.75 , 0.875])
    """
    beta = check_beta(beta)
    n_steps = check_positive_int(n_steps, "n_steps")
    y0 = float(y0)
    steps = np.arange(n_steps)
    ones = np.ones(n_steps)
    sys = ema_state_space(beta, 1)
    from_control = ct.forced_response(sys, steps, ones, X0=[y0]).outputs[0]
    from_scipy = ema_filter(ones, beta, initial=y0)
    return EmaStepResponse(beta, y0, steps, np.asarray(from_control), from_scipy)


def _pop_names(kwargs: dict, where: str) -> dict:
    names = {key: kwargs.pop(key) for key in ("name", "inputs", "outputs") if key in kwargs}
    check_no_extra_kwargs(kwargs, where)
    return names


def _axes(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots()
    return ax
