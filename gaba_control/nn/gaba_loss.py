"""GABA as a torch loss module: measure per-task gradient norms, weight, deliver."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

from gaba_control._validation import (
    check_beta,
    check_grad_norms,
    check_lambda_min,
    check_no_extra_kwargs,
    check_num_tasks,
    check_positive_int,
    check_simplex_rows,
    check_warmup,
)
from gaba_control.formulas import (
    _UNROLLED_TASKS,
    array_namespace,
    checked_shares,
    comparator_error,
    decimated_beta,
    ema_update,
    floor_renormalise,
    gate_is_open,
    measurement_is_valid,
    proportional_law,
    sensor_shares,
)

from ._inject import inject
from ._sensor import (
    as_loss_list,
    as_param_lists,
    as_representation,
    check_reaches_shared,
    exact_norms,
    shared_norms,
    task_gradients,
    untracked_leaves,
)

__all__ = ["GABALoss", "GABAStep"]

#: Sensors; "exact" and "naive" measure the true norms, the other two approximate them.
SENSORS = ("exact", "naive", "last_layer", "representation")
NONFINITE_POLICIES = ("skip", "zero", "raise", "propagate")
#: state_dict key of the configuration a state was saved with
CONFIG_KEY = "config"
#: state_dict key of an open accumulation window
WINDOW_KEY = "accumulation_window"
#: |Σ weights − 1| allowed for a ``weights=`` override.
WEIGHTS_SUM_TOL = 1e-6


@dataclass(frozen=True)
class GABAStep:
    """Every signal of one :class:`GABALoss` step, as detached tensors (no host sync).

    ``norms``, ``shares``, ``raw``, ``ema``, ``weights``, ``applied_weights``
    and ``losses`` have shape ``(K,)``; ``step`` is a long 0-d tensor
    (1-based), ``active``, ``measured`` and ``valid`` are bool 0-d tensors.
    ``measured`` is False on the steps a ``refresh_every > 1`` loop skips
    (``norms``, ``shares``, ``raw`` are NaN there and ``valid`` is False).
    ``shares`` and ``raw`` are NaN on an invalid step; ``losses`` is NaN for
    :meth:`GABALoss.update_from_norms`. ``weights`` is GABA's ``λ*``;
    ``applied_weights`` the weights the returned loss and gradient used
    (``λ*`` unless ``forward(..., weights=...)`` overrode them).
    """

    step: Tensor
    active: Tensor
    measured: Tensor
    valid: Tensor
    norms: Tensor
    shares: Tensor
    raw: Tensor
    ema: Tensor
    weights: Tensor
    applied_weights: Tensor
    losses: Tensor

    def to_python(self) -> dict:
        """The same signals as python ints/bools and float64 numpy arrays (synchronises)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name).detach().cpu()
            if f.name == "step":
                out[f.name] = int(value)
            elif value.dtype == torch.bool:
                out[f.name] = bool(value)
            else:
                out[f.name] = value.to(torch.float64).numpy()
        return out


@dataclass(frozen=True)
class _HostRecord:
    """A host-path step's signals, made a :class:`GABAStep` when ``last_step`` is first read.

    Building the eleven tensors of a :class:`GABAStep` on every step is part of
    what separates the exact sensor from its floor (``benchmarks/bench_sensors.py``),
    and a training loop reads them on a few steps at most; the numpy results of
    :func:`loop_update` are kept instead (fresh arrays: nothing writes to them).
    """

    step: int
    signals: tuple  # numpy active, valid, shares, raw, ema
    weights: Tensor  # λ*, as returned by the step
    norms: np.ndarray  # a copy of the reading
    losses: Tensor | None  # the loss values (any float dtype) or None

    def materialise(self) -> GABAStep:
        active, valid, shares, raw, ema = (torch.from_numpy(np.asarray(x)) for x in self.signals)
        losses = (torch.full_like(ema, float("nan")) if self.losses is None
                  else self.losses.to(dtype=ema.dtype, device=ema.device, copy=True))
        return GABAStep(
            step=torch.tensor(self.step, dtype=torch.long),
            active=active,
            measured=torch.ones((), dtype=torch.bool),
            valid=valid,
            norms=torch.from_numpy(self.norms),
            shares=shares,
            raw=raw,
            ema=ema,
            weights=self.weights,
            applied_weights=self.weights,
            losses=losses,
        )


