r"""C-MAPSS run-to-failure data: reading, conditions, normalisation, windows, targets.

The NASA C-MAPSS files hold one row per engine cycle with 26 space-separated
numbers: unit, cycle, three operational settings and 21 sensors. Four subsets
differ in operating conditions (FD001/FD003: one; FD002/FD004: six) and fault
modes. :func:`load_subset` turns one subset into tensors for a two-task network:

* **channels** -- the 21 sensors; the three settings only identify the
  operating condition. A sensor is dropped as (quasi-)constant when, within
  every operating condition, the training units show at most ``max_levels``
  distinct values (default 2: an exactly constant sensor, or one that only
  toggles between two adjacent quantisation levels such as FD001 sensor 6,
  21.60/21.61, which carries no degradation trend and whose z-scores would be
  isolated spikes of several σ). ``max_levels=1`` drops only exact constants.
* **operating conditions** -- rows are grouped by the settings rounded to
  (1, 0.01, 1) (altitude in kft, Mach, throttle resolver angle); FD002 and
  FD004 give six groups, FD001 and FD003 one. Every test row must fall into a
  training condition, else ``ValueError``.
* **normalisation** -- z-score with mean and standard deviation of the
  *training-split* units only (validation and test data never enter the
  statistics), per operating condition when there is more than one. A channel
  constant within one condition (but not all) is only centred there.
* **windows** -- sliding windows of ``window`` = 30 cycles, stride 1, laid out
  ``(N, channels, window)`` as :class:`torch.nn.Conv1d` expects; the targets
  belong to the window's last cycle. A sequence shorter than the window is
  padded at its start by repeating its first (normalised) row; this only
  happens for test engines (six in FD002, eleven in FD004 at window 30).
* **RUL target** -- piecewise linear: ``min(RUL, rul_cap)`` with
  ``rul_cap = 125`` cycles (the flat part says "healthy, no trend yet").
  Test targets are capped the same way; the uncapped values are kept too.
* **health states** (from the *uncapped* RUL, thresholds ``(critical_below,
  healthy_from)`` = ``(30, 100)`` cycles by default): 0 = healthy
  (RUL ≥ 100), 1 = degrading (30 ≤ RUL < 100), 2 = critical (RUL < 30).
  Both thresholds lie below the cap, so capped and uncapped RUL give the
  same labels.
* **validation** -- split by engine: a seeded ``numpy.random.default_rng``
  picks ``round(val_fraction · units)`` training units (default 20 %); every
  window of those units is a validation sample.
* **test** -- the last window of each test engine, scored against
  ``RUL_FD00x.txt.gz``.

Nothing is cached on disk; loading a subset takes about a second.
"""

from __future__ import annotations

import gzip
import os
import warnings
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from gaba_control._validation import check_no_extra_kwargs, check_positive_int

__all__ = [
    "ENV_VAR",
    "SENSOR_NAMES",
    "SUBSETS",
    "CMAPSSData",
    "candidate_data_dirs",
    "default_data_dir",
    "health_labels",
    "identify_conditions",
    "load_subset",
    "piecewise_rul",
    "read_cmapss_file",
]

SUBSETS = ("FD001", "FD002", "FD003", "FD004")
ENV_VAR = "GABA_CMAPSS_DIR"
NUM_COLUMNS = 26
SENSOR_NAMES = tuple(f"s{i}" for i in range(1, 22))
# Rounding of (altitude, Mach, TRA) that separates the six flight conditions: within a
# condition the settings spread by at most 0.01 (altitude), 0.002 (Mach) and 0 (TRA) on
# FD002/FD004 (tests/test_cmapss_data.py), far below the rounding steps.
CONDITION_DECIMALS = (0, 2, 0)
_SETTINGS = slice(2, 5)
_SENSORS = slice(5, 26)


