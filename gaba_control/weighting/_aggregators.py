r"""Jacobian-descent aggregators through torchjd: UPGrad and MGDA as loss weightings.

Both read the Gramian ``G = J Jᵀ`` of the per-task gradients on the shared
parameters and return weights ``w`` whose combination ``Jᵀ w = Σ_i w_i ∇L_i``
is the aggregated update:

* **UPGrad** (Quinton & Rey 2024, "Jacobian Descent for Multi-Objective
  Optimization", Eq. 4): each row projected onto the dual cone of the rows,
  averaged with preference ``1/K`` — ``torchjd.aggregation.UPGradWeighting``.
* **MGDA** (Désidéri 2012; Sener & Koltun 2018): the minimum-norm point of the
  rows' convex hull, ``w ∈ Δ`` — ``torchjd.aggregation.MGDAWeighting``
  (Frank–Wolfe, ``ε = 10⁻³``, 100 iterations, torchjd's defaults).

The weights are computed by torchjd itself (an optional dependency:
``pip install torchjd``, pinned in ``constraints.txt``). Difference from
``torchjd.autojac.mtl_backward``, stated: there the task heads receive their
own loss's gradient unweighted; here every parameter receives ``Σ w_i ∇L_i``,
so the heads are scaled by ``w_i`` (Adam removes a constant per-parameter
scale, not a moving one).

As control loops: memoryless (no state): a static nonlinear map from the
Gramian to the weights, recomputed every step; the "loop" closes only
through the plant (training). A memoryless map has no dynamics: its
small-signal model is a pure gain.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from gaba_control.formulas import array_namespace

from ._base import WeightingMethod, register
from ._law import Law, LawMethod, Measurement, full

__all__ = ["MGDA", "GramianLaw", "UPGrad", "torchjd_weighting"]


def torchjd_weighting(name: str):
    """The torchjd ``Weighting`` named ``"upgrad"`` or ``"mgda"`` (``ImportError`` says the fix)."""
    try:
        from torchjd.aggregation import MGDAWeighting, UPGradWeighting
    except ImportError as error:  # pragma: no cover - torchjd is a test dependency
        raise ImportError("the upgrad and mgda methods need torchjd: "
                          "pip install -c constraints.txt torchjd") from error
    if name == "upgrad":
        return UPGradWeighting()
    if name == "mgda":
        return MGDAWeighting()
    raise ValueError(f"torchjd weighting must be 'upgrad' or 'mgda', got {name!r}")


class GramianLaw(Law):
    """A stateless law ``w = weighting(G)`` from a torchjd Gramian weighting."""

    measures = "gramian"
    hyperparameters = ()

    def __init__(self, num_tasks: int, kind: str):
        super().__init__(num_tasks)
        self.kind = kind
        self.weighting = torchjd_weighting(kind)
        self._memo: dict[bytes, np.ndarray] = {}  # the numpy twin's memo, see _static_map

    def initial_state(self, like) -> dict:
        return {"calls": full(like, (), 0.0)}

    #: entries of the numpy twin's memo of the static map (a constant source repeats one
    #: Gramian every step; the map is memoryless and deterministic, so the memo is exact)
    MEMO_SIZE = 4096

    def _static_map(self, gram: np.ndarray) -> np.ndarray:
        key = gram.tobytes()
        if key not in self._memo:
            if len(self._memo) >= self.MEMO_SIZE:
                self._memo.clear()
            self._memo[key] = self.weighting(torch.from_numpy(gram)).detach().numpy().astype(
                np.float64)
        return self._memo[key]

    def step(self, state: dict, m: Measurement):
        xp = array_namespace(state["calls"])
        gram = m.gramian
        if isinstance(gram, np.ndarray):
            flat = np.ascontiguousarray(gram).reshape(-1, *gram.shape[-2:]).copy()
            bad = ~np.all(np.isfinite(flat), axis=(-2, -1))  # invalid runs: dropped by the caller
            flat[bad] = np.eye(gram.shape[-1])
            w = np.stack([self._static_map(g) for g in flat]).reshape(gram.shape[:-1])
        else:
            w = self.weighting(gram.to(torch.float64)).detach().to(torch.float64)
        return w, {"calls": state["calls"] + xp.ones_like(state["calls"])}


class _GramianMethod(LawMethod, WeightingMethod):
    measures = "the Gramian of the per-task gradients on the shared parameters"
    loop: ClassVar[dict[str, str]] = {"sensor": "the Gramian J Jᵀ of the shared task gradients",
            "reference": "none (a common descent direction)",
            "comparator": "none", "law": "static map (a QP each step)", "state": "none"}
    kind: str

    def law(self, steps_per_epoch=None) -> GramianLaw:
        return GramianLaw(self.num_tasks, self.kind)


@register
class UPGrad(_GramianMethod):
    """UPGrad (Quinton & Rey 2024) through ``torchjd.aggregation.UPGradWeighting``."""

    name = "upgrad"
    description = "UPGrad (Quinton & Rey 2024) via torchjd"
    kind = "upgrad"


@register
class MGDA(_GramianMethod):
    """MGDA (Désidéri 2012) through ``torchjd.aggregation.MGDAWeighting``."""

    name = "mgda"
    description = "MGDA (Désidéri 2012) via torchjd"
    kind = "mgda"