class GABALoss(nn.Module):
    r"""Gradient-aware balanced adaptation of ``K`` task losses, as a loss module.

    Each call measures the per-task gradient norms ``g_i`` on the shared
    parameters and runs the GABA loop of :mod:`gaba_control.formulas` (the
    same functions as :class:`~gaba_control.controller.GABAController`):

    * step ``t ≤ W`` (counted from 1): ``λ* = 1/K``, EMA state untouched; the
      norms are still measured and recorded (``refresh_every = 1``);
    * step ``t > W``: ``λ_raw = 1/K + (1/K − g/Σg)/(K−1)``,
      ``λ̂ ← β λ̂ + (1−β) λ_raw``, ``λ* = max(λ̂, λ_min)/Σ max(λ̂, λ_min)``.

    It returns the combined loss ``Σ λ*_i L_i``; call ``.backward()`` on it and
    step the optimizer as usual.

    Parameters
    ----------
    num_tasks : int
        ``K ≥ 2``.
    beta : float
        EMA coefficient per step in ``[0, 1)``; default 0.99.
    warmup : int
        Gated steps ``W ≥ 0``; default 100.
    lambda_min : float
        Floor in ``[0, 1/K)``; default 0.05.
    sensor : {"exact", "naive", "last_layer", "representation"}
        How the norms are measured (backward passes per measured step):

        * ``"exact"`` (default, ``K``): :func:`torch.autograd.grad` of each
          loss over all ``params``; the combined gradient ``Σ λ*_i ∇L_i`` is
          formed from them and delivered by the returned tensor's backward,
          so no ``(K+1)``-th pass.
        * ``"naive"`` (``K + 1``): the norms from ``K`` gradients over
          ``shared_params`` only; the returned tensor is ``Σ λ*_i L_i`` with
          its graph. The reference the exact path is tested against.
        * ``"last_layer"`` (``K`` partial ``+ 1``): norms over the
          ``sensor_params`` given to :meth:`forward` (e.g. the last shared
          layer, as in GradNorm). **An approximation**: it measures another
          quantity than the shared-parameter norm and gives other weights.
        * ``"representation"`` (``K`` head-only ``+ 1``): norms of
          ``∂L_i/∂z`` for the shared representation ``z`` (backbone output)
          given to :meth:`forward` as ``representation=z``. **An
          approximation**, biased like ``last_layer`` (numbers below).

        Measured bias (``python -m benchmarks.bench_sensors --bias
        --bias-steps 600``: C-MAPSS FD001, MultiTaskCNN, GABA defaults, trained
        with the exact sensor): the RUL/health norm ratio read by
        ``last_layer`` is 0.12× the exact one and by ``representation``
        0.17× (medians over the steps), so their raw ``λ_RUL`` is ~9× and
        ~6× too large; ``λ*`` differed by at most 0.019 and 0.007 there only
        because the floor ``λ_min`` dominates both.
    refresh_every : int
        Read the sensor every ``N`` steps only (default 1: every step). The
        schedule and the per-refresh EMA coefficient ``β^N`` are those of
        :mod:`gaba_control.lti.decimated` (:func:`~gaba_control.lti.decimated.refresh_steps`,
        :func:`~gaba_control.formulas.decimated_beta`): refreshes at
        ``t = W+1, W+1+N, …``; nothing is measured during the warmup or
        between refreshes, where the step is one plain backward of
        ``Σ λ*_i L_i`` with the held ``λ*``. Average cost ``1 + (c−1)/N``
        backward passes for a sensor of cost ``c``; the time constant in
        steps is kept, the noise of ``λ`` grows as
        :func:`~gaba_control.lti.decimated.decimated_noise_gain`.
    nonfinite : {"skip", "zero", "raise", "propagate"}
        What a measured step does when a task's gradient norm is not finite
        (NaN or inf; for the exact sensor a non-finite gradient on *any*
        parameter counts). In every case the loop state is not touched by the
        bad measurement (the EMA and ``λ*`` hold; the step counter advances).
        ``"skip"`` (default): the exact sensor delivers *no* gradient, so
        ``.grad`` stays ``None`` after ``optimizer.zero_grad()`` (its default
        ``set_to_none=True``) and every torch optimizer leaves the parameters
        and its own state (momentum, Adam's moments and step count) untouched:
        the step is skipped without any check in the training loop (one host
        sync per step on an accelerator). ``"zero"`` (no host sync): an
        all-zero gradient; an optimizer with momentum still moves, so check
        ``last_step.valid`` before ``optimizer.step()``. ``"raise"``: raise
        ``FloatingPointError`` before the step counter moves (one host sync).
        ``"propagate"``: deliver the non-finite gradient as is, so that
        :class:`torch.amp.GradScaler` and ``clip_grad_norm_(...,
        error_if_nonfinite=True)`` see it (see Notes). The graph sensors always
        deliver their own backward unchanged.
    sync_norms : bool or None
        All-reduce the squared norms over the default process group so that
        ``λ*`` and the EMA are identical on every rank (one all-reduce of
        ``K`` floats per measured step). ``None`` (default): on exactly when
        :mod:`torch.distributed` is initialised with more than one rank.

    Attributes
    ----------
    ema : Tensor (K,)
        The EMA state ``λ̂`` (starts at ``1/K``).
    step : Tensor (), long
        Steps taken; warmup is counted in calls.
    last_norms, last_raw, last_weights : Tensor (K,)
        The latest measurement (NaN if none), raw weights (NaN if invalid or
        not measured) and output ``λ*``.
    last_step : GABAStep or None
        All signals of the latest step (see :meth:`telemetry`).

    Notes
    -----
    *Invalid measurements* (a NaN or ``+inf`` norm, or every norm zero) skip
    the EMA update, as in :func:`gaba_control.formulas.measurement_is_valid`;
    ``λ*`` holds. With all norms zero the gradients are finite and the
    combined gradient (with the held ``λ*``) is delivered normally.

    *Distributed*: with ``sync_norms`` each rank measures its local norms
    ``g_r`` and the loop reads ``√(mean_r g_r²)``, the quadratic mean of the
    per-rank norms. That is **not** the norm of the averaged gradient
    ``‖mean_r ∇L_r‖`` a single process would measure on the concatenated
    batch: it also contains the between-rank gradient noise, so it is at
    least as large (equal when every rank's gradient is the same). Every
    rank reads the same number, so ``λ*`` and the state are bit-identical
    across ranks. The gradient itself is delivered through ``backward()``,
    so DDP all-reduces it exactly once, as for a plain loss. Every rank must
    call the module the same number of times (the all-reduce is collective).

    *Mixed precision* with :class:`torch.amp.GradScaler`: pass the scaled
    losses and use ``nonfinite="propagate"``::

        gaba = GABALoss(K, nonfinite="propagate")
        with torch.autocast(device, dtype=torch.float16):
            losses = model_losses(x)
        loss = gaba([scaler.scale(l) for l in losses], model.parameters(), shared)
        optimizer.zero_grad(); loss.backward()
        scaler.step(optimizer); scaler.update()

    The shares are scale-invariant, and a power-of-two scale is exact in
    floating point, so ``λ*`` is bit-identical to the unscaled one, while the
    scale keeps float16 gradients from underflowing. On an overflow step the
    task gradients are non-finite: the loop holds its state and delivers the
    non-finite gradient, so the scaler skips ``optimizer.step()`` and lowers
    its scale; the two agree step by step. ``telemetry()["losses"]`` are the
    scaled losses. bfloat16 autocast needs no scaler.

    *Arithmetic*: per-parameter norms accumulate in float32, or float64 when
    a shared parameter is float64; the loop runs in the buffers' dtype,
    float64 unless converted (``.float()``, ``.to(dtype)``; devices without
    float64, such as MPS, need ``.float()``). The buffers never go below
    float32: a cast to float16 or bfloat16 (``.half()``, ``.bfloat16()``,
    ``.to(torch.float16)``, also of a parent module, as Lightning's
    ``bf16-true`` does) converts them to float32 instead, from their
    pre-cast values, so the weights keep summing to 1 and the EMA keeps moving.
    The weights are cast to each gradient's dtype when the gradients are
    combined.

    *Hooks*: post-accumulate-grad hooks and DDP's reducer hooks fire once per
    parameter, on the delivered gradient. Tensor hooks registered with
    ``Tensor.register_hook`` on a parameter also see each per-task gradient,
    as they do for any :func:`torch.autograd.grad` call.

    *Evaluation*: in ``eval()`` mode a call is not a step: it returns
    ``Σ λ*_i L_i`` with the current ``λ*`` (``last_weights``), measures
    nothing, leaves the state alone, and accepts losses without a graph (e.g.
    under ``torch.no_grad()``), so a GABALoss inside a model validates with the
    model.

    *Gradient accumulation*: with ``accumulation_steps=N`` one optimizer step
    is ``N`` calls (micro-batches) and the loop steps once per window: the
    warmup ``W``, ``β`` and the step counter count optimizer steps, ``λ*`` is
    constant over a window, and the norms are those of the *accumulated*
    per-task gradients ``‖Σ_m ∇L_{i,m}‖``, read after the window's last
    micro-batch. The first ``N − 1`` calls deliver no gradient and the last
    delivers the whole window's ``Σ_i λ*_i Σ_m ∇L_{i,m}``, so ``.grad`` after
    the window is what one step on the concatenated batch gives (scale every
    micro-batch's loss alike, e.g. by ``1/N``: the last one's scale is applied
    to the window). Memory: the ``K`` per-task gradient sums live across the
    window. Exact sensor, ``refresh_every=1`` only; an open window is part of
    ``state_dict`` (key ``accumulation_window``), so a checkpoint mid-window
    resumes exactly.

    *torch.compile*: compile the model, not the loss (``torch.compile(model)``
    is tested against eager gradients). ``torch.compile(GABALoss)`` also runs
    and gives the same step, with graph breaks where the loop reads its state
    on the host (the warmup and refresh schedule, the non-finite policy): the
    module's cost is its ``K`` backward passes, which compilation does not remove.

    *Not covered*: ``create_graph`` (higher-order gradients).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> _ = torch.manual_seed(0)
    >>> backbone, heads = nn.Linear(4, 8), nn.ModuleList([nn.Linear(8, 1), nn.Linear(8, 1)])
    >>> model = nn.ModuleList([backbone, heads])
    >>> gaba = GABALoss(2, warmup=1)
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> x, y = torch.randn(16, 4), torch.randn(16, 2)
    >>> for _ in range(3):
    ...     opt.zero_grad()  # before the forward: frees last step's .grad for the K gradients
    ...     z = backbone(x)
    ...     losses = [nn.functional.mse_loss(h(z)[:, 0], y[:, i]) for i, h in enumerate(heads)]
    ...     loss = gaba(losses, model.parameters(), backbone.parameters())
    ...     loss.backward()
    ...     opt.step()
    >>> t = gaba.telemetry()
    >>> t["step"], t["active"], t["valid"]
    (3, True, True)
    >>> bool(abs(t["weights"].sum() - 1.0) < 1e-6)
    True

    The representation sensor reads ``∂L_i/∂z`` instead (an approximation):

    >>> rep = GABALoss(2, warmup=0, sensor="representation")
    >>> z = backbone(x)
    >>> losses = [nn.functional.mse_loss(h(z)[:, 0], y[:, i]) for i, h in enumerate(heads)]
    >>> rep(losses, model.parameters(), backbone.parameters(), representation=z).backward()
    >>> bool(rep.telemetry()["valid"])
    True
    """

    def __init__(
        self,
        num_tasks: int = 2,
        *,
        beta: float = 0.99,
        warmup: int = 100,
        lambda_min: float = 0.05,
        sensor: str = "exact",
        refresh_every: int = 1,
        nonfinite: str = "skip",
        sync_norms: bool | None = None,
        accumulation_steps: int = 1,
        **kwargs,
    ):
        check_no_extra_kwargs(kwargs, "GABALoss")
        super().__init__()
        self.num_tasks = check_num_tasks(num_tasks)
        self.beta = check_beta(beta)
        self.warmup = check_warmup(warmup)
        self.lambda_min = check_lambda_min(lambda_min, self.num_tasks)
        self.sensor = _check_choice(sensor, SENSORS, "sensor")
        self.refresh_every = check_positive_int(refresh_every, "refresh_every")
        self.nonfinite = _check_choice(nonfinite, NONFINITE_POLICIES, "nonfinite")
        if sync_norms is not None and not isinstance(sync_norms, bool):
            raise TypeError(f"sync_norms must be True, False or None, got {sync_norms!r}")
        self.sync_norms = sync_norms
        self.accumulation_steps = check_positive_int(accumulation_steps, "accumulation_steps")
        if self.accumulation_steps > 1 and (self.sensor != "exact" or self.refresh_every != 1):
            raise ValueError(
                "accumulation_steps > 1 needs sensor='exact' and refresh_every=1, got "
                f"sensor={self.sensor!r}, refresh_every={self.refresh_every}")
        # the window's per-task gradient sums (exact sensor with accumulation_steps > 1)
        self._window: list[list[Tensor | None]] | None = None
        self._window_params: list[Tensor] | None = None
        self._micro = 0
        if self.accumulation_steps > 1:  # only then is the open window part of the state
            self.register_state_dict_post_hook(_save_window)
            self.register_load_state_dict_pre_hook(_load_window)
        k = self.num_tasks
        # float64 by default: the state is K numbers, so full precision is free and the loop
        # matches the numpy controller out of the box; .float()/.to() convert it.
        f64 = {"dtype": torch.float64}
        self.register_buffer("ema", torch.full((k,), 1.0 / k, **f64))
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        self.register_buffer("last_norms", torch.full((k,), float("nan"), **f64))
        self.register_buffer("last_raw", torch.full((k,), float("nan"), **f64))
        self.register_buffer("last_weights", torch.full((k,), 1.0 / k, **f64))
        self._last_step: GABAStep | _HostRecord | None = None
        # Host copy of ``step``: the refresh schedule is decided before any gradient work,
        # and reading the buffer would synchronise a GPU every step.
        self._host_step = 0
        self.register_state_dict_post_hook(_save_config)
        self.register_load_state_dict_pre_hook(_check_loaded)
        self.register_load_state_dict_post_hook(_sync_host_step)

    def extra_repr(self) -> str:
        text = (
            f"num_tasks={self.num_tasks}, beta={self.beta}, warmup={self.warmup}, "
            f"lambda_min={self.lambda_min}, sensor={self.sensor!r}, nonfinite={self.nonfinite!r}"
        )
        if self.refresh_every != 1:
            text += f", refresh_every={self.refresh_every}"
        if self.sync_norms is not None:
            text += f", sync_norms={self.sync_norms}"
        if self.accumulation_steps != 1:
            text += f", accumulation_steps={self.accumulation_steps}"
        return text

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        losses,
        params,
        shared_params,
        *,
        weights=None,
        sensor_params=None,
        representation: Tensor | None = None,
    ) -> Tensor:
        """Weight the task losses; return ``Σ λ_i L_i`` for ``.backward()``.

        Every call is one step of the loop (it measures when the schedule
        says so, advances the state and prepares the gradient). To weight
        losses without a step, e.g. for validation under ``torch.no_grad()``,
        use ``last_weights`` directly.

        Parameters
        ----------
        losses : sequence of K scalar tensors, or a 1-D tensor of K
            The task losses, each with its graph.
        params : iterable of tensors
            Every parameter that should receive gradient (e.g.
            ``model.parameters()``); generators are fine. Each must require grad.
        shared_params : iterable of tensors
            The subset of ``params`` the norms are measured on (the backbone).
        weights : sequence or Tensor (K,), optional
            Open-loop override: the returned loss and the delivered gradient
            use these weights instead of ``λ*``, while the loop still
            measures, advances its state and records its telemetry exactly
            as without them. Must be finite, ``≥ 0`` and sum to 1 within
            ``1e-6`` (checked on the host). Recorded as
            ``last_step.applied_weights``.
        sensor_params : iterable of tensors
            With ``sensor="last_layer"`` (and only then): the parameters the
            approximate norms are read on, a subset of ``params``.
        representation : Tensor
            With ``sensor="representation"`` (and only then): the shared
            representation ``z`` every loss was computed from.

        Returns
        -------
        Tensor
            0-d, value ``Σ λ_i L_i`` in the losses' dtype.

        Raises
        ------
        TypeError, ValueError
            For malformed arguments (see the messages); the state is untouched.
        FloatingPointError
            With ``nonfinite="raise"``, for a non-finite task gradient norm.

        Examples
        --------
        >>> import torch
        >>> w = torch.ones(3, requires_grad=True)
        >>> gaba = GABALoss(2, warmup=0)
        >>> losses = [w[0] * w[2], 10 * w[1] * w[2]]
        >>> out = gaba(losses, [w], [w], weights=[0.25, 0.75])
        >>> out.item(), gaba.telemetry()["applied_weights"].tolist()
        (7.75, [0.25, 0.75])
        """
        if not self.training:
            return self._evaluate(losses)
        losses = as_loss_list(losses, self.num_tasks)
        params, shared_index = as_param_lists(params, shared_params)
        applied = None if weights is None else self._checked_weights(weights)
        sensor_inputs = self._sensor_inputs(params, shared_index, sensor_params, representation)
        if not self._measures(self._host_step + 1):
            out = self._forward_unmeasured(losses, applied)
        elif self.accumulation_steps > 1:
            out = self._forward_accumulating(losses, params, shared_index, applied)
        elif self.sensor == "exact":
            out = self._forward_exact(losses, params, shared_index, applied)
        else:
            out = self._forward_graph(losses, sensor_inputs, applied)
        return out

    def _evaluate(self, losses) -> Tensor:
        """``eval()`` mode: weight with the current ``λ*``; no step, no gradient required."""
        losses = as_loss_list(losses, self.num_tasks, require_grad=False)
        return _weighted_sum(losses, self.last_weights)

    @property
    def last_step(self) -> GABAStep | None:
        """Every signal of the latest step (``None`` before the first; see :meth:`telemetry`)."""
        record = self._last_step
        if isinstance(record, _HostRecord):
            record = self._last_step = record.materialise()
        return record

    @last_step.setter
    def last_step(self, value: GABAStep | None) -> None:
        self._last_step = value

    def _apply(self, fn, recurse=True):
        # Module.half()/.bfloat16()/.to(dtype) go through _apply: keep the loop state at
        # float32 or wider, converted from the pre-cast values (not from the rounded ones).
        before = {name: buf for name, buf in self._buffers.items()
                  if buf is not None and buf.is_floating_point()}
        out = super()._apply(fn, recurse)
        for name, old in before.items():
            new = self._buffers[name]
            if new.is_floating_point() and torch.finfo(new.dtype).bits < 32:
                self._buffers[name] = old.to(device=new.device, dtype=torch.float32)
        return out

    def _sensor_inputs(self, params, shared_index, sensor_params, representation):
        """The tensors a graph sensor differentiates with respect to (checked up front)."""
        if self.sensor != "last_layer" and sensor_params is not None:
            raise ValueError(
                f"sensor_params is only used with sensor='last_layer' (sensor={self.sensor!r})"
            )
        if self.sensor != "representation" and representation is not None:
            raise ValueError(
                f"representation is only used with sensor='representation' (sensor={self.sensor!r})"
            )
        if self.sensor == "last_layer":
            if sensor_params is None:
                raise ValueError("sensor='last_layer' needs sensor_params= (e.g. the last layer)")
            _, index = as_param_lists(params, sensor_params)
            return [params[j] for j in index]
        if self.sensor == "representation":
            return [as_representation(representation)]
        if self.sensor == "exact":
            return None  # the exact sensor differentiates params itself
        return [params[j] for j in shared_index]

    def _check_params_cover(self, losses, params) -> None:
        """On the first step: every trainable tensor the losses use must be in ``params``."""
        if self._host_step > 0:
            return
        missing = untracked_leaves(losses, params)
        if missing:
            shapes = ", ".join(str(tuple(t.shape)) for t in missing[:3])
            raise ValueError(
                f"the losses depend on {len(missing)} trainable tensor(s) not in params (shapes "
                f"{shapes}{', …' if len(missing) > 3 else ''}): they would receive no gradient; "
                "pass every trained parameter, e.g. model.parameters(), or freeze them "
                "(requires_grad=False)")

    def _forward_exact(self, losses, params, shared_index, applied) -> Tensor:
        self._check_params_cover(losses, params)
        task_grads, norms = self._read_exact(losses, params, shared_index)
        self._observe_gradients(task_grads, shared_index)
        norms = self._synced(norms)
        loss_values = _detached_values(losses)
        used = self._step_with(norms, loss_values, applied)
        return inject(used, loss_values, task_grads, params, self._finite(norms),
                      skip=self.nonfinite == "skip")

    def _read_exact(self, losses, params, shared_index) -> tuple[list, Tensor]:
        """The exact sensor: every task's gradients on ``params`` and its norms on the shared
        ones (``benchmarks/bench_sensors.py --ablate`` times a step without the norms)."""
        task_grads = task_gradients(losses, params, retain_last=False)
        check_reaches_shared(task_grads, shared_index)
        # A non-finite gradient outside the shared parameters makes the step invalid too
        # (NaN norm), so the loop agrees with a GradScaler, which inspects every gradient.
        return task_grads, exact_norms(task_grads, shared_index, device=self.ema.device,
                                       dtype=self.ema.dtype)

    def _forward_accumulating(self, losses, params, shared_index, applied) -> Tensor:
        """A micro-batch of an accumulation window (see ``accumulation_steps``).

        The per-task gradients are summed over the window; the first ``N − 1``
        micro-batches deliver no gradient, the last one measures the norms of
        the sums, steps the loop once and delivers ``Σ λ*_i Σ_m ∇L_{i,m}``:
        what one step on the concatenated batch would deliver.
        """
        if self._window_params is not None and (
                len(params) != len(self._window_params)
                or any(a is not b for a, b in zip(params, self._window_params, strict=True))):
            raise ValueError("params changed inside an accumulation window; pass the same "
                             "parameters to every micro-batch of a window")
        self._check_params_cover(losses, params)
        task_grads = task_gradients(losses, params, retain_last=False)
        check_reaches_shared(task_grads, shared_index)
        if self._window is None:
            self._window = [[None if g is None else g.detach().clone() for g in row]
                            for row in task_grads]
            self._window_params = list(params)
        else:
            for total, row in zip(self._window, task_grads, strict=True):
                for j, g in enumerate(row):
                    if g is not None:
                        total[j] = g.detach().clone() if total[j] is None else total[j].add_(g)
        self._micro += 1
        loss_values = _detached_values(losses)
        if self._micro < self.accumulation_steps:
            held = self.last_weights if applied is None else applied
            none = torch.zeros((), dtype=torch.bool, device=self.ema.device)
            return inject(held, loss_values, [[None] * len(params)], params, none, skip=True)
        sums, self._window, self._window_params, self._micro = self._window, None, None, 0
        self._observe_gradients(sums, shared_index)
        norms = self._synced(exact_norms(sums, shared_index, device=self.ema.device,
                                         dtype=self.ema.dtype))
        used = self._step_with(norms, loss_values, applied)
        return inject(used, loss_values, sums, params, self._finite(norms),
                      skip=self.nonfinite == "skip")

    def _finite(self, norms: Tensor) -> Tensor | bool | None:
        """Whether the step's gradients may be delivered (None: ``nonfinite="propagate"``).

        A norm is NaN for a non-finite gradient anywhere (:func:`exact_norms`).
        On the host a Python bool (no tensor operation); on an accelerator a 0-d
        tensor, so the host does not wait for the device.
        """
        if self.nonfinite == "propagate":
            return None
        if norms.is_cpu:
            return all(map(math.isfinite, norms.tolist()))
        return torch.all(torch.isfinite(norms))

    def _observe_gradients(self, task_grads, shared_index) -> None:
        """Hook: the per-task gradients of a measured step (subclasses read more than norms)."""

    def _forward_graph(self, losses, inputs, applied) -> Tensor:
        task_grads = task_gradients(losses, inputs, retain_last=True)
        what = {"representation": "representation", "last_layer": "any of sensor_params"}
        check_reaches_shared(task_grads, range(len(inputs)),
                             what=what.get(self.sensor, "any of shared_params"))
        norms = shared_norms(
            task_grads, range(len(inputs)), device=self.ema.device, dtype=self.ema.dtype
        )
        used = self._step_with(self._synced(norms), losses, applied)
        return _weighted_sum(losses, used)

    def _forward_unmeasured(self, losses, applied) -> Tensor:
        return _weighted_sum(losses, self._step_with(None, losses, applied))

    def _step_with(self, norms: Tensor | None, losses, applied) -> Tensor:
        """Advance the loop; return (and record) the weights the gradient is formed with."""
        gaba_weights = self._advance(norms, losses)
        if applied is None:
            return gaba_weights  # last_step.applied_weights is λ* already
        self.last_step = replace(self.last_step, applied_weights=applied.detach().clone())
        return applied

    def _synced(self, norms: Tensor) -> Tensor:
        if not self._sync_active():
            return norms
        squared = norms * norms
        dist.all_reduce(squared, op=dist.ReduceOp.SUM)
        return torch.sqrt(squared / dist.get_world_size())

    def _sync_active(self) -> bool:
        running = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
        return running if self.sync_norms is None else (self.sync_norms and running)

    def reads_sensor(self, step: int) -> bool:
        """Whether the sensor is read at 1-based ``step`` (``lti.decimated.refresh_steps``).

        Every step for ``refresh_every = 1``; otherwise the refreshes only, so a
        training loop can tell a step that measured nothing (NaN norms by
        design) from one whose measurement was not finite.

        >>> loss = GABALoss(2, warmup=3, refresh_every=2)
        >>> [s for s in range(1, 9) if loss.reads_sensor(s)]
        [4, 6, 8]
        """
        return self._measures(step)

    def _measures(self, step: int) -> bool:
        if self.refresh_every == 1:
            return True  # the plain loop measures every step, the warmup included
        return bool(gate_is_open(step, self.warmup)) and (
            (step - self.warmup - 1) % self.refresh_every == 0
        )

    def _checked_weights(self, weights) -> Tensor:
        if isinstance(weights, Tensor):
            w = weights.detach()
            w = w if w.is_floating_point() else w.to(torch.float64)
        else:  # python floats: keep their float64 value (as_tensor would round to float32)
            w = torch.as_tensor(weights, dtype=torch.float64)
        if w.shape != (self.num_tasks,):
            raise ValueError(
                f"weights must have shape ({self.num_tasks},), got shape {tuple(w.shape)}"
            )
        host = w.cpu().to(torch.float64)
        if not bool(torch.all(torch.isfinite(host))) or bool(torch.any(host < 0)):
            raise ValueError(f"weights must be finite and >= 0, got {host.tolist()}")
        if abs(float(host.sum()) - 1.0) > WEIGHTS_SUM_TOL:
            raise ValueError(
                f"weights must sum to 1 within {WEIGHTS_SUM_TOL:g}, got sum {float(host.sum())!r}"
            )
        return w.to(device=self.ema.device, dtype=self.ema.dtype)

    # ------------------------------------------------------------------ the loop
    def _advance(self, norms: Tensor | None, losses=None) -> Tensor:
        """One step of the loop from measured norms ``(K,)``; updates the buffers in place.

        Returns ``λ*``. The row is read only on a measured step (every step
        for ``refresh_every = 1``); otherwise the state holds.
        """
        if not self._measures(self._host_step + 1):
            return self._hold(losses)
        if self.nonfinite == "raise" and not bool(torch.all(torch.isfinite(norms))):
            raise FloatingPointError(
                f"non-finite task gradient norm(s) {norms.tolist()} on the shared parameters "
                f"(the exact sensor also reports NaN for a non-finite gradient elsewhere) "
                f"at step {self._host_step + 1}; state left unchanged"
            )
        self.step.add_(1)
        self._host_step += 1
        settings = {"num_tasks": self.num_tasks, "warmup": self.warmup,
                    "beta": decimated_beta(self.beta, self.refresh_every),
                    "lambda_min": self.lambda_min}
        if _on_host(self.ema, norms):
            # K numbers: numpy's per-operation cost is a fraction of torch's (the same
            # formulas, the same float32/float64 arithmetic: bit-identical, tested)
            reading = norms.numpy()
            with np.errstate(all="ignore"):  # IEEE results as torch's, which never warns
                signals = loop_update(self.ema.numpy(), reading, self._host_step, **settings)
            raw, ema, weights = (torch.from_numpy(np.asarray(x)) for x in signals[3:])
            self._store_step(norms, raw, ema, weights)
            self._last_step = _HostRecord(self._host_step, signals[:5], weights, reading.copy(),
                                          self._loss_values(losses, defer=True))
            return weights
        with torch.no_grad():
            return self._advance_on_device(norms, losses, settings)

    def _advance_on_device(self, norms: Tensor, losses, settings: dict) -> Tensor:
        active, valid, shares, raw, ema, weights = loop_update(self.ema, norms, self.step,
                                                               **settings)
        self._store_step(norms, raw, ema, weights)
        self.last_step = GABAStep(
            step=self.step.clone(),
            active=active,
            measured=torch.ones((), dtype=torch.bool, device=ema.device),
            valid=valid,
            norms=norms.clone(),
            shares=shares,
            raw=raw,
            ema=ema,
            weights=weights,
            applied_weights=weights,
            losses=self._loss_values(losses),
        )
        return weights

    def _store_step(self, norms: Tensor, raw: Tensor, ema: Tensor, weights: Tensor) -> None:
        self.ema.copy_(ema)
        self.last_norms.copy_(norms)
        self.last_raw.copy_(raw)
        self.last_weights.copy_(weights)

    def _hold(self, losses=None) -> Tensor:
        """A step between refreshes (``refresh_every > 1``): the sensor is not read.

        Equivalent to :meth:`_advance` on an all-NaN row (an invalid step: the
        EMA holds, so ``λ*`` is the saturated state, or ``1/K`` while gated),
        without the sensor → P-law → EMA arithmetic whose result is known. The
        first step after the warmup is always a refresh, so the gate never
        opens on a held step.
        """
        self.step.add_(1)
        self._host_step += 1
        nan = torch.full_like(self.ema, float("nan"))
        if gate_is_open(self._host_step, self.warmup):
            weights = floor_renormalise(self.ema, self.lambda_min)
        else:
            weights = torch.full_like(self.ema, 1.0 / self.num_tasks)
        self.last_norms.copy_(nan)
        self.last_raw.copy_(nan)
        self.last_weights.copy_(weights)
        no = torch.zeros((), dtype=torch.bool, device=nan.device)
        self.last_step = GABAStep(
            step=self.step.clone(),
            active=gate_is_open(self.step, self.warmup),
            measured=no,
            valid=no,
            norms=nan,
            shares=nan,
            raw=nan,
            ema=self.ema.clone(),
            weights=weights,
            applied_weights=weights,
            losses=self._loss_values(losses),
        )
        return weights

    def _loss_values(self, losses, *, defer: bool = False) -> Tensor | None:
        """The step's loss values in the state's dtype (NaN without losses).

        ``losses``: the K loss tensors, or their detached values as one ``(K,)``
        tensor. ``defer``: a values tensor (or None) is returned as it is, for a
        :class:`_HostRecord` to convert when it is read.
        """
        if isinstance(losses, Tensor):
            if defer:
                return losses.detach() if losses.requires_grad else losses
            return losses.detach().to(self.ema, copy=True)
        if losses is None:
            return None if defer else torch.full_like(self.ema, float("nan"))
        return torch.stack([loss.detach().to(self.ema) for loss in losses])

    def update_from_norms(self, grad_norms) -> Tensor:
        """Run the loop on given gradient norms, as :meth:`forward` would after measuring them.

        For replaying recorded norms and for parity checks against
        :class:`~gaba_control.controller.GABAController` and
        :func:`~gaba_control.lti.decimated.simulate_decimated`. State advances
        exactly as in :meth:`forward`; with ``refresh_every > 1`` the rows of
        the steps that are not refreshes are ignored, as the sensor would not
        have been read there. The norms are used as given: no all-reduce
        (``sync_norms`` applies to :meth:`forward` only).

        Parameters
        ----------
        grad_norms : array-like or Tensor, shape (K,) or (T, K)
            Non-negative norms; NaN/inf rows are invalid steps.

        Returns
        -------
        Tensor
            ``λ*`` after each step, shape ``(K,)`` or ``(T, K)``, in the buffers' dtype.

        Examples
        --------
        >>> gaba = GABALoss(2, warmup=1)
        >>> gaba.update_from_norms([[5.0, 0.01], [5.0, 0.01]]).double().numpy().round(5)
        array([[0.5    , 0.5    ],
               [0.49502, 0.50498]])
        """
        if isinstance(grad_norms, Tensor):
            grad_norms = grad_norms.detach().cpu().to(torch.float64).numpy()
        g = check_grad_norms(grad_norms, self.num_tasks)
        if g.ndim > 2:
            raise ValueError(f"grad_norms must have shape (K,) or (T, K), got shape {g.shape}")
        rows = torch.as_tensor(g).to(device=self.ema.device, dtype=self.ema.dtype)
        if rows.dim() == 1:
            return self._advance(rows).clone()
        if rows.shape[0] == 0:
            return rows.clone()
        return torch.stack([self._advance(row).clone() for row in rows])

    def telemetry(self) -> dict:
        """The latest step's signals as python/numpy values (synchronises the device).

        Keys: ``step``, ``active``, ``measured``, ``valid``, ``norms``,
        ``shares``, ``raw``, ``ema``, ``weights``, ``applied_weights``,
        ``losses``. Raises ``RuntimeError`` before the first step. After
        :meth:`load_state_dict` of a state that has taken steps, the signals
        come from the loaded buffers (``losses`` and ``applied_weights`` are
        not part of the state: NaN and ``λ*``).
        """
        if self.last_step is None:
            if int(self.step) == 0:
                raise RuntimeError(
                    "GABALoss has not taken a step yet; call it (or update_from_norms)")
            return self._step_from_buffers().to_python()
        return self.last_step.to_python()

    def _step_from_buffers(self) -> GABAStep:
        norms = self.last_norms.clone()
        measured = torch.all(torch.isfinite(norms))
        valid = measured & measurement_is_valid(norms)
        return GABAStep(
            step=self.step.clone(), active=gate_is_open(self.step, self.warmup),
            measured=measured, valid=valid, norms=norms,
            shares=torch.where(valid, sensor_shares(norms), float("nan")),
            raw=self.last_raw.clone(), ema=self.ema.clone(), weights=self.last_weights.clone(),
            applied_weights=self.last_weights.clone(),
            losses=torch.full_like(self.ema, float("nan")))

    @torch.no_grad()
    def reset(self) -> None:
        """Back to step 0 with the EMA and weights at ``1/K``."""
        self.ema.fill_(1.0 / self.num_tasks)
        self.step.zero_()
        self._host_step = 0
        self.last_norms.fill_(float("nan"))
        self.last_raw.fill_(float("nan"))
        self.last_weights.fill_(1.0 / self.num_tasks)
        self.last_step = None
        self._window, self._window_params, self._micro = None, None, 0


