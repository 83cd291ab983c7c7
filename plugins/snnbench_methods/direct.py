"""Direct training with surrogate gradients: `sdt` and `tet`.

Network: the architecture built with ReLU and BN, traced, and every ReLU replaced by a LIF
neuron (u <- 0.5 u + I, V_th = 1, hard reset to 0 with the gradient kept through the
reset, triangle surrogate of width 1). BN runs on the folded [T*B] batch (tdBN style), the
output layer is a non-spiking linear layer giving logits O(t) at every step, and the
prediction is their mean over t. Static images are fed directly (the analog image every
step); event data one frame per step. Training is backpropagation through time in the
suite's shared training loop.

`sdt` (standard direct training): L = CE(mean_t O(t), y), the baseline of the TET and
EnOF-SNN papers.

`tet` (Deng, Li, Zhang, Gu, Temporal Efficient Training of Spiking Neural Network via
Gradient Re-weighting, ICLR 2022):
    L = (1 - lam) * mean_t CE(O(t), y) + lam * mean_t MSE(O(t), phi),  phi = 1,
lam = 0.05 for static images and 0.001 for event data and ImageNet-scale data (the paper's
values; the authors' scripts default differently). Optional time-inheritance training
(`time_inheritance_T` > 0): train at that smaller T, then fine-tune at the target T for
`time_inheritance_epochs` epochs from those weights.

Deviations: the paper's recipes (ResNet-19 on CIFAR, 300 epochs on DVS-CIFAR10) are
replaced by each dataset's SNN training configuration (`--epochs` to change); the MSE is
taken over all logits of a step, as the authors' code does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from snnbench_suite import MethodContext, MethodSpec, UsageError, input_sequence
from snnbench_suite.snn import (
    ActivationSite,
    LIFNeuron,
    SpikingNetwork,
    Triangle,
    prepare_conversion,
)

TET_LAMBDA_STATIC = 0.05
TET_LAMBDA_EVENTS = 0.001
IMAGENET_SCALE_CLASSES = 1000

DIRECT_TRAINING_TRAITS = {
    "readout": "non-spiking output layer, logits averaged over T",
    "reset": "zero (hard)",
    "spike_amplitude": "one",
    "batch_norm": "over the folded [T*B] batch",
    "input_coding": "analog (direct) for images, one frame per step for events",
    "neuron": "LIF, decay 0.5, V_th 1, triangle surrogate",
}


def lif_neuron(_site: ActivationSite) -> nn.Module:
    return LIFNeuron(1.0, decay=0.5, reset="zero", surrogate=Triangle(1.0))


def trainable_snn(ctx: MethodContext, *, relu_last: bool = False) -> SpikingNetwork:
    """The architecture with every activation a LIF neuron; `relu_last` keeps the last
    activation (the one producing the output feature) a ReLU (RepAct)."""
    check_frames(ctx)
    graph = prepare_conversion(ctx.build_architecture(), fold_bn=False)

    def neuron_for(site: ActivationSite) -> nn.Module:
        return nn.ReLU() if relu_last and site.is_last else lif_neuron(site)

    return graph.to_spiking(neuron_for).to(ctx.device)


def check_frames(ctx: MethodContext) -> None:
    frames = ctx.data.info.num_frames
    if ctx.T is not None and ctx.data.info.modality == "events" and frames is not None:
        if ctx.T > frames:
            raise UsageError(
                f"T = {ctx.T} is larger than the {frames} frames dataset "
                f"{ctx.data.info.name!r} provides; ask for T <= {frames} or more frames"
            )


def per_step_logits(model: nn.Module, x: torch.Tensor, steps: int,
                    modality: str) -> torch.Tensor:
    logits: torch.Tensor = model(input_sequence(x, steps, modality))
    return logits


def sdt_loss(per_step: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """CE of the time-averaged logits."""
    return F.cross_entropy(per_step.mean(0), labels)


def tet_loss(per_step: torch.Tensor, labels: torch.Tensor, lam: float,
             phi: float = 1.0) -> torch.Tensor:
    """(1 - lam) * mean_t CE(O(t), y) + lam * mean_t MSE(O(t), phi)."""
    steps = per_step.shape[0]
    ce = torch.stack([F.cross_entropy(per_step[t], labels) for t in range(steps)]).mean()
    mse = torch.stack([F.mse_loss(per_step[t], torch.full_like(per_step[t], phi))
                       for t in range(steps)]).mean()
    return (1 - lam) * ce + lam * mse


def tet_lambda(ctx: MethodContext) -> float:
    value = ctx.params["lam"]
    if value != "auto":
        return float(value)
    info = ctx.data.info
    if info.modality == "events" or info.num_classes >= IMAGENET_SCALE_CLASSES:
        return TET_LAMBDA_EVENTS
    return TET_LAMBDA_STATIC


def train_at(ctx: MethodContext, model: nn.Module, steps: int,
             loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
             label: str, epochs: int | None = None) -> dict[str, Any]:
    modality = ctx.data.info.modality

    def loss_fn(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return loss(per_step_logits(net, x, steps, modality), y)

    config = None
    if epochs is not None:
        config = replace(ctx.snn_training, epochs=epochs)
    return ctx.train(model, loss_fn=loss_fn, config=config, label=label)


def build_sdt(ctx: MethodContext) -> nn.Module:
    steps = steps_of(ctx)
    model = trainable_snn(ctx)
    ctx.notes["trained_at_T"] = steps
    ctx.notes["training"] = train_at(ctx, model, steps, sdt_loss, f"sdt T={steps}")
    return model.eval()


def build_tet(ctx: MethodContext) -> nn.Module:
    steps = steps_of(ctx)
    lam = tet_lambda(ctx)
    model = trainable_snn(ctx)

    def loss(per_step: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return tet_loss(per_step, labels, lam)

    inherit = int(ctx.params["time_inheritance_T"])
    ctx.notes["lam"] = lam
    if inherit and inherit < steps:
        ctx.notes["pretraining"] = train_at(ctx, model, inherit, loss, f"tet T={inherit}")
        ctx.notes["training"] = train_at(ctx, model, steps, loss, f"tet T={steps} (inherited)",
                                         epochs=int(ctx.params["time_inheritance_epochs"]))
        ctx.notes["trained_at_T"] = f"{inherit}, fine-tuned at {steps}"
    else:
        ctx.notes["training"] = train_at(ctx, model, steps, loss, f"tet T={steps}")
        ctx.notes["trained_at_T"] = steps
    return model.eval()


def steps_of(ctx: MethodContext) -> int:
    """The cell's T; direct-training methods are per-T, so the runner always passes one."""
    if ctx.T is None:
        raise ValueError("direct-training methods are per-T: the runner must pass T")
    return ctx.T


