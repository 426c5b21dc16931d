r"""GABA's loop closed over an identified plant: linearisation, margins, sensitivity, simulation.

Signals (``K = 2``, task 1 the one the plant model is excited on):

* the plant ``P(z)`` maps the *log* applied weight ``u = log(λ*_1/λ₀)`` to the
  output ``y = log(g_1/g_2)`` (an elasticity: ``P(1) = ∂ log R / ∂ log λ_1``);
  it contains the one-step delay of training (``λ_t`` moves the parameters
  that ``g_{t+1}`` is measured on);
* the controller maps ``y`` back to ``u``: sensor ``s_1 = R/(1+R)``,
  comparator and P-law ``λ_raw,1 = 1/K + (1/K − s_1)/(K−1)``, the EMA
  ``H(z) = (1−β)z/(z−β)``, the floor's saturation.

Linearised around an operating point (EMA state ``λ̂₀``, output ``λ*₀``):

.. math::

    \frac{δu}{δy} = −k\,H(z), \qquad
    k = \frac{s_1(1−s_1)}{K−1}\cdot\frac{J}{λ^*_0},

with ``J = ∂λ*_1/∂λ̂_1`` along the simplex (the saturation's slope, from
:func:`gaba_control.lti.small_signal._saturation_jacobian`): ``1`` where the
floor is inactive, ``λ_min/(λ_min + λ̂_2)²`` for ``K = 2`` where it binds. Not
zero: the renormalisation passes a small share of every change of the other
channel through. The loop gain in the negative-feedback convention is

.. math:: L(z) = k\,H(z)\,P(z),

so ``P(1) > 0`` makes GABA a negative-feedback loop and
``S = 1/(1+L)`` is the factor by which the loop changes an output
disturbance compared with an open-loop schedule (which has ``L = 0``).

:func:`simulate_closed_loop` runs the *nonlinear* loop (the
:class:`~gaba_control.controller.GABAController`, warmup and floor included)
against ``y_t = d_t + (P u)_t``, ``d`` a disturbance record;
:func:`closed_loop_system` builds the same loop as a python-control
``interconnect`` of :func:`gaba_control.lti.loop.loop_blocks` and the plant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import control as ct
import numpy as np

from gaba_control import formulas
from gaba_control._validation import check_beta, check_lambda_min, check_warmup
from gaba_control.lti.iir import ema_transfer_function
from gaba_control.lti.small_signal import _saturation_jacobian

__all__ = [
    "LoopAnalysis",
    "OperatingPoint",
    "closed_loop_system",
    "floor_describing_function",
    "loop_analysis",
    "operating_point",
    "plant_coefficients",
    "simulate_closed_loop",
    "simulate_law_closed_loop",
]


@dataclass(frozen=True)
class OperatingPoint:
    """Where the loop is linearised: the ratio ``R``, the EMA state and the applied weight."""

    ratio: float
    ema: float  # λ̂₀ of task 1
    applied: float  # λ*₀ of task 1
    saturation_slope: float  # J
    gain: float  # k (positive: negative feedback if P(1) > 0)
    floor_active: bool


def operating_point(ratio: float, lambda_min: float = 0.05, *, ema: float | None = None,
                    num_tasks: int = 2) -> OperatingPoint:
    """The linearisation point for the ratio ``R = g_1/g_2`` (``K = 2``).

    ``ema`` is the EMA state ``λ̂₀`` of task 1; by default the equilibrium of the
    unsaturated loop, ``λ_raw(R) = 1/(1+R)``.

    Examples
    --------
    >>> op = operating_point(600.0, 0.05)
    >>> op.floor_active, round(op.applied, 4), round(op.saturation_slope, 4)
    (True, 0.0477, 0.0455)
    >>> round(operating_point(600.0, 0.0).gain, 4)  # unsaturated: k = 1 − λ₀
    0.9983
    """
    if num_tasks != 2:
        raise ValueError(f"the plant loop is implemented for num_tasks=2, got {num_tasks}")
    if not (isinstance(ratio, (int, float)) and math.isfinite(ratio) and ratio > 0):
        raise ValueError(f"ratio must be a finite number > 0, got {ratio!r}")
    lambda_min = check_lambda_min(lambda_min, num_tasks)
    g = np.array([float(ratio), 1.0])
    ema0 = formulas.raw_weights(g) if ema is None else np.array([ema, 1.0 - ema])
    if not (0 < ema0[0] < 1):
        raise ValueError(f"ema must lie in (0, 1), got {ema!r}")
    applied = formulas.floor_renormalise(ema0, lambda_min)
    jac = _saturation_jacobian(ema0, lambda_min)
    slope = float((jac @ np.array([1.0, -1.0]))[0])  # along the simplex
    s1 = float(formulas.sensor_shares(g)[0])
    gain = s1 * (1 - s1) * formulas.proportional_gain(num_tasks) * slope / float(applied[0])
    return OperatingPoint(float(ratio), float(ema0[0]), float(applied[0]), slope, gain,
                          bool(ema0[0] < lambda_min))


@dataclass(frozen=True)
class LoopAnalysis:
    """``L``, ``S``, ``T`` of one regime on a frequency grid, with margins.

    Attributes
    ----------
    point : OperatingPoint
    loop : control.TransferFunction ``L(z)``
    omega : (F,) rad/step
    L, S, T : (F,) complex frequency responses
    gain_margin : ``1/|L|`` at the phase crossover (inf if none)
    phase_margin : degrees (inf if ``|L|`` never reaches 1)
    oscillation_gain : P-law gain at which the loop would oscillate
        (``gain_margin/(K−1)``: the nominal gain times the margin)
    stable : closed-loop poles inside the unit circle
    """

    point: OperatingPoint
    loop: ct.TransferFunction
    omega: np.ndarray
    L: np.ndarray
    S: np.ndarray
    T: np.ndarray
    gain_margin: float
    phase_margin: float
    phase_crossover: float
    gain_crossover: float
    oscillation_gain: float
    stable: bool

    def band_max(self, response: str, low: float, high: float) -> float:
        """Largest ``|L|``, ``|S|`` or ``|T|`` over ``low ≤ ω ≤ high``."""
        mask = (self.omega >= low) & (self.omega <= high)
        return float(np.max(np.abs(getattr(self, response)[mask])))

    @property
    def dc_loop_gain(self) -> float:
        return float(np.real(self.loop(1.0)))

    def plot(self, ax=None, *, label: str | None = None, color=None):
        """``|L|``, ``|S|``, ``|T|`` against ω (log-log) on ``ax`` (one axis)."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots()
        for name, style in (("L", "-"), ("S", "--"), ("T", ":")):
            ax.loglog(self.omega, np.abs(getattr(self, name)), style, color=color,
                      label=f"|{name}| {label}" if label else f"|{name}|")
        ax.set_xlabel("ω [rad/step]")
        ax.set_ylabel("magnitude")
        return ax


