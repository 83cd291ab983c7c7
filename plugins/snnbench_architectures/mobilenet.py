"""MobileNet V1 (Howard et al., 2017) and V2 (Sandler et al., CVPR 2018).

Both start with a 3x3 stride-2 convolution; for inputs up to 64x64 it keeps stride 1
(and V2's first stride-2 stage, the 24-channel one, keeps stride 1 too, the usual CIFAR
adaptation). Downsampling stops at a 2x2 map, where the CIFAR adaptations end (32x32
input): when the input cannot be halved by every later stride-2 stage, the earliest of
them keep stride 1. On a 1x1 map a depthwise 3x3 convolution degenerates into a
per-channel scale, and the stride-2 one producing that map sees 4 of its 9 inputs: on
8x8 digits (where V1's 1024-channel and V2's 160- and 320-channel stages would otherwise
run on 1x1 maps) the ANNs then reached 92% (V1, while it still had activations after its
depthwise convolutions) and 96% (V2) instead of 81% and 73% with the digits training,
and convert far better (V2: `calib` at T = 32 within 1 point of the
ANN instead of 8; naive at T = 256 agreeing with the ANN on 97.5% of the test digits
instead of 22%). V2's
residual branches start at zero (last BN, Goyal et al., 2017), which it needs to train at
the suite's learning rate. The width multiplier scales every channel count uniformly,
including V2's 1280-channel last convolution (the original keeps it at 1280 for
multipliers below 1), with at least 4 channels and no rounding to multiples of 8. No
dropout before the classifier.

V1's depthwise convolutions have no BN and no activation of their own: each separable
block is a linear depthwise 3x3 convolution, then the pointwise 1x1 convolution with BN
and the activation (the quantization-friendly separable convolution of Sheng et al.,
2018, without its L2 penalty on the depthwise weights). Conversion turns every activation
into a neuron layer, and the original's activation after each depthwise convolution
nearly doubles the neuron layers in a row (27 instead of 14); there, each layer's mean
activation was 2-5% of its maximum, the layer's threshold, so a typical neuron fired 5 to
13 times in 256 steps and the rate errors added up over the layers. On 8x8 digits after
the suite's digits training (seed 0, default width), with the depthwise activations the
ANN reached 91.9%, naive conversion at T = 256 agreed with it on 66.9% of the test
digits, and `calib` at T = 32 scored 83.9%; without them the ANN reaches 97.8%, naive
agrees on 98.1% and `calib` scores 97.2%.

ReLU6: V2 (and V1 in some implementations) clips its activations at 6. Here every
activation is the method's `request.activation()`: plain ReLU for the conversion
baselines, a clipped or quantised activation for methods that train one. A method that
wants the original clip at 6 passes `nn.ReLU6` as its factory; the conversion engine
treats ReLU6 as a clipped activation and gives it a neuron like any ReLU.
"""

from __future__ import annotations

import torch
from torch import nn

from snnbench_architectures.common import (
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

# (output channels, stride) of each depthwise-separable block of MobileNet V1.
V1_BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1),
             (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)]
# (expansion t, output channels c, repeats n, first stride s) of MobileNet V2.
V2_STAGES = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
             (6, 160, 3, 2), (6, 320, 1, 1)]


def _stem(in_channels: int, out_channels: int, size: int, request: ArchitectureRequest
          ) -> tuple[list[nn.Module], int]:
    stride, reduced = (1, size) if is_small(size) else (2, (size + 1) // 2)
    return conv_bn_act(in_channels, out_channels, 3, stride, request), reduced


def mobilenet_v1(request: ArchitectureRequest) -> nn.Module:
    in_channels, height, width = check_request(request, "mobilenet_v1")
    size = min(height, width)
    channels = scaled(32, request.width)
    stem, size = _stem(in_channels, channels, size, request)
    layers: list[nn.Module] = [*input_layers(request), *stem]
    strides = iter(stage_strides(size, sum(s == 2 for _, s in V1_BLOCKS)))
    for out, stride in V1_BLOCKS:
        if stride == 2:
            stride = next(strides)
        out_channels = scaled(out, request.width)
        # Sheng et al.'s separable convolution: the depthwise part stays linear.
        layers.append(nn.Conv2d(channels, channels, 3, stride, 1, groups=channels, bias=False))
        layers += conv_bn_act(channels, out_channels, 1, 1, request)
        channels = out_channels
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, request.num_classes)]
    return init_without_batch_norm(nn.Sequential(*layers), request)


