"""Shared test helpers: trace-like records built by running the numpy controller."""

from __future__ import annotations

import numpy as np

from gaba_control.controller import GABAController
from gaba_control.trace import Trace


def synthetic_trace(G, *, warmup=10, beta=0.99, lambda_min=0.05, subset="FD001", method="gaba"):
    """A :class:`Trace` of the numpy controller run on the norms ``G`` (T, K)."""
    G = np.asarray(G, dtype=float)
    T, K = G.shape
    ctrl = GABAController(K, beta=beta, warmup=warmup, lambda_min=lambda_min)
    tr = ctrl.run(G)
    return Trace(
        step=tr.steps, epoch=np.zeros(T, dtype=np.int64), grad_norms=G, shares=tr.shares,
        raw=tr.raw, ema=tr.ema, weights=tr.weights, applied_weights=tr.weights,
        losses=np.ones((T, K)), lr=np.full(T, 1e-3), active=tr.active, valid=tr.valid,
        controller=ctrl.config, method=method, subset=subset, seed=0,
        task_names=("rul", "health") if K == 2 else (),
    )


def lognormal_trace(steps=600, ratio=50.0, seed=0, warmup=100, **kwargs) -> Trace:
    """Log-normal norms with median ratio ``ratio`` (σ = 0.5), through the default loop."""
    rng = np.random.default_rng(seed)
    g = np.array([ratio, 1.0]) * np.exp(0.5 * rng.standard_normal((steps, 2)))
    return synthetic_trace(g, warmup=warmup, **kwargs)
