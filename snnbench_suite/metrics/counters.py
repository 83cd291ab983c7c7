"""Counting spikes and synaptic operations with forward hooks on the evaluated simulation.

`counting(network, T)` installs hooks on the neurons, the synaptic layers and the average
pools of `network`, yields a `Tally` that the hooks fill while the caller runs its
simulation, and removes every hook when the block exits, also when it raises. All counts
are kept per time step (summed over samples), so one simulation at T_max gives the counts
of every T <= T_max (anytime readout).

Definitions (per sample; a step is one time step of the simulation):
- firing rate of a neuron layer = spikes / (neurons x steps), where a spike is a non-zero
  output whatever its amplitude; the mean firing rate is over all neurons of all layers
  (total spikes / (total neurons x steps)). The input encoder is not a layer.
- synaptic layers: Conv1d/2d/3d and Linear (subclasses included). Pooling, BN, neuron
  updates, biases and additions are not counted (NeuroBench's convention). Every weight
  counts as a synapse, zero or not.
- dense MACs of a layer per step = output elements x fan-in, fan-in = in_channels/groups x
  kernel elements (conv) or in_features (linear): the cost as if every input were non-zero.
  `ann_macs` is one step of it: one forward pass of the ANN with the same layers.
- effective operations of a layer = sum over input elements of (events or non-zero
  values there) x (the synapses of the layer that element reaches), exactly as the layer
  computes it (padding, stride, groups and borders included: a ones-kernel convolution of
  the event counts). They are ACs when the input is events (see `sources`) and MACs when
  it is real; zero inputs cost nothing in either case (NeuroBench's effective MACs).
  A spike is one event whatever its amplitude; a pooled element carries the number of
  spikes it averages; an event-count frame carries its count.
- SOPs (synaptic operations) = the operations triggered by spike events = effective ACs.
  Both names are reported: papers say SOPs, NeuroBench says effective ACs.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from snnbench_suite.metrics.sources import AVERAGE_POOLS, Feed, Layout, Source, analyse
from snnbench_suite.snn.encoding import IFEncoder
from snnbench_suite.snn.neurons import SpikingNeuron

# How a layer's input was counted; a layer whose calls differ is "mixed".
AS_EVENTS, AS_REAL = "events", "real"


@dataclass
class LayerCounts:
    """One synaptic layer: per-step sums over samples."""

    layer_type: str
    fan_in: int
    acs: torch.Tensor
    macs: torch.Tensor
    dense: torch.Tensor
    counted_as: set[str] = field(default_factory=set)


@dataclass
class Tally:
    """What the hooks counted; every tensor is `[T]` float64, summed over samples."""

    num_steps: int
    layout: Layout
    spikes: dict[str, torch.Tensor] = field(default_factory=dict)
    neurons: dict[str, int] = field(default_factory=dict)
    layers: dict[str, LayerCounts] = field(default_factory=dict)

    def _steps(self) -> torch.Tensor:
        return torch.zeros(self.num_steps, dtype=torch.float64)

    def per_sample(self, steps: int, samples: int) -> dict[str, Any]:
        """Per-sample metrics of the first `steps` steps of `samples` simulated samples."""
        if not 1 <= steps <= self.num_steps:
            raise ValueError(f"steps must be in 1..{self.num_steps}, got {steps}")
        if samples < 1:
            raise ValueError("no sample was simulated")

        def total(values: torch.Tensor) -> float:
            return float(values[:steps].sum()) / samples

        layer_rates = {name: total(count) / (self.neurons[name] * steps)
                       for name, count in self.spikes.items()}
        all_neurons = sum(self.neurons[name] for name in self.spikes)
        all_spikes = sum(total(count) for count in self.spikes.values())
        acs = sum(total(c.acs) for c in self.layers.values())
        macs = sum(total(c.macs) for c in self.layers.values())
        dense = sum(total(c.dense) for c in self.layers.values())
        return {
            "firing_rate": all_spikes / (all_neurons * steps) if all_neurons else 0.0,
            "layer_firing_rates": layer_rates,
            "sops": acs,
            "effective_acs": acs,
            "effective_macs": macs,
            "dense_macs": round(dense),
        }

    def dense_macs_per_step(self, samples: int) -> int:
        """Dense MACs of one step per sample: one ANN forward pass with these layers."""
        return round(sum(float(c.dense[0]) for c in self.layers.values()) / samples)

    def layer_summary(self) -> dict[str, dict[str, Any]]:
        """How each synaptic layer was counted (for the record)."""
        summary = {}
        for name, counts in self.layers.items():
            kinds = sorted(counts.counted_as)
            summary[name] = {
                "type": counts.layer_type,
                "input": self.layout.synaptic[name].source.value,
                "counted_as": kinds[0] if len(kinds) == 1 else "mixed",
                "fan_in": counts.fan_in,
            }
        return summary


def fan_in(layer: nn.Module) -> int:
    """Synapses per output element of a synaptic layer."""
    if isinstance(layer, nn.Linear):
        return int(layer.in_features)
    assert isinstance(layer, nn.modules.conv._ConvNd)
    return int(layer.in_channels // layer.groups * math.prod(layer.kernel_size))


# float32 adds whole numbers exactly below 2**24; beyond, counting switches to float64.
_EXACT_FLOAT32 = 2**24


def position_fan_out(layer: nn.modules.conv._ConvNd, spatial: Sequence[int],
                     device: torch.device) -> torch.Tensor:
    """For each input position of a convolution, the number of output positions whose
    window covers it (borders, stride, dilation and padding mode included): the gradient
    of the sum of a ones-kernel convolution of a ones input. float64, shape `spatial`."""
    dims = len(layer.kernel_size)
    with torch.enable_grad():
        probe = torch.ones(1, 1, *spatial, dtype=torch.float64, device=device,
                           requires_grad=True)
        padded = probe
        padding: Any = layer.padding
        if layer.padding_mode != "zeros":
            padded = F.pad(probe, layer._reversed_padding_repeated_twice,
                           mode=layer.padding_mode)
            padding = 0
        ones = torch.ones(1, 1, *layer.kernel_size, dtype=torch.float64, device=device)
        conv = (F.conv1d, F.conv2d, F.conv3d)[dims - 1]
        conv(padded, ones, None, layer.stride, padding, layer.dilation).sum().backward()
    assert probe.grad is not None
    return probe.grad[0, 0]


def element_fan_out(layer: nn.Module, sample_shape: Sequence[int],
                    device: torch.device) -> torch.Tensor:
    """The synapses each input element of one sample reaches, flattened (float64).

    Linear: `out_features` for every element. Convolution: an element of any channel
    reaches the output channels of its group (out_channels / groups) at every output
    position whose window covers it."""
    if isinstance(layer, nn.Linear):
        return torch.full((math.prod(sample_shape),), float(layer.out_features),
                          dtype=torch.float64, device=device)
    assert isinstance(layer, nn.modules.conv._ConvNd)
    channels, *spatial = sample_shape
    positions = position_fan_out(layer, spatial, device).flatten()
    return positions.repeat(channels) * (layer.out_channels // layer.groups)


def synaptic_ops(layer: nn.Module, events: torch.Tensor,
                 fan_out: torch.Tensor | None = None, *, binary: bool = False) -> torch.Tensor:
    """Per input row: the sum over elements of (events there) x (synapses they reach),
    i.e. exactly the operations the layer performs on its non-zero inputs. float64.

    `events` holds the number of events per element (0/1 for spikes: `binary`, which
    saves a pass over it); `fan_out` is `element_fan_out` for this layer and input shape
    (computed when not given)."""
    rows = events.shape[0]
    if fan_out is None:
        fan_out = element_fan_out(layer, events.shape[1:], events.device)
    flat = events.reshape(rows, -1)
    # Whole numbers: exact in float32 while every partial sum stays below 2**24 (one
    # matrix-vector product, fast); otherwise, or off the CPU (TF32), in float64.
    largest = 1.0 if binary or not flat.numel() else float(flat.max())
    bound = float(fan_out.max()) * flat.shape[1] * largest
    if flat.device.type == "cpu" and bound < _EXACT_FLOAT32:
        return torch.mv(flat.to(torch.float32), fan_out.to(torch.float32)).to(torch.float64)
    return torch.mv(flat.to(torch.float64), fan_out)


def classify_values(x: torch.Tensor, *, event_counts: bool) -> tuple[torch.Tensor, bool]:
    """Events or real values, from the values of one call's input (when the structure
    does not say). Returns (events per element, is_events).

    Events when every non-zero value is one and the same number (spikes of any amplitude,
    binary event frames): each non-zero element is one event. With `event_counts` (the
    network input of an event dataset), non-negative whole numbers are event counts: a
    value n is n events. Anything else is real: its non-zero elements cost one MAC per
    synapse.
    """
    low, high = (float(v) for v in torch.aminmax(x))
    if low == high:
        return nonzero(x), True  # one value everywhere: all zero, or an event everywhere
    if low == 0 or high == 0:
        amplitude = high if low == 0 else low
        if bool(((x == 0) | (x == amplitude)).all()):
            return nonzero(x), True
    if event_counts and low >= 0 and bool((x == x.round()).all()):
        return x, True
    return nonzero(x), False


def nonzero(x: torch.Tensor, *, nonnegative: bool = False) -> torch.Tensor:
    """1 where `x` is non-zero, 0 elsewhere, in x's floating type (`sign` is several times
    faster than a boolean mask and its conversion)."""
    return x.sign() if nonnegative else x.abs().sign()


def pooled_counts(pool: nn.Module, events: torch.Tensor, *, exact: bool = True
                  ) -> torch.Tensor:
    """The number of events each output element of an average pool averages.

    `exact` rounds adaptive pooling's mean x window back to whole numbers; without it the
    result stays differentiable (for `pooled_fan_out`)."""
    if isinstance(pool, (nn.AvgPool2d, nn.AvgPool3d)):
        sum_pool = F.avg_pool2d if isinstance(pool, nn.AvgPool2d) else F.avg_pool3d
        # divisor 1 turns the average into a sum; padding adds no event
        return sum_pool(events, pool.kernel_size, pool.stride,
                        pool.padding, pool.ceil_mode, pool.count_include_pad, 1)
    adaptive: Any
    if isinstance(pool, nn.AdaptiveAvgPool1d):
        dims, adaptive = 1, F.adaptive_avg_pool1d
    elif isinstance(pool, nn.AdaptiveAvgPool2d):
        dims, adaptive = 2, F.adaptive_avg_pool2d
    elif isinstance(pool, nn.AdaptiveAvgPool3d):
        dims, adaptive = 3, F.adaptive_avg_pool3d
    else:
        raise TypeError(f"not an average pooling module: {type(pool).__name__}")
    spatial = events.shape[-dims:]
    out_size = _adaptive_size(pool.output_size, spatial)
    mean = adaptive(events, tuple(out_size) if dims > 1 else out_size[0])
    windows = torch.ones((), dtype=events.dtype, device=events.device)
    for axis, (size_in, size_out) in enumerate(zip(spatial, out_size, strict=True)):
        index = torch.arange(size_out, device=events.device)
        start = torch.div(index * size_in, size_out, rounding_mode="floor")
        end = torch.div((index + 1) * size_in + size_out - 1, size_out, rounding_mode="floor")
        shape = [1] * dims
        shape[axis] = size_out
        windows = windows * (end - start).to(events.dtype).reshape(shape)
    counts = mean * windows
    return counts.round() if exact else counts


def _adaptive_size(output_size: Any, spatial: torch.Size) -> list[int]:
    sizes = list(output_size) if isinstance(output_size, (tuple, list)) else \
        [output_size] * len(spatial)
    return [int(s if s is not None else n) for s, n in zip(sizes, spatial, strict=True)]


def pooled_fan_out(layer: nn.Module, pools: Sequence[nn.Module],
                   pre_shape: Sequence[int], layer_shape: Sequence[int],
                   device: torch.device) -> torch.Tensor:
    """The synapses of `layer` each element before the average pools reaches: the sum,
    over the pooled elements whose windows hold it, of their fan-out in the layer.

    Counting the events before the pools with this fan-out equals counting the pooled
    event counts with the layer's own fan-out, without pooling the events every call.
    Found once per shape as the gradient of sum(fan-out x pooled counts) (float64)."""
    with torch.enable_grad():
        probe = torch.ones(1, *pre_shape, dtype=torch.float64, device=device,
                           requires_grad=True)
        counts = probe
        for pool in pools:
            counts = pooled_counts(pool, counts, exact=False)
        fan_out = element_fan_out(layer, layer_shape, device)
        (counts.reshape(-1) * fan_out).sum().backward()
    assert probe.grad is not None
    return probe.grad.reshape(-1)


@contextmanager
def counting(network: nn.Module, num_steps: int, *, event_input: bool = False
             ) -> Iterator[Tally]:
    """Hooks that count spikes and synaptic operations of `network` simulated over
    `num_steps` steps (folded `[T*B, ...]` tensors); removed on exit, whatever happens.

    `event_input`: the network's input is event data (frames of events), classified by
    its values (`classify_values`); otherwise it is an analog image and a layer reading
    it directly counts MACs."""
    layout = analyse(network)
    tally = Tally(num_steps=num_steps, layout=layout)
    modules = dict(network.named_modules())
    # per average pool, from its last call: (the events' tensor before the first of the
    # chained pools, the chain, what feeds that tensor)
    before_pools: dict[str, tuple[torch.Tensor, tuple[nn.Module, ...], Feed]] = {}
    fan_outs: dict[tuple[str, tuple[int, ...], torch.device], torch.Tensor] = {}
    # The spike masks of the latest neuron outputs, so that the layer reading a neuron's
    # output does not compute its mask again: id -> (output, its version, mask). The
    # version counter detects an in-place change in between; two entries cover a
    # residual block (its conv and its shortcut read the same spikes).
    recent_spikes: dict[int, tuple[torch.Tensor, int, torch.Tensor]] = {}
    handles = []

    def events_of(x: torch.Tensor, feed: Feed) -> tuple[torch.Tensor, bool, bool]:
        """(events per element, counted as events, every count 0 or 1)."""
        source = feed.source
        if source is Source.EVENTS:  # neurons and encoders emit non-negative spikes
            recent = recent_spikes.get(id(x))
            if recent is not None and recent[0] is x and recent[1] == x._version:
                return recent[2], True, True
            return nonzero(x, nonnegative=True), True, True
        if source is Source.INPUT and event_input:
            events, is_events = classify_values(x, event_counts=True)
            return events, is_events, False
        if source is Source.UNKNOWN:
            events, is_events = classify_values(x, event_counts=False)
            return events, is_events, True
        return nonzero(x), False, True

    def per_step(per_row: torch.Tensor, what: str) -> torch.Tensor:
        """Per-row counts `[T*B]` -> per-step sums `[T]` (float64, on the CPU)."""
        if per_row.shape[0] % num_steps:
            raise ValueError(
                f"{what} received {per_row.shape[0]} rows, which is not T = {num_steps} "
                "steps of a folded [T*B, ...] batch; counting needs the folded layout"
            )
        return per_row.to(torch.float64).reshape(num_steps, -1).sum(1).cpu()

    def neuron_hook(name: str, nonnegative: bool) -> Any:
        def hook(_m: nn.Module, _args: Any, out: torch.Tensor) -> None:
            mask = nonzero(out, nonnegative=nonnegative)
            if nonnegative:
                recent_spikes[id(out)] = (out, out._version, mask)
                while len(recent_spikes) > 2:
                    del recent_spikes[next(iter(recent_spikes))]
            spikes = mask.reshape(out.shape[0], -1)
            # a row (one sample at one step) sums exactly in float32 below 2**24 neurons
            exact = spikes if spikes.shape[1] < _EXACT_FLOAT32 else spikes.double()
            counts = per_step(exact.sum(1), f"neuron layer {name!r}")
            tally.spikes[name] = tally.spikes.get(name, tally._steps()) + counts
            tally.neurons[name] = spikes.shape[1]
        return hook

    def pool_hook(name: str, feed: Feed) -> Any:
        # Only remembers its input: the layer after the pools counts the events there.
        def hook(module: nn.Module, args: Any, _out: torch.Tensor) -> None:
            earlier = before_pools.get(feed.pool or "") if feed.source is Source.POOLED \
                else None
            if earlier is not None:
                tensor, chain, first_feed = earlier
                before_pools[name] = (tensor, (*chain, module), first_feed)
            elif feed.source is Source.POOLED:
                before_pools.pop(name, None)
            else:
                before_pools[name] = (args[0], (module,), feed)
        return hook

    def operations(name: str, module: nn.Module, x: torch.Tensor, feed: Feed
                   ) -> tuple[torch.Tensor, bool]:
        """Per-row operations of one call and whether they are ACs."""
        if feed.source is Source.POOLED:
            earlier = before_pools.get(feed.pool or "")
            if earlier is not None:
                tensor, chain, first_feed = earlier
                events, is_events, binary = events_of(tensor, first_feed)
                if is_events:
                    key = (name, tuple(tensor.shape[1:]), tensor.device)
                    if key not in fan_outs:
                        fan_outs[key] = pooled_fan_out(module, chain, tensor.shape[1:],
                                                       x.shape[1:], x.device)
                    return synaptic_ops(module, events, fan_outs[key], binary=binary), True
            feed = Feed(Source.REAL)  # pooled real values
        events, is_events, binary = events_of(x, feed)
        key = (name, tuple(x.shape[1:]), x.device)
        if key not in fan_outs:
            fan_outs[key] = element_fan_out(module, x.shape[1:], x.device)
        return synaptic_ops(module, events, fan_outs[key], binary=binary), is_events

    def synaptic_hook(name: str, feed: Feed) -> Any:
        def hook(module: nn.Module, args: Any, out: torch.Tensor) -> None:
            per_row, is_events = operations(name, module, args[0], feed)
            ops = per_step(per_row, f"layer {name!r}")
            counts = tally.layers.get(name)
            if counts is None:
                counts = LayerCounts(layer_type=type(module).__name__,
                                     fan_in=fan_in(module), acs=tally._steps(),
                                     macs=tally._steps(), dense=tally._steps())
                tally.layers[name] = counts
            if is_events:
                counts.acs += ops
            else:
                counts.macs += ops
            counts.counted_as.add(AS_EVENTS if is_events else AS_REAL)
            counts.dense += out.numel() // num_steps * counts.fan_in
        return hook

    try:
        for name in layout.neurons:
            module = modules[name]
            hook = neuron_hook(name, isinstance(module, (SpikingNeuron, IFEncoder)))
            handles.append(module.register_forward_hook(hook))
        for name, feed in layout.pools.items():
            if isinstance(modules[name], AVERAGE_POOLS):
                handles.append(modules[name].register_forward_hook(pool_hook(name, feed)))
        for name, feed in layout.synaptic.items():
            handles.append(modules[name].register_forward_hook(synaptic_hook(name, feed)))
        yield tally
    finally:
        for handle in handles:
            handle.remove()
        before_pools.clear()
        recent_spikes.clear()
        fan_outs.clear()


@torch.no_grad()
def ann_dense_macs(model: nn.Module, x: torch.Tensor) -> int:
    """Dense MACs per sample of one forward pass of an ANN on the batch `x`."""
    total = 0

    def hook(module: nn.Module, _args: Any, out: torch.Tensor) -> None:
        nonlocal total
        total += out.numel() * fan_in(module)

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear))]
    try:
        model(x)
    finally:
        for handle in handles:
            handle.remove()
    return round(total / x.shape[0])


def parameter_count(network: nn.Module) -> int:
    """Trainable and frozen parameters (each shared tensor once); buffers excluded."""
    return sum(p.numel() for p in network.parameters())