# ----------------------------------------------------------------- locating files
def candidate_data_dirs() -> list[Path]:
    """Directories searched for the data, in order.

    ``$GABA_CMAPSS_DIR`` alone when it is set (an explicit choice is never
    silently replaced by another directory); otherwise
    ``<repo>/../shared/data/cmapss`` with ``<repo>`` the directory above the
    package, then the same relative path from the current working directory.
    """
    if os.environ.get(ENV_VAR):
        return [Path(os.environ[ENV_VAR]).expanduser()]
    candidates = []
    repo = Path(__file__).resolve().parents[2]
    candidates.append(repo.parent / "shared" / "data" / "cmapss")
    candidates.append(Path.cwd().parent / "shared" / "data" / "cmapss")
    unique: list[Path] = []
    for path in candidates:
        if path not in unique:
            unique.append(path)
    return unique


def default_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The C-MAPSS directory: ``data_dir`` if given, else the first existing candidate.

    Raises
    ------
    FileNotFoundError
        When ``data_dir`` does not exist, or no candidate exists; the message
        lists every path tried.
    """
    tried = [Path(data_dir).expanduser()] if data_dir is not None else candidate_data_dirs()
    for path in tried:
        if path.is_dir():
            return path
    listing = "\n  ".join(str(p) for p in tried)
    raise FileNotFoundError(
        f"C-MAPSS data directory not found; tried:\n  {listing}\n"
        f"Pass data_dir / --data-dir or set ${ENV_VAR}."
    )


def _subset_file(data_dir: Path, kind: str, subset: str) -> Path:
    gz = data_dir / f"{kind}_{subset}.txt.gz"
    plain = data_dir / f"{kind}_{subset}.txt"
    if gz.is_file():
        return gz
    if plain.is_file():
        return plain
    raise FileNotFoundError(f"C-MAPSS file not found: {gz} (nor {plain.name})")


# ----------------------------------------------------------------------- reading
def _open_text(path: Path):
    with open(path, "rb") as handle:
        magic = handle.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="ascii", errors="replace")
    return open(path, encoding="ascii", errors="replace")


def read_cmapss_file(path: str | os.PathLike, num_columns: int = NUM_COLUMNS) -> np.ndarray:
    """Read a C-MAPSS text file (gzipped or plain) into a float64 array.

    Parameters
    ----------
    path : path-like
        ``train_FD00x``/``test_FD00x`` (26 columns) or ``RUL_FD00x`` (1 column).
    num_columns : int
        Columns every non-blank line must have.

    Returns
    -------
    ndarray (rows, num_columns)

    Raises
    ------
    FileNotFoundError
        The file does not exist (the message names it).
    ValueError
        A line with the wrong number of columns, a non-numeric or non-finite
        value, or no data at all; the message names the file and the line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"C-MAPSS file not found: {path}")
    try:
        try:  # fast path; any doubt falls through to the line-by-line diagnosis below
            with _open_text(path) as handle, warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "no data": diagnosed below
                table = np.loadtxt(handle, dtype=np.float64, ndmin=2)
            if table.shape[0] and table.shape[1] == num_columns and np.isfinite(table).all():
                return table
        except ValueError:
            pass
        return _read_checked(path, num_columns)
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise ValueError(f"{path}: truncated or corrupted gzip file ({error})") from error


def _read_checked(path: Path, num_columns: int) -> np.ndarray:
    """Parse line by line, raising with the file name and line number of the first fault."""
    rows: list[list[str]] = []
    line_numbers: list[int] = []
    with _open_text(path) as handle:
        for line_number, line in enumerate(handle, start=1):
            tokens = line.split()
            if not tokens:
                continue
            if len(tokens) != num_columns:
                raise ValueError(
                    f"{path}, line {line_number}: expected {num_columns} columns, got {len(tokens)}"
                )
            rows.append(tokens)
            line_numbers.append(line_number)
    if not rows:
        raise ValueError(f"{path}: no data rows")
    try:
        table = np.array(rows, dtype=np.float64)
    except ValueError:
        _raise_first_non_numeric(path, rows, line_numbers)
    finite = np.isfinite(table).all(axis=1)
    if not finite.all():
        line_number = line_numbers[int(np.argmin(finite))]
        raise ValueError(f"{path}, line {line_number}: non-finite value")
    return table