def loop_analysis(plant: ct.TransferFunction, point: OperatingPoint, *, beta: float = 0.99,
                  omega=None, gain_scale: float = 1.0) -> LoopAnalysis:
    """Close GABA's linearised controller around ``plant`` at ``point``.

    Parameters
    ----------
    plant : control.TransferFunction (dt=1)
        ``P(z)`` from ``log(λ*_1/λ₀)`` to ``log(g_1/g_2)``.
    point : OperatingPoint
        From :func:`operating_point`.
    beta : float
        EMA coefficient.
    omega : array, optional
        Grid in rad/step (default 400 points log-spaced over 1e-4 … π).
    gain_scale : float
        Multiplies the P-law gain (1: GABA's ``1/(K−1)``).

    Examples
    --------
    >>> import control as ct
    >>> plant = ct.tf([0.5], [1, 0, 0], dt=1)     # a gain of 0.5 two steps late
    >>> a = loop_analysis(plant, operating_point(1.0, 0.0), beta=0.9)
    >>> round(a.dc_loop_gain, 4)                 # k = s(1−s)/λ₀ = 0.5, L(1) = 0.5·0.5
    0.25
    >>> round(a.gain_margin, 2), round(a.phase_crossover, 4)  # L = 0.025/(z(z − 0.9))
    (40.0, 1.104)
    """
    beta = check_beta(beta)
    if not (isinstance(plant, ct.TransferFunction) and plant.dt == 1):
        raise TypeError("plant must be a control.TransferFunction with dt=1")
    if not (isinstance(gain_scale, (int, float)) and math.isfinite(gain_scale)
            and gain_scale > 0):
        raise ValueError(f"gain_scale must be a finite number > 0, got {gain_scale!r}")
    omega = np.logspace(-4, np.log10(np.pi), 400) if omega is None else np.asarray(omega, float)
    loop = gain_scale * point.gain * ema_transfer_function(beta) * plant
    z = np.exp(1j * omega)
    L = np.asarray(loop(z)).reshape(-1)
    S = 1 / (1 + L)
    T = L / (1 + L)
    # (gm, pm, sm, wpc, wgc, wms); method given: "best" warns on discrete systems
    gm, pm, _, wpc, wgc, _ = ct.stability_margins(loop, method="poly")
    gm = math.inf if gm is None or not np.isfinite(gm) else float(gm)
    at_nyquist = complex(loop(-1.0))  # a crossing exactly at ω = π is missed (notes)
    if abs(at_nyquist.imag) < 1e-12 and at_nyquist.real < 0 and -1 / at_nyquist.real < gm:
        gm, wpc = -1 / at_nyquist.real, math.pi
    pm = math.inf if pm is None or not np.isfinite(pm) else float(pm)
    closed = ct.feedback(loop, 1)
    stable = bool(np.all(np.abs(ct.poles(closed)) < 1))
    return LoopAnalysis(point, loop, omega, L, S, T, gm, pm, float(wpc), float(wgc),
                        gm * gain_scale * formulas.proportional_gain(2), stable)