class InvertedResidual(nn.Module):
    """Expand (1x1), depthwise 3x3, project (1x1, linear); a residual when shapes match."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int,
                 request: ArchitectureRequest) -> None:
        super().__init__()
        hidden = in_channels * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers += conv_bn_act(in_channels, hidden, 1, 1, request)
        layers += conv_bn_act(hidden, hidden, 3, stride, request, groups=hidden)
        project = nn.Conv2d(hidden, out_channels, 1, bias=not request.batch_norm)
        project_norm = norm2d(out_channels, request.batch_norm)
        layers += [project, project_norm]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and in_channels == out_channels
        if self.residual:
            zero_init_branch(project, project_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.residual else out


def mobilenet_v2(request: ArchitectureRequest) -> nn.Module:
    in_channels, height, width = check_request(request, "mobilenet_v2")
    size = min(height, width)
    # The CIFAR adaptation: on small inputs the 24-channel stage does not downsample.
    stages = [(t, c, n, 1 if c == 24 and is_small(size) else s) for t, c, n, s in V2_STAGES]
    channels = scaled(32, request.width)
    stem, size = _stem(in_channels, channels, size, request)
    layers: list[nn.Module] = [*input_layers(request), *stem]
    strides = iter(stage_strides(size, sum(s == 2 for *_, s in stages)))
    for expansion, out, repeats, first_stride in stages:
        stride = next(strides) if first_stride == 2 else 1
        out_channels = scaled(out, request.width)
        for number in range(repeats):
            layers.append(InvertedResidual(channels, out_channels, stride if number == 0 else 1,
                                           expansion, request))
            channels = out_channels
    last = scaled(1280, request.width)
    layers += conv_bn_act(channels, last, 1, 1, request)
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(last, request.num_classes)]
    return init_without_batch_norm(nn.Sequential(*layers), request)


SPECS = [
    ArchitectureSpec(
        name="mobilenet_v1", family="mobilenet", build=mobilenet_v1, default_width=0.25,
        description="MobileNet V1: 13 depthwise-separable blocks, 32-1024 channels at width 1",
        citation="Howard et al., MobileNets: Efficient Convolutional Neural Networks for "
        "Mobile Vision Applications, arXiv:1704.04861, 2017",
        deviations="The depthwise convolutions have no BN and no activation (Sheng et "
        "al., A Quantization-Friendly Separable Convolution for MobileNets, EMC2 2018, "
        "without its depthwise weight penalty), so that conversion does not put a neuron "
        "layer after each of them; stem stride 1 for inputs up to 64x64; the earliest "
        "stride-2 blocks keep stride 1 when the input is too small to reach 2x2 otherwise "
        "(8x8 digits end at 2x2, as CIFAR does); uniform width scaling (at least 4 "
        "channels, no rounding to multiples of 8); the method's activation everywhere; no "
        "dropout.",
    ),
    ArchitectureSpec(
        name="mobilenet_v2", family="mobilenet", build=mobilenet_v2, default_width=0.25,
        description="MobileNet V2: inverted residuals with linear bottlenecks, 1280-channel "
        "head at width 1",
        citation="Sandler et al., MobileNetV2: Inverted Residuals and Linear Bottlenecks, "
        "CVPR 2018",
        deviations="Every ReLU6 is the method's activation (plain ReLU for conversion "
        "baselines; pass nn.ReLU6 to keep the clip, which conversion handles as a clipped "
        "activation); for inputs up to 64x64 the stem and the 24-channel stage keep "
        "stride 1, and the earliest later stride-2 stages keep stride 1 when the input is "
        "too small to reach 2x2 otherwise (8x8 digits end at 2x2, as CIFAR does); the "
        "1280-channel head is scaled with the width; no dropout.",
    ),
]
