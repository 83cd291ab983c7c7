"""The `ray` executor: one Ray task per work unit, with `num_cpus` / `num_gpus` each.

With `ray.address` empty it starts a private local Ray instance for the run (no
dashboard, loopback only) and shuts it down afterwards; with an address ("auto" or
"ray://host:port") it joins that cluster, whose workers must see the results folder.
A task whose worker died is reported lost with Ray's error, and the run goes on.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from typing import Any

from snnbench_executors.slurm import on_the_jobs_gpus
from snnbench_suite import ExecutorRequest, ExecutorSpec

EXTRA = "ray"
PARAMS: dict[str, Any] = {"address": "", "num_cpus": 1.0, "num_gpus": 0.0, "poll_s": 2.0}


def available() -> str | None:
    if importlib.util.find_spec("ray") is None:
        return ("it needs Ray, which is not installed; install the extra with "
                f"`pip install 'snnbench-suite[{EXTRA}]'`")
    return None


def check_params(params: Mapping[str, Any]) -> None:
    if params["num_cpus"] <= 0:
        raise ValueError(f"num_cpus must be > 0, got {params['num_cpus']}")
    if params["num_gpus"] < 0:
        raise ValueError(f"num_gpus must be >= 0, got {params['num_gpus']}")


def run(request: ExecutorRequest) -> None:
    import ray

    params = request.params
    started_here = not ray.is_initialized()
    if started_here:
        if params["address"]:
            ray.init(address=params["address"])
        else:
            # Usage reporting off; a local instance needs no cluster-wide listening.
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
            ray.init(address="local", num_cpus=max(1, int(params["num_cpus"] * request.jobs)),
                     include_dashboard=False)
    try:
        threads = max(1, int(params["num_cpus"]))
        settings = request.units[0].settings
        gpus = params["num_gpus"] or (settings.gpus_per_cell
                                      if settings.device.type == "cuda" else 0)
        task = ray.remote(num_cpus=params["num_cpus"], num_gpus=gpus,
                          max_retries=0)(request.work)
        # Ray gives a task its GPUs through CUDA_VISIBLE_DEVICES, numbered from 0.
        refs = {task.remote(on_the_jobs_gpus(unit), None, threads): unit
                for unit in request.units}
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1, timeout=float(params["poll_s"]))
            for ref in ready:
                unit = refs.pop(ref)
                try:
                    outcome = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - a dead worker or a raised error
                    lines = str(exc).strip().splitlines()
                    request.unit_lost(unit, f"its Ray task failed: "
                                      f"{lines[-1] if lines else type(exc).__name__}", None)
                else:
                    request.unit_done(unit, outcome)
            request.refresh()
    finally:
        if started_here:
            ray.shutdown()


RAY = ExecutorSpec(
    name="ray",
    run=run,
    description="Ray tasks (a private local instance, or ray.address=auto to join a "
                "cluster), num_cpus / num_gpus per unit",
    params=PARAMS,
    check_params=check_params,
    available=available,
    extra=EXTRA,
)
