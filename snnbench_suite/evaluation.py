"""Accuracy of ANNs and SNNs; for SNNs at every requested T from one simulation.

Spike counting uses forward hooks on the neurons of the same simulation that gives the
accuracy; the hooks are removed afterwards whatever happens.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from snnbench_suite.errors import UsageError
from snnbench_suite.snn.convert import SpikingNetwork
from snnbench_suite.snn.encoding import direct, frames_first
from snnbench_suite.snn.readout import anytime_readout
from snnbench_suite.snn.temporal import TemporalModule, unfold_time


def _topk_correct(logits: torch.Tensor, labels: torch.Tensor, k: int) -> int:
    k = min(k, logits.shape[-1])
    top = logits.topk(k, dim=-1).indices
    return int((top == labels.unsqueeze(-1)).any(-1).sum())


@torch.no_grad()
def evaluate_ann(model: nn.Module, loader: DataLoader, device: torch.device) -> dict[str, float]:
    model.eval().to(device)
    correct1 = correct5 = total = 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        logits = model(x)
        correct1 += _topk_correct(logits, y, 1)
        correct5 += _topk_correct(logits, y, 5)
        total += y.numel()
    result = {"top1": 100.0 * correct1 / total}
    if logits.shape[-1] > 10:
        result["top5"] = 100.0 * correct5 / total
    return result


def input_sequence(x: torch.Tensor, num_steps: int, modality: str) -> torch.Tensor:
    """A batch from a loader -> the `[T, B, ...]` sequence the SNN is fed."""
    if modality == "events":
        frames = frames_first(x)
        if frames.shape[0] < num_steps:
            raise UsageError(
                f"T = {num_steps} is larger than the {frames.shape[0]} frames this event "
                "dataset provides; ask for fewer steps or more frames"
            )
        return frames[:num_steps]
    return direct(x, num_steps)


@contextmanager
def counting_spikes(network: nn.Module, num_steps: int) -> Iterator[dict[str, Any]]:
    """Count spike events (non-zero outputs, whatever their amplitude) per neuron layer and
    step. Yields {"layers": {name: [T] counts}, "neurons": {name: neurons per sample}}."""
    counts: dict[str, torch.Tensor] = {}
    sizes: dict[str, int] = {}
    handles = []
    try:
        for name, module in network.named_modules():
            if not isinstance(module, TemporalModule) or name == "encoder":
                continue

            def hook(_m: nn.Module, _inp: Any, out: torch.Tensor, _name: str = name) -> None:
                steps = unfold_time(out, num_steps)
                per_step = steps.ne(0).flatten(1).sum(1).to(torch.float64).cpu()
                counts[_name] = counts.get(_name, torch.zeros(num_steps, dtype=torch.float64))
                counts[_name] += per_step
                sizes[_name] = steps[0, 0].numel()

            handles.append(module.register_forward_hook(hook))
        yield {"layers": counts, "neurons": sizes}
    finally:
        for handle in handles:
            handle.remove()


@torch.no_grad()
def evaluate_snn(
    network: SpikingNetwork,
    loader: DataLoader,
    steps: Sequence[int],
    *,
    modality: str,
    device: torch.device,
) -> dict[int, dict[str, Any]]:
    """Simulate once at max(steps); return accuracy and firing rates at each step."""
    network.eval().to(device)
    horizon = max(steps)
    correct1 = dict.fromkeys(steps, 0)
    correct5 = dict.fromkeys(steps, 0)
    total = 0
    num_classes = 0
    with counting_spikes(network, horizon) as spikes:
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            readout = anytime_readout(network(input_sequence(x, horizon, modality)))
            num_classes = readout.shape[-1]
            for t in steps:
                correct1[t] += _topk_correct(readout[t - 1], y, 1)
                correct5[t] += _topk_correct(readout[t - 1], y, 5)
            total += y.numel()
    results: dict[int, dict[str, Any]] = {}
    for t in steps:
        layer_rates = {
            name: float(count[:t].sum()) / (spikes["neurons"][name] * t * total)
            for name, count in spikes["layers"].items()
        }
        all_spikes = sum(float(count[:t].sum()) for count in spikes["layers"].values())
        all_neurons = sum(spikes["neurons"].values())
        entry: dict[str, Any] = {
            "top1": 100.0 * correct1[t] / total,
            "firing_rate": all_spikes / (all_neurons * t * total) if all_neurons else 0.0,
            "layer_firing_rates": layer_rates,
        }
        if num_classes > 10:
            entry["top5"] = 100.0 * correct5[t] / total
        results[t] = entry
    return results
