"""A plugin for the multi-process tests, installed as a distribution so that the rank
processes `snnbench_suite.launch` starts find it through its entry point.

- dataset `blobs`: 128 training and 64 test samples of three Gaussian blobs on a 4x4
  image, no augmentation, training batches of 32 (so 2 ranks take 16 each, and the
  training split is a whole number of global batches);
- architecture `tiny_mlp`: flatten, linear 16 -> 24, the activation, linear 24 -> 3 (no
  BN: torch's SyncBatchNorm needs GPUs, so on CPU BN would be per rank);
- method `rank_probe` (per T): observes the ANN's activation maxima on the unaugmented
  training split, then trains a LIF version of the architecture through ctx.train.
  Parameter `fault`: "none", "exit" (rank 1 exits with code 3 when training starts) or
  "hang" (rank 1 sleeps, alive, so rank 0 waits in a collective).
"""

from __future__ import annotations

import os
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from snnbench_suite import (
    AnnRecipe,
    ArchitectureSpec,
    DatasetInfo,
    DatasetSpec,
    DatasetSplits,
    MethodSpec,
    TrainConfig,
    distributed,
    hookimpl,
)
from snnbench_suite.evaluation import input_sequence
from snnbench_suite.snn import LIFNeuron, Triangle, observe_activations, prepare_conversion

CONFIG = TrainConfig(epochs=2, batch_size=32, optimizer="sgd", lr=0.2, momentum=0.9,
                     weight_decay=0.0)


class Blobs(torch.utils.data.Dataset):
    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i], self.y[i]


def load(request: Any) -> DatasetSplits:
    g = torch.Generator().manual_seed(7)
    centres = torch.rand(3, 1, 4, 4, generator=g)

    def draw(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.arange(n) % 3
        return (centres[y] + 0.3 * torch.randn(n, 1, 4, 4, generator=g)).clamp(0, 1), y

    train, test = draw(128), draw(64)
    info = DatasetInfo(name="blobs", version="1", task="classification", modality="static",
                       num_classes=3, input_shape=(1, 4, 4), fingerprint="blobs-1",
                       split_sizes={"train": 128, "test": 64, "calibration": 32})
    return DatasetSplits(info=info, train=Blobs(*train), train_eval=Blobs(*train),
                         test=Blobs(*test), calibration_indices=tuple(range(32)))


def tiny_mlp(request: Any) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 24), request.activation(),
                         nn.Linear(24, request.num_classes))


def build(ctx: Any) -> nn.Module:
    fault = ctx.params["fault"]
    ann = ctx.ann.to(ctx.device)
    batches = (x.to(ctx.device) for x, _ in ctx.loader("train_eval", batch_size=16))
    stats = observe_activations(ann, {"hidden": ann[2]}, batches)
    ctx.notes["hidden_max"] = stats["hidden"].max
    ctx.notes["hidden_count"] = stats["hidden"].count
    graph = prepare_conversion(ctx.build_architecture(batch_norm=False), fold_bn=False)
    model = graph.to_spiking(lambda site: LIFNeuron(1.0, decay=0.5, reset="zero",
                                                    surrogate=Triangle(1.0))).to(ctx.device)
    steps = ctx.T

    def loss_fn(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if distributed.rank() == 1 and fault == "exit":
            os._exit(3)
        if distributed.rank() == 1 and fault == "hang":
            time.sleep(3600)
        return F.cross_entropy(net(input_sequence(x, steps, "static")).mean(0), y)

    ctx.notes["training"] = ctx.train(model, loss_fn=loss_fn, config=CONFIG, label="probe")
    ctx.notes["weights"] = {k: v.detach().cpu().tolist() for k, v in model.state_dict().items()
                            if v.is_floating_point() and v.dim() > 0}
    return model.eval()


def _check(params: Any) -> None:
    if params["fault"] not in ("none", "exit", "hang"):
        raise ValueError("fault must be none, exit or hang")


@hookimpl
def snnbench_register_datasets(register: Any) -> None:
    register(DatasetSpec(name="blobs", version="1", task="classification", modality="static",
                         load=load, ann_training=CONFIG, snn_training=CONFIG, embedded=True,
                         description="three Gaussian blobs (multi-process tests)"))


@hookimpl
def snnbench_register_architectures(register: Any) -> None:
    register(ArchitectureSpec(name="tiny_mlp", family="mlp", build=tiny_mlp,
                              description="two linear layers (multi-process tests)"))


@hookimpl
def snnbench_register_methods(register: Any) -> None:
    register(MethodSpec(
        name="rank_probe", family="direct_training", version="1", t_mode="per_t",
        build=build, ann_recipe=AnnRecipe(name="relu_nobn", version="1", batch_norm=False),
        params={"fault": "none"}, check_params=_check,
        description="observes maxima and trains a LIF MLP (multi-process tests)"))
