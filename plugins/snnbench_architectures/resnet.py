"""ResNets with basic and bottleneck blocks (He et al., CVPR 2016), as the SNN literature
uses them: ImageNet ResNet-18/34/50, the CIFAR ResNet-20 of the calibration and soft-reset
papers (widened to 64-128-256 channels) and TET's ResNet-19.

Stems adapt to the input: a 3x3 stride-1 stem for inputs up to 64x64 (digits, CIFAR,
event frames), the 7x7 stride-2 stem and a 3x3 stride-2 pool for larger ones.
Deviations from the original, shared by every member: average instead of max pooling in
the large-input stem (max over spikes is not the max of rates); 1x1-conv (option B)
shortcuts whenever the shape changes; the bottleneck strides in its 3x3 convolution
(ResNet v1.5, as torchvision); a stride-2 stage keeps stride 1 when halving would take
the map below 2x2, so small inputs work and no 3x3 convolution runs on a 1x1 map (8x8
digits: the last of ResNet-18/34/50's four stages stays at 2x2); the width multiplier
scales every channel count; the last BN of each residual branch starts at zero (Goyal
et al., 2017; resnet20 excepted), without which ResNet-50 does not train at the suite's
learning rate on digits.
"""

from __future__ import annotations

import torch
from torch import nn

from snnbench_architectures.common import (
    check_request,
    downsample,
    imagenet_or_cifar_stem,
    init_without_batch_norm,
    input_layers,
    norm2d,
    scaled,
    zero_init_branch,
)
from snnbench_suite import ArchitectureRequest, ArchitectureSpec


def _shortcut(in_channels: int, out_channels: int, stride: int, bn: bool) -> nn.Module:
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=not bn),
                         norm2d(out_channels, bn))


class BasicBlock(nn.Module):
    """Two 3x3 convolutions; the activation follows the residual addition."""

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int,
                 request: ArchitectureRequest, zero_init: bool = False) -> None:
        super().__init__()
        bn = request.batch_norm
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=not bn)
        self.bn1 = norm2d(channels, bn)
        self.act1 = request.activation()
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=not bn)
        self.bn2 = norm2d(channels, bn)
        self.shortcut = _shortcut(in_channels, channels, stride, bn)
        self.act2 = request.activation()
        if zero_init:
            zero_init_branch(self.conv2, self.bn2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act2(out + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided), 1x1 expand by 4; the activation follows the addition."""

    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int,
                 request: ArchitectureRequest, zero_init: bool = False) -> None:
        super().__init__()
        bn = request.batch_norm
        out_channels = channels * self.expansion
        self.conv1 = nn.Conv2d(in_channels, channels, 1, bias=not bn)
        self.bn1 = norm2d(channels, bn)
        self.act1 = request.activation()
        self.conv2 = nn.Conv2d(channels, channels, 3, stride, 1, bias=not bn)
        self.bn2 = norm2d(channels, bn)
        self.act2 = request.activation()
        self.conv3 = nn.Conv2d(channels, out_channels, 1, bias=not bn)
        self.bn3 = norm2d(out_channels, bn)
        self.shortcut = _shortcut(in_channels, out_channels, stride, bn)
        self.act3 = request.activation()
        if zero_init:
            zero_init_branch(self.conv3, self.bn3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.act2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.act3(out + self.shortcut(x))


Block = type[BasicBlock] | type[Bottleneck]


class ResNet(nn.Module):
    """Stem, stages (the first keeps the resolution, each later one halves it), global
    average pool, then a linear classifier or, with `hidden`, a two-layer head.
    `zero_init_residual` starts every residual branch at zero (see zero_init_branch);
    without BN they always start there, since He-initialised branches added to the
    identity would double the signal's variance at every block."""

    def __init__(self, blocks_per_stage: list[int], stage_channels: list[int],
                 request: ArchitectureRequest, name: str, *, block: Block = BasicBlock,
                 stem_channels: int | None = None, hidden: int | None = None,
                 zero_init_residual: bool = True) -> None:
        super().__init__()
        in_channels, height, width = check_request(request, name)
        channels = scaled(stem_channels or stage_channels[0], request.width)
        stem, size = imagenet_or_cifar_stem(in_channels, channels, min(height, width), request)
        self.stem = nn.Sequential(*input_layers(request), *stem)
        stages: list[nn.Module] = []
        for index, (blocks, base) in enumerate(zip(blocks_per_stage, stage_channels, strict=True)):
            stride = 1
            if index > 0:
                stride, size = downsample(size)
            planes = scaled(base, request.width)
            layers = []
            for number in range(blocks):
                layers.append(block(channels, planes, stride if number == 0 else 1, request,
                                    zero_init_residual or not request.batch_norm))
                channels = planes * block.expansion
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head: nn.Module = nn.Identity()
        if hidden is not None:
            hidden_features = scaled(hidden, request.width)
            self.head = nn.Sequential(nn.Linear(channels, hidden_features), request.activation())
            channels = hidden_features
        self.fc = nn.Linear(channels, request.num_classes)
        init_without_batch_norm(self, request)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))
        return self.fc(self.head(torch.flatten(self.pool(x), 1)))


