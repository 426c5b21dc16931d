r"""Train the multi-task CNN on one C-MAPSS subset with GABA or an open-loop weighting.

``gaba-control train --method gaba --subset FD001 --seed 0 --out runs/fd001-gaba-0``

One code path serves every weighting method: the step is always
``loss = weighting(losses, model.parameters(), model.backbone.parameters())``
with ``weighting`` the torch module of the registered method
(:mod:`gaba_control.weighting`; ``--method NAME`` looks it up, the loop knows no
method by name). Every module is a :class:`~gaba_control.nn.GABALoss`, so the
gradient measurement (``K`` backward passes, exact per-task norms on the
backbone), the combination, the delivery through ``backward()`` and the
telemetry are identical, and so is the cost per step: an open-loop method
passes its weights as the ``weights=`` override, while GABA runs alongside on
the measured norms, so the trace holds the norms and the ``λ*`` GABA would have
applied for every method. ``gaba-control train --help`` lists the methods and
their options (``--weights`` for ``fixed``, ``--schedule-ratio`` /
``--schedule-from`` for ``schedule``, ``--replay-trace`` for ``replay``,
``--operating-point`` / ``--amplitude`` / … for the excitations).
``--sensor last_layer|representation`` (``gaba`` and the loop variants) reads
the norms on the backbone's last layer or on its output instead of on every
shared parameter; the loop hands the module what its ``sensor`` differentiates
with respect to (the only sensor-specific code here).

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
``checkpoint.pt`` (model, optimizer, weighting state, RNG states, the trace and
validation history so far, epoch, step, config; end of every epoch, atomic and
fsynced: ``--resume`` continues from it, bit-identically to a run that was
never interrupted; a run killed mid-epoch repeats that epoch),
``metrics.json`` (test RMSE and PHM08 score on the last window of every test
engine, health accuracy and macro-F1 on those windows, validation RMSE per
epoch, the same test metrics for the epoch with the lowest validation RMSE,
wall time, configuration, data summary,
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
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gaba_control._io import atomic_path, atomic_write_text, output_directory
from gaba_control._validation import check_positive_int
from gaba_control.cmapss.data import SUBSETS, CMAPSSData, load_subset
from gaba_control.cmapss.metrics import health_accuracy, macro_f1, phm08_score, rmse
from gaba_control.cmapss.model import MultiTaskCNN
from gaba_control.nn import GABALoss
from gaba_control.trace import TraceRecorder, package_versions
from gaba_control.weighting import (
    WeightingMethod,
    check_options_belong,
    get_method,
    method_names,
    option_owners,
)

__all__ = [
    "AUX_TASKS",
    "DIVERGED_EXIT_CODE",
    "TASK_NAMES",
    "TrainConfig",
    "add_train_arguments",
    "evaluate",
    "make_weighting",
    "run_from_args",
    "task_names",
    "train",
    "weighting_method",
]

TASK_NAMES = ("rul", "health")
#: auxiliary tasks a run may add as its third task (``--aux-task``)
AUX_TASKS = ("next_cycle",)
DIVERGED_EXIT_CODE = 3
QUICK_EPOCHS = 2
QUICK_MAX_BATCHES = 30
QUICK_WARMUP = 10


def task_names(config) -> tuple[str, ...]:
    """The run's tasks: RUL and health, then the auxiliary task if ``config.aux_task`` is set."""
    aux = getattr(config, "aux_task", None)
    return TASK_NAMES if aux is None else (*TASK_NAMES, aux)


def _controller(config) -> dict:
    return {
        "num_tasks": len(task_names(config)),
        "beta": config.beta,
        "warmup": config.warmup,
        "lambda_min": config.lambda_min,
    }


def weighting_method(config) -> WeightingMethod:
    """The registered method of ``config.method`` bound to its options (validated)."""
    options = dict(config.options or {})
    check_options_belong(config.method, options)
    return get_method(config.method)(_controller(config), **options)


def make_weighting(
    method: str,
    *,
    num_steps: int | None = None,
    num_tasks: int = 2,
    beta: float = 0.99,
    warmup: int = 100,
    lambda_min: float = 0.05,
    **options,
) -> GABALoss:
    """The torch module of the registered ``method`` for a run of ``num_steps`` steps.

    ``gaba`` gives a plain :class:`GABALoss`, every other method a
    :class:`~gaba_control.weighting.SourcedGABALoss` applying its weights;
    ``options`` are the method's (see :mod:`gaba_control.weighting`).
    """
    controller = {"num_tasks": num_tasks, "beta": beta, "warmup": warmup,
                  "lambda_min": lambda_min}
    return get_method(method)(controller, **options).module(num_steps or 1)


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
    #: the method's options (see :mod:`gaba_control.weighting`), e.g. ``{"weights": [1, 3]}``
    options: dict | None = None
    #: continue from ``out/checkpoint.pt`` if it is there (bit-identical to an uninterrupted run)
    resume: bool = False
    #: a third, self-supervised task (``"next_cycle"``: regress the next cycle's normalised
    #: sensors from the window), or ``None`` for the two C-MAPSS tasks
    aux_task: str | None = None

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
        rul, logits = model(x[start : start + batch_size])[:2]
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


