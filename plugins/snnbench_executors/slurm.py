"""The `slurm` executor: one submitit job array per run, one array task per work unit.

The jobs write the records themselves into the shared results folder (it must be on a
file system every node sees). The coordinator waits with a deadline around every result:
submitit learns that a job died only from Slurm's accounting (sacct), which many clusters
(and a bare slurmctld) do not run, so a job killed hard would be waited for forever. Here a
job is followed through `squeue`; once it has left the queue without a result (killed,
out of memory, its node lost), or has run past its time limit plus `grace_s`, its unit is
recorded as lost with the job's log path, and the run goes on. A controller that cannot be
reached is a clear error after `timeout_s`, never a hang.

Resources come from `--set slurm.PARAM=VALUE` or the matrix file's `executor:` section;
`-j N` caps how many array tasks run at once.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from snnbench_suite import ExecutorRequest, ExecutorSpec, UsageError, WorkUnit

PARAMS: dict[str, Any] = {
    "partition": "",
    "account": "",
    "qos": "",
    "constraint": "",
    "time_min": 60,  # each array task's time limit
    "cpus_per_task": 2,  # also the torch threads each job pins
    "gpus_per_node": 0,
    "mem_gb": 0.0,  # 0: the partition's default
    "setup": "",  # shell lines run before each job, e.g. "module load cuda"
    "use_srun": True,
    "grace_s": 120,  # a job gone from the queue without a result is lost after this
    "queue_timeout_min": 0,  # give up on jobs still pending after this (0: wait)
    "poll_s": 5.0,
    "timeout_s": 30.0,  # per Slurm command (squeue, scontrol, sbatch's answer)
    "unreachable_s": 300.0,  # the controller silent this long while waiting: give up
}

EXTRA = "slurm"


def available() -> str | None:
    if importlib.util.find_spec("submitit") is None:
        return ("it needs submitit, which is not installed; install the extra with "
                f"`pip install 'snnbench-suite[{EXTRA}]'`")
    missing = [tool for tool in ("sbatch", "squeue", "scontrol") if shutil.which(tool) is None]
    if missing:
        return (f"{', '.join(missing)} not found on PATH; run from a machine with the Slurm "
                "client commands (a login node), or pick another executor")
    return None


def check_params(params: Mapping[str, Any]) -> None:
    for key in ("time_min", "cpus_per_task", "poll_s", "timeout_s"):
        if params[key] <= 0:
            raise ValueError(f"{key} must be > 0, got {params[key]}")
    for key in ("gpus_per_node", "mem_gb", "grace_s", "queue_timeout_min", "unreachable_s"):
        if params[key] < 0:
            raise ValueError(f"{key} must be >= 0, got {params[key]}")


def slurm_command(args: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run a Slurm client command with a deadline; UsageError if it cannot be run."""
    try:
        return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired:
        raise UsageError(
            f"`{' '.join(args)}` did not answer within {timeout:g} s: the Slurm controller "
            "is unreachable. Check that slurmctld runs and that SLURM_CONF points at its "
            "slurm.conf (or raise slurm.timeout_s)."
        ) from None
    except OSError as exc:
        raise UsageError(f"cannot run `{args[0]}`: {exc}") from None


def check_reachable(timeout: float) -> None:
    """Fail fast, before submitting anything, when the controller does not answer."""
    answer = slurm_command(["scontrol", "ping"], timeout)
    lines = [line.strip() for line in (answer.stdout + answer.stderr).splitlines()
             if line.strip() and not line.startswith("*")]  # skip scontrol's banner
    if answer.returncode != 0 or not any(line.endswith(" UP") for line in lines):
        raise UsageError(
            f"the Slurm controller is unreachable (`scontrol ping`: "
            f"{'; '.join(lines) or 'no answer'}). Check that slurmctld runs and that "
            "SLURM_CONF points at its slurm.conf."
        )


def preflight(params: Mapping[str, Any]) -> None:
    """Before anything runs: the client commands are there and the controller answers."""
    check_reachable(float(params["timeout_s"]))


def queue_states(array_ids: Sequence[str], timeout: float) -> dict[str, str] | None:
    """Array task id ("123_4") -> state, for tasks still known to squeue; None when the
    controller did not answer (the caller decides how long to tolerate that)."""
    try:
        answer = slurm_command(["squeue", "--noheader", "--array", "--format=%i|%T",
                                f"--jobs={','.join(array_ids)}"], timeout)
    except UsageError:
        return None
    if answer.returncode != 0:
        if "Invalid job id" in answer.stderr:
            return {}  # every job has finished and been purged
        return None
    states = {}
    for line in answer.stdout.splitlines():
        task, _, state = line.strip().partition("|")
        states[task] = state
    return states


def on_the_jobs_gpus(unit: WorkUnit) -> WorkUnit:
    """A job sees only the GPUs Slurm gave it, numbered from 0: `cuda:3` on the submitting
    machine means "a GPU" there."""
    if unit.settings.device.type != "cuda":
        return unit
    import torch

    return replace(unit, settings=replace(unit.settings, device=torch.device("cuda")))


