"""VGG networks for conversion and direct training: VGG-11/13/16 (Simonyan & Zisserman,
ICLR 2015), CQ+'s 7-layer VGG-* and TET's event-data VGGSNN.

Deviations shared by the family, as the conversion literature does: average pooling
instead of max pooling (max over spikes is not the max of rates); the width multiplier
scales every channel count. VGG has no stem, so large inputs simply keep more resolution
until the global pool.

Small inputs: a pool is skipped when it would leave later convolutions on a 1x1 map
(where a 3x3 kernel degenerates into its centre tap), and when the map is already 1x1.
On 32x32 CIFAR and 34x34 event frames nothing is skipped that matters: the last pool
reaches 1x1 with no convolution after it. On 8x8 digits the convolutions after the
second pool keep a 2x2 map; with the earlier rule (pools skipped only below 1x1) vgg11's
last four and vgg16's last six convolutions ran on 1x1 maps. Measured on digits, seed 0:
vgg11's ANN 97.5% -> 98.9% and `calib` at T = 4 92.5% -> 97.8%; vgg16's ANN 79.4% ->
94.7% and its naive SNN at T = 256 agreeing with the ANN on 72.2% -> 95.3% of the test
digits.
"""

from __future__ import annotations

from torch import nn

from snnbench_architectures.common import (
    SMALLEST_MAP,
    check_request,
    conv_bn_act,
    init_without_batch_norm,
    input_layers,
    scaled,
)
from snnbench_suite import ArchitectureRequest, ArchitectureSpec

POOL = "P"
VALID = "V"  # the next convolution has no padding (CQ+'s 1024-channel layer)
CONFIGS: dict[str, list[int | str]] = {
    "vgg11": [64, POOL, 128, POOL, 256, 256, POOL, 512, 512, POOL, 512, 512, POOL],
    "vgg13": [64, 64, POOL, 128, 128, POOL, 256, 256, POOL, 512, 512, POOL, 512, 512, POOL],
    "vgg16": [64, 64, POOL, 128, 128, POOL, 256, 256, 256, POOL, 512, 512, 512, POOL,
              512, 512, 512, POOL],
    "vgg_star": [128, 128, POOL, 256, 256, POOL, 512, 512, POOL, VALID, 1024, POOL],
    "vggsnn": [64, 128, POOL, 256, 256, POOL, 512, 512, POOL, 512, 512, POOL],
}


def _pool_keeps_convolutions_spatial(rest: list[int | str], height: int, width: int) -> bool:
    """Whether a 2x2 pool may run here: it needs a 2x2 map, and the convolutions after it
    must not be left on a 1x1 map, where a 3x3 kernel degenerates into its centre tap."""
    if min(height, width) < 2:
        return False
    convolutions_follow = any(item not in (POOL, VALID) for item in rest)
    return not convolutions_follow or min(height, width) // 2 >= SMALLEST_MAP


def vgg_features(config: list[int | str], request: ArchitectureRequest, name: str
                 ) -> tuple[list[nn.Module], int, tuple[int, int]]:
    """The convolutional part: (layers, output channels, output height and width)."""
    in_channels, height, width = check_request(request, name)
    layers: list[nn.Module] = input_layers(request)
    valid = False
    for index, item in enumerate(config):
        if item == POOL:
            if _pool_keeps_convolutions_spatial(config[index + 1:], height, width):
                layers.append(nn.AvgPool2d(2))
                height, width = height // 2, width // 2
            continue
        if item == VALID:
            valid = True
            continue
        out_channels = scaled(int(item), request.width)
        # An unpadded 3x3 convolution needs a 3x3 map; on smaller ones it stays padded.
        padding = 1
        if valid and min(height, width) >= 3:
            padding = 0
            height, width = height - 2, width - 2
        valid = False
        layers += conv_bn_act(in_channels, out_channels, 3, 1, request, padding=padding)
        in_channels = out_channels
    return layers, in_channels, (height, width)


def build_vgg(config: list[int | str], request: ArchitectureRequest, name: str) -> nn.Sequential:
    """Features, a global average pool and one linear classifier."""
    layers, channels, _ = vgg_features(config, request, name)
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, request.num_classes)]
    return init_without_batch_norm(nn.Sequential(*layers), request)


