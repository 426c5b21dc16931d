"""Open-loop excitations for identifying the plant: an operating point plus a designed perturbation.

``λ_1(t) = λ₀ · (1 + ρ · p(t))`` for the first task (RUL on C-MAPSS) and
``(1 − λ_1(t))/(K − 1)`` for each other (after ``hold`` steps at ``1/K``, the
open-loop twin of GABA's warmup), with ``p`` a PRBS
(:func:`gaba_control.plant.excitation.prbs`) or a multisine
(:func:`gaba_control.plant.excitation.multisine`), ``|p| ≤ 1``. The amplitude
is relative (``ρ``), so the perturbation is the same in ``log λ_1`` at every
small operating point. The exact sensor still measures every step and GABA
runs alongside: the trace holds the input (``applied_weights``) and the
output (the gradient norms) of the plant.
"""

from __future__ import annotations

import math
import numbers
from typing import ClassVar

import numpy as np

from gaba_control.plant.excitation import multisine, prbs

from ._base import Option, WeightingMethod, register

__all__ = ["PRBS", "Multisine", "excitation_weights"]


def excitation_weights(perturbation, operating_point: float, amplitude: float,
                       num_tasks: int = 2) -> np.ndarray:
    """``(T, K)`` weights: task 1 at ``λ₀(1 + ρ p)``, the others sharing the rest equally.

    Examples
    --------
    >>> excitation_weights([1.0, -1.0], 0.2, 0.5).tolist()
    [[0.30000000000000004, 0.7], [0.1, 0.9]]
    """
    p = np.asarray(perturbation, dtype=np.float64).reshape(-1)
    first = operating_point * (1.0 + amplitude * p)
    rest = np.repeat(((1.0 - first) / (num_tasks - 1))[:, None], num_tasks - 1, axis=1)
    return np.column_stack([first, rest])


class _Excitation(WeightingMethod):
    description = ""
    _common = (
        Option("operating_point", "excitation: λ₀ of the first (RUL) task, in (0, 1) "
               "(default 0.2)", metavar="LAMBDA0"),
        Option("amplitude", "excitation: relative amplitude ρ in (0, 1), λ_1 = λ₀(1 + ρ p) "
               "(default 0.4)", metavar="RHO"),
        Option("hold", "excitation: steps at 1/K before the excitation starts, as GABA's "
               "warmup (default 0)", type=int, metavar="STEPS"),
    )
    defaults: ClassVar[dict] = {"operating_point": 0.2, "amplitude": 0.4, "hold": 0}

    def value(self, name: str):
        value = self.settings[name]
        return self.defaults[name] if value is None else value

    def check(self) -> None:
        lam0, rho = self.value("operating_point"), self.value("amplitude")
        for name, value in (("operating_point", lam0), ("amplitude", rho)):
            if not (isinstance(value, numbers.Real) and math.isfinite(value) and 0 < value < 1):
                raise ValueError(f"{name} must lie in (0, 1), got {value!r}")
        if lam0 * (1 + rho) >= 1:
            raise ValueError(f"operating_point·(1 + amplitude) must be < 1 (a weight above 1), "
                             f"got {lam0}·(1 + {rho}) = {lam0 * (1 + rho):g}")
        for option in self.options:
            value = self.settings[option.name]
            low = 0 if option.name in ("excitation_seed", "hold") else 1
            if option.type is int and value is not None and (
                    not isinstance(value, numbers.Integral) or value < low):
                raise ValueError(f"{option.name} must be an int >= {low}, got {value!r}")

    def perturbation(self, num_steps: int) -> np.ndarray:
        raise NotImplementedError

    def trajectory(self, num_steps: int) -> np.ndarray:
        hold = min(self.value("hold"), num_steps)
        held = np.full((hold, self.num_tasks), 1.0 / self.num_tasks)
        if hold == num_steps:  # a run that ends inside its hold: never excited (not an error)
            return held
        excited = excitation_weights(self.perturbation(num_steps - hold),
                                     self.value("operating_point"), self.value("amplitude"),
                                     self.num_tasks)
        return np.vstack([held, excited])

    def summary(self, source=None) -> dict:
        return {"method": self.name, **{o.name: self.value(o.name) for o in self.options}}


@register
class PRBS(_Excitation):
    """A ±1 maximum-length sequence held ``--clock`` steps per value around ``λ₀``."""

    name = "prbs"
    description = "excitation: λ₀(1 + ρ·PRBS) on the first task (plant identification)"
    options = (
        *_Excitation._common,
        Option("clock", "prbs: steps per binary value (default 20)", type=int),
        Option("excitation_seed", "prbs: start state of the sequence (default 0)", type=int),
    )
    defaults: ClassVar[dict] = {**_Excitation.defaults, "clock": 20, "excitation_seed": 0}

    def check(self) -> None:
        super().check()
        # validates both (a clock beyond its range, e.g. 10^21, crashed each run after planning)
        prbs(1, self.value("clock"), self.value("excitation_seed"))

    def perturbation(self, num_steps: int) -> np.ndarray:
        return prbs(num_steps, self.value("clock"), self.value("excitation_seed"))


@register
class Multisine(_Excitation):
    """A Schroeder multisine of period ``--period`` on harmonics ``1 … --harmonics``."""

    name = "multisine"
    description = "excitation: λ₀(1 + ρ·multisine) on the first task (plant identification)"
    options = (
        *_Excitation._common,
        Option("period", "multisine: period N in steps (default 512)", type=int),
        Option("harmonics", "multisine: harmonics 1..M of 2π/N (default 8)", type=int),
    )
    defaults: ClassVar[dict] = {**_Excitation.defaults, "period": 512, "harmonics": 8}

    def check(self) -> None:
        super().check()
        multisine(1, self.value("period"), self.value("harmonics"))  # validates both

    def perturbation(self, num_steps: int) -> np.ndarray:
        return multisine(num_steps, self.value("period"), self.value("harmonics"))
