"""The multi-task CNN: shapes, the parts GABA needs, argument checks."""

import pytest
import torch

from gaba_control.cmapss.model import MultiTaskCNN


@pytest.mark.parametrize(("channels", "window"), [(14, 30), (16, 30), (3, 7)])
def test_output_shapes(channels, window):
    model = MultiTaskCNN(channels, window)
    rul, logits = model(torch.randn(5, channels, window))
    assert rul.shape == (5,)
    assert logits.shape == (5, 3)


def test_parts_partition_the_parameters():
    model = MultiTaskCNN(14, 30)
    ids = lambda module: {id(p) for p in module.parameters()}  # noqa: E731
    parts = [ids(model.backbone), ids(model.rul_head), ids(model.health_head)]
    assert set.union(*parts) == ids(model)
    assert sum(len(p) for p in parts) == len(ids(model))


def test_heads_do_not_touch_each_other():
    model = MultiTaskCNN(4, 10)
    rul, _ = model(torch.randn(3, 4, 10))
    rul.sum().backward()
    assert all(p.grad is None for p in model.health_head.parameters())
    assert all(p.grad is not None for p in model.backbone.parameters())


def test_backbone_size_is_small():
    # 14 channels, window 30: conv 14*64*5+64 + 64*64*5+64, linear 1920*256+256
    model = MultiTaskCNN(14, 30)
    expected = 14 * 64 * 5 + 64 + 64 * 64 * 5 + 64 + 64 * 30 * 256 + 256
    assert sum(p.numel() for p in model.backbone.parameters()) == expected


def test_argument_errors():
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        MultiTaskCNN(4, 10, kernel_size=4)
    with pytest.raises(ValueError, match="num_channels"):
        MultiTaskCNN(0, 10)
    with pytest.raises(TypeError, match="unexpected keyword"):
        MultiTaskCNN(4, 10, dropout=0.1)
