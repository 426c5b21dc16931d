"""GABA: the closed loop (sensor → comparator → P-law → EMA → floor, behind a warmup gate)."""

from __future__ import annotations

from typing import ClassVar

from gaba_control._validation import check_positive_int
from gaba_control.controller import GABAController
from gaba_control.nn import GABALoss
from gaba_control.nn.gaba_loss import SENSORS

from ._base import Option, WeightingMethod, register

__all__ = ["GABA", "REFRESH_EVERY", "SENSOR", "check_sensor"]

#: ``--refresh-every N``: GABA and its loop variants measure every ``N`` steps
REFRESH_EVERY = Option("refresh_every", "gaba and the loop variants: measure the norms every N "
                       "steps and hold the weights between measurements (default 1: every "
                       "step)", type=int)
#: ``--sensor NAME``: where GABA and its loop variants read the per-task gradient norms
SENSOR = Option("sensor", "gaba and the loop variants: where the per-task gradient norms "
                f"are read, one of {', '.join(SENSORS)} (default exact: every shared "
                "parameter; last_layer and representation are cheaper, biased "
                "approximations, see GABALoss)", type=str, metavar="NAME", default="exact")


def check_sensor(value) -> str:
    """The sensor named by ``value`` (``None`` is ``"exact"``); ``ValueError`` otherwise."""
    if value is None:
        return SENSOR.default
    if not isinstance(value, str) or value not in SENSORS:
        raise ValueError(f"--sensor must be one of {SENSORS}, got {value!r}")
    return value


@register
class GABA(WeightingMethod):
    """The closed loop: applied weights are GABA's ``λ*`` from the measured norms.

    Numpy twin :meth:`controller` (:class:`~gaba_control.controller.GABAController`),
    torch module :class:`~gaba_control.nn.GABALoss`; both evaluate the formulas
    of :mod:`gaba_control.formulas`.
    """

    name = "gaba"
    description = "closed loop: λ* from the per-task gradient norms"
    measures = "per-task gradient norms on the shared parameters"
    closed_loop = True
    loop: ClassVar[dict[str, str]] = {"sensor": "g_i on the shared parameters → shares s = g/Σg",
            "reference": "1/K (equal shares)", "comparator": "e = 1/K − s",
            "law": "proportional: λ = 1/K + e/(K−1), then EMA (β) and floor (λ_min)",
            "state": "the EMA (K numbers), the warmup count"}
    options = (REFRESH_EVERY, SENSOR)

    def check(self) -> None:
        every = self.settings["refresh_every"]
        self.refresh_every = 1 if every is None else check_positive_int(every, "refresh_every")
        self.sensor = check_sensor(self.settings["sensor"])

    def module(self, num_steps: int, *, steps_per_epoch: int | None = None) -> GABALoss:
        kwargs = {k: self.controller[k] for k in ("beta", "warmup", "lambda_min")}
        return GABALoss(self.num_tasks, refresh_every=self.refresh_every, sensor=self.sensor,
                        **kwargs)

    def summary(self, source=None) -> dict:
        return {"method": self.name, "refresh_every": self.refresh_every, "sensor": self.sensor}

    def controller_twin(self) -> GABAController:
        """The numpy loop with this configuration."""
        c = self.controller
        return GABAController(self.num_tasks, beta=c["beta"], warmup=c["warmup"],
                              lambda_min=c["lambda_min"])
