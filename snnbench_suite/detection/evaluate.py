"""mAP of detection ANNs and SNNs on a test loader; for SNNs at every requested T from one
simulation (the time-averaged dense map up to step t is decoded for each t). The
records' "map" and "map50" are fractions in [0, 1], as COCOeval reports them.

The loader must iterate a `DetectionSamples` split in order (no shuffling): the i-th
sample is matched to the split's i-th image id for COCOeval.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from snnbench_suite.detection.cocoeval import CocoScorer
from snnbench_suite.detection.postprocess import (
    DEFAULTS,
    Detections,
    Postprocess,
    coco_results,
    detect,
)
from snnbench_suite.detection.samples import DetectionSamples
from snnbench_suite.evaluation import SnnEvaluation, evaluation_with_counts, input_sequence
from snnbench_suite.metrics import DEFAULT_ENERGY_TABLE, EnergyTable, counting
from snnbench_suite.snn.readout import anytime_readout


def detection_split(loader: DataLoader) -> DetectionSamples:
    """The DetectionSamples a loader reads, in order; an error otherwise."""
    dataset = loader.dataset
    if not isinstance(dataset, DetectionSamples):
        raise TypeError(f"detection evaluation needs a loader over DetectionSamples; got "
                        f"{type(dataset).__name__}")
    sampler = getattr(loader, "sampler", None)
    if sampler is not None and not isinstance(sampler, torch.utils.data.SequentialSampler):
        raise ValueError("detection evaluation needs an unshuffled loader: predictions are "
                         "matched to images by position")
    return dataset


def score(split: DetectionSamples, scorer: CocoScorer, found: Sequence[Detections]
          ) -> dict[str, float]:
    """{"map", "map50"} of the detections of the split's first len(found) images:
    COCOeval's fractions in [0, 1], as records hold them."""
    return scorer.score(coco_results(found, split.image_ids[: len(found)],
                                     split.scales[: len(found)], split.category_ids))


@torch.no_grad()
def evaluate_detector(model: nn.Module, loader: DataLoader, device: torch.device,
                      settings: Postprocess = DEFAULTS) -> dict[str, float]:
    """{"map", "map50"} of a detection ANN on the loader's split."""
    split = detection_split(loader)
    scorer = CocoScorer(split.ground_truth())
    model.eval().to(device)
    found: list[Detections] = []
    for x, _ in loader:
        x = x.to(device)
        found += [d.to_cpu() for d in detect(model(x), split.input_size, split.num_classes,
                                              settings)]
    return score(split, scorer, found)


@torch.no_grad()
def spiking_detections(network: nn.Module, loader: DataLoader, steps: Sequence[int],
                       sequence: Any, device: torch.device,
                       settings: Postprocess = DEFAULTS) -> dict[int, list[Detections]]:
    """Simulate every batch once for max(steps); detections at each step count.
    `sequence(x, T)` turns a batch into the `[T, B, ...]` input."""
    split = detection_split(loader)
    horizon = max(steps)
    network.eval().to(device)
    found: dict[int, list[Detections]] = {t: [] for t in steps}
    for x, _ in loader:
        readout = anytime_readout(network(sequence(x.to(device), horizon)))
        for t in steps:
            found[t] += [d.to_cpu() for d in detect(readout[t - 1], split.input_size,
                                                    split.num_classes, settings)]
    return found


def score_steps(loader: DataLoader, found: dict[int, list[Detections]]
                ) -> dict[int, dict[str, float]]:
    """{"map", "map50"} at each T of `spiking_detections`' output."""
    split = detection_split(loader)
    scorer = CocoScorer(split.ground_truth())
    return {t: score(split, scorer, detections) for t, detections in found.items()}


@torch.no_grad()
def simulate_detector(network: nn.Module, loader: DataLoader, steps: Sequence[int], *,
                      modality: str, device: torch.device,
                      energy_table: EnergyTable = DEFAULT_ENERGY_TABLE) -> SnnEvaluation:
    """The detection counterpart of `snnbench_suite.evaluation.simulate`: one simulation
    at max(steps); mAP at each T and, from the same simulation, firing rates, operations
    and energy per sample (the shared counting hooks)."""

    split = detection_split(loader)
    scorer = CocoScorer(split.ground_truth())
    horizon = max(steps)
    network.eval().to(device)
    with counting(network, horizon, event_input=modality == "events") as tally:
        found = spiking_detections(network, loader, steps,
                                   lambda x, t: input_sequence(x, t, modality), device)
    total = len(found[horizon])
    if total == 0:
        raise ValueError("the test split is empty: there is nothing to evaluate")
    scores = {t: score(split, scorer, found[t]) for t in steps}
    return evaluation_with_counts(network, tally, total, scores, energy_table)
