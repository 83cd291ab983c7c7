"""ANN activations that conversion methods train with, and the rate an IF neuron computes.

An IF neuron with reset by subtraction, threshold V and spike amplitude V, driven by a
constant current a for T steps, emits `clip_floor(a; V, T)` on average:

    clip_floor(a; V, T) = floor(clamp(a * T / V, 0, T)) * V / T

Adding V / (2T) to its input every step moves the floor to a rounding
(`clip_floor(a; V, T, offset=0.5)`), which halves the worst-case quantization error.
The activation modules here are registered with the conversion engine, so an ANN trained
with them converts like a ReLU network, each site keeping the module (and its threshold).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from snnbench_suite.snn.convert import register_convertible_activation

TensorLike = float | torch.Tensor


def clip_floor(
    a: torch.Tensor, threshold: TensorLike, num_steps: int, offset: float = 0.0
) -> torch.Tensor:
    """The time-averaged output of an IF neuron (soft reset, amplitude V) for input `a`.

    `offset` is in units of V / T: 0.5 models the input shift V / (2T).
    `threshold` broadcasts against `a` (a scalar, or shaped for per-channel values).
    """
    levels = torch.clamp(a * num_steps / threshold + offset, 0, num_steps).floor()
    return levels * threshold / num_steps


class _FloorSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        return x.floor()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return grad


def floor_ste(x: torch.Tensor) -> torch.Tensor:
    """floor(x) forward, identity gradient backward (straight-through estimator)."""
    result: torch.Tensor = _FloorSTE.apply(x)
    return result


def clip_floor_ste(
    a: torch.Tensor, threshold: TensorLike, num_steps: int, offset: float = 0.0
) -> torch.Tensor:
    """`clip_floor` with a straight-through floor, so it can be optimised through."""
    levels = floor_ste(torch.clamp(a * num_steps / threshold + offset, 0, num_steps))
    return levels * threshold / num_steps


class ThresholdReLU(nn.Module):
    """y = clamp(x, 0, theta): a ReLU clipped at a fixed threshold; gradient 1 inside
    [0, theta], 0 outside (Deng & Gu's threshold ReLU)."""

    def __init__(self, threshold: float = 1.0) -> None:
        super().__init__()
        if not threshold > 0:
            raise ValueError(f"the threshold of a ThresholdReLU must be > 0, got {threshold}")
        self.threshold = float(threshold)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(x, 0.0, self.threshold)

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}"


class _ClampQuantize(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, levels: int) -> torch.Tensor:
        inside = (x >= 0) & (x <= 1)
        ctx.save_for_backward(inside)
        return torch.floor(torch.clamp(x, 0, 1) * levels) / levels

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (inside,) = ctx.saved_tensors
        # CQ training: the gradient passes the quantizer clipped to [-1, 1], and the clamp
        # stops it where the input was outside [0, 1].
        return F.hardtanh(grad) * inside.to(grad.dtype), None


def clamp_quantize(x: torch.Tensor, levels: int) -> torch.Tensor:
    """floor(levels * clamp(x, 0, 1)) / levels with the CQ straight-through gradient."""
    result: torch.Tensor = _ClampQuantize.apply(x, levels)
    return result


class ClampQuantize(nn.Module):
    """Clamp-and-quantize activation (Yan et al.): `levels` equal steps on [0, 1]."""

    def __init__(self, levels: int) -> None:
        super().__init__()
        if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
            raise ValueError(f"ClampQuantize needs a positive integer of levels, got {levels!r}")
        self.levels = levels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return clamp_quantize(x, self.levels)

    def extra_repr(self) -> str:
        return f"levels={self.levels}"


class _PositiveSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, minimum: float) -> torch.Tensor:
        return x.clamp(min=minimum)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad, None


class QCFS(nn.Module):
    """Quantization-clip-floor-shift (Bu et al., ICLR 2022):

        h(x) = lam / L * clamp(floor(x * L / lam + 1/2), 0, L)

    with a trainable threshold `lam` (one per layer) and L levels; the floor has a
    straight-through gradient, so lam learns through the clip and the scaling.

    lam is used as max(lam, `min_threshold`), with a straight-through gradient: SGD at
    the authors' learning rate can push the raw parameter through zero (the layer then
    computes a mirrored, meaningless function and cannot be converted); held at the
    floor it keeps the activation's meaning and can still grow back.
    `effective_threshold()` is the value the forward pass uses, and what an IF neuron
    converting this layer must take as its threshold.
    """

    threshold: nn.Parameter

    def __init__(self, levels: int, threshold: float = 8.0, min_threshold: float = 1e-2) -> None:
        super().__init__()
        if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
            raise ValueError(f"QCFS needs a positive integer number of levels L, got {levels!r}")
        if not threshold > 0:
            raise ValueError(f"QCFS needs a positive initial threshold, got {threshold}")
        if not 0 < min_threshold <= threshold:
            raise ValueError(f"QCFS needs 0 < min_threshold <= threshold, got {min_threshold}")
        self.levels = levels
        self.min_threshold = float(min_threshold)
        self.threshold = nn.Parameter(torch.tensor(float(threshold)))

    def effective_threshold(self) -> torch.Tensor:
        """lam as the forward pass uses it: the parameter, floored at `min_threshold`."""
        result: torch.Tensor = _PositiveSTE.apply(self.threshold, self.min_threshold)
        return result

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lam = self.effective_threshold()
        steps = floor_ste(x * self.levels / lam + 0.5)
        return torch.clamp(steps, 0, self.levels) * lam / self.levels

    def extra_repr(self) -> str:
        return (f"levels={self.levels}, threshold={float(self.effective_threshold()):.4g}, "
                f"min_threshold={self.min_threshold:g}")


for _activation in (ThresholdReLU, ClampQuantize, QCFS):
    register_convertible_activation(_activation)

__all__ = [
    "QCFS",
    "ClampQuantize",
    "ThresholdReLU",
    "clamp_quantize",
    "clip_floor",
    "clip_floor_ste",
    "floor_ste",
]
