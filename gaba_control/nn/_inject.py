"""Deliver a precomputed combined gradient through an ordinary ``backward()``.

The exact sensor already holds every per-task gradient, so a further backward
pass through the network would only recompute ``Σ λ_i ∇L_i``. Instead the
combination is formed once and handed to autograd by a custom
:class:`torch.autograd.Function` whose inputs are the parameters themselves:
``loss.backward()`` then reaches each parameter's ``AccumulateGrad`` node, so
``.grad`` accumulation, tensor hooks, post-accumulate-grad hooks and DDP's
reducer hooks all fire as they do for a plain backward. ``.grad`` is never
written directly (that would bypass DDP's all-reduce).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

__all__ = ["combine_gradients", "inject"]


def combine_gradients(
    task_grads: Sequence[Sequence[Tensor | None]], weights: Tensor, finite: Tensor | None = None
) -> list[Tensor | None]:
    """``Σ_i λ_i ∂L_i/∂p`` per parameter (``None`` where no task reaches ``p``).

    ``weights`` (shape ``(K,)``) is cast to each gradient's dtype and device.
    With ``finite`` (a 0-d bool tensor) given, every combined gradient is
    replaced by zeros where it is False, without a host synchronisation.
    """
    cast: dict[tuple, Tensor] = {}
    combined: list[Tensor | None] = []
    for per_param in zip(*task_grads, strict=True):
        total = None
        for i, grad in enumerate(per_param):
            if grad is None:
                continue
            key = (grad.device, grad.dtype)
            if key not in cast:
                cast[key] = weights.to(device=grad.device, dtype=grad.dtype)
            lam = cast[key][i]
            total = torch.mul(grad, lam) if total is None else total.addcmul_(grad, lam)
        if total is not None and finite is not None:
            total = torch.where(finite.to(total.device), total, 0.0)
        combined.append(total)
    return combined


class _InjectGradients(torch.autograd.Function):
    """Value ``Σ λ_i L_i``; backward returns ``grad_output · combined`` for the parameters."""

    @staticmethod
    def forward(ctx, weights: Tensor, losses: Tensor, combined: list, *params: Tensor) -> Tensor:
        ctx.save_for_backward(*combined)  # freed by backward() like any saved tensor
        return torch.sum(weights * losses)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output: Tensor):
        grads = []
        for g in ctx.saved_tensors:
            if g is None:
                grads.append(None)
                continue
            scale = grad_output if grad_output.device == g.device else grad_output.to(g.device)
            grads.append(g * scale)
        return (None, None, None, *grads)


def inject(weights: Tensor, losses: Tensor, combined: list, params: Sequence[Tensor]) -> Tensor:
    """Scalar ``Σ λ_i L_i`` whose backward delivers ``combined`` to ``params``.

    ``weights`` and ``losses`` are detached ``(K,)`` tensors; ``combined`` is
    aligned with ``params``. Scaling the result (``(c·loss).backward()``, AMP's
    ``GradScaler``) scales the delivered gradients, as it would for a graph.
    """
    return _InjectGradients.apply(weights, losses, combined, *params)
