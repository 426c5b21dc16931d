"""GABA as a torch loss module: measure per-task gradient norms, weight, deliver."""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import Tensor, nn

from gaba_control._validation import (
    check_beta,
    check_grad_norms,
    check_lambda_min,
    check_no_extra_kwargs,
    check_num_tasks,
    check_warmup,
)
from gaba_control.formulas import (
    comparator_error,
    ema_update,
    floor_renormalise,
    gate_is_open,
    measurement_is_valid,
    proportional_law,
    sensor_shares,
)

from ._inject import combine_gradients, inject
from ._sensor import (
    as_loss_list,
    as_param_lists,
    check_reaches_shared,
    shared_norms,
    task_gradients,
)

__all__ = ["GABALoss", "GABAStep"]

SENSORS = ("exact", "naive")
NONFINITE_POLICIES = ("zero", "raise")


@dataclass(frozen=True)
class GABAStep:
    """Every signal of one :class:`GABALoss` step, as detached tensors (no host sync).

    ``norms``, ``shares``, ``raw``, ``ema``, ``weights`` and ``losses`` have
    shape ``(K,)``; ``step`` is a long 0-d tensor (1-based), ``active`` and
    ``valid`` are bool 0-d tensors. ``shares`` and ``raw`` are NaN on an
    invalid step; ``losses`` is NaN for :meth:`GABALoss.update_from_norms`.
    """

    step: Tensor
    active: Tensor
    valid: Tensor
    norms: Tensor
    shares: Tensor
    raw: Tensor
    ema: Tensor
    weights: Tensor
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


