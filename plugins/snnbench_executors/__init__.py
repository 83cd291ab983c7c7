"""Built-in executors of snnbench: `local` (in-process or a spawned process pool), `slurm`
(submitit job arrays) and `ray` (Ray tasks).

They use exactly the third-party executor API: `snnbench_register_executors` and the
ExecutorSpec / ExecutorRequest of `snnbench_suite`. `slurm` and `ray` need optional
dependencies (`pip install 'snnbench-suite[slurm]'`, `[ray]`); they are registered either
way, and say what to install when picked without them.
"""

from collections.abc import Callable

from snnbench_executors.local import LOCAL
from snnbench_executors.ray_tasks import RAY
from snnbench_executors.slurm import SLURM
from snnbench_suite import ExecutorSpec, hookimpl


@hookimpl
def snnbench_register_executors(register: Callable[[ExecutorSpec], None]) -> None:
    register(LOCAL)
    register(SLURM)
    register(RAY)