def _raise_first_non_numeric(path: Path, rows, line_numbers) -> None:
    for tokens, line_number in zip(rows, line_numbers, strict=True):
        for token in tokens:
            try:
                float(token)
            except ValueError:
                raise ValueError(
                    f"{path}, line {line_number}: non-numeric value {token!r}"
                ) from None
    raise ValueError(f"{path}: could not parse as numbers")  # pragma: no cover


def _check_counts(values: np.ndarray, path: Path, what: str, minimum: int) -> None:
    """Whole numbers ``≥ minimum`` (unit ids, cycles, RUL); ``ValueError`` naming the row."""
    bad = (values != np.round(values)) | (values < minimum)
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(f"{path}, data row {row + 1}: {what} must be a whole number >= "
                         f"{minimum}, got {values[row]!r}")


def _checked_table(table: np.ndarray, path: Path) -> np.ndarray:
    _check_counts(table[:, 0], path, "the unit id", minimum=1)
    _check_counts(table[:, 1], path, "the cycle", minimum=1)
    return table


# ------------------------------------------------------------- targets and labels
def piecewise_rul(rul, cap: float = 125.0) -> np.ndarray:
    """Piecewise-linear RUL target ``min(RUL, cap)``.

    Examples
    --------
    >>> piecewise_rul(np.array([0, 50, 125, 300]), cap=125)
    array([  0.,  50., 125., 125.])
    """
    return np.minimum(np.asarray(rul, dtype=np.float64), float(cap))


def health_labels(rul, thresholds: Sequence[float] = (30, 100)) -> np.ndarray:
    """Health state from RUL: 0 healthy, 1 degrading, 2 critical.

    Parameters
    ----------
    rul : array
        Remaining useful life in cycles (uncapped).
    thresholds : (critical_below, healthy_from)
        ``0 < critical_below < healthy_from``: state 0 for ``RUL ≥ healthy_from``,
        2 for ``RUL < critical_below``, 1 in between.

    Examples
    --------
    >>> health_labels(np.array([0, 29, 30, 99, 100, 500]), thresholds=(30, 100))
    array([2, 2, 1, 1, 0, 0])
    """
    critical_below, healthy_from = _check_thresholds(thresholds)
    rul = np.asarray(rul, dtype=np.float64)
    labels = np.ones(rul.shape, dtype=np.int64)
    labels[rul >= healthy_from] = 0
    labels[rul < critical_below] = 2
    return labels


def _check_thresholds(thresholds) -> tuple[float, float]:
    if len(thresholds) != 2:
        raise ValueError(
            f"health_thresholds must be (critical_below, healthy_from), got {thresholds!r}"
        )
    critical_below, healthy_from = (float(t) for t in thresholds)
    if not (0.0 < critical_below < healthy_from):
        raise ValueError(
            f"health_thresholds must satisfy 0 < critical_below < healthy_from, got {thresholds!r}"
        )
    return critical_below, healthy_from


# ------------------------------------------------------------------- conditions
def _condition_keys(settings: np.ndarray) -> np.ndarray:
    keys = np.stack([np.round(settings[:, i], d) for i, d in enumerate(CONDITION_DECIMALS)], axis=1)
    return keys + 0.0  # turn -0.0 into 0.0 so both round to the same key


def identify_conditions(train_settings: np.ndarray, *others: np.ndarray):
    """Group rows into operating conditions by rounding the three settings.

    Parameters
    ----------
    train_settings : ndarray (N, 3)
        Settings of the training rows; they define the conditions.
    *others : ndarray (M, 3)
        Further rows (validation, test) mapped onto the training conditions.

    Returns
    -------
    centers : ndarray (C, 3)
        Rounded settings of each condition, sorted lexicographically.
    labels : list of ndarray
        Condition index of every row, for ``train_settings`` then each of ``others``.

    Raises
    ------
    ValueError
        A row of ``others`` matches no training condition.

    Examples
    --------
    >>> s = np.array([[42.003, 0.8402, 100.0], [0.001, 0.0003, 100.0], [41.998, 0.8397, 100.0]])
    >>> centers, (labels,) = identify_conditions(s)
    >>> centers.tolist(), labels.tolist()
    ([[0.0, 0.0, 100.0], [42.0, 0.84, 100.0]], [1, 0, 1])
    """
    train_keys = _condition_keys(np.asarray(train_settings, dtype=np.float64))
    centers, train_labels = np.unique(train_keys, axis=0, return_inverse=True)
    labels = [train_labels.reshape(-1)]
    for settings in others:
        keys = _condition_keys(np.asarray(settings, dtype=np.float64))
        match = np.all(keys[:, None, :] == centers[None, :, :], axis=-1)
        unmatched = ~match.any(axis=1)
        if unmatched.any():
            raise ValueError(
                f"settings {keys[np.argmax(unmatched)].tolist()} match no training "
                f"operating condition {centers.tolist()}"
            )
        labels.append(np.argmax(match, axis=1))
    return centers, labels


