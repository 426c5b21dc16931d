"""GABA as a torchjd Weighting: the same loop as GABALoss on the same gradients."""

from __future__ import annotations

import io

import pytest
import torch

torchjd = pytest.importorskip("torchjd")
from torchjd.aggregation import GramianWeightedAggregator  # noqa: E402
from torchjd.autojac import jac_to_grad, mtl_backward  # noqa: E402

from gaba_control.nn import GABALoss  # noqa: E402
from gaba_control.nn.torchjd import GABAWeighting  # noqa: E402


def _problem(seed=0):
    torch.manual_seed(seed)
    backbone = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh()).double()
    heads = torch.nn.ModuleList(torch.nn.Linear(5, 1).double() for _ in range(2))
    x = torch.randn(32, 6, dtype=torch.float64)
    y = torch.randn(32, 2, dtype=torch.float64)
    return backbone, heads, x, y


def _losses(backbone, heads, x, y):
    z = backbone(x)
    return z, [(h(z)[:, 0] - y[:, i]).pow(2).mean() * s
               for i, (h, s) in enumerate(zip(heads, (200.0, 1.0), strict=True))]


@pytest.mark.parametrize("warmup", [0, 3])
def test_weighting_matches_gaba_loss_on_the_same_gradients(warmup):
    backbone, heads, x, y = _problem()
    shared = list(backbone.parameters())
    gaba = GABALoss(2, warmup=warmup)
    weighting = GABAWeighting(2, warmup=warmup)
    aggregator = GramianWeightedAggregator(weighting)
    for _ in range(8):
        for p in [*shared, *heads.parameters()]:
            p.grad = None
        _, losses = _losses(backbone, heads, x, y)
        gaba(losses, [*shared, *heads.parameters()], shared).backward()
        reference = [p.grad.clone() for p in shared]
        lam = torch.as_tensor(gaba.telemetry()["weights"])
        for p in [*shared, *heads.parameters()]:
            p.grad = None
        z, losses = _losses(backbone, heads, x, y)
        mtl_backward(losses, z)
        weights = jac_to_grad(shared, aggregator)
        torch.testing.assert_close(weights, lam, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(torch.as_tensor(weighting.loop.telemetry()["ema"]),
                                   torch.as_tensor(gaba.telemetry()["ema"]),
                                   rtol=1e-12, atol=1e-14)
        for a, b in zip(reference, shared, strict=True):
            torch.testing.assert_close(b.grad, a, rtol=1e-10, atol=1e-12)
        with torch.no_grad():  # move the model so the norms change from step to step
            for p in shared:
                p.sub_(0.05 * p.grad)


def test_state_dict_round_trip_and_validation():
    weighting = GABAWeighting(2, warmup=0)
    gram = torch.tensor([[9.0, 0.5], [0.5, 0.01]], dtype=torch.float64)
    for _ in range(5):
        weighting(gram)
    buffer = io.BytesIO()
    torch.save(weighting.state_dict(), buffer)
    buffer.seek(0)
    fresh = GABAWeighting(2, warmup=0)
    fresh.load_state_dict(torch.load(buffer))
    assert torch.equal(fresh(gram), weighting(gram))
    bad = weighting.state_dict()
    bad["loop.ema"] = torch.tensor([float("nan"), 0.5], dtype=torch.float64)
    with pytest.raises(ValueError, match="ema"):
        GABAWeighting(2, warmup=0).load_state_dict(bad)
    with pytest.raises(ValueError, match="beta"):
        GABAWeighting(2, warmup=0, beta=0.9).load_state_dict(weighting.state_dict())


def test_invalid_gramian_holds_the_state():
    weighting = GABAWeighting(2, warmup=0)
    good = torch.tensor([[4.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    before = weighting(good).clone()
    ema = weighting.loop.ema.clone()
    for bad in (torch.tensor([[float("nan"), 0.0], [0.0, 1.0]]),
                torch.tensor([[float("inf"), 0.0], [0.0, 1.0]]),
                torch.zeros(2, 2)):
        out = weighting(bad.double())
        assert torch.equal(weighting.loop.ema, ema)
        torch.testing.assert_close(out, before)
    with pytest.raises(ValueError, match="shape"):
        weighting(torch.eye(3))
    with pytest.raises(TypeError, match="sensor"):
        GABAWeighting(2, sensor="naive")
    with pytest.raises(ValueError, match="lambda_min"):
        GABAWeighting(2, lambda_min=0.6)


def test_round_off_negative_diagonal_reads_as_zero():
    weighting = GABAWeighting(2, warmup=0)
    out = weighting(torch.tensor([[-1e-30, 0.0], [0.0, 1.0]], dtype=torch.float64))
    assert torch.all(torch.isfinite(out))
    assert weighting.loop.telemetry()["norms"][0] == 0.0
