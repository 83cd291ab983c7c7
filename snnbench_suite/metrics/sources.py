"""What feeds each synaptic layer: spike events or real values, read off the fx graph.

A synaptic layer (Conv1d/2d/3d, Linear) counts accumulates (ACs) when its input is spike
events and multiply-accumulates (MACs) when its input is real-valued. That is decided from
the structure of the network, not from the values, wherever the structure says it:

- `EVENTS`: the output of a spiking neuron (`SpikingNeuron`, or the IF input encoder), also
  after operations that keep each element an event or zero: reshapes (view, flatten,
  reshape, squeeze, unsqueeze, contiguous), dropout (identity in evaluation), permutes
  and indexing, max pooling and the concatenation of event tensors. A spike of any
  amplitude (1 or V_th) is one event.
- `POOLED`: events that went through average pooling (`nn.AvgPool2d/3d`,
  `nn.AdaptiveAvgPool1d/2d/3d` modules). Averaging is linear, so the layer after it is
  still driven by the spikes: a pooled element that averages n spikes carries n events
  (a sum pool of the event mask, computed in a hook on the pooling module), and the layer
  counts n accumulates per synapse of that element. Pooling itself is not a synaptic
  layer and costs nothing (NeuroBench's convention: only synaptic layers count).
- `INPUT`: the network's own input when no spiking encoder precedes it. An analog image
  (static datasets, direct coding) is real: the layer reading it counts MACs. Event data
  is classified per call from its values (`counters.classify_values`): binary frames
  (one non-zero value) are events, frames of whole-number event counts are events (a
  count of n is n events), anything else is real.
- `UNKNOWN`: the structure does not say (a layer outside any fx graph, a module used at
  several places with different inputs, an unknown `TemporalModule`): decided per call
  from the values, events only when every non-zero value is one and the same number.
- `REAL`: everything else (ReLU as RepAct keeps it, BN, additions, normalisation, ...).
"""

from __future__ import annotations

import enum
import operator
from collections import Counter
from dataclasses import dataclass, field

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from snnbench_suite.snn.convert import SpikingNetwork
from snnbench_suite.snn.encoding import IFEncoder
from snnbench_suite.snn.neurons import SpikingNeuron
from snnbench_suite.snn.temporal import TemporalModule

SYNAPTIC_LAYERS: tuple[type[nn.Module], ...] = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
AVERAGE_POOLS: tuple[type[nn.Module], ...] = (
    nn.AvgPool2d, nn.AvgPool3d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d,
    nn.AdaptiveAvgPool3d,
)
# Layers with weights that are not synapses by convention: normalisation (folded into the
# preceding layer at deployment) and neurons (learnable thresholds).
NOT_SYNAPTIC: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, TemporalModule,
)

_SPIKE_SOURCES = (SpikingNeuron, IFEncoder)
_ORDER_KEEPING_MODULES = (
    nn.Identity, nn.Flatten, nn.Unflatten, nn.Dropout, nn.Dropout1d, nn.Dropout2d,
    nn.Dropout3d, nn.AlphaDropout,
)
_EVENT_KEEPING_MODULES = (
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d,
    nn.AdaptiveMaxPool3d,
)
# Order-keeping: the element order is unchanged, so pooled event counts still line up.
_ORDER_KEEPING_FUNCTIONS: set[object] = {
    torch.flatten, torch.reshape, torch.squeeze, torch.unsqueeze, F.dropout, F.dropout1d,
    F.dropout2d, F.dropout3d,
}
_ORDER_KEEPING_METHODS = {
    "view", "reshape", "flatten", "squeeze", "unsqueeze", "contiguous", "unflatten",
    "view_as", "reshape_as",
}
# Event-keeping: every output element is one input element (or zero), in another order.
_EVENT_KEEPING_FUNCTIONS: set[object] = {
    torch.permute, torch.transpose, torch.swapaxes, operator.getitem, F.max_pool1d,
    F.max_pool2d, F.max_pool3d, F.adaptive_max_pool1d, F.adaptive_max_pool2d,
    F.adaptive_max_pool3d,
}
_EVENT_KEEPING_METHODS = {"permute", "transpose", "swapaxes", "__getitem__"}
_CONCATENATIONS: set[object] = {torch.cat, torch.concat, torch.stack}


class Source(enum.Enum):
    EVENTS = "events"
    POOLED = "pooled events"
    INPUT = "network input"
    UNKNOWN = "unknown"
    REAL = "real"


@dataclass(frozen=True)
class Feed:
    """What a layer's input is; for POOLED, the pooling module whose event counts it is."""

    source: Source
    pool: str | None = None


REAL = Feed(Source.REAL)
UNKNOWN = Feed(Source.UNKNOWN)


@dataclass
class Layout:
    """The counting plan of one network, by module path."""

    synaptic: dict[str, Feed] = field(default_factory=dict)
    pools: dict[str, Feed] = field(default_factory=dict)  # pool -> what feeds the pool
    neurons: list[str] = field(default_factory=list)  # layers whose spikes are rates
    uncounted: list[str] = field(default_factory=list)  # weight layers of unknown kind


def is_synaptic(module: nn.Module) -> bool:
    return isinstance(module, SYNAPTIC_LAYERS)