def check_tet(params: Mapping[str, Any]) -> None:
    lam = params["lam"]
    if lam != "auto":
        try:
            value = float(lam)
        except (TypeError, ValueError):
            raise ValueError(f"lam must be 'auto' or a number in [0, 1], got {lam!r}") from None
        if not 0 <= value <= 1:
            raise ValueError(f"lam must be in [0, 1], got {value}")
    if int(params["time_inheritance_T"]) < 0:
        raise ValueError("time_inheritance_T must be 0 (off) or a positive T")
    if int(params["time_inheritance_epochs"]) < 0:
        raise ValueError("time_inheritance_epochs must be >= 0")


SDT = MethodSpec(
    name="sdt", family="direct_training", version="1", t_mode="per_t", build=build_sdt,
    modalities=("static", "events"), traits=DIRECT_TRAINING_TRAITS,
    description="standard direct training: CE on time-averaged logits, surrogate gradients",
    citation="Baseline of Deng et al., ICLR 2022 (TET) and Guo et al., NeurIPS 2024",
)

TET = MethodSpec(
    name="tet", family="direct_training", version="1", t_mode="per_t", build=build_tet,
    params={"lam": "auto", "time_inheritance_T": 0, "time_inheritance_epochs": 2},
    check_params=check_tet, modalities=("static", "events"), traits=DIRECT_TRAINING_TRAITS,
    description="Temporal Efficient Training: per-step CE plus MSE regulariser",
    citation="Deng, Li, Zhang, Gu, Temporal Efficient Training of Spiking Neural Network "
    "via Gradient Re-weighting, ICLR 2022",
)
