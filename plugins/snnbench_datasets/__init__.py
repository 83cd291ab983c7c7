"""Built-in dataset plugins of snnbench."""

from collections.abc import Callable

from snnbench_datasets.digits import DIGITS
from snnbench_datasets.dvs_digits import DVS_DIGITS
from snnbench_suite import DatasetSpec, hookimpl


@hookimpl
def snnbench_register_datasets(register: Callable[[DatasetSpec], None]) -> None:
    register(DIGITS)
    register(DVS_DIGITS)
