"""`cqplus`: clamp-and-quantize (CQ) training with CQ+ threshold training.

Yan, Zhou, Wong. CQ+ Training: Minimizing Accuracy Loss in Conversion from Convolutional
Neural Networks to Spiking Neural Networks. IEEE TPAMI 2023; CQ training: Near Lossless
Transfer Learning for Spiking Neural Networks, AAAI 2021.

Per T (Q = T unless `Q` is set):
1. Start from the normally trained ReLU network (the shared `relu_bn` ANN), replace every
   ReLU by clamp-and-quantize `y = floor(Q * clamp(x, 0, 1)) / Q` followed (in training
   only) by channel dropout 0.15 as in the authors' VGG-*, add the quantizer after every
   average pooling and on the input, and retrain (`retrain_epochs`, Adam, lr 1e-3).
   Backward: the gradient passes the quantizer clipped to [-1, 1]; the clamp stops it
   outside [0, 1].
2. Fold BN and copy the weights one to one (no weight or threshold normalisation).
3. SNN: IF neurons, reset by subtraction, unit spikes, threshold 0.999, v(0) = 0; every
   average pooling is followed by such a neuron (its output re-spiked); the input pixel
   is quantized to Q levels and fed to an IF neuron with threshold 0.999 every step; the
   classifier does not spike and its output is averaged over T.
4. Threshold training (CQ+), on by default when T < 100: per-channel thresholds start at
   0.999; for each training batch, every layer's spike count per channel is compared with
   T times the CNN's quantized activation and
   theta_c <- theta_c - 0.1 * (sum(T q_c) - sum(spikes_c)) / (B H W T), without gradients.
   The quantized CNN's test accuracy is recorded in the build notes
   (`converted_ann_top1`, a column of the records table), since it is what the SNN
   should match at T = Q.

Deviations:
- The "parameterized input encoding" named in the TPAMI abstract is not visible in the
  authors' code; the input is IF-encoded as their code does.
- The authors retrain 1-3 epochs from the previous T's CQ network, an epoch being a pass
  over a 21-fold augmented training set; each T here retrains from the ReLU network
  (builds are independent per T) for `retrain_epochs` = 30 plain passes, cosine schedule.
  The dropout matters: without it the retrained network amplifies the SNN's +-1 spike
  count errors from layer to layer, and the SNN stays far below its quantized ANN even
  at T = Q = 256.
- The architecture's input normalisation layer is kept: it is affine, so the spiking input
  passes through it exactly in rate (the authors feed unnormalised [0, 1] pixels).
- Threshold training uses the unaugmented training split, `threshold_epochs` passes in
  batches of 50 (the authors: one pass over their augmented training set); thresholds are
  kept above 0.05 so that no channel fires on any positive input.

Known limit: with T = Q below 32 the SNN stays well below its CQ network on digits (the
leaderboard's `converted_ann_top1` column). With v(0) = 0 a neuron fires late in the
window, so the layers after it receive much of their input in the last steps and cannot
pass it on before the window ends. A longer window for the same CQ network closes the
gap (`--set cqplus.Q=4 --T 4,8,16,32`, seeds 0-2, SNN against the CQ network at Q = 4):
vgg11 62.69 / 85.74 / 96.30 / 97.69 against 96.30; resnet20 80.09 / 88.89 / 94.81 /
97.31 against 97.87. More threshold training does not: on vgg11 seed 0 at T = Q = 4,
one pass (the default) gives 59.44, three 42.22, ten 41.39
(`--set cqplus.threshold_epochs=N`). CQ+'s smallest published window is 64, and the
authors' MNIST example simulates 450 steps for Q = 10.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from snnbench_methods.conversion import require_activations
from snnbench_methods.recipes import RELU_BN
from snnbench_suite import MethodContext, MethodSpec, TrainConfig, evaluate_ann
from snnbench_suite.snn import (
    ClampQuantize,
    IFEncoder,
    IFNeuron,
    SpikingNetwork,
    average_pool_nodes,
    channel_sum,
    clamp_quantize,
    direct,
    insert_after,
    prepare_conversion,
    recording_outputs,
    require_average_pooling,
)

VERSION = "1"
SWITCH_VALUES = ("auto", "on", "off")
# CQ+ threshold training is for short windows: on by default below this T.
THRESHOLD_TRAINING_BELOW_T = 100
MIN_TRAINED_THRESHOLD = 0.05

PARAMS: dict[str, Any] = {
    "Q": "T",  # quantization levels: "T" (the cell's T) or a positive integer
    "threshold": 0.999,
    "input_threshold": 0.999,
    "retrain_epochs": 30,
    "dropout": 0.15,  # channel dropout after each CQ activation while retraining
    "retrain_lr": 1e-3,
    "threshold_training": "auto",  # auto: on when T < 100
    "threshold_lr": 0.1,
    "threshold_epochs": 1,
    "threshold_batch_size": 50,
}

TRAITS = {
    "readout": "non-spiking classifier, output averaged over T",
    "reset": "subtract",
    "spike_amplitude": "one",
    "batch_norm": "folded",
    "input_coding": "IF-encoded (threshold 0.999), quantized to Q levels",
    "pooling": "average pooling followed by IF neurons",
}


class QuantizedInput(nn.Module):
    """The CQ network seen during retraining: input quantized to Q levels, then the body."""

    def __init__(self, body: nn.Module, levels: int) -> None:
        super().__init__()
        self.body = body
        self.levels = levels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(clamp_quantize(x, self.levels))


def levels_for(params: Mapping[str, Any], num_steps: int) -> int:
    q = params["Q"]
    return num_steps if str(q).strip().upper() == "T" else int(q)


def cq_network(ann: nn.Module, levels: int, method: str, dropout: float = 0.0) -> QuantizedInput:
    """The ReLU ANN with every ReLU and every average pooling followed by CQ (BN kept)."""
    graph = prepare_conversion(ann, fold_bn=False)
    require_average_pooling(graph.module, method)
    require_activations(graph, (nn.ReLU,), method,
                        "Its ANN is a ReLU network (recipe relu_bn) that it retrains with CQ.")
    module = graph.module
    sites = module.get_submodule("activation_sites")
    for site in graph.sites:
        setattr(sites, site.name.rpartition(".")[2], ClampQuantize(levels))
    if dropout > 0:
        site_names = {s.name for s in graph.sites}
        site_nodes = [n for n in module.graph.nodes
                      if n.op == "call_module" and n.target in site_names]
        insert_after(module, site_nodes, lambda _n: nn.Dropout2d(dropout), "cq_dropout")
    insert_after(module, average_pool_nodes(module), lambda _n: ClampQuantize(levels),
                 "pool_quantize")
    return QuantizedInput(module, levels)


@torch.no_grad()
def train_thresholds(
    ann: nn.Module, network: SpikingNetwork, pairs: list[tuple[nn.Module, IFNeuron]],
    batches: list[torch.Tensor], num_steps: int, levels: int, *, lr: float,
) -> list[float]:
    """CQ+ threshold training: move per-channel thresholds so that each layer's spike count
    matches T times the quantized CNN activation. Returns each layer's mean absolute
    count mismatch per channel and sample-step over the last batch, before its update."""
    ann_modules = {f"ann_{i}": a for i, (a, _) in enumerate(pairs)}
    spikes: list[torch.Tensor] = [torch.zeros(()) for _ in pairs]
    handles = []
    for index, (_, neuron) in enumerate(pairs):
        def hook(_m: nn.Module, _i: Any, out: torch.Tensor, _k: int = index) -> None:
            spikes[_k] = spikes[_k] + channel_sum(out.ne(0).to(out.dtype))

        handles.append(neuron.register_forward_hook(hook))
    mismatch: list[float] = []
    try:
        network.eval()
        ann.eval()
        for x in batches:
            spikes[:] = [torch.zeros(()) for _ in pairs]
            with recording_outputs(ann_modules) as recorded:
                ann(clamp_quantize(x, levels))
                quantized = [recorded[f"ann_{i}"][0] for i in range(len(pairs))]
            network(direct(x, num_steps))
            mismatch = []
            for (_, neuron), q, count in zip(pairs, quantized, spikes, strict=True):
                elements = q.numel() / q.shape[1] * num_steps  # B * H * W * T per channel
                gap = (channel_sum(q) * num_steps - count) / elements
                neuron.threshold.sub_(lr * gap).clamp_(min=MIN_TRAINED_THRESHOLD)
                mismatch.append(float(gap.abs().mean()))
    finally:
        for handle in handles:
            handle.remove()
    return mismatch


def _threshold_training_on(params: Mapping[str, Any], num_steps: int) -> bool:
    choice = str(params["threshold_training"])
    return choice == "on" or (choice == "auto" and num_steps < THRESHOLD_TRAINING_BELOW_T)


def build(ctx: MethodContext) -> nn.Module:
    if ctx.ann is None or ctx.T is None:
        raise ValueError("cqplus needs a trained ANN and a T (it is a per-T method)")
    params, num_steps = ctx.params, ctx.T
    levels = levels_for(params, num_steps)
    cq = cq_network(ctx.ann, levels, "cqplus", float(params["dropout"]))
    summary = ctx.train(cq, config=TrainConfig(
        epochs=int(params["retrain_epochs"]), batch_size=64, optimizer="adam",
        lr=float(params["retrain_lr"]), weight_decay=0.0), label=f"CQ retraining (Q={levels})")
    cq.eval()
    # The CQ network is the ANN this T's SNN converts: its accuracy goes in the records
    # table next to the ReLU ANN's (column converted_ann_top1).
    ctx.notes.update(Q=levels, cq_retraining=summary,
                     converted_ann_top1=evaluate_ann(cq, ctx.loader("test"), ctx.device)["top1"])

    start = time.perf_counter()
    graph = prepare_conversion(cq.body)  # folds BN; the CQ modules are the sites
    ann = graph.module.to(ctx.device).eval()
    probe = next(iter(ctx.loader("train_eval", batch_size=2)))[0].to(ctx.device)
    with recording_outputs(graph.site_modules()) as recorded:
        ann(probe)
        channels = {name: out[0].shape[1] for name, out in recorded.items()}
    neurons = {
        s.name: IFNeuron(torch.full((channels[s.name],), float(params["threshold"])),
                         reset="subtract", amplitude="one")
        for s in graph.sites
    }
    encoder = IFEncoder(float(params["input_threshold"]), levels=levels)
    network = graph.to_spiking(lambda site: neurons[site.name], encoder=encoder).to(ctx.device)
    trained = _threshold_training_on(params, num_steps)
    ctx.notes["threshold_training"] = trained
    if trained:
        pairs = [(graph.site_modules()[s.name], neurons[s.name]) for s in graph.sites]
        batch_size = int(params["threshold_batch_size"])
        mismatch: list[float] = []
        for _ in range(int(params["threshold_epochs"])):
            batches = [x.to(ctx.device) for x, _ in ctx.loader("train_eval", batch_size)]
            mismatch = train_thresholds(ann, network, pairs, batches, num_steps, levels,
                                        lr=float(params["threshold_lr"]))
        ctx.notes["last_batch_count_mismatch"] = [round(m, 6) for m in mismatch]
        ctx.notes["threshold_mean"] = [round(float(n.threshold.mean()), 4)
                                       for n in neurons.values()]
    ctx.notes["conversion_s"] = round(time.perf_counter() - start, 3)
    return network


def check_params(params: Mapping[str, Any]) -> None:
    q = params["Q"]
    if str(q).strip().upper() != "T":
        try:
            value = int(str(q))
        except ValueError:
            value = 0
        if value < 1 or str(value) != str(q).strip():
            raise ValueError(f"Q must be a positive integer or 'T' (Q = T), got {q!r}")
    for key in ("retrain_epochs", "threshold_epochs", "threshold_batch_size"):
        value = params[key]
        minimum = 0 if key == "retrain_epochs" else 1
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{key} must be an integer >= {minimum}, got {value!r}")
    if not 0 <= float(params["dropout"]) < 1:
        raise ValueError(f"dropout must be in [0, 1), got {params['dropout']}")
    for key in ("threshold", "input_threshold", "retrain_lr", "threshold_lr"):
        if not float(params[key]) > 0:
            raise ValueError(f"{key} must be > 0, got {params[key]}")
    if params["threshold_training"] not in SWITCH_VALUES:
        raise ValueError(f"threshold_training must be one of {', '.join(SWITCH_VALUES)}, "
                         f"got {params['threshold_training']!r}")


CQPLUS = MethodSpec(
    name="cqplus", family="conversion", version=VERSION, t_mode="per_t", build=build,
    ann_recipe=RELU_BN, params=dict(PARAMS), check_params=check_params, traits=TRAITS,
    description="clamp-and-quantize retraining (Q = T), IF-encoded input, re-spiked pooling, "
    "CQ+ threshold training for T < 100",
    citation="Yan, Zhou, Wong. CQ+ Training: Minimizing Accuracy Loss in Conversion from "
    "Convolutional Neural Networks to Spiking Neural Networks. IEEE TPAMI 2023",
)
