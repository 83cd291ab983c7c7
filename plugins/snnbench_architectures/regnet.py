"""RegNetX (Radosavovic et al., Designing Network Design Spaces, CVPR 2020) and its
width/depth rule, so that any RegNetX can be made from its five numbers.

The rule: block j of d gets the continuous width u_j = w0 + wa * j; it is snapped to
w0 * wm^round(log(u_j / w0) / log(wm)) and rounded to a multiple of 8; consecutive blocks
of equal width form a stage. Each stage width is then made divisible by its group width
(the group width itself is capped at the stage width). A stage is a run of X blocks
(1x1, grouped 3x3 that may stride, 1x1, residual), the first of each stage strides 2.

Deviations: for inputs up to 64x64 the stride-2 stem keeps stride 1; when the input
cannot be halved four times down to 2x2, the earliest stages keep stride 1 (8x8
digits: the first two);
the width multiplier scales each stage width before the group-width adjustment (so
channel counts stay divisible by the group width); each residual branch's last BN
starts at zero (Goyal et al., 2017), without which RegNetX does not train at the suite's
learning rate on digits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from snnbench_architectures.common import (
    MIN_CHANNELS,
    check_request,
    conv_bn_act,
    init_without_batch_norm,
    input_layers,
    is_small,
    norm2d,
    scaled,
    stage_strides,
    zero_init_branch,
)
from snnbench_suite import ArchitectureRequest, ArchitectureSpec


@dataclass(frozen=True)
class RegNetParams:
    """The numbers that define a RegNetX (table 'RegNetX' of the paper's appendix)."""

    depth: int
    w0: int
    wa: float
    wm: float
    group_width: int
    bottleneck_ratio: float = 1.0
    stem_width: int = 32
    quantum: int = 8


REGNETX = {
    "regnetx_200mf": RegNetParams(depth=13, w0=24, wa=36.44, wm=2.49, group_width=8),
    "regnetx_400mf": RegNetParams(depth=22, w0=24, wa=24.48, wm=2.54, group_width=16),
}


def stage_plan(params: RegNetParams, width: float = 1.0) -> list[tuple[int, int, int]]:
    """(width, depth, group width) of each stage, for the given width multiplier."""
    if params.depth < 1 or params.w0 < 1 or params.wa <= 0 or params.wm <= 1:
        raise ValueError(f"invalid RegNet parameters {params}: need depth >= 1, w0 >= 1, "
                         "wa > 0 and wm > 1")
    widths: list[int] = []
    for j in range(params.depth):
        step = round(math.log((params.w0 + params.wa * j) / params.w0) / math.log(params.wm))
        snapped = params.w0 * params.wm ** step
        widths.append(int(round(snapped / params.quantum)) * params.quantum)
    stages: list[list[int]] = []  # [width, depth]
    for w in widths:
        if stages and stages[-1][0] == w:
            stages[-1][1] += 1
        else:
            stages.append([w, 1])
    plan = []
    for stage_width, depth in stages:
        bottleneck = max(MIN_CHANNELS,
                         int(round(stage_width * width * params.bottleneck_ratio)))
        group = min(params.group_width, bottleneck)
        bottleneck = max(group, int(round(bottleneck / group)) * group)
        plan.append((int(round(bottleneck / params.bottleneck_ratio)), depth, group))
    return plan


class XBlock(nn.Module):
    """RegNet's X block: 1x1, grouped 3x3 (strided), 1x1; activation after the addition."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, group_width: int,
                 bottleneck_ratio: float, request: ArchitectureRequest) -> None:
        super().__init__()
        bn = request.batch_norm
        hidden = int(round(out_channels * bottleneck_ratio))
        layers = [
            *conv_bn_act(in_channels, hidden, 1, 1, request),
            *conv_bn_act(hidden, hidden, 3, stride, request, groups=hidden // group_width),
        ]
        project = nn.Conv2d(hidden, out_channels, 1, bias=not bn)
        project_norm = norm2d(out_channels, bn)
        self.block = nn.Sequential(*layers, project, project_norm)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride,
                                                    bias=not bn), norm2d(out_channels, bn))
        self.act = request.activation()
        zero_init_branch(project, project_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.block(x) + self.shortcut(x))


def regnet(params: RegNetParams, request: ArchitectureRequest, name: str) -> nn.Module:
    """Build the RegNetX that `params` define (see `stage_plan`)."""
    in_channels, height, width = check_request(request, name)
    size = min(height, width)
    channels = scaled(params.stem_width, request.width)
    stride, size = (1, size) if is_small(size) else (2, (size + 1) // 2)
    layers: list[nn.Module] = [*input_layers(request),
                               *conv_bn_act(in_channels, channels, 3, stride, request)]
    plan = stage_plan(params, request.width)
    strides = stage_strides(size, len(plan))
    for (stage_width, depth, group), stage_stride in zip(plan, strides, strict=True):
        for number in range(depth):
            layers.append(XBlock(channels, stage_width, stage_stride if number == 0 else 1, group,
                                 params.bottleneck_ratio, request))
            channels = stage_width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, request.num_classes)]
    return init_without_batch_norm(nn.Sequential(*layers), request)


def regnetx_200mf(request: ArchitectureRequest) -> nn.Module:
    return regnet(REGNETX["regnetx_200mf"], request, "regnetx_200mf")


def regnetx_400mf(request: ArchitectureRequest) -> nn.Module:
    return regnet(REGNETX["regnetx_400mf"], request, "regnetx_400mf")


RADOSAVOVIC = ("Radosavovic et al., Designing Network Design Spaces, CVPR 2020")
DEVIATIONS = ("Stem stride 1 for inputs up to 64x64; the earliest stages keep stride 1 "
              "when the input cannot be halved four times down to 2x2; the width multiplier scales "
              "stage widths before rounding them to the group width; zero-initialised last "
              "BN in each residual branch; the method's activation everywhere.")

SPECS = [
    ArchitectureSpec(
        name="regnetx_200mf", family="regnet", build=regnetx_200mf, default_width=0.5,
        description="RegNetX-200MF (d=13, w0=24, wa=36.44, wm=2.49, g=8): "
        "24-56-152-368 channels, 1-1-4-7 blocks at width 1",
        citation=RADOSAVOVIC, deviations=DEVIATIONS,
    ),
    ArchitectureSpec(
        name="regnetx_400mf", family="regnet", build=regnetx_400mf, default_width=0.5,
        description="RegNetX-400MF (d=22, w0=24, wa=24.48, wm=2.54, g=16): "
        "32-64-160-384 channels, 1-2-7-12 blocks at width 1",
        citation=RADOSAVOVIC, deviations=DEVIATIONS,
    ),
]
