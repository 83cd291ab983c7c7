"""Efficiency metrics of a simulation: firing rates, synaptic operations, MACs and energy.

Counting (`counting`) hooks the network during the simulation that gives the accuracy;
`sources` decides from the network's structure whether a layer is fed by spike events
(ACs) or real values (MACs); `energy` holds the versioned cost tables. The definitions are
in the docstrings of `counting` and `sources`.

`METRICS_VERSION` is stored with every record and changes whenever a definition changes,
so numbers counted under different definitions are never compared silently.
"""

from snnbench_suite.metrics.counting import (
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