def floor_describing_function(ema0: float, amplitudes, lambda_min: float = 0.05,
                              samples: int = 256) -> np.ndarray:
    """First-harmonic gain ``N(A)`` of the floor + renormalisation for ``λ̂_1 = λ̂₀ + A sin θ``.

    ``N(A) = (2/(A·n)) Σ λ*_1(θ_n) sin θ_n`` over one period (``λ̂_2 = 1 − λ̂_1``,
    amplitudes with ``λ̂₀ ± A`` inside ``(0, 1)``). Small ``A`` gives the slope
    of :func:`operating_point`; ``A`` beyond ``λ_min − λ̂₀`` lifts the state off
    the floor for part of the cycle and the gain rises towards 1.

    Examples
    --------
    >>> n = floor_describing_function(0.002, [1e-4, 0.0019], 0.05)
    >>> [round(float(v), 4) for v in n]
    [0.0455, 0.0455]
    """
    lambda_min = check_lambda_min(lambda_min, 2)
    a = np.asarray(amplitudes, dtype=float).reshape(-1)
    if np.any(a <= 0) or np.any(ema0 - a <= 0) or np.any(ema0 + a >= 1):
        raise ValueError("amplitudes must be > 0 with ema0 ± A inside (0, 1)")
    theta = 2 * np.pi * np.arange(samples) / samples
    lam1 = ema0 + a[:, None] * np.sin(theta)
    ema = np.stack([lam1, 1 - lam1], axis=-1)
    out = formulas.floor_renormalise(ema, lambda_min)[..., 0]
    return 2 * np.mean(out * np.sin(theta), axis=-1) / a


def plant_coefficients(plant) -> tuple[np.ndarray, np.ndarray]:
    """``(numerator, denominator)`` of ``plant`` in powers of ``q⁻¹``, of equal length, ``a₀ = 1``.

    ``plant`` is a :class:`~gaba_control.plant.parametric.PlantModel` or a
    ``(numerator, denominator)`` pair; ``ValueError`` unless it has at least one
    step of delay (the loops it closes have no algebraic path).
    """
    if hasattr(plant, "numerator"):
        num, den = np.asarray(plant.numerator, float), np.asarray(plant.a, float)
    else:
        num, den = np.asarray(plant[0], float), np.asarray(plant[1], float)
    if num.size == 0 or num[0] != 0:
        raise ValueError("the plant needs at least one step of delay (numerator[0] == 0)")
    size = max(num.size, den.size)
    num = np.concatenate([num, np.zeros(size - num.size)]) / den[0]
    den = np.concatenate([den, np.zeros(size - den.size)]) / den[0]
    return num, den


