"""GABALoss: bit-identical resume from a state_dict, and mixed precision with GradScaler."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from numpy.testing import assert_array_equal
from torch import nn

from gaba_control.nn import GABALoss

POLICY = "propagate"  # the GradScaler recipe
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


class Net(nn.Module):
    def __init__(self, num_tasks=2, width=16):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(6, width), nn.ReLU(), nn.Linear(width, width))
        self.heads = nn.ModuleList(nn.Linear(width, 1) for _ in range(num_tasks))

    def forward(self, x, ys):
        z = torch.relu(self.backbone(x))
        losses = [
            nn.functional.mse_loss(h(z)[:, 0].float(), y)
            for h, y in zip(self.heads, ys, strict=True)
        ]
        return losses, z


def batch(step, num_tasks=2, device="cpu"):
    gen = torch.Generator().manual_seed(1000 + step)
    x = torch.randn(32, 6, generator=gen)
    ys = [10.0 ** (1 - i) * torch.randn(32, generator=gen) for i in range(num_tasks)]
    return x.to(device), [y.to(device) for y in ys]


def train_step(gaba, net, opt, step, **kwargs):
    x, ys = batch(step)
    losses, z = net(x, ys)
    if gaba.sensor == "representation":
        kwargs["representation"] = z
    if gaba.sensor == "last_layer":
        kwargs["sensor_params"] = net.backbone[2].parameters()
    loss = gaba(losses, net.parameters(), net.backbone.parameters(), **kwargs)
    opt.zero_grad()
    loss.backward()
    opt.step()


def fresh(sensor, every):
    torch.manual_seed(0)
    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    gaba = GABALoss(2, warmup=3, beta=0.9, sensor=sensor, refresh_every=every)
    return net, opt, gaba


MODES = [
    ("exact", 1),
    ("naive", 1),
    ("last_layer", 1),
    ("representation", 1),
    ("exact", 4),
    ("representation", 3),
]


@pytest.mark.parametrize(("sensor", "every"), MODES)
def test_resume_is_bit_identical(sensor, every):
    n = 14
    net, opt, gaba = fresh(sensor, every)
    for step in range(n):
        train_step(gaba, net, opt, step)

    net_a, opt_a, gaba_a = fresh(sensor, every)
    for step in range(n // 2):
        train_step(gaba_a, net_a, opt_a, step)
    buffer = io.BytesIO()
    torch.save(
        {"model": net_a.state_dict(), "opt": opt_a.state_dict(), "gaba": gaba_a.state_dict()},
        buffer,
    )
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    net_b, opt_b, gaba_b = fresh(sensor, every)
    net_b.load_state_dict(saved["model"])
    opt_b.load_state_dict(saved["opt"])
    gaba_b.load_state_dict(saved["gaba"])
    for step in range(n // 2, n):
        train_step(gaba_b, net_b, opt_b, step)

    for p, q in zip(net.parameters(), net_b.parameters(), strict=True):
        assert torch.equal(p, q)
    for name in ("ema", "step", "last_weights"):
        assert torch.equal(getattr(gaba, name), getattr(gaba_b, name))
    assert_array_equal(gaba.telemetry()["measured"], gaba_b.telemetry()["measured"])


def test_loading_a_state_dict_moves_the_refresh_schedule():
    gaba = GABALoss(2, warmup=2, refresh_every=5)
    gaba.update_from_norms(np.ones((7, 2)))  # refreshes at t = 3, 8
    other = GABALoss(2, warmup=2, refresh_every=5)
    other.load_state_dict(gaba.state_dict())
    other.update_from_norms([1.0, 2.0])
    assert bool(other.last_step.measured) and int(other.step) == 8


# ------------------------------------------------------------------ mixed precision


def _fixed_batches(num, device):
    return [batch(s, device=device) for s in range(num)]


@pytest.mark.parametrize("sensor", ["exact", "naive", "representation"])
def test_power_of_two_scaled_losses_give_identical_weights(sensor):
    torch.manual_seed(0)
    net = Net()
    plain = GABALoss(2, warmup=1, beta=0.5, sensor=sensor)
    scaled = GABALoss(2, warmup=1, beta=0.5, sensor=sensor)
    scale = 2.0**16
    for x, ys in _fixed_batches(6, "cpu"):
        kw = {}
        losses, z = net(x, ys)
        if sensor == "representation":
            kw["representation"] = z
        plain(losses, net.parameters(), net.backbone.parameters(), **kw)
        losses, z = net(x, ys)
        if sensor == "representation":
            kw["representation"] = z
        scaled(
            [scale * loss_i for loss_i in losses], net.parameters(), net.backbone.parameters(), **kw
        )
        assert torch.equal(plain.last_weights, scaled.last_weights)
        assert torch.equal(plain.ema, scaled.ema)
    assert not torch.equal(plain.ema, torch.full((2,), 0.5, dtype=torch.float64))


def _autocast_runs(device, dtype):
    try:
        with torch.autocast(device, dtype=dtype):
            out = nn.Linear(4, 4).to(device)(torch.ones(2, 4, device=device))
        return out.dtype == dtype
    except (RuntimeError, AssertionError):
        return False


def _amp_run(device, dtype, init_scale, steps=12):
    """Train with autocast + GradScaler; per step: (scaler skipped, GABA valid, ema changed)."""
    torch.manual_seed(0)
    net = Net().to(device)
    opt = torch.optim.SGD(net.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler(device, init_scale=init_scale, growth_interval=1000)
    gaba = GABALoss(2, warmup=2, beta=0.5, nonfinite=POLICY).to(device)
    record = []
    for x, ys in _fixed_batches(steps, device):
        ema_before = gaba.ema.clone()
        params_before = [p.detach().clone() for p in net.parameters()]
        with torch.autocast(device, dtype=dtype):
            losses, _ = net(x, ys)
        loss = gaba(
            [scaler.scale(loss_i) for loss_i in losses], net.parameters(), net.backbone.parameters()
        )
        opt.zero_grad()
        loss.backward()
        scale = scaler.get_scale()
        scaler.step(opt)
        scaler.update()
        skipped = scaler.get_scale() < scale
        moved = any(
            not torch.equal(p, q) for p, q in zip(net.parameters(), params_before, strict=True)
        )
        assert moved != skipped  # the optimizer stepped exactly when the scaler did not skip
        record.append((skipped, bool(gaba.last_step.valid), not torch.equal(gaba.ema, ema_before)))
    assert torch.all(torch.isfinite(gaba.last_weights))
    return record


def _check_agreement(record):
    skipped = [r[0] for r in record]
    assert any(skipped) and not all(skipped)  # both kinds of step happened
    for step, (skip, valid, ema_moved) in enumerate(record, start=1):
        assert valid == (not skip)  # GABA's measurement policy agrees with the scaler
        if skip or step <= 2:
            assert not ema_moved  # held on overflow (and during the warmup)
        else:
            assert ema_moved


@pytest.mark.parametrize(
    "device",
    ["cpu", pytest.param("cuda", marks=CUDA)],
)
def test_gradscaler_skipped_steps_hold_the_loop(device):
    """float16 autocast, initial scale 2^20: the first steps overflow float16 (max 65504)
    until the scaler has halved its scale enough; later overflows happen as the model moves."""
    if not _autocast_runs(device, torch.float16):
        pytest.skip(f"float16 autocast not supported on {device} in torch {torch.__version__}")
    _check_agreement(_amp_run(device, torch.float16, init_scale=2.0**20, steps=14))


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=CUDA)])
def test_bfloat16_autocast_weights_close_to_float32(device):
    if not _autocast_runs(device, torch.bfloat16):
        pytest.skip(f"bfloat16 autocast not supported on {device}")
    results = {}
    for dtype in (None, torch.bfloat16):
        torch.manual_seed(0)
        net = Net().to(device)
        opt = torch.optim.SGD(net.parameters(), lr=1e-3)
        gaba = GABALoss(2, warmup=2, beta=0.5).to(device)
        for x, ys in _fixed_batches(10, device):
            with torch.autocast(device, dtype=dtype or torch.float32, enabled=dtype is not None):
                losses, _ = net(x, ys)
            loss = gaba(losses, net.parameters(), net.backbone.parameters())
            opt.zero_grad()
            loss.backward()
            opt.step()
            assert bool(gaba.last_step.valid)
        results[dtype] = gaba.last_weights.cpu().numpy()
    # bfloat16 keeps ~3 significant digits; the shares inherit that error
    np.testing.assert_allclose(results[torch.bfloat16], results[None], atol=2e-2)
