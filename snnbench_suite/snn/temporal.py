"""The folded layout: stateless layers see `[T*B, ...]`, only neurons loop over T."""

from __future__ import annotations

import torch
from torch import nn


class TemporalModule(nn.Module):
    """A module that needs the number of steps: `forward(x_folded, num_steps)`.

    The conversion engine passes the simulation length to every TemporalModule in the
    graph; every other module is stateless and runs once on the folded batch.
    """

    def forward(self, x: torch.Tensor, num_steps: int) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError


def unfold_time(x: torch.Tensor, num_steps: int) -> torch.Tensor:
    """`[T*B, ...]` -> `[T, B, ...]`."""
    if x.shape[0] % num_steps:
        raise ValueError(
            f"a folded batch of {x.shape[0]} rows cannot hold {num_steps} time steps"
        )
    return x.unflatten(0, (num_steps, x.shape[0] // num_steps))


def fold_time(x: torch.Tensor) -> torch.Tensor:
    """`[T, B, ...]` -> `[T*B, ...]`."""
    return x.flatten(0, 1)
