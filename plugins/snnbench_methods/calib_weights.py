"""SNN Calibration's weight calibration (`calib` with `weight_calibration`): layer by
layer, the weights between the previous neurons and a neuron are trained so that, fed
those neurons' spike rates, the layer reproduces the ANN's activation through the
neuron's clip-floor. Split from `calib` because it is a training loop of its own."""

from __future__ import annotations

import torch
from torch import fx, nn

from snnbench_suite.snn import (
    IFNeuron,
    InOrderRecorder,
    SpikingNetwork,
    broadcast_channels,
    clip_floor_ste,
    module_outputs,
    pre_activation_subgraph,
    spiking_rates,
)


def calibrate_weights(
    ann: nn.Module, network: SpikingNetwork, pairs: list[tuple[nn.Module, IFNeuron]],
    names: list[str], x: torch.Tensor, num_steps: int, *, iterations: int, lr: float,
    batch_size: int, seed: int,
) -> list[tuple[float, float]]:
    """Weight calibration, layer by layer. `names` are the sites' module paths inside
    `network.graph_module`. Returns each layer's (first, last) minibatch loss.

    Each layer learns from the rates its source neurons have in the network as it is at
    that moment. A neuron's rates are recorded once, when its own layer is done, and kept
    until the last layer that reads them, unless a later layer changes a weight upstream
    of it (a convolution on a residual or dense path that several layers read), after
    which they are recorded again from the input."""
    graph_module = network.graph_module
    neuron_by_name = dict(zip(names, [n for _, n in pairs], strict=True))
    subgraphs = [pre_activation_subgraph(graph_module, name, names) for name in names]
    last_reader = {source: layer for layer, (_, sources) in enumerate(subgraphs)
                   for source in sources}
    upstream = _upstream_modules(graph_module, names)
    rates: dict[str, torch.Tensor] = {}
    recorder = InOrderRecorder(network, x, num_steps)
    generator = torch.Generator().manual_seed(seed)
    losses = []
    for parameter in network.parameters():  # only the layer being calibrated learns
        parameter.requires_grad_(False)
    for layer, ((activation, neuron), name, (subgraph, sources)) in enumerate(
            zip(pairs, names, subgraphs, strict=True)):
        weights = [m.weight for m in subgraph.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
        if weights:
            missing = [s for s in sources if s in neuron_by_name and s not in rates]
            if missing:
                fresh = spiking_rates(network, [neuron_by_name[s] for s in missing], x, num_steps)
                rates.update(zip(missing, fresh, strict=True))
            inputs = [rates[s] if s in neuron_by_name else x for s in sources]
            (target,) = module_outputs(ann, [activation], x)
            losses.append(fit_layer_weights(subgraph, weights, inputs, target, neuron, num_steps,
                                       iterations=iterations, lr=lr, batch_size=batch_size,
                                       generator=generator))
            changed = {str(n.target) for n in subgraph.graph.nodes if n.op == "call_module"}
            recorder.changed(subgraph.modules())
            for stale in [s for s in rates if upstream[s] & changed]:
                del rates[stale]
        else:
            losses.append((float("nan"), float("nan")))
        if last_reader.get(name, -1) > layer:
            rates[name] = recorder.inputs(neuron).rates(neuron)
        for done in [s for s in rates if last_reader[s] <= layer]:
            del rates[done]
    return losses


def _upstream_modules(graph_module: fx.GraphModule, names: list[str]) -> dict[str, set[str]]:
    """For each module called `names[i]`, the paths of the modules its input depends on."""
    upstream: dict[fx.Node, set[str]] = {}
    found: dict[str, set[str]] = {}
    for node in graph_module.graph.nodes:
        depends: set[str] = set()
        for parent in node.all_input_nodes:
            depends |= upstream[parent]
            if parent.op == "call_module":
                depends.add(str(parent.target))
        upstream[node] = depends
        if node.op == "call_module" and node.target in names:
            found[str(node.target)] = depends
    return found


def fit_layer_weights(
    subgraph: nn.Module, weights: list[torch.Tensor], inputs: list[torch.Tensor],
    target: torch.Tensor, neuron: IFNeuron, num_steps: int, *, iterations: int, lr: float,
    batch_size: int, generator: torch.Generator,
) -> tuple[float, float]:
    """Train `weights` so that the layer, fed the source neurons' rates, gives the ANN's
    output through the neuron's clip-floor; returns the first and last minibatch loss."""
    for weight in weights:
        weight.requires_grad_(True)
    optimizer = torch.optim.Adam(weights, lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, iterations, eta_min=0.0)
    threshold = broadcast_channels(neuron.threshold.detach(), target.shape)
    history: list[float] = []
    for _ in range(iterations):
        pick = torch.randperm(target.shape[0], generator=generator)[:batch_size]
        pick = pick.to(target.device)
        pre = subgraph(*[source[pick] for source in inputs])
        # The neuron's V/(2T) input shift is half a level: offset 0.5 in clip_floor.
        out = clip_floor_ste(pre, threshold, num_steps, offset=0.5)
        loss = (out - target[pick]).pow(2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        history.append(float(loss.detach()))
    for weight in weights:
        weight.requires_grad_(False)
    return (history[0], history[-1]) if history else (float("nan"),) * 2
