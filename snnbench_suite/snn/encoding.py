"""Input encoders: how a sample becomes a `[T, B, ...]` sequence."""

from __future__ import annotations

import torch


def direct(x: torch.Tensor, num_steps: int) -> torch.Tensor:
    """Static input `[B, ...]` repeated every step (analog 'direct' coding)."""
    return x.unsqueeze(0).expand(num_steps, *x.shape)


def frames_first(x: torch.Tensor) -> torch.Tensor:
    """Event frames `[B, T, 2, H, W]` from a data loader -> `[T, B, 2, H, W]`."""
    return x.transpose(0, 1)


def poisson(
    x: torch.Tensor, num_steps: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Bernoulli spikes with probability x (x in [0, 1]) at every step."""
    probs = x.clamp(0, 1).unsqueeze(0).expand(num_steps, *x.shape)
    return torch.bernoulli(probs, generator=generator)
