"""Baseline ANN-to-SNN conversion: `naive` (Diehl et al. 2015) and `robust` (Rueckauer et al.
2017).

BN is folded into the preceding layer; each ReLU becomes an IF neuron with reset by
subtraction, v(0) = 0 and a spike amplitude equal to its threshold (equivalent to the
papers' weight normalisation by the same factor). The threshold of a layer is its maximum
ANN activation over the training split (`naive`) or a percentile of it (`robust`, default
99.9). The classifier does not spike; its output is averaged over time. The SNN does not
depend on T, so every T is read from one simulation (anytime).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from snnbench_methods.recipes import RELU_BN
from snnbench_suite import MethodContext, MethodSpec
from snnbench_suite.snn import IFNeuron, observe_activations, prepare_conversion

# A layer whose observed activation is never positive gets this threshold; it then
# (almost) never fires, which is what its ANN counterpart does.
MIN_THRESHOLD = 1e-6

# Threshold conversion reads only the network's activations: a detector's dense map is
# averaged over time like a classifier's logits (snnbench_suite.detection).
CONVERSION_TASKS = ("classification", "detection")

CONVERSION_TRAITS = {
    "readout": "non-spiking classifier, output averaged over T",
    "reset": "subtract",
    "spike_amplitude": "threshold",
    "batch_norm": "folded",
    "input_coding": "analog (direct)",
}


def _threshold_conversion(ctx: MethodContext, percentile: float | None) -> nn.Module:
    if ctx.ann is None:
        raise ValueError("conversion needs a trained ANN (method declares ann_recipe)")
    graph = prepare_conversion(ctx.ann)
    batches = (x.to(ctx.device) for x, _ in ctx.loader("train_eval"))
    stats = observe_activations(
        graph.module.to(ctx.device), graph.site_modules(), batches,
        percentiles=[percentile] if percentile is not None else [], seed=ctx.seed,
    )

    def neuron(site: Any) -> nn.Module:
        observed = stats[site.name]
        value = observed.max if percentile is None else observed.percentiles[percentile]
        return IFNeuron(max(value, MIN_THRESHOLD), reset="subtract", amplitude="threshold")

    ctx.notes["thresholds"] = [
        round(stats[s.name].max if percentile is None else stats[s.name].percentiles[percentile], 6)
        for s in graph.sites
    ]
    return graph.to_spiking(neuron)


def build_naive(ctx: MethodContext) -> nn.Module:
    return _threshold_conversion(ctx, None)


def build_robust(ctx: MethodContext) -> nn.Module:
    return _threshold_conversion(ctx, float(ctx.params["percentile"]))


def check_robust(params: Mapping[str, Any]) -> None:
    percentile = params["percentile"]
    if not 0 < float(percentile) <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {percentile}")


NAIVE = MethodSpec(
    name="naive", family="conversion", version="1", t_mode="anytime", build=build_naive,
    ann_recipe=RELU_BN, traits=CONVERSION_TRAITS, tasks=CONVERSION_TASKS,
    description="ANN-to-SNN conversion with max-activation thresholds",
    citation="Diehl et al., Fast-classifying, high-accuracy spiking deep networks through "
    "weight and threshold balancing, IJCNN 2015",
)

ROBUST = MethodSpec(
    name="robust", family="conversion", version="1", t_mode="anytime", build=build_robust,
    ann_recipe=RELU_BN, params={"percentile": 99.9}, check_params=check_robust,
    traits=CONVERSION_TRAITS, tasks=CONVERSION_TASKS,
    description="ANN-to-SNN conversion with percentile thresholds (robust normalisation)",
    citation="Rueckauer et al., Conversion of continuous-valued deep networks to efficient "
    "event-driven networks for image classification, Frontiers in Neuroscience 2017",
)