def simulate_closed_loop(plant, disturbance, *, lambda0: float, beta: float = 0.99,
                         warmup: int = 100, lambda_min: float = 0.05, controller=None):
    """The nonlinear GABA loop against ``y_t = d_t + (P u)_t``; returns ``(weights, y)``.

    ``u_t = log(λ*_{1,t}/λ₀)``; ``plant`` is a :class:`~gaba_control.plant.parametric.PlantModel`
    or ``(numerator, denominator)`` in powers of ``q⁻¹`` with at least one step
    of delay (the loop has no algebraic path). The controller
    (:class:`~gaba_control.controller.GABAController`, warmup and floor
    included) sees ``g_t = (e^{y_t}, 1)``. ``controller``: another law closed over
    the same plant, a callable ``g → weights`` (any scale: ``u`` uses
    ``w_1/Σw``); ``beta``, ``warmup``, ``lambda_min`` then do not apply.

    ``disturbance`` of shape ``(T,)`` is one run; ``(R, T)`` is ``R`` independent runs
    closed over the same plant and stepped together: the controller is called once per
    step on the ``(R, 2)`` norms (a custom ``controller`` must accept them), so the
    per-step cost of the controller is paid once. Each run's weights are those it gets
    alone, bit for bit (the controller's arithmetic is elementwise across runs, and the
    plant's is done run by run as for one run).

    Returns
    -------
    weights : (T, 2) the applied ``λ*`` ((R, T, 2) for ``R`` runs)
    y : (T,) the output the controller read ((R, T) for ``R`` runs)

    Examples
    --------
    >>> d = np.full(2000, np.log(600.0))
    >>> w, y = simulate_closed_loop(([0.0, 0.5], [1.0, -0.5]), d, lambda0=0.05, warmup=10)
    >>> bool(abs(w[-1, 0] - 0.05 / 1.05) < 1e-3)  # on the floor
    True
    """
    from gaba_control.controller import GABAController

    num, den = plant_coefficients(plant)
    if not (isinstance(lambda0, (int, float)) and 0 < lambda0 < 1):
        raise ValueError(f"lambda0 must lie in (0, 1), got {lambda0!r}")
    d = np.asarray(disturbance, dtype=float)
    if d.ndim > 2:
        raise ValueError(f"disturbance must have shape (T,) or (R, T), got shape {d.shape}")
    single = d.ndim < 2
    d = d.reshape(1, -1) if single else d
    runs, steps = d.shape
    if controller is None:
        gaba = GABAController(2, beta=beta, warmup=warmup, lambda_min=lambda_min)

        def controller(g):
            return gaba.step(g).weights
    size = num.size
    u_past = np.zeros((runs, size - 1))  # u_{t-1}, u_{t-2}, … of each run
    p_past = np.zeros((runs, size - 1))  # (P u)_{t-1}, …
    weights = np.empty((runs, steps, 2))
    ys = np.empty((runs, steps))
    g = np.empty((runs, 2))
    p_now = np.empty(runs)
    for t in range(steps):
        for r in range(runs):
            p_now[r] = float(np.dot(num[1:], u_past[r]) - np.dot(den[1:], p_past[r]))
            y = ys[r, t] = d[r, t] + p_now[r]
            g[r] = (1.0, math.exp(-y)) if y > 0 else (math.exp(y), 1.0)
        weights[:, t] = controller(g[0].copy() if single else g.copy())  # a law may keep g
        if size > 1:
            for r in range(runs):
                total = weights[r, t].sum()
                share = weights[r, t, 0] / total if np.isfinite(total) and total > 0 else lambda0
                u_past[r] = np.concatenate([[math.log(max(share, 1e-300) / lambda0)],
                                            u_past[r, :-1]])
                p_past[r] = np.concatenate([[p_now[r]], p_past[r, :-1]])
    return (weights[0], ys[0]) if single else (weights, ys)


