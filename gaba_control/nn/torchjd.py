r"""GABA as a torchjd ``Weighting``: the same loop, fed by torchjd's Gramian.

torchjd (Quinton & Rey 2024) aggregates a Jacobian ``J`` (one row per task
gradient on the shared parameters) through a *weighting* of its Gramian
``G = J Jᵀ``: the update is ``Jᵀ w(G)``. GABA reads only the diagonal,
``G_ii = g_i²``, so it is a Gramian weighting with state: :class:`GABAWeighting`
takes ``g = sqrt(diag G)`` through a :class:`~gaba_control.nn.GABALoss` loop
(EMA, floor, warmup, measurement policy and ``state_dict`` validation all its
own) and returns ``λ*``. Combined with
``torchjd.aggregation.GramianWeightedAggregator`` it works with
``torchjd.autojac.mtl_backward`` and ``jac_to_grad``.

Needs torchjd (``pip install -c constraints.txt torchjd``); importing this
module without it raises ``ImportError`` saying so.

Examples
--------
>>> import torch
>>> from torchjd.aggregation import GramianWeightedAggregator
>>> from torchjd.autojac import jac_to_grad, mtl_backward
>>> from gaba_control.nn.torchjd import GABAWeighting
>>> torch.manual_seed(0)  # doctest: +ELLIPSIS
<torch._C.Generator object at ...>
>>> backbone, heads = torch.nn.Linear(4, 3), [torch.nn.Linear(3, 1) for _ in range(2)]
>>> weighting = GABAWeighting(2, warmup=0)
>>> aggregator = GramianWeightedAggregator(weighting)
>>> x = torch.randn(8, 4)
>>> features = backbone(x)
>>> losses = [h(features).pow(2).mean() * s for h, s in zip(heads, (100.0, 1.0))]
>>> mtl_backward(losses, features)
>>> jac_to_grad(list(backbone.parameters()), aggregator)  # doctest: +ELLIPSIS
tensor([...])
>>> weighting.loop.telemetry()["weights"].sum().item()
1.0
"""

from __future__ import annotations

import torch
from torch import Tensor

from .gaba_loss import GABALoss

try:
    from torchjd.aggregation import Weighting
except ImportError as error:  # pragma: no cover - torchjd is a test dependency
    raise ImportError("gaba_control.nn.torchjd needs torchjd: "
                      "pip install -c constraints.txt torchjd") from error

__all__ = ["GABAWeighting"]


class GABAWeighting(Weighting):
    """GABA's loop as a torchjd Gramian ``Weighting`` (see the module docstring).

    Parameters
    ----------
    num_tasks : int
    **gaba_kwargs
        ``beta``, ``warmup``, ``lambda_min``, ``nonfinite``: as for
        :class:`~gaba_control.nn.GABALoss` (validated there).

    Attributes
    ----------
    loop : GABALoss
        The loop itself: its buffers are this module's state
        (``state_dict()`` round-trips, a load is validated), its
        ``telemetry()`` the latest step.
    """

    def __init__(self, num_tasks: int = 2, **gaba_kwargs):
        super().__init__()
        for name in ("sensor", "refresh_every", "accumulation_steps", "sync_norms"):
            if name in gaba_kwargs:
                raise TypeError(f"GABAWeighting takes no {name!r}: torchjd computes the Jacobian")
        self.loop = GABALoss(num_tasks, **gaba_kwargs)

    def forward(self, gramian: Tensor, /) -> Tensor:
        """``λ*`` after one step of the loop on ``g = sqrt(diag(gramian))``, in its dtype."""
        gramian = torch.as_tensor(gramian)
        k = self.loop.num_tasks
        if gramian.shape != (k, k):
            raise ValueError(f"gramian must have shape ({k}, {k}), got {tuple(gramian.shape)}")
        diag = torch.diagonal(gramian).detach().to(torch.float64)
        # a Gramian's diagonal is >= 0; round-off can leave -0 or -1e-30: read it as 0
        invalid = torch.where(diag == float("inf"), diag, torch.full_like(diag, float("nan")))
        norms = torch.where(torch.isfinite(diag), torch.sqrt(torch.clamp(diag, min=0.0)), invalid)
        weights = self.loop.update_from_norms(norms.cpu())
        return weights.to(device=gramian.device, dtype=gramian.dtype)
