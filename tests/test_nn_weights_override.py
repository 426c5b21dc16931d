"""GABALoss(forward, weights=...): an open-loop override of the applied weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from torch import nn

from gaba_control.nn import GABALoss

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


class Tiny(nn.Module):
    def __init__(self, num_tasks):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(5, 12), nn.Tanh())
        self.heads = nn.ModuleList(nn.Linear(12, 1) for _ in range(num_tasks))
        self.double()

    def losses(self, x, ys):
        z = self.backbone(x)
        return [nn.functional.mse_loss(h(z)[:, 0], y) for h, y in zip(self.heads, ys, strict=True)]


def problem(num_tasks, seed=0):
    torch.manual_seed(seed)
    model = Tiny(num_tasks)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(32, 5, generator=gen, dtype=torch.float64)
    ys = [
        10.0 ** (1 - i) * torch.randn(32, generator=gen, dtype=torch.float64)
        for i in range(num_tasks)
    ]
    return model, x, ys


def reference_grads(model, x, ys, weights):
    """Σ w_i ∇L_i by a plain backward of the weighted sum."""
    model.zero_grad()
    sum(w * loss for w, loss in zip(weights, model.losses(x, ys), strict=True)).backward()
    out = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    return out


@pytest.mark.parametrize("sensor", ["exact", "naive"])
@pytest.mark.parametrize("num_tasks", [2, 3, 5])
def test_override_changes_gradient_but_not_the_loop(sensor, num_tasks):
    model, x, ys = problem(num_tasks)
    free = GABALoss(num_tasks, warmup=2, beta=0.5, sensor=sensor).double()
    forced = GABALoss(num_tasks, warmup=2, beta=0.5, sensor=sensor).double()
    rng = np.random.default_rng(1)
    for _ in range(6):
        w = rng.dirichlet(np.ones(num_tasks))
        free(model.losses(x, ys), model.parameters(), model.backbone.parameters())
        model.zero_grad()
        loss = forced(
            model.losses(x, ys), model.parameters(), model.backbone.parameters(), weights=w
        )
        loss.backward()
        got = [p.grad.clone() for p in model.parameters()]
        want = reference_grads(model, x, ys, torch.as_tensor(w))
        for g, e in zip(got, want, strict=True):
            assert_allclose(g.numpy(), e.numpy(), rtol=1e-12, atol=1e-14)
        values = [float(li.detach()) for li in model.losses(x, ys)]
        expected_value = sum(wi * vi for wi, vi in zip(w, values, strict=True))
        assert_allclose(float(loss.detach()), expected_value, rtol=1e-13)
        t_free, t_forced = free.telemetry(), forced.telemetry()
        for key in ("step", "norms", "shares", "raw", "ema", "weights", "valid", "active"):
            assert_array_equal(t_forced[key], t_free[key])
        assert_allclose(t_forced["applied_weights"], w, rtol=1e-15)
        assert_array_equal(t_free["applied_weights"], t_free["weights"])
        assert_array_equal(forced.ema.numpy(), free.ema.numpy())
    # the loop moved away from uniform, so the override did differ from λ*
    assert not np.allclose(t_forced["weights"], t_forced["applied_weights"])


def test_override_with_refresh_every_and_unmeasured_steps():
    model, x, ys = problem(2)
    gaba = GABALoss(2, warmup=1, refresh_every=3).double()
    w = torch.tensor([0.9, 0.1], dtype=torch.float64)
    for _ in range(5):
        model.zero_grad()
        gaba(
            model.losses(x, ys), model.parameters(), model.backbone.parameters(), weights=w
        ).backward()
        got = [p.grad.clone() for p in model.parameters()]
        for g, e in zip(got, reference_grads(model, x, ys, w), strict=True):
            assert_allclose(g.numpy(), e.numpy(), rtol=1e-12, atol=1e-14)
        assert_array_equal(gaba.telemetry()["applied_weights"], w.numpy())


@pytest.mark.parametrize(
    "weights",
    [
        [0.5, 0.6],  # sum 1.1
        [1.5, -0.5],  # negative
        [float("nan"), 1.0],
        [float("inf"), 0.0],
        [1.0, 0.0, 0.0],  # wrong length
        [[0.5, 0.5]],  # wrong shape
        [0.5, 0.5 + 2e-6],  # just outside the 1e-6 tolerance
    ],
)
def test_invalid_override_raises_naming_weights_and_leaves_state(weights):
    model, x, ys = problem(2)
    gaba = GABALoss(2, warmup=0).double()
    gaba(model.losses(x, ys), model.parameters(), model.backbone.parameters())
    before = {k: v.clone() for k, v in gaba.state_dict().items()}
    with pytest.raises(ValueError, match="weights"):
        gaba(model.losses(x, ys), model.parameters(), model.backbone.parameters(), weights=weights)
    for k, v in gaba.state_dict().items():
        assert torch.equal(v, before[k]) or (torch.isnan(v).all() and torch.isnan(before[k]).all())


def test_override_within_tolerance_is_accepted_as_given():
    model, x, ys = problem(2)
    gaba = GABALoss(2, warmup=0).double()
    w = [0.3, 0.7 + 5e-7]
    gaba(model.losses(x, ys), model.parameters(), model.backbone.parameters(), weights=w)
    assert_array_equal(gaba.telemetry()["applied_weights"], np.array(w))