def _config_vector(module: GABALoss) -> Tensor:
    return torch.tensor([module.num_tasks, module.beta, module.warmup, module.lambda_min,
                         module.refresh_every, module.accumulation_steps], dtype=torch.float64)


_CONFIG_NAMES = ("num_tasks", "beta", "warmup", "lambda_min", "refresh_every",
                 "accumulation_steps")


def _save_config(module: GABALoss, state_dict, prefix, local_metadata) -> None:
    state_dict[prefix + CONFIG_KEY] = _config_vector(module)


def _check_loaded(module: GABALoss, state_dict, prefix, local_metadata, strict, missing_keys,
                  unexpected_keys, error_msgs) -> None:
    """Refuse a state that this module could not have produced, before anything is copied.

    The checks are those a constructed module satisfies: the configuration it
    was saved with (when recorded), a step ``≥ 0``, an EMA and weights that
    are finite and on the simplex, norms that are NaN or ``≥ 0``.
    """
    k = module.num_tasks
    config = state_dict.pop(prefix + CONFIG_KEY, None)
    if config is not None:
        saved = torch.as_tensor(config, dtype=torch.float64).reshape(-1)
        ours = _config_vector(module)
        for name, a, b in zip(_CONFIG_NAMES, saved.tolist(), ours.tolist(), strict=False):
            if not math.isclose(a, b, rel_tol=1e-6, abs_tol=0.0):
                raise ValueError(f"state was saved with {name}={a:g}, this GABALoss has "
                                 f"{name}={b:g}")

    def get(name):
        value = state_dict.get(prefix + name)
        return None if value is None else torch.as_tensor(value).detach().cpu()

    step = get("step")
    if step is not None and (step.dim() != 0 or step.is_floating_point()
                             or not 0 <= int(step) <= 2**62):
        raise ValueError(f"state['step'] must be a 0-d integer in [0, 2^62], got {step!r}")
    for name in ("ema", "last_weights"):
        value = get(name)
        if value is not None:
            if value.shape != (k,):
                raise ValueError(f"state['{name}'] must have shape ({k},), got "
                                 f"{tuple(value.shape)}")
            check_simplex_rows(value.to(torch.float64).numpy(), f"state['{name}']", k)
    norms = get("last_norms")
    if norms is not None and (norms.shape != (k,) or bool(torch.any(norms < 0))):
        raise ValueError(f"state['last_norms'] must be {k} norms (>= 0, or NaN), got "
                         f"{norms.tolist()}")


