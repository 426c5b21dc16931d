"""The GABA controller: the blocks wired in the paper's order, per step or batched."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gaba_control._validation import (
    check_beta,
    check_grad_norms,
    check_lambda_min,
    check_no_extra_kwargs,
    check_num_tasks,
    check_simplex_rows,
    check_warmup,
)
from gaba_control.blocks import (
    Comparator,
    FirstOrderIIR,
    ProportionalLaw,
    Saturation,
    Sensor,
    WarmupGate,
)
from gaba_control.formulas import measurement_is_valid

__all__ = ["ControllerTrace", "GABAController", "StepOutput"]

#: Numbers per time chunk in :meth:`GABAController.run` (about 2 MiB of float64).
CHUNK_VALUES = 2**18
#: the largest step a loaded state may hold (the counter must still advance without overflow)
MAX_STEP = 2**62


@dataclass(frozen=True)
class StepOutput:
    """Every signal of the loop at one step; arrays shaped ``(..., K)``.

    ``raw``, ``error`` and ``shares`` are NaN where the measurement was
    invalid; ``ema`` is the filter state after the step and ``weights`` the
    output ``λ*`` (``1/K`` while the gate is closed).
    """

    step: int
    active: bool
    valid: np.ndarray
    shares: np.ndarray
    error: np.ndarray
    raw: np.ndarray
    ema: np.ndarray
    weights: np.ndarray


@dataclass(frozen=True)
class ControllerTrace:
    """Every signal of the loop over a run; arrays shaped ``(..., T, K)``.

    ``steps`` and ``active`` have shape ``(T,)``; ``valid`` has ``(..., T)``.
    """

    steps: np.ndarray
    active: np.ndarray
    valid: np.ndarray
    shares: np.ndarray
    error: np.ndarray
    raw: np.ndarray
    ema: np.ndarray
    weights: np.ndarray

    def floor_active(self, lambda_min: float) -> np.ndarray:
        """Where the saturation binds: an active step with some ``λ̂_i < λ_min``."""
        return np.any(self.ema < lambda_min, axis=-1) & self.active


class GABAController:
    r"""GABA as a control loop: sensor → comparator → P-law → IIR → saturation, gated.

    Per step ``t`` (counted from 1) with gradient norms ``g``:

    * ``t ≤ W``: output ``1/K``; the EMA state is left untouched.
    * ``t > W``: ``s = g/Σg``, ``e = 1/K − s``, ``λ_raw = 1/K + e/(K−1)``
      (the paper's closed form), ``λ̂ ← β λ̂ + (1−β) λ_raw``,
      ``λ* = max(λ̂, λ_min)/Σ max(λ̂, λ_min)``.

    A step whose norms are not a valid measurement (any NaN or ``+inf``, or
    all zero) leaves the EMA state as it was, so the output holds; negative
    norms raise ``ValueError``.

    :meth:`run` processes a whole recorded sequence at once and equals
    repeated :meth:`step` (to rounding, ~1e-16): the floor acts on the output
    only, so the EMA is a linear filter of the raw weights, applied with
    :func:`scipy.signal.lfilter` along time. Leading axes of the input are
    independent runs sharing the step counter.

    Parameters
    ----------
    num_tasks : int
        ``K ≥ 2``.
    beta : float
        EMA coefficient in ``[0, 1)``; default 0.99.
    warmup : int
        Gated steps ``W ≥ 0``; default 100.
    lambda_min : float
        Floor in ``[0, 1/K)``; default 0.05.

    Examples
    --------
    >>> import numpy as np
    >>> ctrl = GABAController(2, warmup=1)
    >>> g = np.array([[5.0, 0.01], [5.0, 0.01]])
    >>> trace = ctrl.run(g)
    >>> trace.weights.round(6)
    array([[0.5    , 0.5    ],
           [0.49502, 0.50498]])
    >>> ctrl.step(np.array([5.0, 0.01])).weights.round(6)
    array([0.49009, 0.50991])
    """

    def __init__(
        self,
        num_tasks: int = 2,
        *,
        beta: float = 0.99,
        warmup: int = 100,
        lambda_min: float = 0.05,
        **kwargs,
    ):
        check_no_extra_kwargs(kwargs, "GABAController")
        self.num_tasks = check_num_tasks(num_tasks)
        self.beta = check_beta(beta)
        self.warmup = check_warmup(warmup)
        self.lambda_min = check_lambda_min(lambda_min, self.num_tasks)
        self.sensor = Sensor()
        self.comparator = Comparator(self.num_tasks)
        self.plaw = ProportionalLaw(self.num_tasks)
        self.iir = FirstOrderIIR(self.beta, self.num_tasks)
        self.saturation = Saturation(self.lambda_min, self.num_tasks)
        self.gate = WarmupGate(self.warmup, self.num_tasks)
        self._weights = self.saturation(self.iir.state)

    def __repr__(self) -> str:
        return (
            f"GABAController(num_tasks={self.num_tasks}, beta={self.beta}, "
            f"warmup={self.warmup}, lambda_min={self.lambda_min})"
        )

    @property
    def config(self) -> dict:
        """The four constants that define the loop."""
        return {
            "num_tasks": self.num_tasks,
            "beta": self.beta,
            "warmup": self.warmup,
            "lambda_min": self.lambda_min,
        }

    @property
    def step_count(self) -> int:
        """Steps taken so far (the next step is ``step_count + 1``)."""
        return self.gate.step

    @property
    def weights(self) -> np.ndarray:
        """The current output ``λ*``."""
        return self._weights

    def step(self, grad_norms) -> StepOutput:
        """Advance one step with norms shaped ``(..., K)``."""
        g = check_grad_norms(grad_norms, self.num_tasks)
        active = bool(self.gate.advance(1)[0])
        shares = self.sensor(g)
        error = self.comparator(shares)
        raw = self.plaw(error)
        ema = self.iir(raw, hold=not active)
        weights = self._output(ema, np.asarray(active))
        self._weights = weights
        return StepOutput(
            step=self.gate.step,
            active=active,
            valid=measurement_is_valid(g),
            shares=shares,
            error=error,
            raw=raw,
            ema=ema.copy(),
            weights=weights,
        )

    def run(self, grad_norms) -> ControllerTrace:
        """Advance ``T`` steps with norms shaped ``(..., T, K)``; same result as ``T`` steps."""
        g = check_grad_norms(grad_norms, self.num_tasks)
        if g.ndim < 2:
            raise ValueError(
                f"grad_norms must have shape (..., T, num_tasks) for run(), got shape {g.shape}"
            )
        num_steps = g.shape[-2]
        first_step = self.gate.step + 1
        signals = {name: np.empty_like(g) for name in ("shares", "error", "raw", "ema", "weights")}
        active = np.empty(num_steps, dtype=bool)
        # Time chunks of about CHUNK_VALUES numbers keep every temporary small enough to be
        # reused by the allocator instead of page-faulted in afresh; the state carries over.
        per_step = g.size // num_steps if num_steps else 1
        chunk = max(1, CHUNK_VALUES // max(1, per_step))
        for start in range(0, num_steps, chunk):
            part = slice(start, min(start + chunk, num_steps))
            active[part] = self._run_chunk(g[..., part, :], {k: v[..., part, :] for k, v in
                                                             signals.items()})
        if num_steps:
            self._weights = signals["weights"][..., -1, :].copy()
        return ControllerTrace(
            steps=np.arange(first_step, first_step + num_steps),
            active=active,
            valid=np.isfinite(signals["shares"][..., 0]),
            **signals,
        )

    def _run_chunk(self, g: np.ndarray, out: dict) -> np.ndarray:
        """One stretch of :meth:`run`, written into the views in ``out``; returns the gate."""
        active = self.gate.advance(g.shape[-2])
        out["shares"][...] = self.sensor.apply(g)
        out["error"][...] = self.comparator.apply(out["shares"])
        out["raw"][...] = self.plaw.apply(out["error"])
        out["ema"][...] = self.iir.apply(out["raw"], hold=~active)
        out["weights"][...] = self._output(out["ema"], active[:, None])
        return active

    def _output(self, ema: np.ndarray, active: np.ndarray) -> np.ndarray:
        return np.where(active, self.saturation(ema), 1.0 / self.num_tasks)

    def reset(self) -> None:
        """Back to step 0 with the EMA at ``1/K``."""
        self.gate.reset()
        self.iir.reset()
        self._weights = self.saturation(self.iir.state)

    def state_dict(self) -> dict:
        """Everything needed to resume: the step, the EMA state, the output, the config."""
        return {
            "step": self.gate.step,
            "ema": np.array(self.iir.state, copy=True),
            "weights": np.array(self._weights, copy=True),
            "config": self.config,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict`; raises ``ValueError`` on a config mismatch."""
        missing = {"step", "ema", "weights"} - set(state)
        if missing:
            raise ValueError(f"state is missing key(s): {', '.join(sorted(missing))}")
        config = state.get("config")
        if config is not None and config != self.config:
            raise ValueError(
                f"state was saved with config {config}, this controller has {self.config}"
            )
        ema = check_simplex_rows(state["ema"], "state['ema']", self.num_tasks)
        weights = check_simplex_rows(state["weights"], "state['weights']", self.num_tasks)
        step = state["step"]
        if (isinstance(step, bool) or not np.isfinite(step) or int(step) != step or step < 0
                or step > MAX_STEP):
            raise ValueError(f"state['step'] must be an int in [0, 2^62], got {step}")
        self.gate.step = int(step)
        self.iir.state = ema.copy()
        self._weights = weights.copy()
