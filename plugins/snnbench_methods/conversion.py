"""Helpers the conversion method plugins (calib, softreset, cqplus, qcfs) share."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from snnbench_suite import ConversionError
from snnbench_suite.snn import ConversionGraph

# A layer whose observed activation is never positive gets this threshold; it then
# (almost) never fires, which is what its ANN counterpart does.
MIN_THRESHOLD = 1e-6

BATCH_NORM_ANN_TRAITS = {
    "reset": "subtract",
    "spike_amplitude": "threshold",
    "batch_norm": "folded",
    "input_coding": "analog (direct)",
}


def batches_of(loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
               device: torch.device) -> list[torch.Tensor]:
    """The input batches of a loader, on `device`; an empty loader is an error."""
    batches = [x.to(device) for x, _ in loader]
    if not batches:
        raise ValueError("the calibration split is empty; the dataset must provide "
                         "calibration samples (DatasetSplits.calibration_indices)")
    return batches


def require_activations(graph: ConversionGraph, allowed: tuple[type[nn.Module], ...],
                        method: str, hint: str = "") -> None:
    """Fail naming the first activation site whose module is not one of `allowed`."""
    for site in graph.sites:
        if not isinstance(site.activation, allowed):
            names = ", ".join(t.__name__ for t in allowed)
            raise ConversionError(
                f"{method}: activation {site.source!r} is a {type(site.activation).__name__}; "
                f"{method} converts {names} activations only.{' ' + hint if hint else ''}"
            )
