r"""The decimated GABA loop: the sensor is read every ``N`` steps.

Measuring per-task gradient norms costs extra backward passes, so a cheaper
loop refreshes the weights only every ``N``-th step and holds them in between.
To keep the EMA's memory in *steps* unchanged, each refresh uses the
coefficient ``β^N`` (:func:`gaba_control.formulas.decimated_beta`): ``N`` steps
of ``β`` decay a memory by ``β^N``.

Schedule (steps ``t`` counted from 1)
-------------------------------------
* ``t ≤ W``: warmup, output ``1/K``, EMA untouched, nothing measured.
* Refresh steps ``t = W + 1, W + 1 + N, W + 1 + 2N, …`` (:func:`refresh_steps`):
  the norms of that step are read; a valid row updates
  ``λ̂ ← β^N λ̂ + (1−β^N) λ_raw``, an invalid one holds it (the plain
  loop's measurement policy); the output is ``floor_renormalise(λ̂)``.
* Other steps after the warmup: nothing is measured, ``λ̂`` and ``λ*`` hold.

The first refresh is the first active step, so the loop never acts on
weights older than the warmup. With ``N = 1`` every active step is a refresh
and the loop is the plain :class:`~gaba_control.controller.GABAController`.

Per refresh the EMA is the first-order filter

.. math:: H_N(z) = \frac{(1 − β^N)\,z}{z − β^N}

on the refresh clock. :func:`decimated_transfer_function` gives it ``dt = N``
(time in steps: pole ``β^N`` per ``N`` steps, time constant
``−N/\ln β^N = −1/\ln β`` steps, as for the plain EMA); pass ``dt=1`` to
count time in refreshes instead. For i.i.d. raw weights of variance ``σ²``
the EMA variance is ``σ² (1 − β^N)/(1 + β^N)`` (:func:`decimated_noise_gain`),
larger than the per-step ``(1 − β)/(1 + β)`` because the filter averages
``N`` times fewer measurements over the same time constant.

Zero-order-hold reading: the update ``β^N λ̂ + (1−β^N) x`` is exactly ``N``
plain EMA steps on an input held at ``x``, so the decimated EMA equals the
plain EMA of the measurement held over each block of ``N`` steps, sampled at
the block ends.
"""

from __future__ import annotations

from dataclasses import dataclass

import control as ct
import numpy as np

from gaba_control import formulas
from gaba_control._validation import (
    check_beta,
    check_grad_norms,
    check_lambda_min,
    check_no_extra_kwargs,
    check_num_tasks,
    check_positive_int,
    check_warmup,
)
from gaba_control.blocks import FirstOrderIIR
from gaba_control.lti.iir import _axes, ema_transfer_function
from gaba_control.lti.loop import simulate_loop

__all__ = [
    "DecimatedResponse",
    "decimated_noise_gain",
    "decimated_time_constant",
    "decimated_transfer_function",
    "refresh_steps",
    "simulate_decimated",
    "simulate_decimated_control",
]


def decimated_transfer_function(
    beta: float, every: int, *, dt: float | None = None
) -> ct.TransferFunction:
    """Per-refresh EMA ``(1 − β^N) z/(z − β^N)`` as a :class:`control.TransferFunction`.

    Parameters
    ----------
    beta : float
        Per-step EMA coefficient, ``0 ≤ β < 1``.
    every : int
        Refresh period ``N ≥ 1`` in steps.
    dt : float, optional
        Sampling period of the model; default ``N`` (time in steps). ``dt=1``
        counts time in refreshes.

    See Also
    --------
    gaba_control.lti.iir.ema_transfer_function : the plain EMA (``N = 1``).

    Examples
    --------
    >>> H = decimated_transfer_function(0.99, 10)
    >>> H.dt, H.poles().real.round(6)
    (10, array([0.904382]))
    """
    beta = check_beta(beta)
    every = check_positive_int(every, "every")
    pole = formulas.decimated_beta(beta, every)
    return ema_transfer_function(pole, dt=every if dt is None else dt, name="ema_decimated")


