"""GABALoss inside PyTorch Lightning: automatic, manual and accumulated optimisation, bf16-true.

Each run is compared with the same training written as a plain PyTorch loop
(the README's recipe), so a difference would be Lightning changing what GABA
does. Skipped when lightning is not installed.
"""

import pytest
import torch
from numpy.testing import assert_allclose
from torch import nn

L = pytest.importorskip("lightning")
from gaba_control.nn import GABALoss  # noqa: E402

BATCHES = 12


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(BATCHES * 8, 5, generator=g)
    y = torch.randn(BATCHES * 8, 2, generator=g)
    return x, y


def _net():
    torch.manual_seed(0)
    return nn.ModuleDict({"backbone": nn.Sequential(nn.Linear(5, 8), nn.Tanh()),
                          "heads": nn.ModuleList([nn.Linear(8, 1), nn.Linear(8, 1)])})


def _losses(net, x, y):
    z = net["backbone"](x)
    return [30.0 * nn.functional.mse_loss(net["heads"][0](z)[:, 0], y[:, 0]),
            nn.functional.mse_loss(net["heads"][1](z)[:, 0], y[:, 1])]


class Module(L.LightningModule):
    def __init__(self, accumulation=1, manual=False):
        super().__init__()
        self.net = _net()
        self.gaba = GABALoss(2, warmup=2, beta=0.5, accumulation_steps=accumulation)
        self.automatic_optimization = not manual

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = self.gaba(_losses(self.net, x, y), self.net.parameters(),
                         self.net["backbone"].parameters())
        if self.automatic_optimization:
            return loss
        opt = self.optimizers()
        opt.zero_grad()
        self.manual_backward(loss)
        opt.step()
        return None

    def configure_optimizers(self):
        return torch.optim.SGD(self.net.parameters(), lr=0.05)


def _fit(module, accumulate=1, precision="32-true"):
    x, y = _data()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)
    trainer = L.Trainer(max_epochs=1, accelerator="cpu", devices=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, accumulate_grad_batches=accumulate,
                        precision=precision, deterministic=True)
    trainer.fit(module, loader)
    return module


def _plain(accumulation=1):
    net = _net()
    gaba = GABALoss(2, warmup=2, beta=0.5, accumulation_steps=accumulation)
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    x, y = _data()
    for i in range(BATCHES):
        xs, ys = x[8 * i:8 * (i + 1)], y[8 * i:8 * (i + 1)]
        loss = gaba(_losses(net, xs, ys), net.parameters(), net["backbone"].parameters())
        (loss / accumulation).backward()
        if (i + 1) % accumulation == 0:
            opt.step()
            opt.zero_grad()
    return net, gaba


@pytest.mark.parametrize(("manual", "accumulate"), [(False, 1), (True, 1), (False, 3)])
def test_lightning_trains_as_the_plain_loop(manual, accumulate):
    module = _fit(Module(accumulation=accumulate, manual=manual), accumulate=accumulate)
    net, gaba = _plain(accumulate)
    assert int(module.gaba.step) == int(gaba.step) == BATCHES // accumulate
    assert_allclose(module.gaba.last_weights.numpy(), gaba.last_weights.numpy(), rtol=1e-12)
    for a, b in zip(module.net.parameters(), net.parameters(), strict=True):
        assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-5, atol=1e-7)


def test_lightning_bf16_true_keeps_the_loop_in_float32():
    module = _fit(Module(), precision="bf16-true")
    assert module.net["heads"][0].weight.dtype == torch.bfloat16
    assert all(b.dtype == torch.float32 for b in module.gaba.buffers() if b.is_floating_point())
    assert abs(float(module.gaba.last_weights.sum()) - 1.0) < 1e-6
    assert int(module.gaba.step) == BATCHES
