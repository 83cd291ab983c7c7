"""`ctx.train`: snnbench's training loop for the networks methods train themselves (TET's
SNNs, CQ+'s retrained CNN, distilled students), with their weights cached.

A run repeated with a warm cache loads each network instead of training it again. The key
says everything the trained weights depend on: the cell (method, version, parameters,
architecture, dataset, seed, epochs), T, what is trained (the label, the configuration,
the initial weights), the cell's ANN (a distillation loss reads it as the teacher), and
the source of the code involved: the method's package, the architecture, the loss and
every module class in the network, neurons included. Ranks of a distributed cell train
together and do not use the cache.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from snnbench_suite import distributed
from snnbench_suite.artifacts import (
    WeightCache,
    artifact_key,
    code_version,
    source_folder_version,
    state_digest,
)
from snnbench_suite.cells import Cell
from snnbench_suite.specs import DatasetSplits, MethodSpec, TrainConfig
from snnbench_suite.train import EpochReport, LossFn, train_model, with_epochs


@dataclass
class MethodTrainer:
    """What `ctx.train` needs for one cell; `for_steps(T)` is the `train` of its context."""

    cache: WeightCache
    cell: Cell
    data: DatasetSplits
    method: MethodSpec
    architecture_build: Callable[..., nn.Module]
    loader: Callable[..., DataLoader]
    default_config: TrainConfig  # the dataset's SNN training, --epochs applied
    ann: nn.Module | None
    device: torch.device
    precision: str
    version: str  # snnbench's
    on_epoch: Callable[[EpochReport], None] | None = None

    def for_steps(self, num_steps: int | None) -> Callable[..., dict[str, Any]]:
        def train(model: nn.Module, *, loss_fn: LossFn | None = None,
                  config: TrainConfig | None = None, label: str = "SNN") -> dict[str, Any]:
            return self.train(model, num_steps, loss_fn=loss_fn, config=config, label=label)

        return train

    def train(self, model: nn.Module, num_steps: int | None, *, loss_fn: LossFn | None,
              config: TrainConfig | None, label: str) -> dict[str, Any]:
        """Train `model` in place (or load what the cache holds for it) and return the
        training summary, with `source` saying which."""
        chosen = (with_epochs(config, self.cell.epochs) if config is not None
                  else self.default_config)
        kwargs = {"loss_fn": loss_fn} if loss_fn is not None else {}

        def fit() -> dict[str, Any]:
            return train_model(
                model, self.loader("train", batch_size=chosen.batch_size, shuffle=True),
                chosen, device=self.device, label=label, on_epoch=self.on_epoch,
                precision=self.precision, **kwargs,
            ).as_dict()

        if distributed.is_active():  # ranks train together; nothing to share
            return fit()
        key = self.key(model, num_steps, label, chosen, loss_fn)
        with self.cache.lock(key):
            cached = self.cache.load(key, model)
            if cached is not None:
                summary = {**cached, "source": f"cache {key}"}
            else:
                trained = fit()
                self.cache.store(key, model, trained, about={
                    "method": self.cell.method, "architecture": self.cell.architecture,
                    "width": self.cell.width, "dataset": self.cell.dataset,
                    "seed": self.cell.seed, "T": num_steps, "label": label})
                summary = {**trained, "source": f"trained, cached as {key}"}
        model.to(self.device).eval()  # where and how training leaves it, loaded or not
        return summary

    def key(self, model: nn.Module, num_steps: int | None, label: str, config: TrainConfig,
            loss_fn: LossFn | None) -> str:
        classes = sorted({type(m) for m in model.modules()}, key=lambda c: c.__qualname__)
        functions: list[Callable[..., Any]] = [self.method.build, self.architecture_build,
                                               *classes]
        if loss_fn is not None:
            functions.append(loss_fn)
        return artifact_key([
            "trained", self.cell.to_dict(), self.data.info.fingerprint, num_steps, label,
            config, state_digest(model), self._ann_digest, self.version,
            code_version(*functions), source_folder_version(self.method.build, *classes),
            self.precision, str(self.device.type)])

    @functools.cached_property
    def _ann_digest(self) -> str | None:  # hashed only when a method trains something
        return state_digest(self.ann) if self.ann is not None else None
