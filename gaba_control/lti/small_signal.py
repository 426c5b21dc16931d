r"""Small-signal (linearised) model of the active GABA loop.

Around a constant measurement ``g0`` the open gate's loop settles at
``λ̂₀ = λ_raw(g0)``; for small ``δg`` the map ``δg → δλ*`` is linear and
time invariant: the sensor's Jacobian, the comparator's sign, the P-law gain,
one EMA per channel and the saturation's Jacobian in series
(:func:`small_signal_loop`). :func:`small_signal_response` runs it beside the
nonlinear :func:`~gaba_control.lti.loop.simulate_loop` for one perturbation.
"""

from __future__ import annotations

from dataclasses import dataclass

import control as ct
import numpy as np

from gaba_control import formulas
from gaba_control._validation import check_beta, check_lambda_min, check_num_tasks
from gaba_control.lti.iir import _axes, ema_state_space, signal_names
from gaba_control.lti.loop import simulate_loop

__all__ = ["SmallSignalResponse", "small_signal_loop", "small_signal_response"]


def _sensor_jacobian(g0: np.ndarray) -> np.ndarray:
    """``∂s/∂g = (I − s 1ᵀ)/Σg`` at ``g0``."""
    shares = formulas.sensor_shares(g0)
    return (np.eye(g0.size) - np.outer(shares, np.ones(g0.size))) / np.sum(g0)


def _saturation_jacobian(ema0: np.ndarray, lambda_min: float) -> np.ndarray:
    """``∂λ*/∂λ̂ = (I − λ* 1ᵀ) diag(λ̂ > λ_min) / Σ max(λ̂, λ_min)`` at ``ema0``."""
    unclipped = (ema0 > lambda_min).astype(np.float64)
    floored = np.maximum(ema0, lambda_min)
    out = floored / floored.sum()
    return (np.eye(ema0.size) - np.outer(out, np.ones(ema0.size))) * unclipped / floored.sum()


def small_signal_loop(
    g0, beta: float = 0.99, lambda_min: float = 0.05, *, dt: float = 1
) -> ct.StateSpace:
    r"""Linearisation of the active loop from ``δg`` to ``δλ*`` around a constant ``g0``.

    The operating point is the equilibrium of the open gate with constant
    norms ``g0``: ``λ̂₀ = λ_raw(g0)``, ``λ*₀ = floor_renormalise(λ̂₀)``. The
    model is the series of named linear blocks

    .. math::

        δλ^* = J_{sat}\,H(z)\,K_p\,(−I)\,J_s\,δg, \qquad
        J_s = \frac{I − s_0 1^T}{Σ g_0},\quad
        J_{sat} = \frac{(I − λ^*_0 1^T)\,\mathrm{diag}(λ̂_0 > λ_{min})}{Σ \max(λ̂_0, λ_{min})},

    with ``H(z) = (1−β) z/(z−β)`` on each channel.

    Where it holds: after the warmup (the gate is a time-varying switch that
    a linear model cannot represent), for valid measurements, with the EMA
    started at ``λ̂₀``, and for perturbations small enough that no channel
    crosses the floor ``λ_min`` (the saturation is piecewise linear; with the
    floor inactive everywhere ``J_sat`` is the identity on zero-sum vectors).
    Errors are second order in ``δg``. Perturbations along ``g0`` are invisible
    (the sensor is scale invariant: ``J_s g0 = 0``).

    Parameters
    ----------
    g0 : array_like (K,)
        Operating point: valid, positive gradient norms.
    beta : float
    lambda_min : float
        Must not equal any ``λ̂₀`` entry (the kink of the floor).
    dt : float

    Returns
    -------
    control.StateSpace
        Inputs ``dg[i]``, outputs ``dlam_star[i]``, ``K`` states.

    Examples
    --------
    >>> sys = small_signal_loop([1.0, 3.0], beta=0.9, lambda_min=0.0)
    >>> sys.dcgain().round(4)
    array([[-0.1875,  0.0625],
           [ 0.1875, -0.0625]])
    """
    g0 = np.asarray(g0, dtype=np.float64)
    k = check_num_tasks(g0.shape[-1] if g0.ndim == 1 else 0)
    beta = check_beta(beta)
    lambda_min = check_lambda_min(lambda_min, k)
    if not (bool(formulas.measurement_is_valid(g0)) and np.all(g0 > 0)):
        raise ValueError("g0 must be finite and positive (an interior operating point)")
    ema0 = formulas.raw_weights(g0)
    if np.any(np.isclose(ema0, lambda_min, rtol=0.0, atol=1e-12)):
        raise ValueError("an EMA channel sits on the floor kink; the loop is not differentiable")

    def names(base):
        return signal_names(base, k)

    def gain(matrix, name, inputs, outputs):
        return ct.ss(
            [], [], [], matrix, dt=dt, name=name, inputs=names(inputs), outputs=names(outputs)
        )

    eye = np.eye(k)
    blocks = [
        gain(_sensor_jacobian(g0), "sensor", "dg", "ds"),
        gain(-eye, "comparator", "ds", "de"),
        gain(formulas.proportional_gain(k) * eye, "p_law", "de", "dlam_raw"),
        ema_state_space(
            beta, k, dt=dt, name="ema", inputs="dlam_raw", outputs="dema", prev_outputs=None
        ),
        gain(_saturation_jacobian(ema0, lambda_min), "saturation", "dema", "dlam_star"),
    ]
    return ct.interconnect(
        blocks, inputs=names("dg"), outputs=names("dlam_star"), dt=dt, name="gaba_small_signal"
    )


