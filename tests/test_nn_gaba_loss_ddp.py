"""GABALoss under DistributedDataParallel (2 gloo ranks on CPU).

The exact sensor takes its per-task gradients with ``autograd.grad`` (DDP's
hooks do not fire there) and delivers the combination through ``backward()``,
so DDP must still average the delivered gradient across ranks.
"""

from __future__ import annotations

import os
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from numpy.testing import assert_allclose
from torch import nn

from gaba_control.nn import GABALoss

pytestmark = [
    pytest.mark.slow,  # spawns two interpreters that import torch (~25 s on 2 busy cores)
    pytest.mark.skipif(not dist.is_available(), reason="torch.distributed not available"),
]

WORLD = 2


class _Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Linear(5, 8)
        self.heads = nn.ModuleList([nn.Linear(8, 1), nn.Linear(8, 1)])

    def forward(self, x):
        z = torch.tanh(self.backbone(x))
        return [h(z)[:, 0] for h in self.heads]


def _rank_data(rank):
    gen = torch.Generator().manual_seed(rank)
    x = torch.randn(16, 5, generator=gen, dtype=torch.float64)
    y = torch.randn(16, 2, generator=gen, dtype=torch.float64) * torch.tensor([10.0, 1.0])
    return x, y


def _local_step(module, model, x, y):
    """One GABALoss step; ``module`` is what runs the forward (the DDP wrapper or the model)."""
    gaba = GABALoss(2, warmup=0)
    preds = module(x)
    losses = [nn.functional.mse_loss(p, y[:, i]) for i, p in enumerate(preds)]
    gaba(losses, module.parameters(), model.backbone.parameters()).backward()
    return [p.grad.numpy().copy() for p in model.parameters()], gaba.last_weights.numpy().copy()


def _worker(rank, port, queue):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        torch.manual_seed(0)
        model = _Model().double()
        ddp = nn.parallel.DistributedDataParallel(model)
        grads, weights = _local_step(ddp, model, *_rank_data(rank))
        queue.put((rank, grads, weights))
    finally:
        dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_averages_the_delivered_gradient():
    ctx = mp.get_context("spawn")
    queue = ctx.SimpleQueue()
    port = _free_port()
    procs = [ctx.Process(target=_worker, args=(r, port, queue)) for r in range(WORLD)]
    for p in procs:
        p.start()
    results = {}
    for _ in procs:
        rank, grads, weights = queue.get()
        results[rank] = (grads, weights)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0

    local = []
    for rank in range(WORLD):
        torch.manual_seed(0)
        model = _Model().double()
        local.append(_local_step(model, model, *_rank_data(rank)))
    expected = [np.mean(per_rank, axis=0) for per_rank in zip(*(g for g, _ in local), strict=True)]
    for rank in range(WORLD):
        for got, want in zip(results[rank][0], expected, strict=True):
            assert_allclose(got, want, rtol=1e-13, atol=1e-15)
        # λ comes from each rank's local norms (no all-reduce of the norms)
        assert_allclose(results[rank][1], local[rank][1], rtol=1e-14)
    assert not np.allclose(results[0][1], results[1][1])  # so the ranks' λ differ
