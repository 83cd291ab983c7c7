"""`example_halfinit`: threshold-balanced ANN-to-SNN conversion with the membrane
potential started at half the threshold.

Each ReLU of the trained ANN becomes an integrate-and-fire neuron with reset by
subtraction and a spike amplitude equal to its threshold. The threshold of a layer is a
high percentile of its ANN activations on the training split (Rueckauer et al. 2017).
The membrane starts at `v_init` times the threshold instead of zero: with 0.5, the spike
count after t steps rounds the accumulated input to the nearest multiple of the
threshold instead of flooring it, which removes the systematic under-firing of
zero-initialised neurons at small T (Bu et al., ICLR 2022). With
`v_init = 0` the method is `robust` conversion.

The SNN does not depend on T, so snnbench simulates it once at the largest T and reads
every smaller T from the same simulation (t_mode "anytime").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from snnbench_suite import AnnRecipe, MethodContext, MethodSpec, snn

# The ANN this method converts: ReLU with batch norm (folded before conversion). Methods
# that name the same recipe (name and version) share one trained ANN in snnbench's cache.
RELU_BN = AnnRecipe(name="relu_bn", version="1", activation=nn.ReLU, batch_norm=True)

# A layer whose activations are never positive gets this threshold, so it stays silent
# as its ANN counterpart does (thresholds must be positive).
MIN_THRESHOLD = 1e-6


def check_params(params: Mapping[str, Any]) -> None:
    """Refuse bad values before anything runs (`--set example_halfinit.v_init=2` is exit 2)."""
    percentile = float(params["percentile"])
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {percentile}")
    v_init = float(params["v_init"])
    if not 0 <= v_init < 1:
        raise ValueError(f"v_init is a fraction of the threshold in [0, 1), got {v_init}")


def build(ctx: MethodContext) -> nn.Module:
    """The spiking network for one cell: observe the ANN, set thresholds, swap neurons."""
    if ctx.ann is None:
        raise ValueError("example_halfinit converts a trained ANN; its ann_recipe is missing")
    percentile = float(ctx.params["percentile"])
    fraction = float(ctx.params["v_init"])
    graph = snn.prepare_conversion(ctx.ann)  # traced, BN folded, activation sites found
    batches = (x.to(ctx.device) for x, _ in ctx.loader("train_eval"))
    stats = snn.observe_activations(graph.module.to(ctx.device), graph.site_modules(), batches,
                                    percentiles=[percentile], seed=ctx.seed)
    thresholds = {name: max(s.percentiles[percentile], MIN_THRESHOLD)
                  for name, s in stats.items()}
    # Notes are stored in the record's `builds` entry: what a reader needs to check it.
    ctx.notes["thresholds"] = [round(thresholds[site.name], 6) for site in graph.sites]
    ctx.notes["v_init_fraction"] = fraction

    def neuron(site: snn.ActivationSite) -> nn.Module:
        threshold = thresholds[site.name]
        return snn.IFNeuron(threshold, reset="subtract", amplitude="threshold",
                            v_init=fraction * threshold)

    return graph.to_spiking(neuron)


EXAMPLE_HALFINIT = MethodSpec(
    name="example_halfinit",
    family="conversion",
    # Bump the version whenever the method's behaviour changes: it is part of every
    # cell id, so new records never mix with ones the old behaviour produced.
    version="1",
    t_mode="anytime",
    build=build,
    ann_recipe=RELU_BN,
    params={"percentile": 99.9, "v_init": 0.5},
    check_params=check_params,
    description="robust conversion with the membrane started at half the threshold",
    citation="Rueckauer et al., Conversion of Continuous-Valued Deep Networks to Efficient "
    "Event-Driven Networks for Image Classification, Front. Neurosci. 2017; Bu et al., "
    "Optimal ANN-SNN Conversion for High-accuracy and Ultra-low-latency Spiking Neural "
    "Networks, ICLR 2022",
    traits={
        "readout": "non-spiking classifier, output averaged over T",
        "reset": "subtract",
        "spike_amplitude": "threshold",
        "batch_norm": "folded",
        "input_coding": "analog (direct)",
    },
)
