"""Built-in method plugins of snnbench."""

from collections.abc import Callable

from snnbench_methods.baselines import NAIVE, ROBUST
from snnbench_methods.calib import CALIB, CALIB_LIGHT, CALIB_NONE
from snnbench_methods.cqplus import CQPLUS
from snnbench_methods.direct import SDT, TET
from snnbench_methods.distill import KD, LAF_ONLY, LAF_REPACT, REPACT_ONLY
from snnbench_methods.qcfs import QCFS_METHOD
from snnbench_methods.softreset import SOFTRESET, SOFTRESET_ANYTIME
from snnbench_suite import MethodSpec, hookimpl


@hookimpl
def snnbench_register_methods(register: Callable[[MethodSpec], None]) -> None:
    for spec in (NAIVE, ROBUST, SDT, TET, KD, LAF_REPACT, LAF_ONLY, REPACT_ONLY,
                 CALIB, CALIB_LIGHT, CALIB_NONE, SOFTRESET, SOFTRESET_ANYTIME, CQPLUS,
                 QCFS_METHOD):
        register(spec)
