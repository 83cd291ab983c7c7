"""Built-in architecture plugins of snnbench: one module per family, each with its specs
(citation and deviations from the original included). `ARCHITECTURES` are the
classification networks; `detection` wraps any of them as a detector (`det.<name>`)."""

from collections.abc import Callable

from snnbench_architectures import (
    densenet,
    detection,
    mobilenet,
    regnet,
    resnet,
    timm_family,
    vgg,
)
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
    for spec in [*ARCHITECTURES, detection.SPEC]:
        register(spec)
