"""Efficiency metrics of a simulation: firing rates, synaptic operations, MACs and energy.

`counters.counting` hooks the network during the simulation that gives the accuracy;
`sources` decides from the network's structure whether a layer is fed by spike events
(ACs) or real values (MACs); `energy` holds the versioned cost tables. The definitions are
in the docstrings of `counters` and `sources`.

`METRICS_VERSION` is stored with every record and changes whenever a definition changes,
so numbers counted under different definitions are never compared silently.

What a record holds (all counts per sample, summed over the first T steps):
- each `per_T` entry: `top1` (`top5` with more than 10 classes), `firing_rate`,
  `layer_firing_rates` {neuron layer: rate}, `sops`, `dense_macs`, `effective_macs`,
  `effective_acs`, `energy_pj`, and the wall times `build_seconds` and `eval_seconds` of
  the build and simulation that produced it (for an anytime method one build and one
  simulation at max(T) serve every T, so its entries share both times);
- `record["metrics"]`: `version`, `energy_table` {name, version, pj_per_mac, pj_per_ac},
  `params` (parameters of the evaluated network), `ann_macs` (dense MACs of one step =
  one forward pass of the ANN with the same layers), `ann_energy_pj` (ann_macs x
  pj_per_mac), `layers` {synaptic layer: type, what feeds it, how it was counted, fan-in}
  and `uncounted_layers` (weight layers of a kind that is not counted).
"""

from snnbench_suite.metrics.counters import (
    Tally,
    ann_dense_macs,
    classify_values,
    counting,
    fan_in,
    parameter_count,
    synaptic_ops,
)
from snnbench_suite.metrics.energy import (
    CMOS_45NM,
    DEFAULT_ENERGY_TABLE,
    ENERGY_TABLES,
    EnergyTable,
)
from snnbench_suite.metrics.sources import Feed, Layout, Source, analyse

METRICS_VERSION = "1"

__all__ = [
    "CMOS_45NM",
    "DEFAULT_ENERGY_TABLE",
    "ENERGY_TABLES",
    "METRICS_VERSION",
    "EnergyTable",
    "Feed",
    "Layout",
    "Source",
    "Tally",
    "analyse",
    "ann_dense_macs",
    "classify_values",
    "counting",
    "fan_in",
    "parameter_count",
    "synaptic_ops",
]
