r"""Record the loop's signals during training, save them, load them, replay them.

A *trace* is the per-step history of one training run: the measured gradient
norms ``g_i`` on the shared parameters, the shares, the raw weights, the EMA
state, the controller output ``λ*``, the weights actually applied to the
losses, the task losses, the learning rate, step and epoch counters and the
gate/measurement flags. :class:`TraceRecorder` collects it step by step,
:func:`save_trace` writes it as a versioned ``.npz`` (atomically: temporary
file + :func:`os.replace`), :func:`load_trace` reads it back into a
:class:`Trace`, and :func:`replay_trace` feeds the recorded ``g`` through the
numpy :class:`~gaba_control.controller.GABAController` with the recorded
configuration; for a GABA run its ``λ*`` reproduces the recorded one.

File layout (format version 1): one array per signal (names in
:data:`ARRAY_FIELDS`) and a ``metadata`` entry holding a JSON string with the
format name and version, the controller configuration, the run's
configuration, seed, subset, method, task names and the versions of python,
numpy, torch and gaba_control. The file loads with ``allow_pickle=False``.
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gaba_control._io import atomic_path
from gaba_control._validation import check_no_extra_kwargs, check_num_tasks

__all__ = [
    "ARRAY_FIELDS",
    "TRACE_FORMAT",
    "TRACE_VERSION",
    "Trace",
    "TraceRecorder",
    "load_trace",
    "package_versions",
    "replay_trace",
    "save_trace",
]

TRACE_FORMAT = "gaba_control.trace"
TRACE_VERSION = 1

#: Array fields and their trailing shape: "K" = one column per task, "" = one value per step.
ARRAY_FIELDS = {
    "step": "",
    "epoch": "",
    "grad_norms": "K",
    "shares": "K",
    "raw": "K",
    "ema": "K",
    "weights": "K",
    "applied_weights": "K",
    "losses": "K",
    "lr": "",
    "active": "",
    "valid": "",
}
_DTYPES = {"step": np.int64, "epoch": np.int64, "active": np.bool_, "valid": np.bool_}
_METADATA_KEYS = (
    "format",
    "format_version",
    "controller",
    "method",
    "subset",
    "seed",
    "task_names",
    "config",
    "versions",
)


def package_versions() -> dict:
    """Versions of python, numpy, torch and gaba_control (``None`` where not importable)."""
    import gaba_control

    try:
        import torch

        torch_version = torch.__version__
    except ImportError:  # pragma: no cover - torch is a dependency
        torch_version = None
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch_version,
        "gaba_control": gaba_control.__version__,
    }


@dataclass(frozen=True)
class Trace:
    """A loaded (or freshly recorded) trace: per-step arrays plus metadata.

    Arrays have ``T`` rows; task arrays ``(T, K)``. ``weights`` is the
    controller output ``λ*`` (for an ``equal`` run: what GABA would have
    output from the same ``g``, run alongside), ``applied_weights`` the weights
    that multiplied the losses. ``controller`` holds ``num_tasks``, ``beta``,
    ``warmup``, ``lambda_min``.
    """

    step: np.ndarray
    epoch: np.ndarray
    grad_norms: np.ndarray
    shares: np.ndarray
    raw: np.ndarray
    ema: np.ndarray
    weights: np.ndarray
    applied_weights: np.ndarray
    losses: np.ndarray
    lr: np.ndarray
    active: np.ndarray
    valid: np.ndarray
    controller: dict
    method: str
    subset: str | None = None
    seed: int | None = None
    task_names: tuple[str, ...] = ()
    config: dict = field(default_factory=dict)
    versions: dict = field(default_factory=package_versions)
    format_version: int = TRACE_VERSION

    def __len__(self) -> int:
        return int(self.step.shape[0])

    @property
    def num_tasks(self) -> int:
        """``K``, the number of task columns."""
        return int(self.grad_norms.shape[-1])

    def metadata(self) -> dict:
        """The JSON-ready metadata block written to the file."""
        return {
            "format": TRACE_FORMAT,
            "format_version": self.format_version,
            "controller": dict(self.controller),
            "method": self.method,
            "subset": self.subset,
            "seed": self.seed,
            "task_names": list(self.task_names),
            "config": self.config,
            "versions": self.versions,
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write the trace; see :func:`save_trace`."""
        return save_trace(self, path)