def _parameters(params: Mapping[str, Any], jobs: int, name: str) -> dict[str, Any]:
    chosen: dict[str, Any] = {
        "job_name": name, "time": int(params["time_min"]),
        "cpus_per_task": int(params["cpus_per_task"]), "array_parallelism": jobs,
        "use_srun": bool(params["use_srun"]),
    }
    for key in ("partition", "account", "qos", "constraint"):
        if params[key]:
            chosen[key] = params[key]
    if params["gpus_per_node"]:
        chosen["gpus_per_node"] = int(params["gpus_per_node"])
    if params["mem_gb"]:
        chosen["mem"] = f"{int(params['mem_gb'] * 1024)}MB"
    if params["setup"]:
        chosen["setup"] = [line for line in str(params["setup"]).splitlines() if line.strip()]
    return chosen


class _Watch:
    """Follows the jobs of one array until each has a result or is declared lost."""

    def __init__(self, request: ExecutorRequest, jobs: list[Any], units: Sequence[WorkUnit],
                 params: Mapping[str, Any]) -> None:
        self.request = request
        self.params = params
        self.pending = {job.job_id: (job, unit) for job, unit in zip(jobs, units, strict=True)}
        self.submitted = time.monotonic()
        self.running_since: dict[str, float] = {}
        self.gone_since: dict[str, float] = {}
        self.last_answer = time.monotonic()

    def lose(self, job_id: str, reason: str, cancel: bool = False) -> None:
        job, unit = self.pending.pop(job_id)
        if cancel:
            slurm_command(["scancel", job_id], float(self.params["timeout_s"]))
        self.request.unit_lost(unit, f"Slurm job {job_id} {reason}; its log: "
                               f"{job.paths.stderr}", None)

    def collect(self, job_id: str) -> None:
        job, unit = self.pending.pop(job_id)
        try:
            outcome = job.result()
        except Exception as exc:  # noqa: BLE001 - the job's own failure, with its log
            message = str(exc).strip().splitlines()
            self.request.unit_lost(unit, f"Slurm job {job_id} failed: "
                                   f"{message[-1] if message else type(exc).__name__}; "
                                   f"its log: {job.paths.stderr}", None)
        else:
            self.request.unit_done(unit, outcome)

    def step(self) -> None:
        params, now = self.params, time.monotonic()
        for job_id, (job, _) in list(self.pending.items()):
            if job.paths.result_pickle.exists():
                self.collect(job_id)
        if not self.pending:
            return
        states = queue_states(sorted({j.split("_")[0] for j in self.pending}),
                              float(params["timeout_s"]))
        if states is None:
            if now - self.last_answer > float(params["unreachable_s"]):
                for job_id in list(self.pending):
                    self.lose(job_id, f"could not be followed: the controller did not answer "
                              f"for {params['unreachable_s']:g} s (the job may still write "
                              "its records; run again to pick them up)")
            return
        self.last_answer = now
        for job_id in list(self.pending):
            job = self.pending[job_id][0]
            state = states.get(job_id)
            if state is None and not job.paths.result_pickle.exists():
                # Gone from the queue: wait `grace_s` for its result file (shared file
                # systems can be slow), then declare it lost.
                since = self.gone_since.setdefault(job_id, now)
                if now - since > float(params["grace_s"]):
                    self.lose(job_id, "left the queue without a result (killed, out of "
                              "memory, past its time limit, or its node failed)")
            elif state == "RUNNING":
                started = self.running_since.setdefault(job_id, now)
                limit = float(params["time_min"]) * 60 + float(params["grace_s"])
                if now - started > limit:
                    self.lose(job_id, f"ran past its time limit ({params['time_min']} min) "
                              f"and {params['grace_s']} s of grace; cancelled", cancel=True)
            elif state == "PENDING" and params["queue_timeout_min"] and \
                    now - self.submitted > float(params["queue_timeout_min"]) * 60:
                self.lose(job_id, f"was still pending after {params['queue_timeout_min']} min "
                          "(slurm.queue_timeout_min); cancelled", cancel=True)

    def run(self) -> None:
        while self.pending:
            self.step()
            self.request.refresh()
            if self.pending:
                time.sleep(float(self.params["poll_s"]))


def run(request: ExecutorRequest) -> None:
    import submitit

    params = request.params
    logs = request.scratch_dir / "slurm" / "%j"
    executor = submitit.SlurmExecutor(folder=logs)
    chosen = _parameters(params, request.jobs, "snnbench")
    settings = request.units[0].settings
    if "gpus_per_node" not in chosen and settings.device.type == "cuda":
        chosen["gpus_per_node"] = settings.gpus_per_cell  # the GPUs one cell trains on
    executor.update_parameters(**chosen)
    units = [on_the_jobs_gpus(unit) for unit in request.units]
    threads = int(params["cpus_per_task"])
    try:
        jobs = executor.map_array(request.work, units, [None] * len(units),
                                  [threads] * len(units))
    except Exception as exc:  # noqa: BLE001 - sbatch's refusal, said plainly
        raise UsageError(f"Slurm refused the job array: {str(exc).strip()[-500:]}") from None
    _Watch(request, jobs, units, params).run()


SLURM = ExecutorSpec(
    name="slurm",
    run=run,
    description="a Slurm cluster: one submitit job array per run, one task per unit of "
                "cells sharing an ANN; records written by the jobs into the shared folder",
    params=PARAMS,
    check_params=check_params,
    available=available,
    extra=EXTRA,
    preflight=preflight,
)
