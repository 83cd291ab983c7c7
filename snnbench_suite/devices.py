"""Which device a run uses, what it is called, and which GPUs each worker process gets.

`resolve_device` turns `--device auto|cpu|cuda|cuda:N` into a torch.device before any
cell runs, so a bad choice is exit 2 and not a failed cell. `assign_worker_device` is the
one rule every executor follows to give each worker its own GPU(s): a local process pool
sets the returned CUDA_VISIBLE_DEVICES in the worker's environment, Slurm asks for
`gpus_per_worker(...)` GPUs per task, Ray for `num_gpus=gpus_per_worker(...)`.
"""

from __future__ import annotations

import os
import platform
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, TypeVar

import torch

from snnbench_suite.errors import UsageError

DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"
_CUDA = re.compile(r"cuda(?::(\d+))?")

R = TypeVar("R")


def cuda_count() -> int:
    """GPUs this process can see (after CUDA_VISIBLE_DEVICES); 0 without CUDA."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def resolve_device(text: str) -> torch.device:
    """`auto` (CUDA when available, else CPU), `cpu`, `cuda` (GPU 0) or `cuda:N`.

    Raises UsageError, naming what this machine has, for CUDA without a GPU or an index
    past the last GPU, and for anything else."""
    choice = text.strip().lower()
    if choice == "auto":
        return torch.device("cuda", 0) if cuda_count() else torch.device("cpu")
    if choice == "cpu":
        return torch.device("cpu")
    match = _CUDA.fullmatch(choice)
    if match is None:
        raise UsageError(f"--device {text!r} is not a device snnbench runs on; use "
                         f"{DEVICE_CHOICES}")
    count = cuda_count()
    if count == 0:
        raise UsageError(f"--device {text}: this machine has no CUDA device (torch "
                         f"{torch.__version__}, CUDA build {torch.version.cuda or 'none'}); "
                         "use --device cpu or --device auto")
    index = int(match.group(1) or 0)
    if index >= count:
        raise UsageError(f"--device {text}: this machine has {count} CUDA device(s), "
                         f"cuda:0 to cuda:{count - 1}")
    return torch.device("cuda", index)


@lru_cache(maxsize=1)
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: torch.device) -> str:
    """A human name: the GPU's model, or the CPU's."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return _cpu_model()


def device_info(device: torch.device) -> dict[str, Any]:
    """What the record stores about the device a cell ran on."""
    info: dict[str, Any] = {"device": str(device), "device_name": device_name(device)}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(
            cuda_capability=f"{props.major}.{props.minor}",
            memory_gib=round(props.total_memory / 2**30, 1),
            visible_gpus=cuda_count(),
            cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"),
        )
    return info


# --- one GPU (or N) per worker --------------------------------------------------------


