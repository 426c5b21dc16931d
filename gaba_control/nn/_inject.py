"""Deliver the combined gradient ``Σ λ_i ∇L_i`` through an ordinary ``backward()``.

The exact sensor already holds every per-task gradient, so a further backward
pass through the network would only recompute ``Σ λ_i ∇L_i``. Instead a custom
:class:`torch.autograd.Function` whose inputs are the parameters themselves
keeps the per-task gradients and combines them when ``loss.backward()``
reaches it: each parameter's ``AccumulateGrad`` node then fires, so ``.grad``
accumulation, tensor hooks, post-accumulate-grad hooks and DDP's reducer hooks
all run as they do for a plain backward. ``.grad`` is never written directly
(that would bypass DDP's all-reduce).

Combining in ``backward`` rather than in ``forward`` folds the incoming
``grad_output`` (``1``, a user's scale, AMP's loss scale) into the weights, so
each gradient element is touched once per task and no scaled copy is made.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

__all__ = ["combine_gradients", "inject"]


def combine_gradients(
    task_grads: Sequence[Sequence[Tensor | None]], weights: Tensor,
    finite: Tensor | bool | None = None, *, skip: bool = False, reuse: bool = False,
) -> list[Tensor | None]:
    """``Σ_i λ_i ∂L_i/∂p`` per parameter (``None`` where no task reaches ``p``).

    ``reuse``: the per-task gradients are the caller's to overwrite (the
    backward of :func:`inject`, whose saved gradients are dropped after it):
    each sum is formed in place in the first task's gradient when that tensor
    is dense and contiguous, spans its whole storage and shares it with no
    other gradient (autograd may return one tensor for two inputs, or an
    expanded one), instead of in a new tensor. The values are the same bit for
    bit; what is saved is an allocation per parameter (and, on glibc's default
    allocator, the page faults of fresh memory): part of what separated the
    exact sensor from the ``K``-backward floor of ``benchmarks/bench_sensors.py``.

    ``weights`` (shape ``(K,)``) is cast to each gradient's dtype and device.
    With ``finite`` (a 0-d bool tensor, or a Python bool) given and False, every combined
    gradient is zero, or, with ``skip``, ``None`` (no gradient is delivered,
    so ``.grad`` stays as it was: ``None`` after ``zero_grad()``, and torch's
    optimizers leave such parameters and their state untouched). ``skip``
    reads the flag on the host (one synchronisation on an accelerator); a CUDA
    flag without ``skip`` is applied with ``torch.where`` so the host never
    waits for the device; a CPU (or Python) flag is read directly, which saves a
    pass over every gradient on the usual, finite step.
    """
    keep = None
    if finite is not None and (skip or not isinstance(finite, Tensor)
                               or finite.device.type == "cpu"):
        keep, finite = bool(finite), None
        if skip and not keep:
            return [None] * len(task_grads[0])
    owned = _owned(task_grads) if reuse else None
    factors: dict[tuple, tuple[Tensor, ...]] = {}  # (device, dtype) → the K weights cast there
    combined: list[Tensor | None] = []
    for j, per_param in enumerate(zip(*task_grads, strict=True)):
        total = None
        for i, grad in enumerate(per_param):
            if grad is None:
                continue
            key = (grad.device, grad.dtype)
            lam = factors.get(key)
            if lam is None:
                lam = factors[key] = weights.to(device=grad.device, dtype=grad.dtype).unbind()
            if total is not None:
                total.addcmul_(grad, lam[i])
            elif owned is not None and owned[i][j]:
                total = grad.mul_(lam[i])
            else:
                total = torch.mul(grad, lam[i])
        if total is not None and keep is False:
            total = torch.zeros_like(total)
        elif total is not None and finite is not None:
            total = torch.where(finite.to(total.device), total, 0.0)
        combined.append(total)
    return combined


def _owned(task_grads) -> list[list[bool]]:
    """``owned[i][j]``: gradient ``task_grads[i][j]`` may be overwritten.

    That is: dense and contiguous, spanning its whole storage (a view may: autograd
    returns e.g. a Linear weight's gradient as the transpose of a transposed product, and
    nothing else can see that memory), and sharing that storage with no other gradient
    (autograd may return one tensor for two inputs, or an expanded one). One storage
    lookup per gradient: this runs on every step.
    """
    seen, shared = set(), set()
    candidates = []
    for grads in task_grads:
        row = []
        for grad in grads:
            key = None
            if grad is not None:
                storage = grad.untyped_storage()
                key = (grad.device, storage.data_ptr())
                (shared if key in seen else seen).add(key)
                if not (grad.layout == torch.strided and grad.is_contiguous()
                        and grad.storage_offset() == 0
                        and storage.nbytes() == grad.numel() * grad.element_size()):
                    key = None
            row.append(key)
        candidates.append(row)
    return [[key is not None and key not in shared for key in row] for row in candidates]


class _InjectGradients(torch.autograd.Function):
    """Value ``Σ λ_i L_i``; backward returns ``Σ_i (grad_output·λ_i) ∂L_i/∂p`` per parameter."""

    @staticmethod
    def forward(ctx, value_weights, losses, weights, finite, skip, task_grads, *params):
        # The weights are a saved tensor (a later in-place change to them raises in
        # backward); the per-task gradients, K·P tensors nobody else holds, are handed over
        # on ctx (unpacking them as saved tensors costs a version check and a wrapper each),
        # and backward takes them off ctx, so they do not outlive the step.
        ctx.save_for_backward(weights)
        ctx.task_grads, ctx.finite, ctx.skip = task_grads, finite, skip
        return torch.sum(value_weights * losses)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output: Tensor):
        task_grads, ctx.task_grads = ctx.task_grads, None
        if task_grads is None:
            # the first backward summed them in place: a second result would be silently wrong
            raise RuntimeError(
                "trying to backward through a GABALoss step a second time (retain_graph=True): "
                "its per-task gradients were consumed by the first backward; call the loss "
                "module again for a new step")
        (weights,) = ctx.saved_tensors
        scaled = weights * grad_output.to(device=weights.device, dtype=weights.dtype)
        combined = combine_gradients(task_grads, scaled, ctx.finite, skip=ctx.skip, reuse=True)
        return (None, None, None, None, None, None, *combined)


def inject(
    weights: Tensor,
    losses: Tensor,
    task_grads: Sequence[Sequence[Tensor | None]],
    params: Sequence[Tensor],
    finite: Tensor | bool | None = None,
    *,
    skip: bool = False,
) -> Tensor:
    """Scalar ``Σ λ_i L_i`` whose backward delivers ``Σ λ_i ∂L_i/∂p`` to ``params``.

    ``weights`` is the detached ``(K,)`` weight vector (any float dtype: the
    value is formed in the losses' dtype, the gradients in each gradient's);
    ``losses`` the detached ``(K,)`` loss values; ``task_grads[i][j]`` is
    ``∂L_i/∂params[j]`` or ``None``; ``finite`` and ``skip`` as in
    :func:`combine_gradients`.
    Scaling the result (``(c·loss).backward()``, AMP's ``GradScaler``) scales
    the delivered gradients, as it would for a graph.
    """
    value_weights = weights.to(device=losses.device, dtype=losses.dtype)
    return _InjectGradients.apply(value_weights, losses, weights, finite, skip, task_grads,
                                  *params)
