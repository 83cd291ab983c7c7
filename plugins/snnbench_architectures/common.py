"""Pieces every architecture shares: input normalisation, width scaling, stem choice."""

from __future__ import annotations

import torch
from torch import nn

from snnbench_suite import ArchitectureRequest

# Inputs up to this size get a CIFAR-style stem (3x3, no early downsampling).
SMALL_INPUT_MAX = 64
MIN_CHANNELS = 4


class Normalize(nn.Module):
    """(x - mean) / std per channel; the model's first module so conversion sees it."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).reshape(-1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).reshape(-1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def check_request(request: ArchitectureRequest, name: str) -> tuple[int, int, int]:
    """Validate the request; return (channels, height, width) of the input."""
    if not request.width > 0:
        raise ValueError(f"{name}: the width multiplier must be > 0, got {request.width}")
    if request.num_classes < 2:
        raise ValueError(f"{name}: needs at least 2 classes, got {request.num_classes}")
    if len(request.input_shape) != 3:
        raise ValueError(
            f"{name}: expects an image input shape (C, H, W), got {request.input_shape}"
        )
    channels, height, width = (int(v) for v in request.input_shape)
    if min(channels, height, width) < 1:
        raise ValueError(f"{name}: invalid input shape {request.input_shape}")
    return channels, height, width


def scaled(channels: int, width: float) -> int:
    return max(MIN_CHANNELS, int(round(channels * width)))


def input_layers(request: ArchitectureRequest) -> list[nn.Module]:
    if request.normalization is None:
        return []
    mean, std = request.normalization
    return [Normalize(mean, std)]


def norm2d(channels: int, enabled: bool) -> nn.Module:
    return nn.BatchNorm2d(channels) if enabled else nn.Identity()
