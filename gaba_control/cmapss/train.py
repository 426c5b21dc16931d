r"""Train the multi-task CNN on one C-MAPSS subset with GABA or an open-loop weighting.

``gaba-control train --method gaba --subset FD001 --seed 0 --out runs/fd001-gaba-0``

One code path serves every weighting method: the step is always
``loss = weighting(losses, model.parameters(), model.backbone.parameters())``
with ``weighting`` a :class:`~gaba_control.nn.GABALoss`, so the gradient
measurement (``K`` backward passes, exact per-task norms on the backbone),
the combination, the delivery through ``backward()`` and the telemetry are
identical, and so is the cost per step:

* ``gaba``: the plain :class:`~gaba_control.nn.GABALoss`; the applied weights
  are its output ``λ*``.
* ``equal``: :class:`SourcedGABALoss` with weights ``1/K``. The GABA loop
  still runs on the measured norms *alongside* (it never touches the
  update), so the trace holds the norms, and the ``λ*`` GABA would have
  applied, for an equally weighted training. The delivered gradient is
  ``Σ ∇L_i / K`` formed from the per-task gradients; it equals one backward
  of ``Σ L_i / K`` to float32 rounding.

* ``fixed``: constant weights ``--weights w_1 … w_K`` (non-negative, normalised
  to sum 1); default GABA's saturated output for ``K = 2``,
  ``floor_renormalise((0, 1), λ_min) = (λ_min, 1)/(1 + λ_min)``: the RUL task at
  the floor, as GABA holds it when ``g_RUL ≫ g_health``.
* ``schedule``: GABA's own pipeline (warmup, EMA, floor) fed a *constant*
  sensor reading ``g = (R, 1)`` instead of the measured norms: the open-loop
  trajectory :func:`schedule_weights`, computed before training with
  :meth:`~gaba_control.controller.GABAController.run`. ``R`` is
  ``--schedule-ratio``, else the median post-warmup ``g_RUL/g_health`` of
  ``--schedule-from TRACE``, else of the committed reference trace
  :data:`DEFAULT_SCHEDULE_TRACE` (FD001, GABA, seed 0, default settings).
* ``replay``: the ``λ*`` recorded in another run's trace (``--replay-trace``),
  applied step by step open loop (:func:`replay_weights`); the trace must have
  the same ``K`` and controller configuration and at least as many steps.
* ``gaba``: the closed loop.

Every method is one entry of :data:`WEIGHT_SOURCES`: a factory
``(config, num_steps) → source`` where a source maps ``(step, gaba_weights)`` to
the applied weights (``None`` for ``gaba``). The gradient norms are measured,
and GABA's ``λ*`` computed alongside, for every method.

Loss units
----------
RUL loss: MSE on the capped RUL divided by ``rul_scale`` (default 1: raw
cycles, as in the paper's setting, so ``L_RUL`` is of order 10³–10⁴ at the
start); the RUL head predicts ``RUL/rul_scale`` and the metrics are in
cycles. The recorded gradient norms, and so every gradient-ratio claim,
depend on this choice: at initialisation (predictions near 0) the residual,
and so ``g_RUL``, shrinks by about ``rul_scale``; for the same function later
in training by ``rul_scale²``. The scale is stored in ``metrics.json`` and in
the trace. Health loss: cross-entropy over the three states. Optimiser:
Adam, constant learning rate (recorded per step in the trace).

Outputs in ``--out``
--------------------
``checkpoint.pt`` (model, optimizer, GABALoss state, epoch, step, config; end
of every epoch, atomic), ``metrics.json`` (test RMSE and PHM08 score on the
last window of every test engine, health accuracy and macro-F1 on those
windows, validation RMSE per epoch, the same test metrics for the epoch with
the lowest validation RMSE, wall time, configuration, data summary,
``diverged``) and ``trace.npz`` (:mod:`gaba_control.trace`).

A non-finite task loss or gradient norm stops the run: that step is recorded
in the trace, no optimizer step is taken, ``metrics.json`` says
``"diverged": true`` with the step and reason, and the command exits with
status 3.

Determinism: ``torch.manual_seed(seed)`` for the initial weights, a
``numpy.random.default_rng(seed)`` for the batch order,
``torch.use_deterministic_algorithms(True)``; on CPU with the same thread
count a run repeats bit for bit. The validation engines are chosen by
``split_seed`` (default 0), independent of ``seed``, so seeds vary the
initialisation and batch order on a fixed split.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gaba_control._io import atomic_path, atomic_write_text
from gaba_control._validation import check_positive_int
from gaba_control.cmapss.data import SUBSETS, CMAPSSData, load_subset
from gaba_control.cmapss.metrics import health_accuracy, macro_f1, phm08_score, rmse
from gaba_control.cmapss.model import MultiTaskCNN
from gaba_control.formulas import floor_renormalise
from gaba_control.nn import GABALoss
from gaba_control.trace import TraceRecorder, package_versions

__all__ = [
    "DEFAULT_SCHEDULE_TRACE",
    "DIVERGED_EXIT_CODE",
    "METHODS",
    "TASK_NAMES",
    "WEIGHT_SOURCES",
    "SourcedGABALoss",
    "TrainConfig",
    "add_train_arguments",
    "evaluate",
    "fixed_weights",
    "make_weighting",
    "median_ratio",
    "replay_weights",
    "resolve_schedule_ratio",
    "run_from_args",
    "schedule_weights",
    "train",
    "weight_source",
]

TASK_NAMES = ("rul", "health")
DIVERGED_EXIT_CODE = 3
QUICK_EPOCHS = 2
QUICK_MAX_BATCHES = 30
QUICK_WARMUP = 10


#: The committed reference trace whose median post-warmup ratio is the default schedule.
DEFAULT_SCHEDULE_TRACE = Path(__file__).resolve().parents[2] / "results/traces/FD001-gaba-seed0.npz"


def _uniform(step: int, gaba_weights: torch.Tensor) -> torch.Tensor:
    return torch.full_like(gaba_weights, 1.0 / gaba_weights.shape[-1])


class _Constant:
    """A source applying the same weights at every step."""

    def __init__(self, weights: np.ndarray):
        self.weights = np.asarray(weights, dtype=np.float64)

    def __call__(self, step: int, gaba_weights: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(self.weights, dtype=gaba_weights.dtype)


class _Table:
    """A source applying row ``step - 1`` of a precomputed ``(T, K)`` trajectory."""

    def __init__(self, table: np.ndarray):
        self.table = np.asarray(table, dtype=np.float64)

    def __call__(self, step: int, gaba_weights: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(self.table[step - 1], dtype=gaba_weights.dtype)


def fixed_weights(values=None, *, num_tasks: int = 2, lambda_min: float = 0.05) -> np.ndarray:
    """The weights of the ``fixed`` method: ``values`` normalised to sum 1.

    ``values=None`` gives GABA's saturated output for ``K = 2``, the RUL task at
    the floor: ``floor_renormalise((0, 1), λ_min) = (λ_min, 1)/(1 + λ_min)``.

    Raises
    ------
    ValueError
        Not ``num_tasks`` values, a negative or non-finite value, all zero, or
        ``values=None`` with ``num_tasks != 2``.

    Examples
    --------
    >>> fixed_weights().round(6)
    array([0.047619, 0.952381])
    >>> fixed_weights([1, 3])
    array([0.25, 0.75])
    """
    if values is None:
        if num_tasks != 2:
            raise ValueError(
                f"fixed weights need --weights for num_tasks={num_tasks} (default is K=2)"
            )
        return np.asarray(floor_renormalise(np.array([0.0, 1.0]), lambda_min), dtype=np.float64)
    w = np.asarray(values, dtype=np.float64).reshape(-1)
    if w.shape[0] != num_tasks:
        raise ValueError(f"weights must have {num_tasks} values (one per task), got {w.shape[0]}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError(f"weights must be finite and >= 0, got {w.tolist()}")
    if w.sum() <= 0:
        raise ValueError(f"weights must not all be zero, got {w.tolist()}")
    return w / w.sum()


def schedule_weights(
    ratio: float,
    num_steps: int,
    *,
    num_tasks: int = 2,
    beta: float = 0.99,
    warmup: int = 100,
    lambda_min: float = 0.05,
) -> np.ndarray:
    """GABA's open-loop ``λ*`` ``(num_steps, K)`` for the constant reading ``g = (R, 1, …)``.

    The same controller (warmup, EMA, floor) as the closed loop, but its
    sensor sees a constant ratio ``R = g_1/g_k`` instead of the measured norms:
    a schedule that only depends on time.

    Examples
    --------
    >>> w = schedule_weights(1000.0, 400, warmup=100)
    >>> w[99].tolist(), bool(w[-1, 0] < w[150, 0] < 0.5)
    ([0.5, 0.5], True)
    """
    from gaba_control.controller import GABAController

    if not (math.isfinite(ratio) and ratio > 0):
        raise ValueError(f"schedule ratio must be a finite number > 0, got {ratio!r}")
    check_positive_int(num_steps, "num_steps")
    g = np.ones(num_tasks)
    g[0] = ratio
    controller = GABAController(num_tasks, beta=beta, warmup=warmup, lambda_min=lambda_min)
    return controller.run(np.tile(g, (num_steps, 1))).weights


def median_ratio(trace) -> float:
    """Median ``g_1/g_2`` over the post-warmup, valid steps of ``trace`` (a :class:`Trace`)."""
    g = np.asarray(trace.grad_norms, dtype=np.float64)
    keep = np.asarray(trace.active, bool) & np.asarray(trace.valid, bool) & (g[:, 1] > 0)
    if not keep.any():
        raise ValueError("trace has no valid post-warmup step to take a ratio from")
    return float(np.median(g[keep, 0] / g[keep, 1]))


def replay_weights(trace, num_steps: int, controller: dict) -> np.ndarray:
    """The first ``num_steps`` rows of ``trace.weights`` (``λ*``), checked against this run.

    Raises
    ------
    ValueError
        The trace's ``K``, length (fewer than ``num_steps`` steps), start step
        or controller configuration (``beta``, ``warmup``, ``lambda_min``) does
        not fit; the message names the mismatch.
    """
    if trace.num_tasks != controller["num_tasks"]:
        raise ValueError(
            f"replay trace has K={trace.num_tasks} tasks, this run has K={controller['num_tasks']}"
        )
    if len(trace) < num_steps:
        raise ValueError(
            f"replay trace has {len(trace)} steps, fewer than this run's {num_steps} steps"
        )
    if len(trace) and int(trace.step[0]) != 1:
        raise ValueError(f"replay trace must start at step 1, starts at {int(trace.step[0])}")
    for key in ("beta", "warmup", "lambda_min"):
        recorded, ours = trace.controller.get(key), controller[key]
        if recorded is None or not math.isclose(float(recorded), float(ours), rel_tol=0, abs_tol=0):
            raise ValueError(
                f"replay trace controller configuration does not fit: {key}={recorded!r} in the "
                f"trace, {key}={ours!r} in this run"
            )
    return np.asarray(trace.weights[:num_steps], dtype=np.float64)


def _controller(config) -> dict:
    return {
        "num_tasks": len(TASK_NAMES),
        "beta": config.beta,
        "warmup": config.warmup,
        "lambda_min": config.lambda_min,
    }


def resolve_schedule_ratio(config) -> tuple[float, str]:
    """The ``schedule`` ratio ``R`` of ``config`` and where it came from."""
    from gaba_control.trace import load_trace

    if config.schedule_ratio is not None:
        return float(config.schedule_ratio), "--schedule-ratio"
    path = Path(config.schedule_from) if config.schedule_from else DEFAULT_SCHEDULE_TRACE
    if not path.is_file():
        raise ValueError(
            f"schedule needs --schedule-ratio or --schedule-from TRACE; the default reference "
            f"trace {path} does not exist"
        )
    return median_ratio(load_trace(path)), f"median post-warmup ratio of {path}"


def _gaba_source(config, num_steps):
    return None


def _equal_source(config, num_steps):
    return _uniform


def _fixed_source(config, num_steps):
    return _Constant(
        fixed_weights(config.weights, num_tasks=len(TASK_NAMES), lambda_min=config.lambda_min)
    )


def _schedule_source(config, num_steps):
    ratio, _ = resolve_schedule_ratio(config)
    return _Table(schedule_weights(ratio, num_steps, **_controller(config)))


def _replay_source(config, num_steps):
    from gaba_control.trace import load_trace

    if not config.replay_trace:
        raise ValueError("method 'replay' needs --replay-trace PATH")
    trace = load_trace(config.replay_trace)
    return _Table(replay_weights(trace, num_steps, _controller(config)))


#: method name → factory ``(config, num_steps) → source``; a source maps
#: ``(step, gaba_weights)`` to the applied weights, ``None`` means GABA itself.
WEIGHT_SOURCES: dict[str, Callable] = {
    "gaba": _gaba_source,
    "equal": _equal_source,
    "fixed": _fixed_source,
    "schedule": _schedule_source,
    "replay": _replay_source,
}
METHODS = tuple(WEIGHT_SOURCES)
#: the option that belongs to each parameterised method
_METHOD_OPTIONS = {
    "weights": "fixed",
    "schedule_ratio": "schedule",
    "schedule_from": "schedule",
    "replay_trace": "replay",
}


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


def make_weighting(
    method: str,
    *,
    source: Callable | None = None,
    num_tasks: int = 2,
    beta: float = 0.99,
    warmup: int = 100,
    lambda_min: float = 0.05,
) -> GABALoss:
    """The loss module for ``method`` (a key of :data:`WEIGHT_SOURCES`).

    ``gaba``: a plain :class:`GABALoss`. Otherwise a :class:`SourcedGABALoss`
    applying ``source`` (default for ``equal``: ``1/K``; the parameterised
    methods need it, see :func:`weight_source`).
    """
    if method not in WEIGHT_SOURCES:
        raise ValueError(f"method must be one of {tuple(WEIGHT_SOURCES)}, got {method!r}")
    kwargs = dict(beta=beta, warmup=warmup, lambda_min=lambda_min)
    if method == "gaba":
        return GABALoss(num_tasks, **kwargs)
    if source is None:
        if method != "equal":
            raise ValueError(f"method {method!r} needs a weight source (see weight_source)")
        source = _uniform
    return SourcedGABALoss(num_tasks, source=source, **kwargs)


def weight_source(config, num_steps: int) -> Callable | None:
    """The weight source of ``config.method`` for a run of ``num_steps`` steps."""
    return WEIGHT_SOURCES[config.method](config, num_steps)


# --------------------------------------------------------------------- configuration
@dataclass
class TrainConfig:
    """Everything that defines a run (stored in ``metrics.json`` and the trace)."""

    method: str = "gaba"
    subset: str = "FD001"
    seed: int = 0
    epochs: int = 30
    batch_size: int = 256
    lr: float = 1e-3
    out: str = "runs/train"
    data_dir: str | None = None
    quick: bool = False
    beta: float = 0.99
    warmup: int = 100
    lambda_min: float = 0.05
    rul_scale: float = 1.0
    split_seed: int = 0
    max_batches: int | None = None
    threads: int | None = None
    progress: bool = True
    window: int = 30
    rul_cap: float = 125.0
    health_thresholds: tuple[float, float] = (30.0, 100.0)
    weights: tuple[float, ...] | None = None
    schedule_ratio: float | None = None
    schedule_from: str | None = None
    replay_trace: str | None = None

    def resolved(self) -> TrainConfig:
        """Apply ``quick``: at most 2 epochs of 30 batches (the CLI also shortens warmup)."""
        config = copy.deepcopy(self)
        if config.quick:
            config.epochs = min(config.epochs, QUICK_EPOCHS)
            config.max_batches = config.max_batches or QUICK_MAX_BATCHES
        return config


# ------------------------------------------------------------------------ evaluation
@torch.no_grad()
def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    rul_true: torch.Tensor,
    health_true: torch.Tensor,
    *,
    rul_scale: float = 1.0,
    batch_size: int = 2048,
) -> dict:
    """RMSE, PHM08 score (RUL in cycles), health accuracy and macro-F1 of ``model`` on ``x``."""
    if x.shape[0] == 0:
        return {}
    was_training = model.training
    model.eval()
    rul_parts, health_parts = [], []
    for start in range(0, x.shape[0], batch_size):
        rul, logits = model(x[start : start + batch_size])
        rul_parts.append(rul * rul_scale)
        health_parts.append(logits.argmax(dim=-1))
    model.train(was_training)
    rul_pred = torch.cat(rul_parts).double().numpy()
    health_pred = torch.cat(health_parts).numpy()
    if not np.all(np.isfinite(rul_pred)):
        return {"rmse": None, "phm08_score": None, "health_accuracy": None, "macro_f1": None}
    return {
        "rmse": rmse(rul_pred, rul_true),
        "phm08_score": phm08_score(rul_pred, rul_true),
        "health_accuracy": health_accuracy(health_pred, health_true),
        "macro_f1": macro_f1(health_pred, health_true),
    }


# -------------------------------------------------------------------------- training
def _atomic_torch_save(obj, path: Path) -> None:
    with atomic_path(path) as temporary:
        torch.save(obj, temporary)


def _atomic_json(obj, path: Path) -> None:
    """``obj`` as JSON (non-finite floats written as ``null``), atomically."""
    text = json.dumps(_finite_or_none(obj), indent=2, sort_keys=True, allow_nan=False)
    atomic_write_text(path, text + "\n")


def _finite_or_none(obj):
    if isinstance(obj, dict):
        return {str(k): _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_or_none(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def _json_floats(values) -> list:
    """Floats for JSON, with non-finite values spelled ``"nan"``/``"inf"``/``"-inf"``."""
    return [float(v) if math.isfinite(v) else str(float(v)) for v in np.asarray(values).tolist()]


def _progress(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        disable=not (enabled and sys.stderr.isatty()),
        unit="step",
        leave=False,
        file=sys.stderr,
    )


def _seed_everything(seed: int) -> np.random.Generator:
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def _step_losses(model, x, rul, health, rul_scale):
    rul_pred, logits = model(x)
    l_rul = nn.functional.mse_loss(rul_pred, rul / rul_scale)
    l_health = nn.functional.cross_entropy(logits, health)
    return [l_rul, l_health]


def _checked(config: TrainConfig) -> TrainConfig:
    """Raise ``ValueError``/``TypeError`` naming a bad setting before any work is done."""
    if config.method not in WEIGHT_SOURCES:
        raise ValueError(f"method must be one of {tuple(WEIGHT_SOURCES)}, got {config.method!r}")
    for name in ("epochs", "batch_size"):
        check_positive_int(getattr(config, name), name)
    for name in ("max_batches", "threads"):
        if getattr(config, name) is not None:
            check_positive_int(getattr(config, name), name)
    for name in ("lr", "rul_scale"):
        value = getattr(config, name)
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    for name, method in _METHOD_OPTIONS.items():
        if getattr(config, name) is not None and config.method != method:
            option = "--" + name.replace("_", "-")
            raise ValueError(f"{option} applies to --method {method} only, not {config.method!r}")
    if config.method == "fixed":
        fixed_weights(config.weights, num_tasks=len(TASK_NAMES), lambda_min=config.lambda_min)
    if config.method == "schedule" and config.schedule_ratio is not None:
        if not (math.isfinite(config.schedule_ratio) and config.schedule_ratio > 0):
            raise ValueError(
                f"schedule_ratio must be a finite number > 0, got {config.schedule_ratio!r}"
            )
    return config


@contextlib.contextmanager
def _torch_settings(threads: int | None):
    """Thread count and deterministic algorithms for the run; restored afterwards."""
    previous_threads = torch.get_num_threads()
    previous_deterministic = torch.are_deterministic_algorithms_enabled()
    previous_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(True, warn_only=True)
        yield
    finally:
        torch.set_num_threads(previous_threads)
        torch.use_deterministic_algorithms(previous_deterministic, warn_only=previous_warn)


def train(config: TrainConfig, data: CMAPSSData | None = None) -> dict:
    """Train one model; write checkpoint, ``metrics.json`` and ``trace.npz``; return the metrics.

    ``data`` (optional) replaces loading ``config.subset``; the thread count and
    deterministic-algorithm setting are restored on return.
    """
    config = _checked(config.resolved())
    with _torch_settings(config.threads):
        return _train(config, data)


def _train(config: TrainConfig, data: CMAPSSData | None) -> dict:
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if data is None:
        data = load_subset(
            config.subset,
            config.data_dir,
            window=config.window,
            rul_cap=config.rul_cap,
            health_thresholds=config.health_thresholds,
            seed=config.split_seed,
        )
    rng = _seed_everything(config.seed)
    model = MultiTaskCNN(data.num_channels, data.window)
    n_train = data.x_train.shape[0]
    batches_per_epoch = math.ceil(n_train / config.batch_size)
    if config.max_batches is not None:
        batches_per_epoch = min(batches_per_epoch, config.max_batches)
    source = weight_source(config, config.epochs * batches_per_epoch)
    weighting = make_weighting(
        config.method,
        source=source,
        beta=config.beta,
        warmup=config.warmup,
        lambda_min=config.lambda_min,
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    recorder = TraceRecorder(len(TASK_NAMES))
    source_summary = _source_summary(config, source)
    history: list[dict] = []
    best = {"val_rmse": math.inf, "epoch": None, "state": None}
    diverged = None
    step = 0
    bar = _progress(config.epochs * batches_per_epoch, config.progress)
    for epoch in range(config.epochs):
        order = torch.from_numpy(rng.permutation(n_train))
        for b in range(batches_per_epoch):
            index = order[b * config.batch_size : (b + 1) * config.batch_size]
            losses = _step_losses(
                model,
                data.x_train[index],
                data.rul_train[index],
                data.health_train[index],
                config.rul_scale,
            )
            loss = weighting(losses, model.parameters(), model.backbone.parameters())
            step += 1
            telemetry = weighting.telemetry()
            recorder.record(
                step=telemetry["step"],
                epoch=epoch,
                grad_norms=telemetry["norms"],
                shares=telemetry["shares"],
                raw=telemetry["raw"],
                ema=telemetry["ema"],
                weights=telemetry["weights"],
                applied_weights=telemetry["applied_weights"],
                losses=telemetry["losses"],
                lr=optimizer.param_groups[0]["lr"],
                active=telemetry["active"],
                valid=telemetry["valid"],
            )
            finite = np.all(np.isfinite(telemetry["losses"])) and np.all(
                np.isfinite(telemetry["norms"])
            )
            if not finite:
                diverged = {
                    "step": step,
                    "epoch": epoch,
                    "losses": _json_floats(telemetry["losses"]),
                    "grad_norms": _json_floats(telemetry["norms"]),
                    "reason": "non-finite task loss or gradient norm",
                }
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            bar.update(1)
            if step % 10 == 0:
                bar.set_postfix(
                    l_rul=f"{telemetry['losses'][0]:.3g}",
                    l_health=f"{telemetry['losses'][1]:.3g}",
                    lam_rul=f"{telemetry['weights'][0]:.3f}",
                )
        if diverged:
            break
        val = evaluate(model, data.x_val, data.rul_val, data.health_val, rul_scale=config.rul_scale)
        history.append({"epoch": epoch, "step": step, **{f"val_{k}": v for k, v in val.items()}})
        val_rmse = val.get("rmse")
        if val_rmse is not None and val_rmse < best["val_rmse"]:
            best = {
                "val_rmse": val_rmse,
                "epoch": epoch,
                "state": copy.deepcopy(model.state_dict()),
            }
        _atomic_torch_save(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "gaba": weighting.state_dict(),
                "epoch": epoch,
                "step": step,
                "config": asdict(config),
            },
            out / "checkpoint.pt",
        )
    bar.close()

    metrics = _final_metrics(model, data, config, history, best, diverged)
    metrics["wall_time_s"] = time.perf_counter() - started
    metrics["num_steps"] = step
    metrics["torch_threads"] = torch.get_num_threads()  # the thread count of this run
    metrics["weight_source"] = source_summary
    trace = recorder.to_trace(
        controller={
            "num_tasks": weighting.num_tasks,
            "beta": weighting.beta,
            "warmup": weighting.warmup,
            "lambda_min": weighting.lambda_min,
        },
        method=config.method,
        subset=data.subset,
        seed=config.seed,
        task_names=TASK_NAMES,
        config=_finite_or_none({**asdict(config), "rul_loss_units": _rul_units(config)}),
        versions=package_versions(),
    )
    trace.save(out / "trace.npz")
    _atomic_json(metrics, out / "metrics.json")
    return metrics


def _source_summary(config: TrainConfig, source) -> dict:
    """What the applied weights were, for ``metrics.json``."""
    summary: dict = {"method": config.method}
    if config.method == "fixed":
        summary["weights"] = source.weights.tolist()
    elif config.method == "schedule":
        summary["ratio"], summary["ratio_from"] = resolve_schedule_ratio(config)
        summary["final_weights"] = source.table[-1].tolist()
    elif config.method == "replay":
        summary["replay_trace"] = str(config.replay_trace)
    return summary


def _rul_units(config: TrainConfig) -> str:
    return "cycles" if config.rul_scale == 1.0 else f"cycles/{config.rul_scale:g}"


def _final_metrics(model, data, config, history, best, diverged) -> dict:
    metrics = {
        "method": config.method,
        "subset": data.subset,
        "seed": config.seed,
        "status": "ok" if diverged is None else "diverged",
        "diverged": diverged is not None,
        "divergence": diverged,
        "rul_loss_units": _rul_units(config),
        "config": asdict(config),
        "data": data.summary(),
        "history": history,
        "versions": package_versions(),
    }
    if diverged is None:
        test = evaluate(
            model, data.x_test, data.rul_test, data.health_test, rul_scale=config.rul_scale
        )
        metrics.update({f"test_{k}": v for k, v in test.items()})
        uncapped = evaluate(
            model, data.x_test, data.rul_test_uncapped, data.health_test, rul_scale=config.rul_scale
        )
        metrics["test_rmse_uncapped"] = uncapped.get("rmse")
        metrics["test_phm08_score_uncapped"] = uncapped.get("phm08_score")
        metrics["val_rmse"] = history[-1].get("val_rmse") if history else None
    else:
        for key in (
            "test_rmse",
            "test_phm08_score",
            "test_health_accuracy",
            "test_macro_f1",
            "val_rmse",
        ):
            metrics[key] = None
    if best["state"] is not None:
        selected = copy.deepcopy(model)
        selected.load_state_dict(best["state"])
        test = evaluate(
            selected, data.x_test, data.rul_test, data.health_test, rul_scale=config.rul_scale
        )
        metrics["best_val"] = {
            "epoch": best["epoch"],
            "val_rmse": best["val_rmse"],
            **{f"test_{k}": v for k, v in test.items()},
        }
    return metrics


# ------------------------------------------------------------------------------- CLI
def add_train_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``train`` options to ``parser``."""
    defaults = TrainConfig()
    parser.add_argument(
        "--method",
        choices=METHODS,
        default=defaults.method,
        help="loss weighting (default %(default)s): gaba = closed loop; equal = 1/K; "
        "fixed = --weights; schedule = GABA fed a constant ratio (open loop); "
        "replay = the λ* of --replay-trace",
    )
    parser.add_argument(
        "--weights",
        type=float,
        nargs="+",
        default=None,
        metavar="W",
        help="fixed: one weight per task (rul health), >= 0, normalised to sum 1 "
        "(default: GABA's saturated output (λ_min, 1)/(1 + λ_min))",
    )
    parser.add_argument(
        "--schedule-ratio",
        type=float,
        default=None,
        metavar="R",
        help="schedule: the constant sensor reading g = (R, 1)",
    )
    parser.add_argument(
        "--schedule-from",
        default=None,
        metavar="TRACE",
        help="schedule: R = median post-warmup g_rul/g_health of this trace "
        "(default: the committed results/traces/FD001-gaba-seed0.npz)",
    )
    parser.add_argument(
        "--replay-trace",
        default=None,
        metavar="TRACE",
        help="replay: apply this trace's λ* step by step (same K, controller settings, "
        ">= as many steps)",
    )
    parser.add_argument(
        "--subset",
        choices=SUBSETS,
        default=defaults.subset,
        type=str.upper,
        help="C-MAPSS subset (default %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=defaults.seed,
        help="seed of the initial weights and batch order (default %(default)s)",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=defaults.epochs,
        help=f"training epochs (default %(default)s; --quick: at most {QUICK_EPOCHS})",
    )
    parser.add_argument(
        "--batch-size", type=int, default=defaults.batch_size, help="default %(default)s"
    )
    parser.add_argument(
        "--lr", type=float, default=defaults.lr, help="Adam learning rate (default %(default)s)"
    )
    parser.add_argument(
        "--out", default=defaults.out, help="output directory (default %(default)s)"
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        help="C-MAPSS directory (default: $GABA_CMAPSS_DIR if set, else the first of "
        "<repo>/../shared/data/cmapss and ../shared/data/cmapss from the working directory)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: {QUICK_EPOCHS} epochs of {QUICK_MAX_BATCHES} batches, "
        f"warmup {QUICK_WARMUP} unless --warmup is given",
    )
    parser.add_argument(
        "--beta",
        type=float,
        default=defaults.beta,
        help="GABA EMA coefficient (default %(default)s)",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=None,
        help=f"GABA warmup steps (default {defaults.warmup}; {QUICK_WARMUP} with --quick)",
    )
    parser.add_argument(
        "--lambda-min",
        type=float,
        default=defaults.lambda_min,
        help="GABA weight floor (default %(default)s)",
    )
    parser.add_argument(
        "--rul-scale",
        type=float,
        default=defaults.rul_scale,
        help="RUL loss on RUL/scale (default 1: MSE in cycles²)",
    )
    parser.add_argument(
        "--split-seed",
        type=int,
        default=defaults.split_seed,
        help="seed of the validation-engine split (default %(default)s)",
    )
    parser.add_argument("--max-batches", type=int, default=None, help="batches per epoch cap")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """A :class:`TrainConfig` from parsed ``train`` arguments."""
    warmup = args.warmup
    if warmup is None:
        warmup = QUICK_WARMUP if args.quick else TrainConfig.warmup
    return TrainConfig(
        method=args.method,
        subset=args.subset,
        seed=args.seed,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        out=args.out,
        data_dir=args.data_dir,
        quick=args.quick,
        beta=args.beta,
        warmup=warmup,
        lambda_min=args.lambda_min,
        rul_scale=args.rul_scale,
        split_seed=args.split_seed,
        max_batches=args.max_batches,
        threads=args.threads,
        progress=not args.no_progress,
        weights=None if args.weights is None else tuple(args.weights),
        schedule_ratio=args.schedule_ratio,
        schedule_from=args.schedule_from,
        replay_trace=args.replay_trace,
    )


def run_from_args(args: argparse.Namespace) -> int:
    """Run ``train`` from parsed arguments; print a summary; return the exit status."""
    try:
        metrics = train(config_from_args(args))
    except FileNotFoundError as error:  # missing data: a message, not a traceback
        print(f"gaba-control train: {error}", file=sys.stderr)
        return 1
    except ValueError as error:  # a setting that does not fit (weights, replay trace, ...)
        print(f"gaba-control train: {error}", file=sys.stderr)
        return 2
    keys = (
        "test_rmse",
        "test_phm08_score",
        "test_health_accuracy",
        "test_macro_f1",
        "val_rmse",
        "wall_time_s",
    )
    summary = {k: metrics.get(k) for k in keys}
    print(json.dumps({"out": args.out, "diverged": metrics["diverged"], **summary}))
    if metrics["diverged"]:
        print(
            f"run diverged: {metrics['divergence']['reason']} at step "
            f"{metrics['divergence']['step']}",
            file=sys.stderr,
        )
        return DIVERGED_EXIT_CODE
    return 0