def decimated_time_constant(beta: float, every: int) -> float:
    """Time constant in steps, ``−N / ln(β^N) = −1/ln β``, independent of ``N`` (0 for β = 0).

    After ``τ`` steps a step input is absorbed to ``1 − 1/e``; ``1/(1−β)`` is
    its large-τ approximation.

    Examples
    --------
    >>> round(decimated_time_constant(0.99, 1), 6), round(decimated_time_constant(0.99, 25), 6)
    (99.499162, 99.499162)
    """
    beta = check_beta(beta)
    every = check_positive_int(every, "every")
    pole = formulas.decimated_beta(beta, every)
    return 0.0 if pole == 0.0 else float(-every / np.log(pole))


def decimated_noise_gain(beta: float, every: int) -> float:
    """EMA output variance over i.i.d. input variance, per refresh: ``(1−β^N)/(1+β^N)``.

    New formula of this module (not in :mod:`gaba_control.formulas`); for
    ``N = 1`` it is the plain EMA's white-noise gain.

    Examples
    --------
    >>> round(decimated_noise_gain(0.99, 1), 6), round(decimated_noise_gain(0.99, 10), 6)
    (0.005025, 0.050209)
    """
    beta = check_beta(beta)
    every = check_positive_int(every, "every")
    pole = formulas.decimated_beta(beta, every)
    return (1.0 - pole) / (1.0 + pole)


def refresh_steps(num_steps: int, every: int, warmup: int) -> np.ndarray:
    """Boolean mask ``(T,)``: True at refresh steps ``t > W`` with ``(t − W − 1) mod N = 0``.

    Examples
    --------
    >>> refresh_steps(8, 3, 2).nonzero()[0] + 1   # 1-based steps
    array([3, 6])
    """
    every = check_positive_int(every, "every")
    warmup = check_warmup(warmup)
    t = np.arange(1, num_steps + 1)
    return formulas.gate_is_open(t, warmup) & ((t - warmup - 1) % every == 0)


@dataclass(frozen=True)
class DecimatedResponse:
    """Signals of a decimated-loop run on the step grid; arrays ``(..., T, K)``.

    Attributes
    ----------
    steps : ndarray (T,)
        1-based step index.
    active, refresh : ndarray (T,) of bool
        Gate open; the sensor is read at this step.
    valid : ndarray (..., T) of bool
        A valid measurement was read at this step (False off the refresh steps).
    raw : ndarray (..., T, K)
        Raw weights of the rows read; NaN where nothing valid was read.
    ema : ndarray (..., T, K)
        EMA state after the step (held between refreshes).
    weights : ndarray (..., T, K)
        Output ``λ*`` (held between refreshes, ``1/K`` during warmup).
    """

    steps: np.ndarray
    active: np.ndarray
    refresh: np.ndarray
    valid: np.ndarray
    raw: np.ndarray
    ema: np.ndarray
    weights: np.ndarray

    def plot(self, ax=None):
        """Draw ``λ*`` per task (first run of a batch) and mark the refresh steps."""
        ax = _axes(ax)
        weights = self.weights.reshape(-1, *self.weights.shape[-2:])[0]
        for i in range(weights.shape[-1]):
            ax.step(self.steps, weights[:, i], where="post", label=f"λ*[{i}]")
        refreshed = self.steps[self.refresh]
        ax.plot(refreshed, np.zeros_like(refreshed, dtype=float), "|", color="k", label="refresh")
        ax.set_xlabel("step t")
        ax.set_ylabel("weight")
        ax.set_title("Decimated GABA loop")
        ax.legend()
        return ax


def _check_run(G, num_tasks, beta, every, warmup, lambda_min):
    k = check_num_tasks(num_tasks)
    g = check_grad_norms(G, k, name="G")
    if g.ndim < 2:
        raise ValueError(f"G must have shape (..., T, num_tasks), got shape {g.shape}")
    return (
        g,
        k,
        check_beta(beta),
        check_positive_int(every, "every"),
        check_warmup(warmup),
        check_lambda_min(lambda_min, k),
    )


