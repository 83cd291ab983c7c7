"""Built-in method plugins of snnbench."""

from collections.abc import Callable

from snnbench_methods.baselines import NAIVE, ROBUST
from snnbench_suite import MethodSpec, hookimpl


@hookimpl
def snnbench_register_methods(register: Callable[[MethodSpec], None]) -> None:
    for spec in (NAIVE, ROBUST):
        register(spec)
