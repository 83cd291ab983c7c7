"""torch.distributed inside one cell: process-group set-up from torchrun-style variables,
the rank queries the training loop and loaders ask, and the reductions that make
statistics the same as in one process.

A cell trained with `--gpus-per-cell N` runs in N processes (see `launch`); each runs
the whole cell, so every rank builds the same networks in the same order and meets every
collective. What differs per rank is only the data it trains on (its DistributedSampler
shard) and, where a statistic is computed over data, which batches it observes:
- training: DistributedDataParallel averages the gradients of the per-rank batches (each
  `batch_size / N`), which is the gradient of the global batch; the reported loss is the
  mean over ranks;
- activation observation (`snn.observe.observe_activations`, the maxima and percentiles
  that set thresholds): rank r observes batches r, r + N, ...; the maxima are combined
  with an all_reduce(MAX), the counts with a SUM, the percentile samples gathered, so the
  statistics equal the single-process ones (percentiles up to their random subsample);
- everything else (calibration's per-batch threshold EMA, bias / potential / weight
  calibration, evaluation) runs on all the data in every rank, so every rank ends with
  the same network as a single process would; rank 0's results are the cell's.

Every collective has a deadline (`collective_timeout`, default 10 minutes,
SNNBENCH_COLLECTIVE_TIMEOUT seconds): a rank waiting for one that died gets an error
instead of hanging.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

DEFAULT_COLLECTIVE_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class RankInfo:
    """This process's place in the group: torchrun's RANK, WORLD_SIZE and LOCAL_RANK."""

    rank: int
    world_size: int
    local_rank: int

    @classmethod
    def from_env(cls, env: os._Environ[str] | dict[str, str] | None = None) -> RankInfo:
        source = os.environ if env is None else env
        try:
            return cls(rank=int(source["RANK"]), world_size=int(source["WORLD_SIZE"]),
                       local_rank=int(source.get("LOCAL_RANK", source["RANK"])))
        except KeyError as exc:
            raise RuntimeError(f"torch.distributed needs the variable {exc.args[0]} "
                               "(RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT)") from None


def collective_timeout() -> float:
    raw = os.environ.get("SNNBENCH_COLLECTIVE_TIMEOUT")
    return float(raw) if raw else DEFAULT_COLLECTIVE_TIMEOUT_S


def backend_for(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def init_process_group(device: torch.device, info: RankInfo,
                       timeout_s: float | None = None) -> None:
    """Join the group (MASTER_ADDR / MASTER_PORT from the environment) with a deadline on
    every collective."""
    timeout = dt.timedelta(seconds=timeout_s if timeout_s is not None else collective_timeout())
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend_for(device), rank=info.rank,
                            world_size=info.world_size, timeout=timeout)


def is_active() -> bool:
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    return dist.get_world_size() if is_active() else 1


def rank() -> int:
    return dist.get_rank() if is_active() else 0


def is_main() -> bool:
    """Rank 0, or the only process: the one that writes artifacts and records."""
    return rank() == 0


def _reduce_(tensor: torch.Tensor, op: Any) -> torch.Tensor:
    """all_reduce in place; NCCL reduces only GPU tensors, so CPU ones travel there."""
    if world_size() == 1:
        return tensor
    if dist.get_backend() == "nccl" and tensor.device.type != "cuda":
        moved = tensor.to(torch.device("cuda", torch.cuda.current_device()))
        dist.all_reduce(moved, op=op)
        tensor.copy_(moved.cpu())
    else:
        dist.all_reduce(tensor, op=op)
    return tensor


def all_reduce_max_(tensor: torch.Tensor) -> torch.Tensor:
    return _reduce_(tensor, dist.ReduceOp.MAX)


def all_reduce_sum_(tensor: torch.Tensor) -> torch.Tensor:
    return _reduce_(tensor, dist.ReduceOp.SUM)


def all_reduce_mean_(tensor: torch.Tensor) -> torch.Tensor:
    """Mean over ranks (SUM then divide: gloo has no AVG)."""
    if world_size() > 1:
        _reduce_(tensor, dist.ReduceOp.SUM)
        tensor /= world_size()
    return tensor


def all_gather_objects(value: Any) -> list[Any]:
    """Every rank's `value`, in rank order ([value] in one process)."""
    if world_size() == 1:
        return [value]
    gathered: list[Any] = [None] * world_size()
    dist.all_gather_object(gathered, value)
    return gathered


def mine(index: int) -> bool:
    """Whether this rank handles item `index` of a sequence split round-robin."""
    return index % world_size() == rank()


def describe(device: torch.device) -> dict[str, Any]:
    """What the record says about the process group (world size 1 outside one)."""
    if not is_active():
        return {"world_size": 1}
    return {"world_size": world_size(), "backend": dist.get_backend(),
            "collective_timeout_s": collective_timeout(), "device_per_rank": device.type}


def from_main(value: Any) -> Any:
    """Rank 0's `value`, on every rank (the value itself in one process)."""
    if world_size() == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


@contextlib.contextmanager
def main_holds(lock: contextlib.AbstractContextManager[Any]) -> Iterator[None]:
    """Hold `lock` on rank 0 only (the other ranks follow rank 0's decisions inside it,
    see `from_main`), so ranks of one cell never wait on each other's file lock."""
    if is_main():
        with lock:
            yield
    else:
        yield


def training_variant(batch_norm: bool, device: torch.device) -> list[str]:
    """What an artifact key must add for training that differs from one process: only
    BN on CPU ranks (normalised per rank, as SyncBatchNorm needs GPUs). Empty otherwise,
    so `--gpus-per-cell N` shares the cache with one process."""
    ranks = world_size()
    if ranks > 1 and batch_norm and device.type != "cuda":
        return [f"per-rank batch norm over {ranks} ranks"]
    return []