def simulate_decimated(
    G,
    num_tasks: int,
    beta: float = 0.99,
    every: int = 1,
    warmup: int = 100,
    lambda_min: float = 0.05,
    **kwargs,
) -> DecimatedResponse:
    """Run the decimated loop with numpy on norms ``G (..., T, K)`` (vectorised).

    Only the rows at refresh steps are read; leading axes are independent
    runs. The EMA is the plain loop's :class:`~gaba_control.blocks.FirstOrderIIR`
    with coefficient ``β^N``, held on every step that is not a refresh (and
    on invalid rows), so ``every=1`` is the plain controller.

    Examples
    --------
    >>> G = np.tile([5.0, 0.01], (6, 1))
    >>> r = simulate_decimated(G, 2, beta=0.5, every=2, warmup=1, lambda_min=0.0)
    >>> r.weights[:, 1].round(4)
    array([0.5   , 0.8735, 0.8735, 0.9669, 0.9669, 0.9902])
    """
    check_no_extra_kwargs(kwargs, "simulate_decimated")
    g, k, beta, every, warmup, lambda_min = _check_run(
        G, num_tasks, beta, every, warmup, lambda_min
    )
    num_steps = g.shape[-2]
    refresh = refresh_steps(num_steps, every, warmup)
    active = formulas.gate_is_open(np.arange(1, num_steps + 1), warmup)
    raw = np.where(refresh[:, None], formulas.raw_weights(g), np.nan)
    iir = FirstOrderIIR(formulas.decimated_beta(beta, every), k)
    ema = iir.apply(raw, hold=~refresh)  # non-finite raw rows (invalid) hold as well
    weights = np.where(active[:, None], formulas.floor_renormalise(ema, lambda_min), 1.0 / k)
    return DecimatedResponse(
        steps=np.arange(1, num_steps + 1),
        active=active,
        refresh=refresh,
        valid=refresh & formulas.measurement_is_valid(g),
        raw=raw,
        ema=ema,
        weights=weights,
    )


def simulate_decimated_control(
    G,
    num_tasks: int,
    beta: float = 0.99,
    every: int = 1,
    warmup: int = 100,
    lambda_min: float = 0.05,
    **kwargs,
) -> DecimatedResponse:
    """The decimated loop with python-control, for parity with :func:`simulate_decimated`.

    Runs :func:`~gaba_control.lti.loop.simulate_loop` on the refresh clock
    (``dt = N``, EMA coefficient ``β^N``, no warmup: the warmup steps precede
    the first refresh) with the rows read at the refresh steps, then holds
    each refresh's values until the next one. ``G`` must be ``(T, K)``.

    Examples
    --------
    >>> G = np.tile([5.0, 0.01], (6, 1))
    >>> r = simulate_decimated_control(G, 2, beta=0.5, every=2, warmup=1, lambda_min=0.0)
    >>> r.weights[:, 1].round(4)
    array([0.5   , 0.8735, 0.8735, 0.9669, 0.9669, 0.9902])
    """
    check_no_extra_kwargs(kwargs, "simulate_decimated_control")
    g, k, beta, every, warmup, lambda_min = _check_run(
        G, num_tasks, beta, every, warmup, lambda_min
    )
    if g.ndim != 2:
        raise ValueError(f"G must have shape (T, num_tasks), got shape {g.shape}")
    num_steps = g.shape[0]
    refresh = refresh_steps(num_steps, every, warmup)
    if not refresh.any():  # the run ends inside the warmup: nothing to simulate
        return simulate_decimated(g, k, beta, every, warmup, lambda_min)
    on_grid = simulate_loop(
        g[refresh], k, formulas.decimated_beta(beta, every), 0, lambda_min, dt=every
    )
    last = np.cumsum(refresh) - 1  # index of the latest refresh at or before each step
    seen = last >= 0
    uniform = np.full(k, 1.0 / k)

    def hold(values, before):
        return np.where(seen[:, None], values[np.maximum(last, 0)], before)

    return DecimatedResponse(
        steps=np.arange(1, num_steps + 1),
        active=formulas.gate_is_open(np.arange(1, num_steps + 1), warmup),
        refresh=refresh,
        valid=refresh & hold(on_grid.valid[:, None], False)[:, 0],
        raw=np.where(refresh[:, None], hold(on_grid.raw, np.nan), np.nan),
        ema=hold(on_grid.ema, uniform),
        weights=hold(on_grid.weights, uniform),
    )
