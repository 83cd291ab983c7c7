"""Built-in dataset plugins of snnbench."""

from collections.abc import Callable

from snnbench_suite import DatasetSpec, hookimpl
from snnbench_datasets.digits import DIGITS


@hookimpl
def snnbench_register_datasets(register: Callable[[DatasetSpec], None]) -> None:
    register(DIGITS)