#: settings that may differ between an interrupted run and its resumption
_RESUMABLE_DIFFERENCES = {"out", "progress", "threads", "resume", "data_dir"}


def _load_checkpoint(path: Path, config: TrainConfig) -> dict:
    """The checkpoint at ``path``, checked against ``config``; ``ValueError`` naming a mismatch."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a truncated or foreign file: say which and why
        raise ValueError(f"{path}: not a readable training checkpoint ({error})") from error
    needed = {"model", "optimizer", "gaba", "epoch", "step", "config", "numpy_rng",
              "torch_rng", "trace", "history", "best"}
    if not isinstance(state, dict) or needed - set(state):
        missing = sorted(needed - set(state)) if isinstance(state, dict) else sorted(needed)
        raise ValueError(f"{path}: checkpoint cannot resume a run (missing {', '.join(missing)}; "
                         "written by an older version?)")
    ours = _finite_or_none(asdict(config))
    theirs = _finite_or_none(state["config"])
    for key in sorted(set(ours) | set(theirs)):
        if key in _RESUMABLE_DIFFERENCES:
            continue
        a, b = theirs.get(key), ours.get(key)
        if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
            a, b = list(a or []), list(b or [])
        if a != b:
            raise ValueError(f"{path} was written with {key}={a!r}; this run has {key}={b!r}: "
                             "resume it with the same settings or use another --out")
    return state


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


def _sensor_inputs(sensor: str, model, features) -> dict:
    """What a graph sensor of :class:`~gaba_control.nn.GABALoss` differentiates with respect
    to: the last shared layer's parameters, or the shared representation itself."""
    if sensor == "last_layer":
        return {"sensor_params": model.last_shared_layer.parameters()}
    if sensor == "representation":
        return {"representation": features}
    return {}


def _step_losses(model, x, rul, health, rul_scale, next_cycle=None, *, features=False):
    """The task losses of a batch (and the shared representation with ``features=True``)."""
    z = model.backbone(x)
    out = model.heads(z)
    if features:
        return _task_losses(out, rul, health, rul_scale, next_cycle), z
    return _task_losses(out, rul, health, rul_scale, next_cycle)


def _task_losses(out, rul, health, rul_scale, next_cycle):
    l_rul = nn.functional.mse_loss(out[0], rul / rul_scale)
    l_health = nn.functional.cross_entropy(out[1], health)
    if next_cycle is None:
        return [l_rul, l_health]
    # the windows that end a unit have no next cycle (NaN targets): left out of the mean
    keep = torch.isfinite(next_cycle).all(dim=-1)
    l_next = (nn.functional.mse_loss(out[2][keep], next_cycle[keep]) if bool(keep.any())
              else out[2].sum() * 0.0)
    return [l_rul, l_health, l_next]


def _checked(config: TrainConfig) -> TrainConfig:
    """Raise ``ValueError``/``TypeError`` naming a bad setting before any work is done."""
    get_method(config.method)
    for name in ("epochs", "batch_size"):
        check_positive_int(getattr(config, name), name)
    for name in ("max_batches", "threads"):
        if getattr(config, name) is not None:
            check_positive_int(getattr(config, name), name)
    if config.threads is not None and config.threads > 1024:  # torch takes a C int
        raise ValueError(f"threads must be an int in [1, 1024], got {config.threads!r}")
    for name in ("lr", "rul_scale"):
        value = getattr(config, name)
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    for name in ("seed", "split_seed"):  # torch.manual_seed takes 64 bits, numpy any int >= 0
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
            raise ValueError(f"{name} must be an int in [0, 2^63), got {value!r}")
    if config.aux_task is not None and config.aux_task not in AUX_TASKS:
        raise ValueError(f"aux_task must be one of {AUX_TASKS} or None, got {config.aux_task!r}")
    weighting_method(config)  # the method's own options
    return config


