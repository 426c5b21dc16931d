"""Combining the per-task gradients in place (``combine_gradients(reuse=True)``): the same bits
as a fresh sum, and never through memory another gradient (or anything else) still reads."""

import pytest
import torch

from gaba_control.nn import GABALoss
from gaba_control.nn._inject import combine_gradients


def _grads():
    torch.manual_seed(0)
    a = torch.randn(5, 4, requires_grad=True)
    b = torch.randn(5, 4, requires_grad=True)
    c = torch.randn(7, requires_grad=True)
    x = torch.randn(5, 4)
    losses = [((a + b) * x).pow(2).sum() + c.sum(),  # a and b share one gradient; c's expanded
              (a * b * x).sum() + (c * 3).pow(2).sum()]
    return [torch.autograd.grad(loss, [a, b, c], retain_graph=True) for loss in losses]


def test_in_place_sum_is_the_fresh_sum_bit_for_bit():
    weights = torch.tensor([0.3, 0.7])
    fresh = combine_gradients(_grads(), weights)
    task_grads = _grads()
    originals = [[g.clone() for g in row] for row in task_grads]
    reused = combine_gradients(task_grads, weights, reuse=True)
    for f, r in zip(fresh, reused, strict=True):
        assert torch.equal(f, r)
    first = task_grads[0]
    assert first[0].data_ptr() == first[1].data_ptr()  # autograd returned one tensor for a, b
    assert first[2].stride() == (0,)  # and an expanded one for c
    for j in range(3):  # neither is overwritten: their values are as returned
        assert torch.equal(first[j], originals[0][j])
    assert all(torch.equal(g, o) for g, o in zip(task_grads[1], originals[1], strict=True))


def test_an_owned_gradient_is_reused():
    g0, g1 = torch.randn(6), torch.randn(6)
    expected = 0.25 * g0 + 0.75 * g1
    (total,) = combine_gradients([[g0], [g1]], torch.tensor([0.25, 0.75]), reuse=True)
    assert total.data_ptr() == g0.data_ptr() and torch.allclose(total, expected, rtol=0,
                                                                atol=1e-6)


def test_aliased_gradients_reach_the_parameters_correctly():
    torch.manual_seed(1)
    a = torch.randn(5, requires_grad=True)
    b = torch.randn(5, requires_grad=True)
    x = torch.randn(5)

    def losses():
        return [((a + b) * x).pow(2).sum(), (a * b).sum() * 100.0]

    loss = GABALoss(2, warmup=0)
    out = loss(losses(), [a, b], [a, b])
    out.backward()
    lam = loss.last_weights
    reference = torch.autograd.grad(lam[0] * losses()[0] + lam[1] * losses()[1], [a, b])
    assert torch.allclose(a.grad, reference[0], rtol=1e-6, atol=1e-6)
    assert torch.allclose(b.grad, reference[1], rtol=1e-6, atol=1e-6)


def test_a_second_backward_through_a_retained_graph_raises():
    torch.manual_seed(2)
    model = torch.nn.Linear(4, 2)
    x = torch.randn(8, 4)
    z = model(x)
    out = GABALoss(2, warmup=0)([z[:, 0].pow(2).mean(), z[:, 1].abs().mean()],
                                model.parameters(), model.parameters())
    out.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="a second time"):
        out.backward()  # a silently wrong second gradient is what this must never give
