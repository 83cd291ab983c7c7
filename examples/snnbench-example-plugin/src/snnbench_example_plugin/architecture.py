"""`example_lenet`: LeNet-5 (LeCun et al. 1998) with batch norm, average pooling and the
activation snnbench asks for, for any (C, H, W) input of at least 4x4.

Deviations from the 1998 network: batch norm after every convolution and hidden linear
layer (folded into the layer before conversion), the activation of the request (ReLU by
default) instead of the scaled tanh, 5x5 convolutions padded so small inputs keep their
size, and a width multiplier on every hidden layer (6, 16, 120 and 84 at width 1).
"""

from __future__ import annotations

import torch
from torch import nn

from snnbench_suite import ArchitectureRequest, ArchitectureSpec

MIN_INPUT = 4  # two 2x2 average pools


class Normalize(nn.Module):
    """(x - mean) / std per channel, as the first module so conversion sees it."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).reshape(-1, 1, 1))
        self.register_buffer("std", torch.tensor(std).reshape(-1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def build(request: ArchitectureRequest) -> nn.Module:
    """The network for one request; ValueError for a request it cannot take."""
    if not request.width > 0:
        raise ValueError(f"example_lenet: the width multiplier must be > 0, got {request.width}")
    if request.num_classes < 2:
        raise ValueError(f"example_lenet: needs at least 2 classes, got {request.num_classes}")
    if len(request.input_shape) != 3:
        raise ValueError("example_lenet: expects an image input shape (C, H, W), got "
                         f"{request.input_shape}")
    channels, height, width = request.input_shape
    if min(height, width) < MIN_INPUT:
        raise ValueError(f"example_lenet: the input {height}x{width} is too small; it takes "
                         f"inputs of at least {MIN_INPUT}x{MIN_INPUT}")

    def scaled(n: int) -> int:
        return max(2, round(n * request.width))

    c1, c2, f1, f2 = scaled(6), scaled(16), scaled(120), scaled(84)

    def norm2d(n: int) -> nn.Module:
        return nn.BatchNorm2d(n) if request.batch_norm else nn.Identity()

    def norm1d(n: int) -> nn.Module:
        return nn.BatchNorm1d(n) if request.batch_norm else nn.Identity()

    layers: list[nn.Module] = []
    if request.normalization is not None:
        layers.append(Normalize(*request.normalization))
    layers += [
        nn.Conv2d(channels, c1, 5, padding=2), norm2d(c1), request.activation(),
        nn.AvgPool2d(2),
        nn.Conv2d(c1, c2, 5, padding=2), norm2d(c2), request.activation(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(c2 * (height // 4) * (width // 4), f1), norm1d(f1), request.activation(),
        nn.Linear(f1, f2), norm1d(f2), request.activation(),
        nn.Linear(f2, request.num_classes),
    ]
    return nn.Sequential(*layers)


EXAMPLE_LENET = ArchitectureSpec(
    name="example_lenet",
    family="lenet",
    build=build,
    default_width=1.0,
    description="LeNet-5 with batch norm and average pooling (example plugin)",
    citation="LeCun et al., Gradient-based learning applied to document recognition, "
    "Proc. IEEE 1998",
    deviations="batch norm; the requested activation instead of scaled tanh; padded 5x5 "
    "convolutions; width multiplier",
)
