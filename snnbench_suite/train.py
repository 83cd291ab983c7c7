"""The shared training loop for ANNs and SNNs: deterministic, with per-epoch progress.

Methods never write their own loop: they hand a model, a loss and a TrainConfig to
`train_model`. A non-finite loss stops training with TrainingDivergedError naming the
epoch and the loss, so a diverged run is recorded as failed, not as chance accuracy.

The same loop runs on CPU or a GPU, in fp32 or under bf16/fp16 autocast (see
`precision`), in one process or as one rank of a `--gpus-per-cell` group (see
`distributed`): there the model is wrapped in DistributedDataParallel (with
SyncBatchNorm on GPUs), each rank's loader holds its share of every global batch, and
the loss that is reported and checked is the mean over ranks, so every rank stops at the
same batch. Losses must be means over the batch (as cross-entropy is), so that averaging
the ranks' gradients gives the gradient of the global batch.

Each epoch's wall time is split into data time (waiting for the loader and copying the
batch to the device) and compute time (forward, backward, optimiser step); a loader that
cannot keep up shows as data time.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from snnbench_suite import distributed
from snnbench_suite.errors import TrainingDivergedError
from snnbench_suite.loading import set_epoch
from snnbench_suite.precision import autocast, grad_scaler
from snnbench_suite.specs import TrainConfig

LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class EpochReport:
    label: str
    epoch: int  # 1-based
    epochs: int
    loss: float
    seconds: float
    data_seconds: float = 0.0
    compute_seconds: float = 0.0

    def summary(self) -> str:
        """One line for the progress display; a large data share means the loader
        cannot keep up (more --workers, or cache decoded data)."""
        return (f"loss {self.loss:.4f}  {self.seconds:.2f} s/epoch (data "
                f"{self.data_seconds:.2f} s, compute {self.compute_seconds:.2f} s)")


@dataclass(frozen=True)
class TrainingSummary:
    label: str
    epochs: int
    final_loss: float
    seconds: float
    seconds_per_epoch: float
    data_seconds: float = 0.0
    compute_seconds: float = 0.0
    per_epoch: tuple[dict[str, float], ...] = ()
    precision: str = "fp32"
    device: str = "cpu"
    world_size: int = 1
    global_batch: int | None = None
    batch_norm: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "label": self.label,
            "epochs": self.epochs,
            "final_loss": self.final_loss,
            "seconds": round(self.seconds, 3),
            "seconds_per_epoch": round(self.seconds_per_epoch, 3),
            "data_s": round(self.data_seconds, 3),
            "compute_s": round(self.compute_seconds, 3),
            "per_epoch": list(self.per_epoch),
            "precision": self.precision,
            "device": self.device,
            "world_size": self.world_size,
        }
        if self.global_batch is not None:
            result["global_batch"] = self.global_batch
        if self.batch_norm is not None:
            result["batch_norm_across_ranks"] = self.batch_norm
        return {**result, **self.extra}


def with_epochs(config: TrainConfig, epochs: int | None) -> TrainConfig:
    """`config` with the --epochs override applied (None keeps its own epochs)."""
    return config if epochs is None else replace(config, epochs=epochs)


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    raise ValueError(f"unknown optimizer {config.optimizer!r}; use 'sgd' or 'adam'")


def cross_entropy_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(model(x), y)


def _has_batch_norm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def _wrap_for_ranks(model: nn.Module, device: torch.device) -> tuple[nn.Module, str | None]:
    """DistributedDataParallel around `model` when this process is one of several ranks.

    BN statistics are synchronised across ranks on GPUs (SyncBatchNorm), so a BN network
    trains as on the global batch; torch's SyncBatchNorm runs on GPUs only, so on CPU each
    rank normalises over its own share of the batch (the record says which)."""
    if distributed.world_size() == 1:
        return model, None
    batch_norm = None
    if _has_batch_norm(model):
        if device.type == "cuda":
            nn.SyncBatchNorm.convert_sync_batchnorm(model)
            batch_norm = "synchronised (SyncBatchNorm)"
        else:
            batch_norm = "per rank (SyncBatchNorm needs GPUs)"
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids), batch_norm


def _batch_norm_kinds(model: nn.Module) -> dict[str, type[nn.Module]]:
    return {name: type(m) for name, m in model.named_modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm)}


def _restore_batch_norm(model: nn.Module, kinds: dict[str, type[nn.Module]]) -> None:
    """Give the SyncBatchNorm layers back as the BatchNorm classes they were, so the
    trained model is the architecture that was asked for (and folds, converts and caches
    as such)."""
    for name, kind in kinds.items():
        if not name:  # the model itself is a BN layer: nothing holds it to swap
            continue
        parent_name, _, child_name = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        synced = getattr(parent, child_name)
        if not isinstance(synced, nn.SyncBatchNorm):
            continue
        plain = kind(synced.num_features, synced.eps, synced.momentum,
                     synced.affine, synced.track_running_stats)
        plain.load_state_dict(synced.state_dict())
        tensors = [*synced.parameters(), *synced.buffers()]
        if tensors:
            plain.to(tensors[0].device)
        plain.train(synced.training)
        setattr(parent, child_name, plain)


def train_model(
    model: nn.Module,
    loader: DataLoader,
    config: TrainConfig,
    *,
    loss_fn: LossFn = cross_entropy_loss,
    device: torch.device | str = "cpu",
    label: str = "train",
    on_epoch: Callable[[EpochReport], None] | None = None,
    precision: str = "fp32",
) -> TrainingSummary:
    """Train `model` in place for `config.epochs` epochs with a cosine learning rate."""
    if config.epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {config.epochs}")
    device = torch.device(device)
    model.to(device)
    bn_kinds = _batch_norm_kinds(model)
    net, batch_norm = _wrap_for_ranks(model, device)
    optimizer = make_optimizer(model, config)
    scaler = grad_scaler(device, precision)
    total_steps = max(1, config.epochs * len(loader))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps))
    )
    non_blocking = bool(getattr(loader, "pin_memory", False)) and device.type == "cuda"
    ranks = distributed.world_size()
    start = time.perf_counter()
    loss_value = float("nan")
    data_total = compute_total = 0.0
    per_epoch: list[dict[str, float]] = []
    try:
        for epoch in range(1, config.epochs + 1):
            model.train()
            set_epoch(loader, epoch - 1)
            epoch_start = time.perf_counter()
            data_s = compute_s = 0.0
            loss_sum, batches = 0.0, 0
            batch_iter = iter(loader)
            while True:
                fetch_start = time.perf_counter()
                try:
                    x, y = next(batch_iter)
                except StopIteration:
                    break
                x = x.to(device, non_blocking=non_blocking)
                y = y.to(device, non_blocking=non_blocking)
                step_start = time.perf_counter()
                data_s += step_start - fetch_start
                with autocast(device, precision):
                    loss = loss_fn(net, x, y)
                # The loss every rank checks and reports is the mean over ranks; reading
                # it waits for the step, so compute time is honest on GPUs too.
                shared = distributed.all_reduce_mean_(loss.detach().float().clone())
                if not torch.isfinite(shared):
                    raise TrainingDivergedError(
                        f"{label}: training diverged at epoch {epoch}/{config.epochs}, "
                        f"batch {batches + 1}: loss = {shared.item()}. Lower the learning rate."
                    )
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                loss_sum += float(shared)
                batches += 1
                compute_s += time.perf_counter() - step_start
            loss_value = loss_sum / max(batches, 1)
            seconds = time.perf_counter() - epoch_start
            data_total += data_s
            compute_total += compute_s
            per_epoch.append({"epoch": epoch, "seconds": round(seconds, 3),
                              "data_s": round(data_s, 3), "compute_s": round(compute_s, 3)})
            if on_epoch is not None and distributed.is_main():
                on_epoch(EpochReport(label, epoch, config.epochs, loss_value, seconds,
                                     data_s, compute_s))
    finally:
        if batch_norm is not None and batch_norm.startswith("synchronised"):
            _restore_batch_norm(model, bn_kinds)
    model.eval()
    seconds = time.perf_counter() - start
    global_batch = getattr(loader, "batch_size", None)
    return TrainingSummary(
        label, config.epochs, loss_value, seconds,
        seconds / config.epochs if config.epochs else 0.0,
        data_seconds=data_total, compute_seconds=compute_total, per_epoch=tuple(per_epoch),
        precision=precision, device=str(device), world_size=ranks,
        global_batch=global_batch * ranks if isinstance(global_batch, int) else None,
        batch_norm=batch_norm,
    )
