"""The interface every weighting method implements, the registry, and the sourced loss.

A method is one small class (one module each, see the package docstring): what
it measures, the options it takes, and two views of the same law — a numpy twin
for the analyses (:meth:`WeightingMethod.trajectory` for an open-loop method,
:meth:`WeightingMethod.controller` for GABA) and the torch module the training
loop calls (:meth:`WeightingMethod.module`). The training loop and ``compare``
only ever call :func:`get_method` and this interface.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from gaba_control.nn import GABALoss

__all__ = [
    "Option",
    "SourcedGABALoss",
    "WeightingMethod",
    "get_method",
    "method_names",
    "option_owners",
    "register",
]

_REGISTRY: dict[str, type[WeightingMethod]] = {}


@dataclass(frozen=True)
class Option:
    """One setting of a method, as a keyword and as a command-line flag.

    ``in_cache_key=False`` marks a path: the run is identified by what the
    path holds (the method's :meth:`WeightingMethod.plan` puts that in the key).
    ``default``: the value that means the same as not giving the option (a
    comparison's cache key leaves it out, so naming the default is the same run).
    """

    name: str
    help: str
    type: type = float
    nargs: str | None = None
    metavar: str | None = None
    in_cache_key: bool = True
    default: Any = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def _checked_controller(controller: Mapping[str, Any]) -> dict:
    """The loop constants every method is built with, validated once for all methods.

    Regression: ``fixed`` computed its default weights from an unchecked ``lambda_min``
    (``--lambda-min 1e308`` overflowed instead of being refused).
    """
    from gaba_control._validation import (
        check_beta,
        check_lambda_min,
        check_num_tasks,
        check_warmup,
    )

    out = dict(controller)
    k = out["num_tasks"] = check_num_tasks(out.get("num_tasks", 2))
    if "beta" in out:
        out["beta"] = check_beta(out["beta"])
    if "warmup" in out:
        out["warmup"] = check_warmup(out["warmup"])
    if "lambda_min" in out:
        out["lambda_min"] = check_lambda_min(out["lambda_min"], k)
    return out


class WeightingMethod:
    """Base class: a weighting method bound to a controller configuration and its options.

    Parameters
    ----------
    controller : mapping
        ``num_tasks``, ``beta``, ``warmup``, ``lambda_min``: GABA's settings. GABA
        runs alongside every method (its ``λ*`` is recorded), so they are always given.
    **options
        The method's :attr:`options` (``None`` means the default); an unknown
        name raises ``TypeError``, a bad value ``ValueError`` naming the flag.
    """

    #: registry name, the ``--method`` value
    name: ClassVar[str]
    #: one line for ``--help``
    description: ClassVar[str]
    #: what the method reads each step
    measures: ClassVar[str] = "nothing (open loop)"
    #: whether the applied weights depend on the measurements
    closed_loop: ClassVar[bool] = False
    options: ClassVar[tuple[Option, ...]] = ()
    #: the method as a control loop: sensor, reference, comparator, law, state
    loop: ClassVar[dict[str, str]] = {
        "sensor": "none", "reference": "none", "comparator": "none",
        "law": "a schedule fixed before the run", "state": "the step count"}
    #: a method whose runs this one is planned from (``compare`` runs those first)
    reference: ClassVar[str | None] = None

    def __init__(self, controller: Mapping[str, Any], **options):
        unknown = sorted(set(options) - {o.name for o in self.options})
        if unknown:
            raise TypeError(f"method {self.name!r} takes no option(s) {', '.join(unknown)}")
        self.controller = _checked_controller(controller)
        self.settings = {o.name: options.get(o.name) for o in self.options}
        self.check()

    @property
    def num_tasks(self) -> int:
        return int(self.controller["num_tasks"])

    def check(self) -> None:
        """Raise ``ValueError`` naming a bad option (called on construction)."""

    def trajectory(self, num_steps: int) -> np.ndarray | None:
        """The numpy twin of an open-loop method: the applied ``(num_steps, K)`` weights.

        ``None`` for a closed-loop method (its weights depend on the run).
        """
        return None

    def source(self, num_steps: int) -> Callable | None:
        """``(step, λ*) → weights`` for :class:`SourcedGABALoss`; ``None`` for closed loop."""
        table = self.trajectory(num_steps)
        return None if table is None else _Table(table)

    #: whether the module reads the same batch's losses after the optimizer step
    #: (:meth:`~gaba_control.weighting.LawLoss.post_step_losses`, e.g. FAMO)
    post_step: ClassVar[bool] = False

    def module(self, num_steps: int, *, steps_per_epoch: int | None = None) -> GABALoss:
        """The torch module the training loop calls every step.

        ``steps_per_epoch`` is given by the training loop (a per-epoch law, DWA, needs it).
        """
        source = self.source(num_steps)
        kwargs = {k: self.controller[k] for k in ("beta", "warmup", "lambda_min")}
        if source is None:
            return GABALoss(self.num_tasks, **kwargs)
        return SourcedGABALoss(self.num_tasks, source=source, **kwargs)

    def summary(self, source=None) -> dict:
        """What the applied weights were, for ``metrics.json``."""
        return {"method": self.name}

    @classmethod
    def plan(cls, options: dict, *, seeds, index: int, reference_runs: Mapping) -> tuple:
        """Options and cache-key entries of a ``compare`` job on ``seeds[index]``.

        ``reference_runs`` maps a seed to the run directory of :attr:`reference`
        on that seed (empty for a method without one). Returns
        ``(options, key_entries)``.
        """
        return dict(options), {}


def register(cls: type[WeightingMethod]) -> type[WeightingMethod]:
    """Class decorator: add ``cls`` to the registry under ``cls.name``."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"a weighting method named {cls.name!r} is already registered")
    _REGISTRY[cls.name] = cls
    return cls


def method_names() -> tuple[str, ...]:
    """Every registered method, in registration order."""
    return tuple(_REGISTRY)


def get_method(name: str) -> type[WeightingMethod]:
    """The class registered as ``name``; ``ValueError`` listing the choices otherwise."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"method must be one of {method_names()}, got {name!r}") from None


def option_owners() -> dict[str, tuple[Option, tuple[str, ...]]]:
    """Option name → (its spec, the methods that take it), over the registry."""
    owners: dict[str, tuple[Option, tuple[str, ...]]] = {}
    for cls in _REGISTRY.values():
        for option in cls.options:
            spec, names = owners.get(option.name, (option, ()))
            owners[option.name] = (spec, (*names, cls.name))
    return owners


def check_options_belong(method: str, options: Mapping[str, Any]) -> None:
    """``ValueError`` for a set option that ``method`` does not take (named as its flag)."""
    owners = option_owners()
    for name, value in options.items():
        if value is None:
            continue
        if name not in owners:
            raise TypeError(f"unknown method option {name!r}")
        spec, names = owners[name]
        if method not in names:
            raise ValueError(f"{spec.flag} applies to --method {' | '.join(names)} only, "
                             f"not {method!r}")


def finite_positive(value, name: str) -> float:
    """``value`` as a float, or ``ValueError`` naming ``name`` unless finite and > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
            or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


class _Table:
    """A source applying row ``step - 1`` of a precomputed ``(T, K)`` trajectory."""

    def __init__(self, table: np.ndarray):
        self.table = np.asarray(table, dtype=np.float64)

    def __call__(self, step: int, gaba_weights: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(self.table[step - 1], dtype=gaba_weights.dtype)


class _Constant:
    """A source applying the same weights at every step."""

    def __init__(self, weights: np.ndarray):
        self.weights = np.asarray(weights, dtype=np.float64)

    def __call__(self, step: int, gaba_weights: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(self.weights, dtype=gaba_weights.dtype)


class SourcedGABALoss(GABALoss):
    """A :class:`GABALoss` whose applied weights come from ``source``; GABA runs alongside.

    Each call asks ``source(step, λ*_previous)`` for the weights of the step
    about to be taken (``step`` counted from 1) and passes them to
    :meth:`GABALoss.forward` as its open-loop ``weights=`` override: the loop
    still measures the norms, advances its state and reports GABA's ``λ*`` in
    ``last_step``/``telemetry()``, while the loss and the delivered gradient
    use the source's weights (recorded as ``applied_weights`` there, and in
    :attr:`last_applied`).

    Parameters
    ----------
    source : callable
        ``(step: int, gaba_weights: Tensor (K,)) → weights (K,)`` on the
        simplex; ``gaba_weights`` is ``λ*`` before this step (the built-in
        sources only use its dtype).
    **gaba_kwargs
        Passed to :class:`~gaba_control.nn.GABALoss`.
    """

    def __init__(self, num_tasks: int = 2, *, source: Callable, **gaba_kwargs):
        super().__init__(num_tasks, **gaba_kwargs)
        self.source = source
        self.last_applied: torch.Tensor | None = None

    def forward(self, losses, params, shared_params, **kwargs) -> torch.Tensor:
        """As :meth:`GABALoss.forward`, with ``weights`` from the source (not an argument)."""
        if kwargs.get("weights") is not None:
            raise TypeError("SourcedGABALoss takes its weights from its source, not weights=")
        kwargs.pop("weights", None)
        applied = torch.as_tensor(
            self.source(int(self.step) + 1, self.last_weights),
            dtype=self.ema.dtype,
            device=self.ema.device,
        )
        self.last_applied = applied.clone()
        return super().forward(losses, params, shared_params, weights=applied, **kwargs)
