"""DataLoaders for a cell: workers, pinned memory, and a training order that does not
depend on how many processes or loader workers there are.

The training loader shuffles with `DistributedSampler` semantics (a permutation seeded by
(seed, epoch); rank r of W takes every W-th index; W = 1 in a single process), each rank
loading `batch_size / W` samples, so the W per-rank batches of step k together are the
single-process batch k. Random augmentation is seeded per sample from (seed, epoch,
index), so it is the same whichever process or loader worker loads the sample: `--workers
4` and `--gpus-per-cell 2` train on exactly the data a single process with no workers
sees. (Augmentations must draw from torch's global generator, as the built-in ones do.)

When the dataset size is not a multiple of W, DistributedSampler repeats the first few
indices of the permutation to even out the ranks; only then do W > 1 and W = 1 see
different data (at most W - 1 duplicated samples per epoch).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from snnbench_suite.errors import UsageError

# On-disk datasets decode every sample (JPEG, event files): this many workers at most per
# training process by default.
MAX_DEFAULT_WORKERS = 8
_MIX = 0x9E3779B97F4A7C15  # odd 64-bit constant (golden ratio) to spread seeds


@dataclass(frozen=True)
class LoaderOptions:
    """`--workers` and `--pin-memory`; None means the default for the dataset/device."""

    workers: int | None = None
    pin_memory: bool | None = None


@dataclass(frozen=True)
class LoaderSettings:
    """The resolved loader settings of one dataset on one device (stored in the record)."""

    workers: int
    pin_memory: bool
    source: str  # why these values: "--workers", "dataset default", ...

    def as_dict(self) -> dict[str, Any]:
        return {"workers": self.workers, "pin_memory": self.pin_memory, "source": self.source}


def default_workers(*, embedded: bool, declared: int | None, processes: int = 1) -> int:
    """In-memory (embedded) datasets load in the main process: a worker only adds IPC.
    On-disk datasets get one worker per core left to each training process, at most 8."""
    if declared is not None:
        return declared
    if embedded:
        return 0
    cores = os.cpu_count() or 1
    return max(1, min(MAX_DEFAULT_WORKERS, cores // max(processes, 1) - 1))


def resolve_loader_settings(options: LoaderOptions, *, embedded: bool, declared: int | None,
                            device: torch.device, processes: int = 1) -> LoaderSettings:
    if options.workers is not None and options.workers < 0:
        raise UsageError(f"--workers must be >= 0, got {options.workers}")
    if options.workers is not None:
        workers, source = options.workers, "--workers"
    else:
        workers = default_workers(embedded=embedded, declared=declared, processes=processes)
        source = "dataset default" if declared is not None else (
            "default for in-memory data" if embedded else "default for on-disk data")
    # Pinned host memory only helps copies to a GPU.
    pin = device.type == "cuda" if options.pin_memory is None else options.pin_memory
    return LoaderSettings(workers=workers, pin_memory=pin, source=source)


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed for the augmentation of sample `index` in `epoch`."""
    value = (seed * _MIX + epoch) & (2**64 - 1)
    value = (value * _MIX + index) & (2**64 - 1)
    return (value ^ (value >> 31)) & (2**63 - 1)


class EpochShuffle(DistributedSampler):
    """DistributedSampler yielding (epoch, index) keys, so the sample's augmentation can be
    seeded by both. Call `set_epoch(e)` before each epoch (the training loop does)."""

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.epoch
        return ((epoch, int(i)) for i in super().__iter__())


class SeededSamples(Dataset):
    """`dataset[index]` with torch's CPU generator seeded by (seed, epoch, index) and
    restored afterwards, so random transforms are a function of the sample alone."""

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset = dataset
        self.seed = seed

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> Any:
        epoch, index = key
        generator = torch.default_generator
        state = generator.get_state()
        generator.manual_seed(sample_seed(self.seed, epoch, index))
        try:
            return self.dataset[index]
        finally:
            generator.set_state(state)


def training_loader(dataset: Dataset, *, batch_size: int, seed: int,
                    settings: LoaderSettings, rank: int = 0, world_size: int = 1
                    ) -> DataLoader:
    """The shuffled training loader of rank `rank` of `world_size`; `batch_size` is the
    global batch, split evenly over the ranks."""
    if batch_size % world_size:
        raise UsageError(f"the training batch of {batch_size} cannot be split over "
                         f"{world_size} processes; use a --gpus-per-cell that divides it")
    sampler = EpochShuffle(dataset, num_replicas=world_size, rank=rank, shuffle=True,
                           seed=seed, drop_last=False)
    return DataLoader(SeededSamples(dataset, seed), batch_size=batch_size // world_size,
                      sampler=sampler, num_workers=settings.workers,
                      pin_memory=settings.pin_memory,
                      persistent_workers=settings.workers > 0)


def evaluation_loader(dataset: Dataset, *, batch_size: int,
                      settings: LoaderSettings) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, shuffle=False,
                      num_workers=settings.workers, pin_memory=settings.pin_memory)


def set_epoch(loader: DataLoader, epoch: int) -> None:
    """Tell the loader's sampler which epoch starts (a no-op for other samplers)."""
    sampler = getattr(loader, "sampler", None)
    if isinstance(sampler, DistributedSampler):
        sampler.set_epoch(epoch)