# ------------------------------------------------------------------- the dataset
@dataclass(frozen=True)
class CMAPSSData:
    """One preprocessed subset: windows ``(N, channels, window)``, targets, labels, metadata.

    ``rul_*`` are the capped targets in cycles (float32), ``health_*`` the
    states 0/1/2 (int64). ``mean``/``std`` (conditions × channels) are the
    training-split statistics used for every split. ``config`` holds the
    arguments that produced the data.
    """

    subset: str
    x_train: torch.Tensor
    rul_train: torch.Tensor
    health_train: torch.Tensor
    x_val: torch.Tensor
    rul_val: torch.Tensor
    health_val: torch.Tensor
    x_test: torch.Tensor
    rul_test: torch.Tensor
    health_test: torch.Tensor
    rul_test_uncapped: torch.Tensor
    channels: tuple[str, ...]
    dropped_channels: tuple[str, ...]
    conditions: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    train_units: np.ndarray
    val_units: np.ndarray
    padded_test_units: tuple[int, ...]
    config: dict = field(default_factory=dict)
    #: the next cycle's normalised sensors of each window (N, channels); NaN where the
    #: window ends at its unit's last cycle (the auxiliary task ``next_cycle``)
    next_train: torch.Tensor | None = None
    next_val: torch.Tensor | None = None

    @property
    def num_channels(self) -> int:
        """Number of input channels after dropping constants."""
        return len(self.channels)

    @property
    def window(self) -> int:
        """Window length in cycles."""
        return int(self.x_train.shape[-1])

    def summary(self) -> dict:
        """JSON-ready description (sizes, channels, conditions, configuration)."""
        return {
            "subset": self.subset,
            "num_train_windows": int(self.x_train.shape[0]),
            "num_val_windows": int(self.x_val.shape[0]),
            "num_test_engines": int(self.x_test.shape[0]),
            "num_train_units": len(self.train_units),
            "num_val_units": len(self.val_units),
            "val_units": [int(u) for u in self.val_units],
            "channels": list(self.channels),
            "dropped_channels": list(self.dropped_channels),
            "num_conditions": len(self.conditions),
            "padded_test_units": list(self.padded_test_units),
            **self.config,
        }


