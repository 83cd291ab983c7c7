"""Activation statistics of an ANN, observed through forward hooks that are always removed.

Used by conversion methods to set thresholds: the maximum activation (Diehl et al.),
a percentile (Rueckauer et al.), or anything a method computes from recorded values.

In a multi-process cell (`--gpus-per-cell N`) rank r observes batches r, r + N, ... and
the ranks combine their statistics: maxima by all_reduce(MAX), counts by SUM, percentile
samples by all_gather, so every rank gets the statistics of all the batches.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from snnbench_suite import distributed

# Above this many values per layer and batch, a seeded uniform sample is kept for
# percentiles (the maximum is always exact).
MAX_VALUES_PER_BATCH = 262_144


@dataclass
class ActivationStats:
    """Per-layer statistics over all observed batches."""

    max: float
    percentiles: dict[float, float] = field(default_factory=dict)
    count: int = 0


@contextmanager
def recording_outputs(modules: Mapping[str, nn.Module]) -> Iterator[dict[str, list[torch.Tensor]]]:
    """Record every output of each named module while the context is open.

    Hooks are removed when the context exits, also on an exception.
    """
    recorded: dict[str, list[torch.Tensor]] = {name: [] for name in modules}
    handles = []
    try:
        for name, module in modules.items():
            def hook(_m: nn.Module, _inp: Any, out: torch.Tensor, _name: str = name) -> None:
                recorded[_name].append(out.detach())

            handles.append(module.register_forward_hook(hook))
        yield recorded
    finally:
        for handle in handles:
            handle.remove()


@torch.no_grad()
def observe_activations(
    model: nn.Module,
    sites: Mapping[str, nn.Module],
    batches: Iterable[torch.Tensor],
    *,
    percentiles: Sequence[float] = (),
    seed: int = 0,
) -> dict[str, ActivationStats]:
    """Run `model` over `batches` and return max / percentiles of each site's output."""
    for p in percentiles:
        if not 0 <= p <= 100:
            raise ValueError(f"percentile must be in [0, 100], got {p}")
    generator = torch.Generator().manual_seed(seed)
    maxima = {name: -float("inf") for name in sites}
    samples: dict[str, list[np.ndarray]] = {name: [] for name in sites}
    counts = dict.fromkeys(sites, 0)
    was_training = model.training
    model.eval()
    try:
        with recording_outputs(sites) as recorded:
            for index, x in enumerate(batches):
                if not distributed.mine(index):
                    continue
                model(x)
                for name, outputs in recorded.items():
                    for out in outputs:
                        # The maximum is taken where the activations are; only the
                        # percentiles' sample travels to the CPU.
                        values = out.flatten()
                        maxima[name] = max(maxima[name], float(values.max()))
                        counts[name] += values.numel()
                        if percentiles:
                            if values.numel() > MAX_VALUES_PER_BATCH:
                                pick = torch.randint(
                                    values.numel(), (MAX_VALUES_PER_BATCH,), generator=generator
                                )
                                values = values[pick.to(values.device)]
                            samples[name].append(values.float().cpu().numpy())
                    outputs.clear()
    finally:
        model.train(was_training)
    if distributed.world_size() > 1:
        maxima, counts, samples = _combine_ranks(maxima, counts, samples, bool(percentiles))
    stats = {}
    for name in sites:
        if counts[name] == 0:
            raise ValueError(f"activation site {name!r} produced no output: no batches?")
        pct = {}
        if percentiles:
            pooled = np.concatenate(samples[name])
            pct = {p: float(np.percentile(pooled, p)) for p in percentiles}
        stats[name] = ActivationStats(max=maxima[name], percentiles=pct, count=counts[name])
    return stats


def _combine_ranks(
    maxima: dict[str, float], counts: dict[str, int], samples: dict[str, list[np.ndarray]],
    with_samples: bool,
) -> tuple[dict[str, float], dict[str, int], dict[str, list[np.ndarray]]]:
    """The statistics of every rank's batches (see the module docstring)."""
    names = list(maxima)
    top = distributed.all_reduce_max_(torch.tensor([maxima[n] for n in names],
                                                   dtype=torch.float64))
    total = distributed.all_reduce_sum_(torch.tensor([counts[n] for n in names],
                                                     dtype=torch.int64))
    pooled = samples
    if with_samples:  # the same on every rank, so all of them gather or none
        gathered = distributed.all_gather_objects(samples)
        pooled = {n: [part for rank_samples in gathered for part in rank_samples[n]]
                  for n in names}
    return ({n: float(v) for n, v in zip(names, top.tolist(), strict=True)},
            {n: int(v) for n, v in zip(names, total.tolist(), strict=True)}, pooled)
