"""Built-in method plugins of snnbench."""

from collections.abc import Callable

from snnbench_methods.baselines import NAIVE, ROBUST
from snnbench_methods.direct import SDT, TET
from snnbench_methods.distill import KD, LAF_ONLY, LAF_REPACT, REPACT_ONLY
from snnbench_suite import MethodSpec, hookimpl


@hookimpl
def snnbench_register_methods(register: Callable[[MethodSpec], None]) -> None:
    for spec in (NAIVE, ROBUST, SDT, TET, KD, LAF_REPACT, LAF_ONLY, REPACT_ONLY):
        register(spec)