def simulate_law_closed_loop(law, plant, disturbance, *, lambda0: float):
    """A weight law closed over ``plant`` for many disturbance records at once.

    The vectorised counterpart of :func:`simulate_closed_loop` for a
    :class:`~gaba_control.weighting.Law` that reads norms (``K = 2``): every
    row of ``disturbance`` ``(R, T)`` is one run, all advanced together by one
    :class:`~gaba_control.weighting.LawSimulator`. The law reads
    ``g = (e^{y}, 1)`` scaled to a maximum of 1 with ``y_t = d_t + (P u)_t``,
    ``u = log(λ*_1/λ₀)``. ``plant`` as in :func:`simulate_closed_loop`
    (``([0, 0], [1])``: no plant, open-loop replay).

    Returns
    -------
    weights : (R, T, 2) the applied weights
    y : (R, T) the log ratio the law read
    """
    from gaba_control.weighting import LawSimulator

    num, den = plant_coefficients(plant)
    if not (isinstance(lambda0, (int, float)) and 0 < lambda0 < 1):
        raise ValueError(f"lambda0 must lie in (0, 1), got {lambda0!r}")
    if law.num_tasks != 2:
        raise ValueError(f"the identified plant has two tasks, the law {law.num_tasks}")
    d = np.atleast_2d(np.asarray(disturbance, dtype=float))
    runs, steps = d.shape
    size = num.size
    u_past = np.zeros((size - 1, runs))
    p_past = np.zeros((size - 1, runs))
    sim = LawSimulator(law, (runs, 2))
    one = np.ones((runs, 2))
    weights = np.empty((runs, steps, 2))
    ys = np.empty((runs, steps))
    log_lam0 = math.log(lambda0)
    for t in range(steps):
        p_now = num[1:] @ u_past - den[1:] @ p_past if size > 1 else np.zeros(runs)
        y = d[:, t] + p_now
        ys[:, t] = y
        g = np.stack([np.exp(np.minimum(y, 0.0)), np.exp(-np.maximum(y, 0.0))], axis=-1)
        w = sim.step(g, one)
        weights[:, t] = w
        if size > 1:
            u = np.log(np.maximum(w[:, 0] / w.sum(axis=-1), 1e-300)) - log_lam0
            u_past = np.concatenate([u[None], u_past[:-1]])
            p_past = np.concatenate([p_now[None], p_past[:-1]])
    return weights, ys


def closed_loop_system(plant: ct.TransferFunction, *, lambda0: float, beta: float = 0.99,
                       warmup: int = 100, lambda_min: float = 0.05) -> ct.InterconnectedSystem:
    """The loop of :func:`simulate_closed_loop` as a python-control ``interconnect``.

    Input ``d`` (the disturbance), outputs ``y`` and ``lam_star[0]``,
    ``lam_star[1]``. Blocks: :func:`gaba_control.lti.loop.loop_blocks`, a
    static map ``y → g = (e^y, 1)``, ``u = log(λ*_1/λ₀)`` and the plant as a
    state-space system (strictly proper: the delay).
    """
    from gaba_control.lti.loop import loop_blocks

    beta, warmup = check_beta(beta), check_warmup(warmup)
    blocks = loop_blocks(2, beta, warmup, lambda_min)
    plant_ss = ct.ss(plant)
    if np.any(np.asarray(plant_ss.D) != 0):
        raise ValueError("the plant must be strictly proper (at least one step of delay)")
    plant_ss = ct.ss(plant_ss.A, plant_ss.B, plant_ss.C, plant_ss.D, dt=1, name="plant",
                     inputs=["u"], outputs=["p"])
    to_g = ct.nlsys(None, lambda t, x, v, params: np.array([math.exp(min(v[0] + v[1], 700.0)),
                                                            1.0]),
                    inputs=["d", "p"], outputs=["g[0]", "g[1]"], dt=1, name="to_g")
    to_u = ct.nlsys(None, lambda t, x, v, params: np.array([math.log(max(v[0], 1e-300)
                                                                     / lambda0)]),
                    inputs=["lam_star[0]"], outputs=["u"], dt=1, name="to_u")
    output = ct.nlsys(None, lambda t, x, v, params: np.array([v[0] + v[1]]),
                      inputs=["d", "p"], outputs=["y"], dt=1, name="y_out")
    return ct.interconnect([*blocks.values(), plant_ss, to_g, to_u, output], inputs=["d"],
                           outputs=["y", "lam_star[0]", "lam_star[1]"], dt=1,
                           name="gaba_on_plant")