class GABALoss(nn.Module):
    r"""Gradient-aware balanced adaptation of ``K`` task losses, as a loss module.

    Each call measures the per-task gradient norms ``g_i`` on the shared
    parameters and runs the GABA loop of :mod:`gaba_control.formulas` (the
    same functions as :class:`~gaba_control.controller.GABAController`):

    * step ``t ≤ W`` (counted from 1): ``λ* = 1/K``, EMA state untouched; the
      norms are still measured and recorded;
    * step ``t > W``: ``λ_raw = 1/K + (1/K − g/Σg)/(K−1)``,
      ``λ̂ ← β λ̂ + (1−β) λ_raw``, ``λ* = max(λ̂, λ_min)/Σ max(λ̂, λ_min)``.

    It returns the combined loss ``Σ λ*_i L_i``; call ``.backward()`` on it and
    step the optimizer as usual.

    Parameters
    ----------
    num_tasks : int
        ``K ≥ 2``.
    beta : float
        EMA coefficient in ``[0, 1)``; default 0.99.
    warmup : int
        Gated steps ``W ≥ 0``; default 100.
    lambda_min : float
        Floor in ``[0, 1/K)``; default 0.05.
    sensor : {"exact", "naive"}
        ``"exact"`` (default): ``K`` calls of :func:`torch.autograd.grad` over
        all ``params``; the combined gradient ``Σ λ*_i ∇L_i`` is formed from
        them and delivered by the returned tensor's backward, so training
        costs ``K`` backward passes, not ``K + 1``. ``"naive"``: the norms come
        from ``K`` calls over ``shared_params`` only, and the returned tensor
        is ``Σ λ*_i L_i`` with its graph, so ``.backward()`` is a ``(K+1)``-th
        pass; kept as the reference the exact path is tested against.
    nonfinite : {"zero", "raise"}
        What a step does when a task's gradient on the shared parameters is
        not finite (NaN or inf norm). Either way the loop state is not
        touched by the bad measurement (the EMA and ``λ*`` hold). ``"zero"``
        (default, no host sync): the step counts, and the exact sensor
        delivers an all-zero gradient to every parameter, so no NaN reaches
        ``.grad``; check ``last_step.valid`` to skip ``optimizer.step()``
        (with momentum optimizers a zero gradient still moves the
        parameters). ``"raise"``: raise ``FloatingPointError`` before the
        step counter moves (one host sync per step). The naive sensor
        delivers its own backward unchanged, non-finite values included.

    Attributes
    ----------
    ema : Tensor (K,)
        The EMA state ``λ̂`` (starts at ``1/K``).
    step : Tensor (), long
        Steps taken; warmup is counted in calls.
    last_norms, last_raw, last_weights : Tensor (K,)
        The latest measurement, raw weights (NaN if invalid) and output ``λ*``.
    last_step : GABAStep or None
        All signals of the latest step (see :meth:`telemetry`).

    Notes
    -----
    *Invalid measurements* (a NaN or ``+inf`` norm, or every norm zero) skip
    the EMA update, as in :func:`gaba_control.formulas.measurement_is_valid`;
    ``λ*`` holds. With all norms zero the gradients are finite and the
    combined gradient (with the held ``λ*``) is delivered normally.

    *Arithmetic*: per-parameter norms accumulate in float32, or float64 when
    a shared parameter is float64; the loop runs in the buffers' dtype,
    float64 unless converted (``.float()``, ``.to(dtype)``; devices without
    float64, such as MPS, need ``.float()``). The weights are cast to each
    gradient's dtype when the gradients are combined.

    *Hooks*: post-accumulate-grad hooks and DDP's reducer hooks fire once per
    parameter, on the delivered gradient. Tensor hooks registered with
    ``Tensor.register_hook`` on a parameter also see each per-task gradient,
    as they do for any :func:`torch.autograd.grad` call.

    *Not covered*: ``create_graph`` (higher-order gradients) and AMP float16
    with a ``GradScaler``: the norms are measured on the unscaled losses,
    whose float16 gradients may underflow (bfloat16 is fine). Under DDP each
    rank measures its local norms, so ``λ*`` can differ between ranks
    unless the norms are all-reduced; the gradient itself is delivered
    through ``backward()``, so DDP averages it as usual.

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
    ...     z = backbone(x)
    ...     losses = [nn.functional.mse_loss(h(z)[:, 0], y[:, i]) for i, h in enumerate(heads)]
    ...     loss = gaba(losses, model.parameters(), backbone.parameters())
    ...     opt.zero_grad()
    ...     loss.backward()
    ...     opt.step()
    >>> t = gaba.telemetry()
    >>> t["step"], t["active"], t["valid"]
    (3, True, True)
    >>> bool(abs(t["weights"].sum() - 1.0) < 1e-6)
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
        nonfinite: str = "zero",
        **kwargs,
    ):
        check_no_extra_kwargs(kwargs, "GABALoss")
        super().__init__()
        self.num_tasks = check_num_tasks(num_tasks)
        self.beta = check_beta(beta)
        self.warmup = check_warmup(warmup)
        self.lambda_min = check_lambda_min(lambda_min, self.num_tasks)
        self.sensor = _check_choice(sensor, SENSORS, "sensor")
        self.nonfinite = _check_choice(nonfinite, NONFINITE_POLICIES, "nonfinite")
        k = self.num_tasks
        # float64 by default: the state is K numbers, so full precision is free and the loop
        # matches the numpy controller out of the box; .float()/.to() convert it.
        f64 = {"dtype": torch.float64}
        self.register_buffer("ema", torch.full((k,), 1.0 / k, **f64))
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        self.register_buffer("last_norms", torch.full((k,), float("nan"), **f64))
        self.register_buffer("last_raw", torch.full((k,), float("nan"), **f64))
        self.register_buffer("last_weights", torch.full((k,), 1.0 / k, **f64))
        self.last_step: GABAStep | None = None

    def extra_repr(self) -> str:
        return (
            f"num_tasks={self.num_tasks}, beta={self.beta}, warmup={self.warmup}, "
            f"lambda_min={self.lambda_min}, sensor={self.sensor!r}, nonfinite={self.nonfinite!r}"
        )

    def forward(self, losses, params, shared_params) -> Tensor:
        """Weight the task losses; return ``Σ λ*_i L_i`` for ``.backward()``.

        Every call is one step of the loop (it measures, advances the state
        and prepares the gradient). To weight losses without a step, e.g. for
        validation under ``torch.no_grad()``, use ``last_weights`` directly.

        Parameters
        ----------
        losses : sequence of K scalar tensors, or a 1-D tensor of K
            The task losses, each with its graph.
        params : iterable of tensors
            Every parameter that should receive gradient (e.g.
            ``model.parameters()``); generators are fine. Each must require grad.
        shared_params : iterable of tensors
            The subset of ``params`` the norms are measured on (the backbone).

        Returns
        -------
        Tensor
            0-d, value ``Σ λ*_i L_i`` in the losses' dtype.

        Raises
        ------
        TypeError, ValueError
            For malformed arguments (see the messages); the state is untouched.
        FloatingPointError
            With ``nonfinite="raise"``, for a non-finite task gradient norm.
        """
        losses = as_loss_list(losses, self.num_tasks)
        params, shared_index = as_param_lists(params, shared_params)
        if self.sensor == "exact":
            return self._forward_exact(losses, params, shared_index)
        return self._forward_naive(losses, [params[j] for j in shared_index])

    def _forward_exact(self, losses, params, shared_index) -> Tensor:
        task_grads = task_gradients(losses, params, retain_last=False)
        check_reaches_shared(task_grads, shared_index)
        norms = shared_norms(task_grads, shared_index, device=self.ema.device, dtype=self.ema.dtype)
        weights = self._advance(norms, losses)
        finite = torch.all(torch.isfinite(norms))
        combined = combine_gradients(task_grads, weights, finite)
        value_dtype = _loss_dtype(losses)
        return inject(
            weights.to(value_dtype).to(losses[0].device),
            torch.stack([loss.detach().to(value_dtype) for loss in losses]),
            combined,
            params,
        )

    def _forward_naive(self, losses, shared) -> Tensor:
        task_grads = task_gradients(losses, shared, retain_last=True)
        check_reaches_shared(task_grads, range(len(shared)))
        norms = shared_norms(
            task_grads, range(len(shared)), device=self.ema.device, dtype=self.ema.dtype
        )
        weights = self._advance(norms, losses).to(_loss_dtype(losses)).to(losses[0].device)
        return sum(weights[i] * loss for i, loss in enumerate(losses))

    @torch.no_grad()
    def _advance(self, norms: Tensor, losses=None) -> Tensor:
        """One step of the loop from measured norms ``(K,)``; updates the buffers in place."""
        if self.nonfinite == "raise" and not bool(torch.all(torch.isfinite(norms))):
            raise FloatingPointError(
                f"non-finite task gradient norm(s) {norms.tolist()} on the shared parameters "
                f"at step {int(self.step) + 1}; state left unchanged"
            )
        k = self.num_tasks
        self.step += 1
        active = gate_is_open(self.step, self.warmup)
        valid = measurement_is_valid(norms)
        shares = sensor_shares(norms)
        raw = proportional_law(comparator_error(shares, k), k)
        ema = torch.where(active & valid, ema_update(self.ema, raw, self.beta), self.ema)
        uniform = torch.full_like(ema, 1.0 / k)
        weights = torch.where(active, floor_renormalise(ema, self.lambda_min), uniform)
        self.ema.copy_(ema)
        self.last_norms.copy_(norms)
        self.last_raw.copy_(raw)
        self.last_weights.copy_(weights)
        if losses is None:
            loss_values = torch.full_like(ema, float("nan"))
        else:
            loss_values = torch.stack([loss.detach().to(ema) for loss in losses])
        self.last_step = GABAStep(
            step=self.step.clone(),
            active=active,
            valid=valid,
            norms=norms.clone(),
            shares=shares,
            raw=raw,
            ema=ema,
            weights=weights,
            losses=loss_values,
        )
        return weights

    def update_from_norms(self, grad_norms) -> Tensor:
        """Run the loop on given gradient norms, as :meth:`forward` would after measuring them.

        For replaying recorded norms and for parity checks against
        :class:`~gaba_control.controller.GABAController`. State advances
        exactly as in :meth:`forward`.

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

        Keys: ``step``, ``active``, ``valid``, ``norms``, ``shares``, ``raw``,
        ``ema``, ``weights``, ``losses``. Raises ``RuntimeError`` before the
        first step.
        """
        if self.last_step is None:
            raise RuntimeError("GABALoss has not taken a step yet; call it (or update_from_norms)")
        return self.last_step.to_python()

    @torch.no_grad()
    def reset(self) -> None:
        """Back to step 0 with the EMA and weights at ``1/K``."""
        self.ema.fill_(1.0 / self.num_tasks)
        self.step.zero_()
        self.last_norms.fill_(float("nan"))
        self.last_raw.fill_(float("nan"))
        self.last_weights.fill_(1.0 / self.num_tasks)
        self.last_step = None


def _check_choice(value, choices: tuple[str, ...], name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be one of {choices}, got {type(value).__name__}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def _loss_dtype(losses) -> torch.dtype:
    dtype = losses[0].dtype
    for loss in losses[1:]:
        dtype = torch.promote_types(dtype, loss.dtype)
    return dtype
