"""Tests of the torch GABALoss: exact vs naive sensor, loop parity, state, errors, memory."""

from __future__ import annotations

import copy
import io
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from torch import nn

from gaba_control.controller import GABAController
from gaba_control.nn import GABALoss, GABAStep

BETAS = [0.0, 0.5, 0.9, 0.99, 0.999]
KS = [2, 3, 5, 8]


# --------------------------------------------------------------------------- helpers


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


class TinyMTL(nn.Module):
    """Shared tanh backbone and one linear head per task."""

    def __init__(self, num_tasks: int, width: int = 16, dtype=torch.float64):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(5, width), nn.Tanh(), nn.Linear(width, width))
        self.heads = nn.ModuleList(nn.Linear(width, 1) for _ in range(num_tasks))
        self.to(dtype)

    def losses(self, x, targets):
        z = torch.tanh(self.backbone(x))
        return [
            nn.functional.mse_loss(h(z)[:, 0], y) for h, y in zip(self.heads, targets, strict=True)
        ]


def make_problem(num_tasks=2, dtype=torch.float64, seed=0, batch=32):
    """A model and data whose task gradients differ by orders of magnitude (target scales)."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = TinyMTL(num_tasks, dtype=dtype)
    x = torch.randn(batch, 5, generator=gen, dtype=dtype)
    scales = [10.0 ** (1 - i) for i in range(num_tasks)]
    targets = [s * torch.randn(batch, generator=gen, dtype=dtype) for s in scales]
    return model, x, targets


def gaba_step(gaba, model, x, targets):
    return gaba(model.losses(x, targets), model.parameters(), model.backbone.parameters())


def manual_norms(model, x, targets):
    """Per-task gradient norms on the backbone, computed independently of the module."""
    norms = []
    for loss in model.losses(x, targets):
        grads = torch.autograd.grad(loss, list(model.backbone.parameters()), retain_graph=True)
        norms.append(math.sqrt(sum(float((g.double() ** 2).sum()) for g in grads)))
    return np.array(norms)


def grads_of(model):
    return [None if p.grad is None else p.grad.detach().clone() for p in model.parameters()]


def assert_grads_close(actual, expected, rtol, atol=0.0):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected, strict=True):
        assert_allclose(a.double().numpy(), e.double().numpy(), rtol=rtol, atol=atol)


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# --------------------------------------------------------------------------- construction


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"num_tasks": 1}, ValueError, "num_tasks"),
        ({"num_tasks": 2.0}, TypeError, "num_tasks"),
        ({"beta": 1.0}, ValueError, "beta"),
        ({"beta": -0.1}, ValueError, "beta"),
        ({"beta": "0.9"}, TypeError, "beta"),
        ({"warmup": -1}, ValueError, "warmup"),
        ({"warmup": 1.5}, TypeError, "warmup"),
        ({"lambda_min": 0.5}, ValueError, "lambda_min"),
        ({"lambda_min": -0.01}, ValueError, "lambda_min"),
        ({"sensor": "fast"}, ValueError, "sensor"),
        ({"sensor": 1}, TypeError, "sensor"),
        ({"nonfinite": "ignore"}, ValueError, "nonfinite"),
        ({"betta": 0.9}, TypeError, "betta"),
    ],
)
def test_invalid_configuration_raises_naming_the_argument(kwargs, error, match):
    with pytest.raises(error, match=match):
        GABALoss(**kwargs)


def test_lambda_min_range_depends_on_num_tasks():
    GABALoss(3, lambda_min=0.3)
    with pytest.raises(ValueError, match=r"1/num_tasks"):
        GABALoss(4, lambda_min=0.3)


def test_initial_buffers():
    gaba = GABALoss(4)
    names = {name for name, _ in gaba.named_buffers()}
    assert names == {"ema", "step", "last_norms", "last_raw", "last_weights"}
    assert gaba.ema.dtype == torch.float64  # the loop runs in float64 unless converted
    assert_allclose(gaba.ema.numpy(), 0.25, rtol=0)
    assert_allclose(gaba.last_weights.numpy(), 0.25, rtol=0)
    assert gaba.step.dtype == torch.long and int(gaba.step) == 0
    assert torch.isnan(gaba.last_norms).all() and torch.isnan(gaba.last_raw).all()
    assert gaba.last_step is None
    with pytest.raises(RuntimeError, match="not taken a step"):
        gaba.telemetry()


# --------------------------------------------------------------------------- exact vs naive


@pytest.mark.parametrize("num_tasks", [2, 3, 5])
@pytest.mark.parametrize(("dtype", "rtol"), [(torch.float64, 1e-12), (torch.float32, 2e-5)])
def test_exact_sensor_gives_the_naive_gradients(num_tasks, dtype, rtol):
    model_a, x, targets = make_problem(num_tasks, dtype)
    model_b = copy.deepcopy(model_a)
    exact = GABALoss(num_tasks, warmup=2, beta=0.5).to(dtype)
    naive = GABALoss(num_tasks, warmup=2, beta=0.5, sensor="naive").to(dtype)
    opt_a = torch.optim.SGD(model_a.parameters(), lr=1e-3)
    opt_b = torch.optim.SGD(model_b.parameters(), lr=1e-3)
    for _ in range(6):  # 2 gated + 4 active steps
        for gaba, model, opt in ((exact, model_a, opt_a), (naive, model_b, opt_b)):
            loss = gaba_step(gaba, model, x, targets)
            opt.zero_grad()
            loss.backward()
        for ga, gb in zip(grads_of(model_a), grads_of(model_b), strict=True):
            scale = float(gb.abs().max())
            assert_allclose(ga.double().numpy(), gb.double().numpy(), rtol=0, atol=rtol * scale)
        assert_allclose(exact.last_weights.numpy(), naive.last_weights.numpy(), rtol=rtol)
        opt_a.step()
        opt_b.step()
    assert bool(exact.last_step.active)
    for pa, pb in zip(model_a.parameters(), model_b.parameters(), strict=True):
        assert_allclose(
            pa.detach().double().numpy(), pb.detach().double().numpy(), rtol=rtol, atol=rtol
        )


def test_delivered_gradient_is_the_weighted_sum_of_task_gradients():
    model, x, targets = make_problem(3)
    gaba = GABALoss(3, warmup=0, beta=0.0, lambda_min=0.0)
    loss = gaba_step(gaba, model, x, targets)
    loss.backward()
    weights = gaba.last_weights
    params = list(model.parameters())
    expected = [torch.zeros_like(p) for p in params]
    for i, task_loss in enumerate(model.losses(x, targets)):
        grads = torch.autograd.grad(task_loss, params, retain_graph=True, allow_unused=True)
        for e, g in zip(expected, grads, strict=True):
            if g is not None:
                e += weights[i] * g
    assert_grads_close(grads_of(model), expected, rtol=1e-13, atol=1e-15)


def test_returned_value_is_weighted_sum_of_losses():
    model, x, targets = make_problem(3)
    gaba = GABALoss(3, warmup=0, beta=0.0)
    loss = gaba_step(gaba, model, x, targets)
    task_losses = np.array([float(t.detach()) for t in model.losses(x, targets)])
    assert loss.dim() == 0 and loss.dtype == torch.float64 and loss.requires_grad
    assert_allclose(float(loss.detach()), gaba.last_weights.numpy() @ task_losses, rtol=1e-14)


def test_norms_are_the_backbone_gradient_norms_and_recorded_during_warmup():
    model, x, targets = make_problem(2)
    gaba = GABALoss(2, warmup=3)
    gaba_step(gaba, model, x, targets).backward()
    expected = manual_norms(model, x, targets)
    assert_allclose(gaba.last_norms.numpy(), expected, rtol=1e-13)
    assert expected[0] > 5 * expected[1]  # the problem is imbalanced, so the test is not vacuous
    t = gaba.telemetry()
    assert t["step"] == 1 and not t["active"] and t["valid"]
    assert_allclose(t["weights"], 0.5, rtol=0)
    assert_allclose(t["ema"], 0.5, rtol=0)  # EMA untouched while gated
    assert_allclose(t["raw"], expected[::-1] / expected.sum(), rtol=1e-13)  # K=2: λ_i = g_j/Σg


def test_first_active_step_updates_the_ema_from_the_initial_state():
    model, x, targets = make_problem(2)
    beta, warmup = 0.9, 2
    gaba = GABALoss(2, warmup=warmup, beta=beta, lambda_min=0.0)
    for _ in range(warmup + 1):
        gaba_step(gaba, model, x, targets).backward()
    g = manual_norms(model, x, targets)
    raw = g[::-1] / g.sum()
    assert_allclose(gaba.ema.numpy(), beta * 0.5 + (1 - beta) * raw, rtol=1e-13)
    assert bool(gaba.last_step.active)


def test_naive_and_exact_accept_tensor_of_losses_and_generators():
    model, x, targets = make_problem(2)
    gaba = GABALoss(2, warmup=0)
    stacked = torch.stack(model.losses(x, targets))
    loss = gaba(
        stacked, params=(p for p in model.parameters()), shared_params=model.backbone.parameters()
    )
    loss.backward()
    from_tensor = grads_of(model)
    model.zero_grad()
    gaba.reset()
    gaba_step(gaba, model, x, targets).backward()
    assert_grads_close(from_tensor, grads_of(model), rtol=1e-15)


# --------------------------------------------------------------------------- autograd integration


def test_backward_accumulates_fires_hooks_and_scales_with_grad_output():
    model, x, targets = make_problem(2)
    gaba = GABALoss(2, warmup=10)  # gated: identical weights on every call
    params = list(model.parameters())
    calls = {"tensor": 0, "post": 0}

    def tensor_hook(grad):
        calls["tensor"] += 1

    def post_hook(param):
        calls["post"] += 1

    params[0].register_hook(tensor_hook)
    for p in params:
        p.register_post_accumulate_grad_hook(post_hook)

    gaba_step(gaba, model, x, targets).backward()
    once = grads_of(model)
    # post-accumulate hooks (DDP's kind) fire once per parameter, on the delivered gradient;
    # a tensor hook also sees the K = 2 per-task gradients taken by autograd.grad.
    assert calls == {"tensor": 3, "post": len(params)}
    gaba_step(gaba, model, x, targets).backward()  # no zero_grad: .grad accumulates
    assert_grads_close(grads_of(model), [2 * g for g in once], rtol=1e-15)
    model.zero_grad()
    (3.0 * gaba_step(gaba, model, x, targets)).backward()
    # The scale is folded into the weights, (3·λ_i)·g_i, which rounds differently from
    # 3·(λ_i·g_i): a few ulps (1.7e-15 relative seen), not bit-exact.
    assert_grads_close(grads_of(model), [3 * g for g in once], rtol=1e-14)


def test_second_backward_raises_like_a_freed_graph():
    model, x, targets = make_problem(2)
    loss = gaba_step(GABALoss(2), model, x, targets)
    loss.backward()
    with pytest.raises(RuntimeError, match="second time"):
        loss.backward()


def test_parameter_reached_by_no_task_gets_no_gradient():
    model, x, targets = make_problem(2)
    unused = nn.Parameter(torch.ones(3, dtype=torch.float64))
    params = [*model.parameters(), unused]
    loss = GABALoss(2)(model.losses(x, targets), params, model.backbone.parameters())
    loss.backward()
    assert unused.grad is None
    assert all(p.grad is not None for p in model.parameters())


def test_loss_can_be_combined_with_other_terms():
    model, x, targets = make_problem(2)
    gaba = GABALoss(2, warmup=5)
    reg = sum((p**2).sum() for p in model.parameters())
    (gaba_step(gaba, model, x, targets) + 0.5 * reg).backward()
    with_reg = grads_of(model)
    model.zero_grad()
    gaba.reset()
    gaba_step(gaba, model, x, targets).backward()
    expected = [g + p.detach() for g, p in zip(grads_of(model), model.parameters(), strict=True)]
    assert_grads_close(with_reg, expected, rtol=1e-13)


# --------------------------------------------------------------------------- errors


def _expect_error_without_state_change(gaba, error, match, call):
    before = {k: v.clone() for k, v in gaba.state_dict().items()}
    with pytest.raises(error, match=match):
        call()
    for key, value in gaba.state_dict().items():
        assert torch.equal(value.nan_to_num(-1.0), before[key].nan_to_num(-1.0)), key


def test_malformed_losses_raise_and_leave_state():
    model, x, targets = make_problem(2)
    gaba = GABALoss(2, warmup=0)
    params, shared = list(model.parameters()), list(model.backbone.parameters())
    l0, l1 = model.losses(x, targets)
    cases = [
        ([l0], ValueError, "expected num_tasks=2 losses, got 1"),
        ([l0, l1, l1], ValueError, "got 3"),
        ([l0, l1.reshape(1)], ValueError, r"losses\[1\] must be a scalar"),
        ([l0, 1.0], TypeError, r"losses\[1\] must be a torch.Tensor"),
        ([l0.detach(), l1], ValueError, r"losses\[0\] does not require grad"),
        (torch.stack([l0, l1]).reshape(1, 2), ValueError, "1-D"),
        ("ab", TypeError, "losses must be a sequence"),
        ([torch.tensor(1), l1], TypeError, r"losses\[0\] must have a floating dtype"),
    ]
    for losses, error, match in cases:
        _expect_error_without_state_change(
            gaba, error, match, lambda losses=losses: gaba(losses, params, shared)
        )


def test_malformed_params_raise_and_leave_state():
    model, x, targets = make_problem(2)
    gaba = GABALoss(2, warmup=0)
    params, shared = list(model.parameters()), list(model.backbone.parameters())
    frozen = nn.Parameter(torch.ones(2, dtype=torch.float64), requires_grad=False)
    stranger = nn.Parameter(torch.ones(2, dtype=torch.float64))
    cases = [
        (params, [frozen], ValueError, "shared_params holds no trainable parameter"),
        ([frozen], [frozen], ValueError, "params holds no trainable parameter"),
        (params, [*shared, stranger], ValueError, "not in params; shared_params must be a subset"),
        ([*params, params[0]], shared, ValueError, "duplicate"),
        (params, [shared[0], shared[0]], ValueError, "duplicate"),
        ([], shared, ValueError, "params is empty"),
        (params, [], ValueError, "shared_params is empty"),
        (model, shared, TypeError, r"module.parameters\(\)"),
        (params, 3, TypeError, "shared_params must be an iterable"),
        ([*params, "w"], shared, TypeError, r"params\[\d+\] must be a torch.Tensor"),
    ]
    for p, s, error, match in cases:
        _expect_error_without_state_change(
            gaba, error, match, lambda p=p, s=s: gaba(model.losses(x, targets), p, s)
        )


def test_task_that_misses_the_shared_parameters_raises():
    model, x, targets = make_problem(2)
    for sensor in ("exact", "naive"):
        gaba = GABALoss(2, sensor=sensor)
        head_only = model.heads[1].weight.sum()  # does not depend on the backbone
        losses = [model.losses(x, targets)[0], head_only]
        _expect_error_without_state_change(
            gaba,
            ValueError,
            r"losses\[1\] does not depend on any of shared_params",
            lambda gaba=gaba, losses=losses: gaba(
                losses, model.parameters(), model.backbone.parameters()
            ),
        )


def test_single_parameter_tensor_is_accepted():
    w = nn.Parameter(torch.tensor([1.0, 2.0], dtype=torch.float64))
    gaba = GABALoss(2, warmup=0, beta=0.0, lambda_min=0.0)
    loss = gaba([(w**2).sum(), w.sum()], w, w)
    loss.backward()
    g = np.array([np.hypot(2.0, 4.0), np.sqrt(2.0)])  # ‖2w‖, ‖1‖
    assert_allclose(gaba.last_norms.numpy(), g, rtol=1e-15)
    lam = g[::-1] / g.sum()
    assert_allclose(w.grad.numpy(), lam[0] * 2 * w.detach().numpy() + lam[1], rtol=1e-15)


# --------------------------------------------------------------------------- invalid measurements


def _two_task_with_scaled_backbone(scale0, scale1):
    """L_i = scale_i·Σ w + head term; the backbone gradient of task i is scale_i·1."""
    w = nn.Parameter(torch.ones(3, dtype=torch.float64))
    heads = [nn.Parameter(torch.full((2,), 2.0, dtype=torch.float64)) for _ in range(2)]
    losses = [
        (w * scale0).sum() + (heads[0] ** 2).sum(),
        (w * scale1).sum() + (heads[1] ** 2).sum(),
    ]
    return w, heads, losses


def test_all_zero_norms_hold_the_state_and_deliver_finite_head_gradients():
    gaba = GABALoss(2, warmup=0, beta=0.5)
    gaba.update_from_norms([3.0, 1.0])
    state = {k: v.clone() for k, v in gaba.state_dict().items()}
    w, heads, losses = _two_task_with_scaled_backbone(0.0, 0.0)
    loss = gaba(losses, [w, *heads], [w])
    loss.backward()
    t = gaba.telemetry()
    assert t["step"] == 2 and t["active"] and not t["valid"]
    assert np.isnan(t["raw"]).all()
    assert torch.equal(gaba.ema, state["ema"])
    assert torch.equal(gaba.last_weights, state["last_weights"])
    assert_allclose(w.grad.numpy(), 0.0, atol=0)
    lam = state["last_weights"].numpy()
    for i, head in enumerate(heads):
        assert_allclose(head.grad.numpy(), lam[i] * 4.0, rtol=1e-15)  # held λ on d(h²)/dh = 2h


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nonfinite_task_gradient_zeroes_the_delivered_gradient(bad):
    gaba = GABALoss(2, warmup=0, beta=0.5, nonfinite="zero")
    gaba.update_from_norms([3.0, 1.0])
    state = {k: v.clone() for k, v in gaba.state_dict().items()}
    w, heads, losses = _two_task_with_scaled_backbone(bad, 1.0)
    loss = gaba(losses, [w, *heads], [w])
    loss.backward()
    assert not bool(gaba.last_step.valid) and int(gaba.step) == 2
    assert torch.equal(gaba.ema, state["ema"])
    assert torch.equal(gaba.last_weights, state["last_weights"])
    for p in (w, *heads):
        assert torch.equal(p.grad, torch.zeros_like(p))
    # the next good step continues from the held state
    w2, heads2, losses2 = _two_task_with_scaled_backbone(3.0, 1.0)
    gaba(losses2, [w2, *heads2], [w2]).backward()
    reference = GABALoss(2, warmup=0, beta=0.5)
    reference.update_from_norms([3.0, 1.0])
    reference.update_from_norms([3.0 * math.sqrt(3), math.sqrt(3)])
    assert_allclose(gaba.ema.numpy(), reference.ema.numpy(), rtol=1e-6)


def test_nonfinite_raise_policy_leaves_state_untouched():
    gaba = GABALoss(2, warmup=0, nonfinite="raise").double()
    w, heads, losses = _two_task_with_scaled_backbone(float("nan"), 1.0)
    _expect_error_without_state_change(
        gaba, FloatingPointError, "non-finite", lambda: gaba(losses, [w, *heads], [w])
    )
    assert w.grad is None


# --------------------------------------------------------------------------- the loop (norm replay)


@pytest.mark.parametrize("num_tasks", KS)
@pytest.mark.parametrize("beta", BETAS)
def test_constant_norms_follow_the_first_order_step_response(num_tasks, beta):
    # λ̂[n] = λ_raw + (1/K − λ_raw)·β^n after n active steps: the closed-form step response.
    warmup, steps = 3, 40
    rng = np.random.default_rng(num_tasks)
    g = rng.uniform(0.1, 5.0, num_tasks)
    gaba = GABALoss(num_tasks, beta=beta, warmup=warmup, lambda_min=0.0).double()
    weights = gaba.update_from_norms(np.tile(g, (steps, 1))).numpy()
    raw = (g.sum() - g) / ((num_tasks - 1) * g.sum())
    n = np.clip(np.arange(1, steps + 1) - warmup, 0, None)[:, None]
    expected = raw + (1.0 / num_tasks - raw) * beta**n
    assert_allclose(weights, expected, rtol=1e-12, atol=1e-15)


def _norm_sequence(num_tasks, steps, seed):
    rng = np.random.default_rng(seed)
    g = rng.lognormal(0.0, 2.0, (steps, num_tasks))
    g[rng.random(steps) < 0.05, 0] = np.nan
    g[rng.random(steps) < 0.03] = 0.0
    g[rng.random(steps) < 0.03, -1] = np.inf
    return g


@pytest.mark.parametrize("num_tasks", KS)
@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("lambda_min", [0.0, 0.05])
def test_parity_with_the_numpy_controller_float64(num_tasks, beta, lambda_min):
    g = _norm_sequence(num_tasks, 120, seed=num_tasks)
    config = {"beta": beta, "warmup": 10, "lambda_min": lambda_min}
    trace = GABAController(num_tasks, **config).run(g)
    gaba = GABALoss(num_tasks, **config).double()
    emas, raws, valid, active = [], [], [], []
    weights = []
    for row in g:
        weights.append(gaba.update_from_norms(row).numpy())
        t = gaba.telemetry()
        emas.append(t["ema"])
        raws.append(t["raw"])
        valid.append(t["valid"])
        active.append(t["active"])
    assert_allclose(np.array(weights), trace.weights, rtol=0, atol=1e-12)
    assert_allclose(np.array(emas), trace.ema, rtol=0, atol=1e-12)
    assert_allclose(np.array(raws), trace.raw, rtol=0, atol=1e-12, equal_nan=True)
    assert_array_equal(valid, trace.valid)
    assert_array_equal(active, trace.active)
    assert not trace.valid.all() and trace.valid.any()  # both kinds of step were exercised


@pytest.mark.parametrize("num_tasks", [2, 5])
def test_parity_with_the_numpy_controller_float32(num_tasks):
    g = _norm_sequence(num_tasks, 300, seed=7)
    trace = GABAController(num_tasks, beta=0.99, warmup=20).run(g)
    gaba = GABALoss(num_tasks, beta=0.99, warmup=20).float()
    assert gaba.ema.dtype == torch.float32
    weights = gaba.update_from_norms(g)
    assert weights.dtype == torch.float32 and weights.shape == g.shape
    assert_allclose(weights.double().numpy(), trace.weights, rtol=0, atol=1e-6)


def test_update_from_norms_matches_forward_state():
    model, x, targets = make_problem(3)
    live = GABALoss(3, warmup=2, beta=0.8)
    replay = GABALoss(3, warmup=2, beta=0.8).double()
    live.double()
    for _ in range(5):
        gaba_step(live, model, x, targets).backward()
        replay.update_from_norms(live.last_norms)
        assert_allclose(replay.last_weights.numpy(), live.last_weights.numpy(), rtol=0, atol=0)


def test_update_from_norms_validates():
    gaba = GABALoss(2)
    with pytest.raises(ValueError, match=">= 0"):
        gaba.update_from_norms([1.0, -1.0])
    with pytest.raises(ValueError, match="num_tasks=2"):
        gaba.update_from_norms([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"\(T, K\)"):
        gaba.update_from_norms(np.ones((2, 2, 2)))
    assert int(gaba.step) == 0


@settings(max_examples=60, deadline=None)
@given(
    num_tasks=st.integers(2, 8),
    beta=st.sampled_from(BETAS),
    floor_fraction=st.floats(0.0, 0.99),
    seed=st.integers(0, 2**31),
)
def test_weights_stay_on_the_simplex_above_the_floor_bound(num_tasks, beta, floor_fraction, seed):
    # λ̂ stays on the simplex, so Σ max(λ̂, λ_min) ≤ 1 + K·λ_min and λ*_i ≥ λ_min/(1 + K·λ_min).
    lambda_min = floor_fraction / num_tasks
    g = np.random.default_rng(seed).lognormal(0.0, 3.0, (30, num_tasks))
    gaba = GABALoss(num_tasks, beta=beta, warmup=3, lambda_min=lambda_min).double()
    weights = gaba.update_from_norms(g).numpy()
    assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-12)
    assert np.all(weights >= lambda_min / (1 + num_tasks * lambda_min) - 1e-15)


# --------------------------------------------------------------------------- state, resume, memory


def test_state_dict_round_trip():
    gaba = GABALoss(3, warmup=1).double()
    gaba.update_from_norms([[1.0, 2.0, 3.0], [3.0, 1.0, 0.5], [2.0, 2.0, 0.1]])
    buffer = io.BytesIO()
    torch.save(gaba.state_dict(), buffer)
    buffer.seek(0)
    restored = GABALoss(3, warmup=1).double()
    restored.load_state_dict(torch.load(buffer))
    for key, value in gaba.state_dict().items():
        assert torch.equal(restored.state_dict()[key], value), key
    assert_array_equal(
        restored.update_from_norms([1.0, 4.0, 2.0]), gaba.update_from_norms([1.0, 4.0, 2.0])
    )


def _train(model, gaba, opt, x, targets, steps, start):
    weights = []
    for t in range(start, start + steps):
        noise = torch.Generator().manual_seed(t)  # per-step data depend only on the step
        xt = x + 0.1 * torch.randn(x.shape, generator=noise, dtype=x.dtype)
        loss = gaba_step(gaba, model, xt, targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
        weights.append(gaba.last_weights.clone())
    return weights


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_resume_from_state_dict_is_bit_identical(dtype):
    steps, warmup = 24, 6
    model, x, targets = make_problem(2, dtype)
    model_b = copy.deepcopy(model)

    gaba = GABALoss(2, warmup=warmup, beta=0.9).to(dtype)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    straight = _train(model, gaba, opt, x, targets, steps, 0)

    gaba_b = GABALoss(2, warmup=warmup, beta=0.9).to(dtype)
    opt_b = torch.optim.Adam(model_b.parameters(), lr=1e-2)
    first = _train(model_b, gaba_b, opt_b, x, targets, steps // 2, 0)
    buffer = io.BytesIO()
    torch.save(
        {"model": model_b.state_dict(), "opt": opt_b.state_dict(), "gaba": gaba_b.state_dict()},
        buffer,
    )
    buffer.seek(0)
    saved = torch.load(buffer)
    model_c, _, _ = make_problem(2, dtype, seed=123)  # different init, overwritten by the load
    model_c.load_state_dict(saved["model"])
    opt_c = torch.optim.Adam(model_c.parameters(), lr=1e-2)
    opt_c.load_state_dict(saved["opt"])
    gaba_c = GABALoss(2, warmup=warmup, beta=0.9).to(dtype)
    gaba_c.load_state_dict(saved["gaba"])
    second = _train(model_c, gaba_c, opt_c, x, targets, steps - steps // 2, steps // 2)

    resumed = first + second
    assert bool(gaba.last_step.active)
    assert all(torch.equal(a, b) for a, b in zip(straight, resumed, strict=True))
    assert not torch.equal(straight[warmup + 1], straight[-1])  # the weights did move
    for p, q in zip(model.parameters(), model_c.parameters(), strict=True):
        assert torch.equal(p, q)


def test_state_is_detached_and_the_graph_does_not_chain_across_steps():
    model, x, targets = make_problem(2)
    gaba = GABALoss(2, warmup=1)
    params = list(model.parameters())
    for _ in range(3):
        loss = gaba_step(gaba, model, x, targets)
        nodes = _graph_nodes(loss.grad_fn)
        assert len(nodes) == 1 + len(params)  # the injector and one AccumulateGrad per parameter
        loss.backward()
    for value in [*gaba.state_dict().values(), *vars(gaba.last_step).values()]:
        assert not value.requires_grad and value.grad_fn is None


def _graph_nodes(root):
    seen, stack = set(), [root]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        stack.extend(next_fn for next_fn, _ in node.next_functions)
    return seen


def _rss_growth_over(steps: int, leak: bool) -> int:
    model = TinyMTL(2, width=64, dtype=torch.float32)
    x, targets = torch.randn(8, 5), [torch.randn(8), torch.randn(8)]
    gaba = GABALoss(2, warmup=100)
    opt = torch.optim.SGD(model.parameters(), lr=1e-4)
    kept = []

    def run(n):
        for _ in range(n):
            loss = gaba_step(gaba, model, x, targets)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if leak:
                kept.append(grads_of(model))

    run(300)  # allocator warm-up
    before = rss_bytes()
    run(steps)
    assert int(gaba.step) == steps + 300
    return rss_bytes() - before


def _rss_growth_in_fresh_process(steps: int, leak: bool) -> int:
    """Run :func:`_rss_growth_over` in a new interpreter: memory freed by earlier
    tests in this process would otherwise absorb (hide) a leak."""
    code = (
        "import importlib.util, sys, torch; torch.set_num_threads(1); "
        "spec = importlib.util.spec_from_file_location('nn_tests', sys.argv[1]); "
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); "
        "print(m._rss_growth_over(int(sys.argv[2]), sys.argv[3] == '1'))"
    )
    args = [sys.executable, "-c", code, __file__, str(steps), str(int(leak))]
    done = subprocess.run(args, capture_output=True, text=True, check=True)
    return int(done.stdout.strip().splitlines()[-1])


# Measured: +0.44 MB over 10^4 steps without a leak; keeping each step's gradients (a leak about
# the size of a graph chained across steps) adds ~20 kB per step, 11 MB over 500 steps.
RSS_BUDGET = 4 * 2**20


def test_rss_measurement_detects_a_per_step_leak():
    assert _rss_growth_in_fresh_process(500, leak=True) > RSS_BUDGET


def test_memory_stays_flat_over_two_thousand_steps():
    assert _rss_growth_in_fresh_process(2_000, leak=False) < RSS_BUDGET


@pytest.mark.slow
def test_memory_stays_flat_over_ten_thousand_steps():
    assert _rss_growth_in_fresh_process(10_000, leak=False) < RSS_BUDGET


# --------------------------------------------------------------------------- devices and dtypes


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_buffers_follow_to_and_telemetry_types(dtype):
    gaba = GABALoss(2, warmup=0).to(dtype)
    assert gaba.ema.dtype == dtype and gaba.step.dtype == torch.long
    model, x, targets = make_problem(2, dtype)
    loss = gaba_step(gaba, model, x, targets)
    assert loss.dtype == dtype
    step = gaba.last_step
    assert isinstance(step, GABAStep)
    assert step.weights.dtype == dtype and step.valid.dtype == torch.bool
    t = gaba.telemetry()
    assert set(t) == {
        "step",
        "active",
        "measured",
        "valid",
        "norms",
        "shares",
        "raw",
        "ema",
        "weights",
        "applied_weights",
        "losses",
    }
    assert isinstance(t["step"], int) and isinstance(t["active"], bool)
    assert t["weights"].dtype == np.float64
    assert_allclose(t["losses"], [float(v.detach()) for v in model.losses(x, targets)], rtol=1e-6)


def test_float32_model_with_float64_loop():
    model32, x32, targets32 = make_problem(2, torch.float32)
    model64 = copy.deepcopy(model32).double()
    gaba32 = GABALoss(2, warmup=0).double()
    gaba64 = GABALoss(2, warmup=0).double()
    gaba_step(gaba32, model32, x32, targets32).backward()
    gaba_step(gaba64, model64, x32.double(), [t.double() for t in targets32]).backward()
    assert_allclose(gaba32.last_weights.numpy(), gaba64.last_weights.numpy(), rtol=1e-6)
    assert model32.backbone[0].weight.grad.dtype == torch.float32


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu_without_host_syncs():
    model_cpu, x, targets = make_problem(3)
    model_gpu = copy.deepcopy(model_cpu).cuda()
    x_gpu, targets_gpu = x.cuda(), [t.cuda() for t in targets]
    gaba_cpu = GABALoss(3, warmup=1)
    gaba_gpu = GABALoss(3, warmup=1).cuda()
    for _ in range(3):
        gaba_step(gaba_cpu, model_cpu, x, targets).backward()
        losses = model_gpu.losses(x_gpu, targets_gpu)
        torch.cuda.set_sync_debug_mode("error")  # any .item()/host sync in GABALoss raises
        try:
            gaba_gpu(losses, model_gpu.parameters(), model_gpu.backbone.parameters()).backward()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    assert gaba_gpu.ema.device.type == "cuda"
    assert_allclose(gaba_gpu.last_weights.cpu().numpy(), gaba_cpu.last_weights.numpy(), rtol=1e-12)
    assert_grads_close(
        [g.cpu() for g in grads_of(model_gpu)], grads_of(model_cpu), rtol=1e-10, atol=1e-13
    )