def _save_window(module: GABALoss, state_dict, prefix, local_metadata) -> None:
    state_dict[prefix + WINDOW_KEY] = {"micro": module._micro, "window": module._window}


def _load_window(module: GABALoss, state_dict, prefix, local_metadata, strict, missing_keys,
                 unexpected_keys, error_msgs) -> None:
    state = state_dict.pop(prefix + WINDOW_KEY, None)
    if state is None:
        if strict:
            missing_keys.append(prefix + WINDOW_KEY)
        return
    if not isinstance(state, dict) or set(state) != {"micro", "window"}:
        raise ValueError(f"{WINDOW_KEY} must be a dict with 'micro' and 'window'")
    micro = state["micro"]
    if not isinstance(micro, int) or not 0 <= micro < module.accumulation_steps:
        raise ValueError(f"{WINDOW_KEY} micro must be an int in [0, accumulation_steps="
                         f"{module.accumulation_steps}), got {micro!r}")
    if (micro == 0) != (state["window"] is None):
        raise ValueError(f"{WINDOW_KEY}: an open window needs its gradient sums")
    module._micro, module._window = micro, state["window"]
    module._window_params = None  # the next micro-batch's params continue the window


def _sync_host_step(module: GABALoss, incompatible_keys) -> None:
    module._host_step = int(module.step)


