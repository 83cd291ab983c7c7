"""Pieces every architecture shares: input normalisation, request checks, width scaling,
the stem chosen by input size, and the rule that stops downsampling at 2x2."""

from __future__ import annotations

from typing import TypeVar

import torch
from torch import nn

from snnbench_suite import ArchitectureRequest

ModuleT = TypeVar("ModuleT", bound=nn.Module)

# Inputs up to this size get a CIFAR-style stem (3x3, no early downsampling).
SMALL_INPUT_MAX = 64
MIN_CHANNELS = 4
# Below 4x4 a 3x3 convolution sees more zero padding than image, and no stage can
# downsample; such an input is refused rather than run through a degenerate network.
MIN_INPUT_SIZE = 4
# Downsampling stops at this side. On a 1x1 map a 3x3 convolution is only its centre tap
# (a depthwise one a per-channel scale), so a network whose last stages run there is no
# longer the architecture it is named after; CIFAR adaptations end at 2x2 or more. On 8x8
# digits every family reaches 2x2 after two halvings.
SMALLEST_MAP = 2


class Normalize(nn.Module):
    """(x - mean) / std per channel; the model's first module so conversion sees it."""

    mean: torch.Tensor  # buffers, declared for type checkers
    std: torch.Tensor

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).reshape(-1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).reshape(-1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def check_request(request: ArchitectureRequest, name: str,
                  min_size: int = MIN_INPUT_SIZE) -> tuple[int, int, int]:
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
    if channels < 1:
        raise ValueError(f"{name}: invalid input shape {request.input_shape}")
    if min(height, width) < min_size:
        raise ValueError(
            f"{name}: the input {height}x{width} is too small; this architecture takes "
            f"inputs of at least {min_size}x{min_size}. Use a larger input (e.g. "
            "--set digits.size=16 upsamples the digits)."
        )
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


def is_small(size: int) -> bool:
    """Whether an input of this (smaller) side gets the CIFAR-style stem."""
    return size <= SMALL_INPUT_MAX


def downsample(size: int) -> tuple[int, int]:
    """(stride, new size) for a stage that halves the map: stride 1 once halving would go
    below SMALLEST_MAP, so the *latest* stages keep the smallest map. The size rounds up,
    as a padded 3x3 (or 1x1) convolution with stride 2 does."""
    halved = (size + 1) // 2
    if halved < SMALLEST_MAP:
        return 1, size
    return 2, halved


def stage_strides(size: int, stages: int, smallest: int = SMALLEST_MAP) -> list[int]:
    """Strides of `stages` stride-2 stages on a map of side `size`. When the map cannot
    be halved that often (down to `smallest` x `smallest`), the *earliest* stages keep
    stride 1, so the deep stages still see a spatial map: a deep stack of 3x3
    convolutions on a 1x1 map is a plain MLP, which trains poorly (MobileNet V1 on 8x8
    digits: 55% instead of 79%).

    Stopping at 2x2 rather than 1x1 matters most for depthwise networks: on a 1x1 map a
    depthwise 3x3 convolution is a per-channel scale, and the stride-2 one that makes the
    1x1 map sees 4 of its 9 inputs. On 8x8 digits the MobileNets' ANNs reach 92% (V1) and
    96% (V2) instead of 81% and 73% after the digits training, and V2's naive conversion
    agrees with its ANN on 97.5% of the test digits at T = 256 instead of 22%."""
    possible, side = 0, size
    while side > smallest and possible < stages:
        side = (side + 1) // 2
        possible += 1
    return [1] * (stages - possible) + [2] * possible


def zero_init_branch(branch_conv: nn.Conv2d, branch_norm: nn.Module) -> None:
    """Start a residual branch at zero, so each block begins as the identity and deep
    residual networks train at the suite's learning rate: with BN, its last BN's scale
    (Goyal et al., 2017); without BN, its last convolution's weights (Fixup, Zhang et
    al., 2019), which `init_without_batch_norm` then leaves at zero."""
    if isinstance(branch_norm, nn.BatchNorm2d):
        nn.init.zeros_(branch_norm.weight)
    else:
        nn.init.zeros_(branch_conv.weight)


def init_without_batch_norm(model: ModuleT, request: ArchitectureRequest) -> ModuleT:
    """Without BN, give every convolution He initialisation (fan-in, ReLU gain).

    PyTorch's default initialisation shrinks the signal's variance at every layer; BN
    undoes that, and without it a deep network's logits barely depend on its input. On
    8x8 digits the BN-free mobilenet_v2 gave the same logits for every image and trained
    to chance (10.09 %). Convolutions a block zeroed on purpose (`zero_init_branch`)
    stay zero. With BN the model is returned unchanged."""
    if request.batch_norm:
        return model
    for module in model.modules():
        if isinstance(module, nn.Conv2d) and bool(module.weight.detach().any()):
            nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return model


def conv_bn_act(in_channels: int, out_channels: int, kernel: int, stride: int,
                request: ArchitectureRequest, groups: int = 1,
                padding: int | None = None) -> list[nn.Module]:
    """Convolution ('same' padding unless given), BN when the request has it, then the
    activation."""
    bn = request.batch_norm
    pad = kernel // 2 if padding is None else padding
    return [nn.Conv2d(in_channels, out_channels, kernel, stride, pad, groups=groups,
                      bias=not bn),
            norm2d(out_channels, bn), request.activation()]


def imagenet_or_cifar_stem(in_channels: int, out_channels: int, size: int,
                           request: ArchitectureRequest,
                           activate: bool = True) -> tuple[list[nn.Module], int]:
    """The ResNet/DenseNet stem: 3x3 stride 1 for small inputs, else 7x7 stride 2 and a
    3x3 stride-2 pool (average, not max, so that conversion keeps rates). Returns the
    layers (without input normalisation) and the feature-map side after them.

    `activate=False` leaves out BN and activation (pre-activation networks such as the
    CIFAR DenseNet-BC start with a bare convolution)."""
    bn = request.batch_norm and activate
    if is_small(size):
        layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 3, 1, 1, bias=not bn)]
        if activate:
            layers += [norm2d(out_channels, bn), request.activation()]
        return layers, size
    layers = [nn.Conv2d(in_channels, out_channels, 7, 2, 3, bias=not bn)]
    if activate:
        layers += [norm2d(out_channels, bn), request.activation()]
    layers.append(nn.AvgPool2d(3, 2, 1))
    return layers, ((size + 1) // 2 + 1) // 2