def load_subset(
    subset: str,
    data_dir: str | os.PathLike | None = None,
    *,
    window: int = 30,
    rul_cap: float = 125.0,
    health_thresholds: Sequence[float] = (30, 100),
    val_fraction: float = 0.2,
    seed: int = 0,
    max_levels: int = 2,
    per_condition: bool | None = None,
    **kwargs,
) -> CMAPSSData:
    """Load and preprocess one C-MAPSS subset (see the module docstring for every choice).

    Parameters
    ----------
    subset : {'FD001', 'FD002', 'FD003', 'FD004'}
    data_dir : path-like, optional
        Directory with the gzipped files; default :func:`default_data_dir`.
    window : int
        Cycles per window (30).
    rul_cap : float
        Cap of the piecewise-linear RUL target (125 cycles).
    health_thresholds : (critical_below, healthy_from)
        RUL thresholds of the health states, default (30, 100).
    val_fraction : float in [0, 1)
        Share of training engines held out for validation (0.2).
    seed : int
        Seed of the validation split.
    max_levels : int
        A sensor with at most this many distinct values per condition is dropped.
    per_condition : bool, optional
        Normalise per operating condition; default: when there is more than one.

    Returns
    -------
    CMAPSSData
    """
    check_no_extra_kwargs(kwargs, "load_subset")
    subset = _check_subset(subset)
    window = check_positive_int(window, "window")
    max_levels = check_positive_int(max_levels, "max_levels")
    thresholds = _check_thresholds(health_thresholds)
    if not (float(rul_cap) > 0):
        raise ValueError(f"rul_cap must be > 0 cycles, got {rul_cap}")
    if not (0.0 <= float(val_fraction) < 1.0):
        raise ValueError(f"val_fraction must lie in [0, 1), got {val_fraction}")

    directory = default_data_dir(data_dir)
    files = {kind: _subset_file(directory, kind, subset) for kind in ("train", "test", "RUL")}
    train = _checked_table(read_cmapss_file(files["train"]), files["train"])
    test = _checked_table(read_cmapss_file(files["test"]), files["test"])
    test_rul = read_cmapss_file(files["RUL"], num_columns=1)[:, 0]
    _check_counts(test_rul, files["RUL"], "RUL", minimum=0)
    train = train[np.lexsort((train[:, 1], train[:, 0]))]
    test = test[np.lexsort((test[:, 1], test[:, 0]))]

    units = np.unique(train[:, 0]).astype(np.int64)
    val_units = _split_units(units, float(val_fraction), seed)
    is_val = np.isin(train[:, 0], val_units)
    fit_rows = train[~is_val]

    centers, (fit_cond, all_train_cond, test_cond) = identify_conditions(
        fit_rows[:, _SETTINGS], train[:, _SETTINGS], test[:, _SETTINGS]
    )
    if per_condition is None:
        per_condition = len(centers) > 1
    if not per_condition:  # one statistics group; `conditions` still lists what was found
        fit_cond, all_train_cond, test_cond = (
            np.zeros_like(c) for c in (fit_cond, all_train_cond, test_cond)
        )
    num_groups = len(centers) if per_condition else 1

    keep = _informative_sensors(fit_rows[:, _SENSORS], fit_cond, max_levels)
    channels = tuple(n for n, k in zip(SENSOR_NAMES, keep, strict=True) if k)
    dropped = tuple(n for n, k in zip(SENSOR_NAMES, keep, strict=True) if not k)
    mean, std = _condition_statistics(fit_rows[:, _SENSORS][:, keep], fit_cond, num_groups)

    train_norm = _normalise(train[:, _SENSORS][:, keep], all_train_cond, mean, std)
    test_norm = _normalise(test[:, _SENSORS][:, keep], test_cond, mean, std)

    train_units = units[~np.isin(units, val_units)]
    *fit, next_fit = _windows_and_next(train, train_norm, train_units, window)
    *val, next_val = _windows_and_next(train, train_norm, val_units, window)
    x_test, padded = _last_windows(test, test_norm, window)
    if len(test_rul) != x_test.shape[0]:
        raise ValueError(f"RUL_{subset}: {len(test_rul)} values for {x_test.shape[0]} test engines")

    def pack(x, rul):
        return (
            torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
            torch.from_numpy(piecewise_rul(rul, rul_cap).astype(np.float32)),
            torch.from_numpy(health_labels(rul, thresholds)),
        )

    x_train, rul_train, health_train = pack(*fit)
    x_val, rul_val, health_val = pack(*val)
    x_test_t, rul_test, health_test = pack(x_test, test_rul)
    config = {
        "window": window,
        "rul_cap": float(rul_cap),
        "health_thresholds": [thresholds[0], thresholds[1]],
        "val_fraction": float(val_fraction),
        "split_seed": int(seed),
        "max_levels": max_levels,
        "per_condition": bool(per_condition),
        "data_dir": str(directory),
    }
    return CMAPSSData(
        subset=subset,
        x_train=x_train,
        rul_train=rul_train,
        health_train=health_train,
        x_val=x_val,
        rul_val=rul_val,
        health_val=health_val,
        x_test=x_test_t,
        rul_test=rul_test,
        health_test=health_test,
        rul_test_uncapped=torch.from_numpy(test_rul.astype(np.float32)),
        channels=channels,
        dropped_channels=dropped,
        conditions=centers,
        mean=mean,
        std=std,
        train_units=train_units,
        val_units=val_units,
        padded_test_units=padded,
        config=config,
        next_train=torch.from_numpy(next_fit.astype(np.float32)),
        next_val=torch.from_numpy(next_val.astype(np.float32)),
    )


