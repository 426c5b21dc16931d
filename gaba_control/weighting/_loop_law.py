r"""GABA's loop as a :class:`~gaba_control.weighting.Law`, one overridable method per block.

:class:`LoopLaw` runs the paper's pipeline behind the warmup gate::

    g ──raw──> λ_raw ──filtered──> state ──output──> λ*        (1/K while t ≤ W)

with the blocks of :mod:`gaba_control.formulas`: ``raw`` the sensor,
comparator and P-law; ``filtered`` the EMA ``λ̂ ← βλ̂ + (1−β)λ_raw``; ``output``
the saturation ``max(λ̂, λ_min)/Σ``. Unchanged, it is GABA: the parity test
holds it to :class:`~gaba_control.controller.GABAController` (to rounding).
A *variant* overrides one of the three methods (one module each:
``_gaba_antiwindup``, ``_gaba_inverse``, ``_gaba_integral``,
``_gaba_log_ema``, ``_gaba_relative_floor``) and is thereby a law with a numpy
twin (:func:`~gaba_control.weighting.law_weights`) and a torch module
(:class:`~gaba_control.weighting.LawLoss`) from the same source.

Measurement policy: a row of norms that GABA's sensor rejects (a NaN or
``inf``, or all zero) makes the weights non-finite and the step is held by
the law framework; :meth:`LoopLaw.hold` still advances the step count, as
GABA's gate does, so the warmup ends on the same step either way.

Every variant method takes ``--floor-fraction ρ``: the floor becomes ``ρ/K``
(a floor relative to the equal share), otherwise it is the controller's
``λ_min``; and ``--open-loop-ratio R``: the same pipeline fed the constant
reading ``g = (R, 1, …, 1)``, i.e. the variant's own open-loop schedule; and
``--refresh-every N`` as GABA: the norms are measured on the refresh steps
``t > W``, ``(t − W − 1) mod N = 0`` only, the weights held in between, and the
law's pole per refresh is ``β^N`` (``gaba_integral``'s default gain
``1 − β^N``), as in :mod:`gaba_control.lti.decimated` and
:mod:`gaba_control.design`.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from gaba_control import formulas
from gaba_control._validation import check_beta, check_positive_int, check_warmup
from gaba_control.formulas import array_namespace, decimated_beta

from ._base import Option, WeightingMethod
from ._gaba import REFRESH_EVERY, SENSOR, check_sensor
from ._law import Law, LawLoss, LawMethod, Measurement, check_real, column, full, law_weights

__all__ = ["FLOOR_FRACTION", "OPEN_LOOP_RATIO", "LoopLaw", "LoopVariant", "open_loop_reading"]


class LoopLaw(Law):
    """GABA's pipeline as a law; subclasses swap :meth:`raw`, :meth:`filtered` or :meth:`output`.

    Parameters
    ----------
    num_tasks : int
    beta : float
        The filter's pole, ``[0, 1)``.
    warmup : int
        Gated steps ``W ≥ 0``.
    floor : float
        The saturation's floor, ``[0, 1/K)``.
    """

    measures = "norms"
    #: the module may measure every N steps (:class:`~gaba_control.weighting.LawLoss`)
    refreshes = True
    hyperparameters: ClassVar[tuple[str, ...]] = ("beta", "warmup", "floor")
    #: the filter state is a log-domain vector (any sign), not weights (≥ 0)
    log_state: ClassVar[bool] = False

    def check(self, beta=0.99, warmup=100, floor=0.05, **extra) -> None:
        self.beta = check_beta(beta)
        self.warmup = check_warmup(warmup)
        self.floor = check_real(floor, "floor", low=0.0, high=1.0 / self.num_tasks,
                                flag="the floor (--lambda-min or --floor-fraction/K)")
        self.check_extra(**extra)

    def check_extra(self, **extra) -> None:
        """Validate a variant's own hyperparameters (none here)."""

    # -- the blocks a variant swaps
    def raw(self, norms, state: dict):
        """Sensor → comparator → P-law: ``λ_raw = 1/K + (1/K − s)/(K−1)``."""
        return formulas.raw_weights(norms)

    def filtered(self, state: dict, raw) -> dict:
        """The filter's next state: the EMA of the raw weights."""
        return {"ema": formulas.ema_update(state["ema"], raw, self.beta)}

    def unsaturated(self, state: dict):
        """The weights before the saturation (the floor binds where one lies below it)."""
        return state["ema"]

    def output(self, state: dict):
        """The saturation: ``max(weights, floor)`` renormalised onto the simplex."""
        return formulas.floor_renormalise(self.unsaturated(state), self.floor)

    # -- the law protocol
    def initial_state(self, like) -> dict:
        return {"ema": full(like, (self.num_tasks,), 1.0 / self.num_tasks),
                "step": full(like, (), 0.0)}

    def step(self, state: dict, m: Measurement):
        xp = array_namespace(state["ema"])
        step = state["step"] + 1
        stepped = self.filtered(state, self.raw(m.norms, state))
        weights = self.output(stepped)
        stepped["step"] = step
        if bool(xp.all(step > self.warmup)):
            return weights, stepped  # every run past its warmup: the gate is open everywhere
        gate = step > self.warmup
        # the gate open: the filter advances; closed: it holds and the output is 1/K
        nxt = {name: xp.where(column(gate, value) if value.ndim > gate.ndim else gate,
                              value, state[name]) for name, value in stepped.items()}
        nxt["step"] = step
        equal = xp.ones_like(weights) / self.num_tasks
        # a rejected reading gives NaN weights even while gated, so the framework holds it
        nan = xp.any(xp.isnan(weights), axis=-1, keepdims=True)
        weights = xp.where(column(gate, weights), weights, xp.where(nan, weights, equal))
        return weights, nxt

    def hold(self, state: dict) -> dict:
        return dict(state, step=state["step"] + 1)

    def check_state(self, state) -> None:
        super().check_state(state)
        if "step" in state and (state["step"] < 0 or state["step"] != np.floor(state["step"])):
            raise ValueError(f"state['law_step'] must be a count >= 0, got {state['step']}")
        if "ema" in state and not self.log_state and np.any(state["ema"] < 0):
            raise ValueError(f"state['law_ema'] must be >= 0, got {state['ema'].tolist()}")