def vgg11(request: ArchitectureRequest) -> nn.Module:
    return build_vgg(CONFIGS["vgg11"], request, "vgg11")


def vgg13(request: ArchitectureRequest) -> nn.Module:
    return build_vgg(CONFIGS["vgg13"], request, "vgg13")


def vgg16(request: ArchitectureRequest) -> nn.Module:
    return build_vgg(CONFIGS["vgg16"], request, "vgg16")


def vgg_star(request: ArchitectureRequest) -> nn.Module:
    # On 32x32 the map is 1x1 before the classifier, so the global pool is the identity
    # and the classifier sees the 1024 features as in CQ+.
    return build_vgg(CONFIGS["vgg_star"], request, "vgg_star")


def vggsnn(request: ArchitectureRequest) -> nn.Module:
    # TET flattens the final map (3x3 for 48x48 frames) into its classifier.
    layers, channels, (height, width) = vgg_features(CONFIGS["vggsnn"], request, "vggsnn")
    layers += [nn.Flatten(), nn.Linear(channels * height * width, request.num_classes)]
    return init_without_batch_norm(nn.Sequential(*layers), request)


SIMONYAN = "Simonyan & Zisserman, Very Deep Convolutional Networks, ICLR 2015"
VGG_DEVIATIONS = (
    "Average instead of max pooling; BN after every convolution (when the method asks "
    "for it); a global average pool and one linear classifier instead of three FC layers "
    "(as the SNN conversion code for CIFAR does); a pool is skipped when it would leave "
    "convolutions on a 1x1 map (8x8 digits keep 2x2 maps after the second pool)."
)

SPECS = [
    ArchitectureSpec(
        name="vgg11", family="vgg", build=vgg11, default_width=0.25,
        description="VGG-11 with average pooling and a global-pool linear classifier",
        citation=SIMONYAN, deviations=VGG_DEVIATIONS,
    ),
    ArchitectureSpec(
        name="vgg13", family="vgg", build=vgg13, default_width=0.25,
        description="VGG-13 with average pooling and a global-pool linear classifier",
        citation=SIMONYAN, deviations=VGG_DEVIATIONS,
    ),
    ArchitectureSpec(
        name="vgg16", family="vgg", build=vgg16, default_width=0.25,
        description="VGG-16 with average pooling and a global-pool linear classifier",
        citation=SIMONYAN, deviations=VGG_DEVIATIONS,
    ),
    ArchitectureSpec(
        name="vgg_star", family="vgg", build=vgg_star, default_width=0.125,
        description="CQ+'s 7-layer VGG-*: 128C3 128C3 AP2 256C3 256C3 AP2 512C3 512C3 AP2 "
        "1024C3 (valid) AP2 FC",
        citation="Yan, Zhou & Wong, CQ+ Training: Minimizing Accuracy Loss in Conversion "
        "from Convolutional Neural Networks to Spiking Neural Networks, IEEE TPAMI 2023",
        deviations="No dropout (CQ+ trains with Dropout2d 0.15) and no clamp after each "
        "pool (the quantised activations are the method's, not the network's); the "
        "1024-channel convolution stays padded when its input map is smaller than 3x3, "
        "and a global average pool precedes the classifier when the final map is larger "
        "than 1x1 (inputs other than 32x32).",
    ),
    ArchitectureSpec(
        name="vggsnn", family="vgg", build=vggsnn, default_width=0.25,
        description="TET's VGGSNN for event data: 64C3 128C3 AP2 256C3 256C3 AP2 "
        "512C3 512C3 AP2 512C3 512C3 AP2 FC (flattened)",
        citation="Deng et al., Temporal Efficient Training of Spiking Neural Network via "
        "Gradient Re-weighting, ICLR 2022",
        deviations="ReLU or the method's activation instead of LIF neurons, so the same "
        "network serves conversion and direct training; pools skipped as in the other "
        "VGGs on small inputs, so the "
        "flattened classifier input follows the input size (512x3x3 for 48x48 frames).",
    ),
]