def visible_gpu_ids() -> list[str]:
    """The GPU ids this process may hand out: CUDA_VISIBLE_DEVICES when set, else 0..N-1."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None and listed.strip():
        return [part.strip() for part in listed.split(",") if part.strip()]
    return [str(i) for i in range(cuda_count())]


def gpus_per_worker(device: torch.device | str, gpus_per_cell: int = 1) -> int:
    """GPUs a worker needs: 0 on CPU, else the GPUs one cell trains on."""
    return gpus_per_cell if torch.device(device).type == "cuda" else 0


def check_gpus_per_cell(gpus_per_cell: int, device: torch.device) -> None:
    """`--gpus-per-cell N`: N GPUs must be visible (on CPU: N processes, at most one per
    core). UsageError otherwise."""
    if gpus_per_cell < 1:
        raise UsageError(f"--gpus-per-cell must be >= 1, got {gpus_per_cell}")
    if device.type == "cuda":
        count = len(visible_gpu_ids())
        if gpus_per_cell > count:
            raise UsageError(f"--gpus-per-cell {gpus_per_cell}: this machine has {count} "
                             f"visible GPU(s); ask for at most {count}")
        first = device.index or 0  # the ranks of a cell use GPUs first .. first + N - 1
        if first + gpus_per_cell > count:
            raise UsageError(f"--device {device} with --gpus-per-cell {gpus_per_cell} needs "
                             f"GPUs {first} to {first + gpus_per_cell - 1}; GPUs 0 to "
                             f"{count - 1} are visible")
        return
    cores = os.cpu_count() or 1
    if gpus_per_cell > cores:
        raise UsageError(f"--gpus-per-cell {gpus_per_cell} on CPU means {gpus_per_cell} "
                         f"processes, but this machine has {cores} core(s); ask for at most "
                         f"{cores}")


@dataclass(frozen=True)
class WorkerDevice:
    """Where one worker runs: `device` as the worker names it (inside its own
    CUDA_VISIBLE_DEVICES, its GPUs are cuda:0..k-1) and the environment to start it with."""

    device: str
    env: dict[str, str] = field(default_factory=dict)
    gpus: tuple[str, ...] = ()


def assign_worker_device(worker_index: int, n_workers: int, device: torch.device | str,
                         gpus_per_cell: int = 1) -> WorkerDevice:
    """The GPU(s) of worker `worker_index` of `n_workers`: consecutive, disjoint blocks of
    `gpus_per_cell` visible GPUs. On CPU every worker gets the CPU and no environment.

    With an explicit `cuda:N` and one worker, that worker gets GPU N. Raises UsageError
    when the workers need more GPUs than are visible (two cells never share a GPU: their
    timings and memory would interfere)."""
    chosen = torch.device(device)
    if not 0 <= worker_index < n_workers:
        raise ValueError(f"worker_index {worker_index} is outside 0..{n_workers - 1}")
    if chosen.type != "cuda":
        return WorkerDevice(device=str(chosen))
    ids = visible_gpu_ids()
    if n_workers == 1 and chosen.index is not None and gpus_per_cell == 1:
        if chosen.index >= len(ids):
            raise UsageError(f"--device {chosen}: only {len(ids)} GPU(s) are visible")
        block = [ids[chosen.index]]
    else:
        needed = n_workers * gpus_per_cell
        if needed > len(ids):
            raise UsageError(
                f"{n_workers} worker(s) x {gpus_per_cell} GPU(s) per cell need {needed} GPUs; "
                f"{len(ids)} are visible ({', '.join(ids) or 'none'}). Use -j "
                f"{max(1, len(ids) // gpus_per_cell)} or fewer GPUs per cell")
        block = ids[worker_index * gpus_per_cell:(worker_index + 1) * gpus_per_cell]
    return WorkerDevice(device="cuda:0", env={"CUDA_VISIBLE_DEVICES": ",".join(block)},
                        gpus=tuple(block))


# --- memory ---------------------------------------------------------------------------


def is_out_of_memory(exc: BaseException) -> bool:
    """torch's out-of-memory error (CUDA's, or the allocator's on other devices)."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    # Some back ends raise a plain RuntimeError with this text.
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def free_cached_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


def with_batch_backoff(run: Callable[[int], R], batch_size: int, *, floor: int,
                       device: torch.device,
                       on_retry: Callable[[int, int], None] | None = None
                       ) -> tuple[R, int]:
    """`run(batch_size)`, halving the batch after each out-of-memory error down to
    `floor`; returns (result, the batch size that worked). At the floor the error is
    re-raised with the batch sizes tried. `on_retry(old, new)` is told of each halving."""
    if floor < 1:
        raise ValueError(f"floor must be >= 1, got {floor}")
    batch = max(batch_size, 1)
    tried: list[int] = []
    while True:
        try:
            return run(batch), batch
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            tried.append(batch)
            free_cached_memory(device)
            if batch <= floor:
                raise torch.OutOfMemoryError(
                    f"out of memory even at evaluation batch {batch} (tried "
                    f"{', '.join(map(str, tried))}; floor {floor}): {exc}") from exc
            new = max(floor, batch // 2)
            if on_retry is not None:
                on_retry(batch, new)
            batch = new
