"""Built-in architecture plugins of snnbench."""

from collections.abc import Callable

from snnbench_architectures import resnet, vgg
from snnbench_suite import ArchitectureSpec, hookimpl

ARCHITECTURES = [
    ArchitectureSpec(
        name="vgg11", family="vgg", build=vgg.vgg11, default_width=0.25,
        description="VGG-11 with average pooling and a global-pool linear classifier",
        citation="Simonyan & Zisserman, Very Deep Convolutional Networks, ICLR 2015",
        deviations=vgg.__doc__ or "",
    ),
    ArchitectureSpec(
        name="resnet20", family="resnet", build=resnet.resnet20, default_width=0.25,
        description="ResNet-20 of the SNN literature (64-128-256 channels at width 1)",
        citation="He et al., Deep Residual Learning for Image Recognition, CVPR 2016",
        deviations=resnet.__doc__ or "",
    ),
]


@hookimpl
def snnbench_register_architectures(register: Callable[[ArchitectureSpec], None]) -> None:
    for spec in ARCHITECTURES:
        register(spec)
