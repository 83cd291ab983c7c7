"""Built-in architecture plugins of snnbench: one module per family, each with its specs
(citation and deviations from the original included)."""

from collections.abc import Callable

from snnbench_architectures import densenet, mobilenet, regnet, resnet, timm_family, vgg
from snnbench_suite import ArchitectureSpec, hookimpl

ARCHITECTURES: list[ArchitectureSpec] = [
    *vgg.SPECS,
    *resnet.SPECS,
    *mobilenet.SPECS,
    *regnet.SPECS,
    *densenet.SPECS,
    timm_family.SPEC,
]


@hookimpl
def snnbench_register_architectures(register: Callable[[ArchitectureSpec], None]) -> None:
    for spec in ARCHITECTURES:
        register(spec)