class TraceRecorder:
    """Collect one row of loop signals per training step.

    Parameters
    ----------
    num_tasks : int
        ``K``.

    Examples
    --------
    >>> rec = TraceRecorder(2)
    >>> rec.record(step=1, epoch=0, grad_norms=[3.0, 1.0], shares=[0.75, 0.25],
    ...            raw=[0.25, 0.75], ema=[0.5, 0.5], weights=[0.5, 0.5],
    ...            applied_weights=[0.5, 0.5], losses=[2.0, 1.1], lr=1e-3,
    ...            active=False, valid=True)
    >>> trace = rec.to_trace(controller={"num_tasks": 2, "beta": 0.99, "warmup": 100,
    ...                                  "lambda_min": 0.05}, method="gaba")
    >>> len(trace), trace.grad_norms.shape
    (1, (1, 2))
    """

    def __init__(self, num_tasks: int = 2, *, chunk: int = 4096):
        self.num_tasks = check_num_tasks(num_tasks)
        # Rows go into preallocated blocks: one small object per step for each of
        # 12 fields would fragment the heap between the training's large tensors.
        self._chunk = chunk
        self._blocks: dict[str, list[np.ndarray]] = {name: [] for name in ARRAY_FIELDS}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def _shape(self, name: str) -> tuple[int, ...]:
        return (self.num_tasks,) if ARRAY_FIELDS[name] == "K" else ()

    def record(self, **values) -> None:
        """Append one step; every name in :data:`ARRAY_FIELDS` is required."""
        missing = set(ARRAY_FIELDS) - set(values)
        if missing:
            raise ValueError(f"record() is missing field(s): {', '.join(sorted(missing))}")
        check_no_extra_kwargs({k: v for k, v in values.items() if k not in ARRAY_FIELDS}, "record")
        row = {}
        for name in ARRAY_FIELDS:  # check the whole row before storing any of it
            value = np.asarray(_to_numpy(values[name]), dtype=_DTYPES.get(name, np.float64))
            if value.shape != self._shape(name):
                raise ValueError(f"{name} must have shape {self._shape(name)}, got {value.shape}")
            row[name] = value
        position = self._count % self._chunk
        for name, value in row.items():
            if position == 0:
                dtype = _DTYPES.get(name, np.float64)
                self._blocks[name].append(np.zeros((self._chunk, *self._shape(name)), dtype))
            self._blocks[name][-1][position] = value
        self._count += 1

    def extend(self, arrays: dict) -> None:
        """Append the rows of ``arrays`` (as returned by :meth:`arrays`), checked row by row."""
        lengths = {len(np.asarray(arrays[name])) for name in ARRAY_FIELDS}
        if len(lengths) != 1:
            raise ValueError(f"arrays have different lengths {sorted(lengths)}")
        for t in range(lengths.pop()):
            self.record(**{name: np.asarray(arrays[name])[t] for name in ARRAY_FIELDS})

    def arrays(self) -> dict[str, np.ndarray]:
        """The recorded rows stacked per field (``(T,)`` or ``(T, K)``)."""
        out = {}
        for name in ARRAY_FIELDS:
            dtype = _DTYPES.get(name, np.float64)
            blocks = self._blocks[name]
            stacked = np.concatenate(blocks) if blocks else np.zeros((0, *self._shape(name)), dtype)
            out[name] = stacked[: self._count].copy()
        return out

    def to_trace(self, *, controller: dict, method: str, **metadata) -> Trace:
        """A :class:`Trace` of everything recorded, with the given metadata."""
        return Trace(**self.arrays(), controller=dict(controller), method=method, **metadata)


def _to_numpy(value):
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return value


