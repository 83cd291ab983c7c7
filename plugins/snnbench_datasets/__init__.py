"""Built-in dataset plugins of snnbench: embedded ones (`digits`, `dvs_digits`,
`digits_det`) that need no files, and on-disk ones read from the data root
(`--data-root DIR` or SNNBENCH_DATA) in their official layouts, each in its own
sub-folder:

    cifar10       DIR/cifar-10-batches-py/
    cifar100      DIR/cifar-100-python/
    imagenet      DIR/imagenet/{train,val}/<wnid>/
    cifar10_dvs   DIR/CIFAR10DVS/<class>/ (.aedat or .aedat4)
    coco          DIR/coco/{train2017,val2017,annotations}/

Nothing here downloads.
"""

from collections.abc import Callable

from snnbench_datasets.cifar import CIFAR10, CIFAR100
from snnbench_datasets.cifar10_dvs import CIFAR10_DVS
from snnbench_datasets.coco import COCO
from snnbench_datasets.digits import DIGITS
from snnbench_datasets.digits_det import DIGITS_DET
from snnbench_datasets.dvs_digits import DVS_DIGITS
from snnbench_datasets.imagenet import IMAGENET
from snnbench_suite import DatasetSpec, hookimpl


@hookimpl
def snnbench_register_datasets(register: Callable[[DatasetSpec], None]) -> None:
    for spec in (DIGITS, DVS_DIGITS, DIGITS_DET, CIFAR10, CIFAR100, IMAGENET, CIFAR10_DVS,
                 COCO):
        register(spec)
