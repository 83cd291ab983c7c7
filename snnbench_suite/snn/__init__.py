"""The spiking toolkit every method shares: neurons, surrogates, conversion, observation,
readout and encoders. Tensors are `[T, B, ...]`; stateless layers run on `[T*B, ...]`."""

from snnbench_suite.snn.convert import (
    ActivationSite,
    ConversionGraph,
    SpikingNetwork,
    fold_batch_norms,
    prepare_conversion,
    register_convertible_activation,
    trace,
)
from snnbench_suite.snn.encoding import direct, frames_first, poisson
from snnbench_suite.snn.neurons import IFNeuron, LIFNeuron, SpikingNeuron
from snnbench_suite.snn.observe import ActivationStats, observe_activations, recording_outputs
from snnbench_suite.snn.readout import anytime_readout, readout_at
from snnbench_suite.snn.surrogate import SURROGATES, ATan, Rectangle, Sigmoid, Surrogate, Triangle
from snnbench_suite.snn.temporal import TemporalModule, fold_time, unfold_time

__all__ = [
    "ATan",
    "ActivationSite",
    "ActivationStats",
    "ConversionGraph",
    "IFNeuron",
    "LIFNeuron",
    "Rectangle",
    "SURROGATES",
    "Sigmoid",
    "SpikingNetwork",
    "SpikingNeuron",
    "Surrogate",
    "TemporalModule",
    "Triangle",
    "anytime_readout",
    "direct",
    "fold_batch_norms",
    "fold_time",
    "frames_first",
    "observe_activations",
    "poisson",
    "prepare_conversion",
    "readout_at",
    "recording_outputs",
    "register_convertible_activation",
    "trace",
    "unfold_time",
]