#: ``--floor-fraction ρ``: every variant's floor is ``ρ/K`` when given
FLOOR_FRACTION = Option("floor_fraction", "loop variants: floor = ρ/K, a fraction ρ ∈ [0, 1) "
                        "of the equal share (default: the controller's --lambda-min)",
                        metavar="RHO")
#: ``--open-loop-ratio R``: the variant's pipeline on the constant reading ``(R, 1, …)``
OPEN_LOOP_RATIO = Option("open_loop_ratio", "loop variants: run the pipeline open loop on the "
                         "constant reading g = (R, 1, …, 1), or with K − 1 values "
                         "g = (R_1, …, R_{K−1}, 1) (its own schedule)", nargs="+", metavar="R")


def open_loop_reading(ratio, num_tasks: int) -> np.ndarray:
    """The constant reading of ``--open-loop-ratio``: ``(R, 1, …, 1)`` for one value, else
    ``(R_1, …, R_{K−1}, 1)``; ``ValueError`` unless 1 or ``K − 1`` finite values > 0."""
    values = [ratio] if isinstance(ratio, (int, float, np.integer, np.floating)) else list(ratio)
    ok = values and len(values) in (1, num_tasks - 1) and all(
        isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
        and math.isfinite(v) and v > 0 for v in values)
    if not ok:
        raise ValueError(f"--open-loop-ratio must be 1 or K − 1 = {num_tasks - 1} finite "
                         f"numbers > 0, got {ratio!r}")
    g = np.ones(num_tasks)
    g[:len(values)] = values
    return g