def save_trace(trace: Trace, path: str | os.PathLike) -> Path:
    """Write ``trace`` to ``path`` (``.npz``) atomically: a temporary file, then ``os.replace``."""
    path = Path(path)
    arrays = {name: getattr(trace, name) for name in ARRAY_FIELDS}
    metadata = np.array(json.dumps(trace.metadata(), sort_keys=True))
    with atomic_path(path) as temporary, open(temporary, "wb") as file:
        np.savez_compressed(file, metadata=metadata, **arrays)
    return path


def load_trace(path: str | os.PathLike) -> Trace:
    """Read a trace written by :func:`save_trace`.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Not a trace, an unknown format version, or a missing field; the
        message names the file and what is wrong.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"trace file not found: {path}")
    try:
        return _load_trace(path)
    except ValueError as error:
        if str(path) in str(error):
            raise  # already says which file and what is wrong
        raise ValueError(f"{path}: not a readable gaba_control trace ({error})") from error
    except Exception as error:  # zipfile/zlib/numpy raise many kinds on a mangled archive
        raise ValueError(f"{path}: not a readable gaba_control trace (truncated or corrupted: "
                         f"{type(error).__name__}: {error})") from error


def _load_trace(path: Path) -> Trace:
    with np.load(path, allow_pickle=False) as archive:
        if "metadata" not in archive.files:
            raise ValueError(f"{path}: not a gaba_control trace (no 'metadata' entry)")
        metadata = json.loads(str(archive["metadata"]))
        _check_metadata(metadata, path)
        missing = [name for name in ARRAY_FIELDS if name not in archive.files]
        if missing:
            raise ValueError(f"{path}: trace is missing array field(s): {', '.join(missing)}")
        arrays = {name: archive[name] for name in ARRAY_FIELDS}
    lengths = {name: a.shape[0] if a.ndim else None for name, a in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"{path}: array fields have different lengths {lengths}")
    return Trace(
        **arrays,
        controller=metadata["controller"],
        method=metadata["method"],
        subset=metadata["subset"],
        seed=metadata["seed"],
        task_names=tuple(metadata["task_names"]),
        config=metadata["config"],
        versions=metadata["versions"],
        format_version=metadata["format_version"],
    )


def _check_metadata(metadata: dict, path: Path) -> None:
    if not isinstance(metadata, dict) or metadata.get("format") != TRACE_FORMAT:
        raise ValueError(f"{path}: not a gaba_control trace (format {metadata.get('format')!r})")
    version = metadata.get("format_version")
    if version != TRACE_VERSION:
        raise ValueError(
            f"{path}: unknown trace format version {version!r}; this gaba_control reads "
            f"version {TRACE_VERSION}"
        )
    missing = [key for key in _METADATA_KEYS if key not in metadata]
    if missing:
        raise ValueError(f"{path}: trace metadata is missing field(s): {', '.join(missing)}")
    controller_missing = {"num_tasks", "beta", "warmup", "lambda_min"} - set(metadata["controller"])
    if controller_missing:
        raise ValueError(
            f"{path}: trace controller config is missing {', '.join(sorted(controller_missing))}"
        )


def replay_trace(trace: Trace) -> np.ndarray:
    """Feed the recorded ``g`` through a fresh numpy controller; return its ``λ*`` ``(T, K)``.

    The controller is built from ``trace.controller`` (``num_tasks``, ``beta``,
    ``warmup``, ``lambda_min``) and starts at step 0, so the trace must begin
    at step 1 (a run recorded from its start). Recorded NaN norms (steps
    where nothing was measured) are invalid measurements and hold the state.
    For every run the result should equal ``trace.weights``.
    """
    from gaba_control.controller import GABAController

    if len(trace) and int(trace.step[0]) != 1:
        raise ValueError(
            "replay needs a trace recorded from step 1, this one starts at step "
            f"{int(trace.step[0])}"
        )
    config = trace.controller
    controller = GABAController(
        int(config["num_tasks"]),
        beta=float(config["beta"]),
        warmup=int(config["warmup"]),
        lambda_min=float(config["lambda_min"]),
    )
    return controller.run(trace.grad_norms).weights
