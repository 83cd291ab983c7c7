"""ResNet-20 as the SNN conversion literature uses it (He et al., CVPR 2016, section 4.2;
widened as in the SNN Calibration and soft-reset conversion code).

Three stages of three basic blocks with 64, 128 and 256 channels at width 1.0 (He's CIFAR
ResNet-20 has 16, 32 and 64: width 0.25, the default on the embedded digits), a 3x3 stem
for small inputs and the 7x7 stride-2 stem with average pooling for ImageNet-sized ones.
Deviations: 1x1-conv (option B) shortcuts when the shape changes;
average instead of max pooling in the large-input stem; a stride-2 stage keeps stride 1
when the feature map is already 1x1.
"""

from __future__ import annotations

import torch
from torch import nn

from snnbench_architectures.common import (
    SMALL_INPUT_MAX,
    check_request,
    input_layers,
    norm2d,
    scaled,
)
from snnbench_suite import ArchitectureRequest


class BasicBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int,
                 request: ArchitectureRequest) -> None:
        super().__init__()
        bn = request.batch_norm
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=not bn)
        self.bn1 = norm2d(out_channels, bn)
        self.act1 = request.activation()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=not bn)
        self.bn2 = norm2d(out_channels, bn)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=not bn),
                norm2d(out_channels, bn),
            )
        self.act2 = request.activation()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act2(out + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, blocks_per_stage: list[int], stage_channels: list[int],
                 request: ArchitectureRequest, name: str) -> None:
        super().__init__()
        in_channels, height, _ = check_request(request, name)
        bn = request.batch_norm
        stem_channels = scaled(stage_channels[0], request.width)
        size = height
        stem: list[nn.Module] = input_layers(request)
        if height <= SMALL_INPUT_MAX:
            stem += [nn.Conv2d(in_channels, stem_channels, 3, 1, 1, bias=not bn),
                     norm2d(stem_channels, bn), request.activation()]
        else:
            stem += [nn.Conv2d(in_channels, stem_channels, 7, 2, 3, bias=not bn),
                     norm2d(stem_channels, bn), request.activation(),
                     nn.AvgPool2d(3, 2, 1)]
            size = (size + 1) // 2
            size = (size + 1) // 2
        self.stem = nn.Sequential(*stem)
        stages: list[nn.Module] = []
        channels = stem_channels
        for index, (blocks, base) in enumerate(zip(blocks_per_stage, stage_channels, strict=True)):
            out_channels = scaled(base, request.width)
            stride = 2 if index > 0 and size >= 2 else 1
            if stride == 2:
                size = (size + 1) // 2
            layers = []
            for block in range(blocks):
                layers.append(BasicBlock(channels, out_channels, stride if block == 0 else 1,
                                         request))
                channels = out_channels
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, request.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))
        return self.fc(torch.flatten(self.pool(x), 1))


def resnet20(request: ArchitectureRequest) -> nn.Module:
    return ResNet([3, 3, 3], [64, 128, 256], request, "resnet20")
