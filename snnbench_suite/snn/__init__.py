"""The spiking toolkit every method shares: neurons, surrogates, conversion, observation,
readout and encoders. Tensors are `[T, B, ...]`; stateless layers run on `[T*B, ...]`."""

from snnbench_suite.snn.activations import (
    QCFS,
    ClampQuantize,
    ThresholdReLU,
    clamp_quantize,
    clip_floor,
    clip_floor_ste,
    floor_ste,
)
from snnbench_suite.snn.calibration import (
    RecordedInputs,
    channel_max,
    channel_mean,
    channel_sum,
    ema,
    mmse_channel_thresholds,
    mmse_threshold,
    module_input_chunks,
    module_outputs,
    spiking_rates,
)
from snnbench_suite.snn.convert import (
    ActivationSite,
    ConversionGraph,
    SpikingNetwork,
    fold_batch_norms,
    prepare_conversion,
    register_convertible_activation,
    trace,
)
from snnbench_suite.snn.encoding import IFEncoder, direct, frames_first, poisson
from snnbench_suite.snn.features import capturing_input, classifier_name
from snnbench_suite.snn.graphs import (
    average_pool_nodes,
    insert_after,
    pre_activation_subgraph,
    require_average_pooling,
)
from snnbench_suite.snn.in_order import InOrderRecorder
from snnbench_suite.snn.neurons import IFNeuron, LIFNeuron, SpikingNeuron, broadcast_channels
from snnbench_suite.snn.observe import ActivationStats, observe_activations, recording_outputs
from snnbench_suite.snn.readout import anytime_readout, readout_at
from snnbench_suite.snn.surrogate import SURROGATES, ATan, Rectangle, Sigmoid, Surrogate, Triangle
from snnbench_suite.snn.temporal import TemporalModule, fold_time, unfold_time

__all__ = [
    "ATan",
    "ActivationSite",
    "ActivationStats",
    "ClampQuantize",
    "ConversionGraph",
    "IFEncoder",
    "IFNeuron",
    "InOrderRecorder",
    "LIFNeuron",
    "QCFS",
    "Rectangle",
    "SURROGATES",
    "Sigmoid",
    "SpikingNetwork",
    "SpikingNeuron",
    "Surrogate",
    "TemporalModule",
    "ThresholdReLU",
    "Triangle",
    "anytime_readout",
    "average_pool_nodes",
    "broadcast_channels",
    "capturing_input",
    "channel_max",
    "channel_mean",
    "channel_sum",
    "clamp_quantize",
    "classifier_name",
    "clip_floor",
    "clip_floor_ste",
    "direct",
    "ema",
    "floor_ste",
    "fold_batch_norms",
    "fold_time",
    "frames_first",
    "insert_after",
    "mmse_channel_thresholds",
    "mmse_threshold",
    "RecordedInputs",
    "module_input_chunks",
    "module_outputs",
    "observe_activations",
    "poisson",
    "pre_activation_subgraph",
    "prepare_conversion",
    "readout_at",
    "recording_outputs",
    "register_convertible_activation",
    "require_average_pooling",
    "spiking_rates",
    "trace",
    "unfold_time",
]