class LoopVariant(LawMethod, WeightingMethod):
    """A registered method whose law is a :class:`LoopLaw` (subclass).

    Subclasses set :attr:`law_class` and :attr:`variant_options` (their own
    hyperparameters as options, mapped to law keywords by :meth:`law_kwargs`).
    """

    law_class: ClassVar[type[LoopLaw]] = LoopLaw
    variant_options: ClassVar[tuple[Option, ...]] = ()
    #: the floor fraction used when ``--floor-fraction`` is not given (``None``: ``λ_min``)
    default_floor_fraction: ClassVar[float | None] = None
    measures = "per-task gradient norms on the shared parameters"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.options = (*cls.variant_options, FLOOR_FRACTION, OPEN_LOOP_RATIO, REFRESH_EVERY,
                       SENSOR)

    @property
    def closed_loop(self) -> bool:  # type: ignore[override]
        return self.settings.get("open_loop_ratio") is None

    def law_kwargs(self) -> dict[str, Any]:
        """The variant's own hyperparameters from its options (none by default)."""
        return {}

    def floor(self) -> float:
        rho = self.settings.get("floor_fraction")
        if rho is None:
            rho = self.default_floor_fraction
        if rho is None:
            return float(self.controller["lambda_min"])
        rho = check_real(rho, "floor_fraction", low=0.0, high=1.0, flag="--floor-fraction")
        return rho / self.num_tasks

    @property
    def refresh_every(self) -> int:
        every = self.settings.get("refresh_every")
        return 1 if every is None else check_positive_int(every, "refresh_every")

    def law(self, steps_per_epoch: int | None = None) -> LoopLaw:
        c = self.controller
        # one law step per refresh: the pole per refresh is β^N (β itself for N = 1)
        beta = decimated_beta(c["beta"], self.refresh_every)
        return self.law_class(self.num_tasks, beta=beta, warmup=c["warmup"],
                              floor=self.floor(), **self.law_kwargs())

    @property
    def sensor(self) -> str:
        return check_sensor(self.settings.get("sensor"))

    def check(self) -> None:
        super().check()
        for name, given in (("--refresh-every", self.refresh_every > 1),
                            ("--sensor", self.sensor != "exact")):
            if given and not self.closed_loop:
                raise ValueError(f"{name} applies to the closed loop; an open-loop "
                                 "schedule (--open-loop-ratio) measures nothing")
        ratio = self.settings.get("open_loop_ratio")
        if ratio is not None:
            open_loop_reading(ratio, self.num_tasks)

    @classmethod
    def plan(cls, options: dict, *, seeds, index: int, reference_runs) -> tuple:
        options = dict(options)
        ratio = options.get("open_loop_ratio")
        if isinstance(ratio, (list, tuple)) and len(ratio) == 1:
            options["open_loop_ratio"] = ratio[0]  # one R: the cache key of a plain number
        return options, {}

    def trajectory(self, num_steps: int) -> np.ndarray | None:
        ratio = self.settings.get("open_loop_ratio")
        if ratio is None:
            return None
        g = np.tile(open_loop_reading(ratio, self.num_tasks), (num_steps, 1))
        return law_weights(self.law(), g, np.ones_like(g))

    def module(self, num_steps: int, *, steps_per_epoch: int | None = None):
        if self.closed_loop:
            kwargs = {k: self.controller[k] for k in ("beta", "warmup", "lambda_min")}
            return LawLoss(self.law(steps_per_epoch=steps_per_epoch),
                           refresh_every=self.refresh_every, sensor=self.sensor, **kwargs)
        return WeightingMethod.module(self, num_steps, steps_per_epoch=steps_per_epoch)

    def summary(self, source=None) -> dict:
        out = super().summary(source)
        out["open_loop_ratio"] = self.settings.get("open_loop_ratio")
        out["refresh_every"] = self.refresh_every
        out["sensor"] = self.sensor
        if source is not None:
            out["final_weights"] = source.table[-1].tolist()
        return out