def _check_subset(subset) -> str:
    if not isinstance(subset, str) or subset.upper() not in SUBSETS:
        raise ValueError(f"subset must be one of {SUBSETS}, got {subset!r}")
    return subset.upper()


def _split_units(units: np.ndarray, val_fraction: float, seed: int) -> np.ndarray:
    count = round(val_fraction * len(units))
    if count == 0:
        return units[:0]
    if count >= len(units):
        raise ValueError(f"val_fraction={val_fraction} leaves no training engine")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(units, size=count, replace=False))


def _informative_sensors(sensors: np.ndarray, conditions: np.ndarray, max_levels: int):
    levels = np.zeros(sensors.shape[1], dtype=np.int64)
    for c in np.unique(conditions):
        block = sensors[conditions == c]
        counts = np.array([len(np.unique(block[:, j])) for j in range(block.shape[1])])
        levels = np.maximum(levels, counts)
    return levels > max_levels


def _condition_statistics(values: np.ndarray, conditions: np.ndarray, num_conditions: int):
    mean = np.zeros((num_conditions, values.shape[1]))
    std = np.ones((num_conditions, values.shape[1]))
    for c in range(num_conditions):
        block = values[conditions == c]
        if len(block) == 0:
            continue
        mean[c] = block.mean(axis=0)
        spread = block.std(axis=0)
        # Constant within this condition only: centre it, do not divide by zero.
        std[c] = np.where(spread > 0, spread, 1.0)
    return mean, std


def _normalise(values, conditions, mean, std):
    return (values - mean[conditions]) / std[conditions]


def _pad_front(sequence: np.ndarray, window: int) -> np.ndarray:
    missing = window - sequence.shape[0]
    if missing <= 0:
        return sequence
    return np.concatenate([np.repeat(sequence[:1], missing, axis=0), sequence], axis=0)


def _windows_with_targets(raw: np.ndarray, normalised: np.ndarray, units, window: int):
    return _windows_and_next(raw, normalised, units, window)[:2]


def _windows_and_next(raw: np.ndarray, normalised: np.ndarray, units, window: int):
    """Windows, their RUL and the next cycle's normalised sensors (NaN for a unit's last)."""
    xs, ruls, nexts = [], [], []
    for unit in units:
        rows = raw[:, 0] == unit
        cycles = raw[rows, 1]
        rul = cycles.max() - cycles
        sequence = _pad_front(normalised[rows], window)
        rul = np.concatenate([np.full(sequence.shape[0] - len(rul), rul[0]), rul])
        views = np.lib.stride_tricks.sliding_window_view(sequence, window, axis=0)
        xs.append(views)  # (n_windows, channels, window)
        ruls.append(rul[window - 1 :])
        # window j ends at sequence[j + window − 1]; its next cycle is sequence[j + window]
        nxt = np.full((views.shape[0], sequence.shape[1]), np.nan)
        nxt[:-1] = sequence[window:]
        nexts.append(nxt)
    channels = normalised.shape[1]
    if not xs:
        return np.zeros((0, channels, window)), np.zeros(0), np.zeros((0, channels))
    return np.concatenate(xs), np.concatenate(ruls), np.concatenate(nexts)


def _last_windows(raw: np.ndarray, normalised: np.ndarray, window: int):
    xs, padded = [], []
    for unit in np.unique(raw[:, 0]).astype(np.int64):
        sequence = normalised[raw[:, 0] == unit]
        if sequence.shape[0] < window:
            padded.append(int(unit))
        xs.append(_pad_front(sequence, window)[-window:].T)
    return np.stack(xs), tuple(padded)
