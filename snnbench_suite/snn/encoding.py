"""Input encoders: how a sample becomes a `[T, B, ...]` sequence."""

from __future__ import annotations

import torch
from torch import nn

from snnbench_suite.snn.temporal import TemporalModule, fold_time, unfold_time


def direct(x: torch.Tensor, num_steps: int) -> torch.Tensor:
    """Static input `[B, ...]` repeated every step (analog 'direct' coding)."""
    return x.unsqueeze(0).expand(num_steps, *x.shape)


def frames_first(x: torch.Tensor) -> torch.Tensor:
    """Event frames `[B, T, 2, H, W]` from a data loader -> `[T, B, 2, H, W]`."""
    return x.transpose(0, 1)


class FrameMean(nn.Module):
    """Event frames `[B, T, C, H, W]` -> their mean over time `[B, C, H, W]`: how an ANN
    (a distillation teacher, for one) sees event data."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(1)


def poisson(
    x: torch.Tensor, num_steps: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Bernoulli spikes with probability x (x in [0, 1]) at every step."""
    probs = x.clamp(0, 1).unsqueeze(0).expand(num_steps, *x.shape)
    return torch.bernoulli(probs, generator=generator)


class IFEncoder(TemporalModule):
    """Analog input fed to an integrate-and-fire neuron every step (CQ+ input coding).

    Unit spikes, reset by subtraction, v(0) = 0. With threshold just below 1 (0.999) a
    pixel x in [0, 1] gives floor(T * x / 0.999) spikes in T steps: its T-level
    quantization. `levels` first quantizes the pixel to that many steps on [0, 1].
    The network calls it `encoder`, so spike counts leave it out (the input is not a layer).
    """

    def __init__(self, threshold: float = 0.999, levels: int | None = None) -> None:
        super().__init__()
        if not threshold > 0:
            raise ValueError(f"the encoder threshold must be > 0, got {threshold}")
        if levels is not None and levels < 1:
            raise ValueError(f"levels must be a positive integer, got {levels}")
        self.threshold = float(threshold)
        self.levels = levels

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}, levels={self.levels}"

    def forward(self, x: torch.Tensor, num_steps: int) -> torch.Tensor:
        steps = unfold_time(x, num_steps)
        if self.levels is not None:
            steps = torch.floor(steps.clamp(0, 1) * self.levels) / self.levels
        v = torch.zeros_like(steps[0])
        out = torch.empty_like(steps)
        for t in range(steps.shape[0]):
            v = v + steps[t]
            fired = (v >= self.threshold).to(steps.dtype)
            out[t] = fired
            v = v - fired * self.threshold
        return fold_time(out)
