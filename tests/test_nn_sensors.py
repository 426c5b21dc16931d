"""GABALoss sensor modes: refresh every N (parity with lti.decimated), approximate sensors, cost."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from torch import nn

from gaba_control.lti.decimated import decimated_noise_gain, refresh_steps, simulate_decimated
from gaba_control.nn import GABALoss

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


class _CountBackward(torch.autograd.Function):
    """Identity whose backward counts how often a gradient flows through it."""

    calls = 0

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        _CountBackward.calls += 1
        return grad


class Net(nn.Module):
    """Backbone (two layers) → z → one head per task.

    Counts the backward passes that reach the backbone's first layer.
    """

    def __init__(self, num_tasks, width=12):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(5, width), nn.Tanh(), nn.Linear(width, width))
        self.heads = nn.ModuleList(nn.Linear(width, 1) for _ in range(num_tasks))
        self.double()

    def forward(self, x, ys):
        hidden = _CountBackward.apply(self.backbone[0](x))
        z = torch.tanh(self.backbone[2](self.backbone[1](hidden)))
        losses = [
            nn.functional.mse_loss(h(z)[:, 0], y) for h, y in zip(self.heads, ys, strict=True)
        ]
        return losses, z


def problem(num_tasks, seed=0, batch=24):
    torch.manual_seed(seed)
    net = Net(num_tasks)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 5, generator=gen, dtype=torch.float64)
    ys = [
        10.0 ** (1 - i) * torch.randn(batch, generator=gen, dtype=torch.float64)
        for i in range(num_tasks)
    ]
    return net, x, ys


def call(gaba, net, x, ys, **kwargs):
    losses, z = net(x, ys)
    if gaba.sensor == "representation":
        kwargs["representation"] = z
    if gaba.sensor == "last_layer":
        kwargs["sensor_params"] = net.backbone[2].parameters()
    return gaba(losses, net.parameters(), net.backbone.parameters(), **kwargs)


def random_norms(rng, num_steps, num_tasks, invalid_every=0):
    g = rng.lognormal(0.0, 1.0, size=(num_steps, num_tasks)) * rng.lognormal(0, 2, num_tasks)
    if invalid_every:
        g[::invalid_every, 0] = np.nan
        g[1::invalid_every] = 0.0
    return g


# ------------------------------------------------------------------ refresh every N: parity


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9, 0.99, 0.999])
@pytest.mark.parametrize("num_tasks", [2, 3, 5, 8])
@pytest.mark.parametrize("every", [1, 3, 10])
def test_refresh_parity_with_simulate_decimated(beta, num_tasks, every):
    rng = np.random.default_rng(num_tasks * 100 + every)
    g = random_norms(rng, 120, num_tasks, invalid_every=7)
    lambda_min = 0.02
    ref = simulate_decimated(g, num_tasks, beta, every, warmup=9, lambda_min=lambda_min)
    gaba = GABALoss(num_tasks, beta=beta, warmup=9, lambda_min=lambda_min, refresh_every=every)
    emas, measured, raw = [], [], []
    for row in g:
        gaba.update_from_norms(row)
        t = gaba.telemetry()
        emas.append(t["ema"])
        measured.append(t["measured"])
        raw.append(t["raw"])
    weights = np.array([gaba.last_weights.numpy()])  # last row; full trajectory below
    assert_allclose(np.array(emas), ref.ema, rtol=0, atol=1e-12)
    # NaN where nothing was read; N = 1 also reads (and records) the warmup rows
    active = ref.active
    assert_allclose(np.array(raw)[active], ref.raw[active], rtol=0, atol=1e-12)
    if every > 1:
        assert_array_equal(np.array(measured), ref.refresh)
    gaba.reset()
    assert_allclose(gaba.update_from_norms(g).numpy(), ref.weights, rtol=0, atol=1e-12)
    assert_allclose(weights[0], ref.weights[-1], rtol=0, atol=1e-12)


@pytest.mark.parametrize("every", [2, 5])
def test_forward_measures_exactly_on_the_refresh_steps(every):
    net, x, ys = problem(2)
    gaba = GABALoss(2, warmup=3, refresh_every=every).double()
    measured = []
    for _ in range(14):
        net.zero_grad()
        call(gaba, net, x, ys).backward()
        measured.append(gaba.telemetry()["measured"])
    assert_array_equal(measured, refresh_steps(14, every, 3))


@pytest.mark.parametrize("sensor", ["exact", "naive", "last_layer", "representation"])
def test_refresh_delivers_the_held_weights_on_unmeasured_steps(sensor):
    net, x, ys = problem(3)
    gaba = GABALoss(3, warmup=1, beta=0.5, refresh_every=4, sensor=sensor).double()
    history = []
    for _ in range(9):
        net.zero_grad()
        call(gaba, net, x, ys).backward()
        got = [p.grad.clone() for p in net.parameters()]
        w = gaba.last_weights.clone()
        net.zero_grad()
        losses, _ = net(x, ys)
        sum(wi * li for wi, li in zip(w, losses, strict=True)).backward()
        for a, b in zip(got, [p.grad for p in net.parameters()], strict=True):
            assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, atol=1e-15)
        history.append(gaba.telemetry()["weights"])
    # refreshes at t = 2 and 6: λ* holds in between, and moves at the refresh
    for t in (3, 4, 5):
        assert_array_equal(history[t - 1], history[1])
    assert not np.allclose(history[5], history[1])


# ------------------------------------------------------------------ refresh every N: noise


def _stationary_ema_variance(every, beta, num_steps, seed):
    """Variance of λ̂_0 over the stationary part, read at the refresh steps, and of λ_raw_0."""
    rng = np.random.default_rng(seed)
    g = np.column_stack([rng.lognormal(0.0, 0.6, num_steps), np.ones(num_steps)])
    gaba = GABALoss(2, beta=beta, warmup=0, lambda_min=0.0, refresh_every=every)
    emas, raws = [], []
    for row in g:
        gaba.update_from_norms(row)
        if bool(gaba.last_step.measured):
            emas.append(float(gaba.ema[0]))
            raws.append(float(gaba.last_raw[0]))
    skip = len(emas) // 10  # drop the transient from 1/K
    return np.var(emas[skip:]), np.var(raws[skip:])


def test_refresh_noise_matches_decimated_noise_gain():
    """Monte-Carlo: var(λ̂)/var(λ_raw) → (1−β^N)/(1+β^N) for i.i.d. norms.

    β = 0.8 keeps the correlation time short; with 8 000 steps the relative
    standard error of each variance is about 5 % (AR(1) effective sample
    size 2·n(1−ρ)/(1+ρ): ~900 for N = 1, ~800 refreshes for N = 5), so 15 %
    is a 3σ tolerance, 20 % on the ratio of two. The decimated loop's λ
    noise (std) grows by sqrt(gain_N/gain_1): ×2.1 for N = 5 at β = 0.8.
    """
    beta, num_steps = 0.8, 8_000
    measured = {}
    for every in (1, 5):
        var_ema, var_raw = _stationary_ema_variance(every, beta, num_steps, seed=every)
        measured[every] = var_ema
        assert_allclose(var_ema / var_raw, decimated_noise_gain(beta, every), rtol=0.15)
    expected_ratio = decimated_noise_gain(beta, 5) / decimated_noise_gain(beta, 1)
    assert_allclose(measured[5] / measured[1], expected_ratio, rtol=0.2)
    assert measured[5] > 2 * measured[1]  # the extra noise is real, not within the tolerance


# ------------------------------------------------------------------ approximate sensors


def test_last_layer_on_all_shared_params_equals_naive():
    net, x, ys = problem(3)
    naive = GABALoss(3, warmup=0, sensor="naive").double()
    last = GABALoss(3, warmup=0, sensor="last_layer").double()
    for _ in range(4):
        losses, _ = net(x, ys)
        naive(losses, net.parameters(), net.backbone.parameters())
        losses, _ = net(x, ys)
        last(
            losses,
            net.parameters(),
            net.backbone.parameters(),
            sensor_params=net.backbone.parameters(),
        )
        assert_allclose(last.last_norms.numpy(), naive.last_norms.numpy(), rtol=1e-14)
        assert_allclose(last.last_weights.numpy(), naive.last_weights.numpy(), rtol=1e-14)


def _manual_norms(losses, inputs):
    out = []
    for loss in losses:
        grads = torch.autograd.grad(loss, inputs, retain_graph=True)
        out.append(float(torch.sqrt(sum((g**2).sum() for g in grads))))
    return np.array(out)


@pytest.mark.parametrize("sensor", ["last_layer", "representation"])
def test_approximate_sensors_read_what_they_say(sensor):
    net, x, ys = problem(2)
    gaba = GABALoss(2, warmup=0, sensor=sensor).double()
    losses, z = net(x, ys)
    inputs = list(net.backbone[2].parameters()) if sensor == "last_layer" else [z]
    expected = _manual_norms(losses, inputs)
    call(gaba, net, x, ys)
    assert_allclose(gaba.last_norms.numpy(), expected, rtol=1e-13)
    exact = GABALoss(2, warmup=0).double()
    call(exact, net, x, ys)
    # an approximation: a different number than the shared-parameter norm
    assert not np.allclose(gaba.last_norms.numpy(), exact.last_norms.numpy(), rtol=1e-3)


@pytest.mark.parametrize(
    ("sensor", "kwargs", "match"),
    [
        ("last_layer", {}, "sensor_params"),
        ("representation", {}, "representation"),
        ("exact", {"sensor_params": "last"}, "sensor_params"),
        ("naive", {"representation": "z"}, "representation"),
        ("representation", {"representation": "z"}, "representation"),
        ("representation", {"representation": torch.zeros(3)}, "representation"),
    ],
)
def test_sensor_inputs_are_checked_before_the_state_moves(sensor, kwargs, match):
    net, x, ys = problem(2)
    gaba = GABALoss(2, warmup=0, sensor=sensor).double()
    losses, _ = net(x, ys)
    with pytest.raises((ValueError, TypeError), match=match):
        gaba(losses, net.parameters(), net.backbone.parameters(), **kwargs)
    assert int(gaba.step) == 0 and gaba.last_step is None


# ------------------------------------------------------------------ cost: backbone backward passes


@pytest.mark.parametrize(
    ("sensor", "every", "expected"),
    [
        ("exact", 1, [3] * 8),  # K gradients, combination injected: no extra pass
        ("naive", 1, [4] * 8),  # K + 1
        ("representation", 1, [1] * 8),  # head-only gradients + one full backward
        ("last_layer", 1, [1] * 8),  # partial gradients stop above the input + one full
        ("exact", 4, [1, 3, 1, 1, 1, 3, 1, 1]),  # warmup 1, refreshes at t = 2, 6
    ],
)
def test_backbone_backward_passes_per_step(sensor, every, expected):
    net, x, ys = problem(3)
    gaba = GABALoss(3, warmup=1, sensor=sensor, refresh_every=every).double()
    counts = []
    for _ in range(8):
        before = _CountBackward.calls
        net.zero_grad()
        call(gaba, net, x, ys).backward()
        counts.append(_CountBackward.calls - before)
    assert counts == expected


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"refresh_every": 0}, ValueError, "refresh_every"),
        ({"refresh_every": 2.5}, TypeError, "refresh_every"),
        ({"sync_norms": "yes"}, TypeError, "sync_norms"),
        ({"sensor": "gradnorm"}, ValueError, "sensor"),
        ({"nonfinite": "drop"}, ValueError, "nonfinite"),
    ],
)
def test_new_options_are_validated(kwargs, error, match):
    with pytest.raises(error, match=match):
        GABALoss(2, **kwargs)


def test_sync_norms_is_off_without_a_process_group():
    """sync_norms=True outside torch.distributed reads the local norms (nothing to reduce)."""
    net, x, ys = problem(2)
    local, synced = GABALoss(2, warmup=0).double(), GABALoss(2, warmup=0, sync_norms=True).double()
    call(local, net, x, ys)
    call(synced, net, x, ys)
    assert torch.equal(local.last_norms, synced.last_norms)
    assert "sync_norms=True" in repr(synced) and "refresh_every" not in repr(synced)


@pytest.mark.parametrize("warmup", [0, 3])
def test_held_step_equals_the_full_pipeline_on_an_unread_row(warmup):
    # The between-refresh fast path (GABALoss._hold) skips the formulas whose result is known;
    # it must record what the full loop computes for an all-NaN (unread) row: every signal,
    # and the buffers a checkpoint saves.
    from gaba_control.formulas import (
        comparator_error,
        floor_renormalise,
        proportional_law,
        sensor_shares,
    )

    k, every = 3, 4
    gaba = GABALoss(k, warmup=warmup, beta=0.5, lambda_min=0.1, refresh_every=every)
    rng = np.random.default_rng(1)
    held = 0
    for row in rng.lognormal(0.0, 2.0, (15, k)):
        before = gaba.ema.clone()
        gaba.update_from_norms(row)
        t = gaba.telemetry()
        if t["measured"]:
            continue
        held += 1
        unread = torch.full((k,), float("nan"), dtype=torch.float64)
        raw = proportional_law(comparator_error(sensor_shares(unread), k), k)
        assert np.isnan(t["norms"]).all() and np.isnan(t["shares"]).all()
        assert_array_equal(t["raw"], raw.numpy())
        assert not t["valid"]
        assert_array_equal(t["ema"], before.numpy())
        uniform = torch.full((k,), 1 / k, dtype=torch.float64)
        expected = floor_renormalise(before, 0.1) if t["active"] else uniform
        assert_array_equal(t["weights"], expected.numpy())
        assert_array_equal(gaba.last_weights.numpy(), expected.numpy())
        assert torch.isnan(gaba.last_norms).all() and torch.isnan(gaba.last_raw).all()
    assert held >= 10  # warmup rows and the 3 of every 4 later rows are held
