"""VGG for conversion and direct training (Simonyan & Zisserman, ICLR 2015).

Deviations from the original, as the conversion literature does: average pooling instead
of max pooling (max over spikes is not the max of rates); a global average pool and a
single linear classifier instead of three 4096-wide FC layers; a pooling stage is skipped
when the feature map is already 1x1, so small inputs (8x8 digits) work.
"""

from __future__ import annotations

from torch import nn

from snnbench_architectures.common import check_request, input_layers, norm2d, scaled
from snnbench_suite import ArchitectureRequest

POOL = "P"
CONFIGS: dict[str, list[int | str]] = {
    "vgg11": [64, POOL, 128, POOL, 256, 256, POOL, 512, 512, POOL, 512, 512, POOL],
}


def build_vgg(config: list[int | str], request: ArchitectureRequest, name: str) -> nn.Sequential:
    in_channels, height, _ = check_request(request, name)
    layers: list[nn.Module] = input_layers(request)
    size = height
    for item in config:
        if item == POOL:
            if size >= 2:
                layers.append(nn.AvgPool2d(2))
                size //= 2
            continue
        out_channels = scaled(int(item), request.width)
        layers += [
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=not request.batch_norm),
            norm2d(out_channels, request.batch_norm),
            request.activation(),
        ]
        in_channels = out_channels
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(in_channels, request.num_classes)]
    return nn.Sequential(*layers)


def vgg11(request: ArchitectureRequest) -> nn.Module:
    return build_vgg(CONFIGS["vgg11"], request, "vgg11")
