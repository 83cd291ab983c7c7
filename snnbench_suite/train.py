"""The shared training loop for ANNs and SNNs: deterministic, with per-epoch progress.

Methods never write their own loop: they hand a model, a loss and a TrainConfig to
`train_model`. A non-finite loss stops training with TrainingDivergedError naming the
epoch and the loss, so a diverged run is recorded as failed, not as chance accuracy.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader

from snnbench_suite.errors import TrainingDivergedError
from snnbench_suite.specs import TrainConfig

LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class EpochReport:
    label: str
    epoch: int  # 1-based
    epochs: int
    loss: float
    seconds: float


@dataclass(frozen=True)
class TrainingSummary:
    label: str
    epochs: int
    final_loss: float
    seconds: float
    seconds_per_epoch: float

    def as_dict(self) -> dict[str, float | int | str]:
        return {
            "label": self.label,
            "epochs": self.epochs,
            "final_loss": self.final_loss,
            "seconds": round(self.seconds, 3),
            "seconds_per_epoch": round(self.seconds_per_epoch, 3),
        }


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


def train_model(
    model: nn.Module,
    loader: DataLoader,
    config: TrainConfig,
    *,
    loss_fn: LossFn = cross_entropy_loss,
    device: torch.device | str = "cpu",
    label: str = "train",
    on_epoch: Callable[[EpochReport], None] | None = None,
) -> TrainingSummary:
    """Train `model` in place for `config.epochs` epochs with a cosine learning rate."""
    if config.epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {config.epochs}")
    model.to(device)
    optimizer = make_optimizer(model, config)
    total_steps = max(1, config.epochs * len(loader))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps))
    )
    start = time.perf_counter()
    loss_value = float("nan")
    for epoch in range(1, config.epochs + 1):
        model.train()
        epoch_start = time.perf_counter()
        loss_sum, batches = 0.0, 0
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            loss = loss_fn(model, x, y)
            if not torch.isfinite(loss):
                raise TrainingDivergedError(
                    f"{label}: training diverged at epoch {epoch}/{config.epochs}, "
                    f"batch {batches + 1}: loss = {loss.item()}. Lower the learning rate."
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum += float(loss.detach())
            batches += 1
        loss_value = loss_sum / max(batches, 1)
        if on_epoch is not None:
            on_epoch(EpochReport(label, epoch, config.epochs, loss_value,
                                 time.perf_counter() - epoch_start))
    model.eval()
    seconds = time.perf_counter() - start
    return TrainingSummary(label, config.epochs, loss_value, seconds,
                           seconds / config.epochs if config.epochs else 0.0)
