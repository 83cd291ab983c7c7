"""Anytime readout: the prediction after every step t <= T from one simulation."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def anytime_readout(per_step: torch.Tensor) -> torch.Tensor:
    """`[T, B, K]` per-step outputs -> `[T, B, K]`, entry t = mean of outputs 1..t+1."""
    steps = torch.arange(1, per_step.shape[0] + 1, device=per_step.device, dtype=per_step.dtype)
    return per_step.cumsum(0) / steps.reshape(-1, *([1] * (per_step.dim() - 1)))


def readout_at(per_step: torch.Tensor, steps: Sequence[int]) -> dict[int, torch.Tensor]:
    """The time-averaged output after each of `steps` (1-based) time steps."""
    total = per_step.shape[0]
    bad = [t for t in steps if not 1 <= t <= total]
    if bad:
        raise ValueError(f"steps {bad} are outside the simulated window 1..{total}")
    readout = anytime_readout(per_step)
    return {t: readout[t - 1] for t in steps}