@dataclass(frozen=True)
class SmallSignalResponse:
    """Nonlinear loop vs its linearisation for one perturbation sequence.

    Attributes
    ----------
    steps : ndarray (T,)
    linear : ndarray (T, K)
        ``δλ*`` from :func:`small_signal_loop` (``control.forced_response``).
    nonlinear : ndarray (T, K)
        ``λ*(g0 + δg) − λ*₀`` from :func:`simulate_loop` started at equilibrium.
    """

    steps: np.ndarray
    linear: np.ndarray
    nonlinear: np.ndarray

    def plot(self, ax=None):
        """Draw both deviations per task against the step onto ``ax``."""
        ax = _axes(ax)
        for i in range(self.linear.shape[-1]):
            (line,) = ax.plot(self.steps, self.nonlinear[:, i], label=f"nonlinear δλ*[{i}]")
            ax.plot(
                self.steps,
                self.linear[:, i],
                "--",
                color=line.get_color(),
                label=f"linear δλ*[{i}]",
            )
        ax.set_xlabel("step t")
        ax.set_ylabel("δλ*")
        ax.legend()
        return ax


def small_signal_response(
    g0, dG, beta: float = 0.99, lambda_min: float = 0.05
) -> SmallSignalResponse:
    """Compare :func:`small_signal_loop` with :func:`simulate_loop` for ``G = g0 + dG``.

    The nonlinear loop runs with ``warmup = 0`` and its EMA started at the
    operating point ``λ_raw(g0)``, so both start at equilibrium.

    Examples
    --------
    >>> dG = 1e-6 * np.array([[1.0, 0.0]] * 3)
    >>> r = small_signal_response([1.0, 3.0], dG, beta=0.5, lambda_min=0.0)
    >>> bool(np.allclose(r.linear, r.nonlinear, rtol=1e-4, atol=1e-15))
    True
    """
    g0 = np.asarray(g0, dtype=np.float64)
    dG = np.asarray(dG, dtype=np.float64)
    k = g0.shape[-1]
    lin = small_signal_loop(g0, beta, lambda_min)
    steps = np.arange(dG.shape[0])
    linear = np.asarray(ct.forced_response(lin, steps, dG.T).outputs).reshape(k, -1).T
    ema0 = formulas.raw_weights(g0)
    out0 = formulas.floor_renormalise(ema0, lambda_min)
    sim = simulate_loop(g0 + dG, k, beta, 0, lambda_min, initial_ema=ema0)
    return SmallSignalResponse(steps + 1, linear, sim.weights - out0)
