"""A small multi-task 1D-CNN for C-MAPSS windows: shared backbone, RUL and health heads."""

from __future__ import annotations

import torch
from torch import nn

from gaba_control._validation import check_no_extra_kwargs, check_positive_int

__all__ = ["MultiTaskCNN"]


class MultiTaskCNN(nn.Module):
    """Shared 1D-CNN backbone with a RUL regression head and a health classification head.

    ``backbone``: Conv1d(channels→64, k) → ReLU → Conv1d(64→64, k) → ReLU →
    Flatten → Linear(64·window→256) → ReLU ("same" padding keeps the window
    length). ``rul_head``: Linear(256→64) → ReLU → Linear(64→1).
    ``health_head``: Linear(256→64) → ReLU → Linear(64→num_classes).
    GABA measures the task gradients on ``backbone.parameters()``.
    With ``next_cycle=True`` a third head, Linear(256→64) → ReLU →
    Linear(64→channels), predicts the next cycle's normalised sensors (the
    self-supervised auxiliary task of a three-task run) and ``forward`` returns
    its output third.

    Parameters
    ----------
    num_channels : int
        Input channels (sensors kept by the data loader).
    window : int
        Window length in cycles.
    num_classes : int
        Health states (3).
    conv_channels, kernel_size, hidden : int
        Backbone width (64), convolution kernel (5, odd), feature size (256).
    next_cycle : bool
        Add the next-cycle head (default False).

    Examples
    --------
    >>> model = MultiTaskCNN(num_channels=14, window=30)
    >>> rul, logits = model(torch.zeros(8, 14, 30))
    >>> tuple(rul.shape), tuple(logits.shape)
    ((8,), (8, 3))
    """

    def __init__(
        self,
        num_channels: int,
        window: int = 30,
        num_classes: int = 3,
        *,
        conv_channels: int = 64,
        kernel_size: int = 5,
        hidden: int = 256,
        next_cycle: bool = False,
        **kwargs,
    ) -> None:
        check_no_extra_kwargs(kwargs, "MultiTaskCNN")
        super().__init__()
        num_channels = check_positive_int(num_channels, "num_channels")
        window = check_positive_int(window, "window")
        num_classes = check_positive_int(num_classes, "num_classes")
        kernel_size = check_positive_int(kernel_size, "kernel_size")
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (same padding), got {kernel_size}")
        padding = kernel_size // 2
        self.backbone = nn.Sequential(
            nn.Conv1d(num_channels, conv_channels, kernel_size, padding=padding),
            nn.ReLU(),
            nn.Conv1d(conv_channels, conv_channels, kernel_size, padding=padding),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(conv_channels * window, hidden),
            nn.ReLU(),
        )
        self.rul_head = nn.Sequential(nn.Linear(hidden, 64), nn.ReLU(), nn.Linear(64, 1))
        self.health_head = nn.Sequential(
            nn.Linear(hidden, 64), nn.ReLU(), nn.Linear(64, num_classes)
        )
        if not isinstance(next_cycle, bool):
            raise TypeError(f"next_cycle must be a bool, got {type(next_cycle).__name__}")
        self.next_head = nn.Sequential(nn.Linear(hidden, 64), nn.ReLU(),
                                       nn.Linear(64, num_channels)) if next_cycle else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Windows ``(N, channels, window)`` → (RUL ``(N,)``, health logits ``(N, classes)``
        [, next-cycle sensors ``(N, channels)``])."""
        return self.heads(self.backbone(x))

    @property
    def last_shared_layer(self) -> nn.Linear:
        """The backbone's last layer with parameters (what ``sensor="last_layer"`` reads)."""
        return self.backbone[5]

    def heads(self, features: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The task heads on the shared representation ``features = backbone(x)``
        (``sensor="representation"`` reads the task gradients with respect to it)."""
        out = (self.rul_head(features).squeeze(-1), self.health_head(features))
        if self.next_head is not None:
            out = (*out, self.next_head(features))
        return out