def check_config(config: TrainConfig) -> TrainConfig:
    """The resolved ``config`` if :func:`train` would accept it, else ``ValueError``/``TypeError``
    naming the setting (what ``compare`` and ``sweep`` check before running any job)."""
    return _checked(config.resolved())


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
    out = output_directory(config.out)
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
    names = task_names(config)
    aux = config.aux_task is not None
    if aux and data.next_train is None:
        raise ValueError(f"--aux-task {config.aux_task} needs next-cycle targets in the data")
    model = MultiTaskCNN(data.num_channels, data.window, next_cycle=aux)
    n_train = data.x_train.shape[0]
    batches_per_epoch = math.ceil(n_train / config.batch_size)
    if config.max_batches is not None:
        batches_per_epoch = min(batches_per_epoch, config.max_batches)
    method = weighting_method(config)
    source = method.source(config.epochs * batches_per_epoch)
    weighting = method.module(config.epochs * batches_per_epoch,
                              steps_per_epoch=batches_per_epoch)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    recorder = TraceRecorder(len(names))
    source_summary = method.summary(source)
    history: list[dict] = []
    best = {"val_rmse": math.inf, "epoch": None, "state": None}
    diverged = None
    step = 0
    start_epoch, resumptions = 0, []
    checkpoint = out / "checkpoint.pt"
    if config.resume and checkpoint.is_file():
        state = _load_checkpoint(checkpoint, config)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        weighting.load_state_dict(state["gaba"])
        rng.bit_generator.state = state["numpy_rng"]
        torch.set_rng_state(state["torch_rng"])
        recorder.extend({k: v.numpy() for k, v in state["trace"].items()})
        history, best, step = state["history"], state["best"], state["step"]
        start_epoch = state["epoch"] + 1
        resumptions = [*state.get("resumptions", []), start_epoch]
    bar = _progress(config.epochs * batches_per_epoch, config.progress)
    bar.update(step)
    for epoch in range(start_epoch, config.epochs):
        order = torch.from_numpy(rng.permutation(n_train))
        for b in range(batches_per_epoch):
            index = order[b * config.batch_size : (b + 1) * config.batch_size]
            # cleared before the forward: last step's .grad is freed before the exact
            # sensor's K per-task gradients are allocated (less peak memory, fewer page faults)
            optimizer.zero_grad(set_to_none=True)
            losses, features = _step_losses(
                model,
                data.x_train[index],
                data.rul_train[index],
                data.health_train[index],
                config.rul_scale,
                data.next_train[index] if aux else None,
                features=True,
            )
            loss = weighting(losses, model.parameters(), model.backbone.parameters(),
                             **_sensor_inputs(weighting.sensor, model, features))
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
            # a step between refreshes (refresh_every > 1) measures nothing: NaN norms by design
            finite = np.all(np.isfinite(telemetry["losses"])) and (
                not weighting.reads_sensor(step) or np.all(np.isfinite(telemetry["norms"])))
            if not finite:
                diverged = {
                    "step": step,
                    "epoch": epoch,
                    "losses": _json_floats(telemetry["losses"]),
                    "grad_norms": _json_floats(telemetry["norms"]),
                    "reason": "non-finite task loss or gradient norm",
                }
                break
            loss.backward()
            optimizer.step()
            if method.post_step and weighting.needs_post_step:
                with torch.no_grad():  # the same batch after the step (FAMO's update)
                    weighting.post_step_losses(_step_losses(
                        model, data.x_train[index], data.rul_train[index],
                        data.health_train[index], config.rul_scale,
                        data.next_train[index] if aux else None))
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
                "numpy_rng": rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(),
                "trace": {k: torch.from_numpy(v) for k, v in recorder.arrays().items()},
                "history": history,
                "best": best,
                "resumptions": resumptions,
            },
            checkpoint,
        )
    bar.close()

    metrics = _final_metrics(model, data, config, history, best, diverged)
    metrics["wall_time_s"] = time.perf_counter() - started
    metrics["num_steps"] = step
    metrics["torch_threads"] = torch.get_num_threads()  # the thread count of this run
    metrics["weight_source"] = source_summary
    # the epochs an interrupted run continued from (empty: never interrupted)
    metrics["resumed_at_epochs"] = resumptions
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
        task_names=names,
        config=_finite_or_none({**asdict(config), "rul_loss_units": _rul_units(config)}),
        versions=package_versions(),
    )
    trace.save(out / "trace.npz")
    _atomic_json(metrics, out / "metrics.json")
    return metrics


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
        if test and test.get("rmse") is None:  # finite losses, yet non-finite predictions
            metrics.update(status="diverged", diverged=True, divergence={
                "step": None, "epoch": None,
                "reason": "non-finite RUL predictions on the test set"})
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
    add_method_arguments(parser)
    parser.add_argument(
        "--subset",
        choices=SUBSETS,
        default=defaults.subset,
        type=str.upper,
        help="C-MAPSS subset (default %(default)s)",
    )
    parser.add_argument(
        "--aux-task",
        choices=AUX_TASKS,
        default=None,
        help="add a third, self-supervised task: next_cycle regresses the next cycle's "
        "normalised sensors (default: the two C-MAPSS tasks)",
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
    parser.add_argument("--resume", action="store_true",
                        help="continue from --out/checkpoint.pt (written every epoch) if present")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def add_method_arguments(parser: argparse.ArgumentParser, *, method: bool = True):
    """``--method`` (unless ``method=False``) and every registered method's options."""
    if method:
        listing = "; ".join(f"{name} = {get_method(name).description}" for name in method_names())
        parser.add_argument("--method", choices=method_names(), default=TrainConfig.method,
                            help=f"loss weighting (default %(default)s): {listing}")
    for name, (spec, owners) in option_owners().items():
        parser.add_argument(spec.flag, dest=name, type=spec.type, nargs=spec.nargs,
                            default=None, metavar=spec.metavar,
                            help=f"{spec.help} [{', '.join(owners)}]")
    return parser


def method_options_from_args(args: argparse.Namespace) -> dict:
    """The method options given on the command line (lists as tuples)."""
    options = {}
    for name in option_owners():
        value = getattr(args, name, None)
        if value is not None:
            options[name] = tuple(value) if isinstance(value, list) else value
    return options


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
        options=method_options_from_args(args) or None,
        resume=args.resume,
        aux_task=args.aux_task,
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
