"""Distillation from the runner's trained ANN: `kd` and EnOF-SNN's `laf_repact`.

`kd`: vanilla logit distillation (Hinton et al. 2015) of the SNN from an ANN teacher of
the same architecture: L = CE(mean_t O(t), y) + alpha * tau^2 * KL(p_A || p_S), with
p = softmax(logits / tau) and the SNN's logits averaged over T. The baseline EnOF-SNN beats.

`laf_repact` (Guo et al., EnOF-SNN: Training Accurate Spiking Neural Networks via
Enhancing the Output Feature, NeurIPS 2024):
- L_AF: the SNN's output feature f_S (the input of the classifier, averaged over T) and
  the ANN's f_A for the same input are both passed through the ANN's frozen classifier g_A
  and aligned with the distillation KL divergence:
      L_AF = tau^2 * KL(softmax(g_A(f_A) / tau) || softmax(g_A(f_S) / tau)),
      L = CE(mean_t O(t), y) + alpha * L_AF.
- RepAct: the last LIF layer (the one producing the output feature) is replaced by ReLU,
  so the classifier reads a real-valued feature (its synaptic operations are MACs).
Variants for the paper's ablation: `laf_repact.laf` (L_AF only), `laf_repact.repact`
(RepAct only, trained as `sdt`), `laf_repact` (both); the baseline is `sdt`.

Not known from the paper (no official code is public), and chosen here: tau = 1 and
alpha = 1 (both parameters); f_S is averaged over T before g_A; CE is taken on the
SNN's own time-averaged logits; the teacher is the runner's ReLU+BN ANN of the same
architecture, in evaluation mode and frozen. The neuron and training are those of `sdt`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from snnbench_methods.direct import (
    DIRECT_TRAINING_TRAITS,
    sdt_loss,
    steps_of,
    trainable_snn,
)
from snnbench_methods.recipes import RELU_BN
from snnbench_suite import MethodContext, MethodSpec, input_sequence
from snnbench_suite.snn import capturing_input, classifier_name, trace


def kd_divergence(teacher_logits: torch.Tensor, student_logits: torch.Tensor,
                  tau: float) -> torch.Tensor:
    """tau^2 * KL(softmax(teacher / tau) || softmax(student / tau)), batch mean."""
    teacher = F.log_softmax(teacher_logits / tau, dim=-1)
    student = F.log_softmax(student_logits / tau, dim=-1)
    return tau * tau * F.kl_div(student, teacher, reduction="batchmean", log_target=True)


def laf_loss(student_feature: torch.Tensor, teacher_feature: torch.Tensor,
             teacher_classifier: nn.Module, tau: float) -> torch.Tensor:
    """L_AF: both features through the frozen teacher classifier, then the KD divergence."""
    return kd_divergence(teacher_classifier(teacher_feature),
                         teacher_classifier(student_feature), tau)


class FrozenTeacher:
    """The runner's ANN, frozen, with its classifier and output feature exposed."""

    def __init__(self, ann: nn.Module | None, device: torch.device) -> None:
        if ann is None:
            raise ValueError("distillation needs the runner's trained ANN (ann_recipe)")
        self.model = trace(ann).to(device).eval()
        self.classifier_path = classifier_name(self.model)
        self.classifier = self.model.get_submodule(self.classifier_path)
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(feature, logits) of the teacher for a batch of samples."""
        with capturing_input(self.classifier) as captured:
            logits = self.model(x)
        return captured[0], logits


def teacher_input(x: torch.Tensor, modality: str) -> torch.Tensor:
    # The ANN sees a static image as is; for event frames it sees their mean over time.
    return x.mean(1) if modality == "events" else x


def build_distilled(ctx: MethodContext, *, label: str, use_laf: bool, use_kd: bool,
                    relu_last: bool) -> nn.Module:
    steps = steps_of(ctx)
    modality = ctx.data.info.modality
    tau, alpha = float(ctx.params.get("tau", 1.0)), float(ctx.params.get("alpha", 1.0))
    model = trainable_snn(ctx, relu_last=relu_last)
    teacher = FrozenTeacher(ctx.ann, ctx.device) if (use_laf or use_kd) else None
    student_classifier = model.graph_module.get_submodule(classifier_name(model.graph_module))

    def loss_fn(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with capturing_input(student_classifier) as captured:
            per_step = net(input_sequence(x, steps, modality))
        loss = sdt_loss(per_step, y)
        if teacher is not None:
            teacher_feature, teacher_logits = teacher(teacher_input(x, modality))
            if use_laf:
                student_feature = captured[0].unflatten(0, (steps, -1)).mean(0)
                loss = loss + alpha * laf_loss(student_feature, teacher_feature,
                                               teacher.classifier, tau)
            if use_kd:
                loss = loss + alpha * kd_divergence(teacher_logits, per_step.mean(0), tau)
        return loss

    ctx.notes["trained_at_T"] = steps
    ctx.notes["training"] = ctx.train(model, loss_fn=loss_fn, label=f"{label} T={steps}")
    return model.eval()


def check_distillation(params: Mapping[str, Any]) -> None:
    if not float(params["tau"]) > 0:
        raise ValueError(f"tau must be > 0, got {params['tau']}")
    if not float(params["alpha"]) >= 0:
        raise ValueError(f"alpha must be >= 0, got {params['alpha']}")


DISTILL_PARAMS = {"tau": 1.0, "alpha": 1.0}
CITATION = ("Guo et al., EnOF-SNN: Training Accurate Spiking Neural Networks via Enhancing "
            "the Output Feature, NeurIPS 2024")
REPACT_TRAITS = {**DIRECT_TRAINING_TRAITS,
                 "readout": "last activation ReLU (RepAct), non-spiking classifier"}


def _spec(name: str, description: str, *, use_laf: bool, use_kd: bool, relu_last: bool,
          citation: str = CITATION) -> MethodSpec:
    needs_teacher = use_laf or use_kd
    return MethodSpec(
        name=name, family="distillation" if needs_teacher else "direct_training",
        version="1", t_mode="per_t",
        build=lambda ctx: build_distilled(ctx, label=name, use_laf=use_laf, use_kd=use_kd,
                                          relu_last=relu_last),
        ann_recipe=RELU_BN if needs_teacher else None,
        params=DISTILL_PARAMS if needs_teacher else {},
        check_params=check_distillation if needs_teacher else None,
        modalities=("static", "events"),
        traits=REPACT_TRAITS if relu_last else DIRECT_TRAINING_TRAITS,
        description=description, citation=citation,
    )


KD = _spec("kd", "vanilla logit distillation from the ANN teacher",
           use_laf=False, use_kd=True, relu_last=False,
           citation="Hinton, Vinyals, Dean, Distilling the Knowledge in a Neural Network, 2015")
LAF_REPACT = _spec("laf_repact", "EnOF-SNN: L_AF feature alignment + RepAct",
                   use_laf=True, use_kd=False, relu_last=True)
LAF_ONLY = _spec("laf_repact.laf", "EnOF-SNN ablation: L_AF only",
                 use_laf=True, use_kd=False, relu_last=False)
REPACT_ONLY = _spec("laf_repact.repact", "EnOF-SNN ablation: RepAct only",
                    use_laf=False, use_kd=False, relu_last=True)
