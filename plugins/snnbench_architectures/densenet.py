"""DenseNets (Huang et al., Densely Connected Convolutional Networks, CVPR 2017):
DenseNet-121 and the CIFAR DenseNet-BC (L=100, k=12).

Each dense layer is pre-activation: BN, activation, 1x1 convolution to 4k channels, BN,
activation, 3x3 convolution to k channels, and its output is concatenated to its input.
Transitions (BN, activation, 1x1 convolution halving the channels, 2x2 average pool) sit
between dense blocks. For conversion the BN that follows a concatenation cannot be folded
into a convolution; it stays as a per-channel affine layer, which acts on spikes as on
activations.

Deviations: DenseNet-121 on inputs up to 64x64 uses a 3x3 stride-1 stem instead of the
7x7 stride-2 convolution and its pool; the stem pool on larger inputs is average, not
max; a transition skips its pool when it would leave the next dense block a map below
2x2 (8x8 digits: DenseNet-121's last one); the width multiplier scales the
growth rate and the stem (the bottleneck stays 4 x growth, compression 0.5); no dropout.
"""

from __future__ import annotations

import torch
from torch import nn

from snnbench_architectures.common import (
    SMALLEST_MAP,
    check_request,
    imagenet_or_cifar_stem,
    init_without_batch_norm,
    input_layers,
    norm2d,
    scaled,
)
from snnbench_suite import ArchitectureRequest, ArchitectureSpec

BOTTLENECK_FACTOR = 4


def _pre_activation(channels: int, request: ArchitectureRequest) -> list[nn.Module]:
    return [norm2d(channels, request.batch_norm), request.activation()]


class DenseLayer(nn.Module):
    """BN-act-1x1 conv (4k)-BN-act-3x3 conv (k); returns the input with k channels added."""

    def __init__(self, in_channels: int, growth: int, request: ArchitectureRequest) -> None:
        super().__init__()
        bn = request.batch_norm
        hidden = BOTTLENECK_FACTOR * growth
        self.block = nn.Sequential(
            *_pre_activation(in_channels, request),
            nn.Conv2d(in_channels, hidden, 1, bias=not bn),
            *_pre_activation(hidden, request),
            nn.Conv2d(hidden, growth, 3, 1, 1, bias=not bn),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.block(x)], dim=1)


def densenet(blocks: list[int], growth_rate: int, stem_channels: int,
             request: ArchitectureRequest, name: str, *, bare_stem: bool = False) -> nn.Module:
    """Dense blocks of `blocks` layers with transitions (compression 0.5) between them.

    `bare_stem`: the CIFAR DenseNet-BC starts with a plain 3x3 convolution (its first dense
    layer normalises and activates), DenseNet-121 with conv, BN and activation."""
    in_channels, height, width = check_request(request, name)
    growth = scaled(growth_rate, request.width)
    channels = scaled(stem_channels, request.width)
    stem, size = imagenet_or_cifar_stem(in_channels, channels, min(height, width), request,
                                        activate=not bare_stem)
    layers: list[nn.Module] = [*input_layers(request), *stem]
    for index, count in enumerate(blocks):
        for _ in range(count):
            layers.append(DenseLayer(channels, growth, request))
            channels += growth
        if index == len(blocks) - 1:
            break
        reduced = channels // 2
        layers += [*_pre_activation(channels, request),
                   nn.Conv2d(channels, reduced, 1, bias=not request.batch_norm)]
        channels = reduced
        if size // 2 >= SMALLEST_MAP:
            layers.append(nn.AvgPool2d(2))
            size //= 2
    layers += [*_pre_activation(channels, request), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
               nn.Linear(channels, request.num_classes)]
    return init_without_batch_norm(nn.Sequential(*layers), request)


def densenet121(request: ArchitectureRequest) -> nn.Module:
    return densenet([6, 12, 24, 16], 32, 64, request, "densenet121")


def densenet_bc100(request: ArchitectureRequest) -> nn.Module:
    # L = 100: 3 blocks of (100 - 4) / 6 = 16 bottleneck layers; k = 12, stem 2k.
    return densenet([16, 16, 16], 12, 24, request, "densenet_bc100", bare_stem=True)


HUANG = "Huang et al., Densely Connected Convolutional Networks, CVPR 2017"

SPECS = [
    ArchitectureSpec(
        name="densenet121", family="densenet", build=densenet121, default_width=0.25,
        description="DenseNet-121 (growth 32, blocks 6-12-24-16, 64-channel stem at width 1)",
        citation=HUANG,
        deviations="3x3 stride-1 stem for inputs up to 64x64; average instead of max "
        "pooling in the large-input stem; transitions skip their pool below 2x2; the width "
        "multiplier scales growth rate and stem; no dropout.",
    ),
    ArchitectureSpec(
        name="densenet_bc100", family="densenet", build=densenet_bc100, default_width=0.5,
        description="CIFAR DenseNet-BC (L=100, k=12): 3 blocks of 16 bottleneck layers",
        citation=HUANG,
        deviations="For inputs above 64x64 the ImageNet stem (7x7 stride 2, 3x3 average "
        "pool) replaces the 3x3 stem; transitions skip their pool below 2x2; the width "
        "multiplier scales growth rate and stem; no dropout.",
    ),
]