IMAGENET_CHANNELS = [64, 128, 256, 512]


def resnet18(request: ArchitectureRequest) -> nn.Module:
    return ResNet([2, 2, 2, 2], IMAGENET_CHANNELS, request, "resnet18")


def resnet34(request: ArchitectureRequest) -> nn.Module:
    return ResNet([3, 4, 6, 3], IMAGENET_CHANNELS, request, "resnet34")


def resnet50(request: ArchitectureRequest) -> nn.Module:
    return ResNet([3, 4, 6, 3], IMAGENET_CHANNELS, request, "resnet50", block=Bottleneck)


def resnet20(request: ArchitectureRequest) -> nn.Module:
    # PyTorch's default initialisation, as resnet20 was first released here: results
    # recorded with it stay comparable. It trains well at the suite's learning rate.
    return ResNet([3, 3, 3], [64, 128, 256], request, "resnet20", zero_init_residual=False)


def resnet19(request: ArchitectureRequest) -> nn.Module:
    # TET's released code: a 64-channel stem, stages of 128, 256 and 512 channels with
    # 3, 3 and 2 blocks, and a 256-unit hidden layer before the classifier.
    return ResNet([3, 3, 2], [128, 256, 512], request, "resnet19", stem_channels=64,
                  hidden=256)


HE_2016 = "He et al., Deep Residual Learning for Image Recognition, CVPR 2016"
IMAGENET_DEVIATIONS = (
    "For inputs up to 64x64 the 7x7 stride-2 stem and its pool become one 3x3 stride-1 "
    "convolution (the CIFAR adaptation of the SNN literature); the stem pool is average, "
    "not max; projection shortcuts; global average pool and one linear classifier."
)

SPECS = [
    ArchitectureSpec(
        name="resnet18", family="resnet", build=resnet18, default_width=0.25,
        description="ResNet-18 (basic blocks, 64-128-256-512 channels at width 1)",
        citation=HE_2016, deviations=IMAGENET_DEVIATIONS,
    ),
    ArchitectureSpec(
        name="resnet19", family="resnet", build=resnet19, default_width=0.25,
        description="TET's ResNet-19 (128-256-512 channels, 3-3-2 basic blocks, 2 FC layers)",
        citation="Zheng et al., Going Deeper With Directly-Trained Larger Spiking Neural "
        "Networks, AAAI 2021; as released with Deng et al., Temporal Efficient Training of "
        "Spiking Neural Network via Gradient Re-weighting, ICLR 2022",
        deviations="Follows TET's released code (a 64-channel stem; Zheng et al.'s table "
        "lists 128). ReLU or the method's activation instead of LIF neurons, so the same "
        "ANN serves conversion and direct training; for inputs above 64x64 the ImageNet "
        "stem (7x7 stride 2 and a 3x3 average pool) is added.",
    ),
    ArchitectureSpec(
        name="resnet20", family="resnet", build=resnet20, default_width=0.25,
        description="ResNet-20 of the SNN literature (64-128-256 channels at width 1)",
        citation=HE_2016,
        deviations="He's CIFAR ResNet-20 has 16-32-64 channels (width 0.25 here, the "
        "default); the conversion literature (SNN Calibration, soft-reset conversion) "
        "widens it to 64-128-256 (width 1). Projection shortcuts instead of zero padding "
        "(option A); for inputs above 64x64 the ImageNet stem with average pooling.",
    ),
    ArchitectureSpec(
        name="resnet34", family="resnet", build=resnet34, default_width=0.25,
        description="ResNet-34 (basic blocks, 3-4-6-3, 64-128-256-512 channels at width 1)",
        citation=HE_2016, deviations=IMAGENET_DEVIATIONS,
    ),
    ArchitectureSpec(
        name="resnet50", family="resnet", build=resnet50, default_width=0.25,
        description="ResNet-50 (bottleneck blocks, 3-4-6-3, 256-2048 output channels at width 1)",
        citation=HE_2016,
        deviations=IMAGENET_DEVIATIONS + " The 3x3 convolution of a bottleneck carries its "
        "stride (ResNet v1.5).",
    ),
]
