r"""Every GABA-family loop over a grid of settings at once: the design assistant's engine.

A *setting* is one loop: the law block (GABA's P-law or the inverse-norm law),
the filter's domain (linear EMA or log-domain EMA), state clamping
(anti-windup), ``β``, the floor, the warmup ``W`` and the refresh interval
``N``. The variants of :mod:`gaba_control.weighting` are points of this grid:

====================  ========  ======  =========
method                law       domain  clamp
====================  ========  ======  =========
gaba                  P-law     linear  no
gaba_antiwindup       P-law     linear  yes
gaba_inverse          inverse   linear  no
gaba_log_ema          P-law     log     no
gaba_integral         inverse   log     no  (``k_I = 1 − β``)
====================  ========  ======  =========

(``gaba_integral`` with gain ``k_I`` is the log-domain EMA of the inverse law
with ``β = 1 − k_I``, see :mod:`gaba_control.weighting._gaba_integral`.)

:func:`simulate_settings` advances all ``S`` settings together over a recorded
sequence of norms, one vectorised step at a time, with the formulas of
:mod:`gaba_control.formulas` (parameters broadcast per setting): a refresh
step of setting ``s`` is a step ``t > W_s`` with ``(t − W_s − 1) mod N_s = 0``
(every step for ``N_s = 1``), whose filter coefficient is ``β_s^{N_s}``, as
:class:`~gaba_control.nn.GABALoss` does. Replay reads the recorded norms
(open loop: what the settings would have read had training not answered the
weights); with an identified plant ``P`` (``K = 2``) the log ratio each
setting reads is corrected by the plant's answer to the change of its weight,

.. math:: y_{s,t} = y_t + \big(P * (\log λ_{s,1} − \log λ_{1})\big)_t,

``λ_1`` the weight the recorded run applied. Parity tests hold both against
:func:`~gaba_control.weighting.law_weights` and
:func:`~gaba_control.plant.loop.simulate_law_closed_loop`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from gaba_control import formulas

__all__ = ["VARIANT_BLOCKS", "GridResult", "Settings", "simulate_settings",
           "trace_loop_quantities"]

#: method → (inverse law, log domain, clamp)
VARIANT_BLOCKS = {
    "gaba": (False, False, False),
    "gaba_antiwindup": (False, False, True),
    "gaba_inverse": (True, False, False),
    "gaba_log_ema": (False, True, False),
    "gaba_integral": (True, True, False),
}
_RAW_FLOOR = 1e-12  # as gaba_control.weighting._gaba_log_ema.RAW_FLOOR


@dataclass(frozen=True)
class Settings:
    """``S`` loop settings as arrays of shape ``(S,)`` (see the module docstring)."""

    variant: np.ndarray  # str
    beta: np.ndarray
    floor: np.ndarray
    warmup: np.ndarray
    refresh: np.ndarray

    @classmethod
    def grid(cls, *, variant=("gaba",), beta=(0.99,), floor=(0.05,), warmup=(100,),
             refresh=(1,)) -> Settings:
        """The full factorial grid of the given values."""
        axes = np.meshgrid(np.asarray(variant, dtype=object), np.asarray(beta, float),
                           np.asarray(floor, float), np.asarray(warmup, np.int64),
                           np.asarray(refresh, np.int64), indexing="ij")
        return cls(*(a.reshape(-1) for a in axes))

    @classmethod
    def of(cls, rows) -> Settings:
        """From ``(variant, beta, floor, warmup, refresh)`` tuples."""
        cols = list(zip(*rows, strict=True))
        return cls(np.asarray(cols[0], object), np.asarray(cols[1], float),
                   np.asarray(cols[2], float), np.asarray(cols[3], np.int64),
                   np.asarray(cols[4], np.int64))

    def __post_init__(self):
        from gaba_control._validation import check_beta, check_positive_int, check_warmup

        n = self.beta.shape
        if not all(a.shape == n and a.ndim == 1 for a in
                   (self.variant, self.floor, self.warmup, self.refresh)):
            raise ValueError("every setting array must have the same shape (S,)")
        unknown = sorted(set(self.variant.tolist()) - set(VARIANT_BLOCKS))
        if unknown:
            raise ValueError(f"variant must be one of {tuple(VARIANT_BLOCKS)}, got {unknown}")
        for b in np.unique(self.beta):
            check_beta(float(b))
        for w in np.unique(self.warmup):
            check_warmup(int(w))
        for r in np.unique(self.refresh):
            check_positive_int(int(r), "refresh")
        if np.any(~np.isfinite(self.floor)) or np.any(self.floor < 0):
            raise ValueError("floor must be finite and >= 0")

    def __len__(self) -> int:
        return self.beta.shape[0]

    def row(self, i: int) -> dict:
        return {"variant": str(self.variant[i]), "beta": float(self.beta[i]),
                "floor": float(self.floor[i]), "warmup": int(self.warmup[i]),
                "refresh": int(self.refresh[i])}


@dataclass
class GridResult:
    """Per-setting loop quantities over each setting's post-warmup steps.

    ``floor_fraction``: steps on which some applied weight's share lies below
    the floor (the field's definition); ``share_mean``/``share_log_mean``: the
    mean and the mean log of the smallest-norm task's weighted share
    ``λ_i g_i/Σ λ_j g_j`` (task ``small``, the one with the smallest median norm);
    ``log_weight_mean``: the mean of ``log λ`` of that task; ``log_weight_std``:
    the std of ``log λ`` of the largest-norm task (task ``large``), whose weight
    the loop turns down and which therefore moves by the largest factor;
    ``share_median``
    only when ``keep=True`` (it needs every step).
    """

    settings: Settings
    small: int
    large: int
    floor_fraction: np.ndarray
    share_mean: np.ndarray
    share_log_mean: np.ndarray
    log_weight_std: np.ndarray
    log_weight_mean: np.ndarray  # mean log λ of the smallest-norm task
    share_median: np.ndarray | None = None
    weights: np.ndarray | None = None  # (T, S, K) with keep=True


def _check_norms(norms) -> np.ndarray:
    g = np.asarray(norms, dtype=np.float64)
    if g.ndim != 2 or g.shape[1] < 2:
        raise ValueError(f"norms must have shape (T, K ≥ 2), got {g.shape}")
    return g


def simulate_settings(norms, settings: Settings, *, plant=None, applied=None,
                      reading=None, keep: bool = False) -> GridResult:
    """Run every setting over the recorded ``norms`` ``(T, K)`` (see the module docstring).

    Parameters
    ----------
    norms : array (T, K)
        The recorded per-task gradient norms; a row GABA's sensor rejects is
        held by every setting (as training would).
    settings : Settings
    plant : (numerator, denominator), optional
        An identified plant in powers of ``q⁻¹`` (``numerator[0] = 0``), ``K = 2``.
    applied : array (T,), optional
        The recorded run's applied weight of task 1 (needed with ``plant``).
    reading : array (T, K), optional
        What the loop's sensor reads, when it is not ``norms`` (an approximate
        sensor, e.g. ``norms`` times a measured bias): every setting steps on
        ``reading`` (its validity, its raw weights), while the shares, the task
        roles and the metrics stay on ``norms``, the exact per-task norms whose
        balance the loop exists for. With ``plant``, the plant's correction is
        added to the log ratio of both.
    keep : bool
        Also return every step's weights and the median share (memory ``T·S·K``).

    Examples
    --------
    >>> g = np.tile([600.0, 1.0], (400, 1))
    >>> r = simulate_settings(g, Settings.grid(floor=(0.001, 0.05), warmup=(50,)))
    >>> r.floor_fraction.round(2).tolist(), r.share_mean.round(3).tolist()  # not yet settled
    ([0.0, 0.34], [0.027, 0.018])
    """
    g = _check_norms(norms)
    steps, k = g.shape
    n = len(settings)
    if np.any(settings.floor >= 1.0 / k):
        raise ValueError(f"floor must lie in [0, 1/K) = [0, {1 / k:g})")
    r = g if reading is None else _check_norms(reading)
    if r.shape != g.shape:
        raise ValueError(f"reading must have the norms' shape {g.shape}, got {r.shape}")
    if plant is None and not keep:
        return _replay(g, settings, r)
    if plant is not None:
        if k != 2:
            raise ValueError("the plant correction needs K = 2 (the identified plant's tasks)")
        if applied is None:
            raise ValueError("plant= needs applied=, the recorded run's weight of task 1")
        from gaba_control.plant.loop import plant_coefficients

        num, den = plant_coefficients(plant)
        applied = np.asarray(applied, float).reshape(-1)
        if applied.shape != (steps,):
            raise ValueError(f"applied must have shape ({steps},), got {applied.shape}")
    blocks = np.array([VARIANT_BLOCKS[v] for v in settings.variant.tolist()], bool).reshape(n, 3)
    inverse, log_domain, clamp = (blocks[:, i:i + 1] for i in range(3))
    any_inverse, any_log, any_clamp = (bool(b.any()) for b in (inverse, log_domain, clamp))
    beta = (settings.beta ** settings.refresh)[:, None]  # per refresh
    floor = settings.floor[:, None]
    warmup, refresh = settings.warmup, settings.refresh
    state = np.where(log_domain, 0.0, 1.0 / k) * np.ones((n, k))
    weights = np.full((n, k), 1.0 / k)
    small, large = _small_task(g), _large_task(g)
    acc = {name: np.zeros(n) for name in ("count", "floor", "share", "log_share", "logw",
                                          "logb", "logb2")}
    kept = np.empty((steps, n, k)) if keep else None
    shares_kept = np.empty((steps, n)) if keep else None
    if plant is not None:
        size = num.size
        u_past = np.zeros((size - 1, n))
        p_past = np.zeros((size - 1, n))
        log_applied = np.log(applied)
    for t in range(1, steps + 1):
        row, sensed = g[t - 1], r[t - 1]
        if plant is not None:
            p_now = num[1:] @ u_past - den[1:] @ p_past
            read = _ratio_row(math.log(sensed[0] / sensed[1]) + p_now)
            exact = read if r is g else _ratio_row(math.log(row[0] / row[1]) + p_now)
        else:
            read = sensed[None, :]
        valid = formulas.measurement_is_valid(read)[:, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            raw = formulas.raw_weights(read)
            if any_inverse:
                raw = np.where(inverse, _inverse(read), raw)
            x = np.where(log_domain, np.log(np.clip(raw, _RAW_FLOOR, None)), raw) \
                if any_log else raw
        stepped = formulas.ema_update(state, x, beta)
        if any_log:
            stepped = np.where(log_domain, stepped - stepped.mean(axis=-1, keepdims=True),
                               stepped)
        if any_clamp:
            stepped = np.where(clamp, np.maximum(stepped, floor), stepped)
        update = (t > warmup) & ((refresh == 1) | ((t - warmup - 1) % refresh == 0))
        update = update[:, None] & valid
        state = np.where(update, stepped, state)
        unsaturated = np.where(log_domain, _softmax(state), state) if any_log else state
        weights = np.where(update | ~(t > warmup)[:, None],
                           np.where((t > warmup)[:, None],
                                    formulas.floor_renormalise(unsaturated, floor), 1.0 / k),
                           weights)
        gnow = exact if plant is not None else np.broadcast_to(row, (n, k))
        with np.errstate(invalid="ignore", divide="ignore"):
            share = formulas.weighted_shares(weights, gnow)[:, small]
        post = (t > warmup) & np.isfinite(share)
        lw = np.log(weights[:, small])
        lb = np.log(weights[:, large])
        acc["count"] += post
        acc["floor"] += post & (weights.min(axis=-1) < settings.floor * (1 - 1e-12))
        acc["share"] += np.where(post, share, 0.0)
        acc["log_share"] += np.where(post, np.log(np.where(post, share, 1.0)), 0.0)
        acc["logw"] += np.where(post, lw, 0.0)
        acc["logb"] += np.where(post, lb, 0.0)
        acc["logb2"] += np.where(post, lb * lb, 0.0)
        if keep:
            kept[t - 1] = weights
            shares_kept[t - 1] = np.where(post, share, np.nan)
        if plant is not None and size > 1:
            u = np.log(weights[:, 0] / weights.sum(axis=-1)) - log_applied[t - 1]
            u_past = np.concatenate([u[None], u_past[:-1]])
            p_past = np.concatenate([p_now[None], p_past[:-1]])
    count = np.maximum(acc["count"], 1)
    mean_lw = acc["logw"] / count
    mean_lb = acc["logb"] / count
    std = np.sqrt(np.maximum(acc["logb2"] / count - mean_lb**2, 0.0))
    nan = np.where(acc["count"] > 0, 1.0, np.nan)
    with np.errstate(all="ignore"):
        median = np.nanmedian(shares_kept, axis=0) if keep and steps else None
    return GridResult(settings, small, large, acc["floor"] / count * nan,
                      acc["share"] / count * nan, acc["log_share"] / count * nan, std * nan,
                      mean_lw * nan, median, kept)


def _ratio_row(y):
    """Norms ``(S, 2)`` with log ratio ``y`` ``(S,)``, the larger one 1 (no overflow)."""
    return np.stack([np.exp(np.minimum(y, 0.0)), np.exp(-np.maximum(y, 0.0))], axis=-1)


def trace_loop_quantities(norms, weights, *, floor: float, warmup: int) -> dict:
    """What :func:`simulate_settings` predicts, measured on a run: ``norms`` and the applied
    ``weights`` ``(T, K)`` of its steps.

    The same definitions as :class:`GridResult` over the steps ``t > warmup`` whose
    norms were measured (a run with ``refresh_every > 1`` reads them on its refresh
    steps only; its other rows are NaN and left out): ``share`` the geometric mean of
    the smallest-norm task's weighted share, ``share_mean`` its mean,
    ``floor_fraction`` the fraction of those steps with a weight (as a share of the
    total) below ``floor``, ``noise`` the std of ``log λ`` of the largest-norm task
    and ``steps`` their number. The weights are normalised to sum 1 first (methods
    whose weights sum to ``K`` compare).

    Examples
    --------
    >>> g = np.tile([600.0, 1.0], (400, 1))
    >>> w = np.tile([0.05, 0.95], (400, 1))
    >>> q = trace_loop_quantities(g, w, floor=0.05, warmup=100)
    >>> round(q["share"], 4), q["floor_fraction"], q["steps"]
    (0.0307, 0.0, 300)
    >>> trace_loop_quantities(g, w, floor=0.05, warmup=400)["steps"]  # nothing after W
    0
    """
    g = _check_norms(norms)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != g.shape:
        raise ValueError(f"weights must have the norms' shape {g.shape}, got {w.shape}")
    if not (isinstance(warmup, (int, np.integer)) and 0 <= warmup):
        raise ValueError(f"warmup must be an int >= 0, got {warmup!r}")
    if not (math.isfinite(floor) and 0 <= floor < 1.0 / g.shape[1]):
        raise ValueError(f"floor must lie in [0, 1/K) = [0, {1 / g.shape[1]:g}), got {floor!r}")
    with np.errstate(invalid="ignore", divide="ignore"):
        w = w / w.sum(axis=1, keepdims=True)
    if not np.any(np.all(np.isfinite(g[warmup:]), axis=1)):  # nothing read after the warmup
        return {"share": math.nan, "share_mean": math.nan, "floor_fraction": math.nan,
                "noise": math.nan, "small": None, "large": None, "steps": 0}
    out = {name: np.full(1, np.nan) for name in ("floor", "share", "log_share", "logw_std",
                                                 "logw_mean")}
    tasks = (_small_task(g[warmup:]), _large_task(g[warmup:]))
    _metrics(out, np.array([0]), w[None, warmup:], g[warmup:], np.array([floor]), tasks)
    with np.errstate(invalid="ignore", divide="ignore"):
        steps = int(np.isfinite(formulas.weighted_shares(w[warmup:], g[warmup:])[:, 0]).sum())
    return {"share": float(np.exp(out["log_share"][0])), "share_mean": float(out["share"][0]),
            "floor_fraction": float(out["floor"][0]), "noise": float(out["logw_std"][0]),
            "small": tasks[0], "large": tasks[1], "steps": steps}


def _small_task(g: np.ndarray) -> int:
    med = np.nanmedian(np.where(np.isfinite(g), g, np.nan), axis=0)
    return int(np.nanargmin(med))


def _large_task(g: np.ndarray) -> int:
    med = np.nanmedian(np.where(np.isfinite(g), g, np.nan), axis=0)
    return int(np.nanargmax(med))


def _replay(g: np.ndarray, settings: Settings, reading: np.ndarray) -> GridResult:
    """Replay without the per-step loop: each group of settings that differ only in the floor
    shares one filter trajectory (:func:`scipy.signal.lfilter` over its refresh steps), the
    floors are applied to it at once; only the clamped (anti-windup) filter, which is not
    linear, is stepped, all its settings together. The filters read ``reading``, the
    metrics ``g``."""
    steps, k = g.shape
    n = len(settings)
    small = (_small_task(g), _large_task(g))
    t = np.arange(1, steps + 1)
    valid = formulas.measurement_is_valid(reading)
    with np.errstate(invalid="ignore", divide="ignore"):
        raw = {False: formulas.raw_weights(reading), True: _inverse(reading)}
    out = {name: np.full(n, np.nan) for name in ("floor", "share", "log_share", "logw_std",
                                                 "logw_mean")}
    blocks = [VARIANT_BLOCKS[v] for v in settings.variant.tolist()]
    keys: dict = {}
    for i in range(n):
        inverse, log_domain, clamp = blocks[i]
        key = (inverse, log_domain, clamp, float(settings.beta[i]), int(settings.warmup[i]),
               int(settings.refresh[i]))
        keys.setdefault(key, []).append(i)
    clamped = [i for key, idx in keys.items() if key[2] for i in idx]
    for key, idx in keys.items():
        inverse, log_domain, clamp, beta, warmup, refresh = key
        if clamp:
            continue
        gate = t > warmup
        update = gate & ((t - warmup - 1) % refresh == 0) & valid
        x = raw[inverse]
        if log_domain:
            x = np.log(np.clip(x, _RAW_FLOOR, None))
            x = x - x.mean(axis=-1, keepdims=True)
        start = 0.0 if log_domain else 1.0 / k
        state = _held_filter(x, update, beta**refresh, start)
        unsaturated = _softmax(state) if log_domain else state
        floors = settings.floor[idx]
        # only the post-warmup steps enter the metrics (the gate opens after step W)
        w = formulas.floor_renormalise(unsaturated[None, warmup:, :], floors[:, None, None])
        _metrics(out, idx, w, g[warmup:], floors, small)  # w: (F, T − W, K)
    if clamped:
        _clamped_replay(out, np.asarray(clamped), settings, g, raw[False], valid, small)
    return GridResult(settings, *small, out["floor"], out["share"], out["log_share"],
                      out["logw_std"], out["logw_mean"])


#: settings stepped together by the clamped filter's replay (bounds its memory to ~80 MB)
_CLAMP_CHUNK = 512
#: settings whose metrics are computed together (arrays of a few MB: in the cache)
_METRIC_BLOCK = 8


def _clamped_replay(out: dict, idx: np.ndarray, settings: Settings, g, raw, valid,
                    small) -> None:
    """The anti-windup filter ``s ← max(βs + (1−β)λ_raw, floor)`` is not linear: step it,
    up to :data:`_CLAMP_CHUNK` settings at a time, storing the state, then the metrics at once
    for each warmup of the chunk."""
    steps, k = g.shape
    t_all = np.arange(1, steps + 1)
    for start in range(0, idx.size, _CLAMP_CHUNK):
        chunk = idx[start:start + _CLAMP_CHUNK]
        refresh, warmup = settings.refresh[chunk], settings.warmup[chunk]
        beta = (settings.beta[chunk] ** refresh)[:, None]
        floor = settings.floor[chunk][:, None]
        # due[t, s]: setting s refreshes at step t (and the reading is valid)
        due = ((t_all[:, None] > warmup) & ((t_all[:, None] - warmup - 1) % refresh == 0)
               & valid[:, None])
        state = np.full((chunk.size, k), 1.0 / k)
        trajectory = np.empty((chunk.size, steps, k))  # (S, T, K): the metrics' layout
        first = int(warmup.min())
        trajectory[:, :first] = 1.0 / k
        for t in range(first + 1, steps + 1):
            if valid[t - 1]:
                stepped = np.maximum(beta * state + (1.0 - beta) * raw[t - 1], floor)
                state = np.where(due[t - 1][:, None], stepped, state)
            trajectory[:, t - 1] = state
        for w0 in np.unique(warmup):
            same = np.flatnonzero(warmup == w0)
            for b in range(0, same.size, _METRIC_BLOCK):  # blocks that stay in the cache
                sub = same[b:b + _METRIC_BLOCK]
                w = formulas.floor_renormalise(trajectory[sub, w0:], floor[sub][:, :, None])
                _metrics(out, chunk[sub], w, g[w0:], settings.floor[chunk[sub]], small)


def _held_filter(x: np.ndarray, update: np.ndarray, beta: float, start: float) -> np.ndarray:
    """The EMA ``s ← βs + (1−β)x`` on the ``update`` steps, held in between; ``(T, K)``."""
    steps, k = x.shape
    state = np.full((steps, k), start)
    where = np.flatnonzero(update)
    if where.size:
        y = lfilter([1.0 - beta], [1.0, -beta], x[where], axis=0,
                    zi=np.full((1, k), beta * start))[0]
        count = np.cumsum(update)
        has = count > 0
        state[has] = y[count[has] - 1]
    return state


def _metrics(out: dict, idx, w: np.ndarray, g: np.ndarray, floors, tasks) -> None:
    """Floor fraction, share statistics and log-weight spread of ``w`` ``(F, T, K)``, the
    post-warmup weights of ``F`` settings over the norms ``g`` ``(T, K)``; ``tasks``: the
    smallest- and the largest-norm task."""
    small, large = tasks
    k = g.shape[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        weighted = w * g[None]
        total = weighted[..., 0]
        lowest = w[..., 0]
        for i in range(1, k):  # unrolled over a short task axis (as formulas does)
            total = total + weighted[..., i]
            lowest = np.minimum(lowest, w[..., i])
        share = weighted[..., small] / total
    post = np.isfinite(share)
    count = post.sum(axis=1)
    c = np.maximum(count, 1)
    nan = np.where(count > 0, 1.0, np.nan)
    logw = np.log(w[..., small])
    logb = np.log(w[..., large])
    below = (lowest < np.asarray(floors)[:, None] * (1 - 1e-12)) & post
    share0 = np.where(post, share, 0.0)
    mean_lw = np.where(post, logw, 0.0).sum(axis=1) / c
    mean_lb = np.where(post, logb, 0.0).sum(axis=1) / c
    var = np.where(post, (logb - mean_lb[:, None]) ** 2, 0.0).sum(axis=1) / c
    out["floor"][idx] = below.sum(axis=1) / c * nan
    out["share"][idx] = share0.sum(axis=1) / c * nan
    out["log_share"][idx] = np.log(np.where(post, share, 1.0)).sum(axis=1) / c * nan
    out["logw_std"][idx] = np.sqrt(var) * nan
    out["logw_mean"][idx] = mean_lw * nan


def _inverse(g):
    from gaba_control.weighting import inverse_norm_weights

    return inverse_norm_weights(g)


def _softmax(x):
    from gaba_control.weighting._law import softmax  # the laws' own (torch is loaded lazily)

    return softmax(x)