def loop_update(ema, norms, step, *, num_tasks: int, beta: float, warmup: int,
                lambda_min: float):
    """One measured step of the loop on arrays of one namespace (numpy or torch).

    Returns ``(active, valid, shares, raw, ema, weights)`` for 1-based ``step``:
    the gate, the validity of the row ``norms``, the sensor's shares, the
    P-law's raw weights, the EMA after the step (it holds on an invalid or
    gated step) and ``λ*`` (``1/K`` while gated). :class:`GABALoss` runs it on
    the host through numpy views of its CPU buffers, on torch tensors
    elsewhere; the blocks are those of :mod:`gaba_control.formulas`.
    """
    xp = array_namespace(ema)
    active = gate_is_open(step, warmup)
    valid, shares = checked_shares(norms)
    raw = proportional_law(comparator_error(shares, num_tasks), num_tasks)
    if not isinstance(active, bool):  # a step tensor: both branches, selected elementwise
        ema = xp.where(active & valid, ema_update(ema, raw, beta), ema)
        uniform = xp.full_like(ema, 1.0 / num_tasks)
        return active, valid, shares, raw, ema, xp.where(
            active, floor_renormalise(ema, lambda_min), uniform)
    # a host step count: the gate is known, so only its branch is computed (the same values)
    if active:
        ema = xp.where(valid, ema_update(ema, raw, beta), ema)
        return active, valid, shares, raw, ema, floor_renormalise(ema, lambda_min)
    uniform = xp.full_like(ema, 1.0 / num_tasks)
    return active, valid, shares, raw, xp.asarray(ema, copy=True), uniform