def analyse(network: nn.Module) -> Layout:
    """The feed of every synaptic layer and average pool of `network`, its neuron layers
    (for firing rates; input encoders excluded) and any weight layer it cannot count."""
    modules = dict(network.named_modules())
    path_of = {id(m): name for name, m in modules.items()}
    encoders = {id(m.encoder) for m in modules.values()
                if isinstance(m, SpikingNetwork) and m.encoder is not None}
    layout = Layout()
    layout.neurons = [name for name, m in modules.items()
                      if isinstance(m, TemporalModule) and id(m) not in encoders]
    layout.uncounted = [
        name for name, m in modules.items()
        if not isinstance(m, (*SYNAPTIC_LAYERS, *NOT_SYNAPTIC))
        and any(True for _ in m.parameters(recurse=False))
    ]

    graphs = _graphs(network, modules)
    sites = Counter(id(g.get_submodule(str(n.target))) for g, _, _ in graphs
                    for n in g.graph.nodes if n.op == "call_module")
    seen: dict[str, set[Feed]] = {}
    for graph_module, prefix, input_feed in graphs:
        for path, feed in _walk(graph_module, prefix, input_feed, path_of, sites).items():
            seen.setdefault(path, set()).add(feed)
    for path, feeds in seen.items():
        feed = feeds.pop() if len(feeds) == 1 else UNKNOWN
        if is_synaptic(modules[path]):
            layout.synaptic[path] = feed
        else:
            layout.pools[path] = feed
    for name, module in modules.items():
        if is_synaptic(module) and name not in layout.synaptic:
            layout.synaptic[name] = UNKNOWN  # outside any fx graph: decided by value
    return layout


def _graphs(network: nn.Module, modules: dict[str, nn.Module]
            ) -> list[tuple[fx.GraphModule, str, Feed]]:
    """Every fx graph in `network` with its path and what feeds its first input."""
    owner = {id(m.graph_module): m for m in modules.values() if isinstance(m, SpikingNetwork)}
    found = []
    for name, module in modules.items():
        if not isinstance(module, fx.GraphModule):
            continue
        spiking = owner.get(id(module))
        if spiking is not None:
            encoder = spiking.encoder
            if encoder is None:
                feed = Feed(Source.INPUT)
            elif isinstance(encoder, _SPIKE_SOURCES):
                feed = Feed(Source.EVENTS)
            else:
                feed = UNKNOWN
        else:
            feed = Feed(Source.INPUT) if module is network else UNKNOWN
        found.append((module, f"{name}." if name else "", feed))
    return found


def _walk(graph_module: fx.GraphModule, prefix: str, input_feed: Feed,
          path_of: dict[int, str], sites: Counter[int]) -> dict[str, Feed]:
    """Feeds of the synaptic layers and average pools called in one graph."""
    feeds: dict[fx.Node, Feed] = {}
    result: dict[str, Feed] = {}
    first_input = True

    def arg_feed(node: fx.Node) -> Feed:
        arg = node.args[0] if node.args else None
        return feeds.get(arg, REAL) if isinstance(arg, fx.Node) else REAL

    for node in graph_module.graph.nodes:
        if node.op == "placeholder":
            feeds[node] = input_feed if first_input else REAL
            first_input = False
        elif node.op == "call_module":
            module = graph_module.get_submodule(str(node.target))
            path = path_of.get(id(module), prefix + str(node.target))
            feed = arg_feed(node)
            if is_synaptic(module):
                result[path] = feed
                feeds[node] = REAL
            elif isinstance(module, AVERAGE_POOLS):
                if feed.source is Source.REAL or sites[id(module)] > 1:
                    feeds[node] = REAL
                else:
                    result[path] = feed
                    feeds[node] = Feed(Source.POOLED, pool=path)
            elif isinstance(module, _SPIKE_SOURCES):
                feeds[node] = Feed(Source.EVENTS)
            elif isinstance(module, TemporalModule):
                feeds[node] = UNKNOWN
            elif isinstance(module, _ORDER_KEEPING_MODULES):
                feeds[node] = feed
            elif isinstance(module, _EVENT_KEEPING_MODULES):
                feeds[node] = _reordered(feed)
            else:
                feeds[node] = REAL
        elif node.op in ("call_function", "call_method"):
            target = node.target
            if node.op == "call_function" and target in _CONCATENATIONS:
                feeds[node] = _concatenated(node, feeds)
            elif (target in _ORDER_KEEPING_METHODS if node.op == "call_method"
                  else target in _ORDER_KEEPING_FUNCTIONS):
                feeds[node] = arg_feed(node)
            elif (target in _EVENT_KEEPING_METHODS if node.op == "call_method"
                  else target in _EVENT_KEEPING_FUNCTIONS):
                feeds[node] = _reordered(arg_feed(node))
            else:
                feeds[node] = REAL
        else:
            feeds[node] = REAL
    return result


def _reordered(feed: Feed) -> Feed:
    # Pooled event counts are attached to element positions; after a reordering they no
    # longer line up with the tensor, so such an input is counted as real.
    return REAL if feed.source is Source.POOLED else feed


def _concatenated(node: fx.Node, feeds: dict[fx.Node, Feed]) -> Feed:
    parts = node.args[0] if node.args else ()
    if not isinstance(parts, (list, tuple)) or not parts:
        return REAL
    sources = {feeds.get(p, REAL).source if isinstance(p, fx.Node) else Source.REAL
               for p in parts}
    if sources <= {Source.EVENTS}:
        return Feed(Source.EVENTS)
    if Source.REAL in sources or Source.POOLED in sources:
        return REAL
    return Feed(Source.INPUT) if sources == {Source.INPUT} else UNKNOWN
