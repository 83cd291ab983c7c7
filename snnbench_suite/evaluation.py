"""Accuracy of ANNs and SNNs; for SNNs at every requested T from one simulation.

The efficiency metrics (firing rates, SOPs, dense and effective MACs, effective ACs,
energy; definitions in `snnbench_suite.metrics.counters`) are counted by forward hooks
during the same simulation that gives the accuracy; the hooks are removed afterwards
whatever happens. Every count is per sample, summed over the first T steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from snnbench_suite.errors import UsageError
from snnbench_suite.metrics import (
    DEFAULT_ENERGY_TABLE,
    METRICS_VERSION,
    EnergyTable,
    Tally,
    counting,
    parameter_count,
)
from snnbench_suite.snn.convert import SpikingNetwork
from snnbench_suite.snn.encoding import direct, frames_first
from snnbench_suite.snn.readout import anytime_readout


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


@dataclass
class SnnEvaluation:
    """One simulation's results: an entry per requested T and the network's size."""

    per_t: dict[int, dict[str, Any]]
    params: int
    ann_macs: int  # dense MACs of one step per sample: one ANN forward pass
    layers: dict[str, dict[str, Any]] = field(default_factory=dict)
    uncounted_layers: list[str] = field(default_factory=list)


@torch.no_grad()
def simulate(
    network: nn.Module,
    loader: DataLoader,
    steps: Sequence[int],
    *,
    modality: str,
    device: torch.device,
    energy_table: EnergyTable = DEFAULT_ENERGY_TABLE,
) -> SnnEvaluation:
    """Simulate once at max(steps); accuracy, firing rates, operations and energy per
    sample at each step, all from that one simulation (hooks, removed afterwards)."""
    network.eval().to(device)
    horizon = max(steps)
    correct1 = dict.fromkeys(steps, 0)
    correct5 = dict.fromkeys(steps, 0)
    total = 0
    num_classes = 0
    with counting(network, horizon, event_input=modality == "events") as tally:
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            readout = anytime_readout(network(input_sequence(x, horizon, modality)))
            num_classes = readout.shape[-1]
            for t in steps:
                correct1[t] += _topk_correct(readout[t - 1], y, 1)
                correct5[t] += _topk_correct(readout[t - 1], y, 5)
            total += y.numel()
    if total == 0:
        raise UsageError("the test split is empty: there is nothing to evaluate")
    scores: dict[int, dict[str, Any]] = {}
    for t in steps:
        scores[t] = {"top1": 100.0 * correct1[t] / total}
        if num_classes > 10:
            scores[t]["top5"] = 100.0 * correct5[t] / total
    return evaluation_with_counts(network, tally, total, scores, energy_table)


def evaluation_with_counts(network: nn.Module, tally: Tally, total: int,
                           scores: dict[int, dict[str, Any]],
                           energy_table: EnergyTable) -> SnnEvaluation:
    """Join each T's task scores with the operation counts and energy per sample of the
    same simulation: the part every task's evaluation shares."""
    results: dict[int, dict[str, Any]] = {}
    for t, entry in scores.items():
        counts = tally.per_sample(t, total)
        results[t] = {**entry, **counts, "energy_pj": energy_table.energy_pj(
            counts["effective_macs"], counts["effective_acs"])}
    return SnnEvaluation(
        per_t=results, params=parameter_count(network),
        ann_macs=tally.dense_macs_per_step(total), layers=tally.layer_summary(),
        uncounted_layers=list(tally.layout.uncounted),
    )


def metrics_record(evaluations: Sequence[SnnEvaluation],
                   energy_table: EnergyTable = DEFAULT_ENERGY_TABLE) -> dict[str, Any]:
    """The record's "metrics" entry: definitions version, energy table, network size.

    `params` and `ann_macs` come from the first evaluated network; when builds differ in
    size (they should not: every T builds the same architecture), the value of each
    build is kept as well, in the order of the record's "builds".
    """
    if not evaluations:
        raise ValueError("no network was evaluated")
    first = evaluations[0]
    entry: dict[str, Any] = {
        "version": METRICS_VERSION,
        "energy_table": energy_table.as_record(),
        "params": first.params,
        "ann_macs": first.ann_macs,
        "ann_energy_pj": first.ann_macs * energy_table.pj_per_mac,
        "layers": first.layers,
        "uncounted_layers": first.uncounted_layers,
    }
    if len({(e.params, e.ann_macs) for e in evaluations}) > 1:
        entry["params_per_build"] = [e.params for e in evaluations]
        entry["ann_macs_per_build"] = [e.ann_macs for e in evaluations]
    return entry


def evaluate_snn(
    network: SpikingNetwork,
    loader: DataLoader,
    steps: Sequence[int],
    *,
    modality: str,
    device: torch.device,
) -> dict[int, dict[str, Any]]:
    """The per-T entries of `simulate` (accuracy, firing rates, operations, energy)."""
    return simulate(network, loader, steps, modality=modality, device=device).per_t