def _on_host(ema: Tensor, norms: Tensor) -> bool:
    """Whether the loop's arithmetic can run on numpy views of these tensors, bit for bit.

    Up to ``_UNROLLED_TASKS`` tasks the formulas sum and take maxima over the
    task axis in a fixed order; beyond, numpy's pairwise and torch's
    vectorised reductions may round differently, so the tensors stay torch's.
    """
    return (ema.shape[-1] <= _UNROLLED_TASKS
            and ema.is_cpu and norms.is_cpu
            and ema.dtype == norms.dtype and ema.dtype in (torch.float32, torch.float64)
            and not norms.requires_grad)


def _weighted_sum(losses, weights: Tensor) -> Tensor:
    w = weights.to(_loss_dtype(losses)).to(losses[0].device)
    return sum(w[i] * loss for i, loss in enumerate(losses))


def _check_choice(value, choices: tuple[str, ...], name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be one of {choices}, got {type(value).__name__}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def _detached_values(losses) -> Tensor:
    """The K loss values, detached, as one ``(K,)`` tensor in their promoted dtype.

    Every float promotion is exact, so converting these to the state's dtype gives
    what converting each loss would.
    """
    dtype = _loss_dtype(losses)
    if all(loss.dtype == dtype for loss in losses):
        return torch.stack([loss.detach() for loss in losses])
    return torch.stack([loss.detach().to(dtype) for loss in losses])


def _loss_dtype(losses) -> torch.dtype:
    dtype = losses[0].dtype
    for loss in losses[1:]:
        dtype = torch.promote_types(dtype, loss.dtype)
    return dtype
