"""First-order IIR low-pass: the EMA that smooths the raw weights."""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

from gaba_control._validation import check_beta, check_num_tasks
from gaba_control.formulas import ema_update

from ._base import Block

__all__ = ["FirstOrderIIR"]


class FirstOrderIIR(Block):
    r"""The EMA as a first-order IIR low-pass, one channel per task.

    Difference equation and transfer function:

    .. math:: y[n] = β\,y[n-1] + (1-β)\,x[n], \qquad
              H(z) = \frac{(1-β)\,z}{z - β} = \frac{1-β}{1 - β z^{-1}},

    with initial state ``y[0] = 1/K`` (uniform weights). The batched call
    :meth:`apply` runs :func:`scipy.signal.lfilter` with ``b = [1−β]``,
    ``a = [1, −β]`` along time and initial condition ``zi = β·y[0]``, which
    equals the recursion.

    Steps whose input row is not finite, and steps marked in ``hold``, leave
    the state unchanged (``y[n] = y[n−1]``): a NaN never enters the state.

    Parameters
    ----------
    beta : float
        Pole, in ``[0, 1)``; time constant ``1/(1−β)`` steps.
    num_tasks : int
        Number of channels ``K``; the state starts at ``1/K``.

    See Also
    --------
    scipy.signal.lfilter : the batched path; its ``zi`` carries the state.
    gaba_control.lti.ema_transfer_function : the same filter as a
        python-control object (note ``(1−β)/(z−β)`` would be the filter
        delayed by one step).
    gaba_control.theory : time constant, cut-off and variance reduction.

    Examples
    --------
    >>> import numpy as np
    >>> iir = FirstOrderIIR(0.5, 2)
    >>> iir(np.array([0.0, 1.0]))
    array([0.25, 0.75])
    >>> iir.apply(np.array([[0.0, 1.0], [0.0, 1.0]]))
    array([[0.125 , 0.875 ],
           [0.0625, 0.9375]])
    """

    def __init__(self, beta: float, num_tasks: int):
        self.beta = check_beta(beta)
        self.num_tasks = check_num_tasks(num_tasks)
        self.reset()

    def reset(self) -> None:
        self.state = np.full(self.num_tasks, 1.0 / self.num_tasks)

    @property
    def coefficients(self) -> tuple[np.ndarray, np.ndarray]:
        """``(b, a)`` in negative powers of ``z``, as :func:`scipy.signal.lfilter` takes them."""
        return np.array([1.0 - self.beta]), np.array([1.0, -self.beta])

    def __call__(self, x: np.ndarray, hold: np.ndarray | bool = False) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        update = np.all(np.isfinite(x), axis=-1, keepdims=True) & ~np.asarray(hold)[..., None]
        self.state = np.where(update, ema_update(self.state, x, self.beta), self.state)
        return self.state

    def apply(self, x: np.ndarray, hold: np.ndarray | None = None) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        update = np.all(np.isfinite(x), axis=-1)
        if hold is not None:
            update = update & ~np.asarray(hold, dtype=bool)
        update = np.broadcast_to(update, x.shape[:-1])
        start = np.broadcast_to(self.state, (*x.shape[:-2], self.num_tasks))
        y = _filter_with_holds(x, update, start, self.beta)
        if y.shape[-2]:
            self.state = y[..., -1, :].copy()
        return y

    def __repr__(self) -> str:
        return f"FirstOrderIIR({self.beta}, {self.num_tasks})"


def _filter_with_holds(x, update, start, beta):
    """EMA along axis -2 that skips the steps where ``update`` is False.

    Three paths, fastest first: every step updates; the same suffix of steps
    updates in every run (the warmup case); arbitrary holds, handled by
    packing each run's updating steps to the front, filtering, and reading
    each step's output from the last update at or before it.
    """
    b, a = np.array([1.0 - beta]), np.array([1.0, -beta])
    zi = beta * start[..., None, :]
    if update.all():
        return lfilter(b, a, x, axis=-2, zi=zi)[0]
    rows = update.reshape(-1, update.shape[-1])
    if (rows == rows[0]).all():
        start_step = int(np.argmax(rows[0])) if rows[0].any() else rows.shape[-1]
        if rows[0, start_step:].all():  # held for a prefix only (the warmup), in every run
            y = np.empty_like(x)
            y[..., :start_step, :] = start[..., None, :]
            y[..., start_step:, :] = lfilter(b, a, x[..., start_step:, :], axis=-2, zi=zi)[0]
            return y
    order = np.argsort(~update, axis=-1, kind="stable")
    packed = np.take_along_axis(x, order[..., None], axis=-2)
    packed = np.where(np.take_along_axis(update, order, axis=-1)[..., None], packed, 0.0)
    filtered = lfilter(b, a, packed, axis=-2, zi=zi)[0]
    count = np.cumsum(update, axis=-1)
    y = np.take_along_axis(filtered, np.maximum(count - 1, 0)[..., None], axis=-2)
    return np.where((count > 0)[..., None], y, start[..., None, :])
